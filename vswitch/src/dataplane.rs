//! The data path of the daemon: the buffer pool and the poll-mode
//! workers, each on its own thread with the standard graph, a FIB reader
//! and its own counters.
//!
//! Everything a worker owns (queues, graph, buffers) is touched only by
//! its thread; the control thread reaches it through the worker's command
//! channel ([`Workers::run_on`]). Counters, runtime stats and traces are
//! shared read-only through `Arc`s kept in each [`WorkerHandle`].

use arc_swap::ArcSwap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use vswitch_graph::{GraphStats, TraceLog};
use vswitch_nodes::ip::IpFib;
use vswitch_nodes::{standard_graph, IfCounters, Tables, WorkerShared};
use vswitch_packet::{BufferPool, BufferPoolConfig};
use vswitch_worker::{Command, IdleMode, Worker, WorkerStats};

/// How long the control thread waits for a worker to run a command
/// before it gives up on it (a worker runs commands within its idle
/// sleep, a few milliseconds at most).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// What the control thread keeps of one worker.
pub struct WorkerHandle {
    /// Worker number.
    pub id: usize,
    /// Its command channel.
    pub commands: Sender<Command>,
    /// Per-node runtime stats and error counters of its graph.
    pub graph_stats: Arc<GraphStats>,
    /// Its trace buffer.
    pub trace: Arc<TraceLog>,
    /// Loop counters.
    pub loop_stats: Arc<WorkerStats>,
    /// Interface counters.
    pub counters: Arc<IfCounters>,
    /// SRv6 counters (per local SID and policy).
    pub sr_counters: Arc<vswitch_nodes::srv6::SrCounters>,
    /// Its thread, unparked after each command so an idle worker (asleep
    /// for up to its `max_sleep`) runs it at once.
    pub thread: Option<std::thread::Thread>,
}

impl WorkerHandle {
    /// Queues `cmd` and wakes the worker; false if it is gone.
    fn send(&self, cmd: Command) -> bool {
        let sent = self.commands.send(cmd).is_ok();
        if let Some(t) = &self.thread {
            t.unpark();
        }
        sent
    }
}

/// The workers, as the control thread sees them.
pub struct Workers {
    /// One per worker, by id.
    pub handles: Vec<WorkerHandle>,
}

impl Workers {
    /// Number of workers.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Runs `f` on worker `id` between two turns of its loop and returns
    /// its result; `None` if the worker is gone or did not answer within
    /// [`COMMAND_TIMEOUT`].
    pub fn run_on<T: Send + 'static>(&self, id: usize, f: impl FnOnce(&mut Worker) -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        let cmd: Command = Box::new(move |w: &mut Worker| {
            let _ = tx.send(f(w));
        });
        self.handles.get(id)?.send(cmd).then_some(())?;
        rx.recv_timeout(COMMAND_TIMEOUT).ok()
    }

    /// Runs `f(worker)` on every worker (all sent first, then awaited);
    /// the results by worker id, `None` where a worker did not answer.
    pub fn run_on_all<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Worker) -> T + Send + Sync + 'static,
    ) -> Vec<Option<T>> {
        let f = Arc::new(f);
        let waits: Vec<_> = self
            .handles
            .iter()
            .map(|h| {
                let (tx, rx) = mpsc::sync_channel(1);
                let f = Arc::clone(&f);
                let cmd: Command = Box::new(move |w: &mut Worker| {
                    let _ = tx.send(f(w));
                });
                h.send(cmd).then_some(rx)
            })
            .collect();
        waits.into_iter().map(|rx| rx.and_then(|rx| rx.recv_timeout(COMMAND_TIMEOUT).ok())).collect()
    }
}

/// The pool and the running workers.
pub struct Dataplane {
    /// The buffer pool.
    pub pool: Arc<BufferPool>,
    /// The workers' handles.
    pub workers: Arc<Workers>,
    threads: Vec<JoinHandle<Worker>>,
    stop: Arc<AtomicBool>,
}

impl Dataplane {
    /// Maps the buffer pool and starts `n` workers reading `tables`,
    /// each a reader of `fib`.
    pub fn start(
        n: usize,
        idle: IdleMode,
        pool: &BufferPoolConfig,
        tables: &Arc<ArcSwap<Tables>>,
        fib: &Arc<IpFib>,
    ) -> io::Result<Dataplane> {
        let pool = BufferPool::new(pool)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for id in 0..n {
            let shared = WorkerShared::default();
            let graph = standard_graph(&shared)
                .build()
                .map_err(|e| io::Error::other(format!("building the graph of worker {id}: {e:?}")))?;
            let graph_stats = Arc::clone(graph.stats());
            let trace = Arc::clone(graph.trace_log());
            let counters = Arc::clone(&shared.counters);
            let sr_counters = Arc::clone(&shared.sr);
            let mut w = Worker::new(id, graph, pool.worker(), Arc::clone(tables), shared);
            w.set_reader(fib.register_reader());
            w.set_idle(idle);
            let mut handle = WorkerHandle {
                id,
                commands: w.commands(),
                graph_stats,
                trace,
                loop_stats: Arc::clone(w.stats()),
                counters,
                sr_counters,
                thread: None,
            };
            match w.spawn(Arc::clone(&stop)) {
                Ok(t) => {
                    handle.thread = Some(t.thread().clone());
                    threads.push(t);
                }
                Err(e) => {
                    let mut dp = Dataplane { pool, workers: Arc::new(Workers { handles }), threads, stop };
                    dp.stop_workers();
                    return Err(io::Error::new(e.kind(), format!("starting worker {id}: {e}")));
                }
            }
            handles.push(handle);
        }
        Ok(Dataplane { pool, workers: Arc::new(Workers { handles }), threads, stop })
    }

    /// Stops the workers, frees every buffer they hold and drops their
    /// queues (closing the file descriptors). Returns how many buffers
    /// are missing from the pool afterwards (0 unless one leaked).
    pub fn stop_workers(&mut self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(mut w) => {
                    w.release_buffers();
                    tracing::debug!(worker = w.id, "worker stopped");
                }
                Err(_) => tracing::error!("a worker thread panicked"),
            }
        }
        self.pool.capacity() - self.pool.available()
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop_workers();
        }
    }
}
