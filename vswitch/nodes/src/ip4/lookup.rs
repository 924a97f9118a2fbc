//! ip4-lookup: longest-prefix match in the packet's VRF, load-balance,
//! adjacency, and by the adjacency's kind the next node.
//!
//! The destinations of a vector are gathered first and looked up with the
//! batched DIR-24-8 lookup when the vector is in one VRF (the usual case),
//! so the table's cache misses overlap. A load-balance with more than one
//! bucket picks its adjacency by a flow hash of the 5-tuple (the ports are
//! left out for fragments and protocols without ports, so every fragment
//! of a datagram takes the same path), stored in `meta.flow_hash`; a
//! single path needs no hash. The adjacency index goes to `meta.adj`.
//!
//! Next by adjacency: rewrite → ip4-rewrite, local → ip4-local, glean and
//! incomplete → ip4-arp, unreachable (host unreachable) and prohibited
//! (administratively prohibited) → ip4-icmp-error, punt → punt, drop and
//! no route at all → dropped and counted, a prefix steered into an SR
//! policy → sr-pl-rewrite-encaps (the policy's index in `meta.opaque[0]`).

use super::icmp_error::request_icmp_error;
use crate::ip::punt::punt_reason;
use crate::{Cx, Tables};
use std::fmt;
use std::net::Ipv4Addr;
use vswitch_fib::adj::AdjKind;
use vswitch_fib::lb::flow_hash_v4;
use vswitch_graph::{errors, next_arcs, Node, PacketId, VECTOR_SIZE};
use vswitch_packet::MetaFlags;
use vswitch_wire::icmpv4::{icmpv4_type, icmpv4_unreach};
use vswitch_wire::ip_protocol;

next_arcs! {
    /// Where ip4-lookup sends packets.
    pub enum Ip4LookupNext {
        Rewrite = "ip4-rewrite",
        Local = "ip4-local",
        Arp = "ip4-arp",
        IcmpError = "ip4-icmp-error",
        Punt = "punt",
        SrPolicy = "sr-pl-rewrite-encaps",
    }
}

errors! {
    /// What ip4-lookup counts and drops.
    pub enum Ip4LookupError {
        NoRoute = "no route",
        DropRoute = "dropped by a drop route",
        Unreachable = "unreachable route (ICMP sent to ip4-icmp-error)",
        Prohibited = "prohibited route (ICMP sent to ip4-icmp-error)",
        Punted = "punt route (not a drop)",
    }
}

/// SCTP (has ports where TCP and UDP have them).
const SCTP: u8 = 132;

/// Trace record.
pub struct Ip4LookupTrace {
    vrf: u32,
    dst: Ipv4Addr,
    lb: Option<u32>,
    adj: u32,
    kind: AdjKind,
    flow_hash: u32,
}

impl fmt::Display for Ip4LookupTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.lb {
            None => write!(f, "vrf {} {}: no route", self.vrf, self.dst),
            Some(lb) => write!(
                f,
                "vrf {} {}: lb {} adj {} {:?} flow hash 0x{:08x}",
                self.vrf, self.dst, lb, self.adj, self.kind, self.flow_hash
            ),
        }
    }
}

/// The flow hash of an IPv4 packet (`d` from its IP header): addresses,
/// protocol, and the ports of an unfragmented TCP, UDP or SCTP packet.
#[inline(always)]
pub fn ip4_flow_hash(d: &[u8]) -> u32 {
    let hl = ((d[0] & 0x0f) as usize) << 2;
    let proto = d[9];
    let src = u32::from_be_bytes([d[12], d[13], d[14], d[15]]);
    let dst = u32::from_be_bytes([d[16], d[17], d[18], d[19]]);
    let frag = u16::from_be_bytes([d[6], d[7]]) & 0x3fff != 0;
    let (sp, dp) = match d.get(hl..hl + 4) {
        Some(l4) if !frag && matches!(proto, ip_protocol::TCP | ip_protocol::UDP | SCTP) => {
            (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]))
        }
        _ => (0, 0),
    };
    flow_hash_v4(src, dst, proto, sp, dp)
}

/// The ip4-lookup node.
pub struct Ip4Lookup {
    dst: Box<[u32; VECTOR_SIZE]>,
    lb: Box<[Option<u32>; VECTOR_SIZE]>,
}

impl Default for Ip4Lookup {
    fn default() -> Self {
        Ip4Lookup { dst: Box::new([0; VECTOR_SIZE]), lb: Box::new([None; VECTOR_SIZE]) }
    }
}

impl Ip4Lookup {
    /// A new node.
    pub fn new() -> Self {
        Ip4Lookup::default()
    }
}

impl Node<Tables> for Ip4Lookup {
    const NAME: &'static str = "ip4-lookup";
    type Next = Ip4LookupNext;
    type Error = Ip4LookupError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use Ip4LookupError as E;
        use Ip4LookupNext as Next;
        let tables = cx.state;
        let fib = &*tables.fib;
        for chunk in vector.chunks(VECTOR_SIZE) {
            let n = chunk.len();
            let vrf0 = cx.bufs.meta(chunk[0]).vrf;
            let mut one_vrf = true;
            for (&p, dst) in chunk.iter().zip(self.dst.iter_mut()) {
                let d = cx.bufs.data(p);
                // ip4-input let no packet shorter than a header through.
                *dst = d.first_chunk::<20>().map_or(0, |h| u32::from_be_bytes([h[16], h[17], h[18], h[19]]));
                one_vrf &= cx.bufs.meta(p).vrf == vrf0;
            }
            if one_vrf {
                fib.lookup4_batch(vrf0, &self.dst[..n], &mut self.lb[..n]);
            } else {
                for ((&p, &dst), lb) in chunk.iter().zip(self.dst.iter()).zip(self.lb.iter_mut()) {
                    *lb = fib.lookup4(cx.bufs.meta(p).vrf, dst);
                }
            }
            // Runs of packets share a route: its load-balance and, for a
            // single path, its adjacency and kind are read once per run.
            let (mut last_lb, mut multi, mut single) = (u32::MAX, false, 0);
            let (mut last_adj, mut kind, mut index) = (u32::MAX, AdjKind::Drop, 0);
            for (i, &p) in chunk.iter().enumerate() {
                let (d, m) = cx.bufs.data_and_meta_mut(p);
                let traced = m.flags & MetaFlags::TRACED != 0;
                let Some(lb) = self.lb[i] else {
                    if traced {
                        let t = Ip4LookupTrace {
                            vrf: m.vrf,
                            dst: Ipv4Addr::from(self.dst[i]),
                            lb: None,
                            adj: 0,
                            kind: AdjKind::Drop,
                            flow_hash: 0,
                        };
                        cx.trace(p, t);
                    }
                    cx.discard(p, E::NoRoute);
                    continue;
                };
                if lb != last_lb {
                    last_lb = lb;
                    multi = fib.n_buckets(lb) > 1;
                    if !multi {
                        single = fib.choose(lb, 0);
                    }
                }
                let adj = if multi {
                    if m.flags & MetaFlags::FLOW_HASH_VALID == 0 {
                        m.flow_hash = ip4_flow_hash(d);
                        m.flags |= MetaFlags::FLOW_HASH_VALID;
                    }
                    fib.choose(lb, m.flow_hash)
                } else {
                    single
                };
                m.adj = adj;
                if adj != last_adj {
                    last_adj = adj;
                    let a = fib.adj(adj);
                    (kind, index) = (a.kind, a.index());
                }
                if traced {
                    let t = Ip4LookupTrace {
                        vrf: m.vrf,
                        dst: Ipv4Addr::from(self.dst[i]),
                        lb: Some(lb),
                        adj,
                        kind,
                        flow_hash: m.flow_hash,
                    };
                    cx.trace(p, t);
                }
                match kind {
                    AdjKind::Rewrite => cx.enqueue(Next::Rewrite, p),
                    AdjKind::Local => cx.enqueue(Next::Local, p),
                    AdjKind::Glean | AdjKind::Incomplete => cx.enqueue(Next::Arp, p),
                    AdjKind::Unreachable => {
                        let m = cx.bufs.meta_mut(p);
                        request_icmp_error(m, icmpv4_type::DEST_UNREACHABLE, icmpv4_unreach::HOST, 0);
                        cx.count(E::Unreachable, 1);
                        cx.enqueue(Next::IcmpError, p);
                    }
                    AdjKind::Prohibit => {
                        let m = cx.bufs.meta_mut(p);
                        request_icmp_error(m, icmpv4_type::DEST_UNREACHABLE, icmpv4_unreach::ADMIN_PROHIBITED, 0);
                        cx.count(E::Prohibited, 1);
                        cx.enqueue(Next::IcmpError, p);
                    }
                    AdjKind::Punt => {
                        cx.bufs.meta_mut(p).opaque[0] = punt_reason::ROUTE;
                        cx.count(E::Punted, 1);
                        cx.enqueue(Next::Punt, p);
                    }
                    AdjKind::SrPolicy => {
                        cx.bufs.meta_mut(p).opaque[0] = index;
                        cx.enqueue(Next::SrPolicy, p);
                    }
                    // Local SIDs are IPv6 routes only.
                    AdjKind::Drop | AdjKind::SrLocalSid | AdjKind::SrLocalSidDecap => cx.discard(p, E::DropRoute),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_hash_ignores_ports_of_fragments_and_portless_protocols() {
        let mut d = [0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0, 53, 0, 8, 0, 0];
        let whole = ip4_flow_hash(&d);
        d[21] = 0x3a; // another source port
        assert_ne!(ip4_flow_hash(&d), whole);
        d[6] = 0x20; // first fragment: ports are not used
        let frag = ip4_flow_hash(&d);
        d[21] = 0x39;
        assert_eq!(ip4_flow_hash(&d), frag);
        d[6] = 0;
        d[9] = 47; // GRE: no ports
        let gre = ip4_flow_hash(&d);
        d[21] = 0x77;
        assert_eq!(ip4_flow_hash(&d), gre);
        assert_eq!(ip4_flow_hash(&d[..20]), ip4_flow_hash(&d[..20]), "short packets hash without ports");
    }
}
