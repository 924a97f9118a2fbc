//! `show ...`: operational state as a table for people (laid out like
//! VPP's `vppctl` where that helps) and the same data as JSON.

// Header rows go through the same format string as the data rows, so
// the columns line up by construction.
#![allow(clippy::write_literal)]

use crate::daemon::Daemon;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;
use vswitch_nodes::ip::{NextHop, RoutePath};
use vswitch_nodes::{IfKind, IfMode, Interface, SwIf, Tables};
use vswitch_packet::clock;

/// A rendered `show`.
pub struct Shown {
    /// The table.
    pub text: String,
    /// The data.
    pub json: Value,
}

/// Every `show` target, as the CLI names them.
pub const TARGETS: &[&str] = &[
    "interfaces",
    "bridge-domains",
    "l2fib",
    "fib",
    "neighbors",
    "runtime",
    "errors",
    "trace",
    "workers",
    "buffers",
    "memif",
    "sr",
];

/// Renders `show <what> <args>`.
pub fn show(d: &Daemon, what: &str, args: &[String]) -> Result<Shown, String> {
    match what {
        "interfaces" | "interface" | "int" => Ok(interfaces(d)),
        "bridge-domains" | "bridge-domain" | "bd" => Ok(bridge_domains(d)),
        "l2fib" => Ok(l2fib(d)),
        "fib" | "ip-fib" => fib(d, args),
        "neighbors" | "neighbours" | "neighbor" => Ok(neighbors(d)),
        "runtime" => Ok(runtime(d)),
        "errors" | "error" => Ok(errors(d)),
        "trace" => Ok(trace(d)),
        "workers" | "threads" => Ok(workers(d)),
        "buffers" => Ok(buffers(d)),
        "memif" => Ok(crate::show_memif::memif(d)),
        "sr" => crate::show_sr::sr(d, args),
        other => Err(format!("show {other:?}: expected one of {}", TARGETS.join(", "))),
    }
}

fn if_name(t: &Tables, sw_if: SwIf) -> String {
    t.interface(sw_if).map(|i| i.name.clone()).unwrap_or_else(|| format!("sw_if {sw_if}"))
}

fn mode_text(t: &Tables, i: &Interface) -> String {
    match i.mode {
        IfMode::Disabled => "disabled".into(),
        IfMode::L3 { vrf } => format!("l3 vrf {vrf}"),
        IfMode::Bridge { bd, shg } if shg != 0 => format!("bridge {bd} shg {shg}"),
        IfMode::Bridge { bd, .. } => format!("bridge {bd}"),
        IfMode::XConnect { peer } => format!("xconnect {}", if_name(t, peer)),
    }
}

fn interfaces(d: &Daemon) -> Shown {
    let (snapshot, ports, links) = {
        let c = d.control();
        let snap = c.controller.snapshot();
        let ports: BTreeMap<String, (vswitch_control::PortSpec, Option<crate::ports::BackendInfo>)> = c
            .controller
            .ports()
            .into_iter()
            .map(|p| {
                let info = c.ports.info(p.port).cloned();
                (p.interface.clone(), (p, info))
            })
            .collect();
        let links: BTreeMap<u32, vswitch_control::PortLink> =
            ports.values().filter_map(|(p, _)| c.controller.link(p.port).map(|l| (p.port, l))).collect();
        (snap, ports, links)
    };
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<24}{:>5}  {:<6}{:>6}  {:<18}{:>14}  {}",
        "Name", "Idx", "State", "MTU", "Counter", "Count", "Mode / backend"
    );
    let mut list = Vec::new();
    for i in snapshot.interfaces.iter().flatten() {
        let [rx_p, rx_b, tx_p, tx_b, drops] = d.if_totals(i.sw_if);
        let (kind, backend) = match &i.kind {
            IfKind::Port => {
                let (spec, info) = ports.get(&i.name).cloned().unzip();
                let b = spec.map(|s| {
                    let mut b = s.port_type.to_string();
                    if let Some(h) = &s.host_ifname {
                        b.push(' ');
                        b.push_str(h);
                    }
                    if let Some(ns) = &s.netns {
                        let _ = write!(b, " netns {ns}");
                    }
                    if let Some(m) = &s.memif {
                        let _ = write!(b, " {} {} id {}", m.role.as_str(), m.socket, m.id);
                    }
                    (b, s, info.flatten())
                });
                ("port", b)
            }
            IfKind::SubIf { .. } => ("sub-interface", None),
            IfKind::Bvi { .. } => ("bvi", None),
        };
        let state = if i.up { "up" } else { "down" };
        let extra = match &backend {
            Some((b, spec, _)) => {
                let link = match links.get(&spec.port) {
                    Some(l) if !l.up => ", link down",
                    _ => "",
                };
                format!("{}, {b}{link}", mode_text(&snapshot, i))
            }
            None => format!("{}, {kind}", mode_text(&snapshot, i)),
        };
        let counters =
            [("rx packets", rx_p), ("rx bytes", rx_b), ("tx packets", tx_p), ("tx bytes", tx_b), ("drops", drops)];
        let shown: Vec<&(&str, u64)> = counters.iter().filter(|(_, v)| *v != 0).collect();
        let first = shown.first().map(|(n, v)| (*n, v.to_string())).unwrap_or(("", String::new()));
        let _ = writeln!(
            text,
            "{:<24}{:>5}  {:<6}{:>6}  {:<18}{:>14}  {}",
            i.name, i.sw_if, state, i.mtu, first.0, first.1, extra
        );
        for (n, v) in shown.iter().skip(1) {
            let _ = writeln!(text, "{:<45}{:<18}{:>14}", "", n, v);
        }
        let addresses: Vec<String> = i
            .ip4
            .iter()
            .map(|(a, l)| format!("{a}/{l}"))
            .chain(i.ip6.iter().map(|(a, l)| format!("{a}/{l}")))
            .collect();
        let mut j = json!({
            "name": i.name, "sw_if": i.sw_if, "kind": kind, "up": i.up, "mtu": i.mtu,
            "mac": i.mac.to_string(), "mode": mode_text(&snapshot, i), "addresses": addresses,
            "rx_packets": rx_p, "rx_bytes": rx_b, "tx_packets": tx_p, "tx_bytes": tx_b, "drops": drops,
        });
        if let Some((_, spec, info)) = backend {
            j["port"] = json!(spec.port);
            j["type"] = json!(spec.port_type.to_string());
            j["host_ifname"] = json!(spec.host_ifname);
            j["netns"] = json!(spec.netns);
            j["queues"] = json!(spec.queues);
            if let Some(l) = links.get(&spec.port) {
                j["link_up"] = json!(l.up);
                j["device_mtu"] = json!(l.mtu);
            }
            if let Some(info) = info {
                j["owned"] = json!(info.owned);
                j["rx_queues"] = json!(info.rx_queues);
            }
        }
        if let IfKind::SubIf { parent, tags } = &i.kind {
            j["parent"] = json!(if_name(&snapshot, *parent));
            j["vlan"] = json!(tags.outer.1);
            if tags.count > 1 {
                j["inner_vlan"] = json!(tags.inner.1);
            }
        }
        list.push(j);
    }
    Shown { text, json: json!({ "interfaces": list }) }
}

fn bridge_domains(d: &Daemon) -> Shown {
    let snapshot = d.control().controller.snapshot();
    let on = |b: bool| if b { "on" } else { "off" };
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:>6}  {:<9}{:<9}{:<9}{:<9}{:<9}{:>9}{:>7}  {:<12}{}",
        "BD-ID", "Learning", "U-Forwrd", "UU-Flood", "Flooding", "ARP-Term", "Age(s)", "MACs", "BVI-Intf", "Members"
    );
    let mut list = Vec::new();
    for bd in snapshot.bridge_domains.iter().flatten() {
        let c = &bd.config;
        let bvi = c.bvi.map(|b| if_name(&snapshot, b)).unwrap_or_else(|| "N/A".into());
        let members: Vec<String> = bd.members.iter().map(|m| if_name(&snapshot, m.sw_if)).collect();
        let _ = writeln!(
            text,
            "{:>6}  {:<9}{:<9}{:<9}{:<9}{:<9}{:>9}{:>7}  {:<12}{}",
            c.bd,
            on(c.learn),
            on(c.forward),
            if c.flood_unknown { "flood" } else { "drop" },
            on(c.flood_broadcast),
            on(c.arp_term),
            if c.mac_age_secs == 0 { "off".to_string() } else { c.mac_age_secs.to_string() },
            bd.macs.len(),
            bvi,
            members.join(" ")
        );
        list.push(json!({
            "id": c.bd, "learn": c.learn, "forward": c.forward, "flood_unknown": c.flood_unknown,
            "flood_broadcast": c.flood_broadcast, "arp_termination": c.arp_term, "mac_limit": c.mac_limit,
            "mac_age_seconds": c.mac_age_secs, "macs": bd.macs.len(), "learned": bd.macs.learned(),
            "bvi": c.bvi.map(|b| if_name(&snapshot, b)), "members": members,
        }));
    }
    Shown { text, json: json!({ "bridge_domains": list }) }
}

fn l2fib(d: &Daemon) -> Shown {
    let snapshot = d.control().controller.snapshot();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<20}{:>7}{:>8}  {:<8}{:>8}  {}",
        "Mac-Address", "BD-ID", "If-Idx", "Static", "Age(s)", "Interface-Name"
    );
    let mut list = Vec::new();
    for bd in snapshot.bridge_domains.iter().flatten() {
        let now = bd.macs.now();
        let mut entries: Vec<_> = bd.macs.iter().collect();
        entries.sort_by_key(|e| (e.sw_if, e.mac));
        for e in entries {
            let age = (!e.is_static).then(|| now.saturating_sub(e.last_seen));
            let name = if_name(&snapshot, e.sw_if);
            let _ = writeln!(
                text,
                "{:<20}{:>7}{:>8}  {:<8}{:>8}  {}",
                e.mac.to_string(),
                bd.config.bd,
                e.sw_if,
                if e.is_static { "yes" } else { "no" },
                age.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
                name
            );
            list.push(json!({
                "mac": e.mac.to_string(), "bd": bd.config.bd, "sw_if": e.sw_if, "interface": name,
                "static": e.is_static, "age_seconds": age,
            }));
        }
    }
    let _ = writeln!(text, "{} l2fib entries", list.len());
    Shown { text, json: json!({ "l2fib": list }) }
}

fn path_text(t: &Tables, p: &RoutePath) -> (String, Value) {
    let (s, j) = match p.next_hop {
        NextHop::Via { addr, sw_if } => {
            let n = if_name(t, sw_if);
            (format!("via {addr} {n}"), json!({ "via": addr.to_string(), "interface": n }))
        }
        NextHop::Attached { sw_if } => {
            let n = if_name(t, sw_if);
            (format!("attached {n}"), json!({ "attached": n }))
        }
        NextHop::Local => ("local".into(), json!({ "special": "local" })),
        NextHop::Drop => ("drop".into(), json!({ "special": "drop" })),
        NextHop::Punt => ("punt".into(), json!({ "special": "punt" })),
        NextHop::Unreachable => ("unreachable".into(), json!({ "special": "unreachable" })),
        NextHop::Prohibit => ("prohibit".into(), json!({ "special": "prohibit" })),
        NextHop::SrLocalSid { index, .. } => (format!("sr localsid {index}"), json!({ "sr_localsid": index })),
        NextHop::SrPolicy { index } => (format!("sr policy {index}"), json!({ "sr_policy": index })),
    };
    let mut j = j;
    j["weight"] = json!(p.weight);
    if p.weight != 1 {
        (format!("{s} weight {}", p.weight), j)
    } else {
        (s, j)
    }
}

fn fib(d: &Daemon, args: &[String]) -> Result<Shown, String> {
    let vrf: Option<u32> = match args {
        [] => None,
        [v] => Some(v.parse().map_err(|_| format!("show fib: {v:?} is not a VRF id"))?),
        [w, v] if w == "vrf" || w == "table" => {
            Some(v.parse().map_err(|_| format!("show fib: {v:?} is not a VRF id"))?)
        }
        _ => return Err("show fib [vrf]: one argument at most".into()),
    };
    let snapshot = d.control().controller.snapshot();
    let mut routes = d.fib.control().routes();
    routes.retain(|r| vrf.is_none_or(|v| r.vrf == v));
    routes.sort_by(|a, b| {
        (a.vrf, a.prefix.addr().is_ipv6(), a.prefix).cmp(&(b.vrf, b.prefix.addr().is_ipv6(), b.prefix))
    });
    let mut text = String::new();
    let mut list = Vec::new();
    let mut last_vrf = None;
    for r in &routes {
        if last_vrf != Some(r.vrf) {
            let _ = writeln!(text, "VRF {}", r.vrf);
            last_vrf = Some(r.vrf);
        }
        let source = format!("{:?}", r.source).to_lowercase();
        let paths: Vec<(String, Value)> = r.paths.iter().map(|p| path_text(&snapshot, p)).collect();
        let _ = writeln!(
            text,
            "  {:<40}{:<11}{}",
            r.prefix.to_string(),
            source,
            paths.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>().join(", ")
        );
        list.push(json!({
            "vrf": r.vrf, "prefix": r.prefix.to_string(), "source": source,
            "paths": paths.into_iter().map(|(_, j)| j).collect::<Vec<_>>(), "load_balance": r.lb,
        }));
    }
    if routes.is_empty() {
        let _ = writeln!(text, "no routes{}", vrf.map(|v| format!(" in VRF {v}")).unwrap_or_default());
    }
    Ok(Shown { text, json: json!({ "routes": list }) })
}

fn neighbors(d: &Daemon) -> Shown {
    let snapshot = d.control().controller.snapshot();
    let mut ns = d.fib.control().neighbors();
    ns.sort_by_key(|n| (n.sw_if, n.ip));
    let hz = clock::ticks_per_second().max(1);
    let now = clock::now();
    let mut text = String::new();
    let _ = writeln!(text, "{:>8}  {:<40}{:<7}{:<20}{}", "Age(s)", "IP", "Flags", "Ethernet", "Interface");
    let mut list = Vec::new();
    for n in &ns {
        let is_static = matches!(n.kind, vswitch_nodes::ip::neighbor::NeighborKind::Static);
        let age = now.saturating_sub(n.updated) / hz;
        let name = if_name(&snapshot, n.sw_if);
        let _ = writeln!(
            text,
            "{:>8}  {:<40}{:<7}{:<20}{}",
            age,
            n.ip.to_string(),
            if is_static { "S" } else { "D" },
            n.mac.to_string(),
            name
        );
        list.push(json!({
            "ip": n.ip.to_string(), "mac": n.mac.to_string(), "interface": name, "sw_if": n.sw_if,
            "static": is_static, "age_seconds": age,
        }));
    }
    Shown { text, json: json!({ "neighbors": list }) }
}

fn runtime(d: &Daemon) -> Shown {
    let base = std::mem::take(&mut d.baselines().runtime);
    let secs = d.started.elapsed().as_secs_f64();
    let mut text = String::new();
    let mut list = Vec::new();
    for h in &d.workers.handles {
        let ls = &h.loop_stats;
        let _ = writeln!(text, "Thread {} vswitch-wk{}", h.id, h.id);
        let _ = writeln!(
            text,
            "Time {secs:.1}, loops {}, idle loops {}, sleeps {}, packets received {}",
            ls.loops.get(),
            ls.idle_loops.get(),
            ls.sleeps.get(),
            ls.rx_packets.get()
        );
        let _ = writeln!(text, "{:<28}{:>14}{:>16}{:>14}{:>15}", "Name", "Calls", "Vectors", "Clocks", "Vectors/Call");
        let b = base.get(h.id);
        let mut nodes = Vec::new();
        for n in h.graph_stats.snapshot() {
            let z = b.and_then(|b| b.get(n.name)).copied().unwrap_or_default();
            let calls = n.calls.saturating_sub(z[0]);
            let packets = n.packets.saturating_sub(z[1]);
            let clocks = n.clocks.saturating_sub(z[2]);
            if calls == 0 {
                continue;
            }
            let per_packet = if packets == 0 { 0.0 } else { clocks as f64 / packets as f64 };
            let per_call = packets as f64 / calls as f64;
            let _ = writeln!(text, "{:<28}{:>14}{:>16}{:>14.2e}{:>15.2}", n.name, calls, packets, per_packet, per_call);
            nodes.push(json!({
                "name": n.name, "calls": calls, "vectors": packets, "clocks": clocks,
                "clocks_per_vector": per_packet, "vectors_per_call": per_call,
            }));
        }
        text.push('\n');
        list.push(
            json!({ "worker": h.id, "loops": ls.loops.get(), "idle_loops": ls.idle_loops.get(), "nodes": nodes }),
        );
    }
    d.baselines().runtime = base;
    Shown { text, json: json!({ "time_seconds": secs, "workers": list }) }
}

fn errors(d: &Daemon) -> Shown {
    let raw = d.error_totals_raw();
    let base = d.baselines().errors.clone();
    let mut rows: Vec<(&str, &str, u64)> = raw
        .into_iter()
        .map(|((node, reason), v)| (node, reason, v.saturating_sub(base.get(&(node, reason)).copied().unwrap_or(0))))
        .filter(|r| r.2 != 0)
        .collect();
    rows.sort();
    let mut text = String::new();
    let _ = writeln!(text, "{:>12}  {:<28}{}", "Count", "Node", "Reason");
    for (node, reason, v) in &rows {
        let _ = writeln!(text, "{v:>12}  {node:<28}{reason}");
    }
    let list: Vec<Value> =
        rows.iter().map(|(node, reason, v)| json!({ "node": node, "reason": reason, "count": v })).collect();
    Shown { text, json: json!({ "errors": list }) }
}

fn trace(d: &Daemon) -> Shown {
    let mut text = String::new();
    let mut list = Vec::new();
    for h in &d.workers.handles {
        let _ = writeln!(text, "------------------- Start of thread {} vswitch-wk{} -------------------", h.id, h.id);
        if h.trace.is_empty() {
            let _ = writeln!(text, "No packets in trace buffer");
        } else {
            text.push_str(&h.trace.format());
        }
        list.push(json!({ "worker": h.id, "records": h.trace.len(), "text": h.trace.format() }));
    }
    Shown { text, json: json!({ "workers": list }) }
}

fn workers(d: &Daemon) -> Shown {
    let queues = d.workers.run_on_all(|w| {
        let mut rx = Vec::new();
        let mut i = 0;
        while let Some(q) = w.rx_queue(i) {
            let s = q.stats();
            rx.push((q.port(), s.packets, s.bytes, s.drops));
            i += 1;
        }
        rx
    });
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<4}{:<14}{:>14}{:>14}{:>10}{:>14}{:>10}{:>9}  {}",
        "ID", "Name", "Loops", "Idle loops", "Sleeps", "Rx packets", "Snapshots", "Punted", "Rx queues (port: packets)"
    );
    let mut list = Vec::new();
    for (h, q) in d.workers.handles.iter().zip(queues) {
        let s = &h.loop_stats;
        let qtext = match &q {
            Some(q) if q.is_empty() => "-".to_string(),
            Some(q) => q.iter().map(|(p, n, _, _)| format!("{p}: {n}")).collect::<Vec<_>>().join(", "),
            None => "(worker did not answer)".to_string(),
        };
        let _ = writeln!(
            text,
            "{:<4}{:<14}{:>14}{:>14}{:>10}{:>14}{:>10}{:>9}  {}",
            h.id,
            format!("vswitch-wk{}", h.id),
            s.loops.get(),
            s.idle_loops.get(),
            s.sleeps.get(),
            s.rx_packets.get(),
            s.snapshots.get(),
            s.punted.get(),
            qtext
        );
        list.push(json!({
            "id": h.id, "loops": s.loops.get(), "idle_loops": s.idle_loops.get(), "sleeps": s.sleeps.get(),
            "rx_packets": s.rx_packets.get(), "snapshots": s.snapshots.get(), "housekeeping": s.housekeeping.get(),
            "punted": s.punted.get(),
            "rx_queues": q.map(|q| q.iter().map(|(p, n, b, dr)| json!({ "port": p, "packets": n, "bytes": b, "drops": dr })).collect::<Vec<_>>()),
        }));
    }
    Shown { text, json: json!({ "workers": list }) }
}

fn buffers(d: &Daemon) -> Shown {
    let s = d.pool.stats();
    let in_use = s.capacity - s.free_shared;
    let mut text = String::new();
    let _ = writeln!(text, "{:<32}{:>12}", "capacity", s.capacity);
    let _ = writeln!(text, "{:<32}{:>12}", "free (shared list)", s.free_shared);
    let _ = writeln!(text, "{:<32}{:>12}", "in use or in worker caches", in_use);
    let _ = writeln!(text, "{:<32}{:>12}", "buffer size (bytes)", s.buffer_size);
    let _ = writeln!(text, "{:<32}{:>12}", "allocation failures", s.alloc_failures);
    let _ = writeln!(text, "{:<32}{:>12}", "double frees refused", s.double_frees);
    let _ = writeln!(text, "{:<32}{:>12}", "backing", s.backing.to_string());
    Shown {
        text,
        json: json!({
            "capacity": s.capacity, "free": s.free_shared, "in_use_or_cached": in_use, "buffer_size": s.buffer_size,
            "alloc_failures": s.alloc_failures, "double_frees": s.double_frees, "backing": s.backing.to_string(),
        }),
    }
}
