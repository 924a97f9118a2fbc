//! vswitch-control: the desired-state model of a vswitch node and its
//! compilation into the dataplane's tables.
//!
//! - [`model`]: what the node should look like ([`DesiredState`]), read
//!   from and written to YAML; `docs/config.md` documents every field.
//! - [`validate`](mod@validate): every semantic check, all problems at once, each naming
//!   its field (`interfaces[2] (pod-c).mtu: 70000 is outside 68..=9000`).
//! - [`apply`](mod@apply): the [`Controller`], which diffs a new state against the
//!   one in force, programs the FIB incrementally, creates port backends
//!   through a [`PortRegistry`], and publishes one new [`Tables`] snapshot
//!   to the workers, undoing everything if a step fails.
//! - [`patch`]: part of a state changed by key (the CNI plugin's pods).
//! - [`store`]: the applied state persisted to `<dir>/state.yaml`.
//!
//! The daemon, its API and CLI build on this crate; it has no async
//! runtime and no I/O besides [`StateDir`].
//!
//! [`Tables`]: vswitch_nodes::Tables

#![forbid(unsafe_code)]

pub mod apply;
mod flat;
pub mod model;
pub mod patch;
pub mod sr;
pub mod store;
pub mod validate;

pub use apply::{
    same_interface, ApplyError, ApplyReport, Changes, Controller, NeighborKey, NoPortBackends, PortLink, PortRegistry,
    PortSpec, RouteKey,
};
pub use model::{
    generated_mac, ArpEntrySpec, BridgeDomainSpec, BridgeSpec, BviSpec, DesiredState, InterfaceSpec, L3Spec, Mac,
    MemifMode, MemifRole, MemifSpec, Mode, NeighborSpec, NetworkSpec, NextHopSpec, ParseError, PortType, RouteSpec,
    RouteTarget, SpecialRoute, StaticMacSpec, TagRewrite, VlanSpec, VrfSpec, XConnectSpec, DEFAULT_MEMIF_SOCKET,
};
pub use patch::{patched, Patch};
pub use sr::{
    CsidSpec, EncapSpec, FlavorSpec, HmacKeySpec, HmacModeSpec, LocalSidSpec, PolicySpec, SegmentListSpec, SidBehavior,
    SrSpec, SteeringSpec,
};
pub use store::{StateDir, StoreError};
pub use validate::{validate, Limits, ValidationError, Warning};
