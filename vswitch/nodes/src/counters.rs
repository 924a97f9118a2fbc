//! Per-worker interface counters (summed over workers on read).

use vswitch_graph::Counter;

/// One interface's counters on one worker, in one cache line.
#[derive(Default, Debug)]
#[repr(align(64))]
pub struct InterfaceCounters {
    /// Packets received.
    pub rx_packets: Counter,
    /// Bytes received.
    pub rx_bytes: Counter,
    /// Packets sent.
    pub tx_packets: Counter,
    /// Bytes sent.
    pub tx_bytes: Counter,
    /// Packets dropped on the interface.
    pub drops: Counter,
}

/// Interface counters of one worker, indexed by software interface.
pub struct IfCounters {
    interfaces: Box<[InterfaceCounters]>,
    none: InterfaceCounters,
}

/// Interfaces a worker keeps counters for.
pub const MAX_INTERFACES: usize = 4096;

impl Default for IfCounters {
    fn default() -> Self {
        IfCounters {
            interfaces: (0..MAX_INTERFACES).map(|_| InterfaceCounters::default()).collect(),
            none: InterfaceCounters::default(),
        }
    }
}

impl IfCounters {
    /// The counters of an interface (a shared dummy beyond the table, so
    /// callers never branch on it).
    #[inline(always)]
    pub fn get(&self, sw_if: u32) -> &InterfaceCounters {
        self.interfaces.get(sw_if as usize).unwrap_or(&self.none)
    }

    /// Counts received packets.
    #[inline(always)]
    pub fn rx(&self, sw_if: u32, packets: u64, bytes: u64) {
        let c = self.get(sw_if);
        c.rx_packets.add(packets);
        c.rx_bytes.add(bytes);
    }

    /// Counts sent packets.
    #[inline(always)]
    pub fn tx(&self, sw_if: u32, packets: u64, bytes: u64) {
        let c = self.get(sw_if);
        c.tx_packets.add(packets);
        c.tx_bytes.add(bytes);
    }

    /// Counts a drop.
    #[inline(always)]
    pub fn dropped(&self, sw_if: u32) {
        self.get(sw_if).drops.inc();
    }
}
