//! ICMP for IPv4 (RFC 792, RFC 1191 for the next-hop MTU).

use core::fmt;

use crate::checksum;
use crate::field::{read_u16, read_u32, write_u16, write_u32};
use crate::{Error, Result};

/// ICMPv4 message types.
pub mod icmpv4_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Codes for [`icmpv4_type::DEST_UNREACHABLE`].
pub mod icmpv4_unreach {
    /// Network unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set (carries the next-hop MTU).
    pub const FRAG_NEEDED: u8 = 4;
    /// Communication administratively prohibited (RFC 1812).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: usize = 4;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
    pub const MTU: usize = 6;
    pub const POINTER: usize = 4;
}

/// A view of an ICMPv4 message: the whole IPv4 payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Type, code, checksum and the 4-byte rest-of-header.
    pub const HEADER_LEN: usize = 8;

    /// Wraps `buffer` without checking; getters panic if it is shorter than
    /// [`Self::HEADER_LEN`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
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

    /// Message type ([`icmpv4_type`]).
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

    /// The raw 4-byte rest-of-header word.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::REST)
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

    /// Next-hop MTU (destination unreachable, code 4).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::MTU)
    }

    /// Pointer to the offending octet (parameter problem).
    #[inline]
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// Everything after the 8-byte header: echo data, or the offending
    /// datagram's header for error messages.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..]
    }

    /// True if the checksum over the whole message verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xffff
    }

    /// True for the error messages that quote an offending datagram.
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            icmpv4_type::DEST_UNREACHABLE
                | icmpv4_type::REDIRECT
                | icmpv4_type::TIME_EXCEEDED
                | icmpv4_type::PARAM_PROBLEM
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
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

    /// Sets the rest-of-header word (e.g. zero for unreachables).
    #[inline]
    pub fn set_rest_of_header(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::REST, v);
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

    /// Sets the next-hop MTU.
    #[inline]
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::MTU, v);
    }

    /// Sets the parameter-problem pointer.
    #[inline]
    pub fn set_pointer(&mut self, v: u8) {
        self.buffer.as_mut()[field::POINTER] = v;
    }

    /// Mutable data after the header.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[Self::HEADER_LEN..]
    }

    /// Recomputes the checksum over the whole message.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

fn type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        icmpv4_type::ECHO_REPLY => "echo reply",
        icmpv4_type::DEST_UNREACHABLE => "unreachable",
        icmpv4_type::REDIRECT => "redirect",
        icmpv4_type::ECHO_REQUEST => "echo request",
        icmpv4_type::TIME_EXCEEDED => "time exceeded",
        icmpv4_type::PARAM_PROBLEM => "parameter problem",
        _ => return None,
    })
}

impl<T: AsRef<[u8]>> fmt::Display for Icmpv4Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match type_name(self.msg_type()) {
            Some(n) => write!(f, "ICMPv4 {} code={}", n, self.code())?,
            None => write!(f, "ICMPv4 type={} code={}", self.msg_type(), self.code())?,
        }
        match self.msg_type() {
            icmpv4_type::ECHO_REQUEST | icmpv4_type::ECHO_REPLY => {
                write!(f, " id={} seq={}", self.echo_ident(), self.echo_seq_no())?
            }
            icmpv4_type::DEST_UNREACHABLE if self.code() == icmpv4_unreach::FRAG_NEEDED => {
                write!(f, " mtu={}", self.next_hop_mtu())?
            }
            _ => {}
        }
        write!(f, " len={}", self.data().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Echo request id 0x1234 seq 1, data "abcdefgh".
    const ECHO: [u8; 16] =
        [0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68];
    // Fragmentation needed, MTU 1400, quoting an IPv4/UDP header.
    const FRAG_NEEDED: [u8; 36] = [
        0x03, 0x04, 0x86, 0xf8, 0x00, 0x00, 0x05, 0x78, 0x45, 0x00, 0x00, 0x39, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11,
        0x0a, 0x6c, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0xd4, 0x31, 0x00, 0x35, 0x00, 0x25, 0x9b, 0xff,
    ];

    #[test]
    fn parse_echo() {
        let p = Icmpv4Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!((p.msg_type(), p.code(), p.checksum()), (icmpv4_type::ECHO_REQUEST, 0, 0x5435));
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1234, 1));
        assert_eq!(p.rest_of_header(), 0x1234_0001);
        assert_eq!(p.data(), b"abcdefgh");
        assert!(p.verify_checksum() && !p.is_error());
        assert_eq!(p.to_string(), "ICMPv4 echo request code=0 id=4660 seq=1 len=8");
    }

    #[test]
    fn parse_frag_needed() {
        let p = Icmpv4Packet::new_checked(&FRAG_NEEDED[..]).unwrap();
        assert_eq!((p.msg_type(), p.code()), (icmpv4_type::DEST_UNREACHABLE, icmpv4_unreach::FRAG_NEEDED));
        assert_eq!(p.next_hop_mtu(), 1400);
        assert!(p.verify_checksum() && p.is_error());
        let inner = crate::Ipv4Packet::new_unchecked(p.data());
        assert_eq!(inner.dst_addr(), core::net::Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.to_string(), "ICMPv4 unreachable code=4 mtu=1400 len=28");
    }

    #[test]
    fn echo_reply_in_place() {
        // What an echo responder does: flip the type, refill the checksum.
        let mut b = ECHO;
        let mut p = Icmpv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_msg_type(icmpv4_type::ECHO_REPLY);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.checksum(), 0x5c35);
        // The same via RFC 1624: the type/code word went 0x0800 -> 0x0000.
        assert_eq!(checksum::update_u16(0x5435, 0x0800, 0x0000), 0x5c35);
        assert!(p.to_string().starts_with("ICMPv4 echo reply"));
    }

    #[test]
    fn emit_round_trip() {
        let mut b = [0u8; 36];
        let mut p = Icmpv4Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(icmpv4_type::DEST_UNREACHABLE);
        p.set_code(icmpv4_unreach::FRAG_NEEDED);
        p.set_rest_of_header(0xffff_ffff);
        p.set_rest_of_header(0);
        p.set_next_hop_mtu(1400);
        p.data_mut().copy_from_slice(&FRAG_NEEDED[8..]);
        p.fill_checksum();
        assert_eq!(b, FRAG_NEEDED);
        let mut e = [0u8; 16];
        let mut p = Icmpv4Packet::new_unchecked(&mut e[..]);
        p.set_msg_type(icmpv4_type::ECHO_REQUEST);
        p.set_echo_ident(0x1234);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(b"abcdefgh");
        p.set_checksum(0x5435);
        assert_eq!(p.into_inner(), &ECHO[..]);
    }

    #[test]
    fn param_problem_and_unknown() {
        let mut b = [0u8; 8];
        let mut p = Icmpv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_msg_type(icmpv4_type::PARAM_PROBLEM);
        p.set_pointer(9);
        assert_eq!(p.pointer(), 9);
        assert_eq!(p.to_string(), "ICMPv4 parameter problem code=0 len=0");
        p.set_msg_type(42);
        assert_eq!(p.to_string(), "ICMPv4 type=42 code=0 len=0");
    }

    #[test]
    fn errors() {
        assert_eq!(Icmpv4Packet::new_checked(&ECHO[..7]), Err(Error::Truncated));
        let mut b = ECHO;
        b[15] ^= 1;
        assert!(!Icmpv4Packet::new_checked(&b[..]).unwrap().verify_checksum());
    }
}
