//! SR proxies for SR-unaware service functions
//! (draft-ietf-spring-sr-service-programming section 6). Each has two
//! halves: the SID behaviour that sends traffic to the service function
//! (SF), and the `_return` function for traffic coming back from it on the
//! proxy's receiving interface.
//!
//! - End.AS, static: strips the outer IPv6 header and its extension headers
//!   on the way out; on the way back pushes headers configured once (an
//!   [`EncapTemplate`] of the segments after the proxy SID).
//! - End.AD, dynamic: on the way out performs End (Segments Left - 1, DA =
//!   next segment), remembers the outer headers in a [`DynamicProxyCache`]
//!   and strips them; on the way back pushes the remembered headers. As in
//!   VPP's srv6-ad, the outer hop limit is left alone and the return path
//!   decrements the inner TTL / hop limit instead.
//! - End.AM, masquerading: on the way out performs End but writes Segment
//!   List\[0\] (the final destination) into the DA, keeping the SRH, so the
//!   SF sees the original end-to-end addresses; on the way back restores DA
//!   = Segment List\[Segments Left\].

use core::net::Ipv6Addr;

use super::headend::{classify_ip, decrement_ttl, encap, push_raw, room_for, InnerInfo};
use super::{
    check_srh, decap_to, drop_icmp, inner_ok, ip6, packet, param_problem, parsed, set_dst, upper_layer, with_srh,
    DropReason, EndOpts, IcmpError, Inner, Next, Outcome, Span,
};
use crate::srh::{Srh, SrhError, SEGMENTS_LEFT_OFFSET};

use super::EncapTemplate;

/// An End.AS SID: the inner packet type it serves, where the SF is, and
/// the headers to push on returning traffic.
#[derive(Clone, Debug)]
pub struct StaticProxy {
    /// Inner packet type (IPv4, IPv6 or Ethernet).
    pub inner: Inner,
    /// Towards the SF (adjacency or interface).
    pub to_sf: Next,
    /// CACHE: the source, the active segment and the SRH of the rest of the
    /// chain, built like an H.Encaps template of the segments after the
    /// proxy SID (an L2 template for an Ethernet inner type).
    pub cache: EncapTemplate,
}

/// End.AS towards the SF: if the upper-layer header is the proxy's inner
/// type, strip the outer headers and send the inner packet to the SF; any
/// other upper layer gets RFC 8986 section 4.1.1.
pub fn end_as(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, proxy: &StaticProxy) -> Outcome {
    let (pkt, p) = match parsed(buf, start, len) {
        Ok(x) => x,
        Err(o) => return o,
    };
    if let Some(at) = p.srh {
        if let Err(o) = check_srh(pkt, at, opts.hmac.as_ref()) {
            return o;
        }
    }
    if p.upper != proxy.inner.protocol() {
        return upper_layer(start, &p, opts);
    }
    decap_to(pkt, start, &p, proxy.inner, proxy.to_sf)
}

/// End.AS, traffic back from the SF: decrement the TTL / hop limit (per the
/// template) and push the cached headers.
pub fn end_as_return(buf: &mut [u8], start: usize, len: usize, proxy: &StaticProxy, flow_hash: u32) -> Outcome {
    if proxy.cache.is_l2() != (proxy.inner == Inner::Ethernet) {
        return Outcome::drop(DropReason::TemplateMismatch);
    }
    encap(buf, start, len, &proxy.cache, flow_hash, Some(proxy.inner))
}

/// Longest outer header chain an End.AD cache holds.
pub const AD_CACHE_LEN: usize = 1024;

/// The outer headers End.AD last saw for one SID. Fixed size, allocated
/// once. Where the packet to the SF and the one back may be handled by
/// different threads, keep the headers in a shared place and load them
/// here with [`DynamicProxyCache::fill`] (vswitch uses a seqlock).
#[derive(Clone)]
pub struct DynamicProxyCache {
    hdrs: [u8; AD_CACHE_LEN],
    len: u16,
}

impl Default for DynamicProxyCache {
    fn default() -> Self {
        DynamicProxyCache { hdrs: [0; AD_CACHE_LEN], len: 0 }
    }
}

impl core::fmt::Debug for DynamicProxyCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DynamicProxyCache").field("headers", &self.headers()).finish()
    }
}

impl DynamicProxyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached IPv6 header and extension headers (empty if none yet).
    pub fn headers(&self) -> &[u8] {
        &self.hdrs[..usize::from(self.len)]
    }

    /// True until the first packet went out.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the headers.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Replaces the headers with `len` bytes that `fill` writes, for a
    /// caller that keeps them elsewhere (vswitch shares one copy between
    /// its workers); `false`, and the cache left alone, when `len` is over
    /// [`AD_CACHE_LEN`].
    pub fn fill(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        if len > AD_CACHE_LEN {
            return false;
        }
        fill(&mut self.hdrs[..len]);
        self.len = len as u16;
        true
    }
}

/// An End.AD SID: the inner type and where the SF is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DynamicProxy {
    /// Inner packet type (IPv4 or IPv6; Ethernet works too).
    pub inner: Inner,
    /// Towards the SF.
    pub to_sf: Next,
}

/// End.AD towards the SF. Needs an SRH with Segments Left > 0 (else
/// Parameter Problem at Segments Left; without SRH, section 4.1.1) and an
/// inner packet of the proxy's type; then Segments Left - 1, DA = next
/// segment, the outer headers go into `cache` and the inner packet to the
/// SF.
pub fn end_ad(
    buf: &mut [u8],
    start: usize,
    len: usize,
    opts: &EndOpts<'_>,
    proxy: &DynamicProxy,
    cache: &mut DynamicProxyCache,
) -> Outcome {
    let out = end_ad_in_place(buf, start, len, opts, proxy);
    if let Outcome::Decap { span, .. } = out {
        let n = span.start - start;
        cache.hdrs[..n].copy_from_slice(&buf[start..span.start]);
        cache.len = n as u16;
    }
    out
}

/// End.AD without a [`DynamicProxyCache`]: as [`end_ad`], but the outer
/// headers to remember are left where they are, `buf[start..span.start]`
/// of the `Decap` outcome (at most [`AD_CACHE_LEN`] bytes), for a caller
/// that keeps them elsewhere and would copy them twice otherwise.
pub fn end_ad_in_place(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, proxy: &DynamicProxy) -> Outcome {
    let (pkt, p, at, sl) = match with_srh(buf, start, len, opts) {
        Ok(x) => x,
        Err(o) => return o,
    };
    if sl == 0 {
        return param_problem(DropReason::SegmentsLeftZero, 0, at.off + SEGMENTS_LEFT_OFFSET);
    }
    if p.upper != proxy.inner.protocol() {
        return upper_layer(start, &p, opts);
    }
    if p.fragment {
        return Outcome::drop(DropReason::OuterFragment);
    }
    if !inner_ok(proxy.inner, &pkt[p.upper_off..p.total]) {
        return Outcome::drop(DropReason::InnerMalformed);
    }
    if p.upper_off > AD_CACHE_LEN {
        return Outcome::drop(DropReason::ProxyCacheTooSmall);
    }
    let sl = sl - 1;
    let seg_at = at.off + 8 + 16 * usize::from(sl);
    let mut seg = [0u8; 16];
    seg.copy_from_slice(&pkt[seg_at..seg_at + 16]);
    pkt[at.off + SEGMENTS_LEFT_OFFSET] = sl;
    set_dst(pkt, &seg);
    Outcome::Decap {
        span: Span { start: start + p.upper_off, len: p.total - p.upper_off },
        inner: proxy.inner,
        next: proxy.to_sf,
    }
}

/// End.AD, traffic back from the SF: decrement the inner TTL / hop limit and
/// push the cached headers (their payload length rewritten).
pub fn end_ad_return(
    buf: &mut [u8],
    start: usize,
    len: usize,
    proxy: &DynamicProxy,
    cache: &DynamicProxyCache,
) -> Outcome {
    let pkt = match packet(buf, start, len) {
        Ok(p) => p,
        Err(o) => return o,
    };
    if cache.is_empty() {
        return Outcome::drop(DropReason::ProxyCacheEmpty);
    }
    let kind = match proxy.inner {
        Inner::Ethernet if inner_ok(Inner::Ethernet, pkt) => Inner::Ethernet,
        Inner::Ethernet => return Outcome::drop(DropReason::InnerMalformed),
        _ => match classify_ip(pkt) {
            Ok(k) if k == proxy.inner => k,
            Ok(_) => return Outcome::drop(DropReason::ProxyInnerType),
            Err(o) => return o,
        },
    };
    let info = InnerInfo::read(kind, pkt);
    if kind != Inner::Ethernet && info.ttl <= 1 {
        let icmp = if kind == Inner::Ipv4 { IcmpError::TtlExceededV4 } else { IcmpError::HopLimitExceeded };
        return drop_icmp(DropReason::InnerTtlExceeded, icmp);
    }
    let hdrs = cache.headers();
    if let Err(o) = room_for(hdrs.len(), start, len) {
        return o;
    }
    decrement_ttl(kind, pkt);
    push_raw(buf, start, len, hdrs)
}

/// End.AM towards the SF (masquerading): needs an SRH with Segments Left >
/// 0; hop limit - 1, Segments Left - 1, DA = Segment List\[0\]; the packet,
/// SRH included, goes to the SF.
pub fn end_am(buf: &mut [u8], start: usize, len: usize, opts: &EndOpts<'_>, to_sf: Next) -> Outcome {
    let (pkt, p, at, sl) = match with_srh(buf, start, len, opts) {
        Ok(x) => x,
        Err(o) => return o,
    };
    if sl == 0 {
        return param_problem(DropReason::SegmentsLeftZero, 0, at.off + SEGMENTS_LEFT_OFFSET);
    }
    if pkt[ip6::HOP_LIMIT] <= 1 {
        return drop_icmp(DropReason::HopLimitExceeded, IcmpError::HopLimitExceeded);
    }
    let mut last = [0u8; 16];
    last.copy_from_slice(&pkt[at.off + 8..at.off + 24]);
    pkt[at.off + SEGMENTS_LEFT_OFFSET] = sl - 1;
    set_dst(pkt, &last);
    pkt[ip6::HOP_LIMIT] -= 1;
    Outcome::Forward { span: Span { start, len: p.total }, dst: Ipv6Addr::from(last), next: to_sf }
}

/// End.AM, traffic back from the SF (de-masquerading, before any lookup):
/// an IPv6 packet with an SRH gets DA = Segment List\[Segments Left\] and is
/// looked up; one without SRH is forwarded as it is.
pub fn end_am_return(buf: &mut [u8], start: usize, len: usize) -> Outcome {
    let (pkt, p) = match parsed(buf, start, len) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let span = Span { start, len: p.total };
    let Some(at) = p.srh else {
        return Outcome::Forward { span, dst: Ipv6Addr::from(super::dst_of(pkt)), next: Next::Lookup };
    };
    if let Err(o) = check_srh(pkt, at, None) {
        return o;
    }
    let srh = Srh::new_unchecked(&pkt[at.off..at.off + at.len]);
    let Some(active) = srh.segment_bytes(usize::from(srh.segments_left())) else {
        // Segments Left = Last Entry + 1: a reduced SRH has no entry for it.
        return Outcome::drop(DropReason::Srh(SrhError::SegmentsLeftTooBig));
    };
    set_dst(pkt, &active);
    Outcome::Forward { span, dst: Ipv6Addr::from(active), next: Next::Lookup }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::EncapParams;
    use super::*;

    const ROOM: usize = 256;

    /// IPv6 2001:db8::1 > fc00:2:: with SRH <fc00:3::, fc00:2::, fc00:1::>
    /// SL 1 (the proxy SID fc00:2:: is active) around `inner` of type `nh`.
    fn sr_packet(nh: u8, sl: u8, inner: &[u8]) -> Vec<u8> {
        let mut p = ipv6_hdr(43, "2001:db8::1", "fc00:2::", 64);
        p.extend_from_slice(&srh(nh, sl, &["fc00:3::", "fc00:2::", "fc00:1::"]));
        p.extend_from_slice(inner);
        fix_len(&mut p);
        p
    }

    fn bytes(b: &[u8], o: &Outcome) -> Vec<u8> {
        match o {
            Outcome::Forward { span, .. } | Outcome::Decap { span, .. } => b[span.range()].to_vec(),
            _ => panic!("{o:?}"),
        }
    }

    #[test]
    fn static_proxy_round_trip() {
        let rest = [a6("fc00:3::")];
        let cache = EncapTemplate::new(&EncapParams::new(a6("2001:db8::1"), &rest)).unwrap();
        let proxy = StaticProxy { inner: Inner::Ipv4, to_sf: Next::Adjacency(4), cache };
        let inner = ipv4_udp(30, b"payload");
        let p = sr_packet(4, 1, &inner);
        let mut b = with_headroom(&p, ROOM);
        let o = end_as(&mut b, ROOM, p.len(), &EndOpts::default(), &proxy);
        assert_eq!(
            o,
            Outcome::Decap {
                span: Span { start: ROOM + 96, len: inner.len() },
                inner: Inner::Ipv4,
                next: Next::Adjacency(4)
            }
        );
        assert_eq!(bytes(&b, &o), inner);
        // Back from the SF: CACHE pushed, TTL 30 -> 29.
        let mut b = with_headroom(&inner, ROOM);
        let o = end_as_return(&mut b, ROOM, inner.len(), &proxy, 1);
        let out = bytes(&b, &o);
        assert!(matches!(o, Outcome::Forward { dst, next: Next::Lookup, .. } if dst == a6("fc00:3::")));
        assert_eq!((out[6], out[40], out[7]), (43, 4, 29));
        let mut want = inner.clone();
        decrement_ttl(Inner::Ipv4, &mut want);
        assert_eq!(want[8], 29);
        assert_eq!(out[64..], want[..]);
        // Wrong type each way.
        let v6 = ipv6_udp(5, b"");
        let mut b = with_headroom(&v6, ROOM);
        assert_eq!(end_as_return(&mut b, ROOM, v6.len(), &proxy, 1), Outcome::drop(DropReason::ProxyInnerType));
        let p = sr_packet(41, 1, &v6);
        let mut b = with_headroom(&p, ROOM);
        let o = end_as(&mut b, ROOM, p.len(), &EndOpts::default(), &proxy);
        assert_eq!(o.drop_reason(), Some(DropReason::UpperLayerNotAllowed));
        let l2 = StaticProxy { inner: Inner::Ethernet, ..proxy.clone() };
        assert_eq!(end_as_return(&mut b, ROOM, 20, &l2, 1), Outcome::drop(DropReason::TemplateMismatch));
    }

    #[test]
    fn dynamic_proxy_round_trip() {
        let proxy = DynamicProxy { inner: Inner::Ipv6, to_sf: Next::Interface(9) };
        let mut cache = DynamicProxyCache::new();
        let inner = ipv6_udp(30, b"dyn");
        let mut b = with_headroom(&inner, ROOM);
        assert_eq!(
            end_ad_return(&mut b, ROOM, inner.len(), &proxy, &cache),
            Outcome::drop(DropReason::ProxyCacheEmpty)
        );
        let p = sr_packet(41, 2, &inner);
        let mut b = with_headroom(&p, ROOM);
        let o = end_ad(&mut b, ROOM, p.len(), &EndOpts::default(), &proxy, &mut cache);
        assert_eq!(
            o,
            Outcome::Decap {
                span: Span { start: ROOM + 96, len: inner.len() },
                inner: Inner::Ipv6,
                next: Next::Interface(9)
            }
        );
        assert_eq!(cache.headers().len(), 96);
        // In place: the same outcome, the same headers left in the buffer.
        let mut b2 = with_headroom(&p, ROOM);
        assert_eq!(end_ad_in_place(&mut b2, ROOM, p.len(), &EndOpts::default(), &proxy), o);
        assert_eq!(&b2[ROOM..ROOM + 96], cache.headers());
        assert_eq!((cache.headers()[43], &cache.headers()[24..40]), (1, &a6("fc00:2::").octets()[..]));
        // Back: the cached headers return, payload length fixed, hop limit
        // of the inner packet 30 -> 29, outer hop limit as received.
        let mut b = with_headroom(&inner, ROOM);
        let o = end_ad_return(&mut b, ROOM, inner.len(), &proxy, &cache);
        let out = bytes(&b, &o);
        assert!(matches!(o, Outcome::Forward { dst, .. } if dst == a6("fc00:2::")));
        let mut want = p.clone();
        want[43] = 1;
        want[24..40].copy_from_slice(&a6("fc00:2::").octets());
        want[96 + 7] = 29;
        assert_eq!(out, want);
        // SL = 0: the proxy cannot be the last SID.
        let p0 = sr_packet(41, 0, &inner);
        let mut b = with_headroom(&p0, ROOM);
        let o = end_ad(&mut b, ROOM, p0.len(), &EndOpts::default(), &proxy, &mut cache);
        assert_eq!(o, param_problem(DropReason::SegmentsLeftZero, 0, 43));
        let mut v4 = with_headroom(&ipv4_udp(9, b""), ROOM);
        assert_eq!(end_ad_return(&mut v4, ROOM, 28, &proxy, &cache), Outcome::drop(DropReason::ProxyInnerType));
        let mut expiring = with_headroom(&ipv6_udp(1, b""), ROOM);
        assert_eq!(
            end_ad_return(&mut expiring, ROOM, 48, &proxy, &cache),
            drop_icmp(DropReason::InnerTtlExceeded, IcmpError::HopLimitExceeded)
        );
        cache.clear();
        assert!(cache.is_empty());
        // Headers kept elsewhere come back through fill.
        assert!(cache.fill(3, |b| b.copy_from_slice(&[1, 2, 3])));
        assert_eq!(cache.headers(), &[1, 2, 3]);
        assert!(!cache.fill(AD_CACHE_LEN + 1, |_| unreachable!()));
        assert_eq!(cache.headers().len(), 3);
    }

    #[test]
    fn masquerading_round_trip() {
        let payload = hex("04d2162e000c0000 61626364");
        let p = sr_packet(17, 2, &payload);
        let mut b = with_headroom(&p, ROOM);
        let o = end_am(&mut b, ROOM, p.len(), &EndOpts::default(), Next::Adjacency(5));
        assert_eq!(
            o,
            Outcome::Forward {
                span: Span { start: ROOM, len: p.len() },
                dst: a6("fc00:3::"),
                next: Next::Adjacency(5)
            }
        );
        let out = bytes(&b, &o);
        assert_eq!((out[43], out[7], &out[24..40]), (1, 63, &a6("fc00:3::").octets()[..]));
        // The SF sends it back unchanged: DA = Segment List[1] again.
        let mut b2 = with_headroom(&out, ROOM);
        let o = end_am_return(&mut b2, ROOM, out.len());
        assert!(matches!(o, Outcome::Forward { dst, next: Next::Lookup, .. } if dst == a6("fc00:2::")));
        let back = bytes(&b2, &o);
        let mut want = p.clone();
        want[43] = 1;
        want[7] = 63;
        assert_eq!(back, want);
        // Non-SR traffic passes through; SL 0 refuses to masquerade.
        let plain = {
            let mut x = ipv6_hdr(59, "2001:db8::1", "2001:db8::2", 3);
            fix_len(&mut x);
            x
        };
        let mut b3 = with_headroom(&plain, ROOM);
        assert!(matches!(end_am_return(&mut b3, ROOM, 40), Outcome::Forward { dst, .. } if dst == a6("2001:db8::2")));
        let p0 = sr_packet(17, 0, &payload);
        let mut b4 = with_headroom(&p0, ROOM);
        assert_eq!(
            end_am(&mut b4, ROOM, p0.len(), &EndOpts::default(), Next::Adjacency(5)),
            param_problem(DropReason::SegmentsLeftZero, 0, 43)
        );
    }
}
