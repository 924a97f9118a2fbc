//! Millions of packets through every path of the standard graph — cross-
//! connect, bridging (learning, flooding = replication, BVI), IPv4 and
//! IPv6 routing, ARP/ND (answered, glean with held packets that are
//! released or expire), ping, ICMP errors (and their rate limit),
//! fragmentation, punt, and malformed frames dropped at every layer —
//! then the pool must be full again: no buffer leaks anywhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use vswitch_nodes::harness::Harness;
use vswitch_nodes::ip::RoutePath;
use vswitch_nodes::l2::{BdMember, BridgeDomain};
use vswitch_nodes::{housekeeping, release_held, BridgeDomainConfig, IfKind, IfMode, Interface, Tables, NONE};
use vswitch_packet::clock;
use vswitch_wire::checksum;
use vswitch_wire::MacAddr;

const fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}
const BVI: u32 = 20;
const BVI_MAC: MacAddr = mac(0xb1);
const HOST5: MacAddr = mac(0x55);
const HOST6: MacAddr = mac(0x66);

fn eth(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

fn ip4(src: [u8; 4], dst: [u8; 4], ttl: u8, proto: u8, df: bool, payload: &[u8]) -> Vec<u8> {
    let tl = 20 + payload.len();
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&(tl as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, if df { 0x40 } else { 0 }, 0, ttl, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn udp(len: usize) -> Vec<u8> {
    let mut u = vec![0x04, 0x00, 0x00, 0x35];
    u.extend_from_slice(&((8 + len) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend((0..len).map(|i| i as u8));
    u
}

fn icmp4_echo() -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0, 1, 0, 1];
    m.extend_from_slice(b"ping payload");
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn ip6(src: &str, dst: &str, hop: u8, next: u8, payload: &[u8]) -> Vec<u8> {
    let (s, d): (Ipv6Addr, Ipv6Addr) = (src.parse().unwrap(), dst.parse().unwrap());
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, hop]);
    h.extend_from_slice(&s.octets());
    h.extend_from_slice(&d.octets());
    let mut body = payload.to_vec();
    if next == 58 {
        let mut sum = checksum::pseudo_header_v6(&s, &d, 58, body.len() as u32);
        if body.len() % 2 == 1 {
            body.push(0);
        }
        sum += checksum::sum(&body);
        body.truncate(payload.len());
        let c = !checksum::fold(sum);
        body[2..4].copy_from_slice(&c.to_be_bytes());
    }
    h.extend_from_slice(&body);
    h
}

fn arp_request(sha: MacAddr, spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&sha.0);
    a.extend_from_slice(&spa);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa);
    eth(MacAddr::BROADCAST, sha, 0x0806, &a)
}

/// Every interface kind: an xconnect pair (0, 1), a bridge (2, 3, 4 and
/// BVI 20 routed as 192.168.1.1/24), two routed ports (5, 6) with IPv4 and
/// IPv6, port 6 with a 1400-byte MTU.
fn topology() -> Tables {
    let mut t = Tables::default();
    t.set_interface(Interface::port(0, "pg0", 0, mac(0xa0), IfMode::XConnect { peer: 1 }));
    t.set_interface(Interface::port(1, "pg1", 1, mac(0xa1), IfMode::XConnect { peer: 0 }));
    for p in 2..5 {
        t.set_interface(Interface::port(
            p,
            &format!("pg{p}"),
            p,
            mac(0xa0 + p as u8),
            IfMode::Bridge { bd: 1, shg: 0 },
        ));
    }
    let mut bvi = Interface::port(BVI, "bvi1", NONE, BVI_MAC, IfMode::L3 { vrf: 0 });
    bvi.kind = IfKind::Bvi { bd: 1 };
    bvi.ip4.push((Ipv4Addr::new(192, 168, 1, 1), 24));
    t.set_interface(bvi);
    let mut config = BridgeDomainConfig::new(1);
    config.bvi = Some(BVI);
    let members = [2, 3, 4, BVI].into_iter().map(|sw_if| BdMember { sw_if, shg: 0 }).collect();
    let bd = BridgeDomain::new(config, members);
    bd.macs.add_static(BVI_MAC, BVI).unwrap();
    t.set_bridge_domain(Arc::new(bd));
    let mut p5 = Interface::port(5, "pg5", 5, mac(0xa5), IfMode::L3 { vrf: 0 });
    p5.ip4.push((Ipv4Addr::new(10, 5, 0, 1), 24));
    p5.ip6.push(("fd05::1".parse().unwrap(), 64));
    let mut p6 = Interface::port(6, "pg6", 6, mac(0xa6), IfMode::L3 { vrf: 0 });
    p6.ip4.push((Ipv4Addr::new(10, 6, 0, 1), 24));
    p6.ip6.push(("fd06::1".parse().unwrap(), 64));
    p6.mtu = 1400;
    t.set_interface(p5);
    t.set_interface(p6);
    {
        let mut c = t.fib.control();
        c.sync_interfaces(&t).unwrap();
        c.add_static_neighbor(5, IpAddr::V4(Ipv4Addr::new(10, 5, 0, 2)), HOST5).unwrap();
        c.add_static_neighbor(6, IpAddr::V4(Ipv4Addr::new(10, 6, 0, 2)), HOST6).unwrap();
        c.add_static_neighbor(5, "fd05::2".parse().unwrap(), HOST5).unwrap();
        c.add_static_neighbor(6, "fd06::2".parse().unwrap(), HOST6).unwrap();
        c.add_static_neighbor(BVI, IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)), mac(0x33)).unwrap();
        c.add_route(0, "10.60.0.0/16".parse().unwrap(), &[RoutePath::via(Ipv4Addr::new(10, 6, 0, 2), 6)]).unwrap();
        c.add_route(0, "10.70.0.0/16".parse().unwrap(), &[RoutePath::via(Ipv4Addr::new(10, 6, 0, 3), 6)]).unwrap();
        c.add_route(0, "10.80.0.0/16".parse().unwrap(), &[RoutePath::via(Ipv4Addr::new(192, 168, 1, 2), BVI)]).unwrap();
        c.add_route(0, "fd60::/32".parse().unwrap(), &[RoutePath::via("fd06::2".parse::<Ipv6Addr>().unwrap(), 6)])
            .unwrap();
        c.add_route(0, "fd70::/32".parse().unwrap(), &[RoutePath::via("fd06::3".parse::<Ipv6Addr>().unwrap(), 6)])
            .unwrap();
    }
    t
}

/// The frames sent each round, by port.
fn traffic() -> Vec<(u32, Vec<Vec<u8>>)> {
    let pg5 = mac(0xa5);
    let v4 = |dst: [u8; 4], ttl: u8, df: bool, len: usize| {
        eth(pg5, HOST5, 0x0800, &ip4([10, 5, 0, 2], dst, ttl, 17, df, &udp(len)))
    };
    let mut bad_csum = v4([10, 60, 0, 1], 64, false, 18);
    bad_csum[24] ^= 0xff;
    let mut bad_version = v4([10, 60, 0, 1], 64, false, 18);
    bad_version[14] = 0x55;
    let mut bad_total = v4([10, 60, 0, 1], 64, false, 18);
    bad_total[16] = 0x40;
    let v6 = |dst: &str, hop: u8, next: u8, payload: &[u8]| {
        eth(pg5, HOST5, 0x86dd, &ip6("fd05::2", dst, hop, next, payload))
    };
    let echo6 = [128, 0, 0, 0, 0, 7, 0, 1, 1, 2, 3, 4];
    let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&"fd05::1".parse::<Ipv6Addr>().unwrap().octets());
    ns.extend_from_slice(&[1, 1]);
    ns.extend_from_slice(&HOST5.0);
    let ns_frame =
        eth(MacAddr([0x33, 0x33, 0xff, 0, 0, 1]), HOST5, 0x86dd, &ip6("fd05::2", "ff02::1:ff00:1", 255, 58, &ns));
    let mut bad_plen = v6("fd60::1", 64, 17, &udp(10));
    bad_plen[18] = 0x40;
    let port5 = vec![
        v4([10, 60, 0, 1], 64, false, 18),
        v4([10, 60, 1, 2], 64, false, 18),
        v4([10, 60, 0, 1], 1, false, 18),
        v4([11, 0, 0, 1], 64, false, 18),
        v4([10, 70, 0, 1], 64, false, 18),
        v4([10, 80, 0, 1], 64, false, 18),
        eth(pg5, HOST5, 0x0800, &ip4([10, 5, 0, 2], [10, 5, 0, 1], 64, 1, false, &icmp4_echo())),
        v4([10, 5, 0, 1], 64, false, 18),
        arp_request(HOST5, [10, 5, 0, 2], [10, 5, 0, 1]),
        v4([10, 60, 0, 1], 64, true, 1472),
        v4([10, 60, 0, 1], 64, false, 1472),
        bad_csum,
        bad_version,
        bad_total,
        v6("fd60::1", 64, 17, &udp(10)),
        v6("fd60::1", 1, 17, &udp(10)),
        v6("fd05::1", 64, 58, &echo6),
        ns_frame,
        v6("fd70::1", 64, 17, &udp(10)),
        v6("fd60::1", 64, 17, &udp(1452)),
        bad_plen,
        eth(pg5, HOST5, 0x0800, &[0x45, 0]),
        eth(pg5, HOST5, 0x9999, &[1, 2, 3]),
        eth(mac(0x77), HOST5, 0x0800, &ip4([10, 5, 0, 2], [10, 60, 0, 1], 64, 17, false, &udp(8))),
    ];
    let mut truncated = eth(mac(0xa1), mac(0x01), 0x0800, &[0; 46]);
    truncated.truncate(10);
    let bridged = |dst: MacAddr, src: MacAddr| {
        eth(dst, src, 0x0800, &ip4([192, 168, 1, 9], [10, 60, 0, 1], 64, 17, false, &udp(18)))
    };
    vec![
        (0, vec![eth(mac(0x01), mac(0x02), 0x0800, &[7; 46]), truncated]),
        (2, vec![bridged(mac(0x44), mac(0x22)), bridged(MacAddr::BROADCAST, mac(0x22)), bridged(BVI_MAC, mac(0x22))]),
        (3, vec![bridged(mac(0x22), mac(0x33)), arp_request(mac(0x33), [192, 168, 1, 2], [192, 168, 1, 1])]),
        (4, vec![bridged(mac(0x99), mac(0x44)), bridged(MacAddr([1, 0, 0x5e, 0, 0, 1]), mac(0x44))]),
        (5, port5),
        (6, vec![eth(mac(0xa6), HOST6, 0x0800, &ip4([10, 60, 0, 1], [10, 5, 0, 2], 64, 17, false, &udp(18)))]),
    ]
}

#[test]
fn millions_of_packets_through_every_path_and_no_buffer_leaks() {
    let mut h = Harness::new(topology(), 8192);
    let reader = h.tables.fib.register_reader();
    let traffic = traffic();
    let per_round: usize = traffic.iter().map(|(_, f)| f.len()).sum();
    // Repeat each port's frames to fill vectors of 256.
    let vectors: Vec<(u32, Vec<&[u8]>)> = traffic
        .iter()
        .map(|(port, frames)| {
            (
                *port,
                frames.iter().cycle().take(frames.len() * (256 / per_round).max(1) * 2).map(|f| f.as_slice()).collect(),
            )
        })
        .collect();
    let target: u64 = std::env::var("LEAK_PACKETS").ok().and_then(|s| s.parse().ok()).unwrap_or(4_000_000);
    let mut sent = 0u64;
    let mut rounds = 0u64;
    while sent < target {
        reader.quiescent();
        for (port, v) in &vectors {
            h.inject(*port, v);
            sent += v.len() as u64;
        }
        rounds += 1;
        if rounds.is_multiple_of(16) {
            h.drain_all();
        }
        if rounds.is_multiple_of(64) {
            let tables = h.tables.clone();
            housekeeping(&mut h.graph, &mut h.bufs, &tables, &h.shared, clock::now());
            h.shared.punt.drain(&mut h.bufs, |_, _, _| {});
        }
        // Halfway, the unresolved IPv4 next hop answers: held packets are
        // released, later ones routed.
        if sent >= target / 2 && h.tables.fib.control().neighbor(6, IpAddr::V4(Ipv4Addr::new(10, 6, 0, 3))).is_none() {
            h.inject(
                6,
                &[&eth(MacAddr::BROADCAST, mac(0x63), 0x0806, &{
                    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 2];
                    a.extend_from_slice(&mac(0x63).0);
                    a.extend_from_slice(&[10, 6, 0, 3]);
                    a.extend_from_slice(&mac(0xa6).0);
                    a.extend_from_slice(&[10, 6, 0, 1]);
                    a
                })],
            );
        }
    }
    let tables = h.tables.clone();
    housekeeping(&mut h.graph, &mut h.bufs, &tables, &h.shared, clock::now());
    h.drain_all();
    let Harness { graph, bufs, shared, .. } = &mut h;
    release_held(graph, bufs, shared);

    // Every path really ran.
    let s = h.graph.stats().clone();
    let nonzero = |node: &str, what: &str| {
        let n = s.error(node, what);
        assert!(n > 0, "{node}: {what:?} never counted");
    };
    assert!(s.packets("l2-flood") > 0 && s.packets("l2-learn") > 0 && s.packets("interface-output") > 0);
    assert!(s.packets("ip4-rewrite") > 0 && s.packets("ip6-rewrite") > 0 && s.packets("ip4-local") > 0);
    nonzero("ethernet-input", "frame shorter than its Ethernet header and tags");
    nonzero("ethernet-input", "unknown ethertype");
    nonzero("ethernet-input", "destination MAC is not the routed interface's");
    nonzero("ip4-input", "bad header checksum");
    nonzero("ip4-lookup", "no route");
    nonzero("ip4-icmp-error", "time exceeded sent (not a drop)");
    nonzero("ip4-icmp-error", "fragmentation needed sent (not a drop)");
    nonzero("ip4-rewrite", "packets fragmented (not a drop)");
    nonzero("ip4-local", "echo requests answered (not a drop)");
    nonzero("arp-input", "requests for our address answered (not a drop)");
    assert!(
        s.error("ip4-arp", "held packets released after resolution (not a drop)")
            + s.error("arp-input", "held packets released after resolution (not a drop)")
            > 0,
        "held packets never released"
    );
    nonzero("ip6-input", "payload length runs past the frame");
    nonzero("ip6-icmp-error", "time exceeded sent");
    nonzero("ip6-icmp-error", "packet too big sent");
    assert!(s.packets("ip6-nd") > 0 && s.packets("ip6-discover") > 0 && s.packets("ip6-icmp-error") > 0);
    nonzero("punt", "queued for the control plane (not a drop)");
    println!("{sent} packets in {rounds} rounds");
    h.assert_no_leak();
}
