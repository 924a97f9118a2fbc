//! The benchmark scenarios: configuration, generator templates, and where
//! the packets should come out.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use vswitch_fib::quiesce::ReaderHandle;
use vswitch_nodes::ip::fib::{IpFib, IpFibConfig, RoutePath};
use vswitch_nodes::l2::{BdMember, BridgeDomain};
use vswitch_nodes::{BridgeDomainConfig, IfMode, Interface, Tables};
use vswitch_wire::MacAddr;

/// A small deterministic generator (xorshift64*), so every run measures
/// the same tables and flows.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every scenario, in the order they run by default.
pub const ALL: &[&str] = &[
    "l2-xconnect",
    "l2-bridge",
    "ip4-route",
    "ip6-route",
    "srv6-end",
    "srv6-encaps",
    "srv6-encaps-3",
    "srv6-end-dt4",
    "srv6-end-ad",
];

/// A configured scenario.
pub struct Scenario {
    pub tables: Arc<Tables>,
    pub templates: Vec<Vec<u8>>,
    pub rx_port: u32,
    pub tx_port: u32,
    pub ports: u32,
    pub reader: Option<ReaderHandle>,
    pub description: String,
}

pub fn build(name: &str, quick: bool) -> Result<Scenario, String> {
    match name {
        "l2-xconnect" => Ok(l2_xconnect()),
        "l2-bridge" => Ok(l2_bridge(10_000)),
        "l2-bridge-100" => Ok(l2_bridge(100)),
        "ip4-route" => ip4_route(if quick { 10_000 } else { 1_000_000 }, 10_000),
        "ip6-route" => ip6_route(if quick { 10_000 } else { 100_000 }, 10_000),
        "srv6-end" => srv6(Srv6::End, 1000),
        "srv6-encaps" => srv6(Srv6::Encaps(1), 10_000),
        "srv6-encaps-3" => srv6(Srv6::Encaps(3), 10_000),
        "srv6-end-dt4" => srv6(Srv6::EndDt4, 1000),
        "srv6-end-ad" => srv6(Srv6::EndAd, 1000),
        other => Err(format!("unknown scenario {other:?}; known: {}", ALL.join(", "))),
    }
}

fn mac(port: u8, host: u32) -> MacAddr {
    let h = host.to_be_bytes();
    MacAddr([0x02, port, h[0], h[1], h[2], h[3]])
}

/// A 64-byte Ethernet/IPv4/UDP frame (without FCS: 60 bytes on the wire
/// plus 4 of FCS, as generators count it).
pub fn udp4_frame(dst: MacAddr, src: MacAddr, ip_src: [u8; 4], ip_dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let total: u16 = 46;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&ip_src);
    ip[16..20].copy_from_slice(&ip_dst);
    let csum = vswitch_wire::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(total - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(60, 0);
    f
}

fn l2_xconnect() -> Scenario {
    let mut t = Tables::default();
    t.set_interface(Interface::port(0, "pg0", 0, mac(0, 0), IfMode::XConnect { peer: 1 }));
    t.set_interface(Interface::port(1, "pg1", 1, mac(1, 0), IfMode::XConnect { peer: 0 }));
    let templates = vec![udp4_frame(mac(1, 1), mac(0, 1), [10, 0, 0, 1], [10, 1, 0, 1], 1024, 1024)];
    Scenario {
        tables: Arc::new(t),
        templates,
        rx_port: 0,
        tx_port: 1,
        ports: 2,
        reader: None,
        description: "pg0 <-> pg1 L2 cross-connect, 1 flow".into(),
    }
}

/// Bridge domain 1 with pg0 and pg1. `macs` destination MACs sit behind
/// pg1 (learned at setup, as if pg1 had sent from them); the generator on
/// pg0 sends from `macs` source MACs (learned during warm-up, refreshed
/// after) to those destinations, one flow per MAC pair.
fn l2_bridge(macs: u32) -> Scenario {
    let mut t = Tables::default();
    t.set_interface(Interface::port(0, "pg0", 0, mac(0, 0), IfMode::Bridge { bd: 1, shg: 0 }));
    t.set_interface(Interface::port(1, "pg1", 1, mac(1, 0), IfMode::Bridge { bd: 1, shg: 0 }));
    let mut cfg = BridgeDomainConfig::new(1);
    cfg.mac_limit = 4 * macs;
    let members = vec![BdMember { sw_if: 0, shg: 0 }, BdMember { sw_if: 1, shg: 0 }];
    let bd = BridgeDomain::new(cfg, members);
    let now = bd.macs.now();
    for i in 0..macs {
        bd.macs.learn(mac(1, i + 1), 1, now);
    }
    t.set_bridge_domain(Arc::new(bd));
    let templates = (0..macs)
        .map(|i| {
            let ip = (i + 1).to_be_bytes();
            udp4_frame(mac(1, i + 1), mac(0, i + 1), [10, 0, ip[2], ip[3]], [10, 1, ip[2], ip[3]], 1024, 1024)
        })
        .collect();
    Scenario {
        tables: Arc::new(t),
        templates,
        rx_port: 0,
        tx_port: 1,
        ports: 2,
        reader: None,
        description: format!("bridge domain pg0 -> pg1, {macs} source and {macs} destination MACs learned"),
    }
}

/// Two routed ports, a resolved next hop behind pg1, and `routes` random
/// IPv4 prefixes through it (lengths like an Internet table: most /24,
/// many /16-/23, some /8-/15 and /25-/32), plus a default route;
/// `flows` random destinations.
fn ip4_route(routes: usize, flows: usize) -> Result<Scenario, String> {
    let mut t = routed_ports(IpFibConfig::default())?;
    t.interfaces[0].as_mut().unwrap().ip4.push((Ipv4Addr::new(172, 16, 0, 1), 24));
    t.interfaces[1].as_mut().unwrap().ip4.push((Ipv4Addr::new(172, 16, 1, 1), 24));
    let nh = Ipv4Addr::new(172, 16, 1, 2);
    let fib = Arc::clone(&t.fib);
    let mut rng = Rng::new(0x1234_5678);
    {
        let mut c = fib.control();
        c.sync_interfaces(&t).map_err(|e| e.to_string())?;
        c.add_static_neighbor(1, IpAddr::V4(nh), mac(1, 2)).map_err(|e| e.to_string())?;
        let via = [RoutePath::via(nh, 1)];
        c.add_route(0, "0.0.0.0/0".parse().unwrap(), &via).map_err(|e| e.to_string())?;
        let mut added = 0;
        while added < routes {
            let len = match rng.below(100) {
                0..=54 => 24,
                55..=89 => 16 + rng.below(8) as u8,
                90..=94 => 8 + rng.below(8) as u8,
                _ => 25 + rng.below(8) as u8,
            };
            let addr = Ipv4Addr::from(random_unicast_v4(&mut rng));
            let p = Ipv4Net::new(addr, len).unwrap().trunc();
            if p.contains(&nh) || p.contains(&Ipv4Addr::new(172, 16, 0, 1)) {
                continue;
            }
            c.add_route(0, IpNet::V4(p), &via).map_err(|e| format!("route {p}: {e}"))?;
            added += 1;
        }
    }
    let templates = (0..flows)
        .map(|i| {
            let dst = random_unicast_v4(&mut rng).to_be_bytes();
            udp4_frame(mac(0, 0), mac(0, 1), [172, 16, 0, 2], dst, 1024 + (i % 1000) as u16, 80)
        })
        .collect();
    let reader = Some(fib.register_reader());
    Ok(Scenario {
        tables: Arc::new(t),
        templates,
        rx_port: 0,
        tx_port: 1,
        ports: 2,
        reader,
        description: format!("pg0 -> pg1 routed, {routes} random IPv4 prefixes + default, {flows} flows"),
    })
}

/// The IPv6 twin of `ip4_route`: prefixes of length /32-/64 (and some
/// /20-/31, /65-/128) under 2000::/3.
fn ip6_route(routes: usize, flows: usize) -> Result<Scenario, String> {
    let mut t = routed_ports(IpFibConfig::default())?;
    t.interfaces[0].as_mut().unwrap().ip6.push(("fd00::1".parse().unwrap(), 64));
    t.interfaces[1].as_mut().unwrap().ip6.push(("fd00:1::1".parse().unwrap(), 64));
    let nh: Ipv6Addr = "fd00:1::2".parse().unwrap();
    let fib = Arc::clone(&t.fib);
    let mut rng = Rng::new(0x8765_4321);
    {
        let mut c = fib.control();
        c.sync_interfaces(&t).map_err(|e| e.to_string())?;
        c.add_static_neighbor(1, IpAddr::V6(nh), mac(1, 2)).map_err(|e| e.to_string())?;
        let via = [RoutePath::via(nh, 1)];
        c.add_route(0, "::/0".parse().unwrap(), &via).map_err(|e| e.to_string())?;
        let mut added = 0;
        while added < routes {
            let len = match rng.below(100) {
                0..=79 => 32 + rng.below(33) as u8,
                80..=89 => 20 + rng.below(12) as u8,
                _ => 65 + rng.below(64) as u8,
            };
            let p = Ipv6Net::new(Ipv6Addr::from(random_global_v6(&mut rng)), len).unwrap().trunc();
            c.add_route(0, IpNet::V6(p), &via).map_err(|e| format!("route {p}: {e}"))?;
            added += 1;
        }
    }
    let templates = (0..flows)
        .map(|i| {
            let dst = random_global_v6(&mut rng).to_be_bytes();
            udp6_frame(
                mac(0, 0),
                mac(0, 1),
                "fd00::2".parse::<Ipv6Addr>().unwrap().octets(),
                dst,
                1024 + (i % 1000) as u16,
                80,
            )
        })
        .collect();
    let reader = Some(fib.register_reader());
    Ok(Scenario {
        tables: Arc::new(t),
        templates,
        rx_port: 0,
        tx_port: 1,
        ports: 2,
        reader,
        description: format!("pg0 -> pg1 routed, {routes} random IPv6 prefixes + default, {flows} flows"),
    })
}

/// The SRv6 scenarios.
#[derive(Clone, Copy)]
enum Srv6 {
    /// End at a local SID, the next segment routed out of pg1.
    End,
    /// IPv4 steered into a policy of this many SIDs (H.Encaps).
    Encaps(usize),
    /// End.DT4: the inner IPv4 packet looked up in VRF 0.
    EndDt4,
    /// End.AD (dynamic SR proxy): End, the outer headers cached, the inner
    /// IPv4 packet to the service function behind pg1.
    EndAd,
}

/// pg0 (fd00::1/64, 172.16.0.1/24) receives, pg1 (fc00:b::1/64,
/// 172.16.1.1/24; router fc00:b::2 / 172.16.1.2 known) sends. Local SIDs
/// fc00:1::e (End) and fc00:1::4 (End.DT4 in VRF 0), the next SIDs
/// (fc00::/16) and IPv4 behind pg1 routed to the router, 10.0.0.0/8
/// steered into a policy of 1 or 3 SIDs. `flows` packet templates.
fn srv6(kind: Srv6, flows: usize) -> Result<Scenario, String> {
    use vswitch_nodes::ip::{NextHop, RouteSource};
    use vswitch_nodes::srv6::{Behavior, EncapKind, LocalSid, Policy, SrTable};
    use vswitch_srv6::behavior::{EncapParams, EncapTemplate};
    use vswitch_srv6::policy::{SegmentList, SrPolicy, DEFAULT_BUCKETS};
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let a6 = |s: &str| s.parse::<Ipv6Addr>().expect("an IPv6 address");
    let mut t = routed_ports(IpFibConfig::default())?;
    t.interfaces[0].as_mut().unwrap().ip6.push((a6("fd00::1"), 64));
    t.interfaces[0].as_mut().unwrap().ip4.push((Ipv4Addr::new(172, 16, 0, 1), 24));
    t.interfaces[1].as_mut().unwrap().ip6.push((a6("fc00:b::1"), 64));
    t.interfaces[1].as_mut().unwrap().ip4.push((Ipv4Addr::new(172, 16, 1, 1), 24));
    let fib = Arc::clone(&t.fib);
    let mut sr = SrTable::new();
    {
        let mut c = fib.control();
        c.sync_interfaces(&t).map_err(|x| e(&x))?;
        let (nh6, nh4) = (a6("fc00:b::2"), Ipv4Addr::new(172, 16, 1, 2));
        c.add_static_neighbor(1, IpAddr::V6(nh6), mac(1, 2)).map_err(|x| e(&x))?;
        c.add_static_neighbor(1, IpAddr::V4(nh4), mac(1, 2)).map_err(|x| e(&x))?;
        c.add_route(0, "fc00::/16".parse().unwrap(), &[RoutePath::via(nh6, 1)]).map_err(|x| e(&x))?;
        c.add_route(0, "192.168.0.0/16".parse().unwrap(), &[RoutePath::via(nh4, 1)]).map_err(|x| e(&x))?;
        for (i, sid, b) in [(0, "fc00:1::e", Behavior::End), (1, "fc00:1::4", Behavior::EndDt4 { vrf: 0 })] {
            sr.set_localsid(i, Some(LocalSid::new(a6(sid), 0, b))).map_err(|x| e(&x))?;
            let path = RoutePath::special(NextHop::SrLocalSid { index: i, decap: b.decapsulates() });
            let prefix = format!("{sid}/128").parse().unwrap();
            c.set_route_source(0, prefix, RouteSource::Srv6, vec![path]).map_err(|x| e(&x))?;
        }
        {
            // End.AD at fc00:1::ad: the SF is 172.16.1.2 behind pg1 (its
            // return side, never used here, pg1 too).
            use vswitch_nodes::srv6::{AdCache, ProxyClaim, ProxyKind, SrProxy};
            use vswitch_srv6::behavior::{DynamicProxy, Inner, Next};
            let adj = c.hold_neighbor_adjacency(1, IpAddr::V4(nh4)).map_err(|x| e(&x))?;
            let mut s = LocalSid::new(a6("fc00:1::ad"), 0, Behavior::EndAd);
            let proxy = DynamicProxy { inner: Inner::Ipv4, to_sf: Next::Adjacency(adj) };
            let kind = ProxyKind::Dynamic { proxy, cache: Arc::new(AdCache::new()) };
            s.proxy = Some(Arc::new(SrProxy { kind, return_if: 1 }));
            sr.set_localsid(2, Some(s)).map_err(|x| e(&x))?;
            sr.set_proxy_return(1, Some((2, ProxyClaim::Ipv4)));
            let path = RoutePath::special(NextHop::SrLocalSid { index: 2, decap: true });
            c.set_route_source(0, "fc00:1::ad/128".parse().unwrap(), RouteSource::Srv6, vec![path])
                .map_err(|x| e(&x))?;
        }
        let sids = ["fc00:3::1", "fc00:4::1", "fc00:5::1"];
        let n = if let Srv6::Encaps(n) = kind { n } else { 1 };
        let segs: Vec<Ipv6Addr> = sids[..n].iter().map(|s| a6(s)).collect();
        let template = EncapTemplate::new(&EncapParams::new(a6("fc00:1::a"), &segs)).map_err(|x| e(&x))?;
        let policy = SrPolicy::new(a6("fc00:1::b:1"), vec![SegmentList { weight: 1, template }], DEFAULT_BUCKETS)
            .map_err(|x| e(&x))?;
        sr.set_policy(0, Some(Policy { policy, encap: EncapKind::Encaps, vrf: 0 })).map_err(|x| e(&x))?;
        let path = RoutePath::special(NextHop::SrPolicy { index: 0 });
        c.set_route_source(0, "10.0.0.0/8".parse().unwrap(), RouteSource::Srv6, vec![path]).map_err(|x| e(&x))?;
    }
    t.sr = Arc::new(sr);
    let src = a6("fd00::2").octets();
    let templates = (0..flows)
        .map(|i| {
            let sport = 1024 + (i % 1000) as u16;
            let inner4 = |dst: [u8; 4]| {
                let mut f = udp4_frame(mac(0, 0), mac(0, 1), [172, 16, 0, 2], dst, sport, 80);
                f.drain(..14);
                f
            };
            match kind {
                Srv6::Encaps(_) => {
                    let d = (i as u32).to_be_bytes();
                    udp4_frame(mac(0, 0), mac(0, 1), [172, 16, 0, 2], [10, d[1], d[2], d[3]], sport, 80)
                }
                Srv6::End => {
                    let mut udp = vec![0u8; 8];
                    udp[0..2].copy_from_slice(&sport.to_be_bytes());
                    udp[2..4].copy_from_slice(&80u16.to_be_bytes());
                    udp[4..6].copy_from_slice(&8u16.to_be_bytes());
                    srv6_frame(&src, &["fc00:1::e", "fc00:3::1"], 1, 17, &udp)
                }
                Srv6::EndDt4 => {
                    let d = (i as u32).to_be_bytes();
                    srv6_frame(&src, &["fc00:1::4"], 0, 4, &inner4([192, 168, d[2], d[3]]))
                }
                Srv6::EndAd => {
                    let d = (i as u32).to_be_bytes();
                    srv6_frame(&src, &["fc00:1::ad", "fc00:3::1"], 1, 4, &inner4([192, 168, d[2], d[3]]))
                }
            }
        })
        .collect();
    let what = match kind {
        Srv6::End => "End at fc00:1::e, SRH SL 1 -> 0, next SID routed out of pg1".to_string(),
        Srv6::Encaps(n) => format!("H.Encaps of IPv4 into a {n}-SID policy, out of pg1"),
        Srv6::EndDt4 => "End.DT4 at fc00:1::4 (SRH SL 0), inner IPv4 looked up in VRF 0".to_string(),
        Srv6::EndAd => "End.AD at fc00:1::ad (SRH SL 1 -> 0), headers cached, inner IPv4 to the SF".to_string(),
    };
    let reader = Some(fib.register_reader());
    Ok(Scenario {
        tables: Arc::new(t),
        templates,
        rx_port: 0,
        tx_port: 1,
        ports: 2,
        reader,
        description: format!("pg0 -> pg1, {what}, {flows} flows"),
    })
}

/// An Ethernet/IPv6/SRH frame to `segments[sl]` (visiting order) carrying
/// `payload` of type `nh`.
fn srv6_frame(src: &[u8; 16], segments: &[&str], sl: u8, nh: u8, payload: &[u8]) -> Vec<u8> {
    let n = segments.len();
    let mut srh = vec![nh, (2 * n) as u8, 4, sl, (n - 1) as u8, 0, 0, 0];
    for s in segments.iter().rev() {
        srh.extend_from_slice(&s.parse::<Ipv6Addr>().unwrap().octets());
    }
    let dst = segments[n - 1 - usize::from(sl)].parse::<Ipv6Addr>().unwrap().octets();
    let mut f = Vec::with_capacity(14 + 40 + srh.len() + payload.len());
    f.extend_from_slice(&mac(0, 0).0);
    f.extend_from_slice(&mac(0, 1).0);
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((srh.len() + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[43, 64]);
    f.extend_from_slice(src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&srh);
    f.extend_from_slice(payload);
    f
}

/// pg0 and pg1 as routed ports in VRF 0, with a FIB sized for production.
fn routed_ports(config: IpFibConfig) -> Result<Tables, String> {
    let fib = IpFib::new(config).map_err(|e| e.to_string())?;
    let mut t = Tables { fib, ..Tables::default() };
    t.set_interface(Interface::port(0, "pg0", 0, mac(0, 0), IfMode::L3 { vrf: 0 }));
    t.set_interface(Interface::port(1, "pg1", 1, mac(1, 0), IfMode::L3 { vrf: 0 }));
    Ok(t)
}

/// A random address in 1.0.0.0-223.255.255.255, not in 10/8, 127/8, 172.16/12.
fn random_unicast_v4(rng: &mut Rng) -> u32 {
    loop {
        let a = rng.next() as u32;
        let first = a >> 24;
        if (1..224).contains(&first) && first != 10 && first != 127 && (a >> 20) != 0xac1 {
            return a;
        }
    }
}

/// A random address in 2000::/3.
fn random_global_v6(rng: &mut Rng) -> u128 {
    let hi = (rng.next() as u128) << 64 | rng.next() as u128;
    (hi & !(0b111u128 << 125)) | (0b001u128 << 125)
}

/// A 64-byte Ethernet/IPv6/UDP frame (62 bytes: the minimum for IPv6+UDP
/// with 0 payload; padded to 60 is not needed).
pub fn udp6_frame(dst: MacAddr, src: MacAddr, ip_src: [u8; 16], ip_dst: [u8; 16], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    let payload: u16 = 10;
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&payload.to_be_bytes());
    f.extend_from_slice(&[17, 64]);
    f.extend_from_slice(&ip_src);
    f.extend_from_slice(&ip_dst);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&payload.to_be_bytes());
    let mut sum =
        vswitch_wire::checksum::pseudo_header_v6(&Ipv6Addr::from(ip_src), &Ipv6Addr::from(ip_dst), 17, payload as u32);
    sum += vswitch_wire::checksum::sum(&f[54..60]) + vswitch_wire::checksum::sum(&[0, 0]);
    let c = !vswitch_wire::checksum::fold(sum);
    f.extend_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f
}
