//! The control channel: a [`Server`] listening on a socket, a [`Client`]
//! connecting to one, and the handshake each runs on a control thread.
//!
//! # The handshake (server ↔ client)
//!
//! ```text
//! server                                client
//!   accept  ── HELLO (name, limits) ──▶
//!           ◀── INIT (version, id, mode, secret, name)
//!   ACK     ──▶
//!           ◀── ADD_REGION (index, size) + memfd      (per region)
//!   ACK     ──▶
//!           ◀── ADD_RING (dir, index, region, offset, log2) + eventfd
//!   ACK     ──▶                                       (per ring: S2M, then M2S)
//!           ◀── CONNECT (if name)
//!   map regions, check rings
//!   CONNECTED (if name) ──▶             the link is up on both sides
//!   ... DISCONNECT (code, reason) either way, any time ...
//! ```
//!
//! The client sends one message per answer it gets (as VPP and DPDK do).
//! The server checks every message ([`crate::msg`] for the fields; here
//! the order, the interface id, mode and secret, region and ring indices,
//! descriptor count per message, that a region fd is a sealed memfd at
//! least as large as announced, that a ring fd is an eventfd, that the
//! rings fit their regions, do not overlap and carry the cookie). Any
//! violation, on either side, ends the connection with a DISCONNECT whose
//! reason says what was wrong; a handshake that does not finish within
//! `handshake_timeout` ends the same way.
//!
//! Several interfaces share one server socket: the INIT's interface id
//! picks one; a second client for an interface that already has one is
//! refused. A client keeps reconnecting after any disconnect, with a
//! backoff doubling from `reconnect_min` to `reconnect_max`.

use crate::conn::{self, ClientBuild, PeerRing};
use crate::iface::{IfShared, Interface, LinkState, Role};
use crate::msg::{AddRegion, AddRing, Direction, Disconnect, Hello, Init, Msg, MsgType, Name, Reason, Secret};
use crate::region::Region;
use crate::sys::{self, RecvOutcome, SocketAddr};
use crate::{InterfaceConfig, MAX_LOG2_RING_SIZE, MAX_QUEUES, MAX_REGIONS, MIN_LOG2_RING_SIZE, VERSION};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a [`Server`] listens.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The socket: a file path or an abstract name.
    pub socket: SocketAddr,
    /// Permissions of the socket file (default 0600).
    pub socket_mode: u32,
    /// Our name in HELLO (at most 31 bytes are sent).
    pub app_name: String,
    /// Time a client has to finish the handshake.
    pub handshake_timeout: Duration,
    /// Most connections waiting for their INIT at once; more are closed.
    pub max_pending: usize,
    /// Most bytes of shared memory one client may hand an interface (all
    /// its regions together). Pages a client names in descriptors are
    /// faulted in, and charged, on our side when we copy from them, so
    /// this bounds what a hostile client can make us allocate.
    pub max_shared_memory: u64,
}

impl ServerConfig {
    /// Defaults on `socket`: mode 0600, 5 s handshake, 32 pending, 1 GiB of
    /// shared memory per interface.
    pub fn new(socket: SocketAddr) -> ServerConfig {
        ServerConfig {
            socket,
            socket_mode: 0o600,
            app_name: format!("vswitch memif {}", env!("CARGO_PKG_VERSION")),
            handshake_timeout: Duration::from_secs(5),
            max_pending: 32,
            max_shared_memory: 1 << 30,
        }
    }
}

/// How a [`Client`] connects.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The server's socket.
    pub socket: SocketAddr,
    /// Our name in INIT (at most 31 bytes are sent).
    pub app_name: String,
    /// Time the server has to finish the handshake.
    pub handshake_timeout: Duration,
    /// First wait before reconnecting.
    pub reconnect_min: Duration,
    /// Longest wait before reconnecting.
    pub reconnect_max: Duration,
}

impl ClientConfig {
    /// Defaults on `socket`: 5 s handshake, reconnect after 100 ms doubling
    /// up to 5 s.
    pub fn new(socket: SocketAddr) -> ClientConfig {
        ClientConfig {
            socket,
            app_name: format!("vswitch memif {}", env!("CARGO_PKG_VERSION")),
            handshake_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
        }
    }
}

/// Counters of a server socket (connections not yet tied to an
/// interface).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused before or at INIT (unknown id, wrong secret,
    /// bad first message, timeout, too many pending).
    pub refused: u64,
    /// The reason of the last refusal.
    pub last_refusal: Option<String>,
}

enum Cmd {
    Add(Arc<IfShared>),
    Remove(u32),
    Stop,
}

/// What `Server` and `Client` share: the command channel to the control
/// thread and the interfaces added.
struct Handle {
    role: Role,
    addr: SocketAddr,
    cmds: mpsc::Sender<Cmd>,
    wake: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
    ifaces: Mutex<BTreeMap<u32, Interface>>,
    stats: Arc<Mutex<SocketStats>>,
}

impl Handle {
    fn send(&self, c: Cmd) {
        let _ = self.cmds.send(c);
        sys::eventfd_signal(self.wake.as_raw_fd());
    }

    fn add(&self, cfg: InterfaceConfig) -> io::Result<Interface> {
        cfg.validate()?;
        if cfg.zero_copy && self.role == Role::Server {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("memif {}: zero-copy is for the client role (the client owns the buffers)", cfg.id),
            ));
        }
        let mut map = self.ifaces.lock().unwrap();
        if map.contains_key(&cfg.id) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("memif {}: id already used on {}", cfg.id, self.addr),
            ));
        }
        let sh = Arc::new(IfShared::new(cfg, self.role, self.addr.to_string(), self.wake.clone())?);
        let i = Interface { sh: sh.clone() };
        map.insert(i.id(), i.clone());
        drop(map);
        self.send(Cmd::Add(sh));
        Ok(i)
    }

    fn remove(&self, id: u32) -> bool {
        let had = self.ifaces.lock().unwrap().remove(&id).is_some();
        if had {
            self.send(Cmd::Remove(id));
        }
        had
    }

    fn interfaces(&self) -> Vec<Interface> {
        self.ifaces.lock().unwrap().values().cloned().collect()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A memif server: listens on one socket and serves the interfaces added
/// to it, by interface id. Dropping it disconnects every client ("server
/// shutting down"), stops its control thread and removes the socket file.
pub struct Server {
    h: Handle,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("socket", &self.h.addr).finish()
    }
}

impl Server {
    /// Binds and listens (replacing a stale socket file, refusing one in
    /// use) and starts the control thread.
    pub fn bind(cfg: ServerConfig) -> io::Result<Server> {
        let listener = sys::listen(&cfg.socket, cfg.socket_mode)
            .map_err(|e| io::Error::new(e.kind(), format!("memif server {}: {e}", cfg.socket)))?;
        let file = match &cfg.socket {
            SocketAddr::Path(p) => sys::file_id(p).map(|id| (p.clone(), id)),
            SocketAddr::Abstract(_) => None,
        };
        let h = Engine::start(Role::Server, cfg.socket.clone(), Some((listener, file)), EngineConfig::Server(cfg))?;
        Ok(Server { h })
    }

    /// Serves another interface on this socket. Fails if the id is taken
    /// or the configuration is invalid.
    pub fn add_interface(&self, cfg: InterfaceConfig) -> io::Result<Interface> {
        self.h.add(cfg)
    }

    /// Disconnects (reason "interface deleted") and forgets an interface;
    /// false if there was none with that id.
    pub fn remove_interface(&self, id: u32) -> bool {
        self.h.remove(id)
    }

    /// The interfaces, by id.
    pub fn interfaces(&self) -> Vec<Interface> {
        self.h.interfaces()
    }

    /// The socket.
    pub fn socket(&self) -> &SocketAddr {
        &self.h.addr
    }

    /// Connection counters of the socket.
    pub fn stats(&self) -> SocketStats {
        self.h.stats.lock().unwrap().clone()
    }
}

/// A memif client: connects its interfaces to one server socket (one
/// control connection per interface) and keeps them connected: after any
/// disconnect, or while the server is absent, it retries with backoff.
/// Dropping it disconnects ("client shutting down").
pub struct Client {
    h: Handle,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("socket", &self.h.addr).finish()
    }
}

impl Client {
    /// Starts the control thread; nothing connects until an interface is
    /// added.
    pub fn new(cfg: ClientConfig) -> io::Result<Client> {
        let h = Engine::start(Role::Client, cfg.socket.clone(), None, EngineConfig::Client(cfg))?;
        Ok(Client { h })
    }

    /// Adds an interface and starts connecting it.
    pub fn add_interface(&self, cfg: InterfaceConfig) -> io::Result<Interface> {
        self.h.add(cfg)
    }

    /// Disconnects (reason "interface deleted") and forgets an interface.
    pub fn remove_interface(&self, id: u32) -> bool {
        self.h.remove(id)
    }

    /// The interfaces, by id.
    pub fn interfaces(&self) -> Vec<Interface> {
        self.h.interfaces()
    }

    /// The server's socket.
    pub fn socket(&self) -> &SocketAddr {
        &self.h.addr
    }
}

// --- the control thread ----------------------------------------------------

enum EngineConfig {
    Server(ServerConfig),
    Client(ClientConfig),
}

/// A connection accepted by the server, waiting for its INIT.
struct Pending {
    fd: OwnedFd,
    deadline: Instant,
    pid: Option<i32>,
}

struct Chan {
    fd: OwnedFd,
    /// Handshake deadline; none once up.
    deadline: Option<Instant>,
}

/// Which descriptor goes with a queued client message.
#[derive(Clone, Copy)]
enum Attach {
    None,
    Region(usize),
    S2M(usize),
    M2S(usize),
}

enum State {
    Idle,
    /// Server: INIT accepted, collecting regions and rings.
    SrvSetup {
        regions: Vec<Region>,
        s2m: Vec<PeerRing>,
        m2s: Vec<PeerRing>,
    },
    /// Client: connected, waiting for HELLO.
    CliHello,
    /// Client: memory built, announcing it one message per answer.
    CliSetup {
        build: Box<ClientBuild>,
        queue: VecDeque<(Msg, Attach)>,
        awaiting_connected: bool,
    },
    /// Link up.
    Up,
}

struct Iface {
    sh: Arc<IfShared>,
    chan: Option<Chan>,
    st: State,
    retry_at: Option<Instant>,
    backoff: Duration,
}

/// Why a connection ends: the reason, and whether to tell the peer.
struct Fail {
    reason: String,
    send: bool,
}

impl Fail {
    fn proto(reason: impl Into<String>) -> Fail {
        Fail { reason: reason.into(), send: true }
    }
}

enum Incoming {
    Msg(Msg, Option<OwnedFd>),
    Eof,
    Again,
}

/// Receives and checks one control message (size, ancillary data, fds).
fn read_msg(fd: BorrowedFd<'_>) -> Result<Incoming, Fail> {
    let r = match sys::recv(fd) {
        Ok(RecvOutcome::Msg(r)) => r,
        Ok(RecvOutcome::Eof) => return Ok(Incoming::Eof),
        Ok(RecvOutcome::WouldBlock) => return Ok(Incoming::Again),
        Err(e) => return Err(Fail { reason: format!("control socket: {e}"), send: false }),
    };
    let mut r = r;
    if r.ctrunc {
        return Err(Fail::proto("control data truncated (too many fds?)"));
    }
    if r.other_cmsgs > 0 {
        return Err(Fail::proto("unexpected ancillary data"));
    }
    if r.truncated {
        return Err(Fail::proto(format!("invalid message size (over {} bytes)", r.data.len())));
    }
    if r.fds.len() > 1 {
        return Err(Fail::proto(format!("{} fds with one message", r.fds.len())));
    }
    let msg = Msg::decode(&r.data[..r.len]).map_err(|e| Fail::proto(e.to_string()))?;
    let fd = r.fds.pop();
    match (msg.msg_type(), fd.is_some()) {
        (MsgType::AddRegion, false) => Err(Fail::proto("missing memory region fd")),
        (MsgType::AddRing, false) => Err(Fail::proto("missing ring interrupt fd")),
        (MsgType::AddRegion | MsgType::AddRing, true) | (_, false) => Ok(Incoming::Msg(msg, fd)),
        (t, true) => Err(Fail::proto(format!("unexpected fd with {}", t.name()))),
    }
}

fn send_msg(fd: BorrowedFd<'_>, m: &Msg, attach: Option<BorrowedFd<'_>>) -> Result<(), Fail> {
    sys::send(fd, &m.encode(), attach)
        .map_err(|e| Fail { reason: format!("send {}: {e}", m.msg_type().name()), send: false })
}

/// `now + d`, or a year from now if that overflows.
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or(now + Duration::from_secs(365 * 86400))
}

fn disconnect_msg(reason: &str) -> Msg {
    Msg::Disconnect(Disconnect { code: 0, reason: Reason::new(reason) })
}

struct Engine {
    role: Role,
    addr: SocketAddr,
    cfg: EngineConfig,
    listener: Option<OwnedFd>,
    socket_file: Option<(std::path::PathBuf, (u64, u64))>,
    wake: Arc<OwnedFd>,
    cmds: mpsc::Receiver<Cmd>,
    ifaces: BTreeMap<u32, Iface>,
    pending: Vec<Pending>,
    stats: Arc<Mutex<SocketStats>>,
}

#[derive(Clone, Copy)]
enum Who {
    Wake,
    Listener,
    Pending(RawFd),
    Iface(u32, RawFd),
}

type Listening = (OwnedFd, Option<(std::path::PathBuf, (u64, u64))>);

impl Engine {
    fn start(role: Role, addr: SocketAddr, listening: Option<Listening>, cfg: EngineConfig) -> io::Result<Handle> {
        let wake = Arc::new(sys::eventfd()?);
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(Mutex::new(SocketStats::default()));
        let (listener, socket_file) = match listening {
            Some((l, f)) => (Some(l), f),
            None => (None, None),
        };
        let engine = Engine {
            role,
            addr: addr.clone(),
            cfg,
            listener,
            socket_file,
            wake: wake.clone(),
            cmds: rx,
            ifaces: BTreeMap::new(),
            pending: Vec::new(),
            stats: stats.clone(),
        };
        let thread = std::thread::Builder::new().name(format!("memif-{}", role.name())).spawn(move || engine.run())?;
        Ok(Handle { role, addr, cmds: tx, wake, thread: Some(thread), ifaces: Mutex::new(BTreeMap::new()), stats })
    }

    fn run(mut self) {
        loop {
            let now = Instant::now();
            self.timers(now);
            let mut pfds = Vec::with_capacity(2 + self.pending.len() + self.ifaces.len());
            let mut who = Vec::with_capacity(pfds.capacity());
            let mut watch = |fd: RawFd, w: Who| {
                pfds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
                who.push(w);
            };
            watch(self.wake.as_raw_fd(), Who::Wake);
            if let Some(l) = &self.listener {
                watch(l.as_raw_fd(), Who::Listener);
            }
            for p in &self.pending {
                watch(p.fd.as_raw_fd(), Who::Pending(p.fd.as_raw_fd()));
            }
            for (id, i) in &self.ifaces {
                if let Some(c) = &i.chan {
                    watch(c.fd.as_raw_fd(), Who::Iface(*id, c.fd.as_raw_fd()));
                }
            }
            let timeout = self.next_timer().map_or(1000, |t| {
                let ms = t.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000);
                ms.min(1000) as i32
            });
            if sys::poll(&mut pfds, timeout).is_err() {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            for (p, w) in pfds.iter().zip(who) {
                if p.revents == 0 {
                    continue;
                }
                match w {
                    Who::Wake => {
                        sys::eventfd_drain(self.wake.as_raw_fd());
                        if !self.commands() {
                            self.shutdown();
                            return;
                        }
                        self.check_faults();
                    }
                    Who::Listener => self.accept(),
                    Who::Pending(fd) => self.pending_ready(fd),
                    Who::Iface(id, fd) => self.iface_ready(id, fd),
                }
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        let p = self.pending.iter().map(|p| p.deadline);
        let c = self.ifaces.values().filter_map(|i| i.chan.as_ref().and_then(|c| c.deadline));
        let r = self.ifaces.values().filter(|i| i.chan.is_none()).filter_map(|i| i.retry_at);
        p.chain(c).chain(r).min()
    }

    fn timers(&mut self, now: Instant) {
        let expired: Vec<usize> = (0..self.pending.len()).rev().filter(|&i| self.pending[i].deadline <= now).collect();
        for i in expired {
            let p = self.pending.remove(i);
            self.refuse(p.fd, "handshake timeout");
        }
        let ids: Vec<u32> = self.ifaces.keys().copied().collect();
        for id in ids {
            let Some(i) = self.ifaces.get(&id) else { continue };
            if i.chan.as_ref().and_then(|c| c.deadline).is_some_and(|d| d <= now) {
                self.with_iface(id, |e, i| e.drop_link(i, Some("handshake timeout".into()), true, true));
            } else if i.chan.is_none() && i.retry_at.is_some_and(|t| t <= now) {
                self.with_iface(id, |e, i| e.try_connect(i));
            }
        }
    }

    /// Runs `f` on interface `id` taken out of the map (so `f` may use the
    /// rest of the engine), then puts it back.
    fn with_iface(&mut self, id: u32, f: impl FnOnce(&mut Engine, &mut Iface)) {
        if let Some(mut i) = self.ifaces.remove(&id) {
            f(self, &mut i);
            self.ifaces.insert(id, i);
        }
    }

    /// Handles queued commands; false on Stop.
    fn commands(&mut self) -> bool {
        while let Ok(c) = self.cmds.try_recv() {
            match c {
                Cmd::Add(sh) => {
                    let id = sh.cfg.id;
                    let i = Iface {
                        sh,
                        chan: None,
                        st: State::Idle,
                        retry_at: (self.role == Role::Client).then(Instant::now),
                        backoff: self.reconnect_min(),
                    };
                    self.ifaces.insert(id, i);
                }
                Cmd::Remove(id) => {
                    if let Some(mut i) = self.ifaces.remove(&id) {
                        self.drop_link(&mut i, Some("interface deleted".into()), true, false);
                    }
                }
                Cmd::Stop => return false,
            }
        }
        true
    }

    fn check_faults(&mut self) {
        let ids: Vec<u32> = self.ifaces.keys().copied().collect();
        for id in ids {
            self.with_iface(id, |e, i| {
                if !matches!(i.st, State::Up) {
                    return;
                }
                let Some(conn) = i.sh.current() else { return };
                let fault = *conn.fault.lock().unwrap();
                if let Some((dir, q, f)) = fault {
                    e.drop_link(i, Some(format!("{} ring {q}: {f}", dir.name())), true, true);
                }
            });
        }
    }

    fn shutdown(&mut self) {
        let reason = format!("{} shutting down", self.role.name());
        for (_, mut i) in std::mem::take(&mut self.ifaces) {
            self.drop_link(&mut i, Some(reason.clone()), true, false);
        }
        for p in std::mem::take(&mut self.pending) {
            let _ = send_msg(p.fd.as_fd(), &disconnect_msg(&reason), None);
        }
        self.listener = None;
        if let Some((path, id)) = &self.socket_file {
            if sys::file_id(path) == Some(*id) {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn reconnect_min(&self) -> Duration {
        match &self.cfg {
            EngineConfig::Client(c) => c.reconnect_min,
            EngineConfig::Server(_) => Duration::ZERO,
        }
    }

    /// Ends a connection that never got to an interface.
    fn refuse(&mut self, fd: OwnedFd, reason: &str) {
        let _ = send_msg(fd.as_fd(), &disconnect_msg(reason), None);
        let mut s = self.stats.lock().unwrap();
        s.refused += 1;
        s.last_refusal = Some(reason.to_string());
    }

    /// Takes an interface's link down: DISCONNECT to the peer (if `send`),
    /// the connection away from the queues, state and reasons recorded; a
    /// client schedules its next attempt.
    fn drop_link(&mut self, i: &mut Iface, reason: Option<String>, send: bool, protocol_error: bool) {
        let chan = i.chan.take();
        let was_up = matches!(i.st, State::Up);
        if was_up {
            i.sh.unpublish();
        }
        i.st = State::Idle;
        i.sh.set_state(|c| {
            c.state = Some(LinkState::Down);
            if reason.is_some() {
                c.local_reason = reason.clone();
            }
            if was_up {
                c.disconnects += 1;
            }
            if protocol_error {
                c.protocol_errors += 1;
            }
            c.up_since = None;
        });
        // The peer hears it after our state says so.
        if let (true, Some(c), Some(r)) = (send, &chan, &reason) {
            let _ = send_msg(c.fd.as_fd(), &disconnect_msg(r), None);
        }
        drop(chan);
        if let EngineConfig::Client(cfg) = &self.cfg {
            if was_up {
                i.backoff = cfg.reconnect_min;
            }
            i.retry_at = Some(after(i.backoff));
            i.backoff = i.backoff.saturating_mul(2).min(cfg.reconnect_max);
        }
    }

    fn link_up(&mut self, i: &mut Iface, conn: Arc<conn::Conn>, peer_if_name: String) {
        if self.role == Role::Client {
            conn.post_all_buffers();
        }
        i.sh.publish(conn);
        i.st = State::Up;
        if let Some(c) = &mut i.chan {
            c.deadline = None;
        }
        if let EngineConfig::Client(cfg) = &self.cfg {
            i.backoff = cfg.reconnect_min;
        }
        i.sh.set_state(|c| {
            c.state = Some(LinkState::Up);
            c.peer_if_name = Some(peer_if_name);
            c.connects += 1;
            c.up_since = Some(Instant::now());
        });
    }

    // --- server -----------------------------------------------------------

    fn accept(&mut self) {
        let (max_pending, timeout, name) = match &self.cfg {
            EngineConfig::Server(c) => (c.max_pending, c.handshake_timeout, Name::lossy(&c.app_name)),
            EngineConfig::Client(_) => return,
        };
        loop {
            let fd = match self.listener.as_ref().map(|l| sys::accept(l.as_fd())) {
                Some(Ok(Some(fd))) => fd,
                _ => return,
            };
            self.stats.lock().unwrap().accepted += 1;
            if self.pending.len() >= max_pending {
                self.refuse(fd, "too many pending connections");
                continue;
            }
            let hello = Msg::Hello(Hello {
                name: name.clone(),
                min_version: VERSION,
                max_version: VERSION,
                max_region: (MAX_REGIONS - 1) as u16,
                max_m2s_ring: (MAX_QUEUES - 1) as u16,
                max_s2m_ring: (MAX_QUEUES - 1) as u16,
                max_log2_ring_size: MAX_LOG2_RING_SIZE,
            });
            if send_msg(fd.as_fd(), &hello, None).is_err() {
                continue;
            }
            let pid = sys::peer_pid(fd.as_fd());
            self.pending.push(Pending { fd, deadline: after(timeout), pid });
        }
    }

    fn pending_ready(&mut self, raw: RawFd) {
        let Some(k) = self.pending.iter().position(|p| p.fd.as_raw_fd() == raw) else { return };
        let init = match read_msg(self.pending[k].fd.as_fd()) {
            Ok(Incoming::Again) => return,
            Ok(Incoming::Eof) | Err(Fail { send: false, .. }) => {
                self.pending.remove(k);
                return;
            }
            Err(f) => {
                let p = self.pending.remove(k);
                self.refuse(p.fd, &f.reason);
                return;
            }
            Ok(Incoming::Msg(Msg::Init(init), None)) => init,
            Ok(Incoming::Msg(m, _)) => {
                let p = self.pending.remove(k);
                self.refuse(p.fd, &format!("unexpected {} message before INIT", m.msg_type().name()));
                return;
            }
        };
        let p = self.pending.remove(k);
        let Some(mut i) = self.ifaces.remove(&init.id) else {
            self.refuse(p.fd, "unmatched interface id");
            return;
        };
        match self.check_init(&i, &init) {
            Err(reason) => {
                // Recorded before the peer hears it.
                i.sh.set_state(|c| {
                    c.protocol_errors += 1;
                    c.local_reason = Some(reason.clone());
                });
                self.refuse(p.fd, &reason);
            }
            Ok(()) => {
                if send_msg(p.fd.as_fd(), &Msg::Ack, None).is_ok() {
                    i.chan = Some(Chan { fd: p.fd, deadline: Some(p.deadline) });
                    i.st = State::SrvSetup { regions: Vec::new(), s2m: Vec::new(), m2s: Vec::new() };
                    i.sh.set_state(|c| {
                        c.state = Some(LinkState::Connecting);
                        c.peer_name = Some(init.name.as_str().to_string());
                        c.peer_if_name = None;
                        c.peer_pid = p.pid;
                        c.remote_reason = None;
                    });
                }
            }
        }
        self.ifaces.insert(init.id, i);
    }

    fn check_init(&self, i: &Iface, init: &Init) -> Result<(), String> {
        if i.chan.is_some() {
            return Err("already connected".into());
        }
        if init.mode != i.sh.cfg.mode {
            return Err(format!("mode mismatch (we are {}, peer asked {})", i.sh.cfg.mode.name(), init.mode.name()));
        }
        if let Some(ours) = &i.sh.cfg.secret {
            let ours = Secret::new(ours.as_bytes()).map_err(|e| e.to_string())?;
            match &init.secret {
                None => return Err("secret required".into()),
                Some(s) if !s.matches(&ours) => return Err("incorrect secret".into()),
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn iface_ready(&mut self, id: u32, raw: RawFd) {
        self.with_iface(id, |e, i| {
            if i.chan.as_ref().map(|c| c.fd.as_raw_fd()) != Some(raw) {
                return;
            }
            // Several messages may be queued; handle them all.
            loop {
                let Some(chan) = &i.chan else { return };
                let r = match read_msg(chan.fd.as_fd()) {
                    Ok(Incoming::Again) => return,
                    Ok(Incoming::Eof) => Err(Fail { reason: "control connection closed by peer".into(), send: false }),
                    Err(f) => Err(f),
                    Ok(Incoming::Msg(Msg::Disconnect(d), _)) => {
                        i.sh.set_state(|c| c.remote_reason = Some(d.reason.as_str().to_string()));
                        e.drop_link(i, None, false, false);
                        return;
                    }
                    Ok(Incoming::Msg(m, fd)) => match e.role {
                        Role::Server => e.server_msg(i, m, fd),
                        Role::Client => e.client_msg(i, m),
                    },
                };
                if let Err(f) = r {
                    let protocol = f.send;
                    e.drop_link(i, Some(f.reason), f.send, protocol);
                    return;
                }
            }
        });
    }

    fn server_msg(&mut self, i: &mut Iface, m: Msg, fd: Option<OwnedFd>) -> Result<(), Fail> {
        let cfg = &i.sh.cfg;
        let State::SrvSetup { regions, s2m, m2s } = &mut i.st else {
            return Err(Fail::proto(format!("unexpected {} message", m.msg_type().name())));
        };
        match m {
            Msg::AddRegion(AddRegion { index, size }) => {
                if usize::from(index) != regions.len() {
                    return Err(Fail::proto(format!("unexpected region index {index} (expected {})", regions.len())));
                }
                let limit = match &self.cfg {
                    EngineConfig::Server(c) => c.max_shared_memory,
                    EngineConfig::Client(_) => 0,
                };
                let total = regions.iter().map(|r| r.len() as u64).sum::<u64>() + size;
                if total > limit {
                    return Err(Fail::proto(format!("regions of {total} bytes exceed the limit of {limit}")));
                }
                let r = Region::from_peer(fd.expect("read_msg checked"), size).map_err(Fail::proto)?;
                regions.push(r);
            }
            Msg::AddRing(ar) => {
                let list = if ar.direction == Direction::S2M { s2m } else { m2s };
                let dir = ar.direction.name();
                if usize::from(ar.index) != list.len() {
                    return Err(Fail::proto(format!(
                        "unexpected {dir} ring index {} (expected {})",
                        ar.index,
                        list.len()
                    )));
                }
                if usize::from(ar.index) >= cfg.queues {
                    return Err(Fail::proto(format!("too many {dir} rings (interface has {} queues)", cfg.queues)));
                }
                let region = regions
                    .get(usize::from(ar.region))
                    .ok_or_else(|| Fail::proto(format!("{dir} ring {} in unknown region {}", ar.index, ar.region)))?;
                if !region.fits_ring(u64::from(ar.offset), ar.log2_ring_size) {
                    return Err(Fail::proto(format!(
                        "{dir} ring {} at offset {} does not fit region {} ({} bytes) or is misaligned",
                        ar.index,
                        ar.offset,
                        ar.region,
                        region.len()
                    )));
                }
                let efd = fd.expect("read_msg checked");
                if !sys::is_eventfd(efd.as_fd()) {
                    return Err(Fail::proto("ring interrupt fd is not an eventfd"));
                }
                sys::set_nonblocking(efd.as_fd()).map_err(|e| Fail::proto(format!("ring interrupt fd: {e}")))?;
                list.push(PeerRing { msg: ar, eventfd: efd });
            }
            Msg::Connect(name) => {
                let regions = std::mem::take(regions);
                let s2m = std::mem::take(s2m);
                let m2s = std::mem::take(m2s);
                let conn = conn::server_build(cfg, regions, s2m, m2s).map_err(Fail::proto)?;
                let ours = Name::lossy(&cfg.name);
                let chan = i.chan.as_ref().expect("a message came on it");
                send_msg(chan.fd.as_fd(), &Msg::Connected(ours), None)?;
                self.link_up(i, Arc::new(conn), name.as_str().to_string());
                return Ok(());
            }
            m => return Err(Fail::proto(format!("unexpected {} message", m.msg_type().name()))),
        }
        let chan = i.chan.as_ref().expect("a message came on it");
        send_msg(chan.fd.as_fd(), &Msg::Ack, None)
    }

    // --- client -----------------------------------------------------------

    fn try_connect(&mut self, i: &mut Iface) {
        let EngineConfig::Client(cfg) = &self.cfg else { return };
        i.retry_at = None;
        match sys::connect(&self.addr) {
            Ok(fd) => {
                let pid = sys::peer_pid(fd.as_fd());
                i.chan = Some(Chan { fd, deadline: Some(after(cfg.handshake_timeout)) });
                i.st = State::CliHello;
                i.sh.set_state(|c| {
                    c.state = Some(LinkState::Connecting);
                    c.peer_pid = pid;
                    c.last_error = None;
                });
            }
            Err(e) => {
                let msg = format!("connect {}: {e}", self.addr);
                i.sh.set_state(|c| c.last_error = Some(msg));
                i.retry_at = Some(after(i.backoff));
                i.backoff = i.backoff.saturating_mul(2).min(cfg.reconnect_max);
            }
        }
    }

    fn client_msg(&mut self, i: &mut Iface, m: Msg) -> Result<(), Fail> {
        let app_name = match &self.cfg {
            EngineConfig::Client(c) => Name::lossy(&c.app_name),
            EngineConfig::Server(_) => return Err(Fail::proto("not a client")),
        };
        match (&mut i.st, m) {
            (State::CliHello, Msg::Hello(h)) => {
                let cfg = &i.sh.cfg;
                let mut s2m = cfg.queues.min(usize::from(h.max_s2m_ring) + 1);
                let mut m2s = cfg.queues.min(usize::from(h.max_m2s_ring) + 1);
                if cfg.zero_copy {
                    // A zero-copy queue pair shares its buffers between its
                    // two rings: pairs only.
                    s2m = s2m.min(m2s);
                    m2s = s2m;
                }
                let log2 = cfg.log2_ring_size.min(h.max_log2_ring_size);
                if log2 < MIN_LOG2_RING_SIZE {
                    return Err(Fail::proto(format!(
                        "server allows rings of 2^{} only; we need at least 2^{MIN_LOG2_RING_SIZE}",
                        h.max_log2_ring_size
                    )));
                }
                let build = ClientBuild::new(cfg, s2m, m2s, log2)
                    .map_err(|e| Fail::proto(format!("cannot create shared memory: {e}")))?;
                let secret = match &cfg.secret {
                    Some(s) => Some(Secret::new(s.as_bytes()).map_err(|e| Fail::proto(e.to_string()))?),
                    None => None,
                };
                let mut queue = VecDeque::new();
                queue.push_back((
                    Msg::Init(Init { version: VERSION, id: cfg.id, mode: cfg.mode, secret, name: app_name }),
                    Attach::None,
                ));
                let size = build.conn.regions[0].len() as u64;
                queue.push_back((Msg::AddRegion(AddRegion { index: 0, size }), Attach::Region(0)));
                for (dir, ends) in [(Direction::S2M, &build.conn.tx), (Direction::M2S, &build.conn.rx)] {
                    for e in ends {
                        let ar = AddRing {
                            direction: dir,
                            index: e.index as u16,
                            region: e.region,
                            offset: e.offset,
                            log2_ring_size: log2,
                        };
                        let at = if dir == Direction::S2M { Attach::S2M(e.index) } else { Attach::M2S(e.index) };
                        queue.push_back((Msg::AddRing(ar), at));
                    }
                }
                queue.push_back((Msg::Connect(Name::lossy(&cfg.name)), Attach::None));
                i.sh.set_state(|c| {
                    c.peer_name = Some(h.name.as_str().to_string());
                    c.peer_if_name = None;
                    c.remote_reason = None;
                });
                i.st = State::CliSetup { build: Box::new(build), queue, awaiting_connected: false };
                self.client_send_next(i)
            }
            (State::CliSetup { awaiting_connected: false, .. }, Msg::Ack) => self.client_send_next(i),
            (State::CliSetup { awaiting_connected: true, .. }, Msg::Connected(name)) => {
                let State::CliSetup { build, .. } = std::mem::replace(&mut i.st, State::Idle) else { unreachable!() };
                self.link_up(i, Arc::new(build.conn), name.as_str().to_string());
                Ok(())
            }
            (_, m) => Err(Fail::proto(format!("unexpected {} message", m.msg_type().name()))),
        }
    }

    fn client_send_next(&mut self, i: &mut Iface) -> Result<(), Fail> {
        let State::CliSetup { build, queue, awaiting_connected } = &mut i.st else {
            return Err(Fail::proto("unexpected ACK"));
        };
        let Some((m, at)) = queue.pop_front() else { return Err(Fail::proto("unexpected ACK")) };
        let attach = match at {
            Attach::None => None,
            Attach::Region(r) => build.conn.regions[r].fd().map(|f| f.as_fd()),
            Attach::S2M(k) => Some(build.conn.tx[k].eventfd.as_fd()),
            Attach::M2S(k) => Some(build.conn.rx[k].eventfd.as_fd()),
        };
        let chan = i.chan.as_ref().expect("connected");
        send_msg(chan.fd.as_fd(), &m, attach)?;
        if matches!(m, Msg::Connect(_)) {
            *awaiting_connected = true;
        }
        Ok(())
    }
}
