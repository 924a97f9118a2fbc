//! The End.AD cache: the outer headers of the last packet an End.AD SID
//! sent to its service function, shared by every worker.
//!
//! Shared, not per worker: the packet that goes to the SF and the one that
//! comes back are received on different interfaces, which different
//! workers may poll, so a per-worker cache would leave the return worker
//! with nothing (or with stale headers). A seqlock, so that neither side
//! takes a lock per packet:
//!
//! - the writer (sr-localsid-d, per packet sent to the SF) first compares
//!   the headers with those cached, payload length aside; in steady state
//!   (one chain through the SF) they are equal and it writes nothing, so
//!   the cache line stays shared between the workers. When they differ it
//!   takes the sequence from even to odd with one compare-exchange, writes,
//!   and makes it even again. A writer that finds another one writing
//!   skips its update: the other's headers are as recent.
//! - the reader (sr-proxy-return) copies the headers out between two reads
//!   of the sequence and retries a few times if a writer was at work.
//!
//! The headers are kept as `AtomicU64` words written and read with relaxed
//! ordering (plain moves on x86-64 and AArch64), which keeps the racing
//! copy defined behaviour in safe Rust; the sequence's acquire / release
//! orders them.

use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use vswitch_srv6::behavior::{DynamicProxyCache, AD_CACHE_LEN};

const WORDS: usize = AD_CACHE_LEN / 8;

/// Word 0 without the IPv6 payload length (bytes 4 and 5), which changes
/// with every packet and is rewritten on the way back anyway.
const WORD0_MASK: u64 = u64::from_ne_bytes([0xff, 0xff, 0xff, 0xff, 0, 0, 0xff, 0xff]);

/// How often a reader retries while writers keep changing the headers.
const READ_TRIES: usize = 4;

/// What [`AdCache::load`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdLoad {
    /// The headers are in the caller's cache.
    Loaded,
    /// No packet went to the SF yet (the caller's cache is cleared).
    Empty,
    /// Writers kept changing the headers while they were read.
    Busy,
}

/// One End.AD SID's shared cache (see the module docs).
pub struct AdCache {
    seq: AtomicU64,
    len: AtomicUsize,
    words: Box<[AtomicU64]>,
}

impl Default for AdCache {
    fn default() -> Self {
        AdCache {
            seq: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            words: (0..WORDS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl std::fmt::Debug for AdCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdCache").field("len", &self.len.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

/// Word `i` of `hdrs`, zero-padded past its end. Whole words are one
/// load (a variable-length copy would be a memcpy call per word).
#[inline(always)]
fn word(hdrs: &[u8], i: usize) -> u64 {
    let from = i * 8;
    match hdrs.get(from..from + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
        Some(w) => u64::from_ne_bytes(w),
        None => {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(hdrs.get(from..).unwrap_or(&[])) {
                *d = *s;
            }
            u64::from_ne_bytes(w)
        }
    }
}

impl AdCache {
    /// An empty cache.
    pub fn new() -> AdCache {
        AdCache::default()
    }

    /// The length of the cached headers (0: none yet).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no headers were cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the cache holds `hdrs` (payload length aside), read inside
    /// the sequence `s`.
    #[inline(always)]
    fn holds(&self, s: u64, hdrs: &[u8]) -> bool {
        if self.len.load(Ordering::Relaxed) != hdrs.len() {
            return false;
        }
        let n = hdrs.len().div_ceil(8);
        let same = (0..n).all(|i| {
            let mask = if i == 0 { WORD0_MASK } else { u64::MAX };
            (self.words[i].load(Ordering::Relaxed) ^ word(hdrs, i)) & mask == 0
        });
        fence(Ordering::Acquire);
        same && self.seq.load(Ordering::Relaxed) == s
    }

    /// Makes `hdrs` (at most [`AD_CACHE_LEN`] bytes) the cached headers,
    /// unless they already are or another worker is writing.
    #[inline]
    pub fn publish(&self, hdrs: &[u8]) {
        if hdrs.is_empty() || hdrs.len() > AD_CACHE_LEN {
            return;
        }
        let s = self.seq.load(Ordering::Acquire);
        if s & 1 == 1 || self.holds(s, hdrs) {
            return;
        }
        if self.seq.compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return;
        }
        // The odd sequence is visible before any word changes.
        fence(Ordering::Release);
        for i in 0..hdrs.len().div_ceil(8) {
            self.words[i].store(word(hdrs, i), Ordering::Relaxed);
        }
        self.len.store(hdrs.len(), Ordering::Relaxed);
        self.seq.store(s + 2, Ordering::Release);
    }

    /// Copies the cached headers into `into` (a worker's scratch cache).
    #[inline]
    pub fn load(&self, into: &mut DynamicProxyCache) -> AdLoad {
        for _ in 0..READ_TRIES {
            let s = self.seq.load(Ordering::Acquire);
            if s & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let n = self.len.load(Ordering::Relaxed).min(AD_CACHE_LEN);
            if n == 0 {
                into.clear();
                return AdLoad::Empty;
            }
            into.fill(n, |b| {
                let mut chunks = b.chunks_exact_mut(8);
                let mut i = 0;
                for chunk in &mut chunks {
                    chunk.copy_from_slice(&self.words[i].load(Ordering::Relaxed).to_ne_bytes());
                    i += 1;
                }
                let rest = chunks.into_remainder();
                if !rest.is_empty() {
                    let w = self.words[i].load(Ordering::Relaxed).to_ne_bytes();
                    for (d, s) in rest.iter_mut().zip(w) {
                        *d = s;
                    }
                }
            });
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s {
                return AdLoad::Loaded;
            }
        }
        AdLoad::Busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn hdrs(len: usize, fill: u8) -> Vec<u8> {
        let mut h = vec![fill; len];
        h[0] = 0x60;
        h
    }

    #[test]
    fn publish_then_load() {
        let c = AdCache::new();
        let mut out = DynamicProxyCache::new();
        assert_eq!(c.load(&mut out), AdLoad::Empty);
        let h = hdrs(99, 7);
        c.publish(&h);
        assert_eq!((c.load(&mut out), out.headers()), (AdLoad::Loaded, &h[..]));
        // Only the payload length differs: nothing written.
        let seq = c.seq.load(Ordering::Relaxed);
        let mut h2 = h.clone();
        h2[4] = 0x12;
        c.publish(&h2);
        assert_eq!(c.seq.load(Ordering::Relaxed), seq);
        // Anything else differs: written, the sequence moves by two.
        h2[50] = 1;
        c.publish(&h2);
        assert_eq!(c.seq.load(Ordering::Relaxed), seq + 2);
        assert_eq!((c.load(&mut out), out.headers()), (AdLoad::Loaded, &h2[..]));
        c.publish(&hdrs(40, 1));
        assert_eq!((c.load(&mut out), out.headers().len()), (AdLoad::Loaded, 40));
        c.publish(&[0; AD_CACHE_LEN + 1]);
        assert_eq!(c.len(), 40);
    }

    #[test]
    fn readers_never_see_a_mix_of_two_writes() {
        // Two writers alternate between two header chains of different
        // lengths and contents; every load is one or the other, whole.
        let c = Arc::new(AdCache::new());
        let (a, b) = (hdrs(96, 0xaa), hdrs(120, 0x55));
        c.publish(&a);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (c, stop, a, b) = (c.clone(), stop.clone(), a.clone(), b.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        c.publish(&a);
                        c.publish(&b);
                    }
                })
            })
            .collect();
        let mut out = DynamicProxyCache::new();
        let (mut loaded, mut busy) = (0, 0);
        for _ in 0..200_000 {
            match c.load(&mut out) {
                AdLoad::Loaded => {
                    loaded += 1;
                    assert!(out.headers() == &a[..] || out.headers() == &b[..], "torn read");
                }
                AdLoad::Busy => busy += 1,
                AdLoad::Empty => panic!("empty"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        assert!(loaded > 0, "{loaded} loaded, {busy} busy");
    }
}
