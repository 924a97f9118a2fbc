//! The time-stamp counter, for per-node clocks (like VPP's `show runtime`)
//! and cheap timestamps on the data path.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Reads the TSC (x86_64) or a monotonic nanosecond clock elsewhere.
#[inline(always)]
pub fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions; it reads a counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// TSC ticks per second, measured once against the monotonic clock.
pub fn ticks_per_second() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    *HZ.get_or_init(|| {
        let (t0, c0) = (Instant::now(), now());
        std::thread::sleep(Duration::from_millis(50));
        let (t1, c1) = (Instant::now(), now());
        let ns = (t1 - t0).as_nanos().max(1);
        ((c1 - c0) as u128 * 1_000_000_000 / ns) as u64
    })
}

/// Converts a tick count to seconds.
pub fn ticks_to_seconds(ticks: u64) -> f64 {
    ticks as f64 / ticks_per_second() as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_advances_and_calibrates() {
        let a = super::now();
        let hz = super::ticks_per_second();
        assert!(super::now() > a);
        // Any machine this runs on counts between 100 MHz and 10 GHz.
        assert!((100_000_000..10_000_000_000).contains(&hz), "hz={hz}");
    }
}
