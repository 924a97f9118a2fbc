//! Interoperability with DPDK's `net_memif` through `dpdk-testpmd` (Debian
//! package `dpdk-dev`, with the memif PMD from `librte-net-memif23`), in io
//! forwarding mode on one port looped to itself: every frame we send comes
//! back unchanged. Both roles: testpmd as client of our server, and our
//! client on testpmd's server. Frames are checked byte for byte and our
//! counters against testpmd's forward statistics.
//!
//! Skipped, with a message saying so, only when `dpdk-testpmd` is not
//! installed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use vswitch_memif::{
    Client, ClientConfig, Interface, InterfaceConfig, LinkState, RxQueue, Server, ServerConfig, SocketAddr, TxQueue,
    ZcVerdict,
};

/// testpmd busy-polls a core: run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn testpmd() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join("dpdk-testpmd"))
        .find(|p| p.exists());
    if found.is_none() {
        eprintln!(
            "SKIPPED: dpdk-testpmd is not installed (Debian package dpdk-dev); memif interop with DPDK not tested"
        );
    }
    found
}

/// A running testpmd, killed on drop if still running.
struct TestPmd {
    child: Child,
    log: PathBuf,
    /// testpmd's own socket file (role=server), removed on drop: a killed
    /// testpmd leaves it behind.
    own_sock: Option<PathBuf>,
}

impl TestPmd {
    fn start(bin: &Path, role: &str, sock: &Path, tag: &str) -> TestPmd {
        let log = std::env::temp_dir().join(format!("vswm-testpmd-{}-{tag}.log", std::process::id()));
        let out = std::fs::File::create(&log).unwrap();
        let vdev = format!("net_memif0,role={role},socket={},socket-abstract=no,id=0", sock.display());
        // Line-buffered output, so the log is complete when we read it.
        let child = Command::new("stdbuf")
            .arg("-oL")
            .arg(bin)
            .args(["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--no-telemetry"])
            .args(["--file-prefix", &format!("vswm{}{tag}", std::process::id())])
            .args(["--vdev", &vdev])
            .args(["--", "--auto-start", "--forward-mode=io", "--port-topology=loop", "--total-num-mbufs=8192"])
            .stdin(Stdio::piped())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start dpdk-testpmd");
        TestPmd { child, log, own_sock: (role == "server").then(|| sock.to_path_buf()) }
    }

    fn log(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(&self.log).unwrap().read_to_string(&mut s).unwrap();
        s
    }

    /// Presses enter (testpmd stops forwarding and prints its statistics),
    /// waits for it to exit, and returns port 0's forward RX and TX
    /// packet counts.
    fn stop(mut self) -> (u64, u64, String) {
        let _ = self.child.stdin.take().unwrap().write_all(b"\n");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "testpmd did not exit:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = self.log();
        let stat = |key: &str| -> u64 {
            let block =
                log.split("Forward statistics for port 0").nth(1).unwrap_or_else(|| panic!("no stats in\n{log}"));
            let at = block.find(key).unwrap() + key.len();
            block[at..].split_whitespace().next().unwrap().parse().unwrap()
        };
        (stat("RX-packets:"), stat("TX-packets:"), log)
    }
}

impl Drop for TestPmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        if let Some(s) = &self.own_sock {
            let _ = std::fs::remove_file(s);
        }
    }
}

/// An Ethernet frame of `len` bytes carrying sequence number `seq`.
fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(7).wrapping_add(seq) as u8;
    }
    f
}

/// Sends `n` frames and takes them back as testpmd echoes them, keeping
/// at most `window` in flight; checks each one. Returns (sent, received).
const SIZES: [usize; 8] = [60, 64, 128, 256, 512, 1000, 1500, 1514];
/// Larger than a 2048-byte buffer: chained descriptors both ways.
const CHAINED: [usize; 5] = [2049, 3000, 4096, 6000, 9000];

fn echo(
    tx: &mut TxQueue,
    rx: &mut RxQueue,
    (n, sizes): (u32, &[usize]),
    window: u32,
    pmd: &TestPmd,
    i: &Interface,
) -> (u32, u32) {
    let mut sent = 0u32;
    let mut got = 0u32;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut batch: Vec<Vec<u8>> = Vec::new();
    while got < n {
        assert!(Instant::now() < deadline, "echo stalled: sent {sent}, got {got}\n{:#?}\n{}", i.info(), pmd.log());
        if sent < n && sent - got < window {
            let k = (n - sent).min(window - (sent - got)).min(32);
            batch.clear();
            batch.extend((sent..sent + k).map(|s| frame(s, sizes[s as usize % sizes.len()])));
            sent += tx.tx_burst(batch.iter().map(|f| &f[..])) as u32;
        }
        rx.rx_burst(64, |f| {
            let want = frame(got, sizes[got as usize % sizes.len()]);
            let v = f.to_vec();
            let seq = v.get(14..18).map(|b| u32::from_be_bytes(b.try_into().unwrap()));
            assert!(
                v == want,
                "frame {got} (of {sent} sent) differs: got {} bytes, seq {seq:?}, segments {}: {:02x?}\n\
                 want {} bytes: {:02x?}\n{:?}",
                v.len(),
                f.segments(),
                &v[..v.len().min(40)],
                want.len(),
                &want[..40],
                i.counters()
            );
            got += 1;
            true
        });
        std::thread::yield_now();
    }
    (sent, got)
}

/// Waits for the link, then for testpmd to be forwarding: when it starts
/// it flushes its receive queues, which would eat our first frames.
fn wait_up(i: &Interface, pmd: &TestPmd) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !i.wait_up(Duration::from_millis(200)) {
        assert!(Instant::now() < deadline, "link not up: {:?}\n{}", i.info(), pmd.log());
    }
    while !pmd.log().contains("Press enter to exit") {
        assert!(Instant::now() < deadline, "testpmd not forwarding:\n{}", pmd.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn testpmd_as_client_of_our_server() {
    let Some(bin) = testpmd() else { return };
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sock = std::env::temp_dir().join(format!("vswm-dpdk-{}-s.sock", std::process::id()));
    let s = Server::bind(ServerConfig::new(SocketAddr::Path(sock.clone()))).unwrap();
    let si = s.add_interface(InterfaceConfig::new(0)).unwrap();
    let pmd = TestPmd::start(&bin, "client", &sock, "c");
    wait_up(&si, &pmd);
    let info = si.info();
    assert!(info.peer_name.as_deref().unwrap_or("").starts_with("DPDK"), "{info:?}");
    assert_eq!(info.peer_if_name.as_deref(), Some("net_memif0"));
    assert_eq!((info.s2m_rings, info.m2s_rings), (1, 1));
    assert_eq!(info.rings[0].log2_ring_size, 10, "DPDK's default ring size");
    let (mut rx, mut tx) = si.take_queues().unwrap();
    let n = 20_000;
    assert_eq!(echo(&mut tx[0], &mut rx[0], (n, &SIZES), 256, &pmd, &si), (n, n));
    // Chained frames (fewer than the ring holds in all: DPDK 22.11 does not
    // clear a reused first descriptor's NEXT flag on its transmit ring).
    assert_eq!(echo(&mut tx[0], &mut rx[0], (150, &CHAINED), 64, &pmd, &si), (150, 150));
    let (pmd_rx, pmd_tx, log) = pmd.stop();
    let n = u64::from(n) + 150;
    assert_eq!((pmd_rx, pmd_tx), (n, n), "testpmd's counters\n{log}");
    let c = si.counters();
    assert_eq!((c.tx.packets, c.rx.packets), (n, n));
    assert_eq!(c.rx.bad_region + c.rx.bad_offset + c.rx.bad_length + c.rx.faults + c.tx.faults, 0, "{c:?}");
    // testpmd closing the device takes the link down.
    assert!(si.wait_for(LinkState::Down, Duration::from_secs(10)), "{:?}", si.info());
}

#[test]
fn our_client_on_a_testpmd_server() {
    let Some(bin) = testpmd() else { return };
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sock = std::env::temp_dir().join(format!("vswm-dpdk-{}-c.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let pmd = TestPmd::start(&bin, "server", &sock, "s");
    let mut cfg = ClientConfig::new(SocketAddr::Path(sock.clone()));
    cfg.reconnect_max = Duration::from_millis(200);
    let c = Client::new(cfg).unwrap();
    let ci =
        c.add_interface(InterfaceConfig { buffer_size: 2048, log2_ring_size: 11, ..InterfaceConfig::new(0) }).unwrap();
    wait_up(&ci, &pmd);
    let info = ci.info();
    assert!(info.peer_name.as_deref().unwrap_or("").starts_with("DPDK"), "{info:?}");
    assert_eq!(info.peer_if_name.as_deref(), Some("net_memif0"));
    let (mut rx, mut tx) = ci.take_queues().unwrap();
    let n = 20_000;
    assert_eq!(echo(&mut tx[0], &mut rx[0], (n, &SIZES), 256, &pmd, &ci), (n, n));
    assert_eq!(echo(&mut tx[0], &mut rx[0], (2000, &CHAINED), 64, &pmd, &ci), (2000, 2000));
    let (pmd_rx, pmd_tx, log) = pmd.stop();
    let n = u64::from(n) + 2000;
    assert_eq!((pmd_rx, pmd_tx), (n, n), "testpmd's counters\n{log}");
    let cc = ci.counters();
    assert_eq!((cc.tx.packets, cc.rx.packets), (n, n));
    assert_eq!(cc.rx.bad_region + cc.rx.bad_offset + cc.rx.bad_length + cc.rx.faults + cc.tx.faults, 0, "{cc:?}");
    // The server went away: the client notices and keeps trying.
    assert!(ci.wait_for(LinkState::Down, Duration::from_secs(10)), "{:?}", ci.info());
}

/// Our zero-copy client (frames built in place, received in place, and
/// forwarded without a copy) on a testpmd server that echoes: each frame
/// is built in a shared buffer and sent, comes back, is checked in place,
/// marked (one byte written in place) and forwarded as it is, comes back
/// again and is checked with its mark. testpmd's counters and ours agree.
#[test]
fn our_zero_copy_client_on_a_testpmd_server() {
    let Some(bin) = testpmd() else { return };
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sock = std::env::temp_dir().join(format!("vswm-dpdk-{}-zc.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let pmd = TestPmd::start(&bin, "server", &sock, "z");
    let mut cfg = ClientConfig::new(SocketAddr::Path(sock.clone()));
    cfg.reconnect_max = Duration::from_millis(200);
    let c = Client::new(cfg).unwrap();
    let ci = c.add_interface(InterfaceConfig { zero_copy: true, ..InterfaceConfig::new(0) }).unwrap();
    let mut zq = ci.take_zc_queues().unwrap().remove(0);
    wait_up(&ci, &pmd);
    let n = 20_000u32;
    let window = 256;
    let (mut sent, mut first, mut second) = (0u32, 0u32, 0u32);
    let deadline = Instant::now() + Duration::from_secs(30);
    while second < n {
        assert!(
            Instant::now() < deadline,
            "stalled: sent {sent}, back once {first}, twice {second}\n{:#?}\n{}",
            ci.info(),
            pmd.log()
        );
        if sent < n && sent - second < window {
            let k = (n - sent).min(window - (sent - second)).min(32) as usize;
            let mut next = sent;
            zq.tx_burst(k, |b| {
                let f = frame(next, SIZES[next as usize % SIZES.len()]);
                assert!(b.write(0, &f));
                next += 1;
                Some(f.len())
            });
            sent = next;
        }
        zq.rx_burst(64, |f| {
            let mut seq = [0u8; 4];
            assert!(f.read(14, &mut seq));
            let seq = u32::from_be_bytes(seq);
            let mut want = frame(seq, SIZES[seq as usize % SIZES.len()]);
            let mut mark = [0u8; 1];
            assert!(f.read(12, &mut mark));
            if mark[0] == 0x88 {
                // First time back: unchanged; mark it and send it again.
                assert_eq!((seq, f.to_vec()), (first, want), "frame {first} on its first return");
                first += 1;
                assert!(f.write(12, &[0x99]));
                ZcVerdict::Forward
            } else {
                want[12] = 0x99;
                assert_eq!((seq, f.to_vec()), (second, want), "frame {second} on its second return");
                second += 1;
                ZcVerdict::Release
            }
        });
        std::thread::yield_now();
    }
    let (pmd_rx, pmd_tx, log) = pmd.stop();
    let n = u64::from(n);
    assert_eq!((pmd_rx, pmd_tx), (2 * n, 2 * n), "testpmd's counters\n{log}");
    let cc = ci.counters();
    assert_eq!((cc.tx.packets, cc.rx.packets), (2 * n, 2 * n), "{cc:?}");
    assert_eq!(cc.rx.bad_length + cc.rx.faults + cc.tx.faults + cc.tx.ring_full, 0, "{cc:?}");
    assert!(ci.wait_for(LinkState::Down, Duration::from_secs(10)), "{:?}", ci.info());
}
