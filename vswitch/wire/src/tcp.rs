//! TCP headers (RFC 9293) and options (RFC 7323, RFC 2018).

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::field::{read_u16, read_u32, write_u16, write_u32};
use crate::ip_protocol;
use crate::{Error, Result};

/// TCP flag bits as returned by [`TcpPacket::flags`].
pub mod tcp_flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer is significant.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

/// A view of a TCP segment: the whole IP payload (TCP has no length field,
/// so the payload runs to the end of the buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;

    /// Wraps `buffer` without checking; getters panic if it is shorter than
    /// the header (options included, for `options()`/`payload()`).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated` if shorter than 20 bytes; `BadHeaderLen` if the data
    /// offset is below 5 or the header runs past the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < Self::MIN_HEADER_LEN || hl > len {
            return Err(Error::BadHeaderLen);
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

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK)
    }

    /// Header length in bytes (data offset * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The flag byte ([`tcp_flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// FIN flag.
    #[inline]
    pub fn fin(&self) -> bool {
        self.flags() & tcp_flags::FIN != 0
    }

    /// SYN flag.
    #[inline]
    pub fn syn(&self) -> bool {
        self.flags() & tcp_flags::SYN != 0
    }

    /// RST flag.
    #[inline]
    pub fn rst(&self) -> bool {
        self.flags() & tcp_flags::RST != 0
    }

    /// PSH flag.
    #[inline]
    pub fn psh(&self) -> bool {
        self.flags() & tcp_flags::PSH != 0
    }

    /// ACK flag.
    #[inline]
    pub fn ack(&self) -> bool {
        self.flags() & tcp_flags::ACK != 0
    }

    /// URG flag.
    #[inline]
    pub fn urg(&self) -> bool {
        self.flags() & tcp_flags::URG != 0
    }

    /// ECE flag.
    #[inline]
    pub fn ece(&self) -> bool {
        self.flags() & tcp_flags::ECE != 0
    }

    /// CWR flag.
    #[inline]
    pub fn cwr(&self) -> bool {
        self.flags() & tcp_flags::CWR != 0
    }

    /// Window (unscaled).
    #[inline]
    pub fn window_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// Option bytes between the fixed header and the payload.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::MIN_HEADER_LEN..self.header_len()]
    }

    /// Iterator over [`Self::options`].
    #[inline]
    pub fn option_iter(&self) -> TcpOptionIter<'_> {
        TcpOptionIter::new(self.options())
    }

    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    #[inline]
    fn folded(&self, pseudo: u32) -> u16 {
        checksum::fold(pseudo + checksum::sum(self.buffer.as_ref()))
    }

    #[inline]
    fn seg_len(&self) -> u32 {
        self.buffer.as_ref().len() as u32
    }

    /// True if the checksum verifies over IPv4.
    #[inline]
    pub fn verify_checksum_v4(&self, src: &Ipv4Addr, dst: &Ipv4Addr) -> bool {
        self.folded(checksum::pseudo_header_v4(src, dst, ip_protocol::TCP, self.seg_len())) == 0xffff
    }

    /// True if the checksum verifies over IPv6.
    #[inline]
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.folded(checksum::pseudo_header_v6(src, dst, ip_protocol::TCP, self.seg_len())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
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

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ, v);
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::ACK, v);
    }

    /// Sets the header length in bytes (stored as `len / 4`); the reserved
    /// low nibble is cleared.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }

    /// Sets the whole flag byte.
    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }

    #[inline]
    fn set_flag(&mut self, flag: u8, on: bool) {
        let f = self.flags();
        self.set_flags(if on { f | flag } else { f & !flag });
    }

    /// Sets FIN.
    #[inline]
    pub fn set_fin(&mut self, on: bool) {
        self.set_flag(tcp_flags::FIN, on);
    }

    /// Sets SYN.
    #[inline]
    pub fn set_syn(&mut self, on: bool) {
        self.set_flag(tcp_flags::SYN, on);
    }

    /// Sets RST.
    #[inline]
    pub fn set_rst(&mut self, on: bool) {
        self.set_flag(tcp_flags::RST, on);
    }

    /// Sets PSH.
    #[inline]
    pub fn set_psh(&mut self, on: bool) {
        self.set_flag(tcp_flags::PSH, on);
    }

    /// Sets ACK.
    #[inline]
    pub fn set_ack(&mut self, on: bool) {
        self.set_flag(tcp_flags::ACK, on);
    }

    /// Sets URG.
    #[inline]
    pub fn set_urg(&mut self, on: bool) {
        self.set_flag(tcp_flags::URG, on);
    }

    /// Sets ECE.
    #[inline]
    pub fn set_ece(&mut self, on: bool) {
        self.set_flag(tcp_flags::ECE, on);
    }

    /// Sets CWR.
    #[inline]
    pub fn set_cwr(&mut self, on: bool) {
        self.set_flag(tcp_flags::CWR, on);
    }

    /// Sets the window.
    #[inline]
    pub fn set_window_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, v);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent_at(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::URGENT, v);
    }

    /// Mutable options.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[Self::MIN_HEADER_LEN..hl]
    }

    /// Mutable payload.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }

    /// Fills the checksum for IPv4.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: &Ipv4Addr, dst: &Ipv4Addr) {
        self.set_checksum(0);
        let ph = checksum::pseudo_header_v4(src, dst, ip_protocol::TCP, self.seg_len());
        let c = !self.folded(ph);
        self.set_checksum(c);
    }

    /// Fills the checksum for IPv6.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let ph = checksum::pseudo_header_v6(src, dst, ip_protocol::TCP, self.seg_len());
        let c = !self.folded(ph);
        self.set_checksum(c);
    }
}

impl<'a> TcpPacket<&'a [u8]> {
    /// [`Self::payload`] borrowed from the underlying buffer instead of the
    /// view, so it outlives the view (handy when walking header chains).
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let start = self.header_len();
        let end = self.buffer.len();
        let b: &'a [u8] = self.buffer;
        &b[start..end]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for TcpPacket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TCP {} > {} [", self.src_port(), self.dst_port())?;
        let names = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (i, n) in names.iter().enumerate() {
            if self.flags() & (1 << i) != 0 {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        write!(f, "] seq={}", self.seq_number())?;
        if self.ack() {
            write!(f, " ack={}", self.ack_number())?;
        }
        write!(f, " win={} len={}", self.window_len(), self.payload().len())
    }
}

/// TCP option kinds.
pub mod tcp_option {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Window scale.
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK permitted.
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK blocks.
    pub const SACK: u8 = 5;
    /// Timestamps.
    pub const TIMESTAMPS: u8 = 8;
}

/// The blocks of a SACK option: 1 to 4 `(left, right)` edges, read on
/// demand from the option bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SackBlocks<'a> {
    data: &'a [u8],
}

impl<'a> SackBlocks<'a> {
    /// Number of blocks.
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len() / 8
    }

    /// True if there are no blocks (never, for a parsed option).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.len() < 8
    }

    /// Block `i` as `(left edge, right edge)`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<(u32, u32)> {
        let b = self.data.get(i * 8..i * 8 + 8)?;
        Some((read_u32(b, 0), read_u32(b, 4)))
    }

    /// All blocks in order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        self.data.chunks_exact(8).map(|b| (read_u32(b, 0), read_u32(b, 4)))
    }
}

/// One parsed TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// End of option list; iteration stops after it.
    EndOfList,
    /// Padding.
    NoOperation,
    /// Maximum segment size.
    MaxSegmentSize(u16),
    /// Window scale shift count.
    WindowScale(u8),
    /// SACK permitted.
    SackPermitted,
    /// SACK blocks.
    Sack(SackBlocks<'a>),
    /// Timestamps.
    Timestamps {
        /// Sender's timestamp value.
        tsval: u32,
        /// Echoed timestamp.
        tsecr: u32,
    },
    /// Any other option; `data` excludes kind and length.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option body.
        data: &'a [u8],
    },
}

/// Iterator over TCP options. A length byte that is missing, < 2, past the
/// end, or wrong for a known kind yields `Err(Malformed)`, after which the
/// iterator is done.
#[derive(Debug, Clone)]
pub struct TcpOptionIter<'a> {
    data: &'a [u8],
}

impl<'a> TcpOptionIter<'a> {
    /// Walks `options` (e.g. [`TcpPacket::options`]).
    #[inline]
    pub fn new(options: &'a [u8]) -> Self {
        TcpOptionIter { data: options }
    }

    fn parse(kind: u8, body: &'a [u8]) -> Result<TcpOption<'a>> {
        use tcp_option::*;
        Ok(match (kind, body.len()) {
            (MSS, 2) => TcpOption::MaxSegmentSize(read_u16(body, 0)),
            (WINDOW_SCALE, 1) => TcpOption::WindowScale(body[0]),
            (SACK_PERMITTED, 0) => TcpOption::SackPermitted,
            (SACK, n) if n > 0 && n % 8 == 0 => TcpOption::Sack(SackBlocks { data: body }),
            (TIMESTAMPS, 8) => TcpOption::Timestamps { tsval: read_u32(body, 0), tsecr: read_u32(body, 4) },
            (MSS | WINDOW_SCALE | SACK_PERMITTED | SACK | TIMESTAMPS, _) => return Err(Error::Malformed),
            _ => TcpOption::Unknown { kind, data: body },
        })
    }
}

impl<'a> Iterator for TcpOptionIter<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, rest) = self.data.split_first()?;
        match kind {
            tcp_option::EOL => {
                self.data = &[];
                return Some(Ok(TcpOption::EndOfList));
            }
            tcp_option::NOP => {
                self.data = rest;
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        let len = rest.first().map_or(0, |&l| usize::from(l));
        if len < 2 || len > self.data.len() {
            self.data = &[];
            return Some(Err(Error::Malformed));
        }
        let body = &self.data[2..len];
        self.data = &self.data[len..];
        let r = Self::parse(kind, body);
        if r.is_err() {
            self.data = &[];
        }
        Some(r)
    }
}

impl core::iter::FusedIterator for TcpOptionIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    // Linux-style SYN 10.0.0.1:40000 > 10.0.0.2:80 with MSS 1460,
    // SACK-permitted, timestamps, NOP, window scale 7.
    const SYN: [u8; 40] = [
        0x9c, 0x40, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0, 0x51, 0x8e,
        0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x01, 0xe2, 0x40, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x03, 0x03, 0x07,
    ];
    // PSH+ACK 2001:db8::2:80 > 2001:db8::1:40000 with timestamps and two
    // SACK blocks, payload "HTTP/1.0 200 OK\r\n".
    const ACK6: [u8; 69] = [
        0x00, 0x50, 0x9c, 0x40, 0xab, 0xcd, 0xef, 0x01, 0x12, 0x34, 0x56, 0x79, 0xd0, 0x18, 0x01, 0xf6, 0xb7, 0x87,
        0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x07, 0xd0, 0x01, 0x01, 0x05, 0x12,
        0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x40, 0x00, 0x48, 0x54,
        0x54, 0x50, 0x2f, 0x31, 0x2e, 0x30, 0x20, 0x32, 0x30, 0x30, 0x20, 0x4f, 0x4b, 0x0d, 0x0a,
    ];
    const S4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const D4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn a6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_syn() {
        let p = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40000, 80));
        assert_eq!((p.seq_number(), p.ack_number(), p.header_len()), (0x1234_5678, 0, 40));
        assert_eq!(p.flags(), tcp_flags::SYN);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst() && !p.psh());
        assert!(!p.urg() && !p.ece() && !p.cwr());
        assert_eq!((p.window_len(), p.checksum(), p.urgent_at()), (64240, 0x518e, 0));
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum_v4(&S4, &D4));
        assert!(!p.verify_checksum_v4(&S4, &Ipv4Addr::new(10, 0, 0, 3)));
        let opts: Vec<_> = p.option_iter().collect();
        assert_eq!(
            opts,
            vec![
                Ok(TcpOption::MaxSegmentSize(1460)),
                Ok(TcpOption::SackPermitted),
                Ok(TcpOption::Timestamps { tsval: 123_456, tsecr: 0 }),
                Ok(TcpOption::NoOperation),
                Ok(TcpOption::WindowScale(7)),
            ]
        );
        assert_eq!(p.to_string(), "TCP 40000 > 80 [SYN] seq=305419896 win=64240 len=0");
    }

    #[test]
    fn parse_ack_v6_with_sack() {
        let p = TcpPacket::new_checked(&ACK6[..]).unwrap();
        assert_eq!(p.header_len(), 52);
        assert!(p.psh() && p.ack());
        assert_eq!(p.payload(), b"HTTP/1.0 200 OK\r\n");
        assert_eq!(p.into_payload(), b"HTTP/1.0 200 OK\r\n");
        assert!(p.verify_checksum_v6(&a6("2001:db8::2"), &a6("2001:db8::1")));
        assert!(!p.verify_checksum_v6(&a6("2001:db8::2"), &a6("2001:db8::3")));
        let opts: Vec<_> = p.option_iter().map(|o| o.unwrap()).collect();
        assert_eq!(opts.len(), 6);
        assert_eq!(opts[2], TcpOption::Timestamps { tsval: 1000, tsecr: 2000 });
        let TcpOption::Sack(blocks) = opts[5] else { panic!("{:?}", opts[5]) };
        assert_eq!((blocks.len(), blocks.is_empty()), (2, false));
        assert_eq!(blocks.iter().collect::<Vec<_>>(), vec![(0x1000, 0x2000), (0x3000, 0x4000)]);
        assert_eq!((blocks.get(1), blocks.get(2)), (Some((0x3000, 0x4000)), None));
        assert_eq!(p.to_string(), "TCP 80 > 40000 [PSH,ACK] seq=2882400001 ack=305419897 win=502 len=17");
    }

    #[test]
    fn emit_round_trip() {
        let mut b = [0u8; 40];
        let mut p = TcpPacket::new_unchecked(&mut b[..]);
        p.set_src_port(40000);
        p.set_dst_port(80);
        p.set_seq_number(0x1234_5678);
        p.set_ack_number(0);
        p.set_header_len(40);
        p.set_syn(true);
        p.set_window_len(64240);
        p.set_urgent_at(0);
        p.options_mut().copy_from_slice(&SYN[20..]);
        p.fill_checksum_v4(&S4, &D4);
        assert_eq!(b, SYN);

        let mut b = [0u8; 69];
        let mut p = TcpPacket::new_unchecked(&mut b[..]);
        p.set_src_port(80);
        p.set_dst_port(40000);
        p.set_seq_number(0xabcd_ef01);
        p.set_ack_number(0x1234_5679);
        p.set_header_len(52);
        p.set_flags(tcp_flags::PSH | tcp_flags::ACK);
        p.set_window_len(502);
        p.options_mut().copy_from_slice(&ACK6[20..52]);
        p.payload_mut().copy_from_slice(b"HTTP/1.0 200 OK\r\n");
        p.fill_checksum_v6(&a6("2001:db8::2"), &a6("2001:db8::1"));
        assert_eq!(p.into_inner(), &ACK6[..]);
    }

    #[test]
    fn flag_setters() {
        let mut b = SYN;
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        p.set_syn(false);
        p.set_fin(true);
        p.set_rst(true);
        p.set_psh(true);
        p.set_ack(true);
        p.set_urg(true);
        p.set_ece(true);
        p.set_cwr(true);
        assert_eq!(p.flags(), 0xfd);
        assert!(p.to_string().contains("[FIN,RST,PSH,ACK,URG,ECE,CWR]"));
        p.set_flags(0);
        assert!(p.to_string().contains("[] seq="));
        p.set_checksum(0xbeef);
        assert_eq!(p.checksum(), 0xbeef);
    }

    #[test]
    fn errors() {
        assert_eq!(TcpPacket::new_checked(&SYN[..19]), Err(Error::Truncated));
        assert_eq!(TcpPacket::new_checked(&SYN[..39]), Err(Error::BadHeaderLen));
        let mut b = SYN;
        b[12] = 0x40; // data offset 4
        assert_eq!(TcpPacket::new_checked(&b[..]), Err(Error::BadHeaderLen));
        b[12] = 0x50;
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 20); // the old options are now payload
        assert!(p.options().is_empty());
    }

    #[test]
    fn option_walk_edges() {
        fn walk(d: &[u8]) -> Vec<Result<TcpOption<'_>>> {
            TcpOptionIter::new(d).collect()
        }
        // EOL ends the walk even with bytes after it.
        assert_eq!(walk(&[1, 0, 2, 4]), vec![Ok(TcpOption::NoOperation), Ok(TcpOption::EndOfList)]);
        assert_eq!(walk(&[30, 3, 9]), vec![Ok(TcpOption::Unknown { kind: 30, data: &[9] })]);
        assert_eq!(walk(&[30, 2]), vec![Ok(TcpOption::Unknown { kind: 30, data: &[] })]);
        for bad in [
            &[2u8][..],          // missing length
            &[30, 1],            // length < 2
            &[30, 0],            // zero length would loop
            &[2, 6, 0, 0],       // past the end
            &[2, 3, 0],          // MSS wrong length
            &[3, 2],             // window scale wrong length
            &[4, 3, 0],          // SACK-permitted wrong length
            &[5, 2],             // SACK without blocks
            &[5, 6, 0, 0, 0, 0], // SACK partial block
            &[8, 6, 0, 0, 0, 0], // timestamps wrong length
        ] {
            let got = walk(bad);
            assert_eq!(got.last(), Some(&Err(Error::Malformed)), "{bad:?}");
        }
        // Error stops the iterator.
        let got = walk(&[2, 3, 0, 1, 1]);
        assert_eq!(got, vec![Err(Error::Malformed)]);
    }
}
