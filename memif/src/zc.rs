//! Zero-copy for the client role: the application reads received frames
//! and writes frames to send in place, in the shared buffers the client
//! created, with no copy; a received frame can be handed to the transmit
//! ring as it is (forwarding without touching the payload).
//!
//! # How the buffers move
//!
//! The client owns every buffer (region 0, the same layout and size as in
//! copy mode, so the wire is unchanged: a server cannot tell). Queue pair
//! `q` gets a pool of `2 × ring size` buffers — the S2M block and the M2S
//! block of copy mode — and, unlike copy mode, a buffer is not tied to a
//! slot: each is at any time in exactly one place, tracked on our side
//! only: free, posted in an M2S slot, in flight in an S2M slot, or lent to
//! the application during a callback.
//!
//! * Receive (M2S): the server fills posted buffers and advances `tail`.
//!   From each descriptor we take only `length` and `flags` (checked:
//!   length at most the buffer size, chains bounded and terminated, frame
//!   at most `max_frame_len`); *which* buffer a slot holds is our own
//!   record of what we posted, never the descriptor's region and offset,
//!   so a server cannot point us anywhere. The frame is lent to the
//!   callback; then its buffers go back to the pool, or to the S2M ring
//!   ([`ZcVerdict::Forward`]). Consumed slots are posted again from the
//!   pool.
//! * Transmit (S2M): the callback fills a free buffer in place; the
//!   descriptor we publish names our region and that buffer's offset,
//!   always inside the region. Buffers come back to the pool when the
//!   server's `tail` passes them (its distance from our records is
//!   checked: an overrun is a fault, as in copy mode).
//!
//! # Why accessors and not `&[u8]`
//!
//! The server maps the whole region writable and may write any byte at
//! any time; a Rust reference to memory another process mutates is
//! undefined behaviour (the compiler may assume it does not change). So a
//! frame is lent as a [`ZcFrame`] / [`ZcBufMut`] whose methods copy bytes
//! in and out through raw pointers (like `vm-memory`'s `VolatileSlice` in
//! rust-vmm): `read`, `write`, `copy_to`, `swap`. Nothing of the payload
//! is copied that the application does not touch itself.

use crate::conn::Conn;
use crate::iface::{IfShared, QueueCounters, RxMode};
use crate::msg::Direction;
use crate::queue::{report, unkick};
use crate::region::Region;
use crate::ring::{Desc, Fault, Ring, DESC_FLAG_NEXT};
use crate::sys;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What becomes of a received frame after the callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZcVerdict {
    /// Done with it: its buffers go back to the pool.
    Release,
    /// Send it as it is now (after any in-place changes) on this queue
    /// pair's transmit ring, without copying; if that ring is full it is
    /// dropped and counted (`ring_full` of the transmit queue).
    Forward,
    /// Leave it in the ring and end the burst (the next burst shows it
    /// again).
    Stop,
}

/// One piece of a lent frame: a pointer into a live region, and a length.
#[derive(Clone, Copy)]
struct Piece {
    ptr: NonNull<u8>,
    len: u32,
}

// SAFETY: a queue's pieces are written and dereferenced only within one
// burst, while the queue holds the connection (and so the mapping);
// moving the queue to another thread between bursts moves stale values
// that are never dereferenced again.
unsafe impl Send for Piece {}

/// A received frame, lent in place in the client's shared buffers for the
/// duration of the callback: read it, change it, then release or forward
/// it ([`ZcVerdict`]). Possibly in several segments (chained
/// descriptors); offsets are into the whole frame.
pub struct ZcFrame<'a> {
    pieces: &'a [Piece],
    len: usize,
}

impl ZcFrame<'_> {
    /// Bytes in the frame.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    /// Never true: empty frames are dropped before the callback.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Buffers the frame occupies.
    #[inline]
    pub fn segments(&self) -> usize {
        self.pieces.len()
    }

    /// Runs `f(piece pointer, position in the piece, position in the
    /// frame, bytes)` over the pieces covering `at..at + n`; false (and
    /// nothing done) if that is not inside the frame.
    #[inline]
    fn walk(&self, at: usize, n: usize, mut f: impl FnMut(*mut u8, usize, usize)) -> bool {
        if at.checked_add(n).is_none_or(|e| e > self.len) {
            return false;
        }
        let (mut pos, mut done) = (0usize, 0usize);
        for p in self.pieces {
            let plen = p.len as usize;
            let start = at + done;
            if done == n {
                break;
            }
            if start < pos + plen {
                let off = start - pos;
                let k = (plen - off).min(n - done);
                // SAFETY: `off + k <= plen`: inside the piece, which was
                // checked to lie inside a region the queue keeps mapped.
                f(unsafe { p.ptr.as_ptr().add(off) }, done, k);
                done += k;
            }
            pos += plen;
        }
        true
    }

    /// Copies `dst.len()` bytes from offset `at` of the frame; false (and
    /// nothing copied) if that range is not inside it.
    #[inline]
    pub fn read(&self, at: usize, dst: &mut [u8]) -> bool {
        let d = dst.as_mut_ptr();
        self.walk(at, dst.len(), |src, done, k| {
            // SAFETY: `src..src + k` is inside the region (walk), `d + done
            // .. + k` inside `dst`; raw copy, no reference to shared memory.
            unsafe { ptr::copy_nonoverlapping(src, d.add(done), k) }
        })
    }

    /// Writes `src` at offset `at` of the frame, in place; false (and
    /// nothing written) if that range is not inside it.
    #[inline]
    pub fn write(&mut self, at: usize, src: &[u8]) -> bool {
        let s = src.as_ptr();
        self.walk(at, src.len(), |dst, done, k| {
            // SAFETY: as in `read`, the other way round; the buffer is ours
            // (lent to the callback, not posted to the peer).
            unsafe { ptr::copy_nonoverlapping(s.add(done), dst, k) }
        })
    }

    /// Exchanges `n <= 64` bytes at `a` with `n` bytes at `b` (e.g. the MAC
    /// addresses); false (nothing changed) if either range is outside the
    /// frame, they overlap, or `n > 64`.
    pub fn swap(&mut self, a: usize, b: usize, n: usize) -> bool {
        let (lo, hi) = (a.min(b), a.max(b));
        if n > 64 || hi < lo + n {
            return false;
        }
        // One read and one write of the span when it is short (the MAC
        // swap: bytes 0..12), else two of each.
        let span = hi + n - lo;
        if span <= 128 {
            let mut x = [0u8; 128];
            if !self.read(lo, &mut x[..span]) {
                return false;
            }
            let (p, q) = x.split_at_mut(hi - lo);
            p[..n].swap_with_slice(&mut q[..n]);
            return self.write(lo, &x[..span]);
        }
        let mut x = [0u8; 64];
        let mut y = [0u8; 64];
        if !self.read(a, &mut x[..n]) || !self.read(b, &mut y[..n]) {
            return false;
        }
        self.write(a, &y[..n]) && self.write(b, &x[..n])
    }

    /// Copies the whole frame to the front of `dst`: its length, or `None`
    /// (nothing copied) if `dst` is shorter.
    pub fn copy_to(&self, dst: &mut [u8]) -> Option<usize> {
        if dst.len() < self.len {
            return None;
        }
        self.read(0, &mut dst[..self.len]).then_some(self.len)
    }

    /// The frame copied into a new vector (convenience; allocates).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len];
        self.read(0, &mut v);
        v
    }
}

/// A free buffer of the client's pool, lent to a transmit callback to fill
/// in place.
pub struct ZcBufMut<'a> {
    frame: ZcFrame<'a>,
}

impl ZcBufMut<'_> {
    /// Bytes the buffer holds (the interface's buffer size).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.frame.len
    }
    /// Writes `src` at `at`; false (nothing written) if it does not fit.
    #[inline]
    pub fn write(&mut self, at: usize, src: &[u8]) -> bool {
        self.frame.write(at, src)
    }
    /// Reads back what is at `at` (whatever was there before, until
    /// written: buffers are reused, not cleared).
    #[inline]
    pub fn read(&self, at: usize, dst: &mut [u8]) -> bool {
        self.frame.read(at, dst)
    }
}

/// Our side's record of one connection's queue pair (rebuilt at each
/// connection; only these values, never what the peer wrote, say which
/// buffer is where).
struct ZcState {
    size: u16,
    /// Buffer size; also the largest descriptor length accepted.
    bs: u32,
    region: u16,
    /// Pool index `k` is at `base[k / size] + (k % size) * bs`.
    base: [u64; 2],
    /// M2S: next slot to read, and how far we posted (our `head`).
    rx_cursor: u16,
    rx_posted: u16,
    /// The buffer posted in each M2S slot.
    rx_slot: Vec<u32>,
    /// S2M: our `head`, and how far the peer's `tail` has given buffers
    /// back.
    tx_head: u16,
    tx_reclaimed: u16,
    /// The buffer in flight in each S2M slot.
    tx_slot: Vec<u32>,
    /// Free buffers (capacity: the whole pool, so pushes never allocate).
    free: Vec<u32>,
}

impl ZcState {
    /// As [`Conn::post_all_buffers`] left the rings at CONNECTED: M2S slot
    /// `s` holds buffer `size + s` (the M2S block), the S2M block is free.
    fn new(conn: &Conn, q: usize, bs: u32) -> Option<ZcState> {
        let (rx, tx) = (conn.rx.get(q)?, conn.tx.get(q)?);
        let (rf, own) = (rx.refill.as_ref()?, tx.own.as_ref()?);
        let size = rx.ring.size();
        if tx.ring.size() != size || rf.region != own.region {
            return None;
        }
        Some(ZcState::fresh(size, bs, own.region, [own.base, rf.base]))
    }

    fn fresh(size: u16, bs: u32, region: u16, base: [u64; 2]) -> ZcState {
        let n = u32::from(size);
        let mut free = Vec::with_capacity(2 * usize::from(size));
        free.extend((0..n).rev());
        ZcState {
            size,
            bs,
            region,
            base,
            rx_cursor: 0,
            rx_posted: size,
            rx_slot: (n..2 * n).collect(),
            tx_head: 0,
            tx_reclaimed: 0,
            tx_slot: vec![0; usize::from(size)],
            free,
        }
    }

    /// Every buffer of the pool is in exactly one place (fuzzing, tests).
    fn check_pool(&self) {
        let mut seen = vec![false; 2 * usize::from(self.size)];
        let mut mark = |b: u32| {
            let k = b as usize;
            assert!(k < seen.len() && !seen[k], "buffer {b} lost track of");
            seen[k] = true;
        };
        self.free.iter().for_each(|&b| mark(b));
        let posted = self.rx_posted.wrapping_sub(self.rx_cursor);
        assert!(posted <= self.size);
        for i in 0..posted {
            mark(self.rx_slot[usize::from(self.rx_cursor.wrapping_add(i) & self.mask())]);
        }
        let inflight = self.tx_head.wrapping_sub(self.tx_reclaimed);
        assert!(inflight <= self.size);
        for i in 0..inflight {
            mark(self.tx_slot[usize::from(self.tx_reclaimed.wrapping_add(i) & self.mask())]);
        }
        assert!(seen.iter().all(|&x| x), "a buffer is nowhere");
    }

    #[inline]
    fn offset(&self, buf: u32) -> u64 {
        let s = u32::from(self.size);
        self.base[(buf / s) as usize] + u64::from(buf % s) * u64::from(self.bs)
    }

    #[inline]
    fn mask(&self) -> u16 {
        self.size - 1
    }

    /// Takes back the S2M buffers the peer's `tail` has passed.
    fn reclaim(&mut self, ring: &Ring) -> Result<(), Fault> {
        let tail = ring.tail();
        let inflight = self.tx_head.wrapping_sub(self.tx_reclaimed);
        let done = tail.wrapping_sub(self.tx_reclaimed);
        if done > inflight {
            return Err(Fault::Overrun { peer: tail, local: self.tx_reclaimed, limit: inflight });
        }
        for _ in 0..done {
            let b = self.tx_slot[usize::from(self.tx_reclaimed & self.mask())];
            self.free.push(b);
            self.tx_reclaimed = self.tx_reclaimed.wrapping_add(1);
        }
        Ok(())
    }

    /// Posts free buffers in the M2S slots consumed so far.
    fn repost(&mut self, ring: &Ring) {
        let target = self.rx_cursor.wrapping_add(self.size);
        let before = self.rx_posted;
        while self.rx_posted != target {
            let Some(b) = self.free.pop() else { break };
            let s = self.rx_posted;
            let k = usize::from(s & self.mask());
            self.rx_slot[k] = b;
            let d = Desc { flags: 0, region: self.region, length: self.bs, offset: self.offset(b) as u32, metadata: 0 };
            ring.set_desc(s, d);
            self.rx_posted = s.wrapping_add(1);
        }
        if self.rx_posted != before {
            ring.set_head(self.rx_posted);
        }
    }
}

/// One queue pair of a zero-copy client interface
/// ([`crate::InterfaceConfig::zero_copy`]), owned by one worker: receive
/// and transmit share its buffer pool, so a received frame can be
/// forwarded without a copy. From [`crate::Interface::take_zc_queues`].
pub struct ZcQueue {
    sh: Arc<IfShared>,
    q: usize,
    gen: u64,
    conn: Option<Arc<Conn>>,
    st: Option<ZcState>,
    /// The pieces and buffers of the frame being received.
    pieces: Box<[Piece; crate::MAX_CHAIN]>,
    bufs: Box<[u32; crate::MAX_CHAIN]>,
}

impl std::fmt::Debug for ZcQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZcQueue").field("id", &self.sh.cfg.id).field("queue", &self.q).finish()
    }
}

/// Per-burst tallies of a zero-copy burst.
#[derive(Default)]
struct Tally {
    rx: QueueCounters,
    tx: QueueCounters,
}

fn fault(sh: &IfShared, conn: &Conn, q: usize, dir: Direction, f: Fault, t: &mut Tally) {
    report(sh, conn, dir, q, f);
    match dir {
        Direction::M2S => t.rx.faults += 1,
        Direction::S2M => t.tx.faults += 1,
    }
}

/// Adds a burst's tallies; signals the S2M eventfd after a burst that
/// published frames, unless the server masked interrupts.
fn account(sh: &IfShared, conn: Option<&Conn>, q: usize, t: &Tally, signal: bool) {
    if signal {
        if let Some(end) = conn.and_then(|c| c.tx.get(q)) {
            if !end.ring.interrupts_masked() {
                sys::eventfd_signal(end.eventfd.as_raw_fd());
            }
        }
    }
    sh.rxq[q].counters.add(&t.rx);
    sh.txq[q].add(&t.tx);
}

/// The receive burst proper (M2S), over our records in `st`: frames to
/// `f`, forwarded ones onto `txr` (its `head` published once), consumed
/// slots posted again. Returns (frames taken, a fault, whether anything
/// was forwarded).
#[allow(clippy::too_many_arguments)]
fn receive<F: FnMut(&mut ZcFrame<'_>) -> ZcVerdict>(
    st: &mut ZcState,
    region: &Region,
    (rxr, txr): (&Ring, &Ring),
    max_frame: u64,
    (pieces, bufs): (&mut [Piece], &mut [u32]),
    max: usize,
    f: &mut F,
    t: &mut Tally,
) -> (usize, Option<Fault>, bool) {
    let tail = rxr.tail();
    let limit = st.rx_posted.wrapping_sub(st.rx_cursor);
    let avail = tail.wrapping_sub(st.rx_cursor);
    if avail > limit {
        return (0, Some(Fault::Overrun { peer: tail, local: st.rx_cursor, limit }), false);
    }
    let head_before = st.tx_head;
    let mut done: u16 = 0;
    let mut frames = 0;
    let mut failed = None;
    'frames: while frames < max && done < avail {
        let mut n = 0usize;
        let mut total = 0u64;
        let mut bad_len = false;
        loop {
            if usize::from(done) + n == usize::from(avail) {
                if avail == limit {
                    failed = Some(Fault::UnterminatedChain);
                }
                break 'frames;
            }
            if n == crate::MAX_CHAIN {
                failed = Some(Fault::ChainTooLong);
                break 'frames;
            }
            let slot = st.rx_cursor.wrapping_add(done).wrapping_add(n as u16);
            // Only length and flags are the peer's; the buffer is ours.
            let d = rxr.desc(slot);
            let b = st.rx_slot[usize::from(slot & st.mask())];
            bufs[n] = b;
            if d.length > st.bs {
                bad_len = true;
            } else {
                let Some(ptr) = region.ptr_at(st.offset(b), u64::from(st.bs)) else {
                    failed = Some(Fault::BadPostedBuffer { slot });
                    break 'frames;
                };
                pieces[n] = Piece { ptr, len: d.length };
                total += u64::from(d.length);
            }
            n += 1;
            if d.flags & DESC_FLAG_NEXT == 0 {
                break;
            }
        }
        let verdict = if bad_len {
            t.rx.bad_length += 1;
            ZcVerdict::Release
        } else if total > max_frame {
            t.rx.oversize += 1;
            ZcVerdict::Release
        } else if total == 0 {
            t.rx.empty += 1;
            ZcVerdict::Release
        } else {
            let mut fr = ZcFrame { pieces: &pieces[..n], len: total as usize };
            let v = f(&mut fr);
            if v == ZcVerdict::Stop {
                break;
            }
            frames += 1;
            t.rx.packets += 1;
            t.rx.bytes += total;
            v
        };
        let bufs = &bufs[..n];
        let room = st.size - st.tx_head.wrapping_sub(st.tx_reclaimed);
        if verdict == ZcVerdict::Forward && usize::from(room) >= n {
            for (i, (&b, p)) in bufs.iter().zip(&pieces[..n]).enumerate() {
                let s = st.tx_head;
                let k = usize::from(s & st.mask());
                st.tx_slot[k] = b;
                let flags = if i + 1 < n { DESC_FLAG_NEXT } else { 0 };
                let off = st.offset(b) as u32;
                txr.set_desc(s, Desc { flags, region: st.region, length: p.len, offset: off, metadata: 0 });
                st.tx_head = s.wrapping_add(1);
            }
            t.tx.packets += 1;
            t.tx.bytes += total;
        } else {
            if verdict == ZcVerdict::Forward {
                t.tx.ring_full += 1;
            }
            st.free.extend_from_slice(bufs);
        }
        done += n as u16;
    }
    st.rx_cursor = st.rx_cursor.wrapping_add(done);
    st.repost(rxr);
    let forwarded = st.tx_head != head_before;
    if forwarded {
        txr.set_head(st.tx_head);
    }
    (frames, failed, forwarded)
}

impl ZcQueue {
    pub(crate) fn new(sh: Arc<IfShared>, q: usize) -> ZcQueue {
        let dangling = Piece { ptr: NonNull::dangling(), len: 0 };
        ZcQueue {
            sh,
            q,
            gen: 0,
            conn: None,
            st: None,
            pieces: Box::new([dangling; crate::MAX_CHAIN]),
            bufs: Box::new([0; crate::MAX_CHAIN]),
        }
    }

    /// Queue pair index.
    pub fn queue(&self) -> usize {
        self.q
    }

    #[inline]
    fn refresh(&mut self) -> bool {
        if self.sh.gen.load(Ordering::Acquire) != self.gen {
            self.switch();
        }
        match (&self.conn, &self.st) {
            (Some(c), Some(_)) => !c.faulted.load(Ordering::Relaxed),
            _ => false,
        }
    }

    #[cold]
    fn switch(&mut self) {
        let s = self.sh.slot.lock().unwrap();
        self.gen = s.gen;
        self.conn = s.conn.clone();
        drop(s);
        let bs = self.sh.cfg.buffer_size;
        self.st = self.conn.as_ref().and_then(|c| ZcState::new(c, self.q, bs));
        sys::eventfd_drain(self.sh.rxq[self.q].waker.as_raw_fd());
    }

    /// Whether the link is up and this queue pair has rings.
    pub fn is_up(&mut self) -> bool {
        self.refresh()
    }

    /// Receives up to `max` frames, lending each to `f` in place; `f`
    /// says what becomes of it ([`ZcVerdict`]). Returns the frames `f`
    /// took (released or forwarded). Frames with a bad descriptor are
    /// dropped and counted, never shown. Forwarded frames are published
    /// once, at the end of the burst.
    pub fn rx_burst<F: FnMut(&mut ZcFrame<'_>) -> ZcVerdict>(&mut self, max: usize, mut f: F) -> usize {
        unkick(&self.sh, self.q);
        let mut t = Tally::default();
        if !self.refresh() {
            t.rx.no_link = 1;
            account(&self.sh, None, self.q, &t, false);
            return 0;
        }
        let (sh, q) = (&*self.sh, self.q);
        let conn = self.conn.as_deref().expect("refresh checked");
        let (rxe, txe) = (&conn.rx[q], &conn.tx[q]);
        if sh.rxq[q].mode() == RxMode::Interrupt && sys::eventfd_drain(rxe.eventfd.as_raw_fd()) > 0 {
            t.rx.interrupts = 1;
        }
        let region = &conn.regions[0];
        let max_frame = u64::from(sh.cfg.max_frame_len);
        let st = self.st.as_mut().expect("refresh checked");
        if let Err(e) = st.reclaim(&txe.ring) {
            fault(sh, conn, q, Direction::S2M, e, &mut t);
            account(sh, Some(conn), q, &t, false);
            return 0;
        }
        let pieces = &mut self.pieces[..];
        let bufs = &mut self.bufs[..];
        let (frames, failed, forwarded) =
            receive(st, region, (&rxe.ring, &txe.ring), max_frame, (pieces, bufs), max, &mut f, &mut t);
        if let Some(e) = failed {
            fault(sh, conn, q, Direction::M2S, e, &mut t);
        }
        account(sh, Some(conn), q, &t, forwarded);
        frames
    }

    /// Sends up to `max` frames built in place: for each, `fill` gets a
    /// free buffer of the pool and returns the frame's length (1 to the
    /// buffer size), or `None` to stop. Returns the frames sent. Stops
    /// early when the ring or the pool is full (`ring_full`) or the link
    /// is down (0).
    pub fn tx_burst<F: FnMut(&mut ZcBufMut<'_>) -> Option<usize>>(&mut self, max: usize, mut fill: F) -> usize {
        let mut t = Tally::default();
        if !self.refresh() {
            t.tx.no_link = 1;
            account(&self.sh, None, self.q, &t, false);
            return 0;
        }
        let (sh, q) = (&*self.sh, self.q);
        let conn = self.conn.as_deref().expect("refresh checked");
        let txe = &conn.tx[q];
        let region = &conn.regions[0];
        let st = self.st.as_mut().expect("refresh checked");
        if let Err(e) = st.reclaim(&txe.ring) {
            fault(sh, conn, q, Direction::S2M, e, &mut t);
            account(sh, Some(conn), q, &t, false);
            return 0;
        }
        // Buffers just taken back also refill M2S slots left empty when
        // the pool ran dry (else a worker asleep in interrupt mode would
        // wait for frames the server has no buffer for).
        st.repost(&conn.rx[q].ring);
        let limit = st.bs.min(sh.cfg.max_frame_len) as usize;
        let mut sent = 0;
        for _ in 0..max {
            if st.tx_head.wrapping_sub(st.tx_reclaimed) == st.size || st.free.is_empty() {
                t.tx.ring_full += 1;
                break;
            }
            let b = *st.free.last().expect("checked");
            // Our own layout: always inside, but checked all the same.
            let Some(ptr) = region.ptr_at(st.offset(b), u64::from(st.bs)) else { break };
            let piece = [Piece { ptr, len: st.bs }];
            let mut buf = ZcBufMut { frame: ZcFrame { pieces: &piece, len: st.bs as usize } };
            let Some(len) = fill(&mut buf) else { break };
            if len == 0 || len > limit {
                // The buffer stays free.
                t.tx.bad_length += 1;
                continue;
            }
            st.free.pop();
            let s = st.tx_head;
            let k = usize::from(s & st.mask());
            st.tx_slot[k] = b;
            let d = Desc { flags: 0, region: st.region, length: len as u32, offset: st.offset(b) as u32, metadata: 0 };
            txe.ring.set_desc(s, d);
            st.tx_head = s.wrapping_add(1);
            sent += 1;
            t.tx.packets += 1;
            t.tx.bytes += len as u64;
        }
        if sent > 0 {
            txe.ring.set_head(st.tx_head);
        }
        account(sh, Some(conn), q, &t, sent > 0);
        sent
    }

    /// Buffers of the pool free now (for tests and `show`).
    pub fn free_buffers(&self) -> usize {
        self.st.as_ref().map_or(0, |s| s.free.len())
    }

    /// The receive side's wait descriptor (see [`crate::RxQueue::wait_fd`]).
    pub fn wait_fd(&self) -> BorrowedFd<'_> {
        self.sh.rxq[self.q].epoll.as_fd()
    }

    /// Waits up to `timeout_ms` for [`ZcQueue::wait_fd`]: true if readable.
    pub fn wait(&self, timeout_ms: i32) -> bool {
        sys::wait_readable(self.wait_fd(), timeout_ms).unwrap_or(false)
    }

    /// Receive counters of this queue pair.
    pub fn rx_counters(&self) -> QueueCounters {
        self.sh.rxq[self.q].counters.get()
    }

    /// Transmit counters of this queue pair.
    pub fn tx_counters(&self) -> QueueCounters {
        self.sh.txq[self.q].get()
    }
}

/// The fuzz entry point (`fuzzing::zc`): the zero-copy receive and
/// transmit bookkeeping over a ring pair whose peer-written fields (M2S
/// `tail`, lengths and flags, S2M `tail`, and anything else in the rings)
/// come from `data`, round after round, with the application's verdicts
/// from `data` too. Every buffer must stay in exactly one place, every
/// frame lent must lie inside the region (which ends at a guard page).
pub(crate) fn fuzz(data: &[u8]) {
    use crate::ring::ring_bytes;
    const LOG2: u8 = 8;
    const BS: u32 = 64;
    let size = 1u16 << LOG2;
    let rb = ring_bytes(LOG2) as u64;
    let base = [2 * rb, 2 * rb + u64::from(size) * u64::from(BS)];
    let len = (2 * rb + 2 * u64::from(size) * u64::from(BS)) as usize;
    let region = Region::guarded(len).expect("mmap");
    let rxr = Ring::new(&region, 0, LOG2).expect("fits");
    let txr = Ring::new(&region, rb, LOG2).expect("fits");
    rxr.init_header();
    txr.init_header();
    let mut st = ZcState::fresh(size, BS, 0, base);
    for s in 0..size {
        let off = st.offset(st.rx_slot[usize::from(s)]) as u32;
        rxr.set_desc(s, Desc { flags: 0, region: 0, length: BS, offset: off, metadata: 0 });
    }
    rxr.set_head(size);
    let dangling = Piece { ptr: NonNull::dangling(), len: 0 };
    let mut pieces = vec![dangling; crate::MAX_CHAIN];
    let mut bufs = vec![0u32; crate::MAX_CHAIN];
    let mut copy = vec![0u8; 70_000];
    // Each round: M2S tail advance (1), S2M tail advance (1), verdicts (1),
    // max frames (1), then up to 8 descriptor pokes of 4 bytes: slot
    // offset from the cursor, length byte, flags, scribble (writes a byte
    // anywhere in the rings).
    for round in data.chunks(4 + 8 * 4) {
        if round.len() < 4 {
            break;
        }
        let cursor = st.rx_cursor;
        for p in round[4..].chunks_exact(4) {
            let slot = cursor.wrapping_add(u16::from(p[0]));
            let d = rxr.desc(slot);
            let length = u32::from(p[1]) * 3 % 300;
            rxr.set_desc(slot, Desc { length, flags: u16::from(p[2] & 1), ..d });
            // Anything else the peer may write: region, offset, indices.
            let at = (u64::from(p[3]) * 67) % (2 * rb);
            assert!(region.write(at, &[p[2]]));
        }
        rxr.set_tail(cursor.wrapping_add(u16::from(round[0]) % (size + 8)));
        txr.set_tail(st.tx_reclaimed.wrapping_add(u16::from(round[1]) % (size + 8)));
        let mut t = Tally::default();
        if st.reclaim(&txr).is_err() {
            st.check_pool();
            return;
        }
        let mut k = 0u32;
        let verdicts = round[2];
        let max_frame = 1000;
        let mut f = |fr: &mut ZcFrame<'_>| {
            assert!(!fr.is_empty() && fr.len() as u64 <= max_frame && fr.segments() <= crate::MAX_CHAIN);
            assert_eq!(fr.copy_to(&mut copy), Some(fr.len()));
            assert!(fr.write(fr.len() - 1, &[0xa5]));
            assert!(!fr.write(fr.len(), &[0]));
            let v = match (verdicts >> (k % 8)) & 3 {
                0 | 1 => ZcVerdict::Forward,
                2 => ZcVerdict::Release,
                _ => ZcVerdict::Stop,
            };
            k += 1;
            v
        };
        let before = st.rx_cursor;
        let (n, failed, _) = receive(
            &mut st,
            &region,
            (&rxr, &txr),
            max_frame,
            (&mut pieces, &mut bufs),
            usize::from(round[3]),
            &mut f,
            &mut t,
        );
        assert!(n <= usize::from(round[3]));
        assert!(st.rx_cursor.wrapping_sub(before) <= size);
        st.check_pool();
        if failed.is_some() {
            return;
        }
    }
}
