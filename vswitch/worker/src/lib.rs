//! vswitch-worker: the poll-mode loop.
//!
//! A [`Worker`] owns receive queues and one transmit queue per port. Each
//! turn of its loop it picks up the newest configuration snapshot (a
//! lock-free `ArcSwap` load that costs a pointer compare when nothing
//! changed), announces a quiescent point to the FIB's reclamation, polls
//! each receive queue for a burst of up to 256 packets, pushes every burst
//! through the graph, and sends what the graph queued for each port.
//!
//! With no traffic a worker must not burn a core: [`IdleMode::Adaptive`]
//! backs off into short sleeps after a run of empty polls,
//! [`IdleMode::Interrupt`] blocks on the queues' file descriptors, and
//! [`IdleMode::Poll`] spins like a classic DPDK loop.

#![forbid(unsafe_code)]

use arc_swap::{ArcSwap, Cache};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use vswitch_fib::quiesce::ReaderHandle;
use vswitch_graph::{Counter, Graph, NodeIndex};
use vswitch_nodes::{Tables, WorkerShared};
use vswitch_packet::clock;
use vswitch_packet::{Buffers, PacketId, VECTOR_SIZE};
use vswitch_port::{RxQueue, TxQueue};

/// How a worker waits when there is no traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleMode {
    /// Spin: lowest latency, one full core always.
    Poll,
    /// Spin while busy; after a run of empty polls sleep, doubling the
    /// sleep up to `max_sleep`.
    Adaptive {
        /// Longest sleep between polls.
        max_sleep: Duration,
    },
    /// Block until a queue's file descriptor is readable (queues without
    /// one are polled every `max_sleep`).
    Interrupt {
        /// Longest wait between polls.
        max_sleep: Duration,
    },
}

impl Default for IdleMode {
    fn default() -> Self {
        IdleMode::Adaptive { max_sleep: Duration::from_millis(1) }
    }
}

/// Empty polls before an adaptive worker starts sleeping.
const SPIN_POLLS: u32 = 1024;

/// Counters of a worker's loop (`show workers`).
#[derive(Default, Debug)]
pub struct WorkerStats {
    /// Loop turns.
    pub loops: Counter,
    /// Turns that received nothing.
    pub idle_loops: Counter,
    /// Times it slept or blocked.
    pub sleeps: Counter,
    /// Packets received.
    pub rx_packets: Counter,
    /// Configuration snapshots picked up.
    pub snapshots: Counter,
    /// Housekeeping rounds (held packets, punt queue).
    pub housekeeping: Counter,
    /// Packets punted to the control plane and handed to the punt sink.
    pub punted: Counter,
}

/// Work for a worker to do between two turns of its loop, sent from the
/// control thread: add or remove queues, start a trace, read something
/// that only the worker may touch.
pub type Command = Box<dyn FnOnce(&mut Worker) + Send>;

/// Receives punted packets: reason (`vswitch_nodes::ip::punt::punt_reason`),
/// metadata and bytes. The buffer is freed after the call.
pub type PuntSink = Box<dyn FnMut(u32, &vswitch_packet::Meta, &[u8]) + Send>;

struct RxEntry {
    queue: Box<dyn RxQueue>,
    input: NodeIndex,
}

/// One poll-mode worker.
pub struct Worker {
    /// Worker number.
    pub id: usize,
    graph: Graph<Tables>,
    bufs: Buffers,
    rx: Vec<RxEntry>,
    tx: Vec<Option<Box<dyn TxQueue>>>,
    tables: Cache<Arc<ArcSwap<Tables>>, Arc<Tables>>,
    /// Address of the snapshot in use, to count changes (never dereferenced).
    seen: usize,
    reader: Option<ReaderHandle>,
    idle: IdleMode,
    cpu: Option<usize>,
    stats: Arc<WorkerStats>,
    vector: Vec<PacketId>,
    empty_polls: u32,
    sleep: Duration,
    shared: WorkerShared,
    punt_sink: Option<PuntSink>,
    housekeeping_every: u64,
    last_housekeeping: u64,
    commands: std::sync::mpsc::Receiver<Command>,
    command_tx: std::sync::mpsc::Sender<Command>,
}

impl Worker {
    /// A worker running `graph` (built with `shared`) with buffers `bufs`,
    /// reading configuration from `tables`.
    pub fn new(
        id: usize,
        graph: Graph<Tables>,
        bufs: Buffers,
        tables: Arc<ArcSwap<Tables>>,
        shared: WorkerShared,
    ) -> Worker {
        let (command_tx, commands) = std::sync::mpsc::channel();
        Worker {
            id,
            graph,
            bufs,
            rx: Vec::new(),
            tx: Vec::new(),
            tables: Cache::new(tables),
            seen: 0,
            reader: None,
            idle: IdleMode::default(),
            cpu: None,
            stats: Arc::new(WorkerStats::default()),
            vector: Vec::with_capacity(VECTOR_SIZE),
            empty_polls: 0,
            sleep: Duration::ZERO,
            shared,
            punt_sink: None,
            housekeeping_every: clock::ticks_per_second() / 1000,
            last_housekeeping: 0,
            commands,
            command_tx,
        }
    }

    /// A sender of commands run by the worker at the top of its loop
    /// (within `max_sleep` when it is idle).
    pub fn commands(&self) -> std::sync::mpsc::Sender<Command> {
        self.command_tx.clone()
    }

    /// Stops polling the receive queues of `port`; returns how many.
    pub fn remove_rx(&mut self, port: u32) -> usize {
        self.take_rx(port).len()
    }

    /// Stops polling `port`'s queues and returns them, for the control
    /// thread to close: closing a kernel queue can wait for an RCU grace
    /// period (a tap queue's detach does), which must not stall the worker.
    pub fn take_rx(&mut self, port: u32) -> Vec<Box<dyn RxQueue>> {
        let mut taken = Vec::new();
        let mut i = 0;
        while i < self.rx.len() {
            if self.rx[i].queue.port() == port {
                taken.push(self.rx.remove(i).queue);
            } else {
                i += 1;
            }
        }
        taken
    }

    /// Stops sending on `port` (what the graph still queues for it is
    /// freed); returns the queue.
    pub fn remove_tx(&mut self, port: u32) -> Option<Box<dyn TxQueue>> {
        self.tx.get_mut(port as usize).and_then(Option::take)
    }

    /// Where punted packets go (default: freed, counted in `punted`).
    pub fn set_punt_sink(&mut self, sink: PuntSink) {
        self.punt_sink = Some(sink);
    }

    /// Releases held packets whose neighbor resolved, expires those held
    /// too long, and drains the punt queue. Runs about every millisecond.
    pub fn housekeeping(&mut self) {
        let now = clock::now();
        self.last_housekeeping = now;
        self.stats.housekeeping.inc();
        let tables = Arc::clone(self.tables.load());
        vswitch_nodes::housekeeping(&mut self.graph, &mut self.bufs, &tables, &self.shared, now);
        self.flush_tx();
        if !self.shared.punt.is_empty() {
            let sink = &mut self.punt_sink;
            let n = self.shared.punt.drain(&mut self.bufs, |reason, meta, data| {
                if let Some(f) = sink.as_mut() {
                    f(reason, meta, data)
                }
            });
            self.stats.punted.add(n as u64);
        }
    }

    fn flush_tx(&mut self) {
        for port in 0..self.graph.ports() {
            let q = self.graph.tx_queue(port);
            if q.is_empty() {
                continue;
            }
            match self.tx.get_mut(port).and_then(Option::as_mut) {
                Some(tx) => tx.tx_burst(&mut self.bufs, q),
                None => {
                    self.bufs.free_bulk(q);
                    q.clear();
                }
            }
        }
    }

    /// Polls `queue` and feeds its bursts to the node named `input`.
    pub fn add_rx(&mut self, queue: Box<dyn RxQueue>, input: &str) -> Result<(), String> {
        let input = self.graph.node_index(input).ok_or_else(|| format!("rx input node {input:?} does not exist"))?;
        self.rx.push(RxEntry { queue, input });
        Ok(())
    }

    /// Sends what the graph queues for port `port` on `queue`.
    pub fn set_tx(&mut self, port: u32, queue: Box<dyn TxQueue>) {
        let i = port as usize;
        if self.tx.len() <= i {
            self.tx.resize_with(i + 1, || None);
        }
        self.tx[i] = Some(queue);
        self.graph.set_ports(i + 1);
    }

    /// Announces quiescent points to the FIB through `reader`.
    pub fn set_reader(&mut self, reader: ReaderHandle) {
        self.reader = Some(reader);
    }

    /// How to wait when idle.
    pub fn set_idle(&mut self, idle: IdleMode) {
        self.idle = idle;
    }

    /// Pins the worker's thread to `cpu` when it starts.
    pub fn set_cpu(&mut self, cpu: Option<usize>) {
        self.cpu = cpu;
    }

    /// The graph (for stats, trace, feature configuration between turns).
    pub fn graph(&mut self) -> &mut Graph<Tables> {
        &mut self.graph
    }

    /// Loop counters.
    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    /// A transmit queue, to read its counters.
    pub fn tx_queue(&self, port: u32) -> Option<&dyn TxQueue> {
        self.tx.get(port as usize).and_then(|q| q.as_deref())
    }

    /// A receive queue's counters, by position of `add_rx`.
    pub fn rx_queue(&self, i: usize) -> Option<&dyn RxQueue> {
        self.rx.get(i).map(|e| &*e.queue)
    }

    /// One turn of the loop: returns the packets received.
    pub fn poll_once(&mut self) -> usize {
        self.stats.loops.inc();
        while let Ok(command) = self.commands.try_recv() {
            command(self);
        }
        let tables = self.tables.load();
        let now = Arc::as_ptr(tables) as usize;
        if now != self.seen {
            self.seen = now;
            self.stats.snapshots.inc();
        }
        if let Some(r) = &self.reader {
            r.quiescent();
        }
        let mut received = 0;
        for e in &mut self.rx {
            self.vector.clear();
            let n = e.queue.rx_burst(&mut self.bufs, &mut self.vector, VECTOR_SIZE);
            if n > 0 {
                received += n;
                self.graph.run(&mut self.bufs, tables, e.input, &self.vector);
            }
        }
        if received > 0 {
            self.stats.rx_packets.add(received as u64);
            self.flush_tx();
        } else {
            self.stats.idle_loops.inc();
        }
        if clock::now().wrapping_sub(self.last_housekeeping) >= self.housekeeping_every {
            self.housekeeping();
        }
        received
    }

    /// Runs the loop until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let n = self.poll_once();
            self.idle_wait(n);
        }
    }

    fn idle_wait(&mut self, received: usize) {
        if received > 0 {
            self.empty_polls = 0;
            self.sleep = Duration::ZERO;
            return;
        }
        let max_sleep = match self.idle {
            IdleMode::Poll => return,
            IdleMode::Adaptive { max_sleep } | IdleMode::Interrupt { max_sleep } => max_sleep,
        };
        self.empty_polls = self.empty_polls.saturating_add(1);
        if self.empty_polls < SPIN_POLLS {
            return;
        }
        self.stats.sleeps.inc();
        if let Some(r) = &self.reader {
            r.offline();
        }
        if let IdleMode::Interrupt { .. } = self.idle {
            self.block_on_queues(max_sleep);
        } else {
            self.sleep = (self.sleep * 2).clamp(Duration::from_micros(10), max_sleep);
            // Parked, not slept: whoever sends a command may unpark us.
            std::thread::park_timeout(self.sleep);
        }
        if let Some(r) = &self.reader {
            r.online();
        }
    }

    fn block_on_queues(&self, max_wait: Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let fds: Vec<BorrowedFd<'_>> = self.rx.iter().filter_map(|e| e.queue.wait_fd()).collect();
        let mut pfds: Vec<PollFd<'_>> = fds.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)).collect();
        let ms = max_wait.as_millis().clamp(1, i32::MAX as u128) as i32;
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE);
        // Interrupted or failed waits just poll again.
        let _ = poll(&mut pfds, timeout);
    }

    /// Starts the loop on its own thread (pinned when a CPU was set);
    /// the worker comes back when `stop` is set.
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<Worker>> {
        std::thread::Builder::new().name(format!("vswitch-wk{}", self.id)).spawn(move || {
            if let Some(cpu) = self.cpu {
                core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
            }
            self.run(&stop);
            self
        })
    }

    /// Returns every buffer this worker holds to the pool (queued
    /// transmissions, held and punted packets are freed). Call after the
    /// loop stopped.
    pub fn release_buffers(&mut self) {
        vswitch_nodes::release_held(&mut self.graph, &mut self.bufs, &self.shared);
        for port in 0..self.graph.ports() {
            let q = std::mem::take(self.graph.tx_queue(port));
            self.bufs.free_bulk(&q);
        }
        self.bufs.flush();
    }
}

/// Pins the calling thread to `cpu` (ignored when the CPU does not exist).
pub fn pin_current_thread(cpu: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
}
