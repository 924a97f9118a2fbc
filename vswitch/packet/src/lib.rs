//! vswitch-packet: where packets live.
//!
//! One [`BufferPool`] owns an arena of fixed-size buffers (2 MiB huge pages
//! when the host has them, ordinary pages otherwise) and a parallel,
//! cache-aligned array of [`Meta`]. A packet is a [`PacketId`], a `u32`
//! index into both. Each worker reaches the pool through its own
//! [`Buffers`]: a local free cache refilled from, and spilled to, the shared
//! free list in bulk, and the accessors for data and metadata.
//!
//! This crate is one of the few that may use `unsafe`: handing out `&mut`
//! views of buffer memory by index is the whole point of it. The soundness
//! argument is ownership: the free list never holds an index twice (frees
//! are checked), so each allocated index has exactly one owning worker.

mod arena;
pub mod clock;
mod meta;
mod pool;

pub use arena::{Arena, ArenaBacking};
pub use meta::{Meta, MetaFlags};
pub use pool::{BufferPool, BufferPoolConfig, Buffers, PoolStats};

/// Bytes reserved in front of the packet data in every buffer, so that
/// encapsulations (Ethernet + IPv6 + SRH with several SIDs, or
/// Ethernet + IPv6 + UDP + VXLAN) can be prepended without a copy.
pub const HEADROOM: usize = 256;

/// Default bytes of packet data after the headroom.
pub const DEFAULT_DATA_SIZE: usize = 2048;

/// The largest vector a node is handed; ports receive at most this many
/// packets per burst.
pub const VECTOR_SIZE: usize = 256;

/// A packet: an index into the pool's buffers and metadata.
///
/// Handles are plain indices; who owns one is a convention the data path
/// keeps (one owner at a time), and [`Buffers::free`] checks it so a double
/// free is counted and refused rather than corrupting the free list.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(transparent)]
pub struct PacketId(u32);

impl PacketId {
    /// The raw index.
    #[inline(always)]
    pub fn index(self) -> u32 {
        self.0
    }

    /// A handle from a raw index. Accessors bound-check it against the pool.
    #[inline(always)]
    pub fn from_index(index: u32) -> PacketId {
        PacketId(index)
    }
}

impl core::fmt::Display for PacketId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "pkt{}", self.0)
    }
}

/// Asks the CPU to bring the cache line holding `value` closer (a hint: no
/// effect on what the program computes). Nodes use it a few packets ahead
/// of the one they work on, to overlap table look-ups with work.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 never faults and changes no memory; the pointer
    // comes from a live reference anyway. SSE is part of the x86_64 base.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Asks the kernel to back the memory of `region` with transparent huge
/// pages (`MADV_HUGEPAGE` on the 2 MiB-aligned part of it), so large
/// lookup tables cost fewer TLB misses. Advice only: contents and
/// semantics are unchanged, and a kernel that declines changes nothing.
/// Works best before the memory is first touched.
pub fn advise_huge_pages<T>(region: &[T]) -> bool {
    const HUGE: usize = 2 << 20;
    let start = region.as_ptr() as usize;
    let end = start + std::mem::size_of_val(region);
    let (a, b) = (start.next_multiple_of(HUGE), end & !(HUGE - 1));
    if a >= b {
        return false;
    }
    // SAFETY: [a, b) lies inside `region`'s allocation, which outlives the
    // call; MADV_HUGEPAGE does not change what the memory holds or who may
    // access it, only how the kernel backs it.
    unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE) == 0 }
}
