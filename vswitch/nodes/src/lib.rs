//! vswitch-nodes: the graph nodes of the data path.
//!
//! Each node is one file that reads like a VPP node: its name, its next
//! nodes, its error counters, its trace record and its per-vector loop,
//! over the typed views of `vswitch-wire`. Nodes read configuration from
//! the worker's [`Tables`] snapshot.

#![forbid(unsafe_code)]

pub mod counters;
pub mod ethernet_input;
pub mod harness;
pub mod interface_output;
pub mod ip;
pub mod ip4;
pub mod ip6;
pub mod l2;
pub mod port_input;
pub mod registry;
pub mod srv6;
pub mod tables;

pub use counters::IfCounters;
pub use registry::{housekeeping, release_held, standard_graph, Housekeeping, WorkerShared};
pub use tables::{BridgeDomainConfig, IfKind, IfMode, Interface, SwIf, Tables, VlanRewrite, VlanTags, NONE};

/// The context every node here runs with.
pub type Cx<'a, N> = vswitch_graph::Cx<'a, Tables, N>;
