#!/usr/bin/env bash
# Fuzz smoke test for CI: builds every cargo-fuzz target once on the current (stable) toolchain
# without sanitizers, runs each for FUZZ_SECONDS on a throwaway copy of its committed corpus, and
# fails if any target crashes, hangs or runs out of memory. Prints executions per second and
# coverage per target.
#
# Known open bugs: libFuzzer runs in fork mode and keeps going after a crash; every crash input is
# then replayed and its panic message compared with the signatures of fuzz/known-failures.txt
# (lines "<target>/<file> <signature>"). A crash matching a signature of its target is reported
# as known and does not fail the run; any other crash does. Without a known-failures entry this is
# exactly "fail on any crash".
#
# Usage: scripts/fuzz-smoke.sh [TARGET...]     (default: every target of `cargo fuzz list`)
# Environment:
#   FUZZ_SECONDS        seconds per target (default 30)
#   FUZZ_ARTIFACTS_DIR  where crash/timeout inputs are copied (default target/fuzz-artifacts);
#                       upload it from CI, or move a file to fuzz/artifacts/<target>/ to keep it
#   FUZZ_CORPUS_OUT     if set, the grown corpus of each target is copied to $FUZZ_CORPUS_OUT/<target>
#                       (for campaigns; minimise with `cargo fuzz cmin` before committing any)
#   FUZZ_SANITIZER      cargo-fuzz sanitizer (default none: works on stable; "address" needs
#                       nightly or RUSTC_BOOTSTRAP=1, see docs/fuzzing.md)
#
# The committed corpus is never written: libFuzzer adds new inputs to a temporary copy.
set -euo pipefail

seconds=${FUZZ_SECONDS:-30}
sanitizer=${FUZZ_SANITIZER:-none}
root=$(cd "$(dirname "$0")/.." && pwd)
artifacts_out=${FUZZ_ARTIFACTS_DIR:-$root/target/fuzz-artifacts}
# shellcheck source=scripts/fuzz-common.sh
source "$root/scripts/fuzz-common.sh"

fuzz_prepare "$root" "$sanitizer" "$@"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

known_signatures() { # TARGET -> one signature per line
    [ -f known-failures.txt ] || return 0
    grep -v '^#' known-failures.txt | awk -v t="$1" 'index($1, t "/") == 1 { $1 = ""; sub(/^ /, ""); print }'
}

failed=()
summary=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
    if [ -d "corpus/$t" ]; then
        cp -R "corpus/$t/." "$work/$t/corpus/"
    fi
    seeds=$(find "$work/$t/corpus" -type f | wc -l)
    log="$work/$t.log"
    echo "== $t: ${seconds} s from $seeds seeds"
    # -timeout: an input running over 10 s is a hang; -rss_limit_mb: runaway allocation. Fork mode
    # (one child at a time) lets the run continue after a crash so known bugs do not hide new ones.
    status=0
    cargo fuzz run -s "$sanitizer" "$t" "$work/$t/corpus" -- \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$work/$t/artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    result=ok
    known=0
    new=0
    # In fork mode libFuzzer exits with 77 when any child crashed (even with -ignore_crashes),
    # and cargo fuzz turns that into its own failure; the crash inputs are classified below. Any
    # other failure (build, setup, libFuzzer error) is an error.
    if [ "$status" -ne 0 ] && ! grep -q '^INFO: exiting: 77 ' "$log"; then
        result=ERROR
        tail -n 40 "$log"
    fi
    mapfile -t sigs < <(known_signatures "$t")
    for a in "$work/$t/artifacts"/*; do
        [ -f "$a" ] || continue
        out=$(cargo fuzz run -s "$sanitizer" "$t" "$a" 2>&1 || true)
        match=
        for sig in "${sigs[@]}"; do
            if [ -n "$sig" ] && grep -qF -- "$sig" <<<"$out"; then
                match=$sig
                break
            fi
        done
        if [ -n "$match" ]; then
            known=$((known + 1))
        else
            new=$((new + 1))
            echo "-- new failure $(basename "$a"):"
            # The panic message is on the lines after "panicked at"; the input in base64 lets
            # a failure seen only in CI be reproduced (`base64 -d > crash; cargo fuzz run T crash`).
            grep -E -A4 'panicked' <<<"$out" | head -n 12 || true
            grep -E 'SUMMARY' <<<"$out" | head -n 2 || true
            if [ "$(stat -c %s "$a")" -le 4096 ]; then
                echo "   input (base64): $(base64 -w0 "$a")"
            fi
            mkdir -p "$artifacts_out/$t"
            cp "$a" "$artifacts_out/$t/"
        fi
    done
    if [ "$known" -gt 0 ]; then
        echo "   $known crash input(s) match known failures (fuzz/known-failures.txt)"
    fi
    if [ "$new" -gt 0 ]; then
        result=CRASH
        echo "   $new new crash input(s) copied to $artifacts_out/$t"
    fi
    if [ "$result" != ok ]; then
        failed+=("$t")
    elif [ "$known" -gt 0 ]; then
        result=known
    fi
    # Fork mode prints progress as "#N: cov: C ft: F corp: ... exec/s: E ..."; take the last.
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
    elapsed=$(sed -n 's/.* time: \([0-9]*\)s.*/\1/p' <<<"$last")
    secs='?'
    if [ -n "$runs" ] && [ -n "$elapsed" ] && [ "$elapsed" -gt 0 ]; then
        secs=$((runs / elapsed))
    fi
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corpus=$(find "$work/$t/corpus" -type f | wc -l)
    if [ -n "${FUZZ_CORPUS_OUT:-}" ]; then
        mkdir -p "$FUZZ_CORPUS_OUT/$t"
        cp -R "$work/$t/corpus/." "$FUZZ_CORPUS_OUT/$t/"
    fi
    summary+=("$(printf '%-16s %-6s %10s %9s %6s %7s %7s' "$t" "$result" "${runs:-?}" \
        "${secs:-?}" "${cov:-?}" "${ft:-?}" "$corpus")")
done

echo
printf '%-16s %-6s %10s %9s %6s %7s %7s\n' target result execs exec/s cov ft corpus
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz smoke passed"
