#!/usr/bin/env bash
# DoH A/B of fraudwall builds: each LABEL=BINARY serves DoH on its own port (the same 10 k-name
# blocklist, answered locally; nothing leaves 127.0.0.1) and h2load drives them in turn, round
# after round, so that a shared machine's load falls on all of them alike. Prints, per round and
# build, QPS, answered requests, the server's CPU (user + system) per answered request, and
# the load average.
#
#   benches/doh_ab.sh before=/tmp/fw-old after=target/release/fraudwall
#   SECS=8 ROUNDS=3 C=50 M=4 benches/doh_ab.sh ...     # h2load connections C, streams each M
#   RPS=40 benches/doh_ab.sh ...                       # a fixed rate: RPS per connection
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-8}; ROUNDS=${ROUNDS:-3}; C=${C:-50}; M=${M:-4}; RPS=${RPS:-}
W=$(pwd)/target/doh-ab; rm -rf $W; mkdir -p $W/lists
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=b -addext subjectAltName=IP:127.0.0.1 -keyout $W/key.pem -out $W/cert.pem 2>/dev/null
for i in $(seq 1 10000); do echo "n$i.bench-fraud.test"; done >$W/lists/fraud.txt
pids=(); cleanup(){ for p in "${pids[@]}"; do kill $p 2>/dev/null||true; done; }; trap cleanup EXIT
port=8640; declare -A P PID
for arg in "$@"; do
  label=${arg%%=*}; bin=$(realpath "${arg#*=}"); port=$((port+1)); P[$label]=$port
  mkdir -p $W/$label; cp -r $W/lists $W/cert.pem $W/key.pem $W/$label/
  cat >$W/$label/fw.yaml <<Y
listen: ["127.0.0.1:0"]
resolver: {mode: forward, forwarders: [{address: "127.0.0.1:9"}]}
blocklists: {dir: lists}
server: {udp_workers: 1, tcp_max_connections: 100000, tcp_max_per_client: 100000}
tls: {cert: cert.pem, key: key.pem}
doh: {listen: ["127.0.0.1:$port"]}
metrics: {listen: null}
warning_page: {listen: []}
events: {target: events.jsonl}
log: {level: warn}
Y
  (cd $W/$label && exec $bin serve --config fw.yaml 2>log) & pids+=($!); PID[$label]=$!
  python3 - $W/lists/fraud.txt $port >$W/uris.$label <<'PY'
import base64, struct, sys
for name in open(sys.argv[1]).read().split():
    q = struct.pack(">6H", 0, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    q += struct.pack(">2H", 1, 1)
    print(f"https://127.0.0.1:{sys.argv[2]}/dns-query?dns=" + base64.urlsafe_b64encode(q).decode().rstrip("="))
PY
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
done
ticks(){ awk '{print $14+$15}' /proc/$1/stat; }
for r in $(seq $ROUNDS); do for arg in "$@"; do label=${arg%%=*}
  t0=$(ticks ${PID[$label]})
  h2load -D $SECS -c $C -m $M -t 1 ${RPS:+--rps $RPS} -i $W/uris.$label -H "accept: application/dns-message" >$W/out 2>&1 || true
  t1=$(ticks ${PID[$label]})
  q=$(awk '/^finished in/ {print $4}' $W/out); ok=$(awk '/^requests:/ {print $8}' $W/out)
  echo "round $r $label qps=$q succeeded=$ok cpu_us_per_q=$(awk -v t=$((t1-t0)) -v n=$ok -v hz=$(getconf CLK_TCK) 'BEGIN{printf "%.1f", n ? t*1e6/hz/n : 0}') load=$(cut -d' ' -f1 /proc/loadavg)"
done; done
