//! Every validation error and warning, with its exact text, and that all
//! problems of a state are reported at once.

use vswitch_control::{validate, DesiredState, Limits};

fn state(yaml: &str) -> DesiredState {
    DesiredState::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn errors(yaml: &str) -> Vec<String> {
    match validate(&state(yaml), &Limits::default()) {
        Ok(w) => panic!("valid (warnings {w:?}):\n{yaml}"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

fn warnings(yaml: &str) -> Vec<String> {
    match validate(&state(yaml), &Limits::default()) {
        Ok(w) => w.iter().map(|w| w.to_string()).collect(),
        Err(e) => panic!("invalid: {e:?}"),
    }
}

#[test]
fn the_examples_from_the_brief() {
    assert_eq!(
        errors(
            "interfaces:
  - { name: pod-a, type: pg }
  - { name: pod-b, type: pg }
  - { name: pod-c, type: pg, mtu: 70000 }
"
        ),
        ["interfaces[2] (pod-c).mtu: 70000 is outside 68..=9000"]
    );
    assert_eq!(
        errors(
            "interfaces:
  - { name: pod-a, type: pg, l3: { addresses: [10.0.1.1/24] } }
routes:
  - { prefix: 10.9.0.0/16, via: [{ address: 10.0.1.2, interface: pod-z }] }
"
        ),
        ["routes[0].via[0].interface: no interface named \"pod-z\""]
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let e = errors(
        "interfaces:
  - { name: pod-a, type: pg, mtu: 10, queues: 0 }
  - { name: pod-a, type: pg, mac: 01:00:5e:00:00:01 }
routes:
  - { vrf: 9, prefix: 10.9.0.1/16, type: drop }
neighbors:
  - { interface: nope, ip: 10.0.0.2, mac: 00:00:00:00:00:00 }
",
    );
    assert_eq!(
        e,
        [
            "interfaces[0] (pod-a).mtu: 10 is outside 68..=9000",
            "interfaces[0] (pod-a).queues: 0 is outside 1..=64",
            "interfaces[1] (pod-a).name: duplicate name \"pod-a\" (also interfaces[0] (pod-a))",
            "interfaces[1] (pod-a).mac: 01:00:5e:00:00:01 is not a unicast MAC address",
            "routes[0].vrf: vrf 9 is not declared in vrfs",
            "routes[0].prefix: 10.9.0.1/16 has host bits set; write 10.9.0.0/16",
            "neighbors[0].interface: no interface named \"nope\"",
            "neighbors[0].mac: 00:00:00:00:00:00 is not a unicast MAC address",
        ]
    );
}

#[test]
fn interface_names_and_host_devices() {
    assert_eq!(
        errors(
            "interfaces:
  - { name: '', type: pg }
  - { name: a-very-long-name-x, type: pg }
  - { name: 'pod a', type: pg }
  - { name: pod.1, type: pg }
  - { name: t1, type: tap }
  - { name: t2, type: pg, host_ifname: eth0 }
  - { name: t3, type: af-packet, host_ifname: 'eth 0' }
  - { name: t4, type: af-xdp, host_ifname: eth1 }
  - { name: t5, type: tap, host_ifname: eth1 }
  - { name: t6, type: tap, host_ifname: vsw-a-very-long-device }
"
        ),
        [
            "interfaces[0].name: must not be empty",
            "interfaces[1] (a-very-long-name-x).name: \"a-very-long-name-x\" is 18 characters; the limit is 15",
            "interfaces[2] (pod a).name: \"pod a\" may only contain letters, digits, '-' and '_'",
            "interfaces[3] (pod.1).name: \"pod.1\" may only contain letters, digits, '-' and '_'",
            "interfaces[4] (t1).host_ifname: required for type tap",
            "interfaces[5] (t2).host_ifname: pg interfaces have no host device",
            "interfaces[6] (t3).host_ifname: \"eth 0\" is not a Linux interface name (1..=15 bytes, no '/', ':' or whitespace)",
            "interfaces[8] (t5).host_ifname: \"eth1\" is also used by interfaces[7] (t4)",
            "interfaces[9] (t6).host_ifname: \"vsw-a-very-long-device\" is not a Linux interface name (1..=15 bytes, no '/', ':' or whitespace)",
        ]
    );
}

#[test]
fn vlans() {
    assert_eq!(
        errors(
            "interfaces:
  - name: trunk
    type: pg
    vlans:
      - { id: 0 }
      - { id: 4095 }
      - { id: 100, inner: 4095 }
      - { id: 7 }
      - { id: 7, mtu: 9001 }
      - { id: 8, tag_rewrite: pop-1, l3: {} }
      - { id: 9, tag_rewrite: pop-2 , bridge: { domain: 1 } }
      - { id: 10, tag_rewrite: { translate-1-1: { to: 0 } }, xconnect: { peer: other } }
      - { id: 11, tag_rewrite: pop-1 }
  - { name: trunk.12, type: pg }
  - name: other
    type: pg
    vlans: [{ id: 12 }]
  - name: trunk
    type: pg
    vlans: [{ id: 12 }]
bridge_domains: [{ id: 1 }]
"
        ),
        [
            "interfaces[0] (trunk).vlans[0] (trunk.0).id: 0 is outside 1..=4094",
            "interfaces[0] (trunk).vlans[1] (trunk.4095).id: 4095 is outside 1..=4094",
            "interfaces[0] (trunk).vlans[2] (trunk.100.4095).inner: 4095 is outside 1..=4094",
            "interfaces[0] (trunk).vlans[4] (trunk.7).id: duplicate VLAN 7 on trunk (also vlans[3])",
            "interfaces[0] (trunk).vlans[4] (trunk.7).mtu: 9001 is outside 68..=9000",
            "interfaces[0] (trunk).vlans[5] (trunk.8).tag_rewrite: pop-1 only applies to bridge and xconnect sub-interfaces; this one is l3",
            "interfaces[0] (trunk).vlans[6] (trunk.9).tag_rewrite: pop-2 needs a QinQ sub-interface (set inner)",
            "interfaces[0] (trunk).vlans[7] (trunk.10).tag_rewrite.to: 0 is outside 1..=4094",
            "interfaces[0] (trunk).vlans[8] (trunk.11).tag_rewrite: pop-1 only applies to bridge and xconnect sub-interfaces; this one is disabled",
            "interfaces[1] (trunk.12).name: \"trunk.12\" may only contain letters, digits, '-' and '_'",
            "interfaces[3] (trunk).name: duplicate name \"trunk\" (also interfaces[0] (trunk))",
            "interfaces[3] (trunk).vlans[0] (trunk.12).id: duplicate name \"trunk.12\" (also interfaces[1] (trunk.12))",
        ]
    );
    // A warning, not an error: trunk.10 -> other is one-way.
    assert_eq!(
        warnings(
            "interfaces:
  - name: trunk
    type: pg
    vlans: [{ id: 10, inner: 20, tag_rewrite: pop-2, xconnect: { peer: other } }]
  - { name: other, type: pg, xconnect: { peer: trunk.10.20 } }
  - { name: tap, type: pg, xconnect: { peer: other } }
"
        ),
        ["interfaces[2] (tap).xconnect.peer: one-way cross-connect: \"other\" does not cross-connect back to \"tap\""]
    );
}

#[test]
fn modes_and_their_references() {
    assert_eq!(
        errors(
            "interfaces:
  - { name: a, type: pg, l3: { vrf: 3 } }
  - { name: b, type: pg, bridge: { domain: 5 } }
  - { name: c, type: pg, xconnect: { peer: nope } }
  - { name: d, type: pg, xconnect: { peer: d } }
  - { name: e, type: pg, xconnect: { peer: bvi1 } }
bridge_domains:
  - { id: 1, bvi: { vrf: 4, mtu: 20, mac: ff:ff:ff:ff:ff:ff } }
"
        ),
        [
            "bridge_domains[0].bvi (bvi1).mac: ff:ff:ff:ff:ff:ff is not a unicast MAC address",
            "bridge_domains[0].bvi (bvi1).mtu: 20 is outside 68..=9000",
            "interfaces[0] (a).l3.vrf: vrf 3 is not declared in vrfs",
            "interfaces[1] (b).bridge.domain: bridge domain 5 is not declared in bridge_domains",
            "interfaces[2] (c).xconnect.peer: no interface named \"nope\"",
            "interfaces[3] (d).xconnect.peer: an interface cannot be cross-connected to itself",
            "interfaces[4] (e).xconnect.peer: \"bvi1\" is a BVI; only ports and VLAN sub-interfaces can be cross-connected",
            "bridge_domains[0].bvi (bvi1).vrf: vrf 4 is not declared in vrfs",
        ]
    );
}

#[test]
fn unusable_addresses() {
    assert_eq!(
        errors(
            "interfaces:
  - { name: a, type: pg, l3: { addresses: [10.0.1.0/24, 10.0.2.255/24, 224.0.0.1/4, 0.0.0.0/8, 127.0.0.1/8, 10.0.0.1/0] } }
  - { name: b, type: pg, l3: { addresses: ['::/64', 'ff02::1/16', '::1/128', 10.0.3.0/31, 10.0.4.0/32] } }
"
        ),
        [
            "interfaces[0] (a).l3.addresses[0]: 10.0.1.0/24 is the network address of its subnet",
            "interfaces[0] (a).l3.addresses[1]: 10.0.2.255/24 is the broadcast address of its subnet",
            "interfaces[0] (a).l3.addresses[2]: 224.0.0.1/4 is not a usable interface address",
            "interfaces[0] (a).l3.addresses[3]: 0.0.0.0/8 is not a usable interface address",
            "interfaces[0] (a).l3.addresses[4]: 127.0.0.1/8 is not a usable interface address",
            "interfaces[0] (a).l3.addresses[5]: 10.0.0.1/0 is not a usable interface address",
            "interfaces[1] (b).l3.addresses[0]: ::/64 is not a usable interface address",
            "interfaces[1] (b).l3.addresses[1]: ff02::1/16 is not a usable interface address",
            "interfaces[1] (b).l3.addresses[2]: ::1/128 is not a usable interface address",
        ]
    );
}

#[test]
fn addresses_overlapping_inside_a_vrf() {
    assert_eq!(
        errors(
            "vrfs: [{ id: 1 }]
interfaces:
  - { name: a, type: pg, l3: { addresses: [10.1.2.1/24, 10.0.1.1/24, 'fd00::1/64'] } }
  - { name: b, type: pg, l3: { addresses: [10.0.1.2/24, 10.1.0.1/16, 10.0.0.1/31, 10.0.0.0/31] } }
  - { name: c, type: pg, l3: { addresses: [10.0.1.1/25, 'fd00::2/64', 10.2.0.1/16] } }
  - { name: d, type: pg, l3: { vrf: 1, addresses: [10.0.1.1/24, 10.0.0.1/31, 'fd00::1/64'] } }
bridge_domains:
  - { id: 1, bvi: { addresses: [10.2.3.4/32] } }
"
        ),
        [
            "interfaces[1] (b).l3.addresses[0]: 10.0.1.2/24 overlaps 10.0.1.1/24 of interfaces[0] (a) in vrf 0",
            "interfaces[1] (b).l3.addresses[1]: 10.1.0.1/16 overlaps 10.1.2.1/24 of interfaces[0] (a) in vrf 0",
            "interfaces[1] (b).l3.addresses[3]: 10.0.0.0/31 overlaps 10.0.0.1/31 of interfaces[1] (b) in vrf 0",
            "interfaces[2] (c).l3.addresses[0]: 10.0.1.1/25 overlaps 10.0.1.1/24 of interfaces[0] (a) in vrf 0",
            "interfaces[2] (c).l3.addresses[1]: fd00::2/64 overlaps fd00::1/64 of interfaces[0] (a) in vrf 0",
            "bridge_domains[0].bvi (bvi1).addresses[0]: 10.2.3.4/32 overlaps 10.2.0.1/16 of interfaces[2] (c) in vrf 0",
        ]
    );
}

#[test]
fn bridge_domains() {
    assert_eq!(
        errors(
            "bridge_domains:
  - id: 0
  - id: 10
    bvi: { mac: 02:00:00:00:00:b1 }
    static_macs:
      - { mac: 02:00:00:00:00:01, interface: a }
      - { mac: 02:00:00:00:00:01, interface: a }
      - { mac: 02:00:00:00:00:b1, interface: a }
      - { mac: 03:00:00:00:00:02, interface: b }
      - { mac: 02:00:00:00:00:03, interface: c }
      - { mac: 02:00:00:00:00:04, interface: bvi10 }
      - { mac: 02:00:00:00:00:05, interface: zz }
    arp_entries:
      - { ip: 10.0.0.1, mac: 02:00:00:00:00:01 }
      - { ip: 10.0.0.1, mac: 02:00:00:00:00:02 }
      - { ip: 255.255.255.255, mac: 00:00:00:00:00:00 }
    arp_termination: true
  - id: 10
interfaces:
  - { name: a, type: pg, bridge: { domain: 10 } }
  - { name: b, type: pg, bridge: { domain: 10, split_horizon_group: 2 } }
  - { name: c, type: pg, l3: {} }
"
        ),
        [
            "bridge_domains[0].id: 0 is reserved; use 1..=65535",
            "bridge_domains[2].id: duplicate id 10 (also bridge_domains[1])",
            "bridge_domains[1].static_macs[1].mac: duplicate MAC 02:00:00:00:00:01 (also static_macs[0])",
            "bridge_domains[1].static_macs[2].mac: 02:00:00:00:00:b1 is the BVI's MAC (installed automatically)",
            "bridge_domains[1].static_macs[3].mac: 03:00:00:00:00:02 is not a unicast MAC address",
            "bridge_domains[1].static_macs[4].interface: \"c\" is not a member of bridge domain 10",
            "bridge_domains[1].static_macs[6].interface: no interface named \"zz\"",
            "bridge_domains[1].arp_entries[1].ip: duplicate address 10.0.0.1 (also arp_entries[0])",
            "bridge_domains[1].arp_entries[2].ip: 255.255.255.255 is not a unicast address",
            "bridge_domains[1].arp_entries[2].mac: 00:00:00:00:00:00 is not a unicast MAC address",
        ]
    );
    assert_eq!(
        warnings(
            "bridge_domains:
  - { id: 3, arp_entries: [{ ip: 10.0.0.1, mac: 02:00:00:00:00:01 }] }
"
        ),
        ["bridge_domains[0].arp_entries: no effect: arp_termination is false"]
    );
}

#[test]
fn vrfs() {
    let e = "vrfs:
  - { id: 0, name: default }
  - { id: 1, name: blue }
  - { id: 1, name: red }
  - { id: 2, name: blue }
  - { id: 256 }
  - { id: 3, name: '' }
";
    assert_eq!(
        errors(e),
        [
            "vrfs[2] (red).id: duplicate id 1 (also vrfs[1])",
            "vrfs[3] (blue).name: duplicate name \"blue\" (also vrfs[1])",
            "vrfs[4].id: 256 is outside 0..=255",
            "vrfs[5].name: must not be empty",
        ]
    );
    let small = Limits { max_vrfs: 4 };
    let r = validate(&state("vrfs: [{ id: 4 }]"), &small).unwrap_err();
    assert_eq!(r[0].to_string(), "vrfs[0].id: 4 is outside 0..=3");
    assert!(validate(&state("vrfs: [{ id: 3 }]"), &small).is_ok());
}

const ROUTED: &str = "vrfs: [{ id: 1 }]
interfaces:
  - { name: a, type: pg, l3: { addresses: [10.0.1.1/24, 'fd00:1::1/64'] } }
  - { name: b, type: pg, l3: { vrf: 1, addresses: [10.0.2.1/24] } }
  - { name: l2, type: pg, bridge: { domain: 1 } }
bridge_domains: [{ id: 1, bvi: { vrf: 1 } }]
";

#[test]
fn routes() {
    let many: Vec<String> = (0..65).map(|i| format!("{{ address: 10.0.1.{}, interface: a }}", i + 2)).collect();
    let doc = format!(
        "{ROUTED}routes:
  - {{ prefix: 10.9.0.0/16, via: [] }}
  - {{ prefix: 10.9.0.0/16, via: [{{ address: 10.0.1.2, interface: a, weight: 0 }}] }}
  - {{ prefix: 10.8.0.0/16, via: [{{ address: 'fd00:1::2', interface: a }}, {{ address: 10.0.1.3, interface: b }}] }}
  - {{ prefix: 10.7.0.0/16, via: [{{ address: 10.0.1.2, interface: l2 }}, {{ address: 10.0.1.2, interface: a }}, {{ address: 10.0.1.2, interface: a }}] }}
  - {{ vrf: 1, prefix: 10.6.0.0/16, interface: a }}
  - {{ vrf: 1, prefix: 10.6.0.0/16, interface: bvi1 }}
  - {{ prefix: 10.5.0.0/16, interface: nope }}
  - {{ prefix: 10.4.0.0/16, via: [{{ address: 0.0.0.0, interface: a }}] }}
  - {{ prefix: 10.3.0.0/16, via: [{}] }}
",
        many.join(", ")
    );
    assert_eq!(
        errors(&doc),
        [
            "routes[0].via: needs at least one next hop",
            "routes[1].prefix: duplicate route to 10.9.0.0/16 in vrf 0 (also routes[0])",
            "routes[1].via: every next hop has weight 0; at least one must not",
            "routes[2].via[0].address: fd00:1::2 is IPv6 but the prefix 10.8.0.0/16 is IPv4",
            "routes[2].via[1].interface: \"b\" is in vrf 1, not the route's vrf 0",
            "routes[3].via[0].interface: \"l2\" is not a routed (l3) interface: its mode is bridge",
            "routes[3].via[2].address: duplicate next hop 10.0.1.2 via a (also via[1])",
            "routes[4].interface: \"a\" is in vrf 0, not the route's vrf 1",
            "routes[5].prefix: duplicate route to 10.6.0.0/16 in vrf 1 (also routes[4])",
            "routes[6].interface: no interface named \"nope\"",
            "routes[7].via[0].address: 0.0.0.0 is not a unicast address",
            "routes[8].via: 65 next hops exceed the maximum of 64",
        ]
    );
    assert_eq!(
        warnings(&format!(
            "{ROUTED}routes:
  - {{ prefix: 10.0.1.0/24, type: drop }}
  - {{ prefix: 10.0.1.1/32, type: punt }}
  - {{ vrf: 1, prefix: 10.0.1.0/24, type: prohibit }}
  - {{ prefix: 'fd00:1::/64', interface: a }}
"
        )),
        [
            "routes[0].prefix: 10.0.1.0/24 is the subnet of a; the connected route takes precedence",
            "routes[1].prefix: 10.0.1.1 is an address of a; the local route takes precedence",
            "routes[3].prefix: fd00:1::/64 is the subnet of a; the connected route takes precedence",
        ]
    );
}

#[test]
fn neighbors() {
    let doc = format!(
        "{ROUTED}neighbors:
  - {{ interface: a, ip: 10.0.1.2, mac: 02:00:00:00:00:02 }}
  - {{ interface: a, ip: 10.0.1.2, mac: 02:00:00:00:00:03 }}
  - {{ interface: a, ip: 10.0.1.1, mac: 02:00:00:00:00:02 }}
  - {{ interface: b, ip: 10.0.1.1, mac: 02:00:00:00:00:02 }}
  - {{ interface: l2, ip: 10.0.1.5, mac: 02:00:00:00:00:02 }}
  - {{ interface: a, ip: 'ff02::1', mac: 33:33:00:00:00:01 }}
"
    );
    assert_eq!(
        errors(&doc),
        [
            "neighbors[1].ip: duplicate neighbor 10.0.1.2 on a (also neighbors[0])",
            "neighbors[2].ip: 10.0.1.1 is an address of a",
            "neighbors[4].interface: \"l2\" is not a routed (l3) interface: its mode is bridge",
            "neighbors[5].ip: ff02::1 is not a unicast address",
            "neighbors[5].mac: 33:33:00:00:00:01 is not a unicast MAC address",
        ]
    );
}

#[test]
fn valid_states_have_no_errors() {
    assert_eq!(warnings(ROUTED), Vec::<String>::new());
    assert_eq!(warnings(""), Vec::<String>::new());
}

#[test]
fn networks_name_an_existing_domain_or_vrf() {
    assert_eq!(
        errors(
            "bridge_domains: [{ id: 10 }]
networks:
  - { name: blue, bridge_domain: 10 }
  - { name: red, vrf: 0, mtu: 9000 }
  - { name: blue, bridge_domain: 11 }
  - { name: green, vrf: 3 }
  - { name: both, vrf: 0, bridge_domain: 10 }
  - { name: none }
  - { name: 'bad name', vrf: 0, mtu: 20 }
"
        ),
        [
            "networks[2] (blue).name: duplicate network name (also networks[0])",
            "networks[2] (blue).bridge_domain: no bridge domain 11",
            "networks[3] (green).vrf: vrf 3 is not declared in vrfs",
            "networks[4] (both): set one of bridge_domain (L2) and vrf (L3), not both",
            "networks[5] (none): set bridge_domain (an L2 network) or vrf (an L3 network)",
            "networks[6] (bad name).name: \"bad name\": only letters, digits, '.', '-' and '_'",
            "networks[6] (bad name).mtu: 20 is outside 68..=9000",
        ]
    );
}

#[test]
fn an_owner_is_short_printable_text() {
    let long = "x".repeat(254);
    assert_eq!(
        errors(&format!(
            "interfaces:
  - {{ name: a, type: pg, owner: 'cni:1234:eth0' }}
  - {{ name: b, type: pg, owner: '' }}
  - {{ name: c, type: pg, owner: {long} }}
  - {{ name: d, type: pg, owner: \"x\\ty\" }}
"
        )),
        [
            "interfaces[1] (b).owner: 0 bytes; an owner is 1 to 253",
            "interfaces[2] (c).owner: 254 bytes; an owner is 1 to 253",
            "interfaces[3] (d).owner: contains a control character",
        ]
    );
}
