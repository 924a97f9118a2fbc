//! Packet trace: typed records that nodes append for marked packets,
//! printed packet by packet, node by node (VPP's `show trace`).

use std::fmt::{self, Display, Write as _};
use std::sync::Mutex;

/// One node's record for one traced packet.
pub struct TraceEvent {
    /// Trace id of the packet (assigned when the input node marked it).
    pub id: u32,
    /// Node that wrote the record.
    pub node: &'static str,
    /// TSC when the node ran.
    pub time: u64,
    /// The node's typed record, printed with `Display`.
    pub record: Box<dyn Display + Send>,
}

struct Inner {
    events: Vec<TraceEvent>,
    next_id: u32,
}

/// A worker's trace buffer, shared with whoever shows it.
pub struct TraceLog {
    inner: Mutex<Inner>,
    max_events: usize,
}

impl TraceLog {
    /// A log that keeps at most `max_events` records (later ones are lost).
    pub fn new(max_events: usize) -> Self {
        TraceLog { inner: Mutex::new(Inner { events: Vec::new(), next_id: 1 }), max_events }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn new_id(&self) -> u32 {
        let mut g = self.lock();
        let id = g.next_id;
        g.next_id = g.next_id.wrapping_add(1).max(1);
        id
    }

    pub(crate) fn record(&self, id: u32, node: &'static str, time: u64, record: Box<dyn Display + Send>) {
        let mut g = self.lock();
        if g.events.len() < self.max_events {
            g.events.push(TraceEvent { id, node, time, record });
        }
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets all records.
    pub fn clear(&self) {
        self.lock().events.clear();
    }

    /// The path of each traced packet, node by node:
    ///
    /// ```text
    /// Packet 1
    ///   pg-input: port 0 len 64
    ///   ethernet-input: IPV4 02:00:00:00:00:01 -> 02:00:00:00:00:02
    /// ```
    pub fn format(&self) -> String {
        let g = self.lock();
        let mut ids: Vec<u32> = g.events.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut out = String::new();
        for id in ids {
            let _ = writeln!(out, "Packet {id}");
            for e in g.events.iter().filter(|e| e.id == id) {
                let _ = writeln!(out, "  {}: {}", e.node, e.record);
            }
            out.push('\n');
        }
        out
    }

    /// The node names on one packet's path, in order.
    pub fn path(&self, id: u32) -> Vec<&'static str> {
        self.lock().events.iter().filter(|e| e.id == id).map(|e| e.node).collect()
    }

    /// The records of one packet, formatted, in order.
    pub fn records(&self, id: u32) -> Vec<String> {
        self.lock().events.iter().filter(|e| e.id == id).map(|e| format!("{}: {}", e.node, e.record)).collect()
    }
}

impl fmt::Debug for TraceLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceLog({} records)", self.len())
    }
}
