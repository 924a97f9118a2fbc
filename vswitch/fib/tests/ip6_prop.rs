//! Property test: random IPv6 insert/remove sequences (biased to overlapping
//! prefixes at every level) against an independent `PrefixMap` oracle, for
//! each first-level width.

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use prefix_trie::PrefixMap;
use proptest::prelude::*;
use vswitch_fib::ip6::{Ip6LpmConfig, Ip6LpmWriter, MAX_VALUE};
use vswitch_fib::quiesce::Quiescence;

const BASES: [u128; 6] = [
    0x2001_0db8_0000_0000_0000_0000_0000_0000,
    0x2001_0db8_0000_0001_0000_0000_0000_0000,
    0x2001_0db8_ffff_0000_0000_0000_0000_0000,
    0,
    u128::MAX,
    0xfe80_0000_0000_0000_0000_0000_0000_0001,
];
const SHIFTS: [u32; 10] = [0, 8, 16, 56, 64, 72, 80, 96, 104, 112];

fn prefix() -> impl Strategy<Value = Ipv6Net> {
    let len = prop_oneof![
        1 => Just(0u8),
        2 => 1u8..16,
        3 => 16u8..=24,
        3 => 25u8..32,
        5 => Just(32u8),
        5 => 33u8..48,
        6 => Just(48u8),
        5 => 49u8..64,
        6 => Just(64u8),
        4 => 65u8..120,
        4 => 120u8..=128,
        3 => Just(128u8),
    ];
    let addr = prop_oneof![
        5 => (0..BASES.len(), 0..SHIFTS.len(), any::<u16>())
            .prop_map(|(b, s, r)| BASES[b] ^ (u128::from(r) << SHIFTS[s])),
        1 => any::<u128>(),
    ];
    (addr, len).prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Ipv6Net, u32),
    RemoveExisting(usize),
    Remove(Ipv6Net),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prefix(), 0..=MAX_VALUE).prop_map(|(p, v)| Op::Insert(p, v)),
        3 => any::<usize>().prop_map(Op::RemoveExisting),
        1 => prefix().prop_map(Op::Remove),
    ]
}

fn oracle(m: &PrefixMap<Ipv6Net, u32>, a: u128) -> Option<u32> {
    m.get_lpm(&Ipv6Net::new(Ipv6Addr::from(a), 128).unwrap()).map(|(_, v)| *v)
}

fn boundaries(p: &Ipv6Net) -> [u128; 5] {
    let n = u128::from(p.network());
    let b = u128::from(p.broadcast());
    [n, b, n.wrapping_sub(1), b.wrapping_add(1), n | ((b - n) / 2)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn ip6_matches_oracle(
        l0 in prop_oneof![Just(8u8), Just(16u8), Just(24u8)],
        ops in prop::collection::vec(op(), 1..64),
        extra in prop::collection::vec(any::<u128>(), 16),
    ) {
        let cfg = Ip6LpmConfig { l0_bits: l0, max_groups: 4096, max_records: 4096 };
        let mut w = Ip6LpmWriter::new(cfg, Quiescence::new()).unwrap();
        let mut model: PrefixMap<Ipv6Net, u32> = PrefixMap::new();
        let mut inserted: Vec<Ipv6Net> = Vec::new();
        let mut probes: Vec<u128> = extra.clone();
        probes.extend(BASES);
        for op in &ops {
            let touched = match *op {
                Op::Insert(p, v) => {
                    let old = w.insert(p, v).unwrap();
                    prop_assert_eq!(old, model.insert(p, v));
                    inserted.push(p);
                    p
                }
                Op::RemoveExisting(i) => {
                    if inserted.is_empty() { continue; }
                    let p = inserted[i % inserted.len()];
                    prop_assert_eq!(w.remove(&p), model.remove(&p));
                    p
                }
                Op::Remove(p) => {
                    prop_assert_eq!(w.remove(&p), model.remove(&p));
                    p
                }
            };
            for a in boundaries(&touched) {
                prop_assert_eq!(w.lookup(a), oracle(&model, a), "after {:?} at {}", op, Ipv6Addr::from(a));
            }
            probes.extend(boundaries(&touched));
        }
        prop_assert_eq!(w.len(), model.len());
        for (p, _) in model.iter() {
            probes.extend(boundaries(&p));
        }
        let mut batch = vec![None; probes.len()];
        w.table().lookup_batch(&probes, &mut batch);
        for (i, &a) in probes.iter().enumerate() {
            let want = oracle(&model, a);
            prop_assert_eq!(w.lookup(a), want, "addr {}", Ipv6Addr::from(a));
            prop_assert_eq!(batch[i], want, "batch addr {}", Ipv6Addr::from(a));
        }
        // each route sits in at most one live record
        let s = w.stats();
        prop_assert!(s.records_in_use as usize <= model.len(), "{:?}", s);
        let keys: Vec<Ipv6Net> = model.keys().collect();
        for p in keys {
            prop_assert_eq!(w.remove(&p), model.remove(&p));
        }
        prop_assert!(w.is_empty());
        for &a in &probes {
            prop_assert_eq!(w.lookup(a), None);
        }
        let s = w.stats();
        prop_assert_eq!((s.groups_in_use, s.records_in_use), (0, 0), "{:?}", s);
        w.reclaim();
        let s = w.stats();
        prop_assert_eq!((s.groups_quarantined, s.records_quarantined), (0, 0));
    }
}
