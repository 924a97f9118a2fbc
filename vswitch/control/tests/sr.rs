//! The `sr:` section: reading and writing it, every validation error by
//! its path, compiling it into the SR table and the FIB, diffs that leave
//! the rest alone, stable indices, held adjacencies given back.

use std::net::Ipv6Addr;
use vswitch_control::{validate, Controller, DesiredState, Limits, NoPortBackends};
use vswitch_fib::adj::AdjKind;
use vswitch_nodes::ip::{IpFibConfig, RouteSource};
use vswitch_nodes::srv6::{Behavior, EncapKind};

fn state(yaml: &str) -> DesiredState {
    DesiredState::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn errors(yaml: &str) -> Vec<String> {
    match validate(&state(yaml), &Limits::default()) {
        Ok(w) => panic!("valid (warnings {w:?}):\n{yaml}"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

const BASE: &str = "
interfaces:
  - { name: core, type: pg, l3: { addresses: [fc00:b::1/64, 10.1.0.1/24] } }
  - { name: pod-a, type: pg, l3: { vrf: 1, addresses: [10.0.1.1/24, 2001:db8:1::1/64] } }
  - { name: pod-l2, type: pg }
vrfs: [{ id: 1 }]
routes:
  - { prefix: 'fc00::/16', via: [{ address: 'fc00:b::2', interface: core }] }
";

const SR: &str = "
sr:
  source: fc00:1::a
  hmac_keys: [{ id: 7, secret: a secret shared with the peers }]
  localsids:
    - { sid: 'fc00:1::e', behavior: End, flavors: [psp] }
    - { sid: 'fc00:1::e1', behavior: end.x, interface: core, next_hop: 'fc00:b::2' }
    - { sid: 'fc00:1::4', behavior: End.DT4, table: 1 }
    - { sid: 'fc00:1::6', behavior: End.DT6, table: 1, hmac: required }
    - { sid: 'fc00:1::d4', behavior: End.DX4, interface: pod-a, next_hop: 10.0.1.2 }
    - { sid: 'fc00:1::d2', behavior: End.DX2, interface: pod-l2 }
    - { sid: 'fc00:0:1::', behavior: End, next_csid: { block_bits: 32, node_function_bits: 16 } }
    - { sid: 'fc00:1::b6', behavior: End.B6.Encaps, policy: 'fc00:1::b:1' }
  policies:
    - bsid: 'fc00:1::b:1'
      segment_lists:
        - { segments: ['fc00:2::e', 'fc00:3::4'], weight: 3 }
        - { segments: ['fc00:4::4'] }
    - { bsid: 'fc00:1::b:2', encap: l2, hop_limit: 32, segment_lists: [{ segments: ['fc00:3::d2'] }] }
    - { bsid: 'fc00:1::b:3', encap: encaps-red, hmac_key: 7, segment_lists: [{ segments: ['fc00:3::4'] }] }
  steering:
    - { prefix: 10.9.0.0/16, vrf: 1, policy: 'fc00:1::b:1' }
    - { prefix: '2001:db8:99::/48', vrf: 1, policy: 'fc00:1::b:3' }
    - { interface: pod-l2, policy: 'fc00:1::b:2' }
";

#[test]
fn the_section_reads_and_writes_back() {
    let s = state(&format!("{BASE}{SR}"));
    assert_eq!(s.sr.localsids.len(), 8);
    assert_eq!(s.sr.localsids[1].behavior.name(), "End.X", "any case in, the RFC's spelling out");
    let yaml = s.to_yaml();
    assert!(yaml.contains("behavior: End.X"), "{yaml}");
    assert_eq!(DesiredState::from_yaml(&yaml).unwrap(), s);
    assert!(validate(&s, &Limits::default()).is_ok(), "{:?}", validate(&s, &Limits::default()));
    let e = DesiredState::from_yaml("sr:\n  localsids: [{ sid: 'fc00::1', behavior: End.DX9 }]\n").unwrap_err();
    assert!(e.message.contains("unknown behavior \"End.DX9\""), "{e}");
    let e = DesiredState::from_yaml("sr:\n  steering: [{ policy: 'fc00::1' }]\n").unwrap_err();
    assert!(e.message.contains("set exactly one of prefix and interface"), "{e}");
    let e = DesiredState::from_yaml("sr:\n  policies: [{ bsid: 'fc00::1', segment_list: [] }]\n").unwrap_err();
    assert!(e.message.contains("unknown field `segment_list`"), "{e}");
}

#[test]
fn every_problem_is_named_by_its_path() {
    let bad = format!(
        "{BASE}
sr:
  hmac_keys: [{{ id: 0, secret: '' }}]
  localsids:
    - {{ sid: 'fc00:1::e', behavior: End, table: 1 }}
    - {{ sid: 'fc00:1::e', behavior: End.DT4 }}
    - {{ sid: 'fc00:1::e1', behavior: End.X, interface: pod-l2, next_hop: 10.0.0.1 }}
    - {{ sid: 'fc00:1::d4', behavior: End.DX4 }}
    - {{ sid: 'fc00:b::1', behavior: End, vrf: 3 }}
    - {{ sid: 'fc00:0:1:5::', behavior: End, next_csid: {{ block_bits: 32, node_function_bits: 16 }} }}
    - {{ sid: 'fc00:1::b6', behavior: End.B6.Encaps.Red, policy: 'fc00:1::b:1' }}
    - {{ sid: 'fc00:1::d2', behavior: End.DT6, flavors: [psp] }}
  policies:
    - {{ bsid: 'fc00:1::b:1', hmac_key: 9, segment_lists: [] }}
    - {{ bsid: 'fc00:1::b:2', source: 'fc00::9', encap: l2, segment_lists: [{{ segments: [] }}] }}
    - {{ bsid: 'fc00:1::b:3', source: 'fc00::9', segment_lists: [{{ segments: ['ff02::1', 'fc00::2', 'fc00::3', 'fc00::4', 'fc00::5', 'fc00::6', 'fc00::7', 'fc00::8', 'fc00::9', 'fc00::a', 'fc00::b', 'fc00::c'] }}] }}
  steering:
    - {{ prefix: 10.9.0.1/16, policy: 'fc00:1::b:1' }}
    - {{ prefix: 10.8.0.0/16, vrf: 5, policy: 'fc00:1::b:2' }}
    - {{ interface: core, policy: 'fc00:1::b:2' }}
    - {{ interface: pod-l2, policy: 'fc00:1::b:9' }}
"
    );
    let e = errors(&bad);
    let want = [
        "sr.hmac_keys[0].id: 0 is reserved; use 1..=4294967295",
        "sr.hmac_keys[0].secret: 0 bytes; a secret is 1..=64 bytes",
        "sr.localsids[0] (fc00:1::e).table: table is not used by End",
        "sr.localsids[1] (fc00:1::e).sid: fc00:1::e/128 in vrf 0 is also sr.localsids[0]",
        "sr.localsids[2] (fc00:1::e1).interface: \"pod-l2\" is not a routed (l3) interface",
        "sr.localsids[2] (fc00:1::e1).next_hop: End.X needs an IPv6 next hop; 10.0.0.1 is not",
        "sr.localsids[3] (fc00:1::d4).interface: required by End.DX4",
        "sr.localsids[3] (fc00:1::d4).next_hop: required by End.DX4",
        "sr.localsids[4] (fc00:b::1).vrf: vrf 3 is not declared in vrfs",
        "sr.localsids[5] (fc00:0:1:5::).sid: fc00:0:1:5:: has argument bits set beyond /48",
        "sr.localsids[6] (fc00:1::b6).policy: End.B6.Encaps.Red needs a policy with encap encaps-red",
        "sr.localsids[7] (fc00:1::d2).flavors: flavors is not used by End.DT6",
        "sr.policies[0] (fc00:1::b:1).source: required (or set sr.source)",
        "sr.policies[0] (fc00:1::b:1).hmac_key: no key 9 in sr.hmac_keys",
        "sr.policies[0] (fc00:1::b:1).segment_lists: at least one segment list",
        "sr.policies[1] (fc00:1::b:2).segment_lists[0].segments: at least one segment",
        "sr.policies[2] (fc00:1::b:3).segment_lists[0].segments: 12 segments; at most 11 fit the 224 bytes of headroom an encapsulation may use",
        "sr.policies[2] (fc00:1::b:3).segment_lists[0].segments[0]: ff02::1 is not a unicast address a SID can be",
        "sr.steering[0].prefix: 10.9.0.1/16 has host bits set (write 10.9.0.0/16)",
        "sr.steering[1].vrf: vrf 5 is not declared in vrfs",
        "sr.steering[1].policy: an l2 policy encapsulates frames; steer an interface into it",
        "sr.steering[2].interface: \"core\" is l3; a steered interface has no l3, bridge or xconnect",
        "sr.steering[3].policy: no policy with binding SID fc00:1::b:9",
    ];
    for w in want {
        assert!(e.iter().any(|x| x == w), "missing {w:?} in\n{}", e.join("\n"));
    }
    // fc00:b::1 is core's address, but in VRF 0, not 3: only the VRF is wrong.
    assert_eq!(e.len(), want.len(), "{}", e.join("\n"));
}

fn ctl() -> Controller {
    Controller::new(IpFibConfig::small()).unwrap()
}

#[test]
fn applied_sids_policies_and_steering_are_routed_to_the_sr_table() {
    let mut c = ctl();
    let r = c.apply(state(&format!("{BASE}{SR}")), &mut NoPortBackends).unwrap();
    assert!(r.published);
    assert_eq!(r.sr.added.len(), 1 + 8 + 3 + 3, "{r}");
    assert!(r.to_string().contains("+localsid fc00:1::e/128 (vrf 0)"), "{r}");
    let t = c.snapshot();
    let sr = &t.sr;
    let fib = c.fib();
    let lookup6 = |vrf: u32, a: &str| {
        let adj = fib.adj(fib.resolve6(vrf, u128::from(a6(a)), 0).unwrap());
        (adj.kind, adj.index())
    };
    // Each SID: a route to an SR adjacency whose index finds the SID.
    for s in ["fc00:1::e", "fc00:1::e1", "fc00:1::4", "fc00:1::6", "fc00:1::d4", "fc00:1::d2", "fc00:1::b6"] {
        let (kind, index) = lookup6(0, s);
        let sid = sr.localsid(index).unwrap_or_else(|| panic!("{s}: no entry {index}"));
        assert_eq!(sid.sid, a6(s));
        let want = if sid.behavior.decapsulates() { AdjKind::SrLocalSidDecap } else { AdjKind::SrLocalSid };
        assert_eq!(kind, want, "{s}");
    }
    // NEXT-C-SID: the /48 of block and node/function.
    let (kind, index) = lookup6(0, "fc00:0:1:7::");
    assert_eq!((kind, sr.localsid(index).unwrap().prefix_len), (AdjKind::SrLocalSid, 48));
    let (_, dt4) = lookup6(0, "fc00:1::4");
    assert_eq!(sr.localsid(dt4).unwrap().behavior, Behavior::EndDt4 { vrf: 1 });
    // End.X: a held neighbor adjacency, incomplete until fc00:b::2 answers.
    let (_, x) = lookup6(0, "fc00:1::e1");
    let Behavior::EndX { adj } = sr.localsid(x).unwrap().behavior else { panic!() };
    let a = fib.adj(adj);
    assert_eq!((a.kind, a.sw_if), (AdjKind::Incomplete, c.sw_if("core").unwrap()));
    // Steering: the prefix routes to the policy; the BSID too.
    let adj = fib.adj(fib.resolve4(1, u32::from("10.9.1.1".parse::<std::net::Ipv4Addr>().unwrap()), 0).unwrap());
    assert_eq!(adj.kind, AdjKind::SrPolicy);
    let p = sr.policy(adj.index()).unwrap();
    assert_eq!((p.policy.bsid(), p.encap, p.policy.lists().len()), (a6("fc00:1::b:1"), EncapKind::Encaps, 2));
    assert_eq!(p.policy.buckets().iter().filter(|&&b| b == 0).count(), 192, "3:1 of 256 buckets");
    assert_eq!(lookup6(0, "fc00:1::b:1"), (AdjKind::SrPolicy, adj.index()));
    let red = sr.policy(lookup6(1, "2001:db8:99::1").1).unwrap();
    assert_eq!(red.encap, EncapKind::EncapsRed);
    assert_eq!(red.policy.lists()[0].template.header()[40 + 5], 0x08, "HMAC: Linux's H flag");
    let l2 = sr.l2_policy(c.sw_if("pod-l2").unwrap()).unwrap();
    assert_eq!(sr.policy(l2).unwrap().encap, EncapKind::L2);
    let route = fib.control().route(0, "fc00:1::e/128".parse().unwrap()).unwrap();
    assert_eq!(route.source, RouteSource::Srv6);
    // Applying it again changes nothing.
    let r = c.apply(state(&format!("{BASE}{SR}")), &mut NoPortBackends).unwrap();
    assert!(r.is_empty() && !r.published, "{r}");
}

#[test]
fn changes_touch_only_what_changed_and_removal_gives_everything_back() {
    let mut c = ctl();
    let before = {
        let f = c.fib().control();
        (f.adjacency_count(), f.load_balance_count())
    };
    c.apply(state(BASE), &mut NoPortBackends).unwrap();
    let base_counts = {
        let f = c.fib().control();
        (f.adjacency_count(), f.load_balance_count(), f.routes().len())
    };
    c.apply(state(&format!("{BASE}{SR}")), &mut NoPortBackends).unwrap();
    let sr1 = c.snapshot().sr.clone();
    let index_of = |sr: &vswitch_nodes::srv6::SrTable, s: &str| sr.localsids().find(|(_, l)| l.sid == a6(s)).unwrap().0;
    // One SID changes behaviour, one goes, one comes; the rest keep their index.
    let changed = SR
        .replace("{ sid: 'fc00:1::4', behavior: End.DT4, table: 1 }", "{ sid: 'fc00:1::4', behavior: End.DT46, table: 1 }")
        .replace("    - { sid: 'fc00:1::d2', behavior: End.DX2, interface: pod-l2 }\n", "")
        .replace("    - { sid: 'fc00:1::e', behavior: End, flavors: [psp] }\n", "    - { sid: 'fc00:1::e', behavior: End, flavors: [psp] }\n    - { sid: 'fc00:1::f', behavior: End.T, table: 1 }\n");
    let r = c.apply(state(&format!("{BASE}{changed}")), &mut NoPortBackends).unwrap();
    assert_eq!(r.sr.added, vec!["localsid fc00:1::f/128 (vrf 0)"], "{r}");
    assert_eq!(r.sr.changed, vec!["localsid fc00:1::4/128 (vrf 0)"], "{r}");
    assert_eq!(r.sr.removed, vec!["localsid fc00:1::d2/128 (vrf 0)"], "{r}");
    assert!(r.interfaces.is_empty() && r.routes.is_empty(), "{r}");
    let sr2 = c.snapshot().sr.clone();
    for s in ["fc00:1::e", "fc00:1::e1", "fc00:1::4", "fc00:1::b6"] {
        assert_eq!(index_of(&sr1, s), index_of(&sr2, s), "{s} keeps its index");
    }
    let freed = index_of(&sr1, "fc00:1::d2");
    assert_ne!(index_of(&sr2, "fc00:1::f"), freed, "a freed index waits for a later apply");
    assert!(c.fib().control().route(0, "fc00:1::d2/128".parse().unwrap()).is_none(), "the removed SID's route is gone");
    assert_eq!(sr2.localsid(index_of(&sr2, "fc00:1::4")).unwrap().behavior, Behavior::EndDt46 { vrf: 1 });
    // Everything SR removed: the FIB is back to the base state.
    c.apply(state(BASE), &mut NoPortBackends).unwrap();
    let f = c.fib().control();
    assert_eq!((f.adjacency_count(), f.load_balance_count(), f.routes().len()), base_counts);
    assert!(c.snapshot().sr.localsids().next().is_none());
    drop(f);
    c.apply(DesiredState::default(), &mut NoPortBackends).unwrap();
    let f = c.fib().control();
    assert_eq!((f.adjacency_count(), f.load_balance_count()), before);
}

#[test]
fn the_srv6_examples_are_valid_and_apply() {
    for name in ["srv6-l3vpn.yaml", "srv6-l2.yaml", "srv6-te.yaml"] {
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
        let s = state(&std::fs::read_to_string(&p).unwrap());
        assert!(!s.sr.is_empty(), "{name}");
        let mut c = ctl();
        let r = c.apply(s.clone(), &mut NoPortBackends).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.warnings.is_empty() && !r.sr.added.is_empty(), "{name}: {r}");
        assert_eq!(c.snapshot().sr.localsids().count(), s.sr.localsids.len(), "{name}");
        assert_eq!(DesiredState::from_yaml(&s.to_yaml()).unwrap(), s, "{name} round trip");
    }
}
