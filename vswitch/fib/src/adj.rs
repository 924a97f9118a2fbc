//! Adjacencies: what to do with a packet once the route is known (rewrite
//! and send, punt, drop, ARP/ND glean, ...).
//!
//! Each adjacency is a fixed 56-byte record stored in a 64-byte slot (one
//! cache line): a sequence word plus seven `AtomicU64` data words. Readers use
//! a seqlock so they never see a torn record:
//!
//! ```text
//! reader: s1 = seq.load(Acquire); if odd retry
//!         copy the 7 words (Relaxed)
//!         fence(Acquire); s2 = seq.load(Relaxed); retry if s1 != s2
//! writer: seq = s+1 (odd); fence(Release); store words; seq = s+2 (Release)
//! ```
//!
//! Slots live in fixed-size chunks created on demand and referenced from a
//! fixed array of `OnceLock`s, so a slot never moves. A removed slot keeps its
//! contents (readers that fetched its index just before the removal still get
//! a consistent record) and goes through the grace-period quarantine before
//! it is reused.
//!
//! The reader side is [`AdjTable`] (shared `Arc`); the writer is
//! [`AdjWriter`]. Workers that resolve ARP/ND on the slow path share the
//! writer behind a `Mutex` (see [`crate::Fib::adj_writer`]).

use std::net::Ipv4Addr;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::quiesce::{IndexPool, Quiescence};
use crate::FibError;

/// Size of the rewrite buffer (enough for Ethernet + two VLAN tags + more).
pub const REWRITE_MAX: usize = 32;
/// Default maximum number of adjacencies.
pub const DEFAULT_MAX_ADJACENCIES: u32 = 1 << 20;
/// Upper bound for [`AdjConfig::max_adjacencies`].
pub const MAX_ADJACENCIES_LIMIT: u32 = 1 << 28;

const CHUNK_SHIFT: u32 = 10;
const CHUNK: usize = 1 << CHUNK_SHIFT;
const WORDS: usize = 7;

/// What an adjacency does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AdjKind {
    /// Drop the packet.
    Drop = 0,
    /// Hand the packet to the control plane.
    Punt = 1,
    /// For us: deliver to ip4-local / ip6-local.
    Local = 2,
    /// Attached subnet, next hop unresolved: send to ARP/ND.
    Glean = 3,
    /// Complete: write `rewrite` before the IP header and send on `sw_if`.
    Rewrite = 4,
    /// Neighbor known but not resolved yet.
    Incomplete = 5,
    /// Send ICMP unreachable.
    Unreachable = 6,
    /// Administratively prohibited (ICMP prohibited).
    Prohibit = 7,
    /// An SRv6 local SID that keeps the packet IPv6 (End, End.X, End.T,
    /// End.B6.*): hand it to the SR local SID node. The SID's index in the
    /// SR table is the adjacency's [`Adjacency::index`]; the FIB knows
    /// nothing else of it.
    SrLocalSid = 8,
    /// An SRv6 local SID that decapsulates (End.DX*, End.DT*): as
    /// [`AdjKind::SrLocalSid`], for the decapsulating node.
    SrLocalSidDecap = 9,
    /// Steered into an SR policy (headend encapsulation): the policy's
    /// index is [`Adjacency::index`].
    SrPolicy = 10,
}

impl AdjKind {
    /// The kind with discriminant `v`, if any.
    pub const fn from_u8(v: u8) -> Option<AdjKind> {
        Some(match v {
            0 => AdjKind::Drop,
            1 => AdjKind::Punt,
            2 => AdjKind::Local,
            3 => AdjKind::Glean,
            4 => AdjKind::Rewrite,
            5 => AdjKind::Incomplete,
            6 => AdjKind::Unreachable,
            7 => AdjKind::Prohibit,
            8 => AdjKind::SrLocalSid,
            9 => AdjKind::SrLocalSidDecap,
            10 => AdjKind::SrPolicy,
            _ => return None,
        })
    }
}

/// One adjacency record (56 bytes of payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adjacency {
    pub kind: AdjKind,
    /// Output software interface index.
    pub sw_if: u32,
    /// Output MTU (L3 bytes).
    pub mtu: u16,
    /// Next-hop address; IPv4 in the first 4 bytes (for glean/incomplete).
    pub next_hop: [u8; 16],
    /// Number of valid bytes in `rewrite` (at most [`REWRITE_MAX`]).
    pub rewrite_len: u8,
    /// Bytes written before the IP header: e.g. dst MAC, src MAC, VLAN tags,
    /// ethertype.
    pub rewrite: [u8; REWRITE_MAX],
}

impl Adjacency {
    /// The all-zero record: drop.
    pub const DROP: Adjacency = Adjacency::new(AdjKind::Drop);

    /// An adjacency of `kind` with every other field zero.
    pub const fn new(kind: AdjKind) -> Self {
        Self { kind, sw_if: 0, mtu: 0, next_hop: [0; 16], rewrite_len: 0, rewrite: [0; REWRITE_MAX] }
    }

    /// A complete (`Rewrite`) adjacency. Fails if `rewrite` is longer than
    /// [`REWRITE_MAX`].
    pub fn with_rewrite(sw_if: u32, mtu: u16, rewrite: &[u8]) -> Result<Self, FibError> {
        if rewrite.len() > REWRITE_MAX {
            return Err(FibError::RewriteTooLong { len: rewrite.len().min(255) as u8, max: REWRITE_MAX as u8 });
        }
        let mut a = Self::new(AdjKind::Rewrite);
        a.sw_if = sw_if;
        a.mtu = mtu;
        a.rewrite_len = rewrite.len() as u8;
        a.rewrite[..rewrite.len()].copy_from_slice(rewrite);
        Ok(a)
    }

    /// An adjacency of `kind` that points at entry `index` of a table
    /// outside the FIB (the SRv6 kinds): the FIB stores the kind and the
    /// index (in the `sw_if` word) and nothing else.
    pub const fn indexed(kind: AdjKind, index: u32) -> Self {
        let mut a = Self::new(kind);
        a.sw_if = index;
        a
    }

    /// The table index of an [`Adjacency::indexed`] adjacency.
    #[inline(always)]
    pub const fn index(&self) -> u32 {
        self.sw_if
    }

    /// A glean adjacency for an attached IPv4 subnet on `sw_if`.
    pub fn glean_v4(sw_if: u32, next_hop: Ipv4Addr) -> Self {
        let mut a = Self::new(AdjKind::Glean);
        a.sw_if = sw_if;
        a.next_hop[..4].copy_from_slice(&next_hop.octets());
        a
    }

    /// The valid rewrite bytes.
    pub fn rewrite_bytes(&self) -> &[u8] {
        &self.rewrite[..usize::from(self.rewrite_len).min(REWRITE_MAX)]
    }

    /// The first four `next_hop` bytes as an IPv4 address.
    pub fn next_hop_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.next_hop[0], self.next_hop[1], self.next_hop[2], self.next_hop[3])
    }

    fn encode(&self) -> [u64; WORDS] {
        let mut w = [0u64; WORDS];
        w[0] = u64::from(self.kind as u8)
            | u64::from(self.rewrite_len) << 8
            | u64::from(self.mtu) << 16
            | u64::from(self.sw_if) << 32;
        w[1] = u64::from_le_bytes(self.next_hop[0..8].try_into().expect("8 bytes"));
        w[2] = u64::from_le_bytes(self.next_hop[8..16].try_into().expect("8 bytes"));
        for (i, c) in self.rewrite.chunks_exact(8).enumerate() {
            w[3 + i] = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        }
        w
    }

    fn decode(w: &[u64; WORDS]) -> Self {
        let mut next_hop = [0u8; 16];
        next_hop[0..8].copy_from_slice(&w[1].to_le_bytes());
        next_hop[8..16].copy_from_slice(&w[2].to_le_bytes());
        let mut rewrite = [0u8; REWRITE_MAX];
        for (i, c) in rewrite.chunks_exact_mut(8).enumerate() {
            c.copy_from_slice(&w[3 + i].to_le_bytes());
        }
        Self {
            kind: AdjKind::from_u8(w[0] as u8).unwrap_or(AdjKind::Drop),
            rewrite_len: ((w[0] >> 8) as u8).min(REWRITE_MAX as u8),
            mtu: (w[0] >> 16) as u16,
            sw_if: (w[0] >> 32) as u32,
            next_hop,
            rewrite,
        }
    }
}

impl Default for Adjacency {
    fn default() -> Self {
        Self::DROP
    }
}

/// One seqlocked record on its own cache line.
#[repr(align(64))]
#[derive(Default)]
struct AdjSlot {
    seq: AtomicU64,
    w: [AtomicU64; WORDS],
}

impl AdjSlot {
    #[inline]
    fn read(&self) -> Adjacency {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let w = [
                    self.w[0].load(Ordering::Relaxed),
                    self.w[1].load(Ordering::Relaxed),
                    self.w[2].load(Ordering::Relaxed),
                    self.w[3].load(Ordering::Relaxed),
                    self.w[4].load(Ordering::Relaxed),
                    self.w[5].load(Ordering::Relaxed),
                    self.w[6].load(Ordering::Relaxed),
                ];
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == s1 {
                    return Adjacency::decode(&w);
                }
            }
            std::hint::spin_loop();
        }
    }

    /// Only one writer at a time (guaranteed by `&mut AdjWriter`).
    fn write(&self, a: &Adjacency) {
        let w = a.encode();
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (slot, v) in self.w.iter().zip(w) {
            slot.store(v, Ordering::Relaxed);
        }
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }
}

/// Sizing of the adjacency table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdjConfig {
    /// Maximum number of adjacencies (1..=2^28); memory is allocated in
    /// 64 KiB chunks of 1024 as needed.
    pub max_adjacencies: u32,
}

impl Default for AdjConfig {
    fn default() -> Self {
        Self { max_adjacencies: DEFAULT_MAX_ADJACENCIES }
    }
}

/// Reader side of the adjacency table.
pub struct AdjTable {
    chunks: Box<[OnceLock<Box<[AdjSlot]>>]>,
}

impl std::fmt::Debug for AdjTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdjTable").field("capacity", &(self.chunks.len() * CHUNK)).finish_non_exhaustive()
    }
}

impl AdjTable {
    #[inline]
    fn slot(&self, idx: u32) -> Option<&AdjSlot> {
        let chunk = self.chunks.get((idx >> CHUNK_SHIFT) as usize)?.get()?;
        Some(&chunk[idx as usize & (CHUNK - 1)])
    }

    /// A consistent copy of adjacency `idx`. An index that was never
    /// allocated reads as [`Adjacency::DROP`]. Lock-free; retries only while
    /// the writer is updating this very slot.
    #[inline]
    pub fn get(&self, idx: u32) -> Adjacency {
        match self.slot(idx) {
            Some(s) => s.read(),
            None => Adjacency::DROP,
        }
    }

    /// Number of slots the table can hold.
    pub fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }
}

/// The adjacency writer: one at a time (wrap it in a `Mutex` to share it).
pub struct AdjWriter {
    table: Arc<AdjTable>,
    q: Arc<Quiescence>,
    pool: IndexPool,
    live: Vec<bool>,
    n_live: usize,
}

impl std::fmt::Debug for AdjWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdjWriter")
            .field("live", &self.n_live)
            .field("quarantined", &self.pool.quarantined())
            .finish_non_exhaustive()
    }
}

impl AdjWriter {
    /// An empty adjacency table reclaiming through `q`.
    pub fn new(config: AdjConfig, q: Arc<Quiescence>) -> Result<Self, FibError> {
        if config.max_adjacencies == 0 || config.max_adjacencies > MAX_ADJACENCIES_LIMIT {
            return Err(FibError::InvalidConfig { what: "max_adjacencies must be in 1..=2^28" });
        }
        let n_chunks = (config.max_adjacencies as usize).div_ceil(CHUNK);
        Ok(Self {
            table: Arc::new(AdjTable { chunks: (0..n_chunks).map(|_| OnceLock::new()).collect() }),
            q,
            pool: IndexPool::new(config.max_adjacencies),
            live: Vec::new(),
            n_live: 0,
        })
    }

    /// The reader side.
    pub fn table(&self) -> &Arc<AdjTable> {
        &self.table
    }

    fn check(adj: &Adjacency) -> Result<(), FibError> {
        if usize::from(adj.rewrite_len) > REWRITE_MAX {
            return Err(FibError::RewriteTooLong { len: adj.rewrite_len, max: REWRITE_MAX as u8 });
        }
        Ok(())
    }

    fn slot_or_create(&self, idx: u32) -> &AdjSlot {
        let chunk = self.table.chunks[(idx >> CHUNK_SHIFT) as usize]
            .get_or_init(|| (0..CHUNK).map(|_| AdjSlot::default()).collect());
        &chunk[idx as usize & (CHUNK - 1)]
    }

    /// Adds an adjacency; returns its index.
    pub fn add(&mut self, adj: Adjacency) -> Result<u32, FibError> {
        Self::check(&adj)?;
        let idx = self.pool.alloc(&self.q).ok_or(FibError::AdjacenciesExhausted { max: self.pool.max() })?;
        self.slot_or_create(idx).write(&adj);
        let i = idx as usize;
        if self.live.len() <= i {
            self.live.resize(i + 1, false);
        }
        self.live[i] = true;
        self.n_live += 1;
        Ok(idx)
    }

    /// Replaces adjacency `idx` in place (e.g. ARP resolved: glean/incomplete
    /// → rewrite). Readers see the old or the new record, never a mix.
    pub fn update(&mut self, idx: u32, adj: Adjacency) -> Result<(), FibError> {
        Self::check(&adj)?;
        if !self.is_live(idx) {
            return Err(FibError::InvalidAdjacency { index: idx });
        }
        self.slot_or_create(idx).write(&adj);
        Ok(())
    }

    /// Removes adjacency `idx`; its slot is reused only after a grace period.
    /// Nothing (no route, no load-balance bucket) should still point at it.
    pub fn remove(&mut self, idx: u32) -> Result<Adjacency, FibError> {
        if !self.is_live(idx) {
            return Err(FibError::InvalidAdjacency { index: idx });
        }
        let old = self.table.get(idx);
        self.live[idx as usize] = false;
        self.n_live -= 1;
        self.pool.retire(&self.q, idx);
        Ok(old)
    }

    /// The live adjacency `idx`, if any.
    pub fn get(&self, idx: u32) -> Option<Adjacency> {
        self.is_live(idx).then(|| self.table.get(idx))
    }

    /// Whether `idx` is a live adjacency.
    pub fn is_live(&self, idx: u32) -> bool {
        self.live.get(idx as usize).copied().unwrap_or(false)
    }

    /// Number of live adjacencies.
    pub fn len(&self) -> usize {
        self.n_live
    }

    pub fn is_empty(&self) -> bool {
        self.n_live == 0
    }

    /// Slots waiting for a grace period.
    pub fn quarantined(&self) -> u32 {
        self.pool.quarantined()
    }

    /// Makes quarantined slots whose grace period has elapsed reusable.
    pub fn reclaim(&mut self) -> usize {
        self.pool.reclaim(&self.q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Adjacency {
        let mut a = Adjacency::with_rewrite(
            7,
            1500,
            &[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00],
        )
        .unwrap();
        a.next_hop[..4].copy_from_slice(&[10, 0, 0, 1]);
        a
    }

    #[test]
    fn slot_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<AdjSlot>(), 64);
        assert_eq!(std::mem::align_of::<AdjSlot>(), 64);
    }

    #[test]
    fn encode_decode_roundtrip_and_layout() {
        let a = sample();
        let w = a.encode();
        assert_eq!(w[0] & 0xff, AdjKind::Rewrite as u64);
        assert_eq!((w[0] >> 8) & 0xff, 18);
        assert_eq!((w[0] >> 16) & 0xffff, 1500);
        assert_eq!(w[0] >> 32, 7);
        assert_eq!(w[1].to_le_bytes()[..4], [10, 0, 0, 1]);
        assert_eq!(w[3].to_le_bytes(), [0x02, 0, 0, 0, 0, 1, 0x02, 0]);
        assert_eq!(Adjacency::decode(&w), a);
        assert_eq!(a.rewrite_bytes().len(), 18);
        assert_eq!(a.next_hop_v4(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(Adjacency::decode(&[0; WORDS]), Adjacency::DROP);
        for k in 0..=10u8 {
            assert_eq!(AdjKind::from_u8(k).unwrap() as u8, k);
        }
        assert_eq!(AdjKind::from_u8(11), None);
        let sr = Adjacency::indexed(AdjKind::SrPolicy, 77);
        assert_eq!(Adjacency::decode(&sr.encode()), sr);
        assert_eq!((sr.kind, sr.index()), (AdjKind::SrPolicy, 77));
    }

    #[test]
    fn add_update_remove_reuse_after_grace() {
        let q = Quiescence::new();
        let r = q.register_reader();
        let mut w = AdjWriter::new(AdjConfig { max_adjacencies: 2 }, q.clone()).unwrap();
        let t = Arc::clone(w.table());
        assert_eq!(t.get(0), Adjacency::DROP, "never allocated");
        assert_eq!(t.get(u32::MAX), Adjacency::DROP, "out of range");
        let a = w.add(sample()).unwrap();
        let b = w.add(Adjacency::glean_v4(3, Ipv4Addr::new(10, 0, 0, 9))).unwrap();
        assert_eq!(t.get(a), sample());
        assert_eq!(t.get(b).kind, AdjKind::Glean);
        assert_eq!(t.get(b).next_hop_v4(), Ipv4Addr::new(10, 0, 0, 9));
        assert_eq!(w.add(Adjacency::DROP).unwrap_err(), FibError::AdjacenciesExhausted { max: 2 });
        w.update(b, sample()).unwrap();
        assert_eq!(t.get(b), sample());
        assert_eq!(w.remove(a).unwrap(), sample());
        assert_eq!(w.remove(a).unwrap_err(), FibError::InvalidAdjacency { index: a });
        assert!(w.update(a, sample()).is_err());
        assert_eq!(w.get(a), None);
        assert_eq!(t.get(a), sample(), "contents kept for in-flight readers");
        assert_eq!(w.len(), 1);
        // the reader has not passed a quiescent point: no reuse yet
        assert!(w.add(Adjacency::DROP).is_err());
        r.quiescent();
        let c = w.add(Adjacency::new(AdjKind::Local)).unwrap();
        assert_eq!(c, a);
        assert_eq!(t.get(c).kind, AdjKind::Local);
    }

    #[test]
    fn invalid_input_changes_nothing() {
        let mut w = AdjWriter::new(AdjConfig::default(), Quiescence::new()).unwrap();
        assert!(Adjacency::with_rewrite(1, 1500, &[0; 33]).is_err());
        let mut bad = sample();
        bad.rewrite_len = 33;
        assert_eq!(w.add(bad).unwrap_err(), FibError::RewriteTooLong { len: 33, max: 32 });
        assert!(w.is_empty());
        let i = w.add(sample()).unwrap();
        assert!(w.update(i, bad).is_err());
        assert_eq!(w.get(i), Some(sample()));
        assert!(AdjWriter::new(AdjConfig { max_adjacencies: 0 }, Quiescence::new()).is_err());
    }
}
