//! The configuration snapshot every node reads: interfaces, their modes,
//! VLAN sub-interfaces, bridge domains. The control plane builds a new
//! [`Tables`] per change and publishes it; workers pick it up at the top of
//! their loop. Large, incrementally updated state (FIB, MAC tables,
//! neighbors) is shared by `Arc` between snapshots, not copied.

use rustc_hash::FxHashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use vswitch_wire::MacAddr;

/// Index of a software interface (a port, a VLAN sub-interface, a BVI).
pub type SwIf = u32;

/// Marks "no interface" / "no port".
pub const NONE: u32 = u32::MAX;

/// What kind of interface it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfKind {
    /// A port: packets arrive from and leave by a port backend.
    Port,
    /// A VLAN sub-interface of `parent`, matching `tags` exactly.
    SubIf { parent: SwIf, tags: VlanTags },
    /// The bridge-virtual interface of a bridge domain: routes into and
    /// out of the bridge.
    Bvi { bd: u16 },
}

/// The VLAN tags of a sub-interface (outer first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VlanTags {
    /// Number of tags: 0, 1 (dot1q) or 2 (QinQ).
    pub count: u8,
    /// Outer tag: (TPID, VLAN id).
    pub outer: (u16, u16),
    /// Inner tag: (TPID, VLAN id), when `count` is 2.
    pub inner: (u16, u16),
}

impl VlanTags {
    /// One 802.1Q tag.
    pub fn dot1q(vid: u16) -> VlanTags {
        VlanTags { count: 1, outer: (vswitch_wire::ethertype::VLAN, vid), inner: (0, 0) }
    }

    /// Two tags: 802.1ad outer, 802.1Q inner.
    pub fn qinq(outer: u16, inner: u16) -> VlanTags {
        VlanTags {
            count: 2,
            outer: (vswitch_wire::ethertype::QINQ, outer),
            inner: (vswitch_wire::ethertype::VLAN, inner),
        }
    }

    /// Bytes these tags take on the wire.
    pub fn len(&self) -> usize {
        self.count as usize * 4
    }

    /// Whether there is no tag.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// How an interface forwards what it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfMode {
    /// Not forwarding: everything received is dropped.
    Disabled,
    /// Routed, in a VRF.
    L3 { vrf: u32 },
    /// A member of a bridge domain, in a split-horizon group (0 = none).
    Bridge { bd: u16, shg: u8 },
    /// Cross-connected: everything received leaves by `peer`.
    XConnect { peer: SwIf },
}

/// VLAN tag rewrite on an L2 interface (VPP's `l2 tag-rewrite`): on input,
/// pop `pop` tags then push `push`; output applies the inverse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VlanRewrite {
    /// Tags to remove from received frames (0, 1 or 2).
    pub pop: u8,
    /// Tags to add to received frames, after popping.
    pub push: VlanTags,
}

impl VlanRewrite {
    /// Whether it does nothing.
    pub fn is_noop(&self) -> bool {
        self.pop == 0 && self.push.count == 0
    }
}

/// One software interface.
#[derive(Clone, Debug)]
pub struct Interface {
    /// Its name, as the CLI shows it.
    pub name: String,
    /// Its index.
    pub sw_if: SwIf,
    /// Port, sub-interface or BVI.
    pub kind: IfKind,
    /// The port packets leave by ([`NONE`] for a BVI).
    pub port: u32,
    /// Its MAC address.
    pub mac: MacAddr,
    /// IP MTU: the largest IP packet sent on it.
    pub mtu: u16,
    /// Administratively up.
    pub up: bool,
    /// How it forwards.
    pub mode: IfMode,
    /// L2 VLAN tag rewrite.
    pub rewrite: VlanRewrite,
    /// IPv4 addresses with prefix length.
    pub ip4: Vec<(Ipv4Addr, u8)>,
    /// IPv6 addresses with prefix length.
    pub ip6: Vec<(Ipv6Addr, u8)>,
    /// Answer ARP for any address routed elsewhere (a pod's gateway).
    pub proxy_arp: bool,
    /// Answer ND for any address routed elsewhere.
    pub proxy_nd: bool,
}

impl Interface {
    /// A port interface in `mode`, up, with a 1500-byte MTU.
    pub fn port(sw_if: SwIf, name: &str, port: u32, mac: MacAddr, mode: IfMode) -> Interface {
        Interface {
            name: name.to_string(),
            sw_if,
            kind: IfKind::Port,
            port,
            mac,
            mtu: 1500,
            up: true,
            mode,
            rewrite: VlanRewrite::default(),
            ip4: Vec::new(),
            ip6: Vec::new(),
            proxy_arp: false,
            proxy_nd: false,
        }
    }

    /// VLAN tags this interface's frames carry on its port.
    pub fn tags(&self) -> VlanTags {
        match &self.kind {
            IfKind::SubIf { tags, .. } => *tags,
            _ => VlanTags::default(),
        }
    }
}

/// Bridge-domain settings.
#[derive(Clone, Debug)]
pub struct BridgeDomainConfig {
    /// Its id.
    pub bd: u16,
    /// Learn source MACs.
    pub learn: bool,
    /// Forward by the MAC table (off: flood everything).
    pub forward: bool,
    /// Flood unknown unicast.
    pub flood_unknown: bool,
    /// Flood broadcast and multicast.
    pub flood_broadcast: bool,
    /// Answer ARP requests from the BD's IP-to-MAC table.
    pub arp_term: bool,
    /// Most MACs learned (static entries do not count).
    pub mac_limit: u32,
    /// Learned MACs age out after this many seconds (0: never).
    pub mac_age_secs: u32,
    /// The BVI, when the BD routes.
    pub bvi: Option<SwIf>,
}

impl BridgeDomainConfig {
    /// Defaults like VPP's: learn, forward, flood, no ARP termination.
    pub fn new(bd: u16) -> Self {
        BridgeDomainConfig {
            bd,
            learn: true,
            forward: true,
            flood_unknown: true,
            flood_broadcast: true,
            arp_term: false,
            mac_limit: 1 << 20,
            mac_age_secs: 300,
            bvi: None,
        }
    }
}

/// The snapshot: everything nodes read about configuration.
#[derive(Clone, Default)]
pub struct Tables {
    /// Interfaces by index (gaps are `None`).
    pub interfaces: Vec<Option<Interface>>,
    /// (parent, outer vid, inner vid or 0xffff) to sub-interface.
    pub sub_ifs: FxHashMap<(SwIf, u16, u16), SwIf>,
    /// Bridge domains by id (gaps are `None`).
    pub bridge_domains: Vec<Option<Arc<crate::l2::BridgeDomain>>>,
    /// Which interface each port's packets arrive on, by port index.
    pub port_if: Vec<SwIf>,
    /// The IPv4/IPv6 FIB and neighbor table, shared by every snapshot
    /// (lock-free lookups; changed through `fib.control()`). The default
    /// is an empty FIB with small tables; a control plane installs its own
    /// sized one (`IpFib::new(IpFibConfig::default())`).
    pub fib: Arc<crate::ip::fib::IpFib>,
    /// SRv6 local SIDs, policies and steering (immutable, replaced with
    /// the snapshot; the FIB's SR adjacencies index it).
    pub sr: Arc<crate::srv6::SrTable>,
}

impl Tables {
    /// An interface by index.
    #[inline(always)]
    pub fn interface(&self, sw_if: SwIf) -> Option<&Interface> {
        self.interfaces.get(sw_if as usize).and_then(Option::as_ref)
    }

    /// A bridge domain by id.
    #[inline(always)]
    pub fn bridge_domain(&self, bd: u16) -> Option<&Arc<crate::l2::BridgeDomain>> {
        self.bridge_domains.get(bd as usize).and_then(Option::as_ref)
    }

    /// Adds or replaces an interface, keeping the sub-interface and port
    /// maps in step.
    pub fn set_interface(&mut self, i: Interface) {
        let idx = i.sw_if as usize;
        if self.interfaces.len() <= idx {
            self.interfaces.resize(idx + 1, None);
        }
        self.sub_ifs.retain(|_, v| *v != i.sw_if);
        if let IfKind::SubIf { parent, tags } = &i.kind {
            let inner = if tags.count == 2 { tags.inner.1 } else { 0xffff };
            self.sub_ifs.insert((*parent, tags.outer.1, inner), i.sw_if);
        }
        if matches!(i.kind, IfKind::Port) && i.port != NONE {
            let p = i.port as usize;
            if self.port_if.len() <= p {
                self.port_if.resize(p + 1, NONE);
            }
            self.port_if[p] = i.sw_if;
        }
        self.interfaces[idx] = Some(i);
    }

    /// Adds or replaces a bridge domain.
    pub fn set_bridge_domain(&mut self, bd: Arc<crate::l2::BridgeDomain>) {
        let idx = bd.config.bd as usize;
        if self.bridge_domains.len() <= idx {
            self.bridge_domains.resize(idx + 1, None);
        }
        self.bridge_domains[idx] = Some(bd);
    }

    /// The sub-interface of `parent` for these VLAN ids (inner 0xffff: none).
    #[inline]
    pub fn sub_if(&self, parent: SwIf, outer: u16, inner: u16) -> Option<SwIf> {
        if self.sub_ifs.is_empty() {
            return None;
        }
        self.sub_ifs.get(&(parent, outer, inner)).copied()
    }
}
