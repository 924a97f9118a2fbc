//! sr-localsid and sr-localsid-d: the local SIDs (RFC 8986 section 4).
//!
//! ip6-lookup found a route whose adjacency is an SRv6 local SID and put
//! the SID's index (the adjacency's index word) in `meta.opaque[0]`:
//! `SrLocalSid` adjacencies come to sr-localsid (End, End.X, End.T and
//! End.B6.Encaps[.Red], with the PSP / USP / USD / NEXT-C-SID flavors),
//! `SrLocalSidDecap` ones to sr-localsid-d (End.DX2, End.DX4, End.DX6,
//! End.DT4, End.DT6, End.DT46, and the SR proxies End.AS and End.AD, whose
//! outer headers go; End.AM keeps them and comes to sr-localsid). Both run the SID's `vswitch-srv6` behaviour
//! on the packet in its buffer (headroom included) and send the packet on
//! by the outcome:
//!
//! - forward (an IPv6 packet, destination rewritten): ip6-lookup in the
//!   packet's VRF (End), in the SID's table (End.T), or straight to the
//!   SID's neighbor adjacency (End.X: ip6-rewrite, or ip6-discover while
//!   the neighbor is unresolved); End.B6.Encaps: the new outer packet,
//!   marked locally originated, to ip6-lookup in the policy's VRF;
//! - decapsulated: an IPv4/IPv6 inner packet to ip4-input / ip6-input
//!   (validated there like any received packet) in the SID's table
//!   (End.DT*; End with USD: the packet's VRF), or to the SID's neighbor
//!   adjacency (End.DX4/DX6: ip4-rewrite / ip6-rewrite, or ip4-arp /
//!   ip6-discover); an Ethernet frame out of the SID's interface
//!   (End.DX2: l2-output when that interface rewrites VLAN tags, else
//!   interface-output);
//! - SR proxies (draft-ietf-spring-sr-service-programming section 6), to
//!   their service function (SF): End.AS / End.AD send the inner packet to
//!   the SF's neighbor adjacency or the inner frame out of its interface,
//!   as End.DX4/6/2 do; End.AD first publishes the outer headers (after
//!   End) in the SID's shared cache ([`super::proxy_cache`]), which
//!   sr-proxy-return pushes again on the traffic the SF sends back; End.AM
//!   sends the IPv6 packet with DA = Segment List\[0\] to the SF's
//!   adjacency, as End.X does;
//! - local (the SID is the destination and the upper layer is one the SID
//!   answers, ICMPv6 by default): ip6-local, which answers a ping to the
//!   SID;
//! - dropped: counted under the behaviour's reason; when the outcome asks
//!   for an ICMPv6 error (Time Exceeded, Parameter Problem pointing at
//!   Segments Left or the upper-layer header) the packet, as received,
//!   goes to ip6-icmp-error.
//!
//! Each SID counts the packets and bytes it processed and the packets it
//! dropped, per worker ([`SrCounters`]). Nothing here allocates, locks or
//! calls the kernel per packet; the adjacency of End.X / End.DX* is read
//! once per run of packets that share it.

use super::table::{Behavior, LocalSid, ProxyKind};
use super::{request_icmp, SrCounters, SrError};
use crate::ip::LOCALLY_ORIGINATED;
use crate::ip6::lookup::ip6_flow_hash;
use crate::{Cx, IfMode, Tables};
use std::fmt;
use std::net::Ipv6Addr;
use std::sync::Arc;
use vswitch_fib::adj::{AdjKind, Adjacency};
use vswitch_graph::{next_arcs, Node, PacketId};
use vswitch_packet::{Meta, MetaFlags};
use vswitch_srv6::behavior::{self, EndOpts, IcmpError, Inner, Next, Outcome};
use vswitch_srv6::DropReason;

next_arcs! {
    /// Where sr-localsid and sr-localsid-d send packets.
    pub enum SrLocalSidNext {
        Lookup6 = "ip6-lookup",
        Rewrite6 = "ip6-rewrite",
        Discover6 = "ip6-discover",
        Local6 = "ip6-local",
        IcmpError6 = "ip6-icmp-error",
        Input4 = "ip4-input",
        Input6 = "ip6-input",
        Rewrite4 = "ip4-rewrite",
        Arp4 = "ip4-arp",
        L2Output = "l2-output",
        Transmit = "interface-output",
    }
}

/// Trace record.
pub struct SrLocalSidTrace {
    index: u32,
    sid: Ipv6Addr,
    behavior: &'static str,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    outcome: Outcome,
}

impl fmt::Display for SrLocalSidTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sid {} {} {}: {} -> {}: ", self.index, self.sid, self.behavior, self.src, self.dst)?;
        match self.outcome {
            Outcome::Forward { span, dst, next } => write!(f, "forward to {dst} via {next:?}, len {}", span.len),
            Outcome::Decap { span, inner, next } => write!(f, "decapsulated {inner:?} to {next:?}, len {}", span.len),
            Outcome::Local { protocol, .. } => write!(f, "local, protocol {protocol}"),
            Outcome::Drop { reason, icmp } => match icmp {
                Some(e) => write!(f, "drop: {reason}, {e:?}"),
                None => write!(f, "drop: {reason}"),
            },
        }
    }
}

/// The sr-localsid node (End, End.X, End.T, End.B6.Encaps[.Red], End.AM).
pub struct SrLocalSid {
    counters: Arc<SrCounters>,
}

impl SrLocalSid {
    /// Counts into the worker's `counters`.
    pub fn new(counters: Arc<SrCounters>) -> Self {
        SrLocalSid { counters }
    }
}

/// The sr-localsid-d node (End.DX2/DX4/DX6, End.DT4/DT6/DT46, End.AS,
/// End.AD).
pub struct SrLocalSidD {
    counters: Arc<SrCounters>,
}

impl SrLocalSidD {
    /// Counts into the worker's `counters`.
    pub fn new(counters: Arc<SrCounters>) -> Self {
        SrLocalSidD { counters }
    }
}

impl Node<Tables> for SrLocalSid {
    const NAME: &'static str = "sr-localsid";
    type Next = SrLocalSidNext;
    type Error = SrError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        run(cx, vector, &self.counters);
    }
}

impl Node<Tables> for SrLocalSidD {
    const NAME: &'static str = "sr-localsid-d";
    type Next = SrLocalSidNext;
    type Error = SrError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        run(cx, vector, &self.counters);
    }
}

/// The last adjacency read, reused for a run of packets to it.
struct AdjCache {
    idx: u32,
    adj: Adjacency,
}

impl AdjCache {
    #[inline(always)]
    fn get(&mut self, tables: &Tables, idx: u32) -> &Adjacency {
        if idx != self.idx {
            self.idx = idx;
            self.adj = tables.fib.adj(idx);
        }
        &self.adj
    }
}

/// The IPv6 address at `at`, if the packet is that long.
pub(crate) fn addr(d: &[u8], at: usize) -> Ipv6Addr {
    d.get(at..at + 16).and_then(|b| <[u8; 16]>::try_from(b).ok()).map_or(Ipv6Addr::UNSPECIFIED, Ipv6Addr::from)
}

/// The VRF of a routed interface (where held packets are looked up again).
fn vrf_of(tables: &Tables, sw_if: u32, otherwise: u32) -> u32 {
    match tables.interface(sw_if).map(|i| i.mode) {
        Some(IfMode::L3 { vrf }) => vrf,
        _ => otherwise,
    }
}

/// Trims a decapsulated IPv4 packet to its total length; `false` if its
/// header does not fit the packet (ip4-rewrite trusts it).
#[inline]
fn ip4_fits(d: &[u8], m: &mut Meta) -> bool {
    let hl = usize::from(d[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([d[2], d[3]]));
    if hl < 20 || total < hl || total > d.len() {
        return false;
    }
    m.len = total as u16;
    true
}

/// Trims a decapsulated IPv6 packet to its payload length.
#[inline]
fn ip6_fits(d: &[u8], m: &mut Meta) -> bool {
    let total = 40 + usize::from(u16::from_be_bytes([d[4], d[5]]));
    if total > d.len() {
        return false;
    }
    m.len = total as u16;
    true
}

fn run<N>(cx: &mut Cx<'_, N>, vector: &[PacketId], counters: &SrCounters)
where
    N: Node<Tables, Next = SrLocalSidNext, Error = SrError>,
{
    use SrLocalSidNext as To;
    let tables = cx.state;
    let sr = &*tables.sr;
    let keys = sr.keys();
    let mut cache = AdjCache { idx: u32::MAX, adj: Adjacency::DROP };
    // Runs of packets to one SID share its lookup, options and counter
    // update.
    let mut run_index = u32::MAX;
    let mut run: Option<(&LocalSid, EndOpts<'_>)> = None;
    let (mut packets, mut bytes) = (0u64, 0u64);
    for &p in vector {
        let m = cx.bufs.meta(p);
        let (index, start, len) = (m.opaque[0], m.current as usize, m.len as usize);
        let traced = m.flags & MetaFlags::TRACED != 0;
        if index != run_index {
            counters.localsid(run_index).add(packets, bytes);
            (packets, bytes) = (0, 0);
            run_index = index;
            run = sr.localsid(index).map(|s| (s, s.opts(keys)));
        }
        let Some((sid, opts)) = &run else {
            cx.discard(p, SrError::NoSid);
            continue;
        };
        let c = counters.localsid(index);
        let before = traced.then(|| {
            let d = cx.bufs.data(p);
            (addr(d, 8), addr(d, 24))
        });
        // End.B6.Encaps picks the policy's segment list by flow.
        let mut policy_vrf = None;
        let mut flow_hash = 0;
        if let Behavior::EndB6Encaps { policy } | Behavior::EndB6EncapsRed { policy } = sid.behavior {
            let (d, m) = cx.bufs.data_and_meta_mut(p);
            if m.flags & MetaFlags::FLOW_HASH_VALID == 0 && d.len() >= 40 {
                m.flow_hash = ip6_flow_hash(d);
                m.flags |= MetaFlags::FLOW_HASH_VALID;
            }
            flow_hash = m.flow_hash;
            policy_vrf = sr.policy(policy).map(|pol| pol.vrf);
        }
        let buf = cx.bufs.buffer_mut(p);
        let out = match sid.behavior {
            Behavior::End => behavior::end(buf, start, len, opts),
            Behavior::EndX { adj } => behavior::end_x(buf, start, len, opts, adj),
            Behavior::EndT { vrf } => behavior::end_t(buf, start, len, opts, vrf),
            Behavior::EndDx2 { sw_if } => behavior::end_dx2(buf, start, len, opts, sw_if),
            Behavior::EndDx4 { adj } => behavior::end_dx4(buf, start, len, opts, adj),
            Behavior::EndDx6 { adj } => behavior::end_dx6(buf, start, len, opts, adj),
            Behavior::EndDt4 { vrf } => behavior::end_dt4(buf, start, len, opts, vrf),
            Behavior::EndDt6 { vrf } => behavior::end_dt6(buf, start, len, opts, vrf),
            Behavior::EndDt46 { vrf } => behavior::end_dt46(buf, start, len, opts, vrf, vrf),
            Behavior::EndB6Encaps { policy } | Behavior::EndB6EncapsRed { policy } => match sr.policy(policy) {
                None => {
                    c.drop();
                    cx.discard(p, SrError::NoPolicy);
                    continue;
                }
                Some(pol) => {
                    let t = pol.policy.select(flow_hash);
                    if matches!(sid.behavior, Behavior::EndB6Encaps { .. }) {
                        behavior::end_b6_encaps(buf, start, len, opts, t, flow_hash)
                    } else {
                        behavior::end_b6_encaps_red(buf, start, len, opts, t, flow_hash)
                    }
                }
            },
            Behavior::EndAs | Behavior::EndAd | Behavior::EndAm => match sid.proxy.as_deref().map(|x| &x.kind) {
                Some(ProxyKind::Static(sp)) if sid.behavior == Behavior::EndAs => {
                    behavior::end_as(buf, start, len, opts, sp)
                }
                Some(ProxyKind::Dynamic { proxy, cache }) if sid.behavior == Behavior::EndAd => {
                    // The outer headers, as End left them, are still in
                    // front of the inner packet: published from there.
                    let out = behavior::end_ad_in_place(buf, start, len, opts, proxy);
                    if let Outcome::Decap { span, .. } = out {
                        cache.publish(buf.get(start..span.start).unwrap_or(&[]));
                    }
                    out
                }
                Some(ProxyKind::Masquerading { to_sf }) if sid.behavior == Behavior::EndAm => {
                    behavior::end_am(buf, start, len, opts, *to_sf)
                }
                _ => Outcome::drop(DropReason::TemplateMismatch),
            },
        };
        if let Outcome::Forward { span, .. } = out {
            if policy_vrf.is_none() {
                // End, End.X, End.T: ip6-rewrite decrements the hop limit,
                // which the behaviour checked and decremented.
                if let Some(h) = buf.get_mut(span.start + 7) {
                    *h = h.wrapping_add(1);
                }
            }
        }
        if let Some((src, dst)) = before {
            let t = SrLocalSidTrace { index, sid: sid.sid, behavior: sid.behavior.name(), src, dst, outcome: out };
            cx.trace(p, t);
        }
        let to = match out {
            Outcome::Forward { span, next, .. } => {
                let m = cx.bufs.meta_mut(p);
                (m.current, m.len, m.l3) = (span.start as u16, span.len as u16, span.start as u16);
                if let Some(vrf) = policy_vrf {
                    // End.B6.Encaps: a new outer packet, ours.
                    m.flags |= LOCALLY_ORIGINATED;
                    m.vrf = vrf;
                }
                match next {
                    Next::Lookup => Ok(To::Lookup6),
                    Next::Table(vrf) => {
                        m.vrf = vrf;
                        Ok(To::Lookup6)
                    }
                    Next::Adjacency(a) => to_adjacency(cx, tables, &mut cache, p, a, false),
                    Next::Interface(_) => Err(SrError::AdjacencyNotUsable),
                }
            }
            Outcome::Decap { span, inner, next } => {
                let m = cx.bufs.meta_mut(p);
                (m.current, m.len, m.l3) = (span.start as u16, span.len as u16, span.start as u16);
                match (inner, next) {
                    (Inner::Ipv4, Next::Lookup) => Ok(To::Input4),
                    (Inner::Ipv6, Next::Lookup) => Ok(To::Input6),
                    (Inner::Ipv4 | Inner::Ipv6, Next::Table(vrf)) => {
                        m.vrf = vrf;
                        Ok(if inner == Inner::Ipv4 { To::Input4 } else { To::Input6 })
                    }
                    // USD at an End.X SID: its adjacency is IPv6.
                    (Inner::Ipv4, Next::Adjacency(_)) if matches!(sid.behavior, Behavior::EndX { .. }) => {
                        Err(SrError::FamilyMismatch)
                    }
                    (Inner::Ipv4 | Inner::Ipv6, Next::Adjacency(a)) => {
                        let (d, m) = cx.bufs.data_and_meta_mut(p);
                        let fits = if inner == Inner::Ipv4 { ip4_fits(d, m) } else { ip6_fits(d, m) };
                        if fits {
                            to_adjacency(cx, tables, &mut cache, p, a, inner == Inner::Ipv4)
                        } else {
                            Err(SrError::InnerBadHeader)
                        }
                    }
                    (Inner::Ethernet, Next::Interface(oif)) => {
                        m.tx_if = oif;
                        m.l2 = m.current;
                        match tables.interface(oif) {
                            Some(out) if !out.rewrite.is_noop() => Ok(To::L2Output),
                            _ => Ok(To::Transmit),
                        }
                    }
                    _ => Err(SrError::AdjacencyNotUsable),
                }
            }
            Outcome::Local { span, .. } => {
                let m = cx.bufs.meta_mut(p);
                (m.current, m.len, m.l3) = (span.start as u16, span.len as u16, span.start as u16);
                Ok(To::Local6)
            }
            Outcome::Drop { reason, icmp } => {
                c.drop();
                let err = SrError::from_reason(reason);
                match icmp {
                    // No ip4-icmp-error arc here: only headends send ICMPv4.
                    Some(e) if !matches!(e, IcmpError::TtlExceededV4) => {
                        let m = cx.bufs.meta_mut(p);
                        m.l3 = m.current;
                        request_icmp(m, e);
                        cx.count(err, 1);
                        cx.count(SrError::IcmpSent, 1);
                        cx.enqueue(To::IcmpError6, p);
                    }
                    _ => cx.discard(p, err),
                }
                continue;
            }
        };
        match to {
            Ok(next) => {
                packets += 1;
                bytes += len as u64;
                cx.enqueue(next, p);
            }
            Err(e) => {
                c.drop();
                cx.discard(p, e);
            }
        }
    }
    counters.localsid(run_index).add(packets, bytes);
}

/// Sends `p` to adjacency `a` (an IPv4 one when `v4`): rewrite when it is
/// complete, neighbor resolution while it is not.
#[inline]
fn to_adjacency<N>(
    cx: &mut Cx<'_, N>,
    tables: &Tables,
    cache: &mut AdjCache,
    p: PacketId,
    a: u32,
    v4: bool,
) -> Result<SrLocalSidNext, SrError>
where
    N: Node<Tables, Next = SrLocalSidNext, Error = SrError>,
{
    use SrLocalSidNext as To;
    let adj = cache.get(tables, a);
    let (kind, sw_if) = (adj.kind, adj.sw_if);
    let m = cx.bufs.meta_mut(p);
    m.adj = a;
    match (kind, v4) {
        (AdjKind::Rewrite, false) => Ok(To::Rewrite6),
        (AdjKind::Rewrite, true) => Ok(To::Rewrite4),
        (AdjKind::Glean | AdjKind::Incomplete, _) => {
            // Held under the interface's VRF, where the release looks the
            // next hop up.
            m.vrf = vrf_of(tables, sw_if, m.vrf);
            Ok(if v4 { To::Arp4 } else { To::Discover6 })
        }
        _ => Err(SrError::AdjacencyNotUsable),
    }
}
