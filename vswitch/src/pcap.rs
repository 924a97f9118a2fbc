//! `vswitchctl pcap start|stop|status`: packet capture into a file that
//! tcpdump and Wireshark read (VPP's `pcap trace rx tx drop max N intfc X
//! file F`).
//!
//! `start` validates the request, creates the file and writes its header
//! (so an unwritable path fails then, not at stop), sets aside memory for
//! `max` packets on every worker (a [`CaptureBuffer`] each, built here and
//! handed over through the worker's command channel, as `trace add` is)
//! and returns. The workers copy matching packets as they receive,
//! transmit or drop them (see `vswitch_graph::capture`); after `max`
//! packets over all workers they stop taking more. `stop` takes the
//! buffers back, merges the workers' packets by time and writes them to
//! the file: the file is written at stop, also when the capture ended by
//! reaching `max` (status then says so).
//!
//! Two formats: classic pcap (microsecond timestamps, linktype Ethernet)
//! and pcapng (nanosecond timestamps, one interface block per vswitch
//! interface with its name, each packet's direction in its flags, and the
//! node and reason of each drop as the packet's comment). The default is
//! pcapng when drops are captured, pcap otherwise.

use crate::daemon::Daemon;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use vswitch_api::pb;
use vswitch_graph::{CaptureBuffer, CaptureDir, CaptureSpec, CAPTURE_ANY};
use vswitch_nodes::Tables;
use vswitch_packet::clock;

/// Packets taken when the request does not say.
pub const DEFAULT_MAX: u32 = 10_000;
/// The largest snap length (libpcap's); also what "whole packets" means.
pub const MAX_SNAPLEN: u32 = 262_144;
/// Memory a capture may set aside over all workers.
pub const MEMORY_LIMIT: usize = 512 << 20;

/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u16 = 1;

/// The file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap: 24-byte header, 16-byte record headers, µs.
    Pcap,
    /// pcapng: interface names, directions, drop reasons, ns.
    Pcapng,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
        })
    }
}

// ---------------------------------------------------------------------------
// The file formats, written by hand (all little-endian, as this host).

/// The classic pcap global header: magic (µs), version 2.4, zone 0,
/// sigfigs 0, snap length, link type.
pub fn pcap_header(snaplen: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone (8..12) and sigfigs (12..16) stay 0.
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    h[20..24].copy_from_slice(&(LINKTYPE_ETHERNET as u32).to_le_bytes());
    h
}

/// One classic pcap record: seconds, microseconds, captured length,
/// original length, then the bytes.
pub fn pcap_record(out: &mut Vec<u8>, time_ns: u64, orig_len: u32, data: &[u8]) {
    let secs = (time_ns / 1_000_000_000) as u32;
    let usecs = ((time_ns % 1_000_000_000) / 1000) as u32;
    out.extend_from_slice(&secs.to_le_bytes());
    out.extend_from_slice(&usecs.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.extend(std::iter::repeat_n(0u8, pad4(value.len())));
}

/// Wraps `body` as a pcapng block: type, total length, body, total length.
fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    debug_assert_eq!(body.len() % 4, 0);
    let total = (12 + body.len()) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&total.to_le_bytes());
}

/// The pcapng Section Header Block (version 1.0, length unknown,
/// shb_userappl "vswitch").
pub fn pcapng_section(out: &mut Vec<u8>) {
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(-1i64).to_le_bytes());
    option(&mut b, 4, b"vswitch");
    option(&mut b, 0, &[]);
    block(out, 0x0a0d_0d0a, &b);
}

/// A pcapng Interface Description Block: Ethernet, `snaplen`, its name
/// (if_name) and nanosecond timestamps (if_tsresol 9).
pub fn pcapng_interface(out: &mut Vec<u8>, snaplen: u32, name: &str) {
    let mut b = Vec::with_capacity(32 + name.len());
    b.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&snaplen.to_le_bytes());
    option(&mut b, 2, name.as_bytes());
    option(&mut b, 9, &[9]);
    option(&mut b, 0, &[]);
    block(out, 1, &b);
}

/// A pcapng Enhanced Packet Block on interface `interface` (an index in
/// the order the interface blocks were written), with the direction in
/// epb_flags (rx and drop: inbound, tx: outbound) and an optional comment.
pub fn pcapng_packet(
    out: &mut Vec<u8>,
    interface: u32,
    time_ns: u64,
    orig_len: u32,
    data: &[u8],
    dir: CaptureDir,
    comment: Option<&str>,
) {
    let mut b = Vec::with_capacity(48 + data.len() + comment.map_or(0, str::len));
    b.extend_from_slice(&interface.to_le_bytes());
    b.extend_from_slice(&((time_ns >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&(time_ns as u32).to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
    b.extend_from_slice(data);
    b.extend(std::iter::repeat_n(0u8, pad4(data.len())));
    let flags: u32 = match dir {
        CaptureDir::Rx | CaptureDir::Drop => 1,
        CaptureDir::Tx => 2,
    };
    option(&mut b, 2, &flags.to_le_bytes());
    if let Some(c) = comment {
        option(&mut b, 1, c.as_bytes());
    }
    option(&mut b, 0, &[]);
    block(out, 6, &b);
}

/// The file's first bytes, written when the capture starts.
fn file_header(format: Format, snaplen: u32) -> Vec<u8> {
    let mut out = Vec::new();
    match format {
        Format::Pcap => out.extend_from_slice(&pcap_header(snaplen)),
        Format::Pcapng => pcapng_section(&mut out),
    }
    out
}

/// One packet ready for the file.
pub struct FilePacket<'a> {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The vswitch interface (sw_if).
    pub sw_if: u32,
    /// Where it was taken.
    pub dir: CaptureDir,
    /// Its whole length.
    pub orig_len: u32,
    /// The bytes kept.
    pub data: &'a [u8],
    /// For drops: the node that dropped it.
    pub node: &'static str,
    /// For drops: why.
    pub reason: &'static str,
}

/// Writes `packets` (after the header) in `format`; pcapng names each
/// interface by `name(sw_if)` in a block written before its first packet.
/// Returns how many were written.
pub fn write_packets<'a>(
    w: &mut impl Write,
    format: Format,
    snaplen: u32,
    packets: impl IntoIterator<Item = FilePacket<'a>>,
    name: impl Fn(u32) -> String,
) -> io::Result<u64> {
    let mut ids: HashMap<u32, u32> = HashMap::new();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut n = 0;
    for p in packets {
        match format {
            Format::Pcap => pcap_record(&mut out, p.time_ns, p.orig_len, p.data),
            Format::Pcapng => {
                let next = ids.len() as u32;
                let id = *ids.entry(p.sw_if).or_insert_with(|| {
                    pcapng_interface(&mut out, snaplen, &name(p.sw_if));
                    next
                });
                let comment = (p.dir == CaptureDir::Drop).then(|| format!("drop: {}: {}", p.node, p.reason));
                pcapng_packet(&mut out, id, p.time_ns, p.orig_len, p.data, p.dir, comment.as_deref());
            }
        }
        n += 1;
        if out.len() >= 60 * 1024 {
            w.write_all(&out)?;
            out.clear();
        }
    }
    w.write_all(&out)?;
    w.flush()?;
    Ok(n)
}

// ---------------------------------------------------------------------------
// The daemon side.

/// Why a pcap request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcapError {
    /// A field of the request is wrong (the message starts with its name).
    Invalid(String),
    /// Not now: a capture runs already, or none runs.
    State(String),
    /// The workers or the file failed.
    Failed(String),
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcapError::Invalid(m) | PcapError::State(m) | PcapError::Failed(m) => f.write_str(m),
        }
    }
}

struct Session {
    spec: CaptureSpec,
    interface: String,
    path: PathBuf,
    file: File,
    format: Format,
    taken: Arc<AtomicU64>,
    /// Wall clock and TSC when the capture started, to date the packets.
    wall_ns: u64,
    tick: u64,
    started: Instant,
}

/// What the last stopped capture wrote.
#[derive(Clone)]
struct Written {
    path: PathBuf,
    packets: u64,
    format: Format,
}

/// The capture state of the daemon: at most one capture.
#[derive(Default)]
pub struct PcapState {
    session: Mutex<Option<Session>>,
    last: Mutex<Option<Written>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn dirs_text(dirs: u8) -> String {
    [CaptureDir::Rx, CaptureDir::Tx, CaptureDir::Drop]
        .iter()
        .filter(|d| dirs & d.bit() != 0)
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(" ")
}

fn snaplen_text(snaplen: u32) -> String {
    if snaplen >= MAX_SNAPLEN {
        "whole packets".to_string()
    } else {
        format!("the first {snaplen} bytes of each")
    }
}

fn if_name(t: &Tables, sw_if: u32) -> String {
    match t.interface(sw_if) {
        Some(i) => i.name.clone(),
        None if sw_if == vswitch_nodes::NONE => "unknown".to_string(),
        None => format!("sw_if {sw_if}"),
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// A checked start request.
struct Request {
    spec: CaptureSpec,
    interface: String,
    path: PathBuf,
    format: Format,
}

fn check(r: &pb::PcapStartRequest, tables: &Tables) -> Result<Request, PcapError> {
    let invalid = |m: String| Err(PcapError::Invalid(m));
    let dirs = [(r.rx, CaptureDir::Rx), (r.tx, CaptureDir::Tx), (r.drop, CaptureDir::Drop)]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0u8, |a, (_, d)| a | d.bit());
    if dirs == 0 {
        return invalid("direction: nothing to capture: give at least one of --rx, --tx, --drop".into());
    }
    let name = r.interface.trim();
    let sw_if = match name {
        "" => return invalid("interface: required (an interface name, or `any`)".into()),
        "any" => CAPTURE_ANY,
        n => match tables.interfaces.iter().flatten().find(|i| i.name == n) {
            Some(i) => i.sw_if,
            None => {
                let mut known: Vec<&str> = tables.interfaces.iter().flatten().map(|i| i.name.as_str()).collect();
                known.sort_unstable();
                let known = if known.is_empty() { "there are none".to_string() } else { known.join(", ") };
                return invalid(format!("interface: no interface named {n:?} (known: {known}; or any)"));
            }
        },
    };
    let max = if r.max == 0 { DEFAULT_MAX } else { r.max };
    let snaplen = match r.snaplen {
        0 => MAX_SNAPLEN,
        s if s > MAX_SNAPLEN => return invalid(format!("snaplen: {s} is more than {MAX_SNAPLEN} bytes")),
        s => s,
    };
    let format = match r.format.as_str() {
        "" if dirs & CaptureDir::Drop.bit() != 0 => Format::Pcapng,
        "" | "pcap" => Format::Pcap,
        "pcapng" => Format::Pcapng,
        f => return invalid(format!("format: {f:?}: expected pcap or pcapng")),
    };
    if r.file.is_empty() {
        return invalid("file: required".into());
    }
    let path = PathBuf::from(&r.file);
    if !path.is_absolute() {
        return invalid(format!("file: {:?} is not an absolute path", r.file));
    }
    Ok(Request { spec: CaptureSpec { sw_if, dirs, max, snaplen }, interface: name.to_string(), path, format })
}

fn create(path: &Path, header: &[u8]) -> Result<File, PcapError> {
    let fail = |e: io::Error| PcapError::Invalid(format!("file: {}: cannot write: {e}", path.display()));
    if path.is_dir() {
        return Err(PcapError::Invalid(format!("file: {} is a directory", path.display())));
    }
    let mut f = File::options().write(true).create(true).truncate(true).open(path).map_err(fail)?;
    f.write_all(header).map_err(fail)?;
    f.flush().map_err(fail)?;
    Ok(f)
}

impl Daemon {
    /// `pcap start`: checks the request, creates the file, hands every
    /// worker its capture buffer.
    pub fn pcap_start(&self, r: &pb::PcapStartRequest) -> Result<String, PcapError> {
        let mut session = lock(&self.pcap.session);
        if let Some(s) = session.as_ref() {
            return Err(PcapError::State(format!(
                "a capture is already running ({} on {} into {}); only one at a time: \
                 stop it first (vswitchctl pcap stop)",
                dirs_text(s.spec.dirs),
                s.interface,
                s.path.display()
            )));
        }
        let tables = self.control().controller.snapshot();
        let req = check(r, &tables)?;
        let spec = req.spec.clone();
        let workers = self.workers.len().max(1);
        let max_packet = self.pool.buffer_size();
        let per_worker = spec.worker_bytes(max_packet);
        if per_worker.saturating_mul(workers) > MEMORY_LIMIT {
            return Err(PcapError::Invalid(format!(
                "max: {} packets of up to {} bytes on each of {workers} workers need {} MiB; the limit is {} MiB: \
                 lower --max or --snaplen",
                spec.max,
                (spec.snaplen as usize).min(max_packet),
                per_worker.saturating_mul(workers) >> 20,
                MEMORY_LIMIT >> 20
            )));
        }
        let file = create(&req.path, &file_header(req.format, spec.snaplen))?;

        let taken = Arc::new(AtomicU64::new(0));
        let buffers: Vec<Option<CaptureBuffer>> = (0..self.workers.len())
            .map(|_| Some(CaptureBuffer::new(spec.clone(), Arc::clone(&taken), max_packet)))
            .collect();
        let slots = Arc::new(Mutex::new(buffers));
        let (tick, wall_ns) = (clock::now(), now_ns());
        let results = self.workers.run_on_all(move |w| {
            let b = lock(&slots).get_mut(w.id).and_then(Option::take);
            b.map(|b| w.graph().start_capture(b)).is_some()
        });
        let failed: Vec<usize> =
            results.iter().enumerate().filter(|(_, r)| **r != Some(true)).map(|(i, _)| i).collect();
        if !failed.is_empty() {
            self.workers.run_on_all(|w| w.graph().stop_capture().is_some());
            return Err(PcapError::Failed(format!("pcap start: workers {failed:?} did not answer; nothing captured")));
        }
        let text = format!(
            "capturing {} on {}{} into {} ({}): up to {} packets, {}; `vswitchctl pcap stop` writes the file",
            dirs_text(spec.dirs),
            req.interface,
            if spec.sw_if == CAPTURE_ANY { String::new() } else { format!(" (sw_if {})", spec.sw_if) },
            req.path.display(),
            req.format,
            spec.max,
            snaplen_text(spec.snaplen)
        );
        tracing::info!(
            interface = %req.interface,
            dirs = %dirs_text(spec.dirs),
            max = spec.max,
            file = %req.path.display(),
            "pcap capture started"
        );
        *session = Some(Session {
            spec,
            interface: req.interface,
            path: req.path,
            file,
            format: req.format,
            taken,
            wall_ns,
            tick,
            started: Instant::now(),
        });
        Ok(text)
    }

    /// `pcap stop`: takes the workers' buffers back and writes their
    /// packets, by time, to the file. Returns the report and the count.
    pub fn pcap_stop(&self) -> Result<(String, u64, PathBuf), PcapError> {
        // Held until the workers gave their buffers back, so that no new
        // capture starts in between.
        let mut session = lock(&self.pcap.session);
        let Some(s) = session.take() else {
            return Err(PcapError::State(
                "no capture is running (start one with vswitchctl pcap start --interface NAME --rx --file PATH)".into(),
            ));
        };
        let results = self.workers.run_on_all(|w| w.graph().stop_capture());
        let lost: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| i).collect();
        let buffers: Vec<CaptureBuffer> = results.into_iter().flatten().flatten().collect();
        drop(session);

        // Merge by time; a worker's own records are in time order already,
        // and ties keep worker order.
        let mut order: Vec<(u64, usize, usize)> = buffers
            .iter()
            .enumerate()
            .flat_map(|(w, b)| b.records().iter().enumerate().map(move |(i, r)| (r.time, w, i)))
            .collect();
        order.sort_unstable();
        order.truncate(s.spec.max as usize);
        let hz = clock::ticks_per_second().max(1) as u128;
        let time_ns = |tick: u64| -> u64 {
            let since = tick.saturating_sub(s.tick) as u128 * 1_000_000_000 / hz;
            s.wall_ns.saturating_add(since as u64)
        };
        let packets = order.iter().map(|&(_, w, i)| {
            let b = &buffers[w];
            let r = &b.records()[i];
            FilePacket {
                time_ns: time_ns(r.time),
                sw_if: r.sw_if,
                dir: r.dir,
                orig_len: r.orig_len,
                data: b.bytes(r),
                node: r.node,
                reason: r.reason,
            }
        });
        let tables = self.control().controller.snapshot();
        let mut w = BufWriter::new(&s.file);
        let written = write_packets(&mut w, s.format, s.spec.snaplen, packets, |sw_if| if_name(&tables, sw_if))
            .map_err(|e| PcapError::Failed(format!("file: {}: writing: {e}", s.path.display())))?;
        drop(w);
        *lock(&self.pcap.last) = Some(Written { path: s.path.clone(), packets: written, format: s.format });
        tracing::info!(packets = written, file = %s.path.display(), "pcap capture written");
        let mut text = format!("wrote {written} packets to {} ({})", s.path.display(), s.format);
        if !lost.is_empty() {
            text.push_str(&format!("; workers {lost:?} did not answer, their packets are missing"));
        }
        Ok((text, written, s.path))
    }

    /// `pcap status`: the running capture, or the last one written.
    pub fn pcap_status(&self) -> (String, Value) {
        let session = lock(&self.pcap.session);
        let last = lock(&self.pcap.last).clone();
        let last_json = last.as_ref().map(
            |l| json!({ "file": l.path.display().to_string(), "packets": l.packets, "format": l.format.to_string() }),
        );
        let last_text = last
            .as_ref()
            .map(|l| format!("last capture: {} packets written to {} ({})\n", l.packets, l.path.display(), l.format))
            .unwrap_or_default();
        let Some(s) = session.as_ref() else {
            let text = format!("no capture running\n{last_text}");
            return (text, json!({ "running": false, "last": last_json }));
        };
        let captured = s.taken.load(Ordering::Relaxed).min(s.spec.max as u64);
        let complete = captured >= s.spec.max as u64;
        let state =
            if complete { "complete (max reached): `vswitchctl pcap stop` writes the file" } else { "capturing" };
        let secs = s.started.elapsed().as_secs_f64();
        let mut text = String::new();
        use std::fmt::Write as _;
        let _ = writeln!(text, "{:<12}{state}", "state");
        let _ = writeln!(text, "{:<12}{}", "interface", s.interface);
        let _ = writeln!(text, "{:<12}{}", "capture", dirs_text(s.spec.dirs));
        let _ = writeln!(text, "{:<12}{} of {}", "packets", captured, s.spec.max);
        let _ = writeln!(text, "{:<12}{}", "snaplen", snaplen_text(s.spec.snaplen));
        let _ = writeln!(text, "{:<12}{} ({})", "file", s.path.display(), s.format);
        let _ = writeln!(text, "{:<12}{secs:.1} s", "running");
        text.push_str(&last_text);
        let j = json!({
            "running": true, "complete": complete, "interface": s.interface,
            "sw_if": (s.spec.sw_if != CAPTURE_ANY).then_some(s.spec.sw_if),
            "rx": s.spec.has(CaptureDir::Rx), "tx": s.spec.has(CaptureDir::Tx), "drop": s.spec.has(CaptureDir::Drop),
            "max": s.spec.max, "snaplen": s.spec.snaplen, "captured": captured,
            "file": s.path.display().to_string(), "format": s.format.to_string(), "seconds": secs,
            "last": last_json,
        });
        (text, j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pcap_header_is_the_classic_24_bytes() {
        assert_eq!(
            pcap_header(9000),
            [
                0xd4, 0xc3, 0xb2, 0xa1, // magic, microseconds
                2, 0, 4, 0, // version 2.4
                0, 0, 0, 0, // thiszone
                0, 0, 0, 0, // sigfigs
                0x28, 0x23, 0, 0, // snaplen 9000
                1, 0, 0, 0, // LINKTYPE_ETHERNET
            ]
        );
    }

    #[test]
    fn a_pcap_record_has_seconds_microseconds_and_both_lengths() {
        let mut out = Vec::new();
        // 1700000000.123456789 s: the nanoseconds are cut to microseconds.
        pcap_record(&mut out, 1_700_000_000_123_456_789, 100, &[0xaa, 0xbb, 0xcc]);
        let mut want = Vec::new();
        want.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        want.extend_from_slice(&123_456u32.to_le_bytes());
        want.extend_from_slice(&[3, 0, 0, 0, 100, 0, 0, 0, 0xaa, 0xbb, 0xcc]);
        assert_eq!(out, want);
        assert_eq!(out.len(), 16 + 3);
        // The original length is never below the captured one.
        out.clear();
        pcap_record(&mut out, 0, 0, &[1, 2]);
        assert_eq!(&out[8..16], &[2, 0, 0, 0, 2, 0, 0, 0]);
    }

    #[test]
    fn pcapng_blocks_are_laid_out_byte_for_byte() {
        let mut out = Vec::new();
        pcapng_section(&mut out);
        #[rustfmt::skip]
        let shb = [
            0x0a, 0x0d, 0x0d, 0x0a, 44, 0, 0, 0, // type, total length
            0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, // byte-order magic, version 1.0
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // section length: unknown
            4, 0, 7, 0, b'v', b's', b'w', b'i', b't', b'c', b'h', 0, // shb_userappl, padded
            0, 0, 0, 0, // opt_endofopt
            44, 0, 0, 0,
        ];
        assert_eq!(out, shb);

        out.clear();
        pcapng_interface(&mut out, 9000, "pod-a");
        #[rustfmt::skip]
        let idb = [
            1, 0, 0, 0, 44, 0, 0, 0,
            1, 0, 0, 0, // LINKTYPE_ETHERNET, reserved
            0x28, 0x23, 0, 0, // snaplen
            2, 0, 5, 0, b'p', b'o', b'd', b'-', b'a', 0, 0, 0, // if_name
            9, 0, 1, 0, 9, 0, 0, 0, // if_tsresol: nanoseconds
            0, 0, 0, 0,
            44, 0, 0, 0,
        ];
        assert_eq!(out, idb);

        out.clear();
        pcapng_packet(&mut out, 1, 0x0000_0001_0000_0002, 60, &[0xaa, 0xbb, 0xcc], CaptureDir::Tx, Some("hi"));
        #[rustfmt::skip]
        let epb = [
            6, 0, 0, 0, 56, 0, 0, 0,
            1, 0, 0, 0, // interface 1
            1, 0, 0, 0, 2, 0, 0, 0, // timestamp high, low
            3, 0, 0, 0, 60, 0, 0, 0, // captured, original length
            0xaa, 0xbb, 0xcc, 0, // data, padded
            2, 0, 4, 0, 2, 0, 0, 0, // epb_flags: outbound
            1, 0, 2, 0, b'h', b'i', 0, 0, // opt_comment
            0, 0, 0, 0,
            56, 0, 0, 0,
        ];
        assert_eq!(out, epb);
    }

    fn packet(time_ns: u64, sw_if: u32, dir: CaptureDir, data: &[u8]) -> FilePacket<'_> {
        FilePacket {
            time_ns,
            sw_if,
            dir,
            orig_len: data.len() as u32,
            data,
            node: "ethernet-input",
            reason: "unknown ethertype",
        }
    }

    #[test]
    fn write_packets_makes_whole_files() {
        let a = [1u8; 60];
        let b = [2u8; 61];
        let mut f = pcap_header(9000).to_vec();
        let n = write_packets(
            &mut f,
            Format::Pcap,
            9000,
            [packet(1_000_000_000, 1, CaptureDir::Rx, &a), packet(2_000_001_000, 2, CaptureDir::Tx, &b)],
            |i| format!("if{i}"),
        )
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(f.len(), 24 + 16 + 60 + 16 + 61);
        assert_eq!(&f[24..32], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&f[24 + 76..24 + 84], &[2, 0, 0, 0, 1, 0, 0, 0]);

        // pcapng: an interface block before the first packet of each
        // interface; a drop carries its node and reason.
        let mut f = Vec::new();
        pcapng_section(&mut f);
        let n = write_packets(
            &mut f,
            Format::Pcapng,
            9000,
            [packet(5, 7, CaptureDir::Rx, &a), packet(6, 7, CaptureDir::Drop, &b), packet(7, 3, CaptureDir::Tx, &a)],
            |i| format!("if{i}"),
        )
        .unwrap();
        assert_eq!(n, 3);
        let mut blocks = Vec::new();
        let mut at = 0;
        while at < f.len() {
            let kind = u32::from_le_bytes(f[at..at + 4].try_into().unwrap());
            let len = u32::from_le_bytes(f[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(&f[at + 4..at + 8], &f[at + len - 4..at + len], "trailing length");
            blocks.push((kind, at));
            at += len;
        }
        assert_eq!(at, f.len());
        assert_eq!(blocks.iter().map(|b| b.0).collect::<Vec<_>>(), vec![0x0a0d0d0a, 1, 6, 6, 1, 6]);
        // The third packet is on the second interface block (id 1).
        assert_eq!(&f[blocks[5].1 + 8..blocks[5].1 + 12], &[1, 0, 0, 0]);
        let text = String::from_utf8_lossy(&f);
        assert!(text.contains("if7") && text.contains("if3"));
        assert!(text.contains("drop: ethernet-input: unknown ethertype"));
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let mut t = Tables::default();
        t.set_interface(vswitch_nodes::Interface::port(
            3,
            "pod-a",
            0,
            vswitch_wire::MacAddr([2, 0, 0, 0, 0, 1]),
            vswitch_nodes::IfMode::Disabled,
        ));
        let ok = pb::PcapStartRequest {
            interface: "pod-a".into(),
            rx: true,
            tx: true,
            drop: false,
            max: 0,
            snaplen: 0,
            file: "/tmp/x.pcap".into(),
            format: String::new(),
        };
        let r = check(&ok, &t).unwrap();
        assert_eq!(
            r.spec,
            CaptureSpec { sw_if: 3, dirs: 3, max: DEFAULT_MAX, snaplen: MAX_SNAPLEN },
            "defaults: 10000 packets, whole"
        );
        assert_eq!(r.format, Format::Pcap);
        let with_drop = pb::PcapStartRequest { drop: true, interface: "any".into(), ..ok.clone() };
        let r = check(&with_drop, &t).unwrap();
        assert_eq!((r.format, r.spec.sw_if, r.spec.dirs), (Format::Pcapng, CAPTURE_ANY, 7));
        let err = |r: pb::PcapStartRequest| match check(&r, &t) {
            Err(PcapError::Invalid(m)) => m,
            other => panic!("{:?}", other.map(|r| r.spec)),
        };
        assert!(err(pb::PcapStartRequest { interface: "nope".into(), ..ok.clone() })
            .starts_with("interface: no interface named \"nope\" (known: pod-a; or any)"));
        assert!(err(pb::PcapStartRequest { rx: false, tx: false, ..ok.clone() }).starts_with("direction: "));
        assert!(err(pb::PcapStartRequest { file: "x.pcap".into(), ..ok.clone() }).starts_with("file: "));
        assert!(err(pb::PcapStartRequest { snaplen: 1 << 20, ..ok.clone() }).starts_with("snaplen: "));
        assert!(err(pb::PcapStartRequest { format: "json".into(), ..ok.clone() }).starts_with("format: "));
    }

    #[test]
    fn an_unwritable_file_is_refused_at_start() {
        let e = create(Path::new("/nonexistent-dir-vswitch/x.pcap"), &pcap_header(1)).unwrap_err();
        assert!(
            matches!(&e, PcapError::Invalid(m) if m.starts_with("file: /nonexistent-dir-vswitch/x.pcap: cannot write"))
        );
        let e = create(Path::new("/tmp"), &pcap_header(1)).unwrap_err();
        assert!(matches!(&e, PcapError::Invalid(m) if m.contains("is a directory")), "{e}");
    }
}
