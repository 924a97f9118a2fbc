//! Property tests across the behaviours:
//! - a packet encapsulated by a headend and then processed by End at every
//!   SID visits the segments in order, and the final decapsulation gives
//!   back the original bytes (L3 and L2, normal and reduced, with and
//!   without PSP/USD);
//! - no input makes any behaviour panic or write outside the buffer, spans
//!   in outcomes stay inside the buffer, and a dropped packet is left as it
//!   was received.

use std::net::Ipv6Addr;

use proptest::prelude::*;
use vswitch_srv6::behavior::*;
use vswitch_srv6::hmac::{HmacKeyTable, HmacMode, HmacPolicy};
use vswitch_srv6::srh::Srh;

const ROOM: usize = MAX_ENCAP_LEN + 64;

fn seg(i: usize, salt: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfc00, salt, i as u16 + 1, 0, 0, 0, 0, 0)
}

/// An inner packet built with etherparse: IPv4/UDP, IPv6/UDP or an
/// Ethernet frame carrying IPv4/UDP.
fn inner_packet(kind: u8, payload: &[u8], ttl: u8) -> Vec<u8> {
    let mut out = Vec::new();
    match kind % 3 {
        0 => etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], ttl)
            .udp(1000, 2000)
            .write(&mut out, payload)
            .unwrap(),
        1 => etherparse::PacketBuilder::ipv6([0x20; 16], [0x30; 16], ttl)
            .udp(1000, 2000)
            .write(&mut out, payload)
            .unwrap(),
        _ => etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], ttl)
            .udp(1000, 2000)
            .write(&mut out, payload)
            .unwrap(),
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encap_walk_decap(
        kind in 0u8..3,
        nseg in 1usize..8,
        salt: u16,
        reduced: bool,
        psp: bool,
        usd: bool,
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        flow: u32,
    ) {
        let l2 = kind == 2;
        let inner = inner_packet(kind, &payload, 64);
        let segs: Vec<Ipv6Addr> = (0..nseg).map(|i| seg(i, salt)).collect();
        let params = EncapParams {
            reduced,
            l2,
            decrement_inner: false,
            ..EncapParams::new("2001:db8::100".parse().unwrap(), &segs)
        };
        let t = EncapTemplate::new(&params).unwrap();
        let mut buf = vec![0u8; ROOM];
        buf.extend_from_slice(&inner);
        let f = match (l2, reduced) {
            (false, false) => h_encaps,
            (false, true) => h_encaps_red,
            (true, false) => h_encaps_l2,
            (true, true) => h_encaps_l2_red,
        };
        let Outcome::Forward { span, dst, next: Next::Lookup } = f(&mut buf, ROOM, inner.len(), &t, flow) else {
            panic!("encap failed");
        };
        prop_assert_eq!(dst, segs[0]);
        prop_assert_eq!(span.start + span.len, buf.len());
        // etherparse agrees on the outer header and chain.
        let v6 = etherparse::Ipv6Slice::from_slice(&buf[span.range()]).unwrap();
        let want_nh = if l2 { 143 } else if kind == 0 { 4 } else { 41 };
        prop_assert_eq!(v6.payload().ip_number.0, want_nh);
        prop_assert_eq!(v6.payload().payload, &inner[..]);

        // Walk: End at S1 .. S(n-1).
        let (mut start, mut len) = (span.start, span.len);
        let opts = EndOpts { flavors: Flavors { psp, ..Flavors::default() }, ..EndOpts::default() };
        for (i, want) in segs.iter().enumerate().skip(1) {
            let hl_before = buf[start + 7];
            match end(&mut buf, start, len, &opts) {
                Outcome::Forward { span, dst, next: Next::Lookup } => {
                    prop_assert_eq!(dst, *want, "segment {}", i);
                    prop_assert_eq!(&buf[span.start + 24..span.start + 40], &want.octets()[..]);
                    prop_assert_eq!(buf[span.start + 7], hl_before - 1);
                    start = span.start;
                    len = span.len;
                }
                o => panic!("End at segment {i}: {o:?}"),
            }
        }
        // At the last SID: decapsulate, by End.DT46 / End.DX2 or End with USD.
        let out = if l2 {
            end_dx2(&mut buf, start, len, &EndOpts::default(), 3)
        } else if usd {
            let o = EndOpts { flavors: Flavors { usd: true, ..Flavors::default() }, ..EndOpts::default() };
            end(&mut buf, start, len, &o)
        } else {
            end_dt46(&mut buf, start, len, &EndOpts::default(), 4, 6)
        };
        let Outcome::Decap { span, inner: k, .. } = out else { panic!("decap: {out:?}") };
        prop_assert_eq!(k.protocol(), want_nh);
        prop_assert_eq!(&buf[span.range()], &inner[..]);
    }
}

/// Every behaviour on `buf[start..start + len]`, checking the invariants.
fn all_behaviours(bytes: &[u8], start: usize, len: usize, keys: &HmacKeyTable) {
    let segs = ["fc00::1".parse().unwrap(), "fc00::2".parse().unwrap(), "fc00::3".parse().unwrap()];
    let mk = |reduced, l2| {
        EncapTemplate::new(&EncapParams { reduced, l2, ..EncapParams::new("2001:db8::1".parse().unwrap(), &segs) })
            .unwrap()
    };
    let (t, tr, tl, tlr) = (mk(false, false), mk(true, false), mk(false, true), mk(true, true));
    let csid = Flavors { psp: true, usp: true, usd: true, next_csid: Some(CsidFormat::F3216) };
    let hmac = HmacCheck { keys, policy: HmacPolicy { mode: HmacMode::IfPresent, check_destination: true } };
    let opt_sets = [
        EndOpts::default(),
        EndOpts { flavors: csid, local_upper: UpperSet::ICMPV6, hmac: Some(hmac) },
        EndOpts {
            flavors: Flavors { usp: true, ..Flavors::default() },
            local_upper: UpperSet::EMPTY.with(17),
            hmac: None,
        },
    ];
    let sproxy = StaticProxy { inner: Inner::Ipv4, to_sf: Next::Adjacency(1), cache: t.clone() };
    let dproxy = DynamicProxy { inner: Inner::Ipv6, to_sf: Next::Interface(2) };
    let mut cache = DynamicProxyCache::new();
    type F<'a> = Box<dyn FnMut(&mut [u8]) -> Outcome + 'a>;
    for opts in &opt_sets {
        let fs: Vec<F<'_>> = vec![
            Box::new(|b| end(b, start, len, opts)),
            Box::new(|b| end_x(b, start, len, opts, 1)),
            Box::new(|b| end_t(b, start, len, opts, 2)),
            Box::new(|b| end_dx2(b, start, len, opts, 3)),
            Box::new(|b| end_dx4(b, start, len, opts, 4)),
            Box::new(|b| end_dx6(b, start, len, opts, 5)),
            Box::new(|b| end_dt4(b, start, len, opts, 6)),
            Box::new(|b| end_dt6(b, start, len, opts, 7)),
            Box::new(|b| end_dt46(b, start, len, opts, 8, 9)),
            Box::new(|b| end_b6_encaps(b, start, len, opts, &t, 1)),
            Box::new(|b| end_b6_encaps_red(b, start, len, opts, &tr, 1)),
            Box::new(|b| h_encaps(b, start, len, &t, 1)),
            Box::new(|b| h_encaps_red(b, start, len, &tr, 1)),
            Box::new(|b| h_encaps_l2(b, start, len, &tl, 1)),
            Box::new(|b| h_encaps_l2_red(b, start, len, &tlr, 1)),
            Box::new(|b| end_as(b, start, len, opts, &sproxy)),
            Box::new(|b| end_as_return(b, start, len, &sproxy, 1)),
            Box::new(|b| end_ad(b, start, len, opts, &dproxy, &mut cache)),
            Box::new(|b| end_am(b, start, len, opts, Next::Adjacency(1))),
            Box::new(|b| end_am_return(b, start, len)),
        ];
        for mut f in fs {
            let mut b = bytes.to_vec();
            let o = f(&mut b);
            check(bytes, &b, o);
        }
    }
    let mut b = bytes.to_vec();
    let o = end_ad_return(&mut b, start, len, &dproxy, &cache);
    check(bytes, &b, o);
}

fn check(before: &[u8], after: &[u8], o: Outcome) {
    assert_eq!(before.len(), after.len());
    match o {
        Outcome::Forward { span, .. } | Outcome::Decap { span, .. } => {
            assert!(span.start + span.len <= after.len(), "{o:?}");
        }
        Outcome::Local { span, offset, .. } => {
            assert!(span.start + span.len <= after.len() && offset <= span.len, "{o:?}");
        }
        Outcome::Drop { .. } => assert_eq!(before, after, "a drop must leave the packet as received: {o:?}"),
    }
}

/// A plausible SRv6 packet (so mutations reach deep code paths).
fn srv6_packet(nh: u8, sl: u8, nseg: usize, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0, 0, 0, 43, 64];
    p.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&seg(usize::from(sl), 0).octets());
    p.extend_from_slice(&[nh, (2 * nseg) as u8, 4, sl, (nseg - 1) as u8, 0, 0, 0]);
    for i in 0..nseg {
        p.extend_from_slice(&seg(i, 0).octets());
    }
    p.extend_from_slice(payload);
    let l = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&l.to_be_bytes());
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        start in 0usize..700,
        len in 0usize..500,
    ) {
        let mut keys = HmacKeyTable::new();
        keys.insert(1, b"k").unwrap();
        all_behaviours(&bytes, start, len, &keys);
        all_behaviours(&bytes, 0, bytes.len(), &keys);
    }

    #[test]
    fn mutated_srv6_never_panics(
        nh in prop::sample::select(vec![4u8, 41, 143, 58, 17, 43, 0, 60, 44]),
        sl in 0u8..4,
        nseg in 1usize..4,
        inner_kind in 0u8..3,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let inner = inner_packet(inner_kind, b"payload", 3);
        let pkt = srv6_packet(nh, sl, nseg, &inner);
        let mut bytes = vec![0u8; ROOM];
        bytes.extend_from_slice(&pkt);
        for (i, v) in &flips {
            let at = ROOM + i.index(pkt.len());
            bytes[at] = *v;
        }
        let keys = HmacKeyTable::new();
        all_behaviours(&bytes, ROOM, pkt.len(), &keys);
        all_behaviours(&bytes, ROOM, cut.index(pkt.len() + 1), &keys);
        // The unmutated packet parses.
        if flips.is_empty() && usize::from(sl) <= nseg {
            prop_assert!(Srh::new_checked(&pkt[40..]).is_ok());
        }
    }
}
