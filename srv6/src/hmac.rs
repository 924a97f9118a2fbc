//! The SRH HMAC TLV (RFC 8754 section 2.1.2): HMAC-SHA256 generation and
//! verification against a table of pre-shared keys.
//!
//! The text that is hashed is, in this order (RFC 8754 section 2.1.2.1,
//! and byte for byte what Linux's `seg6_hmac_compute` builds):
//!
//! ```text
//! IPv6 source address (16) | Last Entry (1) | Flags (1) | HMAC Key ID (4, big endian) | Segment List[0..=LE] (16 each)
//! ```
//!
//! The key is the pre-shared secret, the algorithm HMAC-SHA256 (Linux's
//! `SEG6_HMAC_ALGO_SHA256`), and the 32-octet digest fills the HMAC field.
//!
//! Differences from Linux, all on the verifying side: Linux finds the HMAC
//! TLV only when the SRH flags carry its legacy H bit
//! ([`srh_flags::LINUX_HMAC`](crate::srh::srh_flags::LINUX_HMAC)) and the TLV
//! is the last 40 octets of the SRH; this module takes the first HMAC TLV
//! wherever it is, as RFC 8754 does. Linux refuses to hash more than 14
//! segments (its 256-byte text buffer); this module has no limit. Linux does
//! not do the destination address check of RFC 8754 section 2.1.2.1; here it
//! is [`HmacPolicy::check_destination`].

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::srh::{tlv_type, Srh, SrhError};

/// Length of an HMAC-SHA256 digest, and of the HMAC field.
pub const HMAC_LEN: usize = 32;
/// Length of a whole HMAC TLV carrying 32 octets: type, length, D/reserved,
/// key id, HMAC (Length = 38).
pub const HMAC_TLV_LEN: usize = 40;
/// Longest secret accepted (Linux's `SEG6_HMAC_SECRET_LEN`).
pub const MAX_SECRET_LEN: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// Why a key could not be added to a [`HmacKeyTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyError {
    /// Key id 0 is reserved (Linux refuses it too).
    ZeroKeyId,
    /// The secret is empty or longer than [`MAX_SECRET_LEN`].
    BadSecretLength,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::ZeroKeyId => "HMAC key id 0 is reserved",
            KeyError::BadSecretLength => "HMAC secret must be 1 to 64 bytes",
        })
    }
}

impl std::error::Error for KeyError {}

/// Pre-shared keys by HMAC Key ID, all HMAC-SHA256. Built by the control
/// plane; lookups allocate nothing. Each entry keeps an HMAC state already
/// keyed with its secret, so a packet costs only the hashing of its text.
#[derive(Clone, Default)]
pub struct HmacKeyTable {
    // Sorted by key id.
    keys: Vec<(u32, HmacSha256)>,
}

impl fmt::Debug for HmacKeyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets.
        f.debug_list().entries(self.keys.iter().map(|(id, _)| id)).finish()
    }
}

impl HmacKeyTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the key `key_id`.
    pub fn insert(&mut self, key_id: u32, secret: &[u8]) -> Result<(), KeyError> {
        if key_id == 0 {
            return Err(KeyError::ZeroKeyId);
        }
        if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
            return Err(KeyError::BadSecretLength);
        }
        let mac = <HmacSha256 as KeyInit>::new_from_slice(secret).map_err(|_| KeyError::BadSecretLength)?;
        match self.keys.binary_search_by_key(&key_id, |e| e.0) {
            Ok(i) => self.keys[i].1 = mac,
            Err(i) => self.keys.insert(i, (key_id, mac)),
        }
        Ok(())
    }

    /// Removes `key_id`; true if it was present.
    pub fn remove(&mut self, key_id: u32) -> bool {
        match self.keys.binary_search_by_key(&key_id, |e| e.0) {
            Ok(i) => {
                self.keys.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// True if `key_id` has a key.
    pub fn contains(&self, key_id: u32) -> bool {
        self.get(key_id).is_some()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn get(&self, key_id: u32) -> Option<&HmacSha256> {
        self.keys.binary_search_by_key(&key_id, |e| e.0).ok().map(|i| &self.keys[i].1)
    }

    /// HMAC over the fields given one by one; `Err(HmacUnknownKey)` if
    /// `key_id` has no key.
    pub fn compute_parts(
        &self,
        key_id: u32,
        src: &[u8; 16],
        last_entry: u8,
        flags: u8,
        segments: &[[u8; 16]],
    ) -> Result<[u8; HMAC_LEN], SrhError> {
        let mut mac = self.get(key_id).ok_or(SrhError::HmacUnknownKey)?.clone();
        mac.update(src);
        mac.update(&[last_entry, flags]);
        mac.update(&key_id.to_be_bytes());
        for s in segments {
            mac.update(s);
        }
        Ok(mac.finalize().into_bytes().into())
    }

    /// HMAC of `srh` (which must have passed [`Srh::check_len`]) as sent by
    /// `src`, with key `key_id`.
    pub fn compute<T: AsRef<[u8]>>(
        &self,
        key_id: u32,
        src: &[u8; 16],
        srh: &Srh<T>,
    ) -> Result<[u8; HMAC_LEN], SrhError> {
        self.compute_parts(key_id, src, srh.last_entry(), srh.flags(), srh.segments())
    }
}

/// When to demand an HMAC; the three values of Linux's
/// `seg6_require_hmac` sysctl.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HmacMode {
    /// Never check (Linux -1).
    #[default]
    Off,
    /// Check the HMAC TLV when there is one (Linux 0).
    IfPresent,
    /// Drop packets without a valid HMAC TLV (Linux 1).
    Required,
}

/// The HMAC policy of an SR endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HmacPolicy {
    /// When to check.
    pub mode: HmacMode,
    /// Also do RFC 8754 section 2.1.2.1's destination check: pass if the D
    /// flag is set and Segments Left > Last Entry (reduced SRH), or if
    /// Segments Left <= Last Entry and the IPv6 destination equals Segment
    /// List\[Segments Left\]. Linux does not do this check.
    pub check_destination: bool,
}

impl HmacPolicy {
    /// No HMAC processing.
    pub const OFF: HmacPolicy = HmacPolicy { mode: HmacMode::Off, check_destination: false };
}

/// Verifies the HMAC TLV of a received SRH (`src`/`dst`: the IPv6 source and
/// destination as received, before any endpoint processing). Errors, in
/// the order checked: TLV errors (`BadTlvLength`, `BadHmacTlv`),
/// `HmacMissing`, `BadHmacTlv` (HMAC not 32 octets), `HmacDestination`,
/// `HmacUnknownKey`, `HmacMismatch`. The comparison is constant time.
pub fn verify<T: AsRef<[u8]>>(
    keys: &HmacKeyTable,
    policy: HmacPolicy,
    src: &[u8; 16],
    dst: &[u8; 16],
    srh: &Srh<T>,
) -> Result<(), SrhError> {
    if policy.mode == HmacMode::Off {
        return Ok(());
    }
    let Some(tlv) = srh.hmac_tlv()? else {
        return match policy.mode {
            HmacMode::Required => Err(SrhError::HmacMissing),
            _ => Ok(()),
        };
    };
    if tlv.hmac.len() != HMAC_LEN {
        return Err(SrhError::BadHmacTlv);
    }
    if policy.check_destination {
        let sl = srh.segments_left();
        let ok =
            if sl > srh.last_entry() { tlv.d_flag } else { srh.segment_bytes(usize::from(sl)).as_ref() == Some(dst) };
        if !ok {
            return Err(SrhError::HmacDestination);
        }
    }
    let mut mac = keys.get(tlv.key_id).ok_or(SrhError::HmacUnknownKey)?.clone();
    mac.update(src);
    mac.update(&[srh.last_entry(), srh.flags()]);
    mac.update(&tlv.key_id.to_be_bytes());
    for s in srh.segments() {
        mac.update(s);
    }
    mac.verify_slice(tlv.hmac).map_err(|_| SrhError::HmacMismatch)
}

/// An HMAC TLV of [`HMAC_TLV_LEN`] octets with the given fields.
pub fn hmac_tlv(d_flag: bool, key_id: u32, hmac: &[u8; HMAC_LEN]) -> [u8; HMAC_TLV_LEN] {
    let mut t = [0u8; HMAC_TLV_LEN];
    t[0] = tlv_type::HMAC;
    t[1] = (HMAC_TLV_LEN - 2) as u8;
    t[2] = if d_flag { 0x80 } else { 0 };
    t[4..8].copy_from_slice(&key_id.to_be_bytes());
    t[8..].copy_from_slice(hmac);
    t
}

/// Computes and writes the HMAC field of the first HMAC TLV of the SRH at
/// the start of `srh`, as sent by `src`, with the key named by the TLV
/// (Linux's `seg6_push_hmac`). The SRH must validate and its HMAC TLV carry
/// 32 octets.
pub fn fill(keys: &HmacKeyTable, src: &[u8; 16], srh: &mut [u8]) -> Result<(), SrhError> {
    let view = Srh::new_checked(&*srh)?;
    let tlv = view.hmac_tlv()?.ok_or(SrhError::HmacMissing)?;
    if tlv.hmac.len() != HMAC_LEN {
        return Err(SrhError::BadHmacTlv);
    }
    let at = tlv.offset + 8;
    let digest = keys.compute(tlv.key_id, src, &view)?;
    srh[at..at + HMAC_LEN].copy_from_slice(&digest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srh::SrhRepr;
    use core::net::Ipv6Addr;

    fn a(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2 checks the HMAC-SHA256 primitive itself.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let d: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(d[..], unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")[..]);
    }

    // The SRH whose HMAC the Linux-layout test checks: segments
    // [fc00:3::, fc00:2::, fc00:1::] (Segment List[0] first), flags 0x08,
    // key id 0x01020304, source 2001:db8::1, secret b"vswitch-srv6-secret".
    //
    // The expected digest was computed once, independently of this crate,
    // with Python's hmac module over the text laid out by hand:
    //   /usr/bin/python3 -c "import hmac, hashlib, ipaddress
    //   i = ipaddress.IPv6Address
    //   t = i('2001:db8::1').packed + bytes([2, 8]) + bytes([1, 2, 3, 4]) + b''.join(
    //       i(a).packed for a in ['fc00:3::', 'fc00:2::', 'fc00:1::'])
    //   print(hmac.new(b'vswitch-srv6-secret', t, hashlib.sha256).hexdigest())"
    const PY_DIGEST: &str = "57616ba202f47906205050cb721889c607847893a85024da6a970c7d231b39b8";

    fn table() -> HmacKeyTable {
        let mut t = HmacKeyTable::new();
        t.insert(0x0102_0304, b"vswitch-srv6-secret").unwrap();
        t
    }

    fn srh_bytes(d_flag: bool, sl: u8) -> Vec<u8> {
        let segs = [a("fc00:3::"), a("fc00:2::"), a("fc00:1::")];
        let tlv = hmac_tlv(d_flag, 0x0102_0304, &[0; 32]);
        let r = SrhRepr { next_header: 41, segments_left: sl, flags: 0x08, tag: 0, segments: &segs, tlvs: &tlv };
        let mut b = vec![0u8; r.header_len()];
        r.emit(&mut b).unwrap();
        b
    }

    #[test]
    fn linux_text_layout_matches_python() {
        let t = table();
        let src = a("2001:db8::1");
        let b = srh_bytes(false, 1);
        let srh = Srh::new_checked(&b[..]).unwrap();
        assert_eq!(t.compute(0x0102_0304, &src, &srh).unwrap()[..], unhex(PY_DIGEST)[..]);
        // The same text built by hand (the layout of seg6_hmac_compute).
        let mut text = Vec::new();
        text.extend_from_slice(&src);
        text.extend_from_slice(&[2, 0x08, 1, 2, 3, 4]);
        for s in ["fc00:3::", "fc00:2::", "fc00:1::"] {
            text.extend_from_slice(&a(s));
        }
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(b"vswitch-srv6-secret").unwrap();
        mac.update(&text);
        let d: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(d[..], unhex(PY_DIGEST)[..]);
    }

    #[test]
    fn fill_then_verify() {
        let t = table();
        let src = a("2001:db8::1");
        let mut b = srh_bytes(false, 1);
        fill(&t, &src, &mut b).unwrap();
        assert_eq!(b[b.len() - 32..], unhex(PY_DIGEST)[..]);
        // Segments Left and the DA are not covered: any SL verifies.
        let srh = Srh::new_checked(&b[..]).unwrap();
        let dst = a("fc00:2::");
        for mode in [HmacMode::IfPresent, HmacMode::Required] {
            let p = HmacPolicy { mode, check_destination: true };
            assert_eq!(verify(&t, p, &src, &dst, &srh), Ok(()));
        }
        // Wrong source, flipped segment bit, flags changed: mismatch.
        let p = HmacPolicy { mode: HmacMode::Required, check_destination: false };
        assert_eq!(verify(&t, p, &a("2001:db8::2"), &dst, &srh), Err(SrhError::HmacMismatch));
        let mut bad = b.clone();
        bad[8] ^= 1;
        assert_eq!(verify(&t, p, &src, &dst, &Srh::new_checked(&bad[..]).unwrap()), Err(SrhError::HmacMismatch));
        let mut bad = b.clone();
        bad[5] = 0;
        assert_eq!(verify(&t, p, &src, &dst, &Srh::new_checked(&bad[..]).unwrap()), Err(SrhError::HmacMismatch));
        // Destination check: DA must be Segment List[SL] = fc00:2::.
        let pd = HmacPolicy { mode: HmacMode::Required, check_destination: true };
        assert_eq!(verify(&t, pd, &src, &a("fc00:9::"), &srh), Err(SrhError::HmacDestination));
        assert_eq!(verify(&t, p, &src, &a("fc00:9::"), &srh), Ok(()));
        // Unknown key.
        let mut other = HmacKeyTable::new();
        other.insert(9, b"x").unwrap();
        assert_eq!(verify(&other, p, &src, &dst, &srh), Err(SrhError::HmacUnknownKey));
        // Off never looks.
        assert_eq!(verify(&other, HmacPolicy::OFF, &src, &dst, &srh), Ok(()));
    }

    #[test]
    fn reduced_srh_destination_check() {
        // SL = 3 > LE = 2: only passes with the D flag.
        let t = table();
        let src = a("2001:db8::1");
        let p = HmacPolicy { mode: HmacMode::Required, check_destination: true };
        for d in [false, true] {
            let mut b = srh_bytes(d, 3);
            fill(&t, &src, &mut b).unwrap();
            let srh = Srh::new_checked(&b[..]).unwrap();
            let want = if d { Ok(()) } else { Err(SrhError::HmacDestination) };
            assert_eq!(verify(&t, p, &src, &a("fc00:4::"), &srh), want);
        }
    }

    #[test]
    fn missing_and_malformed() {
        let t = table();
        let segs = [a("fc00::1")];
        let r = SrhRepr { next_header: 41, segments_left: 0, flags: 0, tag: 0, segments: &segs, tlvs: &[] };
        let mut b = vec![0u8; r.header_len()];
        r.emit(&mut b).unwrap();
        let srh = Srh::new_checked(&b[..]).unwrap();
        let src = [0u8; 16];
        let req = HmacPolicy { mode: HmacMode::Required, check_destination: false };
        let opt = HmacPolicy { mode: HmacMode::IfPresent, check_destination: false };
        assert_eq!(verify(&t, req, &src, &src, &srh), Err(SrhError::HmacMissing));
        assert_eq!(verify(&t, opt, &src, &src, &srh), Ok(()));
        assert_eq!(fill(&t, &src, &mut b), Err(SrhError::HmacMissing));
        // An HMAC TLV with a 16-octet HMAC: not SHA-256 sized.
        let mut tlv = [0u8; 24];
        tlv[..2].copy_from_slice(&[5, 22]);
        let r = SrhRepr { tlvs: &tlv, ..r };
        let mut b = vec![0u8; r.header_len()];
        r.emit(&mut b).unwrap();
        let srh = Srh::new_checked(&b[..]).unwrap();
        assert_eq!(verify(&t, opt, &src, &src, &srh), Err(SrhError::BadHmacTlv));
        assert_eq!(fill(&t, &src, &mut b), Err(SrhError::BadHmacTlv));
    }

    #[test]
    fn key_table() {
        let mut t = HmacKeyTable::new();
        assert_eq!(t.insert(0, b"k"), Err(KeyError::ZeroKeyId));
        assert_eq!(t.insert(1, b""), Err(KeyError::BadSecretLength));
        assert_eq!(t.insert(1, &[0; 65]), Err(KeyError::BadSecretLength));
        t.insert(5, &[7; 64]).unwrap();
        t.insert(1, b"a").unwrap();
        t.insert(1, b"b").unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.contains(1) && t.contains(5) && !t.contains(2));
        let one = t.compute_parts(1, &[0; 16], 0, 0, &[[0; 16]]).unwrap();
        let mut u = HmacKeyTable::new();
        u.insert(1, b"b").unwrap();
        assert_eq!(u.compute_parts(1, &[0; 16], 0, 0, &[[0; 16]]).unwrap(), one);
        assert!(t.remove(1) && !t.remove(1));
        assert_eq!(t.compute_parts(1, &[0; 16], 0, 0, &[]), Err(SrhError::HmacUnknownKey));
        assert_eq!(format!("{t:?}"), "[5]");
        assert!(!t.is_empty());
    }
}
