#!/usr/bin/env bash
# Fuzz campaign: what the 30-second CI smoke (scripts/fuzz-smoke.sh) cannot do. Runs every
# cargo-fuzz target for a given time, one target at a time, growing a corpus that lives in a work
# directory outside git (so a campaign can be stopped and resumed, and spread over several runs),
# then merges and minimises each grown corpus with `cargo fuzz cmin` into fuzz/corpus/<target>,
# keeps every crash input with a one-line signature, and prints per-target executions, exec/s,
# coverage and findings.
#
# Usage: scripts/fuzz-campaign.sh [TARGET...]   (default: every target of `cargo fuzz list`)
# Environment:
#   FUZZ_CAMPAIGN_SECONDS  seconds per target and run (default 3600)
#   FUZZ_CAMPAIGN_DIR      work directory (default target/fuzz-campaign); per target it holds
#                          corpus/ (the grown corpus, seeded from fuzz/corpus on the first run),
#                          artifacts/ (crash inputs), runs.log (one line per run: seconds,
#                          executions, coverage before/after) and the libFuzzer logs
#   FUZZ_CAMPAIGN_MERGE    1 (default): after the runs, `cargo fuzz cmin` each grown corpus into
#                          fuzz/corpus/<target> (its inputs are replaced by the minimised set; the
#                          generated seed-* files always stay); 0: leave fuzz/corpus alone
#   FUZZ_SANITIZER         cargo-fuzz sanitizer (default none: works on stable)
#   FUZZ_JOBS              libFuzzer fork children (default 1; one core)
#
# Background-friendly: `nice -n 19 scripts/fuzz-campaign.sh > campaign.log 2>&1 &`. Output is
# line-oriented; stopping it (Ctrl-C, kill) loses at most the run in progress, whose inputs are
# already in the work directory's corpus; run it again to resume.
#
# Value profiling (-use_value_profile=1) makes libFuzzer solve comparisons (ports at block edges,
# protocol numbers, ICMP types); fuzz/dictionaries/<target>.dict is passed when it exists.
set -euo pipefail

seconds=${FUZZ_CAMPAIGN_SECONDS:-3600}
sanitizer=${FUZZ_SANITIZER:-none}
jobs=${FUZZ_JOBS:-1}
merge=${FUZZ_CAMPAIGN_MERGE:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${FUZZ_CAMPAIGN_DIR:-$root/target/fuzz-campaign}
# shellcheck source=scripts/fuzz-common.sh
source "$root/scripts/fuzz-common.sh"

fuzz_prepare "$root" "$sanitizer" "$@"
mkdir -p "$work"
echo "campaign: ${seconds} s per target, work directory $work"

# The panic message of a crash input, on one line (its signature), or the libFuzzer summary.
signature() { # TARGET INPUT
    local out
    out=$(cargo fuzz run -s "$sanitizer" "$1" "$2" -- -runs=1 2>&1 || true)
    local msg
    msg=$(grep -A1 -E "panicked at" <<<"$out" | grep -vE "panicked at|^--" | head -n 1 || true)
    if [ -z "$msg" ]; then
        msg=$(grep -E "^SUMMARY|ERROR: libFuzzer" <<<"$out" | head -n 1 || true)
    fi
    echo "${msg:-no crash on replay}" | cut -c1-300
}

# "#N ... cov: C ft: F ..." of the last progress line of a libFuzzer log, as "N C F".
progress() { # LOG
    local last
    last=$(grep -E '^#[0-9]+' "$1" | tail -n 1 || true)
    printf '%s %s %s\n' \
        "$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")" \
        "$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")" \
        "$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
}

summary=()
for t in "${targets[@]}"; do
    d="$work/$t"
    mkdir -p "$d/corpus" "$d/artifacts"
    if [ -z "$(ls -A "$d/corpus")" ] && [ -d "corpus/$t" ]; then
        cp -R "corpus/$t/." "$d/corpus/"
    fi
    dict=()
    if [ -f "dictionaries/$t.dict" ]; then
        dict=("-dict=$root/fuzz/dictionaries/$t.dict")
    fi
    run=$(date -u +%Y%m%dT%H%M%SZ)
    log="$d/run-$run.log"
    before=$(find "$d/corpus" -type f | wc -l)
    echo "== $t: ${seconds} s from $before inputs (log $log)"
    start=$SECONDS
    status=0
    # Fork mode keeps going after a crash, so one known bug does not end the campaign; crash
    # inputs land in artifacts/ and are classified below.
    cargo fuzz run -s "$sanitizer" "$t" "$d/corpus" -- \
        -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -use_value_profile=1 "${dict[@]}" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$d/artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    took=$((SECONDS - start))
    if [ "$status" -ne 0 ] && ! grep -q '^INFO: exiting: 77 ' "$log"; then
        echo "   libFuzzer failed (status $status):"
        tail -n 20 "$log"
    fi
    read -r execs cov ft < <(progress "$log")
    first=$(grep -E '^#[0-9]+' "$log" | head -n 1 || true)
    cov0=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$first")
    after=$(find "$d/corpus" -type f | wc -l)
    rate='?'
    if [ -n "${execs:-}" ] && [ "$took" -gt 0 ]; then
        rate=$((execs / took))
    fi
    # Findings: every crash input, with its signature, once (signatures.txt is kept across runs).
    touch "$d/signatures.txt"
    findings=0
    for a in "$d/artifacts"/*; do
        [ -f "$a" ] || continue
        findings=$((findings + 1))
        name=$(basename "$a")
        if ! grep -q "^$name " "$d/signatures.txt"; then
            echo "$name $(signature "$t" "$a")" >>"$d/signatures.txt"
        fi
    done
    if [ "$findings" -gt 0 ]; then
        echo "   findings (inputs in $d/artifacts):"
        sed 's/^/     /' "$d/signatures.txt"
    fi
    echo "$run ${took}s execs=${execs:-?} cov=${cov0:-?}->${cov:-?} ft=${ft:-?} corpus=$before->$after findings=$findings" >>"$d/runs.log"
    total=$(awk '{ sub(/s$/, "", $2); s += $2 } END { print s + 0 }' "$d/runs.log")
    summary+=("$(printf '%-16s %6s %7s %11s %7s %11s %6s %13s %8s' "$t" "$took" "$total" \
        "${execs:-?}" "$rate" "${cov0:-?}->${cov:-?}" "${ft:-?}" "$before->$after" "$findings")")
done

if [ "$merge" = 1 ]; then
    for t in "${targets[@]}"; do
        d="$work/$t"
        # cmin merges the grown corpus and the committed one into the smallest set of inputs
        # keeping all their coverage; the committed corpus is then replaced by that set.
        echo "== cmin $t"
        rm -rf "$d/merged"
        mkdir -p "$d/merged"
        cp -R "$d/corpus/." "$d/merged/"
        if [ -d "corpus/$t" ]; then
            cp -R "corpus/$t/." "$d/merged/"
        fi
        if cargo fuzz cmin -s "$sanitizer" "$t" "$d/merged" -- -use_value_profile=1 \
            >"$d/cmin.log" 2>&1; then
            # The generated seeds (seed-*, checked by tests/fuzz_corpus.rs) stay under their
            # names; cmin's copies of them (named by SHA-1) are dropped.
            mkdir -p "corpus/$t"
            find "corpus/$t" -type f ! -name 'seed-*' -delete
            cp -R "$d/merged/." "corpus/$t/"
            for s in "corpus/$t"/seed-*; do
                [ -f "$s" ] || continue
                rm -f "corpus/$t/$(sha1sum "$s" | cut -d' ' -f1)"
            done
            if [ "$t" = sim_world ]; then
                # The CI proof (scripts/fuzz-find-broken.sh) must find the leaky filter by
                # fuzzing, so no committed input may trip it (tests/fuzz_corpus.rs checks).
                (cd "$root" && NATSIM_PRUNE_LEAKY="$root/fuzz/corpus/sim_world" \
                    cargo test --release --quiet --test fuzz_corpus prune_leaky -- --nocapture \
                    | grep '^pruned' | sed 's/^/   /')
            fi
            echo "   $(find "corpus/$t" -type f | wc -l) inputs, $(du -sh "corpus/$t" | cut -f1)"
        else
            echo "   cmin failed, fuzz/corpus/$t left as it was (log $d/cmin.log)"
        fi
    done
fi

echo
printf '%-16s %6s %7s %11s %7s %11s %6s %13s %8s\n' target run_s total_s execs exec/s cov ft corpus findings
printf '%s\n' "${summary[@]}"
