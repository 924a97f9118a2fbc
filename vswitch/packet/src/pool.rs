//! The buffer pool and its per-worker view.

use crate::arena::{Arena, ArenaBacking};
use crate::meta::Meta;
use crate::{PacketId, DEFAULT_DATA_SIZE, HEADROOM, VECTOR_SIZE};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const STATE_FREE: u8 = 0;
const STATE_OWNED: u8 = 1;

/// How many buffers, how big, and from which pages.
#[derive(Clone, Debug)]
pub struct BufferPoolConfig {
    /// Number of buffers.
    pub buffers: u32,
    /// Packet bytes after the headroom.
    pub data_size: usize,
    /// Try 2 MiB huge pages first.
    pub prefer_huge: bool,
}

impl Default for BufferPoolConfig {
    fn default() -> Self {
        BufferPoolConfig { buffers: 32 * 1024, data_size: DEFAULT_DATA_SIZE, prefer_huge: true }
    }
}

/// Counters of the pool, for `show buffers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Buffers in the pool.
    pub capacity: u32,
    /// Buffers on the shared free list (not counting worker caches).
    pub free_shared: u32,
    /// Allocation requests that found no buffer.
    pub alloc_failures: u64,
    /// Frees refused because the buffer was not allocated.
    pub double_frees: u64,
    /// Bytes per buffer (headroom + data).
    pub buffer_size: usize,
    /// Page backing of the arena.
    pub backing: ArenaBacking,
}

/// All buffers of a vswitch instance: the arena, the metadata array and the
/// shared free list. Workers reach it through [`Buffers`].
pub struct BufferPool {
    data: Arena,
    meta: Arena,
    stride: usize,
    buffer_size: usize,
    count: u32,
    free: Mutex<Vec<u32>>,
    alloc_failures: AtomicU64,
    double_frees: AtomicU64,
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool").field("count", &self.count).field("stride", &self.stride).finish()
    }
}

impl BufferPool {
    /// Maps the arena and puts every buffer on the free list.
    pub fn new(config: &BufferPoolConfig) -> io::Result<Arc<BufferPool>> {
        if config.buffers == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "buffers: must be at least 1"));
        }
        let buffer_size = HEADROOM + config.data_size;
        if config.data_size < 64 || buffer_size > u16::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("data_size: {} is outside 64..={}", config.data_size, u16::MAX as usize - HEADROOM),
            ));
        }
        let stride = buffer_size.next_multiple_of(64);
        let count = config.buffers;
        let data = Arena::new(stride * count as usize, config.prefer_huge)?;
        let meta = Arena::new(std::mem::size_of::<Meta>() * count as usize, config.prefer_huge)?;
        // Hand out low indices first: they were touched most recently.
        let free = (0..count).rev().collect();
        Ok(Arc::new(BufferPool {
            data,
            meta,
            stride,
            buffer_size,
            count,
            free: Mutex::new(free),
            alloc_failures: AtomicU64::new(0),
            double_frees: AtomicU64::new(0),
        }))
    }

    /// Number of buffers.
    pub fn capacity(&self) -> u32 {
        self.count
    }

    /// Buffers on the shared free list. When every worker has flushed its
    /// cache, this equals [`capacity`](Self::capacity) unless a buffer leaked.
    pub fn available(&self) -> u32 {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len() as u32
    }

    /// Counters for `show buffers`.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            capacity: self.count,
            free_shared: self.available(),
            alloc_failures: self.alloc_failures.load(Ordering::Relaxed),
            double_frees: self.double_frees.load(Ordering::Relaxed),
            buffer_size: self.buffer_size,
            backing: self.data.backing(),
        }
    }

    /// Bytes per buffer, headroom included.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// A worker's view of the pool, with an empty local cache.
    pub fn worker(self: &Arc<Self>) -> Buffers {
        Buffers {
            base: self.data.base().as_ptr(),
            meta: self.meta.base().as_ptr().cast(),
            stride: self.stride,
            buffer_size: self.buffer_size as u16,
            count: self.count,
            cache: Vec::with_capacity(CACHE_MAX + VECTOR_SIZE),
            pool: Arc::clone(self),
        }
    }

    fn take(&self, out: &mut Vec<u32>, n: usize) -> usize {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let n = n.min(free.len());
        let at = free.len() - n;
        out.extend(free.drain(at..));
        n
    }

    fn give(&self, from: &mut Vec<u32>, n: usize) {
        let at = from.len() - n.min(from.len());
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.extend(from.drain(at..));
    }
}

/// Local cache high-water mark: above it, a batch goes back to the pool.
const CACHE_MAX: usize = 4 * VECTOR_SIZE;

/// One worker's handle on the pool: allocation through a local cache, and
/// the accessors for packet bytes and metadata.
///
/// Not `Sync`: it belongs to one thread. Its accessors take `&mut self` to
/// hand out `&mut` views, so within a worker two views of one buffer can
/// never be alive at once; across workers, a buffer is only ever allocated
/// to one of them at a time (the free list holds each index once).
pub struct Buffers {
    base: *mut u8,
    meta: *mut Meta,
    stride: usize,
    buffer_size: u16,
    count: u32,
    cache: Vec<u32>,
    pool: Arc<BufferPool>,
}

// SAFETY: the raw pointers point into the pool's arenas, which the `Arc`
// keeps alive; a `Buffers` may move to the worker thread that uses it.
unsafe impl Send for Buffers {}

impl Buffers {
    /// The pool behind this view.
    pub fn pool(&self) -> &Arc<BufferPool> {
        &self.pool
    }

    /// Buffers in this worker's local cache.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Bytes per buffer, headroom included.
    #[inline(always)]
    pub fn buffer_size(&self) -> usize {
        self.buffer_size as usize
    }

    #[inline(always)]
    fn check(&self, p: PacketId) -> usize {
        let i = p.index();
        assert!(i < self.count, "packet index {i} outside the pool of {}", self.count);
        i as usize
    }

    /// Allocates one buffer with fresh metadata: data starts after the
    /// headroom, length zero.
    #[inline]
    pub fn alloc(&mut self) -> Option<PacketId> {
        if self.cache.is_empty() && self.pool.take(&mut self.cache, VECTOR_SIZE) == 0 {
            self.pool.alloc_failures.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let p = PacketId::from_index(self.cache.pop()?);
        let m = self.meta_raw(p);
        *m = Meta { current: HEADROOM as u16, state: STATE_OWNED, ..Meta::default() };
        Some(p)
    }

    /// Allocates up to `n` buffers into `out`; returns how many.
    pub fn alloc_bulk(&mut self, out: &mut Vec<PacketId>, n: usize) -> usize {
        let mut got = 0;
        while got < n {
            match self.alloc() {
                Some(p) => {
                    out.push(p);
                    got += 1;
                }
                None => break,
            }
        }
        got
    }

    /// Returns a buffer. A buffer that is not allocated is not put back
    /// twice: the attempt is counted (`double_frees`) and ignored.
    #[inline]
    pub fn free(&mut self, p: PacketId) {
        let m = self.meta_raw(p);
        if m.state != STATE_OWNED {
            self.pool.double_frees.fetch_add(1, Ordering::Relaxed);
            debug_assert!(false, "double free of {p}");
            return;
        }
        m.state = STATE_FREE;
        self.cache.push(p.index());
        if self.cache.len() >= CACHE_MAX + VECTOR_SIZE {
            self.pool.give(&mut self.cache, VECTOR_SIZE * 2);
        }
    }

    /// Returns a batch of buffers.
    pub fn free_bulk(&mut self, packets: &[PacketId]) {
        for &p in packets {
            self.free(p);
        }
    }

    /// Puts the whole local cache back on the shared free list.
    pub fn flush(&mut self) {
        let n = self.cache.len();
        self.pool.give(&mut self.cache, n);
    }

    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn meta_raw(&self, p: PacketId) -> &mut Meta {
        let i = self.check(p);
        // SAFETY: `i` is in bounds (checked); the metadata arena holds
        // `count` zero-initialised `Meta`s (all-zero is a valid `Meta`),
        // 64-byte aligned because the arena is page aligned. Callers are the
        // private paths of `Buffers` that hold `&mut self` or hand the result
        // straight back through a `&mut self`/`&self` borrow.
        unsafe { &mut *self.meta.add(i) }
    }

    /// Metadata of a packet.
    #[inline(always)]
    pub fn meta(&self, p: PacketId) -> &Meta {
        let m = self.meta_raw(p);
        debug_assert_eq!(m.state, STATE_OWNED, "{p} used while free");
        m
    }

    /// Metadata of a packet, writable.
    #[inline(always)]
    pub fn meta_mut(&mut self, p: PacketId) -> &mut Meta {
        let m = self.meta_raw(p);
        debug_assert_eq!(m.state, STATE_OWNED, "{p} used while free");
        m
    }

    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn buffer_raw(&self, p: PacketId) -> &mut [u8] {
        let i = self.check(p);
        // SAFETY: buffer `i` is `buffer_size` bytes at `i * stride` inside
        // the arena (bounds checked above; stride >= buffer_size). The
        // owning worker is the only one using this index (see the type's
        // docs), and the public callers tie the lifetime to a borrow of self.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(i * self.stride), self.buffer_size as usize) }
    }

    /// The whole buffer, headroom included; offsets in [`Meta`] index it.
    #[inline(always)]
    pub fn buffer(&self, p: PacketId) -> &[u8] {
        self.buffer_raw(p)
    }

    /// The whole buffer, writable.
    #[inline(always)]
    pub fn buffer_mut(&mut self, p: PacketId) -> &mut [u8] {
        self.buffer_raw(p)
    }

    /// The packet's bytes: `len` bytes from `current`.
    #[inline(always)]
    pub fn data(&self, p: PacketId) -> &[u8] {
        let m = self.meta(p);
        let (start, len) = (m.current as usize, m.len as usize);
        &self.buffer(p)[start..start + len]
    }

    /// The packet's bytes, writable.
    #[inline(always)]
    pub fn data_mut(&mut self, p: PacketId) -> &mut [u8] {
        let (start, len) = {
            let m = self.meta(p);
            (m.current as usize, m.len as usize)
        };
        &mut self.buffer_raw(p)[start..start + len]
    }

    /// The packet's bytes and its metadata, both writable.
    #[inline(always)]
    pub fn data_and_meta_mut(&mut self, p: PacketId) -> (&mut [u8], &mut Meta) {
        let m = self.meta_raw(p);
        debug_assert_eq!(m.state, STATE_OWNED, "{p} used while free");
        let (start, len) = (m.current as usize, m.len as usize);
        (&mut self.buffer_raw(p)[start..start + len], m)
    }

    /// Grows the packet at the front by `n` bytes of headroom and returns
    /// the new packet bytes, or `None` (nothing changed) when the headroom
    /// is too small.
    #[inline]
    pub fn push_front(&mut self, p: PacketId, n: usize) -> Option<&mut [u8]> {
        let m = self.meta_mut(p);
        if (m.current as usize) < n {
            return None;
        }
        m.current -= n as u16;
        m.len += n as u16;
        Some(self.data_mut(p))
    }

    /// Strips `n` bytes from the front; `false` (nothing changed) when the
    /// packet is shorter.
    #[inline]
    pub fn pull_front(&mut self, p: PacketId, n: usize) -> bool {
        let m = self.meta_mut(p);
        if (m.len as usize) < n {
            return false;
        }
        m.current += n as u16;
        m.len -= n as u16;
        true
    }

    /// Sets the length; `false` (nothing changed) when it would run past the
    /// end of the buffer.
    #[inline]
    pub fn set_len(&mut self, p: PacketId, len: usize) -> bool {
        let size = self.buffer_size as usize;
        let m = self.meta_mut(p);
        if m.current as usize + len > size {
            return false;
        }
        m.len = len as u16;
        true
    }

    /// Resets the packet to `bytes`, starting right after the headroom.
    /// Returns `false` (nothing changed) when they do not fit.
    pub fn write(&mut self, p: PacketId, bytes: &[u8]) -> bool {
        if HEADROOM + bytes.len() > self.buffer_size as usize {
            return false;
        }
        let m = self.meta_mut(p);
        m.current = HEADROOM as u16;
        m.len = bytes.len() as u16;
        self.data_mut(p).copy_from_slice(bytes);
        true
    }

    /// A new buffer holding a copy of the packet's bytes and metadata
    /// (for flooding and other replication). `None` when the pool is empty.
    pub fn clone_packet(&mut self, p: PacketId) -> Option<PacketId> {
        let q = self.alloc()?;
        let src_meta = *self.meta(p);
        let (start, len) = (src_meta.current as usize, src_meta.len as usize);
        let src = self.buffer_raw(p);
        let dst = self.buffer_raw(q);
        dst[start..start + len].copy_from_slice(&src[start..start + len]);
        *self.meta_raw(q) = Meta { state: STATE_OWNED, ..src_meta };
        Some(q)
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: u32) -> Arc<BufferPool> {
        BufferPool::new(&BufferPoolConfig { buffers: n, data_size: 2048, prefer_huge: false }).unwrap()
    }

    #[test]
    fn alloc_until_empty_then_free_all() {
        let pool = pool(1000);
        let mut b = pool.worker();
        let mut v = Vec::new();
        assert_eq!(b.alloc_bulk(&mut v, 2000), 1000);
        assert!(b.alloc().is_none());
        assert_eq!(pool.stats().alloc_failures, 2);
        let mut seen = vec![false; 1000];
        for p in &v {
            assert!(!seen[p.index() as usize], "handed out twice");
            seen[p.index() as usize] = true;
        }
        b.free_bulk(&v);
        drop(b);
        assert_eq!(pool.available(), 1000);
    }

    #[test]
    fn double_free_is_refused_and_counted() {
        let pool = pool(10);
        let mut b = pool.worker();
        let p = b.alloc().unwrap();
        b.free(p);
        // Release builds count and ignore; debug builds also assert.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.free(p)));
        assert_eq!(r.is_err(), cfg!(debug_assertions));
        assert_eq!(pool.stats().double_frees, 1);
        drop(b);
        assert_eq!(pool.available(), 10, "the free list holds each buffer once");
    }

    #[test]
    fn headroom_push_and_pull() {
        let pool = pool(4);
        let mut b = pool.worker();
        let p = b.alloc().unwrap();
        assert!(b.write(p, &[1, 2, 3, 4]));
        let head = b.push_front(p, 2).unwrap();
        head[..2].copy_from_slice(&[9, 9]);
        assert_eq!(b.data(p), &[9, 9, 1, 2, 3, 4]);
        assert!(b.push_front(p, HEADROOM).is_none(), "only HEADROOM-2 left");
        assert_eq!(b.data(p).len(), 6, "failed push changes nothing");
        assert!(b.pull_front(p, 3));
        assert_eq!(b.data(p), &[2, 3, 4]);
        assert!(!b.pull_front(p, 4));
        assert!(!b.set_len(p, 4096));
        assert!(b.set_len(p, 2));
        assert_eq!(b.data(p), &[2, 3]);
        b.free(p);
    }

    #[test]
    fn headroom_fits_srv6_and_vxlan_encaps() {
        // Ethernet + IPv6 + SRH with 3 SIDs, or Ethernet + IPv6 + UDP + VXLAN,
        // each with a VLAN tag, prepended in front of an inner frame.
        let srv6 = 14 + 4 + 40 + 8 + 3 * 16;
        let vxlan = 14 + 4 + 40 + 8 + 8;
        assert!(srv6 <= HEADROOM && vxlan <= HEADROOM);
        let pool = pool(2);
        let mut b = pool.worker();
        let p = b.alloc().unwrap();
        assert!(b.write(p, &[0u8; 64]));
        assert!(b.push_front(p, srv6).is_some());
        b.free(p);
    }

    #[test]
    fn clone_copies_bytes_and_metadata() {
        let pool = pool(4);
        let mut b = pool.worker();
        let p = b.alloc().unwrap();
        b.write(p, b"hello");
        b.meta_mut(p).rx_if = 7;
        let q = b.clone_packet(p).unwrap();
        assert_ne!(p, q);
        assert_eq!(b.data(q), b"hello");
        assert_eq!(b.meta(q).rx_if, 7);
        b.data_mut(q)[0] = b'j';
        assert_eq!(b.data(p), b"hello", "copies are independent");
        b.free(p);
        b.free(q);
    }

    #[test]
    fn caches_spill_and_refill_in_bulk_across_workers() {
        let pool = pool(4096);
        let mut handles = Vec::new();
        for _ in 0..2 {
            let pool = Arc::clone(&pool);
            handles.push(std::thread::spawn(move || {
                let mut b = pool.worker();
                let mut v = Vec::new();
                for round in 0..200 {
                    v.clear();
                    b.alloc_bulk(&mut v, 1500);
                    for &p in &v {
                        b.write(p, &(round as u32).to_le_bytes());
                    }
                    for &p in &v {
                        assert_eq!(b.data(p), &(round as u32).to_le_bytes(), "buffer shared by two workers");
                    }
                    b.free_bulk(&v);
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(pool.available(), 4096);
    }

    #[test]
    #[should_panic(expected = "outside the pool")]
    fn out_of_range_handle_panics_instead_of_reading_elsewhere() {
        let pool = pool(4);
        let b = pool.worker();
        b.data(PacketId::from_index(4));
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = BufferPool::new(&BufferPoolConfig { buffers: 0, ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("buffers"));
        let e = BufferPool::new(&BufferPoolConfig { data_size: 10, ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("data_size"));
    }
}
