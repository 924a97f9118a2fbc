//! Bridge domains on real frames through the standard graph: learning,
//! unicast forwarding, flooding and its switches, split horizon, MAC moves,
//! static MACs, the per-domain limit, aging, flushing, ARP termination,
//! VLAN sub-interfaces as members, a BVI member, and flooding with the
//! buffer pool nearly empty.

use std::net::Ipv4Addr;
use std::sync::Arc;
use vswitch_nodes::harness::Harness;
use vswitch_nodes::l2::{BdMember, BridgeDomain, L2Clock, ManualClock};
use vswitch_nodes::{BridgeDomainConfig, IfKind, IfMode, Interface, Tables, VlanRewrite, VlanTags, NONE};
use vswitch_wire::MacAddr;

const BD: u16 = 1;

fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

const A: u8 = 0x0a;
const B: u8 = 0x0b;
const C: u8 = 0x0c;

/// An Ethernet frame with `tags` (TPID, VID), `payload_len` bytes after
/// the EtherType.
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

/// An IPv4-looking unicast frame from `src` to `dst`.
fn ip(dst: MacAddr, src: MacAddr) -> Vec<u8> {
    frame(dst, src, &[], 0x0800, 46)
}

/// An ARP frame, padded to the Ethernet minimum with 0xee bytes.
#[allow(clippy::too_many_arguments)]
fn arp(
    eth_dst: MacAddr,
    eth_src: MacAddr,
    tags: &[(u16, u16)],
    op: u16,
    sha: MacAddr,
    spa: Ipv4Addr,
    tha: MacAddr,
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut f = frame(eth_dst, eth_src, tags, 0x0806, 0);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha.0);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha.0);
    f.extend_from_slice(&tpa.octets());
    f.resize(60 + 4 * tags.len(), 0xee);
    f
}

/// "Who has `target`? Tell `sender_ip` (`sender`)", broadcast.
fn arp_request(sender: MacAddr, sender_ip: Ipv4Addr, target: Ipv4Addr, tags: &[(u16, u16)]) -> Vec<u8> {
    arp(MacAddr::BROADCAST, sender, tags, 1, sender, sender_ip, MacAddr::ZERO, target)
}

fn ip4(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

/// Ports 0..n, each an access port of bridge domain 1 in split-horizon
/// group `shg(port)`, and the domain configured by `configure`.
fn bridge_with(n: u32, shg: impl Fn(u32) -> u8, configure: impl FnOnce(&mut BridgeDomainConfig)) -> Tables {
    let mut t = Tables::default();
    let mut members = Vec::new();
    for p in 0..n {
        let g = shg(p);
        t.set_interface(Interface::port(
            p,
            &format!("pg{p}"),
            p,
            mac(0xa0 + p as u8),
            IfMode::Bridge { bd: BD, shg: g },
        ));
        members.push(BdMember { sw_if: p, shg: g });
    }
    let mut config = BridgeDomainConfig::new(BD);
    configure(&mut config);
    t.set_bridge_domain(Arc::new(BridgeDomain::new(config, members)));
    t
}

fn bridge(n: u32) -> Tables {
    bridge_with(n, |_| 0, |_| {})
}

fn domain(h: &Harness) -> Arc<BridgeDomain> {
    Arc::clone(h.tables.bridge_domain(BD).expect("bridge domain 1"))
}

/// Where a MAC is in domain 1 now.
fn port_of(h: &Harness, m: MacAddr) -> Option<u32> {
    let d = domain(h);
    d.macs.lookup(m, d.macs.now()).map(|hit| hit.sw_if)
}

/// Frames transmitted on each of ports 0..n.
fn tx_all(h: &mut Harness, n: u32) -> Vec<Vec<Vec<u8>>> {
    (0..n).map(|p| h.take_tx(p)).collect()
}

#[test]
fn learns_then_forwards_unicast_without_flooding() {
    let mut h = Harness::new(bridge(3), 1024);
    let a_to_b = ip(mac(B), mac(A));
    let b_to_a = ip(mac(A), mac(B));
    h.inject(0, &[&a_to_b]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![], vec![a_to_b.clone()], vec![a_to_b.clone()]], "unknown B: flooded");
    assert_eq!(h.error("l2-learn", "MACs learned"), 1);
    assert_eq!(port_of(&h, mac(A)), Some(0));

    h.inject(1, &[&b_to_a]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![b_to_a.clone()], vec![], vec![]], "A known: unicast");
    assert_eq!(port_of(&h, mac(B)), Some(1));

    let flooded = h.packets("l2-flood");
    h.inject(0, &[&a_to_b, &a_to_b, &a_to_b]);
    h.inject(1, &[&b_to_a]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![b_to_a], vec![a_to_b.clone(), a_to_b.clone(), a_to_b], vec![]]);
    assert_eq!(h.packets("l2-flood"), flooded, "no flood once both are learned");
    assert_eq!(h.error("l2-learn", "MACs learned"), 2, "known MACs are not learned again");
    assert_eq!(domain(&h).macs.learned(), 2);
    h.assert_no_leak();
}

#[test]
fn unknown_unicast_floods_only_when_the_domain_says_so() {
    for flood in [true, false] {
        let mut h = Harness::new(bridge_with(3, |_| 0, |c| c.flood_unknown = flood), 1024);
        let unknown = ip(mac(B), mac(A));
        let broadcast = frame(MacAddr::BROADCAST, mac(A), &[], 0x0800, 46);
        h.inject(0, &[&unknown, &broadcast]);
        let expect_unknown = if flood { vec![unknown.clone()] } else { vec![] };
        let mut expect = expect_unknown.clone();
        expect.push(broadcast.clone());
        assert_eq!(tx_all(&mut h, 3), vec![vec![], expect.clone(), expect], "flood_unknown {flood}");
        assert_eq!(h.error("l2-fwd", "unknown unicast, flooding off"), u64::from(!flood));
        h.assert_no_leak();
    }
}

#[test]
fn broadcast_and_multicast_flood_only_when_the_domain_says_so() {
    for flood in [true, false] {
        let mut h = Harness::new(bridge_with(3, |_| 0, |c| c.flood_broadcast = flood), 1024);
        let broadcast = frame(MacAddr::BROADCAST, mac(A), &[], 0x0800, 46);
        let ip4_mcast = frame(MacAddr([0x01, 0x00, 0x5e, 0, 0, 5]), mac(A), &[], 0x0800, 46);
        let ip6_mcast = frame(MacAddr([0x33, 0x33, 0, 0, 0, 1]), mac(A), &[], 0x86dd, 46);
        let unknown = ip(mac(B), mac(A));
        h.inject(0, &[&broadcast, &ip4_mcast, &ip6_mcast, &unknown]);
        let mut expect = if flood { vec![broadcast.clone(), ip4_mcast.clone(), ip6_mcast.clone()] } else { vec![] };
        expect.push(unknown.clone());
        assert_eq!(tx_all(&mut h, 3), vec![vec![], expect.clone(), expect], "flood_broadcast {flood}");
        assert_eq!(h.error("l2-fwd", "broadcast/multicast, flooding off"), if flood { 0 } else { 3 });
        assert_eq!(h.error("l2-learn", "MACs learned"), 1, "learned even when not flooded");
        h.assert_no_leak();
    }
}

#[test]
fn forwarding_off_floods_everything() {
    let mut h = Harness::new(bridge_with(3, |_| 0, |c| c.forward = false), 1024);
    let a_to_b = ip(mac(B), mac(A));
    h.inject(1, &[&ip(mac(A), mac(B))]);
    h.take_tx(0);
    h.take_tx(2);
    assert_eq!(port_of(&h, mac(B)), Some(1), "still learns");
    h.inject(0, &[&a_to_b]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![], vec![a_to_b.clone()], vec![a_to_b]], "known B flooded anyway");
    h.assert_no_leak();
}

#[test]
fn learning_off_forwards_by_static_entries_only() {
    let mut h = Harness::new(bridge_with(3, |_| 0, |c| c.learn = false), 1024);
    domain(&h).macs.add_static(mac(B), 1).unwrap();
    let a_to_b = ip(mac(B), mac(A));
    h.inject(0, &[&a_to_b]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![], vec![a_to_b], vec![]]);
    assert_eq!(port_of(&h, mac(A)), None, "nothing learned");
    assert_eq!(h.packets("l2-learn"), 0);
    h.assert_no_leak();
}

#[test]
fn split_horizon_groups_never_forward_back_into_the_group() {
    // Ports 0 and 1 in group 1 (say, two tunnels of one mesh), port 2 in no
    // group, port 3 in group 2.
    let mut h = Harness::new(bridge_with(4, |p| [1, 1, 0, 2][p as usize], |_| {}), 1024);
    let from = |src: u8| frame(MacAddr::BROADCAST, mac(src), &[], 0x0800, 46);
    let (f0, f2, f3) = (from(A), from(B), from(C));
    h.inject(0, &[&f0]);
    assert_eq!(tx_all(&mut h, 4), vec![vec![], vec![], vec![f0.clone()], vec![f0]], "not to port 1: same group");
    h.inject(2, &[&f2]);
    assert_eq!(tx_all(&mut h, 4), vec![vec![f2.clone()], vec![f2.clone()], vec![], vec![f2]], "no group: to all");
    h.inject(3, &[&f3]);
    assert_eq!(tx_all(&mut h, 4), vec![vec![f3.clone()], vec![f3.clone()], vec![f3], vec![]]);

    // A known unicast destination in the same group is dropped too.
    let d = ip(mac(A), mac(0x1f));
    h.inject(1, &[&d]);
    assert!(tx_all(&mut h, 4).iter().all(Vec::is_empty));
    assert_eq!(h.error("l2-output", "split horizon: same group as the input"), 1);
    let d = ip(mac(A), mac(B));
    h.inject(2, &[&d]);
    assert_eq!(h.take_tx(0), vec![d], "from outside the group it goes through");
    h.assert_no_leak();
}

#[test]
fn a_mac_seen_on_another_port_moves() {
    let mut h = Harness::new(bridge(3), 1024);
    h.inject(0, &[&ip(mac(B), mac(A))]);
    h.drain_all();
    h.inject(2, &[&ip(mac(B), mac(A))]);
    h.drain_all();
    assert_eq!(h.error("l2-learn", "MACs moved"), 1);
    assert_eq!(port_of(&h, mac(A)), Some(2));
    let to_a = ip(mac(A), mac(B));
    h.inject(1, &[&to_a]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![], vec![], vec![to_a]], "follows the move");
    assert_eq!(domain(&h).macs.learned(), 2);
    h.assert_no_leak();
}

#[test]
fn a_static_mac_refuses_to_move() {
    let mut h = Harness::new(bridge(3), 1024);
    domain(&h).macs.add_static(mac(A), 0).unwrap();
    let spoof = ip(mac(B), mac(A));
    h.inject(2, &[&spoof, &spoof]);
    assert!(tx_all(&mut h, 3).iter().all(Vec::is_empty), "frames from the impostor dropped");
    assert_eq!(h.error("l2-learn", "static MAC seen on another port"), 2);
    assert_eq!(domain(&h).macs.lookup(mac(A), 0).map(|e| (e.sw_if, e.is_static)), Some((0, true)));
    let to_a = ip(mac(A), mac(C));
    h.inject(1, &[&to_a]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![to_a], vec![], vec![]]);
    let genuine = ip(mac(C), mac(A));
    h.inject(0, &[&genuine]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![], vec![genuine], vec![]], "from its own port it is fine");
    assert_eq!(h.error("l2-learn", "static MAC seen on another port"), 2);
    h.assert_no_leak();
}

#[test]
fn the_learn_limit_is_per_domain() {
    // Domain 1 (ports 0-2) learns at most 2 MACs; domain 2 (ports 3, 4)
    // has its own table and limit.
    let mut t = bridge_with(3, |_| 0, |c| c.mac_limit = 2);
    for p in 3..5 {
        t.set_interface(Interface::port(
            p,
            &format!("pg{p}"),
            p,
            mac(0xa0 + p as u8),
            IfMode::Bridge { bd: 2, shg: 0 },
        ));
    }
    let members = vec![BdMember { sw_if: 3, shg: 0 }, BdMember { sw_if: 4, shg: 0 }];
    t.set_bridge_domain(Arc::new(BridgeDomain::new(BridgeDomainConfig::new(2), members)));
    let mut h = Harness::new(t, 1024);
    let srcs = [A, B, C];
    for s in srcs {
        h.inject(0, &[&ip(mac(0x1f), mac(s))]);
    }
    h.drain_all();
    assert_eq!(h.error("l2-learn", "MACs learned"), 2);
    assert_eq!(h.error("l2-learn", "not learned: table limit reached"), 1);
    assert_eq!(domain(&h).macs.learned(), 2);
    assert_eq!(port_of(&h, mac(C)), None);
    let to_c = ip(mac(C), mac(A));
    h.inject(1, &[&to_c]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![to_c.clone()], vec![], vec![to_c]], "C unknown: flooded");
    for s in srcs {
        h.inject(3, &[&ip(mac(0x1f), mac(s))]);
    }
    h.drain_all();
    assert_eq!(h.tables.bridge_domain(2).unwrap().macs.learned(), 3, "domain 2 is not limited by domain 1");
    h.assert_no_leak();
}

#[test]
fn learned_macs_age_out_by_the_domain_clock() {
    let clock = ManualClock::new(1000);
    let mut t = bridge(3);
    let mut config = BridgeDomainConfig::new(BD);
    config.mac_age_secs = 300;
    let members = (0..3).map(|sw_if| BdMember { sw_if, shg: 0 }).collect();
    t.set_bridge_domain(Arc::new(BridgeDomain::with_clock(config, members, L2Clock::Manual(clock.clone()))));
    let mut h = Harness::new(t, 1024);
    let d = domain(&h);
    h.inject(0, &[&ip(mac(0x1f), mac(A))]);
    h.inject(1, &[&ip(mac(0x1f), mac(B))]);
    h.drain_all();
    assert_eq!(d.macs.get(mac(A)).unwrap().last_seen, 1000);

    clock.set(1200);
    h.inject(1, &[&ip(mac(0x1f), mac(B))]);
    h.drain_all();
    assert_eq!(d.macs.get(mac(B)).unwrap().last_seen, 1200, "seen again: refreshed");

    clock.set(1300);
    let to_a = ip(mac(A), mac(C));
    h.inject(2, &[&to_a]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![to_a.clone()], vec![], vec![]], "300 s old: still known");

    clock.set(1301);
    h.inject(2, &[&to_a]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![to_a.clone()], vec![to_a.clone()], vec![]], "aged: flooded");
    assert!(d.macs.get(mac(A)).is_some(), "not swept yet");
    assert_eq!(d.macs.age(clock.get()), 1, "the sweep removes A only (B and C are younger)");
    assert!(d.macs.get(mac(A)).is_none());
    assert_eq!(d.macs.learned(), 2);

    // Seen again after aging: learned anew.
    let learned = h.error("l2-learn", "MACs learned");
    h.inject(0, &[&ip(mac(0x1f), mac(A))]);
    h.drain_all();
    assert_eq!(h.error("l2-learn", "MACs learned"), learned + 1);
    assert_eq!(port_of(&h, mac(A)), Some(0));
    h.assert_no_leak();
}

#[test]
fn flush_forgets_an_interfaces_macs() {
    let mut h = Harness::new(bridge(3), 1024);
    h.inject(0, &[&ip(mac(0x1f), mac(A))]);
    h.inject(1, &[&ip(mac(0x1f), mac(B))]);
    h.drain_all();
    let d = domain(&h);
    d.macs.add_static(mac(C), 0).unwrap();
    assert_eq!(d.macs.flush(0), 1, "A only: static C stays");
    let mut entries: Vec<_> = d.macs.iter().map(|e| (e.mac, e.sw_if, e.is_static)).collect();
    entries.sort();
    assert_eq!(entries, vec![(mac(B), 1, false), (mac(C), 0, true)]);
    let to_a = ip(mac(A), mac(B));
    let to_c = ip(mac(C), mac(B));
    h.inject(1, &[&to_a, &to_c]);
    // C's frame goes straight to l2-output, A's through l2-flood first.
    assert_eq!(tx_all(&mut h, 3), vec![vec![to_c, to_a.clone()], vec![], vec![to_a]], "A flooded, C unicast");
    h.assert_no_leak();
}

#[test]
fn invalid_sources_and_hairpins_are_dropped() {
    let mut h = Harness::new(bridge(3), 1024);
    h.inject(
        0,
        &[&ip(mac(B), MacAddr::BROADCAST), &ip(mac(B), MacAddr([1, 0, 0x5e, 0, 0, 1])), &ip(mac(B), MacAddr::ZERO)],
    );
    assert!(tx_all(&mut h, 3).iter().all(Vec::is_empty));
    assert_eq!(h.error("l2-learn", "invalid source MAC"), 3);
    assert!(domain(&h).macs.is_empty());
    // Two hosts behind port 0 (a hub or a vswitch below): their traffic
    // to each other must not come back out of port 0.
    h.inject(0, &[&ip(mac(0x1f), mac(A)), &ip(mac(0x1f), mac(B))]);
    h.drain_all();
    h.inject(0, &[&ip(mac(B), mac(A))]);
    assert!(tx_all(&mut h, 3).iter().all(Vec::is_empty));
    assert_eq!(h.error("l2-fwd", "destination on the input interface"), 1);
    h.assert_no_leak();
}

#[test]
fn the_mac_table_survives_reconfiguration() {
    let mut h = Harness::new(bridge(3), 1024);
    h.inject(1, &[&ip(mac(0x1f), mac(B))]);
    h.drain_all();
    // Add port 3 to the domain: a new snapshot, the same table.
    let mut t = h.tables.clone();
    t.set_interface(Interface::port(3, "pg3", 3, mac(0xa3), IfMode::Bridge { bd: BD, shg: 0 }));
    let old = domain(&h);
    let members = (0..4).map(|sw_if| BdMember { sw_if, shg: 0 }).collect();
    t.set_bridge_domain(Arc::new(old.reconfigure(old.config.clone(), members)));
    h.tables = t;
    let to_b = ip(mac(B), mac(A));
    h.inject(0, &[&to_b]);
    assert_eq!(tx_all(&mut h, 4), vec![vec![], vec![to_b], vec![], vec![]], "B still known");
    let bcast = frame(MacAddr::BROADCAST, mac(A), &[], 0x0800, 46);
    h.inject(0, &[&bcast]);
    assert_eq!(h.take_tx(3), vec![bcast], "the new member floods");
    h.assert_no_leak();
}

#[test]
fn flooding_with_the_pool_nearly_empty_counts_and_leaks_nothing() {
    let mut h = Harness::new(bridge(6), 16);
    let bcast = frame(MacAddr::BROADCAST, mac(A), &[], 0x0800, 46);
    // Hold every buffer but one: the injected frame takes it, and no copy
    // can be made.
    let mut held = Vec::new();
    for _ in 0..15 {
        held.push(h.bufs.alloc().expect("a buffer"));
    }
    h.inject(0, &[&bcast]);
    let out = tx_all(&mut h, 6);
    assert_eq!(out[5], vec![bcast.clone()], "the last member gets the original");
    assert!(out[..5].iter().all(Vec::is_empty));
    assert_eq!(h.error("l2-flood", "copy not made: no buffers"), 4);
    h.bufs.free_bulk(&held);
    h.inject(0, &[&bcast]);
    let out = tx_all(&mut h, 6);
    assert!(out[1..].iter().all(|f| *f == vec![bcast.clone()]), "with buffers back, everyone gets one");
    assert_eq!(h.error("l2-flood", "copy not made: no buffers"), 4);
    h.assert_no_leak();
}

/// Access port 0 (untagged) and trunk port 1 with VLANs 100 (sub-interface
/// 10) and 300 (sub-interface 11), all in domain 1. Inside the bridge,
/// frames are untagged (`inner` None: the sub-interfaces pop their tag) or
/// all carry VLAN `inner` (every member rewrites to it: the access port
/// pushes it, the sub-interfaces translate 1:1).
fn vlan_bridge(inner: Option<u16>, arp_term: bool) -> Tables {
    let push = inner.map(VlanTags::dot1q).unwrap_or_default();
    let mut t = Tables::default();
    let mut access = Interface::port(0, "access", 0, mac(0xa0), IfMode::Bridge { bd: BD, shg: 0 });
    access.rewrite = VlanRewrite { pop: 0, push };
    t.set_interface(access);
    t.set_interface(Interface::port(1, "trunk", 1, mac(0xa1), IfMode::L3 { vrf: 0 }));
    for (sw_if, vid) in [(10, 100), (11, 300)] {
        let mut sub = Interface::port(sw_if, &format!("trunk.{vid}"), 1, mac(0xa1), IfMode::Bridge { bd: BD, shg: 0 });
        sub.kind = IfKind::SubIf { parent: 1, tags: VlanTags::dot1q(vid) };
        sub.rewrite = VlanRewrite { pop: 1, push };
        t.set_interface(sub);
    }
    let mut config = BridgeDomainConfig::new(BD);
    config.arp_term = arp_term;
    let members = [0, 10, 11].into_iter().map(|sw_if| BdMember { sw_if, shg: 0 }).collect();
    t.set_bridge_domain(Arc::new(BridgeDomain::new(config, members)));
    t
}

#[test]
fn vlan_sub_interfaces_are_members_with_their_tags_rewritten() {
    for inner in [None, Some(200)] {
        vlan_members(inner);
    }
}

fn vlan_members(inner: Option<u16>) {
    let mut h = Harness::new(vlan_bridge(inner, false), 1024);
    let tagged = |tags: &[(u16, u16)], dst: MacAddr, src: MacAddr| frame(dst, src, tags, 0x0800, 46);
    let b = MacAddr::BROADCAST;
    h.inject(0, &[&tagged(&[], b, mac(A))]);
    assert_eq!(h.take_tx(0), Vec::<Vec<u8>>::new());
    assert_eq!(
        h.take_tx(1),
        vec![tagged(&[(0x8100, 100)], b, mac(A)), tagged(&[(0x8100, 300)], b, mac(A))],
        "one copy per VLAN, each with its own tag (inside: {inner:?})"
    );
    h.inject(1, &[&tagged(&[(0x8100, 100)], b, mac(B))]);
    assert_eq!(h.take_tx(0), vec![tagged(&[], b, mac(B))]);
    assert_eq!(h.take_tx(1), vec![tagged(&[(0x8100, 300)], b, mac(B))], "not back to VLAN 100");
    h.inject(1, &[&tagged(&[(0x8100, 300)], mac(A), mac(C))]);
    assert_eq!(h.take_tx(0), vec![tagged(&[], mac(A), mac(C))], "known A: unicast, VLAN 300's tag popped");
    assert_eq!(h.take_tx(1), Vec::<Vec<u8>>::new());
    assert_eq!((port_of(&h, mac(B)), port_of(&h, mac(C))), (Some(10), Some(11)), "learned on sub-interfaces");
    h.inject(0, &[&tagged(&[], mac(B), mac(A)), &tagged(&[], mac(C), mac(A))]);
    assert_eq!(h.take_tx(1), vec![tagged(&[(0x8100, 100)], mac(B), mac(A)), tagged(&[(0x8100, 300)], mac(C), mac(A))]);
    h.assert_no_leak();
}

#[test]
fn arp_termination_answers_known_addresses_on_the_requesters_port() {
    // The requester's port is in a split-horizon group: the answer comes
    // from the domain itself, so the group does not stop it.
    let mut h = Harness::new(bridge_with(3, |p| u8::from(p == 0), |c| c.arp_term = true), 1024);
    let d = domain(&h);
    d.arp.add_static(ip4(2), mac(B)).unwrap();
    let request = arp_request(mac(A), ip4(1), ip4(2), &[]);
    h.inject(0, &[&request]);
    let reply = arp(mac(A), mac(B), &[], 2, mac(B), ip4(2), mac(A), ip4(1));
    assert_eq!(tx_all(&mut h, 3), vec![vec![reply], vec![], vec![]], "answered, not flooded");
    assert_eq!(h.error("l2-arp-term", "ARP requests answered"), 1);
    assert_eq!(h.error("l2-arp-term", "IP-to-MAC bindings learned"), 1, "the requester's binding");
    assert_eq!(d.arp.lookup(ip4(1)).map(|e| (e.mac, e.is_static)), Some((mac(A), false)));
    assert_eq!(h.packets("l2-flood"), 0);
    h.assert_no_leak();
}

#[test]
fn arp_termination_forwards_what_it_cannot_answer_and_learns_bindings() {
    let mut h = Harness::new(bridge_with(3, |_| 0, |c| c.arp_term = true), 1024);
    let d = domain(&h);
    // Unknown target: flooded like any broadcast.
    let who_has_5 = arp_request(mac(A), ip4(1), ip4(5), &[]);
    h.inject(0, &[&who_has_5]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![], vec![who_has_5.clone()], vec![who_has_5.clone()]]);
    assert_eq!(h.error("l2-arp-term", "ARP requests for unknown IPs forwarded"), 1);

    // Its owner answers (a unicast reply): forwarded to A, binding learned.
    let reply = arp(mac(A), mac(B), &[], 2, mac(B), ip4(5), mac(A), ip4(1));
    h.inject(1, &[&reply]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![reply], vec![], vec![]]);
    assert_eq!(h.error("l2-arp-term", "ARP replies forwarded"), 1);
    assert_eq!(d.arp.lookup(ip4(5)).map(|e| e.mac), Some(mac(B)));

    // The next request for it is answered here.
    h.inject(2, &[&arp_request(mac(C), ip4(3), ip4(5), &[])]);
    let answer = arp(mac(C), mac(B), &[], 2, mac(B), ip4(5), mac(C), ip4(3));
    assert_eq!(tx_all(&mut h, 3), vec![vec![], vec![], vec![answer]]);

    // Failover: C takes 10.0.0.5 over with a gratuitous ARP, which floods
    // and moves the binding.
    let garp = arp_request(mac(C), ip4(5), ip4(5), &[]);
    h.inject(2, &[&garp]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![garp.clone()], vec![garp], vec![]]);
    assert_eq!(h.error("l2-arp-term", "gratuitous ARPs forwarded"), 1);
    assert_eq!(h.error("l2-arp-term", "IP-to-MAC bindings moved to a new MAC"), 1);
    h.inject(0, &[&arp_request(mac(A), ip4(1), ip4(5), &[])]);
    let answer = arp(mac(A), mac(C), &[], 2, mac(C), ip4(5), mac(A), ip4(1));
    assert_eq!(tx_all(&mut h, 3), vec![vec![answer], vec![], vec![]]);

    // A host probing its own address (sender 0.0.0.0) is not answered
    // from its own binding, and not learned from.
    let probe = arp(MacAddr::BROADCAST, mac(C), &[], 1, mac(C), Ipv4Addr::UNSPECIFIED, MacAddr::ZERO, ip4(5));
    h.inject(2, &[&probe]);
    assert_eq!(tx_all(&mut h, 3), vec![vec![probe.clone()], vec![probe], vec![]]);
    assert_eq!(h.error("l2-arp-term", "ARP requests from the address's owner forwarded"), 1);
    assert_eq!(d.arp.learned(), 3, "10.0.0.1, .3 and .5");

    // A static binding is not overwritten by what crosses the bridge.
    d.arp.add_static(ip4(9), mac(0x1f)).unwrap();
    let spoof = arp_request(mac(A), ip4(9), ip4(9), &[]);
    h.inject(0, &[&spoof]);
    h.drain_all();
    assert_eq!(h.error("l2-arp-term", "not learned: IP has a static binding to another MAC"), 1);
    assert_eq!(d.arp.lookup(ip4(9)).map(|e| e.mac), Some(mac(0x1f)));
    // Non-ARP traffic never visits l2-arp-term.
    let before = h.packets("l2-arp-term");
    h.inject(0, &[&ip(mac(B), mac(A))]);
    h.drain_all();
    assert_eq!(h.packets("l2-arp-term"), before);
    h.assert_no_leak();
}

#[test]
fn arp_termination_replies_carry_the_requesters_vlan_tags() {
    for inner in [None, Some(200)] {
        arp_term_on_vlans(inner);
    }
}

fn arp_term_on_vlans(inner: Option<u16>) {
    let mut h = Harness::new(vlan_bridge(inner, true), 1024);
    domain(&h).arp.add_static(ip4(2), mac(B)).unwrap();
    // VLAN 100: the tag is popped in the bridge and pushed back on output.
    h.inject(1, &[&arp_request(mac(A), ip4(1), ip4(2), &[(0x8100, 100)])]);
    let reply = arp(mac(A), mac(B), &[(0x8100, 100)], 2, mac(B), ip4(2), mac(A), ip4(1));
    assert_eq!(h.take_tx(1), vec![reply]);
    assert_eq!(h.take_tx(0), Vec::<Vec<u8>>::new());
    // VLAN 300.
    h.inject(1, &[&arp_request(mac(C), ip4(3), ip4(2), &[(0x8100, 300)])]);
    let reply = arp(mac(C), mac(B), &[(0x8100, 300)], 2, mac(B), ip4(2), mac(C), ip4(3));
    assert_eq!(h.take_tx(1), vec![reply], "inside: {inner:?}");
    assert_eq!(h.take_tx(0), Vec::<Vec<u8>>::new());
    // From the access port.
    h.inject(0, &[&arp_request(mac(C), ip4(3), ip4(2), &[])]);
    let reply = arp(mac(C), mac(B), &[], 2, mac(B), ip4(2), mac(C), ip4(3));
    assert_eq!(h.take_tx(0), vec![reply], "inside: {inner:?}");
    assert_eq!(h.take_tx(1), Vec::<Vec<u8>>::new());
    assert_eq!(h.error("l2-arp-term", "ARP requests answered"), 3);
    h.assert_no_leak();
}

/// Ports 0 and 1 and BVI 9 (MAC 02:00:00:00:00:b9, routed in VRF 0) in
/// domain 1, the BVI's MAC static on it.
fn bvi_bridge() -> Tables {
    let mut t = Tables::default();
    for p in 0..2 {
        t.set_interface(Interface::port(
            p,
            &format!("pg{p}"),
            p,
            mac(0xa0 + p as u8),
            IfMode::Bridge { bd: BD, shg: 0 },
        ));
    }
    let mut bvi = Interface::port(9, "bvi1", NONE, mac(0xb9), IfMode::L3 { vrf: 0 });
    bvi.kind = IfKind::Bvi { bd: BD };
    t.set_interface(bvi);
    let mut config = BridgeDomainConfig::new(BD);
    config.bvi = Some(9);
    let members = [0, 1, 9].into_iter().map(|sw_if| BdMember { sw_if, shg: 0 }).collect();
    let bd = BridgeDomain::new(config, members);
    bd.macs.add_static(mac(0xb9), 9).unwrap();
    t.set_bridge_domain(Arc::new(bd));
    t
}

#[test]
fn the_bvi_gets_flooded_copies_and_frames_for_its_mac() {
    let mut h = Harness::new(bvi_bridge(), 1024);
    h.graph.add_trace("pg-input", 2).unwrap();
    let who_has = arp_request(mac(A), ip4(1), ip4(254), &[]);
    let to_bvi = ip(mac(0xb9), mac(A));
    h.inject(0, &[&who_has, &to_bvi]);
    assert_eq!(h.take_tx(1), vec![who_has], "the other port gets its copy");
    let trace = h.graph.trace_log();
    let (request, unicast) = (trace.records(1), trace.records(2));
    for (records, what) in [(&request, "flooded ARP request"), (&unicast, "unicast to the BVI's MAC")] {
        let up = records.iter().position(|r| r == "l2-output: sw_if 9 (bvi: to routing)");
        let up = up.unwrap_or_else(|| panic!("{what}: no copy went up the BVI: {records:#?}"));
        assert!(
            records[up..].iter().any(|r| r.starts_with("ethernet-input: ") && r.ends_with(" sw_if 9")),
            "{what}: the copy did not reach ethernet-input as received on the BVI: {records:#?}"
        );
    }
    assert!(unicast.iter().any(|r| r.starts_with("l2-fwd: ") && r.ends_with("to sw_if 9 (static)")), "{unicast:#?}");
    assert!(request.iter().any(|r| r.starts_with("l2-flood: bd 1 from sw_if 0 shg 0: to 2 members")), "{request:#?}");
    h.assert_no_leak();
}

#[test]
fn frames_routed_out_of_the_bvi_are_bridged() {
    let mut h = Harness::new(bvi_bridge(), 1024);
    h.inject(0, &[&ip(mac(0xb9), mac(A))]);
    h.drain_all();
    // What ip4-rewrite would hand interface-output for a neighbour on the
    // bridge: a complete frame from the BVI's MAC, tx_if the BVI.
    let routed = ip(mac(A), mac(0xb9));
    let p = h.bufs.alloc().unwrap();
    assert!(h.bufs.write(p, &routed));
    h.bufs.meta_mut(p).tx_if = 9;
    let out = h.graph.node_index("interface-output").unwrap();
    h.graph.enqueue(out, &[p]);
    h.graph.dispatch(&mut h.bufs, &h.tables);
    assert_eq!(tx_all(&mut h, 2), vec![vec![routed], vec![]], "to A's port only");
    assert_eq!(h.error("l2-learn", "static MAC seen on another port"), 0);
    assert_eq!(domain(&h).macs.lookup(mac(0xb9), 0).map(|e| e.sw_if), Some(9));
    h.assert_no_leak();
}

#[test]
fn traces_say_what_each_bridge_node_did() {
    let mut h = Harness::new(bridge(3), 1024);
    h.graph.add_trace("pg-input", 2).unwrap();
    h.inject(0, &[&ip(mac(B), mac(A))]);
    h.inject(1, &[&ip(mac(A), mac(B))]);
    let trace = h.graph.trace_log();
    let first = trace.records(1);
    let expect = [
        "l2-learn: bd 1 sw_if 0 src 02:00:00:00:00:0a: learned",
        "l2-fwd: bd 1 sw_if 0 dst 02:00:00:00:00:0b: unknown, flood",
        "l2-flood: bd 1 from sw_if 0 shg 0: to 2 members",
    ];
    for e in expect {
        assert!(first.iter().any(|r| r == e), "missing {e:?} in {first:#?}");
    }
    let second = trace.records(2);
    assert!(second.iter().any(|r| r == "l2-fwd: bd 1 sw_if 1 dst 02:00:00:00:00:0a: to sw_if 0"), "{second:#?}");
    h.assert_no_leak();
}
