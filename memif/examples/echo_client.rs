//! echo_client: the smallest useful CNF on memif. It connects to a memif
//! server (vswitch, VPP, or DPDK with `role=server`), and sends every
//! frame it receives back where it came from, with the Ethernet source and
//! destination swapped. It reconnects by itself whenever the server goes
//! away, and prints its counters every second.
//!
//! ```sh
//! cargo run --release -p vswitch-memif --example echo_client -- /run/vswitch/memif.sock
//! cargo run --release -p vswitch-memif --example echo_client -- @memif.sock --id 3 --secret s3cret --interrupt
//! ```
//!
//! Options: `--id N` (interface id, default 0), `--secret S`,
//! `--queues N` (queue pairs, default 1; one thread each), `--interrupt`
//! (sleep until the server signals instead of busy polling), `--seconds N`
//! (stop after N seconds; default: run forever), `--no-swap` (echo
//! unchanged), `--zero-copy` (read each frame in place in the shared
//! buffer, swap the MACs there and forward the buffer itself: no copy of
//! the frame; see `examples/echo_bench.rs` for the difference). A socket
//! starting with `@` is an abstract name.

use std::time::{Duration, Instant};
use vswitch_memif::{Client, ClientConfig, InterfaceConfig, RxMode, SocketAddr, ZcQueue, ZcVerdict};

/// Frames longer than this are dropped (counted by the queue).
const MAX_FRAME: usize = 9216;
const BURST: usize = 64;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut socket = None;
    let mut cfg = InterfaceConfig::new(0);
    let mut seconds = None;
    let mut swap = true;
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().unwrap_or_else(|| usage(&format!("{name} needs a value")));
        match a.as_str() {
            "--id" => cfg.id = val("--id").parse().unwrap_or_else(|_| usage("bad --id")),
            "--secret" => cfg.secret = Some(val("--secret")),
            "--queues" => cfg.queues = val("--queues").parse().unwrap_or_else(|_| usage("bad --queues")),
            "--seconds" => seconds = Some(val("--seconds").parse::<u64>().unwrap_or_else(|_| usage("bad --seconds"))),
            "--interrupt" => cfg.rx_mode = RxMode::Interrupt,
            "--no-swap" => swap = false,
            "--zero-copy" => cfg.zero_copy = true,
            s if s.starts_with("--") => usage(&format!("unknown option {s}")),
            s => socket = Some(SocketAddr::parse(s)),
        }
    }
    let socket = socket.unwrap_or_else(|| usage("no socket given"));
    cfg.name = format!("echo{}", cfg.id);
    cfg.max_frame_len = MAX_FRAME as u32;

    let client = Client::new(ClientConfig::new(socket.clone())).unwrap_or_else(|e| fail(e));
    let iface = client.add_interface(cfg.clone()).unwrap_or_else(|e| fail(e));
    eprintln!(
        "echo_client: interface {} on {socket}, {} queue pair(s){}",
        cfg.id,
        cfg.queues,
        if cfg.zero_copy { ", zero-copy" } else { "" }
    );

    let stop_at = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let interrupt = cfg.rx_mode == RxMode::Interrupt;
    let workers: Vec<_> = if cfg.zero_copy {
        let zqs = iface.take_zc_queues().expect("first take");
        zqs.into_iter().map(|zq| std::thread::spawn(move || zc_worker(zq, interrupt, swap, stop_at))).collect()
    } else {
        let (rxs, txs) = iface.take_queues().expect("first take");
        rxs.into_iter()
            .zip(txs)
            .map(|(mut rx, mut tx)| {
                let interrupt = cfg.rx_mode == RxMode::Interrupt;
                std::thread::spawn(move || {
                    // Reused buffers: no allocation per packet.
                    let mut bufs = vec![[0u8; MAX_FRAME]; BURST];
                    let mut lens = [0usize; BURST];
                    while stop_at.is_none_or(|t| Instant::now() < t) {
                        if interrupt {
                            rx.wait(200);
                        }
                        let mut n = 0;
                        rx.rx_burst(BURST, |f| {
                            if let Some(len) = f.copy_to(&mut bufs[n]) {
                                lens[n] = len;
                                n += 1;
                            }
                            true
                        });
                        if n == 0 {
                            if !interrupt {
                                std::hint::spin_loop();
                            }
                            continue;
                        }
                        if swap {
                            for b in &mut bufs[..n] {
                                let (dst, src) = b.split_at_mut(6);
                                dst.swap_with_slice(&mut src[..6]);
                            }
                        }
                        // Retry a little while the ring is full (the peer is behind);
                        // then drop the rest rather than stall receiving.
                        let mut sent = 0;
                        let mut tries = 0;
                        while sent < n && tries < 16 {
                            sent += tx.tx_burst(bufs[sent..n].iter().zip(&lens[sent..n]).map(|(b, &l)| &b[..l]));
                            tries += 1;
                        }
                    }
                })
            })
            .collect()
    };

    let mut last = iface.counters();
    while stop_at.is_none_or(|t| Instant::now() < t) {
        std::thread::sleep(Duration::from_secs(1));
        let c = iface.counters();
        let info = iface.info();
        eprintln!(
            "{} peer {:?}: rx {} pps ({} total), tx {} pps ({} total), drops {}, reason {:?}",
            info.state.name(),
            info.peer_name.unwrap_or_default(),
            c.rx.packets - last.rx.packets,
            c.rx.packets,
            c.tx.packets - last.tx.packets,
            c.tx.packets,
            c.rx.bad_region + c.rx.bad_offset + c.rx.bad_length + c.rx.oversize + c.tx.ring_full,
            info.remote_reason.or(info.last_error),
        );
        last = c;
    }
    for w in workers {
        let _ = w.join();
    }
}

/// Zero-copy echo: each frame is forwarded in its own shared buffer, the
/// MAC addresses swapped in place (12 bytes read and written, nothing
/// else touched).
fn zc_worker(mut zq: ZcQueue, interrupt: bool, swap: bool, stop_at: Option<Instant>) {
    while stop_at.is_none_or(|t| Instant::now() < t) {
        if interrupt {
            zq.wait(200);
        }
        let n = zq.rx_burst(BURST, |f| {
            if swap {
                f.swap(0, 6, 6);
            }
            ZcVerdict::Forward
        });
        if n == 0 && !interrupt {
            std::hint::spin_loop();
        }
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("echo_client: {msg}");
    eprintln!("usage: echo_client SOCKET [--id N] [--secret S] [--queues N] [--interrupt] [--seconds N] [--no-swap] [--zero-copy]");
    std::process::exit(2)
}

fn fail(e: std::io::Error) -> ! {
    eprintln!("echo_client: {e}");
    std::process::exit(1)
}
