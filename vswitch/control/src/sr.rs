//! SRv6 in the desired state: the `sr:` section (local SIDs, policies,
//! steering, HMAC keys), its validation and its compilation into the SR
//! table of the snapshot ([`vswitch_nodes::srv6::SrTable`]) and the FIB
//! routes that point at it.
//!
//! ```yaml
//! sr:
//!   source: fc00:1::1               # default outer source of the policies
//!   hmac_keys: [{ id: 7, secret: "a shared secret" }]
//!   localsids:
//!     - { sid: "fc00:1::e", behavior: End, flavors: [psp] }
//!     - { sid: "fc00:1::4", behavior: End.DT4, table: 1 }
//!     - { sid: "fc00:1::d4", behavior: End.DX4, interface: pod-a, next_hop: 10.0.1.2 }
//!     - { sid: "fc00:1::ad", behavior: End.AD, inner: ipv4, interface: sf-in, next_hop: 10.5.0.2,
//!         return_interface: sf-out }
//!   policies:
//!     - bsid: "fc00:1::b:1"
//!       encap: encaps                 # encaps, encaps-red, l2, l2-red
//!       segment_lists:
//!         - { segments: ["fc00:2::e", "fc00:3::4"], weight: 3 }
//!         - { segments: ["fc00:4::4"], weight: 1 }
//!   steering:
//!     - { prefix: 10.9.0.0/16, policy: "fc00:1::b:1" }
//!     - { interface: pod-l2, policy: "fc00:1::b:2" }
//! ```
//!
//! Compilation: every local SID becomes an entry of the SR table and a
//! route to its SID (a /128, or the locator block plus node/function with
//! NEXT-C-SID) in its VRF whose adjacency carries the entry's index; every
//! policy an entry with its encapsulation templates built once, and, for
//! an L3 policy, a route to its binding SID (a packet sent to the BSID is
//! encapsulated); every prefix steering rule a route to the prefix
//! pointing at the policy, every interface rule an L2 steering entry. The
//! routes use the FIB's `Srv6` source, which wins over a static route to
//! the same prefix. End.X / End.DX4 / End.DX6 and the SR proxies with an
//! IP next hop hold a reference on their neighbor's adjacency; a proxy's
//! return interface is an entry of the SR table that ethernet-input reads. Entries keep their index while they exist; a
//! freed index is reused only by a later apply.

use crate::flat::{FlatIf, FlatKind, FlatMode};
use crate::model::DesiredState;
use crate::validate::ValidationError;
use ipnet::{IpNet, Ipv6Net};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use vswitch_nodes::ip::{FibControl, IpFibError, NextHop, RoutePath, RouteSource};
use vswitch_nodes::srv6::{
    AdCache, Behavior, EncapKind, LocalSid, Policy, ProxyClaim, ProxyKind, SrProxy, SrTable, MAX_ENCAP_LEN,
    MAX_LOCALSIDS, MAX_POLICIES,
};
use vswitch_nodes::SwIf;
use vswitch_srv6::behavior::{
    CsidFormat, DynamicProxy, EncapParams, EncapTemplate, Flavors, HopLimit, Inner, Next, StaticProxy, TrafficClass,
};
use vswitch_srv6::hmac::{HmacKeyTable, HmacMode, HmacPolicy, HMAC_TLV_LEN};
use vswitch_srv6::policy::{SegmentList, SrPolicy, DEFAULT_BUCKETS};
use vswitch_srv6::srh::srh_flags;

/// The `sr:` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrSpec {
    /// Default outer source address of the policies' encapsulations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Ipv6Addr>,
    /// HMAC keys (RFC 8754 section 2.1.2), by key id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hmac_keys: Vec<HmacKeySpec>,
    /// Local SIDs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub localsids: Vec<LocalSidSpec>,
    /// SR policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicySpec>,
    /// What is steered into the policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steering: Vec<SteeringSpec>,
}

impl SrSpec {
    /// Whether there is nothing in it.
    pub fn is_empty(&self) -> bool {
        *self == SrSpec::default()
    }
}

/// An HMAC key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacKeySpec {
    /// Key id, 1..=2^32-1 (the HMAC TLV's).
    pub id: u32,
    /// The pre-shared secret, 1..=64 bytes (its UTF-8 bytes).
    pub secret: String,
}

/// A local SID's behaviour, written as RFC 8986 names it (`End.DT4`; any
/// case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SidBehavior {
    /// End.
    End,
    /// End.X (interface, next_hop).
    EndX,
    /// End.T (table).
    EndT,
    /// End.DX2 (interface).
    EndDx2,
    /// End.DX4 (interface, next_hop).
    EndDx4,
    /// End.DX6 (interface, next_hop).
    EndDx6,
    /// End.DT4 (table).
    EndDt4,
    /// End.DT6 (table).
    EndDt6,
    /// End.DT46 (table).
    EndDt46,
    /// End.B6.Encaps (policy).
    EndB6Encaps,
    /// End.B6.Encaps.Red (policy).
    EndB6EncapsRed,
    /// End.AS, static SR proxy (inner, interface, next_hop, return_interface, source, segments).
    EndAs,
    /// End.AD, dynamic SR proxy (inner, interface, next_hop, return_interface).
    EndAd,
    /// End.AM, masquerading SR proxy (interface, next_hop, return_interface).
    EndAm,
}

impl SidBehavior {
    /// Every behaviour.
    pub const ALL: [SidBehavior; 14] = [
        SidBehavior::End,
        SidBehavior::EndX,
        SidBehavior::EndT,
        SidBehavior::EndDx2,
        SidBehavior::EndDx4,
        SidBehavior::EndDx6,
        SidBehavior::EndDt4,
        SidBehavior::EndDt6,
        SidBehavior::EndDt46,
        SidBehavior::EndB6Encaps,
        SidBehavior::EndB6EncapsRed,
        SidBehavior::EndAs,
        SidBehavior::EndAd,
        SidBehavior::EndAm,
    ];

    /// The RFC 8986 name.
    pub fn name(self) -> &'static str {
        match self {
            SidBehavior::End => "End",
            SidBehavior::EndX => "End.X",
            SidBehavior::EndT => "End.T",
            SidBehavior::EndDx2 => "End.DX2",
            SidBehavior::EndDx4 => "End.DX4",
            SidBehavior::EndDx6 => "End.DX6",
            SidBehavior::EndDt4 => "End.DT4",
            SidBehavior::EndDt6 => "End.DT6",
            SidBehavior::EndDt46 => "End.DT46",
            SidBehavior::EndB6Encaps => "End.B6.Encaps",
            SidBehavior::EndB6EncapsRed => "End.B6.Encaps.Red",
            SidBehavior::EndAs => "End.AS",
            SidBehavior::EndAd => "End.AD",
            SidBehavior::EndAm => "End.AM",
        }
    }

    /// Whether it is an SR proxy.
    pub fn is_proxy(self) -> bool {
        matches!(self, SidBehavior::EndAs | SidBehavior::EndAd | SidBehavior::EndAm)
    }

    /// Which optional fields it uses: (table, interface, next_hop, policy, flavors).
    fn uses(self) -> (bool, bool, bool, bool, bool) {
        use SidBehavior as B;
        match self {
            B::End => (false, false, false, false, true),
            B::EndX => (false, true, true, false, true),
            B::EndT => (true, false, false, false, true),
            B::EndDx2 => (false, true, false, false, false),
            B::EndDx4 | B::EndDx6 => (false, true, true, false, false),
            B::EndDt4 | B::EndDt6 | B::EndDt46 => (true, false, false, false, false),
            B::EndB6Encaps | B::EndB6EncapsRed => (false, false, false, true, false),
            // The next hop only with an IP inner type (checked apart).
            B::EndAs | B::EndAd | B::EndAm => (false, true, true, false, false),
        }
    }
}

impl fmt::Display for SidBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SidBehavior {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SidBehavior::ALL.into_iter().find(|b| b.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            let names: Vec<&str> = SidBehavior::ALL.iter().map(|b| b.name()).collect();
            format!("unknown behavior {s:?}, expected one of {}", names.join(", "))
        })
    }
}

impl Serialize for SidBehavior {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for SidBehavior {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SidBehavior, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// RFC 8986 section 4.16 flavors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlavorSpec {
    /// Penultimate Segment Pop.
    Psp,
    /// Ultimate Segment Pop.
    Usp,
    /// Ultimate Segment Decapsulation.
    Usd,
}

/// NEXT-C-SID's SID structure (RFC 9800).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsidSpec {
    /// Locator-Block length in bits (default 32).
    #[serde(default = "block_default")]
    pub block_bits: u8,
    /// Locator-Node + Function length in bits (default 16).
    #[serde(default = "node_function_default")]
    pub node_function_bits: u8,
}

fn block_default() -> u8 {
    32
}

fn node_function_default() -> u8 {
    16
}

/// What an SR proxy's service function receives and sends back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InnerSpec {
    /// IPv4 packets (to an IPv4 next hop).
    Ipv4,
    /// IPv6 packets (to an IPv6 next hop).
    Ipv6,
    /// Ethernet frames (out of an interface with no other mode).
    Ethernet,
}

impl InnerSpec {
    fn inner(self) -> Inner {
        match self {
            InnerSpec::Ipv4 => Inner::Ipv4,
            InnerSpec::Ipv6 => Inner::Ipv6,
            InnerSpec::Ethernet => Inner::Ethernet,
        }
    }
}

/// When a SID checks the HMAC of the SRHs it receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HmacModeSpec {
    /// Never (default).
    #[default]
    Off,
    /// When the SRH carries an HMAC TLV.
    IfPresent,
    /// Always: an SRH without a valid HMAC is dropped.
    Required,
}

impl HmacModeSpec {
    fn is_off(&self) -> bool {
        *self == HmacModeSpec::Off
    }
}

/// A local SID.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSidSpec {
    /// The SID (with `next_csid`: the locator block and node/function,
    /// argument bits zero).
    pub sid: Ipv6Addr,
    /// What it does.
    pub behavior: SidBehavior,
    /// The VRF whose FIB holds the SID (default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vrf: u32,
    /// End.T, End.DT4/6/46: the VRF the (inner) packet is looked up in
    /// (default: the SID's VRF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// End.X, End.DX4, End.DX6: the routed interface of the next hop;
    /// End.DX2: the interface frames leave by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// End.X, End.DX6: an IPv6 neighbor; End.DX4: an IPv4 neighbor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<IpAddr>,
    /// End.B6.Encaps[.Red]: the policy, by binding SID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Ipv6Addr>,
    /// End, End.X, End.T: `psp`, `usp`, `usd`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flavors: Vec<FlavorSpec>,
    /// End, End.X, End.T: NEXT-C-SID with this SID structure; the SID's
    /// route is then its locator block and node/function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_csid: Option<CsidSpec>,
    /// HMAC check of received SRHs (`off`, `if-present`, `required`).
    #[serde(default, skip_serializing_if = "HmacModeSpec::is_off")]
    pub hmac: HmacModeSpec,
    /// End.AS, End.AD: what the service function handles (`ipv4`,
    /// `ipv6`, `ethernet`); End.AM: IPv6 SR packets, not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner: Option<InnerSpec>,
    /// SR proxies: the interface the service function sends traffic back
    /// on (`interface` is the one towards it; they may be the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_interface: Option<String>,
    /// End.AS: the outer source of the returning traffic (default
    /// `sr.source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Ipv6Addr>,
    /// End.AS: the rest of the chain, pushed on the returning traffic (the
    /// SIDs after this one, in the order they are visited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Ipv6Addr>,
}

impl LocalSidSpec {
    /// The SID's prefix length in the FIB.
    pub fn prefix_len(&self) -> u8 {
        match self.next_csid {
            Some(c) => c.block_bits.saturating_add(c.node_function_bits).min(128),
            None => 128,
        }
    }
}

/// A policy's headend behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncapSpec {
    /// H.Encaps (default).
    #[default]
    Encaps,
    /// H.Encaps.Red.
    EncapsRed,
    /// H.Encaps.L2.
    L2,
    /// H.Encaps.L2.Red.
    L2Red,
}

impl EncapSpec {
    fn kind(self) -> EncapKind {
        match self {
            EncapSpec::Encaps => EncapKind::Encaps,
            EncapSpec::EncapsRed => EncapKind::EncapsRed,
            EncapSpec::L2 => EncapKind::L2,
            EncapSpec::L2Red => EncapKind::L2Red,
        }
    }

    fn is_default(&self) -> bool {
        *self == EncapSpec::Encaps
    }
}

/// An SR policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The binding SID: names the policy; an L3 policy also encapsulates
    /// packets sent to it.
    pub bsid: Ipv6Addr,
    /// Outer source address (default `sr.source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Ipv6Addr>,
    /// `encaps` (default), `encaps-red`, `l2`, `l2-red`.
    #[serde(default, skip_serializing_if = "EncapSpec::is_default")]
    pub encap: EncapSpec,
    /// The VRF the encapsulated packets are routed in (default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vrf: u32,
    /// Outer hop limit (default: the inner packet's TTL / hop limit after
    /// the headend's decrement; 64 for frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hop_limit: Option<u8>,
    /// Outer traffic class (default: the inner packet's; 0 for frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_class: Option<u8>,
    /// Sign the SRH with this HMAC key (an id in `sr.hmac_keys`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_key: Option<u32>,
    /// The weighted segment lists.
    pub segment_lists: Vec<SegmentListSpec>,
}

/// One weighted segment list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentListSpec {
    /// The SIDs in the order the packet visits them.
    pub segments: Vec<Ipv6Addr>,
    /// Relative share of the flows (default 1; 0 keeps the list unused).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub weight: u32,
}

/// A steering rule: a prefix of a VRF or an interface into a policy.
#[derive(Clone, Debug, PartialEq)]
pub enum SteeringSpec {
    /// Packets to `prefix` in `vrf`.
    Prefix {
        /// The VRF (default 0).
        vrf: u32,
        /// The prefix (no host bits set).
        prefix: IpNet,
        /// The policy, by binding SID.
        policy: Ipv6Addr,
    },
    /// Every frame received on `interface` (which has no forwarding mode).
    Interface {
        /// The interface.
        interface: String,
        /// The policy, by binding SID.
        policy: Ipv6Addr,
    },
}

impl SteeringSpec {
    /// The policy it steers into.
    pub fn policy(&self) -> Ipv6Addr {
        match self {
            SteeringSpec::Prefix { policy, .. } | SteeringSpec::Interface { policy, .. } => *policy,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSteering {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<IpNet>,
    #[serde(default, skip_serializing_if = "is_zero")]
    vrf: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interface: Option<String>,
    policy: Ipv6Addr,
}

impl Serialize for SteeringSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = match self.clone() {
            SteeringSpec::Prefix { vrf, prefix, policy } => {
                RawSteering { prefix: Some(prefix), vrf, interface: None, policy }
            }
            SteeringSpec::Interface { interface, policy } => {
                RawSteering { prefix: None, vrf: 0, interface: Some(interface), policy }
            }
        };
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SteeringSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SteeringSpec, D::Error> {
        let r = RawSteering::deserialize(d)?;
        match (r.prefix, r.interface) {
            (Some(prefix), None) => Ok(SteeringSpec::Prefix { vrf: r.vrf, prefix, policy: r.policy }),
            (None, Some(interface)) if r.vrf == 0 => Ok(SteeringSpec::Interface { interface, policy: r.policy }),
            (None, Some(_)) => Err(serde::de::Error::custom("an interface steering rule has no vrf")),
            _ => Err(serde::de::Error::custom(format!(
                "steering into {}: set exactly one of prefix and interface",
                r.policy
            ))),
        }
    }
}

fn one() -> u32 {
    1
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

// ---------------------------------------------------------------------------
// Validation.

/// Most segments in one list, by the headroom an encapsulation may use
/// (with an HMAC TLV: fewer).
pub fn max_segments(hmac: bool, reduced: bool) -> usize {
    let room = MAX_ENCAP_LEN - 40 - 8 - if hmac { HMAC_TLV_LEN } else { 0 };
    room / 16 + usize::from(reduced)
}

fn unicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
    }
}

fn sid_problem(a: &Ipv6Addr) -> Option<String> {
    (a.is_unspecified() || a.is_multicast() || a.is_loopback())
        .then(|| format!("{a} is not a unicast address a SID can be"))
}

/// What validation needs to know of the interfaces.
pub(crate) struct IfView<'a, 'b> {
    pub flat: &'b [FlatIf<'a>],
    pub by_name: &'b HashMap<String, usize>,
    pub vrfs: &'b HashSet<u32>,
}

/// Checks the `sr:` section; every problem, each by its path.
pub(crate) fn check(state: &DesiredState, ifs: &IfView<'_, '_>) -> Vec<ValidationError> {
    let sr = &state.sr;
    let mut errors = Vec::new();
    let mut err = |path: String, message: String| errors.push(ValidationError { path, message });
    if let Some(src) = sr.source {
        if let Some(p) = sid_problem(&src) {
            err("sr.source".into(), p.replace("a SID can be", "to send from"));
        }
    }
    let mut key_ids = HashMap::new();
    for (i, k) in sr.hmac_keys.iter().enumerate() {
        let path = format!("sr.hmac_keys[{i}]");
        if k.id == 0 {
            err(format!("{path}.id"), "0 is reserved; use 1..=4294967295".into());
        } else if let Some(first) = key_ids.insert(k.id, i) {
            err(format!("{path}.id"), format!("duplicate key id {} (also sr.hmac_keys[{first}])", k.id));
        }
        if k.secret.is_empty() || k.secret.len() > 64 {
            err(format!("{path}.secret"), format!("{} bytes; a secret is 1..=64 bytes", k.secret.len()));
        }
    }
    // Routes the SR section installs, by (vrf, prefix): the first claim.
    let mut routes: HashMap<(u32, IpNet), String> = HashMap::new();
    // Our interface addresses, by VRF.
    let own: HashSet<(u32, IpAddr)> = ifs
        .flat
        .iter()
        .filter_map(|f| match f.mode {
            FlatMode::L3 { vrf, addresses, .. } => Some(addresses.iter().map(move |a| (vrf, a.addr()))),
            _ => None,
        })
        .flatten()
        .collect();
    let static_routes: HashSet<(u32, IpNet)> = state.routes.iter().map(|r| (r.vrf, r.prefix.trunc())).collect();
    let policies: HashMap<Ipv6Addr, (usize, EncapSpec)> =
        sr.policies.iter().enumerate().rev().map(|(i, p)| (p.bsid, (i, p.encap))).collect();
    let routed = |name: &str| -> Option<Result<u32, String>> {
        let f = &ifs.flat[*ifs.by_name.get(name)?];
        Some(match f.mode {
            FlatMode::L3 { vrf, .. } => Ok(vrf),
            _ => Err(format!("{name:?} is not a routed (l3) interface")),
        })
    };
    let check_vrf = |vrf: u32| -> Option<String> {
        (!ifs.vrfs.contains(&vrf)).then(|| format!("vrf {vrf} is not declared in vrfs"))
    };
    let steered_names: HashMap<&str, usize> = sr
        .steering
        .iter()
        .enumerate()
        .filter_map(|(i, x)| match x {
            SteeringSpec::Interface { interface, .. } => Some((interface.as_str(), i)),
            SteeringSpec::Prefix { .. } => None,
        })
        .collect();
    // Proxy return interfaces: the first SID that claims each.
    let mut returns: HashMap<&str, usize> = HashMap::new();
    if sr.localsids.len() > MAX_LOCALSIDS {
        err("sr.localsids".into(), format!("{} local SIDs; at most {MAX_LOCALSIDS}", sr.localsids.len()));
    }
    if sr.policies.len() > MAX_POLICIES {
        err("sr.policies".into(), format!("{} policies; at most {MAX_POLICIES}", sr.policies.len()));
    }
    for (i, s) in sr.localsids.iter().enumerate() {
        let path = format!("sr.localsids[{i}] ({})", s.sid);
        let b = s.behavior;
        if let Some(p) = sid_problem(&s.sid) {
            err(format!("{path}.sid"), p);
        }
        if let Some(p) = check_vrf(s.vrf) {
            err(format!("{path}.vrf"), p);
        }
        let len = s.prefix_len();
        if let Some(c) = s.next_csid {
            if let Err(e) = CsidFormat::new(c.block_bits, c.node_function_bits) {
                err(format!("{path}.next_csid"), e.to_string());
            } else if len == 128 {
                err(format!("{path}.next_csid"), "no argument bits left (block + node/function is 128)".into());
            }
        }
        let net = Ipv6Net::new(s.sid, len).unwrap_or_else(|_| Ipv6Net::new(s.sid, 128).expect("/128"));
        if net.trunc().addr() != s.sid {
            err(format!("{path}.sid"), format!("{} has argument bits set beyond /{len}", s.sid));
        }
        let prefix = IpNet::V6(net.trunc());
        if own.contains(&(s.vrf, IpAddr::V6(s.sid))) {
            err(format!("{path}.sid"), format!("{} is an interface address in vrf {}", s.sid, s.vrf));
        }
        match routes.get(&(s.vrf, prefix)) {
            Some(first) => err(format!("{path}.sid"), format!("{prefix} in vrf {} is also {first}", s.vrf)),
            None => {
                routes.insert((s.vrf, prefix), format!("sr.localsids[{i}]"));
            }
        }
        if static_routes.contains(&(s.vrf, prefix)) {
            err(format!("{path}.sid"), format!("{prefix} in vrf {} is also a static route", s.vrf));
        }
        let (table, interface, next_hop, policy, flavors) = b.uses();
        // An Ethernet proxy sends frames out of its interface: no next hop.
        let l2_proxy = b.is_proxy() && s.inner == Some(InnerSpec::Ethernet);
        let next_hop = next_hop && !l2_proxy;
        let user = if l2_proxy { format!("{b} with inner ethernet") } else { b.to_string() };
        let unused =
            |field: &str, set: bool, used: bool| (set && !used).then(|| format!("{field} is not used by {user}"));
        for (field, set, used) in [
            ("table", s.table.is_some(), table),
            ("interface", s.interface.is_some(), interface),
            ("next_hop", s.next_hop.is_some(), next_hop),
            ("policy", s.policy.is_some(), policy),
            ("flavors", !s.flavors.is_empty(), flavors),
            ("next_csid", s.next_csid.is_some(), flavors),
            ("inner", s.inner.is_some(), matches!(b, SidBehavior::EndAs | SidBehavior::EndAd)),
            ("return_interface", s.return_interface.is_some(), b.is_proxy()),
            ("source", s.source.is_some(), b == SidBehavior::EndAs),
            ("segments", !s.segments.is_empty(), b == SidBehavior::EndAs),
        ] {
            if let Some(m) = unused(field, set, used) {
                err(format!("{path}.{field}"), m);
            }
        }
        if let Some(t) = s.table {
            if let Some(p) = check_vrf(t) {
                err(format!("{path}.table"), p);
            }
        }
        let mut seen = BTreeSet::new();
        for f in &s.flavors {
            if !seen.insert(*f) {
                err(format!("{path}.flavors"), format!("{f:?} given twice").to_lowercase());
            }
        }
        if interface && s.interface.is_none() {
            err(format!("{path}.interface"), format!("required by {b}"));
        }
        if next_hop && s.next_hop.is_none() {
            err(format!("{path}.next_hop"), format!("required by {b}"));
        }
        if policy && s.policy.is_none() {
            err(format!("{path}.policy"), format!("required by {b}"));
        }
        if let Some(name) = &s.interface {
            let ipath = format!("{path}.interface");
            match (b, ifs.by_name.get(name).map(|&k| &ifs.flat[k])) {
                (_, None) if interface => err(ipath, format!("no interface named {name:?}")),
                (SidBehavior::EndDx2, Some(f)) if matches!(f.kind, FlatKind::Bvi { .. }) => {
                    err(ipath, format!("{name:?} is a BVI; End.DX2 sends out of a port or VLAN sub-interface"))
                }
                (SidBehavior::EndX | SidBehavior::EndDx4 | SidBehavior::EndDx6, Some(_)) => {
                    if let Some(Err(m)) = routed(name) {
                        err(ipath, m);
                    }
                }
                _ => {}
            }
        }
        if b.is_proxy() {
            check_proxy(s, &path, sr.source, ifs, &steered_names, &mut returns, i, &mut err);
        }
        if let Some(nh) = s.next_hop {
            let want_v4 = b == SidBehavior::EndDx4 || (b.is_proxy() && s.inner == Some(InnerSpec::Ipv4));
            if next_hop && nh.is_ipv4() != want_v4 {
                let fam = if want_v4 { "IPv4" } else { "IPv6" };
                err(format!("{path}.next_hop"), format!("{b} needs an {fam} next hop; {nh} is not"));
            } else if next_hop && !unicast(nh) {
                err(format!("{path}.next_hop"), format!("{nh} is not a unicast address"));
            }
        }
        if let Some(bsid) = s.policy {
            match policies.get(&bsid) {
                None => err(format!("{path}.policy"), format!("no policy with binding SID {bsid}")),
                Some((_, e)) => {
                    let want = if b == SidBehavior::EndB6Encaps { EncapSpec::Encaps } else { EncapSpec::EncapsRed };
                    if policy && *e != want {
                        err(
                            format!("{path}.policy"),
                            format!(
                                "{b} needs a policy with encap {}",
                                if want == EncapSpec::Encaps { "encaps" } else { "encaps-red" }
                            ),
                        );
                    }
                }
            }
        }
    }
    let mut bsids: HashMap<Ipv6Addr, usize> = HashMap::new();
    for (i, p) in sr.policies.iter().enumerate() {
        let path = format!("sr.policies[{i}] ({})", p.bsid);
        if let Some(m) = sid_problem(&p.bsid) {
            err(format!("{path}.bsid"), m);
        }
        if let Some(first) = bsids.insert(p.bsid, i) {
            err(format!("{path}.bsid"), format!("duplicate binding SID (also sr.policies[{first}])"));
        }
        if let Some(m) = check_vrf(p.vrf) {
            err(format!("{path}.vrf"), m);
        }
        if !p.encap.kind().is_l2() {
            let prefix = IpNet::V6(Ipv6Net::new(p.bsid, 128).expect("/128"));
            match routes.get(&(p.vrf, prefix)) {
                Some(first) => err(format!("{path}.bsid"), format!("{prefix} in vrf {} is also {first}", p.vrf)),
                None => {
                    routes.insert((p.vrf, prefix), format!("the binding SID of sr.policies[{i}]"));
                }
            }
            if own.contains(&(p.vrf, IpAddr::V6(p.bsid))) {
                err(format!("{path}.bsid"), format!("{} is an interface address in vrf {}", p.bsid, p.vrf));
            }
        }
        match p.source.or(sr.source) {
            None => err(format!("{path}.source"), "required (or set sr.source)".into()),
            Some(s) => {
                if let Some(m) = sid_problem(&s) {
                    err(format!("{path}.source"), m.replace("a SID can be", "to send from"));
                }
            }
        }
        if let Some(k) = p.hmac_key {
            if !key_ids.contains_key(&k) {
                err(format!("{path}.hmac_key"), format!("no key {k} in sr.hmac_keys"));
            }
        }
        if p.segment_lists.is_empty() {
            err(format!("{path}.segment_lists"), "at least one segment list".into());
        } else if p.segment_lists.iter().all(|l| l.weight == 0) {
            err(format!("{path}.segment_lists"), "every weight is 0".into());
        }
        if p.segment_lists.len() > DEFAULT_BUCKETS {
            err(format!("{path}.segment_lists"), format!("at most {DEFAULT_BUCKETS} segment lists"));
        }
        let max = max_segments(p.hmac_key.is_some(), p.encap.kind().is_reduced());
        for (j, l) in p.segment_lists.iter().enumerate() {
            let lpath = format!("{path}.segment_lists[{j}].segments");
            if l.segments.is_empty() {
                err(lpath.clone(), "at least one segment".into());
            } else if l.segments.len() > max {
                err(
                    lpath.clone(),
                    format!(
                        "{} segments; at most {max} fit the {MAX_ENCAP_LEN} bytes of headroom an encapsulation may use",
                        l.segments.len()
                    ),
                );
            }
            for (k, s) in l.segments.iter().enumerate() {
                if let Some(m) = sid_problem(s) {
                    err(format!("{lpath}[{k}]"), m);
                }
            }
        }
    }
    let mut steered_ifs: HashMap<&str, usize> = HashMap::new();
    for (i, s) in sr.steering.iter().enumerate() {
        let path = format!("sr.steering[{i}]");
        let encap = match policies.get(&s.policy()) {
            None => {
                err(format!("{path}.policy"), format!("no policy with binding SID {}", s.policy()));
                None
            }
            Some((_, e)) => Some(e.kind()),
        };
        match s {
            SteeringSpec::Prefix { vrf, prefix, .. } => {
                if let Some(m) = check_vrf(*vrf) {
                    err(format!("{path}.vrf"), m);
                }
                if prefix.trunc() != *prefix {
                    err(format!("{path}.prefix"), format!("{prefix} has host bits set (write {})", prefix.trunc()));
                }
                if encap.is_some_and(|e| e.is_l2()) {
                    err(
                        format!("{path}.policy"),
                        "an l2 policy encapsulates frames; steer an interface into it".into(),
                    );
                }
                let key = (*vrf, prefix.trunc());
                match routes.get(&key) {
                    Some(first) => err(format!("{path}.prefix"), format!("{prefix} in vrf {vrf} is also {first}")),
                    None => {
                        routes.insert(key, format!("sr.steering[{i}]"));
                    }
                }
                if static_routes.contains(&key) {
                    err(format!("{path}.prefix"), format!("{prefix} in vrf {vrf} is also a static route"));
                }
            }
            SteeringSpec::Interface { interface, .. } => {
                let ipath = format!("{path}.interface");
                match ifs.by_name.get(interface.as_str()).map(|&k| &ifs.flat[k]) {
                    None => err(ipath.clone(), format!("no interface named {interface:?}")),
                    Some(f) if matches!(f.kind, FlatKind::Bvi { .. }) => {
                        err(ipath.clone(), format!("{interface:?} is a BVI; steer a port or VLAN sub-interface"))
                    }
                    Some(f) if !matches!(f.mode, FlatMode::Disabled) => err(
                        ipath.clone(),
                        format!(
                            "{interface:?} is {}; a steered interface has no l3, bridge or xconnect",
                            f.mode.name()
                        ),
                    ),
                    _ => {}
                }
                if let Some(first) = steered_ifs.insert(interface, i) {
                    err(ipath, format!("{interface:?} is also steered by sr.steering[{first}]"));
                }
                if encap.is_some_and(|e| !e.is_l2()) {
                    err(format!("{path}.policy"), "an interface needs an l2 or l2-red policy".into());
                }
            }
        }
    }
    errors
}

/// The SR proxy fields of local SID `i` (at `path`): inner type, the
/// interfaces' modes, the return interface's owner, End.AS's headers.
#[allow(clippy::too_many_arguments)]
fn check_proxy<'s>(
    s: &'s LocalSidSpec,
    path: &str,
    default_source: Option<Ipv6Addr>,
    ifs: &IfView<'_, '_>,
    steered: &HashMap<&str, usize>,
    returns: &mut HashMap<&'s str, usize>,
    i: usize,
    err: &mut impl FnMut(String, String),
) {
    let b = s.behavior;
    if b != SidBehavior::EndAm && s.inner.is_none() {
        err(format!("{path}.inner"), format!("required by {b}: ipv4, ipv6 or ethernet"));
    }
    let l2 = s.inner == Some(InnerSpec::Ethernet);
    // The mode an interface of this proxy needs; the problem otherwise.
    let mode_problem = |name: &str, f: &FlatIf<'_>| -> Option<String> {
        if matches!(f.kind, FlatKind::Bvi { .. }) {
            return Some(format!(
                "{name:?} is a BVI; an SR proxy's service function is on a port or VLAN sub-interface"
            ));
        }
        match (l2, &f.mode) {
            (false, FlatMode::L3 { .. }) | (true, FlatMode::Disabled) => None,
            (false, m) => Some(format!(
                "{name:?} is {}; the service function of {b} with IP traffic is on a routed (l3) interface",
                m.name()
            )),
            (true, m) => Some(format!(
                "{name:?} is {}; the service function of an Ethernet proxy is on an interface with no l3, bridge or xconnect",
                m.name()
            )),
        }
    };
    if let Some(name) = &s.interface {
        if let Some(f) = ifs.by_name.get(name).map(|&k| &ifs.flat[k]) {
            if let Some(m) = mode_problem(name, f) {
                err(format!("{path}.interface"), m);
            }
        }
    }
    let rpath = format!("{path}.return_interface");
    match &s.return_interface {
        None => err(rpath, format!("required by {b}: the interface its service function sends traffic back on")),
        Some(name) => {
            match ifs.by_name.get(name).map(|&k| &ifs.flat[k]) {
                None => err(rpath.clone(), format!("no interface named {name:?}")),
                Some(f) => {
                    if let Some(m) = mode_problem(name, f) {
                        err(rpath.clone(), m);
                    }
                }
            }
            if let Some(j) = steered.get(name.as_str()) {
                err(rpath.clone(), format!("{name:?} is steered by sr.steering[{j}]; a proxy takes what it receives"));
            }
            if let Some(first) = returns.get(name.as_str()) {
                err(rpath, format!("{name:?} is also the return interface of sr.localsids[{first}]"));
            } else {
                returns.insert(name, i);
            }
        }
    }
    if b == SidBehavior::EndAs {
        let spath = format!("{path}.segments");
        let max = max_segments(false, false);
        if s.segments.is_empty() {
            err(spath.clone(), "required by End.AS: the SIDs after this one, pushed on the returning traffic".into());
        } else if s.segments.len() > max {
            err(spath.clone(), format!("{} segments; at most {max} fit the headroom", s.segments.len()));
        }
        for (k, seg) in s.segments.iter().enumerate() {
            if let Some(m) = sid_problem(seg) {
                err(format!("{spath}[{k}]"), m);
            }
        }
        match s.source.or(default_source) {
            None => err(format!("{path}.source"), "required by End.AS (or set sr.source)".into()),
            Some(src) => {
                if let Some(m) = sid_problem(&src) {
                    err(format!("{path}.source"), m.replace("a SID can be", "to send from"));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Compilation.

/// A local SID's identity: (VRF, SID, prefix length).
pub type SidKey = (u32, Ipv6Addr, u8);

/// What a steering rule steers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SteerKey {
    /// A prefix of a VRF.
    Prefix(u32, IpNet),
    /// An interface (name, index).
    Interface(String, SwIf),
}

/// A local SID as compiled.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SidPlan {
    behavior: SidBehavior,
    table: u32,
    /// End.X / End.DX*: (interface, next hop); End.DX2: (interface, -).
    sw_if: Option<SwIf>,
    next_hop: Option<IpAddr>,
    policy: Option<Ipv6Addr>,
    flavors: Flavors,
    hmac: HmacPolicy,
    /// SR proxies: inner type, return interface; End.AS: the source and
    /// segments of the returning traffic's headers.
    inner: Option<InnerSpec>,
    return_if: Option<SwIf>,
    source: Option<Ipv6Addr>,
    segments: Vec<Ipv6Addr>,
}

/// A policy as compiled.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PolicyPlan {
    spec: PolicySpec,
    source: Ipv6Addr,
    /// The secret of its HMAC key (a changed secret rebuilds it).
    secret: Option<String>,
}

/// The `sr:` section as compiled against an interface allocation.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SrPlan {
    sids: BTreeMap<SidKey, SidPlan>,
    policies: BTreeMap<Ipv6Addr, PolicyPlan>,
    steering: BTreeMap<SteerKey, Ipv6Addr>,
    keys: BTreeMap<u32, String>,
}

/// Compiles a validated state; `sw_if` names interfaces.
pub(crate) fn plan(state: &DesiredState, sw_if: impl Fn(&str) -> SwIf) -> SrPlan {
    let sr = &state.sr;
    let mut p = SrPlan { keys: sr.hmac_keys.iter().map(|k| (k.id, k.secret.clone())).collect(), ..SrPlan::default() };
    for s in &sr.localsids {
        let mut flavors = Flavors::default();
        for f in &s.flavors {
            match f {
                FlavorSpec::Psp => flavors.psp = true,
                FlavorSpec::Usp => flavors.usp = true,
                FlavorSpec::Usd => flavors.usd = true,
            }
        }
        flavors.next_csid = s.next_csid.and_then(|c| CsidFormat::new(c.block_bits, c.node_function_bits).ok());
        let hmac = match s.hmac {
            HmacModeSpec::Off => HmacPolicy::OFF,
            HmacModeSpec::IfPresent => HmacPolicy { mode: HmacMode::IfPresent, check_destination: false },
            HmacModeSpec::Required => HmacPolicy { mode: HmacMode::Required, check_destination: false },
        };
        let key = (s.vrf, s.sid, s.prefix_len());
        let plan = SidPlan {
            behavior: s.behavior,
            table: s.table.unwrap_or(s.vrf),
            sw_if: s.interface.as_deref().map(&sw_if),
            next_hop: s.next_hop,
            policy: s.policy,
            flavors,
            hmac,
            inner: s.inner,
            return_if: s.return_interface.as_deref().map(&sw_if),
            source: (s.behavior == SidBehavior::EndAs).then(|| s.source.or(sr.source)).flatten(),
            segments: s.segments.clone(),
        };
        p.sids.insert(key, plan);
    }
    for pol in &sr.policies {
        let source = pol.source.or(sr.source).unwrap_or(Ipv6Addr::UNSPECIFIED);
        let secret = pol.hmac_key.and_then(|k| p.keys.get(&k).cloned());
        p.policies.insert(pol.bsid, PolicyPlan { spec: pol.clone(), source, secret });
    }
    for s in &sr.steering {
        let key = match s {
            SteeringSpec::Prefix { vrf, prefix, .. } => SteerKey::Prefix(*vrf, prefix.trunc()),
            SteeringSpec::Interface { interface, .. } => SteerKey::Interface(interface.clone(), sw_if(interface)),
        };
        p.steering.insert(key, s.policy());
    }
    p
}

/// What differs between two plans, for the apply report: `localsid
/// fc00::1/128 (vrf 0)`, `policy fc00::b`, `steering 10.0.0.0/8 (vrf 0)`,
/// `steering interface pod-l2`, `hmac key 7`.
pub(crate) fn changes(old: &SrPlan, new: &SrPlan) -> crate::apply::Changes<String> {
    let mut c = crate::apply::Changes::default();
    fn diff<K: Ord, V: PartialEq>(
        c: &mut crate::apply::Changes<String>,
        old: &BTreeMap<K, V>,
        new: &BTreeMap<K, V>,
        name: impl Fn(&K) -> String,
    ) {
        for (k, v) in new {
            match old.get(k) {
                None => c.added.push(name(k)),
                Some(o) if o != v => c.changed.push(name(k)),
                _ => {}
            }
        }
        c.removed.extend(old.keys().filter(|k| !new.contains_key(k)).map(&name));
    }
    diff(&mut c, &old.keys, &new.keys, |k| format!("hmac key {k}"));
    diff(&mut c, &old.sids, &new.sids, |(vrf, sid, len)| format!("localsid {sid}/{len} (vrf {vrf})"));
    diff(&mut c, &old.policies, &new.policies, |b| format!("policy {b}"));
    diff(&mut c, &old.steering, &new.steering, |k| match k {
        SteerKey::Prefix(vrf, p) => format!("steering {p} (vrf {vrf})"),
        SteerKey::Interface(name, _) => format!("steering interface {name}"),
    });
    c
}

/// The SR section in force: its plan, the indices and adjacencies it
/// holds, the routes it installed and the table it built.
#[derive(Clone, Debug, Default)]
pub(crate) struct SrState {
    pub plan: SrPlan,
    sid_index: BTreeMap<SidKey, u32>,
    policy_index: BTreeMap<Ipv6Addr, u32>,
    free_sids: BTreeSet<u32>,
    next_sid: u32,
    free_policies: BTreeSet<u32>,
    next_policy: u32,
    /// Adjacencies held: SID -> (interface, next hop, adjacency).
    holds: BTreeMap<SidKey, (SwIf, IpAddr, u32)>,
    routes: BTreeMap<(u32, IpNet), RoutePath>,
    pub table: Arc<SrTable>,
}

/// An SR change programmed but not committed.
pub(crate) struct SrWork {
    /// The new state (commit it when the apply succeeds).
    pub state: SrState,
    /// Adjacency references taken for it (given back on rollback).
    new_holds: Vec<u32>,
    /// Adjacency references of the old state to give back on commit.
    old_holds: Vec<u32>,
    /// Routes changed: (key, what it was).
    undo: Vec<((u32, IpNet), Option<RoutePath>)>,
}

fn take(free: &mut BTreeSet<u32>, next: &mut u32) -> u32 {
    free.pop_first().unwrap_or_else(|| {
        *next += 1;
        *next - 1
    })
}

fn set_route(c: &mut FibControl, key: (u32, IpNet), path: Option<RoutePath>) -> Result<(), IpFibError> {
    c.set_route_source(key.0, key.1, RouteSource::Srv6, path.into_iter().collect())
}

impl SrState {
    /// Programs `plan`: holds adjacencies, changes the FIB routes, builds
    /// the new table. On failure everything done is undone and the step
    /// and error are returned.
    pub fn program(&self, plan: SrPlan, c: &mut FibControl) -> Result<SrWork, (String, IpFibError)> {
        let mut next = SrState {
            plan: SrPlan::default(),
            sid_index: BTreeMap::new(),
            policy_index: BTreeMap::new(),
            free_sids: self.free_sids.clone(),
            next_sid: self.next_sid,
            free_policies: self.free_policies.clone(),
            next_policy: self.next_policy,
            holds: BTreeMap::new(),
            routes: BTreeMap::new(),
            table: Arc::clone(&self.table),
        };
        // Indices: kept by what stays, new ones from the free lists (freed
        // by earlier applies); those freed now wait for a later apply.
        let mut released_sids = Vec::new();
        for (k, &i) in &self.sid_index {
            if plan.sids.contains_key(k) {
                next.sid_index.insert(*k, i);
            } else {
                released_sids.push(i);
            }
        }
        for k in plan.sids.keys() {
            if !next.sid_index.contains_key(k) {
                let i = take(&mut next.free_sids, &mut next.next_sid);
                next.sid_index.insert(*k, i);
            }
        }
        let mut released_policies = Vec::new();
        for (b, &i) in &self.policy_index {
            if plan.policies.contains_key(b) {
                next.policy_index.insert(*b, i);
            } else {
                released_policies.push(i);
            }
        }
        for b in plan.policies.keys() {
            if !next.policy_index.contains_key(b) {
                let i = take(&mut next.free_policies, &mut next.next_policy);
                next.policy_index.insert(*b, i);
            }
        }
        next.free_sids.extend(released_sids);
        next.free_policies.extend(released_policies);

        let mut work = SrWork { state: next, new_holds: Vec::new(), old_holds: Vec::new(), undo: Vec::new() };
        let r = self.program_steps(&plan, c, &mut work);
        if let Err(e) = r {
            work.rollback(c);
            return Err(e);
        }
        work.state.plan = plan;
        Ok(work)
    }

    fn program_steps(&self, plan: &SrPlan, c: &mut FibControl, work: &mut SrWork) -> Result<(), (String, IpFibError)> {
        let next = &mut work.state;
        // Adjacencies of End.X / End.DX4 / End.DX6.
        for (k, s) in &plan.sids {
            let want = match (s.behavior, s.sw_if, s.next_hop) {
                (
                    SidBehavior::EndX
                    | SidBehavior::EndDx4
                    | SidBehavior::EndDx6
                    | SidBehavior::EndAs
                    | SidBehavior::EndAd
                    | SidBehavior::EndAm,
                    Some(sw_if),
                    Some(nh),
                ) => Some((sw_if, nh)),
                _ => None,
            };
            let Some((sw_if, nh)) = want else { continue };
            match self.holds.get(k) {
                Some(&(s0, n0, adj)) if (s0, n0) == (sw_if, nh) => {
                    next.holds.insert(*k, (sw_if, nh, adj));
                }
                _ => {
                    let adj = c
                        .hold_neighbor_adjacency(sw_if, nh)
                        .map_err(|e| (format!("holding the adjacency of {nh} for localsid {}", k.1), e))?;
                    work.new_holds.push(adj);
                    next.holds.insert(*k, (sw_if, nh, adj));
                }
            }
        }
        for (k, &(_, _, adj)) in &self.holds {
            if next.holds.get(k).is_none_or(|h| h.2 != adj) {
                work.old_holds.push(adj);
            }
        }
        // The table.
        let mut keys = HmacKeyTable::new();
        for (&id, secret) in &plan.keys {
            // Validated: ids > 0, 1..=64 bytes.
            let _ = keys.insert(id, secret.as_bytes());
        }
        let keys = Arc::new(keys);
        let mut table = SrTable::new();
        table.set_keys(Arc::clone(&keys));
        for (b, p) in &plan.policies {
            let index = next.policy_index[b];
            let policy =
                build_policy(p, &keys).map_err(|e| (format!("building policy {b}: {e}"), IpFibError::NoPaths))?;
            let _ = table.set_policy(index, Some(policy));
        }
        for (k, s) in &plan.sids {
            let index = next.sid_index[k];
            let adj = next.holds.get(k).map(|h| h.2).unwrap_or(0);
            let policy = s.policy.and_then(|b| next.policy_index.get(&b).copied()).unwrap_or(u32::MAX);
            let behavior = match s.behavior {
                SidBehavior::End => Behavior::End,
                SidBehavior::EndX => Behavior::EndX { adj },
                SidBehavior::EndT => Behavior::EndT { vrf: s.table },
                SidBehavior::EndDx2 => Behavior::EndDx2 { sw_if: s.sw_if.unwrap_or(u32::MAX) },
                SidBehavior::EndDx4 => Behavior::EndDx4 { adj },
                SidBehavior::EndDx6 => Behavior::EndDx6 { adj },
                SidBehavior::EndDt4 => Behavior::EndDt4 { vrf: s.table },
                SidBehavior::EndDt6 => Behavior::EndDt6 { vrf: s.table },
                SidBehavior::EndDt46 => Behavior::EndDt46 { vrf: s.table },
                SidBehavior::EndB6Encaps => Behavior::EndB6Encaps { policy },
                SidBehavior::EndB6EncapsRed => Behavior::EndB6EncapsRed { policy },
                SidBehavior::EndAs => Behavior::EndAs,
                SidBehavior::EndAd => Behavior::EndAd,
                SidBehavior::EndAm => Behavior::EndAm,
            };
            let mut sid = LocalSid::new(k.1, k.0, behavior);
            sid.prefix_len = k.2;
            sid.flavors = s.flavors;
            sid.hmac = s.hmac;
            if s.behavior.is_proxy() {
                // The End.AD cache outlives applies while its SID stays.
                let old = self.table.localsid(index).filter(|o| (o.sid, o.prefix_len, o.vrf) == (k.1, k.2, k.0));
                let proxy = build_proxy(s, adj, old)
                    .map_err(|e| (format!("building the proxy of localsid {}: {e}", k.1), IpFibError::NoPaths))?;
                let claim = match proxy.inner() {
                    Inner::Ipv4 => ProxyClaim::Ipv4,
                    Inner::Ipv6 => ProxyClaim::Ipv6,
                    Inner::Ethernet => ProxyClaim::Frames,
                };
                table.set_proxy_return(proxy.return_if, Some((index, claim)));
                sid.proxy = Some(Arc::new(proxy));
            }
            let _ = table.set_localsid(index, Some(sid));
            let prefix = IpNet::V6(Ipv6Net::new(k.1, k.2).expect("validated prefix length"));
            let path = RoutePath::special(NextHop::SrLocalSid { index, decap: behavior.decapsulates() });
            next.routes.insert((k.0, prefix), path);
        }
        for (b, p) in &plan.policies {
            if !p.spec.encap.kind().is_l2() {
                let index = next.policy_index[b];
                let prefix = IpNet::V6(Ipv6Net::new(*b, 128).expect("/128"));
                next.routes.insert((p.spec.vrf, prefix), RoutePath::special(NextHop::SrPolicy { index }));
            }
        }
        for (k, b) in &plan.steering {
            let index = next.policy_index[b];
            match k {
                SteerKey::Prefix(vrf, prefix) => {
                    next.routes.insert((*vrf, *prefix), RoutePath::special(NextHop::SrPolicy { index }));
                }
                SteerKey::Interface(_, sw_if) => table.set_l2_steering(*sw_if, Some(index)),
            }
        }
        // Routes: the ones that go, then the new and changed.
        for (key, path) in &self.routes {
            if !next.routes.contains_key(key) {
                set_route(c, *key, None).map_err(|e| (format!("removing the SR route to {}", key.1), e))?;
                work.undo.push((*key, Some(*path)));
            }
        }
        for (key, path) in &next.routes {
            let was = self.routes.get(key);
            if was != Some(path) {
                set_route(c, *key, Some(*path)).map_err(|e| (format!("adding the SR route to {}", key.1), e))?;
                work.undo.push((*key, was.copied()));
            }
        }
        next.table = Arc::new(table);
        Ok(())
    }
}

impl SrWork {
    /// Gives back the old state's adjacency references; returns the new
    /// state.
    pub fn commit(self, c: &mut FibControl) -> SrState {
        for adj in self.old_holds {
            c.release_adjacency(adj);
        }
        self.state
    }

    /// Undoes the route changes and gives back the new references;
    /// returns the steps that failed.
    pub fn rollback(&mut self, c: &mut FibControl) -> Vec<String> {
        let mut failures = Vec::new();
        for (key, old) in self.undo.drain(..).rev() {
            if let Err(e) = set_route(c, key, old) {
                failures.push(format!("restoring the SR route to {} (vrf {}): {e}", key.1, key.0));
            }
        }
        for adj in self.new_holds.drain(..) {
            c.release_adjacency(adj);
        }
        failures
    }
}

/// An SR proxy's parameters; `adj` is its next hop's adjacency (IP inner
/// types and End.AM), `old` the SID this one replaces at its index.
fn build_proxy(s: &SidPlan, adj: u32, old: Option<&LocalSid>) -> Result<SrProxy, String> {
    let inner = s.inner.map_or(Inner::Ipv6, InnerSpec::inner);
    let to_sf = match inner {
        Inner::Ethernet => Next::Interface(s.sw_if.unwrap_or(u32::MAX)),
        _ => Next::Adjacency(adj),
    };
    let kind = match s.behavior {
        SidBehavior::EndAs => {
            let mut e = EncapParams::new(s.source.unwrap_or(Ipv6Addr::UNSPECIFIED), &s.segments);
            e.l2 = inner == Inner::Ethernet;
            let cache = EncapTemplate::new(&e).map_err(|e| e.to_string())?;
            ProxyKind::Static(Box::new(StaticProxy { inner, to_sf, cache }))
        }
        SidBehavior::EndAd => {
            let cache = match old.and_then(|o| o.proxy.as_deref()).map(|p| &p.kind) {
                Some(ProxyKind::Dynamic { proxy, cache }) if proxy.inner == inner => Arc::clone(cache),
                _ => Arc::new(AdCache::new()),
            };
            ProxyKind::Dynamic { proxy: DynamicProxy { inner, to_sf }, cache }
        }
        _ => ProxyKind::Masquerading { to_sf },
    };
    Ok(SrProxy { kind, return_if: s.return_if.unwrap_or(u32::MAX) })
}

fn build_policy(p: &PolicyPlan, keys: &HmacKeyTable) -> Result<Policy, String> {
    let encap = p.spec.encap.kind();
    let mut lists = Vec::with_capacity(p.spec.segment_lists.len());
    for l in &p.spec.segment_lists {
        let mut e = EncapParams::new(p.source, &l.segments);
        e.reduced = encap.is_reduced();
        e.l2 = encap.is_l2();
        if let Some(h) = p.spec.hop_limit {
            e.hop_limit = HopLimit::Fixed(h);
        }
        if let Some(tc) = p.spec.traffic_class {
            e.traffic_class = TrafficClass::Fixed(tc);
        }
        if let Some(k) = p.spec.hmac_key {
            e.hmac = Some((keys, k));
            // Linux verifies only an HMAC announced by its legacy flag.
            e.flags |= srh_flags::LINUX_HMAC;
        }
        let template = EncapTemplate::new(&e).map_err(|e| e.to_string())?;
        lists.push(SegmentList { weight: l.weight, template });
    }
    let policy = SrPolicy::new(p.spec.bsid, lists, DEFAULT_BUCKETS).map_err(|e| e.to_string())?;
    Ok(Policy { policy, encap, vrf: p.spec.vrf })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviors_read_in_any_case_and_write_as_the_rfc_names_them() {
        for b in SidBehavior::ALL {
            assert_eq!(b.name().to_lowercase().parse::<SidBehavior>().unwrap(), b);
            assert_eq!(b.name().to_uppercase().parse::<SidBehavior>().unwrap(), b);
        }
        assert!("End.DX9".parse::<SidBehavior>().unwrap_err().contains("expected one of End, End.X"));
    }

    const PROXY_BASE: &str = "
interfaces:
  - { name: core, type: pg, l3: { addresses: ['fc00:b::1/64'] } }
  - { name: sf-in, type: pg, l3: { addresses: [10.5.1.1/24, 'fc00:5::1/64'] } }
  - { name: sf-out, type: pg, l3: { addresses: [10.5.2.1/24] } }
  - { name: sf-l2, type: pg }
  - { name: pod-l2, type: pg }
  - { name: br, type: pg, bridge: { domain: 1 } }
bridge_domains: [{ id: 1 }]
";

    fn proxy_state(sids: &str) -> crate::DesiredState {
        let yaml = format!("{PROXY_BASE}sr:\n  source: 'fc00:b::1'\n  localsids:\n{sids}");
        crate::DesiredState::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    fn proxy_errors(sids: &str) -> Vec<String> {
        match crate::validate(&proxy_state(sids), &crate::Limits::default()) {
            Ok(w) => panic!("valid ({w:?}): {sids}"),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    const GOOD: &str = "    - { sid: 'fc00:1::a2', behavior: end.ad, inner: ipv4, interface: sf-in, next_hop: 10.5.1.2, return_interface: sf-out }
    - { sid: 'fc00:1::a1', behavior: End.AM, interface: sf-in, next_hop: 'fc00:5::2', return_interface: sf-in }
    - { sid: 'fc00:1::a5', behavior: End.AS, inner: ethernet, interface: sf-l2, return_interface: sf-l2, segments: ['fc00:3::d2'] }
";

    #[test]
    fn proxies_validate_each_field_by_its_path() {
        crate::validate(&proxy_state(GOOD), &crate::Limits::default()).unwrap();
        let cases: &[(&str, &str)] = &[
            (
                "    - { sid: 'fc00:1::a2', behavior: End.AD, interface: sf-in, next_hop: 10.5.1.2, return_interface: sf-out }\n",
                "sr.localsids[0] (fc00:1::a2).inner: required by End.AD",
            ),
            (
                "    - { sid: 'fc00:1::a2', behavior: End.AD, inner: ipv4, interface: sf-in, next_hop: 10.5.1.2, return_interface: nope }\n",
                "sr.localsids[0] (fc00:1::a2).return_interface: no interface named \"nope\"",
            ),
            (
                "    - { sid: 'fc00:1::a2', behavior: End.AD, inner: ipv4, interface: sf-in, next_hop: 10.5.1.2 }\n",
                "sr.localsids[0] (fc00:1::a2).return_interface: required by End.AD",
            ),
            (
                "    - { sid: 'fc00:1::a2', behavior: End.AD, inner: ipv4, interface: sf-in, next_hop: 10.5.1.2, return_interface: sf-l2 }\n",
                "sr.localsids[0] (fc00:1::a2).return_interface: \"sf-l2\" is disabled; the service function of End.AD with IP traffic is on a routed (l3) interface",
            ),
            (
                "    - { sid: 'fc00:1::a2', behavior: End.AD, inner: ethernet, interface: sf-in, return_interface: br }\n",
                "sr.localsids[0] (fc00:1::a2).interface: \"sf-in\" is l3; the service function of an Ethernet proxy",
            ),
            (
                "    - { sid: 'fc00:1::a2', behavior: End.AD, inner: ethernet, interface: sf-l2, return_interface: br }\n",
                "sr.localsids[0] (fc00:1::a2).return_interface: \"br\" is bridge",
            ),
            (
                "    - { sid: 'fc00:1::a2', behavior: End.AD, inner: ethernet, interface: sf-l2, next_hop: 10.5.1.2, return_interface: sf-l2 }\n",
                "sr.localsids[0] (fc00:1::a2).next_hop: next_hop is not used by End.AD with inner ethernet",
            ),
            (
                "    - { sid: 'fc00:1::a2', behavior: End.AD, inner: ipv4, interface: sf-in, next_hop: 'fc00:5::2', return_interface: sf-out }\n",
                "sr.localsids[0] (fc00:1::a2).next_hop: End.AD needs an IPv4 next hop",
            ),
            (
                "    - { sid: 'fc00:1::a1', behavior: End.AM, inner: ipv6, interface: sf-in, next_hop: 'fc00:5::2', return_interface: sf-in, segments: ['fc00:3::1'] }\n",
                "sr.localsids[0] (fc00:1::a1).inner: inner is not used by End.AM",
            ),
            (
                "    - { sid: 'fc00:1::a1', behavior: End.AM, interface: sf-in, next_hop: 'fc00:5::2', return_interface: sf-in, segments: ['fc00:3::1'] }\n",
                "sr.localsids[0] (fc00:1::a1).segments: segments is not used by End.AM",
            ),
            (
                "    - { sid: 'fc00:1::a5', behavior: End.AS, inner: ipv4, interface: sf-in, next_hop: 10.5.1.2, return_interface: sf-out }\n",
                "sr.localsids[0] (fc00:1::a5).segments: required by End.AS",
            ),
            (
                "    - { sid: 'fc00:1::a5', behavior: End.AS, inner: ipv4, interface: sf-in, next_hop: 10.5.1.2, return_interface: sf-out, segments: ['ff02::1'] }\n",
                "sr.localsids[0] (fc00:1::a5).segments[0]: ff02::1 is not a unicast address",
            ),
            (
                "    - { sid: 'fc00:1::e', behavior: End, return_interface: sf-out }\n",
                "sr.localsids[0] (fc00:1::e).return_interface: return_interface is not used by End",
            ),
        ];
        for (sids, want) in cases {
            let e = proxy_errors(sids);
            assert!(e.iter().any(|m| m.starts_with(want)), "{want:?} not in {e:?}");
        }
        // Two proxies on one return interface; one steered interface.
        let two = format!(
            "{GOOD}    - {{ sid: 'fc00:1::a9', behavior: End.AD, inner: ipv4, interface: sf-in, next_hop: 10.5.1.2, return_interface: sf-out }}\n"
        );
        let e = proxy_errors(&two);
        let want =
            "sr.localsids[3] (fc00:1::a9).return_interface: \"sf-out\" is also the return interface of sr.localsids[0]";
        assert!(e.iter().any(|m| m == want), "{e:?}");
        let steered = "    - { sid: 'fc00:1::a5', behavior: End.AS, inner: ethernet, interface: sf-l2, return_interface: pod-l2, segments: ['fc00:3::d2'] }
  policies: [{ bsid: 'fc00:1::b:2', encap: l2, segment_lists: [{ segments: ['fc00:3::d2'] }] }]
  steering: [{ interface: pod-l2, policy: 'fc00:1::b:2' }]
";
        let e = proxy_errors(steered);
        assert!(e.iter().any(|m| m.contains("return_interface: \"pod-l2\" is steered by sr.steering[0]")), "{e:?}");
    }

    #[test]
    fn proxies_compile_to_the_table_and_the_ad_cache_outlives_applies() {
        use vswitch_nodes::ip::IpFibConfig;
        let mut c = crate::Controller::new(IpFibConfig::small()).unwrap();
        let r = c.apply(proxy_state(GOOD), &mut crate::NoPortBackends).unwrap();
        assert!(r.to_string().contains("+localsid fc00:1::a2/128 (vrf 0)"), "{r}");
        let t = c.snapshot();
        let sr = &t.sr;
        let find = |s: &str| sr.localsids().find(|(_, l)| l.sid == s.parse::<Ipv6Addr>().unwrap()).unwrap();
        let (ad, sid) = find("fc00:1::a2");
        assert_eq!(sid.behavior, Behavior::EndAd);
        let proxy = sid.proxy.clone().unwrap();
        let sf_out = c.sw_if("sf-out").unwrap();
        assert_eq!((proxy.inner(), proxy.return_if), (Inner::Ipv4, sf_out));
        let Next::Adjacency(adj) = proxy.to_sf() else { panic!("{proxy:?}") };
        assert_eq!(c.fib().adj(adj).sw_if, c.sw_if("sf-in").unwrap());
        let v4 = [0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 5, 2, 2, 10, 7, 0, 2];
        assert_eq!(sr.proxy_claims(sf_out, 0x0800, &v4), Some(ad));
        assert_eq!(sr.proxy_claims(sf_out, 0x86dd, &[0; 48]), None, "an IPv4 proxy leaves IPv6 alone");
        let (am, _) = find("fc00:1::a1");
        assert_eq!(sr.proxy_return(c.sw_if("sf-in").unwrap()), Some(am));
        let (_, l2) = find("fc00:1::a5");
        let Some(ProxyKind::Static(sp)) = l2.proxy.as_deref().map(|p| &p.kind) else { panic!() };
        assert!(sp.cache.is_l2() && sp.to_sf == Next::Interface(c.sw_if("sf-l2").unwrap()));
        assert_eq!(sr.proxy_claims(c.sw_if("sf-l2").unwrap(), 0x0806, &[]), Some(find("fc00:1::a5").0));
        let ProxyKind::Dynamic { cache, .. } = &proxy.kind else { panic!() };
        cache.publish(&[0x60; 96]);
        // Another SID added: End.AD keeps its index and its cache.
        let more = format!("{GOOD}    - {{ sid: 'fc00:1::e', behavior: End }}\n");
        c.apply(proxy_state(&more), &mut crate::NoPortBackends).unwrap();
        let t2 = c.snapshot();
        let again = t2.sr.localsid(ad).unwrap().proxy.clone().unwrap();
        let ProxyKind::Dynamic { cache: cache2, .. } = &again.kind else { panic!() };
        assert!(Arc::ptr_eq(cache, cache2) && cache2.len() == 96);
        // Removed: the return interfaces are released.
        c.apply(proxy_state("    - { sid: 'fc00:1::e', behavior: End }\n"), &mut crate::NoPortBackends).unwrap();
        assert_eq!(c.snapshot().sr.proxy_returns().count(), 0);
    }

    #[test]
    fn segments_that_fit_the_headroom() {
        // 224 bytes: 40 + 8 + 16 * 11 = 224.
        assert_eq!(max_segments(false, false), 11);
        assert_eq!(max_segments(true, false), 8);
        assert_eq!(max_segments(false, true), 12);
    }
}
