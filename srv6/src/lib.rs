//! The SRv6 data plane as a library: pure functions over packets in byte
//! buffers with headroom, knowing nothing of vswitch.
//!
//! - [`srh`]: the Segment Routing Header view, its TLVs and [`srh::SrhRepr`].
//! - [`hmac`]: the SRH HMAC TLV (HMAC-SHA256, Linux-compatible text).
//! - [`behavior`]: endpoint behaviours (End, End.X, End.T with PSP / USP /
//!   USD / NEXT-C-SID, End.DX2/4/6, End.DT4/6/46, End.B6.Encaps[.Red]),
//!   headends (H.Encaps[.Red], H.Encaps.L2[.Red]) and the SR proxies
//!   (End.AS, End.AD, End.AM), each returning an [`behavior::Outcome`].
//! - [`policy`]: SR policies (binding SID, weighted segment lists chosen by
//!   flow hash) and steering maps.
//!
//! ```
//! use vswitch_srv6::behavior::{end, EndOpts, Next, Outcome};
//!
//! // IPv6 2001:db8::1 > fc00:2:: with an SRH <fc00:3::, fc00:2::>, SL 1.
//! let mut pkt = vec![0u8; 80];
//! pkt[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 40, 43, 64]);
//! pkt[8..24].copy_from_slice(&"2001:db8::1".parse::<std::net::Ipv6Addr>()?.octets());
//! pkt[24..40].copy_from_slice(&"fc00:2::".parse::<std::net::Ipv6Addr>()?.octets());
//! pkt[40..48].copy_from_slice(&[59, 4, 4, 1, 1, 0, 0, 0]);
//! pkt[48..64].copy_from_slice(&"fc00:3::".parse::<std::net::Ipv6Addr>()?.octets());
//! pkt[64..80].copy_from_slice(&"fc00:2::".parse::<std::net::Ipv6Addr>()?.octets());
//!
//! match end(&mut pkt, 0, 80, &EndOpts::default()) {
//!     Outcome::Forward { dst, next: Next::Lookup, .. } => assert_eq!(dst.to_string(), "fc00:3::"),
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!((pkt[7], pkt[43]), (63, 0)); // hop limit and Segments Left decremented
//! # Ok::<(), std::net::AddrParseError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod field;

pub mod behavior;
pub mod hmac;
pub mod policy;
pub mod srh;

pub use behavior::{DropReason, IcmpError, Inner, Next, Outcome, Span};
pub use srh::{Srh, SrhError, SrhRepr};
