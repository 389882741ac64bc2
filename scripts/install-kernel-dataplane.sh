#!/usr/bin/env bash
# Installs what natsim's kernel dataplane (`--dataplane linux`, `natsim diff`, docs/linux.md)
# drives: iproute2 (`ip netns`, `ip link`), nftables (`nft`) and conntrack-tools (`conntrack`).
# Does nothing for a tool already installed. tests/kernel_linux.rs fails, naming the package,
# when any of them is missing: the kernel differential must not skip silently in CI.
set -euo pipefail
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
