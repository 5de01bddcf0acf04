#!/usr/bin/env bash
# DoT and DoH load: dnsperf -m dot and h2load (DoH GET) against fraudwall and, in the same run,
# against Unbound's own DoT and DoH (Debian's Unbound is built with nghttp2), alternating rounds.
#
#   benches/encrypted.sh                          # release build, 3 rounds of 15 s per server
#   SECONDS_PER_RUN=5 ROUNDS=1 benches/encrypted.sh
#   FW_BIN=target/debug/fraudwall SECONDS_PER_RUN=2 ROUNDS=1 IDLE_CONNS=500 benches/encrypted.sh
#                                                 # the script itself, no meaningful figures
#
# What it measures is the cost of the transports, not of resolution: every query is for a name
# of a 10 k-name blocklist, which both servers answer locally (fraudwall: a plain list, sinkhole;
# Unbound: `local-zone: "name." always_null`), so no upstream is involved and nothing is sent
# anywhere but 127.0.0.1. Both servers get one thread (fraudwall `server.udp_workers: 1` and a
# tokio runtime on the same two vCPUs; Unbound `num-threads: 1`); dnsperf runs beside them.
# Prints QPS, lost queries, average and 99th-percentile latency (of the answered queries, from
# dnsperf -v) per server and transport (median of ROUNDS), and the ratios fraudwall / Unbound.
#
# Then CPU per query at a fixed offered rate (RATE queries per second, RATE_SECS seconds, once
# per server and transport): user + system ticks of the server process (/proc/PID/stat) over
# the answered queries. At saturation both servers use what the shared CPUs give them, so this
# is the figure that says what a query costs.
#
# Then idle connections: IDLE_CONNS (10 k) DoT connections to each server in turn, every one
# through its TLS handshake and then silent (a Python asyncio client), and the server's RSS
# before and while they are open, with how many the server still holds (ss). Both servers get
# caps and idle timeouts above that (fraudwall server.tcp_max_*, dot.idle_timeout_secs; Unbound
# incoming-num-tcp, tcp-idle-timeout) and the fd limit is raised for both and the client.
#
# DoH is driven by h2load (nghttp2-client), not dnsperf -m doh: Debian 12's dnsperf (2.10)
# loses DoH answers that arrive several to one read (DNS-OARC/dnsperf#240). fraudwall answers
# HTTP/2 streams concurrently and hyper writes what is ready together, so beyond ~2 outstanding
# queries dnsperf stalls on it (200 outstanding: 96 QPS, all outstanding "lost", while curl gets
# 2,000 multiplexed requests answered in 0.7 s); at 2 outstanding it is dnsperf that sets the
# pace (0.4 ms latency on both servers, 200-900 QPS). h2load sends GET ?dns= for the same 10 k
# names, CLIENTS connections with DOH_STREAMS streams each (200 outstanding, as for DoT), and
# logs every request's time, from which the p99 comes; non-200 answers count as lost.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECONDS_PER_RUN:-15}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-50}
OUTSTANDING=${OUTSTANDING:-200}
DOH_STREAMS=${DOH_STREAMS:-4}
IDLE_CONNS=${IDLE_CONNS:-10000}
RATE=${RATE:-2000}
RATE_SECS=${RATE_SECS:-10}
FW_DOT=${FW_DOT:-8531}
FW_DOH=${FW_DOH:-8532}
UB_DOT=${UB_DOT:-8533}
UB_DOH=${UB_DOH:-8534}

# Each server and the idle client hold IDLE_CONNS sockets.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -gt $((IDLE_CONNS + 1000)) ] || {
  echo "fd limit $(ulimit -n) too low for IDLE_CONNS=$IDLE_CONNS" >&2
  exit 1
}

for tool in dnsperf h2load unbound openssl python3 ss; do
  command -v "$tool" >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq dnsperf nghttp2-client unbound openssl python3 iproute2 >/dev/null
    break
  }
done

work=$(pwd)/target/encrypted-bench
rm -rf "$work"
mkdir -p "$work/lists"
if [ -z "${FW_BIN:-}" ]; then
  cargo build --release --quiet
  FW_BIN=$(pwd)/target/release/fraudwall
fi
FW_BIN=$(realpath "$FW_BIN") # fraudwall runs in $work

# A throwaway certificate for 127.0.0.1 (dnsperf does not verify it; nothing else uses it).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=bench.fraudwall.test -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

for i in $(seq 1 10000); do echo "n$i.bench-fraud.test"; done >"$work/lists/fraud.txt"
awk '{print $1" A"}' "$work/lists/fraud.txt" >"$work/queries"
# The same names as DoH GET URIs (RFC 8484 §4.1: id 0, RD, base64url without padding), per port.
for port in $FW_DOH $UB_DOH; do
  python3 - "$work/lists/fraud.txt" "$port" >"$work/uris.$port" <<'PY'
import base64, struct, sys
for name in open(sys.argv[1]).read().split():
    q = struct.pack(">6H", 0, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    q += struct.pack(">2H", 1, 1)
    dns = base64.urlsafe_b64encode(q).decode().rstrip("=")
    print(f"https://127.0.0.1:{sys.argv[2]}/dns-query?dns={dns}")
PY
done
{
  echo "server:"
  echo "  interface: 127.0.0.1@$UB_DOT"
  echo "  interface: 127.0.0.1@$UB_DOH"
  echo "  tls-port: $UB_DOT"
  echo "  https-port: $UB_DOH"
  echo "  http-endpoint: /dns-query"
  echo "  tls-service-key: $work/key.pem"
  echo "  tls-service-pem: $work/cert.pem"
  echo "  num-threads: 1"
  echo "  incoming-num-tcp: 1000"
  echo "  http-max-streams: 100"
  echo "  do-daemonize: no"
  echo "  chroot: \"\""
  echo "  username: \"\""
  echo "  pidfile: \"\""
  echo "  use-syslog: no"
  echo "  logfile: \"\""
  echo "  verbosity: 0"
  echo "  access-control: 127.0.0.0/8 allow"
  echo "  do-not-query-localhost: yes"
  echo "  prefetch: no"
  # Nothing outside the list is ever looked up: no query can leave the machine.
  echo "  local-zone: \".\" refuse"
  awk '{print "  local-zone: \""$1".\" always_null"}' "$work/lists/fraud.txt"
  echo "remote-control:"
  echo "  control-enable: no"
} >"$work/unbound.conf"
# For the idle connections, a second Unbound with DoT only: incoming-num-tcp counts per listening
# port and must fit the fd limit (no setrlimit here); Unbound shortens idle timeouts once half
# its slots are taken, so it gets as many as the limit allows and a long timeout.
ub_idle_tcp=$(($(ulimit -n) - 500))
[ "$ub_idle_tcp" -le $((IDLE_CONNS * 2 + 1000)) ] || ub_idle_tcp=$((IDLE_CONNS * 2 + 1000))
sed -e "/^  interface: 127.0.0.1@$UB_DOH/d" -e '/^  https-port:/d' -e '/^  http-/d' \
  -e "s/^  incoming-num-tcp: .*/  incoming-num-tcp: $ub_idle_tcp\n  tcp-idle-timeout: 3600000\n  outgoing-range: 16\n  outgoing-num-tcp: 1/" \
  "$work/unbound.conf" >"$work/unbound-idle.conf"
cat >"$work/fraudwall.yaml" <<EOF
listen: ["127.0.0.1:0"]
resolver:
  mode: forward
  forwarders: [{address: "127.0.0.1:9"}]
blocklists:
  dir: lists
server:
  udp_workers: 1
  tcp_max_connections: 100000
  tcp_max_per_client: 100000
tls:
  cert: cert.pem
  key: key.pem
dot:
  listen: ["127.0.0.1:$FW_DOT"]
  idle_timeout_secs: 600
doh:
  listen: ["127.0.0.1:$FW_DOH"]
metrics:
  listen: null
warning_page:
  listen: []
events:
  target: events.jsonl
log:
  level: warn
EOF

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
(cd "$work" && exec "$FW_BIN" serve --config fraudwall.yaml 2>"$work/fraudwall.log") &
pids+=($!)
unbound -c "$work/unbound.conf" 2>"$work/unbound.log" &
pids+=($!)
for port in $FW_DOT $FW_DOH $UB_DOT $UB_DOH; do
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.2
  done
done

# One run: prints "qps lost avg_latency_ms p99_latency_ms". DoT: dnsperf, whose -v lists every
# answer with its latency; DoH: h2load, whose log has every request's status and time (µs).
# The p99 is over the answered queries.
run() {
  local mode=$1 port=$2 rate=${3:-} secs=${4:-$SECS}
  if [ "$mode" = doh ]; then
    rm -f "$work/h2load.log"
    # h2load's --rps is per connection.
    h2load -D "$secs" -c "$CLIENTS" -m "$DOH_STREAMS" -t 1 -i "$work/uris.$port" \
      ${rate:+--rps $((rate / CLIENTS))} \
      -H "accept: application/dns-message" --log-file="$work/h2load.log" \
      >"$work/h2load.out" 2>&1 || true
    local qps
    qps=$(awk '/^finished in/ {print $4}' "$work/h2load.out")
    awk '$2 == 200 {print $3 / 1000}' "$work/h2load.log" | sort -g |
      awk -v qps="${qps:-0}" -v all="$(wc -l <"$work/h2load.log")" \
        '{a[NR]=$1; s+=$1} END {i=int(NR*0.99+0.5); if (i < 1) i=1
          printf "%.0f %d %.3f %.3f\n", qps, all - NR, NR ? s/NR : 0, a[i]}'
    return
  fi
  dnsperf -m "$mode" -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$secs" -c "$CLIENTS" \
    -q "$OUTSTANDING" ${rate:+-Q $rate} -v 2>/dev/null >"$work/dnsperf.out" || true
  local p99
  p99=$(awk '/^> / {print $NF}' "$work/dnsperf.out" | sort -g |
    awk '{a[NR]=$1} END {if (!NR) {print "nan"; exit}
         i=int(NR*0.99+0.5); if (i < 1) i=1; printf "%.3f", a[i]*1000}')
  # The first "Average Latency" is the queries'; the second, the connections'.
  awk -v p99="$p99" '/Queries lost:/ {lost=$3} /Queries per second:/ {qps=$4}
       /Average Latency/ && !lat {lat=$4*1000}
       END {printf "%.0f %s %.3f %s\n", qps, lost, lat, p99}' "$work/dnsperf.out"
}

# CPU ticks (user + system) of a process so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# RSS of a process in MiB.
rss() { awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# The idle client: opens N DoT connections (ALPN dot, 100 handshakes at a time), prints
# "opened failed", then holds them, silent, until its stdin closes.
cat >"$work/idle.py" <<'PY'
import asyncio, ssl, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["dot"])
async def main():
    gate, conns, failed = asyncio.Semaphore(100), [], 0
    async def one():
        nonlocal failed
        async with gate:
            try:
                _, w = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx), 60)
                conns.append(w)
            except Exception:
                failed += 1
    await asyncio.gather(*(one() for _ in range(n)))
    print(len(conns), failed, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
PY

# Idle DoT connections against one server: prints "rss_before_mib rss_open_mib opened held".
idle() {
  local pid=$1 port=$2 before opened failed held open_rss
  before=$(rss "$pid")
  coproc IDLE { exec python3 "$work/idle.py" 127.0.0.1 "$port" "$IDLE_CONNS"; }
  local idle_pid=$IDLE_PID
  read -r opened failed <&"${IDLE[0]}"
  sleep 3
  held=$(ss -Htn state established "( sport = :$port )" | wc -l)
  open_rss=$(rss "$pid")
  local to_client=${IDLE[1]}
  exec {to_client}>&-
  wait "$idle_pid" || true
  echo "$before $open_rss $opened $held"
}

declare -A results
for round in $(seq 1 "$ROUNDS"); do
  for mode in dot doh; do
    for server in fraudwall unbound; do
      if [ "$server" = fraudwall ]; then port=$([ $mode = dot ] && echo $FW_DOT || echo $FW_DOH)
      else port=$([ $mode = dot ] && echo $UB_DOT || echo $UB_DOH); fi
      r=$(run "$mode" "$port")
      echo "round $round $mode $server: qps lost avg_ms p99_ms = $r" >&2
      results[$mode.$server]+="$r"$'\n'
    done
  done
done

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-5s %-10s %10s %8s %10s %10s\n' mode server qps lost avg_ms p99_ms
for mode in dot doh; do
  for server in fraudwall unbound; do
    rows=${results[$mode.$server]}
    qps=$(printf '%s' "$rows" | awk '{print $1}' | median)
    lost=$(printf '%s' "$rows" | awk '{print $2}' | median)
    lat=$(printf '%s' "$rows" | awk '{print $3}' | median)
    p99=$(printf '%s' "$rows" | awk '{print $4}' | median)
    printf '%-5s %-10s %10s %8s %10s %10s\n' "$mode" "$server" "$qps" "$lost" "$lat" "$p99"
    eval "q_${mode}_${server}=$qps"
  done
  awk -v f="$(eval echo \$q_${mode}_fraudwall)" -v u="$(eval echo \$q_${mode}_unbound)" -v m="$mode" \
    'BEGIN { if (u > 0) printf "%s QPS ratio fraudwall / unbound: %.2f\n", m, f / u }'
done

# CPU per answered query at RATE, each server and transport once (fraudwall first).
hz=$(getconf CLK_TCK)
printf '\n%-5s %-10s %10s %10s %12s   (offered %s QPS for %s s)\n' mode server qps p99_ms cpu_us_per_q "$RATE" "$RATE_SECS"
for mode in dot doh; do
  for server in fraudwall unbound; do
    if [ "$server" = fraudwall ]; then pid=${pids[0]}; port=$([ $mode = dot ] && echo $FW_DOT || echo $FW_DOH)
    else pid=${pids[1]}; port=$([ $mode = dot ] && echo $UB_DOT || echo $UB_DOH); fi
    t0=$(ticks "$pid")
    read -r qps lost lat p99 < <(run "$mode" "$port" "$RATE" "$RATE_SECS")
    t1=$(ticks "$pid")
    cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$(awk -v q="$qps" -v s="$RATE_SECS" 'BEGIN {print q * s}')" \
      'BEGIN {printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0)}')
    printf '%-5s %-10s %10s %10s %12s\n' "$mode" "$server" "$qps" "$p99" "$cpu"
    eval "c_${mode}_${server}=$cpu"
  done
  awk -v f="$(eval echo \$c_${mode}_fraudwall)" -v u="$(eval echo \$c_${mode}_unbound)" -v m="$mode" \
    'BEGIN { if (u > 0) printf "%s CPU per query ratio fraudwall / unbound: %.2f\n", m, f / u }'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Idle connections last: fraudwall first (the instance that served the load), then the DoT-only
# Unbound, each alone.
fw_pid=${pids[0]}
kill "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
unbound -c "$work/unbound-idle.conf" 2>"$work/unbound-idle.log" &
pids+=($!)
ub_pid=$!
read -r fb fo fn fh < <(idle "$fw_pid" "$FW_DOT")
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$UB_DOT") 2>/dev/null && break
  sleep 0.2
done
sleep 1
read -r ub uo un uh < <(idle "$ub_pid" "$UB_DOT")
printf '\n%-10s %12s %14s %8s %6s\n' server rss_mib "rss_idle_mib" opened held
printf '%-10s %12s %14s %8s %6s\n' fraudwall "$fb" "$fo" "$fn" "$fh" unbound "$ub" "$uo" "$un" "$uh"
echo "(unbound: a fresh DoT-only instance, incoming-num-tcp $ub_idle_tcp; fraudwall: after the load)"
awk -v fb="$fb" -v fo="$fo" -v ub="$ub" -v uo="$uo" -v n="$IDLE_CONNS" 'BEGIN {
  printf "RSS growth per idle DoT connection (KiB): fraudwall %.1f, unbound %.1f\n",
    (fo - fb) * 1024 / n, (uo - ub) * 1024 / n }'
