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
use super::bridge::{inner_ethertype, BridgeDomain, DomainCache};
use super::mac_table::{tsc_seconds, MacReader};
use crate::{BridgeDomainConfig, Cx, Tables};
use std::fmt;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::MetaFlags;
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

impl Node<Tables> for L2Fwd {
    const NAME: &'static str = "l2-fwd";
    type Next = L2FwdNext;
    type Error = L2FwdError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        let mut domains = DomainCache::new(cx.state, tsc_seconds(cx.now));
        let Some(&first) = vector.first() else { return };
        // A vector is mostly one domain: that of its first frame. When it
        // forwards by MAC and does not terminate ARP, its frames that are
        // not traced are forwarded here; the others take the whole path.
        let bd = cx.bufs.meta(first).bd;
        match domains.get(bd) {
            Some((d, now)) if d.config.forward && !d.config.arp_term => {
                if d.macs.fits_in_cache() {
                    forward_cached(cx, &mut domains, d, bd, now, vector);
                } else {
                    forward_prefetched(cx, &mut domains, d, bd, now, vector);
                }
            }
            _ => {
                for &p in vector {
                    forward_one(cx, &mut domains, p);
                }
            }
        }
    }
}

/// l2-fwd for a vector mostly of domain `bd` (which forwards by MAC and
/// does not terminate ARP), whose MAC table is small enough to stay in the
/// cache.
#[inline(always)]
fn forward_cached(
    cx: &mut Cx<'_, L2Fwd>,
    domains: &mut DomainCache<'_>,
    domain: &BridgeDomain,
    bd: u16,
    now: u32,
    vector: &[PacketId],
) {
    let mut macs = domain.macs.reader();
    for &p in vector {
        match destination(cx, p, bd) {
            WHOLE_PATH => forward_one(cx, domains, p),
            dst => forward_to(cx, &mut macs, &domain.config, now, p, dst),
        }
    }
}

/// [`forward_cached`] for a table larger than the cache, in two passes over
/// a few frames at a time: the first reads their destinations and starts
/// loading their buckets, so that the second finds them in the cache
/// instead of waiting for each in turn.
#[inline(always)]
fn forward_prefetched(
    cx: &mut Cx<'_, L2Fwd>,
    domains: &mut DomainCache<'_>,
    domain: &BridgeDomain,
    bd: u16,
    now: u32,
    vector: &[PacketId],
) {
    let mut macs = domain.macs.reader();
    let mut dsts = [WHOLE_PATH; CHUNK];
    for chunk in vector.chunks(CHUNK) {
        for (dst, &p) in dsts.iter_mut().zip(chunk) {
            *dst = destination(cx, p, bd);
            if *dst & MAC_GROUP_BIT == 0 {
                macs.prefetch(*dst);
            }
        }
        for (&dst, &p) in dsts.iter().zip(chunk) {
            match dst {
                WHOLE_PATH => forward_one(cx, domains, p),
                dst => forward_to(cx, &mut macs, &domain.config, now, p, dst),
            }
        }
    }
}

/// Frames per pass of [`forward_prefetched`].
const CHUNK: usize = 32;

/// Not a MAC (those are 48 bits): a frame for the whole path.
const WHOLE_PATH: u64 = u64::MAX;

/// The destination MAC (as a key) of a frame that is of domain `bd` and not
/// traced; [`WHOLE_PATH`] for the others.
#[inline(always)]
fn destination(cx: &mut Cx<'_, L2Fwd>, p: PacketId, bd: u16) -> u64 {
    let (data, m) = cx.bufs.data_and_meta_mut(p);
    if m.bd != bd || m.flags & MetaFlags::TRACED != 0 {
        return WHOLE_PATH;
    }
    match data.get(..8) {
        // The destination MAC (and two bytes of the source) in one load.
        Some(dst) => u64::from_be_bytes(dst.try_into().unwrap()) >> 16,
        None => WHOLE_PATH,
    }
}

/// Forwards a frame (not traced) of a domain that forwards by MAC and does
/// not terminate ARP, by its destination `dst`, as [`forward_one`] would.
#[inline(always)]
fn forward_to(
    cx: &mut Cx<'_, L2Fwd>,
    macs: &mut MacReader<'_>,
    cfg: &BridgeDomainConfig,
    now: u32,
    p: PacketId,
    dst: u64,
) {
    use L2FwdError as E;
    if dst & MAC_GROUP_BIT != 0 {
        if cfg.flood_broadcast {
            cx.enqueue(L2FwdNext::Flood, p);
        } else {
            cx.discard(p, E::BroadcastNoFlood);
        }
        return;
    }
    let m = cx.bufs.meta_mut(p);
    match macs.lookup(dst, now) {
        Some(hit) if hit.sw_if == m.rx_if => cx.discard(p, E::SameInterface),
        Some(hit) => {
            m.tx_if = hit.sw_if;
            cx.enqueue(L2FwdNext::Output, p);
        }
        None if cfg.flood_unknown => cx.enqueue(L2FwdNext::Flood, p),
        None => cx.discard(p, E::UnknownNoFlood),
    }
}

/// The group (multicast) bit of a MAC as a key ([`MacAddr::as_u64`]).
const MAC_GROUP_BIT: u64 = 1 << 40;

/// Forwards one frame, whatever its domain, destination and settings.
#[inline(never)]
fn forward_one(cx: &mut Cx<'_, L2Fwd>, domains: &mut DomainCache<'_>, p: PacketId) {
    use FwdAction as A;
    use L2FwdError as E;
    let m = cx.bufs.meta(p);
    let (bd, rx, mark) = (m.bd, m.rx_if, m.opaque[ARP_TERM_MARK]);
    let Some((domain, now)) = domains.get(bd) else {
        cx.discard(p, E::NoBridgeDomain);
        return;
    };
    let data = cx.bufs.data(p);
    let Some(dst) = data.get(..6) else {
        cx.discard(p, E::Truncated);
        return;
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
