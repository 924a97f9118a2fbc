//! ip4-arp: packets whose next hop is not resolved yet (a glean or an
//! incomplete adjacency). The packet is held on the worker's bounded
//! [`HoldQueue`] (a few per next hop, about a second at most) and an ARP
//! request for the next hop goes out of the adjacency's interface — at
//! most one per next hop every 100 ms, however many packets wait.
//!
//! The next hop is the packet's destination for a glean adjacency (an
//! attached subnet) and the adjacency's address for an incomplete one (a
//! route via a neighbor). The request is sent from the interface's address
//! in the next hop's subnet (else its first address; an unnumbered
//! interface asks from 0.0.0.0, as an ARP probe does), broadcast, with the
//! interface's VLAN tags.
//!
//! Each time this node or arp-input runs, the queue is serviced: next hops
//! that now resolve (the FIB has a complete adjacency for them, whichever
//! worker learned it) release their packets back to ip4-lookup; packets
//! held past the hold time are freed and counted. [`service_ip4_hold`]
//! does the same from a worker loop that has nothing else to do, so held
//! packets never outlive their hold time by much, and never leak.

use crate::ip::fib::IpFib;
use crate::ip::hold::{Hold, HoldKey, HoldQueue};
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, Interface, Tables, VlanTags};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use vswitch_fib::adj::{AdjKind, Adjacency};
use vswitch_graph::{errors, next_arcs, Graph, Node, PacketId};
use vswitch_packet::{Buffers, MetaFlags};
use vswitch_wire::{emit_arp_request, ethertype, MacAddr};

next_arcs! {
    /// Where ip4-arp sends packets.
    pub enum Ip4ArpNext {
        /// ARP requests.
        Output = "interface-output",
        /// Released held packets (and packets whose adjacency resolved meanwhile).
        Lookup = "ip4-lookup",
    }
}

errors! {
    /// What ip4-arp counts and drops.
    pub enum Ip4ArpError {
        RequestSent = "ARP requests sent (not a drop)",
        Held = "packets held for resolution (not a drop)",
        Released = "held packets released after resolution (not a drop)",
        Expired = "dropped: held too long, next hop not resolved",
        NeighborFull = "dropped: hold queue full for the next hop",
        TableFull = "dropped: too many next hops being resolved",
        NoBuffer = "ARP request not sent: no buffer",
        NoInterface = "dropped: the adjacency's interface is unknown",
        Broadcast = "dropped: destination is a subnet's network or broadcast address",
        Resolved = "adjacency resolved meanwhile, back to ip4-lookup (not a drop)",
    }
}

/// A worker's held IPv4 packets, shared by ip4-arp and arp-input.
pub type Ip4Hold = Arc<Mutex<HoldQueue>>;

pub(crate) fn lock(h: &Mutex<HoldQueue>) -> MutexGuard<'_, HoldQueue> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the FIB now has a complete adjacency for an IPv4 next hop.
pub fn resolved4(fib: &IpFib, k: &HoldKey) -> bool {
    let IpAddr::V4(a) = k.next_hop else { return false };
    fib.resolve4(k.vrf, u32::from(a), 0).is_some_and(|i| fib.adj(i).kind == AdjKind::Rewrite)
}

/// The address an ARP request for `target` on `intf` is sent from.
pub fn arp_source(intf: &Interface, target: Ipv4Addr) -> Ipv4Addr {
    let t = u32::from(target);
    intf.ip4
        .iter()
        .find(|&&(a, len)| len > 0 && len <= 32 && (u32::from(a) ^ t) >> (32 - len as u32) == 0)
        .or(intf.ip4.first())
        .map_or(Ipv4Addr::UNSPECIFIED, |&(a, _)| a)
}

/// Whether `a` is the network or broadcast address of a subnet (/30 or
/// shorter) of `intf`.
fn is_subnet_edge(intf: &Interface, a: Ipv4Addr) -> bool {
    let a = u32::from(a);
    intf.ip4.iter().any(|&(ia, len)| {
        if len > 30 || len == 0 {
            return false;
        }
        let host = u32::MAX >> len;
        (u32::from(ia) ^ a) & !host == 0 && (a & host == 0 || a & host == host)
    })
}

/// Writes an Ethernet header (with `tags`) from `src` to `dst` for
/// `ethertype` into `buf`; returns its length.
pub fn write_ethernet(buf: &mut [u8], dst: MacAddr, src: MacAddr, tags: VlanTags, ethertype: u16) -> usize {
    let (r, n) = crate::ip::fib::ethernet_rewrite(dst, src, tags, ethertype);
    buf[..n].copy_from_slice(&r[..n]);
    n
}

/// Builds a broadcast ARP request for `target` out of `intf` in a new
/// buffer, ready for interface-output. `None` when the pool is empty.
pub fn arp_request(bufs: &mut Buffers, intf: &Interface, target: Ipv4Addr) -> Option<PacketId> {
    let mut frame = [0u8; 64];
    let n = write_ethernet(&mut frame, MacAddr::BROADCAST, intf.mac, intf.tags(), ethertype::ARP);
    let len = n + emit_arp_request(&mut frame[n..], intf.mac, arp_source(intf, target), target).ok()?;
    let q = bufs.alloc()?;
    bufs.write(q, &frame[..len]);
    let m = bufs.meta_mut(q);
    m.l2 = m.current;
    m.l3 = m.current + n as u16;
    m.rx_if = intf.sw_if;
    m.tx_if = intf.sw_if;
    m.flags |= LOCALLY_ORIGINATED;
    Some(q)
}

/// Trace record.
pub struct Ip4ArpTrace {
    next_hop: Ipv4Addr,
    sw_if: u32,
    outcome: &'static str,
}

impl fmt::Display for Ip4ArpTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "next hop {} on sw_if {}: {}", self.next_hop, self.sw_if, self.outcome)
    }
}

/// The ip4-arp node.
pub struct Ip4Arp {
    hold: Ip4Hold,
    released: Vec<PacketId>,
}

impl Ip4Arp {
    /// Holds packets on `hold` (the worker's, from `WorkerShared`).
    pub fn new(hold: Ip4Hold) -> Self {
        Ip4Arp { hold, released: Vec::new() }
    }
}

impl Node<Tables> for Ip4Arp {
    const NAME: &'static str = "ip4-arp";
    type Next = Ip4ArpNext;
    type Error = Ip4ArpError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use Ip4ArpError as E;
        let tables = cx.state;
        let fib = &*tables.fib;
        let now = cx.now;
        let mut hold = lock(&self.hold);
        let cap = hold.config().max_neighbors * hold.config().per_neighbor;
        if self.released.capacity() < cap {
            self.released.reserve(cap);
        }
        self.released.clear();
        let s = hold.service(now, cx.bufs, |k| resolved4(fib, k), &mut self.released);
        cx.count(E::Released, s.released as u64);
        cx.count(E::Expired, s.expired as u64);
        for &q in &self.released {
            cx.enqueue(Ip4ArpNext::Lookup, q);
        }
        let (mut cached, mut adj) = (u32::MAX, Adjacency::DROP);
        for &p in vector {
            let (d, m) = cx.bufs.data_and_meta_mut(p);
            if m.adj != cached {
                cached = m.adj;
                adj = fib.adj(cached);
            }
            let vrf = m.vrf;
            let nh = match adj.kind {
                AdjKind::Glean => Ipv4Addr::new(d[16], d[17], d[18], d[19]),
                AdjKind::Incomplete => adj.next_hop_v4(),
                _ => {
                    cx.count(E::Resolved, 1);
                    cx.enqueue(Ip4ArpNext::Lookup, p);
                    continue;
                }
            };
            let traced = m.flags & MetaFlags::TRACED != 0;
            let Some(intf) = tables.interface(adj.sw_if) else {
                cx.discard(p, E::NoInterface);
                continue;
            };
            if is_subnet_edge(intf, nh) {
                cx.discard(p, E::Broadcast);
                continue;
            }
            let key = HoldKey { vrf, sw_if: adj.sw_if, next_hop: IpAddr::V4(nh) };
            let (request, drop) = match hold.hold(key, p, now) {
                Hold::Held { request } => (request, None),
                Hold::NeighborFull { request } => (request, Some(E::NeighborFull)),
                Hold::TableFull => (false, Some(E::TableFull)),
            };
            if traced {
                let outcome = match drop {
                    None => "held",
                    Some(E::NeighborFull) => "dropped, hold queue full for the next hop",
                    Some(_) => "dropped, too many next hops",
                };
                cx.trace(p, Ip4ArpTrace { next_hop: nh, sw_if: adj.sw_if, outcome });
            }
            match drop {
                None => cx.count(E::Held, 1),
                Some(e) => cx.discard(p, e),
            }
            if request {
                match arp_request(cx.bufs, intf, nh) {
                    Some(q) => {
                        cx.count(E::RequestSent, 1);
                        cx.enqueue(Ip4ArpNext::Output, q);
                    }
                    None => cx.count(E::NoBuffer, 1),
                }
            }
        }
    }
}

/// Services a worker's IPv4 hold queue outside any node (from an idle
/// worker loop): releases the packets of next hops that resolved into
/// ip4-lookup and dispatches them, frees those held too long. Returns
/// (released, expired).
pub fn service_ip4_hold(
    hold: &Mutex<HoldQueue>,
    graph: &mut Graph<Tables>,
    bufs: &mut Buffers,
    tables: &Tables,
    now: u64,
) -> (usize, usize) {
    let mut released = Vec::new();
    let s = lock(hold).service(now, bufs, |k| resolved4(&tables.fib, k), &mut released);
    if !released.is_empty() {
        if let Some(lookup) = graph.node_index("ip4-lookup") {
            graph.enqueue(lookup, &released);
            graph.dispatch(bufs, tables);
        } else {
            bufs.free_bulk(&released);
        }
    }
    (s.released, s.expired)
}
