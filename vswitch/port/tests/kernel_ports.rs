//! The kernel-facing backends against the real kernel: tap devices and
//! AF_PACKET sockets on veth pairs in network namespaces.
//!
//! Run as root (CAP_NET_ADMIN and CAP_NET_RAW), with `ip` (iproute2),
//! `ping` (iputils-ping) and `sysctl` (procps). Every namespace and link a
//! test makes has the process id and a counter in its name, and a guard
//! deletes them even when the test panics.
//!
//! The end-to-end proof in both directions is an echo responder: a loop on
//! the vswitch side that answers ARP and ICMP echo requests for an address
//! the kernel side pings; `ping` only succeeds if frames went both ways.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vswitch_packet::{BufferPool, BufferPoolConfig, Buffers, PacketId};
use vswitch_port::af_packet::{AfPacketConfig, AfPacketQueue};
use vswitch_port::netdev::{in_netns, netns_path, NetDev};
use vswitch_port::tap::{Tap, TapConfig};
use vswitch_port::{RxQueue, TxQueue};
use vswitch_wire::checksum::{checksum, fold, pseudo_header_v4, sum};

// --- names, commands, cleanup ---------------------------------------------

static SEQ: AtomicU32 = AtomicU32::new(0);

/// `prefix` + pid + counter: unique across tests and concurrent runs, and
/// short enough for an interface name with a 2-letter prefix.
fn unique(prefix: &str) -> String {
    let name = format!("{prefix}{}x{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    assert!(name.len() <= 15 || prefix.starts_with("vswpt-"), "{name} too long for an interface");
    name
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"))
}

/// Runs `ip args...` and panics with its stderr on failure.
fn ip(args: &[&str]) {
    let out = run("ip", args);
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Runs a command inside namespace `ns` and panics on failure.
fn ns_exec(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    let out = run("ip", &all);
    assert!(out.status.success(), "ip {}: {}", all.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deletes what a test made, in its Drop, so a panicking test cleans up.
#[derive(Default)]
struct Cleanup {
    links: Vec<String>,
    netns: Vec<String>,
}

impl Cleanup {
    fn netns(&mut self, prefix: &str) -> String {
        let name = unique(&format!("vswpt-{prefix}-"));
        ip(&["netns", "add", &name]);
        self.netns.push(name.clone());
        // No IPv6 chatter (router solicitations, MLD, DAD) in the counts.
        for key in ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"] {
            ns_exec(&name, &["sysctl", "-qw", key]);
        }
        name
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = Command::new("ip").args(["link", "del", l]).output();
        }
        for n in &self.netns {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// A tap in the root namespace that the kernel sends nothing on by itself
/// (IPv6 off before it comes up), so tests see only their own frames.
fn quiet_tap(config: TapConfig) -> Tap {
    let tap = Tap::create(&TapConfig { up: false, ..config }).unwrap();
    let sysctl = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", tap.name());
    if let Err(e) = std::fs::write(&sysctl, "1") {
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{sysctl}: {e}"); // no IPv6 at all: quiet anyway
    }
    tap.netdev().unwrap().set_up(true).unwrap();
    tap
}

fn link_exists(name: &str) -> bool {
    run("ip", &["link", "show", "dev", name]).status.success()
}

fn pool(data_size: usize) -> Arc<BufferPool> {
    BufferPool::new(&BufferPoolConfig { buffers: 8192, data_size, prefer_huge: false }).unwrap()
}

// --- frames ------------------------------------------------------------------

const VSW_MAC: [u8; 6] = [0x02, 0x76, 0x73, 0x77, 0x00, 0x01];
const TEST_ETHERTYPE: u16 = 0x88b5; // IEEE local experimental

fn be16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A test frame carrying `seq`, padded to `len` bytes.
fn seq_frame(dst: [u8; 6], src: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut payload = vec![0u8; len.max(60) - 14];
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    eth(dst, src, TEST_ETHERTYPE, &payload)
}

fn test_seq(frame: &[u8]) -> Option<u32> {
    (frame.len() >= 18 && be16(frame, 12) == TEST_ETHERTYPE)
        .then(|| u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]]))
}

/// An IPv4/UDP frame (UDP checksum 0: none).
fn udp4(dst: [u8; 6], src: [u8; 6], sip: Ipv4Addr, dip: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let total = (20 + 8 + data.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&sip.octets());
    p.extend_from_slice(&dip.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&(8 + data.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(data);
    eth(dst, src, 0x0800, &p)
}

/// The reply an echo responder at (`mac`, `ip`) gives to `frame`: ARP
/// replies to requests for `ip`, echo replies to pings of `ip`.
fn answer(frame: &[u8], mac: [u8; 6], ip: Ipv4Addr) -> Option<(Vec<u8>, bool)> {
    if frame.len() < 14 {
        return None;
    }
    let peer: [u8; 6] = frame[6..12].try_into().unwrap();
    match be16(frame, 12) {
        0x0806 => {
            let a = frame.get(14..42)?;
            if be16(a, 6) != 1 || a[24..28] != ip.octets() {
                return None;
            }
            let mut r = vec![0, 1, 8, 0, 6, 4, 0, 2];
            r.extend_from_slice(&mac);
            r.extend_from_slice(&ip.octets());
            r.extend_from_slice(&a[8..18]); // requester's MAC and IP
            Some((eth(peer, mac, 0x0806, &r), true))
        }
        0x0800 => {
            let p = &frame[14..];
            let ihl = ((*p.first()? & 0x0f) as usize) * 4;
            let total = be16(p, 2) as usize;
            if p.len() < total || total < ihl + 8 || p[9] != 1 || p[16..20] != ip.octets() || p[ihl] != 8 {
                return None;
            }
            let mut r = p[..total].to_vec();
            r[12..16].copy_from_slice(&p[16..20]);
            r[16..20].copy_from_slice(&p[12..16]);
            r[ihl] = 0; // echo reply
            r[ihl + 2..ihl + 4].copy_from_slice(&[0, 0]);
            let c = checksum(&r[ihl..]);
            r[ihl + 2..ihl + 4].copy_from_slice(&c.to_be_bytes());
            Some((eth(peer, mac, 0x0800, &r), false))
        }
        _ => None,
    }
}

#[derive(Debug, Default)]
struct Answered {
    arp: u64,
    echo: u64,
}

/// Answers ARP and echo requests on `queues` until `stop` is set.
fn respond<Q: RxQueue + TxQueue>(
    queues: &mut [Q],
    pool: &Arc<BufferPool>,
    ip: Ipv4Addr,
    stop: &AtomicBool,
) -> Answered {
    let mut bufs = pool.worker();
    let (mut rx, mut tx) = (Vec::new(), Vec::new());
    let mut answered = Answered::default();
    while !stop.load(Ordering::Relaxed) {
        let mut got = 0;
        for q in queues.iter_mut() {
            rx.clear();
            got += q.rx_burst(&mut bufs, &mut rx, 256);
            for &p in &rx {
                if let Some((reply, is_arp)) = answer(bufs.data(p), VSW_MAC, ip) {
                    let o = bufs.alloc().expect("pool");
                    assert!(bufs.write(o, &reply));
                    tx.push(o);
                    if is_arp {
                        answered.arp += 1;
                    } else {
                        answered.echo += 1;
                    }
                }
            }
            bufs.free_bulk(&rx);
            if !tx.is_empty() {
                q.tx_burst(&mut bufs, &mut tx);
                assert!(tx.is_empty());
            }
        }
        if got == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    answered
}

/// Pings `target` from namespace `ns` while a responder runs on `queues`;
/// returns ping's output and what the responder answered.
fn ping_with_responder<Q: RxQueue + TxQueue>(
    queues: &mut [Q],
    pool: &Arc<BufferPool>,
    ns: &str,
    target: Ipv4Addr,
    count: u32,
) -> (Output, Answered) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = s.spawn(|| respond(queues, pool, target, &stop));
        let t = target.to_string();
        let c = count.to_string();
        let out =
            Command::new("ip").args(["netns", "exec", ns, "ping", "-n", "-c", &c, "-i", "0.2", "-W", "2", &t]).output();
        stop.store(true, Ordering::Relaxed);
        let answered = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (out.expect("run ping"), answered)
    })
}

/// Receives on `q` until `want` frames satisfying `keep` arrived or
/// `timeout` passed; returns their bytes.
fn collect<Q: RxQueue + ?Sized>(
    q: &mut Q,
    bufs: &mut Buffers,
    want: usize,
    timeout: Duration,
    keep: impl Fn(&[u8]) -> bool,
) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut v: Vec<PacketId> = Vec::new();
    let end = Instant::now() + timeout;
    while got.len() < want && Instant::now() < end {
        v.clear();
        if q.rx_burst(bufs, &mut v, 256) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        for &p in &v {
            let d = bufs.data(p);
            if keep(d) {
                got.push(d.to_vec());
            }
        }
        bufs.free_bulk(&v);
    }
    got
}

fn send_frames<Q: TxQueue + ?Sized>(q: &mut Q, bufs: &mut Buffers, frames: &[Vec<u8>]) {
    let mut v = Vec::new();
    for f in frames {
        let p = bufs.alloc().expect("pool");
        assert!(bufs.write(p, f));
        v.push(p);
    }
    q.tx_burst(bufs, &mut v);
    assert!(v.is_empty(), "tx_burst takes every packet");
}

// --- a plain packet socket on the kernel side --------------------------------

/// A plain AF_PACKET socket bound to a device: the kernel-side sender and
/// receiver of raw frames.
struct Raw(OwnedFd);

impl Raw {
    /// Bound to `ifname` in the calling thread's namespace; receives every
    /// protocol when `receive`, nothing otherwise.
    fn bind(ifname: &str, receive: bool) -> std::io::Result<Raw> {
        let index = vswitch_port::netdev::ifindex(ifname)?;
        let proto = if receive { (libc::ETH_P_ALL as u16).to_be() } else { 0 };
        // SAFETY: plain socket(2); checked below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto as i32) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fresh descriptor, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = index as i32;
        // SAFETY: `sll` is a live sockaddr_ll of the size passed.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let big: libc::c_int = 16 << 20;
        // SAFETY: `big` is a live c_int of the size passed.
        unsafe {
            libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, (&big as *const i32).cast(), 4);
        }
        Ok(Raw(fd))
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is a live slice of the length passed.
        let r = unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(r, frame.len() as isize, "raw send: {}", std::io::Error::last_os_error());
    }

    /// Frames received (incoming only) until `idle` passes without one.
    fn drain(&self, idle: Duration) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let mut pfd = libc::pollfd { fd: self.0.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one live pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, idle.as_millis() as i32) };
            if n <= 0 {
                return out;
            }
            // SAFETY: all-zero is a valid sockaddr_ll.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: `buf` and `from` are live and writable for the sizes passed.
            let r = unsafe {
                libc::recvfrom(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if r > 0 && from.sll_pkttype != libc::PACKET_OUTGOING {
                out.push(buf[..r as usize].to_vec());
            }
        }
    }
}

// --- tap -------------------------------------------------------------------

#[test]
fn tap_in_a_namespace_answers_the_kernels_ping() {
    let mut clean = Cleanup::default();
    let ns = clean.netns("tap");
    let name = unique("vt");
    clean.links.push(name.clone());
    let kernel_mac = [0x02, 0x6b, 0x65, 0x72, 0x6e, 0x01];
    let mut tap =
        Tap::create(&TapConfig { mac: Some(kernel_mac), mtu: Some(1400), ..TapConfig::named(&name) }).unwrap();
    assert!(tap.created());
    let dev = tap.netdev().unwrap();
    assert_eq!(dev.mtu().unwrap(), 1400);
    assert_eq!(dev.mac().unwrap(), kernel_mac);
    assert!(dev.link().unwrap().admin_up);
    let mut queues = tap.take_queues(3);
    assert_eq!(queues.len(), 1);
    // A tap moves into another namespace with its descriptor open.
    ip(&["link", "set", &name, "netns", &ns]);
    ip(&["-n", &ns, "addr", "add", "10.77.0.1/24", "dev", &name]);
    ip(&["-n", &ns, "link", "set", &name, "up"]);
    let pool = pool(2048);
    let (out, answered) = ping_with_responder(&mut queues, &pool, &ns, "10.77.0.2".parse().unwrap(), 3);
    assert!(
        out.status.success(),
        "ping through the tap failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(answered.arp >= 1 && answered.echo >= 3, "{answered:?}");
    let rx = RxQueue::stats(&queues[0]);
    let tx = TxQueue::stats(&queues[0]);
    assert!(rx.packets >= 4 && tx.packets >= 4, "rx {rx:?} tx {tx:?}");
    assert_eq!(tx.drops, 0);
    assert_eq!(RxQueue::port(&queues[0]), 3);
    // The kernel counted what the responder sent as received.
    let rx_kernel: u64 =
        ns_exec(&ns, &["cat", &format!("/sys/class/net/{name}/statistics/rx_packets")]).trim().parse().unwrap();
    assert!(rx_kernel >= tx.packets, "kernel rx {rx_kernel} < sent {}", tx.packets);
    assert!(queues[0].wait_fd().is_some());
}

#[test]
fn tap_multi_queue_receives_flows_on_every_queue_and_sends_from_each() {
    let mut clean = Cleanup::default();
    let name = unique("vq");
    clean.links.push(name.clone());
    let mut tap = quiet_tap(TapConfig { queues: 2, ..TapConfig::named(&name) });
    let mut queues = tap.take_queues(0);
    assert_eq!(queues.len(), 2);
    assert_eq!(tap.take_queues(0).len(), 0, "queues are handed out once");
    let sys = std::fs::read_dir(format!("/sys/class/net/{name}/queues")).unwrap();
    let mut q: Vec<String> = sys.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    q.sort();
    assert_eq!(q, ["rx-0", "rx-1", "tx-0", "tx-1"]);

    // Kernel → vswitch: 64 UDP flows sent on the device by a packet socket.
    let kernel_side = Raw::bind(&name, true).unwrap();
    let kernel_mac = NetDev::open(&name).unwrap().mac().unwrap();
    let (a, b) = (Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 1, 0, 2));
    for i in 0..640u16 {
        kernel_side.send(&udp4(VSW_MAC, kernel_mac, a, b, 1000 + i % 64, 53, &i.to_be_bytes()));
    }
    let pool = pool(2048);
    let mut bufs = pool.worker();
    let is_ours = |f: &[u8]| f.len() > 42 && be16(f, 12) == 0x0800 && f[23] == 17 && f[26..30] == a.octets();
    let mut per_queue = Vec::new();
    let mut owner: HashMap<u16, usize> = HashMap::new();
    for (qi, queue) in queues.iter_mut().enumerate() {
        let got = collect(queue, &mut bufs, 640, Duration::from_millis(500), is_ours);
        for f in &got {
            let sport = be16(f, 34);
            assert_eq!(*owner.entry(sport).or_insert(qi), qi, "flow {sport} on two queues");
        }
        per_queue.push(got.len());
    }
    assert_eq!(per_queue.iter().sum::<usize>(), 640, "{per_queue:?}");
    assert!(per_queue.iter().all(|&n| n > 0), "every queue gets flows: {per_queue:?}");

    // vswitch → kernel: frames written on either queue arrive.
    for (qi, queue) in queues.iter_mut().enumerate() {
        let frames: Vec<Vec<u8>> =
            (0..50).map(|i| seq_frame(kernel_mac, VSW_MAC, (qi as u32) << 16 | i, 100)).collect();
        send_frames(queue, &mut bufs, &frames);
        assert_eq!(TxQueue::stats(queue).packets, 50);
    }
    let seen: HashSet<u32> = kernel_side.drain(Duration::from_millis(200)).iter().filter_map(|f| test_seq(f)).collect();
    for qi in 0..2u32 {
        for i in 0..50 {
            assert!(seen.contains(&(qi << 16 | i)), "frame {i} of queue {qi} missing");
        }
    }
}

#[test]
fn tap_persist_attach_and_removal() {
    let mut clean = Cleanup::default();
    let name = unique("vp");
    clean.links.push(name.clone());
    // Not persistent: gone when the last descriptor closes.
    let mut tap = Tap::create(&TapConfig::named(&name)).unwrap();
    let queues = tap.take_queues(0);
    drop(tap);
    assert!(link_exists(&name), "a queue still holds the device");
    let clone = queues[0].try_clone().unwrap();
    drop(queues);
    assert!(link_exists(&name), "the clone still holds the device");
    drop(clone);
    assert!(!link_exists(&name), "removed with its last descriptor");

    // Persistent: survives, can be attached to, and un-persisted.
    let tap = Tap::create(&TapConfig { persist: true, ..TapConfig::named(&name) }).unwrap();
    let index = tap.ifindex();
    assert!(tap.persistent());
    let e = Tap::create(&TapConfig::named(&name)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains(&name), "{e}");
    drop(tap);
    assert!(link_exists(&name), "persistent device outlives its descriptors");
    let mut again = Tap::attach(&TapConfig { mtu: Some(1300), ..TapConfig::named(&name) }).unwrap();
    assert!(!again.created());
    assert_eq!(again.ifindex(), index);
    assert_eq!(again.netdev().unwrap().mtu().unwrap(), 1300);
    drop(again.take_queues(0));
    again.set_persist(false).unwrap();
    drop(again);
    assert!(!link_exists(&name), "un-persisted device is removed on close");

    // No name: the kernel picks one.
    let unnamed = Tap::create(&TapConfig { up: false, ..TapConfig::default() }).unwrap();
    let picked = unnamed.name().to_string();
    clean.links.push(picked.clone());
    assert!(picked.starts_with("tap") && link_exists(&picked), "{picked}");
    drop(unnamed);
    assert!(!link_exists(&picked));

    // Attaching to nothing names the device.
    let e = Tap::attach(&TapConfig::named(&name)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains(&name), "{e}");
    assert!(!link_exists(&name), "attach does not create");

    // A failed setting after creation leaves nothing behind.
    let e = Tap::create(&TapConfig { mtu: Some(1_000_000), persist: true, ..TapConfig::named(&name) }).unwrap_err();
    assert!(e.to_string().contains(&name) && e.to_string().contains("MTU"), "{e}");
    assert!(!link_exists(&name), "half-created device removed");
}

#[test]
fn tap_drops_frames_larger_than_a_buffer() {
    let mut clean = Cleanup::default();
    let name = unique("vo");
    clean.links.push(name.clone());
    let mut tap = quiet_tap(TapConfig::named(&name));
    let mut q = tap.take_queues(0).pop().unwrap();
    let kernel_side = Raw::bind(&name, false).unwrap();
    let kernel_mac = NetDev::open(&name).unwrap().mac().unwrap();
    let small_pool = pool(256);
    let mut bufs = small_pool.worker();
    kernel_side.send(&seq_frame(VSW_MAC, kernel_mac, 1, 300)); // 300 > 256
    kernel_side.send(&seq_frame(VSW_MAC, kernel_mac, 2, 256)); // fits exactly
    kernel_side.send(&seq_frame(VSW_MAC, kernel_mac, 3, 100));
    let got = collect(&mut q, &mut bufs, 2, Duration::from_millis(500), |f| test_seq(f).is_some());
    let seqs: Vec<u32> = got.iter().filter_map(|f| test_seq(f)).collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(got[0].len(), 256);
    assert_eq!(q.counters().rx_oversize, 1);
    assert_eq!(RxQueue::stats(&q).drops, 1);
}

// --- AF_PACKET ---------------------------------------------------------------

/// A veth pair: `a` in namespace `ns_a` with 10.88.0.1/24 (the kernel
/// side), `b` in `ns_b` with no address (where vswitch binds).
struct Veth {
    ns_a: String,
    ns_b: String,
    a: String,
    b: String,
    _clean: Cleanup,
}

impl Veth {
    fn new() -> Veth {
        let mut clean = Cleanup::default();
        let ns_a = clean.netns("a");
        let ns_b = clean.netns("b");
        let a = unique("va");
        let b = unique("vb");
        clean.links.push(a.clone());
        #[rustfmt::skip]
        ip(&["link", "add", &a, "numtxqueues", "1", "numrxqueues", "1", "type", "veth",
             "peer", "name", &b, "numtxqueues", "1", "numrxqueues", "1"]);
        ip(&["link", "set", &a, "netns", &ns_a]);
        ip(&["link", "set", &b, "netns", &ns_b]);
        ip(&["-n", &ns_a, "addr", "add", "10.88.0.1/24", "dev", &a]);
        ip(&["-n", &ns_a, "link", "set", &a, "up"]);
        ip(&["-n", &ns_b, "link", "set", &b, "up"]);
        Veth { ns_a, ns_b, a, b, _clean: clean }
    }

    fn open(&self, config: AfPacketConfig, count: usize) -> Vec<AfPacketQueue> {
        let config = AfPacketConfig { ifname: self.b.clone(), ..config };
        in_netns(&netns_path(&self.ns_b), move || AfPacketQueue::open_queues(&config, 5, count)).unwrap()
    }

    /// A packet socket on `a`, in its namespace.
    fn kernel_side(&self, receive: bool) -> Raw {
        let a = self.a.clone();
        in_netns(&netns_path(&self.ns_a), move || Raw::bind(&a, receive)).unwrap()
    }

    /// A packet socket on `b`, in its namespace: some other program
    /// sending out of the device vswitch is bound to.
    fn other_program_on_b(&self) -> Raw {
        let b = self.b.clone();
        in_netns(&netns_path(&self.ns_b), move || Raw::bind(&b, false)).unwrap()
    }

    fn mac_a(&self) -> [u8; 6] {
        let a = self.a.clone();
        in_netns(&netns_path(&self.ns_a), move || NetDev::open(&a)?.mac()).unwrap()
    }
}

#[test]
fn af_packet_answers_the_kernels_ping_across_a_veth() {
    let veth = Veth::new();
    let mut queues = veth.open(AfPacketConfig::default(), 1);
    let q = &queues[0];
    assert_eq!(q.fanout_group(), None);
    assert_eq!(q.mtu().unwrap(), 1500);
    assert!(q.link().unwrap().running);
    assert_eq!(RxQueue::port(q), 5);
    let pool = pool(2048);
    let (out, answered) = ping_with_responder(&mut queues, &pool, &veth.ns_a, "10.88.0.2".parse().unwrap(), 5);
    assert!(
        out.status.success(),
        "ping across the veth failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(answered.arp >= 1 && answered.echo >= 5, "{answered:?}");
    let s = queues[0].counters();
    assert!(s.rx_packets >= 6 && s.tx_packets >= 6, "{s:?}");
    assert_eq!((s.kernel_drops, s.tx_ring_full, s.tx_bad_length, s.rx_truncated), (0, 0, 0, 0), "{s:?}");
    assert!(s.rx_packets <= s.kernel_packets);
    // Frames other programs send out of the device are not received.
    let other = veth.other_program_on_b();
    let peer = veth.kernel_side(true);
    let mac_a = veth.mac_a();
    for i in 0..20 {
        other.send(&seq_frame(mac_a, VSW_MAC, i, 70));
    }
    assert_eq!(peer.drain(Duration::from_millis(200)).iter().filter(|f| test_seq(f).is_some()).count(), 20);
    let mut bufs = pool.worker();
    assert_no_outgoing(&mut queues, &mut bufs);
}

#[test]
fn af_packet_receives_a_burst_in_order_without_loss() {
    let veth = Veth::new();
    let mut q = veth.open(AfPacketConfig::default(), 1).pop().unwrap();
    let sender = veth.kernel_side(false);
    let mac_a = veth.mac_a();
    const N: u32 = 2000;
    let pool = pool(2048);
    let mut bufs = pool.worker();
    // Sent in chunks of 100 and drained in between, as a poll-mode worker
    // would: the ring (not a receiver that never reads) is what is tested.
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
        assert_eq!(f.len(), 60 + i % 200, "frame {i} length");
    }
    let s = q.counters();
    assert_eq!(s.kernel_drops, 0, "{s:?}");
    assert!(s.kernel_packets >= N as u64, "{s:?}");
    assert_eq!(RxQueue::stats(&q).drops, 0);
}

#[test]
fn af_packet_transmits_bursts_to_the_kernel() {
    let veth = Veth::new();
    let q = veth.open(AfPacketConfig::default(), 1).pop().unwrap();
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
    let s = tx.counters();
    assert_eq!((s.tx_packets, s.tx_ring_full, s.tx_kick_errors), (N as u64, 0, 0), "{s:?}");
    // Frames longer than the MTU allows are refused and counted.
    let big = seq_frame(mac_a, VSW_MAC, 99_999, 1600);
    send_frames(&mut tx, &mut bufs, &[big]);
    assert_eq!(tx.counters().tx_bad_length, 1);
    assert_eq!(TxQueue::stats(&tx).drops, 1);
}

#[test]
fn af_packet_fanout_spreads_flows_and_ignores_outgoing_frames() {
    let veth = Veth::new();
    let mut queues = veth.open(AfPacketConfig::default(), 2);
    let group = queues[0].fanout_group().expect("fanout group");
    assert_eq!(queues[1].fanout_group(), Some(group));
    let sender = veth.kernel_side(true);
    let mac_a = veth.mac_a();
    let (a, b) = (Ipv4Addr::new(10, 88, 0, 1), Ipv4Addr::new(10, 88, 0, 2));
    const FLOWS: u16 = 64;
    const PER_FLOW: u16 = 20;
    for i in 0..FLOWS * PER_FLOW {
        sender.send(&udp4(VSW_MAC, mac_a, a, b, 2000 + i % FLOWS, 7, &i.to_be_bytes()));
    }
    let pool = pool(2048);
    let mut bufs = pool.worker();
    let is_ours = |f: &[u8]| f.len() > 42 && be16(f, 12) == 0x0800 && f[23] == 17 && be16(f, 36) == 7;
    let mut per_queue = Vec::new();
    let mut owner: HashMap<u16, usize> = HashMap::new();
    for (qi, q) in queues.iter_mut().enumerate() {
        let got = collect(q, &mut bufs, (FLOWS * PER_FLOW) as usize, Duration::from_millis(500), is_ours);
        for f in &got {
            let sport = be16(f, 34);
            assert_eq!(*owner.entry(sport).or_insert(qi), qi, "flow {sport} reached two sockets");
        }
        per_queue.push(got.len());
    }
    assert_eq!(per_queue.iter().sum::<usize>(), (FLOWS * PER_FLOW) as usize, "{per_queue:?}");
    assert!(per_queue.iter().all(|&n| n > 0), "both sockets get flows: {per_queue:?}");
    assert_eq!(owner.len(), FLOWS as usize);

    // What a member sends, and what any other program sends out of the
    // device, reaches the peer but no member's receive ring.
    let frames: Vec<Vec<u8>> = (0..100).map(|i| seq_frame(mac_a, VSW_MAC, i, 80)).collect();
    send_frames(&mut queues[0], &mut bufs, &frames);
    let other = veth.other_program_on_b();
    for i in 100..200 {
        other.send(&seq_frame(mac_a, VSW_MAC, i, 80));
    }
    let at_kernel = sender.drain(Duration::from_millis(300)).iter().filter(|f| test_seq(f).is_some()).count();
    assert_eq!(at_kernel, 200);
    assert_no_outgoing(&mut queues, &mut bufs);
}

/// No queue receives frames of the test's ethertype (all of them were
/// sent out of the device), nor counts having skipped any.
fn assert_no_outgoing(queues: &mut [AfPacketQueue], bufs: &mut Buffers) {
    for q in queues.iter_mut() {
        let echoed = collect(q, bufs, 1, Duration::from_millis(100), |f| test_seq(f).is_some());
        assert!(echoed.is_empty(), "a socket received a frame sent out of its device");
        assert_eq!(q.counters().rx_outgoing, 0, "the kernel filters outgoing frames");
    }
}

#[test]
fn af_packet_counts_kernel_drops_when_the_ring_overflows() {
    let veth = Veth::new();
    // Two 4 KiB blocks: a few dozen small frames.
    let config = AfPacketConfig { block_size: 4096, block_count: 2, ..AfPacketConfig::default() };
    let mut q = veth.open(config, 1).pop().unwrap();
    let sender = veth.kernel_side(false);
    let mac_a = veth.mac_a();
    const N: u32 = 500;
    for seq in 0..N {
        sender.send(&seq_frame(VSW_MAC, mac_a, seq, 60));
    }
    let pool = pool(2048);
    let mut bufs = pool.worker();
    let got = collect(&mut q, &mut bufs, N as usize, Duration::from_millis(300), |f| test_seq(f).is_some());
    let s = q.counters();
    assert!(s.kernel_drops > 0, "{s:?}");
    assert!(got.len() < N as usize && !got.is_empty());
    assert!(got.len() as u64 + s.kernel_drops >= N as u64, "received {} + dropped {}", got.len(), s.kernel_drops);
    assert!(s.kernel_packets >= N as u64, "{s:?}");
    assert!(RxQueue::stats(&q).drops >= s.kernel_drops);
    // Counters accumulate across reads (the kernel resets them on each).
    assert_eq!(q.counters().kernel_drops, s.kernel_drops);
    // The ring keeps working after overflowing.
    sender.send(&seq_frame(VSW_MAC, mac_a, N, 60));
    let after = collect(&mut q, &mut bufs, 1, Duration::from_secs(1), |f| test_seq(f) == Some(N));
    assert_eq!(after.len(), 1);
}

#[test]
fn af_packet_restores_vlan_tags_and_completes_offloaded_checksums() {
    let veth = Veth::new();
    let mut q = veth.open(AfPacketConfig::default(), 1).pop().unwrap();
    let pool = pool(2048);
    let mut bufs = pool.worker();
    // Tagged frames: the receiving kernel moves the outer tag out of the
    // frame before packet sockets see it; the queue must put it back.
    let sender = veth.kernel_side(false);
    let mac_a = veth.mac_a();
    let inner = seq_frame(VSW_MAC, mac_a, 7, 80);
    let tag = |tpid: u16, tci: u16, f: &[u8]| {
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&tpid.to_be_bytes());
        t.extend_from_slice(&tci.to_be_bytes());
        t.extend_from_slice(&f[12..]);
        t
    };
    let dot1q = tag(0x8100, 0x6064, &inner); // PCP 3, VLAN 100
    let qinq = tag(0x88a8, 0x00c8, &tag(0x8100, 0x0064, &inner)); // S-VLAN 200, C-VLAN 100
    sender.send(&dot1q);
    sender.send(&qinq);
    let tagged = |f: &[u8]| matches!(be16(f, 12), 0x8100 | 0x88a8);
    let got = collect(&mut q, &mut bufs, 2, Duration::from_secs(2), tagged);
    assert_eq!(got, [dot1q, qinq], "frames as sent, tags in place");

    // The kernel's own UDP leaves the checksum to the (veth) offload.
    let mac = vswitch_port::netdev::fmt_mac(&VSW_MAC);
    ip(&["-n", &veth.ns_a, "neigh", "add", "10.88.0.2", "lladdr", &mac, "dev", &veth.a]);
    in_netns(&netns_path(&veth.ns_a), || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
        s.send_to(b"an odd-length datagram", "10.88.0.2:9")?;
        Ok(())
    })
    .unwrap();
    let udp_to_9 = |f: &[u8]| f.len() > 42 && be16(f, 12) == 0x0800 && f[23] == 17 && be16(f, 36) == 9;
    let got = collect(&mut q, &mut bufs, 1, Duration::from_secs(2), udp_to_9);
    assert_eq!(got.len(), 1);
    let ipv4 = &got[0][14..];
    let src = Ipv4Addr::new(ipv4[12], ipv4[13], ipv4[14], ipv4[15]);
    let dst = Ipv4Addr::new(ipv4[16], ipv4[17], ipv4[18], ipv4[19]);
    let seg = &ipv4[20..be16(ipv4, 2) as usize];
    assert_eq!(&seg[8..], b"an odd-length datagram");
    assert_eq!(fold(pseudo_header_v4(&src, &dst, 17, seg.len() as u32) + sum(seg)), 0xffff, "UDP checksum");
    assert_eq!(q.counters().rx_checksums, 1, "the kernel left this checksum to offload");
}

#[test]
fn af_packet_reads_mtu_link_state_and_sets_promiscuous_mode() {
    let veth = Veth::new();
    let promiscuity = || {
        let out = ns_exec(&veth.ns_b, &["ip", "-d", "link", "show", "dev", &veth.b]);
        let at = out.find("promiscuity ").expect("promiscuity in ip -d output");
        out[at + 12..].split_whitespace().next().unwrap().parse::<u32>().unwrap()
    };
    assert_eq!(promiscuity(), 0);
    let q = veth.open(AfPacketConfig::default(), 1).pop().unwrap();
    assert_eq!(promiscuity(), 1, "the socket made the device promiscuous");
    ip(&["-n", &veth.ns_b, "link", "set", &veth.b, "mtu", "1400"]);
    assert_eq!(q.mtu().unwrap(), 1400);
    ip(&["-n", &veth.ns_a, "link", "set", &veth.a, "down"]);
    let l = q.link().unwrap();
    assert!(l.admin_up && !l.running, "peer down: no carrier: {l:?}");
    ip(&["-n", &veth.ns_a, "link", "set", &veth.a, "up"]);
    let end = Instant::now() + Duration::from_secs(2);
    while !q.link().unwrap().running && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(q.link().unwrap().running);
    assert_eq!(q.netdev().current_name().unwrap(), veth.b);
    drop(q);
    assert_eq!(promiscuity(), 0, "closing the socket undoes promiscuous mode");
}

/// Whether `fd` becomes readable within `ms` milliseconds.
fn readable(fd: std::os::fd::BorrowedFd<'_>, ms: i32) -> bool {
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one live pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    n == 1 && pfd.revents & libc::POLLIN != 0
}

#[test]
fn wait_fds_wake_an_interrupt_mode_worker_when_frames_arrive() {
    let pool = pool(2048);
    let mut bufs = pool.worker();
    let mut clean = Cleanup::default();
    let name = unique("vw");
    clean.links.push(name.clone());
    let mut tap = quiet_tap(TapConfig::named(&name));
    let tq = tap.take_queues(0).pop().unwrap();
    let kernel_side = Raw::bind(&name, false).unwrap();
    let kernel_mac = NetDev::open(&name).unwrap().mac().unwrap();
    assert!(!readable(tq.wait_fd().unwrap(), 0), "nothing queued yet");
    kernel_side.send(&seq_frame(VSW_MAC, kernel_mac, 1, 64));
    assert!(readable(tq.wait_fd().unwrap(), 1000), "tap fd readable once a frame is queued");

    let veth = Veth::new();
    let mut aq = veth.open(AfPacketConfig::default(), 1).pop().unwrap();
    assert!(!readable(aq.wait_fd().unwrap(), 0), "empty ring");
    veth.kernel_side(false).send(&seq_frame(VSW_MAC, veth.mac_a(), 2, 64));
    assert!(readable(aq.wait_fd().unwrap(), 1000), "socket readable once a block is handed over");
    let got = collect(&mut aq, &mut bufs, 1, Duration::from_secs(1), |f| test_seq(f) == Some(2));
    assert_eq!(got.len(), 1);
    assert!(!readable(aq.wait_fd().unwrap(), 20), "block handed back: nothing to read");
}

#[test]
fn af_packet_errors_name_the_device_and_the_step() {
    let missing = unique("vn");
    let e = AfPacketQueue::open(&AfPacketConfig::device(&missing), 0).err().expect("no such device");
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains(&missing) && e.to_string().contains("no such device"), "{e}");
    let e = AfPacketQueue::open(&AfPacketConfig { block_size: 1000, ..AfPacketConfig::device("lo") }, 0)
        .err()
        .expect("bad block size");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("af_packet lo") && e.to_string().contains("block_size"), "{e}");
    let e = AfPacketQueue::open_queues(&AfPacketConfig::device("lo"), 0, 0).err().expect("zero queues");
    assert!(e.to_string().contains("at least 1"), "{e}");
    // Joining a fanout group that exists on another device fails, naming the step.
    let veth = Veth::new();
    let queues = veth.open(AfPacketConfig::default(), 2);
    let group = queues[0].fanout_group().unwrap();
    let e = in_netns(&netns_path(&veth.ns_b), || {
        let cfg = AfPacketConfig {
            fanout: Some(vswitch_port::af_packet::Fanout {
                group: Some(group),
                mode: vswitch_port::af_packet::FanoutMode::LoadBalance,
            }),
            ..AfPacketConfig::device("lo")
        };
        AfPacketQueue::open(&cfg, 0)
    })
    .err()
    .expect("mismatched fanout join");
    assert!(e.to_string().contains("af_packet lo") && e.to_string().contains("fanout"), "{e}");
}
