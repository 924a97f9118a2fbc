//! SR policies and steering (RFC 9256's data-plane view): a policy is a
//! binding SID and one or more weighted segment lists; a flow always takes
//! the same list and many flows spread over the lists in proportion to their
//! weights, through a power-of-two bucket table filled like VPP's load
//! balance objects. Steering maps (prefix or L2 interface to policy) are
//! plain tables the caller owns; the longest-prefix match lives elsewhere.
//!
//! Everything here is built on the control path; the per-packet part is
//! [`SrPolicy::select`], one multiply and one table read.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};
use std::collections::HashMap;

use crate::behavior::EncapTemplate;

/// Bucket count when the caller has no opinion.
pub const DEFAULT_BUCKETS: usize = 256;
/// Most buckets in one policy.
pub const MAX_BUCKETS: usize = 1 << 14;

/// Why a policy or a steering rule was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyError {
    /// No segment list, or every weight is 0.
    NoActiveList,
    /// More segment lists with a weight than buckets.
    TooManyLists,
    /// The bucket count is not a power of two in `1..=MAX_BUCKETS`.
    BadBucketCount,
    /// Another policy already has this binding SID.
    DuplicateBsid,
    /// No policy with this id.
    UnknownPolicy,
    /// A prefix length beyond 32 (IPv4) or 128 (IPv6).
    BadPrefixLength,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyError::NoActiveList => "no segment list with a nonzero weight",
            PolicyError::TooManyLists => "more weighted segment lists than buckets",
            PolicyError::BadBucketCount => "bucket count must be a power of two up to 16384",
            PolicyError::DuplicateBsid => "binding SID already used",
            PolicyError::UnknownPolicy => "no such policy",
            PolicyError::BadPrefixLength => "prefix length too long",
        })
    }
}

impl std::error::Error for PolicyError {}

/// One candidate path of a policy.
#[derive(Clone, Debug)]
pub struct SegmentList {
    /// Relative share of the flows (0: configured but unused).
    pub weight: u32,
    /// The headers pushed for this list.
    pub template: EncapTemplate,
}

/// An SR policy.
#[derive(Clone, Debug)]
pub struct SrPolicy {
    bsid: Ipv6Addr,
    lists: Vec<SegmentList>,
    buckets: Box<[u16]>,
    shift: u32,
}

impl SrPolicy {
    /// A policy with `buckets` buckets (a power of two; 64 to 1024 is the
    /// useful range, [`DEFAULT_BUCKETS`] when in doubt). Each list with a
    /// nonzero weight gets at least one bucket; the rest are shared out by
    /// largest remainder, so shares are within one bucket of exact.
    pub fn new(bsid: Ipv6Addr, lists: Vec<SegmentList>, buckets: usize) -> Result<Self, PolicyError> {
        if !buckets.is_power_of_two() || buckets > MAX_BUCKETS {
            return Err(PolicyError::BadBucketCount);
        }
        let counts = shares(&lists.iter().map(|l| l.weight).collect::<Vec<_>>(), buckets)?;
        let mut table = Vec::with_capacity(buckets);
        for (i, &n) in counts.iter().enumerate() {
            table.extend(std::iter::repeat_n(i as u16, n));
        }
        debug_assert_eq!(table.len(), buckets);
        Ok(SrPolicy { bsid, lists, buckets: table.into_boxed_slice(), shift: 32 - buckets.trailing_zeros() })
    }

    /// The binding SID.
    pub fn bsid(&self) -> Ipv6Addr {
        self.bsid
    }

    /// The segment lists, in configuration order.
    pub fn lists(&self) -> &[SegmentList] {
        &self.lists
    }

    /// The bucket table: bucket -> index into [`Self::lists`].
    pub fn buckets(&self) -> &[u16] {
        &self.buckets
    }

    /// Index of the list for a flow. The hash is spread with a
    /// multiplicative step and its top bits pick the bucket, so weak low
    /// bits in the caller's hash do not skew the split.
    #[inline]
    pub fn select_index(&self, flow_hash: u32) -> usize {
        let b = if self.shift == 32 { 0 } else { (flow_hash.wrapping_mul(0x9e37_79b1) >> self.shift) as usize };
        usize::from(self.buckets[b])
    }

    /// The template for a flow.
    #[inline]
    pub fn select(&self, flow_hash: u32) -> &EncapTemplate {
        &self.lists[self.select_index(flow_hash)].template
    }
}

/// Buckets per list: at least one per weighted list, the rest by largest
/// remainder of `weight * buckets / total`.
fn shares(weights: &[u32], buckets: usize) -> Result<Vec<usize>, PolicyError> {
    let active = weights.iter().filter(|&&w| w > 0).count();
    if active == 0 {
        return Err(PolicyError::NoActiveList);
    }
    if active > buckets || weights.len() > usize::from(u16::MAX) {
        return Err(PolicyError::TooManyLists);
    }
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let b = buckets as u64;
    let mut counts: Vec<usize> = weights.iter().map(|&w| (u64::from(w) * b / total) as usize).collect();
    let mut given: usize = counts.iter().sum();
    // Largest remainders first; ties to the lower index.
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(u64::from(weights[i]) * b % total), i));
    for &i in order.iter().cycle().take(buckets - given) {
        counts[i] += 1;
    }
    given = buckets;
    // Every weighted list gets a bucket, taken from the largest.
    for i in 0..weights.len() {
        if weights[i] > 0 && counts[i] == 0 {
            let big = (0..counts.len()).max_by_key(|&j| (counts[j], std::cmp::Reverse(j))).unwrap_or(0);
            counts[big] -= 1;
            counts[i] = 1;
        }
    }
    debug_assert_eq!(counts.iter().sum::<usize>(), given);
    Ok(counts)
}

/// A handle on a policy in a [`PolicyTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(pub u32);

/// Policies by id and by binding SID.
#[derive(Clone, Debug, Default)]
pub struct PolicyTable {
    slots: Vec<Option<SrPolicy>>,
    by_bsid: HashMap<Ipv6Addr, PolicyId>,
}

impl PolicyTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a policy; its binding SID must be new. Ids of removed policies
    /// are reused.
    pub fn insert(&mut self, policy: SrPolicy) -> Result<PolicyId, PolicyError> {
        if self.by_bsid.contains_key(&policy.bsid) {
            return Err(PolicyError::DuplicateBsid);
        }
        let bsid = policy.bsid;
        let id = match self.slots.iter().position(Option::is_none) {
            Some(i) => {
                self.slots[i] = Some(policy);
                PolicyId(i as u32)
            }
            None => {
                self.slots.push(Some(policy));
                PolicyId(self.slots.len() as u32 - 1)
            }
        };
        self.by_bsid.insert(bsid, id);
        Ok(id)
    }

    /// Replaces policy `id` (same or new binding SID).
    pub fn replace(&mut self, id: PolicyId, policy: SrPolicy) -> Result<(), PolicyError> {
        let old_bsid = self.get(id).ok_or(PolicyError::UnknownPolicy)?.bsid;
        if policy.bsid != old_bsid && self.by_bsid.contains_key(&policy.bsid) {
            return Err(PolicyError::DuplicateBsid);
        }
        self.by_bsid.remove(&old_bsid);
        self.by_bsid.insert(policy.bsid, id);
        self.slots[id.0 as usize] = Some(policy);
        Ok(())
    }

    /// Removes policy `id`.
    pub fn remove(&mut self, id: PolicyId) -> Option<SrPolicy> {
        let p = self.slots.get_mut(id.0 as usize)?.take()?;
        self.by_bsid.remove(&p.bsid);
        Some(p)
    }

    /// Policy `id`.
    #[inline]
    pub fn get(&self, id: PolicyId) -> Option<&SrPolicy> {
        self.slots.get(id.0 as usize)?.as_ref()
    }

    /// The policy bound to `bsid`.
    pub fn by_bsid(&self, bsid: &Ipv6Addr) -> Option<PolicyId> {
        self.by_bsid.get(bsid).copied()
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.by_bsid.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.by_bsid.is_empty()
    }
}

/// What steers traffic into a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SteerKey {
    /// IPv4 destinations in `prefix/len` of FIB `table` (host bits cleared).
    Ipv4 {
        /// FIB table.
        table: u32,
        /// Prefix.
        prefix: Ipv4Addr,
        /// Prefix length.
        len: u8,
    },
    /// IPv6 destinations in `prefix/len` of FIB `table` (host bits cleared).
    Ipv6 {
        /// FIB table.
        table: u32,
        /// Prefix.
        prefix: Ipv6Addr,
        /// Prefix length.
        len: u8,
    },
    /// Every frame received on this L2 interface (H.Encaps.L2).
    L2 {
        /// Interface.
        interface: u32,
    },
}

impl SteerKey {
    /// An IPv4 prefix key, host bits cleared.
    pub fn ipv4(table: u32, prefix: Ipv4Addr, len: u8) -> Result<Self, PolicyError> {
        if len > 32 {
            return Err(PolicyError::BadPrefixLength);
        }
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        Ok(SteerKey::Ipv4 { table, prefix: Ipv4Addr::from(u32::from(prefix) & mask), len })
    }

    /// An IPv6 prefix key, host bits cleared.
    pub fn ipv6(table: u32, prefix: Ipv6Addr, len: u8) -> Result<Self, PolicyError> {
        if len > 128 {
            return Err(PolicyError::BadPrefixLength);
        }
        let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
        Ok(SteerKey::Ipv6 { table, prefix: Ipv6Addr::from(u128::from(prefix) & mask), len })
    }
}

/// Steering rules. The caller installs the prefixes in its FIB (pointing at
/// the policy) and keeps the L2 map next to its interfaces; this table is
/// the source of truth for both.
#[derive(Clone, Debug, Default)]
pub struct Steering {
    rules: HashMap<SteerKey, PolicyId>,
}

impl Steering {
    /// No rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Steers `key` into `policy` (replacing an earlier rule for the key,
    /// which is returned). The policy must exist in `policies`.
    pub fn steer(
        &mut self,
        policies: &PolicyTable,
        key: SteerKey,
        policy: PolicyId,
    ) -> Result<Option<PolicyId>, PolicyError> {
        policies.get(policy).ok_or(PolicyError::UnknownPolicy)?;
        Ok(self.rules.insert(key, policy))
    }

    /// Removes the rule for `key`.
    pub fn unsteer(&mut self, key: &SteerKey) -> Option<PolicyId> {
        self.rules.remove(key)
    }

    /// The policy for `key`.
    pub fn get(&self, key: &SteerKey) -> Option<PolicyId> {
        self.rules.get(key).copied()
    }

    /// The policy L2 interface `interface` is steered into.
    pub fn l2(&self, interface: u32) -> Option<PolicyId> {
        self.get(&SteerKey::L2 { interface })
    }

    /// Removes every rule pointing at `policy` (before removing it).
    pub fn remove_policy(&mut self, policy: PolicyId) -> usize {
        let before = self.rules.len();
        self.rules.retain(|_, p| *p != policy);
        before - self.rules.len()
    }

    /// All rules, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&SteerKey, &PolicyId)> {
        self.rules.iter()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behavior::EncapParams;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn list(weight: u32, sid: &str) -> SegmentList {
        let segs = [a(sid)];
        SegmentList { weight, template: EncapTemplate::new(&EncapParams::new(a("2001:db8::1"), &segs)).unwrap() }
    }

    #[test]
    fn shares_are_exact_and_minimum_one() {
        assert_eq!(shares(&[1, 1], 64).unwrap(), vec![32, 32]);
        assert_eq!(shares(&[1, 2, 1], 64).unwrap(), vec![16, 32, 16]);
        assert_eq!(shares(&[1, 1, 1], 64).unwrap(), vec![22, 21, 21]);
        assert_eq!(shares(&[1000, 1, 0], 64).unwrap(), vec![63, 1, 0]);
        assert_eq!(shares(&[u32::MAX, u32::MAX], 1024).unwrap(), vec![512, 512]);
        assert_eq!(shares(&[0, 0], 64), Err(PolicyError::NoActiveList));
        assert_eq!(shares(&[1, 1, 1], 2), Err(PolicyError::TooManyLists));
        assert_eq!(shares(&[1], 1).unwrap(), vec![1]);
    }

    #[test]
    fn select_is_stable_and_proportional() {
        let p = SrPolicy::new(a("fc00:b::1"), vec![list(3, "fc00:1::"), list(1, "fc00:2::")], 256).unwrap();
        assert_eq!(p.buckets().len(), 256);
        let mut hits = [0usize; 2];
        for h in 0..100_000u32 {
            let i = p.select_index(h);
            assert_eq!(i, p.select_index(h));
            hits[i] += 1;
        }
        let share = hits[0] as f64 / 100_000.0;
        assert!((share - 0.75).abs() < 0.02, "share {share}");
        assert_eq!(p.select(7).dst(), p.lists()[p.select_index(7)].template.dst());
        let single = SrPolicy::new(a("fc00:b::2"), vec![list(1, "fc00:1::")], 1).unwrap();
        assert_eq!(single.select_index(u32::MAX), 0);
        assert_eq!(SrPolicy::new(a("::"), vec![list(1, "fc00::")], 100).unwrap_err(), PolicyError::BadBucketCount);
        assert_eq!(
            SrPolicy::new(a("::"), vec![list(1, "fc00::")], MAX_BUCKETS * 2).unwrap_err(),
            PolicyError::BadBucketCount
        );
    }

    #[test]
    fn tables_and_steering() {
        let mut t = PolicyTable::new();
        let p1 = t.insert(SrPolicy::new(a("fc00:b::1"), vec![list(1, "fc00:1::")], 64).unwrap()).unwrap();
        let dup = SrPolicy::new(a("fc00:b::1"), vec![list(1, "fc00:2::")], 64).unwrap();
        assert_eq!(t.insert(dup.clone()).unwrap_err(), PolicyError::DuplicateBsid);
        let p2 = t.insert(SrPolicy::new(a("fc00:b::2"), vec![list(1, "fc00:2::")], 64).unwrap()).unwrap();
        assert_eq!((t.len(), t.by_bsid(&a("fc00:b::2"))), (2, Some(p2)));
        assert_eq!(t.replace(p2, dup.clone()), Err(PolicyError::DuplicateBsid));
        t.replace(p1, dup).unwrap();
        assert_eq!(t.get(p1).unwrap().select(0).dst(), a("fc00:2::"));

        let mut s = Steering::new();
        let k4 = SteerKey::ipv4(0, "10.1.2.3".parse().unwrap(), 16).unwrap();
        assert_eq!(k4, SteerKey::Ipv4 { table: 0, prefix: "10.1.0.0".parse().unwrap(), len: 16 });
        let k6 = SteerKey::ipv6(1, a("2001:db8::ff"), 64).unwrap();
        assert_eq!(k6, SteerKey::Ipv6 { table: 1, prefix: a("2001:db8::"), len: 64 });
        assert_eq!(SteerKey::ipv4(0, "0.0.0.0".parse().unwrap(), 33), Err(PolicyError::BadPrefixLength));
        assert_eq!(SteerKey::ipv6(0, a("::"), 129), Err(PolicyError::BadPrefixLength));
        assert_eq!(SteerKey::ipv6(0, a("ffff::"), 0).unwrap(), SteerKey::Ipv6 { table: 0, prefix: a("::"), len: 0 });
        assert_eq!(s.steer(&t, k4, p1), Ok(None));
        assert_eq!(s.steer(&t, k4, p2), Ok(Some(p1)));
        s.steer(&t, k6, p2).unwrap();
        s.steer(&t, SteerKey::L2 { interface: 7 }, p1).unwrap();
        assert_eq!(s.steer(&t, k6, PolicyId(99)), Err(PolicyError::UnknownPolicy));
        assert_eq!((s.l2(7), s.l2(8), s.get(&k6), s.len()), (Some(p1), None, Some(p2), 3));
        assert_eq!(s.remove_policy(p2), 2);
        assert_eq!(s.iter().count(), 1);
        assert_eq!(s.unsteer(&SteerKey::L2 { interface: 7 }), Some(p1));
        assert!(s.is_empty());
        assert!(t.remove(p1).is_some() && t.remove(p1).is_none());
        let p3 = t.insert(SrPolicy::new(a("fc00:b::3"), vec![list(1, "fc00:3::")], 64).unwrap()).unwrap();
        assert_eq!(p3, p1, "ids are reused");
        assert!(!t.is_empty());
    }
}
