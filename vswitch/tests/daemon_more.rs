//! More of the daemon end to end, as root: pods on veth pairs read by the
//! AF_PACKET backend, and IPv6 routing between tap pods (ND both ways).

mod common;

use common::{sh, tag, Daemon, Netns, TempDir, VethPair};
use std::time::Duration;

fn interface<'a>(j: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    j["interfaces"]
        .as_array()
        .expect("interfaces is a list")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no interface {name} in {j}"))
}

/// Two pods on veth pairs whose host ends vswitch reads with `backend`,
/// in one bridge domain: they ping both ways, counters move, MACs are
/// learnt. (TCP streams: kernel_paths.rs.)
fn veth_pods_bridged_by(backend: &str, short: &str, subnet: &str) {
    let id = tag(short);
    let a = Netns::new(format!("vsw-{id}-a"));
    let b = Netns::new(format!("vsw-{id}-b"));
    let va = VethPair::new(&format!("{id}ha"), &format!("{id}pa"), &a);
    let vb = VethPair::new(&format!("{id}hb"), &format!("{id}pb"), &b);
    let (ip_a, ip_b) = (format!("{subnet}.1"), format!("{subnet}.2"));
    a.addr(&format!("{id}pa"), &format!("{ip_a}/24"));
    b.addr(&format!("{id}pb"), &format!("{ip_b}/24"));
    let config = format!(
        "bridge_domains: [{{ id: 1 }}]
interfaces:
  - {{ name: pod-a, type: {backend}, host_ifname: {}, bridge: {{ domain: 1 }} }}
  - {{ name: pod-b, type: {backend}, host_ifname: {}, bridge: {{ domain: 1 }} }}
",
        va.host, vb.host
    );
    let dir = TempDir::new(&id);
    let d = Daemon::start(&dir.0, Some(&config), &[]);

    let before = d.show_json(&["interfaces"]);
    a.ping(&ip_b, 3, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    b.ping(&ip_a, 3, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    let after = d.show_json(&["interfaces"]);
    for name in ["pod-a", "pod-b"] {
        let (b, a) = (interface(&before, name), interface(&after, name));
        for c in ["rx_packets", "tx_packets", "rx_bytes", "tx_bytes"] {
            assert!(a[c].as_u64().unwrap() >= b[c].as_u64().unwrap() + 3, "{name} {c}: {b} -> {a}");
        }
        assert_eq!(a["type"], backend, "{a}");
    }
    let l2 = d.show_json(&["l2fib"]);
    let on: Vec<&str> = l2["l2fib"].as_array().unwrap().iter().map(|e| e["interface"].as_str().unwrap()).collect();
    assert!(on.contains(&"pod-a") && on.contains(&"pod-b"), "{l2}");

    drop(d);
    drop((va, vb));
}

#[test]
fn pods_on_veth_with_af_packet_ping_through_a_bridge() {
    veth_pods_bridged_by("af-packet", "ap", "10.79.0");
}

#[test]
fn pods_on_veth_with_af_xdp_ping_through_a_bridge() {
    veth_pods_bridged_by("af-xdp", "ax", "10.77.0");
}

#[test]
fn pods_ping_over_ipv6_through_vswitch_routing() {
    let id = tag("v6");
    let a = Netns::new(format!("vsw-{id}-a"));
    let b = Netns::new(format!("vsw-{id}-b"));
    let (tap_a, tap_b) = (format!("{id}a"), format!("{id}b"));
    let config = format!(
        "interfaces:
  - {{ name: pod-a, type: tap, host_ifname: {tap_a}, netns: {}, l3: {{ addresses: [fd00:79:1::1/64] }} }}
  - {{ name: pod-b, type: tap, host_ifname: {tap_b}, netns: {}, l3: {{ addresses: [fd00:79:2::1/64] }} }}
",
        a.name, b.name
    );
    let dir = TempDir::new(&id);
    let d = Daemon::start(&dir.0, Some(&config), &[]);
    assert!(a.wait_link(&tap_a, Duration::from_secs(5)), "tap {tap_a} not in {}", a.name);
    assert!(b.wait_link(&tap_b, Duration::from_secs(5)), "tap {tap_b} not in {}", b.name);
    a.ip(&["-6", "addr", "add", "fd00:79:1::2/64", "dev", &tap_a, "nodad"]);
    b.ip(&["-6", "addr", "add", "fd00:79:2::2/64", "dev", &tap_b, "nodad"]);
    a.ip(&["link", "set", &tap_a, "up"]);
    b.ip(&["link", "set", &tap_b, "up"]);
    a.ip(&["-6", "route", "add", "default", "via", "fd00:79:1::1", "dev", &tap_a]);
    b.ip(&["-6", "route", "add", "default", "via", "fd00:79:2::1", "dev", &tap_b]);

    // vswitch answers ND and echo for its own address, then routes.
    a.ping("fd00:79:1::1", 2, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    a.ping("fd00:79:2::2", 3, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    b.ping("fd00:79:1::2", 2, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));

    // The pod's neighbor table holds vswitch's MAC for the gateway.
    let mac = interface(&d.show_json(&["interfaces"]), "pod-a")["mac"].as_str().unwrap().to_string();
    let neigh = a.ip(&["-6", "neigh", "show", "fd00:79:1::1"]);
    assert!(neigh.contains(&mac), "gateway resolved to {mac}: {neigh}");

    let neighbors = d.show_json(&["neighbors"]);
    let learned: Vec<&str> =
        neighbors["neighbors"].as_array().unwrap().iter().map(|n| n["ip"].as_str().unwrap()).collect();
    assert!(learned.contains(&"fd00:79:1::2") && learned.contains(&"fd00:79:2::2"), "{neighbors}");
    let text = d.ctl_ok(&["show", "neighbors"]);
    assert!(text.contains("fd00:79:1::2") && text.contains("fd00:79:2::2"), "{text}");
}

/// Polls `show interfaces` until `name` satisfies `want` (the daemon reads
/// its devices' links once a second).
fn wait_interface(d: &Daemon, name: &str, what: &str, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let j = d.show_json(&["interfaces"]);
        let i = interface(&j, name).clone();
        if want(&i) {
            return i;
        }
        assert!(std::time::Instant::now() < deadline, "{name}: never {what}: {i}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn interfaces_follow_their_kernel_devices_link_and_mtu() {
    let id = tag("lk");
    let a = Netns::new(format!("vsw-{id}-a"));
    let b = Netns::new(format!("vsw-{id}-b"));
    let (pa, pb) = (format!("{id}pa"), format!("{id}pb"));
    let va = VethPair::new(&format!("{id}ha"), &pa, &a);
    let vb = VethPair::new(&format!("{id}hb"), &pb, &b);
    a.addr(&pa, "10.78.0.1/24");
    b.addr(&pb, "10.78.0.2/24");
    // pod-a has no MTU of its own: it follows its device. pod-b sets one.
    let config = format!(
        "bridge_domains: [{{ id: 1 }}]
interfaces:
  - {{ name: pod-a, type: af-packet, host_ifname: {}, bridge: {{ domain: 1 }} }}
  - {{ name: pod-b, type: af-packet, host_ifname: {}, mtu: 1500, bridge: {{ domain: 1 }} }}
",
        va.host, vb.host
    );
    let dir = TempDir::new(&id);
    let d = Daemon::start(&dir.0, Some(&config), &[]);
    a.ping("10.78.0.2", 2, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    wait_interface(&d, "pod-a", "link up", |i| i["link_up"] == true && i["up"] == true);

    // The pod takes its end down: the veth loses carrier, vswitch's
    // interface goes down and says why.
    a.ip(&["link", "set", &pa, "down"]);
    let i = wait_interface(&d, "pod-a", "down", |i| i["up"] == false);
    assert_eq!(i["link_up"], false, "{i}");
    assert!(d.ctl_ok(&["show", "interfaces"]).contains("link down"));
    assert_eq!(interface(&d.show_json(&["interfaces"]), "pod-b")["up"], true, "pod-b is untouched");

    // Back up: traffic flows again without anyone touching vswitch.
    a.ip(&["link", "set", &pa, "up"]);
    wait_interface(&d, "pod-a", "up again", |i| i["up"] == true);
    a.ping("10.78.0.2", 2, 10).unwrap_or_else(|e| panic!("after link up: {e}\n{}", d.log_text()));

    // MTU: the device's where none is configured, the configuration's
    // otherwise.
    sh(&["ip", "link", "set", &va.host, "mtu", "1400"]);
    sh(&["ip", "link", "set", &vb.host, "mtu", "1400"]);
    wait_interface(&d, "pod-a", "MTU 1400", |i| i["mtu"] == 1400);
    let j = d.show_json(&["interfaces"]);
    assert_eq!(interface(&j, "pod-b")["mtu"], 1500, "{j}");
    assert_eq!(interface(&j, "pod-b")["device_mtu"], 1400, "{j}");
    drop(d);
    drop((va, vb));
}

/// The CNI plugin's path through the API, with vswitchctl: each pod's tap
/// (created by the daemon inside the pod's namespace) is patched in with
/// an owner, routed in an L3 network (a /32 host route and a static
/// neighbor per pod, proxy ARP for the rest of the subnet); another
/// owner's interface is refused; removing by owner takes the route and
/// neighbor with it and leaves the other pod alone.
#[test]
fn pods_are_patched_in_and_out_by_owner() {
    let id = tag("pt");
    let a = Netns::new(format!("vsw-{id}-a"));
    let b = Netns::new(format!("vsw-{id}-b"));
    let dir = TempDir::new(&id);
    let d = Daemon::start(&dir.0, Some("vrfs: [{ id: 5 }]\nnetworks: [{ name: red, vrf: 5 }]\n"), &[]);
    let patch = |yaml: &str, extra: &[&str]| {
        let file = dir.0.join("patch.yaml");
        std::fs::write(&file, yaml).unwrap();
        let mut args = vec!["patch", "-f", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        d.ctl(&args)
    };
    let pod = |ns: &Netns, n: u8| {
        let yaml = format!(
            "interfaces:
  - {{ name: c{n}, type: tap, host_ifname: eth0, netns: /run/netns/{ns}, mac: '02:fe:00:00:00:0{n}',
      owner: 'cni:{n}:eth0', l3: {{ vrf: 5, proxy_arp: true }} }}
routes: [{{ vrf: 5, prefix: 10.61.0.{n}/32, interface: c{n} }}]
neighbors: [{{ interface: c{n}, ip: 10.61.0.{n}, mac: '02:aa:00:00:00:0{n}' }}]
",
            ns = ns.name
        );
        let out = patch(&yaml, &[]);
        assert!(out.status.success(), "{}", common::output_text(&out));
        assert!(ns.wait_link("eth0", Duration::from_secs(5)), "no tap in the pod");
        ns.ip(&["link", "set", "eth0", "address", &format!("02:aa:00:00:00:0{n}")]);
        ns.addr("eth0", &format!("10.61.0.{n}/24"));
        ns.ip(&["route", "add", "default", "via", "10.61.0.254"]);
        ns.ip(&["neigh", "add", "10.61.0.254", "lladdr", &format!("02:fe:00:00:00:0{n}"), "dev", "eth0"]);
    };
    // A network alone changes nothing in the data path; the report says so.
    let out = patch("networks: [{ name: blue, vrf: 5, mtu: 1400 }]\n", &[]);
    let report = common::output_text(&out);
    assert!(out.status.success() && report.contains("networks: +blue"), "{report}");
    assert!(d.ctl_ok(&["get"]).contains("name: blue"));
    pod(&a, 1);
    pod(&b, 2);
    a.ping("10.61.0.2", 3, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    b.ping("10.61.0.1", 3, 10).unwrap();

    // Another owner cannot take c2 over; nothing changes.
    let state = d.ctl_ok(&["get"]);
    let out = patch("interfaces: [{ name: c2, type: pg, owner: 'cni:9:eth0' }]\n", &[]);
    let err = common::output_text(&out);
    assert!(!out.status.success() && err.contains("interfaces[0] (c2).owner") && err.contains("cni:2:eth0"), "{err}");
    assert_eq!(d.ctl_ok(&["get"]), state);

    // Removing pod 1 by its owner takes its route and neighbor too.
    let report = d.ctl_ok(&["patch", "--remove-owner", "cni:1:eth0"]);
    assert!(report.contains("c1"), "{report}");
    let state = d.ctl_ok(&["get"]);
    assert!(!state.contains("c1") && !state.contains("10.61.0.1/32") && state.contains("c2"), "{state}");
    assert!(wait_gone(&a), "the tap vswitch made in pod 1 is gone");
    assert!(b.ping("10.61.0.1", 1, 2).is_err(), "pod 1's host route is gone");
    // Removing it again is no error and no change.
    assert!(d.ctl_ok(&["patch", "--remove-owner", "cni:1:eth0"]).contains("no changes"));
}

fn wait_gone(ns: &Netns) -> bool {
    common::wait_for(Duration::from_secs(5), || !ns.has_link("eth0"))
}
