#!/usr/bin/env bash
# Mutation testing of the NAT core (issue: "measure the checker's strength"). Not part of .ci/run:
# one shard of one mode takes hours on 2 cores.
#
#   scripts/mutants.sh MODE [SHARD]        MODE: full | testbed     SHARD: K/N (0-based), default 0/1
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
mode=${1:?usage: scripts/mutants.sh full|testbed [K/N]}
shard=${2:-0/1}

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
