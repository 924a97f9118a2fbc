//! UDP (RFC 768; RFC 8200 section 8.1 for the IPv6 checksum rule).

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::field::{read_u16, write_u16};
use crate::ip_protocol;
use crate::{Error, Result};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// A view of a UDP datagram: the IP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Fixed header length.
    pub const HEADER_LEN: usize = 8;

    /// Wraps `buffer` without checking; getters panic if it is shorter than
    /// the header, or than the length field for `payload()`.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated` if the buffer is shorter than 8 bytes; `BadTotalLen` if
    /// the length field is below 8 or past the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = usize::from(self.len());
        if l < Self::HEADER_LEN || l > len {
            return Err(Error::BadTotalLen);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field: header plus payload.
    #[inline]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// True if the length field says there is no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= Self::HEADER_LEN
    }

    /// Checksum field (0 = none, IPv4 only).
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Payload up to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..usize::from(self.len())]
    }

    /// Folded sum over pseudo header and datagram (0xffff if correct).
    #[inline]
    fn folded(&self, pseudo: u32) -> u16 {
        let d = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::fold(pseudo + checksum::sum(d))
    }

    /// True if the checksum verifies over IPv4; a zero checksum means the
    /// sender computed none and verifies too.
    #[inline]
    pub fn verify_checksum_v4(&self, src: &Ipv4Addr, dst: &Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let ph = checksum::pseudo_header_v4(src, dst, ip_protocol::UDP, u32::from(self.len()));
        self.folded(ph) == 0xffff
    }

    /// True if the checksum verifies over IPv6, where a zero checksum is
    /// invalid.
    #[inline]
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let ph = checksum::pseudo_header_v6(src, dst, ip_protocol::UDP, u32::from(self.len()));
        self.folded(ph) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Mutable payload up to the length field.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[Self::HEADER_LEN..end]
    }

    /// Computes and stores the checksum for a pseudo-header sum; a result
    /// of 0 is sent as 0xffff because 0 means "no checksum".
    #[inline]
    fn fill(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let c = !self.folded(pseudo);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Fills the checksum for IPv4.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: &Ipv4Addr, dst: &Ipv4Addr) {
        self.fill(checksum::pseudo_header_v4(src, dst, ip_protocol::UDP, u32::from(self.len())));
    }

    /// Fills the checksum for IPv6.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.fill(checksum::pseudo_header_v6(src, dst, ip_protocol::UDP, u32::from(self.len())));
    }
}

impl<'a> UdpPacket<&'a [u8]> {
    /// [`Self::payload`] borrowed from the underlying buffer instead of the
    /// view, so it outlives the view (handy when walking header chains).
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let start = Self::HEADER_LEN;
        let end = usize::from(self.len());
        let b: &'a [u8] = self.buffer;
        &b[start..end]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for UdpPacket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UDP {} > {} len={}", self.src_port(), self.dst_port(), self.payload().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // DNS query 10.0.0.1:54321 > 10.0.0.2:53 (the UDP part).
    const UDP4: [u8; 37] = [
        0xd4, 0x31, 0x00, 0x35, 0x00, 0x25, 0x9b, 0xff, 0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00,
        0x01,
    ];
    // 2001:db8::1:5353 > 2001:db8::2:53, odd-length payload "\x12\x34hello".
    const UDP6: [u8; 15] = [0x14, 0xe9, 0x00, 0x35, 0x00, 0x0f, 0x39, 0x37, 0x12, 0x34, 0x68, 0x65, 0x6c, 0x6c, 0x6f];
    const S4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const D4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn a6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_v4() {
        let p = UdpPacket::new_checked(&UDP4[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len(), p.checksum()), (54321, 53, 37, 0x9bff));
        assert_eq!(p.payload(), &UDP4[8..]);
        assert_eq!(p.into_payload(), &UDP4[8..]);
        assert!(!p.is_empty());
        assert!(p.verify_checksum_v4(&S4, &D4));
        assert!(!p.verify_checksum_v4(&D4, &Ipv4Addr::new(10, 0, 0, 3)));
        assert_eq!(p.to_string(), "UDP 54321 > 53 len=29");
    }

    #[test]
    fn parse_v6_odd_length() {
        let (s, d) = (a6("2001:db8::1"), a6("2001:db8::2"));
        let p = UdpPacket::new_checked(&UDP6[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5353, 53, 15));
        assert!(p.verify_checksum_v6(&s, &d));
        // Swapping addresses keeps the sum; a different address does not.
        assert!(p.verify_checksum_v6(&d, &s));
        assert!(!p.verify_checksum_v6(&s, &a6("2001:db8::3")));
    }

    #[test]
    fn zero_checksum_rules() {
        let mut b = UDP4;
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.set_checksum(0);
        assert!(p.verify_checksum_v4(&S4, &D4));
        let (s, d) = (a6("2001:db8::1"), a6("2001:db8::2"));
        assert!(!p.verify_checksum_v6(&s, &d));
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Make the payload's last word cancel everything else so the
        // checksum computes to 0.
        let mut b = [0u8; 12];
        let mut p = UdpPacket::new_unchecked(&mut b[..]);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_len(12);
        let ph = checksum::pseudo_header_v4(&S4, &D4, ip_protocol::UDP, 12);
        let rest = checksum::fold(ph + checksum::sum(&b));
        b[10..12].copy_from_slice(&(!rest).to_be_bytes());
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.fill_checksum_v4(&S4, &D4);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum_v4(&S4, &D4));
    }

    #[test]
    fn emit_round_trip() {
        let mut b = [0u8; 37];
        let mut p = UdpPacket::new_unchecked(&mut b[..]);
        p.set_src_port(54321);
        p.set_dst_port(53);
        p.set_len(37);
        p.payload_mut().copy_from_slice(&UDP4[8..]);
        p.fill_checksum_v4(&S4, &D4);
        assert_eq!(b, UDP4);
        let mut b = [0u8; 15];
        let mut p = UdpPacket::new_unchecked(&mut b[..]);
        p.set_src_port(5353);
        p.set_dst_port(53);
        p.set_len(15);
        p.payload_mut().copy_from_slice(&UDP6[8..]);
        p.fill_checksum_v6(&a6("2001:db8::1"), &a6("2001:db8::2"));
        assert_eq!(p.into_inner(), &UDP6[..]);
    }

    #[test]
    fn payload_stops_at_length_field() {
        let mut b = [0u8; 20];
        b[..15].copy_from_slice(&UDP6);
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 7);
        assert!(p.verify_checksum_v6(&a6("2001:db8::1"), &a6("2001:db8::2")));
    }

    #[test]
    fn errors() {
        assert_eq!(UdpPacket::new_checked(&UDP4[..7]), Err(Error::Truncated));
        assert_eq!(UdpPacket::new_checked(&UDP4[..36]), Err(Error::BadTotalLen));
        let mut b = UDP4;
        b[5] = 7;
        assert_eq!(UdpPacket::new_checked(&b[..]), Err(Error::BadTotalLen));
        b[5] = 8;
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert!(p.is_empty() && p.payload().is_empty());
    }
}
