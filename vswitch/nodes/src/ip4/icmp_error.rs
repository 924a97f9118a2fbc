//! ip4-icmp-error: builds ICMP error messages (RFC 792, RFC 1812 4.3.2)
//! about packets other nodes could not forward, and routes them back to
//! the packet's source through ip4-lookup.
//!
//! The node that sends a packet here says which error with
//! [`request_icmp_error`] (type and code in `meta.opaque[0]`, the next-hop
//! MTU for "fragmentation needed" in `meta.opaque[1]`): ip4-rewrite for
//! TTL expiry and DF packets too big for the link, ip4-lookup for
//! unreachable and administratively prohibited routes.
//!
//! The error is built in the offending packet's own buffer: a new IPv4
//! header (source: the receiving interface's first address, or failing
//! that any address of an interface in the same VRF; TTL 64; precedence
//! "internetwork control") and ICMP header are pushed in front of the
//! original IP header, and the packet is cut to that header plus 8 bytes
//! of its payload. No error is sent (RFC 1812 4.3.2.7) about an ICMP
//! error, a fragment other than the first, a packet to a broadcast or
//! multicast address (limited broadcast, 224/4, 240/4, or the directed
//! broadcast of a subnet of the receiving interface), a packet from a
//! martian or broadcast source, or a packet we originated; each is a
//! counted drop. Errors are rate limited per worker with a token bucket
//! (default 100 a second, bursts of 50), and a limited error is counted.

use crate::ip::icmp_limit::TokenBucket;
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, IfMode, Tables};
use std::fmt;
use std::net::Ipv4Addr;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::{Meta, MetaFlags};
use vswitch_wire::checksum;
use vswitch_wire::icmpv4::{icmpv4_type, icmpv4_unreach};
use vswitch_wire::ip_protocol;

next_arcs! {
    /// Where ip4-icmp-error sends the errors it built.
    pub enum Ip4IcmpErrorNext {
        Lookup = "ip4-lookup",
    }
}

errors! {
    /// What ip4-icmp-error counts and drops.
    pub enum Ip4IcmpErrorError {
        TimeExceeded = "time exceeded sent (not a drop)",
        Unreachable = "destination unreachable sent (not a drop)",
        FragNeeded = "fragmentation needed sent (not a drop)",
        AboutIcmpError = "not sent: the packet is an ICMP error",
        NotFirstFragment = "not sent: fragment other than the first",
        NotUnicast = "not sent: broadcast or multicast destination",
        BadSource = "not sent: martian or broadcast source",
        LocallyOriginated = "not sent: the packet is our own",
        RateLimited = "not sent: rate limited",
        NoSourceAddress = "not sent: no IPv4 address to send from",
        NoHeadroom = "not sent: no headroom for the headers",
    }
}

/// Errors sent per second per worker, by default.
pub const DEFAULT_RATE: u32 = 100;
/// Errors sent back to back at most, by default.
pub const DEFAULT_BURST: u32 = 50;
/// TTL of the errors.
pub const ERROR_TTL: u8 = 64;

/// Asks ip4-icmp-error for an error of `icmp_type`/`code` about the packet
/// whose metadata this is; `mtu` is the next-hop MTU for fragmentation
/// needed (0 otherwise). Call it just before enqueueing the packet to
/// ip4-icmp-error; the packet must start at its IP header.
#[inline]
pub fn request_icmp_error(m: &mut Meta, icmp_type: u8, code: u8, mtu: u16) {
    m.opaque[0] = (icmp_type as u32) << 8 | code as u32;
    m.opaque[1] = mtu as u32;
}

/// Trace record.
pub struct Ip4IcmpErrorTrace {
    icmp_type: u8,
    code: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    outcome: &'static str,
}

impl fmt::Display for Ip4IcmpErrorTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "type {} code {} from {} to {}: {}", self.icmp_type, self.code, self.src, self.dst, self.outcome)
    }
}

/// The ip4-icmp-error node.
pub struct Ip4IcmpError {
    limit: TokenBucket,
    ident: u16,
}

impl Default for Ip4IcmpError {
    fn default() -> Self {
        Ip4IcmpError::new(DEFAULT_RATE, DEFAULT_BURST)
    }
}

impl Ip4IcmpError {
    /// A node sending at most `rate` errors a second, `burst` back to back.
    pub fn new(rate: u32, burst: u32) -> Self {
        Ip4IcmpError { limit: TokenBucket::new(rate, burst), ident: 0 }
    }

    /// Replaces the rate limit (e.g. from configuration).
    pub fn set_rate(&mut self, rate: u32, burst: u32) {
        self.limit = TokenBucket::new(rate, burst);
    }
}

/// The address errors about a packet received on `rx_if` are sent from.
fn source_address(tables: &Tables, rx_if: u32, vrf: u32) -> Option<Ipv4Addr> {
    if let Some(a) = tables.interface(rx_if).and_then(|i| i.ip4.first()) {
        return Some(a.0);
    }
    tables.interfaces.iter().flatten().filter(|i| i.mode == IfMode::L3 { vrf }).find_map(|i| i.ip4.first().map(|a| a.0))
}

/// Whether `dst` is a directed broadcast of a subnet of `rx_if`.
fn is_directed_broadcast(tables: &Tables, rx_if: u32, dst: u32) -> bool {
    let Some(i) = tables.interface(rx_if) else { return false };
    i.ip4.iter().any(|&(a, len)| {
        if len >= 31 {
            return false;
        }
        let host = u32::MAX >> len;
        (u32::from(a) & !host) | host == dst
    })
}

impl Node<Tables> for Ip4IcmpError {
    const NAME: &'static str = "ip4-icmp-error";
    type Next = Ip4IcmpErrorNext;
    type Error = Ip4IcmpErrorError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use Ip4IcmpErrorError as E;
        let tables = cx.state;
        for &p in vector {
            let m = cx.bufs.meta(p);
            let (what, mtu, rx_if, vrf, flags) = (m.opaque[0], m.opaque[1] as u16, m.rx_if, m.vrf, m.flags);
            let (icmp_type, code) = ((what >> 8) as u8, what as u8);
            let d = cx.bufs.data(p);
            let hl = ((d[0] & 0x0f) as usize) << 2;
            let (src, dst) =
                (u32::from_be_bytes([d[12], d[13], d[14], d[15]]), u32::from_be_bytes([d[16], d[17], d[18], d[19]]));
            let frag_offset = u16::from_be_bytes([d[6], d[7]]) & 0x1fff;
            let about_error = d[9] == ip_protocol::ICMP
                && frag_offset == 0
                && d.get(hl).is_some_and(|&t| {
                    matches!(
                        t,
                        icmpv4_type::DEST_UNREACHABLE
                            | icmpv4_type::REDIRECT
                            | icmpv4_type::TIME_EXCEEDED
                            | icmpv4_type::PARAM_PROBLEM
                    )
                });
            let (s0, d0) = (src >> 24, dst >> 24);
            let verdict = if flags & LOCALLY_ORIGINATED != 0 {
                Err(E::LocallyOriginated)
            } else if about_error {
                Err(E::AboutIcmpError)
            } else if frag_offset != 0 {
                Err(E::NotFirstFragment)
            } else if d0 >= 224 || is_directed_broadcast(tables, rx_if, dst) {
                Err(E::NotUnicast)
            } else if s0 == 0 || s0 == 127 || s0 >= 224 || is_directed_broadcast(tables, rx_if, src) {
                Err(E::BadSource)
            } else if !self.limit.allow(cx.now) {
                Err(E::RateLimited)
            } else {
                source_address(tables, rx_if, vrf).ok_or(E::NoSourceAddress)
            };
            let traced = cx.is_traced(p);
            let our = match verdict {
                Err(e) => {
                    if traced {
                        let t = Ip4IcmpErrorTrace {
                            icmp_type,
                            code,
                            src: Ipv4Addr::from(src),
                            dst: Ipv4Addr::from(dst),
                            outcome: "not sent",
                        };
                        cx.trace(p, t);
                    }
                    cx.discard(p, e);
                    continue;
                }
                Ok(our) => our,
            };
            let quote = (hl + 8).min(d.len());
            let Some(buf) = cx.bufs.push_front(p, 28) else {
                cx.discard(p, E::NoHeadroom);
                continue;
            };
            let total = 28 + quote;
            self.ident = self.ident.wrapping_add(1);
            let ip = &mut buf[..20];
            ip.copy_from_slice(&[
                0x45,
                0xc0,
                0,
                0,
                0,
                0,
                0,
                0,
                ERROR_TTL,
                ip_protocol::ICMP,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ]);
            ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            ip[4..6].copy_from_slice(&self.ident.to_be_bytes());
            ip[12..16].copy_from_slice(&our.octets());
            ip[16..20].copy_from_slice(&src.to_be_bytes());
            let c = checksum::checksum(ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let icmp = &mut buf[20..total];
            icmp[..8].copy_from_slice(&[icmp_type, code, 0, 0, 0, 0, 0, 0]);
            if icmp_type == icmpv4_type::DEST_UNREACHABLE && code == icmpv4_unreach::FRAG_NEEDED {
                icmp[6..8].copy_from_slice(&mtu.to_be_bytes());
            }
            let c = checksum::checksum(icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            cx.bufs.set_len(p, total);
            let m = cx.bufs.meta_mut(p);
            m.l3 = m.current;
            m.l4 = m.current + 20;
            m.flags = (m.flags & !MetaFlags::FLOW_HASH_VALID) | LOCALLY_ORIGINATED;
            cx.count(
                match (icmp_type, code) {
                    (icmpv4_type::TIME_EXCEEDED, _) => E::TimeExceeded,
                    (_, icmpv4_unreach::FRAG_NEEDED) => E::FragNeeded,
                    _ => E::Unreachable,
                },
                1,
            );
            if traced {
                let t = Ip4IcmpErrorTrace { icmp_type, code, src: our, dst: Ipv4Addr::from(src), outcome: "sent" };
                cx.trace(p, t);
            }
            cx.enqueue(Ip4IcmpErrorNext::Lookup, p);
        }
    }
}
