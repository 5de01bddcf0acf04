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
if ((${#need[@]})); then
  echo "tests/run.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The warning page is checked in a real browser (Chromium and CJK fonts).
tests/browser/install.sh >/dev/null
export FRAUDWALL_REQUIRE_BROWSER=1
# Never let a resolver started with the IANA hints send packets off this machine.
if [ -x ../shared/tools/offbox-guard.sh ]; then
  ../shared/tools/offbox-guard.sh
fi

mkdir -p target
cargo build --benches --quiet
cargo test --no-fail-fast "$@" 2>&1 | tee target/cargo-test.log
# Every fuzz target for a bounded run on its committed seeds and the crashes it once found: the
# parsers of packets, lists, RPZ and compiled files must not panic on anything.
command -v cargo-fuzz >/dev/null || cargo install --locked --quiet cargo-fuzz
FUZZ_SECONDS=${FUZZ_SECONDS:-20} tests/fuzz.sh 2>&1 | tee target/fuzz.log
# The deployment: every file through its own checker, then dnsdist in front of two instances
# sharing one list directory (drop a list, both enforce it; kill one, the other answers).
tests/deploy/check.sh 2>&1 | tee target/deploy-check.log
tests/multi_instance.sh 2>&1 | tee target/multi-instance.log

# One closing line for the whole suite.
awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i + 1) ~ /^passed/) p += $i; if ($(i + 1) ~ /^failed/) f += $i } }
  /(PASS|FAIL): [0-9]+ passed, [0-9]+ failed/ { for (i = 1; i <= NF; i++) { if ($(i + 1) ~ /^passed/) p += $i; if ($(i + 1) ~ /^failed/) f += $i } }
  END { printf "tests/run.sh: %d passed, %d failed\n", p, f }
' target/cargo-test.log target/fuzz.log target/deploy-check.log target/multi-instance.log
