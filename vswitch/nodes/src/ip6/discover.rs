//! ip6-discover: neighbor discovery on the data path (VPP's ip6 glean).
//!
//! ip6-lookup sends here the packets whose adjacency has no MAC yet: a
//! glean adjacency (an attached subnet: the next hop is the packet's own
//! destination) or an incomplete one (a route via a neighbor not resolved
//! yet: the adjacency's next hop). Each packet is held in the worker's
//! [`HoldQueue`] under (VRF, interface, next hop) — a few per next hop,
//! a bounded number of next hops — and a Neighbor Solicitation goes to the
//! next hop's solicited-node multicast group (MAC 33:33:ffXX:XXXX) from
//! the interface's address, with our MAC as source link-layer option; at
//! most one per next hop per probe interval (`HoldConfig::probe_interval`).
//!
//! Held packets leave in one of three ways, never leaked:
//! - released: once the FIB resolves the next hop (ip6-nd learned it and
//!   installed its rewrite), they go through ip6-lookup again. The node
//!   checks at every run — when packets arrive, when ip6-nd hands it the
//!   advertisement that resolved a neighbor (which it then frees), and
//!   when the worker runs it with an empty vector as an idle tick;
//! - expired: held longer than `HoldConfig::hold`, they are freed and
//!   counted (the queue frees them itself, so no ICMPv6 address
//!   unreachable is sent for them);
//! - dropped on arrival, counted, when their next hop already has
//!   `per_neighbor` packets waiting or `max_neighbors` next hops are
//!   pending.
//!
//! The worker loop should call [`service_ip6_hold`] (the node run with an
//! empty vector) now and then, say every 100 ms, so a worker that sees no
//! more traffic still releases or expires what it holds; and
//! [`Ip6Discover::clear`] when it stops.

use super::nd::RESOLVED_SIGNAL;
use super::source_for;
use crate::ip::fib::ethernet_rewrite;
use crate::ip::hold::{Hold, HoldConfig, HoldKey, HoldQueue};
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, Tables};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use vswitch_fib::adj::AdjKind;
use vswitch_graph::{errors, next_arcs, Graph, Node, PacketId};
use vswitch_packet::{Buffers, MetaFlags};
use vswitch_wire::ndp::{emit_neighbor_solicit, solicited_node};
use vswitch_wire::{ethertype, ip_protocol, Ipv6Packet, MacAddr};

next_arcs! {
    /// Where ip6-discover sends packets.
    pub enum Ip6DiscoverNext {
        /// Released packets, looked up again.
        Lookup = "ip6-lookup",
        /// Neighbor solicitations.
        Output = "interface-output",
    }
}

errors! {
    /// What ip6-discover counts and drops.
    pub enum Ip6DiscoverError {
        Held = "packets held for neighbor resolution (not a drop)",
        SolicitSent = "neighbor solicitations sent (not a drop)",
        Released = "held packets released to ip6-lookup (not a drop)",
        Expired = "dropped: held too long, neighbor did not answer",
        NeighborFull = "dropped: too many packets held for this neighbor",
        TableFull = "dropped: too many neighbors being resolved",
        NoSource = "solicitation not sent: no IPv6 address on the interface",
        NoBuffer = "solicitation not sent: no buffer",
        NotGlean = "dropped: adjacency is not glean or incomplete",
        Resolved = "resolved meanwhile: sent to ip6-lookup again (not a drop)",
        Signals = "advertisements from ip6-nd that resolved a neighbor (not a drop)",
    }
}

/// Trace record.
pub struct Ip6DiscoverTrace {
    sw_if: u32,
    next_hop: Ipv6Addr,
    action: &'static str,
}

impl fmt::Display for Ip6DiscoverTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sw_if {} next hop {}: {}", self.sw_if, self.next_hop, self.action)
    }
}

/// The ip6-discover node.
pub struct Ip6Discover {
    hold: HoldQueue,
    released: Vec<PacketId>,
}

impl Default for Ip6Discover {
    fn default() -> Self {
        Ip6Discover::new(HoldConfig::default())
    }
}

impl Ip6Discover {
    /// A node holding packets as `config` says.
    pub fn new(config: HoldConfig) -> Self {
        Self::with_queue(HoldQueue::new(config))
    }

    /// A node using `hold` (e.g. one on a test clock).
    pub fn with_queue(hold: HoldQueue) -> Self {
        let c = hold.config();
        let released = Vec::with_capacity(c.max_neighbors.saturating_mul(c.per_neighbor));
        Ip6Discover { hold, released }
    }

    /// The held packets (limits, counts; reconfigure with `set_config`).
    pub fn hold_queue(&mut self) -> &mut HoldQueue {
        &mut self.hold
    }

    /// Frees every held packet (when the worker stops); returns how many.
    pub fn clear(&mut self, bufs: &mut Buffers) -> usize {
        self.hold.clear(bufs)
    }
}

/// The idle tick: runs ip6-discover with no packet, so a worker with no
/// traffic still releases the packets it holds for resolved neighbors and
/// frees those held too long (the counters count them as usual). Returns
/// `false` when the graph has no ip6-discover.
pub fn service_ip6_hold(graph: &mut Graph<Tables>, bufs: &mut Buffers, tables: &Tables) -> bool {
    match graph.node_index(<Ip6Discover as Node<Tables>>::NAME) {
        Some(i) => {
            graph.run(bufs, tables, i, &[]);
            true
        }
        None => false,
    }
}

/// Builds a Neighbor Solicitation for `target` out of `sw_if` in a new
/// buffer: Ethernet to the solicited-node group, from `src`.
fn solicit(bufs: &mut Buffers, tables: &Tables, sw_if: u32, src: Ipv6Addr, target: Ipv6Addr) -> Option<PacketId> {
    let intf = tables.interface(sw_if)?;
    let group = solicited_node(&target);
    let (rw, n) = ethernet_rewrite(MacAddr::from_ipv6_multicast(&group), intf.mac, intf.tags(), ethertype::IPV6);
    let q = bufs.alloc()?;
    let len = n + 40 + 32;
    if !bufs.set_len(q, len) {
        bufs.free(q);
        return None;
    }
    let d = bufs.data_mut(q);
    d[..n].copy_from_slice(&rw[..n]);
    let mut ip = Ipv6Packet::new_unchecked(&mut d[n..]);
    ip.set_version(6);
    ip.set_traffic_class(0);
    ip.set_flow_label(0);
    ip.set_payload_len(32);
    ip.set_next_header(ip_protocol::ICMPV6);
    ip.set_hop_limit(255);
    ip.set_src_addr(src);
    ip.set_dst_addr(group);
    if emit_neighbor_solicit(&mut d[n + 40..], &src, &group, &target, Some(intf.mac)).is_err() {
        bufs.free(q);
        return None;
    }
    let m = bufs.meta_mut(q);
    m.l2 = m.current;
    m.l3 = m.current + n as u16;
    m.l4 = m.l3 + 40;
    m.tx_if = sw_if;
    m.rx_if = sw_if;
    m.flags |= LOCALLY_ORIGINATED;
    Some(q)
}

impl Ip6Discover {
    /// Releases what the FIB has resolved, expires what waited too long.
    fn service(&mut self, cx: &mut Cx<'_, Self>) {
        let tables = cx.state;
        let fib = &*tables.fib;
        let resolved = |k: &HoldKey| {
            let IpAddr::V6(nh) = k.next_hop else { return false };
            fib.resolve6(k.vrf, u128::from(nh), 0).is_some_and(|a| fib.adj(a).kind == AdjKind::Rewrite)
        };
        self.released.clear();
        let s = self.hold.service(cx.now, cx.bufs, resolved, &mut self.released);
        cx.count(Ip6DiscoverError::Expired, s.expired as u64);
        cx.count(Ip6DiscoverError::Released, s.released as u64);
        for i in 0..self.released.len() {
            let p = self.released[i];
            cx.bufs.meta_mut(p).flags &= !MetaFlags::FLOW_HASH_VALID;
            cx.enqueue(Ip6DiscoverNext::Lookup, p);
        }
        self.released.clear();
    }
}

impl Node<Tables> for Ip6Discover {
    const NAME: &'static str = "ip6-discover";
    type Next = Ip6DiscoverNext;
    type Error = Ip6DiscoverError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use Ip6DiscoverError as E;
        let tables = cx.state;
        let fib = &*tables.fib;
        for &p in vector {
            let m = cx.bufs.meta_mut(p);
            if m.opaque[0] == RESOLVED_SIGNAL {
                cx.discard(p, E::Signals);
                continue;
            }
            let traced = m.flags & MetaFlags::TRACED != 0;
            let (vrf, adj_idx) = (m.vrf, m.adj);
            let adj = fib.adj(adj_idx);
            let next_hop = match adj.kind {
                AdjKind::Glean => super::addr_at(cx.bufs.data(p), super::DST_AT),
                AdjKind::Incomplete => Ipv6Addr::from(adj.next_hop),
                AdjKind::Rewrite => {
                    cx.count(E::Resolved, 1);
                    cx.enqueue(Ip6DiscoverNext::Lookup, p);
                    continue;
                }
                _ => {
                    cx.discard(p, E::NotGlean);
                    continue;
                }
            };
            let sw_if = adj.sw_if;
            let key = HoldKey { vrf, sw_if, next_hop: IpAddr::V6(next_hop) };
            let outcome = self.hold.hold(key, p, cx.now);
            let (request, action) = match outcome {
                Hold::Held { request } => (request, "held"),
                Hold::NeighborFull { request } => (request, "dropped: neighbor queue full"),
                Hold::TableFull => (false, "dropped: too many neighbors pending"),
            };
            if traced {
                cx.trace(p, Ip6DiscoverTrace { sw_if, next_hop, action });
            }
            match outcome {
                Hold::Held { .. } => cx.count(E::Held, 1),
                Hold::NeighborFull { .. } => cx.discard(p, E::NeighborFull),
                Hold::TableFull => cx.discard(p, E::TableFull),
            }
            if !request {
                continue;
            }
            let addrs = tables.interface(sw_if).map(|i| &i.ip6[..]).unwrap_or(&[]);
            let Some(src) = source_for(addrs, &next_hop) else {
                cx.count(E::NoSource, 1);
                continue;
            };
            match solicit(cx.bufs, tables, sw_if, src, next_hop) {
                Some(q) => {
                    cx.count(E::SolicitSent, 1);
                    cx.enqueue(Ip6DiscoverNext::Output, q);
                }
                None => cx.count(E::NoBuffer, 1),
            }
        }
        self.service(cx);
    }
}
