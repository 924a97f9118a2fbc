//! Reading YAML: every example file, misspelt keys at every level
//! (`deny_unknown_fields`), shape errors with their position, and the
//! round trip through `to_yaml`.

use std::path::PathBuf;
use vswitch_control::{validate, DesiredState, Limits, Mode, RouteTarget, TagRewrite};

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_parses_validates_without_warnings_and_round_trips() {
    let files = examples();
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for want in ["bridge.yaml", "routed.yaml", "vlan.yaml"] {
        assert!(names.iter().any(|n| n == want), "examples/{want} missing: {names:?}");
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let s = DesiredState::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!s.interfaces.is_empty(), "{}", f.display());
        let warnings = validate(&s, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e:?}", f.display()));
        assert!(warnings.is_empty(), "{}: {warnings:?}", f.display());
        let back = DesiredState::from_yaml(&s.to_yaml()).unwrap();
        assert_eq!(back, s, "{} round trip:\n{}", f.display(), s.to_yaml());
    }
}

#[test]
fn examples_mean_what_they_say() {
    let read = |n: &str| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(n);
        DesiredState::from_yaml(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let vlan = read("vlan.yaml");
    let trunk = &vlan.interfaces[0];
    assert_eq!(trunk.vlans[1].inner, Some(300));
    assert_eq!(trunk.vlans[1].tag_rewrite, TagRewrite::Pop2);
    assert_eq!(trunk.vlans[3].tag_rewrite, TagRewrite::Translate11 { to: 600 });
    assert!(matches!(&trunk.vlans[2].mode, Mode::L3(l) if l.vrf == 2));
    let routed = read("routed.yaml");
    assert_eq!(routed.routes.len(), 6);
    assert!(matches!(&routed.routes[2].target, RouteTarget::Via(v) if v[0].weight == 3 && v[1].weight == 1));
    assert_eq!(routed.routes[1].prefix, "::/0".parse().unwrap());
    let bridge = read("bridge.yaml");
    assert_eq!(bridge.bridge_domains[0].mac_limit, 4096);
    assert!(bridge.bridge_domains[0].arp_termination);
}

/// Parses `yaml`, expecting an error that contains every one of `want`.
fn parse_error(yaml: &str, want: &[&str]) -> vswitch_control::ParseError {
    let e = DesiredState::from_yaml(yaml).expect_err(yaml);
    for w in want {
        assert!(e.message.contains(w), "{:?} does not contain {w:?}", e.message);
    }
    e
}

#[test]
fn misspelt_keys_are_errors_at_every_level() {
    let cases: &[(&str, &str, usize)] = &[
        ("interface:\n  - { name: a, type: pg }\n", "unknown field `interface`", 1),
        ("interfaces:\n  - name: a\n    type: pg\n    mtuu: 1500\n", "interfaces[0]: unknown field `mtuu`", 4),
        ("interfaces:\n  - name: a\n    type: pg\n    l3: { vfr: 1 }\n", "interfaces[0].l3: unknown field `vfr`", 4),
        (
            "interfaces:\n  - name: a\n    type: pg\n    bridge: { domain: 1, shg: 1 }\n",
            "interfaces[0].bridge: unknown field `shg`",
            4,
        ),
        (
            "interfaces:\n  - name: a\n    type: pg\n    xconnect: { pear: b }\n",
            "interfaces[0].xconnect: unknown field `pear`",
            4,
        ),
        (
            "interfaces:\n  - name: a\n    type: pg\n    vlans: [{ id: 1, tags: 2 }]\n",
            "interfaces[0].vlans[0]: unknown field `tags`",
            4,
        ),
        ("bridge_domains:\n  - { id: 1, lern: false }\n", "bridge_domains[0]: unknown field `lern`", 2),
        ("bridge_domains:\n  - id: 1\n    bvi: { addrs: [] }\n", "bridge_domains[0].bvi: unknown field `addrs`", 3),
        (
            "bridge_domains:\n  - id: 1\n    static_macs: [{ mac: 02:00:00:00:00:01, if: a }]\n",
            "bridge_domains[0].static_macs[0]: unknown field `if`",
            3,
        ),
        (
            "bridge_domains:\n  - id: 1\n    arp_entries: [{ ipv4: 10.0.0.1 }]\n",
            "bridge_domains[0].arp_entries[0]: unknown field `ipv4`",
            3,
        ),
        ("vrfs:\n  - { id: 1, label: x }\n", "vrfs[0]: unknown field `label`", 2),
        ("routes:\n  - { prefix: 10.0.0.0/8, type: drop, metric: 1 }\n", "routes[0]: unknown field `metric`", 2),
        (
            "routes:\n  - prefix: 10.0.0.0/8\n    via: [{ address: 10.0.0.1, interface: a, wieght: 2 }]\n",
            "routes[0].via[0]: unknown field `wieght`",
            3,
        ),
        (
            "neighbors:\n  - { interface: a, ip: 10.0.0.1, mac: 02:00:00:00:00:01, static: true }\n",
            "neighbors[0]: unknown field `static`",
            2,
        ),
    ];
    for (yaml, want, line) in cases {
        let e = parse_error(yaml, &[want]);
        assert_eq!(e.line, Some(*line), "{yaml}: {e}");
    }
}

#[test]
fn shape_errors_name_the_field_and_the_position() {
    let e = parse_error(
        "interfaces:\n  - name: a\n    type: veth\n",
        &["interfaces[0].type: unknown variant `veth`, expected one of `tap`, `af-packet`, `af-xdp`, `pg`"],
    );
    assert_eq!((e.line, e.column), (Some(3), Some(11)));
    parse_error("interfaces:\n  - { name: a, type: pg, mac: 02:00:00:00:01 }\n", &["is not a MAC address", "line 2"]);
    parse_error("interfaces:\n  - { name: a, type: pg, l3: { addresses: [10.0.0.1] } }\n", &["invalid IP address"]);
    parse_error(
        "interfaces:\n  - { name: a, type: pg, vlans: [{ id: 70000 }] }\n",
        &["interfaces[0].vlans[0].id", "u16"],
    );
    parse_error(
        "bridge_domains:\n  - { id: 1, arp_entries: [{ ip: 'fd00::1', mac: 02:00:00:00:00:01 }] }\n",
        &["IPv4"],
    );
    parse_error("interfaces:\n  - { type: pg }\n", &["missing field `name`"]);
    parse_error("interfaces: [\n", &["line 2"]);
}
