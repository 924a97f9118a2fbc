#!/usr/bin/env bash
# The demo of what vswitch does today, on one machine: builds the release
# binaries and runs the dataplane graph on synthetic traffic for each
# scenario (L2 cross-connect, L2 bridging with 10k MACs, IPv4 routing over
# 1M routes, IPv6 routing over 100k routes), printing Mpps and VPP-style
# per-node clocks per packet. Installs what it needs; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
echo "== building release binaries"
cargo build --release -q -p vswitch-bench
echo "== vswitch-bench graph (one worker, 64-byte packets, ${DEMO_SECONDS:=2}s per scenario)"
target/release/vswitch-bench graph --seconds "$DEMO_SECONDS"
