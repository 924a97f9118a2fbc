//! Every semantic check of a [`DesiredState`], before anything is
//! changed. All problems are collected, not just the first, each naming
//! the field it is about by its path in the document:
//!
//! ```text
//! interfaces[2] (pod-c).mtu: 70000 is outside 68..=9000
//! routes[0].via[0].interface: no interface named "pod-z"
//! ```
//!
//! Shape errors (a misspelt key, a string where a number goes, two modes
//! on one interface) are found earlier, when the YAML is read
//! ([`DesiredState::from_yaml`]).
//!
//! Cross-connects may be one-way, as in VPP (a monitoring tap sends a
//! port's traffic out of another port that forwards its own traffic some
//! other way); a one-way cross-connect gets a [`Warning`], not an error.

use crate::flat::{flatten, FlatIf, FlatKind, FlatMode};
use crate::model::{DesiredState, MemifMode, MemifRole, MemifSpec, PortType, RouteTarget, TagRewrite};
use ipnet::IpNet;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use vswitch_wire::MacAddr;

/// A problem that makes a desired state unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// Where: `interfaces[2] (pod-c).mtu`.
    pub path: String,
    /// What: `70000 is outside 68..=9000`.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Something legal but probably not meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Where.
    pub path: String,
    /// What.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Limits of the dataplane a state is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// VRF ids are `0..max_vrfs` (the FIB's size).
    pub max_vrfs: u32,
}

impl Default for Limits {
    /// The limits of a FIB of default size (256 VRFs).
    fn default() -> Self {
        Limits { max_vrfs: vswitch_fib::DEFAULT_MAX_VRFS }
    }
}

/// MTU range.
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=9000;
/// Receive queues per port.
pub const QUEUES_RANGE: std::ops::RangeInclusive<u16> = 1..=64;
/// VLAN ids.
pub const VLAN_RANGE: std::ops::RangeInclusive<u16> = 1..=4094;
/// Longest interface name (Linux's IFNAMSIZ less the NUL).
pub const MAX_NAME_LEN: usize = 15;
/// Most next hops of a route (the buckets of a load-balance).
pub const MAX_NEXT_HOPS: usize = vswitch_fib::lb::MAX_BUCKETS;

/// Queue pairs of a memif interface.
pub const MEMIF_QUEUES_RANGE: std::ops::RangeInclusive<u16> = 1..=8;
/// Descriptors per memif ring (powers of two).
pub const MEMIF_RING_SIZE_RANGE: std::ops::RangeInclusive<u32> = 256..=16384;
/// Bytes per memif buffer.
pub const MEMIF_BUFFER_SIZE_RANGE: std::ops::RangeInclusive<u32> = 128..=65535;

/// A memif control socket: an absolute path, or `@name` (abstract), that
/// fits a unix socket address (107 bytes).
fn memif_socket_problem(s: &str) -> Option<String> {
    let ok = match s.strip_prefix('@') {
        Some(name) => !name.is_empty() && !name.contains('\0'),
        None => s.starts_with('/') && !s.ends_with('/') && !s.split('/').any(|c| c == "..") && !s.contains('\0'),
    };
    if !ok {
        return Some(format!("{s:?} is neither an absolute path nor an abstract socket name (@name)"));
    }
    if s.len() > 107 {
        return Some(format!("{s:?} is {} bytes; a unix socket address holds 107", s.len()));
    }
    None
}

/// Checks `state`; on success returns its warnings.
pub fn validate(state: &DesiredState, limits: &Limits) -> Result<Vec<Warning>, Vec<ValidationError>> {
    let mut c = Checker::new(state, limits);
    c.vrfs();
    c.bridge_domain_ids();
    c.interfaces();
    c.memif();
    c.overlaps();
    c.bridge_domain_contents();
    c.routes();
    c.neighbors();
    c.srv6();
    c.owners();
    c.networks();
    if c.errors.is_empty() {
        Ok(c.warnings)
    } else {
        Err(c.errors)
    }
}

/// (vrf, address) -> the interface that has it.
type OwnAddresses = HashMap<(u32, IpAddr), String>;
/// (vrf, subnet) -> the interface whose address it is the subnet of.
type OwnSubnets = HashMap<(u32, IpNet), String>;

struct Checker<'a> {
    state: &'a DesiredState,
    limits: Limits,
    flat: Vec<FlatIf<'a>>,
    /// First declaration of each name.
    by_name: HashMap<String, usize>,
    vrfs: HashSet<u32>,
    bds: HashSet<u16>,
    errors: Vec<ValidationError>,
    warnings: Vec<Warning>,
}

/// Longest interface `owner`.
pub const MAX_OWNER_LEN: usize = 253;
/// Longest network name.
pub const MAX_NETWORK_NAME_LEN: usize = 63;

fn network_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_NETWORK_NAME_LEN {
        return Some(format!("{name:?}: a network name is 1 to {MAX_NETWORK_NAME_LEN} characters"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_') {
        return Some(format!("{name:?}: only letters, digits, '.', '-' and '_'"));
    }
    None
}

fn range_text<T: fmt::Display>(r: &std::ops::RangeInclusive<T>) -> String {
    format!("{}..={}", r.start(), r.end())
}

/// Our interface names: 1..=15 of letters, digits, `-`, `_` (`.` is
/// reserved for VLAN sub-interfaces).
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    let n = name.chars().count();
    if n > MAX_NAME_LEN {
        return Some(format!("{name:?} is {n} characters; the limit is {MAX_NAME_LEN}"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Some(format!("{name:?} may only contain letters, digits, '-' and '_'"));
    }
    None
}

/// A Linux netdev name (`dev_valid_name`).
fn ifname_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
    (!ok).then(|| {
        format!("{name:?} is not a Linux interface name (1..={MAX_NAME_LEN} bytes, no '/', ':' or whitespace)")
    })
}

/// The namespace a port's host device is in (only taps have one).
fn tap_netns(spec: &crate::model::InterfaceSpec) -> Option<&str> {
    if spec.port_type == PortType::Tap {
        spec.netns.as_deref()
    } else {
        None
    }
}

/// A network namespace: a name as `ip netns` makes them (under
/// `/run/netns`) or an absolute path (`/proc/1234/ns/net`).
fn netns_problem(ns: &str) -> Option<String> {
    let ok = if ns.starts_with('/') {
        !ns.split('/').any(|c| c == "..") && !ns.chars().any(|c| c.is_control())
    } else {
        !ns.is_empty()
            && ns.len() <= 255
            && ns != "."
            && ns != ".."
            && !ns.chars().any(|c| c == '/' || c.is_whitespace() || c.is_control())
    };
    (!ok).then(|| format!("{ns:?} is neither a namespace name (as `ip netns` makes) nor an absolute path"))
}

fn mac_problem(mac: MacAddr) -> Option<String> {
    (mac.is_multicast() || mac.is_zero()).then(|| format!("{mac} is not a unicast MAC address"))
}

fn ip_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

/// Why an address cannot be an interface's.
fn address_problem(net: &IpNet) -> Option<String> {
    let usable = ip_unicast(net.addr()) && !net.addr().is_loopback() && net.prefix_len() > 0;
    if !usable {
        return Some(format!("{net} is not a usable interface address"));
    }
    if let IpNet::V4(n) = net {
        if n.prefix_len() <= 30 {
            if n.addr() == n.network() {
                return Some(format!("{net} is the network address of its subnet"));
            }
            if n.addr() == n.broadcast() {
                return Some(format!("{net} is the broadcast address of its subnet"));
            }
        }
    }
    None
}

fn family(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "IPv4",
        IpNet::V6(_) => "IPv6",
    }
}

impl<'a> Checker<'a> {
    fn new(state: &'a DesiredState, limits: &Limits) -> Self {
        Checker {
            state,
            limits: *limits,
            flat: flatten(state),
            by_name: HashMap::new(),
            vrfs: HashSet::from([0]),
            bds: HashSet::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError { path: path.into(), message: message.into() });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning { path: path.into(), message: message.into() });
    }

    fn vrfs(&mut self) {
        let mut ids: HashMap<u32, usize> = HashMap::new();
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, v) in self.state.vrfs.iter().enumerate() {
            let path = match &v.name {
                Some(n) if !n.is_empty() => format!("vrfs[{i}] ({n})"),
                _ => format!("vrfs[{i}]"),
            };
            if v.id >= self.limits.max_vrfs {
                self.error(
                    format!("{path}.id"),
                    format!("{} is outside 0..={}", v.id, self.limits.max_vrfs.saturating_sub(1)),
                );
            } else if let Some(first) = ids.get(&v.id) {
                self.error(format!("{path}.id"), format!("duplicate id {} (also vrfs[{first}])", v.id));
            } else {
                ids.insert(v.id, i);
                self.vrfs.insert(v.id);
            }
            match v.name.as_deref() {
                Some("") => self.error(format!("{path}.name"), "must not be empty"),
                Some(n) => {
                    if let Some(first) = names.get(n) {
                        self.error(format!("{path}.name"), format!("duplicate name {n:?} (also vrfs[{first}])"));
                    } else {
                        names.insert(n, i);
                    }
                }
                None => {}
            }
        }
    }

    fn bridge_domain_ids(&mut self) {
        let mut first: HashMap<u16, usize> = HashMap::new();
        for (i, bd) in self.state.bridge_domains.iter().enumerate() {
            let path = format!("bridge_domains[{i}].id");
            if bd.id == 0 {
                self.error(path, "0 is reserved; use 1..=65535");
            } else if let Some(f) = first.get(&bd.id) {
                self.error(path, format!("duplicate id {} (also bridge_domains[{f}])", bd.id));
            } else {
                first.insert(bd.id, i);
                self.bds.insert(bd.id);
            }
        }
    }

    fn check_vrf(&mut self, path: String, vrf: u32) {
        if !self.vrfs.contains(&vrf) {
            self.error(path, format!("vrf {vrf} is not declared in vrfs"));
        }
    }

    fn check_mtu(&mut self, path: String, mtu: Option<u32>) {
        if let Some(m) = mtu {
            if !MTU_RANGE.contains(&m) {
                self.error(path, format!("{m} is outside {}", range_text(&MTU_RANGE)));
            }
        }
    }

    fn interfaces(&mut self) {
        let flat = self.flat.clone();
        // A device name is unique within its network namespace.
        let mut host_ifnames: HashMap<(Option<&str>, &str), usize> = HashMap::new();
        for (k, f) in flat.iter().enumerate() {
            // Names: ports and BVIs by the rules, sub-interfaces by their
            // parent's name and tags; all unique.
            if !matches!(f.kind, FlatKind::Sub { .. }) {
                if let Some(p) = name_problem(&f.name) {
                    self.error(format!("{}.name", f.path), p);
                }
            }
            if let Some(&first) = self.by_name.get(&f.name) {
                let other = &flat[first];
                match (f.kind, other.kind) {
                    (FlatKind::Sub { parent, vlan, .. }, FlatKind::Sub { parent: p2, index: at, .. })
                        if parent == p2 =>
                    {
                        let tag = match vlan.inner {
                            Some(i) => format!("{}.{i}", vlan.id),
                            None => vlan.id.to_string(),
                        };
                        self.error(
                            format!("{}.id", f.path),
                            format!("duplicate VLAN {tag} on {} (also vlans[{at}])", flat[parent].name),
                        );
                    }
                    _ => {
                        let path = match f.kind {
                            FlatKind::Sub { .. } => format!("{}.id", f.path),
                            _ => format!("{}.name", f.path),
                        };
                        self.error(path, format!("duplicate name {:?} (also {})", f.name, other.path));
                    }
                }
            } else {
                self.by_name.insert(f.name.clone(), k);
            }
            match f.kind {
                FlatKind::Port(spec) => {
                    match (&spec.host_ifname, spec.port_type) {
                        (Some(_), t @ (PortType::Pg | PortType::Memif)) => {
                            self.error(format!("{}.host_ifname", f.path), format!("{t} interfaces have no host device"))
                        }
                        (None, t) if t != PortType::Pg && t != PortType::Memif => {
                            self.error(format!("{}.host_ifname", f.path), format!("required for type {t}"))
                        }
                        (Some(h), _) => {
                            if let Some(p) = ifname_problem(h) {
                                self.error(format!("{}.host_ifname", f.path), p);
                            } else if let Some(&first) = host_ifnames.get(&(tap_netns(spec), h.as_str())) {
                                self.error(
                                    format!("{}.host_ifname", f.path),
                                    format!("{h:?} is also used by {}", flat[first].path),
                                );
                            } else {
                                host_ifnames.insert((tap_netns(spec), h), k);
                            }
                        }
                        _ => {}
                    }
                    if let Some(ns) = &spec.netns {
                        if spec.port_type != PortType::Tap {
                            self.error(
                                format!("{}.netns", f.path),
                                format!("only tap devices are put in a namespace (this is {})", spec.port_type),
                            );
                        } else if let Some(p) = netns_problem(ns) {
                            self.error(format!("{}.netns", f.path), p);
                        }
                    }
                    if let Some(m) = spec.mac {
                        if let Some(p) = mac_problem(m.0) {
                            self.error(format!("{}.mac", f.path), p);
                        }
                    }
                    self.check_mtu(format!("{}.mtu", f.path), spec.mtu);
                    if let Some(q) = spec.queues {
                        if !QUEUES_RANGE.contains(&q) {
                            self.error(
                                format!("{}.queues", f.path),
                                format!("{q} is outside {}", range_text(&QUEUES_RANGE)),
                            );
                        }
                    }
                }
                FlatKind::Sub { vlan, .. } => {
                    if !VLAN_RANGE.contains(&vlan.id) {
                        self.error(
                            format!("{}.id", f.path),
                            format!("{} is outside {}", vlan.id, range_text(&VLAN_RANGE)),
                        );
                    }
                    if let Some(inner) = vlan.inner {
                        if !VLAN_RANGE.contains(&inner) {
                            self.error(
                                format!("{}.inner", f.path),
                                format!("{inner} is outside {}", range_text(&VLAN_RANGE)),
                            );
                        }
                    }
                    self.check_mtu(format!("{}.mtu", f.path), vlan.mtu);
                    let l2 = matches!(f.mode, FlatMode::Bridge { .. } | FlatMode::XConnect { .. });
                    let rw = vlan.tag_rewrite;
                    if rw != TagRewrite::None && !l2 {
                        self.error(
                            format!("{}.tag_rewrite", f.path),
                            format!(
                                "{} only applies to bridge and xconnect sub-interfaces; this one is {}",
                                rw.name(),
                                f.mode.name()
                            ),
                        );
                    }
                    match rw {
                        TagRewrite::Pop2 if vlan.inner.is_none() => self
                            .error(format!("{}.tag_rewrite", f.path), "pop-2 needs a QinQ sub-interface (set inner)"),
                        TagRewrite::Translate11 { to } if !VLAN_RANGE.contains(&to) => self.error(
                            format!("{}.tag_rewrite.to", f.path),
                            format!("{to} is outside {}", range_text(&VLAN_RANGE)),
                        ),
                        _ => {}
                    }
                }
                FlatKind::Bvi { spec, .. } => {
                    if let Some(m) = spec.mac {
                        if let Some(p) = mac_problem(m.0) {
                            self.error(format!("{}.mac", f.path), p);
                        }
                    }
                    self.check_mtu(format!("{}.mtu", f.path), spec.mtu);
                }
            }
        }
        // Modes, once every name is known.
        for (k, f) in flat.iter().enumerate() {
            match f.mode {
                FlatMode::Disabled => {}
                FlatMode::L3 { vrf, addresses, .. } => {
                    self.check_vrf(format!("{}.vrf", f.mode_path), vrf);
                    for (j, a) in addresses.iter().enumerate() {
                        if let Some(p) = address_problem(a) {
                            self.error(format!("{}.addresses[{j}]", f.mode_path), p);
                        }
                    }
                }
                FlatMode::Bridge { bd, .. } => {
                    if !self.bds.contains(&bd) {
                        self.error(
                            format!("{}.domain", f.mode_path),
                            format!("bridge domain {bd} is not declared in bridge_domains"),
                        );
                    }
                }
                FlatMode::XConnect { peer } => {
                    let path = format!("{}.peer", f.mode_path);
                    match self.by_name.get(peer).map(|&i| (i, &flat[i])) {
                        None => self.error(path, format!("no interface named {peer:?}")),
                        Some((i, _)) if i == k => self.error(path, "an interface cannot be cross-connected to itself"),
                        Some((_, p)) if matches!(p.kind, FlatKind::Bvi { .. }) => self.error(
                            path,
                            format!("{peer:?} is a BVI; only ports and VLAN sub-interfaces can be cross-connected"),
                        ),
                        Some((_, p)) => {
                            let back = matches!(p.mode, FlatMode::XConnect { peer: b } if b == f.name);
                            if !back {
                                self.warn(
                                    path,
                                    format!(
                                        "one-way cross-connect: {peer:?} does not cross-connect back to {:?}",
                                        f.name
                                    ),
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// memif settings: only on memif interfaces, values in range, and per
    /// socket one role and unique interface ids.
    fn memif(&mut self) {
        // socket -> (role, path of the first interface on it); (socket, id)
        // -> path of the first interface with it.
        let mut roles: HashMap<String, (MemifRole, String)> = HashMap::new();
        let mut ids: HashMap<(String, u32), String> = HashMap::new();
        for spec_at in 0..self.flat.len() {
            let f = &self.flat[spec_at];
            let FlatKind::Port(spec) = f.kind else { continue };
            let path = f.path.clone();
            if spec.port_type != PortType::Memif {
                if spec.memif.is_some() {
                    self.error(
                        format!("{path}.memif"),
                        format!("only memif interfaces have memif settings (this is {})", spec.port_type),
                    );
                }
                continue;
            }
            let default = MemifSpec::default();
            let m = spec.memif.as_ref().unwrap_or(&default);
            let queues = spec.queues.unwrap_or(1);
            if QUEUES_RANGE.contains(&queues) && !MEMIF_QUEUES_RANGE.contains(&queues) {
                self.error(
                    format!("{path}.queues"),
                    format!("{queues} is more than a memif interface has ({})", range_text(&MEMIF_QUEUES_RANGE)),
                );
            }
            let p = format!("{path}.memif");
            if let Some(e) = memif_socket_problem(&m.socket) {
                self.error(format!("{p}.socket"), e);
            }
            if let Some(secret) = &m.secret {
                if secret.is_empty() || secret.len() > 24 || secret.contains('\0') {
                    self.error(
                        format!("{p}.secret"),
                        format!("is {} bytes; a secret is 1 to 24 bytes, no NUL", secret.len()),
                    );
                }
            }
            // IP mode: the port adds and strips an Ethernet header and
            // answers the peer's ARP/ND itself, which only routing needs.
            if m.mode == MemifMode::Ip && !matches!(spec.mode, crate::model::Mode::L3(_)) {
                self.error(
                    format!("{p}.mode"),
                    "ip carries bare IP packets: only a routed interface (l3) can use it, not bridge or xconnect",
                );
            }
            if m.mode == MemifMode::Ip && !spec.vlans.is_empty() {
                self.error(format!("{p}.mode"), "ip carries no Ethernet header, so no VLAN sub-interfaces");
            }
            if !m.ring_size.is_power_of_two() || !MEMIF_RING_SIZE_RANGE.contains(&m.ring_size) {
                self.error(
                    format!("{p}.ring_size"),
                    format!("{} is not a power of two in {}", m.ring_size, range_text(&MEMIF_RING_SIZE_RANGE)),
                );
            }
            if !MEMIF_BUFFER_SIZE_RANGE.contains(&m.buffer_size) {
                self.error(
                    format!("{p}.buffer_size"),
                    format!("{} is outside {}", m.buffer_size, range_text(&MEMIF_BUFFER_SIZE_RANGE)),
                );
            }
            // A client makes the shared memory: rings and buffers of every
            // queue pair, addressed with 32-bit offsets.
            let need = 2 * u64::from(queues) * u64::from(m.ring_size) * (u64::from(m.buffer_size) + 16);
            if m.role == MemifRole::Client && need > 1 << 32 {
                self.error(
                    p.clone(),
                    format!(
                        "{queues} queue pairs of {} x {}-byte buffers need {need} bytes of shared memory, \
                         more than 4 GiB",
                        m.ring_size, m.buffer_size
                    ),
                );
            }
            match roles.get(m.socket.as_str()) {
                Some((role, first)) if *role != m.role => self.error(
                    format!("{p}.role"),
                    format!(
                        "socket {} is used in the {} role by {first}; one socket is either served or connected to",
                        m.socket,
                        role.as_str()
                    ),
                ),
                Some(_) => {}
                None => {
                    roles.insert(m.socket.clone(), (m.role, path.clone()));
                }
            }
            match ids.get(&(m.socket.clone(), m.id)) {
                Some(first) => {
                    self.error(format!("{p}.id"), format!("{} is also used on socket {} by {first}", m.id, m.socket))
                }
                None => {
                    ids.insert((m.socket.clone(), m.id), path);
                }
            }
        }
    }

    /// Interface addresses: no two overlap inside one VRF (one interface's
    /// own addresses included). Each address that overlaps one declared
    /// before it is reported once, naming the first it overlaps.
    fn overlaps(&mut self) {
        // (vrf, family, network, prefix length, flat index, address index,
        // the address as written): sorted, a prefix's containers come
        // before it, and when it comes up they are exactly the stack.
        type Entry = (u32, u8, u128, u8, usize, usize, IpNet);
        let mut all: Vec<Entry> = Vec::new();
        for (k, f) in self.flat.iter().enumerate() {
            let FlatMode::L3 { vrf, addresses, .. } = f.mode else { continue };
            for (j, a) in addresses.iter().enumerate() {
                if address_problem(a).is_some() {
                    continue;
                }
                let (fam, net) = match a.trunc() {
                    IpNet::V4(n) => (4, u32::from(n.network()) as u128),
                    IpNet::V6(n) => (6, u128::from(n.network())),
                };
                all.push((vrf, fam, net, a.prefix_len(), k, j, *a));
            }
        }
        all.sort_unstable();
        // Later declaration -> the earliest declaration it overlaps.
        let mut first_overlap: HashMap<(usize, usize), Entry> = HashMap::new();
        let mut stack: Vec<Entry> = Vec::new();
        for e in all {
            while let Some(top) = stack.last() {
                if top.0 == e.0 && top.1 == e.1 && top.6.trunc().contains(&e.6.trunc()) {
                    break;
                }
                stack.pop();
            }
            for &s in &stack {
                let (later, earlier) = if (s.4, s.5) < (e.4, e.5) { (e, s) } else { (s, e) };
                let slot = first_overlap.entry((later.4, later.5)).or_insert(earlier);
                if (earlier.4, earlier.5) < (slot.4, slot.5) {
                    *slot = earlier;
                }
            }
            stack.push(e);
        }
        let mut found: Vec<((usize, usize), Entry)> = first_overlap.into_iter().collect();
        found.sort_unstable_by_key(|(at, _)| *at);
        for ((k, j), earlier) in found {
            let FlatMode::L3 { vrf, addresses, .. } = self.flat[k].mode else { unreachable!("an L3 address") };
            let path = format!("{}.addresses[{j}]", self.flat[k].mode_path);
            let msg = format!("{} overlaps {} of {} in vrf {vrf}", addresses[j], earlier.6, self.flat[earlier.4].path);
            self.error(path, msg);
        }
    }

    fn bridge_domain_contents(&mut self) {
        for (i, bd) in self.state.bridge_domains.iter().enumerate() {
            let path = format!("bridge_domains[{i}]");
            let bvi_mac = self
                .flat
                .iter()
                .find(|f| matches!(f.kind, FlatKind::Bvi { bd: b, .. } if b == bd.id))
                .map(|f| (f.mac, f.name.clone()));
            let mut macs: HashMap<MacAddr, usize> = HashMap::new();
            for (j, s) in bd.static_macs.iter().enumerate() {
                let p = format!("{path}.static_macs[{j}]");
                let mac = s.mac.0;
                if let Some(e) = mac_problem(mac) {
                    self.error(format!("{p}.mac"), e);
                } else if bvi_mac.as_ref().is_some_and(|(m, _)| *m == mac) {
                    self.error(format!("{p}.mac"), format!("{mac} is the BVI's MAC (installed automatically)"));
                } else if let Some(first) = macs.get(&mac) {
                    self.error(format!("{p}.mac"), format!("duplicate MAC {mac} (also static_macs[{first}])"));
                } else {
                    macs.insert(mac, j);
                }
                match self.by_name.get(&s.interface).map(|&k| &self.flat[k]) {
                    None => self.error(format!("{p}.interface"), format!("no interface named {:?}", s.interface)),
                    Some(f) => {
                        let member = match (f.kind, f.mode) {
                            (FlatKind::Bvi { bd: b, .. }, _) => b == bd.id,
                            (_, FlatMode::Bridge { bd: b, .. }) => b == bd.id,
                            _ => false,
                        };
                        if !member {
                            self.error(
                                format!("{p}.interface"),
                                format!("{:?} is not a member of bridge domain {}", s.interface, bd.id),
                            );
                        }
                    }
                }
            }
            let mut ips: HashMap<Ipv4Addr, usize> = HashMap::new();
            for (j, a) in bd.arp_entries.iter().enumerate() {
                let p = format!("{path}.arp_entries[{j}]");
                if !ip_unicast(IpAddr::V4(a.ip)) {
                    self.error(format!("{p}.ip"), format!("{} is not a unicast address", a.ip));
                } else if let Some(first) = ips.get(&a.ip) {
                    self.error(format!("{p}.ip"), format!("duplicate address {} (also arp_entries[{first}])", a.ip));
                } else {
                    ips.insert(a.ip, j);
                }
                if let Some(e) = mac_problem(a.mac.0) {
                    self.error(format!("{p}.mac"), e);
                }
            }
            if !bd.arp_entries.is_empty() && !bd.arp_termination {
                self.warn(format!("{path}.arp_entries"), "no effect: arp_termination is false");
            }
        }
    }

    /// A routed interface by name: its flat index and VRF, or an error at
    /// `path`.
    fn l3_interface(&mut self, path: &str, name: &str) -> Option<(usize, u32)> {
        let Some(&k) = self.by_name.get(name) else {
            self.error(path, format!("no interface named {name:?}"));
            return None;
        };
        match self.flat[k].mode {
            FlatMode::L3 { vrf, .. } => Some((k, vrf)),
            m => {
                self.error(path, format!("{name:?} is not a routed (l3) interface: its mode is {}", m.name()));
                None
            }
        }
    }

    fn route_interface(&mut self, path: String, name: &str, vrf: u32) {
        if let Some((_, ivrf)) = self.l3_interface(&path, name) {
            if ivrf != vrf {
                self.error(path, format!("{name:?} is in vrf {ivrf}, not the route's vrf {vrf}"));
            }
        }
    }

    /// Our addresses: (vrf, address) → interface name, and connected
    /// subnets (vrf, subnet) → interface name.
    fn own(&self) -> (OwnAddresses, OwnSubnets) {
        let mut addrs = HashMap::new();
        let mut subnets = HashMap::new();
        for f in &self.flat {
            let FlatMode::L3 { vrf, addresses, .. } = f.mode else { continue };
            for a in addresses {
                addrs.entry((vrf, a.addr())).or_insert_with(|| f.name.clone());
                if a.prefix_len() < a.max_prefix_len() {
                    subnets.entry((vrf, a.trunc())).or_insert_with(|| f.name.clone());
                }
            }
        }
        (addrs, subnets)
    }

    fn routes(&mut self) {
        let (own, subnets) = self.own();
        let mut seen: HashMap<(u32, IpNet), usize> = HashMap::new();
        for (i, r) in self.state.routes.iter().enumerate() {
            let path = format!("routes[{i}]");
            self.check_vrf(format!("{path}.vrf"), r.vrf);
            let prefix = r.prefix;
            if prefix.trunc() != prefix {
                self.error(format!("{path}.prefix"), format!("{prefix} has host bits set; write {}", prefix.trunc()));
            } else if let Some(first) = seen.get(&(r.vrf, prefix)) {
                self.error(
                    format!("{path}.prefix"),
                    format!("duplicate route to {prefix} in vrf {} (also routes[{first}])", r.vrf),
                );
            } else {
                seen.insert((r.vrf, prefix), i);
                if let Some(n) = subnets.get(&(r.vrf, prefix)) {
                    self.warn(
                        format!("{path}.prefix"),
                        format!("{prefix} is the subnet of {n}; the connected route takes precedence"),
                    );
                } else if prefix.prefix_len() == prefix.max_prefix_len() {
                    if let Some(n) = own.get(&(r.vrf, prefix.addr())) {
                        self.warn(
                            format!("{path}.prefix"),
                            format!("{} is an address of {n}; the local route takes precedence", prefix.addr()),
                        );
                    }
                }
            }
            match &r.target {
                RouteTarget::Via(hops) => {
                    if hops.is_empty() {
                        self.error(format!("{path}.via"), "needs at least one next hop");
                    } else if hops.len() > MAX_NEXT_HOPS {
                        self.error(
                            format!("{path}.via"),
                            format!("{} next hops exceed the maximum of {MAX_NEXT_HOPS}", hops.len()),
                        );
                    } else if hops.iter().all(|h| h.weight == 0) {
                        self.error(format!("{path}.via"), "every next hop has weight 0; at least one must not");
                    }
                    let mut dup: HashMap<(IpAddr, &str), usize> = HashMap::new();
                    for (j, h) in hops.iter().enumerate() {
                        let hp = format!("{path}.via[{j}]");
                        if h.address.is_ipv4() != prefix.addr().is_ipv4() {
                            let fam = if h.address.is_ipv4() { "IPv4" } else { "IPv6" };
                            self.error(
                                format!("{hp}.address"),
                                format!("{} is {fam} but the prefix {prefix} is {}", h.address, family(&prefix)),
                            );
                        } else if !ip_unicast(h.address) {
                            self.error(format!("{hp}.address"), format!("{} is not a unicast address", h.address));
                        } else if let Some(first) = dup.get(&(h.address, h.interface.as_str())) {
                            self.error(
                                format!("{hp}.address"),
                                format!("duplicate next hop {} via {} (also via[{first}])", h.address, h.interface),
                            );
                        } else {
                            dup.insert((h.address, &h.interface), j);
                        }
                        self.route_interface(format!("{hp}.interface"), &h.interface, r.vrf);
                    }
                }
                RouteTarget::Interface(name) => self.route_interface(format!("{path}.interface"), name, r.vrf),
                RouteTarget::Special(_) => {}
            }
        }
    }

    /// The `sr:` section (`crate::sr`).
    fn owners(&mut self) {
        for (i, spec) in self.state.interfaces.iter().enumerate() {
            let Some(owner) = &spec.owner else { continue };
            let path = format!("interfaces[{i}] ({}).owner", spec.name);
            if owner.is_empty() || owner.len() > MAX_OWNER_LEN {
                self.error(path, format!("{} bytes; an owner is 1 to {MAX_OWNER_LEN}", owner.len()));
            } else if owner.chars().any(char::is_control) {
                self.error(path, "contains a control character");
            }
        }
    }

    fn networks(&mut self) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, n) in self.state.networks.iter().enumerate() {
            let path = format!("networks[{i}] ({})", n.name);
            if let Some(p) = network_name_problem(&n.name) {
                self.error(format!("{path}.name"), p);
            } else if let Some(first) = names.insert(&n.name, i) {
                self.error(format!("{path}.name"), format!("duplicate network name (also networks[{first}])"));
            }
            match (n.bridge_domain, n.vrf) {
                (Some(_), Some(_)) => self.error(path.clone(), "set one of bridge_domain (L2) and vrf (L3), not both"),
                (None, None) => self.error(path.clone(), "set bridge_domain (an L2 network) or vrf (an L3 network)"),
                (Some(bd), None) if !self.bds.contains(&bd) => {
                    self.error(format!("{path}.bridge_domain"), format!("no bridge domain {bd}"))
                }
                (None, Some(vrf)) => self.check_vrf(format!("{path}.vrf"), vrf),
                _ => {}
            }
            if let Some(mtu) = n.mtu.filter(|m| !MTU_RANGE.contains(m)) {
                self.error(format!("{path}.mtu"), format!("{mtu} is outside {}", range_text(&MTU_RANGE)));
            }
        }
    }

    fn srv6(&mut self) {
        let view = crate::sr::IfView { flat: &self.flat, by_name: &self.by_name, vrfs: &self.vrfs };
        let errors = crate::sr::check(self.state, &view);
        self.errors.extend(errors);
    }

    fn neighbors(&mut self) {
        let (own, _) = self.own();
        let mut seen: HashMap<(&str, IpAddr), usize> = HashMap::new();
        for (i, n) in self.state.neighbors.iter().enumerate() {
            let path = format!("neighbors[{i}]");
            let intf = self.l3_interface(&format!("{path}.interface"), &n.interface);
            if !ip_unicast(n.ip) {
                self.error(format!("{path}.ip"), format!("{} is not a unicast address", n.ip));
            } else if let Some(first) = seen.get(&(n.interface.as_str(), n.ip)) {
                self.error(
                    format!("{path}.ip"),
                    format!("duplicate neighbor {} on {} (also neighbors[{first}])", n.ip, n.interface),
                );
            } else {
                seen.insert((&n.interface, n.ip), i);
                if let Some((_, vrf)) = intf {
                    if let Some(owner) = own.get(&(vrf, n.ip)) {
                        self.error(format!("{path}.ip"), format!("{} is an address of {owner}", n.ip));
                    }
                }
            }
            if let Some(e) = mac_problem(n.mac.0) {
                self.error(format!("{path}.mac"), e);
            }
        }
    }
}
