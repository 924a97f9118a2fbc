//! ICMPv6 messages, NDP views and options, and the NS/NA emitters.
//! Input: 16-byte source, 16-byte destination address, then the message.
#![no_main]

use core::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use vswitch_wire::{
    emit_neighbor_advert, emit_neighbor_solicit, Error, Icmpv6Packet, MacAddr, NdpNeighborAdvert,
    NdpNeighborSolicit, NdpOption, NdpOptionIter, NdpRouterAdvert, NdpRouterSolicit,
};

fn walk(options: &[u8]) {
    let mut n = 0;
    for o in NdpOptionIter::new(options) {
        n += 1;
        match o {
            Ok(NdpOption::Other { data, .. }) => assert!(data.len() + 2 <= options.len()),
            Ok(NdpOption::PrefixInfo { prefix_len, .. }) => {
                let _ = prefix_len;
            }
            Ok(o) => {
                let _ = format!("{o:?}");
            }
            Err(e) => assert_eq!(e, Error::Malformed),
        }
    }
    // Each option is at least 8 bytes, so the walk is bounded.
    assert!(n <= options.len() / 8 + 1);
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 32 {
        walk(data);
        return;
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&data[..16]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&data[16..32]).unwrap());
    let msg = &data[32..];
    walk(msg);

    if let Ok(p) = Icmpv6Packet::new_checked(msg) {
        let _ = p.to_string();
        let _ = (
            p.msg_type(),
            p.code(),
            p.checksum(),
            p.echo_ident(),
            p.echo_seq_no(),
        );
        let _ = (p.mtu(), p.pointer(), p.data(), p.is_error());
        let ok = p.verify_checksum(&src, &dst);
        let mut buf = msg.to_vec();
        let mut q = Icmpv6Packet::new_unchecked(&mut buf[..]);
        q.fill_checksum(&src, &dst);
        assert!(q.verify_checksum(&src, &dst));
        if ok {
            // A message that verified can differ only in the ±0 encoding.
            assert!(q.checksum() == p.checksum() || (q.checksum() ^ p.checksum()) == 0xffff);
        }
    } else {
        assert!(msg.len() < 8);
    }

    if let Ok(ns) = NdpNeighborSolicit::new_checked(msg) {
        let _ = (
            ns.to_string(),
            ns.target_addr(),
            ns.checksum(),
            ns.verify_checksum(&src, &dst),
        );
        walk(ns.options());
        ns.option_iter().for_each(drop);
    }
    if let Ok(na) = NdpNeighborAdvert::new_checked(msg) {
        let _ = (
            na.to_string(),
            na.target_addr(),
            na.router(),
            na.solicited(),
            na.override_(),
        );
        assert_eq!(na.flags() & 0x1f, 0);
        walk(na.options());
    }
    if let Ok(rs) = NdpRouterSolicit::new_checked(msg) {
        let _ = rs.to_string();
        walk(rs.options());
    }
    if let Ok(ra) = NdpRouterAdvert::new_checked(msg) {
        let _ = (
            ra.to_string(),
            ra.cur_hop_limit(),
            ra.managed(),
            ra.other_config(),
        );
        let _ = (
            ra.router_lifetime(),
            ra.reachable_time(),
            ra.retrans_timer(),
        );
        walk(ra.options());
    }

    // Emitters: whatever they write parses back with the same fields.
    let mac = MacAddr::from_bytes(&data[..6]);
    let flags = data[6];
    let mut buf = [0u8; 32];
    let n =
        emit_neighbor_solicit(&mut buf, &src, &dst, &dst, (flags & 1 == 1).then_some(mac)).unwrap();
    let ns = NdpNeighborSolicit::new_checked(&buf[..n]).unwrap();
    assert!(ns.verify_checksum(&src, &dst));
    assert_eq!(ns.target_addr(), dst);
    let n = emit_neighbor_advert(&mut buf, &src, &dst, &src, flags, Some(mac)).unwrap();
    let na = NdpNeighborAdvert::new_checked(&buf[..n]).unwrap();
    assert!(na.verify_checksum(&src, &dst));
    assert_eq!(na.flags(), flags & 0xe0);
    assert_eq!(
        na.option_iter().next(),
        Some(Ok(NdpOption::TargetLinkLayer(mac)))
    );
});
