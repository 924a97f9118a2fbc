//! AF_XDP: vswitch on an existing kernel network device through XDP
//! sockets, with no C library: the XDP program is assembled in Rust and
//! loaded with `bpf(2)` ([`bpf`]), the rings are driven directly
//! ([`ring`]).
//!
//! # How frames flow
//!
//! An XDP program on the device (attached through a bpf_link: detached by
//! the kernel when vswitch closes it or dies) redirects every frame that
//! arrives on receive queue `q` to the socket in slot `q` of an XSKMAP; a
//! queue with no socket passes its frames to the kernel's stack. Each
//! socket has its own UMEM, an anonymous mapping (2 MiB huge pages when
//! the host has them) of [`AfXdpConfig::frame_count`] frames of
//! [`AfXdpConfig::frame_size`] bytes, split in two fixed halves:
//!
//! * **receive frames** cycle fill ring → kernel → RX ring → vswitch →
//!   fill ring. A receive burst peeks up to `max` RX descriptors, copies
//!   each frame into a pool buffer at [`HEADROOM`], and gives the frame
//!   straight back to the fill ring; the RX ring is released and the fill
//!   ring submitted once per burst. Every descriptor is checked (inside
//!   the UMEM, inside one receive frame) before it is read.
//! * **transmit frames** cycle free list → TX ring → kernel → completion
//!   ring → free list. A transmit burst first reaps the completion ring,
//!   copies each packet into a free frame, submits all descriptors at
//!   once, and kicks the kernel with one `sendto(MSG_DONTWAIT)`.
//!
//! Frames are copied on both sides rather than handed over: pool buffers
//! live in the pool's arena, not in the UMEM, and a UMEM frame cannot
//! stay pinned by a packet that lingers in the graph. The copy is one
//! memcpy per packet, like AF_PACKET; what AF_XDP saves is the kernel's
//! skb and packet-socket path (in driver mode) and every per-packet
//! syscall.
//!
//! # Modes
//!
//! [`XdpMode`] is where the program runs: `Driver` (native XDP in the
//! driver, before any skb exists), `Skb` (generic XDP, after the kernel
//! built an skb: works on every device), `Auto` (driver, else skb).
//! [`XdpBind`] is how the socket reaches the frames: `Copy` (the kernel
//! copies into the UMEM), `ZeroCopy` (the NIC DMAs into the UMEM: needs
//! driver support and driver mode), `Auto` (the kernel tries zero-copy
//! and falls back to copy; skb mode always binds copy).
//! [`AfXdpQueue::bind_mode`] says what was obtained. On veth, zero-copy
//! does not exist; copy mode works with both skb and driver mode.
//!
//! In copy mode the kernel sends TX descriptors only when kicked, and at
//! most a budget per kick (32 before Linux 6.17); the budget is raised to
//! the TX ring size where the kernel allows (`XDP_MAX_TX_SKB_BUDGET`), and
//! otherwise the kick is repeated while the kernel makes progress. With
//! `need_wakeup` the kernel says through the ring flags when it needs a
//! kick (TX) or a `recvfrom` (fill ring, zero-copy drivers that sleep);
//! without it, every transmit burst kicks.
//!
//! # Queues
//!
//! The kernel steers frames to sockets by receive queue, so there is no
//! fanout: [`AfXdpQueue::open_queues`] opens one socket per device queue
//! (`queue_id .. queue_id + n`), all sharing one XSKMAP and one program
//! attachment; spreading flows over queues is the NIC's RSS. A veth
//! created with `numrxqueues 1` has exactly one queue. Open all the
//! queues of a device in one call: a second attachment on the same device
//! is refused.
//!
//! # Split halves
//!
//! The receive half uses the RX and fill rings and the receive frames; the
//! transmit half the TX and completion rings and the transmit frames.
//! Every ring has one producer and one consumer, and the halves share no
//! ring and no frame, so [`AfXdpQueue::split`] hands them to different
//! workers safely; the kernel serialises the socket calls each half makes
//! (`recvfrom` wakeups, `sendto` kicks).
//!
//! # Namespaces
//!
//! The device is looked up, the program attached and the sockets bound in
//! the network namespace of the thread that opens the queue; to bind a
//! device in another namespace, open it inside
//! [`in_netns`](crate::netdev::in_netns).

pub mod bpf;
pub mod ring;

use crate::netdev::{context, LinkState, NetDev};
use crate::{QueueStats, RxQueue, TxQueue};
use ring::{ConsRing, Mmap, ProdRing, RingOffsets};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use vswitch_packet::{Arena, ArenaBacking, Buffers, PacketId, HEADROOM};

/// `AF_XDP` (`PF_XDP`).
pub const AF_XDP: libc::c_int = 44;
/// `SOL_XDP`.
pub const SOL_XDP: libc::c_int = 283;
/// Socket options (`linux/if_xdp.h`).
pub const XDP_MMAP_OFFSETS: libc::c_int = 1;
/// See [`XDP_MMAP_OFFSETS`].
pub const XDP_RX_RING: libc::c_int = 2;
/// See [`XDP_MMAP_OFFSETS`].
pub const XDP_TX_RING: libc::c_int = 3;
/// See [`XDP_MMAP_OFFSETS`].
pub const XDP_UMEM_REG: libc::c_int = 4;
/// See [`XDP_MMAP_OFFSETS`].
pub const XDP_UMEM_FILL_RING: libc::c_int = 5;
/// See [`XDP_MMAP_OFFSETS`].
pub const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
/// See [`XDP_MMAP_OFFSETS`].
pub const XDP_STATISTICS: libc::c_int = 7;
/// See [`XDP_MMAP_OFFSETS`].
pub const XDP_OPTIONS: libc::c_int = 8;
/// Copy-mode frames sent per kick (Linux 6.17+; `ENOPROTOOPT` before).
pub const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
/// Ring mmap offsets.
pub const XDP_PGOFF_RX_RING: u64 = 0;
/// See [`XDP_PGOFF_RX_RING`].
pub const XDP_PGOFF_TX_RING: u64 = 0x8000_0000;
/// See [`XDP_PGOFF_RX_RING`].
pub const XDP_UMEM_PGOFF_FILL_RING: u64 = 0x1_0000_0000;
/// See [`XDP_PGOFF_RX_RING`].
pub const XDP_UMEM_PGOFF_COMPLETION_RING: u64 = 0x1_8000_0000;
/// `sockaddr_xdp` flags.
pub const XDP_COPY: u16 = 1 << 1;
/// See [`XDP_COPY`].
pub const XDP_ZEROCOPY: u16 = 1 << 2;
/// See [`XDP_COPY`].
pub const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
/// `struct xdp_options` flag.
pub const XDP_OPTIONS_ZEROCOPY: u32 = 1;
/// Bytes the kernel keeps in front of a received frame in its UMEM frame
/// (`XDP_PACKET_HEADROOM`; the UMEM's own headroom is 0).
pub const XDP_PACKET_HEADROOM: u32 = 256;

// The values above against the libc crate's copies of the UAPI headers.
const _: () = {
    assert!(SOL_XDP == libc::SOL_XDP);
    assert!(XDP_MMAP_OFFSETS == libc::XDP_MMAP_OFFSETS && XDP_OPTIONS == libc::XDP_OPTIONS);
    assert!(XDP_RX_RING == libc::XDP_RX_RING && XDP_TX_RING == libc::XDP_TX_RING);
    assert!(XDP_UMEM_REG == libc::XDP_UMEM_REG && XDP_STATISTICS == libc::XDP_STATISTICS);
    assert!(XDP_UMEM_FILL_RING == libc::XDP_UMEM_FILL_RING);
    assert!(XDP_UMEM_COMPLETION_RING == libc::XDP_UMEM_COMPLETION_RING);
    assert!(XDP_PGOFF_TX_RING == libc::XDP_PGOFF_TX_RING as u64);
    assert!(XDP_UMEM_PGOFF_FILL_RING == libc::XDP_UMEM_PGOFF_FILL_RING);
    assert!(XDP_UMEM_PGOFF_COMPLETION_RING == libc::XDP_UMEM_PGOFF_COMPLETION_RING);
    assert!(XDP_COPY == libc::XDP_COPY && XDP_ZEROCOPY == libc::XDP_ZEROCOPY);
    assert!(XDP_USE_NEED_WAKEUP == libc::XDP_USE_NEED_WAKEUP);
    assert!(XDP_OPTIONS_ZEROCOPY == libc::XDP_OPTIONS_ZEROCOPY);
    assert!(ring::XDP_RING_NEED_WAKEUP == libc::XDP_RING_NEED_WAKEUP);
    assert!(std::mem::size_of::<libc::sockaddr_xdp>() == 16);
    assert!(std::mem::size_of::<libc::xdp_umem_reg>() == 32);
    assert!(std::mem::size_of::<libc::xdp_mmap_offsets>() == 128);
    assert!(std::mem::size_of::<libc::xdp_statistics>() == 48);
    assert!(std::mem::size_of::<XdpDesc>() == 16 && std::mem::align_of::<XdpDesc>() == 8);
};

/// An RX/TX descriptor (`struct xdp_desc`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XdpDesc {
    /// UMEM offset of the frame's first byte.
    pub addr: u64,
    /// Frame length.
    pub len: u32,
    /// `XDP_PKT_CONTD` and friends (0 here).
    pub options: u32,
}

/// Where the XDP program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// Generic XDP, after the kernel built an skb: every device has it.
    Skb,
    /// Native XDP in the driver.
    Driver,
    /// Driver mode if the device takes it, skb mode otherwise.
    Auto,
}

/// How the socket gets at frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpBind {
    /// The kernel copies frames into (and out of) the UMEM.
    Copy,
    /// The NIC reads and writes the UMEM (driver support needed).
    ZeroCopy,
    /// Zero-copy where the driver has it, copy otherwise (decided by the
    /// kernel at bind; copy in skb mode).
    Auto,
}

/// What to bind and how big the UMEM and rings are.
#[derive(Clone, Debug)]
pub struct AfXdpConfig {
    /// The kernel device, in the opening thread's network namespace.
    pub ifname: String,
    /// The (first) device queue to bind.
    pub queue_id: u32,
    /// Bytes per UMEM frame: a power of two from 2048 to the page size.
    /// A received frame can hold `frame_size - 256` bytes (the kernel
    /// keeps [`XDP_PACKET_HEADROOM`] in front), a sent one `frame_size`.
    pub frame_size: u32,
    /// UMEM frames per socket, a power of two (at least 2): half receive,
    /// half transmit.
    pub frame_count: u32,
    /// Entries of the RX and TX rings, a power of two. The fill and
    /// completion rings get at least as many entries as there are receive
    /// (transmit) frames, so every frame always fits.
    pub ring_size: u32,
    /// Where the program runs.
    pub mode: XdpMode,
    /// Copy or zero-copy.
    pub bind: XdpBind,
    /// Bind with `XDP_USE_NEED_WAKEUP`: kick/wake the kernel only when the
    /// ring flags ask for it.
    pub need_wakeup: bool,
}

impl Default for AfXdpConfig {
    fn default() -> Self {
        AfXdpConfig {
            ifname: String::new(),
            queue_id: 0,
            frame_size: 2048,
            frame_count: 4096,
            ring_size: 2048,
            mode: XdpMode::Auto,
            bind: XdpBind::Auto,
            need_wakeup: true,
        }
    }
}

impl AfXdpConfig {
    /// Defaults on device `ifname`, queue 0.
    pub fn device(ifname: &str) -> AfXdpConfig {
        AfXdpConfig { ifname: ifname.to_string(), ..AfXdpConfig::default() }
    }
}

/// Counters of one socket: what vswitch saw and what the kernel reports
/// (`XDP_STATISTICS`, cumulative since the socket was opened).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AfXdpStats {
    /// Frames received into buffers.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames longer than a pool buffer (dropped).
    pub rx_oversize: u64,
    /// Bursts cut short by an empty buffer pool (the descriptors stay in
    /// the RX ring; the kernel drops once it is full: `kernel_rx_ring_full`).
    pub rx_no_buffer: u64,
    /// RX descriptors that failed the checks (outside the UMEM or a
    /// receive frame, crossing a frame, empty): skipped, never read.
    pub rx_bad_descs: u64,
    /// `recvfrom` wakeups the fill ring asked for.
    pub rx_wakeups: u64,
    /// Frames put in the TX ring.
    pub tx_packets: u64,
    /// Bytes put in the TX ring.
    pub tx_bytes: u64,
    /// Frames dropped: no free transmit frame or TX ring slot.
    pub tx_ring_full: u64,
    /// Frames dropped for being shorter than an Ethernet header or longer
    /// than a UMEM frame or the device's MTU allows.
    pub tx_bad_length: u64,
    /// `sendto` kicks made.
    pub tx_kicks: u64,
    /// Kicks that failed for another reason than a busy device (the
    /// descriptors stay queued for the next kick).
    pub tx_kick_errors: u64,
    /// Completion ring entries that were not one of our transmit frames
    /// (ignored).
    pub tx_bad_completions: u64,
    /// Frames the kernel dropped: no frame in the fill ring, or longer
    /// than a frame (`rx_dropped`).
    pub kernel_rx_dropped: u64,
    /// Invalid descriptors the kernel saw in the RX ring.
    pub kernel_rx_invalid_descs: u64,
    /// Invalid descriptors the kernel saw in the TX ring (frames dropped).
    pub kernel_tx_invalid_descs: u64,
    /// Frames the kernel dropped because the RX ring was full.
    pub kernel_rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub kernel_rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the TX ring empty.
    pub kernel_tx_ring_empty_descs: u64,
}

// --- UMEM layout and descriptor checks: pure code -------------------------------

/// UMEM and ring geometry worked out from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    frame_size: u32,
    frame_count: u32,
    /// Frames `0..rx_frames` receive, `rx_frames..frame_count` transmit.
    rx_frames: u32,
    ring_size: u32,
    fill_size: u32,
    comp_size: u32,
}

/// What a received descriptor turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RxDesc {
    /// Inside receive frame `base`, non-empty, not crossing the frame.
    Good { base: u64 },
    /// Inside receive frame `base` but malformed: skipped, the frame goes
    /// back to the fill ring.
    Bad { base: u64 },
    /// Not in a receive frame at all: skipped and never reused.
    Foreign,
}

impl Layout {
    fn new(c: &AfXdpConfig) -> Result<Layout, String> {
        let page = page_size();
        let fs = c.frame_size;
        if !fs.is_power_of_two() || fs < 2048 || fs as usize > page {
            return Err(format!("frame_size {fs} must be a power of two from 2048 to the page size {page}"));
        }
        let fc = c.frame_count;
        if !fc.is_power_of_two() || fc < 2 {
            return Err(format!("frame_count {fc} must be a power of two of at least 2"));
        }
        if (fc as u64) * (fs as u64) > 1 << 40 {
            return Err(format!("frame_count {fc} x frame_size {fs} is too large"));
        }
        let rs = c.ring_size;
        if !rs.is_power_of_two() || rs > 1 << 24 {
            return Err(format!("ring_size {rs} must be a power of two up to 16777216"));
        }
        let rx_frames = fc / 2;
        let tx_frames = fc - rx_frames;
        Ok(Layout {
            frame_size: fs,
            frame_count: fc,
            rx_frames,
            ring_size: rs,
            fill_size: rs.max(rx_frames.next_power_of_two()),
            comp_size: rs.max(tx_frames.next_power_of_two()),
        })
    }

    fn umem_len(&self) -> usize {
        self.frame_count as usize * self.frame_size as usize
    }

    fn tx_frames(&self) -> u32 {
        self.frame_count - self.rx_frames
    }

    fn rx_frame(&self, i: u32) -> u64 {
        debug_assert!(i < self.rx_frames);
        i as u64 * self.frame_size as u64
    }

    fn tx_frame(&self, i: u32) -> u64 {
        debug_assert!(i < self.tx_frames());
        (self.rx_frames + i) as u64 * self.frame_size as u64
    }

    /// Checks an RX descriptor from the kernel.
    fn classify_rx(&self, addr: u64, len: u32) -> RxDesc {
        let fs = self.frame_size as u64;
        let base = addr & !(fs - 1);
        if base / fs >= self.rx_frames as u64 {
            return RxDesc::Foreign;
        }
        if len == 0 || (addr - base) + len as u64 > fs {
            return RxDesc::Bad { base };
        }
        RxDesc::Good { base }
    }

    /// Checks a completion ring entry: the base of a transmit frame.
    fn classify_completion(&self, addr: u64) -> Option<u64> {
        let fs = self.frame_size as u64;
        let frame = addr / fs;
        (addr.is_multiple_of(fs) && frame >= self.rx_frames as u64 && frame < self.frame_count as u64).then_some(addr)
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

// --- the program attachment -------------------------------------------------------

/// The XSKMAP, the program and its bpf_link, shared by the sockets of one
/// [`AfXdpQueue::open_queues`] call. Dropping it closes the link first,
/// which detaches the program.
struct Attachment {
    _link: OwnedFd,
    map: OwnedFd,
    mode: XdpMode,
}

fn busy(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EEXIST))
}

impl Attachment {
    fn new(name: &str, ifindex: u32, entries: u32, mode: XdpMode) -> io::Result<Attachment> {
        let fail = |step: &str, e: io::Error| context("af_xdp", name, step, e);
        let map = bpf::create_xskmap(entries).map_err(|e| {
            let step = if e.raw_os_error() == Some(libc::EPERM) {
                format!("create XSKMAP ({entries} entries; needs CAP_BPF or CAP_SYS_ADMIN)")
            } else {
                format!("create XSKMAP ({entries} entries)")
            };
            fail(&step, e)
        })?;
        let prog = bpf::load_xdp_program(&bpf::redirect_program(map.as_raw_fd())).map_err(|l| {
            let log = if l.log.is_empty() { "no verifier log".to_string() } else { l.log };
            io::Error::new(l.error.kind(), format!("af_xdp {name}: load XDP program: {log}: {}", l.error))
        })?;
        let attach = |m: XdpMode| {
            let (flags, what) = match m {
                XdpMode::Driver => (bpf::XDP_FLAGS_DRV_MODE, "driver"),
                _ => (bpf::XDP_FLAGS_SKB_MODE, "skb"),
            };
            bpf::link_xdp(prog.as_fd(), ifindex, flags).map_err(|e| {
                if busy(&e) {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "af_xdp {name}: attach XDP program ({what} mode): the device already has an XDP \
                             program attached (detach it first, e.g. `ip link set dev {name} xdp off`): {e}"
                        ),
                    )
                } else {
                    fail(&format!("attach XDP program ({what} mode)"), e)
                }
            })
        };
        let (link, mode) = match mode {
            XdpMode::Skb | XdpMode::Driver => (attach(mode)?, mode),
            XdpMode::Auto => match attach(XdpMode::Driver) {
                Ok(l) => (l, XdpMode::Driver),
                Err(e) if busy(&e) => return Err(e),
                Err(_) => (attach(XdpMode::Skb)?, XdpMode::Skb),
            },
        };
        // The link and the map hold the program; its descriptor can go.
        drop(prog);
        Ok(Attachment { _link: link, map, mode })
    }
}

// --- the socket ------------------------------------------------------------------

/// One XDP socket and its UMEM, shared by the two halves. Fields drop in
/// order: the socket closes (leaving the XSKMAP) before the UMEM is
/// unmapped, and the attachment goes last.
struct Socket {
    fd: OwnedFd,
    umem: Arena,
    layout: Layout,
    queue_id: u32,
    zero_copy: bool,
    name: String,
    attachment: Arc<Attachment>,
    dev: Arc<NetDev>,
}

fn setsockopt<T>(fd: BorrowedFd<'_>, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the size passed, which the
    // kernel only reads.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            SOL_XDP,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads option `name` into `value`; returns the length the kernel wrote.
fn getsockopt<T: Copy>(fd: BorrowedFd<'_>, name: libc::c_int, value: &mut T) -> io::Result<usize> {
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` points to a live, writable `T` of `len` bytes; the
    // options read here are structs of integers.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), SOL_XDP, name, (value as *mut T).cast(), &mut len) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(len as usize)
}

/// How long a bind retries while the queue is still held by a socket
/// being closed.
const BIND_BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The rings of a freshly opened socket, before they go to the halves.
struct Rings {
    rx: ConsRing<XdpDesc>,
    fill: ProdRing<u64>,
    tx: ProdRing<XdpDesc>,
    comp: ConsRing<u64>,
}

/// Opens, sets up, maps, binds and registers one socket on `queue_id`.
/// On error everything made so far is closed and unmapped by the values'
/// destructors.
fn open_socket(
    cfg: &AfXdpConfig,
    layout: Layout,
    dev: &Arc<NetDev>,
    attachment: &Arc<Attachment>,
    queue_id: u32,
) -> io::Result<(Socket, Rings)> {
    let name = cfg.ifname.as_str();
    let fail = |step: &str, e: io::Error| context("af_xdp", name, step, e);
    // SAFETY: plain socket(2); the result is checked.
    let raw = unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        let e = io::Error::last_os_error();
        let step = match e.raw_os_error() {
            Some(libc::EPERM) => "socket (needs CAP_NET_RAW)",
            Some(libc::EAFNOSUPPORT) => "socket (kernel without CONFIG_XDP_SOCKETS)",
            _ => "socket",
        };
        return Err(fail(step, e));
    }
    // SAFETY: `raw` is a fresh descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let len = layout.umem_len();
    let umem = Arena::new(len, true).map_err(|e| fail(&format!("allocate UMEM ({len} bytes)"), e))?;
    // Pinned pages of a private mapping are copied eagerly into a forked
    // child; a child (a spawned command) has no use for the UMEM.
    // SAFETY: the range is the arena just mapped; the advice changes only
    // what fork() does with it. Failure is harmless.
    unsafe { libc::madvise(umem.base().as_ptr().cast(), umem.len(), libc::MADV_DONTFORK) };
    let reg = libc::xdp_umem_reg {
        addr: umem.base().as_ptr() as u64,
        len: len as u64,
        chunk_size: layout.frame_size,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    setsockopt(fd.as_fd(), XDP_UMEM_REG, &reg).map_err(|e| {
        fail(&format!("register UMEM ({} frames of {} bytes)", layout.frame_count, layout.frame_size), e)
    })?;
    for (opt, size, what) in [
        (XDP_UMEM_FILL_RING, layout.fill_size, "fill"),
        (XDP_UMEM_COMPLETION_RING, layout.comp_size, "completion"),
        (XDP_RX_RING, layout.ring_size, "RX"),
        (XDP_TX_RING, layout.ring_size, "TX"),
    ] {
        setsockopt(fd.as_fd(), opt, &size).map_err(|e| fail(&format!("set up {what} ring ({size} entries)"), e))?;
    }
    // SAFETY: all-zero is a valid xdp_mmap_offsets (integers only).
    let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
    let got = getsockopt(fd.as_fd(), XDP_MMAP_OFFSETS, &mut off).map_err(|e| fail("get ring offsets", e))?;
    if got != std::mem::size_of::<libc::xdp_mmap_offsets>() {
        return Err(fail("get ring offsets", io::Error::other("kernel too old: rings without a flags word")));
    }
    let map_ring = |what: &str, o: RingOffsets, size: u32, entry: usize, align: usize, pgoff: u64| {
        let len = o.map_len(size, entry, align).map_err(|m| fail(&format!("map {what} ring"), io::Error::other(m)))?;
        Mmap::socket_ring(fd.as_fd(), len, pgoff).map_err(|e| fail(&format!("map {what} ring ({len} bytes)"), e))
    };
    let (d, a) = (std::mem::size_of::<XdpDesc>(), std::mem::align_of::<XdpDesc>());
    let rx_map = map_ring("RX", off.rx.into(), layout.ring_size, d, a, XDP_PGOFF_RX_RING)?;
    let tx_map = map_ring("TX", off.tx.into(), layout.ring_size, d, a, XDP_PGOFF_TX_RING)?;
    let fill_map = map_ring("fill", off.fr.into(), layout.fill_size, 8, 8, XDP_UMEM_PGOFF_FILL_RING)?;
    let comp_map = map_ring("completion", off.cr.into(), layout.comp_size, 8, 8, XDP_UMEM_PGOFF_COMPLETION_RING)?;
    let mut rings = Rings {
        rx: ConsRing::new(rx_map, off.rx.into(), layout.ring_size),
        fill: ProdRing::new(fill_map, off.fr.into(), layout.fill_size),
        tx: ProdRing::new(tx_map, off.tx.into(), layout.ring_size),
        comp: ConsRing::new(comp_map, off.cr.into(), layout.comp_size),
    };
    // Every receive frame goes to the fill ring before the socket can
    // receive anything.
    let n = rings.fill.reserve(layout.rx_frames);
    for i in 0..n {
        rings.fill.write(i, layout.rx_frame(i));
    }
    rings.fill.submit(n);

    let bind = match (cfg.bind, attachment.mode) {
        (XdpBind::Copy, _) | (XdpBind::Auto, XdpMode::Skb) => XDP_COPY,
        (XdpBind::ZeroCopy, XdpMode::Skb) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("af_xdp {name}: zero-copy needs the XDP program in driver mode, it runs in skb mode"),
            ));
        }
        (XdpBind::ZeroCopy, _) => XDP_ZEROCOPY,
        (XdpBind::Auto, _) => 0,
    };
    let flags = bind | if cfg.need_wakeup { XDP_USE_NEED_WAKEUP } else { 0 };
    let sxdp = libc::sockaddr_xdp {
        sxdp_family: AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: dev.ifindex(),
        sxdp_queue_id: queue_id,
        sxdp_shared_umem_fd: 0,
    };
    // A socket closed a moment ago releases its queue asynchronously (the
    // kernel frees its buffer pool from a workqueue): EBUSY for a short
    // while. A failed bind leaves this socket as it was, so try again.
    let deadline = std::time::Instant::now() + BIND_BUSY_WAIT;
    let bound = loop {
        // SAFETY: `sxdp` is a live sockaddr_xdp of the length passed.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sxdp as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            _ if r == 0 => break Ok(()),
            Some(libc::EBUSY) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            Some(libc::EINTR) => {}
            _ => break Err(e),
        }
    };
    if let Err(e) = bound {
        let how = match bind {
            XDP_COPY => "copy",
            XDP_ZEROCOPY => "zero-copy",
            _ => "zero-copy or copy",
        };
        let hint = match e.raw_os_error() {
            Some(libc::EINVAL) => "; does the device have that queue?",
            Some(libc::EOPNOTSUPP) if bind == XDP_ZEROCOPY => "; the driver has no zero-copy support",
            Some(libc::EBUSY) => "; another socket holds that queue",
            _ => "",
        };
        return Err(fail(&format!("bind to queue {queue_id} ({how}{hint})"), e));
    }
    let mut opts = libc::xdp_options { flags: 0 };
    getsockopt(fd.as_fd(), XDP_OPTIONS, &mut opts).map_err(|e| fail("get socket options", e))?;
    let zero_copy = opts.flags & XDP_OPTIONS_ZEROCOPY != 0;
    if !zero_copy && layout.ring_size >= 32 {
        // Let one kick send a whole TX ring; older kernels say ENOPROTOOPT
        // and the kick repeats instead.
        let _ = setsockopt(fd.as_fd(), XDP_MAX_TX_SKB_BUDGET, &layout.ring_size);
    }
    bpf::xskmap_set(attachment.map.as_fd(), queue_id, fd.as_fd())
        .map_err(|e| fail(&format!("insert socket in XSKMAP slot {queue_id}"), e))?;
    let sock = Socket {
        fd,
        umem,
        layout,
        queue_id,
        zero_copy,
        name: name.to_string(),
        attachment: attachment.clone(),
        dev: dev.clone(),
    };
    Ok((sock, rings))
}

impl Socket {
    /// `XDP_STATISTICS` into the kernel fields of `s`.
    fn kernel_stats(&self, s: &mut AfXdpStats) {
        // SAFETY: all-zero is a valid xdp_statistics (integers only).
        let mut k: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        if getsockopt(self.fd.as_fd(), XDP_STATISTICS, &mut k).is_ok() {
            s.kernel_rx_dropped = k.rx_dropped;
            s.kernel_rx_invalid_descs = k.rx_invalid_descs;
            s.kernel_tx_invalid_descs = k.tx_invalid_descs;
            s.kernel_rx_ring_full = k.rx_ring_full;
            s.kernel_rx_fill_ring_empty_descs = k.rx_fill_ring_empty_descs;
            s.kernel_tx_ring_empty_descs = k.tx_ring_empty_descs;
        }
    }

    /// UMEM byte `addr`.
    fn frame_ptr(&self, addr: u64) -> *mut u8 {
        debug_assert!((addr as usize) < self.layout.umem_len());
        // SAFETY: callers pass offsets checked to lie inside the UMEM,
        // which the arena (at least `umem_len` bytes) covers.
        unsafe { self.umem.base().as_ptr().add(addr as usize) }
    }
}

// --- the queue ----------------------------------------------------------------------

/// The receive half of an AF_XDP queue: the RX and fill rings.
pub struct AfXdpRx {
    sock: Arc<Socket>,
    rx: ConsRing<XdpDesc>,
    fill: ProdRing<u64>,
    port: u32,
    need_wakeup: bool,
    stats: AfXdpStats,
}

/// The transmit half of an AF_XDP queue: the TX and completion rings.
pub struct AfXdpTx {
    sock: Arc<Socket>,
    tx: ProdRing<XdpDesc>,
    comp: ConsRing<u64>,
    /// Transmit frames not in the kernel's hands (capacity: all of them).
    free: Vec<u64>,
    /// The device's MTU as last read.
    mtu: u32,
    need_wakeup: bool,
    /// A kick did not get everything sent: kick again next burst.
    kick_pending: bool,
    stats: AfXdpStats,
}

/// One XDP socket on one device queue: a receive and a transmit half (see
/// the module docs). Use it whole as both queues, or [`split`](Self::split)
/// it.
pub struct AfXdpQueue {
    rx: AfXdpRx,
    tx: AfXdpTx,
}

impl std::fmt::Debug for AfXdpQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.rx.sock;
        f.debug_struct("AfXdpQueue")
            .field("device", &s.name)
            .field("queue_id", &s.queue_id)
            .field("xdp_mode", &s.attachment.mode)
            .field("zero_copy", &s.zero_copy)
            .finish()
    }
}

impl AfXdpQueue {
    /// Opens one socket on queue `config.queue_id` of `config.ifname`,
    /// receiving as port `port`, and attaches the XDP program.
    pub fn open(config: &AfXdpConfig, port: u32) -> io::Result<AfXdpQueue> {
        let mut q = AfXdpQueue::open_queues(config, port, 1)?;
        Ok(q.pop().expect("one queue"))
    }

    /// Opens sockets on `count` device queues from `config.queue_id` on,
    /// all receiving as port `port`, sharing one XSKMAP and one program
    /// attachment (detached when the last of them is dropped). The kernel
    /// steers frames by receive queue: there is no fanout. On error what
    /// was opened is closed and the program detached.
    pub fn open_queues(config: &AfXdpConfig, port: u32, count: usize) -> io::Result<Vec<AfXdpQueue>> {
        let name = config.ifname.as_str();
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, format!("af_xdp {name}: {m}"));
        if name.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "af_xdp: no device name given"));
        }
        if count == 0 {
            return Err(invalid("queue count must be at least 1".into()));
        }
        let entries = u32::try_from(count)
            .ok()
            .and_then(|c| config.queue_id.checked_add(c))
            .ok_or_else(|| invalid(format!("queues {} + {count} out of range", config.queue_id)))?;
        let layout = Layout::new(config).map_err(invalid)?;
        let dev = NetDev::open(name).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                io::Error::new(io::ErrorKind::NotFound, format!("af_xdp {name}: no such device"))
            } else {
                context("af_xdp", name, "open device", e)
            }
        })?;
        let mtu = dev.mtu()?;
        let dev = Arc::new(dev);
        let attachment = Arc::new(Attachment::new(name, dev.ifindex(), entries, config.mode)?);
        let mut queues = Vec::with_capacity(count);
        for queue_id in config.queue_id..entries {
            let (sock, rings) = open_socket(config, layout, &dev, &attachment, queue_id)?;
            let sock = Arc::new(sock);
            let tx_frames = layout.tx_frames();
            let mut free = Vec::with_capacity(tx_frames as usize);
            free.extend((0..tx_frames).rev().map(|i| layout.tx_frame(i)));
            queues.push(AfXdpQueue {
                rx: AfXdpRx {
                    sock: sock.clone(),
                    rx: rings.rx,
                    fill: rings.fill,
                    port,
                    need_wakeup: config.need_wakeup,
                    stats: AfXdpStats::default(),
                },
                tx: AfXdpTx {
                    sock,
                    tx: rings.tx,
                    comp: rings.comp,
                    free,
                    mtu,
                    need_wakeup: config.need_wakeup,
                    kick_pending: false,
                    stats: AfXdpStats::default(),
                },
            });
        }
        Ok(queues)
    }

    /// The device.
    pub fn netdev(&self) -> &NetDev {
        &self.rx.sock.dev
    }

    /// The device queue this socket is bound to.
    pub fn queue_id(&self) -> u32 {
        self.rx.sock.queue_id
    }

    /// Copy or zero-copy, as the kernel granted ([`XdpBind::Copy`] or
    /// [`XdpBind::ZeroCopy`]; `XDP_OPTIONS`).
    pub fn bind_mode(&self) -> XdpBind {
        self.rx.bind_mode()
    }

    /// Where the program runs ([`XdpMode::Skb`] or [`XdpMode::Driver`]).
    pub fn xdp_mode(&self) -> XdpMode {
        self.rx.sock.attachment.mode
    }

    /// What the UMEM is made of (huge pages when the host had them).
    pub fn umem_backing(&self) -> ArenaBacking {
        self.rx.sock.umem.backing()
    }

    /// The device's MTU, read from the kernel.
    pub fn mtu(&self) -> io::Result<u32> {
        self.rx.sock.dev.mtu()
    }

    /// The device's link state, read from the kernel.
    pub fn link(&self) -> io::Result<LinkState> {
        self.rx.sock.dev.link()
    }

    /// The device's MAC address, read from the kernel.
    pub fn mac(&self) -> io::Result<[u8; 6]> {
        self.rx.sock.dev.mac()
    }

    /// Counters of both halves (reads the kernel's statistics).
    pub fn counters(&self) -> AfXdpStats {
        let rx = self.rx.counters();
        let t = self.tx.stats;
        AfXdpStats {
            tx_packets: t.tx_packets,
            tx_bytes: t.tx_bytes,
            tx_ring_full: t.tx_ring_full,
            tx_bad_length: t.tx_bad_length,
            tx_kicks: t.tx_kicks,
            tx_kick_errors: t.tx_kick_errors,
            tx_bad_completions: t.tx_bad_completions,
            ..rx
        }
    }

    /// The two halves, to hand to a worker (or two) as a receive queue
    /// and a transmit queue for this port.
    pub fn split(self) -> (AfXdpRx, AfXdpTx) {
        (self.rx, self.tx)
    }
}

impl AfXdpRx {
    /// Counters of this half plus the kernel's (one `getsockopt`).
    pub fn counters(&self) -> AfXdpStats {
        let mut s = self.stats;
        self.sock.kernel_stats(&mut s);
        s
    }

    /// The device.
    pub fn netdev(&self) -> &NetDev {
        &self.sock.dev
    }

    /// Copy or zero-copy, as the kernel granted.
    pub fn bind_mode(&self) -> XdpBind {
        if self.sock.zero_copy {
            XdpBind::ZeroCopy
        } else {
            XdpBind::Copy
        }
    }

    /// `recvfrom(MSG_DONTWAIT)`: tells a driver that sleeps that the fill
    /// ring has frames again.
    fn wakeup(&mut self) {
        self.stats.rx_wakeups += 1;
        // SAFETY: a zero-length non-blocking receive with no buffer and no
        // address only wakes the driver's receive path.
        unsafe {
            libc::recvfrom(
                self.sock.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }
}

impl RxQueue for AfXdpRx {
    fn port(&self) -> u32 {
        self.port
    }

    fn rx_burst(&mut self, bufs: &mut Buffers, out: &mut Vec<PacketId>, max: usize) -> usize {
        let want = max.min(u32::MAX as usize) as u32;
        let avail = self.rx.peek(want);
        let mut n = 0usize;
        if avail > 0 {
            let cap = bufs.buffer_size() - HEADROOM;
            let layout = self.sock.layout;
            // The fill ring holds every receive frame, so this is all of
            // them in practice.
            let room = self.fill.reserve(avail);
            let (mut taken, mut recycled) = (0u32, 0u32);
            while taken < avail && recycled < room {
                let d = self.rx.read(taken);
                let base = match layout.classify_rx(d.addr, d.len) {
                    RxDesc::Foreign => {
                        self.stats.rx_bad_descs += 1;
                        taken += 1;
                        continue;
                    }
                    RxDesc::Bad { base } => {
                        self.stats.rx_bad_descs += 1;
                        base
                    }
                    RxDesc::Good { base } if d.len as usize > cap => {
                        self.stats.rx_oversize += 1;
                        base
                    }
                    RxDesc::Good { base } => {
                        let Some(p) = bufs.alloc() else {
                            self.stats.rx_no_buffer += 1;
                            break;
                        };
                        let len = d.len as usize;
                        let dst = &mut bufs.buffer_mut(p)[HEADROOM..HEADROOM + len];
                        // SAFETY: `addr..addr + len` lies inside receive
                        // frame `base` (classify_rx), which the kernel
                        // handed over through the RX ring and gets back
                        // only below, through the fill ring.
                        unsafe { std::ptr::copy_nonoverlapping(self.sock.frame_ptr(d.addr), dst.as_mut_ptr(), len) };
                        let m = bufs.meta_mut(p);
                        m.current = HEADROOM as u16;
                        m.len = len as u16;
                        m.rx_if = self.port;
                        self.stats.rx_bytes += len as u64;
                        out.push(p);
                        n += 1;
                        base
                    }
                };
                self.fill.write(recycled, base);
                recycled += 1;
                taken += 1;
            }
            self.rx.release(taken);
            self.fill.submit(recycled);
        }
        if self.need_wakeup && self.fill.needs_wakeup() {
            self.wakeup();
        }
        self.stats.rx_packets += n as u64;
        n
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.sock.fd.as_fd())
    }

    fn stats(&self) -> QueueStats {
        let s = self.counters();
        QueueStats {
            packets: s.rx_packets,
            bytes: s.rx_bytes,
            drops: s.rx_oversize
                + s.rx_bad_descs
                + s.kernel_rx_dropped
                + s.kernel_rx_ring_full
                + s.kernel_rx_invalid_descs,
        }
    }
}

/// Most frames the kernel consumed per copy-mode kick before Linux 6.17.
const KERNEL_TX_BATCH: u32 = 32;

impl AfXdpTx {
    /// Counters of this half plus the kernel's (one `getsockopt`).
    pub fn counters(&self) -> AfXdpStats {
        let mut s = self.stats;
        self.sock.kernel_stats(&mut s);
        s
    }

    /// The device.
    pub fn netdev(&self) -> &NetDev {
        &self.sock.dev
    }

    /// Longest frame the device takes: MTU plus the Ethernet header, plus
    /// a VLAN tag when the frame carries one.
    fn max_len(&self, frame: &[u8]) -> usize {
        let tagged = frame.len() >= 14 && matches!(u16::from_be_bytes([frame[12], frame[13]]), 0x8100 | 0x88a8);
        self.mtu as usize + 14 + if tagged { 4 } else { 0 }
    }

    /// Moves completed transmit frames back to the free list.
    fn reap(&mut self) {
        let in_flight = self.sock.layout.tx_frames() - self.free.len() as u32;
        if in_flight == 0 {
            return;
        }
        let n = self.comp.peek(in_flight);
        for i in 0..n {
            match self.sock.layout.classify_completion(self.comp.read(i)) {
                Some(addr) if self.free.len() < self.free.capacity() => self.free.push(addr),
                _ => self.stats.tx_bad_completions += 1,
            }
        }
        self.comp.release(n);
    }

    /// Asks the kernel to send what the TX ring holds: one
    /// `sendto(MSG_DONTWAIT)`, repeated while a copy-mode kernel stops at
    /// its per-call budget and makes progress.
    fn kick(&mut self) {
        if self.need_wakeup && !self.tx.needs_wakeup() {
            self.kick_pending = false;
            return;
        }
        let mut before = self.tx.pending();
        let rounds = self.sock.layout.ring_size / KERNEL_TX_BATCH + 2;
        for _ in 0..rounds {
            self.stats.tx_kicks += 1;
            // SAFETY: a zero-length non-blocking send with no buffer and no
            // address only tells the kernel to walk the TX ring.
            let r = unsafe {
                libc::sendto(self.sock.fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0)
            };
            if r >= 0 {
                self.kick_pending = false;
                return;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) => {
                    let now = self.tx.pending();
                    if now == 0 {
                        self.kick_pending = false;
                        return;
                    }
                    if now >= before {
                        // The device is busy: try again next burst.
                        self.kick_pending = true;
                        return;
                    }
                    before = now;
                }
                _ => {
                    self.stats.tx_kick_errors += 1;
                    self.kick_pending = true;
                    return;
                }
            }
        }
        self.kick_pending = true;
    }
}

impl TxQueue for AfXdpTx {
    fn tx_burst(&mut self, bufs: &mut Buffers, packets: &mut Vec<PacketId>) {
        self.reap();
        let want = packets.len().min(u32::MAX as usize) as u32;
        let slots = if want > 0 { self.tx.reserve(want) } else { 0 };
        let frame_size = self.sock.layout.frame_size as usize;
        let mut mtu_refreshed = false;
        let mut queued = 0u32;
        for &p in packets.iter() {
            let data = bufs.data(p);
            if data.len() > self.max_len(data) && !mtu_refreshed {
                // The MTU may have grown since it was read: look once per burst.
                mtu_refreshed = true;
                if let Ok(m) = self.sock.dev.mtu() {
                    self.mtu = m;
                }
            }
            if data.len() < 14 || data.len() > frame_size || data.len() > self.max_len(data) {
                self.stats.tx_bad_length += 1;
                continue;
            }
            if queued == slots {
                self.stats.tx_ring_full += 1;
                continue;
            }
            let Some(addr) = self.free.pop() else {
                self.stats.tx_ring_full += 1;
                continue;
            };
            // SAFETY: `addr` is a free transmit frame (the kernel gave it
            // back, or never had it) of `frame_size >= data.len()` bytes
            // inside the UMEM; the kernel reads it only after `submit`.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.sock.frame_ptr(addr), data.len()) };
            self.tx.write(queued, XdpDesc { addr, len: data.len() as u32, options: 0 });
            queued += 1;
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += data.len() as u64;
        }
        self.tx.submit(queued);
        if queued > 0 || self.kick_pending {
            self.kick();
        }
        bufs.free_bulk(packets);
        packets.clear();
    }

    fn stats(&self) -> QueueStats {
        let s = &self.stats;
        QueueStats { packets: s.tx_packets, bytes: s.tx_bytes, drops: s.tx_ring_full + s.tx_bad_length }
    }
}

impl RxQueue for AfXdpQueue {
    fn port(&self) -> u32 {
        self.rx.port
    }

    fn rx_burst(&mut self, bufs: &mut Buffers, out: &mut Vec<PacketId>, max: usize) -> usize {
        self.rx.rx_burst(bufs, out, max)
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        self.rx.wait_fd()
    }

    fn stats(&self) -> QueueStats {
        RxQueue::stats(&self.rx)
    }
}

impl TxQueue for AfXdpQueue {
    fn tx_burst(&mut self, bufs: &mut Buffers, packets: &mut Vec<PacketId>) {
        self.tx.tx_burst(bufs, packets)
    }

    fn stats(&self) -> QueueStats {
        TxQueue::stats(&self.tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(frame_size: u32, frame_count: u32, ring_size: u32) -> Layout {
        Layout::new(&AfXdpConfig { frame_size, frame_count, ring_size, ..AfXdpConfig::device("x") }).unwrap()
    }

    #[test]
    fn layout_splits_frames_and_sizes_rings_to_hold_them() {
        let l = layout(2048, 4096, 2048);
        assert_eq!((l.rx_frames, l.tx_frames()), (2048, 2048));
        assert_eq!((l.fill_size, l.comp_size, l.ring_size), (2048, 2048, 2048));
        assert_eq!(l.umem_len(), 8 << 20);
        assert_eq!(l.rx_frame(1), 2048);
        assert_eq!(l.tx_frame(0), 2048 * 2048);
        // Small rings: the fill and completion rings still hold every frame.
        let l = layout(2048, 1024, 64);
        assert_eq!((l.fill_size, l.comp_size, l.ring_size), (512, 512, 64));
        let bad = |c: AfXdpConfig| Layout::new(&c).unwrap_err();
        assert!(bad(AfXdpConfig { frame_size: 3000, ..AfXdpConfig::device("x") }).contains("frame_size"));
        assert!(bad(AfXdpConfig { frame_size: 1024, ..AfXdpConfig::device("x") }).contains("frame_size"));
        assert!(bad(AfXdpConfig { frame_size: 1 << 20, ..AfXdpConfig::device("x") }).contains("page size"));
        assert!(bad(AfXdpConfig { frame_count: 1000, ..AfXdpConfig::device("x") }).contains("frame_count"));
        assert!(bad(AfXdpConfig { frame_count: 1, ..AfXdpConfig::device("x") }).contains("frame_count"));
        assert!(bad(AfXdpConfig { ring_size: 100, ..AfXdpConfig::device("x") }).contains("ring_size"));
        assert!(bad(AfXdpConfig { ring_size: 0, ..AfXdpConfig::device("x") }).contains("ring_size"));
    }

    #[test]
    fn received_descriptors_are_checked_before_use() {
        let l = layout(2048, 8, 8); // frames 0..4 receive, 4..8 transmit
        let h = XDP_PACKET_HEADROOM as u64;
        // What copy mode hands over: frame base + 256, up to 1792 bytes.
        assert_eq!(l.classify_rx(h, 60), RxDesc::Good { base: 0 });
        assert_eq!(l.classify_rx(3 * 2048 + h, 1792), RxDesc::Good { base: 3 * 2048 });
        assert_eq!(l.classify_rx(0, 2048), RxDesc::Good { base: 0 }, "a whole frame");
        // Crossing into the next frame, or empty: bad, the frame is reused.
        assert_eq!(l.classify_rx(2048 + h, 1793), RxDesc::Bad { base: 2048 });
        assert_eq!(l.classify_rx(2048 + h, 0), RxDesc::Bad { base: 2048 });
        assert_eq!(l.classify_rx(2048 + h, u32::MAX), RxDesc::Bad { base: 2048 });
        // A transmit frame, past the UMEM, or an absurd address: foreign.
        assert_eq!(l.classify_rx(4 * 2048 + h, 60), RxDesc::Foreign);
        assert_eq!(l.classify_rx(8 * 2048, 60), RxDesc::Foreign);
        assert_eq!(l.classify_rx(u64::MAX, 1), RxDesc::Foreign);
        assert_eq!(l.classify_rx(u64::MAX - 2047, 1), RxDesc::Foreign);
    }

    #[test]
    fn completions_must_be_transmit_frame_bases() {
        let l = layout(2048, 8, 8);
        assert_eq!(l.classify_completion(4 * 2048), Some(4 * 2048));
        assert_eq!(l.classify_completion(7 * 2048), Some(7 * 2048));
        assert_eq!(l.classify_completion(3 * 2048), None, "a receive frame");
        assert_eq!(l.classify_completion(4 * 2048 + 1), None, "not a frame base");
        assert_eq!(l.classify_completion(8 * 2048), None, "past the UMEM");
        assert_eq!(l.classify_completion(u64::MAX), None);
    }

    #[test]
    fn kernel_structs_have_the_uapi_layout() {
        assert_eq!(std::mem::offset_of!(libc::sockaddr_xdp, sxdp_ifindex), 4);
        assert_eq!(std::mem::offset_of!(libc::sockaddr_xdp, sxdp_queue_id), 8);
        assert_eq!(std::mem::offset_of!(libc::xdp_umem_reg, chunk_size), 16);
        assert_eq!(std::mem::offset_of!(libc::xdp_umem_reg, flags), 24);
        assert_eq!(std::mem::offset_of!(libc::xdp_mmap_offsets, fr), 64);
        assert_eq!(std::mem::offset_of!(libc::xdp_ring_offset, flags), 24);
        assert_eq!(std::mem::offset_of!(XdpDesc, len), 8);
        assert_eq!(std::mem::offset_of!(libc::xdp_statistics, tx_ring_empty_descs), 40);
    }
}
