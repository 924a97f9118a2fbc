//! The packet generator: a port that receives copies of template frames
//! as fast as it is polled, and transmits by freeing (a sink). It measures
//! the graph without any I/O, like VPP's `pg` interfaces.

use crate::{QueueStats, RxQueue, TxQueue};
use vswitch_packet::{Buffers, PacketId};

/// Receives an endless stream of frames cycling through templates.
pub struct PgRx {
    port: u32,
    templates: Vec<Vec<u8>>,
    next: usize,
    limit: Option<u64>,
    stats: QueueStats,
}

impl PgRx {
    /// A generator on port `port` cycling through `templates` (one per
    /// flow). `limit`: stop after this many packets (`None`: never).
    pub fn new(port: u32, templates: Vec<Vec<u8>>, limit: Option<u64>) -> PgRx {
        assert!(!templates.is_empty(), "a generator needs at least one template");
        PgRx { port, templates, next: 0, limit, stats: QueueStats::default() }
    }
}

impl RxQueue for PgRx {
    fn port(&self) -> u32 {
        self.port
    }

    fn rx_burst(&mut self, bufs: &mut Buffers, out: &mut Vec<PacketId>, max: usize) -> usize {
        let max = match self.limit {
            Some(l) => max.min(l.saturating_sub(self.stats.packets) as usize),
            None => max,
        };
        let mut n = 0;
        while n < max {
            let Some(p) = bufs.alloc() else {
                self.stats.drops += 1;
                break;
            };
            let t = &self.templates[self.next];
            self.next = if self.next + 1 == self.templates.len() { 0 } else { self.next + 1 };
            bufs.write(p, t);
            bufs.meta_mut(p).rx_if = self.port;
            self.stats.bytes += t.len() as u64;
            out.push(p);
            n += 1;
        }
        self.stats.packets += n as u64;
        n
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}

/// Transmits by freeing: counts what it is given.
#[derive(Default)]
pub struct PgTx {
    stats: QueueStats,
    /// Keep copies of the last frames sent, for tests (0: none).
    keep: usize,
    kept: Vec<Vec<u8>>,
}

impl PgTx {
    /// A sink that keeps copies of up to `keep` sent frames.
    pub fn new(keep: usize) -> PgTx {
        PgTx { stats: QueueStats::default(), keep, kept: Vec::new() }
    }

    /// The frames kept so far.
    pub fn kept(&self) -> &[Vec<u8>] {
        &self.kept
    }
}

impl TxQueue for PgTx {
    fn tx_burst(&mut self, bufs: &mut Buffers, packets: &mut Vec<PacketId>) {
        for &p in packets.iter() {
            let len = bufs.meta(p).len as u64;
            self.stats.bytes += len;
            if self.kept.len() < self.keep {
                self.kept.push(bufs.data(p).to_vec());
            }
        }
        self.stats.packets += packets.len() as u64;
        bufs.free_bulk(packets);
        packets.clear();
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vswitch_packet::{BufferPool, BufferPoolConfig};

    #[test]
    fn generator_cycles_templates_and_sink_frees() {
        let pool = BufferPool::new(&BufferPoolConfig { buffers: 64, data_size: 256, prefer_huge: false }).unwrap();
        let mut bufs = pool.worker();
        let mut rx = PgRx::new(3, vec![vec![1; 60], vec![2; 64]], Some(5));
        let mut v = Vec::new();
        assert_eq!(rx.rx_burst(&mut bufs, &mut v, 256), 5);
        assert_eq!(rx.rx_burst(&mut bufs, &mut v, 256), 0, "limit reached");
        assert_eq!(bufs.data(v[1]), &[2; 64]);
        assert_eq!(bufs.data(v[2]), &[1; 60]);
        assert_eq!(bufs.meta(v[0]).rx_if, 3);
        let mut tx = PgTx::new(1);
        tx.tx_burst(&mut bufs, &mut v);
        assert!(v.is_empty());
        assert_eq!(tx.stats(), QueueStats { packets: 5, bytes: 308, drops: 0 });
        assert_eq!(tx.kept(), &[vec![1; 60]]);
        drop(bufs);
        assert_eq!(pool.available(), 64);
    }

    #[test]
    fn generator_counts_pool_exhaustion() {
        let pool = BufferPool::new(&BufferPoolConfig { buffers: 3, data_size: 256, prefer_huge: false }).unwrap();
        let mut bufs = pool.worker();
        let mut rx = PgRx::new(0, vec![vec![0; 64]], None);
        let mut v = Vec::new();
        assert_eq!(rx.rx_burst(&mut bufs, &mut v, 10), 3);
        assert_eq!(rx.stats().drops, 1);
        bufs.free_bulk(&v);
    }
}
