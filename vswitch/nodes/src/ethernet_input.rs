//! ethernet-input: classifies frames by VLAN tags and ethertype.
//!
//! Finds the interface a frame belongs to (the port's own, or a VLAN
//! sub-interface matching its one or two tags), then by that interface's
//! mode sends it to L2 (bridge or cross-connect, frame untouched) or, for
//! routed interfaces, strips the Ethernet header and tags and sends it to
//! ip4-input, ip6-input or arp-input. A routed interface only accepts
//! frames addressed to its MAC, broadcast or multicast.

use crate::{Cx, IfCounters, IfMode, Tables};
use std::fmt;
use std::sync::Arc;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_wire::{ethertype, MacAddr};

next_arcs! {
    /// Where ethernet-input sends frames.
    pub enum EthernetInputNext {
        L2 = "l2-input",
        Ip4 = "ip4-input",
        Ip6 = "ip6-input",
        Arp = "arp-input",
    }
}

errors! {
    /// What ethernet-input counts and drops.
    pub enum EthernetInputError {
        Truncated = "frame shorter than its Ethernet header and tags",
        UnknownInterface = "no interface for the receiving port",
        NoSubInterface = "no sub-interface for the VLAN tags",
        TooManyTags = "more than two VLAN tags",
        Down = "interface is down",
        NotForwarding = "interface is not forwarding",
        UnknownEthertype = "unknown ethertype",
        NotForUs = "destination MAC is not the routed interface's",
    }
}

/// Trace record.
pub struct EthernetInputTrace {
    sw_if: u32,
    src: MacAddr,
    dst: MacAddr,
    ethertype: u16,
    vlans: (u16, u16),
}

impl fmt::Display for EthernetInputTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let et = ethertype::name(self.ethertype).unwrap_or("?");
        write!(f, "{et} 0x{:04x}: {} -> {} sw_if {}", self.ethertype, self.src, self.dst, self.sw_if)?;
        match self.vlans {
            (NO_VLAN, _) => Ok(()),
            (o, NO_VLAN) => write!(f, " vlan {o}"),
            (o, i) => write!(f, " vlan {o}.{i}"),
        }
    }
}

const NO_VLAN: u16 = 0xffff;

/// The ethernet-input node.
pub struct EthernetInput {
    counters: Arc<IfCounters>,
}

impl EthernetInput {
    /// Counts sub-interface receptions into `counters`.
    pub fn new(counters: Arc<IfCounters>) -> Self {
        EthernetInput { counters }
    }
}

impl Node<Tables> for EthernetInput {
    const NAME: &'static str = "ethernet-input";
    type Next = EthernetInputNext;
    type Error = EthernetInputError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use EthernetInputError as E;
        use EthernetInputNext as Next;
        let tables = cx.state;
        for &p in vector {
            let (data, m) = cx.bufs.data_and_meta_mut(p);
            if data.len() < 14 {
                cx.discard(p, E::Truncated);
                continue;
            }
            let frame_len = data.len();
            let mut et = u16::from_be_bytes([data[12], data[13]]);
            let mut hdr = 14;
            let (mut outer, mut inner) = (NO_VLAN, NO_VLAN);
            if ethertype::is_vlan(et) {
                if data.len() < 18 {
                    cx.discard(p, E::Truncated);
                    continue;
                }
                outer = u16::from_be_bytes([data[14], data[15]]) & 0x0fff;
                et = u16::from_be_bytes([data[16], data[17]]);
                hdr = 18;
                if ethertype::is_vlan(et) {
                    if data.len() < 22 {
                        cx.discard(p, E::Truncated);
                        continue;
                    }
                    inner = u16::from_be_bytes([data[18], data[19]]) & 0x0fff;
                    et = u16::from_be_bytes([data[20], data[21]]);
                    hdr = 22;
                    if ethertype::is_vlan(et) {
                        cx.discard(p, E::TooManyTags);
                        continue;
                    }
                }
            }
            let port_if = m.rx_if;
            let Some(mut intf) = tables.interface(port_if) else {
                cx.discard(p, E::UnknownInterface);
                continue;
            };
            if outer != NO_VLAN {
                match tables.sub_if(port_if, outer, inner) {
                    Some(sub) => match tables.interface(sub) {
                        Some(s) => intf = s,
                        None => {
                            cx.discard(p, E::NoSubInterface);
                            continue;
                        }
                    },
                    // A tagged frame on an L2 port with no matching
                    // sub-interface is switched as it is (a trunk).
                    None if matches!(intf.mode, IfMode::Bridge { .. } | IfMode::XConnect { .. }) => {}
                    None => {
                        cx.discard(p, E::NoSubInterface);
                        continue;
                    }
                }
            }
            let dst = MacAddr::from_bytes(&data[0..6]);
            let traced = m.flags & vswitch_packet::MetaFlags::TRACED != 0;
            let trace = traced.then(|| EthernetInputTrace {
                sw_if: intf.sw_if,
                src: MacAddr::from_bytes(&data[6..12]),
                dst,
                ethertype: et,
                vlans: (outer, inner),
            });
            m.rx_if = intf.sw_if;
            m.l2 = m.current;
            if !intf.up {
                cx.discard(p, E::Down);
                continue;
            }
            let next = match intf.mode {
                IfMode::Bridge { .. } | IfMode::XConnect { .. } => {
                    m.l3 = m.current + hdr as u16;
                    Next::L2
                }
                IfMode::L3 { vrf } => {
                    if dst != intf.mac && !dst.is_multicast() {
                        cx.discard(p, E::NotForUs);
                        continue;
                    }
                    let next = match et {
                        ethertype::IPV4 => Next::Ip4,
                        ethertype::IPV6 => Next::Ip6,
                        ethertype::ARP => Next::Arp,
                        _ => {
                            cx.discard(p, E::UnknownEthertype);
                            continue;
                        }
                    };
                    m.vrf = vrf;
                    m.current += hdr as u16;
                    m.len -= hdr as u16;
                    m.l3 = m.current;
                    next
                }
                IfMode::Disabled => {
                    cx.discard(p, E::NotForwarding);
                    continue;
                }
            };
            if intf.sw_if != port_if {
                // Ports count at their input node; sub-interfaces here.
                self.counters.rx(intf.sw_if, frame_len);
            }
            if let Some(t) = trace {
                cx.trace(p, t);
            }
            cx.enqueue(next, p);
        }
    }
}
