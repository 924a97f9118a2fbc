//! Applied configurations forward real frames: the compiled `Tables` run
//! the standard graph (`vswitch_nodes::harness`) with pg ports, and
//! re-applies take effect, through the shared FIB (routes: no new
//! snapshot) or a new snapshot (interfaces, bridge domains).

use std::net::Ipv4Addr;
use std::sync::Arc;
use vswitch_control::{Controller, DesiredState, NoPortBackends};
use vswitch_nodes::harness::Harness;
use vswitch_nodes::ip::IpFibConfig;
use vswitch_wire::{checksum, MacAddr};

const fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

const HOST_A: MacAddr = mac(0x0a);
const HOST_B: MacAddr = mac(0x0b);
const HOST_C: MacAddr = mac(0x0c);
const HOST_D: MacAddr = mac(0x0d);

fn apply(c: &mut Controller, yaml: &str) -> vswitch_control::ApplyReport {
    let s = DesiredState::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"));
    c.apply(s, &mut NoPortBackends).unwrap_or_else(|e| panic!("{e}"))
}

fn eth(dst: MacAddr, src: MacAddr, vlan: Option<u16>, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    if let Some(v) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4/UDP packet.
fn udp(src: &str, dst: &str) -> Vec<u8> {
    let data = b"through the compiled tables";
    let mut u = vec![0x04, 0xd2, 0x16, 0x2e];
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + u.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0, 0, 64, 17, 0, 0]);
    h.extend_from_slice(&src.parse::<Ipv4Addr>().unwrap().octets());
    h.extend_from_slice(&dst.parse::<Ipv4Addr>().unwrap().octets());
    let c = checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(&u);
    h
}

fn port(c: &Controller, name: &str) -> u32 {
    c.port(name).unwrap_or_else(|| panic!("no port {name}")).port
}

/// Frames transmitted per interface, by name.
fn sent(h: &mut Harness, c: &Controller, names: &[&str]) -> Vec<(String, Vec<Vec<u8>>)> {
    names.iter().map(|n| (n.to_string(), h.take_tx(port(c, n)))).filter(|(_, f)| !f.is_empty()).collect()
}

const ROUTED: &str = "
interfaces:
  - { name: pg0, type: pg, mac: 02:00:00:00:00:a0, l3: { addresses: [10.0.0.1/24] } }
  - { name: pg1, type: pg, mac: 02:00:00:00:00:a1, l3: { addresses: [10.0.1.1/24] } }
  - { name: pg2, type: pg, mac: 02:00:00:00:00:a2, l3: { addresses: [10.0.2.1/24] } }
neighbors:
  - { interface: pg1, ip: 10.0.1.2, mac: 02:00:00:00:00:0b }
  - { interface: pg2, ip: 10.0.2.2, mac: 02:00:00:00:00:0c }
routes:
  - { prefix: 10.9.0.0/16, via: [{ address: 10.0.1.2, interface: pg1 }] }
";

#[test]
fn applied_routes_forward_and_a_changed_route_takes_effect() {
    let mut c = Controller::new(IpFibConfig::small()).unwrap();
    apply(&mut c, ROUTED);
    let mut h = Harness::new((*c.snapshot()).clone(), 1024);
    let all = ["pg0", "pg1", "pg2"];
    let to_9 = eth(mac(0xa0), HOST_A, None, 0x0800, &udp("10.0.0.2", "10.9.1.1"));
    h.inject(port(&c, "pg0"), &[&to_9]);
    let out = sent(&mut h, &c, &all);
    assert_eq!(out.len(), 1, "{out:?}");
    let (via, frames) = &out[0];
    assert_eq!((via.as_str(), frames.len()), ("pg1", 1));
    let f = &frames[0];
    assert_eq!((&f[0..6], &f[6..12]), (&HOST_B.0[..], &mac(0xa1).0[..]), "rewritten to host B from pg1");
    assert_eq!(f[14 + 8], 63, "TTL decremented");
    assert_eq!(&f[14 + 12..14 + 20], &to_9[14 + 12..14 + 20], "addresses unchanged");

    // The route moves to pg2: only the FIB changes, the workers' snapshot
    // (here the harness's copy) stays, and the next packet follows.
    let r =
        apply(&mut c, &ROUTED.replace("address: 10.0.1.2, interface: pg1 }", "address: 10.0.2.2, interface: pg2 }"));
    assert!(!r.published && !r.routes.changed.is_empty());
    h.inject(port(&c, "pg0"), &[&to_9]);
    let out = sent(&mut h, &c, &all);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, "pg2");
    assert_eq!(&out[0].1[0][0..6], &HOST_C.0[..]);

    // A new interface and a route through it need the new snapshot.
    let more = ROUTED.replace(
        "neighbors:",
        "  - { name: pg3, type: pg, mac: 02:00:00:00:00:a3, l3: { addresses: [10.0.3.1/24] } }\nneighbors:\n  - { interface: pg3, ip: 10.0.3.2, mac: 02:00:00:00:00:0d }",
    ) + "  - { prefix: 10.7.0.0/16, via: [{ address: 10.0.3.2, interface: pg3 }] }\n  - { prefix: 10.6.0.0/16, type: drop }\n";
    let r = apply(&mut c, &more);
    assert!(r.published);
    assert_eq!(r.interfaces.added, ["pg3"]);
    h.tables = (*c.snapshot()).clone();
    let to_7 = eth(mac(0xa0), HOST_A, None, 0x0800, &udp("10.0.0.2", "10.7.0.1"));
    let to_6 = eth(mac(0xa0), HOST_A, None, 0x0800, &udp("10.0.0.2", "10.6.0.1"));
    h.inject(port(&c, "pg0"), &[&to_9, &to_7, &to_6]);
    let all4 = ["pg0", "pg1", "pg2", "pg3"];
    let out = sent(&mut h, &c, &all4);
    let summary: Vec<(&str, usize, [u8; 6])> =
        out.iter().map(|(n, f)| (n.as_str(), f.len(), f[0][0..6].try_into().unwrap())).collect();
    assert_eq!(summary, [("pg1", 1, HOST_B.0), ("pg3", 1, HOST_D.0)], "10.6/16 dropped");
    h.assert_no_leak();
}

const BRIDGED: &str = "
bridge_domains: [{ id: 1, mac_age_seconds: 300 }]
interfaces:
  - { name: p0, type: pg, bridge: { domain: 1 } }
  - { name: p1, type: pg, bridge: { domain: 1 } }
  - { name: p2, type: pg, bridge: { domain: 1 } }
  - name: trunk
    type: pg
    vlans: [{ id: 100, tag_rewrite: pop-1, bridge: { domain: 1 } }]
";

#[test]
fn an_applied_bridge_floods_learns_and_keeps_what_it_learned_across_a_reconfiguration() {
    let mut c = Controller::new(IpFibConfig::small()).unwrap();
    apply(&mut c, BRIDGED);
    let mut h = Harness::new((*c.snapshot()).clone(), 1024);
    let all = ["p0", "p1", "p2", "trunk"];
    let who = eth(MacAddr::BROADCAST, HOST_A, None, 0x0806, &[0u8; 46]);
    h.inject(port(&c, "p0"), &[&who]);
    let out = sent(&mut h, &c, &all);
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["p1", "p2", "trunk"], "flooded to every other member");
    let tagged = &out[2].1[0];
    assert_eq!(&tagged[12..16], &[0x81, 0x00, 0, 100], "the trunk's VLAN pushed back on the way out");
    // Host A is learned: a reply goes to p0 only.
    let reply = eth(HOST_A, HOST_B, None, 0x0800, &udp("10.0.0.2", "10.0.0.1"));
    h.inject(port(&c, "p1"), &[&reply]);
    let out = sent(&mut h, &c, &all);
    assert_eq!(out.iter().map(|(n, f)| (n.as_str(), f.len())).collect::<Vec<_>>(), [("p0", 1)]);
    let bd = Arc::clone(c.snapshot().bridge_domain(1).unwrap());
    assert_eq!(bd.macs.get(HOST_A).unwrap().sw_if, c.sw_if("p0").unwrap());

    // p2 leaves, the age changes: host A is still known, so a frame for it
    // from the trunk is not flooded, and leaves p0 untagged.
    let r = apply(
        &mut c,
        &BRIDGED
            .replace("  - { name: p2, type: pg, bridge: { domain: 1 } }", "  - { name: p2, type: pg }")
            .replace("mac_age_seconds: 300", "mac_age_seconds: 30"),
    );
    assert!(r.published);
    assert_eq!(r.interfaces.changed, ["p2"]);
    assert_eq!(r.bridge_domains.changed, [1]);
    h.tables = (*c.snapshot()).clone();
    assert!(Arc::ptr_eq(&h.tables.bridge_domain(1).unwrap().macs, &bd.macs));
    let from_trunk = eth(HOST_A, HOST_C, Some(100), 0x0800, &udp("10.0.0.3", "10.0.0.2"));
    h.inject(port(&c, "trunk"), &[&from_trunk]);
    let out = sent(&mut h, &c, &all);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, "p0");
    assert_eq!(&out[0].1[0][12..14], &[0x08, 0x00], "untagged inside the bridge");
    h.inject(port(&c, "p0"), &[&who]);
    let names: Vec<String> = sent(&mut h, &c, &all).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["p1", "trunk"], "p2 no longer gets flooded copies");
    // p2 is disabled now: what it receives is dropped.
    h.inject(port(&c, "p2"), &[&who]);
    assert!(sent(&mut h, &c, &all).is_empty());
    h.assert_no_leak();
}
