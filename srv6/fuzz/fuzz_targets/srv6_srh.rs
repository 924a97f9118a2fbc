//! SRH parsing: validation, TLV walk, Repr round trip, HMAC fill/verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch_srv6::hmac::{self, HmacKeyTable, HmacMode, HmacPolicy};
use vswitch_srv6::srh::{Srh, SrhError, SrhRepr, Tlv};

fuzz_target!(|data: &[u8]| {
    let s = Srh::new_unchecked(data);
    let _ = (s.to_string(), s.validate_strict(), s.tlvs().count());
    for i in 0..=256 {
        let _ = s.segment(i);
    }
    let Ok(s) = Srh::new_checked(data) else {
        return;
    };
    assert!(s.header_len() <= data.len());
    assert!(usize::from(s.segments_left()) <= s.segment_count());
    assert_eq!(s.segments().len(), s.segment_count());
    assert_eq!(s.tlv_offset() + s.tlv_area().len(), s.header_len());
    for tlv in s.tlvs() {
        if let Tlv::Hmac(h) = tlv.expect("validated") {
            assert!(h.offset + 8 + h.hmac.len() <= s.header_len());
        }
    }
    let r = SrhRepr::parse(data).expect("validated");
    let mut out = vec![0u8; r.header_len()];
    assert_eq!(r.emit(&mut out), Ok(s.header_len()));
    assert_eq!(out, s.header());
    assert_eq!(SrhRepr::parse(&out), Ok(r));

    // HMAC: fill what can be filled, then it must verify.
    let mut keys = HmacKeyTable::new();
    keys.insert(1, b"fuzz").unwrap();
    let src = [7u8; 16];
    let policy = HmacPolicy { mode: HmacMode::Required, check_destination: false };
    match hmac::fill(&keys, &src, &mut out) {
        Ok(()) => {
            let s2 = Srh::new_checked(&out[..]).unwrap();
            assert_eq!(hmac::verify(&keys, policy, &src, &[0; 16], &s2), Ok(()));
        }
        Err(e) => assert!(matches!(e, SrhError::HmacMissing | SrhError::BadHmacTlv | SrhError::HmacUnknownKey)),
    }
    let _ = hmac::verify(&keys, policy, &src, &[0; 16], &s);
});
