//! ARP for Ethernet/IPv4 (RFC 826).

use core::fmt;
use core::net::Ipv4Addr;

use crate::eth::MacAddr;
use crate::field::{read_array, read_u16, write_u16};
use crate::{Error, Result};

/// ARP operation codes.
pub mod arp_op {
    /// Who has the target IP?
    pub const REQUEST: u16 = 1;
    /// The sender owns the sender IP.
    pub const REPLY: u16 = 2;
}

/// ARP hardware type for Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

/// A view of an Ethernet/IPv4 ARP packet. Other hardware or protocol
/// types are rejected by [`ArpPacket::new_checked`], so the address
/// getters can use fixed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const HEADER_LEN: usize = 28;

    /// Wraps `buffer` without checking it; getters panic if it is shorter
    /// than [`Self::HEADER_LEN`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`] and checks that it is
    /// Ethernet/IPv4 ARP (`Malformed` otherwise).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        if p.hardware_type() != HTYPE_ETHERNET
            || p.protocol_type() != crate::ethertype::IPV4
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(Error::Malformed);
        }
        Ok(p)
    }

    /// `Err(Truncated)` if the buffer cannot hold the packet.
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

    /// Hardware type (1 = Ethernet).
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    /// Protocol type (an EtherType; 0x0800 = IPv4).
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PTYPE)
    }

    /// Hardware address length.
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation ([`arp_op`]).
    #[inline]
    pub fn operation(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::OPER)
    }

    /// Sender hardware address.
    #[inline]
    pub fn sender_hw(&self) -> MacAddr {
        MacAddr(read_array(self.buffer.as_ref(), field::SHA))
    }

    /// Sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), field::SPA))
    }

    /// Target hardware address (zero in a request).
    #[inline]
    pub fn target_hw(&self) -> MacAddr {
        MacAddr(read_array(self.buffer.as_ref(), field::THA))
    }

    /// Target protocol address.
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), field::TPA))
    }

    /// True for gratuitous ARP (sender IP == target IP).
    #[inline]
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip() == self.target_ip()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    #[inline]
    pub fn set_hardware_type(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::HTYPE, v);
    }

    /// Sets the protocol type.
    #[inline]
    pub fn set_protocol_type(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::PTYPE, v);
    }

    /// Sets the hardware address length.
    #[inline]
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    /// Sets the protocol address length.
    #[inline]
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::OPER, v);
    }

    /// Sets the sender hardware address.
    #[inline]
    pub fn set_sender_hw(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SHA..field::SHA + 6].copy_from_slice(&a.0);
    }

    /// Sets the sender protocol address.
    #[inline]
    pub fn set_sender_ip(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA..field::SPA + 4].copy_from_slice(&a.octets());
    }

    /// Sets the target hardware address.
    #[inline]
    pub fn set_target_hw(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::THA..field::THA + 6].copy_from_slice(&a.0);
    }

    /// Sets the target protocol address.
    #[inline]
    pub fn set_target_ip(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA..field::TPA + 4].copy_from_slice(&a.octets());
    }

    /// Writes the fixed Ethernet/IPv4 header fields and `op`.
    #[inline]
    fn set_header(&mut self, op: u16) {
        self.set_hardware_type(HTYPE_ETHERNET);
        self.set_protocol_type(crate::ethertype::IPV4);
        self.set_hardware_len(6);
        self.set_protocol_len(4);
        self.set_operation(op);
    }
}

/// Writes a full ARP request ("who has `target_ip`, tell `sender_ip`") into
/// the first 28 bytes of `buf`, target hardware address zero. Returns the
/// length written, or `Truncated` if `buf` is too short.
pub fn emit_request(buf: &mut [u8], sender_hw: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Result<usize> {
    let mut p = ArpPacket::new_checked_len(buf)?;
    p.set_header(arp_op::REQUEST);
    p.set_sender_hw(sender_hw);
    p.set_sender_ip(sender_ip);
    p.set_target_hw(MacAddr::ZERO);
    p.set_target_ip(target_ip);
    Ok(ArpPacket::<&[u8]>::HEADER_LEN)
}

/// Writes a full ARP reply ("`sender_ip` is at `sender_hw`", addressed to
/// `target_hw`/`target_ip`) into the first 28 bytes of `buf`. Returns the
/// length written, or `Truncated` if `buf` is too short.
pub fn emit_reply(
    buf: &mut [u8],
    sender_hw: MacAddr,
    sender_ip: Ipv4Addr,
    target_hw: MacAddr,
    target_ip: Ipv4Addr,
) -> Result<usize> {
    let mut p = ArpPacket::new_checked_len(buf)?;
    p.set_header(arp_op::REPLY);
    p.set_sender_hw(sender_hw);
    p.set_sender_ip(sender_ip);
    p.set_target_hw(target_hw);
    p.set_target_ip(target_ip);
    Ok(ArpPacket::<&[u8]>::HEADER_LEN)
}

impl<'a> ArpPacket<&'a mut [u8]> {
    /// A view over exactly the ARP bytes of `buf`, for the emitters.
    fn new_checked_len(buf: &'a mut [u8]) -> Result<Self> {
        let buf = buf.get_mut(..Self::HEADER_LEN).ok_or(Error::Truncated)?;
        Ok(Self::new_unchecked(buf))
    }
}

impl<T: AsRef<[u8]>> fmt::Display for ArpPacket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operation() {
            arp_op::REQUEST => {
                write!(f, "ARP request who-has {} tell {} ({})", self.target_ip(), self.sender_ip(), self.sender_hw())
            }
            arp_op::REPLY => write!(
                f,
                "ARP reply {} is-at {} to {} ({})",
                self.sender_ip(),
                self.sender_hw(),
                self.target_ip(),
                self.target_hw()
            ),
            op => write!(
                f,
                "ARP op={} sender={}/{} target={}/{}",
                op,
                self.sender_ip(),
                self.sender_hw(),
                self.target_ip(),
                self.target_hw()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Who has 10.0.0.2? Tell 10.0.0.1 (02:00:00:00:00:01).
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x02,
    ];
    // 10.0.0.2 is at 02:00:00:00:00:02.
    const REPLY: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x02,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x01,
    ];
    const MAC1: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const MAC2: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const IP1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const IP2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn parse_request() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.operation(), arp_op::REQUEST);
        assert_eq!((p.sender_hw(), p.sender_ip()), (MAC1, IP1));
        assert_eq!((p.target_hw(), p.target_ip()), (MacAddr::ZERO, IP2));
        assert!(!p.is_gratuitous());
        assert_eq!(p.to_string(), "ARP request who-has 10.0.0.2 tell 10.0.0.1 (02:00:00:00:00:01)");
    }

    #[test]
    fn parse_reply() {
        let p = ArpPacket::new_checked(&REPLY[..]).unwrap();
        assert_eq!(p.operation(), arp_op::REPLY);
        assert_eq!((p.sender_hw(), p.sender_ip()), (MAC2, IP2));
        assert_eq!((p.target_hw(), p.target_ip()), (MAC1, IP1));
        assert_eq!(p.to_string(), "ARP reply 10.0.0.2 is-at 02:00:00:00:00:02 to 10.0.0.1 (02:00:00:00:00:01)");
    }

    #[test]
    fn emit_helpers() {
        let mut buf = [0xaau8; 60]; // Ethernet minimum payload is larger than ARP
        assert_eq!(emit_request(&mut buf, MAC1, IP1, IP2), Ok(28));
        assert_eq!(buf[..28], REQUEST);
        assert!(buf[28..].iter().all(|&b| b == 0xaa));
        assert_eq!(emit_reply(&mut buf, MAC2, IP2, MAC1, IP1), Ok(28));
        assert_eq!(buf[..28], REPLY);
        assert_eq!(emit_request(&mut buf[..27], MAC1, IP1, IP2), Err(Error::Truncated));
        assert_eq!(emit_reply(&mut buf[..27], MAC1, IP1, MAC2, IP2), Err(Error::Truncated));
    }

    #[test]
    fn setters_round_trip() {
        let mut buf = REQUEST;
        let mut p = ArpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_operation(arp_op::REPLY);
        p.set_sender_hw(MAC2);
        p.set_sender_ip(IP2);
        p.set_target_hw(MAC1);
        p.set_target_ip(IP1);
        assert_eq!(p.into_inner(), &REPLY[..]);
    }

    #[test]
    fn errors() {
        assert_eq!(ArpPacket::new_checked(&REQUEST[..27]), Err(Error::Truncated));
        for (at, val) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut b = REQUEST;
            b[at] = val;
            assert_eq!(ArpPacket::new_checked(&b[..]), Err(Error::Malformed), "byte {at}");
        }
    }

    #[test]
    fn gratuitous_and_unknown_op() {
        let mut b = REQUEST;
        let mut p = ArpPacket::new_checked(&mut b[..]).unwrap();
        p.set_target_ip(IP1);
        p.set_operation(9);
        assert!(p.is_gratuitous());
        assert!(p.to_string().starts_with("ARP op=9 "));
    }
}
