//! The daemon's [`PortRegistry`]: creates the kernel-facing backends the
//! controller asks for and hands their queues to the workers.
//!
//! - **tap**: created (or, when it exists, attached to) in the daemon's
//!   namespace or in the interface's `netns`; receive queues are spread
//!   over the workers (queue `i` of port `p` to worker `(p + i) % n`),
//!   and every worker gets a transmit handle (a duplicated descriptor of
//!   queue `w % queues`, with its own counters).
//! - **af-packet**: `max(queues, workers)` sockets on the device, in one
//!   fanout group when more than one, socket `i` polled and used for
//!   sending by worker `i % n`.
//! - **af-xdp**: one XDP socket per device queue (`queues`), socket `i`
//!   polled and used for sending by worker `i % n`; the XDP program is
//!   detached by the kernel when the sockets close (also on a crash).
//! - **memif**: an interface on a memif [`Server`] (one per socket path,
//!   shared by every interface on it, told apart by id; the socket's
//!   directory is created if missing) or [`Client`] (one per socket path;
//!   it reconnects by itself). Queue pair `i` is polled and used for
//!   sending by worker `i % n`. The link is up only while a peer is
//!   connected ([`DaemonPorts::links`]).
//! - **pg**: a transmit sink on every worker, no receive queue.
//!
//! Taps the daemon creates are persistent while it runs and recorded in
//! `<state-dir>/taps` ([`OwnedTaps`]): if the daemon dies, the device
//! stays in the pod with the pod's addresses and the next start attaches
//! to it. Removing the interface removes the taps the daemon created; a
//! clean shutdown ([`DaemonPorts::remove_all`]) removes those in its own
//! namespace and keeps those in pods' namespaces (an upgrade must not take
//! pods' interfaces, with their addresses, away).

use crate::dataplane::Workers;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vswitch_control::PortLink;
use vswitch_control::{MemifRole, MemifSpec, PortRegistry, PortSpec, PortType};
use vswitch_port::af_packet::{AfPacketConfig, AfPacketQueue};
use vswitch_port::af_xdp::{AfXdpConfig, AfXdpQueue};
use vswitch_port::memif::vswitch_memif::{
    self, Client, ClientConfig, Interface as MemifInterface, InterfaceInfo, Server, ServerConfig, SocketAddr,
    SocketStats,
};
use vswitch_port::memif::{MemifCounters, MemifPortStats};
use vswitch_port::netdev::{in_netns, netns_path, NetDev};
use vswitch_port::pg::PgTx;
use vswitch_port::tap::{Tap, TapConfig};
use vswitch_port::{RxQueue, TxQueue};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The taps this daemon created, kept in a file in the state directory
/// (a line `<netns>\t<ifname>` each, `-` for the daemon's namespace), so
/// that a restart after a crash knows which existing devices are its own.
#[derive(Debug)]
pub struct OwnedTaps {
    path: PathBuf,
    set: BTreeSet<(String, String)>,
}

impl OwnedTaps {
    /// The file name inside the state directory.
    pub const FILE: &'static str = "taps";

    /// Reads `<dir>/taps` (absent: none).
    pub fn load(dir: &Path) -> io::Result<OwnedTaps> {
        let path = dir.join(Self::FILE);
        let set = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(ns, name)| (ns.to_string(), name.to_string()))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        Ok(OwnedTaps { path, set })
    }

    fn key(netns: Option<&str>, name: &str) -> (String, String) {
        (netns.unwrap_or("-").to_string(), name.to_string())
    }

    /// Whether the daemon created this device.
    pub fn contains(&self, netns: Option<&str>, name: &str) -> bool {
        self.set.contains(&Self::key(netns, name))
    }

    fn update(&mut self, netns: Option<&str>, name: &str, owned: bool) {
        let key = Self::key(netns, name);
        let changed = if owned { self.set.insert(key) } else { self.set.remove(&key) };
        if changed {
            if let Err(e) = self.save() {
                tracing::warn!(error = %e, "could not record the taps vswitch owns");
            }
        }
    }

    fn save(&self) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text: String = self.set.iter().map(|(ns, n)| format!("{ns}\t{n}\n")).collect();
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// A backend in use.
enum Backend {
    Tap {
        /// Keeps the device (and its persistence switch) until removal.
        tap: Tap,
        /// Created by vswitch: removed with the interface.
        owned: bool,
        netns: Option<String>,
        /// The device, opened in its namespace, for its link state.
        netdev: Option<NetDev>,
    },
    AfPacket {
        netdev: Option<NetDev>,
    },
    AfXdp {
        netdev: Option<NetDev>,
    },
    Memif {
        iface: MemifInterface,
        spec: MemifSpec,
        counters: MemifCounters,
        /// The port whose interface (same socket and id) this one took
        /// over, while that port still exists.
        replaced: Option<u32>,
    },
    Pg,
}

/// The memif server or client of one socket path.
enum MemifEnd {
    Server(Server),
    Client(Client),
}

impl MemifEnd {
    fn role(&self) -> MemifRole {
        match self {
            MemifEnd::Server(_) => MemifRole::Server,
            MemifEnd::Client(_) => MemifRole::Client,
        }
    }

    fn add(&self, cfg: vswitch_memif::InterfaceConfig) -> io::Result<MemifInterface> {
        match self {
            MemifEnd::Server(s) => s.add_interface(cfg),
            MemifEnd::Client(c) => c.add_interface(cfg),
        }
    }

    fn remove(&self, id: u32) -> bool {
        match self {
            MemifEnd::Server(s) => s.remove_interface(id),
            MemifEnd::Client(c) => c.remove_interface(id),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            MemifEnd::Server(s) => s.interfaces().is_empty(),
            MemifEnd::Client(c) => c.interfaces().is_empty(),
        }
    }
}

/// One memif port, for `show memif`.
#[derive(Clone, Debug)]
pub struct MemifPortInfo {
    /// The interface it belongs to.
    pub interface: String,
    /// Its port index.
    pub port: u32,
    /// Its configuration.
    pub spec: MemifSpec,
    /// What the memif layer knows: state, peer, regions, rings, counters.
    pub info: InterfaceInfo,
    /// What the port layer counts, per receive queue.
    pub rx: Vec<MemifPortStats>,
    /// What the port layer counts, per transmit queue.
    pub tx: Vec<MemifPortStats>,
    /// The server socket's counters (role server).
    pub socket: Option<SocketStats>,
}

/// What the daemon knows of a backend, for `show interfaces`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    /// The kernel device's name.
    pub device: Option<String>,
    /// Created by vswitch (taps) rather than found.
    pub owned: bool,
    /// Receive queues handed to workers.
    pub rx_queues: usize,
}

/// The daemon's port registry.
pub struct DaemonPorts {
    workers: Arc<Workers>,
    backends: BTreeMap<u32, (Backend, BackendInfo)>,
    owned: OwnedTaps,
    /// memif servers and clients by socket.
    memif_ends: BTreeMap<String, MemifEnd>,
    /// Which port holds each (socket, memif id).
    memif_owners: BTreeMap<(String, u32), u32>,
    /// How memif receive queues start (interrupt when the workers block
    /// on their queues).
    memif_rx_mode: vswitch_memif::RxMode,
    /// Queues and backends of removed ports, closed by [`Closing`] after
    /// the controller's lock is released.
    closing: Closing,
}

/// Queues and devices of removed ports, waiting to be closed. Closing the
/// last descriptor of a tap deletes its device, which takes the kernel
/// 10–20 ms (RCU grace periods); done under the controller's lock it
/// would hold every other apply (a burst of CNI DELs) behind it, and done
/// in a worker it would stall the data path. Dropping this closes them.
#[derive(Default)]
pub struct Closing(Vec<Box<dyn Send>>);

impl Closing {
    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl DaemonPorts {
    /// A registry handing queues to `workers`, recording owned taps in
    /// `owned`.
    pub fn new(workers: Arc<Workers>, owned: OwnedTaps) -> DaemonPorts {
        DaemonPorts {
            workers,
            backends: BTreeMap::new(),
            owned,
            memif_ends: BTreeMap::new(),
            memif_owners: BTreeMap::new(),
            memif_rx_mode: vswitch_memif::RxMode::Polling,
            closing: Closing::default(),
        }
    }

    /// What removed ports left to close (see [`Closing`]): drop it once
    /// the controller's lock is released.
    pub fn take_closing(&mut self) -> Closing {
        std::mem::take(&mut self.closing)
    }

    /// Whether memif receive queues ask their peers to signal each burst
    /// (for workers that block on their queues when idle: `--idle
    /// interrupt`) or poll (peers do not signal). Applies to interfaces
    /// created from now on.
    pub fn set_memif_interrupts(&mut self, on: bool) {
        self.memif_rx_mode = if on { vswitch_memif::RxMode::Interrupt } else { vswitch_memif::RxMode::Polling };
    }

    /// What is known of port `port`'s backend.
    pub fn info(&self, port: u32) -> Option<&BackendInfo> {
        self.backends.get(&port).map(|(_, i)| i)
    }

    /// Gives every worker its queues of `port`: `rx[w]` to poll (through
    /// the node `input`) and `tx[w]` to send with. Waits until each did.
    fn hand_out(
        &self,
        port: u32,
        input: &'static str,
        rx: Vec<Vec<Box<dyn RxQueue>>>,
        tx: Vec<Option<Box<dyn TxQueue>>>,
    ) -> Result<(), BoxError> {
        for (w, (rx, tx)) in rx.into_iter().zip(tx).enumerate() {
            let r = self.workers.run_on(w, move |wk| {
                if let Some(tx) = tx {
                    wk.set_tx(port, tx);
                }
                for q in rx {
                    wk.add_rx(q, input)?;
                }
                Ok::<(), String>(())
            });
            match r {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err(format!("worker {w} did not take the queues of port {port}").into()),
            }
        }
        Ok(())
    }

    /// Takes `port`'s queues back from every worker; they are closed
    /// later, by the control thread (see [`Closing`]).
    fn take_back(&mut self, port: u32) {
        for (w, r) in self.workers.run_on_all(move |wk| (wk.take_rx(port), wk.remove_tx(port))).into_iter().enumerate()
        {
            match r {
                Some(queues) => self.closing.0.push(Box::new(queues)),
                None => tracing::error!(worker = w, port, "worker did not release the queues of a removed port"),
            }
        }
    }

    fn create_tap(&mut self, spec: &PortSpec) -> Result<(Backend, BackendInfo), BoxError> {
        let name = spec.host_ifname.clone().ok_or("a tap needs host_ifname")?;
        let config = TapConfig {
            name: name.clone(),
            queues: spec.queues,
            multi_queue: spec.queues > 1,
            mac: None,
            mtu: None,
            up: true,
            persist: true,
        };
        let open = || -> io::Result<(Tap, bool)> {
            match Tap::create(&config) {
                Ok(t) => Ok((t, true)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Tap::attach(&config).map(|t| (t, false)),
                Err(e) => Err(e),
            }
        };
        // The device's NetDev is opened in the same namespace: its ioctl
        // socket must live there to see the device.
        let open = || open().map(|(t, c)| (t, c, NetDev::open(&name).ok()));
        let (mut tap, created, netdev) = match &spec.netns {
            Some(ns) => in_netns(&netns_file(ns), open)?,
            None => open()?,
        };
        let netns = spec.netns.as_deref();
        let owned = created || self.owned.contains(netns, &name);
        if created {
            self.owned.update(netns, &name, true);
        }
        tracing::info!(
            interface = %spec.interface, port = spec.port, device = %name, netns = netns.unwrap_or("-"),
            queues = spec.queues, "tap {}", if created { "created" } else if owned { "re-attached" } else { "attached" }
        );
        let n = self.workers.len();
        let queues = tap.take_queues(spec.port);
        let mut rx: Vec<Vec<Box<dyn RxQueue>>> = (0..n).map(|_| Vec::new()).collect();
        let mut tx: Vec<Option<Box<dyn TxQueue>>> = Vec::with_capacity(n);
        for w in 0..n {
            tx.push(Some(Box::new(queues[w % queues.len()].try_clone()?)));
        }
        let rx_queues = queues.len();
        for (i, q) in queues.into_iter().enumerate() {
            rx[(spec.port as usize + i) % n].push(Box::new(q));
        }
        let undo = |tap: &mut Tap| {
            if created {
                let _ = tap.set_persist(false);
            }
        };
        if let Err(e) = self.hand_out(spec.port, "tap-input", rx, tx) {
            self.take_back(spec.port);
            undo(&mut tap);
            if created {
                self.owned.update(netns, &name, false);
            }
            return Err(e);
        }
        let info = BackendInfo { device: Some(name), owned, rx_queues };
        Ok((Backend::Tap { tap, owned, netns: spec.netns.clone(), netdev }, info))
    }

    fn create_af_packet(&mut self, spec: &PortSpec) -> Result<(Backend, BackendInfo), BoxError> {
        let name = spec.host_ifname.clone().ok_or("an af-packet port needs host_ifname")?;
        let n = self.workers.len();
        let count = (spec.queues as usize).max(n);
        let sockets = AfPacketQueue::open_queues(&AfPacketConfig::device(&name), spec.port, count)?;
        let mut rx: Vec<Vec<Box<dyn RxQueue>>> = (0..n).map(|_| Vec::new()).collect();
        let mut tx: Vec<Option<Box<dyn TxQueue>>> = (0..n).map(|_| None).collect();
        for (i, s) in sockets.into_iter().enumerate() {
            let (r, t) = s.split();
            rx[i % n].push(Box::new(r));
            if i < n {
                tx[i] = Some(Box::new(t));
            }
        }
        self.hand_out(spec.port, "af-packet-input", rx, tx).inspect_err(|_| self.take_back(spec.port))?;
        tracing::info!(interface = %spec.interface, port = spec.port, device = %name, sockets = count, "af-packet opened");
        let netdev = NetDev::open(&name).ok();
        Ok((Backend::AfPacket { netdev }, BackendInfo { device: Some(name), owned: false, rx_queues: count }))
    }

    /// One XDP socket per device queue (`queues`, from queue 0), socket
    /// `i` on worker `i % n`, which also sends through it. The kernel
    /// steers frames by queue, so a worker with no socket of a port cannot
    /// send on it (counted as a drop): give a multi-worker daemon's AF_XDP
    /// ports as many queues as workers.
    fn create_af_xdp(&mut self, spec: &PortSpec) -> Result<(Backend, BackendInfo), BoxError> {
        let name = spec.host_ifname.clone().ok_or("an af-xdp port needs host_ifname")?;
        let n = self.workers.len();
        let count = spec.queues as usize;
        let sockets = AfXdpQueue::open_queues(&AfXdpConfig::device(&name), spec.port, count)?;
        let mode = sockets.first().map(|s| format!("{:?}/{:?}", s.xdp_mode(), s.bind_mode())).unwrap_or_default();
        let mut rx: Vec<Vec<Box<dyn RxQueue>>> = (0..n).map(|_| Vec::new()).collect();
        let mut tx: Vec<Option<Box<dyn TxQueue>>> = (0..n).map(|_| None).collect();
        for (i, s) in sockets.into_iter().enumerate() {
            let (r, t) = s.split();
            rx[i % n].push(Box::new(r));
            if i < n {
                tx[i] = Some(Box::new(t));
            }
        }
        if count < n {
            tracing::warn!(interface = %spec.interface, queues = count, workers = n,
                "af-xdp port has fewer queues than workers: workers without one drop what they send to it");
        }
        self.hand_out(spec.port, "af-xdp-input", rx, tx).inspect_err(|_| self.take_back(spec.port))?;
        tracing::info!(interface = %spec.interface, port = spec.port, device = %name, sockets = count, mode = %mode,
            "af-xdp opened");
        let netdev = NetDev::open(&name).ok();
        Ok((Backend::AfXdp { netdev }, BackendInfo { device: Some(name), owned: false, rx_queues: count }))
    }

    /// The memif server or client of `m.socket`, made if there is none.
    fn memif_end(&mut self, m: &MemifSpec) -> Result<&MemifEnd, BoxError> {
        if let Some(end) = self.memif_ends.get(&m.socket) {
            if end.role() != m.role {
                return Err(format!(
                    "memif socket {} is in use in the {} role; it cannot also be {}",
                    m.socket,
                    end.role().as_str(),
                    m.role.as_str()
                )
                .into());
            }
        } else {
            let addr = SocketAddr::parse(&m.socket);
            let end = match m.role {
                MemifRole::Server => {
                    if let SocketAddr::Path(p) = &addr {
                        if let Some(dir) = p.parent() {
                            std::fs::create_dir_all(dir)
                                .map_err(|e| format!("memif socket directory {}: {e}", dir.display()))?;
                        }
                    }
                    let server = Server::bind(ServerConfig::new(addr))?;
                    tracing::info!(socket = %m.socket, "memif server listening");
                    MemifEnd::Server(server)
                }
                MemifRole::Client => MemifEnd::Client(Client::new(ClientConfig::new(addr))?),
            };
            self.memif_ends.insert(m.socket.clone(), end);
        }
        Ok(&self.memif_ends[&m.socket])
    }

    /// Forgets the memif server or client of `socket` if no interface is
    /// left on it (a server removes its socket file).
    fn memif_end_gc(&mut self, socket: &str) {
        if self.memif_ends.get(socket).is_some_and(MemifEnd::is_empty) {
            self.memif_ends.remove(socket);
            tracing::info!(socket, "memif socket closed");
        }
    }

    /// An interface on the memif server or client of its socket; queue
    /// pair `i` on worker `i % n`. A port replacing another on the same
    /// socket and id (its settings changed) takes the id over at once; if
    /// the new port is removed again while the old one still exists (a
    /// failed apply being undone), the old one gets its interface back.
    fn create_memif(&mut self, spec: &PortSpec) -> Result<(Backend, BackendInfo), BoxError> {
        let m = spec.memif.as_deref().cloned().unwrap_or_default();
        let previous = self.memif_owners.get(&(m.socket.clone(), m.id)).copied();
        let (iface, counters, count) = match self.attach_memif(spec.port, &spec.interface, spec.queues, &m) {
            Ok(x) => x,
            Err(e) => {
                if let Some(old) = previous {
                    self.restore_memif(old);
                }
                return Err(e);
            }
        };
        tracing::info!(interface = %spec.interface, port = spec.port, role = m.role.as_str(), socket = %m.socket,
            id = m.id, queues = count, replaced_port = ?previous, "memif interface added");
        let backend = Backend::Memif { iface, spec: m, counters, replaced: previous };
        Ok((backend, BackendInfo { device: None, owned: false, rx_queues: count }))
    }

    /// Adds interface `m.id` on `m.socket` for `port` (taking the id over
    /// from the port that holds it, if any) and hands its queues to the
    /// workers. Returns the interface, its counters and its queue count.
    fn attach_memif(
        &mut self,
        port: u32,
        name: &str,
        queues: u16,
        m: &MemifSpec,
    ) -> Result<(MemifInterface, MemifCounters, usize), BoxError> {
        let n = self.workers.len();
        let key = (m.socket.clone(), m.id);
        let cfg = vswitch_memif::InterfaceConfig {
            id: m.id,
            name: name.to_string(),
            mode: match m.mode {
                vswitch_control::MemifMode::Ethernet => vswitch_memif::Mode::Ethernet,
                vswitch_control::MemifMode::Ip => vswitch_memif::Mode::Ip,
            },
            secret: m.secret.clone(),
            queues: queues as usize,
            log2_ring_size: m.ring_size.trailing_zeros() as u8,
            buffer_size: m.buffer_size,
            rx_mode: self.memif_rx_mode,
            max_frame_len: vswitch_memif::InterfaceConfig::new(0).max_frame_len,
            zero_copy: false,
        };
        let previous = self.memif_owners.get(&key).copied();
        let end = self.memif_end(m)?;
        if previous.is_some() {
            end.remove(m.id);
        }
        let iface = match end.add(cfg) {
            Ok(i) => i,
            Err(e) => {
                if previous.is_some() {
                    self.memif_owners.remove(&key);
                }
                self.memif_end_gc(&m.socket);
                return Err(format!("memif {} id {}: {e}", m.socket, m.id).into());
            }
        };
        let q = vswitch_port::memif::take_queues(&iface, port).ok_or("memif queues already taken")?;
        let counters = q.counters.clone();
        let count = q.rx.len();
        let mut rx: Vec<Vec<Box<dyn RxQueue>>> = (0..n).map(|_| Vec::new()).collect();
        let mut tx: Vec<Option<Box<dyn TxQueue>>> = (0..n).map(|_| None).collect();
        for (i, (r, t)) in q.rx.into_iter().zip(q.tx).enumerate() {
            rx[i % n].push(Box::new(r));
            if i < n {
                tx[i] = Some(Box::new(t));
            }
        }
        if count < n {
            tracing::warn!(
                interface = name,
                queues = count,
                workers = n,
                "memif port has fewer queues than workers: workers without one drop what they send to it"
            );
        }
        if let Err(e) = self.hand_out(port, "memif-input", rx, tx) {
            self.take_back(port);
            if let Some(end) = self.memif_ends.get(&m.socket) {
                end.remove(m.id);
            }
            if previous.is_some() {
                self.memif_owners.remove(&key);
            }
            self.memif_end_gc(&m.socket);
            return Err(e);
        }
        self.memif_owners.insert(key, port);
        Ok((iface, counters, count))
    }

    /// Port `old`, replaced by a port that is being removed again, gets
    /// its memif interface back (new queues, same settings).
    fn restore_memif(&mut self, old: u32) {
        let Some((Backend::Memif { iface, spec, .. }, _)) = self.backends.get(&old) else { return };
        let (name, queues, m) = (iface.config().name.clone(), iface.config().queues as u16, spec.clone());
        self.take_back(old);
        match self.attach_memif(old, &name, queues, &m) {
            Ok((iface, counters, _)) => {
                if let Some((Backend::Memif { iface: i, counters: c, .. }, _)) = self.backends.get_mut(&old) {
                    *i = iface;
                    *c = counters;
                }
                tracing::info!(interface = %name, port = old, socket = %m.socket, id = m.id, "memif interface restored");
            }
            Err(e) => tracing::error!(interface = %name, port = old, error = %e, "memif interface not restored"),
        }
    }

    /// Every memif port, for `show memif`.
    pub fn memif_ports(&self) -> Vec<MemifPortInfo> {
        self.backends
            .iter()
            .filter_map(|(&port, (b, _))| match b {
                Backend::Memif { iface, spec, counters, .. } => Some(MemifPortInfo {
                    interface: iface.config().name.clone(),
                    port,
                    spec: spec.clone(),
                    info: iface.info(),
                    rx: counters.rx.iter().map(|c| c.get()).collect(),
                    tx: counters.tx.iter().map(|c| c.get()).collect(),
                    socket: match self.memif_ends.get(&spec.socket) {
                        Some(MemifEnd::Server(s)) => Some(s.stats()),
                        _ => None,
                    },
                }),
                _ => None,
            })
            .collect()
    }

    fn create_pg(&mut self, spec: &PortSpec) -> Result<(Backend, BackendInfo), BoxError> {
        let n = self.workers.len();
        let rx = (0..n).map(|_| Vec::new()).collect();
        let tx = (0..n).map(|_| Some(Box::new(PgTx::new(0)) as Box<dyn TxQueue>)).collect();
        self.hand_out(spec.port, "pg-input", rx, tx).inspect_err(|_| self.take_back(spec.port))?;
        Ok((Backend::Pg, BackendInfo { device: None, owned: false, rx_queues: 0 }))
    }

    /// The link of every port with a kernel device, as the kernel has it
    /// now: for a tap, whether the pod side is administratively up (the
    /// carrier is ours: on while vswitch holds the queues); for a device
    /// read by a socket, whether it is up with carrier. A device that has
    /// gone (a deleted veth) is down.
    pub fn links(&self) -> Vec<(u32, PortLink)> {
        let read = |d: &NetDev, tap: bool| match (d.link(), d.mtu()) {
            (Ok(l), Ok(mtu)) => PortLink { up: if tap { l.admin_up } else { l.admin_up && l.running }, mtu: Some(mtu) },
            _ => PortLink { up: false, mtu: None },
        };
        self.backends
            .iter()
            .filter_map(|(&port, (b, _))| match b {
                Backend::Tap { netdev: Some(d), .. } => Some((port, read(d, true))),
                Backend::AfPacket { netdev: Some(d) } | Backend::AfXdp { netdev: Some(d) } => {
                    Some((port, read(d, false)))
                }
                Backend::Memif { iface, .. } => Some((port, PortLink { up: iface.is_up(), mtu: None })),
                _ => None,
            })
            .collect()
    }

    /// The link of every memif port: up while a peer is connected.
    pub fn memif_links(&self) -> Vec<(u32, PortLink)> {
        self.backends
            .iter()
            .filter_map(|(&port, (b, _))| match b {
                Backend::Memif { iface, .. } => Some((port, PortLink { up: iface.is_up(), mtu: None })),
                _ => None,
            })
            .collect()
    }

    /// Removes every backend (clean shutdown). Taps vswitch created in
    /// its own namespace stop being persistent, so they go when their last
    /// descriptor closes (when the workers stop). Those in other (pods')
    /// namespaces stay persistent and recorded: they are the pods'
    /// interfaces, configured by the pods' CNI, and the next start
    /// attaches to them.
    pub fn remove_all(&mut self) {
        for (port, (backend, _)) in std::mem::take(&mut self.backends) {
            if let Backend::Tap { mut tap, owned: true, netns, .. } = backend {
                if netns.is_some() {
                    tracing::info!(
                        port,
                        device = tap.name(),
                        netns = netns.as_deref().unwrap_or("-"),
                        "tap kept in its namespace for the next start"
                    );
                    continue;
                }
                if let Err(e) = tap.set_persist(false) {
                    tracing::warn!(port, error = %e, "tap stays persistent");
                }
                self.owned.update(None, tap.name(), false);
                tracing::info!(port, device = tap.name(), "tap removed");
            }
        }
        // memif servers say "server shutting down" to their peers and
        // remove their socket files; clients disconnect.
        self.memif_owners.clear();
        self.memif_ends.clear();
    }
}

/// The namespace file of a `netns` setting: an absolute path as is, a
/// name under `/run/netns`.
pub fn netns_file(ns: &str) -> PathBuf {
    if ns.starts_with('/') {
        PathBuf::from(ns)
    } else {
        netns_path(ns)
    }
}

impl PortRegistry for DaemonPorts {
    fn create_port(&mut self, spec: &PortSpec) -> Result<(), BoxError> {
        if self.workers.is_empty() {
            return Err("no workers".into());
        }
        let made = match spec.port_type {
            PortType::Tap => self.create_tap(spec)?,
            PortType::AfPacket => self.create_af_packet(spec)?,
            PortType::Pg => self.create_pg(spec)?,
            PortType::AfXdp => self.create_af_xdp(spec)?,
            PortType::Memif => self.create_memif(spec)?,
        };
        self.backends.insert(spec.port, made);
        Ok(())
    }

    fn remove_port(&mut self, spec: &PortSpec) {
        self.take_back(spec.port);
        match self.backends.remove(&spec.port) {
            Some((Backend::Tap { mut tap, owned, netns, netdev }, _)) => {
                if owned {
                    if let Err(e) = tap.set_persist(false) {
                        tracing::warn!(port = spec.port, error = %e, "tap stays persistent");
                    }
                    self.owned.update(netns.as_deref(), tap.name(), false);
                }
                tracing::info!(interface = %spec.interface, port = spec.port, device = tap.name(),
                    "tap {}", if owned { "removed" } else { "detached" });
                self.closing.0.push(Box::new((tap, netdev)));
            }
            Some((b @ Backend::AfPacket { .. }, info)) => {
                tracing::info!(interface = %spec.interface, port = spec.port, device = ?info.device, "af-packet closed");
                self.closing.0.push(Box::new(b));
            }
            Some((b @ Backend::AfXdp { .. }, info)) => {
                tracing::info!(interface = %spec.interface, port = spec.port, device = ?info.device, "af-xdp closed");
                self.closing.0.push(Box::new(b));
            }
            Some((Backend::Memif { spec: m, replaced, .. }, _)) => {
                let key = (m.socket.clone(), m.id);
                // Ports that took this one's interface over no longer
                // have anything to give back.
                for (b, _) in self.backends.values_mut() {
                    if let Backend::Memif { replaced: r @ Some(_), .. } = b {
                        if *r == Some(spec.port) {
                            *r = None;
                        }
                    }
                }
                if self.memif_owners.get(&key) == Some(&spec.port) {
                    self.memif_owners.remove(&key);
                    if let Some(end) = self.memif_ends.get(&m.socket) {
                        end.remove(m.id);
                    }
                }
                tracing::info!(interface = %spec.interface, port = spec.port, socket = %m.socket, id = m.id,
                    "memif interface removed");
                if let Some(old) = replaced {
                    self.restore_memif(old);
                }
                self.memif_end_gc(&m.socket);
            }
            Some((Backend::Pg, _)) | None => {}
        }
    }
}
