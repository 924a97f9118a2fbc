//! IPv6 Neighbor Discovery (RFC 4861): message views over an ICMPv6
//! buffer, the option walker, and emitters for NS/NA.
//!
//! These views check the ICMPv6 type and code only; the hop-limit-255 rule
//! belongs to the IPv6 layer and is left to the caller.

use core::fmt;
use core::net::Ipv6Addr;

use crate::eth::MacAddr;
use crate::field::{read_array, read_u16, read_u32, write_u16, write_u32};
use crate::icmpv6::{fill_icmpv6_checksum, icmpv6_checksum_sum, icmpv6_type};
use crate::{Error, Result};

/// Neighbor Advertisement flag bits (byte 4 of the message).
pub mod ndp_flags {
    /// Sender is a router.
    pub const ROUTER: u8 = 0x80;
    /// Sent in response to a solicitation.
    pub const SOLICITED: u8 = 0x40;
    /// Override an existing cache entry.
    pub const OVERRIDE: u8 = 0x20;
}

/// NDP option types.
pub mod ndp_option {
    /// Source link-layer address.
    pub const SOURCE_LL: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LL: u8 = 2;
    /// Prefix information.
    pub const PREFIX_INFO: u8 = 3;
    /// Redirected header.
    pub const REDIRECTED_HEADER: u8 = 4;
    /// MTU.
    pub const MTU: u8 = 5;
}

/// The solicited-node multicast group of `addr`: ff02::1:ffXX:XXXX with the
/// low 24 bits of `addr` (RFC 4291 section 2.7.1).
pub fn solicited_node(addr: &Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15]])
}

/// One parsed NDP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpOption<'a> {
    /// Source link-layer address (Ethernet-sized, length 1).
    SourceLinkLayer(MacAddr),
    /// Target link-layer address (Ethernet-sized, length 1).
    TargetLinkLayer(MacAddr),
    /// Link MTU.
    Mtu(u32),
    /// Prefix information (router advertisements).
    PrefixInfo {
        /// Prefix length in bits.
        prefix_len: u8,
        /// L flag: the prefix is on-link.
        on_link: bool,
        /// A flag: usable for address autoconfiguration.
        autonomous: bool,
        /// Valid lifetime in seconds.
        valid_lifetime: u32,
        /// Preferred lifetime in seconds.
        preferred_lifetime: u32,
        /// The prefix.
        prefix: Ipv6Addr,
    },
    /// Any other option (or a link-layer option of non-Ethernet length):
    /// `data` excludes the type and length bytes.
    Other {
        /// Option type.
        kind: u8,
        /// Option body.
        data: &'a [u8],
    },
}

/// Iterator over NDP options. A zero length, a length past the end, or a
/// wrong length for MTU/prefix-information yields `Err(Malformed)`, after
/// which the iterator is done (RFC 4861 says to drop such a packet).
#[derive(Debug, Clone)]
pub struct NdpOptionIter<'a> {
    data: &'a [u8],
}

impl<'a> NdpOptionIter<'a> {
    /// Walks the option area of an NDP message.
    #[inline]
    pub fn new(options: &'a [u8]) -> Self {
        NdpOptionIter { data: options }
    }

    fn parse(kind: u8, opt: &'a [u8]) -> Result<NdpOption<'a>> {
        let len = opt.len();
        Ok(match kind {
            ndp_option::SOURCE_LL if len == 8 => NdpOption::SourceLinkLayer(MacAddr(read_array(opt, 2))),
            ndp_option::TARGET_LL if len == 8 => NdpOption::TargetLinkLayer(MacAddr(read_array(opt, 2))),
            ndp_option::MTU if len == 8 => NdpOption::Mtu(read_u32(opt, 4)),
            ndp_option::PREFIX_INFO if len == 32 => NdpOption::PrefixInfo {
                prefix_len: opt[2],
                on_link: opt[3] & 0x80 != 0,
                autonomous: opt[3] & 0x40 != 0,
                valid_lifetime: read_u32(opt, 4),
                preferred_lifetime: read_u32(opt, 8),
                prefix: Ipv6Addr::from(read_array::<16>(opt, 16)),
            },
            ndp_option::MTU | ndp_option::PREFIX_INFO => return Err(Error::Malformed),
            _ => NdpOption::Other { kind, data: &opt[2..] },
        })
    }
}

impl<'a> Iterator for NdpOptionIter<'a> {
    type Item = Result<NdpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        // The length byte counts 8-octet units, type and length included.
        let len = self.data.get(1).map_or(0, |&l| usize::from(l) * 8);
        if len == 0 || len > self.data.len() {
            self.data = &[];
            return Some(Err(Error::Malformed));
        }
        let (opt, rest) = self.data.split_at(len);
        self.data = rest;
        let r = Self::parse(opt[0], opt);
        if r.is_err() {
            self.data = &[];
        }
        Some(r)
    }
}

impl core::iter::FusedIterator for NdpOptionIter<'_> {}

/// Writes an Ethernet link-layer address option (8 bytes) at `buf[0..8]`.
fn write_ll_option(buf: &mut [u8], kind: u8, mac: MacAddr) {
    buf[0] = kind;
    buf[1] = 1;
    buf[2..8].copy_from_slice(&mac.0);
}

/// Generates a view type for one NDP message: constructors that check
/// length, type and code, plus the option area and checksum helpers.
macro_rules! ndp_view {
    ($(#[$doc:meta])* $name:ident, $msg_type:expr, $header_len:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Length of the fixed part, before the options.
            pub const HEADER_LEN: usize = $header_len;

            /// Wraps `buffer` without checking; getters panic if it is
            /// shorter than [`Self::HEADER_LEN`].
            #[inline]
            pub const fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// Wraps `buffer` after [`Self::check_len`]; `Malformed` if the
            /// ICMPv6 type or code is not this message's.
            #[inline]
            pub fn new_checked(buffer: T) -> Result<Self> {
                let p = Self::new_unchecked(buffer);
                p.check_len()?;
                let b = p.buffer.as_ref();
                if b[0] != $msg_type || b[1] != 0 {
                    return Err(Error::Malformed);
                }
                Ok(p)
            }

            /// `Err(Truncated)` if shorter than the fixed part.
            #[inline]
            pub fn check_len(&self) -> Result<()> {
                if self.buffer.as_ref().len() < Self::HEADER_LEN {
                    return Err(Error::Truncated);
                }
                Ok(())
            }

            /// Gives the buffer back.
            #[inline]
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// ICMPv6 checksum field.
            #[inline]
            pub fn checksum(&self) -> u16 {
                read_u16(self.buffer.as_ref(), 2)
            }

            /// The option area after the fixed part.
            #[inline]
            pub fn options(&self) -> &[u8] {
                &self.buffer.as_ref()[Self::HEADER_LEN..]
            }

            /// Iterator over [`Self::options`].
            #[inline]
            pub fn option_iter(&self) -> NdpOptionIter<'_> {
                NdpOptionIter::new(self.options())
            }

            /// True if the ICMPv6 checksum verifies.
            #[inline]
            pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
                icmpv6_checksum_sum(src, dst, self.buffer.as_ref()) == 0xffff
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            /// Mutable option area.
            #[inline]
            pub fn options_mut(&mut self) -> &mut [u8] {
                &mut self.buffer.as_mut()[Self::HEADER_LEN..]
            }

            /// Recomputes the ICMPv6 checksum.
            #[inline]
            pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
                fill_icmpv6_checksum(src, dst, self.buffer.as_mut());
            }
        }
    };
}

ndp_view!(
    /// A view of a Neighbor Solicitation (ICMPv6 type 135).
    NdpNeighborSolicit,
    icmpv6_type::NEIGHBOR_SOLICIT,
    24
);
ndp_view!(
    /// A view of a Neighbor Advertisement (ICMPv6 type 136).
    NdpNeighborAdvert,
    icmpv6_type::NEIGHBOR_ADVERT,
    24
);
ndp_view!(
    /// A view of a Router Solicitation (ICMPv6 type 133).
    NdpRouterSolicit,
    icmpv6_type::ROUTER_SOLICIT,
    8
);
ndp_view!(
    /// A view of a Router Advertisement (ICMPv6 type 134).
    NdpRouterAdvert,
    icmpv6_type::ROUTER_ADVERT,
    16
);

/// First link-layer address option of `kind` in `options`, ignoring
/// malformed tails (for display only).
fn find_ll(options: &[u8], kind: u8) -> Option<MacAddr> {
    NdpOptionIter::new(options).map_while(|o| o.ok()).find_map(|o| match o {
        NdpOption::SourceLinkLayer(m) if kind == ndp_option::SOURCE_LL => Some(m),
        NdpOption::TargetLinkLayer(m) if kind == ndp_option::TARGET_LL => Some(m),
        _ => None,
    })
}

impl<T: AsRef<[u8]>> NdpNeighborSolicit<T> {
    /// The address being resolved.
    #[inline]
    pub fn target_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(self.buffer.as_ref(), 8))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NdpNeighborSolicit<T> {
    /// Sets the target address.
    #[inline]
    pub fn set_target_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[8..24].copy_from_slice(&a.octets());
    }
}

impl<T: AsRef<[u8]>> fmt::Display for NdpNeighborSolicit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NDP neighbor solicit target={}", self.target_addr())?;
        if let Some(m) = find_ll(self.options(), ndp_option::SOURCE_LL) {
            write!(f, " slla={m}")?;
        }
        Ok(())
    }
}

impl<T: AsRef<[u8]>> NdpNeighborAdvert<T> {
    /// The raw flag byte ([`ndp_flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[4] & 0xe0
    }

    /// R flag: the sender is a router.
    #[inline]
    pub fn router(&self) -> bool {
        self.flags() & ndp_flags::ROUTER != 0
    }

    /// S flag: this answers a solicitation.
    #[inline]
    pub fn solicited(&self) -> bool {
        self.flags() & ndp_flags::SOLICITED != 0
    }

    /// O flag: override an existing cache entry.
    #[inline]
    pub fn override_(&self) -> bool {
        self.flags() & ndp_flags::OVERRIDE != 0
    }

    /// The address whose link-layer address is advertised.
    #[inline]
    pub fn target_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(self.buffer.as_ref(), 8))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NdpNeighborAdvert<T> {
    /// Sets the flag byte (reserved bits are cleared).
    #[inline]
    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[4] = flags & 0xe0;
    }

    /// Sets the target address.
    #[inline]
    pub fn set_target_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[8..24].copy_from_slice(&a.octets());
    }
}

impl<T: AsRef<[u8]>> fmt::Display for NdpNeighborAdvert<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NDP neighbor advert target={} flags=", self.target_addr())?;
        for (on, c) in [(self.router(), 'R'), (self.solicited(), 'S'), (self.override_(), 'O')] {
            if on {
                write!(f, "{c}")?;
            }
        }
        if self.flags() == 0 {
            f.write_str("-")?;
        }
        if let Some(m) = find_ll(self.options(), ndp_option::TARGET_LL) {
            write!(f, " tlla={m}")?;
        }
        Ok(())
    }
}

impl<T: AsRef<[u8]>> fmt::Display for NdpRouterSolicit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NDP router solicit")?;
        if let Some(m) = find_ll(self.options(), ndp_option::SOURCE_LL) {
            write!(f, " slla={m}")?;
        }
        Ok(())
    }
}

impl<T: AsRef<[u8]>> NdpRouterAdvert<T> {
    /// Hop limit hosts should use (0 = unspecified).
    #[inline]
    pub fn cur_hop_limit(&self) -> u8 {
        self.buffer.as_ref()[4]
    }

    /// M flag: addresses via DHCPv6.
    #[inline]
    pub fn managed(&self) -> bool {
        self.buffer.as_ref()[5] & 0x80 != 0
    }

    /// O flag: other configuration via DHCPv6.
    #[inline]
    pub fn other_config(&self) -> bool {
        self.buffer.as_ref()[5] & 0x40 != 0
    }

    /// Router lifetime in seconds (0 = not a default router).
    #[inline]
    pub fn router_lifetime(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 6)
    }

    /// Reachable time in milliseconds.
    #[inline]
    pub fn reachable_time(&self) -> u32 {
        read_u32(self.buffer.as_ref(), 8)
    }

    /// Retransmission timer in milliseconds.
    #[inline]
    pub fn retrans_timer(&self) -> u32 {
        read_u32(self.buffer.as_ref(), 12)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NdpRouterAdvert<T> {
    /// Sets the current hop limit.
    #[inline]
    pub fn set_cur_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[4] = v;
    }

    /// Sets the M and O flags (other bits of the byte are cleared).
    #[inline]
    pub fn set_flags(&mut self, managed: bool, other_config: bool) {
        self.buffer.as_mut()[5] = (u8::from(managed) << 7) | (u8::from(other_config) << 6);
    }

    /// Sets the router lifetime.
    #[inline]
    pub fn set_router_lifetime(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 6, v);
    }

    /// Sets the reachable time.
    #[inline]
    pub fn set_reachable_time(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), 8, v);
    }

    /// Sets the retransmission timer.
    #[inline]
    pub fn set_retrans_timer(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), 12, v);
    }
}

impl<T: AsRef<[u8]>> fmt::Display for NdpRouterAdvert<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NDP router advert hlim={} lifetime={} reachable={} retrans={}",
            self.cur_hop_limit(),
            self.router_lifetime(),
            self.reachable_time(),
            self.retrans_timer()
        )?;
        if self.managed() {
            f.write_str(" M")?;
        }
        if self.other_config() {
            f.write_str(" O")?;
        }
        Ok(())
    }
}

/// Writes a complete Neighbor Solicitation for `target` (ICMPv6 message,
/// checksum filled for `src` > `dst`) into `buf`, with a source link-layer
/// address option if `source_ll` is given (omit it for DAD, where `src` is
/// unspecified). Returns the length written (24 or 32), or `Truncated`.
pub fn emit_neighbor_solicit(
    buf: &mut [u8],
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    target: &Ipv6Addr,
    source_ll: Option<MacAddr>,
) -> Result<usize> {
    let len = 24 + if source_ll.is_some() { 8 } else { 0 };
    let msg = buf.get_mut(..len).ok_or(Error::Truncated)?;
    msg[..8].copy_from_slice(&[icmpv6_type::NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0]);
    msg[8..24].copy_from_slice(&target.octets());
    if let Some(mac) = source_ll {
        write_ll_option(&mut msg[24..], ndp_option::SOURCE_LL, mac);
    }
    fill_icmpv6_checksum(src, dst, msg);
    Ok(len)
}

/// Writes a complete Neighbor Advertisement for `target` with `flags`
/// ([`ndp_flags`]) and an optional target link-layer address option into
/// `buf`, checksum filled for `src` > `dst`. Returns the length written
/// (24 or 32), or `Truncated`.
pub fn emit_neighbor_advert(
    buf: &mut [u8],
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    target: &Ipv6Addr,
    flags: u8,
    target_ll: Option<MacAddr>,
) -> Result<usize> {
    let len = 24 + if target_ll.is_some() { 8 } else { 0 };
    let msg = buf.get_mut(..len).ok_or(Error::Truncated)?;
    msg[..8].copy_from_slice(&[icmpv6_type::NEIGHBOR_ADVERT, 0, 0, 0, flags & 0xe0, 0, 0, 0]);
    msg[8..24].copy_from_slice(&target.octets());
    if let Some(mac) = target_ll {
        write_ll_option(&mut msg[24..], ndp_option::TARGET_LL, mac);
    }
    fill_icmpv6_checksum(src, dst, msg);
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    // NS from 2001:db8::1 to ff02::1:ff00:2 for 2001:db8::2, SLLA ...:01.
    const NS: [u8; 32] = [
        0x87, 0x00, 0x1c, 0x27, 0x00, 0x00, 0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    ];
    // Solicited+override NA from 2001:db8::2 to 2001:db8::1, TLLA ...:02.
    const NA: [u8; 32] = [
        0x88, 0x00, 0x8a, 0x71, 0x60, 0x00, 0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    ];
    // RS from fe80::2 to ff02::2 with SLLA ...:02.
    const RS: [u8; 16] =
        [0x85, 0x00, 0x7a, 0x2a, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
    // RA from fe80::1 to ff02::1: hlim 64, lifetime 1800, SLLA, MTU 1500,
    // prefix 2001:db8::/64 L+A valid 30d preferred 7d.
    const RA: [u8; 64] = [
        0x86, 0x00, 0xed, 0xe9, 0x40, 0x00, 0x07, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x05, 0xdc, 0x03, 0x04, 0x40, 0xc0,
        0x00, 0x27, 0x8d, 0x00, 0x00, 0x09, 0x3a, 0x80, 0x00, 0x00, 0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    const MAC1: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const MAC2: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_ns() {
        let p = NdpNeighborSolicit::new_checked(&NS[..]).unwrap();
        assert_eq!(p.target_addr(), a("2001:db8::2"));
        assert_eq!(p.checksum(), 0x1c27);
        assert!(p.verify_checksum(&a("2001:db8::1"), &a("ff02::1:ff00:2")));
        let opts: Vec<_> = p.option_iter().collect();
        assert_eq!(opts, vec![Ok(NdpOption::SourceLinkLayer(MAC1))]);
        assert_eq!(p.to_string(), "NDP neighbor solicit target=2001:db8::2 slla=02:00:00:00:00:01");
    }

    #[test]
    fn parse_na() {
        let p = NdpNeighborAdvert::new_checked(&NA[..]).unwrap();
        assert!(!p.router() && p.solicited() && p.override_());
        assert_eq!(p.flags(), ndp_flags::SOLICITED | ndp_flags::OVERRIDE);
        assert_eq!(p.target_addr(), a("2001:db8::2"));
        assert!(p.verify_checksum(&a("2001:db8::2"), &a("2001:db8::1")));
        let opts: Vec<_> = p.option_iter().collect();
        assert_eq!(opts, vec![Ok(NdpOption::TargetLinkLayer(MAC2))]);
        assert_eq!(p.to_string(), "NDP neighbor advert target=2001:db8::2 flags=SO tlla=02:00:00:00:00:02");
    }

    #[test]
    fn parse_rs_ra() {
        let rs = NdpRouterSolicit::new_checked(&RS[..]).unwrap();
        assert!(rs.verify_checksum(&a("fe80::2"), &a("ff02::2")));
        assert_eq!(rs.to_string(), "NDP router solicit slla=02:00:00:00:00:02");

        let ra = NdpRouterAdvert::new_checked(&RA[..]).unwrap();
        assert!(ra.verify_checksum(&a("fe80::1"), &a("ff02::1")));
        assert_eq!((ra.cur_hop_limit(), ra.managed(), ra.other_config()), (64, false, false));
        assert_eq!((ra.router_lifetime(), ra.reachable_time(), ra.retrans_timer()), (1800, 0, 0));
        let opts: Vec<_> = ra.option_iter().collect();
        assert_eq!(
            opts,
            vec![
                Ok(NdpOption::SourceLinkLayer(MAC1)),
                Ok(NdpOption::Mtu(1500)),
                Ok(NdpOption::PrefixInfo {
                    prefix_len: 64,
                    on_link: true,
                    autonomous: true,
                    valid_lifetime: 2_592_000,
                    preferred_lifetime: 604_800,
                    prefix: a("2001:db8::"),
                }),
            ]
        );
        assert_eq!(ra.to_string(), "NDP router advert hlim=64 lifetime=1800 reachable=0 retrans=0");
    }

    #[test]
    fn emit_ns_na() {
        let mut buf = [0u8; 40];
        let n = emit_neighbor_solicit(&mut buf, &a("2001:db8::1"), &a("ff02::1:ff00:2"), &a("2001:db8::2"), Some(MAC1));
        assert_eq!(n, Ok(32));
        assert_eq!(buf[..32], NS);
        let n = emit_neighbor_advert(
            &mut buf,
            &a("2001:db8::2"),
            &a("2001:db8::1"),
            &a("2001:db8::2"),
            ndp_flags::SOLICITED | ndp_flags::OVERRIDE | 0x1f,
            Some(MAC2),
        );
        assert_eq!(n, Ok(32));
        assert_eq!(buf[..32], NA);
        // DAD-style NS without the option.
        let (s, d) = (Ipv6Addr::UNSPECIFIED, solicited_node(&a("2001:db8::2")));
        assert_eq!(emit_neighbor_solicit(&mut buf, &s, &d, &a("2001:db8::2"), None), Ok(24));
        let p = NdpNeighborSolicit::new_checked(&buf[..24]).unwrap();
        assert!(p.verify_checksum(&s, &d) && p.options().is_empty());
        assert_eq!(p.to_string(), "NDP neighbor solicit target=2001:db8::2");
        assert_eq!(emit_neighbor_advert(&mut buf, &s, &d, &s, 0, None), Ok(24));
        assert_eq!(emit_neighbor_solicit(&mut buf[..31], &s, &d, &s, Some(MAC1)), Err(Error::Truncated));
        assert_eq!(emit_neighbor_advert(&mut buf[..23], &s, &d, &s, 0, None), Err(Error::Truncated));
    }

    #[test]
    fn setters_round_trip() {
        let mut b = NA;
        let mut p = NdpNeighborAdvert::new_checked(&mut b[..]).unwrap();
        p.set_flags(ndp_flags::ROUTER);
        p.set_target_addr(a("2001:db8::9"));
        p.options_mut()[2..8].copy_from_slice(&MAC1.0);
        p.fill_checksum(&a("2001:db8::9"), &a("ff02::1"));
        assert!(p.router() && !p.solicited());
        assert!(p.verify_checksum(&a("2001:db8::9"), &a("ff02::1")));
        assert!(p.to_string().contains("flags=R tlla=02:00:00:00:00:01"));
        p.set_flags(0);
        assert!(p.to_string().contains("flags=- "));

        let mut b = NS;
        let mut p = NdpNeighborSolicit::new_checked(&mut b[..]).unwrap();
        p.set_target_addr(a("::1"));
        assert_eq!(p.target_addr(), a("::1"));

        let mut b = [0u8; 16];
        b[0] = icmpv6_type::ROUTER_ADVERT;
        let mut ra = NdpRouterAdvert::new_checked(&mut b[..]).unwrap();
        ra.set_cur_hop_limit(64);
        ra.set_flags(true, true);
        ra.set_router_lifetime(1800);
        ra.set_reachable_time(30_000);
        ra.set_retrans_timer(1000);
        assert!(ra.managed() && ra.other_config());
        assert_eq!(ra.to_string(), "NDP router advert hlim=64 lifetime=1800 reachable=30000 retrans=1000 M O");
        assert_eq!(ra.into_inner()[4..8], [64, 0xc0, 0x07, 0x08]);
    }

    #[test]
    fn view_errors() {
        assert_eq!(NdpNeighborSolicit::new_checked(&NS[..23]), Err(Error::Truncated));
        assert_eq!(NdpNeighborSolicit::new_checked(&NA[..]), Err(Error::Malformed));
        let mut b = NA;
        b[1] = 1; // nonzero code
        assert_eq!(NdpNeighborAdvert::new_checked(&b[..]), Err(Error::Malformed));
        assert_eq!(NdpRouterSolicit::new_checked(&RS[..7]), Err(Error::Truncated));
        assert_eq!(NdpRouterAdvert::new_checked(&RA[..15]), Err(Error::Truncated));
        assert_eq!(NdpRouterAdvert::new_checked(&RS[..]), Err(Error::Malformed));
    }

    #[test]
    fn option_errors() {
        fn walk(d: &[u8]) -> Vec<Result<NdpOption<'_>>> {
            NdpOptionIter::new(d).collect()
        }
        // Zero length must not loop forever.
        assert_eq!(walk(&[1, 0, 0, 0, 0, 0, 0, 0]), vec![Err(Error::Malformed)]);
        assert_eq!(walk(&[1]), vec![Err(Error::Malformed)]);
        // Runs past the end.
        assert_eq!(walk(&[1, 2, 0, 0, 0, 0, 0, 0]), vec![Err(Error::Malformed)]);
        // Wrong lengths for fixed-size options.
        assert_eq!(walk(&[5, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), vec![Err(Error::Malformed)]);
        assert_eq!(walk(&RA[32..40]), vec![Err(Error::Malformed)]);
        // A good option, then garbage: one Ok, one Err, then done.
        let mut d = [0u8; 12];
        d[..8].copy_from_slice(&RA[24..32]);
        d[8] = 9;
        assert_eq!(walk(&d), vec![Ok(NdpOption::Mtu(1500)), Err(Error::Malformed)]);
    }

    #[test]
    fn other_options() {
        // Long (non-Ethernet) SLLA and an unknown type come back as Other.
        let d = [1u8, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 25, 1, 0, 0, 0, 0, 0, 7];
        let got: Vec<_> = NdpOptionIter::new(&d).collect();
        assert_eq!(
            got,
            vec![
                Ok(NdpOption::Other { kind: 1, data: &d[2..16] }),
                Ok(NdpOption::Other { kind: 25, data: &[0, 0, 0, 0, 0, 7] }),
            ]
        );
    }

    #[test]
    fn solicited_node_group() {
        assert_eq!(solicited_node(&a("2001:db8::1:2345:6789")), a("ff02::1:ff45:6789"));
        assert_eq!(
            MacAddr::from_ipv6_multicast(&solicited_node(&a("2001:db8::2"))),
            MacAddr([0x33, 0x33, 0xff, 0, 0, 2])
        );
    }
}
