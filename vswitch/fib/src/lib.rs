//! # vswitch-fib: forwarding tables for the vswitch dataplane
//!
//! IPv4 and IPv6 longest-prefix-match tables per VRF, adjacencies and
//! ECMP/UCMP load-balance objects. Many worker threads read them lock-free
//! while one control writer changes them incrementally.
//!
//! * [`ip4`]: DIR-24-8 (as DPDK `rte_lpm`), at most two dependent loads per
//!   lookup, plus a batched lookup for packet vectors.
//! * [`ip6`]: 24-bit first level, 8-bit stride groups and single-prefix
//!   records for sparse subtrees.
//! * [`adj`]: seqlocked 64-byte adjacency records.
//! * [`lb`]: load-balance objects (power-of-two bucket arrays) and flow hashes.
//! * [`quiesce`]: the grace-period (QSBR) mechanism that lets the writer reuse
//!   memory only after every reader has moved past it.
//! * [`Fib`] / [`FibTables`]: everything above per VRF, control and reader
//!   sides.
//!
//! Route values are load-balance indices (or any `u32` the user chooses) up to
//! [`MAX_VALUE`] (`ip4` alone accepts up to 2^24 - 1, `ip6` 2^23 - 1).
//!
//! All of it is safe Rust: every word a reader loads is an atomic, each
//! answer changes with a single atomic store, and memory never moves or is
//! reused under a reader.
//!
//! ```
//! use vswitch_fib::{Fib, FibConfig};
//! use vswitch_fib::adj::Adjacency;
//! use vswitch_fib::lb::{Path, flow_hash_v4};
//!
//! let mut fib = Fib::new(FibConfig { max_vrfs: 2, ..FibConfig::default() }).unwrap();
//! let adj = fib.adj_writer().lock().unwrap()
//!     .add(Adjacency::with_rewrite(1, 1500, &[0u8; 14]).unwrap()).unwrap();
//! let lb = fib.lb_mut().add(&[Path::new(adj, 1)]).unwrap();
//! fib.ip4_mut(0).unwrap().insert("10.0.0.0/8".parse().unwrap(), lb).unwrap();
//!
//! // worker side
//! let tables = fib.tables().clone();
//! let reader = fib.register_reader();
//! reader.quiescent(); // top of each worker loop iteration
//! let dst = u32::from(std::net::Ipv4Addr::new(10, 1, 2, 3));
//! let hash = flow_hash_v4(0x0a00_0001, dst, 6, 1234, 80);
//! assert_eq!(tables.resolve4(0, dst, hash), Some(adj));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod adj;
mod error;
mod fib;
pub mod ip4;
pub mod ip6;
pub mod lb;
pub mod quiesce;

pub use error::FibError;
pub use fib::{Fib, FibConfig, FibTables, DEFAULT_MAX_VRFS, MAX_VRFS_LIMIT};

/// Largest route value accepted by both the IPv4 and the IPv6 tables.
pub const MAX_VALUE: u32 = ip6::MAX_VALUE;
