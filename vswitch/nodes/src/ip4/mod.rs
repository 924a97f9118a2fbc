//! IPv4 forwarding: the nodes of the routed path and their helpers.
//!
//! ```text
//! ethernet-input ─► ip4-input ─► [ip4-unicast features] ─► ip4-lookup ─┬─► ip4-rewrite ─► interface-output
//!                                                                      ├─► ip4-local ─► (echo reply) ip4-lookup / punt
//!                                                                      ├─► ip4-arp (glean: ARP, hold) ─► interface-output
//!                                                                      ├─► ip4-icmp-error ─► ip4-lookup
//!                                                                      └─► punt
//! ethernet-input ─► arp-input ─► interface-output (replies), ip4-lookup (released held packets)
//! ```
//!
//! Configuration comes from the worker's [`Tables`](crate::Tables): the
//! interfaces (addresses, MTU, proxy ARP) and the shared FIB
//! ([`crate::ip::fib::Fib`], `tables.fib`).

pub mod arp;
pub mod arp_input;
pub mod icmp_error;
pub mod input;
pub mod local;
pub mod lookup;
pub mod rewrite;

/// The IPv4 unicast feature arc: ip4-input starts it, ip4-lookup ends it.
pub const UNICAST_ARC: &str = "ip4-unicast";
