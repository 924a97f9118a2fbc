//! Per-worker SR counters: for each local SID and each policy, packets and
//! bytes it processed and packets it dropped; for an SR proxy SID also the
//! same of the traffic its service function sent back. Written by their worker only
//! (plain loads and stores, no locked instruction), summed over workers on
//! read, indexed like the SR table.

use super::table::{MAX_LOCALSIDS, MAX_POLICIES};
use vswitch_graph::Counter;

/// One SID's or policy's counters on one worker.
#[derive(Default, Debug)]
#[repr(align(32))]
pub struct SrCounter {
    /// Packets processed (forwarded, decapsulated, encapsulated or
    /// delivered locally).
    pub packets: Counter,
    /// Their bytes, as received.
    pub bytes: Counter,
    /// Packets dropped (the node's error counters say why).
    pub drops: Counter,
}

impl SrCounter {
    /// Counts a packet of `len` bytes that went through.
    #[inline(always)]
    pub fn pass(&self, len: usize) {
        self.packets.inc();
        self.bytes.add(len as u64);
    }

    /// Counts `packets` packets of `bytes` bytes in all that went through
    /// (a run of packets; nothing when `packets` is 0).
    #[inline(always)]
    pub fn add(&self, packets: u64, bytes: u64) {
        if packets > 0 {
            self.packets.add(packets);
            self.bytes.add(bytes);
        }
    }

    /// Counts a dropped packet.
    #[inline(always)]
    pub fn drop(&self) {
        self.drops.inc();
    }

    /// (packets, bytes, drops).
    pub fn get(&self) -> (u64, u64, u64) {
        (self.packets.get(), self.bytes.get(), self.drops.get())
    }

    fn clear(&self) {
        for c in [&self.packets, &self.bytes, &self.drops] {
            let v = c.get();
            c.add(v.wrapping_neg());
        }
    }
}

/// The SR counters of one worker.
pub struct SrCounters {
    localsids: Box<[SrCounter]>,
    returns: Box<[SrCounter]>,
    policies: Box<[SrCounter]>,
    none: SrCounter,
}

impl Default for SrCounters {
    fn default() -> Self {
        SrCounters {
            localsids: (0..MAX_LOCALSIDS).map(|_| SrCounter::default()).collect(),
            returns: (0..MAX_LOCALSIDS).map(|_| SrCounter::default()).collect(),
            policies: (0..MAX_POLICIES).map(|_| SrCounter::default()).collect(),
            none: SrCounter::default(),
        }
    }
}

impl std::fmt::Debug for SrCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrCounters").finish_non_exhaustive()
    }
}

impl SrCounters {
    /// Local SID `index`'s counters (a shared dummy beyond the table, so
    /// callers never branch).
    #[inline(always)]
    pub fn localsid(&self, index: u32) -> &SrCounter {
        self.localsids.get(index as usize).unwrap_or(&self.none)
    }

    /// SR proxy SID `index`'s counters of the traffic back from its
    /// service function.
    #[inline(always)]
    pub fn proxy_return(&self, index: u32) -> &SrCounter {
        self.returns.get(index as usize).unwrap_or(&self.none)
    }

    /// Policy `index`'s counters.
    #[inline(always)]
    pub fn policy(&self, index: u32) -> &SrCounter {
        self.policies.get(index as usize).unwrap_or(&self.none)
    }

    /// Zeroes local SID `index`'s counters. Only the owning worker may call
    /// this (it writes like a count), e.g. from a worker command before
    /// the index is given to a new SID.
    pub fn clear_localsid(&self, index: u32) {
        self.localsid(index).clear();
        self.proxy_return(index).clear();
    }

    /// Zeroes policy `index`'s counters (owning worker only).
    pub fn clear_policy(&self, index: u32) {
        self.policy(index).clear();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn count_and_clear() {
        let c = super::SrCounters::default();
        c.localsid(7).pass(100);
        c.localsid(7).pass(50);
        c.localsid(7).drop();
        c.policy(1).pass(10);
        c.localsid(u32::MAX).pass(1);
        assert_eq!(c.localsid(7).get(), (2, 150, 1));
        assert_eq!(c.policy(1).get(), (1, 10, 0));
        c.clear_localsid(7);
        assert_eq!(c.localsid(7).get(), (0, 0, 0));
        assert_eq!(c.policy(1).get(), (1, 10, 0));
    }
}
