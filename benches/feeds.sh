#!/usr/bin/env bash
# RPZ feed by zone transfer, fraudwall side by side with Unbound's `rpz:`, both fed by the same
# Knot DNS primary on loopback (fraudwall's transfers TSIG-signed, Unbound's unsigned: Unbound
# has no TSIG), both NOTIFY'd by it:
#
#   benches/feeds.sh                  # 1 M-record zone, 1 k-change IXFR
#   RECORDS=200000 CHANGES=1000 benches/feeds.sh
#   FW=target/debug/fraudwall benches/feeds.sh   # another build (default: target/release,
#                                                # built if missing)
#
# 1. AXFR → enforced: each server starts with no state; the time from its start to the first
#    answer that enforces the zone's last name (dig polling every 50 ms), its peak RSS during
#    (VmHWM) and its RSS 5 s after.
# 2. IXFR → enforced: CHANGES/2 names removed, CHANGES/2 added, serial + 1, `knotc
#    zone-reload` (Knot NOTIFYs both): the time from the reload to the first answer that
#    enforces an added name, for each server, and from the moment Knot serves the new serial
#    (SOA polled every 10 ms; it NOTIFYs then), which leaves out Knot's own reload; RSS after.
# Prints the figures and the ratios fraudwall ÷ Unbound. Sends nothing outside 127.0.0.0/8.
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${RECORDS:-1000000}
CHANGES=${CHANGES:-1000}
KNOT_PORT=${KNOT_PORT:-5461}
FW_PORT=${FW_PORT:-5462}
UB_PORT=${UB_PORT:-5463}
ZONE=rpz.fraud.test
SECRET=ZnJhdWR3YWxsLWZlZWQtdGVzdHMtc2hhcmVkLXNlY3JldCE=

for tool in knotd knotc unbound dig; do
  command -v "$tool" >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq knot unbound dnsutils >/dev/null
    break
  }
done
. benches/common.sh
fw_binary
workdir feedbench knot/db fw/lists ub

# zone FILE SERIAL FIRST_N COUNT_N [NEW_COUNT]: n<i> for i in [FIRST_N, FIRST_N+COUNT_N), new<i>
zone() {
  {
    echo "\$ORIGIN $ZONE."
    echo "\$TTL 60"
    echo "@ SOA localhost. hostmaster.$ZONE. $2 3600 3600 864000 60"
    echo "@ NS localhost."
    awk -v a="$3" -v n="$4" 'BEGIN { for (i = a; i < a + n; i++) printf "n%d.bad.test CNAME .\n", i }'
    awk -v n="${5:-0}" 'BEGIN { for (i = 0; i < n; i++) printf "new%d.bad.test CNAME .\n", i }'
  } >"$1"
}

zone "$work/knot/rpz.zone" 1 0 "$RECORDS"
cat >"$work/knot/test.zone" <<EOF
\$ORIGIN test.
\$TTL 60
@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@ NS ns.test.
ns A 127.0.0.1
* A 198.18.0.9
EOF
cat >"$work/knot/knot.conf" <<EOF
server:
    rundir: $work/knot
    listen: 127.0.0.1@$KNOT_PORT
log:
  - target: $work/knot/knot.log
    any: info
database:
    storage: $work/knot/db
key:
  - id: fraudwall-key
    algorithm: hmac-sha256
    secret: $SECRET
remote:
  - id: fraudwall
    address: 127.0.0.1@$FW_PORT
  - id: unbound
    address: 127.0.0.1@$UB_PORT
acl:
  - id: fraudwall
    address: 127.0.0.1
    key: fraudwall-key
    action: transfer
  - id: unsigned
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: $work/knot
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: all
    semantic-checks: off
zone:
  - domain: $ZONE
    file: rpz.zone
    acl: [fraudwall, unsigned]
    notify: [fraudwall, unbound]
  - domain: test
    file: test.zone
EOF
knotd -c "$work/knot/knot.conf" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 600); do
  [ "$(dig @127.0.0.1 -p $KNOT_PORT $ZONE SOA +short +time=1 +tries=1 | awk '{print $3}')" = 1 ] && break
  sleep 0.2
done

cat >"$work/fw/fraudwall.yaml" <<EOF
listen: ["127.0.0.1:$FW_PORT"]
resolver:
  mode: forward
  forwarders:
    - address: "127.0.0.1:$KNOT_PORT"
blocklists:
  dir: lists
  allow_empty: true
  feeds:
    - name: afc
      zone: $ZONE
      primaries: ["127.0.0.1:$KNOT_PORT"]
      tsig: { name: fraudwall-key, algorithm: hmac-sha256, secret: "$SECRET" }
      refresh_min: 1s
metrics:
  listen: null
warning_page:
  listen: []
events:
  target: events.jsonl
EOF
cat >"$work/ub/unbound.conf" <<EOF
server:
  interface: 127.0.0.1@$UB_PORT
  port: $UB_PORT
  do-daemonize: no
  use-syslog: no
  logfile: "$work/ub/unbound.log"
  chroot: ""
  username: ""
  directory: "$work/ub"
  pidfile: "$work/ub/unbound.pid"
  module-config: "respip iterator"
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  local-zone: "test." nodefault
stub-zone:
  name: "test."
  stub-addr: 127.0.0.1@$KNOT_PORT
rpz:
  name: $ZONE
  primary: 127.0.0.1@$KNOT_PORT
  zonefile: "$work/ub/rpz.zone"
remote-control:
  control-enable: no
EOF

now() { date +%s.%N; }
kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
# until_blocked PORT NAME: returns when PORT answers NAME with NXDOMAIN
until_blocked() {
  until dig @127.0.0.1 -p "$1" "$2" A +time=1 +tries=1 2>/dev/null | grep -q 'status: NXDOMAIN'; do
    sleep 0.05
  done
}
last="n$((RECORDS - 1)).bad.test"

# 1. AXFR → enforced, one server at a time (each has the machine to itself).
t0=$(now)
(cd "$work/fw" && exec "$FW" serve --config fraudwall.yaml 2>"$work/fw/log") &
fw_pid=$!
pids+=("$fw_pid")
until_blocked $FW_PORT "$last"
fw_axfr=$(echo "$(now) - $t0" | bc)
sleep 5
fw_hwm=$(kb $fw_pid VmHWM)
fw_rss=$(kb $fw_pid VmRSS)

t0=$(now)
unbound -d -c "$work/ub/unbound.conf" >/dev/null 2>&1 &
ub_pid=$!
pids+=("$ub_pid")
until_blocked $UB_PORT "$last"
ub_axfr=$(echo "$(now) - $t0" | bc)
sleep 5
ub_hwm=$(kb $ub_pid VmHWM)
ub_rss=$(kb $ub_pid VmRSS)

# 2. IXFR of CHANGES changes → enforced, both NOTIFY'd at once.
half=$((CHANGES / 2))
zone "$work/knot/rpz.zone" 2 "$half" "$((RECORDS - half))" "$half"
added="new$((half - 1)).bad.test"
t0=$(now)
knotc -c "$work/knot/knot.conf" zone-reload $ZONE >/dev/null
(until_blocked $FW_PORT "$added"; now >"$work/fw.ixfr") &
w1=$!
(until_blocked $UB_PORT "$added"; now >"$work/ub.ixfr") &
w2=$!
# When the primary serves the new serial: it sends its NOTIFYs then. What follows is the
# secondaries' own part.
until [ "$(dig @127.0.0.1 -p $KNOT_PORT $ZONE SOA +short +time=1 +tries=1 | awk '{print $3}')" = 2 ]; do
  sleep 0.01
done
t1=$(now)
wait $w1 $w2
fw_ixfr=$(echo "$(cat "$work/fw.ixfr") - $t0" | bc)
ub_ixfr=$(echo "$(cat "$work/ub.ixfr") - $t0" | bc)
fw_own=$(echo "$(cat "$work/fw.ixfr") - $t1" | bc)
ub_own=$(echo "$(cat "$work/ub.ixfr") - $t1" | bc)
removed_fw=$(dig @127.0.0.1 -p $FW_PORT n0.bad.test A +short)
removed_ub=$(dig @127.0.0.1 -p $UB_PORT n0.bad.test A +short)
sleep 5
fw_rss2=$(kb $fw_pid VmRSS)
ub_rss2=$(kb $ub_pid VmRSS)

ratio() { echo "scale=2; $1 / $2" | bc; }
printf '\n%s records, IXFR of %s changes (removed n0 now answers: fraudwall %s, unbound %s)\n\n' \
  "$RECORDS" "$CHANGES" "${removed_fw:-?}" "${removed_ub:-?}"
printf '| | fraudwall | Unbound | ratio |\n|---|---|---|---|\n'
printf '| start → %s enforced (AXFR) | %.2f s | %.2f s | %s |\n' "$last" "$fw_axfr" "$ub_axfr" "$(ratio "$fw_axfr" "$ub_axfr")"
printf '| peak RSS during (VmHWM) | %d MiB | %d MiB | %s |\n' $((fw_hwm / 1024)) $((ub_hwm / 1024)) "$(ratio "$fw_hwm" "$ub_hwm")"
printf '| RSS 5 s after | %d MiB | %d MiB | %s |\n' $((fw_rss / 1024)) $((ub_rss / 1024)) "$(ratio "$fw_rss" "$ub_rss")"
printf '| zone reload → added name enforced (IXFR) | %.2f s | %.2f s | %s |\n' "$fw_ixfr" "$ub_ixfr" "$(ratio "$fw_ixfr" "$ub_ixfr")"
printf '| primary serves the new serial → added name enforced (NOTIFY, IXFR, apply) | %.2f s | %.2f s | %s |\n' "$fw_own" "$ub_own" "$(ratio "$fw_own" "$ub_own")"
printf '| RSS 5 s after the IXFR | %d MiB | %d MiB | %s |\n' $((fw_rss2 / 1024)) $((ub_rss2 / 1024)) "$(ratio "$fw_rss2" "$ub_rss2")"
