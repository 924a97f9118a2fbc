//! Packets held while their next hop is being resolved (ARP for IPv4,
//! neighbor discovery for IPv6), one bounded queue per worker and family.
//!
//! A packet that reaches a glean or incomplete adjacency is held under its
//! [`HoldKey`] (VRF, interface, next-hop address) — at most
//! `per_neighbor` packets per key and `max_neighbors` keys — and the
//! caller is told whether to send a resolution request now: the first
//! packet for a key asks, later ones only once `probe_interval` has passed
//! since the last request (so a stream towards a dead neighbor sends at
//! most ten requests a second, not one per packet).
//!
//! [`HoldQueue::service`] walks the queue: keys that the caller's
//! `resolved` check now finds resolved release their packets (to be sent
//! through the family's lookup again), packets held longer than `hold`
//! are freed, and keys with no packet and no recent request are forgotten.
//! Both the glean node and the neighbor input node (arp-input, ip6-nd)
//! call it each time they run, and the worker loop may call it when idle;
//! a packet is therefore never held much past `hold`, and every packet the
//! queue took is either released, freed on expiry, or freed by
//! [`HoldQueue::clear`]. The queue never allocates after construction.

use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::time::Duration;
use vswitch_packet::{Buffers, PacketId};

/// Most packets held per next hop (the hard limit for `per_neighbor`).
pub const MAX_PER_NEIGHBOR: usize = 8;

/// Whose resolution a packet waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HoldKey {
    /// VRF of the route that led to the unresolved adjacency.
    pub vrf: u32,
    /// Interface the next hop is on.
    pub sw_if: u32,
    /// The next hop (the destination itself for a glean adjacency).
    pub next_hop: IpAddr,
}

/// Limits and timers of a hold queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldConfig {
    /// Next hops tracked at most.
    pub max_neighbors: usize,
    /// Packets held per next hop (1..=[`MAX_PER_NEIGHBOR`]).
    pub per_neighbor: usize,
    /// How long a packet is held before it is dropped.
    pub hold: Duration,
    /// Least time between two resolution requests for one next hop.
    pub probe_interval: Duration,
}

impl Default for HoldConfig {
    fn default() -> Self {
        HoldConfig {
            max_neighbors: 256,
            per_neighbor: 4,
            hold: Duration::from_secs(1),
            probe_interval: Duration::from_millis(100),
        }
    }
}

/// What happened to a packet offered to [`HoldQueue::hold`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Held; send a resolution request when `request` is true.
    Held {
        /// A request is due (first packet, or the probe interval passed).
        request: bool,
    },
    /// Not held (this next hop already has `per_neighbor` packets): the
    /// caller drops it. A request may still be due.
    NeighborFull {
        /// A request is due.
        request: bool,
    },
    /// Not held and no request: `max_neighbors` next hops are pending.
    TableFull,
}

/// What [`HoldQueue::service`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Serviced {
    /// Packets released (appended to the caller's vector).
    pub released: usize,
    /// Packets freed because they were held too long.
    pub expired: usize,
}

#[derive(Clone, Copy)]
struct Group {
    last_request: u64,
    n: u8,
    /// (packet, when it was held).
    pkts: [(PacketId, u64); MAX_PER_NEIGHBOR],
}

/// One worker's held packets for one address family.
pub struct HoldQueue {
    groups: FxHashMap<HoldKey, Group>,
    config: HoldConfig,
    hold_ticks: u64,
    probe_ticks: u64,
    ticks_per_second: u64,
    held: usize,
}

impl std::fmt::Debug for HoldQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoldQueue").field("neighbors", &self.groups.len()).field("held", &self.held).finish()
    }
}

impl Default for HoldQueue {
    fn default() -> Self {
        HoldQueue::new(HoldConfig::default())
    }
}

fn ticks(d: Duration, hz: u64) -> u64 {
    (d.as_nanos().saturating_mul(hz as u128) / 1_000_000_000).min(u64::MAX as u128) as u64
}

impl HoldQueue {
    /// An empty queue on the TSC clock.
    pub fn new(config: HoldConfig) -> HoldQueue {
        Self::with_clock(config, vswitch_packet::clock::ticks_per_second())
    }

    /// An empty queue on a clock of `ticks_per_second` (for tests).
    pub fn with_clock(config: HoldConfig, ticks_per_second: u64) -> HoldQueue {
        let mut q = HoldQueue {
            groups: FxHashMap::default(),
            config,
            hold_ticks: 0,
            probe_ticks: 0,
            ticks_per_second,
            held: 0,
        };
        q.set_config(config);
        q
    }

    /// Changes limits and timers; packets already held stay (a lower
    /// `per_neighbor` applies to new packets).
    pub fn set_config(&mut self, mut config: HoldConfig) {
        config.per_neighbor = config.per_neighbor.clamp(1, MAX_PER_NEIGHBOR);
        config.max_neighbors = config.max_neighbors.max(1);
        self.hold_ticks = ticks(config.hold, self.ticks_per_second);
        self.probe_ticks = ticks(config.probe_interval, self.ticks_per_second);
        if self.groups.capacity() < config.max_neighbors {
            self.groups.reserve(config.max_neighbors - self.groups.len());
        }
        self.config = config;
    }

    /// The limits and timers.
    pub fn config(&self) -> HoldConfig {
        self.config
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.held
    }

    /// Whether no packet is held.
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Next hops pending (with packets or a recent request).
    pub fn neighbors(&self) -> usize {
        self.groups.len()
    }

    /// Packets held for one next hop.
    pub fn held_for(&self, key: &HoldKey) -> usize {
        self.groups.get(key).map_or(0, |g| g.n as usize)
    }

    /// Offers packet `p` waiting for `key` at time `now`. On
    /// [`Hold::Held`] the queue owns the packet; otherwise the caller
    /// still does (and drops it).
    pub fn hold(&mut self, key: HoldKey, p: PacketId, now: u64) -> Hold {
        let full = self.groups.len() >= self.config.max_neighbors;
        let g = match self.groups.get_mut(&key) {
            Some(g) => g,
            None if full => return Hold::TableFull,
            None => {
                self.groups.insert(
                    key,
                    Group { last_request: now, n: 0, pkts: [(PacketId::from_index(0), 0); MAX_PER_NEIGHBOR] },
                );
                let g = self.groups.get_mut(&key).expect("just inserted");
                g.pkts[0] = (p, now);
                g.n = 1;
                self.held += 1;
                return Hold::Held { request: true };
            }
        };
        let request = now.saturating_sub(g.last_request) >= self.probe_ticks;
        if request {
            g.last_request = now;
        }
        if (g.n as usize) < self.config.per_neighbor {
            g.pkts[g.n as usize] = (p, now);
            g.n += 1;
            self.held += 1;
            Hold::Held { request }
        } else {
            Hold::NeighborFull { request }
        }
    }

    /// Releases the packets of resolved next hops into `released`, frees
    /// those held longer than the hold time, and forgets idle next hops.
    pub fn service(
        &mut self,
        now: u64,
        bufs: &mut Buffers,
        mut resolved: impl FnMut(&HoldKey) -> bool,
        released: &mut Vec<PacketId>,
    ) -> Serviced {
        let mut s = Serviced::default();
        if self.groups.is_empty() {
            return s;
        }
        let (hold, probe) = (self.hold_ticks, self.probe_ticks);
        self.groups.retain(|key, g| {
            if g.n > 0 && resolved(key) {
                released.extend(g.pkts[..g.n as usize].iter().map(|&(p, _)| p));
                s.released += g.n as usize;
                g.n = 0;
                // Resolved: nothing left to rate-limit.
                return false;
            }
            let mut kept = 0;
            for i in 0..g.n as usize {
                let (p, at) = g.pkts[i];
                if now.saturating_sub(at) >= hold {
                    bufs.free(p);
                    s.expired += 1;
                } else {
                    g.pkts[kept] = (p, at);
                    kept += 1;
                }
            }
            g.n = kept as u8;
            g.n > 0 || now.saturating_sub(g.last_request) < probe
        });
        self.held -= s.released + s.expired;
        s
    }

    /// Frees every held packet and forgets every next hop; returns how
    /// many packets were freed.
    pub fn clear(&mut self, bufs: &mut Buffers) -> usize {
        let mut n = 0;
        for (_, g) in self.groups.drain() {
            for &(p, _) in &g.pkts[..g.n as usize] {
                bufs.free(p);
                n += 1;
            }
        }
        self.held = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use vswitch_packet::{BufferPool, BufferPoolConfig};

    fn key(last: u8) -> HoldKey {
        HoldKey { vrf: 0, sw_if: 1, next_hop: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)) }
    }

    #[test]
    fn holds_rate_limits_releases_and_expires_without_leaking() {
        let pool =
            BufferPool::new(&BufferPoolConfig { buffers: 64, prefer_huge: false, ..Default::default() }).unwrap();
        let mut bufs = pool.worker();
        // 1000 ticks a second: hold 1000 ticks, probe every 100.
        let cfg = HoldConfig { max_neighbors: 2, per_neighbor: 2, ..Default::default() };
        let mut q = HoldQueue::with_clock(cfg, 1000);
        let mut pk = || bufs.alloc().unwrap();
        let (a, b, c, d, e) = (pk(), pk(), pk(), pk(), pk());
        assert_eq!(q.hold(key(1), a, 0), Hold::Held { request: true });
        assert_eq!(q.hold(key(1), b, 50), Hold::Held { request: false }, "within the probe interval");
        assert_eq!(q.hold(key(1), c, 100), Hold::NeighborFull { request: true });
        assert_eq!(q.hold(key(2), d, 100), Hold::Held { request: true });
        assert_eq!(q.hold(key(3), e, 100), Hold::TableFull);
        assert_eq!((q.len(), q.neighbors()), (3, 2));
        bufs.free(c);
        bufs.free(e);
        let mut out = Vec::new();
        // Key 1 resolves: both its packets come back in order.
        let s = q.service(200, &mut bufs, |k| *k == key(1), &mut out);
        assert_eq!(s, Serviced { released: 2, expired: 0 });
        assert_eq!(out, vec![a, b]);
        assert_eq!(q.held_for(&key(1)), 0);
        // Key 2 never resolves: its packet is freed after the hold time,
        // and the key is forgotten once no request is recent.
        assert_eq!(q.service(1099, &mut bufs, |_| false, &mut out).expired, 0);
        assert_eq!(q.service(1100, &mut bufs, |_| false, &mut out).expired, 1);
        assert!(q.is_empty());
        assert_eq!(q.neighbors(), 0);
        bufs.free_bulk(&out);
        drop(bufs);
        assert_eq!(pool.available(), 64, "every held packet was released or freed");
    }

    #[test]
    fn clear_frees_everything() {
        let pool = BufferPool::new(&BufferPoolConfig { buffers: 8, prefer_huge: false, ..Default::default() }).unwrap();
        let mut bufs = pool.worker();
        let mut q = HoldQueue::with_clock(HoldConfig::default(), 1000);
        for i in 0..3 {
            let p = bufs.alloc().unwrap();
            assert!(matches!(q.hold(key(i), p, 0), Hold::Held { .. }));
        }
        assert_eq!(q.clear(&mut bufs), 3);
        drop(bufs);
        assert_eq!(pool.available(), 8);
    }
}
