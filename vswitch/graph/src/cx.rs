//! What a node sees while it processes a vector.

use crate::capture::CaptureDir;
use crate::counter::Counter;
use crate::feature::{FeatureArcId, FeatureArcs};
use crate::graph::Core;
use crate::node::{ErrorCode, NextArc, Node};
use std::marker::PhantomData;
use vswitch_packet::{Buffers, MetaFlags, PacketId, VECTOR_SIZE};

const NO_TARGET: u16 = u16::MAX;
/// Staging targets with this bit set are transmit queues (by port).
const TX_TARGET: u16 = 0x8000;

/// The untyped dispatch context the graph hands a node.
pub struct RawCx<'a, S> {
    pub(crate) bufs: &'a mut Buffers,
    pub(crate) state: &'a S,
    pub(crate) core: &'a mut Core,
    pub(crate) node: u16,
    pub(crate) name: &'static str,
    pub(crate) next: &'a [u16],
    pub(crate) errors: &'a [Counter],
    pub(crate) now: u64,
}

/// A node's view of the graph during one call: the packets' buffers, the
/// worker's configuration snapshot, and the ways out (next arcs, drop,
/// transmit), typed by the node's own [`NextArc`] and [`ErrorCode`].
pub struct Cx<'a, S, N: ?Sized> {
    /// Packet bytes and metadata.
    pub bufs: &'a mut Buffers,
    /// The worker's configuration snapshot for this dispatch.
    pub state: &'a S,
    /// TSC at the start of this call.
    pub now: u64,
    core: &'a mut Core,
    node: u16,
    name: &'static str,
    next: &'a [u16],
    errors: &'a [Counter],
    /// Packets bound for `stage_target`, kept here until the target
    /// changes or the call ends: a run of packets to one next node then
    /// costs an array store each, with the count in a register, instead of
    /// a `Vec::push` whose length round-trips through memory.
    stage: [PacketId; VECTOR_SIZE],
    stage_len: usize,
    stage_target: u16,
    _node: PhantomData<fn(&N)>,
}

impl<'a, S, N: Node<S>> Cx<'a, S, N> {
    pub(crate) fn new(raw: RawCx<'a, S>) -> Self {
        Cx {
            bufs: raw.bufs,
            state: raw.state,
            now: raw.now,
            core: raw.core,
            node: raw.node,
            name: raw.name,
            next: raw.next,
            errors: raw.errors,
            stage: [PacketId::from_index(0); VECTOR_SIZE],
            stage_len: 0,
            stage_target: NO_TARGET,
            _node: PhantomData,
        }
    }

    #[inline(always)]
    fn push(&mut self, target: u16, p: PacketId) {
        if target == self.stage_target && self.stage_len < VECTOR_SIZE {
            self.stage[self.stage_len] = p;
            self.stage_len += 1;
        } else {
            self.restage(target, p);
        }
    }

    #[cold]
    #[inline(never)]
    fn restage(&mut self, target: u16, p: PacketId) {
        self.flush();
        self.stage_target = target;
        self.stage[0] = p;
        self.stage_len = 1;
    }

    /// Moves the staged packets to their node's frame.
    pub(crate) fn flush(&mut self) {
        if self.stage_len > 0 {
            let packets = &self.stage[..self.stage_len];
            if self.stage_target & TX_TARGET != 0 {
                self.core.tx[(self.stage_target & !TX_TARGET) as usize].extend_from_slice(packets);
            } else {
                self.core.push_slice(self.stage_target, packets);
            }
            self.stage_len = 0;
        }
    }

    /// Sends a packet along one of the node's next arcs.
    #[inline(always)]
    pub fn enqueue(&mut self, next: N::Next, p: PacketId) {
        let target = self.next[next.index()];
        self.push(target, p);
    }

    /// Counts `err` and drops the packet (error-drop frees it). A drop
    /// capture takes it here, with this node's name and the error.
    #[inline(always)]
    pub fn discard(&mut self, p: PacketId, err: N::Error) {
        self.errors[err.index()].inc();
        if self.core.capture.mask & CaptureDir::Drop.bit() != 0 {
            let reason = <N::Error as ErrorCode>::DESCRIPTIONS[err.index()];
            self.capture_drop(p, reason);
        }
        self.push(0, p);
    }

    #[cold]
    #[inline(never)]
    fn capture_drop(&mut self, p: PacketId, reason: &'static str) {
        let sw_if = self.bufs.meta(p).rx_if;
        self.core.capture.take(self.bufs, p, CaptureDir::Drop, sw_if, self.now, self.name, reason);
    }

    /// Whether packets are being captured in direction `dir` (a packet
    /// capture runs): check once per vector, then call
    /// [`capture`](Self::capture) for each packet only when it is.
    #[inline(always)]
    pub fn capturing(&self, dir: CaptureDir) -> bool {
        self.core.capture.mask & dir.bit() != 0
    }

    /// Copies the packet into the running capture as seen in `dir` on
    /// interface `sw_if`, if the capture takes that direction and
    /// interface (drops are taken by [`discard`](Self::discard) itself).
    #[inline(always)]
    pub fn capture(&mut self, p: PacketId, dir: CaptureDir, sw_if: u32) {
        self.core.capture.take(self.bufs, p, dir, sw_if, self.now, self.name, "");
    }

    /// Counts `n` occurrences of `err` without touching a packet.
    #[inline(always)]
    pub fn count(&mut self, err: N::Error, n: u64) {
        self.errors[err.index()].add(n);
    }

    /// Queues a packet for transmission on a port; the worker sends the
    /// port's queue after the dispatch. A port the graph does not know is
    /// a drop (returns `false`).
    #[inline(always)]
    pub fn transmit(&mut self, port: u32, p: PacketId) -> bool {
        if (port as usize) < self.core.tx.len() {
            self.push(TX_TARGET | port as u16, p);
            true
        } else {
            if self.core.capture.mask & CaptureDir::Drop.bit() != 0 {
                self.capture_drop(p, "no transmit queue for the port");
            }
            self.push(0, p);
            false
        }
    }

    /// Starts a packet down a feature arc for interface `sw_if`: the first
    /// feature enabled there, or the arc's end node when none is.
    #[inline(always)]
    pub fn feature_start(&mut self, arc: FeatureArcId, sw_if: u32, p: PacketId) {
        let target = self.core.features.first(arc, sw_if);
        let m = self.bufs.meta_mut(p);
        m.feature = 0;
        self.push(target, p);
    }

    /// Sends a packet to the next enabled feature on its arc (called by a
    /// feature node when it is done with the packet).
    #[inline(always)]
    pub fn feature_next(&mut self, arc: FeatureArcId, sw_if: u32, p: PacketId) {
        let m = self.bufs.meta_mut(p);
        m.feature = m.feature.saturating_add(1);
        let target = self.core.features.at(arc, sw_if, m.feature as usize);
        self.push(target, p);
    }

    /// The graph's feature arcs (read-only).
    pub fn features(&self) -> &FeatureArcs {
        &self.core.features
    }

    /// Whether the packet is being traced.
    #[inline(always)]
    pub fn is_traced(&self, p: PacketId) -> bool {
        self.bufs.meta(p).flags & MetaFlags::TRACED != 0
    }

    /// Appends this node's record to a traced packet's trace; does nothing
    /// for a packet that is not traced. Build costly records only after
    /// checking [`is_traced`](Self::is_traced).
    #[inline]
    pub fn trace(&mut self, p: PacketId, record: impl std::fmt::Display + Send + 'static) {
        if self.is_traced(p) {
            let id = self.bufs.meta(p).trace_id;
            self.core.trace.record(id, self.name, self.now, Box::new(record));
        }
    }

    /// For input nodes: marks the packet for tracing when this node still
    /// has trace budget (set by `trace add`); otherwise clears the mark.
    /// Returns whether it is traced.
    #[inline(always)]
    pub fn start_trace(&mut self, p: PacketId) -> bool {
        let budget = &mut self.core.trace_budget[self.node as usize];
        let m = self.bufs.meta_mut(p);
        if *budget == 0 {
            m.flags &= !MetaFlags::TRACED;
            return false;
        }
        *budget -= 1;
        m.flags |= MetaFlags::TRACED;
        m.trace_id = self.core.trace.new_id();
        true
    }

    /// Packets this (input) node may still mark for tracing.
    #[inline(always)]
    pub fn trace_budget(&self) -> u32 {
        self.core.trace_budget[self.node as usize]
    }

    /// This node's name.
    pub fn node_name(&self) -> &'static str {
        self.name
    }
}
