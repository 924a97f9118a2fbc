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
use vswitch_packet::MetaFlags;

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
        let tables = cx.state;
        // What the previous frame's output interface allows: frames to a
        // plain output (not a BVI, no tag rewrite) that are not traced and
        // not stopped by split horizon go straight out; the others take the
        // whole path. A vector mostly leaves by one interface.
        let mut last_tx = u32::MAX;
        let mut plain: Option<u8> = None;
        for &p in vector {
            let m = cx.bufs.meta(p);
            let (tx, shg, flags) = (m.tx_if, m.shg, m.flags);
            if tx != last_tx {
                last_tx = tx;
                plain = plain_output(tables, tx);
            }
            if let Some(out_shg) = plain {
                if flags & MetaFlags::TRACED == 0 && (shg == 0 || shg != out_shg) {
                    cx.enqueue(L2OutputNext::Transmit, p);
                    continue;
                }
            }
            output_one(cx, p);
        }
    }
}

/// For an interface that is a plain output (not a BVI, no VLAN tag
/// rewrite): its split-horizon group (0 when it is not a bridge member).
#[inline]
fn plain_output(tables: &Tables, tx: u32) -> Option<u8> {
    let intf = tables.interface(tx)?;
    if matches!(intf.kind, IfKind::Bvi { .. }) || !intf.rewrite.is_noop() {
        return None;
    }
    Some(match intf.mode {
        IfMode::Bridge { shg, .. } => shg,
        _ => 0,
    })
}

/// Sends one frame on, whatever its output interface.
#[inline(never)]
fn output_one(cx: &mut Cx<'_, L2Output>, p: PacketId) {
    use L2OutputError as E;
    let tables = cx.state;
    let m = cx.bufs.meta(p);
    let (tx, shg) = (m.tx_if, m.shg);
    let Some(intf) = tables.interface(tx) else {
        cx.discard(p, E::NoInterface);
        return;
    };
    if let IfKind::Bvi { .. } = intf.kind {
        let m = cx.bufs.meta_mut(p);
        m.rx_if = tx;
        cx.trace(p, L2OutputTrace { tx, bvi: true });
        cx.enqueue(L2OutputNext::Bvi, p);
        return;
    }
    if let IfMode::Bridge { shg: out_shg, .. } = intf.mode {
        if shg != 0 && shg == out_shg {
            cx.discard(p, E::SplitHorizon);
            return;
        }
    }
    if !intf.rewrite.is_noop() && vtr::apply_output(cx.bufs, p, &intf.rewrite, &intf.tags()).is_err() {
        cx.discard(p, E::TagRewrite);
        return;
    }
    cx.trace(p, L2OutputTrace { tx, bvi: false });
    cx.enqueue(L2OutputNext::Transmit, p);
}
