#!/usr/bin/env bash
# Runs one fuzz target for a while: fuzz/run.sh TARGET SECONDS [extra libFuzzer flags]
#
# Targets: endpoint_request, barrier_message, published_state, coordinator_inputs.
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz passes nightly-only flags
# (-Zsanitizer=address) to rustc; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them, so no nightly toolchain is needed.
#
# The committed seeds in fuzz/corpus/TARGET are read but never written: libFuzzer adds
# new inputs to fuzz/work/TARGET (git-ignored). Crashes land in fuzz/artifacts/TARGET;
# minimise one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz tmin TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
target=${1:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags]}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags]}
shift 2
cd "$(dirname "$0")/.."
mkdir -p "fuzz/work/$target" "fuzz/corpus/$target"
RUSTC_BOOTSTRAP=1 exec cargo fuzz run --fuzz-dir fuzz "$target" \
    "fuzz/work/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 "$@"
