#!/usr/bin/env bash
# Runs `natsim diff` (the linux model against the Linux kernel's NAT) on every library
# scenario and prints one Markdown table row per scenario: packets handed to each dataplane,
# packets compared, verdict agreement, the first difference, and whether the kernel run was
# stopped by an invariant violation. The JSON reports go to OUT (default linux-diff-out/).
# Needs root and scripts/install-kernel-dataplane.sh. Used for reports/LINUX-DIFF.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-linux-diff-out}"
mkdir -p "$OUT"
cargo build --release --quiet
echo "| scenario | model pkts | kernel pkts | compared | agreement | first difference (model → kernel) | kernel run stopped by |"
echo "|---|---|---|---|---|---|---|"
for f in scenarios/*.yaml; do
    n="$(basename "$f" .yaml)"
    txt="$OUT/$n.txt"
    set +e
    ./target/release/natsim diff "$f" --json "$OUT/$n.json" >"$txt" 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq 2 ]; then
        echo "| $n | - | - | - | not run: $(sed -n 's/^error: //p' "$txt" | head -n 1 | cut -c1-120) | | |"
        continue
    fi
    read -r mp kp cp < <(sed -n 's/^  packets: model \([0-9]*\), kernel \([0-9]*\), compared \([0-9]*\)/\1 \2 \3/p' "$txt")
    agree="$(sed -n 's/^  agreement //p' "$txt")"
    first=""
    if grep -q "first divergence" "$txt"; then
        kind="$(sed -n 's/^  first divergence (\(.*\)):/\1/p' "$txt")"
        m="$(grep -m1 '^    model ' "$txt" | sed -e 's/.*no more packets.*/no more packets/' -e 's/.*=> \([a-z_]*\(: [a-z_]*\)\?\).*/\1/')"
        k="$(grep -m1 '^    kernel ' "$txt" | sed -e 's/.*no more packets.*/no more packets/' -e 's/.*=> \([a-z_]*\(: [a-z_]*\)\?\).*/\1/')"
        first="$kind: ${m:-none} → ${k:-none}"
    fi
    stopped="$(sed -n 's/^  kernel run stopped at t=[^:]*: invariant \([a-z-]*\) violated.*/\1/p' "$txt")"
    echo "| $n | $mp | $kp | $cp | $agree | $first | $stopped |"
done
