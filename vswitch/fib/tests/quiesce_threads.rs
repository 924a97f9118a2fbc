//! The grace-period mechanism with real threads.
//!
//! A writer repeatedly publishes a new "object" (an index into an array of
//! atomics), retires the previous one, and once `safe_epoch()` says the
//! retirement is past a grace period it *poisons* the retired object and
//! reuses it. Readers load the published index and then read the object
//! several times, with delays, before their next quiescent point: they must
//! never see the object change or be poisoned under them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use vswitch_fib::quiesce::Quiescence;

const SLOTS: usize = 8;
const POISON: u64 = u64::MAX;

#[test]
fn retired_objects_are_not_reused_under_a_reader() {
    let q = Quiescence::new();
    let objects: Arc<Vec<AtomicU64>> = Arc::new((0..SLOTS).map(|_| AtomicU64::new(POISON)).collect());
    let current = Arc::new(AtomicUsize::new(0));
    objects[0].store(1, Ordering::Release);
    let stop = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..2)
        .map(|r| {
            let h = q.register_reader();
            let (objects, current, stop) = (Arc::clone(&objects), Arc::clone(&current), Arc::clone(&stop));
            thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Acquire) {
                    h.quiescent();
                    let i = current.load(Ordering::Acquire);
                    let v = objects[i].load(Ordering::Acquire);
                    assert_ne!(v, POISON, "published object already poisoned");
                    for spin in 0..(50 + 50 * r) {
                        if spin % 16 == 0 {
                            thread::yield_now();
                        }
                        assert_eq!(objects[i].load(Ordering::Acquire), v, "object reused under a reader");
                    }
                    rounds += 1;
                    // sometimes go offline for a while: must not block the writer
                    if rounds.is_multiple_of(64) {
                        h.offline();
                        thread::yield_now();
                        h.online();
                    }
                }
                rounds
            })
        })
        .collect();

    // writer
    let mut free: Vec<usize> = (1..SLOTS).collect();
    let mut quarantine: VecDeque<(u64, usize)> = VecDeque::new();
    let mut reused = 0u64;
    for gen in 2..20_000u64 {
        let slot = loop {
            let safe = q.safe_epoch();
            while quarantine.front().is_some_and(|&(stamp, _)| stamp <= safe) {
                let (_, s) = quarantine.pop_front().unwrap();
                objects[s].store(POISON, Ordering::Release);
                free.push(s);
                reused += 1;
            }
            if let Some(s) = free.pop() {
                break s;
            }
            thread::yield_now();
        };
        objects[slot].store(gen, Ordering::Release);
        let old = current.swap(slot, Ordering::AcqRel);
        let stamp = q.advance();
        quarantine.push_back((stamp, old));
    }
    stop.store(true, Ordering::Release);
    for h in readers {
        assert!(h.join().expect("reader panicked") > 0);
    }
    assert!(reused > 10_000, "objects were recycled ({reused})");
}

#[test]
fn offline_reader_does_not_hold_back_and_online_one_does() {
    let q = Quiescence::new();
    let (to_reader, from_main) = mpsc::channel::<&'static str>();
    let (to_main, from_reader) = mpsc::channel::<()>();
    let qr = Arc::clone(&q);
    let t = thread::spawn(move || {
        let h = qr.register_reader();
        to_main.send(()).unwrap();
        for cmd in from_main {
            match cmd {
                "offline" => h.offline(),
                "online" => h.online(),
                "quiescent" => h.quiescent(),
                _ => break,
            }
            to_main.send(()).unwrap();
        }
    });
    let cmd = |c: &'static str| {
        to_reader.send(c).unwrap();
        from_reader.recv().unwrap();
    };
    from_reader.recv().unwrap(); // registered, online
    let s1 = q.advance();
    assert!(q.safe_epoch() < s1, "online reader holds back the grace period");
    cmd("quiescent");
    assert!(q.safe_epoch() >= s1);
    cmd("offline");
    let s2 = q.advance();
    assert!(q.safe_epoch() >= s2, "offline reader does not hold back");
    q.synchronize(); // returns at once: nobody online
    cmd("online");
    let s3 = q.advance();
    assert!(q.safe_epoch() < s3);
    // synchronize() waits for the reader thread's next quiescent point
    let qs = Arc::clone(&q);
    let sync = thread::spawn(move || qs.synchronize());
    while !sync.is_finished() {
        cmd("quiescent");
    }
    sync.join().unwrap();
    to_reader.send("stop").unwrap();
    drop(to_reader);
    t.join().unwrap();
    assert_eq!(q.reader_count(), 0, "dropping the handle unregisters it");
}
