//! IPv4 longest-prefix match: DIR-24-8 (as DPDK `rte_lpm`).
//!
//! * `tbl24`: 2^24 atomic 32-bit entries indexed by the top 24 bits of the
//!   address. An entry either holds the answer for the whole /24 or points to a
//!   tbl8 group.
//! * tbl8 groups: 256 entries indexed by the low 8 bits, used for /24s that
//!   contain a prefix longer than /24.
//!
//! Lookup is one load, plus a second dependent load for addresses inside a
//! /24 that has a tbl8 group.
//!
//! ## Entry encoding (one `u32`, one atomic word: readers never see it torn)
//!
//! ```text
//!  31    30    29..24   23..0
//! VALID  EXT   DEPTH    VALUE (leaf)  or  GROUP index (EXT)
//! ```
//!
//! * `VALID`: the entry answers a lookup (a prefix covers it). An all-zero
//!   entry is "no route".
//! * `EXT` (tbl24 only): `VALUE` is a tbl8 group index; the group answers.
//! * `DEPTH` (0..=32): length of the prefix this entry was written from. The
//!   writer uses it to apply incremental changes: inserting a /n overwrites
//!   only entries of depth <= n, removing a /n rewrites only entries of depth
//!   n (with the next covering prefix from the RIB).
//! * `VALUE`: the user's value, at most [`MAX_VALUE`] (2^24 - 1).
//!
//! ## Concurrency
//!
//! Readers share an `Arc<Ip4Table>` and only load; the single
//! [`Ip4LpmWriter`] stores. Every change of an address's answer is one atomic
//! store of one entry (Release; readers load with Acquire, which also makes
//! whatever the value indexes — a load-balance object written before the route
//! — visible). A new tbl8 group is filled completely before the tbl24 entry
//! that points at it is published. A group that collapses back into its tbl24
//! entry is quarantined (see [`crate::quiesce`]) and reused only after every
//! online reader has passed a quiescent point. tbl8 storage is preallocated
//! (lazily zeroed pages) and never moves.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;

use crate::quiesce::{IndexPool, Quiescence};
use crate::FibError;

/// Largest value an IPv4 route can carry (24 bits).
pub const MAX_VALUE: u32 = (1 << 24) - 1;
/// Default number of tbl8 groups (each 1 KiB; memory is reserved virtually and
/// only touched pages become resident).
pub const DEFAULT_MAX_TBL8_GROUPS: u32 = 1 << 16;
/// Upper bound for [`Ip4LpmConfig::max_tbl8_groups`] (the group index is 24 bits).
pub const MAX_TBL8_GROUPS_LIMIT: u32 = 1 << 24;

const TBL24_LEN: usize = 1 << 24;
const TBL8_GROUP: usize = 256;

/// Bit-level encoding of table entries.
pub(crate) mod entry {
    pub const VALID: u32 = 1 << 31;
    pub const EXT: u32 = 1 << 30;
    pub const DEPTH_SHIFT: u32 = 24;
    pub const DEPTH_MASK: u32 = 0x3f;
    pub const VALUE_MASK: u32 = 0x00ff_ffff;

    /// A leaf entry answering `value` for a prefix of length `depth`.
    #[inline]
    pub const fn leaf(depth: u8, value: u32) -> u32 {
        VALID | ((depth as u32 & DEPTH_MASK) << DEPTH_SHIFT) | (value & VALUE_MASK)
    }

    /// A tbl24 entry pointing at tbl8 group `group`.
    #[inline]
    pub const fn ext(group: u32) -> u32 {
        VALID | EXT | (group & VALUE_MASK)
    }

    #[inline]
    pub const fn is_valid(e: u32) -> bool {
        e & VALID != 0
    }

    #[inline]
    pub const fn is_ext(e: u32) -> bool {
        e & EXT != 0
    }

    #[inline]
    pub const fn depth(e: u32) -> u8 {
        ((e >> DEPTH_SHIFT) & DEPTH_MASK) as u8
    }

    #[inline]
    pub const fn value(e: u32) -> u32 {
        e & VALUE_MASK
    }

    /// What a lookup returns for a non-EXT entry.
    #[inline]
    pub const fn answer(e: u32) -> Option<u32> {
        if is_valid(e) {
            Some(value(e))
        } else {
            None
        }
    }
}

/// Sizing of an IPv4 table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip4LpmConfig {
    /// Maximum number of tbl8 groups (1..=2^24). Each /24 that holds a prefix
    /// longer than /24 uses one. Reserved up front (1 KiB each, virtual).
    pub max_tbl8_groups: u32,
}

impl Default for Ip4LpmConfig {
    fn default() -> Self {
        Self { max_tbl8_groups: DEFAULT_MAX_TBL8_GROUPS }
    }
}

/// The reader side of an IPv4 table: share it as `Arc<Ip4Table>` with the
/// workers; it only offers lookups.
pub struct Ip4Table {
    tbl24: Box<[AtomicU32; TBL24_LEN]>,
    tbl8: Box<[AtomicU32]>,
}

impl std::fmt::Debug for Ip4Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ip4Table").field("tbl8_groups", &(self.tbl8.len() / TBL8_GROUP)).finish_non_exhaustive()
    }
}

impl Ip4Table {
    fn new(max_tbl8_groups: u32) -> Self {
        let t = Self {
            tbl24: bytemuck::zeroed_slice_box(TBL24_LEN).try_into().expect("length is TBL24_LEN"),
            tbl8: bytemuck::zeroed_slice_box(max_tbl8_groups as usize * TBL8_GROUP),
        };
        // Random lookups over 64 MiB miss the TLB on every packet with 4 KiB
        // pages; ask for huge pages before anything is touched.
        vswitch_packet::advise_huge_pages(&t.tbl24[..]);
        vswitch_packet::advise_huge_pages(&t.tbl8);
        t
    }

    /// Longest-prefix match for `addr` (host order, `u32::from(Ipv4Addr)`).
    /// Returns the value of the longest matching prefix, `None` if no prefix
    /// (not even a default route) matches. One load, two for addresses in a
    /// /24 that contains longer prefixes.
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let mut e = self.tbl24[(addr >> 8) as usize].load(Ordering::Acquire);
        if entry::is_ext(e) {
            let i = ((entry::value(e) as usize) << 8) | (addr & 0xff) as usize;
            e = self.tbl8[i].load(Ordering::Acquire);
        }
        entry::answer(e)
    }

    /// [`Self::lookup`] for an [`Ipv4Addr`].
    #[inline]
    pub fn lookup_addr(&self, addr: Ipv4Addr) -> Option<u32> {
        self.lookup(u32::from(addr))
    }

    /// Looks up a vector of addresses: `out[i] = lookup(addrs[i])`.
    ///
    /// A straight loop on purpose: the lookups of different addresses are
    /// independent and the only branch (tbl8 or not) is well predicted, so
    /// the out-of-order core already keeps many tbl24/tbl8 misses in flight.
    /// A two-phase variant (all tbl24 loads of a chunk first, then the tbl8
    /// loads) measured 10-50 % slower here. (The IPv6 table, whose walk
    /// branches unpredictably, does use a level-by-level batch walk.)
    ///
    /// # Panics
    /// If `out` is shorter than `addrs`.
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Option<u32>]) {
        assert!(out.len() >= addrs.len(), "lookup_batch: output shorter than input");
        for (o, &a) in out.iter_mut().zip(addrs) {
            *o = self.lookup(a);
        }
    }

    #[inline]
    fn t24(&self, i: usize) -> &AtomicU32 {
        &self.tbl24[i]
    }

    #[inline]
    fn t8(&self, group: u32, j: usize) -> &AtomicU32 {
        &self.tbl8[group as usize * TBL8_GROUP + j]
    }
}

/// Counters describing an IPv4 table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip4Stats {
    /// Prefixes in the RIB.
    pub routes: usize,
    /// tbl8 groups referenced from tbl24.
    pub tbl8_in_use: u32,
    /// tbl8 groups waiting for a grace period before reuse.
    pub tbl8_quarantined: u32,
    /// Groups ever touched (their memory is resident).
    pub tbl8_high_water: u32,
    /// Configured maximum.
    pub tbl8_max: u32,
    /// Bytes of table memory that can be resident: tbl24 (64 MiB) plus the
    /// touched tbl8 groups, plus the writer's RIB.
    pub memory_bytes: usize,
}

/// The single writer of an IPv4 table. Holds the RIB (all prefixes and
/// values), computes the incremental change for each route update and applies
/// it while readers keep looking up.
pub struct Ip4LpmWriter {
    table: Arc<Ip4Table>,
    rib: PrefixMap<Ipv4Net, u32>,
    q: Arc<Quiescence>,
    groups: IndexPool,
}

impl std::fmt::Debug for Ip4LpmWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ip4LpmWriter").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl Ip4LpmWriter {
    /// Creates an empty table; freed tbl8 groups are reclaimed through `q`,
    /// the grace-period domain of the readers that will use [`Self::table`].
    pub fn new(config: Ip4LpmConfig, q: Arc<Quiescence>) -> Result<Self, FibError> {
        if config.max_tbl8_groups == 0 || config.max_tbl8_groups > MAX_TBL8_GROUPS_LIMIT {
            return Err(FibError::InvalidConfig { what: "max_tbl8_groups must be in 1..=2^24" });
        }
        Ok(Self {
            table: Arc::new(Ip4Table::new(config.max_tbl8_groups)),
            rib: PrefixMap::new(),
            q,
            groups: IndexPool::new(config.max_tbl8_groups),
        })
    }

    /// The reader side; clone the `Arc` for each worker.
    pub fn table(&self) -> &Arc<Ip4Table> {
        &self.table
    }

    /// The grace-period domain used for reclamation.
    pub fn quiescence(&self) -> &Arc<Quiescence> {
        &self.q
    }

    /// The routing information base: every prefix and its value.
    pub fn rib(&self) -> &PrefixMap<Ipv4Net, u32> {
        &self.rib
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.rib.len()
    }

    /// Whether the table has no prefix.
    pub fn is_empty(&self) -> bool {
        self.rib.is_empty()
    }

    /// The value stored for exactly `prefix` (host bits ignored).
    pub fn get(&self, prefix: &Ipv4Net) -> Option<u32> {
        self.rib.get(&prefix.trunc()).copied()
    }

    /// Longest-prefix match through the reader table.
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        self.table.lookup(addr)
    }

    /// Counters and memory use.
    pub fn stats(&self) -> Ip4Stats {
        Ip4Stats {
            routes: self.rib.len(),
            tbl8_in_use: self.groups.in_use(),
            tbl8_quarantined: self.groups.quarantined(),
            tbl8_high_water: self.groups.high_water(),
            tbl8_max: self.groups.max(),
            memory_bytes: TBL24_LEN * 4 + self.groups.high_water() as usize * TBL8_GROUP * 4 + self.rib.mem_size(),
        }
    }

    /// Makes quarantined tbl8 groups whose grace period has elapsed available
    /// again; returns how many. Called automatically when a group is needed.
    pub fn reclaim(&mut self) -> usize {
        self.groups.reclaim(&self.q)
    }

    /// Adds or replaces `prefix` (host bits are ignored) with `value`. Returns
    /// the previous value of exactly this prefix. Touches only the entries the
    /// prefix covers. On error nothing has changed.
    pub fn insert(&mut self, prefix: Ipv4Net, value: u32) -> Result<Option<u32>, FibError> {
        if value > MAX_VALUE {
            return Err(FibError::ValueTooLarge { value, max: MAX_VALUE });
        }
        let p = prefix.trunc();
        self.write_prefix(u32::from(p.network()), p.prefix_len(), value)?;
        Ok(self.rib.insert(p, value))
    }

    /// Inserts many routes. All values are validated and the needed tbl8
    /// groups counted first, so on error nothing has changed. Routes are
    /// applied in address order (better locality than random order). Later
    /// duplicates of a prefix win. Returns the number of routes applied.
    pub fn insert_bulk<I>(&mut self, routes: I) -> Result<usize, FibError>
    where
        I: IntoIterator<Item = (Ipv4Net, u32)>,
    {
        let mut v: Vec<(u32, u8, u32)> = Vec::new();
        for (p, value) in routes {
            if value > MAX_VALUE {
                return Err(FibError::ValueTooLarge { value, max: MAX_VALUE });
            }
            let p = p.trunc();
            v.push((u32::from(p.network()), p.prefix_len(), value));
        }
        let mut need: Vec<u32> = v
            .iter()
            .filter(|r| r.1 > 24)
            .map(|r| r.0 >> 8)
            .filter(|&i| !entry::is_ext(self.table.t24(i as usize).load(Ordering::Relaxed)))
            .collect();
        need.sort_unstable();
        need.dedup();
        if need.len() as u64 > self.groups.available_now() {
            self.reclaim();
            if need.len() as u64 > self.groups.available_now() {
                return Err(FibError::Tbl8Exhausted { max_groups: self.groups.max() });
            }
        }
        // Stable sort: duplicates keep their input order, so the last one wins.
        v.sort_by_key(|r| (r.0, r.1));
        let n = v.len();
        for (addr, len, value) in v {
            self.write_prefix(addr, len, value).expect("tbl8 groups were counted up front");
            let p = Ipv4Net::new(Ipv4Addr::from(addr), len).expect("length from an Ipv4Net");
            self.rib.insert(p, value);
        }
        Ok(n)
    }

    /// Removes exactly `prefix` (host bits ignored); returns its value, or
    /// `None` (and changes nothing) if it was not present. Addresses it
    /// covered fall back to the next covering prefix.
    pub fn remove(&mut self, prefix: &Ipv4Net) -> Option<u32> {
        let p = prefix.trunc();
        let old = self.rib.remove(&p)?;
        let len = p.prefix_len();
        let addr = u32::from(p.network());
        let rep = match self.rib.get_lpm(&p) {
            Some((c, &v)) => entry::leaf(c.prefix_len(), v),
            None => 0,
        };
        let t = &*self.table;
        if len > 24 {
            let i24 = (addr >> 8) as usize;
            let e = t.t24(i24).load(Ordering::Relaxed);
            debug_assert!(entry::is_ext(e), "a /{len} must live in a tbl8 group");
            if !entry::is_ext(e) {
                return Some(old);
            }
            let g = entry::value(e);
            let lo = g as usize * TBL8_GROUP + (addr & 0xff) as usize;
            uncover_slice(&t.tbl8[lo..lo + (1usize << (32 - len))], len, rep);
            // Collapse the group if nothing longer than /24 is left in it: then
            // every entry inherits the same covering prefix (or none).
            let first = t.t8(g, 0).load(Ordering::Relaxed);
            let collapsible = (!entry::is_valid(first) || entry::depth(first) <= 24)
                && (1..TBL8_GROUP).all(|j| t.t8(g, j).load(Ordering::Relaxed) == first);
            if collapsible {
                t.t24(i24).store(first, Ordering::Release);
                self.groups.retire(&self.q, g);
            }
        } else {
            let start = (addr >> 8) as usize;
            let end = start + (1usize << (24 - len));
            for s in &t.tbl24[start..end] {
                let e = s.load(Ordering::Relaxed);
                if e & entry::EXT != 0 {
                    let g = (e & entry::VALUE_MASK) as usize * TBL8_GROUP;
                    uncover_slice(&t.tbl8[g..g + TBL8_GROUP], len, rep);
                } else if uncovers(e, len) {
                    s.store(rep, Ordering::Release);
                }
            }
        }
        Some(old)
    }

    /// Removes every route (incrementally, readers keep working).
    pub fn clear(&mut self) {
        let mut keys: Vec<Ipv4Net> = self.rib.keys().collect();
        // Longest first: each removal then touches as little as possible.
        keys.sort_by_key(|p| std::cmp::Reverse(p.prefix_len()));
        for p in keys {
            self.remove(&p);
        }
    }

    /// Writes `addr/len -> value` into the table (not the RIB). Fails only
    /// when a new tbl8 group is needed and none is available, before any store.
    fn write_prefix(&mut self, addr: u32, len: u8, value: u32) -> Result<(), FibError> {
        let new = entry::leaf(len, value);
        if len > 24 {
            let i24 = (addr >> 8) as usize;
            let lo = (addr & 0xff) as usize;
            let hi = lo + (1usize << (32 - len));
            let e = self.table.t24(i24).load(Ordering::Relaxed);
            if entry::is_ext(e) {
                let base = entry::value(e) as usize * TBL8_GROUP;
                cover_slice(&self.table.tbl8[base + lo..base + hi], len, new);
            } else {
                let g = self.groups.alloc(&self.q).ok_or(FibError::Tbl8Exhausted { max_groups: self.groups.max() })?;
                let t = &*self.table;
                // Fill the whole group (inheriting the /24's current answer),
                // then publish it.
                for j in 0..TBL8_GROUP {
                    let v = if (lo..hi).contains(&j) { new } else { e };
                    t.t8(g, j).store(v, Ordering::Relaxed);
                }
                t.t24(i24).store(entry::ext(g), Ordering::Release);
            }
        } else {
            let t = &*self.table;
            let start = (addr >> 8) as usize;
            let end = start + (1usize << (24 - len));
            for s in &t.tbl24[start..end] {
                let e = s.load(Ordering::Relaxed);
                if e & entry::EXT != 0 {
                    let g = (e & entry::VALUE_MASK) as usize * TBL8_GROUP;
                    cover_slice(&t.tbl8[g..g + TBL8_GROUP], len, new);
                } else if covers(e, len) {
                    s.store(new, Ordering::Release);
                }
            }
        }
        Ok(())
    }
}

/// Whether inserting a /`len` overwrites non-EXT entry `e`: it is empty or
/// was written by a prefix no longer than `len`. (Written with plain bit
/// operations: these loops run over up to 2^24 entries.)
#[inline]
fn covers(e: u32, len: u8) -> bool {
    e & entry::VALID == 0 || (e >> entry::DEPTH_SHIFT) & entry::DEPTH_MASK <= u32::from(len)
}

/// Whether removing a /`len` rewrites non-EXT entry `e` (it was written by
/// that prefix).
#[inline]
fn uncovers(e: u32, len: u8) -> bool {
    e & entry::VALID != 0 && (e >> entry::DEPTH_SHIFT) & entry::DEPTH_MASK == u32::from(len)
}

fn cover_slice(slots: &[AtomicU32], len: u8, new: u32) {
    for s in slots {
        if covers(s.load(Ordering::Relaxed), len) {
            s.store(new, Ordering::Release);
        }
    }
}

fn uncover_slice(slots: &[AtomicU32], len: u8, rep: u32) {
    for s in slots {
        if uncovers(s.load(Ordering::Relaxed), len) {
            s.store(rep, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    fn writer() -> Ip4LpmWriter {
        Ip4LpmWriter::new(Ip4LpmConfig { max_tbl8_groups: 8 }, Quiescence::new()).unwrap()
    }

    #[test]
    fn entry_encoding_bits() {
        assert_eq!(entry::leaf(0, 0), 0x8000_0000);
        assert_eq!(entry::leaf(24, 0x12_3456), 0x9812_3456);
        assert_eq!(entry::leaf(32, MAX_VALUE), 0xA0FF_FFFF);
        assert_eq!(entry::ext(5), 0xC000_0005);
        let e = entry::leaf(17, 0xAB_CDEF);
        assert!(entry::is_valid(e) && !entry::is_ext(e));
        assert_eq!(entry::depth(e), 17);
        assert_eq!(entry::value(e), 0xAB_CDEF);
        assert_eq!(entry::answer(e), Some(0xAB_CDEF));
        assert_eq!(entry::answer(0), None);
        assert!(!entry::is_valid(0) && !entry::is_ext(0));
        let x = entry::ext(MAX_TBL8_GROUPS_LIMIT - 1);
        assert!(entry::is_ext(x) && entry::is_valid(x));
        assert_eq!(entry::value(x), MAX_TBL8_GROUPS_LIMIT - 1);
        for d in 0..=32u8 {
            assert_eq!(entry::depth(entry::leaf(d, 7)), d);
            assert_eq!(entry::value(entry::leaf(d, 7)), 7);
        }
    }

    #[test]
    fn empty_table_misses() {
        let w = writer();
        assert_eq!(w.lookup(0), None);
        assert_eq!(w.lookup(u32::MAX), None);
        assert!(w.is_empty());
    }

    #[test]
    fn default_route_and_host_route() {
        let mut w = writer();
        assert_eq!(w.insert(net("0.0.0.0/0"), 1).unwrap(), None);
        assert_eq!(w.lookup(0), Some(1));
        assert_eq!(w.lookup(u32::MAX), Some(1));
        w.insert(net("255.255.255.255/32"), 2).unwrap();
        w.insert(net("0.0.0.0/32"), 3).unwrap();
        assert_eq!(w.lookup(u32::MAX), Some(2));
        assert_eq!(w.lookup(u32::MAX - 1), Some(1));
        assert_eq!(w.lookup(0), Some(3));
        assert_eq!(w.lookup(1), Some(1));
        assert_eq!(w.stats().tbl8_in_use, 2);
        assert_eq!(w.remove(&net("0.0.0.0/0")), Some(1));
        assert_eq!(w.lookup(1), None);
        assert_eq!(w.lookup(u32::MAX), Some(2));
        assert_eq!(w.lookup(0), Some(3));
        assert_eq!(w.remove(&net("255.255.255.255/32")), Some(2));
        assert_eq!(w.remove(&net("0.0.0.0/32")), Some(3));
        assert_eq!(w.lookup(0), None);
        assert_eq!(w.stats().tbl8_in_use, 0);
        assert_eq!(w.stats().tbl8_quarantined, 2);
        assert_eq!(w.reclaim(), 2);
        assert_eq!(w.stats().tbl8_quarantined, 0);
    }

    #[test]
    fn overlapping_inserts_any_order() {
        let routes =
            [("10.0.0.0/8", 8), ("10.1.0.0/16", 16), ("10.1.2.0/24", 24), ("10.1.2.128/25", 25), ("10.1.2.129/32", 32)];
        let probes = [
            ("10.200.0.1", Some(8)),
            ("10.1.200.1", Some(16)),
            ("10.1.2.1", Some(24)),
            ("10.1.2.130", Some(25)),
            ("10.1.2.129", Some(32)),
            ("10.1.2.128", Some(25)),
            ("10.1.2.127", Some(24)),
            ("11.0.0.0", None),
            ("9.255.255.255", None),
        ];
        // forward and reverse order give the same table
        for rev in [false, true] {
            let mut w = writer();
            let mut order: Vec<_> = routes.to_vec();
            if rev {
                order.reverse();
            }
            for (p, v) in &order {
                w.insert(net(p), *v).unwrap();
            }
            for (a, want) in probes {
                assert_eq!(w.lookup(ip(a)), want, "{a} rev={rev}");
            }
            // remove the middle ones: addresses fall back to the next cover
            assert_eq!(w.remove(&net("10.1.2.0/24")), Some(24));
            assert_eq!(w.lookup(ip("10.1.2.1")), Some(16));
            assert_eq!(w.lookup(ip("10.1.2.130")), Some(25));
            assert_eq!(w.remove(&net("10.1.2.128/25")), Some(25));
            assert_eq!(w.lookup(ip("10.1.2.130")), Some(16));
            assert_eq!(w.lookup(ip("10.1.2.129")), Some(32));
            assert_eq!(w.stats().tbl8_in_use, 1);
            assert_eq!(w.remove(&net("10.1.2.129/32")), Some(32));
            assert_eq!(w.lookup(ip("10.1.2.129")), Some(16));
            assert_eq!(w.stats().tbl8_in_use, 0, "group collapsed");
            assert_eq!(w.remove(&net("10.1.0.0/16")), Some(16));
            assert_eq!(w.lookup(ip("10.1.2.129")), Some(8));
            assert_eq!(w.remove(&net("10.0.0.0/8")), Some(8));
            assert_eq!(w.lookup(ip("10.1.2.129")), None);
            assert!(w.is_empty());
        }
    }

    #[test]
    fn shorter_prefix_inserted_later_does_not_override_longer() {
        let mut w = writer();
        w.insert(net("192.168.1.0/24"), 1).unwrap();
        w.insert(net("192.168.1.64/26"), 2).unwrap();
        w.insert(net("192.168.0.0/16"), 3).unwrap();
        assert_eq!(w.lookup(ip("192.168.1.65")), Some(2));
        assert_eq!(w.lookup(ip("192.168.1.1")), Some(1));
        assert_eq!(w.lookup(ip("192.168.2.1")), Some(3));
        // replacing the /16 value touches only its own entries
        assert_eq!(w.insert(net("192.168.0.0/16"), 4).unwrap(), Some(3));
        assert_eq!(w.lookup(ip("192.168.1.65")), Some(2));
        assert_eq!(w.lookup(ip("192.168.2.1")), Some(4));
        // replacing the /26 value
        assert_eq!(w.insert(net("192.168.1.64/26"), 5).unwrap(), Some(2));
        assert_eq!(w.lookup(ip("192.168.1.65")), Some(5));
    }

    #[test]
    fn host_bits_are_ignored() {
        let mut w = writer();
        w.insert(net("10.1.2.3/16"), 7).unwrap();
        assert_eq!(w.get(&net("10.1.0.0/16")), Some(7));
        assert_eq!(w.lookup(ip("10.1.255.255")), Some(7));
        assert_eq!(w.remove(&net("10.1.9.9/16")), Some(7));
        assert!(w.is_empty());
    }

    #[test]
    fn remove_absent_changes_nothing() {
        let mut w = writer();
        w.insert(net("10.0.0.0/8"), 1).unwrap();
        assert_eq!(w.remove(&net("10.0.0.0/9")), None);
        assert_eq!(w.remove(&net("10.0.0.0/32")), None);
        assert_eq!(w.lookup(ip("10.0.0.0")), Some(1));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn value_too_large_changes_nothing() {
        let mut w = writer();
        let err = w.insert(net("10.0.0.0/8"), MAX_VALUE + 1).unwrap_err();
        assert_eq!(err, FibError::ValueTooLarge { value: MAX_VALUE + 1, max: MAX_VALUE });
        assert!(w.is_empty());
        assert_eq!(w.lookup(ip("10.0.0.0")), None);
        w.insert(net("10.0.0.0/8"), MAX_VALUE).unwrap();
        assert_eq!(w.lookup(ip("10.0.0.0")), Some(MAX_VALUE));
    }

    #[test]
    fn tbl8_exhaustion_is_clean() {
        let mut w = Ip4LpmWriter::new(Ip4LpmConfig { max_tbl8_groups: 2 }, Quiescence::new()).unwrap();
        w.insert(net("10.0.0.0/8"), 1).unwrap();
        w.insert(net("10.0.0.0/25"), 2).unwrap();
        w.insert(net("10.0.1.0/25"), 3).unwrap();
        // same /24 as an existing group: fine
        w.insert(net("10.0.1.128/26"), 4).unwrap();
        let err = w.insert(net("10.0.2.0/25"), 5).unwrap_err();
        assert_eq!(err, FibError::Tbl8Exhausted { max_groups: 2 });
        assert_eq!(w.get(&net("10.0.2.0/25")), None);
        assert_eq!(w.lookup(ip("10.0.2.1")), Some(1));
        assert_eq!(w.len(), 4);
        // bulk: validated up front, nothing applied
        let err = w.insert_bulk(vec![(net("11.0.0.0/8"), 9), (net("10.0.3.0/25"), 9)]).unwrap_err();
        assert_eq!(err, FibError::Tbl8Exhausted { max_groups: 2 });
        assert_eq!(w.lookup(ip("11.0.0.1")), None);
        assert_eq!(w.len(), 4);
        // freeing a group makes room (no readers registered: reclaimable at once)
        w.remove(&net("10.0.0.0/25"));
        w.insert(net("10.0.2.0/25"), 5).unwrap();
        assert_eq!(w.lookup(ip("10.0.2.1")), Some(5));
    }

    #[test]
    fn bulk_insert_matches_single_inserts() {
        let routes = vec![
            (net("0.0.0.0/0"), 1),
            (net("10.0.0.0/8"), 2),
            (net("10.1.2.0/24"), 3),
            (net("10.1.2.0/30"), 4),
            (net("10.1.2.0/24"), 5), // duplicate: last wins
        ];
        let mut a = writer();
        let mut b = writer();
        assert_eq!(a.insert_bulk(routes.clone()).unwrap(), 5);
        for (p, v) in routes {
            b.insert(p, v).unwrap();
        }
        for addr in [0, ip("10.0.0.0"), ip("10.1.2.0"), ip("10.1.2.3"), ip("10.1.2.4"), u32::MAX] {
            assert_eq!(a.lookup(addr), b.lookup(addr), "{}", Ipv4Addr::from(addr));
        }
        assert_eq!(a.get(&net("10.1.2.0/24")), Some(5));
        assert_eq!(a.len(), 4);
        assert!(a.insert_bulk(vec![(net("12.0.0.0/8"), MAX_VALUE + 1)]).is_err());
        assert_eq!(a.lookup(ip("12.0.0.0")), Some(1));
    }

    #[test]
    fn batch_lookup_matches_single() {
        let mut w = writer();
        w.insert(net("10.0.0.0/8"), 1).unwrap();
        w.insert(net("10.0.0.128/25"), 2).unwrap();
        let addrs: Vec<u32> = (0..100u32).map(|i| ip("10.0.0.100") + i).chain([0, 7]).collect();
        let mut out = vec![None; addrs.len()];
        w.table().lookup_batch(&addrs, &mut out);
        for (a, o) in addrs.iter().zip(&out) {
            assert_eq!(*o, w.lookup(*a));
        }
        assert_eq!(out[0], Some(1));
        assert_eq!(out[99], Some(2));
        assert_eq!(out[100], None);
    }

    #[test]
    fn clear_frees_everything() {
        let mut w = writer();
        w.insert(net("0.0.0.0/0"), 1).unwrap();
        w.insert(net("1.2.3.4/32"), 2).unwrap();
        w.insert(net("1.2.3.0/24"), 3).unwrap();
        w.clear();
        assert!(w.is_empty());
        assert_eq!(w.lookup(ip("1.2.3.4")), None);
        assert_eq!(w.stats().tbl8_in_use, 0);
    }

    #[test]
    fn freed_group_waits_for_readers() {
        let q = Quiescence::new();
        let reader = q.register_reader();
        let mut w = Ip4LpmWriter::new(Ip4LpmConfig { max_tbl8_groups: 4 }, q.clone()).unwrap();
        w.insert(net("10.0.0.0/25"), 1).unwrap();
        assert_eq!(w.remove(&net("10.0.0.0/25")), Some(1));
        let s = w.stats();
        assert_eq!((s.tbl8_in_use, s.tbl8_quarantined, s.tbl8_high_water), (0, 1, 1));
        // the reader may still be inside group 0: a new group is taken instead
        w.insert(net("10.0.1.0/25"), 2).unwrap();
        assert_eq!(w.stats().tbl8_high_water, 2);
        assert_eq!(w.reclaim(), 0);
        reader.quiescent();
        assert_eq!(w.reclaim(), 1);
        w.insert(net("10.0.2.0/25"), 3).unwrap();
        let s = w.stats();
        assert_eq!((s.tbl8_in_use, s.tbl8_quarantined, s.tbl8_high_water), (2, 0, 2), "group 0 reused");
        // an offline reader does not hold anything back
        reader.offline();
        w.remove(&net("10.0.1.0/25"));
        assert_eq!(w.reclaim(), 1);
        assert_eq!(w.lookup(ip("10.0.2.1")), Some(3));
        assert_eq!(w.lookup(ip("10.0.1.1")), None);
    }

    #[test]
    fn invalid_config() {
        assert!(Ip4LpmWriter::new(Ip4LpmConfig { max_tbl8_groups: 0 }, Quiescence::new()).is_err());
        assert!(
            Ip4LpmWriter::new(Ip4LpmConfig { max_tbl8_groups: MAX_TBL8_GROUPS_LIMIT + 1 }, Quiescence::new()).is_err()
        );
    }
}
