#!/usr/bin/env bash
# The container image, built and run: podman builds docker/Dockerfile as users build it, runs it
# as its header says (--cap-drop ALL --cap-add NET_BIND_SERVICE, user 10053) and digs it.
#
#   tests/deploy/container.sh        # root: apt-get, podman; CT_DNSDIST=0 skips the dnsdist image
#
# Container registries are not reachable from the machines this runs on, so the base images the
# Dockerfiles name are made here from Debian packages (see docs/OPERATING.md, "Building the
# image without a registry") and kept in podman's store between runs, labelled with their recipe:
#   debian:bookworm-slim     debootstrap --variant=minbase, trimmed as the official slim image
#   rust:1.95-slim-bookworm  that image + gcc, libc6-dev, ca-certificates (as the official
#                            rust slim image) and this machine's Rust 1.95 toolchain at the
#                            official paths (/usr/local/rustup, /usr/local/cargo)
# The first run makes them (minutes); later runs find them by label and podman's layer cache
# keeps the dependency layer of the build stage, also for a fresh clone (the cache keys on the
# content of Cargo.toml and Cargo.lock, not on timestamps).
#
# Then it checks that
#   1. docker/Dockerfile builds (podman build --pull=never --format docker: the OCI format has no
#      HEALTHCHECK), and so does docker/Dockerfile.dnsdist;
#   2. the image runs as documented, with the image's own config (docker/fraudwall.yaml) changed
#      only where this machine needs it: listening on a loopback address of its own
#      (127.0.90.53, port 53: the file capability must work), resolving through tests/fakenet
#      (NSD on 127.53.x.y:53, reached through --network host);
#   3. a listed name is sinkholed, a benign name resolves (and is DNSSEC-validated), the block
#      is in the event log on the log volume;
#   4. the image's HEALTHCHECK passes (`podman healthcheck run`: runs the check once, no systemd
#      timer needed);
#   5. `podman stop` (SIGTERM through tini) stops it gracefully: exit code 0, shutdown log line.
# Last line: "container: PASS|FAIL|SKIP: N passed, N failed, N skipped". SKIP only where podman
# cannot run containers at all and FRAUDWALL_REQUIRE_ALL is not 1. Every packet it sends to DNS
# servers stays on 127.0.0.0/8; the builds fetch from deb.debian.org and crates.io (package
# registries) only when their layers are not cached. Containers are removed on exit; images stay.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
REQUIRE=${FRAUDWALL_REQUIRE_ALL:-0}
ADDR=127.0.90.53            # the container's listen address (host network: a loopback address)
NAME=fraudwall-ct-test      # container name
IMAGE=localhost/fraudwall:test
DD_IMAGE=localhost/fraudwall-dnsdist:test
MIRROR=${CT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Bump when a recipe below changes: the label then differs and that base image is remade.
DEBIAN_RECIPE=1
RUST_RECIPE=3

passed=0 failed=0 skipped=0
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
bad() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; }
check() { # description, then a command: ok when the command succeeds
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
  local verdict=PASS
  ((failed == 0)) || verdict=FAIL
  ((failed || passed)) || verdict=SKIP
  echo "container: $verdict: $passed passed, $failed failed, $skipped skipped"
  [ "$verdict" != FAIL ]
}
cannot_run() { # why: podman cannot work here; a failure when nothing may be skipped
  if [ "$REQUIRE" = 1 ]; then
    bad "$1: required (FRAUDWALL_REQUIRE_ALL=1) and cannot run"
  else
    skipped=$((skipped + 1))
    printf 'SKIP  %s\n' "$1"
  fi
  finish
  exit
}

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v dig >/dev/null || need+=(dnsutils)
command -v flock >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
  echo "container: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } ||
    cannot_run "podman (apt-get could not install ${need[*]})"
fi
if [ -x ../shared/tools/offbox-guard.sh ]; then
  ../shared/tools/offbox-guard.sh
fi

work=$ROOT/target/container
rm -rf "$work"
mkdir -p "$work"

# Podman configured for this script only (the machine-wide files are left alone): runc, cgroupfs
# (no systemd as PID 1 here), no default ulimits (podman's defaults exceed this machine's hard
# limits), events to a file.
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$work/containers.conf

fakenet_up=0
cleanup() {
  podman rm -f -v "$NAME" >/dev/null 2>&1 || true
  if ((fakenet_up)); then
    tests/fakenet/fakenet.sh down "$work/fakenet" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

if ! podman info >"$work/podman-info.log" 2>&1; then
  tail -n 5 "$work/podman-info.log"
  cannot_run "podman info fails: no container engine on this machine"
fi

# --- base images ---------------------------------------------------------------------------------
# The tags the Dockerfile names, as podman resolves them (short names are docker.io/library/...).
RUST_VERSION=$(sed -n 's/^ARG RUST_VERSION=//p' docker/Dockerfile)
SUITE=$(sed -n 's/^ARG DEBIAN_RELEASE=//p' docker/Dockerfile)
DEBIAN_TAG=docker.io/library/debian:$SUITE-slim
RUST_TAG=docker.io/library/rust:$RUST_VERSION-slim-$SUITE
# The toolchain: the one rustup calls $RUST_VERSION.0 (the image tag names major.minor).
toolchain=$(RUSTUP_TOOLCHAIN=$RUST_VERSION.0 rustc --print sysroot 2>/dev/null || true)
toolchain=${toolchain:+$(readlink -f "$toolchain")}
rustc_version=$("$toolchain/bin/rustc" --version 2>/dev/null || true)
DEBIAN_KEY="debootstrap minbase $SUITE $MIRROR recipe $DEBIAN_RECIPE"
# The machine's trust store goes into the stand-in rust image: cargo reaches crates.io from the
# build stage, and a TLS-inspecting proxy between this machine and crates.io signs with a CA
# that only this machine's bundle has.
ca_sum=$(sha256sum /etc/ssl/certs/ca-certificates.crt 2>/dev/null | cut -c1-16)
RUST_KEY="$DEBIAN_KEY + $rustc_version + CA bundle $ca_sum recipe $RUST_RECIPE"

label_of() { podman image inspect --format '{{index .Labels "org.fraudwall.base"}}' "$1" 2>/dev/null || true; }

make_debian() {
  local root=$work/rootfs
  echo "container: making $DEBIAN_TAG (debootstrap $SUITE from $MIRROR; a few minutes)"
  rm -rf "$root"
  debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log"
    return 1
  }
  # As the official slim image: the three suites, no documentation, no apt caches.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${MIRROR%/debian}/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  printf 'Acquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  find "$root/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
  rm -rf "$root"/usr/share/{man,info,locale}/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
  : >"$root/etc/hostname"
  tar --numeric-owner -C "$root" -c . |
    podman import --change "LABEL org.fraudwall.base=\"$DEBIAN_KEY\"" \
      --change 'CMD ["bash"]' - "$DEBIAN_TAG" >"$work/import.log" 2>&1 || {
    cat "$work/import.log"
    return 1
  }
  rm -rf "$root"
}

make_rust() {
  local ctx=$work/rust-ctx
  echo "container: making $RUST_TAG ($DEBIAN_TAG + $rustc_version from $toolchain)"
  rm -rf "$ctx"
  mkdir -p "$ctx"
  # Hard links: no copy of the toolchain's 700 MB (docs left out, as in the official image).
  cp -al "$toolchain" "$ctx/toolchain"
  rm -rf "$ctx/toolchain/share/doc"
  cp "$(command -v rustup)" "$ctx/rustup"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' \
    "$RUST_VERSION.0-x86_64-unknown-linux-gnu" >"$ctx/settings.toml"
  cat >"$ctx/Containerfile" <<EOF
FROM $DEBIAN_TAG
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    RUST_VERSION=$RUST_VERSION.0
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY toolchain /usr/local/rustup/toolchains/$RUST_VERSION.0-x86_64-unknown-linux-gnu
COPY settings.toml /usr/local/rustup/settings.toml
COPY rustup /usr/local/cargo/bin/rustup
RUN for p in cargo cargo-clippy cargo-fmt clippy-driver rustc rustdoc rustfmt; do \\
      ln /usr/local/cargo/bin/rustup /usr/local/cargo/bin/\$p; done \\
 && chmod -R a+w /usr/local/cargo \\
 && rustup --version && cargo --version && rustc --version
LABEL org.fraudwall.base="$RUST_KEY"
EOF
  podman build --pull=never --network host -t "$RUST_TAG" "$ctx" >"$work/rust-image.log" 2>&1 || {
    tail -n 20 "$work/rust-image.log"
    return 1
  }
  rm -rf "$ctx"
}

t0=$SECONDS
if [ -z "$rustc_version" ] || [[ $rustc_version != "rustc $RUST_VERSION."* ]]; then
  bad "a Rust $RUST_VERSION toolchain on this machine for the stand-in $RUST_TAG (rustup toolchain install $RUST_VERSION.0)"
else
  [ "$(label_of "$DEBIAN_TAG")" = "$DEBIAN_KEY" ] || make_debian || true
  [ "$(label_of "$RUST_TAG")" = "$RUST_KEY" ] || make_rust || true
  check "base images $DEBIAN_TAG and $RUST_TAG ($((SECONDS - t0)) s)" \
    test "$(label_of "$DEBIAN_TAG")" = "$DEBIAN_KEY" -a "$(label_of "$RUST_TAG")" = "$RUST_KEY"
fi

# --- build ---------------------------------------------------------------------------------------
# As users build it (docker/Dockerfile header), plus what podman needs: --format docker keeps the
# HEALTHCHECK (the OCI format has none), --pull=never uses the local base images, --network host
# gives cargo and apt-get the machine's route to crates.io and deb.debian.org. Podman reads
# docker/Dockerfile.dockerignore itself, as BuildKit does.
build() { # DOCKERFILE TAG LOG
  local t=$SECONDS rc=0
  podman build --pull=never --format docker --network host -f "$1" -t "$2" . >"$3" 2>&1 || rc=$?
  if ((rc)); then tail -n 25 "$3" | sed 's/^/      /'; fi
  echo "      $(grep -c -- '--> Using cache' "$3" || true) cached steps, $((SECONDS - t)) s"
  return "$rc"
}
built=0
if ((failed == 0)); then
  if build docker/Dockerfile "$IMAGE" "$work/build.log"; then
    ok "podman build -f docker/Dockerfile"
    built=1
  else
    bad "podman build -f docker/Dockerfile"
  fi
  # Its release binary, for the stages of tests/run.sh that need one (same source, same
  # toolchain, Debian $SUITE like this machine): they then need no release build of their own.
  extract() {
    local id
    id=$(podman create "$IMAGE") || return 1
    podman cp "$id:/usr/local/bin/fraudwall" "$work/fraudwall" || { podman rm "$id" >/dev/null 2>&1; return 1; }
    # (podman 4.3 without systemd logs that it cannot remove a health-check timer: harmless)
    podman rm "$id" >/dev/null 2>&1
    "$work/fraudwall" --version >/dev/null 2>&1 || { rm -f "$work/fraudwall"; return 1; }
  }
  if ((built)) && ! extract; then echo "      (its binary does not run on this host; the other stages build their own)"; fi
  if ((built)); then
    health=$(podman image inspect --format '{{json .HealthCheck}}' "$IMAGE" 2>/dev/null || true)
    check "the image keeps its HEALTHCHECK ($health)" grep -q fraudwall-healthcheck <<<"$health"
  fi
  if [ "${CT_DNSDIST:-1}" = 1 ]; then
    check "podman build -f docker/Dockerfile.dnsdist" \
      build docker/Dockerfile.dnsdist "$DD_IMAGE" "$work/build-dnsdist.log"
  fi
fi

# --- run -----------------------------------------------------------------------------------------
if ((built)); then
  # The loopback fakenet, shared with the Rust tests: take the harness lock, use a healthy
  # running one read-only, start (and later stop) our own only when none runs.
  exec 9>/tmp/fakenet-harness.lock
  if ! flock -n 9; then
    echo "container: waiting for another fakenet user (/tmp/fakenet-harness.lock)"
    flock -w 900 9
  fi
  fn_dir=$(cat /tmp/fakenet-active 2>/dev/null || true)
  if [ -n "$fn_dir" ] && [ -f "$fn_dir/env" ] &&
    tests/fakenet/fakenet.sh status "$fn_dir" >/dev/null 2>&1; then
    echo "container: using the running fakenet in $fn_dir"
  else
    fn_dir=$work/fakenet
    FAKENET_TAKEOVER=1 tests/fakenet/fakenet.sh up "$fn_dir" >"$work/fakenet.log" 2>&1 || {
      tail -n 20 "$work/fakenet.log"
      bad "the loopback fakenet comes up"
      finish
      exit 1
    }
    fakenet_up=1
  fi
  # shellcheck disable=SC1091
  . "$fn_dir/env"

  # The image's own config, changed only where this machine needs it: every listener on our
  # loopback address (host network), the fakenet's root hints and trust anchor.
  mkdir -p "$work/lists" "$work/etc"
  cp blocklists/sample-fraud.txt blocklists/allowlist.txt "$work/lists/"
  cp "$ROOT_HINTS" "$work/etc/root.hints"
  cp "$TRUST_ANCHOR" "$work/etc/root.anchor"
  sed -e "s/\"0\.0\.0\.0:/\"$ADDR:/g" -e '/^listen:/s/, "\[::\]:53"//' \
    -e '/^resolver:/a\  root_hints: /etc/fraudwall/test/root.hints\n  trust_anchor: /etc/fraudwall/test/root.anchor\n  allow_private_servers: true' \
    docker/fraudwall.yaml >"$work/etc/fraudwall.yaml"
  chmod -R a+rX "$work/lists" "$work/etc"
  podman rm -f -v "$NAME" >/dev/null 2>&1 || true
  # As the Dockerfile header runs it, with the host network instead of -p (the fakenet is on
  # the host's loopback).
  run_ok() {
    podman run -d --name "$NAME" --cap-drop ALL --cap-add NET_BIND_SERVICE --network host \
      -e FRAUDWALL_HEALTH_ADDR="$ADDR" \
      -v "$work/lists:/var/lib/fraudwall/lists:ro" \
      -v "$work/etc/fraudwall.yaml:/etc/fraudwall/fraudwall.yaml:ro" \
      -v "$work/etc:/etc/fraudwall/test:ro" \
      "$IMAGE" >"$work/run.log" 2>&1 || { sed 's/^/      /' "$work/run.log"; return 1; }
  }
  check "podman run --cap-drop ALL --cap-add NET_BIND_SERVICE (listening on $ADDR:53)" run_ok
  listening() { # the startup log line, within 60 s (the blocklist is compiled first)
    local end=$((SECONDS + 60))
    until podman logs "$NAME" 2>&1 | grep -q "listening on udp $ADDR:53"; do
      if ((SECONDS >= end)) || [ "$(podman inspect --format '{{.State.Running}}' "$NAME")" != true ]; then
        podman logs "$NAME" 2>&1 | tail -n 10 | sed 's/^/      /'
        return 1
      fi
      sleep 0.3
    done
  }
  check "fraudwall in the container is listening on udp $ADDR:53" listening
  # tini and fraudwall: the image's USER, no capability but the one added.
  user_is() {
    local top
    top=$(podman top "$NAME" huser capbnd | sed 1d | tr -s ' ' | sed 's/ $//' | sort -u)
    [ "$top" = "10053 NET_BIND_SERVICE" ] || { echo "      podman top: $top"; return 1; }
  }
  check "it runs as user 10053 with only NET_BIND_SERVICE (podman top)" user_is

  # "STATUS flags ip,ip" for an A query.
  ask() {
    local out status flags ans
    out=$(dig @"$ADDR" -p 53 +time=3 +tries=2 +dnssec "$1" A 2>&1) || { echo NOANSWER; return 0; }
    status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out" | head -n 1)
    flags=$(sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' <<<"$out" | head -n 1)
    ans=$(awk '/^;; ANSWER SECTION:/ { f = 1; next } /^$/ { f = 0 } f && $4 == "A" { print $5 }' \
      <<<"$out" | paste -sd, -)
    echo "${status:-UNPARSABLE} ${ans:--} ${flags// /+}"
  }
  expect() { # NAME WANT (a regular expression over ask's output)
    local got
    got=$(ask "$1")
    [[ $got =~ $2 ]] || { echo "      $1: got '$got', want /$2/"; return 1; }
  }
  check "www.fraudwall-demo.test (sample-fraud.txt) is sinkholed to 127.0.0.1" \
    expect www.fraudwall-demo.test '^NOERROR 127\.0\.0\.1 '
  check "www.example.com resolves through the fakenet, validated (198.18.0.10, ad)" \
    expect www.example.com '^NOERROR 198\.18\.0\.10 .*ad'
  event_logged() {
    local end=$((SECONDS + 5))
    until podman exec "$NAME" cat /var/log/fraudwall/blocked.jsonl 2>/dev/null |
      grep -q '"qname":"www.fraudwall-demo.test"'; do
      ((SECONDS < end)) || return 1
      sleep 0.3
    done
  }
  check "the block is in the event log on the /var/log/fraudwall volume" event_logged
  healthy() { podman healthcheck run "$NAME" >"$work/health.log" 2>&1 || { sed 's/^/      /' "$work/health.log"; return 1; }; }
  check "podman healthcheck run: the image's HEALTHCHECK passes" healthy

  # docker stop / podman stop: SIGTERM (STOPSIGNAL) to tini, which forwards it to fraudwall.
  t=$SECONDS
  podman stop -t 20 "$NAME" >/dev/null 2>&1 || true
  code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME" 2>/dev/null || echo none)
  stopped_gracefully() {
    [ "$code" = 0 ] || return 1
    # Into a file first: with pipefail, `podman logs | grep -q` fails when grep exits at the
    # match before podman has written everything (SIGPIPE).
    podman logs "$NAME" >"$work/stop.log" 2>&1 || true
    grep -q 'shutting down: finishing queries in flight' "$work/stop.log" || {
      tail -n 5 "$work/stop.log" | sed 's/^/      /'
      return 1
    }
  }
  check "podman stop: SIGTERM ends it gracefully (exit code $code after $((SECONDS - t)) s, shutdown logged)" \
    stopped_gracefully
fi

finish
