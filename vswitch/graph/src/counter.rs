//! Single-writer counters readable from any thread.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter written by one worker and read by anyone.
///
/// `add` is a plain load and store (no locked instruction): only the owning
/// worker writes, so no increment is lost, and readers on other threads see
/// a value that is at most slightly stale.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker may call this.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one.
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1)
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn adds_and_reads_across_threads() {
        let c = std::sync::Arc::new(super::Counter::default());
        let w = std::sync::Arc::clone(&c);
        std::thread::spawn(move || (0..1000).for_each(|_| w.inc())).join().unwrap();
        assert_eq!(c.get(), 1000);
    }
}
