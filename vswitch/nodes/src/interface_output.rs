//! interface-output: hands each packet to the port of its `tx_if`.
//!
//! Headers are complete by now (ip4-rewrite wrote the MACs and any VLAN
//! tags of a routed sub-interface; l2-output pushed an L2 sub-interface's
//! tags), so this only counts and queues the packet on the port (taking it
//! into a running packet capture, `pcap start --tx`, on the way). A packet
//! routed out of a BVI goes into the BVI's bridge domain instead, as if the
//! BVI had received it.

use crate::counters::IfCounters;
use crate::{Cx, IfKind, Interface, Tables};
use std::fmt;
use std::sync::Arc;
use vswitch_graph::{errors, next_arcs, CaptureDir, Node, PacketId};
use vswitch_packet::MetaFlags;

next_arcs! {
    /// Where interface-output sends what is not transmitted.
    pub enum InterfaceOutputNext { Bridge = "l2-input" }
}

errors! {
    /// What interface-output counts and drops.
    pub enum InterfaceOutputError {
        NoInterface = "no such interface",
        Down = "interface is down",
    }
}

/// Trace record.
pub struct InterfaceOutputTrace {
    sw_if: u32,
    port: u32,
    len: u16,
}

impl fmt::Display for InterfaceOutputTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sw_if {} port {} len {}", self.sw_if, self.port, self.len)
    }
}

/// The interface-output node.
pub struct InterfaceOutput {
    counters: Arc<IfCounters>,
}

impl InterfaceOutput {
    /// Counts transmissions into `counters`.
    pub fn new(counters: Arc<IfCounters>) -> Self {
        InterfaceOutput { counters }
    }

    /// The loop while a capture takes transmitted packets: kept out of
    /// line so the usual loop carries no capture test at all.
    #[cold]
    #[inline(never)]
    fn process_capturing(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        self.run::<true>(cx, vector)
    }

    #[inline(always)]
    fn run<const CAPTURE: bool>(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        let tables = cx.state;
        // Runs of packets to one interface share one lookup and one
        // counter update.
        let mut last: Option<&Interface> = None;
        let (mut packets, mut bytes) = (0u64, 0u64);
        for &p in vector {
            let m = cx.bufs.meta_mut(p);
            let (sw_if, len) = (m.tx_if, m.len);
            let intf = match last {
                Some(i) if i.sw_if == sw_if => i,
                _ => {
                    if let Some(prev) = last {
                        self.counters.tx(prev.sw_if, packets, bytes);
                        (packets, bytes) = (0, 0);
                    }
                    match tables.interface(sw_if) {
                        Some(i) => {
                            last = Some(i);
                            i
                        }
                        None => {
                            last = None;
                            cx.discard(p, InterfaceOutputError::NoInterface);
                            continue;
                        }
                    }
                }
            };
            if !intf.up {
                self.counters.dropped(sw_if);
                cx.discard(p, InterfaceOutputError::Down);
                continue;
            }
            packets += 1;
            bytes += len as u64;
            if let IfKind::Bvi { .. } = intf.kind {
                m.rx_if = sw_if;
                m.l2 = m.current;
                cx.trace(p, InterfaceOutputTrace { sw_if, port: u32::MAX, len });
                cx.enqueue(InterfaceOutputNext::Bridge, p);
                continue;
            }
            if m.flags & MetaFlags::TRACED != 0 {
                cx.trace(p, InterfaceOutputTrace { sw_if, port: intf.port, len });
            }
            if CAPTURE {
                cx.capture(p, CaptureDir::Tx, sw_if);
            }
            cx.transmit(intf.port, p);
        }
        if let Some(prev) = last {
            self.counters.tx(prev.sw_if, packets, bytes);
        }
    }
}

impl Node<Tables> for InterfaceOutput {
    const NAME: &'static str = "interface-output";
    type Next = InterfaceOutputNext;
    type Error = InterfaceOutputError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        // One test per vector: is a capture taking transmitted packets?
        if cx.capturing(CaptureDir::Tx) {
            self.process_capturing(cx, vector)
        } else {
            self.run::<false>(cx, vector)
        }
    }
}
