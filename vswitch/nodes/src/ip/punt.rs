//! punt: hands packets to the control plane.
//!
//! Packets a node cannot or should not handle on the data path (a route
//! whose action is "punt", a local protocol the data path does not speak,
//! a fragment addressed to us) are sent here. The node queues them on its
//! worker's bounded [`PuntQueue`]; whoever runs the worker loop drains the
//! queue ([`PuntQueue::drain`] with the worker's `Buffers`) and hands the
//! bytes to the control plane (a socket, a channel, a tap to the host).
//! When the queue is full the packet is dropped and counted: a busy or dead
//! control plane never holds buffers beyond the queue's capacity.
//!
//! The node that punts writes the reason into `meta.opaque[0]` (one of
//! [`punt_reason`], or its own code); it is kept with the packet.
//!
//! The queue is per worker and only its worker touches it (the node pushes,
//! the worker loop drains), so its lock is never contended; the node takes
//! it once per vector.

use crate::{Cx, Tables};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use vswitch_graph::{errors, NextArc, Node, PacketId};
use vswitch_packet::{Buffers, Meta};

/// Why a packet was punted (`meta.opaque[0]` on the way to "punt").
pub mod punt_reason {
    /// The route's action is "punt" (AdjKind::Punt).
    pub const ROUTE: u32 = 1;
    /// Addressed to us, in a protocol the data path does not answer.
    pub const LOCAL_PROTOCOL: u32 = 2;
    /// A fragment addressed to us (the data path does not reassemble).
    pub const LOCAL_FRAGMENT: u32 = 3;
    /// IPv6 neighbor discovery or other ICMPv6 the data path leaves to the
    /// control plane.
    pub const ICMP6: u32 = 4;

    /// A short name for a reason code.
    pub fn name(r: u32) -> &'static str {
        match r {
            ROUTE => "route",
            LOCAL_PROTOCOL => "local protocol",
            LOCAL_FRAGMENT => "local fragment",
            ICMP6 => "icmp6",
            _ => "other",
        }
    }
}

/// A packet waiting for the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Punted {
    /// The packet (owned by the queue until drained).
    pub packet: PacketId,
    /// Why it was punted ([`punt_reason`]).
    pub reason: u32,
}

/// A worker's bounded queue of punted packets.
#[derive(Debug)]
pub struct PuntQueue {
    q: Mutex<VecDeque<Punted>>,
    capacity: usize,
}

/// Packets queued at most by default.
pub const DEFAULT_PUNT_CAPACITY: usize = 1024;

impl Default for PuntQueue {
    fn default() -> Self {
        PuntQueue::new(DEFAULT_PUNT_CAPACITY)
    }
}

impl PuntQueue {
    /// A queue holding at most `capacity` packets (its memory is reserved
    /// now, so queueing never allocates).
    pub fn new(capacity: usize) -> PuntQueue {
        PuntQueue { q: Mutex::new(VecDeque::with_capacity(capacity)), capacity }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Punted>> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Most packets held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands every waiting packet to `f` (reason, metadata, bytes from
    /// `meta.current`) and frees it; returns how many. Call it on the
    /// worker that owns the queue, with that worker's buffers.
    pub fn drain(&self, bufs: &mut Buffers, mut f: impl FnMut(u32, &Meta, &[u8])) -> usize {
        let mut q = self.lock();
        let n = q.len();
        for Punted { packet, reason } in q.drain(..) {
            f(reason, bufs.meta(packet), bufs.data(packet));
            bufs.free(packet);
        }
        n
    }

    /// Moves the waiting packets into `out`; the caller owns (and must
    /// free) them.
    pub fn take(&self, out: &mut Vec<Punted>) -> usize {
        let mut q = self.lock();
        let n = q.len();
        out.extend(q.drain(..));
        n
    }
}

errors! {
    /// What punt counts.
    pub enum PuntError {
        Queued = "queued for the control plane (not a drop)",
        Overflow = "dropped: punt queue full",
    }
}

/// Trace record.
pub struct PuntTrace {
    reason: u32,
    sw_if: u32,
    queued: bool,
}

impl fmt::Display for PuntTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.queued { "queued" } else { "dropped, queue full" };
        write!(f, "reason {} ({}) from sw_if {}: {what}", punt_reason::name(self.reason), self.reason, self.sw_if)
    }
}

/// punt has no next node: everything is queued or dropped.
#[derive(Clone, Copy, Debug)]
pub enum PuntNext {}

impl NextArc for PuntNext {
    const NAMES: &'static [&'static str] = &[];
    fn index(self) -> usize {
        match self {}
    }
}

/// The punt node.
pub struct Punt {
    queue: Arc<PuntQueue>,
}

impl Punt {
    /// Queues into `queue` (the worker's, from `WorkerShared`).
    pub fn new(queue: Arc<PuntQueue>) -> Self {
        Punt { queue }
    }
}

impl Node<Tables> for Punt {
    const NAME: &'static str = "punt";
    type Next = PuntNext;
    type Error = PuntError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        let mut q = self.queue.lock();
        let mut queued = 0;
        for &p in vector {
            let m = cx.bufs.meta(p);
            let (reason, sw_if) = (m.opaque[0], m.rx_if);
            let ok = q.len() < self.queue.capacity;
            if cx.is_traced(p) {
                cx.trace(p, PuntTrace { reason, sw_if, queued: ok });
            }
            if ok {
                q.push_back(Punted { packet: p, reason });
                queued += 1;
            } else {
                cx.discard(p, PuntError::Overflow);
            }
        }
        cx.count(PuntError::Queued, queued);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vswitch_packet::{BufferPool, BufferPoolConfig};

    #[test]
    fn drain_hands_over_and_frees() {
        let pool = BufferPool::new(&BufferPoolConfig { buffers: 8, prefer_huge: false, ..Default::default() }).unwrap();
        let mut bufs = pool.worker();
        let q = PuntQueue::new(4);
        for i in 0..3u8 {
            let p = bufs.alloc().unwrap();
            bufs.write(p, &[i; 10]);
            q.lock().push_back(Punted { packet: p, reason: punt_reason::ROUTE });
        }
        assert_eq!(q.len(), 3);
        let mut seen = Vec::new();
        assert_eq!(q.drain(&mut bufs, |r, _, d| seen.push((r, d[0]))), 3);
        assert_eq!(seen, vec![(1, 0), (1, 1), (1, 2)]);
        assert!(q.is_empty());
        drop(bufs);
        assert_eq!(pool.available(), 8);
    }
}
