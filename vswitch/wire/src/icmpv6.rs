//! ICMP for IPv6 (RFC 4443). Neighbor Discovery messages have their own
//! views in [`crate::ndp`].

use core::fmt;
use core::net::Ipv6Addr;

use crate::checksum;
use crate::field::{read_u16, read_u32, write_u16, write_u32};
use crate::ip_protocol;
use crate::{Error, Result};

/// ICMPv6 message types.
pub mod icmpv6_type {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// NDP router solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// NDP router advertisement.
    pub const ROUTER_ADVERT: u8 = 134;
    /// NDP neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// NDP neighbor advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// NDP redirect.
    pub const REDIRECT: u8 = 137;
}

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
    pub const MTU: usize = 4;
    pub const POINTER: usize = 4;
}

/// Checksum of an ICMPv6 message, including the IPv6 pseudo header.
#[inline]
pub(crate) fn icmpv6_checksum_sum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let ph = checksum::pseudo_header_v6(src, dst, ip_protocol::ICMPV6, msg.len() as u32);
    checksum::fold(ph + checksum::sum(msg))
}

/// Fills the checksum field (bytes 2..4) of an ICMPv6 message in place.
#[inline]
pub(crate) fn fill_icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &mut [u8]) {
    write_u16(msg, field::CHECKSUM, 0);
    let c = !icmpv6_checksum_sum(src, dst, msg);
    write_u16(msg, field::CHECKSUM, c);
}

/// A view of an ICMPv6 message: the upper-layer payload of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Type, code, checksum and the 4-byte message-specific word.
    pub const HEADER_LEN: usize = 8;

    /// Wraps `buffer` without checking; getters panic if it is shorter than
    /// [`Self::HEADER_LEN`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Err(Truncated)` if shorter than 8 bytes.
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

    /// Message type ([`icmpv6_type`]).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier (echo request/reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo sequence number (echo request/reply).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ)
    }

    /// MTU (packet too big).
    #[inline]
    pub fn mtu(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::MTU)
    }

    /// Pointer to the offending octet (parameter problem).
    #[inline]
    pub fn pointer(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::POINTER)
    }

    /// Everything after the 8-byte header: echo data, or the offending
    /// packet for error messages.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..]
    }

    /// True for error messages (types below 128).
    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type() < 128
    }

    /// True if the checksum over pseudo header and message verifies.
    #[inline]
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        icmpv6_checksum_sum(src, dst, self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets the code.
    #[inline]
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, v);
    }

    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ, v);
    }

    /// Sets the MTU (packet too big).
    #[inline]
    pub fn set_mtu(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::MTU, v);
    }

    /// Sets the pointer (parameter problem).
    #[inline]
    pub fn set_pointer(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::POINTER, v);
    }

    /// Mutable data after the header.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[Self::HEADER_LEN..]
    }

    /// Recomputes the checksum (pseudo header from `src`/`dst`).
    #[inline]
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        fill_icmpv6_checksum(src, dst, self.buffer.as_mut());
    }
}

fn type_name(t: u8) -> Option<&'static str> {
    use icmpv6_type::*;
    Some(match t {
        DEST_UNREACHABLE => "unreachable",
        PACKET_TOO_BIG => "packet too big",
        TIME_EXCEEDED => "time exceeded",
        PARAM_PROBLEM => "parameter problem",
        ECHO_REQUEST => "echo request",
        ECHO_REPLY => "echo reply",
        ROUTER_SOLICIT => "router solicitation",
        ROUTER_ADVERT => "router advertisement",
        NEIGHBOR_SOLICIT => "neighbor solicitation",
        NEIGHBOR_ADVERT => "neighbor advertisement",
        REDIRECT => "redirect",
        _ => return None,
    })
}

impl<T: AsRef<[u8]>> fmt::Display for Icmpv6Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match type_name(self.msg_type()) {
            Some(n) => write!(f, "ICMPv6 {} code={}", n, self.code())?,
            None => write!(f, "ICMPv6 type={} code={}", self.msg_type(), self.code())?,
        }
        match self.msg_type() {
            icmpv6_type::ECHO_REQUEST | icmpv6_type::ECHO_REPLY => {
                write!(f, " id={} seq={}", self.echo_ident(), self.echo_seq_no())?
            }
            icmpv6_type::PACKET_TOO_BIG => write!(f, " mtu={}", self.mtu())?,
            icmpv6_type::PARAM_PROBLEM => write!(f, " pointer={}", self.pointer())?,
            _ => {}
        }
        write!(f, " len={}", self.data().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Echo request 2001:db8::1 > 2001:db8::2, id 0x1234 seq 1 "abcdefgh".
    const ECHO: [u8; 16] =
        [0x80, 0x00, 0x80, 0x75, 0x12, 0x34, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68];
    // Packet too big (MTU 1280) from 2001:db8::fe to 2001:db8::1.
    const PTB: [u8; 56] = [
        0x02, 0x00, 0xcf, 0x5e, 0x00, 0x00, 0x05, 0x00, 0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 0x11, 0x40, 0x20, 0x01,
        0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ];

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_echo() {
        let (s, d) = (a("2001:db8::1"), a("2001:db8::2"));
        let p = Icmpv6Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!((p.msg_type(), p.code(), p.checksum()), (icmpv6_type::ECHO_REQUEST, 0, 0x8075));
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1234, 1));
        assert_eq!(p.data(), b"abcdefgh");
        assert!(!p.is_error());
        assert!(p.verify_checksum(&s, &d));
        assert!(!p.verify_checksum(&d, &a("2001:db8::3")));
        assert_eq!(p.to_string(), "ICMPv6 echo request code=0 id=4660 seq=1 len=8");
    }

    #[test]
    fn parse_packet_too_big() {
        let p = Icmpv6Packet::new_checked(&PTB[..]).unwrap();
        assert_eq!((p.msg_type(), p.mtu()), (icmpv6_type::PACKET_TOO_BIG, 1280));
        assert!(p.is_error());
        assert!(p.verify_checksum(&a("2001:db8::fe"), &a("2001:db8::1")));
        let inner = crate::Ipv6Packet::new_unchecked(p.data());
        assert_eq!(inner.dst_addr(), a("2001:db8::2"));
        assert_eq!(p.to_string(), "ICMPv6 packet too big code=0 mtu=1280 len=48");
    }

    #[test]
    fn emit_round_trip() {
        let (s, d) = (a("2001:db8::fe"), a("2001:db8::1"));
        let mut b = [0u8; 56];
        let mut p = Icmpv6Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(icmpv6_type::PACKET_TOO_BIG);
        p.set_code(0);
        p.set_mtu(1280);
        p.data_mut().copy_from_slice(&PTB[8..]);
        p.fill_checksum(&s, &d);
        assert_eq!(b, PTB);

        let mut e = [0u8; 16];
        let mut p = Icmpv6Packet::new_checked(&mut e[..]).unwrap();
        p.set_msg_type(icmpv6_type::ECHO_REQUEST);
        p.set_echo_ident(0x1234);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(b"abcdefgh");
        p.fill_checksum(&a("2001:db8::1"), &a("2001:db8::2"));
        assert_eq!(p.checksum(), 0x8075);
        p.set_checksum(0);
        assert_eq!(p.into_inner()[..4], [0x80, 0, 0, 0]);
    }

    #[test]
    fn param_problem_and_unknown() {
        let mut b = [0u8; 8];
        let mut p = Icmpv6Packet::new_checked(&mut b[..]).unwrap();
        p.set_msg_type(icmpv6_type::PARAM_PROBLEM);
        p.set_pointer(40);
        assert_eq!(p.to_string(), "ICMPv6 parameter problem code=0 pointer=40 len=0");
        p.set_msg_type(200);
        assert_eq!(p.to_string(), "ICMPv6 type=200 code=0 len=0");
    }

    #[test]
    fn errors() {
        assert_eq!(Icmpv6Packet::new_checked(&ECHO[..7]), Err(Error::Truncated));
        let mut b = ECHO;
        b[8] ^= 0x20;
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert!(!p.verify_checksum(&a("2001:db8::1"), &a("2001:db8::2")));
    }
}
