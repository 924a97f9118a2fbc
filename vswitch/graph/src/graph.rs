//! Building a graph and dispatching vectors through it.

use crate::capture::{CaptureBuffer, CaptureDir, CaptureState};
use crate::counter::Counter;
use crate::cx::RawCx;
use crate::feature::{self, FeatureArcId, FeatureArcs};
use crate::node::{DynNode, NoErrors, NoNext, Node, Typed};
use crate::trace::TraceLog;
use crate::{Cx, ERROR_DROP};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use vswitch_packet::{clock, Buffers, PacketId, VECTOR_SIZE};

/// Index of a node in its graph.
pub type NodeIndex = u16;

/// Why a graph could not be built or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// Two nodes share a name.
    DuplicateNode(&'static str),
    /// A next arc names a node that is not in the graph.
    UnknownNext { node: &'static str, next: &'static str },
    /// A name that is not a node of the graph.
    UnknownNode(String),
    /// No feature arc with this index.
    UnknownFeatureArc(u16),
    /// A feature that is not on the arc.
    UnknownFeature { arc: &'static str, feature: String },
    /// More than 64 features on one arc, or more than 65535 nodes.
    TooMany(&'static str),
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::DuplicateNode(n) => write!(f, "node {n:?} added twice"),
            GraphError::UnknownNext { node, next } => write!(f, "node {node:?}: next node {next:?} does not exist"),
            GraphError::UnknownNode(n) => write!(f, "no node named {n:?}"),
            GraphError::UnknownFeatureArc(a) => write!(f, "no feature arc {a}"),
            GraphError::UnknownFeature { arc, feature } => write!(f, "feature arc {arc:?} has no feature {feature:?}"),
            GraphError::TooMany(what) => write!(f, "too many {what}"),
        }
    }
}

impl std::error::Error for GraphError {}

/// Frees dropped packets. Reasons are counted by the node that dropped.
struct ErrorDrop;

impl<S> Node<S> for ErrorDrop {
    const NAME: &'static str = ERROR_DROP;
    type Next = NoNext;
    type Error = NoErrors;
    fn process(&mut self, cx: &mut Cx<'_, S, Self>, vector: &[PacketId]) {
        cx.bufs.free_bulk(vector);
    }
}

/// Runtime counters of one node on one worker (VPP `show runtime`).
#[derive(Default, Debug)]
pub struct NodeStats {
    /// Calls of the node.
    pub calls: Counter,
    /// Packets processed.
    pub packets: Counter,
    /// TSC clocks spent inside the node.
    pub clocks: Counter,
}

/// A copy of one node's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeStatsSnapshot {
    /// Node name.
    pub name: &'static str,
    /// Calls.
    pub calls: u64,
    /// Packets.
    pub packets: u64,
    /// TSC clocks.
    pub clocks: u64,
    /// Error counters as (description, count).
    pub errors: Vec<(&'static str, u64)>,
}

impl NodeStatsSnapshot {
    /// Clocks per packet (0 when idle).
    pub fn clocks_per_packet(&self) -> f64 {
        if self.packets == 0 {
            0.0
        } else {
            self.clocks as f64 / self.packets as f64
        }
    }

    /// Packets per call.
    pub fn vectors_per_call(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.packets as f64 / self.calls as f64
        }
    }
}

struct NodeEntry {
    name: &'static str,
    stats: NodeStats,
    errors: Box<[Counter]>,
    error_names: &'static [&'static str],
}

/// Every node's counters on one worker; shared with readers.
pub struct GraphStats {
    nodes: Vec<NodeEntry>,
    /// Packets dropped because dispatch went round too often (a loop).
    pub loop_drops: Counter,
}

impl GraphStats {
    /// A snapshot of every node's counters.
    pub fn snapshot(&self) -> Vec<NodeStatsSnapshot> {
        self.nodes
            .iter()
            .map(|n| NodeStatsSnapshot {
                name: n.name,
                calls: n.stats.calls.get(),
                packets: n.stats.packets.get(),
                clocks: n.stats.clocks.get(),
                errors: n.error_names.iter().copied().zip(n.errors.iter().map(Counter::get)).collect(),
            })
            .collect()
    }

    /// One error counter's value, by node name and description.
    pub fn error(&self, node: &str, description: &str) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.name == node)
            .flat_map(|n| n.error_names.iter().zip(n.errors.iter()))
            .filter(|(d, _)| **d == description)
            .map(|(_, c)| c.get())
            .sum()
    }

    /// Packets processed by a node.
    pub fn packets(&self, node: &str) -> u64 {
        self.nodes.iter().filter(|n| n.name == node).map(|n| n.stats.packets.get()).sum()
    }
}

/// Per-worker dispatch state that nodes reach through their context.
pub(crate) struct Core {
    frames: Vec<Vec<PacketId>>,
    pending: VecDeque<u16>,
    pub(crate) tx: Vec<Vec<PacketId>>,
    pub(crate) trace: Arc<TraceLog>,
    pub(crate) trace_budget: Vec<u32>,
    pub(crate) features: FeatureArcs,
    pub(crate) capture: CaptureState,
}

impl Core {
    #[inline(always)]
    pub(crate) fn push(&mut self, node: u16, p: PacketId) {
        let f = &mut self.frames[node as usize];
        if f.is_empty() {
            self.pending.push_back(node);
        }
        f.push(p);
    }

    #[inline]
    pub(crate) fn push_slice(&mut self, node: u16, packets: &[PacketId]) {
        let f = &mut self.frames[node as usize];
        if f.is_empty() {
            self.pending.push_back(node);
        }
        f.extend_from_slice(packets);
    }
}

struct ArcDef {
    name: &'static str,
    features: Vec<&'static str>,
    end: &'static str,
}

/// Collects nodes and feature arcs, then resolves names into a [`Graph`].
pub struct GraphBuilder<S> {
    nodes: Vec<Box<dyn DynNode<S>>>,
    arcs: Vec<ArcDef>,
    ports: usize,
    trace_capacity: usize,
}

impl<S: 'static> Default for GraphBuilder<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: 'static> GraphBuilder<S> {
    /// A builder holding only `error-drop`.
    pub fn new() -> Self {
        GraphBuilder { nodes: vec![Box::new(Typed(ErrorDrop))], arcs: Vec::new(), ports: 0, trace_capacity: 4096 }
    }

    /// Adds a node.
    pub fn node<N: Node<S>>(mut self, node: N) -> Self {
        self.nodes.push(Box::new(Typed(node)));
        self
    }

    /// Adds a node, type-erased.
    pub fn boxed(mut self, node: Box<dyn DynNode<S>>) -> Self {
        self.nodes.push(node);
        self
    }

    /// Names that next arcs or feature arcs refer to but no node has.
    pub fn missing_nodes(&self) -> Vec<&'static str> {
        let mut missing: Vec<&'static str> = self
            .nodes
            .iter()
            .flat_map(|n| n.next_names().iter().copied())
            .chain(self.arcs.iter().flat_map(|a| a.features.iter().copied().chain(std::iter::once(a.end))))
            .filter(|name| !self.nodes.iter().any(|n| n.name() == *name))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    /// Declares a feature arc: its features in order and its end node.
    pub fn feature_arc(mut self, name: &'static str, features: &[&'static str], end: &'static str) -> Self {
        self.arcs.push(ArcDef { name, features: features.to_vec(), end });
        self
    }

    /// Number of ports (transmit queues, at most 32767).
    pub fn ports(mut self, n: usize) -> Self {
        self.ports = n.min(0x7fff);
        self
    }

    /// Trace records kept at most.
    pub fn trace_capacity(mut self, n: usize) -> Self {
        self.trace_capacity = n;
        self
    }

    /// Resolves every next arc and feature by name.
    pub fn build(self) -> Result<Graph<S>, GraphError> {
        if self.nodes.len() > u16::MAX as usize {
            return Err(GraphError::TooMany("nodes"));
        }
        let index = |name: &str| self.nodes.iter().position(|n| n.name() == name).map(|i| i as u16);
        for (i, n) in self.nodes.iter().enumerate() {
            if index(n.name()) != Some(i as u16) {
                return Err(GraphError::DuplicateNode(n.name()));
            }
        }
        let mut next = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let arcs: Result<Vec<u16>, GraphError> = n
                .next_names()
                .iter()
                .map(|&name| index(name).ok_or(GraphError::UnknownNext { node: n.name(), next: name }))
                .collect();
            next.push(arcs?.into_boxed_slice());
        }
        let mut features = FeatureArcs::default();
        for a in &self.arcs {
            if a.features.len() > 64 {
                return Err(GraphError::TooMany("features on one arc"));
            }
            let end = index(a.end).ok_or_else(|| GraphError::UnknownNode(a.end.to_string()))?;
            let feats = a
                .features
                .iter()
                .map(|&f| index(f).map(|i| (f, i)).ok_or_else(|| GraphError::UnknownNode(f.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            features.arcs.push(feature::Arc {
                name: a.name,
                features: feats,
                end,
                enabled: Vec::new(),
                chains: Vec::new(),
            });
        }
        let stats = Arc::new(GraphStats {
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeEntry {
                    name: n.name(),
                    stats: NodeStats::default(),
                    errors: n.error_names().iter().map(|_| Counter::default()).collect(),
                    error_names: n.error_names(),
                })
                .collect(),
            loop_drops: Counter::default(),
        });
        let n = self.nodes.len();
        Ok(Graph {
            core: Core {
                frames: (0..n).map(|_| Vec::with_capacity(2 * VECTOR_SIZE)).collect(),
                pending: VecDeque::with_capacity(n * 2),
                tx: (0..self.ports).map(|_| Vec::with_capacity(2 * VECTOR_SIZE)).collect(),
                trace: Arc::new(TraceLog::new(self.trace_capacity)),
                trace_budget: vec![0; n],
                features,
                capture: CaptureState::default(),
            },
            nodes: self.nodes,
            next,
            stats,
            spare: Vec::with_capacity(2 * VECTOR_SIZE),
        })
    }
}

/// A worker's graph: its nodes, their frames and counters.
pub struct Graph<S> {
    nodes: Vec<Box<dyn DynNode<S>>>,
    next: Vec<Box<[u16]>>,
    stats: Arc<GraphStats>,
    core: Core,
    spare: Vec<PacketId>,
}

impl<S: 'static> Graph<S> {
    /// The index of a node by name.
    pub fn node_index(&self, name: &str) -> Option<NodeIndex> {
        self.nodes.iter().position(|n| n.name() == name).map(|i| i as u16)
    }

    /// Node names, by index.
    pub fn node_names(&self) -> Vec<&'static str> {
        self.nodes.iter().map(|n| n.name()).collect()
    }

    /// Next node names of a node, by arc.
    pub fn next_names(&self, node: NodeIndex) -> Vec<&'static str> {
        self.next[node as usize].iter().map(|&i| self.nodes[i as usize].name()).collect()
    }

    /// A node, to reconfigure it in place between dispatches.
    pub fn node_mut<T: 'static>(&mut self, name: &str) -> Option<&mut T> {
        let i = self.node_index(name)?;
        self.nodes[i as usize].as_any_mut().downcast_mut::<T>()
    }

    /// The counters, shared with readers on other threads.
    pub fn stats(&self) -> &Arc<GraphStats> {
        &self.stats
    }

    /// The trace buffer, shared with readers.
    pub fn trace_log(&self) -> &Arc<TraceLog> {
        &self.core.trace
    }

    /// Marks the next `count` packets that enter `node` for tracing.
    pub fn add_trace(&mut self, node: &str, count: u32) -> Result<(), GraphError> {
        let i = self.node_index(node).ok_or_else(|| GraphError::UnknownNode(node.to_string()))?;
        self.core.trace_budget[i as usize] = count;
        Ok(())
    }

    /// Starts a packet capture into `buffer` (built on the control thread:
    /// nothing is allocated here); returns the buffer of a capture that was
    /// running.
    pub fn start_capture(&mut self, buffer: CaptureBuffer) -> Option<CaptureBuffer> {
        self.core.capture.start(buffer)
    }

    /// Stops the packet capture and returns what it took.
    pub fn stop_capture(&mut self) -> Option<CaptureBuffer> {
        self.core.capture.stop()
    }

    /// The running capture's buffer (also after this worker's part of it
    /// ended), to read between dispatches.
    pub fn capture(&self) -> Option<&CaptureBuffer> {
        self.core.capture.buffer.as_ref()
    }

    /// Whether this graph still captures packets in direction `dir`.
    pub fn capturing(&self, dir: CaptureDir) -> bool {
        self.core.capture.mask & dir.bit() != 0
    }

    /// Feature arcs, to enable or disable features per interface.
    pub fn features_mut(&mut self) -> &mut FeatureArcs {
        &mut self.core.features
    }

    /// A feature arc by name.
    pub fn feature_arc(&self, name: &str) -> Option<FeatureArcId> {
        self.core.features.arc(name)
    }

    /// Makes sure there are transmit queues for `n` ports (at most 32767).
    pub fn set_ports(&mut self, n: usize) {
        let n = n.min(0x7fff);
        if self.core.tx.len() < n {
            self.core.tx.resize_with(n, || Vec::with_capacity(2 * VECTOR_SIZE));
        }
    }

    /// Number of transmit queues.
    pub fn ports(&self) -> usize {
        self.core.tx.len()
    }

    /// The packets queued for a port by the last dispatch; the worker
    /// sends them and clears the queue (what it cannot send, it frees).
    pub fn tx_queue(&mut self, port: usize) -> &mut Vec<PacketId> {
        &mut self.core.tx[port]
    }

    /// Hands `vector` to node `input` (usually a port's input node) and
    /// dispatches until no frame is pending.
    pub fn run(&mut self, bufs: &mut Buffers, state: &S, input: NodeIndex, vector: &[PacketId]) {
        self.call(bufs, state, input, vector);
        self.dispatch(bufs, state);
    }

    /// Queues packets for a node without dispatching.
    pub fn enqueue(&mut self, node: NodeIndex, vector: &[PacketId]) {
        for &p in vector {
            self.core.push(node, p);
        }
    }

    /// Dispatches pending frames until none is left. A graph that keeps
    /// feeding itself (a forwarding loop) is cut after a bound and its
    /// packets dropped and counted (`loop_drops`).
    pub fn dispatch(&mut self, bufs: &mut Buffers, state: &S) {
        let mut spare = std::mem::take(&mut self.spare);
        let mut budget = 64 * self.nodes.len();
        while let Some(n) = self.core.pending.pop_front() {
            std::mem::swap(&mut self.core.frames[n as usize], &mut spare);
            if budget == 0 {
                self.stats.loop_drops.add(spare.len() as u64);
                if self.core.capture.mask & CaptureDir::Drop.bit() != 0 {
                    let now = clock::now();
                    for &p in &spare {
                        let sw_if = bufs.meta(p).rx_if;
                        let node = self.stats.nodes[n as usize].name;
                        self.core.capture.take(
                            bufs,
                            p,
                            CaptureDir::Drop,
                            sw_if,
                            now,
                            node,
                            "forwarding loop in the graph",
                        );
                    }
                }
                bufs.free_bulk(&spare);
            } else {
                budget -= 1;
                self.call(bufs, state, n, &spare);
            }
            spare.clear();
        }
        self.spare = spare;
    }

    fn call(&mut self, bufs: &mut Buffers, state: &S, n: NodeIndex, vector: &[PacketId]) {
        let i = n as usize;
        let entry = &self.stats.nodes[i];
        let t0 = clock::now();
        let raw = RawCx {
            bufs,
            state,
            core: &mut self.core,
            node: n,
            name: entry.name,
            next: &self.next[i],
            errors: &entry.errors,
            now: t0,
        };
        self.nodes[i].process_raw(raw, vector);
        let t1 = clock::now();
        entry.stats.calls.inc();
        entry.stats.packets.add(vector.len() as u64);
        entry.stats.clocks.add(t1.wrapping_sub(t0));
    }
}
