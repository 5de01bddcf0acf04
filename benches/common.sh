# Sourced by the shell benches, from the checkout's root.
#
#   fw_binary          FW (default target/release/fraudwall, built if missing), made absolute
#   workdir NAME DIR…  work=target/NAME, emptied, with DIR… made inside; the pids the bench
#                      appends to `pids` are killed (and waited for) when it exits

fw_binary() {
  FW=${FW:-target/release/fraudwall}
  [ -x "$FW" ] || cargo build --release --quiet
  FW=$(realpath "$FW")
}

workdir() {
  work=$(pwd)/target/$1
  shift
  rm -rf "$work"
  for d in "$@"; do mkdir -p "$work/$d"; done
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
}
