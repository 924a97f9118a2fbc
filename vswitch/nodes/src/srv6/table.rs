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
use vswitch_srv6::behavior::{EndOpts, Flavors, HmacCheck, UpperSet};
use vswitch_srv6::hmac::{HmacKeyTable, HmacPolicy};
use vswitch_srv6::policy::SrPolicy;

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
        )
    }
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
    }
}
