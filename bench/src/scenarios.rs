//! The benchmark scenarios: configuration, generator templates, and where
//! the packets should come out.

use std::sync::Arc;
use vswitch_fib::quiesce::ReaderHandle;
use vswitch_nodes::{IfMode, Interface, Tables};
use vswitch_wire::MacAddr;

/// Every scenario, in the order they run by default.
pub const ALL: &[&str] = &["l2-xconnect"];

/// A configured scenario.
pub struct Scenario {
    pub tables: Arc<Tables>,
    pub templates: Vec<Vec<u8>>,
    pub rx_port: u32,
    pub tx_port: u32,
    pub ports: u32,
    pub reader: Option<ReaderHandle>,
    pub description: String,
}

pub fn build(name: &str, quick: bool) -> Result<Scenario, String> {
    let _ = quick;
    match name {
        "l2-xconnect" => Ok(l2_xconnect()),
        other => Err(format!("unknown scenario {other:?}; known: {}", ALL.join(", "))),
    }
}

fn mac(port: u8, host: u32) -> MacAddr {
    let h = host.to_be_bytes();
    MacAddr([0x02, port, h[0], h[1], h[2], h[3]])
}

/// A 64-byte Ethernet/IPv4/UDP frame (without FCS: 60 bytes on the wire
/// plus 4 of FCS, as generators count it).
pub fn udp4_frame(dst: MacAddr, src: MacAddr, ip_src: [u8; 4], ip_dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let total: u16 = 46;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&ip_src);
    ip[16..20].copy_from_slice(&ip_dst);
    let csum = vswitch_wire::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(total - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(60, 0);
    f
}

fn l2_xconnect() -> Scenario {
    let mut t = Tables::default();
    t.set_interface(Interface::port(0, "pg0", 0, mac(0, 0), IfMode::XConnect { peer: 1 }));
    t.set_interface(Interface::port(1, "pg1", 1, mac(1, 0), IfMode::XConnect { peer: 0 }));
    let templates = vec![udp4_frame(mac(1, 1), mac(0, 1), [10, 0, 0, 1], [10, 1, 0, 1], 1024, 1024)];
    Scenario {
        tables: Arc::new(t),
        templates,
        rx_port: 0,
        tx_port: 1,
        ports: 2,
        reader: None,
        description: "pg0 <-> pg1 L2 cross-connect, 1 flow".into(),
    }
}
