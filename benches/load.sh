#!/usr/bin/env bash
# Load test: dnsperf against fraudwall and, in the same run, against Unbound, both resolving the
# same loopback DNS hierarchy (tests/fakenet) with the same blocklist loaded (fraudwall: a plain
# list; Unbound: the same names as `local-zone: "name." always_null`).
#
#   benches/load.sh                 # 200 k-name list, 3 alternating rounds of 15 s per server,
#                                   # with 1 and then 2 server threads
#   SECONDS_PER_RUN=10 ROUNDS=5 SERVER_THREADS="2" RSS_NAMES=1000000 benches/load.sh
#   FW_BASELINE=/path/to/older/fraudwall benches/load.sh
#                                   # also runs an older build, alternating with the others in
#                                   # every round, and prints this build's ratios to it
#
# Both servers get the same thread count (fraudwall `server.udp_workers`, Unbound `num-threads`
# with matching slabs), and dnsperf runs on the same 2 vCPUs: with 1 server thread the load
# generator has a core to itself. dnsperf gets 4 MB socket buffers (-b): with the default
# 208 KB its own receive buffer overflows on bursts of answers and those count as "lost" for
# whichever server is being measured. Loss inside the server is reported separately, from the
# kernel's per-socket drop counter of the server's UDP socket(s).
#
# Workload: 95 % benign names of the hierarchy with a Zipf-like popularity skew (warm cache),
# 5 % names from the blocklist. Prints QPS, lost queries, average latency and CPU per query
# (server and dnsperf, user + system) at full load, p99 latency at a fixed rate both sustain,
# and RSS, for both servers (median of ROUNDS alternating runs), and the ratios. Then starts
# both with a 1 M-name list and compares RSS (SERVER_THREADS= runs only that).
# Needs root (fakenet binds port 53 on 127.53.0.0/16). Sends nothing outside 127.0.0.0/8.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECONDS_PER_RUN:-15}
ROUNDS=${ROUNDS:-3}
NAMES=${LIST_NAMES:-200000}
RSS_NAMES=${RSS_NAMES:-1000000}
QUERIES=${QUERIES:-200000}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
SERVER_THREADS=${SERVER_THREADS-1 2}  # empty: memory comparison only
OUTSTANDING=${OUTSTANDING:-1000}
P99_LOW=${P99_LOW:-20000}
P99_HIGH=${P99_HIGH:-60000}
FW_PORT=${FW_PORT:-5391}
UB_PORT=${UB_PORT:-5392}
BASE_PORT=${BASE_PORT:-5393}
FW_BASELINE=${FW_BASELINE:-}

for tool in dnsperf unbound nsd dig ldns-signzone /usr/bin/time; do
  command -v "$tool" >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq dnsperf unbound nsd dnsutils ldnsutils time >/dev/null
    break
  }
done
[ -x ../shared/tools/offbox-guard.sh ] && ../shared/tools/offbox-guard.sh >/dev/null

work=$(pwd)/target/loadtest
rm -rf "$work"
mkdir -p "$work/lists" "$work/lists1m"
cargo build --release --quiet
FW=$(pwd)/target/release/fraudwall

# The loopback hierarchy's addresses are shared with the tests (which leave their fakenet
# running): wait for the harness lock, then take the addresses over.
exec 9>/tmp/fakenet-harness.lock
flock -w 900 9
FAKENET_TAKEOVER=1 tests/fakenet/fakenet.sh up "$work/fakenet" >/dev/null
# shellcheck disable=SC1091
. "$work/fakenet/env"

cleanup() {
  [ -n "${fw_pid:-}" ] && kill "$fw_pid" 2>/dev/null || true
  [ -n "${base_pid:-}" ] && kill "$base_pid" 2>/dev/null || true
  tests/fakenet/unbound.sh stop "$work/fakenet" "$UB_PORT" >/dev/null 2>&1 || true
  tests/fakenet/fakenet.sh down "$work/fakenet" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Deterministic synthetic fraud names: random labels under shared-hosting style suffixes.
gen_list() {
  awk -v n="$1" -v seed="$2" 'BEGIN {
    srand(seed);
    split("000webhostapp.com weebly.com pp.ua us.kg web.app xyz top shop online site com net", sfx, " ");
    a = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (i = 0; i < n; i++) {
      l = 6 + int(rand() * 14); s = "";
      for (j = 0; j < l; j++) s = s substr(a, 1 + int(rand() * 36), 1);
      if (rand() < 0.3) s = s "-" substr(a, 1 + int(rand() * 26), 1) int(rand() * 1000);
      printf "%s%d.%s\n", s, i, sfx[1 + int(rand() * 12)];
    }
  }'
}
gen_list "$NAMES" 7 >"$work/lists/fraud.txt"
# unbound_conf THREADS LIST > conf
unbound_conf() {
  # The same socket buffers fraudwall asks for, so neither drops on bursts for lack of them.
  echo "so-rcvbuf: 4m"
  echo "so-sndbuf: 4m"
  # Unbound's own performance advice: slabs = threads, large caches, more queries per thread
  # (https://unbound.docs.nlnetlabs.nl, "Performance Tuning").
  echo "num-threads: $1"
  printf '%s\n' "msg-cache-slabs: $1" "rrset-cache-slabs: $1" "infra-cache-slabs: $1" \
    "key-cache-slabs: $1" "msg-cache-size: 64m" "rrset-cache-size: 128m" \
    "outgoing-range: 8192" "num-queries-per-thread: 4096"
  awk '{ printf "local-zone: \"%s.\" always_null\n", $0 }' "$2"
}

# Queries: 95 % benign with a Zipf-like skew over the hierarchy's load names, 5 % listed.
awk -v n="$QUERIES" -v seed=11 -v listfile="$work/lists/fraud.txt" -v benign="$QUERIES_BENIGN" 'BEGIN {
  srand(seed);
  while ((getline line < benign) > 0) b[nb++] = line;
  while ((getline line < listfile) > 0) { if (nl < 50000) l[nl++] = line }
  for (i = 0; i < n; i++) {
    if (rand() < 0.05) { printf "%s A\n", l[int(rand() * nl)] }
    else { r = rand(); k = int(nb * r * r * r); printf "%s\n", b[k] }
  }
}' >"$work/queries.txt"

# fraudwall_conf THREADS LISTDIR STATEDIR [PORT] > conf
fraudwall_conf() {
  cat <<EOF
listen: ["127.0.0.1:${4:-$FW_PORT}"]
resolver:
  root_hints: $ROOT_HINTS
  trust_anchor: $TRUST_ANCHOR
  allow_private_servers: true
blocklists:
  dir: $2
  state_dir: $3
server:
  udp_workers: $1
log:
  level: warn
EOF
}

calc() { awk "BEGIN { print $1 }"; }
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

# start_fw BINARY CONFIG PORT LOG: starts a fraudwall, waits until it answers; sets started_pid.
start_fw() {
  "$1" serve --config "$2" 2>"$4" &
  started_pid=$!
  for _ in $(seq 100); do
    dig +short +tries=1 +time=1 -p "$3" @127.0.0.1 h0.load.test >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "fraudwall ($1) did not start:" >&2; cat "$4" >&2; exit 1
}
start_fraudwall() { start_fw "$FW" "$1" "$FW_PORT" "$work/fraudwall.log"; fw_pid=$started_pid; }
stop_fraudwall() { kill "$fw_pid"; wait "$fw_pid" 2>/dev/null || true; fw_pid=; }
start_baseline() { start_fw "$FW_BASELINE" "$1" "$BASE_PORT" "$work/baseline.log"; base_pid=$started_pid; }
stop_baseline() { kill "$base_pid"; wait "$base_pid" 2>/dev/null || true; base_pid=; }

# CPU time a process has used so far: "user system" in clock ticks (all its threads).
cpu_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# dnsperf against port $1 served by pid $2 → "qps lost avg_ms server_user_us server_sys_us
# dnsperf_user_us dnsperf_sys_us", the CPU figures per completed query.
perf() {
  local before after
  before=$(cpu_ticks "$2")
  /usr/bin/time -f "CPU %U %S" dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries.txt" -l "$SECS" \
    -c "$CLIENTS" -T "$THREADS" -q "$OUTSTANDING" -t 2 -b 4096 >"$work/dnsperf.out" 2>&1
  after=$(cpu_ticks "$2")
  awk -v before="$before" -v after="$after" -v tick="$TICK_US" '
      /Queries completed:/ { done = $3 }
      /Queries lost:/ { lost = $3 }
      /Queries per second:/ { qps = $4 }
      /Average Latency/ { avg = $4 * 1000 }
      /^CPU / { gu = $2 * 1e6; gs = $3 * 1e6 }
      END {
        split(before, b, " "); split(after, a, " ");
        if (done == 0) done = 1;
        printf "%.0f %s %.3f %.2f %.2f %.2f %.2f\n", qps, lost, avg,
          (a[1] - b[1]) * tick / done, (a[2] - b[2]) * tick / done, gu / done, gs / done
      }' "$work/dnsperf.out"
}
# p99 latency in ms at a fixed offered rate ($2 QPS); queries sent but never answered count as 2 s.
p99() {
  dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries.txt" -l 5 -c 8 -T 2 -Q "$2" -v -t 2 -b 4096 2>/dev/null |
    awk '/^> / { print $NF * 1000 } /Queries sent:/ { print "sent", $3 }' | sort -n |
    awk '$1 == "sent" { sent = $2; next } { v[++n] = $1 } END {
      for (; n < sent; n++) v[n + 1] = 2000;
      if (n) printf "%.3f\n", v[int(n * 0.99)]; else print "nan" }'
}
# Datagrams the kernel dropped on the UDP socket(s) bound to port $1 (full receive buffer).
socket_drops() {
  awk -v port="$(printf ':%04X' "$1")" 'NR > 1 && substr($2, length($2) - 4) == port { d += $NF }
    END { print d + 0 }' /proc/net/udp
}
warm() { dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries.txt" -n 1 -c 4 -q 200 -t 5 >/dev/null 2>&1 || true; }

median_run() { sort -n -k1,1 | awk '{ r[NR] = $0 } END { print r[int((NR + 1) / 2)] }'; }

# compare N: the whole comparison with N server threads each.
compare() {
  local n=$1
  echo
  echo "== load: $n server thread(s) each, $NAMES-name list, $QUERIES queries (95 % benign, Zipf-skewed; 5 % listed), ${SECS}s runs, dnsperf -c $CLIENTS -T $THREADS -q $OUTSTANDING"
  unbound_conf "$n" "$work/lists/fraud.txt" >"$work/unbound-zones.conf"
  fraudwall_conf "$n" "$work/lists" "$work/state" >"$work/fraudwall.yaml"
  tests/fakenet/unbound.sh start "$work/fakenet" "$UB_PORT" "$work/unbound-zones.conf" >/dev/null
  ub_pid=$(pgrep -f "unbound -c $work/fakenet/unbound-$UB_PORT/unbound.conf" | head -1)
  start_fraudwall "$work/fraudwall.yaml"
  warm "$UB_PORT"; warm "$FW_PORT"; warm "$UB_PORT"; warm "$FW_PORT"
  if [ -n "$FW_BASELINE" ]; then
    # Its own metrics, warning page and event log, so that both run the same work.
    { fraudwall_conf "$n" "$work/lists" "$work/state-base" "$BASE_PORT"
      printf 'metrics:\n  listen: "127.0.0.1:9154"\nwarning_page:\n  listen: ["127.0.0.1:8081"]\n'
      printf 'events:\n  target: %s\n' "$work/baseline-events.jsonl"; } >"$work/baseline.yaml"
    start_baseline "$work/baseline.yaml"
    warm "$BASE_PORT"; warm "$BASE_PORT"
  fi
  local ub_drops0 fw_drops0
  ub_drops0=$(socket_drops "$UB_PORT"); fw_drops0=$(socket_drops "$FW_PORT")
  # Alternate the servers, ROUNDS times, and keep each one's median run: single runs on a
  # shared 2-core machine vary by tens of percent.
  : >"$work/ub.runs"; : >"$work/fw.runs"
  : >"$work/ub.p99"; : >"$work/fw.p99"; : >"$work/ub.p99h"; : >"$work/fw.p99h"
  : >"$work/base.runs"; : >"$work/base.p99"; : >"$work/base.p99h"
  for _ in $(seq "$ROUNDS"); do
    perf "$UB_PORT" "$ub_pid" >>"$work/ub.runs"
    perf "$FW_PORT" "$fw_pid" >>"$work/fw.runs"
    if [ -n "$FW_BASELINE" ]; then perf "$BASE_PORT" "$base_pid" >>"$work/base.runs"; fi
    p99 "$UB_PORT" "$P99_LOW" >>"$work/ub.p99"
    p99 "$FW_PORT" "$P99_LOW" >>"$work/fw.p99"
    if [ -n "$FW_BASELINE" ]; then p99 "$BASE_PORT" "$P99_LOW" >>"$work/base.p99"; fi
    p99 "$UB_PORT" "$P99_HIGH" >>"$work/ub.p99h"
    p99 "$FW_PORT" "$P99_HIGH" >>"$work/fw.p99h"
    if [ -n "$FW_BASELINE" ]; then p99 "$BASE_PORT" "$P99_HIGH" >>"$work/base.p99h"; fi
  done
  local ub_drops fw_drops
  ub_drops=$(($(socket_drops "$UB_PORT") - ub_drops0)); fw_drops=$(($(socket_drops "$FW_PORT") - fw_drops0))
  read -r ub_qps ub_lost ub_avg ub_us ub_sy ub_gu ub_gs < <(median_run <"$work/ub.runs")
  read -r fw_qps fw_lost fw_avg fw_us fw_sy fw_gu fw_gs < <(median_run <"$work/fw.runs")
  ub_p99=$(median_run <"$work/ub.p99"); fw_p99=$(median_run <"$work/fw.p99")
  ub_p99h=$(median_run <"$work/ub.p99h"); fw_p99h=$(median_run <"$work/fw.p99h")
  echo "runs (QPS lost avg_ms, then CPU µs per query: server user, server sys, dnsperf user, dnsperf sys):"
  echo "  unbound   $(tr '\n' ';' <"$work/ub.runs")"
  echo "  fraudwall $(tr '\n' ';' <"$work/fw.runs")"
  echo "p99 runs at $P99_LOW QPS (ms): unbound $(tr '\n' ' ' <"$work/ub.p99") fraudwall $(tr '\n' ' ' <"$work/fw.p99")"
  echo "p99 runs at $P99_HIGH QPS (ms): unbound $(tr '\n' ' ' <"$work/ub.p99h") fraudwall $(tr '\n' ' ' <"$work/fw.p99h")"
  ub_rss=$(rss_kb "$ub_pid"); fw_rss=$(rss_kb "$fw_pid")
  stop_fraudwall
  tests/fakenet/unbound.sh stop "$work/fakenet" "$UB_PORT" >/dev/null
  if [ -n "$FW_BASELINE" ]; then
    echo "  baseline  $(tr '\n' ';' <"$work/base.runs")"
    echo "p99 runs of the baseline (ms): at $P99_LOW $(tr '\n' ' ' <"$work/base.p99") at $P99_HIGH $(tr '\n' ' ' <"$work/base.p99h")"
    base_rss=$(rss_kb "$base_pid")
    stop_baseline
    read -r bs_qps bs_lost bs_avg bs_us bs_sy _ _ < <(median_run <"$work/base.runs")
    bs_p99=$(median_run <"$work/base.p99"); bs_p99h=$(median_run <"$work/base.p99h")
  fi

  printf '\n%-10s %8s %10s %8s %10s %14s %14s %10s\n' server threads QPS lost avg_ms "p99_ms@${P99_LOW}" "p99_ms@${P99_HIGH}" RSS_MiB
  printf '%-10s %8s %10s %8s %10s %14s %14s %10.1f\n' unbound "$n" "$ub_qps" "$ub_lost" "$ub_avg" "$ub_p99" "$ub_p99h" "$(calc "$ub_rss/1024")"
  printf '%-10s %8s %10s %8s %10s %14s %14s %10.1f\n' fraudwall "$n" "$fw_qps" "$fw_lost" "$fw_avg" "$fw_p99" "$fw_p99h" "$(calc "$fw_rss/1024")"
  if [ -n "$FW_BASELINE" ]; then
    printf '%-10s %8s %10s %8s %10s %14s %14s %10.1f\n' baseline "$n" "$bs_qps" "$bs_lost" "$bs_avg" "$bs_p99" "$bs_p99h" "$(calc "$base_rss/1024")"
    printf 'ratio fraudwall/baseline (%s thread(s)): QPS %.2fx, p99@%s %.2fx, p99@%s %.2fx, CPU per query %.2fx, RSS %.2fx\n' \
      "$n" "$(calc "$fw_qps/$bs_qps")" "$P99_LOW" "$(calc "$fw_p99/$bs_p99")" "$P99_HIGH" "$(calc "$fw_p99h/$bs_p99h")" \
      "$(calc "($fw_us+$fw_sy)/($bs_us+$bs_sy)")" "$(calc "$fw_rss/$base_rss")"
  fi
  echo "datagrams dropped by the server's own socket over all runs: unbound $ub_drops, fraudwall $fw_drops"
  # What bounds QPS on a box the load generator shares: CPU per query of each side.
  printf 'CPU µs per query at full load (median run; user+sys): unbound %.2f (%.2f+%.2f), fraudwall %.2f (%.2f+%.2f), ratio %.2fx; dnsperf %.2f with unbound, %.2f with fraudwall\n' \
    "$(calc "$ub_us+$ub_sy")" "$ub_us" "$ub_sy" "$(calc "$fw_us+$fw_sy")" "$fw_us" "$fw_sy" \
    "$(calc "($fw_us+$fw_sy)/($ub_us+$ub_sy)")" "$(calc "$ub_gu+$ub_gs")" "$(calc "$fw_gu+$fw_gs")"
  printf 'ratio fraudwall/unbound (%s thread(s)): QPS %.2fx, p99@%s %.2fx, p99@%s %.2fx, RSS %.2fx\n' \
    "$n" "$(calc "$fw_qps/$ub_qps")" "$P99_LOW" "$(calc "$fw_p99/$ub_p99")" "$P99_HIGH" "$(calc "$fw_p99h/$ub_p99h")" "$(calc "$fw_rss/$ub_rss")"
}

for n in $SERVER_THREADS; do
  compare "$n"
done

if [ "$RSS_NAMES" -gt 0 ]; then
  echo; echo "== memory: $RSS_NAMES-name list, idle after start"
  gen_list "$RSS_NAMES" 13 >"$work/lists1m/fraud.txt"
  awk '{ printf "local-zone: \"%s.\" always_null\n", $0 }' "$work/lists1m/fraud.txt" >"$work/unbound-zones-1m.conf"
  fraudwall_conf 0 "$work/lists1m" "$work/state1m" >"$work/fraudwall-1m.yaml"
  t0=$(date +%s.%N)
  tests/fakenet/unbound.sh start "$work/fakenet" "$UB_PORT" "$work/unbound-zones-1m.conf" >/dev/null
  t1=$(date +%s.%N)
  ub_pid=$(pgrep -f "unbound -c $work/fakenet/unbound-$UB_PORT/unbound.conf" | head -1)
  start_fraudwall "$work/fraudwall-1m.yaml"
  t2=$(date +%s.%N)
  ub_rss=$(rss_kb "$ub_pid"); fw_rss=$(rss_kb "$fw_pid")
  stop_fraudwall
  tests/fakenet/unbound.sh stop "$work/fakenet" "$UB_PORT" >/dev/null
  printf '%-10s %10s %12s\n' server RSS_MiB start_s
  printf '%-10s %10.1f %12.2f\n' unbound "$(calc "$ub_rss/1024")" "$(calc "$t1-$t0")"
  printf '%-10s %10.1f %12.2f\n' fraudwall "$(calc "$fw_rss/1024")" "$(calc "$t2-$t1")"
  printf 'ratio fraudwall/unbound RSS: %.3fx\n' "$(calc "$fw_rss/$ub_rss")"
fi
