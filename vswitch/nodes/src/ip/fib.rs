//! The IP forwarding information base as the nodes and the control plane
//! see it: a facade over `vswitch-fib` that turns routes with paths into
//! load-balance objects and adjacencies, derives the attached and local
//! routes from interface addresses, and keeps neighbor adjacencies in step
//! with the neighbor table ([`super::neighbor`]). IPv4 and IPv6 alike.
//!
//! # API (stable: the IPv6 nodes and the control plane build on it)
//!
//! ```text
//! IpFib                                    shared as Arc<IpFib>, in Tables::fib
//!   new(IpFibConfig) -> Result<Arc<IpFib>, IpFibError>
//!   control(&self) -> MutexGuard<FibControl>            control plane (blocks)
//!   try_control(&self) -> Option<MutexGuard<FibControl>> data path (never blocks)
//!   register_reader(&self) -> ReaderHandle    one per worker: quiescent() per loop
//!   tables(&self) -> &Arc<FibTables>
//!   -- data path reads, lock-free --
//!   lookup4(vrf, dst: u32) -> Option<u32>                 route -> load-balance
//!   lookup4_batch(vrf, &[u32], &mut [Option<u32>])
//!   lookup6(vrf, dst: u128) -> Option<u32>
//!   lookup6_batch(vrf, &[u128], &mut [Option<u32>])
//!   n_buckets(lb) -> usize                                1: no flow hash needed
//!   choose(lb, flow_hash) -> u32                          load-balance -> adjacency
//!   adj(adj) -> Adjacency                                 a consistent copy
//!   resolve4(vrf, dst: u32, flow_hash) -> Option<u32>     lookup + choose
//!   resolve6(vrf, dst: u128, flow_hash) -> Option<u32>
//!
//! FibControl                               everything that changes the FIB
//!   sync_interfaces(&Tables) -> Result<(), IpFibError>
//!       L3 interfaces (IfMode::L3 { vrf }): their MAC, VLAN tags and MTU
//!       (rewrites), and their addresses: a.b.c.d/n gives a local route
//!       a.b.c.d/32 (RouteSource::Local -> ip4-local) and, below /32, the
//!       attached route of its subnet (RouteSource::Connected, glean).
//!       Diffed against the previous call; call it after every interface
//!       change, before routes that use new interfaces.
//!   add_route(vrf, IpNet, &[RoutePath]) -> Result<(), IpFibError>  (Static)
//!   remove_route(vrf, IpNet) -> Result<bool, IpFibError>
//!   set_route_source(vrf, IpNet, RouteSource, Vec<RoutePath>) -> Result<(), IpFibError>
//!       (an empty path list removes that source)
//!   route(vrf, IpNet) -> Option<RouteInfo>,  routes() -> Vec<RouteInfo>
//!   hold_neighbor_adjacency(sw_if, IpAddr) -> Result<u32, _>, release_adjacency(adj)
//!       a reference on a neighbor adjacency outside any route (SRv6 End.X)
//!   interface_vrf(sw_if) -> Option<u32>,  is_local_address(vrf, IpAddr) -> bool
//!   add_vrf(vrf) -> Result<bool, IpFibError>   (routes create VRFs as needed)
//!   reclaim() -> usize,  fib() -> &Fib,  adjacency_count(), load_balance_count()
//!   neighbors: see super::neighbor (learn_neighbor, add_static_neighbor, ...)
//! ```
//!
//! # Model
//!
//! A prefix may be wanted by several sources at once; the best one is
//! installed, in this order: [`RouteSource::Local`] (our addresses),
//! [`RouteSource::Connected`] (interface subnets), [`RouteSource::Srv6`]
//! (local SIDs and steered prefixes), [`RouteSource::Static`]
//! (the control plane's routes), [`RouteSource::Neighbor`] (the /32 or
//! /128 host route of a resolved neighbor). Removing the best source
//! uncovers the next one.
//!
//! A path ([`RoutePath`]) resolves to an adjacency, shared by every route
//! that uses it and reference counted:
//! - `Via { addr, sw_if }`: the neighbor adjacency of `addr` on `sw_if`:
//!   `Rewrite` when the neighbor is resolved, `Incomplete` (ARP/ND on the
//!   data path) until then; it changes in place when the neighbor is
//!   learned, changes MAC or goes, so every route through it follows at
//!   once.
//! - `Attached { sw_if }`: destinations are on the link. For a subnet this
//!   is the interface's `Glean` adjacency (resolve the packet's own
//!   destination); for a host prefix (/32, /128, e.g. a pod) it is the
//!   neighbor adjacency of that address, as with `Via`.
//! - `Local`, `Drop`, `Punt`, `Unreachable`, `Prohibit`: shared special
//!   adjacencies (`Drop` is `vswitch-fib`'s permanent adjacency 0).
//! - `SrLocalSid`, `SrPolicy`: an adjacency of an SRv6 kind carrying the
//!   index of a local SID or a policy in the SR table ([`crate::srv6`]);
//!   ip6-lookup (and ip4-lookup for policies) hand the packet to the SR
//!   nodes with that index. They are installed with
//!   [`RouteSource::Srv6`].
//!
//! The paths of the installed source become a load-balance object (ECMP
//! over paths, UCMP by weight), shared by every route with the same
//! adjacencies and weights; the LPM entry of the prefix points at it. A
//! change is applied make-before-break: new adjacencies and load-balance
//! first, then the one LPM store, then the old ones are released (and
//! reused only after a grace period, see `vswitch_fib::quiesce`). A route
//! or neighbor operation that fails has changed nothing; `sync_interfaces`
//! applies its changes one route at a time, so when it fails (tables
//! full) the changes before the failure stay, and calling it again after
//! making room completes it.
//!
//! An adjacency whose interface is gone (or no longer routed) is turned
//! into a drop in place and rebuilt when the interface comes back.
//!
//! Workers must register a reader ([`IpFib::register_reader`]) and call
//! `quiescent()` at the top of every loop iteration, or memory the writer
//! retires could be reused under them.

use super::neighbor::NeighborTable;
use crate::{IfMode, SwIf, Tables, VlanTags};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rustc_hash::FxHashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;
use vswitch_fib::adj::{AdjKind, Adjacency, REWRITE_MAX};
use vswitch_fib::ip4::Ip4LpmConfig;
use vswitch_fib::ip6::Ip6LpmConfig;
use vswitch_fib::lb::{LbConfig, Path, MAX_BUCKETS};
use vswitch_fib::quiesce::ReaderHandle;
use vswitch_fib::{adj::AdjConfig, Fib, FibConfig, FibError, FibTables};
use vswitch_wire::{ethertype, MacAddr};

/// Sizing and timers of an [`IpFib`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpFibConfig {
    /// Sizes of the underlying tables.
    pub fib: FibConfig,
    /// Dynamic neighbors not heard from for this long are removed by
    /// [`FibControl::age_neighbors`].
    pub neighbor_max_age: Duration,
    /// Most neighbors (both families, all interfaces).
    pub max_neighbors: usize,
}

impl Default for IpFibConfig {
    /// Production sizes (`vswitch-fib` defaults: 256 VRFs, 1M adjacencies,
    /// 1M load-balances), neighbors aged after 5 minutes, 64K neighbors.
    fn default() -> Self {
        IpFibConfig { fib: FibConfig::default(), neighbor_max_age: Duration::from_secs(300), max_neighbors: 65536 }
    }
}

impl IpFibConfig {
    /// Small tables (16 VRFs, 64K adjacencies and load-balances, 4K tbl8
    /// groups, a 16-bit IPv6 first level): what `Tables::default()` uses,
    /// and enough for tests and small nodes.
    pub fn small() -> Self {
        IpFibConfig {
            fib: FibConfig {
                max_vrfs: 16,
                ip4: Ip4LpmConfig { max_tbl8_groups: 4096 },
                ip6: Ip6LpmConfig { l0_bits: 16, max_groups: 4096, max_records: 65536 },
                adj: AdjConfig { max_adjacencies: 65536 },
                lb: LbConfig { max_lbs: 65536, max_buckets: 1 << 18 },
            },
            ..IpFibConfig::default()
        }
    }
}

/// Why a FIB change was refused (nothing changed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpFibError {
    /// The underlying tables refused (full, bad VRF, ...).
    Fib(FibError),
    /// No path with a non-zero weight.
    NoPaths,
    /// More paths than a load-balance holds.
    TooManyPaths { paths: usize, max: usize },
    /// A next hop of the other address family than the prefix.
    FamilyMismatch { prefix: IpNet, next_hop: IpAddr },
    /// The interface is unknown or not routed (not `IfMode::L3`), as of
    /// the last [`FibControl::sync_interfaces`].
    NotRoutedInterface(SwIf),
    /// The address is one of our own.
    OwnAddress(IpAddr),
    /// A neighbor MAC that is multicast, broadcast or zero.
    BadMac(MacAddr),
    /// The neighbor table is full.
    NeighborTableFull { max: usize },
    /// An SRv6 local SID on an IPv4 prefix.
    SidNotIpv6(IpNet),
}

impl fmt::Display for IpFibError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpFibError::Fib(e) => write!(f, "{e}"),
            IpFibError::NoPaths => write!(f, "route needs at least one path with a non-zero weight"),
            IpFibError::TooManyPaths { paths, max } => write!(f, "{paths} paths exceed the maximum of {max}"),
            IpFibError::FamilyMismatch { prefix, next_hop } => {
                write!(f, "next hop {next_hop} is not of the address family of {prefix}")
            }
            IpFibError::NotRoutedInterface(i) => write!(f, "interface {i} is not a routed (L3) interface"),
            IpFibError::OwnAddress(a) => write!(f, "{a} is one of our own addresses"),
            IpFibError::BadMac(m) => write!(f, "{m} is not a unicast MAC address"),
            IpFibError::NeighborTableFull { max } => write!(f, "neighbor table full ({max} entries)"),
            IpFibError::SidNotIpv6(p) => write!(f, "{p}: an SRv6 local SID is an IPv6 prefix"),
        }
    }
}

impl std::error::Error for IpFibError {}

impl From<FibError> for IpFibError {
    fn from(e: FibError) -> Self {
        IpFibError::Fib(e)
    }
}

/// Where a path leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// Through the neighbor `addr` on interface `sw_if`.
    Via {
        /// The neighbor's address (same family as the prefix).
        addr: IpAddr,
        /// The interface it is on.
        sw_if: SwIf,
    },
    /// Destinations are directly on interface `sw_if`.
    Attached {
        /// The interface.
        sw_if: SwIf,
    },
    /// Ours: deliver to ip4-local / ip6-local.
    Local,
    /// Drop silently.
    Drop,
    /// Hand to the control plane.
    Punt,
    /// Drop and send ICMP unreachable.
    Unreachable,
    /// Drop and send ICMP administratively prohibited.
    Prohibit,
    /// An SRv6 local SID: entry `index` of the SR table (IPv6 prefixes
    /// only). `decap` picks the decapsulating node.
    SrLocalSid {
        /// The SID's index in the SR table.
        index: u32,
        /// A decapsulating behaviour (End.DX*, End.DT*).
        decap: bool,
    },
    /// Steer into SR policy `index` of the SR table (headend).
    SrPolicy {
        /// The policy's index in the SR table.
        index: u32,
    },
}

/// One path of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RoutePath {
    /// Where it leads.
    pub next_hop: NextHop,
    /// Relative weight (UCMP); 0 disables the path.
    pub weight: u32,
}

impl RoutePath {
    /// Via neighbor `addr` on `sw_if`, weight 1.
    pub fn via(addr: impl Into<IpAddr>, sw_if: SwIf) -> RoutePath {
        RoutePath { next_hop: NextHop::Via { addr: addr.into(), sw_if }, weight: 1 }
    }

    /// Directly attached on `sw_if`, weight 1.
    pub fn attached(sw_if: SwIf) -> RoutePath {
        RoutePath { next_hop: NextHop::Attached { sw_if }, weight: 1 }
    }

    /// A special path (`Local`, `Drop`, `Punt`, `Unreachable`, `Prohibit`).
    pub fn special(next_hop: NextHop) -> RoutePath {
        RoutePath { next_hop, weight: 1 }
    }

    /// The same path with another weight.
    pub fn weight(self, weight: u32) -> RoutePath {
        RoutePath { weight, ..self }
    }
}

/// Who wants a route; lower values win.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteSource {
    /// Our own interface addresses (/32, /128).
    Local = 0,
    /// Interface subnets.
    Connected = 1,
    /// SRv6 local SIDs and prefixes steered into SR policies: they replace
    /// a static route to the same prefix.
    Srv6 = 2,
    /// Routes from the control plane.
    Static = 3,
    /// Host routes of resolved neighbors.
    Neighbor = 4,
}

/// A route as installed, for `show ip fib` and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// VRF.
    pub vrf: u32,
    /// Prefix.
    pub prefix: IpNet,
    /// The source whose paths are installed.
    pub source: RouteSource,
    /// Its paths.
    pub paths: Vec<RoutePath>,
    /// The load-balance object the LPM entry points at.
    pub lb: u32,
    /// Adjacency per path (0 for a zero-weight path).
    pub adjs: Vec<u32>,
    /// Every source that wants this prefix, best first.
    pub sources: Vec<RouteSource>,
}

/// What an adjacency stands for (the key adjacencies are shared by).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum AdjKey {
    Special(AdjKind),
    /// An SRv6 adjacency: its kind and SR table index.
    Sr(AdjKind, u32),
    Glean {
        sw_if: SwIf,
        v6: bool,
    },
    Nbr {
        sw_if: SwIf,
        addr: IpAddr,
    },
}

impl AdjKey {
    fn sw_if(&self) -> Option<SwIf> {
        match *self {
            AdjKey::Special(_) | AdjKey::Sr(..) => None,
            AdjKey::Glean { sw_if, .. } | AdjKey::Nbr { sw_if, .. } => Some(sw_if),
        }
    }
}

/// What the FIB knows of a routed interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IfL3 {
    pub vrf: u32,
    pub mac: MacAddr,
    pub tags: VlanTags,
    pub mtu: u16,
}

#[derive(Clone, Debug)]
struct Installed {
    lb: u32,
    /// Adjacency per path, in path order (holds one reference each).
    adjs: Vec<u32>,
}

#[derive(Clone, Debug, Default)]
struct RouteEntry {
    /// Sorted by source, best first; never an empty path list.
    sources: Vec<(RouteSource, Vec<RoutePath>)>,
    installed: Option<Installed>,
}

/// The shared FIB: lock-free lookups for the workers, a mutex around
/// everything that changes it.
pub struct IpFib {
    tables: Arc<FibTables>,
    control: Mutex<FibControl>,
}

impl fmt::Debug for IpFib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpFib").field("tables", &self.tables).finish_non_exhaustive()
    }
}

impl Default for IpFib {
    /// A FIB with [`IpFibConfig::small`] tables.
    fn default() -> Self {
        IpFib::build(IpFibConfig::small()).expect("the small FIB configuration is valid")
    }
}

impl IpFib {
    /// A FIB with VRF 0 and no route.
    pub fn new(config: IpFibConfig) -> Result<Arc<IpFib>, IpFibError> {
        Ok(Arc::new(Self::build(config)?))
    }

    fn build(config: IpFibConfig) -> Result<IpFib, IpFibError> {
        let fib = Fib::new(config.fib)?;
        let tables = Arc::clone(fib.tables());
        let hz = vswitch_packet::clock::ticks_per_second();
        let max_age = (config.neighbor_max_age.as_nanos() * hz as u128 / 1_000_000_000).min(u64::MAX as u128) as u64;
        let mut lbs = FxHashMap::default();
        let mut lb_keys = FxHashMap::default();
        // vswitch-fib's permanent drop load-balance: never released.
        lbs.insert(vec![(Fib::DROP_ADJ, 1)], (Fib::DROP_LB, 1));
        lb_keys.insert(Fib::DROP_LB, vec![(Fib::DROP_ADJ, 1)]);
        let mut adjs = FxHashMap::default();
        let mut adj_keys = FxHashMap::default();
        adjs.insert(AdjKey::Special(AdjKind::Drop), (Fib::DROP_ADJ, 1));
        adj_keys.insert(Fib::DROP_ADJ, AdjKey::Special(AdjKind::Drop));
        let control = FibControl {
            fib,
            ifs: FxHashMap::default(),
            routes: FxHashMap::default(),
            if_routes: FxHashMap::default(),
            adjs,
            adj_keys,
            lbs,
            lb_keys,
            neighbors: NeighborTable::default(),
            max_age_ticks: max_age,
            max_neighbors: config.max_neighbors,
        };
        Ok(IpFib { tables, control: Mutex::new(control) })
    }

    /// The control side, waiting for the lock (control plane threads).
    pub fn control(&self) -> MutexGuard<'_, FibControl> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The control side if nobody holds it now (data path: never blocks
    /// a worker behind a long control-plane change).
    pub fn try_control(&self) -> Option<MutexGuard<'_, FibControl>> {
        match self.control.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Registers a worker as a reader of the tables.
    pub fn register_reader(&self) -> ReaderHandle {
        self.tables_quiescence().register_reader()
    }

    fn tables_quiescence(&self) -> Arc<vswitch_fib::quiesce::Quiescence> {
        Arc::clone(self.control().fib.quiescence())
    }

    /// The reader tables.
    pub fn tables(&self) -> &Arc<FibTables> {
        &self.tables
    }

    /// IPv4 route lookup: the load-balance index.
    #[inline(always)]
    pub fn lookup4(&self, vrf: u32, dst: u32) -> Option<u32> {
        self.tables.lookup4(vrf, dst)
    }

    /// IPv4 lookups of a vector (`out[i]` for `addrs[i]`).
    #[inline]
    pub fn lookup4_batch(&self, vrf: u32, addrs: &[u32], out: &mut [Option<u32>]) {
        match self.tables.ip4(vrf) {
            Some(t) => t.lookup_batch(addrs, out),
            None => out[..addrs.len()].fill(None),
        }
    }

    /// IPv6 route lookup: the load-balance index.
    #[inline(always)]
    pub fn lookup6(&self, vrf: u32, dst: u128) -> Option<u32> {
        self.tables.lookup6(vrf, dst)
    }

    /// IPv6 lookups of a vector.
    #[inline]
    pub fn lookup6_batch(&self, vrf: u32, addrs: &[u128], out: &mut [Option<u32>]) {
        match self.tables.ip6(vrf) {
            Some(t) => t.lookup_batch(addrs, out),
            None => out[..addrs.len()].fill(None),
        }
    }

    /// Buckets of a load-balance: 1 means one path (no flow hash needed).
    #[inline(always)]
    pub fn n_buckets(&self, lb: u32) -> usize {
        self.tables.lb().n_buckets(lb)
    }

    /// The adjacency a flow takes through a load-balance.
    #[inline(always)]
    pub fn choose(&self, lb: u32, flow_hash: u32) -> u32 {
        self.tables.lb().choose(lb, flow_hash)
    }

    /// A consistent copy of an adjacency (a drop for an unknown index).
    #[inline(always)]
    pub fn adj(&self, adj: u32) -> Adjacency {
        self.tables.adj().get(adj)
    }

    /// IPv4 lookup and load-balance: the adjacency index.
    #[inline]
    pub fn resolve4(&self, vrf: u32, dst: u32, flow_hash: u32) -> Option<u32> {
        self.tables.resolve4(vrf, dst, flow_hash)
    }

    /// IPv6 lookup and load-balance: the adjacency index.
    #[inline]
    pub fn resolve6(&self, vrf: u32, dst: u128, flow_hash: u32) -> Option<u32> {
        self.tables.resolve6(vrf, dst, flow_hash)
    }
}

/// Everything that changes the FIB (get it from [`IpFib::control`]).
pub struct FibControl {
    pub(crate) fib: Fib,
    pub(crate) ifs: FxHashMap<SwIf, IfL3>,
    routes: FxHashMap<(u32, IpNet), RouteEntry>,
    /// Interface-derived route sources as last synced.
    if_routes: FxHashMap<(u32, IpNet, RouteSource), Vec<RoutePath>>,
    /// Adjacency by key: (index, references).
    adjs: FxHashMap<AdjKey, (u32, u32)>,
    adj_keys: FxHashMap<u32, AdjKey>,
    /// Load-balance by (adjacency, weight) list: (index, references).
    lbs: FxHashMap<Vec<(u32, u32)>, (u32, u32)>,
    lb_keys: FxHashMap<u32, Vec<(u32, u32)>>,
    pub(crate) neighbors: NeighborTable,
    pub(crate) max_age_ticks: u64,
    pub(crate) max_neighbors: usize,
}

impl fmt::Debug for FibControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FibControl")
            .field("routes", &self.routes.len())
            .field("adjacencies", &self.adjs.len())
            .field("load_balances", &self.lbs.len())
            .field("neighbors", &self.neighbors.len())
            .finish_non_exhaustive()
    }
}

/// The host prefix (/32 or /128) of an address.
pub fn host_prefix(addr: IpAddr) -> IpNet {
    match addr {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, 32).expect("/32")),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, 128).expect("/128")),
    }
}

fn is_host(prefix: &IpNet) -> bool {
    prefix.prefix_len() == prefix.max_prefix_len()
}

/// The Ethernet header (with the interface's VLAN tags) an adjacency
/// writes in front of the IP header.
pub fn ethernet_rewrite(dst: MacAddr, src: MacAddr, tags: VlanTags, ethertype: u16) -> ([u8; REWRITE_MAX], usize) {
    let mut r = [0u8; REWRITE_MAX];
    r[0..6].copy_from_slice(&dst.0);
    r[6..12].copy_from_slice(&src.0);
    let mut n = 12;
    let mut tag = |tpid: u16, vid: u16, n: &mut usize| {
        r[*n..*n + 2].copy_from_slice(&tpid.to_be_bytes());
        r[*n + 2..*n + 4].copy_from_slice(&vid.to_be_bytes());
        *n += 4;
    };
    if tags.count >= 1 {
        tag(tags.outer.0, tags.outer.1, &mut n);
    }
    if tags.count >= 2 {
        tag(tags.inner.0, tags.inner.1, &mut n);
    }
    r[n..n + 2].copy_from_slice(&ethertype.to_be_bytes());
    (r, n + 2)
}

fn addr_bytes(addr: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match addr {
        IpAddr::V4(a) => b[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => b = a.octets(),
    }
    b
}

impl FibControl {
    /// The underlying tables (read only: change them through this facade).
    pub fn fib(&self) -> &Fib {
        &self.fib
    }

    /// Reclaims retired memory whose grace period is over.
    pub fn reclaim(&mut self) -> usize {
        self.fib.reclaim()
    }

    /// Creates VRF `vrf` (routes create theirs as needed). `false` if it
    /// existed.
    pub fn add_vrf(&mut self, vrf: u32) -> Result<bool, IpFibError> {
        Ok(self.fib.add_vrf(vrf)?)
    }

    /// The VRF of a routed interface.
    pub fn interface_vrf(&self, sw_if: SwIf) -> Option<u32> {
        self.ifs.get(&sw_if).map(|i| i.vrf)
    }

    /// Live adjacencies (the permanent drop included).
    pub fn adjacency_count(&self) -> usize {
        self.adjs.len()
    }

    /// Live load-balance objects (the permanent drop included).
    pub fn load_balance_count(&self) -> usize {
        self.lbs.len()
    }

    /// Whether `addr` is one of our addresses in `vrf`.
    pub fn is_local_address(&self, vrf: u32, addr: IpAddr) -> bool {
        self.routes
            .get(&(vrf, host_prefix(addr)))
            .is_some_and(|e| e.sources.iter().any(|(s, _)| *s == RouteSource::Local))
    }

    /// Takes in the routed interfaces of `tables` and their addresses (see
    /// the module docs). Interfaces that left L3 mode or changed VRF lose
    /// their neighbors; adjacencies on interfaces whose MAC, tags or MTU
    /// changed are rebuilt.
    pub fn sync_interfaces(&mut self, tables: &Tables) -> Result<(), IpFibError> {
        let mut new_ifs: FxHashMap<SwIf, IfL3> = FxHashMap::default();
        let mut desired: FxHashMap<(u32, IpNet, RouteSource), Vec<RoutePath>> = FxHashMap::default();
        for i in tables.interfaces.iter().flatten() {
            let IfMode::L3 { vrf } = i.mode else { continue };
            new_ifs.insert(i.sw_if, IfL3 { vrf, mac: i.mac, tags: i.tags(), mtu: i.mtu });
            let addrs = i
                .ip4
                .iter()
                .filter_map(|&(a, l)| Ipv4Net::new(a, l).ok().map(IpNet::V4))
                .chain(i.ip6.iter().filter_map(|&(a, l)| Ipv6Net::new(a, l).ok().map(IpNet::V6)));
            for net in addrs {
                let mut add = |prefix: IpNet, source, path: RoutePath| {
                    let v = desired.entry((vrf, prefix, source)).or_default();
                    if !v.contains(&path) {
                        v.push(path);
                    }
                };
                add(host_prefix(net.addr()), RouteSource::Local, RoutePath::special(NextHop::Local));
                if !is_host(&net) {
                    add(net.trunc(), RouteSource::Connected, RoutePath::attached(i.sw_if));
                }
            }
        }
        for vrf in new_ifs.values().map(|i| i.vrf).collect::<Vec<_>>() {
            self.fib.add_vrf(vrf)?;
        }
        let gone: Vec<SwIf> = self
            .ifs
            .iter()
            .filter(|(s, old)| new_ifs.get(s).is_none_or(|n| n.vrf != old.vrf))
            .map(|(s, _)| *s)
            .collect();
        for sw_if in &gone {
            self.flush_neighbors(*sw_if);
        }
        let mut changed: Vec<SwIf> = gone.clone();
        changed.extend(new_ifs.iter().filter(|(s, n)| self.ifs.get(s) != Some(n)).map(|(s, _)| *s));
        self.ifs = new_ifs;
        // Rewrites first (in place, cannot run out of room).
        if !changed.is_empty() {
            self.rebuild_adjacencies(|k| k.sw_if().is_some_and(|s| changed.contains(&s)))?;
        }
        // Sources that went away or changed first, then new ones.
        let old: Vec<_> = self.if_routes.keys().copied().collect();
        for key in old {
            let want = desired.get(&key).cloned().unwrap_or_default();
            if self.if_routes.get(&key) != Some(&want) {
                self.set_route_source(key.0, key.1, key.2, want.clone())?;
                if want.is_empty() {
                    self.if_routes.remove(&key);
                } else {
                    self.if_routes.insert(key, want);
                }
            }
        }
        for (key, want) in desired {
            if !self.if_routes.contains_key(&key) {
                self.set_route_source(key.0, key.1, key.2, want.clone())?;
                self.if_routes.insert(key, want);
            }
        }
        Ok(())
    }

    /// Rewrites the adjacencies whose key matches (interface or neighbor
    /// changed).
    pub(crate) fn rebuild_adjacencies(&mut self, matches: impl Fn(&AdjKey) -> bool) -> Result<(), IpFibError> {
        let todo: Vec<(AdjKey, u32)> =
            self.adjs.iter().filter(|(k, _)| matches(k)).map(|(k, (i, _))| (*k, *i)).collect();
        for (key, idx) in todo {
            let adj = self.build_adj(&key);
            self.fib.adj_writer().lock().unwrap_or_else(|e| e.into_inner()).update(idx, adj)?;
        }
        Ok(())
    }

    /// Takes a reference on the neighbor adjacency of `addr` on routed
    /// interface `sw_if` for a user outside the routes (SRv6 End.X and
    /// End.DX4/DX6 send to it directly): the same adjacency routes through
    /// that neighbor share, `Incomplete` until the neighbor resolves, then
    /// rewritten in place. Give it back with [`release_adjacency`](Self::release_adjacency).
    pub fn hold_neighbor_adjacency(&mut self, sw_if: SwIf, addr: IpAddr) -> Result<u32, IpFibError> {
        if !self.ifs.contains_key(&sw_if) {
            return Err(IpFibError::NotRoutedInterface(sw_if));
        }
        self.acquire_adj(AdjKey::Nbr { sw_if, addr })
    }

    /// Gives back a reference taken by [`hold_neighbor_adjacency`](Self::hold_neighbor_adjacency).
    pub fn release_adjacency(&mut self, adj: u32) {
        self.release_adj(adj);
    }

    /// Adds or replaces the control plane's route to `prefix` in `vrf`.
    pub fn add_route(&mut self, vrf: u32, prefix: IpNet, paths: &[RoutePath]) -> Result<(), IpFibError> {
        if paths.iter().all(|p| p.weight == 0) {
            return Err(IpFibError::NoPaths);
        }
        self.set_route_source(vrf, prefix, RouteSource::Static, paths.to_vec())
    }

    /// Removes the control plane's route to `prefix`; `false` if there was
    /// none (other sources of the prefix stay).
    pub fn remove_route(&mut self, vrf: u32, prefix: IpNet) -> Result<bool, IpFibError> {
        let had = self
            .routes
            .get(&(vrf, prefix.trunc()))
            .is_some_and(|e| e.sources.iter().any(|(s, _)| *s == RouteSource::Static));
        if had {
            self.set_route_source(vrf, prefix, RouteSource::Static, Vec::new())?;
        }
        Ok(had)
    }

    /// The installed route to exactly `prefix`.
    pub fn route(&self, vrf: u32, prefix: IpNet) -> Option<RouteInfo> {
        let prefix = prefix.trunc();
        let e = self.routes.get(&(vrf, prefix))?;
        Self::info(vrf, prefix, e)
    }

    fn info(vrf: u32, prefix: IpNet, e: &RouteEntry) -> Option<RouteInfo> {
        let (source, paths) = e.sources.first()?;
        let inst = e.installed.as_ref()?;
        Some(RouteInfo {
            vrf,
            prefix,
            source: *source,
            paths: paths.clone(),
            lb: inst.lb,
            adjs: inst.adjs.clone(),
            sources: e.sources.iter().map(|(s, _)| *s).collect(),
        })
    }

    /// Every installed route, by VRF and prefix.
    pub fn routes(&self) -> Vec<RouteInfo> {
        let mut v: Vec<RouteInfo> = self.routes.iter().filter_map(|(&(vrf, p), e)| Self::info(vrf, p, e)).collect();
        v.sort_by_key(|r| (r.vrf, r.prefix));
        v
    }

    /// Sets what `source` wants for `prefix` in `vrf` (an empty list: it
    /// wants nothing) and installs the best source. Creates the VRF.
    pub fn set_route_source(
        &mut self,
        vrf: u32,
        prefix: IpNet,
        source: RouteSource,
        paths: Vec<RoutePath>,
    ) -> Result<(), IpFibError> {
        let prefix = prefix.trunc();
        self.validate(&prefix, &paths)?;
        if !paths.is_empty() {
            self.fib.add_vrf(vrf)?;
        } else if !self.routes.contains_key(&(vrf, prefix)) {
            return Ok(());
        }
        let mut entry = self.routes.remove(&(vrf, prefix)).unwrap_or_default();
        let old_sources = entry.sources.clone();
        let old_best = entry.sources.first().cloned();
        entry.sources.retain(|(s, _)| *s != source);
        if !paths.is_empty() {
            let at = entry.sources.partition_point(|(s, _)| *s < source);
            entry.sources.insert(at, (source, paths));
        }
        let new_best = entry.sources.first().cloned();
        if new_best != old_best {
            let old_inst = entry.installed.take();
            match self.install(vrf, prefix, new_best.as_ref().map(|(_, p)| p.as_slice()), old_inst.clone()) {
                Ok(inst) => entry.installed = inst,
                Err(e) => {
                    entry.sources = old_sources;
                    entry.installed = old_inst;
                    if !entry.sources.is_empty() {
                        self.routes.insert((vrf, prefix), entry);
                    }
                    return Err(e);
                }
            }
        }
        if !entry.sources.is_empty() {
            self.routes.insert((vrf, prefix), entry);
        }
        Ok(())
    }

    fn validate(&self, prefix: &IpNet, paths: &[RoutePath]) -> Result<(), IpFibError> {
        let live = paths.iter().filter(|p| p.weight > 0).count();
        if !paths.is_empty() && live == 0 {
            return Err(IpFibError::NoPaths);
        }
        if live > MAX_BUCKETS {
            return Err(IpFibError::TooManyPaths { paths: live, max: MAX_BUCKETS });
        }
        for p in paths {
            match p.next_hop {
                NextHop::Via { addr, sw_if } => {
                    if addr.is_ipv4() != matches!(prefix, IpNet::V4(_)) {
                        return Err(IpFibError::FamilyMismatch { prefix: *prefix, next_hop: addr });
                    }
                    if !self.ifs.contains_key(&sw_if) {
                        return Err(IpFibError::NotRoutedInterface(sw_if));
                    }
                }
                NextHop::Attached { sw_if } if !self.ifs.contains_key(&sw_if) => {
                    return Err(IpFibError::NotRoutedInterface(sw_if));
                }
                NextHop::SrLocalSid { .. } if !matches!(prefix, IpNet::V6(_)) => {
                    return Err(IpFibError::SidNotIpv6(*prefix));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn adj_key(prefix: &IpNet, nh: NextHop) -> AdjKey {
        match nh {
            NextHop::Via { addr, sw_if } => AdjKey::Nbr { sw_if, addr },
            NextHop::Attached { sw_if } if is_host(prefix) => AdjKey::Nbr { sw_if, addr: prefix.addr() },
            NextHop::Attached { sw_if } => AdjKey::Glean { sw_if, v6: matches!(prefix, IpNet::V6(_)) },
            NextHop::Local => AdjKey::Special(AdjKind::Local),
            NextHop::Drop => AdjKey::Special(AdjKind::Drop),
            NextHop::Punt => AdjKey::Special(AdjKind::Punt),
            NextHop::Unreachable => AdjKey::Special(AdjKind::Unreachable),
            NextHop::Prohibit => AdjKey::Special(AdjKind::Prohibit),
            NextHop::SrLocalSid { index, decap: false } => AdjKey::Sr(AdjKind::SrLocalSid, index),
            NextHop::SrLocalSid { index, decap: true } => AdjKey::Sr(AdjKind::SrLocalSidDecap, index),
            NextHop::SrPolicy { index } => AdjKey::Sr(AdjKind::SrPolicy, index),
        }
    }

    /// The adjacency record for a key as things stand.
    fn build_adj(&self, key: &AdjKey) -> Adjacency {
        match *key {
            AdjKey::Special(kind) => Adjacency::new(kind),
            AdjKey::Sr(kind, index) => Adjacency::indexed(kind, index),
            AdjKey::Glean { sw_if, v6 } => {
                let Some(i) = self.ifs.get(&sw_if) else { return Adjacency { sw_if, ..Adjacency::DROP } };
                let mut a = Adjacency::new(AdjKind::Glean);
                a.sw_if = sw_if;
                a.mtu = i.mtu;
                let (r, n) = ethernet_rewrite(
                    MacAddr::BROADCAST,
                    i.mac,
                    i.tags,
                    if v6 { ethertype::IPV6 } else { ethertype::IPV4 },
                );
                a.rewrite = r;
                a.rewrite_len = n as u8;
                a
            }
            AdjKey::Nbr { sw_if, addr } => {
                let Some(i) = self.ifs.get(&sw_if) else {
                    return Adjacency { sw_if, next_hop: addr_bytes(addr), ..Adjacency::DROP };
                };
                let et = if addr.is_ipv4() { ethertype::IPV4 } else { ethertype::IPV6 };
                let mut a = match self.neighbors.get(sw_if, addr) {
                    Some(n) => {
                        let (r, len) = ethernet_rewrite(n.mac, i.mac, i.tags, et);
                        let mut a = Adjacency::new(AdjKind::Rewrite);
                        a.rewrite = r;
                        a.rewrite_len = len as u8;
                        a
                    }
                    None => Adjacency::new(AdjKind::Incomplete),
                };
                a.sw_if = sw_if;
                a.mtu = i.mtu;
                a.next_hop = addr_bytes(addr);
                a
            }
        }
    }

    fn acquire_adj(&mut self, key: AdjKey) -> Result<u32, IpFibError> {
        if let Some((idx, refs)) = self.adjs.get_mut(&key) {
            *refs += 1;
            return Ok(*idx);
        }
        let adj = self.build_adj(&key);
        let idx = self.fib.adj_writer().lock().unwrap_or_else(|e| e.into_inner()).add(adj)?;
        self.adjs.insert(key, (idx, 1));
        self.adj_keys.insert(idx, key);
        Ok(idx)
    }

    fn release_adj(&mut self, idx: u32) {
        let Some(key) = self.adj_keys.get(&idx).copied() else { return };
        let Some(e) = self.adjs.get_mut(&key) else { return };
        e.1 -= 1;
        if e.1 == 0 && idx != Fib::DROP_ADJ {
            self.adjs.remove(&key);
            self.adj_keys.remove(&idx);
            let _ = self.fib.adj_writer().lock().unwrap_or_else(|e| e.into_inner()).remove(idx);
        } else if e.1 == 0 {
            e.1 = 1;
        }
    }

    fn acquire_lb(&mut self, key: Vec<(u32, u32)>) -> Result<u32, IpFibError> {
        if let Some((idx, refs)) = self.lbs.get_mut(&key) {
            *refs += 1;
            return Ok(*idx);
        }
        let paths: Vec<Path> = key.iter().map(|&(a, w)| Path::new(a, w)).collect();
        let idx = self.fib.lb_mut().add(&paths)?;
        self.lbs.insert(key.clone(), (idx, 1));
        self.lb_keys.insert(idx, key);
        Ok(idx)
    }

    fn release_lb(&mut self, idx: u32) {
        let Some(key) = self.lb_keys.get(&idx).cloned() else { return };
        let Some(e) = self.lbs.get_mut(&key) else { return };
        e.1 -= 1;
        if e.1 == 0 && idx != Fib::DROP_LB {
            self.lbs.remove(&key);
            self.lb_keys.remove(&idx);
            let _ = self.fib.lb_mut().remove(idx);
        } else if e.1 == 0 {
            e.1 = 1;
        }
    }

    fn release(&mut self, inst: Installed) {
        self.release_lb(inst.lb);
        for a in inst.adjs {
            if a != u32::MAX {
                self.release_adj(a);
            }
        }
    }

    /// Points the LPM entry of `prefix` at a load-balance over `paths`
    /// (or removes it), then releases what `old` held.
    fn install(
        &mut self,
        vrf: u32,
        prefix: IpNet,
        paths: Option<&[RoutePath]>,
        old: Option<Installed>,
    ) -> Result<Option<Installed>, IpFibError> {
        let Some(paths) = paths else {
            match prefix {
                IpNet::V4(p) => {
                    self.fib.ip4_mut(vrf)?.remove(&p);
                }
                IpNet::V6(p) => {
                    self.fib.ip6_mut(vrf)?.remove(&p);
                }
            }
            if let Some(old) = old {
                self.release(old);
            }
            return Ok(None);
        };
        let mut adjs = Vec::with_capacity(paths.len());
        for p in paths {
            if p.weight == 0 {
                adjs.push(u32::MAX);
                continue;
            }
            match self.acquire_adj(Self::adj_key(&prefix, p.next_hop)) {
                Ok(a) => adjs.push(a),
                Err(e) => {
                    self.release(Installed { lb: u32::MAX, adjs });
                    return Err(e);
                }
            }
        }
        let mut key: Vec<(u32, u32)> =
            paths.iter().zip(&adjs).filter(|(p, _)| p.weight > 0).map(|(p, &a)| (a, p.weight)).collect();
        key.sort_unstable();
        let lb = match self.acquire_lb(key) {
            Ok(lb) => lb,
            Err(e) => {
                self.release(Installed { lb: u32::MAX, adjs });
                return Err(e);
            }
        };
        let r = match prefix {
            IpNet::V4(p) => self.fib.ip4_mut(vrf).and_then(|w| w.insert(p, lb)),
            IpNet::V6(p) => self.fib.ip6_mut(vrf).and_then(|w| w.insert(p, lb)),
        };
        let new = Installed { lb, adjs };
        if let Err(e) = r {
            self.release(new);
            return Err(e.into());
        }
        if let Some(old) = old {
            self.release(old);
        }
        Ok(Some(new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IfKind, Interface};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn mac(b: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, b])
    }

    fn tables() -> Tables {
        let mut t = Tables::default();
        let mut a = Interface::port(1, "a", 0, mac(1), IfMode::L3 { vrf: 0 });
        a.ip4 = vec![(Ipv4Addr::new(10, 0, 1, 1), 24)];
        a.ip6 = vec![("2001:db8:1::1".parse().unwrap(), 64)];
        let mut b = Interface::port(2, "b", 1, mac(2), IfMode::L3 { vrf: 0 });
        b.ip4 = vec![(Ipv4Addr::new(10, 0, 2, 1), 24)];
        let mut sub = Interface::port(3, "b.7", 1, mac(2), IfMode::L3 { vrf: 1 });
        sub.kind = IfKind::SubIf { parent: 2, tags: VlanTags::dot1q(7) };
        sub.ip4 = vec![(Ipv4Addr::new(10, 0, 1, 1), 24)];
        t.set_interface(a);
        t.set_interface(b);
        t.set_interface(sub);
        t
    }

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn interface_addresses_give_local_and_attached_routes_per_vrf() {
        let fib = IpFib::new(IpFibConfig::small()).unwrap();
        fib.control().sync_interfaces(&tables()).unwrap();
        let kind = |vrf, a: &str| fib.adj(fib.resolve4(vrf, v4(a), 0).unwrap()).kind;
        assert_eq!(kind(0, "10.0.1.1"), AdjKind::Local);
        assert_eq!(kind(0, "10.0.1.9"), AdjKind::Glean);
        assert_eq!(kind(0, "10.0.2.9"), AdjKind::Glean);
        assert_eq!(kind(1, "10.0.1.1"), AdjKind::Local, "same address in VRF 1");
        assert_eq!(fib.resolve4(1, v4("10.0.2.9"), 0), None, "VRF 1 has no 10.0.2/24");
        let g = fib.adj(fib.resolve4(1, v4("10.0.1.9"), 0).unwrap());
        assert_eq!((g.sw_if, g.mtu), (3, 1500));
        assert_eq!(&g.rewrite_bytes()[12..18], &[0x81, 0, 0, 7, 0x08, 0], "sub-interface tag in the glean rewrite");
        let six = u128::from("2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(fib.adj(fib.resolve6(0, six, 0).unwrap()).kind, AdjKind::Local);
        assert_eq!(fib.adj(fib.resolve6(0, six + 1, 0).unwrap()).kind, AdjKind::Glean);
        assert!(fib.control().is_local_address(0, "10.0.1.1".parse().unwrap()));
        // Addresses removed: the routes go, the shared objects are freed.
        let mut t = tables();
        for i in t.interfaces.iter_mut().flatten() {
            i.ip4.clear();
            i.ip6.clear();
        }
        fib.control().sync_interfaces(&t).unwrap();
        assert_eq!(fib.resolve4(0, v4("10.0.1.1"), 0), None);
        assert_eq!(fib.resolve6(0, six, 0), None);
        let c = fib.control();
        assert_eq!((c.adjacency_count(), c.load_balance_count()), (1, 1), "only the permanent drop is left");
        assert!(c.routes().is_empty());
    }

    #[test]
    fn static_routes_share_objects_and_sources_stack() {
        let fib = IpFib::new(IpFibConfig::small()).unwrap();
        let mut c = fib.control();
        c.sync_interfaces(&tables()).unwrap();
        let nh1 = RoutePath::via(Ipv4Addr::new(10, 0, 1, 2), 1);
        let nh2 = RoutePath::via(Ipv4Addr::new(10, 0, 2, 2), 2);
        c.add_route(0, net("192.168.0.0/16"), &[nh1, nh2]).unwrap();
        c.add_route(0, net("172.16.0.0/12"), &[nh2, nh1]).unwrap();
        let a = c.route(0, net("192.168.0.0/16")).unwrap();
        let b = c.route(0, net("172.16.0.0/12")).unwrap();
        assert_eq!(a.lb, b.lb, "same paths, one load-balance");
        assert_eq!(fib.n_buckets(a.lb), 2);
        assert_eq!(fib.adj(a.adjs[0]).kind, AdjKind::Incomplete);
        assert_eq!(fib.adj(a.adjs[0]).next_hop_v4(), Ipv4Addr::new(10, 0, 1, 2));
        // A static route over a connected prefix: connected stays installed.
        c.add_route(0, net("10.0.1.0/24"), &[nh2]).unwrap();
        let r = c.route(0, net("10.0.1.0/24")).unwrap();
        assert_eq!(
            (r.source, r.sources.clone()),
            (RouteSource::Connected, vec![RouteSource::Connected, RouteSource::Static])
        );
        assert!(c.remove_route(0, net("10.0.1.0/24")).unwrap());
        assert!(!c.remove_route(0, net("10.0.1.0/24")).unwrap());
        assert_eq!(c.route(0, net("10.0.1.0/24")).unwrap().sources, vec![RouteSource::Connected]);
        // Errors change nothing.
        assert_eq!(
            c.add_route(0, net("1.0.0.0/8"), &[RoutePath::via("2001:db8::1".parse::<IpAddr>().unwrap(), 1)]),
            Err(IpFibError::FamilyMismatch { prefix: net("1.0.0.0/8"), next_hop: "2001:db8::1".parse().unwrap() })
        );
        assert_eq!(c.add_route(0, net("1.0.0.0/8"), &[RoutePath::attached(9)]), Err(IpFibError::NotRoutedInterface(9)));
        assert_eq!(c.add_route(0, net("1.0.0.0/8"), &[nh1.weight(0)]), Err(IpFibError::NoPaths));
        assert!(c.route(0, net("1.0.0.0/8")).is_none());
        let before = (c.adjacency_count(), c.load_balance_count());
        c.remove_route(0, net("192.168.0.0/16")).unwrap();
        assert_eq!((c.adjacency_count(), c.load_balance_count()), before, "still used by 172.16/12");
        c.remove_route(0, net("172.16.0.0/12")).unwrap();
        assert_eq!(c.adjacency_count(), before.0 - 2);
        assert_eq!(c.load_balance_count(), before.1 - 1);
    }

    #[test]
    fn ethernet_rewrites_carry_tags() {
        let (r, n) = ethernet_rewrite(mac(9), mac(1), VlanTags::qinq(100, 200), 0x0800);
        assert_eq!(n, 22);
        assert_eq!(&r[..n], &[2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 1, 0x88, 0xa8, 0, 100, 0x81, 0, 0, 200, 8, 0]);
        let (_, n) = ethernet_rewrite(mac(9), mac(1), VlanTags::default(), 0x86dd);
        assert_eq!(n, 14);
    }
}
