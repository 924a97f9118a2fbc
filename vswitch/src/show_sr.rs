//! `show sr localsids | policies | steering`: the SR table in force with
//! each local SID's and policy's counters (packets and bytes processed,
//! packets dropped; summed over workers, since the entry was created or
//! the last `clear sr`). An SR proxy SID (End.AS / End.AD / End.AM) counts
//! what it sent to its service function and, apart, what came back.

use crate::daemon::Daemon;
use crate::show::Shown;
use serde_json::{json, Value};
use std::fmt::Write;
use std::net::{IpAddr, Ipv6Addr};
use vswitch_fib::adj::AdjKind;
use vswitch_nodes::srv6::{Behavior, Inner, LocalSid, ProxyKind, SrNext as Next, SrTable};
use vswitch_nodes::Tables;

/// Packets, bytes, drops; for an SR proxy SID then the same of the traffic
/// back from its service function (zero for the others and policies).
pub type SrTotals = [u64; 6];

/// Local SID `index`'s counters summed over workers, raw.
pub fn localsid_totals_raw(d: &Daemon, index: u32) -> SrTotals {
    let mut t = [0; 6];
    for h in &d.workers.handles {
        let (p, b, x) = h.sr_counters.localsid(index).get();
        let (rp, rb, rx) = h.sr_counters.proxy_return(index).get();
        for (s, v) in t.iter_mut().zip([p, b, x, rp, rb, rx]) {
            *s += v;
        }
    }
    t
}

/// Policy `index`'s counters summed over workers, raw.
pub fn policy_totals_raw(d: &Daemon, index: u32) -> SrTotals {
    let mut t = [0; 6];
    for h in &d.workers.handles {
        let (p, b, x) = h.sr_counters.policy(index).get();
        t = [t[0] + p, t[1] + b, t[2] + x, 0, 0, 0];
    }
    t
}

fn since(raw: SrTotals, base: Option<&SrTotals>) -> SrTotals {
    let base = base.copied().unwrap_or_default();
    std::array::from_fn(|i| raw[i].saturating_sub(base[i]))
}

/// Local SID `index`'s counters since it was created or cleared.
pub fn localsid_totals(d: &Daemon, index: u32) -> SrTotals {
    since(localsid_totals_raw(d, index), d.baselines().sr_localsids.get(&index))
}

/// Policy `index`'s counters since it was created or cleared.
pub fn policy_totals(d: &Daemon, index: u32) -> SrTotals {
    since(policy_totals_raw(d, index), d.baselines().sr_policies.get(&index))
}

/// After an apply: counters of entries that are new at their index (an
/// index is reused only by a later apply) start from what the index has
/// counted so far.
pub fn rebase(d: &Daemon, old: &SrTable, new: &SrTable) {
    let same_sid = |a: &LocalSid, b: &LocalSid| (a.sid, a.prefix_len, a.vrf) == (b.sid, b.prefix_len, b.vrf);
    let sids: Vec<u32> =
        new.localsids().filter(|(i, s)| old.localsid(*i).is_none_or(|o| !same_sid(o, s))).map(|(i, _)| i).collect();
    let policies: Vec<u32> = new
        .policies()
        .filter(|(i, p)| old.policy(*i).is_none_or(|o| o.policy.bsid() != p.policy.bsid()))
        .map(|(i, _)| i)
        .collect();
    let sid_totals: Vec<(u32, SrTotals)> = sids.into_iter().map(|i| (i, localsid_totals_raw(d, i))).collect();
    let pol_totals: Vec<(u32, SrTotals)> = policies.into_iter().map(|i| (i, policy_totals_raw(d, i))).collect();
    let mut b = d.baselines();
    b.sr_localsids.extend(sid_totals);
    b.sr_policies.extend(pol_totals);
}

/// `clear sr`: every SID's and policy's counters from now.
pub fn clear(d: &Daemon) -> String {
    let sr = d.control().controller.snapshot().sr.clone();
    let sids: Vec<(u32, SrTotals)> = sr.localsids().map(|(i, _)| (i, localsid_totals_raw(d, i))).collect();
    let pols: Vec<(u32, SrTotals)> = sr.policies().map(|(i, _)| (i, policy_totals_raw(d, i))).collect();
    let n = (sids.len(), pols.len());
    let mut b = d.baselines();
    b.sr_localsids.extend(sids);
    b.sr_policies.extend(pols);
    format!("cleared the counters of {} local SIDs and {} SR policies", n.0, n.1)
}

/// Renders `show sr <localsids|policies|steering>`.
pub fn sr(d: &Daemon, args: &[String]) -> Result<Shown, String> {
    match args.first().map(String::as_str) {
        Some("localsids" | "localsid" | "sids") if args.len() == 1 => Ok(localsids(d)),
        Some("policies" | "policy") if args.len() == 1 => Ok(policies(d)),
        Some("steering" | "steer") if args.len() == 1 => Ok(steering(d)),
        _ => Err("show sr: expected one of localsids, policies, steering".into()),
    }
}

fn if_name(t: &Tables, sw_if: u32) -> String {
    t.interface(sw_if).map(|i| i.name.clone()).unwrap_or_else(|| format!("sw_if {sw_if}"))
}

/// The parameters of a SID, as text and JSON.
fn params(d: &Daemon, t: &Tables, s: &LocalSid) -> (String, Value) {
    let via = |adj: u32, v4: bool| {
        let a = d.fib.adj(adj);
        let nh: IpAddr = if v4 { a.next_hop_v4().into() } else { Ipv6Addr::from(a.next_hop).into() };
        let state = match a.kind {
            AdjKind::Rewrite => "resolved",
            AdjKind::Incomplete | AdjKind::Glean => "unresolved",
            _ => "down",
        };
        let name = if_name(t, a.sw_if);
        (
            format!("via {nh} {name} ({state})"),
            json!({ "next_hop": nh.to_string(), "interface": name, "adjacency": adj, "neighbor": state }),
        )
    };
    let (mut text, mut j) = match s.behavior {
        Behavior::End => (String::new(), json!({})),
        Behavior::EndX { adj } | Behavior::EndDx6 { adj } => via(adj, false),
        Behavior::EndDx4 { adj } => via(adj, true),
        Behavior::EndT { vrf } | Behavior::EndDt4 { vrf } | Behavior::EndDt6 { vrf } | Behavior::EndDt46 { vrf } => {
            (format!("table {vrf}"), json!({ "table": vrf }))
        }
        Behavior::EndDx2 { sw_if } => {
            let name = if_name(t, sw_if);
            (format!("interface {name}"), json!({ "interface": name }))
        }
        Behavior::EndB6Encaps { policy } | Behavior::EndB6EncapsRed { policy } => {
            let bsid = t.sr.policy(policy).map(|p| p.policy.bsid().to_string()).unwrap_or_default();
            (format!("policy {bsid}"), json!({ "policy": bsid, "policy_index": policy }))
        }
        Behavior::EndAs | Behavior::EndAd | Behavior::EndAm => match s.proxy.as_deref() {
            None => (String::new(), json!({})),
            Some(p) => {
                let inner = p.inner();
                let (text, mut j) = match p.to_sf() {
                    Next::Adjacency(adj) => via(adj, inner == Inner::Ipv4),
                    Next::Interface(sw_if) => {
                        let name = if_name(t, sw_if);
                        (format!("out {name}"), json!({ "interface": name }))
                    }
                    _ => (String::new(), json!({})),
                };
                // The return side goes on the SID's second line.
                j["return_interface"] = json!(if_name(t, p.return_if));
                j["inner"] = json!(format!("{inner:?}").to_lowercase());
                match &p.kind {
                    ProxyKind::Static(sp) => j["return_destination"] = json!(sp.cache.dst().to_string()),
                    ProxyKind::Dynamic { cache, .. } => j["cached_header_bytes"] = json!(cache.len()),
                    ProxyKind::Masquerading { .. } => {}
                }
                (text, j)
            }
        },
    };
    let f = s.flavors;
    let mut flavors = Vec::new();
    for (on, name) in [(f.psp, "psp"), (f.usp, "usp"), (f.usd, "usd")] {
        if on {
            flavors.push(name.to_string());
        }
    }
    if let Some(c) = f.next_csid {
        flavors.push(format!("next-csid {}/{}", c.block_bits(), c.node_function_bits()));
    }
    if !flavors.is_empty() {
        let _ = write!(text, "{}{}", if text.is_empty() { "" } else { ", " }, flavors.join(" "));
    }
    let hmac = format!("{:?}", s.hmac.mode).to_lowercase();
    if hmac != "off" {
        let _ = write!(text, "{}hmac {hmac}", if text.is_empty() { "" } else { ", " });
    }
    j["flavors"] = json!(flavors);
    j["hmac"] = json!(hmac);
    (text, j)
}

fn localsids(d: &Daemon) -> Shown {
    let t = d.control().controller.snapshot();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:>4}  {:<30}{:<18}{:>4}  {:<36}{:>12}{:>14}{:>10}",
        "Idx", "SID", "Behavior", "VRF", "Parameters", "Packets", "Bytes", "Drops"
    );
    let mut list = Vec::new();
    for (i, s) in t.sr.localsids() {
        let [packets, bytes, drops, r_packets, r_bytes, r_drops] = localsid_totals(d, i);
        let (ptext, pjson) = params(d, &t, s);
        let sid = format!("{}/{}", s.sid, s.prefix_len);
        let _ = writeln!(
            text,
            "{:>4}  {:<30}{:<18}{:>4}  {:<36}{:>12}{:>14}{:>10}",
            i,
            sid,
            s.behavior.name(),
            s.vrf,
            ptext,
            packets,
            bytes,
            drops
        );
        let mut entry = json!({
            "index": i, "sid": s.sid.to_string(), "prefix_len": s.prefix_len, "vrf": s.vrf,
            "behavior": s.behavior.name(), "params": pjson,
            "packets": packets, "bytes": bytes, "drops": drops,
        });
        if let Some(p) = s.proxy.as_deref() {
            // What came back from the service function: packets, bytes as
            // received, drops.
            let mut back = format!("back on {}", if_name(&t, p.return_if));
            if s.behavior != Behavior::EndAm {
                let _ = write!(back, ", {}", format!("{:?}", p.inner()).to_lowercase());
            }
            match &p.kind {
                ProxyKind::Static(sp) => {
                    let _ = write!(back, ", to {}", sp.cache.dst());
                }
                ProxyKind::Dynamic { cache, .. } => {
                    let _ = write!(back, ", cached {} B", cache.len());
                }
                ProxyKind::Masquerading { .. } => {}
            }
            let _ = writeln!(
                text,
                "{:>4}  {:<30}{:<18}{:>4}  {:<36}{:>12}{:>14}{:>10}",
                "", "", "  from the SF", "", back, r_packets, r_bytes, r_drops
            );
            entry["return"] = json!({ "packets": r_packets, "bytes": r_bytes, "drops": r_drops });
        }
        list.push(entry);
    }
    let _ = writeln!(text, "{} local SIDs", list.len());
    Shown { text, json: json!({ "localsids": list }) }
}

fn policies(d: &Daemon) -> Shown {
    let (t, spec) = {
        let c = d.control();
        (c.controller.snapshot(), c.controller.state().sr.clone())
    };
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:>4}  {:<30}{:<12}{:>4}  {:<30}{:>12}{:>14}{:>10}",
        "Idx", "BSID", "Encap", "VRF", "Source", "Packets", "Bytes", "Drops"
    );
    let mut list = Vec::new();
    for (i, p) in t.sr.policies() {
        let bsid = p.policy.bsid();
        let [packets, bytes, drops, ..] = policy_totals(d, i);
        let ps = spec.policies.iter().find(|s| s.bsid == bsid);
        let source = ps.and_then(|s| s.source).or(spec.source).map(|s| s.to_string()).unwrap_or_default();
        let _ = writeln!(
            text,
            "{:>4}  {:<30}{:<12}{:>4}  {:<30}{:>12}{:>14}{:>10}",
            i,
            bsid.to_string(),
            p.encap.name(),
            p.vrf,
            source,
            packets,
            bytes,
            drops
        );
        let mut lists = Vec::new();
        for (j, l) in p.policy.lists().iter().enumerate() {
            let buckets = p.policy.buckets().iter().filter(|&&b| usize::from(b) == j).count();
            let segments: Vec<String> = ps
                .and_then(|s| s.segment_lists.get(j))
                .map(|l| l.segments.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default();
            let _ = writeln!(
                text,
                "      list {j} weight {} ({buckets}/{} buckets): {}",
                l.weight,
                p.policy.buckets().len(),
                segments.join(", ")
            );
            lists.push(json!({ "weight": l.weight, "buckets": buckets, "segments": segments }));
        }
        let mut extra = Vec::new();
        if let Some(s) = ps {
            if let Some(h) = s.hop_limit {
                extra.push(format!("hop limit {h}"));
            }
            if let Some(tc) = s.traffic_class {
                extra.push(format!("traffic class {tc}"));
            }
            if let Some(k) = s.hmac_key {
                extra.push(format!("hmac key {k}"));
            }
        }
        if !extra.is_empty() {
            let _ = writeln!(text, "      {}", extra.join(", "));
        }
        list.push(json!({
            "index": i, "bsid": bsid.to_string(), "encap": p.encap.name(), "vrf": p.vrf, "source": source,
            "segment_lists": lists, "hop_limit": ps.and_then(|s| s.hop_limit),
            "traffic_class": ps.and_then(|s| s.traffic_class), "hmac_key": ps.and_then(|s| s.hmac_key),
            "packets": packets, "bytes": bytes, "drops": drops,
        }));
    }
    let _ = writeln!(text, "{} SR policies", list.len());
    Shown { text, json: json!({ "policies": list }) }
}

fn steering(d: &Daemon) -> Shown {
    let (t, spec) = {
        let c = d.control();
        (c.controller.snapshot(), c.controller.state().sr.clone())
    };
    let index_of = |bsid: Ipv6Addr| t.sr.policies().find(|(_, p)| p.policy.bsid() == bsid).map(|(i, _)| i);
    let mut text = String::new();
    let _ = writeln!(text, "{:<11}{:<40}{:>4}  {:<30}{:>6}{:>12}", "Kind", "Match", "VRF", "Policy", "Idx", "Packets");
    let mut list = Vec::new();
    for s in &spec.steering {
        let (kind, what, vrf) = match s {
            vswitch_control::SteeringSpec::Prefix { vrf, prefix, .. } => ("prefix", prefix.to_string(), Some(*vrf)),
            vswitch_control::SteeringSpec::Interface { interface, .. } => ("interface", interface.clone(), None),
        };
        let index = index_of(s.policy());
        let packets = index.map(|i| policy_totals(d, i)[0]).unwrap_or(0);
        let _ = writeln!(
            text,
            "{:<11}{:<40}{:>4}  {:<30}{:>6}{:>12}",
            kind,
            what,
            vrf.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            s.policy().to_string(),
            index.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            packets
        );
        list.push(json!({
            "kind": kind, "match": what, "vrf": vrf, "policy": s.policy().to_string(), "policy_index": index,
            "policy_packets": packets,
        }));
    }
    let _ = writeln!(text, "{} steering rules", list.len());
    Shown { text, json: json!({ "steering": list }) }
}
