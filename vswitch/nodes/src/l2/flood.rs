//! l2-flood: replicates a frame to every member of its bridge domain.
//!
//! Every member gets a copy except the interface the frame came from and,
//! when that interface is in a split-horizon group, the members of the
//! same group. Copies go out in member order; the last member gets the
//! original buffer, so a domain of two costs no copy. The BVI is a member
//! like any other: its copy goes up to routing through l2-output.
//!
//! When the buffer pool runs dry, the members that could not get a copy
//! are counted and skipped (and, for the rest of the vector, no more
//! copies are attempted); the original still goes to its member.

use super::bridge::DomainCache;
use super::BdMember;
use crate::{Cx, Tables};
use std::fmt;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::MetaFlags;

next_arcs! {
    /// Where l2-flood sends copies.
    pub enum L2FloodNext { Output = "l2-output" }
}

errors! {
    /// What l2-flood counts and drops.
    pub enum L2FloodError {
        NoMembers = "no member to flood to",
        NoBuffers = "copy not made: no buffers",
        NoBridgeDomain = "bridge domain does not exist",
    }
}

/// Trace record.
pub struct L2FloodTrace {
    bd: u16,
    rx: u32,
    shg: u8,
    copies: u16,
    failed: u16,
}

impl fmt::Display for L2FloodTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bd {} from sw_if {} shg {}: to {} members", self.bd, self.rx, self.shg, self.copies)?;
        if self.failed > 0 {
            write!(f, ", {} not reached (no buffers)", self.failed)?;
        }
        Ok(())
    }
}

/// The l2-flood node.
#[derive(Default)]
pub struct L2Flood;

#[inline(always)]
fn floods_to(m: &BdMember, rx: u32, shg: u8) -> bool {
    m.sw_if != rx && (shg == 0 || m.shg != shg)
}

impl Node<Tables> for L2Flood {
    const NAME: &'static str = "l2-flood";
    type Next = L2FloodNext;
    type Error = L2FloodError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use L2FloodError as E;
        // Flooding needs no clock.
        let mut domains = DomainCache::new(cx.state, 0);
        let mut pool_dry = false;
        for &p in vector {
            let m = cx.bufs.meta(p);
            let (bd, rx, shg) = (m.bd, m.rx_if, m.shg);
            let Some((domain, _)) = domains.get(bd) else {
                cx.discard(p, E::NoBridgeDomain);
                continue;
            };
            let members = &domain.members[..];
            let Some(last) = members.iter().rposition(|m| floods_to(m, rx, shg)) else {
                cx.discard(p, E::NoMembers);
                continue;
            };
            let (mut copies, mut failed) = (0u16, 0u16);
            for member in members[..last].iter().filter(|m| floods_to(m, rx, shg)) {
                let copy = if pool_dry { None } else { cx.bufs.clone_packet(p) };
                match copy {
                    Some(c) => {
                        let cm = cx.bufs.meta_mut(c);
                        cm.tx_if = member.sw_if;
                        cm.flags |= MetaFlags::REPLICA;
                        cx.enqueue(L2FloodNext::Output, c);
                        copies += 1;
                    }
                    None => {
                        pool_dry = true;
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                cx.count(E::NoBuffers, failed as u64);
            }
            let m = cx.bufs.meta_mut(p);
            m.tx_if = members[last].sw_if;
            if copies > 0 {
                m.flags |= MetaFlags::REPLICA;
            }
            if cx.is_traced(p) {
                cx.trace(p, L2FloodTrace { bd, rx, shg, copies: copies + 1, failed });
            }
            cx.enqueue(L2FloodNext::Output, p);
        }
    }
}
