//! Ethernet header, MAC address text round trip, and VLAN tag chains.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch_wire::{ethertype, EthernetFrame, MacAddr, VlanTag};

fuzz_target!(|data: &[u8]| {
    // Any string must parse or fail cleanly; a parsed MAC prints back to a
    // string that parses to the same address.
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(m) = s.parse::<MacAddr>() {
            assert_eq!(m.to_string().parse::<MacAddr>(), Ok(m));
        }
    }

    let Ok(eth) = EthernetFrame::new_checked(data) else {
        assert!(data.len() < EthernetFrame::<&[u8]>::HEADER_LEN);
        return;
    };
    let _ = eth.to_string();
    assert_eq!(eth.payload().len(), data.len() - 14);
    for mac in [eth.dst_addr(), eth.src_addr()] {
        assert_eq!(mac.is_unicast(), !mac.is_multicast());
        assert!(!mac.is_broadcast() || mac.is_multicast());
        assert_eq!(mac.is_zero(), mac.as_u64() == 0);
        assert_eq!(mac.as_u64() >> 48, 0);
        assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
    }
    assert_eq!(MacAddr::from_bytes(&data[..6]), eth.dst_addr());

    // Emit the same header into a copy through the setters.
    let mut copy = vec![0u8; data.len()];
    let mut f = EthernetFrame::new_unchecked(&mut copy[..]);
    f.set_dst_addr(eth.dst_addr());
    f.set_src_addr(eth.src_addr());
    f.set_ethertype(eth.ethertype());
    f.payload_mut().copy_from_slice(eth.payload());
    assert_eq!(copy, data);

    // Walk a tag chain (bounded, like a real input node would be).
    let mut et = eth.ethertype();
    let mut rest = eth.into_payload();
    for _ in 0..8 {
        if !ethertype::is_vlan(et) {
            break;
        }
        let tag = match VlanTag::new_checked(rest) {
            Ok(t) => t,
            Err(_) => {
                assert!(rest.len() < 4);
                break;
            }
        };
        let _ = tag.to_string();
        assert!(tag.vid() < 4096 && tag.pcp() < 8);
        assert_eq!(tag.tci() & 0x0fff, tag.vid());
        assert_eq!(tag.payload().len(), rest.len() - 4);
        let mut t = [0u8; 4];
        let mut v = VlanTag::new_unchecked(&mut t[..]);
        v.set_pcp(tag.pcp());
        v.set_dei(tag.dei());
        v.set_vid(tag.vid());
        v.set_ethertype(tag.ethertype());
        assert_eq!(t, rest[..4]);
        et = tag.ethertype();
        rest = tag.into_payload();
    }
});
