//! H.Encaps, .Red, .L2, .L2.Red and End.B6.Encaps[.Red] on arbitrary bytes:
//! what they push must parse back as an IPv6 header and SRH whose payload
//! is the input.
#![no_main]

mod common;

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use vswitch_srv6::behavior::{
    end_b6_encaps, end_b6_encaps_red, h_encaps, h_encaps_l2, h_encaps_l2_red, h_encaps_red, EncapParams, EncapTemplate,
    EndOpts, Outcome,
};
use vswitch_srv6::srh::Srh;

type Headend = fn(&mut [u8], usize, usize, &EncapTemplate, u32) -> Outcome;

fuzz_target!(|input: &[u8]| {
    let Some((&sel, data)) = input.split_first() else {
        return;
    };
    let n = 1 + usize::from(sel % 4);
    let segs: Vec<Ipv6Addr> = (0..n).map(|i| Ipv6Addr::new(0xfc00, i as u16, 0, 0, 0, 0, 0, 1)).collect();
    let mk = |reduced, l2| {
        let p = EncapParams {
            reduced,
            l2,
            decrement_inner: sel & 0x10 != 0,
            ..EncapParams::new(Ipv6Addr::LOCALHOST, &segs)
        };
        EncapTemplate::new(&p).unwrap()
    };
    let ts = [mk(false, false), mk(true, false), mk(false, true), mk(true, true)];
    let hs: [Headend; 4] = [h_encaps, h_encaps_red, h_encaps_l2, h_encaps_l2_red];
    for (t, h) in ts.iter().zip(hs) {
        let (o, b) = common::run(data, |b, s, l| h(b, s, l, t, u32::from(sel)));
        if let Outcome::Forward { span, dst, .. } = o {
            assert_eq!(dst, segs[0]);
            assert_eq!(span.start + span.len, common::ROOM + data.len());
            let pkt = &b[span.range()];
            assert_eq!(usize::from(u16::from_be_bytes([pkt[4], pkt[5]])) + 40, pkt.len());
            if t.has_srh() {
                let srh = Srh::new_checked(&pkt[40..]).unwrap();
                assert_eq!(40 + srh.header_len(), t.len());
            }
        }
    }
    let opts = EndOpts::default();
    common::run(data, |b, s, l| end_b6_encaps(b, s, l, &opts, &ts[0], 1));
    common::run(data, |b, s, l| end_b6_encaps_red(b, s, l, &opts, &ts[1], 1));
});
