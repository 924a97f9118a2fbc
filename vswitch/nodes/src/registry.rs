//! The standard graph: every node of the data path, wired by name.

use crate::counters::IfCounters;
use crate::ethernet_input::EthernetInput;
use crate::interface_output::InterfaceOutput;
use crate::l2::input::L2Input;
use crate::l2::output::L2Output;
use crate::port_input::{Pg, PortInput};
use crate::Tables;
use std::sync::Arc;
use vswitch_graph::GraphBuilder;

/// What the standard nodes share on one worker.
#[derive(Clone, Default)]
pub struct WorkerShared {
    /// Interface counters of this worker.
    pub counters: Arc<IfCounters>,
}

/// A builder holding every standard node; add ports and build.
pub fn standard_graph(shared: &WorkerShared) -> GraphBuilder<Tables> {
    let c = &shared.counters;
    GraphBuilder::new()
        .node(PortInput::<Pg>::new(c.clone()))
        .node(EthernetInput::new(c.clone()))
        .node(L2Input)
        .node(L2Output)
        .node(InterfaceOutput::new(c.clone()))
}
