//! Readers look up continuously on other threads while the writer changes
//! routes (or load-balance paths).
//!
//! The writer applies a known sequence of single changes and publishes how
//! many it has completed (`version`). A reader that read `version` = v1 before
//! its lookups and v2 after may only see answers that some state in
//! `v1..=v2+1` gives. Values are unique per (route, change), so a stale
//! answer, a torn entry, or a lookup through a tbl8 group / record / bucket
//! block that was reused too early (refilled for a different prefix) fails the
//! test. The tables are sized so small that freed memory must be recycled
//! through the quarantine many times during the run.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use ipnet::{Ipv4Net, Ipv6Net};
use vswitch_fib::ip4::{Ip4LpmConfig, Ip4LpmWriter};
use vswitch_fib::ip6::{Ip6LpmConfig, Ip6LpmWriter};
use vswitch_fib::lb::{expand_paths, LbConfig, LbWriter, Path};
use vswitch_fib::quiesce::Quiescence;
use vswitch_fib::FibError;

const OPS: u64 = 4_000;
const READERS: usize = 2;

type Reader = Box<dyn FnMut() -> Vec<Option<u32>> + Send>;

/// The tests spin reader threads; run them one at a time (2-core machines).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `write(k)` for `k in 0..OPS` (retrying while memory is exhausted
/// because everything free is still quarantined) while reader threads run
/// their lookups and check every answer against `expected(state, probe)`.
fn harness<E>(
    q: &Arc<Quiescence>,
    readers: Vec<Reader>,
    expected: E,
    mut write: impl FnMut(u64) -> Result<(), FibError>,
) where
    E: Fn(u64, usize) -> Option<u32> + Send + Sync + Clone + 'static,
{
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let version = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = readers
        .into_iter()
        .map(|mut read| {
            let handle = q.register_reader();
            let version = Arc::clone(&version);
            let stop = Arc::clone(&stop);
            let expected = expected.clone();
            thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Acquire) {
                    handle.quiescent();
                    let v1 = version.load(Ordering::Acquire);
                    let got = read();
                    let v2 = version.load(Ordering::Acquire);
                    for (i, g) in got.iter().enumerate() {
                        assert!(
                            (v1..=v2 + 1).any(|s| expected(s, i) == *g),
                            "probe {i}: got {g:?}, possible states {v1}..={} (first ones: {:?})",
                            v2 + 1,
                            (v1..=(v2 + 1).min(v1 + 8)).map(|s| expected(s, i)).collect::<Vec<_>>()
                        );
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let mut retries = 0u64;
    for k in 0..OPS {
        loop {
            match write(k) {
                Ok(()) => break,
                Err(
                    FibError::Tbl8Exhausted { .. }
                    | FibError::Ip6GroupsExhausted { .. }
                    | FibError::Ip6RecordsExhausted { .. }
                    | FibError::BucketsExhausted { .. },
                ) => {
                    retries += 1;
                    thread::yield_now();
                }
                Err(e) => panic!("op {k}: {e}"),
            }
        }
        version.store(k + 1, Ordering::Release);
        if k % 32 == 0 {
            thread::yield_now();
        }
    }
    stop.store(true, Ordering::Release);
    for t in threads {
        assert!(t.join().expect("reader panicked") > 0);
    }
    eprintln!("writer waited for a grace period {retries} times");
}

/// Unique value of route `id` as set by op `k`.
fn val(id: u32, k: u64) -> u32 {
    (id << 19) | (k as u32 & 0x7_ffff)
}

/// Route values after `s` ops of the 5-op cycle
/// (5c: insert P2, 5c+1: insert P3, 5c+2: remove P2, 5c+3: remove P3,
/// 5c+4: change P1's value); P4, the shortest, never changes.
fn state(s: u64) -> (u32, Option<u32>, Option<u32>) {
    let (c, m) = (s / 5, s % 5);
    let p1 = if c == 0 { val(1, 0x7_ffff) } else { val(1, c * 5 - 1) };
    let p2 = matches!(m, 1 | 2).then(|| val(2, c * 5));
    let p3 = matches!(m, 2 | 3).then(|| val(3, c * 5 + 1));
    (p1, p2, p3)
}

/// Longest match among P4 ⊃ P1 ⊃ P2 and P4 ⊃ P3 in state `s`.
fn answer(s: u64, in_p4: bool, in_p1: bool, in_p2: bool, in_p3: bool) -> Option<u32> {
    let (v1, v2, v3) = state(s);
    if in_p2 && v2.is_some() {
        v2
    } else if in_p3 && v3.is_some() {
        v3
    } else if in_p1 {
        Some(v1)
    } else {
        in_p4.then_some(val(4, 0))
    }
}

#[test]
fn ip4_readers_see_old_or_new() {
    let p4: Ipv4Net = "10.0.0.0/8".parse().unwrap();
    let p1: Ipv4Net = "10.1.0.0/16".parse().unwrap();
    let p2: Ipv4Net = "10.1.1.128/25".parse().unwrap();
    let p3: Ipv4Net = "10.2.2.0/26".parse().unwrap();
    let q = Quiescence::new();
    // Two tbl8 groups: P2's and P3's groups are recycled through quarantine.
    let mut w = Ip4LpmWriter::new(Ip4LpmConfig { max_tbl8_groups: 2 }, q.clone()).unwrap();
    w.insert(p4, val(4, 0)).unwrap();
    w.insert(p1, state(0).0).unwrap();

    let probes: Vec<u32> = [
        "10.1.1.200",
        "10.1.1.128",
        "10.1.1.5",
        "10.1.1.255",
        "10.2.2.10",
        "10.2.2.63",
        "10.2.2.100",
        "10.1.2.200",
        "10.3.0.1",
        "11.0.0.1",
    ]
    .iter()
    .map(|s| u32::from(s.parse::<Ipv4Addr>().unwrap()))
    .collect();
    let readers: Vec<Reader> = (0..READERS)
        .map(|_| {
            let t = Arc::clone(w.table());
            let probes = probes.clone();
            let mut batch = vec![None; probes.len()];
            Box::new(move || {
                // single lookups, then the batched path, both checked
                let mut got: Vec<Option<u32>> = probes.iter().map(|&a| t.lookup(a)).collect();
                t.lookup_batch(&probes, &mut batch);
                got.extend_from_slice(&batch);
                got
            }) as Reader
        })
        .collect();
    let n = probes.len();
    let expected = move |s: u64, i: usize| {
        let a = Ipv4Addr::from(probes[i % n]);
        answer(s, p4.contains(&a), p1.contains(&a), p2.contains(&a), p3.contains(&a))
    };
    harness(&q, readers, expected, |k| {
        match k % 5 {
            0 => w.insert(p2, val(2, k)).map(drop)?,
            1 => w.insert(p3, val(3, k)).map(drop)?,
            2 => assert!(w.remove(&p2).is_some()),
            3 => assert!(w.remove(&p3).is_some()),
            _ => w.insert(p1, val(1, k)).map(drop)?,
        }
        Ok(())
    });
    let s = w.stats();
    assert_eq!(s.tbl8_in_use, 0);
    assert!(s.tbl8_high_water <= 2, "{s:?}");
}

#[test]
fn ip6_readers_see_old_or_new() {
    // All under one first-level slot: toggling P2/P3 splits and collapses
    // groups and records.
    let p4: Ipv6Net = "2001:db8::/32".parse().unwrap();
    let p1: Ipv6Net = "2001:db8:1::/48".parse().unwrap();
    let p2: Ipv6Net = "2001:db8:1:1::/64".parse().unwrap();
    let p3: Ipv6Net = "2001:db8:2:2::/64".parse().unwrap();
    let q = Quiescence::new();
    let cfg = Ip6LpmConfig { l0_bits: 24, max_groups: 8, max_records: 8 };
    let mut w = Ip6LpmWriter::new(cfg, q.clone()).unwrap();
    w.insert(p4, val(4, 0)).unwrap();
    w.insert(p1, state(0).0).unwrap();

    let probes: Vec<u128> = [
        "2001:db8:1:1::5",
        "2001:db8:1:1:ffff:ffff:ffff:ffff",
        "2001:db8:1:2::1",
        "2001:db8:1::",
        "2001:db8:2:2::7",
        "2001:db8:2:3::7",
        "2001:db8:ffff::1",
        "2001:db9::1",
        "::1",
    ]
    .iter()
    .map(|s| u128::from(s.parse::<Ipv6Addr>().unwrap()))
    .collect();
    let readers: Vec<Reader> = (0..READERS)
        .map(|_| {
            let t = Arc::clone(w.table());
            let probes = probes.clone();
            let mut batch = vec![None; probes.len()];
            Box::new(move || {
                let mut got: Vec<Option<u32>> = probes.iter().map(|&a| t.lookup(a)).collect();
                t.lookup_batch(&probes, &mut batch);
                got.extend_from_slice(&batch);
                got
            }) as Reader
        })
        .collect();
    let n = probes.len();
    let expected = move |s: u64, i: usize| {
        let a = Ipv6Addr::from(probes[i % n]);
        answer(s, p4.contains(&a), p1.contains(&a), p2.contains(&a), p3.contains(&a))
    };
    harness(&q, readers, expected, |k| {
        match k % 5 {
            0 => w.insert(p2, val(2, k)).map(drop)?,
            1 => w.insert(p3, val(3, k)).map(drop)?,
            2 => assert!(w.remove(&p2).is_some()),
            3 => assert!(w.remove(&p3).is_some()),
            _ => w.insert(p1, val(1, k)).map(drop)?,
        }
        Ok(())
    });
    let s = w.stats();
    assert!(s.groups_high_water <= 8 && s.records_high_water <= 8, "{s:?}");
}

#[test]
fn lb_readers_see_old_or_new_buckets() {
    // Two objects alternate between path sets of different bucket counts, in
    // a bucket space so small that blocks are recycled constantly.
    let sets: [Vec<Path>; 3] = [
        (100..104).map(|a| Path::new(a, 1)).collect(),
        vec![Path::new(200, 3), Path::new(201, 1), Path::new(202, 1)],
        vec![Path::new(300, 1), Path::new(301, 2)],
    ];
    let expanded: Vec<Vec<u32>> = sets.iter().map(|s| expand_paths(s).unwrap()).collect();
    let q = Quiescence::new();
    let mut w = LbWriter::new(LbConfig { max_lbs: 2, max_buckets: 192 }, q.clone()).unwrap();
    let a = w.add(&sets[0]).unwrap();
    let b = w.add(&sets[1]).unwrap();
    // op k updates object k%2 to set (k/2 + 1 + k%2) % 3
    let set_of = |lb: u32, s: u64| -> usize {
        // last op that touched `lb` before state s
        let mut last = None;
        if s > 0 {
            let k = s - 1;
            let k = if k % 2 == u64::from(lb) { k } else { k.checked_sub(1).unwrap_or(u64::MAX) };
            if k != u64::MAX {
                last = Some(k);
            }
        }
        match last {
            Some(k) => ((k / 2 + 1 + k % 2) % 3) as usize,
            None => lb as usize, // initial sets: a = 0, b = 1
        }
    };
    let hashes: Vec<u32> = (0..64u32).map(|i| i.wrapping_mul(0x9E37_79B9)).collect();
    let readers: Vec<Reader> = (0..READERS)
        .map(|_| {
            let t = Arc::clone(w.table());
            let hashes = hashes.clone();
            Box::new(move || {
                let mut got = Vec::with_capacity(hashes.len() * 2);
                for lb in [a, b] {
                    got.extend(hashes.iter().map(|&h| Some(t.choose(lb, h))));
                }
                got
            }) as Reader
        })
        .collect();
    let nh = hashes.len();
    let expected = move |s: u64, i: usize| {
        let lb = (i / nh) as u32;
        let h = hashes[i % nh];
        let e = &expanded[set_of(lb, s)];
        Some(e[h as usize & (e.len() - 1)])
    };
    harness(&q, readers, expected, |k| {
        let lb = (k % 2) as u32;
        w.update(lb, &sets[((k / 2 + 1 + k % 2) % 3) as usize])
    });
}
