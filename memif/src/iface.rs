//! The per-interface state shared between the control thread, the queue
//! handles and the API: the current connection (behind a generation
//! counter), control information, counters, receive modes and wakers.

use crate::conn::Conn;
use crate::msg::{Direction, Mode};
use crate::queue::{RxQueue, TxQueue};
use crate::ring::RING_FLAG_MASK_INT;
use crate::sys;
use crate::zc::ZcQueue;
use crate::InterfaceConfig;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Which end of the protocol an interface is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Listens, receives and maps the shared memory (VPP: master).
    Server,
    /// Connects, creates the shared memory (VPP: slave).
    Client,
}

impl Role {
    /// `server` or `client`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}

/// How a receive queue learns about new frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RxMode {
    /// The worker polls; the ring's MASK_INT flag tells the peer not to
    /// signal.
    #[default]
    Polling,
    /// The peer writes the ring's eventfd after each burst; the worker
    /// waits on [`RxQueue::wait_fd`](crate::RxQueue::wait_fd).
    Interrupt,
}

impl RxMode {
    fn to_u8(self) -> u8 {
        match self {
            RxMode::Polling => 0,
            RxMode::Interrupt => 1,
        }
    }
    fn from_u8(v: u8) -> RxMode {
        if v == 1 {
            RxMode::Interrupt
        } else {
            RxMode::Polling
        }
    }
}

/// Link state of an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// No peer (a server waiting, a client between attempts).
    Down,
    /// A control connection exists; the handshake is under way.
    Connecting,
    /// Rings are mapped and frames flow.
    Up,
}

impl LinkState {
    /// `down`, `connecting` or `up`.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Down => "down",
            LinkState::Connecting => "connecting",
            LinkState::Up => "up",
        }
    }
}

/// Counters of one queue (receive counters stay 0 on a transmit queue and
/// the other way round).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Frames received or sent.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Receive: frames dropped, a descriptor named an unknown region.
    pub bad_region: u64,
    /// Receive: frames dropped, a descriptor's offset + length lies
    /// outside its region.
    pub bad_offset: u64,
    /// Receive: frames dropped, a descriptor longer than a buffer.
    /// Transmit: frames refused, empty or longer than the frame limit.
    pub bad_length: u64,
    /// Receive: frames dropped, longer than the frame limit in all.
    pub oversize: u64,
    /// Receive: frames dropped, zero bytes.
    pub empty: u64,
    /// Transmit: bursts cut short by a full ring.
    pub ring_full: u64,
    /// Receive: eventfd wake-ups consumed; transmit: eventfd signals sent.
    pub interrupts: u64,
    /// Ring-discipline violations seen (each takes the link down).
    pub faults: u64,
    /// Bursts attempted while the link was down or the queue had no ring.
    pub no_link: u64,
}

impl QueueCounters {
    fn add(&mut self, o: &QueueCounters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.bad_region += o.bad_region;
        self.bad_offset += o.bad_offset;
        self.bad_length += o.bad_length;
        self.oversize += o.oversize;
        self.empty += o.empty;
        self.ring_full += o.ring_full;
        self.interrupts += o.interrupts;
        self.faults += o.faults;
        self.no_link += o.no_link;
    }
}

/// Counters of an interface: its queues summed, and the control side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// All receive queues.
    pub rx: QueueCounters,
    /// All transmit queues.
    pub tx: QueueCounters,
    /// Times the link came up.
    pub connects: u64,
    /// Times the link went down after being up.
    pub disconnects: u64,
    /// Handshakes refused or failed (bad message, wrong secret, ...).
    pub protocol_errors: u64,
}

/// Atomic counters of one queue: written only by the queue's owner (load +
/// store, no read-modify-write), read by anyone.
#[derive(Default)]
pub(crate) struct AtomicCounters {
    packets: AtomicU64,
    bytes: AtomicU64,
    bad_region: AtomicU64,
    bad_offset: AtomicU64,
    bad_length: AtomicU64,
    oversize: AtomicU64,
    empty: AtomicU64,
    ring_full: AtomicU64,
    interrupts: AtomicU64,
    faults: AtomicU64,
    no_link: AtomicU64,
}

#[inline]
fn bump(c: &AtomicU64, v: u64) {
    if v != 0 {
        c.store(c.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
    }
}

impl AtomicCounters {
    /// Adds a burst's tallies (single writer: the queue's owner).
    #[inline]
    pub(crate) fn add(&self, d: &QueueCounters) {
        bump(&self.packets, d.packets);
        bump(&self.bytes, d.bytes);
        bump(&self.bad_region, d.bad_region);
        bump(&self.bad_offset, d.bad_offset);
        bump(&self.bad_length, d.bad_length);
        bump(&self.oversize, d.oversize);
        bump(&self.empty, d.empty);
        bump(&self.ring_full, d.ring_full);
        bump(&self.interrupts, d.interrupts);
        bump(&self.faults, d.faults);
        bump(&self.no_link, d.no_link);
    }
    pub(crate) fn get(&self) -> QueueCounters {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        QueueCounters {
            packets: l(&self.packets),
            bytes: l(&self.bytes),
            bad_region: l(&self.bad_region),
            bad_offset: l(&self.bad_offset),
            bad_length: l(&self.bad_length),
            oversize: l(&self.oversize),
            empty: l(&self.empty),
            ring_full: l(&self.ring_full),
            interrupts: l(&self.interrupts),
            faults: l(&self.faults),
            no_link: l(&self.no_link),
        }
    }
}

/// What a receive queue shares: counters, mode, and its stable wait fd (an
/// epoll set holding the current ring eventfd and a waker signalled on
/// every link change).
pub(crate) struct RxShared {
    pub counters: AtomicCounters,
    pub mode: AtomicU8,
    pub epoll: OwnedFd,
    pub waker: OwnedFd,
    /// Set by [`crate::RxWaker::wake`]: the next burst drains `waker` (a
    /// level-triggered epoll would otherwise stay readable).
    pub kicked: AtomicBool,
}

impl RxShared {
    fn new(mode: RxMode) -> io::Result<RxShared> {
        let epoll = sys::epoll_create()?;
        let waker = sys::eventfd()?;
        sys::epoll_add(epoll.as_fd(), waker.as_fd())?;
        Ok(RxShared {
            counters: AtomicCounters::default(),
            mode: AtomicU8::new(mode.to_u8()),
            epoll,
            waker,
            kicked: AtomicBool::new(false),
        })
    }
    pub(crate) fn mode(&self) -> RxMode {
        RxMode::from_u8(self.mode.load(Ordering::Relaxed))
    }
}

/// The current connection and its generation.
pub(crate) struct Slot {
    pub gen: u64,
    pub conn: Option<Arc<Conn>>,
}

/// Control-side information, updated by the control thread.
#[derive(Default)]
pub(crate) struct Ctl {
    pub state: Option<LinkState>,
    pub peer_name: Option<String>,
    pub peer_if_name: Option<String>,
    pub peer_pid: Option<i32>,
    pub local_reason: Option<String>,
    pub remote_reason: Option<String>,
    pub last_error: Option<String>,
    pub connects: u64,
    pub disconnects: u64,
    pub protocol_errors: u64,
    pub up_since: Option<Instant>,
}

/// Everything about one interface that outlives connections.
pub(crate) struct IfShared {
    pub cfg: InterfaceConfig,
    pub role: Role,
    pub socket: String,
    pub gen: AtomicU64,
    pub slot: Mutex<Slot>,
    pub ctl: Mutex<Ctl>,
    pub cv: Condvar,
    pub rxq: Box<[RxShared]>,
    pub txq: Box<[AtomicCounters]>,
    pub taken: AtomicBool,
    /// The control thread's eventfd: written by a queue that found a fault.
    pub engine_wake: Arc<OwnedFd>,
}

impl IfShared {
    pub(crate) fn new(
        cfg: InterfaceConfig,
        role: Role,
        socket: String,
        engine_wake: Arc<OwnedFd>,
    ) -> io::Result<IfShared> {
        let rxq = (0..cfg.queues).map(|_| RxShared::new(cfg.rx_mode)).collect::<io::Result<Vec<_>>>()?;
        let txq = (0..cfg.queues).map(|_| AtomicCounters::default()).collect::<Vec<_>>();
        Ok(IfShared {
            cfg,
            role,
            socket,
            gen: AtomicU64::new(0),
            slot: Mutex::new(Slot { gen: 0, conn: None }),
            ctl: Mutex::new(Ctl { state: Some(LinkState::Down), ..Ctl::default() }),
            cv: Condvar::new(),
            rxq: rxq.into_boxed_slice(),
            txq: txq.into_boxed_slice(),
            taken: AtomicBool::new(false),
            engine_wake,
        })
    }

    pub(crate) fn current(&self) -> Option<Arc<Conn>> {
        self.slot.lock().unwrap().conn.clone()
    }

    /// Makes `conn` the current connection: receive-ring flags per mode,
    /// ring eventfds into the queues' wait sets, then the generation bump
    /// that the queues see at their next burst; wakes the queues.
    pub(crate) fn publish(&self, conn: Arc<Conn>) {
        for (q, end) in conn.rx.iter().enumerate() {
            if let Some(rs) = self.rxq.get(q) {
                let flags = if rs.mode() == RxMode::Polling { RING_FLAG_MASK_INT } else { 0 };
                end.ring.set_flags(flags);
                let _ = sys::epoll_add(rs.epoll.as_fd(), end.eventfd.as_fd());
            }
        }
        {
            let mut s = self.slot.lock().unwrap();
            s.gen += 1;
            s.conn = Some(conn);
            self.gen.store(s.gen, Ordering::Release);
        }
        self.wake_queues();
    }

    /// Takes the current connection away from the queues (they drop their
    /// reference at their next burst; the memory is unmapped with the last
    /// one).
    pub(crate) fn unpublish(&self) {
        let old = {
            let mut s = self.slot.lock().unwrap();
            let old = s.conn.take();
            s.gen += 1;
            self.gen.store(s.gen, Ordering::Release);
            old
        };
        if let Some(conn) = old {
            for (q, end) in conn.rx.iter().enumerate() {
                if let Some(rs) = self.rxq.get(q) {
                    sys::epoll_del(rs.epoll.as_fd(), end.eventfd.as_fd());
                }
            }
        }
        self.wake_queues();
    }

    fn wake_queues(&self) {
        for rs in self.rxq.iter() {
            sys::eventfd_signal(rs.waker.as_raw_fd());
        }
    }

    pub(crate) fn set_state(&self, f: impl FnOnce(&mut Ctl)) {
        let mut c = self.ctl.lock().unwrap();
        f(&mut c);
        drop(c);
        self.cv.notify_all();
    }
}

/// One region of the current connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// Region index.
    pub index: usize,
    /// Bytes.
    pub size: u64,
}

/// One ring of the current connection, with live index values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingInfo {
    /// S2M or M2S.
    pub direction: Direction,
    /// Index within its direction.
    pub index: usize,
    /// Region holding it.
    pub region: u16,
    /// Its offset there.
    pub offset: u32,
    /// log2 of its descriptors.
    pub log2_ring_size: u8,
    /// `head` as read now.
    pub head: u16,
    /// `tail` as read now.
    pub tail: u16,
    /// The receiver masked interrupts (polling).
    pub interrupts_masked: bool,
}

/// Everything `show memif` prints about one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Interface id.
    pub id: u32,
    /// Our name for it.
    pub name: String,
    /// Server or client.
    pub role: Role,
    /// Mode.
    pub mode: Mode,
    /// The control socket.
    pub socket: String,
    /// Link state.
    pub state: LinkState,
    /// Whether a secret is configured.
    pub has_secret: bool,
    /// Queue pairs configured.
    pub queues: usize,
    /// The peer application's name (HELLO or INIT).
    pub peer_name: Option<String>,
    /// The peer's interface name (CONNECT or CONNECTED).
    pub peer_if_name: Option<String>,
    /// The peer's process id, from the socket.
    pub peer_pid: Option<i32>,
    /// Why we last brought the link down.
    pub local_reason: Option<String>,
    /// Why the peer last brought it down (its DISCONNECT).
    pub remote_reason: Option<String>,
    /// Last connection error (client: connect failures).
    pub last_error: Option<String>,
    /// How long the link has been up.
    pub uptime: Option<Duration>,
    /// Regions of the current connection.
    pub regions: Vec<RegionInfo>,
    /// Rings of the current connection.
    pub rings: Vec<RingInfo>,
    /// S2M rings in use.
    pub s2m_rings: usize,
    /// M2S rings in use.
    pub m2s_rings: usize,
    /// Buffer size (known on the client side).
    pub buffer_size: Option<u32>,
    /// Receive mode of each receive queue.
    pub rx_modes: Vec<RxMode>,
    /// Counters per receive queue.
    pub rx_queues: Vec<QueueCounters>,
    /// Counters per transmit queue.
    pub tx_queues: Vec<QueueCounters>,
    /// Totals.
    pub counters: Counters,
}

/// The control handle of one interface. Cheap to clone.
#[derive(Clone)]
pub struct Interface {
    pub(crate) sh: Arc<IfShared>,
}

impl std::fmt::Debug for Interface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interface").field("id", &self.sh.cfg.id).field("role", &self.sh.role).finish()
    }
}

impl Interface {
    /// Interface id.
    pub fn id(&self) -> u32 {
        self.sh.cfg.id
    }
    /// Server or client.
    pub fn role(&self) -> Role {
        self.sh.role
    }
    /// The configuration it was added with.
    pub fn config(&self) -> &InterfaceConfig {
        &self.sh.cfg
    }
    /// Link state now.
    pub fn state(&self) -> LinkState {
        self.sh.ctl.lock().unwrap().state.unwrap_or(LinkState::Down)
    }
    /// Whether the link is up.
    pub fn is_up(&self) -> bool {
        self.state() == LinkState::Up
    }

    /// Waits up to `timeout` for the link to reach `state`.
    pub fn wait_for(&self, state: LinkState, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut c = self.sh.ctl.lock().unwrap();
        loop {
            if c.state == Some(state) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            c = self.sh.cv.wait_timeout(c, deadline - now).unwrap().0;
        }
    }

    /// Waits up to `timeout` for the link to be up.
    pub fn wait_up(&self, timeout: Duration) -> bool {
        self.wait_for(LinkState::Up, timeout)
    }

    /// Waits up to `timeout` until the link has come up more than
    /// `connects` times in all.
    pub fn wait_connects(&self, connects: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut c = self.sh.ctl.lock().unwrap();
        loop {
            if c.connects > connects && c.state == Some(LinkState::Up) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            c = self.sh.cv.wait_timeout(c, deadline - now).unwrap().0;
        }
    }

    /// The queue handles, one receive and one transmit per configured
    /// queue pair; `None` after the first call. Queue `i` uses ring `i` of
    /// its direction; a queue without a ring (the peer chose fewer) moves
    /// nothing and counts `no_link`.
    /// `None` also for a zero-copy interface (see
    /// [`Interface::take_zc_queues`]).
    pub fn take_queues(&self) -> Option<(Vec<RxQueue>, Vec<TxQueue>)> {
        if self.sh.cfg.zero_copy || self.sh.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        let n = self.sh.cfg.queues;
        let rx = (0..n).map(|q| RxQueue::new(self.sh.clone(), q)).collect();
        let tx = (0..n).map(|q| TxQueue::new(self.sh.clone(), q)).collect();
        Some((rx, tx))
    }

    /// A zero-copy client interface's queue pairs ([`ZcQueue`], one per
    /// configured pair, each for one worker); `None` after the first call,
    /// or if the interface is not a zero-copy client.
    pub fn take_zc_queues(&self) -> Option<Vec<ZcQueue>> {
        if !self.sh.cfg.zero_copy || self.sh.role != Role::Client || self.sh.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some((0..self.sh.cfg.queues).map(|q| ZcQueue::new(self.sh.clone(), q)).collect())
    }

    /// Switches receive queue `queue` between polling and interrupt mode
    /// (applied to the ring at once if the link is up, and at every
    /// connect).
    pub fn set_rx_mode(&self, queue: usize, mode: RxMode) {
        let Some(rs) = self.sh.rxq.get(queue) else { return };
        rs.mode.store(mode.to_u8(), Ordering::Relaxed);
        if let Some(conn) = self.sh.current() {
            if let Some(end) = conn.rx.get(queue) {
                end.ring.set_flags(if mode == RxMode::Polling { RING_FLAG_MASK_INT } else { 0 });
            }
        }
    }

    /// Counters now.
    pub fn counters(&self) -> Counters {
        let mut c = Counters::default();
        for q in self.sh.rxq.iter() {
            c.rx.add(&q.counters.get());
        }
        for q in self.sh.txq.iter() {
            c.tx.add(&q.get());
        }
        let ctl = self.sh.ctl.lock().unwrap();
        c.connects = ctl.connects;
        c.disconnects = ctl.disconnects;
        c.protocol_errors = ctl.protocol_errors;
        c
    }

    /// Everything about the interface, for `show memif`.
    pub fn info(&self) -> InterfaceInfo {
        let sh = &self.sh;
        let counters = self.counters();
        let (state, peer_name, peer_if_name, peer_pid, local_reason, remote_reason, last_error, uptime) = {
            let c = sh.ctl.lock().unwrap();
            (
                c.state.unwrap_or(LinkState::Down),
                c.peer_name.clone(),
                c.peer_if_name.clone(),
                c.peer_pid,
                c.local_reason.clone(),
                c.remote_reason.clone(),
                c.last_error.clone(),
                c.up_since.map(|t| t.elapsed()),
            )
        };
        let mut info = InterfaceInfo {
            id: sh.cfg.id,
            name: sh.cfg.name.clone(),
            role: sh.role,
            mode: sh.cfg.mode,
            socket: sh.socket.clone(),
            state,
            has_secret: sh.cfg.secret.is_some(),
            queues: sh.cfg.queues,
            peer_name,
            peer_if_name,
            peer_pid,
            local_reason,
            remote_reason,
            last_error,
            uptime,
            regions: Vec::new(),
            rings: Vec::new(),
            s2m_rings: 0,
            m2s_rings: 0,
            buffer_size: None,
            rx_modes: sh.rxq.iter().map(RxShared::mode).collect(),
            rx_queues: sh.rxq.iter().map(|q| q.counters.get()).collect(),
            tx_queues: sh.txq.iter().map(AtomicCounters::get).collect(),
            counters,
        };
        if let Some(conn) = sh.current() {
            info.regions =
                conn.regions.iter().enumerate().map(|(index, r)| RegionInfo { index, size: r.len() as u64 }).collect();
            let mut ends: Vec<_> = conn.rx.iter().chain(conn.tx.iter()).collect();
            ends.sort_by_key(|e| (e.dir == Direction::M2S, e.index));
            info.rings = ends
                .iter()
                .map(|e| RingInfo {
                    direction: e.dir,
                    index: e.index,
                    region: e.region,
                    offset: e.offset,
                    log2_ring_size: e.ring.log2(),
                    head: e.ring.head(),
                    tail: e.ring.tail(),
                    interrupts_masked: e.ring.interrupts_masked(),
                })
                .collect();
            info.s2m_rings = ends.iter().filter(|e| e.dir == Direction::S2M).count();
            info.m2s_rings = ends.iter().filter(|e| e.dir == Direction::M2S).count();
            info.buffer_size = conn.buffer_size;
        }
        info
    }
}
