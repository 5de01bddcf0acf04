#!/usr/bin/env bash
# Builds every fuzz target (cargo-fuzz, stable toolchain, no sanitizer, debug assertions and
# overflow checks on) and runs each for a bounded time on its committed seed corpus; fails on the
# first crash, leak or timeout, with the input that caused it. Prints executions per target.
#
#   tests/fuzz.sh                      # every target, 30 s each
#   FUZZ_SECONDS=600 tests/fuzz.sh fst_open packet
#
# The first build compiles the dependencies with coverage instrumentation (about 5 min on two
# cores) into $FUZZ_TARGET_DIR (default ~/.cache/fraudwall/fuzz-target); later builds take
# seconds. New inputs the fuzzer finds go to a temporary directory, not
# to the committed seeds (fuzz/seeds/<target>/; regenerate them with
# `cargo test --test fuzz_seeds -- --ignored`). Needs cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${FUZZ_SECONDS:-30}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(packet lists rpz fst_open compile_open)
fi
# The instrumented build lives outside the checkout, so that a fresh clone (CI) reuses it.
target_dir=${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fraudwall/fuzz-target}
flags=(--sanitizer none --debug-assertions --target-dir "$target_dir")

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing; install it with: cargo install cargo-fuzz" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! cargo fuzz build "${flags[@]}" >"$work/build.log" 2>&1; then
  cat "$work/build.log" >&2
  echo "fuzz.sh: building the fuzz targets failed" >&2
  exit 1
fi
failed=0 passed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "fuzz/artifacts/$t"
  log="$work/$t.log"
  # -timeout: an input that takes 10 s is a bug (the inputs are at most a few KiB).
  if cargo fuzz run "${flags[@]}" "$t" "$work/$t" "fuzz/seeds/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    printf 'fuzz %-13s ok    %10s executions in %ss (%s/s)\n' "$t" "${execs:-?}" "$secs" "${rate:-?}"
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf 'fuzz %-13s CRASH\n' "$t"
    # The panic and its message, libFuzzer's verdict, and where the input went.
    awk '/panicked at/ {p = 1} /^stack backtrace/ {p = 0} p' "$log" | head -8 | sed 's/^/    /'
    grep -E '^==[0-9]+==|^SUMMARY|Test unit written to|^Base64:' "$log" | head -8 | sed 's/^/    /'
    cp "$log" "fuzz/artifacts/$t/last.log"
    echo "    full log: fuzz/artifacts/$t/last.log; replay: cargo fuzz run ${flags[*]} $t <crash file>"
    echo "    once fixed, keep the input as fuzz/seeds/$t/crash-<what-it-was> with a regression test"
  fi
done
if ((failed)); then
  echo "fuzz.sh FAIL: $passed passed, $failed failed, 0 skipped"
  exit 1
fi
echo "fuzz.sh PASS: $passed passed, $failed failed, 0 skipped"
