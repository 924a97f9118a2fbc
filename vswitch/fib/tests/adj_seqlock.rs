//! Seqlock adjacency records under concurrent update: the writers store
//! self-consistent patterns (every field derived from one counter); readers
//! must never see a mix of two patterns, nor go back in time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use vswitch_fib::adj::{AdjConfig, AdjKind, AdjWriter, Adjacency};
use vswitch_fib::quiesce::Quiescence;

/// The record for counter `n` (`n` < 2^32): every byte is a function of `n`.
fn pattern(n: u32) -> Adjacency {
    let b = n as u8;
    Adjacency {
        kind: AdjKind::from_u8(b % 8).unwrap(),
        sw_if: n,
        mtu: (n as u16) ^ 0xA5A5,
        next_hop: [b; 16],
        rewrite_len: b % 33,
        rewrite: [b ^ 0x5A; 32],
    }
}

fn consistent(a: &Adjacency) -> bool {
    *a == pattern(a.sw_if)
}

#[test]
fn readers_never_see_torn_adjacencies() {
    const SLOTS: u32 = 4;
    const UPDATES: u32 = 40_000;
    let q = Quiescence::new();
    let mut w = AdjWriter::new(AdjConfig { max_adjacencies: 64 }, q).unwrap();
    let idx: Vec<u32> = (0..SLOTS).map(|_| w.add(pattern(0)).unwrap()).collect();
    let table = Arc::clone(w.table());
    // Shared like an ARP-resolving worker and the control thread would.
    let w = Arc::new(Mutex::new(w));
    let stop = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let table = Arc::clone(&table);
            let stop = Arc::clone(&stop);
            let idx = idx.clone();
            thread::spawn(move || {
                let mut last = vec![0u32; idx.len()];
                let mut reads = 0u64;
                while !stop.load(Ordering::Acquire) {
                    for (k, &i) in idx.iter().enumerate() {
                        let a = table.get(i);
                        assert!(consistent(&a), "torn record: {a:?}");
                        // each slot's counter only grows (per writer below)
                        assert!(a.sw_if >= last[k], "went back: {} < {}", a.sw_if, last[k]);
                        last[k] = a.sw_if;
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    // two writer threads, each owning half of the slots, sharing the mutex
    let writers: Vec<_> = (0..2usize)
        .map(|t| {
            let w = Arc::clone(&w);
            let idx = idx.clone();
            thread::spawn(move || {
                for n in 1..=UPDATES {
                    let mut g = w.lock().unwrap();
                    for &i in idx.iter().skip(t).step_by(2) {
                        g.update(i, pattern(n)).unwrap();
                    }
                    drop(g);
                    if n % 256 == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for h in writers {
        h.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    for h in readers {
        assert!(h.join().expect("reader panicked") > 0);
    }
    for &i in &idx {
        assert_eq!(table.get(i), pattern(UPDATES));
    }
}

#[test]
fn pattern_check_detects_a_mix() {
    // The consistency check is not vacuous: a record mixing two patterns fails.
    let mut a = pattern(7);
    a.rewrite = pattern(8).rewrite;
    assert!(!consistent(&a));
    let mut b = pattern(300);
    b.mtu = pattern(301).mtu;
    assert!(!consistent(&b));
    assert!(consistent(&pattern(12345)));
}
