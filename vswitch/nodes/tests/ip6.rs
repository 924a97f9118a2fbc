//! IPv6 routing and neighbor discovery on real frames through the standard
//! graph: forwarding and rewrite, LPM, VRFs, ECMP, neighbor solicitations
//! for our addresses (and proxied ones), glean with held packets and their
//! timeout, ping, ICMPv6 errors (time exceeded, packet too big, no route)
//! and their limits, every ip6-input error and invalid ND.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;
use vswitch_nodes::harness::Harness;
use vswitch_nodes::ip::hold::HoldConfig;
use vswitch_nodes::ip::icmp_limit::TokenBucket;
use vswitch_nodes::ip::RoutePath;
use vswitch_nodes::ip6::discover::service_ip6_hold;
use vswitch_nodes::ip6::{Ip6Discover, Ip6IcmpError};
use vswitch_nodes::{IfKind, IfMode, Interface, Tables, VlanTags};
use vswitch_wire::MacAddr;

const fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

/// Router interface MACs: pgN has 02:00:00:00:00:aN.
const PG: [MacAddr; 4] = [mac(0xa0), mac(0xa1), mac(0xa2), mac(0xa3)];
const HOST_A: MacAddr = mac(0x0a);
const HOST_B: MacAddr = mac(0x0b);
const HOST_C: MacAddr = mac(0x0c);
const HOST_D: MacAddr = mac(0x0d);

const UDP: u8 = 17;
const ICMP6: u8 = 58;
const NS: u8 = 135;
const NA: u8 = 136;
/// NA flags.
const R: u8 = 0x80;
const S: u8 = 0x40;
const O: u8 = 0x20;

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

fn eth(dst: MacAddr, src: MacAddr, tags: &[(u16, u16)], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    for (tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(payload);
    f
}

/// An IPv6 packet, by hand.
fn ip6(src: &str, dst: &str, nh: u8, hlim: u8, payload: &[u8]) -> Vec<u8> {
    ip6_fl(src, dst, nh, hlim, 0, payload)
}

fn ip6_fl(src: &str, dst: &str, nh: u8, hlim: u8, flow_label: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, ((flow_label >> 16) & 0x0f) as u8, (flow_label >> 8) as u8, flow_label as u8];
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[nh, hlim]);
    v.extend_from_slice(&a6(src).octets());
    v.extend_from_slice(&a6(dst).octets());
    v.extend_from_slice(payload);
    v
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

/// The ICMPv6 checksum of `msg` from `src` to `dst`, computed here from
/// the pseudo-header (RFC 8200 8.1) word by word.
fn icmp6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    for b in [&src.octets()[..], &dst.octets()[..]] {
        for w in b.chunks(2) {
            acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
    }
    acc += msg.len() as u64 + u64::from(ICMP6);
    for w in msg.chunks(2) {
        acc += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
    }
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// An ICMPv6 message with its checksum.
fn icmp6(src: &str, dst: &str, ty: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = icmp6_checksum(&a6(src), &a6(dst), &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// A Neighbor Solicitation (with a source link-layer option when `sll`).
fn ns(src: &str, dst: &str, target: &str, sll: Option<MacAddr>) -> Vec<u8> {
    let mut body = a6(target).octets().to_vec();
    if let Some(m) = sll {
        body.extend_from_slice(&[1, 1]);
        body.extend_from_slice(&m.0);
    }
    icmp6(src, dst, NS, 0, [0; 4], &body)
}

/// A Neighbor Advertisement (with a target link-layer option when `tll`).
fn na(src: &str, dst: &str, target: &str, flags: u8, tll: Option<MacAddr>) -> Vec<u8> {
    let mut body = a6(target).octets().to_vec();
    if let Some(m) = tll {
        body.extend_from_slice(&[2, 1]);
        body.extend_from_slice(&m.0);
    }
    icmp6(src, dst, NA, 0, [flags, 0, 0, 0], &body)
}

/// The solicited-node group of an address, and its MAC.
fn sn(addr: &str) -> (String, MacAddr) {
    let o = a6(addr).octets();
    let g = Ipv6Addr::from([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15]]);
    (g.to_string(), MacAddr([0x33, 0x33, 0xff, o[13], o[14], o[15]]))
}

/// The IPv6 packet of a frame after checking its Ethernet header and that
/// the payload length is the frame's.
fn routed(frame: &[u8], dst: MacAddr, src: MacAddr) -> &[u8] {
    assert_eq!(&frame[0..6], &dst.0, "destination MAC");
    assert_eq!(&frame[6..12], &src.0, "source MAC");
    assert_eq!(&frame[12..14], &[0x86, 0xdd], "ethertype");
    let p = &frame[14..];
    assert_eq!(p[0] >> 4, 6, "version");
    assert_eq!(u16::from_be_bytes([p[4], p[5]]) as usize + 40, p.len(), "payload length is the frame");
    p
}

fn src_of(p: &[u8]) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&p[8..24]).unwrap())
}

fn dst_of(p: &[u8]) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&p[24..40]).unwrap())
}

/// The ICMPv6 message of an IPv6 packet with no extension header, after
/// checking its checksum.
fn icmp_ok(p: &[u8]) -> &[u8] {
    assert_eq!(p[6], ICMP6, "next header");
    let m = &p[40..];
    let mut z = m.to_vec();
    z[2] = 0;
    z[3] = 0;
    assert_eq!(icmp6_checksum(&src_of(p), &dst_of(p), &z), u16::from_be_bytes([m[2], m[3]]), "ICMPv6 checksum");
    m
}

/// Routed ports: (sw_if = port, VRF, address/len). Interfaces get PG MACs.
fn setup(ports: &[(u32, u32, &str, u8)]) -> Harness {
    setup_with(ports, |_| {})
}

fn setup_with(ports: &[(u32, u32, &str, u8)], f: impl Fn(&mut Interface)) -> Harness {
    let mut t = Tables::default();
    for &(i, vrf, a, len) in ports {
        let mut intf = Interface::port(i, &format!("pg{i}"), i, PG[i as usize], IfMode::L3 { vrf });
        if !a.is_empty() {
            intf.ip6 = vec![(a6(a), len)];
        }
        f(&mut intf);
        t.set_interface(intf);
    }
    t.fib.control().sync_interfaces(&t).unwrap();
    Harness::new(t, 2048)
}

fn neighbor(h: &Harness, sw_if: u32, addr: &str, mac: MacAddr) {
    h.tables.fib.control().add_static_neighbor(sw_if, IpAddr::V6(a6(addr)), mac).unwrap();
}

/// pg0 2001:db8::1/64 (host A ::2) and pg1 2001:db8:1::1/64 (host B
/// 2001:db8:1::2), both hosts known.
fn two_ports() -> Harness {
    let h = setup(&[(0, 0, "2001:db8::1", 64), (1, 0, "2001:db8:1::1", 64)]);
    neighbor(&h, 0, "2001:db8::2", HOST_A);
    neighbor(&h, 1, "2001:db8:1::2", HOST_B);
    h
}

fn a_to(dst: &str, hlim: u8, sport: u16) -> Vec<u8> {
    eth(PG[0], HOST_A, &[], &ip6("2001:db8::2", dst, UDP, hlim, &udp(sport, 53, b"hello, routed world")))
}

fn drain_punt(h: &mut Harness) -> Vec<(u32, Vec<u8>)> {
    let mut v = Vec::new();
    h.shared.punt.drain(&mut h.bufs, |r, _, d| v.push((r, d.to_vec())));
    v
}

#[test]
fn routed_forwarding_rewrites_macs_and_decrements_hop_limit() {
    let mut h = two_ports();
    let frames: Vec<Vec<u8>> = [2u8, 64, 255].iter().map(|&hl| a_to("2001:db8:1::2", hl, 1000 + hl as u16)).collect();
    // A short packet padded to the Ethernet minimum: the padding is trimmed.
    let mut padded = eth(PG[0], HOST_A, &[], &ip6("2001:db8::2", "2001:db8:1::2", 59, 9, &[]));
    padded.resize(64, 0xee);
    let mut all: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    all.push(&padded);
    h.inject(0, &all);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 4);
    for (o, f) in out.iter().zip(&frames) {
        let p = routed(o, HOST_B, PG[1]);
        let orig = &f[14..];
        assert_eq!(p[7], orig[7] - 1, "hop limit decremented");
        assert_eq!(&p[..7], &orig[..7], "version, class, label, length, next header unchanged");
        assert_eq!(&p[8..], &orig[8..], "addresses and payload unchanged");
    }
    assert_eq!(out[3].len(), 14 + 40, "padding not forwarded");
    assert_eq!(h.error("ip6-input", "link padding trimmed (not a drop)"), 1);
    assert_eq!(h.packets("ip6-rewrite"), 4);
    assert!(h.take_tx(0).is_empty());
    // Traced: the path through the graph, node by node.
    h.graph.add_trace("pg-input", 1).unwrap();
    h.inject(0, &[&frames[0]]);
    assert_eq!(h.take_tx(1).len(), 1);
    let path = h.graph.trace_log().path(1);
    assert_eq!(path, vec!["pg-input", "ethernet-input", "ip6-input", "ip6-lookup", "ip6-rewrite", "interface-output"]);
    h.assert_no_leak();
}

#[test]
fn longest_prefix_match_and_vrf_separation() {
    // VRF 0: pg0, pg1, pg2. VRF 1: pg3 with pg0's very address.
    let mut h = setup(&[
        (0, 0, "2001:db8::1", 64),
        (1, 0, "2001:db8:1::1", 64),
        (2, 0, "2001:db8:2::1", 64),
        (3, 1, "2001:db8::1", 64),
    ]);
    neighbor(&h, 0, "2001:db8::2", HOST_A);
    neighbor(&h, 1, "2001:db8:1::2", HOST_B);
    neighbor(&h, 2, "2001:db8:2::2", HOST_C);
    neighbor(&h, 3, "2001:db8::2", HOST_D);
    {
        let mut c = h.tables.fib.control();
        c.add_route(0, net("2001:db8:100::/40"), &[RoutePath::via(a6("2001:db8:1::2"), 1)]).unwrap();
        c.add_route(0, net("2001:db8:100:5::/64"), &[RoutePath::via(a6("2001:db8:2::2"), 2)]).unwrap();
        c.add_route(1, net("2001:db8:100::/40"), &[RoutePath::via(a6("2001:db8::2"), 3)]).unwrap();
    }
    h.inject(
        0,
        &[&a_to("2001:db8:100:5::1", 64, 1), &a_to("2001:db8:100:6::1", 64, 2), &a_to("2001:db8:1ff::1", 64, 3)],
    );
    assert_eq!(h.take_tx(2).len(), 1, "the /64 wins inside the /40");
    let via_b = h.take_tx(1);
    assert_eq!(via_b.len(), 2, "the rest of the /40");
    assert_eq!(dst_of(routed(&via_b[0], HOST_B, PG[1])), a6("2001:db8:100:6::1"));
    // The same packet from pg3 is looked up in VRF 1: back out of pg3 to D.
    let from_d = eth(PG[3], HOST_D, &[], &ip6("2001:db8::2", "2001:db8:100:5::1", UDP, 64, &udp(1, 2, b"x")));
    h.inject(3, &[&from_d]);
    let out = h.take_tx(3);
    assert_eq!(out.len(), 1);
    routed(&out[0], HOST_D, PG[3]);
    assert!(h.take_tx(1).is_empty() && h.take_tx(2).is_empty(), "VRF 0 routes not used");
    // VRF 1 has no route to pg1's subnet: no route, an unreachable back to D.
    let to_b = eth(PG[3], HOST_D, &[], &ip6("2001:db8::2", "2001:db8:1::2", UDP, 64, &udp(1, 2, b"x")));
    h.inject(3, &[&to_b]);
    assert_eq!(h.error("ip6-lookup", "no route (no-route unreachable sent to ip6-icmp-error)"), 1);
    let out = h.take_tx(3);
    assert_eq!(out.len(), 1);
    let p = routed(&out[0], HOST_D, PG[3]);
    assert_eq!((src_of(p), dst_of(p)), (a6("2001:db8::1"), a6("2001:db8::2")));
    assert_eq!(&icmp_ok(p)[..2], &[1, 0], "destination unreachable, no route");
    assert!(h.take_tx(1).is_empty());
    h.assert_no_leak();
}

#[test]
fn ecmp_spreads_flows_and_each_flow_sticks_to_one_path() {
    let mut h = setup(&[(0, 0, "2001:db8::1", 64), (1, 0, "2001:db8:1::1", 64), (2, 0, "2001:db8:2::1", 64)]);
    neighbor(&h, 1, "2001:db8:1::2", HOST_B);
    neighbor(&h, 2, "2001:db8:2::2", HOST_C);
    h.tables
        .fib
        .control()
        .add_route(
            0,
            net("2001:db8:99::/48"),
            &[RoutePath::via(a6("2001:db8:1::2"), 1), RoutePath::via(a6("2001:db8:2::2"), 2)],
        )
        .unwrap();
    let sport = |f: &[u8]| u16::from_be_bytes([f[14 + 40], f[14 + 41]]);
    let flows: Vec<Vec<u8>> = (0..64).map(|i| a_to("2001:db8:99::9", 64, 5000 + i)).collect();
    let mut first = [0u32; 64];
    for round in 0..3 {
        for f in &flows {
            h.inject(0, &[f]);
        }
        for (port, mac) in [(1u32, HOST_B), (2, HOST_C)] {
            for o in h.take_tx(port) {
                routed(&o, mac, PG[port as usize]);
                let i = (sport(&o) - 5000) as usize;
                if round == 0 {
                    first[i] = port;
                } else {
                    assert_eq!(first[i], port, "flow {i} moved");
                }
            }
        }
    }
    let on1 = first.iter().filter(|&&p| p == 1).count();
    assert!(on1 > 8 && on1 < 56, "64 flows spread over two paths: {on1} on the first");
    assert!(first.iter().all(|&p| p == 1 || p == 2));
    // The flow label is part of the hash: same ports, different labels spread too.
    let mut seen = [false; 3];
    for label in 0..32u32 {
        let f =
            eth(PG[0], HOST_A, &[], &ip6_fl("2001:db8::2", "2001:db8:99::9", UDP, 64, label * 7919, &udp(1, 2, b"")));
        h.inject(0, &[&f]);
        for port in [1u32, 2] {
            if !h.take_tx(port).is_empty() {
                seen[port as usize] = true;
            }
        }
    }
    assert!(seen[1] && seen[2], "flow labels spread over both paths");
    h.assert_no_leak();
}

#[test]
fn solicitation_for_our_address_is_answered_and_the_solicitor_learned() {
    let mut h = setup(&[(0, 0, "2001:db8::1", 64), (1, 0, "2001:db8:1::1", 64)]);
    let (group, group_mac) = sn("2001:db8::1");
    let sol = eth(
        group_mac,
        HOST_A,
        &[],
        &ip6("2001:db8::2", &group, ICMP6, 255, &ns("2001:db8::2", &group, "2001:db8::1", Some(HOST_A))),
    );
    h.inject(0, &[&sol]);
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    // The whole frame, byte for byte, built here independently.
    let mut na_msg = vec![NA, 0, 0, 0, R | S | O, 0, 0, 0];
    na_msg.extend_from_slice(&a6("2001:db8::1").octets());
    na_msg.extend_from_slice(&[2, 1]);
    na_msg.extend_from_slice(&PG[0].0);
    let c = icmp6_checksum(&a6("2001:db8::1"), &a6("2001:db8::2"), &na_msg);
    na_msg[2..4].copy_from_slice(&c.to_be_bytes());
    let want = eth(HOST_A, PG[0], &[], &ip6("2001:db8::1", "2001:db8::2", ICMP6, 255, &na_msg));
    assert_eq!(out[0], want);
    icmp_ok(routed(&out[0], HOST_A, PG[0]));
    assert_eq!(h.error("ip6-nd", "advertisements sent (not a drop)"), 1);
    // The solicitor's link-layer option was learned: A is reachable now.
    let n = h.tables.fib.control().neighbor(0, IpAddr::V6(a6("2001:db8::2"))).unwrap();
    assert_eq!(n.mac, HOST_A);
    let b_to_a = eth(PG[1], HOST_B, &[], &ip6("2001:db8:1::2", "2001:db8::2", UDP, 64, &udp(1, 2, b"back")));
    h.inject(1, &[&b_to_a]);
    assert_eq!(h.take_tx(0).len(), 1, "forwarded to the learned MAC");
    // A solicitation for an address that is not ours gets no answer.
    let (g2, m2) = sn("2001:db8::77");
    let other = eth(
        m2,
        HOST_A,
        &[],
        &ip6("2001:db8::2", &g2, ICMP6, 255, &ns("2001:db8::2", &g2, "2001:db8::77", Some(HOST_A))),
    );
    h.inject(0, &[&other]);
    assert!(h.take_tx(0).is_empty());
    assert_eq!(h.error("ip6-input", "multicast to a group not joined (no multicast forwarding)"), 1);
    // Nor does one sent to our group for another target.
    let odd = eth(
        group_mac,
        HOST_A,
        &[],
        &ip6("2001:db8::2", &group, ICMP6, 255, &ns("2001:db8::2", &group, "2001:db8:5::1", Some(HOST_A))),
    );
    h.inject(0, &[&odd]);
    assert!(h.take_tx(0).is_empty());
    assert_eq!(h.error("ip6-nd", "solicitation for an address that is not ours (dropped)"), 1);
    h.assert_no_leak();
}

#[test]
fn duplicate_address_detection_is_answered_to_all_nodes() {
    let mut h = setup(&[(0, 0, "2001:db8::1", 64)]);
    let (group, group_mac) = sn("2001:db8::1");
    let dad = eth(group_mac, HOST_A, &[], &ip6("::", &group, ICMP6, 255, &ns("::", &group, "2001:db8::1", None)));
    h.inject(0, &[&dad]);
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    let p = routed(&out[0], MacAddr([0x33, 0x33, 0, 0, 0, 1]), PG[0]);
    assert_eq!((src_of(p), dst_of(p), p[7]), (a6("2001:db8::1"), a6("ff02::1"), 255));
    let m = icmp_ok(p);
    assert_eq!((m[0], m[4]), (NA, R | O), "not solicited: the defender answers DAD to everyone");
    assert_eq!(&m[8..24], &a6("2001:db8::1").octets());
    assert_eq!(&m[26..32], &PG[0].0);
    assert!(h.tables.fib.control().neighbors().is_empty(), "nothing learned from ::");
    h.assert_no_leak();
}

#[test]
fn solicitation_on_a_vlan_sub_interface_is_answered_tagged() {
    let mut t = Tables::default();
    t.set_interface(Interface::port(0, "pg0", 0, PG[0], IfMode::L3 { vrf: 0 }));
    let mut sub = Interface::port(10, "pg0.100", 0, PG[0], IfMode::L3 { vrf: 0 });
    sub.kind = IfKind::SubIf { parent: 0, tags: VlanTags::dot1q(100) };
    sub.ip6 = vec![(a6("2001:db8:64::1"), 64)];
    t.set_interface(sub);
    t.fib.control().sync_interfaces(&t).unwrap();
    let mut h = Harness::new(t, 1024);
    let (group, group_mac) = sn("2001:db8:64::1");
    let sol = eth(
        group_mac,
        HOST_A,
        &[(0x8100, 100)],
        &ip6("2001:db8:64::2", &group, ICMP6, 255, &ns("2001:db8:64::2", &group, "2001:db8:64::1", Some(HOST_A))),
    );
    h.inject(0, &[&sol]);
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..12], &[HOST_A.0, PG[0].0].concat()[..]);
    assert_eq!(&out[0][12..18], &[0x81, 0, 0, 100, 0x86, 0xdd], "tagged like the sub-interface");
    assert_eq!(out[0][18 + 40], NA);
    h.assert_no_leak();
}

#[test]
fn proxy_nd_answers_for_addresses_routed_elsewhere() {
    // pg2 faces pods with proxy ND on; the pod subnet is routed via pg1.
    let mut h = setup_with(&[(0, 0, "2001:db8::1", 64), (1, 0, "2001:db8:1::1", 64), (2, 0, "fe80::1", 64)], |i| {
        i.proxy_nd = i.sw_if == 2;
    });
    neighbor(&h, 1, "2001:db8:1::2", HOST_B);
    h.tables.fib.control().add_route(0, net("2001:db8:5::/64"), &[RoutePath::via(a6("2001:db8:1::2"), 1)]).unwrap();
    let (group, group_mac) = sn("2001:db8:5::7");
    let sol = |from: MacAddr| {
        eth(
            group_mac,
            from,
            &[],
            &ip6("fe80::c", &group, ICMP6, 255, &ns("fe80::c", &group, "2001:db8:5::7", Some(from))),
        )
    };
    // A pod on pg2 asks for an address behind pg1.
    h.inject(2, &[&sol(HOST_C)]);
    let out = h.take_tx(2);
    assert_eq!(out.len(), 1);
    let p = routed(&out[0], HOST_C, PG[2]);
    assert_eq!((src_of(p), dst_of(p)), (a6("fe80::1"), a6("fe80::c")), "from the interface's own address");
    let m = icmp_ok(p);
    assert_eq!((m[0], m[4]), (NA, R | S), "proxy answers do not override (RFC 4861 7.2.8)");
    assert_eq!(&m[8..24], &a6("2001:db8:5::7").octets());
    assert_eq!(&m[26..32], &PG[2].0, "our MAC for the proxied address");
    assert_eq!(h.error("ip6-nd", "proxy advertisements sent (not a drop)"), 1);
    // pg0 has no proxy ND: the same question there gets no answer.
    let (g0, m0) = sn("2001:db8::9");
    h.tables.fib.control().add_route(0, net("2001:db8::9/128"), &[RoutePath::via(a6("2001:db8:1::2"), 1)]).unwrap();
    let q = eth(
        m0,
        HOST_A,
        &[],
        &ip6("2001:db8::2", &g0, ICMP6, 255, &ns("2001:db8::2", &g0, "2001:db8::9", Some(HOST_A))),
    );
    h.inject(0, &[&q]);
    assert!(h.take_tx(0).is_empty());
    assert_eq!(h.error("ip6-input", "multicast to a group not joined (no multicast forwarding)"), 1);
    // Nor is an address routed out of pg2 itself answered on pg2.
    h.tables.fib.control().add_route(0, net("2001:db8:6::/64"), &[RoutePath::attached(2)]).unwrap();
    let (g6, m6) = sn("2001:db8:6::7");
    let same =
        eth(m6, HOST_C, &[], &ip6("fe80::c", &g6, ICMP6, 255, &ns("fe80::c", &g6, "2001:db8:6::7", Some(HOST_C))));
    h.inject(2, &[&same]);
    assert!(h.take_tx(2).is_empty());
    assert_eq!(h.error("ip6-nd", "solicitation for an address that is not ours (dropped)"), 1);
    h.assert_no_leak();
}

#[test]
fn glean_solicits_holds_and_forwards_once_advertised() {
    let mut h = setup(&[(0, 0, "2001:db8::1", 64), (1, 0, "2001:db8:1::1", 64)]);
    neighbor(&h, 0, "2001:db8::2", HOST_A);
    let first = a_to("2001:db8:1::2", 64, 1);
    let second = a_to("2001:db8:1::2", 64, 2);
    h.inject(0, &[&first, &second]);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 1, "one solicitation for two packets");
    let (group, group_mac) = sn("2001:db8:1::2");
    let p = routed(&out[0], group_mac, PG[1]);
    assert_eq!((src_of(p), dst_of(p), p[7]), (a6("2001:db8:1::1"), a6(&group), 255));
    let m = icmp_ok(p);
    assert_eq!((m[0], m[1]), (NS, 0));
    assert_eq!(&m[8..24], &a6("2001:db8:1::2").octets(), "target");
    assert_eq!(&m[24..32], &[&[1u8, 1][..], &PG[1].0[..]].concat()[..], "our MAC as source link-layer option");
    assert_eq!(h.error("ip6-discover", "packets held for neighbor resolution (not a drop)"), 2);
    // B answers: the held packets go out, in order, to B's MAC.
    let adv = eth(
        PG[1],
        HOST_B,
        &[],
        &ip6(
            "2001:db8:1::2",
            "2001:db8:1::1",
            ICMP6,
            255,
            &na("2001:db8:1::2", "2001:db8:1::1", "2001:db8:1::2", S | O, Some(HOST_B)),
        ),
    );
    h.inject(1, &[&adv]);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 2);
    for (o, f) in out.iter().zip([&first, &second]) {
        let p = routed(o, HOST_B, PG[1]);
        assert_eq!(&p[8..], &f[14 + 8..]);
        assert_eq!(p[7], 63);
    }
    assert_eq!(h.error("ip6-discover", "held packets released to ip6-lookup (not a drop)"), 2);
    assert_eq!(h.error("ip6-nd", "neighbors learned or updated (not a drop)"), 1);
    // A route via a next hop not resolved yet: its adjacency is incomplete,
    // the solicitation is for the next hop, not the destination.
    h.tables.fib.control().add_route(0, net("2001:db8:300::/48"), &[RoutePath::via(a6("2001:db8:1::9"), 1)]).unwrap();
    let far = a_to("2001:db8:300::5", 64, 3);
    h.inject(0, &[&far]);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 1);
    let (g9, m9) = sn("2001:db8:1::9");
    let p = routed(&out[0], m9, PG[1]);
    assert_eq!(dst_of(p), a6(&g9));
    assert_eq!(&icmp_ok(p)[8..24], &a6("2001:db8:1::9").octets());
    let adv = eth(
        PG[1],
        HOST_C,
        &[],
        &ip6(
            "2001:db8:1::9",
            "2001:db8:1::1",
            ICMP6,
            255,
            &na("2001:db8:1::9", "2001:db8:1::1", "2001:db8:1::9", S | O, Some(HOST_C)),
        ),
    );
    h.inject(1, &[&adv]);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 1);
    assert_eq!(dst_of(routed(&out[0], HOST_C, PG[1])), a6("2001:db8:300::5"));
    h.assert_no_leak();
    assert_eq!(h.pool.available(), h.pool.capacity(), "pool full again after resolution");
}

#[test]
fn held_packets_time_out_and_are_freed() {
    let mut h = setup(&[(0, 0, "2001:db8::1", 64), (1, 0, "2001:db8:1::1", 64)]);
    neighbor(&h, 0, "2001:db8::2", HOST_A);
    let cfg = HoldConfig { hold: Duration::from_millis(30), ..HoldConfig::default() };
    h.graph.node_mut::<Ip6Discover>("ip6-discover").unwrap().hold_queue().set_config(cfg);
    h.inject(0, &[&a_to("2001:db8:1::7", 64, 1), &a_to("2001:db8:1::8", 64, 1)]);
    assert_eq!(h.take_tx(1).len(), 2, "two solicitations");
    let held = |h: &mut Harness| h.graph.node_mut::<Ip6Discover>("ip6-discover").unwrap().hold_queue().len();
    assert_eq!(held(&mut h), 2);
    std::thread::sleep(Duration::from_millis(50));
    // Serviced when ip6-discover runs again (another unresolved destination)...
    h.inject(0, &[&a_to("2001:db8:1::9", 64, 1)]);
    assert_eq!(h.error("ip6-discover", "dropped: held too long, neighbor did not answer"), 2);
    assert_eq!(held(&mut h), 1);
    h.take_tx(1);
    // ... or by the worker loop when idle.
    std::thread::sleep(Duration::from_millis(50));
    assert!(service_ip6_hold(&mut h.graph, &mut h.bufs, &h.tables));
    assert_eq!(h.error("ip6-discover", "dropped: held too long, neighbor did not answer"), 3);
    assert_eq!(held(&mut h), 0);
    // An advertisement after the timeout forwards nothing and leaks nothing.
    let adv = eth(
        PG[1],
        HOST_B,
        &[],
        &ip6(
            "2001:db8:1::7",
            "2001:db8:1::1",
            ICMP6,
            255,
            &na("2001:db8:1::7", "2001:db8:1::1", "2001:db8:1::7", S | O, Some(HOST_B)),
        ),
    );
    h.inject(1, &[&adv]);
    assert!(h.take_tx(1).is_empty());
    h.assert_no_leak();
    assert_eq!(h.pool.available(), h.pool.capacity(), "pool full again after the timeout");
}

#[test]
fn ping_to_our_address_is_answered() {
    let mut h = two_ports();
    let data: Vec<u8> = (0..56u8).collect();
    // To pg1's address, from A on pg0.
    let req = icmp6("2001:db8::2", "2001:db8:1::1", 128, 0, [0x12, 0x34, 0, 9], &data);
    h.inject(0, &[&eth(PG[0], HOST_A, &[], &ip6("2001:db8::2", "2001:db8:1::1", ICMP6, 3, &req))]);
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    let p = routed(&out[0], HOST_A, PG[0]);
    assert_eq!((src_of(p), dst_of(p)), (a6("2001:db8:1::1"), a6("2001:db8::2")), "from the address pinged");
    assert_eq!(p[7], 64, "our own hop limit, not decremented");
    let m = icmp_ok(p);
    assert_eq!(&m[..2], &[129, 0], "echo reply");
    assert_eq!(&m[4..8], &[0x12, 0x34, 0, 9], "identifier and sequence kept");
    assert_eq!(&m[8..], &data[..]);
    assert_eq!(h.error("ip6-local", "echo requests answered (not a drop)"), 1);
    // To the all-nodes group: answered from pg0's address.
    let req = icmp6("2001:db8::2", "ff02::1", 128, 0, [0, 1, 0, 1], b"mc");
    h.inject(
        0,
        &[&eth(MacAddr([0x33, 0x33, 0, 0, 0, 1]), HOST_A, &[], &ip6("2001:db8::2", "ff02::1", ICMP6, 1, &req))],
    );
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    let p = routed(&out[0], HOST_A, PG[0]);
    assert_eq!(src_of(p), a6("2001:db8::1"));
    assert_eq!(&icmp_ok(p)[..2], &[129, 0]);
    // A corrupt request is dropped and counted.
    let mut bad = icmp6("2001:db8::2", "2001:db8::1", 128, 0, [0, 1, 0, 2], b"x");
    bad[8] ^= 1;
    h.inject(0, &[&eth(PG[0], HOST_A, &[], &ip6("2001:db8::2", "2001:db8::1", ICMP6, 64, &bad))]);
    assert!(h.take_tx(0).is_empty());
    assert_eq!(h.error("ip6-local", "bad ICMPv6 checksum"), 1);
    h.assert_no_leak();
}

#[test]
fn other_local_traffic_and_router_solicitations_are_punted() {
    let mut h = two_ports();
    let rs = icmp6("fe80::a", "ff02::2", 133, 0, [0; 4], &[1, 1, 2, 0, 0, 0, 0, 0x0a]);
    h.inject(0, &[&eth(MacAddr([0x33, 0x33, 0, 0, 0, 2]), HOST_A, &[], &ip6("fe80::a", "ff02::2", ICMP6, 255, &rs))]);
    h.inject(0, &[&eth(PG[0], HOST_A, &[], &ip6("2001:db8::2", "2001:db8::1", UDP, 64, &udp(5, 179, b"bgp?")))]);
    assert_eq!(h.error("ip6-local", "router solicitations punted (no router advertisements on the data path)"), 1);
    assert_eq!(h.error("ip6-local", "punted to the control plane (not a drop)"), 2);
    let punted = drain_punt(&mut h);
    assert_eq!(punted.len(), 2);
    assert_eq!(punted[0].1[40], 133);
    assert_eq!(punted[1].1[6], UDP);
    assert!(h.take_tx(0).is_empty());
    h.assert_no_leak();
}

#[test]
fn hop_limit_expiry_sends_time_exceeded() {
    let mut h = two_ports();
    let f = a_to("2001:db8:1::2", 1, 7);
    h.inject(0, &[&f]);
    assert!(h.take_tx(1).is_empty(), "not forwarded");
    assert_eq!(h.error("ip6-rewrite", "hop limit expired (time exceeded sent to ip6-icmp-error)"), 1);
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    let p = routed(&out[0], HOST_A, PG[0]);
    assert_eq!((src_of(p), dst_of(p)), (a6("2001:db8::1"), a6("2001:db8::2")), "from the receiving interface");
    assert_eq!(p[7], 255, "errors leave with hop limit 255");
    let m = icmp_ok(p);
    assert_eq!(&m[..2], &[3, 0], "time exceeded in transit");
    assert_eq!(&m[4..8], &[0; 4]);
    assert_eq!(&m[8..], &f[14..], "the whole original packet");
    // Never an error about an error: an expiring time-exceeded is dropped.
    let err = icmp6("2001:db8::2", "2001:db8:1::2", 3, 0, [0; 4], &[0u8; 48]);
    h.inject(0, &[&eth(PG[0], HOST_A, &[], &ip6("2001:db8::2", "2001:db8:1::2", ICMP6, 1, &err))]);
    assert!(h.take_tx(0).is_empty() && h.take_tx(1).is_empty());
    assert_eq!(h.error("ip6-icmp-error", "not sent: the packet is an ICMPv6 error"), 1);
    // Rate limited: two in a burst, then nothing for a long while.
    h.graph.node_mut::<Ip6IcmpError>("ip6-icmp-error").unwrap().set_limit(TokenBucket::with_clock(1, 2, 1 << 40));
    for i in 0..5 {
        h.inject(0, &[&a_to("2001:db8:1::2", 1, 100 + i)]);
    }
    assert_eq!(h.take_tx(0).len(), 2);
    assert_eq!(h.error("ip6-icmp-error", "not sent: rate limited"), 3);
    assert_eq!(h.error("ip6-icmp-error", "time exceeded sent"), 3);
    h.assert_no_leak();
}

#[test]
fn too_big_sends_packet_too_big_with_the_mtu() {
    let mut h = setup_with(&[(0, 0, "2001:db8::1", 64), (1, 0, "2001:db8:1::1", 64)], |i| {
        if i.sw_if == 1 {
            i.mtu = 1280;
        }
    });
    neighbor(&h, 0, "2001:db8::2", HOST_A);
    neighbor(&h, 1, "2001:db8:1::2", HOST_B);
    let fits = eth(PG[0], HOST_A, &[], &ip6("2001:db8::2", "2001:db8:1::2", UDP, 64, &udp(1, 2, &[7; 1232])));
    let big = eth(PG[0], HOST_A, &[], &ip6("2001:db8::2", "2001:db8:1::2", UDP, 64, &udp(1, 2, &[9; 1392])));
    h.inject(0, &[&fits, &big]);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 1, "1280 bytes fit, 1440 do not; never fragmented");
    assert_eq!(out[0].len(), 14 + 1280);
    assert_eq!(h.error("ip6-rewrite", "longer than the link MTU (packet too big sent to ip6-icmp-error)"), 1);
    let out = h.take_tx(0);
    assert_eq!(out.len(), 1);
    let p = routed(&out[0], HOST_A, PG[0]);
    assert_eq!(p.len(), 1280, "as much of the original as fits in 1280 bytes");
    assert_eq!(dst_of(p), a6("2001:db8::2"));
    let m = icmp_ok(p);
    assert_eq!(&m[..2], &[2, 0], "packet too big");
    assert_eq!(u32::from_be_bytes([m[4], m[5], m[6], m[7]]), 1280, "the MTU");
    assert_eq!(&m[8..], &big[14..14 + 1280 - 48]);
    h.assert_no_leak();
}

#[test]
fn unreachable_and_prohibited_routes_answer_with_their_codes() {
    use vswitch_nodes::ip::NextHop;
    let mut h = two_ports();
    {
        let mut c = h.tables.fib.control();
        c.add_route(0, net("2001:db8:dead::/48"), &[RoutePath::special(NextHop::Unreachable)]).unwrap();
        c.add_route(0, net("2001:db8:beef::/48"), &[RoutePath::special(NextHop::Prohibit)]).unwrap();
        c.add_route(0, net("2001:db8:d0::/48"), &[RoutePath::special(NextHop::Drop)]).unwrap();
    }
    h.inject(0, &[&a_to("2001:db8:dead::1", 64, 1), &a_to("2001:db8:beef::1", 64, 1), &a_to("2001:db8:d0::1", 64, 1)]);
    let out = h.take_tx(0);
    assert_eq!(out.len(), 2);
    assert_eq!(&icmp_ok(routed(&out[0], HOST_A, PG[0]))[..2], &[1, 0]);
    assert_eq!(&icmp_ok(routed(&out[1], HOST_A, PG[0]))[..2], &[1, 1], "administratively prohibited");
    assert_eq!(h.error("ip6-lookup", "dropped by a drop route"), 1);
    assert_eq!(h.error("ip6-icmp-error", "destination unreachable sent"), 2);
    h.assert_no_leak();
}

#[test]
fn every_ip6_input_error_is_counted() {
    let mut h = two_ports();
    let ok = ip6("2001:db8::2", "2001:db8:1::2", UDP, 64, &udp(1, 2, b"data"));
    let send = |h: &mut Harness, p: &[u8]| h.inject(0, &[&eth(PG[0], HOST_A, &[], p)]);
    let count = |h: &Harness, what: &str| h.error("ip6-input", what);
    send(&mut h, &ok[..30]);
    assert_eq!(count(&h, "shorter than the IPv6 header"), 1);
    let mut v = ok.clone();
    v[0] = 0x45;
    send(&mut h, &v);
    assert_eq!(count(&h, "IP version is not 6"), 1);
    send(&mut h, &ok[..ok.len() - 1]);
    assert_eq!(count(&h, "payload length runs past the frame"), 1);
    let mut v = ok.clone();
    v[7] = 0;
    send(&mut h, &v);
    assert_eq!(count(&h, "hop limit is 0"), 1);
    send(&mut h, &ip6("ff02::1", "2001:db8:1::2", UDP, 64, &udp(1, 2, b"")));
    assert_eq!(count(&h, "martian: multicast source"), 1);
    send(&mut h, &ip6("::1", "2001:db8:1::2", UDP, 64, &udp(1, 2, b"")));
    send(&mut h, &ip6("2001:db8::2", "::1", UDP, 64, &udp(1, 2, b"")));
    assert_eq!(count(&h, "martian: loopback address from the wire"), 2);
    send(&mut h, &ip6("::", "2001:db8:1::2", UDP, 64, &udp(1, 2, b"")));
    assert_eq!(count(&h, "martian: unspecified source (not a DAD solicitation)"), 1);
    send(&mut h, &ip6("2001:db8::2", "::", UDP, 64, &udp(1, 2, b"")));
    assert_eq!(count(&h, "martian: unspecified destination"), 1);
    // Extension headers: a destination options header longer than the
    // packet, a hop-by-hop header that is not first, and a hop-by-hop
    // option running past its header.
    let mut ext = vec![UDP, 3, 1, 4, 0, 0, 0, 0];
    ext.extend_from_slice(&udp(1, 2, b""));
    send(&mut h, &ip6("2001:db8::2", "2001:db8:1::2", 60, 64, &ext));
    let mut late = vec![0, 0, 1, 4, 0, 0, 0, 0, UDP, 0, 1, 4, 0, 0, 0, 0];
    late.extend_from_slice(&udp(1, 2, b""));
    send(&mut h, &ip6("2001:db8::2", "2001:db8:1::2", 60, 64, &late));
    assert_eq!(count(&h, "malformed or truncated extension headers"), 2);
    let mut hbh = vec![UDP, 0, 1, 9, 0, 0, 0, 0];
    hbh.extend_from_slice(&udp(1, 2, b""));
    send(&mut h, &ip6("2001:db8::2", "2001:db8:1::2", 0, 64, &hbh));
    assert_eq!(count(&h, "malformed hop-by-hop options"), 1);
    send(&mut h, &ip6("2001:db8::2", "ff0e::99", UDP, 64, &udp(1, 2, b"")));
    assert_eq!(count(&h, "multicast to a group not joined (no multicast forwarding)"), 1);
    assert!(h.take_tx(0).is_empty() && h.take_tx(1).is_empty(), "nothing forwarded, no ICMPv6 sent");
    // A well-formed hop-by-hop header is forwarded as it is (RFC 8200 4.3).
    let mut good = vec![UDP, 0, 1, 4, 0, 0, 0, 0];
    good.extend_from_slice(&udp(1, 2, b""));
    let p = ip6("2001:db8::2", "2001:db8:1::2", 0, 64, &good);
    send(&mut h, &p);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 1);
    assert_eq!(&routed(&out[0], HOST_B, PG[1])[40..], &p[40..]);
    assert_eq!(count(&h, "hop-by-hop header passed unprocessed (not a drop)"), 1);
    h.assert_no_leak();
}

#[test]
fn invalid_neighbor_discovery_is_dropped_and_counted() {
    let mut h = setup(&[(0, 0, "2001:db8::1", 64)]);
    let (group, group_mac) = sn("2001:db8::1");
    let msg = ns("2001:db8::2", &group, "2001:db8::1", Some(HOST_A));
    // Hop limit 64: could have come from off the link.
    h.inject(0, &[&eth(group_mac, HOST_A, &[], &ip6("2001:db8::2", &group, ICMP6, 64, &msg))]);
    assert_eq!(h.error("ip6-nd", "invalid: hop limit is not 255"), 1);
    let mut bad = msg.clone();
    bad[10] ^= 0xff;
    h.inject(0, &[&eth(group_mac, HOST_A, &[], &ip6("2001:db8::2", &group, ICMP6, 255, &bad))]);
    assert_eq!(h.error("ip6-nd", "invalid: bad ICMPv6 checksum"), 1);
    let mut code = msg.clone();
    code[1] = 1;
    let c = icmp6_checksum(&a6("2001:db8::2"), &a6(&group), &[&code[..2], &[0, 0], &code[4..]].concat());
    code[2..4].copy_from_slice(&c.to_be_bytes());
    h.inject(0, &[&eth(group_mac, HOST_A, &[], &ip6("2001:db8::2", &group, ICMP6, 255, &code))]);
    assert_eq!(h.error("ip6-nd", "invalid: ICMP code is not 0"), 1);
    // An option of length zero.
    let mut body = a6("2001:db8::1").octets().to_vec();
    body.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    let zero = icmp6("2001:db8::2", &group, NS, 0, [0; 4], &body);
    h.inject(0, &[&eth(group_mac, HOST_A, &[], &ip6("2001:db8::2", &group, ICMP6, 255, &zero))]);
    assert_eq!(h.error("ip6-nd", "invalid: option of zero length or past the end"), 1);
    // An unsolicited advertisement for a neighbor we do not know: ignored.
    let adv = na("2001:db8::3", "ff02::1", "2001:db8::3", O, Some(HOST_C));
    h.inject(
        0,
        &[&eth(MacAddr([0x33, 0x33, 0, 0, 0, 1]), HOST_C, &[], &ip6("2001:db8::3", "ff02::1", ICMP6, 255, &adv))],
    );
    assert_eq!(h.error("ip6-nd", "unsolicited advertisement for an unknown neighbor (ignored)"), 1);
    // Someone advertising our own address.
    let dup = na("2001:db8::3", "ff02::1", "2001:db8::1", O, Some(HOST_C));
    h.inject(
        0,
        &[&eth(MacAddr([0x33, 0x33, 0, 0, 0, 1]), HOST_C, &[], &ip6("2001:db8::3", "ff02::1", ICMP6, 255, &dup))],
    );
    assert_eq!(h.error("ip6-nd", "one of our addresses used by another node: duplicate address"), 1);
    assert!(h.take_tx(0).is_empty(), "nothing answered");
    assert!(h.tables.fib.control().neighbors().is_empty(), "nothing learned");
    h.assert_no_leak();
}

#[test]
fn our_packets_larger_than_the_mtu_are_fragmented_at_the_source() {
    // pg1 has an MTU of 1280; host B sends a 1448-byte echo request (its
    // own link takes 1500). The reply is ours: the router is its source
    // and fragments it (RFC 8200 4.5), where it would send "packet too
    // big" about a forwarded packet.
    let mut h = setup_with(&[(0, 0, "2001:db8::1", 64), (1, 0, "2001:db8:1::1", 64)], |i| {
        if i.sw_if == 1 {
            i.mtu = 1280;
        }
    });
    neighbor(&h, 1, "2001:db8:1::2", HOST_B);
    let data: Vec<u8> = (0..1400u32).map(|i| (i * 7 % 251) as u8).collect();
    let req = icmp6("2001:db8:1::2", "2001:db8:1::1", 128, 0, [0x12, 0x34, 0, 7], &data);
    h.inject(1, &[&eth(PG[1], HOST_B, &[], &ip6("2001:db8:1::2", "2001:db8:1::1", ICMP6, 64, &req))]);
    let frags = h.take_tx(1);
    assert_eq!(frags.len(), 2);
    let mut whole = Vec::new();
    let mut ids = Vec::new();
    for (i, f) in frags.iter().enumerate() {
        let p = routed(f, HOST_B, PG[1]);
        assert!(p.len() <= 1280, "fragment {i}: {} bytes", p.len());
        assert_eq!((src_of(p), dst_of(p)), (a6("2001:db8:1::1"), a6("2001:db8:1::2")));
        assert_eq!(p[6], 44, "a Fragment header");
        let fh = &p[40..48];
        assert_eq!(fh[0], ICMP6, "the fragmented payload's protocol");
        let w = u16::from_be_bytes([fh[2], fh[3]]);
        assert_eq!((w & !7) as usize, whole.len(), "offset");
        assert_eq!(w & 1 == 1, i == 0, "M on the first only");
        if i == 0 {
            assert_eq!((p.len() - 48) % 8, 0);
        }
        ids.push(&fh[4..8]);
        whole.extend_from_slice(&p[48..]);
    }
    assert_eq!(ids[0], ids[1], "one identification");
    assert_eq!(whole.len(), 8 + data.len());
    let mut z = whole.clone();
    z[2] = 0;
    z[3] = 0;
    assert_eq!(
        icmp6_checksum(&a6("2001:db8:1::1"), &a6("2001:db8:1::2"), &z),
        u16::from_be_bytes([whole[2], whole[3]])
    );
    assert_eq!((whole[0], &whole[4..8], &whole[8..]), (129, &[0x12, 0x34, 0, 7][..], &data[..]), "the echo reply");
    assert_eq!(h.error("ip6-rewrite", "packets we originated fragmented (not a drop)"), 1);
    assert_eq!(h.error("ip6-rewrite", "fragments sent (not a drop)"), 2);
    assert_eq!(h.error("ip6-icmp-error", "not sent: the packet is our own"), 0);

    // A forwarded packet over the MTU is still answered, not fragmented.
    neighbor(&h, 0, "2001:db8::2", HOST_A);
    let big = eth(PG[0], HOST_A, &[], &ip6("2001:db8::2", "2001:db8:1::2", UDP, 64, &udp(1, 2, &data)));
    h.inject(0, &[&big]);
    assert!(h.take_tx(1).is_empty(), "routers never fragment");
    assert_eq!(h.take_tx(0).len(), 1, "packet too big");
    h.assert_no_leak();
}
