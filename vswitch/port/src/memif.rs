//! memif ports: the queues of a [`vswitch_memif::Interface`] as vswitch's
//! [`RxQueue`] / [`TxQueue`].
//!
//! The memif crate does the protocol, the control thread and the ring
//! discipline; this module only moves frames between the rings and pool
//! buffers:
//!
//! * **Receive**: each frame is copied by [`RxFrame::copy_to`] straight
//!   from shared memory into a pool buffer at `HEADROOM` (all segments of
//!   a chained frame). A frame longer than a buffer holds is dropped
//!   (`rx_too_long`); an empty pool ends the burst and leaves the frame in
//!   the ring (`rx_no_buffer`), to be taken at the next poll.
//! * **Transmit**: the packets' bytes are copied into the ring in one
//!   `tx_burst` (chained over several descriptors when longer than the
//!   peer's buffers); what does not fit (ring full) or cannot go (link
//!   down) is freed and counted (`tx_dropped`); what the memif layer
//!   refuses for its length is its `bad_length`. Frames sent are counted
//!   by the memif layer (`packets`, `bytes`).
//! * **Interrupt mode**: [`RxQueue::wait_fd`] is the memif queue's wait
//!   descriptor, which stays the same across reconnects. Whether the peer
//!   signals at all is the interface's receive mode
//!   ([`vswitch_memif::RxMode`]), chosen when it is added.
//!
//! * **IP mode** (`Mode::Ip`: the rings carry bare IPv4/IPv6 packets):
//!   the graph still sees Ethernet. On receive the packet is copied at
//!   `HEADROOM` as usual and a synthetic header is written in front of it
//!   (into the headroom): destination the interface's MAC (learned from
//!   the source of what vswitch sends out of the port; broadcast until
//!   then, which a routed interface accepts too), source [`IP_PEER_MAC`],
//!   ethertype from the version nibble; anything else is dropped
//!   (`rx_not_ip`). On transmit the Ethernet header is stripped from IPv4
//!   and IPv6 frames. ARP requests and IPv6 neighbor solicitations (vswitch
//!   resolving the peer) never reach the ring: the port answers them with
//!   [`IP_PEER_MAC`] and hands the answer to receive queue 0 (through a
//!   small mailbox, woken with [`vswitch_memif::RxWaker`]), so neighbor
//!   resolution completes (`neighbor_replies`). Anything else is dropped
//!   (`tx_not_ip`).
//!
//! Per burst: the memif layer's one atomic load, one index load and one
//! index store per ring, the copies, and a few relaxed stores of counters
//! (one writer per queue); in IP mode two relaxed atomic loads more (the
//! learned MAC, the mailbox). No allocation, lock or system call per
//! packet (the mailbox's lock is taken only for ARP/ND).

use crate::{QueueStats, RxQueue, TxQueue};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use vswitch_memif::{Interface, Mode, RxFrame, RxWaker};
use vswitch_packet::{Buffers, PacketId, HEADROOM};

/// IP mode: the MAC the port gives the peer (locally administered, fixed):
/// the source of every frame received and the answer to ARP and neighbor
/// solicitations.
pub const IP_PEER_MAC: [u8; 6] = [0x02, 0x6d, 0x65, 0x6d, 0x69, 0x66];

const ETH_LEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_ARP: u16 = 0x0806;
/// Answers waiting for receive queue 0 (ARP and ND are rare: a few do).
const MAILBOX: usize = 8;
/// Largest answer: Ethernet + IPv6 + NA with a target link-layer option.
const REPLY_MAX: usize = ETH_LEN + 40 + 32;

/// Answers to the port's own neighbor resolution, from transmit queues to
/// receive queue 0.
struct Mailbox {
    frames: [[u8; REPLY_MAX]; MAILBOX],
    lens: [usize; MAILBOX],
    n: usize,
}

/// What the queues of an IP-mode port share.
struct IpShared {
    /// The interface's MAC (as learned from transmitted frames) in the low
    /// 48 bits, bit 48 set once learned; 0: not yet.
    mac: AtomicU64,
    /// Answers in the mailbox (checked without the lock).
    pending: AtomicUsize,
    mailbox: Mutex<Mailbox>,
    waker: RxWaker,
}

fn mac_word(m: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(&m[..6]);
    u64::from_le_bytes(b) | 1 << 48
}

pub use vswitch_memif;

/// What this layer counts of one queue (the memif layer keeps its own
/// [`vswitch_memif::QueueCounters`] beside these). Written only by the
/// queue's owner (load + store), read by anyone.
#[derive(Debug, Default)]
pub struct MemifQueueCounters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    rx_no_buffer: AtomicU64,
    rx_too_long: AtomicU64,
    tx_dropped: AtomicU64,
    rx_not_ip: AtomicU64,
    tx_not_ip: AtomicU64,
    neighbor_replies: AtomicU64,
}

#[inline]
fn bump(c: &AtomicU64, v: u64) {
    if v != 0 {
        c.store(c.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
    }
}

/// A snapshot of [`MemifQueueCounters`] (or their sum over queues).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemifPortStats {
    /// Frames received into pool buffers.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Bursts cut short by an empty buffer pool (the frame stayed in the
    /// ring).
    pub rx_no_buffer: u64,
    /// Frames dropped: longer than a pool buffer holds.
    pub rx_too_long: u64,
    /// Frames freed unsent: ring full or link down. (Frames sent, and
    /// those the memif layer refused for their length, are in its
    /// counters: `packets`, `bad_length`.)
    pub tx_dropped: u64,
    /// IP mode: packets received that are neither IPv4 nor IPv6, dropped.
    pub rx_not_ip: u64,
    /// IP mode: frames to send that are neither IP nor ARP/ND vswitch
    /// sends to resolve the peer (nor answerable ones: ARP replies,
    /// duplicate address detection), dropped; also questions dropped
    /// because 8 answers were already waiting.
    pub tx_not_ip: u64,
    /// IP mode: ARP requests and neighbor solicitations answered by the
    /// port (receive: answers delivered; transmit: questions answered).
    pub neighbor_replies: u64,
}

impl MemifPortStats {
    /// Adds `o`'s counts to these (sums over queues).
    pub fn add(&mut self, o: &MemifPortStats) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.rx_no_buffer += o.rx_no_buffer;
        self.rx_too_long += o.rx_too_long;
        self.tx_dropped += o.tx_dropped;
        self.rx_not_ip += o.rx_not_ip;
        self.tx_not_ip += o.tx_not_ip;
        self.neighbor_replies += o.neighbor_replies;
    }
}

impl MemifQueueCounters {
    /// The values now.
    pub fn get(&self) -> MemifPortStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MemifPortStats {
            rx_packets: l(&self.rx_packets),
            rx_bytes: l(&self.rx_bytes),
            rx_no_buffer: l(&self.rx_no_buffer),
            rx_too_long: l(&self.rx_too_long),
            tx_dropped: l(&self.tx_dropped),
            rx_not_ip: l(&self.rx_not_ip),
            tx_not_ip: l(&self.tx_not_ip),
            neighbor_replies: l(&self.neighbor_replies),
        }
    }
}

/// The counters of every queue of a port, for `show memif`.
#[derive(Clone, Debug, Default)]
pub struct MemifCounters {
    /// Receive queue `i` at `rx[i]`.
    pub rx: Vec<Arc<MemifQueueCounters>>,
    /// Transmit queue `i` at `tx[i]`.
    pub tx: Vec<Arc<MemifQueueCounters>>,
}

impl MemifCounters {
    /// All queues summed.
    pub fn total(&self) -> MemifPortStats {
        let mut t = MemifPortStats::default();
        for q in self.rx.iter().chain(self.tx.iter()) {
            t.add(&q.get());
        }
        t
    }
}

/// A memif receive queue in vswitch.
pub struct MemifRx {
    queue: vswitch_memif::RxQueue,
    port: u32,
    counters: Arc<MemifQueueCounters>,
    /// IP mode only; `deliver`: this queue takes the mailbox's answers.
    ip: Option<Arc<IpShared>>,
    deliver: bool,
}

impl std::fmt::Debug for MemifRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemifRx").field("port", &self.port).field("queue", &self.queue).finish()
    }
}

/// A memif transmit queue in vswitch.
pub struct MemifTx {
    queue: vswitch_memif::TxQueue,
    counters: Arc<MemifQueueCounters>,
    /// IP mode only.
    ip: Option<Arc<IpShared>>,
    /// The MAC last stored in `ip.mac` (saves the store per frame).
    mac_seen: u64,
}

impl std::fmt::Debug for MemifTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemifTx").field("queue", &self.queue).finish()
    }
}

/// The queues of one memif interface, ready for the workers.
#[derive(Debug)]
pub struct MemifQueues {
    /// Receive queue `i` (ring `i` from the peer).
    pub rx: Vec<MemifRx>,
    /// Transmit queue `i` (ring `i` to the peer).
    pub tx: Vec<MemifTx>,
    /// Their counters.
    pub counters: MemifCounters,
}

/// Takes the queues of `iface` for port `port`; `None` if they were taken
/// already. An IP-mode interface gets the Ethernet adaptation (module
/// docs).
pub fn take_queues(iface: &Interface, port: u32) -> Option<MemifQueues> {
    let (rxs, txs) = iface.take_queues()?;
    let ip = (iface.config().mode == Mode::Ip && !rxs.is_empty()).then(|| {
        Arc::new(IpShared {
            mac: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            mailbox: Mutex::new(Mailbox { frames: [[0; REPLY_MAX]; MAILBOX], lens: [0; MAILBOX], n: 0 }),
            waker: rxs[0].waker(),
        })
    });
    let mut counters = MemifCounters::default();
    let rx = rxs
        .into_iter()
        .enumerate()
        .map(|(i, queue)| {
            let c = Arc::new(MemifQueueCounters::default());
            counters.rx.push(c.clone());
            MemifRx { queue, port, counters: c, ip: ip.clone(), deliver: i == 0 }
        })
        .collect();
    let tx = txs
        .into_iter()
        .map(|queue| {
            let c = Arc::new(MemifQueueCounters::default());
            counters.tx.push(c.clone());
            MemifTx { queue, counters: c, ip: ip.clone(), mac_seen: 0 }
        })
        .collect();
    Some(MemifQueues { rx, tx, counters })
}

impl MemifRx {
    /// The memif layer's counters of this queue.
    pub fn memif_counters(&self) -> vswitch_memif::QueueCounters {
        self.queue.counters()
    }

    /// This layer's counters of this queue.
    pub fn counters(&self) -> MemifPortStats {
        self.counters.get()
    }
}

impl RxQueue for MemifRx {
    fn port(&self) -> u32 {
        self.port
    }

    fn rx_burst(&mut self, bufs: &mut Buffers, out: &mut Vec<PacketId>, max: usize) -> usize {
        let cap = bufs.buffer_size() - HEADROOM;
        let port = self.port;
        let (mut n, mut bytes, mut too_long, mut no_buffer, mut not_ip) = (0usize, 0u64, 0u64, 0u64, 0u64);
        // IP mode: the synthetic header's destination, read once per burst.
        let ip_dst = self.ip.as_ref().map(|ip| match ip.mac.load(Ordering::Relaxed) {
            0 => [0xff; 6],
            w => {
                let b = w.to_le_bytes();
                [b[0], b[1], b[2], b[3], b[4], b[5]]
            }
        });
        // Room for the header in front of the packet (HEADROOM is 256).
        const _: () = assert!(HEADROOM >= ETH_LEN);
        self.queue.rx_burst(max, |f: RxFrame<'_>| {
            let len = f.len();
            if len > cap || (ip_dst.is_some() && len + ETH_LEN > usize::from(u16::MAX)) {
                too_long += 1;
                return true;
            }
            let Some(p) = bufs.alloc() else {
                no_buffer = 1;
                return false;
            };
            // `len <= cap`: it fits, so `copy_to` copies all of it.
            f.copy_to(&mut bufs.buffer_mut(p)[HEADROOM..]);
            let mut start = HEADROOM;
            if let Some(dst) = ip_dst {
                let b = bufs.buffer_mut(p);
                let et = match b[HEADROOM] >> 4 {
                    4 => ETHERTYPE_IPV4,
                    6 => ETHERTYPE_IPV6,
                    _ => {
                        not_ip += 1;
                        bufs.free(p);
                        return true;
                    }
                };
                start = HEADROOM - ETH_LEN;
                let h = &mut b[start..HEADROOM];
                h[0..6].copy_from_slice(&dst);
                h[6..12].copy_from_slice(&IP_PEER_MAC);
                h[12..14].copy_from_slice(&et.to_be_bytes());
            }
            let m = bufs.meta_mut(p);
            m.current = start as u16;
            m.len = (len + HEADROOM - start) as u16;
            m.rx_if = port;
            out.push(p);
            n += 1;
            bytes += len as u64;
            true
        });
        let mut replies = 0;
        if let (Some(ip), true) = (&self.ip, self.deliver) {
            if ip.pending.load(Ordering::Relaxed) > 0 {
                replies = deliver_replies(ip, bufs, out, port);
                n += replies;
            }
        }
        let c = &self.counters;
        bump(&c.rx_packets, n as u64);
        bump(&c.rx_bytes, bytes);
        bump(&c.rx_too_long, too_long);
        bump(&c.rx_no_buffer, no_buffer);
        bump(&c.rx_not_ip, not_ip);
        bump(&c.neighbor_replies, replies as u64);
        n
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.queue.wait_fd())
    }

    fn stats(&self) -> QueueStats {
        let s = self.counters.get();
        let m = self.queue.counters();
        QueueStats {
            packets: s.rx_packets,
            bytes: s.rx_bytes,
            drops: s.rx_too_long + s.rx_not_ip + m.bad_region + m.bad_offset + m.bad_length + m.oversize + m.empty,
        }
    }
}

impl MemifTx {
    /// The memif layer's counters of this queue.
    pub fn memif_counters(&self) -> vswitch_memif::QueueCounters {
        self.queue.counters()
    }

    /// This layer's counters of this queue.
    pub fn counters(&self) -> MemifPortStats {
        self.counters.get()
    }
}

impl TxQueue for MemifTx {
    fn tx_burst(&mut self, bufs: &mut Buffers, packets: &mut Vec<PacketId>) {
        if packets.is_empty() {
            return;
        }
        // Taken out for the burst (no reference-count traffic), put back.
        let (offered, taken) = match self.ip.take() {
            None => (packets.len(), self.queue.tx_burst(packets.iter().map(|&p| bufs.data(p)))),
            Some(ip) => {
                let r = self.tx_ip(&ip, bufs, packets);
                self.ip = Some(ip);
                r
            }
        };
        bump(&self.counters.tx_dropped, (offered - taken) as u64);
        bufs.free_bulk(packets);
        packets.clear();
    }

    fn stats(&self) -> QueueStats {
        let s = self.counters.get();
        let m = self.queue.counters();
        QueueStats { packets: m.packets, bytes: m.bytes, drops: s.tx_dropped + s.tx_not_ip + m.bad_length }
    }
}

impl MemifTx {
    /// IP mode: strips the Ethernet header of IPv4/IPv6 frames and sends
    /// them; answers ARP requests and neighbor solicitations; drops the
    /// rest. Returns (IP packets offered to the ring, taken).
    fn tx_ip(&mut self, ip: &IpShared, bufs: &Buffers, packets: &[PacketId]) -> (usize, usize) {
        let (mut offered, mut not_ip, mut answered) = (0usize, 0u64, 0u64);
        for &p in packets.iter() {
            let d = bufs.data(p);
            let kind = frame_kind(d);
            if kind != Kind::Other {
                // The interface's MAC, for the headers of received packets.
                let w = mac_word(&d[6..12]);
                if w != self.mac_seen {
                    self.mac_seen = w;
                    ip.mac.store(w, Ordering::Relaxed);
                }
            }
            match kind {
                Kind::Ip => offered += 1,
                Kind::Ask => {
                    let mut reply = [0u8; REPLY_MAX];
                    match answer(d, &mut reply) {
                        Some(n) if post_reply(ip, &reply[..n]) => answered += 1,
                        _ => not_ip += 1,
                    }
                }
                Kind::Other => not_ip += 1,
            }
        }
        let taken = if offered > 0 {
            let ips = packets.iter().map(|&p| bufs.data(p)).filter(|d| frame_kind(d) == Kind::Ip);
            self.queue.tx_burst(ips.map(|d| &d[ETH_LEN..]))
        } else {
            0
        };
        bump(&self.counters.tx_not_ip, not_ip);
        bump(&self.counters.neighbor_replies, answered);
        (offered, taken)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// IPv4 or IPv6 (not a neighbor solicitation): goes out bare.
    Ip,
    /// An ARP request or neighbor solicitation: the port answers.
    Ask,
    Other,
}

/// IPv6 next header ICMPv6; ND message types.
const ICMP6: u8 = 58;
const ND_NS: u8 = 135;
const ND_NA: u8 = 136;

fn frame_kind(d: &[u8]) -> Kind {
    if d.len() < ETH_LEN {
        return Kind::Other;
    }
    match u16::from_be_bytes([d[12], d[13]]) {
        ETHERTYPE_IPV4 if d.len() > ETH_LEN => Kind::Ip,
        ETHERTYPE_IPV6 if d.len() >= ETH_LEN + 40 => {
            if d[ETH_LEN + 6] == ICMP6 && d.get(ETH_LEN + 40) == Some(&ND_NS) {
                Kind::Ask
            } else {
                Kind::Ip
            }
        }
        ETHERTYPE_ARP => Kind::Ask,
        _ => Kind::Other,
    }
}

/// Writes the answer to an ARP request or neighbor solicitation `q` (an
/// Ethernet frame from the interface) into `out`: its length, or `None`
/// if `q` is not one that gets an answer (an ARP reply, a malformed
/// question, duplicate address detection).
fn answer(q: &[u8], out: &mut [u8; REPLY_MAX]) -> Option<usize> {
    let our_mac = q.get(6..12)?;
    out[0..6].copy_from_slice(our_mac);
    out[6..12].copy_from_slice(&IP_PEER_MAC);
    match u16::from_be_bytes([q[12], q[13]]) {
        ETHERTYPE_ARP => {
            let a = q.get(ETH_LEN..ETH_LEN + 28)?;
            // Ethernet/IPv4 request, not a gratuitous announcement.
            if a[0..8] != [0, 1, 8, 0, 6, 4, 0, 1] || a[14..18] == a[24..28] {
                return None;
            }
            out[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
            let r = &mut out[ETH_LEN..ETH_LEN + 28];
            r[0..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
            r[8..14].copy_from_slice(&IP_PEER_MAC);
            r[14..18].copy_from_slice(&a[24..28]);
            r[18..24].copy_from_slice(&a[8..14]);
            r[24..28].copy_from_slice(&a[14..18]);
            Some(ETH_LEN + 28)
        }
        ETHERTYPE_IPV6 => {
            let h = q.get(ETH_LEN..ETH_LEN + 40)?;
            let ns = q.get(ETH_LEN + 40..ETH_LEN + 40 + 24)?;
            let src: [u8; 16] = h[8..24].try_into().ok()?;
            // Hop limit 255 (RFC 4861); an unspecified source is duplicate
            // address detection, which must not be answered.
            if h[7] != 255 || ns[0] != ND_NS || ns[1] != 0 || src == [0; 16] {
                return None;
            }
            let target: [u8; 16] = ns[8..24].try_into().ok()?;
            out[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let o = &mut out[ETH_LEN..ETH_LEN + 40 + 32];
            o[0..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 32, ICMP6, 255]);
            o[8..24].copy_from_slice(&target);
            o[24..40].copy_from_slice(&src);
            let na = &mut o[40..72];
            na.fill(0);
            na[0] = ND_NA;
            na[4] = 0x60; // Solicited, Override.
            na[8..24].copy_from_slice(&target);
            na[24] = 2; // Target link-layer address, 8 bytes.
            na[25] = 1;
            na[26..32].copy_from_slice(&IP_PEER_MAC);
            let sum = icmp6_checksum(&target, &src, &o[40..72]);
            o[42..44].copy_from_slice(&sum.to_be_bytes());
            Some(ETH_LEN + 40 + 32)
        }
        _ => None,
    }
}

/// The ICMPv6 checksum of `msg` (checksum field zero) from `src` to `dst`.
fn icmp6_checksum(src: &[u8; 16], dst: &[u8; 16], msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(src);
    add(dst);
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, ICMP6]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Queues an answer for receive queue 0 and wakes it; false if the
/// mailbox is full (the question is dropped; vswitch asks again).
fn post_reply(ip: &IpShared, frame: &[u8]) -> bool {
    let mut mb = ip.mailbox.lock().unwrap_or_else(|e| e.into_inner());
    if mb.n == MAILBOX {
        return false;
    }
    let k = mb.n;
    mb.frames[k][..frame.len()].copy_from_slice(frame);
    mb.lens[k] = frame.len();
    mb.n += 1;
    ip.pending.store(mb.n, Ordering::Relaxed);
    drop(mb);
    ip.waker.wake();
    true
}

/// Hands the mailbox's answers to the graph as received frames; how many.
fn deliver_replies(ip: &IpShared, bufs: &mut Buffers, out: &mut Vec<PacketId>, port: u32) -> usize {
    let mut mb = ip.mailbox.lock().unwrap_or_else(|e| e.into_inner());
    let mut done = 0;
    while done < mb.n {
        let Some(p) = bufs.alloc() else { break };
        let len = mb.lens[done];
        bufs.buffer_mut(p)[HEADROOM..HEADROOM + len].copy_from_slice(&mb.frames[done][..len]);
        let m = bufs.meta_mut(p);
        m.current = HEADROOM as u16;
        m.len = len as u16;
        m.rx_if = port;
        out.push(p);
        done += 1;
    }
    // What did not fit (no buffer) moves to the front for the next burst.
    let n = mb.n;
    for k in done..n {
        mb.frames[k - done] = mb.frames[k];
        mb.lens[k - done] = mb.lens[k];
    }
    mb.n = n - done;
    ip.pending.store(mb.n, Ordering::Relaxed);
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vswitch_memif::{Client, ClientConfig, InterfaceConfig, Server, ServerConfig, SocketAddr};
    use vswitch_packet::{BufferPool, BufferPoolConfig};

    fn frame(seq: u8, len: usize) -> Vec<u8> {
        let mut f = vec![seq; len];
        f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
        f
    }

    fn rx_until(q: &mut MemifRx, bufs: &mut Buffers, out: &mut Vec<PacketId>, want: usize) {
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while out.len() < want && std::time::Instant::now() < end {
            q.rx_burst(bufs, out, 256);
        }
    }

    /// Our server's queues as vswitch queues, a memif client on the other
    /// side: frames into pool buffers at HEADROOM, too long ones dropped,
    /// an empty pool leaving frames in the ring, pool buffers sent,
    /// frames dropped while the link is down.
    #[test]
    fn frames_move_between_pool_buffers_and_the_rings() {
        let sock = std::env::temp_dir().join(format!("vswp-memif-{}.sock", std::process::id()));
        let server = Server::bind(ServerConfig::new(SocketAddr::Path(sock.clone()))).unwrap();
        let si = server.add_interface(InterfaceConfig::new(7)).unwrap();
        let mut q = take_queues(&si, 5).unwrap();
        assert!(take_queues(&si, 5).is_none());
        let (mut rx, mut tx) = (q.rx.remove(0), q.tx.remove(0));
        let pool = BufferPool::new(&BufferPoolConfig { buffers: 16, data_size: 1000, prefer_huge: false }).unwrap();
        let mut bufs = pool.worker();

        // Link down: sending drops and counts, receiving finds nothing.
        let mut pkts = Vec::new();
        bufs.alloc_bulk(&mut pkts, 2);
        tx.tx_burst(&mut bufs, &mut pkts);
        assert!(pkts.is_empty());
        assert_eq!(tx.stats(), QueueStats { packets: 0, bytes: 0, drops: 2 });
        let mut out = Vec::new();
        assert_eq!(rx.rx_burst(&mut bufs, &mut out, 256), 0);

        let client = Client::new(ClientConfig::new(SocketAddr::Path(sock.clone()))).unwrap();
        let ci = client.add_interface(InterfaceConfig { buffer_size: 512, ..InterfaceConfig::new(7) }).unwrap();
        assert!(ci.wait_up(Duration::from_secs(5)) && si.wait_up(Duration::from_secs(5)));
        let (mut crx, mut ctx) = ci.take_queues().unwrap();

        // Receive: 60..1000 bytes fit (chained over 512-byte buffers), 1001
        // does not.
        let sizes = [60usize, 512, 513, 1000, 1001, 64];
        let frames: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| frame(i as u8, n)).collect();
        assert_eq!(ctx[0].tx_burst(frames.iter().map(|f| &f[..])), frames.len());
        rx_until(&mut rx, &mut bufs, &mut out, 5);
        assert_eq!(out.len(), 5);
        let want: Vec<&Vec<u8>> = frames.iter().filter(|f| f.len() <= 1000).collect();
        for (&p, w) in out.iter().zip(&want) {
            assert_eq!(bufs.meta(p).current as usize, HEADROOM);
            assert_eq!(bufs.meta(p).rx_if, 5);
            assert_eq!(bufs.data(p), &w[..]);
        }
        let s = rx.counters();
        assert_eq!((s.rx_packets, s.rx_too_long, s.rx_no_buffer), (5, 1, 0));
        assert_eq!(rx.stats(), QueueStats { packets: 5, bytes: want.iter().map(|f| f.len() as u64).sum(), drops: 1 });

        // Transmit them back.
        tx.tx_burst(&mut bufs, &mut out);
        let mut back = Vec::new();
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while back.len() < 5 && std::time::Instant::now() < end {
            crx[0].rx_burst(64, |f| {
                back.push(f.to_vec());
                true
            });
        }
        assert_eq!(back.iter().collect::<Vec<_>>(), want);
        assert_eq!(tx.stats().packets, 5);
        assert_eq!(tx.stats().drops, 2, "only the two sent while the link was down");

        // An empty pool: the burst stops and the frames wait in the ring.
        let mut hold = Vec::new();
        bufs.alloc_bulk(&mut hold, 16);
        assert_eq!(ctx[0].tx_burst([&frames[0][..], &frames[1][..]]), 2);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rx.rx_burst(&mut bufs, &mut out, 256), 0);
        assert_eq!(rx.counters().rx_no_buffer, 1);
        bufs.free_bulk(&hold);
        rx_until(&mut rx, &mut bufs, &mut out, 2);
        assert_eq!(out.len(), 2);
        assert_eq!(bufs.data(out[1]), &frames[1][..]);
        bufs.free_bulk(&out);
        assert!(rx.wait_fd().is_some());
        drop((rx, tx, crx, ctx, client, server));
        let _ = std::fs::remove_file(&sock);
    }

    /// IP mode: the port adds and strips the Ethernet header, answers ARP
    /// and neighbor solicitations itself (the answers arrive on receive
    /// queue 0), and drops and counts what is neither.
    #[test]
    fn ip_mode_adapts_ethernet_and_answers_neighbor_resolution() {
        use vswitch_memif::Mode;
        let sock = std::env::temp_dir().join(format!("vswp-mzip-{}.sock", std::process::id()));
        let server = Server::bind(ServerConfig::new(SocketAddr::Path(sock.clone()))).unwrap();
        let si = server.add_interface(InterfaceConfig { mode: Mode::Ip, ..InterfaceConfig::new(1) }).unwrap();
        let mut q = take_queues(&si, 2).unwrap();
        let (mut rx, mut tx) = (q.rx.remove(0), q.tx.remove(0));
        let client = Client::new(ClientConfig::new(SocketAddr::Path(sock.clone()))).unwrap();
        let ci = client.add_interface(InterfaceConfig { mode: Mode::Ip, ..InterfaceConfig::new(1) }).unwrap();
        assert!(ci.wait_up(Duration::from_secs(5)) && si.wait_up(Duration::from_secs(5)));
        let (mut crx, mut ctx) = ci.take_queues().unwrap();
        let pool = BufferPool::new(&BufferPoolConfig { buffers: 64, data_size: 2048, prefer_huge: false }).unwrap();
        let mut bufs = pool.worker();
        let ours = [0x02, 0xaa, 0, 0, 0, 1];
        let send = |tx: &mut MemifTx, bufs: &mut Buffers, frame: &[u8]| {
            let p = bufs.alloc().unwrap();
            bufs.buffer_mut(p)[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
            let m = bufs.meta_mut(p);
            m.current = HEADROOM as u16;
            m.len = frame.len() as u16;
            tx.tx_burst(bufs, &mut vec![p]);
        };
        let eth = |et: u16, body: &[u8]| {
            let mut f = vec![0xff; 6];
            f.extend_from_slice(&ours);
            f.extend_from_slice(&et.to_be_bytes());
            f.extend_from_slice(body);
            f
        };
        // vswitch asks who has 10.0.0.9 (from 10.0.0.1): the port answers.
        let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
        arp.extend_from_slice(&ours);
        arp.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 9]);
        let mut out = Vec::new();
        // Settled: a burst took the link-change wake-up; nothing to wait for.
        assert_eq!(rx.rx_burst(&mut bufs, &mut out, 256), 0);
        assert!(!rx.queue.wait(0));
        send(&mut tx, &mut bufs, &eth(0x0806, &arp));
        // The answer wakes receive queue 0 (a worker asleep in interrupt
        // mode), and the burst that takes it consumes the wake-up.
        assert!(rx.queue.wait(5000), "the answer wakes receive queue 0");
        rx_until(&mut rx, &mut bufs, &mut out, 1);
        assert!(!rx.queue.wait(0));
        assert_eq!(out.len(), 1);
        let r = bufs.data(out[0]).to_vec();
        assert_eq!((&r[0..6], &r[6..12], &r[12..14]), (&ours[..], &IP_PEER_MAC[..], &[8u8, 6][..]));
        assert_eq!(&r[14..22], &[0, 1, 8, 0, 6, 4, 0, 2]);
        assert_eq!((&r[22..28], &r[28..32]), (&IP_PEER_MAC[..], &[10u8, 0, 0, 9][..]));
        assert_eq!((&r[32..38], &r[38..42]), (&ours[..], &[10u8, 0, 0, 1][..]));
        bufs.free_bulk(&out);
        out.clear();

        // A neighbor solicitation for fe80::9 from fe80::1: a valid NA.
        let (src, target) = ([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1u8], {
            let mut t = [0u8; 16];
            t[0] = 0xfe;
            t[1] = 0x80;
            t[15] = 9;
            t
        });
        let mut ns = vec![0x60, 0, 0, 0, 0, 32, 58, 255];
        ns.extend_from_slice(&src);
        ns.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 9]);
        ns.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
        ns.extend_from_slice(&target);
        ns.extend_from_slice(&[1, 1]);
        ns.extend_from_slice(&ours);
        send(&mut tx, &mut bufs, &eth(0x86dd, &ns));
        rx_until(&mut rx, &mut bufs, &mut out, 1);
        assert_eq!(out.len(), 1);
        let na = bufs.data(out[0]).to_vec();
        assert_eq!(na.len(), 14 + 40 + 32);
        assert_eq!((&na[0..6], &na[12..14]), (&ours[..], &[0x86u8, 0xdd][..]));
        assert_eq!((na[14 + 6], na[14 + 7], na[54]), (58, 255, 136));
        assert_eq!((&na[22..38], &na[38..54]), (&target[..], &src[..]));
        assert_eq!(&na[62..78], &target[..]);
        assert_eq!(&na[78..86], &[2, 1, 2, 0x6d, 0x65, 0x6d, 0x69, 0x66]);
        // The checksum over the pseudo-header and message sums to 0xffff.
        assert_eq!(icmp6_checksum(&target, &src, &na[54..]), 0);
        bufs.free_bulk(&out);
        out.clear();
        assert_eq!(tx.counters().neighbor_replies, 2);
        assert_eq!(rx.counters().neighbor_replies, 2);

        // IPv4 and IPv6 out: bare on the ring. Something else: dropped.
        let v4: Vec<u8> = [0x45u8, 0, 0, 20].iter().copied().chain(std::iter::repeat_n(7, 16)).collect();
        let v6: Vec<u8> = [0x60u8, 0, 0, 0, 0, 0, 59, 64].iter().copied().chain(std::iter::repeat_n(8, 32)).collect();
        send(&mut tx, &mut bufs, &eth(0x0800, &v4));
        send(&mut tx, &mut bufs, &eth(0x86dd, &v6));
        send(&mut tx, &mut bufs, &eth(0x88b5, &[1, 2, 3]));
        let mut back = Vec::new();
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while back.len() < 2 && std::time::Instant::now() < end {
            crx[0].rx_burst(64, |f| {
                back.push(f.to_vec());
                true
            });
        }
        assert_eq!(back, vec![v4.clone(), v6.clone()]);
        assert_eq!((tx.counters().tx_not_ip, tx.counters().tx_dropped), (1, 0));

        // IPv4 and IPv6 in: Ethernet frames to the interface's MAC (learned
        // from what it sent). Version 5: dropped.
        let bad: Vec<u8> = vec![0x50; 30];
        assert_eq!(ctx[0].tx_burst([&v4[..], &bad[..], &v6[..]]), 3);
        rx_until(&mut rx, &mut bufs, &mut out, 2);
        assert_eq!(out.len(), 2);
        let mut want = ours.to_vec();
        want.extend_from_slice(&IP_PEER_MAC);
        want.extend_from_slice(&[0x08, 0x00]);
        want.extend_from_slice(&v4);
        assert_eq!(bufs.data(out[0]), &want[..]);
        assert_eq!(&bufs.data(out[1])[12..14], &[0x86, 0xdd]);
        assert_eq!(&bufs.data(out[1])[14..], &v6[..]);
        assert_eq!(bufs.meta(out[1]).current as usize, HEADROOM - 14);
        assert_eq!(rx.counters().rx_not_ip, 1);
        assert_eq!(rx.stats().drops, 1);
        bufs.free_bulk(&out);
        drop((rx, tx, crx, ctx, client, server));
        let _ = std::fs::remove_file(&sock);
    }
}
