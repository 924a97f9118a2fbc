//! sr-proxy-return: traffic an SR-unaware service function (SF) sends back
//! to its SR proxy (draft-ietf-spring-sr-service-programming section 6).
//!
//! An SR proxy SID (End.AS, End.AD, End.AM) sends packets to its SF from
//! sr-localsid / sr-localsid-d; the SF sends them back on the proxy's
//! return interface, where ethernet-input hands them here (the SID's index
//! in `meta.opaque[0]`, see [`SrTable::proxy_claims`](super::SrTable::proxy_claims)):
//! IPv4 / IPv6 packets, Ethernet header stripped, from a routed interface,
//! or whole frames from an interface with no other mode (an Ethernet
//! proxy). By the SID's behaviour:
//!
//! - End.AS: the inner TTL / hop limit is decremented and the configured
//!   headers (the rest of the chain: source, segment list) are pushed, as
//!   a headend does; the packet is ours (locally originated: it leaves with
//!   the hop limit the headers set);
//! - End.AD: the outer headers the SID cached from the last packet it sent
//!   to the SF (shared by the workers: [`super::proxy_cache`]) are pushed
//!   again, payload length rewritten, inner TTL / hop limit decremented;
//!   ip6-rewrite decrements the outer hop limit as for any forwarded
//!   packet;
//! - End.AM: de-masquerading: DA = Segment List\[Segments Left\] (a packet
//!   without SRH goes on as it is).
//!
//! Then ip6-lookup in the SID's VRF. An inner packet that expires gets ICMP
//! Time Exceeded from ip4-icmp-error / ip6-icmp-error; everything dropped is
//! counted under its reason and in the SID's return counters (per worker).

use super::encaps::{frame_flow_hash, ip_flow_hash};
use super::proxy_cache::AdLoad;
use super::table::{LocalSid, ProxyKind};
use super::{request_icmp, IcmpNode, SrCounters, SrError};
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, Tables};
use std::fmt;
use std::net::Ipv6Addr;
use std::sync::Arc;
use vswitch_graph::{next_arcs, Node, PacketId};
use vswitch_packet::MetaFlags;
use vswitch_srv6::behavior::{self, DynamicProxyCache, Inner, Outcome};

next_arcs! {
    /// Where sr-proxy-return sends packets.
    pub enum SrProxyReturnNext {
        Lookup6 = "ip6-lookup",
        IcmpError4 = "ip4-icmp-error",
        IcmpError6 = "ip6-icmp-error",
    }
}

/// Trace record.
pub struct SrProxyReturnTrace {
    index: u32,
    sid: Ipv6Addr,
    behavior: &'static str,
    rx_if: u32,
    outcome: Outcome,
}

impl fmt::Display for SrProxyReturnTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sid {} {} {} from sw_if {}: ", self.index, self.sid, self.behavior, self.rx_if)?;
        match self.outcome {
            Outcome::Forward { span, dst, .. } => write!(f, "back into the chain to {dst}, len {}", span.len),
            Outcome::Drop { reason, icmp: Some(e) } => write!(f, "drop: {reason}, {e:?}"),
            Outcome::Drop { reason, icmp: None } => write!(f, "drop: {reason}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The sr-proxy-return node.
pub struct SrProxyReturn {
    counters: Arc<SrCounters>,
    /// The End.AD headers copied out of the shared cache (allocated once).
    scratch: Box<DynamicProxyCache>,
}

impl SrProxyReturn {
    /// Counts into the worker's `counters`.
    pub fn new(counters: Arc<SrCounters>) -> Self {
        SrProxyReturn { counters, scratch: Box::default() }
    }
}

/// The IP packet's own length (a short frame's padding is not part of
/// it); `None` if its header says it is longer than what arrived or is not
/// of type `inner`.
#[inline]
fn ip_len(d: &[u8], inner: Inner) -> Option<usize> {
    let n = match (inner, d.first().map(|b| b >> 4)) {
        (Inner::Ipv4, Some(4)) if d.len() >= 20 => usize::from(u16::from_be_bytes([d[2], d[3]])),
        (Inner::Ipv6, Some(6)) if d.len() >= 40 => 40 + usize::from(u16::from_be_bytes([d[4], d[5]])),
        _ => return None,
    };
    (n <= d.len()).then_some(n)
}

impl Node<Tables> for SrProxyReturn {
    const NAME: &'static str = "sr-proxy-return";
    type Next = SrProxyReturnNext;
    type Error = SrError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use SrProxyReturnNext as To;
        let tables = cx.state;
        let sr = &*tables.sr;
        // Runs of packets back to one SID share its lookup and counter
        // update.
        let (mut run_index, mut run): (u32, Option<&LocalSid>) = (u32::MAX, None);
        let (mut packets, mut bytes) = (0u64, 0u64);
        for &p in vector {
            let (d, m) = cx.bufs.data_and_meta_mut(p);
            let (index, start, rx_if) = (m.opaque[0], m.current as usize, m.rx_if);
            let traced = m.flags & MetaFlags::TRACED != 0;
            if index != run_index {
                self.counters.proxy_return(run_index).add(packets, bytes);
                (packets, bytes, run_index, run) = (0, 0, index, sr.localsid(index));
            }
            let Some((sid, proxy)) = run.and_then(|s| s.proxy.as_deref().map(|x| (s, x))) else {
                cx.discard(p, SrError::NoSid);
                continue;
            };
            let c = self.counters.proxy_return(index);
            let inner = proxy.inner();
            let len = match inner {
                Inner::Ethernet => d.len(),
                _ => match ip_len(d, inner) {
                    Some(n) => n,
                    None => {
                        c.drop();
                        cx.discard(p, SrError::ProxyInnerType);
                        continue;
                    }
                },
            };
            let flow_hash = match (&proxy.kind, inner) {
                (ProxyKind::Static(_), Inner::Ethernet) => frame_flow_hash(d),
                (ProxyKind::Static(_), _) => ip_flow_hash(d),
                _ => 0,
            };
            let buf = cx.bufs.buffer_mut(p);
            let out = match &proxy.kind {
                ProxyKind::Static(sp) => behavior::end_as_return(buf, start, len, sp, flow_hash),
                ProxyKind::Dynamic { proxy, cache } => match cache.load(&mut self.scratch) {
                    AdLoad::Busy => {
                        c.drop();
                        cx.discard(p, SrError::ProxyCacheBusy);
                        continue;
                    }
                    AdLoad::Loaded | AdLoad::Empty => behavior::end_ad_return(buf, start, len, proxy, &self.scratch),
                },
                ProxyKind::Masquerading { .. } => behavior::end_am_return(buf, start, len),
            };
            if traced {
                let t = SrProxyReturnTrace { index, sid: sid.sid, behavior: sid.behavior.name(), rx_if, outcome: out };
                cx.trace(p, t);
            }
            match out {
                Outcome::Forward { span, .. } => {
                    let m = cx.bufs.meta_mut(p);
                    (m.current, m.len, m.l3) = (span.start as u16, span.len as u16, span.start as u16);
                    m.vrf = sid.vrf;
                    if let ProxyKind::Static(_) = proxy.kind {
                        // Our headers, with the hop limit they set.
                        m.flags |= LOCALLY_ORIGINATED;
                    }
                    (packets, bytes) = (packets + 1, bytes + len as u64);
                    cx.enqueue(To::Lookup6, p);
                }
                Outcome::Drop { reason, icmp: Some(e) } => {
                    c.drop();
                    cx.count(SrError::from_reason(reason), 1);
                    cx.count(SrError::IcmpSent, 1);
                    let m = cx.bufs.meta_mut(p);
                    (m.l3, m.len) = (m.current, len as u16);
                    match request_icmp(m, e) {
                        IcmpNode::V6 => cx.enqueue(To::IcmpError6, p),
                        IcmpNode::V4 => cx.enqueue(To::IcmpError4, p),
                    }
                }
                Outcome::Drop { reason, icmp: None } => {
                    c.drop();
                    cx.discard(p, SrError::from_reason(reason));
                }
                Outcome::Decap { .. } | Outcome::Local { .. } => {
                    c.drop();
                    cx.discard(p, SrError::TemplateMismatch);
                }
            }
        }
        self.counters.proxy_return(run_index).add(packets, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{Behavior, ProxyClaim, SrProxy, SrTable};
    use super::super::AdCache;
    use super::*;
    use crate::harness::Harness;
    use crate::ip::{NextHop, RoutePath, RouteSource};
    use crate::{IfMode, Interface};
    use std::net::{IpAddr, Ipv4Addr};
    use vswitch_srv6::behavior::{DynamicProxy, EncapParams, EncapTemplate, Next, StaticProxy};
    use vswitch_wire::MacAddr;

    const fn mac(last: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, last])
    }
    const PG: [MacAddr; 5] = [mac(0xa0), mac(0xa1), mac(0xa2), mac(0xa3), mac(0xa4)];
    const ROUTER: MacAddr = mac(0x0b);
    const SF: MacAddr = mac(0x5f);
    const AD4: u32 = 0;
    const AD2: u32 = 1;
    const AS2: u32 = 2;

    fn a6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn eth(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        [&dst.0[..], &src.0[..], &ethertype.to_be_bytes()[..], payload].concat()
    }

    fn ip4_udp(ttl: u8) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 32, 0, 0, 0, 0, ttl, 17, 0, 0, 10, 8, 0, 1, 10, 7, 0, 2];
        let c = vswitch_wire::checksum::checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 12, 0, 0, b'p', b'r', b'x', b'y']);
        p
    }

    /// fc00:b::2 > `dst` with an SRH of `segs` (visiting order), Segments
    /// Left `sl`, around `inner` of next header `nh`.
    fn sr_packet(dst: &str, sl: u8, segs: &[&str], nh: u8, inner: &[u8]) -> Vec<u8> {
        let n = segs.len();
        let mut srh = vec![nh, (2 * n) as u8, 4, sl, (n - 1) as u8, 0, 0, 0];
        for s in segs.iter().rev() {
            srh.extend_from_slice(&a6(s).octets());
        }
        let len = (srh.len() + inner.len()) as u16;
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&len.to_be_bytes());
        p.extend_from_slice(&[43, 64]);
        p.extend_from_slice(&a6("fc00:b::2").octets());
        p.extend_from_slice(&a6(dst).octets());
        p.extend_from_slice(&srh);
        p.extend_from_slice(inner);
        p
    }

    /// pg0: the SR underlay (fc00::/16 via the router); pg1 / pg2: an IPv4
    /// SF's in and out (End.AD, inner IPv4); pg3: an Ethernet SF in and out
    /// (End.AD, inner Ethernet); pg4: another (End.AS, inner Ethernet).
    fn lab() -> Harness {
        let mut t = Tables::default();
        let mut p0 = Interface::port(0, "pg0", 0, PG[0], IfMode::L3 { vrf: 0 });
        p0.ip6 = vec![(a6("fc00:b::1"), 64)];
        let mut p1 = Interface::port(1, "pg1", 1, PG[1], IfMode::L3 { vrf: 0 });
        p1.ip4 = vec![(Ipv4Addr::new(10, 5, 1, 1), 24)];
        let mut p2 = Interface::port(2, "pg2", 2, PG[2], IfMode::L3 { vrf: 0 });
        p2.ip4 = vec![(Ipv4Addr::new(10, 5, 2, 1), 24)];
        let p3 = Interface::port(3, "pg3", 3, PG[3], IfMode::Disabled);
        let p4 = Interface::port(4, "pg4", 4, PG[4], IfMode::Disabled);
        for i in [p0, p1, p2, p3, p4] {
            t.set_interface(i);
        }
        let mut sr = SrTable::new();
        {
            let mut c = t.fib.control();
            c.sync_interfaces(&t).unwrap();
            c.add_static_neighbor(0, IpAddr::V6(a6("fc00:b::2")), ROUTER).unwrap();
            c.add_static_neighbor(1, IpAddr::V4(Ipv4Addr::new(10, 5, 1, 2)), SF).unwrap();
            c.add_route(0, "fc00::/16".parse().unwrap(), &[RoutePath::via(a6("fc00:b::2"), 0)]).unwrap();
            let to_sf = c.hold_neighbor_adjacency(1, IpAddr::V4(Ipv4Addr::new(10, 5, 1, 2))).unwrap();
            let segs = [a6("fc00:3::1")];
            let mut e = EncapParams::new(a6("fc00:1::a"), &segs);
            e.l2 = true;
            let cache = EncapTemplate::new(&e).unwrap();
            let sids = [
                (
                    AD4,
                    "fc00:1::a4",
                    Behavior::EndAd,
                    ProxyKind::Dynamic {
                        proxy: DynamicProxy { inner: Inner::Ipv4, to_sf: Next::Adjacency(to_sf) },
                        cache: Arc::new(AdCache::new()),
                    },
                    2,
                    ProxyClaim::Ipv4,
                ),
                (
                    AD2,
                    "fc00:1::a2",
                    Behavior::EndAd,
                    ProxyKind::Dynamic {
                        proxy: DynamicProxy { inner: Inner::Ethernet, to_sf: Next::Interface(3) },
                        cache: Arc::new(AdCache::new()),
                    },
                    3,
                    ProxyClaim::Frames,
                ),
                (
                    AS2,
                    "fc00:1::a5",
                    Behavior::EndAs,
                    ProxyKind::Static(Box::new(StaticProxy {
                        inner: Inner::Ethernet,
                        to_sf: Next::Interface(4),
                        cache,
                    })),
                    4,
                    ProxyClaim::Frames,
                ),
            ];
            for (i, sid, b, kind, return_if, claim) in sids {
                let mut s = LocalSid::new(a6(sid), 0, b);
                s.proxy = Some(Arc::new(SrProxy { kind, return_if }));
                let path = RoutePath::special(NextHop::SrLocalSid { index: i, decap: b.decapsulates() });
                c.set_route_source(0, format!("{sid}/128").parse().unwrap(), RouteSource::Srv6, vec![path]).unwrap();
                sr.set_localsid(i, Some(s)).unwrap();
                sr.set_proxy_return(return_if, Some((i, claim)));
            }
        }
        t.sr = Arc::new(sr);
        Harness::new(t, 1024)
    }

    fn counters(h: &Harness, index: u32) -> [u64; 6] {
        let (p, b, d) = h.shared.sr.localsid(index).get();
        let (rp, rb, rd) = h.shared.sr.proxy_return(index).get();
        [p, b, d, rp, rb, rd]
    }

    #[test]
    fn end_ad_ipv4_to_the_sf_and_back_with_the_cached_headers() {
        let mut h = lab();
        // Back from the SF before anything went to it: nothing to push.
        let early = eth(PG[2], SF, 0x0800, &ip4_udp(9));
        h.inject(2, &[&early]);
        assert_eq!(h.take_tx(0).len(), 0);
        assert_eq!(h.error("sr-proxy-return", "proxy cache empty"), 1);

        let inner = ip4_udp(30);
        let pkt = sr_packet("fc00:1::a4", 1, &["fc00:1::a4", "fc00:3::1"], 4, &inner);
        h.inject(0, &[&eth(PG[0], ROUTER, 0x86dd, &pkt)]);
        let out = h.take_tx(1);
        assert_eq!(out.len(), 1);
        // To the SF: the plain inner packet, routed (TTL - 1) to its MAC.
        assert_eq!((&out[0][0..6], &out[0][6..12], &out[0][12..14]), (&SF.0[..], &PG[1].0[..], &[8u8, 0][..]));
        assert_eq!((out[0][14 + 8], &out[0][14 + 12..]), (29, &inner[12..]));
        // The SF routes it back on pg2 (padded to the Ethernet minimum).
        let mut back = out[0][14..].to_vec();
        back[8] = 28;
        let c = vswitch_wire::checksum::checksum(&{
            let mut hd = back[..20].to_vec();
            hd[10..12].copy_from_slice(&[0, 0]);
            hd
        });
        back[10..12].copy_from_slice(&c.to_be_bytes());
        let mut frame = eth(PG[2], SF, 0x0800, &back);
        frame.resize(60, 0);
        h.graph.add_trace("pg-input", 1).unwrap();
        h.inject(2, &[&frame]);
        let out = h.take_tx(0);
        assert_eq!(out.len(), 1);
        let p = &out[0][14..];
        // The outer headers as End left them (SL 0, DA the next SID), hop
        // limit one lower (ip6-rewrite), the inner TTL one lower again.
        assert_eq!((&p[24..40], p[43], p[7]), (&a6("fc00:3::1").octets()[..], 0, 63));
        assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), 40 + back.len(), "payload length");
        assert_eq!(&p[..4], &pkt[..4]);
        assert_eq!((p.len(), p[80 + 8], &p[80 + 12..]), (80 + back.len(), 27, &back[12..]));
        assert_eq!(
            h.graph.trace_log().path(1),
            vec!["pg-input", "ethernet-input", "sr-proxy-return", "ip6-lookup", "ip6-rewrite", "interface-output"]
        );
        assert_eq!(counters(&h, AD4), [1, pkt.len() as u64, 0, 1, back.len() as u64, 1]);
        // ARP from the SF is not claimed: arp-input answers it.
        let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
        arp.extend_from_slice(&SF.0);
        arp.extend_from_slice(&[10, 5, 2, 2, 0, 0, 0, 0, 0, 0, 10, 5, 2, 1]);
        h.inject(2, &[&eth(MacAddr([0xff; 6]), SF, 0x0806, &arp)]);
        let reply = h.take_tx(2);
        assert_eq!((reply.len(), &reply[0][12..14], reply[0][21]), (1, &[8u8, 6][..], 2), "ARP reply");
        h.assert_no_leak();
    }

    #[test]
    fn ethernet_proxies_send_the_inner_frame_and_take_every_frame_back() {
        let mut h = lab();
        let frame = eth(mac(0x77), mac(0x66), 0x88b5, b"an l2 payload of some length.....");
        // End.AD, inner Ethernet.
        let pkt = sr_packet("fc00:1::a2", 1, &["fc00:1::a2", "fc00:3::1"], 143, &frame);
        h.inject(0, &[&eth(PG[0], ROUTER, 0x86dd, &pkt)]);
        assert_eq!(h.take_tx(3), vec![frame.clone()]);
        h.inject(3, &[&frame]);
        let out = h.take_tx(0);
        assert_eq!(out.len(), 1);
        let p = &out[0][14..];
        assert_eq!((&p[24..40], p[43], p[40], &p[80..]), (&a6("fc00:3::1").octets()[..], 0, 143, &frame[..]));
        assert_eq!(counters(&h, AD2), [1, pkt.len() as u64, 0, 1, frame.len() as u64, 0]);
        // End.AS, inner Ethernet: its own headers on the way back,
        // whatever the SRH said on the way out.
        let pkt = sr_packet("fc00:1::a5", 1, &["fc00:1::a5", "fc00:9::9"], 143, &frame);
        h.inject(0, &[&eth(PG[0], ROUTER, 0x86dd, &pkt)]);
        assert_eq!(h.take_tx(4), vec![frame.clone()]);
        h.inject(4, &[&frame]);
        let out = h.take_tx(0);
        assert_eq!(out.len(), 1);
        let p = &out[0][14..];
        assert_eq!((&p[8..24], &p[24..40]), (&a6("fc00:1::a").octets()[..], &a6("fc00:3::1").octets()[..]));
        assert_eq!((p[6], p[40], &p[64..]), (43, 143, &frame[..]));
        assert_eq!(counters(&h, AS2), [1, pkt.len() as u64, 0, 1, frame.len() as u64, 0]);
        // An SL-0 packet at End.AD: counted, an ICMPv6 error to its source.
        let bad = sr_packet("fc00:1::a2", 0, &["fc00:1::a2", "fc00:3::1"], 143, &frame);
        h.inject(0, &[&eth(PG[0], ROUTER, 0x86dd, &bad)]);
        let icmp = h.take_tx(0);
        assert_eq!((icmp.len(), icmp[0][14 + 6], icmp[0][14 + 40]), (1, 58, 4), "Parameter Problem");
        assert_eq!(h.error("sr-localsid-d", "segments left zero at non-final sid"), 1);
        assert_eq!(counters(&h, AD2)[2], 1);
        h.assert_no_leak();
    }

    #[test]
    fn ip_length_leaves_out_frame_padding() {
        let mut v4 = [0u8; 46];
        (v4[0], v4[3]) = (0x45, 28);
        assert_eq!(ip_len(&v4, Inner::Ipv4), Some(28));
        assert_eq!(ip_len(&v4, Inner::Ipv6), None);
        v4[3] = 47;
        assert_eq!(ip_len(&v4, Inner::Ipv4), None, "longer than what arrived");
        let mut v6 = [0u8; 60];
        (v6[0], v6[5]) = (0x60, 8);
        assert_eq!(ip_len(&v6, Inner::Ipv6), Some(48));
    }
}
