//! IPv4 header, option walk, full and incremental checksums.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch_wire::{checksum, Error, Ipv4OptionIter, Ipv4Packet};

/// Plain 16-bit-at-a-time RFC 1071 sum, to check the fast one against.
fn reference_fold(data: &[u8]) -> u16 {
    let mut s: u64 = 0;
    for c in data.chunks(2) {
        s += u64::from(c[0]) << 8 | c.get(1).map_or(0, |&b| u64::from(b));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(checksum::fold(checksum::sum(data)), reference_fold(data));

    // The option walker must terminate and stay in bounds on any bytes.
    let mut seen = 0;
    for o in Ipv4OptionIter::new(data) {
        match o {
            Ok((_, d)) => seen += d.len() + 1,
            Err(e) => assert_eq!(e, Error::Malformed),
        }
    }
    assert!(seen <= data.len());

    let p = match Ipv4Packet::new_checked(data) {
        Ok(p) => p,
        Err(_) => return,
    };
    let _ = p.to_string();
    let (hl, tl) = (p.header_len(), usize::from(p.total_len()));
    assert_eq!(p.version(), 4);
    assert!(hl >= 20 && hl <= tl && tl <= data.len());
    assert_eq!(p.options().len(), hl - 20);
    assert_eq!(p.payload().len(), tl - hl);
    assert!(p.dscp() < 64 && p.ecn() < 4);
    assert_eq!(p.frag_offset() % 8, 0);
    assert_eq!(p.is_fragment(), p.more_frags() || p.frag_offset() != 0);
    assert_eq!(p.src_u32(), u32::from(p.src_addr()));
    assert_eq!(p.dst_u32(), u32::from(p.dst_addr()));
    let _ = (p.ident(), p.dont_frag(), p.ttl(), p.protocol());
    for o in p.option_iter() {
        let _ = o;
    }
    let ok = p.verify_checksum();
    assert_eq!(ok, reference_fold(&data[..hl]) == 0xffff);

    // Full recompute, then the incremental TTL decrement must agree with
    // another full recompute.
    let mut buf = data.to_vec();
    let mut q = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
    q.fill_checksum();
    assert!(q.verify_checksum());
    let ttl = q.ttl();
    let new_ttl = q.decrement_ttl_incremental();
    assert_eq!(new_ttl, ttl.saturating_sub(1));
    assert!(q.verify_checksum());
    let inc = q.checksum();
    q.fill_checksum();
    assert_eq!(inc, q.checksum());

    // Incremental update of the addresses agrees with a full recompute.
    let (src, dst) = (q.src_u32(), q.dst_u32());
    let c = checksum::update_u32(q.checksum(), src, dst);
    q.set_src_addr(dst.into());
    q.set_checksum(c);
    assert!(q.verify_checksum());
});
