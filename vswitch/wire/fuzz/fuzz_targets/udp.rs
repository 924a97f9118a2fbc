//! UDP header and both checksum flavours.
#![no_main]

use core::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use vswitch_wire::{Error, UdpPacket};

const S4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const D4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

fuzz_target!(|data: &[u8]| {
    let p = match UdpPacket::new_checked(data) {
        Ok(p) => p,
        Err(Error::Truncated) => return assert!(data.len() < 8),
        Err(e) => return assert_eq!(e, Error::BadTotalLen),
    };
    let _ = p.to_string();
    let l = usize::from(p.len());
    assert!((8..=data.len()).contains(&l));
    assert_eq!(p.payload().len(), l - 8);
    assert_eq!(p.is_empty(), l == 8);
    let _ = (p.src_port(), p.dst_port());
    let s6 = Ipv6Addr::from(0x2001_0db8_u128 << 96 | 1);
    let d6 = Ipv6Addr::from(0x2001_0db8_u128 << 96 | 2);
    if p.checksum() == 0 {
        assert!(p.verify_checksum_v4(&S4, &D4));
        assert!(!p.verify_checksum_v6(&s6, &d6));
    }

    let mut buf = data.to_vec();
    let mut q = UdpPacket::new_checked(&mut buf[..]).unwrap();
    q.fill_checksum_v4(&S4, &D4);
    assert_ne!(q.checksum(), 0);
    assert!(q.verify_checksum_v4(&S4, &D4));
    q.fill_checksum_v6(&s6, &d6);
    assert_ne!(q.checksum(), 0);
    assert!(q.verify_checksum_v6(&s6, &d6));
    // Bytes past the length field are not covered.
    if l < buf.len() {
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        assert!(UdpPacket::new_checked(&buf[..])
            .unwrap()
            .verify_checksum_v6(&s6, &d6));
    }
});
