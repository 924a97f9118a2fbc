//! ICMPv4 messages and the quoted datagram of error messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch_wire::{checksum, icmpv4_type, Icmpv4Packet, Ipv4Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Icmpv4Packet::new_checked(data) else {
        assert!(data.len() < 8);
        return;
    };
    let _ = p.to_string();
    assert_eq!(p.data().len(), data.len() - 8);
    let _ = (
        p.msg_type(),
        p.code(),
        p.checksum(),
        p.rest_of_header(),
        p.pointer(),
    );
    let _ = (
        p.echo_ident(),
        p.echo_seq_no(),
        p.next_hop_mtu(),
        p.is_error(),
    );
    assert_eq!(
        p.verify_checksum(),
        checksum::fold(checksum::sum(data)) == 0xffff
    );
    if p.is_error() {
        if let Ok(inner) = Ipv4Packet::new_checked(p.data()) {
            let _ = inner.to_string();
        }
    }

    // Echo responder path: flip to a reply, patch incrementally, compare.
    let mut buf = data.to_vec();
    let mut q = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
    q.fill_checksum();
    assert!(q.verify_checksum());
    let old = u16::from_be_bytes([q.msg_type(), q.code()]);
    q.set_msg_type(icmpv4_type::ECHO_REPLY);
    let c = checksum::update_u16(q.checksum(), old, u16::from(q.code()));
    q.set_checksum(c);
    // RFC 1624's one blind spot: if everything but the checksum is now
    // zero, the right checksum is 0xFFFF but eqn. 3 gives its twin 0x0000.
    let all_zero = buf[..2].iter().chain(&buf[4..]).all(|&b| b == 0);
    let q = Icmpv4Packet::new_checked(&buf[..]).unwrap();
    if all_zero {
        assert_eq!(q.checksum(), 0x0000);
    } else {
        assert!(q.verify_checksum());
    }
});
