//! End, End.X, End.T with every flavor combination on arbitrary bytes.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use vswitch_srv6::behavior::{end, end_t, end_x, CsidFormat, EndOpts, Flavors, HmacCheck, UpperSet};
use vswitch_srv6::hmac::{HmacKeyTable, HmacMode, HmacPolicy};

fuzz_target!(|input: &[u8]| {
    let Some((&sel, data)) = input.split_first() else {
        return;
    };
    let mut keys = HmacKeyTable::new();
    keys.insert(1, b"fuzz").unwrap();
    let flavors = Flavors {
        psp: sel & 1 != 0,
        usp: sel & 2 != 0,
        usd: sel & 4 != 0,
        next_csid: (sel & 8 != 0).then(|| CsidFormat::new(8 + (sel >> 4) * 6, 16).unwrap()),
    };
    let hmac = (sel & 0x40 != 0).then_some(HmacCheck {
        keys: &keys,
        policy: HmacPolicy { mode: HmacMode::IfPresent, check_destination: sel & 0x80 != 0 },
    });
    let opts = EndOpts { flavors, local_upper: UpperSet::ICMPV6.with(17), hmac };
    common::run(data, |b, s, l| end(b, s, l, &opts));
    common::run(data, |b, s, l| end_x(b, s, l, &opts, 1));
    common::run(data, |b, s, l| end_t(b, s, l, &opts, 2));
});
