//! echo_bench: copy-mode against zero-copy client echo, measured. Our
//! server and a client in one process; one thread drives both ends so the
//! number is the code's cost, not the scheduler's (two busy threads on a
//! shared machine measure mostly the latter). Per round: the server sends
//! a burst, the client echoes it with the MAC addresses swapped, the server
//! takes the echoes back. The client echoes either by copying each frame
//! out and back in (copy mode, as `echo_client` does) or in place
//! (`--zero-copy`: swap 12 bytes in the shared buffer and forward the
//! buffer itself).
//!
//! ```sh
//! cargo run --release -p vswitch-memif --example echo_bench -- [--zero-copy] [--size 1500] [--frames 2000000]
//! ```
//!
//! Prints ns per echoed frame (server tx + client echo + server rx), and
//! the client echo alone.

use std::time::{Duration, Instant};
use vswitch_memif::{Client, ClientConfig, InterfaceConfig, Server, ServerConfig, SocketAddr, ZcVerdict};

const BURST: usize = 64;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut zero_copy, mut size, mut total) = (false, 64usize, 2_000_000u64);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--zero-copy" => zero_copy = true,
            "--size" => size = args.next().and_then(|v| v.parse().ok()).expect("--size N"),
            "--frames" => total = args.next().and_then(|v| v.parse().ok()).expect("--frames N"),
            s => panic!("unknown argument {s}"),
        }
    }
    assert!((60..=2048).contains(&size), "--size 60..=2048 (one buffer)");
    let addr = SocketAddr::Abstract(format!("vswm-echo-bench-{}", std::process::id()).into());
    let server = Server::bind(ServerConfig::new(addr.clone())).unwrap();
    let si = server.add_interface(InterfaceConfig::new(0)).unwrap();
    let client = Client::new(ClientConfig::new(addr)).unwrap();
    let ci = client.add_interface(InterfaceConfig { zero_copy, ..InterfaceConfig::new(0) }).unwrap();
    assert!(ci.wait_up(Duration::from_secs(5)) && si.wait_up(Duration::from_secs(5)));
    let (mut srx, mut stx) = si.take_queues().unwrap();
    let (srx, stx) = (&mut srx[0], &mut stx[0]);
    let mut frame = vec![0u8; size];
    frame[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    let frames = vec![&frame[..]; BURST];

    let mut zq = zero_copy.then(|| ci.take_zc_queues().unwrap().remove(0));
    let mut cq = (!zero_copy).then(|| {
        let (mut r, mut t) = ci.take_queues().unwrap();
        (r.remove(0), t.remove(0))
    });
    let mut bufs = vec![[0u8; 2048]; BURST];
    let mut lens = [0usize; BURST];

    let (mut echoed, mut back) = (0u64, 0u64);
    let mut in_client = Duration::ZERO;
    let start = Instant::now();
    while back < total {
        stx.tx_burst(frames.iter().copied());
        let t0 = Instant::now();
        let n = match (&mut zq, &mut cq) {
            (Some(zq), _) => zq.rx_burst(BURST, |f| {
                f.swap(0, 6, 6);
                ZcVerdict::Forward
            }),
            (_, Some((rx, tx))) => {
                let mut n = 0;
                rx.rx_burst(BURST, |f| {
                    if let Some(l) = f.copy_to(&mut bufs[n]) {
                        lens[n] = l;
                        n += 1;
                    }
                    true
                });
                for b in &mut bufs[..n] {
                    let (d, s) = b.split_at_mut(6);
                    d.swap_with_slice(&mut s[..6]);
                }
                tx.tx_burst(bufs[..n].iter().zip(&lens[..n]).map(|(b, &l)| &b[..l]))
            }
            _ => unreachable!(),
        };
        in_client += t0.elapsed();
        echoed += n as u64;
        back += srx.rx_burst(BURST, |f| {
            std::hint::black_box(f.len());
            true
        }) as u64;
    }
    let el = start.elapsed();
    println!(
        "{} {size}-byte frames: {:.1} ns/frame round trip ({:.2} Mframes/s), client echo {:.1} ns/frame ({echoed} echoed)",
        if zero_copy { "zero-copy" } else { "copy     " },
        el.as_nanos() as f64 / back as f64,
        back as f64 / el.as_secs_f64() / 1e6,
        in_client.as_nanos() as f64 / echoed as f64,
    );
}
