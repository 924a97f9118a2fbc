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
//!
//! The adjacency is read once per run of packets that share it (one
//! seqlock copy, not one per packet).

use super::Icmp6Error;
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, Tables};
use std::fmt;
use vswitch_fib::adj::{AdjKind, Adjacency};
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::{Buffers, MetaFlags};
use vswitch_wire::MacAddr;

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
