//! Loads 1M Internet-like IPv4 routes and 100k IPv6 routes and prints load
//! times and memory. Run with
//! `cargo run --release -p vswitch-fib --example load_1m [n_ip4 [n_ip6]]`.

#[path = "../benches/support/routes.rs"]
mod routes;

use std::time::Instant;

use vswitch_fib::ip4::{Ip4LpmConfig, Ip4LpmWriter};
use vswitch_fib::ip6::{Ip6LpmConfig, Ip6LpmWriter};
use vswitch_fib::quiesce::Quiescence;

const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    let mut args = std::env::args().skip(1).map(|s| s.parse::<usize>().expect("a count"));
    let n4 = args.next().unwrap_or(1_000_000);
    let n6 = args.next().unwrap_or(100_000);
    let q = Quiescence::new();

    let r4 = routes::internet_v4(n4, 42);
    let rss0 = routes::rss_bytes();
    let mut w = Ip4LpmWriter::new(Ip4LpmConfig::default(), q.clone()).unwrap();
    let t = Instant::now();
    for (p, v) in &r4 {
        w.insert(*p, *v).unwrap();
    }
    let dt = t.elapsed();
    let st = w.stats();
    println!(
        "ip4 insert one by one: {} routes ({} distinct) in {:.3} s ({:.0} ns/route); \
         tbl8 groups {}; table+RIB {:.1} MiB (RIB {:.1} MiB); RSS +{:.1} MiB",
        r4.len(),
        st.routes,
        dt.as_secs_f64(),
        dt.as_nanos() as f64 / r4.len() as f64,
        st.tbl8_in_use,
        st.memory_bytes as f64 / MIB,
        w.rib().mem_size() as f64 / MIB,
        routes::rss_bytes().saturating_sub(rss0) as f64 / MIB
    );
    drop(w);

    let mut w = Ip4LpmWriter::new(Ip4LpmConfig::default(), q.clone()).unwrap();
    let t = Instant::now();
    w.insert_bulk(r4.iter().copied()).unwrap();
    let dt = t.elapsed();
    println!(
        "ip4 insert_bulk:       {} routes in {:.3} s ({:.0} ns/route)",
        r4.len(),
        dt.as_secs_f64(),
        dt.as_nanos() as f64 / r4.len() as f64
    );
    let t = Instant::now();
    w.clear();
    println!(
        "ip4 remove all:        {:.3} s; tbl8 groups in use after: {}",
        t.elapsed().as_secs_f64(),
        w.stats().tbl8_in_use
    );
    drop(w);

    for (name, set) in [
        ("random /32-/64", routes::random_v6(n6, 43)),
        ("Internet-like (2000::/3, mostly /48)", routes::internet_v6(n6, 44)),
    ] {
        for l0_bits in [24u8, 16] {
            let rss0 = routes::rss_bytes();
            let cfg = Ip6LpmConfig { l0_bits, ..Ip6LpmConfig::default() };
            let mut w = Ip6LpmWriter::new(cfg, q.clone()).unwrap();
            let t = Instant::now();
            for (p, v) in &set {
                w.insert(*p, *v).unwrap();
            }
            let dt = t.elapsed();
            let s = w.stats();
            let table = s.memory_bytes - w.rib().mem_size();
            println!(
                "ip6 {name}, l0_bits {l0_bits}: {} routes in {:.3} s ({:.0} ns/route); groups {} \
                 records {}; table {:.1} MiB (+RIB {:.1} MiB); RSS +{:.1} MiB",
                s.routes,
                dt.as_secs_f64(),
                dt.as_nanos() as f64 / set.len() as f64,
                s.groups_in_use,
                s.records_in_use,
                table as f64 / MIB,
                w.rib().mem_size() as f64 / MIB,
                routes::rss_bytes().saturating_sub(rss0) as f64 / MIB
            );
        }
    }
}
