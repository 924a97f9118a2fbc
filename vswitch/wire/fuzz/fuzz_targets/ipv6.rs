//! IPv6 header and the extension-header walk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch_wire::{
    ip_protocol, ipv6_walk_ext_headers, is_ext_header, Error, Ipv6ExtHeader, Ipv6FragmentHeader,
    Ipv6OptionIter, Ipv6Packet, Ipv6RoutingHeader, Ipv6Upper,
};

/// Checks a walk result against the data it walked, re-reading each header
/// through the generic views.
fn check_walk(first: u8, data: &[u8]) {
    let up: Ipv6Upper = match ipv6_walk_ext_headers(first, data) {
        Ok(u) => u,
        Err(e) => {
            assert!(e == Error::Truncated || e == Error::Malformed);
            return;
        }
    };
    assert!(up.offset <= data.len());
    assert_eq!(
        up.offset == 0,
        up.protocol == first && !is_ext_header(first)
    );
    if let Some(ro) = up.routing_offset {
        assert!(ro < up.offset);
        let rh = Ipv6RoutingHeader::new_checked(&data[ro..]).unwrap();
        assert!(ro + rh.header_len() <= up.offset);
        let _ = (
            rh.to_string(),
            rh.routing_type(),
            rh.segments_left(),
            rh.data(),
        );
    }
    // Re-walk with the views; must land on the same offset.
    let (mut nh, mut off) = (first, 0usize);
    while off < up.offset {
        let rest = &data[off..];
        let len = match nh {
            ip_protocol::IPV6_FRAG => {
                let f = Ipv6FragmentHeader::new_checked(rest).unwrap();
                let _ = (f.to_string(), f.frag_offset(), f.more_frags(), f.ident());
                assert!(up.is_fragment);
                8
            }
            ip_protocol::AH => {
                let h = Ipv6ExtHeader::new_checked_ah(rest).unwrap();
                let _ = h.to_string();
                h.header_len()
            }
            _ => {
                let h = Ipv6ExtHeader::new_checked(rest).unwrap();
                let _ = h.to_string();
                for (_, d) in Ipv6OptionIter::new(h.data()).flatten() {
                    assert!(d.len() < h.data().len());
                }
                h.header_len()
            }
        };
        nh = rest[0];
        off += len;
    }
    assert_eq!(off, up.offset);
    assert_eq!(nh, up.protocol);
}

fuzz_target!(|data: &[u8]| {
    // The walker on raw bytes, first byte as the starting next header.
    if let Some((&first, rest)) = data.split_first() {
        check_walk(first, rest);
    }

    let Ok(p) = Ipv6Packet::new_checked(data) else {
        return;
    };
    let _ = p.to_string();
    assert_eq!(p.version(), 6);
    assert_eq!(p.payload().len(), usize::from(p.payload_len()));
    assert!(p.flow_label() < 1 << 20);
    assert_eq!(p.src_u128(), u128::from(p.src_addr()));
    assert_eq!(p.dst_u128(), u128::from(p.dst_addr()));
    let _ = (p.traffic_class(), p.hop_limit());
    check_walk(p.next_header(), p.payload());

    // Setters reproduce the header.
    let mut buf = vec![0u8; data.len()];
    let mut q = Ipv6Packet::new_unchecked(&mut buf[..]);
    q.set_version(6);
    q.set_traffic_class(p.traffic_class());
    q.set_flow_label(p.flow_label());
    q.set_payload_len(p.payload_len());
    q.set_next_header(p.next_header());
    q.set_hop_limit(p.hop_limit());
    q.set_src_addr(p.src_addr());
    q.set_dst_addr(p.dst_addr());
    assert_eq!(buf[..40], data[..40]);
});
