//! `show memif`: every memif interface with its role, socket, id, state
//! (and why it last went down), peer, queues, ring and buffer sizes,
//! regions, rings (live head and tail) and counters.

use crate::daemon::Daemon;
use crate::ports::MemifPortInfo;
use crate::show::Shown;
use serde_json::{json, Value};
use std::fmt::Write;
use vswitch_port::memif::vswitch_memif::{Direction, LinkState, QueueCounters, Role, RxMode};
use vswitch_port::memif::MemifPortStats;

/// `connected`, `listening` (a server waiting for its client),
/// `connecting` (a handshake under way, or a client between attempts).
fn state_name(p: &MemifPortInfo) -> &'static str {
    match (p.info.state, p.info.role) {
        (LinkState::Up, _) => "connected",
        (LinkState::Connecting, _) => "connecting",
        (LinkState::Down, Role::Server) => "listening",
        (LinkState::Down, Role::Client) => "connecting",
    }
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::S2M => "s2m",
        Direction::M2S => "m2s",
    }
}

fn queue_json(c: &QueueCounters) -> Value {
    json!({
        "packets": c.packets, "bytes": c.bytes, "bad_region": c.bad_region, "bad_offset": c.bad_offset,
        "bad_length": c.bad_length, "oversize": c.oversize, "empty": c.empty, "ring_full": c.ring_full,
        "interrupts": c.interrupts, "faults": c.faults, "no_link": c.no_link,
    })
}

fn sum(list: &[MemifPortStats]) -> MemifPortStats {
    list.iter().fold(MemifPortStats::default(), |mut t, s| {
        t.add(s);
        t
    })
}

/// Renders `show memif`.
pub fn memif(d: &Daemon) -> Shown {
    let mut ports = d.control().ports.memif_ports();
    ports.sort_by(|a, b| a.interface.cmp(&b.interface));
    let mut text = String::new();
    let mut list = Vec::new();
    for p in &ports {
        let i = &p.info;
        let state = state_name(p);
        let ring_size = i.rings.first().map(|r| 1u32 << r.log2_ring_size).unwrap_or(p.spec.ring_size);
        let buffer_size = i.buffer_size.unwrap_or(p.spec.buffer_size);
        let mine = sum(&p.rx);
        let mine_tx = sum(&p.tx);
        let _ = writeln!(
            text,
            "{} (port {}): memif {}, socket {}, id {}, mode {}",
            p.interface,
            p.port,
            i.role.name(),
            i.socket,
            i.id,
            p.spec.mode.as_str()
        );
        let mut line = format!("  state {state}");
        if let Some(up) = i.uptime {
            let _ = write!(line, ", up {:.1}s", up.as_secs_f64());
        }
        if i.state == LinkState::Up {
            let _ = write!(
                line,
                "; peer {:?} interface {:?}",
                i.peer_name.as_deref().unwrap_or(""),
                i.peer_if_name.as_deref().unwrap_or("")
            );
            if let Some(pid) = i.peer_pid {
                let _ = write!(line, " pid {pid}");
            }
        }
        let _ = writeln!(text, "{line}");
        let rx_modes: Vec<&str> = i
            .rx_modes
            .iter()
            .map(|m| match m {
                RxMode::Polling => "polling",
                RxMode::Interrupt => "interrupt",
            })
            .collect();
        let _ = writeln!(
            text,
            "  queues {} (rings s2m {} m2s {}), ring size {ring_size}, buffer size {buffer_size}, secret {}, rx {}",
            i.queues,
            i.s2m_rings,
            i.m2s_rings,
            if i.has_secret { "yes" } else { "no" },
            rx_modes.join(" ")
        );
        let reasons: Vec<String> = [
            ("local disconnect", &i.local_reason),
            ("remote disconnect", &i.remote_reason),
            ("last error", &i.last_error),
        ]
        .into_iter()
        .filter_map(|(n, r)| r.as_ref().map(|r| format!("{n} {r:?}")))
        .collect();
        if !reasons.is_empty() {
            let _ = writeln!(text, "  {}", reasons.join("; "));
        }
        if !i.regions.is_empty() {
            let _ = writeln!(text, "  regions:");
            for r in &i.regions {
                let _ = writeln!(text, "    {:<3} size {}", r.index, r.size);
            }
            let _ = writeln!(text, "  rings:");
            for r in &i.rings {
                let _ = writeln!(
                    text,
                    "    {} {:<3} region {} offset {:<9} size {:<6} head {:<6} tail {:<6} flags {}{}",
                    dir_name(r.direction),
                    r.index,
                    r.region,
                    r.offset,
                    1u32 << r.log2_ring_size,
                    r.head,
                    r.tail,
                    u8::from(r.interrupts_masked),
                    if r.interrupts_masked { " (interrupts masked)" } else { "" }
                );
            }
        }
        let c = &i.counters;
        let _ = writeln!(text, "  {:<22}{:>16}{:>16}", "counters", "rx", "tx");
        let rows: [(&str, u64, u64); 14] = [
            ("packets", c.rx.packets, c.tx.packets),
            ("bytes", c.rx.bytes, c.tx.bytes),
            ("bad region", c.rx.bad_region, c.tx.bad_region),
            ("bad offset", c.rx.bad_offset, c.tx.bad_offset),
            ("bad length", c.rx.bad_length, c.tx.bad_length),
            ("oversize", c.rx.oversize, c.tx.oversize),
            ("empty", c.rx.empty, c.tx.empty),
            ("ring full", c.rx.ring_full, c.tx.ring_full),
            ("interrupts", c.rx.interrupts, c.tx.interrupts),
            ("faults", c.rx.faults, c.tx.faults),
            ("longer than a buffer", mine.rx_too_long, 0),
            ("dropped", 0, mine_tx.tx_dropped),
            // IP mode (the port adds and strips the Ethernet header).
            ("not IP (dropped)", mine.rx_not_ip, mine_tx.tx_not_ip),
            ("ARP/ND answered", mine.neighbor_replies, mine_tx.neighbor_replies),
        ];
        for (k, (name, rx, tx)) in rows.into_iter().enumerate() {
            if k < 2 || rx != 0 || tx != 0 {
                let _ = writeln!(text, "    {name:<20}{rx:>16}{tx:>16}");
            }
        }
        if mine.rx_no_buffer != 0 {
            let _ = writeln!(text, "    {:<20}{:>16}", "no buffer (bursts)", mine.rx_no_buffer);
        }
        let _ = writeln!(
            text,
            "  connects {}, disconnects {}, protocol errors {}",
            c.connects, c.disconnects, c.protocol_errors
        );
        if let Some(s) = &p.socket {
            let _ = write!(text, "  socket: {} accepted, {} refused", s.accepted, s.refused);
            if let Some(r) = &s.last_refusal {
                let _ = write!(text, " (last: {r})");
            }
            text.push('\n');
        }

        list.push(json!({
            "name": p.interface, "port": p.port, "role": i.role.name(), "socket": i.socket, "id": i.id,
            "mode": p.spec.mode.as_str(), "state": state, "link_up": i.state == LinkState::Up,
            "uptime_seconds": i.uptime.map(|u| u.as_secs_f64()),
            "peer_name": i.peer_name, "peer_interface": i.peer_if_name, "peer_pid": i.peer_pid,
            "local_disconnect_reason": i.local_reason, "remote_disconnect_reason": i.remote_reason,
            "last_error": i.last_error, "has_secret": i.has_secret, "queues": i.queues,
            "s2m_rings": i.s2m_rings, "m2s_rings": i.m2s_rings, "ring_size": ring_size, "buffer_size": buffer_size,
            "configured_ring_size": p.spec.ring_size, "configured_buffer_size": p.spec.buffer_size,
            "rx_modes": rx_modes,
            "regions": i.regions.iter().map(|r| json!({ "index": r.index, "size": r.size })).collect::<Vec<_>>(),
            "rings": i.rings.iter().map(|r| json!({
                "direction": dir_name(r.direction), "index": r.index, "region": r.region, "offset": r.offset,
                "size": 1u32 << r.log2_ring_size, "head": r.head, "tail": r.tail,
                "flags": u8::from(r.interrupts_masked), "interrupts_masked": r.interrupts_masked,
            })).collect::<Vec<_>>(),
            "counters": {
                "rx": queue_json(&c.rx), "tx": queue_json(&c.tx),
                "connects": c.connects, "disconnects": c.disconnects, "protocol_errors": c.protocol_errors,
                "rx_too_long": mine.rx_too_long, "rx_no_buffer": mine.rx_no_buffer, "tx_dropped": mine_tx.tx_dropped,
                "rx_not_ip": mine.rx_not_ip, "tx_not_ip": mine_tx.tx_not_ip,
                "rx_neighbor_replies": mine.neighbor_replies, "tx_neighbor_replies": mine_tx.neighbor_replies,
            },
            "rx_queues": i.rx_queues.iter().zip(p.rx.iter()).map(|(m, v)| {
                let mut j = queue_json(m);
                j["too_long"] = json!(v.rx_too_long);
                j["no_buffer"] = json!(v.rx_no_buffer);
                j
            }).collect::<Vec<_>>(),
            "tx_queues": i.tx_queues.iter().zip(p.tx.iter()).map(|(m, v)| {
                let mut j = queue_json(m);
                j["dropped"] = json!(v.tx_dropped);
                j
            }).collect::<Vec<_>>(),
            "socket_stats": p.socket.as_ref().map(|s| json!({
                "accepted": s.accepted, "refused": s.refused, "last_refusal": s.last_refusal,
            })),
        }));
    }
    if ports.is_empty() {
        let _ = writeln!(text, "no memif interfaces");
    }
    Shown { text, json: json!({ "memif": list }) }
}
