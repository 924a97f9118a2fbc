//! ip6-rewrite: the last IPv6 step before output. Checks the hop limit
//! and the MTU, decrements the hop limit (IPv6 has no header checksum),
//! writes the adjacency's rewrite (destination and source MAC, VLAN tags,
//! ethertype) into the headroom in front of the IPv6 header and hands the
//! packet to interface-output on the adjacency's interface.
//!
//! - Hop limit <= 1 on a forwarded packet: ip6-icmp-error sends time
//!   exceeded (code 0). Packets we originate (echo replies, ICMPv6 errors)
//!   leave with their hop limit as it is.
//! - Longer than the adjacency's MTU: ip6-icmp-error sends packet too big
//!   with that MTU. IPv6 routers never fragment (RFC 8200 section 5).
//!   Packets we originate are the exception: for them this node is the
//!   source, which must fragment (RFC 8200 section 4.5) — an echo reply to
//!   a pod whose MTU is larger than the interface's would otherwise be
//!   lost, since no error is ever sent about our own packets. The first
//!   fragment stays in the packet's buffer (a Fragment header inserted
//!   after the fixed header), the others get new buffers; a packet that
//!   cannot get them all, or whose headers cannot be split (Hop-by-Hop or
//!   Routing headers, an existing Fragment header), is dropped and
//!   counted. Our packets carry none of those.
//!
//! The adjacency is read once per run of packets that share it (one
//! seqlock copy, not one per packet).

use super::Icmp6Error;
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, Tables};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use vswitch_fib::adj::{AdjKind, Adjacency};
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::{Buffers, MetaFlags};
use vswitch_wire::{ip_protocol, MacAddr};

next_arcs! {
    /// Where ip6-rewrite sends packets.
    pub enum Ip6RewriteNext {
        Output = "interface-output",
        IcmpError = "ip6-icmp-error",
    }
}

errors! {
    /// What ip6-rewrite counts and drops.
    pub enum Ip6RewriteError {
        HopLimitExpired = "hop limit expired (time exceeded sent to ip6-icmp-error)",
        TooBig = "longer than the link MTU (packet too big sent to ip6-icmp-error)",
        NotComplete = "dropped: adjacency no longer complete",
        NoHeadroom = "dropped: no headroom for the rewrite",
        Fragmented = "packets we originated fragmented (not a drop)",
        Fragments = "fragments sent (not a drop)",
        FragNoBuffer = "dropped: no buffer for a fragment",
        FragMtuTooSmall = "dropped: MTU too small to fragment",
        FragUnfragmentable = "dropped: our packet over the MTU with headers that cannot be fragmented",
    }
}

/// Trace record.
pub struct Ip6RewriteTrace {
    adj: u32,
    sw_if: u32,
    dst_mac: MacAddr,
    src_mac: MacAddr,
    hop_limit: u8,
    len: u16,
    action: &'static str,
}

impl fmt::Display for Ip6RewriteTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "adj {} sw_if {} {} -> {} hlim {} len {}: {}",
            self.adj, self.sw_if, self.src_mac, self.dst_mac, self.hop_limit, self.len, self.action
        )
    }
}

#[cold]
fn trace(adj: &Adjacency, idx: u32, hop_limit: u8, len: usize, action: &'static str) -> Ip6RewriteTrace {
    let r = adj.rewrite_bytes();
    let mac = |at: usize| r.get(at..at + 6).map(MacAddr::from_bytes).unwrap_or(MacAddr::ZERO);
    Ip6RewriteTrace { adj: idx, sw_if: adj.sw_if, dst_mac: mac(0), src_mac: mac(6), hop_limit, len: len as u16, action }
}

/// The ip6-rewrite node.
#[derive(Default)]
pub struct Ip6Rewrite;

/// Prepends `adj`'s rewrite to `p` and sets its output interface.
#[inline(always)]
fn apply_rewrite(bufs: &mut Buffers, p: PacketId, adj: &Adjacency) -> bool {
    let n = adj.rewrite_len as usize;
    match bufs.push_front(p, n) {
        Some(h) => {
            h[..n].copy_from_slice(&adj.rewrite[..n]);
            let m = bufs.meta_mut(p);
            m.l2 = m.current;
            m.tx_if = adj.sw_if;
            true
        }
        None => false,
    }
}

/// Fixed header plus Fragment header.
const FRAG_HEADERS: usize = 48;

/// Identification of the fragments we send: a counter, started from the
/// clock so that a restart does not repeat the last identifications.
fn next_fragment_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    if n == 0 {
        let seed = (vswitch_packet::clock::now() as u32).wrapping_mul(0x9e37_79b1) | 1;
        let _ = NEXT.compare_exchange(1, seed.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed);
        return seed;
    }
    n
}

/// Splits our packet `p` (IPv6 header first, no rewrite yet) into
/// fragments of at most `mtu` bytes (RFC 8200 section 4.5): `p` becomes
/// the first, the others are pushed on `frags` (empty on error, every
/// buffer it took freed; `p` is then unchanged).
fn fragment(bufs: &mut Buffers, p: PacketId, mtu: usize, frags: &mut Vec<PacketId>) -> Result<(), Ip6RewriteError> {
    use Ip6RewriteError as E;
    frags.clear();
    let d = bufs.data(p);
    // Only the fixed header is unfragmentable here: a packet whose headers
    // would have to be split is not one we make.
    let nh = d[6];
    if matches!(nh, ip_protocol::HOPOPT | ip_protocol::IPV6_ROUTE | ip_protocol::IPV6_FRAG) {
        return Err(E::FragUnfragmentable);
    }
    let chunk = mtu.saturating_sub(FRAG_HEADERS) & !7;
    if chunk == 0 {
        return Err(E::FragMtuTooSmall);
    }
    let orig = d.to_vec();
    let payload = orig.len() - 40;
    let id = next_fragment_id().to_be_bytes();
    let header = |out: &mut [u8], off: usize, len: usize, more: bool| {
        out[..40].copy_from_slice(&orig[..40]);
        out[4..6].copy_from_slice(&((8 + len) as u16).to_be_bytes());
        out[6] = ip_protocol::IPV6_FRAG;
        let w = (off as u16) | more as u16;
        out[40..48].copy_from_slice(&[nh, 0, (w >> 8) as u8, w as u8, id[0], id[1], id[2], id[3]]);
    };
    let from = *bufs.meta(p);
    let mut off = chunk;
    while off < payload {
        let len = chunk.min(payload - off);
        let Some(q) = bufs.alloc() else {
            bufs.free_bulk(frags);
            frags.clear();
            return Err(E::FragNoBuffer);
        };
        frags.push(q);
        bufs.set_len(q, FRAG_HEADERS + len);
        let f = bufs.data_mut(q);
        header(f, off, len, off + len < payload);
        f[FRAG_HEADERS..].copy_from_slice(&orig[40 + off..40 + off + len]);
        let m = bufs.meta_mut(q);
        (m.rx_if, m.tx_if, m.vrf, m.adj, m.flow_hash) = (from.rx_if, from.tx_if, from.vrf, from.adj, from.flow_hash);
        (m.flags, m.trace_id) = (from.flags, from.trace_id);
        m.l3 = m.current;
        m.l4 = m.current + FRAG_HEADERS as u16;
        off += len;
    }
    // The first fragment: the Fragment header goes between the fixed
    // header and the payload, which stays where it is.
    let Some(f) = bufs.push_front(p, 8) else {
        bufs.free_bulk(frags);
        frags.clear();
        return Err(E::NoHeadroom);
    };
    header(f, 0, chunk, true);
    bufs.set_len(p, FRAG_HEADERS + chunk);
    let m = bufs.meta_mut(p);
    m.l3 = m.current;
    m.l4 = m.current + FRAG_HEADERS as u16;
    Ok(())
}

impl Node<Tables> for Ip6Rewrite {
    const NAME: &'static str = "ip6-rewrite";
    type Next = Ip6RewriteNext;
    type Error = Ip6RewriteError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use Ip6RewriteError as E;
        let tables = cx.state;
        let fib = &*tables.fib;
        let mut cached = u32::MAX;
        let mut adj = Adjacency::DROP;
        let mut mtu = 0usize;
        for &p in vector {
            let (d, m) = cx.bufs.data_and_meta_mut(p);
            if m.adj != cached {
                cached = m.adj;
                adj = fib.adj(cached);
                mtu = if adj.mtu == 0 { usize::MAX } else { adj.mtu as usize };
            }
            let traced = m.flags & MetaFlags::TRACED != 0;
            if adj.kind != AdjKind::Rewrite {
                cx.discard(p, E::NotComplete);
                continue;
            }
            let local = m.flags & LOCALLY_ORIGINATED != 0;
            let hop_limit = d[7];
            let len = d.len();
            if hop_limit <= 1 && !local {
                Icmp6Error::HopLimitExceeded.store(m);
                if traced {
                    cx.trace(p, trace(&adj, cached, hop_limit, len, "hop limit expired"));
                }
                cx.count(E::HopLimitExpired, 1);
                cx.enqueue(Ip6RewriteNext::IcmpError, p);
                continue;
            }
            if len > mtu && local {
                let mut frags = Vec::new();
                if let Err(e) = fragment(cx.bufs, p, mtu, &mut frags) {
                    cx.discard(p, e);
                    continue;
                }
                if traced {
                    cx.trace(p, trace(&adj, cached, hop_limit, len, "ours, fragmented"));
                }
                cx.count(E::Fragmented, 1);
                cx.count(E::Fragments, 1 + frags.len() as u64);
                for q in std::iter::once(p).chain(frags) {
                    if apply_rewrite(cx.bufs, q, &adj) {
                        cx.enqueue(Ip6RewriteNext::Output, q);
                    } else {
                        cx.discard(q, E::NoHeadroom);
                    }
                }
                continue;
            }
            if len > mtu {
                Icmp6Error::PacketTooBig(mtu as u32).store(m);
                if traced {
                    cx.trace(p, trace(&adj, cached, hop_limit, len, "too big"));
                }
                cx.count(E::TooBig, 1);
                cx.enqueue(Ip6RewriteNext::IcmpError, p);
                continue;
            }
            if !local {
                d[7] = hop_limit - 1;
            }
            if traced {
                cx.trace(p, trace(&adj, cached, hop_limit, len, "rewritten"));
            }
            if apply_rewrite(cx.bufs, p, &adj) {
                cx.enqueue(Ip6RewriteNext::Output, p);
            } else {
                cx.discard(p, E::NoHeadroom);
            }
        }
    }
}
