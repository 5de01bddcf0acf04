#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine: installs what the tests talk to (dig, kdig,
# NSD, Unbound, ldns, dnsperf, Chromium), puts the off-box safety net in place, then runs every
# test (unit, property, real-binary tests against a loopback DNS hierarchy, the browser check of
# the warning page, the static checks of the deployment files) and compiles the benches. Needs root (apt-get, port 53 on 127.53.0.0/16 for the fake hierarchy).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dig >/dev/null || need+=(dnsutils)
command -v kdig >/dev/null || need+=(knot-dnsutils)
command -v nsd >/dev/null || need+=(nsd)
command -v unbound >/dev/null || need+=(unbound)
command -v ldns-signzone >/dev/null || need+=(ldnsutils)
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v ip >/dev/null || need+=(iproute2)
# dnstap: a Frame Streams collector, a decoder, and protoc to read the Policy (tests/dnstap.rs).
command -v fstrm_capture >/dev/null || need+=(fstrm-bin)
command -v dnstap-ldns >/dev/null || need+=(dnstap-ldns)
command -v protoc >/dev/null || need+=(protobuf-compiler)
if ((${#need[@]})); then
  echo "tests/run.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The warning page is checked in a real browser (Chromium and CJK fonts).
tests/browser/install.sh >/dev/null
# Everything the tests need is installed now, so no check may be skipped: a test that cannot run
# fails (FRAUDWALL_REQUIRE_ALL=0 lets it skip; each skip says why and is counted below).
export FRAUDWALL_REQUIRE_ALL=${FRAUDWALL_REQUIRE_ALL:-1}
# Never let a resolver started with the IANA hints send packets off this machine.
if [ -x ../shared/tools/offbox-guard.sh ]; then
  ../shared/tools/offbox-guard.sh
fi

mkdir -p target
export FRAUDWALL_SKIP_LOG=$PWD/target/skipped.log
: >"$FRAUDWALL_SKIP_LOG"
# Leave nothing running: the loopback hierarchy the tests brought up, the reference Unbounds
# (some live in statics that are never dropped) and their directories.
cleanup() {
  tests/fakenet/fakenet.sh down target/fakenet >/dev/null 2>&1 || true
  rm -rf target/fakenet/unbound-[0-9]* target/fakenet/unbound-extra-*.conf
}
cleanup
trap cleanup EXIT

cargo build --benches --quiet
# Every stage runs even when one before it failed; the closing line and the exit status sum up.
status=0
stage() { "$@" || status=1; }
stage_log() { # log file, command...
  local log=$1
  shift
  { "$@" 2>&1 | tee "$log"; } || status=1
}
stage_log target/cargo-test.log cargo test --no-fail-fast "$@"
# Every fuzz target for a bounded run on its committed seeds and the crashes it once found: the
# parsers of packets, lists, RPZ and compiled files must not panic on anything.
command -v cargo-fuzz >/dev/null || stage cargo install --locked --quiet cargo-fuzz
FUZZ_SECONDS=${FUZZ_SECONDS:-20} stage_log target/fuzz.log tests/fuzz.sh
# The container image: podman builds docker/Dockerfile (base images made locally, cached),
# runs it as documented, digs it, checks its health check and stops it with SIGTERM. Its
# release binary then serves the stages below, which would otherwise build their own.
stage_log target/container.log tests/deploy/container.sh
if [ -x target/container/fraudwall ]; then
  export FRAUDWALL_RELEASE_BIN=$PWD/target/container/fraudwall
fi
# The deployment: every file through its own checker, then dnsdist in front of two instances
# sharing one list directory (drop a list, both enforce it; kill one, the other answers).
stage_log target/deploy-check.log tests/deploy/check.sh
stage_log target/multi-instance.log tests/multi_instance.sh

# One closing line for the whole suite: every test run, failed or skipped (ignored tests are
# measurements run by hand and named here with their reason; any other skip says why above).
awk -v skiplog="$FRAUDWALL_SKIP_LOG" '
  /^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^passed/) p += $i
      if ($(i + 1) ~ /^failed/) f += $i
      if ($(i + 1) ~ /^ignored/) s += $i
    }
  }
  /^test .* \.\.\. ignored/ { ignored = ignored "  ignored: " substr($0, 6) "\n" }
  /(PASS|FAIL|SKIP): [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped/ {
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^passed/) p += $i
      if ($(i + 1) ~ /^failed/) f += $i
      if ($(i + 1) ~ /^skipped/) s += $i
    }
  }
  /^SKIP / { skips = skips "  " $0 "\n" }
  END {
    # Skips recorded by the Rust tests (common::skip) only reach the log file.
    while ((getline line < skiplog) > 0) { s++; skips = skips "  " line "\n" }
    printf "%s%s", ignored, skips
    printf "tests/run.sh: %d passed, %d failed, %d skipped\n", p, f, s
    exit f > 0
  }
' target/cargo-test.log target/fuzz.log target/container.log target/deploy-check.log \
  target/multi-instance.log || status=1
exit "$status"
