//! vswitch-graph: the vector graph runtime, after FD.io VPP's vlib.
//!
//! A [`Node`] processes a whole vector of packets and hands each packet to
//! one of its named next nodes (its *next arcs*, resolved to indices when
//! the [`Graph`] is built). The graph dispatches pending frames until none
//! is left, timing every node call with the TSC ([`NodeStats`], VPP's
//! `show runtime`), counting each node's named errors (`show errors`),
//! recording typed per-node trace records for marked packets (`show trace`),
//! routing packets through per-interface [`feature arcs`](FeatureArcs)
//! so optional nodes cost nothing where they are not enabled, and copying
//! received, transmitted or dropped packets into a [`CaptureBuffer`] while
//! a packet capture runs (`vswitchctl pcap`).
//!
//! The graph is per worker and single-threaded; counters are written by
//! their worker only and read by anyone ([`Counter`]).

#![forbid(unsafe_code)]

mod capture;
mod counter;
mod cx;
mod feature;
mod graph;
mod node;
mod trace;

pub use capture::{CaptureBuffer, CaptureDir, CaptureRecord, CaptureSpec, CAPTURE_ANY};
pub use counter::Counter;
pub use cx::Cx;
pub use feature::{FeatureArcId, FeatureArcs};
pub use graph::{Graph, GraphBuilder, GraphError, GraphStats, NodeIndex, NodeStats, NodeStatsSnapshot};
pub use node::{DynNode, ErrorCode, NextArc, Node};
pub use trace::{TraceEvent, TraceLog};
pub use vswitch_packet::{Buffers, PacketId, VECTOR_SIZE};

/// Name of the built-in node that frees dropped packets (always index 0).
pub const ERROR_DROP: &str = "error-drop";
