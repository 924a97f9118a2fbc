//! Typed zero-copy views over packet headers.
//!
//! Every view wraps a byte buffer (`T: AsRef<[u8]>`) and reads or writes
//! header fields in place; nothing is parsed into an owned struct and nothing
//! allocates. A view built with `new_checked` has had every length field
//! validated against its buffer, so none of its getters can panic. A view
//! built with `new_unchecked` skips that check and its getters may panic on a
//! short buffer. Setters write raw fields: a setter can break the invariants
//! `new_checked` established (e.g. a larger header length), after which the
//! getters that depend on that field may panic.
//!
//! ```
//! use vswitch_wire::{ethertype, ip_protocol, EthernetFrame, Ipv4Packet, UdpPacket};
//!
//! // 02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 10.0.0.1 > 10.0.0.2, UDP 1234 > 53.
//! let frame: [u8; 46] = [
//!     0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, // Ethernet
//!     0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x40, 0x00, 0x40, 0x11, // IPv4 ...
//!     0x26, 0xca, 10, 0, 0, 1, 10, 0, 0, 2, //                       ... addresses
//!     0x04, 0xd2, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, b'p', b'i', b'n', b'g', // UDP
//! ];
//! let eth = EthernetFrame::new_checked(&frame[..])?;
//! assert_eq!(eth.ethertype(), ethertype::IPV4);
//! let ip = Ipv4Packet::new_checked(eth.payload())?;
//! assert!(ip.verify_checksum());
//! assert_eq!(ip.to_string(), "IPv4 10.0.0.1 > 10.0.0.2 proto=UDP ttl=64 len=32");
//! assert_eq!(ip.protocol(), ip_protocol::UDP);
//! let udp = UdpPacket::new_checked(ip.payload())?;
//! assert_eq!((udp.dst_port(), udp.payload()), (53, &b"ping"[..]));
//! assert!(udp.verify_checksum_v4(&ip.src_addr(), &ip.dst_addr())); // 0 = none
//! # Ok::<(), vswitch_wire::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod field;

pub mod arp;
pub mod checksum;
pub mod error;
pub mod eth;
pub mod icmpv4;
pub mod icmpv6;
pub mod ip_protocol;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6_ext;
pub mod ndp;
pub mod tcp;
pub mod udp;
pub mod vlan;

pub use arp::{arp_op, emit_reply as emit_arp_reply, emit_request as emit_arp_request, ArpPacket};
pub use error::{Error, Result};
pub use eth::{ethertype, EthernetFrame, MacAddr};
pub use icmpv4::{icmpv4_type, icmpv4_unreach, Icmpv4Packet};
pub use icmpv6::{icmpv6_type, Icmpv6Packet};
pub use ipv4::{ipv4_option, Ipv4OptionIter, Ipv4Packet};
pub use ipv6::Ipv6Packet;
pub use ipv6_ext::{
    ipv6_walk_ext_headers, is_ext_header, Ipv6ExtHeader, Ipv6FragmentHeader, Ipv6OptionIter, Ipv6RoutingHeader,
    Ipv6Upper, MAX_EXT_HEADERS,
};
pub use ndp::{
    emit_neighbor_advert, emit_neighbor_solicit, ndp_flags, ndp_option, solicited_node, NdpNeighborAdvert,
    NdpNeighborSolicit, NdpOption, NdpOptionIter, NdpRouterAdvert, NdpRouterSolicit,
};
pub use tcp::{tcp_flags, tcp_option, SackBlocks, TcpOption, TcpOptionIter, TcpPacket};
pub use udp::UdpPacket;
pub use vlan::VlanTag;
