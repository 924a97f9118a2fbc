//! sr-pl-rewrite-encaps and sr-pl-rewrite-encaps-l2: SR policy headends
//! (RFC 8986 section 5).
//!
//! - sr-pl-rewrite-encaps: ip4-lookup or ip6-lookup found a route steered
//!   into a policy (an `SrPolicy` adjacency; its index is in
//!   `meta.opaque[0]`). H.Encaps or H.Encaps.Red per the policy: the
//!   inner TTL / hop limit is checked and decremented (an expired one gets
//!   ICMP Time Exceeded from ip4-icmp-error / ip6-icmp-error), and the
//!   policy's prebuilt outer IPv6 header and SRH are copied into the
//!   headroom.
//! - sr-pl-rewrite-encaps-l2: ethernet-input hands over every frame
//!   received on an interface steered into a policy; H.Encaps.L2 or
//!   H.Encaps.L2.Red push the headers in front of the whole frame (next
//!   header 143).
//!
//! A policy with several weighted segment lists takes one per flow: the
//! flow hash (the one ip4/ip6-lookup computed for ECMP, or computed here:
//! addresses, protocol, ports; for a frame its inner IP packet's, or its
//! MAC addresses) picks a bucket of the policy's table, so a flow keeps its
//! list and many flows share the lists by weight. The low 20 bits of the
//! hash are the outer flow label.
//!
//! The encapsulated packet is ours (marked locally originated: ip6-rewrite
//! sends it with the hop limit the policy gave it) and goes to ip6-lookup
//! in the policy's VRF. Each policy counts what it encapsulated and
//! dropped, per worker.

use super::table::{EncapKind, Policy};
use super::{request_icmp, IcmpNode, SrCounters, SrError};
use crate::ip::LOCALLY_ORIGINATED;
use crate::ip4::lookup::ip4_flow_hash;
use crate::ip6::lookup::ip6_flow_hash;
use crate::{Cx, Tables};
use std::fmt;
use std::net::Ipv6Addr;
use std::sync::Arc;
use vswitch_graph::{next_arcs, Node, PacketId};
use vswitch_packet::MetaFlags;
use vswitch_srv6::behavior::{self, EncapTemplate, Outcome};

next_arcs! {
    /// Where sr-pl-rewrite-encaps sends packets.
    pub enum SrEncapsNext {
        Lookup6 = "ip6-lookup",
        IcmpError4 = "ip4-icmp-error",
        IcmpError6 = "ip6-icmp-error",
    }
}

next_arcs! {
    /// Where sr-pl-rewrite-encaps-l2 sends packets.
    pub enum SrEncapsL2Next {
        Lookup6 = "ip6-lookup",
    }
}

/// Trace record of both nodes.
pub struct SrEncapsTrace {
    policy: u32,
    bsid: Ipv6Addr,
    encap: &'static str,
    list: usize,
    flow_hash: u32,
    outcome: Outcome,
}

impl fmt::Display for SrEncapsTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy {} bsid {} {} segment list {} flow hash 0x{:08x}: ",
            self.policy, self.bsid, self.encap, self.list, self.flow_hash
        )?;
        match self.outcome {
            Outcome::Forward { span, dst, .. } => write!(f, "encapsulated to {dst}, len {}", span.len),
            Outcome::Drop { reason, icmp: Some(e) } => write!(f, "drop: {reason}, {e:?}"),
            Outcome::Drop { reason, icmp: None } => write!(f, "drop: {reason}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The sr-pl-rewrite-encaps node (H.Encaps, H.Encaps.Red).
pub struct SrEncaps {
    counters: Arc<SrCounters>,
}

impl SrEncaps {
    /// Counts into the worker's `counters`.
    pub fn new(counters: Arc<SrCounters>) -> Self {
        SrEncaps { counters }
    }
}

/// The sr-pl-rewrite-encaps-l2 node (H.Encaps.L2, H.Encaps.L2.Red).
pub struct SrEncapsL2 {
    counters: Arc<SrCounters>,
}

impl SrEncapsL2 {
    /// Counts into the worker's `counters`.
    pub fn new(counters: Arc<SrCounters>) -> Self {
        SrEncapsL2 { counters }
    }
}

/// The flow hash of an IP packet (`d` from its header), 0 for anything
/// else.
#[inline]
pub(super) fn ip_flow_hash(d: &[u8]) -> u32 {
    match d.first().map(|b| b >> 4) {
        Some(4) if d.len() >= 20 => ip4_flow_hash(d),
        Some(6) if d.len() >= 40 => ip6_flow_hash(d),
        _ => 0,
    }
}

/// The flow hash of an Ethernet frame: its untagged IP packet's, or its
/// addresses and ethertype.
#[inline]
pub(super) fn frame_flow_hash(d: &[u8]) -> u32 {
    let et = d.get(12..14).map_or(0, |e| u16::from_be_bytes([e[0], e[1]]));
    match et {
        0x0800 | 0x86dd => ip_flow_hash(&d[14..]),
        _ => {
            let mut h: u32 = 0x811c_9dc5;
            for &b in d.iter().take(14) {
                h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
            }
            h
        }
    }
}

/// The segment list of a flow and its template. A policy with one list
/// needs no bucket lookup, which keeps the flow hash off the path to the
/// template.
#[inline(always)]
fn pick(pol: &Policy, flow_hash: u32) -> (usize, &EncapTemplate) {
    let lists = pol.policy.lists();
    let i = if lists.len() == 1 { 0 } else { pol.policy.select_index(flow_hash) };
    (i, &lists[i].template)
}

/// What the two headend nodes do differently; [`encap_vector`] is the rest.
trait Headend: Node<Tables, Error = SrError> {
    /// ip6-lookup.
    const LOOKUP6: Self::Next;
    /// ip4-icmp-error and ip6-icmp-error, for a node whose behaviours can
    /// ask for ICMP errors.
    const ICMP: Option<(Self::Next, Self::Next)>;
    /// The packet's flow hash (`d` from where the behaviour starts); `m`
    /// may already hold one.
    fn flow_hash(d: &[u8], m: &mut vswitch_packet::Meta) -> u32;
    /// The policy's behaviour (a template of the other node's kind is a
    /// mismatch).
    fn encap(kind: EncapKind, buf: &mut [u8], start: usize, len: usize, t: &EncapTemplate, hash: u32) -> Outcome;
}

impl Headend for SrEncaps {
    const LOOKUP6: SrEncapsNext = SrEncapsNext::Lookup6;
    const ICMP: Option<(SrEncapsNext, SrEncapsNext)> = Some((SrEncapsNext::IcmpError4, SrEncapsNext::IcmpError6));

    #[inline(always)]
    fn flow_hash(d: &[u8], m: &mut vswitch_packet::Meta) -> u32 {
        // ip4/ip6-lookup's, when it computed one for ECMP.
        if m.flags & MetaFlags::FLOW_HASH_VALID == 0 {
            m.flow_hash = ip_flow_hash(d);
            m.flags |= MetaFlags::FLOW_HASH_VALID;
        }
        m.flow_hash
    }

    #[inline(always)]
    fn encap(kind: EncapKind, buf: &mut [u8], start: usize, len: usize, t: &EncapTemplate, hash: u32) -> Outcome {
        match kind {
            EncapKind::Encaps => behavior::h_encaps(buf, start, len, t, hash),
            EncapKind::EncapsRed => behavior::h_encaps_red(buf, start, len, t, hash),
            EncapKind::L2 | EncapKind::L2Red => Outcome::drop(vswitch_srv6::DropReason::TemplateMismatch),
        }
    }
}

impl Headend for SrEncapsL2 {
    const LOOKUP6: SrEncapsL2Next = SrEncapsL2Next::Lookup6;
    const ICMP: Option<(SrEncapsL2Next, SrEncapsL2Next)> = None;

    #[inline(always)]
    fn flow_hash(d: &[u8], m: &mut vswitch_packet::Meta) -> u32 {
        m.flow_hash = frame_flow_hash(d);
        m.flags |= MetaFlags::FLOW_HASH_VALID;
        m.flow_hash
    }

    #[inline(always)]
    fn encap(kind: EncapKind, buf: &mut [u8], start: usize, len: usize, t: &EncapTemplate, hash: u32) -> Outcome {
        match kind {
            EncapKind::L2 => behavior::h_encaps_l2(buf, start, len, t, hash),
            EncapKind::L2Red => behavior::h_encaps_l2_red(buf, start, len, t, hash),
            EncapKind::Encaps | EncapKind::EncapsRed => Outcome::drop(vswitch_srv6::DropReason::TemplateMismatch),
        }
    }
}

/// The per-vector loop of both headends: the policy in `meta.opaque[0]`
/// (looked up, and its counters updated, once per run of packets into one
/// policy), the flow's segment list, the encapsulation, then ip6-lookup in
/// the policy's VRF, an ICMP error node, or a drop.
#[inline(always)]
fn encap_vector<N: Headend>(counters: &SrCounters, cx: &mut Cx<'_, N>, vector: &[PacketId]) {
    let sr = &*cx.state.sr;
    let (mut run_index, mut run) = (u32::MAX, None);
    let (mut packets, mut bytes) = (0u64, 0u64);
    for &p in vector {
        let (d, m) = cx.bufs.data_and_meta_mut(p);
        let (index, start, len) = (m.opaque[0], m.current as usize, m.len as usize);
        let traced = m.flags & MetaFlags::TRACED != 0;
        if index != run_index {
            counters.policy(run_index).add(packets, bytes);
            (packets, bytes, run_index, run) = (0, 0, index, sr.policy(index));
        }
        let Some(pol) = run else {
            cx.discard(p, SrError::NoPolicy);
            continue;
        };
        let flow_hash = N::flow_hash(d, m);
        let (list, t) = pick(pol, flow_hash);
        let out = N::encap(pol.encap, cx.bufs.buffer_mut(p), start, len, t, flow_hash);
        if traced {
            let t = SrEncapsTrace {
                policy: index,
                bsid: pol.policy.bsid(),
                encap: pol.encap.name(),
                list,
                flow_hash,
                outcome: out,
            };
            cx.trace(p, t);
        }
        match out {
            Outcome::Forward { span, .. } => {
                let m = cx.bufs.meta_mut(p);
                (m.current, m.len, m.l3) = (span.start as u16, span.len as u16, span.start as u16);
                m.flags |= LOCALLY_ORIGINATED;
                m.vrf = pol.vrf;
                (packets, bytes) = (packets + 1, bytes + len as u64);
                cx.enqueue(N::LOOKUP6, p);
            }
            Outcome::Drop { reason, icmp } => {
                counters.policy(index).drop();
                match (icmp, N::ICMP) {
                    (Some(e), Some((icmp4, icmp6))) => {
                        cx.count(SrError::from_reason(reason), 1);
                        cx.count(SrError::IcmpSent, 1);
                        let m = cx.bufs.meta_mut(p);
                        m.l3 = m.current;
                        let next = match request_icmp(m, e) {
                            IcmpNode::V4 => icmp4,
                            IcmpNode::V6 => icmp6,
                        };
                        cx.enqueue(next, p);
                    }
                    _ => cx.discard(p, SrError::from_reason(reason)),
                }
            }
            Outcome::Decap { .. } | Outcome::Local { .. } => {
                counters.policy(index).drop();
                cx.discard(p, SrError::TemplateMismatch);
            }
        }
    }
    counters.policy(run_index).add(packets, bytes);
}

impl Node<Tables> for SrEncaps {
    const NAME: &'static str = "sr-pl-rewrite-encaps";
    type Next = SrEncapsNext;
    type Error = SrError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        encap_vector(&self.counters, cx, vector);
    }
}

impl Node<Tables> for SrEncapsL2 {
    const NAME: &'static str = "sr-pl-rewrite-encaps-l2";
    type Next = SrEncapsL2Next;
    type Error = SrError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        encap_vector(&self.counters, cx, vector);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_hash_by_their_ip_packet_or_their_addresses() {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        let ip = [0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0, 53, 0, 8, 0, 0];
        f.extend_from_slice(&ip);
        assert_eq!(frame_flow_hash(&f), ip4_flow_hash(&ip));
        let arp = [&f[..12], &[0x08, 0x06][..]].concat();
        let mut other = arp.clone();
        other[11] = 3;
        assert_ne!(frame_flow_hash(&arp), frame_flow_hash(&other));
        assert_eq!(ip_flow_hash(&[0x45, 0]), 0, "too short to hash");
    }
}
