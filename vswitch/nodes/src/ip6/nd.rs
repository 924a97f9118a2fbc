//! ip6-nd: Neighbor Solicitations and Advertisements addressed to us
//! (RFC 4861), from ip6-local.
//!
//! Every message is validated first (RFC 4861 7.1.1 and 7.1.2), each
//! failure with its own counter: hop limit 255 (so it cannot come from off
//! the link), ICMP code 0, at least the fixed 24 bytes, a correct checksum,
//! a target that is not multicast, options that all have a non-zero length
//! and fit; a solicitation from the unspecified address (Duplicate Address
//! Detection) must go to a solicited-node group and carry no source
//! link-layer option; an advertisement to a multicast group must not be
//! marked solicited.
//!
//! A solicitation for one of the receiving interface's addresses — or,
//! with `proxy_nd` on the interface, for an address the FIB routes out of
//! another interface — is answered in its own buffer: an advertisement
//! with our MAC as target link-layer option, router flag set, solicited
//! (except for DAD), override (except when proxying, RFC 4861 7.2.8), sent
//! from the target (from an interface address when proxying) to the
//! solicitor, on the solicitor's MAC (its source link-layer option, else
//! the frame's source), or to all-nodes ff02::1 on 33:33:00:00:00:01 for
//! DAD. The solicitor's source link-layer option is learned into the
//! neighbor table first (RFC 4861 7.2.3).
//!
//! An advertisement updates the neighbor table with its target link-layer
//! address: an existing entry is refreshed, or changed when the override
//! flag allows it; a new entry is created only from a solicited
//! advertisement (an unsolicited one for an unknown neighbor is ignored,
//! RFC 4861 7.2.5). One that resolves a neighbor is handed to ip6-discover,
//! which sends the packets held for it through ip6-lookup again and frees
//! the advertisement. An advertisement for one of our own addresses means
//! someone else uses it: counted, dropped.
//!
//! The neighbor table is the FIB's ([`crate::ip::neighbor`]); the node
//! takes the FIB's control lock with `try_control` (never waiting) and
//! counts what it could not learn while the control plane held it.

use super::{addr_at, is_solicited_node_for, source_for, SRC_AT};
use crate::ip::fib::ethernet_rewrite;
use crate::ip::{IpFibError, NeighborChange, LOCALLY_ORIGINATED};
use crate::{Cx, Interface, Tables};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use vswitch_fib::adj::AdjKind;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::{Buffers, MetaFlags};
use vswitch_wire::icmpv6::{icmpv6_type, Icmpv6Packet};
use vswitch_wire::ip_protocol;
use vswitch_wire::ndp::{emit_neighbor_advert, ndp_flags, NdpOption, NdpOptionIter};
use vswitch_wire::{ethertype, Ipv6Packet, MacAddr};

next_arcs! {
    /// Where ip6-nd sends packets.
    pub enum Ip6NdNext {
        /// Advertisements we send.
        Output = "interface-output",
        /// Advertisements that resolved a neighbor: release held packets.
        Discover = "ip6-discover",
    }
}

errors! {
    /// What ip6-nd counts and drops.
    pub enum Ip6NdError {
        NotNd = "not a neighbor solicitation or advertisement",
        HopLimit = "invalid: hop limit is not 255",
        BadCode = "invalid: ICMP code is not 0",
        TooShort = "invalid: shorter than the fixed part",
        BadChecksum = "invalid: bad ICMPv6 checksum",
        BadOption = "invalid: option of zero length or past the end",
        MulticastTarget = "invalid: multicast target",
        DadWithSourceLl = "invalid: DAD solicitation with a source link-layer option",
        DadNotSolicitedNode = "invalid: DAD solicitation not to a solicited-node group",
        SolicitedMulticast = "invalid: solicited advertisement to a multicast group",
        NotOurs = "solicitation for an address that is not ours (dropped)",
        NoLinkLayer = "solicitation with no link-layer address to answer",
        Advertised = "advertisements sent (not a drop)",
        ProxyAdvertised = "proxy advertisements sent (not a drop)",
        Learned = "neighbors learned or updated (not a drop)",
        NotLearned = "not learned: the neighbor table refused",
        FibBusy = "not learned: FIB busy with the control plane",
        NoOverride = "advertisement without override for a neighbor with another MAC (ignored)",
        Unknown = "unsolicited advertisement for an unknown neighbor (ignored)",
        Processed = "advertisements processed (not a drop)",
        Duplicate = "one of our addresses used by another node: duplicate address",
        NoHeadroom = "dropped: no headroom for the Ethernet header",
    }
}

/// Trace record.
pub struct Ip6NdTrace {
    solicit: bool,
    src: Ipv6Addr,
    target: Ipv6Addr,
    ll: Option<MacAddr>,
    action: &'static str,
}

impl fmt::Display for Ip6NdTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.solicit { "solicitation" } else { "advertisement" };
        write!(f, "{what} from {} for {}", self.src, self.target)?;
        if let Some(m) = self.ll {
            write!(f, " ll {m}")?;
        }
        write!(f, ": {}", self.action)
    }
}

/// A validated Neighbor Discovery message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NdMessage {
    /// A solicitation for `target`, with the solicitor's link-layer address.
    Solicit { target: Ipv6Addr, source_ll: Option<MacAddr> },
    /// An advertisement for `target`.
    Advert { target: Ipv6Addr, flags: u8, target_ll: Option<MacAddr> },
}

/// Validates the NS or NA in `d` (an IPv6 packet trimmed to its payload
/// length) whose ICMPv6 message starts at `icmp_at`.
pub(crate) fn parse(d: &[u8], icmp_at: usize) -> Result<NdMessage, Ip6NdError> {
    use Ip6NdError as E;
    let ip = Ipv6Packet::new_unchecked(d);
    if ip.hop_limit() != 255 {
        return Err(E::HopLimit);
    }
    let msg = d.get(icmp_at..).ok_or(E::TooShort)?;
    if msg.len() < 24 {
        return Err(E::TooShort);
    }
    if msg[1] != 0 {
        return Err(E::BadCode);
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if !Icmpv6Packet::new_unchecked(msg).verify_checksum(&src, &dst) {
        return Err(E::BadChecksum);
    }
    let target = addr_at(msg, 8);
    if target.is_multicast() {
        return Err(E::MulticastTarget);
    }
    let solicit = match msg[0] {
        icmpv6_type::NEIGHBOR_SOLICIT => true,
        icmpv6_type::NEIGHBOR_ADVERT => false,
        _ => return Err(E::NotNd),
    };
    let mut ll = None;
    for o in NdpOptionIter::new(&msg[24..]) {
        match o {
            Err(_) => return Err(E::BadOption),
            Ok(NdpOption::SourceLinkLayer(m)) if solicit => ll = ll.or(Some(m)),
            Ok(NdpOption::TargetLinkLayer(m)) if !solicit => ll = ll.or(Some(m)),
            Ok(_) => {}
        }
    }
    if solicit {
        if src.is_unspecified() {
            if !is_solicited_node_for(&dst, &target) {
                return Err(E::DadNotSolicitedNode);
            }
            if ll.is_some() {
                return Err(E::DadWithSourceLl);
            }
        }
        Ok(NdMessage::Solicit { target, source_ll: ll })
    } else {
        let flags = msg[4] & 0xe0;
        if dst.is_multicast() && flags & ndp_flags::SOLICITED != 0 {
            return Err(E::SolicitedMulticast);
        }
        Ok(NdMessage::Advert { target, flags, target_ll: ll })
    }
}

/// Whether `target` is answered on `intf`: `Some(false)` for one of its
/// addresses, `Some(true)` for a proxied address (proxy ND on, routed out
/// of another interface), `None` otherwise.
fn answers(tables: &Tables, intf: &Interface, vrf: u32, target: &Ipv6Addr) -> Option<bool> {
    if intf.ip6.iter().any(|(a, _)| a == target) {
        return Some(false);
    }
    if !intf.proxy_nd {
        return None;
    }
    let fib = &*tables.fib;
    let adj = fib.adj(fib.resolve6(vrf, u128::from(*target), 0)?);
    let routed = matches!(adj.kind, AdjKind::Rewrite | AdjKind::Incomplete | AdjKind::Glean);
    (routed && adj.sw_if != intf.sw_if).then_some(true)
}

/// Writes the advertisement answering a solicitation into `p` (in place
/// over the solicitation, from its IPv6 header) with the Ethernet header in
/// front; returns `false` (nothing sent) when there is no headroom.
#[allow(clippy::too_many_arguments)]
fn write_advert(
    bufs: &mut Buffers,
    p: PacketId,
    intf: &Interface,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    flags: u8,
    dst_mac: MacAddr,
) -> bool {
    const LEN: usize = 40 + 32;
    if !bufs.set_len(p, LEN) {
        return false;
    }
    let d = bufs.data_mut(p);
    let mut ip = Ipv6Packet::new_unchecked(&mut d[..]);
    ip.set_version(6);
    ip.set_traffic_class(0);
    ip.set_flow_label(0);
    ip.set_payload_len(32);
    ip.set_next_header(ip_protocol::ICMPV6);
    ip.set_hop_limit(255);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    if emit_neighbor_advert(&mut d[40..LEN], &src, &dst, &target, flags, Some(intf.mac)).is_err() {
        return false;
    }
    let (rw, n) = ethernet_rewrite(dst_mac, intf.mac, intf.tags(), ethertype::IPV6);
    let m = bufs.meta_mut(p);
    m.l3 = m.current;
    m.l4 = m.current + 40;
    let Some(h) = bufs.push_front(p, n) else { return false };
    h[..n].copy_from_slice(&rw[..n]);
    let m = bufs.meta_mut(p);
    m.l2 = m.current;
    m.tx_if = intf.sw_if;
    m.flags = (m.flags & !MetaFlags::FLOW_HASH_VALID) | LOCALLY_ORIGINATED;
    true
}

/// The ip6-nd node.
#[derive(Default)]
pub struct Ip6Nd;

/// Marks an advertisement handed to ip6-discover (`meta.opaque[0]`).
pub(crate) const RESOLVED_SIGNAL: u32 = 0x6e64_0001;

impl Node<Tables> for Ip6Nd {
    const NAME: &'static str = "ip6-nd";
    type Next = Ip6NdNext;
    type Error = Ip6NdError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use Ip6NdError as E;
        let tables = cx.state;
        for &p in vector {
            let m = *cx.bufs.meta(p);
            let d = cx.bufs.data(p);
            let icmp_at = (m.l4.saturating_sub(m.l3)) as usize;
            let src = addr_at(d, SRC_AT);
            let msg = match parse(d, icmp_at) {
                Ok(msg) => msg,
                Err(e) => {
                    cx.discard(p, e);
                    continue;
                }
            };
            let Some(intf) = tables.interface(m.rx_if) else {
                cx.discard(p, E::NotOurs);
                continue;
            };
            let traced = m.flags & MetaFlags::TRACED != 0;
            let (solicit, target, ll) = match msg {
                NdMessage::Solicit { target, source_ll } => (true, target, source_ll),
                NdMessage::Advert { target, target_ll, .. } => (false, target, target_ll),
            };
            let note = move |cx: &mut Cx<'_, Self>, action: &'static str| {
                if traced {
                    cx.trace(p, Ip6NdTrace { solicit, src, target, ll, action });
                }
            };
            match msg {
                NdMessage::Solicit { target, source_ll } => {
                    let Some(proxy) = answers(tables, intf, m.vrf, &target) else {
                        note(cx, "not ours");
                        cx.discard(p, E::NotOurs);
                        continue;
                    };
                    let dad = src.is_unspecified();
                    if let (false, Some(mac)) = (dad, source_ll) {
                        learn(cx, m.rx_if, src, mac, true);
                    }
                    // The solicitor's MAC: its option, else the frame's source.
                    let frame_src = (m.l3.saturating_sub(m.l2) >= 14)
                        .then(|| MacAddr::from_bytes(&cx.bufs.buffer(p)[m.l2 as usize + 6..m.l2 as usize + 12]));
                    let (na_dst, dst_mac) = if dad {
                        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
                        (all_nodes, MacAddr::from_ipv6_multicast(&all_nodes))
                    } else {
                        match source_ll.or(frame_src).filter(|m| m.is_unicast() && !m.is_zero()) {
                            Some(mac) => (src, mac),
                            None => {
                                note(cx, "no link-layer address to answer");
                                cx.discard(p, E::NoLinkLayer);
                                continue;
                            }
                        }
                    };
                    let na_src = if proxy { source_for(&intf.ip6, &na_dst).unwrap_or(target) } else { target };
                    let mut flags = ndp_flags::ROUTER;
                    if !dad {
                        flags |= ndp_flags::SOLICITED;
                    }
                    if !proxy {
                        flags |= ndp_flags::OVERRIDE;
                    }
                    if !write_advert(cx.bufs, p, intf, na_src, na_dst, target, flags, dst_mac) {
                        cx.discard(p, E::NoHeadroom);
                        continue;
                    }
                    note(cx, if proxy { "proxy advertisement sent" } else { "advertisement sent" });
                    cx.count(if proxy { E::ProxyAdvertised } else { E::Advertised }, 1);
                    cx.enqueue(Ip6NdNext::Output, p);
                }
                NdMessage::Advert { target, flags, target_ll } => {
                    let ours = tables.interfaces.iter().flatten().any(|i| i.ip6.iter().any(|(a, _)| *a == target));
                    if ours {
                        note(cx, "duplicate of our address");
                        cx.discard(p, E::Duplicate);
                        continue;
                    }
                    let Some(mac) = target_ll else {
                        note(cx, "no target link-layer address");
                        cx.discard(p, E::Processed);
                        continue;
                    };
                    let solicited = flags & ndp_flags::SOLICITED != 0;
                    let may_override = flags & ndp_flags::OVERRIDE != 0;
                    let change = match tables.fib.try_control() {
                        None => {
                            note(cx, "FIB busy");
                            cx.discard(p, E::FibBusy);
                            continue;
                        }
                        Some(mut c) => match c.neighbor(m.rx_if, IpAddr::V6(target)) {
                            Some(n) if n.mac != mac && !may_override => Err(E::NoOverride),
                            _ => c
                                .learn_neighbor(m.rx_if, IpAddr::V6(target), mac, cx.now, solicited)
                                .map_err(|_| E::NotLearned),
                        },
                    };
                    match change {
                        Ok(NeighborChange::Created | NeighborChange::Changed) => {
                            cx.count(E::Learned, 1);
                            cx.count(E::Processed, 1);
                            note(cx, "learned: releasing held packets");
                            cx.bufs.meta_mut(p).opaque[0] = RESOLVED_SIGNAL;
                            cx.enqueue(Ip6NdNext::Discover, p);
                        }
                        Ok(NeighborChange::Refreshed) => {
                            note(cx, "refreshed");
                            cx.discard(p, E::Processed);
                        }
                        Ok(NeighborChange::Ignored) => {
                            note(cx, "unknown neighbor, ignored");
                            cx.discard(p, E::Unknown);
                        }
                        Err(e) => {
                            note(cx, "not learned");
                            cx.discard(p, e);
                        }
                    }
                }
            }
        }
    }
}

/// Learns `ip` at `mac` on `sw_if` into the neighbor table, counting.
fn learn(cx: &mut Cx<'_, Ip6Nd>, sw_if: u32, ip: Ipv6Addr, mac: MacAddr, create: bool) {
    let Some(mut c) = cx.state.fib.try_control() else {
        cx.count(Ip6NdError::FibBusy, 1);
        return;
    };
    match c.learn_neighbor(sw_if, IpAddr::V6(ip), mac, cx.now, create) {
        Ok(NeighborChange::Created | NeighborChange::Changed) => cx.count(Ip6NdError::Learned, 1),
        Ok(_) => {}
        Err(IpFibError::OwnAddress(_)) => cx.count(Ip6NdError::Duplicate, 1),
        Err(_) => cx.count(Ip6NdError::NotLearned, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip6::DST_AT;
    use vswitch_wire::ndp::emit_neighbor_solicit;
    use vswitch_wire::ndp::solicited_node;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 9]);

    fn ip6(src: Ipv6Addr, dst: Ipv6Addr, hlim: u8, icmp: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        v.extend_from_slice(&[ip_protocol::ICMPV6, hlim]);
        v.extend_from_slice(&src.octets());
        v.extend_from_slice(&dst.octets());
        v.extend_from_slice(icmp);
        v
    }

    fn ns(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr, sll: Option<MacAddr>) -> Vec<u8> {
        let mut m = [0u8; 32];
        let n = emit_neighbor_solicit(&mut m, &src, &dst, &target, sll).unwrap();
        ip6(src, dst, 255, &m[..n])
    }

    fn na(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr, flags: u8, tll: Option<MacAddr>) -> Vec<u8> {
        let mut m = [0u8; 32];
        let n = emit_neighbor_advert(&mut m, &src, &dst, &target, flags, tll).unwrap();
        ip6(src, dst, 255, &m[..n])
    }

    #[test]
    fn valid_messages_parse() {
        let t = a("2001:db8::1");
        let p = ns(a("2001:db8::2"), solicited_node(&t), t, Some(MAC));
        assert_eq!(parse(&p, 40), Ok(NdMessage::Solicit { target: t, source_ll: Some(MAC) }));
        let dad = ns(Ipv6Addr::UNSPECIFIED, solicited_node(&t), t, None);
        assert_eq!(parse(&dad, 40), Ok(NdMessage::Solicit { target: t, source_ll: None }));
        let f = ndp_flags::SOLICITED | ndp_flags::OVERRIDE;
        let p = na(a("2001:db8::2"), a("2001:db8::1"), a("2001:db8::2"), f, Some(MAC));
        assert_eq!(parse(&p, 40), Ok(NdMessage::Advert { target: a("2001:db8::2"), flags: f, target_ll: Some(MAC) }));
    }

    #[test]
    fn each_rfc4861_check() {
        use Ip6NdError as E;
        let t = a("2001:db8::1");
        let good = ns(a("2001:db8::2"), solicited_node(&t), t, Some(MAC));
        let mut v = good.clone();
        v[7] = 64;
        assert_eq!(parse(&v, 40), Err(E::HopLimit));
        let mut v = good.clone();
        v[41] = 1;
        assert_eq!(parse(&v, 40), Err(E::BadCode));
        assert_eq!(parse(&good[..60], 40), Err(E::TooShort));
        let mut v = good.clone();
        v[70] ^= 1;
        assert_eq!(parse(&v, 40), Err(E::BadChecksum));
        // Option length 0 (checksum refilled so only the option is wrong).
        let mut v = good.clone();
        v[65] = 0;
        let (s, dd) = (addr_at(&v, SRC_AT), addr_at(&v, DST_AT));
        Icmpv6Packet::new_unchecked(&mut v[40..]).fill_checksum(&s, &dd);
        assert_eq!(parse(&v, 40), Err(E::BadOption));
        let mc = ns(a("2001:db8::2"), solicited_node(&t), a("ff02::1"), Some(MAC));
        assert_eq!(parse(&mc, 40), Err(E::MulticastTarget));
        let dad_sll = ns(Ipv6Addr::UNSPECIFIED, solicited_node(&t), t, Some(MAC));
        assert_eq!(parse(&dad_sll, 40), Err(E::DadWithSourceLl));
        let dad_uni = ns(Ipv6Addr::UNSPECIFIED, t, t, None);
        assert_eq!(parse(&dad_uni, 40), Err(E::DadNotSolicitedNode));
        let sol_mc = na(a("2001:db8::2"), a("ff02::1"), a("2001:db8::2"), ndp_flags::SOLICITED, Some(MAC));
        assert_eq!(parse(&sol_mc, 40), Err(E::SolicitedMulticast));
    }
}
