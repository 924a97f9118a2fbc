//! <backend>-input: the first node for packets from a port.
//!
//! A port backend fills buffers and writes its port index into
//! `meta.rx_if`; this node maps the port to its interface, counts, starts
//! traces (`trace add pg-input 10`), takes received packets into a running
//! packet capture (`pcap start --rx`) and hands the vector to
//! ethernet-input.
//! One node per backend kind, so `show runtime` shows them apart.

use crate::counters::IfCounters;
use crate::{Cx, Tables, NONE};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use vswitch_graph::{errors, next_arcs, CaptureDir, Node, PacketId};

/// A kind of port backend, naming its input node.
pub trait PortKind: Send + 'static {
    /// The input node's name (`pg-input`, `tap-input`, ...).
    const NAME: &'static str;
}

/// The packet generator used by benchmarks and tests.
pub struct Pg;
impl PortKind for Pg {
    const NAME: &'static str = "pg-input";
}

/// A kernel tap device (`vswitch_port::tap`).
pub struct Tap;
impl PortKind for Tap {
    const NAME: &'static str = "tap-input";
}

/// A packet socket on a kernel device (`vswitch_port::af_packet`).
pub struct AfPacket;
impl PortKind for AfPacket {
    const NAME: &'static str = "af-packet-input";
}

/// An AF_XDP socket on a kernel device (`vswitch_port::af_xdp`).
pub struct AfXdp;
impl PortKind for AfXdp {
    const NAME: &'static str = "af-xdp-input";
}

/// A memif interface (`vswitch_port::memif`).
pub struct Memif;
impl PortKind for Memif {
    const NAME: &'static str = "memif-input";
}

next_arcs! {
    /// Where port input sends packets.
    pub enum PortInputNext { Ethernet = "ethernet-input" }
}

errors! {
    /// What port input counts.
    pub enum PortInputError { NoInterface = "port has no interface" }
}

/// Trace record: which port, how long.
pub struct PortInputTrace {
    port: u32,
    sw_if: u32,
    len: u16,
}

impl fmt::Display for PortInputTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {} sw_if {} len {}", self.port, self.sw_if, self.len)
    }
}

/// The input node of ports of kind `K`.
pub struct PortInput<K: PortKind> {
    counters: Arc<IfCounters>,
    _kind: PhantomData<fn() -> K>,
}

impl<K: PortKind> PortInput<K> {
    /// An input node counting into `counters`.
    pub fn new(counters: Arc<IfCounters>) -> Self {
        PortInput { counters, _kind: PhantomData }
    }

    /// The loop while a capture takes received packets: kept out of line
    /// so the usual loop carries no capture test at all.
    #[cold]
    #[inline(never)]
    fn process_capturing(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        self.run::<true>(cx, vector)
    }

    #[inline(always)]
    fn run<const CAPTURE: bool>(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        // A vector comes from one receive queue, so the port is resolved
        // once and re-resolved only if a packet says otherwise.
        let (mut port, mut sw_if) = (NONE, NONE);
        let (mut packets, mut bytes) = (0u64, 0u64);
        let tracing = cx.trace_budget() > 0;
        for &p in vector {
            let m = cx.bufs.meta_mut(p);
            if m.rx_if != port {
                if packets > 0 {
                    self.counters.rx(sw_if, packets, bytes);
                    (packets, bytes) = (0, 0);
                }
                port = m.rx_if;
                sw_if = cx.state.port_if.get(port as usize).copied().unwrap_or(NONE);
            }
            m.rx_if = sw_if;
            let len = m.len;
            if sw_if == NONE {
                cx.discard(p, PortInputError::NoInterface);
                continue;
            }
            packets += 1;
            bytes += len as u64;
            if tracing && cx.start_trace(p) {
                cx.trace(p, PortInputTrace { port, sw_if, len });
            }
            if CAPTURE {
                cx.capture(p, CaptureDir::Rx, sw_if);
            }
            cx.enqueue(PortInputNext::Ethernet, p);
        }
        if packets > 0 {
            self.counters.rx(sw_if, packets, bytes);
        }
    }
}

impl<K: PortKind> Node<Tables> for PortInput<K> {
    const NAME: &'static str = K::NAME;
    type Next = PortInputNext;
    type Error = PortInputError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        // One test per vector: is a capture taking received packets?
        if cx.capturing(CaptureDir::Rx) {
            self.process_capturing(cx, vector)
        } else {
            self.run::<false>(cx, vector)
        }
    }
}
