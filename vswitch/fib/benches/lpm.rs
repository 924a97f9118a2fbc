//! FIB benchmarks: `cargo bench -p vswitch-fib --bench lpm`.
//!
//! Lookup benches run over a pre-generated vector of addresses; throughput is
//! reported per address (so criterion's time / element is ns per lookup).

#[path = "support/routes.rs"]
mod routes;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vswitch_fib::adj::{AdjConfig, AdjWriter, Adjacency};
use vswitch_fib::ip4::{Ip4LpmConfig, Ip4LpmWriter};
use vswitch_fib::ip6::{Ip6LpmConfig, Ip6LpmWriter};
use vswitch_fib::lb::{flow_hash_v4, LbConfig, LbWriter, Path};
use vswitch_fib::quiesce::Quiescence;

const N_ADDRS: usize = 1 << 16;

fn ip4(c: &mut Criterion) {
    let q = Quiescence::new();
    let mut w = Ip4LpmWriter::new(Ip4LpmConfig::default(), q).unwrap();
    w.insert_bulk(routes::internet_v4(1_000_000, 42)).unwrap();
    let t = Arc::clone(w.table());
    let mut rng = routes::Rng::new(7);
    let cold: Vec<u32> = (0..1 << 20).map(|_| rng.next_u32()).collect();
    let random = cold[..N_ADDRS].to_vec();
    let hot: Vec<u32> = (0..N_ADDRS).map(|i| cold[i % 4096]).collect();
    let hits = random.iter().filter(|&&a| t.lookup(a).is_some()).count();
    eprintln!(
        "ip4: 1M routes, {:.1} % of random addresses match; {:?}",
        100.0 * hits as f64 / N_ADDRS as f64,
        w.stats()
    );

    let mut g = c.benchmark_group("ip4_1M_routes");
    for (name, addrs) in [("random64k", &random), ("random1M", &cold), ("hot4k", &hot)] {
        g.throughput(Throughput::Elements(addrs.len() as u64));
        g.bench_function(format!("lookup_single/{name}"), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for &a in addrs.iter() {
                    acc = acc.wrapping_add(t.lookup(black_box(a)).unwrap_or(0));
                }
                acc
            })
        });
        let mut out = vec![None; 256];
        g.bench_function(format!("lookup_batch256/{name}"), |b| {
            b.iter(|| {
                for chunk in addrs.chunks(256) {
                    t.lookup_batch(black_box(chunk), &mut out);
                    black_box(&out);
                }
            })
        });
    }
    // Latency: each address depends on the previous answer (the top bit is
    // flipped by it), so lookups cannot overlap.
    g.throughput(Throughput::Elements(N_ADDRS as u64));
    g.bench_function("lookup_dependent_chain/random64k", |b| {
        b.iter(|| {
            let mut x = 0u32;
            for &a in &random {
                x = t.lookup(a ^ ((x & 1) << 31)).unwrap_or(0);
            }
            x
        })
    });
    g.finish();
}

fn ip4_load(c: &mut Criterion) {
    let r = routes::internet_v4(1_000_000, 42);
    let mut g = c.benchmark_group("ip4_load_1M");
    g.sample_size(10);
    g.throughput(Throughput::Elements(r.len() as u64));
    g.bench_function("insert_bulk", |b| {
        b.iter_batched(
            || Ip4LpmWriter::new(Ip4LpmConfig::default(), Quiescence::new()).unwrap(),
            |mut w| {
                w.insert_bulk(r.iter().copied()).unwrap();
                w
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("insert_one_by_one", |b| {
        b.iter_batched(
            || Ip4LpmWriter::new(Ip4LpmConfig::default(), Quiescence::new()).unwrap(),
            |mut w| {
                for &(p, v) in &r {
                    w.insert(p, v).unwrap();
                }
                w
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn ip6(c: &mut Criterion) {
    for (name, set) in [
        ("ip6_100k_random_32_64", routes::random_v6(100_000, 43)),
        ("ip6_100k_internet_like", routes::internet_v6(100_000, 44)),
    ] {
        let mut w = Ip6LpmWriter::new(Ip6LpmConfig::default(), Quiescence::new()).unwrap();
        w.insert_bulk(set.iter().copied()).unwrap();
        eprintln!("{name}: {:?}", w.stats());
        let t = Arc::clone(w.table());
        let mut rng = routes::Rng::new(9);
        // addresses inside random routes (host bits random): every lookup hits
        let addrs: Vec<u128> = (0..N_ADDRS)
            .map(|_| {
                let (p, _) = set[rng.below(set.len() as u32) as usize];
                let host = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())) & !u128::from(p.netmask());
                u128::from(p.network()) | host
            })
            .collect();
        assert!(addrs.iter().all(|&a| t.lookup(a).is_some()));
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(N_ADDRS as u64));
        g.bench_function("lookup_single_hit", |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for &a in &addrs {
                    acc = acc.wrapping_add(t.lookup(black_box(a)).unwrap_or(0));
                }
                acc
            })
        });
        let mut out = vec![None; 256];
        g.bench_function("lookup_batch256_hit", |b| {
            b.iter(|| {
                for chunk in addrs.chunks(256) {
                    t.lookup_batch(black_box(chunk), &mut out);
                    black_box(&out);
                }
            })
        });
        g.finish();
    }
}

fn adj_lb(c: &mut Criterion) {
    let q = Quiescence::new();
    let mut aw = AdjWriter::new(AdjConfig::default(), q.clone()).unwrap();
    let adjs: Vec<u32> =
        (0..4096u32).map(|i| aw.add(Adjacency::with_rewrite(i, 1500, &[i as u8; 14]).unwrap()).unwrap()).collect();
    let at = Arc::clone(aw.table());
    let mut rng = routes::Rng::new(11);
    let idx: Vec<u32> = (0..N_ADDRS).map(|_| adjs[rng.below(4096) as usize]).collect();
    let mut g = c.benchmark_group("adj");
    g.throughput(Throughput::Elements(N_ADDRS as u64));
    g.bench_function("get", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &i in &idx {
                let a = at.get(black_box(i));
                acc = acc.wrapping_add(a.sw_if ^ u32::from(a.rewrite[0]));
            }
            acc
        })
    });
    g.finish();

    let mut lw = LbWriter::new(LbConfig::default(), q).unwrap();
    let single: Vec<u32> = (0..1024).map(|i| lw.add(&[Path::new(i, 1)]).unwrap()).collect();
    let ecmp4: Vec<u32> =
        (0..1024).map(|i| lw.add(&(0..4).map(|k| Path::new(i * 4 + k, 1)).collect::<Vec<_>>()).unwrap()).collect();
    let ucmp64: Vec<u32> =
        (0..1024).map(|i| lw.add(&[Path::new(i, 3), Path::new(i + 1, 1), Path::new(i + 2, 1)]).unwrap()).collect();
    let lt = Arc::clone(lw.table());
    let hashes: Vec<u32> =
        (0..N_ADDRS).map(|_| flow_hash_v4(rng.next_u32(), rng.next_u32(), 6, rng.next_u32() as u16, 443)).collect();
    let mut g = c.benchmark_group("lb");
    g.throughput(Throughput::Elements(N_ADDRS as u64));
    for (name, set) in [("choose_single", &single), ("choose_ecmp4", &ecmp4), ("choose_ucmp64", &ucmp64)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for (i, &h) in hashes.iter().enumerate() {
                    acc = acc.wrapping_add(lt.choose(set[i & 1023], black_box(h)));
                }
                acc
            })
        });
    }
    let tuples: Vec<(u32, u32, u16)> =
        (0..N_ADDRS).map(|_| (rng.next_u32(), rng.next_u32(), rng.next_u32() as u16)).collect();
    g.bench_function("flow_hash_v4", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &(s, d, p) in &tuples {
                acc ^= flow_hash_v4(black_box(s), d, 6, p, 443);
            }
            acc
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = ip4, ip6, adj_lb, ip4_load
}
criterion_main!(benches);
