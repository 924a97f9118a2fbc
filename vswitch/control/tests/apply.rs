//! Compiling and applying desired states: idempotence, diffs that leave
//! the untouched alone, stable indices, bridge domains keeping their
//! tables, routes and neighbors through the FIB, port backends, and
//! rollback when a step fails.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use vswitch_control::{
    same_interface, ApplyError, Controller, DesiredState, NeighborKey, NoPortBackends, PortRegistry, PortSpec,
    PortType, RouteKey,
};
use vswitch_fib::adj::{AdjConfig, AdjKind};
use vswitch_nodes::ip::{IpFibConfig, NeighborKind, RouteSource};
use vswitch_nodes::{IfKind, IfMode, Interface, Tables, VlanRewrite, VlanTags, NONE};
use vswitch_wire::MacAddr;

fn state(yaml: &str) -> DesiredState {
    DesiredState::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn ctl() -> Controller {
    Controller::new(IpFibConfig::small()).unwrap()
}

fn apply(c: &mut Controller, yaml: &str) -> vswitch_control::ApplyReport {
    c.apply(state(yaml), &mut NoPortBackends).unwrap_or_else(|e| panic!("{e}"))
}

fn intf(c: &Controller, name: &str) -> Interface {
    let s = c.sw_if(name).unwrap_or_else(|| panic!("no {name}"));
    c.snapshot().interface(s).unwrap().clone()
}

fn v4(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

/// Records port operations; fails to create the ports named in `fail`.
#[derive(Default)]
struct Ports {
    created: Vec<PortSpec>,
    removed: Vec<PortSpec>,
    fail: Vec<String>,
}

impl PortRegistry for Ports {
    fn create_port(&mut self, port: &PortSpec) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.fail.contains(&port.interface) {
            return Err(format!("no such device {:?}", port.host_ifname.as_deref().unwrap_or("")).into());
        }
        self.created.push(port.clone());
        Ok(())
    }

    fn remove_port(&mut self, port: &PortSpec) {
        self.removed.push(port.clone());
    }
}

const NODE: &str = "
interfaces:
  - name: a
    type: pg
    mac: 02:00:00:00:00:0a
    l3: { addresses: [10.0.1.1/24] }
    vlans:
      - { id: 100, l3: { addresses: [10.1.0.1/24] } }
  - { name: b, type: tap, host_ifname: vsw-b, l3: { addresses: [10.0.2.1/24] } }
  - { name: c, type: af-packet, host_ifname: eth9, queues: 2, l3: { addresses: [10.0.3.1/24] } }
routes:
  - { prefix: 10.9.0.0/16, via: [{ address: 10.0.2.2, interface: b }] }
neighbors:
  - { interface: b, ip: 10.0.2.2, mac: 02:00:00:00:02:02 }
";

#[test]
fn applying_the_same_state_twice_changes_nothing() {
    let mut c = ctl();
    let mut ports = Ports::default();
    let first = c.apply(state(NODE), &mut ports).unwrap();
    assert_eq!(first.interfaces.added, ["a", "a.100", "b", "c"]);
    assert_eq!(first.routes.added, [RouteKey { vrf: 0, prefix: "10.9.0.0/16".parse().unwrap() }]);
    assert_eq!(first.neighbors.added, [NeighborKey { interface: "b".into(), ip: "10.0.2.2".parse().unwrap() }]);
    assert!(first.published);
    let kinds: Vec<(String, PortType, Option<String>, u16)> =
        ports.created.iter().map(|p| (p.interface.clone(), p.port_type, p.host_ifname.clone(), p.queues)).collect();
    assert_eq!(
        kinds,
        [
            ("a".into(), PortType::Pg, None, 1),
            ("b".into(), PortType::Tap, Some("vsw-b".into()), 1),
            ("c".into(), PortType::AfPacket, Some("eth9".into()), 2)
        ]
    );
    let snap = c.snapshot();
    let routes = c.fib().control().routes();
    let second = c.apply(state(NODE), &mut ports).unwrap();
    assert!(second.is_empty(), "{second}");
    assert_eq!(second.to_string(), "no changes\n");
    assert!(!second.published);
    assert!(Arc::ptr_eq(&snap, &c.snapshot()), "not republished");
    assert_eq!(c.fib().control().routes(), routes);
    assert_eq!((ports.created.len(), ports.removed.len()), (3, 0), "no port touched");
    // The same state written differently (order, defaults spelt out) is
    // the same state.
    let reordered = "
neighbors:
  - { interface: b, ip: 10.0.2.2, mac: 02:00:00:00:02:02 }
interfaces:
  - { name: a, type: pg, mac: 02:00:00:00:00:0a, mtu: 1500, up: true, queues: 1, l3: { vrf: 0, addresses: [10.0.1.1/24] }, vlans: [{ id: 100, l3: { addresses: [10.1.0.1/24] } }] }
  - { name: c, type: af-packet, host_ifname: eth9, queues: 2, l3: { addresses: [10.0.3.1/24] } }
  - { name: b, type: tap, host_ifname: vsw-b, l3: { addresses: [10.0.2.1/24] } }
routes:
  - { vrf: 0, prefix: 10.9.0.0/16, via: [{ address: 10.0.2.2, interface: b, weight: 1 }] }
";
    let third = c.apply(state(reordered), &mut ports).unwrap();
    assert!(third.is_empty(), "{third}");
    assert!(Arc::ptr_eq(&snap, &c.snapshot()));
    assert_eq!(c.state(), &state(reordered), "the state in force is the one applied");
}

#[test]
fn a_diff_leaves_untouched_interfaces_identical_and_indices_stable() {
    let mut c = ctl();
    apply(&mut c, NODE);
    let before = c.snapshot();
    let a = intf(&c, "a");
    let sub = intf(&c, "a.100");
    let b_sw = c.sw_if("b").unwrap();
    let c_sw = c.sw_if("c").unwrap();
    let c_port = c.port("c").unwrap().port;
    let changed = NODE
        .replace("{ name: b, type: tap, host_ifname: vsw-b,", "{ name: b, type: tap, host_ifname: vsw-b, mtu: 9000,")
        .replace(
            "  - { name: c, type: af-packet, host_ifname: eth9, queues: 2, l3: { addresses: [10.0.3.1/24] } }",
            "  - { name: d, type: pg, bridge: { domain: 5 } }\nbridge_domains: [{ id: 5 }]",
        );
    let mut ports = Ports::default();
    let r = c.apply(state(&changed), &mut ports).unwrap();
    assert_eq!(r.interfaces.added, ["d"]);
    assert_eq!(r.interfaces.removed, ["c"]);
    assert_eq!(r.interfaces.changed, ["b"]);
    assert_eq!(r.bridge_domains.added, [5]);
    assert!(r.routes.is_empty() && r.neighbors.is_empty(), "{r}");
    assert!(same_interface(&intf(&c, "a"), &a), "untouched: identical");
    assert!(same_interface(&intf(&c, "a.100"), &sub));
    assert_eq!(format!("{:?}", intf(&c, "a")), format!("{a:?}"));
    assert_eq!(c.sw_if("b"), Some(b_sw));
    assert_eq!(intf(&c, "b").mtu, 9000);
    let d_sw = c.sw_if("d").unwrap();
    assert_ne!(d_sw, c_sw, "an index freed by this apply is not reused by it");
    assert!(c.snapshot().interface(c_sw).is_none(), "c is gone from the snapshot");
    assert_ne!(c.port("d").unwrap().port, c_port);
    assert_eq!(ports.removed.iter().map(|p| p.interface.as_str()).collect::<Vec<_>>(), ["c"]);
    assert_eq!(ports.created.iter().map(|p| p.interface.as_str()).collect::<Vec<_>>(), ["d"]);
    assert!(!Arc::ptr_eq(&before, &c.snapshot()));
    // The FIB followed: c's subnet is gone, the others stay.
    let fib = Arc::clone(c.fib());
    assert!(fib.lookup4(0, v4("10.0.3.9")).is_none());
    assert!(fib.lookup4(0, v4("10.0.2.9")).is_some());
    // A later apply reuses the freed indices.
    let more = changed.replace(
        "  - { name: d, type: pg, bridge: { domain: 5 } }",
        "  - { name: d, type: pg, bridge: { domain: 5 } }\n  - { name: e, type: pg }",
    );
    apply(&mut c, &more);
    assert_eq!(c.sw_if("e"), Some(c_sw));
    assert_eq!(c.port("e").unwrap().port, c_port);
    assert_eq!(c.snapshot().port_if[c_port as usize], c_sw);
}

#[test]
fn a_name_that_changes_kind_gets_a_new_index() {
    let mut c = ctl();
    apply(&mut c, "bridge_domains: [{ id: 10, bvi: { addresses: [10.0.0.1/24] } }]");
    let bvi = intf(&c, "bvi10");
    assert_eq!((bvi.kind.clone(), bvi.port, bvi.mode), (IfKind::Bvi { bd: 10 }, NONE, IfMode::L3 { vrf: 0 }));
    let old = bvi.sw_if;
    let r = apply(&mut c, "bridge_domains: [{ id: 10 }]\ninterfaces: [{ name: bvi10, type: pg }]");
    assert_eq!(
        (r.interfaces.added.clone(), r.interfaces.removed.clone()),
        (vec!["bvi10".to_string()], vec!["bvi10".to_string()])
    );
    assert_ne!(c.sw_if("bvi10"), Some(old));
    assert_eq!(intf(&c, "bvi10").kind, IfKind::Port);
}

#[test]
fn interfaces_compile_to_what_the_nodes_read() {
    let mut c = ctl();
    apply(
        &mut c,
        "
interfaces:
  - name: trunk
    type: pg
    mtu: 9000
    up: false
    vlans:
      - { id: 100, tag_rewrite: pop-1, bridge: { domain: 1, split_horizon_group: 3 } }
      - { id: 200, inner: 300, tag_rewrite: pop-2, xconnect: { peer: cnf } }
      - { id: 400, mtu: 1500, up: true, l3: { vrf: 2, addresses: [172.16.4.1/24, 'fd00:4::1/64'], proxy_arp: true } }
      - { id: 500, tag_rewrite: { translate-1-1: { to: 600 } }, bridge: { domain: 1 } }
      - { id: 600, inner: 7, tag_rewrite: { translate-1-1: { to: 8 } }, bridge: { domain: 1 } }
  - { name: cnf, type: pg, xconnect: { peer: trunk.200.300 } }
  - { name: off, type: pg }
vrfs: [{ id: 2 }]
bridge_domains: [{ id: 1 }]
",
    );
    let t = c.snapshot();
    let trunk = intf(&c, "trunk");
    assert_eq!((trunk.kind.clone(), trunk.mtu, trunk.up, trunk.mode), (IfKind::Port, 9000, false, IfMode::Disabled));
    assert_eq!(trunk.mac, vswitch_control::generated_mac("trunk"));
    let port = c.port("trunk").unwrap().port;
    assert_eq!(t.port_if[port as usize], trunk.sw_if);
    let v100 = intf(&c, "trunk.100");
    assert_eq!(v100.kind, IfKind::SubIf { parent: trunk.sw_if, tags: VlanTags::dot1q(100) });
    assert_eq!((v100.port, v100.mac, v100.mtu, v100.up), (port, trunk.mac, 9000, false), "inherited from the port");
    assert_eq!(v100.mode, IfMode::Bridge { bd: 1, shg: 3 });
    assert_eq!(v100.rewrite, VlanRewrite { pop: 1, push: VlanTags::default() });
    let qinq = intf(&c, "trunk.200.300");
    assert_eq!(qinq.kind, IfKind::SubIf { parent: trunk.sw_if, tags: VlanTags::qinq(200, 300) });
    assert_eq!(qinq.rewrite, VlanRewrite { pop: 2, push: VlanTags::default() });
    assert_eq!(qinq.mode, IfMode::XConnect { peer: c.sw_if("cnf").unwrap() });
    assert_eq!(intf(&c, "cnf").mode, IfMode::XConnect { peer: qinq.sw_if });
    let v400 = intf(&c, "trunk.400");
    assert_eq!((v400.mode, v400.mtu, v400.up, v400.proxy_arp), (IfMode::L3 { vrf: 2 }, 1500, false, true));
    assert_eq!(v400.ip4, [(Ipv4Addr::new(172, 16, 4, 1), 24)]);
    assert_eq!(v400.ip6, [("fd00:4::1".parse().unwrap(), 64)]);
    let v500 = intf(&c, "trunk.500");
    assert_eq!(v500.rewrite, VlanRewrite { pop: 1, push: VlanTags::dot1q(600) });
    let v600 = intf(&c, "trunk.600.7");
    let push = VlanTags { count: 1, outer: (vswitch_wire::ethertype::QINQ, 8), inner: (0, 0) };
    assert_eq!(v600.rewrite, VlanRewrite { pop: 1, push }, "the outer tag keeps its TPID");
    assert_eq!(t.sub_if(trunk.sw_if, 100, 0xffff), Some(v100.sw_if));
    assert_eq!(t.sub_if(trunk.sw_if, 200, 300), Some(qinq.sw_if));
    assert_eq!(intf(&c, "off").mode, IfMode::Disabled);
    let bd = t.bridge_domain(1).unwrap();
    let members: Vec<u32> = bd.members.iter().map(|m| m.sw_if).collect();
    assert_eq!(members, [v100.sw_if, v500.sw_if, v600.sw_if]);
    assert_eq!(bd.member(v100.sw_if).unwrap().shg, 3);
    // The routed sub-interface is in the FIB with its VRF.
    assert_eq!(c.fib().control().interface_vrf(v400.sw_if), Some(2));
    assert!(c.fib().control().is_local_address(2, "172.16.4.1".parse().unwrap()));
}

#[test]
fn bridge_domains_keep_their_tables_across_reconfiguration() {
    let mut c = ctl();
    let doc = "
bridge_domains:
  - id: 10
    mac_age_seconds: 300
    bvi: { mac: 02:00:00:00:00:b0, addresses: [10.10.0.1/24] }
    static_macs: [{ mac: 02:00:00:00:00:51, interface: p1 }]
    arp_termination: true
    arp_entries: [{ ip: 10.10.0.5, mac: 02:00:00:00:00:55 }]
interfaces:
  - { name: p0, type: pg, bridge: { domain: 10 } }
  - { name: p1, type: pg, bridge: { domain: 10 } }
";
    apply(&mut c, doc);
    let (p0, p1, bvi) = (c.sw_if("p0").unwrap(), c.sw_if("p1").unwrap(), c.sw_if("bvi10").unwrap());
    let bd = Arc::clone(c.snapshot().bridge_domain(10).unwrap());
    assert_eq!(bd.config.bvi, Some(bvi));
    assert!(bd.config.arp_term);
    let learned = mac("02:00:00:00:00:01");
    let on_p1 = mac("02:00:00:00:00:02");
    bd.macs.learn(learned, p0, bd.macs.now());
    bd.macs.learn(on_p1, p1, bd.macs.now());
    let statics = |bd: &vswitch_nodes::l2::BridgeDomain| {
        let mut v: Vec<(String, u32)> =
            bd.macs.iter().filter(|e| e.is_static).map(|e| (e.mac.to_string(), e.sw_if)).collect();
        v.sort();
        v
    };
    assert_eq!(statics(&bd), [("02:00:00:00:00:51".to_string(), p1), ("02:00:00:00:00:b0".to_string(), bvi)]);
    assert_eq!(bd.arp.lookup(Ipv4Addr::new(10, 10, 0, 5)).unwrap().mac, mac("02:00:00:00:00:55"));

    // New age, p1 leaves (to L3), p2 joins, static and ARP entries change.
    let doc2 = "
bridge_domains:
  - id: 10
    mac_age_seconds: 60
    bvi: { mac: 02:00:00:00:00:b0, addresses: [10.10.0.1/24] }
    static_macs: [{ mac: 02:00:00:00:00:52, interface: p2 }]
    arp_termination: true
    arp_entries: [{ ip: 10.10.0.6, mac: 02:00:00:00:00:56 }]
interfaces:
  - { name: p0, type: pg, bridge: { domain: 10 } }
  - { name: p1, type: pg, l3: { addresses: [10.20.0.1/24] } }
  - { name: p2, type: pg, bridge: { domain: 10 } }
";
    let r = apply(&mut c, doc2);
    assert_eq!(r.bridge_domains.changed, [10]);
    let next = Arc::clone(c.snapshot().bridge_domain(10).unwrap());
    assert!(!Arc::ptr_eq(&bd, &next), "settings changed: a new domain object");
    assert!(Arc::ptr_eq(&bd.macs, &next.macs) && Arc::ptr_eq(&bd.arp, &next.arp), "same tables");
    assert_eq!(next.macs.age_secs(), 60);
    assert_eq!(next.macs.get(learned).unwrap().sw_if, p0, "learned MAC survived");
    assert!(next.macs.get(on_p1).is_none(), "p1 left: its MACs went with it");
    let p2 = c.sw_if("p2").unwrap();
    assert_eq!(statics(&next), [("02:00:00:00:00:52".to_string(), p2), ("02:00:00:00:00:b0".to_string(), bvi)]);
    assert!(next.arp.lookup(Ipv4Addr::new(10, 10, 0, 5)).is_none());
    assert!(next.arp.lookup(Ipv4Addr::new(10, 10, 0, 6)).unwrap().is_static);
    let members: Vec<u32> = next.members.iter().map(|m| m.sw_if).collect();
    let mut want = vec![p0, p2, bvi];
    want.sort();
    assert_eq!(members, want);

    // Only a static entry changes: same domain object, nothing published.
    let snap = c.snapshot();
    let r = apply(&mut c, &doc2.replace("02:00:00:00:00:52, interface: p2", "02:00:00:00:00:53, interface: p0"));
    assert_eq!(r.bridge_domains.changed, [10]);
    assert!(!r.published && Arc::ptr_eq(&snap, &c.snapshot()));
    assert_eq!(statics(&next), [("02:00:00:00:00:53".to_string(), p0), ("02:00:00:00:00:b0".to_string(), bvi)]);
    // The domain goes: it leaves the snapshot.
    apply(&mut c, "interfaces: [{ name: p0, type: pg }]");
    assert!(c.snapshot().bridge_domain(10).is_none());
}

#[test]
fn routes_and_neighbors_go_through_the_fib_incrementally() {
    let mut c = ctl();
    let doc = "
interfaces:
  - { name: a, type: pg, l3: { addresses: [10.0.1.1/24] } }
  - { name: b, type: pg, l3: { addresses: [10.0.2.1/24] } }
  - { name: x, type: pg, l3: { vrf: 1, addresses: [10.0.1.1/24] } }
vrfs: [{ id: 1, name: blue }]
routes:
  - { prefix: 10.9.0.0/16, via: [{ address: 10.0.1.2, interface: a }] }
  - { prefix: 10.8.0.0/16, type: prohibit }
  - { prefix: 10.7.0.0/16, via: [{ address: 10.0.1.2, interface: a, weight: 3 }, { address: 10.0.2.2, interface: b }] }
  - { vrf: 1, prefix: 10.9.0.0/16, interface: x }
neighbors:
  - { interface: a, ip: 10.0.1.2, mac: 02:00:00:00:01:02 }
";
    apply(&mut c, doc);
    let fib = Arc::clone(c.fib());
    let a = c.sw_if("a").unwrap();
    let adj = |vrf, dst: &str| fib.adj(fib.resolve4(vrf, v4(dst), 0).unwrap());
    let r = adj(0, "10.9.1.1");
    assert_eq!((r.kind, r.sw_if, r.next_hop_v4()), (AdjKind::Rewrite, a, Ipv4Addr::new(10, 0, 1, 2)));
    assert_eq!(&r.rewrite_bytes()[..6], &mac("02:00:00:00:01:02").0, "resolved by the static neighbor");
    assert_eq!(adj(0, "10.8.0.1").kind, AdjKind::Prohibit);
    let lb = fib.lookup4(0, v4("10.7.0.1")).unwrap();
    let n = fib.n_buckets(lb) as u32;
    let via_a = (0..n).filter(|&h| fib.adj(fib.choose(lb, h)).sw_if == a).count();
    assert_eq!(via_a * 4, n as usize * 3, "UCMP 3:1 over {n} buckets");
    assert_eq!(adj(1, "10.9.0.1").kind, AdjKind::Glean, "attached in vrf 1");
    let n = fib.control().neighbor(a, "10.0.1.2".parse().unwrap()).unwrap();
    assert_eq!((n.kind, n.mac), (NeighborKind::Static, mac("02:00:00:00:01:02")));
    let lb_10_7 = fib.lookup4(0, v4("10.7.0.1"));

    // One route changes, one goes, one comes; the neighbor's MAC changes.
    let snap = c.snapshot();
    let doc2 = doc
        .replace(
            "{ prefix: 10.9.0.0/16, via: [{ address: 10.0.1.2, interface: a }] }",
            "{ prefix: 10.9.0.0/16, via: [{ address: 10.0.2.2, interface: b }] }",
        )
        .replace("  - { prefix: 10.8.0.0/16, type: prohibit }\n", "  - { prefix: 10.6.0.0/15, type: drop }\n")
        .replace("mac: 02:00:00:00:01:02 }", "mac: 02:00:00:00:01:03 }");
    let r = apply(&mut c, &doc2);
    let key = |p: &str| RouteKey { vrf: 0, prefix: p.parse().unwrap() };
    assert_eq!(r.routes.added, [key("10.6.0.0/15")]);
    assert_eq!(r.routes.removed, [key("10.8.0.0/16")]);
    assert_eq!(r.routes.changed, [key("10.9.0.0/16")]);
    assert_eq!(r.neighbors.changed, [NeighborKey { interface: "a".into(), ip: "10.0.1.2".parse().unwrap() }]);
    assert!(!r.published, "routes and neighbors live in the shared FIB");
    assert!(Arc::ptr_eq(&snap, &c.snapshot()));
    let b = c.sw_if("b").unwrap();
    let r9 = adj(0, "10.9.1.1");
    assert_eq!((r9.kind, r9.sw_if, r9.next_hop_v4()), (AdjKind::Incomplete, b, Ipv4Addr::new(10, 0, 2, 2)));
    assert_eq!(fib.lookup4(0, v4("10.8.0.1")), fib.lookup4(0, v4("10.200.0.1")), "10.8/16 gone (both miss)");
    assert!(fib.lookup4(0, v4("10.8.0.1")).is_none());
    assert_eq!(adj(0, "10.7.0.1").sw_if, a, "10.7/15 drop does not cover 10.7/16");
    assert_eq!(adj(0, "10.6.0.1").kind, AdjKind::Drop);
    assert_eq!(fib.lookup4(0, v4("10.7.0.1")), lb_10_7, "the untouched route was not reinstalled");
    assert_eq!(&adj(0, "10.0.1.2").rewrite_bytes()[..6], &mac("02:00:00:00:01:03").0);
    let statics: Vec<_> = fib
        .control()
        .routes()
        .into_iter()
        .filter(|r| r.source == RouteSource::Static)
        .map(|r| (r.vrf, r.prefix))
        .collect();
    assert_eq!(statics.len(), 4);

    // Interface a moves to vrf 1: its neighbor follows, the FIB's
    // interface-derived routes move with it.
    let doc3 = "
interfaces:
  - { name: a, type: pg, l3: { vrf: 1, addresses: [10.0.5.1/24] } }
  - { name: b, type: pg, l3: { addresses: [10.0.2.1/24] } }
vrfs: [{ id: 1, name: blue }]
routes:
  - { vrf: 1, prefix: 10.9.0.0/16, via: [{ address: 10.0.5.2, interface: a }] }
neighbors:
  - { interface: a, ip: 10.0.5.2, mac: 02:00:00:00:01:02 }
  - { interface: a, ip: 10.0.5.3, mac: 02:00:00:00:01:03 }
";
    let r = apply(&mut c, doc3);
    assert_eq!(r.interfaces.changed, ["a"]);
    assert_eq!(r.interfaces.removed, ["x"]);
    assert_eq!(r.routes.removed.len(), 3);
    assert_eq!(r.routes.changed, [RouteKey { vrf: 1, prefix: "10.9.0.0/16".parse().unwrap() }]);
    assert_eq!(c.fib().control().interface_vrf(a), Some(1));
    assert!(fib.lookup4(0, v4("10.0.1.5")).is_none(), "old subnet gone");
    let r = adj(1, "10.9.0.1");
    assert_eq!((r.kind, r.sw_if), (AdjKind::Rewrite, a));
    let neighbors: Vec<_> = fib.control().neighbors().into_iter().map(|n| (n.sw_if, n.ip)).collect();
    assert_eq!(neighbors, [(a, "10.0.5.2".parse::<IpAddr>().unwrap()), (a, "10.0.5.3".parse().unwrap())]);
    // Everything goes.
    let r = apply(&mut c, "");
    assert_eq!(r.interfaces.removed, ["a", "b"]);
    assert!(fib.control().routes().is_empty(), "{:?}", fib.control().routes());
    assert!(fib.control().neighbors().is_empty());
    assert!(c.snapshot().interfaces.iter().all(Option::is_none));
}

#[test]
fn a_changed_backend_replaces_the_port() {
    let mut c = ctl();
    let doc = "interfaces:\n  - { name: t, type: tap, host_ifname: vsw-t, vlans: [{ id: 5 }] }\n";
    apply(&mut c, doc);
    let old = c.port("t").unwrap().clone();
    let mut ports = Ports::default();
    let r = c.apply(state(&doc.replace("vsw-t", "vsw-t2")), &mut ports).unwrap();
    let new = c.port("t").unwrap().clone();
    assert_ne!(new.port, old.port);
    assert_eq!((r.ports_created.clone(), r.ports_removed.clone()), (vec![new.clone()], vec![old.clone()]));
    assert_eq!((ports.created.clone(), ports.removed.clone()), (vec![new.clone()], vec![old.clone()]));
    assert_eq!(r.interfaces.changed, ["t", "t.5"], "the port and its VLAN moved to the new port index");
    assert_eq!(intf(&c, "t.5").port, new.port);
    assert_eq!(
        r.to_string(),
        format!(
            "interfaces: ~t ~t.5\ncreated port {} (t, tap vsw-t2, 1 queue)\nremoved port {} (t, tap vsw-t, 1 queue)\n",
            new.port, old.port
        )
    );
    // MAC and MTU changes keep the backend.
    let r = c.apply(state(&doc.replace("vsw-t,", "vsw-t2, mtu: 2000, mac: 02:00:00:00:00:77,")), &mut ports).unwrap();
    assert_eq!(r.interfaces.changed, ["t", "t.5"]);
    assert!(r.ports_created.is_empty() && r.ports_removed.is_empty());
}

#[test]
fn invalid_states_change_nothing_and_say_everything() {
    let mut c = ctl();
    apply(&mut c, NODE);
    let snap = c.snapshot();
    let e = c.apply(state("interfaces: [{ name: a, type: pg, mtu: 1 }, { name: b, type: tap }]"), &mut NoPortBackends);
    let Err(ApplyError::Invalid(errors)) = e else { panic!("{e:?}") };
    assert_eq!(errors.len(), 2);
    let text = ApplyError::Invalid(errors).to_string();
    assert_eq!(
        text,
        "invalid desired state (2 errors):\n  interfaces[0] (a).mtu: 1 is outside 68..=9000\n  interfaces[1] (b).host_ifname: required for type tap"
    );
    assert!(Arc::ptr_eq(&snap, &c.snapshot()));
    assert_eq!(c.state(), &state(NODE));
    // The FIB's VRF count is a limit.
    let e = c.apply(state("vrfs: [{ id: 16 }]"), &mut NoPortBackends).unwrap_err();
    assert_eq!(e.to_string(), "invalid desired state (1 error):\n  vrfs[0].id: 16 is outside 0..=15");
}

#[test]
fn a_dry_run_reports_without_changing() {
    let mut c = ctl();
    apply(&mut c, NODE);
    let snap = c.snapshot();
    let new = state(&NODE.replace("queues: 2", "queues: 4"));
    let dry = c.diff(&new).unwrap();
    assert_eq!(dry.interfaces.changed, ["c"]);
    assert_eq!(dry.ports_created.len(), 1);
    assert!(Arc::ptr_eq(&snap, &c.snapshot()));
    assert_eq!(c.state(), &state(NODE));
    let real = c.apply(new, &mut NoPortBackends).unwrap();
    assert_eq!(real, dry);
}

#[test]
fn a_port_that_cannot_be_created_changes_nothing() {
    let mut c = ctl();
    apply(&mut c, NODE);
    let snap = c.snapshot();
    let routes = c.fib().control().routes();
    let mut ports = Ports { fail: vec!["z".into()], ..Default::default() };
    let doc = NODE.replace(
        "  - { name: c, type: af-packet, host_ifname: eth9, queues: 2, l3: { addresses: [10.0.3.1/24] } }\n",
        "  - { name: c, type: af-packet, host_ifname: eth9, queues: 2, l3: { addresses: [10.0.3.1/24] } }\n  - { name: y, type: tap, host_ifname: vsw-y }\n  - { name: z, type: tap, host_ifname: vsw-z }\n",
    );
    let e = c.apply(state(&doc), &mut ports).unwrap_err();
    let ApplyError::Port { port, message } = &e else { panic!("{e}") };
    assert_eq!((port.interface.as_str(), message.as_str()), ("z", "no such device \"vsw-z\""));
    assert!(e.to_string().starts_with("creating port "), "{e}");
    assert!(e.to_string().ends_with(" (z, tap vsw-z, 1 queue): no such device \"vsw-z\"; nothing changed"), "{e}");
    assert_eq!(ports.created.iter().map(|p| &p.interface).collect::<Vec<_>>(), ["y"]);
    assert_eq!(ports.removed, ports.created, "y was removed again");
    assert!(Arc::ptr_eq(&snap, &c.snapshot()));
    assert_eq!(c.fib().control().routes(), routes);
    assert_eq!(c.sw_if("y"), None);
    // With a working registry the same state applies, and the indices the
    // failed apply had picked are free.
    let r = c.apply(state(&doc), &mut Ports::default()).unwrap();
    assert_eq!(r.interfaces.added, ["y", "z"]);
}

/// A FIB with room for 20 adjacencies (the permanent drop, the local
/// special and one glean per subnet included).
fn tiny() -> Controller {
    let mut config = IpFibConfig::small();
    config.fib.adj = AdjConfig { max_adjacencies: 20 };
    Controller::new(config).unwrap()
}

const TINY: &str = "
interfaces:
  - { name: a, type: pg, l3: { addresses: [10.0.1.1/24] } }
  - { name: b, type: pg, l3: { addresses: [10.0.2.1/24] } }
routes:
  - { prefix: 10.9.0.0/16, via: [{ address: 10.0.2.2, interface: b }] }
  - { prefix: 10.8.0.0/16, via: [{ address: 10.0.2.3, interface: b }] }
neighbors:
  - { interface: b, ip: 10.0.2.2, mac: 02:00:00:00:02:02 }
  - { interface: a, ip: 10.0.1.7, mac: 02:00:00:00:01:07 }
";

/// What the FIB holds, without object indices (which a rollback may
/// change): routes with their sources and paths, neighbors, routed
/// interfaces.
type FibContents = (Vec<String>, Vec<String>, Vec<(u32, Option<u32>)>);

fn fib_contents(c: &Controller) -> FibContents {
    let f = c.fib().control();
    let routes = f.routes().iter().map(|r| format!("{} {} {:?} {:?}", r.vrf, r.prefix, r.sources, r.paths)).collect();
    let neighbors = f.neighbors().iter().map(|n| format!("{} {} {} {:?}", n.sw_if, n.ip, n.mac, n.kind)).collect();
    let ifs = (0..40).map(|s| (s, f.interface_vrf(s))).filter(|(_, v)| v.is_some()).collect();
    (routes, neighbors, ifs)
}

#[test]
fn a_fib_that_fills_up_midway_is_rolled_back() {
    let mut c = tiny();
    apply(&mut c, TINY);
    let before = fib_contents(&c);
    let snap = c.snapshot();
    // New: interface t (a tap), 10.9/16 moves, 10.8/16 goes, neighbor on a
    // goes, and 40 routes through distinct next hops: far more
    // adjacencies than the FIB has.
    let mut doc = String::from(
        "interfaces:
  - { name: a, type: pg, l3: { addresses: [10.0.1.1/24] } }
  - { name: b, type: pg, l3: { addresses: [10.0.2.1/24] } }
  - { name: t, type: tap, host_ifname: vsw-t, l3: { addresses: [10.0.3.1/24] } }
neighbors:
  - { interface: b, ip: 10.0.2.2, mac: 02:00:00:00:02:02 }
  - { interface: t, ip: 10.0.3.2, mac: 02:00:00:00:03:02 }
routes:
  - { prefix: 10.9.0.0/16, via: [{ address: 10.0.3.2, interface: t }] }
",
    );
    for i in 0..40 {
        doc += &format!("  - {{ prefix: 172.16.{i}.0/24, via: [{{ address: 10.0.3.{}, interface: t }}] }}\n", i + 10);
    }
    let mut ports = Ports::default();
    let e = c.apply(state(&doc), &mut ports).unwrap_err();
    let ApplyError::Fib { step, error, rollback_failures } = &e else { panic!("{e}") };
    assert!(step.starts_with("adding route 172.16."), "{step}");
    assert!(
        matches!(error, vswitch_nodes::ip::IpFibError::Fib(vswitch_fib::FibError::AdjacenciesExhausted { .. })),
        "{error:?}"
    );
    assert!(rollback_failures.is_empty(), "{rollback_failures:?}");
    assert!(e.to_string().ends_with("; rolled back, nothing changed"), "{e}");
    assert_eq!(fib_contents(&c), before, "the FIB is as it was");
    assert!(Arc::ptr_eq(&snap, &c.snapshot()));
    assert_eq!(c.state(), &state(TINY));
    assert_eq!(ports.created.len(), 1);
    assert_eq!(ports.removed, ports.created, "the tap was removed again");
    // Routing still works as before, and a state that fits applies.
    let fib = Arc::clone(c.fib());
    let adj = fib.adj(fib.resolve4(0, v4("10.9.0.1"), 0).unwrap());
    assert_eq!((adj.kind, adj.next_hop_v4()), (AdjKind::Rewrite, Ipv4Addr::new(10, 0, 2, 2)));
    let fits = doc.lines().take(9).collect::<Vec<_>>().join("\n");
    let r = c.apply(state(&fits), &mut ports).unwrap();
    assert_eq!(r.interfaces.added, ["t"]);
    let adj = fib.adj(fib.resolve4(0, v4("10.9.0.1"), 0).unwrap());
    assert_eq!((adj.sw_if, adj.next_hop_v4()), (c.sw_if("t").unwrap(), Ipv4Addr::new(10, 0, 3, 2)));
}

#[test]
fn a_fib_that_fills_up_while_syncing_interfaces_is_rolled_back() {
    let mut c = tiny();
    apply(&mut c, TINY);
    let before = fib_contents(&c);
    let snap = c.snapshot();
    // 30 new routed interfaces: a glean adjacency each.
    let mut doc = TINY.to_string();
    let extra: String =
        (0..30).map(|i| format!("  - {{ name: p{i}, type: pg, l3: {{ addresses: [10.1.{i}.1/24] }} }}\n")).collect();
    doc = doc.replace("routes:\n", &format!("{extra}routes:\n"));
    // And the route to 10.8/16 goes (removed before the sync, put back).
    doc = doc.replace("  - { prefix: 10.8.0.0/16, via: [{ address: 10.0.2.3, interface: b }] }\n", "");
    let e = c.apply(state(&doc), &mut NoPortBackends).unwrap_err();
    let ApplyError::Fib { step, rollback_failures, .. } = &e else { panic!("{e}") };
    assert_eq!(step, "syncing interfaces");
    assert!(rollback_failures.is_empty(), "{rollback_failures:?}");
    assert_eq!(fib_contents(&c), before);
    assert!(Arc::ptr_eq(&snap, &c.snapshot()));
    assert_eq!(c.sw_if("p0"), None);
}

#[test]
fn the_snapshot_carries_the_shared_fib() {
    let c = ctl();
    let t: Arc<Tables> = c.snapshot();
    assert!(Arc::ptr_eq(&t.fib, c.fib()));
    assert!(t.interfaces.is_empty() && t.bridge_domains.is_empty());
    assert!(Arc::ptr_eq(&c.tables().load_full(), &t));
    fn send<T: Send>() {}
    send::<Controller>();
}

#[test]
fn the_kernel_link_gates_up_and_gives_the_mtu_where_none_is_configured() {
    use vswitch_control::PortLink;
    let mut c = ctl();
    let yaml = r#"
interfaces:
  - { name: up1, type: af-packet, host_ifname: veth-a, l3: { addresses: [10.1.0.1/24] },
      vlans: [ { id: 10, l3: { addresses: [10.2.0.1/24] } }, { id: 20, mtu: 1400, l3: { addresses: [10.3.0.1/24] } } ] }
  - { name: fixed, type: af-packet, host_ifname: veth-b, mtu: 1500, l3: { addresses: [10.4.0.1/24] } }
"#;
    apply(&mut c, yaml);
    let port = |c: &Controller, n: &str| c.port(n).unwrap().port;
    let (p1, p2) = (port(&c, "up1"), port(&c, "fixed"));
    assert!(intf(&c, "up1").up && intf(&c, "up1.10").up);

    // Down: the port and its sub-interfaces go down; the other port stays.
    let before = c.snapshot();
    assert!(c.set_link(p1, PortLink { up: false, mtu: Some(1500) }));
    assert!(!intf(&c, "up1").up && !intf(&c, "up1.10").up && !intf(&c, "up1.20").up);
    assert!(intf(&c, "fixed").up);
    assert!(!Arc::ptr_eq(&before, &c.snapshot()));
    // The same report again changes nothing and publishes nothing.
    let same = c.snapshot();
    assert!(!c.set_link(p1, PortLink { up: false, mtu: Some(1500) }));
    assert!(Arc::ptr_eq(&same, &c.snapshot()));

    // Up with a new MTU: taken where none is configured.
    assert!(c.set_link(p1, PortLink { up: true, mtu: Some(9000) }));
    assert!(intf(&c, "up1").up);
    assert_eq!(intf(&c, "up1").mtu, 9000);
    assert_eq!(intf(&c, "up1.10").mtu, 9000, "a sub-interface without an MTU follows its port");
    assert_eq!(intf(&c, "up1.20").mtu, 1400, "a configured MTU wins");
    assert!(!c.set_link(p2, PortLink { up: true, mtu: Some(4000) }), "nothing changes: nothing published");
    assert_eq!(intf(&c, "fixed").mtu, 1500, "a configured MTU wins over the device's");
    // Out-of-range device MTUs are clamped to what the data path takes.
    c.set_link(p1, PortLink { up: true, mtu: Some(65535) });
    assert_eq!(intf(&c, "up1").mtu, 9000);

    // Re-applying the same state keeps the link's effect (no flap).
    let snap = c.snapshot();
    apply(&mut c, yaml);
    assert!(Arc::ptr_eq(&snap, &c.snapshot()));
    c.set_link(p1, PortLink { up: false, mtu: None });
    apply(&mut c, yaml);
    assert!(!intf(&c, "up1").up, "an apply does not bring a down link up");

    // Unknown ports are ignored; a removed port forgets its link.
    assert!(!c.set_link(12345, PortLink { up: false, mtu: None }));
    apply(&mut c, "interfaces:\n  - { name: fixed, type: af-packet, host_ifname: veth-b, mtu: 1500 }\n");
    assert_eq!(c.link(p1), None);
}
