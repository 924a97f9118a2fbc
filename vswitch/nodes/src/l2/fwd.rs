//! l2-fwd: forwards a bridged frame by its destination MAC.
//!
//! A destination in the MAC table leaves by its interface (through
//! l2-output, which applies split horizon and tag rewrite), unless that is
//! the interface the frame came from. Broadcast and multicast flood when
//! the domain floods them; unknown unicast floods when the domain floods
//! unknown unicast; a domain with forwarding off floods everything. When
//! the domain terminates ARP, ARP frames visit l2-arp-term first, which
//! answers what it can and sends the rest back here, marked.

use super::arp_term::{ARP_TERM_DONE, ARP_TERM_MARK};
use super::bridge::{inner_ethertype, DomainCache};
use super::mac_table::tsc_seconds;
use crate::{Cx, Tables};
use std::fmt;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_wire::{ethertype, MacAddr};

next_arcs! {
    /// Where l2-fwd sends frames.
    pub enum L2FwdNext {
        Output = "l2-output",
        Flood = "l2-flood",
        ArpTerm = "l2-arp-term",
    }
}

errors! {
    /// What l2-fwd counts and drops.
    pub enum L2FwdError {
        SameInterface = "destination on the input interface",
        UnknownNoFlood = "unknown unicast, flooding off",
        BroadcastNoFlood = "broadcast/multicast, flooding off",
        NoBridgeDomain = "bridge domain does not exist",
        Truncated = "frame shorter than an Ethernet header",
    }
}

/// What l2-fwd did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FwdAction {
    /// Known destination: out of this interface.
    Unicast {
        /// The output interface.
        tx: u32,
        /// Found by a static entry.
        is_static: bool,
    },
    /// Flooded: unknown unicast.
    FloodUnknown,
    /// Flooded: broadcast or multicast.
    FloodBroadcast,
    /// Flooded: the domain does not forward by MAC.
    FloodAll,
    /// Sent to ARP termination.
    ArpTerm,
    /// Dropped: the destination is on the input interface.
    DropSameInterface,
    /// Dropped: unknown unicast, flooding off.
    DropUnknown,
    /// Dropped: broadcast/multicast, flooding off.
    DropBroadcast,
}

/// Trace record.
pub struct L2FwdTrace {
    bd: u16,
    rx: u32,
    dst: MacAddr,
    action: FwdAction,
}

impl fmt::Display for L2FwdTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bd {} sw_if {} dst {}: ", self.bd, self.rx, self.dst)?;
        match self.action {
            FwdAction::Unicast { tx, is_static: false } => write!(f, "to sw_if {tx}"),
            FwdAction::Unicast { tx, is_static: true } => write!(f, "to sw_if {tx} (static)"),
            FwdAction::FloodUnknown => f.write_str("unknown, flood"),
            FwdAction::FloodBroadcast => f.write_str("broadcast/multicast, flood"),
            FwdAction::FloodAll => f.write_str("forwarding off, flood"),
            FwdAction::ArpTerm => f.write_str("ARP, to termination"),
            FwdAction::DropSameInterface => f.write_str("on the input interface, drop"),
            FwdAction::DropUnknown => f.write_str("unknown, flooding off, drop"),
            FwdAction::DropBroadcast => f.write_str("broadcast/multicast, flooding off, drop"),
        }
    }
}

/// The l2-fwd node.
#[derive(Default)]
pub struct L2Fwd;

impl L2Fwd {
    /// The node; calibrates the TSC clock (once per process) so the first
    /// vector does not.
    pub fn new() -> Self {
        let _ = tsc_seconds(0);
        L2Fwd
    }
}

/// How many packets ahead the MAC table is prefetched.
const PREFETCH_AHEAD: usize = 6;

impl Node<Tables> for L2Fwd {
    const NAME: &'static str = "l2-fwd";
    type Next = L2FwdNext;
    type Error = L2FwdError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use FwdAction as A;
        use L2FwdError as E;
        let mut domains = DomainCache::new(cx.state, tsc_seconds(cx.now));
        for (i, &p) in vector.iter().enumerate() {
            // Overlap the MAC table's cache misses with this packet's work.
            if let Some(&ahead) = vector.get(i + PREFETCH_AHEAD) {
                let (bd, data) = (cx.bufs.meta(ahead).bd, cx.bufs.data(ahead));
                if let (Some((d, _)), Some(mac)) = (domains.get(bd), data.get(..6)) {
                    d.macs.prefetch(MacAddr::from_bytes(mac));
                }
            }
            let m = cx.bufs.meta(p);
            let (bd, rx, mark) = (m.bd, m.rx_if, m.opaque[ARP_TERM_MARK]);
            let Some((domain, now)) = domains.get(bd) else {
                cx.discard(p, E::NoBridgeDomain);
                continue;
            };
            let data = cx.bufs.data(p);
            let Some(dst) = data.get(..6) else {
                cx.discard(p, E::Truncated);
                continue;
            };
            let dst = MacAddr::from_bytes(dst);
            let cfg = &domain.config;
            let mut to_arp_term = false;
            if cfg.arp_term {
                if mark == ARP_TERM_DONE {
                    cx.bufs.meta_mut(p).opaque[ARP_TERM_MARK] = 0;
                } else {
                    to_arp_term = matches!(inner_ethertype(data), Some((ethertype::ARP, _)));
                }
            }
            let action = if to_arp_term {
                A::ArpTerm
            } else if !cfg.forward {
                A::FloodAll
            } else if dst.is_multicast() {
                if cfg.flood_broadcast {
                    A::FloodBroadcast
                } else {
                    A::DropBroadcast
                }
            } else {
                match domain.macs.lookup(dst, now) {
                    Some(hit) if hit.sw_if == rx => A::DropSameInterface,
                    Some(hit) => A::Unicast { tx: hit.sw_if, is_static: hit.is_static },
                    None if cfg.flood_unknown => A::FloodUnknown,
                    None => A::DropUnknown,
                }
            };
            if cx.is_traced(p) {
                cx.trace(p, L2FwdTrace { bd, rx, dst, action });
            }
            match action {
                A::Unicast { tx, .. } => {
                    cx.bufs.meta_mut(p).tx_if = tx;
                    cx.enqueue(L2FwdNext::Output, p);
                }
                A::FloodUnknown | A::FloodBroadcast | A::FloodAll => cx.enqueue(L2FwdNext::Flood, p),
                A::ArpTerm => cx.enqueue(L2FwdNext::ArpTerm, p),
                A::DropSameInterface => cx.discard(p, E::SameInterface),
                A::DropUnknown => cx.discard(p, E::UnknownNoFlood),
                A::DropBroadcast => cx.discard(p, E::BroadcastNoFlood),
            }
        }
    }
}
