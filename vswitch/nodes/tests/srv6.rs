//! SRv6 through the standard graph on real frames: every local SID
//! behaviour (End with PSP and NEXT-C-SID, End.X, End.T, End.DX2, End.DX4,
//! End.DT4, End.DT6, End.DT46, End.B6.Encaps), the headends (H.Encaps,
//! H.Encaps.Red, H.Encaps.L2) with prefix and L2 steering, weighted
//! segment lists, per-SID counters, ICMPv6 errors for malformed SRHs and
//! expiring hop limits, a ping to a SID, and no buffer leaked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use vswitch_nodes::harness::Harness;
use vswitch_nodes::ip::{NextHop, RoutePath, RouteSource};
use vswitch_nodes::srv6::{Behavior, EncapKind, LocalSid, Policy, SrTable};
use vswitch_nodes::{housekeeping, release_held, IfMode, Interface, Tables};
use vswitch_packet::clock;
use vswitch_srv6::behavior::{CsidFormat, EncapParams, EncapTemplate, Flavors};
use vswitch_srv6::hmac::{HmacKeyTable, HmacMode, HmacPolicy};
use vswitch_srv6::policy::{SegmentList, SrPolicy};
use vswitch_wire::{checksum, MacAddr};

const fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

const PG: [MacAddr; 4] = [mac(0xa0), mac(0xa1), mac(0xa2), mac(0xa3)];
const HOST_A: MacAddr = mac(0x0a);
const ROUTER_B: MacAddr = mac(0x0b);
const HOST_D: MacAddr = mac(0x0d);

const ROUTING: u8 = 43;
const UDP: u8 = 17;
const ICMP6: u8 = 58;

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

fn eth(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ip6(src: &str, dst: &str, nh: u8, hlim: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[nh, hlim]);
    v.extend_from_slice(&a6(src).octets());
    v.extend_from_slice(&a6(dst).octets());
    v.extend_from_slice(payload);
    v
}

fn ip4(src: [u8; 4], dst: [u8; 4], ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0, 0, ttl, UDP, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
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

/// An SRH: `segments` in visiting order (S1 first), stored reversed.
fn srh(nh: u8, sl: u8, segments: &[&str]) -> Vec<u8> {
    let n = segments.len();
    let mut s = vec![nh, (2 * n) as u8, 4, sl, (n - 1) as u8, 0, 0, 0];
    for seg in segments.iter().rev() {
        s.extend_from_slice(&a6(seg).octets());
    }
    s
}

/// An IPv6 packet to `dst` with an SRH in front of `inner` (next header `nh`).
fn srv6(dst: &str, hlim: u8, sl: u8, segments: &[&str], nh: u8, inner: &[u8]) -> Vec<u8> {
    let mut payload = srh(nh, sl, segments);
    payload.extend_from_slice(inner);
    ip6("2001:db8::2", dst, ROUTING, hlim, &payload)
}

/// From host A on pg0.
fn from_a(ip6_packet: &[u8]) -> Vec<u8> {
    eth(PG[0], HOST_A, 0x86dd, ip6_packet)
}

fn dst_of(p: &[u8]) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&p[24..40]).unwrap())
}

/// The payload of a frame sent to `dst` from `src` with `ethertype`.
fn payload(frame: &[u8], dst: MacAddr, src: MacAddr, ethertype: u16) -> &[u8] {
    assert_eq!(&frame[0..6], &dst.0, "destination MAC");
    assert_eq!(&frame[6..12], &src.0, "source MAC");
    assert_eq!(u16::from_be_bytes([frame[12], frame[13]]), ethertype, "ethertype");
    &frame[14..]
}

const INNER4: [u8; 4] = [10, 0, 0, 2];

/// An IPv4/UDP packet from host A's address to `dst`.
fn v4_to(dst: [u8; 4], ttl: u8, sport: u16) -> Vec<u8> {
    ip4(INNER4, dst, ttl, &udp(sport, 53, b"sr payload"))
}

// Local SID indices.
const END: u32 = 0;
const END_PSP: u32 = 1;
const END_X: u32 = 2;
const END_T: u32 = 3;
const DX4: u32 = 4;
const DT4: u32 = 5;
const DT6: u32 = 6;
const DX2: u32 = 7;
const B6: u32 = 8;
const CSID: u32 = 9;
const DT46: u32 = 10;
const HMAC_END: u32 = 11;

// Policy indices.
const P_ENCAPS: u32 = 0;
const P_RED: u32 = 1;
const P_WEIGHTED: u32 = 2;
const P_L2: u32 = 3;

fn template(src: &str, segments: &[&str], kind: EncapKind) -> EncapTemplate {
    let segs: Vec<Ipv6Addr> = segments.iter().map(|s| a6(s)).collect();
    let mut p = EncapParams::new(a6(src), &segs);
    p.reduced = kind.is_reduced();
    p.l2 = kind.is_l2();
    EncapTemplate::new(&p).unwrap()
}

fn policy(bsid: &str, lists: &[(&[&str], u32)], encap: EncapKind) -> Policy {
    let lists = lists
        .iter()
        .map(|(segs, weight)| SegmentList { weight: *weight, template: template("fc00:1::a", segs, encap) })
        .collect();
    Policy { policy: SrPolicy::new(a6(bsid), lists, 256).unwrap(), encap, vrf: 0 }
}

/// The lab: pg0 (VRF 0, host A 2001:db8::2 / 10.0.0.2), pg1 (VRF 0, the
/// SR underlay: router B fc00:b::2 / 10.1.0.2, route fc00::/16 via B),
/// pg2 (no forwarding mode: L2 steered into a policy; End.DX2 target), pg3
/// (VRF 1: host D 10.2.0.2 / 2001:db8:9::2, route fc00::/16 via D). The
/// local SIDs and policies of the constants above.
fn lab() -> Harness {
    let mut t = Tables::default();
    let mut p0 = Interface::port(0, "pg0", 0, PG[0], IfMode::L3 { vrf: 0 });
    p0.ip6 = vec![(a6("2001:db8::1"), 64)];
    p0.ip4 = vec![(Ipv4Addr::new(10, 0, 0, 1), 24)];
    let mut p1 = Interface::port(1, "pg1", 1, PG[1], IfMode::L3 { vrf: 0 });
    p1.ip6 = vec![(a6("fc00:b::1"), 64)];
    p1.ip4 = vec![(Ipv4Addr::new(10, 1, 0, 1), 24)];
    let p2 = Interface::port(2, "pg2", 2, PG[2], IfMode::Disabled);
    let mut p3 = Interface::port(3, "pg3", 3, PG[3], IfMode::L3 { vrf: 1 });
    p3.ip6 = vec![(a6("2001:db8:9::1"), 64)];
    p3.ip4 = vec![(Ipv4Addr::new(10, 2, 0, 1), 24)];
    for i in [p0, p1, p2, p3] {
        t.set_interface(i);
    }
    let mut sr = SrTable::new();
    {
        let mut c = t.fib.control();
        c.sync_interfaces(&t).unwrap();
        c.add_static_neighbor(0, IpAddr::V6(a6("2001:db8::2")), HOST_A).unwrap();
        c.add_static_neighbor(0, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), HOST_A).unwrap();
        c.add_static_neighbor(1, IpAddr::V6(a6("fc00:b::2")), ROUTER_B).unwrap();
        c.add_static_neighbor(1, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)), ROUTER_B).unwrap();
        c.add_static_neighbor(3, IpAddr::V6(a6("2001:db8:9::2")), HOST_D).unwrap();
        c.add_static_neighbor(3, IpAddr::V4(Ipv4Addr::new(10, 2, 0, 2)), HOST_D).unwrap();
        c.add_route(0, net("fc00::/16"), &[RoutePath::via(a6("fc00:b::2"), 1)]).unwrap();
        c.add_route(1, net("fc00::/16"), &[RoutePath::via(a6("2001:db8:9::2"), 3)]).unwrap();
        let x6 = c.hold_neighbor_adjacency(1, IpAddr::V6(a6("fc00:b::2"))).unwrap();
        let x4 = c.hold_neighbor_adjacency(1, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2))).unwrap();
        let mut keys = HmacKeyTable::new();
        keys.insert(7, b"a secret shared with the headend").unwrap();
        sr.set_keys(Arc::new(keys));
        let sids: [(u32, &str, Behavior); 12] = [
            (END, "fc00:1::e", Behavior::End),
            (END_PSP, "fc00:1::e1", Behavior::End),
            (END_X, "fc00:1::ec", Behavior::EndX { adj: x6 }),
            (END_T, "fc00:1::e7", Behavior::EndT { vrf: 1 }),
            (DX4, "fc00:1::d4", Behavior::EndDx4 { adj: x4 }),
            (DT4, "fc00:1::4", Behavior::EndDt4 { vrf: 1 }),
            (DT6, "fc00:1::6", Behavior::EndDt6 { vrf: 0 }),
            (DX2, "fc00:1::d2", Behavior::EndDx2 { sw_if: 2 }),
            (B6, "fc00:1::b6", Behavior::EndB6Encaps { policy: P_ENCAPS }),
            (CSID, "fc00:0:1::", Behavior::End),
            (DT46, "fc00:1::46", Behavior::EndDt46 { vrf: 0 }),
            (HMAC_END, "fc00:1::ac", Behavior::End),
        ];
        for (i, sid, b) in sids {
            let mut s = LocalSid::new(a6(sid), 0, b);
            if i == END_PSP {
                s.flavors = Flavors { psp: true, ..Flavors::default() };
            }
            if i == CSID {
                s.prefix_len = 48;
                s.flavors = Flavors { next_csid: Some(CsidFormat::F3216), ..Flavors::default() };
            }
            if i == HMAC_END {
                s.hmac = HmacPolicy { mode: HmacMode::Required, check_destination: false };
            }
            let prefix = ipnet::IpNet::new(IpAddr::V6(s.sid), s.prefix_len).unwrap();
            let path = RoutePath::special(NextHop::SrLocalSid { index: i, decap: b.decapsulates() });
            c.set_route_source(0, prefix, RouteSource::Srv6, vec![path]).unwrap();
            sr.set_localsid(i, Some(s)).unwrap();
        }
        let policies = [
            (P_ENCAPS, policy("fc00:1::1:0", &[(&["fc00:3::1", "fc00:4::1"], 1)], EncapKind::Encaps)),
            (P_RED, policy("fc00:1::1:1", &[(&["fc00:5::1"], 1)], EncapKind::EncapsRed)),
            (P_WEIGHTED, policy("fc00:1::1:2", &[(&["fc00:6::1"], 3), (&["fc00:7::1"], 1)], EncapKind::Encaps)),
            (P_L2, policy("fc00:1::1:3", &[(&["fc00:8::1", "fc00:9::1"], 1)], EncapKind::L2)),
        ];
        for (i, p) in policies {
            sr.set_policy(i, Some(p)).unwrap();
        }
        let steer = |c: &mut vswitch_nodes::ip::FibControl, prefix: &str, index: u32| {
            let path = RoutePath::special(NextHop::SrPolicy { index });
            c.set_route_source(0, net(prefix), RouteSource::Srv6, vec![path]).unwrap();
        };
        steer(&mut c, "192.168.0.0/16", P_ENCAPS);
        steer(&mut c, "2001:db8:77::/48", P_ENCAPS);
        steer(&mut c, "192.169.0.0/16", P_RED);
        steer(&mut c, "172.20.0.0/16", P_WEIGHTED);
        sr.set_l2_steering(2, Some(P_L2));
    }
    t.sr = Arc::new(sr);
    Harness::new(t, 4096)
}

/// (packets, bytes, drops) of a local SID, summed (one worker here).
fn sid_counters(h: &Harness, index: u32) -> (u64, u64, u64) {
    h.shared.sr.localsid(index).get()
}

#[test]
fn end_forwards_to_the_next_segment_with_one_hop_less() {
    let mut h = lab();
    let inner = udp(1000, 53, b"data");
    let segs = ["fc00:1::e", "fc00:3::1", "fc00:4::1"];
    let pkt = srv6("fc00:1::e", 64, 2, &segs, UDP, &inner);
    h.inject(0, &[&from_a(&pkt)]);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 1);
    let p = payload(&out[0], ROUTER_B, PG[1], 0x86dd);
    assert_eq!(dst_of(p), a6("fc00:3::1"), "DA = the next segment");
    assert_eq!(p[43], 1, "segments left decremented");
    assert_eq!(p[7], 63, "one hop less, not two");
    assert_eq!(&p[48..], &pkt[48..], "segment list and payload unchanged");
    assert_eq!(sid_counters(&h, END), (1, pkt.len() as u64, 0));
    let path = {
        h.graph.add_trace("pg-input", 1).unwrap();
        h.inject(0, &[&from_a(&pkt)]);
        h.take_tx(1);
        h.graph.trace_log().path(1)
    };
    assert_eq!(
        path,
        vec![
            "pg-input",
            "ethernet-input",
            "ip6-input",
            "ip6-lookup",
            "sr-localsid",
            "ip6-lookup",
            "ip6-rewrite",
            "interface-output"
        ]
    );
    h.assert_no_leak();
}

#[test]
fn psp_pops_the_srh_at_the_penultimate_segment() {
    let mut h = lab();
    let inner = udp(1000, 53, b"data");
    let pkt = srv6("fc00:1::e1", 64, 1, &["fc00:1::e1", "fc00:3::1"], UDP, &inner);
    h.inject(0, &[&from_a(&pkt)]);
    let out = h.take_tx(1);
    let p = payload(&out[0], ROUTER_B, PG[1], 0x86dd);
    assert_eq!((dst_of(p), p[6], p[7]), (a6("fc00:3::1"), UDP, 63));
    assert_eq!(&p[40..], &inner[..], "SRH gone");
    h.assert_no_leak();
}

#[test]
fn next_csid_shifts_the_argument() {
    let mut h = lab();
    let pkt = ip6("2001:db8::2", "fc00:0:1:2:3::", UDP, 64, &udp(1, 2, b"usid"));
    h.inject(0, &[&from_a(&pkt)]);
    let out = h.take_tx(1);
    let p = payload(&out[0], ROUTER_B, PG[1], 0x86dd);
    assert_eq!((dst_of(p), p[7]), (a6("fc00:0:2:3::"), 63));
    assert_eq!(sid_counters(&h, CSID).0, 1);
    h.assert_no_leak();
}

#[test]
fn end_x_sends_to_its_neighbor_and_end_t_looks_up_in_its_table() {
    let mut h = lab();
    // End.X: no route needed for the next segment.
    let pkt = srv6("fc00:1::ec", 64, 1, &["fc00:1::ec", "fd99::1"], UDP, &udp(1, 2, b"x"));
    h.inject(0, &[&from_a(&pkt)]);
    let out = h.take_tx(1);
    let p = payload(&out[0], ROUTER_B, PG[1], 0x86dd);
    assert_eq!((dst_of(p), p[43], p[7]), (a6("fd99::1"), 0, 63));
    // End.T: VRF 1 routes fc00::/16 to host D on pg3.
    let pkt = srv6("fc00:1::e7", 64, 1, &["fc00:1::e7", "fc00:3::9"], UDP, &udp(1, 2, b"t"));
    h.inject(0, &[&from_a(&pkt)]);
    let out = h.take_tx(3);
    let p = payload(&out[0], HOST_D, PG[3], 0x86dd);
    assert_eq!(dst_of(p), a6("fc00:3::9"));
    assert!(h.take_tx(1).is_empty());
    h.assert_no_leak();
}

#[test]
fn decapsulating_sids_deliver_the_inner_packet() {
    let mut h = lab();
    // End.DX4: to router B's IPv4 address, TTL decremented there.
    let inner = v4_to([198, 51, 100, 7], 64, 1000);
    let pkt = srv6("fc00:1::d4", 64, 0, &["fc00:1::d4"], 4, &inner);
    h.inject(0, &[&from_a(&pkt)]);
    let out = h.take_tx(1);
    let p = payload(&out[0], ROUTER_B, PG[1], 0x0800);
    assert_eq!(p[8], 63);
    assert_eq!(&p[12..], &inner[12..], "addresses and payload");
    assert!(checksum::checksum(&p[..20]) == 0, "header checksum updated");
    // End.DT4 in VRF 1: 10.2.0.2 is host D on pg3 (no SRH at all: reduced encapsulation).
    let inner = v4_to([10, 2, 0, 2], 64, 1001);
    let pkt = ip6("2001:db8::2", "fc00:1::4", 4, 64, &inner);
    h.inject(0, &[&from_a(&pkt)]);
    let out = h.take_tx(3);
    let p = payload(&out[0], HOST_D, PG[3], 0x0800);
    assert_eq!((p[8], &p[16..20]), (63, &[10, 2, 0, 2][..]));
    // End.DT6 in VRF 0: to host A on pg0.
    let inner = ip6("2001:db8:5::5", "2001:db8::2", UDP, 9, &udp(5, 6, b"six"));
    let pkt = srv6("fc00:1::6", 64, 0, &["fc00:1::6"], 41, &inner);
    h.inject(1, &[&eth(PG[1], ROUTER_B, 0x86dd, &pkt)]);
    let out = h.take_tx(0);
    let p = payload(&out[0], HOST_A, PG[0], 0x86dd);
    assert_eq!(p[7], 8);
    assert_eq!(&p[8..], &inner[8..]);
    // End.DT46: both families.
    let pkt4 = ip6("2001:db8:5::5", "fc00:1::46", 4, 64, &v4_to([10, 0, 0, 2], 64, 7));
    let pkt6 = ip6("2001:db8:5::5", "fc00:1::46", 41, 64, &inner);
    h.inject(1, &[&eth(PG[1], ROUTER_B, 0x86dd, &pkt4), &eth(PG[1], ROUTER_B, 0x86dd, &pkt6)]);
    let mut types: Vec<u8> = h.take_tx(0).iter().map(|f| f[12]).collect();
    types.sort_unstable();
    assert_eq!(types, vec![0x08, 0x86], "one IPv4, one IPv6");
    // End.DX2: the inner frame out of pg2, untouched.
    let frame = eth(mac(0x77), mac(0x78), 0x0806, &[1; 28]);
    let pkt = srv6("fc00:1::d2", 64, 0, &["fc00:1::d2"], 143, &frame);
    h.inject(1, &[&eth(PG[1], ROUTER_B, 0x86dd, &pkt)]);
    assert_eq!(h.take_tx(2), vec![frame]);
    for (sid, n) in [(DX4, 1), (DT4, 1), (DT6, 1), (DT46, 2), (DX2, 1)] {
        assert_eq!(sid_counters(&h, sid).0, n, "sid {sid}");
    }
    h.assert_no_leak();
}

#[test]
fn h_encaps_steers_ipv4_and_ipv6_prefixes_into_a_policy() {
    let mut h = lab();
    let inner = v4_to([192, 168, 3, 4], 64, 1000);
    h.inject(0, &[&eth(PG[0], HOST_A, 0x0800, &inner)]);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 1);
    let p = payload(&out[0], ROUTER_B, PG[1], 0x86dd);
    assert_eq!(&p[8..24], &a6("fc00:1::a").octets(), "the policy's source");
    assert_eq!(dst_of(p), a6("fc00:3::1"), "DA = S1");
    assert_eq!((p[6], p[40], p[43], p[44]), (ROUTING, 4, 1, 1), "SRH: next header IPv4, SL 1, LE 1");
    assert_eq!(&p[48..64], &a6("fc00:4::1").octets(), "Segment List[0] = S2");
    assert_eq!(p[7], 63, "outer hop limit copied from the inner TTL, not decremented again");
    assert_eq!(p[80 + 8], 63, "inner TTL decremented");
    assert_eq!(&p[80 + 12..], &inner[12..]);
    assert_eq!(u16::from_be_bytes([p[4], p[5]]) as usize, p.len() - 40);
    // IPv6 inner.
    let inner6 = ip6("2001:db8::2", "2001:db8:77::1", UDP, 20, &udp(3, 4, b"v6"));
    h.inject(0, &[&from_a(&inner6)]);
    let out = h.take_tx(1);
    let p = payload(&out[0], ROUTER_B, PG[1], 0x86dd);
    assert_eq!((p[40], p[7], p[80 + 7]), (41, 19, 19));
    assert_eq!(h.shared.sr.policy(P_ENCAPS).get().0, 2);
    // H.Encaps.Red with one SID: no SRH at all.
    let inner = v4_to([192, 169, 0, 1], 64, 1000);
    h.inject(0, &[&eth(PG[0], HOST_A, 0x0800, &inner)]);
    let out = h.take_tx(1);
    let p = payload(&out[0], ROUTER_B, PG[1], 0x86dd);
    assert_eq!((p[6], dst_of(p), p.len()), (4, a6("fc00:5::1"), 40 + inner.len()));
    // TTL 1: ICMP time exceeded back to the source.
    let inner = v4_to([192, 168, 3, 4], 1, 1000);
    h.inject(0, &[&eth(PG[0], HOST_A, 0x0800, &inner)]);
    assert!(h.take_tx(1).is_empty());
    let back = h.take_tx(0);
    let p = payload(&back[0], HOST_A, PG[0], 0x0800);
    assert_eq!((p[9], p[20]), (1, 11), "ICMP time exceeded");
    assert_eq!(h.error("sr-pl-rewrite-encaps", "inner ttl exceeded at headend"), 1);
    h.assert_no_leak();
}

#[test]
fn a_weighted_policy_keeps_each_flow_on_one_list_and_shares_flows_by_weight() {
    let mut h = lab();
    let flows = 2000u16;
    let mut per_flow = Vec::new();
    for round in 0..2 {
        let frames: Vec<Vec<u8>> = (0..flows)
            .map(|i| eth(PG[0], HOST_A, 0x0800, &v4_to([172, 20, (i >> 8) as u8, i as u8], 64, 1000 + i)))
            .collect();
        for chunk in frames.chunks(200) {
            let refs: Vec<&[u8]> = chunk.iter().map(|f| f.as_slice()).collect();
            h.inject(0, &refs);
        }
        let out = h.take_tx(1);
        assert_eq!(out.len(), flows as usize);
        let lists: Vec<Ipv6Addr> = out.iter().map(|f| dst_of(&f[14..])).collect();
        if round == 0 {
            per_flow = lists;
        } else {
            assert_eq!(lists, per_flow, "every flow keeps its segment list");
        }
    }
    let six = per_flow.iter().filter(|d| **d == a6("fc00:6::1")).count();
    let seven = per_flow.iter().filter(|d| **d == a6("fc00:7::1")).count();
    assert_eq!(six + seven, flows as usize);
    // 3:1 -> 1500 / 500; generous bounds (binomial sd ~19).
    assert!((1350..=1650).contains(&six), "weight 3 list got {six} of {flows}");
    h.assert_no_leak();
}

#[test]
fn l2_steering_encapsulates_frames_and_end_b6_encaps_pushes_a_policy() {
    let mut h = lab();
    let frame = eth(mac(0x55), mac(0x56), 0x0800, &v4_to([1, 2, 3, 4], 9, 9));
    h.inject(2, &[&frame]);
    let out = h.take_tx(1);
    let p = payload(&out[0], ROUTER_B, PG[1], 0x86dd);
    assert_eq!((p[6], p[40], dst_of(p)), (ROUTING, 143, a6("fc00:8::1")));
    assert_eq!(p[7], 64, "L2 payload: the default hop limit");
    assert_eq!(&p[40 + 8 + 32..], &frame[..], "the whole frame inside");
    assert_eq!(h.shared.sr.policy(P_L2).get().0, 1);
    // End.B6.Encaps: End on the received SRH, then the policy's headers.
    let pkt = srv6("fc00:1::b6", 64, 1, &["fc00:1::b6", "fc00:20::1"], UDP, &udp(1, 2, b"b6"));
    h.inject(0, &[&from_a(&pkt)]);
    let out = h.take_tx(1);
    let p = payload(&out[0], ROUTER_B, PG[1], 0x86dd);
    assert_eq!((dst_of(p), p[40], p[7]), (a6("fc00:3::1"), 41, 63));
    let inner = &p[80..];
    assert_eq!((dst_of(inner), inner[43], inner[7]), (a6("fc00:20::1"), 0, 63));
    h.assert_no_leak();
}

#[test]
fn malformed_srhs_and_expiring_hop_limits_are_dropped_with_their_icmp_error() {
    let mut h = lab();
    let good = srv6("fc00:1::e", 64, 1, &["fc00:1::e", "fc00:3::1"], UDP, &udp(1, 2, b"x"));
    // Segments left beyond last entry + 1.
    let mut sl = good.clone();
    sl[43] = 5;
    // Last entry beyond the header.
    let mut le = good.clone();
    le[44] = 9;
    // Truncated: Hdr Ext Len says more than there is before the payload ends.
    let mut trunc = good.clone();
    trunc[41] = 200;
    // Hop limit 1.
    let mut hl = good.clone();
    hl[7] = 1;
    // SL 0 with UDP after it: Parameter Problem code 4.
    let upper = srv6("fc00:1::e", 64, 0, &["fc00:1::e"], UDP, &udp(1, 2, b"x"));
    // No HMAC where one is required.
    let nohmac = srv6("fc00:1::ac", 64, 1, &["fc00:1::ac", "fc00:3::1"], UDP, &udp(1, 2, b"x"));
    let frames: Vec<Vec<u8>> = [&sl, &le, &trunc, &hl, &upper, &nohmac].iter().map(|p| from_a(p)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    h.inject(0, &refs);
    assert!(h.take_tx(1).is_empty(), "nothing forwarded");
    let n = |e: &str| h.error("sr-localsid", e);
    assert_eq!(n("srh segments left beyond last entry + 1"), 1);
    assert_eq!(n("srh last entry beyond header length"), 1);
    assert_eq!(n("hop limit exceeded"), 1);
    assert_eq!(n("upper-layer header not allowed"), 1);
    assert_eq!(n("srh hmac missing"), 1);
    // The truncated one never reaches the SID: ip6-input finds the header past the payload.
    assert_eq!(h.error("ip6-input", "malformed or truncated extension headers"), 1);
    // ICMPv6 errors back to host A: Parameter Problem at SL (43), at SL
    // for Last Entry, Time Exceeded, Parameter Problem code 4 at UDP (64).
    let back = h.take_tx(0);
    let got: Vec<(u8, u8, u32)> = back
        .iter()
        .map(|f| {
            let p = payload(f, HOST_A, PG[0], 0x86dd);
            assert_eq!(p[6], ICMP6);
            (p[40], p[41], u32::from_be_bytes([p[44], p[45], p[46], p[47]]))
        })
        .collect();
    assert_eq!(got, vec![(4, 0, 43), (4, 0, 43), (3, 0, 0), (4, 4, 64)]);
    assert_eq!(sid_counters(&h, END), (0, 0, 4));
    h.assert_no_leak();
}

#[test]
fn a_sid_answers_ping_and_a_removed_sid_drops() {
    let mut h = lab();
    let mut echo = vec![128, 0, 0, 0, 0x12, 0x34, 0, 1];
    echo.extend_from_slice(b"ping the sid");
    let mut pkt = ip6("2001:db8::2", "fc00:1::e", ICMP6, 64, &echo);
    let src = a6("2001:db8::2");
    let dst = a6("fc00:1::e");
    let sum = checksum::pseudo_header_v6(&src, &dst, ICMP6, echo.len() as u32) + checksum::sum(&echo);
    let c = !checksum::fold(sum);
    pkt[42..44].copy_from_slice(&c.to_be_bytes());
    h.inject(0, &[&from_a(&pkt)]);
    let back = h.take_tx(0);
    let p = payload(&back[0], HOST_A, PG[0], 0x86dd);
    assert_eq!((p[40], &p[8..24]), (129, &dst.octets()[..]), "echo reply from the SID");
    // The SID's entry gone while its route stays: counted, dropped.
    let mut sr = SrTable::clone(&h.tables.sr);
    sr.set_localsid(END, None).unwrap();
    h.tables.sr = Arc::new(sr);
    let good = srv6("fc00:1::e", 64, 1, &["fc00:1::e", "fc00:3::1"], UDP, &udp(1, 2, b"x"));
    h.inject(0, &[&from_a(&good)]);
    assert_eq!(h.error("sr-localsid", "no such local sid (removed)"), 1);
    h.assert_no_leak();
}

/// A packet through the HMAC-checking SID, its SRH signed with key 7
/// (`tamper`: one segment changed after signing).
fn signed(tamper: bool) -> Vec<u8> {
    let mut keys = HmacKeyTable::new();
    keys.insert(7, b"a secret shared with the headend").unwrap();
    let segs = [a6("fc00:1::ac"), a6("fc00:3::1")];
    let mut p = EncapParams::new(a6("2001:db8::2"), &segs);
    p.hmac = Some((&keys, 7));
    let t = EncapTemplate::new(&p).unwrap();
    let inner = udp(1, 2, b"signed");
    let mut pkt = t.header().to_vec();
    let plen = (pkt.len() - 40 + inner.len()) as u16;
    pkt[4..6].copy_from_slice(&plen.to_be_bytes());
    pkt[7] = 64;
    pkt[40] = UDP;
    if tamper {
        pkt[48 + 15] ^= 1;
    }
    pkt.extend_from_slice(&inner);
    pkt
}

#[test]
fn an_hmac_sid_forwards_signed_srhs_and_drops_forged_ones() {
    let mut h = lab();
    h.inject(0, &[&from_a(&signed(false)), &from_a(&signed(true))]);
    let out = h.take_tx(1);
    assert_eq!(out.len(), 1);
    assert_eq!(dst_of(&out[0][14..]), a6("fc00:3::1"));
    assert_eq!(h.error("sr-localsid", "srh hmac mismatch"), 1);
    assert_eq!(sid_counters(&h, HMAC_END).2, 1);
    // The mismatch gets a Parameter Problem pointing at the HMAC TLV.
    let back = h.take_tx(0);
    let p = payload(&back[0], HOST_A, PG[0], 0x86dd);
    assert_eq!((p[40], p[41], u32::from_be_bytes([p[44], p[45], p[46], p[47]])), (4, 0, 80));
    h.assert_no_leak();
}

/// Adds local SID `index` (and its route) to a running harness.
fn add_sid(h: &mut Harness, index: u32, sid: &str, behavior: Behavior) {
    let mut sr = SrTable::clone(&h.tables.sr);
    sr.set_localsid(index, Some(LocalSid::new(a6(sid), 0, behavior))).unwrap();
    h.tables.sr = Arc::new(sr);
    let path = RoutePath::special(NextHop::SrLocalSid { index, decap: behavior.decapsulates() });
    let prefix = net(&format!("{sid}/128"));
    h.tables.fib.control().set_route_source(0, prefix, RouteSource::Srv6, vec![path]).unwrap();
}

#[test]
fn many_packets_through_every_sr_path_and_no_buffer_leaks() {
    let mut h = lab();
    let reader = h.tables.fib.register_reader();
    // End.X and End.DX4 towards neighbors that never answer: held, expired.
    let (x6, x4) = {
        let mut c = h.tables.fib.control();
        let x6 = c.hold_neighbor_adjacency(1, IpAddr::V6(a6("fc00:b::99"))).unwrap();
        (x6, c.hold_neighbor_adjacency(1, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 99))).unwrap())
    };
    add_sid(&mut h, 12, "fc00:1::99", Behavior::EndX { adj: x6 });
    add_sid(&mut h, 13, "fc00:1::94", Behavior::EndDx4 { adj: x4 });
    // A route to an index the table does not have.
    let path = RoutePath::special(NextHop::SrLocalSid { index: 14, decap: false });
    h.tables.fib.control().set_route_source(0, net("fc00:1::dead/128"), RouteSource::Srv6, vec![path]).unwrap();

    let u = udp(7, 8, b"leak check payload");
    let v4 = |dst: [u8; 4], ttl: u8| eth(PG[0], HOST_A, 0x0800, &v4_to(dst, ttl, 4000));
    let end = |sid: &str, sl: u8, hl: u8| from_a(&srv6(sid, hl, sl, &[sid, "fc00:3::1"], UDP, &u));
    let mut bad_sl = srv6("fc00:1::e", 64, 1, &["fc00:1::e", "fc00:3::1"], UDP, &u);
    bad_sl[43] = 7;
    let mut bad_le = bad_sl.clone();
    (bad_le[43], bad_le[44]) = (1, 9);
    let mut echo = vec![128, 0, 0, 0, 0, 1, 0, 1];
    let sum = checksum::pseudo_header_v6(&a6("2001:db8::2"), &a6("fc00:1::e"), ICMP6, 8) + checksum::sum(&echo);
    echo[2..4].copy_from_slice(&(!checksum::fold(sum)).to_be_bytes());
    let inner6 = ip6("2001:db8:5::5", "2001:db8::2", UDP, 9, &u);
    let port0: Vec<Vec<u8>> = vec![
        end("fc00:1::e", 1, 64),
        end("fc00:1::e1", 1, 64),
        end("fc00:1::ec", 1, 64),
        end("fc00:1::e7", 1, 64),
        end("fc00:1::b6", 1, 64),
        end("fc00:1::99", 1, 64),
        end("fc00:1::e", 1, 1),
        end("fc00:1::e", 0, 64),
        end("fc00:1::dead", 1, 64),
        end("fc00:1::ac", 1, 64),
        from_a(&signed(false)),
        from_a(&signed(true)),
        from_a(&bad_sl),
        from_a(&bad_le),
        from_a(&ip6("2001:db8::2", "fc00:0:1:2::", UDP, 64, &u)),
        from_a(&ip6("2001:db8::2", "fc00:1::e", ICMP6, 64, &echo)),
        from_a(&srv6("fc00:1::d4", 64, 0, &["fc00:1::d4"], 4, &v4_to([198, 51, 100, 7], 64, 1))),
        from_a(&srv6("fc00:1::94", 64, 0, &["fc00:1::94"], 4, &v4_to([198, 51, 100, 7], 64, 1))),
        from_a(&srv6("fc00:1::d4", 64, 1, &["fc00:1::d4", "fc00:3::1"], 4, &v4_to([198, 51, 100, 7], 64, 1))),
        from_a(&ip6("2001:db8::2", "fc00:1::4", 4, 64, &v4_to([10, 2, 0, 2], 64, 2))),
        from_a(&ip6("2001:db8::2", "fc00:1::4", 4, 64, &v4_to([10, 2, 0, 2], 64, 2)[..19])),
        from_a(&ip6("2001:db8::2", "fc00:1::6", 41, 64, &inner6)),
        from_a(&ip6("2001:db8::2", "fc00:1::46", 4, 64, &v4_to([10, 0, 0, 2], 64, 3))),
        from_a(&ip6("2001:db8::2", "fc00:1::46", UDP, 64, &u)),
        from_a(&ip6("2001:db8::2", "fc00:1::d2", 143, 64, &eth(mac(0x77), mac(0x78), 0x0806, &[1; 28]))),
        v4([192, 168, 1, 1], 64),
        v4([192, 168, 1, 1], 1),
        v4([192, 169, 1, 1], 64),
        v4([172, 20, 1, 1], 64),
        v4([172, 20, 1, 2], 64),
        from_a(&ip6("2001:db8::2", "2001:db8:77::1", UDP, 64, &u)),
        from_a(&ip6("2001:db8::2", "2001:db8:77::1", UDP, 1, &u)),
    ];
    let port2 =
        [eth(mac(0x55), mac(0x56), 0x0800, &v4_to([1, 2, 3, 4], 9, 9)), eth(mac(0x55), mac(0x56), 0x88cc, &[0; 3])];
    let v0: Vec<&[u8]> = port0.iter().cycle().take(256).map(|f| f.as_slice()).collect();
    let v2: Vec<&[u8]> = port2.iter().cycle().take(64).map(|f| f.as_slice()).collect();
    let target: u64 = std::env::var("LEAK_PACKETS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let (mut sent, mut rounds) = (0u64, 0u64);
    while sent < target {
        reader.quiescent();
        h.inject(0, &v0);
        h.inject(2, &v2);
        sent += (v0.len() + v2.len()) as u64;
        rounds += 1;
        if rounds.is_multiple_of(8) {
            h.drain_all();
        }
        if rounds.is_multiple_of(32) {
            let tables = h.tables.clone();
            housekeeping(&mut h.graph, &mut h.bufs, &tables, &h.shared, clock::now());
            h.shared.punt.drain(&mut h.bufs, |_, _, _| {});
        }
    }
    let tables = h.tables.clone();
    housekeeping(&mut h.graph, &mut h.bufs, &tables, &h.shared, clock::now());
    h.drain_all();
    h.shared.punt.drain(&mut h.bufs, |_, _, _| {});
    let Harness { graph, bufs, shared, .. } = &mut h;
    release_held(graph, bufs, shared);
    let s = h.graph.stats().clone();
    for node in
        ["sr-localsid", "sr-localsid-d", "sr-pl-rewrite-encaps", "sr-pl-rewrite-encaps-l2", "ip6-discover", "ip4-arp"]
    {
        assert!(s.packets(node) > 0, "{node} never ran");
    }
    for (node, what) in [
        ("sr-localsid", "hop limit exceeded"),
        ("sr-localsid", "no such local sid (removed)"),
        ("sr-localsid", "srh hmac mismatch"),
        ("sr-localsid", "srh hmac missing"),
        ("sr-localsid", "srh segments left beyond last entry + 1"),
        ("sr-localsid-d", "segments left not zero at final sid"),
        ("sr-localsid-d", "upper-layer header not allowed"),
        ("sr-pl-rewrite-encaps", "inner ttl exceeded at headend"),
        ("ip6-icmp-error", "parameter problem sent"),
    ] {
        assert!(s.error(node, what) > 0, "{node}: {what:?} never counted");
    }
    println!("{sent} packets in {rounds} rounds");
    h.assert_no_leak();
}
