//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Partial sums are plain integers holding a one's complement sum that has
//! not yet been folded to 16 bits or complemented, so the sums of several
//! pieces (pseudo header, header, payload) can simply be added together.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Partial one's complement sum of `data` read as big-endian 16-bit words.
///
/// An odd trailing byte is padded with a zero byte on the right, so only
/// concatenate sums of even-length pieces. The result is below 2^17, so
/// thousands of partial sums can be added in a `u32` before [`fold`].
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    // Eight bytes per step: a u64 word splits into two u32 halves whose sum
    // is congruent (mod 0xffff) to the sum of its four 16-bit words. Each step
    // adds < 2^33, so the accumulator cannot overflow below 16 GiB of input.
    let (words, rest) = data.as_chunks::<8>();
    let mut acc: u64 = 0;
    for w in words {
        let w = u64::from_be_bytes(*w);
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let (pairs, last) = rest.as_chunks::<2>();
    for p in pairs {
        acc += u64::from(u16::from_be_bytes(*p));
    }
    if let [b] = last {
        acc += u64::from(*b) << 8;
    }
    // Partly fold so the result stays small enough to add to other sums.
    let s = (acc & 0xffff_ffff) + (acc >> 32);
    let s = (s & 0xffff) + (s >> 16);
    ((s & 0xffff) + (s >> 16)) as u32
}

/// Folds the carries of a partial sum into 16 bits (no complement).
#[inline]
pub fn fold(sum: impl Into<u64>) -> u16 {
    let s: u64 = sum.into();
    let s = (s & 0xffff_ffff) + (s >> 32);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The Internet checksum of `data`: the complement of its folded sum.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Partial sum of the IPv4 pseudo header (RFC 768 / RFC 793).
#[inline]
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: u8, len: u32) -> u32 {
    let s = u32::from(*src);
    let d = u32::from(*dst);
    (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + u32::from(protocol) + (len >> 16) + (len & 0xffff)
}

/// Partial sum of the IPv6 pseudo header (RFC 8200 section 8.1).
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, len: u32) -> u32 {
    sum(&src.octets()) + sum(&dst.octets()) + u32::from(next_header) + (len >> 16) + (len & 0xffff)
}

/// Updates `old_checksum` after one 16-bit word changed from `old` to `new`.
///
/// RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`, which unlike eqn. 2 never
/// turns a valid checksum into the negative zero 0xFFFF. The one case it
/// cannot see: if every covered word other than the checksum is zero after
/// the change, a full recomputation gives 0xFFFF while eqn. 3 gives 0x0000
/// (equal in one's complement, but strict verifiers reject it). An IPv4
/// header can never be all zero; an ICMP message with no data can.
#[inline]
pub fn update_u16(old_checksum: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!old_checksum) + u32::from(!old) + u32::from(new);
    !fold(s)
}

/// Updates `old_checksum` after one aligned 32-bit field (e.g. an IPv4
/// address) changed from `old` to `new`.
#[inline]
pub fn update_u32(old_checksum: u16, old: u32, new: u32) -> u16 {
    let s = u32::from(!old_checksum)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!old as u16)
        + (new >> 16)
        + (new & 0xffff);
    !fold(s)
}

/// True if `header` (a whole IPv4 header, checksum field included) sums to
/// 0xFFFF. Fast path for input nodes: reads 32-bit words, so it returns
/// false unless `header.len()` is a multiple of 4 and at least 20.
#[inline]
pub fn ipv4_header_checksum_ok(header: &[u8]) -> bool {
    if header.len() < 20 || !header.len().is_multiple_of(4) {
        return false;
    }
    let (words, _) = header.as_chunks::<4>();
    let mut acc: u64 = 0;
    for w in words {
        acc += u64::from(u32::from_be_bytes(*w));
    }
    fold(acc) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Straightforward RFC 1071 reference: 16 bits at a time.
    fn reference_sum(data: &[u8]) -> u64 {
        let mut acc = 0u64;
        for c in data.chunks(2) {
            let hi = u64::from(c[0]) << 8;
            let lo = c.get(1).map_or(0, |&b| u64::from(b));
            acc += hi | lo;
        }
        acc
    }

    // Wikipedia's IPv4 header example; its checksum field holds 0xb861.
    const WIKI_HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
        0x00, 0xc7,
    ];

    #[test]
    fn known_ipv4_header() {
        assert!(ipv4_header_checksum_ok(&WIKI_HDR));
        assert_eq!(fold(sum(&WIKI_HDR)), 0xffff);
        let mut h = WIKI_HDR;
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0xb861);
        h[10] = 0xb8;
        h[11] = 0x62;
        assert!(!ipv4_header_checksum_ok(&h));
    }

    #[test]
    fn fast_path_rejects_bad_lengths() {
        assert!(!ipv4_header_checksum_ok(&WIKI_HDR[..16]));
        let mut long = [0u8; 22];
        long[..20].copy_from_slice(&WIKI_HDR);
        assert!(!ipv4_header_checksum_ok(&long));
        assert!(!ipv4_header_checksum_ok(&[0u8; 20]));
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: words 0001 f203 f4f5 f6f7 sum to 0xddf2 folded.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[]), 0);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn fold_accepts_u32_and_u64() {
        assert_eq!(fold(0x0001_ffffu32), 0x0001);
        assert_eq!(fold(u64::MAX), 0xffff);
        assert_eq!(fold(u32::MAX), 0xffff);
        assert_eq!(fold(0u32), 0);
        assert_eq!(fold(0x1_0000_0000u64), 1);
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 section 4: eqn. 2 yields 0xFFFF here, eqn. 3 the correct 0x0000.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
        // The documented blind spot: data becomes all zero (an ICMP echo
        // request 08 00 .. turned into a reply with id = seq = 0). Full
        // recomputation says 0xffff, eqn. 3 says the equivalent 0x0000.
        assert_eq!(checksum(&[0, 0, 0, 0, 0, 0, 0, 0]), 0xffff);
        assert_eq!(update_u16(0xf7ff, 0x0800, 0x0000), 0x0000);
    }

    #[test]
    fn pseudo_headers() {
        let s = Ipv4Addr::new(192, 168, 0, 1);
        let d = Ipv4Addr::new(192, 168, 0, 199);
        let expect = 0xc0a8 + 0x0001 + 0xc0a8 + 0x00c7 + 17 + 0x5f;
        assert_eq!(pseudo_header_v4(&s, &d, 17, 0x5f), expect);
        let s6: Ipv6Addr = "fe80::1".parse().unwrap();
        let d6: Ipv6Addr = "ff02::1".parse().unwrap();
        let expect6 = 0xfe80 + 1 + 0xff02 + 1 + 58 + 1 + 0x0002;
        assert_eq!(pseudo_header_v6(&s6, &d6, 58, 0x1_0002), expect6);
    }

    fn to_bytes(words: &[u16]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    /// Full checksum of `words` with word `at` used as the checksum field.
    fn full(words: &[u16], at: usize) -> u16 {
        let mut bytes = to_bytes(words);
        bytes[2 * at] = 0;
        bytes[2 * at + 1] = 0;
        checksum(&bytes)
    }

    proptest! {
        #[test]
        fn sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(u64::from(fold(sum(&data))), u64::from(fold(reference_sum(&data))));
            prop_assert!(sum(&data) < 1 << 17);
        }

        #[test]
        fn even_pieces_add(a in proptest::collection::vec(any::<u8>(), 0..64),
                           b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut a = a;
            if a.len() % 2 == 1 { a.pop(); }
            let whole: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
            prop_assert_eq!(fold(sum(&a) + sum(&b)), fold(sum(&whole)));
        }

        #[test]
        fn update_u16_matches_full(mut words in proptest::collection::vec(any::<u16>(), 3..30),
                                   idx in any::<prop::sample::Index>(), new in any::<u16>()) {
            // Word 0 is the checksum field; change some other word.
            words[0] = 0;
            let i = 1 + idx.index(words.len() - 1);
            let old_ck = full(&words, 0);
            let old = words[i];
            words[i] = new;
            let want = full(&words, 0);
            let got = update_u16(old_ck, old, new);
            if words[1..].iter().all(|&w| w == 0) {
                // All-zero data: full gives +0 (0xffff after complement),
                // eqn. 3 the equivalent -0; both verify.
                prop_assert!(got == 0 || got == 0xffff);
            } else {
                prop_assert_eq!(got, want);
                words[0] = got;
                prop_assert_eq!(fold(sum(&to_bytes(&words))), 0xffff);
            }
        }

        #[test]
        fn update_u16_from_zero_checksum(mut words in proptest::collection::vec(any::<u16>(), 3..30),
                                         new in any::<u16>()) {
            // Choose word 2 so the data sums to 0xffff: the checksum is then
            // 0x0000, which may also be stored as its equivalent 0xFFFF.
            words[0] = 0;
            words[2] = 0;
            words[2] = !fold(sum(&to_bytes(&words)));
            prop_assert_eq!(full(&words, 0), 0x0000);
            let old = words[1];
            words[1] = new;
            prop_assume!(words[1..].iter().any(|&w| w != 0));
            let want = full(&words, 0);
            prop_assert_eq!(update_u16(0x0000, old, new), want);
            prop_assert_eq!(update_u16(0xffff, old, new), want);
        }

        #[test]
        fn update_u16_to_zero_checksum(mut words in proptest::collection::vec(any::<u16>(), 3..30)) {
            // The new word makes the data sum to 0xffff, so the right answer
            // is 0x0000; RFC 1624 eqn. 2 would produce 0xFFFF here.
            words[0] = 0;
            let old_ck = full(&words, 0);
            let old = words[1];
            words[1] = 0;
            let new = !fold(sum(&to_bytes(&words)));
            words[1] = new;
            prop_assert_eq!(full(&words, 0), 0x0000);
            prop_assert_eq!(update_u16(old_ck, old, new), 0x0000);
        }

        #[test]
        fn update_u32_matches_full(mut words in proptest::collection::vec(any::<u16>(), 4..30),
                                   idx in any::<prop::sample::Index>(), new in any::<u32>()) {
            words[0] = 0;
            let i = 1 + idx.index(words.len() - 2);
            let old_ck = full(&words, 0);
            let old = (u32::from(words[i]) << 16) | u32::from(words[i + 1]);
            words[i] = (new >> 16) as u16;
            words[i + 1] = new as u16;
            prop_assume!(words[1..].iter().any(|&w| w != 0));
            prop_assert_eq!(update_u32(old_ck, old, new), full(&words, 0));
        }

        #[test]
        fn fast_path_matches_generic(words in proptest::collection::vec(any::<u32>(), 5..16)) {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            prop_assert_eq!(ipv4_header_checksum_ok(&bytes), fold(sum(&bytes)) == 0xffff);
        }
    }
}
