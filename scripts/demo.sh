#!/usr/bin/env bash
# The demo, on one machine, as root: installs what is missing, builds the
# release binaries, creates seven pod network namespaces, starts vswitch
# with examples/demo.yaml (two tap pods, one veth pod read by AF_XDP and
# a memif CNF bridged, two pods routed with vswitch as their gateway),
# starts the CNF (memif/examples/cnf_echo: a memif client answering ping
# and UDP echo), shows L2 and L3 connectivity with ping, UDP echo,
# traceroute and iperf3, attaches two more pods with the CNI plugin
# (vswitch-cni + vswitch-ipam, as a container runtime would) and pings
# between them,
# prints `vswitchctl show interfaces` and `show runtime`, runs the graph
# benchmark, and removes everything it made. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
echo "== building release binaries"
cargo build --release -q -p vswitch -p vswitch-bench -p vswitch-cni -p vswitch-ipam
cargo build --release -q -p vswitch-memif --example cnf_echo

work=$(mktemp -d /tmp/vswitch-demo.XXXXXX)
pods=(vswdemo-a vswdemo-b vswdemo-c vswdemo-d vswdemo-e vswdemo-f vswdemo-g)
vswitch_pid=""
cnf_pid=""
run_dir_made=""
[ -d /run/vswitch ] || run_dir_made=1
cleanup() {
    set +e
    [ -n "$cnf_pid" ] && kill "$cnf_pid" 2>/dev/null && wait "$cnf_pid" 2>/dev/null
    [ -n "$vswitch_pid" ] && kill "$vswitch_pid" 2>/dev/null && wait "$vswitch_pid" 2>/dev/null
    for p in "${pods[@]}"; do ip netns del "$p" 2>/dev/null; done
    ip link del vsw-demo-eh 2>/dev/null
    rm -rf "$work"
    rm -f /run/vswitch/memif-demo.sock
    [ -n "$run_dir_made" ] && rmdir /run/vswitch 2>/dev/null
}
trap cleanup EXIT
trap "exit 1" INT TERM PIPE  # so that cleanup runs then too
for p in "${pods[@]}"; do
    ip netns del "$p" 2>/dev/null || true
    ip netns add "$p"
    ip -n "$p" link set lo up
done
# pod-e: a veth pair, the host end read by vswitch with AF_XDP. One queue
# per end; no offloads, so every frame fits a buffer.
ip link del vsw-demo-eh 2>/dev/null || true
ip link add vsw-demo-eh numtxqueues 1 numrxqueues 1 type veth peer name vsw-demo-e numtxqueues 1 numrxqueues 1
ip link set vsw-demo-e netns vswdemo-e
ethtool -K vsw-demo-eh tso off gso off tx off >/dev/null
ip netns exec vswdemo-e ethtool -K vsw-demo-e tso off gso off tx off >/dev/null
ip link set vsw-demo-eh up
ip -n vswdemo-e link set vsw-demo-e up

ctl() { target/release/vswitchctl --socket "$work/api.sock" "$@"; }
echo "== starting vswitch with examples/demo.yaml"
target/release/vswitch --config examples/demo.yaml --api-socket "$work/api.sock" --state-dir "$work/state" \
    --metrics off >"$work/vswitch.log" 2>&1 &
vswitch_pid=$!
for _ in $(seq 100); do
    ctl get >/dev/null 2>&1 && ip -n vswdemo-d link show vsw-demo-d >/dev/null 2>&1 && break
    sleep 0.1
done
ctl get >/dev/null || { cat "$work/vswitch.log"; exit 1; }

pod() { ip netns exec "$1" "${@:2}"; }
pod vswdemo-a ip addr add 10.10.0.1/24 dev vsw-demo-a
pod vswdemo-b ip addr add 10.10.0.2/24 dev vsw-demo-b
pod vswdemo-e ip addr add 10.10.0.5/24 dev vsw-demo-e
pod vswdemo-c ip addr add 10.20.1.2/24 dev vsw-demo-c
pod vswdemo-d ip addr add 10.20.2.2/24 dev vsw-demo-d
pod vswdemo-c ip route add default via 10.20.1.1
pod vswdemo-d ip route add default via 10.20.2.1

echo "== L2: pod-a -> pod-b through bridge domain 1"
pod vswdemo-a ping -c 3 -i 0.2 -W 2 10.10.0.2
echo "== L2: pod-e (veth, AF_XDP) -> pod-a (tap) through bridge domain 1"
pod vswdemo-e ping -c 3 -i 0.2 -W 2 10.10.0.1
echo "== memif: the CNF (memif client of vswitch, 10.10.0.9) answers pod-a through bridge domain 1"
target/release/examples/cnf_echo /run/vswitch/memif-demo.sock --id 0 --ip 10.10.0.9/24 >"$work/cnf.log" 2>&1 &
cnf_pid=$!
for _ in $(seq 100); do grep -q ready "$work/cnf.log" && break; sleep 0.1; done
grep ready "$work/cnf.log" || { cat "$work/cnf.log"; exit 1; }
pod vswdemo-a ping -c 3 -i 0.2 -W 2 10.10.0.9
echo "UDP echo (port 7) from pod-a:"
pod vswdemo-a /usr/bin/python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b'hello from pod-a', ('10.10.0.9', 7))
print('  reply:', s.recvfrom(2048)[0].decode())"
ctl show memif
echo "== L3: pod-c (10.20.1.2) -> pod-d (10.20.2.2), vswitch is the gateway"
pod vswdemo-c ping -c 3 -i 0.2 -W 2 10.20.2.2
echo "== traceroute pod-c -> pod-d: vswitch (10.20.1.1) is the first hop (captured with pcap)"
ctl pcap start --interface pod-c --rx --tx --file "$work/pod-c.pcap" >/dev/null
pod vswdemo-c traceroute -n -q 1 -w 2 10.20.2.2
ctl pcap stop
tcpdump -nn -r "$work/pod-c.pcap" 2>/dev/null | head -8
echo "== iperf3 TCP, pod-b -> pod-a, 3 s"
pod vswdemo-a iperf3 -s -1 -D -B 10.10.0.1 >/dev/null 2>&1
sleep 0.5
pod vswdemo-b iperf3 -c 10.10.0.1 -t 3 -f m | tail -4
echo "== iperf3 TCP, pod-e (AF_XDP) -> pod-a (tap), 3 s"
pod vswdemo-a iperf3 -s -1 -D -B 10.10.0.1 >/dev/null 2>&1
sleep 0.5
pod vswdemo-e iperf3 -c 10.10.0.1 -t 3 -f m | tail -4

echo "== CNI: pod-f and pod-g get eth0 from vswitch-cni on the L3 network \"red\" (VRF 7), addresses from vswitch-ipam"
ctl patch -f - <<'EOF'
vrfs: [{ id: 7, name: red }]
networks: [{ name: red, vrf: 7 }]
EOF
# The plugin run exactly as a container runtime runs it: CNI_* environment,
# the network configuration on stdin.
cni() {
    CNI_COMMAND=$1 CNI_CONTAINERID="demo-$2" CNI_NETNS="/run/netns/$2" CNI_IFNAME=eth0 \
        CNI_PATH="$PWD/target/release" target/release/vswitch-cni <<EOF
{"cniVersion": "1.1.0", "name": "red", "type": "vswitch-cni", "apiSocket": "$work/api.sock",
 "ipam": {"type": "vswitch-ipam", "subnet": "10.30.0.0/24", "dataDir": "$work/ipam", "routes": [{"dst": "0.0.0.0/0"}]}}
EOF
}
cni ADD vswdemo-f && echo
cni ADD vswdemo-g >/dev/null
g_ip=$(ip -n vswdemo-g -o -4 addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
echo "   pod-f -> pod-g ($g_ip) through vswitch's VRF 7:"
pod vswdemo-f ping -c 3 -i 0.2 -W 2 "$g_ip" | tail -2

echo "== vswitchctl show interfaces"
ctl show interfaces
echo "== CNI DEL of both pods (their interfaces, routes and addresses go)"
cni DEL vswdemo-f && cni DEL vswdemo-g
echo "   interfaces owned by the CNI plugin left: $(ctl get | grep -c 'owner: cni:' || true)"
echo "== vswitchctl show runtime"
ctl show runtime

echo "== graph benchmark (one worker, 64-byte packets, ${DEMO_SECONDS:=1}s per scenario)"
target/release/vswitch-bench graph --seconds "$DEMO_SECONDS"
echo "== demo done; cleaning up"
