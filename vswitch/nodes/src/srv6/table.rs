//! The SR table: local SIDs, SR policies, L2 steering and HMAC keys, as
//! the SR nodes read them.
//!
//! One immutable [`SrTable`] is shared by `Arc` in [`Tables::sr`]
//! (crate::Tables::sr); the control plane builds a new one for a change
//! and publishes it with the rest of the snapshot. The FIB only knows
//! indices: a local SID is a route whose adjacency is of kind
//! `SrLocalSid`/`SrLocalSidDecap` carrying the SID's index here, a
//! steered prefix a route whose adjacency is `SrPolicy` with the policy's
//! index. Indices are stable while the entry exists, so the per-worker
//! counters ([`super::SrCounters`]) follow them.
//!
//! Everything a packet needs is precomputed here: behaviour parameters
//! resolved to adjacency, interface and VRF indices, encapsulation
//! templates (`vswitch_srv6::behavior::EncapTemplate`, built once per
//! segment list) and the bucket table that picks a segment list per flow.

use std::net::Ipv6Addr;
use std::sync::Arc;
use vswitch_srv6::behavior::{DynamicProxy, EndOpts, Flavors, HmacCheck, Inner, Next, StaticProxy, UpperSet};
use vswitch_srv6::hmac::{HmacKeyTable, HmacPolicy};
use vswitch_srv6::policy::SrPolicy;

use super::proxy_cache::AdCache;
use crate::NONE;

/// Most local SIDs (indices `0..MAX_LOCALSIDS`): the size of the
/// per-worker counter arrays.
pub const MAX_LOCALSIDS: usize = 4096;
/// Most SR policies.
pub const MAX_POLICIES: usize = 4096;
/// The most bytes an encapsulation may push: the buffers' headroom less
/// the largest Ethernet rewrite ip6-rewrite writes in front of it (a frame
/// steered from an L2 interface starts right after the headroom).
pub const MAX_ENCAP_LEN: usize = vswitch_packet::HEADROOM - vswitch_fib::adj::REWRITE_MAX;

/// What a local SID does, with its parameters resolved to dataplane
/// indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// End: next segment, FIB lookup in the SID's VRF.
    End,
    /// End.X: next segment, to this IPv6 neighbor adjacency.
    EndX {
        /// Adjacency index in the FIB (a neighbor adjacency held by the
        /// control plane).
        adj: u32,
    },
    /// End.T: next segment, lookup in this VRF.
    EndT {
        /// VRF.
        vrf: u32,
    },
    /// End.DX2: the inner Ethernet frame out of this interface.
    EndDx2 {
        /// Output interface.
        sw_if: u32,
    },
    /// End.DX4: the inner IPv4 packet to this IPv4 neighbor adjacency.
    EndDx4 {
        /// Adjacency index.
        adj: u32,
    },
    /// End.DX6: the inner IPv6 packet to this IPv6 neighbor adjacency.
    EndDx6 {
        /// Adjacency index.
        adj: u32,
    },
    /// End.DT4: the inner IPv4 packet looked up in this VRF.
    EndDt4 {
        /// VRF.
        vrf: u32,
    },
    /// End.DT6: the inner IPv6 packet looked up in this VRF.
    EndDt6 {
        /// VRF.
        vrf: u32,
    },
    /// End.DT46: the inner IPv4 or IPv6 packet looked up in this VRF.
    EndDt46 {
        /// VRF.
        vrf: u32,
    },
    /// End.B6.Encaps: End, then the policy's encapsulation.
    EndB6Encaps {
        /// Policy index.
        policy: u32,
    },
    /// End.B6.Encaps.Red: as End.B6.Encaps with a reduced SRH.
    EndB6EncapsRed {
        /// Policy index.
        policy: u32,
    },
    /// End.AS, static SR proxy (its parameters: [`LocalSid::proxy`]).
    EndAs,
    /// End.AD, dynamic SR proxy.
    EndAd,
    /// End.AM, masquerading SR proxy.
    EndAm,
}

impl Behavior {
    /// The RFC 8986 name (`End.DT4`), as the CLI shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Behavior::End => "End",
            Behavior::EndX { .. } => "End.X",
            Behavior::EndT { .. } => "End.T",
            Behavior::EndDx2 { .. } => "End.DX2",
            Behavior::EndDx4 { .. } => "End.DX4",
            Behavior::EndDx6 { .. } => "End.DX6",
            Behavior::EndDt4 { .. } => "End.DT4",
            Behavior::EndDt6 { .. } => "End.DT6",
            Behavior::EndDt46 { .. } => "End.DT46",
            Behavior::EndB6Encaps { .. } => "End.B6.Encaps",
            Behavior::EndB6EncapsRed { .. } => "End.B6.Encaps.Red",
            Behavior::EndAs => "End.AS",
            Behavior::EndAd => "End.AD",
            Behavior::EndAm => "End.AM",
        }
    }

    /// Whether the behaviour decapsulates (its route points at
    /// `sr-localsid-d`, the others' at `sr-localsid`).
    pub fn decapsulates(&self) -> bool {
        matches!(
            self,
            Behavior::EndDx2 { .. }
                | Behavior::EndDx4 { .. }
                | Behavior::EndDx6 { .. }
                | Behavior::EndDt4 { .. }
                | Behavior::EndDt6 { .. }
                | Behavior::EndDt46 { .. }
                | Behavior::EndAs
                | Behavior::EndAd
        )
    }

    /// Whether it is an SR proxy (End.AS, End.AD, End.AM).
    pub fn is_proxy(&self) -> bool {
        matches!(self, Behavior::EndAs | Behavior::EndAd | Behavior::EndAm)
    }
}

/// What an SR proxy does (draft-ietf-spring-sr-service-programming
/// section 6), resolved to dataplane indices.
#[derive(Clone, Debug)]
pub enum ProxyKind {
    /// End.AS: the inner type, the SF's adjacency or interface, and the
    /// headers pushed on the way back.
    Static(Box<StaticProxy>),
    /// End.AD: the inner type and the SF's adjacency or interface; the
    /// outer headers of the last packet sent to the SF, shared by the
    /// workers.
    Dynamic {
        /// Inner type and towards the SF.
        proxy: DynamicProxy,
        /// The cache (kept across applies while the SID stays).
        cache: Arc<AdCache>,
    },
    /// End.AM: the SF's IPv6 neighbor adjacency.
    Masquerading {
        /// Towards the SF.
        to_sf: Next,
    },
}

/// An SR proxy's binding to its service function (SF).
#[derive(Clone, Debug)]
pub struct SrProxy {
    /// The behaviour's parameters.
    pub kind: ProxyKind,
    /// The interface the SF sends traffic back on (claimed by the proxy:
    /// see [`SrTable::proxy_claims`]).
    pub return_if: u32,
}

impl SrProxy {
    /// The packets the SF receives and sends back: IPv4, IPv6 or Ethernet
    /// (End.AM: the IPv6 packet itself).
    pub fn inner(&self) -> Inner {
        match &self.kind {
            ProxyKind::Static(p) => p.inner,
            ProxyKind::Dynamic { proxy, .. } => proxy.inner,
            ProxyKind::Masquerading { .. } => Inner::Ipv6,
        }
    }

    /// Towards the SF.
    pub fn to_sf(&self) -> Next {
        match &self.kind {
            ProxyKind::Static(p) => p.to_sf,
            ProxyKind::Dynamic { proxy, .. } => proxy.to_sf,
            ProxyKind::Masquerading { to_sf } => *to_sf,
        }
    }
}

impl PartialEq for SrProxy {
    fn eq(&self, o: &SrProxy) -> bool {
        let kind = match (&self.kind, &o.kind) {
            (ProxyKind::Static(a), ProxyKind::Static(b)) => {
                (a.inner, a.to_sf) == (b.inner, b.to_sf) && a.cache == b.cache
            }
            (ProxyKind::Dynamic { proxy: a, cache: ca }, ProxyKind::Dynamic { proxy: b, cache: cb }) => {
                a == b && Arc::ptr_eq(ca, cb)
            }
            (ProxyKind::Masquerading { to_sf: a }, ProxyKind::Masquerading { to_sf: b }) => a == b,
            _ => false,
        };
        kind && self.return_if == o.return_if
    }
}

impl Eq for SrProxy {}

/// Which frames received on a proxy's return interface the proxy takes
/// (the others go the interface's normal way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyClaim {
    /// Every frame (an Ethernet proxy's interface has no other mode).
    Frames,
    /// IPv4 unicast packets (ARP stays with arp-input: the SF resolves
    /// us).
    Ipv4,
    /// IPv6 packets except neighbor discovery and multicast.
    Ipv6,
}

/// One local SID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalSid {
    /// The SID (with NEXT-C-SID: the locator block and node/function,
    /// argument bits zero).
    pub sid: Ipv6Addr,
    /// Its prefix length in the FIB: 128, or shorter for NEXT-C-SID.
    pub prefix_len: u8,
    /// The VRF whose FIB holds the SID.
    pub vrf: u32,
    /// What it does.
    pub behavior: Behavior,
    /// PSP / USP / USD / NEXT-C-SID (End, End.X, End.T).
    pub flavors: Flavors,
    /// Upper-layer protocols handed to ip6-local when the SID is the
    /// packet's final destination (ICMPv6 by default: a SID answers ping).
    pub local_upper: UpperSet,
    /// HMAC check of received SRHs.
    pub hmac: HmacPolicy,
    /// End.AS / End.AD / End.AM: the proxy's parameters.
    pub proxy: Option<Arc<SrProxy>>,
}

impl LocalSid {
    /// A SID with no flavor, ICMPv6 answered locally, no HMAC check.
    pub fn new(sid: Ipv6Addr, vrf: u32, behavior: Behavior) -> LocalSid {
        LocalSid {
            sid,
            prefix_len: 128,
            vrf,
            behavior,
            flavors: Flavors::default(),
            local_upper: UpperSet::ICMPV6,
            hmac: HmacPolicy::OFF,
            proxy: None,
        }
    }

    /// The behaviour options over `keys`.
    #[inline(always)]
    pub fn opts<'k>(&self, keys: &'k HmacKeyTable) -> EndOpts<'k> {
        let hmac = (self.hmac != HmacPolicy::OFF).then_some(HmacCheck { keys, policy: self.hmac });
        EndOpts { flavors: self.flavors, local_upper: self.local_upper, hmac }
    }
}

/// The encapsulation a policy applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncapKind {
    /// H.Encaps.
    Encaps,
    /// H.Encaps.Red.
    EncapsRed,
    /// H.Encaps.L2.
    L2,
    /// H.Encaps.L2.Red.
    L2Red,
}

impl EncapKind {
    /// Its name in the configuration (`encaps`, `encaps-red`, `l2`, `l2-red`).
    pub fn name(&self) -> &'static str {
        match self {
            EncapKind::Encaps => "encaps",
            EncapKind::EncapsRed => "encaps-red",
            EncapKind::L2 => "l2",
            EncapKind::L2Red => "l2-red",
        }
    }

    /// Whether the policy encapsulates Ethernet frames.
    pub fn is_l2(&self) -> bool {
        matches!(self, EncapKind::L2 | EncapKind::L2Red)
    }

    /// Whether the SRH is reduced.
    pub fn is_reduced(&self) -> bool {
        matches!(self, EncapKind::EncapsRed | EncapKind::L2Red)
    }
}

/// One SR policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Binding SID, weighted segment lists (templates built for `encap`)
    /// and the bucket table.
    pub policy: SrPolicy,
    /// The headend behaviour.
    pub encap: EncapKind,
    /// The VRF the encapsulated packet is looked up in.
    pub vrf: u32,
}

/// The SR configuration of the data path (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct SrTable {
    localsids: Vec<Option<LocalSid>>,
    policies: Vec<Option<Policy>>,
    /// Policy index by software interface ([`NONE`]: not steered).
    l2_steer: Vec<u32>,
    /// SR proxy SID index (and what it takes) by return interface.
    proxy_return: Vec<(u32, ProxyClaim)>,
    keys: Arc<HmacKeyTable>,
}

/// Why an entry was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrTableError {
    /// The index is not below [`MAX_LOCALSIDS`] / [`MAX_POLICIES`].
    IndexTooLarge(u32),
}

impl std::fmt::Display for SrTableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SrTableError::IndexTooLarge(i) => write!(f, "SR table index {i} is too large"),
        }
    }
}

impl std::error::Error for SrTableError {}

impl SrTable {
    /// An empty table.
    pub fn new() -> SrTable {
        SrTable::default()
    }

    /// Local SID `index`.
    #[inline(always)]
    pub fn localsid(&self, index: u32) -> Option<&LocalSid> {
        self.localsids.get(index as usize).and_then(Option::as_ref)
    }

    /// Policy `index`.
    #[inline(always)]
    pub fn policy(&self, index: u32) -> Option<&Policy> {
        self.policies.get(index as usize).and_then(Option::as_ref)
    }

    /// The policy frames received on `sw_if` are steered into.
    #[inline(always)]
    pub fn l2_policy(&self, sw_if: u32) -> Option<u32> {
        match self.l2_steer.get(sw_if as usize) {
            Some(&p) if p != NONE => Some(p),
            _ => None,
        }
    }

    /// The SR proxy SID whose SF sends traffic back on `sw_if`.
    #[inline(always)]
    pub fn proxy_return(&self, sw_if: u32) -> Option<u32> {
        match self.proxy_return.get(sw_if as usize) {
            Some(&(i, _)) if i != NONE => Some(i),
            _ => None,
        }
    }

    /// The SR proxy SID that takes a frame received on `sw_if`, of
    /// ethertype `ethertype`, whose payload starts `l3`: every frame for an
    /// Ethernet proxy, else the unicast packets of its inner type. IPv6
    /// neighbor discovery (ICMPv6 right after the IPv6 header, types 133 to
    /// 137), multicast and broadcast stay with ip4-input / ip6-input, so
    /// the SF and vswitch resolve each other on that link.
    #[inline(always)]
    pub fn proxy_claims(&self, sw_if: u32, ethertype: u16, l3: &[u8]) -> Option<u32> {
        let &(index, claim) = self.proxy_return.get(sw_if as usize)?;
        let ours = match claim {
            ProxyClaim::Frames => true,
            // Not multicast or broadcast (224.0.0.0 and up): the SF's own.
            ProxyClaim::Ipv4 => ethertype == 0x0800 && l3.len() >= 20 && l3[16] < 224,
            ProxyClaim::Ipv6 => {
                ethertype == 0x86dd
                    && l3.len() > 40
                    && l3[24] != 0xff
                    && !(l3[6] == 58 && (133..=137).contains(&l3[40]))
            }
        };
        (ours && index != NONE).then_some(index)
    }

    /// Every proxy return interface: (interface, SID index).
    pub fn proxy_returns(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.proxy_return.iter().enumerate().filter(|(_, &(i, _))| i != NONE).map(|(s, &(i, _))| (s as u32, i))
    }

    /// Makes SR proxy SID `index` take what `claim` says of the frames
    /// received on `sw_if` (or, with `None`, stops).
    pub fn set_proxy_return(&mut self, sw_if: u32, proxy: Option<(u32, ProxyClaim)>) {
        let i = sw_if as usize;
        let none = (NONE, ProxyClaim::Frames);
        if self.proxy_return.len() <= i {
            if proxy.is_none() {
                return;
            }
            self.proxy_return.resize(i + 1, none);
        }
        self.proxy_return[i] = proxy.unwrap_or(none);
        while self.proxy_return.last().is_some_and(|e| e.0 == NONE) {
            self.proxy_return.pop();
        }
    }

    /// The HMAC keys.
    #[inline(always)]
    pub fn keys(&self) -> &HmacKeyTable {
        &self.keys
    }

    /// Every local SID with its index.
    pub fn localsids(&self) -> impl Iterator<Item = (u32, &LocalSid)> {
        self.localsids.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|s| (i as u32, s)))
    }

    /// Every policy with its index.
    pub fn policies(&self) -> impl Iterator<Item = (u32, &Policy)> {
        self.policies.iter().enumerate().filter_map(|(i, p)| p.as_ref().map(|p| (i as u32, p)))
    }

    /// Every L2 steering rule: (interface, policy index).
    pub fn l2_steering(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.l2_steer.iter().enumerate().filter(|(_, &p)| p != NONE).map(|(s, &p)| (s as u32, p))
    }

    /// Sets (or, with `None`, clears) local SID `index`.
    pub fn set_localsid(&mut self, index: u32, sid: Option<LocalSid>) -> Result<(), SrTableError> {
        set(&mut self.localsids, index, MAX_LOCALSIDS, sid)
    }

    /// Sets (or clears) policy `index`.
    pub fn set_policy(&mut self, index: u32, policy: Option<Policy>) -> Result<(), SrTableError> {
        set(&mut self.policies, index, MAX_POLICIES, policy)
    }

    /// Steers the frames received on `sw_if` into policy `policy` (or,
    /// with `None`, stops).
    pub fn set_l2_steering(&mut self, sw_if: u32, policy: Option<u32>) {
        let i = sw_if as usize;
        if self.l2_steer.len() <= i {
            if policy.is_none() {
                return;
            }
            self.l2_steer.resize(i + 1, NONE);
        }
        self.l2_steer[i] = policy.unwrap_or(NONE);
        while self.l2_steer.last() == Some(&NONE) {
            self.l2_steer.pop();
        }
    }

    /// Replaces the HMAC keys.
    pub fn set_keys(&mut self, keys: Arc<HmacKeyTable>) {
        self.keys = keys;
    }
}

fn set<T>(v: &mut Vec<Option<T>>, index: u32, max: usize, x: Option<T>) -> Result<(), SrTableError> {
    let i = index as usize;
    if i >= max {
        return Err(SrTableError::IndexTooLarge(index));
    }
    if v.len() <= i {
        if x.is_none() {
            return Ok(());
        }
        v.resize_with(i + 1, || None);
    }
    v[i] = x;
    while matches!(v.last(), Some(None)) {
        v.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_by_index() {
        let mut t = SrTable::new();
        let s = LocalSid::new("fc00::1".parse().unwrap(), 0, Behavior::End);
        t.set_localsid(3, Some(s.clone())).unwrap();
        assert_eq!(t.localsid(3), Some(&s));
        assert_eq!(t.localsid(2), None);
        assert_eq!(t.localsids().map(|(i, _)| i).collect::<Vec<_>>(), vec![3]);
        assert_eq!(t.set_localsid(MAX_LOCALSIDS as u32, Some(s)), Err(SrTableError::IndexTooLarge(4096)));
        t.set_localsid(3, None).unwrap();
        assert_eq!(t.localsids().count(), 0);
        t.set_l2_steering(5, Some(1));
        assert_eq!((t.l2_policy(5), t.l2_policy(4), t.l2_policy(99)), (Some(1), None, None));
        t.set_l2_steering(5, None);
        assert_eq!(t.l2_steering().count(), 0);
        assert!(Behavior::EndDt4 { vrf: 0 }.decapsulates() && !Behavior::EndX { adj: 1 }.decapsulates());
        assert!(Behavior::EndAd.decapsulates() && !Behavior::EndAm.decapsulates() && Behavior::EndAm.is_proxy());
    }

    #[test]
    fn a_proxy_claims_its_inner_type_but_not_neighbor_discovery() {
        let mut t = SrTable::new();
        t.set_proxy_return(4, Some((7, ProxyClaim::Ipv6)));
        t.set_proxy_return(2, Some((8, ProxyClaim::Ipv4)));
        t.set_proxy_return(1, Some((9, ProxyClaim::Frames)));
        let mut v6 = [0u8; 48];
        v6[0] = 0x60;
        v6[6] = 17;
        v6[24] = 0x20;
        assert_eq!(t.proxy_claims(4, 0x86dd, &v6), Some(7));
        assert_eq!(t.proxy_claims(4, 0x0800, &v6), None);
        assert_eq!(t.proxy_claims(3, 0x86dd, &v6), None);
        let mut ns = v6;
        (ns[6], ns[40]) = (58, 135);
        assert_eq!(t.proxy_claims(4, 0x86dd, &ns), None, "neighbor solicitation");
        (ns[6], ns[40]) = (58, 128);
        assert_eq!(t.proxy_claims(4, 0x86dd, &ns), Some(7), "echo request");
        let mut mc = v6;
        mc[24] = 0xff;
        assert_eq!(t.proxy_claims(4, 0x86dd, &mc), None, "multicast");
        let mut v4 = [0u8; 20];
        (v4[0], v4[16]) = (0x45, 10);
        assert_eq!((t.proxy_claims(2, 0x0800, &v4), t.proxy_claims(2, 0x0806, &v4)), (Some(8), None));
        v4[16] = 255;
        assert_eq!(t.proxy_claims(2, 0x0800, &v4), None, "broadcast");
        assert_eq!(t.proxy_claims(1, 0x0806, &[]), Some(9));
        assert_eq!(t.proxy_returns().collect::<Vec<_>>(), vec![(1, 9), (2, 8), (4, 7)]);
        for i in [1, 2, 4] {
            t.set_proxy_return(i, None);
        }
        assert_eq!((t.proxy_returns().count(), t.proxy_return(4)), (0, None));
    }
}
