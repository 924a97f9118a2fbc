//! The vswitch node daemon and its CLI, as a library the two binaries
//! (`vswitch`, `vswitchctl`) are thin over.
//!
//! - [`dataplane`]: buffer pool and worker threads.
//! - [`ports`]: the port registry that creates tap / af-packet / pg
//!   backends and hands their queues to workers.
//! - [`daemon`]: the controller, its lock, apply-and-save, clear, trace.
//! - [`show`]: the `show` tables and their JSON.
//! - [`service`]: the gRPC service over all that.
//! - [`metrics`]: the Prometheus endpoint.
//! - [`pcap`]: packet capture into pcap / pcapng files.

#![forbid(unsafe_code)]

pub mod daemon;
pub mod dataplane;
pub mod metrics;
pub mod pcap;
pub mod ports;
pub mod service;
pub mod show;
