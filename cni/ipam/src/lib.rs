//! `vswitch-ipam`: cluster-wide IP address management for CNI.
//!
//! Each node claims address blocks from the network's pool with etcd
//! compare-and-swap transactions and hands out addresses from its own
//! blocks; every address is its own key, created by a transaction that fails
//! if the key exists, so no address is ever given to two attachments, even
//! when nodes disagree about who owns a block, when the pool is exhausted
//! and nodes borrow from each other's blocks, or when etcd members fail.
//! Without etcd, the same model runs on a file under `dataDir` (one node).
//!
//! * [`config`]: the `ipam` section;
//! * [`alloc`]: the allocator ([`Ipam`]): ADD, DEL, CHECK, GC, STATUS;
//! * [`plugin`]: the CNI protocol around it (what the binary runs);
//! * [`store`], [`keys`], [`pool`]: the store, its key layout, address arithmetic;
//! * [`testing`]: a throwaway multi-member etcd cluster for tests and benchmarks.

pub mod alloc;
pub mod config;
pub mod keys;
pub mod plugin;
pub mod pool;
pub mod store;
pub mod testing;

pub use alloc::{codes, AddRequest, Allocation, GcReport, Ipam, StatusReport};
pub use config::IpamConfig;
