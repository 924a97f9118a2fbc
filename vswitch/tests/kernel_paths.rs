//! Kernel paths end to end, as root: what a pod sees on the wire (VLAN
//! tags checked with tcpdump), traceroute and path MTU discovery through
//! vswitch routing (ICMP and ICMPv6 errors), malformed frames injected
//! with scapy, TCP streams with iperf3 over tap and AF_PACKET pods, and a
//! killed daemon coming back for both kinds of pods.
//!
//! Pods are network namespaces, attached by taps vswitch creates in them
//! (`netns:`) or by veth pairs whose host end vswitch reads with
//! AF_PACKET. Every wait polls with a generous timeout: the tests run on
//! loaded machines.

mod common;

use common::{output_text, tag, wait_for, Bg, Daemon, Netns, TempDir, VethPair};
use std::path::Path;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

/// Debian's python, which has scapy (the one on PATH may not).
const PYTHON: &str = "/usr/bin/python3";

fn wait_taps(ns: &Netns, taps: &[&str]) {
    for t in taps {
        assert!(ns.wait_link(t, LONG), "tap {t} not in {}", ns.name);
    }
}

/// Gives `dev` IPv6 address `addr` without duplicate address detection.
fn addr6(ns: &Netns, dev: &str, addr: &str) {
    ns.ip(&["-6", "addr", "add", addr, "dev", dev, "nodad"]);
    ns.ip(&["link", "set", dev, "up"]);
}

/// Pings until it works (the first replies may wait for ARP/ND and
/// learning), with the daemon's log on failure.
fn ping_ok(d: &Daemon, ns: &Netns, dst: &str) {
    ns.ping(dst, 2, 20).unwrap_or_else(|e| panic!("{e}\n--- daemon log ---\n{}", d.log_text()));
}

/// tcpdump on `dev` in `ns` (the root namespace with `None`), writing a
/// pcap file packet by packet; waits until it listens.
struct Capture {
    bg: Bg,
    file: std::path::PathBuf,
    dev: String,
}

impl Capture {
    fn start(ns: Option<&Netns>, dir: &Path, name: &str, dev: &str) -> Capture {
        let file = dir.join(format!("{name}.pcap"));
        let f = file.to_str().unwrap();
        let args = ["tcpdump", "-Z", "root", "-i", dev, "--immediate-mode", "-U", "-nn", "-w", f];
        let mut bg = match ns {
            Some(ns) => ns.spawn(dir, name, &args),
            None => Bg::start(dir, name, &args),
        };
        let ready = wait_for(LONG, || bg.stderr_text().contains("listening on") || !bg.running());
        assert!(ready && bg.running(), "tcpdump on {dev} did not start: {}", bg.stderr_text());
        Capture { bg, file, dev: dev.to_string() }
    }

    /// What was captured so far, as tcpdump reads it: one line a frame,
    /// with link-level headers (`-e`), no timestamps.
    fn lines(&self) -> Vec<String> {
        let out = std::process::Command::new("tcpdump")
            .args(["-r", self.file.to_str().unwrap(), "-t", "-e", "-nn"])
            .output()
            .expect("tcpdump -r");
        // A packet being written may be cut short: tcpdump then complains
        // but prints the whole ones.
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    }

    /// Waits until `want` holds for what was captured (the capture lags
    /// behind the traffic), then stops and returns it.
    fn stop_when(mut self, want: impl Fn(&[String]) -> bool) -> Vec<String> {
        wait_for(LONG, || want(&self.lines()));
        self.bg.stop_with(2);
        let lines = self.lines();
        assert!(!lines.is_empty(), "nothing captured on {}: {}", self.dev, self.bg.stderr_text());
        lines
    }
}

/// The lines that contain `what`.
fn having(lines: &[String], what: &str) -> Vec<String> {
    lines.iter().filter(|l| l.contains(what)).cloned().collect()
}

fn dump(lines: &[String]) -> String {
    lines.join("\n")
}

// ---------------------------------------------------------------------
// 1. VLAN trunk and access ports, checked on the wire.

/// How the trunk wire between the two trunk ports is made.
#[derive(Clone, Copy, PartialEq)]
enum Wire {
    /// A veth pair in the root namespace, both ends read with AF_PACKET.
    Veth,
    /// Two taps in a "wire" namespace, joined by a Linux bridge.
    Taps,
}

/// Pod A and pod B are on access ports (untagged taps) of different
/// bridge domains; each domain reaches a trunk port through a VLAN
/// sub-interface (`pop-1` for VLAN 100, `pop-2` for QinQ 200/100), and the
/// two trunk ports are joined by a wire that tcpdump watches. So A reaches
/// B only if vswitch pushes the tags on one trunk and pops them on the
/// other. (The test kernel has no 802.1Q support — CONFIG_VLAN_8021Q, the
/// bridge's VLAN filtering and act_vlan are all off — so the pods cannot
/// tag frames themselves: the tagging end is vswitch's second trunk.)
fn vlan_trunk(t: &str, wire: Wire) {
    let id = tag(t);
    let a = Netns::new(format!("vsw-{id}-a"));
    let b = Netns::new(format!("vsw-{id}-b"));
    let w = Netns::new(format!("vsw-{id}-w"));
    let dir = TempDir::new(&id);
    let (a1, a2, b1, b2) = (format!("{id}a1"), format!("{id}a2"), format!("{id}b1"), format!("{id}b2"));
    let (tx, ty) = (format!("{id}x"), format!("{id}y"));
    let _veth = (wire == Wire::Veth).then(|| VethPair::wire(&tx, &ty));
    let trunk = |name: &str, dev: &str, bd1: u32, bd2: u32| match wire {
        Wire::Veth => format!(
            "  - name: {name}\n    type: af-packet\n    host_ifname: {dev}\n    vlans:
      - {{ id: 100, tag_rewrite: pop-1, bridge: {{ domain: {bd1} }} }}
      - {{ id: 200, inner: 100, tag_rewrite: pop-2, bridge: {{ domain: {bd2} }} }}\n"
        ),
        Wire::Taps => format!(
            "  - name: {name}\n    type: tap\n    host_ifname: {dev}\n    netns: {}\n    vlans:
      - {{ id: 100, tag_rewrite: pop-1, bridge: {{ domain: {bd1} }} }}
      - {{ id: 200, inner: 100, tag_rewrite: pop-2, bridge: {{ domain: {bd2} }} }}\n",
            w.name
        ),
    };
    let config = format!(
        "bridge_domains: [{{ id: 10 }}, {{ id: 11 }}, {{ id: 20 }}, {{ id: 21 }}]
interfaces:
  - {{ name: a-100, type: tap, host_ifname: {a1}, netns: {an}, bridge: {{ domain: 10 }} }}
  - {{ name: b-100, type: tap, host_ifname: {b1}, netns: {bn}, bridge: {{ domain: 11 }} }}
  - {{ name: a-qinq, type: tap, host_ifname: {a2}, netns: {an}, bridge: {{ domain: 20 }} }}
  - {{ name: b-qinq, type: tap, host_ifname: {b2}, netns: {bn}, bridge: {{ domain: 21 }} }}
{}{}",
        trunk("trunk-x", &tx, 10, 20),
        trunk("trunk-y", &ty, 11, 21),
        an = a.name,
        bn = b.name,
    );
    let d = Daemon::start(&dir.0, Some(&config), &[]);
    wait_taps(&a, &[&a1, &a2]);
    wait_taps(&b, &[&b1, &b2]);
    if wire == Wire::Taps {
        wait_taps(&w, &[&tx, &ty]);
        w.ip(&["link", "add", "name", "wbr", "type", "bridge"]);
        for dev in [&tx, &ty] {
            w.ip(&["link", "set", dev, "master", "wbr"]);
        }
        w.ip(&["link", "set", "wbr", "up"]);
    }
    a.addr(&a1, "10.81.0.1/24");
    b.addr(&b1, "10.81.0.2/24");
    a.addr(&a2, "10.82.0.1/24");
    b.addr(&b2, "10.82.0.2/24");

    // Capture the trunk wire and pod A's access port while A pings B on
    // both VLANs (ARP included: the caches are empty).
    let wire_ns = (wire == Wire::Taps).then_some(&w);
    let wire_cap = Capture::start(wire_ns, &dir.0, "wire", &tx);
    let access_cap = Capture::start(Some(&a), &dir.0, "access", &a1);
    ping_ok(&d, &a, "10.81.0.2");
    ping_ok(&d, &a, "10.82.0.2");
    let req = |n: u32| format!("10.8{n}.0.1 > 10.8{n}.0.2: ICMP echo request");
    let rep = |n: u32| format!("10.8{n}.0.2 > 10.8{n}.0.1: ICMP echo reply");
    let on_wire =
        wire_cap.stop_when(|l| (1..=2).all(|n| having(l, &req(n)).len() >= 2 && having(l, &rep(n)).len() >= 2));
    let on_access = access_cap.stop_when(|l| having(l, &rep(1)).len() >= 2);
    // On the trunk: every frame of the pods' traffic is tagged, VLAN 100
    // with one 802.1Q tag, the QinQ VLAN with an 802.1ad outer tag 200
    // and an 802.1Q inner tag 100.
    let dot1q_req = having(&on_wire, "10.81.0.1 > 10.81.0.2: ICMP echo request");
    let dot1q_rep = having(&on_wire, "10.81.0.2 > 10.81.0.1: ICMP echo reply");
    let qinq_req = having(&on_wire, "10.82.0.1 > 10.82.0.2: ICMP echo request");
    let qinq_rep = having(&on_wire, "10.82.0.2 > 10.82.0.1: ICMP echo reply");
    for (what, lines) in [
        ("802.1Q requests", &dot1q_req),
        ("802.1Q replies", &dot1q_rep),
        ("QinQ requests", &qinq_req),
        ("QinQ replies", &qinq_rep),
    ] {
        assert!(lines.len() >= 2, "{what}: too few on the wire:\n{}", dump(&on_wire));
    }
    for l in dot1q_req.iter().chain(&dot1q_rep).chain(&having(&on_wire, "who-has 10.81.0.2")) {
        assert!(
            l.contains("ethertype 802.1Q (0x8100)") && l.contains("vlan 100,") && !l.contains("QinQ"),
            "not tagged 802.1Q VLAN 100 on the trunk: {l}\n{}",
            dump(&on_wire)
        );
    }
    for l in qinq_req.iter().chain(&qinq_rep).chain(&having(&on_wire, "who-has 10.82.0.2")) {
        let outer = l.find("ethertype 802.1Q-QinQ (0x88a8)");
        let v200 = l.find("vlan 200,");
        let inner = l.find("ethertype 802.1Q (0x8100)");
        let v100 = l.find("vlan 100,");
        let ip = l.find("ethertype IPv4").or(l.find("ethertype ARP"));
        assert!(
            matches!((outer, v200, inner, v100, ip), (Some(o), Some(a), Some(i), Some(b), Some(p)) if o < a && a < i && i < b && b < p),
            "not tagged QinQ 200/100 (outer 802.1ad, inner 802.1Q) on the trunk: {l}\n{}",
            dump(&on_wire)
        );
    }
    assert!(!having(&on_wire, "who-has 10.81.0.2").is_empty(), "no ARP on the trunk:\n{}", dump(&on_wire));
    // Nothing of the pods' traffic crosses the trunk untagged.
    for l in having(&on_wire, "10.8") {
        assert!(l.contains("vlan 100,"), "untagged on the trunk: {l}");
    }

    // On the access port: the same traffic, untagged both ways.
    let replies = having(&on_access, "10.81.0.2 > 10.81.0.1: ICMP echo reply");
    assert!(replies.len() >= 2, "no replies on the access port:\n{}", dump(&on_access));
    for l in having(&on_access, "10.81.0.") {
        assert!(
            !l.contains("vlan")
                && !l.contains("802.1Q")
                && (l.contains("ethertype IPv4 (0x0800)") || l.contains("ethertype ARP")),
            "tagged frame on the access port: {l}\n{}",
            dump(&on_access)
        );
    }
    // Pod A's QinQ-domain port is a2, not a1: nothing of 10.82 shows here.
    assert!(having(&on_access, "10.82.0.").is_empty(), "{}", dump(&on_access));

    // vswitch counted the tagged frames on the sub-interfaces.
    for sub in ["trunk-x.100", "trunk-y.100", "trunk-x.200.100", "trunk-y.200.100"] {
        let i = d.interface(sub);
        assert!(i["rx_packets"].as_u64().unwrap() >= 2 && i["tx_packets"].as_u64().unwrap() >= 2, "{sub}: {i}");
    }
}

#[test]
fn vlan_trunk_over_af_packet_tags_on_the_wire_and_not_on_access_ports() {
    vlan_trunk("vv", Wire::Veth);
}

#[test]
fn vlan_trunk_over_taps_tags_on_the_wire_and_not_on_access_ports() {
    vlan_trunk("vt", Wire::Taps);
}

// ---------------------------------------------------------------------
// Routed pods: traceroute, path MTU discovery, fragmentation.

/// Two pods routed by vswitch, dual stack: pod A on 10.<n>.1.0/24 and
/// fd00:<n>:1::/64 (on a tap or a veth pair), pod B on 10.<n>.2.0/24 and
/// fd00:<n>:2::/64 (on a tap), vswitch being .1 / ::1 and each pod's
/// default gateway. `b_mtu` is the MTU of vswitch's interface towards B
/// (and of B's tap).
struct Routed {
    d: Daemon,
    a: Netns,
    b: Netns,
    _dir: TempDir,
    _veth: Option<VethPair>,
    n: u8,
    /// A's device in its namespace (a tap or a veth end).
    dev_a: String,
    /// B's tap.
    tap_b: String,
}

impl Routed {
    /// With pod A on a tap, or on a veth pair read with AF_PACKET or AF_XDP.
    fn new(t: &str, n: u8, b_mtu: u32, a_kind: Attach) -> Routed {
        let id = tag(t);
        let a = Netns::new(format!("vsw-{id}-a"));
        let b = Netns::new(format!("vsw-{id}-b"));
        let (mut ta, tb) = (format!("{id}a"), format!("{id}b"));
        let l3a = format!("l3: {{ addresses: [10.{n}.1.1/24, 'fd00:{n}:1::1/64'] }}");
        let (pod_a, veth) = match a_kind {
            Attach::Tap => (format!("type: tap, host_ifname: {ta}, netns: {}, {l3a}", a.name), None),
            Attach::Veth | Attach::VethXdp => {
                let v = VethPair::new(&format!("{id}h"), &format!("{id}p"), &a);
                ta = v.pod.clone();
                let backend = if a_kind == Attach::Veth { "af-packet" } else { "af-xdp" };
                if a_kind == Attach::VethXdp {
                    a.exec_ok(&["ethtool", "-K", &v.pod, "tx", "off"]);
                }
                (format!("type: {backend}, host_ifname: {}, {l3a}", v.host), Some(v))
            }
        };
        let config = format!(
            "interfaces:
  - {{ name: pod-a, {pod_a} }}
  - {{ name: pod-b, type: tap, host_ifname: {tb}, netns: {}, mtu: {b_mtu}, l3: {{ addresses: [10.{n}.2.1/24, 'fd00:{n}:2::1/64'] }} }}
",
            b.name
        );
        let dir = TempDir::new(&id);
        let d = Daemon::start(&dir.0, Some(&config), &[]);
        wait_taps(&a, &[&ta]);
        wait_taps(&b, &[&tb]);
        b.ip(&["link", "set", "dev", &tb, "mtu", &b_mtu.to_string()]);
        for (ns, dev, x) in [(&a, &ta, 1), (&b, &tb, 2)] {
            ns.addr(dev, &format!("10.{n}.{x}.2/24"));
            addr6(ns, dev, &format!("fd00:{n}:{x}::2/64"));
            ns.ip(&["route", "add", "default", "via", &format!("10.{n}.{x}.1")]);
            ns.ip(&["-6", "route", "add", "default", "via", &format!("fd00:{n}:{x}::1"), "dev", dev]);
        }
        let r = Routed { d, a, b, _dir: dir, _veth: veth, n, dev_a: ta, tap_b: tb };
        // Both ways and both families once, so ARP and ND are resolved.
        for (ns, dst) in [(&r.a, r.b4()), (&r.b, r.a4()), (&r.a, r.b6()), (&r.b, r.a6())] {
            ping_ok(&r.d, ns, &dst);
        }
        r
    }

    fn a4(&self) -> String {
        format!("10.{}.1.2", self.n)
    }
    fn b4(&self) -> String {
        format!("10.{}.2.2", self.n)
    }
    fn a6(&self) -> String {
        format!("fd00:{}:1::2", self.n)
    }
    fn b6(&self) -> String {
        format!("fd00:{}:2::2", self.n)
    }
    fn gw4(&self) -> String {
        format!("10.{}.1.1", self.n)
    }
    fn gw6(&self) -> String {
        format!("fd00:{}:1::1", self.n)
    }
}

/// The hops of a `traceroute -n -q 1` output: (hop number, address).
fn hops(out: &str) -> Vec<(u32, String)> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let n = w.next()?.parse().ok()?;
            Some((n, w.next()?.to_string()))
        })
        .collect()
}

fn node_vectors(d: &Daemon, node: &str) -> u64 {
    let rj = d.show_json(&["runtime"]);
    rj["workers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["nodes"].as_array().unwrap())
        .filter(|n| n["name"] == node)
        .map(|n| n["vectors"].as_u64().unwrap())
        .sum()
}

#[test]
fn traceroute_through_vswitch_shows_the_gateway_then_the_pod() {
    let r = Routed::new("tr", 83, 1500, Attach::Tap);
    let d = &r.d;
    for (v6, dst, gw) in [(false, r.b4(), r.gw4()), (true, r.b6(), r.gw6())] {
        // UDP probes one at a time, one per hop: hop 1's TTL expires at
        // vswitch (ICMP time exceeded from the gateway), hop 2 is B (port
        // unreachable), and traceroute stops there.
        let mut args = vec!["traceroute", "-n", "-q", "1", "-N", "1", "-w", "3", "-m", "5"];
        if v6 {
            args.push("-6");
        }
        args.push(&dst);
        let out = r.a.exec(&args);
        let text = output_text(&out);
        assert!(out.status.success(), "{text}");
        assert_eq!(hops(&text), vec![(1, gw.clone()), (2, dst.clone())], "traceroute output:\n{text}");
    }
    assert!(d.error_count("ip4-rewrite", "TTL expired (time exceeded sent to ip4-icmp-error)") >= 1);
    assert!(
        d.error_count("ip4-icmp-error", "time exceeded sent (not a drop)") >= 1,
        "{}",
        d.ctl_ok(&["show", "errors"])
    );
    assert!(d.error_count("ip6-icmp-error", "time exceeded sent") >= 1, "{}", d.ctl_ok(&["show", "errors"]));
    let text = d.ctl_ok(&["show", "errors"]);
    assert!(text.contains("ip4-icmp-error") && text.contains("ip6-icmp-error"), "{text}");
    assert!(node_vectors(d, "ip4-icmp-error") >= 1 && node_vectors(d, "ip6-icmp-error") >= 1);
    let runtime = d.ctl_ok(&["show", "runtime"]);
    assert!(runtime.contains("ip4-icmp-error") && runtime.contains("ip6-icmp-error"), "{runtime}");
}

#[test]
fn smaller_egress_mtu_fragments_or_answers_frag_needed_and_packet_too_big() {
    let r = Routed::new("mt", 84, 1400, Attach::Tap);
    let (d, a) = (&r.d, &r.a);
    let ping = |args: &[&str]| {
        let mut v = vec!["ping", "-n"];
        v.extend_from_slice(args);
        a.exec(&v)
    };

    // DF clear: vswitch fragments the 1478-byte packets to fit 1400 (B
    // fragments its replies itself, its MTU being 1400 too). First, while
    // A knows no smaller path MTU.
    let before = (
        d.error_count("ip4-rewrite", "packets fragmented (not a drop)"),
        d.error_count("ip4-rewrite", "fragments sent (not a drop)"),
    );
    let out = ping(&["-M", "dont", "-s", "1450", "-c", "3", "-i", "0.2", "-w", "20", &r.b4()]);
    assert!(out.status.success(), "ping -M dont -s 1450:\n{}", output_text(&out));
    let after = (
        d.error_count("ip4-rewrite", "packets fragmented (not a drop)"),
        d.error_count("ip4-rewrite", "fragments sent (not a drop)"),
    );
    assert!(after.0 >= before.0 + 3 && after.1 >= before.1 + 6, "fragmented {before:?} -> {after:?}");

    // DF set: "fragmentation needed" from the gateway, with the MTU.
    let out = ping(&["-M", "do", "-s", "1450", "-c", "2", "-i", "0.5", "-W", "2", &r.b4()]);
    let text = output_text(&out);
    assert!(!out.status.success(), "a DF packet over the MTU got through:\n{text}");
    assert!(text.contains(&format!("From {} icmp_seq=1 Frag needed and DF set (mtu = 1400)", r.gw4())), "{text}");
    assert!(d.error_count("ip4-icmp-error", "fragmentation needed sent (not a drop)") >= 1);
    assert!(d.error_count("ip4-rewrite", "too big with DF set (fragmentation needed sent to ip4-icmp-error)") >= 1);
    // A's kernel took the MTU: its route to B now says 1400.
    let route = a.ip(&["route", "get", &r.b4()]);
    assert!(route.contains("mtu 1400"), "{route}");

    // IPv6: routers never fragment; "packet too big" with the MTU.
    let out = ping(&["-6", "-s", "1450", "-c", "1", "-W", "2", &r.b6()]);
    let text = output_text(&out);
    assert!(!out.status.success(), "an IPv6 packet over the MTU got through:\n{text}");
    assert!(text.contains(&format!("From {} icmp_seq=1 Packet too big: mtu=1400", r.gw6())), "{text}");
    assert!(d.error_count("ip6-icmp-error", "packet too big sent") >= 1);
    assert!(d.error_count("ip6-rewrite", "longer than the link MTU (packet too big sent to ip6-icmp-error)") >= 1);
    let route = a.ip(&["-6", "route", "get", &r.b6()]);
    assert!(route.contains("mtu 1400"), "{route}");
    // Having learnt the path MTU, A fragments at the source and the same
    // pings get through (both families).
    for v in [&["-6", "-s", "1450"][..], &["-M", "want", "-s", "1450"][..], &["-M", "dont", "-s", "1450"][..]] {
        let mut args = v.to_vec();
        let dst = if v[0] == "-6" { r.b6() } else { r.b4() };
        args.extend_from_slice(&["-c", "2", "-i", "0.2", "-w", "20", &dst]);
        let out = ping(&args);
        assert!(out.status.success(), "ping {args:?}:\n{}", output_text(&out));
    }
    // Packets that fit pass untouched.
    ping_ok(d, a, &r.b4());
    ping_ok(d, a, &r.b6());

    // vswitch's own echo replies larger than its interface's MTU: with B's
    // MTU raised to 1500, B's 1478- and 1498-byte requests to its gateway
    // reach vswitch whole (and with DF), and the replies, which must fit
    // 1400, are fragmented by vswitch as their source.
    r.b.ip(&["link", "set", "dev", &r.tap_b, "mtu", "1500"]);
    let frag4 = d.error_count("ip4-rewrite", "packets fragmented (not a drop)");
    let frag6 = d.error_count("ip6-rewrite", "packets we originated fragmented (not a drop)");
    for (v6, gw) in [(false, format!("10.{}.2.1", r.n)), (true, format!("fd00:{}:2::1", r.n))] {
        let mut args = vec!["ping", "-n", "-s", "1450", "-c", "2", "-i", "0.2", "-w", "20", &gw];
        if v6 {
            args.insert(1, "-6");
        } else {
            args.splice(1..1, ["-M", "do"]);
        }
        let out = r.b.exec(&args);
        assert!(out.status.success(), "{args:?} from B:\n{}\n{}", output_text(&out), d.ctl_ok(&["show", "errors"]));
    }
    assert!(d.error_count("ip4-rewrite", "packets fragmented (not a drop)") >= frag4 + 2);
    assert!(d.error_count("ip6-rewrite", "packets we originated fragmented (not a drop)") >= frag6 + 2);
    assert_eq!(d.error_count("ip4-icmp-error", "not sent: the packet is our own"), 0);
    assert_eq!(d.error_count("ip6-icmp-error", "not sent: the packet is our own"), 0);
}

// ---------------------------------------------------------------------
// 4. Malformed frames.

/// Sends each kind of malformed frame `count` times on `iface`, to
/// vswitch's MAC `dst`; arguments: iface dst-mac src-mac our-ip gw-ip
/// far-ip our-ip6 gw-ip6 count kind...
const SCAPY: &str = r#"
import sys
from scapy.all import Ether, Dot1Q, IP, IPv6, ICMP, ICMPv6EchoRequest, TCP, Raw, sendp, raw, conf
conf.verb = 0
iface, dst, src, me, gw, far, me6, gw6, count = sys.argv[1:10]
eth = lambda t: Ether(dst=dst, src=src, type=t)
def bad_csum():
    b = bytearray(raw(IP(src=me, dst=far) / ICMP()))
    b[10] ^= 0x5a
    return eth(0x0800) / Raw(bytes(b))
kinds = {
    "trunc-vlan": lambda: eth(0x8100) / Raw(b"\x00\x64"),
    "trunc-qinq": lambda: eth(0x88a8) / Raw(b"\x00\xc8\x81\x00\x00\x64"),
    "three-tags": lambda: Ether(dst=dst, src=src) / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / IP(src=me, dst=gw) / ICMP(),
    "ip4-short": lambda: eth(0x0800) / Raw(b"\x45" + b"\x00" * 9),
    "ip4-version": lambda: eth(0x0800) / IP(version=5, src=me, dst=far) / ICMP(),
    "ip4-ihl": lambda: eth(0x0800) / IP(ihl=4, src=me, dst=far) / ICMP(),
    "ip4-total-len": lambda: eth(0x0800) / IP(len=1000, src=me, dst=far) / ICMP(),
    "ip4-checksum": bad_csum,
    "ip4-runt-tcp-local": lambda: eth(0x0800) / IP(src=me, dst=gw, proto=6) / Raw(b"\x12\x34"),
    "ip4-runt-tcp-far": lambda: eth(0x0800) / IP(src=me, dst=far, proto=6) / Raw(b"\x12\x34"),
    "ip4-runt-icmp-local": lambda: eth(0x0800) / IP(src=me, dst=gw, proto=1) / Raw(b"\x08\x00\xf7"),
    "ip6-short": lambda: eth(0x86dd) / Raw(b"\x60" + b"\x00" * 19),
    "ip6-payload-len": lambda: eth(0x86dd) / IPv6(plen=500, src=me6, dst=gw6) / ICMPv6EchoRequest(),
    "ip6-ext-trunc": lambda: eth(0x86dd) / IPv6(nh=60, src=me6, dst=gw6) / Raw(b"\x3a\x05\x01\x02"),
    "arp-hwlen": lambda: eth(0x0806) / Raw(bytes([0, 1, 8, 0, 8, 4, 0, 1]) + b"\x00" * 28),
    "arp-short": lambda: eth(0x0806) / Raw(bytes([0, 1, 8, 0, 6, 4, 0, 1, 2, 2])),
}
frames = [kinds[k]() for k in sys.argv[10:] for _ in range(int(count))]
sendp(frames, iface=iface, inter=0.002)
"#;

/// Pod A sends malformed frames of every kind to vswitch; each is
/// counted by the node that drops it, exactly as many as were sent.
fn malformed(t: &str, n: u8, kind: Attach) {
    let mut r = Routed::new(t, n, 1500, kind);
    let id = tag(t);
    let dir = TempDir::new(&format!("{id}-py"));
    let script = dir.0.join("malformed.py");
    std::fs::write(&script, SCAPY).unwrap();
    let ta = r.dev_a.clone();
    let vsw_mac = r.d.interface("pod-a")["mac"].as_str().unwrap().to_string();
    let link = r.a.ip(&["-o", "link", "show", "dev", &ta]);
    let src_mac = link.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).expect("tap MAC").to_string();

    const N: u64 = 5;
    // A veth's kernel side drops a tagged frame too short for its tag
    // before any packet socket sees it (skb_vlan_untag): only the QinQ
    // frame, whose outer tag is whole, reaches vswitch truncated.
    let truncated: &[&str] = match kind {
        Attach::Tap => &["trunc-vlan", "trunc-qinq"],
        Attach::Veth | Attach::VethXdp => &["trunc-qinq"],
    };
    // (kinds sent, node, reason): each kind sent adds N to the count.
    let cases: &[(&[&str], &str, &str)] = &[
        (truncated, "ethernet-input", "frame shorter than its Ethernet header and tags"),
        (&["three-tags"], "ethernet-input", "more than two VLAN tags"),
        (&["ip4-short"], "ip4-input", "shorter than an IPv4 header"),
        (&["ip4-version"], "ip4-input", "IP version is not 4"),
        (&["ip4-ihl"], "ip4-input", "header length below 20 or beyond the packet"),
        (&["ip4-total-len"], "ip4-input", "total length below the header or beyond the frame"),
        (&["ip4-checksum"], "ip4-input", "bad header checksum"),
        (&["ip4-runt-tcp-local"], "ip4-local", "punted to the control plane (not a drop)"),
        (&["ip4-runt-icmp-local"], "ip4-local", "ICMP message shorter than its header"),
        (&["ip6-short"], "ip6-input", "shorter than the IPv6 header"),
        (&["ip6-payload-len"], "ip6-input", "payload length runs past the frame"),
        (&["ip6-ext-trunc"], "ip6-input", "malformed or truncated extension headers"),
        (&["arp-hwlen"], "arp-input", "not Ethernet/IPv4 ARP"),
        (&["arp-short"], "arp-input", "truncated ARP packet"),
    ];
    let before: Vec<u64> = cases.iter().map(|(_, node, reason)| r.d.error_count(node, reason)).collect();
    let tx_b = r.d.interface("pod-b")["tx_packets"].as_u64().unwrap();

    let mut kinds: Vec<&str> = cases.iter().flat_map(|c| c.0.iter().copied()).collect();
    kinds.push("ip4-runt-tcp-far");
    let count = N.to_string();
    let (me, gw, far, me6, gw6) = (r.a4(), r.gw4(), r.b4(), r.a6(), r.gw6());
    let mut args = vec![PYTHON, script.to_str().unwrap(), &ta, &vsw_mac, &src_mac, &me, &gw, &far, &me6, &gw6, &count];
    args.extend_from_slice(&kinds);
    let out = r.a.exec(&args);
    assert!(out.status.success(), "scapy: {}", output_text(&out));

    for (i, (sent, node, reason)) in cases.iter().enumerate() {
        let want = before[i] + N * sent.len() as u64;
        let reached = wait_for(LONG, || r.d.error_count(node, reason) >= want);
        let now = r.d.error_count(node, reason);
        assert!(
            reached && now == want,
            "{node} \"{reason}\": {} -> {now}, expected +{}\n{}",
            before[i],
            N * sent.len() as u64,
            r.d.ctl_ok(&["show", "errors"])
        );
    }
    // The runt TCP segments to B are forwarded (a router does not look
    // at TCP headers).
    assert!(wait_for(LONG, || r.d.interface("pod-b")["tx_packets"].as_u64().unwrap() >= tx_b + N));

    assert!(r.d.running(), "vswitch died:\n{}", r.d.log_text());
    ping_ok(&r.d, &r.a, &r.b4());
    ping_ok(&r.d, &r.a, &r.b6());
    ping_ok(&r.d, &r.a, &r.gw4());
}

#[test]
fn malformed_frames_from_a_tap_pod_are_counted_and_vswitch_keeps_forwarding() {
    malformed("mft", 85, Attach::Tap);
}

#[test]
fn malformed_frames_from_an_af_packet_pod_are_counted_and_vswitch_keeps_forwarding() {
    malformed("mfv", 90, Attach::Veth);
}

#[test]
fn malformed_frames_from_an_af_xdp_pod_are_counted_and_vswitch_keeps_forwarding() {
    malformed("mfx", 82, Attach::VethXdp);
}

// ---------------------------------------------------------------------
// 5.-7. Two pods in one bridge domain, on taps or on veth pairs.

#[derive(Clone, Copy, PartialEq, Debug)]
enum Attach {
    Tap,
    /// A veth whose host end vswitch reads with AF_PACKET.
    Veth,
    /// A veth whose host end vswitch reads with AF_XDP.
    VethXdp,
}

/// Pods A and B in bridge domain 1 on 10.<n>.0.0/24 (.1 and .2), each
/// attached as `kinds` says.
struct Bridged {
    a: Netns,
    b: Netns,
    devs: [String; 2],
    config: String,
    _veths: Vec<VethPair>,
}

impl Bridged {
    /// Makes the pods and the veth pairs; `start` addresses them once
    /// vswitch made the taps.
    fn new(id: &str, kinds: [Attach; 2]) -> Bridged {
        let a = Netns::new(format!("vsw-{id}-a"));
        let b = Netns::new(format!("vsw-{id}-b"));
        let mut veths = Vec::new();
        let mut config = String::from("bridge_domains: [{ id: 1 }]\ninterfaces:\n");
        let mut devs = [String::new(), String::new()];
        for (i, (ns, kind)) in [(&a, kinds[0]), (&b, kinds[1])].into_iter().enumerate() {
            let name = ["pod-a", "pod-b"][i];
            let x = ["a", "b"][i];
            match kind {
                Attach::Tap => {
                    devs[i] = format!("{id}{x}");
                    config += &format!(
                        "  - {{ name: {name}, type: tap, host_ifname: {}, netns: {}, bridge: {{ domain: 1 }} }}\n",
                        devs[i], ns.name
                    );
                }
                Attach::Veth | Attach::VethXdp => {
                    let v = VethPair::new(&format!("{id}h{x}"), &format!("{id}p{x}"), ns);
                    devs[i] = v.pod.clone();
                    let backend = if kind == Attach::Veth { "af-packet" } else { "af-xdp" };
                    if kind == Attach::VethXdp {
                        // AF_XDP frames carry no "checksum not done yet"
                        // mark (AF_PACKET's do, and vswitch completes
                        // them): the pod must checksum its own segments.
                        ns.exec_ok(&["ethtool", "-K", &v.pod, "tx", "off"]);
                    }
                    config += &format!(
                        "  - {{ name: {name}, type: {backend}, host_ifname: {}, bridge: {{ domain: 1 }} }}\n",
                        v.host
                    );
                    veths.push(v);
                }
            }
        }
        Bridged { a, b, devs, config, _veths: veths }
    }

    fn address(&self, n: u8) {
        for (i, ns) in [&self.a, &self.b].into_iter().enumerate() {
            assert!(ns.wait_link(&self.devs[i], LONG), "{} not in {}", self.devs[i], ns.name);
            ns.addr(&self.devs[i], &format!("10.{n}.0.{}/24", i + 1));
        }
    }
}

fn counter(d: &Daemon, name: &str, c: &str) -> u64 {
    d.interface(name)[c].as_u64().unwrap_or_else(|| panic!("{name} {c}"))
}

/// iperf3 from pod A to pod B for 3 seconds through the bridge domain.
fn iperf(t: &str, kinds: [Attach; 2], n: u8) {
    let id = tag(t);
    let p = Bridged::new(&id, kinds);
    let dir = TempDir::new(&id);
    let d = Daemon::start(&dir.0, Some(&p.config), &[]);
    p.address(n);
    let (ip_a, ip_b) = (format!("10.{n}.0.1"), format!("10.{n}.0.2"));
    ping_ok(&d, &p.a, &ip_b);

    let mut server = p.b.spawn(&dir.0, "iperf3-server", &["iperf3", "-s", "-1", "-B", &ip_b]);
    let listening = wait_for(LONG, || {
        let ss = p.b.exec(&["ss", "-Hltn", "sport = :5201"]);
        String::from_utf8_lossy(&ss.stdout).contains("LISTEN") || !server.running()
    });
    assert!(listening && server.running(), "iperf3 -s: {}{}", server.stdout_text(), server.stderr_text());

    let before: Vec<u64> =
        [("pod-a", "rx_bytes"), ("pod-b", "tx_bytes"), ("pod-b", "tx_packets"), ("pod-b", "rx_packets")]
            .iter()
            .map(|(i, c)| counter(&d, i, c))
            .collect();
    let out = p.a.exec(&["iperf3", "-c", &ip_b, "-B", &ip_a, "-t", "3", "-J", "--connect-timeout", "10000"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let j: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("iperf3 -J is not JSON ({e}): {}", output_text(&out)));
    assert!(out.status.success() && j.get("error").is_none(), "iperf3 failed: {text}\n{}", d.log_text());
    let sent = j["end"]["sum_sent"]["bytes"].as_u64().unwrap();
    let received = j["end"]["sum_received"]["bytes"].as_u64().unwrap();
    let bps = j["end"]["sum_received"]["bits_per_second"].as_f64().unwrap();
    assert!(received > 0 && bps > 0.0, "nothing received: {text}");
    assert!(received <= sent, "sent {sent}, received {received}");
    assert!(server.wait(LONG).is_some_and(|s| s.success()), "iperf3 -s: {}", server.stderr_text());

    // Everything B received went through vswitch: A's frames into
    // vswitch and vswitch's frames to B carried at least those bytes, in
    // frames of at most one MSS of payload each (no GSO super-frames).
    let after: Vec<u64> =
        [("pod-a", "rx_bytes"), ("pod-b", "tx_bytes"), ("pod-b", "tx_packets"), ("pod-b", "rx_packets")]
            .iter()
            .map(|(i, c)| counter(&d, i, c))
            .collect();
    let delta: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert!(delta[0] >= received && delta[1] >= received, "vswitch bytes {delta:?} < received {received}");
    assert!(delta[2] >= received / 1460, "vswitch sent B {} frames for {received} bytes", delta[2]);
    assert!(delta[3] > 0, "no ACKs from B");
    eprintln!("{kinds:?}: {:.0} Mbit/s, {received} bytes, vswitch {delta:?}", bps / 1e6);
}

#[test]
fn iperf3_tcp_between_tap_pods_in_a_bridge_domain() {
    iperf("ipt", [Attach::Tap; 2], 86);
}

#[test]
fn iperf3_tcp_between_af_packet_veth_pods_in_a_bridge_domain() {
    iperf("ipv", [Attach::Veth; 2], 87);
}

#[test]
fn iperf3_tcp_between_af_xdp_veth_pods_in_a_bridge_domain() {
    iperf("ipx", [Attach::VethXdp; 2], 83);
}

#[test]
fn iperf3_tcp_from_an_af_xdp_pod_to_a_tap_pod_in_a_bridge_domain() {
    iperf("ipm", [Attach::VethXdp, Attach::Tap], 84);
}

#[test]
fn after_a_kill_tap_and_af_packet_pods_ping_again_without_help() {
    let id = tag("kr");
    let p = Bridged::new(&id, [Attach::Tap, Attach::Veth]);
    let dir = TempDir::new(&id);
    let mut d = Daemon::start(&dir.0, Some(&p.config), &[]);
    p.address(88);
    ping_ok(&d, &p.a, "10.88.0.2");
    ping_ok(&d, &p.b, "10.88.0.1");
    let state = d.ctl_ok(&["get"]);

    d.stop_with(9);
    assert!(p.a.ping("10.88.0.2", 1, 2).is_err(), "nothing forwards while vswitch is down");
    assert!(p.a.has_link(&p.devs[0]), "the tap outlives the daemon");

    // Same state directory, no --config, nobody touches the pods.
    let d = Daemon::start(&dir.0, None, &[]);
    assert_eq!(d.ctl_ok(&["get"]), state);
    ping_ok(&d, &p.a, "10.88.0.2");
    ping_ok(&d, &p.b, "10.88.0.1");
    for name in ["pod-a", "pod-b"] {
        assert!(counter(&d, name, "rx_packets") >= 2 && counter(&d, name, "tx_packets") >= 2, "{name}");
    }
    assert_eq!(d.interface("pod-b")["type"], "af-packet");
}

/// The numbers of `ping`'s summary: (transmitted, received).
fn ping_summary(out: &str) -> Option<(u32, u32)> {
    let l = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut w = l.split_whitespace();
    let tx = w.next()?.parse().ok()?;
    let rx = w.nth(2)?.parse().ok()?;
    Some((tx, rx))
}

#[test]
fn an_apply_that_fails_midway_is_undone_and_traffic_never_stops() {
    let id = tag("af");
    let p = Bridged::new(&id, [Attach::Tap, Attach::Tap]);
    let c = Netns::new(format!("vsw-{id}-c"));
    let dir = TempDir::new(&id);
    let d = Daemon::start(&dir.0, Some(&p.config), &[]);
    p.address(89);
    ping_ok(&d, &p.a, "10.89.0.2");
    let state = d.ctl_ok(&["get"]);
    let saved = std::fs::read_to_string(d.state_dir.join("state.yaml")).unwrap();
    let names = |d: &Daemon| -> Vec<String> {
        let j = d.show_json(&["interfaces"]);
        j["interfaces"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
    };
    let interfaces = names(&d);

    // A ping runs through every refused apply below.
    let mut pinger = p.a.spawn(&dir.0, "ping", &["ping", "-n", "-c", "30", "-i", "0.1", "-W", "5", "10.89.0.2"]);

    // Valid, but it cannot be applied: pod C's tap is made (in C's
    // namespace), then the AF_PACKET port on a device that does not
    // exist fails. What was done is undone.
    let tap_c = format!("{id}c");
    let failing = format!(
        "{}  - {{ name: pod-c, type: tap, host_ifname: {tap_c}, netns: {}, bridge: {{ domain: 1 }} }}
  - {{ name: pod-z, type: af-packet, host_ifname: {id}nodev, bridge: {{ domain: 1 }} }}
vrfs: [{{ id: 3, name: blue }}]
",
        p.config, c.name
    );
    let file = dir.0.join("failing.yaml");
    let bad_port = format!("  - {{ name: pod-z, type: af-packet, host_ifname: {id}nodev, bridge: {{ domain: 1 }} }}\n");
    assert!(failing.contains(&bad_port));
    // The same change without the bad port.
    let good = failing.replace(&bad_port, "");
    for (text, expect) in [
        (failing.clone(), format!("af_packet {id}nodev: no such device")),
        // A tap in a namespace that does not exist.
        (good.replace(&c.name, "vsw-no-such-netns"), "netns /run/netns/vsw-no-such-netns".to_string()),
    ] {
        std::fs::write(&file, &text).unwrap();
        let out = d.ctl(&["apply", "-f", file.to_str().unwrap()]);
        let err = output_text(&out);
        assert!(!out.status.success(), "a config that cannot be applied was accepted:\n{text}");
        assert!(err.contains(&expect) && err.contains("nothing changed"), "{err}");
        assert_eq!(d.ctl_ok(&["get"]), state, "the state in force is untouched");
        assert_eq!(names(&d), interfaces, "no interface left behind");
        assert!(!c.has_link(&tap_c), "the tap made for the failed apply is removed");
    }
    // And one that does not validate, while at it.
    std::fs::write(&file, failing.replace("id: 3, name: blue", "id: 3, name: blue, colour: red")).unwrap();
    assert!(!d.ctl(&["apply", "-f", file.to_str().unwrap()]).status.success());
    assert_eq!(std::fs::read_to_string(d.state_dir.join("state.yaml")).unwrap(), saved, "nothing saved");

    assert!(pinger.wait(Duration::from_secs(60)).is_some(), "ping did not finish");
    let out = pinger.stdout_text();
    let (tx, rx) = ping_summary(&out).unwrap_or_else(|| panic!("no ping summary: {out}{}", pinger.stderr_text()));
    assert!(tx == 30 && rx == tx, "pings lost while applies were refused:\n{out}");

    // The change without the bad port goes through, and pod C works.
    std::fs::write(&file, &good).unwrap();
    d.ctl_ok(&["apply", "-f", file.to_str().unwrap()]);
    assert!(c.wait_link(&tap_c, LONG), "pod C's tap");
    c.addr(&tap_c, "10.89.0.3/24");
    ping_ok(&d, &c, "10.89.0.1");
    ping_ok(&d, &p.a, "10.89.0.2");
    assert!(d.ctl_ok(&["get"]).contains("name: blue"));
}
