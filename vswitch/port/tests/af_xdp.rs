//! The AF_XDP backend against the real kernel: XDP sockets on veth pairs
//! in network namespaces (copy mode; veth has no zero-copy).
//!
//! Run as root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF), with `ip`
//! (iproute2), `ping` (iputils-ping) and `sysctl` (procps). Every
//! namespace and link a test makes has the process id and a counter in
//! its name, and a guard deletes them even when the test panics.
//!
//! The end-to-end proof in both directions is an echo responder on the
//! vswitch side that answers ARP and ICMP echo requests for an address
//! the kernel side pings; `ping` only succeeds if frames went both ways.

mod common;

use common::{
    assert_ping_ok, collect, ip, ns_exec, ping_with_responder, pool, readable, run, send_frames, seq_frame, test_seq,
    unique, unique_name, Veth, VSW_MAC,
};
use std::os::fd::{AsFd, AsRawFd};
use std::process::Command;
use std::time::Duration;
use vswitch_packet::{BufferPool, BufferPoolConfig};
use vswitch_port::af_xdp::{bpf, AfXdpConfig, AfXdpQueue, XdpBind, XdpMode};
use vswitch_port::netdev::{in_netns, netns_path};
use vswitch_port::{RxQueue, TxQueue};

// --- the veth pair -------------------------------------------------------------

/// The veth pair of these tests: namespaces `vswx-a-…`/`vswx-b-…`, links
/// `xa…`/`xb…`; AF_XDP queues open on `b`.
impl Veth {
    fn new() -> Veth {
        Veth::create("vswx", "x")
    }

    fn config(&self, mode: XdpMode) -> AfXdpConfig {
        AfXdpConfig { mode, bind: XdpBind::Copy, ..AfXdpConfig::device(&self.b) }
    }

    /// Opens `config` (device `b`) inside `ns_b`.
    fn try_open(&self, config: AfXdpConfig) -> std::io::Result<AfXdpQueue> {
        in_netns(&netns_path(&self.ns_b), move || AfXdpQueue::open(&config, 5))
    }

    fn open(&self, mode: XdpMode) -> AfXdpQueue {
        self.try_open(self.config(mode)).unwrap()
    }
}

/// `(major, minor)` of a `uname -r` string.
fn kernel_version(release: &str) -> (u32, u32) {
    let mut it = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

// --- tests ------------------------------------------------------------------------

#[test]
fn af_xdp_answers_the_kernels_ping_across_a_veth() {
    let veth = Veth::new();
    let mut q = veth.open(XdpMode::Skb);
    assert_eq!((q.xdp_mode(), q.bind_mode(), q.queue_id()), (XdpMode::Skb, XdpBind::Copy, 0));
    assert_eq!(q.mtu().unwrap(), 1500);
    assert!(q.link().unwrap().running);
    assert_eq!(RxQueue::port(&q), 5);
    let link = veth.link_b();
    assert!(link.contains("xdpgeneric"), "program attached in skb mode: {link}");
    let pool = pool(2048);
    let (out, answered) =
        ping_with_responder(std::slice::from_mut(&mut q), &pool, &veth.ns_a, "10.88.0.2".parse().unwrap(), 5);
    assert_ping_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 received"));
    assert!(answered.arp >= 1 && answered.echo == 5, "{answered:?}");
    let s = q.counters();
    // Everything the responder answered was sent, and it answered what it received.
    assert_eq!(s.tx_packets, answered.arp + answered.echo, "{s:?}");
    assert!(s.rx_packets >= s.tx_packets, "{s:?}");
    assert_eq!((s.tx_ring_full, s.tx_bad_length, s.tx_kick_errors, s.tx_bad_completions), (0, 0, 0, 0), "{s:?}");
    assert_eq!((s.rx_bad_descs, s.rx_oversize, s.kernel_rx_dropped, s.kernel_rx_ring_full), (0, 0, 0, 0), "{s:?}");
    assert_eq!((s.kernel_rx_invalid_descs, s.kernel_tx_invalid_descs), (0, 0), "{s:?}");
    assert!(s.tx_kicks >= 1);
    assert_eq!(RxQueue::stats(&q).drops, 0);
    assert_eq!(TxQueue::stats(&q).packets, s.tx_packets);
    // The kernel on the other side counted the replies as received.
    let rx_kernel: u64 = ns_exec(&veth.ns_a, &["cat", &format!("/sys/class/net/{}/statistics/rx_packets", veth.a)])
        .trim()
        .parse()
        .unwrap();
    assert!(rx_kernel >= s.tx_packets, "kernel rx {rx_kernel} < sent {}", s.tx_packets);
}

#[test]
fn af_xdp_in_driver_mode_on_veth_answers_ping_too() {
    let veth = Veth::new();
    // Auto: veth has native XDP, and no zero-copy, so driver mode + copy.
    // Without need_wakeup every transmit burst kicks.
    let cfg =
        AfXdpConfig { mode: XdpMode::Auto, bind: XdpBind::Auto, need_wakeup: false, ..AfXdpConfig::device(&veth.b) };
    let mut q = veth.try_open(cfg).unwrap();
    assert_eq!((q.xdp_mode(), q.bind_mode()), (XdpMode::Driver, XdpBind::Copy));
    let link = veth.link_b();
    assert!(link.contains("xdp") && !link.contains("xdpgeneric"), "program attached in driver mode: {link}");
    let pool = pool(2048);
    let (out, answered) =
        ping_with_responder(std::slice::from_mut(&mut q), &pool, &veth.ns_a, "10.88.0.2".parse().unwrap(), 3);
    assert_ping_ok(&out);
    assert!(answered.arp >= 1 && answered.echo == 3, "{answered:?}");
    let s = q.counters();
    assert_eq!(s.tx_packets, answered.arp + answered.echo, "{s:?}");
    assert_eq!((s.kernel_rx_dropped, s.rx_bad_descs), (0, 0), "{s:?}");
}

#[test]
fn af_xdp_receives_a_burst_in_order_without_loss() {
    let veth = Veth::new();
    let mut q = veth.open(XdpMode::Skb);
    let sender = veth.kernel_side(false);
    let mac_a = veth.mac_a();
    const N: u32 = 2000;
    let pool = pool(2048);
    let mut bufs = pool.worker();
    // Sent in chunks of 100 and drained in between, as a poll-mode worker
    // would: the rings (not a receiver that never reads) are what is tested.
    let mut got = Vec::new();
    for chunk in 0..N / 100 {
        for seq in chunk * 100..(chunk + 1) * 100 {
            sender.send(&seq_frame(VSW_MAC, mac_a, seq, 60 + (seq as usize % 200)));
        }
        let want = ((chunk + 1) * 100) as usize - got.len();
        got.extend(collect(&mut q, &mut bufs, want, Duration::from_secs(5), |f| test_seq(f).is_some()));
    }
    let seqs: Vec<u32> = got.iter().filter_map(|f| test_seq(f)).collect();
    assert_eq!(seqs, (0..N).collect::<Vec<u32>>(), "every frame, in order");
    for (i, f) in got.iter().enumerate() {
        assert_eq!(f, &seq_frame(VSW_MAC, mac_a, i as u32, 60 + i % 200), "frame {i} bytes");
    }
    let s = q.counters();
    assert_eq!((s.kernel_rx_dropped, s.kernel_rx_ring_full, s.rx_bad_descs), (0, 0, 0), "{s:?}");
    assert!(s.rx_packets >= N as u64, "{s:?}");
    assert_eq!(RxQueue::stats(&q).drops, 0);
}

#[test]
fn af_xdp_transmits_bursts_to_the_kernel() {
    let veth = Veth::new();
    let q = veth.open(XdpMode::Skb);
    let (_rx, mut tx) = q.split();
    let receiver = veth.kernel_side(true);
    let mac_a = veth.mac_a();
    let pool = pool(2048);
    let mut bufs = pool.worker();
    const N: u32 = 1000;
    for burst in 0..N / 250 {
        let frames: Vec<Vec<u8>> =
            (0..250).map(|i| seq_frame(mac_a, VSW_MAC, burst * 250 + i, 64 + i as usize)).collect();
        send_frames(&mut tx, &mut bufs, &frames);
        std::thread::sleep(Duration::from_millis(5));
    }
    let got: Vec<Vec<u8>> =
        receiver.drain(Duration::from_millis(300)).into_iter().filter(|f| test_seq(f).is_some()).collect();
    let seqs: Vec<u32> = got.iter().filter_map(|f| test_seq(f)).collect();
    assert_eq!(seqs, (0..N).collect::<Vec<u32>>());
    for (i, f) in got.iter().enumerate() {
        assert_eq!(f, &seq_frame(mac_a, VSW_MAC, i as u32, 64 + i % 250), "frame {i} bytes");
    }
    let s = tx.counters();
    assert_eq!(
        (s.tx_packets, s.tx_ring_full, s.tx_kick_errors, s.kernel_tx_invalid_descs),
        (N as u64, 0, 0, 0),
        "{s:?}"
    );
    assert!(s.tx_kicks >= 4, "at least one kick per burst: {s:?}");
    // Linux 6.17+ takes a larger per-kick budget: one kick per burst.
    let per_kick = ns_exec(&veth.ns_b, &["uname", "-r"]);
    let (major, minor) = kernel_version(&per_kick);
    if (major, minor) >= (6, 17) {
        assert_eq!(s.tx_kicks, 4, "{s:?}");
    }
    // Frames longer than the MTU allows are refused and counted; a
    // tagged frame may be 4 bytes longer.
    let big = seq_frame(mac_a, VSW_MAC, 99_999, 1515);
    send_frames(&mut tx, &mut bufs, &[big]);
    assert_eq!(tx.counters().tx_bad_length, 1);
    assert_eq!(TxQueue::stats(&tx).drops, 1);
    let mut tagged = seq_frame(mac_a, VSW_MAC, 100_000, 1518);
    tagged[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    send_frames(&mut tx, &mut bufs, &[tagged]);
    assert_eq!(tx.counters().tx_bad_length, 1, "1518 bytes with a VLAN tag fit MTU 1500");
    // Every transmit frame comes back: 4096 more frames than there are
    // transmit frames go out without a drop.
    for burst in 0..16u32 {
        let frames: Vec<Vec<u8>> = (0..256).map(|i| seq_frame(mac_a, VSW_MAC, 200_000 + burst * 256 + i, 60)).collect();
        send_frames(&mut tx, &mut bufs, &frames);
        if burst % 4 == 3 {
            receiver.drain(Duration::from_millis(20));
        }
    }
    let s = tx.counters();
    assert_eq!((s.tx_packets, s.tx_ring_full), (N as u64 + 1 + 4096, 0), "{s:?}");
}

#[test]
fn af_xdp_detaches_its_program_when_dropped_and_refuses_a_taken_device() {
    let veth = Veth::new();
    assert!(!veth.link_b().contains("xdp"), "nothing attached yet");
    let q = veth.open(XdpMode::Skb);
    assert!(veth.link_b().contains("xdpgeneric"));
    // A second program on the same device is refused, naming it; the one
    // attached stays.
    for mode in [XdpMode::Skb, XdpMode::Driver, XdpMode::Auto] {
        let e = veth.try_open(veth.config(mode)).unwrap_err();
        let m = e.to_string();
        assert!(m.contains(&format!("af_xdp {}", veth.b)) && m.contains("already has an XDP program"), "{m}");
    }
    assert!(veth.link_b().contains("xdpgeneric"), "the first attachment is untouched");
    // Dropping the queue (both halves) detaches the program.
    let (rx, tx) = q.split();
    drop(rx);
    assert!(veth.link_b().contains("xdpgeneric"), "the transmit half still holds it");
    drop(tx);
    let link = veth.link_b();
    assert!(!link.contains("xdp"), "detached with the last half: {link}");
    // And the device can be taken again, in the other mode.
    let q = veth.open(XdpMode::Driver);
    assert_eq!(q.xdp_mode(), XdpMode::Driver);
    drop(q);
    assert!(!veth.link_b().contains("xdp"));
}

#[test]
fn af_xdp_wait_fd_becomes_readable_when_a_frame_arrives() {
    let veth = Veth::new();
    let mut q = veth.open(XdpMode::Skb);
    let pool = pool(2048);
    let mut bufs = pool.worker();
    assert!(!readable(q.wait_fd().unwrap(), 0), "empty RX ring");
    veth.kernel_side(false).send(&seq_frame(VSW_MAC, veth.mac_a(), 2, 64));
    assert!(readable(q.wait_fd().unwrap(), 1000), "socket readable once a frame is in the RX ring");
    let got = collect(&mut q, &mut bufs, 1, Duration::from_secs(1), |f| test_seq(f) == Some(2));
    assert_eq!(got.len(), 1);
    assert!(!readable(q.wait_fd().unwrap(), 20), "ring drained: nothing to read");
}

#[test]
fn af_xdp_errors_name_the_device_and_the_step() {
    let missing = unique("xn");
    let e = AfXdpQueue::open(&AfXdpConfig::device(&missing), 0).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains(&format!("af_xdp {missing}: no such device")), "{e}");
    let e = AfXdpQueue::open(&AfXdpConfig { frame_size: 1000, ..AfXdpConfig::device("lo") }, 0).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("af_xdp lo") && e.to_string().contains("frame_size"), "{e}");
    let e = AfXdpQueue::open_queues(&AfXdpConfig::device("lo"), 0, 0).unwrap_err();
    assert!(e.to_string().contains("at least 1"), "{e}");
    // A program the verifier refuses comes back with its log.
    let e = bpf::load_xdp_program(&bpf::redirect_program(-1)).unwrap_err();
    assert_eq!(e.error.raw_os_error(), Some(libc::EBADF));
    assert!(e.log.contains("fd -1 is not pointing to valid bpf_map"), "{}", e.log);

    let veth = Veth::new();
    // A queue the device does not have: the bind fails, naming the step,
    // and the program attached before it is detached again.
    let e = veth.try_open(AfXdpConfig { queue_id: 3, ..veth.config(XdpMode::Skb) }).unwrap_err();
    let m = e.to_string();
    assert!(m.contains(&format!("af_xdp {}: bind to queue 3", veth.b)), "{m}");
    assert!(!veth.link_b().contains("xdp"), "nothing left attached after a failed open");
    // Zero-copy: veth has none (driver mode), and skb mode cannot have it.
    let e = veth.try_open(AfXdpConfig { bind: XdpBind::ZeroCopy, ..veth.config(XdpMode::Driver) }).unwrap_err();
    let m = e.to_string();
    assert!(m.contains(&format!("af_xdp {}: bind to queue 0 (zero-copy", veth.b)), "{m}");
    assert_eq!(e.raw_os_error(), None, "wrapped with context");
    assert!(m.contains("no zero-copy support") && m.contains("os error 95"), "EOPNOTSUPP: {m}");
    let e = veth.try_open(AfXdpConfig { bind: XdpBind::ZeroCopy, ..veth.config(XdpMode::Skb) }).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("zero-copy needs the XDP program in driver mode"), "{e}");
    assert!(!veth.link_b().contains("xdp"));
}

#[test]
fn af_xdp_leaves_frames_in_the_ring_when_the_pool_is_empty_and_drops_oversize_ones() {
    let veth = Veth::new();
    let mut q = veth.open(XdpMode::Skb);
    let sender = veth.kernel_side(false);
    let mac_a = veth.mac_a();
    // Buffers of 256 data bytes: a 300-byte frame does not fit.
    let small = BufferPool::new(&BufferPoolConfig { buffers: 64, data_size: 256, prefer_huge: false }).unwrap();
    let mut bufs = small.worker();
    let mut held = Vec::new();
    while let Some(p) = bufs.alloc() {
        held.push(p);
    }
    sender.send(&seq_frame(VSW_MAC, mac_a, 0, 300));
    for seq in 1..=20 {
        sender.send(&seq_frame(VSW_MAC, mac_a, seq, 100));
    }
    // Wait until the frames are in the RX ring, then receive with an
    // empty pool: nothing comes out, nothing is lost.
    assert!(readable(q.wait_fd().unwrap(), 1000));
    std::thread::sleep(Duration::from_millis(50));
    let mut out = Vec::new();
    assert_eq!(q.rx_burst(&mut bufs, &mut out, 256), 0);
    let s = q.counters();
    assert_eq!((s.rx_no_buffer, s.rx_oversize), (1, 1), "the oversize frame was dropped first: {s:?}");
    bufs.free_bulk(&held);
    let got = collect(&mut q, &mut bufs, 20, Duration::from_secs(2), |f| test_seq(f).is_some());
    let seqs: Vec<u32> = got.iter().filter_map(|f| test_seq(f)).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<u32>>());
    let s = q.counters();
    assert_eq!((s.rx_oversize, s.kernel_rx_dropped, s.kernel_rx_ring_full), (1, 0, 0), "{s:?}");
    assert_eq!(RxQueue::stats(&q).drops, 1);
}

/// A bpf filesystem mounted on a fresh directory, unmounted and removed on drop.
struct BpfFs(std::path::PathBuf);

impl BpfFs {
    fn mount() -> BpfFs {
        let dir = std::env::temp_dir().join(unique_name("vswx-bpffs-"));
        std::fs::create_dir(&dir).unwrap();
        let fs = BpfFs(dir);
        let out = run("mount", &["-t", "bpf", "bpf", fs.0.to_str().unwrap()]);
        assert!(out.status.success(), "mount bpffs: {}", String::from_utf8_lossy(&out.stderr));
        fs
    }

    /// Pins `fd` (a program) at `name` in the filesystem; returns the path.
    fn pin(&self, fd: std::os::fd::BorrowedFd<'_>, name: &str) -> String {
        let path = self.0.join(name);
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // union bpf_attr for BPF_OBJ_PIN (6): pathname at 0, bpf_fd at 8.
        let mut attr = [0u64; 18];
        attr[0] = c.as_ptr() as u64;
        attr[1] = fd.as_raw_fd() as u32 as u64;
        // SAFETY: `attr` is a live, zeroed bpf_attr; `c` is a live
        // NUL-terminated path the kernel only reads.
        let r = unsafe { libc::syscall(libc::SYS_bpf, 6, attr.as_mut_ptr(), std::mem::size_of_val(&attr)) };
        assert_eq!(r, 0, "BPF_OBJ_PIN: {}", std::io::Error::last_os_error());
        path.to_str().unwrap().to_string()
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn af_xdp_refuses_a_device_where_another_program_attached_xdp() {
    let veth = Veth::new();
    // Another program's XDP, attached the classic way (netlink, no
    // bpf_link), as `ip` or a libxdp tool would.
    let fs = BpfFs::mount();
    let map = bpf::create_xskmap(1).unwrap();
    let prog = bpf::load_xdp_program(&bpf::redirect_program(map.as_raw_fd())).unwrap();
    let pinned = fs.pin(prog.as_fd(), "other");
    ip(&["-n", &veth.ns_b, "link", "set", "dev", &veth.b, "xdpgeneric", "pinned", &pinned]);
    let before = veth.link_b();
    assert!(before.contains("xdpgeneric"), "{before}");
    for mode in [XdpMode::Skb, XdpMode::Driver, XdpMode::Auto] {
        let m = veth.try_open(veth.config(mode)).unwrap_err().to_string();
        assert!(m.contains(&format!("af_xdp {}", veth.b)) && m.contains("already has an XDP program"), "{mode:?}: {m}");
    }
    assert_eq!(veth.link_b(), before, "the other program stays attached, untouched");
    ip(&["-n", &veth.ns_b, "link", "set", "dev", &veth.b, "xdpgeneric", "off"]);
    let q = veth.open(XdpMode::Skb);
    assert_eq!(q.xdp_mode(), XdpMode::Skb);
}
