#!/usr/bin/env bash
# What the PROXY protocol costs: dnsperf → dnsdist → fraudwall with dnsdist's useProxyProtocol
# (and fraudwall's proxy_protocol.from) on, and the same without, in the same run.
#
#   benches/proxy.sh                          # 5 rounds of 10 s per mode, 20 k QPS fixed rate
#   ROUNDS=7 SECONDS_PER_RUN=15 RATE=30000 benches/proxy.sh
#   FW=path/to/fraudwall benches/proxy.sh     # another build (default: release, built here)
#
# Two pairs run side by side, each a dnsdist (docker/dnsdist.conf, per-client rate limits
# lifted) in front of its own fraudwall (release build, one UDP worker, the same list): "on"
# sends PROXY v2 headers from 127.0.0.53, which its fraudwall trusts; "off" sends none. Every
# round measures both, in alternating order, so that drift on a shared machine hits both:
#   - at full load (dnsperf -c 8 -T 2 -q 500): QPS through dnsdist;
#   - at a fixed offered rate (RATE): p99 latency (unanswered queries count as 2 s) and
#     fraudwall's CPU per answered query (user + system, from /proc, all its threads).
# The workload is names from the loaded list (answered locally: sinkhole + event line), the
# case where a per-query cost shows most; resolved names would dilute it. Medians of ROUNDS and
# the ratios on/off are printed at the end. Sends nothing outside 127.0.0.0/8 (the resolver's
# root hint is a dead loopback address; dnsdist's security polling is off).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-5}
RATE=${RATE:-20000}
NAMES=${LIST_NAMES:-10000}
BASE=${PORT_BASE:-5480}
SOURCE=127.0.0.53

for tool in dnsperf dnsdist dig curl; do
  command -v "$tool" >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq dnsperf dnsdist dnsutils curl >/dev/null
    break
  }
done
[ -x ../shared/tools/offbox-guard.sh ] && ../shared/tools/offbox-guard.sh >/dev/null

work=$(pwd)/target/proxy-bench
rm -rf "$work"
mkdir -p "$work/lists"
if [ -z "${FW:-}" ]; then
  cargo build --release --quiet
  FW=$(pwd)/target/release/fraudwall
fi

awk -v n="$NAMES" 'BEGIN { for (i = 1; i <= n; i++) print "b" i ".proxy-bench.test" }' >"$work/lists/bench.txt"
awk '{ print "www." $1 " A" }' "$work/lists/bench.txt" >"$work/queries.txt"
printf '. 3600 IN NS dead.root.test.\ndead.root.test. 3600 IN A 127.0.0.254\n' >"$work/dead.hints"

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# start MODE INDEX: fraudwall on BASE+10*INDEX, its dnsdist on +2, dnsdist's web server on +3.
declare -A fw_pid dd_port dd_web
start() {
  local mode=$1 i=$2 fw_port=$((BASE + 10 * $2)) from="[]" proxy=0
  [ "$mode" = on ] && from="[\"$SOURCE/32\"]" && proxy=1
  mkdir -p "$work/$mode/state"
  cat >"$work/$mode/fraudwall.yaml" <<EOF
listen: ["127.0.0.1:$fw_port"]
resolver:
  mode: recursive
  root_hints: $work/dead.hints
  dnssec: off
  timeout_ms: 1000
  server_timeout_ms: 500
blocklists:
  dir: $work/lists
  state_dir: $work/$mode/state
sinkhole:
  ipv4: 198.18.255.1
access:
  allow: [127.0.0.0/8]
proxy_protocol:
  from: $from
server:
  udp_workers: 1
metrics:
  listen: "127.0.0.1:$((fw_port + 1))"
warning_page:
  listen: []
events:
  target: $work/$mode/blocked.jsonl
log:
  level: warn
EOF
  "$FW" serve --config "$work/$mode/fraudwall.yaml" >"$work/$mode/fraudwall.log" 2>&1 &
  fw_pid[$mode]=$!
  pids+=("$!")
  dd_port[$mode]=$((fw_port + 2))
  dd_web[$mode]=$((fw_port + 3))
  FRAUDWALL_BACKENDS="127.0.0.1:$fw_port" DNSDIST_LISTEN="127.0.0.1:${dd_port[$mode]}" \
    DNSDIST_ACL="127.0.0.0/8" DNSDIST_CLIENT_QPS=100000000 DNSDIST_CLIENT_QPS_MAX=100000000 \
    DNSDIST_WEBSERVER="127.0.0.1:${dd_web[$mode]}" DNSDIST_WEBSERVER_ACL="127.0.0.0/8" \
    DNSDIST_PROXY_PROTOCOL=$proxy DNSDIST_BACKEND_SOURCE=$SOURCE \
    dnsdist --supervised --disable-syslog -C docker/dnsdist.conf >"$work/$mode/dnsdist.log" 2>&1 &
  pids+=("$!")
}
backend_up() {
  curl -s --max-time 2 "http://127.0.0.1:${dd_web[$1]}/metrics" |
    grep -q '^dnsdist_server_status{server="fraudwall-1".*} 1$'
}

start off 0
start on 1
for mode in off on; do
  end=$((SECONDS + 60))
  until backend_up "$mode"; do
    ((SECONDS < end)) || { echo "proxy.sh: dnsdist ($mode) never saw its fraudwall up"; tail "$work/$mode"/*.log; exit 1; }
    sleep 0.5
  done
  got=$(dig @127.0.0.1 -p "${dd_port[$mode]}" +short www.b1.proxy-bench.test)
  [ "$got" = 198.18.255.1 ] || { echo "proxy.sh: $mode: got '$got'"; exit 1; }
done
# The "on" pair really carries the client: its event names dig's address, not dnsdist's.
# (Events are written off the query path: give the writer a moment.)
end=$((SECONDS + 10))
until grep -q '"client":"127.0.0.1","qname":"www.b1.proxy-bench.test"' "$work/on/blocked.jsonl" 2>/dev/null; do
  ((SECONDS < end)) || { echo "proxy.sh: the on pair's event does not name the client"; exit 1; }
  sleep 0.2
done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

full() { # MODE → QPS
  dnsperf -s 127.0.0.1 -p "${dd_port[$1]}" -d "$work/queries.txt" -l "$SECS" -c 8 -T 2 -q 500 \
    -t 2 -b 4096 2>/dev/null | awk '/Queries per second:/ { printf "%.0f\n", $4 }'
}
fixed() { # MODE → "p99_ms cpu_us_per_query"
  local before after
  before=$(cpu_ticks "${fw_pid[$1]}")
  dnsperf -s 127.0.0.1 -p "${dd_port[$1]}" -d "$work/queries.txt" -l "$SECS" -c 8 -T 2 \
    -Q "$RATE" -v -t 2 -b 4096 >"$work/fixed.out" 2>/dev/null
  after=$(cpu_ticks "${fw_pid[$1]}")
  local p99 answered
  p99=$(awk '/^> / { print $NF * 1000 } /Queries sent:/ { print "sent", $3 }' "$work/fixed.out" |
    sort -n | awk '$1 == "sent" { sent = $2; next } { v[++n] = $1 } END {
      for (; n < sent; n++) v[n + 1] = 2000;
      if (n) printf "%.3f\n", v[int(n * 0.99)]; else print "nan" }')
  answered=$(awk '/Queries completed:/ { print $3 }' "$work/fixed.out")
  awk -v p="$p99" -v cpu=$(((after - before) * TICK_US)) -v done="${answered:-0}" \
    'BEGIN { printf "%s %.2f\n", p, cpu / (done ? done : 1) }'
}

echo "== PROXY protocol on vs off: $ROUNDS rounds of ${SECS}s per mode; full load, then $RATE QPS fixed"
echo "round mode qps p99_ms(at $RATE) fraudwall_cpu_us/query(at $RATE)"
: >"$work/results"
for r in $(seq 1 "$ROUNDS"); do
  order="off on"
  ((r % 2 == 0)) && order="on off"
  for mode in $order; do
    q=$(full "$mode")
    read -r p99 cpu < <(fixed "$mode")
    echo "$r $mode $q $p99 $cpu" | tee -a "$work/results"
  done
done
for mode in on off; do
  errs=$(curl -s "http://127.0.0.1:$((BASE + 10 * $([ $mode = on ] && echo 1 || echo 0) + 1))/metrics" |
    awk '/^fraudwall_proxy_protocol_errors_total/ { s += $2 } END { print s + 0 }')
  echo "fraudwall ($mode): fraudwall_proxy_protocol_errors_total = $errs"
done
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
col() { awk -v m="$1" -v c="$2" '$2 == m { print $c }' "$work/results" | median; }
qon=$(col on 3) qoff=$(col off 3) pon=$(col on 4) poff=$(col off 4) con=$(col on 5) coff=$(col off 5)
printf 'median: off %s QPS, p99 %s ms, %s µs CPU/query; on %s QPS, p99 %s ms, %s µs CPU/query\n' \
  "$qoff" "$poff" "$coff" "$qon" "$pon" "$con"
awk -v qon="$qon" -v qoff="$qoff" -v pon="$pon" -v poff="$poff" -v con="$con" -v coff="$coff" 'BEGIN {
  printf "ratio on/off: QPS %.3fx, p99 %.3fx, fraudwall CPU per query %.3fx\n", qon / qoff, pon / poff, con / coff }'
# Per round, on/off of the CPU per query (pairs measured back to back): the spread shows the noise.
awk '{ c[$1, $2] = $5 } END { for (r = 1; c[r, "on"] != ""; r++) printf "round %d CPU on/off %.3f\n", r, c[r, "on"] / c[r, "off"] }' "$work/results"
