#!/usr/bin/env bash
# CNI ADD/DEL latency of vswitch-cni (cni/plugin/examples/add_latency.rs):
# a vswitch daemon of its own, one network namespace per pod, N ADDs of tap
# and memif attachments one at a time and P in flight at once, each timed
# from exec to exit of the plugin (vswitch-ipam with its file store is the
# IPAM plugin, as in production). Needs root.
#
#   scripts/bench-cni.sh [--adds N] [--parallel P] [--kinds tap,memif] [--network l3|l2]
#
# PROFILE=release by default (test-release also works: both build with
# optimizations). VSWITCH_CNI_DEBUG=1 prints each ADD's phase timings.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
cargo build --profile "$PROFILE" -p vswitch -p vswitch-ipam -p vswitch-cni
cargo build --profile "$PROFILE" -p vswitch-cni --example add_latency
dir=target/$PROFILE
[ "$PROFILE" = dev ] && dir=target/debug
exec "$dir/examples/add_latency" --bin-dir "$dir" "$@"
