//! tap: a kernel Ethernet device whose other end is a file descriptor.
//!
//! [`Tap::create`] makes a tap device through `/dev/net/tun` (`IFF_TAP |
//! IFF_NO_PI`, and `IFF_MULTI_QUEUE` when more than one queue is asked
//! for: one file descriptor per queue, the kernel spreading its
//! transmissions over them by flow); [`Tap::attach`] opens the queues of
//! an existing one (`ip tuntap add mode tap ...`). Either can set the
//! kernel side's MAC address and MTU and bring it up.
//!
//! What the kernel transmits on the device, vswitch receives, and the
//! other way round. Each queue is a [`TapQueue`], which is both an
//! [`RxQueue`] and a [`TxQueue`]; [`TapQueue::try_clone`] gives a second
//! handle on the same queue, so one worker can poll it while another (or
//! the same one) transmits on it.
//!
//! # Cost
//!
//! A plain tap moves one frame per `read(2)`/`write(2)`: there is no batch
//! call, so a burst of N packets costs N syscalls (plus one that finds the
//! queue empty). Frames are read straight into pool buffers at
//! [`HEADROOM`] (`readv` with a small spill area behind the buffer, to
//! tell an oversized frame from one that exactly fits) and written
//! straight from them: no intermediate copy. tap is the compatible,
//! simple backend; AF_PACKET rings and memif are the fast ones.
//!
//! # Lifetime
//!
//! A created device lives while the [`Tap`] or any of its queues is open
//! and is removed by the kernel when the last one closes, unless
//! [`TapConfig::persist`] (or [`Tap::set_persist`]) made it persistent.
//! An attached device is never removed by vswitch, and its persistence is
//! left as found unless [`Tap::set_persist`] changes it.

use crate::netdev::{context, ifindex, ifname_bytes, ifname_string, NetDev};
use crate::{QueueStats, RxQueue, TxQueue};
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use vswitch_packet::{Buffers, PacketId, HEADROOM};

/// Most queues a tap device can have (the kernel's MAX_TAP_QUEUES).
pub const MAX_QUEUES: u16 = 256;

/// How to make or open a tap device.
#[derive(Clone, Debug)]
pub struct TapConfig {
    /// The device's name. Empty when creating: the kernel picks `tapN`
    /// (read it back with [`Tap::name`]).
    pub name: String,
    /// Number of queues (1..=[`MAX_QUEUES`]); more than one implies
    /// multi-queue.
    pub queues: u16,
    /// Open the device multi-queue even with one queue (needed to attach
    /// to a device created multi-queue).
    pub multi_queue: bool,
    /// Kernel-side MAC address to set (vswitch's own address is whatever
    /// it writes in its frames).
    pub mac: Option<[u8; 6]>,
    /// Kernel-side MTU to set.
    pub mtu: Option<u32>,
    /// Bring the kernel side up.
    pub up: bool,
    /// Keep the device when vswitch closes it (create only).
    pub persist: bool,
}

impl Default for TapConfig {
    fn default() -> Self {
        TapConfig { name: String::new(), queues: 1, multi_queue: false, mac: None, mtu: None, up: true, persist: false }
    }
}

impl TapConfig {
    /// A single-queue, non-persistent device called `name`, brought up.
    pub fn named(name: &str) -> TapConfig {
        TapConfig { name: name.to_string(), ..TapConfig::default() }
    }
}

/// A tap device opened by vswitch: its name, index and queues.
#[derive(Debug)]
pub struct Tap {
    name: String,
    ifindex: u32,
    /// A second descriptor on queue 0, for TUNSETPERSIST after the queues
    /// were handed out.
    ctl: OwnedFd,
    queues: Vec<OwnedFd>,
    created: bool,
    persist: bool,
}

const TUN_PATH: &CStr = c"/dev/net/tun";

fn open_tun(name: &str) -> io::Result<OwnedFd> {
    // SAFETY: `TUN_PATH` is a NUL-terminated constant; the result is checked.
    let fd = unsafe { libc::open(TUN_PATH.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        let step = match e.raw_os_error() {
            Some(libc::ENOENT) => "open /dev/net/tun (is the tun module loaded?)",
            Some(libc::EACCES) | Some(libc::EPERM) => "open /dev/net/tun (needs CAP_NET_ADMIN)",
            _ => "open /dev/net/tun",
        };
        return Err(context("tap", name, step, e));
    }
    // SAFETY: `fd` is fresh and owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// TUNSETIFF on `fd`: creates or attaches; returns the device's name.
fn set_iff(fd: &OwnedFd, name: &str, flags: libc::c_int, creating: bool) -> io::Result<String> {
    // SAFETY: all-zero is a valid `ifreq` (integers, arrays, a union of such).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name = ifname_bytes(name)?;
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes the `ifreq` passed, alive for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut req as *mut libc::ifreq) };
    if r < 0 {
        let e = io::Error::last_os_error();
        let shown = if name.is_empty() { "(unnamed)" } else { name };
        return Err(match e.raw_os_error() {
            Some(libc::EBUSY) if creating => io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("tap {shown}: create: a device with this name already exists (attach to it instead)"),
            ),
            Some(libc::EBUSY) => context(
                "tap",
                shown,
                "attach (TUNSETIFF): queue busy (single-queue device already open elsewhere, or all queues taken)",
                e,
            ),
            Some(libc::EINVAL) if !creating => {
                context("tap", shown, "attach (TUNSETIFF): not a tap device, or its multi-queue setting differs", e)
            }
            Some(libc::EPERM) => context("tap", shown, "TUNSETIFF (needs CAP_NET_ADMIN)", e),
            _ => context("tap", shown, if creating { "create (TUNSETIFF)" } else { "attach (TUNSETIFF)" }, e),
        });
    }
    Ok(ifname_string(&req.ifr_name))
}

fn set_persist_fd(fd: &OwnedFd, name: &str, persist: bool) -> io::Result<()> {
    // SAFETY: TUNSETPERSIST takes its argument by value (no memory access).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETPERSIST as _, persist as libc::c_ulong) };
    if r < 0 {
        return Err(context(
            "tap",
            name,
            if persist { "set persistent" } else { "clear persistent" },
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

impl Tap {
    /// Creates a new tap device as `config` says. Fails with
    /// `AlreadyExists` when a device of that name exists. On any error
    /// nothing is left behind: the device is only made persistent last.
    pub fn create(config: &TapConfig) -> io::Result<Tap> {
        Tap::open(config, true)
    }

    /// Opens `config.queues` queues of the existing tap device
    /// `config.name` and applies `mac`/`mtu`/`up`. Fails with `NotFound`
    /// when there is no such device. `persist` is ignored: the device's
    /// persistence stays as found.
    pub fn attach(config: &TapConfig) -> io::Result<Tap> {
        if config.name.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "tap: attach needs a device name"));
        }
        ifname_bytes(&config.name)?;
        // TUNSETIFF would create a missing device: check first.
        ifindex(&config.name).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                io::Error::new(io::ErrorKind::NotFound, format!("tap {}: attach: no such device", config.name))
            } else {
                e
            }
        })?;
        Tap::open(config, false)
    }

    fn open(config: &TapConfig, creating: bool) -> io::Result<Tap> {
        let shown = if config.name.is_empty() { "(unnamed)" } else { config.name.as_str() };
        if config.queues == 0 || config.queues > MAX_QUEUES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("tap {shown}: queues {} outside 1..={MAX_QUEUES}", config.queues),
            ));
        }
        ifname_bytes(&config.name)?;
        let multi = config.multi_queue || config.queues > 1;
        let flags = libc::IFF_TAP | libc::IFF_NO_PI | if multi { libc::IFF_MULTI_QUEUE } else { 0 };
        // The first queue creates (exclusively, when named) or attaches.
        let first = open_tun(shown)?;
        let excl = if creating && !config.name.is_empty() { libc::IFF_TUN_EXCL } else { 0 };
        let name = set_iff(&first, &config.name, flags | excl, creating)?;
        // From here on, dropping the descriptors removes a created device.
        let mut queues = vec![first];
        for _ in 1..config.queues {
            let fd = open_tun(&name)?;
            set_iff(&fd, &name, flags, false)?;
            queues.push(fd);
        }
        let dev = NetDev::open(&name).map_err(|e| context("tap", &name, "open the kernel side", e))?;
        if let Some(mac) = config.mac {
            dev.set_mac(mac)?;
        }
        if let Some(mtu) = config.mtu {
            dev.set_mtu(mtu)?;
        }
        if config.up {
            dev.set_up(true)?;
        }
        let ctl = queues[0].try_clone().map_err(|e| context("tap", &name, "dup queue descriptor", e))?;
        let persist = creating && config.persist;
        if persist {
            set_persist_fd(&ctl, &name, true)?;
        }
        Ok(Tap { name, ifindex: dev.ifindex(), ctl, queues, created: creating, persist })
    }

    /// The device's name (as given, or as the kernel picked it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Whether vswitch created the device (rather than attached to it).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Queues not yet taken.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// Hands out the queues (the first call gets them all, later calls
    /// none), receiving as port `port`.
    pub fn take_queues(&mut self, port: u32) -> Vec<TapQueue> {
        let name: std::sync::Arc<str> = self.name.as_str().into();
        self.queues
            .drain(..)
            .enumerate()
            .map(|(i, fd)| TapQueue { fd, port, queue: i as u16, name: name.clone(), counters: TapCounters::default() })
            .collect()
    }

    /// The kernel side, for its MTU, MAC and link state (in the calling
    /// thread's namespace: the device must not have been moved away).
    pub fn netdev(&self) -> io::Result<NetDev> {
        NetDev::open(&self.name)
    }

    /// Makes the device persistent (it outlives vswitch) or not (the
    /// kernel removes it when the last descriptor closes).
    pub fn set_persist(&mut self, persist: bool) -> io::Result<()> {
        set_persist_fd(&self.ctl, &self.name, persist)?;
        self.persist = persist;
        Ok(())
    }

    /// Whether the device outlives vswitch (as far as vswitch set it).
    pub fn persistent(&self) -> bool {
        self.persist
    }
}

/// Counters of one tap queue (of this handle: clones count apart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames dropped for not fitting in a buffer.
    pub rx_oversize: u64,
    /// Reads that failed (other than "nothing to read").
    pub rx_errors: u64,
    /// Bursts cut short by an empty buffer pool (the frame stays queued
    /// in the kernel, which drops when its queue overflows).
    pub rx_no_buffer: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames dropped because the kernel would have blocked (EAGAIN).
    pub tx_dropped: u64,
    /// Writes that failed otherwise (device down, gone, ...).
    pub tx_errors: u64,
}

/// One queue of a tap device: a non-blocking file descriptor.
#[derive(Debug)]
pub struct TapQueue {
    fd: OwnedFd,
    port: u32,
    queue: u16,
    name: std::sync::Arc<str>,
    counters: TapCounters,
}

/// Bytes read behind the buffer to recognise a frame that did not fit.
const SPILL: usize = 64;

impl TapQueue {
    /// Another handle on the same queue (a duplicated descriptor), with
    /// its own counters.
    pub fn try_clone(&self) -> io::Result<TapQueue> {
        let fd = self.fd.try_clone().map_err(|e| context("tap", &self.name, "dup queue descriptor", e))?;
        Ok(TapQueue {
            fd,
            port: self.port,
            queue: self.queue,
            name: self.name.clone(),
            counters: TapCounters::default(),
        })
    }

    /// The queue's number within its device.
    pub fn queue_index(&self) -> u16 {
        self.queue
    }

    /// The device's name.
    pub fn device(&self) -> &str {
        &self.name
    }

    /// Detailed counters.
    pub fn counters(&self) -> TapCounters {
        self.counters
    }
}

impl RxQueue for TapQueue {
    fn port(&self) -> u32 {
        self.port
    }

    fn rx_burst(&mut self, bufs: &mut Buffers, out: &mut Vec<PacketId>, max: usize) -> usize {
        let cap = bufs.buffer_size() - HEADROOM;
        let mut spill = [0u8; SPILL];
        let mut n = 0;
        // One read per frame; at most `max` tries, so errors cannot spin.
        for _ in 0..max {
            let Some(p) = bufs.alloc() else {
                self.counters.rx_no_buffer += 1;
                break;
            };
            let buf = &mut bufs.buffer_mut(p)[HEADROOM..];
            let iov = [
                libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() },
                libc::iovec { iov_base: spill.as_mut_ptr().cast(), iov_len: SPILL },
            ];
            // SAFETY: both iovecs describe writable memory owned by this
            // function for the whole call (the packet's buffer past its
            // headroom, which this worker owns, and `spill`).
            let r = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
            if r < 0 {
                bufs.free(p);
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EAGAIN) => break,
                    Some(libc::EINTR) => continue,
                    _ => {
                        self.counters.rx_errors += 1;
                        break;
                    }
                }
            }
            let len = r as usize;
            if len > cap {
                bufs.free(p);
                self.counters.rx_oversize += 1;
                continue;
            }
            let m = bufs.meta_mut(p);
            m.current = HEADROOM as u16;
            m.len = len as u16;
            m.rx_if = self.port;
            self.counters.rx_bytes += len as u64;
            out.push(p);
            n += 1;
        }
        self.counters.rx_packets += n as u64;
        n
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd.as_fd())
    }

    fn stats(&self) -> QueueStats {
        let c = &self.counters;
        QueueStats { packets: c.rx_packets, bytes: c.rx_bytes, drops: c.rx_oversize + c.rx_errors }
    }
}

impl TxQueue for TapQueue {
    fn tx_burst(&mut self, bufs: &mut Buffers, packets: &mut Vec<PacketId>) {
        for &p in packets.iter() {
            let data = bufs.data(p);
            loop {
                // SAFETY: `data` is a live borrow of the packet's bytes.
                let r = unsafe { libc::write(self.fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
                if r >= 0 {
                    self.counters.tx_packets += 1;
                    self.counters.tx_bytes += data.len() as u64;
                    break;
                }
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => self.counters.tx_dropped += 1,
                    _ => self.counters.tx_errors += 1,
                }
                break;
            }
        }
        bufs.free_bulk(packets);
        packets.clear();
    }

    fn stats(&self) -> QueueStats {
        let c = &self.counters;
        QueueStats { packets: c.tx_packets, bytes: c.tx_bytes, drops: c.tx_dropped + c.tx_errors }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_are_refused_before_touching_the_kernel() {
        let e = Tap::create(&TapConfig { queues: 0, ..TapConfig::named("vswq0") }).unwrap_err();
        assert!(e.to_string().contains("queues 0"), "{e}");
        let e = Tap::create(&TapConfig { queues: 300, ..TapConfig::named("vswq0") }).unwrap_err();
        assert!(e.to_string().contains("queues 300"), "{e}");
        let e = Tap::create(&TapConfig::named("this-name-is-too-long")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = Tap::attach(&TapConfig::default()).unwrap_err();
        assert!(e.to_string().contains("needs a device name"), "{e}");
    }
}
