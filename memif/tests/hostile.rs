//! A hostile client against our server: a raw socket speaking the
//! protocol by hand (bytes built from the C layout, descriptors passed
//! with libc), sending every kind of malformed message and, once
//! connected, writing malformed ring state into its own shared memory.
//!
//! The server must answer each violation with a DISCONNECT that says what
//! was wrong (or drop the frame and count it), never panic, and never
//! touch memory outside the regions: every frame it delivers is checked
//! against the bytes at the offsets the descriptors named.

mod common;

use common::*;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use vswitch_memif::{Interface, InterfaceConfig, LinkState, RxQueue, Server, ServerConfig, SocketAddr, TxQueue};

static SEQ: AtomicU32 = AtomicU32::new(0);
const T: Duration = Duration::from_secs(10);

fn sock_path() -> PathBuf {
    std::env::temp_dir().join(format!("vswm-h-{}-{}.sock", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)))
}

/// A server with interface 0 (2 queue pairs) and a short handshake
/// timeout.
fn server(secret: Option<&str>) -> (Server, Interface, PathBuf) {
    let path = sock_path();
    let mut cfg = ServerConfig::new(SocketAddr::Path(path.clone()));
    cfg.handshake_timeout = Duration::from_millis(500);
    let s = Server::bind(cfg).unwrap();
    let i = s
        .add_interface(InterfaceConfig { queues: 2, secret: secret.map(String::from), ..InterfaceConfig::new(0) })
        .unwrap();
    (s, i, path)
}

// --- raw protocol ----------------------------------------------------------

struct Raw {
    fd: OwnedFd,
}

impl Raw {
    /// A placeholder, replaced before use.
    fn connect_later() -> Raw {
        Raw { fd: eventfd() }
    }

    fn connect(path: &Path) -> Raw {
        // SAFETY: plain syscall.
        let fd = owned(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) });
        // SAFETY: all-zero sockaddr_un is valid.
        let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        sun.sun_family = libc::AF_UNIX as _;
        let p = path.to_str().unwrap().as_bytes();
        for (d, s) in sun.sun_path.iter_mut().zip(p) {
            *d = *s as _;
        }
        // SAFETY: valid address and length.
        cvt(unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&sun as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as _,
            )
        });
        let r = Raw { fd };
        let hello = r.recv().expect("HELLO");
        assert_eq!(u16::from_le_bytes([hello[0], hello[1]]), 2, "first message is HELLO");
        assert_eq!(hello.len(), 128);
        r
    }

    /// Sends `bytes` with `fds` attached (any number).
    fn send(&self, bytes: &[u8], fds: &[RawFd]) {
        send_with_fds(&self.fd, bytes, fds);
    }

    /// Next message, or None on EOF / nothing within 5 s.
    fn recv(&self) -> Option<Vec<u8>> {
        let mut p = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 5000) } <= 0 {
            return None;
        }
        let mut b = [0u8; 512];
        // SAFETY: reads into a local buffer.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), b.as_mut_ptr().cast(), b.len(), 0) };
        (n > 0).then(|| b[..n as usize].to_vec())
    }

    fn expect_ack(&self) {
        let m = self.recv().expect("an answer");
        assert_eq!(u16::from_le_bytes([m[0], m[1]]), 1, "expected ACK, got {}", describe(&m));
    }

    /// The DISCONNECT reason; then the server closes the socket.
    fn expect_disconnect(&self) -> String {
        let m = self.recv().expect("a DISCONNECT");
        assert_eq!(u16::from_le_bytes([m[0], m[1]]), 8, "expected DISCONNECT, got {}", describe(&m));
        assert!(self.recv().is_none(), "socket closed after DISCONNECT");
        reason(&m)
    }
}

fn init(id: u32, secret: &[u8]) -> Vec<u8> {
    msg(3, &[(2, &0x0200u16.to_le_bytes()), (4, &id.to_le_bytes()), (8, &[0]), (9, secret), (33, b"hostile")])
}

fn add_region(index: u16, size: u64) -> Vec<u8> {
    msg(4, &[(2, &index.to_le_bytes()), (4, &size.to_le_bytes())])
}

fn add_ring(s2m: bool, index: u16, region: u16, offset: u32, log2: u8) -> Vec<u8> {
    msg(
        5,
        &[
            (2, &u16::from(s2m).to_le_bytes()),
            (4, &index.to_le_bytes()),
            (6, &region.to_le_bytes()),
            (8, &offset.to_le_bytes()),
            (12, &[log2]),
        ],
    )
}

fn connect_msg() -> Vec<u8> {
    msg(6, &[(2, b"evil0")])
}

fn memfd(size: u64, sealable: bool) -> OwnedFd {
    let flags = libc::MFD_CLOEXEC | if sealable { libc::MFD_ALLOW_SEALING } else { 0 };
    // SAFETY: valid name and flags.
    let fd = owned(unsafe { libc::memfd_create(c"hostile".as_ptr(), flags) });
    // SAFETY: plain syscall.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), size as _) });
    fd
}

/// A raw client after an accepted INIT.
fn raw_after_init(path: &Path) -> Raw {
    let r = Raw::connect(path);
    r.send(&init(0, b""), &[]);
    r.expect_ack();
    r
}

/// Runs `steps` on a fresh raw client after INIT and returns the
/// server's DISCONNECT reason; the server interface must be down again.
fn refused_after_init(path: &Path, si: &Interface, steps: impl FnOnce(&Raw)) -> String {
    let r = raw_after_init(path);
    steps(&r);
    let why = r.expect_disconnect();
    assert!(si.wait_for(LinkState::Down, T));
    why
}

fn assert_contains(got: &str, want: &str) {
    assert!(got.contains(want), "reason {got:?} does not contain {want:?}");
}

// --- malformed messages ----------------------------------------------------

#[test]
fn malformed_first_messages_are_refused_with_reasons() {
    let (s, si, path) = server(None);
    let cases: Vec<(Vec<u8>, Vec<RawFd>, &str)> = vec![
        (msg(3, &[(2, &0x0100u16.to_le_bytes())]), vec![], "unsupported version 0x0100"),
        (msg(3, &[(2, &0x0201u16.to_le_bytes())]), vec![], "unsupported version 0x0201"),
        (init(0, b"")[..64].to_vec(), vec![], "invalid message size 64"),
        ([init(0, b""), vec![0; 72]].concat(), vec![], "invalid message size 200"),
        (vec![3u8; 300], vec![], "invalid message size"),
        (msg(9, &[]), vec![], "unknown message type 9"),
        (msg(0, &[]), vec![], "message type 0"),
        (add_region(0, 4096), vec![], "missing memory region fd"),
        (msg(1, &[]), vec![], "unexpected ACK message before INIT"),
        (msg(6, &[]), vec![], "unexpected CONNECT message before INIT"),
        (msg(3, &[(2, &0x0200u16.to_le_bytes()), (8, &[7])]), vec![], "bad interface mode 7"),
        (msg(3, &[(2, &0x0200u16.to_le_bytes()), (33, &[b'x'; 32])]), vec![], "name not NUL-terminated"),
        (msg(3, &[(2, &0x0200u16.to_le_bytes()), (33, b"a\x1bb")]), vec![], "name has invalid characters"),
        (init(77, b""), vec![], "unmatched interface id"),
        (msg(3, &[(2, &0x0200u16.to_le_bytes()), (8, &[1])]), vec![], "mode mismatch"),
    ];
    for (bytes, fds, want) in cases {
        let r = Raw::connect(&path);
        r.send(&bytes, &fds);
        assert_contains(&r.expect_disconnect(), want);
    }
    // A descriptor with INIT.
    let r = Raw::connect(&path);
    let e = eventfd();
    r.send(&init(0, b""), &[e.as_raw_fd()]);
    assert_contains(&r.expect_disconnect(), "unexpected fd with INIT");
    // Silence: the handshake times out.
    let r = Raw::connect(&path);
    assert_contains(&r.expect_disconnect(), "handshake timeout");
    assert!(s.stats().refused >= 17);
    assert!(!si.is_up());
}

#[test]
fn secrets_and_second_clients_are_refused() {
    let (_s, si, path) = server(Some("s3cret"));
    let r = Raw::connect(&path);
    r.send(&init(0, b""), &[]);
    assert_contains(&r.expect_disconnect(), "secret required");
    let r = Raw::connect(&path);
    r.send(&init(0, b"s3creT"), &[]);
    assert_contains(&r.expect_disconnect(), "incorrect secret");
    let r = Raw::connect(&path);
    r.send(&init(0, b"s3cret\0junk"), &[]);
    r.expect_ack();
    // A second client for the same interface while the first is on it.
    let r2 = Raw::connect(&path);
    r2.send(&init(0, b"s3cret"), &[]);
    assert_contains(&r2.expect_disconnect(), "already connected");
    assert_eq!(si.state(), LinkState::Connecting);
    assert!(si.counters().protocol_errors >= 3);
}

#[test]
fn malformed_setup_messages_are_refused_with_reasons() {
    let (_s, si, path) = server(None);
    let ring8 = 128 + 16 * 256u64;
    let size = 2 * ring8 + 512 * 2048;
    type Steps = Box<dyn FnOnce(&Raw)>;
    let cases: Vec<(Steps, &str)> = vec![
        (Box::new(|r| r.send(&add_region(1, 4096), &[memfd(4096, true).as_raw_fd()])), "unexpected region index 1"),
        (Box::new(|r| r.send(&add_region(16, 4096), &[memfd(4096, true).as_raw_fd()])), "region index 16 too large"),
        (Box::new(|r| r.send(&add_region(0, 0), &[memfd(4096, true).as_raw_fd()])), "bad region size 0"),
        (Box::new(|r| r.send(&add_region(0, 1 << 33), &[memfd(4096, true).as_raw_fd()])), "bad region size"),
        (Box::new(|r| r.send(&add_region(0, 8192), &[memfd(4096, true).as_raw_fd()])), "less than the 8192 announced"),
        (
            // More shared memory than the server allows one interface
            // (a sparse 2 GiB memfd; the default limit is 1 GiB).
            Box::new(|r| r.send(&add_region(0, 1 << 31), &[memfd(1 << 31, true).as_raw_fd()])),
            "regions of 2147483648 bytes exceed the limit of 1073741824",
        ),
        (Box::new(|r| r.send(&add_region(0, 4096), &[memfd(4096, false).as_raw_fd()])), "cannot be sealed"),
        (Box::new(|r| r.send(&add_region(0, 8), &[eventfd().as_raw_fd()])), "not a memfd"),
        (
            Box::new(|r| {
                let f = tempfile();
                r.send(&add_region(0, 8), &[f.as_raw_fd()])
            }),
            "not a memfd",
        ),
        (
            Box::new(|r| {
                let (a, _b) = pipe();
                r.send(&add_region(0, 8), &[a.as_raw_fd()])
            }),
            "not a memfd",
        ),
        (
            Box::new(|r| {
                let (a, b) = (memfd(4096, true), memfd(4096, true));
                r.send(&add_region(0, 4096), &[a.as_raw_fd(), b.as_raw_fd()])
            }),
            "2 fds with one message",
        ),
        (
            Box::new(|r| {
                let fds: Vec<OwnedFd> = (0..12).map(|_| eventfd()).collect();
                let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
                r.send(&add_region(0, 4096), &raw)
            }),
            "control data truncated",
        ),
        (Box::new(|r| r.send(&add_ring(true, 0, 0, 0, 8), &[])), "missing ring interrupt fd"),
        (Box::new(|r| r.send(&msg(1, &[]), &[])), "unexpected ACK message"),
        (Box::new(|r| r.send(&msg(7, &[(2, b"x")]), &[])), "unexpected CONNECTED message"),
        (Box::new(|r| r.send(&init(0, b""), &[])), "unexpected INIT message"),
        (Box::new(|r| r.send(&msg(2, &[(34, &[0, 2]), (36, &[0, 2])]), &[])), "unexpected HELLO message"),
        (Box::new(|r| r.send(&connect_msg(), &[])), "need at least one ring each way (got 0 s2m, 0 m2s)"),
        (
            Box::new(move |r| {
                with_region(r, size);
                r.send(&add_ring(true, 0, 1, 0, 8), &[eventfd().as_raw_fd()])
            }),
            "s2m ring 0 in unknown region 1",
        ),
        (
            Box::new(move |r| {
                with_region(r, size);
                r.send(&add_ring(true, 1, 0, 0, 8), &[eventfd().as_raw_fd()])
            }),
            "unexpected s2m ring index 1",
        ),
        (
            Box::new(move |r| {
                with_region(r, size);
                r.send(&add_ring(false, 8, 0, 0, 8), &[eventfd().as_raw_fd()])
            }),
            "ring index 8 too large",
        ),
        (
            Box::new(move |r| {
                with_region(r, size);
                r.send(&add_ring(false, 0, 0, 0, 8), &[eventfd().as_raw_fd()]);
                r.expect_ack();
                r.send(&add_ring(false, 1, 0, ring8 as u32, 8), &[eventfd().as_raw_fd()]);
                r.expect_ack();
                // The interface has 2 queue pairs: a third ring is too many.
                r.send(&add_ring(false, 2, 0, 2 * ring8 as u32, 8), &[eventfd().as_raw_fd()])
            }),
            "too many m2s rings (interface has 2 queues)",
        ),
        (
            Box::new(move |r| {
                with_region(r, size);
                r.send(&add_ring(true, 0, 0, 0, 7), &[eventfd().as_raw_fd()])
            }),
            "log2 ring size 7 outside 8..=14",
        ),
        (
            Box::new(move |r| {
                with_region(r, size);
                r.send(&add_ring(true, 0, 0, 0, 15), &[eventfd().as_raw_fd()])
            }),
            "log2 ring size 15",
        ),
        (
            Box::new(move |r| {
                with_region(r, size);
                let mut m = add_ring(true, 0, 0, 0, 8);
                m[13] = 64;
                r.send(&m, &[eventfd().as_raw_fd()])
            }),
            "private headers not supported",
        ),
        (
            Box::new(move |r| {
                with_region(r, size);
                let mut m = add_ring(true, 0, 0, 0, 8);
                m[2] = 0x81;
                r.send(&m, &[eventfd().as_raw_fd()])
            }),
            "unknown ring flags 0x81",
        ),
        (
            Box::new(move |r| {
                with_region(r, size);
                r.send(&add_ring(true, 0, 0, size as u32, 8), &[eventfd().as_raw_fd()])
            }),
            "does not fit region 0",
        ),
        (
            Box::new(move |r| {
                with_region(r, size);
                r.send(&add_ring(true, 0, 0, u32::MAX - 100, 8), &[eventfd().as_raw_fd()])
            }),
            "does not fit region 0",
        ),
        (
            Box::new(move |r| {
                with_region(r, size);
                r.send(&add_ring(true, 0, 0, 4, 8), &[eventfd().as_raw_fd()])
            }),
            "misaligned",
        ),
        (
            Box::new(|r| {
                // A region too small for the ring it is asked to hold.
                with_region(r, 4096);
                r.send(&add_ring(true, 0, 0, 0, 8), &[eventfd().as_raw_fd()])
            }),
            "s2m ring 0 at offset 0 does not fit region 0 (4096 bytes)",
        ),
        (
            Box::new(move |r| {
                with_region(r, size);
                r.send(&add_ring(true, 0, 0, 0, 8), &[memfd(4096, true).as_raw_fd()])
            }),
            "ring interrupt fd is not an eventfd",
        ),
        (
            Box::new(move |r| {
                // Rings that overlap.
                with_region(r, size);
                r.send(&add_ring(true, 0, 0, 0, 8), &[eventfd().as_raw_fd()]);
                r.expect_ack();
                r.send(&add_ring(false, 0, 0, 2048, 8), &[eventfd().as_raw_fd()]);
                r.expect_ack();
                r.send(&connect_msg(), &[])
            }),
            "rings overlap in region 0 at offset 2048",
        ),
        (
            Box::new(move |r| {
                // No cookie written in the rings.
                with_region(r, size);
                r.send(&add_ring(true, 0, 0, 0, 8), &[eventfd().as_raw_fd()]);
                r.expect_ack();
                r.send(&add_ring(false, 0, 0, ring8 as u32, 8), &[eventfd().as_raw_fd()]);
                r.expect_ack();
                r.send(&connect_msg(), &[])
            }),
            "wrong cookie on s2m ring 0",
        ),
    ];
    for (steps, want) in cases {
        let why = refused_after_init(&path, &si, steps);
        assert_contains(&why, want);
    }
    assert!(si.counters().protocol_errors >= 30, "{:?}", si.counters());
    assert_eq!(si.counters().connects, 0);
}

/// Sends ADD_REGION 0 with a fresh sealable memfd and expects the ACK.
fn with_region(r: &Raw, size: u64) -> OwnedFd {
    let fd = memfd(size, true);
    r.send(&add_region(0, size), &[fd.as_raw_fd()]);
    r.expect_ack();
    fd
}

fn tempfile() -> std::fs::File {
    // In the target directory (on disk), not /tmp (often tmpfs, where a
    // file is shmem and refused as unsealable rather than as no memfd).
    let p = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "vswm-h-file-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&p).unwrap();
    f.set_len(8192).unwrap();
    std::fs::remove_file(&p).unwrap();
    f
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut p = [0; 2];
    // SAFETY: valid out-array of two ints.
    cvt(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) });
    (owned(p[0]), owned(p[1]))
}

#[test]
fn an_unsealed_sealable_memfd_is_sealed_by_the_server() {
    let (_s, si, path) = server(None);
    let mut link = Link::establish(&path, &si, 8, false);
    // SAFETY: plain fcntl on our descriptor.
    let seals = unsafe { libc::fcntl(link.region_fd.as_raw_fd(), libc::F_GET_SEALS) };
    assert!(seals & libc::F_SEAL_SHRINK != 0, "server added F_SEAL_SHRINK");
    // SAFETY: plain syscall; must fail now.
    let r = unsafe { libc::ftruncate(link.region_fd.as_raw_fd(), 4096) };
    assert!(r < 0, "the region can no longer shrink under the server's mapping");
    link.check_quiet();
}

// --- hostile ring state ----------------------------------------------------

const DESC_NEXT: u16 = 1;

/// A raw client that completed the handshake with its own region:
/// [S2M ring][M2S ring][2^log2 x 2048-byte buffers per ring].
struct Link {
    raw: Raw,
    map: *mut u8,
    size: usize,
    log2: u8,
    region_fd: OwnedFd,
    _efds: Vec<OwnedFd>,
}

impl Link {
    fn establish(path: &Path, si: &Interface, log2: u8, seal: bool) -> Link {
        let ring = 128 + (16usize << log2);
        let size = 2 * ring + 2 * (1 << log2) * 2048;
        let fd = memfd(size as u64, true);
        if seal {
            // SAFETY: plain fcntl.
            cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) });
        }
        // SAFETY: fresh shared mapping of our memfd.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED);
        // Buffers get a pattern; then cookies, indices and descriptors.
        let pattern: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        // SAFETY: `size` bytes of our own mapping.
        unsafe { std::ptr::copy_nonoverlapping(pattern.as_ptr(), map.cast::<u8>(), size) };
        let mut l = Link {
            raw: Raw::connect_later(),
            map: map.cast(),
            size,
            log2,
            region_fd: fd,
            _efds: vec![eventfd(), eventfd()],
        };
        for (r, off) in [(0usize, 0usize), (1, ring)] {
            l.put(off, &0x3E31F20u32.to_le_bytes());
            l.put(off + 4, &[0, 0, 0, 0]);
            l.put(off + 64, &[0, 0]);
            for j in 0..1usize << log2 {
                let buf = 2 * ring + (r * (1 << log2) + j) * 2048;
                l.desc(off, j, 0, 0, 2048, buf as u32);
            }
        }
        l.raw = raw_after_init(path);
        l.raw.send(&add_region(0, size as u64), &[l.region_fd.as_raw_fd()]);
        l.raw.expect_ack();
        l.raw.send(&add_ring(true, 0, 0, 0, log2), &[l._efds[0].as_raw_fd()]);
        l.raw.expect_ack();
        l.raw.send(&add_ring(false, 0, 0, ring as u32, log2), &[l._efds[1].as_raw_fd()]);
        l.raw.expect_ack();
        l.raw.send(&connect_msg(), &[]);
        let m = l.raw.recv().expect("CONNECTED");
        assert_eq!(u16::from_le_bytes([m[0], m[1]]), 7, "expected CONNECTED, got {}", describe(&m));
        assert!(si.wait_up(T));
        l
    }

    fn ring_off(&self, s2m: bool) -> usize {
        if s2m {
            0
        } else {
            128 + (16usize << self.log2)
        }
    }

    fn put(&mut self, off: usize, bytes: &[u8]) {
        assert!(off + bytes.len() <= self.size);
        // SAFETY: inside our own mapping (checked).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.map.add(off), bytes.len()) };
    }

    fn get(&self, off: usize, len: usize) -> Vec<u8> {
        assert!(off + len <= self.size);
        let mut v = vec![0; len];
        // SAFETY: inside our own mapping (checked).
        unsafe { std::ptr::copy_nonoverlapping(self.map.add(off), v.as_mut_ptr(), len) };
        v
    }

    fn desc(&mut self, ring_off: usize, slot: usize, flags: u16, region: u16, length: u32, offset: u32) {
        let mut d = [0u8; 16];
        d[0..2].copy_from_slice(&flags.to_le_bytes());
        d[2..4].copy_from_slice(&region.to_le_bytes());
        d[4..8].copy_from_slice(&length.to_le_bytes());
        d[8..12].copy_from_slice(&offset.to_le_bytes());
        let at = ring_off + 128 + 16 * (slot & ((1 << self.log2) - 1));
        self.put(at, &d);
    }

    fn set_head(&mut self, s2m: bool, v: u16) {
        let off = self.ring_off(s2m) + 6;
        self.put(off, &v.to_le_bytes());
    }

    fn tail(&self, s2m: bool) -> u16 {
        let b = self.get(self.ring_off(s2m) + 64, 2);
        u16::from_le_bytes([b[0], b[1]])
    }

    /// Nothing more from the server: no DISCONNECT pending.
    fn check_quiet(&mut self) {
        let mut p = libc::pollfd { fd: self.raw.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, 50) };
        assert_eq!(n, 0, "server said something: {:?}", self.raw.recv().map(|m| describe(&m)));
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // SAFETY: unmaps what `establish` mapped (the server has its own
        // mapping of the memfd).
        unsafe { libc::munmap(self.map.cast(), self.size) };
    }
}

/// Server receive bursts until `want` frames came or 1 s passed.
fn server_rx(rx: &mut RxQueue, want: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    while got.len() < want && Instant::now() < deadline {
        rx.rx_burst(256, |f| {
            got.push(f.to_vec());
            true
        });
    }
    got
}

fn queues(si: &Interface) -> (Vec<RxQueue>, Vec<TxQueue>) {
    si.take_queues().unwrap()
}

#[test]
fn bad_descriptors_are_dropped_and_counted_and_good_ones_pass_intact() {
    let (_s, si, path) = server(None);
    let (mut rx, _tx) = queues(&si);
    let mut l = Link::establish(&path, &si, 8, true);
    let base = 2 * (128 + 16 * 256);
    let size = l.size as u32;
    // slot: flags, region, length, offset
    let plan: Vec<(u16, u16, u32, u32)> = vec![
        (0, 0, 60, base as u32),                // good
        (0, 1, 60, base as u32),                // unknown region
        (0, 0xffff, 60, base as u32),           // unknown region
        (0, 0, 60, size - 59),                  // offset + length past the end by 1
        (0, 0, 60, size - 60),                  // ends exactly at the end: good
        (0, 0, 60, u32::MAX - 10),              // offset wraps
        (0, 0, u32::MAX, 0),                    // length wraps
        (0, 0, 70000, 0),                       // longer than any buffer
        (0, 0, 0, base as u32),                 // empty
        (DESC_NEXT, 0, 100, base as u32 + 100), // chain of 3, second piece bad
        (DESC_NEXT, 0, 100, size),
        (0, 0, 100, 0),
        (DESC_NEXT, 0, 1000, 5000), // chain of 3, good, reaching into the ring area
        (DESC_NEXT, 0, 10, 0),
        (0, 0, 1, size - 1),
    ];
    for (slot, &(flags, region, length, offset)) in plan.iter().enumerate() {
        l.desc(0, slot, flags, region, length, offset);
    }
    l.set_head(true, plan.len() as u16);
    let got = server_rx(&mut rx[0], 3);
    let want =
        vec![l.get(base, 60), l.get(l.size - 60, 60), [l.get(5000, 1000), l.get(0, 10), l.get(l.size - 1, 1)].concat()];
    assert_eq!(got, want, "frames are exactly the bytes the descriptors named");
    assert_eq!(l.tail(true), plan.len() as u16, "every descriptor consumed");
    let c = si.counters().rx;
    assert_eq!((c.packets, c.bad_region, c.bad_offset, c.bad_length, c.empty, c.faults), (3, 2, 3, 2, 1, 0), "{c:?}");
    l.check_quiet();
    assert!(si.is_up(), "bad descriptors cost frames, not the link");
}

#[test]
fn head_beyond_the_ring_size_brings_the_link_down() {
    let (_s, si, path) = server(None);
    let (mut rx, _tx) = queues(&si);
    let mut l = Link::establish(&path, &si, 8, true);
    l.set_head(true, 257);
    assert!(server_rx(&mut rx[0], 1).is_empty());
    assert_contains(
        &l.raw.expect_disconnect(),
        "s2m ring 0: ring overrun: peer index 257 is 257 from ours (0), more than 256",
    );
    assert!(si.wait_for(LinkState::Down, T));
    assert_eq!(si.counters().rx.faults, 1);
    // Also a head that went backwards (tail ahead of head, mod 2^16).
    let mut l = Link::establish(&path, &si, 8, true);
    l.set_head(true, 0xffff);
    assert!(server_rx(&mut rx[0], 1).is_empty());
    assert_contains(&l.raw.expect_disconnect(), "ring overrun");
}

#[test]
fn an_endless_next_chain_brings_the_link_down() {
    let (_s, si, path) = server(None);
    let (mut rx, _tx) = queues(&si);
    let mut l = Link::establish(&path, &si, 8, true);
    let base = 2 * (128 + 16 * 256) as u32;
    for slot in 0..256 {
        l.desc(0, slot, DESC_NEXT, 0, 64, base);
    }
    // Published in part: the server waits for the rest.
    l.set_head(true, 100);
    assert!(server_rx(&mut rx[0], 1).is_empty());
    l.check_quiet();
    // Published in full: it can never end.
    l.set_head(true, 256);
    assert!(server_rx(&mut rx[0], 1).is_empty());
    assert_contains(&l.raw.expect_disconnect(), "s2m ring 0: descriptor chain never ends");
    assert!(si.wait_for(LinkState::Down, T));
}

#[test]
fn a_chain_longer_than_the_limit_brings_the_link_down() {
    let (_s, si, path) = server(None);
    let (mut rx, _tx) = queues(&si);
    let mut l = Link::establish(&path, &si, 10, true);
    let base = 2 * (128 + 16 * 1024) as u32;
    for slot in 0..300 {
        l.desc(0, slot, DESC_NEXT, 0, 64, base);
    }
    l.desc(0, 300, 0, 0, 64, base);
    l.set_head(true, 301);
    assert!(server_rx(&mut rx[0], 1).is_empty());
    assert_contains(&l.raw.expect_disconnect(), "descriptor chain longer than 256");
}

#[test]
fn bad_posted_buffers_on_m2s_bring_the_link_down() {
    let (_s, si, path) = server(None);
    let (_rx, mut tx) = queues(&si);
    for (region, length, offset, posted) in [
        (0u16, 2048u32, u32::MAX - 1000, 1u16), // outside the region
        (3, 2048, 0, 1),                        // unknown region
        (0, 0, 0, 1),                           // no room
        (0, 70000, 0, 1),                       // more room than any buffer
        (0, 2048, 0, 300),                      // more posted than the ring holds
    ] {
        let mut l = Link::establish(&path, &si, 8, true);
        let m2s = l.ring_off(false);
        l.desc(m2s, 0, 0, region, length, offset);
        l.set_head(false, posted);
        let f = [7u8; 100];
        assert_eq!(tx[0].tx_burst([&f[..]]), 0);
        let why = l.raw.expect_disconnect();
        assert!(
            why.contains("m2s ring 0: bad posted buffer in slot 0") || why.contains("m2s ring 0: ring overrun"),
            "{why}"
        );
        assert!(si.wait_for(LinkState::Down, T));
        assert_eq!(l.tail(false), 0, "nothing was written");
    }
}

#[test]
fn good_posted_buffers_receive_frames_in_place() {
    let (_s, si, path) = server(None);
    let (_rx, mut tx) = queues(&si);
    let mut l = Link::establish(&path, &si, 8, true);
    let m2s = l.ring_off(false);
    // Two small buffers near the end of the region: a 150-byte frame
    // chains across both.
    let end = l.size as u32;
    l.desc(m2s, 0, 0, 0, 100, end - 200);
    l.desc(m2s, 1, 0, 0, 100, end - 100);
    l.set_head(false, 2);
    let f: Vec<u8> = (0..150u8).collect();
    assert_eq!(tx[0].tx_burst([&f[..]]), 1);
    assert_eq!(l.tail(false), 2);
    assert_eq!(l.get(l.size - 200, 100), f[..100]);
    assert_eq!(l.get(l.size - 100, 50), f[100..]);
    let d0 = l.get(m2s + 128, 16);
    assert_eq!(
        (u16::from_le_bytes([d0[0], d0[1]]), u32::from_le_bytes(d0[4..8].try_into().unwrap())),
        (DESC_NEXT, 100)
    );
    let d1 = l.get(m2s + 128 + 16, 16);
    assert_eq!((u16::from_le_bytes([d1[0], d1[1]]), u32::from_le_bytes(d1[4..8].try_into().unwrap())), (0, 50));
    // Ring full now: the next frame waits.
    assert_eq!(tx[0].tx_burst([&f[..10]]), 0);
    assert_eq!(tx[0].counters().ring_full, 1);
    l.check_quiet();
}

#[test]
fn a_peer_scribbling_on_the_ring_while_the_server_reads_never_hurts_it() {
    let (_s, si, path) = server(None);
    let (mut rx, _tx) = queues(&si);
    let mut total = 0;
    for round in 0..4u64 {
        let l = Link::establish(&path, &si, 8, true);
        let faults = rx[0].counters().faults;
        let map = l.map as usize;
        let size = l.size;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        // Another thread of the hostile client writes random descriptors
        // and indices as fast as it can.
        let scribbler = std::thread::spawn(move || {
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ round;
            let mut rnd = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            while !stop2.load(Ordering::Relaxed) {
                let r = rnd();
                let slot = (r % 256) as usize;
                let mut d = [0u8; 16];
                d.copy_from_slice(&[rnd().to_le_bytes(), rnd().to_le_bytes()].concat());
                if r & 3 != 0 {
                    // Mostly plausible values, so some frames get through.
                    d[2] = 0;
                    d[3] = 0;
                    d[4..8].copy_from_slice(&((rnd() % 3000) as u32).to_le_bytes());
                    d[8..12].copy_from_slice(&((rnd() % size as u64) as u32).to_le_bytes());
                    d[0] &= 1;
                }
                let at = 128 + 16 * slot;
                // SAFETY: inside the hostile client's own mapping.
                unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), (map as *mut u8).add(at), 16) };
                if r % 7 == 0 {
                    // SAFETY: as below.
                    let tail = unsafe { std::ptr::read_volatile((map as *const u8).add(64).cast::<u16>()) };
                    // Usually a legal distance; once in a while not.
                    let head =
                        if r % 1000 == 0 { (rnd() % 65536) as u16 } else { tail.wrapping_add((rnd() % 256) as u16) };
                    // SAFETY: as above; a plain (racy by design) store.
                    unsafe { std::ptr::write_volatile((map as *mut u8).add(6).cast::<u16>(), head) };
                }
            }
        });
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut frames = 0;
        while Instant::now() < deadline && si.is_up() {
            rx[0].rx_burst(256, |f| {
                assert!(f.len() <= 65535 && f.segments() <= 256);
                let mut buf = vec![0u8; f.len()];
                assert_eq!(f.copy_to(&mut buf), Some(f.len()));
                frames += 1;
                true
            });
        }
        stop.store(true, Ordering::Relaxed);
        scribbler.join().unwrap();
        total += frames;
        // Either still up, or down with a reason.
        if rx[0].counters().faults > faults {
            let why = l.raw.expect_disconnect();
            assert!(why.starts_with("s2m ring 0:"), "{why}");
        }
        drop(l);
        assert!(si.wait_for(LinkState::Down, T));
    }
    let c = si.counters().rx;
    eprintln!("scribbled: {total} frames through, {c:?}");
    assert!(total > 0 && c.bad_offset > 0, "{c:?}");
}
