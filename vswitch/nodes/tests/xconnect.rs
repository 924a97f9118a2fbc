//! ethernet-input, l2-input/l2-output and interface-output on real frames:
//! cross-connects (with and without VLAN tag rewrite), sub-interfaces and
//! every ethernet-input error.

use vswitch_nodes::harness::Harness;
use vswitch_nodes::{IfKind, IfMode, Interface, Tables, VlanRewrite, VlanTags};
use vswitch_wire::MacAddr;

fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

fn frame(dst: MacAddr, src: MacAddr, tags: &[(u16, u16)], ethertype: u16, payload_len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    for (tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend((0..payload_len).map(|i| i as u8));
    f
}

/// Ports 0 and 1 cross-connected both ways.
fn xconnect_pair() -> Tables {
    let mut t = Tables::default();
    t.set_interface(Interface::port(0, "pg0", 0, mac(0xa0), IfMode::XConnect { peer: 1 }));
    t.set_interface(Interface::port(1, "pg1", 1, mac(0xa1), IfMode::XConnect { peer: 0 }));
    t
}

#[test]
fn xconnect_forwards_frames_unchanged_both_ways() {
    let mut h = Harness::new(xconnect_pair(), 1024);
    let a = frame(mac(2), mac(1), &[], 0x0800, 50);
    let b = frame(mac(1), mac(2), &[(0x8100, 7)], 0x86dd, 100);
    h.inject(0, &[&a, &a]);
    h.inject(1, &[&b]);
    assert_eq!(h.take_tx(1), vec![a.clone(), a]);
    assert_eq!(h.take_tx(0), vec![b]);
    assert_eq!(h.shared.counters.get(0).rx_packets.get(), 2);
    assert_eq!(h.shared.counters.get(1).tx_packets.get(), 2);
    assert_eq!(h.shared.counters.get(0).tx_bytes.get(), 118);
    h.assert_no_leak();
}

#[test]
fn malformed_and_unknown_frames_are_counted_and_dropped() {
    let mut t = xconnect_pair();
    t.set_interface(Interface::port(2, "pg2", 2, mac(0xa2), IfMode::Disabled));
    let mut down = Interface::port(3, "pg3", 3, mac(0xa3), IfMode::XConnect { peer: 0 });
    down.up = false;
    t.set_interface(down);
    let mut h = Harness::new(t, 1024);
    let ok = frame(mac(2), mac(1), &[], 0x0800, 50);
    h.inject(0, &[&ok[..10], &ok[..13]]);
    assert_eq!(h.error("ethernet-input", "frame shorter than its Ethernet header and tags"), 2);
    let short_tag = frame(mac(2), mac(1), &[(0x8100, 1)], 0x0800, 0);
    h.inject(0, &[&short_tag[..16]]);
    assert_eq!(h.error("ethernet-input", "frame shorter than its Ethernet header and tags"), 3);
    let three = frame(mac(2), mac(1), &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)], 0x0800, 20);
    h.inject(0, &[&three]);
    assert_eq!(h.error("ethernet-input", "more than two VLAN tags"), 1);
    h.inject(2, &[&ok]);
    assert_eq!(h.error("ethernet-input", "interface is not forwarding"), 1);
    h.inject(3, &[&ok]);
    assert_eq!(h.error("ethernet-input", "interface is down"), 1);
    h.inject(9, &[&ok]);
    assert_eq!(h.error("pg-input", "port has no interface"), 1);
    assert!(h.take_tx(1).is_empty());
    h.assert_no_leak();
}

#[test]
fn vlan_sub_interfaces_match_exactly_and_rewrite_tags() {
    // Trunk port 0 carries VLAN 100 (sub-interface 10, tag popped) and
    // QinQ 200.300 (sub-interface 11, both popped); access ports 1 and 2.
    let mut t = Tables::default();
    t.set_interface(Interface::port(0, "trunk", 0, mac(0xa0), IfMode::L3 { vrf: 0 }));
    t.set_interface(Interface::port(1, "access1", 1, mac(0xa1), IfMode::XConnect { peer: 10 }));
    t.set_interface(Interface::port(2, "access2", 2, mac(0xa2), IfMode::XConnect { peer: 11 }));
    let mut sub = Interface::port(10, "trunk.100", 0, mac(0xa0), IfMode::XConnect { peer: 1 });
    sub.kind = IfKind::SubIf { parent: 0, tags: VlanTags::dot1q(100) };
    sub.rewrite = VlanRewrite { pop: 1, push: VlanTags::default() };
    t.set_interface(sub);
    let mut qinq = Interface::port(11, "trunk.200.300", 0, mac(0xa0), IfMode::XConnect { peer: 2 });
    qinq.kind = IfKind::SubIf { parent: 0, tags: VlanTags::qinq(200, 300) };
    qinq.rewrite = VlanRewrite { pop: 2, push: VlanTags::default() };
    t.set_interface(qinq);
    let mut h = Harness::new(t, 1024);

    let untagged = frame(mac(9), mac(8), &[], 0x0800, 46);
    let tagged = frame(mac(9), mac(8), &[(0x8100, 100)], 0x0800, 46);
    let double = frame(mac(9), mac(8), &[(0x88a8, 200), (0x8100, 300)], 0x0800, 46);
    h.inject(0, &[&tagged, &double]);
    assert_eq!(h.take_tx(1), vec![untagged.clone()], "tag popped towards the access port");
    assert_eq!(h.take_tx(2), vec![untagged.clone()], "both tags popped");
    h.inject(1, &[&untagged]);
    h.inject(2, &[&untagged]);
    assert_eq!(h.take_tx(0), vec![tagged, double], "tags pushed back towards the trunk");
    assert_eq!(h.shared.counters.get(10).rx_packets.get(), 1, "sub-interface counted");

    let unknown_vlan = frame(mac(9), mac(8), &[(0x8100, 101)], 0x0800, 46);
    h.inject(0, &[&unknown_vlan]);
    assert_eq!(h.error("ethernet-input", "no sub-interface for the VLAN tags"), 1);
    h.assert_no_leak();
}
