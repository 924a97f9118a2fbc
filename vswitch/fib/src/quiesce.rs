//! Quiescent-state-based reclamation (QSBR) for the FIB's shared memory.
//!
//! Readers (dataplane workers) never take locks. Instead each worker owns a
//! [`ReaderHandle`] and calls [`ReaderHandle::quiescent`] at the top of every
//! loop iteration, i.e. at a point where it holds no reference into any FIB
//! structure. That call is one load of the global epoch and one store into the
//! worker's own cache line.
//!
//! The single control writer, after unlinking a piece of memory (a tbl8 group,
//! an adjacency slot, a load-balance bucket block, ...), puts it on a
//! quarantine list stamped with a freshly advanced global epoch. The memory may
//! be reused only once every *online* reader has announced an epoch at least as
//! large as the stamp: such a reader has passed a quiescent point after the
//! unlink, so it cannot still be looking at the old memory.
//!
//! A reader that is going to block or park (no packets) calls
//! [`ReaderHandle::offline`] so that it does not hold back reclamation, and
//! [`ReaderHandle::online`] before touching the FIB again. Dropping a handle
//! unregisters it.
//!
//! ## Memory ordering
//!
//! * Writer: unlink store (Release) → `fetch_add` on the global epoch (SeqCst)
//!   gives the stamp `S`. Later, [`Quiescence::safe_epoch`] issues a SeqCst
//!   fence and loads every reader's epoch with Acquire.
//! * Reader, `quiescent()`: `local = global.load(Acquire)` then
//!   `store(local, Release)`. If the writer sees `local >= S`, the reader's
//!   Acquire load read the writer's `fetch_add` (or a later one), so all of
//!   the reader's subsequent lookups see the unlink; and the reader's Release
//!   store orders all its earlier lookups before the writer's reuse.
//! * Reader, `online()`: store the epoch, then a SeqCst fence before any
//!   lookup. Paired with the writer's SeqCst fence this is the classic
//!   store/load (Dekker) pattern: either the writer sees the reader online
//!   (and waits for it), or the reader's lookups see the unlink.

use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Epoch value a reader slot holds while it is offline.
const OFFLINE: u64 = 0;

/// One reader's announced epoch, alone on its cache line so that workers do not
/// false-share.
#[repr(align(64))]
#[derive(Debug)]
struct ReaderSlot {
    epoch: AtomicU64,
}

/// Shared grace-period state: the global epoch and the set of registered
/// readers. Create one per dataplane (e.g. one per [`crate::Fib`]) and share it
/// (`Arc`) between all writers of structures the same readers look at.
#[derive(Debug)]
pub struct Quiescence {
    global: AtomicU64,
    readers: Mutex<Vec<Arc<ReaderSlot>>>,
}

impl Default for Quiescence {
    fn default() -> Self {
        Self {
            // Starts at 1 so that 0 can mean "offline".
            global: AtomicU64::new(1),
            readers: Mutex::new(Vec::new()),
        }
    }
}

impl Quiescence {
    /// A new, shareable grace-period domain with no readers.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock_readers(&self) -> MutexGuard<'_, Vec<Arc<ReaderSlot>>> {
        // A panic while holding this lock cannot leave the Vec inconsistent.
        self.readers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a reader (one per worker thread). The handle starts online.
    pub fn register_reader(self: &Arc<Self>) -> ReaderHandle {
        let slot = Arc::new(ReaderSlot { epoch: AtomicU64::new(OFFLINE) });
        self.lock_readers().push(Arc::clone(&slot));
        let handle = ReaderHandle { domain: Arc::clone(self), slot };
        handle.online();
        handle
    }

    /// Number of registered reader handles (online or offline).
    pub fn reader_count(&self) -> usize {
        self.lock_readers().len()
    }

    /// The current global epoch.
    pub fn current_epoch(&self) -> u64 {
        self.global.load(Ordering::Acquire)
    }

    /// Advances the global epoch and returns the new value. Memory unlinked
    /// before this call and stamped with the returned value can be reused once
    /// [`Self::safe_epoch`] is `>=` it.
    pub fn advance(&self) -> u64 {
        self.global.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The largest epoch `E` such that every online reader has announced an
    /// epoch `>= E`: everything stamped `<= E` may be reused. With no online
    /// reader this is the current global epoch.
    pub fn safe_epoch(&self) -> u64 {
        fence(Ordering::SeqCst);
        let readers = self.lock_readers();
        let mut min = self.global.load(Ordering::SeqCst);
        for r in readers.iter() {
            let e = r.epoch.load(Ordering::Acquire);
            if e != OFFLINE && e < min {
                min = e;
            }
        }
        min
    }

    /// Blocks (spinning, then yielding) until every reader that is online now
    /// has passed a quiescent point. Never call this from a thread whose own
    /// reader handle is online: it would wait for itself forever.
    pub fn synchronize(&self) {
        let target = self.advance();
        let mut spins = 0u32;
        while self.safe_epoch() < target {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// A registered reader. Owned by one worker thread; `Send` but used through
/// `&self` only by that thread.
#[derive(Debug)]
pub struct ReaderHandle {
    domain: Arc<Quiescence>,
    slot: Arc<ReaderSlot>,
}

impl ReaderHandle {
    /// Announces a quiescent point: the caller holds no reference obtained from
    /// any FIB structure. Cheap: one load and one store (no fence on x86).
    /// Call it only while online; come back from [`Self::offline`] with
    /// [`Self::online`], which has the fence this fast path lacks.
    #[inline]
    pub fn quiescent(&self) {
        let e = self.domain.global.load(Ordering::Acquire);
        self.slot.epoch.store(e, Ordering::Release);
    }

    /// Marks the reader offline (idle, parked): it does not hold back
    /// reclamation until [`Self::online`]. It must not look anything up while
    /// offline.
    #[inline]
    pub fn offline(&self) {
        self.slot.epoch.store(OFFLINE, Ordering::Release);
    }

    /// Brings the reader back online; lookups may follow.
    #[inline]
    pub fn online(&self) {
        let e = self.domain.global.load(Ordering::Acquire);
        self.slot.epoch.store(e, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Whether the reader is currently online.
    pub fn is_online(&self) -> bool {
        self.slot.epoch.load(Ordering::Relaxed) != OFFLINE
    }

    /// The grace-period domain this handle belongs to.
    pub fn domain(&self) -> &Arc<Quiescence> {
        &self.domain
    }
}

impl Drop for ReaderHandle {
    fn drop(&mut self) {
        self.offline();
        let mut readers = self.domain.lock_readers();
        if let Some(pos) = readers.iter().position(|s| Arc::ptr_eq(s, &self.slot)) {
            readers.swap_remove(pos);
        }
    }
}

/// Writer-side FIFO of retired items, each stamped with the epoch at which it
/// was unlinked.
#[derive(Debug)]
pub(crate) struct Quarantine<T> {
    items: VecDeque<(u64, T)>,
}

impl<T> Default for Quarantine<T> {
    fn default() -> Self {
        Self { items: VecDeque::new() }
    }
}

impl<T> Quarantine<T> {
    /// Retires `item`, which must already be unreachable for new lookups.
    pub(crate) fn retire(&mut self, q: &Quiescence, item: T) {
        let stamp = q.advance();
        self.items.push_back((stamp, item));
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Hands every item whose grace period has elapsed to `reuse`.
    pub(crate) fn reclaim(&mut self, q: &Quiescence, mut reuse: impl FnMut(T)) -> usize {
        if self.items.is_empty() {
            return 0;
        }
        let safe = q.safe_epoch();
        let mut n = 0;
        while let Some((stamp, _)) = self.items.front() {
            if *stamp > safe {
                break;
            }
            let (_, item) = self.items.pop_front().expect("front exists");
            reuse(item);
            n += 1;
        }
        n
    }
}

/// A pool of `u32` indices `0..max` with grace-period reuse: fresh indices are
/// handed out in increasing order, retired ones go through a [`Quarantine`].
#[derive(Debug)]
pub(crate) struct IndexPool {
    max: u32,
    next_fresh: u32,
    free: Vec<u32>,
    quarantine: Quarantine<u32>,
}

impl IndexPool {
    pub(crate) fn new(max: u32) -> Self {
        Self { max, next_fresh: 0, free: Vec::new(), quarantine: Quarantine::default() }
    }

    /// Allocates an index, reclaiming quarantined ones first if no free index
    /// is at hand. `None` when all `max` indices are in use or in quarantine.
    pub(crate) fn alloc(&mut self, q: &Quiescence) -> Option<u32> {
        if self.free.is_empty() && !self.quarantine.is_empty() {
            self.reclaim(q);
        }
        if let Some(i) = self.free.pop() {
            return Some(i);
        }
        if self.next_fresh < self.max {
            self.next_fresh += 1;
            return Some(self.next_fresh - 1);
        }
        None
    }

    /// Number of indices that [`Self::alloc`] could hand out right now
    /// without reclaiming.
    pub(crate) fn available_now(&self) -> u64 {
        self.free.len() as u64 + u64::from(self.max - self.next_fresh)
    }

    /// Returns an index that was allocated but never published to readers.
    pub(crate) fn free_unpublished(&mut self, i: u32) {
        self.free.push(i);
    }

    /// Retires an index that readers may still be using.
    pub(crate) fn retire(&mut self, q: &Quiescence, i: u32) {
        self.quarantine.retire(q, i);
    }

    pub(crate) fn reclaim(&mut self, q: &Quiescence) -> usize {
        let free = &mut self.free;
        self.quarantine.reclaim(q, |i| free.push(i))
    }

    /// Indices allocated and not retired.
    pub(crate) fn in_use(&self) -> u32 {
        self.next_fresh - self.free.len() as u32 - self.quarantine.len() as u32
    }

    pub(crate) fn quarantined(&self) -> u32 {
        self.quarantine.len() as u32
    }

    /// Highest index ever handed out + 1 (memory touched so far).
    pub(crate) fn high_water(&self) -> u32 {
        self.next_fresh
    }

    pub(crate) fn max(&self) -> u32 {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_starts_at_one_and_advances() {
        let q = Quiescence::new();
        assert_eq!(q.current_epoch(), 1);
        assert_eq!(q.advance(), 2);
        assert_eq!(q.current_epoch(), 2);
        assert_eq!(q.safe_epoch(), 2, "no readers: everything is safe");
    }

    #[test]
    fn online_reader_holds_back_safe_epoch() {
        let q = Quiescence::new();
        let r = q.register_reader();
        assert!(r.is_online());
        assert_eq!(q.reader_count(), 1);
        let stamp = q.advance();
        assert!(q.safe_epoch() < stamp);
        r.quiescent();
        assert!(q.safe_epoch() >= stamp);
        let stamp2 = q.advance();
        assert!(q.safe_epoch() < stamp2);
        r.offline();
        assert!(!r.is_online());
        assert!(q.safe_epoch() >= stamp2, "offline readers do not count");
        r.online();
        assert!(q.safe_epoch() >= stamp2, "online() announces the current epoch");
        drop(r);
        assert_eq!(q.reader_count(), 0);
    }

    #[test]
    fn index_pool_quarantine_blocks_reuse_until_grace() {
        let q = Quiescence::new();
        let r = q.register_reader();
        let mut pool = IndexPool::new(2);
        let a = pool.alloc(&q).unwrap();
        let b = pool.alloc(&q).unwrap();
        assert_ne!(a, b);
        assert_eq!(pool.alloc(&q), None);
        pool.retire(&q, a);
        assert_eq!(pool.in_use(), 1);
        assert_eq!(pool.quarantined(), 1);
        assert_eq!(pool.alloc(&q), None, "reader has not passed a quiescent point");
        r.quiescent();
        assert_eq!(pool.alloc(&q), Some(a));
        assert_eq!(pool.quarantined(), 0);
        pool.free_unpublished(a);
        assert_eq!(pool.available_now(), 1);
        assert_eq!(pool.high_water(), 2);
        assert_eq!(pool.max(), 2);
    }
}
