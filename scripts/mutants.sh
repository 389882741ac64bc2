#!/usr/bin/env bash
# Mutation testing of the NAT core (issue: "measure the checker's strength"). Not part of .ci/run:
# one shard of one mode takes hours on 2 cores.
#
#   scripts/mutants.sh MODE [SHARD]        MODE: full | testbed     SHARD: K/N (0-based), default 0/1
#   scripts/mutants.sh merge MODE N        joins the N shards' lists of MODE into mutants-out/MODE/
#
# Without SHARD, JOB_COMPLETION_INDEX and NATSIM_SHARDS (both set, as in a Kubernetes Indexed Job;
# docs/scale-out.md) name the shard. cargo-mutants assigns mutants to shards itself (`--shard`).
#
#   full     every test of the suite (`cargo test --release`) judges each mutant
#   testbed  only the testbed itself: the scenario library and 500 swarm seeds
#            (tests/testbed_strength.rs); no unit tests, no SPEC-named tests
#
# Output goes to mutants-out/MODE-K-of-N/ (cargo-mutants' outcomes.json, caught.txt, missed.txt,
# timeout.txt, unviable.txt). reports/MUTANTS.md says how the figures were read from them.
set -euo pipefail
cd "$(dirname "$0")/.."

MUTANTS_VERSION=27.1.0
mode=${1:?usage: scripts/mutants.sh full|testbed [K/N] | merge full|testbed N}

if [ "$mode" = merge ]; then
    # cargo-mutants does not merge shards: join each outcome list of the N shard folders, refusing
    # an incomplete set (a missing shard would silently drop its mutants from the figures).
    of=${2:?usage: scripts/mutants.sh merge full|testbed N}
    n=${3:?usage: scripts/mutants.sh merge full|testbed N}
    merged="mutants-out/$of"
    missing=()
    for ((k = 0; k < n; k++)); do
        [ -f "mutants-out/$of-$k-of-$n/mutants.out/outcomes.json" ] || missing+=("$k/$n")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "error: incomplete set: shard(s) ${missing[*]} of $of have no outcomes.json" >&2
        exit 2
    fi
    mkdir -p "$merged"
    for list in caught missed timeout unviable; do
        for ((k = 0; k < n; k++)); do
            cat "mutants-out/$of-$k-of-$n/mutants.out/$list.txt" 2>/dev/null || true
        done | LC_ALL=C sort >"$merged/$list.txt"
        echo "$list: $(wc -l <"$merged/$list.txt")"
    done
    echo "merged $n shards of $of into $merged/"
    exit 0
fi

if [ -n "${2:-}" ]; then
    shard=$2
elif [ -n "${JOB_COMPLETION_INDEX:-}" ] && [ -n "${NATSIM_SHARDS:-}" ]; then
    shard="$JOB_COMPLETION_INDEX/$NATSIM_SHARDS"
else
    shard=0/1
fi

if ! cargo mutants --version 2>/dev/null | grep -q "$MUTANTS_VERSION"; then
    echo "installing cargo-mutants $MUTANTS_VERSION"
    cargo install cargo-mutants --locked --version "$MUTANTS_VERSION"
fi

# The gateway's core files: allocator, connection table, TCP machine, translation.
files=(-f src/nat/ports.rs -f src/nat/table.rs -f src/nat/tcp.rs -f "src/nat/gateway/*.rs")
out="mutants-out/$mode-${shard/\//-of-}"
mkdir -p "$out"

case "$mode" in
full)
    cargo mutants "${files[@]}" --shard "$shard" --output "$out" \
        --profile mutants --timeout-multiplier 3 -- --locked
    ;;
testbed)
    cargo mutants "${files[@]}" --shard "$shard" --output "$out" \
        --profile mutants --timeout-multiplier 3 \
        --cargo-test-arg=--test=testbed_strength -- --locked
    ;;
*)
    echo "unknown mode $mode (full or testbed)" >&2
    exit 2
    ;;
esac
