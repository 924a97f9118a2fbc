//! l2-learn: learns source MACs into the bridge domain's MAC table.
//!
//! Learning and forwarding are separate nodes: a vector is learned first,
//! then forwarded against the table as it stands after it. A MAC already
//! known on its interface costs one lock-free lookup (and a timestamp
//! refresh once a second); only a new or moved MAC takes the table's
//! writer lock. A source that is static on another interface is dropped:
//! a static entry is a promise that the address lives there.

use super::bridge::DomainCache;
use super::mac_table::{tsc_seconds, Learned};
use crate::{Cx, Tables};
use std::fmt;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_wire::MacAddr;

next_arcs! {
    /// Where l2-learn sends frames.
    pub enum L2LearnNext { Forward = "l2-fwd" }
}

errors! {
    /// What l2-learn counts and drops.
    pub enum L2LearnError {
        Learned = "MACs learned",
        Moved = "MACs moved",
        LimitReached = "not learned: table limit reached",
        TableFull = "not learned: hash table full",
        StaticElsewhere = "static MAC seen on another port",
        InvalidSource = "invalid source MAC",
        NoBridgeDomain = "bridge domain does not exist",
    }
}

/// Trace record.
pub struct L2LearnTrace {
    bd: u16,
    sw_if: u32,
    src: MacAddr,
    outcome: Option<Learned>,
}

impl fmt::Display for L2LearnTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bd {} sw_if {} src {}: ", self.bd, self.sw_if, self.src)?;
        match self.outcome {
            None => f.write_str("invalid source, dropped"),
            Some(Learned::Known) => f.write_str("known"),
            Some(Learned::Learned) => f.write_str("learned"),
            Some(Learned::Moved { from }) => write!(f, "moved from sw_if {from}"),
            Some(Learned::StaticElsewhere { sw_if }) => write!(f, "static on sw_if {sw_if}, dropped"),
            Some(Learned::LimitReached) => f.write_str("not learned: limit"),
            Some(Learned::TableFull) => f.write_str("not learned: table full"),
        }
    }
}

/// The l2-learn node.
#[derive(Default)]
pub struct L2Learn;

impl L2Learn {
    /// The node; calibrates the TSC clock (once per process) so the first
    /// vector does not.
    pub fn new() -> Self {
        let _ = tsc_seconds(0);
        L2Learn
    }
}

/// How many packets ahead the MAC table is prefetched.
const PREFETCH_AHEAD: usize = 6;

impl Node<Tables> for L2Learn {
    const NAME: &'static str = "l2-learn";
    type Next = L2LearnNext;
    type Error = L2LearnError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use L2LearnError as E;
        let mut domains = DomainCache::new(cx.state, tsc_seconds(cx.now));
        for (i, &p) in vector.iter().enumerate() {
            // Overlap the MAC table's cache misses with this packet's work.
            if let Some(&ahead) = vector.get(i + PREFETCH_AHEAD) {
                let (bd, data) = (cx.bufs.meta(ahead).bd, cx.bufs.data(ahead));
                if let (Some((d, _)), Some(mac)) = (domains.get(bd), data.get(6..12)) {
                    d.macs.prefetch(MacAddr::from_bytes(mac));
                }
            }
            let m = cx.bufs.meta(p);
            let (bd, rx) = (m.bd, m.rx_if);
            let Some((domain, now)) = domains.get(bd) else {
                cx.discard(p, E::NoBridgeDomain);
                continue;
            };
            let data = cx.bufs.data(p);
            let src = match data.get(6..12) {
                Some(s) => MacAddr::from_bytes(s),
                None => MacAddr::ZERO,
            };
            if src.is_multicast() || src.is_zero() {
                if cx.is_traced(p) {
                    cx.trace(p, L2LearnTrace { bd, sw_if: rx, src, outcome: None });
                }
                cx.discard(p, E::InvalidSource);
                continue;
            }
            let outcome = domain.macs.learn(src, rx, now);
            if cx.is_traced(p) {
                cx.trace(p, L2LearnTrace { bd, sw_if: rx, src, outcome: Some(outcome) });
            }
            match outcome {
                Learned::Known => {}
                Learned::Learned => cx.count(E::Learned, 1),
                Learned::Moved { .. } => cx.count(E::Moved, 1),
                Learned::LimitReached => cx.count(E::LimitReached, 1),
                Learned::TableFull => cx.count(E::TableFull, 1),
                Learned::StaticElsewhere { .. } => {
                    cx.discard(p, E::StaticElsewhere);
                    continue;
                }
            }
            cx.enqueue(L2LearnNext::Forward, p);
        }
    }
}
