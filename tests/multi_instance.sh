#!/usr/bin/env bash
# Scale-out test without a container engine: dnsdist (running docker/dnsdist.conf itself) on
# loopback in front of two fraudwall processes that share one list directory, each with its own
# state directory, as docker/compose.yaml lays them out.
#
#   tests/multi_instance.sh             # needs root (apt-get, fakenet binds 127.53.x.y:53)
#   MI_FAKENET=0 tests/multi_instance.sh   # no fakenet: a dead loopback root hint instead
#
# It resolves through tests/fakenet (a running one is reused, read-only). It checks that
#   1. both instances and dnsdist come up, dnsdist's health checks mark both backends up;
#   2. names resolve and listed names are sinkholed, through dnsdist and on each instance;
#   3. a list file dropped into the shared directory is enforced by both instances (each
#      watches the directory and swaps on its own), directly and through dnsdist, and an
#      allowlist file dropped after it rolls a name back; both polled with a deadline
#      (MI_SWAP_DEADLINE, 20 s), so a build without the list watcher fails these, not hangs;
#   4. after one instance is killed (SIGKILL: a crash), dnsdist marks it down and keeps
#      answering from the other;
#   5. SIGTERM stops the other gracefully, and dnsdist then answers SERVFAIL at once.
# dnsdist talks to the instances with the PROXY protocol v2 (useProxyProtocol, from its own
# loopback source DD_SOURCE, the only address in their proxy_protocol.from): a blocked event
# of a query sent through dnsdist from another loopback address names that address, not
# dnsdist's, over UDP and TCP; direct queries (no header, from elsewhere) still work.
# The last line is "multi_instance: PASS|FAIL: N passed, N failed, N skipped"; exit 0 only on
# PASS. Everything it starts listens on and talks to 127.0.0.0/8 only (dnsdist's security
# polling is off in docker/dnsdist.conf), and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

BASE=${MI_PORT_BASE:-5460}
DD_PORT=$BASE              # dnsdist, UDP+TCP
DD_WEB=$((BASE + 1))       # dnsdist web server (/metrics)
FW_PORT=($((BASE + 2)) $((BASE + 3)))
FW_METRICS=($((BASE + 4)) $((BASE + 5)))
FW_PAGE=($((BASE + 6)) $((BASE + 7)))
SWAP_DEADLINE=${MI_SWAP_DEADLINE:-20}
USE_FAKENET=${MI_FAKENET:-1}
SINKHOLE=127.0.0.1
DD_SOURCE=127.0.1.53       # dnsdist's source towards the instances: their one PROXY peer

need=()
command -v dnsdist >/dev/null || need+=(dnsdist)
command -v dig >/dev/null || need+=(dnsutils)
command -v curl >/dev/null || need+=(curl)
command -v flock >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
  echo "multi_instance: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ -x ../shared/tools/offbox-guard.sh ]; then
  ../shared/tools/offbox-guard.sh
fi

work=$ROOT/target/multi-instance
rm -rf "$work"
mkdir -p "$work/lists"

pids=()
fakenet_up=0
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if ((fakenet_up)); then
    tests/fakenet/fakenet.sh down "$work/fakenet" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

passed=0 failed=0 skipped=0
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
bad() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; }
skip() { # why: under FRAUDWALL_REQUIRE_ALL=1 (tests/run.sh) nothing may be skipped
  if [ "${FRAUDWALL_REQUIRE_ALL:-0}" = 1 ]; then
    bad "$1: required (FRAUDWALL_REQUIRE_ALL=1) and cannot run"
  else
    skipped=$((skipped + 1))
    printf 'SKIP  %s\n' "$1"
  fi
}
check() { # description, then a command: ok when the command succeeds
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
  local verdict=PASS
  ((failed == 0)) || verdict=FAIL
  if ((failed)); then
    echo "--- last log lines (all logs in $work) ---"
    local f
    for f in "$work"/fw*.log "$work"/dnsdist.log; do
      [ -f "$f" ] && { echo "== $f"; tail -n 8 "$f"; }
    done
  fi
  echo "multi_instance: $verdict: $passed passed, $failed failed, $skipped skipped"
  [ "$verdict" = PASS ]
}

# "STATUS ip,ip" for an A query to 127.0.0.1:PORT ("NOANSWER" when nothing came back).
ask() {
  local out status ans
  out=$(dig @127.0.0.1 -p "$1" +time=2 +tries=1 "$2" "${3:-A}" 2>&1) || { echo NOANSWER; return 0; }
  status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out" | head -n 1)
  ans=$(awk '/^;; ANSWER SECTION:/ { f = 1; next } /^$/ { f = 0 } f && $4 == "A" { print $5 }' \
    <<<"$out" | paste -sd, -)
  echo "${status:-UNPARSABLE} ${ans:--}"
}
# expect PORT NAME WANT: the answer is exactly WANT ("NOERROR 127.0.0.1").
expect() {
  local got
  got=$(ask "$1" "$2")
  [ "$got" = "$3" ] || { echo "      $2 via port $1: got '$got', want '$3'"; return 1; }
}
# poll_until SECONDS PORT NAME WANT: like expect, retried every 200 ms until the deadline.
poll_until() {
  local end=$((SECONDS + $1)) got
  while :; do
    got=$(ask "$2" "$3")
    [ "$got" = "$4" ] && return 0
    if ((SECONDS >= end)); then
      echo "      $3 via port $2: still '$got' after $1 s, want '$4'"
      return 1
    fi
    sleep 0.2
  done
}
# dnsdist's view of backend N (1-based): 1 up, 0 down, empty when unknown.
backend_status() {
  curl -s --max-time 2 "http://127.0.0.1:$DD_WEB/metrics" |
    sed -n "s/^dnsdist_server_status{server=\"fraudwall-$1\".*} \([0-9]*\)$/\1/p"
}
wait_backend() { # N WANT(1|0) SECONDS
  local end=$((SECONDS + $3))
  until [ "$(backend_status "$1")" = "$2" ]; do
    ((SECONDS < end)) || return 1
    sleep 0.2
  done
}
wait_log() { # FILE PATTERN SECONDS PID
  local end=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$4" 2>/dev/null || return 1
    ((SECONDS < end)) || return 1
    sleep 0.2
  done
}

# tests/run.sh passes the release binary tests/deploy/container.sh took out of the image.
FW=${FRAUDWALL_RELEASE_BIN:-}
if [ -z "$FW" ]; then
  echo "multi_instance: building fraudwall (release)"
  cargo build --release --quiet
  FW=$ROOT/target/release/fraudwall
fi

# Where the instances resolve from: the loopback fakenet, or a root hint on a loopback address
# where nothing listens. The fakenet is shared with the Rust tests and with people working by
# hand: take the harness lock, use a healthy running fakenet as it is (only reading it), and
# start (and later stop) our own only when none is running.
if [ "$USE_FAKENET" = 1 ]; then
  exec 9>/tmp/fakenet-harness.lock
  if ! flock -n 9; then
    echo "multi_instance: waiting for another fakenet user (/tmp/fakenet-harness.lock)"
    flock -w 900 9
  fi
  fn_dir=$(cat /tmp/fakenet-active 2>/dev/null || true)
  if [ -n "$fn_dir" ] && [ -f "$fn_dir/env" ] &&
    tests/fakenet/fakenet.sh status "$fn_dir" >/dev/null 2>&1; then
    echo "multi_instance: using the running fakenet in $fn_dir"
  else
    fn_dir=$work/fakenet
    FAKENET_TAKEOVER=1 tests/fakenet/fakenet.sh up "$fn_dir" >"$work/fakenet.log" 2>&1 || {
      cat "$work/fakenet.log"
      echo "multi_instance: the fakenet did not come up"
      exit 1
    }
    fakenet_up=1
  fi
  # shellcheck disable=SC1091
  . "$fn_dir/env"
  resolver_cfg="  root_hints: $ROOT_HINTS
  trust_anchor: $TRUST_ANCHOR
  dnssec: validate
  timeout_ms: 4000"
  benign=www.example.com
  benign_answer="NOERROR 198.18.0.10"
  newly_listed_answer="NOERROR 198.18.6.7"   # login.scam-shop.net before it is listed
else
  printf '. 3600 IN NS dead.root.test.\ndead.root.test. 3600 IN A 127.0.0.254\n' >"$work/dead.hints"
  # Fail fast (SERVFAIL well within dig's 2 s) instead of retrying a server that is not there.
  resolver_cfg="  root_hints: $work/dead.hints
  dnssec: off
  timeout_ms: 1000"
  benign=""
  newly_listed_answer="SERVFAIL -"
fi

cp blocklists/sample-fraud.txt blocklists/allowlist.txt "$work/lists/"

# Sections the binary may not know yet (metrics, warning page, event log are being wired into
# the app). Included when `config check` accepts them, so the two instances never fight over
# their default ports.
optional_section() { # KEY YAML -> prints YAML when this build accepts the section
  printf '%s\n' "$2" >"$work/probe.yaml"
  if "$FW" config check "$work/probe.yaml" >/dev/null 2>&1; then printf '%s\n' "$2"; fi
}

for i in 0 1; do
  n=$((i + 1))
  mkdir -p "$work/fw$n"
  {
    cat <<EOF
listen: ["127.0.0.1:${FW_PORT[$i]}"]
resolver:
  mode: recursive
  allow_private_servers: true
  server_timeout_ms: 500
$resolver_cfg
blocklists:
  dir: $work/lists
  state_dir: $work/fw$n/state
sinkhole:
  ipv4: $SINKHOLE
  ttl: 60
access:
  allow: [127.0.0.0/8]
proxy_protocol:
  from: [$DD_SOURCE/32]
server:
  udp_workers: 1
log:
  level: info
EOF
    optional_section metrics "metrics:
  listen: \"127.0.0.1:${FW_METRICS[$i]}\""
    optional_section warning_page "warning_page:
  listen: [\"127.0.0.1:${FW_PAGE[$i]}\"]
  reports_file: $work/fw$n/reports.jsonl"
    optional_section events "events:
  target: $work/fw$n/blocked.jsonl"
  } >"$work/fw$n/fraudwall.yaml"
  "$FW" config check "$work/fw$n/fraudwall.yaml" >/dev/null
done
extra=$({ grep -hoE '^(metrics|warning_page|events):' "$work/fw1/fraudwall.yaml" || true; } | tr -d : | paste -sd' ' -)
echo "multi_instance: optional config sections this build accepts: ${extra:-none}"

# --- 1. start ---------------------------------------------------------------------------------
fw_pid=()
for i in 0 1; do
  n=$((i + 1))
  "$FW" serve --config "$work/fw$n/fraudwall.yaml" >"$work/fw$n.log" 2>&1 &
  fw_pid[i]=$!
  pids+=("$!")
done
for i in 0 1; do
  n=$((i + 1))
  check "fraudwall-$n is listening on 127.0.0.1:${FW_PORT[$i]}" \
    wait_log "$work/fw$n.log" "listening on udp 127.0.0.1:${FW_PORT[$i]}" 60 "${fw_pid[$i]}"
done

FRAUDWALL_BACKENDS="127.0.0.1:${FW_PORT[0]},127.0.0.1:${FW_PORT[1]}" \
  DNSDIST_LISTEN="127.0.0.1:$DD_PORT" DNSDIST_ACL="127.0.0.0/8" \
  DNSDIST_WEBSERVER="127.0.0.1:$DD_WEB" DNSDIST_WEBSERVER_ACL="127.0.0.0/8" \
  DNSDIST_PROXY_PROTOCOL=1 DNSDIST_BACKEND_SOURCE="$DD_SOURCE" \
  dnsdist --supervised --disable-syslog -C docker/dnsdist.conf >"$work/dnsdist.log" 2>&1 &
dd_pid=$!
pids+=("$dd_pid")
check "dnsdist is listening on 127.0.0.1:$DD_PORT" \
  wait_log "$work/dnsdist.log" "Listening on 127.0.0.1:$DD_PORT" 15 "$dd_pid"
both_up() { wait_backend 1 1 10 && wait_backend 2 1 10; }
check "dnsdist health checks mark both backends up" both_up

# --- 2. resolve and block -----------------------------------------------------------------------
ports=("$DD_PORT" "${FW_PORT[@]}")
names=(dnsdist fraudwall-1 fraudwall-2)
for k in 0 1 2; do
  if [ -n "$benign" ]; then
    check "${names[$k]}: $benign resolves ($benign_answer)" \
      expect "${ports[$k]}" "$benign" "$benign_answer"
  fi
  check "${names[$k]}: www.fraudwall-demo.test is sinkholed" \
    expect "${ports[$k]}" www.fraudwall-demo.test "NOERROR $SINKHOLE"
done
has_ede() { dig @127.0.0.1 -p "$DD_PORT" +time=2 +tries=1 www.fraudwall-demo.test | grep -q 'EDE: 15'; }
check "dnsdist passes fraudwall's EDE 15 (Blocked) through" has_ede
check "dnsdist: login.scam-shop.net is not blocked yet ($newly_listed_answer)" \
  expect "$DD_PORT" login.scam-shop.net "$newly_listed_answer"

# What each instance reports on its own: metrics for Prometheus, blocked events for the ISP.
metrics_ok() { # PORT
  local text
  text=$(curl -s --max-time 2 "http://127.0.0.1:$1/metrics") || return 1
  grep -q '^fraudwall_blocked_total{' <<<"$text" && grep -q '^fraudwall_list_entries{' <<<"$text"
}
event_logged() { # FILE: a blocked event for www.fraudwall-demo.test, within 5 s
  local end=$((SECONDS + 5))
  until grep -q '"qname":"www.fraudwall-demo.test"' "$1" 2>/dev/null; do
    ((SECONDS < end)) || return 1
    sleep 0.2
  done
}
for i in 0 1; do
  n=$((i + 1))
  if [[ " $extra " == *" metrics "* ]]; then
    check "fraudwall-$n: /metrics on ${FW_METRICS[$i]} counts blocks and list entries" \
      metrics_ok "${FW_METRICS[$i]}"
  else
    skip "fraudwall-$n: /metrics (this build has no metrics section)"
  fi
  if [[ " $extra " == *" events "* ]]; then
    check "fraudwall-$n: the blocked query is in its own event log" event_logged "$work/fw$n/blocked.jsonl"
  else
    skip "fraudwall-$n: event log (this build has no events section)"
  fi
done

# The real client behind dnsdist (PROXY protocol): a query from a loopback address of its own,
# over UDP and over TCP, leaves an event naming that address in one instance's log, and no
# event names dnsdist's source.
real_client_named() { # CLIENT DIG-FLAG
  local name="pp-$RANDOM.fraudwall-demo.test" end=$((SECONDS + 5))
  expect_from "$1" "$2" "$name" || return 1
  until cat "$work"/fw[12]/blocked.jsonl 2>/dev/null | grep -q "\"client\":\"$1\",\"qname\":\"$name\""; do
    if ((SECONDS >= end)); then
      echo "      no event for $name naming $1; events for it:"
      grep -h "\"qname\":\"$name\"" "$work"/fw[12]/blocked.jsonl | sed 's/^/      /'
      return 1
    fi
    sleep 0.2
  done
}
expect_from() { # CLIENT DIG-FLAG NAME: the sinkhole answer, asked through dnsdist from CLIENT
  local got
  got=$(dig @127.0.0.1 -p "$DD_PORT" -b "$1" "$2" +time=2 +tries=1 +short "$3" A 2>&1)
  [ "$got" = "$SINKHOLE" ] || { echo "      $3 from $1 ($2): got '$got'"; return 1; }
}
no_event_names_dnsdist() {
  ! cat "$work"/fw[12]/blocked.jsonl 2>/dev/null | grep -F "\"client\":\"$DD_SOURCE\""
}
if [[ " $extra " == *" events "* ]]; then
  check "PROXY: a blocked query via dnsdist over UDP from 127.0.0.77 is logged as 127.0.0.77" \
    real_client_named 127.0.0.77 +notcp
  check "PROXY: a blocked query via dnsdist over TCP from 127.0.0.78 is logged as 127.0.0.78" \
    real_client_named 127.0.0.78 +tcp
  check "PROXY: no event names dnsdist ($DD_SOURCE)" no_event_names_dnsdist
else
  skip "PROXY: events name the real client (this build has no events section)"
fi
if [[ " $extra " == *" metrics "* ]]; then
  no_proxy_errors() { # dnsdist's health checks (LOCAL headers) and queries: none refused
    ! curl -s --max-time 2 "http://127.0.0.1:${FW_METRICS[0]}/metrics" "http://127.0.0.1:${FW_METRICS[1]}/metrics" |
      grep '^fraudwall_proxy_protocol_errors_total'
  }
  check "PROXY: no header refused by either instance (health checks included)" no_proxy_errors
fi

# --- 3. a new list, then an allowlist, dropped into the shared directory -------------------------
# As analysts should: write a hidden temporary file, then rename it into place.
printf '# pushed by tests/multi_instance.sh\nscam-shop.net\n' >"$work/lists/.fresh-fraud.txt.tmp"
mv "$work/lists/.fresh-fraud.txt.tmp" "$work/lists/fresh-fraud.txt"
t0=$SECONDS
swapped=1
for i in 0 1; do
  if poll_until "$SWAP_DEADLINE" "${FW_PORT[$i]}" login.scam-shop.net "NOERROR $SINKHOLE"; then
    ok "fraudwall-$((i + 1)) enforces the dropped list (after $((SECONDS - t0)) s)"
  else
    bad "fraudwall-$((i + 1)) enforces the dropped list within $SWAP_DEADLINE s (no list watcher / hot swap in this build?)"
    swapped=0
  fi
done
if ((swapped)); then
  ten_sinkholed() {
    local j
    for j in $(seq 1 10); do expect "$DD_PORT" "q$j.scam-shop.net" "NOERROR $SINKHOLE" || return 1; done
  }
  check "dnsdist: 10 of 10 queries for names under scam-shop.net are sinkholed" ten_sinkholed

  printf 'login.scam-shop.net\n' >"$work/lists/.allow-fp.txt.tmp"
  mv "$work/lists/.allow-fp.txt.tmp" "$work/lists/allow-false-positive.txt"
  t0=$SECONDS
  for i in 0 1; do
    if poll_until "$SWAP_DEADLINE" "${FW_PORT[$i]}" login.scam-shop.net "$newly_listed_answer"; then
      ok "fraudwall-$((i + 1)) honours the dropped allowlist (after $((SECONDS - t0)) s)"
    else
      bad "fraudwall-$((i + 1)) honours the dropped allowlist within $SWAP_DEADLINE s"
    fi
  done
  rolled_back() {
    expect "$DD_PORT" login.scam-shop.net "$newly_listed_answer" &&
      expect "$DD_PORT" www.scam-shop.net "NOERROR $SINKHOLE"
  }
  check "dnsdist: login.scam-shop.net answered normally again, www.scam-shop.net still sinkholed" rolled_back
else
  skip "dnsdist enforces the dropped list (needs the list watcher)"
  skip "both instances honour a dropped allowlist (needs the list watcher)"
  skip "dnsdist answers the allowlisted name normally (needs the list watcher)"
fi

# --- 4. one instance crashes --------------------------------------------------------------------
{ kill -KILL "${fw_pid[0]}" && wait "${fw_pid[0]}"; } 2>/dev/null || true
t0=$SECONDS
answered=0 lost=0
# Until dnsdist notices, queries it sends to the dead backend are lost (UDP, no retry).
while [ "$(backend_status 1)" != 0 ] && ((SECONDS - t0 < 10)); do
  if [ "$(ask "$DD_PORT" www.fraudwall-demo.test)" = "NOERROR $SINKHOLE" ]; then
    answered=$((answered + 1))
  else
    lost=$((lost + 1))
  fi
done
if [ "$(backend_status 1)" = 0 ]; then
  ok "dnsdist marks the killed fraudwall-1 down (after $((SECONDS - t0)) s; meanwhile $answered answered, $lost lost)"
else
  bad "dnsdist marks the killed fraudwall-1 down within 10 s"
fi
second_up() { [ "$(backend_status 2)" = 1 ]; }
check "dnsdist keeps fraudwall-2 up" second_up
survivor_answers() {
  local j
  for j in $(seq 1 10); do
    expect "$DD_PORT" "s$j.fraudwall-demo.test" "NOERROR $SINKHOLE" || return 1
    if [ -n "$benign" ]; then
      expect "$DD_PORT" "$benign" "$benign_answer" || return 1
    else
      expect "$DD_PORT" "t$j.fraudwall-demo.test" "NOERROR $SINKHOLE" || return 1
    fi
  done
}
check "dnsdist: 20 of 20 queries answered by the survivor" survivor_answers

# --- 5. graceful stop of the last one -----------------------------------------------------------
kill -TERM "${fw_pid[1]}"
rc=0
t0=$SECONDS
wait "${fw_pid[1]}" || rc=$?
stopped_cleanly() { [ "$rc" = 0 ] && grep -q "shutting down: finishing queries in flight" "$work/fw2.log"; }
check "fraudwall-2 stops on SIGTERM with exit 0 (rc $rc, $((SECONDS - t0)) s)" stopped_cleanly
servfail_when_none() { wait_backend 2 0 10 && [ "$(ask "$DD_PORT" www.fraudwall-demo.test)" = "SERVFAIL -" ]; }
check "with no backend up, dnsdist answers SERVFAIL at once" servfail_when_none

finish
