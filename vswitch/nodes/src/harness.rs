//! A graph on one thread with packet-generator ports, for tests and
//! benchmarks: inject frames on a port, collect what each port transmits,
//! read counters, and check that no buffer leaked.

use crate::port_input::{Pg, PortKind};
use crate::registry::{standard_graph, WorkerShared};
use crate::Tables;
use std::sync::Arc;
use vswitch_graph::{Graph, NodeIndex};
use vswitch_packet::{BufferPool, BufferPoolConfig, Buffers, PacketId};

/// Transmit queues (ports) a harness graph has.
pub const PORTS: u32 = 64;

/// A standard graph with its own buffer pool.
pub struct Harness {
    /// The pool.
    pub pool: Arc<BufferPool>,
    /// This thread's buffers.
    pub bufs: Buffers,
    /// The graph.
    pub graph: Graph<Tables>,
    /// The configuration snapshot handed to every dispatch.
    pub tables: Tables,
    /// Per-worker shared state (counters).
    pub shared: WorkerShared,
    input: NodeIndex,
    scratch: Vec<PacketId>,
}

impl Harness {
    /// A harness over `tables` with `buffers` buffers (small pages).
    pub fn new(tables: Tables, buffers: u32) -> Harness {
        let pool = BufferPool::new(&BufferPoolConfig { buffers, prefer_huge: false, ..Default::default() })
            .expect("buffer pool");
        Self::with_pool(tables, pool)
    }

    /// A harness over `tables` using `pool`.
    pub fn with_pool(tables: Tables, pool: Arc<BufferPool>) -> Harness {
        let shared = WorkerShared::default();
        let graph = standard_graph(&shared).ports(PORTS as usize).build().expect("standard graph");
        let input = graph.node_index(Pg::NAME).expect("pg-input");
        Harness { bufs: pool.worker(), pool, graph, tables, shared, input, scratch: Vec::new() }
    }

    /// Sends frames into the graph as if port `port` had received them,
    /// and dispatches until the graph is idle.
    pub fn inject(&mut self, port: u32, frames: &[&[u8]]) {
        self.scratch.clear();
        for f in frames {
            let p = self.bufs.alloc().expect("buffer for an injected frame");
            assert!(self.bufs.write(p, f), "frame of {} bytes does not fit a buffer", f.len());
            self.bufs.meta_mut(p).rx_if = port;
            self.scratch.push(p);
        }
        let v = std::mem::take(&mut self.scratch);
        self.graph.run(&mut self.bufs, &self.tables, self.input, &v);
        self.scratch = v;
    }

    /// The frames queued for transmission on `port`, copied out; their
    /// buffers are freed.
    pub fn take_tx(&mut self, port: u32) -> Vec<Vec<u8>> {
        if port as usize >= self.graph.ports() {
            return Vec::new();
        }
        let q = std::mem::take(self.graph.tx_queue(port as usize));
        let frames = q.iter().map(|&p| self.bufs.data(p).to_vec()).collect();
        self.bufs.free_bulk(&q);
        *self.graph.tx_queue(port as usize) = q;
        self.graph.tx_queue(port as usize).clear();
        frames
    }

    /// Frees everything queued on every port.
    pub fn drain_all(&mut self) {
        for port in 0..self.graph.ports() {
            let q = std::mem::take(self.graph.tx_queue(port));
            self.bufs.free_bulk(&q);
        }
    }

    /// An error counter of a node, by its description.
    pub fn error(&self, node: &str, description: &str) -> u64 {
        self.graph.stats().error(node, description)
    }

    /// Packets a node has processed.
    pub fn packets(&self, node: &str) -> u64 {
        self.graph.stats().packets(node)
    }

    /// Panics unless every buffer is back in the pool (after draining the
    /// transmit queues).
    pub fn assert_no_leak(&mut self) {
        self.drain_all();
        self.bufs.flush();
        assert_eq!(self.pool.available(), self.pool.capacity(), "buffers leaked");
    }
}
