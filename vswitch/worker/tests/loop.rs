//! The worker loop on generator ports: bursts flow end to end, a new
//! configuration snapshot is picked up while running, an idle worker
//! sleeps instead of spinning, and every buffer comes back.

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vswitch_nodes::{standard_graph, IfMode, Interface, Tables, WorkerShared};
use vswitch_packet::{BufferPool, BufferPoolConfig};
use vswitch_port::pg::{PgRx, PgTx};
use vswitch_wire::MacAddr;
use vswitch_worker::{IdleMode, Worker};

fn tables(peer_of_0: u32) -> Tables {
    let mut t = Tables::default();
    for i in 0..3 {
        let mode = if i == 0 { IfMode::XConnect { peer: peer_of_0 } } else { IfMode::XConnect { peer: 0 } };
        t.set_interface(Interface::port(i, &format!("pg{i}"), i, MacAddr([2, 0, 0, 0, 0, i as u8]), mode));
    }
    t
}

fn worker(pool: &Arc<BufferPool>, snapshot: &Arc<ArcSwap<Tables>>, limit: Option<u64>) -> Worker {
    let shared = WorkerShared::default();
    let graph = standard_graph(&shared).build().unwrap();
    let mut w = Worker::new(0, graph, pool.worker(), Arc::clone(snapshot), shared);
    w.add_rx(Box::new(PgRx::new(0, vec![vec![0xab; 64]], limit)), "pg-input").unwrap();
    for port in 0..3 {
        w.set_tx(port, Box::new(PgTx::new(0)));
    }
    w
}

#[test]
fn bursts_flow_end_to_end_and_buffers_come_back() {
    let pool = BufferPool::new(&BufferPoolConfig { buffers: 2048, data_size: 2048, prefer_huge: false }).unwrap();
    let snapshot = Arc::new(ArcSwap::from_pointee(tables(1)));
    let mut w = worker(&pool, &snapshot, Some(100_000));
    while w.poll_once() > 0 {}
    assert_eq!(w.tx_queue(1).unwrap().stats().packets, 100_000);
    assert_eq!(w.stats().rx_packets.get(), 100_000);
    assert!(w.stats().loops.get() >= 100_000 / 256, "bursts of at most 256");
    w.release_buffers();
    assert_eq!(pool.available(), 2048);
}

#[test]
fn a_new_snapshot_is_picked_up_while_running() {
    let pool = BufferPool::new(&BufferPoolConfig { buffers: 2048, data_size: 2048, prefer_huge: false }).unwrap();
    let snapshot = Arc::new(ArcSwap::from_pointee(tables(1)));
    let mut w = worker(&pool, &snapshot, None);
    w.set_idle(IdleMode::Poll);
    let stop = Arc::new(AtomicBool::new(false));
    let handle = w.spawn(Arc::clone(&stop)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    snapshot.store(Arc::new(tables(2)));
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let mut w = handle.join().unwrap();
    let to1 = w.tx_queue(1).unwrap().stats().packets;
    let to2 = w.tx_queue(2).unwrap().stats().packets;
    assert!(to1 > 0 && to2 > 0, "before and after the change: {to1} {to2}");
    assert_eq!(w.stats().snapshots.get(), 2);
    assert_eq!(to1 + to2, w.stats().rx_packets.get());
    w.release_buffers();
    assert_eq!(pool.available(), 2048);
}

#[test]
fn an_idle_adaptive_worker_sleeps_instead_of_spinning() {
    let pool = BufferPool::new(&BufferPoolConfig { buffers: 512, data_size: 2048, prefer_huge: false }).unwrap();
    let snapshot = Arc::new(ArcSwap::from_pointee(tables(1)));
    let mut w = worker(&pool, &snapshot, Some(0));
    w.set_idle(IdleMode::Adaptive { max_sleep: Duration::from_millis(1) });
    let stop = Arc::new(AtomicBool::new(false));
    let handle = w.spawn(Arc::clone(&stop)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let w = handle.join().unwrap();
    let (loops, sleeps) = (w.stats().loops.get(), w.stats().sleeps.get());
    // A spinning loop turns millions of times in 300 ms; one that sleeps up
    // to 1 ms after 1024 empty polls turns a few thousand times.
    assert!(sleeps > 50, "sleeps={sleeps}");
    assert!(loops < 200_000, "loops={loops}: the idle worker spun");
}

#[test]
fn commands_add_and_remove_queues_between_turns() {
    let pool = BufferPool::new(&BufferPoolConfig { buffers: 2048, data_size: 2048, prefer_huge: false }).unwrap();
    let snapshot = Arc::new(ArcSwap::from_pointee(tables(1)));
    let mut w = worker(&pool, &snapshot, Some(1000));
    let commands = w.commands();
    commands
        .send(Box::new(|w: &mut Worker| {
            w.remove_rx(0);
        }))
        .unwrap();
    assert_eq!(w.poll_once(), 0, "the command ran before polling");
    commands
        .send(Box::new(|w: &mut Worker| {
            w.add_rx(Box::new(PgRx::new(0, vec![vec![0xcd; 64]], Some(10))), "pg-input").unwrap();
        }))
        .unwrap();
    assert_eq!(w.poll_once(), 10);
    assert_eq!(w.tx_queue(1).unwrap().stats().packets, 10);
    assert!(w.remove_tx(1).is_some());
    w.release_buffers();
    assert_eq!(pool.available(), 2048);
}
