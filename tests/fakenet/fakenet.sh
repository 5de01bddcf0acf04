#!/usr/bin/env bash
# fakenet.sh up|down|status STATEDIR
#
# A fake DNS hierarchy on loopback (127.53.0.0/16, port 53): one NSD per server address, zones
# from tests/fakenet/zones/, DNSSEC keys generated fresh at every `up`. See README.md.
#
# Network safety: every name server address is 127.53.x.y (and ::1 for ns1.v6only.net); answer
# data is 198.18.0.0/15 or 2001:db8::/32. silent.py's relays forward only to 127.53.x.y.
# Nothing here sends a packet off the machine.
#
# Environment:
#   FAKENET_LOAD_HOSTS  number of hN.load.test names (default 5000)
#   FAKENET_TAKEOVER=1  if another STATEDIR's fakenet holds the addresses, bring it down first
#                       (default: fail with a message naming it)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ZONES_SRC="$HERE/zones"
ACTIVE_FILE=/tmp/fakenet-active    # names the STATEDIR whose fakenet currently holds 127.53.x.y:53
LOCK_FILE=/tmp/fakenet-script.lock # serialises up/down between concurrent callers
LOAD_HOSTS="${FAKENET_LOAD_HOSTS:-5000}"

# Servers: address | label | zones served ("-" = none: a lame server that answers REFUSED).
SERVERS=(
  "127.53.0.1|root-a|."
  "127.53.0.2|root-b|."
  "127.53.1.1|com-a|com"
  "127.53.1.2|com-b|com"
  "127.53.2.1|net|net"
  "127.53.3.1|org|org"
  "127.53.4.1|test|test"
  "127.53.10.1|example-com-1|example.com"
  "127.53.10.2|example-com-2|example.com"
  "127.53.11.1|bogus|bogus.com badds.com expired.com future.com"
  "127.53.20.1|example-net|example.net"
  "127.53.21.1|cdnprov|cdnprov.net"
  "127.53.22.1|scam-shop|scam-shop.net"
  "127.53.23.1|lame-ns1|-"
  "127.53.23.2|lame-ns2|lame.net"
  "127.53.30.1|insecure-org|insecure.org"
  "127.53.30.2|oob-org|oob.org"
  "127.53.40.1|fraudwall-demo|fraudwall-demo.test"
  "127.53.41.1|load|load.test"
  "127.53.50.1|negttl|negttl.net"
  "127.53.50.2|optout|optout.net"
  "127.53.50.3|optout-child|unsigned.optout.net"
  "127.53.50.4|algorithms|ed25519.net rsasha256.net"
  "127.53.51.2|flaky-ns2|flaky.net steady.net rawsoa.net"
  "127.53.52.9|observed|observed.net viaslow.net"
  "127.53.52.10|observed-child|cut.observed.net slow.net"
  "::1|v6only|v6only.net"
)

# Servers that do not answer (tests/fakenet/silent.py, one process): --drop ADDR reads every
# query and never answers; --filter ADDR BACKEND ZONE relays to BACKEND but drops ZONE's queries;
# --soa-ttl ADDR BACKEND TTL relays to BACKEND and sets the TTL of the SOA in negative answers;
# --log ADDR BACKEND LOGFILE DELAY_MS relays after DELAY_MS and logs every query to
# STATEDIR/LOGFILE (what a resolver asks, for tests/recursor_behaviour.rs).
SILENT_ARGS=(
  --drop 127.53.98.1 --drop 127.53.98.2
  --filter 127.53.51.1 127.53.51.2 flaky.net
  --soa-ttl 127.53.51.3 127.53.51.2 3600
  --log 127.53.52.1 127.53.52.9 silent/observed-ns1.log 0
  --log 127.53.52.2 127.53.52.9 silent/observed-ns2.log 150
  --log 127.53.52.3 127.53.52.10 silent/cut.log 0
  --log 127.53.52.4 127.53.52.10 silent/slow.log 300
)

# Zones in signing order (children before parents, so their DS can go into the parent).
# zone | parent | mode: nsec, nsec3, nsec3-optout (every NSEC3 opt-out, unsigned delegations left out
#   of the chain), nsec-ed25519 / nsec-rsasha256 (algorithm 15 / 8 instead of 13), unsigned,
#   bogus-sig (sign, then alter data), bad-ds (DS of a foreign key),
#   expired-sig (signatures valid from 30 until 3 days ago), future-sig (valid from 3 days on)
ZONES=(
  "example.com|com|nsec"
  "bogus.com|com|bogus-sig"
  "badds.com|com|bad-ds"
  "expired.com|com|expired-sig"
  "future.com|com|future-sig"
  "example.net|net|nsec3"
  "cdnprov.net|net|nsec"
  "scam-shop.net|net|unsigned"
  "lame.net|net|unsigned"
  "insecure.org|org|unsigned"
  "oob.org|org|unsigned"
  "fraudwall-demo.test|test|nsec"
  "load.test|test|nsec"
  "negttl.net|net|nsec"
  "unsigned.optout.net|optout.net|unsigned"
  "optout.net|net|nsec3-optout"
  "ed25519.net|net|nsec-ed25519"
  "rsasha256.net|net|nsec-rsasha256"
  "v6only.net|net|unsigned"
  "flaky.net|net|unsigned"
  "steady.net|net|unsigned"
  "rawsoa.net|net|unsigned"
  "cut.observed.net|observed.net|unsigned"
  "observed.net|net|unsigned"
  "viaslow.net|net|unsigned"
  "slow.net|net|unsigned"
  "com|.|nsec"
  "net|.|nsec"
  "org|.|unsigned"
  "test|.|nsec"
  ".|-|nsec"
)

die() { echo "fakenet: $*" >&2; exit 1; }
log() { echo "fakenet: $*" >&2; }

usage() { echo "usage: $0 up|down|status STATEDIR" >&2; exit 2; }

ensure_tools() {
  local missing=()
  command -v nsd >/dev/null 2>&1 || missing+=(nsd)
  command -v ldns-keygen >/dev/null 2>&1 || missing+=(ldnsutils)
  command -v ldns-signzone >/dev/null 2>&1 || missing+=(ldnsutils)
  command -v dig >/dev/null 2>&1 || missing+=(dnsutils)
  command -v flock >/dev/null 2>&1 || missing+=(util-linux)
  command -v ps >/dev/null 2>&1 || missing+=(procps)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing tools (${missing[*]}) and not root to install them"
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    # Debian starts the packaged daemons; fakenet runs its own, stop the system ones.
    systemctl disable --now nsd >/dev/null 2>&1 || true
  fi
}

zone_file_name() { if [[ $1 == . ]]; then echo root; else echo "$1"; fi; }

# kill every daemon named by a pid file under STATEDIR (and its child processes), wait for it to go.
# NSD takes ~1.7 s to exit on SIGTERM; the state is regenerated at every `up`, so after a short
# grace period the rest get SIGKILL.
stop_all() {
  local dir=$1 pids=() pf pid kid
  [[ -d $dir ]] || return 0
  local mains=()
  while IFS= read -r -d '' pf; do
    pid=$(cat "$pf" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then mains+=("$pid"); fi
    rm -f "$pf"
  done < <(find "$dir" -name '*.pid' -print0 2>/dev/null)
  if ((${#mains[@]})); then
    pids=("${mains[@]}")
    # their children (NSD's server and xfrd processes)
    for kid in $(ps -eo pid=,ppid= | awk -v m=" ${mains[*]} " 'index(m, " " $2 " ") { print $1 }'); do pids+=("$kid"); done
  fi
  if ((${#pids[@]})); then
    kill "${pids[@]}" 2>/dev/null || true
    local i alive
    for ((i = 0; i < 10; i++)); do
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      ((alive)) || break
      sleep 0.05
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      ((alive)) || break
      sleep 0.05
    done
  fi
  if [[ -f $ACTIVE_FILE && $(cat "$ACTIVE_FILE" 2>/dev/null) == "$dir" ]]; then rm -f "$ACTIVE_FILE"; fi
}

answers() { # answers ADDR ZONE: the server gives an authoritative answer to ZONE SOA
  local out
  out=$(dig +norec +tries=1 +time=1 @"$1" "$2" SOA 2>/dev/null) || return 1
  grep -q 'status: NOERROR' <<<"$out" && grep -q 'flags:.* aa' <<<"$out"
}
answers_refused() { # a zone-less server is up iff it answers (REFUSED)
  dig +norec +tries=1 +time=1 @"$1" . SOA 2>/dev/null | grep -q 'status: REFUSED'
}
server_ok() {
  local addr=$1 zones=$2 z
  if [[ $zones == - ]]; then answers_refused "$addr"; return; fi
  for z in $zones; do answers "$addr" "$z" || return 1; done
}

# the relays of silent.py answer (--filter for steady.net, it drops flaky.net; --soa-ttl; --log)
relay_ok() {
  answers 127.53.51.1 steady.net && answers 127.53.51.3 rawsoa.net &&
    answers 127.53.52.1 observed.net && answers 127.53.52.2 observed.net &&
    answers 127.53.52.2 viaslow.net &&
    answers 127.53.52.3 cut.observed.net && answers 127.53.52.4 slow.net
}

# starts tests/fakenet/silent.py (the servers that never answer); its pid file, written once its
# sockets are bound, is under STATEDIR so that stop_all stops it with the NSDs.
start_silent() {
  local dir=$1 sdir="$1/silent" i
  mkdir -p "$sdir"
  rm -f "$sdir/silent.pid" "$sdir"/observed-ns?.log "$sdir/cut.log" "$sdir/slow.log"
  python3 -B "$HERE/silent.py" "$dir" "$sdir/silent.pid" "${SILENT_ARGS[@]}" \
    </dev/null >>"$sdir/silent.log" 2>&1 9>&- &
  local pid=$!
  for ((i = 0; i < 100; i++)); do
    [[ -s $sdir/silent.pid ]] && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      log "silent.py failed to start:"
      tail -n 5 "$sdir/silent.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  log "silent.py did not bind its sockets in 10 s"
  kill "$pid" 2>/dev/null || true
  return 1
}

cmd_status() {
  local dir=$1 entry addr label zones bad=0
  for entry in "${SERVERS[@]}"; do
    IFS='|' read -r addr label zones <<<"$entry"
    local pid
    pid=$(cat "$dir/nsd/$label/nsd.pid" 2>/dev/null || true)
    if ! [[ $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
      echo "DOWN  $addr ($label: $zones): no NSD of $dir"
      bad=1
    elif server_ok "$addr" "$zones"; then
      echo "ok    $addr ($label: $zones) pid $pid"
    else
      echo "DOWN  $addr ($label: $zones): not answering"
      bad=1
    fi
  done
  local spid
  spid=$(cat "$dir/silent/silent.pid" 2>/dev/null || true)
  if ! [[ $spid =~ ^[0-9]+$ ]] || ! kill -0 "$spid" 2>/dev/null; then
    echo "DOWN  silent.py (${SILENT_ARGS[*]}): not running"
    bad=1
  elif relay_ok; then
    echo "ok    silent.py (${SILENT_ARGS[*]}) pid $spid"
  else
    echo "DOWN  silent.py: a relay does not answer (127.53.51.1 steady.net, 127.53.51.3, 127.53.52.1-4)"
    bad=1
  fi
  [[ -f $dir/env ]] || { echo "no $dir/env"; bad=1; }
  return $bad
}

sign_zone() { # sign_zone ZONE MODE WORKDIR  -> WORKDIR/ZONE.signed, WORKDIR/ZONE.ds
  local zone=$1 mode=$2 w=$3 zf origin ksk zsk
  zf=$(zone_file_name "$zone")
  origin="$zone"; [[ $origin == . ]] || origin="$zone."
  if [[ $mode == unsigned ]]; then
    cp "$w/$zf.zone" "$w/$zf.signed"
    : >"$w/$zf.ds"
    return
  fi
  (
    # Each key in a directory of its own: ldns-keygen names files by key tag, and two keys of
    # one zone share a tag once in 65536 zones (the second overwrote the first, and CI failed).
    local k="$w/keys/$zf" alg=(-a ECDSAP256SHA256)
    [[ $mode == nsec-ed25519 ]] && alg=(-a ED25519)
    [[ $mode == nsec-rsasha256 ]] && alg=(-a RSASHA256 -b 2048)
    mkdir -p "$k/ksk" "$k/zsk" "$k/other"
    cd "$k/ksk" && ksk="$k/ksk/$(ldns-keygen "${alg[@]}" -k "$origin")"
    cd "$k/zsk" && zsk="$k/zsk/$(ldns-keygen "${alg[@]}" "$origin")"
    cd "$w/keys"
    local args=(-i "$INCEPTION" -e "$EXPIRATION" -o "$origin" -f "$w/$zf.signed")
    [[ $mode == expired-sig ]] && args[1]=$PAST_INCEPTION args[3]=$PAST_EXPIRATION
    [[ $mode == future-sig ]] && args[1]=$FUTURE_INCEPTION
    [[ $mode == nsec3 ]] && args+=(-n -t 0)
    [[ $mode == nsec3-optout ]] && args+=(-n -t 0 -p)
    ldns-signzone "${args[@]}" "$w/$zf.zone" "$ksk" "$zsk"
    case $mode in
      bad-ds)
        # publish in the parent the DS of a key that never signs or appears in the zone
        local other
        other=$(cd "$k/other" && ldns-keygen -a ECDSAP256SHA256 -k "$origin")
        cp "$k/other/$other.ds" "$w/$zf.ds"
        ;;
      *) cp "$ksk.ds" "$w/$zf.ds" ;;
    esac
    if [[ $mode == bogus-sig ]]; then
      # change the data after signing: the RRSIG no longer matches
      sed -i -E 's/^(www\.bogus\.com\.[[:space:]].*[[:space:]]A[[:space:]]+)198\.18\.7\.1$/\1198.18.7.7/' "$w/$zf.signed"
      grep -qE '[[:space:]]A[[:space:]]+198\.18\.7\.7$' "$w/$zf.signed" || die "bogus.com tampering failed"
    fi
    if [[ $zone == . ]]; then
      cp "$ksk.ds" "$w/root.ds"
      cp "$ksk.key" "$w/root.ksk"
    fi
  )
}

write_nsd_conf() { # write_nsd_conf ADDR LABEL ZONES STATEDIR
  local addr=$1 label=$2 zones=$3 dir=$4 sdir z zf
  sdir="$dir/nsd/$label"
  mkdir -p "$sdir"
  local v4=yes v6=no
  [[ $addr == *:* ]] && v4=no v6=yes
  {
    echo "server:"
    echo "  ip-address: $addr"
    echo "  port: 53"
    echo "  do-ip4: $v4"
    echo "  do-ip6: $v6"
    echo "  reuseport: no"
    echo "  server-count: 1"
    echo "  tcp-count: 32"
    echo "  username: \"\""
    echo "  chroot: \"\""
    echo "  zonesdir: \"$dir/zones\""
    echo "  pidfile: \"$sdir/nsd.pid\""
    echo "  logfile: \"$sdir/nsd.log\""
    echo "  database: \"\""
    echo "  zonelistfile: \"$sdir/zone.list\""
    echo "  xfrdfile: \"$sdir/xfrd.state\""
    echo "  xfrdir: \"$sdir\""
    echo "  zonefiles-write: 0"
    echo "  zonefiles-check: no"
    echo "  verbosity: 0"
    echo "  hide-version: yes"
    echo "  hide-identity: yes"
    echo "  identity: \"$label\""
    echo "  minimal-responses: no"
    echo "remote-control:"
    echo "  control-enable: no"
    if [[ $zones != - ]]; then
      for z in $zones; do
        zf=$(zone_file_name "$z")
        echo "zone:"
        echo "  name: \"$z\""
        echo "  zonefile: \"$zf.signed\""
      done
    fi
  } >"$sdir/nsd.conf"
  nsd-checkconf "$sdir/nsd.conf" || die "nsd-checkconf failed for $sdir/nsd.conf"
}

cmd_up() {
  local dir=$1
  local t0
  t0=$(date +%s.%N)
  ensure_tools
  cmd_down_locked "$dir"

  # another STATEDIR's fakenet on the same addresses?
  if [[ -f $ACTIVE_FILE ]]; then
    local other
    other=$(cat "$ACTIVE_FILE")
    if [[ -n $other && $other != "$dir" ]]; then
      if [[ ${FAKENET_TAKEOVER:-0} == 1 ]]; then
        log "taking over from the fakenet of $other"
        stop_all "$other"
      elif dig +norec +tries=1 +time=1 @127.53.0.1 . SOA >/dev/null 2>&1; then
        die "another fakenet (STATEDIR $other) is running on 127.53.x.y:53; run '$0 down $other' or set FAKENET_TAKEOVER=1"
      fi
    fi
  fi
  rm -f "$ACTIVE_FILE"
  if dig +norec +tries=1 +time=1 @127.53.0.1 . SOA 2>/dev/null | grep -q 'status:' &&
    [[ ${FAKENET_TAKEOVER:-0} == 1 ]]; then
    # A fakenet whose state dir was deleted under it (a removed clone): its NSDs still run
    # from `<dir>/nsd/<label>/nsd.conf`. Only those are ours to stop.
    log "stopping orphaned fakenet name servers"
    pkill -f 'nsd -c .*/nsd/[^/]*/nsd\.conf' 2>/dev/null || true
    pkill -f 'unbound -c .*/unbound-[0-9]*/unbound\.conf' 2>/dev/null || true
    for _ in $(seq 50); do
      dig +norec +tries=1 +time=1 @127.53.0.1 . SOA 2>/dev/null | grep -q 'status:' || break
      sleep 0.1
    done
  fi
  if dig +norec +tries=1 +time=1 @127.53.0.1 . SOA 2>/dev/null | grep -q 'status:'; then
    die "something already answers on 127.53.0.1:53 (not started from $dir); stop it first"
  fi

  local w="$dir/work"
  rm -rf "$w" "$dir/zones" "$dir/nsd"
  mkdir -p "$w/keys" "$dir/zones"

  INCEPTION=$(date -u -d '-1 hour' +%Y%m%d%H%M%S)
  EXPIRATION=$(date -u -d '+30 days' +%Y%m%d%H%M%S)
  PAST_INCEPTION=$(date -u -d '-30 days' +%Y%m%d%H%M%S)
  # 3 days: outside the clock skew Unbound allows (10 % of the validity period, at most 24 h)
  PAST_EXPIRATION=$(date -u -d '-3 days' +%Y%m%d%H%M%S)
  FUTURE_INCEPTION=$(date -u -d '+3 days' +%Y%m%d%H%M%S)

  local entry zone parent mode zf pzf
  for entry in "${ZONES[@]}"; do
    IFS='|' read -r zone parent mode <<<"$entry"
    zf=$(zone_file_name "$zone")
    cp "$ZONES_SRC/$zf.zone" "$w/$zf.zone"
  done
  # generated load zone
  awk -v n="$LOAD_HOSTS" 'BEGIN { for (i = 0; i < n; i++) printf "h%d IN A 198.19.%d.%d\n", i, int(i / 256) % 256, i % 256 }' >>"$w/load.test.zone"

  for entry in "${ZONES[@]}"; do
    IFS='|' read -r zone parent mode <<<"$entry"
    zf=$(zone_file_name "$zone")
    sign_zone "$zone" "$mode" "$w"
    if [[ $parent != - && -s $w/$zf.ds ]]; then
      pzf=$(zone_file_name "$parent")
      { echo; echo "; DS for $zone (added by fakenet.sh)"; cat "$w/$zf.ds"; } >>"$w/$pzf.zone"
    fi
    cp "$w/$zf.signed" "$dir/zones/$zf.signed"
  done

  # resolver inputs
  {
    echo "; fake root hints (fakenet.sh) -- loopback only"
    echo ".                        3600000  NS  a.root-servers.test."
    echo ".                        3600000  NS  b.root-servers.test."
    echo "a.root-servers.test.     3600000  A   127.53.0.1"
    echo "b.root-servers.test.     3600000  A   127.53.0.2"
  } >"$dir/root.hints"
  awk '{ print $1, 3600, "IN", "DS", $4, $5, $6, $7 }' "$w/root.ds" >"$dir/root.anchor"
  awk '$3 == "DNSKEY" { print $1, 3600, "IN", "DNSKEY", $4, $5, $6, $7 }' "$w/root.ksk" >"$dir/root.dnskey"
  grep -q 'DNSKEY[[:space:]]*257' "$dir/root.dnskey" || die "could not write root.dnskey"

  # load workload query file: a few benign names of the hierarchy, then the load.test hosts
  {
    for n in www.example.com mail.example.com www.example.net edge.cdnprov.net www.insecure.org \
      www.oob.org safe.fraudwall-demo.test; do echo "$n A"; done
    awk -v n="$LOAD_HOSTS" 'BEGIN { for (i = 0; i < n; i++) printf "h%d.load.test A\n", i }'
  } >"$dir/queries-benign.txt"

  # NSD instances, all started in parallel
  local addr label zones pids=()
  for entry in "${SERVERS[@]}"; do
    IFS='|' read -r addr label zones <<<"$entry"
    write_nsd_conf "$addr" "$label" "$zones" "$dir"
  done
  for entry in "${SERVERS[@]}"; do
    IFS='|' read -r addr label zones <<<"$entry"
    nsd -c "$dir/nsd/$label/nsd.conf" </dev/null >>"$dir/nsd/$label/nsd.log" 2>&1 9>&- &
    pids+=($!)
  done
  local i failed=0
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      IFS='|' read -r addr label zones <<<"${SERVERS[$i]}"
      log "nsd for $addr ($label) failed to start:"
      tail -n 5 "$dir/nsd/$label/nsd.log" >&2 || true
      failed=1
    fi
  done
  echo "$dir" >"$ACTIVE_FILE"
  start_silent "$dir" || failed=1
  if ((failed)); then
    stop_all "$dir"
    die "some NSD instances failed to start (\"Address already in use\"? a system DNS server may hold *:53: systemctl stop nsd / named / dnsmasq)"
  fi

  # wait until every server answers (checked in parallel), and the relay in front of flaky-ns2
  local tries=0 n
  while :; do
    rm -rf "$w/ready" && mkdir -p "$w/ready"
    local checks=()
    for i in "${!SERVERS[@]}"; do
      IFS='|' read -r addr label zones <<<"${SERVERS[$i]}"
      (server_ok "$addr" "$zones" && touch "$w/ready/$i") &
      checks+=($!)
    done
    wait "${checks[@]}" # not a bare `wait`: silent.py is a child of this shell too
    n=$(find "$w/ready" -type f | wc -l)
    ((n == ${#SERVERS[@]})) && relay_ok && break
    if ((++tries >= 50)); then
      stop_all "$dir"
      die "only $n of ${#SERVERS[@]} servers answer after 10 s (see $dir/nsd/*/nsd.log)"
    fi
    sleep 0.2
  done

  {
    echo "FAKENET_STATE_DIR=$dir"
    echo "ROOT_HINTS=$dir/root.hints"
    echo "TRUST_ANCHOR=$dir/root.anchor"
    echo "TRUST_ANCHOR_DNSKEY=$dir/root.dnskey"
    echo "QUERIES_BENIGN=$dir/queries-benign.txt"
    echo "LOAD_HOSTS=$LOAD_HOSTS"
    local all=()
    for entry in "${SERVERS[@]}"; do
      IFS='|' read -r addr label zones <<<"$entry"
      all+=("$addr")
      local var="NS_${label^^}"
      echo "${var//-/_}=$addr"
    done
    echo "SERVERS=\"${all[*]}\""
    echo "DEAD_SERVERS=\"127.53.99.1 127.53.99.2\""
    echo "SILENT_SERVERS=\"127.53.98.1 127.53.98.2\""
    echo "FLAKY_RELAY=127.53.51.1"
    echo "RAWSOA_RELAY=127.53.51.3"
    echo "OBSERVED_LOGS=\"$dir/silent/observed-ns1.log $dir/silent/observed-ns2.log\""
    echo "CUT_LOG=$dir/silent/cut.log"
    echo "SLOW_LOG=$dir/silent/slow.log"
  } >"$dir/env"

  local t1
  t1=$(date +%s.%N)
  for entry in "${SERVERS[@]}"; do
    IFS='|' read -r addr label zones <<<"$entry"
    printf 'fakenet: nsd %-12s %-15s %s\n' "$addr:53" "$label" "$zones"
  done
  printf 'fakenet: silent.py %s\n' "${SILENT_ARGS[*]}"
  printf 'fakenet: up in %s s; state in %s (env, root.hints, root.anchor, root.dnskey, queries-benign.txt)\n' \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" "$dir"
}

cmd_down_locked() {
  stop_all "$1"
}

main() {
  [[ $# -eq 2 ]] || usage
  local cmd=$1 dir=$2
  [[ $dir == /* ]] || dir="$PWD/$dir"
  case $cmd in
    up | down)
      mkdir -p "$dir"
      dir=$(cd "$dir" && pwd -P)
      exec 9>"$LOCK_FILE"
      flock -w 60 9 || die "could not lock $LOCK_FILE"
      if [[ $cmd == up ]]; then cmd_up "$dir"; else cmd_down_locked "$dir"; echo "fakenet: down ($dir)"; fi
      ;;
    status)
      [[ -d $dir ]] || die "no such state dir: $dir"
      dir=$(cd "$dir" && pwd -P)
      cmd_status "$dir"
      ;;
    *) usage ;;
  esac
}

main "$@"
