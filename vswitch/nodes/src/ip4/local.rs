//! ip4-local: packets addressed to one of our own addresses.
//!
//! ICMP echo requests are answered inline: the request becomes the reply
//! in its own buffer (addresses swapped, type 0, TTL 64, Don't Fragment
//! cleared, the ICMP checksum patched incrementally per RFC 1624, the IP
//! header checksum recomputed), marked locally originated and routed back
//! through ip4-lookup like any packet we send. DF is cleared as hosts do
//! (Linux sends its echo replies without it): a request that fitted the
//! way in may not fit the interface the reply leaves by (a pod with a
//! larger MTU than the gateway's interface), and ip4-rewrite must then
//! fragment the reply rather than drop it — an error about our own packet
//! is never sent, so with DF the reply would vanish. Everything else addressed to us — other ICMP, UDP,
//! TCP, other protocols, and fragments (the data path does not reassemble)
//! — is punted to the control plane, which owns the host stack's work
//! (BGP, DHCP, SSH, ...) and decides what, if anything, to answer. We do
//! not send port or protocol unreachables from the data path: the control
//! plane may be listening on those ports.

use crate::ip::punt::punt_reason;
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, Tables};
use std::fmt;
use std::net::Ipv4Addr;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::MetaFlags;
use vswitch_wire::checksum;
use vswitch_wire::icmpv4::icmpv4_type;
use vswitch_wire::ip_protocol;

next_arcs! {
    /// Where ip4-local sends packets.
    pub enum Ip4LocalNext {
        /// Echo replies, routed back to the requester.
        Lookup = "ip4-lookup",
        /// Everything else for the control plane.
        Punt = "punt",
    }
}

errors! {
    /// What ip4-local counts and drops.
    pub enum Ip4LocalError {
        EchoReplied = "echo requests answered (not a drop)",
        Punted = "punted to the control plane (not a drop)",
        IcmpTooShort = "ICMP message shorter than its header",
        IcmpBadChecksum = "bad ICMP checksum",
    }
}

/// TTL of the packets we originate.
pub const LOCAL_TTL: u8 = 64;

/// Trace record.
pub struct Ip4LocalTrace {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    action: &'static str,
}

impl fmt::Display for Ip4LocalTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = ip_protocol::name(self.protocol).unwrap_or("?");
        write!(f, "{} -> {} {proto}: {}", self.src, self.dst, self.action)
    }
}

/// The ip4-local node.
#[derive(Default)]
pub struct Ip4Local;

enum Action {
    Reply,
    Punt(u32),
    Drop(Ip4LocalError),
}

/// Decides what to do with a packet for us (`d`: from the IP header, to
/// the total length).
#[inline]
fn classify(d: &[u8]) -> Action {
    let hl = ((d[0] & 0x0f) as usize) << 2;
    let frag = u16::from_be_bytes([d[6], d[7]]) & 0x3fff;
    if frag != 0 {
        return Action::Punt(punt_reason::LOCAL_FRAGMENT);
    }
    if d[9] != ip_protocol::ICMP {
        return Action::Punt(punt_reason::LOCAL_PROTOCOL);
    }
    let icmp = &d[hl..];
    if icmp.len() < 8 {
        return Action::Drop(Ip4LocalError::IcmpTooShort);
    }
    if icmp[0] != icmpv4_type::ECHO_REQUEST {
        return Action::Punt(punt_reason::LOCAL_PROTOCOL);
    }
    if checksum::fold(checksum::sum(icmp)) != 0xffff {
        return Action::Drop(Ip4LocalError::IcmpBadChecksum);
    }
    Action::Reply
}

/// Turns the echo request in `d` into its reply, in place.
#[inline]
fn make_reply(d: &mut [u8]) {
    let hl = ((d[0] & 0x0f) as usize) << 2;
    let mut src = [0u8; 4];
    src.copy_from_slice(&d[12..16]);
    d.copy_within(16..20, 12);
    d[16..20].copy_from_slice(&src);
    d[8] = LOCAL_TTL;
    // Clear DF (keep the reserved bit and the fragment fields, all zero
    // for a request that was not punted as a fragment).
    d[6] &= !0x40;
    d[10] = 0;
    d[11] = 0;
    let c = checksum::checksum(&d[..hl]);
    d[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut d[hl..];
    let code = icmp[1] as u16;
    let old = u16::from_be_bytes([icmp[2], icmp[3]]);
    let new = checksum::update_u16(old, (icmpv4_type::ECHO_REQUEST as u16) << 8 | code, code);
    icmp[0] = icmpv4_type::ECHO_REPLY;
    icmp[2..4].copy_from_slice(&new.to_be_bytes());
}

impl Node<Tables> for Ip4Local {
    const NAME: &'static str = "ip4-local";
    type Next = Ip4LocalNext;
    type Error = Ip4LocalError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        let (mut replied, mut punted) = (0, 0);
        for &p in vector {
            let action = classify(cx.bufs.data(p));
            if cx.is_traced(p) {
                let d = cx.bufs.data(p);
                let a = |i: usize| Ipv4Addr::new(d[i], d[i + 1], d[i + 2], d[i + 3]);
                let t = Ip4LocalTrace {
                    src: a(12),
                    dst: a(16),
                    protocol: d[9],
                    action: match action {
                        Action::Reply => "echo reply",
                        Action::Punt(_) => "punt",
                        Action::Drop(_) => "drop",
                    },
                };
                cx.trace(p, t);
            }
            match action {
                Action::Reply => {
                    let (d, m) = cx.bufs.data_and_meta_mut(p);
                    make_reply(d);
                    m.flags = (m.flags & !MetaFlags::FLOW_HASH_VALID) | LOCALLY_ORIGINATED;
                    replied += 1;
                    cx.enqueue(Ip4LocalNext::Lookup, p);
                }
                Action::Punt(reason) => {
                    cx.bufs.meta_mut(p).opaque[0] = reason;
                    punted += 1;
                    cx.enqueue(Ip4LocalNext::Punt, p);
                }
                Action::Drop(e) => cx.discard(p, e),
            }
        }
        cx.count(Ip4LocalError::EchoReplied, replied);
        cx.count(Ip4LocalError::Punted, punted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(payload: &[u8]) -> Vec<u8> {
        let tl = 28 + payload.len();
        let mut d = vec![0x45, 0, (tl >> 8) as u8, tl as u8, 0, 7, 0, 0, 63, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1];
        let c = checksum::checksum(&d);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        d.extend_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1]);
        d.extend_from_slice(payload);
        let c = checksum::checksum(&d[20..]);
        d[22..24].copy_from_slice(&c.to_be_bytes());
        d
    }

    #[test]
    fn echo_reply_is_correct_and_checksums_verify() {
        for payload in [&b""[..], b"abc", b"0123456789abcdef0123456789abcdef0123456789abcdef"] {
            let mut d = echo(payload);
            assert!(matches!(classify(&d), Action::Reply));
            make_reply(&mut d);
            assert_eq!(&d[12..16], &[10, 0, 0, 1]);
            assert_eq!(&d[16..20], &[10, 0, 0, 2]);
            assert_eq!(d[8], LOCAL_TTL);
            assert!(checksum::ipv4_header_checksum_ok(&d[..20]));
            assert_eq!(d[20], icmpv4_type::ECHO_REPLY);
            assert_eq!(checksum::fold(checksum::sum(&d[20..])), 0xffff, "ICMP checksum");
            assert_eq!(&d[24..28], &[0x12, 0x34, 0, 1], "id and sequence kept");
        }
    }

    #[test]
    fn echo_reply_clears_dont_fragment() {
        let mut d = echo(b"payload");
        d[6] = 0x40; // DF, as Linux ping sets it
        d[10] = 0;
        d[11] = 0;
        let c = checksum::checksum(&d[..20]);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(matches!(classify(&d), Action::Reply));
        make_reply(&mut d);
        assert_eq!(&d[6..8], &[0, 0], "no DF: ip4-rewrite may fragment the reply");
        assert!(checksum::ipv4_header_checksum_ok(&d[..20]));
    }

    #[test]
    fn others_are_punted_or_dropped() {
        let mut d = echo(b"xy");
        d[22] ^= 0xff;
        assert!(matches!(classify(&d), Action::Drop(Ip4LocalError::IcmpBadChecksum)));
        let mut d = echo(b"");
        d[9] = ip_protocol::UDP;
        assert!(matches!(classify(&d), Action::Punt(punt_reason::LOCAL_PROTOCOL)));
        let mut d = echo(b"");
        d[6] = 0x20; // more fragments
        assert!(matches!(classify(&d), Action::Punt(punt_reason::LOCAL_FRAGMENT)));
        let d = echo(b"");
        assert!(matches!(classify(&d[..26]), Action::Drop(Ip4LocalError::IcmpTooShort)));
    }
}
