//! vswitch-memif: the memif shared-memory packet interface, protocol 2.0,
//! as VPP's memif plugin and DPDK's `net_memif` speak it.
//!
//! Two processes exchange frames through rings in shared memory; a unix
//! `SOCK_SEQPACKET` socket carries the control messages ([`msg`]) that
//! set the memory up and pass its file descriptors (`SCM_RIGHTS`). The
//! *client* (VPP: slave) creates all shared memory; the *server* (VPP:
//! master) listens, checks what it is given, and maps it. Either side may
//! be the dataplane: vswitch serves memif to CNF pods, or connects to a
//! CNF's socket.
//!
//! * [`Server`]: binds a socket (a file, mode 0600 by default, removed on
//!   drop; or an abstract name) and serves any number of interfaces on it,
//!   told apart by interface id.
//! * [`Client`]: connects interfaces to a server's socket and reconnects
//!   by itself, with backoff, whenever the link goes down.
//! * [`Interface`]: the control handle of one interface: state,
//!   [`InterfaceInfo`] for `show memif`, [`Counters`], and its queues.
//! * [`RxQueue`] / [`TxQueue`]: the copy-mode data path, one handle per
//!   queue, owned by one worker: `rx_burst` hands frames to a callback
//!   that copies them where it wants; `tx_burst` copies frames in. No
//!   allocation, lock or system call per packet; in interrupt mode one
//!   eventfd read per receive burst and one eventfd write per transmit
//!   burst.
//! * [`ZcQueue`]: the zero-copy client data path
//!   ([`InterfaceConfig::zero_copy`]): frames lent in place in the
//!   client's own buffers ([`ZcFrame`], [`ZcBufMut`]), forwarded to the
//!   transmit ring without a copy ([`ZcVerdict::Forward`]); same wire as
//!   copy mode.
//!
//! A control thread per `Server`/`Client` runs the handshake; the data
//! path finds the current connection through a generation counter (one
//! atomic load per burst), so links can come and go under running
//! workers, and shared memory stays mapped until the last queue has let
//! go of it.
//!
//! Neither side trusts the other: every message is checked ([`msg`]),
//! every region descriptor must be a memfd sealed against shrinking and as
//! large as announced, every ring must lie inside its region with the
//! right cookie, and every index and descriptor the peer writes is
//! checked before use ([`ring`]). Ring-discipline violations bring the
//! link down with a DISCONNECT that says why; a bad descriptor costs only
//! its frame and a counter.
//!
//! This crate uses `unsafe` for system calls, the shared mappings and the
//! raw reads and writes of shared memory; every block has a `// SAFETY:`
//! comment.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod conn;
mod control;
mod iface;
pub mod msg;
mod queue;
pub mod region;
pub mod ring;
mod sys;
mod zc;

pub use control::{Client, ClientConfig, Server, ServerConfig, SocketStats};
pub use iface::{Counters, Interface, InterfaceInfo, LinkState, QueueCounters, RegionInfo, RingInfo, Role, RxMode};
pub use msg::{Direction, Mode};
pub use queue::{RxQueue, RxWaker, TxQueue};
pub use ring::{Fault, RxFrame};
pub use sys::SocketAddr;
pub use zc::{ZcBufMut, ZcFrame, ZcQueue, ZcVerdict};

use std::io;

/// Ring header cookie (`MEMIF_COOKIE`).
pub const COOKIE: u32 = 0x3E31F20;
/// Protocol version 2.0 (`(2 << 8) | 0`).
pub const VERSION: u16 = 0x0200;
/// Most queue pairs per interface (our limit; the protocol allows 255).
pub const MAX_QUEUES: usize = 8;
/// Smallest log2 ring size accepted (256 descriptors).
pub const MIN_LOG2_RING_SIZE: u8 = 8;
/// Largest log2 ring size accepted (16384 descriptors, as VPP and DPDK).
pub const MAX_LOG2_RING_SIZE: u8 = 14;
/// Smallest buffer size a client of ours uses.
pub const MIN_BUFFER_SIZE: u32 = 128;
/// Largest buffer (and descriptor length) accepted: VPP and DPDK keep
/// buffer sizes in 16 bits.
pub const MAX_BUFFER_SIZE: u32 = 65535;
/// Most regions per interface.
pub const MAX_REGIONS: usize = 16;
/// Largest region: descriptor offsets are 32-bit.
pub const MAX_REGION_SIZE: u64 = 1 << 32;
/// Most descriptors in one frame's chain.
pub const MAX_CHAIN: usize = 256;
/// Largest frame length that may be configured.
pub const MAX_FRAME_LEN: u32 = 1 << 20;

/// Configuration of one interface, on either side.
#[derive(Clone, Debug)]
pub struct InterfaceConfig {
    /// Interface id: a server tells its interfaces apart by it.
    pub id: u32,
    /// Our name for the interface, sent in CONNECT / CONNECTED (at most
    /// 31 bytes).
    pub name: String,
    /// Ethernet, IP or punt/inject; both sides must agree.
    pub mode: Mode,
    /// Shared secret (1 to 24 bytes, no NUL). A server with a secret
    /// refuses clients without it; a client sends it.
    pub secret: Option<String>,
    /// Queue pairs (1..=8). A client asks for this many rings each way
    /// (fewer if the server's HELLO allows fewer); a server accepts up to
    /// this many.
    pub queues: usize,
    /// Client: log2 of descriptors per ring (8..=14; lowered to what the
    /// server allows). Ignored by a server.
    pub log2_ring_size: u8,
    /// Client: bytes per buffer (128..=65535). Frames longer than a buffer
    /// are chained. Ignored by a server.
    pub buffer_size: u32,
    /// How receive queues start: polling (peers do not signal) or
    /// interrupt (peers write the ring's eventfd).
    pub rx_mode: RxMode,
    /// Longest frame sent or accepted; longer ones are dropped and counted.
    pub max_frame_len: u32,
    /// Client only: zero-copy. The queues are then
    /// [`Interface::take_zc_queues`] ([`ZcQueue`]: frames read and written
    /// in place in the shared buffers, received frames forwarded without a
    /// copy) instead of [`Interface::take_queues`]. The wire is the same
    /// as copy mode. Default off.
    pub zero_copy: bool,
}

impl InterfaceConfig {
    /// Interface `id`, named `memif<id>`, Ethernet, one queue pair,
    /// 1024-slot rings, 2048-byte buffers, polling, frames up to 65535.
    pub fn new(id: u32) -> InterfaceConfig {
        InterfaceConfig {
            id,
            name: format!("memif{id}"),
            mode: Mode::Ethernet,
            secret: None,
            queues: 1,
            log2_ring_size: 10,
            buffer_size: 2048,
            rx_mode: RxMode::Polling,
            max_frame_len: 65535,
            zero_copy: false,
        }
    }

    /// Checks every field; the error says which and why.
    pub fn validate(&self) -> io::Result<()> {
        let bad = |m: String| Err(io::Error::new(io::ErrorKind::InvalidInput, m));
        if let Err(e) = msg::Name::new(&self.name) {
            return bad(format!("memif {}: name {:?}: {e}", self.id, self.name));
        }
        if let Some(s) = &self.secret {
            if msg::Secret::new(s.as_bytes()).is_err() {
                return bad(format!("memif {}: secret must be 1 to 24 bytes without NUL", self.id));
            }
        }
        if !(1..=MAX_QUEUES).contains(&self.queues) {
            return bad(format!("memif {}: queues {} outside 1..={MAX_QUEUES}", self.id, self.queues));
        }
        if !(MIN_LOG2_RING_SIZE..=MAX_LOG2_RING_SIZE).contains(&self.log2_ring_size) {
            return bad(format!(
                "memif {}: log2 ring size {} outside {MIN_LOG2_RING_SIZE}..={MAX_LOG2_RING_SIZE}",
                self.id, self.log2_ring_size
            ));
        }
        if !(MIN_BUFFER_SIZE..=MAX_BUFFER_SIZE).contains(&self.buffer_size) {
            return bad(format!(
                "memif {}: buffer size {} outside {MIN_BUFFER_SIZE}..={MAX_BUFFER_SIZE}",
                self.id, self.buffer_size
            ));
        }
        if !(1..=MAX_FRAME_LEN).contains(&self.max_frame_len) {
            return bad(format!(
                "memif {}: max frame length {} outside 1..={MAX_FRAME_LEN}",
                self.id, self.max_frame_len
            ));
        }
        let layout = region::Layout {
            s2m_rings: self.queues,
            m2s_rings: self.queues,
            log2_ring_size: self.log2_ring_size,
            buffer_size: self.buffer_size,
        };
        if layout.region_size() > MAX_REGION_SIZE {
            return bad(format!(
                "memif {}: {} queue pairs of {} x {}-byte buffers need {} bytes, more than 4 GiB",
                self.id,
                self.queues,
                layout.ring_size(),
                self.buffer_size,
                layout.region_size()
            ));
        }
        Ok(())
    }
}

/// Entry points for the cargo-fuzz targets in `fuzz/` (and the randomized
/// tests that run the same code in `cargo test`). Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::msg::Msg;
    use crate::region::Region;
    use crate::ring::*;

    /// Decodes arbitrary bytes; whatever decodes must encode to bytes that
    /// decode to the same message.
    pub fn msg(data: &[u8]) {
        if let Ok(m) = Msg::decode(data) {
            let e = m.encode();
            assert_eq!(Msg::decode(&e).as_ref(), Ok(&m));
            let _ = m.to_owned();
        }
    }

    /// The zero-copy client's receive bookkeeping over fuzzed peer
    /// writes, round after round: every buffer stays in exactly one
    /// place, every frame lent lies inside the region. Panics only on a
    /// bug.
    pub fn zc(data: &[u8]) {
        crate::zc::fuzz(data)
    }

    /// Runs a ring consumer (server on S2M, or client on M2S with
    /// reposting) or the server's producer into posted buffers over a
    /// ring whose header, descriptors and buffers are `data`, with the
    /// local indices also taken from `data`. Panics only on a bug.
    pub fn ring(data: &[u8]) {
        if data.len() < 8 {
            return;
        }
        let mode = data[0] % 3;
        let cursor = u16::from_le_bytes([data[1], data[2]]);
        // Our own state is always consistent: at most a ring posted.
        let posted = cursor.wrapping_add(u16::from_le_bytes([data[3], data[4]]) % 257);
        let log2 = 8;
        let len = ring_bytes(log2) + usize::from(data[5]) * 64;
        let body = &data[6..];
        // Regions end at a guard page: reading or writing past them faults,
        // which the fuzzer reports even without a sanitizer.
        let r0 = Region::guarded(len).expect("mmap");
        assert!(r0.write(0, &body[..body.len().min(len)]));
        let regions = vec![r0, Region::guarded(256).expect("mmap")];
        let ring = Ring::new(&regions[0], 0, log2).expect("fits");
        let mut sc = scratch();
        let lim = RxLimits { max_seg: 2048, max_frame: 9000 };
        match mode {
            0 | 1 => {
                let refill = Refill { region: 0, base: ring_bytes(log2) as u64, buffer_size: 64 };
                let mut st = RxCursor { cursor, posted };
                let before = st;
                let mut t = RxTally::default();
                let mut seen = 0usize;
                let rr = RxRing { regions: &regions, ring: &ring, refill: (mode == 1).then_some(&refill), lim: &lim };
                let r = receive(&rr, &mut st, &mut sc, 300, &mut t, |f| {
                    assert!(!f.is_empty() && f.len() <= 9000 && f.segments() <= crate::MAX_CHAIN);
                    let mut b = vec![0; f.len()];
                    assert_eq!(f.copy_to(&mut b), Some(f.len()));
                    assert_eq!(f.copy_to(&mut b[1..]), None);
                    seen += 1;
                    !seen.is_multiple_of(17)
                });
                match r {
                    Ok(n) => {
                        assert!(n <= 300 && t.frames as usize == n);
                        assert!(st.cursor.wrapping_sub(before.cursor) <= ring.size());
                        if mode == 0 && st.cursor != before.cursor {
                            assert_eq!(ring.tail(), st.cursor);
                        }
                        if mode == 1 {
                            assert_eq!(st.posted, st.cursor.wrapping_add(ring.size()));
                            // `head` is ours, but in shared memory: only
                            // what we stored is known.
                            if st.posted != before.posted {
                                assert_eq!(ring.head(), st.posted);
                            }
                        }
                    }
                    Err(_) => assert_eq!(st.cursor, before.cursor),
                }
            }
            _ => {
                let sizes: Vec<usize> = body.iter().take(40).map(|&b| usize::from(b) * 37 % 9500).collect();
                let frames: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![0x5a; n]).collect();
                let mut tail = cursor;
                let mut t = TxTally::default();
                let r = send_posted(&regions, &ring, &mut tail, 9000, &mut sc, frames.iter().map(|f| &f[..]), &mut t);
                match r {
                    Ok(n) => {
                        assert!(n <= frames.len());
                        assert!(tail.wrapping_sub(cursor) <= ring.size());
                        assert_eq!(t.frames + t.bad_length, n as u64);
                    }
                    Err(_) => assert_eq!(tail, cursor),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz targets' code on pseudo-random inputs, so `cargo test`
    /// covers it too.
    #[test]
    fn fuzz_entry_points_on_random_inputs() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000 {
            let n = (rnd() % 6000) as usize;
            let mut d: Vec<u8> = (0..n).map(|_| rnd() as u8).collect();
            // Bias descriptors towards plausible values now and then.
            if i % 2 == 0 && d.len() > 6 + 128 + 16 * 256 {
                for s in 0..256 {
                    let at = 6 + 128 + 16 * s;
                    d[at + 2] = (rnd() % 3 == 0) as u8;
                    d[at + 3] = 0;
                    d[at + 6] = 0;
                    d[at + 7] = 0;
                    d[at + 10] = 0;
                    d[at + 11] = 0;
                    d[at] &= 1;
                }
            }
            fuzzing::ring(&d);
            if i % 4 == 0 {
                fuzzing::zc(&d);
            }
            let mut m = [0u8; 128];
            for b in m.iter_mut() {
                *b = rnd() as u8;
            }
            m[1] = 0;
            m[0] %= 10;
            fuzzing::msg(&m);
        }
    }

    #[test]
    fn config_validation() {
        assert!(InterfaceConfig::new(0).validate().is_ok());
        let bad = [
            InterfaceConfig { queues: 0, ..InterfaceConfig::new(1) },
            InterfaceConfig { queues: 9, ..InterfaceConfig::new(1) },
            InterfaceConfig { log2_ring_size: 7, ..InterfaceConfig::new(1) },
            InterfaceConfig { log2_ring_size: 15, ..InterfaceConfig::new(1) },
            InterfaceConfig { buffer_size: 64, ..InterfaceConfig::new(1) },
            InterfaceConfig { buffer_size: 65536, ..InterfaceConfig::new(1) },
            InterfaceConfig { secret: Some(String::new()), ..InterfaceConfig::new(1) },
            InterfaceConfig { secret: Some("x".repeat(25)), ..InterfaceConfig::new(1) },
            InterfaceConfig { name: "n".repeat(32), ..InterfaceConfig::new(1) },
            InterfaceConfig { max_frame_len: 0, ..InterfaceConfig::new(1) },
            // 8 pairs x 2^14 x 65535 does not fit 32-bit offsets.
            InterfaceConfig { queues: 8, log2_ring_size: 14, buffer_size: 65535, ..InterfaceConfig::new(1) },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
        let max_ok = InterfaceConfig { queues: 8, log2_ring_size: 14, buffer_size: 9216, ..InterfaceConfig::new(1) };
        assert!(max_ok.validate().is_ok());
    }
}
