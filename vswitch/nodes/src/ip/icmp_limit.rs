//! A token bucket for rate limiting ICMP errors (RFC 1812 section 4.3.2.8)
//! and other control messages a worker generates.
//!
//! One bucket per worker and purpose (each node instance owns its own), so
//! it needs no atomics: `allow` is a subtraction and a compare. Time is
//! the TSC (`vswitch_packet::clock::now()`, what `cx.now` holds); credit is
//! kept in ticks, so there is no division on the hot path.
//!
//! ```
//! use vswitch_nodes::ip::icmp_limit::TokenBucket;
//! // 10 per second with a burst of 2, on a clock of 1000 ticks a second.
//! let mut b = TokenBucket::with_clock(10, 2, 1000);
//! assert!(b.allow(0) && b.allow(0));
//! assert!(!b.allow(0), "burst spent");
//! assert!(b.allow(100), "one token per 100 ticks");
//! ```

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Saved credit, in clock ticks.
    credit: u64,
    /// Most credit kept (burst tokens).
    cap: u64,
    /// Ticks per token; `u64::MAX` for a rate of zero (never allows).
    ticks_per_token: u64,
    /// When credit was last added.
    last: u64,
    /// Never allows (rate 0).
    closed: bool,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `rate` per second, on the
    /// TSC clock. A rate of zero allows nothing.
    pub fn new(rate: u32, burst: u32) -> TokenBucket {
        Self::with_clock(rate, burst, vswitch_packet::clock::ticks_per_second())
    }

    /// The same on a clock of `ticks_per_second` (for tests).
    pub fn with_clock(rate: u32, burst: u32, ticks_per_second: u64) -> TokenBucket {
        let closed = rate == 0 || burst == 0;
        let ticks_per_token = if closed { u64::MAX } else { (ticks_per_second / rate as u64).max(1) };
        let cap = ticks_per_token.saturating_mul(burst as u64);
        TokenBucket { credit: cap, cap, ticks_per_token, last: 0, closed }
    }

    /// Takes one token at time `now` if there is one.
    #[inline]
    pub fn allow(&mut self, now: u64) -> bool {
        if self.closed {
            return false;
        }
        let elapsed = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        self.credit = self.credit.saturating_add(elapsed).min(self.cap);
        if self.credit >= self.ticks_per_token {
            self.credit -= self.ticks_per_token;
            true
        } else {
            false
        }
    }

    /// Whole tokens available at time `now` (without taking one).
    pub fn available(&self, now: u64) -> u64 {
        if self.closed {
            return 0;
        }
        let credit = self.credit.saturating_add(now.saturating_sub(self.last)).min(self.cap);
        credit / self.ticks_per_token
    }
}

#[cfg(test)]
mod tests {
    use super::TokenBucket;

    #[test]
    fn burst_then_steady_rate() {
        let mut b = TokenBucket::with_clock(100, 5, 1_000_000);
        let allowed = (0..20).filter(|_| b.allow(1000)).count();
        assert_eq!(allowed, 5, "a full bucket gives its burst");
        assert!(!b.allow(1000 + 9_999), "a token takes 10000 ticks");
        assert!(b.allow(1000 + 10_000));
        // One second later: at most the burst, not 100 saved tokens.
        let t = 2_000_000;
        assert_eq!(b.available(t), 5);
        assert_eq!((0..200).filter(|_| b.allow(t)).count(), 5);
        // Over a second of steady calls, about the rate.
        let n = (0..10_000u64).filter(|i| b.allow(t + i * 100)).count();
        assert!((99..=101).contains(&n), "{n}");
    }

    #[test]
    fn zero_rate_allows_nothing_and_time_going_back_is_harmless() {
        let mut z = TokenBucket::with_clock(0, 10, 1000);
        assert!(!z.allow(0) && !z.allow(u64::MAX));
        let mut b = TokenBucket::with_clock(1, 1, 1000);
        assert!(b.allow(5000));
        assert!(!b.allow(10), "a clock read from another core may be behind");
        assert!(b.allow(6000));
    }
}
