#!/usr/bin/env bash
# Bounded fuzzing of every target; CI runs it after the tests. Builds the targets with
# cargo-fuzz (installed into $HOME/.cache/carapace/tools when absent) and runs each for
# FUZZ_SECONDS (default 60) on a scratch copy of its committed corpus (fuzz/corpus/<target>),
# so CI never rewrites the tree. A crash fails the run and leaves the input in
# fuzz/artifacts/<target>/: turn it into a unit test beside the code it broke.
#
# The toolchain is stable: cargo-fuzz passes -Z flags, which RUSTC_BOOTSTRAP=1 allows.
# No sanitizer (`-s none`): Carapace's crates forbid unsafe code, and AddressSanitizer would
# double the build for the C code it does not instrument anyway; overflow checks and debug
# assertions are on (`-a`), so arithmetic overflow is a finding.
set -euo pipefail
cd "$(dirname "$0")"
TOOLS="${CARAPACE_TOOLS:-$HOME/.cache/carapace/tools}"
export PATH="$TOOLS/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARAPACE_FUZZ_TARGET:-$HOME/.cache/carapace/fuzz-target}"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"

if ! command -v cargo-fuzz >/dev/null; then
  echo "--- installing cargo-fuzz into $TOOLS"
  cargo install --quiet --locked cargo-fuzz --root "$TOOLS"
fi

echo "--- cargo fuzz build"
cargo fuzz build -s none -a

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
summary=""
for target in $(cargo fuzz list); do
  echo "--- cargo fuzz run $target (${FUZZ_SECONDS} s)"
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  if ! cargo fuzz run -s none -a "$target" "$scratch/$target" "corpus/$target" -- \
      -max_total_time="$FUZZ_SECONDS" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -50 "$log"
    echo "fuzz target $target failed: see fuzz/artifacts/$target/"
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  summary+="$target: $runs executions in ${FUZZ_SECONDS} s, no crash"$'\n'
done
echo "--- fuzz summary"
printf '%s' "$summary"
