//! End.DX2/DX4/DX6 and End.DT4/DT6/DT46 on arbitrary bytes.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use vswitch_srv6::behavior::{
    end_dt4, end_dt46, end_dt6, end_dx2, end_dx4, end_dx6, EndOpts, Inner, Outcome, UpperSet,
};

type Decap = fn(&mut [u8], usize, usize, &EndOpts<'_>, u32) -> Outcome;

fuzz_target!(|data: &[u8]| {
    let opts = EndOpts { local_upper: UpperSet::ICMPV6, ..EndOpts::default() };
    let fs: [Decap; 5] = [end_dx2, end_dx4, end_dx6, end_dt4, end_dt6];
    for (i, f) in fs.into_iter().enumerate() {
        let (o, b) = common::run(data, |b, s, l| f(b, s, l, &opts, i as u32));
        if let Outcome::Decap { span, inner, .. } = o {
            // The inner packet is a suffix of the input, unchanged.
            assert_eq!(&b[span.range()], &data[span.start - common::ROOM..][..span.len]);
            match inner {
                Inner::Ethernet => assert!(span.len >= 14),
                Inner::Ipv4 => assert!(span.len >= 20 && b[span.start] >> 4 == 4),
                Inner::Ipv6 => assert!(span.len >= 40 && b[span.start] >> 4 == 6),
            }
        }
    }
    common::run(data, |b, s, l| end_dt46(b, s, l, &opts, 4, 6));
});
