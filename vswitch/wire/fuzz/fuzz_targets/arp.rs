//! ARP parsing, and the emitters round-tripping what was parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch_wire::{arp_op, emit_arp_reply, emit_arp_request, ArpPacket, Error};

fuzz_target!(|data: &[u8]| {
    let p = match ArpPacket::new_checked(data) {
        Ok(p) => p,
        Err(Error::Truncated) => {
            assert!(data.len() < 28);
            return;
        }
        Err(e) => {
            assert_eq!(e, Error::Malformed);
            return;
        }
    };
    let _ = p.to_string();
    assert_eq!((p.hardware_type(), p.protocol_type()), (1, 0x0800));
    assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
    let _ = (p.operation(), p.is_gratuitous());

    let mut buf = [0u8; 28];
    let emitted = if p.operation() == arp_op::REQUEST && p.target_hw().is_zero() {
        emit_arp_request(&mut buf, p.sender_hw(), p.sender_ip(), p.target_ip())
    } else if p.operation() == arp_op::REPLY {
        emit_arp_reply(
            &mut buf,
            p.sender_hw(),
            p.sender_ip(),
            p.target_hw(),
            p.target_ip(),
        )
    } else {
        return;
    };
    assert_eq!(emitted, Ok(28));
    assert_eq!(buf[..], data[..28]);
    let q = ArpPacket::new_checked(&buf[..]).unwrap();
    assert_eq!(q.to_string(), p.to_string());
});
