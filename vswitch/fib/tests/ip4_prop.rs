//! Property test: random insert/remove sequences (biased to overlapping
//! prefixes) against an independent `prefix_trie::PrefixMap` oracle.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use proptest::prelude::*;
use vswitch_fib::ip4::{Ip4LpmConfig, Ip4LpmWriter, MAX_VALUE};
use vswitch_fib::quiesce::Quiescence;

const BASES: [u32; 7] = [
    0x0A01_0200, // 10.1.2.0
    0x0A01_02FF, // 10.1.2.255
    0x0A01_FF80, // 10.1.255.128
    0xC0A8_0000, // 192.168.0.0
    0x0000_0000,
    0xFFFF_FFFF,
    0x7F00_0001,
];
const PERTURB: [u32; 4] = [0, 0xFF, 0x3FF, 0xFFFF];

/// Prefixes shorter than /8 touch millions of tbl24 entries (slow in debug
/// builds), so they get a small weight (`short`: 0 or 1).
fn prefix(short: u32) -> impl Strategy<Value = Ipv4Net> {
    let len = prop_oneof![
        short => Just(0u8),
        short => 1u8..8,
        6 => Just(8u8),
        8 => 9u8..16,
        12 => Just(16u8),
        16 => 17u8..24,
        20 => Just(24u8),
        28 => 25u8..=32,
        8 => Just(32u8),
    ];
    let addr = prop_oneof![
        4 => (0..BASES.len(), 0..PERTURB.len(), any::<u32>())
            .prop_map(|(b, m, r)| BASES[b] ^ (r & PERTURB[m])),
        1 => any::<u32>(),
    ];
    (addr, len).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Ipv4Net, u32),
    /// Remove the n-th (mod len) prefix inserted so far.
    RemoveExisting(usize),
    /// Remove a prefix that may or may not be present.
    Remove(Ipv4Net),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prefix(1), 0..=MAX_VALUE).prop_map(|(p, v)| Op::Insert(p, v)),
        3 => any::<usize>().prop_map(Op::RemoveExisting),
        1 => prefix(1).prop_map(Op::Remove),
    ]
}

fn oracle(m: &PrefixMap<Ipv4Net, u32>, a: u32) -> Option<u32> {
    m.get_lpm(&Ipv4Net::new(Ipv4Addr::from(a), 32).unwrap()).map(|(_, v)| *v)
}

fn boundaries(p: &Ipv4Net) -> [u32; 5] {
    let n = u32::from(p.network());
    let b = u32::from(p.broadcast());
    [n, b, n.wrapping_sub(1), b.wrapping_add(1), n | ((b - n) / 2)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn ip4_matches_oracle(ops in prop::collection::vec(op(), 1..48), extra in prop::collection::vec(any::<u32>(), 16)) {
        let mut w = Ip4LpmWriter::new(Ip4LpmConfig { max_tbl8_groups: 256 }, Quiescence::new()).unwrap();
        let mut model: PrefixMap<Ipv4Net, u32> = PrefixMap::new();
        let mut inserted: Vec<Ipv4Net> = Vec::new();
        let mut probes: Vec<u32> = extra.clone();
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
            // the changed prefix's boundaries, right away
            for a in boundaries(&touched) {
                prop_assert_eq!(w.lookup(a), oracle(&model, a), "after {:?} at {}", op, Ipv4Addr::from(a));
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
            prop_assert_eq!(w.lookup(a), want, "addr {}", Ipv4Addr::from(a));
            prop_assert_eq!(batch[i], want, "batch addr {}", Ipv4Addr::from(a));
        }
        // remove everything: no tbl8 group may leak
        let keys: Vec<Ipv4Net> = model.keys().collect();
        for p in keys {
            prop_assert_eq!(w.remove(&p), model.remove(&p));
        }
        prop_assert!(w.is_empty());
        for &a in &probes {
            prop_assert_eq!(w.lookup(a), None);
        }
        let s = w.stats();
        prop_assert_eq!(s.tbl8_in_use, 0, "{:?}", s);
        w.reclaim();
        prop_assert_eq!(w.stats().tbl8_quarantined, 0);
    }

    #[test]
    fn ip4_bulk_equals_incremental(routes in prop::collection::vec((prefix(0), 0..=MAX_VALUE), 0..64), probes in prop::collection::vec(any::<u32>(), 32)) {
        let q = Quiescence::new();
        let mut a = Ip4LpmWriter::new(Ip4LpmConfig { max_tbl8_groups: 128 }, q.clone()).unwrap();
        let mut b = Ip4LpmWriter::new(Ip4LpmConfig { max_tbl8_groups: 128 }, q).unwrap();
        a.insert_bulk(routes.iter().copied()).unwrap();
        for &(p, v) in &routes {
            b.insert(p, v).unwrap();
        }
        let mut all = probes.clone();
        for (p, _) in &routes {
            all.extend(boundaries(p));
        }
        for x in all {
            prop_assert_eq!(a.lookup(x), b.lookup(x));
        }
        prop_assert_eq!(a.stats().tbl8_in_use, b.stats().tbl8_in_use);
    }
}
