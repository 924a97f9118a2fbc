//! l2-output: the last L2 step before a frame leaves.
//!
//! Enforces split horizon (a frame never leaves by an interface in the
//! split-horizon group it arrived from), applies the output interface's
//! VLAN tag rewrite, and sends the frame to interface-output — or, when the
//! output is the domain's BVI, up into routing through ethernet-input.

use super::vtr;
use crate::{Cx, IfKind, IfMode, Tables};
use std::fmt;
use vswitch_graph::{errors, next_arcs, Node, PacketId};

next_arcs! {
    /// Where l2-output sends frames.
    pub enum L2OutputNext {
        Transmit = "interface-output",
        Bvi = "ethernet-input",
    }
}

errors! {
    /// What l2-output counts and drops.
    pub enum L2OutputError {
        NoInterface = "no such output interface",
        SplitHorizon = "split horizon: same group as the input",
        TagRewrite = "VLAN tag rewrite failed: missing tag or no headroom",
    }
}

/// Trace record.
pub struct L2OutputTrace {
    tx: u32,
    bvi: bool,
}

impl fmt::Display for L2OutputTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sw_if {}{}", self.tx, if self.bvi { " (bvi: to routing)" } else { "" })
    }
}

/// The l2-output node.
#[derive(Default)]
pub struct L2Output;

impl Node<Tables> for L2Output {
    const NAME: &'static str = "l2-output";
    type Next = L2OutputNext;
    type Error = L2OutputError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use L2OutputError as E;
        let tables = cx.state;
        for &p in vector {
            let m = cx.bufs.meta(p);
            let (tx, shg) = (m.tx_if, m.shg);
            let Some(intf) = tables.interface(tx) else {
                cx.discard(p, E::NoInterface);
                continue;
            };
            if let IfKind::Bvi { .. } = intf.kind {
                let m = cx.bufs.meta_mut(p);
                m.rx_if = tx;
                cx.trace(p, L2OutputTrace { tx, bvi: true });
                cx.enqueue(L2OutputNext::Bvi, p);
                continue;
            }
            if let IfMode::Bridge { shg: out_shg, .. } = intf.mode {
                if shg != 0 && shg == out_shg {
                    cx.discard(p, E::SplitHorizon);
                    continue;
                }
            }
            if !intf.rewrite.is_noop() && vtr::apply_output(cx.bufs, p, &intf.rewrite, &intf.tags()).is_err() {
                cx.discard(p, E::TagRewrite);
                continue;
            }
            cx.trace(p, L2OutputTrace { tx, bvi: false });
            cx.enqueue(L2OutputNext::Transmit, p);
        }
    }
}
