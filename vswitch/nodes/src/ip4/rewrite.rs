//! ip4-rewrite: the last IPv4 step before output. Checks the TTL and the
//! MTU, decrements the TTL (RFC 1624 incremental checksum), writes the
//! adjacency's rewrite (destination and source MAC, VLAN tags, ethertype)
//! into the headroom in front of the IP header and hands the packet to
//! interface-output on the adjacency's interface.
//!
//! - TTL <= 1 on a forwarded packet: ip4-icmp-error sends time exceeded.
//!   Packets we originate (echo replies, ICMP errors) are sent with their
//!   TTL as it is.
//! - Longer than the adjacency's MTU with DF set: ip4-icmp-error sends
//!   "fragmentation needed" with the MTU. With DF clear the packet is
//!   fragmented (RFC 791): the first fragment stays in the packet's
//!   buffer, the others get new buffers (a packet that cannot get all of
//!   them is dropped and counted, and the buffers it got are freed); each
//!   fragment carries the header with, after the first, only the options
//!   marked "copied"; offsets and MF follow the original, so a fragment is
//!   fragmented again correctly.
//!
//! The adjacency is read once per run of packets that share it (one
//! seqlock copy, not one per packet).

use super::icmp_error::request_icmp_error;
use crate::ip::LOCALLY_ORIGINATED;
use crate::{Cx, Tables};
use std::fmt;
use vswitch_fib::adj::{AdjKind, Adjacency, REWRITE_MAX};
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::{Meta, MetaFlags};
use vswitch_wire::checksum;
use vswitch_wire::icmpv4::{icmpv4_type, icmpv4_unreach};
use vswitch_wire::MacAddr;

next_arcs! {
    /// Where ip4-rewrite sends packets.
    pub enum Ip4RewriteNext {
        Output = "interface-output",
        IcmpError = "ip4-icmp-error",
    }
}

errors! {
    /// What ip4-rewrite counts and drops.
    pub enum Ip4RewriteError {
        TtlExpired = "TTL expired (time exceeded sent to ip4-icmp-error)",
        TooBig = "too big with DF set (fragmentation needed sent to ip4-icmp-error)",
        Fragmented = "packets fragmented (not a drop)",
        Fragments = "fragments sent (not a drop)",
        FragNoBuffer = "dropped: no buffer for a fragment",
        FragMtuTooSmall = "dropped: MTU too small to fragment",
        NotComplete = "dropped: adjacency no longer complete",
        NoHeadroom = "dropped: no headroom for the rewrite",
    }
}

/// Trace record.
pub struct Ip4RewriteTrace {
    adj: u32,
    sw_if: u32,
    dst_mac: MacAddr,
    src_mac: MacAddr,
    ttl: u8,
    len: u16,
    action: &'static str,
}

impl fmt::Display for Ip4RewriteTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "adj {} sw_if {} {} -> {} ttl {} len {}: {}",
            self.adj, self.sw_if, self.src_mac, self.dst_mac, self.ttl, self.len, self.action
        )
    }
}

/// The ip4-rewrite node.
#[derive(Default)]
pub struct Ip4Rewrite {
    /// A copy of the packet being fragmented (grown once, to a buffer).
    scratch: Vec<u8>,
    /// New fragments of the packet being fragmented.
    frags: Vec<PacketId>,
}

impl Ip4Rewrite {
    /// A new node.
    pub fn new() -> Self {
        Ip4Rewrite::default()
    }
}

/// Prepends `adj`'s rewrite to `p` and sets its output interface.
#[inline(always)]
fn apply_rewrite(bufs: &mut vswitch_packet::Buffers, p: PacketId, adj: &Adjacency) -> bool {
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

/// The options of `options` that are copied into every fragment, padded
/// with end-of-options to a multiple of 4; returns the new options length.
fn copied_options(options: &[u8], out: &mut [u8]) -> usize {
    let mut i = 0;
    let mut n = 0;
    while i < options.len() {
        let t = options[i];
        match t {
            0 => break,
            1 => i += 1,
            _ => {
                let Some(&len) = options.get(i + 1) else { break };
                let len = len as usize;
                if len < 2 || i + len > options.len() {
                    break;
                }
                if t & 0x80 != 0 {
                    out[n..n + len].copy_from_slice(&options[i..i + len]);
                    n += len;
                }
                i += len;
            }
        }
    }
    let padded = n.next_multiple_of(4);
    out[n..padded].fill(0);
    padded
}

fn copy_meta(from: &Meta, to: &mut Meta) {
    to.rx_if = from.rx_if;
    to.tx_if = from.tx_if;
    to.vrf = from.vrf;
    to.adj = from.adj;
    to.flow_hash = from.flow_hash;
    to.flags = from.flags;
    to.trace_id = from.trace_id;
}

enum Frag {
    Done,
    NoBuffer,
    MtuTooSmall,
}

impl Ip4Rewrite {
    /// Splits `p` (TTL already decremented, no rewrite yet) into fragments
    /// of at most `mtu` bytes: `p` becomes the first, the others are
    /// pushed on `self.frags`.
    fn fragment(&mut self, bufs: &mut vswitch_packet::Buffers, p: PacketId, mtu: usize) -> Frag {
        self.frags.clear();
        let d = bufs.data(p);
        let hl = ((d[0] & 0x0f) as usize) << 2;
        let tl = d.len();
        let ff = u16::from_be_bytes([d[6], d[7]]);
        let (orig_off, orig_mf) = (((ff & 0x1fff) as usize) << 3, ff & 0x2000 != 0);
        let first_chunk = mtu.saturating_sub(hl) & !7;
        if self.scratch.len() < bufs.buffer_size() + 64 {
            self.scratch.resize(bufs.buffer_size() + 64, 0);
        }
        // scratch: [later header (60 max)][original packet]
        let (hdr2, rest) = self.scratch.split_at_mut(64);
        rest[..tl].copy_from_slice(d);
        hdr2[..20].copy_from_slice(&rest[..20]);
        let hl2 = 20 + copied_options(&rest[20..hl], &mut hdr2[20..60]);
        hdr2[0] = 0x40 | (hl2 / 4) as u8;
        let later_chunk = mtu.saturating_sub(hl2) & !7;
        if first_chunk == 0 || later_chunk == 0 {
            return Frag::MtuTooSmall;
        }
        let payload = tl - hl;
        let from = *bufs.meta(p);
        let mut off = first_chunk;
        while off < payload {
            let chunk = later_chunk.min(payload - off);
            let last = off + chunk == payload;
            let Some(q) = bufs.alloc() else {
                bufs.free_bulk(&self.frags);
                self.frags.clear();
                return Frag::NoBuffer;
            };
            self.frags.push(q);
            copy_meta(&from, bufs.meta_mut(q));
            let total = hl2 + chunk;
            bufs.set_len(q, total);
            let f = bufs.data_mut(q);
            f[..hl2].copy_from_slice(&hdr2[..hl2]);
            f[hl2..total].copy_from_slice(&rest[hl + off..hl + off + chunk]);
            f[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            let mf = if last { orig_mf } else { true };
            let w = ((mf as u16) << 13) | (((orig_off + off) >> 3) as u16);
            f[6..8].copy_from_slice(&w.to_be_bytes());
            f[10..12].copy_from_slice(&[0, 0]);
            let c = checksum::checksum(&f[..hl2]);
            f[10..12].copy_from_slice(&c.to_be_bytes());
            let m = bufs.meta_mut(q);
            m.l3 = m.current;
            m.l4 = m.current + hl2 as u16;
            off += chunk;
        }
        // The first fragment: the original, cut.
        let total = hl + first_chunk;
        bufs.set_len(p, total);
        let f = bufs.data_mut(p);
        f[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let w = (1u16 << 13) | ((orig_off >> 3) as u16);
        f[6..8].copy_from_slice(&w.to_be_bytes());
        f[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&f[..hl]);
        f[10..12].copy_from_slice(&c.to_be_bytes());
        Frag::Done
    }
}

/// The adjacency in use, with its rewrite right-aligned in 32 bytes so the
/// fast path writes it with one fixed-size copy ending at the IP header.
struct Current {
    idx: u32,
    adj: Adjacency,
    mtu: usize,
    right: [u8; REWRITE_MAX],
}

impl Current {
    fn load(fib: &crate::ip::fib::IpFib, idx: u32) -> Current {
        let adj = fib.adj(idx);
        let n = adj.rewrite_len as usize;
        let mut right = [0u8; REWRITE_MAX];
        right[REWRITE_MAX - n..].copy_from_slice(&adj.rewrite[..n]);
        let mtu = if adj.mtu == 0 { usize::MAX } else { adj.mtu as usize };
        Current { idx, adj, mtu, right }
    }
}

impl Ip4Rewrite {
    /// Everything but the common case: traced packets, TTL expiry, packets
    /// over the MTU, adjacencies no longer complete, little headroom.
    #[cold]
    #[inline(never)]
    fn slow(&mut self, cx: &mut Cx<'_, Self>, p: PacketId, cur: &Current) {
        use Ip4RewriteError as E;
        let (adj, cached, mtu) = (&cur.adj, cur.idx, cur.mtu);
        let (d, m) = cx.bufs.data_and_meta_mut(p);
        let traced = m.flags & MetaFlags::TRACED != 0;
        if adj.kind != AdjKind::Rewrite || d.len() < 20 {
            cx.discard(p, E::NotComplete);
            return;
        }
        let local = m.flags & LOCALLY_ORIGINATED != 0;
        let ttl = d[8];
        let len = d.len();
        if ttl <= 1 && !local {
            request_icmp_error(m, icmpv4_type::TIME_EXCEEDED, 0, 0);
            if traced {
                cx.trace(p, trace(adj, cached, ttl, len, "TTL expired"));
            }
            cx.count(E::TtlExpired, 1);
            cx.enqueue(Ip4RewriteNext::IcmpError, p);
            return;
        }
        if len > mtu {
            if d[6] & 0x40 != 0 {
                request_icmp_error(m, icmpv4_type::DEST_UNREACHABLE, icmpv4_unreach::FRAG_NEEDED, adj.mtu);
                if traced {
                    cx.trace(p, trace(adj, cached, ttl, len, "too big, DF set"));
                }
                cx.count(E::TooBig, 1);
                cx.enqueue(Ip4RewriteNext::IcmpError, p);
                return;
            }
            if !local {
                decrement_ttl(d);
            }
            match self.fragment(cx.bufs, p, mtu) {
                Frag::Done => {}
                Frag::NoBuffer => {
                    cx.discard(p, E::FragNoBuffer);
                    return;
                }
                Frag::MtuTooSmall => {
                    cx.discard(p, E::FragMtuTooSmall);
                    return;
                }
            }
            if traced {
                cx.trace(p, trace(adj, cached, ttl, len, "fragmented"));
            }
            cx.count(E::Fragmented, 1);
            cx.count(E::Fragments, 1 + self.frags.len() as u64);
            let frags = std::mem::take(&mut self.frags);
            for &q in std::iter::once(&p).chain(frags.iter()) {
                if apply_rewrite(cx.bufs, q, adj) {
                    cx.enqueue(Ip4RewriteNext::Output, q);
                } else {
                    cx.discard(q, E::NoHeadroom);
                }
            }
            self.frags = frags;
            return;
        }
        if !local {
            decrement_ttl(d);
        }
        if traced {
            cx.trace(p, trace(adj, cached, ttl, len, "rewritten"));
        }
        if apply_rewrite(cx.bufs, p, adj) {
            cx.enqueue(Ip4RewriteNext::Output, p);
        } else {
            cx.discard(p, E::NoHeadroom);
        }
    }
}

impl Node<Tables> for Ip4Rewrite {
    const NAME: &'static str = "ip4-rewrite";
    type Next = Ip4RewriteNext;
    type Error = Ip4RewriteError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        let tables = cx.state;
        let fib = &*tables.fib;
        let mut cur = Current { idx: u32::MAX, adj: Adjacency::DROP, mtu: 0, right: [0; REWRITE_MAX] };
        for &p in vector {
            let (d, m) = cx.bufs.data_and_meta_mut(p);
            if m.adj != cur.idx {
                cur = Current::load(fib, m.adj);
            }
            let len = d.len();
            let start = m.current as usize;
            let plain = m.flags & (MetaFlags::TRACED | LOCALLY_ORIGINATED) == 0;
            let Some(h) = d.first_chunk_mut::<20>() else {
                self.slow(cx, p, &cur);
                continue;
            };
            // The common case: complete adjacency, TTL > 1, fits the MTU,
            // room for a 32-byte copy in front, not traced, not ours.
            if !plain || cur.adj.kind != AdjKind::Rewrite || h[8] <= 1 || len > cur.mtu || start < REWRITE_MAX {
                self.slow(cx, p, &cur);
                continue;
            }
            decrement_ttl(h);
            let n = cur.adj.rewrite_len as u16;
            m.current -= n;
            m.len += n;
            m.l2 = m.current;
            m.tx_if = cur.adj.sw_if;
            let buf = cx.bufs.buffer_mut(p);
            if let Some(w) = buf.get_mut(start - REWRITE_MAX..start) {
                w.copy_from_slice(&cur.right);
            }
            cx.enqueue(Ip4RewriteNext::Output, p);
        }
    }
}

/// TTL minus one, checksum patched (RFC 1624 eqn. 3).
#[inline(always)]
fn decrement_ttl(d: &mut [u8]) {
    d[8] -= 1;
    let old = u16::from_be_bytes([d[10], d[11]]);
    let s = u32::from(!old) + 0xfeff;
    let s = (s & 0xffff) + (s >> 16);
    d[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
}

#[cold]
fn trace(adj: &Adjacency, idx: u32, ttl: u8, len: usize, action: &'static str) -> Ip4RewriteTrace {
    let r = adj.rewrite_bytes();
    let mac = |at: usize| r.get(at..at + 6).map(MacAddr::from_bytes).unwrap_or(MacAddr::ZERO);
    Ip4RewriteTrace { adj: idx, sw_if: adj.sw_if, dst_mac: mac(0), src_mac: mac(6), ttl, len: len as u16, action }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_decrement_keeps_the_checksum_valid() {
        for ttl in [2u8, 64, 255] {
            for seed in 0..50u8 {
                let mut h =
                    [0x45, 0, 0, 20, seed, seed.wrapping_mul(7), 0, 0, ttl, 6, 0, 0, 10, seed, 0, 1, 10, 0, seed, 2];
                let c = checksum::checksum(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
                decrement_ttl(&mut h);
                assert_eq!(h[8], ttl - 1);
                assert!(checksum::ipv4_header_checksum_ok(&h), "ttl {ttl} seed {seed}");
            }
        }
    }

    #[test]
    fn only_copied_options_follow_into_later_fragments() {
        // NOP, record route (not copied, len 7), loose source route (copied, len 7), EOL.
        let opts = [1, 7, 7, 4, 0, 0, 0, 0, 131, 7, 4, 1, 2, 3, 4, 0];
        let mut out = [0xaau8; 40];
        let n = copied_options(&opts, &mut out);
        assert_eq!(n, 8);
        assert_eq!(&out[..8], &[131, 7, 4, 1, 2, 3, 4, 0]);
        assert_eq!(copied_options(&[7, 1, 0, 0], &mut out), 0, "a malformed length stops the walk");
    }
}
