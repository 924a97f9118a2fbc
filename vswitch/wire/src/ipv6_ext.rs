//! IPv6 extension headers (RFC 8200 section 4, RFC 4302 for AH) and the
//! walk from the fixed header to the upper-layer protocol.

use core::fmt;

use crate::field::{read_u16, read_u32, write_u16, write_u32};
use crate::ip_protocol::{self, ProtoDisplay};
use crate::{Error, Result};

/// Most extension headers [`ipv6_walk_ext_headers`] will step over; more is
/// treated as an attack on the parser rather than a real packet.
pub const MAX_EXT_HEADERS: usize = 8;

/// Where the upper-layer header starts, as found by [`ipv6_walk_ext_headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Upper {
    /// Protocol of the first non-extension header (TCP, UDP, ICMPv6, ESP,
    /// No Next Header, ...).
    pub protocol: u8,
    /// Offset of that header from the start of the walked data.
    pub offset: usize,
    /// A Fragment header was seen. For a non-first fragment (nonzero
    /// offset) the walk stops right after the Fragment header, so the bytes
    /// at `offset` are fragment data, not an upper-layer header.
    pub is_fragment: bool,
    /// Offset of the first Routing header, if any.
    pub routing_offset: Option<usize>,
}

/// True for the next-header values the walk steps over.
#[inline]
pub fn is_ext_header(next_header: u8) -> bool {
    matches!(
        next_header,
        ip_protocol::HOPOPT
            | ip_protocol::IPV6_ROUTE
            | ip_protocol::IPV6_FRAG
            | ip_protocol::IPV6_OPTS
            | ip_protocol::AH
    )
}

/// Walks the extension headers in `data` (the IPv6 payload), starting with
/// header type `first_next_header` (the fixed header's next header), and
/// stops at the first upper-layer protocol.
///
/// Errors: `Truncated` if a header runs past `data`; `Malformed` for a
/// Hop-by-Hop header that is not first or for more than
/// [`MAX_EXT_HEADERS`] extension headers.
pub fn ipv6_walk_ext_headers(first_next_header: u8, data: &[u8]) -> Result<Ipv6Upper> {
    let mut up = Ipv6Upper { protocol: first_next_header, offset: 0, is_fragment: false, routing_offset: None };
    let mut walked = 0;
    loop {
        let nh = up.protocol;
        if !is_ext_header(nh) {
            return Ok(up);
        }
        if walked == MAX_EXT_HEADERS || (nh == ip_protocol::HOPOPT && walked != 0) {
            return Err(Error::Malformed);
        }
        walked += 1;
        let hdr = data.get(up.offset..).ok_or(Error::Truncated)?;
        let len = match nh {
            ip_protocol::IPV6_FRAG => Ipv6FragmentHeader::<&[u8]>::HEADER_LEN,
            ip_protocol::AH => ah_len(*hdr.get(1).ok_or(Error::Truncated)?),
            _ => ext_len(*hdr.get(1).ok_or(Error::Truncated)?),
        };
        if hdr.len() < len {
            return Err(Error::Truncated);
        }
        if nh == ip_protocol::IPV6_ROUTE && up.routing_offset.is_none() {
            up.routing_offset = Some(up.offset);
        }
        up.protocol = hdr[0];
        up.offset += len;
        // Past a non-first fragment the bytes are fragment data, not headers.
        if nh == ip_protocol::IPV6_FRAG {
            up.is_fragment = true;
            if Ipv6FragmentHeader::new_unchecked(hdr).frag_offset() != 0 {
                return Ok(up);
            }
        }
    }
}

/// Length of an 8-octet-unit extension header from its length byte.
#[inline]
fn ext_len(hdr_ext_len: u8) -> usize {
    (usize::from(hdr_ext_len) + 1) * 8
}

/// Length of an Authentication Header (4-octet units, minus 2).
#[inline]
fn ah_len(payload_len: u8) -> usize {
    (usize::from(payload_len) + 2) * 4
}

/// A generic view of one extension header: next header, length, and the
/// header-specific data. Built with `new_checked` for the 8-octet-unit
/// headers (Hop-by-Hop, Routing, Destination Options) or `new_checked_ah`
/// for the Authentication Header, whose length counts 4-octet units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
    ah: bool,
}

impl<T: AsRef<[u8]>> Ipv6ExtHeader<T> {
    /// Smallest possible extension header.
    pub const MIN_HEADER_LEN: usize = 8;

    /// Wraps an 8-octet-unit header without checking; getters panic on a
    /// buffer shorter than [`Self::header_len`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6ExtHeader { buffer, ah: false }
    }

    /// Wraps an Authentication Header without checking.
    #[inline]
    pub const fn new_unchecked_ah(buffer: T) -> Self {
        Ipv6ExtHeader { buffer, ah: true }
    }

    /// Wraps an 8-octet-unit header after [`Self::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Wraps an Authentication Header after [`Self::check_len`].
    #[inline]
    pub fn new_checked_ah(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked_ah(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// `Err(Truncated)` unless the length byte is present and the whole
    /// header fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < 2 || len < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// True if this view uses AH length units.
    #[inline]
    pub fn is_ah(&self) -> bool {
        self.ah
    }

    /// Type of the header that follows.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// The raw length byte.
    #[inline]
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// Header length in bytes: `(len + 1) * 8`, or `(len + 2) * 4` for AH.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.ah {
            ah_len(self.hdr_ext_len())
        } else {
            ext_len(self.hdr_ext_len())
        }
    }

    /// The bytes after next-header and length, up to the header end (the
    /// options of Hop-by-Hop/Destination Options; see [`Ipv6OptionIter`]).
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[2..self.header_len()]
    }

    /// Everything after this header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6ExtHeader<T> {
    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[0] = v;
    }

    /// Sets the raw length byte.
    #[inline]
    pub fn set_hdr_ext_len(&mut self, v: u8) {
        self.buffer.as_mut()[1] = v;
    }

    /// Mutable header data.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[2..end]
    }
}

impl<'a> Ipv6ExtHeader<&'a [u8]> {
    /// [`Self::payload`] borrowed from the underlying buffer instead of the
    /// view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let start = self.header_len();
        let b: &'a [u8] = self.buffer;
        &b[start..]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Ipv6ExtHeader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.ah { "IPv6-AH" } else { "IPv6-Ext" };
        write!(f, "{} nh={} len={}", kind, ProtoDisplay(self.next_header()), self.header_len())
    }
}

/// Iterator over the TLV options of a Hop-by-Hop or Destination Options
/// header ([`Ipv6ExtHeader::data`]), yielding `(type, data)`. Pad1 is
/// yielded as `(0, &[])`. A missing or overlong length yields
/// `Err(Malformed)`, after which the iterator is done.
#[derive(Debug, Clone)]
pub struct Ipv6OptionIter<'a> {
    data: &'a [u8],
}

impl<'a> Ipv6OptionIter<'a> {
    /// Walks `options`.
    #[inline]
    pub fn new(options: &'a [u8]) -> Self {
        Ipv6OptionIter { data: options }
    }
}

impl<'a> Iterator for Ipv6OptionIter<'a> {
    type Item = Result<(u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, rest) = self.data.split_first()?;
        if kind == 0 {
            self.data = rest;
            return Some(Ok((0, &[])));
        }
        let Some((&len, rest)) = rest.split_first() else {
            self.data = &[];
            return Some(Err(Error::Malformed));
        };
        let Some(opt) = rest.get(..usize::from(len)) else {
            self.data = &[];
            return Some(Err(Error::Malformed));
        };
        self.data = &rest[usize::from(len)..];
        Some(Ok((kind, opt)))
    }
}

impl core::iter::FusedIterator for Ipv6OptionIter<'_> {}

/// A view of a Routing header. Type-specific fields (e.g. SRv6 segment
/// lists) are left to the caller via [`Ipv6RoutingHeader::data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6RoutingHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6RoutingHeader<T> {
    /// Smallest Routing header.
    pub const MIN_HEADER_LEN: usize = 8;

    /// Wraps `buffer` without checking; getters panic on a short buffer.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6RoutingHeader { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// `Err(Truncated)` unless 8 bytes and the whole header are present.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::MIN_HEADER_LEN || len < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Type of the header that follows.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Length in 8-octet units, not counting the first 8 octets.
    #[inline]
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// Header length in bytes.
    #[inline]
    pub fn header_len(&self) -> usize {
        ext_len(self.hdr_ext_len())
    }

    /// Routing type (e.g. 4 = Segment Routing).
    #[inline]
    pub fn routing_type(&self) -> u8 {
        self.buffer.as_ref()[2]
    }

    /// Segments left.
    #[inline]
    pub fn segments_left(&self) -> u8 {
        self.buffer.as_ref()[3]
    }

    /// Type-specific data: bytes 4 up to the header end.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[4..self.header_len()]
    }

    /// Everything after this header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6RoutingHeader<T> {
    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[0] = v;
    }

    /// Sets the length byte.
    #[inline]
    pub fn set_hdr_ext_len(&mut self, v: u8) {
        self.buffer.as_mut()[1] = v;
    }

    /// Sets the routing type.
    #[inline]
    pub fn set_routing_type(&mut self, v: u8) {
        self.buffer.as_mut()[2] = v;
    }

    /// Sets segments left.
    #[inline]
    pub fn set_segments_left(&mut self, v: u8) {
        self.buffer.as_mut()[3] = v;
    }

    /// Mutable type-specific data.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[4..end]
    }
}

impl<'a> Ipv6RoutingHeader<&'a [u8]> {
    /// [`Self::payload`] borrowed from the underlying buffer instead of the
    /// view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let start = self.header_len();
        let b: &'a [u8] = self.buffer;
        &b[start..]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Ipv6RoutingHeader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv6-Route type={} segleft={} nh={} len={}",
            self.routing_type(),
            self.segments_left(),
            ProtoDisplay(self.next_header()),
            self.header_len()
        )
    }
}

mod frag {
    pub const OFFSET_FLAGS: usize = 2;
    pub const IDENT: usize = 4;
}

/// A view of a Fragment header (always 8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6FragmentHeader<T> {
    /// Fixed length.
    pub const HEADER_LEN: usize = 8;

    /// Wraps `buffer` without checking; getters panic on a short buffer.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6FragmentHeader { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
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

    /// Type of the header that follows.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), frag::OFFSET_FLAGS) & 0xfff8
    }

    /// More-fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), frag::OFFSET_FLAGS) & 0x0001 != 0
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u32 {
        read_u32(self.buffer.as_ref(), frag::IDENT)
    }

    /// Everything after this header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6FragmentHeader<T> {
    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[0] = v;
    }

    /// Sets the fragment offset in bytes (low 3 bits dropped); clears the
    /// reserved bits.
    #[inline]
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let w = read_u16(self.buffer.as_ref(), frag::OFFSET_FLAGS);
        write_u16(self.buffer.as_mut(), frag::OFFSET_FLAGS, (bytes & 0xfff8) | (w & 1));
    }

    /// Sets the more-fragments flag.
    #[inline]
    pub fn set_more_frags(&mut self, on: bool) {
        let w = read_u16(self.buffer.as_ref(), frag::OFFSET_FLAGS) & !1;
        write_u16(self.buffer.as_mut(), frag::OFFSET_FLAGS, w | u16::from(on));
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), frag::IDENT, v);
    }
}

impl<'a> Ipv6FragmentHeader<&'a [u8]> {
    /// [`Self::payload`] borrowed from the underlying buffer instead of the
    /// view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let b: &'a [u8] = self.buffer;
        &b[Self::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Ipv6FragmentHeader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv6-Frag nh={} id=0x{:08x} off={}{}",
            ProtoDisplay(self.next_header()),
            self.ident(),
            self.frag_offset(),
            if self.more_frags() { " mf" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ipv6Packet;
    use ip_protocol::*;

    // 2001:db8::1 > 2001:db8::ff: Hop-by-Hop (router alert, PadN),
    // SRH (type 4, segleft 1, one segment), first fragment (M=1),
    // then UDP 1000 > 2000 "data".
    const EXT_CHAIN: [u8; 92] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x34, 0x00, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0xff, 0x2b, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00, 0x2c, 0x02, 0x04, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
        0x11, 0x00, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, 0x03, 0xe8, 0x07, 0xd0, 0x00, 0x0c, 0x00, 0x00, 0x64, 0x61,
        0x74, 0x61,
    ];

    fn payload() -> &'static [u8] {
        &EXT_CHAIN[40..]
    }

    #[test]
    fn walk_chain() {
        let ip = Ipv6Packet::new_checked(&EXT_CHAIN[..]).unwrap();
        let up = ipv6_walk_ext_headers(ip.next_header(), ip.payload()).unwrap();
        assert_eq!(up, Ipv6Upper { protocol: UDP, offset: 40, is_fragment: true, routing_offset: Some(8) });
        assert_eq!(&ip.payload()[up.offset..up.offset + 2], &[0x03, 0xe8]);
    }

    #[test]
    fn walk_no_ext_headers() {
        let up = ipv6_walk_ext_headers(TCP, &[]).unwrap();
        assert_eq!(up, Ipv6Upper { protocol: TCP, offset: 0, is_fragment: false, routing_offset: None });
        assert_eq!(ipv6_walk_ext_headers(IPV6_NONXT, &[1, 2]).unwrap().protocol, IPV6_NONXT);
        assert_eq!(ipv6_walk_ext_headers(ESP, &[1, 2]).unwrap().offset, 0);
    }

    #[test]
    fn walk_stops_after_non_first_fragment() {
        let mut p = payload().to_vec();
        Ipv6FragmentHeader::new_unchecked(&mut p[32..]).set_frag_offset(1448);
        let up = ipv6_walk_ext_headers(HOPOPT, &p).unwrap();
        assert_eq!((up.protocol, up.offset, up.is_fragment), (UDP, 40, true));
        // A non-first fragment whose next header claims another ext header
        // must not be walked into: the data there is not a header.
        p[32] = IPV6_OPTS;
        let up = ipv6_walk_ext_headers(HOPOPT, &p).unwrap();
        assert_eq!((up.protocol, up.offset), (IPV6_OPTS, 40));
    }

    #[test]
    fn walk_ah_and_dest_opts() {
        // AH (len 4 -> 24 bytes), then Destination Options (8), then ICMPv6.
        let mut d = vec![0u8; 32];
        d[0] = IPV6_OPTS;
        d[1] = 4;
        d[24] = ICMPV6;
        d[25] = 0;
        let up = ipv6_walk_ext_headers(AH, &d).unwrap();
        assert_eq!((up.protocol, up.offset, up.routing_offset), (ICMPV6, 32, None));
        let ah = Ipv6ExtHeader::new_checked_ah(&d[..]).unwrap();
        assert!(ah.is_ah());
        assert_eq!((ah.header_len(), ah.data().len()), (24, 22));
        assert_eq!(ah.payload().len(), 8);
        assert_eq!(ah.to_string(), "IPv6-AH nh=DestOpts len=24");
    }

    #[test]
    fn walk_errors() {
        // Each header cut short.
        for cut in [1, 7, 8, 31, 39] {
            assert_eq!(ipv6_walk_ext_headers(HOPOPT, &payload()[..cut]), Err(Error::Truncated), "{cut}");
        }
        assert_eq!(ipv6_walk_ext_headers(HOPOPT, &[]), Err(Error::Truncated));
        assert_eq!(ipv6_walk_ext_headers(AH, &[6]), Err(Error::Truncated));
        // Hop-by-Hop anywhere but first.
        let d = [HOPOPT, 0, 0, 0, 0, 0, 0, 0, TCP, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(ipv6_walk_ext_headers(IPV6_OPTS, &d), Err(Error::Malformed));
        assert_eq!(ipv6_walk_ext_headers(HOPOPT, &d), Err(Error::Malformed));
    }

    #[test]
    fn walk_limit() {
        // n Destination Options headers in a row, then UDP.
        let chain = |n: usize| {
            let mut d = vec![0u8; 8 * n];
            for i in 0..n {
                d[8 * i] = if i + 1 == n { UDP } else { IPV6_OPTS };
            }
            d
        };
        let up = ipv6_walk_ext_headers(IPV6_OPTS, &chain(MAX_EXT_HEADERS)).unwrap();
        assert_eq!((up.protocol, up.offset), (UDP, 8 * MAX_EXT_HEADERS));
        assert_eq!(ipv6_walk_ext_headers(IPV6_OPTS, &chain(MAX_EXT_HEADERS + 1)), Err(Error::Malformed));
    }

    #[test]
    fn views() {
        let hbh = Ipv6ExtHeader::new_checked(payload()).unwrap();
        assert!(!hbh.is_ah());
        assert_eq!((hbh.next_header(), hbh.hdr_ext_len(), hbh.header_len()), (IPV6_ROUTE, 0, 8));
        let opts: Vec<_> = Ipv6OptionIter::new(hbh.data()).collect();
        assert_eq!(opts, vec![Ok((5, &[0u8, 0][..])), Ok((1, &[][..]))]);
        assert_eq!(hbh.to_string(), "IPv6-Ext nh=Routing len=8");

        let rh = Ipv6RoutingHeader::new_checked(hbh.payload()).unwrap();
        assert_eq!((rh.next_header(), rh.hdr_ext_len(), rh.header_len()), (IPV6_FRAG, 2, 24));
        assert_eq!((rh.routing_type(), rh.segments_left()), (4, 1));
        assert_eq!(rh.data().len(), 20);
        assert_eq!(rh.data()[4..], "2001:db8::2".parse::<core::net::Ipv6Addr>().unwrap().octets());
        assert_eq!(rh.to_string(), "IPv6-Route type=4 segleft=1 nh=Fragment len=24");

        let fh = Ipv6FragmentHeader::new_checked(rh.payload()).unwrap();
        assert_eq!((fh.next_header(), fh.frag_offset(), fh.more_frags()), (UDP, 0, true));
        assert_eq!(fh.ident(), 0xdead_beef);
        assert_eq!(fh.payload().len(), 12);
        assert_eq!(fh.into_payload(), &EXT_CHAIN[80..]);
        assert_eq!(rh.into_payload(), &EXT_CHAIN[72..]);
        assert_eq!(hbh.into_payload(), &EXT_CHAIN[48..]);
        assert_eq!(fh.to_string(), "IPv6-Frag nh=UDP id=0xdeadbeef off=0 mf");
    }

    #[test]
    fn emit_round_trip() {
        let mut buf = [0u8; 40];
        let mut h = Ipv6ExtHeader::new_unchecked(&mut buf[..8]);
        h.set_next_header(IPV6_ROUTE);
        h.set_hdr_ext_len(0);
        h.data_mut().copy_from_slice(&[5, 2, 0, 0, 1, 0]);
        let mut r = Ipv6RoutingHeader::new_unchecked(&mut buf[8..32]);
        r.set_next_header(IPV6_FRAG);
        r.set_hdr_ext_len(2);
        r.set_routing_type(4);
        r.set_segments_left(1);
        r.data_mut()[4..].copy_from_slice(&"2001:db8::2".parse::<core::net::Ipv6Addr>().unwrap().octets());
        let mut f = Ipv6FragmentHeader::new_unchecked(&mut buf[32..]);
        f.set_next_header(UDP);
        f.set_frag_offset(0);
        f.set_more_frags(true);
        f.set_ident(0xdead_beef);
        assert_eq!(buf[..], payload()[..40]);
        let mut f = Ipv6FragmentHeader::new_checked(&mut buf[32..]).unwrap();
        f.set_frag_offset(0xffff);
        f.set_more_frags(false);
        assert_eq!((f.frag_offset(), f.more_frags()), (0xfff8, false));
        assert_eq!(f.into_inner()[2..4], [0xff, 0xf8]);
    }

    #[test]
    fn view_errors() {
        assert_eq!(Ipv6ExtHeader::new_checked(&[0u8][..]), Err(Error::Truncated));
        assert_eq!(Ipv6ExtHeader::new_checked(&[0u8, 1, 0, 0, 0, 0, 0, 0][..]), Err(Error::Truncated));
        assert_eq!(Ipv6ExtHeader::new_checked_ah(&[0u8, 1, 0, 0, 0, 0, 0, 0][..]), Err(Error::Truncated));
        assert!(Ipv6ExtHeader::new_checked_ah(&[0u8; 12][..]).is_ok());
        assert_eq!(Ipv6RoutingHeader::new_checked(&[0u8; 7][..]), Err(Error::Truncated));
        assert_eq!(Ipv6RoutingHeader::new_checked(&payload()[8..31]), Err(Error::Truncated));
        assert_eq!(Ipv6FragmentHeader::new_checked(&[0u8; 7][..]), Err(Error::Truncated));
        let bad: Vec<_> = Ipv6OptionIter::new(&[1, 4, 0, 0]).collect();
        assert_eq!(bad, vec![Err(Error::Malformed)]);
        let bad: Vec<_> = Ipv6OptionIter::new(&[0, 1]).collect();
        assert_eq!(bad, vec![Ok((0, &[][..])), Err(Error::Malformed)]);
        assert!(is_ext_header(AH) && !is_ext_header(ESP));
    }
}
