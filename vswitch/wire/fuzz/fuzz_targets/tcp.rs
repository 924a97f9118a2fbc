//! TCP header, flags, option walk and checksums.
#![no_main]

use core::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use vswitch_wire::{Error, TcpOption, TcpOptionIter, TcpPacket};

fn walk(options: &[u8]) {
    let mut used = 0;
    for o in TcpOptionIter::new(options) {
        match o {
            Ok(TcpOption::Sack(blocks)) => {
                assert!((1..=4).contains(&blocks.len()) || options.len() > 40);
                assert_eq!(blocks.iter().count(), blocks.len());
                used += 2 + 8 * blocks.len();
            }
            Ok(TcpOption::Unknown { data, .. }) => used += 2 + data.len(),
            Ok(TcpOption::EndOfList) | Ok(TcpOption::NoOperation) => used += 1,
            Ok(_) => used += 2,
            Err(e) => assert_eq!(e, Error::Malformed),
        }
    }
    assert!(used <= options.len());
}

fuzz_target!(|data: &[u8]| {
    walk(data);
    let p = match TcpPacket::new_checked(data) {
        Ok(p) => p,
        Err(Error::Truncated) => return assert!(data.len() < 20),
        Err(e) => return assert_eq!(e, Error::BadHeaderLen),
    };
    let _ = p.to_string();
    let hl = p.header_len();
    assert!(hl >= 20 && hl <= data.len() && hl <= 60);
    assert_eq!(p.options().len(), hl - 20);
    assert_eq!(p.payload().len(), data.len() - hl);
    let bits = [
        p.fin(),
        p.syn(),
        p.rst(),
        p.psh(),
        p.ack(),
        p.urg(),
        p.ece(),
        p.cwr(),
    ];
    let rebuilt = bits
        .iter()
        .enumerate()
        .fold(0u8, |f, (i, &b)| f | (u8::from(b) << i));
    assert_eq!(rebuilt, p.flags());
    let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number());
    let _ = (p.window_len(), p.checksum(), p.urgent_at());
    walk(p.options());
    p.option_iter().for_each(drop);

    let (s4, d4) = (Ipv4Addr::new(10, 1, 2, 3), Ipv4Addr::new(10, 3, 2, 1));
    let (s6, d6) = (Ipv6Addr::LOCALHOST, Ipv6Addr::from(u128::MAX - 5));
    let mut buf = data.to_vec();
    let mut q = TcpPacket::new_checked(&mut buf[..]).unwrap();
    q.fill_checksum_v4(&s4, &d4);
    assert!(q.verify_checksum_v4(&s4, &d4));
    q.fill_checksum_v6(&s6, &d6);
    assert!(q.verify_checksum_v6(&s6, &d6));
    // Flag setters round-trip.
    let f = q.flags();
    q.set_flags(0);
    q.set_fin(f & 1 != 0);
    q.set_syn(f & 2 != 0);
    q.set_rst(f & 4 != 0);
    q.set_psh(f & 8 != 0);
    q.set_ack(f & 16 != 0);
    q.set_urg(f & 32 != 0);
    q.set_ece(f & 64 != 0);
    q.set_cwr(f & 128 != 0);
    assert_eq!(q.flags(), f);
});
