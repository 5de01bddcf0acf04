#!/usr/bin/env bash
# Drop → enforced: how long after a list changes its change is enforced, fraudwall side by side
# with Unbound on the same machine, under a steady 1 000 queries a second of other names.
#
#   benches/incremental.sh                 # 200 k-name list, 1 M-name drops, 5 rounds
#   NAMES=200000 BIG=1000000 ROUNDS=5 benches/incremental.sh
#   FW=target/debug/fraudwall benches/incremental.sh   # another build (default: target/release,
#                                                      # built if missing)
#
# Each server starts with a 200 k-name list, then:
#  1. one name appended to it, ROUNDS times (fraudwall: `>>` to the file in its list directory;
#     Unbound: `unbound-control local_zone NAME always_nxdomain`, its live way to add one name,
#     and the same line appended to its include file and `unbound-control reload`);
#  2. a 1 M-name text list dropped beside it (fraudwall: renamed into the directory; Unbound:
#     `unbound-control local_zones` fed the 1 M names, and the include file + reload): short
#     generated names (x123.fraud45.test), then, when ../shared/data/fraud-union.txt is there,
#     names shaped like real ones: that list's names, topped up to 1 M with generated
#     subdomains of them (www7.NAME, login42.NAME, …; 26 B a name against 19);
#  3. a precompiled 1 M-name .fst dropped beside them (fraudwall only: Unbound has no compiled
#     list format; its nearest is 2.).
# The clock starts just before the change (rename, write, or unbound-control) and stops at the
# first blocked answer for a name the change adds, probed every millisecond by the same process.
# Also printed: fraudwall's RSS after each step. Sends nothing outside 127.0.0.0/8: fraudwall
# forwards to, and Unbound forwards to, 127.0.0.1:9 (nothing listens there).
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=${NAMES:-200000}
BIG=${BIG:-1000000}
ROUNDS=${ROUNDS:-5}
FW_PORT=${FW_PORT:-5471}
UB_PORT=${UB_PORT:-5472}
UB_CTL=${UB_CTL:-5473}

for tool in unbound unbound-control python3; do
  command -v "$tool" >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq unbound python3 >/dev/null
    break
  }
done
. benches/common.sh
fw_binary
workdir incbench fw/lists ub data

echo "== data: $NAMES names, two lists of $BIG"
awk -v n="$NAMES" 'BEGIN { for (i = 0; i < n; i++) printf "shop%d.scam%d.test\n", i, i % 997 }' >"$work/data/big.txt"
awk -v n="$BIG" 'BEGIN { for (i = 0; i < n; i++) printf "x%d.fraud%d.test\n", i, i % 1013 }' >"$work/data/m1.txt"
awk -v n="$BIG" 'BEGIN { for (i = 0; i < n; i++) printf "y%d.vendor%d.test\n", i, i % 1009 }' >"$work/data/m2.txt"
"$FW" compile -o "$work/data/m2.fst" "$work/data/m2.txt" >/dev/null
zones() { awk '{ printf "local-zone: \"%s.\" always_nxdomain\n", $1 }' "$1"; }
zones "$work/data/big.txt" >"$work/ub/lists.conf"
real=$(pwd)/../shared/data/fraud-union.txt
if [ -f "$real" ]; then
  awk -v n="$BIG" 'BEGIN { split("www m login pay secure app api cdn mail my", s, " "); srand(7) }
    { name[NR] = $1; if (NR <= n) print $1 }
    END { for (i = NR; i < n; i++) printf "%s%d.%s\n", s[1 + int(rand() * 10)], int(rand() * 100), name[1 + int(rand() * NR)] }' \
    "$real" >"$work/data/real.txt"
fi

cp "$work/data/big.txt" "$work/fw/lists/big.txt"
cat >"$work/fw/fraudwall.yaml" <<EOF
listen: ["127.0.0.1:$FW_PORT"]
resolver:
  mode: forward
  forwarders:
    - address: "127.0.0.1:9"
blocklists:
  dir: lists
  action: nxdomain
metrics:
  listen: null
warning_page:
  listen: []
EOF
(cd "$work/fw" && exec "$FW" serve --config fraudwall.yaml >fraudwall.log 2>&1) &
pids+=($!)
fw_pid=$!

unbound-control-setup -d "$work/ub" >/dev/null 2>&1
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
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  local-zone: "test." nodefault
  include: "$work/ub/lists.conf"
remote-control:
  control-enable: yes
  control-interface: 127.0.0.1
  control-port: $UB_CTL
  server-key-file: "$work/ub/unbound_server.key"
  server-cert-file: "$work/ub/unbound_server.pem"
  control-key-file: "$work/ub/unbound_control.key"
  control-cert-file: "$work/ub/unbound_control.pem"
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@9
EOF
unbound -d -c "$work/ub/unbound.conf" >/dev/null 2>&1 &
pids+=($!)
ubc() { unbound-control -c "$work/ub/unbound.conf" "$@"; }

# probe.py PORT NAME -- COMMAND...: runs COMMAND, then asks NAME every ms until NXDOMAIN; prints
# the ms from just before COMMAND, while asking other names at 1 000 a second throughout.
cat >"$work/probe.py" <<'EOF'
import os, socket, struct, subprocess, sys, time
port, name = int(sys.argv[1]), sys.argv[2]
cmd = sys.argv[4:]
def query(qid, qname):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for l in qname.split("."):
        q += bytes([len(l)]) + l.encode()
    return q + b"\0\0\1\0\1"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
s.setblocking(False)
t0 = time.monotonic()
subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
qid, deadline = 0, t0 + 120
while time.monotonic() < deadline:
    qid = (qid + 1) & 0x7fff
    s.send(query(0x8000 | qid, name))
    s.send(query(qid, "shop%d.scam%d.test" % (qid * 7 % 200000, qid * 7 % 200000 % 997)))
    time.sleep(0.001)
    while True:
        try:
            r = s.recv(1500)
        except BlockingIOError:
            break
        # Blocked: NXDOMAIN, or a sinkhole answer (a compiled list keeps its own action);
        # names not blocked fail (SERVFAIL: nothing answers upstream).
        rcode, answers = (r[3] & 0xF, r[6] << 8 | r[7]) if len(r) >= 12 else (None, 0)
        if len(r) >= 12 and r[0] & 0x80 and (rcode == 3 or (rcode == 0 and answers > 0)):
            print("%.0f" % ((time.monotonic() - t0) * 1000))
            sys.exit(0)
print("timeout")
sys.exit(1)
EOF
probe() { python3 "$work/probe.py" "$@"; }
ready() {
  for _ in $(seq 600); do
    [ "$(dig @127.0.0.1 -p "$1" shop7.scam7.test +time=1 +tries=1 +noall +comments | grep -c NXDOMAIN)" -gt 0 ] && return 0
    sleep 0.2
  done
  echo "port $1 never blocked shop7.scam7.test" >&2
  exit 1
}
ready "$FW_PORT"
ready "$UB_PORT"
rss() { awk '/VmRSS/ { print int($2 / 1024) " MiB" }' "/proc/$fw_pid/status"; }
sleep 2

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
declare -A fig
echo "== 1. one name appended to the $NAMES-name list, $ROUNDS rounds"
fw=() ubc_live=() ubc_reload=()
for r in $(seq "$ROUNDS"); do
  fw+=("$(probe "$FW_PORT" "new$r.appended.test" -- sh -c "echo new$r.appended.test >>'$work/fw/lists/big.txt'")")
  sleep 1.5 # past the merge of the layers
  ubc_live+=("$(probe "$UB_PORT" "new$r.appended.test" -- "$(command -v unbound-control)" -c "$work/ub/unbound.conf" local_zone "new$r.appended.test" always_nxdomain)")
  echo "local-zone: \"again$r.appended.test.\" always_nxdomain" >>"$work/ub/lists.conf"
  ubc_reload+=("$(probe "$UB_PORT" "again$r.appended.test" -- "$(command -v unbound-control)" -c "$work/ub/unbound.conf" reload)")
  ready "$UB_PORT"
done
fig[append_fw]=$(printf '%s\n' "${fw[@]}" | median)
fig[append_ub]=$(printf '%s\n' "${ubc_live[@]}" | median)
fig[append_ub_reload]=$(printf '%s\n' "${ubc_reload[@]}" | median)
echo "fraudwall ms: ${fw[*]}   unbound-control local_zone ms: ${ubc_live[*]}   include + reload ms: ${ubc_reload[*]}   fraudwall RSS $(rss)"

echo "== 2. a $BIG-name text list dropped"
cp "$work/data/m1.txt" "$work/fw/lists/.m1.txt.tmp"
last=$((BIG - 1))
fig[text_fw]=$(probe "$FW_PORT" "x$last.fraud$((last % 1013)).test" -- mv "$work/fw/lists/.m1.txt.tmp" "$work/fw/lists/m1.txt")
sleep 3
echo "fraudwall RSS $(rss)"
fig[text_ub]=$(probe "$UB_PORT" "x$last.fraud$((last % 1013)).test" -- sh -c "awk '{ print \$1 \" always_nxdomain\" }' '$work/data/m1.txt' | '$(command -v unbound-control)' -c '$work/ub/unbound.conf' local_zones")
zones "$work/data/m1.txt" >>"$work/ub/lists.conf"
fig[text_ub_reload]=$(probe "$UB_PORT" "x$last.fraud$((last % 1013)).test" -- "$(command -v unbound-control)" -c "$work/ub/unbound.conf" reload)

if [ -f "$work/data/real.txt" ]; then
  echo "== 2b. a $BIG-name text list shaped like real names dropped"
  probe_name=$(tail -n 1 "$work/data/real.txt")
  cp "$work/data/real.txt" "$work/fw/lists/.real.txt.tmp"
  fig[real_fw]=$(probe "$FW_PORT" "$probe_name" -- mv "$work/fw/lists/.real.txt.tmp" "$work/fw/lists/real.txt")
  sleep 4
  fig[real_ub]=$(probe "$UB_PORT" "$probe_name" -- sh -c "awk '{ print \$1 \" always_nxdomain\" }' '$work/data/real.txt' | '$(command -v unbound-control)' -c '$work/ub/unbound.conf' local_zones")
fi

echo "== 3. a precompiled $BIG-name .fst dropped"
cp "$work/data/m2.fst" "$work/fw/lists/.m2.fst.tmp"
fig[fst_fw]=$(probe "$FW_PORT" "y$last.vendor$((last % 1009)).test" -- mv "$work/fw/lists/.m2.fst.tmp" "$work/fw/lists/m2.fst")
sleep 4
echo "fraudwall RSS $(rss)"
grep -E "lists (updated|reloaded)" "$work/fw/fraudwall.log" | tail -4 | sed 's/^/fraudwall: /'

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "| change | fraudwall | Unbound (live: unbound-control) | fraudwall ÷ Unbound | Unbound (include + reload) |"
echo "|---|---|---|---|---|"
echo "| one name appended to $NAMES (median of $ROUNDS) | ${fig[append_fw]} ms | ${fig[append_ub]} ms | $(ratio "${fig[append_fw]}" "${fig[append_ub]}") | ${fig[append_ub_reload]} ms |"
echo "| $BIG-name text list dropped | ${fig[text_fw]} ms | ${fig[text_ub]} ms | $(ratio "${fig[text_fw]}" "${fig[text_ub]}") | ${fig[text_ub_reload]} ms |"
[ -n "${fig[real_fw]:-}" ] &&
  echo "| $BIG-name text list of real-shaped names dropped | ${fig[real_fw]} ms | ${fig[real_ub]} ms | $(ratio "${fig[real_fw]}" "${fig[real_ub]}") | |"
echo "| precompiled $BIG-name .fst dropped | ${fig[fst_fw]} ms | n/a | | |"
