#!/usr/bin/env bash
# Forwarding rate through one device under test between two network
# namespaces, with DPDK testpmd (txonly over net_af_packet) as the generator:
#
#   gen ns: g0 ──veth── d0  [DUT]  d1 ──veth── s0 :sink ns
#
# DUTs, measured in the same run, one after the other:
#   kernel-bridge      a Linux bridge in a DUT namespace (d0, d1 ports)
#   kernel-route       Linux IPv4 forwarding in a DUT namespace
#   vswitch-xc-<kind>  vswitch, L2 cross-connect d0 <-> d1
#   vswitch-ip4-<kind> vswitch, IPv4 routing d0 -> d1
# where <kind> is af-packet or af-xdp (veth ends bound by the backend) or
# tap (the generator and sink devices are vswitch's taps, moved into the
# gen and sink namespaces).
#
# Generator: testpmd txonly, 60-byte UDP frames (64 on a wire), one flow,
# on CPU 0. The packets counted are those the sink's device received
# (rx_packets of s0) over SECONDS_PER_RUN once the generator runs;
# offered = what g0 sent. The sink drops them cheaply: they are
# for an address it does not have (10.90.2.3), so IP input discards them.
#
# Fair CPUs: vswitch runs pinned to CPU 1 (taskset). The kernel DUTs run in
# softirq on the CPU that received the frame, which for a veth is the
# sender's (the generator's) CPU; RPS on d0 moves their processing to CPU 1 too,
# so both kinds of DUT get one core of their own besides the generator's.
#
#   RUNS=3 SECONDS_PER_RUN=5 scripts/bench-kernel.sh [DUT ...]
# Prints one line per run and a median table; --json FILE appends records.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
secs=${SECONDS_PER_RUN:-5}
json=""
duts=()
while (($#)); do
    case "$1" in
        --json) json="$2"; shift 2 ;;
        *) duts+=("$1"); shift ;;
    esac
done
((${#duts[@]})) || duts=(kernel-bridge kernel-route vswitch-xc-af-packet vswitch-ip4-af-packet vswitch-xc-af-xdp vswitch-ip4-af-xdp vswitch-xc-tap vswitch-ip4-tap)

command -v dpdk-testpmd >/dev/null || { echo "bench-kernel: dpdk-testpmd missing (scripts/install-deps.sh installs dpdk-dev)" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p vswitch --bins
bin=$PWD/target/release

tag="vswb$$"
gen="${tag}g" dut="${tag}d" sink="${tag}s"
work=$(mktemp -d)
daemon_pid=""
gen_pid=""
gen_prefix=""
results="$work/results"

cleanup() {
    if [ -n "$gen_pid" ]; then stop_gen; fi
    gen_pid=""
    if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
    daemon_pid=""
    for ns in "$gen" "$dut" "$sink"; do ip netns del "$ns" 2>/dev/null || true; done
    for l in "${tag}d0" "${tag}d1"; do ip link del "$l" 2>/dev/null || true; done
}
trap 'cleanup; rm -rf "$work"' EXIT
trap 'exit 1' INT TERM PIPE

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
stat_of() { in_ns "$1" cat "/sys/class/net/$2/statistics/$3"; }
mac_of() { in_ns "$1" cat "/sys/class/net/$2/address"; }

# veth pair with one queue each end, offloads off (no GSO super-frames),
# end $2 in namespace $1, end $3 in namespace $4 ("" = this namespace).
veth() {
    local ns_a=$1 a=$2 b=$3 ns_b=$4
    ip link add "$a" numtxqueues 1 numrxqueues 1 type veth peer name "$b" numtxqueues 1 numrxqueues 1
    ip link set "$a" netns "$ns_a"
    [ -n "$ns_b" ] && ip link set "$b" netns "$ns_b"
    in_ns "$ns_a" ip link set "$a" up
    if [ -n "$ns_b" ]; then in_ns "$ns_b" ip link set "$b" up; else ip link set "$b" up; fi
}

pods() {
    ip netns add "$gen"
    ip netns add "$sink"
    for ns in "$gen" "$sink"; do in_ns "$ns" ip link set lo up; done
}

# The generator's and sink's addresses once their devices exist.
address_pods() {
    in_ns "$gen" ip addr add 10.90.1.2/24 dev g0
    in_ns "$sink" ip addr add 10.90.2.2/24 dev s0
    in_ns "$sink" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.s0.rp_filter=0
}

# The generator's destination MAC (the DUT's, or the sink's through L2).
peer_mac=""
set_peer() { peer_mac=$1; }

rps_to_cpu1() {
    local ns=$1 dev=$2
    in_ns "$ns" sh -c "echo 2 > /sys/class/net/$dev/queues/rx-0/rps_cpus" 2>/dev/null || true
}

setup_kernel() {
    local mode=$1
    pods
    ip netns add "$dut"
    in_ns "$dut" ip link set lo up
    veth "$gen" g0 d0 "$dut"
    veth "$sink" s0 d1 "$dut"
    address_pods
    rps_to_cpu1 "$dut" d0
    local smac
    smac=$(mac_of "$sink" s0)
    if [ "$mode" = bridge ]; then
        in_ns "$dut" ip link add br0 type bridge
        in_ns "$dut" ip link set br0 up
        in_ns "$dut" ip link set d0 master br0
        in_ns "$dut" ip link set d1 master br0
        # Known destination: forwarded to d1 only, as a learnt MAC would be.
        in_ns "$dut" bridge fdb add "$smac" dev d1 master static
        set_peer "$smac"
    else
        in_ns "$dut" ip addr add 10.90.1.1/24 dev d0
        in_ns "$dut" ip addr add 10.90.2.1/24 dev d1
        in_ns "$dut" sysctl -qw net.ipv4.ip_forward=1
        in_ns "$dut" ip neigh replace 10.90.2.3 lladdr "$smac" dev d1 nud permanent
        set_peer "$(mac_of "$dut" d0)"
    fi
}

start_daemon() {
    local conf=$1
    mkdir -p "$work/state"
    rm -rf "$work/state"/*
    # The whole daemon on CPU 1: its worker spins there; the control
    # threads sleep.
    taskset -c 1 "$bin/vswitch" --config "$conf" --api-socket "$work/api.sock" --state-dir "$work/state" \
        --workers 1 --idle poll --metrics off >"$work/daemon.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 100); do
        [ -S "$work/api.sock" ] && "$bin/vswitchctl" --socket "$work/api.sock" show interfaces >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench-kernel: vswitch did not start:" >&2
    cat "$work/daemon.log" >&2
    exit 1
}

# vswitch as DUT. $1 = xc | ip4, $2 = af-packet | af-xdp | tap
setup_vswitch() {
    local mode=$1 kind=$2
    pods
    local a b
    if [ "$kind" = tap ]; then
        a="${tag}d0" b="${tag}d1"
    else
        veth "$gen" g0 "${tag}d0" ""
        veth "$sink" s0 "${tag}d1" ""
        a="${tag}d0" b="${tag}d1"
    fi
    local port_a port_b
    if [ "$kind" = tap ]; then
        port_a="{ name: in, type: tap, host_ifname: g0, netns: $gen"
        port_b="{ name: out, type: tap, host_ifname: s0, netns: $sink"
    else
        port_a="{ name: in, type: $kind, host_ifname: $a"
        port_b="{ name: out, type: $kind, host_ifname: $b"
    fi
    if [ "$mode" = xc ]; then
        cat >"$work/dut.yaml" <<EOF
interfaces:
  - $port_a, xconnect: { peer: out } }
  - $port_b, xconnect: { peer: in } }
EOF
    else
        cat >"$work/dut.yaml" <<EOF
interfaces:
  - $port_a, mac: "02:90:00:00:00:01", l3: { addresses: [10.90.1.1/24] } }
  - $port_b, mac: "02:90:00:00:00:02", l3: { addresses: [10.90.2.1/24] } }
neighbors:
  - { interface: out, ip: 10.90.2.3, mac: "@SINKMAC@" }
EOF
    fi
    if [ "$kind" = tap ]; then
        # The taps appear in the pods when vswitch starts; the sink's MAC is
        # then known. Start with a placeholder neighbor, then re-apply.
        sed -i 's/@SINKMAC@/02:00:00:00:00:99/' "$work/dut.yaml"
        start_daemon "$work/dut.yaml"
        for _ in $(seq 100); do in_ns "$gen" test -e /sys/class/net/g0 && in_ns "$sink" test -e /sys/class/net/s0 && break; sleep 0.1; done
        in_ns "$gen" ip link set g0 up
        in_ns "$sink" ip link set s0 up
    else
        sed -i "s/@SINKMAC@/$(mac_of "$sink" s0)/" "$work/dut.yaml"
        start_daemon "$work/dut.yaml"
    fi
    address_pods
    if [ "$mode" = ip4 ] && [ "$kind" = tap ]; then
        sed -i "s/02:00:00:00:00:99/$(mac_of "$sink" s0)/" "$work/dut.yaml"
        "$bin/vswitchctl" --socket "$work/api.sock" apply -f "$work/dut.yaml" >/dev/null
    fi
    if [ "$mode" = xc ]; then
        set_peer "$(mac_of "$sink" s0)"
    else
        set_peer "02:90:00:00:00:01"
    fi
}

# testpmd as the generator: txonly over net_af_packet on g0, two lcores
# sharing CPU 0. --stats-period keeps it running without a terminal
# until SIGINT. (trafgen, the other candidate, exits on the first EAGAIN
# a full kernel queue gives, which RPS makes routine.)
start_gen() {
    gen_prefix="${tag}tp$1"
    ip netns exec "$gen" dpdk-testpmd --lcores '(0,1)@0' --no-huge -m 512 --no-pci --no-telemetry \
        --file-prefix "$gen_prefix" --vdev net_af_packet0,iface=g0,qpairs=1 -- \
        --forward-mode=txonly --auto-start --total-num-mbufs=8192 --txpkts=60 \
        --eth-peer=0,"$peer_mac" --tx-ip=10.90.1.2,10.90.2.3 --stats-period=10 >"$work/gen.log" 2>&1 &
    gen_pid=$!
}

stop_gen() {
    kill -INT "$gen_pid" 2>/dev/null || true
    wait "$gen_pid" 2>/dev/null || true
    rm -rf "/var/run/dpdk/$gen_prefix"
}

measure() {
    local name=$1 run=$2
    start_gen "$run"
    # Wait until it sends, then one second of warm-up.
    local t=0
    until [ "$(stat_of "$gen" g0 tx_packets)" -gt 1000 ]; do
        sleep 0.1; t=$((t + 1))
        if [ $t -gt 200 ] || ! kill -0 "$gen_pid" 2>/dev/null; then
            echo "bench-kernel: the generator did not start:" >&2; cat "$work/gen.log" >&2; exit 1
        fi
    done
    sleep 1
    local tx0 rx0 tx1 rx1 t0 t1
    t0=$(date +%s.%N)
    tx0=$(stat_of "$gen" g0 tx_packets)
    rx0=$(stat_of "$sink" s0 rx_packets)
    sleep "$secs"
    tx1=$(stat_of "$gen" g0 tx_packets)
    rx1=$(stat_of "$sink" s0 rx_packets)
    t1=$(date +%s.%N)
    stop_gen
    python3 - "$name" "$run" "$t0" "$t1" "$tx0" "$tx1" "$rx0" "$rx1" >>"$results" <<'PY'
import json, sys
name, run, t0, t1, tx0, tx1, rx0, rx1 = sys.argv[1:]
dt = float(t1) - float(t0)
offered = (int(tx1) - int(tx0)) / dt
fwd = (int(rx1) - int(rx0)) / dt
print(json.dumps({"dut": name, "run": int(run), "seconds": round(dt, 3), "offered_mpps": offered / 1e6,
                  "forwarded_mpps": fwd / 1e6, "ns_per_packet": (1e9 / fwd) if fwd else None}))
PY
    tail -1 "$results"
}

for run in $(seq "$runs"); do
    for d in "${duts[@]}"; do
        case "$d" in
            kernel-bridge) setup_kernel bridge ;;
            kernel-route) setup_kernel route ;;
            vswitch-xc-*) setup_vswitch xc "${d#vswitch-xc-}" ;;
            vswitch-ip4-*) setup_vswitch ip4 "${d#vswitch-ip4-}" ;;
            *) echo "bench-kernel: unknown DUT $d" >&2; exit 2 ;;
        esac
        measure "$d" "$run"
        cleanup
    done
done

[ -n "$json" ] && cat "$results" >>"$json"
python3 - "$results" <<'PY'
import json, statistics, sys
from collections import defaultdict
rs = defaultdict(list)
for line in open(sys.argv[1]):
    d = json.loads(line)
    rs[d["dut"]].append(d)
med = statistics.median
base = {k: med(r["forwarded_mpps"] for r in v) for k, v in rs.items()}
kernel = max(base.get("kernel-bridge", 0), base.get("kernel-route", 0)) or None
print(f"\n{'DUT':24} {'runs':>4} {'offered Mpps':>13} {'forwarded Mpps':>15} {'ns/pkt':>8} {'x best kernel':>14}")
for k, v in rs.items():
    f = base[k]
    ratio = f"{f / kernel:.2f}" if kernel else "-"
    ns = f"{1e3 / f:.0f}" if f else "-"
    print(f"{k:24} {len(v):>4} {med(r['offered_mpps'] for r in v):>13.3f} {f:>15.3f} {ns:>8} {ratio:>14}")
PY
