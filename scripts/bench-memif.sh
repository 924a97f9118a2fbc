#!/usr/bin/env bash
# The memif loop rig: one DPDK testpmd (the generator) with two memif client
# ports against a device under test (DUT) owning two memif server sockets.
#
#   testpmd (gen, CPU 0)  port 0 ──memif── A  [DUT, CPU 1]  B ──memif── port 1
#
# Two rigs, every DUT measured in the same run, one after the other:
#
#   loop     the generator in io mode (port 0 <-> port 1) started with
#            `start tx_first 64`: 64 bursts of 32 64-byte frames per port
#            circulate through the DUT as fast as both sides move them (the
#            rig of REFERENCES.md; TX_FIRST=N sends N bursts instead). DUTs:
#              testpmd-io   a second testpmd, io mode (the upper bound here)
#              vswitch-xc   vswitch, L2 cross-connect A <-> B
#              ovs-dpdk     OVS-DPDK userspace (Debian openvswitch-switch-dpdk),
#                           in_port=A -> B and back (n_rxq=2: the generator
#                           then runs 2 queues per port)
#   flowgen  the generator in flowgen mode: it builds 60-byte UDP frames
#            (DPDK 22.11's flowgen: 00:01:02:03:04:00 -> 00:01:02:03:04:01,
#            10.254.0.0 -> 10.253.0.0 + flow, 1024 flows) on both ports,
#            and counts and frees what comes back. Frames are routed once,
#            so this is the rig for IPv4 routing (an io loop would run the
#            TTL down).
#            DUTs:
#              testpmd-io   as above
#              vswitch-xc   as above
#              vswitch-ip4  vswitch routing: 10.253.0.0/16 by ECMP to one
#                           neighbor behind A and one behind B (static
#                           neighbors: the generator's port MACs); A and B
#                           both have flowgen's destination MAC
#
# Forwarded Mpps = the generator's RX packets (both ports, `show port
# stats`) over SECONDS_PER_RUN after a 2 s warm-up. The generator is pinned
# to CPU 0, the DUT to CPU 1 (vswitch: one worker, --idle poll); nothing
# else should run meanwhile (two busy pollers on two cores is the maximum).
#
#   RUNS=3 SECONDS_PER_RUN=10 scripts/bench-memif.sh [RIG:DUT ...]
#   e.g. scripts/bench-memif.sh loop:vswitch-xc flowgen:vswitch-ip4
# Prints one line per run and a table of medians (and best) per rig; --json
# FILE appends the records. SHOW_RUNTIME=1 prints vswitch's `show runtime`,
# `show errors` and `show interfaces` after each vswitch run.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
secs=${SECONDS_PER_RUN:-10}
json=""
cases=()
while (($#)); do
    case "$1" in
        --json) json="$2"; shift 2 ;;
        *) cases+=("$1"); shift ;;
    esac
done
((${#cases[@]})) || cases=(loop:testpmd-io loop:vswitch-xc loop:ovs-dpdk flowgen:testpmd-io flowgen:vswitch-xc flowgen:vswitch-ip4)

command -v dpdk-testpmd >/dev/null || { echo "bench-memif: dpdk-testpmd missing (scripts/install-deps.sh installs dpdk-dev)" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p vswitch --bins
bin=$PWD/target/release
ovs_vswitchd=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk

tag="vswbm$$"
work=$(mktemp -d /tmp/bench-memif.XXXXXX)
results="$work/results"
sock_a="$work/a.sock" sock_b="$work/b.sock"
gen_pid="" gen_prefix="" dut_pid="" dut_prefix="" ovs_up=""

stop_gen() {
    if [ -n "$gen_pid" ]; then
        echo quit >&3 2>/dev/null || true
        exec 3>&- || true
        for _ in $(seq 50); do kill -0 "$gen_pid" 2>/dev/null || break; sleep 0.1; done
        kill "$gen_pid" 2>/dev/null || true
        wait "$gen_pid" 2>/dev/null || true
    fi
    gen_pid=""
    [ -n "$gen_prefix" ] && rm -rf "/var/run/dpdk/$gen_prefix"
    gen_prefix=""
}

stop_ovs() {
    [ -n "$ovs_up" ] || return 0
    local d="$work/ovs"
    for p in ovs-vswitchd ovsdb-server; do
        if [ -f "$d/$p.pid" ]; then
            local pid
            pid=$(cat "$d/$p.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    done
    rm -rf "/var/run/dpdk/${tag}ovs" "$d"
    ovs_up=""
}

stop_dut() {
    if [ -n "$dut_pid" ]; then
        kill -INT "$dut_pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$dut_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$dut_pid" 2>/dev/null || true
        wait "$dut_pid" 2>/dev/null || true
    fi
    dut_pid=""
    [ -n "$dut_prefix" ] && rm -rf "/var/run/dpdk/$dut_prefix"
    dut_prefix=""
    stop_ovs
    rm -f "$sock_a" "$sock_b"
}

cleanup() {
    stop_gen
    stop_dut
}
trap 'cleanup; rm -rf "$work"' EXIT
trap 'exit 1' INT TERM PIPE

# --- devices under test --------------------------------------------------

start_testpmd_dut() {
    dut_prefix="${tag}dut"
    dpdk-testpmd --lcores '(0,1)@1' --no-huge -m 512 --no-pci --no-telemetry --file-prefix "$dut_prefix" \
        --vdev "net_memif0,role=server,socket=$sock_a,socket-abstract=no,id=0" \
        --vdev "net_memif1,role=server,socket=$sock_b,socket-abstract=no,id=0" \
        -- --forward-mode=io --auto-start --total-num-mbufs=32768 --stats-period=1000 >"$work/dut.log" 2>&1 &
    dut_pid=$!
    for _ in $(seq 100); do [ -S "$sock_a" ] && [ -S "$sock_b" ] && return 0; sleep 0.1; done
    echo "bench-memif: testpmd DUT did not start:" >&2; cat "$work/dut.log" >&2; exit 1
}

# vswitch on CPU 1, one polling worker; $1 = xc | ip4
start_vswitch_dut() {
    local mode=$1
    if [ "$mode" = xc ]; then
        cat >"$work/dut.yaml" <<EOF
interfaces:
  - { name: a, type: memif, memif: { socket: $sock_a }, xconnect: { peer: b } }
  - { name: b, type: memif, memif: { socket: $sock_b }, xconnect: { peer: a } }
EOF
    else
        cat >"$work/dut.yaml" <<EOF
interfaces:
  - { name: a, type: memif, memif: { socket: $sock_a }, mac: "00:01:02:03:04:01", l3: { addresses: [10.92.1.1/24] } }
  - { name: b, type: memif, memif: { socket: $sock_b }, mac: "00:01:02:03:04:01", l3: { addresses: [10.92.2.1/24] } }
neighbors:
  - { interface: a, ip: 10.92.1.2, mac: "02:92:00:00:01:00" }
  - { interface: b, ip: 10.92.2.2, mac: "02:92:00:00:01:01" }
routes:
  - prefix: 10.253.0.0/16
    via: [{ address: 10.92.1.2, interface: a }, { address: 10.92.2.2, interface: b }]
EOF
    fi
    rm -rf "$work/state"
    taskset -c 1 "$bin/vswitch" --config "$work/dut.yaml" --api-socket "$work/api.sock" --state-dir "$work/state" \
        --workers 1 --idle poll --metrics off >"$work/dut.log" 2>&1 &
    dut_pid=$!
    for _ in $(seq 100); do
        [ -S "$sock_a" ] && [ -S "$sock_b" ] && "$bin/vswitchctl" --socket "$work/api.sock" get >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench-memif: vswitch did not start:" >&2; cat "$work/dut.log" >&2; exit 1
}

# OVS-DPDK in a private directory with its own database, on CPU 1 (PMD
# thread and the rest), 512 MB of huge pages, no PCI.
start_ovs_dut() {
    [ -x "$ovs_vswitchd" ] || { echo "bench-memif: $ovs_vswitchd missing (apt-get install openvswitch-switch-dpdk)" >&2; return 1; }
    local d="$work/ovs"
    mkdir -p "$d"
    export OVS_RUNDIR="$d" OVS_LOGDIR="$d" OVS_DBDIR="$d" OVS_SYSCONFDIR="$d"
    local db="unix:$d/db.sock"
    vsctl() { ovs-vsctl --db="$db" --timeout=30 "$@"; }
    ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --unixctl="$d/ovsdb-server.ctl" \
        --pidfile="$d/ovsdb-server.pid" --log-file="$d/ovsdb-server.log" --detach
    ovs_up=1
    vsctl --no-wait init
    vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
        other_config:dpdk-extra="--no-pci --no-telemetry --file-prefix ${tag}ovs" \
        other_config:dpdk-socket-mem=512 other_config:dpdk-lcore-mask=0x2 other_config:pmd-cpu-mask=0x2
    taskset -c 1 "$ovs_vswitchd" "$db" --unixctl="$d/ovs-vswitchd.ctl" --pidfile="$d/ovs-vswitchd.pid" \
        --log-file="$d/ovs-vswitchd.log" -vconsole:off --detach
    vsctl add-br br0 -- set bridge br0 datapath_type=netdev
    local i=0 s
    for s in "$sock_a" "$sock_b"; do
        vsctl add-port br0 "m$i" -- set Interface "m$i" type=dpdk \
            options:dpdk-devargs="net_memif$i,role=server,socket=$s,socket-abstract=no,id=0" options:n_rxq=2
        i=$((i + 1))
    done
    ovs-ofctl del-flows br0
    ovs-ofctl add-flow br0 in_port=m0,actions=output:m1
    ovs-ofctl add-flow br0 in_port=m1,actions=output:m0
    for _ in $(seq 100); do [ -S "$sock_a" ] && [ -S "$sock_b" ] && return 0; sleep 0.1; done
    echo "bench-memif: OVS-DPDK did not create its memif sockets:" >&2
    tail -30 "$d/ovs-vswitchd.log" >&2
    return 1
}

# --- the generator ---------------------------------------------------------

# Interactive testpmd on CPU 0 reading commands from a FIFO (fd 3).
# $1 = rig, $2 = queues per port.
start_gen() {
    local rig=$1 queues=$2 run=$3
    gen_prefix="${tag}gen$run"
    rm -f "$work/gen.in"
    mkfifo "$work/gen.in"
    local extra=()
    [ "$rig" = flowgen ] && extra=(--flowgen-flows=1024)
    stdbuf -oL dpdk-testpmd --lcores '(0,1)@0' --no-huge -m 1024 --no-pci --no-telemetry --file-prefix "$gen_prefix" \
        --vdev "net_memif0,role=client,socket=$sock_a,socket-abstract=no,id=0,mac=02:92:00:00:01:00" \
        --vdev "net_memif1,role=client,socket=$sock_b,socket-abstract=no,id=0,mac=02:92:00:00:01:01" \
        -- -i --total-num-mbufs=32768 --rxq="$queues" --txq="$queues" "${extra[@]}" \
        <"$work/gen.in" >"$work/gen.log" 2>&1 &
    gen_pid=$!
    exec 3>"$work/gen.in"
}

gen() { echo "$*" >&3; }

# `show port stats all`: prints "<time> <rx port 0 + rx port 1>".
gen_rx() {
    local n
    n=$(grep -c "NIC statistics for port 1 " "$work/gen.log" || true)
    local t
    t=$(date +%s.%N)
    gen "show port stats all"
    for _ in $(seq 200); do
        if [ "$(grep -c "NIC statistics for port 1 " "$work/gen.log" || true)" -gt "$n" ] \
            && tail -n 20 "$work/gen.log" | grep -q "Tx-pps"; then
            python3 - "$work/gen.log" "$t" <<'PY'
import re, sys
log = open(sys.argv[1]).read()
blocks = {}
for port in (0, 1):
    b = log.rsplit(f"NIC statistics for port {port} ", 1)[1]
    blocks[port] = int(re.search(r"RX-packets:\s+(\d+)", b).group(1))
print(sys.argv[2], blocks[0] + blocks[1])
PY
            return 0
        fi
        sleep 0.05
    done
    echo "bench-memif: no statistics from the generator:" >&2; tail -30 "$work/gen.log" >&2; exit 1
}

# Waits until both generator ports have link.
gen_wait_links() {
    for _ in $(seq 150); do
        gen "show port info all"
        sleep 0.2
        [ "$(grep "Link status" "$work/gen.log" | tail -n 2 | grep -c up || true)" -eq 2 ] && return 0
    done
    echo "bench-memif: the generator's memif ports did not come up:" >&2
    tail -40 "$work/gen.log" >&2; tail -20 "$work/dut.log" >&2 || true
    exit 1
}

measure() {
    local rig=$1 dut=$2 run=$3
    local queues=1
    [ "$dut" = ovs-dpdk ] && queues=2
    case "$dut" in
        testpmd-io) start_testpmd_dut ;;
        vswitch-xc) start_vswitch_dut xc ;;
        vswitch-ip4) start_vswitch_dut ip4 ;;
        ovs-dpdk) if ! start_ovs_dut; then stop_dut; echo "bench-memif: skipping ovs-dpdk" >&2; return 0; fi ;;
        *) echo "bench-memif: unknown DUT $dut" >&2; exit 2 ;;
    esac
    start_gen "$rig" "$queues" "$run"
    gen_wait_links
    if [ "$rig" = loop ]; then
        gen "set fwd io"
        gen "start tx_first ${TX_FIRST:-64}"
    else
        gen "set fwd flowgen"
        gen "start"
    fi
    sleep 2
    local a b
    a=$(gen_rx)
    sleep "$secs"
    b=$(gen_rx)
    gen "stop"
    python3 - "$rig" "$dut" "$run" $a $b >>"$results" <<'PY'
import json, sys
rig, dut, run, t0, rx0, t1, rx1 = sys.argv[1:]
dt = float(t1) - float(t0)
mpps = (int(rx1) - int(rx0)) / dt / 1e6
print(json.dumps({"rig": rig, "dut": dut, "run": int(run), "seconds": round(dt, 3), "mpps": round(mpps, 3)}))
PY
    tail -1 "$results"
    if [[ "$dut" == vswitch-* ]] && [ -n "${SHOW_RUNTIME:-}" ]; then
        for w in runtime errors interfaces; do
            "$bin/vswitchctl" --socket "$work/api.sock" show "$w" | tee -a "$work/runtime.txt"
        done
    fi
    stop_gen
    stop_dut
}

for run in $(seq "$runs"); do
    for c in "${cases[@]}"; do
        measure "${c%%:*}" "${c#*:}" "$run"
    done
done

[ -n "$json" ] && cat "$results" >>"$json"
python3 - "$results" <<'PY'
import json, statistics, sys
from collections import defaultdict
rs = defaultdict(list)
for line in open(sys.argv[1]):
    d = json.loads(line)
    rs[(d["rig"], d["dut"])].append(d["mpps"])
for rig in dict.fromkeys(k[0] for k in rs):
    med = {dut: statistics.median(v) for (r, dut), v in rs.items() if r == rig}
    base = med.get("testpmd-io")
    ovs = med.get("ovs-dpdk")
    print(f"\nrig {rig}: {'DUT':14} {'runs':>4} {'median Mpps':>12} {'best Mpps':>10} {'x testpmd':>10} {'x OVS-DPDK':>11}")
    for (r, dut), v in rs.items():
        if r != rig:
            continue
        m = med[dut]
        xt = f"{m / base:.2f}" if base else "-"
        xo = f"{m / ovs:.2f}" if ovs else "-"
        print(f"{'':12}{dut:14} {len(v):>4} {m:>12.2f} {max(v):>10.2f} {xt:>10} {xo:>11}")
PY
