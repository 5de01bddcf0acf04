#!/usr/bin/env bash
# What dnstap costs: dnsperf at a fixed offered rate against one fraudwall with dnstap off and
# one with dnstap on (fstrm_capture consuming over a unix socket, writing to /dev/null), in
# alternating runs of the same round; then the same rate with the collector stalled
# (fstrm_capture SIGSTOPped after the handshake), where no answer may be lost.
#
#   benches/dnstap.sh                       # 20 k QPS, 3 rounds of 10 s per variant
#   RATE=40000 ROUNDS=5 SECONDS_PER_RUN=15 benches/dnstap.sh
#   FW=target/debug/fraudwall benches/dnstap.sh   # another build (default: release, built here)
#
# Both servers resolve the loopback hierarchy (tests/fakenet) with the same list; the query mix
# is 90 % benign names (cache hits once warm) and 10 % listed names (blocked, with a Policy).
# Per run: answered QPS, queries lost, p99 latency (from dnsperf -v; unanswered counts as 2 s)
# and the server's CPU per answered query (user + system, from /proc). Prints the medians and
# the ratios on ÷ off. Needs root (fakenet binds port 53 on 127.53.0.0/16). Sends nothing
# outside 127.0.0.0/8. Tests and benches share the loopback hierarchy's addresses: it waits for
# the harness lock (/tmp/fakenet-harness.lock) and takes them over.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-20000}
OFF_PORT=${OFF_PORT:-5394}
ON_PORT=${ON_PORT:-5395}

for tool in dnsperf fstrm_capture curl; do
  command -v "$tool" >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq dnsperf fstrm-bin curl >/dev/null
    break
  }
done
[ -x ../shared/tools/offbox-guard.sh ] && ../shared/tools/offbox-guard.sh >/dev/null

work=$(pwd)/target/dnstapbench
rm -rf "$work"
mkdir -p "$work/lists"
if [ -z "${FW:-}" ]; then
  cargo build --release --quiet
  FW=$(pwd)/target/release/fraudwall
fi

# The loopback hierarchy's addresses are shared with the tests (which leave their fakenet
# running): wait for the harness lock, then take the addresses over.
exec 9>/tmp/fakenet-harness.lock
flock -w 900 9
FAKENET_TAKEOVER=1 tests/fakenet/fakenet.sh up "$work/fakenet" >/dev/null
# shellcheck disable=SC1091
. "$work/fakenet/env"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  tests/fakenet/fakenet.sh down "$work/fakenet" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "fraud.test" >"$work/lists/fraud.txt"
# 90 % benign (cached after the first ask), 10 % listed.
{
  for i in $(seq 1 1000); do
    case $((i % 10)) in
      0) echo "n$i.fraud.test A" ;;
      1 | 4 | 7) echo "www.example.net A" ;;
      2 | 5 | 8) echo "www.insecure.org A" ;;
      *) echo "mail.example.com A" ;;
    esac
  done
} >"$work/queries.txt"

config() { # port, extra
  cat <<EOF
listen: ["127.0.0.1:$1"]
resolver:
  root_hints: $ROOT_HINTS
  trust_anchor: $TRUST_ANCHOR
  allow_private_servers: true
blocklists:
  dir: $work/lists
  lists:
    - file: fraud.txt
      name: police
sinkhole:
  ipv4: 198.18.0.53
server:
  udp_workers: 1
metrics:
  listen: "127.0.0.1:0"
warning_page:
  listen: []
events:
  target: $work/events-$1.jsonl
$2
EOF
}

fstrm_capture -t protobuf:dnstap.Dnstap -u "$work/dnstap.sock" -w /dev/null 2>"$work/capture.log" &
cap=$!
pids+=("$cap")
for _ in $(seq 100); do [ -S "$work/dnstap.sock" ] && break; sleep 0.05; done

config "$OFF_PORT" "" >"$work/off.yaml"
config "$ON_PORT" "dnstap:
  socket: $work/dnstap.sock" >"$work/on.yaml"
"$FW" serve --config "$work/off.yaml" 2>"$work/off.log" &
pids+=("$!")
off_pid=$!
"$FW" serve --config "$work/on.yaml" 2>"$work/on.log" &
pids+=("$!")
on_pid=$!
for _ in $(seq 200); do
  grep -q "dnstap: connected" "$work/on.log" && grep -q "listening on udp" "$work/off.log" && break
  sleep 0.05
done
grep -q "dnstap: connected" "$work/on.log" || { cat "$work/on.log"; exit 1; }
metrics_of() { grep -o 'metrics listening on http [0-9.:]*' "$1" | awk '{ print $NF }'; }
metric() { # log, name
  curl -s "http://$(metrics_of "$1")/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# One run at $RATE against port $1 (pid $2) → "qps lost p99_ms cpu_us_per_query".
run() {
  local before after
  before=$(cpu_ticks "$2")
  dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries.txt" -l "$SECS" -c 8 -T 2 -Q "$RATE" -v -t 2 \
    -b 4096 >"$work/dnsperf.out" 2>&1 || true
  after=$(cpu_ticks "$2")
  # Latencies sorted, unanswered queries as 2 s at the end.
  awk '/^> / { print $NF * 1000 }' "$work/dnsperf.out" | sort -n >"$work/lat"
  awk -v cpu=$(((after - before) * TICK_US)) -v lat="$work/lat" '
    /Queries sent:/ { sent = $3 }
    /Queries completed:/ { done = $3 }
    /Queries lost:/ { lost = $3 }
    /Queries per second:/ { qps = $4 }
    END {
      while ((getline l < lat) > 0) v[++n] = l;
      for (; n < sent; n++) v[n + 1] = 2000;
      printf "%.0f %d %.3f %.2f\n", qps, lost, v[int(n * 0.99)], cpu / (done ? done : 1)
    }' "$work/dnsperf.out"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
col() { awk -v c="$1" '{ print $c }' "$2" | median; }

# Warm both caches.
for p in "$OFF_PORT" "$ON_PORT"; do
  dnsperf -s 127.0.0.1 -p "$p" -d "$work/queries.txt" -n 1 -c 4 -q 100 -t 5 >/dev/null 2>&1 || true
done

echo "== dnstap off vs on at $RATE QPS offered, ${SECS}s runs, $ROUNDS rounds (1 UDP worker each)"
: >"$work/off.runs"
: >"$work/on.runs"
for _ in $(seq "$ROUNDS"); do
  run "$OFF_PORT" "$off_pid" >>"$work/off.runs"
  run "$ON_PORT" "$on_pid" >>"$work/on.runs"
done
echo "runs off (QPS lost p99_ms cpu_us/q):"; sed 's/^/  /' "$work/off.runs"
echo "runs on:"; sed 's/^/  /' "$work/on.runs"
for v in off on; do
  printf '%-4s QPS %s  lost %s  p99 %s ms  CPU %s µs/query\n' "$v" \
    "$(col 1 "$work/$v.runs")" "$(col 2 "$work/$v.runs")" "$(col 3 "$work/$v.runs")" \
    "$(col 4 "$work/$v.runs")"
done
awk -v a="$(col 1 "$work/on.runs")" -v b="$(col 1 "$work/off.runs")" \
  -v c="$(col 3 "$work/on.runs")" -v d="$(col 3 "$work/off.runs")" \
  -v e="$(col 4 "$work/on.runs")" -v f="$(col 4 "$work/off.runs")" \
  'BEGIN { printf "on ÷ off: QPS %.3f  p99 %.2f  CPU per query %.3f\n", a / b, c / d, e / f }'
echo "dnstap sent $(metric "$work/on.log" fraudwall_dnstap_sent_total), dropped $(metric "$work/on.log" fraudwall_dnstap_dropped_total | grep . || echo 0)"

echo "== collector stalled (fstrm_capture SIGSTOPped), $RATE QPS offered, ${SECS}s"
kill -STOP "$cap"
dropped_before=$(metric "$work/on.log" fraudwall_dnstap_dropped_total)
stalled=$(run "$ON_PORT" "$on_pid")
echo "stalled (QPS lost p99_ms cpu_us/q): $stalled"
echo "dnstap dropped during the stall: $(awk -v a="$(metric "$work/on.log" fraudwall_dnstap_dropped_total)" -v b="${dropped_before:-0}" 'BEGIN { print a - b }')"
kill -CONT "$cap"
