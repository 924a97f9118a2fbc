//! End.AS, End.AD, End.AM, both halves, on arbitrary bytes.
#![no_main]

mod common;

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use vswitch_srv6::behavior::{
    end_ad, end_ad_return, end_am, end_am_return, end_as, end_as_return, DynamicProxy, DynamicProxyCache, EncapParams,
    EncapTemplate, EndOpts, Inner, Next, Outcome,
};

fuzz_target!(|input: &[u8]| {
    let Some((&sel, data)) = input.split_first() else {
        return;
    };
    let inner = [Inner::Ipv4, Inner::Ipv6, Inner::Ethernet][usize::from(sel % 3)];
    let segs = [Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 9)];
    let p = EncapParams { l2: inner == Inner::Ethernet, ..EncapParams::new(Ipv6Addr::LOCALHOST, &segs) };
    let sproxy = vswitch_srv6::behavior::StaticProxy {
        inner,
        to_sf: Next::Interface(1),
        cache: EncapTemplate::new(&p).unwrap(),
    };
    let opts = EndOpts::default();
    common::run(data, |b, s, l| end_as(b, s, l, &opts, &sproxy));
    common::run(data, |b, s, l| end_as_return(b, s, l, &sproxy, 3));

    let dproxy = DynamicProxy { inner, to_sf: Next::Adjacency(2) };
    let mut cache = DynamicProxyCache::new();
    let (o, _) = common::run(data, |b, s, l| end_ad(b, s, l, &opts, &dproxy, &mut cache));
    assert_eq!(cache.is_empty(), !matches!(o, Outcome::Decap { .. }));
    // Return traffic: the same bytes, and the decapsulated packet if any.
    common::run(data, |b, s, l| end_ad_return(b, s, l, &dproxy, &cache));

    common::run(data, |b, s, l| end_am(b, s, l, &opts, Next::Adjacency(3)));
    common::run(data, |b, s, l| end_am_return(b, s, l));
});
