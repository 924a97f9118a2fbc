//! IPv6 longest-prefix match: a multibit trie with a wide first level,
//! 8-bit stride groups below it and single-prefix records for sparse
//! subtrees.
//!
//! * Level 0: `2^l0_bits` atomic 32-bit entries (default 24 bits, 64 MiB
//!   reserved, pages touched on demand) indexed by the top `l0_bits` of the
//!   address.
//! * Groups: 256 entries indexed by the next 8 bits, as in DPDK `rte_lpm6`.
//! * Records: a subtree that holds exactly one prefix longer than the slot
//!   (the common case for sparse tables: a lone /48 under a /24 slot) is not
//!   expanded into a chain of groups but stored as one immutable record
//!   `{prefix, length, value, fallback}`; the lookup compares the address with
//!   the prefix and answers `value` or `fallback`. This keeps 100k random
//!   /32–/64 routes in a few MiB instead of hundreds, and bounds the walk:
//!   at most `1 + ceil((len - l0_bits) / 8)` loads for a /len route, and two
//!   (slot + record) for an isolated one.
//! * The default route `::/0` is kept in its own word and answers every lookup
//!   that ends on an empty entry.
//!
//! ## Entry encoding (`u32`)
//!
//! ```text
//!  31..30  KIND: 0 empty, 1 leaf, 2 group, 3 record
//!  leaf:   29..23 DEPTH-1 (prefix length 1..=128)   22..0 VALUE (< 2^23)
//!  group:  29..0  group index
//!  record: 29..0  record index
//! ```
//!
//! A record is four `AtomicU64` words (32 bytes, cache-line aligned pairs):
//! prefix high, prefix low, `meta = depth << 56 | value << 32 | fallback`, and
//! padding. The prefix and depth never change while the record is reachable;
//! `meta` changes in place (one atomic word) when the route's value or the
//! covering prefix changes.
//!
//! ## Structure invariant (kept by the writer, relied on only for memory use)
//!
//! For a slot whose range is a prefix `R`, with `below(R)` the routes strictly
//! longer than `R` inside it: no such route → leaf/empty (the longest route
//! covering `R`); exactly one → a record; two or more → a group. Lookups are
//! correct even where a group holds fewer than two routes (the writer leaves
//! such a group in place if it cannot allocate the record to replace it).
//!
//! Concurrency is as for [`crate::ip4`]: every change of an answer is one
//! atomic store (Release; readers Acquire), new subtrees are built completely
//! before the one store that publishes them, and replaced groups/records go
//! through the grace-period quarantine.

use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use ipnet::Ipv6Net;
use prefix_trie::PrefixMap;

use crate::quiesce::{IndexPool, Quiescence};
use crate::FibError;

/// Largest value an IPv6 route can carry (23 bits).
pub const MAX_VALUE: u32 = (1 << 23) - 1;
/// Default number of stride groups (1 KiB each, reserved virtually).
pub const DEFAULT_MAX_GROUPS: u32 = 1 << 16;
/// Default number of single-prefix records (32 bytes each, reserved virtually).
pub const DEFAULT_MAX_RECORDS: u32 = 1 << 20;
/// Upper bound for [`Ip6LpmConfig::max_groups`].
pub const MAX_GROUPS_LIMIT: u32 = 1 << 22;
/// Upper bound for [`Ip6LpmConfig::max_records`].
pub const MAX_RECORDS_LIMIT: u32 = 1 << 26;

const GROUP: usize = 256;
const REC_WORDS: usize = 4;
const BATCH: usize = 32;

/// Bit-level encoding of IPv6 table entries and record metadata.
pub(crate) mod entry {
    pub const KIND_SHIFT: u32 = 30;
    pub const EMPTY: u32 = 0;
    pub const LEAF: u32 = 1;
    pub const GROUP: u32 = 2;
    pub const RECORD: u32 = 3;
    pub const DEPTH_SHIFT: u32 = 23;
    pub const VALUE_MASK: u32 = (1 << 23) - 1;
    pub const INDEX_MASK: u32 = (1 << 30) - 1;

    #[inline]
    pub const fn kind(e: u32) -> u32 {
        e >> KIND_SHIFT
    }

    /// Leaf for a prefix of length `depth` (1..=128).
    #[inline]
    pub const fn leaf(depth: u8, value: u32) -> u32 {
        (LEAF << KIND_SHIFT) | (((depth as u32 - 1) & 0x7f) << DEPTH_SHIFT) | (value & VALUE_MASK)
    }

    #[inline]
    pub const fn group(index: u32) -> u32 {
        (GROUP << KIND_SHIFT) | (index & INDEX_MASK)
    }

    #[inline]
    pub const fn record(index: u32) -> u32 {
        (RECORD << KIND_SHIFT) | (index & INDEX_MASK)
    }

    /// Prefix length of a leaf.
    #[inline]
    pub const fn depth(e: u32) -> u8 {
        (((e >> DEPTH_SHIFT) & 0x7f) + 1) as u8
    }

    #[inline]
    pub const fn value(e: u32) -> u32 {
        e & VALUE_MASK
    }

    #[inline]
    pub const fn index(e: u32) -> u32 {
        e & INDEX_MASK
    }

    /// Record metadata word.
    #[inline]
    pub const fn meta(depth: u8, value: u32, fallback: u32) -> u64 {
        ((depth as u64) << 56) | (((value & VALUE_MASK) as u64) << 32) | fallback as u64
    }

    #[inline]
    pub const fn meta_depth(m: u64) -> u8 {
        (m >> 56) as u8
    }

    #[inline]
    pub const fn meta_value(m: u64) -> u32 {
        (m >> 32) as u32 & VALUE_MASK
    }

    #[inline]
    pub const fn meta_fallback(m: u64) -> u32 {
        m as u32
    }

    /// Mask of the top `depth` bits.
    #[inline]
    pub const fn mask(depth: u8) -> u128 {
        if depth == 0 {
            0
        } else {
            u128::MAX << (128 - depth as u32)
        }
    }
}

/// Sizing of an IPv6 table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip6LpmConfig {
    /// Bits resolved by the first level: 8, 16 or 24 (default 24: 64 MiB
    /// reserved, 2^24 slots; 16: 256 KiB, one more level for long prefixes).
    pub l0_bits: u8,
    /// Maximum stride groups (1..=2^22), 1 KiB each.
    pub max_groups: u32,
    /// Maximum single-prefix records (1..=2^26), 32 bytes each.
    pub max_records: u32,
}

impl Default for Ip6LpmConfig {
    fn default() -> Self {
        Self { l0_bits: 24, max_groups: DEFAULT_MAX_GROUPS, max_records: DEFAULT_MAX_RECORDS }
    }
}

/// The reader side of an IPv6 table: share it as `Arc<Ip6Table>`.
pub struct Ip6Table {
    l0: Box<[AtomicU32]>,
    l0_shift: u32,
    groups: Box<[AtomicU32]>,
    records: Box<[AtomicU64]>,
    /// Word offset of record 0 in `records` (aligns records to 32 bytes).
    rec_base: usize,
    /// The `::/0` route: a leaf entry or empty.
    default: AtomicU32,
}

impl std::fmt::Debug for Ip6Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ip6Table").field("l0_bits", &(128 - self.l0_shift)).finish_non_exhaustive()
    }
}

impl Ip6Table {
    fn new(c: &Ip6LpmConfig) -> Self {
        let records: Box<[AtomicU64]> = bytemuck::zeroed_slice_box(c.max_records as usize * REC_WORDS + REC_WORDS);
        // Start record 0 on a 32-byte boundary so no record straddles a cache
        // line (reading an address is safe; nothing is dereferenced).
        let addr = records.as_ptr() as usize;
        let rec_base = ((32 - addr % 32) % 32) / 8;
        let t = Self {
            l0: bytemuck::zeroed_slice_box(1usize << c.l0_bits),
            l0_shift: 128 - u32::from(c.l0_bits),
            groups: bytemuck::zeroed_slice_box(c.max_groups as usize * GROUP),
            records,
            rec_base,
            default: AtomicU32::new(entry::EMPTY),
        };
        // Fewer TLB misses on random lookups (advice; see the IPv4 table).
        vswitch_packet::advise_huge_pages(&t.l0);
        vswitch_packet::advise_huge_pages(&t.groups);
        vswitch_packet::advise_huge_pages(&t.records);
        t
    }

    /// Longest-prefix match for `addr` (`u128::from_be_bytes(octets)`, i.e.
    /// `u128::from(Ipv6Addr)`). Returns the value of the longest matching
    /// prefix or `None`.
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        let e = self.l0[(addr >> self.l0_shift) as usize].load(Ordering::Acquire);
        self.walk(e, addr)
    }

    /// [`Self::lookup`] for an [`Ipv6Addr`].
    #[inline]
    pub fn lookup_addr(&self, addr: Ipv6Addr) -> Option<u32> {
        self.lookup(u128::from(addr))
    }

    /// Looks up a vector of addresses: `out[i] = lookup(addrs[i])`. Walks a
    /// chunk of addresses level by level (all first-level loads, then all
    /// second-level loads, ...), then resolves records and leaves, so the
    /// cache misses of different addresses overlap instead of waiting behind
    /// each other's branch mispredictions.
    ///
    /// # Panics
    /// If `out` is shorter than `addrs`.
    pub fn lookup_batch(&self, addrs: &[u128], out: &mut [Option<u32>]) {
        assert!(out.len() >= addrs.len(), "lookup_batch: output shorter than input");
        let mut ent = [0u32; BATCH];
        for (a, o) in addrs.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let ent = &mut ent[..a.len()];
            for (e, &addr) in ent.iter_mut().zip(a) {
                *e = self.l0[(addr >> self.l0_shift) as usize].load(Ordering::Acquire);
            }
            let mut shift = self.l0_shift;
            while shift >= 8 {
                shift -= 8;
                let mut deeper = false;
                for (e, &addr) in ent.iter_mut().zip(a) {
                    if entry::kind(*e) == entry::GROUP {
                        let j = ((addr >> shift) & 0xff) as usize;
                        *e = self.groups[(entry::index(*e) as usize) << 8 | j].load(Ordering::Acquire);
                        deeper = true;
                    }
                }
                if !deeper {
                    break;
                }
            }
            for ((&e, &addr), o) in ent.iter().zip(a).zip(o.iter_mut()) {
                *o = match entry::kind(e) {
                    entry::LEAF => Some(entry::value(e)),
                    entry::RECORD => self.record_answer(entry::index(e), addr),
                    _ => self.default_answer(),
                };
            }
        }
    }

    /// Continues a lookup from first-level entry `e`.
    #[inline]
    fn walk(&self, mut e: u32, addr: u128) -> Option<u32> {
        let mut shift = self.l0_shift;
        loop {
            match entry::kind(e) {
                entry::LEAF => return Some(entry::value(e)),
                entry::GROUP => {
                    // A group never sits at the last level, so shift >= 8.
                    shift = shift.wrapping_sub(8);
                    let j = (addr.wrapping_shr(shift) & 0xff) as usize;
                    e = self.groups[(entry::index(e) as usize) << 8 | j].load(Ordering::Acquire);
                }
                entry::RECORD => return self.record_answer(entry::index(e), addr),
                _ => return self.default_answer(),
            }
        }
    }

    #[inline]
    fn record_answer(&self, r: u32, addr: u128) -> Option<u32> {
        let b = self.rec_base + r as usize * REC_WORDS;
        let w = &self.records[b..b + 3];
        let key = (u128::from(w[0].load(Ordering::Relaxed)) << 64) | u128::from(w[1].load(Ordering::Relaxed));
        let m = w[2].load(Ordering::Acquire);
        if (addr ^ key) & entry::mask(entry::meta_depth(m)) == 0 {
            Some(entry::meta_value(m))
        } else {
            let f = entry::meta_fallback(m);
            if entry::kind(f) == entry::LEAF {
                Some(entry::value(f))
            } else {
                self.default_answer()
            }
        }
    }

    #[inline]
    fn default_answer(&self) -> Option<u32> {
        let d = self.default.load(Ordering::Acquire);
        if entry::kind(d) == entry::LEAF {
            Some(entry::value(d))
        } else {
            None
        }
    }

    fn rec_word(&self, r: u32, w: usize) -> &AtomicU64 {
        &self.records[self.rec_base + r as usize * REC_WORDS + w]
    }
}

/// Where an entry lives.
#[derive(Clone, Copy, Debug)]
enum Slot {
    L0(usize),
    Group(u32, usize),
}

/// A route below a slot: (address, length, value).
type Route = (u128, u8, u32);

/// Counters describing an IPv6 table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip6Stats {
    pub routes: usize,
    pub groups_in_use: u32,
    pub groups_quarantined: u32,
    pub groups_high_water: u32,
    pub records_in_use: u32,
    pub records_quarantined: u32,
    pub records_high_water: u32,
    /// Bytes that can be resident: first level, touched groups and records,
    /// plus the writer's RIB.
    pub memory_bytes: usize,
}

/// The single writer of an IPv6 table (holds the RIB).
pub struct Ip6LpmWriter {
    table: Arc<Ip6Table>,
    rib: PrefixMap<Ipv6Net, u32>,
    q: Arc<Quiescence>,
    groups: IndexPool,
    records: IndexPool,
    l0_bits: u8,
}

impl std::fmt::Debug for Ip6LpmWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ip6LpmWriter").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

/// Something allocated while building an unpublished subtree.
#[derive(Clone, Copy)]
enum Alloc {
    Group(u32),
    Record(u32),
}

impl Ip6LpmWriter {
    /// Creates an empty table reclaiming through `q`.
    pub fn new(config: Ip6LpmConfig, q: Arc<Quiescence>) -> Result<Self, FibError> {
        if !matches!(config.l0_bits, 8 | 16 | 24) {
            return Err(FibError::InvalidConfig { what: "l0_bits must be 8, 16 or 24" });
        }
        if config.max_groups == 0 || config.max_groups > MAX_GROUPS_LIMIT {
            return Err(FibError::InvalidConfig { what: "max_groups must be in 1..=2^22" });
        }
        if config.max_records == 0 || config.max_records > MAX_RECORDS_LIMIT {
            return Err(FibError::InvalidConfig { what: "max_records must be in 1..=2^26" });
        }
        Ok(Self {
            table: Arc::new(Ip6Table::new(&config)),
            rib: PrefixMap::new(),
            q,
            groups: IndexPool::new(config.max_groups),
            records: IndexPool::new(config.max_records),
            l0_bits: config.l0_bits,
        })
    }

    /// The reader side; clone the `Arc` for each worker.
    pub fn table(&self) -> &Arc<Ip6Table> {
        &self.table
    }

    /// The grace-period domain used for reclamation.
    pub fn quiescence(&self) -> &Arc<Quiescence> {
        &self.q
    }

    /// The routing information base.
    pub fn rib(&self) -> &PrefixMap<Ipv6Net, u32> {
        &self.rib
    }

    pub fn len(&self) -> usize {
        self.rib.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rib.is_empty()
    }

    /// The value stored for exactly `prefix` (host bits ignored).
    pub fn get(&self, prefix: &Ipv6Net) -> Option<u32> {
        self.rib.get(&prefix.trunc()).copied()
    }

    /// Longest-prefix match through the reader table.
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        self.table.lookup(addr)
    }

    pub fn stats(&self) -> Ip6Stats {
        Ip6Stats {
            routes: self.rib.len(),
            groups_in_use: self.groups.in_use(),
            groups_quarantined: self.groups.quarantined(),
            groups_high_water: self.groups.high_water(),
            records_in_use: self.records.in_use(),
            records_quarantined: self.records.quarantined(),
            records_high_water: self.records.high_water(),
            memory_bytes: (4usize << self.l0_bits)
                + self.groups.high_water() as usize * GROUP * 4
                + self.records.high_water() as usize * REC_WORDS * 8
                + self.rib.mem_size(),
        }
    }

    /// Makes quarantined groups and records whose grace period has elapsed
    /// available again; returns how many.
    pub fn reclaim(&mut self) -> usize {
        self.groups.reclaim(&self.q) + self.records.reclaim(&self.q)
    }

    /// Adds or replaces `prefix` (host bits ignored); returns the previous
    /// value of exactly this prefix. On error nothing has changed.
    pub fn insert(&mut self, prefix: Ipv6Net, value: u32) -> Result<Option<u32>, FibError> {
        if value > MAX_VALUE {
            return Err(FibError::ValueTooLarge { value, max: MAX_VALUE });
        }
        let p = prefix.trunc();
        let len = p.prefix_len();
        let addr = u128::from(p.network());
        if len == 0 {
            self.table.default.store((entry::LEAF << entry::KIND_SHIFT) | value, Ordering::Release);
        } else if len <= self.l0_bits {
            let new = entry::leaf(len, value);
            let start = (addr >> (128 - u32::from(self.l0_bits))) as usize;
            for i in start..start + (1usize << (self.l0_bits - len)) {
                self.cover(Slot::L0(i), len, new);
            }
        } else {
            self.insert_long(addr, len, value)?;
        }
        Ok(self.rib.insert(p, value))
    }

    /// Inserts many routes; values are validated first. If the table runs
    /// out of groups or records part-way, the routes applied so far are
    /// undone (previous values restored) and the error returned, so on error
    /// the routing state is unchanged. Returns the number of routes applied.
    pub fn insert_bulk<I>(&mut self, routes: I) -> Result<usize, FibError>
    where
        I: IntoIterator<Item = (Ipv6Net, u32)>,
    {
        let mut v: Vec<(Ipv6Net, u32)> = Vec::new();
        for (p, value) in routes {
            if value > MAX_VALUE {
                return Err(FibError::ValueTooLarge { value, max: MAX_VALUE });
            }
            v.push((p.trunc(), value));
        }
        v.sort_by_key(|r| (r.0.network(), r.0.prefix_len()));
        let mut undo: Vec<(Ipv6Net, Option<u32>)> = Vec::with_capacity(v.len());
        for &(p, value) in &v {
            match self.insert(p, value) {
                Ok(old) => undo.push((p, old)),
                Err(e) => {
                    for (p, old) in undo.into_iter().rev() {
                        match old {
                            // Changing the value of an existing route never allocates.
                            Some(o) => {
                                self.insert(p, o).expect("restoring a value cannot fail");
                            }
                            None => {
                                self.remove(&p);
                            }
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(v.len())
    }

    /// Removes exactly `prefix` (host bits ignored); returns its value or
    /// `None` (changing nothing) if absent.
    pub fn remove(&mut self, prefix: &Ipv6Net) -> Option<u32> {
        let p = prefix.trunc();
        let old = self.rib.remove(&p)?;
        let len = p.prefix_len();
        let addr = u128::from(p.network());
        if len == 0 {
            self.table.default.store(entry::EMPTY, Ordering::Release);
            return Some(old);
        }
        let rep = self.covering_entry(&p);
        if len <= self.l0_bits {
            let start = (addr >> (128 - u32::from(self.l0_bits))) as usize;
            for i in start..start + (1usize << (self.l0_bits - len)) {
                self.uncover(Slot::L0(i), len, rep);
            }
            return Some(old);
        }
        // The path of ext slots from level 0 to where the prefix ends.
        let mut path: Vec<(Slot, u8)> = Vec::new();
        let mut slot = Slot::L0((addr >> (128 - u32::from(self.l0_bits))) as usize);
        let mut r = self.l0_bits;
        loop {
            let e = self.load(slot);
            match entry::kind(e) {
                entry::RECORD => {
                    path.push((slot, r));
                    break;
                }
                entry::GROUP => {
                    path.push((slot, r));
                    let c = r + 8;
                    if len <= c {
                        break;
                    }
                    slot = Slot::Group(entry::index(e), child_index(addr, c));
                    r = c;
                }
                _ => {
                    debug_assert!(false, "route /{len} missing from the table");
                    return Some(old);
                }
            }
        }
        // Top-down: replace the highest slot that now holds at most one route
        // below it by its canonical form (leaf or record).
        for &(slot, r) in &path {
            let range = Ipv6Net::new(Ipv6Addr::from(addr & entry::mask(r)), r).expect("r <= 128");
            let below = self.below(&range, 2);
            if below.len() > 1 {
                continue;
            }
            let inherited = self.covering_entry(&range);
            let old_e = self.load(slot);
            let (new, keep) = match below.first() {
                None => (Some(inherited), None),
                Some(&q) => match self.find_record(old_e, r, q) {
                    Some(ri) => {
                        // Its fallback may still name the removed route (the
                        // uncover has not run): in both places it now inherits
                        // the slot's cover.
                        let m = self.table.rec_word(ri, 2).load(Ordering::Relaxed);
                        if entry::meta_fallback(m) != inherited {
                            self.table.rec_word(ri, 2).store(entry::meta(q.1, q.2, inherited), Ordering::Release);
                        }
                        (Some(entry::record(ri)), Some(ri))
                    }
                    None => match self.records.alloc(&self.q) {
                        Some(ri) => {
                            self.write_record(ri, q, inherited);
                            (Some(entry::record(ri)), Some(ri))
                        }
                        // Out of records: leave this (still correct) group.
                        None => (None, None),
                    },
                },
            };
            if let Some(new) = new {
                self.store(slot, new);
                self.retire_subtree(old_e, keep);
                return Some(old);
            }
        }
        // No collapse: the prefix ends inside the deepest group on the path.
        let &(slot, r) = path.last().expect("path is not empty");
        let e = self.load(slot);
        if entry::kind(e) == entry::GROUP && len <= r + 8 {
            let g = entry::index(e);
            let lo = child_index(addr, r + 8);
            for j in lo..lo + (1usize << (r + 8 - len)) {
                self.uncover(Slot::Group(g, j), len, rep);
            }
        }
        Some(old)
    }

    /// Removes every route.
    pub fn clear(&mut self) {
        let mut keys: Vec<Ipv6Net> = self.rib.keys().collect();
        keys.sort_by_key(|p| std::cmp::Reverse(p.prefix_len()));
        for p in keys {
            self.remove(&p);
        }
    }

    // ---- internals -------------------------------------------------------

    fn load(&self, s: Slot) -> u32 {
        self.slot(s).load(Ordering::Relaxed)
    }

    fn store(&self, s: Slot, e: u32) {
        self.slot(s).store(e, Ordering::Release);
    }

    fn slot(&self, s: Slot) -> &AtomicU32 {
        match s {
            Slot::L0(i) => &self.table.l0[i],
            Slot::Group(g, j) => &self.table.groups[g as usize * GROUP + j],
        }
    }

    /// Leaf (or empty) entry for the longest route covering `range`, ignoring
    /// `::/0` (the default word answers empty entries).
    fn covering_entry(&self, range: &Ipv6Net) -> u32 {
        match self.rib.get_lpm(range) {
            Some((c, &v)) if c.prefix_len() > 0 => entry::leaf(c.prefix_len(), v),
            _ => entry::EMPTY,
        }
    }

    /// Up to `limit` routes strictly longer than `range` inside it.
    fn below(&self, range: &Ipv6Net, limit: usize) -> Vec<Route> {
        let r = range.prefix_len();
        self.rib
            .children(range)
            .filter(|(p, _)| p.prefix_len() > r)
            .take(limit)
            .map(|(p, &v)| (u128::from(p.network()), p.prefix_len(), v))
            .collect()
    }

    fn write_record(&self, ri: u32, (addr, len, value): Route, fallback: u32) {
        let t = &self.table;
        t.rec_word(ri, 0).store((addr >> 64) as u64, Ordering::Relaxed);
        t.rec_word(ri, 1).store(addr as u64, Ordering::Relaxed);
        t.rec_word(ri, 2).store(entry::meta(len, value, fallback), Ordering::Relaxed);
    }

    fn record_route(&self, ri: u32) -> Route {
        let t = &self.table;
        let hi = t.rec_word(ri, 0).load(Ordering::Relaxed);
        let lo = t.rec_word(ri, 1).load(Ordering::Relaxed);
        let m = t.rec_word(ri, 2).load(Ordering::Relaxed);
        ((u128::from(hi) << 64) | u128::from(lo), entry::meta_depth(m), entry::meta_value(m))
    }

    /// A route of length `len` (shorter than or equal to the slot's range)
    /// now covers `slot`: overwrite what a shorter (or the same) route wrote.
    fn cover(&self, slot: Slot, len: u8, new: u32) {
        let e = self.load(slot);
        match entry::kind(e) {
            entry::EMPTY => self.store(slot, new),
            entry::LEAF => {
                if entry::depth(e) <= len {
                    self.store(slot, new);
                }
            }
            entry::RECORD => {
                let w = self.table.rec_word(entry::index(e), 2);
                let m = w.load(Ordering::Relaxed);
                let f = entry::meta_fallback(m);
                if entry::kind(f) == entry::EMPTY || entry::depth(f) <= len {
                    w.store((m & !0xffff_ffff) | u64::from(new), Ordering::Release);
                }
            }
            _ => {
                let g = entry::index(e);
                for j in 0..GROUP {
                    self.cover(Slot::Group(g, j), len, new);
                }
            }
        }
    }

    /// The route of length `len` covering `slot` is gone: entries it wrote
    /// now answer `rep` (the next covering route, or empty).
    fn uncover(&self, slot: Slot, len: u8, rep: u32) {
        let e = self.load(slot);
        match entry::kind(e) {
            entry::EMPTY => {}
            entry::LEAF => {
                if entry::depth(e) == len {
                    self.store(slot, rep);
                }
            }
            entry::RECORD => {
                let w = self.table.rec_word(entry::index(e), 2);
                let m = w.load(Ordering::Relaxed);
                let f = entry::meta_fallback(m);
                if entry::kind(f) == entry::LEAF && entry::depth(f) == len {
                    w.store((m & !0xffff_ffff) | u64::from(rep), Ordering::Release);
                }
            }
            _ => {
                let g = entry::index(e);
                for j in 0..GROUP {
                    self.uncover(Slot::Group(g, j), len, rep);
                }
            }
        }
    }

    /// Insert of a route longer than the first level.
    fn insert_long(&mut self, addr: u128, len: u8, value: u32) -> Result<(), FibError> {
        let mut slot = Slot::L0((addr >> (128 - u32::from(self.l0_bits))) as usize);
        let mut r = self.l0_bits;
        loop {
            let e = self.load(slot);
            match entry::kind(e) {
                entry::EMPTY | entry::LEAF => {
                    let ri = self.alloc_record()?;
                    self.write_record(ri, (addr, len, value), e);
                    self.store(slot, entry::record(ri));
                    return Ok(());
                }
                entry::RECORD => {
                    let ri = entry::index(e);
                    let q = self.record_route(ri);
                    let w = self.table.rec_word(ri, 2);
                    let m = w.load(Ordering::Relaxed);
                    if q.0 == addr && q.1 == len {
                        w.store(entry::meta(len, value, entry::meta_fallback(m)), Ordering::Release);
                        return Ok(());
                    }
                    let range_addr = addr & entry::mask(r);
                    let mut below = [(addr, len, value), q];
                    let new = self.build_fresh(range_addr, r, entry::meta_fallback(m), &mut below)?;
                    self.store(slot, new);
                    self.records.retire(&self.q, ri);
                    return Ok(());
                }
                _ => {
                    let g = entry::index(e);
                    let c = r + 8;
                    if len <= c {
                        let new = entry::leaf(len, value);
                        let lo = child_index(addr, c);
                        for j in lo..lo + (1usize << (c - len)) {
                            self.cover(Slot::Group(g, j), len, new);
                        }
                        return Ok(());
                    }
                    slot = Slot::Group(g, child_index(addr, c));
                    r = c;
                }
            }
        }
    }

    fn alloc_record(&mut self) -> Result<u32, FibError> {
        self.records.alloc(&self.q).ok_or(FibError::Ip6RecordsExhausted { max_records: self.records.max() })
    }

    /// Builds an unpublished subtree; on failure frees what it allocated.
    fn build_fresh(&mut self, range_addr: u128, r: u8, inherited: u32, below: &mut [Route]) -> Result<u32, FibError> {
        let mut allocs = Vec::new();
        match self.build(range_addr, r, inherited, below, &mut allocs) {
            Ok(e) => Ok(e),
            Err(err) => {
                for a in allocs {
                    match a {
                        Alloc::Group(g) => self.groups.free_unpublished(g),
                        Alloc::Record(ri) => self.records.free_unpublished(ri),
                    }
                }
                Err(err)
            }
        }
    }

    /// Canonical subtree for the slot whose range is `range_addr/r`, given
    /// the route covering it (`inherited`) and the routes strictly below it.
    fn build(
        &mut self,
        range_addr: u128,
        r: u8,
        inherited: u32,
        below: &mut [Route],
        allocs: &mut Vec<Alloc>,
    ) -> Result<u32, FibError> {
        match below.len() {
            0 => Ok(inherited),
            1 => {
                let ri = self.alloc_record()?;
                allocs.push(Alloc::Record(ri));
                self.write_record(ri, below[0], inherited);
                Ok(entry::record(ri))
            }
            _ => {
                let g =
                    self.groups.alloc(&self.q).ok_or(FibError::Ip6GroupsExhausted { max_groups: self.groups.max() })?;
                allocs.push(Alloc::Group(g));
                let c = r + 8;
                // Routes ending at this level first (shortest first, so longer
                // ones overwrite), then the ones below each child, by child.
                below.sort_by_key(|&(a, l, _)| (l > c, if l > c { child_index(a, c) } else { 0 }, l));
                let mut children = [inherited; GROUP];
                let split = below.iter().position(|&(_, l, _)| l > c).unwrap_or(below.len());
                let (short, long) = below.split_at_mut(split);
                for &(a, l, v) in short.iter() {
                    let lo = child_index(a, c);
                    children[lo..lo + (1usize << (c - l))].fill(entry::leaf(l, v));
                }
                let mut i = 0;
                while i < long.len() {
                    let j = child_index(long[i].0, c);
                    let mut k = i + 1;
                    while k < long.len() && child_index(long[k].0, c) == j {
                        k += 1;
                    }
                    let child_addr = range_addr | ((j as u128) << (128 - u32::from(c)));
                    children[j] = self.build(child_addr, c, children[j], &mut long[i..k], allocs)?;
                    i = k;
                }
                for (j, &e) in children.iter().enumerate() {
                    self.table.groups[g as usize * GROUP + j].store(e, Ordering::Relaxed);
                }
                Ok(entry::group(g))
            }
        }
    }

    /// The record holding route `q` inside the subtree `e` (range length `r`).
    fn find_record(&self, mut e: u32, mut r: u8, q: Route) -> Option<u32> {
        loop {
            match entry::kind(e) {
                entry::RECORD => {
                    let ri = entry::index(e);
                    let rq = self.record_route(ri);
                    return (rq.0 == q.0 && rq.1 == q.1).then_some(ri);
                }
                entry::GROUP => {
                    let c = r + 8;
                    if q.1 <= c {
                        return None;
                    }
                    e = self.load(Slot::Group(entry::index(e), child_index(q.0, c)));
                    r = c;
                }
                _ => return None,
            }
        }
    }

    /// Quarantines every group and record reachable from `e` except `keep`.
    fn retire_subtree(&mut self, e: u32, keep: Option<u32>) {
        match entry::kind(e) {
            entry::RECORD if Some(entry::index(e)) != keep => {
                self.records.retire(&self.q, entry::index(e));
            }
            entry::GROUP => {
                let g = entry::index(e);
                for j in 0..GROUP {
                    let c = self.load(Slot::Group(g, j));
                    if matches!(entry::kind(c), entry::GROUP | entry::RECORD) {
                        self.retire_subtree(c, keep);
                    }
                }
                self.groups.retire(&self.q, g);
            }
            _ => {}
        }
    }
}

/// Index of `addr` in a group whose children have range length `c`.
#[inline]
fn child_index(addr: u128, c: u8) -> usize {
    ((addr >> (128 - u32::from(c))) & 0xff) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> u128 {
        u128::from(s.parse::<Ipv6Addr>().unwrap())
    }

    fn writer() -> Ip6LpmWriter {
        Ip6LpmWriter::new(Ip6LpmConfig { l0_bits: 24, max_groups: 64, max_records: 64 }, Quiescence::new()).unwrap()
    }

    #[test]
    fn entry_encoding_bits() {
        assert_eq!(entry::leaf(1, 0), 0x4000_0000);
        assert_eq!(entry::leaf(128, MAX_VALUE), 0x7FFF_FFFF);
        assert_eq!(entry::leaf(48, 5), 0x4000_0000 | (47 << 23) | 5);
        assert_eq!(entry::group(3), 0x8000_0003);
        assert_eq!(entry::record(3), 0xC000_0003);
        for d in 1..=128u8 {
            let e = entry::leaf(d, 0x55_5555);
            assert_eq!(entry::kind(e), entry::LEAF);
            assert_eq!(entry::depth(e), d);
            assert_eq!(entry::value(e), 0x55_5555);
        }
        assert_eq!(entry::kind(0), entry::EMPTY);
        let m = entry::meta(64, MAX_VALUE, entry::leaf(10, 9));
        assert_eq!(m >> 56, 64);
        assert_eq!(entry::meta_depth(m), 64);
        assert_eq!(entry::meta_value(m), MAX_VALUE);
        assert_eq!(entry::meta_fallback(m), entry::leaf(10, 9));
        assert_eq!(entry::mask(0), 0);
        assert_eq!(entry::mask(128), u128::MAX);
        assert_eq!(entry::mask(1), 1u128 << 127);
    }

    #[test]
    fn default_route_and_host_routes() {
        let mut w = writer();
        assert_eq!(w.lookup(0), None);
        w.insert(net("::/0"), 1).unwrap();
        assert_eq!(w.lookup(0), Some(1));
        assert_eq!(w.lookup(u128::MAX), Some(1));
        w.insert(net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), 2).unwrap();
        w.insert(net("::/128"), 3).unwrap();
        w.insert(net("::1/128"), 4).unwrap();
        assert_eq!(w.lookup(u128::MAX), Some(2));
        assert_eq!(w.lookup(u128::MAX - 1), Some(1));
        assert_eq!(w.lookup(0), Some(3));
        assert_eq!(w.lookup(1), Some(4));
        assert_eq!(w.lookup(2), Some(1));
        assert_eq!(w.remove(&net("::/0")), Some(1));
        assert_eq!(w.lookup(2), None);
        assert_eq!(w.lookup(1), Some(4));
        assert_eq!(w.remove(&net("::1/128")), Some(4));
        assert_eq!(w.remove(&net("::/128")), Some(3));
        assert_eq!(w.remove(&net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128")), Some(2));
        let s = w.stats();
        assert_eq!((s.groups_in_use, s.records_in_use), (0, 0));
        assert!(w.is_empty());
    }

    #[test]
    fn lone_routes_are_records_and_pairs_split_into_groups() {
        let mut w = writer();
        w.insert(net("2001:db8::/32"), 1).unwrap();
        assert_eq!(w.stats().records_in_use, 1);
        assert_eq!(w.stats().groups_in_use, 0);
        assert_eq!(w.lookup(ip("2001:db8::1")), Some(1));
        assert_eq!(w.lookup(ip("2001:db9::1")), None);
        // second route in the same /24: the record splits into a group
        w.insert(net("2001:db8:1::/48"), 2).unwrap();
        let s = w.stats();
        assert_eq!(s.groups_in_use, 1, "{s:?}");
        assert_eq!(w.lookup(ip("2001:db8:1::5")), Some(2));
        assert_eq!(w.lookup(ip("2001:db8:2::5")), Some(1));
        assert_eq!(w.lookup(ip("2001:db9::1")), None);
        // a third, deeper
        w.insert(net("2001:db8:1:2::/64"), 3).unwrap();
        assert_eq!(w.lookup(ip("2001:db8:1:2::9")), Some(3));
        assert_eq!(w.lookup(ip("2001:db8:1:3::9")), Some(2));
        // removing collapses back
        assert_eq!(w.remove(&net("2001:db8:1::/48")), Some(2));
        assert_eq!(w.lookup(ip("2001:db8:1:3::9")), Some(1));
        assert_eq!(w.lookup(ip("2001:db8:1:2::9")), Some(3));
        assert_eq!(w.remove(&net("2001:db8::/32")), Some(1));
        assert_eq!(w.lookup(ip("2001:db8:1:3::9")), None);
        assert_eq!(w.lookup(ip("2001:db8:1:2::9")), Some(3));
        let s = w.stats();
        assert_eq!((s.groups_in_use, s.records_in_use), (0, 1), "{s:?}");
        assert_eq!(w.remove(&net("2001:db8:1:2::/64")), Some(3));
        let s = w.stats();
        assert_eq!((s.groups_in_use, s.records_in_use), (0, 0), "{s:?}");
    }

    #[test]
    fn short_prefix_over_records_and_groups() {
        let mut w = writer();
        w.insert(net("2001:db8:1::/48"), 2).unwrap();
        w.insert(net("2001:db8:2::/48"), 3).unwrap();
        w.insert(net("2a00::/12"), 4).unwrap();
        w.insert(net("2001::/16"), 1).unwrap();
        assert_eq!(w.lookup(ip("2001:db8:1::1")), Some(2));
        assert_eq!(w.lookup(ip("2001:db8:3::1")), Some(1));
        assert_eq!(w.lookup(ip("2001:1::1")), Some(1));
        assert_eq!(w.lookup(ip("2a0f::1")), Some(4));
        // change the /16 value: fallbacks follow
        w.insert(net("2001::/16"), 9).unwrap();
        assert_eq!(w.lookup(ip("2001:db8:3::1")), Some(9));
        assert_eq!(w.lookup(ip("2001:db8:2::1")), Some(3));
        w.remove(&net("2001::/16"));
        assert_eq!(w.lookup(ip("2001:db8:3::1")), None);
        assert_eq!(w.lookup(ip("2001:db8:2::1")), Some(3));
        w.insert(net("::/0"), 7).unwrap();
        assert_eq!(w.lookup(ip("2001:db8:3::1")), Some(7));
    }

    #[test]
    fn last_level_routes() {
        let mut w = writer();
        w.insert(net("2001:db8::/127"), 1).unwrap();
        w.insert(net("2001:db8::1/128"), 2).unwrap();
        w.insert(net("2001:db8::/120"), 3).unwrap();
        assert_eq!(w.lookup(ip("2001:db8::")), Some(1));
        assert_eq!(w.lookup(ip("2001:db8::1")), Some(2));
        assert_eq!(w.lookup(ip("2001:db8::2")), Some(3));
        assert_eq!(w.lookup(ip("2001:db8::100")), None);
        w.remove(&net("2001:db8::1/128"));
        assert_eq!(w.lookup(ip("2001:db8::1")), Some(1));
        w.remove(&net("2001:db8::/127"));
        assert_eq!(w.lookup(ip("2001:db8::1")), Some(3));
        w.clear();
        let s = w.stats();
        assert_eq!((s.groups_in_use, s.records_in_use), (0, 0), "{s:?}");
    }

    #[test]
    fn exhaustion_is_clean() {
        let q = Quiescence::new();
        let reader = q.register_reader();
        let mut w = Ip6LpmWriter::new(Ip6LpmConfig { l0_bits: 16, max_groups: 1, max_records: 3 }, q.clone()).unwrap();
        w.insert(net("2001:db8::/32"), 1).unwrap();
        // splits the record into 1 group + 2 new records; the old record waits
        // in quarantine for the reader
        w.insert(net("2001:1db8::/32"), 2).unwrap();
        let s = w.stats();
        assert_eq!((s.groups_in_use, s.records_in_use, s.records_quarantined), (1, 2, 1));
        let err = w.insert(net("2002::/32"), 3).unwrap_err();
        assert_eq!(err, FibError::Ip6RecordsExhausted { max_records: 3 });
        assert!(err.to_string().contains("records"));
        assert_eq!(w.lookup(ip("2002::1")), None);
        assert_eq!(w.len(), 2);
        // bulk: undone on failure
        let err = w.insert_bulk(vec![(net("2001:db8::/32"), 5), (net("2003::/32"), 6)]).unwrap_err();
        assert_eq!(err, FibError::Ip6RecordsExhausted { max_records: 3 });
        assert_eq!(w.lookup(ip("2001:db8::1")), Some(1));
        assert_eq!(w.lookup(ip("2003::1")), None);
        assert_eq!(w.len(), 2);
        assert!(w.insert(net("2001:db8::/32"), MAX_VALUE + 1).is_err());
        assert_eq!(w.lookup(ip("2001:db8::1")), Some(1));
        // a third route in the same /16 would need a second group
        let err = w.insert(net("2001:db9::/32"), 7).unwrap_err();
        assert_eq!(err, FibError::Ip6GroupsExhausted { max_groups: 1 });
        assert_eq!(w.lookup(ip("2001:db9::1")), None);
        // once the reader passes a quiescent point the record is reusable
        reader.quiescent();
        w.insert(net("2002::/32"), 3).unwrap();
        assert_eq!(w.lookup(ip("2002::1")), Some(3));
        assert_eq!(w.stats().records_quarantined, 0);
    }

    #[test]
    fn l0_bits_variants_agree() {
        let routes = [
            ("2001:db8::/32", 1),
            ("2001:db8:1::/48", 2),
            ("2001:db8:1:1::/64", 3),
            ("2001::/16", 4),
            ("2001:db8:1:1::1/128", 5),
            ("3000::/4", 6),
        ];
        let probes =
            ["2001:db8::1", "2001:db8:1::1", "2001:db8:1:1::1", "2001:db8:1:1::2", "2001:1::", "3fff::", "4000::"];
        let mut ws: Vec<Ip6LpmWriter> = [8u8, 16, 24]
            .iter()
            .map(|&b| {
                Ip6LpmWriter::new(Ip6LpmConfig { l0_bits: b, max_groups: 64, max_records: 64 }, Quiescence::new())
                    .unwrap()
            })
            .collect();
        for w in &mut ws {
            for (p, v) in routes {
                w.insert(net(p), v).unwrap();
            }
        }
        for p in probes {
            let a = ip(p);
            let want = ws[0].lookup(a);
            for w in &ws {
                assert_eq!(w.lookup(a), want, "{p}");
            }
            let mut out = [None];
            ws[2].table().lookup_batch(&[a], &mut out);
            assert_eq!(out[0], want);
        }
        assert_eq!(ws[2].lookup(ip("2001:db8:1:1::2")), Some(3));
        assert!(Ip6LpmWriter::new(Ip6LpmConfig { l0_bits: 12, ..Default::default() }, Quiescence::new()).is_err());
    }
}
