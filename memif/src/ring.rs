//! Rings and descriptors in shared memory, and the copy-mode algorithms
//! that move frames through them, with every value the peer controls
//! checked before use.
//!
//! # Ring layout (`memif_ring_t`)
//!
//! ```text
//! offset 0   u32 cookie (0x3E31F20)
//!        4   u16 flags  (bit 0: MASK_INT, the receiver does not want interrupts)
//!        6   u16 head
//!       64   u16 tail   (own cache line)
//!      128   descriptors, 16 bytes each, 2^log2_ring_size of them
//! ```
//!
//! A descriptor (`memif_desc_t`): flags u16@0 (bit 0: NEXT, the frame
//! continues in the next descriptor), region u16@2, length u32@4, offset
//! u32@8, metadata u32@12.
//!
//! # Who writes what
//!
//! `head` and `tail` are free-running `u16`s; slot = index & (size - 1).
//!
//! * S2M (client → server): the client fills descriptors and advances
//!   `head`; the server reads up to `head` and advances `tail`.
//! * M2S (server → client): the client posts empty buffers (descriptor
//!   length = buffer size) and advances `head`; the server fills up to
//!   `head`, writes lengths and flags, and advances `tail`; the client
//!   reads up to `tail`, then posts the slots again.
//!
//! So the client writes `head` of both rings and the server `tail` of both.
//! `flags` belongs to the ring's receiver. Index stores are Release and
//! loads of the peer's index Acquire: the descriptors and data written
//! before a store are visible after the matching load.
//!
//! # Distrust
//!
//! Either side may be hostile. Each side keeps its own copy of the
//! indices it owns (never reading them back from shared memory), reads the
//! peer's index once per burst and checks its distance from its own (at
//! most the ring size, or what was posted), reads each descriptor once
//! (volatile) into a local and checks the copy: region index known, offset
//! plus length inside that region, length within the buffer size, chain
//! length bounded. Violations of the ring discipline are [`Fault`]s (the
//! link is torn down); a bad descriptor costs only its frame.

use crate::region::Region;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

/// Bytes before the first descriptor.
pub const RING_HEADER_LEN: usize = 128;
/// Bytes per descriptor.
pub const DESC_LEN: usize = 16;
/// Ring flag: the receiver polls and wants no interrupts.
pub const RING_FLAG_MASK_INT: u16 = 1;
/// Descriptor flag: the frame continues in the next descriptor.
pub const DESC_FLAG_NEXT: u16 = 1;

const FLAGS_OFF: usize = 4;
const HEAD_OFF: usize = 6;
const TAIL_OFF: usize = 64;

/// Bytes of a ring with `2^log2` descriptors.
pub const fn ring_bytes(log2: u8) -> usize {
    RING_HEADER_LEN + (DESC_LEN << log2)
}

/// A descriptor, as copied out of shared memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    /// `DESC_FLAG_NEXT` or 0.
    pub flags: u16,
    /// Region index.
    pub region: u16,
    /// Bytes of data (or, posted on M2S, room in the buffer).
    pub length: u32,
    /// Offset of the buffer in the region.
    pub offset: u32,
    /// Unused by copy mode; written as 0.
    pub metadata: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct RawDesc {
    flags: u16,
    region: u16,
    length: u32,
    offset: u32,
    metadata: u32,
}
const _: () = assert!(std::mem::size_of::<RawDesc>() == DESC_LEN);

/// A ring in a region: a pointer to its header and its size. Only built
/// (by [`Ring::new`]) after checking that the whole ring lies inside the
/// region with 8-byte alignment; only used while that region lives (the
/// connection owns both).
#[derive(Clone, Copy, Debug)]
pub struct Ring {
    base: NonNull<u8>,
    log2: u8,
}

// SAFETY: the ring is shared memory accessed only through atomics and
// volatile copies, which are fine from any thread.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// The ring at `offset` in `region`, if it fits there aligned.
    pub fn new(region: &Region, offset: u64, log2: u8) -> Option<Ring> {
        if !region.fits_ring(offset, log2) {
            return None;
        }
        Some(Ring { base: region.ptr_at(offset, crate::ring::ring_bytes(log2) as u64)?, log2 })
    }

    /// Descriptors in the ring.
    #[inline]
    pub fn size(&self) -> u16 {
        // log2 <= 14 is checked wherever rings are made, so this fits.
        1u16 << self.log2
    }
    /// log2 of the size.
    pub fn log2(&self) -> u8 {
        self.log2
    }
    #[inline]
    fn mask(&self) -> u16 {
        self.size() - 1
    }

    #[inline]
    fn atomic(&self, off: usize) -> &AtomicU16 {
        // SAFETY: `off` is 4, 6 or 64, inside the checked ring; the ring
        // is 8-byte aligned, so the u16 is 2-byte aligned. All accesses to
        // these words, ours and the peer's (VPP and DPDK use __atomic
        // builtins or volatile), are atomic-width, so an atomic reference
        // is the right model for memory mutated by another process.
        unsafe { AtomicU16::from_ptr(self.base.as_ptr().add(off).cast()) }
    }

    /// `head`, Acquire.
    #[inline]
    pub fn head(&self) -> u16 {
        self.atomic(HEAD_OFF).load(Ordering::Acquire)
    }
    /// Publishes `head`, Release.
    #[inline]
    pub fn set_head(&self, v: u16) {
        self.atomic(HEAD_OFF).store(v, Ordering::Release)
    }
    /// `tail`, Acquire.
    #[inline]
    pub fn tail(&self) -> u16 {
        self.atomic(TAIL_OFF).load(Ordering::Acquire)
    }
    /// Publishes `tail`, Release.
    #[inline]
    pub fn set_tail(&self, v: u16) {
        self.atomic(TAIL_OFF).store(v, Ordering::Release)
    }
    /// `flags`.
    #[inline]
    pub fn flags(&self) -> u16 {
        self.atomic(FLAGS_OFF).load(Ordering::Relaxed)
    }
    /// Sets `flags` (the receiver's field).
    pub fn set_flags(&self, v: u16) {
        self.atomic(FLAGS_OFF).store(v, Ordering::Release)
    }
    /// Whether the receiver masked interrupts.
    #[inline]
    pub fn interrupts_masked(&self) -> bool {
        self.flags() & RING_FLAG_MASK_INT != 0
    }

    /// The cookie word.
    pub fn cookie(&self) -> u32 {
        // SAFETY: offset 0 of the checked, 8-byte aligned ring; volatile
        // because the peer may write it.
        u32::from_le(unsafe { ptr::read_volatile(self.base.as_ptr().cast::<u32>()) })
    }

    /// Writes the header of a fresh ring (client side, before the peer
    /// sees the region): cookie, flags 0, head = tail = 0.
    pub fn init_header(&self) {
        // SAFETY: as for `cookie`.
        unsafe { ptr::write_volatile(self.base.as_ptr().cast::<u32>(), crate::COOKIE.to_le()) };
        self.set_flags(0);
        self.set_head(0);
        self.set_tail(0);
    }

    #[inline]
    fn desc_ptr(&self, index: u16) -> *mut RawDesc {
        let slot = usize::from(index & self.mask());
        // SAFETY: slot < size, so the descriptor lies inside the checked
        // ring; 128 + 16 * slot keeps the 8-byte alignment.
        unsafe { self.base.as_ptr().add(RING_HEADER_LEN + slot * DESC_LEN).cast() }
    }

    /// Copies descriptor `index & mask` out, once.
    #[inline]
    pub fn desc(&self, index: u16) -> Desc {
        // SAFETY: `desc_ptr` is inside the ring and aligned; volatile so
        // the peer's concurrent writes give some value, read exactly once.
        let r = unsafe { ptr::read_volatile(self.desc_ptr(index)) };
        Desc {
            flags: u16::from_le(r.flags),
            region: u16::from_le(r.region),
            length: u32::from_le(r.length),
            offset: u32::from_le(r.offset),
            metadata: u32::from_le(r.metadata),
        }
    }

    /// Writes a whole descriptor.
    #[inline]
    pub fn set_desc(&self, index: u16, d: Desc) {
        let r = RawDesc {
            flags: d.flags.to_le(),
            region: d.region.to_le(),
            length: d.length.to_le(),
            offset: d.offset.to_le(),
            metadata: d.metadata.to_le(),
        };
        // SAFETY: as for `desc`.
        unsafe { ptr::write_volatile(self.desc_ptr(index), r) };
    }

    /// Writes only a descriptor's length and flags (filling a buffer the
    /// peer posted: its region and offset stay as posted).
    #[inline]
    pub fn set_len_flags(&self, index: u16, length: u32, flags: u16) {
        let p = self.desc_ptr(index);
        // SAFETY: as for `desc`; field pointers within the descriptor.
        unsafe {
            ptr::write_volatile(ptr::addr_of_mut!((*p).length), length.to_le());
            ptr::write_volatile(ptr::addr_of_mut!((*p).flags), flags.to_le());
        }
    }
}

/// A violation of the ring discipline: the peer cannot be trusted with
/// this ring any longer, and the link goes down with this as the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The peer's index is further from ours than the ring allows
    /// (`distance` > `limit`).
    Overrun {
        /// The peer's index as read.
        peer: u16,
        /// Our own index.
        local: u16,
        /// Largest distance allowed.
        limit: u16,
    },
    /// A chain of NEXT descriptors longer than [`crate::MAX_CHAIN`].
    ChainTooLong,
    /// A chain that runs through every published descriptor without end,
    /// so it can never be completed.
    UnterminatedChain,
    /// A buffer the peer posted for us to fill (M2S, server side) is not
    /// inside its region or has no room.
    BadPostedBuffer {
        /// Ring index of the descriptor.
        slot: u16,
    },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Fault::Overrun { peer, local, limit } => write!(
                f,
                "ring overrun: peer index {peer} is {} from ours ({local}), more than {limit}",
                peer.wrapping_sub(local)
            ),
            Fault::ChainTooLong => write!(f, "descriptor chain longer than {}", crate::MAX_CHAIN),
            Fault::UnterminatedChain => write!(f, "descriptor chain never ends"),
            Fault::BadPostedBuffer { slot } => write!(f, "bad posted buffer in slot {slot}"),
        }
    }
}

/// A validated piece of a frame: a pointer into a live region and a
/// length, both checked against the region.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seg {
    ptr: *const u8,
    len: u32,
}

// SAFETY: `Seg` holds raw pointers into regions; they are written and read
// only within one burst, while the queue holds the connection (and so the
// mappings). Moving a queue's scratch space to another thread between
// bursts moves only stale values that are never dereferenced.
unsafe impl Send for Seg {}

impl Seg {
    pub(crate) const EMPTY: Seg = Seg { ptr: ptr::null(), len: 0 };
}

/// Scratch space for one frame's segments, allocated once per queue.
pub(crate) type Scratch = Box<[Seg; crate::MAX_CHAIN]>;

pub(crate) fn scratch() -> Scratch {
    Box::new([Seg::EMPTY; crate::MAX_CHAIN])
}

/// One received frame, possibly in several segments, still in shared
/// memory: copy it out with [`RxFrame::copy_to`]. It lives only during the
/// receive callback.
pub struct RxFrame<'a> {
    segs: &'a [Seg],
    len: usize,
}

impl RxFrame<'_> {
    /// Bytes in the frame.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    /// Never true: empty frames are dropped before the callback.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Descriptors the frame came in.
    #[inline]
    pub fn segments(&self) -> usize {
        self.segs.len()
    }
    /// Copies the whole frame to the front of `dst` and returns its
    /// length, or `None` (nothing copied) if `dst` is shorter than the
    /// frame.
    #[inline]
    pub fn copy_to(&self, dst: &mut [u8]) -> Option<usize> {
        if dst.len() < self.len {
            return None;
        }
        let mut at = 0;
        for s in self.segs {
            let n = s.len as usize;
            // SAFETY: `s` was checked to lie inside a region the queue
            // keeps mapped for the whole burst; `dst[at..at + n]` is in
            // bounds because the segment lengths add up to `self.len <=
            // dst.len()`. The peer may write the source concurrently; we
            // copy through raw pointers and never form a reference to it.
            unsafe { ptr::copy_nonoverlapping(s.ptr, dst.as_mut_ptr().add(at), n) };
            at += n;
        }
        Some(self.len)
    }
    /// The frame copied into a new vector (convenience; allocates).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len];
        self.copy_to(&mut v);
        v
    }
}

/// Per-burst receive tallies, added to the queue's counters by the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxTally {
    /// Frames handed to the callback.
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Frames dropped: a descriptor named a region that does not exist.
    pub bad_region: u64,
    /// Frames dropped: a descriptor's offset + length is outside its region.
    pub bad_offset: u64,
    /// Frames dropped: a descriptor longer than a buffer.
    pub bad_length: u64,
    /// Frames dropped: longer in all than the frame limit.
    pub oversize: u64,
    /// Frames dropped: zero bytes.
    pub empty: u64,
}

/// Limits a receiver applies to what the peer wrote.
#[derive(Clone, Copy, Debug)]
pub struct RxLimits {
    /// Largest descriptor length (the buffer size, when known).
    pub max_seg: u32,
    /// Largest frame.
    pub max_frame: u32,
}

/// Cursor state of a receiving ring, owned by the one queue using it.
#[derive(Clone, Copy, Debug, Default)]
pub struct RxCursor {
    /// Next descriptor to read (our copy of what we consumed).
    pub cursor: u16,
    /// Client side (M2S): how far we posted buffers (our copy of `head`).
    pub posted: u16,
}

/// Where a client's M2S ring gets its buffers when it posts them again.
#[derive(Clone, Copy, Debug)]
pub struct Refill {
    /// Region of the buffers.
    pub region: u16,
    /// Offset of the ring's first buffer.
    pub base: u64,
    /// Bytes per buffer.
    pub buffer_size: u32,
}

/// A ring being received from, with what checking it needs.
pub(crate) struct RxRing<'a> {
    /// The connection's regions.
    pub regions: &'a [Region],
    /// The ring.
    pub ring: &'a Ring,
    /// `None`: the server reading an S2M ring (the peer's `head` is the
    /// limit, we write `tail`). `Some`: the client reading an M2S ring (the
    /// peer's `tail` is the limit, and we post the consumed slots again by
    /// advancing `head`).
    pub refill: Option<&'a Refill>,
    /// Limits on what the peer wrote.
    pub lim: &'a RxLimits,
}

/// Receives up to `max` frames from `rr` into `f`, which returns false to
/// stop and leave the frame in the ring. Returns the frames passed to `f`
/// and accepted.
pub(crate) fn receive<F: FnMut(RxFrame<'_>) -> bool>(
    rr: &RxRing<'_>,
    st: &mut RxCursor,
    scratch: &mut [Seg; crate::MAX_CHAIN],
    max: usize,
    tally: &mut RxTally,
    mut f: F,
) -> Result<usize, Fault> {
    let RxRing { regions, ring, refill, lim } = *rr;
    let size = ring.size();
    let (produced, limit) = match refill {
        None => (ring.head(), size),
        // What we posted (never more than the ring: `posted - cursor` is
        // our own state, but clamp it all the same).
        Some(_) => (ring.tail(), st.posted.wrapping_sub(st.cursor).min(size)),
    };
    let avail = produced.wrapping_sub(st.cursor);
    if avail > limit {
        return Err(Fault::Overrun { peer: produced, local: st.cursor, limit });
    }
    let mut done: u16 = 0;
    let mut frames = 0;
    'frames: while frames < max && done < avail {
        let mut n: usize = 0;
        let mut total: u64 = 0;
        let mut bad: Option<&mut u64> = None;
        loop {
            if usize::from(done) + n == usize::from(avail) {
                // The chain goes on past what is published. If everything
                // the peer may publish is published, it never ends.
                if avail == limit {
                    return Err(Fault::UnterminatedChain);
                }
                break 'frames;
            }
            if n == crate::MAX_CHAIN {
                return Err(Fault::ChainTooLong);
            }
            let d = ring.desc(st.cursor.wrapping_add(done).wrapping_add(n as u16));
            n += 1;
            if bad.is_none() {
                match regions.get(usize::from(d.region)) {
                    None => bad = Some(&mut tally.bad_region),
                    Some(_) if d.length > lim.max_seg => bad = Some(&mut tally.bad_length),
                    Some(r) => match r.ptr_at(u64::from(d.offset), u64::from(d.length)) {
                        None => bad = Some(&mut tally.bad_offset),
                        Some(p) => {
                            scratch[n - 1] = Seg { ptr: p.as_ptr(), len: d.length };
                            total += u64::from(d.length);
                        }
                    },
                }
            }
            if d.flags & DESC_FLAG_NEXT == 0 {
                break;
            }
        }
        let used = n as u16;
        if let Some(c) = bad {
            *c += 1;
        } else if total > u64::from(lim.max_frame) {
            tally.oversize += 1;
        } else if total == 0 {
            tally.empty += 1;
        } else {
            if !f(RxFrame { segs: &scratch[..n], len: total as usize }) {
                break;
            }
            frames += 1;
            tally.frames += 1;
            tally.bytes += total;
        }
        done += used;
    }
    st.cursor = st.cursor.wrapping_add(done);
    match refill {
        None => {
            if done > 0 {
                ring.set_tail(st.cursor);
            }
        }
        Some(rf) => {
            // Post again every slot that holds nothing unconsumed.
            let target = st.cursor.wrapping_add(size);
            let mut s = st.posted;
            while s != target {
                let off = rf.base + u64::from(s & (size - 1)) * u64::from(rf.buffer_size);
                ring.set_desc(
                    s,
                    Desc { flags: 0, region: rf.region, length: rf.buffer_size, offset: off as u32, metadata: 0 },
                );
                s = s.wrapping_add(1);
            }
            if st.posted != target {
                st.posted = target;
                ring.set_head(target);
            }
        }
    }
    Ok(frames)
}

/// Per-burst transmit tallies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxTally {
    /// Frames put in the ring.
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Frames refused: empty, longer than the frame limit, or needing more
    /// than [`crate::MAX_CHAIN`] descriptors.
    pub bad_length: u64,
    /// Bursts cut short because the ring had no room.
    pub ring_full: u64,
}

/// Transmit state of a client on an S2M ring: it owns the buffers.
#[derive(Clone, Copy, Debug)]
pub struct OwnBuffers {
    /// Region of the buffers.
    pub region: u16,
    /// Offset of the ring's first buffer.
    pub base: u64,
    /// Bytes per buffer.
    pub buffer_size: u32,
}

/// Client side: copies frames into our own buffers of an S2M ring and
/// advances `head` (our copy in `head`). Returns how many frames were
/// taken from the front of `frames` (sent or refused for their length);
/// the rest did not fit.
pub(crate) fn send_own<'a, I: IntoIterator<Item = &'a [u8]>>(
    regions: &[Region],
    ring: &Ring,
    head: &mut u16,
    own: &OwnBuffers,
    max_frame: u32,
    frames: I,
    tally: &mut TxTally,
) -> Result<usize, Fault> {
    let size = ring.size();
    let tail = ring.tail();
    let used = head.wrapping_sub(tail);
    if used > size {
        return Err(Fault::Overrun { peer: tail, local: *head, limit: size });
    }
    let region = &regions[usize::from(own.region)];
    let bs = own.buffer_size as usize;
    let mut free = size - used;
    let mut slot = *head;
    let mut taken = 0;
    for frame in frames {
        let len = frame.len();
        let need = len.div_ceil(bs);
        if len == 0 || len > max_frame as usize || need > crate::MAX_CHAIN {
            tally.bad_length += 1;
            taken += 1;
            continue;
        }
        if need > usize::from(free) {
            tally.ring_full += 1;
            break;
        }
        for (i, piece) in frame.chunks(bs).enumerate() {
            let s = slot.wrapping_add(i as u16);
            let off = own.base + u64::from(s & (size - 1)) * own.buffer_size as u64;
            // Our own layout: always inside, but checked all the same.
            if !region.write(off, piece) {
                return Err(Fault::BadPostedBuffer { slot: s });
            }
            let flags = if i + 1 < need { DESC_FLAG_NEXT } else { 0 };
            ring.set_desc(
                s,
                Desc { flags, region: own.region, length: piece.len() as u32, offset: off as u32, metadata: 0 },
            );
        }
        slot = slot.wrapping_add(need as u16);
        free -= need as u16;
        taken += 1;
        tally.frames += 1;
        tally.bytes += len as u64;
    }
    if slot != *head {
        *head = slot;
        ring.set_head(slot);
    }
    Ok(taken)
}

/// Server side: copies frames into the buffers the client posted on an
/// M2S ring (checking each) and advances `tail` (our copy in `tail`).
/// Returns how many frames were taken from the front of `frames`.
pub(crate) fn send_posted<'a, I: IntoIterator<Item = &'a [u8]>>(
    regions: &[Region],
    ring: &Ring,
    tail: &mut u16,
    max_frame: u32,
    scratch: &mut [Seg; crate::MAX_CHAIN],
    frames: I,
    tally: &mut TxTally,
) -> Result<usize, Fault> {
    let size = ring.size();
    let head = ring.head();
    let posted = head.wrapping_sub(*tail);
    if posted > size {
        return Err(Fault::Overrun { peer: head, local: *tail, limit: size });
    }
    let mut free = posted;
    let mut slot = *tail;
    let mut taken = 0;
    'frames: for frame in frames {
        let len = frame.len();
        if len == 0 || len > max_frame as usize {
            tally.bad_length += 1;
            taken += 1;
            continue;
        }
        // Plan: gather enough posted buffers, checking each, before
        // writing anything (so a frame that does not fit changes nothing).
        let mut n = 0usize;
        let mut room = 0usize;
        while room < len {
            if n == usize::from(free) {
                tally.ring_full += 1;
                break 'frames;
            }
            if n == crate::MAX_CHAIN {
                tally.bad_length += 1;
                taken += 1;
                continue 'frames;
            }
            let s = slot.wrapping_add(n as u16);
            let d = ring.desc(s);
            let p = match regions.get(usize::from(d.region)) {
                Some(r) if d.length > 0 && d.length <= crate::MAX_BUFFER_SIZE => {
                    r.ptr_at(u64::from(d.offset), u64::from(d.length))
                }
                _ => None,
            };
            let Some(p) = p else { return Err(Fault::BadPostedBuffer { slot: s }) };
            scratch[n] = Seg { ptr: p.as_ptr(), len: d.length };
            room += d.length as usize;
            n += 1;
        }
        let mut at = 0;
        for (i, seg) in scratch[..n].iter().enumerate() {
            let piece = (len - at).min(seg.len as usize);
            // SAFETY: `seg` was checked to lie inside a live region and to
            // have `seg.len >= piece` bytes; `frame[at..at + piece]` is in
            // bounds since the pieces add up to `len`.
            unsafe { ptr::copy_nonoverlapping(frame.as_ptr().add(at), seg.ptr as *mut u8, piece) };
            at += piece;
            let flags = if i + 1 < n { DESC_FLAG_NEXT } else { 0 };
            ring.set_len_flags(slot.wrapping_add(i as u16), piece as u32, flags);
        }
        slot = slot.wrapping_add(n as u16);
        free -= n as u16;
        taken += 1;
        tally.frames += 1;
        tally.bytes += len as u64;
    }
    if slot != *tail {
        *tail = slot;
        ring.set_tail(slot);
    }
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::Layout;

    /// Region 0 laid out like a client's, one ring each way, rings
    /// initialised and S2M/M2S descriptors pointing at their buffers.
    fn setup(log2: u8, bs: u32) -> (Vec<Region>, Ring, Ring, Layout) {
        let l = Layout { s2m_rings: 1, m2s_rings: 1, log2_ring_size: log2, buffer_size: bs };
        let r = Region::heap(l.region_size() as usize);
        let s2m = Ring::new(&r, l.ring_offset(true, 0), log2).unwrap();
        let m2s = Ring::new(&r, l.ring_offset(false, 0), log2).unwrap();
        s2m.init_header();
        m2s.init_header();
        (vec![r], s2m, m2s, l)
    }

    fn own(l: &Layout, s2m: bool) -> OwnBuffers {
        OwnBuffers { region: 0, base: l.ring_buffers(s2m, 0), buffer_size: l.buffer_size }
    }

    fn recv_all(
        regions: &[Region],
        ring: &Ring,
        st: &mut RxCursor,
        refill: Option<&Refill>,
    ) -> (Vec<Vec<u8>>, RxTally) {
        let mut sc = scratch();
        let mut t = RxTally::default();
        let mut out = Vec::new();
        let lim = RxLimits { max_seg: crate::MAX_BUFFER_SIZE, max_frame: 65535 };
        receive(&RxRing { regions, ring, refill, lim: &lim }, st, &mut sc, usize::MAX, &mut t, |f| {
            out.push(f.to_vec());
            true
        })
        .unwrap();
        (out, t)
    }

    #[test]
    fn s2m_frames_and_chains_arrive_intact() {
        let (regions, s2m, _, l) = setup(8, 256);
        let mut head = 0u16;
        let frames: Vec<Vec<u8>> = [1usize, 60, 255, 256, 257, 1000, 4000]
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        let mut t = TxTally::default();
        let n =
            send_own(&regions, &s2m, &mut head, &own(&l, true), 65535, frames.iter().map(|f| &f[..]), &mut t).unwrap();
        assert_eq!(n, frames.len());
        assert_eq!(s2m.head(), head);
        let mut st = RxCursor::default();
        let (got, tally) = recv_all(&regions, &s2m, &mut st, None);
        assert_eq!(got, frames);
        assert_eq!(tally.frames, 7);
        assert_eq!(s2m.tail(), head);
    }

    #[test]
    fn m2s_posting_filling_and_reposting() {
        let (regions, _, m2s, l) = setup(8, 512);
        let refill = Refill { region: 0, base: l.ring_buffers(false, 0), buffer_size: 512 };
        let mut client = RxCursor::default();
        // Nothing posted yet: the first receive posts the whole ring.
        let (got, _) = recv_all(&regions, &m2s, &mut client, Some(&refill));
        assert!(got.is_empty());
        assert_eq!(m2s.head(), 256);
        let mut tail = 0u16;
        let mut sc = scratch();
        let mut t = TxTally::default();
        let big = vec![0xabu8; 1500];
        let small = vec![1u8, 2, 3];
        let frames = [&big[..], &small[..]];
        assert_eq!(send_posted(&regions, &m2s, &mut tail, 65535, &mut sc, frames, &mut t).unwrap(), 2);
        assert_eq!(tail, 4); // 3 buffers for 1500 bytes, 1 for 3
        let (got, _) = recv_all(&regions, &m2s, &mut client, Some(&refill));
        assert_eq!(got, vec![big.clone(), small.clone()]);
        assert_eq!(m2s.head(), 260);
        // Fill the whole ring: 256 one-buffer frames fit, the next not.
        let many = vec![&small[..]; 300];
        let n = send_posted(&regions, &m2s, &mut tail, 65535, &mut sc, many, &mut t).unwrap();
        assert_eq!(n, 256);
        assert_eq!(t.ring_full, 1);
    }

    #[test]
    fn ring_full_on_s2m_until_consumed() {
        let (regions, s2m, _, l) = setup(8, 128);
        let mut head = 0;
        let f = [0u8; 100];
        let mut t = TxTally::default();
        assert_eq!(send_own(&regions, &s2m, &mut head, &own(&l, true), 65535, vec![&f[..]; 300], &mut t).unwrap(), 256);
        // A 2-segment frame does not fit in 1 free slot.
        let mut st = RxCursor::default();
        let mut sc = scratch();
        let lim = RxLimits { max_seg: 128, max_frame: 65535 };
        let mut n = 0;
        receive(
            &RxRing { regions: &regions, ring: &s2m, refill: None, lim: &lim },
            &mut st,
            &mut sc,
            1,
            &mut RxTally::default(),
            |_| {
                n += 1;
                true
            },
        )
        .unwrap();
        assert_eq!(n, 1);
        let f2 = [0u8; 200];
        assert_eq!(send_own(&regions, &s2m, &mut head, &own(&l, true), 65535, [&f2[..]], &mut t).unwrap(), 0);
        assert_eq!(send_own(&regions, &s2m, &mut head, &own(&l, true), 65535, [&f[..]], &mut t).unwrap(), 1);
    }

    #[test]
    fn hostile_descriptors_cost_only_their_frame() {
        let (regions, s2m, _, l) = setup(8, 256);
        let good = |i: u16| Desc {
            flags: 0,
            region: 0,
            length: 10,
            offset: l.ring_buffers(true, 0) as u32 + u32::from(i) * 256,
            metadata: 0,
        };
        s2m.set_desc(0, Desc { region: 7, ..good(0) });
        s2m.set_desc(1, Desc { offset: regions[0].len() as u32 - 5, ..good(1) });
        s2m.set_desc(2, Desc { offset: u32::MAX, ..good(2) });
        s2m.set_desc(3, Desc { length: 70000, ..good(3) });
        s2m.set_desc(4, Desc { length: 0, ..good(4) });
        s2m.set_desc(5, good(5));
        // A chain whose second piece is bad: both descriptors go.
        s2m.set_desc(6, Desc { flags: DESC_FLAG_NEXT, ..good(6) });
        s2m.set_desc(7, Desc { region: 1, ..good(7) });
        s2m.set_desc(8, good(8));
        s2m.set_head(9);
        let mut st = RxCursor::default();
        let (got, t) = recv_all(&regions, &s2m, &mut st, None);
        assert_eq!(got.len(), 2);
        assert_eq!((t.bad_region, t.bad_offset, t.bad_length, t.empty), (2, 2, 1, 1));
        assert_eq!(st.cursor, 9);
        assert_eq!(s2m.tail(), 9);
    }

    #[test]
    fn ring_discipline_faults() {
        let (regions, s2m, m2s, l) = setup(8, 256);
        let mut sc = scratch();
        let lim = RxLimits { max_seg: 256, max_frame: 65535 };
        let run = |ring: &Ring, st: &mut RxCursor, refill: Option<&Refill>, sc: &mut [Seg; crate::MAX_CHAIN]| {
            receive(
                &RxRing { regions: &regions, ring, refill, lim: &lim },
                st,
                sc,
                usize::MAX,
                &mut RxTally::default(),
                |_| true,
            )
        };
        // head - tail > size.
        s2m.set_head(257);
        assert!(matches!(run(&s2m, &mut RxCursor::default(), None, &mut sc), Err(Fault::Overrun { .. })));
        // Every published descriptor has NEXT: never ends.
        for i in 0..256u16 {
            s2m.set_desc(
                i,
                Desc { flags: DESC_FLAG_NEXT, region: 0, length: 1, offset: l.buffer_offset() as u32, metadata: 0 },
            );
        }
        s2m.set_head(256);
        assert_eq!(run(&s2m, &mut RxCursor::default(), None, &mut sc), Err(Fault::UnterminatedChain));
        // ...but a partly published chain is just waited for.
        s2m.set_head(10);
        let mut st = RxCursor::default();
        assert_eq!(run(&s2m, &mut st, None, &mut sc), Ok(0));
        assert_eq!(st.cursor, 0);
        // M2S: the server filled more than was posted.
        let refill = Refill { region: 0, base: l.ring_buffers(false, 0), buffer_size: 256 };
        let mut cst = RxCursor { cursor: 0, posted: 4 };
        m2s.set_tail(5);
        assert!(matches!(run(&m2s, &mut cst, Some(&refill), &mut sc), Err(Fault::Overrun { .. })));
        // Client transmit: the server's tail ahead of our head.
        let mut head = 3u16;
        s2m.set_tail(10);
        let r = send_own(&regions, &s2m, &mut head, &own(&l, true), 65535, [&[1u8][..]], &mut TxTally::default());
        assert!(matches!(r, Err(Fault::Overrun { .. })));
        // Server transmit: a posted buffer outside the region.
        m2s.set_desc(0, Desc { flags: 0, region: 0, length: 2048, offset: regions[0].len() as u32 - 100, metadata: 0 });
        m2s.set_head(1);
        let mut tail = 0;
        let r = send_posted(&regions, &m2s, &mut tail, 65535, &mut sc, [&[1u8][..]], &mut TxTally::default());
        assert_eq!(r, Err(Fault::BadPostedBuffer { slot: 0 }));
        assert_eq!(tail, 0);
    }

    #[test]
    fn chain_too_long_is_a_fault() {
        let l = Layout { s2m_rings: 1, m2s_rings: 0, log2_ring_size: 10, buffer_size: 64 };
        let r = Region::heap(l.region_size() as usize);
        let ring = Ring::new(&r, 0, 10).unwrap();
        ring.init_header();
        for i in 0..1000u16 {
            ring.set_desc(
                i,
                Desc { flags: DESC_FLAG_NEXT, region: 0, length: 1, offset: l.buffer_offset() as u32, metadata: 0 },
            );
        }
        ring.set_head(1000);
        let regions = vec![r];
        let mut sc = scratch();
        let lim = RxLimits { max_seg: 64, max_frame: 65535 };
        let rr = RxRing { regions: &regions, ring: &ring, refill: None, lim: &lim };
        let r = receive(&rr, &mut RxCursor::default(), &mut sc, 8, &mut RxTally::default(), |_| true);
        assert_eq!(r, Err(Fault::ChainTooLong));
    }

    #[test]
    fn receiver_can_leave_a_frame_in_the_ring() {
        let (regions, s2m, _, l) = setup(8, 256);
        let mut head = 0;
        let f = [5u8; 10];
        send_own(&regions, &s2m, &mut head, &own(&l, true), 65535, vec![&f[..]; 3], &mut TxTally::default()).unwrap();
        let mut st = RxCursor::default();
        let mut sc = scratch();
        let lim = RxLimits { max_seg: 256, max_frame: 65535 };
        let mut seen = 0;
        let rr = RxRing { regions: &regions, ring: &s2m, refill: None, lim: &lim };
        let n = receive(&rr, &mut st, &mut sc, 10, &mut RxTally::default(), |_| {
            seen += 1;
            seen < 2
        })
        .unwrap();
        assert_eq!((n, seen, st.cursor, s2m.tail()), (1, 2, 1, 1));
    }

    #[test]
    fn indices_wrap_around_u16() {
        let (regions, s2m, _, l) = setup(8, 256);
        let start = 65500u16;
        s2m.set_head(start);
        s2m.set_tail(start);
        let mut head = start;
        let mut st = RxCursor { cursor: start, posted: 0 };
        let f: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        for _ in 0..100 {
            send_own(&regions, &s2m, &mut head, &own(&l, true), 65535, vec![&f[..]; 3], &mut TxTally::default())
                .unwrap();
            let (got, _) = recv_all(&regions, &s2m, &mut st, None);
            assert_eq!(got, vec![f.clone(); 3]);
        }
        assert!(head < start);
    }

    #[test]
    fn ring_header_offsets() {
        let r = Region::heap(ring_bytes(8));
        let ring = Ring::new(&r, 0, 8).unwrap();
        ring.init_header();
        ring.set_flags(RING_FLAG_MASK_INT);
        ring.set_head(0x1234);
        ring.set_tail(0x5678);
        ring.set_desc(1, Desc { flags: 1, region: 2, length: 3, offset: 4, metadata: 5 });
        let mut b = vec![0u8; 128 + 32];
        assert!(r.read(0, &mut b));
        assert_eq!(&b[0..4], &0x3E31F20u32.to_le_bytes());
        assert_eq!(&b[4..6], &[1, 0]);
        assert_eq!(&b[6..8], &[0x34, 0x12]);
        assert_eq!(&b[64..66], &[0x78, 0x56]);
        assert_eq!(&b[144..160], &[1, 0, 2, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(ring.cookie(), crate::COOKIE);
    }
}
