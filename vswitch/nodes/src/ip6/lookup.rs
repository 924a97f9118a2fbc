//! ip6-lookup: longest-prefix match in the packet's VRF, load-balance,
//! adjacency, and by the adjacency's kind the next node.
//!
//! The destinations of a vector are gathered first and looked up with the
//! batched lookup when the vector is in one VRF (the usual case), so the
//! table's cache misses overlap. A load-balance with more than one bucket
//! picks its adjacency by a flow hash of source, destination, flow label,
//! upper-layer protocol and, for TCP, UDP and SCTP, the ports (left out for
//! fragments, so every fragment of a datagram takes the same path), stored
//! in `meta.flow_hash`; a single path needs no hash. The adjacency index
//! goes to `meta.adj`.
//!
//! Next by adjacency: rewrite → ip6-rewrite, local → ip6-local, glean and
//! incomplete → ip6-discover (neighbor discovery), unreachable and
//! prohibited → ip6-icmp-error (destination unreachable, code 0 "no route"
//! or code 1 "administratively prohibited"), punt → punt, drop → dropped,
//! an SRv6 local SID → sr-localsid or sr-localsid-d, a prefix steered into
//! an SR policy → sr-pl-rewrite-encaps (with the SR table index of the SID
//! or policy in `meta.opaque[0]`).
//! No route at all is a drop too, with its own counter, and ip6-icmp-error
//! answers it with "no route to destination" (RFC 4443 3.1, code 0).

use super::Icmp6Error;
use crate::ip::punt::punt_reason;
use crate::{Cx, Tables};
use std::fmt;
use std::net::Ipv6Addr;
use vswitch_fib::adj::AdjKind;
use vswitch_fib::lb::flow_hash_v6;
use vswitch_graph::{errors, next_arcs, Node, PacketId, VECTOR_SIZE};
use vswitch_packet::MetaFlags;
use vswitch_wire::ip_protocol;
use vswitch_wire::ipv6_ext::{ipv6_walk_ext_headers, is_ext_header};

next_arcs! {
    /// Where ip6-lookup sends packets.
    pub enum Ip6LookupNext {
        Rewrite = "ip6-rewrite",
        Local = "ip6-local",
        Discover = "ip6-discover",
        IcmpError = "ip6-icmp-error",
        Punt = "punt",
        SrLocalSid = "sr-localsid",
        SrLocalSidD = "sr-localsid-d",
        SrPolicy = "sr-pl-rewrite-encaps",
    }
}

errors! {
    /// What ip6-lookup counts and drops.
    pub enum Ip6LookupError {
        NoRoute = "no route (no-route unreachable sent to ip6-icmp-error)",
        DropRoute = "dropped by a drop route",
        Unreachable = "unreachable route (ICMPv6 sent to ip6-icmp-error)",
        Prohibited = "prohibited route (ICMPv6 sent to ip6-icmp-error)",
        Punted = "punt route (not a drop)",
    }
}

/// SCTP (has ports where TCP and UDP have them).
const SCTP: u8 = 132;

/// Trace record.
pub struct Ip6LookupTrace {
    vrf: u32,
    dst: Ipv6Addr,
    lb: Option<u32>,
    adj: u32,
    kind: AdjKind,
    flow_hash: u32,
}

impl fmt::Display for Ip6LookupTrace {
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

/// The flow hash of an IPv6 packet (`d` from its IPv6 header): addresses,
/// flow label, upper-layer protocol, and the ports of an unfragmented TCP,
/// UDP or SCTP packet.
#[inline]
pub fn ip6_flow_hash(d: &[u8]) -> u32 {
    let src = u128::from_be_bytes(d[8..24].try_into().expect("16 bytes"));
    let dst = u128::from_be_bytes(d[24..40].try_into().expect("16 bytes"));
    let flow_label = u32::from_be_bytes([0, d[1] & 0x0f, d[2], d[3]]);
    let mut proto = d[6];
    let mut at = 40;
    let mut frag = false;
    if is_ext_header(proto) {
        match ipv6_walk_ext_headers(proto, &d[40..]) {
            Ok(up) => {
                proto = up.protocol;
                at += up.offset;
                frag = up.is_fragment;
            }
            Err(_) => frag = true,
        }
    }
    let (sp, dp) = match d.get(at..at + 4) {
        Some(l4) if !frag && matches!(proto, ip_protocol::TCP | ip_protocol::UDP | SCTP) => {
            (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]))
        }
        _ => (0, 0),
    };
    // The flow label goes into the source's low bits: a source that labels
    // its flows spreads them even between the same two hosts and ports.
    flow_hash_v6(src ^ u128::from(flow_label), dst, proto, sp, dp)
}

/// The ip6-lookup node.
pub struct Ip6Lookup {
    dst: Box<[u128; VECTOR_SIZE]>,
    lb: Box<[Option<u32>; VECTOR_SIZE]>,
}

impl Default for Ip6Lookup {
    fn default() -> Self {
        Ip6Lookup { dst: Box::new([0; VECTOR_SIZE]), lb: Box::new([None; VECTOR_SIZE]) }
    }
}

impl Ip6Lookup {
    /// A new node.
    pub fn new() -> Self {
        Ip6Lookup::default()
    }
}

impl Node<Tables> for Ip6Lookup {
    const NAME: &'static str = "ip6-lookup";
    type Next = Ip6LookupNext;
    type Error = Ip6LookupError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use Ip6LookupError as E;
        use Ip6LookupNext as Next;
        let tables = cx.state;
        let fib = &*tables.fib;
        for chunk in vector.chunks(VECTOR_SIZE) {
            let n = chunk.len();
            let vrf0 = cx.bufs.meta(chunk[0]).vrf;
            let mut one_vrf = true;
            for (&p, dst) in chunk.iter().zip(self.dst.iter_mut()) {
                let d = cx.bufs.data(p);
                *dst = u128::from_be_bytes(d[24..40].try_into().expect("16 bytes"));
                one_vrf &= cx.bufs.meta(p).vrf == vrf0;
            }
            if one_vrf {
                fib.lookup6_batch(vrf0, &self.dst[..n], &mut self.lb[..n]);
            } else {
                for ((&p, dst), lb) in chunk.iter().zip(self.dst.iter()).zip(self.lb.iter_mut()) {
                    *lb = fib.lookup6(cx.bufs.meta(p).vrf, *dst);
                }
            }
            let (mut last_adj, mut kind, mut index) = (u32::MAX, AdjKind::Drop, 0);
            for (i, &p) in chunk.iter().enumerate() {
                let (d, m) = cx.bufs.data_and_meta_mut(p);
                let traced = m.flags & MetaFlags::TRACED != 0;
                let Some(lb) = self.lb[i] else {
                    Icmp6Error::NoRoute.store(m);
                    if traced {
                        let t = Ip6LookupTrace {
                            vrf: m.vrf,
                            dst: Ipv6Addr::from(self.dst[i]),
                            lb: None,
                            adj: 0,
                            kind: AdjKind::Drop,
                            flow_hash: 0,
                        };
                        cx.trace(p, t);
                    }
                    cx.count(E::NoRoute, 1);
                    cx.enqueue(Next::IcmpError, p);
                    continue;
                };
                let adj = if fib.n_buckets(lb) > 1 {
                    if m.flags & MetaFlags::FLOW_HASH_VALID == 0 {
                        m.flow_hash = ip6_flow_hash(d);
                        m.flags |= MetaFlags::FLOW_HASH_VALID;
                    }
                    fib.choose(lb, m.flow_hash)
                } else {
                    fib.choose(lb, 0)
                };
                m.adj = adj;
                if adj != last_adj {
                    last_adj = adj;
                    let a = fib.adj(adj);
                    (kind, index) = (a.kind, a.index());
                }
                if traced {
                    let t = Ip6LookupTrace {
                        vrf: m.vrf,
                        dst: Ipv6Addr::from(self.dst[i]),
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
                    AdjKind::Glean | AdjKind::Incomplete => cx.enqueue(Next::Discover, p),
                    AdjKind::Unreachable => {
                        Icmp6Error::NoRoute.store(cx.bufs.meta_mut(p));
                        cx.count(E::Unreachable, 1);
                        cx.enqueue(Next::IcmpError, p);
                    }
                    AdjKind::Prohibit => {
                        Icmp6Error::AdminProhibited.store(cx.bufs.meta_mut(p));
                        cx.count(E::Prohibited, 1);
                        cx.enqueue(Next::IcmpError, p);
                    }
                    AdjKind::Punt => {
                        cx.bufs.meta_mut(p).opaque[0] = punt_reason::ROUTE;
                        cx.count(E::Punted, 1);
                        cx.enqueue(Next::Punt, p);
                    }
                    AdjKind::Drop => cx.discard(p, E::DropRoute),
                    AdjKind::SrLocalSid | AdjKind::SrLocalSidDecap | AdjKind::SrPolicy => {
                        cx.bufs.meta_mut(p).opaque[0] = index;
                        let next = match kind {
                            AdjKind::SrLocalSid => Next::SrLocalSid,
                            AdjKind::SrLocalSidDecap => Next::SrLocalSidD,
                            _ => Next::SrPolicy,
                        };
                        cx.enqueue(next, p);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(src_port: u16, flow_label: u32, nh_ext: bool) -> Vec<u8> {
        let mut d = vec![0x60, ((flow_label >> 16) & 0x0f) as u8, (flow_label >> 8) as u8, flow_label as u8, 0, 16];
        d.push(if nh_ext { ip_protocol::IPV6_OPTS } else { ip_protocol::UDP });
        d.push(64);
        d.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        d.extend_from_slice(&"2001:db8:1::2".parse::<Ipv6Addr>().unwrap().octets());
        if nh_ext {
            d.extend_from_slice(&[ip_protocol::UDP, 0, 1, 4, 0, 0, 0, 0]);
        }
        d.extend_from_slice(&src_port.to_be_bytes());
        d.extend_from_slice(&[0, 53, 0, 8, 0, 0]);
        d
    }

    #[test]
    fn flow_hash_uses_ports_label_and_sees_through_extension_headers() {
        let a = ip6_flow_hash(&udp(1000, 0, false));
        assert_eq!(a, ip6_flow_hash(&udp(1000, 0, false)), "deterministic");
        assert_ne!(a, ip6_flow_hash(&udp(1001, 0, false)), "ports");
        assert_ne!(a, ip6_flow_hash(&udp(1000, 0x12345, false)), "flow label");
        assert_eq!(a, ip6_flow_hash(&udp(1000, 0, true)), "ports found behind a destination options header");
        // A fragment header: ports are left out, so all fragments agree.
        let mut f = udp(1000, 0, false);
        f[6] = ip_protocol::IPV6_FRAG;
        f.splice(40..40, [ip_protocol::UDP, 0, 0, 1, 0, 0, 0, 9]);
        let first = ip6_flow_hash(&f);
        f[48] = 0x77;
        assert_eq!(ip6_flow_hash(&f), first);
    }
}
