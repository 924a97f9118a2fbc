//! ip6-local: packets addressed to this router (one of its unicast
//! addresses, found by ip6-lookup, or a multicast group it is in, found by
//! ip6-input).
//!
//! - ICMPv6 echo requests are answered inline: the request becomes the
//!   reply in its own buffer (extension headers dropped, addresses
//!   swapped, type 129, hop limit 64, checksum over the pseudo-header),
//!   marked locally originated and routed back through ip6-lookup like any
//!   packet we send. A request to a multicast group is answered from the
//!   receiving interface's address (RFC 4443 section 4.2).
//! - Neighbor Solicitations and Advertisements go to ip6-nd.
//! - Router Solicitations are punted and counted: router advertisements
//!   (prefixes, lifetimes, flags) are configuration the control plane owns,
//!   and a control plane that sends them answers solicitations too.
//! - Everything else (other ICMPv6, UDP, TCP, fragments — the data path
//!   does not reassemble) is punted to the control plane, which owns the
//!   host stack's work and decides what, if anything, to answer.

use super::{source_for, DEFAULT_HOP_LIMIT};
use crate::ip::punt::punt_reason;
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, Tables};
use std::fmt;
use std::net::Ipv6Addr;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::{Buffers, MetaFlags};
use vswitch_wire::icmpv6::{icmpv6_type, Icmpv6Packet};
use vswitch_wire::ip_protocol;
use vswitch_wire::ipv6_ext::ipv6_walk_ext_headers;
use vswitch_wire::Ipv6Packet;

next_arcs! {
    /// Where ip6-local sends packets.
    pub enum Ip6LocalNext {
        /// Echo replies, routed back to the requester.
        Lookup = "ip6-lookup",
        /// Neighbor solicitations and advertisements.
        Nd = "ip6-nd",
        /// Everything else, for the control plane.
        Punt = "punt",
    }
}

errors! {
    /// What ip6-local counts and drops.
    pub enum Ip6LocalError {
        EchoReplied = "echo requests answered (not a drop)",
        RouterSolicit = "router solicitations punted (no router advertisements on the data path)",
        Punted = "punted to the control plane (not a drop)",
        IcmpTooShort = "ICMPv6 message shorter than its header",
        IcmpBadChecksum = "bad ICMPv6 checksum",
        NoSource = "echo to a multicast group: no address on the interface to answer from",
    }
}

/// Trace record.
pub struct Ip6LocalTrace {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    protocol: u8,
    action: &'static str,
}

impl fmt::Display for Ip6LocalTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = ip_protocol::name(self.protocol).unwrap_or("?");
        write!(f, "{} -> {} {proto}: {}", self.src, self.dst, self.action)
    }
}

/// The ip6-local node.
#[derive(Default)]
pub struct Ip6Local;

#[derive(Clone, Copy)]
enum Action {
    /// Echo reply; the ICMPv6 message starts at this offset from the IPv6 header.
    Reply(usize),
    Nd,
    /// Punted and counted as a router solicitation.
    RouterSolicit,
    Punt(u32),
    Drop(Ip6LocalError),
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Reply(_) => "echo reply",
            Action::Nd => "to ip6-nd",
            Action::RouterSolicit => "router solicitation: punt",
            Action::Punt(_) => "punt",
            Action::Drop(_) => "drop",
        }
    }
}

/// Decides what to do with a packet for us (`d`: the IPv6 packet, trimmed
/// to its payload length by ip6-input).
fn classify(d: &[u8]) -> (Action, u8) {
    let ip = Ipv6Packet::new_unchecked(d);
    let Ok(up) = ipv6_walk_ext_headers(ip.next_header(), &d[40..]) else {
        // ip6-input walked it already; a packet we cannot walk is not ours to judge.
        return (Action::Punt(punt_reason::LOCAL_PROTOCOL), ip.next_header());
    };
    if up.is_fragment {
        return (Action::Punt(punt_reason::LOCAL_FRAGMENT), up.protocol);
    }
    if up.protocol != ip_protocol::ICMPV6 {
        return (Action::Punt(punt_reason::LOCAL_PROTOCOL), up.protocol);
    }
    let at = 40 + up.offset;
    let icmp = &d[at..];
    if icmp.len() < Icmpv6Packet::<&[u8]>::HEADER_LEN {
        return (Action::Drop(Ip6LocalError::IcmpTooShort), up.protocol);
    }
    let action = match icmp[0] {
        icmpv6_type::ECHO_REQUEST => {
            if Icmpv6Packet::new_unchecked(icmp).verify_checksum(&ip.src_addr(), &ip.dst_addr()) {
                Action::Reply(at)
            } else {
                Action::Drop(Ip6LocalError::IcmpBadChecksum)
            }
        }
        icmpv6_type::NEIGHBOR_SOLICIT | icmpv6_type::NEIGHBOR_ADVERT => Action::Nd,
        icmpv6_type::ROUTER_SOLICIT => Action::RouterSolicit,
        _ => Action::Punt(punt_reason::ICMP6),
    };
    (action, up.protocol)
}

/// Turns the echo request in `p` (IPv6 header at `current`, ICMPv6 at
/// `icmp_at` from it) into its reply from `src`, in place.
fn make_reply(bufs: &mut Buffers, p: PacketId, icmp_at: usize, src: Ipv6Addr) {
    if icmp_at > 40 {
        // Drop the extension headers: move the fixed header up to the ICMPv6 message.
        bufs.data_mut(p).copy_within(0..40, icmp_at - 40);
        bufs.pull_front(p, icmp_at - 40);
    }
    let d = bufs.data_mut(p);
    let icmp_len = d.len() - 40;
    let mut ip = Ipv6Packet::new_unchecked(&mut d[..]);
    let requester = ip.src_addr();
    ip.set_payload_len(icmp_len as u16);
    ip.set_next_header(ip_protocol::ICMPV6);
    ip.set_hop_limit(DEFAULT_HOP_LIMIT);
    ip.set_src_addr(src);
    ip.set_dst_addr(requester);
    let mut icmp = Icmpv6Packet::new_unchecked(&mut d[40..]);
    icmp.set_msg_type(icmpv6_type::ECHO_REPLY);
    icmp.fill_checksum(&src, &requester);
    let m = bufs.meta_mut(p);
    m.l3 = m.current;
    m.l4 = m.current + 40;
    m.flags = (m.flags & !MetaFlags::FLOW_HASH_VALID) | LOCALLY_ORIGINATED;
}

impl Node<Tables> for Ip6Local {
    const NAME: &'static str = "ip6-local";
    type Next = Ip6LocalNext;
    type Error = Ip6LocalError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        let tables = cx.state;
        let (mut replied, mut punted) = (0, 0);
        for &p in vector {
            let d = cx.bufs.data(p);
            let (mut action, protocol) = classify(d);
            let (src, dst) = (super::addr_at(d, super::SRC_AT), super::addr_at(d, super::DST_AT));
            let mut reply_from = dst;
            if let Action::Reply(_) = action {
                if dst.is_multicast() {
                    let rx_if = cx.bufs.meta(p).rx_if;
                    let addrs = tables.interface(rx_if).map(|i| &i.ip6[..]).unwrap_or(&[]);
                    match source_for(addrs, &src) {
                        Some(a) => reply_from = a,
                        None => action = Action::Drop(Ip6LocalError::NoSource),
                    }
                }
            }
            if cx.is_traced(p) {
                cx.trace(p, Ip6LocalTrace { src, dst, protocol, action: action.name() });
            }
            match action {
                Action::Reply(at) => {
                    make_reply(cx.bufs, p, at, reply_from);
                    replied += 1;
                    cx.enqueue(Ip6LocalNext::Lookup, p);
                }
                Action::Nd => cx.enqueue(Ip6LocalNext::Nd, p),
                Action::RouterSolicit | Action::Punt(_) => {
                    let reason = match action {
                        Action::Punt(r) => r,
                        _ => {
                            cx.count(Ip6LocalError::RouterSolicit, 1);
                            punt_reason::ICMP6
                        }
                    };
                    cx.bufs.meta_mut(p).opaque[0] = reason;
                    punted += 1;
                    cx.enqueue(Ip6LocalNext::Punt, p);
                }
                Action::Drop(e) => cx.discard(p, e),
            }
        }
        cx.count(Ip6LocalError::EchoReplied, replied);
        cx.count(Ip6LocalError::Punted, punted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vswitch_packet::{BufferPool, BufferPoolConfig};

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn echo(src: &str, dst: &str, ext: bool) -> Vec<u8> {
        let mut icmp = vec![icmpv6_type::ECHO_REQUEST, 0, 0, 0, 0x12, 0x34, 0, 7];
        icmp.extend_from_slice(b"ping data!");
        Icmpv6Packet::new_unchecked(&mut icmp[..]).fill_checksum(&a(src), &a(dst));
        let mut payload = Vec::new();
        if ext {
            payload.extend_from_slice(&[ip_protocol::ICMPV6, 0, 1, 4, 0, 0, 0, 0]);
        }
        payload.extend_from_slice(&icmp);
        let nh = if ext { ip_protocol::IPV6_OPTS } else { ip_protocol::ICMPV6 };
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.extend_from_slice(&[nh, 61]);
        v.extend_from_slice(&a(src).octets());
        v.extend_from_slice(&a(dst).octets());
        v.extend_from_slice(&payload);
        v
    }

    #[test]
    fn echo_reply_swaps_addresses_and_checksums() {
        let pool = BufferPool::new(&BufferPoolConfig { buffers: 4, prefer_huge: false, ..Default::default() }).unwrap();
        let mut bufs = pool.worker();
        for ext in [false, true] {
            let req = echo("2001:db8::2", "2001:db8::1", ext);
            let (action, proto) = classify(&req);
            assert_eq!(proto, ip_protocol::ICMPV6);
            let Action::Reply(at) = action else { panic!("not answered") };
            assert_eq!(at, if ext { 48 } else { 40 });
            let p = bufs.alloc().unwrap();
            bufs.write(p, &req);
            make_reply(&mut bufs, p, at, a("2001:db8::1"));
            let d = bufs.data(p);
            let ip = Ipv6Packet::new_checked(d).unwrap();
            assert_eq!((ip.src_addr(), ip.dst_addr()), (a("2001:db8::1"), a("2001:db8::2")));
            assert_eq!((ip.next_header(), ip.hop_limit()), (ip_protocol::ICMPV6, DEFAULT_HOP_LIMIT));
            assert_eq!(d.len(), 40 + 18, "extension headers dropped");
            let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
            assert_eq!((icmp.msg_type(), icmp.echo_ident(), icmp.echo_seq_no()), (icmpv6_type::ECHO_REPLY, 0x1234, 7));
            assert_eq!(icmp.data(), b"ping data!");
            assert!(icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()));
            assert!(bufs.meta(p).flags & LOCALLY_ORIGINATED != 0);
            bufs.free(p);
        }
    }

    #[test]
    fn others_go_to_nd_punt_or_drop() {
        let mut bad = echo("2001:db8::2", "2001:db8::1", false);
        bad[50] ^= 1;
        assert!(matches!(classify(&bad).0, Action::Drop(Ip6LocalError::IcmpBadChecksum)));
        let req = echo("2001:db8::2", "2001:db8::1", false);
        assert!(matches!(classify(&req[..46]).0, Action::Drop(Ip6LocalError::IcmpTooShort)));
        let mut ns = req.clone();
        ns[40] = icmpv6_type::NEIGHBOR_SOLICIT;
        assert!(matches!(classify(&ns).0, Action::Nd));
        let mut rs = req.clone();
        rs[40] = icmpv6_type::ROUTER_SOLICIT;
        assert!(matches!(classify(&rs).0, Action::RouterSolicit));
        let mut other = req.clone();
        other[40] = icmpv6_type::ECHO_REPLY;
        assert!(matches!(classify(&other).0, Action::Punt(punt_reason::ICMP6)));
        let mut udp = req.clone();
        udp[6] = ip_protocol::UDP;
        assert!(matches!(classify(&udp).0, Action::Punt(punt_reason::LOCAL_PROTOCOL)));
        let mut frag = req.clone();
        frag[6] = ip_protocol::IPV6_FRAG;
        frag[40] = ip_protocol::ICMPV6;
        frag[42] = 0;
        frag[43] = 1;
        assert!(matches!(classify(&frag).0, Action::Punt(punt_reason::LOCAL_FRAGMENT)));
    }
}
