//! IPv4 routing on real frames through the standard graph: forwarding
//! and rewrite, LPM, VRFs, ECMP, ARP (ours, proxy, glean and hold), ping,
//! ICMP errors and their limits, fragmentation, every ip4-input error,
//! punting, and routes changing under traffic.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use vswitch_fib::adj::AdjKind;
use vswitch_nodes::harness::Harness;
use vswitch_nodes::ip::fib::IpFibError;
use vswitch_nodes::ip::hold::HoldConfig;
use vswitch_nodes::ip::{NextHop, RoutePath};
use vswitch_nodes::ip4::arp::service_ip4_hold;
use vswitch_nodes::ip4::icmp_error::Ip4IcmpError;
use vswitch_nodes::{IfKind, IfMode, Interface, Tables, VlanTags};
use vswitch_packet::clock;
use vswitch_wire::checksum;
use vswitch_wire::MacAddr;

const fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

/// Router interface MACs: pgN has 02:00:00:00:00:aN.
const PG: [MacAddr; 4] = [mac(0xa0), mac(0xa1), mac(0xa2), mac(0xa3)];
/// Hosts.
const HOST_A: MacAddr = mac(0x0a);
const HOST_B: MacAddr = mac(0x0b);
const HOST_C: MacAddr = mac(0x0c);
const HOST_D: MacAddr = mac(0x0d);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

fn eth(dst: MacAddr, src: MacAddr, tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    for (tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet, built by hand.
#[derive(Clone)]
struct Ip {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ttl: u8,
    id: u16,
    df: bool,
    mf: bool,
    frag_off: u16,
    options: Vec<u8>,
    payload: Vec<u8>,
}

fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    u
}

fn icmp(ty: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

impl Ip {
    fn udp(src: &str, dst: &str) -> Ip {
        Ip {
            src: ip(src),
            dst: ip(dst),
            proto: 17,
            ttl: 64,
            id: 0x1234,
            df: false,
            mf: false,
            frag_off: 0,
            options: Vec::new(),
            payload: udp(1000, 2000, b"hello, routed world"),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        assert_eq!(self.options.len() % 4, 0);
        let hl = 20 + self.options.len();
        let tl = hl + self.payload.len();
        let mut h = vec![0x40 | (hl / 4) as u8, 0];
        h.extend_from_slice(&(tl as u16).to_be_bytes());
        h.extend_from_slice(&self.id.to_be_bytes());
        let ff = (self.df as u16) << 14 | (self.mf as u16) << 13 | self.frag_off >> 3;
        h.extend_from_slice(&ff.to_be_bytes());
        h.extend_from_slice(&[self.ttl, self.proto, 0, 0]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h.extend_from_slice(&self.options);
        let c = checksum::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(&self.payload);
        h
    }

    /// As a frame from `src_mac` to the router's `to` interface.
    fn frame(&self, src_mac: MacAddr, to: usize) -> Vec<u8> {
        eth(PG[to], src_mac, &[], 0x0800, &self.bytes())
    }
}

fn arp(op: u16, sha: MacAddr, spa: Ipv4Addr, tha: MacAddr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha.0);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha.0);
    a.extend_from_slice(&tpa.octets());
    a
}

/// An ARP request frame, padded to the Ethernet minimum.
fn arp_request(sha: MacAddr, spa: &str, tpa: &str) -> Vec<u8> {
    let mut f = eth(MacAddr::BROADCAST, sha, &[], 0x0806, &arp(1, sha, ip(spa), MacAddr::ZERO, ip(tpa)));
    f.resize(60, 0);
    f
}

fn arp_reply(sha: MacAddr, spa: &str, to_mac: MacAddr, tpa: &str) -> Vec<u8> {
    eth(to_mac, sha, &[], 0x0806, &arp(2, sha, ip(spa), to_mac, ip(tpa)))
}

/// The IP packet of a routed frame after checking its Ethernet header and
/// its header checksum (recomputed from scratch).
fn routed(frame: &[u8], dst: MacAddr, src: MacAddr) -> &[u8] {
    assert_eq!(&frame[0..6], &dst.0, "destination MAC");
    assert_eq!(&frame[6..12], &src.0, "source MAC");
    assert_eq!(&frame[12..14], &[8, 0], "ethertype");
    let p = &frame[14..];
    let hl = (p[0] & 15) as usize * 4;
    let mut h = p[..hl].to_vec();
    h[10] = 0;
    h[11] = 0;
    assert_eq!(checksum::checksum(&h), u16::from_be_bytes([p[10], p[11]]), "IP header checksum");
    assert_eq!(u16::from_be_bytes([p[2], p[3]]) as usize, p.len(), "total length is the frame");
    p
}

fn icmp_ok(p: &[u8]) -> &[u8] {
    let hl = (p[0] & 15) as usize * 4;
    let m = &p[hl..];
    assert_eq!(checksum::fold(checksum::sum(m)), 0xffff, "ICMP checksum");
    m
}

/// Routed ports: (sw_if = port, VRF, address/len). Interfaces get PG MACs.
fn setup(ports: &[(u32, u32, &str, u8)]) -> Harness {
    let mut t = Tables::default();
    for &(i, vrf, a, len) in ports {
        let mut intf = Interface::port(i, &format!("pg{i}"), i, PG[i as usize], IfMode::L3 { vrf });
        if !a.is_empty() {
            intf.ip4 = vec![(ip(a), len)];
        }
        t.set_interface(intf);
    }
    t.fib.control().sync_interfaces(&t).unwrap();
    Harness::new(t, 1024)
}

/// pg0 10.0.0.1/24 (host A 10.0.0.2) and pg1 10.0.1.1/24 (host B 10.0.1.2),
/// both hosts known.
fn two_ports() -> Harness {
    let h = setup(&[(0, 0, "10.0.0.1", 24), (1, 0, "10.0.1.1", 24)]);
    {
        let mut c = h.tables.fib.control();
        c.add_static_neighbor(0, ip("10.0.0.2").into(), HOST_A).unwrap();
        c.add_static_neighbor(1, ip("10.0.1.2").into(), HOST_B).unwrap();
    }
    h
}

#[test]
fn routed_forwarding_rewrites_macs_decrements_ttl_and_fixes_the_checksum() {
    let mut h = two_ports();
    let mut frames = Vec::new();
    for (i, ttl) in [2u8, 64, 255].into_iter().enumerate() {
        let mut p = Ip::udp("10.0.0.2", "10.0.1.2");
        p.ttl = ttl;
        p.id = i as u16 * 7919;
        frames.push(p.frame(HOST_A, 0));
    }
    // A short packet padded to the Ethernet minimum: the padding is trimmed.
    let mut short = Ip::udp("10.0.0.2", "10.0.1.2");
    short.payload = udp(1, 2, b"");
    let mut padded = short.frame(HOST_A, 0);
    padded.resize(60, 0xee);
    frames.push(padded);
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    h.inject(0, &refs);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 4);
    for (o, f) in out.iter().zip(&frames) {
        let p = routed(o, HOST_B, PG[1]);
        let orig = &f[14..];
        assert_eq!(p[8], orig[8] - 1, "TTL decremented");
        assert_eq!(&p[12..20], &orig[12..20], "addresses unchanged");
        assert_eq!(p[20..], orig[20..p.len()], "payload unchanged");
    }
    assert_eq!(out[3].len(), 14 + 28, "Ethernet padding not forwarded");
    assert_eq!(h.error("ip4-input", "Ethernet padding trimmed (not a drop)"), 1);
    assert_eq!(h.packets("ip4-rewrite"), 4);
    // Traced: the path through the graph, node by node.
    h.graph.add_trace("pg-input", 1).unwrap();
    h.inject(0, &[&frames[0]]);
    assert_eq!(h.take_tx(1).len(), 1);
    let path = h.graph.trace_log().path(1);
    assert_eq!(path, vec!["pg-input", "ethernet-input", "ip4-input", "ip4-lookup", "ip4-rewrite", "interface-output"]);
    let text = h.graph.trace_log().format();
    assert!(text.contains("ip4-input: sw_if 0: 10.0.0.2 -> 10.0.1.2 UDP (17) ttl 2"), "{text}");
    assert!(text.contains("ip4-rewrite: adj "), "{text}");
    assert!(text.contains("02:00:00:00:00:a1 -> 02:00:00:00:00:0b ttl 2 len 47: rewritten"), "{text}");
    h.assert_no_leak();
}

#[test]
fn longest_prefix_match_and_vrf_separation() {
    // VRF 0: pg0, pg1. VRF 1: pg2, pg3 — with overlapping prefixes.
    let mut h =
        setup(&[(0, 0, "10.0.0.1", 24), (1, 0, "10.0.1.1", 24), (2, 1, "10.0.0.1", 24), (3, 1, "10.1.1.1", 24)]);
    {
        let mut c = h.tables.fib.control();
        c.add_static_neighbor(1, ip("10.0.1.2").into(), HOST_B).unwrap();
        c.add_static_neighbor(1, ip("10.0.1.3").into(), HOST_C).unwrap();
        c.add_static_neighbor(3, ip("10.1.1.4").into(), HOST_D).unwrap();
        c.add_route(0, net("10.8.0.0/16"), &[RoutePath::via(ip("10.0.1.2"), 1)]).unwrap();
        c.add_route(0, net("10.8.5.0/24"), &[RoutePath::via(ip("10.0.1.3"), 1)]).unwrap();
        c.add_route(0, net("10.8.5.7/32"), &[RoutePath::special(NextHop::Drop)]).unwrap();
        c.add_route(1, net("10.8.0.0/16"), &[RoutePath::via(ip("10.1.1.4"), 3)]).unwrap();
        c.add_route(1, net("10.9.0.0/16"), &[RoutePath::via(ip("10.1.1.4"), 3)]).unwrap();
    }
    let send = |h: &mut Harness, port: usize, dst: &str| {
        h.inject(port as u32, &[&Ip::udp("10.0.0.2", dst).frame(HOST_A, port)])
    };
    send(&mut h, 0, "10.8.200.1");
    send(&mut h, 0, "10.8.5.1");
    let out = h.take_tx(1);
    assert_eq!(out.len(), 2);
    routed(&out[0], HOST_B, PG[1]);
    routed(&out[1], HOST_C, PG[1]);
    send(&mut h, 0, "10.8.5.7");
    assert_eq!(h.error("ip4-lookup", "dropped by a drop route"), 1);
    // The same destination from VRF 1 leaves by VRF 1's route.
    send(&mut h, 2, "10.8.5.1");
    let out = h.take_tx(3);
    assert_eq!(out.len(), 1);
    routed(&out[0], HOST_D, PG[3]);
    assert!(h.take_tx(1).is_empty());
    // 10.9/16 exists in VRF 1 only.
    send(&mut h, 0, "10.9.0.1");
    assert_eq!(h.error("ip4-lookup", "no route"), 1);
    send(&mut h, 2, "10.9.0.1");
    assert_eq!(h.take_tx(3).len(), 1);
    h.assert_no_leak();
}

#[test]
fn ecmp_spreads_flows_and_each_flow_sticks_to_one_path() {
    let mut h = setup(&[(0, 0, "10.0.0.1", 24), (1, 0, "10.0.1.1", 24), (2, 0, "10.0.2.1", 24)]);
    {
        let mut c = h.tables.fib.control();
        c.add_static_neighbor(1, ip("10.0.1.2").into(), HOST_B).unwrap();
        c.add_static_neighbor(2, ip("10.0.2.2").into(), HOST_C).unwrap();
        c.add_route(0, net("10.9.0.0/16"), &[RoutePath::via(ip("10.0.1.2"), 1), RoutePath::via(ip("10.0.2.2"), 2)])
            .unwrap();
    }
    let flows: Vec<Vec<u8>> = (0..200u16)
        .map(|i| {
            let mut p = Ip::udp("10.0.0.2", "10.9.1.1");
            p.payload = udp(10_000 + i, 53, b"q");
            p.frame(HOST_A, 0)
        })
        .collect();
    let refs: Vec<&[u8]> = flows.iter().map(|f| f.as_slice()).collect();
    let mut first = Vec::new();
    for round in 0..3 {
        h.inject(0, &refs);
        let (a, b) = (h.take_tx(1), h.take_tx(2));
        assert_eq!(a.len() + b.len(), 200);
        assert!(a.len() >= 50 && b.len() >= 50, "flows spread over both paths: {} / {}", a.len(), b.len());
        let sport = |f: &Vec<u8>| u16::from_be_bytes([f[34], f[35]]);
        let mut on_b: Vec<u16> = b.iter().map(sport).collect();
        on_b.sort_unstable();
        for f in &a {
            routed(f, HOST_B, PG[1]);
        }
        for f in &b {
            routed(f, HOST_C, PG[2]);
        }
        if round == 0 {
            first = on_b;
        } else {
            assert_eq!(on_b, first, "every flow keeps its path");
        }
    }
    h.assert_no_leak();
}

#[test]
fn arp_request_for_our_address_is_answered_and_the_sender_learned() {
    let mut h = setup(&[(0, 0, "10.0.0.1", 24), (1, 0, "10.0.1.1", 24)]);
    h.inject(0, &[&arp_request(HOST_A, "10.0.0.2", "10.0.0.1")]);
    let out = h.take_tx(0);
    let mut want = Vec::new();
    want.extend_from_slice(&HOST_A.0);
    want.extend_from_slice(&PG[0].0);
    want.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2]);
    want.extend_from_slice(&PG[0].0);
    want.extend_from_slice(&[10, 0, 0, 1]);
    want.extend_from_slice(&HOST_A.0);
    want.extend_from_slice(&[10, 0, 0, 2]);
    assert_eq!(out, vec![want]);
    assert_eq!(h.error("arp-input", "requests for our address answered (not a drop)"), 1);
    assert_eq!(h.error("arp-input", "neighbors learned (not a drop)"), 1);
    let n = h.tables.fib.control().neighbor(0, ip("10.0.0.2").into()).unwrap();
    assert_eq!(n.mac, HOST_A);
    // Learned: traffic to A is forwarded at once, no ARP of our own.
    h.inject(1, &[&Ip::udp("10.0.1.2", "10.0.0.2").frame(HOST_B, 1)]);
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    routed(&out[0], HOST_A, PG[0]);
    // A request for someone else on the link: not answered, not learned.
    h.inject(0, &[&arp_request(HOST_C, "10.0.0.3", "10.0.0.9")]);
    assert!(h.take_tx(0).is_empty());
    assert_eq!(h.error("arp-input", "requests for other addresses"), 1);
    assert!(h.tables.fib.control().neighbor(0, ip("10.0.0.3").into()).is_none());
    // ... but a known sender's new MAC is taken (RFC 826 merge).
    h.inject(0, &[&arp_request(HOST_D, "10.0.0.2", "10.0.0.9")]);
    assert_eq!(h.tables.fib.control().neighbor(0, ip("10.0.0.2").into()).unwrap().mac, HOST_D);
    // Someone claiming our address is not believed.
    h.inject(0, &[&arp_request(HOST_C, "10.0.0.1", "10.0.0.1")]);
    assert_eq!(h.error("arp-input", "sender claims one of our addresses"), 1);
    // A sender off the link is answered but not learned.
    h.inject(0, &[&arp_request(HOST_C, "192.168.9.9", "10.0.0.1")]);
    assert_eq!(h.take_tx(0).len(), 1);
    assert_eq!(h.error("arp-input", "sender not on link: not learned"), 1);
    assert!(h.tables.fib.control().neighbor(0, ip("192.168.9.9").into()).is_none());
    h.assert_no_leak();
}

#[test]
fn arp_on_a_vlan_sub_interface_is_answered_tagged() {
    let mut t = Tables::default();
    t.set_interface(Interface::port(0, "trunk", 0, PG[0], IfMode::L3 { vrf: 0 }));
    let mut sub = Interface::port(10, "trunk.100", 0, PG[0], IfMode::L3 { vrf: 0 });
    sub.kind = IfKind::SubIf { parent: 0, tags: VlanTags::dot1q(100) };
    sub.ip4 = vec![(ip("10.0.5.1"), 24)];
    t.set_interface(sub);
    t.fib.control().sync_interfaces(&t).unwrap();
    let mut h = Harness::new(t, 256);
    let req = eth(
        MacAddr::BROADCAST,
        HOST_A,
        &[(0x8100, 100)],
        0x0806,
        &arp(1, HOST_A, ip("10.0.5.2"), MacAddr::ZERO, ip("10.0.5.1")),
    );
    h.inject(0, &[&req]);
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..18], &[2, 0, 0, 0, 0, 0x0a, 2, 0, 0, 0, 0, 0xa0, 0x81, 0, 0, 100, 8, 6]);
    assert_eq!(&out[0][18..], &arp(2, PG[0], ip("10.0.5.1"), HOST_A, ip("10.0.5.2"))[..]);
    // Routed traffic to the learned host carries the tag too.
    let mut pg1 = Interface::port(1, "pg1", 1, PG[1], IfMode::L3 { vrf: 0 });
    pg1.ip4 = vec![(ip("10.0.1.1"), 24)];
    h.tables.set_interface(pg1);
    h.tables.fib.control().sync_interfaces(&h.tables.clone()).unwrap();
    h.inject(1, &[&Ip::udp("10.0.1.2", "10.0.5.2").frame(HOST_B, 1)]);
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..18], &[2, 0, 0, 0, 0, 0x0a, 2, 0, 0, 0, 0, 0xa0, 0x81, 0, 0, 100, 8, 0]);
    h.assert_no_leak();
}

#[test]
fn proxy_arp_answers_for_addresses_routed_elsewhere() {
    // pg0: uplink 10.0.0.1/24, default route via 10.0.0.254.
    // pg2: a pod interface with no address; the pod 10.5.0.7/32 is routed
    // to it; the pod's gateway 169.254.1.1 exists nowhere.
    let mut h = setup(&[(0, 0, "10.0.0.1", 24), (2, 0, "", 0)]);
    {
        let mut c = h.tables.fib.control();
        c.add_route(0, net("0.0.0.0/0"), &[RoutePath::via(ip("10.0.0.254"), 0)]).unwrap();
        c.add_route(0, net("10.5.0.7/32"), &[RoutePath::attached(2)]).unwrap();
    }
    let pod = mac(0x77);
    let req = |target: &str| {
        let mut f = eth(MacAddr::BROADCAST, pod, &[], 0x0806, &arp(1, pod, ip("10.5.0.7"), MacAddr::ZERO, ip(target)));
        f.resize(60, 0);
        f
    };
    // Proxy ARP off: the pod's gateway does not answer.
    h.inject(2, &[&req("169.254.1.1")]);
    assert!(h.take_tx(2).is_empty());
    assert_eq!(h.error("arp-input", "requests for other addresses"), 1);
    let mut pod_if = h.tables.interface(2).unwrap().clone();
    pod_if.proxy_arp = true;
    h.tables.set_interface(pod_if);
    h.inject(2, &[&req("169.254.1.1")]);
    let out = h.take_tx(2);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..14], &eth(pod, PG[2], &[], 0x0806, &[])[..]);
    assert_eq!(&out[0][14..], &arp(2, PG[2], ip("169.254.1.1"), pod, ip("10.5.0.7"))[..]);
    assert_eq!(h.error("arp-input", "requests answered by proxy ARP (not a drop)"), 1);
    // The pod (on link through its /32) was learned: traffic reaches it.
    assert_eq!(h.tables.fib.control().neighbor(2, ip("10.5.0.7").into()).unwrap().mac, pod);
    h.inject(0, &[&Ip::udp("10.0.0.2", "10.5.0.7").frame(HOST_A, 0)]);
    let out = h.take_tx(2);
    assert_eq!(out.len(), 1);
    routed(&out[0], pod, PG[2]);
    // An address routed out of the same interface: no proxy answer.
    h.tables.fib.control().add_route(0, net("10.5.0.8/32"), &[RoutePath::attached(2)]).unwrap();
    h.inject(2, &[&req("10.5.0.8")]);
    assert!(h.take_tx(2).is_empty());
    assert_eq!(h.error("arp-input", "requests for other addresses"), 2);
    h.assert_no_leak();
}

#[test]
fn glean_sends_arp_holds_the_packet_and_forwards_it_on_reply() {
    let mut h = setup(&[(0, 0, "10.0.0.1", 24), (1, 0, "10.0.1.1", 24)]);
    h.tables.fib.control().add_static_neighbor(0, ip("10.0.0.2").into(), HOST_A).unwrap();
    // A long probe interval, so that a slow test machine cannot send a
    // second request between the two bursts below.
    let cfg = HoldConfig { probe_interval: Duration::from_secs(10), ..HoldConfig::default() };
    h.shared.ip4_hold.lock().unwrap().set_config(cfg);
    let pkts: Vec<Vec<u8>> = (0..6u16)
        .map(|i| {
            let mut p = Ip::udp("10.0.0.2", "10.0.1.7");
            p.id = i;
            p.frame(HOST_A, 0)
        })
        .collect();
    h.inject(0, &[&pkts[0], &pkts[1], &pkts[2]]);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 1, "one ARP request for three packets");
    let mut want =
        eth(MacAddr::BROADCAST, PG[1], &[], 0x0806, &arp(1, PG[1], ip("10.0.1.1"), MacAddr::ZERO, ip("10.0.1.7")));
    assert_eq!(out[0], want);
    assert_eq!(h.error("ip4-arp", "packets held for resolution (not a drop)"), 3);
    h.inject(0, &[&pkts[3], &pkts[4], &pkts[5]]);
    assert!(h.take_tx(1).is_empty(), "rate limited: no second request within the probe interval");
    assert_eq!(h.error("ip4-arp", "dropped: hold queue full for the next hop"), 2, "4 held per next hop");
    // The reply resolves the neighbor; the held packets go out in order.
    h.inject(1, &[&arp_reply(HOST_B, "10.0.1.7", PG[1], "10.0.1.1")]);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 4);
    for (i, f) in out.iter().enumerate() {
        let p = routed(f, HOST_B, PG[1]);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), i as u16, "held packets keep their order");
    }
    assert_eq!(h.error("arp-input", "held packets released after resolution (not a drop)"), 4);
    assert!(h.shared.ip4_hold.lock().unwrap().is_empty());
    // After the resolution packets go straight through.
    h.inject(0, &[&pkts[0]]);
    assert_eq!(h.take_tx(1).len(), 1);
    // A route via an unresolved next hop (incomplete adjacency) asks for
    // the next hop, not the destination.
    h.tables.fib.control().add_route(0, net("172.16.0.0/12"), &[RoutePath::via(ip("10.0.1.9"), 1)]).unwrap();
    h.inject(0, &[&Ip::udp("10.0.0.2", "172.16.3.3").frame(HOST_A, 0)]);
    want = eth(MacAddr::BROADCAST, PG[1], &[], 0x0806, &arp(1, PG[1], ip("10.0.1.1"), MacAddr::ZERO, ip("10.0.1.9")));
    assert_eq!(h.take_tx(1), vec![want]);
    h.inject(1, &[&arp_reply(HOST_C, "10.0.1.9", PG[1], "10.0.1.1")]);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 1);
    routed(&out[0], HOST_C, PG[1]);
    h.assert_no_leak();
    assert_eq!(h.pool.available(), h.pool.capacity(), "pool full again after resolution");
}

#[test]
fn held_packets_time_out_and_are_freed() {
    let mut h = setup(&[(0, 0, "10.0.0.1", 24), (1, 0, "10.0.1.1", 24)]);
    h.tables.fib.control().add_static_neighbor(0, ip("10.0.0.2").into(), HOST_A).unwrap();
    h.shared
        .ip4_hold
        .lock()
        .unwrap()
        .set_config(HoldConfig { hold: Duration::from_millis(30), ..HoldConfig::default() });
    h.inject(
        0,
        &[&Ip::udp("10.0.0.2", "10.0.1.7").frame(HOST_A, 0), &Ip::udp("10.0.0.2", "10.0.1.8").frame(HOST_A, 0)],
    );
    assert_eq!(h.take_tx(1).len(), 2, "two ARP requests");
    assert_eq!(h.shared.ip4_hold.lock().unwrap().len(), 2);
    std::thread::sleep(Duration::from_millis(50));
    // Serviced when ip4-arp runs again (another unresolved destination)...
    h.inject(0, &[&Ip::udp("10.0.0.2", "10.0.1.9").frame(HOST_A, 0)]);
    assert_eq!(h.take_tx(1).len(), 1, "ARP request for 10.0.1.9");
    assert_eq!(h.error("ip4-arp", "dropped: held too long, next hop not resolved"), 2);
    assert_eq!(h.shared.ip4_hold.lock().unwrap().len(), 1);
    // ... or by the worker loop when idle.
    std::thread::sleep(Duration::from_millis(50));
    let (released, expired) = service_ip4_hold(&h.shared.ip4_hold, &mut h.graph, &mut h.bufs, &h.tables, clock::now());
    assert_eq!((released, expired), (0, 1));
    assert!(h.shared.ip4_hold.lock().unwrap().is_empty());
    // A reply after the timeout forwards nothing and leaks nothing.
    h.inject(1, &[&arp_reply(HOST_B, "10.0.1.7", PG[1], "10.0.1.1")]);
    assert!(h.take_tx(1).is_empty());
    assert_eq!(h.error("arp-input", "neighbors learned (not a drop)"), 1);
    h.assert_no_leak();
    assert_eq!(h.pool.available(), h.pool.capacity(), "pool full again after the timeout");
}

#[test]
fn ping_to_our_address_is_answered() {
    let mut h = two_ports();
    let payload: Vec<u8> = (0..56u8).collect();
    let mut p = Ip::udp("10.0.0.2", "10.0.1.1");
    p.proto = 1;
    p.ttl = 3;
    p.payload = icmp(8, 0, [0x12, 0x34, 0, 9], &payload);
    h.inject(0, &[&p.frame(HOST_A, 0)]);
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    let r = routed(&out[0], HOST_A, PG[0]);
    assert_eq!(&r[12..16], &[10, 0, 1, 1], "from the address pinged");
    assert_eq!(&r[16..20], &[10, 0, 0, 2]);
    assert_eq!(r[8], 64, "our own TTL, not decremented");
    assert_eq!(r[9], 1);
    let m = icmp_ok(r);
    assert_eq!(&m[..2], &[0, 0], "echo reply");
    assert_eq!(&m[4..8], &[0x12, 0x34, 0, 9], "identifier and sequence");
    assert_eq!(&m[8..], &payload[..]);
    assert_eq!(h.error("ip4-local", "echo requests answered (not a drop)"), 1);
    // A bad ICMP checksum is not answered.
    let mut bad = p.clone();
    bad.payload[8] ^= 1;
    h.inject(0, &[&bad.frame(HOST_A, 0)]);
    assert!(h.take_tx(0).is_empty());
    assert_eq!(h.error("ip4-local", "bad ICMP checksum"), 1);
    h.assert_no_leak();
}

#[test]
fn local_protocols_and_punt_routes_reach_the_punt_queue() {
    let mut h = two_ports();
    h.tables.fib.control().add_route(0, net("198.51.100.0/24"), &[RoutePath::special(NextHop::Punt)]).unwrap();
    h.inject(
        0,
        &[&Ip::udp("10.0.0.2", "10.0.0.1").frame(HOST_A, 0), &Ip::udp("10.0.0.2", "198.51.100.1").frame(HOST_A, 0)],
    );
    assert_eq!(h.shared.punt.len(), 2);
    let mut got = Vec::new();
    let n = h.shared.punt.drain(&mut h.bufs, |reason, m, d| got.push((reason, m.rx_if, d[16..20].to_vec())));
    assert_eq!(n, 2);
    got.sort();
    assert_eq!(got, vec![(1, 0, vec![198, 51, 100, 1]), (2, 0, vec![10, 0, 0, 1])], "route punt, local UDP");
    assert_eq!(h.error("punt", "queued for the control plane (not a drop)"), 2);
    h.assert_no_leak();
}

/// The ICMP error in `frame` after its checks: (type, code, rest, quoted).
fn icmp_error(frame: &[u8], to: MacAddr, via: MacAddr, from: &str, dst: &str) -> (u8, u8, [u8; 4], Vec<u8>) {
    let p = routed(frame, to, via);
    assert_eq!(&p[12..16], &ip(from).octets(), "error source");
    assert_eq!(&p[16..20], &ip(dst).octets(), "error destination");
    assert_eq!(p[9], 1);
    let m = icmp_ok(p);
    (m[0], m[1], [m[4], m[5], m[6], m[7]], m[8..].to_vec())
}

#[test]
fn ttl_expiry_sends_time_exceeded_quoting_the_header() {
    let mut h = two_ports();
    let mut p = Ip::udp("10.0.0.2", "10.0.1.2");
    p.ttl = 1;
    let sent = p.bytes();
    h.inject(0, &[&p.frame(HOST_A, 0)]);
    assert!(h.take_tx(1).is_empty(), "not forwarded");
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    let (ty, code, rest, quoted) = icmp_error(&out[0], HOST_A, PG[0], "10.0.0.1", "10.0.0.2");
    assert_eq!((ty, code, rest), (11, 0, [0; 4]));
    assert_eq!(quoted, sent[..28].to_vec(), "original header + 8 bytes");
    assert_eq!(h.error("ip4-rewrite", "TTL expired (time exceeded sent to ip4-icmp-error)"), 1);
    assert_eq!(h.error("ip4-icmp-error", "time exceeded sent (not a drop)"), 1);
    // TTL 1 to us is delivered, not expired.
    let mut local = p.clone();
    local.dst = ip("10.0.0.1");
    local.proto = 1;
    local.payload = icmp(8, 0, [0, 1, 0, 1], b"x");
    h.inject(0, &[&local.frame(HOST_A, 0)]);
    assert_eq!(h.take_tx(0).len(), 1, "echo reply");
    h.assert_no_leak();
}

#[test]
fn too_big_with_df_gets_frag_needed_and_without_df_is_fragmented() {
    let mut h = two_ports();
    let mut pg1 = h.tables.interface(1).unwrap().clone();
    pg1.mtu = 576;
    h.tables.set_interface(pg1);
    h.tables.fib.control().sync_interfaces(&h.tables.clone()).unwrap();
    let data: Vec<u8> = (0..1400u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut p = Ip::udp("10.0.0.2", "10.0.1.2");
    p.payload = udp(7, 9, &data);
    p.df = true;
    let sent = p.bytes();
    h.inject(0, &[&p.frame(HOST_A, 0)]);
    assert!(h.take_tx(1).is_empty());
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    let (ty, code, rest, quoted) = icmp_error(&out[0], HOST_A, PG[0], "10.0.0.1", "10.0.0.2");
    assert_eq!((ty, code), (3, 4));
    assert_eq!(u16::from_be_bytes([rest[2], rest[3]]), 576, "next-hop MTU");
    assert_eq!(quoted, sent[..28].to_vec());
    // DF clear, with a copied option (loose source route) and a non-copied
    // one (record route).
    p.df = false;
    p.options = vec![131, 7, 4, 10, 0, 1, 2, 7, 7, 4, 0, 0, 0, 0, 0, 0];
    let whole = p.bytes();
    h.inject(0, &[&p.frame(HOST_A, 0)]);
    let frags = h.take_tx(1);
    assert_eq!(frags.len(), 3);
    let mut payload = Vec::new();
    for (i, f) in frags.iter().enumerate() {
        let q = routed(f, HOST_B, PG[1]);
        assert!(q.len() <= 576);
        let hl = (q[0] & 15) as usize * 4;
        assert_eq!(hl, if i == 0 { 36 } else { 28 }, "later fragments carry only copied options");
        if i > 0 {
            assert_eq!(&q[20..27], &[131, 7, 4, 10, 0, 1, 2]);
        }
        assert_eq!(&q[4..6], &whole[4..6], "same identification");
        assert_eq!(q[8], 63);
        let ff = u16::from_be_bytes([q[6], q[7]]);
        assert_eq!(ff & 0x2000 != 0, i < 2, "MF on all but the last");
        assert_eq!(((ff & 0x1fff) * 8) as usize, payload.len(), "offset");
        if i < 2 {
            assert_eq!((q.len() - hl) % 8, 0);
        }
        payload.extend_from_slice(&q[hl..]);
    }
    assert_eq!(payload, whole[36..].to_vec(), "fragments reassemble to the original");
    assert_eq!(h.error("ip4-rewrite", "fragments sent (not a drop)"), 3);
    h.assert_no_leak();
}

#[test]
fn fragmenting_without_buffers_or_room_drops_and_counts() {
    // One buffer in the pool: the packet itself. Its other fragments
    // cannot get one.
    let mut t = Tables::default();
    for (i, a) in [(0u32, "10.0.0.1"), (1, "10.0.1.1")] {
        let mut intf = Interface::port(i, &format!("pg{i}"), i, PG[i as usize], IfMode::L3 { vrf: 0 });
        intf.ip4 = vec![(ip(a), 24)];
        intf.mtu = if i == 1 { 576 } else { 1500 };
        t.set_interface(intf);
    }
    t.fib.control().sync_interfaces(&t).unwrap();
    t.fib.control().add_static_neighbor(1, ip("10.0.1.2").into(), HOST_B).unwrap();
    let mut h = Harness::new(t, 1);
    let mut p = Ip::udp("10.0.0.2", "10.0.1.2");
    p.payload = udp(7, 9, &[0x5a; 1200]);
    h.inject(0, &[&p.frame(HOST_A, 0)]);
    assert!(h.take_tx(1).is_empty());
    assert_eq!(h.error("ip4-rewrite", "dropped: no buffer for a fragment"), 1);
    h.assert_no_leak();
    // An MTU below a header and 8 bytes cannot be fragmented into.
    let mut pg1 = h.tables.interface(1).unwrap().clone();
    pg1.mtu = 24;
    h.tables.set_interface(pg1);
    h.tables.fib.control().sync_interfaces(&h.tables.clone()).unwrap();
    h.inject(0, &[&p.frame(HOST_A, 0)]);
    assert_eq!(h.error("ip4-rewrite", "dropped: MTU too small to fragment"), 1);
    h.assert_no_leak();
}

#[test]
fn no_icmp_error_about_an_icmp_error_a_later_fragment_or_from_a_broadcast_source() {
    let mut h = two_ports();
    // A time-exceeded in transit whose TTL runs out.
    let mut e = Ip::udp("10.0.0.2", "10.0.1.2");
    e.proto = 1;
    e.ttl = 1;
    e.payload = icmp(11, 0, [0; 4], &Ip::udp("10.0.1.2", "10.9.9.9").bytes()[..28]);
    // A later fragment.
    let mut f = Ip::udp("10.0.0.2", "10.0.1.2");
    f.ttl = 1;
    f.frag_off = 1480;
    // To the subnet broadcast of the receiving interface.
    let mut b = Ip::udp("10.0.0.2", "10.0.1.2");
    b.ttl = 1;
    b.src = ip("10.0.0.255");
    h.inject(0, &[&e.frame(HOST_A, 0), &f.frame(HOST_A, 0), &b.frame(HOST_A, 0)]);
    assert!(h.take_tx(0).is_empty());
    assert!(h.take_tx(1).is_empty());
    assert_eq!(h.error("ip4-icmp-error", "not sent: the packet is an ICMP error"), 1);
    assert_eq!(h.error("ip4-icmp-error", "not sent: fragment other than the first"), 1);
    assert_eq!(h.error("ip4-icmp-error", "not sent: martian or broadcast source"), 1);
    // An echo request is not an error: it gets one.
    let mut ok = e.clone();
    ok.payload = icmp(8, 0, [0; 4], b"");
    h.inject(0, &[&ok.frame(HOST_A, 0)]);
    assert_eq!(h.take_tx(0).len(), 1);
    h.assert_no_leak();
}

#[test]
fn icmp_errors_are_rate_limited_and_counted() {
    let mut h = two_ports();
    h.graph.node_mut::<Ip4IcmpError>("ip4-icmp-error").unwrap().set_rate(1, 5);
    let mut p = Ip::udp("10.0.0.2", "10.0.1.2");
    p.ttl = 1;
    let frames: Vec<Vec<u8>> = (0..20).map(|_| p.frame(HOST_A, 0)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    h.inject(0, &refs);
    assert_eq!(h.take_tx(0).len(), 5, "the burst");
    assert_eq!(h.error("ip4-icmp-error", "not sent: rate limited"), 15);
    h.assert_no_leak();
}

#[test]
fn unreachable_and_prohibited_routes_send_their_icmp() {
    let mut h = two_ports();
    {
        let mut c = h.tables.fib.control();
        c.add_route(0, net("192.0.2.0/24"), &[RoutePath::special(NextHop::Unreachable)]).unwrap();
        c.add_route(0, net("203.0.113.0/24"), &[RoutePath::special(NextHop::Prohibit)]).unwrap();
    }
    h.inject(
        0,
        &[&Ip::udp("10.0.0.2", "192.0.2.1").frame(HOST_A, 0), &Ip::udp("10.0.0.2", "203.0.113.1").frame(HOST_A, 0)],
    );
    let out = h.take_tx(0);
    assert_eq!(out.len(), 2);
    let codes: Vec<(u8, u8)> = out
        .iter()
        .map(|f| {
            let e = icmp_error(f, HOST_A, PG[0], "10.0.0.1", "10.0.0.2");
            (e.0, e.1)
        })
        .collect();
    assert_eq!(codes, vec![(3, 1), (3, 13)]);
    h.assert_no_leak();
}

#[test]
fn every_ip4_input_check_has_its_counter() {
    let mut h = two_ports();
    let good = Ip::udp("10.0.0.2", "10.0.1.2");
    let fix = |mut b: Vec<u8>| {
        b[10] = 0;
        b[11] = 0;
        let hl = ((b[0] & 15) as usize * 4).clamp(20, b.len());
        let c = checksum::checksum(&b[..hl]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
        b
    };
    let send = |h: &mut Harness, ip: Vec<u8>| h.inject(0, &[&eth(PG[0], HOST_A, &[], 0x0800, &ip)]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good.bytes()[..19].to_vec(), "shorter than an IPv4 header"),
        (
            {
                let mut b = good.bytes();
                b[0] = 0x65;
                fix(b)
            },
            "IP version is not 4",
        ),
        (
            {
                let mut b = good.bytes();
                b[0] = 0x44;
                fix(b)
            },
            "header length below 20 or beyond the packet",
        ),
        (
            {
                let mut b = good.bytes();
                b[0] = 0x4f;
                b.truncate(40);
                fix(b)
            },
            "header length below 20 or beyond the packet",
        ),
        (
            {
                let mut b = good.bytes();
                b[3] += 1;
                fix(b)
            },
            "total length below the header or beyond the frame",
        ),
        (
            {
                let mut b = good.bytes();
                b[2] = 0;
                b[3] = 19;
                fix(b)
            },
            "total length below the header or beyond the frame",
        ),
        (
            {
                let mut b = good.bytes();
                b[10] ^= 0x40;
                b
            },
            "bad header checksum",
        ),
        (
            {
                let mut b = good.bytes();
                b[8] = 0;
                fix(b)
            },
            "TTL is 0",
        ),
        (
            {
                let mut b = good.bytes();
                b[12] = 127;
                fix(b)
            },
            "martian source address",
        ),
        (
            {
                let mut b = good.bytes();
                b[12] = 0;
                fix(b)
            },
            "martian source address",
        ),
        (
            {
                let mut b = good.bytes();
                b[12] = 224;
                fix(b)
            },
            "martian source address",
        ),
        (
            {
                let mut b = good.bytes();
                b[12..16].copy_from_slice(&[255; 4]);
                fix(b)
            },
            "martian source address",
        ),
        (
            {
                let mut b = good.bytes();
                b[12] = 240;
                fix(b)
            },
            "martian source address",
        ),
        (
            {
                let mut b = good.bytes();
                b[16] = 127;
                fix(b)
            },
            "martian destination address (0.0.0.0/8 or loopback)",
        ),
        (
            {
                let mut b = good.bytes();
                b[16..20].copy_from_slice(&[255; 4]);
                fix(b)
            },
            "multicast or broadcast destination (not routed)",
        ),
    ];
    let mut expect: std::collections::HashMap<&str, u64> = Default::default();
    for (bytes, counter) in cases {
        send(&mut h, bytes);
        *expect.entry(counter).or_default() += 1;
        for (c, n) in &expect {
            assert_eq!(h.error("ip4-input", c), *n, "{c}");
        }
    }
    assert!(h.take_tx(1).is_empty() && h.take_tx(0).is_empty());
    send(&mut h, good.bytes());
    assert_eq!(h.take_tx(1).len(), 1, "and a good one passes");
    h.assert_no_leak();
}

#[test]
fn truncated_and_foreign_arp_are_counted() {
    let mut h = two_ports();
    let full = arp(1, HOST_A, ip("10.0.0.2"), MacAddr::ZERO, ip("10.0.0.1"));
    h.inject(0, &[&eth(MacAddr::BROADCAST, HOST_A, &[], 0x0806, &full[..20])]);
    assert_eq!(h.error("arp-input", "truncated ARP packet"), 1);
    let mut v6 = full.clone();
    v6[2..4].copy_from_slice(&[0x86, 0xdd]);
    h.inject(0, &[&eth(MacAddr::BROADCAST, HOST_A, &[], 0x0806, &v6)]);
    assert_eq!(h.error("arp-input", "not Ethernet/IPv4 ARP"), 1);
    let mut bad_mac = full.clone();
    bad_mac[8] = 1;
    h.inject(0, &[&eth(MacAddr::BROADCAST, HOST_A, &[], 0x0806, &bad_mac)]);
    assert_eq!(h.error("arp-input", "sender MAC is multicast or zero"), 1);
    let mut op = full.clone();
    op[7] = 9;
    h.inject(0, &[&eth(MacAddr::BROADCAST, HOST_A, &[], 0x0806, &op)]);
    assert_eq!(h.error("arp-input", "unknown ARP operation"), 1);
    assert!(h.take_tx(0).is_empty());
    h.assert_no_leak();
}

#[test]
fn routes_change_while_traffic_flows() {
    let mut h = setup(&[(0, 0, "10.0.0.1", 24), (1, 0, "10.0.1.1", 24), (2, 0, "10.0.2.1", 24)]);
    {
        let mut c = h.tables.fib.control();
        c.add_static_neighbor(0, ip("10.0.0.2").into(), HOST_A).unwrap();
        c.add_static_neighbor(1, ip("10.0.1.2").into(), HOST_B).unwrap();
        c.add_static_neighbor(2, ip("10.0.2.2").into(), HOST_C).unwrap();
    }
    let frames: Vec<Vec<u8>> = (0..64u16)
        .map(|i| {
            let mut p = Ip::udp("10.0.0.2", &format!("10.20.{}.1", i));
            p.payload = udp(i, 80, b"data");
            p.frame(HOST_A, 0)
        })
        .collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    let fib = h.tables.fib.clone();
    // Phase by phase on one thread: no route, via B, via C, a more
    // specific route for half the destinations, removed again.
    h.inject(0, &refs);
    assert_eq!(h.error("ip4-lookup", "no route"), 64);
    fib.control().add_route(0, net("10.20.0.0/16"), &[RoutePath::via(ip("10.0.1.2"), 1)]).unwrap();
    h.inject(0, &refs);
    assert_eq!(h.take_tx(1).len(), 64);
    fib.control().add_route(0, net("10.20.0.0/16"), &[RoutePath::via(ip("10.0.2.2"), 2)]).unwrap();
    h.inject(0, &refs);
    assert_eq!(h.take_tx(2).len(), 64);
    fib.control().add_route(0, net("10.20.32.0/19"), &[RoutePath::via(ip("10.0.1.2"), 1)]).unwrap();
    h.inject(0, &refs);
    assert_eq!((h.take_tx(1).len(), h.take_tx(2).len()), (32, 32));
    fib.control().remove_route(0, net("10.20.32.0/19")).unwrap();
    fib.control().remove_route(0, net("10.20.0.0/16")).unwrap();
    h.inject(0, &refs);
    assert_eq!(h.error("ip4-lookup", "no route"), 128);
    // Concurrently: a control thread flaps routes while this thread
    // forwards, as a worker would (registered reader, quiescent points).
    let reader = fib.register_reader();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ctl = {
        let (fib, stop) = (fib.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 50 {
                let via = if n.is_multiple_of(2) {
                    RoutePath::via(ip("10.0.1.2"), 1)
                } else {
                    RoutePath::via(ip("10.0.2.2"), 2)
                };
                fib.control().add_route(0, net("10.20.0.0/16"), &[via]).unwrap();
                fib.control().add_route(0, net(&format!("10.20.{}.0/24", n % 64)), &[via]).unwrap();
                fib.control().remove_route(0, net(&format!("10.20.{}.0/24", (n + 32) % 64))).unwrap();
                if n.is_multiple_of(7) {
                    fib.control().remove_route(0, net("10.20.0.0/16")).unwrap();
                }
                fib.control().reclaim();
                n += 1;
            }
            n
        })
    };
    let (mut sent, mut b, mut c) = (0usize, 0usize, 0usize);
    let no_route_before = h.error("ip4-lookup", "no route");
    // At least 200 vectors, and on until both paths were seen (a starved
    // control thread on a busy machine only makes this take longer).
    let mut rounds = 0u32;
    while rounds < 200 || ((b == 0 || c == 0) && rounds < 200_000) {
        rounds += 1;
        reader.quiescent();
        h.inject(0, &refs);
        sent += refs.len();
        for f in h.take_tx(1) {
            routed(&f, HOST_B, PG[1]);
            b += 1;
        }
        for f in h.take_tx(2) {
            routed(&f, HOST_C, PG[2]);
            c += 1;
        }
        if rounds.is_multiple_of(64) {
            std::thread::yield_now();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(ctl.join().unwrap() >= 50);
    reader.offline();
    let dropped = (h.error("ip4-lookup", "no route") - no_route_before) as usize;
    assert_eq!(b + c + dropped, sent, "every packet forwarded on a valid path or dropped for no route");
    assert!(b > 0 && c > 0);
    drop(reader);
    h.assert_no_leak();
}

#[test]
fn control_errors_leave_the_fib_unchanged() {
    let mut h = two_ports();
    let mut c = h.tables.fib.control();
    let before = c.routes();
    assert_eq!(
        c.add_route(0, net("10.30.0.0/16"), &[RoutePath::via(ip("10.0.1.2"), 9)]),
        Err(IpFibError::NotRoutedInterface(9))
    );
    assert_eq!(
        c.learn_neighbor(0, IpAddr::V4(ip("10.0.0.1")), HOST_C, 0, true),
        Err(IpFibError::OwnAddress(ip("10.0.0.1").into()))
    );
    assert_eq!(c.routes(), before);
    drop(c);
    let a = h.tables.fib.resolve4(0, u32::from(ip("10.0.0.1")), 0).unwrap();
    assert_eq!(h.tables.fib.adj(a).kind, AdjKind::Local);
    // Traffic still flows as before.
    h.inject(0, &[&Ip::udp("10.0.0.2", "10.0.1.2").frame(HOST_A, 0)]);
    assert_eq!(h.take_tx(1).len(), 1);
    h.assert_no_leak();
}

#[test]
fn an_echo_reply_larger_than_the_mtu_is_fragmented_not_lost() {
    // Host B's link takes 1500 bytes, the router's pg1 only 576: a
    // 1028-byte echo request with DF (as Linux ping sends it) gets through
    // to us, and the reply, which must leave by pg1, is fragmented.
    let mut h = two_ports();
    let mut pg1 = h.tables.interface(1).unwrap().clone();
    pg1.mtu = 576;
    h.tables.set_interface(pg1);
    h.tables.fib.control().sync_interfaces(&h.tables.clone()).unwrap();
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 13 % 251) as u8).collect();
    let mut p = Ip::udp("10.0.1.2", "10.0.1.1");
    p.proto = 1;
    p.df = true;
    p.payload = icmp(8, 0, [0x12, 0x34, 0, 1], &data);
    h.inject(1, &[&p.frame(HOST_B, 1)]);
    let frags = h.take_tx(1);
    assert_eq!(frags.len(), 2, "a 1028-byte reply in 576-byte fragments");
    let mut whole = Vec::new();
    for (i, f) in frags.iter().enumerate() {
        let q = routed(f, HOST_B, PG[1]);
        assert!(q.len() <= 576);
        let ff = u16::from_be_bytes([q[6], q[7]]);
        assert_eq!(ff & 0x4000, 0, "no DF");
        assert_eq!(ff & 0x2000 != 0, i == 0, "MF on the first only");
        assert_eq!(((ff & 0x1fff) * 8) as usize, whole.len(), "offset");
        assert_eq!((&q[12..16], &q[16..20]), (&[10, 0, 1, 1][..], &[10, 0, 1, 2][..]));
        whole.extend_from_slice(&q[20..]);
    }
    assert_eq!(whole.len(), 8 + data.len());
    assert_eq!(checksum::fold(checksum::sum(&whole)), 0xffff, "ICMP checksum of the reassembled reply");
    assert_eq!(&whole[..2], &[0, 0], "echo reply");
    assert_eq!(&whole[4..8], &[0x12, 0x34, 0, 1]);
    assert_eq!(&whole[8..], &data[..]);
    assert_eq!(h.error("ip4-rewrite", "fragments sent (not a drop)"), 2);
    assert_eq!(h.error("ip4-icmp-error", "not sent: the packet is our own"), 0);
    h.assert_no_leak();
}
