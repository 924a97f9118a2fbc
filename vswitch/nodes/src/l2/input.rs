//! l2-input: the entry to L2 forwarding.
//!
//! Applies the receiving interface's VLAN tag rewrite, then either
//! cross-connects the frame to the peer interface or hands it to its bridge
//! domain (l2-learn when the domain learns, l2-fwd otherwise). A frame
//! routed out of a BVI enters the BVI's bridge domain here too.

use super::vtr;
use crate::{Cx, IfKind, IfMode, Tables};
use std::fmt;
use vswitch_graph::{errors, next_arcs, Node, PacketId};

next_arcs! {
    /// Where l2-input sends frames.
    pub enum L2InputNext {
        Learn = "l2-learn",
        Forward = "l2-fwd",
        Output = "l2-output",
        Transmit = "interface-output",
    }
}

errors! {
    /// What l2-input counts and drops.
    pub enum L2InputError {
        NotL2 = "interface is not in L2 mode",
        TagRewrite = "VLAN tag rewrite failed: missing tag or no headroom",
        NoBridgeDomain = "bridge domain does not exist",
    }
}

/// Trace record.
pub enum L2InputTrace {
    /// Cross-connected to an interface.
    XConnect { rx: u32, tx: u32 },
    /// Into a bridge domain.
    Bridge { rx: u32, bd: u16, shg: u8 },
}

impl fmt::Display for L2InputTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            L2InputTrace::XConnect { rx, tx } => write!(f, "sw_if {rx} xconnect to sw_if {tx}"),
            L2InputTrace::Bridge { rx, bd, shg } => write!(f, "sw_if {rx} bridge-domain {bd} shg {shg}"),
        }
    }
}

/// The l2-input node.
#[derive(Default)]
pub struct L2Input;

impl Node<Tables> for L2Input {
    const NAME: &'static str = "l2-input";
    type Next = L2InputNext;
    type Error = L2InputError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use L2InputError as E;
        let tables = cx.state;
        for &p in vector {
            let rx = cx.bufs.meta(p).rx_if;
            let Some(intf) = tables.interface(rx) else {
                cx.discard(p, E::NotL2);
                continue;
            };
            let (bd, shg) = match (&intf.kind, intf.mode) {
                (IfKind::Bvi { bd }, _) => (*bd, 0),
                (_, IfMode::Bridge { bd, shg }) => (bd, shg),
                (_, IfMode::XConnect { peer }) => {
                    if !intf.rewrite.is_noop() && vtr::apply_input(cx.bufs, p, &intf.rewrite).is_err() {
                        cx.discard(p, E::TagRewrite);
                        continue;
                    }
                    cx.bufs.meta_mut(p).tx_if = peer;
                    cx.trace(p, L2InputTrace::XConnect { rx, tx: peer });
                    // Only a peer with its own tag rewrite needs l2-output.
                    match tables.interface(peer) {
                        Some(out) if !out.rewrite.is_noop() => cx.enqueue(L2InputNext::Output, p),
                        _ => cx.enqueue(L2InputNext::Transmit, p),
                    }
                    continue;
                }
                _ => {
                    cx.discard(p, E::NotL2);
                    continue;
                }
            };
            let Some(domain) = tables.bridge_domain(bd) else {
                cx.discard(p, E::NoBridgeDomain);
                continue;
            };
            if !intf.rewrite.is_noop() && vtr::apply_input(cx.bufs, p, &intf.rewrite).is_err() {
                cx.discard(p, E::TagRewrite);
                continue;
            }
            let m = cx.bufs.meta_mut(p);
            m.bd = bd;
            m.shg = shg;
            cx.trace(p, L2InputTrace::Bridge { rx, bd, shg });
            if domain.config.learn {
                cx.enqueue(L2InputNext::Learn, p);
            } else {
                cx.enqueue(L2InputNext::Forward, p);
            }
        }
    }
}
