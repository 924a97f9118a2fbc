//! SRv6 in the graph: local SIDs, headend encapsulation, steering.
//!
//! The behaviours themselves are `vswitch-srv6`'s pure functions over a
//! buffer with headroom; the nodes here find the SID or policy, run the
//! function on the packet's buffer and send the result on by the
//! function's [`Outcome`](vswitch_srv6::Outcome):
//!
//! ```text
//!                 ┌── SrLocalSid adj ──► sr-localsid ──► ip6-lookup / ip6-rewrite (End.X) / ip6-local (ping a SID)
//! ip6-lookup ─────┤                           │ (USD) └─► ip4-input / ip6-input (decapsulated)
//!                 ├── SrLocalSidDecap adj ──► sr-localsid-d ──► ip4-input / ip6-input (End.DT4/6/46)
//!                 │                                         ├─► ip4-rewrite / ip6-rewrite (End.DX4/6)
//!                 │                                         └─► l2-output / interface-output (End.DX2)
//! ip4-lookup ─────┴── SrPolicy adj ──► sr-pl-rewrite-encaps ──► ip6-lookup (H.Encaps, H.Encaps.Red)
//! ethernet-input ── L2-steered interface ──► sr-pl-rewrite-encaps-l2 ──► ip6-lookup (H.Encaps.L2[.Red])
//!
//! SR proxies (End.AS, End.AD, End.AM) and their SR-unaware service function (SF):
//! ip6-lookup ── SrLocalSidDecap adj ──► sr-localsid-d ──► ip4-rewrite / ip6-rewrite / interface-output ──► SF (AS, AD)
//!            ── SrLocalSid adj ──► sr-localsid ──► ip6-rewrite ──► SF (AM)
//! SF ──► ethernet-input (the proxy's return interface) ──► sr-proxy-return ──► ip6-lookup
//!
//! any SR node ── drop with an ICMP error ──► ip6-icmp-error / ip4-icmp-error
//! ```
//!
//! - [`table`]: the SR table ([`SrTable`]) in every snapshot's
//!   `Tables::sr`: local SIDs (behaviour, parameters, flavors, HMAC
//!   policy), policies (binding SID, weighted segment lists as prebuilt
//!   encapsulation templates), L2 steering, HMAC keys. The FIB's SR
//!   adjacencies carry indices into it.
//! - [`counters`]: per-worker counters of each SID and policy.
//! - [`localsid`]: `sr-localsid` (End, End.X, End.T, End.B6.Encaps[.Red],
//!   with PSP / USP / USD / NEXT-C-SID) and `sr-localsid-d` (End.DX2,
//!   End.DX4, End.DX6, End.DT4, End.DT6, End.DT46).
//! - [`encaps`]: `sr-pl-rewrite-encaps` and `sr-pl-rewrite-encaps-l2`.
//! - [`proxy`]: `sr-proxy-return`, the traffic back from an SR proxy's
//!   service function; [`proxy_cache`]: End.AD's header cache, shared by
//!   the workers (a seqlock).
//!
//! Every SR node counts its drops under the `vswitch-srv6` crate's stable
//! reason names ([`SrError`], e.g. `sr-localsid: srh segments left beyond
//! last entry + 1`), plus a few of its own.
//!
//! Hop limits: the graph decrements a forwarded IPv6 packet's hop limit in
//! one place, ip6-rewrite. The endpoint functions decrement it as RFC 8986
//! writes the pseudo-code (after checking it), so sr-localsid gives the
//! one back after End / End.X / End.T, and the packet leaves with its hop
//! limit one lower, as from Linux. A headend originates the outer packet:
//! it is marked locally originated, so ip6-rewrite sends it with the hop
//! limit the policy set (copied from the inner packet by default, after
//! its TTL / hop limit was decremented) and no ICMP error is sent to
//! ourselves about it.

pub mod counters;
pub mod encaps;
pub mod localsid;
pub mod proxy;
pub mod proxy_cache;
pub mod table;

pub use counters::{SrCounter, SrCounters};
pub use encaps::{SrEncaps, SrEncapsL2};
pub use localsid::{SrLocalSid, SrLocalSidD};
pub use proxy::SrProxyReturn;
pub use proxy_cache::AdCache;
pub use table::{
    Behavior, EncapKind, LocalSid, Policy, ProxyClaim, ProxyKind, SrProxy, SrTable, SrTableError, MAX_ENCAP_LEN,
    MAX_LOCALSIDS, MAX_POLICIES,
};
/// The SR proxies' inner types and next steps, for the CLI.
pub use vswitch_srv6::{Inner, Next as SrNext};

use crate::ip6::Icmp6Error;
use vswitch_graph::errors;
use vswitch_srv6::behavior::IcmpError;
use vswitch_srv6::{DropReason, SrhError};

errors! {
    /// What the SR nodes count and drop. The first 31 are the
    /// `vswitch-srv6` crate's [`DropReason`] names, in the order of
    /// [`DropReason::ALL`].
    pub enum SrError {
        BadSpan = "packet span outside buffer",
        NotIpv6 = "not an ipv6 packet",
        BadPayloadLength = "ipv6 payload length beyond packet",
        BadExtHeaders = "ipv6 extension headers malformed",
        UnknownRoutingType = "unknown routing header type",
        SrhTruncated = "srh truncated",
        SrhBadRoutingType = "srh routing type not 4",
        SrhLastEntryTooBig = "srh last entry beyond header length",
        SrhSegmentsLeftTooBig = "srh segments left beyond last entry + 1",
        SrhBadTlvLength = "srh tlv length overruns header",
        SrhBadPadding = "srh padding not zero",
        SrhBadHmacTlv = "srh hmac tlv malformed",
        SrhHmacMissing = "srh hmac missing",
        SrhHmacUnknownKey = "srh hmac key id unknown",
        SrhHmacMismatch = "srh hmac mismatch",
        SrhHmacDestination = "srh hmac destination check failed",
        HopLimitExceeded = "hop limit exceeded",
        SegmentsLeftNotZero = "segments left not zero at final sid",
        SegmentsLeftZero = "segments left zero at non-final sid",
        NoSrh = "no srh",
        UpperLayerNotAllowed = "upper-layer header not allowed",
        OuterFragment = "outer packet is a fragment",
        InnerMalformed = "inner packet malformed",
        NotIp = "not an ip packet",
        InnerTtlExceeded = "inner ttl exceeded at headend",
        NoHeadroom = "no headroom for encapsulation",
        TooBig = "encapsulated packet too big",
        TemplateMismatch = "encap template does not match behaviour",
        ProxyCacheEmpty = "proxy cache empty",
        ProxyCacheTooSmall = "proxy headers too long to cache",
        ProxyInnerType = "proxy return packet of wrong type",
        NoSid = "no such local sid (removed)",
        NoPolicy = "no such sr policy (removed)",
        AdjacencyNotUsable = "the sid's adjacency cannot forward (drop)",
        FamilyMismatch = "decapsulated packet not of the adjacency's address family",
        InnerBadHeader = "decapsulated packet's ip header inconsistent",
        ProxyCacheBusy = "proxy cache being rewritten by other workers",
        IcmpSent = "icmp error sent to ip4/ip6-icmp-error (also counted under its reason)",
    }
}

impl SrError {
    /// The counter of a `vswitch-srv6` drop reason.
    pub const fn from_reason(r: DropReason) -> SrError {
        use SrError as E;
        match r {
            DropReason::BadSpan => E::BadSpan,
            DropReason::NotIpv6 => E::NotIpv6,
            DropReason::BadPayloadLength => E::BadPayloadLength,
            DropReason::BadExtHeaders => E::BadExtHeaders,
            DropReason::UnknownRoutingType => E::UnknownRoutingType,
            DropReason::Srh(e) => match e {
                SrhError::Truncated => E::SrhTruncated,
                SrhError::BadRoutingType => E::SrhBadRoutingType,
                SrhError::LastEntryTooBig => E::SrhLastEntryTooBig,
                SrhError::SegmentsLeftTooBig => E::SrhSegmentsLeftTooBig,
                SrhError::BadTlvLength => E::SrhBadTlvLength,
                SrhError::BadPadding => E::SrhBadPadding,
                SrhError::BadHmacTlv => E::SrhBadHmacTlv,
                SrhError::HmacMissing => E::SrhHmacMissing,
                SrhError::HmacUnknownKey => E::SrhHmacUnknownKey,
                SrhError::HmacMismatch => E::SrhHmacMismatch,
                SrhError::HmacDestination => E::SrhHmacDestination,
            },
            DropReason::HopLimitExceeded => E::HopLimitExceeded,
            DropReason::SegmentsLeftNotZero => E::SegmentsLeftNotZero,
            DropReason::SegmentsLeftZero => E::SegmentsLeftZero,
            DropReason::NoSrh => E::NoSrh,
            DropReason::UpperLayerNotAllowed => E::UpperLayerNotAllowed,
            DropReason::OuterFragment => E::OuterFragment,
            DropReason::InnerMalformed => E::InnerMalformed,
            DropReason::NotIp => E::NotIp,
            DropReason::InnerTtlExceeded => E::InnerTtlExceeded,
            DropReason::NoHeadroom => E::NoHeadroom,
            DropReason::TooBig => E::TooBig,
            DropReason::TemplateMismatch => E::TemplateMismatch,
            DropReason::ProxyCacheEmpty => E::ProxyCacheEmpty,
            DropReason::ProxyCacheTooSmall => E::ProxyCacheTooSmall,
            DropReason::ProxyInnerType => E::ProxyInnerType,
        }
    }
}

/// Which ICMP error node sends an SRv6 node's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IcmpNode {
    /// ip6-icmp-error.
    V6,
    /// ip4-icmp-error (an inner IPv4 packet's TTL ran out at a headend).
    V4,
}

/// Prepares `m` (its IP header at `m.l3`) for the ICMP error `e` about it
/// and says which node sends it.
pub(crate) fn request_icmp(m: &mut vswitch_packet::Meta, e: IcmpError) -> IcmpNode {
    match e {
        IcmpError::HopLimitExceeded => {
            Icmp6Error::HopLimitExceeded.store(m);
            IcmpNode::V6
        }
        IcmpError::ParameterProblem { code, pointer } => {
            Icmp6Error::ParameterProblem(code, pointer).store(m);
            IcmpNode::V6
        }
        IcmpError::TtlExceededV4 => {
            crate::ip4::icmp_error::request_icmp_error(m, vswitch_wire::icmpv4::icmpv4_type::TIME_EXCEEDED, 0, 0);
            IcmpNode::V4
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vswitch_graph::ErrorCode;

    #[test]
    fn counter_names_are_the_srv6_crate_names() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            let e = SrError::from_reason(*r);
            assert_eq!(e.index(), i, "{r:?} in DropReason::ALL order");
            assert_eq!(SrError::DESCRIPTIONS[e.index()], r.name());
        }
    }
}
