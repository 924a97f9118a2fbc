#!/usr/bin/env bash
# Runs `vswitch-bench graph` RUNS times (default 5) and prints, per
# scenario, the median Mpps, cycles per packet and per-node clocks per
# packet: the figures docs/BENCHMARKS.md records.
#   RUNS=5 SECONDS_PER_RUN=3 scripts/bench-graph.sh [--scenario NAME ...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p vswitch-bench
runs=${RUNS:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$runs"); do
    target/release/vswitch-bench graph --seconds "${SECONDS_PER_RUN:-3}" --json "$@" >>"$out"
done
python3 - "$out" <<'PY'
import json, statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    d = json.loads(line)
    runs[d["scenario"]].append(d)
med = statistics.median
for name, rs in runs.items():
    print(f"{name}: {len(rs)} runs, {rs[0]['setup']}")
    print(f"  Mpps {med(r['mpps'] for r in rs):.2f} (min {min(r['mpps'] for r in rs):.2f}, max {max(r['mpps'] for r in rs):.2f})"
          f"  ns/pkt {med(r['ns_per_packet'] for r in rs):.1f}"
          f"  cycles/pkt all {med(r['cycles_per_packet'] for r in rs):.1f}"
          f"  graph {med(r['graph_cycles_per_packet'] for r in rs):.1f}"
          f"  setup {med(r['setup_seconds'] for r in rs):.2f} s")
    nodes = defaultdict(list)
    for r in rs:
        for n in r["nodes"]:
            nodes[n["name"]].append(n["clocks_per_packet"])
    print("  " + ", ".join(f"{k} {med(v):.1f}" for k, v in nodes.items()))
PY
