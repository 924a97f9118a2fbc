//! Helpers the kernel test binaries (`kernel_ports.rs`, `af_xdp.rs`)
//! share: unique names, `ip` commands and the `Cleanup` guard that deletes
//! namespaces and links even when a test panics; a buffer pool, receiving
//! (`collect`), sending (`send_frames`) and `readable`; test frames
//! (`eth`, `seq_frame`, `test_seq`); the ARP/ICMP echo responder
//! (`answer`, `respond`, `ping_with_responder`); `Raw`, a plain packet
//! socket on the kernel side; and `Veth`, a veth pair across two
//! namespaces (each binary adds how it opens its backend on it).

#![allow(dead_code)] // each test binary uses a subset

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vswitch_packet::{BufferPool, BufferPoolConfig, Buffers, PacketId};
use vswitch_port::netdev::{in_netns, netns_path, NetDev};
use vswitch_port::{RxQueue, TxQueue};
use vswitch_wire::checksum::checksum;

// --- names, commands, cleanup ---------------------------------------------

static SEQ: AtomicU32 = AtomicU32::new(0);

/// `prefix` + pid + counter: unique across tests and concurrent runs.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}{}x{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// A [`unique_name`] for an interface: short enough with a 2-letter
/// prefix; panics if longer than an interface name may be.
pub fn unique(prefix: &str) -> String {
    let name = unique_name(prefix);
    assert!(name.len() <= 15, "{name} too long for an interface");
    name
}

pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"))
}

/// Runs `ip args...` and panics with its stderr on failure.
pub fn ip(args: &[&str]) {
    let out = run("ip", args);
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Runs a command inside namespace `ns` and panics on failure.
pub fn ns_exec(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    let out = run("ip", &all);
    assert!(out.status.success(), "ip {}: {}", all.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deletes what a test made, in its Drop, so a panicking test cleans up.
#[derive(Default)]
pub struct Cleanup {
    pub links: Vec<String>,
    pub netns: Vec<String>,
}

impl Cleanup {
    /// A new namespace named `prefix`-pid-counter (the prefix names the
    /// test binary, e.g. `vswpt-tap`), without IPv6.
    pub fn netns(&mut self, prefix: &str) -> String {
        let name = unique_name(&format!("{prefix}-"));
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

// --- buffers, receiving, sending ------------------------------------------------

pub fn pool(data_size: usize) -> Arc<BufferPool> {
    BufferPool::new(&BufferPoolConfig { buffers: 8192, data_size, prefer_huge: false }).unwrap()
}

/// Receives on `q` until `want` frames satisfying `keep` arrived or
/// `timeout` passed; returns their bytes.
pub fn collect<Q: RxQueue + ?Sized>(
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

pub fn send_frames<Q: TxQueue + ?Sized>(q: &mut Q, bufs: &mut Buffers, frames: &[Vec<u8>]) {
    let mut v = Vec::new();
    for f in frames {
        let p = bufs.alloc().expect("pool");
        assert!(bufs.write(p, f));
        v.push(p);
    }
    q.tx_burst(bufs, &mut v);
    assert!(v.is_empty(), "tx_burst takes every packet");
}

/// Whether `fd` becomes readable within `ms` milliseconds.
pub fn readable(fd: std::os::fd::BorrowedFd<'_>, ms: i32) -> bool {
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one live pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    n == 1 && pfd.revents & libc::POLLIN != 0
}

// --- frames ------------------------------------------------------------------

pub const VSW_MAC: [u8; 6] = [0x02, 0x76, 0x73, 0x77, 0x00, 0x01];
pub const TEST_ETHERTYPE: u16 = 0x88b5; // IEEE local experimental

pub fn be16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A test frame carrying `seq`, padded to `len` bytes with a pattern that
/// depends on `seq` (so a byte-for-byte comparison catches a frame mixed
/// up with another).
pub fn seq_frame(dst: [u8; 6], src: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut payload = vec![0u8; len.max(60) - 14];
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in payload[4..].iter_mut().enumerate() {
        *b = (seq as usize + i) as u8;
    }
    eth(dst, src, TEST_ETHERTYPE, &payload)
}

pub fn test_seq(frame: &[u8]) -> Option<u32> {
    (frame.len() >= 18 && be16(frame, 12) == TEST_ETHERTYPE)
        .then(|| u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]]))
}

// --- the echo responder ---------------------------------------------------------

/// The reply an echo responder at (`mac`, `ip`) gives to `frame`: ARP
/// replies to requests for `ip`, echo replies to pings of `ip`.
pub fn answer(frame: &[u8], mac: [u8; 6], ip: Ipv4Addr) -> Option<(Vec<u8>, bool)> {
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
pub struct Answered {
    pub arp: u64,
    pub echo: u64,
}

/// Answers ARP and echo requests on `queues` until `stop` is set.
pub fn respond<Q: RxQueue + TxQueue>(
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

/// Pings `target` from namespace `ns` while a responder runs on `queues`
/// (one queue: `std::slice::from_mut(&mut q)`); returns ping's output and
/// what the responder answered.
pub fn ping_with_responder<Q: RxQueue + TxQueue>(
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

/// Panics with ping's output unless it succeeded.
pub fn assert_ping_ok(out: &Output) {
    assert!(
        out.status.success(),
        "ping across the veth failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// --- a plain packet socket on the kernel side --------------------------------

/// A plain AF_PACKET socket bound to a device: the kernel-side sender and
/// receiver of raw frames.
pub struct Raw(OwnedFd);

impl Raw {
    /// Bound to `ifname` in the calling thread's namespace; receives every
    /// protocol when `receive`, nothing otherwise.
    pub fn bind(ifname: &str, receive: bool) -> std::io::Result<Raw> {
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

    pub fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is a live slice of the length passed.
        let r = unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(r, frame.len() as isize, "raw send: {}", std::io::Error::last_os_error());
    }

    /// Frames received (incoming only) until `idle` passes without one.
    pub fn drain(&self, idle: Duration) -> Vec<Vec<u8>> {
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

// --- the veth pair -------------------------------------------------------------

/// A veth pair: `a` in namespace `ns_a` with 10.88.0.1/24 (the kernel
/// side), `b` in `ns_b` with no address (where vswitch binds). Each test
/// binary adds `Veth::new` (its names) and how it opens its backend on `b`
/// in an `impl Veth` of its own.
pub struct Veth {
    pub ns_a: String,
    pub ns_b: String,
    pub a: String,
    pub b: String,
    _clean: Cleanup,
}

impl Veth {
    /// Namespaces `{netns}-a-…` and `{netns}-b-…`, links `{link}a…` and
    /// `{link}b…` (`link`: one letter, to fit an interface name).
    pub fn create(netns: &str, link: &str) -> Veth {
        let mut clean = Cleanup::default();
        let ns_a = clean.netns(&format!("{netns}-a"));
        let ns_b = clean.netns(&format!("{netns}-b"));
        let a = unique(&format!("{link}a"));
        let b = unique(&format!("{link}b"));
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

    /// A packet socket on `a`, in its namespace.
    pub fn kernel_side(&self, receive: bool) -> Raw {
        let a = self.a.clone();
        in_netns(&netns_path(&self.ns_a), move || Raw::bind(&a, receive)).unwrap()
    }

    /// A packet socket on `b`, in its namespace: some other program
    /// sending out of the device vswitch is bound to.
    pub fn other_program_on_b(&self) -> Raw {
        let b = self.b.clone();
        in_netns(&netns_path(&self.ns_b), move || Raw::bind(&b, false)).unwrap()
    }

    pub fn mac_a(&self) -> [u8; 6] {
        let a = self.a.clone();
        in_netns(&netns_path(&self.ns_a), move || NetDev::open(&a)?.mac()).unwrap()
    }

    /// `ip -d link show` of `b`.
    pub fn link_b(&self) -> String {
        ns_exec(&self.ns_b, &["ip", "-d", "link", "show", "dev", &self.b])
    }
}
