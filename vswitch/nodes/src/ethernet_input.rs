//! ethernet-input: classifies frames by VLAN tags and ethertype.
//!
//! Finds the interface a frame belongs to (the port's own, or a VLAN
//! sub-interface matching its one or two tags), then by that interface's
//! mode sends it to L2 (bridge or cross-connect, frame untouched) or, for
//! routed interfaces, strips the Ethernet header and tags and sends it to
//! ip4-input, ip6-input or arp-input. A routed interface only accepts
//! frames addressed to its MAC, broadcast or multicast. A plain
//! cross-connect (no VLAN tag rewrite on either side) goes straight to
//! interface-output, and a plain bridge member straight to l2-learn or
//! l2-fwd: l2-input would have nothing to do but what is done here. An
//! untagged frame on a routed port is classified from the cached interface
//! without the general lookup. Frames of an interface with no forwarding
//! mode that is steered into an SR policy (`Tables::sr`) go, tags and all,
//! to sr-pl-rewrite-encaps-l2. The return interface of an SR proxy hands
//! what its service function sends back (its inner type, see
//! `SrTable::proxy_claims`) to sr-proxy-return.

use crate::{Cx, IfCounters, IfMode, Interface, Tables};
use std::fmt;
use std::sync::Arc;
use vswitch_graph::{errors, next_arcs, Node, PacketId};
use vswitch_packet::MetaFlags;
use vswitch_wire::{ethertype, MacAddr};

next_arcs! {
    /// Where ethernet-input sends frames.
    pub enum EthernetInputNext {
        L2 = "l2-input",
        Ip4 = "ip4-input",
        Ip6 = "ip6-input",
        Arp = "arp-input",
        Transmit = "interface-output",
        Learn = "l2-learn",
        Forward = "l2-fwd",
        SrL2 = "sr-pl-rewrite-encaps-l2",
        SrProxy = "sr-proxy-return",
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

/// What ethernet-input decided for the last untagged receiving interface,
/// reused while the vector keeps coming from it.
#[derive(Clone, Copy)]
struct Last<'t> {
    port_if: u32,
    intf: &'t Interface,
    shortcut: Shortcut,
}

/// Where an untagged frame from a plain L2 interface (no VLAN tag rewrite)
/// goes without l2-input, which would have nothing to do but this.
#[derive(Clone, Copy)]
enum Shortcut {
    None,
    /// Cross-connect (no rewrite on the peer either): straight out.
    XConnect {
        peer: u32,
    },
    /// Bridge member: into the bridge domain's learn or forward node.
    Bridge {
        bd: u16,
        shg: u8,
        learn: bool,
    },
    /// Routed port: check the destination MAC, strip the header, on to
    /// ip4-input / ip6-input / arp-input.
    L3 {
        vrf: u32,
        mac: MacAddr,
    },
}

impl Node<Tables> for EthernetInput {
    const NAME: &'static str = "ethernet-input";
    type Next = EthernetInputNext;
    type Error = EthernetInputError;

    fn process(&mut self, cx: &mut Cx<'_, Self>, vector: &[PacketId]) {
        use EthernetInputError as E;
        use EthernetInputNext as Next;
        let tables = cx.state;
        let mut last: Option<Last<'_>> = None;
        for &p in vector {
            let (data, m) = cx.bufs.data_and_meta_mut(p);
            if data.len() < 14 {
                cx.discard(p, E::Truncated);
                continue;
            }
            let frame_len = data.len();
            let mut et = u16::from_be_bytes([data[12], data[13]]);
            let port_if = m.rx_if;
            let traced = m.flags & MetaFlags::TRACED != 0;
            m.l2 = m.current;

            let cached = match last {
                Some(l) if l.port_if == port_if && !ethertype::is_vlan(et) => Some(l),
                _ => None,
            };
            // The common case: untagged, from the same interface as the
            // previous frame, and a shortcut past l2-input. The first frame
            // of a vector fills the cache; it takes the shortcut too, so a
            // flow's frames never overtake each other.
            let cached = match cached {
                Some(l) => Some(l),
                None if !ethertype::is_vlan(et) => match tables.interface(port_if) {
                    Some(port) => {
                        let l = Last { port_if, intf: port, shortcut: shortcut(tables, port) };
                        last = Some(l);
                        Some(l)
                    }
                    None => None,
                },
                None => None,
            };
            if let Some(Last { shortcut, intf, .. }) = cached {
                if let Shortcut::L3 { vrf, mac } = shortcut {
                    if data[0..6] != mac.0 && data[0] & 1 == 0 {
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
                    let trace = traced.then(|| trace_record(intf.sw_if, data, et, (NO_VLAN, NO_VLAN)));
                    m.vrf = vrf;
                    m.current += 14;
                    m.len -= 14;
                    m.l3 = m.current;
                    if let Some(t) = trace {
                        cx.trace(p, t);
                    }
                    cx.enqueue(next, p);
                    continue;
                }
                if let Some(next) = apply_shortcut(shortcut, m) {
                    if traced {
                        cx.trace(p, trace_record(intf.sw_if, cx.bufs.data(p), et, (NO_VLAN, NO_VLAN)));
                    }
                    cx.enqueue(next, p);
                    continue;
                }
            }

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
            let dst_is_ours_or_group = |intf: &Interface| {
                let dst = MacAddr::from_bytes(&data[0..6]);
                dst == intf.mac || dst.is_multicast()
            };
            let intf = match cached {
                Some(l) => l.intf,
                None => {
                    let Some(port) = tables.interface(port_if) else {
                        cx.discard(p, E::UnknownInterface);
                        continue;
                    };
                    if outer == NO_VLAN {
                        let l = Last { port_if, intf: port, shortcut: shortcut(tables, port) };
                        last = Some(l);
                        port
                    } else {
                        match tables.sub_if(port_if, outer, inner).and_then(|s| tables.interface(s)) {
                            Some(sub) => sub,
                            // A tagged frame on an L2 port with no matching
                            // sub-interface is switched as it is (a trunk).
                            None if matches!(port.mode, IfMode::Bridge { .. } | IfMode::XConnect { .. })
                                || tables.sr.l2_policy(port.sw_if).is_some()
                                || (port.mode == IfMode::Disabled && tables.sr.proxy_return(port.sw_if).is_some()) =>
                            {
                                port
                            }
                            None => {
                                cx.discard(p, E::NoSubInterface);
                                continue;
                            }
                        }
                    }
                }
            };
            let l3_ok = matches!(intf.mode, IfMode::L3 { .. }) && dst_is_ours_or_group(intf);
            // Only routed and mode-less interfaces can be a proxy's return
            // interface; read here, while the frame is still borrowed.
            let proxy = match intf.mode {
                IfMode::L3 { .. } | IfMode::Disabled => {
                    tables.sr.proxy_claims(intf.sw_if, et, data.get(hdr..).unwrap_or(&[]))
                }
                IfMode::Bridge { .. } | IfMode::XConnect { .. } => None,
            };
            if traced {
                let t = trace_record(intf.sw_if, data, et, (outer, inner));
                cx.trace(p, t);
            }
            let m = cx.bufs.meta_mut(p);
            m.rx_if = intf.sw_if;
            if intf.sw_if != port_if {
                // Ports count at their input node; sub-interfaces here.
                self.counters.rx(intf.sw_if, 1, frame_len as u64);
            }
            if !intf.up {
                cx.discard(p, E::Down);
                continue;
            }
            let next = match intf.mode {
                IfMode::XConnect { peer } if intf.sw_if == port_if && xc_direct(tables, intf).is_some() => {
                    m.tx_if = peer;
                    Next::Transmit
                }
                IfMode::Bridge { .. } | IfMode::XConnect { .. } => {
                    m.l3 = m.current + hdr as u16;
                    Next::L2
                }
                IfMode::L3 { vrf } => {
                    if !l3_ok {
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
                    match proxy {
                        // Back from an SR proxy's service function.
                        Some(sid) => {
                            m.opaque[0] = sid;
                            Next::SrProxy
                        }
                        None => next,
                    }
                }
                IfMode::Disabled => match tables.sr.l2_policy(intf.sw_if) {
                    // Steered into an SR policy (H.Encaps.L2).
                    Some(policy) => {
                        m.opaque[0] = policy;
                        Next::SrL2
                    }
                    None => match proxy {
                        // Back from an Ethernet SR proxy's service function.
                        Some(sid) => {
                            m.opaque[0] = sid;
                            Next::SrProxy
                        }
                        None => {
                            cx.discard(p, E::NotForwarding);
                            continue;
                        }
                    },
                },
            };
            cx.enqueue(next, p);
        }
    }
}

/// The peer of a plain cross-connect: neither side rewrites VLAN tags, the
/// interface is up, so l2-input and l2-output have nothing to do.
fn xc_direct(tables: &Tables, intf: &Interface) -> Option<u32> {
    let IfMode::XConnect { peer } = intf.mode else { return None };
    let out = tables.interface(peer)?;
    (intf.up && intf.rewrite.is_noop() && out.rewrite.is_noop()).then_some(peer)
}

/// What l2-input would do for every untagged frame of this interface,
/// when it is that simple.
fn shortcut(tables: &Tables, intf: &Interface) -> Shortcut {
    if !intf.up || !intf.rewrite.is_noop() || !matches!(intf.kind, crate::IfKind::Port) {
        return Shortcut::None;
    }
    match intf.mode {
        IfMode::XConnect { .. } => xc_direct(tables, intf).map_or(Shortcut::None, |peer| Shortcut::XConnect { peer }),
        IfMode::Bridge { bd, shg } => match tables.bridge_domain(bd) {
            Some(domain) => Shortcut::Bridge { bd, shg, learn: domain.config.learn },
            None => Shortcut::None,
        },
        // An SR proxy's return interface takes the general path.
        IfMode::L3 { .. } if tables.sr.proxy_return(intf.sw_if).is_some() => Shortcut::None,
        IfMode::L3 { vrf } => Shortcut::L3 { vrf, mac: intf.mac },
        IfMode::Disabled => Shortcut::None,
    }
}

/// Applies a shortcut to the packet's metadata; `None` when there is none.
#[inline(always)]
fn apply_shortcut(shortcut: Shortcut, m: &mut vswitch_packet::Meta) -> Option<EthernetInputNext> {
    match shortcut {
        Shortcut::XConnect { peer } => {
            m.tx_if = peer;
            Some(EthernetInputNext::Transmit)
        }
        Shortcut::Bridge { bd, shg, learn } => {
            m.bd = bd;
            m.shg = shg;
            m.l3 = m.current + 14;
            Some(if learn { EthernetInputNext::Learn } else { EthernetInputNext::Forward })
        }
        Shortcut::L3 { .. } | Shortcut::None => None,
    }
}

fn trace_record(sw_if: u32, data: &[u8], ethertype: u16, vlans: (u16, u16)) -> EthernetInputTrace {
    EthernetInputTrace {
        sw_if,
        dst: MacAddr::from_bytes(&data[0..6]),
        src: MacAddr::from_bytes(&data[6..12]),
        ethertype,
        vlans,
    }
}
