//! Criterion micro-benchmarks of the standard graph on one vector of 256
//! 64-byte frames: the cross-connect, bridging and routing paths, each
//! from pg-input to the transmit queue (generator copy and freeing
//! included, as `vswitch-bench graph` measures whole scenarios).
//!
//! `cargo bench -p vswitch-nodes --bench nodes`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use vswitch_nodes::harness::Harness;
use vswitch_nodes::ip::fib::RoutePath;
use vswitch_nodes::l2::{BdMember, BridgeDomain};
use vswitch_nodes::{BridgeDomainConfig, IfMode, Interface, Tables};
use vswitch_wire::MacAddr;

fn mac(port: u8, host: u16) -> MacAddr {
    let h = host.to_be_bytes();
    MacAddr([2, port, 0, 0, h[0], h[1]])
}

fn udp4(dst: MacAddr, src: MacAddr, ip_dst: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0, 172, 16, 0, 2, 0, 0, 0, 0];
    ip[16..20].copy_from_slice(&ip_dst);
    let c = vswitch_wire::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[4, 0, 0, 80, 0, 26, 0, 0]);
    f.resize(60, 0);
    f
}

fn run(c: &mut Criterion, name: &str, mut h: Harness, frames: Vec<Vec<u8>>, out_port: u32) {
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    let mut group = c.benchmark_group("graph");
    group.throughput(Throughput::Elements(refs.len() as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            h.inject(0, &refs);
            h.drain_all();
        })
    });
    group.finish();
    h.inject(0, &refs);
    assert_eq!(h.take_tx(out_port).len(), refs.len(), "{name}: every frame forwarded");
    h.assert_no_leak();
}

fn xconnect(c: &mut Criterion) {
    let mut t = Tables::default();
    t.set_interface(Interface::port(0, "pg0", 0, mac(0, 0), IfMode::XConnect { peer: 1 }));
    t.set_interface(Interface::port(1, "pg1", 1, mac(1, 0), IfMode::XConnect { peer: 0 }));
    let frames = (0..256).map(|i| udp4(mac(1, i), mac(0, i), [10, 1, 0, 1])).collect();
    run(c, "l2-xconnect", Harness::new(t, 4096), frames, 1);
}

fn bridge(c: &mut Criterion) {
    let mut t = Tables::default();
    t.set_interface(Interface::port(0, "pg0", 0, mac(0, 0), IfMode::Bridge { bd: 1, shg: 0 }));
    t.set_interface(Interface::port(1, "pg1", 1, mac(1, 0), IfMode::Bridge { bd: 1, shg: 0 }));
    let bd = BridgeDomain::new(
        BridgeDomainConfig::new(1),
        vec![BdMember { sw_if: 0, shg: 0 }, BdMember { sw_if: 1, shg: 0 }],
    );
    let now = bd.macs.now();
    for i in 0..10_000 {
        bd.macs.learn(mac(1, i), 1, now);
        bd.macs.learn(mac(0, i), 0, now);
    }
    t.set_bridge_domain(Arc::new(bd));
    let frames = (0..256).map(|i| udp4(mac(1, i * 37), mac(0, i * 37), [10, 1, 0, 1])).collect();
    run(c, "l2-bridge-10k-macs", Harness::new(t, 4096), frames, 1);
}

fn route4(c: &mut Criterion) {
    let mut t = Tables::default();
    t.set_interface(Interface::port(0, "pg0", 0, mac(0, 0), IfMode::L3 { vrf: 0 }));
    t.set_interface(Interface::port(1, "pg1", 1, mac(1, 0), IfMode::L3 { vrf: 0 }));
    t.interfaces[0].as_mut().unwrap().ip4.push((Ipv4Addr::new(172, 16, 0, 1), 24));
    t.interfaces[1].as_mut().unwrap().ip4.push((Ipv4Addr::new(172, 16, 1, 1), 24));
    {
        let mut ctl = t.fib.control();
        ctl.sync_interfaces(&t).unwrap();
        let nh = Ipv4Addr::new(172, 16, 1, 2);
        ctl.add_static_neighbor(1, IpAddr::V4(nh), mac(1, 2)).unwrap();
        for i in 0..1000u32 {
            let p = format!("{}.{}.{}.0/24", 11 + i / 65536, (i / 256) % 256, i % 256);
            ctl.add_route(0, p.parse().unwrap(), &[RoutePath::via(nh, 1)]).unwrap();
        }
    }
    let frames = (0..256u32).map(|i| udp4(mac(0, 0), mac(0, 1), [11, 0, (i * 3 % 256) as u8, 9])).collect();
    let h = Harness::new(t, 4096);
    let reader = h.tables.fib.register_reader();
    run(c, "ip4-route-1k", h, frames, 1);
    reader.quiescent();
}

criterion_group!(benches, xconnect, bridge, route4);
criterion_main!(benches);
