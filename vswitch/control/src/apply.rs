//! Compiling a desired state into dataplane tables and applying it.
//!
//! A [`Controller`] holds the desired state in force and everything it
//! was compiled into: the interface index allocation (an interface keeps
//! its `sw_if` and its port index across applies; new ones take free
//! indices), the live `Arc<ArcSwap<Tables>>` the workers read, the shared
//! `Arc<IpFib>`, and the bridge domains, whose MAC and ARP tables survive
//! reconfiguration.
//!
//! [`Controller::apply`] validates, computes the difference to what is in
//! force, and then, in this order, each step undone if a later one fails:
//!
//! 1. creates the port backends of new (or re-plumbed) port interfaces
//!    through the caller's [`PortRegistry`];
//! 2. programs the FIB incrementally: removes static neighbors and routes
//!    that went away, `sync_interfaces` with the new interfaces, then adds
//!    or replaces only the routes and static neighbors that changed;
//! 3. installs new static MACs and ARP-termination entries;
//! 4. reconfigures changed bridge domains (keeping their tables), builds
//!    the new [`Tables`] and publishes it with one `ArcSwap::store` (only
//!    if it differs from the one in force);
//! 5. removes stale static MACs, then the port backends of removed
//!    interfaces through the registry.
//!
//! A failure in 1–3 leaves everything as it was (ports created are
//! removed again, FIB changes are undone in reverse order), and the error
//! says which step failed. An index freed by an apply is reused only by a
//! later apply, so nothing left over from an interface (learned MACs,
//! dynamic neighbors, counters) can follow its index to a new interface
//! within one change.

use crate::flat::{flatten, FlatIf, FlatKind, FlatMode};
use crate::model::{DesiredState, MemifSpec, PortType, RouteTarget, SpecialRoute, TagRewrite};
use crate::validate::{validate, Limits, ValidationError, Warning, MTU_RANGE};
use arc_swap::ArcSwap;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use vswitch_nodes::ip::{FibControl, IpFib, IpFibConfig, IpFibError, NextHop, RoutePath};
use vswitch_nodes::l2::{ArpEntry, ArpTable, BdMember, BridgeDomain, MacEntry, MacTable};
use vswitch_nodes::{BridgeDomainConfig, IfKind, IfMode, Interface, SwIf, Tables, VlanRewrite, VlanTags, NONE};
use vswitch_wire::MacAddr;

/// A port backend the daemon must create (before the snapshot that uses
/// it is published) or remove (after the snapshot that stopped using it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// The interface it belongs to.
    pub interface: String,
    /// Its port index: what its input node writes into `meta.rx_if`, and
    /// the transmit queue the graph sends its packets to.
    pub port: u32,
    /// The backend kind.
    pub port_type: PortType,
    /// The host device (none for pg).
    pub host_ifname: Option<String>,
    /// The network namespace the host device is in (tap only; `None`:
    /// the daemon's own): a name under `/run/netns` or an absolute path.
    pub netns: Option<String>,
    /// Receive queues.
    pub queues: u16,
    /// memif only: its settings (defaults filled in).
    pub memif: Option<Box<MemifSpec>>,
}

impl PortSpec {
    fn same_backend(&self, other: &PortSpec) -> bool {
        self.port_type == other.port_type
            && self.host_ifname == other.host_ifname
            && self.netns == other.netns
            && self.queues == other.queues
            && self.memif == other.memif
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {} ({}, {}", self.port, self.interface, self.port_type)?;
        if let Some(h) = &self.host_ifname {
            write!(f, " {h}")?;
        }
        if let Some(n) = &self.netns {
            write!(f, " in netns {n}")?;
        }
        if let Some(m) = &self.memif {
            write!(f, " {} {} id {}", m.role.as_str(), m.socket, m.id)?;
        }
        write!(f, ", {} queue{})", self.queues, if self.queues == 1 { "" } else { "s" })
    }
}

/// Creates and removes port backends for the controller. The daemon's
/// implementation opens taps and sockets; [`NoPortBackends`] serves
/// pg-only setups and tests.
pub trait PortRegistry {
    /// Creates the backend of `port`. An error aborts the apply, which
    /// then removes the ports it had created and changes nothing.
    fn create_port(&mut self, port: &PortSpec) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
    /// Removes the backend of `port` (after publication, or when undoing
    /// a failed apply).
    fn remove_port(&mut self, port: &PortSpec);
}

/// A registry that accepts every port and does nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPortBackends;

impl PortRegistry for NoPortBackends {
    fn create_port(&mut self, _: &PortSpec) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }

    fn remove_port(&mut self, _: &PortSpec) {}
}

/// What was added, removed and changed of one kind of thing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changes<T> {
    /// New.
    pub added: Vec<T>,
    /// Gone.
    pub removed: Vec<T>,
    /// Still there, different.
    pub changed: Vec<T>,
}

impl<T> Default for Changes<T> {
    fn default() -> Self {
        Changes { added: Vec::new(), removed: Vec::new(), changed: Vec::new() }
    }
}

impl<T> Changes<T> {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl<T: fmt::Display> Changes<T> {
    fn write(&self, f: &mut fmt::Formatter<'_>, what: &str) -> fmt::Result {
        if self.is_empty() {
            return Ok(());
        }
        write!(f, "{what}:")?;
        for (sign, list) in [('+', &self.added), ('~', &self.changed), ('-', &self.removed)] {
            for x in list {
                write!(f, " {sign}{x}")?;
            }
        }
        writeln!(f)
    }
}

/// A static route's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteKey {
    /// VRF.
    pub vrf: u32,
    /// Prefix.
    pub prefix: IpNet,
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (vrf {})", self.prefix, self.vrf)
    }
}

/// A static neighbor's identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NeighborKey {
    /// Interface name.
    pub interface: String,
    /// Address.
    pub ip: IpAddr,
}

impl fmt::Display for NeighborKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.ip, self.interface)
    }
}

/// What an apply changed (or, from [`Controller::diff`], would change).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Interfaces by name (ports, VLAN sub-interfaces, BVIs).
    pub interfaces: Changes<String>,
    /// Bridge domains by id (settings, members, static MACs or ARP entries).
    pub bridge_domains: Changes<u16>,
    /// Declared VRFs by id (a VRF's name is its only setting).
    pub vrfs: Changes<u32>,
    /// Static routes.
    pub routes: Changes<RouteKey>,
    /// Static neighbors.
    pub neighbors: Changes<NeighborKey>,
    /// SRv6: `localsid fc00::1/128 (vrf 0)`, `policy fc00::b`,
    /// `steering 10.0.0.0/8 (vrf 0)`, `steering interface pod-l2`, `hmac key 7`.
    pub sr: Changes<String>,
    /// Networks by name (a catalogue: nothing in the data path changes).
    pub networks: Changes<String>,
    /// Port backends created (before publication).
    pub ports_created: Vec<PortSpec>,
    /// Port backends removed (after publication).
    pub ports_removed: Vec<PortSpec>,
    /// Validation warnings of the new state.
    pub warnings: Vec<Warning>,
    /// Whether a new [`Tables`] snapshot was published (route and
    /// neighbor changes live in the shared FIB and need none).
    pub published: bool,
}

impl ApplyReport {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.dataplane_unchanged()
    }

    /// Whether nothing the data path uses changed.
    fn dataplane_unchanged(&self) -> bool {
        self.interfaces.is_empty()
            && self.bridge_domains.is_empty()
            && self.vrfs.is_empty()
            && self.routes.is_empty()
            && self.neighbors.is_empty()
            && self.sr.is_empty()
            && self.ports_created.is_empty()
            && self.ports_removed.is_empty()
    }
}

impl fmt::Display for ApplyReport {
    /// `no changes`, or a line per kind of thing changed (`+` added, `~`
    /// changed, `-` removed), then the port operations and warnings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            writeln!(f, "no changes")?;
        }
        self.interfaces.write(f, "interfaces")?;
        self.bridge_domains.write(f, "bridge domains")?;
        self.vrfs.write(f, "vrfs")?;
        self.routes.write(f, "routes")?;
        self.neighbors.write(f, "neighbors")?;
        self.sr.write(f, "sr")?;
        self.networks.write(f, "networks")?;
        for p in &self.ports_created {
            writeln!(f, "created {p}")?;
        }
        for p in &self.ports_removed {
            writeln!(f, "removed {p}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

/// Why an apply changed nothing.
#[derive(Debug)]
pub enum ApplyError {
    /// The desired state is invalid: every problem found.
    Invalid(Vec<ValidationError>),
    /// The port registry could not create a port.
    Port {
        /// The port.
        port: PortSpec,
        /// The registry's error.
        message: String,
    },
    /// The FIB refused a change (tables full). What was done was undone;
    /// `rollback_failures` lists undo steps that failed in turn (empty
    /// normally; otherwise the FIB may hold part of the change).
    Fib {
        /// The step that failed (`adding route 10.9.0.0/16 (vrf 0)`).
        step: String,
        /// The FIB's error.
        error: IpFibError,
        /// Undo steps that failed.
        rollback_failures: Vec<String>,
    },
    /// A bridge domain's table refused a static entry (full).
    BridgeDomain {
        /// The domain.
        bd: u16,
        /// What failed.
        message: String,
        /// Undo steps that failed.
        rollback_failures: Vec<String>,
    },
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Invalid(errors) => {
                write!(
                    f,
                    "invalid desired state ({} error{}):",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                )?;
                for e in errors {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
            ApplyError::Port { port, message } => write!(f, "creating {port}: {message}; nothing changed"),
            ApplyError::Fib { step, error, rollback_failures } => {
                write!(f, "FIB: {step}: {error}; ")?;
                rollback_text(f, rollback_failures)
            }
            ApplyError::BridgeDomain { bd, message, rollback_failures } => {
                write!(f, "bridge domain {bd}: {message}; ")?;
                rollback_text(f, rollback_failures)
            }
        }
    }
}

fn rollback_text(f: &mut fmt::Formatter<'_>, failures: &[String]) -> fmt::Result {
    if failures.is_empty() {
        write!(f, "rolled back, nothing changed")
    } else {
        write!(f, "rollback incomplete: {}", failures.join("; "))
    }
}

impl std::error::Error for ApplyError {}

/// What kind of interface a name is: a name that changes kind gets a new
/// index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Port,
    Sub,
    Bvi,
}

/// Index allocation: names to `sw_if` and to port backends.
#[derive(Clone, Debug, Default)]
struct Allocation {
    sw_ifs: HashMap<String, (SwIf, Class)>,
    free_sw_ifs: BTreeSet<SwIf>,
    next_sw_if: SwIf,
    ports: HashMap<String, PortSpec>,
    free_ports: BTreeSet<u32>,
    next_port: u32,
}

impl Allocation {
    fn take_sw_if(&mut self) -> SwIf {
        self.free_sw_ifs.pop_first().unwrap_or_else(|| {
            self.next_sw_if += 1;
            self.next_sw_if - 1
        })
    }

    fn take_port(&mut self) -> u32 {
        self.free_ports.pop_first().unwrap_or_else(|| {
            self.next_port += 1;
            self.next_port - 1
        })
    }
}

/// A bridge domain as compiled.
#[derive(Clone, Debug)]
struct BdPlan {
    config: BridgeDomainConfig,
    members: Vec<BdMember>,
    statics: BTreeMap<MacAddr, SwIf>,
    arp: BTreeMap<Ipv4Addr, MacAddr>,
}

impl BdPlan {
    /// Whether the domain object must be rebuilt (settings or members).
    fn same_shape(&self, other: &BdPlan) -> bool {
        same_bd_config(&self.config, &other.config) && self.members == other.members
    }

    fn same(&self, other: &BdPlan) -> bool {
        self.same_shape(other) && self.statics == other.statics && self.arp == other.arp
    }
}

fn same_bd_config(a: &BridgeDomainConfig, b: &BridgeDomainConfig) -> bool {
    // Destructured so that a field added to the struct must be added here.
    let BridgeDomainConfig {
        bd,
        learn,
        forward,
        flood_unknown,
        flood_broadcast,
        arp_term,
        mac_limit,
        mac_age_secs,
        bvi,
    } = a;
    *bd == b.bd
        && *learn == b.learn
        && *forward == b.forward
        && *flood_unknown == b.flood_unknown
        && *flood_broadcast == b.flood_broadcast
        && *arp_term == b.arp_term
        && *mac_limit == b.mac_limit
        && *mac_age_secs == b.mac_age_secs
        && *bvi == b.bvi
}

/// Networks added, changed and removed between two states, by name.
fn network_changes(old: &DesiredState, new: &DesiredState) -> Changes<String> {
    let mut c = Changes::default();
    for n in &new.networks {
        match old.networks.iter().find(|o| o.name == n.name) {
            None => c.added.push(n.name.clone()),
            Some(o) if o != n => c.changed.push(n.name.clone()),
            Some(_) => {}
        }
    }
    c.removed = old
        .networks
        .iter()
        .filter(|o| !new.networks.iter().any(|n| n.name == o.name))
        .map(|o| o.name.clone())
        .collect();
    c
}

/// Whether two interfaces are the same in every field
/// (`vswitch_nodes::Interface` has no `PartialEq`).
pub fn same_interface(a: &Interface, b: &Interface) -> bool {
    // Destructured so that a field added to the struct must be added here.
    let Interface { name, sw_if, kind, port, mac, mtu, up, mode, rewrite, ip4, ip6, proxy_arp, proxy_nd } = a;
    *name == b.name
        && *sw_if == b.sw_if
        && *kind == b.kind
        && *port == b.port
        && *mac == b.mac
        && *mtu == b.mtu
        && *up == b.up
        && *mode == b.mode
        && *rewrite == b.rewrite
        && *ip4 == b.ip4
        && *ip6 == b.ip6
        && *proxy_arp == b.proxy_arp
        && *proxy_nd == b.proxy_nd
}

/// A static neighbor as compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NeighborPlan {
    interface: String,
    mac: MacAddr,
    /// The interface's VRF: a neighbor whose interface moves to another
    /// VRF is removed and added again.
    vrf: u32,
}

/// What is (or is to be) programmed, besides the interfaces.
#[derive(Clone, Debug, Default)]
struct Programmed {
    bds: BTreeMap<u16, BdPlan>,
    routes: BTreeMap<RouteKey, Vec<RoutePath>>,
    neighbors: BTreeMap<(SwIf, IpAddr), NeighborPlan>,
    vrfs: BTreeMap<u32, Option<String>>,
}

/// A compiled desired state.
struct Plan {
    alloc: Allocation,
    interfaces: Vec<Interface>,
    programmed: Programmed,
    sr: crate::sr::SrPlan,
}

/// The control plane's view of one node: desired state in, tables out.
pub struct Controller {
    state: DesiredState,
    limits: Limits,
    fib: Arc<IpFib>,
    tables: Arc<ArcSwap<Tables>>,
    alloc: Allocation,
    programmed: Programmed,
    /// The SRv6 section in force (its indices, held adjacencies, routes
    /// and the SR table of the snapshot).
    sr: crate::sr::SrState,
    /// What the port backends report of their kernel devices, by port.
    links: HashMap<u32, PortLink>,
}

/// A port's kernel device as its backend last saw it: operationally up
/// (admin up and carrier), and its MTU. An interface is up in the tables
/// only when it is configured up and its port's link is up; a port with
/// no configured `mtu` takes the device's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortLink {
    /// The device is up and has carrier.
    pub up: bool,
    /// The device's MTU, when the backend has a device.
    pub mtu: Option<u32>,
}

impl fmt::Debug for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controller")
            .field("interfaces", &self.alloc.sw_ifs.len())
            .field("routes", &self.programmed.routes.len())
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller with a new FIB of `config` and an empty state. A
    /// `config.fib.max_vrfs` of 0 (what `FibConfig::default()` derives)
    /// means the default, 256.
    pub fn new(mut config: IpFibConfig) -> Result<Controller, IpFibError> {
        if config.fib.max_vrfs == 0 {
            config.fib.max_vrfs = vswitch_fib::DEFAULT_MAX_VRFS;
        }
        Ok(Controller::with_fib(IpFib::new(config)?))
    }

    /// A controller programming `fib`, which must be new (nothing synced
    /// or routed yet), with an empty state.
    pub fn with_fib(fib: Arc<IpFib>) -> Controller {
        let limits = Limits { max_vrfs: fib.control().fib().config().max_vrfs };
        let tables = Arc::new(ArcSwap::from_pointee(empty_tables(&fib)));
        let mut programmed = Programmed::default();
        programmed.vrfs.insert(0, None);
        Controller {
            state: DesiredState::default(),
            limits,
            fib,
            tables,
            alloc: Allocation::default(),
            programmed,
            sr: crate::sr::SrState::default(),
            links: HashMap::new(),
        }
    }

    /// The desired state in force.
    pub fn state(&self) -> &DesiredState {
        &self.state
    }

    /// Records what a port's backend sees of its kernel device and, when
    /// that changes an interface (up, MTU), publishes new tables with
    /// those interfaces replaced; nothing else moves. Returns whether it
    /// published. Unknown ports are ignored.
    pub fn set_link(&mut self, port: u32, link: PortLink) -> bool {
        if !self.alloc.ports.values().any(|p| p.port == port) || self.links.get(&port) == Some(&link) {
            return false;
        }
        self.links.insert(port, link);
        let plan = self.plan(&self.state);
        let old = self.snapshot();
        let changed: Vec<&Interface> = plan
            .interfaces
            .iter()
            .filter(|i| old.interface(i.sw_if).is_none_or(|cur| !same_interface(cur, i)))
            .collect();
        if changed.is_empty() {
            return false;
        }
        let mut tables = Tables::clone(&old);
        for i in changed {
            tables.set_interface(i.clone());
        }
        self.tables.store(Arc::new(tables));
        true
    }

    /// The link of `port` as last reported, if any.
    pub fn link(&self, port: u32) -> Option<PortLink> {
        self.links.get(&port).copied()
    }

    /// What states are validated against.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The snapshot cell workers read (clone the `Arc` for each worker).
    pub fn tables(&self) -> &Arc<ArcSwap<Tables>> {
        &self.tables
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> Arc<Tables> {
        self.tables.load_full()
    }

    /// The FIB, shared by every snapshot.
    pub fn fib(&self) -> &Arc<IpFib> {
        &self.fib
    }

    /// An interface's index, by name.
    pub fn sw_if(&self, name: &str) -> Option<SwIf> {
        self.alloc.sw_ifs.get(name).map(|(s, _)| *s)
    }

    /// A port interface's backend, by interface name.
    pub fn port(&self, name: &str) -> Option<&PortSpec> {
        self.alloc.ports.get(name)
    }

    /// Every port backend in force, by port index.
    pub fn ports(&self) -> Vec<PortSpec> {
        let mut v: Vec<PortSpec> = self.alloc.ports.values().cloned().collect();
        v.sort_by_key(|p| p.port);
        v
    }

    /// Validates `new` and reports what applying it would change, changing
    /// nothing.
    pub fn diff(&self, new: &DesiredState) -> Result<ApplyReport, Vec<ValidationError>> {
        let warnings = validate(new, &self.limits)?;
        let plan = self.plan(new);
        let mut report = self.report(&plan, &self.snapshot());
        report.warnings = warnings;
        report.networks = network_changes(&self.state, new);
        Ok(report)
    }

    /// Makes `new` the state in force (see the module docs). Applying the
    /// state in force again changes nothing and publishes nothing.
    pub fn apply(&mut self, new: DesiredState, ports: &mut dyn PortRegistry) -> Result<ApplyReport, ApplyError> {
        let warnings = validate(&new, &self.limits).map_err(ApplyError::Invalid)?;
        let plan = self.plan(&new);
        let old = self.snapshot();
        let mut report = self.report(&plan, &old);
        report.warnings = warnings;
        report.networks = network_changes(&self.state, &new);
        if report.dataplane_unchanged() {
            self.state = new;
            return Ok(report);
        }

        // 1. Port backends.
        let mut created: Vec<&PortSpec> = Vec::new();
        for p in &report.ports_created {
            if let Err(e) = ports.create_port(p) {
                for c in created.iter().rev() {
                    ports.remove_port(c);
                }
                return Err(ApplyError::Port { port: p.clone(), message: e.to_string() });
            }
            created.push(p);
        }
        let undo_ports = |ports: &mut dyn PortRegistry| {
            for c in report.ports_created.iter().rev() {
                ports.remove_port(c);
            }
        };

        // 2. The FIB, against the new interfaces.
        let mut tables = empty_tables(&self.fib);
        for i in &plan.interfaces {
            tables.set_interface(i.clone());
        }
        let mut fib_undo = Vec::new();
        {
            let mut c = self.fib.control();
            let r = program_fib(&mut c, &self.programmed, &plan.programmed, &tables, &report, &mut fib_undo);
            if let Err((step, error)) = r {
                let rollback_failures = rollback_fib(&mut c, fib_undo, &old);
                drop(c);
                undo_ports(ports);
                return Err(ApplyError::Fib { step, error, rollback_failures });
            }
        }
        // 2b. SRv6: its routes and adjacencies (against the new
        //     interfaces), the SR table of the new snapshot.
        let mut sr_work = {
            let mut c = self.fib.control();
            match self.sr.program(plan.sr.clone(), &mut c) {
                Ok(w) => w,
                Err((step, error)) => {
                    let rollback_failures = rollback_fib(&mut c, fib_undo, &old);
                    drop(c);
                    undo_ports(ports);
                    return Err(ApplyError::Fib { step, error, rollback_failures });
                }
            }
        };
        tables.sr = Arc::clone(&sr_work.state.table);

        // 3. Static MACs and ARP entries; new domains get new tables.
        let mut domains: BTreeMap<u16, Arc<BridgeDomain>> = BTreeMap::new();
        let mut bd_undo = Vec::new();
        for (&id, bp) in &plan.programmed.bds {
            let old_plan = self.programmed.bds.get(&id);
            let (macs, arp) = match (old.bridge_domain(id), old_plan) {
                (Some(cur), Some(_)) => (Arc::clone(&cur.macs), Arc::clone(&cur.arp)),
                _ => {
                    let bd = Arc::new(BridgeDomain::new(bp.config.clone(), bp.members.clone()));
                    let t = (Arc::clone(&bd.macs), Arc::clone(&bd.arp));
                    domains.insert(id, bd);
                    t
                }
            };
            if let Err(message) = install_statics(&macs, &arp, bp, old_plan, &mut bd_undo) {
                let mut rollback_failures = undo_statics(bd_undo);
                let mut c = self.fib.control();
                rollback_failures.extend(sr_work.rollback(&mut c));
                rollback_failures.extend(rollback_fib(&mut c, fib_undo, &old));
                drop(c);
                undo_ports(ports);
                return Err(ApplyError::BridgeDomain { bd: id, message, rollback_failures });
            }
        }

        // 4. Domains reconfigured (this forgets the MACs of departed
        //    members: nothing can fail after it), then publication.
        for (&id, bp) in &plan.programmed.bds {
            if domains.contains_key(&id) {
                continue;
            }
            let cur = old.bridge_domain(id).expect("a programmed domain is in the snapshot");
            let same = self.programmed.bds.get(&id).is_some_and(|o| o.same_shape(bp));
            let bd =
                if same { Arc::clone(cur) } else { Arc::new(cur.reconfigure(bp.config.clone(), bp.members.clone())) };
            domains.insert(id, bd);
        }
        for bd in domains.values() {
            tables.set_bridge_domain(Arc::clone(bd));
        }
        if report.published {
            self.tables.store(Arc::new(tables));
        }

        // 5. Leftovers: static entries no longer wanted, then old ports.
        for (&id, old_plan) in &self.programmed.bds {
            if let (Some(bd), Some(new_plan)) = (domains.get(&id), plan.programmed.bds.get(&id)) {
                remove_stale_statics(&bd.macs, &bd.arp, old_plan, new_plan);
            }
        }
        for p in &report.ports_removed {
            ports.remove_port(p);
        }
        self.alloc = plan.alloc;
        let kept = &self.alloc.ports;
        self.links.retain(|port, _| kept.values().any(|p| p.port == *port));
        self.programmed = plan.programmed;
        self.sr = sr_work.commit(&mut self.fib.control());
        self.state = new;
        Ok(report)
    }

    /// Compiles a validated state against the current allocation.
    fn plan(&self, state: &DesiredState) -> Plan {
        let flat = flatten(state);
        let mut alloc = self.alloc.clone();
        let class = |f: &FlatIf<'_>| match f.kind {
            FlatKind::Port(_) => Class::Port,
            FlatKind::Sub { .. } => Class::Sub,
            FlatKind::Bvi { .. } => Class::Bvi,
        };
        let wanted: HashMap<&str, &FlatIf<'_>> = flat.iter().map(|f| (f.name.as_str(), f)).collect();

        // Indices of names that go (or change kind) are freed for the
        // next apply, not this one.
        let mut released_sw_ifs = Vec::new();
        alloc.sw_ifs.retain(|name, (sw_if, c)| {
            let keep = wanted.get(name.as_str()).is_some_and(|f| class(f) == *c);
            if !keep {
                released_sw_ifs.push(*sw_if);
            }
            keep
        });
        let mut released_ports = Vec::new();
        let mut new_ports: HashMap<String, PortSpec> = HashMap::new();
        for f in &flat {
            if !alloc.sw_ifs.contains_key(&f.name) {
                let s = alloc.take_sw_if();
                alloc.sw_ifs.insert(f.name.clone(), (s, class(f)));
            }
            let FlatKind::Port(spec) = f.kind else { continue };
            let mut want = PortSpec {
                interface: f.name.clone(),
                port: NONE,
                port_type: spec.port_type,
                host_ifname: spec.host_ifname.clone(),
                netns: spec.netns.clone(),
                queues: spec.queues.unwrap_or(1),
                memif: (spec.port_type == PortType::Memif).then(|| Box::new(spec.memif.clone().unwrap_or_default())),
            };
            match alloc.ports.get(&f.name) {
                Some(cur) if cur.same_backend(&want) => want.port = cur.port,
                _ => want.port = alloc.take_port(),
            }
            new_ports.insert(f.name.clone(), want);
        }
        for (name, cur) in &alloc.ports {
            if new_ports.get(name).is_none_or(|p| p.port != cur.port) {
                released_ports.push(cur.port);
            }
        }
        alloc.ports = new_ports;
        alloc.free_sw_ifs.extend(released_sw_ifs);
        alloc.free_ports.extend(released_ports);

        let sw_if = |name: &str| alloc.sw_ifs[name].0;
        let mut interfaces = Vec::with_capacity(flat.len());
        for f in &flat {
            let (kind, port, rewrite) = match f.kind {
                FlatKind::Port(_) => (IfKind::Port, alloc.ports[&f.name].port, VlanRewrite::default()),
                FlatKind::Sub { parent, vlan, .. } => {
                    let p = &flat[parent];
                    let tags = match vlan.inner {
                        Some(inner) => VlanTags::qinq(vlan.id, inner),
                        None => VlanTags::dot1q(vlan.id),
                    };
                    let rewrite = match vlan.tag_rewrite {
                        TagRewrite::None => VlanRewrite::default(),
                        TagRewrite::Pop1 => VlanRewrite { pop: 1, push: VlanTags::default() },
                        TagRewrite::Pop2 => VlanRewrite { pop: 2, push: VlanTags::default() },
                        TagRewrite::Translate11 { to } => VlanRewrite {
                            pop: 1,
                            push: VlanTags { count: 1, outer: (tags.outer.0, to), inner: (0, 0) },
                        },
                    };
                    (IfKind::SubIf { parent: sw_if(&p.name), tags }, alloc.ports[&p.name].port, rewrite)
                }
                FlatKind::Bvi { bd, .. } => (IfKind::Bvi { bd }, NONE, VlanRewrite::default()),
            };
            let (mode, addresses, proxy_arp, proxy_nd) = match f.mode {
                FlatMode::Disabled => (IfMode::Disabled, &[][..], false, false),
                FlatMode::L3 { vrf, addresses, proxy_arp, proxy_nd } => {
                    (IfMode::L3 { vrf }, addresses, proxy_arp, proxy_nd)
                }
                FlatMode::Bridge { bd, shg } => (IfMode::Bridge { bd, shg }, &[][..], false, false),
                FlatMode::XConnect { peer } => (IfMode::XConnect { peer: sw_if(peer) }, &[][..], false, false),
            };
            let mut ip4 = Vec::new();
            let mut ip6 = Vec::new();
            for a in addresses {
                match a {
                    IpNet::V4(n) => ip4.push((n.addr(), n.prefix_len())),
                    IpNet::V6(n) => ip6.push((n.addr(), n.prefix_len())),
                }
            }
            // The kernel device, as its backend last reported it, gates
            // `up` and gives the MTU where the config gives none.
            let link = if port == NONE { None } else { self.links.get(&port) };
            let mtu_configured = match f.kind {
                FlatKind::Port(spec) => spec.mtu.is_some(),
                FlatKind::Sub { parent, vlan, .. } => {
                    vlan.mtu.is_some() || matches!(flat[parent].kind, FlatKind::Port(p) if p.mtu.is_some())
                }
                FlatKind::Bvi { .. } => true,
            };
            let mtu = match link.and_then(|l| l.mtu) {
                Some(device) if !mtu_configured => device.clamp(*MTU_RANGE.start(), *MTU_RANGE.end()),
                _ => f.mtu,
            };
            interfaces.push(Interface {
                name: f.name.clone(),
                sw_if: sw_if(&f.name),
                kind,
                port,
                mac: f.mac,
                mtu: u16::try_from(mtu).expect("validated MTU"),
                up: f.up && link.is_none_or(|l| l.up),
                mode,
                rewrite,
                ip4,
                ip6,
                proxy_arp,
                proxy_nd,
            });
        }
        interfaces.sort_by_key(|i| i.sw_if);

        let mut programmed = Programmed::default();
        programmed.vrfs.insert(0, None);
        for v in &state.vrfs {
            programmed.vrfs.insert(v.id, v.name.clone());
        }
        for d in &state.bridge_domains {
            let bvi = d.bvi.as_ref().map(|b| sw_if(&b.name(d.id)));
            let mut members: Vec<BdMember> = interfaces
                .iter()
                .filter_map(|i| match (i.kind.clone(), i.mode) {
                    (_, IfMode::Bridge { bd, shg }) if bd == d.id => Some(BdMember { sw_if: i.sw_if, shg }),
                    (IfKind::Bvi { bd }, _) if bd == d.id => Some(BdMember { sw_if: i.sw_if, shg: 0 }),
                    _ => None,
                })
                .collect();
            members.sort_by_key(|m| m.sw_if);
            let mut statics: BTreeMap<MacAddr, SwIf> =
                d.static_macs.iter().map(|s| (s.mac.0, sw_if(&s.interface))).collect();
            if let Some(b) = bvi {
                let mac = interfaces.iter().find(|i| i.sw_if == b).expect("the BVI is an interface").mac;
                statics.insert(mac, b);
            }
            let config = BridgeDomainConfig {
                bd: d.id,
                learn: d.learn,
                forward: d.forward,
                flood_unknown: d.flood_unknown,
                flood_broadcast: d.flood_broadcast,
                arp_term: d.arp_termination,
                mac_limit: d.mac_limit,
                mac_age_secs: d.mac_age_seconds,
                bvi,
            };
            let arp = d.arp_entries.iter().map(|a| (a.ip, a.mac.0)).collect();
            programmed.bds.insert(d.id, BdPlan { config, members, statics, arp });
        }
        for r in &state.routes {
            let paths = match &r.target {
                RouteTarget::Via(hops) => hops
                    .iter()
                    .map(|h| RoutePath {
                        next_hop: NextHop::Via { addr: h.address, sw_if: sw_if(&h.interface) },
                        weight: h.weight,
                    })
                    .collect(),
                RouteTarget::Interface(name) => vec![RoutePath::attached(sw_if(name))],
                RouteTarget::Special(s) => vec![RoutePath::special(match s {
                    SpecialRoute::Drop => NextHop::Drop,
                    SpecialRoute::Unreachable => NextHop::Unreachable,
                    SpecialRoute::Prohibit => NextHop::Prohibit,
                    SpecialRoute::Punt => NextHop::Punt,
                })],
            };
            programmed.routes.insert(RouteKey { vrf: r.vrf, prefix: r.prefix }, paths);
        }
        for n in &state.neighbors {
            let f = wanted[n.interface.as_str()];
            let vrf = f.mode.vrf().expect("validated: neighbors are on routed interfaces");
            programmed.neighbors.insert(
                (sw_if(&n.interface), n.ip),
                NeighborPlan { interface: n.interface.clone(), mac: n.mac.0, vrf },
            );
        }
        let sr = crate::sr::plan(state, |name| alloc.sw_ifs[name].0);
        Plan { alloc, interfaces, programmed, sr }
    }

    /// The difference between what is in force and `plan`.
    fn report(&self, plan: &Plan, old: &Tables) -> ApplyReport {
        let mut r = ApplyReport::default();
        let new_by_name: HashMap<&str, &Interface> = plan.interfaces.iter().map(|i| (i.name.as_str(), i)).collect();
        for i in &plan.interfaces {
            match self.alloc.sw_ifs.get(&i.name) {
                Some((s, _)) if *s == i.sw_if => {
                    if !old.interface(*s).is_some_and(|o| same_interface(o, i)) {
                        r.interfaces.changed.push(i.name.clone());
                    }
                }
                _ => r.interfaces.added.push(i.name.clone()),
            }
        }
        let mut removed: Vec<(SwIf, &String)> = self
            .alloc
            .sw_ifs
            .iter()
            .filter(|(name, (s, _))| new_by_name.get(name.as_str()).is_none_or(|i| i.sw_if != *s))
            .map(|(name, (s, _))| (*s, name))
            .collect();
        removed.sort_unstable();
        r.interfaces.removed = removed.into_iter().map(|(_, n)| n.clone()).collect();
        for (name, p) in &plan.alloc.ports {
            if self.alloc.ports.get(name) != Some(p) {
                r.ports_created.push(p.clone());
            }
        }
        for (name, p) in &self.alloc.ports {
            if plan.alloc.ports.get(name) != Some(p) {
                r.ports_removed.push(p.clone());
            }
        }
        r.ports_created.sort_by_key(|p| p.port);
        r.ports_removed.sort_by_key(|p| p.port);
        let (old_p, new_p) = (&self.programmed, &plan.programmed);
        r.bridge_domains = changes(&old_p.bds, &new_p.bds, |a, b| a.same(b), |k| *k);
        r.vrfs = changes(&old_p.vrfs, &new_p.vrfs, |a, b| a == b, |k| *k);
        r.routes = changes(&old_p.routes, &new_p.routes, |a, b| a == b, |k| *k);
        let nk = |m: &BTreeMap<(SwIf, IpAddr), NeighborPlan>, k: &(SwIf, IpAddr)| NeighborKey {
            interface: m[k].interface.clone(),
            ip: k.1,
        };
        r.neighbors = Changes {
            added: keys_added(&old_p.neighbors, &new_p.neighbors).iter().map(|k| nk(&new_p.neighbors, k)).collect(),
            removed: keys_added(&new_p.neighbors, &old_p.neighbors).iter().map(|k| nk(&old_p.neighbors, k)).collect(),
            changed: new_p
                .neighbors
                .iter()
                .filter(|(k, v)| old_p.neighbors.get(k).is_some_and(|o| o != *v))
                .map(|(k, _)| nk(&new_p.neighbors, k))
                .collect(),
        };
        let bds_reshaped = new_p.bds.iter().any(|(k, v)| old_p.bds.get(k).is_none_or(|o| !o.same_shape(v)))
            || old_p.bds.keys().any(|k| !new_p.bds.contains_key(k));
        r.sr = crate::sr::changes(&self.sr.plan, &plan.sr);
        r.published = !r.interfaces.is_empty() || bds_reshaped || !r.sr.is_empty();
        r
    }
}

fn keys_added<K: Ord + Clone, V>(old: &BTreeMap<K, V>, new: &BTreeMap<K, V>) -> Vec<K> {
    new.keys().filter(|k| !old.contains_key(k)).cloned().collect()
}

fn changes<K: Ord + Clone, V, T>(
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
    same: impl Fn(&V, &V) -> bool,
    out: impl Fn(&K) -> T,
) -> Changes<T> {
    Changes {
        added: new.keys().filter(|k| !old.contains_key(k)).map(&out).collect(),
        removed: old.keys().filter(|k| !new.contains_key(k)).map(&out).collect(),
        changed: new.iter().filter(|(k, v)| old.get(k).is_some_and(|o| !same(o, v))).map(|(k, _)| out(k)).collect(),
    }
}

fn empty_tables(fib: &Arc<IpFib>) -> Tables {
    Tables {
        interfaces: Vec::new(),
        sub_ifs: Default::default(),
        bridge_domains: Vec::new(),
        port_if: Vec::new(),
        fib: Arc::clone(fib),
        sr: Default::default(),
    }
}

/// A FIB change done, and how to undo it.
enum FibUndo {
    /// Re-sync the interfaces of the snapshot in force.
    Sync,
    /// Put the static route back as it was (`None`: remove it).
    Route { key: RouteKey, old: Option<Vec<RoutePath>> },
    /// Put the static neighbor back (`None`: remove it).
    Neighbor { sw_if: SwIf, ip: IpAddr, old: Option<MacAddr> },
}

/// Step 2 of an apply; on failure returns the step and the error, with
/// `undo` holding what was done.
fn program_fib(
    c: &mut FibControl,
    old: &Programmed,
    new: &Programmed,
    tables: &Tables,
    report: &ApplyReport,
    undo: &mut Vec<FibUndo>,
) -> Result<(), (String, IpFibError)> {
    c.reclaim();
    for &vrf in new.vrfs.keys() {
        // Not undone: an empty VRF is harmless and VRFs are never removed.
        c.add_vrf(vrf).map_err(|e| (format!("adding vrf {vrf}"), e))?;
    }
    for (&(sw_if, ip), n) in &old.neighbors {
        if new.neighbors.get(&(sw_if, ip)).is_none_or(|m| m.vrf != n.vrf) {
            c.remove_neighbor(sw_if, ip).map_err(|e| (format!("removing neighbor {ip} on {}", n.interface), e))?;
            undo.push(FibUndo::Neighbor { sw_if, ip, old: Some(n.mac) });
        }
    }
    for (key, paths) in &old.routes {
        if !new.routes.contains_key(key) {
            c.remove_route(key.vrf, key.prefix).map_err(|e| (format!("removing route {key}"), e))?;
            undo.push(FibUndo::Route { key: *key, old: Some(paths.clone()) });
        }
    }
    if !report.interfaces.is_empty() {
        // Partly applied when it fails: undone by re-syncing the old set.
        undo.push(FibUndo::Sync);
        c.sync_interfaces(tables).map_err(|e| ("syncing interfaces".to_string(), e))?;
    }
    for (key, paths) in &new.routes {
        let was = old.routes.get(key);
        if was != Some(paths) {
            c.add_route(key.vrf, key.prefix, paths).map_err(|e| (format!("adding route {key}"), e))?;
            undo.push(FibUndo::Route { key: *key, old: was.cloned() });
        }
    }
    for (&(sw_if, ip), n) in &new.neighbors {
        let was = old.neighbors.get(&(sw_if, ip));
        if was != Some(n) {
            // Still in the FIB only if its VRF did not change (otherwise
            // removed above).
            let prev = was.filter(|w| w.vrf == n.vrf).map(|w| w.mac);
            c.add_static_neighbor(sw_if, ip, n.mac)
                .map_err(|e| (format!("adding neighbor {ip} on {}", n.interface), e))?;
            undo.push(FibUndo::Neighbor { sw_if, ip, old: prev });
        }
    }
    Ok(())
}

/// Runs a FIB operation, retrying while its tables are full of memory
/// still waiting for its grace period (workers pass a quiescent point
/// every loop, so this is short).
fn with_reclaim<T>(
    c: &mut FibControl,
    mut op: impl FnMut(&mut FibControl) -> Result<T, IpFibError>,
) -> Result<T, IpFibError> {
    let mut tries = 0;
    loop {
        match op(c) {
            Err(IpFibError::Fib(_)) if tries < 100 => {
                tries += 1;
                c.reclaim();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            r => return r,
        }
    }
}

/// Undoes FIB steps, newest first; returns the undo steps that failed.
fn rollback_fib(c: &mut FibControl, undo: Vec<FibUndo>, old: &Tables) -> Vec<String> {
    let mut failures = Vec::new();
    c.reclaim();
    for u in undo.into_iter().rev() {
        let (what, r) = match &u {
            FibUndo::Sync => ("re-syncing interfaces".to_string(), with_reclaim(c, |c| c.sync_interfaces(old))),
            FibUndo::Route { key, old: Some(paths) } => {
                (format!("restoring route {key}"), with_reclaim(c, |c| c.add_route(key.vrf, key.prefix, paths)))
            }
            FibUndo::Route { key, old: None } => {
                (format!("removing route {key}"), with_reclaim(c, |c| c.remove_route(key.vrf, key.prefix).map(|_| ())))
            }
            FibUndo::Neighbor { sw_if, ip, old: Some(mac) } => (
                format!("restoring neighbor {ip} on interface {sw_if}"),
                with_reclaim(c, |c| c.add_static_neighbor(*sw_if, *ip, *mac).map(|_| ())),
            ),
            FibUndo::Neighbor { sw_if, ip, old: None } => (
                format!("removing neighbor {ip} on interface {sw_if}"),
                with_reclaim(c, |c| c.remove_neighbor(*sw_if, *ip).map(|_| ())),
            ),
        };
        if let Err(e) = r {
            failures.push(format!("{what}: {e}"));
        }
    }
    failures
}

/// A bridge-domain table entry changed, and what it was.
enum BdUndo {
    Mac { macs: Arc<MacTable>, mac: MacAddr, prev: Option<MacEntry> },
    Arp { arp: Arc<ArpTable>, ip: Ipv4Addr, prev: Option<ArpEntry> },
}

/// Step 3 for one domain: adds the static entries that are new or moved.
fn install_statics(
    macs: &Arc<MacTable>,
    arp: &Arc<ArpTable>,
    new: &BdPlan,
    old: Option<&BdPlan>,
    undo: &mut Vec<BdUndo>,
) -> Result<(), String> {
    for (&mac, &sw_if) in &new.statics {
        if old.and_then(|o| o.statics.get(&mac)) == Some(&sw_if) {
            continue;
        }
        let prev = macs.get(mac);
        macs.add_static(mac, sw_if).map_err(|e| format!("static MAC {mac}: {e}"))?;
        undo.push(BdUndo::Mac { macs: Arc::clone(macs), mac, prev });
    }
    for (&ip, &mac) in &new.arp {
        if old.and_then(|o| o.arp.get(&ip)) == Some(&mac) {
            continue;
        }
        let prev = arp.lookup(ip);
        arp.add_static(ip, mac).map_err(|e| format!("ARP entry {ip}: {e}"))?;
        undo.push(BdUndo::Arp { arp: Arc::clone(arp), ip, prev });
    }
    Ok(())
}

/// Puts bridge-domain entries back, newest first.
fn undo_statics(undo: Vec<BdUndo>) -> Vec<String> {
    let mut failures = Vec::new();
    for u in undo.into_iter().rev() {
        match u {
            BdUndo::Mac { macs, mac, prev } => {
                macs.remove(mac);
                match prev {
                    Some(e) if e.is_static => {
                        if let Err(err) = macs.add_static(mac, e.sw_if) {
                            failures.push(format!("restoring static MAC {mac}: {err}"));
                        }
                    }
                    Some(e) => {
                        macs.learn(mac, e.sw_if, macs.now());
                    }
                    None => {}
                }
            }
            BdUndo::Arp { arp, ip, prev } => {
                arp.remove(ip);
                match prev {
                    Some(e) if e.is_static => {
                        if let Err(err) = arp.add_static(ip, e.mac) {
                            failures.push(format!("restoring ARP entry {ip}: {err}"));
                        }
                    }
                    Some(e) => {
                        arp.learn(ip, e.mac);
                    }
                    None => {}
                }
            }
        }
    }
    failures
}

/// Step 5 for one domain: removes the static entries the old state had
/// and the new one does not, if they are still as installed.
fn remove_stale_statics(macs: &MacTable, arp: &ArpTable, old: &BdPlan, new: &BdPlan) {
    for (&mac, &sw_if) in &old.statics {
        if !new.statics.contains_key(&mac) && macs.get(mac).is_some_and(|e| e.is_static && e.sw_if == sw_if) {
            macs.remove(mac);
        }
    }
    for (&ip, &mac) in &old.arp {
        if !new.arp.contains_key(&ip) && arp.lookup(ip).is_some_and(|e| e.is_static && e.mac == mac) {
            arp.remove(ip);
        }
    }
}
