//! Packet building helpers for the unit tests.

use core::net::Ipv6Addr;

use crate::srh::SrhRepr;

pub fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// A 40-byte IPv6 header with payload length 0 (see [`fix_len`]).
pub fn ipv6_hdr(nh: u8, src: &str, dst: &str, hop_limit: u8) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0, 0, 0, nh, hop_limit];
    h.extend_from_slice(&a6(src).octets());
    h.extend_from_slice(&a6(dst).octets());
    h
}

/// An SRH with Segment List\[i\] = `segs[i]`.
pub fn srh(nh: u8, sl: u8, segs: &[&str]) -> Vec<u8> {
    let list: Vec<[u8; 16]> = segs.iter().map(|s| a6(s).octets()).collect();
    let r = SrhRepr { next_header: nh, segments_left: sl, flags: 0, tag: 0, segments: &list, tlvs: &[] };
    let mut out = vec![0u8; r.header_len()];
    r.emit(&mut out).unwrap();
    out
}

/// Sets the IPv6 payload length to cover the whole vector.
pub fn fix_len(pkt: &mut [u8]) {
    let l = (pkt.len() - 40) as u16;
    pkt[4..6].copy_from_slice(&l.to_be_bytes());
}

/// `pkt` after `room` bytes of headroom.
pub fn with_headroom(pkt: &[u8], room: usize) -> Vec<u8> {
    let mut b = vec![0xaa; room];
    b.extend_from_slice(pkt);
    b
}

/// IPv4/UDP packet 192.0.2.1:1234 > 198.51.100.1:5678 built by etherparse.
pub fn ipv4_udp(ttl: u8, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ipv4([192, 0, 2, 1], [198, 51, 100, 1], ttl).udp(1234, 5678);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// IPv6/UDP packet 2001:db8:a::1 > 2001:db8:b::1 built by etherparse.
pub fn ipv6_udp(hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ipv6(a6("2001:db8:a::1").octets(), a6("2001:db8:b::1").octets(), hop_limit)
        .udp(1234, 5678);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}
