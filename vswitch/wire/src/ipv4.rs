//! IPv4 headers (RFC 791) and their options.

use core::fmt;
use core::net::Ipv4Addr;

use crate::checksum;
use crate::field::{read_array, read_u16, read_u32, write_u16};
use crate::ip_protocol::ProtoDisplay;
use crate::{Error, Result};

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;

    /// Wraps `buffer` without checking it; getters panic if it is shorter
    /// than the header, or than the total length for `payload()`.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks, in order: buffer holds 20 bytes (`Truncated`), version is 4
    /// (`BadVersion`), IHL >= 5 and the header fits (`BadHeaderLen`), and
    /// header length <= total length <= buffer length (`BadTotalLen`).
    /// The checksum is not verified here.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let hl = self.header_len();
        if hl < Self::MIN_HEADER_LEN || hl > len {
            return Err(Error::BadHeaderLen);
        }
        let tl = usize::from(self.total_len());
        if tl < hl || tl > len {
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
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated services code point.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit congestion notification bits.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length (header + payload) in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't-fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FLAG_DF != 0
    }

    /// More-fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FRAG_MASK) << 3
    }

    /// True if this is any fragment of a larger datagram (MF set or
    /// nonzero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & (FLAG_MF | FRAG_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload ([`crate::ip_protocol`]).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), field::SRC))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), field::DST))
    }

    /// Source address as a host-order integer (for LPM lookups).
    #[inline]
    pub fn src_u32(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address as a host-order integer (for LPM lookups).
    #[inline]
    pub fn dst_u32(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::DST)
    }

    /// The header, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// Option bytes between the fixed header and the payload.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::MIN_HEADER_LEN..self.header_len()]
    }

    /// Iterator over [`Self::options`].
    #[inline]
    pub fn option_iter(&self) -> Ipv4OptionIter<'_> {
        Ipv4OptionIter::new(self.options())
    }

    /// Payload up to `total_len` (Ethernet padding past it is excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }

    /// True if the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::ipv4_header_checksum_ok(self.header())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets the header length in bytes (stored as `len / 4`).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP (low 6 bits).
    #[inline]
    pub fn set_dscp(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (v << 2);
    }

    /// Sets the ECN bits (low 2 bits).
    #[inline]
    pub fn set_ecn(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (v & 0x03);
    }

    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::TOTAL_LEN, v);
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    #[inline]
    fn set_flag(&mut self, flag: u16, on: bool) {
        let w = read_u16(self.buffer.as_ref(), field::FLAGS_FRAG);
        let w = if on { w | flag } else { w & !flag };
        write_u16(self.buffer.as_mut(), field::FLAGS_FRAG, w);
    }

    /// Sets the don't-fragment flag.
    #[inline]
    pub fn set_dont_frag(&mut self, on: bool) {
        self.set_flag(FLAG_DF, on);
    }

    /// Sets the more-fragments flag.
    #[inline]
    pub fn set_more_frags(&mut self, on: bool) {
        self.set_flag(FLAG_MF, on);
    }

    /// Sets the fragment offset in bytes (must be a multiple of 8; the low
    /// 3 bits are dropped).
    #[inline]
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let w = read_u16(self.buffer.as_ref(), field::FLAGS_FRAG);
        write_u16(self.buffer.as_mut(), field::FLAGS_FRAG, (w & !FRAG_MASK) | (bytes >> 3));
    }

    /// Sets the TTL.
    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 4].copy_from_slice(&a.octets());
    }

    /// Mutable options.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[Self::MIN_HEADER_LEN..hl]
    }

    /// Mutable payload up to `total_len`.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[hl..tl]
    }

    /// Recomputes the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// Decrements the TTL and patches the checksum incrementally
    /// (RFC 1624 eqn. 3). Returns the new TTL. A TTL of 0 is left alone
    /// (callers drop TTL <= 1 before forwarding).
    #[inline]
    pub fn decrement_ttl_incremental(&mut self) -> u8 {
        let b = self.buffer.as_mut();
        let ttl = b[field::TTL];
        if ttl == 0 {
            return 0;
        }
        b[field::TTL] = ttl - 1;
        // TTL is the high byte of the TTL/protocol word, so that word drops
        // by 0x0100 and ~m + m' is the constant ~0x0100 = 0xfeff.
        let s = u32::from(!read_u16(b, field::CHECKSUM)) + 0xfeff;
        let s = (s & 0xffff) + (s >> 16);
        write_u16(b, field::CHECKSUM, !(s as u16));
        ttl - 1
    }
}

impl<'a> Ipv4Packet<&'a [u8]> {
    /// [`Self::payload`] borrowed from the underlying buffer instead of the
    /// view, so it outlives the view (handy when walking header chains).
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let start = self.header_len();
        let end = usize::from(self.total_len());
        let b: &'a [u8] = self.buffer;
        &b[start..end]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Ipv4Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv4 {} > {} proto={} ttl={} len={}",
            self.src_addr(),
            self.dst_addr(),
            ProtoDisplay(self.protocol()),
            self.ttl(),
            self.total_len()
        )?;
        if self.is_fragment() {
            write!(f, " frag id={} off={}", self.ident(), self.frag_offset())?;
            if self.more_frags() {
                f.write_str(" mf")?;
            }
        }
        Ok(())
    }
}

/// IPv4 option kinds.
pub mod ipv4_option {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Record route.
    pub const RR: u8 = 7;
    /// Timestamp.
    pub const TS: u8 = 68;
    /// Loose source route.
    pub const LSRR: u8 = 131;
    /// Strict source route.
    pub const SSRR: u8 = 137;
    /// Router alert (RFC 2113).
    pub const ROUTER_ALERT: u8 = 148;
}

/// Iterator over IPv4 options, yielding `(kind, data)` where `data`
/// excludes the kind and length bytes. EOL and NOP are yielded with empty
/// data; iteration ends after EOL. A length byte that is missing, < 2 or
/// past the end yields `Err(Malformed)`, after which the iterator is done.
#[derive(Debug, Clone)]
pub struct Ipv4OptionIter<'a> {
    data: &'a [u8],
}

impl<'a> Ipv4OptionIter<'a> {
    /// Walks `options` (e.g. [`Ipv4Packet::options`]).
    #[inline]
    pub fn new(options: &'a [u8]) -> Self {
        Ipv4OptionIter { data: options }
    }
}

impl<'a> Iterator for Ipv4OptionIter<'a> {
    type Item = Result<(u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, rest) = self.data.split_first()?;
        match kind {
            ipv4_option::EOL => {
                self.data = &[];
                Some(Ok((kind, &[])))
            }
            ipv4_option::NOP => {
                self.data = rest;
                Some(Ok((kind, &[])))
            }
            _ => {
                let len = rest.first().map_or(0, |&l| usize::from(l));
                if len < 2 || len > self.data.len() {
                    self.data = &[];
                    return Some(Err(Error::Malformed));
                }
                let opt = &self.data[2..len];
                self.data = &self.data[len..];
                Some(Ok((kind, opt)))
            }
        }
    }
}

impl core::iter::FusedIterator for Ipv4OptionIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip_protocol;
    use proptest::prelude::*;

    // IPv4 + UDP DNS query, 10.0.0.1 > 10.0.0.2, DF, ttl 64.
    const UDP_DNS: [u8; 57] = [
        0x45, 0x00, 0x00, 0x39, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x0a, 0x6c, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00,
        0x00, 0x02, 0xd4, 0x31, 0x00, 0x35, 0x00, 0x25, 0x9b, 0xff, 0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00,
        0x01, 0x00, 0x01,
    ];
    // IGMPv2 report with the Router Alert option (IHL 6), tos 0xc0, ttl 1.
    const IGMP_RA: [u8; 32] = [
        0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02, 0x41, 0x60, 0xc0, 0xa8, 0x01, 0x14, 0xe0, 0x00,
        0x00, 0xfb, 0x94, 0x04, 0x00, 0x00, 0x16, 0x00, 0x09, 0x04, 0xe0, 0x00, 0x00, 0xfb,
    ];
    // Non-first fragment: offset 1480, MF, dscp 46 (EF), ecn 1, ttl 63.
    const FRAG: [u8; 36] = [
        0x45, 0xb9, 0x00, 0x24, 0xbe, 0xef, 0x20, 0xb9, 0x3f, 0x11, 0x87, 0x65, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00,
        0x00, 0x02, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    ];

    #[test]
    fn parse_udp() {
        let p = Ipv4Packet::new_checked(&UDP_DNS[..]).unwrap();
        assert_eq!((p.version(), p.header_len(), p.dscp(), p.ecn()), (4, 20, 0, 0));
        assert_eq!((p.total_len(), p.ident()), (57, 0x1c46));
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!((p.frag_offset(), p.ttl(), p.protocol()), (0, 64, ip_protocol::UDP));
        assert_eq!(p.checksum(), 0x0a6c);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!((p.src_u32(), p.dst_u32()), (0x0a00_0001, 0x0a00_0002));
        assert!(p.options().is_empty());
        assert_eq!(p.option_iter().count(), 0);
        assert_eq!(p.payload(), &UDP_DNS[20..]);
        assert_eq!(p.into_payload(), &UDP_DNS[20..]);
        assert_eq!(p.to_string(), "IPv4 10.0.0.1 > 10.0.0.2 proto=UDP ttl=64 len=57");
    }

    #[test]
    fn parse_options() {
        let p = Ipv4Packet::new_checked(&IGMP_RA[..]).unwrap();
        assert_eq!((p.header_len(), p.dscp(), p.ttl(), p.protocol()), (24, 48, 1, 2));
        assert!(p.verify_checksum());
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        let opts: Vec<_> = p.option_iter().collect();
        assert_eq!(opts, vec![Ok((ipv4_option::ROUTER_ALERT, &[0u8, 0][..]))]);
        assert_eq!(p.payload(), &IGMP_RA[24..]);
        assert_eq!(p.to_string(), "IPv4 192.168.1.20 > 224.0.0.251 proto=2 ttl=1 len=32");
    }

    #[test]
    fn parse_fragment() {
        let p = Ipv4Packet::new_checked(&FRAG[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!((p.dscp(), p.ecn()), (46, 1));
        assert!(p.is_fragment() && p.more_frags() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(p.to_string(), "IPv4 10.0.0.1 > 10.0.0.2 proto=UDP ttl=63 len=36 frag id=48879 off=1480 mf");
        // A last fragment: offset only.
        let mut b = FRAG;
        let mut q = Ipv4Packet::new_unchecked(&mut b[..]);
        q.set_more_frags(false);
        assert!(q.is_fragment() && !q.more_frags());
        q.set_frag_offset(0);
        assert!(!q.is_fragment());
    }

    #[test]
    fn payload_excludes_ethernet_padding() {
        let mut buf = [0u8; 60];
        buf[..57].copy_from_slice(&UDP_DNS);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload().len(), 37);
    }

    #[test]
    fn emit_round_trip() {
        let mut buf = [0u8; 32];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_version(4);
        p.set_header_len(24);
        p.set_dscp(48);
        p.set_ecn(0);
        p.set_total_len(32);
        p.set_ident(0);
        p.set_dont_frag(true);
        p.set_more_frags(false);
        p.set_frag_offset(0);
        p.set_ttl(1);
        p.set_protocol(2);
        p.set_src_addr(Ipv4Addr::new(192, 168, 1, 20));
        p.set_dst_addr(Ipv4Addr::new(224, 0, 0, 251));
        p.options_mut().copy_from_slice(&[0x94, 4, 0, 0]);
        p.payload_mut().copy_from_slice(&IGMP_RA[24..]);
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(buf, IGMP_RA);
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_checksum(0x1234);
        assert!(!p.verify_checksum());
        p.set_dont_frag(false);
        p.set_ecn(3);
        assert!(!p.dont_frag());
        assert_eq!((p.dscp(), p.ecn()), (48, 3));
        assert_eq!(p.into_inner()[6], 0);
    }

    #[test]
    fn errors() {
        let check = |b: &[u8]| Ipv4Packet::new_checked(b).map(|_| ());
        assert_eq!(check(&UDP_DNS[..19]), Err(Error::Truncated));
        let mut b = UDP_DNS;
        b[0] = 0x65;
        assert_eq!(check(&b), Err(Error::BadVersion));
        b[0] = 0x44; // IHL 4 < 5
        assert_eq!(check(&b), Err(Error::BadHeaderLen));
        b[0] = 0x4f; // 60-byte header, buffer is 57
        assert_eq!(check(&b), Err(Error::BadHeaderLen));
        let mut b = UDP_DNS;
        b[3] = 19; // total length below header length
        assert_eq!(check(&b), Err(Error::BadTotalLen));
        b[3] = 58; // one past the buffer
        assert_eq!(check(&b), Err(Error::BadTotalLen));
        // Options but a total length that ends inside them.
        let mut b = IGMP_RA;
        b[3] = 22;
        assert_eq!(check(&b), Err(Error::BadTotalLen));
    }

    #[test]
    fn option_walk() {
        // NOP, record route with one slot, timestamp stub, EOL, padding.
        let opts = [1, 7, 7, 4, 10, 0, 0, 1, 68, 4, 5, 0, 0, 0xff, 0xff, 0xff];
        let got: Vec<_> = Ipv4OptionIter::new(&opts).collect();
        assert_eq!(
            got,
            vec![
                Ok((ipv4_option::NOP, &[][..])),
                Ok((ipv4_option::RR, &[4, 10, 0, 0, 1][..])),
                Ok((ipv4_option::TS, &[5, 0][..])),
                Ok((ipv4_option::EOL, &[][..])),
            ]
        );
    }

    #[test]
    fn option_errors() {
        for bad in [&[7u8][..], &[7, 1], &[7, 0], &[7, 5, 0, 0], &[1, 131, 9, 1, 2]] {
            let got: Vec<_> = Ipv4OptionIter::new(bad).collect();
            assert_eq!(got.last(), Some(&Err(Error::Malformed)), "{bad:?}");
            assert!(got.iter().filter(|r| r.is_err()).count() == 1);
        }
    }

    #[test]
    fn decrement_ttl_known() {
        let mut b = UDP_DNS;
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.decrement_ttl_incremental(), 63);
        assert_eq!(p.checksum(), 0x0b6c);
        assert!(p.verify_checksum());
        p.set_ttl(0);
        p.fill_checksum();
        let before = p.checksum();
        assert_eq!(p.decrement_ttl_incremental(), 0);
        assert_eq!((p.ttl(), p.checksum()), (0, before));
    }

    /// A random header with ttl >= 1 and a valid checksum.
    fn header() -> impl Strategy<Value = Vec<u8>> {
        (0usize..=10, 1u8..=255, proptest::collection::vec(any::<u8>(), 60)).prop_map(|(opt_words, ttl, mut b)| {
            let hl = 20 + 4 * opt_words;
            b.truncate(hl);
            b[0] = 0x40 | (hl / 4) as u8;
            b[2..4].copy_from_slice(&(hl as u16).to_be_bytes());
            b[8] = ttl;
            let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
            p.fill_checksum();
            b
        })
    }

    fn full_recompute(b: &[u8]) -> u16 {
        let mut c = b.to_vec();
        Ipv4Packet::new_unchecked(&mut c[..]).fill_checksum();
        Ipv4Packet::new_unchecked(&c[..]).checksum()
    }

    proptest! {
        #[test]
        fn decrement_ttl_matches_full(mut b in header()) {
            let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
            let ttl = p.ttl();
            prop_assert_eq!(p.decrement_ttl_incremental(), ttl - 1);
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(p.checksum(), full_recompute(&b));
        }

        #[test]
        fn decrement_ttl_checksum_edges(mut b in header(), to_zero in any::<bool>(),
                                        stored_ffff in any::<bool>()) {
            // Adjust the ident so that the checksum before (or after) the
            // decrement is exactly 0x0000, the case RFC 1624 is about.
            b[4] = 0;
            b[5] = 0;
            b[10] = 0;
            b[11] = 0;
            if to_zero {
                b[8] -= 1;
            }
            let rest = checksum::fold(checksum::sum(&b));
            b[4..6].copy_from_slice(&(!rest).to_be_bytes());
            if to_zero {
                b[8] += 1;
            }
            let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
            p.fill_checksum();
            if !to_zero {
                prop_assert_eq!(p.checksum(), 0x0000);
                if stored_ffff {
                    // 0xFFFF is the other representation of zero; still valid.
                    p.set_checksum(0xffff);
                    prop_assert!(p.verify_checksum());
                }
            }
            p.decrement_ttl_incremental();
            prop_assert!(p.verify_checksum());
            let want = full_recompute(&b);
            prop_assert_eq!(Ipv4Packet::new_unchecked(&b[..]).checksum(), want);
            if to_zero {
                prop_assert_eq!(want, 0x0000);
            }
        }

        #[test]
        fn update_u16_on_any_field(mut b in header(), word in 1usize..10, new in any::<u16>()) {
            // Word 0 holds the IHL (changing it changes what the checksum
            // covers) and word 5 is the checksum itself.
            prop_assume!(word != 5);
            let at = 2 * word;
            let old = u16::from_be_bytes([b[at], b[at + 1]]);
            b[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
            let c = checksum::update_u16(p.checksum(), old, new);
            p.set_checksum(c);
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(c, full_recompute(&b));
        }

        #[test]
        fn update_u32_on_address(mut b in header(), new in any::<u32>(), dst in any::<bool>()) {
            let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
            let old = if dst { p.dst_u32() } else { p.src_u32() };
            if dst {
                p.set_dst_addr(Ipv4Addr::from(new));
            } else {
                p.set_src_addr(Ipv4Addr::from(new));
            }
            let c = checksum::update_u32(p.checksum(), old, new);
            p.set_checksum(c);
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(c, full_recompute(&b));
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Ipv4Packet::new_checked(&data[..]) {
                let _ = p.to_string();
                prop_assert!(p.header_len() + p.payload().len() <= data.len());
                for o in p.option_iter() {
                    let _ = o;
                }
            }
        }
    }
}
