//! The desired-state model: what the node should look like, as the CNI
//! plugin, the Kubernetes agent and `vswitchctl` all write it, and as it is
//! persisted. Plain data with serde (YAML), every struct with
//! `deny_unknown_fields` so a misspelt key is an error, not a silently
//! ignored setting. `docs/config.md` documents every field.
//!
//! Choices that can be made impossible by the types are: an interface (or
//! VLAN) has one forwarding [`Mode`], so "bridged and routed at once"
//! cannot be written; a route has one [`RouteTarget`]; a BVI is declared
//! inside its bridge domain, so it cannot name a domain that does not
//! exist. Everything else is checked by [`crate::validate()`].

use ipnet::IpNet;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use vswitch_wire::MacAddr;

/// Everything the control plane is asked to make true.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredState {
    /// Port interfaces, each with its VLAN sub-interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceSpec>,
    /// L2 bridge domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bridge_domains: Vec<BridgeDomainSpec>,
    /// VRFs (routing tables). VRF 0 exists whether declared or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vrfs: Vec<VrfSpec>,
    /// Static routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteSpec>,
    /// Static neighbors (ARP / ND entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbors: Vec<NeighborSpec>,
    /// SRv6: local SIDs, policies, steering, HMAC keys (`crate::sr`).
    #[serde(default, skip_serializing_if = "crate::sr::SrSpec::is_empty")]
    pub sr: crate::sr::SrSpec,
    /// Named networks pods attach to (the CNI plugin's catalogue).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkSpec>,
}

/// A named network: an L2 bridge domain or an L3 VRF that the CNI plugin
/// attaches pods to when a network configuration names it. vswitch
/// checks that what it names exists; it forwards nothing by itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Unique, 1 to 63 characters: letters, digits, `.`, `-`, `_`.
    pub name: String,
    /// L2: pods are members of this bridge domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge_domain: Option<u16>,
    /// L3: pods are routed (a host route each) in this VRF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrf: Option<u32>,
    /// The MTU of pods' interfaces on it (default: the interface default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// Why a YAML document could not be read as a [`DesiredState`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What went wrong, with the field path and position when known
    /// (serde_norway's text, e.g. `interfaces[0]: unknown field `mtuu`,
    /// expected one of ... at line 3 column 5`).
    pub message: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

impl DesiredState {
    /// Reads a YAML document (an empty one is the empty state).
    pub fn from_yaml(text: &str) -> Result<DesiredState, ParseError> {
        if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
            return Ok(DesiredState::default());
        }
        serde_norway::from_str(text).map_err(|e| {
            let loc = e.location();
            ParseError { message: e.to_string(), line: loc.as_ref().map(|l| l.line()), column: loc.map(|l| l.column()) }
        })
    }

    /// Writes it as a YAML document that [`DesiredState::from_yaml`] reads
    /// back to an equal value.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).expect("the desired state always serializes")
    }
}

/// The backend of a port interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortType {
    /// A tap device the daemon creates (or attaches to) in the host.
    Tap,
    /// An existing host netdev read with AF_PACKET.
    AfPacket,
    /// An existing host netdev read with AF_XDP.
    AfXdp,
    /// The packet generator: no host device (tests and benchmarks).
    Pg,
    /// A memif interface (shared-memory rings with a CNF, VPP or DPDK):
    /// no host device; settings in [`InterfaceSpec::memif`].
    Memif,
}

impl PortType {
    /// Its name in the YAML (`tap`, `af-packet`, `af-xdp`, `pg`, `memif`).
    pub fn as_str(&self) -> &'static str {
        match self {
            PortType::Tap => "tap",
            PortType::AfPacket => "af-packet",
            PortType::AfXdp => "af-xdp",
            PortType::Pg => "pg",
            PortType::Memif => "memif",
        }
    }
}

impl fmt::Display for PortType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A MAC address written `02:fe:00:00:00:01` in YAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub MacAddr);

impl From<Mac> for MacAddr {
    fn from(m: Mac) -> MacAddr {
        m.0
    }
}

impl From<MacAddr> for Mac {
    fn from(m: MacAddr) -> Mac {
        Mac(m)
    }
}

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Mac, String> {
        MacAddr::from_str(s).map(Mac).map_err(|_| format!("{s:?} is not a MAC address (write 02:fe:00:00:00:01)"))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// The MAC an interface gets when none is configured: locally
/// administered `02:fe` followed by 32 bits of the FNV-1a hash of its
/// name, so it is the same on every start.
pub fn generated_mac(name: &str) -> MacAddr {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    let b = h.to_be_bytes();
    MacAddr([0x02, 0xfe, b[0], b[1], b[2], b[3]])
}

/// How an interface forwards what it receives: at most one of `l3`,
/// `bridge`, `xconnect` in the YAML; none of them is `Disabled`.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Mode {
    /// Not forwarding (received frames are dropped).
    #[default]
    Disabled,
    /// Routed.
    L3(L3Spec),
    /// A member of a bridge domain.
    Bridge(BridgeSpec),
    /// Cross-connected to another interface.
    XConnect(XConnectSpec),
}

impl Mode {
    fn from_parts(
        l3: Option<L3Spec>,
        bridge: Option<BridgeSpec>,
        xconnect: Option<XConnectSpec>,
    ) -> Result<Mode, String> {
        let set: Vec<&str> = [("l3", l3.is_some()), ("bridge", bridge.is_some()), ("xconnect", xconnect.is_some())]
            .into_iter()
            .filter(|(_, s)| *s)
            .map(|(n, _)| n)
            .collect();
        if set.len() > 1 {
            return Err(format!("set at most one of l3, bridge and xconnect (found {})", set.join(" and ")));
        }
        Ok(match (l3, bridge, xconnect) {
            (Some(l), _, _) => Mode::L3(l),
            (_, Some(b), _) => Mode::Bridge(b),
            (_, _, Some(x)) => Mode::XConnect(x),
            _ => Mode::Disabled,
        })
    }

    fn into_parts(self) -> (Option<L3Spec>, Option<BridgeSpec>, Option<XConnectSpec>) {
        match self {
            Mode::Disabled => (None, None, None),
            Mode::L3(l) => (Some(l), None, None),
            Mode::Bridge(b) => (None, Some(b), None),
            Mode::XConnect(x) => (None, None, Some(x)),
        }
    }

    /// `l3`, `bridge`, `xconnect` or `disabled`.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Disabled => "disabled",
            Mode::L3(_) => "l3",
            Mode::Bridge(_) => "bridge",
            Mode::XConnect(_) => "xconnect",
        }
    }
}

/// Routed: a VRF and addresses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L3Spec {
    /// The VRF (default 0).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub vrf: u32,
    /// Addresses with prefix length (`10.0.1.1/24`, `fd00:1::1/64`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpNet>,
    /// Answer ARP for addresses routed elsewhere (a pod's gateway).
    #[serde(default, skip_serializing_if = "is_false")]
    pub proxy_arp: bool,
    /// Answer neighbor solicitations for addresses routed elsewhere.
    #[serde(default, skip_serializing_if = "is_false")]
    pub proxy_nd: bool,
}

/// A member of a bridge domain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSpec {
    /// The bridge domain's id.
    pub domain: u16,
    /// Split-horizon group (0: none): members of one non-zero group never
    /// forward to each other.
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub split_horizon_group: u8,
}

/// Cross-connected: everything received leaves by `peer`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XConnectSpec {
    /// The interface (port or VLAN sub-interface) frames leave by.
    pub peer: String,
}

/// A port interface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawInterface", into = "RawInterface")]
pub struct InterfaceSpec {
    /// Unique name, 1..=15 characters: letters, digits, `-`, `_`.
    pub name: String,
    /// The backend.
    pub port_type: PortType,
    /// The host device: created/attached (tap) or bound (af-packet,
    /// af-xdp); none for pg.
    pub host_ifname: Option<String>,
    /// Tap only: the network namespace the device is created in (or
    /// attached to), a name under `/run/netns` or an absolute path. The
    /// daemon puts the device there and configures nothing else in it.
    pub netns: Option<String>,
    /// Its MAC ([`generated_mac`] of the name when absent).
    pub mac: Option<Mac>,
    /// IP MTU, 68..=9000 (default 1500).
    pub mtu: Option<u32>,
    /// Administratively up (default true).
    pub up: bool,
    /// Receive queues (default 1).
    pub queues: Option<u16>,
    /// How it forwards.
    pub mode: Mode,
    /// VLAN sub-interfaces.
    pub vlans: Vec<VlanSpec>,
    /// memif only: the memif settings (all defaults when absent).
    pub memif: Option<MemifSpec>,
    /// Who made it (the CNI plugin writes `cni:<container>:<ifname>`).
    /// vswitch only compares it: `Patch` removes interfaces by owner and
    /// refuses to replace one that has another owner.
    pub owner: Option<String>,
}

impl InterfaceSpec {
    /// A pg interface named `name`, up, disabled, everything else default.
    pub fn pg(name: &str) -> InterfaceSpec {
        InterfaceSpec {
            name: name.to_string(),
            port_type: PortType::Pg,
            host_ifname: None,
            netns: None,
            mac: None,
            mtu: None,
            up: true,
            queues: None,
            mode: Mode::Disabled,
            vlans: Vec::new(),
            memif: None,
            owner: None,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: String,
    #[serde(rename = "type")]
    port_type: PortType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host_ifname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    netns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<Mac>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtu: Option<u32>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    up: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queues: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l3: Option<L3Spec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bridge: Option<BridgeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xconnect: Option<XConnectSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    vlans: Vec<VlanSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memif: Option<MemifSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
}

impl TryFrom<RawInterface> for InterfaceSpec {
    type Error = String;
    fn try_from(r: RawInterface) -> Result<Self, String> {
        let mode = Mode::from_parts(r.l3, r.bridge, r.xconnect).map_err(|e| format!("interface {:?}: {e}", r.name))?;
        Ok(InterfaceSpec {
            name: r.name,
            port_type: r.port_type,
            host_ifname: r.host_ifname,
            netns: r.netns,
            mac: r.mac,
            mtu: r.mtu,
            up: r.up,
            queues: r.queues,
            mode,
            vlans: r.vlans,
            memif: r.memif,
            owner: r.owner,
        })
    }
}

impl From<InterfaceSpec> for RawInterface {
    fn from(i: InterfaceSpec) -> RawInterface {
        let (l3, bridge, xconnect) = i.mode.into_parts();
        RawInterface {
            name: i.name,
            port_type: i.port_type,
            host_ifname: i.host_ifname,
            netns: i.netns,
            mac: i.mac,
            mtu: i.mtu,
            up: i.up,
            queues: i.queues,
            l3,
            bridge,
            xconnect,
            vlans: i.vlans,
            memif: i.memif,
            owner: i.owner,
        }
    }
}

/// The memif settings of a `type: memif` interface. Its queue pairs are
/// the interface's `queues`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemifSpec {
    /// Which end of the protocol vswitch is (default `server`).
    #[serde(default, skip_serializing_if = "MemifRole::is_server")]
    pub role: MemifRole,
    /// The control socket: an absolute path, or `@name` for an abstract
    /// socket (default `/run/vswitch/memif.sock`). Interfaces on one
    /// path share one server (or client), told apart by `id`.
    #[serde(default = "default_memif_socket", skip_serializing_if = "is_default_memif_socket")]
    pub socket: String,
    /// The memif interface id, unique per socket (default 0).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub id: u32,
    /// Shared secret, 1 to 24 bytes (a server refuses clients without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Ethernet frames or IP packets (default `ethernet`).
    #[serde(default, skip_serializing_if = "MemifMode::is_ethernet")]
    pub mode: MemifMode,
    /// Descriptors per ring, a power of two in 256..=16384 (default 1024;
    /// the client decides: a server uses the client's).
    #[serde(default = "default_memif_ring_size", skip_serializing_if = "is_default_memif_ring_size")]
    pub ring_size: u32,
    /// Bytes per shared-memory buffer, 128..=65535 (default 2048; the
    /// client decides). Longer frames are chained over several.
    #[serde(default = "default_memif_buffer_size", skip_serializing_if = "is_default_memif_buffer_size")]
    pub buffer_size: u32,
}

impl Default for MemifSpec {
    fn default() -> Self {
        MemifSpec {
            role: MemifRole::Server,
            socket: default_memif_socket(),
            id: 0,
            secret: None,
            mode: MemifMode::Ethernet,
            ring_size: default_memif_ring_size(),
            buffer_size: default_memif_buffer_size(),
        }
    }
}

/// The default memif socket.
pub const DEFAULT_MEMIF_SOCKET: &str = "/run/vswitch/memif.sock";

fn default_memif_socket() -> String {
    DEFAULT_MEMIF_SOCKET.to_string()
}

fn is_default_memif_socket(s: &str) -> bool {
    s == DEFAULT_MEMIF_SOCKET
}

fn default_memif_ring_size() -> u32 {
    1024
}

fn is_default_memif_ring_size(v: &u32) -> bool {
    *v == 1024
}

fn default_memif_buffer_size() -> u32 {
    2048
}

fn is_default_memif_buffer_size(v: &u32) -> bool {
    *v == 2048
}

/// Which end of the memif protocol vswitch is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemifRole {
    /// Listens on the socket; the peer (a CNF) connects and provides the
    /// shared memory (VPP: master).
    #[default]
    Server,
    /// Connects to the peer's socket and provides the shared memory,
    /// reconnecting by itself (VPP: slave).
    Client,
}

impl MemifRole {
    fn is_server(&self) -> bool {
        *self == MemifRole::Server
    }

    /// `server` or `client`.
    pub fn as_str(&self) -> &'static str {
        match self {
            MemifRole::Server => "server",
            MemifRole::Client => "client",
        }
    }
}

/// What a memif interface carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemifMode {
    /// Ethernet frames.
    #[default]
    Ethernet,
    /// IP packets without an Ethernet header.
    Ip,
}

impl MemifMode {
    fn is_ethernet(&self) -> bool {
        *self == MemifMode::Ethernet
    }

    /// `ethernet` or `ip`.
    pub fn as_str(&self) -> &'static str {
        match self {
            MemifMode::Ethernet => "ethernet",
            MemifMode::Ip => "ip",
        }
    }
}

/// A VLAN sub-interface, named `<parent>.<id>` or `<parent>.<id>.<inner>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawVlan", into = "RawVlan")]
pub struct VlanSpec {
    /// The (outer) VLAN id, 1..=4094.
    pub id: u16,
    /// The inner VLAN id for QinQ (802.1ad outer, 802.1Q inner).
    pub inner: Option<u16>,
    /// L2 tag rewrite on a bridge or xconnect sub-interface.
    pub tag_rewrite: TagRewrite,
    /// IP MTU (default: the parent's).
    pub mtu: Option<u32>,
    /// Administratively up (default true; a sub-interface of a down port is
    /// down too).
    pub up: bool,
    /// How it forwards.
    pub mode: Mode,
}

impl VlanSpec {
    /// Its name under `parent`.
    pub fn name(&self, parent: &str) -> String {
        match self.inner {
            Some(inner) => format!("{parent}.{}.{inner}", self.id),
            None => format!("{parent}.{}", self.id),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVlan {
    id: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inner: Option<u16>,
    #[serde(default, skip_serializing_if = "TagRewrite::is_none")]
    tag_rewrite: TagRewrite,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtu: Option<u32>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    up: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l3: Option<L3Spec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bridge: Option<BridgeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xconnect: Option<XConnectSpec>,
}

impl TryFrom<RawVlan> for VlanSpec {
    type Error = String;
    fn try_from(r: RawVlan) -> Result<Self, String> {
        let mode = Mode::from_parts(r.l3, r.bridge, r.xconnect).map_err(|e| format!("vlan {}: {e}", r.id))?;
        Ok(VlanSpec { id: r.id, inner: r.inner, tag_rewrite: r.tag_rewrite, mtu: r.mtu, up: r.up, mode })
    }
}

impl From<VlanSpec> for RawVlan {
    fn from(v: VlanSpec) -> RawVlan {
        let (l3, bridge, xconnect) = v.mode.into_parts();
        RawVlan { id: v.id, inner: v.inner, tag_rewrite: v.tag_rewrite, mtu: v.mtu, up: v.up, l3, bridge, xconnect }
    }
}

/// VLAN tag rewrite of an L2 sub-interface (VPP's `l2 tag-rewrite`):
/// applied to frames it receives, inverted on frames it sends. In YAML:
/// `none`, `pop-1`, `pop-2`, or `{ translate-1-1: { to: 300 } }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TagRewrite {
    /// Frames keep their tags inside the bridge / cross-connect.
    #[default]
    None,
    /// Remove the outer tag.
    Pop1,
    /// Remove both tags (QinQ sub-interfaces).
    Pop2,
    /// Replace the outer tag's VLAN id with `to`.
    Translate11 {
        /// The VLAN id frames carry inside.
        to: u16,
    },
}

impl TagRewrite {
    fn is_none(&self) -> bool {
        *self == TagRewrite::None
    }

    /// Its YAML name.
    pub fn name(&self) -> &'static str {
        match self {
            TagRewrite::None => "none",
            TagRewrite::Pop1 => "pop-1",
            TagRewrite::Pop2 => "pop-2",
            TagRewrite::Translate11 { .. } => "translate-1-1",
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TranslateTo {
    to: u16,
}

impl Serialize for TagRewrite {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match *self {
            TagRewrite::Translate11 { to } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("translate-1-1", &TranslateTo { to })?;
                m.end()
            }
            other => s.serialize_str(other.name()),
        }
    }
}

impl<'de> Deserialize<'de> for TagRewrite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TagRewrite, D::Error> {
        struct V;
        const EXPECTED: &str = "none, pop-1, pop-2 or { translate-1-1: { to: VLAN } }";
        impl<'de> Visitor<'de> for V {
            type Value = TagRewrite;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TagRewrite, E> {
                match s {
                    "none" => Ok(TagRewrite::None),
                    "pop-1" => Ok(TagRewrite::Pop1),
                    "pop-2" => Ok(TagRewrite::Pop2),
                    "translate-1-1" => Err(E::custom("translate-1-1 needs a VLAN: { translate-1-1: { to: 300 } }")),
                    _ => Err(E::custom(format!("unknown tag rewrite {s:?}, expected {EXPECTED}"))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<TagRewrite, A::Error> {
                let Some(key) = m.next_key::<String>()? else {
                    return Err(de::Error::custom(format!("empty tag rewrite, expected {EXPECTED}")));
                };
                if key != "translate-1-1" {
                    return Err(de::Error::custom(format!("unknown tag rewrite {key:?}, expected {EXPECTED}")));
                }
                let t: TranslateTo = m.next_value()?;
                if m.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom("a tag rewrite is one rewrite"));
                }
                Ok(TagRewrite::Translate11 { to: t.to })
            }
        }
        d.deserialize_any(V)
    }
}

/// A bridge domain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeDomainSpec {
    /// Its id, 1..=65535.
    pub id: u16,
    /// Learn source MACs (default true).
    #[serde(default = "yes")]
    pub learn: bool,
    /// Forward by the MAC table; false floods everything (default true).
    #[serde(default = "yes")]
    pub forward: bool,
    /// Flood unknown unicast (default true).
    #[serde(default = "yes")]
    pub flood_unknown: bool,
    /// Flood broadcast and multicast (default true).
    #[serde(default = "yes")]
    pub flood_broadcast: bool,
    /// Answer ARP requests from `arp_entries` and learned bindings
    /// (default false).
    #[serde(default)]
    pub arp_termination: bool,
    /// Most MACs learned; static ones do not count (default 1048576).
    #[serde(default = "default_mac_limit")]
    pub mac_limit: u32,
    /// Learned MACs age out after this many seconds unseen; 0 never
    /// (default 300).
    #[serde(default = "default_mac_age")]
    pub mac_age_seconds: u32,
    /// The bridge-virtual interface that routes into and out of the domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bvi: Option<BviSpec>,
    /// MACs pinned to a member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_macs: Vec<StaticMacSpec>,
    /// IPv4-to-MAC bindings for ARP termination.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arp_entries: Vec<ArpEntrySpec>,
}

impl BridgeDomainSpec {
    /// A domain with VPP's defaults (learn, forward, flood; no ARP
    /// termination; 1M MACs aged after 300 s).
    pub fn new(id: u16) -> BridgeDomainSpec {
        BridgeDomainSpec {
            id,
            learn: true,
            forward: true,
            flood_unknown: true,
            flood_broadcast: true,
            arp_termination: false,
            mac_limit: default_mac_limit(),
            mac_age_seconds: default_mac_age(),
            bvi: None,
            static_macs: Vec::new(),
            arp_entries: Vec::new(),
        }
    }
}

/// The BVI of a bridge domain: a routed interface whose "wire" is the
/// bridge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BviSpec {
    /// Its interface name (default `bvi<domain id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its MAC ([`generated_mac`] of its name when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    /// IP MTU (default 1500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Administratively up (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub up: bool,
    /// The VRF (default 0).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub vrf: u32,
    /// Addresses with prefix length.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpNet>,
    /// Proxy ARP.
    #[serde(default, skip_serializing_if = "is_false")]
    pub proxy_arp: bool,
    /// Proxy ND.
    #[serde(default, skip_serializing_if = "is_false")]
    pub proxy_nd: bool,
}

impl BviSpec {
    /// The BVI's interface name in domain `bd`.
    pub fn name(&self, bd: u16) -> String {
        self.name.clone().unwrap_or_else(|| format!("bvi{bd}"))
    }
}

/// A static MAC entry of a bridge domain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticMacSpec {
    /// The address.
    pub mac: Mac,
    /// The member it is on.
    pub interface: String,
}

/// An ARP-termination binding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArpEntrySpec {
    /// The IPv4 address.
    pub ip: Ipv4Addr,
    /// Its MAC.
    pub mac: Mac,
}

/// A VRF.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrfSpec {
    /// Its id (the FIB's table index).
    pub id: u32,
    /// A name for people (`show` output); unique when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A static route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRoute", into = "RawRoute")]
pub struct RouteSpec {
    /// The VRF (default 0).
    pub vrf: u32,
    /// The destination prefix (no host bits set).
    pub prefix: IpNet,
    /// Where it leads.
    pub target: RouteTarget,
}

/// Where a route leads: exactly one of `via`, `interface`, `type`.
#[derive(Clone, Debug, PartialEq)]
pub enum RouteTarget {
    /// Through neighbors (ECMP / UCMP by weight).
    Via(Vec<NextHopSpec>),
    /// Directly attached on an interface (the destination is on the link).
    Interface(String),
    /// A special action.
    Special(SpecialRoute),
}

/// Route actions without a next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpecialRoute {
    /// Drop silently.
    Drop,
    /// Drop and send ICMP unreachable.
    Unreachable,
    /// Drop and send ICMP administratively prohibited.
    Prohibit,
    /// Hand to the control plane.
    Punt,
}

/// One next hop of a route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextHopSpec {
    /// The neighbor's address (same family as the prefix).
    pub address: IpAddr,
    /// The interface it is on (required: next hops are not resolved
    /// recursively).
    pub interface: String,
    /// Relative weight (default 1; 0 disables the path).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub weight: u32,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    vrf: u32,
    prefix: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    via: Option<Vec<NextHopSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interface: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<SpecialRoute>,
}

impl TryFrom<RawRoute> for RouteSpec {
    type Error = String;
    fn try_from(r: RawRoute) -> Result<Self, String> {
        let target = match (r.via, r.interface, r.kind) {
            (Some(v), None, None) => RouteTarget::Via(v),
            (None, Some(i), None) => RouteTarget::Interface(i),
            (None, None, Some(k)) => RouteTarget::Special(k),
            _ => return Err(format!("route to {}: set exactly one of via, interface and type", r.prefix)),
        };
        Ok(RouteSpec { vrf: r.vrf, prefix: r.prefix, target })
    }
}

impl From<RouteSpec> for RawRoute {
    fn from(r: RouteSpec) -> RawRoute {
        let (via, interface, kind) = match r.target {
            RouteTarget::Via(v) => (Some(v), None, None),
            RouteTarget::Interface(i) => (None, Some(i), None),
            RouteTarget::Special(k) => (None, None, Some(k)),
        };
        RawRoute { vrf: r.vrf, prefix: r.prefix, via, interface, kind }
    }
}

/// A static neighbor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborSpec {
    /// The routed interface it is on.
    pub interface: String,
    /// Its address.
    pub ip: IpAddr,
    /// Its MAC.
    pub mac: Mac,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

fn default_mac_limit() -> u32 {
    1 << 20
}

fn default_mac_age() -> u32 {
    300
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_zero_u8(v: &u8) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_macs_are_stable_local_unicast_and_differ_by_name() {
        let a = generated_mac("pod-a");
        assert_eq!(a, generated_mac("pod-a"));
        assert_ne!(a, generated_mac("pod-b"));
        assert!(a.is_local() && a.is_unicast());
        assert_eq!(&a.0[..2], &[0x02, 0xfe]);
    }

    #[test]
    fn tag_rewrites_read_and_write_both_forms() {
        let v: VlanSpec = serde_norway::from_str("{ id: 7, tag_rewrite: { translate-1-1: { to: 300 } } }").unwrap();
        assert_eq!(v.tag_rewrite, TagRewrite::Translate11 { to: 300 });
        let v: VlanSpec = serde_norway::from_str("{ id: 7, tag_rewrite: pop-2 }").unwrap();
        assert_eq!(v.tag_rewrite, TagRewrite::Pop2);
        for t in [TagRewrite::None, TagRewrite::Pop1, TagRewrite::Pop2, TagRewrite::Translate11 { to: 9 }] {
            let v = VlanSpec { id: 7, inner: Some(8), tag_rewrite: t, mtu: None, up: true, mode: Mode::Disabled };
            let back: VlanSpec = serde_norway::from_str(&serde_norway::to_string(&v).unwrap()).unwrap();
            assert_eq!(back, v);
        }
        let e = serde_norway::from_str::<VlanSpec>("{ id: 7, tag_rewrite: pop-3 }").unwrap_err().to_string();
        assert!(e.contains("unknown tag rewrite \"pop-3\""), "{e}");
        let e = serde_norway::from_str::<VlanSpec>("{ id: 7, tag_rewrite: { translate-1-1: { too: 3 } } }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `too`"), "{e}");
    }

    #[test]
    fn one_mode_per_interface_and_one_target_per_route() {
        let e =
            DesiredState::from_yaml("interfaces:\n  - name: a\n    type: pg\n    l3: {}\n    bridge: { domain: 1 }\n")
                .unwrap_err();
        assert!(
            e.message.contains("interface \"a\": set at most one of l3, bridge and xconnect (found l3 and bridge)"),
            "{e}"
        );
        let e =
            DesiredState::from_yaml("routes:\n  - prefix: 10.0.0.0/8\n    type: drop\n    interface: a\n").unwrap_err();
        assert!(e.message.contains("route to 10.0.0.0/8: set exactly one of via, interface and type"), "{e}");
        let e = DesiredState::from_yaml("routes:\n  - prefix: 10.0.0.0/8\n").unwrap_err();
        assert!(e.message.contains("set exactly one of via, interface and type"), "{e}");
    }

    #[test]
    fn a_tap_names_its_namespace_and_only_a_tap_can() {
        let doc = "interfaces:\n  - { name: a, type: tap, host_ifname: eth1, netns: pod-a }\n  - { name: b, type: tap, host_ifname: eth1, netns: /proc/1/ns/net }\n";
        let s = DesiredState::from_yaml(doc).unwrap();
        assert_eq!(s.interfaces[0].netns.as_deref(), Some("pod-a"));
        assert_eq!(DesiredState::from_yaml(&s.to_yaml()).unwrap(), s);
        assert!(crate::validate(&s, &crate::Limits::default()).is_ok(), "one device name per namespace");
        let bad = "interfaces:\n  - { name: a, type: af-packet, host_ifname: eth1, netns: pod-a }\n  - { name: b, type: tap, host_ifname: t, netns: ../x }\n  - { name: c, type: tap, host_ifname: eth1, netns: pod-a }\n  - { name: d, type: tap, host_ifname: eth1, netns: pod-a }\n";
        let errors = crate::validate(&DesiredState::from_yaml(bad).unwrap(), &crate::Limits::default()).unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(text.iter().any(|e| e.starts_with("interfaces[0] (a).netns: only tap devices")), "{text:?}");
        assert!(text.iter().any(|e| e.starts_with("interfaces[1] (b).netns: \"../x\" is neither")), "{text:?}");
        assert!(
            text.iter().any(|e| e.starts_with("interfaces[3] (d).host_ifname: \"eth1\" is also used by interfaces[2]")),
            "{text:?}"
        );
        assert_eq!(text.len(), 3, "{text:?}");
    }

    #[test]
    fn empty_documents_are_the_empty_state() {
        assert_eq!(DesiredState::from_yaml("").unwrap(), DesiredState::default());
        assert_eq!(DesiredState::from_yaml("\n# nothing\n").unwrap(), DesiredState::default());
        assert_eq!(DesiredState::from_yaml("{}").unwrap(), DesiredState::default());
        assert_eq!(DesiredState::from_yaml(&DesiredState::default().to_yaml()).unwrap(), DesiredState::default());
    }
}
