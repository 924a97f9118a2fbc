//! The neighbor table (ARP for IPv4, neighbor discovery for IPv6): who is
//! at which MAC address on which interface.
//!
//! # API (stable: the IPv6 nodes and the control plane build on it)
//!
//! Methods of [`FibControl`](super::fib::FibControl) (get it with
//! `tables.fib.try_control()` on a worker, `fib.control()` elsewhere):
//!
//! ```text
//! learn_neighbor(sw_if, IpAddr, MacAddr, now: u64, create: bool) -> Result<NeighborChange, IpFibError>
//!     dynamic entry heard from at TSC time `now`; with `create` false only
//!     an existing entry is updated (RFC 826 "merge"; NDP's unsolicited
//!     advertisements); a static entry is never changed by learning
//! add_static_neighbor(sw_if, IpAddr, MacAddr) -> Result<NeighborChange, IpFibError>
//! remove_neighbor(sw_if, IpAddr) -> Result<bool, IpFibError>
//! flush_neighbors(sw_if) -> usize
//! age_neighbors(now: u64) -> usize      dynamic entries older than the
//!                                      configured max age are removed
//! neighbor(sw_if, IpAddr) -> Option<Neighbor>,  neighbors() -> Vec<Neighbor>
//! ```
//!
//! When a neighbor is learned, its adjacency (the neighbor adjacency of
//! `(sw_if, addr)` that routes via it share) becomes `Rewrite` with
//! destination MAC, the interface's MAC, VLAN tags and ethertype, in place;
//! and its host route (/32, /128, `RouteSource::Neighbor`, the weakest
//! source) is installed in the interface's VRF, so packets to it stop
//! gleaning. A MAC change rewrites the adjacency in place. When it goes
//! (removed, aged, flushed), the host route is withdrawn and the adjacency,
//! if routes still use it, goes back to `Incomplete` (ARP/ND again).
//!
//! Our own addresses are never learned (`IpFibError::OwnAddress`), nor
//! multicast, broadcast or zero MACs; the table holds at most
//! `IpFibConfig::max_neighbors` entries.
//!
//! Aging is driven by the control plane (`age_neighbors` every few
//! seconds with `vswitch_packet::clock::now()`). There is no probing: an
//! entry that ages out while traffic still flows is resolved again by the
//! data path (glean), with its packets held, not dropped, meanwhile.

use super::fib::{host_prefix, AdjKey, FibControl, IpFibError, RoutePath, RouteSource};
use crate::SwIf;
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use vswitch_wire::MacAddr;

/// How an entry came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeighborKind {
    /// Learned from ARP/ND; ages out.
    Dynamic,
    /// Configured; never ages, never overwritten by learning.
    Static,
}

/// One neighbor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbor {
    /// Interface it is on.
    pub sw_if: SwIf,
    /// Its address.
    pub ip: IpAddr,
    /// Its MAC address.
    pub mac: MacAddr,
    /// Dynamic or static.
    pub kind: NeighborKind,
    /// TSC time it was last heard from (or configured).
    pub updated: u64,
}

/// What a learn or add did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeighborChange {
    /// A new entry (its adjacency and host route are in place).
    Created,
    /// An existing entry got a new MAC.
    Changed,
    /// An existing entry was heard from again, same MAC.
    Refreshed,
    /// Nothing done: not known and `create` was false, or a static entry.
    Ignored,
}

/// The entries, by (interface, address).
#[derive(Clone, Debug, Default)]
pub struct NeighborTable {
    map: FxHashMap<(SwIf, IpAddr), Neighbor>,
}

impl NeighborTable {
    /// An entry.
    pub fn get(&self, sw_if: SwIf, ip: IpAddr) -> Option<&Neighbor> {
        self.map.get(&(sw_if, ip))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl FibControl {
    /// Records that `ip` on `sw_if` is at `mac` (heard at TSC time `now`).
    pub fn learn_neighbor(
        &mut self,
        sw_if: SwIf,
        ip: IpAddr,
        mac: MacAddr,
        now: u64,
        create: bool,
    ) -> Result<NeighborChange, IpFibError> {
        self.set_neighbor(sw_if, ip, mac, now, create, super::neighbor::NeighborKind::Dynamic)
    }

    /// Adds or replaces a static entry.
    pub fn add_static_neighbor(&mut self, sw_if: SwIf, ip: IpAddr, mac: MacAddr) -> Result<NeighborChange, IpFibError> {
        self.set_neighbor(sw_if, ip, mac, vswitch_packet::clock::now(), true, NeighborKind::Static)
    }

    fn set_neighbor(
        &mut self,
        sw_if: SwIf,
        ip: IpAddr,
        mac: MacAddr,
        now: u64,
        create: bool,
        kind: NeighborKind,
    ) -> Result<NeighborChange, IpFibError> {
        let vrf = self.interface_vrf(sw_if).ok_or(IpFibError::NotRoutedInterface(sw_if))?;
        if mac.is_multicast() || mac.is_zero() {
            return Err(IpFibError::BadMac(mac));
        }
        if self.is_local_address(vrf, ip) {
            return Err(IpFibError::OwnAddress(ip));
        }
        let change = match self.neighbors.map.get_mut(&(sw_if, ip)) {
            Some(n) if n.kind == NeighborKind::Static && kind == NeighborKind::Dynamic => {
                return Ok(NeighborChange::Ignored)
            }
            Some(n) if n.mac == mac => {
                n.updated = now;
                n.kind = kind;
                return Ok(NeighborChange::Refreshed);
            }
            Some(n) => {
                n.mac = mac;
                n.updated = now;
                n.kind = kind;
                NeighborChange::Changed
            }
            None if !create => return Ok(NeighborChange::Ignored),
            None => {
                if self.neighbors.map.len() >= self.max_neighbors {
                    return Err(IpFibError::NeighborTableFull { max: self.max_neighbors });
                }
                self.neighbors.map.insert((sw_if, ip), Neighbor { sw_if, ip, mac, kind, updated: now });
                NeighborChange::Created
            }
        };
        // The adjacency routes share changes in place (incomplete -> rewrite,
        // or the new MAC), then the host route goes in.
        if let Err(e) = self.rebuild_adjacencies(|k| *k == AdjKey::Nbr { sw_if, addr: ip }) {
            if change == NeighborChange::Created {
                self.neighbors.map.remove(&(sw_if, ip));
            }
            return Err(e);
        }
        if change == NeighborChange::Created {
            let r = self.set_route_source(vrf, host_prefix(ip), RouteSource::Neighbor, vec![RoutePath::via(ip, sw_if)]);
            if let Err(e) = r {
                self.neighbors.map.remove(&(sw_if, ip));
                let _ = self.rebuild_adjacencies(|k| *k == AdjKey::Nbr { sw_if, addr: ip });
                return Err(e);
            }
        }
        Ok(change)
    }

    /// Removes an entry; `false` if there was none.
    pub fn remove_neighbor(&mut self, sw_if: SwIf, ip: IpAddr) -> Result<bool, IpFibError> {
        if self.neighbors.map.remove(&(sw_if, ip)).is_none() {
            return Ok(false);
        }
        if let Some(vrf) = self.interface_vrf(sw_if) {
            self.set_route_source(vrf, host_prefix(ip), RouteSource::Neighbor, Vec::new())?;
        }
        self.rebuild_adjacencies(|k| *k == AdjKey::Nbr { sw_if, addr: ip })?;
        Ok(true)
    }

    /// Removes every entry on an interface; returns how many.
    pub fn flush_neighbors(&mut self, sw_if: SwIf) -> usize {
        let ips: Vec<IpAddr> = self.neighbors.map.keys().filter(|(s, _)| *s == sw_if).map(|(_, ip)| *ip).collect();
        ips.iter().filter(|ip| self.remove_neighbor(sw_if, **ip).unwrap_or(false)).count()
    }

    /// Removes dynamic entries not heard from for the configured maximum
    /// age as of TSC time `now`; returns how many.
    pub fn age_neighbors(&mut self, now: u64) -> usize {
        let max = self.max_age_ticks;
        let old: Vec<(SwIf, IpAddr)> = self
            .neighbors
            .map
            .values()
            .filter(|n| n.kind == NeighborKind::Dynamic && now.saturating_sub(n.updated) > max)
            .map(|n| (n.sw_if, n.ip))
            .collect();
        old.iter().filter(|(s, ip)| self.remove_neighbor(*s, *ip).unwrap_or(false)).count()
    }

    /// One entry.
    pub fn neighbor(&self, sw_if: SwIf, ip: IpAddr) -> Option<Neighbor> {
        self.neighbors.get(sw_if, ip).copied()
    }

    /// Every entry, by interface and address.
    pub fn neighbors(&self) -> Vec<Neighbor> {
        let mut v: Vec<Neighbor> = self.neighbors.map.values().copied().collect();
        v.sort_by_key(|n| (n.sw_if, n.ip));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip::fib::{IpFib, IpFibConfig};
    use crate::{IfMode, Interface, Tables};
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;
    use vswitch_fib::adj::AdjKind;

    fn setup() -> std::sync::Arc<IpFib> {
        let mut t = Tables::default();
        let mut a = Interface::port(1, "a", 0, MacAddr([2, 0, 0, 0, 0, 1]), IfMode::L3 { vrf: 0 });
        a.ip4 = vec![(Ipv4Addr::new(10, 0, 1, 1), 24)];
        a.ip6 = vec![("2001:db8::1".parse().unwrap(), 64)];
        t.set_interface(a);
        let cfg = IpFibConfig { neighbor_max_age: Duration::from_secs(1), ..IpFibConfig::small() };
        let fib = IpFib::new(cfg).unwrap();
        fib.control().sync_interfaces(&t).unwrap();
        fib
    }

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x42]);

    #[test]
    fn learning_resolves_routes_in_place_and_forgetting_unresolves() {
        let fib = setup();
        let nh = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 2));
        let mut c = fib.control();
        c.add_route(0, "0.0.0.0/0".parse().unwrap(), &[RoutePath::via(nh, 1)]).unwrap();
        let adj = c.route(0, "0.0.0.0/0".parse().unwrap()).unwrap().adjs[0];
        assert_eq!(fib.adj(adj).kind, AdjKind::Incomplete);
        assert_eq!(fib.adj(fib.resolve4(0, 0x0a00_0102, 0).unwrap()).kind, AdjKind::Glean);
        assert_eq!(c.learn_neighbor(1, nh, MAC, 5, false).unwrap(), NeighborChange::Ignored);
        assert_eq!(c.learn_neighbor(1, nh, MAC, 5, true).unwrap(), NeighborChange::Created);
        let a = fib.adj(adj);
        assert_eq!(a.kind, AdjKind::Rewrite);
        assert_eq!(a.rewrite_bytes(), &[2, 0, 0, 0, 0, 0x42, 2, 0, 0, 0, 0, 1, 8, 0]);
        assert_eq!(fib.resolve4(0, 0x0a00_0102, 0), Some(adj), "host route shares the adjacency");
        assert_eq!(c.learn_neighbor(1, nh, MAC, 6, true).unwrap(), NeighborChange::Refreshed);
        let mac2 = MacAddr([2, 0, 0, 0, 0, 0x43]);
        assert_eq!(c.learn_neighbor(1, nh, mac2, 7, false).unwrap(), NeighborChange::Changed);
        assert_eq!(&fib.adj(adj).rewrite_bytes()[..6], &mac2.0);
        assert!(c.remove_neighbor(1, nh).unwrap());
        assert_eq!(fib.adj(adj).kind, AdjKind::Incomplete, "route still there, adjacency unresolved");
        assert_eq!(fib.adj(fib.resolve4(0, 0x0a00_0102, 0).unwrap()).kind, AdjKind::Glean, "host route gone");
        assert!(!c.remove_neighbor(1, nh).unwrap());
    }

    #[test]
    fn refusals_static_entries_and_aging() {
        let fib = setup();
        let mut c = fib.control();
        let own = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1));
        assert_eq!(c.learn_neighbor(1, own, MAC, 0, true), Err(IpFibError::OwnAddress(own)));
        let nh = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 3));
        assert_eq!(c.learn_neighbor(1, nh, MacAddr::BROADCAST, 0, true), Err(IpFibError::BadMac(MacAddr::BROADCAST)));
        assert_eq!(c.learn_neighbor(7, nh, MAC, 0, true), Err(IpFibError::NotRoutedInterface(7)));
        let v6 = IpAddr::V6("2001:db8::5".parse::<Ipv6Addr>().unwrap());
        assert_eq!(c.learn_neighbor(1, v6, MAC, 0, true).unwrap(), NeighborChange::Created);
        let a = fib.adj(fib.resolve6(0, u128::from("2001:db8::5".parse::<Ipv6Addr>().unwrap()), 0).unwrap());
        assert_eq!((a.kind, &a.rewrite_bytes()[12..]), (AdjKind::Rewrite, &[0x86, 0xdd][..]));
        let st = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 4));
        c.add_static_neighbor(1, st, MAC).unwrap();
        assert_eq!(c.learn_neighbor(1, st, MacAddr([2, 9, 9, 9, 9, 9]), 0, true).unwrap(), NeighborChange::Ignored);
        let hz = vswitch_packet::clock::ticks_per_second();
        assert_eq!(c.age_neighbors(hz / 2), 0);
        let later = vswitch_packet::clock::now() + 2 * hz;
        assert_eq!(c.age_neighbors(later), 1, "the dynamic IPv6 entry, not the static one");
        assert_eq!(c.neighbors().len(), 1);
        assert_eq!(c.flush_neighbors(1), 1);
        assert!(c.neighbors().is_empty());
    }
}
