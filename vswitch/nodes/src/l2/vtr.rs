//! VLAN tag rewrite on L2 frames, in place using the buffer's headroom.
//!
//! Input rewrite pops `pop` tags and pushes `push`; output does the
//! inverse, so a frame that enters a sub-interface untagged by its rewrite
//! leaves it tagged again.

use crate::tables::{VlanRewrite, VlanTags};
use vswitch_packet::{Buffers, PacketId};
use vswitch_wire::ethertype;

/// Why a rewrite could not be applied (the frame is unchanged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VtrError {
    /// The frame has fewer tags than the rewrite pops.
    MissingTag,
    /// No headroom for the tags to push.
    NoHeadroom,
}

/// Number of VLAN tags at the front of an Ethernet frame (up to 2).
fn tag_count(frame: &[u8]) -> usize {
    let mut n = 0;
    let mut at = 12;
    while n < 2 && frame.len() >= at + 6 && ethertype::is_vlan(u16::from_be_bytes([frame[at], frame[at + 1]])) {
        n += 1;
        at += 4;
    }
    n
}

/// Removes `n` tags after the MAC addresses.
pub fn pop(bufs: &mut Buffers, p: PacketId, n: usize) -> Result<(), VtrError> {
    if n == 0 {
        return Ok(());
    }
    let data = bufs.data_mut(p);
    if tag_count(data) < n {
        return Err(VtrError::MissingTag);
    }
    data.copy_within(0..12, 4 * n);
    bufs.pull_front(p, 4 * n);
    let m = bufs.meta_mut(p);
    m.l2 = m.current;
    Ok(())
}

/// Inserts `tags` (outer first) after the MAC addresses.
pub fn push(bufs: &mut Buffers, p: PacketId, tags: &VlanTags) -> Result<(), VtrError> {
    let n = tags.count as usize;
    if n == 0 {
        return Ok(());
    }
    let data = bufs.push_front(p, 4 * n).ok_or(VtrError::NoHeadroom)?;
    data.copy_within(4 * n..4 * n + 12, 0);
    let mut write = |at: usize, (tpid, vid): (u16, u16)| {
        data[at..at + 2].copy_from_slice(&tpid.to_be_bytes());
        data[at + 2..at + 4].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
    };
    write(12, tags.outer);
    if n == 2 {
        write(16, tags.inner);
    }
    let m = bufs.meta_mut(p);
    m.l2 = m.current;
    Ok(())
}

/// Rewrite on input: pop, then push. Changes nothing on error.
pub fn apply_input(bufs: &mut Buffers, p: PacketId, r: &VlanRewrite) -> Result<(), VtrError> {
    if tag_count(bufs.data(p)) < r.pop as usize {
        return Err(VtrError::MissingTag);
    }
    if (bufs.meta(p).current as usize) < 4 * r.push.count as usize {
        return Err(VtrError::NoHeadroom);
    }
    pop(bufs, p, r.pop as usize)?;
    push(bufs, p, &r.push)
}

/// Rewrite on output, the inverse of input: pop what input pushed, then
/// push back the interface's own tags that input popped.
pub fn apply_output(bufs: &mut Buffers, p: PacketId, r: &VlanRewrite, own_tags: &VlanTags) -> Result<(), VtrError> {
    pop(bufs, p, r.push.count as usize)?;
    let restore = match (r.pop, own_tags.count) {
        (0, _) => VlanTags::default(),
        (2, _) | (1, 1) => *own_tags,
        // Popped only the outer of two tags: restore the outer one.
        (1, _) => VlanTags { count: 1, outer: own_tags.outer, inner: (0, 0) },
        _ => VlanTags::default(),
    };
    push(bufs, p, &restore)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vswitch_packet::{BufferPool, BufferPoolConfig};

    fn frame(tags: &[(u16, u16)]) -> Vec<u8> {
        let mut f = vec![0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56];
        for (tpid, vid) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0x00]);
        f
    }

    fn with_packet(bytes: &[u8], f: impl FnOnce(&mut Buffers, PacketId)) {
        let pool = BufferPool::new(&BufferPoolConfig { buffers: 4, data_size: 512, prefer_huge: false }).unwrap();
        let mut b = pool.worker();
        let p = b.alloc().unwrap();
        assert!(b.write(p, bytes));
        f(&mut b, p);
        b.free(p);
    }

    #[test]
    fn push_then_pop_dot1q() {
        with_packet(&frame(&[]), |b, p| {
            push(b, p, &VlanTags::dot1q(100)).unwrap();
            assert_eq!(b.data(p), &frame(&[(0x8100, 100)])[..]);
            pop(b, p, 1).unwrap();
            assert_eq!(b.data(p), &frame(&[])[..]);
        });
    }

    #[test]
    fn push_qinq_outer_first() {
        with_packet(&frame(&[]), |b, p| {
            push(b, p, &VlanTags::qinq(10, 20)).unwrap();
            assert_eq!(b.data(p), &frame(&[(0x88a8, 10), (0x8100, 20)])[..]);
        });
    }

    #[test]
    fn pop_without_tag_fails_and_changes_nothing() {
        let f = frame(&[(0x8100, 5)]);
        with_packet(&f, |b, p| {
            assert_eq!(pop(b, p, 2), Err(VtrError::MissingTag));
            assert_eq!(b.data(p), &f[..]);
            let r = VlanRewrite { pop: 2, push: VlanTags::default() };
            assert_eq!(apply_input(b, p, &r), Err(VtrError::MissingTag));
            assert_eq!(b.data(p), &f[..]);
        });
    }

    #[test]
    fn translate_one_to_one_and_back() {
        // Sub-interface with tag 100, rewritten to tag 200 inside the bridge.
        let r = VlanRewrite { pop: 1, push: VlanTags::dot1q(200) };
        with_packet(&frame(&[(0x8100, 100)]), |b, p| {
            apply_input(b, p, &r).unwrap();
            assert_eq!(b.data(p), &frame(&[(0x8100, 200)])[..]);
            apply_output(b, p, &r, &VlanTags::dot1q(100)).unwrap();
            assert_eq!(b.data(p), &frame(&[(0x8100, 100)])[..]);
        });
    }

    #[test]
    fn pop_outer_of_qinq_and_restore() {
        let own = VlanTags::qinq(10, 20);
        let r = VlanRewrite { pop: 1, push: VlanTags::default() };
        with_packet(&frame(&[(0x88a8, 10), (0x8100, 20)]), |b, p| {
            apply_input(b, p, &r).unwrap();
            assert_eq!(b.data(p), &frame(&[(0x8100, 20)])[..]);
            apply_output(b, p, &r, &own).unwrap();
            assert_eq!(b.data(p), &frame(&[(0x88a8, 10), (0x8100, 20)])[..]);
        });
    }
}
