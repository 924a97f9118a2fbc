//! Lookup cost, best of 15 rounds (robust against a noisy shared machine):
//! `cargo run --release -p vswitch-fib --example lookup_ns`.
//! The criterion benches (`cargo bench -p vswitch-fib`) measure the same
//! things with statistics; this prints one compact table.

#[path = "../benches/support/routes.rs"]
mod routes;

use std::hint::black_box;
use std::time::Instant;

use vswitch_fib::adj::{AdjConfig, AdjWriter, Adjacency};
use vswitch_fib::ip4::{Ip4LpmConfig, Ip4LpmWriter};
use vswitch_fib::ip6::{Ip6LpmConfig, Ip6LpmWriter};
use vswitch_fib::lb::{flow_hash_v4, LbConfig, LbWriter, Path};
use vswitch_fib::quiesce::Quiescence;

/// Best-of-15 nanoseconds per element of `f`, which processes `n` elements.
fn best(n: usize, mut f: impl FnMut()) -> f64 {
    let reps = ((1 << 22) / n).max(1);
    (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_nanos() as f64 / (reps * n) as f64
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let q = Quiescence::new();
    let mut w = Ip4LpmWriter::new(Ip4LpmConfig::default(), q.clone()).unwrap();
    w.insert_bulk(routes::internet_v4(1_000_000, 42)).unwrap();
    let t = w.table().clone();
    let mut rng = routes::Rng::new(7);
    let cold: Vec<u32> = (0..1 << 20).map(|_| rng.next_u32()).collect();
    let hot: Vec<u32> = (0..1 << 16).map(|i| cold[i % 4096]).collect();
    let mut out = vec![None; 256];
    println!("IPv4, 1M Internet-like routes:");
    for (name, addrs) in [("4k hot", &hot), ("64k random", &cold[..1 << 16].to_vec()), ("1M random", &cold)] {
        let single = best(addrs.len(), || {
            let mut acc = 0u32;
            for &a in addrs.iter() {
                acc = acc.wrapping_add(t.lookup(black_box(a)).unwrap_or(0));
            }
            black_box(acc);
        });
        let batch = best(addrs.len(), || {
            for c in addrs.chunks(256) {
                t.lookup_batch(black_box(c), &mut out);
                black_box(&out);
            }
        });
        println!("  {name:>10} addresses: single {single:6.2} ns   batch256 {batch:6.2} ns");
    }
    let chain = best(1 << 16, || {
        let mut x = 0u32;
        for &a in &cold[..1 << 16] {
            x = t.lookup(a ^ ((x & 1) << 31)).unwrap_or(0);
        }
        black_box(x);
    });
    println!("  dependent chain (latency), 64k random: {chain:6.2} ns");
    drop(w);

    for (name, set) in
        [("random /32-/64", routes::random_v6(100_000, 43)), ("Internet-like", routes::internet_v6(100_000, 44))]
    {
        let mut w = Ip6LpmWriter::new(Ip6LpmConfig::default(), q.clone()).unwrap();
        w.insert_bulk(set.iter().copied()).unwrap();
        let t = w.table().clone();
        let addrs: Vec<u128> = (0..1 << 16)
            .map(|_| {
                let (p, _) = set[rng.below(set.len() as u32) as usize];
                let host = ((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())) & !u128::from(p.netmask());
                u128::from(p.network()) | host
            })
            .collect();
        let single = best(addrs.len(), || {
            let mut acc = 0u32;
            for &a in &addrs {
                acc = acc.wrapping_add(t.lookup(black_box(a)).unwrap_or(0));
            }
            black_box(acc);
        });
        let batch = best(addrs.len(), || {
            for c in addrs.chunks(256) {
                t.lookup_batch(black_box(c), &mut out);
                black_box(&out);
            }
        });
        println!(
            "IPv6, 100k {name} routes, 64k addresses inside them: single {single:6.2} ns   batch256 {batch:6.2} ns"
        );
    }

    let mut aw = AdjWriter::new(AdjConfig::default(), q.clone()).unwrap();
    let adjs: Vec<u32> =
        (0..4096u32).map(|i| aw.add(Adjacency::with_rewrite(i, 1500, &[i as u8; 14]).unwrap()).unwrap()).collect();
    let at = aw.table().clone();
    let idx: Vec<u32> = (0..1 << 16).map(|_| adjs[rng.below(4096) as usize]).collect();
    let adj = best(idx.len(), || {
        let mut acc = 0u32;
        for &i in &idx {
            let a = at.get(black_box(i));
            acc = acc.wrapping_add(a.sw_if ^ u32::from(a.rewrite[0]));
        }
        black_box(acc);
    });
    println!("adjacency get (4k adjacencies, random): {adj:6.2} ns");

    let mut lw = LbWriter::new(LbConfig::default(), q).unwrap();
    let single: Vec<u32> = (0..1024).map(|i| lw.add(&[Path::new(i, 1)]).unwrap()).collect();
    let ecmp4: Vec<u32> =
        (0..1024).map(|i| lw.add(&(0..4).map(|k| Path::new(i * 4 + k, 1)).collect::<Vec<_>>()).unwrap()).collect();
    let ucmp64: Vec<u32> =
        (0..1024).map(|i| lw.add(&[Path::new(i, 3), Path::new(i + 1, 1), Path::new(i + 2, 1)]).unwrap()).collect();
    let lt = lw.table().clone();
    let hashes: Vec<u32> = (0..1 << 16).map(|_| rng.next_u32()).collect();
    for (name, set) in [("single", &single), ("4-way", &ecmp4), ("64-bucket", &ucmp64)] {
        let ns = best(hashes.len(), || {
            let mut acc = 0u32;
            for (i, &h) in hashes.iter().enumerate() {
                acc = acc.wrapping_add(lt.choose(set[i & 1023], black_box(h)));
            }
            black_box(acc);
        });
        println!("lb choose {name:>9} (1024 objects): {ns:6.2} ns");
    }
    let fh = best(hashes.len(), || {
        let mut acc = 0u32;
        for &h in &hashes {
            acc ^= flow_hash_v4(black_box(h), h.rotate_left(7), 6, h as u16, 443);
        }
        black_box(acc);
    });
    println!("flow_hash_v4: {fh:6.2} ns");
}
