//! The data path: one [`RxQueue`] and one [`TxQueue`] per queue pair,
//! each owned by one worker.
//!
//! Per burst a queue does one atomic load to see whether the connection
//! changed (then, and only then, it takes a lock to pick up the new one and
//! starts its indices afresh), one load of the peer's index, the copies,
//! and one store of its own index. In interrupt mode a receive burst first
//! reads the ring's eventfd (so a signal that arrives during the burst
//! wakes the next wait), and a transmit burst that moved frames writes the
//! eventfd unless the receiver masked interrupts.

use crate::conn::Conn;
use crate::iface::{IfShared, QueueCounters, RxMode};
use crate::msg::Direction;
use crate::ring::{self, Fault, RxCursor, RxFrame, RxTally, Scratch, TxTally};
use crate::sys;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(crate) fn report(sh: &IfShared, conn: &Conn, dir: Direction, q: usize, f: Fault) {
    conn.set_fault(dir, q, f);
    sys::eventfd_signal(sh.engine_wake.as_raw_fd());
}

fn this_rx_dir(sh: &IfShared) -> Direction {
    match sh.role {
        crate::Role::Server => Direction::S2M,
        crate::Role::Client => Direction::M2S,
    }
}

/// Consumes a [`RxWaker`] wake-up: one relaxed load per burst, the
/// eventfd read only after a wake.
#[inline]
pub(crate) fn unkick(sh: &IfShared, q: usize) {
    let rs = &sh.rxq[q];
    if rs.kicked.load(Ordering::Relaxed) {
        rs.kicked.store(false, Ordering::Relaxed);
        sys::eventfd_drain(rs.waker.as_raw_fd());
    }
}

/// Wakes a receive queue's [`RxQueue::wait_fd`] (see [`RxQueue::waker`]).
#[derive(Clone)]
pub struct RxWaker {
    sh: Arc<IfShared>,
    q: usize,
}

impl std::fmt::Debug for RxWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxWaker").field("id", &self.sh.cfg.id).field("queue", &self.q).finish()
    }
}

impl RxWaker {
    /// Makes the queue's wait descriptor readable until its next burst.
    pub fn wake(&self) {
        let rs = &self.sh.rxq[self.q];
        rs.kicked.store(true, Ordering::Relaxed);
        sys::eventfd_signal(rs.waker.as_raw_fd());
    }
}

/// A receive queue: frames from the peer.
pub struct RxQueue {
    sh: Arc<IfShared>,
    q: usize,
    gen: u64,
    conn: Option<Arc<Conn>>,
    cur: RxCursor,
    scratch: Scratch,
}

impl std::fmt::Debug for RxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxQueue").field("id", &self.sh.cfg.id).field("queue", &self.q).finish()
    }
}

impl RxQueue {
    pub(crate) fn new(sh: Arc<IfShared>, q: usize) -> RxQueue {
        RxQueue { sh, q, gen: 0, conn: None, cur: RxCursor::default(), scratch: ring::scratch() }
    }

    /// Queue index.
    pub fn queue(&self) -> usize {
        self.q
    }

    /// Interface id.
    pub fn interface_id(&self) -> u32 {
        self.sh.cfg.id
    }

    /// Picks up a new connection if there is one; true if this queue has a
    /// live ring now.
    #[inline]
    fn refresh(&mut self) -> bool {
        let g = self.sh.gen.load(Ordering::Acquire);
        if g != self.gen {
            self.switch();
        }
        match &self.conn {
            Some(c) => self.q < c.rx.len() && !c.faulted.load(Ordering::Relaxed),
            None => false,
        }
    }

    #[cold]
    fn switch(&mut self) {
        let s = self.sh.slot.lock().unwrap();
        self.gen = s.gen;
        self.conn = s.conn.clone();
        drop(s);
        self.cur = self.conn.as_ref().map_or(RxCursor::default(), |c| c.initial_rx_cursor(self.q));
        sys::eventfd_drain(self.sh.rxq[self.q].waker.as_raw_fd());
    }

    /// Whether the link is up and this queue has a ring (as of the last
    /// burst).
    pub fn is_up(&mut self) -> bool {
        self.refresh()
    }

    /// Receives up to `max` frames, handing each to `f`, which copies it
    /// where it wants ([`RxFrame::copy_to`]) and returns true, or returns
    /// false to stop and leave that frame in the ring (e.g. no buffer to
    /// put it in). Returns the frames `f` took. Frames with a bad
    /// descriptor are dropped and counted, never shown to `f`.
    pub fn rx_burst<F: FnMut(RxFrame<'_>) -> bool>(&mut self, max: usize, f: F) -> usize {
        unkick(&self.sh, self.q);
        if !self.refresh() {
            self.sh.rxq[self.q].counters.add(&QueueCounters { no_link: 1, ..QueueCounters::default() });
            return 0;
        }
        let rs = &self.sh.rxq[self.q];
        let conn = self.conn.as_ref().expect("refresh checked");
        let end = &conn.rx[self.q];
        let mut c = QueueCounters::default();
        if rs.mode() == RxMode::Interrupt && sys::eventfd_drain(end.eventfd.as_raw_fd()) > 0 {
            c.interrupts = 1;
        }
        let mut t = RxTally::default();
        let rr =
            ring::RxRing { regions: &conn.regions, ring: &end.ring, refill: end.refill.as_ref(), lim: &conn.rx_limits };
        let r = ring::receive(&rr, &mut self.cur, &mut self.scratch, max, &mut t, f);
        c.packets = t.frames;
        c.bytes = t.bytes;
        c.bad_region = t.bad_region;
        c.bad_offset = t.bad_offset;
        c.bad_length = t.bad_length;
        c.oversize = t.oversize;
        c.empty = t.empty;
        let n = match r {
            Ok(n) => n,
            Err(fault) => {
                c.faults = 1;
                report(&self.sh, conn, this_rx_dir(&self.sh), self.q, fault);
                0
            }
        };
        rs.counters.add(&c);
        n
    }

    /// Receives one frame into `buf`; its length, or `None` if there was
    /// none. A frame longer than `buf` is dropped and counted (oversize).
    pub fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        let mut got = None;
        let mut too_long = false;
        self.rx_burst(1, |f| {
            match f.copy_to(buf) {
                Some(n) => got = Some(n),
                None => too_long = true,
            }
            true
        });
        if too_long {
            self.sh.rxq[self.q].counters.add(&QueueCounters { oversize: 1, ..QueueCounters::default() });
        }
        got
    }

    /// A descriptor that becomes readable when the peer signals this queue
    /// (interrupt mode) or the link changes; it stays the same across
    /// reconnects. Wait on it, then call [`RxQueue::rx_burst`] (which
    /// consumes the signal).
    pub fn wait_fd(&self) -> BorrowedFd<'_> {
        self.sh.rxq[self.q].epoll.as_fd()
    }

    /// A handle that makes [`RxQueue::wait_fd`] readable from anywhere
    /// (e.g. another worker that queued something this queue's owner
    /// should pick up); the next burst consumes the wake-up.
    pub fn waker(&self) -> RxWaker {
        RxWaker { sh: self.sh.clone(), q: self.q }
    }

    /// Waits up to `timeout_ms` (-1: forever) for [`RxQueue::wait_fd`]:
    /// true if it became readable.
    pub fn wait(&self, timeout_ms: i32) -> bool {
        sys::wait_readable(self.wait_fd(), timeout_ms).unwrap_or(false)
    }

    /// This queue's counters.
    pub fn counters(&self) -> QueueCounters {
        self.sh.rxq[self.q].counters.get()
    }
}

/// A transmit queue: frames to the peer.
pub struct TxQueue {
    sh: Arc<IfShared>,
    q: usize,
    gen: u64,
    conn: Option<Arc<Conn>>,
    /// Our copy of the index we own: `head` (client, S2M) or `tail`
    /// (server, M2S).
    idx: u16,
    scratch: Scratch,
}

impl std::fmt::Debug for TxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxQueue").field("id", &self.sh.cfg.id).field("queue", &self.q).finish()
    }
}

impl TxQueue {
    pub(crate) fn new(sh: Arc<IfShared>, q: usize) -> TxQueue {
        TxQueue { sh, q, gen: 0, conn: None, idx: 0, scratch: ring::scratch() }
    }

    /// Queue index.
    pub fn queue(&self) -> usize {
        self.q
    }

    #[inline]
    fn refresh(&mut self) -> bool {
        let g = self.sh.gen.load(Ordering::Acquire);
        if g != self.gen {
            self.switch();
        }
        match &self.conn {
            Some(c) => self.q < c.tx.len() && !c.faulted.load(Ordering::Relaxed),
            None => false,
        }
    }

    #[cold]
    fn switch(&mut self) {
        let s = self.sh.slot.lock().unwrap();
        self.gen = s.gen;
        self.conn = s.conn.clone();
        drop(s);
        self.idx = 0;
    }

    /// Whether the link is up and this queue has a ring.
    pub fn is_up(&mut self) -> bool {
        self.refresh()
    }

    /// Copies frames into the ring, in order, until it is full. Returns
    /// how many were taken from the front of `frames`: sent, or refused
    /// for their length (empty, or longer than the frame limit: counted
    /// `bad_length`). Frames after those were not sent (ring full, or the
    /// link down: 0); the caller keeps or drops them.
    pub fn tx_burst<'a, I: IntoIterator<Item = &'a [u8]>>(&mut self, frames: I) -> usize {
        if !self.refresh() {
            self.sh.txq[self.q].add(&QueueCounters { no_link: 1, ..QueueCounters::default() });
            return 0;
        }
        let ctr = &self.sh.txq[self.q];
        let conn = self.conn.as_ref().expect("refresh checked");
        let end = &conn.tx[self.q];
        let mut t = TxTally::default();
        let r = match &end.own {
            Some(own) => ring::send_own(&conn.regions, &end.ring, &mut self.idx, own, conn.max_frame, frames, &mut t),
            None => ring::send_posted(
                &conn.regions,
                &end.ring,
                &mut self.idx,
                conn.max_frame,
                &mut self.scratch,
                frames,
                &mut t,
            ),
        };
        let mut c = QueueCounters {
            packets: t.frames,
            bytes: t.bytes,
            bad_length: t.bad_length,
            ring_full: t.ring_full,
            ..QueueCounters::default()
        };
        let n = match r {
            Ok(n) => {
                if t.frames > 0 && !end.ring.interrupts_masked() {
                    sys::eventfd_signal(end.eventfd.as_raw_fd());
                    c.interrupts = 1;
                }
                n
            }
            Err(fault) => {
                c.faults = 1;
                let dir = match self.sh.role {
                    crate::Role::Server => Direction::M2S,
                    crate::Role::Client => Direction::S2M,
                };
                report(&self.sh, conn, dir, self.q, fault);
                0
            }
        };
        ctr.add(&c);
        n
    }

    /// Sends one frame; true if it went into the ring.
    pub fn send(&mut self, frame: &[u8]) -> bool {
        let before = self.sh.txq[self.q].get().packets;
        self.tx_burst([frame]) == 1 && self.sh.txq[self.q].get().packets > before
    }

    /// This queue's counters.
    pub fn counters(&self) -> QueueCounters {
        self.sh.txq[self.q].get()
    }
}
