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
//! Per burst: the memif layer's one atomic load, one index load and one
//! index store per ring, the copies, and a few relaxed stores of counters
//! (one writer per queue). No allocation, lock or system call per packet.

use crate::{QueueStats, RxQueue, TxQueue};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vswitch_memif::{Interface, RxFrame};
use vswitch_packet::{Buffers, PacketId, HEADROOM};

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
}

impl MemifPortStats {
    fn add(&mut self, o: &MemifPortStats) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.rx_no_buffer += o.rx_no_buffer;
        self.rx_too_long += o.rx_too_long;
        self.tx_dropped += o.tx_dropped;
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
/// already.
pub fn take_queues(iface: &Interface, port: u32) -> Option<MemifQueues> {
    let (rxs, txs) = iface.take_queues()?;
    let mut counters = MemifCounters::default();
    let rx = rxs
        .into_iter()
        .map(|queue| {
            let c = Arc::new(MemifQueueCounters::default());
            counters.rx.push(c.clone());
            MemifRx { queue, port, counters: c }
        })
        .collect();
    let tx = txs
        .into_iter()
        .map(|queue| {
            let c = Arc::new(MemifQueueCounters::default());
            counters.tx.push(c.clone());
            MemifTx { queue, counters: c }
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
        let (mut n, mut bytes, mut too_long, mut no_buffer) = (0usize, 0u64, 0u64, 0u64);
        self.queue.rx_burst(max, |f: RxFrame<'_>| {
            let len = f.len();
            if len > cap {
                too_long += 1;
                return true;
            }
            let Some(p) = bufs.alloc() else {
                no_buffer = 1;
                return false;
            };
            // `len <= cap`: it fits, so `copy_to` copies all of it.
            f.copy_to(&mut bufs.buffer_mut(p)[HEADROOM..]);
            let m = bufs.meta_mut(p);
            m.current = HEADROOM as u16;
            m.len = len as u16;
            m.rx_if = port;
            out.push(p);
            n += 1;
            bytes += len as u64;
            true
        });
        let c = &self.counters;
        bump(&c.rx_packets, n as u64);
        bump(&c.rx_bytes, bytes);
        bump(&c.rx_too_long, too_long);
        bump(&c.rx_no_buffer, no_buffer);
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
            drops: s.rx_too_long + m.bad_region + m.bad_offset + m.bad_length + m.oversize + m.empty,
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
        let taken = self.queue.tx_burst(packets.iter().map(|&p| bufs.data(p)));
        bump(&self.counters.tx_dropped, (packets.len() - taken) as u64);
        bufs.free_bulk(packets);
        packets.clear();
    }

    fn stats(&self) -> QueueStats {
        let s = self.counters.get();
        let m = self.queue.counters();
        QueueStats { packets: m.packets, bytes: m.bytes, drops: s.tx_dropped + m.bad_length }
    }
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
}
