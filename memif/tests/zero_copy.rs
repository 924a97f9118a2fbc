//! The zero-copy client ([`InterfaceConfig::zero_copy`], [`ZcQueue`])
//! against our own server: frames read in place (chained ones too),
//! frames built in place, received frames forwarded without a copy (the
//! MAC addresses swapped in place), a full transmit ring, the pool never
//! losing a buffer, reconnects with the same queue handle, interrupt
//! mode, and the configuration checks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use vswitch_memif::{
    Client, ClientConfig, Interface, InterfaceConfig, RxMode, RxQueue, Server, ServerConfig, SocketAddr, TxQueue,
    ZcQueue, ZcVerdict,
};

static SEQ: AtomicU32 = AtomicU32::new(0);
const T: Duration = Duration::from_secs(10);

fn sock_path() -> PathBuf {
    std::env::temp_dir().join(format!("vswm-zc-{}-{}.sock", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)))
}

fn client(addr: &SocketAddr) -> Client {
    let mut cfg = ClientConfig::new(addr.clone());
    cfg.reconnect_min = Duration::from_millis(10);
    cfg.reconnect_max = Duration::from_millis(100);
    Client::new(cfg).unwrap()
}

fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i as u32).wrapping_mul(13).wrapping_add(seq) as u8).collect();
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    f[12..16].copy_from_slice(&seq.to_be_bytes());
    f
}

fn swapped(f: &[u8]) -> Vec<u8> {
    let mut v = f.to_vec();
    let (a, b) = v.split_at_mut(6);
    a.swap_with_slice(&mut b[..6]);
    v
}

struct Pair {
    _server: Server,
    _client: Client,
    si: Interface,
    ci: Interface,
    srx: RxQueue,
    stx: TxQueue,
    zq: ZcQueue,
}

fn pair(cfg: InterfaceConfig) -> Pair {
    let addr = SocketAddr::Path(sock_path());
    let server = Server::bind(ServerConfig::new(addr.clone())).unwrap();
    let si = server.add_interface(InterfaceConfig::new(cfg.id)).unwrap();
    let c = client(&addr);
    let ci = c.add_interface(InterfaceConfig { zero_copy: true, ..cfg }).unwrap();
    assert!(ci.take_queues().is_none(), "a zero-copy interface has no copy-mode queues");
    let mut zqs = ci.take_zc_queues().unwrap();
    assert!(ci.take_zc_queues().is_none());
    assert!(ci.wait_up(T) && si.wait_up(T), "{:?}", ci.info());
    let (mut srx, mut stx) = si.take_queues().unwrap();
    Pair { _server: server, _client: c, si, ci, srx: srx.remove(0), stx: stx.remove(0), zq: zqs.remove(0) }
}

/// Server → zero-copy client (read in place) → forwarded back with the
/// MACs swapped in place → server: byte for byte, chained frames too,
/// many times round the rings.
#[test]
fn frames_are_read_in_place_and_forwarded_without_a_copy() {
    let mut p = pair(InterfaceConfig { log2_ring_size: 8, buffer_size: 1024, ..InterfaceConfig::new(0) });
    let sizes = [60usize, 64, 500, 1023, 1024, 1025, 2048, 3000, 9000];
    let n = 5000u32;
    let (mut sent, mut seen, mut back) = (0u32, 0u32, 0u32);
    let mut segs_seen = 0;
    let deadline = Instant::now() + T;
    let mut batch = Vec::new();
    while back < n {
        assert!(Instant::now() < deadline, "stalled: sent {sent} seen {seen} back {back}: {:?}", p.ci.counters());
        if sent < n && sent - back < 64 {
            batch.clear();
            batch.extend((sent..(sent + 16).min(n)).map(|s| frame(s, sizes[s as usize % sizes.len()])));
            sent += p.stx.tx_burst(batch.iter().map(|f| &f[..])) as u32;
        }
        p.zq.rx_burst(64, |f| {
            let want = frame(seen, sizes[seen as usize % sizes.len()]);
            assert_eq!(f.len(), want.len());
            let mut head = [0u8; 16];
            assert!(f.read(0, &mut head));
            assert_eq!(&head[..], &want[..16], "frame {seen}");
            assert_eq!(f.to_vec(), want, "frame {seen}");
            segs_seen = segs_seen.max(f.segments());
            assert!(f.swap(0, 6, 6));
            seen += 1;
            ZcVerdict::Forward
        });
        p.srx.rx_burst(64, |f| {
            let want = swapped(&frame(back, sizes[back as usize % sizes.len()]));
            assert_eq!(f.to_vec(), want, "frame {back} back");
            back += 1;
            true
        });
    }
    assert_eq!(segs_seen, 9, "a 9000-byte frame spans nine 1024-byte buffers");
    let c = p.ci.counters();
    assert_eq!((c.rx.packets, c.tx.packets), (u64::from(n), u64::from(n)));
    assert_eq!(c.rx.bad_length + c.rx.faults + c.tx.faults + c.tx.ring_full, 0, "{c:?}");
    // Every buffer comes home: the M2S ring fully posted, the rest free.
    let ok = wait(|| {
        p.zq.rx_burst(1, |_| ZcVerdict::Release);
        p.zq.free_buffers() == 256
    });
    assert!(ok, "free {}", p.zq.free_buffers());
    assert_eq!(p.si.counters().rx.packets, u64::from(n));
}

fn wait(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Frames built in place in the client's buffers; lengths out of range
/// refused and counted without losing the buffer; the ring full counted.
#[test]
fn frames_are_built_in_place() {
    let mut p = pair(InterfaceConfig { log2_ring_size: 8, buffer_size: 2048, ..InterfaceConfig::new(1) });
    let mut k = 0u32;
    let n = p.zq.tx_burst(10, |b| {
        assert_eq!(b.capacity(), 2048);
        let f = frame(k, 60 + k as usize * 100);
        assert!(b.write(0, &f));
        assert!(!b.write(2000, &[0; 49]), "past the buffer");
        let mut back = vec![0u8; f.len()];
        assert!(b.read(0, &mut back) && back == f);
        k += 1;
        Some(f.len())
    });
    assert_eq!(n, 10);
    let mut got = Vec::new();
    assert!(wait(|| {
        p.srx.rx_burst(64, |f| {
            got.push(f.to_vec());
            true
        });
        got.len() == 10
    }));
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g, &frame(i as u32, 60 + i * 100));
    }
    // Length 0 and longer than a buffer: refused, counted, buffer kept.
    p.zq.tx_burst(0, |_| None); // takes back what the server consumed
    let free = p.zq.free_buffers();
    assert_eq!(free, 256);
    let mut lens = [0usize, 2049].into_iter();
    assert_eq!(p.zq.tx_burst(2, |_| lens.next()), 0);
    assert_eq!(p.zq.tx_counters().bad_length, 2);
    assert_eq!(p.zq.free_buffers(), free);
    // The server does not read: 256 frames fill the ring, then ring_full.
    let before = p.zq.tx_counters().ring_full;
    let sent = p.zq.tx_burst(1000, |b| {
        b.write(0, &frame(0, 60));
        Some(60)
    });
    assert_eq!(sent, 256);
    assert_eq!(p.zq.tx_counters().ring_full, before + 1);
    // Forwarding into the full ring drops the frame, keeps the buffers.
    assert_eq!(p.stx.tx_burst([&frame(1, 100)[..]]), 1);
    let mut fwd = 0;
    assert!(wait(|| {
        fwd += p.zq.rx_burst(8, |_| ZcVerdict::Forward);
        fwd == 1
    }));
    assert_eq!(p.zq.tx_counters().ring_full, before + 2);
    // The server drains: every buffer comes back.
    let mut drained = 0;
    assert!(wait(|| {
        drained += p.srx.rx_burst(256, |_| true);
        p.zq.tx_burst(0, |_| None);
        drained == 256 && p.zq.free_buffers() == 256
    }));
    // `Stop` leaves the frame for the next burst.
    assert_eq!(p.stx.tx_burst([&frame(7, 70)[..]]), 1);
    let mut stops = 0;
    assert!(wait(|| {
        p.zq.rx_burst(8, |_| {
            stops += 1;
            ZcVerdict::Stop
        });
        stops >= 2
    }));
    let mut got = None;
    assert_eq!(
        p.zq.rx_burst(8, |f| {
            got = Some(f.to_vec());
            ZcVerdict::Release
        }),
        1
    );
    assert_eq!(got.unwrap(), frame(7, 70));
}

/// The same queue handle across server restarts; interrupt mode wakes a
/// sleeping zero-copy worker.
#[test]
fn reconnects_and_interrupts() {
    let addr = SocketAddr::Path(sock_path());
    let c = client(&addr);
    let ci = c
        .add_interface(InterfaceConfig { zero_copy: true, rx_mode: RxMode::Interrupt, ..InterfaceConfig::new(2) })
        .unwrap();
    let mut zq = ci.take_zc_queues().unwrap().remove(0);
    assert_eq!(zq.tx_burst(4, |_| Some(60)), 0);
    assert!(zq.tx_counters().no_link >= 1);
    for round in 0..3u32 {
        let s = Server::bind(ServerConfig::new(addr.clone())).unwrap();
        let si = s.add_interface(InterfaceConfig { rx_mode: RxMode::Interrupt, ..InterfaceConfig::new(2) }).unwrap();
        assert!(ci.wait_connects(u64::from(round), T) && si.wait_up(T), "round {round}: {:?}", ci.info());
        let (mut srx, mut stx) = si.take_queues().unwrap();
        let f = frame(round, 100);
        let waiter = std::thread::spawn(move || {
            let mut got = None;
            let deadline = Instant::now() + T;
            while got.is_none() && Instant::now() < deadline {
                zq.wait(1000);
                zq.rx_burst(8, |fr| {
                    got = Some(fr.to_vec());
                    ZcVerdict::Forward
                });
            }
            (zq, got)
        });
        assert_eq!(stx[0].tx_burst([&f[..]]), 1);
        let (q, got) = waiter.join().unwrap();
        zq = q;
        assert_eq!(got.as_deref(), Some(&f[..]), "round {round}");
        let mut back = None;
        assert!(wait(|| {
            srx[0].rx_burst(8, |fr| {
                back = Some(fr.to_vec());
                true
            });
            back.is_some()
        }));
        assert_eq!(back.unwrap(), f);
        assert!(zq.rx_counters().interrupts >= 1);
        drop((srx, stx, si, s));
        assert!(wait(|| !ci.is_up()));
    }
}

#[test]
fn zero_copy_is_for_clients_only() {
    let addr = SocketAddr::Path(sock_path());
    let s = Server::bind(ServerConfig::new(addr.clone())).unwrap();
    let e = s.add_interface(InterfaceConfig { zero_copy: true, ..InterfaceConfig::new(0) }).unwrap_err();
    assert!(e.to_string().contains("zero-copy is for the client role"), "{e}");
    let si = s.add_interface(InterfaceConfig::new(0)).unwrap();
    assert!(si.take_zc_queues().is_none());
}
