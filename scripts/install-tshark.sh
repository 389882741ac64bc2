#!/usr/bin/env bash
# Installs tshark for the tests that read natsim's pcapng output back with Wireshark's own
# dissector (tests/replay_comments.rs filters on frame.comment). Non-interactive: the
# wireshark-common package asks whether non-root users may capture; the answer is preseeded
# (no), which does not matter for reading files. Does nothing if tshark is already installed.
set -euo pipefail
if command -v tshark >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends tshark
tshark --version | head -n 1
