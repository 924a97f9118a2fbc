//! ip6-input: validates IPv6 packets from the wire and sends them on.
//!
//! Checks, each with its own counter: the fixed header is there, the
//! version is 6, the payload length fits the frame (a shorter payload
//! length means link padding, which is trimmed), the hop limit is not 0
//! (dropped without an ICMPv6 error: the previous hop should never have
//! sent it; a hop limit of 1 is fine here — delivered if the packet is for
//! us, answered with time exceeded by ip6-rewrite if it is forwarded),
//! and the addresses are not martians (a multicast source, the loopback
//! address on either side, an unspecified destination, or an unspecified
//! source on anything but a Duplicate Address Detection solicitation).
//! It then walks the extension headers (at most
//! [`MAX_EXT_HEADERS`](vswitch_wire::ipv6_ext::MAX_EXT_HEADERS); a header
//! that runs past the payload, a misplaced Hop-by-Hop header or too long a
//! chain is a drop) and sets `meta.l4` to the upper-layer header.
//!
//! Hop-by-Hop options (RFC 8200 section 4.3): nodes on the path examine
//! them only when configured to, and this router is not. Their TLV framing
//! is checked (a malformed option area is a drop, like any malformed
//! header), they are counted, and the packet is forwarded or delivered with
//! them unprocessed. Jumbograms (payload length 0 with a Jumbo option) are
//! not supported: with no payload the header cannot be walked and the
//! packet is dropped as malformed.
//!
//! Sets `meta.l3`/`meta.l4` and clears the flags later IP nodes set (flow
//! hash valid, locally originated).
//!
//! Unicast goes down the `ip6-unicast` feature arc of the receiving
//! interface, which ends at ip6-lookup. Multicast to the groups this
//! router is in on the receiving interface (all-nodes ff02::1, all-routers
//! ff02::2, and the solicited-node group of each of the interface's
//! addresses; every solicited-node group with `proxy_nd` on) goes to
//! ip6-local; any other multicast is dropped and counted
//! (there is no multicast forwarding yet).

use super::{addr_at, is_solicited_node_for, DST_AT, SRC_AT, UNICAST_ARC};
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, Tables};
use std::fmt;
use std::net::Ipv6Addr;
use vswitch_graph::{errors, next_arcs, FeatureArcId, Node, PacketId};
use vswitch_wire::icmpv6::icmpv6_type;
use vswitch_wire::ip_protocol;
use vswitch_wire::ipv6_ext::{ipv6_walk_ext_headers, Ipv6OptionIter};

next_arcs! {
    /// Where ip6-input sends packets.
    pub enum Ip6InputNext {
        /// Unicast when the graph has no `ip6-unicast` arc.
        Lookup = "ip6-lookup",
        /// Multicast to a group this router is in.
        Local = "ip6-local",
    }
}

errors! {
    /// What ip6-input counts and drops.
    pub enum Ip6InputError {
        TooShort = "shorter than the IPv6 header",
        BadVersion = "IP version is not 6",
        BadLength = "payload length runs past the frame",
        Trimmed = "link padding trimmed (not a drop)",
        HopLimitZero = "hop limit is 0",
        MulticastSource = "martian: multicast source",
        Loopback = "martian: loopback address from the wire",
        UnspecifiedSource = "martian: unspecified source (not a DAD solicitation)",
        UnspecifiedDest = "martian: unspecified destination",
        BadExtHeaders = "malformed or truncated extension headers",
        BadHopByHop = "malformed hop-by-hop options",
        HopByHop = "hop-by-hop header passed unprocessed (not a drop)",
        MulticastNotForUs = "multicast to a group not joined (no multicast forwarding)",
    }
}

/// Trace record.
pub struct Ip6InputTrace {
    sw_if: u32,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    protocol: u8,
    hop_limit: u8,
    payload_len: u16,
}

impl fmt::Display for Ip6InputTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = ip_protocol::name(self.protocol).unwrap_or("?");
        write!(
            f,
            "sw_if {}: {} -> {} {proto} ({}) hlim {} len {}",
            self.sw_if, self.src, self.dst, self.protocol, self.hop_limit, self.payload_len
        )
    }
}

/// The ip6-input node.
#[derive(Default)]
pub struct Ip6Input {
    /// The `ip6-unicast` arc, looked up on the first vector.
    arc: Option<Option<FeatureArcId>>,
}

impl Ip6Input {
    /// A node that finds its feature arc on first use.
    pub fn new() -> Self {
        Ip6Input::default()
    }
}

/// Why a packet is not accepted, or where it goes.
enum Verdict {
    Drop(Ip6InputError),
    Unicast,
    Local,
}

/// Checks one packet (`data` from its IPv6 header on); returns the verdict,
/// the trimmed length and the upper-layer offset from the IPv6 header.
#[inline]
fn check(tables: &Tables, rx_if: u32, data: &[u8]) -> (Verdict, usize, usize, u8) {
    use Ip6InputError as E;
    let bad = |e| (Verdict::Drop(e), data.len(), 0, 0);
    if data.len() < 40 {
        return bad(E::TooShort);
    }
    if data[0] >> 4 != 6 {
        return bad(E::BadVersion);
    }
    let total = 40 + u16::from_be_bytes([data[4], data[5]]) as usize;
    if total > data.len() {
        return bad(E::BadLength);
    }
    let data = &data[..total];
    let src = addr_at(data, SRC_AT);
    let dst = addr_at(data, DST_AT);
    if src.is_multicast() {
        return bad(E::MulticastSource);
    }
    if src.is_loopback() || dst.is_loopback() {
        return bad(E::Loopback);
    }
    if dst.is_unspecified() {
        return bad(E::UnspecifiedDest);
    }
    if data[7] == 0 {
        return bad(E::HopLimitZero);
    }
    let first = data[6];
    let up = match ipv6_walk_ext_headers(first, &data[40..]) {
        Ok(up) => up,
        Err(_) => return bad(E::BadExtHeaders),
    };
    let l4 = 40 + up.offset;
    if first == ip_protocol::HOPOPT {
        // The walk checked the header fits; check the TLVs inside it.
        let hbh_len = (data[41] as usize + 1) * 8;
        if Ipv6OptionIter::new(&data[42..40 + hbh_len]).any(|o| o.is_err()) {
            return bad(E::BadHopByHop);
        }
    }
    if src.is_unspecified() {
        // Only Duplicate Address Detection sends from :: (RFC 4862 5.4.2):
        // a Neighbor Solicitation to a solicited-node group.
        let is_dad = up.protocol == ip_protocol::ICMPV6
            && !up.is_fragment
            && data.get(l4) == Some(&icmpv6_type::NEIGHBOR_SOLICIT)
            && is_solicited_node_group(&dst);
        if !is_dad {
            return bad(E::UnspecifiedSource);
        }
    }
    let verdict = if dst.is_multicast() {
        if is_joined(tables, rx_if, &dst) {
            Verdict::Local
        } else {
            Verdict::Drop(E::MulticastNotForUs)
        }
    } else {
        Verdict::Unicast
    };
    (verdict, total, l4, up.protocol)
}

/// ff02::1:ffXX:XXXX.
#[inline]
fn is_solicited_node_group(dst: &Ipv6Addr) -> bool {
    let o = dst.octets();
    o[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff]
}

/// Whether the router listens to multicast group `dst` on `sw_if`.
#[inline]
fn is_joined(tables: &Tables, sw_if: u32, dst: &Ipv6Addr) -> bool {
    const ALL_NODES: u128 = 0xff02_0000_0000_0000_0000_0000_0000_0001;
    const ALL_ROUTERS: u128 = 0xff02_0000_0000_0000_0000_0000_0000_0002;
    let d = u128::from(*dst);
    if d == ALL_NODES || d == ALL_ROUTERS {
        return true;
    }
    let Some(intf) = tables.interface(sw_if) else { return false };
    // A proxy answers for addresses that are not its own: every
    // solicited-node group may carry a solicitation for one.
    (intf.proxy_nd && is_solicited_node_group(dst)) || intf.ip6.iter().any(|(a, _)| is_solicited_node_for(dst, a))
}

impl Node<Tables> for Ip6Input {
    const NAME: &'static str = "ip6-input";
    type Next = Ip6InputNext;
    type Error = Ip6InputError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        let arc = *self.arc.get_or_insert_with(|| cx.features().arc(UNICAST_ARC));
        let tables = cx.state;
        for &p in vector {
            let rx_if = cx.bufs.meta(p).rx_if;
            let (verdict, total, l4, protocol) = check(tables, rx_if, cx.bufs.data(p));
            if let Verdict::Drop(e) = verdict {
                cx.discard(p, e);
                continue;
            }
            if total < cx.bufs.meta(p).len as usize {
                cx.bufs.set_len(p, total);
                cx.count(Ip6InputError::Trimmed, 1);
            }
            let m = cx.bufs.meta_mut(p);
            m.l3 = m.current;
            m.l4 = m.current + l4 as u16;
            m.flags &= !(vswitch_packet::MetaFlags::FLOW_HASH_VALID | LOCALLY_ORIGINATED);
            if cx.bufs.data(p)[6] == ip_protocol::HOPOPT {
                cx.count(Ip6InputError::HopByHop, 1);
            }
            if cx.is_traced(p) {
                let d = cx.bufs.data(p);
                let t = Ip6InputTrace {
                    sw_if: rx_if,
                    src: addr_at(d, SRC_AT),
                    dst: addr_at(d, DST_AT),
                    protocol,
                    hop_limit: d[7],
                    payload_len: (total - 40) as u16,
                };
                cx.trace(p, t);
            }
            match (verdict, arc) {
                (Verdict::Local, _) => cx.enqueue(Ip6InputNext::Local, p),
                (_, Some(arc)) => cx.feature_start(arc, rx_if, p),
                (_, None) => cx.enqueue(Ip6InputNext::Lookup, p),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IfMode, Interface};
    use vswitch_wire::MacAddr;

    fn tables() -> Tables {
        let mut t = Tables::default();
        let mut i = Interface::port(0, "pg0", 0, MacAddr([2, 0, 0, 0, 0, 1]), IfMode::L3 { vrf: 0 });
        i.ip6.push(("2001:db8::1".parse().unwrap(), 64));
        t.set_interface(i);
        t
    }

    fn packet(src: &str, dst: &str, nh: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.extend_from_slice(&[nh, 64]);
        v.extend_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(payload);
        v
    }

    fn verdict(data: &[u8]) -> Result<(bool, usize, usize), Ip6InputError> {
        match check(&tables(), 0, data) {
            (Verdict::Drop(e), ..) => Err(e),
            (Verdict::Unicast, t, l4, _) => Ok((false, t, l4)),
            (Verdict::Local, t, l4, _) => Ok((true, t, l4)),
        }
    }

    #[test]
    fn each_check() {
        use Ip6InputError as E;
        let udp = [0u8; 8];
        let ok = packet("2001:db8::2", "2001:db8:1::9", ip_protocol::UDP, &udp);
        assert_eq!(verdict(&ok), Ok((false, 48, 40)));
        let mut padded = ok.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(verdict(&padded), Ok((false, 48, 40)), "padding trimmed to the payload length");
        assert_eq!(verdict(&ok[..39]), Err(E::TooShort));
        assert_eq!(verdict(&ok[..47]), Err(E::BadLength));
        let mut v = ok.clone();
        v[0] = 0x40;
        assert_eq!(verdict(&v), Err(E::BadVersion));
        let mut v = ok.clone();
        v[7] = 0;
        assert_eq!(verdict(&v), Err(E::HopLimitZero));
        let bad = |s, d| verdict(&packet(s, d, ip_protocol::UDP, &udp));
        assert_eq!(bad("ff02::1", "2001:db8::1"), Err(E::MulticastSource));
        assert_eq!(bad("::1", "2001:db8::1"), Err(E::Loopback));
        assert_eq!(bad("2001:db8::2", "::1"), Err(E::Loopback));
        assert_eq!(bad("::", "2001:db8::1"), Err(E::UnspecifiedSource));
        assert_eq!(bad("2001:db8::2", "::"), Err(E::UnspecifiedDest));
        assert_eq!(bad("2001:db8::2", "ff02::5"), Err(E::MulticastNotForUs));
        assert_eq!(bad("fe80::2", "ff02::1").map(|v| v.0), Ok(true));
        assert_eq!(bad("fe80::2", "ff02::2").map(|v| v.0), Ok(true));
        assert_eq!(bad("fe80::2", "ff02::1:ff00:1").map(|v| v.0), Ok(true), "our solicited-node group");
        assert_eq!(bad("fe80::2", "ff02::1:ff00:2"), Err(E::MulticastNotForUs));
    }

    #[test]
    fn dad_solicitation_may_come_from_unspecified() {
        let mut ns = [0u8; 24];
        ns[0] = icmpv6_type::NEIGHBOR_SOLICIT;
        let dad = packet("::", "ff02::1:ff00:1", ip_protocol::ICMPV6, &ns);
        assert_eq!(verdict(&dad), Ok((true, 64, 40)));
        ns[0] = icmpv6_type::ECHO_REQUEST;
        let echo = packet("::", "ff02::1:ff00:1", ip_protocol::ICMPV6, &ns);
        assert_eq!(verdict(&echo), Err(Ip6InputError::UnspecifiedSource));
    }

    #[test]
    fn extension_headers() {
        // Hop-by-hop (PadN 4) + destination options (Pad1 x6), then TCP.
        let mut ext = vec![ip_protocol::IPV6_OPTS, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[ip_protocol::TCP, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[0u8; 20]);
        let p = packet("2001:db8::2", "2001:db8:1::9", ip_protocol::HOPOPT, &ext);
        assert_eq!(verdict(&p), Ok((false, 76, 56)));
        // A TLV running past its header.
        let mut bad_tlv = ext.clone();
        bad_tlv[3] = 9;
        let p = packet("2001:db8::2", "2001:db8:1::9", ip_protocol::HOPOPT, &bad_tlv);
        assert_eq!(verdict(&p), Err(Ip6InputError::BadHopByHop));
        // Destination options header claiming more than is there.
        let mut long = ext.clone();
        long[9] = 200;
        let p = packet("2001:db8::2", "2001:db8:1::9", ip_protocol::HOPOPT, &long);
        assert_eq!(verdict(&p), Err(Ip6InputError::BadExtHeaders));
        // Hop-by-hop not first.
        let mut late = ext.clone();
        late[0] = ip_protocol::HOPOPT;
        let p = packet("2001:db8::2", "2001:db8:1::9", ip_protocol::IPV6_OPTS, &late);
        assert_eq!(verdict(&p), Err(Ip6InputError::BadExtHeaders));
        // Jumbogram-style: hop-by-hop with no payload.
        let p = packet("2001:db8::2", "2001:db8:1::9", ip_protocol::HOPOPT, &[]);
        assert_eq!(verdict(&p), Err(Ip6InputError::BadExtHeaders));
    }
}
