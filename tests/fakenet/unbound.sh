#!/usr/bin/env bash
# unbound.sh start|stop STATEDIR PORT [extra-conf-file]
#
# Runs a reference Unbound on 127.0.0.1@PORT that resolves through the fakenet of STATEDIR
# (fake root hints + fake trust anchor only). Its files live in STATEDIR/unbound-PORT/.
# extra-conf-file is included inside the server: clause (e.g. a list of local-zone: lines).
# `start` returns once Unbound answers; `stop` kills the pid in its pid file.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "unbound.sh: $*" >&2; exit 1; }
[[ $# -ge 3 && $# -le 4 ]] || { echo "usage: $0 start|stop STATEDIR PORT [extra-conf-file]" >&2; exit 2; }
cmd=$1 statedir=$2 port=$3 extra=${4:-}
[[ $port =~ ^[0-9]+$ ]] || die "bad port: $port"
[[ -d $statedir ]] || die "no such state dir: $statedir"
statedir=$(cd "$statedir" && pwd -P)
dir="$statedir/unbound-$port"

stop() {
  local pid
  [[ -f $dir/unbound.pid ]] || return 0
  pid=$(cat "$dir/unbound.pid" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -f "$dir/unbound.pid"
}

case $cmd in
  stop)
    [[ -d $dir ]] || exit 0
    exec 9>"$dir/.lock"
    flock -w 30 9 || true
    stop
    exit 0
    ;;
  start) ;;
  *) die "unknown command $cmd" ;;
esac

if ! command -v unbound >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] || die "unbound is not installed and we are not root"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unbound dnsutils >&2
  systemctl disable --now unbound >/dev/null 2>&1 || true
fi
for f in root.hints root.anchor; do [[ -s $statedir/$f ]] || die "$statedir/$f missing: run fakenet.sh up $statedir first"; done

mkdir -p "$dir"
# one start/stop at a time per port (the daemon must not inherit the lock: 9>&- below)
exec 9>"$dir/.lock"
flock -w 30 9 || die "cannot lock $dir/.lock"
stop
if dig +tries=1 +time=1 -p "$port" @127.0.0.1 . SOA 2>/dev/null | grep -q 'status:'; then
  die "something already answers on 127.0.0.1@$port"
fi
echo "$(date +%T.%N) start pid $$ port $port" >>"$statedir/unbound.sh.log"
: >"$dir/unbound.log"
inc=""
if [[ -n $extra ]]; then
  [[ -f $extra ]] || die "no such extra conf file: $extra"
  inc="include: \"$(cd "$(dirname "$extra")" && pwd -P)/$(basename "$extra")\""
fi
sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir|g" -e "s|@STATEDIR@|$statedir|g" -e "s|@EXTRA@|$inc|" \
  "$HERE/unbound.conf.in" >"$dir/unbound.conf"
unbound-checkconf "$dir/unbound.conf" >/dev/null || die "unbound-checkconf failed for $dir/unbound.conf"

if ! unbound -c "$dir/unbound.conf" </dev/null >>"$dir/unbound.log" 2>&1 9>&-; then
  tail -n 5 "$dir/unbound.log" >&2
  die "unbound failed to start on 127.0.0.1@$port"
fi
for _ in $(seq 100); do
  if dig +tries=1 +time=1 -p "$port" @127.0.0.1 . SOA 2>/dev/null | grep -q 'status: NOERROR'; then
    echo "unbound.sh: unbound (pid $(cat "$dir/unbound.pid")) answering on 127.0.0.1@$port, config $dir/unbound.conf"
    exit 0
  fi
  if [[ -f $dir/unbound.pid ]] && ! kill -0 "$(cat "$dir/unbound.pid")" 2>/dev/null; then break; fi
  sleep 0.1
done
tail -n 5 "$dir/unbound.log" >&2
stop
die "unbound on 127.0.0.1@$port did not answer"
