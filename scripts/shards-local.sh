#!/usr/bin/env bash
# A local stand-in for a Kubernetes Indexed Job, for tests and single machines (not a scheduler):
# runs N shards of a natsim command as separate processes, each with JOB_COMPLETION_INDEX and
# NATSIM_SHARDS set as the Job sets them, waits for all of them, then merges their result files
# with the same natsim binary. The merge's standard output and exit code are the script's.
#
# usage: scripts/shards-local.sh N OUT NATSIM_BINARY swarm --seeds 0..300 --out OUT [...]
#   N       number of shards (1 or more)
#   OUT     the command's --out folder (shard files are read from OUT/shards/)
# Each shard's own output goes to a temporary folder, printed on failure.
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 N OUT NATSIM_BINARY COMMAND [ARGS...]" >&2
    exit 2
fi
n=$1
out=$2
bin=$3
shift 3
command=$1
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
for ((k = 0; k < n; k++)); do
    JOB_COMPLETION_INDEX=$k NATSIM_SHARDS=$n "$bin" "$@" >"$logs/shard-$k.log" 2>&1 &
    pids+=($!)
done
failed=0
for k in "${!pids[@]}"; do
    if ! wait "${pids[$k]}"; then
        echo "shard $k/$n failed:" >&2
        cat "$logs/shard-$k.log" >&2
        failed=1
    fi
done
if [ "$failed" -ne 0 ]; then
    exit 2
fi
files=()
for ((k = 0; k < n; k++)); do
    files+=("$out/shards/$command-$k-of-$n.json")
done
exec "$bin" merge "${files[@]}"
