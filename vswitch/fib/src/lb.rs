//! Load-balance (ECMP/UCMP) objects: the value an LPM lookup returns is a
//! load-balance index; the load-balance picks an adjacency per flow.
//!
//! A load-balance object is one `AtomicU64` header:
//!
//! ```text
//! bits 63..32  log2(bucket count), 0 = single path
//! bits 31..0   single path: !adjacency index   (so an all-zero, never used
//!                                               header reads INVALID_ADJ)
//!              otherwise:   index of the first bucket
//! ```
//!
//! Buckets (adjacency indices, `AtomicU32`) live in a preallocated array in
//! power-of-two blocks of 2..=64. [`LbTable::choose`] is a header load, a
//! mask and a bucket load; a single-path object needs no bucket load.
//!
//! Updating an object (its paths change) writes a fresh bucket block, then
//! publishes the new header with one Release store; readers see the old or the
//! new bucket set, never a mix. The old block (and a removed object's index)
//! is reused only after a grace period ([`crate::quiesce`]).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::quiesce::{IndexPool, Quarantine, Quiescence};
use crate::FibError;

/// Most buckets (and paths) a load-balance object can have.
pub const MAX_BUCKETS: usize = 64;
const MAX_LOG2: u32 = 6;
/// What [`LbTable::choose`] returns for an index that was never set up.
/// [`crate::adj::AdjTable::get`] of it reads as a drop adjacency.
pub const INVALID_ADJ: u32 = u32::MAX;
/// Default maximum number of load-balance objects.
pub const DEFAULT_MAX_LBS: u32 = 1 << 20;
/// Default bucket space.
pub const DEFAULT_MAX_BUCKETS_TOTAL: u32 = 1 << 22;

/// One path of a load-balance object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path {
    /// Adjacency index.
    pub adj: u32,
    /// Relative weight; paths with weight 0 are ignored.
    pub weight: u32,
}

impl Path {
    pub const fn new(adj: u32, weight: u32) -> Self {
        Self { adj, weight }
    }
}

/// Sizing of the load-balance table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbConfig {
    /// Maximum load-balance objects (1..=2^26), 8 bytes each, reserved virtually.
    pub max_lbs: u32,
    /// Bucket space (64..=2^30 buckets), 4 bytes each, reserved virtually.
    pub max_buckets: u32,
}

impl Default for LbConfig {
    fn default() -> Self {
        Self { max_lbs: DEFAULT_MAX_LBS, max_buckets: DEFAULT_MAX_BUCKETS_TOTAL }
    }
}

/// Reader side of the load-balance table.
pub struct LbTable {
    headers: Box<[AtomicU64]>,
    buckets: Box<[AtomicU32]>,
}

impl std::fmt::Debug for LbTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LbTable").field("max_lbs", &self.headers.len()).finish_non_exhaustive()
    }
}

impl LbTable {
    /// The adjacency for a flow: `buckets[flow_hash & (n - 1)]` of object
    /// `lb`. Returns [`INVALID_ADJ`] for an index out of range or never set.
    #[inline]
    pub fn choose(&self, lb: u32, flow_hash: u32) -> u32 {
        let Some(h) = self.headers.get(lb as usize) else {
            return INVALID_ADJ;
        };
        let h = h.load(Ordering::Acquire);
        let log2 = (h >> 32) as u32;
        if log2 == 0 {
            return !(h as u32);
        }
        let mask = (1u32 << log2) - 1;
        self.buckets[(h as u32 + (flow_hash & mask)) as usize].load(Ordering::Relaxed)
    }

    /// Number of buckets of object `lb` (1 for single-path or unset).
    pub fn n_buckets(&self, lb: u32) -> usize {
        self.headers.get(lb as usize).map_or(1, |h| 1usize << (h.load(Ordering::Acquire) >> 32))
    }

    /// A snapshot of the buckets of object `lb`.
    pub fn buckets(&self, lb: u32) -> Vec<u32> {
        let n = self.n_buckets(lb) as u32;
        (0..n).map(|i| self.choose(lb, i)).collect()
    }
}

/// Expands weighted paths into a power-of-two bucket array (largest
/// remainder method; every path with non-zero weight gets at least one
/// bucket). Equal weights over a power-of-two number of paths give exactly
/// one bucket per path; otherwise 16 buckets per path (rounded to a power of
/// two), at most [`MAX_BUCKETS`].
pub fn expand_paths(paths: &[Path]) -> Result<Vec<u32>, FibError> {
    let paths: Vec<Path> = paths.iter().copied().filter(|p| p.weight > 0).collect();
    if paths.is_empty() {
        return Err(FibError::NoPaths);
    }
    if paths.len() > MAX_BUCKETS {
        return Err(FibError::TooManyPaths { paths: paths.len(), max: MAX_BUCKETS });
    }
    let k = paths.len();
    if k.is_power_of_two() && paths.iter().all(|p| p.weight == paths[0].weight) {
        return Ok(paths.iter().map(|p| p.adj).collect());
    }
    let n = (k.next_power_of_two() * 16).min(MAX_BUCKETS);
    let total: u64 = paths.iter().map(|p| u64::from(p.weight)).sum();
    let mut counts: Vec<usize> = Vec::with_capacity(k);
    let mut rems: Vec<(u64, usize)> = Vec::with_capacity(k);
    for (i, p) in paths.iter().enumerate() {
        let exact = u64::from(p.weight) * n as u64;
        counts.push(((exact / total) as usize).max(1));
        rems.push((exact % total, i));
    }
    let mut assigned: usize = counts.iter().sum();
    // Hand out what is left by largest remainder (ties: first path).
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut r = 0;
    while assigned < n {
        counts[rems[r % k].1] += 1;
        assigned += 1;
        r += 1;
    }
    // The minimum of one bucket may overshoot: take from the largest.
    while assigned > n {
        let i = (0..k).max_by_key(|&i| (counts[i], usize::MAX - i)).expect("k > 0");
        counts[i] -= 1;
        assigned -= 1;
    }
    let mut out = Vec::with_capacity(n);
    for (p, &c) in paths.iter().zip(&counts) {
        out.extend(std::iter::repeat_n(p.adj, c));
    }
    Ok(out)
}

/// Buddy allocator of power-of-two bucket blocks (2..=64 buckets) with
/// grace-period reuse. Fresh space is carved in aligned 64-bucket chunks;
/// freed blocks coalesce with their buddy, so freed space can always be reused
/// for any block size.
#[derive(Debug)]
struct BucketAlloc {
    max: u32,
    next_fresh: u32,
    free: [BTreeSet<u32>; MAX_LOG2 as usize + 1],
    quarantine: Quarantine<(u32, u32)>,
    in_use: u32,
}

impl BucketAlloc {
    fn new(max: u32) -> Self {
        Self {
            // only whole chunks are used
            max: max / MAX_BUCKETS as u32 * MAX_BUCKETS as u32,
            next_fresh: 0,
            free: Default::default(),
            quarantine: Quarantine::default(),
            in_use: 0,
        }
    }

    fn take(&mut self, log2: u32) -> Option<u32> {
        let j = (log2..=MAX_LOG2).find(|&j| !self.free[j as usize].is_empty());
        let (mut j, base) = match j {
            Some(j) => (j, self.free[j as usize].pop_first().expect("non-empty")),
            None => {
                if self.next_fresh + MAX_BUCKETS as u32 > self.max {
                    return None;
                }
                self.next_fresh += MAX_BUCKETS as u32;
                (MAX_LOG2, self.next_fresh - MAX_BUCKETS as u32)
            }
        };
        // split: keep the lower half, free the upper halves
        while j > log2 {
            j -= 1;
            self.free[j as usize].insert(base + (1 << j));
        }
        Some(base)
    }

    fn alloc(&mut self, q: &Quiescence, log2: u32) -> Option<u32> {
        let base = match self.take(log2) {
            Some(b) => b,
            None => {
                self.reclaim(q);
                self.take(log2)?
            }
        };
        self.in_use += 1 << log2;
        Some(base)
    }

    fn retire(&mut self, q: &Quiescence, log2: u32, base: u32) {
        self.in_use -= 1 << log2;
        self.quarantine.retire(q, (log2, base));
    }

    fn release(&mut self, mut log2: u32, mut base: u32) {
        while log2 < MAX_LOG2 {
            let buddy = base ^ (1 << log2);
            if !self.free[log2 as usize].remove(&buddy) {
                break;
            }
            base = base.min(buddy);
            log2 += 1;
        }
        self.free[log2 as usize].insert(base);
    }

    fn reclaim(&mut self, q: &Quiescence) -> usize {
        let mut done = Vec::new();
        let n = self.quarantine.reclaim(q, |b| done.push(b));
        for (log2, base) in done {
            self.release(log2, base);
        }
        n
    }
}

/// Writer-side state of one object.
#[derive(Clone, Debug)]
struct LbState {
    buckets: Vec<u32>,
    /// (log2, base) of its bucket block, if it has one.
    block: Option<(u32, u32)>,
}

/// The single writer of the load-balance table.
pub struct LbWriter {
    table: Arc<LbTable>,
    q: Arc<Quiescence>,
    ids: IndexPool,
    blocks: BucketAlloc,
    state: Vec<Option<LbState>>,
    n_live: usize,
}

impl std::fmt::Debug for LbWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LbWriter")
            .field("live", &self.n_live)
            .field("buckets_in_use", &self.blocks.in_use)
            .finish_non_exhaustive()
    }
}

impl LbWriter {
    /// An empty load-balance table reclaiming through `q`.
    pub fn new(config: LbConfig, q: Arc<Quiescence>) -> Result<Self, FibError> {
        if config.max_lbs == 0 || config.max_lbs > 1 << 26 {
            return Err(FibError::InvalidConfig { what: "max_lbs must be in 1..=2^26" });
        }
        if config.max_buckets < MAX_BUCKETS as u32 || config.max_buckets > 1 << 30 {
            return Err(FibError::InvalidConfig { what: "max_buckets must be in 64..=2^30" });
        }
        Ok(Self {
            table: Arc::new(LbTable {
                headers: bytemuck::zeroed_slice_box(config.max_lbs as usize),
                buckets: bytemuck::zeroed_slice_box(config.max_buckets as usize),
            }),
            q,
            ids: IndexPool::new(config.max_lbs),
            blocks: BucketAlloc::new(config.max_buckets),
            state: Vec::new(),
            n_live: 0,
        })
    }

    /// The reader side.
    pub fn table(&self) -> &Arc<LbTable> {
        &self.table
    }

    /// Creates a load-balance object over `paths`; returns its index.
    pub fn add(&mut self, paths: &[Path]) -> Result<u32, FibError> {
        let buckets = expand_paths(paths)?;
        let id = self.ids.alloc(&self.q).ok_or(FibError::LoadBalancesExhausted { max: self.ids.max() })?;
        match self.publish(id, buckets) {
            Ok(st) => {
                let i = id as usize;
                if self.state.len() <= i {
                    self.state.resize(i + 1, None);
                }
                self.state[i] = Some(st);
                self.n_live += 1;
                Ok(id)
            }
            Err(e) => {
                self.ids.free_unpublished(id);
                Err(e)
            }
        }
    }

    /// Replaces the paths of object `lb`. Readers switch atomically from the
    /// old bucket set to the new one.
    pub fn update(&mut self, lb: u32, paths: &[Path]) -> Result<(), FibError> {
        let buckets = expand_paths(paths)?;
        let old = self
            .state
            .get(lb as usize)
            .and_then(|s| s.as_ref())
            .ok_or(FibError::InvalidLoadBalance { index: lb })?
            .block;
        let st = self.publish(lb, buckets)?;
        if let Some((log2, base)) = old {
            self.blocks.retire(&self.q, log2, base);
        }
        self.state[lb as usize] = Some(st);
        Ok(())
    }

    /// Removes object `lb`; its index and buckets are reused after a grace
    /// period. No route should still point at it.
    pub fn remove(&mut self, lb: u32) -> Result<(), FibError> {
        let st =
            self.state.get_mut(lb as usize).and_then(|s| s.take()).ok_or(FibError::InvalidLoadBalance { index: lb })?;
        if let Some((log2, base)) = st.block {
            self.blocks.retire(&self.q, log2, base);
        }
        self.ids.retire(&self.q, lb);
        self.n_live -= 1;
        Ok(())
    }

    /// The expanded buckets of a live object.
    pub fn get(&self, lb: u32) -> Option<&[u32]> {
        self.state.get(lb as usize).and_then(|s| s.as_ref()).map(|s| s.buckets.as_slice())
    }

    /// Number of live objects.
    pub fn len(&self) -> usize {
        self.n_live
    }

    pub fn is_empty(&self) -> bool {
        self.n_live == 0
    }

    /// Buckets held by live objects.
    pub fn buckets_in_use(&self) -> u32 {
        self.blocks.in_use
    }

    /// Makes quarantined indices and bucket blocks reusable where the grace
    /// period has elapsed.
    pub fn reclaim(&mut self) -> usize {
        self.ids.reclaim(&self.q) + self.blocks.reclaim(&self.q)
    }

    /// Writes the buckets (to a fresh block) and publishes the header.
    fn publish(&mut self, id: u32, buckets: Vec<u32>) -> Result<LbState, FibError> {
        let t = &self.table;
        if buckets.iter().all(|&b| b == buckets[0]) {
            t.headers[id as usize].store(u64::from(!buckets[0]), Ordering::Release);
            return Ok(LbState { buckets: vec![buckets[0]], block: None });
        }
        let log2 = buckets.len().trailing_zeros();
        let base = self.blocks.alloc(&self.q, log2).ok_or(FibError::BucketsExhausted { max: self.blocks.max })?;
        let t = &self.table;
        for (i, &b) in buckets.iter().enumerate() {
            t.buckets[base as usize + i].store(b, Ordering::Relaxed);
        }
        t.headers[id as usize].store((u64::from(log2) << 32) | u64::from(base), Ordering::Release);
        Ok(LbState { buckets, block: Some((log2, base)) })
    }
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
#[inline]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Flow hash over the IPv4 5-tuple, for [`LbTable::choose`]. Fast
/// multiply/xor-shift mixing; all 32 bits (in particular the low ones used as
/// the bucket mask) depend on every input bit.
///
/// Not keyed: someone who controls the packets can aim flows at one bucket.
/// Use a keyed hash (e.g. SipHash with a per-boot key) where that matters.
#[inline]
pub fn flow_hash_v4(src: u32, dst: u32, proto: u8, sport: u16, dport: u16) -> u32 {
    let a = (u64::from(src) << 32) | u64::from(dst);
    let b = (u64::from(proto) << 32) | (u64::from(sport) << 16) | u64::from(dport);
    let h = fmix64(a.wrapping_mul(K1) ^ b.wrapping_mul(K2));
    (h ^ (h >> 32)) as u32
}

/// Flow hash over the IPv6 5-tuple (addresses as `u128::from(Ipv6Addr)`).
/// Same properties and caveat (not keyed) as [`flow_hash_v4`].
#[inline]
pub fn flow_hash_v6(src: u128, dst: u128, proto: u8, sport: u16, dport: u16) -> u32 {
    let s = fmix64((src >> 64) as u64 ^ (src as u64).wrapping_mul(K1));
    let d = fmix64((dst >> 64) as u64 ^ (dst as u64).wrapping_mul(K2));
    let b = (u64::from(proto) << 32) | (u64::from(sport) << 16) | u64::from(dport);
    let h = fmix64(s ^ d.rotate_left(32) ^ b.wrapping_mul(K1));
    (h ^ (h >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(adj: u32, weight: u32) -> Path {
        Path::new(adj, weight)
    }

    fn counts(b: &[u32], adj: u32) -> usize {
        b.iter().filter(|&&x| x == adj).count()
    }

    #[test]
    fn expansion() {
        assert_eq!(expand_paths(&[p(5, 1)]).unwrap(), vec![5]);
        assert_eq!(expand_paths(&[p(1, 3), p(2, 3)]).unwrap(), vec![1, 2]);
        assert_eq!(expand_paths(&[p(1, 1), p(2, 1), p(3, 1), p(4, 1)]).unwrap(), vec![1, 2, 3, 4]);
        let b = expand_paths(&[p(1, 1), p(2, 1), p(3, 1)]).unwrap();
        assert_eq!(b.len(), 64);
        assert_eq!((counts(&b, 1), counts(&b, 2), counts(&b, 3)), (22, 21, 21));
        let b = expand_paths(&[p(1, 3), p(2, 1)]).unwrap();
        assert_eq!(b.len(), 32);
        assert_eq!((counts(&b, 1), counts(&b, 2)), (24, 8));
        // a tiny weight still gets a bucket
        let b = expand_paths(&[p(1, 1_000_000), p(2, 1)]).unwrap();
        assert_eq!((counts(&b, 1), counts(&b, 2)), (31, 1));
        // zero weights are ignored
        assert_eq!(expand_paths(&[p(1, 0), p(2, 5)]).unwrap(), vec![2]);
        assert_eq!(expand_paths(&[p(1, 0)]).unwrap_err(), FibError::NoPaths);
        assert_eq!(expand_paths(&[]).unwrap_err(), FibError::NoPaths);
        let many: Vec<Path> = (0..65).map(|i| p(i, 1)).collect();
        assert_eq!(expand_paths(&many).unwrap_err(), FibError::TooManyPaths { paths: 65, max: 64 });
        let b = expand_paths(&many[..64]).unwrap();
        assert_eq!(b, (0..64).collect::<Vec<_>>());
        let b = expand_paths(&many[..33]).unwrap();
        assert_eq!(b.len(), 64);
        assert!((0..33).all(|i| counts(&b, i) >= 1));
    }

    #[test]
    fn header_encoding_and_choose() {
        let q = Quiescence::new();
        let mut w = LbWriter::new(LbConfig { max_lbs: 4, max_buckets: 128 }, q).unwrap();
        let t = Arc::clone(w.table());
        assert_eq!(t.choose(0, 0), INVALID_ADJ, "never set");
        assert_eq!(t.choose(99, 0), INVALID_ADJ, "out of range");
        let single = w.add(&[p(7, 1)]).unwrap();
        assert_eq!(t.headers[single as usize].load(Ordering::Relaxed), u64::from(!7u32));
        assert_eq!(t.choose(single, 12345), 7);
        assert_eq!(t.n_buckets(single), 1);
        let ecmp = w.add(&[p(1, 1), p(2, 1), p(3, 1), p(4, 1)]).unwrap();
        let h = t.headers[ecmp as usize].load(Ordering::Relaxed);
        assert_eq!(h >> 32, 2);
        assert_eq!(t.n_buckets(ecmp), 4);
        for hash in 0..16u32 {
            assert_eq!(t.choose(ecmp, hash), [1, 2, 3, 4][(hash & 3) as usize]);
        }
        assert_eq!(t.buckets(ecmp), vec![1, 2, 3, 4]);
        assert_eq!(w.get(ecmp), Some(&[1, 2, 3, 4][..]));
        // identical buckets collapse to a single path
        let same = w.add(&[p(9, 1), p(9, 1)]).unwrap();
        assert_eq!(t.n_buckets(same), 1);
        assert_eq!(t.choose(same, 3), 9);
    }

    #[test]
    fn update_remove_and_reclaim() {
        let q = Quiescence::new();
        let r = q.register_reader();
        let mut w = LbWriter::new(LbConfig { max_lbs: 2, max_buckets: 64 }, q.clone()).unwrap();
        let t = Arc::clone(w.table());
        let a = w.add(&[p(1, 1), p(2, 1)]).unwrap();
        assert_eq!(w.buckets_in_use(), 2);
        w.update(a, &[p(3, 1), p(4, 1), p(5, 1), p(6, 1)]).unwrap();
        assert_eq!(t.buckets(a), vec![3, 4, 5, 6]);
        assert_eq!(w.buckets_in_use(), 4);
        w.update(a, &[p(8, 1)]).unwrap();
        assert_eq!(t.choose(a, 77), 8);
        assert_eq!(w.buckets_in_use(), 0);
        // invalid input changes nothing
        assert_eq!(w.update(a, &[]).unwrap_err(), FibError::NoPaths);
        assert_eq!(t.choose(a, 77), 8);
        assert_eq!(w.update(1, &[p(1, 1)]).unwrap_err(), FibError::InvalidLoadBalance { index: 1 });
        // bucket space: 64 buckets; a 64-bucket object needs the whole space but
        // the old 2- and 4-bucket blocks are still quarantined
        let b = w.add(&[p(1, 1), p(2, 1)]).unwrap();
        assert_eq!(
            w.update(b, &(0..64).map(|i| p(i, 1)).collect::<Vec<_>>()).unwrap_err(),
            FibError::BucketsExhausted { max: 64 }
        );
        assert_eq!(t.buckets(b), vec![1, 2]);
        assert_eq!(w.add(&[p(1, 1)]).unwrap_err(), FibError::LoadBalancesExhausted { max: 2 });
        w.remove(a).unwrap();
        assert_eq!(w.remove(a).unwrap_err(), FibError::InvalidLoadBalance { index: a });
        assert_eq!(t.choose(a, 0), 8, "header kept for in-flight readers");
        assert!(w.add(&[p(1, 1)]).is_err(), "index still in quarantine");
        r.quiescent();
        assert_eq!(w.add(&[p(1, 1)]).unwrap(), a);
        w.remove(b).unwrap();
        r.quiescent();
        w.reclaim();
        assert_eq!(w.buckets_in_use(), 0);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn buddy_allocator_splits_and_coalesces() {
        let q = Quiescence::new();
        let mut a = BucketAlloc::new(130); // two whole 64-bucket chunks
        assert_eq!(a.max, 128);
        assert_eq!(a.alloc(&q, 1), Some(0));
        assert_eq!(a.alloc(&q, 6), Some(64), "second chunk");
        // the rest of chunk 0 was split into 2, 4, 8, 16, 32
        assert_eq!(a.alloc(&q, 1), Some(2));
        assert_eq!(a.alloc(&q, 5), Some(32));
        assert_eq!(a.alloc(&q, 6), None);
        assert_eq!(a.in_use, 2 + 64 + 2 + 32);
        for (l, b) in [(1, 0), (1, 2), (5, 32)] {
            a.retire(&q, l, b);
        }
        // no readers: reclaim releases and coalesces back to ... 4@4, 8@8,
        // 16@16 and the freed blocks: 0..64 is whole again
        assert_eq!(a.alloc(&q, 6), Some(0));
        assert_eq!(a.in_use, 128);
        assert!(a.free.iter().all(|f| f.is_empty()));
    }

    #[test]
    fn flow_hash_uses_every_field_and_spreads() {
        let base = flow_hash_v4(0x0a00_0001, 0x0a00_0002, 6, 1234, 80);
        assert_ne!(base, flow_hash_v4(0x0a00_0003, 0x0a00_0002, 6, 1234, 80));
        assert_ne!(base, flow_hash_v4(0x0a00_0001, 0x0a00_0003, 6, 1234, 80));
        assert_ne!(base, flow_hash_v4(0x0a00_0001, 0x0a00_0002, 17, 1234, 80));
        assert_ne!(base, flow_hash_v4(0x0a00_0001, 0x0a00_0002, 6, 1235, 80));
        assert_ne!(base, flow_hash_v4(0x0a00_0001, 0x0a00_0002, 6, 1234, 81));
        let b6 = flow_hash_v6(1, 2, 6, 1, 2);
        assert_ne!(b6, flow_hash_v6(1 << 100, 2, 6, 1, 2));
        assert_ne!(b6, flow_hash_v6(1, 2 | 1 << 70, 6, 1, 2));
        assert_ne!(b6, flow_hash_v6(1, 2, 17, 1, 2));
        assert_ne!(b6, flow_hash_v6(1, 2, 6, 3, 2));
        assert_ne!(b6, flow_hash_v6(1, 2, 6, 1, 3));
        // source ports of one client spread over 64 buckets: each bucket gets
        // 64000/64 = 1000 on average; allow +-25 %
        let mut hist4 = [0u32; 64];
        let mut hist6 = [0u32; 64];
        for sport in 0..64_000u32 {
            hist4[(flow_hash_v4(0xc0a8_0001, 0x0808_0808, 6, sport as u16, 443) & 63) as usize] += 1;
            hist6[(flow_hash_v6(0x2001_0db8 << 96, 1, 17, sport as u16, 53) & 63) as usize] += 1;
        }
        for h in [hist4, hist6] {
            assert!(h.iter().all(|&c| (750..=1250).contains(&c)), "{h:?}");
        }
    }
}
