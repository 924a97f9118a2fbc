//! Per-worker interface counters (summed over workers on read).

use vswitch_graph::Counter;

/// Interface counters of one worker, indexed by software interface.
pub struct IfCounters {
    /// Packets received.
    pub rx_packets: Box<[Counter]>,
    /// Bytes received.
    pub rx_bytes: Box<[Counter]>,
    /// Packets sent.
    pub tx_packets: Box<[Counter]>,
    /// Bytes sent.
    pub tx_bytes: Box<[Counter]>,
    /// Packets dropped on the interface.
    pub drops: Box<[Counter]>,
}

/// Interfaces a worker keeps counters for.
pub const MAX_INTERFACES: usize = 4096;

impl Default for IfCounters {
    fn default() -> Self {
        let v = || (0..MAX_INTERFACES).map(|_| Counter::default()).collect();
        IfCounters { rx_packets: v(), rx_bytes: v(), tx_packets: v(), tx_bytes: v(), drops: v() }
    }
}

impl IfCounters {
    /// Counts a received packet.
    #[inline(always)]
    pub fn rx(&self, sw_if: u32, bytes: usize) {
        if let (Some(p), Some(b)) = (self.rx_packets.get(sw_if as usize), self.rx_bytes.get(sw_if as usize)) {
            p.inc();
            b.add(bytes as u64);
        }
    }

    /// Counts a sent packet.
    #[inline(always)]
    pub fn tx(&self, sw_if: u32, bytes: usize) {
        if let (Some(p), Some(b)) = (self.tx_packets.get(sw_if as usize), self.tx_bytes.get(sw_if as usize)) {
            p.inc();
            b.add(bytes as u64);
        }
    }

    /// Counts a drop.
    #[inline(always)]
    pub fn dropped(&self, sw_if: u32) {
        if let Some(d) = self.drops.get(sw_if as usize) {
            d.inc();
        }
    }
}
