//! The decapsulating final-segment behaviours: End.DX2, End.DX4, End.DX6,
//! End.DT4, End.DT6, End.DT46 (RFC 8986 sections 4.4-4.9).
//!
//! An SRH, if present, must have Segments Left 0 (else Parameter Problem
//! pointing at Segments Left) and pass the HMAC check; then, if the
//! upper-layer header is of the behaviour's type (4, 41 or 143), the outer
//! IPv6 header and all its extension headers are removed and the inner
//! packet is forwarded: to an adjacency (DX4/DX6), an interface (DX2) or
//! through a lookup in a table (DT*). Any other upper layer gets section
//! 4.1.1 (local delivery if allowed, else Parameter Problem code 4).
//! Flavors do not apply.

use super::{
    check_srh, decap_to, param_problem, parsed, proto, upper_layer, DropReason, EndOpts, Inner, Next, Outcome,
};
use crate::srh::SEGMENTS_LEFT_OFFSET;

/// End.DX2: the inner Ethernet frame goes out of interface `oif`.
pub fn end_dx2(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, oif: u32) -> Outcome {
    decap(buf, start, len, opts, |nh| (nh == proto::ETHERNET).then_some((Inner::Ethernet, Next::Interface(oif))))
}

/// End.DX4: the inner IPv4 packet goes to adjacency `adj`.
pub fn end_dx4(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, adj: u32) -> Outcome {
    decap(buf, start, len, opts, |nh| (nh == proto::IPV4).then_some((Inner::Ipv4, Next::Adjacency(adj))))
}

/// End.DX6: the inner IPv6 packet goes to adjacency `adj`.
pub fn end_dx6(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, adj: u32) -> Outcome {
    decap(buf, start, len, opts, |nh| (nh == proto::IPV6).then_some((Inner::Ipv6, Next::Adjacency(adj))))
}

/// End.DT4: the inner IPv4 packet is looked up in IPv4 table `table`.
pub fn end_dt4(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, table: u32) -> Outcome {
    decap(buf, start, len, opts, |nh| (nh == proto::IPV4).then_some((Inner::Ipv4, Next::Table(table))))
}

/// End.DT6: the inner IPv6 packet is looked up in IPv6 table `table`.
pub fn end_dt6(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, table: u32) -> Outcome {
    decap(buf, start, len, opts, |nh| (nh == proto::IPV6).then_some((Inner::Ipv6, Next::Table(table))))
}

/// End.DT46: an inner IPv4 packet is looked up in `table4`, an IPv6 one in
/// `table6` (the two tables of one VRF).
pub fn end_dt46(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, table4: u32, table6: u32) -> Outcome {
    decap(buf, start, len, opts, |nh| match nh {
        proto::IPV4 => Some((Inner::Ipv4, Next::Table(table4))),
        proto::IPV6 => Some((Inner::Ipv6, Next::Table(table6))),
        _ => None,
    })
}

#[inline]
fn decap(
    buf: &mut [u8],
    start: usize,
    len: usize,
    opts: &EndOpts<'_>,
    want: impl Fn(u8) -> Option<(Inner, Next)>,
) -> Outcome {
    let (pkt, p) = match parsed(buf, start, len) {
        Ok(x) => x,
        Err(o) => return o,
    };
    if let Some(at) = p.srh {
        if let Err(o) = check_srh(pkt, at, opts.hmac.as_ref()) {
            return o;
        }
        if pkt[at.off + SEGMENTS_LEFT_OFFSET] != 0 {
            return param_problem(DropReason::SegmentsLeftNotZero, 0, at.off + SEGMENTS_LEFT_OFFSET);
        }
    }
    match want(p.upper) {
        Some((kind, next)) => decap_to(pkt, start, &p, kind, next),
        None => upper_layer(start, &p, opts),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{IcmpError, Span, UpperSet};
    use super::*;

    const ROOM: usize = 16;

    type Behaviour = fn(&mut [u8], usize, usize, &EndOpts<'_>) -> Outcome;

    /// Outer IPv6 (+ SRH with SL `sl` if `srh_sl` is set) around `inner`.
    fn wrap(nh: u8, srh_sl: Option<u8>, inner: &[u8]) -> Vec<u8> {
        let mut p = ipv6_hdr(if srh_sl.is_some() { 43 } else { nh }, "2001:db8::1", "fc00:9::", 64);
        if let Some(sl) = srh_sl {
            p.extend_from_slice(&srh(nh, sl, &["fc00:9::", "fc00:8::"]));
        }
        p.extend_from_slice(inner);
        fix_len(&mut p);
        p
    }

    fn run(p: &[u8], f: impl FnOnce(&mut [u8], usize, usize) -> Outcome) -> (Outcome, Vec<u8>) {
        let mut b = with_headroom(p, ROOM);
        (f(&mut b, ROOM, p.len()), b)
    }

    #[test]
    fn each_decap() {
        let o = EndOpts::default();
        let v4 = ipv4_udp(20, b"four");
        let v6 = ipv6_udp(20, b"six");
        let eth = hex("020000000002 020000000001 0800 4500");
        let cases: [(u8, &[u8], Inner, Next, Behaviour); 6] = [
            (4, &v4, Inner::Ipv4, Next::Adjacency(1), |b, s, l, o| end_dx4(b, s, l, o, 1)),
            (41, &v6, Inner::Ipv6, Next::Adjacency(2), |b, s, l, o| end_dx6(b, s, l, o, 2)),
            (143, &eth, Inner::Ethernet, Next::Interface(3), |b, s, l, o| end_dx2(b, s, l, o, 3)),
            (4, &v4, Inner::Ipv4, Next::Table(4), |b, s, l, o| end_dt4(b, s, l, o, 4)),
            (41, &v6, Inner::Ipv6, Next::Table(5), |b, s, l, o| end_dt6(b, s, l, o, 5)),
            (4, &v4, Inner::Ipv4, Next::Table(6), |b, s, l, o| end_dt46(b, s, l, o, 6, 7)),
        ];
        for (nh, inner, kind, next, f) in cases {
            for sl in [None, Some(0)] {
                let p = wrap(nh, sl, inner);
                let (out, b) = run(&p, |b, s, l| f(b, s, l, &o));
                let off = if sl.is_some() { 80 } else { 40 };
                assert_eq!(
                    out,
                    Outcome::Decap { span: Span { start: ROOM + off, len: inner.len() }, inner: kind, next }
                );
                assert_eq!(b[ROOM + off..], inner[..]);
            }
            // SL > 0: Parameter Problem at Segments Left (offset 43).
            let p = wrap(nh, Some(1), inner);
            let (out, _) = run(&p, |b, s, l| f(b, s, l, &o));
            assert_eq!(out, param_problem(DropReason::SegmentsLeftNotZero, 0, 43));
        }
        let (out, _) = run(&wrap(41, Some(0), &v6), |b, s, l| end_dt46(b, s, l, &o, 6, 7));
        assert!(matches!(out, Outcome::Decap { inner: Inner::Ipv6, next: Next::Table(7), .. }));
    }

    #[test]
    fn wrong_or_bad_inner() {
        let v4 = ipv4_udp(20, b"four");
        // IPv4 inner at an End.DT6 SID: section 4.1.1.
        let (out, _) = run(&wrap(4, Some(0), &v4), |b, s, l| end_dt6(b, s, l, &EndOpts::default(), 1));
        assert_eq!(
            out,
            Outcome::Drop {
                reason: DropReason::UpperLayerNotAllowed,
                icmp: Some(IcmpError::ParameterProblem { code: 4, pointer: 80 })
            }
        );
        let local = EndOpts { local_upper: UpperSet::EMPTY.with(4), ..EndOpts::default() };
        let (out, _) = run(&wrap(4, None, &v4), |b, s, l| end_dt6(b, s, l, &local, 1));
        assert_eq!(out, Outcome::Local { span: Span { start: ROOM, len: 40 + v4.len() }, protocol: 4, offset: 40 });
        // Next header says IPv4, the bytes are not.
        let (out, _) = run(&wrap(4, None, &ipv6_udp(3, b"")), |b, s, l| end_dt4(b, s, l, &EndOpts::default(), 1));
        assert_eq!(out, Outcome::drop(DropReason::InnerMalformed));
        let (out, _) = run(&wrap(143, None, &[0; 13]), |b, s, l| end_dx2(b, s, l, &EndOpts::default(), 1));
        assert_eq!(out, Outcome::drop(DropReason::InnerMalformed));
        // A first fragment of the outer packet.
        let mut p = ipv6_hdr(44, "2001:db8::1", "fc00:9::", 64);
        p.extend_from_slice(&[4, 0, 0, 1, 0, 0, 0, 9]);
        p.extend_from_slice(&v4);
        fix_len(&mut p);
        let (out, _) = run(&p, |b, s, l| end_dt4(b, s, l, &EndOpts::default(), 1));
        assert_eq!(out, Outcome::drop(DropReason::OuterFragment));
    }
}
