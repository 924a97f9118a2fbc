//! The MAC table of a bridge domain (VPP's l2fib, one per domain), shared
//! by every worker and read without locks.
//!
//! # Layout
//!
//! An open-addressing hash table of cache-line buckets, each holding four
//! slots of two `AtomicU64` words: a *key word* (the 48-bit key and a 16-bit
//! slot version whose low bit says "occupied") and a *value word*. A key
//! lives in one of two buckets chosen by a seeded hash (two-choice hashing),
//! so a lookup reads at most two cache lines and an attacker who makes keys
//! collide can only keep them out of the table, never make lookups slower.
//!
//! # Concurrency
//!
//! Readers never lock and never write, except one compare-and-swap on a
//! value word to refresh a timestamp, at most once per second per entry.
//! Writers (insert, move, delete, grow) hold the table's mutex, so there is
//! one writer at a time. Each slot is its own seqlock: a reader loads the
//! key word, the value word, then the key word again, and accepts the pair
//! only if the key word did not change; every insert or delete of a slot
//! bumps its version, so a slot deleted and reused for another key while a
//! reader looked at it is noticed (the 16-bit version would have to wrap
//! between two loads a few nanoseconds apart for it not to be). Changing the
//! value of a key in place (a MAC move) is a single atomic store: a reader
//! sees the old value or the new one, never a mix.
//!
//! # Growth
//!
//! The table starts small (16 buckets) and doubles when it is more than
//! 5/8 full, up to 16M slots. The writer builds the larger generation aside,
//! copies every entry into it and publishes it with one atomic store;
//! readers pick up the current generation on each lookup (the data path's
//! [`MacReader`] keeps its generation's buckets at hand for a whole vector,
//! and checks with one load per lookup that it is still the current one).
//! Old generations stay allocated (they may still be read by a lookup in
//! flight, and safe Rust has no epoch reclamation here): the memory is at
//! most twice that of the current generation.
//!
//! # Time
//!
//! Entries carry their last-seen second (31 bits). The data path computes
//! seconds once per vector from the TSC the graph hands it ([`tsc_seconds`]);
//! a [`ManualClock`] replaces that for tests and simulations ([`L2Clock`]).

use crate::tables::SwIf;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use vswitch_packet::clock;
use vswitch_wire::MacAddr;

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

/// Seconds since the TSC started, from a TSC value (the graph's `cx.now`).
/// The first call in a process calibrates the TSC (about 50 ms): node
/// constructors call it so the data path never does.
#[inline]
pub fn tsc_seconds(tsc: u64) -> u32 {
    (tsc / clock::ticks_per_second().max(1)) as u32
}

/// A clock set by hand, shared by clones: tests and simulations move time
/// with it instead of waiting.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU32>);

impl ManualClock {
    /// A clock reading `secs`.
    pub fn new(secs: u32) -> Self {
        ManualClock(Arc::new(AtomicU32::new(secs)))
    }

    /// The time, in seconds.
    #[inline]
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the time.
    pub fn set(&self, secs: u32) {
        self.0.store(secs, Ordering::Relaxed);
    }

    /// Moves time forward by `secs`.
    pub fn advance(&self, secs: u32) {
        self.0.fetch_add(secs, Ordering::Relaxed);
    }
}

/// Where a MAC table's notion of "now" comes from.
#[derive(Clone, Debug, Default)]
pub enum L2Clock {
    /// The TSC, in seconds ([`tsc_seconds`]): what workers use.
    #[default]
    Tsc,
    /// A hand-set clock.
    Manual(ManualClock),
}

impl L2Clock {
    /// Now, in seconds: what the control thread passes to
    /// [`MacTable::age`].
    pub fn now(&self) -> u32 {
        match self {
            L2Clock::Tsc => tsc_seconds(clock::now()),
            L2Clock::Manual(c) => c.get(),
        }
    }

    /// Now, given the vector's TSC seconds (computed once per vector).
    #[inline(always)]
    pub fn at(&self, vector_secs: u32) -> u32 {
        match self {
            L2Clock::Tsc => vector_secs,
            L2Clock::Manual(c) => c.get(),
        }
    }
}

// ---------------------------------------------------------------------------
// The lock-free map: 48-bit keys to 64-bit values
// ---------------------------------------------------------------------------

const WAYS: usize = 4;
const KEY_MASK: u64 = (1 << 48) - 1;
const VERSION_SHIFT: u32 = 48;
/// Low bit of the version: the slot holds a key.
const OCCUPIED: u64 = 1 << VERSION_SHIFT;
const BASE_BUCKETS: usize = 16;
/// Generations: 16 buckets doubling up to 4M buckets (16M slots).
const MAX_GENS: usize = 19;

/// Four slots in one cache line.
#[repr(C, align(64))]
#[derive(Default)]
struct Bucket {
    keys: [AtomicU64; WAYS],
    vals: [AtomicU64; WAYS],
}

impl Bucket {
    /// The (key word, value) of a slot, read consistently; `None` when
    /// empty.
    #[inline(always)]
    fn read(&self, way: usize) -> Option<(u64, u64)> {
        let mut k = self.keys[way].load(Ordering::Acquire);
        while k & OCCUPIED != 0 {
            let v = self.vals[way].load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            let again = self.keys[way].load(Ordering::Relaxed);
            if again == k {
                return Some((k, v));
            }
            k = self.keys[way].load(Ordering::Acquire);
        }
        None
    }

    /// Looks for `key` in this bucket.
    #[inline(always)]
    fn find(&self, key: u64) -> Option<Found<'_>> {
        for way in 0..WAYS {
            let mut k = self.keys[way].load(Ordering::Acquire);
            while k & (KEY_MASK | OCCUPIED) == key | OCCUPIED {
                let v = self.vals[way].load(Ordering::Relaxed);
                // Pairs with the writer's release fence before it stores a
                // value: a value written after a delete makes the delete
                // visible to the check below.
                fence(Ordering::Acquire);
                let again = self.keys[way].load(Ordering::Relaxed);
                if again == k {
                    return Some(Found { val: v, slot: &self.vals[way] });
                }
                k = self.keys[way].load(Ordering::Acquire);
            }
        }
        None
    }
}

#[inline(always)]
fn next_version(k: u64) -> u64 {
    ((k >> VERSION_SHIFT).wrapping_add(1) & 0xffff) << VERSION_SHIFT
}

/// A key found by a lookup: its value and the slot, for a refresh.
pub(crate) struct Found<'a> {
    pub val: u64,
    pub slot: &'a AtomicU64,
}

impl Found<'_> {
    /// Replaces the value if nobody changed it since the lookup (a cheap
    /// timestamp refresh that can never undo a writer's change).
    #[inline]
    pub fn refresh(&self, new: u64) -> bool {
        self.slot.compare_exchange(self.val, new, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

/// Where a key sits in the current generation (valid until the writer
/// inserts again: an insert may grow the table).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Loc {
    bucket: usize,
    way: usize,
}

struct WriterState<W> {
    len: usize,
    user: W,
}

/// A hash map from 48-bit keys to 64-bit values with lock-free lookups
/// and a single writer at a time (see the module docs). `W` is the owner's
/// own bookkeeping, kept under the writer lock.
pub(crate) struct AtomicMap<W> {
    gens: [OnceLock<Box<[Bucket]>>; MAX_GENS],
    current: AtomicUsize,
    max_gen: usize,
    seed: u64,
    writer: Mutex<WriterState<W>>,
}

impl<W> AtomicMap<W> {
    /// An empty map that grows to at most `BASE_BUCKETS << (max_gens - 1)`
    /// buckets.
    pub fn new(user: W, max_gens: usize) -> Self {
        let max_gens = max_gens.clamp(1, MAX_GENS);
        let gens: [OnceLock<Box<[Bucket]>>; MAX_GENS] = [const { OnceLock::new() }; MAX_GENS];
        let _ = gens[0].set(new_buckets(BASE_BUCKETS));
        // A per-table secret so that which MACs collide cannot be planned.
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        AtomicMap {
            gens,
            current: AtomicUsize::new(0),
            max_gen: max_gens - 1,
            seed,
            writer: Mutex::new(WriterState { len: 0, user }),
        }
    }

    #[inline(always)]
    fn table(&self) -> &[Bucket] {
        let g = self.current.load(Ordering::Acquire);
        // Generation `g` was set before `current` was stored (release).
        self.gens[g].get().map(|b| &b[..]).unwrap_or(&[])
    }

    #[inline(always)]
    fn hash(&self, key: u64) -> u64 {
        hash(key, self.seed)
    }

    /// Starts loading the first bucket of `key` into the cache (where most
    /// keys are found).
    #[inline(always)]
    pub fn prefetch(&self, key: u64) {
        let t = self.table();
        if !t.is_empty() {
            let (b1, _) = self.buckets(key, t.len());
            vswitch_packet::prefetch(&t[b1]);
        }
    }

    /// The two candidate buckets of a key in a table of `n` buckets.
    #[inline(always)]
    fn buckets(&self, key: u64, n: usize) -> (usize, usize) {
        let h = self.hash(key);
        let mask = n - 1;
        let b1 = first_bucket(h, mask);
        (b1, second_bucket(h, mask, b1))
    }

    /// Looks a key up, without locking.
    #[inline(always)]
    pub fn find(&self, key: u64) -> Option<Found<'_>> {
        let t = self.table();
        if t.is_empty() {
            return None;
        }
        let (b1, b2) = self.buckets(key, t.len());
        if let Some(f) = t[b1].find(key) {
            return Some(f);
        }
        t[b2].find(key)
    }

    /// Every (key, value), read without locking: each pair is consistent,
    /// the whole is not a snapshot.
    pub fn entries(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.table().iter().flat_map(|b| (0..WAYS).filter_map(move |w| b.read(w))).map(|(k, v)| (k & KEY_MASK, v))
    }

    /// Slots in the current generation.
    pub fn capacity(&self) -> usize {
        self.table().len() * WAYS
    }

    /// Takes the writer lock.
    pub fn write(&self) -> MapWriter<'_, W> {
        MapWriter { map: self, state: self.writer.lock().unwrap_or_else(|e| e.into_inner()) }
    }

    /// Entries held (exact under the writer lock, a moment stale outside).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.write().state.len
    }
}

/// The hash of a key: one multiply of the seeded key; the two buckets come
/// from two disjoint ranges of its upper 48 bits, which the key's bits mix
/// into (collisions cost at most a MAC not learned, never a slow lookup).
#[inline(always)]
fn hash(key: u64, seed: u64) -> u64 {
    (key ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The first bucket of a key of hash `h` in a table of `mask + 1` buckets.
#[inline(always)]
fn first_bucket(h: u64, mask: usize) -> usize {
    (h >> 40) as usize & mask
}

/// The second bucket, never the first.
#[inline(always)]
fn second_bucket(h: u64, mask: usize, b1: usize) -> usize {
    let b2 = (h >> 16) as usize & mask;
    if b2 == b1 {
        b1 ^ 1
    } else {
        b2
    }
}

/// A reader's handle on an [`AtomicMap`] for a run of lookups (a node's
/// vector): it keeps the current generation's buckets and seed at hand
/// instead of finding them again for every lookup, and still picks up a new
/// generation on each lookup, as [`AtomicMap::find`] does (one load and a
/// compare tell it the generation it holds is still the current one).
pub(crate) struct MapReader<'a, W> {
    map: &'a AtomicMap<W>,
    gen: usize,
    table: &'a [Bucket],
    /// `table.len() - 1`; for an empty table it wraps, and every bucket
    /// index is then out of bounds (not found).
    mask: usize,
    seed: u64,
}

impl<W> AtomicMap<W> {
    /// A reader of the current generation.
    #[inline]
    pub fn reader(&self) -> MapReader<'_, W> {
        let gen = self.current.load(Ordering::Acquire);
        // Generation `gen` was set before `current` was stored (release).
        let table = self.gens[gen].get().map(|b| &b[..]).unwrap_or(&[]);
        MapReader { map: self, gen, table, mask: table.len().wrapping_sub(1), seed: self.seed }
    }
}

/// The first-level data cache of a core, in bytes (the smallest of current
/// x86 and Arm server cores).
const L1_BYTES: usize = 32 * 1024;

/// A reader of a map whose generation changed (out of line: it is rare).
#[cold]
#[inline(never)]
fn reload<W>(map: &AtomicMap<W>) -> MapReader<'_, W> {
    map.reader()
}

impl<'a, W> MapReader<'a, W> {
    /// Looks a key up in the current generation, without locking (as
    /// [`AtomicMap::find`]).
    #[inline(always)]
    pub fn find(&mut self, key: u64) -> Option<Found<'a>> {
        if self.map.current.load(Ordering::Acquire) != self.gen {
            *self = reload(self.map);
        }
        let h = hash(key, self.seed);
        let b1 = first_bucket(h, self.mask);
        match self.table.get(b1)?.find(key) {
            Some(f) => Some(f),
            None => self.find_second(key, h, b1),
        }
    }

    /// Whether the current generation is small enough to stay in the
    /// first-level data cache (32 KiB) of a core that uses it.
    #[inline]
    pub fn fits_in_cache(&self) -> bool {
        std::mem::size_of_val(self.table) <= L1_BYTES
    }

    /// Starts loading the first bucket of `key` (where most keys are) into
    /// the cache, for a lookup a few packets later.
    #[inline(always)]
    pub fn prefetch(&self, key: u64) {
        if let Some(b) = self.table.get(first_bucket(hash(key, self.seed), self.mask)) {
            vswitch_packet::prefetch(b);
        }
    }

    /// The rest of a lookup that missed the key's first bucket.
    #[inline]
    fn find_second(&self, key: u64, h: u64, b1: usize) -> Option<Found<'a>> {
        self.table.get(second_bucket(h, self.mask, b1))?.find(key)
    }
}

fn new_buckets(n: usize) -> Box<[Bucket]> {
    (0..n).map(|_| Bucket::default()).collect()
}

/// Puts a key into a free slot of one of its buckets of `t`.
fn place(t: &[Bucket], (b1, b2): (usize, usize), key: u64, val: u64) -> Option<Loc> {
    for bucket in [b1, b2] {
        let b = &t[bucket];
        for way in 0..WAYS {
            let k = b.keys[way].load(Ordering::Relaxed);
            if k & OCCUPIED == 0 {
                // Orders the slot's earlier delete before the new value, for
                // readers that pair this with their acquire fence.
                fence(Ordering::Release);
                b.vals[way].store(val, Ordering::Relaxed);
                b.keys[way].store(next_version(k) | key, Ordering::Release);
                return Some(Loc { bucket, way });
            }
        }
    }
    None
}

/// The writer of an [`AtomicMap`]: holds its lock.
pub(crate) struct MapWriter<'a, W> {
    map: &'a AtomicMap<W>,
    state: MutexGuard<'a, WriterState<W>>,
}

impl<W> MapWriter<'_, W> {
    /// The owner's bookkeeping.
    pub fn user(&mut self) -> &mut W {
        &mut self.state.user
    }

    /// Looks a key up in the current generation.
    pub fn get(&self, key: u64) -> Option<(Loc, u64)> {
        let t = self.map.table();
        let (b1, b2) = self.map.buckets(key, t.len());
        for bucket in [b1, b2] {
            for way in 0..WAYS {
                let k = t[bucket].keys[way].load(Ordering::Relaxed);
                if k & (KEY_MASK | OCCUPIED) == key | OCCUPIED {
                    return Some((Loc { bucket, way }, t[bucket].vals[way].load(Ordering::Relaxed)));
                }
            }
        }
        None
    }

    /// Replaces the value at `loc`.
    pub fn set(&mut self, loc: Loc, val: u64) {
        self.map.table()[loc.bucket].vals[loc.way].store(val, Ordering::Release);
    }

    /// Removes the entry at `loc`.
    pub fn remove(&mut self, loc: Loc) {
        let slot = &self.map.table()[loc.bucket].keys[loc.way];
        let k = slot.load(Ordering::Relaxed);
        if k & OCCUPIED != 0 {
            slot.store(next_version(k), Ordering::Release);
            self.state.len -= 1;
        }
    }

    /// Inserts a key that is not in the map; grows the map when it is
    /// getting full. `false` when there is no room (the map cannot grow and
    /// both buckets of the key are full).
    pub fn insert(&mut self, key: u64, val: u64) -> bool {
        debug_assert!(key & !KEY_MASK == 0 && self.get(key).is_none());
        let t = self.map.table();
        if (self.state.len + 1) * 8 > t.len() * WAYS * 5 {
            self.grow();
        }
        loop {
            let t = self.map.table();
            if place(t, self.map.buckets(key, t.len()), key, val).is_some() {
                self.state.len += 1;
                return true;
            }
            if !self.grow() {
                return false;
            }
        }
    }

    /// Removes every entry for which `keep(key, value)` is false; returns
    /// how many.
    pub fn retain(&mut self, mut keep: impl FnMut(u64, u64) -> bool) -> usize {
        let t = self.map.table();
        let mut removed = 0;
        for b in t {
            for way in 0..WAYS {
                let k = b.keys[way].load(Ordering::Relaxed);
                if k & OCCUPIED != 0 && !keep(k & KEY_MASK, b.vals[way].load(Ordering::Relaxed)) {
                    b.keys[way].store(next_version(k), Ordering::Release);
                    removed += 1;
                }
            }
        }
        self.state.len -= removed;
        removed
    }

    /// Publishes a larger generation holding every entry. `false` when the
    /// map is at its largest.
    fn grow(&mut self) -> bool {
        let map = self.map;
        let cur = map.current.load(Ordering::Relaxed);
        let old = map.table();
        let mut gen = cur + 1;
        while gen <= map.max_gen {
            let t = new_buckets(BASE_BUCKETS << gen);
            let fits = old.iter().all(|b| {
                (0..WAYS).all(|w| {
                    let k = b.keys[w].load(Ordering::Relaxed);
                    k & OCCUPIED == 0 || {
                        let key = k & KEY_MASK;
                        place(&t, map.buckets(key, t.len()), key, b.vals[w].load(Ordering::Relaxed)).is_some()
                    }
                })
            });
            // A generation is only ever set here, under the lock, and never
            // twice: generations above `current` are unset.
            if fits && map.gens[gen].set(t).is_ok() {
                map.current.store(gen, Ordering::Release);
                return true;
            }
            gen += 1;
        }
        false
    }
}

// ---------------------------------------------------------------------------
// The MAC table
// ---------------------------------------------------------------------------

/// Value word: bits 0..32 the interface, 32..63 the last-seen second,
/// bit 63 static.
const STATIC: u64 = 1 << 63;
const SEEN_SHIFT: u32 = 32;
const SEEN_MASK: u32 = 0x7fff_ffff;

#[inline(always)]
fn pack(sw_if: SwIf, seen: u32, is_static: bool) -> u64 {
    sw_if as u64 | ((seen & SEEN_MASK) as u64) << SEEN_SHIFT | if is_static { STATIC } else { 0 }
}

#[inline(always)]
fn sw_if_of(v: u64) -> SwIf {
    v as u32
}

#[inline(always)]
fn seen_of(v: u64) -> u32 {
    (v >> SEEN_SHIFT) as u32 & SEEN_MASK
}

/// Seconds from `seen` to `now` in 31-bit arithmetic; a `seen` ahead of
/// `now` (another worker's later vector) counts as zero.
#[inline(always)]
fn age_of(now: u32, seen: u32) -> u32 {
    let d = now.wrapping_sub(seen) & SEEN_MASK;
    if d >= 1 << 30 {
        0
    } else {
        d
    }
}

/// One entry of a MAC table, as `show l2fib` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacEntry {
    /// The address.
    pub mac: MacAddr,
    /// The interface it is on.
    pub sw_if: SwIf,
    /// Configured, not learned: never ages, never moves.
    pub is_static: bool,
    /// When it was last seen (learned entries), in clock seconds.
    pub last_seen: u32,
}

impl fmt::Display for MacEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sw_if {}", self.mac, self.sw_if)?;
        if self.is_static {
            write!(f, " static")
        } else {
            write!(f, " seen {}", self.last_seen)
        }
    }
}

/// A destination found in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacHit {
    /// Its interface.
    pub sw_if: SwIf,
    /// Whether the entry is static.
    pub is_static: bool,
}

/// What learning a source MAC did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Already known on this interface (timestamp refreshed if needed).
    Known,
    /// New in the table (or relearned after it aged out).
    Learned,
    /// Known on another interface: moved here.
    Moved {
        /// Where it was.
        from: SwIf,
    },
    /// Static on another interface: the table is unchanged and the frame
    /// should be dropped.
    StaticElsewhere {
        /// Where the static entry says it is.
        sw_if: SwIf,
    },
    /// Not learned: the domain's limit of learned MACs is reached.
    LimitReached,
    /// Not learned: no room in the hash table for this address.
    TableFull,
}

/// Why a control-plane change to the table was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacTableError {
    /// Multicast or all-zero addresses are not table entries.
    InvalidMac,
    /// No room in the hash table.
    TableFull,
}

impl fmt::Display for MacTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MacTableError::InvalidMac => "multicast and all-zero MAC addresses cannot be table entries",
            MacTableError::TableFull => "MAC table full",
        })
    }
}

impl std::error::Error for MacTableError {}

#[derive(Default)]
struct MacCounts {
    learned: u32,
    statics: u32,
}

/// A bridge domain's MAC table: MAC → (interface, static, last seen).
pub struct MacTable {
    map: AtomicMap<MacCounts>,
    /// Learned entries (mirrors the writer's count, for lock-free reads).
    learned: AtomicU32,
    statics: AtomicU32,
    limit: AtomicU32,
    age_secs: AtomicU32,
    clock: L2Clock,
}

impl fmt::Debug for MacTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MacTable")
            .field("learned", &self.learned())
            .field("statics", &self.statics())
            .field("limit", &self.limit())
            .field("age_secs", &self.age_secs())
            .finish()
    }
}

impl MacTable {
    /// An empty table learning at most `limit` MACs that age out after
    /// `age_secs` seconds unseen (0: never), on the TSC clock.
    pub fn new(limit: u32, age_secs: u32) -> Self {
        Self::with_clock(limit, age_secs, L2Clock::Tsc)
    }

    /// An empty table on `clock`.
    pub fn with_clock(limit: u32, age_secs: u32, clock: L2Clock) -> Self {
        Self::build(limit, age_secs, clock, MAX_GENS)
    }

    fn build(limit: u32, age_secs: u32, clock: L2Clock, max_gens: usize) -> Self {
        let _ = clock::ticks_per_second();
        MacTable {
            map: AtomicMap::new(MacCounts::default(), max_gens),
            learned: AtomicU32::new(0),
            statics: AtomicU32::new(0),
            limit: AtomicU32::new(limit),
            age_secs: AtomicU32::new(age_secs),
            clock,
        }
    }

    /// The table's clock.
    #[inline(always)]
    pub fn clock(&self) -> &L2Clock {
        &self.clock
    }

    /// Now, by the table's clock.
    pub fn now(&self) -> u32 {
        self.clock.now()
    }

    /// Learned entries (aged ones not yet swept included).
    pub fn learned(&self) -> u32 {
        self.learned.load(Ordering::Relaxed)
    }

    /// Static entries.
    pub fn statics(&self) -> u32 {
        self.statics.load(Ordering::Relaxed)
    }

    /// All entries.
    pub fn len(&self) -> usize {
        (self.learned() + self.statics()) as usize
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots in the hash table now (it grows on demand).
    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }

    /// Most learned entries.
    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Changes the limit; entries above it stay until they age out.
    pub fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Seconds after which an unseen learned entry ages out (0: never).
    pub fn age_secs(&self) -> u32 {
        self.age_secs.load(Ordering::Relaxed)
    }

    /// Changes the age.
    pub fn set_age_secs(&self, secs: u32) {
        self.age_secs.store(secs, Ordering::Relaxed);
    }

    #[inline(always)]
    fn stale(&self, v: u64, now: u32) -> bool {
        let age = self.age_secs.load(Ordering::Relaxed);
        v & STATIC == 0 && age != 0 && age_of(now, seen_of(v)) > age
    }

    /// The interface of a destination; an entry that has aged out but is
    /// not swept yet is not found.
    #[inline]
    pub fn lookup(&self, mac: MacAddr, now: u32) -> Option<MacHit> {
        let f = self.map.find(mac.as_u64())?;
        if self.stale(f.val, now) {
            return None;
        }
        Some(MacHit { sw_if: sw_if_of(f.val), is_static: f.val & STATIC != 0 })
    }

    /// A reader for a node's vector: lookups without finding the table's
    /// current generation again each time (see [`MacReader`]).
    #[inline]
    pub(crate) fn reader(&self) -> MacReader<'_> {
        MacReader { table: self, map: self.map.reader() }
    }

    /// Whether the table is small enough to stay in a core's first-level
    /// data cache: prefetching its buckets ahead of the lookups then costs
    /// more than it saves.
    #[inline]
    pub(crate) fn fits_in_cache(&self) -> bool {
        self.map.reader().fits_in_cache()
    }

    /// Starts loading the table's buckets for `mac` into the cache, for a
    /// lookup or learn a few packets later.
    #[inline(always)]
    pub fn prefetch(&self, mac: MacAddr) {
        self.map.prefetch(mac.as_u64());
    }

    /// The entry of an address, aged or not.
    pub fn get(&self, mac: MacAddr) -> Option<MacEntry> {
        let f = self.map.find(mac.as_u64())?;
        Some(entry(mac.as_u64(), f.val))
    }

    /// Learns that `mac` is on `sw_if` at `now`. A MAC already known there
    /// costs one lookup, plus one compare-and-swap when its second is not
    /// current; only a new or moved MAC takes the writer lock.
    #[inline]
    pub fn learn(&self, mac: MacAddr, sw_if: SwIf, now: u32) -> Learned {
        let key = mac.as_u64();
        match self.map.find(key) {
            Some(f) => {
                let v = f.val;
                if v & STATIC != 0 {
                    return if sw_if_of(v) == sw_if {
                        Learned::Known
                    } else {
                        Learned::StaticElsewhere { sw_if: sw_if_of(v) }
                    };
                }
                if sw_if_of(v) == sw_if {
                    let age = age_of(now, seen_of(v));
                    if age == 0 {
                        return Learned::Known;
                    }
                    let stale = self.stale(v, now);
                    if f.refresh(pack(sw_if, now, false)) {
                        return if stale { Learned::Learned } else { Learned::Known };
                    }
                }
            }
            None => {
                if self.learned.load(Ordering::Relaxed) >= self.limit.load(Ordering::Relaxed) {
                    return Learned::LimitReached;
                }
            }
        }
        self.learn_locked(key, sw_if, now)
    }

    #[cold]
    fn learn_locked(&self, key: u64, sw_if: SwIf, now: u32) -> Learned {
        let mut w = self.map.write();
        match w.get(key) {
            Some((loc, v)) => {
                let from = sw_if_of(v);
                if v & STATIC != 0 {
                    return if from == sw_if { Learned::Known } else { Learned::StaticElsewhere { sw_if: from } };
                }
                let stale = self.stale(v, now);
                w.set(loc, pack(sw_if, now, false));
                match (stale, from == sw_if) {
                    (true, _) => Learned::Learned,
                    (false, true) => Learned::Known,
                    (false, false) => Learned::Moved { from },
                }
            }
            None => {
                if w.user().learned >= self.limit() {
                    return Learned::LimitReached;
                }
                if !w.insert(key, pack(sw_if, now, false)) {
                    return Learned::TableFull;
                }
                let c = w.user();
                c.learned += 1;
                self.learned.store(c.learned, Ordering::Relaxed);
                Learned::Learned
            }
        }
    }

    /// Adds or replaces a static entry (VPP `l2fib add ... static`): it
    /// never ages, never moves, and does not count against the limit. A
    /// learned entry for the address becomes static.
    pub fn add_static(&self, mac: MacAddr, sw_if: SwIf) -> Result<(), MacTableError> {
        if mac.is_multicast() || mac.is_zero() {
            return Err(MacTableError::InvalidMac);
        }
        let key = mac.as_u64();
        let mut w = self.map.write();
        match w.get(key) {
            Some((loc, v)) => {
                w.set(loc, pack(sw_if, 0, true));
                if v & STATIC == 0 {
                    let c = w.user();
                    c.learned -= 1;
                    c.statics += 1;
                }
            }
            None => {
                if !w.insert(key, pack(sw_if, 0, true)) {
                    return Err(MacTableError::TableFull);
                }
                w.user().statics += 1;
            }
        }
        self.publish_counts(&mut w);
        Ok(())
    }

    /// Removes an address, static or learned; returns its entry.
    pub fn remove(&self, mac: MacAddr) -> Option<MacEntry> {
        let key = mac.as_u64();
        let mut w = self.map.write();
        let (loc, v) = w.get(key)?;
        w.remove(loc);
        let c = w.user();
        if v & STATIC != 0 {
            c.statics -= 1;
        } else {
            c.learned -= 1;
        }
        self.publish_counts(&mut w);
        Some(entry(key, v))
    }

    /// Removes learned entries unseen for longer than the age; returns how
    /// many. The control thread (or an idle worker) calls it periodically.
    pub fn age(&self, now: u32) -> usize {
        if self.age_secs() == 0 {
            return 0;
        }
        self.remove_where(|v| self.stale(v, now))
    }

    /// Removes the entries learned on `sw_if` (VPP `l2fib flush-mac
    /// interface`); static ones stay. Returns how many.
    pub fn flush(&self, sw_if: SwIf) -> usize {
        self.remove_where(|v| v & STATIC == 0 && sw_if_of(v) == sw_if)
    }

    /// Removes every learned entry (VPP `l2fib flush-mac bridge-domain`).
    pub fn flush_all(&self) -> usize {
        self.remove_where(|v| v & STATIC == 0)
    }

    /// Removes every entry on `sw_if`, static ones too (the interface left
    /// the domain).
    pub fn remove_interface(&self, sw_if: SwIf) -> usize {
        self.remove_where(|v| sw_if_of(v) == sw_if)
    }

    fn remove_where(&self, gone: impl Fn(u64) -> bool) -> usize {
        let mut w = self.map.write();
        let (mut learned, mut statics) = (0, 0);
        let n = w.retain(|_, v| {
            let g = gone(v);
            if g {
                if v & STATIC != 0 {
                    statics += 1;
                } else {
                    learned += 1;
                }
            }
            !g
        });
        let c = w.user();
        c.learned -= learned;
        c.statics -= statics;
        self.publish_counts(&mut w);
        n
    }

    fn publish_counts(&self, w: &mut MapWriter<'_, MacCounts>) {
        let c = w.user();
        self.learned.store(c.learned, Ordering::Relaxed);
        self.statics.store(c.statics, Ordering::Relaxed);
    }

    /// Every entry (aged ones not yet swept included), for `show l2fib`.
    /// Reads without locking: each entry is consistent, the whole is not a
    /// snapshot of one instant.
    pub fn iter(&self) -> impl Iterator<Item = MacEntry> + '_ {
        self.map.entries().map(|(k, v)| entry(k, v))
    }
}

/// The data path's view of a [`MacTable`] for one vector: the same
/// lookups as the table's own, by key (a MAC as [`MacAddr::as_u64`] gives
/// it), with the table's current generation kept at hand.
pub(crate) struct MacReader<'a> {
    table: &'a MacTable,
    map: MapReader<'a, MacCounts>,
}

impl MacReader<'_> {
    /// Whether [`MacTable::learn`] of `key` on `sw_if` at `now` would be a
    /// no-op: the MAC is known there, learned (not static), and seen this
    /// very second, so `learn` would return [`Learned::Known`] and write
    /// nothing. `false` sends the caller to `learn` for everything else
    /// (new, moved, static, timestamp refresh).
    #[inline(always)]
    pub fn is_current(&mut self, key: u64, sw_if: SwIf, now: u32) -> bool {
        matches!(self.map.find(key), Some(f) if f.val == pack(sw_if, now, false))
    }

    /// Starts loading the table's bucket for `key` into the cache.
    #[inline(always)]
    pub fn prefetch(&self, key: u64) {
        self.map.prefetch(key);
    }

    /// [`MacTable::lookup`] by key.
    #[inline(always)]
    pub fn lookup(&mut self, key: u64, now: u32) -> Option<MacHit> {
        let v = self.map.find(key)?.val;
        if self.table.stale(v, now) {
            return None;
        }
        Some(MacHit { sw_if: sw_if_of(v), is_static: v & STATIC != 0 })
    }
}

fn entry(key: u64, v: u64) -> MacEntry {
    let b = key.to_be_bytes();
    MacEntry {
        mac: MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]]),
        sw_if: sw_if_of(v),
        is_static: v & STATIC != 0,
        last_seen: if v & STATIC != 0 { 0 } else { seen_of(v) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn mac(n: u64) -> MacAddr {
        let b = (0x0200_0000_0000 | n).to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    #[test]
    fn learns_refreshes_and_looks_up() {
        let t = MacTable::new(100, 300);
        assert_eq!(t.lookup(mac(1), 10), None);
        assert_eq!(t.learn(mac(1), 5, 10), Learned::Learned);
        assert_eq!(t.lookup(mac(1), 10), Some(MacHit { sw_if: 5, is_static: false }));
        assert_eq!(t.learn(mac(1), 5, 10), Learned::Known);
        assert_eq!(t.get(mac(1)).unwrap().last_seen, 10);
        assert_eq!(t.learn(mac(1), 5, 12), Learned::Known);
        assert_eq!(t.get(mac(1)).unwrap().last_seen, 12, "refreshed when the second changed");
        assert_eq!(t.learn(mac(1), 5, 11), Learned::Known);
        assert_eq!(t.get(mac(1)).unwrap().last_seen, 12, "never moved back by a late worker");
        assert_eq!((t.learned(), t.statics(), t.len()), (1, 0, 1));
    }

    #[test]
    fn moves_between_interfaces() {
        let t = MacTable::new(100, 300);
        t.learn(mac(1), 5, 10);
        assert_eq!(t.learn(mac(1), 6, 11), Learned::Moved { from: 5 });
        assert_eq!(t.lookup(mac(1), 11).unwrap().sw_if, 6);
        assert_eq!(t.learned(), 1, "a move is not a new entry");
    }

    #[test]
    fn static_entries_never_move_or_age() {
        let t = MacTable::new(100, 300);
        t.learn(mac(1), 5, 10);
        t.add_static(mac(1), 7).unwrap();
        assert_eq!((t.learned(), t.statics()), (0, 1), "learned entry became static");
        assert_eq!(t.learn(mac(1), 5, 11), Learned::StaticElsewhere { sw_if: 7 });
        assert_eq!(t.learn(mac(1), 7, 11), Learned::Known);
        assert_eq!(t.lookup(mac(1), 100_000), Some(MacHit { sw_if: 7, is_static: true }));
        assert_eq!(t.age(100_000), 0);
        assert_eq!(t.add_static(MacAddr::BROADCAST, 1), Err(MacTableError::InvalidMac));
        assert_eq!(t.add_static(MacAddr::ZERO, 1), Err(MacTableError::InvalidMac));
        assert!(t.remove(mac(1)).unwrap().is_static);
        assert_eq!((t.statics(), t.len()), (0, 0));
    }

    #[test]
    fn limit_counts_learned_entries_only() {
        let t = MacTable::new(3, 300);
        t.add_static(mac(100), 1).unwrap();
        for i in 0..3 {
            assert_eq!(t.learn(mac(i), 1, 0), Learned::Learned);
        }
        assert_eq!(t.learn(mac(3), 1, 0), Learned::LimitReached);
        assert_eq!(t.learn(mac(0), 2, 0), Learned::Moved { from: 1 }, "known MACs still move at the limit");
        t.set_limit(4);
        assert_eq!(t.learn(mac(3), 1, 0), Learned::Learned);
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn aging_hides_then_sweeps_old_entries() {
        let t = MacTable::new(100, 300);
        t.learn(mac(1), 1, 1000);
        t.learn(mac(2), 1, 1200);
        t.add_static(mac(3), 1).unwrap();
        assert!(t.lookup(mac(1), 1300).is_some(), "300 s old: not older than the age");
        assert!(t.lookup(mac(1), 1301).is_none(), "aged, not swept: unknown");
        assert!(t.get(mac(1)).is_some(), "still in the table until swept");
        assert_eq!(t.age(1301), 1);
        assert!(t.get(mac(1)).is_none());
        assert_eq!((t.learned(), t.statics()), (1, 1));
        // An aged entry seen again is learned anew, on whatever port.
        t.learn(mac(2), 1, 1200);
        assert_eq!(t.learn(mac(2), 4, 2000), Learned::Learned);
        assert_eq!(t.lookup(mac(2), 2000).unwrap().sw_if, 4);
        assert_eq!(t.learn(mac(2), 4, 3000), Learned::Learned, "relearned on the same port");
        t.set_age_secs(0);
        assert_eq!(t.age(1_000_000), 0, "age 0: never");
        assert!(t.lookup(mac(2), 1_000_000).is_some());
    }

    #[test]
    fn flush_removes_learned_entries_of_one_interface() {
        let t = MacTable::new(100, 300);
        for i in 0..10 {
            t.learn(mac(i), (i % 2) as u32, 0);
        }
        t.add_static(mac(50), 1).unwrap();
        assert_eq!(t.flush(1), 5);
        assert!(t.iter().all(|e| e.sw_if == 0 || e.is_static));
        assert_eq!(t.iter().count(), 6);
        assert_eq!(t.remove_interface(1), 1);
        assert_eq!(t.flush_all(), 5);
        assert!(t.is_empty() && t.iter().next().is_none());
    }

    #[test]
    fn grows_and_keeps_every_entry() {
        let t = MacTable::new(1 << 20, 0);
        let n = 200_000;
        for i in 0..n {
            assert_eq!(t.learn(mac(i), i as u32, 0), Learned::Learned, "mac {i}");
        }
        assert!(t.capacity() >= n as usize);
        for i in 0..n {
            assert_eq!(t.lookup(mac(i), 0).map(|h| h.sw_if), Some(i as u32));
        }
        assert_eq!(t.iter().count(), n as usize);
        assert_eq!(t.map.len(), n as usize);
    }

    #[test]
    fn full_table_refuses_instead_of_failing() {
        // One generation of 16 buckets, 64 slots, no growth.
        let t = MacTable::build(1000, 0, L2Clock::Tsc, 1);
        let mut full = 0;
        for i in 0..200 {
            match t.learn(mac(i), 1, 0) {
                Learned::Learned => {}
                Learned::TableFull => full += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(t.learned() as usize + full, 200);
        assert!(t.learned() <= 64 && t.learned() >= 32, "{}", t.learned());
        assert_eq!(t.iter().count(), t.learned() as usize);
        for i in 0..200 {
            assert_eq!(t.lookup(mac(i), 0).is_some(), t.get(mac(i)).is_some(), "mac {i}");
        }
        match t.add_static(mac(1000), 1) {
            Ok(()) => assert_eq!(t.statics(), 1),
            Err(e) => assert_eq!((e, t.statics()), (MacTableError::TableFull, 0)),
        }
    }

    /// The data path's reader answers as the table does, and keeps doing
    /// so when the table grows under it (a new generation) or changes.
    #[test]
    fn reader_agrees_with_the_table_and_follows_growth() {
        let t = MacTable::new(1 << 20, 300);
        let mut r = t.reader();
        let key = |i: u64| mac(i).as_u64();
        assert!(!r.is_current(key(1), 5, 10) && r.lookup(key(1), 10).is_none());
        assert_eq!(t.learn(mac(1), 5, 10), Learned::Learned);
        assert!(r.is_current(key(1), 5, 10));
        assert!(!r.is_current(key(1), 6, 10), "another interface: a move");
        assert!(!r.is_current(key(1), 5, 11), "another second: a refresh");
        assert_eq!(r.lookup(key(1), 10), Some(MacHit { sw_if: 5, is_static: false }));
        assert_eq!(r.lookup(key(1), 310), t.lookup(mac(1), 310));
        assert_eq!(r.lookup(key(1), 311), None, "aged");
        let gen = t.map.current.load(Ordering::Relaxed);
        assert!(t.fits_in_cache());
        for i in 2..2000 {
            assert_eq!(t.learn(mac(i), i as u32, 10), Learned::Learned);
        }
        assert!(t.map.current.load(Ordering::Relaxed) > gen, "the table grew");
        assert!(!t.fits_in_cache(), "{} slots", t.capacity());
        r.prefetch(key(1999));
        for i in 1..2000 {
            let port = if i == 1 { 5 } else { i as u32 };
            assert!(r.is_current(key(i), port, 10), "mac {i}");
            assert_eq!(r.lookup(key(i), 10), Some(MacHit { sw_if: port, is_static: false }), "mac {i}");
        }
        t.add_static(mac(7), 9).unwrap();
        assert!(!r.is_current(key(7), 9, 10), "static: learn says Known, but takes the whole path");
        assert_eq!(r.lookup(key(7), 1_000_000), Some(MacHit { sw_if: 9, is_static: true }));
        t.remove(mac(8));
        assert!(!r.is_current(key(8), 8, 10) && r.lookup(key(8), 10).is_none());
        assert_eq!(r.lookup(key(5000), 10), None);
    }

    #[test]
    fn manual_clock_moves_by_hand() {
        let c = ManualClock::new(5);
        let t = MacTable::with_clock(10, 10, L2Clock::Manual(c.clone()));
        assert_eq!(t.now(), 5);
        c.advance(10);
        assert_eq!((t.now(), t.clock().at(999)), (15, 15));
        c.set(1);
        assert_eq!(t.now(), 1);
        assert_eq!(L2Clock::Tsc.at(42), 42);
        assert!(L2Clock::Tsc.now() > 0 || tsc_seconds(clock::now()) == 0);
    }

    /// What the readers' seqlock check rests on, step by step: a slot's
    /// key word changes whenever the slot is emptied or refilled, even when
    /// it is refilled with the same MAC (ABA), while a MAC move leaves it
    /// alone (the value word alone changes, atomically).
    #[test]
    fn every_reuse_of_a_slot_changes_its_key_word() {
        let t = MacTable::build(1000, 0, L2Clock::Tsc, 1);
        let n = t.map.table().len();
        let pair = |m: MacAddr| {
            let (a, b) = t.map.buckets(m.as_u64(), n);
            (a.min(b), a.max(b))
        };
        let home = pair(mac(0));
        let macs: Vec<MacAddr> = (0..1_000_000).map(mac).filter(|&m| pair(m) == home).take(9).collect();
        for (i, &m) in macs[..8].iter().enumerate() {
            assert_eq!(t.learn(m, i as u32, 0), Learned::Learned);
        }
        assert_eq!(t.learn(macs[8], 8, 0), Learned::TableFull, "both buckets full");
        let key_word = |m: MacAddr| {
            let (loc, _) = t.map.write().get(m.as_u64()).unwrap();
            (loc.bucket, loc.way, t.map.table()[loc.bucket].keys[loc.way].load(Ordering::Relaxed))
        };
        let (b, w, k1) = key_word(macs[0]);
        let word = || t.map.table()[b].keys[w].load(Ordering::Relaxed);
        assert_eq!(t.learn(macs[0], 77, 0), Learned::Moved { from: 0 });
        assert_eq!(word(), k1, "a move changes only the value word");
        t.remove(macs[0]);
        let k2 = word();
        assert_ne!(k2, k1);
        assert_eq!(t.learn(macs[8], 8, 0), Learned::Learned);
        let (b8, w8, _) = key_word(macs[8]);
        assert_eq!((b8, w8), (b, w), "refilled the only free slot");
        let k3 = word();
        t.remove(macs[8]);
        assert_eq!(t.learn(macs[0], 0, 0), Learned::Learned);
        let k5 = word();
        assert_eq!(k5 & KEY_MASK, k1 & KEY_MASK, "same MAC back in the same slot");
        let all = [k1, k2, k3, k5];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b, "key words {all:x?}");
            }
        }
    }

    /// Slots reused for other keys under a reader's feet: ten MACs that
    /// all hash to the same two buckets (eight slots) of a table that
    /// cannot grow, and a writer that keeps deleting one and inserting
    /// another, so those slots hold different MACs in quick turns. A
    /// reader that paired one MAC's key word with another's value word
    /// would see an interface that MAC never had.
    #[test]
    fn slot_reuse_is_never_seen_as_a_torn_entry() {
        let t = Arc::new(MacTable::build(1000, 0, L2Clock::Tsc, 1));
        let n = t.map.table().len();
        let pair = |m: MacAddr| {
            let (a, b) = t.map.buckets(m.as_u64(), n);
            (a.min(b), a.max(b))
        };
        let home = pair(mac(0));
        let macs: Arc<Vec<MacAddr>> = Arc::new((0..1_000_000).map(mac).filter(|&m| pair(m) == home).take(10).collect());
        assert_eq!(macs.len(), 10);
        let port = |i: usize| (i as u32 + 1) * 1000;
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (t, stop, macs) = (Arc::clone(&t), Arc::clone(&stop), Arc::clone(&macs));
            std::thread::spawn(move || {
                let mut hits = 0u64;
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i = (i + 3) % macs.len();
                    if let Some(h) = t.lookup(macs[i], 0) {
                        assert_eq!(h.sw_if, port(i), "{} seen with another MAC's value", macs[i]);
                        hits += 1;
                    }
                }
                hits
            })
        };
        let start = std::time::Instant::now();
        let mut x = 12345u64;
        let mut ops = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(500) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let i = (x >> 33) as usize % macs.len();
            if t.remove(macs[i]).is_none() {
                let r = t.learn(macs[i], port(i), 0);
                assert!(matches!(r, Learned::Learned | Learned::TableFull), "{r:?}");
            }
            ops += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let hits = reader.join().unwrap();
        assert!(hits > 0 && ops > 1000, "hits {hits} ops {ops}");
    }

    /// Readers look MACs up while a writer learns, moves, flushes, ages
    /// and grows the table: every entry a reader sees is one the writer
    /// could have written (each MAC `i` only ever lives on `i % 7` or
    /// `i % 7 + 100`, with `seen` equal to the port's generation), never a
    /// mix of two entries' words.
    #[test]
    fn concurrent_readers_never_see_torn_entries() {
        const MACS: u64 = 20_000;
        let t = Arc::new(MacTable::new(1 << 20, 1_000_000));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..3)
            .map(|r| {
                let (t, stop, started) = (Arc::clone(&t), Arc::clone(&stop), Arc::clone(&started));
                std::thread::spawn(move || {
                    let (mut hits, mut x) = (0u64, r as u64 + 1);
                    started.fetch_add(1, Ordering::Relaxed);
                    while !stop.load(Ordering::Relaxed) {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        let i = (x >> 33) % MACS;
                        if let Some(e) = t.get(mac(i)) {
                            let base = (i % 7) as u32;
                            assert!(e.sw_if == base || e.sw_if == base + 100, "mac {i} on {}", e.sw_if);
                            assert!(!e.is_static || e.sw_if == base, "mac {i}: {e:?}");
                            if !e.is_static {
                                assert_eq!(e.last_seen, e.sw_if / 100 + 1, "mac {i}: {e:?}");
                            }
                            hits += 1;
                            // Readers refresh too (same second: no write).
                            t.learn(mac(i), e.sw_if, e.last_seen);
                        }
                    }
                    hits
                })
            })
            .collect();
        // On a loaded machine the writer could otherwise be done before the
        // readers even start.
        while started.load(Ordering::Relaxed) < 3 {
            std::thread::yield_now();
        }
        for round in 0..6 {
            for i in 0..MACS {
                let base = (i % 7) as u32;
                let port = if round % 2 == 0 { base } else { base + 100 };
                let r = t.learn(mac(i), port, port / 100 + 1);
                // Known: a reader's refresh moved it back here first.
                assert!(
                    matches!(
                        r,
                        Learned::Learned | Learned::Known | Learned::Moved { .. } | Learned::StaticElsewhere { .. }
                    ),
                    "{r:?}"
                );
                if i % 1000 == 0 && round == 1 {
                    t.add_static(mac(i), base).unwrap();
                }
                if i % 1000 == 0 {
                    // Lets the readers run between the writes on a loaded
                    // machine.
                    std::thread::yield_now();
                }
            }
            if round == 3 {
                t.flush(3);
                t.flush(103);
            }
            if round == 4 {
                // Everything learned on round 4 (seen 1) is older than 0 s
                // at 1_000_002: aged out.
                t.set_age_secs(1);
                t.age(1_000_002 + 2);
                t.set_age_secs(1_000_000);
            }
        }
        stop.store(true, Ordering::Relaxed);
        let hits: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
        assert!(hits > 0, "readers found entries");
        assert_eq!(t.iter().count(), t.len());
    }
}
