//! Address arithmetic: ranges, range sets, blocks and the addresses of a
//! block that may be handed out.
//!
//! Addresses of both families are handled as `u128`. A range set is a list
//! of ranges of one family; an attachment gets one address per range set.
//! Each range's subnet is cut into blocks of the configured prefix length
//! (or is one block when the subnet is smaller), aligned within the subnet;
//! a block's usable addresses are those inside a range of its set, minus the
//! subnet's network address (and IPv4 broadcast), the range's gateway and
//! every `exclude` prefix.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The most addresses a block may have (blocks are enumerated in memory).
pub const MAX_BLOCK_ADDRESSES: u32 = 1 << 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

pub fn from_u128(v: u128, family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// `addr/prefix` with host bits cleared.
pub fn net(addr: IpAddr, prefix: u8) -> IpNet {
    match addr {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, prefix).expect("valid prefix").trunc()),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, prefix).expect("valid prefix").trunc()),
    }
}

/// First and last address of a prefix, as numbers.
pub fn bounds(n: &IpNet) -> (u128, u128) {
    (to_u128(n.network()), to_u128(n.broadcast()))
}

/// One range: addresses `start..=end` of `subnet`, answered with `gateway`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub subnet: IpNet,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: Option<IpAddr>,
}

impl Range {
    pub fn family(&self) -> Family {
        Family::of(self.subnet.addr())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        Family::of(ip) == self.family() && (to_u128(self.start)..=to_u128(self.end)).contains(&to_u128(ip))
    }

    fn overlaps(&self, other: &Range) -> bool {
        self.family() == other.family()
            && to_u128(self.start) <= to_u128(other.end)
            && to_u128(other.start) <= to_u128(self.end)
    }

    /// `10.1.0.0/24 [10.1.0.10-10.1.0.200]`.
    pub fn describe(&self) -> String {
        format!("{} [{}-{}]", self.subnet, self.start, self.end)
    }
}

/// The ranges one address per attachment is taken from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeSet {
    pub index: usize,
    pub family: Family,
    pub ranges: Vec<Range>,
    /// Prefix length of this set's blocks.
    pub block_prefix: u8,
}

/// The whole pool of one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub sets: Vec<RangeSet>,
    pub exclude: Vec<IpNet>,
}

impl RangeSet {
    /// Block prefix used inside `range` (never shorter than its subnet).
    fn prefix_in(&self, range: &Range) -> u8 {
        self.block_prefix.max(range.subnet.prefix_len())
    }

    fn blocks_in(&self, range: &Range) -> (u128, u128, u32) {
        let p = self.prefix_in(range);
        let shift = (self.family.bits() - p) as u32;
        let first = to_u128(range.start) >> shift;
        let last = to_u128(range.end) >> shift;
        (first, last, shift)
    }

    /// Number of blocks of this set (a block shared by two ranges counts twice).
    pub fn block_count(&self) -> u128 {
        self.ranges
            .iter()
            .map(|r| {
                let (f, l, _) = self.blocks_in(r);
                l - f + 1
            })
            .fold(0u128, |a, b| a.saturating_add(b))
    }

    /// The `i`-th block (`i < block_count()`).
    pub fn block_at(&self, mut i: u128) -> IpNet {
        for r in &self.ranges {
            let (f, l, shift) = self.blocks_in(r);
            let n = l - f + 1;
            if i < n {
                let addr = (f + i) << shift;
                return net(from_u128(addr, self.family), self.prefix_in(r));
            }
            i -= n;
        }
        panic!("block index out of range");
    }

    /// The block an address of this set lies in.
    pub fn block_of(&self, ip: IpAddr) -> Option<IpNet> {
        let r = self.ranges.iter().find(|r| r.contains(ip))?;
        Some(net(ip, self.prefix_in(r)))
    }

    /// Whether `block` is one of this set's blocks.
    pub fn has_block(&self, block: &IpNet) -> bool {
        Family::of(block.addr()) == self.family
            && self.ranges.iter().any(|r| {
                self.prefix_in(r) == block.prefix_len() && r.subnet.contains(block) && {
                    let (bs, be) = bounds(block);
                    bs <= to_u128(r.end) && to_u128(r.start) <= be
                }
            })
    }

    /// The range an address of this set lies in.
    pub fn range_of(&self, ip: IpAddr) -> Option<&Range> {
        self.ranges.iter().find(|r| r.contains(ip))
    }

    /// `10.1.0.0/24 [10.1.0.1-10.1.0.254], ...`, for messages.
    pub fn describe(&self) -> String {
        self.ranges.iter().map(Range::describe).collect::<Vec<_>>().join(", ")
    }
}

impl Pool {
    /// Whether `ip` may be handed out by `range` (not reserved, not excluded).
    pub fn usable_in_range(&self, range: &Range, ip: IpAddr) -> bool {
        if !range.contains(ip) || Some(ip) == range.gateway {
            return false;
        }
        let v = to_u128(ip);
        let (net_addr, bcast) = bounds(&range.subnet);
        if v == net_addr || (range.family() == Family::V4 && v == bcast) {
            return false;
        }
        !self.exclude.iter().any(|x| x.contains(&ip))
    }

    /// Whether `ip` may be handed out by set `set`.
    pub fn usable(&self, set: &RangeSet, ip: IpAddr) -> bool {
        set.range_of(ip).is_some_and(|r| self.usable_in_range(r, ip))
    }

    /// Every usable address of `block` in set `set`, ascending.
    pub fn usable_in_block(&self, set: &RangeSet, block: &IpNet) -> Vec<IpAddr> {
        let (bs, be) = bounds(block);
        let mut out = Vec::new();
        for r in &set.ranges {
            let lo = bs.max(to_u128(r.start));
            let hi = be.min(to_u128(r.end));
            if lo > hi || !r.subnet.contains(block) {
                continue;
            }
            for v in lo..=hi {
                let ip = from_u128(v, set.family);
                if self.usable_in_range(r, ip) {
                    out.push(ip);
                }
            }
        }
        out.sort_by_key(|ip| to_u128(*ip));
        out.dedup();
        out
    }

    /// The set an address belongs to.
    pub fn set_of(&self, ip: IpAddr) -> Option<&RangeSet> {
        self.sets.iter().find(|s| s.range_of(ip).is_some())
    }

    /// The set a block belongs to.
    pub fn set_of_block(&self, block: &IpNet) -> Option<&RangeSet> {
        self.sets.iter().find(|s| s.has_block(block))
    }

    /// Number of usable addresses in set `set` (saturating; IPv6 sets are huge).
    pub fn usable_count(&self, set: &RangeSet) -> u128 {
        let mut total = 0u128;
        for r in &set.ranges {
            let (s, e) = (to_u128(r.start), to_u128(r.end));
            // Intervals not to hand out: excludes, network/broadcast, gateway.
            let mut holes: Vec<(u128, u128)> =
                self.exclude.iter().filter(|x| Family::of(x.addr()) == r.family()).map(bounds).collect();
            let (n, b) = bounds(&r.subnet);
            holes.push((n, n));
            if r.family() == Family::V4 {
                holes.push((b, b));
            }
            if let Some(g) = r.gateway {
                holes.push((to_u128(g), to_u128(g)));
            }
            let holes = merge(holes.into_iter().filter_map(|(a, z)| clip(a, z, s, e)).collect());
            let removed: u128 = holes.iter().map(|(a, z)| z - a + 1).sum();
            total = total.saturating_add((e - s + 1) - removed);
        }
        total
    }

    /// Checks that no two ranges overlap and no block is shared by two sets.
    pub fn check_disjoint(&self) -> Result<(), String> {
        let all: Vec<(usize, &Range)> =
            self.sets.iter().flat_map(|s| s.ranges.iter().map(move |r| (s.index, r))).collect();
        for (i, (si, a)) in all.iter().enumerate() {
            for (sj, b) in &all[i + 1..] {
                if a.overlaps(b) {
                    return Err(format!("ranges {} and {} overlap", a.describe(), b.describe()));
                }
                if si != sj && a.family() == b.family() {
                    let sa = &self.sets[*si];
                    let sb = &self.sets[*sj];
                    let ba = (sa.block_of(a.start).unwrap(), sa.block_of(a.end).unwrap());
                    let bb = (sb.block_of(b.start).unwrap(), sb.block_of(b.end).unwrap());
                    let (a0, a1) = (bounds(&ba.0).0, bounds(&ba.1).1);
                    let (b0, b1) = (bounds(&bb.0).0, bounds(&bb.1).1);
                    if a0 <= b1 && b0 <= a1 {
                        return Err(format!(
                            "ranges {} and {} are in different range sets but share address blocks",
                            a.describe(),
                            b.describe()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn clip(a: u128, z: u128, s: u128, e: u128) -> Option<(u128, u128)> {
    let (a, z) = (a.max(s), z.min(e));
    (a <= z).then_some((a, z))
}

fn merge(mut v: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    v.sort();
    let mut out: Vec<(u128, u128)> = Vec::new();
    for (a, z) in v {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(z),
            _ => out.push((a, z)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn range(subnet: &str, start: &str, end: &str, gw: Option<&str>) -> Range {
        Range { subnet: subnet.parse().unwrap(), start: ip(start), end: ip(end), gateway: gw.map(ip) }
    }

    #[test]
    fn v4_blocks_and_usable() {
        let set = RangeSet {
            index: 0,
            family: Family::V4,
            ranges: vec![range("10.0.0.0/24", "10.0.0.1", "10.0.0.254", Some("10.0.0.1"))],
            block_prefix: 28,
        };
        let pool = Pool { sets: vec![set.clone()], exclude: vec!["10.0.0.16/30".parse().unwrap()] };
        assert_eq!(set.block_count(), 16);
        assert_eq!(set.block_at(0).to_string(), "10.0.0.0/28");
        assert_eq!(set.block_at(15).to_string(), "10.0.0.240/28");
        assert_eq!(set.block_of(ip("10.0.0.77")).unwrap().to_string(), "10.0.0.64/28");
        assert!(set.has_block(&"10.0.0.64/28".parse().unwrap()));
        assert!(!set.has_block(&"10.0.0.64/27".parse().unwrap()));
        assert!(!set.has_block(&"10.0.1.0/28".parse().unwrap()));
        // first block: .0 network and .1 gateway are not usable
        let b0 = pool.usable_in_block(&set, &set.block_at(0));
        assert_eq!(b0.first(), Some(&ip("10.0.0.2")));
        assert_eq!(b0.len(), 14);
        // excluded .16-.19
        assert_eq!(pool.usable_in_block(&set, &set.block_at(1)).len(), 12);
        // last block: no broadcast
        let last = pool.usable_in_block(&set, &set.block_at(15));
        assert_eq!(last.last(), Some(&ip("10.0.0.254")));
        assert_eq!(last.len(), 15);
        // 254 hosts - gateway - 4 excluded
        assert_eq!(pool.usable_count(&set), 249);
        let sum: usize = (0..16).map(|i| pool.usable_in_block(&set, &set.block_at(i)).len()).sum();
        assert_eq!(sum as u128, pool.usable_count(&set));
    }

    #[test]
    fn partial_ranges_and_small_subnets() {
        let set = RangeSet {
            index: 0,
            family: Family::V4,
            ranges: vec![
                range("10.1.0.0/24", "10.1.0.100", "10.1.0.140", None),
                range("192.168.7.0/29", "192.168.7.1", "192.168.7.6", Some("192.168.7.1")),
            ],
            block_prefix: 26,
        };
        let pool = Pool { sets: vec![set.clone()], exclude: vec![] };
        // .100-.140 spans blocks .64/26 and .128/26; the /29 is one block
        assert_eq!(set.block_count(), 3);
        assert_eq!(set.block_at(2).to_string(), "192.168.7.0/29");
        assert_eq!(pool.usable_in_block(&set, &set.block_at(0)).len(), 28);
        assert_eq!(pool.usable_in_block(&set, &set.block_at(1)).len(), 13);
        assert_eq!(pool.usable_in_block(&set, &set.block_at(2)).len(), 5);
        assert_eq!(pool.usable_count(&set), 41 + 5);
    }

    #[test]
    fn v6_blocks() {
        let set = RangeSet {
            index: 1,
            family: Family::V6,
            ranges: vec![range("fd00::/64", "fd00::1", "fd00::ffff:ffff:ffff:ffff", None)],
            block_prefix: 122,
        };
        let pool = Pool { sets: vec![set.clone()], exclude: vec![] };
        assert_eq!(set.block_count(), 1u128 << 58);
        assert_eq!(set.block_at(1).to_string(), "fd00::40/122");
        let b0 = pool.usable_in_block(&set, &set.block_at(0));
        assert_eq!(b0.len(), 63);
        assert_eq!(b0[0], ip("fd00::1"));
        // the last address is usable in IPv6
        let last = set.block_at((1u128 << 58) - 1);
        assert_eq!(pool.usable_in_block(&set, &last).len(), 64);
        assert_eq!(pool.usable_count(&set), (1u128 << 64) - 1);
    }

    #[test]
    fn overlap_checks() {
        let a = RangeSet {
            index: 0,
            family: Family::V4,
            ranges: vec![range("10.0.0.0/24", "10.0.0.1", "10.0.0.100", None)],
            block_prefix: 26,
        };
        let mut b = a.clone();
        b.index = 1;
        b.ranges = vec![range("10.0.0.0/24", "10.0.0.101", "10.0.0.200", None)];
        let p = Pool { sets: vec![a.clone(), b.clone()], exclude: vec![] };
        assert!(p.check_disjoint().unwrap_err().contains("share address blocks"));
        b.ranges = vec![range("10.0.0.0/24", "10.0.0.50", "10.0.0.200", None)];
        let p = Pool { sets: vec![a.clone(), b.clone()], exclude: vec![] };
        assert!(p.check_disjoint().unwrap_err().contains("overlap"));
        b.ranges = vec![range("10.0.1.0/24", "10.0.1.1", "10.0.1.200", None)];
        assert!(Pool { sets: vec![a, b], exclude: vec![] }.check_disjoint().is_ok());
    }
}
