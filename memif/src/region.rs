//! Shared-memory regions: creation (client), checks and mapping (server),
//! the copy-mode layout, and bounds-checked raw access.
//!
//! # Layout (copy mode, what VPP and DPDK clients build)
//!
//! One region, index 0, created by the client as a memfd:
//!
//! ```text
//! [S2M ring 0] .. [S2M ring n-1] [M2S ring 0] .. [M2S ring m-1] [buffers]
//! ```
//!
//! Each ring is a 128-byte header plus `16 << log2_ring_size` bytes of
//! descriptors. The buffers start right after the rings; descriptor `j` of
//! S2M ring `i` owns buffer `i * ring_size + j`, descriptor `j` of M2S
//! ring `i` owns buffer `(n + i) * ring_size + j`, each `buffer_size`
//! bytes. Offsets are 32-bit, so a region is at most 4 GiB.
//!
//! # Access
//!
//! The peer can write any byte of a region at any time, so a [`Region`]
//! never hands out `&[u8]` or `&mut [u8]` into it: bytes are copied in and
//! out through raw pointers after a bounds check, and indices and
//! descriptors are read once into locals (atomics or volatile reads) and
//! only the local copies are checked and used.

use crate::ring::{ring_bytes, RING_HEADER_LEN};
use crate::sys::{self, Mapping};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;

/// Where each ring and buffer of a copy-mode region 0 goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// S2M rings.
    pub s2m_rings: usize,
    /// M2S rings.
    pub m2s_rings: usize,
    /// log2 of descriptors per ring.
    pub log2_ring_size: u8,
    /// Bytes per buffer.
    pub buffer_size: u32,
}

impl Layout {
    /// Descriptors per ring.
    pub fn ring_size(&self) -> usize {
        1 << self.log2_ring_size
    }
    /// Offset of ring `index` of `s2m` (true) or M2S.
    pub fn ring_offset(&self, s2m: bool, index: usize) -> u64 {
        let n = if s2m { index } else { self.s2m_rings + index };
        n as u64 * ring_bytes(self.log2_ring_size) as u64
    }
    /// Where the buffers start.
    pub fn buffer_offset(&self) -> u64 {
        (self.s2m_rings + self.m2s_rings) as u64 * ring_bytes(self.log2_ring_size) as u64
    }
    /// Offset of the first buffer of a ring.
    pub fn ring_buffers(&self, s2m: bool, index: usize) -> u64 {
        let n = if s2m { index } else { self.s2m_rings + index };
        self.buffer_offset() + (n * self.ring_size()) as u64 * u64::from(self.buffer_size)
    }
    /// Bytes of the whole region.
    pub fn region_size(&self) -> u64 {
        self.buffer_offset()
            + (self.s2m_rings + self.m2s_rings) as u64 * self.ring_size() as u64 * u64::from(self.buffer_size)
    }
}

enum Backing {
    Mapped(#[allow(dead_code)] Mapping),
    Heap(#[allow(dead_code)] Box<[u64]>),
}

/// One shared-memory region: a mapping (or, for tests and fuzzing, heap
/// memory) with its length, accessed only through bounds-checked raw
/// copies.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    fd: Option<OwnedFd>,
    _backing: Backing,
}

// SAFETY: a Region is memory plus a descriptor; all access goes through
// raw-pointer copies and atomics that are sound under concurrent writers.
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` offers no reference into the memory.
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region").field("len", &self.len).finish()
    }
}

impl Region {
    /// Client side: a new sealed memfd of `size` bytes, mapped.
    pub fn create(name: &str, size: u64) -> io::Result<Region> {
        let len = usize::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let fd = sys::memfd_create(name, size)?;
        let map = Mapping::map(fd.as_fd(), len)?;
        Ok(Region { ptr: map.ptr(), len, fd: Some(fd), _backing: Backing::Mapped(map) })
    }

    /// Server side: checks a descriptor the client sent (a memfd, sealed
    /// against shrinking, at least `size` bytes) and maps `size` bytes of
    /// it. The error is the DISCONNECT reason.
    pub fn from_peer(fd: OwnedFd, size: u64) -> Result<Region, String> {
        let len = usize::try_from(size).map_err(|_| format!("region size {size} too large"))?;
        sys::check_region_fd(fd.as_fd(), size)?;
        let map = Mapping::map(fd.as_fd(), len).map_err(|e| format!("mmap region: {e}"))?;
        Ok(Region { ptr: map.ptr(), len, fd: Some(fd), _backing: Backing::Mapped(map) })
    }

    /// Zeroed heap memory standing in for a mapping (tests, fuzzing).
    pub fn heap(len: usize) -> Region {
        let words = len.div_ceil(8).max(1);
        let mut b = vec![0u64; words].into_boxed_slice();
        let ptr = NonNull::new(b.as_mut_ptr().cast::<u8>()).expect("boxed slice pointer is non-null");
        Region { ptr, len, fd: None, _backing: Backing::Heap(b) }
    }

    /// Zeroed memory whose last byte is followed by an inaccessible page,
    /// so any access past the end faults (fuzzing without a sanitizer).
    /// `len` is rounded up to a multiple of 8.
    pub fn guarded(len: usize) -> io::Result<Region> {
        let len = len.div_ceil(8) * 8;
        let (map, ptr) = Mapping::guarded(len)?;
        Ok(Region { ptr, len, fd: None, _backing: Backing::Mapped(map) })
    }

    /// Bytes in the region.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True for a zero-byte region (never made by this crate).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The memfd, if the region is one.
    pub fn fd(&self) -> Option<&OwnedFd> {
        self.fd.as_ref()
    }

    /// Whether `len` bytes at `offset` lie inside the region.
    #[inline]
    pub fn contains(&self, offset: u64, len: u64) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.len as u64)
    }

    /// Pointer to `offset`, if `len` bytes from there are inside.
    #[inline]
    pub fn ptr_at(&self, offset: u64, len: u64) -> Option<NonNull<u8>> {
        if !self.contains(offset, len) {
            return None;
        }
        // SAFETY: `offset <= self.len`, so the result is within (or one
        // past the end of) the allocation.
        Some(unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(offset as usize)) })
    }

    /// Copies `dst.len()` bytes from `offset` out of the region; false
    /// (and nothing copied) if that is not inside.
    pub fn read(&self, offset: u64, dst: &mut [u8]) -> bool {
        let Some(p) = self.ptr_at(offset, dst.len() as u64) else { return false };
        // SAFETY: the source range is inside the live region (checked);
        // `dst` is a distinct Rust buffer. The peer may write the source
        // concurrently: the bytes copied are then arbitrary, which callers
        // treat as untrusted data anyway; no reference to shared memory is
        // created.
        unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), dst.as_mut_ptr(), dst.len()) };
        true
    }

    /// Copies `src` into the region at `offset`; false (and nothing
    /// written) if that is not inside.
    pub fn write(&self, offset: u64, src: &[u8]) -> bool {
        let Some(p) = self.ptr_at(offset, src.len() as u64) else { return false };
        // SAFETY: the destination range is inside the live region
        // (checked) and writable (mapped read-write or heap); `src` is a
        // distinct Rust buffer.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len()) };
        true
    }

    /// Whether a ring of `log2` descriptors fits at `offset`, aligned.
    pub fn fits_ring(&self, offset: u64, log2: u8) -> bool {
        offset.is_multiple_of(8) && self.contains(offset, ring_bytes(log2) as u64)
    }

    /// Whether the ring header at `offset` (checked to fit) has the cookie.
    pub fn has_cookie(&self, offset: u64) -> bool {
        let mut c = [0u8; 4];
        self.read(offset, &mut c) && u32::from_le_bytes(c) == crate::COOKIE
    }
}

/// Sanity: the ring header is what the layout assumes.
const _: () = assert!(RING_HEADER_LEN == 128);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_vpp_and_dpdk() {
        // 2 S2M + 1 M2S ring of 2^10, 2048-byte buffers.
        let l = Layout { s2m_rings: 2, m2s_rings: 1, log2_ring_size: 10, buffer_size: 2048 };
        let rb = 128 + 16 * 1024;
        assert_eq!(l.ring_offset(true, 0), 0);
        assert_eq!(l.ring_offset(true, 1), rb);
        assert_eq!(l.ring_offset(false, 0), 2 * rb);
        assert_eq!(l.buffer_offset(), 3 * rb);
        assert_eq!(l.ring_buffers(true, 1), 3 * rb + 1024 * 2048);
        assert_eq!(l.ring_buffers(false, 0), 3 * rb + 2 * 1024 * 2048);
        assert_eq!(l.region_size(), 3 * rb + 3 * 1024 * 2048);
    }

    #[test]
    fn guarded_regions_end_at_a_guard_page() {
        let r = Region::guarded(5000).unwrap();
        assert_eq!(r.len(), 5000);
        assert!(r.write(4990, &[1; 10]));
        assert!(!r.write(4991, &[1; 10]));
        let mut b = [0u8; 10];
        assert!(r.read(4990, &mut b));
        assert_eq!(b, [1; 10]);
    }

    #[test]
    fn bounds_are_checked() {
        let r = Region::heap(4096);
        assert!(r.contains(0, 4096));
        assert!(r.contains(4096, 0));
        assert!(!r.contains(4096, 1));
        assert!(!r.contains(u64::MAX, 2));
        let mut b = [0u8; 8];
        assert!(!r.read(4090, &mut b));
        assert!(r.write(4088, &[7; 8]));
        assert!(r.read(4088, &mut b));
        assert_eq!(b, [7; 8]);
        let r = Region::heap(8192);
        assert!(r.fits_ring(0, 8));
        assert!(r.fits_ring(8192 - 4224, 8));
        assert!(!r.fits_ring(8192 - 4224 + 8, 8));
        assert!(!r.fits_ring(4, 8));
        assert!(!r.fits_ring(0, 9));
    }

    #[test]
    fn created_regions_are_sealed_memfds_the_server_accepts() {
        let r = Region::create("test", 1 << 16).unwrap();
        assert!(r.write(100, b"hello"));
        let fd = r.fd().unwrap().try_clone().unwrap();
        let peer = Region::from_peer(fd, 1 << 16).unwrap();
        let mut b = [0u8; 5];
        assert!(peer.read(100, &mut b));
        assert_eq!(&b, b"hello");
        // Asking for more than the file has is refused.
        let fd = r.fd().unwrap().try_clone().unwrap();
        assert!(Region::from_peer(fd, 1 << 17).unwrap_err().contains("less than"));
    }
}
