//! The four AF_XDP rings (fill, RX, TX, completion): single-producer
//! single-consumer rings of `size` (a power of two) entries in memory
//! shared with the kernel, each with a free-running `u32` producer and
//! consumer index and a flags word.
//!
//! The index arithmetic lives in [`ProdCursor`] and [`ConsCursor`], pure
//! code over integers (tested across the `u32` wraparound); [`ProdRing`]
//! and [`ConsRing`] put it over the mapped memory. Each side keeps a
//! cached copy of the other side's index and reads the shared one (an
//! `Acquire` load) only when the cached view cannot satisfy a request, so
//! a burst reads it at most once; its own index is published once per
//! burst with a `Release` store, after the descriptors were written (or
//! read).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};

/// `XDP_RING_NEED_WAKEUP` in a ring's flags word.
pub const XDP_RING_NEED_WAKEUP: u32 = 1;

/// An owned memory mapping, unmapped on drop.
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a mapping is plain memory; who touches which part of it is
// decided by the ring owning it (one owner at a time).
unsafe impl Send for Mmap {}

impl Mmap {
    /// Maps `len` bytes of socket `fd` at page offset `offset`
    /// (`XDP_PGOFF_*`), shared with the kernel.
    pub fn socket_ring(fd: BorrowedFd<'_>, len: usize, offset: u64) -> io::Result<Mmap> {
        // SAFETY: a fresh shared mapping of the socket's ring (kernel
        // memory of at least `len` bytes, or the call fails); no existing
        // memory is touched; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mmap { ptr, len })
    }

    /// First byte.
    pub fn base(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Length in bytes (never 0: mmap refuses empty mappings).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (see [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `socket_ring`; the ring
        // that owned it is being dropped, so nothing uses it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// --- index arithmetic: pure code --------------------------------------------

/// The producer's view of a ring: its own index and a cached copy of the
/// consumer's. Indices run freely through `u32` and wrap; a slot is
/// `index & (size - 1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProdCursor {
    size: u32,
    /// The next index to produce (published or not).
    prod: u32,
    /// The consumer index as last read.
    cons: u32,
}

impl ProdCursor {
    /// A ring of `size` entries (a power of two) whose indices are now
    /// `prod` and `cons`.
    pub fn new(size: u32, prod: u32, cons: u32) -> ProdCursor {
        debug_assert!(size.is_power_of_two());
        ProdCursor { size, prod, cons }
    }

    /// Free slots as far as the cached consumer index tells. A consumer
    /// index that claims more entries than the ring holds (never from a
    /// sane kernel) leaves no free slot.
    pub fn free(&self) -> u32 {
        self.size.saturating_sub(self.prod.wrapping_sub(self.cons))
    }

    /// How many of `want` slots may be written now; reads the consumer
    /// index through `load` only when the cached view has too few.
    pub fn reserve(&mut self, want: u32, load: impl FnOnce() -> u32) -> u32 {
        if self.free() < want {
            self.cons = load();
        }
        want.min(self.free())
    }

    /// The slot of the `i`-th entry after the producer index.
    pub fn slot(&self, i: u32) -> usize {
        (self.prod.wrapping_add(i) & (self.size - 1)) as usize
    }

    /// Moves the producer index `n` entries on and returns it (to publish).
    pub fn submit(&mut self, n: u32) -> u32 {
        self.prod = self.prod.wrapping_add(n);
        self.prod
    }

    /// The producer index.
    pub fn producer(&self) -> u32 {
        self.prod
    }
}

/// The consumer's view of a ring: its own index and a cached copy of the
/// producer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsCursor {
    size: u32,
    /// The producer index as last read.
    prod: u32,
    /// The next index to consume.
    cons: u32,
}

impl ConsCursor {
    /// A ring of `size` entries (a power of two) whose indices are now
    /// `prod` and `cons`.
    pub fn new(size: u32, prod: u32, cons: u32) -> ConsCursor {
        debug_assert!(size.is_power_of_two());
        ConsCursor { size, prod, cons }
    }

    /// Entries ready as far as the cached producer index tells (never
    /// more than the ring holds, whatever the index says).
    pub fn available(&self) -> u32 {
        self.prod.wrapping_sub(self.cons).min(self.size)
    }

    /// How many of `want` entries may be read now; reads the producer
    /// index through `load` only when the cached view has too few.
    pub fn peek(&mut self, want: u32, load: impl FnOnce() -> u32) -> u32 {
        if self.available() < want {
            self.prod = load();
        }
        want.min(self.available())
    }

    /// The slot of the `i`-th entry after the consumer index.
    pub fn slot(&self, i: u32) -> usize {
        (self.cons.wrapping_add(i) & (self.size - 1)) as usize
    }

    /// Moves the consumer index `n` entries on and returns it (to publish).
    pub fn release(&mut self, n: u32) -> u32 {
        debug_assert!(n <= self.available());
        self.cons = self.cons.wrapping_add(n);
        self.cons
    }
}

// --- rings over shared memory -------------------------------------------------

/// Where a ring's parts lie in its mapping (`struct xdp_ring_offset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingOffsets {
    /// Offset of the producer index.
    pub producer: u64,
    /// Offset of the consumer index.
    pub consumer: u64,
    /// Offset of the descriptor array.
    pub desc: u64,
    /// Offset of the flags word.
    pub flags: u64,
}

impl From<libc::xdp_ring_offset> for RingOffsets {
    fn from(o: libc::xdp_ring_offset) -> RingOffsets {
        RingOffsets { producer: o.producer, consumer: o.consumer, desc: o.desc, flags: o.flags }
    }
}

impl RingOffsets {
    /// Bytes to map for `size` entries of `entry` bytes, after checking
    /// that every part is aligned and inside the mapping.
    pub fn map_len(&self, size: u32, entry: usize, align: usize) -> Result<usize, String> {
        let len = (self.desc as usize)
            .checked_add(size as usize * entry)
            .ok_or_else(|| format!("ring of {size} entries does not fit the address space"))?;
        for (what, off) in [("producer", self.producer), ("consumer", self.consumer), ("flags", self.flags)] {
            if off % 4 != 0 || off.saturating_add(4) > self.desc {
                return Err(format!(
                    "kernel ring offsets: {what} at {off} is misaligned or not before the descriptors"
                ));
            }
        }
        if !(self.desc as usize).is_multiple_of(align) {
            return Err(format!("kernel ring offsets: descriptors at {} are not {align}-byte aligned", self.desc));
        }
        Ok(len)
    }
}

/// A mapped ring: the shared indices, the flags and the descriptors.
struct RingMem<T> {
    map: Mmap,
    off: RingOffsets,
    size: u32,
    _entry: std::marker::PhantomData<T>,
}

impl<T: Copy> RingMem<T> {
    /// Takes over `map` (made with `off.map_len(size, size_of::<T>(), align_of::<T>())`).
    fn new(map: Mmap, off: RingOffsets, size: u32) -> RingMem<T> {
        debug_assert!(off.map_len(size, std::mem::size_of::<T>(), std::mem::align_of::<T>()).unwrap() <= map.len());
        RingMem { map, off, size, _entry: std::marker::PhantomData }
    }

    fn word(&self, off: u64) -> &AtomicU32 {
        // SAFETY: `off` is one of the checked offsets (4-byte aligned, the
        // word inside the mapping, which lives as long as `self`); the
        // kernel writes these words concurrently, so they are only ever
        // accessed atomically.
        unsafe { AtomicU32::from_ptr(self.map.base().as_ptr().add(off as usize).cast()) }
    }

    fn producer(&self) -> &AtomicU32 {
        self.word(self.off.producer)
    }

    fn consumer(&self) -> &AtomicU32 {
        self.word(self.off.consumer)
    }

    fn flags(&self) -> &AtomicU32 {
        self.word(self.off.flags)
    }

    fn slot_ptr(&self, slot: usize) -> *mut T {
        debug_assert!(slot < self.size as usize);
        // SAFETY: `slot < size` and the mapping holds `size` entries from
        // `desc` (checked by `map_len`), aligned for `T`.
        unsafe { self.map.base().as_ptr().add(self.off.desc as usize).cast::<T>().add(slot) }
    }
}

/// A ring user space produces into (fill, TX).
pub struct ProdRing<T> {
    mem: RingMem<T>,
    cur: ProdCursor,
}

/// A ring user space consumes from (RX, completion).
pub struct ConsRing<T> {
    mem: RingMem<T>,
    cur: ConsCursor,
}

// SAFETY: the ring is owned by one thread at a time (`Send`, not `Sync`);
// the kernel side is synchronised through the atomic indices.
unsafe impl<T: Send> Send for ProdRing<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for ConsRing<T> {}

impl<T: Copy> ProdRing<T> {
    /// The ring in `map`, laid out as `off` says, of `size` entries.
    pub fn new(map: Mmap, off: RingOffsets, size: u32) -> ProdRing<T> {
        let mem = RingMem::<T>::new(map, off, size);
        let prod = mem.producer().load(Ordering::Relaxed);
        let cons = mem.consumer().load(Ordering::Acquire);
        ProdRing { mem, cur: ProdCursor::new(size, prod, cons) }
    }

    /// How many of `want` slots can be written (see [`ProdCursor::reserve`]).
    pub fn reserve(&mut self, want: u32) -> u32 {
        let mem = &self.mem;
        self.cur.reserve(want, || mem.consumer().load(Ordering::Acquire))
    }

    /// Writes the `i`-th reserved slot (`i` below what `reserve` granted).
    pub fn write(&mut self, i: u32, value: T) {
        let p = self.mem.slot_ptr(self.cur.slot(i));
        // SAFETY: the slot is inside the ring and reserved: the consumer
        // is done with it (its index passed it, read with Acquire) and will
        // not read it before the Release store in `submit`.
        unsafe { p.write(value) };
    }

    /// Publishes the first `n` reserved slots to the kernel.
    pub fn submit(&mut self, n: u32) {
        if n > 0 {
            let prod = self.cur.submit(n);
            self.mem.producer().store(prod, Ordering::Release);
        }
    }

    /// Whether the kernel asks for a wakeup (`XDP_RING_NEED_WAKEUP`).
    /// Ordered after the last `submit` (a full fence: the kernel sets the
    /// flag and then looks at the producer index).
    pub fn needs_wakeup(&self) -> bool {
        fence(Ordering::SeqCst);
        self.mem.flags().load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }

    /// Entries submitted and not yet consumed by the kernel (reads the
    /// shared consumer index).
    pub fn pending(&self) -> u32 {
        self.cur.producer().wrapping_sub(self.mem.consumer().load(Ordering::Acquire))
    }
}

impl<T: Copy> ConsRing<T> {
    /// The ring in `map`, laid out as `off` says, of `size` entries.
    pub fn new(map: Mmap, off: RingOffsets, size: u32) -> ConsRing<T> {
        let mem = RingMem::<T>::new(map, off, size);
        let prod = mem.producer().load(Ordering::Acquire);
        let cons = mem.consumer().load(Ordering::Relaxed);
        ConsRing { mem, cur: ConsCursor::new(size, prod, cons) }
    }

    /// How many of `want` entries can be read (see [`ConsCursor::peek`]).
    pub fn peek(&mut self, want: u32) -> u32 {
        let mem = &self.mem;
        self.cur.peek(want, || mem.producer().load(Ordering::Acquire))
    }

    /// The `i`-th peeked entry (`i` below what `peek` granted).
    pub fn read(&self, i: u32) -> T {
        let p = self.mem.slot_ptr(self.cur.slot(i));
        // SAFETY: the slot is inside the ring and was published by the
        // kernel (the producer index passed it, read with Acquire); the
        // kernel does not reuse it before `release`.
        unsafe { p.read() }
    }

    /// Hands the first `n` peeked entries back to the kernel.
    pub fn release(&mut self, n: u32) {
        if n > 0 {
            let cons = self.cur.release(n);
            self.mem.consumer().store(cons, Ordering::Release);
        }
    }

    /// Whether the kernel sets `XDP_RING_NEED_WAKEUP` on this ring.
    pub fn needs_wakeup(&self) -> bool {
        self.mem.flags().load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_reserves_within_the_ring_and_reads_the_consumer_only_when_short() {
        let mut p = ProdCursor::new(8, 0, 0);
        let mut loads = 0;
        assert_eq!(
            p.reserve(5, || {
                loads += 1;
                0
            }),
            5
        );
        assert_eq!(loads, 0, "the cached view had room");
        p.submit(5);
        // 3 free; asking for 6 reads the consumer, which moved by 2.
        assert_eq!(
            p.reserve(6, || {
                loads += 1;
                2
            }),
            5
        );
        assert_eq!(loads, 1);
        assert_eq!(p.free(), 5);
        assert_eq!(p.slot(0), 5);
        assert_eq!(p.slot(3), 0, "slots wrap at the ring size");
    }

    #[test]
    fn indices_wrap_at_u32_max() {
        let start = u32::MAX - 2;
        let mut p = ProdCursor::new(4, start, start);
        assert_eq!(p.reserve(4, || unreachable!()), 4);
        assert_eq!(p.slot(0), (start & 3) as usize);
        assert_eq!(p.submit(4), 1, "u32::MAX - 2 + 4 wraps to 1");
        assert_eq!(p.free(), 0);
        assert_eq!(p.reserve(1, || start), 0, "consumer has not moved: full");
        assert_eq!(p.reserve(3, || 0), 3, "consumer past the wrap: 3 free");

        let mut c = ConsCursor::new(4, start, start);
        assert_eq!(c.peek(4, || 0), 3, "producer at 0 after the wrap: MAX-2, MAX-1, MAX");
        assert_eq!(c.slot(2), 3, "u32::MAX & 3");
        assert_eq!(c.release(3), 0);
        assert_eq!(c.available(), 0);
        assert_eq!(c.peek(2, || 1), 1, "one more across the wrap");
        assert_eq!(c.slot(0), 0);
        assert_eq!(c.release(1), 1);
    }

    #[test]
    fn consumer_reads_the_producer_only_when_short_and_never_trusts_it_beyond_the_ring() {
        let mut c = ConsCursor::new(8, 0, 0);
        let mut loads = 0;
        assert_eq!(
            c.peek(4, || {
                loads += 1;
                6
            }),
            4
        );
        assert_eq!(
            c.peek(4, || {
                loads += 1;
                99
            }),
            4,
            "6 cached entries cover 4"
        );
        assert_eq!(loads, 1);
        c.release(4);
        // A bogus producer index (more than the ring holds) is clamped.
        assert_eq!(c.peek(100, || 1_000_000), 8);
        // One behind the consumer: reads as "full" but no more than size.
        let mut c = ConsCursor::new(8, 10, 10);
        assert_eq!(c.peek(100, || 9), 8);
        // A producer that claims more than the ring: no free slot.
        let p = ProdCursor::new(8, 100, 50);
        assert_eq!(p.free(), 0);
    }

    #[test]
    fn ring_offsets_are_checked() {
        let ok = RingOffsets { producer: 0, consumer: 64, flags: 128, desc: 192 };
        assert_eq!(ok.map_len(16, 16, 8), Ok(192 + 256));
        let bad = RingOffsets { producer: 2, ..ok };
        assert!(bad.map_len(16, 16, 8).unwrap_err().contains("producer"));
        let bad = RingOffsets { desc: 196, ..ok };
        assert!(bad.map_len(16, 16, 8).unwrap_err().contains("aligned"));
        let bad = RingOffsets { flags: 10_000, ..ok };
        assert!(bad.map_len(16, 16, 8).unwrap_err().contains("flags"));
    }
}
