#!/usr/bin/env bash
# Cache-miss bench (issue #15): fraudwall and, in the same run, Unbound from Debian, each freshly
# started for every measurement, resolving a generated loopback DNS hierarchy on 127.55.0.0/16
# (benches/recursion/gen.py: root, com/net/org, ~400 second-level zones signed with NSEC or NSEC3
# or unsigned, hosting providers, CNAME chains across zones, slow servers behind 50..200 ms delay
# proxies, half-silent zones whose first server never answers, a wildcard zone, a silent zone).
#
#   benches/recursion.sh                  # full figures (~13-15 min on 2 vCPUs)
#   QUICK=1 benches/recursion.sh          # smaller sizes, one round (~2.5 min)
#   PHASES="cold flood" benches/recursion.sh
#   FW_BIN=/path/to/fraudwall benches/recursion.sh     # a prebuilt binary instead of this tree's
#   FW_RESOLVER_YAML='  max_inflight: 20000' benches/recursion.sh   # extra lines under resolver:
#
# Phases (each server starts fresh for each measurement; the servers alternate):
#   cold    every name of the cold set once (COLD_OUTSTANDING at a time, from 127.0.0.2):
#           p50/p90 latency (a lost query or a SERVFAIL ranks as the timeout), CPU per name (user+sys of the
#           server process from /proc/PID/stat), upstream queries per name (what the name servers
#           received: NSD statistics over nsd-control + the silent servers' count), RSS growth per
#           name; median of ROUNDS alternating rounds; and what the NSDs received, by query type.
#   flood   after FLOOD_WARM random names under nsec-flood.com (NSEC) have cached its NSEC chain,
#           FLOOD_QUERIES new random names at FLOOD_QPS: upstream queries per flood query, the
#           share answered without going upstream ((answered - upstream queries) / sent), CPU per
#           flood query, latency, QPS reached; then the same under nsec3-flood.net (NSEC3, no
#           opt-out).
#   silent  SILENT_COLD_NAMES cold names from a second client (127.0.0.2) alone, then on a fresh
#           server while SILENT_QPS random names under silent.com (servers that never answer)
#           come from 127.0.0.1: the second client's p50 with / without the flood, its lost and
#           SERVFAIL answers, the flood's fate, RSS.
#   stream  STREAM_NAMES distinct names under the wildcard zone stream.org, STREAM_OUTSTANDING at a
#           time: RSS at the end and at its peak, against MEM_MIB (fraudwall's
#           resolver.cache.max_mib; Unbound's msg-cache + rrset-cache) plus the base (RSS after
#           start).
# Prints each phase's figures as it goes, then one table: figure, Unbound, fraudwall, ratio
# fraudwall ÷ Unbound, the issue's target.
#
# Both get SERVER_THREADS threads (fraudwall server.udp_workers; Unbound num-threads, slabs),
# log at warn / verbosity 1. The hierarchy is generated once into target/recursion-bench/net and
# reused while its ZONES/SEED match and its signatures have > 20 days left (REGEN=1 redoes it).
# Needs root (binds port 53 on 127.55.x.y; never touches 127.53.0.0/16, the test suite's
# fakenet). Sends nothing outside 127.0.0.0/8; answer data is 198.18.0.0/15 and 2001:db8::/32.
# Everything it started (NSDs, netsim, Unbound, fraudwall, dnsperf) is stopped on exit or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
q() { if [ "$QUICK" = 1 ]; then echo "$1"; else echo "$2"; fi; }
PHASES=${PHASES:-cold flood silent stream}
ZONES=${ZONES:-400}
SEED=${SEED:-1}
ROUNDS=${ROUNDS:-$(q 1 3)}
COLD_NAMES=${COLD_NAMES:-$(q 3000 0)}            # 0: the whole cold set
COLD_OUTSTANDING=${COLD_OUTSTANDING:-20}
FLOOD_WARM=${FLOOD_WARM:-2000}
FLOOD_QUERIES=${FLOOD_QUERIES:-$(q 20000 100000)}
FLOOD_QPS=${FLOOD_QPS:-4000}
SILENT_QPS=${SILENT_QPS:-3000}
SILENT_COLD_NAMES=${SILENT_COLD_NAMES:-$(q 1000 2000)}
SILENT_LEAD=${SILENT_LEAD:-3}                    # seconds of flood before the second client starts
SILENT_SECS=${SILENT_SECS:-$(q 15 30)}           # seconds of flood in all
STREAM_NAMES=${STREAM_NAMES:-$(q 100000 1000000)}
STREAM_OUTSTANDING=${STREAM_OUTSTANDING:-200}
STREAM_RSS_LIMIT_MIB=${STREAM_RSS_LIMIT_MIB:-6144}  # a server past this is stopped (shared machine)
MEM_MIB=${MEM_MIB:-64}
SERVER_THREADS=${SERVER_THREADS:-2}
FW_PORT=${FW_PORT:-5381}
UB_PORT=${UB_PORT:-5382}
FW_BIN=${FW_BIN:-}
FW_RESOLVER_YAML=${FW_RESOLVER_YAML:-}
REGEN=${REGEN:-0}

for tool in dnsperf unbound nsd nsd-control dig ldns-signzone ldns-keygen python3 flock; do
  command -v "$tool" >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq dnsperf unbound nsd dnsutils ldnsutils python3 util-linux >/dev/null
    # Debian starts the packaged daemons; this bench runs its own
    systemctl disable --now nsd unbound >/dev/null 2>&1 || true
    break
  }
done
[ -x ../shared/tools/offbox-guard.sh ] && ../shared/tools/offbox-guard.sh >/dev/null

work=$(pwd)/target/recursion-bench
net=$work/net
mkdir -p "$work"
# One run of this bench at a time (the addresses are fixed).
exec 8>"$work/.lock"
flock -n 8 || { echo "recursion.sh: another run holds $work/.lock" >&2; exit 1; }

if [ -z "$FW_BIN" ]; then
  cargo build --release --quiet
  FW_BIN=$(pwd)/target/release/fraudwall
fi

# Everything this run starts, by pid; each is cleared when it is stopped, so that cleanup never
# signals a pid that may have been reused.
srv_pid= flood_pid= netsim_pid=
nsd_pids=()
cleanup() {
  local p alive
  for p in $srv_pid $flood_pid $netsim_pid "${nsd_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # NSD takes ~1-2 s on SIGTERM; then SIGKILL it and its children (server, xfrd)
  for _ in $(seq 30); do
    alive=0
    for p in $srv_pid $flood_pid $netsim_pid "${nsd_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in $srv_pid $flood_pid $netsim_pid "${nsd_pids[@]}"; do
    kill -0 "$p" 2>/dev/null || continue
    pkill -9 -P "$p" 2>/dev/null || true
    kill -9 "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

calc() { awk "BEGIN { print $1 }"; }
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# --- the hierarchy ----------------------------------------------------------------------------
fresh_net() {
  [ "$REGEN" = 1 ] && return 1
  [ -f "$net/stamp" ] || return 1
  local signed
  signed=$(sed -n "s/^zones=$ZONES seed=$SEED signed=\([0-9]*\)$/\1/p" "$net/stamp")
  [ -n "$signed" ] && [ $(($(date +%s) - signed)) -lt $((10 * 86400)) ]
}
if dig +norec +tries=1 +time=1 @127.55.0.1 . SOA 2>/dev/null | grep -q 'status:'; then
  echo "recursion.sh: something already answers on 127.55.0.1:53; stop it first" >&2; exit 1
fi
if ! fresh_net; then
  rm -rf "$net"
  python3 benches/recursion/gen.py net "$net" --zones "$ZONES" --seed "$SEED"
fi
echo "hierarchy: $(cat "$net/summary")"

NSDS="root tld a b slow"
for i in $NSDS; do
  rm -f "$net/nsd/$i/nsd.pid" "$net/nsd/$i/nsd.ctl"
  nsd -d -c "$net/nsd/$i/nsd.conf" </dev/null >>"$net/nsd/$i/nsd.log" 2>&1 8>&- &
  nsd_pids+=($!)
done
rm -f "$net/counts.json"
python3 benches/recursion/netsim.py "$net/netsim.json" "$net/counts.json" 8>&- 2>"$net/netsim.log" &
netsim_pid=$!
for _ in $(seq 100); do
  ok=1
  for a in 127.55.0.1 127.55.1.1 127.55.1.3 127.55.1.4 127.55.2.1 127.55.3.1; do
    dig +norec +tries=1 +time=1 @"$a" . SOA 2>/dev/null | grep -q 'status:' || ok=0
  done
  for i in $NSDS; do [ -S "$net/nsd/$i/nsd.ctl" ] || ok=0; done
  [ -f "$net/counts.json" ] || ok=0
  [ "$ok" = 1 ] && break
  sleep 0.2
done
[ "$ok" = 1 ] || { echo "recursion.sh: the hierarchy did not come up (see $net/nsd/*/nsd.log, $net/netsim.log)" >&2; exit 1; }

# Queries the name servers have received so far: every NSD's num.queries (the slow servers'
# through their backend NSD) plus what the silent servers read.
upstream() {
  local n=0 i seq
  for i in $NSDS; do
    n=$((n + $(nsd-control -c "$net/nsd/$i/nsd.conf" stats_noreset | sed -n 's/^num.queries=//p')))
  done
  seq=$(sed 's/.*"seq": \([0-9]*\).*/\1/' "$net/counts.json")
  kill -USR1 "$netsim_pid"
  for _ in $(seq 100); do
    [ "$(sed 's/.*"seq": \([0-9]*\).*/\1/' "$net/counts.json")" != "$seq" ] && break
    sleep 0.01
  done
  echo $((n + $(sed 's/.*"silent": \([0-9]*\).*/\1/' "$net/counts.json")))
}

# Queries the NSDs have received so far by type, "TYPE=n" lines (silent servers not included).
upstream_types() {
  local i
  for i in $NSDS; do nsd-control -c "$net/nsd/$i/nsd.conf" stats_noreset; done |
    awk -F= '/^num\.type\./ { t[substr($1, 10)] += $2 } END { for (k in t) print k "=" t[k] }'
}
# types_delta BEFORE AFTER → "A 123, NS 45, ..." (largest first)
types_delta() {
  awk -F= 'NR == FNR { b[$1] = $2; next } { d = $2 - b[$1]; if (d > 0) print d, $1 }' "$1" "$2" |
    sort -rn | awk '{ printf "%s%s %d", (NR > 1 ? ", " : ""), $2, $1 } END { print "" }'
}

# --- the two servers ----------------------------------------------------------------------------
mkdir -p "$work/lists" "$work/unbound"
echo "ready.recursion-bench.test" >"$work/lists/bench.txt"
cat >"$work/fraudwall.yaml" <<EOF
listen: ["127.0.0.1:$FW_PORT"]
resolver:
  root_hints: $net/root.hints
  trust_anchor: $net/root.anchor
  allow_private_servers: true
  cache:
    max_mib: $MEM_MIB
$FW_RESOLVER_YAML
blocklists:
  dir: $work/lists
  state_dir: $work/fw-state
server:
  udp_workers: $SERVER_THREADS
log:
  level: warn
metrics:
  listen: null
warning_page:
  listen: []
events:
  target: $work/events.jsonl
EOF
sed -e "s|@PORT@|$UB_PORT|g" -e "s|@DIR@|$work/unbound|g" -e "s|@NET@|$net|g" \
  -e "s|@THREADS@|$SERVER_THREADS|g" -e "s|@MSG_MIB@|$((MEM_MIB / 3))|g" \
  -e "s|@RRSET_MIB@|$((MEM_MIB - MEM_MIB / 3))|g" benches/recursion/unbound.conf.in >"$work/unbound/unbound.conf"
unbound-checkconf "$work/unbound/unbound.conf" >/dev/null
"$FW_BIN" config check "$work/fraudwall.yaml" >/dev/null

port_of() { if [ "$1" = fw ]; then echo "$FW_PORT"; else echo "$UB_PORT"; fi; }
# start ub|fw: a fresh server; sets srv_pid. Ready when it answers the listed name (locally).
start() {
  local port
  port=$(port_of "$1")
  if [ "$1" = fw ]; then
    rm -rf "$work/fw-state"
    "$FW_BIN" serve --config "$work/fraudwall.yaml" </dev/null 2>>"$work/fraudwall.log" 8>&- &
  else
    unbound -d -c "$work/unbound/unbound.conf" </dev/null >>"$work/unbound/unbound.log" 2>&1 8>&- &
  fi
  srv_pid=$!
  for _ in $(seq 100); do
    dig +short +tries=1 +time=1 -p "$port" @127.0.0.1 ready.recursion-bench.test >/dev/null 2>&1 && {
      settle
      return 0
    }
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "recursion.sh: $1 did not start (see $work/fraudwall.log, $work/unbound/unbound.log)" >&2
  exit 1
}
# Waits (up to 3 s) until the server's RSS holds still for 0.4 s: what a start finishes after the
# first answer (the first query's code paths paged in, threads started, lists compiled) is not
# growth caused by the names that follow.
settle() {
  local a b
  a=$(rss_kb "$srv_pid")
  for _ in $(seq 15); do
    sleep 0.2
    b=$(rss_kb "$srv_pid")
    [ "$a" = "$b" ] && { sleep 0.2; [ "$(rss_kb "$srv_pid")" = "$b" ] && return 0; }
    a=$b
  done
}
stop() {
  kill "$srv_pid" 2>/dev/null || true
  wait "$srv_pid" 2>/dev/null || true
  srv_pid=
}
name_of() { if [ "$1" = fw ]; then echo fraudwall; else echo unbound; fi; }

# dnsperf -v output → "p50_ms p90_ms sent lost noerror nxdomain servfail": a lost query and a
# SERVFAIL count as the timeout ($2 s) in the percentiles (a failure is never a fast answer).
latencies() {
  local counts
  counts=$(awk '/^> / && $2 != "T" { n++; rc[$2]++ } /Queries sent:/ { sent = $3 }
    END { printf "%d %d %d %d %d\n", sent, sent - n, rc["NOERROR"], rc["NXDOMAIN"], rc["SERVFAIL"] }' "$1")
  { awk '/^> / && $2 != "T" && $2 != "SERVFAIL" { print $NF * 1000 }' "$1"
    awk -v t="$2" '{ for (i = 0; i < $2 + $5; i++) print t * 1000 }' <<<"$counts"; } | sort -n |
    awk '{ v[NR] = $1 } END { printf "%.2f %.2f ", v[int(NR * 0.5 + 0.5)], v[int(NR * 0.9 + 0.5)] }'
  echo "$counts"
}
# dnsperf summary → "sent completed lost avg_ms qps noerror nxdomain servfail"; lost = sent - completed
# (also what was still outstanding when dnsperf was stopped)
summary() {
  awk '
    /Queries sent:/ { sent = $3 }
    /Queries completed:/ { done = $3 }
    /Queries lost:/ { lost = $3 }
    /Queries per second:/ { qps = $4 }
    /Average Latency/ { avg = $4 * 1000 }
    /Response codes:/ { sub(/.*Response codes: */, ""); n = split($0, f, /[ ,]+/);
      for (i = 1; i < n; i++) if (f[i] ~ /^[A-Z]+$/) rc[f[i]] = f[i + 1] }
    END { printf "%d %d %d %.3f %.0f %d %d %d\n", sent, done, sent - done, avg, qps,
      rc["NOERROR"], rc["NXDOMAIN"], rc["SERVFAIL"] }' "$1"
}
# median of each column of the lines on stdin
median_cols() {
  local f i nf out=()
  f=$(mktemp)
  cat >"$f"
  nf=$(awk '{ print NF; exit }' "$f")
  for i in $(seq "$nf"); do
    out+=("$(awk -v i="$i" '{ print $i }' "$f" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')")
  done
  rm -f "$f"
  echo "${out[*]}"
}

declare -A R   # results: R[figure,ub|fw]
row() { R["$1,$2"]=$3; }

# --- cold ---------------------------------------------------------------------------------------
if [ "$COLD_NAMES" -gt 0 ]; then head -n "$COLD_NAMES" "$net/cold.txt" >"$work/cold.txt"; else cp "$net/cold.txt" "$work/cold.txt"; fi
COLD_N=$(wc -l <"$work/cold.txt")
COLD_TIMEOUT=15

# cold_run ub|fw FILE → "p50 p90 sent lost noerror nxdomain servfail cpu_us_per up_per rss_kb_per secs"
cold_run() {
  local s=$1 file=$2 u0 u1 c0 c1 r0 r1 t0 t1 n
  n=$(wc -l <"$file")
  upstream_types >"$work/types0"
  u0=$(upstream)
  start "$s"
  c0=$(cpu_ticks "$srv_pid"); r0=$(rss_kb "$srv_pid"); t0=$(date +%s.%N)
  dnsperf -s 127.0.0.1 -a 127.0.0.2 -p "$(port_of "$s")" -d "$file" -n 1 -q "$COLD_OUTSTANDING" \
    -t "$COLD_TIMEOUT" -v >"$work/cold-$s.out" 2>&1 || true
  t1=$(date +%s.%N); c1=$(cpu_ticks "$srv_pid"); r1=$(rss_kb "$srv_pid")
  stop
  sleep 0.2
  u1=$(upstream)
  upstream_types >"$work/types1"
  types_delta "$work/types0" "$work/types1" >"$work/cold-$s.types"
  echo "$(latencies "$work/cold-$s.out" "$COLD_TIMEOUT") $(calc "int(($c1 - $c0) * $TICK_US / $n * 10 + 0.5) / 10") \
$(calc "int(($u1 - $u0) / $n * 1000 + 0.5) / 1000") $(calc "int(($r1 - $r0) / $n * 100 + 0.5) / 100") $(calc "int(($t1 - $t0) * 10 + 0.5) / 10")"
}

if [[ " $PHASES " == *" cold "* ]]; then
  echo
  echo "== cold: $COLD_N distinct names once each ($COLD_OUTSTANDING outstanding), $ROUNDS round(s), fresh servers"
  echo "   per round: p50_ms p90_ms sent lost NOERROR NXDOMAIN SERVFAIL cpu_us/name upstream/name rss_kb/name secs"
  : >"$work/cold-ub.runs"; : >"$work/cold-fw.runs"
  for r in $(seq "$ROUNDS"); do
    for s in ub fw; do
      cold_run "$s" "$work/cold.txt" >"$work/line"   # not in $(...): Ctrl-C stops the run at once
      line=$(cat "$work/line")
      echo "$line" >>"$work/cold-$s.runs"
      printf '   round %d %-9s %s\n' "$r" "$(name_of "$s")" "$line"
    done
  done
  for s in ub fw; do
    printf '   queries the NSDs received by type, last round, %-9s %s\n' "$(name_of "$s"):" "$(cat "$work/cold-$s.types")"
  done
  for s in ub fw; do
    read -r p50 p90 _ lost nok nnx nsf cpu up rss secs < <(median_cols <"$work/cold-$s.runs")
    row "cold p50 ms" "$s" "$p50"; row "cold p90 ms" "$s" "$p90"
    row "cold CPU µs per name" "$s" "$cpu"; row "cold upstream queries per name" "$s" "$up"
    row "cold RSS growth KB per name" "$s" "$rss"; row "cold lost / SERVFAIL" "$s" "$lost / $nsf"
    row "cold total CPU s" "$s" "$(calc "int($cpu * $COLD_N / 1e4 + 0.5) / 100")"
  done
fi

# --- flood under a signed zone ------------------------------------------------------------------
# flood_run ub|fw ZONE → "sent completed lost avg_ms qps noerror nxdomain servfail up_per cpu_us_per warm_up_per"
flood_run() {
  local s=$1 zone=$2 u0 u1 u2 c0 c1
  start "$s"
  u0=$(upstream)
  dnsperf -s 127.0.0.1 -p "$(port_of "$s")" -d "$work/warm-$zone.txt" -n 1 -Q 1000 -q 100 -t 5 \
    >"$work/warm.out" 2>&1 || true
  sleep 0.5
  u1=$(upstream); c0=$(cpu_ticks "$srv_pid")
  dnsperf -s 127.0.0.1 -p "$(port_of "$s")" -d "$work/flood-$zone.txt" -n 1 -Q "$FLOOD_QPS" -q 2000 \
    -c 4 -t 5 >"$work/flood-$s.out" 2>&1 || true
  c1=$(cpu_ticks "$srv_pid")
  sleep 0.5
  u2=$(upstream)
  stop
  echo "$(summary "$work/flood-$s.out") $(calc "int(($u2 - $u1) / $FLOOD_QUERIES * 10000 + 0.5) / 10000") \
$(calc "int(($c1 - $c0) * $TICK_US / $FLOOD_QUERIES * 10 + 0.5) / 10") $(calc "int(($u1 - $u0) / $FLOOD_WARM * 1000 + 0.5) / 1000")"
}
if [[ " $PHASES " == *" flood "* ]]; then
  for zone in nsec-flood.com nsec3-flood.net; do
    python3 benches/recursion/gen.py names "$zone" "$FLOOD_WARM" 101 >"$work/warm-$zone.txt"
    python3 benches/recursion/gen.py names "$zone" "$FLOOD_QUERIES" 102 >"$work/flood-$zone.txt"
    echo
    echo "== flood: $FLOOD_QUERIES random names under $zone at $FLOOD_QPS QPS, after $FLOOD_WARM random names cached its chain"
    echo "   sent completed lost avg_ms qps NOERROR NXDOMAIN SERVFAIL upstream/query cpu_us/query upstream/warm-name"
    tag=NSEC; [ "$zone" = nsec3-flood.net ] && tag=NSEC3
    for s in ub fw; do
      flood_run "$s" "$zone" >"$work/line"
      line=$(cat "$work/line")
      printf '   %-9s %s\n' "$(name_of "$s")" "$line"
      read -r sent done lost avg qps _ _ nsf up cpu _ <<<"$line"
      # answered, less one per upstream query, over the queries sent (never below 0)
      row "$tag flood: answered without upstream %" "$s" \
        "$(calc "int(($done - $up * $FLOOD_QUERIES > 0 ? ($done - $up * $FLOOD_QUERIES) / $sent : 0) * 1000 + 0.5) / 10")"
      row "$tag flood: upstream queries per query" "$s" "$up"
      row "$tag flood: CPU µs per query" "$s" "$cpu"
      row "$tag flood: avg latency ms" "$s" "$avg"
      row "$tag flood: QPS achieved" "$s" "$qps"
      row "$tag flood: lost / SERVFAIL" "$s" "$lost / $nsf"
    done
  done
fi

# --- silent-zone flood --------------------------------------------------------------------------
if [[ " $PHASES " == *" silent "* ]]; then
  head -n "$SILENT_COLD_NAMES" "$net/cold.txt" >"$work/silent-cold.txt"
  python3 benches/recursion/gen.py names silent.com $((SILENT_QPS * SILENT_SECS)) 103 >"$work/silent-flood.txt"
  echo
  echo "== silent: $SILENT_COLD_NAMES cold names from 127.0.0.2 ($COLD_OUTSTANDING outstanding), alone, and ${SILENT_LEAD}s into ${SILENT_SECS}s of $SILENT_QPS QPS of random names under silent.com from 127.0.0.1"
  echo "   second client: p50_ms p90_ms sent lost NOERROR NXDOMAIN SERVFAIL; flood: sent answered unanswered avg_ms qps NOERROR NXDOMAIN SERVFAIL; RSS MiB start/end/peak"
  for s in ub fw; do
    port=$(port_of "$s")
    start "$s"
    dnsperf -s 127.0.0.1 -a 127.0.0.2 -p "$port" -d "$work/silent-cold.txt" -n 1 -q "$COLD_OUTSTANDING" \
      -t "$COLD_TIMEOUT" -v >"$work/silent-alone-$s.out" 2>&1 || true
    stop
    alone=$(latencies "$work/silent-alone-$s.out" "$COLD_TIMEOUT")
    start "$s"
    r0=$(rss_kb "$srv_pid")
    dnsperf -s 127.0.0.1 -p "$port" -d "$work/silent-flood.txt" -n 1 -l "$SILENT_SECS" -Q "$SILENT_QPS" \
      -q 60000 -c 8 -t 5 >"$work/silent-flood-$s.out" 2>&1 8>&- &
    flood_pid=$!
    sleep "$SILENT_LEAD"
    dnsperf -s 127.0.0.1 -a 127.0.0.2 -p "$port" -d "$work/silent-cold.txt" -n 1 -q "$COLD_OUTSTANDING" \
      -t "$COLD_TIMEOUT" -v >"$work/silent-under-$s.out" 2>&1 || true
    kill -0 "$flood_pid" 2>/dev/null || echo "   note: the flood ended before the second client did (raise SILENT_SECS)"
    wait "$flood_pid" 2>/dev/null || true
    flood_pid=
    r1=$(rss_kb "$srv_pid"); hwm=$(hwm_kb "$srv_pid")
    stop
    under=$(latencies "$work/silent-under-$s.out" "$COLD_TIMEOUT")
    flood=$(summary "$work/silent-flood-$s.out")
    printf '   %-9s alone %s | under flood %s | flood %s | RSS %.1f %.1f %.1f\n' "$(name_of "$s")" \
      "$alone" "$under" "$flood" "$(calc "$r0/1024")" "$(calc "$r1/1024")" "$(calc "$hwm/1024")"
    read -r a50 _ _ _ _ _ _ <<<"$alone"
    read -r u50 _ _ ulost _ _ usf <<<"$under"
    read -r fsent fdone _ _ _ _ _ _ <<<"$flood"
    row "silent: 2nd client p50 ms alone" "$s" "$a50"
    row "silent: 2nd client p50 ms under flood" "$s" "$u50"
    row "silent: 2nd client p50 under ÷ alone" "$s" "$(calc "int($u50 / $a50 * 100 + 0.5) / 100")"
    row "silent: 2nd client lost / SERVFAIL under flood" "$s" "$ulost / $usf"
    row "silent: flood queries answered %" "$s" "$(calc "int($fdone / $fsent * 1000 + 0.5) / 10")"
    row "silent: RSS MiB at the end (peak)" "$s" "$(calc "int($r1/102.4)/10") ($(calc "int($hwm/102.4)/10"))"
  done
fi

# --- stream of distinct names -------------------------------------------------------------------
if [[ " $PHASES " == *" stream "* ]]; then
  python3 benches/recursion/gen.py names stream.org "$STREAM_NAMES" 104 >"$work/stream.txt"
  echo
  echo "== stream: $STREAM_NAMES distinct names under the wildcard zone stream.org ($STREAM_OUTSTANDING outstanding); memory bound $MEM_MIB MiB"
  echo "   sent completed lost avg_ms qps NOERROR NXDOMAIN SERVFAIL; RSS MiB base/end/peak"
  for s in ub fw; do
    start "$s"
    r0=$(rss_kb "$srv_pid")
    dnsperf -s 127.0.0.1 -p "$(port_of "$s")" -d "$work/stream.txt" -n 1 -q "$STREAM_OUTSTANDING" -c 4 \
      -t 5 >"$work/stream-$s.out" 2>&1 8>&- &
    flood_pid=$!
    while kill -0 "$flood_pid" 2>/dev/null; do
      if [ "$(rss_kb "$srv_pid")" -gt $((STREAM_RSS_LIMIT_MIB * 1024)) ]; then
        echo "   note: $(name_of "$s") passed STREAM_RSS_LIMIT_MIB=$STREAM_RSS_LIMIT_MIB; stream stopped there"
        kill -INT "$flood_pid"
        break
      fi
      sleep 1
    done
    wait "$flood_pid" 2>/dev/null || true
    flood_pid=
    r1=$(rss_kb "$srv_pid"); hwm=$(hwm_kb "$srv_pid")
    stop
    line=$(summary "$work/stream-$s.out")
    printf '   %-9s %s; RSS %.1f %.1f %.1f\n' "$(name_of "$s")" "$line" "$(calc "$r0/1024")" "$(calc "$r1/1024")" "$(calc "$hwm/1024")"
    read -r sent done lost _ qps _ _ nsf <<<"$line"
    row "stream: names answered" "$s" "$done"
    row "stream: RSS MiB base" "$s" "$(calc "int($r0/102.4)/10")"
    row "stream: RSS MiB at the end" "$s" "$(calc "int($r1/102.4)/10")"
    row "stream: RSS MiB peak" "$s" "$(calc "int($hwm/102.4)/10")"
    row "stream: (end − base) ÷ bound" "$s" "$(calc "int(($r1 - $r0) / 1024 / $MEM_MIB * 100 + 0.5) / 100")"
    row "stream: QPS" "$s" "$qps"
    row "stream: lost / SERVFAIL" "$s" "$lost / $nsf"
  done
fi

# --- the table ----------------------------------------------------------------------------------
target() {
  case $1 in
    "cold p50 ms" | "cold p90 ms" | "cold CPU µs per name") echo "≤ 1.2×" ;;
    "cold upstream queries per name") echo "≤ 1.1×" ;;
    "cold RSS growth KB per name") echo "≤ 1.5×" ;;
    "NSEC flood: answered without upstream %") echo "fw ≥ 95 %" ;;
    "NSEC flood: CPU µs per query") echo "≤ 1.5×" ;;
    "silent: 2nd client p50 under ÷ alone") echo "fw ≤ 1.5" ;;
    "silent: 2nd client lost / SERVFAIL under flood") echo "fw 0" ;;
    "silent: RSS MiB at the end (peak)") echo "fw ≤ bound + base" ;;
    "NSEC flood: QPS achieved") echo "= offered" ;;
    "stream: (end − base) ÷ bound") echo "fw ≤ 1" ;;
    *) echo "" ;;
  esac
}
echo
echo "== summary (fresh servers; ratio = fraudwall ÷ unbound; $SERVER_THREADS thread(s) each; memory bound $MEM_MIB MiB)"
printf '%-46s %14s %14s %8s  %s\n' figure unbound fraudwall ratio target
for key in "cold p50 ms" "cold p90 ms" "cold CPU µs per name" "cold total CPU s" "cold upstream queries per name" \
  "cold RSS growth KB per name" "cold lost / SERVFAIL" \
  "NSEC flood: answered without upstream %" "NSEC flood: upstream queries per query" "NSEC flood: CPU µs per query" \
  "NSEC flood: avg latency ms" "NSEC flood: QPS achieved" "NSEC flood: lost / SERVFAIL" \
  "NSEC3 flood: answered without upstream %" "NSEC3 flood: upstream queries per query" "NSEC3 flood: CPU µs per query" \
  "NSEC3 flood: avg latency ms" "NSEC3 flood: QPS achieved" "NSEC3 flood: lost / SERVFAIL" \
  "silent: 2nd client p50 ms alone" "silent: 2nd client p50 ms under flood" "silent: 2nd client p50 under ÷ alone" \
  "silent: 2nd client lost / SERVFAIL under flood" "silent: flood queries answered %" \
  "silent: RSS MiB at the end (peak)" \
  "stream: names answered" "stream: RSS MiB base" "stream: RSS MiB at the end" "stream: RSS MiB peak" "stream: (end − base) ÷ bound" \
  "stream: QPS" "stream: lost / SERVFAIL"; do
  ub=${R["$key,ub"]:-} fw=${R["$key,fw"]:-}
  [ -z "$ub$fw" ] && continue
  ratio=""
  if [[ $ub =~ ^[0-9.]+$ && $fw =~ ^[0-9.]+$ ]] && awk "BEGIN { exit !($ub > 0) }"; then
    ratio=$(printf '%.2f×' "$(calc "$fw / $ub")")
  fi
  printf '%-46s %14s %14s %8s  %s\n' "$key" "$ub" "$fw" "$ratio" "$(target "$key")"
done
