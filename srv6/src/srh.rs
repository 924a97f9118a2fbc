//! The Segment Routing Header (RFC 8754 section 2): a view over the bytes of
//! one SRH, its TLVs, and an owned-free representation to build one.
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+---------------+---------------+
//! | Next Header   |  Hdr Ext Len  | Routing Type=4| Segments Left |
//! +---------------+---------------+---------------+---------------+
//! |  Last Entry   |     Flags     |              Tag              |
//! +---------------+---------------+---------------+---------------+
//! |            Segment List[0] (128 bits): the LAST segment       |
//! |                             ...                               |
//! |            Segment List[n]: the FIRST segment                 |
//! +---------------------------------------------------------------+
//! |            TLVs (Pad1, PadN, HMAC, ...) up to the header end  |
//! +---------------------------------------------------------------+
//! ```
//!
//! The header is `(Hdr Ext Len + 1) * 8` bytes. Segments Left indexes the
//! next segment to visit; Last Entry is the index of the last element of the
//! list, so the list holds `Last Entry + 1` addresses.

use core::fmt;
use core::net::Ipv6Addr;

use crate::field::{read_array, read_u16, read_u32, write_u16};

/// Routing Type of the SRH (RFC 8754 section 8, IANA "Routing Types").
pub const ROUTING_TYPE_SRH: u8 = 4;

/// SRH flag bits.
pub mod srh_flags {
    /// O-flag, OAM (RFC 9259): bit 2 of the flags octet.
    pub const OAM: u8 = 0x20;
    /// The draft "H" flag Linux still uses (`SR6_FLAG1_HMAC`, 1 << 3) to
    /// decide whether to look for an HMAC TLV at the end of the SRH. RFC 8754
    /// dropped it; set it when a Linux node must verify the HMAC.
    pub const LINUX_HMAC: u8 = 0x08;
}

/// SRH TLV types (RFC 8754 section 2.1, IANA "Segment Routing Header TLVs").
pub mod tlv_type {
    /// Pad1: a single octet of padding, no length.
    pub const PAD1: u8 = 0;
    /// PadN: type, length, `length` octets of padding.
    pub const PADN: u8 = 4;
    /// HMAC (RFC 8754 section 2.1.2).
    pub const HMAC: u8 = 5;
}

mod field {
    pub const NEXT_HEADER: usize = 0;
    pub const HDR_EXT_LEN: usize = 1;
    pub const ROUTING_TYPE: usize = 2;
    pub const SEGMENTS_LEFT: usize = 3;
    pub const LAST_ENTRY: usize = 4;
    pub const FLAGS: usize = 5;
    pub const TAG: usize = 6;
    pub const SEGMENTS: usize = 8;
}

/// Offset of the Segments Left field inside the SRH (for ICMP pointers).
pub const SEGMENTS_LEFT_OFFSET: usize = field::SEGMENTS_LEFT;

/// Why an SRH was rejected. Every variant has a stable [`SrhError::name`]
/// that the graph nodes use as the name of its error counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SrhError {
    /// Fewer than 8 bytes, or fewer than `(Hdr Ext Len + 1) * 8`.
    Truncated,
    /// Routing Type is not 4.
    BadRoutingType,
    /// Last Entry is larger than `Hdr Ext Len / 2 - 1` (RFC 8754 section
    /// 4.3.1.1): the segment list does not fit in the header.
    LastEntryTooBig,
    /// Segments Left is larger than Last Entry + 1 (RFC 8754 section 4.3.1.1).
    SegmentsLeftTooBig,
    /// A TLV's length runs past the end of the header, or the TLV area ends
    /// in the middle of a type/length pair.
    BadTlvLength,
    /// Strict checks only: a Pad1/PadN holds a nonzero byte, or a PadN is
    /// longer than 5 octets.
    BadPadding,
    /// An HMAC TLV too short to hold its key id, or whose HMAC is not a
    /// multiple of 8 octets of at most 32.
    BadHmacTlv,
    /// Policy requires an HMAC and the SRH has no HMAC TLV.
    HmacMissing,
    /// The HMAC key id is not in the key table (key id 0 included).
    HmacUnknownKey,
    /// The HMAC does not match the one computed with the configured key.
    HmacMismatch,
    /// The HMAC destination check of RFC 8754 section 2.1.2.1 failed: the
    /// D flag is clear and the IPv6 destination is not Segment List\[SL\].
    HmacDestination,
}

impl SrhError {
    /// Every variant, in declaration order (to register counters).
    pub const ALL: [SrhError; 11] = [
        SrhError::Truncated,
        SrhError::BadRoutingType,
        SrhError::LastEntryTooBig,
        SrhError::SegmentsLeftTooBig,
        SrhError::BadTlvLength,
        SrhError::BadPadding,
        SrhError::BadHmacTlv,
        SrhError::HmacMissing,
        SrhError::HmacUnknownKey,
        SrhError::HmacMismatch,
        SrhError::HmacDestination,
    ];

    /// Stable counter name.
    pub const fn name(self) -> &'static str {
        match self {
            SrhError::Truncated => "srh truncated",
            SrhError::BadRoutingType => "srh routing type not 4",
            SrhError::LastEntryTooBig => "srh last entry beyond header length",
            SrhError::SegmentsLeftTooBig => "srh segments left beyond last entry + 1",
            SrhError::BadTlvLength => "srh tlv length overruns header",
            SrhError::BadPadding => "srh padding not zero",
            SrhError::BadHmacTlv => "srh hmac tlv malformed",
            SrhError::HmacMissing => "srh hmac missing",
            SrhError::HmacUnknownKey => "srh hmac key id unknown",
            SrhError::HmacMismatch => "srh hmac mismatch",
            SrhError::HmacDestination => "srh hmac destination check failed",
        }
    }
}

impl fmt::Display for SrhError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for SrhError {}

/// A view of one Segment Routing Header.
///
/// Built with [`Srh::new_checked`] every getter is panic-free and the
/// segment list and TLV area are known to fit; with [`Srh::new_unchecked`]
/// the fixed-field getters panic on a buffer shorter than 8 bytes and the
/// slice getters on one shorter than the header length. `check_len`,
/// `validate`, `validate_strict`, `segment`, `segment_bytes`, `tlvs` and
/// `Display` never panic, whatever the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Srh<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Srh<T> {
    /// Length of the fixed part (before the segment list).
    pub const FIXED_LEN: usize = 8;
    /// Largest SRH: Hdr Ext Len 255.
    pub const MAX_LEN: usize = 2048;

    /// Wraps `buffer` without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Srh { buffer }
    }

    /// Wraps `buffer` after [`Self::validate`]. `buffer` may extend past
    /// the header (the rest is the payload).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, SrhError> {
        let s = Self::new_unchecked(buffer);
        s.validate()?;
        Ok(s)
    }

    /// `Err(Truncated)` unless the fixed part and the whole header (per
    /// Hdr Ext Len) are present.
    #[inline]
    pub fn check_len(&self) -> Result<(), SrhError> {
        let b = self.buffer.as_ref();
        if b.len() < Self::FIXED_LEN || b.len() < self.header_len() {
            return Err(SrhError::Truncated);
        }
        Ok(())
    }

    /// The checks of RFC 8754 section 4.3.1.1 and Linux's
    /// `seg6_validate_srh`, in this order: the header fits (`Truncated`),
    /// Routing Type is 4 (`BadRoutingType`), Last Entry fits in Hdr Ext Len
    /// (`LastEntryTooBig`), Segments Left <= Last Entry + 1
    /// (`SegmentsLeftTooBig`, which admits the reduced SRH of H.Encaps.Red),
    /// and the TLVs tile the rest of the header exactly (`BadTlvLength`,
    /// `BadHmacTlv`). Padding contents are not checked (RFC 8754: ignored
    /// on receipt); see [`Self::validate_strict`].
    pub fn validate(&self) -> Result<(), SrhError> {
        self.check_len()?;
        if self.routing_type() != ROUTING_TYPE_SRH {
            return Err(SrhError::BadRoutingType);
        }
        // max_last_entry = Hdr Ext Len / 2 - 1; Hdr Ext Len < 2 leaves no
        // room for even one segment.
        let hel = usize::from(self.hdr_ext_len());
        let le = usize::from(self.last_entry());
        if hel < 2 || le > hel / 2 - 1 {
            return Err(SrhError::LastEntryTooBig);
        }
        if usize::from(self.segments_left()) > le + 1 {
            return Err(SrhError::SegmentsLeftTooBig);
        }
        for tlv in self.tlvs() {
            tlv?;
        }
        Ok(())
    }

    /// [`Self::validate`] plus: Pad1/PadN contents are zero and PadN is at
    /// most 5 octets long (`BadPadding`), and an HMAC TLV's HMAC is a
    /// multiple of 8 octets, at most 32 (`BadHmacTlv`).
    pub fn validate_strict(&self) -> Result<(), SrhError> {
        self.validate()?;
        for tlv in self.tlvs() {
            match tlv? {
                Tlv::PadN(pad) if pad.len() > 5 || pad.iter().any(|&b| b != 0) => return Err(SrhError::BadPadding),
                Tlv::Hmac(h) if h.hmac.len() > 32 || !h.hmac.len().is_multiple_of(8) => {
                    return Err(SrhError::BadHmacTlv)
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Type of the header after the SRH.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Length in 8-octet units, not counting the first 8 octets.
    #[inline]
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[field::HDR_EXT_LEN]
    }

    /// Header length in bytes, `(Hdr Ext Len + 1) * 8`.
    #[inline]
    pub fn header_len(&self) -> usize {
        (usize::from(self.hdr_ext_len()) + 1) * 8
    }

    /// Routing Type (4 for a valid SRH).
    #[inline]
    pub fn routing_type(&self) -> u8 {
        self.buffer.as_ref()[field::ROUTING_TYPE]
    }

    /// Segments Left.
    #[inline]
    pub fn segments_left(&self) -> u8 {
        self.buffer.as_ref()[field::SEGMENTS_LEFT]
    }

    /// Last Entry: index of the last element of the segment list.
    #[inline]
    pub fn last_entry(&self) -> u8 {
        self.buffer.as_ref()[field::LAST_ENTRY]
    }

    /// Flags octet ([`srh_flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Tag.
    #[inline]
    pub fn tag(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TAG)
    }

    /// Number of addresses in the segment list, `Last Entry + 1`.
    #[inline]
    pub fn segment_count(&self) -> usize {
        usize::from(self.last_entry()) + 1
    }

    /// Segment List\[`index`\] as raw bytes, or `None` past Last Entry or past
    /// the buffer. Never panics.
    #[inline]
    pub fn segment_bytes(&self, index: usize) -> Option<[u8; 16]> {
        let last_entry = *self.buffer.as_ref().get(field::LAST_ENTRY)?;
        if index > usize::from(last_entry) {
            return None;
        }
        let at = field::SEGMENTS + 16 * index;
        let b = self.buffer.as_ref().get(at..at + 16)?;
        Some(read_array(b, 0))
    }

    /// Segment List\[`index`\], or `None` past Last Entry or past the buffer.
    #[inline]
    pub fn segment(&self, index: usize) -> Option<Ipv6Addr> {
        self.segment_bytes(index).map(Ipv6Addr::from)
    }

    /// The whole segment list, Segment List\[0\] first.
    #[inline]
    pub fn segments(&self) -> &[[u8; 16]] {
        let end = field::SEGMENTS + 16 * self.segment_count();
        let (chunks, _) = self.buffer.as_ref()[field::SEGMENTS..end].as_chunks::<16>();
        chunks
    }

    /// Offset of the TLV area from the start of the SRH.
    #[inline]
    pub fn tlv_offset(&self) -> usize {
        field::SEGMENTS + 16 * self.segment_count()
    }

    /// The TLV area: from the end of the segment list to the header end.
    #[inline]
    pub fn tlv_area(&self) -> &[u8] {
        &self.buffer.as_ref()[self.tlv_offset()..self.header_len()]
    }

    /// Iterates the TLVs. Never panics: on a view whose header or segment
    /// list does not fit the buffer it yields `Err(Truncated)` once.
    #[inline]
    pub fn tlvs(&self) -> TlvIter<'_> {
        let b = self.buffer.as_ref();
        let (Some(&hel), Some(&le)) = (b.get(field::HDR_EXT_LEN), b.get(field::LAST_ENTRY)) else {
            return TlvIter { data: &[], offset: 0, failed: Some(SrhError::Truncated) };
        };
        let start = field::SEGMENTS + 16 * (usize::from(le) + 1);
        let end = (usize::from(hel) + 1) * 8;
        match b.get(start..end) {
            Some(area) => TlvIter { data: area, offset: start, failed: None },
            None => TlvIter { data: &[], offset: start, failed: Some(SrhError::Truncated) },
        }
    }

    /// The first HMAC TLV, if any (TLV errors are reported).
    pub fn hmac_tlv(&self) -> Result<Option<HmacTlv<'_>>, SrhError> {
        for tlv in self.tlvs() {
            if let Tlv::Hmac(h) = tlv? {
                return Ok(Some(h));
            }
        }
        Ok(None)
    }

    /// The header bytes (fixed part, segments, TLVs).
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Srh<T> {
    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Sets Hdr Ext Len.
    #[inline]
    pub fn set_hdr_ext_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HDR_EXT_LEN] = v;
    }

    /// Sets the Routing Type.
    #[inline]
    pub fn set_routing_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::ROUTING_TYPE] = v;
    }

    /// Sets Segments Left.
    #[inline]
    pub fn set_segments_left(&mut self, v: u8) {
        self.buffer.as_mut()[field::SEGMENTS_LEFT] = v;
    }

    /// Sets Last Entry.
    #[inline]
    pub fn set_last_entry(&mut self, v: u8) {
        self.buffer.as_mut()[field::LAST_ENTRY] = v;
    }

    /// Sets the flags.
    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }

    /// Sets the tag.
    #[inline]
    pub fn set_tag(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::TAG, v);
    }

    /// Writes Segment List\[`index`\]; panics if it is outside the buffer.
    #[inline]
    pub fn set_segment(&mut self, index: usize, addr: Ipv6Addr) {
        let at = field::SEGMENTS + 16 * index;
        self.buffer.as_mut()[at..at + 16].copy_from_slice(&addr.octets());
    }

    /// Mutable TLV area.
    #[inline]
    pub fn tlv_area_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.tlv_offset(), self.header_len());
        &mut self.buffer.as_mut()[start..end]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Srh<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.buffer.as_ref().len() < Self::FIXED_LEN {
            return f.write_str("SRH (truncated)");
        }
        write!(
            f,
            "SRH nh={} sl={} le={} flags={:#04x} tag={} segs=[",
            self.next_header(),
            self.segments_left(),
            self.last_entry(),
            self.flags(),
            self.tag()
        )?;
        for i in 0..self.segment_count() {
            match self.segment(i) {
                Some(a) if i == 0 => write!(f, "{a}")?,
                Some(a) => write!(f, ", {a}")?,
                None => {
                    f.write_str(", ..")?;
                    break;
                }
            }
        }
        f.write_str("]")
    }
}

/// One SRH TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tlv<'a> {
    /// Pad1 (type 0, a single octet).
    Pad1,
    /// PadN (type 4) and its padding bytes.
    PadN(&'a [u8]),
    /// HMAC (type 5).
    Hmac(HmacTlv<'a>),
    /// Any other type, ignored on receipt (RFC 8754 section 2.1).
    Other {
        /// TLV type.
        kind: u8,
        /// The value (Length octets).
        data: &'a [u8],
    },
}

/// An HMAC TLV (RFC 8754 section 2.1.2):
///
/// ```text
/// | Type = 5 | Length | D | Reserved (15) | HMAC Key ID (32) | HMAC (Length - 6) |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HmacTlv<'a> {
    /// Offset of the TLV's type octet from the start of the SRH.
    pub offset: usize,
    /// D flag: destination address verification disabled (reduced SRH).
    pub d_flag: bool,
    /// HMAC Key ID.
    pub key_id: u32,
    /// The HMAC field (32 octets for HMAC-SHA256).
    pub hmac: &'a [u8],
}

/// Iterator over the TLVs of an SRH ([`Srh::tlvs`]). A TLV that runs past
/// the header yields `Err(BadTlvLength)` (an HMAC TLV too short for its key
/// id `Err(BadHmacTlv)`), after which the iterator is done.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    data: &'a [u8],
    offset: usize,
    failed: Option<SrhError>,
}

impl<'a> TlvIter<'a> {
    /// Walks a raw TLV area whose first byte sits `offset` bytes into the SRH.
    pub fn new(area: &'a [u8], offset: usize) -> Self {
        TlvIter { data: area, offset, failed: None }
    }

    fn fail(&mut self, e: SrhError) -> Option<Result<Tlv<'a>, SrhError>> {
        self.data = &[];
        Some(Err(e))
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, SrhError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        let (&kind, rest) = self.data.split_first()?;
        let at = self.offset;
        if kind == tlv_type::PAD1 {
            self.data = rest;
            self.offset += 1;
            return Some(Ok(Tlv::Pad1));
        }
        let Some((&len, rest)) = rest.split_first() else {
            return self.fail(SrhError::BadTlvLength);
        };
        let len = usize::from(len);
        let Some(value) = rest.get(..len) else {
            return self.fail(SrhError::BadTlvLength);
        };
        self.data = &rest[len..];
        self.offset += 2 + len;
        Some(Ok(match kind {
            tlv_type::PADN => Tlv::PadN(value),
            tlv_type::HMAC => {
                if len < 6 {
                    return self.fail(SrhError::BadHmacTlv);
                }
                Tlv::Hmac(HmacTlv {
                    offset: at,
                    d_flag: value[0] & 0x80 != 0,
                    key_id: read_u32(value, 2),
                    hmac: &value[6..],
                })
            }
            _ => Tlv::Other { kind, data: value },
        }))
    }
}

impl core::iter::FusedIterator for TlvIter<'_> {}

/// Why an [`SrhRepr`] could not be emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReprError {
    /// The segment list is empty.
    NoSegments,
    /// More segments, or TLV bytes, than fit in 2048 bytes (Hdr Ext Len 255).
    TooLong,
    /// Segments Left exceeds the number of segments (Last Entry + 1).
    SegmentsLeftTooBig,
    /// The TLV bytes do not make the header a multiple of 8 octets.
    TlvsMisaligned,
    /// The output buffer is shorter than [`SrhRepr::header_len`].
    BufferTooSmall,
}

impl fmt::Display for ReprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReprError::NoSegments => "empty segment list",
            ReprError::TooLong => "SRH longer than 2048 bytes",
            ReprError::SegmentsLeftTooBig => "segments left beyond the segment list",
            ReprError::TlvsMisaligned => "SRH length not a multiple of 8",
            ReprError::BufferTooSmall => "buffer too small for the SRH",
        })
    }
}

impl std::error::Error for ReprError {}

/// A high-level SRH: fields plus borrowed segment list and TLV bytes.
/// Last Entry and Hdr Ext Len are derived from the lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrhRepr<'a> {
    /// Next header after the SRH.
    pub next_header: u8,
    /// Segments Left.
    pub segments_left: u8,
    /// Flags.
    pub flags: u8,
    /// Tag.
    pub tag: u16,
    /// Segment List\[0..\], i.e. the LAST segment of the path first.
    pub segments: &'a [[u8; 16]],
    /// The encoded TLV area (padding included), copied verbatim.
    pub tlvs: &'a [u8],
}

impl<'a> SrhRepr<'a> {
    /// Parses (and [validates](Srh::validate)) the SRH at the start of `buf`.
    pub fn parse(buf: &'a [u8]) -> Result<Self, SrhError> {
        let srh = Srh::new_checked(buf)?;
        let seg_end = srh.tlv_offset();
        let hdr_end = srh.header_len();
        let (segments, _) = buf[field::SEGMENTS..seg_end].as_chunks::<16>();
        Ok(SrhRepr {
            next_header: srh.next_header(),
            segments_left: srh.segments_left(),
            flags: srh.flags(),
            tag: srh.tag(),
            segments,
            tlvs: &buf[seg_end..hdr_end],
        })
    }

    /// Length of the emitted header.
    #[inline]
    pub const fn header_len(&self) -> usize {
        Srh::<&[u8]>::FIXED_LEN + 16 * self.segments.len() + self.tlvs.len()
    }

    /// Last Entry the header will carry (`segments.len() - 1`).
    #[inline]
    pub fn last_entry(&self) -> u8 {
        self.segments.len().saturating_sub(1) as u8
    }

    /// Checks what [`Self::emit`] checks, without writing.
    pub fn check(&self) -> Result<(), ReprError> {
        if self.segments.is_empty() {
            return Err(ReprError::NoSegments);
        }
        let len = self.header_len();
        if len > Srh::<&[u8]>::MAX_LEN {
            return Err(ReprError::TooLong);
        }
        if usize::from(self.segments_left) > self.segments.len() {
            return Err(ReprError::SegmentsLeftTooBig);
        }
        if !len.is_multiple_of(8) {
            return Err(ReprError::TlvsMisaligned);
        }
        Ok(())
    }

    /// Writes the header into the start of `buf` and returns its length.
    /// Nothing is written on error.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ReprError> {
        self.check()?;
        let len = self.header_len();
        let out = buf.get_mut(..len).ok_or(ReprError::BufferTooSmall)?;
        out[field::NEXT_HEADER] = self.next_header;
        out[field::HDR_EXT_LEN] = (len / 8 - 1) as u8;
        out[field::ROUTING_TYPE] = ROUTING_TYPE_SRH;
        out[field::SEGMENTS_LEFT] = self.segments_left;
        out[field::LAST_ENTRY] = self.last_entry();
        out[field::FLAGS] = self.flags;
        write_u16(out, field::TAG, self.tag);
        let mut at = field::SEGMENTS;
        for s in self.segments {
            out[at..at + 16].copy_from_slice(s);
            at += 16;
        }
        out[at..].copy_from_slice(self.tlvs);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // Generated once with Debian scapy 2.5.0 (/usr/bin/python3):
    //   bytes(IPv6ExtHdrSegmentRouting(nh=17, addresses=['fc00:3::',
    //         'fc00:2::', 'fc00:1::'], segleft=1, tag=0x1234, oam=1)).hex()
    // (scapy fills len = 6 and lastentry = 2).
    const SCAPY_SRH3: &str = "1106040102201234 fc000003000000000000000000000000 \
                              fc000002000000000000000000000000 fc000001000000000000000000000000";

    // scapy 2.5.0's IPv6ExtHdrSegmentRoutingTLVHMAC encodes Length in two
    // octets (a scapy bug), so this one uses the generic TLV with the
    // length given by hand:
    //   t = IPv6ExtHdrSegmentRoutingTLV(type=5, len=38,
    //         value=b'\x80\x00' + struct.pack('>I', 7) + bytes(range(32)))
    //   bytes(IPv6ExtHdrSegmentRouting(nh=41, addresses=['fc00::1'],
    //         segleft=0, tlv_objects=[t])).hex()
    const SCAPY_SRH_HMAC: &str = "2907040000000000 fc000000000000000000000000000001 \
        05268000 00000007 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn parse_scapy_srh() {
        let b = hex(SCAPY_SRH3);
        let s = Srh::new_checked(&b[..]).unwrap();
        assert_eq!((s.next_header(), s.hdr_ext_len(), s.header_len(), s.routing_type()), (17, 6, 56, 4));
        assert_eq!((s.segments_left(), s.last_entry(), s.flags(), s.tag()), (1, 2, srh_flags::OAM, 0x1234));
        assert_eq!(s.segment_count(), 3);
        assert_eq!(s.segment(0), Some(a("fc00:3::")));
        assert_eq!(s.segment(2), Some(a("fc00:1::")));
        assert_eq!(s.segment(3), None);
        assert_eq!(s.segments().len(), 3);
        assert_eq!(s.segments()[1], a("fc00:2::").octets());
        assert!(s.tlv_area().is_empty() && s.payload().is_empty());
        assert_eq!(s.tlvs().count(), 0);
        assert_eq!(s.to_string(), "SRH nh=17 sl=1 le=2 flags=0x20 tag=4660 segs=[fc00:3::, fc00:2::, fc00:1::]");
        let r = SrhRepr::parse(&b).unwrap();
        assert_eq!(r.last_entry(), 2);
        let mut out = [0u8; 56];
        assert_eq!(r.emit(&mut out), Ok(56));
        assert_eq!(out[..], b[..]);
    }

    #[test]
    fn parse_scapy_hmac_tlv() {
        let b = hex(SCAPY_SRH_HMAC);
        assert_eq!(b.len(), 64);
        let s = Srh::new_checked(&b[..]).unwrap();
        s.validate_strict().unwrap();
        let h = s.hmac_tlv().unwrap().unwrap();
        assert_eq!((h.offset, h.d_flag, h.key_id), (24, true, 7));
        assert_eq!(h.hmac, &(0u8..32).collect::<Vec<_>>()[..]);
        let tlvs: Vec<_> = s.tlvs().collect();
        assert_eq!(tlvs, vec![Ok(Tlv::Hmac(h))]);
        let r = SrhRepr::parse(&b).unwrap();
        assert_eq!(r.tlvs.len(), 40);
        let mut out = [0u8; 64];
        r.emit(&mut out).unwrap();
        assert_eq!(out[..], b[..]);
    }

    fn srh_with(segs: usize, sl: u8, tlvs: &[u8]) -> Vec<u8> {
        let list: Vec<[u8; 16]> = (0..segs).map(|i| a(&format!("fc00::{}", i + 1)).octets()).collect();
        let r = SrhRepr { next_header: 59, segments_left: sl, flags: 0, tag: 0, segments: &list, tlvs };
        let mut out = vec![0u8; r.header_len()];
        r.emit(&mut out).unwrap();
        out
    }

    #[test]
    fn tlv_kinds() {
        // Pad1, PadN(3), an unknown TLV (type 0x81, 1 byte): 1 + 5 + 3 = 9,
        // plus PadN(5) = 16.
        let tlvs = [0, 4, 3, 0, 0, 0, 0x81, 1, 0xee, 4, 5, 0, 0, 0, 0, 0];
        let b = srh_with(1, 0, &tlvs);
        let s = Srh::new_checked(&b[..]).unwrap();
        s.validate_strict().unwrap();
        let got: Vec<_> = s.tlvs().map(Result::unwrap).collect();
        assert_eq!(
            got,
            vec![
                Tlv::Pad1,
                Tlv::PadN(&[0, 0, 0]),
                Tlv::Other { kind: 0x81, data: &[0xee] },
                Tlv::PadN(&[0, 0, 0, 0, 0])
            ]
        );
        assert_eq!(s.hmac_tlv(), Ok(None));
    }

    #[test]
    fn validation_errors() {
        let good = srh_with(2, 1, &[]);
        assert!(Srh::new_checked(&good[..]).is_ok());
        let check = |b: &[u8]| Srh::new_checked(b).map(|_| ());
        assert_eq!(check(&good[..7]), Err(SrhError::Truncated));
        assert_eq!(check(&good[..39]), Err(SrhError::Truncated));
        let mut b = good.clone();
        b[2] = 0;
        assert_eq!(check(&b), Err(SrhError::BadRoutingType));
        let mut b = good.clone();
        b[4] = 2; // three entries in a header sized for two
        assert_eq!(check(&b), Err(SrhError::LastEntryTooBig));
        let mut b = good.clone();
        b[1] = 1; // Hdr Ext Len 1: no room for a segment
        b[4] = 0;
        assert_eq!(check(&b[..16]), Err(SrhError::LastEntryTooBig));
        let mut b = good.clone();
        b[3] = 2; // SL = LE + 1: a reduced SRH, allowed
        assert!(check(&b).is_ok());
        b[3] = 3;
        assert_eq!(check(&b), Err(SrhError::SegmentsLeftTooBig));
        // Hdr Ext Len 4 with Last Entry 0: 16 bytes of TLV area.
        let b = srh_with(1, 0, &[4, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(check(&b), Err(SrhError::BadTlvLength));
        let b = srh_with(1, 0, &[0, 0, 0, 0, 0, 0, 0, 4]); // ends inside a type/length
        assert_eq!(check(&b), Err(SrhError::BadTlvLength));
        let b = srh_with(1, 0, &[5, 4, 0, 0, 0, 0, 0, 0]);
        assert_eq!(check(&b), Err(SrhError::BadHmacTlv));
        let b = srh_with(1, 0, &[4, 6, 0, 0, 0, 0, 0, 1]);
        assert_eq!(Srh::new_checked(&b[..]).map(|_| ()), Ok(()));
        assert_eq!(Srh::new_checked(&b[..]).unwrap().validate_strict(), Err(SrhError::BadPadding));
        let b = srh_with(1, 0, &[5, 14, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(Srh::new_checked(&b[..]).unwrap().validate_strict().is_ok());
        let b = srh_with(1, 0, &[5, 10, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 4, 2, 0, 0]); // 4-octet HMAC
        assert_eq!(Srh::new_checked(&b[..]).unwrap().validate_strict(), Err(SrhError::BadHmacTlv));
    }

    #[test]
    fn unchecked_getters_do_not_overrun() {
        let good = srh_with(3, 1, &[]);
        let s = Srh::new_unchecked(&good[..30]);
        assert_eq!(s.segment(0), Some(a("fc00::1")));
        assert_eq!(s.segment(1), None);
        assert_eq!(s.tlvs().collect::<Vec<_>>(), vec![Err(SrhError::Truncated)]);
        assert_eq!(s.to_string(), "SRH nh=59 sl=1 le=2 flags=0x00 tag=0 segs=[fc00::1, ..]");
        let short = Srh::new_unchecked(&good[..3]);
        assert_eq!(short.to_string(), "SRH (truncated)");
        assert_eq!((short.segment(0), short.validate()), (None, Err(SrhError::Truncated)));
        assert_eq!(short.tlvs().count(), 1);
    }

    #[test]
    fn setters() {
        let mut b = srh_with(2, 1, &[]);
        let mut s = Srh::new_checked(&mut b[..]).unwrap();
        s.set_next_header(41);
        s.set_segments_left(0);
        s.set_flags(0x08);
        s.set_tag(7);
        s.set_segment(1, a("2001:db8::9"));
        s.set_last_entry(1);
        s.set_routing_type(4);
        s.set_hdr_ext_len(4);
        assert!(s.tlv_area_mut().is_empty());
        let s = Srh::new_checked(&b[..]).unwrap();
        assert_eq!((s.next_header(), s.segments_left(), s.flags(), s.tag()), (41, 0, 8, 7));
        assert_eq!(s.segment(1), Some(a("2001:db8::9")));
    }

    #[test]
    fn repr_errors() {
        let seg = [[0u8; 16]; 2];
        let r = SrhRepr { next_header: 0, segments_left: 0, flags: 0, tag: 0, segments: &[], tlvs: &[] };
        assert_eq!(r.emit(&mut [0u8; 64]), Err(ReprError::NoSegments));
        let r = SrhRepr { segments: &seg, segments_left: 3, ..r };
        assert_eq!(r.emit(&mut [0u8; 64]), Err(ReprError::SegmentsLeftTooBig));
        let r = SrhRepr { segments_left: 2, tlvs: &[0], ..r };
        assert_eq!(r.emit(&mut [0u8; 64]), Err(ReprError::TlvsMisaligned));
        let r = SrhRepr { tlvs: &[], ..r };
        assert_eq!(r.emit(&mut [0u8; 39]), Err(ReprError::BufferTooSmall));
        let many = vec![[0u8; 16]; 128];
        let r = SrhRepr { segments: &many, segments_left: 0, ..r };
        assert_eq!(r.emit(&mut [0u8; 4096]), Err(ReprError::TooLong));
        let many = vec![[0u8; 16]; 127];
        let r = SrhRepr { segments: &many, ..r };
        assert_eq!(r.emit(&mut [0u8; 4096]), Ok(2040));
        for e in SrhError::ALL {
            assert_eq!(e.to_string(), e.name());
        }
        let names: std::collections::HashSet<_> = SrhError::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), SrhError::ALL.len());
    }

    proptest::proptest! {
        #[test]
        fn parse_emit_round_trip(nseg in 1usize..20, sl in 0u8..21, flags: u8, tag: u16, nh: u8,
                                 seed: u8, tlv_units in 0usize..4) {
            let segs: Vec<[u8; 16]> = (0..nseg).map(|i| [seed.wrapping_add(i as u8); 16]).collect();
            // A TLV area of PadN TLVs, each filling 8 octets.
            let tlvs: Vec<u8> = (0..tlv_units).flat_map(|_| [4u8, 6, 0, 0, 0, 0, 0, 0]).collect();
            let r = SrhRepr { next_header: nh, segments_left: sl, flags, tag, segments: &segs, tlvs: &tlvs };
            let mut buf = vec![0u8; r.header_len() + 5];
            match r.emit(&mut buf) {
                Ok(n) => {
                    proptest::prop_assert!(usize::from(sl) <= nseg);
                    proptest::prop_assert_eq!(n, r.header_len());
                    proptest::prop_assert_eq!(SrhRepr::parse(&buf).unwrap(), r);
                    proptest::prop_assert_eq!(SrhRepr::parse(&buf[..n]).unwrap(), r);
                }
                Err(e) => proptest::prop_assert_eq!(e, ReprError::SegmentsLeftTooBig),
            }
        }

        #[test]
        fn any_bytes_never_panic(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let s = Srh::new_unchecked(&b[..]);
            let _ = s.validate_strict();
            let _ = s.to_string();
            let _ = s.tlvs().count();
            for i in 0..300 { let _ = s.segment(i); }
            if let Ok(s) = Srh::new_checked(&b[..]) {
                let _ = (s.segments(), s.tlv_area(), s.payload(), s.hmac_tlv());
                let r = SrhRepr::parse(&b).unwrap();
                let mut out = vec![0u8; r.header_len()];
                proptest::prop_assert_eq!(r.emit(&mut out), Ok(s.header_len()));
                proptest::prop_assert_eq!(&out[..], s.header());
            }
        }
    }
}
