//! What IPv4 and IPv6 forwarding share: the FIB facade ([`fib`]), the
//! neighbor table ([`neighbor`]), packets held during neighbor resolution
//! ([`hold`]), the punt node and queue ([`punt`]) and the ICMP rate
//! limiter ([`icmp_limit`]).
//!
//! The FIB is `tables.fib` (an `Arc<fib::IpFib>` shared by every snapshot):
//! workers look up lock-free; the control plane and the neighbor nodes
//! change it through `IpFib::control()` / `try_control()`.

pub mod fib;
pub mod hold;
pub mod icmp_limit;
pub mod neighbor;
pub mod punt;

pub use fib::{FibControl, IpFib, IpFibConfig, IpFibError, NextHop, RouteInfo, RoutePath, RouteSource};
pub use neighbor::{Neighbor, NeighborChange, NeighborKind};

/// `Meta::flags` bit: the packet was built by this node (an echo reply,
/// an ICMP error, ...), not received. ip4-rewrite/ip6-rewrite send it with
/// its TTL/hop limit as it is, and no ICMP error is sent about it.
/// ip4-input and ip6-input clear it on every packet from the wire.
pub const LOCALLY_ORIGINATED: u16 = 1 << 8;
