//! SRv6 behaviours as functions over a packet in a buffer.
//!
//! Every function takes the buffer, the offset `start` of the packet in it
//! and its length `len`. The bytes before `start` are headroom: the
//! encapsulating behaviours write their headers there and report the new
//! start; the decapsulating ones report where the inner packet begins. No
//! function allocates, panics or reads outside `buf[start..start + len]`
//! (plus the headroom it writes), whatever the bytes.
//!
//! The result is an [`Outcome`]: forward the (rewritten) IPv6 packet,
//! forward the decapsulated inner packet, hand it to the local stack, or
//! drop it — with the name of the error counter and, where the RFCs ask for
//! one, the ICMP error to send. When the outcome is a drop the packet bytes
//! are as they were received, so the ICMP error can quote them.
//!
//! | behaviour | function | RFC |
//! |---|---|---|
//! | End, End.X, End.T (+ PSP, USP, USD, NEXT-C-SID) | [`end`], [`end_x`], [`end_t`] | RFC 8986 4.1-4.3, 4.16; RFC 9800 |
//! | End.DX2, End.DX4, End.DX6 | [`end_dx2`], [`end_dx4`], [`end_dx6`] | RFC 8986 4.4, 4.5, 4.9 |
//! | End.DT4, End.DT6, End.DT46 | [`end_dt4`], [`end_dt6`], [`end_dt46`] | RFC 8986 4.6-4.8 |
//! | End.B6.Encaps, End.B6.Encaps.Red | [`end_b6_encaps`], [`end_b6_encaps_red`] | RFC 8986 4.13, 4.14 |
//! | H.Encaps, .Red, .L2, .L2.Red | [`h_encaps`], [`h_encaps_red`], [`h_encaps_l2`], [`h_encaps_l2_red`] | RFC 8986 5.1-5.4 |
//! | End.AS, End.AD, End.AM | [`end_as`], [`end_ad`], [`end_am`] and their `_return` halves | draft-ietf-spring-sr-service-programming 6 |

use core::fmt;
use core::net::Ipv6Addr;
use core::ops::Range;

use crate::field::{read_array, read_u16};
use crate::hmac::{self, HmacKeyTable, HmacPolicy};
use crate::srh::{Srh, SrhError, ROUTING_TYPE_SRH, SEGMENTS_LEFT_OFFSET};

mod decap;
mod endpoint;
mod headend;
mod proxy;

pub use decap::{end_dt4, end_dt46, end_dt6, end_dx2, end_dx4, end_dx6};
pub use endpoint::{end, end_t, end_x, CsidError, CsidFormat};
pub use headend::{
    end_b6_encaps, end_b6_encaps_red, h_encaps, h_encaps_l2, h_encaps_l2_red, h_encaps_red, EncapParams, EncapTemplate,
    FlowLabel, HopLimit, TemplateError, TrafficClass, DEFAULT_HOP_LIMIT, MAX_ENCAP_LEN, MAX_SEGMENTS,
};
pub use proxy::{
    end_ad, end_ad_in_place, end_ad_return, end_am, end_am_return, end_as, end_as_return, DynamicProxy,
    DynamicProxyCache, StaticProxy, AD_CACHE_LEN,
};

/// IP protocol numbers used here.
pub mod proto {
    /// IPv6 Hop-by-Hop Options.
    pub const HOPOPT: u8 = 0;
    /// IPv4 in IP (IPv4 inner packet).
    pub const IPV4: u8 = 4;
    /// IPv6 in IP (IPv6 inner packet).
    pub const IPV6: u8 = 41;
    /// IPv6 Routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication Header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 Destination Options.
    pub const DSTOPTS: u8 = 60;
    /// Ethernet (RFC 8986 section 10.1).
    pub const ETHERNET: u8 = 143;
}

/// Where a packet sits in its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Length in bytes.
    pub len: usize,
}

impl Span {
    /// `start..start + len`.
    #[inline]
    pub fn range(&self) -> Range<usize> {
        self.start..self.start + self.len
    }
}

/// What kind of packet a decapsulation exposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Inner {
    /// An IPv4 packet.
    Ipv4,
    /// An IPv6 packet.
    Ipv6,
    /// An Ethernet frame without preamble and FCS.
    Ethernet,
}

impl Inner {
    /// The Next Header value that announces it (4, 41, 143).
    #[inline]
    pub const fn protocol(self) -> u8 {
        match self {
            Inner::Ipv4 => proto::IPV4,
            Inner::Ipv6 => proto::IPV6,
            Inner::Ethernet => proto::ETHERNET,
        }
    }
}

/// Where the packet goes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Next {
    /// Look the destination up in the FIB the packet arrived with.
    Lookup,
    /// Look the destination up in this FIB table (End.T, End.DT*).
    Table(u32),
    /// Send to this adjacency without a lookup (End.X, End.DX4/6, proxies).
    Adjacency(u32),
    /// Send out of this interface as is (End.DX2, L2 proxies).
    Interface(u32),
}

/// ICMP errors the behaviours ask the caller to send to the packet's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcmpError {
    /// ICMPv6 Time Exceeded, code 0 (hop limit exceeded in transit).
    HopLimitExceeded,
    /// ICMPv6 Parameter Problem with this code ([`param_problem`]) and
    /// pointer (octets from the start of the IPv6 header).
    ParameterProblem {
        /// Code.
        code: u8,
        /// Offset of the offending field in the packet.
        pointer: u32,
    },
    /// ICMPv4 Time Exceeded, code 0: a headend found the TTL of the IPv4
    /// packet it was about to encapsulate expired.
    TtlExceededV4,
}

/// ICMPv6 Parameter Problem codes.
pub mod param_problem {
    /// Erroneous header field encountered (RFC 4443).
    pub const ERRONEOUS_HEADER_FIELD: u8 = 0;
    /// SR Upper-layer Header Error (RFC 8754 section 4.3.1.2).
    pub const SR_UPPER_LAYER_HEADER: u8 = 4;
}

/// Why a packet was dropped. [`DropReason::name`] is the stable name of the
/// error counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// `start + len` is outside the buffer.
    BadSpan,
    /// Shorter than an IPv6 header, or the version is not 6.
    NotIpv6,
    /// The IPv6 payload length runs past the packet.
    BadPayloadLength,
    /// An extension header runs past the payload, a Hop-by-Hop header is not
    /// first, or there are more than eight.
    BadExtHeaders,
    /// A Routing header of a type other than 4 with Segments Left > 0.
    UnknownRoutingType,
    /// The SRH failed validation or the HMAC check.
    Srh(SrhError),
    /// The hop limit would expire here.
    HopLimitExceeded,
    /// A final-segment behaviour (End.DX*, End.DT*) saw Segments Left > 0.
    SegmentsLeftNotZero,
    /// A behaviour that needs a next segment (End.AD, End.AM) saw
    /// Segments Left = 0.
    SegmentsLeftZero,
    /// A behaviour that needs an SRH found none.
    NoSrh,
    /// The upper-layer header is not one the SID processes (RFC 8986
    /// section 4.1.1).
    UpperLayerNotAllowed,
    /// The packet to decapsulate is a fragment.
    OuterFragment,
    /// The exposed or carried inner packet is too short or of the wrong
    /// IP version for its Next Header value.
    InnerMalformed,
    /// A headend was given something that is neither IPv4 nor IPv6.
    NotIp,
    /// The TTL or hop limit of the packet a headend encapsulates would
    /// expire.
    InnerTtlExceeded,
    /// Not enough headroom before `start` for the headers to push.
    NoHeadroom,
    /// The encapsulated packet would exceed 65535 bytes of payload.
    TooBig,
    /// The encapsulation template does not match the behaviour (e.g. an L2
    /// template given to H.Encaps, a non-reduced one to H.Encaps.Red).
    TemplateMismatch,
    /// End.AD return traffic arrived before any headers were cached.
    ProxyCacheEmpty,
    /// End.AD: the outer headers are longer than the cache.
    ProxyCacheTooSmall,
    /// Proxy return traffic is not of the proxy's inner type.
    ProxyInnerType,
}

impl DropReason {
    /// Every reason, SRH errors included (to register counters).
    pub const ALL: [DropReason; 31] = [
        DropReason::BadSpan,
        DropReason::NotIpv6,
        DropReason::BadPayloadLength,
        DropReason::BadExtHeaders,
        DropReason::UnknownRoutingType,
        DropReason::Srh(SrhError::Truncated),
        DropReason::Srh(SrhError::BadRoutingType),
        DropReason::Srh(SrhError::LastEntryTooBig),
        DropReason::Srh(SrhError::SegmentsLeftTooBig),
        DropReason::Srh(SrhError::BadTlvLength),
        DropReason::Srh(SrhError::BadPadding),
        DropReason::Srh(SrhError::BadHmacTlv),
        DropReason::Srh(SrhError::HmacMissing),
        DropReason::Srh(SrhError::HmacUnknownKey),
        DropReason::Srh(SrhError::HmacMismatch),
        DropReason::Srh(SrhError::HmacDestination),
        DropReason::HopLimitExceeded,
        DropReason::SegmentsLeftNotZero,
        DropReason::SegmentsLeftZero,
        DropReason::NoSrh,
        DropReason::UpperLayerNotAllowed,
        DropReason::OuterFragment,
        DropReason::InnerMalformed,
        DropReason::NotIp,
        DropReason::InnerTtlExceeded,
        DropReason::NoHeadroom,
        DropReason::TooBig,
        DropReason::TemplateMismatch,
        DropReason::ProxyCacheEmpty,
        DropReason::ProxyCacheTooSmall,
        DropReason::ProxyInnerType,
    ];

    /// Stable counter name.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::BadSpan => "packet span outside buffer",
            DropReason::NotIpv6 => "not an ipv6 packet",
            DropReason::BadPayloadLength => "ipv6 payload length beyond packet",
            DropReason::BadExtHeaders => "ipv6 extension headers malformed",
            DropReason::UnknownRoutingType => "unknown routing header type",
            DropReason::Srh(e) => e.name(),
            DropReason::HopLimitExceeded => "hop limit exceeded",
            DropReason::SegmentsLeftNotZero => "segments left not zero at final sid",
            DropReason::SegmentsLeftZero => "segments left zero at non-final sid",
            DropReason::NoSrh => "no srh",
            DropReason::UpperLayerNotAllowed => "upper-layer header not allowed",
            DropReason::OuterFragment => "outer packet is a fragment",
            DropReason::InnerMalformed => "inner packet malformed",
            DropReason::NotIp => "not an ip packet",
            DropReason::InnerTtlExceeded => "inner ttl exceeded at headend",
            DropReason::NoHeadroom => "no headroom for encapsulation",
            DropReason::TooBig => "encapsulated packet too big",
            DropReason::TemplateMismatch => "encap template does not match behaviour",
            DropReason::ProxyCacheEmpty => "proxy cache empty",
            DropReason::ProxyCacheTooSmall => "proxy headers too long to cache",
            DropReason::ProxyInnerType => "proxy return packet of wrong type",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the caller does with the packet after a behaviour ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The packet at `span` is an IPv6 packet (its destination rewritten,
    /// headers pushed or popped as the behaviour says) going to `dst`.
    Forward {
        /// The IPv6 packet.
        span: Span,
        /// Its destination address now.
        dst: Ipv6Addr,
        /// Lookup or adjacency.
        next: Next,
    },
    /// The outer IPv6 header and all its extension headers are gone; the
    /// inner packet is at `span`.
    Decap {
        /// The inner packet.
        span: Span,
        /// Its kind.
        inner: Inner,
        /// Lookup table, adjacency or interface.
        next: Next,
    },
    /// Give the packet to the local stack: its upper-layer header (type
    /// `protocol`, e.g. ICMPv6 for a ping to the SID) is allowed by
    /// [`EndOpts::local_upper`].
    Local {
        /// The IPv6 packet.
        span: Span,
        /// The upper-layer protocol.
        protocol: u8,
        /// Offset of the upper-layer header from `span.start`.
        offset: usize,
    },
    /// Drop the packet and count it under `reason.name()`; if `icmp` is set,
    /// send that error to the packet's source.
    Drop {
        /// Counter.
        reason: DropReason,
        /// ICMP error to send, if any.
        icmp: Option<IcmpError>,
    },
}

impl Outcome {
    /// A drop without ICMP.
    #[inline]
    pub const fn drop(reason: DropReason) -> Outcome {
        Outcome::Drop { reason, icmp: None }
    }

    /// The drop reason, if this is a drop.
    #[inline]
    pub fn drop_reason(&self) -> Option<DropReason> {
        match self {
            Outcome::Drop { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

/// A set of IP protocol numbers (256-bit bitmap).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UpperSet([u64; 4]);

impl UpperSet {
    /// No protocol.
    pub const EMPTY: UpperSet = UpperSet([0; 4]);
    /// Only ICMPv6 (answer pings to SIDs, RFC 8986 section 4.1.1).
    pub const ICMPV6: UpperSet = UpperSet::EMPTY.with(proto::ICMPV6);

    /// This set plus `protocol`.
    #[inline]
    pub const fn with(self, protocol: u8) -> UpperSet {
        let mut w = self.0;
        w[(protocol >> 6) as usize] |= 1 << (protocol & 63);
        UpperSet(w)
    }

    /// True if `protocol` is in the set.
    #[inline]
    pub const fn contains(&self, protocol: u8) -> bool {
        self.0[(protocol >> 6) as usize] & (1 << (protocol & 63)) != 0
    }
}

/// RFC 8986 section 4.16 flavors and RFC 9800 NEXT-C-SID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flavors {
    /// Penultimate Segment Pop: remove the SRH when Segments Left becomes 0.
    pub psp: bool,
    /// Ultimate Segment Pop: remove the SRH when it arrives with Segments
    /// Left 0, then process the next header.
    pub usp: bool,
    /// Ultimate Segment Decapsulation: with Segments Left 0 (or no SRH) and
    /// an IPv4/IPv6 inner packet, remove the outer headers and forward it.
    pub usd: bool,
    /// NEXT-C-SID: compressed SIDs carried in the destination's argument.
    pub next_csid: Option<CsidFormat>,
}

/// How an HMAC is checked: the keys and the policy.
#[derive(Clone, Copy, Debug)]
pub struct HmacCheck<'k> {
    /// Key table.
    pub keys: &'k HmacKeyTable,
    /// When and how to check.
    pub policy: HmacPolicy,
}

/// Options common to the endpoint behaviours (the SID's configuration).
#[derive(Clone, Copy, Debug, Default)]
pub struct EndOpts<'k> {
    /// Flavors (End, End.X, End.T only; ignored elsewhere).
    pub flavors: Flavors,
    /// Upper-layer protocols handed to the local stack when the SID is the
    /// packet's final destination; everything else gets ICMP Parameter
    /// Problem code 4 (RFC 8986 section 4.1.1).
    pub local_upper: UpperSet,
    /// HMAC verification of the SRH, if any.
    pub hmac: Option<HmacCheck<'k>>,
}

// ---------------------------------------------------------------------------
// Shared parsing.

const IPV6_HDR: usize = 40;
const MAX_EXT_HEADERS: usize = 8;

/// Offsets in the fixed IPv6 header.
mod ip6 {
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// The SRH of a packet: offset and length, and where the Next Header field
/// that announces it lives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SrhAt {
    pub off: usize,
    pub len: usize,
    pub nh_off: usize,
}

/// What [`parse`] found in an IPv6 packet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Parsed {
    /// 40 + payload length (link padding excluded).
    pub total: usize,
    pub srh: Option<SrhAt>,
    /// First non-extension header type and its offset.
    pub upper: u8,
    pub upper_off: usize,
    /// A Fragment header was crossed.
    pub fragment: bool,
}

#[inline]
pub(crate) fn drop_icmp(reason: DropReason, icmp: IcmpError) -> Outcome {
    Outcome::Drop { reason, icmp: Some(icmp) }
}

#[inline]
pub(crate) fn param_problem(reason: DropReason, code: u8, pointer: usize) -> Outcome {
    drop_icmp(reason, IcmpError::ParameterProblem { code, pointer: pointer as u32 })
}

/// The packet's bytes, or `BadSpan`.
#[inline]
pub(crate) fn packet(buf: &mut [u8], start: usize, len: usize) -> Result<&mut [u8], Outcome> {
    let end = start.checked_add(len).ok_or(Outcome::drop(DropReason::BadSpan))?;
    buf.get_mut(start..end).ok_or(Outcome::drop(DropReason::BadSpan))
}

/// Parses the fixed header and walks the extension headers up to the first
/// upper-layer header, noting the first SRH.
pub(crate) fn parse(pkt: &[u8]) -> Result<Parsed, Outcome> {
    if pkt.len() < IPV6_HDR || pkt[0] >> 4 != 6 {
        return Err(Outcome::drop(DropReason::NotIpv6));
    }
    let total = IPV6_HDR + usize::from(read_u16(pkt, ip6::PAYLOAD_LEN));
    if total > pkt.len() {
        return Err(Outcome::drop(DropReason::BadPayloadLength));
    }
    let pkt = &pkt[..total];
    let mut p = Parsed { total, srh: None, upper: pkt[ip6::NEXT_HEADER], upper_off: IPV6_HDR, fragment: false };
    let mut nh_off = ip6::NEXT_HEADER;
    for walked in 0..=MAX_EXT_HEADERS {
        let off = p.upper_off;
        let len = match p.upper {
            proto::HOPOPT | proto::ROUTING | proto::DSTOPTS => {
                let l = pkt.get(off + 1).ok_or(Outcome::drop(DropReason::BadExtHeaders))?;
                (usize::from(*l) + 1) * 8
            }
            proto::FRAGMENT => 8,
            proto::AH => {
                let l = pkt.get(off + 1).ok_or(Outcome::drop(DropReason::BadExtHeaders))?;
                (usize::from(*l) + 2) * 4
            }
            _ => return Ok(p),
        };
        if walked == MAX_EXT_HEADERS || (p.upper == proto::HOPOPT && walked != 0) || off + len > total {
            return Err(Outcome::drop(DropReason::BadExtHeaders));
        }
        match p.upper {
            proto::ROUTING if pkt[off + 2] == ROUTING_TYPE_SRH => {
                // Only the first SRH counts; a later one is just skipped.
                p.srh = p.srh.or(Some(SrhAt { off, len, nh_off }));
            }
            proto::ROUTING if pkt[off + 3] != 0 => {
                // RFC 8200 section 4.4: unknown type with Segments Left > 0.
                return Err(param_problem(
                    DropReason::UnknownRoutingType,
                    param_problem::ERRONEOUS_HEADER_FIELD,
                    off + 2,
                ));
            }
            proto::FRAGMENT => {
                p.fragment = true;
                if read_u16(pkt, off + 2) & 0xfff8 != 0 {
                    // Non-first fragment: the rest is fragment data.
                    p.upper = pkt[off];
                    p.upper_off = off + len;
                    return Ok(p);
                }
            }
            _ => {}
        }
        nh_off = off;
        p.upper = pkt[off];
        p.upper_off = off + len;
    }
    Err(Outcome::drop(DropReason::BadExtHeaders))
}

#[inline]
pub(crate) fn src_of(pkt: &[u8]) -> [u8; 16] {
    read_array(pkt, ip6::SRC)
}

#[inline]
pub(crate) fn dst_of(pkt: &[u8]) -> [u8; 16] {
    read_array(pkt, ip6::DST)
}

#[inline]
pub(crate) fn set_dst(pkt: &mut [u8], dst: &[u8; 16]) {
    pkt[ip6::DST..ip6::DST + 16].copy_from_slice(dst);
}

/// Validates the SRH at `at` and runs the HMAC check. Structural errors of
/// Last Entry / Segments Left become ICMP Parameter Problem pointing at
/// Segments Left when Segments Left > 0 (after the hop limit check, in the
/// order of RFC 8986 section 4.1); HMAC failures point at the HMAC TLV
/// (RFC 8754 section 2.1.2.1).
pub(crate) fn check_srh(pkt: &[u8], at: SrhAt, hmac: Option<&HmacCheck<'_>>) -> Result<(), Outcome> {
    let srh = Srh::new_unchecked(&pkt[at.off..at.off + at.len]);
    if let Err(e) = srh.validate() {
        let sl_field = at.off + SEGMENTS_LEFT_OFFSET;
        let icmp = match e {
            SrhError::LastEntryTooBig | SrhError::SegmentsLeftTooBig if srh.segments_left() != 0 => {
                if pkt[ip6::HOP_LIMIT] <= 1 {
                    Some(IcmpError::HopLimitExceeded)
                } else {
                    Some(IcmpError::ParameterProblem {
                        code: param_problem::ERRONEOUS_HEADER_FIELD,
                        pointer: sl_field as u32,
                    })
                }
            }
            _ => None,
        };
        return Err(Outcome::Drop { reason: DropReason::Srh(e), icmp });
    }
    if let Some(h) = hmac {
        if let Err(e) = hmac::verify(h.keys, h.policy, &src_of(pkt), &dst_of(pkt), &srh) {
            let icmp = match (e, srh.hmac_tlv()) {
                (SrhError::HmacMissing, _) | (_, Err(_)) | (_, Ok(None)) => None,
                (_, Ok(Some(tlv))) => Some(IcmpError::ParameterProblem {
                    code: param_problem::ERRONEOUS_HEADER_FIELD,
                    pointer: (at.off + tlv.offset) as u32,
                }),
            };
            return Err(Outcome::Drop { reason: DropReason::Srh(e), icmp });
        }
    }
    Ok(())
}

/// The IPv6 packet at `buf[start..start + len]` and what [`parse`] found
/// in it, or the drop.
#[inline(always)]
pub(crate) fn parsed(buf: &mut [u8], start: usize, len: usize) -> Result<(&mut [u8], Parsed), Outcome> {
    let pkt = packet(buf, start, len)?;
    let p = parse(pkt)?;
    Ok((pkt, p))
}

/// The packet at `buf[start..start + len]`, parsed, with its SRH checked
/// and its Segments Left: the common start of the behaviours that need an
/// SRH. `Err` holds the outcome otherwise: a bad packet or SRH dropped, a
/// packet without an SRH handed to its upper layer per `opts`.
#[inline(always)]
pub(crate) fn with_srh<'b>(
    buf: &'b mut [u8],
    start: usize,
    len: usize,
    opts: &EndOpts<'_>,
) -> Result<(&'b mut [u8], Parsed, SrhAt, u8), Outcome> {
    let (pkt, p) = parsed(buf, start, len)?;
    let Some(at) = p.srh else {
        return Err(upper_layer(start, &p, opts));
    };
    check_srh(pkt, at, opts.hmac.as_ref())?;
    let sl = pkt[at.off + 3];
    Ok((pkt, p, at, sl))
}

/// RFC 8986 section 4.1.1: the upper-layer header reached at a SID that does
/// not decapsulate it. Local if allowed, else Parameter Problem code 4.
pub(crate) fn upper_layer(start: usize, p: &Parsed, opts: &EndOpts<'_>) -> Outcome {
    if opts.local_upper.contains(p.upper) {
        Outcome::Local { span: Span { start, len: p.total }, protocol: p.upper, offset: p.upper_off }
    } else {
        param_problem(DropReason::UpperLayerNotAllowed, param_problem::SR_UPPER_LAYER_HEADER, p.upper_off)
    }
}

/// Checks that `inner` looks like a packet of kind `kind` (length and IP
/// version).
#[inline(always)]
pub(crate) fn inner_ok(kind: Inner, inner: &[u8]) -> bool {
    match kind {
        Inner::Ipv4 => inner.len() >= 20 && inner[0] >> 4 == 4,
        Inner::Ipv6 => inner.len() >= IPV6_HDR && inner[0] >> 4 == 6,
        Inner::Ethernet => inner.len() >= 14,
    }
}

/// Exposes the inner packet after the outer headers. Checks fragment and
/// inner sanity.
pub(crate) fn decap_to(pkt: &[u8], start: usize, p: &Parsed, kind: Inner, next: Next) -> Outcome {
    if p.fragment {
        return Outcome::drop(DropReason::OuterFragment);
    }
    let inner = &pkt[p.upper_off..p.total];
    if !inner_ok(kind, inner) {
        return Outcome::drop(DropReason::InnerMalformed);
    }
    Outcome::Decap { span: Span { start: start + p.upper_off, len: p.total - p.upper_off }, inner: kind, next }
}

/// Removes the SRH `at` from the packet at `buf[start..start + total]` by
/// moving the headers before it forward; returns the new start. The caller
/// has validated everything.
pub(crate) fn pop_srh(buf: &mut [u8], start: usize, total: usize, at: SrhAt) -> usize {
    let srh_nh = buf[start + at.off];
    buf[start + at.nh_off] = srh_nh;
    let payload = (total - IPV6_HDR - at.len) as u16;
    buf[start + ip6::PAYLOAD_LEN..start + ip6::PAYLOAD_LEN + 2].copy_from_slice(&payload.to_be_bytes());
    buf.copy_within(start..start + at.off, start + at.len);
    start + at.len
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct() {
        let names: std::collections::HashSet<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), DropReason::ALL.len());
        for r in DropReason::ALL {
            assert_eq!(r.to_string(), r.name());
        }
        for e in SrhError::ALL {
            assert!(DropReason::ALL.contains(&DropReason::Srh(e)));
        }
    }

    #[test]
    fn upper_set() {
        let s = UpperSet::ICMPV6.with(255).with(0);
        assert!(s.contains(58) && s.contains(255) && s.contains(0));
        assert!(!s.contains(17) && !UpperSet::EMPTY.contains(58));
    }

    #[test]
    fn parse_chain() {
        use testutil::*;
        // HBH, SRH, DestOpts, then UDP.
        let mut pkt = ipv6_hdr(proto::HOPOPT, "2001:db8::1", "fc00::1", 64);
        pkt.extend_from_slice(&[proto::ROUTING, 0, 1, 4, 0, 0, 0, 0]);
        pkt.extend_from_slice(&srh(proto::DSTOPTS, 0, &["fc00::1"]));
        pkt.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        pkt.extend_from_slice(&[0; 8]);
        fix_len(&mut pkt);
        let p = parse(&pkt).unwrap();
        assert_eq!((p.total, p.upper, p.upper_off, p.fragment), (pkt.len(), 17, 80, false));
        let at = p.srh.unwrap();
        assert_eq!((at.off, at.len, at.nh_off), (48, 24, 40));
        // A HBH later in the chain, a header past the end.
        let mut bad = pkt.clone();
        bad[48] = proto::HOPOPT;
        assert_eq!(parse(&bad).unwrap_err(), Outcome::drop(DropReason::BadExtHeaders));
        let mut bad = pkt.clone();
        bad[73] = 9;
        assert_eq!(parse(&bad).unwrap_err(), Outcome::drop(DropReason::BadExtHeaders));
        assert_eq!(parse(&pkt[..39]).unwrap_err(), Outcome::drop(DropReason::NotIpv6));
        assert_eq!(parse(&pkt[..87]).unwrap_err(), Outcome::drop(DropReason::BadPayloadLength));
        // Routing type 2 with SL 1.
        let mut rt2 = ipv6_hdr(proto::ROUTING, "2001:db8::1", "fc00::1", 64);
        rt2.extend_from_slice(&[59, 2, 2, 1, 0, 0, 0, 0]);
        rt2.extend_from_slice(&[0; 16]);
        fix_len(&mut rt2);
        assert_eq!(
            parse(&rt2).unwrap_err(),
            param_problem(DropReason::UnknownRoutingType, param_problem::ERRONEOUS_HEADER_FIELD, 42)
        );
        rt2[43] = 0;
        let p = parse(&rt2).unwrap();
        assert!(p.srh.is_none());
        assert_eq!((p.upper, p.upper_off), (59, 64));
        // Non-first fragment stops the walk.
        let mut fr = ipv6_hdr(proto::FRAGMENT, "2001:db8::1", "fc00::1", 64);
        fr.extend_from_slice(&[proto::ROUTING, 0, 0, 8, 0, 0, 0, 1]);
        fr.extend_from_slice(&[0; 16]);
        fix_len(&mut fr);
        let p = parse(&fr).unwrap();
        assert_eq!((p.upper, p.upper_off, p.fragment, p.srh.is_none()), (proto::ROUTING, 48, true, true));
        // A second SRH (SL > 0) is skipped, not taken for an unknown type.
        let mut two = ipv6_hdr(proto::ROUTING, "2001:db8::1", "fc00::1", 64);
        two.extend_from_slice(&srh(proto::ROUTING, 0, &["fc00::1"]));
        two.extend_from_slice(&srh(59, 1, &["fc00::2"]));
        fix_len(&mut two);
        let p = parse(&two).unwrap();
        assert_eq!((p.srh.unwrap().off, p.upper, p.upper_off), (40, 59, 88));
        // Nine extension headers is too many.
        let mut many = ipv6_hdr(proto::DSTOPTS, "2001:db8::1", "fc00::1", 64);
        for i in 0..9 {
            many.extend_from_slice(&[if i == 8 { 59 } else { proto::DSTOPTS }, 0, 1, 4, 0, 0, 0, 0]);
        }
        fix_len(&mut many);
        assert_eq!(parse(&many).unwrap_err(), Outcome::drop(DropReason::BadExtHeaders));
    }
}
