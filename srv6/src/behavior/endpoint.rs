//! End, End.X and End.T (RFC 8986 sections 4.1-4.3) with the PSP, USP and
//! USD flavors (section 4.16) and NEXT-C-SID (RFC 9800 section 4.1).
//!
//! With an SRH and Segments Left > 0: hop limit check (Time Exceeded when
//! it is 1 or less), Last Entry / Segments Left check (Parameter Problem
//! pointing at Segments Left), then hop limit - 1, Segments Left - 1 and
//! DA = Segment List\[Segments Left\]; PSP pops the SRH when Segments Left
//! became 0. With Segments Left = 0 or no SRH the SID is the packet's
//! destination: USP pops the SRH, USD decapsulates an IPv4/IPv6 inner
//! packet, otherwise section 4.1.1 applies ([`Outcome::Local`] for the
//! protocols in [`EndOpts::local_upper`], Parameter Problem code 4 for the
//! rest). With NEXT-C-SID a nonzero argument in the destination is shifted
//! into place first and no SRH is touched.

use core::fmt;
use core::net::Ipv6Addr;

use super::{
    check_srh, decap_to, drop_icmp, dst_of, ip6, parsed, pop_srh, proto, set_dst, upper_layer, DropReason, EndOpts,
    IcmpError, Inner, Next, Outcome, Parsed, Span,
};

/// Why a [`CsidFormat`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CsidError {
    /// The Locator-Block or Locator-Node+Function length is 0.
    ZeroLength,
    /// The two lengths add up to more than 128 bits.
    TooLong,
}

impl fmt::Display for CsidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CsidError::ZeroLength => "C-SID locator-block and node-function lengths must be > 0",
            CsidError::TooLong => "C-SID locator-block plus node-function longer than 128 bits",
        })
    }
}

impl std::error::Error for CsidError {}

/// The SID structure NEXT-C-SID works with: a Locator-Block of `B` bits, a
/// Locator-Node and Function (the C-SID) of `NF` bits, and the argument in
/// the remaining `128 - B - NF` bits, which holds the next C-SIDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CsidFormat {
    block_bits: u8,
    node_function_bits: u8,
}

impl CsidFormat {
    /// Linux's defaults (32-bit block, 16-bit C-SID), the usual "uSID"
    /// F3216 format.
    pub const F3216: CsidFormat = CsidFormat { block_bits: 32, node_function_bits: 16 };

    /// A format; any bit lengths with `B > 0`, `NF > 0`, `B + NF <= 128`
    /// (Linux also insists on multiples of 8; this implementation does not).
    pub const fn new(block_bits: u8, node_function_bits: u8) -> Result<CsidFormat, CsidError> {
        if block_bits == 0 || node_function_bits == 0 {
            return Err(CsidError::ZeroLength);
        }
        if block_bits as u16 + node_function_bits as u16 > 128 {
            return Err(CsidError::TooLong);
        }
        Ok(CsidFormat { block_bits, node_function_bits })
    }

    /// Locator-Block length `B`.
    pub const fn block_bits(self) -> u8 {
        self.block_bits
    }

    /// Locator-Node + Function length `NF`.
    pub const fn node_function_bits(self) -> u8 {
        self.node_function_bits
    }

    /// Argument length `A = 128 - B - NF`.
    pub const fn argument_bits(self) -> u8 {
        128 - self.block_bits - self.node_function_bits
    }

    /// The argument bits of `dst` (the low `A` bits).
    #[inline]
    pub const fn argument(self, dst: u128) -> u128 {
        let a = self.argument_bits();
        if a == 0 {
            0
        } else {
            dst & ((1u128 << a) - 1)
        }
    }

    /// RFC 9800 section 4.1.1 S05-S06: copy the argument into bits
    /// `[B, B + A)` and zero bits `[B + A, 128)`.
    #[inline]
    pub const fn advance(self, dst: u128) -> u128 {
        let block = dst & (!0u128 << (128 - self.block_bits as u32));
        block | (self.argument(dst) << self.node_function_bits)
    }
}

/// End: forward to the next segment via a FIB lookup.
pub fn end(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>) -> Outcome {
    endpoint(buf, start, len, opts, Next::Lookup)
}

/// End.X: forward to the next segment via adjacency `adj` (the L3
/// cross-connect of RFC 8986 section 4.2).
pub fn end_x(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, adj: u32) -> Outcome {
    endpoint(buf, start, len, opts, Next::Adjacency(adj))
}

/// End.T: forward to the next segment via a lookup in FIB table `table`.
pub fn end_t(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, table: u32) -> Outcome {
    endpoint(buf, start, len, opts, Next::Table(table))
}

fn endpoint(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, next: Next) -> Outcome {
    let (pkt, p) = match parsed(buf, start, len) {
        Ok(x) => x,
        Err(o) => return o,
    };
    if let Some(csid) = opts.flavors.next_csid {
        let dst = u128::from_be_bytes(dst_of(pkt));
        if csid.argument(dst) != 0 {
            if pkt[ip6::HOP_LIMIT] <= 1 {
                return drop_icmp(DropReason::HopLimitExceeded, IcmpError::HopLimitExceeded);
            }
            let new = csid.advance(dst);
            set_dst(pkt, &new.to_be_bytes());
            pkt[ip6::HOP_LIMIT] -= 1;
            return Outcome::Forward { span: Span { start, len: p.total }, dst: Ipv6Addr::from(new), next };
        }
    }
    let Some(at) = p.srh else {
        return ultimate(buf, start, &p, opts, next);
    };
    if let Err(o) = check_srh(pkt, at, opts.hmac.as_ref()) {
        return o;
    }
    let sl = pkt[at.off + 3];
    if sl == 0 {
        return ultimate(buf, start, &p, opts, next);
    }
    if pkt[ip6::HOP_LIMIT] <= 1 {
        return drop_icmp(DropReason::HopLimitExceeded, IcmpError::HopLimitExceeded);
    }
    // Validation guarantees the old SL <= Last Entry + 1, so the new one
    // indexes the list.
    let sl = sl - 1;
    let seg_at = at.off + 8 + 16 * usize::from(sl);
    let mut seg = [0u8; 16];
    seg.copy_from_slice(&pkt[seg_at..seg_at + 16]);
    pkt[at.off + 3] = sl;
    set_dst(pkt, &seg);
    pkt[ip6::HOP_LIMIT] -= 1;
    let dst = Ipv6Addr::from(seg);
    if opts.flavors.psp && sl == 0 {
        let start = pop_srh(buf, start, p.total, at);
        return Outcome::Forward { span: Span { start, len: p.total - at.len }, dst, next };
    }
    Outcome::Forward { span: Span { start, len: p.total }, dst, next }
}

/// The SID is the packet's destination (Segments Left 0 or no SRH).
fn ultimate(buf: &mut [u8], start: usize, p: &Parsed, opts: &EndOpts<'_>, next: Next) -> Outcome {
    let f = opts.flavors;
    if f.usd {
        let kind = match p.upper {
            proto::IPV4 => Some(Inner::Ipv4),
            proto::IPV6 => Some(Inner::Ipv6),
            _ => None,
        };
        if let Some(kind) = kind {
            return decap_to(&buf[start..start + p.total], start, p, kind, next);
        }
    }
    let out = upper_layer(start, p, opts);
    match (f.usp, p.srh, out) {
        (true, Some(at), Outcome::Local { protocol, offset, .. }) => {
            let start = pop_srh(buf, start, p.total, at);
            Outcome::Local { span: Span { start, len: p.total - at.len }, protocol, offset: offset - at.len }
        }
        _ => out,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{param_problem, Flavors, HmacCheck, UpperSet};
    use super::*;
    use crate::hmac::{HmacKeyTable, HmacMode, HmacPolicy};
    use crate::srh::{Srh, SrhError, SrhRepr};

    // Generated once with Debian scapy 2.5.0 by srv6/tests/scapy/gen_vectors.py.
    const END_IN: &str = "6000000000452b4020010db8000000000000000000000001fc000002000000000000000000000000\
        1106040102000000fc000003000000000000000000000000fc000002000000000000000000000000\
        fc00000100000000000000000000000004d2162e000d123468656c6c6f";
    const END_OUT: &str = "6000000000452b3f20010db8000000000000000000000001fc000003000000000000000000000000\
        1106040002000000fc000003000000000000000000000000fc000002000000000000000000000000\
        fc00000100000000000000000000000004d2162e000d123468656c6c6f";
    const END_PSP_OUT: &str = "60000000000d113f20010db8000000000000000000000001fc000003000000000000000000000000\
        04d2162e000d123468656c6c6f";

    const ROOM: usize = 64;

    fn run(pkt: &[u8], f: impl FnOnce(&mut [u8], usize, usize) -> Outcome) -> (Outcome, Vec<u8>) {
        let mut b = with_headroom(pkt, ROOM);
        let o = f(&mut b, ROOM, pkt.len());
        (o, b)
    }

    fn bytes_of(b: &[u8], o: &Outcome) -> Vec<u8> {
        match o {
            Outcome::Forward { span, .. } | Outcome::Decap { span, .. } | Outcome::Local { span, .. } => {
                b[span.range()].to_vec()
            }
            Outcome::Drop { .. } => panic!("dropped: {o:?}"),
        }
    }

    #[test]
    fn end_matches_scapy() {
        let (o, b) = run(&hex(END_IN), |b, s, l| end(b, s, l, &EndOpts::default()));
        assert_eq!(
            o,
            Outcome::Forward { span: Span { start: ROOM, len: 109 }, dst: a6("fc00:3::"), next: Next::Lookup }
        );
        assert_eq!(bytes_of(&b, &o), hex(END_OUT));
    }

    #[test]
    fn end_psp_matches_scapy() {
        let opts = EndOpts { flavors: Flavors { psp: true, ..Flavors::default() }, ..EndOpts::default() };
        let (o, b) = run(&hex(END_IN), |b, s, l| end(b, s, l, &opts));
        assert_eq!(
            o,
            Outcome::Forward { span: Span { start: ROOM + 56, len: 53 }, dst: a6("fc00:3::"), next: Next::Lookup }
        );
        assert_eq!(bytes_of(&b, &o), hex(END_PSP_OUT));
        // PSP does nothing while more segments remain.
        let mut two = hex(END_IN);
        two[43] = 2;
        let (o, _) = run(&two, |b, s, l| end(b, s, l, &opts));
        assert_eq!(
            o,
            Outcome::Forward { span: Span { start: ROOM, len: 109 }, dst: a6("fc00:2::"), next: Next::Lookup }
        );
    }

    #[test]
    fn end_x_and_end_t_next() {
        let (o, _) = run(&hex(END_IN), |b, s, l| end_x(b, s, l, &EndOpts::default(), 7));
        assert!(matches!(o, Outcome::Forward { next: Next::Adjacency(7), .. }));
        let (o, _) = run(&hex(END_IN), |b, s, l| end_t(b, s, l, &EndOpts::default(), 100));
        assert!(matches!(o, Outcome::Forward { next: Next::Table(100), .. }));
    }

    #[test]
    fn hop_limit_and_bad_segments_left() {
        let mut p = hex(END_IN);
        p[7] = 1;
        let (o, b) = run(&p, |b, s, l| end(b, s, l, &EndOpts::default()));
        assert_eq!(o, Outcome::Drop { reason: DropReason::HopLimitExceeded, icmp: Some(IcmpError::HopLimitExceeded) });
        assert_eq!(b[ROOM..], p[..], "a dropped packet is left as received");
        let mut p = hex(END_IN);
        p[43] = 4; // SL > Last Entry + 1
        let (o, b) = run(&p, |b, s, l| end(b, s, l, &EndOpts::default()));
        assert_eq!(
            o,
            Outcome::Drop {
                reason: DropReason::Srh(SrhError::SegmentsLeftTooBig),
                icmp: Some(IcmpError::ParameterProblem { code: 0, pointer: 43 })
            }
        );
        assert_eq!(b[ROOM..], p[..]);
        p[7] = 1; // the hop limit check comes first (RFC 8986 S05 before S09)
        let (o, _) = run(&p, |b, s, l| end(b, s, l, &EndOpts::default()));
        assert!(matches!(o, Outcome::Drop { icmp: Some(IcmpError::HopLimitExceeded), .. }));
    }

    #[test]
    fn final_segment_upper_layer() {
        // SL = 0 with UDP behind: not allowed locally -> Parameter Problem
        // code 4 pointing at the UDP header (offset 96).
        let out = hex(END_OUT);
        let (o, _) = run(&out, |b, s, l| end(b, s, l, &EndOpts::default()));
        assert_eq!(o, super::super::param_problem(DropReason::UpperLayerNotAllowed, 4, 96));
        let opts = EndOpts { local_upper: UpperSet::EMPTY.with(17), ..EndOpts::default() };
        let (o, _) = run(&out, |b, s, l| end(b, s, l, &opts));
        assert_eq!(o, Outcome::Local { span: Span { start: ROOM, len: 109 }, protocol: 17, offset: 96 });
        // USP pops the SRH first.
        let opts = EndOpts { flavors: Flavors { usp: true, ..Flavors::default() }, ..opts };
        let (o, b) = run(&out, |b, s, l| end(b, s, l, &opts));
        assert_eq!(o, Outcome::Local { span: Span { start: ROOM + 56, len: 53 }, protocol: 17, offset: 40 });
        let mut want = hex(END_PSP_OUT);
        want[7] = 63;
        assert_eq!(bytes_of(&b, &o), want);
        // No SRH at all: same upper-layer rules.
        let (o, _) = run(&hex(END_PSP_OUT), |b, s, l| end(b, s, l, &EndOpts::default()));
        assert_eq!(
            o,
            super::super::param_problem(DropReason::UpperLayerNotAllowed, param_problem::SR_UPPER_LAYER_HEADER, 40)
        );
    }

    #[test]
    fn usd_decapsulates() {
        let inner = ipv4_udp(9, b"abc");
        let mut p = ipv6_hdr(43, "2001:db8::1", "fc00:1::", 64);
        p.extend_from_slice(&srh(4, 0, &["fc00:1::", "fc00:2::"]));
        p.extend_from_slice(&inner);
        fix_len(&mut p);
        let opts = EndOpts { flavors: Flavors { usd: true, ..Flavors::default() }, ..EndOpts::default() };
        let (o, b) = run(&p, |b, s, l| end_t(b, s, l, &opts, 3));
        assert_eq!(
            o,
            Outcome::Decap {
                span: Span { start: ROOM + 80, len: inner.len() },
                inner: Inner::Ipv4,
                next: Next::Table(3)
            }
        );
        assert_eq!(bytes_of(&b, &o), inner);
        // USD with SL > 0 is a plain End.
        let mut p2 = p.clone();
        p2[43] = 1;
        let (o, _) = run(&p2, |b, s, l| end(b, s, l, &opts));
        assert!(matches!(o, Outcome::Forward { .. }));
        // A truncated inner packet.
        let mut short = p[..90].to_vec();
        fix_len(&mut short);
        let (o, _) = run(&short, |b, s, l| end(b, s, l, &opts));
        assert_eq!(o, Outcome::drop(DropReason::InnerMalformed));
    }

    #[test]
    fn next_csid() {
        let f = CsidFormat::F3216;
        assert_eq!(f.argument_bits(), 80);
        assert_eq!(CsidFormat::new(0, 16), Err(CsidError::ZeroLength));
        assert_eq!(CsidFormat::new(120, 16), Err(CsidError::TooLong));
        let da = u128::from(a6("fcbb:bbbb:100:200:300::"));
        assert_eq!(Ipv6Addr::from(f.advance(da)), a6("fcbb:bbbb:200:300::"));
        assert_eq!(Ipv6Addr::from(f.advance(f.advance(da))), a6("fcbb:bbbb:300::"));
        assert_eq!(f.argument(f.advance(f.advance(da))), 0);
        // Odd bit lengths work too: B = 20, NF = 12.
        let g = CsidFormat::new(20, 12).unwrap();
        let da = (0xfffffu128 << 108) | (0xabc << 96) | (0xdef << 84) | (0x123 << 72);
        assert_eq!(g.advance(da), (0xfffffu128 << 108) | (0xdef << 96) | (0x123 << 84));
        let full = CsidFormat::new(64, 64).unwrap();
        assert_eq!((full.argument_bits(), full.argument(u128::MAX)), (0, 0));

        let opts = EndOpts { flavors: Flavors { next_csid: Some(f), ..Flavors::default() }, ..EndOpts::default() };
        let mut p = ipv6_hdr(59, "2001:db8::1", "fcbb:bbbb:100:200:300::", 64);
        fix_len(&mut p);
        let (o, b) = run(&p, |b, s, l| end(b, s, l, &opts));
        assert_eq!(
            o,
            Outcome::Forward {
                span: Span { start: ROOM, len: 40 },
                dst: a6("fcbb:bbbb:200:300::"),
                next: Next::Lookup
            }
        );
        assert_eq!((b[ROOM + 7], &b[ROOM + 24..ROOM + 40]), (63, &a6("fcbb:bbbb:200:300::").octets()[..]));
        // Argument 0: regular End processing of the SRH (next container).
        let mut p = ipv6_hdr(43, "2001:db8::1", "fcbb:bbbb:300::", 64);
        p.extend_from_slice(&srh(59, 1, &["fcbb:bbbb:400:500::", "fcbb:bbbb:100:200:300::"]));
        fix_len(&mut p);
        let (o, _) = run(&p, |b, s, l| end_x(b, s, l, &opts, 2));
        assert_eq!(
            o,
            Outcome::Forward {
                span: Span { start: ROOM, len: 80 },
                dst: a6("fcbb:bbbb:400:500::"),
                next: Next::Adjacency(2)
            }
        );
        // Hop limit expiry on the shift path.
        let mut p = ipv6_hdr(59, "2001:db8::1", "fcbb:bbbb:100:200::", 1);
        fix_len(&mut p);
        let (o, _) = run(&p, |b, s, l| end(b, s, l, &opts));
        assert_eq!(o.drop_reason(), Some(DropReason::HopLimitExceeded));
    }

    #[test]
    fn hmac_checked_before_processing() {
        let mut keys = HmacKeyTable::new();
        keys.insert(1, b"secret").unwrap();
        let segs = [a6("fc00:3::").octets(), a6("fc00:2::").octets()];
        let tlv = crate::hmac::hmac_tlv(false, 1, &[0; 32]);
        let r = SrhRepr { next_header: 59, segments_left: 1, flags: 0, tag: 0, segments: &segs, tlvs: &tlv };
        let mut s = vec![0u8; r.header_len()];
        r.emit(&mut s).unwrap();
        crate::hmac::fill(&keys, &a6("2001:db8::1").octets(), &mut s).unwrap();
        let mut p = ipv6_hdr(43, "2001:db8::1", "fc00:2::", 64);
        p.extend_from_slice(&s);
        fix_len(&mut p);
        let policy = HmacPolicy { mode: HmacMode::Required, check_destination: true };
        let opts = EndOpts { hmac: Some(HmacCheck { keys: &keys, policy }), ..EndOpts::default() };
        let (o, _) = run(&p, |b, s, l| end(b, s, l, &opts));
        assert!(matches!(o, Outcome::Forward { .. }), "{o:?}");
        // Tamper with the source: mismatch, Parameter Problem at the TLV.
        let mut bad = p.clone();
        bad[23] ^= 1;
        let (o, b) = run(&bad, |b, s, l| end(b, s, l, &opts));
        let tlv_at = 40 + Srh::new_checked(&s[..]).unwrap().tlv_offset();
        assert_eq!(
            o,
            Outcome::Drop {
                reason: DropReason::Srh(SrhError::HmacMismatch),
                icmp: Some(IcmpError::ParameterProblem { code: 0, pointer: tlv_at as u32 })
            }
        );
        assert_eq!(b[ROOM..], bad[..]);
        // Required but absent: dropped without ICMP.
        let (o, _) = run(&hex(END_IN), |b, s, l| end(b, s, l, &opts));
        assert_eq!(o, Outcome::drop(DropReason::Srh(SrhError::HmacMissing)));
    }

    #[test]
    fn bad_spans() {
        let p = hex(END_IN);
        let mut b = p.clone();
        assert_eq!(end(&mut b, 1, p.len(), &EndOpts::default()), Outcome::drop(DropReason::BadSpan));
        assert_eq!(end(&mut b, usize::MAX, 2, &EndOpts::default()), Outcome::drop(DropReason::BadSpan));
        assert_eq!(end(&mut b, 0, 10, &EndOpts::default()), Outcome::drop(DropReason::NotIpv6));
        // Trailing link padding is not part of the packet.
        let mut padded = p.clone();
        padded.extend_from_slice(&[0; 6]);
        let (o, _) = run(&padded, |b, s, l| end(b, s, l, &EndOpts::default()));
        assert!(matches!(o, Outcome::Forward { span: Span { len: 109, .. }, .. }));
    }
}
