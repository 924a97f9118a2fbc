//! Headends (RFC 8986 section 5): H.Encaps, H.Encaps.Red, H.Encaps.L2,
//! H.Encaps.L2.Red; and the binding-SID endpoints End.B6.Encaps and
//! End.B6.Encaps.Red (sections 4.13, 4.14) that use the same encapsulation.
//!
//! The outer IPv6 header and SRH of a segment list are built once, when the
//! policy is configured, into an [`EncapTemplate`] (the HMAC, which covers
//! only the source, Last Entry, flags, key id and segments, is computed then
//! too). Per packet the template is copied into the headroom and five
//! fields are patched: payload length, the next header that announces the
//! inner packet (4, 41 or 143), traffic class, flow label and hop limit.
//!
//! Segment order: [`EncapParams::segments`] lists the SIDs in the order the
//! packet visits them, `S1` first; the SRH stores them reversed (Segment
//! List\[0\] = `Sn`) with Segments Left = n - 1, and the outer destination is
//! `S1`. The reduced forms leave `S1` out of the SRH (Last Entry = n - 2,
//! Segments Left = n - 1, RFC 8754 section 4.1.1) and, for one SID without
//! flags, tag or HMAC, leave the SRH out altogether. As Linux does, a
//! one-SID reduced SRH that must carry an HMAC keeps its single segment.

use core::fmt;
use core::net::Ipv6Addr;

use super::{
    dst_of, ip6, packet, proto, set_dst, upper_layer, with_srh, DropReason, EndOpts, IcmpError, Inner, Next, Outcome,
    Span, IPV6_HDR,
};
use crate::hmac::{self, HmacKeyTable, HMAC_TLV_LEN};
use crate::srh::{SrhError, SrhRepr};

/// Most SIDs in one encapsulation.
pub const MAX_SEGMENTS: usize = 32;
/// Longest header an [`EncapTemplate`] pushes: IPv6, SRH with
/// [`MAX_SEGMENTS`] SIDs and an HMAC TLV. Buffers need this much headroom
/// at worst; [`EncapTemplate::len`] is the exact figure per template.
pub const MAX_ENCAP_LEN: usize = IPV6_HDR + 8 + 16 * MAX_SEGMENTS + HMAC_TLV_LEN;
/// Outer hop limit used where there is nothing to copy from (L2 payloads).
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// Outer hop limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HopLimit {
    /// The inner packet's TTL / hop limit (after the headend decremented
    /// it); [`DEFAULT_HOP_LIMIT`] for L2 payloads. What Linux does.
    Copy,
    /// This value (RFC 2473's tunnel hop limit).
    Fixed(u8),
}

/// Outer traffic class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrafficClass {
    /// The inner IPv4 TOS / IPv6 traffic class (DSCP and ECN); 0 for L2
    /// payloads.
    Copy,
    /// This value.
    Fixed(u8),
}

/// Outer flow label (RFC 6437).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowLabel {
    /// The low 20 bits of the flow hash the caller passes per packet.
    Hash,
    /// The inner IPv6 flow label; the hash for IPv4 and L2 payloads.
    Copy,
    /// This value (low 20 bits).
    Fixed(u32),
}

/// Why an [`EncapTemplate`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplateError {
    /// No SIDs.
    NoSegments,
    /// More than [`MAX_SEGMENTS`] SIDs.
    TooManySegments,
    /// The HMAC could not be computed (unknown key id).
    Hmac(SrhError),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::NoSegments => f.write_str("empty segment list"),
            TemplateError::TooManySegments => write!(f, "more than {MAX_SEGMENTS} segments"),
            TemplateError::Hmac(e) => write!(f, "hmac: {e}"),
        }
    }
}

impl std::error::Error for TemplateError {}

/// What to build an [`EncapTemplate`] from. [`EncapParams::new`] gives the
/// defaults: L3, not reduced, hop limit and traffic class copied, flow label
/// from the hash, inner TTL decremented, no flags, tag or HMAC.
#[derive(Clone, Copy, Debug)]
pub struct EncapParams<'a> {
    /// Outer source address (RFC 8986's `A`).
    pub src: Ipv6Addr,
    /// The SIDs in visiting order, `S1` first.
    pub segments: &'a [Ipv6Addr],
    /// The .Red form.
    pub reduced: bool,
    /// The .L2 form: the payload is an Ethernet frame (next header 143).
    pub l2: bool,
    /// Outer hop limit.
    pub hop_limit: HopLimit,
    /// Outer traffic class.
    pub traffic_class: TrafficClass,
    /// Outer flow label.
    pub flow_label: FlowLabel,
    /// Decrement the inner IPv4 TTL / IPv6 hop limit (RFC 8986 section 5.1
    /// S05; off for End.B6.Encaps, which decremented the hop limit already).
    pub decrement_inner: bool,
    /// SRH flags. Add [`srh_flags::LINUX_HMAC`](crate::srh::srh_flags::LINUX_HMAC)
    /// with an HMAC that Linux must verify.
    pub flags: u8,
    /// SRH tag.
    pub tag: u16,
    /// Append an HMAC TLV computed with this key id from this table.
    pub hmac: Option<(&'a HmacKeyTable, u32)>,
}

impl<'a> EncapParams<'a> {
    /// The defaults for `src` and `segments`.
    pub fn new(src: Ipv6Addr, segments: &'a [Ipv6Addr]) -> Self {
        EncapParams {
            src,
            segments,
            reduced: false,
            l2: false,
            hop_limit: HopLimit::Copy,
            traffic_class: TrafficClass::Copy,
            flow_label: FlowLabel::Hash,
            decrement_inner: true,
            flags: 0,
            tag: 0,
            hmac: None,
        }
    }
}

/// The prebuilt outer headers of one segment list (see the module docs).
#[derive(Clone, PartialEq, Eq)]
pub struct EncapTemplate {
    hdr: [u8; MAX_ENCAP_LEN],
    len: u16,
    // Offset of the next header byte that announces the payload.
    nh_at: u16,
    dst: Ipv6Addr,
    reduced: bool,
    l2: bool,
    hop_limit: HopLimit,
    traffic_class: TrafficClass,
    flow_label: FlowLabel,
    decrement_inner: bool,
}

impl fmt::Debug for EncapTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncapTemplate")
            .field("header", &self.header())
            .field("dst", &self.dst)
            .field("reduced", &self.reduced)
            .field("l2", &self.l2)
            .field("hop_limit", &self.hop_limit)
            .field("traffic_class", &self.traffic_class)
            .field("flow_label", &self.flow_label)
            .field("decrement_inner", &self.decrement_inner)
            .finish()
    }
}

impl EncapTemplate {
    /// Builds the headers.
    pub fn new(p: &EncapParams<'_>) -> Result<Self, TemplateError> {
        let n = p.segments.len();
        if n == 0 {
            return Err(TemplateError::NoSegments);
        }
        if n > MAX_SEGMENTS {
            return Err(TemplateError::TooManySegments);
        }
        let mut hdr = [0u8; MAX_ENCAP_LEN];
        hdr[0] = 0x60;
        hdr[ip6::SRC..ip6::SRC + 16].copy_from_slice(&p.src.octets());
        hdr[ip6::DST..ip6::DST + 16].copy_from_slice(&p.segments[0].octets());
        let payload_nh = if p.l2 { proto::ETHERNET } else { 0 };
        let omit_srh = p.reduced && n == 1 && p.flags == 0 && p.tag == 0 && p.hmac.is_none();
        let (len, nh_at) = if omit_srh {
            hdr[ip6::NEXT_HEADER] = payload_nh;
            (IPV6_HDR, ip6::NEXT_HEADER)
        } else {
            // Segment List[0] = Sn, ..., with S1 left out when reduced.
            let in_srh = if p.reduced && n > 1 { &p.segments[1..] } else { p.segments };
            let mut list = [[0u8; 16]; MAX_SEGMENTS];
            for (slot, s) in list.iter_mut().zip(in_srh.iter().rev()) {
                *slot = s.octets();
            }
            let tlv = p.hmac.map(|(_, key_id)| hmac::hmac_tlv(p.reduced && n > 1, key_id, &[0; 32]));
            let repr = SrhRepr {
                next_header: payload_nh,
                segments_left: (n - 1) as u8,
                flags: p.flags,
                tag: p.tag,
                segments: &list[..in_srh.len()],
                tlvs: tlv.as_ref().map_or(&[][..], |t| &t[..]),
            };
            let srh_len = repr.emit(&mut hdr[IPV6_HDR..]).expect("bounded by MAX_SEGMENTS and MAX_ENCAP_LEN");
            if let Some((keys, _)) = p.hmac {
                hmac::fill(keys, &p.src.octets(), &mut hdr[IPV6_HDR..IPV6_HDR + srh_len])
                    .map_err(TemplateError::Hmac)?;
            }
            hdr[ip6::NEXT_HEADER] = proto::ROUTING;
            (IPV6_HDR + srh_len, IPV6_HDR)
        };
        Ok(EncapTemplate {
            hdr,
            len: len as u16,
            nh_at: nh_at as u16,
            dst: p.segments[0],
            reduced: p.reduced,
            l2: p.l2,
            hop_limit: p.hop_limit,
            traffic_class: p.traffic_class,
            flow_label: p.flow_label,
            decrement_inner: p.decrement_inner,
        })
    }

    /// Bytes pushed in front of the packet (the headroom it needs).
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a template pushes at least an IPv6 header.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The outer destination, `S1`.
    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        self.dst
    }

    /// The headers as built (payload length, next header, traffic class,
    /// flow label and hop limit still zero).
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.hdr[..self.len()]
    }

    /// True for the .Red forms.
    #[inline]
    pub fn is_reduced(&self) -> bool {
        self.reduced
    }

    /// True for the .L2 forms.
    #[inline]
    pub fn is_l2(&self) -> bool {
        self.l2
    }

    /// True if the template carries an SRH.
    #[inline]
    pub fn has_srh(&self) -> bool {
        self.nh_at as usize == IPV6_HDR
    }
}

/// H.Encaps: push IPv6 + SRH in front of an IPv4 or IPv6 packet.
pub fn h_encaps(buf: &mut [u8], start: usize, len: usize, t: &EncapTemplate, flow_hash: u32) -> Outcome {
    if t.reduced || t.l2 {
        return Outcome::drop(DropReason::TemplateMismatch);
    }
    encap(buf, start, len, t, flow_hash, None)
}

/// H.Encaps.Red: as [`h_encaps`] with a reduced SRH.
pub fn h_encaps_red(buf: &mut [u8], start: usize, len: usize, t: &EncapTemplate, flow_hash: u32) -> Outcome {
    if !t.reduced || t.l2 {
        return Outcome::drop(DropReason::TemplateMismatch);
    }
    encap(buf, start, len, t, flow_hash, None)
}

/// H.Encaps.L2: push IPv6 + SRH (next header 143) in front of an Ethernet
/// frame (no preamble, no FCS; VLAN tags stay in the frame).
pub fn h_encaps_l2(buf: &mut [u8], start: usize, len: usize, t: &EncapTemplate, flow_hash: u32) -> Outcome {
    if t.reduced || !t.l2 {
        return Outcome::drop(DropReason::TemplateMismatch);
    }
    encap(buf, start, len, t, flow_hash, None)
}

/// H.Encaps.L2.Red: as [`h_encaps_l2`] with a reduced SRH.
pub fn h_encaps_l2_red(buf: &mut [u8], start: usize, len: usize, t: &EncapTemplate, flow_hash: u32) -> Outcome {
    if !t.reduced || !t.l2 {
        return Outcome::drop(DropReason::TemplateMismatch);
    }
    encap(buf, start, len, t, flow_hash, None)
}

/// End.B6.Encaps: End processing of the received SRH (hop limit, Segments
/// Left, destination), then the updated packet is encapsulated with the
/// template of the bound policy (selected by the caller, see
/// [`SrPolicy::select`](crate::policy::SrPolicy::select)).
pub fn end_b6_encaps(
    buf: &mut [u8],
    start: usize,
    len: usize,
    opts: &EndOpts<'_>,
    t: &EncapTemplate,
    flow_hash: u32,
) -> Outcome {
    if t.reduced || t.l2 {
        return Outcome::drop(DropReason::TemplateMismatch);
    }
    b6(buf, start, len, opts, t, flow_hash)
}

/// End.B6.Encaps.Red: as [`end_b6_encaps`] with a reduced template.
pub fn end_b6_encaps_red(
    buf: &mut [u8],
    start: usize,
    len: usize,
    opts: &EndOpts<'_>,
    t: &EncapTemplate,
    flow_hash: u32,
) -> Outcome {
    if !t.reduced || t.l2 {
        return Outcome::drop(DropReason::TemplateMismatch);
    }
    b6(buf, start, len, opts, t, flow_hash)
}

fn b6(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, t: &EncapTemplate, flow_hash: u32) -> Outcome {
    let (pkt, p, at, sl) = match with_srh(buf, start, len, opts) {
        Ok(x) => x,
        Err(o) => return o,
    };
    if sl == 0 {
        return upper_layer(start, &p, opts);
    }
    if pkt[ip6::HOP_LIMIT] <= 1 {
        return super::drop_icmp(DropReason::HopLimitExceeded, IcmpError::HopLimitExceeded);
    }
    if let Err(o) = room_for(t.len(), start, p.total) {
        return o;
    }
    let sl = sl - 1;
    let seg_at = at.off + 8 + 16 * usize::from(sl);
    let mut seg = [0u8; 16];
    seg.copy_from_slice(&pkt[seg_at..seg_at + 16]);
    pkt[at.off + 3] = sl;
    set_dst(pkt, &seg);
    pkt[ip6::HOP_LIMIT] -= 1;
    let inner = InnerInfo::read(Inner::Ipv6, pkt);
    push(buf, start, p.total, t, inner, flow_hash)
}

/// Headroom and size checks for pushing `hdr_len` bytes before the packet.
#[inline]
pub(crate) fn room_for(hdr_len: usize, start: usize, len: usize) -> Result<(), Outcome> {
    if start < hdr_len {
        return Err(Outcome::drop(DropReason::NoHeadroom));
    }
    if hdr_len - IPV6_HDR + len > usize::from(u16::MAX) {
        return Err(Outcome::drop(DropReason::TooBig));
    }
    Ok(())
}

/// The inner fields the outer header may copy.
#[derive(Clone, Copy)]
pub(crate) struct InnerInfo {
    pub kind: Inner,
    pub ttl: u8,
    pub tc: u8,
    pub flow_label: Option<u32>,
}

impl InnerInfo {
    /// Reads them from a packet already known to be long enough for `kind`.
    #[inline(always)]
    pub(crate) fn read(kind: Inner, pkt: &[u8]) -> InnerInfo {
        match kind {
            Inner::Ipv4 => InnerInfo { kind, ttl: pkt[8], tc: pkt[1], flow_label: None },
            Inner::Ipv6 => {
                let w = u32::from_be_bytes([pkt[0], pkt[1], pkt[2], pkt[3]]);
                InnerInfo { kind, ttl: pkt[7], tc: (w >> 20) as u8, flow_label: Some(w & 0xf_ffff) }
            }
            Inner::Ethernet => InnerInfo { kind, ttl: DEFAULT_HOP_LIMIT, tc: 0, flow_label: None },
        }
    }
}

/// Classifies the payload of an L3 headend by its version nibble.
#[inline(always)]
pub(crate) fn classify_ip(pkt: &[u8]) -> Result<Inner, Outcome> {
    let kind = match pkt.first().map(|b| b >> 4) {
        Some(4) => Inner::Ipv4,
        Some(6) => Inner::Ipv6,
        _ => return Err(Outcome::drop(DropReason::NotIp)),
    };
    if !super::inner_ok(kind, pkt) {
        return Err(Outcome::drop(DropReason::InnerMalformed));
    }
    Ok(kind)
}

/// Decrements the TTL / hop limit of an IP packet, fixing the IPv4 header
/// checksum incrementally (RFC 1624 eqn. 3). The caller checked it is > 1.
#[inline(always)]
pub(crate) fn decrement_ttl(kind: Inner, pkt: &mut [u8]) {
    match kind {
        Inner::Ipv4 => {
            let old = u16::from_be_bytes([pkt[8], pkt[9]]);
            pkt[8] -= 1;
            let new = u16::from_be_bytes([pkt[8], pkt[9]]);
            let ck = u16::from_be_bytes([pkt[10], pkt[11]]);
            let s = u32::from(!ck) + u32::from(!old) + u32::from(new);
            let s = (s & 0xffff) + (s >> 16);
            let s = (s & 0xffff) + (s >> 16);
            pkt[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
        }
        Inner::Ipv6 => pkt[7] -= 1,
        Inner::Ethernet => {}
    }
}

/// The headend: classify, decrement the inner TTL, push the template.
/// `expect` pins the payload kind (proxies); `None` takes it from the
/// template (L2) or the version nibble (L3).
// Inlined into each headend (one call per packet, not four): its helpers
// are small and the per-packet budget is ~70 clocks.
#[inline(always)]
pub(crate) fn encap(
    buf: &mut [u8],
    start: usize,
    len: usize,
    t: &EncapTemplate,
    flow_hash: u32,
    expect: Option<Inner>,
) -> Outcome {
    let pkt = match packet(buf, start, len) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let kind = if t.l2 {
        if !super::inner_ok(Inner::Ethernet, pkt) {
            return Outcome::drop(DropReason::InnerMalformed);
        }
        Inner::Ethernet
    } else {
        match classify_ip(pkt) {
            Ok(k) => k,
            Err(o) => return o,
        }
    };
    if expect.is_some_and(|e| e != kind) {
        return Outcome::drop(DropReason::ProxyInnerType);
    }
    let mut inner = InnerInfo::read(kind, pkt);
    let decrement = t.decrement_inner && kind != Inner::Ethernet;
    if decrement && inner.ttl <= 1 {
        let icmp = if kind == Inner::Ipv4 { IcmpError::TtlExceededV4 } else { IcmpError::HopLimitExceeded };
        return super::drop_icmp(DropReason::InnerTtlExceeded, icmp);
    }
    if let Err(o) = room_for(t.len(), start, len) {
        return o;
    }
    if decrement {
        decrement_ttl(kind, pkt);
        inner.ttl -= 1;
    }
    push(buf, start, len, t, inner, flow_hash)
}

/// Copies the template before `start` and patches it. Checks done.
#[inline(always)]
fn push(buf: &mut [u8], start: usize, len: usize, t: &EncapTemplate, inner: InnerInfo, flow_hash: u32) -> Outcome {
    let hl = t.len();
    let new_start = start - hl;
    let out = &mut buf[new_start..start];
    // A few dozen bytes, a multiple of 8: word copies beat a call to memmove.
    let mut o = out.chunks_exact_mut(8);
    let mut i = t.header().chunks_exact(8);
    for (o, i) in o.by_ref().zip(i.by_ref()) {
        o.copy_from_slice(i);
    }
    o.into_remainder().copy_from_slice(i.remainder());
    let tc = match t.traffic_class {
        TrafficClass::Copy => inner.tc,
        TrafficClass::Fixed(v) => v,
    };
    let fl = match t.flow_label {
        FlowLabel::Hash => flow_hash & 0xf_ffff,
        FlowLabel::Copy => inner.flow_label.unwrap_or(flow_hash & 0xf_ffff),
        FlowLabel::Fixed(v) => v & 0xf_ffff,
    };
    let hop_limit = match t.hop_limit {
        HopLimit::Copy => inner.ttl,
        HopLimit::Fixed(v) => v,
    };
    let w = (6u32 << 28) | (u32::from(tc) << 20) | fl;
    out[..4].copy_from_slice(&w.to_be_bytes());
    out[ip6::PAYLOAD_LEN..ip6::PAYLOAD_LEN + 2].copy_from_slice(&((hl - IPV6_HDR + len) as u16).to_be_bytes());
    out[ip6::HOP_LIMIT] = hop_limit;
    if !t.l2 {
        out[usize::from(t.nh_at)] = inner.kind.protocol();
    }
    Outcome::Forward { span: Span { start: new_start, len: hl + len }, dst: t.dst, next: Next::Lookup }
}

/// Pushes raw cached headers (End.AD return path): the cache's destination
/// is the packet's new destination; its payload length is rewritten.
pub(crate) fn push_raw(buf: &mut [u8], start: usize, len: usize, hdrs: &[u8]) -> Outcome {
    let hl = hdrs.len();
    let new_start = start - hl;
    let out = &mut buf[new_start..start];
    out.copy_from_slice(hdrs);
    out[ip6::PAYLOAD_LEN..ip6::PAYLOAD_LEN + 2].copy_from_slice(&((hl - IPV6_HDR + len) as u16).to_be_bytes());
    Outcome::Forward {
        span: Span { start: new_start, len: hl + len },
        dst: Ipv6Addr::from(dst_of(out)),
        next: Next::Lookup,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::hmac::{HmacMode, HmacPolicy};
    use crate::srh::{srh_flags, Srh};

    // Generated once with Debian scapy 2.5.0 by srv6/tests/scapy/gen_vectors.py.
    const INNER4: &str = "45b8001e0001000040118de0c0000201c633640104d2162e000a00006869";
    const H_ENCAPS_V4: &str = "6b81234500462b3f20010db8000000000000000000000100fc000001000000000000000000000000\
        0404040101000000fc000002000000000000000000000000fc000001000000000000000000000000\
        45b8001e000100003f118ee0c0000201c633640104d2162e000a00006869";
    const INNER6: &str = "600000000009110a20010db8000a0000000000000000000120010db8000b0000000000000000000100010002\
        0009432178";
    const H_ENCAPS_RED_V6: &str = "6000000000592b4020010db8000000000000000000000100fc000001000000000000000000000000\
        2904040201000000fc000003000000000000000000000000fc000002000000000000000000000000\
        600000000009110920010db8000a0000000000000000000120010db8000b00000000000000000001000100020009432178";
    const FRAME: &str = "020000000002020000000001080045000016000100000500a1e50a0000010a0000026c32";
    const H_ENCAPS_L2: &str = "60000000003c2b4020010db8000000000000000000000100fc000001000000000000000000000000\
        8f02040000000000fc000001000000000000000000000000\
        020000000002020000000001080045000016000100000500a1e50a0000010a0000026c32";
    const H_ENCAPS_RED_1SID_V4: &str =
        "6b812345001e043f20010db8000000000000000000000100fc000001000000000000000000000000\
        45b8001e000100003f118ee0c0000201c633640104d2162e000a00006869";

    const ROOM: usize = 256;

    fn segs(s: &[&str]) -> Vec<Ipv6Addr> {
        s.iter().map(|x| a6(x)).collect()
    }

    fn run(
        inner: &[u8],
        t: &EncapTemplate,
        f: fn(&mut [u8], usize, usize, &EncapTemplate, u32) -> Outcome,
    ) -> (Outcome, Vec<u8>) {
        let mut b = with_headroom(inner, ROOM);
        let o = f(&mut b, ROOM, inner.len(), t, 0xabc1_2345);
        (o, b)
    }

    fn out_bytes(b: &[u8], o: &Outcome) -> Vec<u8> {
        match o {
            Outcome::Forward { span, .. } => b[span.range()].to_vec(),
            _ => panic!("not forwarded: {o:?}"),
        }
    }

    #[test]
    fn h_encaps_v4_matches_scapy() {
        let s = segs(&["fc00:1::", "fc00:2::"]);
        let t = EncapTemplate::new(&EncapParams::new(a6("2001:db8::100"), &s)).unwrap();
        assert_eq!((t.len(), t.dst(), t.has_srh()), (80, a6("fc00:1::"), true));
        let (o, b) = run(&hex(INNER4), &t, h_encaps);
        assert_eq!(
            o,
            Outcome::Forward { span: Span { start: ROOM - 80, len: 110 }, dst: a6("fc00:1::"), next: Next::Lookup }
        );
        assert_eq!(out_bytes(&b, &o), hex(H_ENCAPS_V4));
    }

    #[test]
    fn h_encaps_red_v6_matches_scapy() {
        let s = segs(&["fc00:1::", "fc00:2::", "fc00:3::"]);
        let p = EncapParams {
            reduced: true,
            hop_limit: HopLimit::Fixed(64),
            traffic_class: TrafficClass::Fixed(0),
            flow_label: FlowLabel::Fixed(0),
            ..EncapParams::new(a6("2001:db8::100"), &s)
        };
        let t = EncapTemplate::new(&p).unwrap();
        let (o, b) = run(&hex(INNER6), &t, h_encaps_red);
        assert_eq!(out_bytes(&b, &o), hex(H_ENCAPS_RED_V6));
        // The reduced SRH validates (SL = LE + 1) and does not hold S1.
        let srh = Srh::new_checked(&b[ROOM - 40..ROOM]).unwrap();
        assert_eq!((srh.segments_left(), srh.last_entry()), (2, 1));
        // Wrong template kind for the behaviour.
        assert_eq!(run(&hex(INNER6), &t, h_encaps).0, Outcome::drop(DropReason::TemplateMismatch));
    }

    #[test]
    fn h_encaps_l2_matches_scapy() {
        let s = segs(&["fc00:1::"]);
        let p = EncapParams {
            l2: true,
            traffic_class: TrafficClass::Copy,
            flow_label: FlowLabel::Fixed(0),
            ..EncapParams::new(a6("2001:db8::100"), &s)
        };
        let t = EncapTemplate::new(&p).unwrap();
        let (o, b) = run(&hex(FRAME), &t, h_encaps_l2);
        assert_eq!(out_bytes(&b, &o), hex(H_ENCAPS_L2));
        assert_eq!(run(&hex(FRAME), &t, h_encaps_l2_red).0, Outcome::drop(DropReason::TemplateMismatch));
        assert_eq!(run(&hex(FRAME)[..13], &t, h_encaps_l2).0, Outcome::drop(DropReason::InnerMalformed));
        // L2.Red with one SID: no SRH, next header 143.
        let t = EncapTemplate::new(&EncapParams { reduced: true, ..p }).unwrap();
        let (o, b) = run(&hex(FRAME), &t, h_encaps_l2_red);
        let out = out_bytes(&b, &o);
        assert_eq!((out.len(), out[6]), (40 + 36, proto::ETHERNET));
        assert_eq!(out[40..], hex(FRAME)[..]);
    }

    #[test]
    fn h_encaps_red_one_sid_matches_scapy() {
        let s = segs(&["fc00:1::"]);
        let t =
            EncapTemplate::new(&EncapParams { reduced: true, ..EncapParams::new(a6("2001:db8::100"), &s) }).unwrap();
        assert!(!t.has_srh());
        let (o, b) = run(&hex(INNER4), &t, h_encaps_red);
        assert_eq!(out_bytes(&b, &o), hex(H_ENCAPS_RED_1SID_V4));
    }

    #[test]
    fn inner_ttl_headroom_size() {
        let s = segs(&["fc00:1::", "fc00:2::"]);
        let t = EncapTemplate::new(&EncapParams::new(a6("2001:db8::100"), &s)).unwrap();
        let mut v4 = hex(INNER4);
        v4[8] = 1;
        let (o, b) = run(&v4, &t, h_encaps);
        assert_eq!(o, Outcome::Drop { reason: DropReason::InnerTtlExceeded, icmp: Some(IcmpError::TtlExceededV4) });
        assert_eq!(b[ROOM..], v4[..]);
        let mut v6 = hex(INNER6);
        v6[7] = 0;
        let (o, _) = run(&v6, &t, h_encaps);
        assert_eq!(o, Outcome::Drop { reason: DropReason::InnerTtlExceeded, icmp: Some(IcmpError::HopLimitExceeded) });
        // Not decremented: TTL 1 passes and the outer hop limit copies it.
        let t1 =
            EncapTemplate::new(&EncapParams { decrement_inner: false, ..EncapParams::new(a6("::1"), &s) }).unwrap();
        let (o, b) = run(&v4, &t1, h_encaps);
        assert_eq!(out_bytes(&b, &o)[7], 1);
        // Headroom, size, payload kind.
        let inner = hex(INNER4);
        let mut b = with_headroom(&inner, 79);
        assert_eq!(h_encaps(&mut b, 79, inner.len(), &t, 0), Outcome::drop(DropReason::NoHeadroom));
        assert_eq!(b[79..], inner[..]);
        let mut big = vec![0u8; 80 + 65_500];
        big[80] = 0x45;
        big[88] = 64;
        assert_eq!(h_encaps(&mut big, 80, 65_500, &t, 0), Outcome::drop(DropReason::TooBig));
        let mut junk = with_headroom(&[0x10; 30], ROOM);
        assert_eq!(h_encaps(&mut junk, ROOM, 30, &t, 0), Outcome::drop(DropReason::NotIp));
        assert_eq!(h_encaps(&mut junk, ROOM, 0, &t, 0), Outcome::drop(DropReason::NotIp));
        assert_eq!(h_encaps(&mut junk, ROOM, 31, &t, 0), Outcome::drop(DropReason::BadSpan));
    }

    #[test]
    fn template_errors_and_flow_label_copy() {
        assert_eq!(EncapTemplate::new(&EncapParams::new(a6("::1"), &[])), Err(TemplateError::NoSegments));
        let many = vec![a6("fc00::1"); MAX_SEGMENTS + 1];
        assert_eq!(EncapTemplate::new(&EncapParams::new(a6("::1"), &many)), Err(TemplateError::TooManySegments));
        let t = EncapTemplate::new(&EncapParams::new(a6("::1"), &many[..MAX_SEGMENTS])).unwrap();
        assert_eq!(t.len(), 40 + 8 + 16 * MAX_SEGMENTS);
        let keys = HmacKeyTable::new();
        let p = EncapParams { hmac: Some((&keys, 9)), ..EncapParams::new(a6("::1"), &many[..1]) };
        assert_eq!(EncapTemplate::new(&p), Err(TemplateError::Hmac(SrhError::HmacUnknownKey)));
        // Flow label copied from an IPv6 inner packet.
        let s = segs(&["fc00:1::"]);
        let t = EncapTemplate::new(&EncapParams { flow_label: FlowLabel::Copy, ..EncapParams::new(a6("::1"), &s) })
            .unwrap();
        let mut v6 = hex(INNER6);
        v6[1..4].copy_from_slice(&[0x0a, 0xbc, 0xde]);
        let (o, b) = run(&v6, &t, h_encaps);
        assert_eq!(out_bytes(&b, &o)[1..4], [0x0a, 0xbc, 0xde]);
        let (o, b) = run(&hex(INNER4), &t, h_encaps);
        assert_eq!(out_bytes(&b, &o)[1..4], [0x81, 0x23, 0x45], "hash for IPv4, TC 0xb8 copied");
        assert!(format!("{t:?}").starts_with("EncapTemplate { header: ["));
    }

    #[test]
    fn hmac_template_verifies() {
        let mut keys = HmacKeyTable::new();
        keys.insert(77, b"k3y").unwrap();
        let s = segs(&["fc00:1::", "fc00:2::", "fc00:3::"]);
        for reduced in [false, true] {
            let p = EncapParams {
                reduced,
                flags: srh_flags::LINUX_HMAC,
                hmac: Some((&keys, 77)),
                ..EncapParams::new(a6("2001:db8::100"), &s)
            };
            let t = EncapTemplate::new(&p).unwrap();
            let (o, b) = run(&hex(INNER4), &t, if reduced { h_encaps_red } else { h_encaps });
            let out = out_bytes(&b, &o);
            let srh = Srh::new_checked(&out[40..]).unwrap();
            let tlv = srh.hmac_tlv().unwrap().unwrap();
            assert_eq!((tlv.d_flag, tlv.key_id), (reduced, 77));
            let pol = HmacPolicy { mode: HmacMode::Required, check_destination: true };
            let src = a6("2001:db8::100").octets();
            assert_eq!(hmac::verify(&keys, pol, &src, &a6("fc00:1::").octets(), &srh), Ok(()));
        }
        // One SID reduced with an HMAC keeps a one-segment SRH (as Linux).
        let p = EncapParams { reduced: true, hmac: Some((&keys, 77)), ..EncapParams::new(a6("::1"), &s[..1]) };
        let t = EncapTemplate::new(&p).unwrap();
        assert_eq!((t.has_srh(), t.len()), (true, 40 + 24 + 40));
    }

    #[test]
    fn end_b6_encaps_processes_then_pushes() {
        // The End vector of endpoint.rs: SL 1 -> 0, DA fc00:3::, hop limit 63,
        // then IPv6 + SRH <fc00:a::, fc00:b::> in front.
        let end_in = hex("6000000000452b4020010db8000000000000000000000001fc000002000000000000000000000000\
            1106040102000000fc000003000000000000000000000000fc000002000000000000000000000000\
            fc00000100000000000000000000000004d2162e000d123468656c6c6f");
        let end_out = hex("6000000000452b3f20010db8000000000000000000000001fc000003000000000000000000000000\
            1106040002000000fc000003000000000000000000000000fc000002000000000000000000000000\
            fc00000100000000000000000000000004d2162e000d123468656c6c6f");
        let s = segs(&["fc00:a::", "fc00:b::"]);
        let t = EncapTemplate::new(&EncapParams { decrement_inner: false, ..EncapParams::new(a6("2001:db8::2"), &s) })
            .unwrap();
        let mut b = with_headroom(&end_in, ROOM);
        let o = end_b6_encaps(&mut b, ROOM, end_in.len(), &EndOpts::default(), &t, 5);
        let out = out_bytes(&b, &o);
        assert_eq!(out[80..], end_out[..]);
        assert_eq!((out[6], out[40], out[7]), (43, 41, 63));
        assert_eq!(u16::from_be_bytes([out[4], out[5]]) as usize, out.len() - 40);
        // The Red variant wants a reduced template; no headroom leaves the
        // packet untouched.
        let mut b = with_headroom(&end_in, ROOM);
        let o = end_b6_encaps_red(&mut b, ROOM, end_in.len(), &EndOpts::default(), &t, 5);
        assert_eq!(o, Outcome::drop(DropReason::TemplateMismatch));
        let mut b = with_headroom(&end_in, 10);
        let o = end_b6_encaps(&mut b, 10, end_in.len(), &EndOpts::default(), &t, 5);
        assert_eq!((o, &b[10..]), (Outcome::drop(DropReason::NoHeadroom), &end_in[..]));
        // SL = 0: the SID is the destination: section 4.1.1.
        let mut b = with_headroom(&end_out, ROOM);
        let o = end_b6_encaps(&mut b, ROOM, end_out.len(), &EndOpts::default(), &t, 5);
        assert_eq!(o.drop_reason(), Some(DropReason::UpperLayerNotAllowed));
        let tr = EncapTemplate::new(&EncapParams { reduced: true, ..EncapParams::new(a6("2001:db8::2"), &s) }).unwrap();
        let mut b = with_headroom(&end_in, ROOM);
        let o = end_b6_encaps_red(&mut b, ROOM, end_in.len(), &EndOpts::default(), &tr, 5);
        assert_eq!(out_bytes(&b, &o).len(), 40 + 24 + end_in.len());
    }
}
