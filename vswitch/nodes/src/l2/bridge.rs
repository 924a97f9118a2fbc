//! A bridge domain: its settings, its members, and the tables its nodes
//! share across workers and across configuration snapshots (the MAC table
//! and the ARP-termination table).
//!
//! A new snapshot that changes a domain's settings or members builds its
//! [`BridgeDomain`] with [`BridgeDomain::reconfigure`], which keeps the
//! tables: learned MACs survive configuration changes, as in VPP.

use super::arp_term::{ArpTable, DEFAULT_ARP_LEARN_LIMIT};
use super::mac_table::{L2Clock, MacTable};
use crate::tables::{BridgeDomainConfig, SwIf, Tables};
use std::sync::Arc;
use vswitch_wire::ethertype;

/// A member interface of a bridge domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BdMember {
    /// The interface.
    pub sw_if: SwIf,
    /// Its split-horizon group (0: none).
    pub shg: u8,
}

/// A bridge domain.
#[derive(Debug)]
pub struct BridgeDomain {
    /// Settings.
    pub config: BridgeDomainConfig,
    /// Members, in flooding order (the BVI included when there is one).
    pub members: Vec<BdMember>,
    /// MAC → interface (VPP's l2fib for this domain).
    pub macs: Arc<MacTable>,
    /// IPv4 → MAC, for ARP termination.
    pub arp: Arc<ArpTable>,
}

impl BridgeDomain {
    /// A bridge domain with these settings and members, and empty tables
    /// on the TSC clock.
    pub fn new(config: BridgeDomainConfig, members: Vec<BdMember>) -> Self {
        Self::with_clock(config, members, L2Clock::Tsc)
    }

    /// A bridge domain whose MAC table ages by `clock`.
    pub fn with_clock(config: BridgeDomainConfig, members: Vec<BdMember>, clock: L2Clock) -> Self {
        let macs = Arc::new(MacTable::with_clock(config.mac_limit, config.mac_age_secs, clock));
        let arp = Arc::new(ArpTable::new(DEFAULT_ARP_LEARN_LIMIT));
        BridgeDomain { config, members, macs, arp }
    }

    /// The same domain with new settings or members, keeping its tables
    /// (the new MAC limit and age apply to them). MACs of interfaces that
    /// left the domain, static ones included, are removed.
    pub fn reconfigure(&self, config: BridgeDomainConfig, members: Vec<BdMember>) -> Self {
        self.macs.set_limit(config.mac_limit);
        self.macs.set_age_secs(config.mac_age_secs);
        for gone in self.members.iter().filter(|m| !members.iter().any(|n| n.sw_if == m.sw_if)) {
            self.macs.remove_interface(gone.sw_if);
        }
        BridgeDomain { config, members, macs: Arc::clone(&self.macs), arp: Arc::clone(&self.arp) }
    }

    /// A member by interface.
    pub fn member(&self, sw_if: SwIf) -> Option<&BdMember> {
        self.members.iter().find(|m| m.sw_if == sw_if)
    }
}

/// The bridge domain of the previous packet and its clock's now: a node
/// looks a domain up once per run of packets of that domain (a vector is
/// mostly one domain), not once per packet.
pub(crate) struct DomainCache<'a> {
    tables: &'a Tables,
    vector_secs: u32,
    last: Option<(u16, &'a BridgeDomain, u32)>,
}

impl<'a> DomainCache<'a> {
    /// A cache for one vector whose TSC seconds are `vector_secs`.
    #[inline]
    pub fn new(tables: &'a Tables, vector_secs: u32) -> Self {
        DomainCache { tables, vector_secs, last: None }
    }

    /// Domain `bd` and its now, in seconds.
    #[inline(always)]
    pub fn get(&mut self, bd: u16) -> Option<(&'a BridgeDomain, u32)> {
        match self.last {
            Some((id, d, now)) if id == bd => Some((d, now)),
            _ => {
                let d: &'a BridgeDomain = self.tables.bridge_domain(bd)?;
                let now = d.macs.clock().at(self.vector_secs);
                self.last = Some((bd, d, now));
                Some((d, now))
            }
        }
    }
}

/// The EtherType of an L2 frame behind up to two VLAN tags, and the offset
/// of what follows it; `None` for a frame too short to say.
#[inline]
pub(crate) fn inner_ethertype(frame: &[u8]) -> Option<(u16, usize)> {
    let mut at = 12;
    for _ in 0..3 {
        let t = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
        if !ethertype::is_vlan(t) {
            return Some((t, at + 2));
        }
        at += 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use vswitch_wire::MacAddr;

    #[test]
    fn reconfigure_keeps_tables_and_forgets_departed_members() {
        let bd = BridgeDomain::new(
            BridgeDomainConfig::new(1),
            vec![BdMember { sw_if: 1, shg: 0 }, BdMember { sw_if: 2, shg: 0 }],
        );
        let (a, b) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        bd.macs.learn(a, 1, 0);
        bd.macs.learn(b, 2, 0);
        bd.macs.add_static(MacAddr([2, 0, 0, 0, 0, 3]), 2).unwrap();
        let mut config = BridgeDomainConfig::new(1);
        config.mac_limit = 7;
        config.mac_age_secs = 9;
        let next = bd.reconfigure(config, vec![BdMember { sw_if: 1, shg: 0 }]);
        assert!(Arc::ptr_eq(&bd.macs, &next.macs) && Arc::ptr_eq(&bd.arp, &next.arp));
        assert_eq!((next.macs.limit(), next.macs.age_secs()), (7, 9));
        assert_eq!(next.macs.len(), 1, "interface 2's MACs, static too, are gone");
        assert!(next.macs.lookup(a, 0).is_some());
        assert_eq!(next.member(1), Some(&BdMember { sw_if: 1, shg: 0 }));
        assert_eq!(next.member(2), None);
    }

    #[test]
    fn ethertype_behind_tags() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2, 0x08, 0x06, 0, 1]);
        assert_eq!(inner_ethertype(&f), Some((0x0806, 22)));
        assert_eq!(inner_ethertype(&f[..21]), None);
        let mut three = vec![0u8; 12];
        three.extend_from_slice(&[0x81, 0, 0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3, 0x08, 0x00]);
        assert_eq!(inner_ethertype(&three), None, "more than two tags");
        let mut plain = vec![0u8; 12];
        plain.extend_from_slice(&[0x08, 0x00]);
        assert_eq!(inner_ethertype(&plain), Some((0x0800, 14)));
    }
}
