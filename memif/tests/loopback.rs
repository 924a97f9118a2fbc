//! A server and a client of this crate in one process: frames both ways,
//! chained frames, several interfaces on one socket, secrets, modes,
//! disconnect reasons, reconnects, interrupt mode, socket files.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use vswitch_memif::{
    Client, ClientConfig, Direction, Interface, InterfaceConfig, LinkState, Mode, RxMode, RxQueue, Server,
    ServerConfig, SocketAddr, TxQueue,
};

static SEQ: AtomicU32 = AtomicU32::new(0);

fn sock_path() -> PathBuf {
    std::env::temp_dir().join(format!("vswm-{}-{}.sock", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)))
}

fn server(addr: &SocketAddr) -> Server {
    let mut cfg = ServerConfig::new(addr.clone());
    cfg.handshake_timeout = Duration::from_secs(2);
    Server::bind(cfg).unwrap()
}

fn client(addr: &SocketAddr) -> Client {
    let mut cfg = ClientConfig::new(addr.clone());
    cfg.reconnect_min = Duration::from_millis(10);
    cfg.reconnect_max = Duration::from_millis(200);
    Client::new(cfg).unwrap()
}

const T: Duration = Duration::from_secs(10);

/// Sends `frames` on `tx` and collects as many from `rx`, alternating
/// until done (the receiver also posts buffers on M2S).
fn pump(tx: &mut TxQueue, rx: &mut RxQueue, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + T;
    let mut sent = 0;
    let mut got = Vec::new();
    while got.len() < frames.len() {
        if sent < frames.len() {
            sent += tx.tx_burst(frames[sent..].iter().map(|f| &f[..]));
        }
        rx.rx_burst(256, |f| {
            got.push(f.to_vec());
            true
        });
        assert!(Instant::now() < deadline, "only {} of {} frames arrived ({sent} sent)", got.len(), frames.len());
    }
    got
}

fn frames(sizes: &[usize], tag: u8) -> Vec<Vec<u8>> {
    sizes
        .iter()
        .enumerate()
        .map(|(k, &n)| (0..n).map(|i| (i as u8).wrapping_mul(31) ^ tag ^ k as u8).collect())
        .collect()
}

fn pair(queues: usize, buffer_size: u32, log2: u8) -> (Server, Client, Interface, Interface) {
    let path = sock_path();
    let addr = SocketAddr::Path(path);
    let s = server(&addr);
    let si = s.add_interface(InterfaceConfig { queues, ..InterfaceConfig::new(7) }).unwrap();
    let c = client(&addr);
    let ci = c
        .add_interface(InterfaceConfig { queues, buffer_size, log2_ring_size: log2, ..InterfaceConfig::new(7) })
        .unwrap();
    assert!(ci.wait_up(T), "client: {:?}", ci.info());
    assert!(si.wait_up(T), "server: {:?}", si.info());
    (s, c, si, ci)
}

#[test]
fn frames_of_many_sizes_cross_both_ways_on_every_queue_including_chained() {
    let (_s, _c, si, ci) = pair(3, 256, 8);
    let (mut srx, mut stx) = si.take_queues().unwrap();
    let (mut crx, mut ctx) = ci.take_queues().unwrap();
    assert!(si.take_queues().is_none());
    let mut sizes: Vec<usize> = (1..=300).chain([511, 512, 513, 1500, 2048, 4000, 9000, 16384, 60000, 65535]).collect();
    sizes.extend((0..200).map(|i| 60 + (i * 37) % 1500));
    for q in 0..3 {
        let up = frames(&sizes, q as u8);
        assert_eq!(pump(&mut ctx[q], &mut srx[q], &up), up, "client -> server, queue {q}");
        let down = frames(&sizes, 0x80 | q as u8);
        assert_eq!(pump(&mut stx[q], &mut crx[q], &down), down, "server -> client, queue {q}");
    }
    let sc = si.counters();
    let cc = ci.counters();
    let n = 3 * sizes.len() as u64;
    let bytes = 3 * sizes.iter().sum::<usize>() as u64;
    assert_eq!((sc.rx.packets, sc.rx.bytes, sc.tx.packets, sc.tx.bytes), (n, bytes, n, bytes));
    assert_eq!((cc.rx.packets, cc.rx.bytes, cc.tx.packets, cc.tx.bytes), (n, bytes, n, bytes));
    assert_eq!(sc.rx.bad_region + sc.rx.bad_offset + sc.rx.bad_length + sc.rx.faults, 0);
    assert_eq!(cc.rx.bad_region + cc.rx.bad_offset + cc.rx.bad_length + cc.rx.faults, 0);
    // Polling mode on both sides: the rings say so and nobody signalled.
    assert_eq!(sc.tx.interrupts + cc.tx.interrupts, 0);
    assert!(si.info().rings.iter().all(|r| r.interrupts_masked));
}

#[test]
fn big_rings_and_small_frames_stream_without_loss() {
    let (_s, _c, si, ci) = pair(1, 2048, 14);
    let (mut srx, mut stx) = si.take_queues().unwrap();
    let (mut crx, mut ctx) = ci.take_queues().unwrap();
    let f: Vec<Vec<u8>> = (0..100_000u32).map(|i| i.to_le_bytes().repeat(16)).collect();
    assert_eq!(pump(&mut ctx[0], &mut srx[0], &f), f);
    assert_eq!(pump(&mut stx[0], &mut crx[0], &f), f);
    assert_eq!(ci.info().rings[0].log2_ring_size, 14);
}

#[test]
fn too_long_frames_and_empty_frames_are_refused_and_counted() {
    let (_s, _c, si, ci) = pair(1, 2048, 8);
    let (mut srx, _) = si.take_queues().unwrap();
    let (_, mut ctx) = ci.take_queues().unwrap();
    let big = vec![0u8; 65536];
    let ok = vec![1u8; 100];
    assert_eq!(ctx[0].tx_burst([&big[..], &[][..], &ok[..]]), 3);
    assert_eq!(ctx[0].counters().bad_length, 2);
    let mut got = Vec::new();
    let deadline = Instant::now() + T;
    while got.is_empty() && Instant::now() < deadline {
        srx[0].rx_burst(8, |f| {
            got.push(f.to_vec());
            true
        });
    }
    assert_eq!(got, vec![ok]);
    // recv() into a short buffer drops and counts the frame.
    assert!(ctx[0].send(&[9u8; 300]));
    let mut small = [0u8; 100];
    let deadline = Instant::now() + T;
    while srx[0].counters().oversize == 0 && Instant::now() < deadline {
        assert_eq!(srx[0].recv(&mut small), None);
    }
    assert_eq!(srx[0].counters().oversize, 1);
}

#[test]
fn several_interface_ids_share_one_socket() {
    let addr = SocketAddr::Path(sock_path());
    let s = server(&addr);
    let c = client(&addr);
    let ids = [3u32, 11, 0xdead_beef];
    let sis: Vec<_> = ids.iter().map(|&id| s.add_interface(InterfaceConfig::new(id)).unwrap()).collect();
    let cis: Vec<_> = ids.iter().map(|&id| c.add_interface(InterfaceConfig::new(id)).unwrap()).collect();
    assert!(s.add_interface(InterfaceConfig::new(11)).is_err(), "duplicate id refused");
    for (si, ci) in sis.iter().zip(&cis) {
        assert!(ci.wait_up(T) && si.wait_up(T));
    }
    let mut sq: Vec<_> = sis.iter().map(|i| i.take_queues().unwrap()).collect();
    let mut cq: Vec<_> = cis.iter().map(|i| i.take_queues().unwrap()).collect();
    for k in 0..ids.len() {
        let f = frames(&[64, 1000, 3000], k as u8);
        assert_eq!(pump(&mut cq[k].1[0], &mut sq[k].0[0], &f), f);
        let f = frames(&[70, 1400], 0x40 | k as u8);
        assert_eq!(pump(&mut sq[k].1[0], &mut cq[k].0[0], &f), f);
    }
    for (k, i) in sis.iter().enumerate() {
        assert_eq!(i.counters().rx.packets, 3);
        assert_eq!(i.info().peer_if_name.as_deref(), Some(format!("memif{}", ids[k]).as_str()));
    }
    assert_eq!(s.interfaces().len(), 3);
    assert_eq!(s.stats().accepted, 3);
}

#[test]
fn secret_mismatch_is_refused_and_the_right_secret_connects() {
    let addr = SocketAddr::Path(sock_path());
    let s = server(&addr);
    let si =
        s.add_interface(InterfaceConfig { secret: Some("open sesame".into()), ..InterfaceConfig::new(1) }).unwrap();
    let c = client(&addr);
    let wrong =
        c.add_interface(InterfaceConfig { secret: Some("open sesamE".into()), ..InterfaceConfig::new(1) }).unwrap();
    wait_reason(&wrong, "incorrect secret");
    assert!(!wrong.is_up() && !si.is_up());
    assert!(c.remove_interface(1));
    let none = c.add_interface(InterfaceConfig::new(1)).unwrap();
    wait_reason(&none, "secret required");
    c.remove_interface(1);
    let right =
        c.add_interface(InterfaceConfig { secret: Some("open sesame".into()), ..InterfaceConfig::new(1) }).unwrap();
    assert!(right.wait_up(T) && si.wait_up(T));
    assert!(si.counters().protocol_errors >= 2);
    assert!(s.stats().refused >= 2);
}

fn wait_reason(i: &Interface, want: &str) {
    let deadline = Instant::now() + T;
    loop {
        let r = i.info().remote_reason;
        if r.as_deref().is_some_and(|r| r.contains(want)) {
            return;
        }
        assert!(Instant::now() < deadline, "no remote reason {want:?}: {:?}", i.info());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn unknown_id_mode_mismatch_and_too_many_queues_are_refused_with_reasons() {
    let addr = SocketAddr::Path(sock_path());
    let s = server(&addr);
    s.add_interface(InterfaceConfig { mode: Mode::Ip, queues: 2, ..InterfaceConfig::new(5) }).unwrap();
    let c = client(&addr);
    let unknown = c.add_interface(InterfaceConfig::new(6)).unwrap();
    wait_reason(&unknown, "unmatched interface id");
    let eth = c.add_interface(InterfaceConfig::new(5)).unwrap();
    wait_reason(&eth, "mode mismatch");
    c.remove_interface(5);
    let many = c.add_interface(InterfaceConfig { mode: Mode::Ip, queues: 3, ..InterfaceConfig::new(5) }).unwrap();
    wait_reason(&many, "too many s2m rings");
    c.remove_interface(5);
    let ok = c.add_interface(InterfaceConfig { mode: Mode::Ip, queues: 2, ..InterfaceConfig::new(5) }).unwrap();
    assert!(ok.wait_up(T));
    assert_eq!(ok.info().mode, Mode::Ip);
}

#[test]
fn fewer_client_queues_leave_server_queues_idle() {
    let addr = SocketAddr::Path(sock_path());
    let s = server(&addr);
    let si = s.add_interface(InterfaceConfig { queues: 4, ..InterfaceConfig::new(2) }).unwrap();
    let c = client(&addr);
    let ci = c.add_interface(InterfaceConfig { queues: 2, ..InterfaceConfig::new(2) }).unwrap();
    assert!(ci.wait_up(T) && si.wait_up(T));
    let info = si.info();
    assert_eq!((info.s2m_rings, info.m2s_rings, info.queues), (2, 2, 4));
    let (mut srx, mut stx) = si.take_queues().unwrap();
    assert!(srx[1].is_up() && stx[1].is_up());
    assert!(!srx[2].is_up() && !stx[3].is_up());
    assert_eq!(srx[3].rx_burst(10, |_| true), 0);
    assert_eq!(stx[3].tx_burst([&[1u8; 60][..]]), 0);
    assert_eq!(stx[3].counters().no_link, 1);
}

#[test]
fn client_reconnects_after_the_server_goes_away_and_comes_back() {
    let path = sock_path();
    let addr = SocketAddr::Path(path.clone());
    let s = server(&addr);
    let si = s.add_interface(InterfaceConfig::new(9)).unwrap();
    let c = client(&addr);
    let ci = c.add_interface(InterfaceConfig::new(9)).unwrap();
    assert!(ci.wait_up(T) && si.wait_up(T));
    let (mut crx, mut ctx) = ci.take_queues().unwrap();
    let (mut srx, mut stx) = si.take_queues().unwrap();
    let f = frames(&[100, 3000], 1);
    assert_eq!(pump(&mut ctx[0], &mut srx[0], &f), f);
    assert_eq!(pump(&mut stx[0], &mut crx[0], &f), f);
    drop((srx, stx));
    drop(s);
    assert!(ci.wait_for(LinkState::Down, T));
    wait_reason(&ci, "server shutting down");
    assert!(!path.exists(), "socket file removed with the server");
    // While there is no server the client keeps trying, and says why not.
    std::thread::sleep(Duration::from_millis(100));
    assert!(ci.info().last_error.unwrap_or_default().contains("connect"), "{:?}", ci.info());
    assert_eq!(ctx[0].tx_burst([&f[0][..]]), 0, "nothing to send on while down");
    let before = ci.counters().connects;
    for round in 0..3u8 {
        let s2 = server(&addr);
        let si2 = s2.add_interface(InterfaceConfig::new(9)).unwrap();
        assert!(ci.wait_connects(before + u64::from(round), T), "reconnect {round}: {:?}", ci.info());
        assert!(si2.wait_up(T));
        let (mut srx, mut stx) = si2.take_queues().unwrap();
        // The client's queue handles carry on over the new connection.
        let f = frames(&[64, 1500, 5000], round);
        assert_eq!(pump(&mut ctx[0], &mut srx[0], &f), f);
        assert_eq!(pump(&mut stx[0], &mut crx[0], &f), f);
    }
    // The last server went with the loop: four disconnects in all.
    assert!(ci.wait_for(LinkState::Down, T));
    assert_eq!(ci.counters().disconnects, 4);
}

#[test]
fn server_side_recovers_when_the_client_goes_away_and_comes_back() {
    let addr = SocketAddr::Path(sock_path());
    let s = server(&addr);
    let si = s.add_interface(InterfaceConfig::new(4)).unwrap();
    let (mut srx, mut stx) = si.take_queues().unwrap();
    for round in 0..3u8 {
        let c = client(&addr);
        let ci = c.add_interface(InterfaceConfig::new(4)).unwrap();
        assert!(ci.wait_up(T));
        assert!(si.wait_connects(u64::from(round), T));
        let (mut crx, mut ctx) = ci.take_queues().unwrap();
        let f = frames(&[64, 2500], round);
        assert_eq!(pump(&mut ctx[0], &mut srx[0], &f), f);
        assert_eq!(pump(&mut stx[0], &mut crx[0], &f), f);
        drop(c);
        assert!(si.wait_for(LinkState::Down, T));
        assert_eq!(si.info().remote_reason.as_deref(), Some("client shutting down"));
        assert!(si.info().regions.is_empty());
    }
    assert_eq!(si.counters().disconnects, 3);
}

#[test]
fn removing_an_interface_tells_the_peer() {
    let (s, _c, si, ci) = pair(1, 2048, 10);
    assert!(s.remove_interface(si.id()));
    assert!(si.wait_for(LinkState::Down, T));
    wait_reason(&ci, "interface deleted");
    assert_eq!(si.info().local_reason.as_deref(), Some("interface deleted"));
}

#[test]
fn interrupt_mode_wakes_a_waiting_poller_on_both_sides() {
    let addr = SocketAddr::Path(sock_path());
    let s = server(&addr);
    let si = s.add_interface(InterfaceConfig { rx_mode: RxMode::Interrupt, ..InterfaceConfig::new(1) }).unwrap();
    let c = client(&addr);
    let ci = c.add_interface(InterfaceConfig { rx_mode: RxMode::Interrupt, ..InterfaceConfig::new(1) }).unwrap();
    let (mut srx, mut stx) = si.take_queues().unwrap();
    let (mut crx, mut ctx) = ci.take_queues().unwrap();
    assert!(ci.wait_up(T) && si.wait_up(T));
    assert!(si.info().rings.iter().all(|r| !r.interrupts_masked));

    // A client worker that sleeps on its wait fd and echoes what it gets.
    let worker = std::thread::spawn(move || {
        let mut echoed = 0;
        let deadline = Instant::now() + T;
        while echoed < 3 && Instant::now() < deadline {
            crx[0].wait(1000);
            let mut got = Vec::new();
            crx[0].rx_burst(64, |f| {
                got.push(f.to_vec());
                true
            });
            echoed += got.len();
            while !got.is_empty() {
                let n = ctx[0].tx_burst(got.iter().map(|f| &f[..]));
                got.drain(..n);
            }
        }
        (echoed, crx[0].counters())
    });
    for k in 0..3u8 {
        // Let the worker go back to sleep, then wake it with one frame.
        std::thread::sleep(Duration::from_millis(50));
        let f = vec![k; 200];
        let deadline = Instant::now() + T;
        while stx[0].tx_burst([&f[..]]) == 0 {
            assert!(Instant::now() < deadline);
            std::thread::yield_now();
        }
        // The server side waits on its own wait fd for the echo.
        assert!(srx[0].wait(5000), "server not woken");
        let mut got = None;
        let deadline = Instant::now() + T;
        while got.is_none() && Instant::now() < deadline {
            srx[0].rx_burst(1, |fr| {
                got = Some(fr.to_vec());
                true
            });
        }
        assert_eq!(got, Some(f));
    }
    let (echoed, crx_counters) = worker.join().unwrap();
    assert_eq!(echoed, 3);
    assert!(crx_counters.interrupts >= 3, "{crx_counters:?}");
    assert!(stx[0].counters().interrupts >= 3);
    // Switching to polling masks the ring at once.
    si.set_rx_mode(0, RxMode::Polling);
    let info = si.info();
    let s2m = info.rings.iter().find(|r| r.direction == Direction::S2M).unwrap();
    assert!(s2m.interrupts_masked);
}

#[test]
fn abstract_sockets_work() {
    let name = format!("vswitch-memif-test-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    let addr = SocketAddr::parse(&format!("@{name}"));
    assert_eq!(addr, SocketAddr::Abstract(name.clone().into_bytes()));
    let s = server(&addr);
    let si = s.add_interface(InterfaceConfig::new(0)).unwrap();
    let c = client(&addr);
    let ci = c.add_interface(InterfaceConfig::new(0)).unwrap();
    assert!(ci.wait_up(T) && si.wait_up(T));
    assert_eq!(si.info().socket, format!("@{name}"));
}

#[test]
fn socket_file_mode_staleness_and_removal() {
    use std::os::unix::fs::PermissionsExt;
    let path = sock_path();
    let addr = SocketAddr::Path(path.clone());
    let s = server(&addr);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    // A second server on a live socket is refused.
    let e = Server::bind(ServerConfig::new(addr.clone())).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    drop(s);
    assert!(!path.exists());
    // A stale socket file (nobody listening) is replaced; a configured
    // mode applies.
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale);
    assert!(path.exists());
    let mut cfg = ServerConfig::new(addr.clone());
    cfg.socket_mode = 0o660;
    let s = Server::bind(cfg).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660);
    drop(s);
    // A regular file is never deleted.
    std::fs::write(&path, b"not a socket").unwrap();
    assert!(Server::bind(ServerConfig::new(addr)).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn info_describes_the_connection() {
    let (_s, _c, si, ci) = pair(2, 1024, 9);
    let i = ci.info();
    assert_eq!((i.state, i.s2m_rings, i.m2s_rings, i.buffer_size), (LinkState::Up, 2, 2, Some(1024)));
    assert_eq!(i.regions.len(), 1);
    let ring = 128 + 16 * 512;
    assert_eq!(i.regions[0].size, 4 * ring + 4 * 512 * 1024);
    let offsets: Vec<(Direction, usize, u32)> = i.rings.iter().map(|r| (r.direction, r.index, r.offset)).collect();
    assert_eq!(
        offsets,
        vec![
            (Direction::S2M, 0, 0),
            (Direction::S2M, 1, ring as u32),
            (Direction::M2S, 0, 2 * ring as u32),
            (Direction::M2S, 1, 3 * ring as u32)
        ]
    );
    assert!(i.peer_name.as_deref().unwrap().starts_with("vswitch memif"));
    assert_eq!(i.peer_if_name.as_deref(), Some("memif7"));
    assert_eq!(i.peer_pid, Some(std::process::id() as i32));
    let s = si.info();
    assert_eq!(s.regions, i.regions);
    assert_eq!(s.buffer_size, None);
    assert!(s.uptime.is_some());
}

#[test]
fn server_can_send_as_soon_as_the_link_is_up() {
    // The client posts its M2S buffers when CONNECTED arrives, not at its
    // first receive: nothing is lost if the server sends first.
    let (_s, _c, si, ci) = pair(1, 2048, 8);
    let (_, mut stx) = si.take_queues().unwrap();
    let f = [0xabu8; 100];
    assert_eq!(stx[0].tx_burst(vec![&f[..]; 300]), 256, "a whole ring posted before the client ever polled");
    assert_eq!(ci.info().rings.iter().find(|r| r.direction == Direction::M2S).unwrap().tail, 256);
    let (mut crx, _) = ci.take_queues().unwrap();
    let mut n = 0;
    crx[0].rx_burst(1000, |fr| {
        assert_eq!(fr.to_vec(), f);
        n += 1;
        true
    });
    assert_eq!(n, 256);
}
