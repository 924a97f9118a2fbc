//! AF_PACKET: vswitch on an existing kernel network device (the host end
//! of a veth pair, a NIC without DPDK) through a packet socket with memory
//! mapped rings.
//!
//! # Receive: a TPACKET_V3 ring
//!
//! The kernel fills fixed-size *blocks* with variable-size frames and hands
//! a block over when it is full or when its timeout expires
//! ([`AfPacketConfig::block_timeout_ms`]). A receive burst walks the block
//! it owns frame by frame ([`v3::Walker`]), copies each frame into a pool
//! buffer at [`HEADROOM`], and gives the block back once every frame in it
//! was taken, so a burst of 256 can stop in the middle of a block and the
//! next one resumes there. One memcpy per packet and no syscall: the ring
//! belongs to the kernel, so its frames cannot become pool buffers
//! (zero-copy would pin whole blocks for as long as any packet of them
//! lives).
//!
//! While copying, the receive path also undoes two things the kernel does
//! to frames it hands to packet sockets: a VLAN tag taken out of the frame
//! (`TP_STATUS_VLAN_VALID`) is put back in front of the EtherType, and a
//! TCP/UDP checksum left for offload (`TP_STATUS_CSUMNOTREADY`, typical on
//! veth) is computed, so forwarded packets leave with correct checksums.
//! Frames the kernel truncated (longer than a block: GSO super-frames from
//! a peer with TSO/GSO on) or longer than a buffer are dropped and counted.
//!
//! Frames vswitch itself sent (`PACKET_OUTGOING`) are not delivered:
//! `PACKET_IGNORE_OUTGOING` on a lone socket,
//! `PACKET_FANOUT_FLAG_IGNORE_OUTGOING` on a fanout group (Linux 6.2+),
//! and the walker skips any that still arrive.
//!
//! # Transmit: a TPACKET_V3 TX ring, one kick per burst
//!
//! The same socket has a TX ring of fixed-size slots. A transmit burst
//! copies each packet into the next free slot, marks it
//! `TP_STATUS_SEND_REQUEST`, and after the burst makes one non-blocking
//! `sendto(fd, NULL, 0, MSG_DONTWAIT)` so the kernel sends every marked
//! slot. A slot the kernel still owns means the ring is full: the packet is
//! dropped and counted (the worker never blocks). `PACKET_LOSS` is on so a
//! malformed slot is skipped instead of stalling the ring.
//!
//! # Several workers on one device
//!
//! [`AfPacketQueue::open_queues`] opens one socket per worker and joins
//! them in a `PACKET_FANOUT` group (hash mode by default: the kernel's
//! symmetric flow hash, so a flow and its reverse stay on one worker).
//! The group id is allocated by the kernel (`PACKET_FANOUT_FLAG_UNIQUEID`)
//! unless one is configured; [`AfPacketQueue::fanout_group`] reads it back.
//!
//! # Namespaces
//!
//! The socket works in the network namespace of the thread that opens it;
//! to bind a device in another namespace, open it inside
//! [`in_netns`](crate::netdev::in_netns). The device is put in promiscuous
//! mode through the socket (`PACKET_MR_PROMISC`), which the kernel undoes
//! when the socket closes.

use crate::netdev::{context, LinkState, NetDev};
use crate::{QueueStats, RxQueue, TxQueue};
use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use vswitch_packet::{Buffers, PacketId, HEADROOM};

/// How the kernel spreads packets over the sockets of a fanout group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanoutMode {
    /// By flow hash (symmetric): a flow stays on one socket.
    Hash,
    /// Round robin.
    LoadBalance,
    /// By the CPU the packet arrived on.
    Cpu,
    /// By the device's receive queue (NICs with several queues).
    QueueMapping,
}

impl FanoutMode {
    fn raw(self) -> u32 {
        match self {
            FanoutMode::Hash => libc::PACKET_FANOUT_HASH,
            FanoutMode::LoadBalance => libc::PACKET_FANOUT_LB,
            FanoutMode::Cpu => libc::PACKET_FANOUT_CPU,
            FanoutMode::QueueMapping => libc::PACKET_FANOUT_QM,
        }
    }
}

/// Membership of a fanout group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fanout {
    /// The group to join; `None` makes a new group with an id the kernel
    /// picks (read it with [`AfPacketQueue::fanout_group`]).
    pub group: Option<u16>,
    /// How packets are spread.
    pub mode: FanoutMode,
}

/// What to bind and how big the rings are.
#[derive(Clone, Debug)]
pub struct AfPacketConfig {
    /// The kernel device, in the opening thread's network namespace.
    pub ifname: String,
    /// Bytes per receive block: a multiple of the page size.
    pub block_size: u32,
    /// Receive blocks.
    pub block_count: u32,
    /// Milliseconds after which the kernel hands over a block that is not
    /// full (the receive latency under light load); 0: the kernel's default.
    pub block_timeout_ms: u32,
    /// Bytes per transmit slot, including the 48-byte slot header: a
    /// multiple of 16. Frames up to `tx_frame_size - 48` bytes can be sent.
    pub tx_frame_size: u32,
    /// Transmit slots (rounded up to fill whole pages).
    pub tx_frames: u32,
    /// Join a fanout group (several sockets on one device).
    pub fanout: Option<Fanout>,
    /// Put the device in promiscuous mode while the socket is open.
    pub promiscuous: bool,
    /// Transmit without the device's qdisc (`PACKET_QDISC_BYPASS`): faster,
    /// but no traffic control and drops instead of queueing.
    pub qdisc_bypass: bool,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        AfPacketConfig {
            ifname: String::new(),
            block_size: 1 << 17,
            block_count: 32,
            block_timeout_ms: 1,
            tx_frame_size: 2048,
            tx_frames: 512,
            fanout: None,
            promiscuous: true,
            qdisc_bypass: false,
        }
    }
}

impl AfPacketConfig {
    /// Defaults on device `ifname`.
    pub fn device(ifname: &str) -> AfPacketConfig {
        AfPacketConfig { ifname: ifname.to_string(), ..AfPacketConfig::default() }
    }
}

/// Counters of one queue: what vswitch saw and what the kernel reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AfPacketStats {
    /// Frames received into buffers.
    pub rx_packets: u64,
    /// Bytes received (VLAN tags put back included).
    pub rx_bytes: u64,
    /// Frames the kernel truncated to fit the ring (dropped).
    pub rx_truncated: u64,
    /// Frames longer than a pool buffer (dropped).
    pub rx_oversize: u64,
    /// Bursts cut short by an empty buffer pool; the frame stays in the
    /// ring and the kernel drops (and counts) once the ring is full.
    pub rx_no_buffer: u64,
    /// Frames of our own transmissions seen and skipped.
    pub rx_outgoing: u64,
    /// TCP/UDP checksums computed because the sender left them to offload.
    pub rx_checksums: u64,
    /// Blocks whose layout did not check out (the rest of the block is
    /// dropped; never seen with a sane kernel).
    pub rx_ring_errors: u64,
    /// Frames the kernel's filter passed to the socket (PACKET_STATISTICS,
    /// drops included).
    pub kernel_packets: u64,
    /// Frames the kernel dropped because the ring was full.
    pub kernel_drops: u64,
    /// Times the ring froze (every block owned by vswitch).
    pub kernel_freezes: u64,
    /// Frames put in the TX ring.
    pub tx_packets: u64,
    /// Bytes put in the TX ring.
    pub tx_bytes: u64,
    /// Frames dropped because no TX slot was free.
    pub tx_ring_full: u64,
    /// Frames dropped for being longer than a slot or the device's MTU
    /// allows, or shorter than an Ethernet header.
    pub tx_bad_length: u64,
    /// Slots the kernel refused as malformed.
    pub tx_wrong_format: u64,
    /// `sendto` kicks that failed (the slots stay queued for the next).
    pub tx_kick_errors: u64,
}

// --- the TPACKET_V3 receive block walker: pure code over bytes ----------

/// Parsing of TPACKET_V3 receive blocks, over plain bytes (the ring's, or
/// a test's), with every offset checked against the block.
pub mod v3 {
    /// Bytes of a block descriptor (`struct tpacket_block_desc`).
    pub const BLOCK_DESC_LEN: usize = 48;
    /// Offset of `block_status` in the block descriptor.
    pub const BLOCK_STATUS_OFFSET: usize = 8;
    /// Bytes of a frame header before its `sockaddr_ll`:
    /// `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`.
    pub const FRAME_HDR_LEN: usize = 48;
    /// Bytes of the `sockaddr_ll` after each frame header.
    pub const SLL_LEN: usize = 20;
    /// Offset of `tp_status` in a frame header (TX slots use it too).
    pub const STATUS_OFFSET: usize = 20;

    /// A malformed block: which frame (0-based) broke which rule.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum WalkError {
        /// The block descriptor's packet count, first offset or length.
        Block,
        /// A frame header runs past the block.
        Header(u32),
        /// A frame's data runs past the block or overlaps its header.
        Data(u32),
        /// A frame's `tp_next_offset` does not lead to another frame.
        NextOffset(u32),
    }

    /// One received frame, borrowed from its block.
    #[derive(Clone, Copy, Debug)]
    pub struct Frame<'a> {
        /// The captured bytes (`tp_snaplen` of them), from the MAC header.
        pub data: &'a [u8],
        /// Length on the wire (`tp_len`); more than `data.len()` when the
        /// kernel truncated the frame.
        pub wire_len: u32,
        /// `tp_status` bits (`TP_STATUS_*`).
        pub status: u32,
        /// `sll_pkttype` (`PACKET_HOST`, `PACKET_OUTGOING`, ...).
        pub pkttype: u8,
        /// `tp_vlan_tci` (valid with `TP_STATUS_VLAN_VALID`).
        pub vlan_tci: u16,
        /// `tp_vlan_tpid` (valid with `TP_STATUS_VLAN_TPID_VALID`).
        pub vlan_tpid: u16,
    }

    impl Frame<'_> {
        /// The VLAN tag the kernel took out of the frame, as (TPID, TCI).
        pub fn vlan(&self) -> Option<(u16, u16)> {
            if self.status & libc::TP_STATUS_VLAN_VALID == 0 {
                return None;
            }
            let tpid = if self.status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && self.vlan_tpid != 0 {
                self.vlan_tpid
            } else {
                0x8100
            };
            Some((tpid, self.vlan_tci))
        }

        /// Whether the kernel cut the frame short.
        pub fn truncated(&self) -> bool {
            (self.data.len() as u64) < self.wire_len as u64
        }
    }

    fn u16_at(b: &[u8], off: usize) -> u16 {
        u16::from_ne_bytes([b[off], b[off + 1]])
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
    }

    /// A position in a block: frames left and where the next one starts.
    /// `Copy`, so a caller can save it and step back.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Walker {
        remaining: u32,
        off: usize,
        index: u32,
        end: usize,
    }

    impl Walker {
        /// Starts at the first frame of `block` (a whole block, descriptor
        /// first, owned by user space).
        pub fn start(block: &[u8]) -> Result<Walker, WalkError> {
            if block.len() < BLOCK_DESC_LEN {
                return Err(WalkError::Block);
            }
            let num = u32_at(block, 12);
            let first = u32_at(block, 16) as usize;
            let blk_len = u32_at(block, 20) as usize;
            if num == 0 {
                return Ok(Walker { remaining: 0, off: 0, index: 0, end: 0 });
            }
            if blk_len > block.len() || first < BLOCK_DESC_LEN || first >= blk_len {
                return Err(WalkError::Block);
            }
            Ok(Walker { remaining: num, off: first, index: 0, end: blk_len })
        }

        /// A walker with nothing left (what a broken block becomes).
        pub fn finished() -> Walker {
            Walker { remaining: 0, off: 0, index: 0, end: 0 }
        }

        /// Frames not yet returned.
        pub fn remaining(&self) -> u32 {
            self.remaining
        }

        /// The next frame of `block` (the same block given to
        /// [`start`](Self::start)), or `None` at the end. After an error
        /// the walker is finished.
        pub fn next<'a>(&mut self, block: &'a [u8]) -> Result<Option<Frame<'a>>, WalkError> {
            if self.remaining == 0 {
                return Ok(None);
            }
            match self.parse(block) {
                Ok(f) => Ok(Some(f)),
                Err(e) => {
                    *self = Walker::finished();
                    Err(e)
                }
            }
        }

        fn parse<'a>(&mut self, block: &'a [u8]) -> Result<Frame<'a>, WalkError> {
            let (i, off, end) = (self.index, self.off, self.end.min(block.len()));
            if off.checked_add(FRAME_HDR_LEN + SLL_LEN).is_none_or(|e| e > end) {
                return Err(WalkError::Header(i));
            }
            let h = &block[off..end];
            let next = u32_at(h, 0) as usize;
            let snaplen = u32_at(h, 12) as usize;
            let wire_len = u32_at(h, 16);
            let status = u32_at(h, 20);
            let mac = u16_at(h, 24) as usize;
            let vlan_tci = u32_at(h, 32) as u16;
            let vlan_tpid = u16_at(h, 36);
            let pkttype = h[FRAME_HDR_LEN + 10];
            if mac < FRAME_HDR_LEN + SLL_LEN || mac.checked_add(snaplen).is_none_or(|e| e > h.len()) {
                return Err(WalkError::Data(i));
            }
            let data = &h[mac..mac + snaplen];
            self.remaining -= 1;
            self.index += 1;
            if self.remaining > 0 {
                if next < FRAME_HDR_LEN + SLL_LEN || next >= h.len() {
                    return Err(WalkError::NextOffset(i));
                }
                self.off += next;
            }
            Ok(Frame { data, wire_len, status, pkttype, vlan_tci, vlan_tpid })
        }
    }
}

// --- checksum completion: pure code over a frame --------------------------

/// Computes the TCP or UDP checksum of an Ethernet frame (VLAN tags
/// allowed) whose sender left it to offload (`CHECKSUM_PARTIAL`: the field
/// holds only the pseudo-header sum). IPv4 and IPv6 (with hop-by-hop,
/// routing and destination options headers); fragments and other
/// protocols are left alone. Returns whether it wrote a checksum.
pub fn complete_l4_checksum(frame: &mut [u8]) -> bool {
    use vswitch_wire::checksum::{fold, pseudo_header_v4, pseudo_header_v6, sum};
    let be16 = |b: &[u8], o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
    let mut off = 12;
    if frame.len() < off + 2 {
        return false;
    }
    let mut ethertype = be16(frame, off);
    for _ in 0..2 {
        if (ethertype == 0x8100 || ethertype == 0x88a8) && frame.len() >= off + 6 {
            off += 4;
            ethertype = be16(frame, off);
        }
    }
    let l3 = off + 2;
    let (proto, l4, l4_len, pseudo) = match ethertype {
        0x0800 => {
            let Some(ip) = frame.get(l3..l3 + 20) else { return false };
            let ihl = ((ip[0] & 0x0f) as usize) * 4;
            let total = be16(ip, 2) as usize;
            if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || be16(ip, 6) & 0x3fff != 0 {
                return false;
            }
            let src = std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            let l4_len = total - ihl;
            (ip[9], l3 + ihl, l4_len, pseudo_header_v4(&src, &dst, ip[9], l4_len as u32))
        }
        0x86dd => {
            let Some(ip) = frame.get(l3..l3 + 40) else { return false };
            if ip[0] >> 4 != 6 {
                return false;
            }
            let payload = be16(ip, 4) as usize;
            let mut next = ip[6];
            let mut at = l3 + 40;
            let end = at + payload;
            // Hop-by-hop, routing and destination options carry on; a
            // fragment header or anything else ends the walk.
            while matches!(next, 0 | 43 | 60) {
                let Some(h) = frame.get(at..at + 2) else { return false };
                next = h[0];
                at += (h[1] as usize + 1) * 8;
            }
            if at > end {
                return false;
            }
            let mut src = [0u8; 16];
            src.copy_from_slice(&ip[8..24]);
            let mut dst = [0u8; 16];
            dst.copy_from_slice(&ip[24..40]);
            let l4_len = end - at;
            let pseudo = pseudo_header_v6(&src.into(), &dst.into(), next, l4_len as u32);
            (next, at, l4_len, pseudo)
        }
        _ => return false,
    };
    let field = match proto {
        6 if l4_len >= 20 => 16,
        17 if l4_len >= 8 => 6,
        _ => return false,
    };
    let Some(seg) = frame.get_mut(l4..l4 + l4_len) else { return false };
    seg[field..field + 2].copy_from_slice(&[0, 0]);
    let mut c = !fold(pseudo + sum(seg));
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    seg[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

// --- the socket and its rings ---------------------------------------------

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// Ring geometry worked out from the configuration.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    rx_block_size: usize,
    rx_blocks: usize,
    rx_frame_size: usize,
    tx_block_size: usize,
    tx_blocks: usize,
    tx_slot: usize,
    tx_slots_per_block: usize,
}

impl Geometry {
    fn new(c: &AfPacketConfig) -> Result<Geometry, String> {
        let page = page_size();
        let bs = c.block_size as usize;
        if bs == 0 || !bs.is_multiple_of(page) {
            return Err(format!("block_size {bs} is not a positive multiple of the page size {page}"));
        }
        if c.block_count == 0 {
            return Err("block_count must be at least 1".into());
        }
        let slot = c.tx_frame_size as usize;
        if slot < v3::FRAME_HDR_LEN + 64 || !slot.is_multiple_of(16) || slot > 1 << 20 {
            return Err(format!("tx_frame_size {slot} must be a multiple of 16 in 112..=1048576"));
        }
        if c.tx_frames == 0 {
            return Err("tx_frames must be at least 1".into());
        }
        let tx_block_size = slot.next_multiple_of(page);
        let per_block = tx_block_size / slot;
        let tx_blocks = (c.tx_frames as usize).div_ceil(per_block);
        Ok(Geometry {
            rx_block_size: bs,
            rx_blocks: c.block_count as usize,
            rx_frame_size: bs.min(2048),
            tx_block_size,
            tx_blocks,
            tx_slot: slot,
            tx_slots_per_block: per_block,
        })
    }

    fn rx_len(&self) -> usize {
        self.rx_block_size * self.rx_blocks
    }

    fn tx_len(&self) -> usize {
        self.tx_block_size * self.tx_blocks
    }

    fn tx_slots(&self) -> usize {
        self.tx_slots_per_block * self.tx_blocks
    }

    /// Offset of TX slot `i` from the start of the TX ring.
    fn tx_slot_offset(&self, i: usize) -> usize {
        (i / self.tx_slots_per_block) * self.tx_block_size + (i % self.tx_slots_per_block) * self.tx_slot
    }
}

/// The socket and the mapping of its two rings (RX first, then TX).
/// Shared by the receive and transmit halves, which touch disjoint parts:
/// RX blocks only from the receive half, TX slots only from the transmit
/// half; the kernel serialises the socket calls each half makes.
struct Ring {
    map: NonNull<u8>,
    map_len: usize,
    geo: Geometry,
    fd: OwnedFd,
}

// SAFETY: the mapping lives as long as the `Ring`; the halves holding it
// access disjoint parts of it (see the type's docs), each half being owned
// by one thread at a time (they are `Send`, not `Sync`).
unsafe impl Send for Ring {}
// SAFETY: as above; `&Ring` only exposes the fd and raw pointers whose use
// is confined by the halves.
unsafe impl Sync for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `map`/`map_len` are exactly what mmap returned, and no
        // half is left to use them (they hold the `Arc` being dropped).
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
        // `fd` closes after: the socket leaves its fanout group and drops
        // its promiscuous membership.
    }
}

impl Ring {
    /// The block status word of RX block `i`.
    fn rx_status(&self, i: usize) -> &AtomicU32 {
        debug_assert!(i < self.geo.rx_blocks);
        // SAFETY: block `i` starts at `i * block_size` inside the mapping;
        // `block_status` is 4-byte aligned (blocks are page aligned, the
        // field is at offset 8) and shared with the kernel, so it is only
        // accessed atomically.
        unsafe {
            AtomicU32::from_ptr(self.map.as_ptr().add(i * self.geo.rx_block_size + v3::BLOCK_STATUS_OFFSET).cast())
        }
    }

    /// The bytes of RX block `i`.
    ///
    /// # Safety
    /// The block must belong to user space (its status showed
    /// `TP_STATUS_USER` through an acquire load) for as long as the slice
    /// lives: the kernel does not write it until its status is set back.
    unsafe fn rx_block(&self, i: usize) -> &[u8] {
        debug_assert!(i < self.geo.rx_blocks);
        // SAFETY: in bounds of the mapping; not written by anyone while
        // user space owns it (the caller's contract).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(i * self.geo.rx_block_size), self.geo.rx_block_size) }
    }

    fn tx_slot_ptr(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.geo.tx_slots());
        // SAFETY: the TX ring follows the RX ring in the mapping and slot
        // `i` lies inside it (`tx_slot_offset` < tx_len).
        unsafe { self.map.as_ptr().add(self.geo.rx_len() + self.geo.tx_slot_offset(i)) }
    }

    /// The status word of TX slot `i`.
    fn tx_status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: slots are 16-byte aligned (their size is a multiple of
        // 16 inside page-aligned blocks); `tp_status` at offset 20 is
        // 4-byte aligned and shared with the kernel, so accessed atomically.
        unsafe { AtomicU32::from_ptr(self.tx_slot_ptr(i).add(v3::STATUS_OFFSET).cast()) }
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the size passed, which the
    // kernel only reads.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
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

fn getsockopt<T: Copy>(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, value: &mut T) -> io::Result<()> {
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` points to a live, writable `T` of `len` bytes, and
    // the options read here are plain integers/structs of integers.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (value as *mut T).cast(), &mut len) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens the socket, sets up and maps both rings and binds; fanout and
/// promiscuity are done by the caller. On error everything made so far
/// is closed/unmapped by the values' destructors.
fn open_ring(cfg: &AfPacketConfig, dev: &NetDev) -> io::Result<Ring> {
    let name = cfg.ifname.as_str();
    let fail = |step: &str, e: io::Error| context("af_packet", name, step, e);
    let geo = Geometry::new(cfg)
        .map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, format!("af_packet {name}: {m}")))?;
    // Protocol 0: receives nothing until bound, after the rings are ready.
    // SAFETY: plain socket(2); the result is checked.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    if raw < 0 {
        let e = io::Error::last_os_error();
        let step = if e.raw_os_error() == Some(libc::EPERM) { "socket (needs CAP_NET_RAW)" } else { "socket" };
        return Err(fail(step, e));
    }
    // SAFETY: `raw` is a fresh descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
    setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version).map_err(|e| fail("set TPACKET_V3", e))?;
    setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_LOSS, &1 as &libc::c_int).map_err(|e| fail("set PACKET_LOSS", e))?;
    if cfg.qdisc_bypass {
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &1 as &libc::c_int)
            .map_err(|e| fail("set PACKET_QDISC_BYPASS", e))?;
    }
    let rx = libc::tpacket_req3 {
        tp_block_size: geo.rx_block_size as u32,
        tp_block_nr: geo.rx_blocks as u32,
        tp_frame_size: geo.rx_frame_size as u32,
        tp_frame_nr: (geo.rx_block_size / geo.rx_frame_size * geo.rx_blocks) as u32,
        tp_retire_blk_tov: cfg.block_timeout_ms,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    };
    setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &rx)
        .map_err(|e| fail(&format!("set up RX ring ({} blocks of {} bytes)", geo.rx_blocks, geo.rx_block_size), e))?;
    let tx = libc::tpacket_req3 {
        tp_block_size: geo.tx_block_size as u32,
        tp_block_nr: geo.tx_blocks as u32,
        tp_frame_size: geo.tx_slot as u32,
        tp_frame_nr: geo.tx_slots() as u32,
        tp_retire_blk_tov: 0,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    };
    setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_TX_RING, &tx)
        .map_err(|e| fail(&format!("set up TX ring ({} slots of {} bytes)", geo.tx_slots(), geo.tx_slot), e))?;
    let map_len = geo.rx_len() + geo.tx_len();
    // SAFETY: maps the socket's rings (kernel memory sized by the two
    // requests above) fresh; the result is checked.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return Err(fail(&format!("map rings ({map_len} bytes)"), io::Error::last_os_error()));
    }
    let ring = Ring { map: NonNull::new(map.cast()).expect("mmap returned null"), map_len, geo, fd };
    // SAFETY: all-zero is a valid sockaddr_ll (integers and a byte array).
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = dev.ifindex() as libc::c_int;
    // SAFETY: `sll` is a live sockaddr_ll of the length passed.
    let r = unsafe {
        libc::bind(
            ring.fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(fail(&format!("bind to index {}", dev.ifindex()), io::Error::last_os_error()));
    }
    setsockopt(&ring.fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1 as &libc::c_int)
        .map_err(|e| fail("set PACKET_IGNORE_OUTGOING", e))?;
    Ok(ring)
}

// --- the queue ---------------------------------------------------------------

/// The receive half of an AF_PACKET queue.
pub struct AfPacketRx {
    ring: Arc<Ring>,
    dev: Arc<NetDev>,
    port: u32,
    /// The RX block to read next.
    block: usize,
    /// Where reading stopped inside `block`, when it is ours.
    walker: Option<v3::Walker>,
    stats: AfPacketStats,
    /// PACKET_STATISTICS resets on read: the sums so far.
    kernel: Cell<(u64, u64, u64)>,
}

/// The transmit half of an AF_PACKET queue.
pub struct AfPacketTx {
    ring: Arc<Ring>,
    dev: Arc<NetDev>,
    /// The TX slot to fill next.
    head: usize,
    /// The device's MTU as last read.
    mtu: u32,
    /// A kick failed: kick again next burst.
    kick_pending: bool,
    stats: AfPacketStats,
}

/// One socket on a device: a receive and a transmit half (see the module
/// docs). Use it whole as both queues, or [`split`](Self::split) it to
/// hand the halves to a worker separately.
pub struct AfPacketQueue {
    rx: AfPacketRx,
    tx: AfPacketTx,
    fanout: Option<u16>,
}

impl AfPacketQueue {
    /// Opens one socket on `config.ifname`, receiving as port `port`.
    /// Joins the fanout group in `config.fanout`, if any.
    pub fn open(config: &AfPacketConfig, port: u32) -> io::Result<AfPacketQueue> {
        let name = config.ifname.as_str();
        if name.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "af_packet: no device name given"));
        }
        let dev = NetDev::open(name).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                io::Error::new(io::ErrorKind::NotFound, format!("af_packet {name}: no such device"))
            } else {
                context("af_packet", name, "open device", e)
            }
        })?;
        let ring = open_ring(config, &dev)?;
        let fail = |step: &str, e: io::Error| context("af_packet", name, step, e);
        if config.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: dev.ifindex() as libc::c_int,
                mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setsockopt(&ring.fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
                .map_err(|e| fail("enable promiscuous mode", e))?;
        }
        let fanout = match config.fanout {
            None => None,
            Some(f) => Some(join_fanout(&ring.fd, f).map_err(|e| {
                let group = f.group.map_or("new group".to_string(), |g| format!("group {g}"));
                fail(&format!("join fanout {group} ({:?})", f.mode), e)
            })?),
        };
        let mtu = dev.mtu()?;
        let ring = Arc::new(ring);
        let dev = Arc::new(dev);
        Ok(AfPacketQueue {
            rx: AfPacketRx {
                ring: ring.clone(),
                dev: dev.clone(),
                port,
                block: 0,
                walker: None,
                stats: AfPacketStats::default(),
                kernel: Cell::new((0, 0, 0)),
            },
            tx: AfPacketTx { ring, dev, head: 0, mtu, kick_pending: false, stats: AfPacketStats::default() },
            fanout,
        })
    }

    /// Opens `count` sockets on `config.ifname`, all receiving as port
    /// `port`: one socket alone when `count` is 1 and no fanout is
    /// configured, otherwise a fanout group (`config.fanout`, or a new
    /// hash group with a kernel-chosen id). On error the sockets already
    /// opened are closed.
    pub fn open_queues(config: &AfPacketConfig, port: u32, count: usize) -> io::Result<Vec<AfPacketQueue>> {
        if count == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("af_packet {}: queue count must be at least 1", config.ifname),
            ));
        }
        let mut config = config.clone();
        if count > 1 && config.fanout.is_none() {
            config.fanout = Some(Fanout { group: None, mode: FanoutMode::Hash });
        }
        let mut queues = Vec::with_capacity(count);
        for _ in 0..count {
            let q = AfPacketQueue::open(&config, port)?;
            if let (Some(f), Some(id)) = (config.fanout.as_mut(), q.fanout) {
                f.group = Some(id);
            }
            queues.push(q);
        }
        Ok(queues)
    }

    /// The fanout group this socket is in.
    pub fn fanout_group(&self) -> Option<u16> {
        self.fanout
    }

    /// The device.
    pub fn netdev(&self) -> &NetDev {
        &self.rx.dev
    }

    /// The device's MTU, read from the kernel.
    pub fn mtu(&self) -> io::Result<u32> {
        self.rx.dev.mtu()
    }

    /// The device's link state, read from the kernel.
    pub fn link(&self) -> io::Result<LinkState> {
        self.rx.dev.link()
    }

    /// The device's MAC address, read from the kernel.
    pub fn mac(&self) -> io::Result<[u8; 6]> {
        self.rx.dev.mac()
    }

    /// Counters of both halves (reads the kernel's statistics).
    pub fn counters(&self) -> AfPacketStats {
        let rx = self.rx.counters();
        let tx = self.tx.counters();
        AfPacketStats {
            tx_packets: tx.tx_packets,
            tx_bytes: tx.tx_bytes,
            tx_ring_full: tx.tx_ring_full,
            tx_bad_length: tx.tx_bad_length,
            tx_wrong_format: tx.tx_wrong_format,
            tx_kick_errors: tx.tx_kick_errors,
            ..rx
        }
    }

    /// The two halves, to hand to a worker as its receive queue and its
    /// transmit queue for this port.
    pub fn split(self) -> (AfPacketRx, AfPacketTx) {
        (self.rx, self.tx)
    }
}

fn join_fanout(fd: &OwnedFd, f: Fanout) -> io::Result<u16> {
    let flags = libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
    let arg: u32 = match f.group {
        Some(id) => id as u32 | ((f.mode.raw() | flags) << 16),
        None => (f.mode.raw() | flags | libc::PACKET_FANOUT_FLAG_UNIQUEID) << 16,
    };
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)?;
    let mut got: u32 = 0;
    getsockopt(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_FANOUT, &mut got)?;
    Ok(got as u16)
}

impl AfPacketRx {
    /// Counters of this half (reads the kernel's statistics).
    pub fn counters(&self) -> AfPacketStats {
        let mut st = libc::tpacket_stats_v3 { tp_packets: 0, tp_drops: 0, tp_freeze_q_cnt: 0 };
        let (mut p, mut d, mut f) = self.kernel.get();
        if getsockopt(self.ring.fd.as_fd(), libc::SOL_PACKET, libc::PACKET_STATISTICS, &mut st).is_ok() {
            p += st.tp_packets as u64;
            d += st.tp_drops as u64;
            f += st.tp_freeze_q_cnt as u64;
            self.kernel.set((p, d, f));
        }
        AfPacketStats { kernel_packets: p, kernel_drops: d, kernel_freezes: f, ..self.stats }
    }

    /// The device.
    pub fn netdev(&self) -> &NetDev {
        &self.dev
    }

    /// Hands RX block `self.block` back to the kernel and moves on.
    fn release_block(&mut self) {
        self.ring.rx_status(self.block).store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.walker = None;
        self.block = if self.block + 1 == self.ring.geo.rx_blocks { 0 } else { self.block + 1 };
    }
}

impl RxQueue for AfPacketRx {
    fn port(&self) -> u32 {
        self.port
    }

    fn rx_burst(&mut self, bufs: &mut Buffers, out: &mut Vec<PacketId>, max: usize) -> usize {
        let cap = bufs.buffer_size() - HEADROOM;
        let ring = Arc::clone(&self.ring);
        let mut n = 0;
        while n < max {
            let mut walker = match self.walker {
                Some(w) => w,
                None => {
                    if ring.rx_status(self.block).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                        break;
                    }
                    // SAFETY: the block's status said user space owns it.
                    match v3::Walker::start(unsafe { ring.rx_block(self.block) }) {
                        Ok(w) => w,
                        Err(_) => {
                            self.stats.rx_ring_errors += 1;
                            self.release_block();
                            continue;
                        }
                    }
                }
            };
            // SAFETY: the block is ours: we saw TP_STATUS_USER and have not
            // handed it back (that happens below, after the last use of
            // `block`).
            let block = unsafe { ring.rx_block(self.block) };
            let mut pool_empty = false;
            while n < max {
                let before = walker;
                let frame = match walker.next(block) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(_) => {
                        self.stats.rx_ring_errors += 1;
                        break;
                    }
                };
                if frame.pkttype == libc::PACKET_OUTGOING {
                    self.stats.rx_outgoing += 1;
                    continue;
                }
                if frame.truncated() {
                    self.stats.rx_truncated += 1;
                    continue;
                }
                let vlan = frame.vlan();
                let len = frame.data.len() + if vlan.is_some() { 4 } else { 0 };
                if len > cap || (vlan.is_some() && frame.data.len() < 12) {
                    self.stats.rx_oversize += 1;
                    continue;
                }
                let Some(p) = bufs.alloc() else {
                    walker = before;
                    self.stats.rx_no_buffer += 1;
                    pool_empty = true;
                    break;
                };
                let dst = &mut bufs.buffer_mut(p)[HEADROOM..HEADROOM + len];
                match vlan {
                    None => dst.copy_from_slice(frame.data),
                    Some((tpid, tci)) => {
                        dst[..12].copy_from_slice(&frame.data[..12]);
                        dst[12..14].copy_from_slice(&tpid.to_be_bytes());
                        dst[14..16].copy_from_slice(&tci.to_be_bytes());
                        dst[16..].copy_from_slice(&frame.data[12..]);
                    }
                }
                if frame.status & libc::TP_STATUS_CSUMNOTREADY != 0 && complete_l4_checksum(dst) {
                    self.stats.rx_checksums += 1;
                }
                let m = bufs.meta_mut(p);
                m.current = HEADROOM as u16;
                m.len = len as u16;
                m.rx_if = self.port;
                self.stats.rx_bytes += len as u64;
                out.push(p);
                n += 1;
            }
            if walker.remaining() == 0 {
                self.release_block();
            } else {
                self.walker = Some(walker);
            }
            if pool_empty {
                break;
            }
        }
        self.stats.rx_packets += n as u64;
        n
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.ring.fd.as_fd())
    }

    fn stats(&self) -> QueueStats {
        let s = self.counters();
        QueueStats {
            packets: s.rx_packets,
            bytes: s.rx_bytes,
            drops: s.rx_truncated + s.rx_oversize + s.rx_ring_errors + s.kernel_drops,
        }
    }
}

impl AfPacketTx {
    /// Counters of this half.
    pub fn counters(&self) -> AfPacketStats {
        self.stats
    }

    /// The device.
    pub fn netdev(&self) -> &NetDev {
        &self.dev
    }

    /// Longest frame the kernel accepts from a packet socket: MTU plus
    /// the Ethernet header, plus a VLAN tag when the frame carries one.
    fn max_len(&self, frame: &[u8]) -> usize {
        let tagged = frame.len() >= 14 && matches!(u16::from_be_bytes([frame[12], frame[13]]), 0x8100 | 0x88a8);
        self.mtu as usize + 14 + if tagged { 4 } else { 0 }
    }

    /// Asks the kernel to send every slot marked for sending.
    fn kick(&mut self) {
        // SAFETY: a zero-length send with no buffer and no address only
        // tells the kernel to walk the TX ring.
        let r = unsafe {
            libc::sendto(self.ring.fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0)
        };
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            self.stats.tx_kick_errors += 1;
            self.kick_pending = true;
        } else {
            self.kick_pending = r < 0;
        }
    }
}

impl TxQueue for AfPacketTx {
    fn tx_burst(&mut self, bufs: &mut Buffers, packets: &mut Vec<PacketId>) {
        let ring = Arc::clone(&self.ring);
        let max_data = ring.geo.tx_slot - v3::FRAME_HDR_LEN;
        let slots = ring.geo.tx_slots();
        let mut mtu_refreshed = false;
        let mut queued = 0;
        for &p in packets.iter() {
            let data = bufs.data(p);
            if data.len() > self.max_len(data) && !mtu_refreshed {
                // The MTU may have grown since it was read: look once per burst.
                mtu_refreshed = true;
                if let Ok(m) = self.dev.mtu() {
                    self.mtu = m;
                }
            }
            if data.len() < 14 || data.len() > max_data || data.len() > self.max_len(data) {
                self.stats.tx_bad_length += 1;
                continue;
            }
            let status = ring.tx_status(self.head);
            match status.load(Ordering::Acquire) {
                libc::TP_STATUS_AVAILABLE => {}
                libc::TP_STATUS_WRONG_FORMAT => self.stats.tx_wrong_format += 1,
                _ => {
                    self.stats.tx_ring_full += 1;
                    continue;
                }
            }
            let slot = ring.tx_slot_ptr(self.head);
            // SAFETY: the slot is available, so the kernel does not touch it
            // until its status says SEND_REQUEST; header and data lie inside
            // the slot (`data.len() <= tx_slot - FRAME_HDR_LEN`). The header
            // words are written through raw pointers, not references, since
            // the status word in between is shared with the kernel.
            unsafe {
                let len = data.len() as u32;
                slot.cast::<u32>().write(0); // tp_next_offset: fixed-size slots
                slot.add(12).cast::<u32>().write(len); // tp_snaplen
                slot.add(16).cast::<u32>().write(len); // tp_len
                std::ptr::copy_nonoverlapping(data.as_ptr(), slot.add(v3::FRAME_HDR_LEN), data.len());
            }
            status.store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
            self.head = if self.head + 1 == slots { 0 } else { self.head + 1 };
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += data.len() as u64;
            queued += 1;
        }
        if queued > 0 || self.kick_pending {
            self.kick();
        }
        bufs.free_bulk(packets);
        packets.clear();
    }

    fn stats(&self) -> QueueStats {
        let s = &self.stats;
        QueueStats {
            packets: s.tx_packets,
            bytes: s.tx_bytes,
            drops: s.tx_ring_full + s.tx_bad_length + s.tx_wrong_format,
        }
    }
}

impl RxQueue for AfPacketQueue {
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

impl TxQueue for AfPacketQueue {
    fn tx_burst(&mut self, bufs: &mut Buffers, packets: &mut Vec<PacketId>) {
        self.tx.tx_burst(bufs, packets)
    }

    fn stats(&self) -> QueueStats {
        TxQueue::stats(&self.tx)
    }
}

#[cfg(test)]
mod tests {
    use super::v3::*;
    use super::*;

    const _: () = assert!(std::mem::size_of::<libc::tpacket_block_desc>() == BLOCK_DESC_LEN);
    const _: () = assert!(std::mem::size_of::<libc::tpacket3_hdr>() == FRAME_HDR_LEN);
    const _: () = assert!(std::mem::size_of::<libc::sockaddr_ll>() == SLL_LEN);
    const _: () = assert!(std::mem::offset_of!(libc::tpacket3_hdr, tp_status) == STATUS_OFFSET);

    /// One frame to lay into a synthetic block.
    struct F<'a> {
        data: &'a [u8],
        wire_len: u32,
        status: u32,
        pkttype: u8,
        tci: u16,
        tpid: u16,
    }

    fn f(data: &[u8]) -> F<'_> {
        F { data, wire_len: data.len() as u32, status: libc::TP_STATUS_USER, pkttype: 0, tci: 0, tpid: 0 }
    }

    /// Lays frames out as the kernel does: descriptor, then each frame
    /// header + sockaddr_ll + padding + data, 8-byte aligned; the last
    /// frame's next offset is 0.
    fn block(frames: &[F<'_>], size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        let put32 = |b: &mut Vec<u8>, o: usize, v: u32| b[o..o + 4].copy_from_slice(&v.to_ne_bytes());
        let put16 = |b: &mut Vec<u8>, o: usize, v: u16| b[o..o + 2].copy_from_slice(&v.to_ne_bytes());
        put32(&mut b, BLOCK_STATUS_OFFSET, libc::TP_STATUS_USER);
        put32(&mut b, 12, frames.len() as u32);
        put32(&mut b, 16, BLOCK_DESC_LEN as u32);
        let mut off = BLOCK_DESC_LEN;
        let mac = 80usize; // TPACKET_ALIGN(68) rounded like the kernel's macoff
        for (i, fr) in frames.iter().enumerate() {
            let total = (mac + fr.data.len()).next_multiple_of(8);
            let next = if i + 1 == frames.len() { 0 } else { total as u32 };
            put32(&mut b, off, next);
            put32(&mut b, off + 12, fr.data.len() as u32);
            put32(&mut b, off + 16, fr.wire_len);
            put32(&mut b, off + 20, fr.status);
            put16(&mut b, off + 24, mac as u16);
            put16(&mut b, off + 26, (mac + 14) as u16);
            put32(&mut b, off + 32, fr.tci as u32);
            put16(&mut b, off + 36, fr.tpid);
            b[off + FRAME_HDR_LEN + 10] = fr.pkttype;
            b[off + mac..off + mac + fr.data.len()].copy_from_slice(fr.data);
            off += total;
        }
        put32(&mut b, 20, off as u32);
        b
    }

    #[test]
    fn walker_yields_every_frame_with_its_fields() {
        let tagged = F { status: libc::TP_STATUS_USER | libc::TP_STATUS_VLAN_VALID, tci: 100, ..f(&[2; 60]) };
        let qinq = F {
            status: libc::TP_STATUS_USER | libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID,
            tci: 7,
            tpid: 0x88a8,
            ..f(&[3; 61])
        };
        let out = F { pkttype: libc::PACKET_OUTGOING, ..f(&[4; 64]) };
        let cut = F { wire_len: 9000, ..f(&[5; 100]) };
        let b = block(&[f(&[1; 42]), tagged, qinq, out, cut], 4096);
        let mut w = Walker::start(&b).unwrap();
        assert_eq!(w.remaining(), 5);
        let a = w.next(&b).unwrap().unwrap();
        assert_eq!((a.data, a.vlan(), a.truncated()), (&[1u8; 42][..], None, false));
        let t = w.next(&b).unwrap().unwrap();
        assert_eq!((t.data.len(), t.vlan()), (60, Some((0x8100, 100))));
        let q = w.next(&b).unwrap().unwrap();
        assert_eq!((q.data.len(), q.vlan()), (61, Some((0x88a8, 7))));
        let o = w.next(&b).unwrap().unwrap();
        assert_eq!(o.pkttype, libc::PACKET_OUTGOING);
        let c = w.next(&b).unwrap().unwrap();
        assert!(c.truncated());
        assert_eq!(c.wire_len, 9000);
        assert_eq!(w.remaining(), 0);
        assert!(w.next(&b).unwrap().is_none());
    }

    #[test]
    fn walker_resumes_from_a_saved_position() {
        let frames: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 50 + i as usize]).collect();
        let fs: Vec<F<'_>> = frames.iter().map(|d| f(d)).collect();
        let b = block(&fs, 8192);
        let mut w = Walker::start(&b).unwrap();
        for i in 0..4u8 {
            assert_eq!(w.next(&b).unwrap().unwrap().data[0], i);
        }
        let saved = w;
        assert_eq!(w.next(&b).unwrap().unwrap().data[0], 4);
        w = saved; // e.g. no buffer for frame 4: step back
        let rest: Vec<u8> = std::iter::from_fn(|| w.next(&b).unwrap()).map(|fr| fr.data[0]).collect();
        assert_eq!(rest, (4..10).collect::<Vec<u8>>());
    }

    #[test]
    fn walker_refuses_offsets_outside_the_block() {
        let good = block(&[f(&[1; 60]), f(&[2; 60])], 4096);
        // Empty block.
        let mut empty = good.clone();
        empty[12..16].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(Walker::start(&empty).unwrap().remaining(), 0);
        // First offset inside the descriptor.
        let mut b = good.clone();
        b[16..20].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(Walker::start(&b), Err(WalkError::Block));
        // Block length beyond the block.
        let mut b = good.clone();
        b[20..24].copy_from_slice(&5000u32.to_ne_bytes());
        assert_eq!(Walker::start(&b), Err(WalkError::Block));
        // Snap length running past the block.
        let mut b = good.clone();
        b[BLOCK_DESC_LEN + 12..BLOCK_DESC_LEN + 16].copy_from_slice(&4000u32.to_ne_bytes());
        let mut w = Walker::start(&b).unwrap();
        assert_eq!(w.next(&b).unwrap_err(), WalkError::Data(0));
        assert!(w.next(&b).unwrap().is_none(), "finished after an error");
        // MAC offset inside the frame header.
        let mut b = good.clone();
        b[BLOCK_DESC_LEN + 24..BLOCK_DESC_LEN + 26].copy_from_slice(&10u16.to_ne_bytes());
        assert_eq!(Walker::start(&b).unwrap().next(&b).unwrap_err(), WalkError::Data(0));
        // Next offset zero with frames left, or past the end.
        for next in [0u32, 100_000] {
            let mut b = good.clone();
            b[BLOCK_DESC_LEN..BLOCK_DESC_LEN + 4].copy_from_slice(&next.to_ne_bytes());
            let mut w = Walker::start(&b).unwrap();
            assert_eq!(w.next(&b).unwrap_err(), WalkError::NextOffset(0));
        }
        // More frames claimed than there are: the last real one has no
        // next offset.
        let mut b = good.clone();
        b[12..16].copy_from_slice(&3u32.to_ne_bytes());
        let mut w = Walker::start(&b).unwrap();
        w.next(&b).unwrap().unwrap();
        assert_eq!(w.next(&b).unwrap_err(), WalkError::NextOffset(1));
        // A block length that cuts the second frame's header.
        let second = BLOCK_DESC_LEN + (80usize + 60).next_multiple_of(8);
        let mut b = good.clone();
        b[20..24].copy_from_slice(&(second as u32 + 30).to_ne_bytes());
        let mut w = Walker::start(&b).unwrap();
        w.next(&b).unwrap().unwrap();
        assert_eq!(w.next(&b).unwrap_err(), WalkError::Header(1));
        // A block shorter than a descriptor.
        assert_eq!(Walker::start(&good[..20]), Err(WalkError::Block));
    }

    fn ipv4_udp(payload: &[u8], vlan: bool) -> Vec<u8> {
        let mut f = vec![0xaa; 12];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let total = 20 + 8 + payload.len();
        let mut ip =
            vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let c = vswitch_wire::checksum::checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        let ulen = 8 + payload.len();
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, (ulen >> 8) as u8, ulen as u8, 0x12, 0x34]);
        f.extend_from_slice(payload);
        f
    }

    /// Verifies a frame's L4 checksum from scratch (sum over pseudo header
    /// and segment including the checksum must be 0xffff).
    fn l4_ok_v4(frame: &[u8], l3: usize) -> bool {
        use vswitch_wire::checksum::{fold, pseudo_header_v4, sum};
        let ip = &frame[l3..];
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        let src = std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let seg = &ip[20..total];
        fold(pseudo_header_v4(&src, &dst, ip[9], seg.len() as u32) + sum(seg)) == 0xffff
    }

    #[test]
    fn checksum_completion_ipv4_udp_tcp_and_vlan() {
        for (vlan, odd) in [(false, false), (true, false), (false, true)] {
            let payload: Vec<u8> = (0..if odd { 33 } else { 32 }).collect();
            let mut fr = ipv4_udp(&payload, vlan);
            let l3 = if vlan { 18 } else { 14 };
            assert!(!l4_ok_v4(&fr, l3));
            assert!(complete_l4_checksum(&mut fr));
            assert!(l4_ok_v4(&fr, l3), "vlan {vlan} odd {odd}");
        }
        // TCP: same frame with protocol 6 and a 20-byte header.
        let mut fr = ipv4_udp(&[0; 20], false);
        fr[14 + 9] = 6;
        let c = vswitch_wire::checksum::checksum(&{
            let mut h = fr[14..34].to_vec();
            h[10] = 0;
            h[11] = 0;
            h
        });
        fr[24..26].copy_from_slice(&c.to_be_bytes());
        fr[34 + 12] = 0x50; // data offset 5
        assert!(complete_l4_checksum(&mut fr));
        assert!(l4_ok_v4(&fr, 14));
        // Fragments and non-IP frames are left alone.
        let mut frag = ipv4_udp(&[1; 8], false);
        frag[14 + 6] = 0x20; // more fragments
        let before = frag.clone();
        assert!(!complete_l4_checksum(&mut frag));
        assert_eq!(frag, before);
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!complete_l4_checksum(&mut arp));
        // Truncated IPv4 total length: refused, nothing written.
        let mut short = ipv4_udp(&[1; 8], false);
        short[14 + 2..14 + 4].copy_from_slice(&200u16.to_be_bytes());
        assert!(!complete_l4_checksum(&mut short));
    }

    #[test]
    fn checksum_completion_ipv6_udp_past_a_hop_by_hop_header() {
        use vswitch_wire::checksum::{fold, pseudo_header_v6, sum};
        let mut fr = vec![0xbb; 12];
        fr.extend_from_slice(&[0x86, 0xdd]);
        let udp_len = 8 + 11;
        let payload_len = 8 + udp_len; // hop-by-hop (8) + UDP
        let mut ip = vec![0x60, 0, 0, 0, 0, payload_len as u8, 0, 64];
        let src: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        fr.extend_from_slice(&ip);
        fr.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop: next UDP, PadN
        fr.extend_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0, udp_len as u8, 0xde, 0xad]);
        fr.extend_from_slice(b"hello world");
        assert!(complete_l4_checksum(&mut fr));
        let seg = &fr[14 + 40 + 8..];
        assert_eq!(fold(pseudo_header_v6(&src.into(), &dst.into(), 17, udp_len as u32) + sum(seg)), 0xffff);
    }

    #[test]
    fn geometry_checks_and_slot_layout() {
        let page = page_size();
        let g = Geometry::new(&AfPacketConfig::device("x")).unwrap();
        assert_eq!(g.rx_len(), (1 << 17) * 32);
        assert!(g.tx_slots() >= 512);
        assert_eq!(g.tx_slot_offset(0), 0);
        assert_eq!(g.tx_slot_offset(g.tx_slots_per_block), g.tx_block_size);
        assert!(g.tx_slot_offset(g.tx_slots() - 1) + g.tx_slot <= g.tx_len());
        let bad = |c: AfPacketConfig| Geometry::new(&c).unwrap_err();
        assert!(
            bad(AfPacketConfig { block_size: page as u32 + 1, ..AfPacketConfig::device("x") }).contains("block_size")
        );
        assert!(bad(AfPacketConfig { block_count: 0, ..AfPacketConfig::device("x") }).contains("block_count"));
        assert!(
            bad(AfPacketConfig { tx_frame_size: 2000 + 8, ..AfPacketConfig::device("x") }).contains("tx_frame_size")
        );
        assert!(bad(AfPacketConfig { tx_frames: 0, ..AfPacketConfig::device("x") }).contains("tx_frames"));
        // A slot size that does not divide the page: slots never straddle blocks.
        let g = Geometry::new(&AfPacketConfig { tx_frame_size: 1504, tx_frames: 10, ..AfPacketConfig::device("x") })
            .unwrap();
        for i in 0..g.tx_slots() {
            let off = g.tx_slot_offset(i);
            assert_eq!(off / g.tx_block_size, (off + g.tx_slot - 1) / g.tx_block_size, "slot {i}");
        }
    }
}
