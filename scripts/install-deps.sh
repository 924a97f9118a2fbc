#!/usr/bin/env bash
# Installs what vswitch's build, tests and demo need on a fresh Debian
# machine with a Rust toolchain, as root. Safe to run again.
set -euo pipefail

packages=(pkg-config iproute2 iputils-ping procps ethtool protobuf-compiler iperf3 curl tcpdump traceroute python3-scapy dpdk dpdk-dev etcd-server golang-go golang-github-appc-cni-dev containernetworking-plugins)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    # Debian starts etcd-server as a system service where systemd runs;
    # vswitch's tests start their own clusters on their own ports.
    if [[ " ${missing[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null \
        && systemctl is-enabled etcd >/dev/null 2>&1; then
        systemctl disable --now etcd >/dev/null 2>&1 || true
    fi
fi

# 2 MiB huge pages for the buffer arena (vswitch falls back to 4 KiB pages
# when there are none, so a failure here is not fatal).
want=${VSWITCH_HUGEPAGES:-512}
have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
if [ "$have" -lt "$want" ]; then
    echo "$want" >/proc/sys/vm/nr_hugepages 2>/dev/null || echo "install-deps: could not reserve huge pages; using 4 KiB pages"
fi
