//! l2-arp-term: ARP termination in a bridge domain.
//!
//! The domain holds an IPv4 → MAC table ([`ArpTable`]): static bindings the
//! control plane sets (VPP `set bridge-domain arp entry`) and bindings
//! learned from the ARP that crosses the bridge, up to a limit. An ARP
//! request for a bound address is answered here, straight back to the
//! requester's interface, so it never floods the domain; every other ARP
//! frame (unknown address, reply, gratuitous ARP, probe) goes on to l2-fwd,
//! which forwards or floods it as usual.
//!
//! The reply is built in place of the request, in the frame's bridge form
//! (after the input interface's tag rewrite), and leaves through l2-output
//! with the input interface as output, whose tag rewrite restores the tags
//! the requester used. Requests from the address's own owner (a host
//! probing its own address) are not answered: that would look like a
//! conflict to it.

use super::bridge::{inner_ethertype, DomainCache};
use super::mac_table::{AtomicMap, MacTableError};
use crate::{Cx, Tables};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_wire::{arp_op, emit_arp_reply, ethertype, ArpPacket, MacAddr};

/// Learned bindings a domain keeps at most, unless changed
/// ([`ArpTable::set_learn_limit`]).
pub const DEFAULT_ARP_LEARN_LIMIT: u32 = 4096;

/// Which `Meta::opaque` word marks a frame that l2-arp-term has seen.
pub(crate) const ARP_TERM_MARK: usize = 0;
/// The mark: l2-fwd forwards such a frame instead of sending it back here
/// (and clears the mark).
pub(crate) const ARP_TERM_DONE: u32 = 0xa4b7_0001;

// ---------------------------------------------------------------------------
// The IPv4 → MAC table
// ---------------------------------------------------------------------------

const STATIC: u64 = 1 << 63;
const MAC_BITS: u64 = (1 << 48) - 1;
/// Generations of the map: 16 buckets up to 16K buckets (64K slots).
const ARP_MAX_GENS: usize = 11;

/// One IP → MAC binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpEntry {
    /// The address.
    pub ip: Ipv4Addr,
    /// Its MAC.
    pub mac: MacAddr,
    /// Configured, not learned.
    pub is_static: bool,
}

/// What learning a binding did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpLearned {
    /// Already bound to this MAC.
    Known,
    /// New binding.
    Learned,
    /// The address moved to a new MAC (a failover's gratuitous ARP).
    Updated,
    /// The address has a static binding to another MAC: unchanged.
    Static,
    /// Not learned: the learned bindings are at their limit (or no room).
    LimitReached,
}

#[derive(Default)]
struct ArpCounts {
    learned: u32,
    statics: u32,
}

/// A bridge domain's IPv4 → MAC bindings, read by l2-arp-term without
/// locks (the same two-choice table as the MAC table).
pub struct ArpTable {
    map: AtomicMap<ArpCounts>,
    learned: AtomicU32,
    limit: AtomicU32,
}

impl fmt::Debug for ArpTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArpTable").field("learned", &self.learned()).field("limit", &self.learn_limit()).finish()
    }
}

#[inline(always)]
fn ip_key(ip: Ipv4Addr) -> u64 {
    u32::from(ip) as u64
}

#[inline(always)]
fn mac_of(v: u64) -> MacAddr {
    let b = (v & MAC_BITS).to_be_bytes();
    MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
}

impl ArpTable {
    /// An empty table learning at most `learn_limit` bindings.
    pub fn new(learn_limit: u32) -> Self {
        ArpTable {
            map: AtomicMap::new(ArpCounts::default(), ARP_MAX_GENS),
            learned: AtomicU32::new(0),
            limit: AtomicU32::new(learn_limit),
        }
    }

    /// The MAC bound to an address.
    #[inline]
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<ArpEntry> {
        let f = self.map.find(ip_key(ip))?;
        Some(ArpEntry { ip, mac: mac_of(f.val), is_static: f.val & STATIC != 0 })
    }

    /// Binds `ip` to `mac` statically (replacing any binding).
    pub fn add_static(&self, ip: Ipv4Addr, mac: MacAddr) -> Result<(), MacTableError> {
        if mac.is_multicast() || mac.is_zero() {
            return Err(MacTableError::InvalidMac);
        }
        let mut w = self.map.write();
        match w.get(ip_key(ip)) {
            Some((loc, v)) => {
                w.set(loc, mac.as_u64() | STATIC);
                if v & STATIC == 0 {
                    let c = w.user();
                    c.learned -= 1;
                    c.statics += 1;
                }
            }
            None => {
                if !w.insert(ip_key(ip), mac.as_u64() | STATIC) {
                    return Err(MacTableError::TableFull);
                }
                w.user().statics += 1;
            }
        }
        self.learned.store(w.user().learned, Ordering::Relaxed);
        Ok(())
    }

    /// Removes a binding, static or learned.
    pub fn remove(&self, ip: Ipv4Addr) -> Option<ArpEntry> {
        let mut w = self.map.write();
        let (loc, v) = w.get(ip_key(ip))?;
        w.remove(loc);
        let c = w.user();
        if v & STATIC != 0 {
            c.statics -= 1;
        } else {
            c.learned -= 1;
        }
        self.learned.store(c.learned, Ordering::Relaxed);
        Some(ArpEntry { ip, mac: mac_of(v), is_static: v & STATIC != 0 })
    }

    /// Forgets every learned binding.
    pub fn flush_learned(&self) -> usize {
        let mut w = self.map.write();
        let n = w.retain(|_, v| v & STATIC != 0);
        w.user().learned = 0;
        self.learned.store(0, Ordering::Relaxed);
        n
    }

    /// Learns that `ip` is at `mac` (from ARP seen on the bridge). A known
    /// binding costs one lock-free lookup.
    #[inline]
    pub fn learn(&self, ip: Ipv4Addr, mac: MacAddr) -> ArpLearned {
        match self.map.find(ip_key(ip)) {
            Some(f) if mac_of(f.val) == mac => return ArpLearned::Known,
            Some(f) if f.val & STATIC != 0 => return ArpLearned::Static,
            Some(_) => {}
            None if self.learned() >= self.learn_limit() => return ArpLearned::LimitReached,
            None => {}
        }
        self.learn_locked(ip, mac)
    }

    #[cold]
    fn learn_locked(&self, ip: Ipv4Addr, mac: MacAddr) -> ArpLearned {
        let mut w = self.map.write();
        match w.get(ip_key(ip)) {
            Some((_, v)) if mac_of(v) == mac => ArpLearned::Known,
            Some((_, v)) if v & STATIC != 0 => ArpLearned::Static,
            Some((loc, _)) => {
                w.set(loc, mac.as_u64());
                ArpLearned::Updated
            }
            None => {
                if w.user().learned >= self.learn_limit() || !w.insert(ip_key(ip), mac.as_u64()) {
                    return ArpLearned::LimitReached;
                }
                let c = w.user();
                c.learned += 1;
                self.learned.store(c.learned, Ordering::Relaxed);
                ArpLearned::Learned
            }
        }
    }

    /// Learned bindings.
    pub fn learned(&self) -> u32 {
        self.learned.load(Ordering::Relaxed)
    }

    /// Most learned bindings.
    pub fn learn_limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Changes the limit (0: learn nothing).
    pub fn set_learn_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Every binding, for `show bridge-domain N detail`.
    pub fn iter(&self) -> impl Iterator<Item = ArpEntry> + '_ {
        self.map.entries().map(|(k, v)| ArpEntry {
            ip: Ipv4Addr::from(k as u32),
            mac: mac_of(v),
            is_static: v & STATIC != 0,
        })
    }
}

// ---------------------------------------------------------------------------
// The node
// ---------------------------------------------------------------------------

next_arcs! {
    /// Where l2-arp-term sends frames.
    pub enum L2ArpTermNext {
        Output = "l2-output",
        Forward = "l2-fwd",
    }
}

errors! {
    /// What l2-arp-term counts.
    pub enum L2ArpTermError {
        Replied = "ARP requests answered",
        UnknownIp = "ARP requests for unknown IPs forwarded",
        FromOwner = "ARP requests from the address's owner forwarded",
        Gratuitous = "gratuitous ARPs forwarded",
        Replies = "ARP replies forwarded",
        Learned = "IP-to-MAC bindings learned",
        Updated = "IP-to-MAC bindings moved to a new MAC",
        StaticConflict = "not learned: IP has a static binding to another MAC",
        LimitReached = "not learned: ARP table limit reached",
        NotArp = "not an Ethernet/IPv4 ARP request or reply: forwarded",
        NoBridgeDomain = "bridge domain does not exist",
    }
}

/// What l2-arp-term did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpTermAction {
    /// Answered: `ip` is at `mac`.
    Replied {
        /// The MAC given.
        mac: MacAddr,
    },
    /// Forwarded: the target is unknown.
    Unknown,
    /// Forwarded: the requester owns the address.
    FromOwner,
    /// Forwarded: gratuitous (request or reply).
    Gratuitous,
    /// Forwarded: a reply.
    Reply,
    /// Forwarded: not an Ethernet/IPv4 ARP request or reply.
    NotArp,
}

/// Trace record.
pub struct L2ArpTermTrace {
    bd: u16,
    op: u16,
    sender: (Ipv4Addr, MacAddr),
    target: Ipv4Addr,
    learned: Option<ArpLearned>,
    action: ArpTermAction,
}

impl fmt::Display for L2ArpTermTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.action == ArpTermAction::NotArp && self.op == 0 {
            return write!(f, "bd {}: not Ethernet/IPv4 ARP, forwarded", self.bd);
        }
        let op = match self.op {
            arp_op::REQUEST => "request",
            arp_op::REPLY => "reply",
            _ => "operation",
        };
        write!(f, "bd {} {op} {} ({}) for {}: ", self.bd, self.sender.0, self.sender.1, self.target)?;
        match self.action {
            ArpTermAction::Replied { mac } => write!(f, "answered {} is-at {mac}", self.target)?,
            ArpTermAction::Unknown => f.write_str("unknown, forwarded")?,
            ArpTermAction::FromOwner => f.write_str("from the owner, forwarded")?,
            ArpTermAction::Gratuitous => f.write_str("gratuitous, forwarded")?,
            ArpTermAction::Reply => f.write_str("reply, forwarded")?,
            ArpTermAction::NotArp => f.write_str("forwarded")?,
        }
        match self.learned {
            Some(ArpLearned::Learned) => f.write_str(", sender learned"),
            Some(ArpLearned::Updated) => f.write_str(", sender's MAC updated"),
            _ => Ok(()),
        }
    }
}

/// The l2-arp-term node.
#[derive(Default)]
pub struct L2ArpTerm;

impl Node<Tables> for L2ArpTerm {
    const NAME: &'static str = "l2-arp-term";
    type Next = L2ArpTermNext;
    type Error = L2ArpTermError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use ArpTermAction as A;
        use L2ArpTermError as E;
        let mut domains = DomainCache::new(cx.state, 0);
        for &p in vector {
            let bd = cx.bufs.meta(p).bd;
            let Some((domain, _)) = domains.get(bd) else {
                cx.discard(p, E::NoBridgeDomain);
                continue;
            };
            let data = cx.bufs.data(p);
            let parsed = match inner_ethertype(data) {
                Some((ethertype::ARP, at)) => ArpPacket::new_checked(&data[at..]).ok().map(|a| (at, a)),
                _ => None,
            };
            let Some((at, arp)) = parsed else {
                cx.count(E::NotArp, 1);
                if cx.is_traced(p) {
                    let t = L2ArpTermTrace {
                        bd,
                        op: 0,
                        sender: (Ipv4Addr::UNSPECIFIED, MacAddr::ZERO),
                        target: Ipv4Addr::UNSPECIFIED,
                        learned: None,
                        action: A::NotArp,
                    };
                    cx.trace(p, t);
                }
                forward(cx, p);
                continue;
            };
            let (op, sha, spa, tpa) = (arp.operation(), arp.sender_hw(), arp.sender_ip(), arp.target_ip());
            let eth_src = MacAddr::from_bytes(&data[6..12]);
            // Learn the sender's binding from requests and replies; not
            // from probes (sender 0.0.0.0) or bogus sender MACs.
            let mut learned = None;
            if (op == arp_op::REQUEST || op == arp_op::REPLY)
                && !spa.is_unspecified()
                && !sha.is_multicast()
                && !sha.is_zero()
            {
                let l = domain.arp.learn(spa, sha);
                match l {
                    ArpLearned::Known => {}
                    ArpLearned::Learned => cx.count(E::Learned, 1),
                    ArpLearned::Updated => cx.count(E::Updated, 1),
                    ArpLearned::Static => cx.count(E::StaticConflict, 1),
                    ArpLearned::LimitReached => cx.count(E::LimitReached, 1),
                }
                learned = Some(l);
            }
            let action = if spa == tpa {
                A::Gratuitous
            } else if op == arp_op::REPLY {
                A::Reply
            } else if op != arp_op::REQUEST {
                A::NotArp
            } else {
                match domain.arp.lookup(tpa) {
                    Some(e) if e.mac == sha => A::FromOwner,
                    Some(e) => A::Replied { mac: e.mac },
                    None => A::Unknown,
                }
            };
            if cx.is_traced(p) {
                cx.trace(p, L2ArpTermTrace { bd, op, sender: (spa, sha), target: tpa, learned, action });
            }
            match action {
                A::Replied { mac } => {
                    let data = cx.bufs.data_mut(p);
                    data[0..6].copy_from_slice(&eth_src.0);
                    data[6..12].copy_from_slice(&mac.0);
                    // Cannot fail: the request parsed, so 28 bytes are there.
                    let _ = emit_arp_reply(&mut data[at..], mac, tpa, sha, spa);
                    let m = cx.bufs.meta_mut(p);
                    m.tx_if = m.rx_if;
                    // Answered by the domain itself: no split horizon applies.
                    m.shg = 0;
                    cx.count(E::Replied, 1);
                    cx.enqueue(L2ArpTermNext::Output, p);
                }
                A::Unknown => {
                    cx.count(E::UnknownIp, 1);
                    forward(cx, p);
                }
                A::FromOwner => {
                    cx.count(E::FromOwner, 1);
                    forward(cx, p);
                }
                A::Gratuitous => {
                    cx.count(E::Gratuitous, 1);
                    forward(cx, p);
                }
                A::Reply => {
                    cx.count(E::Replies, 1);
                    forward(cx, p);
                }
                A::NotArp => {
                    cx.count(E::NotArp, 1);
                    forward(cx, p);
                }
            }
        }
    }
}

/// Hands a frame back to l2-fwd, marked so it is forwarded this time.
#[inline]
fn forward(cx: &mut Cx<'_, L2ArpTerm>, p: PacketId) {
    cx.bufs.meta_mut(p).opaque[ARP_TERM_MARK] = ARP_TERM_DONE;
    cx.enqueue(L2ArpTermNext::Forward, p);
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);

    #[test]
    fn learns_updates_and_keeps_statics() {
        let t = ArpTable::new(2);
        let ip = |n| Ipv4Addr::new(10, 0, 0, n);
        assert_eq!(t.learn(ip(1), A), ArpLearned::Learned);
        assert_eq!(t.learn(ip(1), A), ArpLearned::Known);
        assert_eq!(t.learn(ip(1), B), ArpLearned::Updated);
        assert_eq!(t.lookup(ip(1)).unwrap().mac, B);
        assert_eq!(t.learn(ip(2), A), ArpLearned::Learned);
        assert_eq!(t.learn(ip(3), A), ArpLearned::LimitReached);
        t.add_static(ip(9), A).unwrap();
        assert_eq!(t.learn(ip(9), B), ArpLearned::Static);
        assert_eq!(t.lookup(ip(9)), Some(ArpEntry { ip: ip(9), mac: A, is_static: true }));
        t.add_static(ip(1), A).unwrap();
        assert_eq!(t.learned(), 1, "a learned binding made static no longer counts");
        assert_eq!(t.learn(ip(3), A), ArpLearned::Learned);
        assert_eq!(t.iter().count(), 4);
        assert_eq!(t.flush_learned(), 2);
        assert_eq!(t.iter().filter(|e| e.is_static).count(), 2);
        assert!(t.remove(ip(9)).unwrap().is_static);
        assert_eq!(t.lookup(ip(9)), None);
        assert_eq!(t.add_static(ip(5), MacAddr::BROADCAST), Err(MacTableError::InvalidMac));
        t.set_learn_limit(0);
        assert_eq!(t.learn(ip(7), A), ArpLearned::LimitReached);
    }
}
