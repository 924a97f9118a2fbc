//! arp-input: ARP on routed interfaces (RFC 826, RFC 5227 probes).
//!
//! - Checks the packet is Ethernet/IPv4 ARP of 28 bytes at least, that the
//!   sender MAC is unicast and the sender IP is not multicast, loopback or
//!   broadcast, and that the sender does not claim one of our addresses
//!   (counted as a conflict, never learned).
//! - Requests for one of the receiving interface's addresses are answered;
//!   with `proxy_arp` on the interface, so are requests for any address
//!   the FIB routes out of another interface (or to us): a pod whose
//!   gateway address exists nowhere gets vswitch's MAC for it. The reply
//!   is built in the request's buffer and leaves by the receiving
//!   interface with its VLAN tags.
//! - Learning: the sender of a request we answer and of a reply is learned
//!   (created or updated); the sender of any other request (gratuitous ARP
//!   included) only updates an entry we already have (RFC 826 merge). Only
//!   senders "on link" are learned — the FIB routes their address out of
//!   the receiving interface (its subnet, or a host route such as a pod's
//!   /32) — and never from a probe (sender 0.0.0.0).
//! - Learning changes the FIB (neighbor adjacency, host route): the node
//!   takes the FIB's control lock with `try_control`, once per vector, and
//!   when the control plane holds it keeps the updates (a bounded list) for
//!   its next run instead of blocking the worker.
//! - Then it services the worker's hold queue, so packets held by ip4-arp
//!   for a neighbor just learned go back to ip4-lookup in the same
//!   dispatch.

use super::arp::{lock, resolved4, write_ethernet, Ip4Hold};
use crate::ip::neighbor::NeighborChange;
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, IfMode, Tables};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use vswitch_fib::adj::AdjKind;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::MetaFlags;
use vswitch_wire::{arp_op, emit_arp_reply, ethertype, ArpPacket, MacAddr};

next_arcs! {
    /// Where arp-input sends packets.
    pub enum ArpInputNext {
        /// ARP replies.
        Output = "interface-output",
        /// Held packets released by a resolution.
        Lookup = "ip4-lookup",
    }
}

errors! {
    /// What arp-input counts and drops.
    pub enum ArpInputError {
        Truncated = "truncated ARP packet",
        NotEthernetIp4 = "not Ethernet/IPv4 ARP",
        UnknownOp = "unknown ARP operation",
        BadSenderMac = "sender MAC is multicast or zero",
        BadSenderIp = "sender IP is multicast, loopback or broadcast",
        NotRouted = "interface is not routed",
        Conflict = "sender claims one of our addresses",
        RequestForUs = "requests for our address answered (not a drop)",
        ProxyAnswered = "requests answered by proxy ARP (not a drop)",
        RequestNotForUs = "requests for other addresses",
        Reply = "replies received",
        NotOnLink = "sender not on link: not learned",
        Learned = "neighbors learned (not a drop)",
        Updated = "neighbors updated or refreshed (not a drop)",
        LearnRefused = "neighbor not learned: refused by the FIB (table full, ...)",
        LearnDeferred = "neighbor updates deferred: FIB busy (not a drop)",
        LearnLost = "neighbor updates lost: deferred list full",
        NoHeadroom = "reply not sent: no headroom",
        Released = "held packets released after resolution (not a drop)",
        Expired = "held packets dropped: held too long",
    }
}

/// Neighbor updates kept at most while the FIB is busy.
pub const MAX_PENDING: usize = 256;

#[derive(Clone, Copy, Debug)]
struct Learn {
    sw_if: u32,
    ip: Ipv4Addr,
    mac: MacAddr,
    create: bool,
}

/// Trace record.
pub struct ArpInputTrace {
    op: u16,
    sender: (Ipv4Addr, MacAddr),
    target: Ipv4Addr,
    outcome: &'static str,
}

impl fmt::Display for ArpInputTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            arp_op::REQUEST => "request",
            arp_op::REPLY => "reply",
            _ => "op?",
        };
        write!(f, "{op} {} ({}) -> {}: {}", self.sender.0, self.sender.1, self.target, self.outcome)
    }
}

/// The arp-input node.
pub struct ArpInput {
    hold: Ip4Hold,
    pending: Vec<Learn>,
    released: Vec<PacketId>,
}

impl ArpInput {
    /// Releases held packets from `hold` (the worker's, shared with ip4-arp).
    pub fn new(hold: Ip4Hold) -> Self {
        ArpInput { hold, pending: Vec::with_capacity(MAX_PENDING), released: Vec::new() }
    }
}

enum Verdict {
    Drop(ArpInputError),
    Reply { proxy: bool },
}

impl Node<Tables> for ArpInput {
    const NAME: &'static str = "arp-input";
    type Next = ArpInputNext;
    type Error = ArpInputError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use ArpInputError as E;
        let tables = cx.state;
        let fib = &*tables.fib;
        for &p in vector {
            let m = cx.bufs.meta(p);
            let (rx, vrf, traced) = (m.rx_if, m.vrf, m.flags & MetaFlags::TRACED != 0);
            let arp = match ArpPacket::new_checked(cx.bufs.data(p)) {
                Ok(a) => a,
                Err(vswitch_wire::Error::Truncated) => {
                    cx.discard(p, E::Truncated);
                    continue;
                }
                Err(_) => {
                    cx.discard(p, E::NotEthernetIp4);
                    continue;
                }
            };
            let (op, sha, spa, tpa) = (arp.operation(), arp.sender_hw(), arp.sender_ip(), arp.target_ip());
            let Some(intf) = tables.interface(rx).filter(|i| matches!(i.mode, IfMode::L3 { .. })) else {
                cx.discard(p, E::NotRouted);
                continue;
            };
            let s = u32::from(spa);
            let kind_of = |a: Ipv4Addr| {
                fib.resolve4(vrf, u32::from(a), 0).map(|i| {
                    let adj = fib.adj(i);
                    (adj.kind, adj.sw_if)
                })
            };
            let verdict = if sha.is_multicast() || sha.is_zero() {
                Verdict::Drop(E::BadSenderMac)
            } else if s >> 24 == 127 || s >> 24 >= 224 {
                Verdict::Drop(E::BadSenderIp)
            } else if s != 0
                && (intf.ip4.iter().any(|a| a.0 == spa) || kind_of(spa).is_some_and(|k| k.0 == AdjKind::Local))
            {
                Verdict::Drop(E::Conflict)
            } else {
                let on_link = s != 0
                    && kind_of(spa).is_some_and(|(k, sw)| {
                        sw == rx && matches!(k, AdjKind::Glean | AdjKind::Incomplete | AdjKind::Rewrite)
                    });
                let mut learn = |create| {
                    if self.pending.len() < MAX_PENDING {
                        self.pending.push(Learn { sw_if: rx, ip: spa, mac: sha, create });
                        true
                    } else {
                        false
                    }
                };
                let mut lost = false;
                let v = match op {
                    arp_op::REQUEST => {
                        let for_us = intf.ip4.iter().any(|a| a.0 == tpa);
                        let proxy = !for_us
                            && intf.proxy_arp
                            && tpa != spa
                            && kind_of(tpa).is_some_and(|(k, sw)| match k {
                                AdjKind::Local => true,
                                AdjKind::Rewrite | AdjKind::Glean | AdjKind::Incomplete => sw != rx,
                                _ => false,
                            });
                        if for_us || proxy {
                            if on_link {
                                lost = !learn(true);
                            }
                            Verdict::Reply { proxy }
                        } else {
                            if on_link {
                                lost = !learn(false);
                            }
                            Verdict::Drop(E::RequestNotForUs)
                        }
                    }
                    arp_op::REPLY => {
                        if on_link {
                            lost = !learn(true);
                        }
                        Verdict::Drop(E::Reply)
                    }
                    _ => Verdict::Drop(E::UnknownOp),
                };
                if lost {
                    cx.count(E::LearnLost, 1);
                }
                if !on_link && s != 0 && !matches!(v, Verdict::Drop(E::UnknownOp)) {
                    cx.count(E::NotOnLink, 1);
                }
                v
            };
            if traced {
                let outcome = match verdict {
                    Verdict::Reply { proxy: false } => "answered",
                    Verdict::Reply { proxy: true } => "answered by proxy",
                    Verdict::Drop(_) => "consumed",
                };
                cx.trace(p, ArpInputTrace { op, sender: (spa, sha), target: tpa, outcome });
            }
            let proxy = match verdict {
                Verdict::Drop(e) => {
                    cx.discard(p, e);
                    continue;
                }
                Verdict::Reply { proxy } => proxy,
            };
            // The reply, in the request's buffer: ARP, then Ethernet in front.
            cx.bufs.set_len(p, ArpPacket::<&[u8]>::HEADER_LEN);
            let _ = emit_arp_reply(cx.bufs.data_mut(p), intf.mac, tpa, sha, spa);
            let tags = intf.tags();
            let Some(h) = cx.bufs.push_front(p, 14 + tags.len()) else {
                cx.discard(p, E::NoHeadroom);
                continue;
            };
            write_ethernet(h, sha, intf.mac, tags, ethertype::ARP);
            let m = cx.bufs.meta_mut(p);
            m.l2 = m.current;
            m.tx_if = rx;
            m.flags |= LOCALLY_ORIGINATED;
            cx.count(if proxy { E::ProxyAnswered } else { E::RequestForUs }, 1);
            cx.enqueue(ArpInputNext::Output, p);
        }
        if !self.pending.is_empty() {
            match fib.try_control() {
                Some(mut c) => {
                    for l in self.pending.drain(..) {
                        match c.learn_neighbor(l.sw_if, IpAddr::V4(l.ip), l.mac, cx.now, l.create) {
                            Ok(NeighborChange::Created) => cx.count(E::Learned, 1),
                            Ok(NeighborChange::Changed | NeighborChange::Refreshed) => cx.count(E::Updated, 1),
                            Ok(NeighborChange::Ignored) => {}
                            Err(_) => cx.count(E::LearnRefused, 1),
                        }
                    }
                }
                None => cx.count(E::LearnDeferred, self.pending.len() as u64),
            }
        }
        let mut hold = lock(&self.hold);
        if hold.is_empty() {
            return;
        }
        let cap = hold.config().max_neighbors * hold.config().per_neighbor;
        if self.released.capacity() < cap {
            self.released.reserve(cap);
        }
        self.released.clear();
        let s = hold.service(cx.now, cx.bufs, |k| resolved4(fib, k), &mut self.released);
        drop(hold);
        cx.count(E::Released, s.released as u64);
        cx.count(E::Expired, s.expired as u64);
        for &q in &self.released {
            cx.enqueue(ArpInputNext::Lookup, q);
        }
    }
}
