//! IPv6 forwarding and Neighbor Discovery.
//!
//! The path of a routed packet:
//!
//! ```text
//! ethernet-input → ip6-input → [ip6-unicast features] → ip6-lookup → ip6-rewrite → interface-output
//!                      │                                   │  │  │        │
//!                      └─ multicast for us ─► ip6-local ◄──┘  │  │        └─► ip6-icmp-error ─► ip6-lookup
//!                                              │  └─ NS/NA ─► ip6-nd       │  (hop limit, too big)
//!                                              └─ echo reply ─► ip6-lookup └─ glean ─► ip6-discover
//! ```
//!
//! Each node is one file. The FIB, adjacencies, the neighbor table, the
//! punt node and the ICMP rate limiter are shared with IPv4 and live in
//! [`crate::ip`].

pub mod discover;
pub mod icmp_error;
pub mod input;
pub mod local;
pub mod lookup;
pub mod nd;
pub mod rewrite;

pub use discover::Ip6Discover;
pub use icmp_error::Ip6IcmpError;
pub use input::Ip6Input;
pub use local::Ip6Local;
pub use lookup::Ip6Lookup;
pub use nd::Ip6Nd;
pub use rewrite::Ip6Rewrite;

use std::net::Ipv6Addr;
use vswitch_packet::Meta;

/// The feature arc between ip6-input and ip6-lookup.
pub const UNICAST_ARC: &str = "ip6-unicast";

/// Offset of the source address in the IPv6 header.
pub(crate) const SRC_AT: usize = 8;
/// Offset of the destination address in the IPv6 header.
pub(crate) const DST_AT: usize = 24;
/// Hop limit of packets this router originates (echo replies).
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// The IPv6 address at `at` in `data` (which must hold 16 bytes there).
#[inline(always)]
pub(crate) fn addr_at(data: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&data[at..at + 16]);
    Ipv6Addr::from(o)
}

/// Whether `group` is the solicited-node multicast group of `addr`.
#[inline]
pub(crate) fn is_solicited_node_for(group: &Ipv6Addr, addr: &Ipv6Addr) -> bool {
    let (g, a) = (group.octets(), addr.octets());
    g[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff] && g[13..] == a[13..]
}

/// The address an interface should send from to reach `dst`: one of
/// `addrs` on the same link scope as `dst` when there is one (link-local
/// for a link-local destination, otherwise the longest match with `dst`),
/// else the first address.
pub(crate) fn source_for(addrs: &[(Ipv6Addr, u8)], dst: &Ipv6Addr) -> Option<Ipv6Addr> {
    let dst_ll = dst.is_unicast_link_local() || (dst.is_multicast() && dst.octets()[1] & 0x0f == 2);
    let d = u128::from(*dst);
    addrs.iter().map(|(a, _)| *a).max_by_key(|a| {
        let same_scope = a.is_unicast_link_local() == dst_ll;
        (same_scope, (u128::from(*a) ^ d).leading_zeros())
    })
}

/// ICMPv6 errors ip6-icmp-error sends, and their parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmp6Error {
    /// Destination unreachable, code 0: no route.
    NoRoute,
    /// Destination unreachable, code 1: administratively prohibited.
    AdminProhibited,
    /// Destination unreachable, code 3: address unreachable (neighbor
    /// discovery failed).
    AddressUnreachable,
    /// Destination unreachable, code 4: port unreachable.
    PortUnreachable,
    /// Packet too big, with the MTU of the next link.
    PacketTooBig(u32),
    /// Time exceeded, code 0: hop limit exceeded in transit.
    HopLimitExceeded,
    /// Parameter problem with its code and pointer.
    ParameterProblem(u8, u32),
}

impl Icmp6Error {
    /// ICMPv6 type, code and the 32-bit parameter word.
    pub fn type_code_param(self) -> (u8, u8, u32) {
        use vswitch_wire::icmpv6::icmpv6_type::*;
        match self {
            Icmp6Error::NoRoute => (DEST_UNREACHABLE, 0, 0),
            Icmp6Error::AdminProhibited => (DEST_UNREACHABLE, 1, 0),
            Icmp6Error::AddressUnreachable => (DEST_UNREACHABLE, 3, 0),
            Icmp6Error::PortUnreachable => (DEST_UNREACHABLE, 4, 0),
            Icmp6Error::PacketTooBig(mtu) => (PACKET_TOO_BIG, 0, mtu),
            Icmp6Error::HopLimitExceeded => (TIME_EXCEEDED, 0, 0),
            Icmp6Error::ParameterProblem(code, ptr) => (PARAM_PROBLEM, code, ptr),
        }
    }

    /// Stores the error in the packet's scratch words for ip6-icmp-error
    /// (the node that hands the packet over calls this).
    #[inline]
    pub fn store(self, m: &mut Meta) {
        let (t, c, param) = self.type_code_param();
        m.opaque[0] = ICMP_ERROR_TAG | u32::from(t) << 8 | u32::from(c);
        m.opaque[1] = param;
    }

    /// The error stored by [`store`](Self::store), if any.
    #[inline]
    pub fn load(m: &Meta) -> Option<Icmp6Error> {
        use vswitch_wire::icmpv6::icmpv6_type::*;
        let w = m.opaque[0];
        if w & 0xffff_0000 != ICMP_ERROR_TAG {
            return None;
        }
        let (t, c, param) = ((w >> 8) as u8, w as u8, m.opaque[1]);
        Some(match (t, c) {
            (DEST_UNREACHABLE, 0) => Icmp6Error::NoRoute,
            (DEST_UNREACHABLE, 1) => Icmp6Error::AdminProhibited,
            (DEST_UNREACHABLE, 3) => Icmp6Error::AddressUnreachable,
            (DEST_UNREACHABLE, 4) => Icmp6Error::PortUnreachable,
            (PACKET_TOO_BIG, 0) => Icmp6Error::PacketTooBig(param),
            (TIME_EXCEEDED, 0) => Icmp6Error::HopLimitExceeded,
            (PARAM_PROBLEM, c) => Icmp6Error::ParameterProblem(c, param),
            _ => return None,
        })
    }
}

/// Marks `opaque[0]` as holding an ICMPv6 error (high half).
const ICMP_ERROR_TAG: u32 = 0x1c6e_0000;

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn solicited_node_membership() {
        assert!(is_solicited_node_for(&a("ff02::1:ff00:1"), &a("2001:db8::1")));
        assert!(is_solicited_node_for(&a("ff02::1:ffab:cdef"), &a("fe80::12ab:cdef")));
        assert!(!is_solicited_node_for(&a("ff02::1:ff00:2"), &a("2001:db8::1")));
        assert!(!is_solicited_node_for(&a("ff05::1:ff00:1"), &a("2001:db8::1")));
    }

    #[test]
    fn source_selection() {
        let addrs = [(a("fe80::1"), 64), (a("2001:db8::1"), 64), (a("2001:db8:5::1"), 64)];
        assert_eq!(source_for(&addrs, &a("fe80::99")), Some(a("fe80::1")));
        assert_eq!(source_for(&addrs, &a("ff02::1:ff00:99")), Some(a("fe80::1")));
        assert_eq!(source_for(&addrs, &a("2001:db8::9")), Some(a("2001:db8::1")));
        assert_eq!(source_for(&addrs, &a("2001:db8:5::9")), Some(a("2001:db8:5::1")));
        assert_eq!(source_for(&addrs[1..2], &a("fe80::9")), Some(a("2001:db8::1")));
        assert_eq!(source_for(&[], &a("fe80::9")), None);
    }

    #[test]
    fn error_round_trips_through_meta() {
        let all = [
            Icmp6Error::NoRoute,
            Icmp6Error::AdminProhibited,
            Icmp6Error::AddressUnreachable,
            Icmp6Error::PortUnreachable,
            Icmp6Error::PacketTooBig(1400),
            Icmp6Error::HopLimitExceeded,
            Icmp6Error::ParameterProblem(1, 40),
        ];
        for e in all {
            let mut m = Meta::default();
            e.store(&mut m);
            assert_eq!(Icmp6Error::load(&m), Some(e));
        }
        assert_eq!(Icmp6Error::load(&Meta::default()), None);
    }
}
