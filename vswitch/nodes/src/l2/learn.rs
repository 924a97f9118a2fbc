//! l2-learn: learns source MACs into the bridge domain's MAC table.
//!
//! Learning and forwarding are separate nodes: a vector is learned first,
//! then forwarded against the table as it stands after it. A MAC already
//! known on its interface costs one lock-free lookup (and a timestamp
//! refresh once a second); only a new or moved MAC takes the table's
//! writer lock. A source that is static on another interface is dropped:
//! a static entry is a promise that the address lives there.

use super::bridge::DomainCache;
use super::mac_table::{tsc_seconds, Learned, MacTable};
use crate::{Cx, Tables};
use std::fmt;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::MetaFlags;
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

impl Node<Tables> for L2Learn {
    const NAME: &'static str = "l2-learn";
    type Next = L2LearnNext;
    type Error = L2LearnError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        let mut domains = DomainCache::new(cx.state, tsc_seconds(cx.now));
        let Some(&first) = vector.first() else { return };
        // A vector is mostly one domain: that of its first frame. Its frames
        // that need nothing written, counted or traced (a source known on
        // its interface and seen this second already) are done here; the
        // others take the whole path.
        let bd = cx.bufs.meta(first).bd;
        let Some((domain, now)) = domains.get(bd) else {
            for &p in vector {
                learn_one(cx, &mut domains, p);
            }
            return;
        };
        if domain.macs.fits_in_cache() {
            learn_cached(cx, &mut domains, &domain.macs, bd, now, vector);
        } else {
            learn_prefetched(cx, &mut domains, &domain.macs, bd, now, vector);
        }
    }
}

/// l2-learn for a vector mostly of domain `bd`, whose MAC table `table` is
/// small enough to stay in the cache.
#[inline(never)]
fn learn_cached(
    cx: &mut Cx<'_, L2Learn>,
    domains: &mut DomainCache<'_>,
    table: &MacTable,
    bd: u16,
    now: u32,
    vector: &[PacketId],
) {
    let mut macs = table.reader();
    for &p in vector {
        let (src, rx) = source(cx, p, bd);
        if src != 0 && macs.is_current(src, rx, now) {
            cx.enqueue(L2LearnNext::Forward, p);
        } else {
            learn_one(cx, domains, p);
        }
    }
}

/// [`learn_cached`] for a table larger than the cache, in two passes over a
/// few frames at a time: the first reads their sources and starts loading
/// their buckets, so that the second finds them in the cache instead of
/// waiting for each in turn.
#[inline(always)]
fn learn_prefetched(
    cx: &mut Cx<'_, L2Learn>,
    domains: &mut DomainCache<'_>,
    table: &MacTable,
    bd: u16,
    now: u32,
    vector: &[PacketId],
) {
    let mut macs = table.reader();
    let mut srcs = [0u64; CHUNK];
    let mut rxs = [0u32; CHUNK];
    for chunk in vector.chunks(CHUNK) {
        for ((src, rx), &p) in srcs.iter_mut().zip(&mut rxs).zip(chunk) {
            (*src, *rx) = source(cx, p, bd);
            if *src != 0 {
                macs.prefetch(*src);
            }
        }
        for ((&src, &rx), &p) in srcs.iter().zip(&rxs).zip(chunk) {
            if src != 0 && macs.is_current(src, rx, now) {
                cx.enqueue(L2LearnNext::Forward, p);
            } else {
                learn_one(cx, domains, p);
            }
        }
    }
}

/// Frames per pass of [`learn_prefetched`].
const CHUNK: usize = 32;

/// The source MAC (as a key) and the receiving interface of a frame that
/// is of domain `bd` and not traced. Key 0 sends the frame down the whole
/// path: it is never a valid source (a group address is returned as 0, and
/// the all-zero MAC is 0).
#[inline(always)]
fn source(cx: &mut Cx<'_, L2Learn>, p: PacketId, bd: u16) -> (u64, u32) {
    let (data, m) = cx.bufs.data_and_meta_mut(p);
    let rx = m.rx_if;
    if m.bd != bd || m.flags & MetaFlags::TRACED != 0 {
        return (0, rx);
    }
    let Some(src) = data.get(6..14) else { return (0, rx) };
    // The source MAC (and the EtherType after it) in one load.
    let src = u64::from_be_bytes(src.try_into().unwrap()) >> 16;
    (if src & MAC_GROUP_BIT == 0 { src } else { 0 }, rx)
}

/// The group (multicast) bit of a MAC as a key ([`MacAddr::as_u64`]).
const MAC_GROUP_BIT: u64 = 1 << 40;

/// Learns one frame's source, whatever its domain, source and outcome.
#[inline(never)]
fn learn_one(cx: &mut Cx<'_, L2Learn>, domains: &mut DomainCache<'_>, p: PacketId) {
    use L2LearnError as E;
    let m = cx.bufs.meta(p);
    let (bd, rx) = (m.bd, m.rx_if);
    let Some((domain, now)) = domains.get(bd) else {
        cx.discard(p, E::NoBridgeDomain);
        return;
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
        return;
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
            return;
        }
    }
    cx.enqueue(L2LearnNext::Forward, p);
}

#[cfg(test)]
mod tests {
    use crate::harness::Harness;
    use crate::l2::{BdMember, BridgeDomain, L2Clock, ManualClock};
    use crate::{BridgeDomainConfig, IfMode, Interface, Tables};
    use std::sync::Arc;
    use vswitch_wire::MacAddr;

    fn mac(n: u32) -> MacAddr {
        let b = n.to_be_bytes();
        MacAddr([2, 0, b[0], b[1], b[2], b[3]])
    }

    fn ip(dst: MacAddr, src: MacAddr) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        f.resize(60, 0x45);
        f
    }

    /// What a script of frames did: the frames each port sent after each
    /// step, then the counters and traces.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        tx: Vec<Vec<Vec<Vec<u8>>>>,
        counters: Vec<u64>,
        trace: Vec<String>,
    }

    /// Runs one script through bridge domain 1 (ports 0-2, a manual clock),
    /// whose MAC table first holds `filler` MACs (at least 1) behind port 2.
    fn run(filler: u32) -> Outcome {
        let mut t = Tables::default();
        for p in 0..3 {
            t.set_interface(Interface::port(p, &format!("pg{p}"), p, mac(0xa0 + p), IfMode::Bridge { bd: 1, shg: 0 }));
        }
        let clock = ManualClock::new(1000);
        let mut config = BridgeDomainConfig::new(1);
        config.mac_limit = 100_000;
        let members = (0..3).map(|sw_if| BdMember { sw_if, shg: 0 }).collect();
        let bd = Arc::new(BridgeDomain::with_clock(config, members, L2Clock::Manual(clock.clone())));
        for i in 0..filler {
            bd.macs.learn(mac(0x1_0000 + i), 2, 1000);
        }
        bd.macs.add_static(mac(0x5), 2).unwrap();
        assert_eq!(bd.macs.fits_in_cache(), filler < 100);
        t.set_bridge_domain(Arc::clone(&bd));
        let mut h = Harness::new(t, 4096);
        let (a, b, c, unknown, s) = (mac(1), mac(2), mac(3), mac(4), mac(5));
        let mut tx = Vec::new();
        let mut step = |h: &mut Harness, port: u32, frames: &[Vec<u8>]| {
            let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
            h.inject(port, &frames);
            tx.push((0..3).map(|p| h.take_tx(p)).collect::<Vec<_>>());
        };
        // New sources, then known ones in the same vector and the next.
        step(&mut h, 1, &[ip(a, b), ip(a, b)]);
        step(&mut h, 0, &[ip(b, a), ip(b, a), ip(c, a), ip(b, a)]);
        step(&mut h, 2, &[ip(a, c), ip(b, c)]);
        // Known sources to: a known destination, a filler one, the
        // sender's own port, broadcast, multicast, an unknown one; invalid
        // and static sources.
        let group = MacAddr([1, 0, 0x5e, 0, 0, 1]);
        let frames = [
            ip(b, a),
            ip(mac(0x1_0000), a),
            ip(a, a),
            ip(MacAddr::BROADCAST, a),
            ip(group, a),
            ip(unknown, a),
            ip(b, group),
            ip(b, MacAddr::ZERO),
            ip(b, s),
            ip(s, a),
            ip(c, a),
        ];
        step(&mut h, 0, &frames);
        // The next second: timestamps refreshed, still forwarded.
        clock.advance(1);
        step(&mut h, 0, &[ip(b, a), ip(c, a), ip(b, a)]);
        assert_eq!(bd.macs.get(a).unwrap().last_seen, 1001);
        // A moves to port 2 in the middle of a vector.
        step(&mut h, 2, &[ip(b, c), ip(b, a), ip(c, a), ip(a, c)]);
        // Traced frames take the whole path and say so.
        h.graph.add_trace("pg-input", 2).unwrap();
        step(&mut h, 1, &[ip(a, b), ip(c, b)]);
        let log = h.graph.trace_log();
        let trace = (1..=2).flat_map(|id| log.records(id)).filter(|r| r.starts_with("l2-")).collect();
        let counters = [
            ("l2-learn", "MACs learned"),
            ("l2-learn", "MACs moved"),
            ("l2-learn", "invalid source MAC"),
            ("l2-learn", "static MAC seen on another port"),
            ("l2-fwd", "destination on the input interface"),
        ]
        .iter()
        .map(|&(node, e)| h.error(node, e))
        .chain(["l2-learn", "l2-fwd", "l2-flood", "l2-output"].iter().map(|n| h.packets(n)))
        .collect();
        h.assert_no_leak();
        Outcome { tx, counters, trace }
    }

    /// l2-learn and l2-fwd decide the frames they can without the whole
    /// path, and look a large MAC table up in two passes: every way gives
    /// what the whole path gives.
    #[test]
    fn fast_paths_agree_with_the_whole_path_for_small_and_large_tables() {
        let small = run(1);
        let large = run(3000);
        assert_eq!(small, large);
        assert_eq!(small.counters[..5], [3, 1, 2, 1, 3], "learned, moved, invalid, static, same port");
        let (a, b) = (mac(1), mac(2));
        let sorted = |mut v: Vec<Vec<u8>>| {
            v.sort();
            v
        };
        let second: Vec<_> = small.tx[1].iter().cloned().map(sorted).collect();
        let c_from_a = ip(mac(3), a);
        assert_eq!(second, [vec![], sorted(vec![ip(b, a), ip(b, a), ip(b, a), c_from_a.clone()]), vec![c_from_a]]);
        let known = &small.tx[3];
        let (bcast, group, unknown) = (ip(MacAddr::BROADCAST, a), ip(MacAddr([1, 0, 0x5e, 0, 0, 1]), a), ip(mac(4), a));
        assert!(known[0].is_empty(), "nothing back to port 0: same port, invalid and static sources dropped");
        assert_eq!(sorted(known[1].clone()), sorted(vec![ip(b, a), bcast.clone(), group.clone(), unknown.clone()]));
        let to_2 = vec![ip(mac(0x1_0000), a), bcast, group, unknown, ip(mac(5), a), ip(mac(3), a)];
        assert_eq!(sorted(known[2].clone()), sorted(to_2));
        assert_eq!(
            small.trace,
            [
                "l2-learn: bd 1 sw_if 1 src 02:00:00:00:00:02: known",
                "l2-fwd: bd 1 sw_if 1 dst 02:00:00:00:00:01: to sw_if 2",
                "l2-output: sw_if 2",
                "l2-learn: bd 1 sw_if 1 src 02:00:00:00:00:02: known",
                "l2-fwd: bd 1 sw_if 1 dst 02:00:00:00:00:03: to sw_if 2",
                "l2-output: sw_if 2",
            ]
        );
    }
}
