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
//! - **pg**: a transmit sink on every worker, no receive queue.
//!
//! Taps the daemon creates are persistent while it runs and recorded in
//! `<state-dir>/taps` ([`OwnedTaps`]): if the daemon dies, the device
//! stays in the pod with the pod's addresses and the next start attaches
//! to it. Removing the interface, or a clean shutdown
//! ([`DaemonPorts::remove_all`]), removes the taps the daemon created.

use crate::dataplane::Workers;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vswitch_control::PortLink;
use vswitch_control::{PortRegistry, PortSpec, PortType};
use vswitch_port::af_packet::{AfPacketConfig, AfPacketQueue};
use vswitch_port::af_xdp::{AfXdpConfig, AfXdpQueue};
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
    Pg,
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
}

impl DaemonPorts {
    /// A registry handing queues to `workers`, recording owned taps in
    /// `owned`.
    pub fn new(workers: Arc<Workers>, owned: OwnedTaps) -> DaemonPorts {
        DaemonPorts { workers, backends: BTreeMap::new(), owned }
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

    /// Takes port `port`'s queues away from every worker (their file
    /// descriptors are closed by the workers).
    fn take_back(&self, port: u32) {
        for (w, r) in self
            .workers
            .run_on_all(move |wk| {
                wk.remove_rx(port);
                wk.remove_tx(port);
            })
            .into_iter()
            .enumerate()
        {
            if r.is_none() {
                tracing::error!(worker = w, port, "worker did not release the queues of a removed port");
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
                _ => None,
            })
            .collect()
    }

    /// Removes every backend (clean shutdown): the taps vswitch created
    /// stop being persistent, so they go when their last descriptor
    /// closes, which is when the workers stop.
    pub fn remove_all(&mut self) {
        for (port, (backend, _)) in std::mem::take(&mut self.backends) {
            if let Backend::Tap { mut tap, owned: true, netns, .. } = backend {
                if let Err(e) = tap.set_persist(false) {
                    tracing::warn!(port, error = %e, "tap stays persistent");
                }
                self.owned.update(netns.as_deref(), tap.name(), false);
                tracing::info!(port, device = tap.name(), "tap removed");
            }
        }
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
        };
        self.backends.insert(spec.port, made);
        Ok(())
    }

    fn remove_port(&mut self, spec: &PortSpec) {
        self.take_back(spec.port);
        match self.backends.remove(&spec.port) {
            Some((Backend::Tap { mut tap, owned, netns, .. }, _)) => {
                if owned {
                    if let Err(e) = tap.set_persist(false) {
                        tracing::warn!(port = spec.port, error = %e, "tap stays persistent");
                    }
                    self.owned.update(netns.as_deref(), tap.name(), false);
                }
                tracing::info!(interface = %spec.interface, port = spec.port, device = tap.name(),
                    "tap {}", if owned { "removed" } else { "detached" });
            }
            Some((Backend::AfPacket { .. }, info)) => {
                tracing::info!(interface = %spec.interface, port = spec.port, device = ?info.device, "af-packet closed")
            }
            Some((Backend::AfXdp { .. }, info)) => {
                tracing::info!(interface = %spec.interface, port = spec.port, device = ?info.device, "af-xdp closed")
            }
            Some((Backend::Pg, _)) | None => {}
        }
    }
}
