//! The daemon's state: the controller with its port registry and state
//! directory (behind one mutex: applies are serialized), the running
//! data path, and the counter baselines `clear` sets.

use crate::dataplane::{Dataplane, Workers};
use crate::ports::{DaemonPorts, OwnedTaps};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use vswitch_api::pb;
use vswitch_control::{patched, ApplyError, ApplyReport, Changes, Controller, DesiredState, Patch, StateDir};
use vswitch_nodes::ip::{IpFib, IpFibConfig};
use vswitch_nodes::SwIf;
use vswitch_packet::{BufferPool, BufferPoolConfig};
use vswitch_worker::IdleMode;

/// The controller side, changed only under its mutex.
pub struct Control {
    /// Desired state in force and its compilation.
    pub controller: Controller,
    /// Backends.
    pub ports: DaemonPorts,
    /// Successful applies so far (orders the saves).
    applied: u64,
}

/// Where applied states are saved, and the last one saved.
struct Saver {
    store: StateDir,
    saved: u64,
}

/// An applied state still to be saved: its number and the state.
type Unsaved = (u64, DesiredState);

/// Interface counters: rx packets, rx bytes, tx packets, tx bytes, drops.
pub type IfTotals = [u64; 5];

/// Per-node runtime totals: calls, vectors, clocks.
pub type NodeTotals = [u64; 3];

/// What `clear` subtracts: counters are written by their worker only, so
/// clearing records the values the reader subtracts from then on.
#[derive(Default)]
pub struct Baselines {
    /// By interface index.
    pub interfaces: HashMap<SwIf, IfTotals>,
    /// By worker, then node name.
    pub runtime: Vec<HashMap<&'static str, NodeTotals>>,
    /// By (node, reason), summed over workers.
    pub errors: HashMap<(&'static str, &'static str), u64>,
    /// SRv6 counters by local SID index, summed over workers.
    pub sr_localsids: HashMap<u32, crate::show_sr::SrTotals>,
    /// SRv6 counters by policy index.
    pub sr_policies: HashMap<u32, crate::show_sr::SrTotals>,
}

/// Daemon settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Worker threads.
    pub workers: usize,
    /// How idle workers wait.
    pub idle: IdleMode,
    /// The buffer pool.
    pub pool: BufferPoolConfig,
    /// FIB sizes.
    pub fib: IpFibConfig,
    /// The state directory.
    pub state_dir: std::path::PathBuf,
}

/// The running daemon.
pub struct Daemon {
    control: Mutex<Control>,
    saver: Mutex<Saver>,
    /// The workers.
    pub workers: Arc<Workers>,
    /// The buffer pool.
    pub pool: Arc<BufferPool>,
    /// The FIB.
    pub fib: Arc<IpFib>,
    baselines: Mutex<Baselines>,
    /// When it started.
    pub started: Instant,
    /// The packet capture (`pcap start|stop|status`, in `crate::pcap`).
    pub(crate) pcap: crate::pcap::PcapState,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Daemon {
    /// Starts the data path with an empty state.
    pub fn start(settings: &Settings) -> Result<(Arc<Daemon>, Dataplane), String> {
        let controller = Controller::new(settings.fib).map_err(|e| format!("creating the FIB: {e}"))?;
        let dp =
            Dataplane::start(settings.workers, settings.idle, &settings.pool, controller.tables(), controller.fib())
                .map_err(|e| format!("starting the data path: {e}"))?;
        let owned = OwnedTaps::load(&settings.state_dir).map_err(|e| e.to_string())?;
        let mut ports = DaemonPorts::new(Arc::clone(&dp.workers), owned);
        ports.set_memif_interrupts(matches!(settings.idle, IdleMode::Interrupt { .. }));
        let fib = Arc::clone(controller.fib());
        let daemon = Daemon {
            control: Mutex::new(Control { controller, ports, applied: 0 }),
            saver: Mutex::new(Saver { store: StateDir::new(&settings.state_dir), saved: 0 }),
            workers: Arc::clone(&dp.workers),
            pool: Arc::clone(&dp.pool),
            fib,
            baselines: Mutex::new(Baselines {
                runtime: vec![HashMap::new(); settings.workers],
                ..Baselines::default()
            }),
            started: Instant::now(),
            pcap: Default::default(),
        };
        Ok((Arc::new(daemon), dp))
    }

    /// The controller side (held briefly: applies wait for it).
    pub fn control(&self) -> MutexGuard<'_, Control> {
        lock(&self.control)
    }

    /// The clear baselines.
    pub fn baselines(&self) -> MutexGuard<'_, Baselines> {
        lock(&self.baselines)
    }

    /// Applies `state` and saves it; the report, or why nothing changed.
    pub fn apply_state(&self, state: DesiredState) -> Result<ApplyReport, ApplyError> {
        let mut guard = self.control();
        let result = self.apply_locked(&mut guard, state);
        self.unlock_and_save(guard, result)
    }

    fn apply_locked(&self, c: &mut Control, state: DesiredState) -> Result<(ApplyReport, Unsaved), ApplyError> {
        let old_sr = std::sync::Arc::clone(&c.controller.snapshot().sr);
        let report = c.controller.apply(state, &mut c.ports)?;
        crate::show_sr::rebase(self, &old_sr, &c.controller.snapshot().sr);
        c.applied += 1;
        Ok((report, (c.applied, c.controller.state().clone())))
    }

    /// Releases the controller's lock, then closes what removed ports
    /// left (deleting a tap takes the kernel 10-20 ms) and saves the
    /// applied state (an fsync), so that other applies proceed meanwhile.
    /// Saves are ordered by apply number: a state already overtaken by a
    /// later save is not written.
    fn unlock_and_save(
        &self,
        mut guard: MutexGuard<'_, Control>,
        result: Result<(ApplyReport, Unsaved), ApplyError>,
    ) -> Result<ApplyReport, ApplyError> {
        let closing = guard.ports.take_closing();
        drop(guard);
        drop(closing);
        let (report, (number, state)) = result?;
        let mut saver = lock(&self.saver);
        if saver.saved < number {
            if let Err(e) = saver.store.save(&state) {
                tracing::error!(error = %e, "the applied state could not be saved; a restart will not restore it");
            }
            saver.saved = number;
        }
        Ok(report)
    }

    /// The `Apply` RPC: parse, validate, apply (unless `dry_run`), save.
    pub fn apply_yaml(&self, yaml: &str, dry_run: bool) -> pb::ApplyResponse {
        let state = match parse_state(yaml) {
            Ok(s) => s,
            Err(e) => return refused(dry_run, format!("invalid YAML: {e}"), vec![e_field(&e)]),
        };
        let result = if dry_run {
            self.control().controller.diff(&state).map_err(ApplyError::Invalid)
        } else {
            self.apply_state(state)
        };
        respond(result, dry_run, "applied")
    }

    /// The `Patch` RPC: the state in force with `req`'s removals and
    /// upserts, validated and applied (unless `dry_run`) under one lock,
    /// so concurrent patches (CNI ADDs of several pods) never lose each
    /// other's changes.
    pub fn patch(&self, req: &pb::PatchRequest) -> pb::ApplyResponse {
        let upsert = match parse_state(&req.yaml) {
            Ok(s) => s,
            Err(e) => return refused(req.dry_run, format!("invalid YAML: {e}"), vec![e_field(&e)]),
        };
        let patch = Patch {
            upsert,
            remove_interfaces: req.remove_interfaces.clone(),
            remove_owner: (!req.remove_owner.is_empty()).then(|| req.remove_owner.clone()),
        };
        let mut guard = self.control();
        let result = match patched(guard.controller.state(), &patch) {
            Err(errors) => Err(ApplyError::Invalid(errors)),
            Ok(next) if req.dry_run => guard.controller.diff(&next).map_err(ApplyError::Invalid),
            Ok(next) => {
                let applied = self.apply_locked(&mut guard, next);
                return respond(self.unlock_and_save(guard, applied), false, "patched");
            }
        };
        drop(guard);
        respond(result, req.dry_run, "patched")
    }

    /// Interface counters of `sw_if`, summed over workers, raw.
    pub fn if_totals_raw(&self, sw_if: SwIf) -> IfTotals {
        let mut t = [0u64; 5];
        for h in &self.workers.handles {
            let c = h.counters.get(sw_if);
            let v = [c.rx_packets.get(), c.rx_bytes.get(), c.tx_packets.get(), c.tx_bytes.get(), c.drops.get()];
            for (a, b) in t.iter_mut().zip(v) {
                *a += b;
            }
        }
        t
    }

    /// Interface counters of `sw_if` since the last `clear interfaces`.
    pub fn if_totals(&self, sw_if: SwIf) -> IfTotals {
        let raw = self.if_totals_raw(sw_if);
        let base = self.baselines().interfaces.get(&sw_if).copied().unwrap_or_default();
        std::array::from_fn(|i| raw[i].saturating_sub(base[i]))
    }

    /// `clear interfaces | runtime | errors`.
    pub fn clear(&self, what: &str) -> Result<String, String> {
        match what {
            "interfaces" | "interface" => {
                let sw_ifs: Vec<SwIf> =
                    self.control().controller.snapshot().interfaces.iter().flatten().map(|i| i.sw_if).collect();
                let totals: Vec<(SwIf, IfTotals)> = sw_ifs.iter().map(|&s| (s, self.if_totals_raw(s))).collect();
                self.baselines().interfaces.extend(totals);
                Ok(format!("cleared the counters of {} interfaces", sw_ifs.len()))
            }
            "runtime" => {
                let runtime: Vec<HashMap<&'static str, NodeTotals>> = self
                    .workers
                    .handles
                    .iter()
                    .map(|h| {
                        h.graph_stats.snapshot().into_iter().map(|n| (n.name, [n.calls, n.packets, n.clocks])).collect()
                    })
                    .collect();
                self.baselines().runtime = runtime;
                Ok("cleared the runtime statistics".to_string())
            }
            "errors" | "error" => {
                let errors = self.error_totals_raw();
                self.baselines().errors = errors;
                Ok("cleared the error counters".to_string())
            }
            "sr" => Ok(crate::show_sr::clear(self)),
            other => Err(format!("clear {other:?}: expected one of runtime, errors, interfaces, sr")),
        }
    }

    /// Error counters summed over workers, raw.
    pub fn error_totals_raw(&self) -> HashMap<(&'static str, &'static str), u64> {
        let mut m = HashMap::new();
        for h in &self.workers.handles {
            for n in h.graph_stats.snapshot() {
                for (reason, v) in n.errors {
                    *m.entry((n.name, reason)).or_insert(0) += v;
                }
            }
        }
        m
    }

    /// Marks the next `count` packets entering `node` on every worker.
    pub fn trace_add(&self, node: &str, count: u32) -> Result<String, String> {
        let known =
            self.workers.handles.first().is_some_and(|h| h.graph_stats.snapshot().iter().any(|n| n.name == node));
        if !known {
            return Err(format!("trace add: no node named {node:?}"));
        }
        let node_owned = node.to_string();
        let results =
            self.workers.run_on_all(move |w| w.graph().add_trace(&node_owned, count).map_err(|e| format!("{e:?}")));
        let mut failures = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Some(Ok(())) => {}
                Some(Err(e)) => failures.push(format!("worker {i}: {e}")),
                None => failures.push(format!("worker {i}: did not answer")),
            }
        }
        if failures.is_empty() {
            tracing::info!(node, count, "trace added");
            Ok(format!("tracing the next {count} packets entering {node} on each of {} workers", self.workers.len()))
        } else {
            Err(format!("trace add {node}: {}", failures.join("; ")))
        }
    }

    /// Stops tracing and forgets every record.
    pub fn trace_clear(&self) -> String {
        self.workers.run_on_all(|w| {
            for name in w.graph().node_names() {
                let _ = w.graph().add_trace(name, 0);
            }
        });
        for h in &self.workers.handles {
            h.trace.clear();
        }
        "trace cleared".to_string()
    }
}

fn refused(dry_run: bool, message: String, errors: Vec<pb::FieldError>) -> pb::ApplyResponse {
    pb::ApplyResponse {
        ok: false,
        changed: false,
        report: format!("{message}\nnothing changed\n"),
        changes: Vec::new(),
        errors,
        warnings: Vec::new(),
        error: message,
        dry_run,
    }
}

/// serde's messages start with the field path (`interfaces[0]: unknown
/// field ...`): split it off when there is one.
fn split_parse_path(message: &str) -> (String, String) {
    if let Some((path, rest)) = message.split_once(": ") {
        let looks_like_path = !path.is_empty()
            && path.chars().all(|c| c.is_ascii_alphanumeric() || "_[].-".contains(c))
            && path.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        if looks_like_path {
            return (path.to_string(), rest.to_string());
        }
    }
    (String::new(), message.to_string())
}

fn changes(r: &ApplyReport) -> Vec<pb::Change> {
    fn push<T: ToString>(out: &mut Vec<pb::Change>, kind: &str, c: &Changes<T>) {
        for (op, list) in [("added", &c.added), ("changed", &c.changed), ("removed", &c.removed)] {
            for x in list {
                out.push(pb::Change { kind: kind.to_string(), op: op.to_string(), name: x.to_string() });
            }
        }
    }
    let mut out = Vec::new();
    push(&mut out, "interface", &r.interfaces);
    push(&mut out, "bridge-domain", &r.bridge_domains);
    push(&mut out, "vrf", &r.vrfs);
    push(&mut out, "route", &r.routes);
    push(&mut out, "neighbor", &r.neighbors);
    push(&mut out, "sr", &r.sr);
    push(&mut out, "network", &r.networks);
    for p in &r.ports_created {
        out.push(pb::Change { kind: "port".into(), op: "created".into(), name: p.to_string() });
    }
    for p in &r.ports_removed {
        out.push(pb::Change { kind: "port".into(), op: "removed".into(), name: p.to_string() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_parse_path;

    #[test]
    fn parse_errors_give_their_field_path() {
        assert_eq!(
            split_parse_path("interfaces[0]: unknown field `mtuu`, expected one of ... at line 3 column 5"),
            ("interfaces[0]".to_string(), "unknown field `mtuu`, expected one of ... at line 3 column 5".to_string())
        );
        assert_eq!(split_parse_path("did not find expected key"), (String::new(), "did not find expected key".into()));
    }
}

fn parse_state(yaml: &str) -> Result<DesiredState, vswitch_control::ParseError> {
    DesiredState::from_yaml(yaml)
}

fn e_field(e: &vswitch_control::ParseError) -> pb::FieldError {
    let (path, message) = split_parse_path(&e.message);
    pb::FieldError { path, message, line: e.line.unwrap_or(0) as u32, column: e.column.unwrap_or(0) as u32 }
}

/// An Apply or Patch outcome as the RPC answers it (`verb`: what the log
/// says was done).
fn respond(result: Result<ApplyReport, ApplyError>, dry_run: bool, verb: &str) -> pb::ApplyResponse {
    match result {
        Ok(report) => {
            if !dry_run && !report.is_empty() {
                tracing::info!(changes = %report.to_string().trim_end().replace('\n', "; "), "{verb}");
            }
            let mut text = report.to_string();
            if dry_run {
                text = format!("dry run, nothing applied:\n{text}");
            }
            pb::ApplyResponse {
                ok: true,
                changed: !report.is_empty(),
                report: text,
                changes: changes(&report),
                errors: Vec::new(),
                warnings: report.warnings.iter().map(|w| w.to_string()).collect(),
                error: String::new(),
                dry_run,
            }
        }
        Err(ApplyError::Invalid(errors)) => {
            let message = ApplyError::Invalid(errors.clone()).to_string();
            tracing::warn!(errors = errors.len(), "{verb}: refused, invalid desired state");
            let errors = errors
                .into_iter()
                .map(|e| pb::FieldError { path: e.path, message: e.message, line: 0, column: 0 })
                .collect();
            refused(dry_run, message, errors)
        }
        Err(e) => {
            tracing::warn!(error = %e, "{verb}: failed");
            refused(dry_run, e.to_string(), Vec::new())
        }
    }
}
