//! ip6-icmp-error: turns a packet into the ICMPv6 error about it (RFC 4443).
//!
//! The node that finds the problem stores it in the packet's metadata
//! ([`Icmp6Error::store`]) and hands the packet here. The error is built in
//! the same buffer, with no copy of the body: a new IPv6 header and the
//! 8-byte ICMPv6 header are pushed in front of the original IPv6 packet,
//! which is cut so the whole error fits the minimum MTU (1280 bytes). Its
//! source is an address of the interface the original arrived on (the
//! link-local one for a link-local destination; an address of another
//! interface in the same VRF when that one has none), its destination the
//! original source, its hop limit 255, and it is routed back through
//! ip6-lookup in the VRF the original arrived in.
//!
//! The error is marked locally originated: ip6-rewrite sends it with hop
//! limit 255 as it is, and no error is ever sent about it.
//!
//! Not sent (RFC 4443 section 2.4), each counted: about a packet we
//! originated; about an ICMPv6 error message; about a packet to a multicast destination, except packet too
//! big; about a packet whose source does not name one node (unspecified or
//! multicast); when there is no IPv6 address to send from; when the
//! worker's token bucket is empty ([`TokenBucket`], default
//! [`DEFAULT_RATE`] per second with a burst of [`DEFAULT_BURST`]).

use super::{addr_at, source_for, Icmp6Error, SRC_AT};
use crate::ip::icmp_limit::TokenBucket;
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, IfMode, Tables};
use std::fmt;
use std::net::Ipv6Addr;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::{Buffers, MetaFlags};
use vswitch_wire::icmpv6::Icmpv6Packet;
use vswitch_wire::ip_protocol;
use vswitch_wire::ipv6_ext::ipv6_walk_ext_headers;
use vswitch_wire::Ipv6Packet;

/// Errors sent per second per worker, by default.
pub const DEFAULT_RATE: u32 = 1000;
/// Errors sent back to back before the rate applies, by default.
pub const DEFAULT_BURST: u32 = 100;
/// The IPv6 minimum MTU: no error is longer (RFC 4443 section 2.4 (c)).
pub const MIN_MTU: usize = 1280;
/// IPv6 header plus ICMPv6 header.
const ERROR_HEADER: usize = 48;

next_arcs! {
    /// Where ip6-icmp-error sends the errors it built.
    pub enum Ip6IcmpErrorNext { Lookup = "ip6-lookup" }
}

errors! {
    /// What ip6-icmp-error counts.
    pub enum Ip6IcmpErrorError {
        SentUnreachable = "destination unreachable sent",
        SentTooBig = "packet too big sent",
        SentTimeExceeded = "time exceeded sent",
        SentParamProblem = "parameter problem sent",
        AboutError = "not sent: the packet is an ICMPv6 error",
        Multicast = "not sent: multicast destination",
        BadSource = "not sent: unspecified or multicast source",
        NoSource = "not sent: no IPv6 address to send from",
        RateLimited = "not sent: rate limited",
        LocallyOriginated = "not sent: the packet is our own",
        NoError = "not sent: no error recorded with the packet",
        NoHeadroom = "not sent: no headroom for the headers",
    }
}

/// Trace record.
pub struct Ip6IcmpErrorTrace {
    error: Icmp6Error,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    body: u16,
}

impl fmt::Display for Ip6IcmpErrorTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (t, c, param) = self.error.type_code_param();
        write!(f, "{:?} (type {t} code {c} param {param}): {} -> {} body {}", self.error, self.src, self.dst, self.body)
    }
}

/// The ip6-icmp-error node.
pub struct Ip6IcmpError {
    limit: TokenBucket,
}

impl Default for Ip6IcmpError {
    fn default() -> Self {
        Ip6IcmpError::new(TokenBucket::new(DEFAULT_RATE, DEFAULT_BURST))
    }
}

impl Ip6IcmpError {
    /// Sends at most what `limit` allows.
    pub fn new(limit: TokenBucket) -> Self {
        Ip6IcmpError { limit }
    }

    /// Replaces the rate limiter (reconfiguration between dispatches).
    pub fn set_limit(&mut self, limit: TokenBucket) {
        self.limit = limit;
    }
}

/// Whether RFC 4443 allows an error about `orig` (an IPv6 packet).
pub(crate) fn may_send(orig: &[u8], error: Icmp6Error) -> Result<(), Ip6IcmpErrorError> {
    use Ip6IcmpErrorError as E;
    let ip = Ipv6Packet::new_unchecked(orig);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if src.is_unspecified() || src.is_multicast() {
        return Err(E::BadSource);
    }
    if dst.is_multicast() && !matches!(error, Icmp6Error::PacketTooBig(_)) {
        return Err(E::Multicast);
    }
    let payload = &orig[40..];
    if let Ok(up) = ipv6_walk_ext_headers(ip.next_header(), payload) {
        // For a non-first fragment the byte is fragment data, not a type:
        // taking it for one errs on the side of silence.
        if up.protocol == ip_protocol::ICMPV6 && payload.get(up.offset).is_some_and(|&t| t < 128) {
            return Err(E::AboutError);
        }
    }
    Ok(())
}

/// Turns packet `p` (its IPv6 header at `meta.l3`) into `error` from `src`:
/// pushes the IPv6 and ICMPv6 headers, cuts the body to fit 1280 bytes,
/// fills the checksum. Returns the body length, or `None` (the packet is
/// unchanged) when the headroom is too small.
pub(crate) fn build(bufs: &mut Buffers, p: PacketId, src: Ipv6Addr, error: Icmp6Error) -> Option<usize> {
    let m = bufs.meta_mut(p);
    let end = m.current as usize + m.len as usize;
    let l3 = (m.l3 as usize).min(end);
    m.current = l3 as u16;
    m.len = (end - l3) as u16;
    let body = (m.len as usize).min(MIN_MTU - ERROR_HEADER);
    m.len = body as u16;
    let data = bufs.push_front(p, ERROR_HEADER)?;
    let dst = addr_at(data, ERROR_HEADER + SRC_AT);
    let (t, c, param) = error.type_code_param();
    let mut ip = Ipv6Packet::new_unchecked(&mut data[..]);
    ip.set_version(6);
    ip.set_traffic_class(0);
    ip.set_flow_label(0);
    ip.set_payload_len((8 + body) as u16);
    ip.set_next_header(ip_protocol::ICMPV6);
    ip.set_hop_limit(255);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    let mut icmp = Icmpv6Packet::new_unchecked(&mut data[40..]);
    icmp.set_msg_type(t);
    icmp.set_code(c);
    icmp.set_pointer(param);
    icmp.fill_checksum(&src, &dst);
    let m = bufs.meta_mut(p);
    m.l3 = m.current;
    m.l4 = m.current + 40;
    m.flags = (m.flags & !MetaFlags::FLOW_HASH_VALID) | LOCALLY_ORIGINATED;
    Some(body)
}

/// The address an error about a packet received on `rx_if` is sent from:
/// one of that interface's (see [`source_for`]), or failing that one of
/// any routed interface in the same VRF.
fn error_source(tables: &Tables, rx_if: u32, vrf: u32, dst: &Ipv6Addr) -> Option<Ipv6Addr> {
    if let Some(a) = tables.interface(rx_if).and_then(|i| source_for(&i.ip6, dst)) {
        return Some(a);
    }
    tables.interfaces.iter().flatten().filter(|i| i.mode == IfMode::L3 { vrf }).find_map(|i| source_for(&i.ip6, dst))
}

impl Node<Tables> for Ip6IcmpError {
    const NAME: &'static str = "ip6-icmp-error";
    type Next = Ip6IcmpErrorNext;
    type Error = Ip6IcmpErrorError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use Ip6IcmpErrorError as E;
        let tables = cx.state;
        for &p in vector {
            let m = *cx.bufs.meta(p);
            let Some(error) = Icmp6Error::load(&m) else {
                cx.discard(p, E::NoError);
                continue;
            };
            if m.flags & LOCALLY_ORIGINATED != 0 {
                cx.discard(p, E::LocallyOriginated);
                continue;
            }
            let buf = cx.bufs.buffer(p);
            let (l3, end) = (m.l3 as usize, m.current as usize + m.len as usize);
            let Some(orig) = buf.get(l3..end).filter(|o| o.len() >= 40) else {
                cx.discard(p, E::NoError);
                continue;
            };
            if let Err(e) = may_send(orig, error) {
                cx.discard(p, e);
                continue;
            }
            let dst = addr_at(orig, SRC_AT);
            let Some(src) = error_source(tables, m.rx_if, m.vrf, &dst) else {
                cx.discard(p, E::NoSource);
                continue;
            };
            if !self.limit.allow(cx.now) {
                cx.discard(p, E::RateLimited);
                continue;
            }
            let Some(body) = build(cx.bufs, p, src, error) else {
                cx.discard(p, E::NoHeadroom);
                continue;
            };
            let sent = match error {
                Icmp6Error::PacketTooBig(_) => E::SentTooBig,
                Icmp6Error::HopLimitExceeded => E::SentTimeExceeded,
                Icmp6Error::ParameterProblem(..) => E::SentParamProblem,
                _ => E::SentUnreachable,
            };
            cx.count(sent, 1);
            if cx.is_traced(p) {
                cx.trace(p, Ip6IcmpErrorTrace { error, src, dst, body: body as u16 });
            }
            cx.enqueue(Ip6IcmpErrorNext::Lookup, p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vswitch_packet::{BufferPool, BufferPoolConfig};
    use vswitch_wire::icmpv6::icmpv6_type;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn packet(src: &str, dst: &str, nh: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.extend_from_slice(&[nh, 1]);
        v.extend_from_slice(&a(src).octets());
        v.extend_from_slice(&a(dst).octets());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn rfc4443_exceptions() {
        let udp = packet("2001:db8::2", "2001:db8:1::9", ip_protocol::UDP, &[0; 8]);
        assert_eq!(may_send(&udp, Icmp6Error::HopLimitExceeded), Ok(()));
        let mc = packet("2001:db8::2", "ff0e::9", ip_protocol::UDP, &[0; 8]);
        assert_eq!(may_send(&mc, Icmp6Error::HopLimitExceeded), Err(Ip6IcmpErrorError::Multicast));
        assert_eq!(may_send(&mc, Icmp6Error::PacketTooBig(1280)), Ok(()), "PMTUD works for multicast");
        let unspec = packet("::", "2001:db8:1::9", ip_protocol::UDP, &[0; 8]);
        assert_eq!(may_send(&unspec, Icmp6Error::NoRoute), Err(Ip6IcmpErrorError::BadSource));
        let mut err = [0u8; 16];
        err[0] = icmpv6_type::TIME_EXCEEDED;
        let about_err = packet("2001:db8::2", "2001:db8:1::9", ip_protocol::ICMPV6, &err);
        assert_eq!(may_send(&about_err, Icmp6Error::NoRoute), Err(Ip6IcmpErrorError::AboutError));
        err[0] = icmpv6_type::ECHO_REQUEST;
        let echo = packet("2001:db8::2", "2001:db8:1::9", ip_protocol::ICMPV6, &err);
        assert_eq!(may_send(&echo, Icmp6Error::NoRoute), Ok(()));
        // An ICMPv6 error behind a destination options header is still one.
        let mut ext = vec![ip_protocol::ICMPV6, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[icmpv6_type::DEST_UNREACHABLE, 0, 0, 0, 0, 0, 0, 0]);
        let behind = packet("2001:db8::2", "2001:db8:1::9", ip_protocol::IPV6_OPTS, &ext);
        assert_eq!(may_send(&behind, Icmp6Error::NoRoute), Err(Ip6IcmpErrorError::AboutError));
    }

    #[test]
    fn built_error_fits_min_mtu_and_checks() {
        let pool = BufferPool::new(&BufferPoolConfig { buffers: 4, prefer_huge: false, ..Default::default() }).unwrap();
        let mut bufs = pool.worker();
        for (payload, body) in [(100usize, 140usize), (1400, MIN_MTU - ERROR_HEADER)] {
            let orig = packet("2001:db8::2", "2001:db8:1::9", ip_protocol::UDP, &vec![7u8; payload]);
            let p = bufs.alloc().unwrap();
            bufs.write(p, &orig);
            let m = bufs.meta_mut(p);
            m.l3 = m.current;
            let src = a("2001:db8::1");
            assert_eq!(build(&mut bufs, p, src, Icmp6Error::PacketTooBig(1400)), Some(body));
            let d = bufs.data(p);
            assert_eq!(d.len(), ERROR_HEADER + body);
            assert!(d.len() <= MIN_MTU);
            let ip = Ipv6Packet::new_checked(d).unwrap();
            assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (src, a("2001:db8::2"), 255));
            assert_eq!(ip.payload_len() as usize, 8 + body);
            let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
            assert_eq!((icmp.msg_type(), icmp.code(), icmp.mtu()), (icmpv6_type::PACKET_TOO_BIG, 0, 1400));
            assert!(icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()));
            assert_eq!(icmp.data(), &orig[..body]);
            assert_eq!(bufs.meta(p).l4, bufs.meta(p).l3 + 40);
            bufs.free(p);
        }
    }
}
