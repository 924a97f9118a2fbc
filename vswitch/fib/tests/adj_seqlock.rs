//! Seqlock adjacency records under concurrent update: the writers store
//! self-consistent patterns (every field derived from one counter); readers
//! must never see a mix of two patterns, nor go back in time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    // Both bounds must be reached before the run stops (counts, not time).
    const MIN_UPDATES: u32 = 400_000;
    const MIN_READS: u64 = 4_000_000;
    let q = Quiescence::new();
    let mut w = AdjWriter::new(AdjConfig { max_adjacencies: 64 }, q).unwrap();
    let idx: Vec<u32> = (0..SLOTS).map(|_| w.add(pattern(0)).unwrap()).collect();
    let table = Arc::clone(w.table());
    // Shared like an ARP-resolving worker and the control thread would.
    let w = Arc::new(Mutex::new(w));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let updates = Arc::new(AtomicU64::new(0));

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (table, stop, reads) = (Arc::clone(&table), Arc::clone(&stop), Arc::clone(&reads));
            let idx = idx.clone();
            thread::spawn(move || {
                let mut last = vec![0u32; idx.len()];
                while !stop.load(Ordering::Acquire) {
                    for (k, &i) in idx.iter().enumerate() {
                        let a = table.get(i);
                        assert!(consistent(&a), "torn record: {a:?}");
                        // each slot's counter only grows (one writer per slot)
                        assert!(a.sw_if >= last[k], "went back: {} < {}", a.sw_if, last[k]);
                        last[k] = a.sw_if;
                    }
                    reads.fetch_add(idx.len() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // two writer threads, each owning half of the slots, sharing the mutex
    let writers: Vec<_> = (0..2usize)
        .map(|t| {
            let (w, stop, updates) = (Arc::clone(&w), Arc::clone(&stop), Arc::clone(&updates));
            let idx = idx.clone();
            thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    let mut g = w.lock().unwrap();
                    for &i in idx.iter().skip(t).step_by(2) {
                        g.update(i, pattern(n)).unwrap();
                    }
                    drop(g);
                    updates.fetch_add(1, Ordering::Relaxed);
                    if n.is_multiple_of(256) {
                        thread::yield_now();
                    }
                }
                n
            })
        })
        .collect();
    // (a reader that failed stops counting: stop then and report it)
    while (reads.load(Ordering::Relaxed) < MIN_READS || updates.load(Ordering::Relaxed) < u64::from(MIN_UPDATES))
        && !readers.iter().any(|h| h.is_finished())
    {
        thread::yield_now();
    }
    stop.store(true, Ordering::Release);
    let last: Vec<u32> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    for h in readers {
        h.join().expect("reader panicked");
    }
    for (k, &i) in idx.iter().enumerate() {
        assert_eq!(table.get(i), pattern(last[k % 2]));
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
