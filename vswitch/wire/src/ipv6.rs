//! IPv6 fixed header (RFC 8200). Extension headers live in
//! [`crate::ipv6_ext`].

use core::fmt;
use core::net::Ipv6Addr;

use crate::field::{read_array, read_u16, read_u32, write_u16, write_u32};
use crate::ip_protocol::ProtoDisplay;
use crate::{Error, Result};

mod field {
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// A view of an IPv6 packet. Jumbograms (payload length 0 plus a
/// Hop-by-Hop jumbo option) are not supported: their payload reads as empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 40;

    /// Wraps `buffer` without checking it; getters panic if it is shorter
    /// than the header, or than the payload length for `payload()`.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks, in order: 40 bytes present (`Truncated`), version is 6
    /// (`BadVersion`), 40 + payload length fits (`BadTotalLen`).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::BadVersion);
        }
        if Self::HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(Error::BadTotalLen);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version nibble.
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// Traffic class (DSCP << 2 | ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (read_u16(self.buffer.as_ref(), field::VER_TC_FLOW) >> 4) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Payload length (everything after the fixed header, extension headers
    /// included).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// Next header ([`crate::ip_protocol`]).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(self.buffer.as_ref(), field::SRC))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(self.buffer.as_ref(), field::DST))
    }

    /// Source address as a host-order integer (for LPM lookups).
    #[inline]
    pub fn src_u128(&self) -> u128 {
        u128::from_be_bytes(read_array(self.buffer.as_ref(), field::SRC))
    }

    /// Destination address as a host-order integer (for LPM lookups).
    #[inline]
    pub fn dst_u128(&self) -> u128 {
        u128::from_be_bytes(read_array(self.buffer.as_ref(), field::DST))
    }

    /// Payload up to `payload_len` (link padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let end = Self::HEADER_LEN + usize::from(self.payload_len());
        &self.buffer.as_ref()[Self::HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_TC_FLOW];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let b = self.buffer.as_mut();
        b[0] = (b[0] & 0xf0) | (tc >> 4);
        b[1] = (b[1] & 0x0f) | (tc << 4);
    }

    /// Sets the flow label (low 20 bits).
    #[inline]
    pub fn set_flow_label(&mut self, fl: u32) {
        let w = read_u32(self.buffer.as_ref(), field::VER_TC_FLOW);
        let w = (w & 0xfff0_0000) | (fl & 0x000f_ffff);
        write_u32(self.buffer.as_mut(), field::VER_TC_FLOW, w);
    }

    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }

    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 16].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 16].copy_from_slice(&a.octets());
    }

    /// Mutable payload up to `payload_len`.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = Self::HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[Self::HEADER_LEN..end]
    }
}

impl<'a> Ipv6Packet<&'a [u8]> {
    /// [`Self::payload`] borrowed from the underlying buffer instead of the
    /// view, so it outlives the view (handy when walking header chains).
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let start = Self::HEADER_LEN;
        let end = start + usize::from(self.payload_len());
        let b: &'a [u8] = self.buffer;
        &b[start..end]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Ipv6Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv6 {} > {} nh={} hlim={} len={}",
            self.src_addr(),
            self.dst_addr(),
            ProtoDisplay(self.next_header()),
            self.hop_limit(),
            self.payload_len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip_protocol;

    // ICMPv6 echo request 2001:db8::1 > 2001:db8::2, tc 0xb8, flow 0xabcde.
    const ECHO6: [u8; 56] = [
        0x6b, 0x8a, 0xbc, 0xde, 0x00, 0x10, 0x3a, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x02, 0x80, 0x00, 0x80, 0x75, 0x12, 0x34, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66,
        0x67, 0x68,
    ];

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parse() {
        let p = Ipv6Packet::new_checked(&ECHO6[..]).unwrap();
        assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0xb8, 0xabcde));
        assert_eq!((p.payload_len(), p.next_header(), p.hop_limit()), (16, ip_protocol::ICMPV6, 64));
        assert_eq!(p.src_addr(), a("2001:db8::1"));
        assert_eq!(p.dst_addr(), a("2001:db8::2"));
        assert_eq!(p.src_u128(), 0x2001_0db8_0000_0000_0000_0000_0000_0001);
        assert_eq!(p.dst_u128(), u128::from(a("2001:db8::2")));
        assert_eq!(p.payload(), &ECHO6[40..]);
        assert_eq!(p.into_payload(), &ECHO6[40..]);
        assert_eq!(p.to_string(), "IPv6 2001:db8::1 > 2001:db8::2 nh=ICMPv6 hlim=64 len=16");
    }

    #[test]
    fn payload_excludes_padding() {
        let mut buf = [0u8; 64];
        buf[..56].copy_from_slice(&ECHO6);
        assert_eq!(Ipv6Packet::new_checked(&buf[..]).unwrap().payload().len(), 16);
    }

    #[test]
    fn emit_round_trip() {
        let mut buf = [0u8; 56];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.set_version(6);
        p.set_traffic_class(0xb8);
        p.set_flow_label(0xfffabcde); // bits above 20 are ignored
        p.set_payload_len(16);
        p.set_next_header(ip_protocol::ICMPV6);
        p.set_hop_limit(64);
        p.set_src_addr(a("2001:db8::1"));
        p.set_dst_addr(a("2001:db8::2"));
        p.payload_mut().copy_from_slice(&ECHO6[40..]);
        assert_eq!(buf, ECHO6);
        let mut p = Ipv6Packet::new_checked(&mut buf[..]).unwrap();
        p.set_traffic_class(0x03);
        p.set_flow_label(0);
        assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 3, 0));
        assert_eq!(p.into_inner()[..4], [0x60, 0x30, 0, 0]);
    }

    #[test]
    fn errors() {
        let check = |b: &[u8]| Ipv6Packet::new_checked(b).map(|_| ());
        assert_eq!(check(&ECHO6[..39]), Err(Error::Truncated));
        let mut b = ECHO6;
        b[0] = 0x4b;
        assert_eq!(check(&b), Err(Error::BadVersion));
        assert_eq!(check(&ECHO6[..55]), Err(Error::BadTotalLen));
        let mut b = ECHO6;
        b[5] = 0; // zero payload length is fine (no jumbograms)
        assert!(Ipv6Packet::new_checked(&b[..]).unwrap().payload().is_empty());
    }
}
