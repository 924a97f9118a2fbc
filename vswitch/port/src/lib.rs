//! vswitch-port: how packets get in and out.
//!
//! A port backend (tap, AF_PACKET, AF_XDP, memif, DPDK — and the packet
//! generator) hands out queues: an [`RxQueue`] per receive queue and
//! a [`TxQueue`] per worker, so a worker sends on any port without locks.
//! Queues work in bursts of up to [`VECTOR_SIZE`](vswitch_packet::VECTOR_SIZE)
//! packets; syscalls, when a backend needs them, happen per burst where
//! the kernel interface allows it (tap does not: one per packet).
//!
//! Backends here: [`pg`] (generator and sink, no I/O), [`tap`] (a kernel
//! tap device, one syscall per packet), [`af_packet`] (a packet socket
//! on an existing device with TPACKET_V3 rings) and [`af_xdp`] (XDP
//! sockets on an existing device, with an XDP program assembled and
//! loaded without libbpf) and [`memif`] (shared-memory rings with a
//! CNF, VPP or DPDK, through the `vswitch-memif` crate); [`netdev`] has
//! what the kernel backends share about devices and namespaces.
//!
//! This is one of the layers allowed `unsafe`: syscalls, `ioctl`s and the
//! kernel-shared ring memory. Every `unsafe` block says why it is sound.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod af_packet;
pub mod af_xdp;
pub mod memif;
pub mod netdev;
pub mod pg;
pub mod tap;

use std::os::fd::BorrowedFd;
use vswitch_packet::{Buffers, PacketId};

/// Counters of one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Packets moved.
    pub packets: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Packets dropped by the queue (no buffer, ring full, ...).
    pub drops: u64,
}

/// A receive queue, owned by one worker.
pub trait RxQueue: Send {
    /// The port index written into each packet's `meta.rx_if`.
    fn port(&self) -> u32;
    /// Receives up to `max` packets into `out` (appending); returns how
    /// many. Each packet has `current`/`len` set and `rx_if = port()`.
    fn rx_burst(&mut self, bufs: &mut Buffers, out: &mut Vec<PacketId>, max: usize) -> usize;
    /// A file descriptor that becomes readable when packets arrive, for
    /// interrupt mode; `None` when the queue can only be polled.
    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// Counters.
    fn stats(&self) -> QueueStats;
}

/// A transmit queue, owned by one worker.
pub trait TxQueue: Send {
    /// Sends the packets in `packets` and empties it. Packets it cannot
    /// send are freed and counted as drops: the caller owns none of them
    /// afterwards.
    fn tx_burst(&mut self, bufs: &mut Buffers, packets: &mut Vec<PacketId>);
    /// Counters.
    fn stats(&self) -> QueueStats;
}
