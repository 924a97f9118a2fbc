//! Allocation throughput and latency against a 3-member etcd cluster.
//!
//! ```text
//! cargo run --release -p vswitch-ipam --example alloc_bench -- [--allocs N] [--concurrency 1,8,32]
//!     [--mode nodes|node|both] [--endpoints http://a:2379,...]
//! ```
//!
//! Starts its own 3-member cluster (see `vswitch_ipam::testing`; data under
//! `/dev/shm` unless `VSWITCH_IPAM_TEST_DIR` says otherwise) unless
//! `--endpoints` is given. For each concurrency, `N` ADDs with distinct
//! container ids are spread over that many concurrent allocators
//! (in-process library calls on a 2-thread tokio runtime), either each its
//! own node with its own etcd client (`nodes`) or all one node sharing one
//! allocator (`node`). Reports allocations per second, p50/p99/max latency
//! per ADD, and checks at the end that etcd holds exactly the returned
//! addresses with no duplicate.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use vswitch_cni_types::NetConf;
use vswitch_ipam::testing::EtcdCluster;
use vswitch_ipam::{AddRequest, Ipam, IpamConfig};

struct Args {
    allocs: usize,
    concurrency: Vec<usize>,
    modes: Vec<&'static str>,
    endpoints: Option<Vec<String>>,
}

fn args() -> Args {
    let mut a = Args { allocs: 4000, concurrency: vec![1, 8, 32], modes: vec!["nodes", "node"], endpoints: None };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--allocs" => a.allocs = v.parse().expect("--allocs N"),
            "--concurrency" => a.concurrency = v.split(',').map(|s| s.parse().expect("--concurrency 1,8,32")).collect(),
            "--mode" => {
                a.modes = match v.as_str() {
                    "nodes" => vec!["nodes"],
                    "node" => vec!["node"],
                    "both" => vec!["nodes", "node"],
                    _ => panic!("--mode nodes|node|both"),
                }
            }
            "--endpoints" => a.endpoints = Some(v.split(',').map(str::to_string).collect()),
            _ => panic!("unknown argument {k}"),
        }
    }
    a
}

fn config(endpoints: &[String], network: &str, node: &str) -> IpamConfig {
    let conf: NetConf = serde_json::from_value(json!({
        "cniVersion": "1.1.0", "name": network, "type": "bench",
        "ipam": {"type": "vswitch-ipam", "subnet": "10.0.0.0/16", "node": node,
                 "etcd": {"endpoints": endpoints}, "timeoutMs": 60000}
    }))
    .unwrap();
    IpamConfig::from_netconf(&conf).unwrap()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let a = args();
    let cluster;
    let endpoints = match &a.endpoints {
        Some(e) => e.clone(),
        None => {
            cluster = EtcdCluster::start(3).expect("start etcd");
            eprintln!("etcd: 3 members, data in {}", cluster.dir().display());
            cluster.endpoints()
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("| allocators | mode | ADDs | allocs/s | p50 ms | p99 ms | max ms | retries/ADD | duplicates |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (run, &conc) in a.concurrency.iter().enumerate() {
        for mode in &a.modes {
            if *mode == "node" && conc == 1 && a.modes.len() == 2 {
                continue; // one allocator: both modes are the same thing
            }
            let network = format!("bench-{run}-{mode}-{conc}");
            let ipams: Vec<Arc<Ipam>> = rt.block_on(async {
                let n = if *mode == "nodes" { conc } else { 1 };
                let mut v = Vec::new();
                for i in 0..n {
                    v.push(Arc::new(Ipam::open(config(&endpoints, &network, &format!("node-{i}"))).await.unwrap()));
                }
                v
            });
            let next = Arc::new(AtomicUsize::new(0));
            let total = a.allocs;
            let start = Instant::now();
            let results: Vec<(Vec<Duration>, Vec<std::net::IpAddr>)> = rt.block_on(async {
                let mut tasks = Vec::new();
                for t in 0..conc {
                    let ipam = ipams[t % ipams.len()].clone();
                    let next = next.clone();
                    tasks.push(tokio::spawn(async move {
                        let (mut lat, mut ips) = (Vec::new(), Vec::new());
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k >= total {
                                break;
                            }
                            let t0 = Instant::now();
                            let alloc = ipam.add(&AddRequest::new(format!("c{k}"), "eth0")).await.expect("ADD");
                            lat.push(t0.elapsed());
                            ips.push(alloc.ips[0].address.addr());
                        }
                        (lat, ips)
                    }));
                }
                let mut out = Vec::new();
                for t in tasks {
                    out.push(t.await.unwrap());
                }
                out
            });
            let elapsed = start.elapsed();
            let mut lat: Vec<Duration> = results.iter().flat_map(|(l, _)| l.iter().copied()).collect();
            lat.sort();
            let returned: Vec<std::net::IpAddr> = results.iter().flat_map(|(_, i)| i.iter().copied()).collect();
            let unique: HashSet<_> = returned.iter().copied().collect();
            let stored = rt.block_on(ipams[0].allocations()).unwrap();
            let stored_set: HashSet<_> = stored.iter().map(|(ip, _)| *ip).collect();
            let dups = (returned.len() - unique.len()) + (stored.len() - stored_set.len());
            assert_eq!(stored_set, unique, "etcd does not hold exactly the returned addresses");
            assert_eq!(dups, 0, "duplicates");
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let retries: u64 = ipams.iter().map(|i| i.retries()).sum();
            println!(
                "| {conc} | {} | {total} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {dups} |",
                if *mode == "nodes" { "one node each" } else { "one shared node" },
                total as f64 / elapsed.as_secs_f64(),
                ms(pct(&lat, 0.5)),
                ms(pct(&lat, 0.99)),
                ms(*lat.last().unwrap()),
                retries as f64 / total as f64,
            );
        }
    }
}
