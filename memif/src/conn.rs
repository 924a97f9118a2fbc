//! One established connection: its regions, its rings (from this side's
//! point of view: the rings it receives on and transmits on), their
//! eventfds, and the fault a queue may report. Built by the client from
//! its own memory, or by the server from what the client sent after
//! checking all of it.

use crate::msg::{AddRing, Direction};
use crate::region::{Layout, Region};
use crate::ring::{ring_bytes, Desc, Fault, OwnBuffers, Refill, Ring, RxCursor, RxLimits};
use crate::sys;
use crate::{InterfaceConfig, MAX_BUFFER_SIZE};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// One ring as this side uses it.
pub(crate) struct RingEnd {
    pub ring: Ring,
    pub dir: Direction,
    pub index: usize,
    pub region: u16,
    pub offset: u32,
    pub eventfd: OwnedFd,
    /// Client receiving (M2S): where posted buffers go.
    pub refill: Option<Refill>,
    /// Client transmitting (S2M): its own buffers.
    pub own: Option<OwnBuffers>,
}

/// An established connection. Queues hold it through an `Arc`; the regions
/// are unmapped when the last holder lets go.
pub(crate) struct Conn {
    /// Declared before the regions so the rings (raw pointers into them)
    /// are gone first; they have no drop glue touching memory anyway.
    pub rx: Vec<RingEnd>,
    pub tx: Vec<RingEnd>,
    pub regions: Vec<Region>,
    pub rx_limits: RxLimits,
    pub max_frame: u32,
    pub buffer_size: Option<u32>,
    pub faulted: AtomicBool,
    pub fault: Mutex<Option<(Direction, usize, Fault)>>,
}

impl Conn {
    /// Client side, once CONNECTED has arrived (the server has finished
    /// setting up and will not reset the rings any more — DPDK's server
    /// zeroes head and tail on CONNECT): posts every buffer of every M2S
    /// ring, so the server can send as soon as the link is up, before our
    /// receive queues first run. The queues start from this state
    /// ([`Conn::initial_rx_cursor`]).
    pub(crate) fn post_all_buffers(&self) {
        for end in &self.rx {
            let Some(rf) = &end.refill else { continue };
            let size = end.ring.size();
            for s in 0..size {
                let off = rf.base + u64::from(s) * u64::from(rf.buffer_size);
                end.ring.set_desc(
                    s,
                    Desc { flags: 0, region: rf.region, length: rf.buffer_size, offset: off as u32, metadata: 0 },
                );
            }
            end.ring.set_head(size);
        }
    }

    /// Where a receive queue starts on this connection: nothing consumed;
    /// on the client, a whole ring posted (see [`Conn::post_all_buffers`]).
    pub(crate) fn initial_rx_cursor(&self, q: usize) -> RxCursor {
        match self.rx.get(q) {
            Some(end) if end.refill.is_some() => RxCursor { cursor: 0, posted: end.ring.size() },
            _ => RxCursor::default(),
        }
    }

    /// Records the first fault (later ones are only counted).
    pub(crate) fn set_fault(&self, dir: Direction, queue: usize, f: Fault) {
        let mut g = self.fault.lock().unwrap();
        if g.is_none() {
            *g = Some((dir, queue, f));
        }
        self.faulted.store(true, Ordering::Release);
    }
}

/// What a client builds on HELLO: a connection not yet published, and the
/// ring descriptions to announce.
pub(crate) struct ClientBuild {
    pub conn: Conn,
}

impl ClientBuild {
    /// Creates region 0 (rings + buffers) as a sealed memfd, writes the
    /// ring headers and descriptors, and makes one eventfd per ring.
    pub(crate) fn new(cfg: &InterfaceConfig, s2m: usize, m2s: usize, log2: u8) -> io::Result<ClientBuild> {
        let layout = Layout { s2m_rings: s2m, m2s_rings: m2s, log2_ring_size: log2, buffer_size: cfg.buffer_size };
        let region = Region::create(&format!("memif{} region 0", cfg.id), layout.region_size())?;
        let size = layout.ring_size() as u16;
        let mut s2m_ends = Vec::with_capacity(s2m);
        let mut m2s_ends = Vec::with_capacity(m2s);
        for (dir, n) in [(Direction::S2M, s2m), (Direction::M2S, m2s)] {
            let is_s2m = dir == Direction::S2M;
            for i in 0..n {
                let offset = layout.ring_offset(is_s2m, i);
                let ring = Ring::new(&region, offset, log2)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "ring outside region"))?;
                ring.init_header();
                let base = layout.ring_buffers(is_s2m, i);
                for j in 0..size {
                    ring.set_desc(
                        j,
                        Desc {
                            flags: 0,
                            region: 0,
                            length: cfg.buffer_size,
                            offset: (base + u64::from(j) * u64::from(cfg.buffer_size)) as u32,
                            metadata: 0,
                        },
                    );
                }
                let bufs = OwnBuffers { region: 0, base, buffer_size: cfg.buffer_size };
                let end = RingEnd {
                    ring,
                    dir,
                    index: i,
                    region: 0,
                    offset: offset as u32,
                    eventfd: sys::eventfd()?,
                    refill: (!is_s2m).then_some(Refill { region: 0, base, buffer_size: cfg.buffer_size }),
                    own: is_s2m.then_some(bufs),
                };
                if is_s2m {
                    s2m_ends.push(end);
                } else {
                    m2s_ends.push(end);
                }
            }
        }
        Ok(ClientBuild {
            conn: Conn {
                rx: m2s_ends,
                tx: s2m_ends,
                regions: vec![region],
                rx_limits: RxLimits { max_seg: cfg.buffer_size, max_frame: cfg.max_frame_len },
                max_frame: cfg.max_frame_len,
                buffer_size: Some(cfg.buffer_size),
                faulted: AtomicBool::new(false),
                fault: Mutex::new(None),
            },
        })
    }
}

/// A ring a client announced, with its eventfd.
pub(crate) struct PeerRing {
    pub msg: AddRing,
    pub eventfd: OwnedFd,
}

/// Server side, on CONNECT: checks the announced rings against the
/// regions (inside, aligned, not overlapping, cookie present) and builds
/// the connection. The error is the DISCONNECT reason.
pub(crate) fn server_build(
    cfg: &InterfaceConfig,
    regions: Vec<Region>,
    s2m: Vec<PeerRing>,
    m2s: Vec<PeerRing>,
) -> Result<Conn, String> {
    if s2m.is_empty() || m2s.is_empty() {
        return Err(format!("need at least one ring each way (got {} s2m, {} m2s)", s2m.len(), m2s.len()));
    }
    // No two rings may share bytes: each has one consumer and one
    // producer, and overlapping rings would let one ring's descriptors be
    // another's indices.
    let mut spans: Vec<(u16, u64, u64)> = s2m
        .iter()
        .chain(m2s.iter())
        .map(|r| {
            (r.msg.region, u64::from(r.msg.offset), u64::from(r.msg.offset) + ring_bytes(r.msg.log2_ring_size) as u64)
        })
        .collect();
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[0].0 == w[1].0 && w[1].1 < w[0].2 {
            return Err(format!("rings overlap in region {} at offset {}", w[1].0, w[1].1));
        }
    }
    let ends = |list: Vec<PeerRing>| -> Result<Vec<RingEnd>, String> {
        let mut out = Vec::with_capacity(list.len());
        for (i, pr) in list.into_iter().enumerate() {
            let m = pr.msg;
            let name = m.direction.name();
            let region = regions
                .get(usize::from(m.region))
                .ok_or_else(|| format!("{name} ring {i}: unknown region {}", m.region))?;
            let ring = Ring::new(region, u64::from(m.offset), m.log2_ring_size).ok_or_else(|| {
                format!(
                    "{name} ring {i}: {} bytes at offset {} do not fit region {} of {} bytes (or misaligned)",
                    ring_bytes(m.log2_ring_size),
                    m.offset,
                    m.region,
                    region.len()
                )
            })?;
            if ring.cookie() != crate::COOKIE {
                return Err(format!("wrong cookie on {name} ring {i}"));
            }
            out.push(RingEnd {
                ring,
                dir: m.direction,
                index: i,
                region: m.region,
                offset: m.offset,
                eventfd: pr.eventfd,
                refill: None,
                own: None,
            });
        }
        Ok(out)
    };
    let rx = ends(s2m)?;
    let tx = ends(m2s)?;
    Ok(Conn {
        rx,
        tx,
        regions,
        rx_limits: RxLimits { max_seg: MAX_BUFFER_SIZE, max_frame: cfg.max_frame_len },
        max_frame: cfg.max_frame_len,
        buffer_size: None,
        faulted: AtomicBool::new(false),
        fault: Mutex::new(None),
    })
}
