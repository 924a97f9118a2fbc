//! ip4-input: validates IPv4 packets from the wire and starts them down
//! the `ip4-unicast` feature arc (ACL, NAT, ... then ip4-lookup).
//!
//! Checks, in order, each with its own counter: the packet holds a
//! 20-byte header; the version is 4; the header length is at least 20
//! and inside the packet; the total length covers the header and fits the
//! frame (a shorter frame is a drop; a longer one carries Ethernet padding,
//! which is trimmed); the header checksum (RFC 1071, skipped when
//! `MetaFlags::L3_CSUM_OK` says a NIC already checked it); the TTL is not 0
//! (a TTL of 1 is fine here: if the packet is for us it is delivered, and
//! if it is forwarded ip4-rewrite answers with time-exceeded); the source
//! is not a martian (RFC 1812 5.3.7: 0.0.0.0/8 — DHCP's 0.0.0.0 included,
//! there is no DHCP server on the data path —, 127.0.0.0/8, multicast
//! 224.0.0.0/4, class E 240.0.0.0/4 and the limited broadcast); the
//! destination is not 0.0.0.0/8 or loopback. Multicast and broadcast
//! destinations are not routed (there is no multicast forwarding) and are
//! dropped with their own counter.
//!
//! Sets `meta.l3`/`meta.l4`, and clears the flags later IP nodes set
//! (flow hash valid, locally originated).

use super::UNICAST_ARC;
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, Tables};
use std::fmt;
use std::net::Ipv4Addr;
use vswitch_graph::{errors, next_arcs, FeatureArcId, Node, PacketId};
use vswitch_packet::MetaFlags;
use vswitch_wire::checksum::ipv4_header_checksum_ok;
use vswitch_wire::ip_protocol;

next_arcs! {
    /// Where ip4-input sends packets.
    pub enum Ip4InputNext {
        /// Straight to lookup when the graph has no `ip4-unicast` arc.
        Lookup = "ip4-lookup",
    }
}

errors! {
    /// What ip4-input counts and drops.
    pub enum Ip4InputError {
        TooShort = "shorter than an IPv4 header",
        BadVersion = "IP version is not 4",
        BadHeaderLen = "header length below 20 or beyond the packet",
        BadTotalLen = "total length below the header or beyond the frame",
        BadChecksum = "bad header checksum",
        TtlZero = "TTL is 0",
        MartianSource = "martian source address",
        MartianDest = "martian destination address (0.0.0.0/8 or loopback)",
        NotUnicast = "multicast or broadcast destination (not routed)",
        Trimmed = "Ethernet padding trimmed (not a drop)",
    }
}

/// Trace record.
pub struct Ip4InputTrace {
    sw_if: u32,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    len: u16,
    verdict: Option<Ip4InputError>,
}

impl fmt::Display for Ip4InputTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = ip_protocol::name(self.protocol).unwrap_or("?");
        write!(
            f,
            "sw_if {}: {} -> {} {proto} ({}) ttl {} len {}",
            self.sw_if, self.src, self.dst, self.protocol, self.ttl, self.len
        )?;
        if let Some(e) = self.verdict {
            use vswitch_graph::ErrorCode;
            write!(f, ": dropped, {}", Ip4InputError::DESCRIPTIONS[e.index()])?;
        }
        Ok(())
    }
}

/// The ip4-input node.
#[derive(Default)]
pub struct Ip4Input {
    /// The `ip4-unicast` arc, looked up on the first vector.
    arc: Option<Option<FeatureArcId>>,
}

impl Ip4Input {
    /// A node that finds its feature arc on first use.
    pub fn new() -> Self {
        Ip4Input::default()
    }
}

/// Validates one IPv4 header in `d` (the packet from its IP header on).
/// Returns the header length and the total length, or the reason to drop.
#[inline(always)]
pub fn check(d: &[u8], csum_ok: bool) -> Result<(usize, usize), Ip4InputError> {
    use Ip4InputError as E;
    if d.len() < 20 {
        return Err(E::TooShort);
    }
    let vihl = d[0];
    if vihl >> 4 != 4 {
        return Err(E::BadVersion);
    }
    let hl = ((vihl & 0x0f) as usize) << 2;
    if hl < 20 || hl > d.len() {
        return Err(E::BadHeaderLen);
    }
    let tl = u16::from_be_bytes([d[2], d[3]]) as usize;
    if tl < hl || tl > d.len() {
        return Err(E::BadTotalLen);
    }
    if !csum_ok && !header_checksum_ok(d, hl) {
        return Err(E::BadChecksum);
    }
    if d[8] == 0 {
        return Err(E::TtlZero);
    }
    let (s0, d0) = (d[12], d[16]);
    // 0/8, 127/8, 224/4 and 240/4 (which holds 255.255.255.255).
    if s0 == 0 || s0 == 127 || s0 >= 224 {
        return Err(E::MartianSource);
    }
    if d0 == 0 || d0 == 127 {
        return Err(E::MartianDest);
    }
    if d0 >= 224 {
        return Err(E::NotUnicast);
    }
    Ok((hl, tl))
}

/// RFC 1071 over the header: five 32-bit words for the usual 20 bytes,
/// the generic sum with options.
#[inline(always)]
fn header_checksum_ok(d: &[u8], hl: usize) -> bool {
    match d.first_chunk::<20>() {
        Some(h) if hl == 20 => {
            let w = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
            // The one's complement sum is 0xffff (negative zero) exactly
            // when the plain sum is a non-zero multiple of 0xffff (2^16 is
            // 1 modulo 0xffff); the version nibble makes it non-zero.
            let s = w(0) + w(4) + w(8) + w(12) + w(16);
            s % 0xffff == 0
        }
        _ => ipv4_header_checksum_ok(&d[..hl]),
    }
}

impl Node<Tables> for Ip4Input {
    const NAME: &'static str = "ip4-input";
    type Next = Ip4InputNext;
    type Error = Ip4InputError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        let arc = *self.arc.get_or_insert_with(|| cx.features().arc(UNICAST_ARC));
        let mut trimmed = 0;
        // Whether the last receiving interface has features on the arc:
        // with none, feature_start would go straight to ip4-lookup, so the
        // packet is enqueued there directly (features only change between
        // dispatches, so this holds for the whole vector).
        let (mut last_if, mut has_features) = (u32::MAX, false);
        for &p in vector {
            let (d, m) = cx.bufs.data_and_meta_mut(p);
            let verdict = check(d, m.flags & MetaFlags::L3_CSUM_OK != 0);
            let rx_if = m.rx_if;
            if m.flags & MetaFlags::TRACED != 0 {
                let t = trace_record(d, rx_if, verdict.err());
                cx.trace(p, t);
            }
            let (d, m) = cx.bufs.data_and_meta_mut(p);
            let (hl, tl) = match verdict {
                Ok(v) => v,
                Err(e) => {
                    cx.discard(p, e);
                    continue;
                }
            };
            if tl < d.len() {
                m.len = tl as u16;
                trimmed += 1;
            }
            m.l3 = m.current;
            m.l4 = m.current + hl as u16;
            m.flags &= !(MetaFlags::FLOW_HASH_VALID | LOCALLY_ORIGINATED);
            match arc {
                Some(arc) => {
                    if rx_if != last_if {
                        last_if = rx_if;
                        has_features = !cx.features().enabled(arc, rx_if).is_empty();
                    }
                    if has_features {
                        cx.feature_start(arc, rx_if, p);
                    } else {
                        cx.enqueue(Ip4InputNext::Lookup, p);
                    }
                }
                None => cx.enqueue(Ip4InputNext::Lookup, p),
            }
        }
        if trimmed > 0 {
            cx.count(Ip4InputError::Trimmed, trimmed);
        }
    }
}

#[cold]
fn trace_record(d: &[u8], sw_if: u32, verdict: Option<Ip4InputError>) -> Ip4InputTrace {
    let b = |i: usize| d.get(i).copied().unwrap_or(0);
    let a = |i: usize| Ipv4Addr::new(b(i), b(i + 1), b(i + 2), b(i + 3));
    Ip4InputTrace {
        sw_if,
        src: a(12),
        dst: a(16),
        protocol: b(9),
        ttl: b(8),
        len: u16::from_be_bytes([b(2), b(3)]),
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ip4InputError as E;

    fn hdr() -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 1, 1];
        h.extend_from_slice(&[0; 8]);
        let c = vswitch_wire::checksum::checksum(&h[..20]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    fn fixed(mut h: Vec<u8>) -> Vec<u8> {
        h[10] = 0;
        h[11] = 0;
        let hl = ((h[0] & 15) as usize * 4).min(h.len());
        let c = vswitch_wire::checksum::checksum(&h[..hl]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    proptest::proptest! {
        #[test]
        fn fast_checksum_matches_rfc1071(words in proptest::collection::vec(proptest::prelude::any::<u32>(), 5)) {
            let mut h: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            h[0] = 0x45;
            proptest::prop_assert_eq!(header_checksum_ok(&h, 20), ipv4_header_checksum_ok(&h));
            h[10] = 0;
            h[11] = 0;
            let c = vswitch_wire::checksum::checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            proptest::prop_assert!(header_checksum_ok(&h, 20));
        }
    }

    #[test]
    fn each_check_has_its_reason() {
        assert_eq!(check(&hdr(), false), Ok((20, 28)));
        assert_eq!(check(&hdr()[..19], false), Err(E::TooShort));
        let mut h = hdr();
        h[0] = 0x65;
        assert_eq!(check(&h, false), Err(E::BadVersion));
        h[0] = 0x44;
        assert_eq!(check(&h, false), Err(E::BadHeaderLen));
        h[0] = 0x48; // 32 bytes of header in a 28-byte packet
        assert_eq!(check(&h, false), Err(E::BadHeaderLen));
        let mut h = hdr();
        h[3] = 29;
        assert_eq!(check(&fixed(h.clone()), false), Err(E::BadTotalLen));
        h[3] = 19;
        assert_eq!(check(&fixed(h), false), Err(E::BadTotalLen));
        let mut h = hdr();
        h[10] ^= 1;
        assert_eq!(check(&h, false), Err(E::BadChecksum));
        assert_eq!(check(&h, true), Ok((20, 28)), "checked by the NIC");
        let mut h = hdr();
        h[8] = 0;
        assert_eq!(check(&fixed(h), false), Err(E::TtlZero));
        for s in [0u8, 127, 224, 239, 240, 255] {
            let mut h = hdr();
            h[12] = s;
            assert_eq!(check(&fixed(h), false), Err(E::MartianSource), "source {s}.0.0.1");
        }
        for (d, e) in [(0u8, E::MartianDest), (127, E::MartianDest), (224, E::NotUnicast), (255, E::NotUnicast)] {
            let mut h = hdr();
            h[16] = d;
            assert_eq!(check(&fixed(h), false), Err(e), "destination {d}.0.1.1");
        }
        let mut padded = hdr();
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(check(&padded, false), Ok((20, 28)), "padding is not an error");
    }
}
