//! The memory buffers live in: one contiguous mapping.
//!
//! Buffers are found by `base + index * stride`, which is all the pool
//! needs, so another backing (a DPDK mempool's element area, a memif
//! region) can stand in later as long as it is one contiguous range with a
//! fixed stride.

use std::io;
use std::ptr::NonNull;

const HUGE_PAGE: usize = 2 << 20;
const SMALL_PAGE: usize = 4 << 10;

/// What the arena's memory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArenaBacking {
    /// Explicit 2 MiB huge pages (`MAP_HUGETLB`).
    HugePages,
    /// Ordinary anonymous pages, with transparent huge pages requested.
    SmallPages,
}

impl std::fmt::Display for ArenaBacking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArenaBacking::HugePages => "2M hugepages",
            ArenaBacking::SmallPages => "4K pages",
        })
    }
}

/// An owned, zeroed, page-aligned mapping.
#[derive(Debug)]
pub struct Arena {
    base: NonNull<u8>,
    len: usize,
    backing: ArenaBacking,
}

// SAFETY: the arena is plain memory; who may touch which byte is decided by
// buffer ownership in the pool, not by the arena.
unsafe impl Send for Arena {}
// SAFETY: as above; the arena itself is never mutated after creation.
unsafe impl Sync for Arena {}

impl Arena {
    /// Maps `len` bytes, from huge pages when `prefer_huge` and the host
    /// has enough of them, from ordinary pages otherwise.
    pub fn new(len: usize, prefer_huge: bool) -> io::Result<Arena> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "arena length is zero"));
        }
        if prefer_huge {
            let huge_len = len.next_multiple_of(HUGE_PAGE);
            if let Ok(base) = map(huge_len, libc::MAP_HUGETLB) {
                return Ok(Arena { base, len: huge_len, backing: ArenaBacking::HugePages });
            }
        }
        let small_len = len.next_multiple_of(SMALL_PAGE);
        let base = map(small_len, 0)?;
        // Transparent huge pages cut TLB misses when the kernel allows them;
        // failure is harmless.
        // SAFETY: the range is the mapping just created.
        unsafe { libc::madvise(base.as_ptr().cast(), small_len, libc::MADV_HUGEPAGE) };
        Ok(Arena { base, len: small_len, backing: ArenaBacking::SmallPages })
    }

    /// First byte of the mapping.
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: a zero-length arena cannot be created.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What the memory is.
    pub fn backing(&self) -> ArenaBacking {
        self.backing
    }
}

fn map(len: usize, extra_flags: libc::c_int) -> io::Result<NonNull<u8>> {
    // SAFETY: an anonymous private mapping with no address hint touches no
    // existing memory; the result is checked before use.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | extra_flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: base/len are exactly the mapping made in `new`, and the
        // pool that borrows it is dropped first (it owns the arena).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_pages_are_zeroed_and_writable() {
        let a = Arena::new(10_000, false).unwrap();
        assert_eq!(a.backing(), ArenaBacking::SmallPages);
        assert_eq!(a.len(), 12_288);
        // SAFETY: in bounds of the fresh mapping, used by this test only.
        let s = unsafe { std::slice::from_raw_parts_mut(a.base().as_ptr(), a.len()) };
        assert!(s.iter().all(|&b| b == 0));
        s[a.len() - 1] = 7;
        assert_eq!(s[a.len() - 1], 7);
    }

    #[test]
    fn huge_pages_fall_back_when_absent() {
        // Works either way: huge pages when reserved, small pages otherwise.
        let a = Arena::new(3 << 20, true).unwrap();
        match a.backing() {
            ArenaBacking::HugePages => assert_eq!(a.len(), 4 << 20),
            ArenaBacking::SmallPages => assert_eq!(a.len(), 3 << 20),
        }
    }

    #[test]
    fn zero_length_is_rejected() {
        assert!(Arena::new(0, false).is_err());
    }
}
