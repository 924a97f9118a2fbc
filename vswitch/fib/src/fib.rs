//! Per-VRF tables plus the shared adjacency and load-balance tables.
//!
//! [`Fib`] is the control-plane owner (all writers). [`FibTables`] is what
//! the workers hold (`Arc<FibTables>`): lookups by dense VRF index, the
//! adjacency table and the load-balance table, all `&self`.
//!
//! VRF tables are created by [`Fib::add_vrf`] into a fixed array of
//! `OnceLock`s sized by [`FibConfig::max_vrfs`]: adding a VRF never moves an
//! existing table, and a worker's `ip4(vrf)` is a bounds check plus one load.
//! A VRF cannot be deleted (its table slot is write-once); [`Fib::flush_vrf`]
//! removes all its routes.

use std::sync::{Arc, Mutex, OnceLock};

use crate::adj::{AdjConfig, AdjTable, AdjWriter, Adjacency};
use crate::ip4::{Ip4LpmConfig, Ip4LpmWriter, Ip4Table};
use crate::ip6::{Ip6LpmConfig, Ip6LpmWriter, Ip6Table};
use crate::lb::{LbConfig, LbTable, LbWriter, Path};
use crate::quiesce::{Quiescence, ReaderHandle};
use crate::FibError;

/// Default maximum number of VRFs.
pub const DEFAULT_MAX_VRFS: u32 = 256;
/// Upper bound for [`FibConfig::max_vrfs`].
pub const MAX_VRFS_LIMIT: u32 = 1 << 20;

/// Sizing of a whole FIB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FibConfig {
    /// VRF indices are `0..max_vrfs` (default 256; VRF 0 always exists).
    pub max_vrfs: u32,
    /// Per-VRF IPv4 table sizing.
    pub ip4: Ip4LpmConfig,
    /// Per-VRF IPv6 table sizing.
    pub ip6: Ip6LpmConfig,
    /// Adjacency table sizing (shared by all VRFs).
    pub adj: AdjConfig,
    /// Load-balance table sizing (shared by all VRFs).
    pub lb: LbConfig,
}

impl Default for FibConfig {
    /// [`DEFAULT_MAX_VRFS`] VRFs and each table's default sizes.
    fn default() -> Self {
        FibConfig {
            max_vrfs: DEFAULT_MAX_VRFS,
            ip4: Ip4LpmConfig::default(),
            ip6: Ip6LpmConfig::default(),
            adj: AdjConfig::default(),
            lb: LbConfig::default(),
        }
    }
}

impl FibConfig {
    /// The default sizes with `max_vrfs` VRFs.
    pub fn with_max_vrfs(max_vrfs: u32) -> Self {
        Self { max_vrfs, ..Self::default() }
    }
}

/// What the workers read. Cheap to share (`Arc`), all lookups `&self`.
pub struct FibTables {
    ip4: Box<[OnceLock<Arc<Ip4Table>>]>,
    ip6: Box<[OnceLock<Arc<Ip6Table>>]>,
    adj: Arc<AdjTable>,
    lb: Arc<LbTable>,
}

impl std::fmt::Debug for FibTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FibTables").field("max_vrfs", &self.ip4.len()).finish_non_exhaustive()
    }
}

impl FibTables {
    /// The IPv4 table of `vrf`, if that VRF exists.
    #[inline]
    pub fn ip4(&self, vrf: u32) -> Option<&Ip4Table> {
        self.ip4.get(vrf as usize)?.get().map(|t| &**t)
    }

    /// The IPv6 table of `vrf`, if that VRF exists.
    #[inline]
    pub fn ip6(&self, vrf: u32) -> Option<&Ip6Table> {
        self.ip6.get(vrf as usize)?.get().map(|t| &**t)
    }

    /// The adjacency table.
    #[inline]
    pub fn adj(&self) -> &AdjTable {
        &self.adj
    }

    /// The load-balance table.
    #[inline]
    pub fn lb(&self) -> &LbTable {
        &self.lb
    }

    /// IPv4 route lookup in `vrf`: the load-balance index, if any route (and
    /// the VRF) exists.
    #[inline]
    pub fn lookup4(&self, vrf: u32, addr: u32) -> Option<u32> {
        self.ip4(vrf)?.lookup(addr)
    }

    /// IPv6 route lookup in `vrf`.
    #[inline]
    pub fn lookup6(&self, vrf: u32, addr: u128) -> Option<u32> {
        self.ip6(vrf)?.lookup(addr)
    }

    /// Full IPv4 forwarding decision: route → load-balance → adjacency index
    /// for this flow hash. `None` if there is no route.
    #[inline]
    pub fn resolve4(&self, vrf: u32, addr: u32, flow_hash: u32) -> Option<u32> {
        Some(self.lb.choose(self.lookup4(vrf, addr)?, flow_hash))
    }

    /// Full IPv6 forwarding decision (see [`Self::resolve4`]).
    #[inline]
    pub fn resolve6(&self, vrf: u32, addr: u128, flow_hash: u32) -> Option<u32> {
        Some(self.lb.choose(self.lookup6(vrf, addr)?, flow_hash))
    }

    /// Number of VRF slots.
    pub fn max_vrfs(&self) -> u32 {
        self.ip4.len() as u32
    }
}

/// The control-plane side: owns every writer.
pub struct Fib {
    config: FibConfig,
    q: Arc<Quiescence>,
    tables: Arc<FibTables>,
    ip4: Vec<Option<Ip4LpmWriter>>,
    ip6: Vec<Option<Ip6LpmWriter>>,
    adj: Arc<Mutex<AdjWriter>>,
    lb: LbWriter,
}

impl std::fmt::Debug for Fib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fib")
            .field("config", &self.config)
            .field("vrfs", &self.vrfs().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Fib {
    /// Adjacency created by [`Fib::new`] at index 0: drop.
    pub const DROP_ADJ: u32 = 0;
    /// Load-balance object created by [`Fib::new`] at index 0: a single path
    /// to [`Fib::DROP_ADJ`]. Point a route at it to blackhole it.
    pub const DROP_LB: u32 = 0;

    /// A FIB with VRF 0, the drop adjacency and the drop load-balance.
    pub fn new(config: FibConfig) -> Result<Self, FibError> {
        if config.max_vrfs == 0 || config.max_vrfs > MAX_VRFS_LIMIT {
            return Err(FibError::InvalidConfig { what: "max_vrfs must be in 1..=2^20" });
        }
        let q = Quiescence::new();
        let mut adj = AdjWriter::new(config.adj, Arc::clone(&q))?;
        let mut lb = LbWriter::new(config.lb, Arc::clone(&q))?;
        let drop_adj = adj.add(Adjacency::DROP)?;
        let drop_lb = lb.add(&[Path::new(drop_adj, 1)])?;
        debug_assert_eq!((drop_adj, drop_lb), (Self::DROP_ADJ, Self::DROP_LB));
        let n = config.max_vrfs as usize;
        let tables = Arc::new(FibTables {
            ip4: (0..n).map(|_| OnceLock::new()).collect(),
            ip6: (0..n).map(|_| OnceLock::new()).collect(),
            adj: Arc::clone(adj.table()),
            lb: Arc::clone(lb.table()),
        });
        let mut fib = Self {
            config,
            q,
            tables,
            ip4: (0..n).map(|_| None).collect(),
            ip6: (0..n).map(|_| None).collect(),
            adj: Arc::new(Mutex::new(adj)),
            lb,
        };
        fib.add_vrf(0)?;
        Ok(fib)
    }

    /// The reader view; clone the `Arc` for each worker.
    pub fn tables(&self) -> &Arc<FibTables> {
        &self.tables
    }

    /// The grace-period domain shared by all tables of this FIB.
    pub fn quiescence(&self) -> &Arc<Quiescence> {
        &self.q
    }

    /// Registers a worker as a reader (see [`crate::quiesce`]).
    pub fn register_reader(&self) -> ReaderHandle {
        self.q.register_reader()
    }

    pub fn config(&self) -> &FibConfig {
        &self.config
    }

    fn check_vrf(&self, vrf: u32) -> Result<usize, FibError> {
        if vrf >= self.config.max_vrfs {
            return Err(FibError::VrfOutOfRange { vrf, max_vrfs: self.config.max_vrfs });
        }
        Ok(vrf as usize)
    }

    /// Creates the IPv4 and IPv6 tables of `vrf`. Returns `false` if it
    /// already existed (nothing changes).
    pub fn add_vrf(&mut self, vrf: u32) -> Result<bool, FibError> {
        let i = self.check_vrf(vrf)?;
        if self.ip4[i].is_some() {
            return Ok(false);
        }
        let w4 = Ip4LpmWriter::new(self.config.ip4, Arc::clone(&self.q))?;
        let w6 = Ip6LpmWriter::new(self.config.ip6, Arc::clone(&self.q))?;
        // Slots of a VRF that was never added are empty, so set() succeeds.
        let _ = self.tables.ip4[i].set(Arc::clone(w4.table()));
        let _ = self.tables.ip6[i].set(Arc::clone(w6.table()));
        self.ip4[i] = Some(w4);
        self.ip6[i] = Some(w6);
        Ok(true)
    }

    /// Whether `vrf` exists.
    pub fn has_vrf(&self, vrf: u32) -> bool {
        self.ip4.get(vrf as usize).is_some_and(|w| w.is_some())
    }

    /// The existing VRF indices, ascending.
    pub fn vrfs(&self) -> impl Iterator<Item = u32> + '_ {
        self.ip4.iter().enumerate().filter(|(_, w)| w.is_some()).map(|(i, _)| i as u32)
    }

    /// Removes every IPv4 and IPv6 route of `vrf` (the VRF stays).
    pub fn flush_vrf(&mut self, vrf: u32) -> Result<(), FibError> {
        self.ip4_mut(vrf)?.clear();
        self.ip6_mut(vrf)?.clear();
        Ok(())
    }

    /// The IPv4 writer of `vrf`.
    pub fn ip4_mut(&mut self, vrf: u32) -> Result<&mut Ip4LpmWriter, FibError> {
        let i = self.check_vrf(vrf)?;
        self.ip4[i].as_mut().ok_or(FibError::NoSuchVrf { vrf })
    }

    /// The IPv6 writer of `vrf`.
    pub fn ip6_mut(&mut self, vrf: u32) -> Result<&mut Ip6LpmWriter, FibError> {
        let i = self.check_vrf(vrf)?;
        self.ip6[i].as_mut().ok_or(FibError::NoSuchVrf { vrf })
    }

    /// Read access to the IPv4 writer (RIB, stats) of `vrf`.
    pub fn ip4(&self, vrf: u32) -> Result<&Ip4LpmWriter, FibError> {
        let i = self.check_vrf(vrf)?;
        self.ip4[i].as_ref().ok_or(FibError::NoSuchVrf { vrf })
    }

    /// Read access to the IPv6 writer of `vrf`.
    pub fn ip6(&self, vrf: u32) -> Result<&Ip6LpmWriter, FibError> {
        let i = self.check_vrf(vrf)?;
        self.ip6[i].as_ref().ok_or(FibError::NoSuchVrf { vrf })
    }

    /// The adjacency writer, shareable with workers that resolve ARP/ND on
    /// the slow path.
    pub fn adj_writer(&self) -> &Arc<Mutex<AdjWriter>> {
        &self.adj
    }

    /// The load-balance writer.
    pub fn lb_mut(&mut self) -> &mut LbWriter {
        &mut self.lb
    }

    /// Read access to the load-balance writer.
    pub fn lb(&self) -> &LbWriter {
        &self.lb
    }

    /// Reclaims quarantined memory in every table; returns how many items.
    pub fn reclaim(&mut self) -> usize {
        let mut n = 0;
        for w in self.ip4.iter_mut().flatten() {
            n += w.reclaim();
        }
        for w in self.ip6.iter_mut().flatten() {
            n += w.reclaim();
        }
        n += self.adj.lock().unwrap_or_else(|e| e.into_inner()).reclaim();
        n + self.lb.reclaim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adj::AdjKind;
    use crate::lb::INVALID_ADJ;

    fn small() -> FibConfig {
        FibConfig {
            max_vrfs: 4,
            ip4: Ip4LpmConfig { max_tbl8_groups: 16 },
            ip6: Ip6LpmConfig { l0_bits: 16, max_groups: 16, max_records: 16 },
            adj: AdjConfig { max_adjacencies: 64 },
            lb: LbConfig { max_lbs: 64, max_buckets: 256 },
        }
    }

    #[test]
    fn vrfs_are_separate_and_stable() {
        let mut fib = Fib::new(small()).unwrap();
        let t = Arc::clone(fib.tables());
        assert!(fib.has_vrf(0));
        assert!(t.ip4(0).is_some() && t.ip6(0).is_some());
        assert!(t.ip4(1).is_none());
        assert_eq!(t.ip4(99).map(|_| ()), None);
        assert_eq!(fib.ip4_mut(1).unwrap_err(), FibError::NoSuchVrf { vrf: 1 });
        assert_eq!(fib.add_vrf(4).unwrap_err(), FibError::VrfOutOfRange { vrf: 4, max_vrfs: 4 });
        let before: *const Ip4Table = t.ip4(0).unwrap();
        assert!(fib.add_vrf(2).unwrap());
        assert!(!fib.add_vrf(2).unwrap());
        assert_eq!(fib.vrfs().collect::<Vec<_>>(), vec![0, 2]);
        assert!(std::ptr::eq(before, t.ip4(0).unwrap()), "VRF 0 did not move");
        fib.ip4_mut(0).unwrap().insert("10.0.0.0/8".parse().unwrap(), 1).unwrap();
        fib.ip4_mut(2).unwrap().insert("10.0.0.0/8".parse().unwrap(), 2).unwrap();
        fib.ip6_mut(2).unwrap().insert("2001:db8::/32".parse().unwrap(), 3).unwrap();
        assert_eq!(t.lookup4(0, 0x0a00_0001), Some(1));
        assert_eq!(t.lookup4(2, 0x0a00_0001), Some(2));
        assert_eq!(t.lookup4(1, 0x0a00_0001), None);
        assert_eq!(t.lookup6(2, 0x2001_0db8 << 96), Some(3));
        assert_eq!(t.lookup6(0, 0x2001_0db8 << 96), None);
        fib.flush_vrf(2).unwrap();
        assert_eq!(t.lookup4(2, 0x0a00_0001), None);
        assert_eq!(t.lookup6(2, 0x2001_0db8 << 96), None);
        assert_eq!(t.lookup4(0, 0x0a00_0001), Some(1));
        assert!(Fib::new(FibConfig::with_max_vrfs(0)).is_err());
    }

    #[test]
    fn route_to_adjacency_end_to_end() {
        let mut fib = Fib::new(small()).unwrap();
        let t = Arc::clone(fib.tables());
        assert_eq!(t.adj().get(Fib::DROP_ADJ).kind, AdjKind::Drop);
        assert_eq!(t.lb().choose(Fib::DROP_LB, 5), Fib::DROP_ADJ);
        let (a1, a2) = {
            let mut aw = fib.adj_writer().lock().unwrap();
            (
                aw.add(Adjacency::with_rewrite(1, 1500, &[1; 14]).unwrap()).unwrap(),
                aw.add(Adjacency::with_rewrite(2, 1500, &[2; 14]).unwrap()).unwrap(),
            )
        };
        let lb = fib.lb_mut().add(&[Path::new(a1, 1), Path::new(a2, 1)]).unwrap();
        fib.ip4_mut(0).unwrap().insert("192.0.2.0/24".parse().unwrap(), lb).unwrap();
        fib.ip4_mut(0).unwrap().insert("192.0.2.128/25".parse().unwrap(), Fib::DROP_LB).unwrap();
        let mut seen = [false; 2];
        for h in 0..8 {
            let adj = t.resolve4(0, 0xc000_0201, h).unwrap();
            assert!(adj == a1 || adj == a2);
            seen[(adj == a2) as usize] = true;
            assert_eq!(t.adj().get(adj).kind, AdjKind::Rewrite);
        }
        assert_eq!(seen, [true, true]);
        assert_eq!(t.resolve4(0, 0xc000_0281, 0), Some(Fib::DROP_ADJ));
        assert_eq!(t.resolve4(0, 0xc000_0301, 0), None);
        assert_eq!(t.resolve4(3, 0xc000_0201, 0), None);
        assert_eq!(t.lb().choose(63, 0), INVALID_ADJ);
        assert_eq!(t.adj().get(INVALID_ADJ), Adjacency::DROP);
        fib.ip6_mut(0).unwrap().insert("::/0".parse().unwrap(), lb).unwrap();
        assert!(t.resolve6(0, 1, 0).is_some());
        let _reader = fib.register_reader();
        assert_eq!(fib.quiescence().reader_count(), 1);
        fib.reclaim();
    }
}

#[cfg(test)]
mod default_config_tests {
    #[test]
    fn the_default_config_builds_a_fib() {
        let c = super::FibConfig::default();
        assert_eq!(c.max_vrfs, super::DEFAULT_MAX_VRFS);
        assert!(super::Fib::new(c).is_ok());
    }
}
