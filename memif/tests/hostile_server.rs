//! A hostile server against our client: a raw `SOCK_SEQPACKET` listener
//! speaking the protocol by hand (bytes from the C layout, descriptors
//! passed with libc), the mirror of `hostile.rs`. It misbehaves in every
//! way a server can: bad HELLOs (versions, limits, names), messages out of
//! order or of a kind a server never sends, fds where none belong, odd
//! DISCONNECTs, unknown types, wrong sizes, silence; and once connected,
//! what it writes into the rings the client reads: `tail` beyond what was
//! posted or sent, descriptors with bad lengths, regions and offsets,
//! endless chains, scribbles on the client's own fields.
//!
//! For each, the client disconnects with a reason that says what was
//! wrong (or drops the frame and counts it, or ignores what it never
//! reads), its counters move, nothing crashes, and it connects again to a
//! server that behaves — the same client, reconnecting by itself. Both the
//! copy-mode and the zero-copy client.

mod common;

use common::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::time::{Duration, Instant};
use vswitch_memif::{Client, ClientConfig, Interface, InterfaceConfig, LinkState, ZcVerdict};

static SEQ: AtomicU32 = AtomicU32::new(0);
const T: Duration = Duration::from_secs(10);

fn sockaddr(path: &Path) -> libc::sockaddr_un {
    // SAFETY: all-zero sockaddr_un is valid.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as _;
    for (d, s) in sun.sun_path.iter_mut().zip(path.to_str().unwrap().as_bytes()) {
        *d = *s as _;
    }
    sun
}

/// The hostile server's listening socket.
struct RawServer {
    fd: OwnedFd,
    path: PathBuf,
}

impl RawServer {
    fn bind() -> RawServer {
        let path = std::env::temp_dir().join(format!(
            "vswm-hs-{}-{}.sock",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        // SAFETY: plain syscall.
        let fd = owned(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) });
        let sun = sockaddr(&path);
        // SAFETY: valid address and length.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sun as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as _,
            )
        });
        // SAFETY: plain syscall.
        cvt(unsafe { libc::listen(fd.as_raw_fd(), 8) });
        RawServer { fd, path }
    }

    /// The client's next connection.
    fn accept(&self) -> Raw {
        let mut p = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        assert!(unsafe { libc::poll(&mut p, 1, 10_000) } == 1, "the client did not connect again");
        // SAFETY: plain syscall.
        let fd = owned(unsafe { libc::accept4(self.fd.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut(), 0) });
        Raw { fd }
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One accepted connection.
struct Raw {
    fd: OwnedFd,
}

impl Raw {
    /// Sends `bytes` with `fds` attached (any number).
    fn send(&self, bytes: &[u8], fds: &[RawFd]) {
        send_with_fds(&self.fd, bytes, fds);
    }

    /// Next message and the fds that came with it; None on EOF or nothing
    /// within 5 s.
    fn recv(&self) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
        let mut p = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 5000) } <= 0 {
            return None;
        }
        let mut b = [0u8; 512];
        let mut iov = libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() };
        let mut ctl = [0u64; 16];
        // SAFETY: all-zero msghdr is valid.
        let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
        mh.msg_iov = &mut iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.as_mut_ptr().cast();
        mh.msg_controllen = std::mem::size_of_val(&ctl) as _;
        // SAFETY: `mh` points at live buffers.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut mh, libc::MSG_CMSG_CLOEXEC) };
        if n <= 0 {
            return None;
        }
        let mut fds = Vec::new();
        // SAFETY: walking the control buffer the kernel filled, with the
        // CMSG macros; each SCM_RIGHTS fd is new and ours.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&mh);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let k = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                    for i in 0..k {
                        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>().add(i));
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
                c = libc::CMSG_NXTHDR(&mh, c);
            }
        }
        Some((b[..n as usize].to_vec(), fds))
    }

    fn expect(&self, t: u16) -> (Vec<u8>, Vec<OwnedFd>) {
        let (m, fds) = self.recv().unwrap_or_else(|| panic!("expected message type {t}, got nothing"));
        assert_eq!(ty(&m), t, "expected type {t}, got {}", describe(&m));
        (m, fds)
    }

    /// What the client says before it hangs up: its DISCONNECT reason, or
    /// None if it just closed. Then the socket must be closed.
    fn disconnect_reason(&self) -> Option<String> {
        let (m, _) = self.recv()?;
        assert_eq!(ty(&m), 8, "expected DISCONNECT, got {}", describe(&m));
        assert!(self.recv().is_none(), "socket closed after DISCONNECT");
        Some(reason(&m))
    }
}

/// HELLO: versions, max region, max M2S, max S2M, max log2.
fn hello_with(min: u16, max: u16, limits: (u16, u16, u16, u8), name: &[u8]) -> Vec<u8> {
    msg(
        2,
        &[
            (2, name),
            (34, &min.to_le_bytes()),
            (36, &max.to_le_bytes()),
            (38, &limits.0.to_le_bytes()),
            (40, &limits.1.to_le_bytes()),
            (42, &limits.2.to_le_bytes()),
            (44, &[limits.3]),
        ],
    )
}

fn hello() -> Vec<u8> {
    hello_with(0x200, 0x200, (0, 0, 0, 10), b"hostile server")
}

fn ack() -> Vec<u8> {
    msg(1, &[])
}

fn memfd() -> OwnedFd {
    // SAFETY: valid name and flags.
    let fd = owned(unsafe { libc::memfd_create(c"hs".as_ptr(), libc::MFD_CLOEXEC) });
    // SAFETY: plain syscall.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), 4096) });
    fd
}

/// The client's region, mapped by the hostile server, with the rings it
/// announced.
struct Shm {
    ptr: *mut u8,
    len: usize,
    s2m: usize,
    m2s: usize,
    log2: u8,
    _fds: Vec<OwnedFd>,
}

impl Shm {
    fn map(fd: &OwnedFd, len: usize) -> *mut u8 {
        // SAFETY: mapping a memfd the client sent, `len` bytes as it
        // announced (its file is at least that large and sealed).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        p.cast()
    }
    fn at(&self, off: usize, n: usize) -> *mut u8 {
        assert!(off + n <= self.len, "test bug: {off}+{n} outside the region");
        // SAFETY: inside the mapping (asserted).
        unsafe { self.ptr.add(off) }
    }
    fn idx(&self, off: usize) -> &AtomicU16 {
        // SAFETY: a 2-aligned u16 inside the mapping; the client accesses
        // ring indices atomically too.
        unsafe { AtomicU16::from_ptr(self.at(off, 2).cast()) }
    }
    fn size(&self) -> u16 {
        1 << self.log2
    }
    fn head(&self, ring: usize) -> u16 {
        self.idx(ring + 6).load(Ordering::Acquire)
    }
    fn set_head(&self, ring: usize, v: u16) {
        self.idx(ring + 6).store(v, Ordering::Release)
    }
    fn tail(&self, ring: usize) -> u16 {
        self.idx(ring + 64).load(Ordering::Acquire)
    }
    fn set_tail(&self, ring: usize, v: u16) {
        self.idx(ring + 64).store(v, Ordering::Release)
    }
    fn desc_off(&self, ring: usize, slot: u16) -> usize {
        ring + 128 + 16 * usize::from(slot & (self.size() - 1))
    }
    /// (flags, region, length, offset) of a descriptor.
    fn desc(&self, ring: usize, slot: u16) -> (u16, u16, u32, u32) {
        let mut d = [0u8; 16];
        self.read(self.desc_off(ring, slot), &mut d);
        let u16_at = |i: usize| u16::from_le_bytes([d[i], d[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes(d[i..i + 4].try_into().unwrap());
        (u16_at(0), u16_at(2), u32_at(4), u32_at(8))
    }
    fn set_desc(&self, ring: usize, slot: u16, (flags, region, length, offset): (u16, u16, u32, u32)) {
        let mut d = [0u8; 16];
        d[0..2].copy_from_slice(&flags.to_le_bytes());
        d[2..4].copy_from_slice(&region.to_le_bytes());
        d[4..8].copy_from_slice(&length.to_le_bytes());
        d[8..12].copy_from_slice(&offset.to_le_bytes());
        self.write(self.desc_off(ring, slot), &d);
    }
    fn write(&self, off: usize, b: &[u8]) {
        // SAFETY: inside the mapping (`at` asserts).
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.at(off, b.len()), b.len()) }
    }
    fn read(&self, off: usize, b: &mut [u8]) {
        // SAFETY: inside the mapping (`at` asserts).
        unsafe { std::ptr::copy_nonoverlapping(self.at(off, b.len()), b.as_mut_ptr(), b.len()) }
    }
    /// Sends one frame into the buffer the client posted in M2S slot
    /// `tail` (as a well-behaved server would), and publishes it.
    fn send_m2s(&self, frame: &[u8]) {
        let t = self.tail(self.m2s);
        assert_ne!(self.head(self.m2s), t, "nothing posted");
        let (_, _, room, off) = self.desc(self.m2s, t);
        assert!(frame.len() <= room as usize);
        self.write(off as usize, frame);
        let (_, region, _, _) = self.desc(self.m2s, t);
        self.set_desc(self.m2s, t, (0, region, frame.len() as u32, off));
        self.set_tail(self.m2s, t.wrapping_add(1));
    }
}

impl Drop for Shm {
    fn drop(&mut self) {
        // SAFETY: our mapping, not used after this.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Plays a well-behaved server's part of the handshake up to (not
/// including) CONNECTED; returns the client's region, mapped.
fn setup(c: &Raw) -> Shm {
    c.send(&hello(), &[]);
    c.expect(3);
    c.send(&ack(), &[]);
    let (r, mut fds) = c.expect(4);
    let size = u64::from_le_bytes(r[4..12].try_into().unwrap()) as usize;
    let region = fds.pop().expect("region fd");
    c.send(&ack(), &[]);
    let mut rings = [0usize; 2];
    let mut log2 = 0;
    let mut keep = vec![];
    for _ in 0..2 {
        let (m, mut f) = c.expect(5);
        let s2m = m[2] & 1 == 1;
        rings[usize::from(!s2m)] = u32::from_le_bytes(m[8..12].try_into().unwrap()) as usize;
        log2 = m[12];
        keep.push(f.pop().expect("ring eventfd"));
        c.send(&ack(), &[]);
    }
    c.expect(6);
    let ptr = Shm::map(&region, size);
    keep.push(region);
    Shm { ptr, len: size, s2m: rings[0], m2s: rings[1], log2, _fds: keep }
}

/// A full good handshake: the link comes up.
fn good(c: &Raw, ci: &Interface) -> Shm {
    let before = ci.counters().connects;
    let shm = setup(c);
    c.send(&msg(7, &[(2, b"good")]), &[]);
    assert!(ci.wait_connects(before, T), "the client did not come up with a good server: {:?}", ci.info());
    shm
}

fn client(zero_copy: bool) -> (RawServer, Client, Interface) {
    let srv = RawServer::bind();
    let mut cfg = ClientConfig::new(vswitch_memif::SocketAddr::Path(srv.path.clone()));
    cfg.reconnect_min = Duration::from_millis(5);
    cfg.reconnect_max = Duration::from_millis(50);
    cfg.handshake_timeout = Duration::from_millis(500);
    let c = Client::new(cfg).unwrap();
    let ci = c.add_interface(InterfaceConfig { buffer_size: 2048, zero_copy, ..InterfaceConfig::new(0) }).unwrap();
    (srv, c, ci)
}

/// Each control-channel misbehaviour: what the server does after
/// accepting, and what the client's reason must say (`None`: the client
/// hangs up without a word, e.g. after the server's own DISCONNECT).
#[test]
fn bad_control_messages_are_refused_with_reasons_and_the_client_recovers() {
    let (srv, _c, ci) = client(false);
    let long_name = [b'n'; 32];
    type Case = (&'static str, Box<dyn Fn(&Raw)>, Option<&'static str>, bool);
    let cases: Vec<Case> = vec![
        (
            "old version",
            Box::new(|c| c.send(&hello_with(0x100, 0x100, (0, 0, 0, 10), b"s"), &[])),
            Some("incompatible protocol version 0x0100..0x0100"),
            true,
        ),
        (
            "newer only",
            Box::new(|c| c.send(&hello_with(0x300, 0x300, (0, 0, 0, 10), b"s"), &[])),
            Some("incompatible protocol version"),
            true,
        ),
        (
            "inverted range",
            Box::new(|c| c.send(&hello_with(0x300, 0x100, (0, 0, 0, 10), b"s"), &[])),
            Some("bad version range"),
            true,
        ),
        (
            "log2 0",
            Box::new(|c| c.send(&hello_with(0x200, 0x200, (0, 0, 0, 0), b"s"), &[])),
            Some("server allows rings of 2^0 only"),
            true,
        ),
        (
            "log2 7",
            Box::new(|c| c.send(&hello_with(0x200, 0x200, (0, 0, 0, 7), b"s"), &[])),
            Some("server allows rings of 2^7 only"),
            true,
        ),
        (
            "name without NUL",
            Box::new(move |c| c.send(&hello_with(0x200, 0x200, (0, 0, 0, 10), &long_name), &[])),
            Some("name not NUL-terminated"),
            true,
        ),
        (
            "name with control chars",
            Box::new(|c| c.send(&hello_with(0x200, 0x200, (0, 0, 0, 10), b"a\x1bb"), &[])),
            Some("name has invalid characters"),
            true,
        ),
        ("ACK first", Box::new(|c| c.send(&ack(), &[])), Some("unexpected ACK message"), true),
        (
            "CONNECTED first",
            Box::new(|c| c.send(&msg(7, &[(2, b"x")]), &[])),
            Some("unexpected CONNECTED message"),
            true,
        ),
        (
            "INIT from a server",
            Box::new(|c| c.send(&msg(3, &[(2, &[0, 2]), (33, b"x")]), &[])),
            Some("unexpected INIT message"),
            true,
        ),
        (
            "CONNECT from a server",
            Box::new(|c| c.send(&msg(6, &[(2, b"x")]), &[])),
            Some("unexpected CONNECT message"),
            true,
        ),
        (
            "two HELLOs",
            Box::new(|c| {
                c.send(&hello(), &[]);
                c.expect(3);
                c.send(&hello(), &[]);
            }),
            Some("unexpected HELLO message"),
            true,
        ),
        (
            "CONNECTED for an INIT",
            Box::new(|c| {
                c.send(&hello(), &[]);
                c.expect(3);
                c.send(&msg(7, &[(2, b"x")]), &[]);
            }),
            Some("unexpected CONNECTED message"),
            true,
        ),
        (
            "ACK for CONNECT",
            Box::new(|c| {
                let _m = setup(c);
                c.send(&ack(), &[]);
            }),
            Some("unexpected ACK message"),
            true,
        ),
        (
            "CONNECTED twice",
            Box::new(|c| {
                let _m = setup(c);
                c.send(&msg(7, &[(2, b"x")]), &[]);
                c.send(&msg(7, &[(2, b"x")]), &[]);
            }),
            Some("unexpected CONNECTED message"),
            true,
        ),
        (
            "ADD_REGION from a server",
            Box::new(|c| {
                let m = memfd();
                c.send(&hello(), &[]);
                c.expect(3);
                c.send(&msg(4, &[(4, &[0, 16])]), &[m.as_raw_fd()]);
            }),
            Some("unexpected ADD_REGION message"),
            true,
        ),
        (
            "ADD_RING without fd",
            Box::new(|c| {
                c.send(&hello(), &[]);
                c.expect(3);
                c.send(&msg(5, &[(12, &[10])]), &[]);
            }),
            Some("missing ring interrupt fd"),
            true,
        ),
        (
            "fd with HELLO",
            Box::new(|c| {
                let e = eventfd();
                c.send(&hello(), &[e.as_raw_fd()]);
            }),
            Some("unexpected fd with HELLO"),
            true,
        ),
        (
            "fd with ACK",
            Box::new(|c| {
                let e = eventfd();
                c.send(&hello(), &[]);
                c.expect(3);
                c.send(&ack(), &[e.as_raw_fd()]);
            }),
            Some("unexpected fd with ACK"),
            true,
        ),
        (
            "memfd with CONNECTED",
            Box::new(|c| {
                let _s = setup(c);
                let m = memfd();
                c.send(&msg(7, &[(2, b"x")]), &[m.as_raw_fd()]);
            }),
            Some("unexpected fd with CONNECTED"),
            true,
        ),
        (
            "two fds",
            Box::new(|c| {
                let (a, b) = (eventfd(), eventfd());
                c.send(&hello(), &[a.as_raw_fd(), b.as_raw_fd()]);
            }),
            Some("2 fds with one message"),
            true,
        ),
        (
            "12 fds",
            Box::new(|c| {
                let e: Vec<OwnedFd> = (0..12).map(|_| eventfd()).collect();
                let raw: Vec<RawFd> = e.iter().map(|f| f.as_raw_fd()).collect();
                c.send(&hello(), &raw);
            }),
            Some("control data truncated"),
            true,
        ),
        ("type 9", Box::new(|c| c.send(&msg(9, &[]), &[])), Some("unknown message type 9"), true),
        ("type 0xffff", Box::new(|c| c.send(&msg(0xffff, &[]), &[])), Some("unknown message type 65535"), true),
        ("type 0", Box::new(|c| c.send(&msg(0, &[]), &[])), Some("message type 0"), true),
        ("64 bytes", Box::new(|c| c.send(&hello()[..64], &[])), Some("invalid message size 64"), true),
        ("1 byte", Box::new(|c| c.send(&[2], &[])), Some("invalid message size 1"), true),
        (
            "300 bytes",
            Box::new(|c| {
                let mut b = hello();
                b.resize(300, 0);
                c.send(&b, &[]);
            }),
            Some("invalid message size"),
            true,
        ),
        (
            "DISCONNECT without NUL",
            Box::new(|c| c.send(&msg(8, &[(6, &[b'r'; 96])]), &[])),
            Some("disconnect string not NUL-terminated"),
            true,
        ),
        ("silence", Box::new(|_| {}), Some("handshake timeout"), true),
        (
            "silence after INIT",
            Box::new(|c| {
                c.send(&hello(), &[]);
                c.expect(3);
            }),
            Some("handshake timeout"),
            true,
        ),
        // Not protocol errors: the server leaves, the client hears it.
        (
            "DISCONNECT at once",
            Box::new(|c| c.send(&msg(8, &[(2, &u32::MAX.to_le_bytes()), (6, b"a\nb\xff\x7f")]), &[])),
            None,
            false,
        ),
        (
            "DISCONNECT mid-handshake",
            Box::new(|c| {
                c.send(&hello(), &[]);
                c.expect(3);
                c.send(&msg(8, &[]), &[]);
            }),
            None,
            false,
        ),
        ("hang up", Box::new(|_| {}), None, false),
    ];
    for (name, run, want, protocol) in cases {
        let before = ci.counters();
        let c = srv.accept();
        run(&c);
        if name == "hang up" {
            drop(c);
            assert!(ci.wait_for(LinkState::Down, T));
            let ok = wait(|| ci.info().local_reason.as_deref() == Some("control connection closed by peer"));
            assert!(ok, "{name}: {:?}", ci.info());
        } else {
            let got = c.disconnect_reason();
            match want {
                Some(w) => {
                    let got = got.unwrap_or_else(|| panic!("{name}: no DISCONNECT; {:?}", ci.info()));
                    assert!(got.contains(w), "{name}: reason {got:?} does not say {w:?}");
                    assert_eq!(ci.info().local_reason.as_deref(), Some(&got[..]), "{name}");
                }
                None => assert_eq!(got, None, "{name}: the client answers a DISCONNECT with nothing"),
            }
        }
        let after = ci.counters();
        assert_eq!(after.protocol_errors, before.protocol_errors + u64::from(protocol), "{name}: {after:?}");
        // Only "CONNECTED twice" got as far as up (then down again).
        let up = u64::from(name == "CONNECTED twice");
        assert_eq!(after.connects, before.connects + up, "{name}: {after:?}");
        if name == "DISCONNECT at once" {
            // Control characters and bad UTF-8 replaced, kept for `show`.
            assert_eq!(ci.info().remote_reason.as_deref(), Some("a?b\u{fffd}?"), "{name}");
        }
        // The same client connects again, to a server that behaves.
        let c = srv.accept();
        let _shm = good(&c, &ci);
        assert_eq!(ci.info().peer_if_name.as_deref(), Some("good"));
        c.send(&msg(8, &[(6, b"bye")]), &[]);
        assert!(ci.wait_for(LinkState::Down, T), "{name}");
    }
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

/// Receives on the client's queue (copy or zero-copy) until `want` frames
/// or a fault took the link down; returns the frames.
enum Queues {
    Copy(vswitch_memif::RxQueue, vswitch_memif::TxQueue),
    Zc(vswitch_memif::ZcQueue),
}

impl Queues {
    fn rx(&mut self, want: usize, ci: &Interface) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while got.len() < want && Instant::now() < deadline && ci.is_up() {
            match self {
                Queues::Copy(rx, _) => {
                    rx.rx_burst(64, |f| {
                        got.push(f.to_vec());
                        true
                    });
                }
                Queues::Zc(z) => {
                    z.rx_burst(64, |f| {
                        got.push(f.to_vec());
                        ZcVerdict::Release
                    });
                }
            }
        }
        got
    }
    fn tx(&mut self, frame: &[u8]) -> usize {
        match self {
            Queues::Copy(_, tx) => tx.tx_burst([frame]),
            Queues::Zc(z) => z.tx_burst(1, |b| {
                b.write(0, frame);
                Some(frame.len())
            }),
        }
    }
}

/// What a server controls in the rings, against the copy-mode and the
/// zero-copy client: bad descriptors cost their frame (counted), ring
/// discipline violations take the link down with a reason, scribbles on
/// the client's own fields are ignored; the client recovers every time.
#[test]
fn bad_ring_state_from_the_server() {
    for zero_copy in [false, true] {
        let (srv, _c, ci) = client(zero_copy);
        let mut q = if zero_copy {
            Queues::Zc(ci.take_zc_queues().unwrap().remove(0))
        } else {
            let (mut r, mut t) = ci.take_queues().unwrap();
            Queues::Copy(r.remove(0), t.remove(0))
        };
        let good_frame: Vec<u8> = (0..100u8).collect();
        let mode = if zero_copy { "zero-copy" } else { "copy" };

        // 1. Descriptors with bad lengths, regions, offsets; frames before
        // and after them arrive intact. The link stays up.
        let c = srv.accept();
        let shm = good(&c, &ci);
        let bs = 2048u32;
        shm.send_m2s(&good_frame);
        let t = shm.tail(shm.m2s);
        let (_, _, _, off) = shm.desc(shm.m2s, t);
        shm.write(off as usize, &good_frame);
        // Longer than a buffer.
        shm.set_desc(shm.m2s, t, (0, 0, bs + 1, off));
        // Zero length.
        let (_, _, _, off1) = shm.desc(shm.m2s, t + 1);
        shm.set_desc(shm.m2s, t + 1, (0, 0, 0, off1));
        shm.set_tail(shm.m2s, t + 2);
        shm.send_m2s(&good_frame);
        let got = q.rx(2, &ci);
        assert_eq!(got, vec![good_frame.clone(), good_frame.clone()], "{mode}");
        let rc = ci.counters().rx;
        assert_eq!((rc.bad_length, rc.empty, rc.faults), (1, 1, 0), "{mode}: {rc:?}");
        // A descriptor pointing elsewhere: the copy client checks it
        // against its regions (unknown region, past the end: dropped);
        // the zero-copy client never uses it (the buffer is its own
        // record), so the frame arrives from where it was posted.
        let t = shm.tail(shm.m2s);
        let (_, _, _, off) = shm.desc(shm.m2s, t);
        shm.write(off as usize, &good_frame);
        shm.set_desc(shm.m2s, t, (0, 3, 100, off));
        let (_, _, _, off1) = shm.desc(shm.m2s, t + 1);
        shm.write(off1 as usize, &good_frame);
        shm.set_desc(shm.m2s, t + 1, (0, 0, 100, shm.len as u32 - 50));
        shm.set_tail(shm.m2s, t + 2);
        let got = q.rx(if zero_copy { 2 } else { 1 }, &ci);
        let rc = ci.counters().rx;
        if zero_copy {
            assert_eq!(got, vec![good_frame.clone(), good_frame.clone()], "{mode}");
            assert_eq!((rc.bad_region, rc.bad_offset), (0, 0), "{mode}");
        } else {
            assert!(got.is_empty());
            assert!(wait(|| ci.counters().rx.bad_offset == 1), "{mode}: {:?}", ci.counters());
            assert_eq!(ci.counters().rx.bad_region, 1, "{mode}");
        }
        // Scribbles on the client's own fields (M2S head, S2M head, the
        // cookies) are never read back: traffic goes on both ways.
        shm.set_head(shm.m2s, 0x7777);
        shm.set_head(shm.s2m, 0x1234);
        shm.write(shm.m2s, &[0; 4]);
        shm.write(shm.s2m, &[0; 4]);
        assert_eq!(q.tx(&good_frame), 1, "{mode}");
        assert_ne!(shm.head(shm.s2m), 0x1234, "{mode}: the client published its own head");
        shm.send_m2s(&good_frame);
        assert_eq!(q.rx(1, &ci), vec![good_frame.clone()], "{mode}");
        assert!(ci.is_up());
        drop(shm);
        c.send(&msg(8, &[(6, b"next")]), &[]);
        assert!(ci.wait_for(LinkState::Down, T));

        // 2. Ring-discipline violations: each takes the link down with a
        // reason, counted as a fault; then a good server again.
        type Bad = (&'static str, fn(&Shm), &'static str);
        let bad: [Bad; 4] = [
            (
                "M2S tail beyond what was posted",
                |s| s.set_tail(s.m2s, s.head(s.m2s).wrapping_add(1)),
                "m2s ring 0: ring overrun",
            ),
            ("M2S tail behind ours", |s| s.set_tail(s.m2s, 0xff00), "m2s ring 0: ring overrun"),
            (
                "an endless chain",
                |s| {
                    for k in 0..s.size() {
                        let (_, r, _, o) = s.desc(s.m2s, k);
                        s.set_desc(s.m2s, k, (1, r, 64, o));
                    }
                    s.set_tail(s.m2s, s.head(s.m2s));
                },
                "m2s ring 0: descriptor chain longer than 256",
            ),
            ("S2M tail beyond our head", |s| s.set_tail(s.s2m, 5), "s2m ring 0: ring overrun"),
        ];
        for (name, f, want) in bad {
            let before = ci.counters();
            let c = srv.accept();
            let shm = good(&c, &ci);
            f(&shm);
            // The queue notices at its next burst (receive or transmit).
            let deadline = Instant::now() + T;
            while ci.is_up() && Instant::now() < deadline {
                q.rx(1, &ci);
                q.tx(&good_frame);
            }
            let got = c.disconnect_reason().unwrap_or_else(|| panic!("{mode} {name}: no DISCONNECT"));
            assert!(got.contains(want), "{mode} {name}: {got:?}");
            let after = ci.counters();
            assert_eq!(after.rx.faults + after.tx.faults, before.rx.faults + before.tx.faults + 1, "{mode} {name}");
            assert_eq!(after.protocol_errors, before.protocol_errors + 1, "{mode} {name}");
            drop(shm);
        }
        // Recovered: a good server, frames both ways.
        let c = srv.accept();
        let shm = good(&c, &ci);
        shm.send_m2s(&good_frame);
        assert_eq!(q.rx(1, &ci), vec![good_frame.clone()], "{mode}");
        let h0 = shm.tail(shm.s2m);
        assert_eq!(q.tx(&good_frame), 1);
        let (_, r, len, off) = shm.desc(shm.s2m, h0);
        assert_eq!((r, len), (0, 100), "{mode}");
        assert!(off as usize + 100 <= shm.len, "{mode}: the client's descriptor stays in its region");
        let mut b = vec![0u8; 100];
        shm.read(off as usize, &mut b);
        assert_eq!(b, good_frame, "{mode}");
        c.send(&msg(8, &[(6, b"done")]), &[]);
        assert!(ci.wait_for(LinkState::Down, T));
    }
}
