//! Runs scenarios on one worker and reports what it measured.

use crate::scenarios::{self, Scenario};
use arc_swap::ArcSwap;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vswitch_graph::NodeStatsSnapshot;
use vswitch_nodes::{standard_graph, WorkerShared};
use vswitch_packet::{clock, BufferPool, BufferPoolConfig};
use vswitch_port::pg::{PgRx, PgTx};
use vswitch_worker::{IdleMode, Worker};

/// Options of `vswitch-bench graph`.
#[derive(clap::Args)]
pub struct Args {
    /// Scenarios to run (default: all).
    #[arg(long = "scenario", short = 's')]
    scenarios: Vec<String>,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// One JSON object per scenario on stdout.
    #[arg(long)]
    json: bool,
    /// Smaller tables (for a smoke test): 10k IPv4 routes, 10k IPv6.
    #[arg(long)]
    quick: bool,
    /// Pin the worker to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
}

#[derive(Serialize)]
struct NodeResult {
    name: &'static str,
    calls: u64,
    packets: u64,
    vectors_per_call: f64,
    clocks_per_packet: f64,
}

#[derive(Serialize)]
struct Result {
    scenario: String,
    mpps: f64,
    ns_per_packet: f64,
    cycles_per_packet: f64,
    graph_cycles_per_packet: f64,
    packets: u64,
    dropped: u64,
    seconds: f64,
    tsc_hz: u64,
    setup_seconds: f64,
    setup: String,
    nodes: Vec<NodeResult>,
}

pub fn run(args: &Args) -> std::result::Result<(), String> {
    let names: Vec<String> = if args.scenarios.is_empty() {
        scenarios::ALL.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.clone()
    };
    for name in &names {
        let t0 = Instant::now();
        let scenario = scenarios::build(name, args.quick)?;
        let setup_seconds = t0.elapsed().as_secs_f64();
        let r = measure(name, scenario, args.seconds, args.cpu, setup_seconds)?;
        if args.json {
            println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
        } else {
            print_table(&r);
        }
    }
    Ok(())
}

fn measure(
    name: &str,
    s: Scenario,
    seconds: f64,
    cpu: Option<usize>,
    setup_seconds: f64,
) -> std::result::Result<Result, String> {
    let pool =
        BufferPool::new(&BufferPoolConfig { buffers: 16 * 1024, ..Default::default() }).map_err(|e| e.to_string())?;
    let shared = WorkerShared::default();
    let graph = standard_graph(&shared).build().map_err(|e| e.to_string())?;
    let snapshot = Arc::new(ArcSwap::from(Arc::clone(&s.tables)));
    let mut w = Worker::new(0, graph, pool.worker(), snapshot, shared);
    w.add_rx(Box::new(PgRx::new(s.rx_port, s.templates, None)), "pg-input")?;
    for port in 0..s.ports {
        w.set_tx(port, Box::new(PgTx::new(0)));
    }
    if let Some(reader) = s.reader {
        w.set_reader(reader);
    }
    w.set_idle(IdleMode::Poll);
    if let Some(cpu) = cpu {
        vswitch_worker::pin_current_thread(cpu);
    }
    // Warm up: caches, TLBs, the MAC table's timestamps.
    run_for(&mut w, Duration::from_millis(300));
    let before = w.graph().stats().snapshot();
    let tx_before = w.tx_queue(s.tx_port).map(|q| q.stats().packets).unwrap_or(0);
    let rx_before = w.stats().rx_packets.get();
    let (t0, c0) = (Instant::now(), clock::now());
    run_for(&mut w, Duration::from_secs_f64(seconds));
    let (secs, cycles) = (t0.elapsed().as_secs_f64(), clock::now() - c0);
    let after = w.graph().stats().snapshot();
    let rx = w.stats().rx_packets.get() - rx_before;
    let tx = w.tx_queue(s.tx_port).map(|q| q.stats().packets).unwrap_or(0) - tx_before;
    w.release_buffers();
    if tx == 0 {
        return Err(format!("{name}: nothing reached the sink port {}: the scenario is broken", s.tx_port));
    }
    let nodes: Vec<NodeResult> = diff(&before, &after)
        .into_iter()
        .filter(|n| n.packets > 0)
        .map(|n| NodeResult {
            name: n.name,
            calls: n.calls,
            packets: n.packets,
            vectors_per_call: n.vectors_per_call(),
            clocks_per_packet: n.clocks_per_packet(),
        })
        .collect();
    let graph_clocks: u64 = diff(&before, &after).iter().map(|n| n.clocks).sum();
    Ok(Result {
        scenario: name.to_string(),
        mpps: tx as f64 / secs / 1e6,
        ns_per_packet: secs * 1e9 / tx as f64,
        cycles_per_packet: cycles as f64 / tx as f64,
        graph_cycles_per_packet: graph_clocks as f64 / rx as f64,
        packets: tx,
        dropped: rx - tx,
        seconds: secs,
        tsc_hz: clock::ticks_per_second(),
        setup_seconds,
        setup: s.description,
        nodes,
    })
}

fn run_for(w: &mut Worker, d: Duration) {
    let end = Instant::now() + d;
    loop {
        for _ in 0..256 {
            w.poll_once();
        }
        if Instant::now() >= end {
            break;
        }
    }
}

fn diff(before: &[NodeStatsSnapshot], after: &[NodeStatsSnapshot]) -> Vec<NodeStatsSnapshot> {
    after
        .iter()
        .zip(before)
        .map(|(a, b)| NodeStatsSnapshot {
            name: a.name,
            calls: a.calls - b.calls,
            packets: a.packets - b.packets,
            clocks: a.clocks - b.clocks,
            errors: Vec::new(),
        })
        .collect()
}

fn print_table(r: &Result) {
    println!("scenario {} ({})", r.scenario, r.setup);
    println!(
        "  {:.2} Mpps, {:.1} ns/packet, {:.1} cycles/packet ({:.1} in graph nodes), {} packets in {:.2} s, {} dropped",
        r.mpps, r.ns_per_packet, r.cycles_per_packet, r.graph_cycles_per_packet, r.packets, r.seconds, r.dropped
    );
    println!("  {:<24} {:>12} {:>14} {:>10} {:>14}", "Name", "Calls", "Vectors", "Vec/Call", "Clocks/Pkt");
    for n in &r.nodes {
        println!(
            "  {:<24} {:>12} {:>14} {:>10.1} {:>14.1}",
            n.name, n.calls, n.packets, n.vectors_per_call, n.clocks_per_packet
        );
    }
    println!();
}
