//! The vswitch node daemon and its CLI, as a library the two binaries
//! (`vswitch`, `vswitchctl`) are thin over.
//!
//! - [`dataplane`]: buffer pool and worker threads.
//! - [`ports`]: the port registry that creates tap / af-packet / af-xdp /
//!   memif / pg backends and hands their queues to workers.
//! - [`daemon`]: the controller, its lock, apply-and-save, clear, trace.
//! - [`show`]: the `show` tables and their JSON ([`show_memif`]: `show memif`;
//!   [`show_sr`]: `show sr localsids|policies|steering`).
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
pub mod show_memif;
pub mod show_sr;
