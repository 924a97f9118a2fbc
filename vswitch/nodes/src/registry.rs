//! The standard graph: every node of the data path, wired by name.

use crate::counters::IfCounters;
use crate::ethernet_input::EthernetInput;
use crate::interface_output::InterfaceOutput;
use crate::l2::arp_term::L2ArpTerm;
use crate::l2::flood::L2Flood;
use crate::l2::fwd::L2Fwd;
use crate::l2::input::L2Input;
use crate::l2::learn::L2Learn;
use crate::l2::output::L2Output;
use crate::port_input::{AfPacket, AfXdp, Memif, Pg, PortInput, Tap};
use crate::Tables;
use std::sync::Arc;
use vswitch_graph::{Graph, GraphBuilder};
use vswitch_packet::Buffers;

/// What the standard nodes share on one worker.
#[derive(Clone, Default)]
pub struct WorkerShared {
    /// Interface counters of this worker.
    pub counters: Arc<IfCounters>,
    /// Packets this worker punts to the control plane (drain it with the
    /// worker's buffers).
    pub punt: Arc<crate::ip::punt::PuntQueue>,
    /// IPv4 packets held while ARP resolves their next hop (shared by
    /// ip4-arp and arp-input; see `ip4::arp::service_ip4_hold`).
    pub ip4_hold: crate::ip4::arp::Ip4Hold,
    /// SRv6 counters of this worker (per local SID and policy).
    pub sr: Arc<crate::srv6::SrCounters>,
}

/// A builder holding every standard node; add ports and build.
pub fn standard_graph(shared: &WorkerShared) -> GraphBuilder<Tables> {
    let c = &shared.counters;
    GraphBuilder::new()
        .node(PortInput::<Pg>::new(c.clone()))
        .node(PortInput::<Tap>::new(c.clone()))
        .node(PortInput::<AfPacket>::new(c.clone()))
        .node(PortInput::<AfXdp>::new(c.clone()))
        .node(PortInput::<Memif>::new(c.clone()))
        .node(EthernetInput::new(c.clone()))
        .node(L2Input)
        .node(L2Learn::new())
        .node(L2Fwd::new())
        .node(L2Flood)
        .node(L2ArpTerm)
        .node(L2Output)
        .node(crate::ip4::input::Ip4Input::new())
        .node(crate::ip4::lookup::Ip4Lookup::new())
        .node(crate::ip4::rewrite::Ip4Rewrite::new())
        .node(crate::ip4::local::Ip4Local)
        .node(crate::ip4::icmp_error::Ip4IcmpError::default())
        .node(crate::ip4::arp::Ip4Arp::new(shared.ip4_hold.clone()))
        .node(crate::ip4::arp_input::ArpInput::new(shared.ip4_hold.clone()))
        .node(crate::ip::punt::Punt::new(shared.punt.clone()))
        .feature_arc(crate::ip4::UNICAST_ARC, &[], "ip4-lookup")
        .node(crate::ip6::Ip6Input::new())
        .node(crate::ip6::Ip6Lookup::new())
        .node(crate::ip6::Ip6Rewrite)
        .node(crate::ip6::Ip6Local)
        .node(crate::ip6::Ip6Nd)
        .node(crate::ip6::Ip6Discover::default())
        .node(crate::ip6::Ip6IcmpError::default())
        .feature_arc(crate::ip6::UNICAST_ARC, &[], "ip6-lookup")
        .node(crate::srv6::SrLocalSid::new(shared.sr.clone()))
        .node(crate::srv6::SrLocalSidD::new(shared.sr.clone()))
        .node(crate::srv6::SrEncaps::new(shared.sr.clone()))
        .node(crate::srv6::SrEncapsL2::new(shared.sr.clone()))
        .node(crate::srv6::SrProxyReturn::new(shared.sr.clone()))
        .node(InterfaceOutput::new(c.clone()))
}

/// What [`housekeeping`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Housekeeping {
    /// Held packets released after their next hop resolved.
    pub released: usize,
    /// Held packets freed because resolution took too long.
    pub expired: usize,
}

/// A worker's periodic work outside packet dispatch (every millisecond or
/// so, and when idle): releases packets held for ARP/ND whose neighbor
/// resolved, expires those held too long. Punted packets are drained by
/// the worker separately (see [`WorkerShared::punt`]).
pub fn housekeeping(
    graph: &mut Graph<Tables>,
    bufs: &mut Buffers,
    tables: &Tables,
    shared: &WorkerShared,
    now: u64,
) -> Housekeeping {
    let (released, expired) = crate::ip4::arp::service_ip4_hold(&shared.ip4_hold, graph, bufs, tables, now);
    crate::ip6::discover::service_ip6_hold(graph, bufs, tables);
    Housekeeping { released, expired }
}

/// Frees every packet the standard nodes hold (ARP/ND hold queues, the
/// punt queue): the worker is stopping.
pub fn release_held(graph: &mut Graph<Tables>, bufs: &mut Buffers, shared: &WorkerShared) -> usize {
    let mut n = shared.ip4_hold.lock().unwrap_or_else(|e| e.into_inner()).clear(bufs);
    if let Some(d) = graph.node_mut::<crate::ip6::discover::Ip6Discover>("ip6-discover") {
        n += d.clear(bufs);
    }
    n + shared.punt.drain(bufs, |_, _, _| {})
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_standard_graph_is_complete() {
        let b = super::standard_graph(&super::WorkerShared::default());
        assert_eq!(b.missing_nodes(), Vec::<&str>::new());
        let g = b.build().unwrap();
        for name in [
            "pg-input",
            "ethernet-input",
            "l2-learn",
            "ip4-lookup",
            "ip6-lookup",
            "arp-input",
            "punt",
            "sr-localsid",
            "sr-localsid-d",
            "sr-pl-rewrite-encaps",
            "sr-pl-rewrite-encaps-l2",
            "sr-proxy-return",
        ] {
            assert!(g.node_index(name).is_some(), "{name}");
        }
    }

    #[test]
    fn a_capture_takes_rx_at_port_input_tx_at_interface_output_and_drops_with_their_reason() {
        use crate::harness::Harness;
        use crate::{IfMode, Interface, Tables};
        use std::sync::atomic::AtomicU64;
        use std::sync::Arc;
        use vswitch_graph::{CaptureBuffer, CaptureDir, CaptureSpec, CAPTURE_ANY};
        use vswitch_wire::MacAddr;

        let mut t = Tables::default();
        t.set_interface(Interface::port(0, "pg0", 0, MacAddr([2, 0, 0, 0, 0, 0xa0]), IfMode::XConnect { peer: 1 }));
        t.set_interface(Interface::port(1, "pg1", 1, MacAddr([2, 0, 0, 0, 0, 0xa1]), IfMode::XConnect { peer: 0 }));
        let mut h = Harness::new(t, 256);
        let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        frame.extend(0..50u8);
        // Capture off: nothing to take, forwarding as usual.
        h.inject(0, &[&frame]);
        assert_eq!(h.take_tx(1).len(), 1);

        let dirs = CaptureDir::Rx.bit() | CaptureDir::Tx.bit() | CaptureDir::Drop.bit();
        let spec = CaptureSpec { sw_if: CAPTURE_ANY, dirs, max: 10, snaplen: 9000 };
        h.graph.start_capture(CaptureBuffer::new(spec, Arc::new(AtomicU64::new(0)), 2048));
        h.inject(0, &[&frame, &frame[..10]]);
        assert_eq!(h.take_tx(1), vec![frame.clone()]);
        let b = h.graph.stop_capture().unwrap();
        let got: Vec<(CaptureDir, u32, &str, &str, usize)> =
            b.records().iter().map(|r| (r.dir, r.sw_if, r.node, r.reason, b.bytes(r).len())).collect();
        let short = "frame shorter than its Ethernet header and tags";
        assert_eq!(
            got,
            vec![
                (CaptureDir::Rx, 0, "pg-input", "", 64),
                (CaptureDir::Rx, 0, "pg-input", "", 10),
                (CaptureDir::Drop, 0, "ethernet-input", short, 10),
                (CaptureDir::Tx, 1, "interface-output", "", 64),
            ]
        );
        assert_eq!(b.bytes(&b.records()[3]), &frame[..]);
        h.assert_no_leak();
    }

    #[test]
    fn kernel_port_input_nodes_are_registered() {
        let g = super::standard_graph(&super::WorkerShared::default()).build().unwrap();
        for name in ["tap-input", "af-packet-input", "af-xdp-input", "memif-input"] {
            assert!(g.node_index(name).is_some(), "{name}");
        }
    }
}
