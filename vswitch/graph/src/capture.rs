//! Packet capture (VPP's `pcap trace rx tx drop max N intfc X`): copies of
//! the packets a worker receives, transmits or drops on one interface (or
//! all), taken into memory set aside when the capture starts.
//!
//! The control thread builds one [`CaptureBuffer`] per worker (records and
//! a byte arena of `max` packets of up to `snaplen` bytes, allocated and
//! touched there), hands it to the worker's graph through the worker's
//! command channel ([`Graph::start_capture`](crate::Graph::start_capture))
//! and takes it back the same way when the capture stops. On the data path
//! a capture point costs one predictable branch per vector or per packet
//! while no capture runs ([`Cx::capturing`](crate::Cx::capturing)); while
//! one runs, a matching packet costs a copy of up to `snaplen` bytes, a
//! push into a vector that never grows, and one relaxed atomic add on the
//! counter the workers share, which ends the capture everywhere after
//! `max` packets. No allocation, lock, syscall or formatting per packet.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vswitch_packet::{Buffers, PacketId};

/// Where a packet was captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CaptureDir {
    /// Received from a port, as it enters the graph (the port's input node).
    Rx = 1,
    /// Handed to a port for transmission (interface-output).
    Tx = 2,
    /// Dropped anywhere in the graph (matched by its receiving interface).
    Drop = 4,
}

impl CaptureDir {
    /// The direction's bit in [`CaptureSpec::dirs`].
    #[inline(always)]
    pub const fn bit(self) -> u8 {
        self as u8
    }

    /// `rx`, `tx` or `drop`.
    pub const fn name(self) -> &'static str {
        match self {
            CaptureDir::Rx => "rx",
            CaptureDir::Tx => "tx",
            CaptureDir::Drop => "drop",
        }
    }
}

impl fmt::Display for CaptureDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The interface filter that matches every interface.
pub const CAPTURE_ANY: u32 = u32::MAX;

/// What a capture takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureSpec {
    /// The interface (sw_if) to capture on, or [`CAPTURE_ANY`]. Drops match
    /// by the interface the packet was received on.
    pub sw_if: u32,
    /// [`CaptureDir`] bits.
    pub dirs: u8,
    /// Packets to take over all workers; the capture ends after that many.
    pub max: u32,
    /// Bytes kept of each packet (the rest is cut off, its length noted).
    pub snaplen: u32,
}

impl CaptureSpec {
    /// Whether `dir` is captured.
    pub fn has(&self, dir: CaptureDir) -> bool {
        self.dirs & dir.bit() != 0
    }

    /// Arena bytes one worker needs for `max` packets when no packet is
    /// longer than `max_packet` bytes (a buffer's size).
    pub fn arena_bytes(&self, max_packet: usize) -> usize {
        self.max as usize * (self.snaplen as usize).min(max_packet)
    }

    /// Memory one worker sets aside: the arena and the records.
    pub fn worker_bytes(&self, max_packet: usize) -> usize {
        self.arena_bytes(max_packet) + self.max as usize * std::mem::size_of::<CaptureRecord>()
    }
}

/// One captured packet (its bytes: [`CaptureBuffer::bytes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureRecord {
    /// When: the TSC (`vswitch_packet::clock::now`) at the start of the
    /// call of the node that captured it.
    pub time: u64,
    /// The interface: received on (rx, drop) or sent by (tx).
    pub sw_if: u32,
    /// Where it was taken.
    pub dir: CaptureDir,
    /// The packet's whole length.
    pub orig_len: u32,
    /// The node that captured it (for drops: the node that dropped it).
    pub node: &'static str,
    /// Why it was dropped (the node's error description); empty for rx/tx.
    pub reason: &'static str,
    offset: u32,
    len: u32,
}

/// One worker's capture: the filter, the shared packet count, and the
/// records and bytes preallocated for `max` packets.
pub struct CaptureBuffer {
    spec: CaptureSpec,
    taken: Arc<AtomicU64>,
    records: Vec<CaptureRecord>,
    arena: Vec<u8>,
    used: usize,
    no_room: u64,
}

impl CaptureBuffer {
    /// A worker's buffer for `spec`, for packets of at most `max_packet`
    /// bytes (the buffer size). `taken` counts packets over all workers.
    /// Everything is allocated and its pages touched here, on the calling
    /// (control) thread, so the worker never allocates or page-faults.
    pub fn new(spec: CaptureSpec, taken: Arc<AtomicU64>, max_packet: usize) -> CaptureBuffer {
        // A non-zero fill: a zero fill may become a lazily mapped calloc.
        let arena = vec![0xa5u8; spec.arena_bytes(max_packet)];
        let records = Vec::with_capacity(spec.max as usize);
        CaptureBuffer { spec, taken, records, arena, used: 0, no_room: 0 }
    }

    /// What this buffer captures.
    pub fn spec(&self) -> &CaptureSpec {
        &self.spec
    }

    /// The records, in the order they were taken.
    pub fn records(&self) -> &[CaptureRecord] {
        &self.records
    }

    /// The captured bytes of a record of this buffer.
    pub fn bytes(&self, r: &CaptureRecord) -> &[u8] {
        &self.arena[r.offset as usize..(r.offset + r.len) as usize]
    }

    /// Matching packets not taken because the arena was full (a packet
    /// longer than the `max_packet` the buffer was sized for).
    pub fn no_room(&self) -> u64 {
        self.no_room
    }

    /// Copies packet `p` when it matches the interface filter. Returns
    /// `false` when the capture is complete (over all workers) and this
    /// worker should stop capturing.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn take(
        &mut self,
        bufs: &Buffers,
        p: PacketId,
        dir: CaptureDir,
        sw_if: u32,
        time: u64,
        node: &'static str,
        reason: &'static str,
    ) -> bool {
        if self.spec.sw_if != CAPTURE_ANY && self.spec.sw_if != sw_if {
            return true;
        }
        let n = self.taken.fetch_add(1, Ordering::Relaxed);
        if n >= self.spec.max as u64 {
            return false;
        }
        let data = bufs.data(p);
        let len = data.len().min(self.spec.snaplen as usize);
        let end = self.used + len;
        if self.records.len() == self.records.capacity() || end > self.arena.len() {
            // Sized for `max` packets of `max_packet` bytes: unreachable
            // unless a packet outgrew its buffer size. Not allocating more.
            self.no_room += 1;
            return true;
        }
        self.arena[self.used..end].copy_from_slice(&data[..len]);
        self.records.push(CaptureRecord {
            time,
            sw_if,
            dir,
            orig_len: data.len() as u32,
            node,
            reason,
            offset: self.used as u32,
            len: len as u32,
        });
        self.used = end;
        n + 1 < self.spec.max as u64
    }
}

impl fmt::Debug for CaptureBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureBuffer")
            .field("spec", &self.spec)
            .field("records", &self.records.len())
            .field("arena", &self.arena.len())
            .field("used", &self.used)
            .finish()
    }
}

/// The capture as the graph's core holds it: the directions still being
/// captured (what capture points test) and the buffer.
#[derive(Default)]
pub(crate) struct CaptureState {
    /// [`CaptureDir`] bits; 0 when no capture runs or this worker's part
    /// of it ended.
    pub(crate) mask: u8,
    pub(crate) buffer: Option<CaptureBuffer>,
}

impl CaptureState {
    /// Takes packet `p` into the capture (when `dir` is being captured and
    /// the interface matches); the capture ends here when it is complete.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn take(
        &mut self,
        bufs: &Buffers,
        p: PacketId,
        dir: CaptureDir,
        sw_if: u32,
        time: u64,
        node: &'static str,
        reason: &'static str,
    ) {
        if self.mask & dir.bit() == 0 {
            return;
        }
        let more = match self.buffer.as_mut() {
            Some(b) => b.take(bufs, p, dir, sw_if, time, node, reason),
            None => false,
        };
        if !more {
            self.mask = 0;
        }
    }

    pub(crate) fn start(&mut self, buffer: CaptureBuffer) -> Option<CaptureBuffer> {
        let old = self.stop();
        self.mask = buffer.spec.dirs & (CaptureDir::Rx.bit() | CaptureDir::Tx.bit() | CaptureDir::Drop.bit());
        if buffer.spec.max == 0 || buffer.taken.load(Ordering::Relaxed) >= buffer.spec.max as u64 {
            self.mask = 0;
        }
        self.buffer = Some(buffer);
        old
    }

    pub(crate) fn stop(&mut self) -> Option<CaptureBuffer> {
        self.mask = 0;
        self.buffer.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{errors, next_arcs, Cx, GraphBuilder, Node};
    use vswitch_packet::{BufferPool, BufferPoolConfig};

    next_arcs! { enum InNext { #[allow(dead_code)] Unused = "error-drop" } }
    errors! { enum InError { Bad = "first byte is 0xff" } }

    /// An input node: the first byte is the interface; 0xff is dropped,
    /// the rest captured as received and transmitted on port 0.
    struct In;
    impl Node<()> for In {
        const NAME: &'static str = "in";
        type Next = InNext;
        type Error = InError;
        fn process(&mut self, cx: &mut Cx<'_, (), Self>, vector: &[PacketId]) {
            let (rx, tx) = (cx.capturing(CaptureDir::Rx), cx.capturing(CaptureDir::Tx));
            for &p in vector {
                let b = cx.bufs.data(p)[0];
                cx.bufs.meta_mut(p).rx_if = b as u32;
                if b == 0xff {
                    cx.discard(p, InError::Bad);
                    continue;
                }
                if rx {
                    cx.capture(p, CaptureDir::Rx, b as u32);
                }
                if tx {
                    cx.capture(p, CaptureDir::Tx, 7);
                }
                cx.transmit(if b == 0xfe { 9 } else { 0 }, p);
            }
        }
    }

    struct Fixture {
        pool: Arc<BufferPool>,
        bufs: Buffers,
        graph: crate::Graph<()>,
    }

    fn fixture() -> Fixture {
        let pool = BufferPool::new(&BufferPoolConfig { buffers: 64, data_size: 2048, prefer_huge: false }).unwrap();
        let graph = GraphBuilder::new().node(In).ports(1).build().unwrap();
        Fixture { bufs: pool.worker(), pool, graph }
    }

    impl Fixture {
        fn send(&mut self, frames: &[&[u8]]) {
            let v: Vec<PacketId> = frames
                .iter()
                .map(|f| {
                    let p = self.bufs.alloc().unwrap();
                    assert!(self.bufs.write(p, f));
                    p
                })
                .collect();
            let input = self.graph.node_index("in").unwrap();
            self.graph.run(&mut self.bufs, &(), input, &v);
            let q = std::mem::take(self.graph.tx_queue(0));
            self.bufs.free_bulk(&q);
        }

        fn no_leak(&mut self) {
            self.bufs.flush();
            assert_eq!(self.pool.available(), self.pool.capacity());
        }
    }

    fn spec(sw_if: u32, dirs: &[CaptureDir], max: u32, snaplen: u32) -> CaptureSpec {
        CaptureSpec { sw_if, dirs: dirs.iter().fold(0, |a, d| a | d.bit()), max, snaplen }
    }

    #[test]
    fn nothing_is_captured_without_a_capture() {
        let mut f = fixture();
        assert!(!f.graph.capturing(CaptureDir::Rx) && f.graph.capture().is_none());
        f.send(&[&[1, 2, 3], &[0xff, 1]]);
        assert!(f.graph.stop_capture().is_none());
        assert_eq!(f.graph.stats().error("in", "first byte is 0xff"), 1);
        f.no_leak();
    }

    #[test]
    fn rx_tx_and_drops_on_one_interface_are_copied_up_to_snaplen() {
        let mut f = fixture();
        let taken = Arc::new(AtomicU64::new(0));
        let s = spec(1, &[CaptureDir::Rx, CaptureDir::Drop], 100, 4);
        assert!(f.graph.start_capture(CaptureBuffer::new(s.clone(), taken.clone(), 2048)).is_none());
        assert!(f.graph.capturing(CaptureDir::Rx) && !f.graph.capturing(CaptureDir::Tx));
        // Interface 2 is not captured; 0xff drops are (rx_if 0xff is not
        // interface 1 either, so only a drop seen on 1 counts: none here).
        f.send(&[&[1, 10, 11, 12, 13, 14], &[2, 20], &[1, 30], &[0xff, 40]]);
        let b = f.graph.stop_capture().unwrap();
        assert!(!f.graph.capturing(CaptureDir::Rx));
        let r = b.records();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].dir, r[0].sw_if, r[0].orig_len, r[0].node, r[0].reason), (CaptureDir::Rx, 1, 6, "in", ""));
        assert_eq!(b.bytes(&r[0]), &[1, 10, 11, 12]);
        assert_eq!(b.bytes(&r[1]), &[1, 30]);
        assert!(r[0].time <= r[1].time && r[0].time > 0);
        assert_eq!(taken.load(Ordering::Relaxed), 2);

        // Any interface, tx and drops: a drop carries its node and reason,
        // and a transmission on a port the graph lacks is a drop too.
        let s = spec(CAPTURE_ANY, &[CaptureDir::Tx, CaptureDir::Drop], 100, 9000);
        f.graph.start_capture(CaptureBuffer::new(s, Arc::new(AtomicU64::new(0)), 2048));
        f.send(&[&[3, 1], &[0xff, 2, 3], &[0xfe, 4]]);
        let b = f.graph.stop_capture().unwrap();
        let got: Vec<(CaptureDir, u32, &str, &[u8])> =
            b.records().iter().map(|r| (r.dir, r.sw_if, r.reason, b.bytes(r))).collect();
        assert_eq!(
            got,
            vec![
                (CaptureDir::Tx, 7, "", &[3, 1][..]),
                (CaptureDir::Drop, 0xff, "first byte is 0xff", &[0xff, 2, 3][..]),
                (CaptureDir::Tx, 7, "", &[0xfe, 4][..]),
                (CaptureDir::Drop, 0xfe, "no transmit queue for the port", &[0xfe, 4][..]),
            ]
        );
        assert!(b.records().iter().all(|r| r.node == "in"));
        f.no_leak();
    }

    #[test]
    fn the_capture_ends_after_max_packets_over_all_workers() {
        let (mut a, mut b) = (fixture(), fixture());
        let taken = Arc::new(AtomicU64::new(0));
        let s = spec(CAPTURE_ANY, &[CaptureDir::Rx], 3, 9000);
        a.graph.start_capture(CaptureBuffer::new(s.clone(), taken.clone(), 2048));
        b.graph.start_capture(CaptureBuffer::new(s, taken.clone(), 2048));
        a.send(&[&[1], &[2]]);
        b.send(&[&[3], &[4], &[5]]);
        // The third packet ended b's part; a ends at its next packet.
        assert!(!b.graph.capturing(CaptureDir::Rx));
        assert!(a.graph.capturing(CaptureDir::Rx));
        a.send(&[&[6]]);
        assert!(!a.graph.capturing(CaptureDir::Rx));
        assert_eq!(a.graph.capture().unwrap().records().len(), 2);
        let rb = b.graph.stop_capture().unwrap();
        assert_eq!(rb.records().len(), 1);
        assert_eq!(rb.bytes(&rb.records()[0]), &[3]);
        a.no_leak();
        b.no_leak();
    }

    next_arcs! { enum SpinNext { Again = "spin" } }
    errors! { enum SpinError { #[allow(dead_code)] Never = "never" } }

    /// Sends every packet back to itself: a forwarding loop.
    struct Spin;
    impl Node<()> for Spin {
        const NAME: &'static str = "spin";
        type Next = SpinNext;
        type Error = SpinError;
        fn process(&mut self, cx: &mut Cx<'_, (), Self>, vector: &[PacketId]) {
            for &p in vector {
                cx.enqueue(SpinNext::Again, p);
            }
        }
    }

    #[test]
    fn packets_cut_off_in_a_forwarding_loop_are_captured_as_drops() {
        let pool = BufferPool::new(&BufferPoolConfig { buffers: 8, data_size: 2048, prefer_huge: false }).unwrap();
        let mut bufs = pool.worker();
        let mut g = GraphBuilder::new().node(Spin).build().unwrap();
        let s = spec(CAPTURE_ANY, &[CaptureDir::Drop], 10, 9000);
        g.start_capture(CaptureBuffer::new(s, Arc::new(AtomicU64::new(0)), 2048));
        let p = bufs.alloc().unwrap();
        assert!(bufs.write(p, &[1, 2, 3]));
        bufs.meta_mut(p).rx_if = 5;
        let spin = g.node_index("spin").unwrap();
        g.run(&mut bufs, &(), spin, &[p]);
        assert_eq!(g.stats().loop_drops.get(), 1);
        let b = g.stop_capture().unwrap();
        let r = b.records();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].dir, r[0].sw_if, r[0].node, r[0].reason),
            (CaptureDir::Drop, 5, "spin", "forwarding loop in the graph")
        );
        assert_eq!(b.bytes(&r[0]), &[1, 2, 3]);
        bufs.flush();
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn the_arena_is_sized_by_max_and_the_smaller_of_snaplen_and_buffer() {
        let s = spec(0, &[CaptureDir::Rx], 10, 9000);
        assert_eq!(s.arena_bytes(2048), 20480);
        let s = spec(0, &[CaptureDir::Rx], 10, 64);
        assert_eq!(s.arena_bytes(2048), 640);
        let b = CaptureBuffer::new(s, Arc::new(AtomicU64::new(0)), 2048);
        assert_eq!((b.arena.len(), b.records.capacity()), (640, 10));
    }
}
