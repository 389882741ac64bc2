#!/usr/bin/env bash
# Proof that the fuzz targets find a deliberately broken gateway (issue 5): runs the `sim_world`
# target against the broken dataplane BROKEN (NATSIM_FUZZ_BROKEN) from its committed seed corpus,
# which trips no breakage (tests/fuzz_corpus.rs checks that for leaky-filter), until the first
# crash or FIND_SECONDS, and fails if nothing was found. Then it turns the crash into a minimised
# scenario file with `natsim swarm --from-fuzz`, and checks that file: against the broken
# dataplane (`natsim swarm --reproduce FILE --broken BROKEN`) it must fail with exit 4 (an
# invariant violation); with the real gateway (`natsim run FILE`) it must pass (exit 0).
#
# Usage: scripts/fuzz-find-broken.sh [BROKEN]     (default leaky-filter)
# Environment:
#   FIND_SECONDS   time cap for the search (default 180)
#   FUZZ_SEED      libFuzzer -seed (default: libFuzzer picks one; set for repeatable runs)
#   FIND_OUT       keep the crash input and the scenario file here (default: a temporary folder)
#
# Builds the fuzz targets like scripts/fuzz-smoke.sh (up to date after it: seconds) and the
# release `natsim` binary (up to date after `cargo test --release`).
set -euo pipefail

broken=${1:-leaky-filter}
seconds=${FIND_SECONDS:-180}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/fuzz-common.sh
source "$root/scripts/fuzz-common.sh"

fuzz_ensure_cargo_fuzz
cd "$root/fuzz"
fuzz_build none sim_world
(cd "$root" && cargo build --locked --release --quiet --bin natsim)
# Where cargo put it: CARGO_TARGET_DIR when set (absolute or relative to the crate root).
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
natsim=$target_dir/release/natsim

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
work=${FIND_OUT:-$tmp}
mkdir -p "$work/corpus" "$work/artifacts" "$work/scenarios"
cp -R corpus/sim_world/. "$work/corpus/"
log=$work/fuzz.log

echo "== sim_world against NATSIM_FUZZ_BROKEN=$broken: up to ${seconds} s from" \
    "$(find "$work/corpus" -type f | wc -l) seed inputs${FUZZ_SEED:+ (libFuzzer -seed=$FUZZ_SEED)}"
start_ms=$(date +%s%3N)
# Not fork mode: libFuzzer stops at the first crash, which is what is timed.
NATSIM_FUZZ_BROKEN=$broken cargo fuzz run -s none sim_world "$work/corpus" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" ${FUZZ_SEED:+-seed="$FUZZ_SEED"} >"$log" 2>&1 || true
elapsed_ms=$(($(date +%s%3N) - start_ms))
crash=$(find "$work/artifacts" -type f -name 'crash-*' | sort | head -n 1)
if [ -z "$crash" ]; then
    tail -n 30 "$log"
    echo "fuzz-find-broken FAILED: sim_world did not find $broken in ${seconds} s" >&2
    exit 1
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
printf 'found %s after %d.%03d s (%s executions, %s exec/s; includes libFuzzer start-up)\n' \
    "$broken" $((elapsed_ms / 1000)) $((elapsed_ms % 1000)) "${execs:-?}" "${rate:-?}"
grep -m 1 -A 2 'panicked' "$log" || true

echo "== crash input to a minimised scenario"
status=0
"$natsim" swarm --from-fuzz "$crash" --broken "$broken" --out "$work/scenarios" || status=$?
scenario=$work/scenarios/$(basename "$crash").yaml
if [ "$status" -ne 4 ] || [ ! -f "$scenario" ]; then
    echo "fuzz-find-broken FAILED: --from-fuzz gave exit $status, expected 4 and $scenario" >&2
    exit 1
fi
cat "$scenario"

echo "== the scenario against the $broken dataplane (expect exit 4)"
status=0
"$natsim" swarm --reproduce "$scenario" --broken "$broken" || status=$?
if [ "$status" -ne 4 ]; then
    echo "fuzz-find-broken FAILED: exit $status against $broken, expected 4" >&2
    exit 1
fi

echo "== the scenario with the real gateway (expect exit 0)"
status=0
"$natsim" run "$scenario" || status=$?
if [ "$status" -ne 0 ]; then
    echo "fuzz-find-broken FAILED: exit $status with the real gateway, expected 0" >&2
    exit 1
fi
echo "fuzz-find-broken passed: $broken found by sim_world in $((elapsed_ms / 1000)) s," \
    "minimised, reproduced (exit 4), real gateway passes"
