//! Synthetic route sets shared by the benchmarks and the `load_1m` example.
#![allow(dead_code)]

use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// SplitMix64: small, fast, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    pub fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }
}

/// Prefix-length distribution roughly like the IPv4 Internet table
/// (per 10 000): mostly /24, a broad /16–/23 shoulder, a few shorter and ~3 %
/// longer than /24.
const V4_LEN_WEIGHTS: &[(u8, u32)] = &[
    (8, 2),
    (9, 2),
    (10, 3),
    (11, 4),
    (12, 6),
    (13, 8),
    (14, 10),
    (15, 5),
    (16, 130),
    (17, 60),
    (18, 100),
    (19, 200),
    (20, 350),
    (21, 450),
    (22, 1000),
    (23, 800),
    (24, 6570),
    (25, 50),
    (26, 50),
    (27, 50),
    (28, 40),
    (29, 40),
    (30, 30),
    (31, 10),
    (32, 30),
];

pub fn v4_len(rng: &mut Rng) -> u8 {
    let total: u32 = V4_LEN_WEIGHTS.iter().map(|w| w.1).sum();
    let mut x = rng.below(total);
    for &(len, w) in V4_LEN_WEIGHTS {
        if x < w {
            return len;
        }
        x -= w;
    }
    24
}

/// `n` random IPv4 routes with Internet-like lengths and values < 2^20.
pub fn internet_v4(n: usize, seed: u64) -> Vec<(Ipv4Net, u32)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let len = v4_len(&mut rng);
            let p = Ipv4Net::new(Ipv4Addr::from(rng.next_u32()), len).unwrap().trunc();
            (p, rng.next_u32() >> 12)
        })
        .collect()
}

/// `n` random IPv6 routes, lengths uniform in /32..=/64, values < 2^20.
pub fn random_v6(n: usize, seed: u64) -> Vec<(Ipv6Net, u32)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let len = 32 + rng.below(33) as u8;
            let a = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
            let p = Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc();
            (p, rng.next_u32() >> 12)
        })
        .collect()
}

/// `n` random IPv6 routes in 2000::/3 with a length mix like the IPv6 Internet
/// table (mostly /48, /32–/44, some /29 and /56–/64).
pub fn internet_v6(n: usize, seed: u64) -> Vec<(Ipv6Net, u32)> {
    const W: &[(u8, u32)] = &[(29, 3), (32, 12), (36, 4), (40, 6), (44, 8), (48, 55), (56, 6), (64, 6)];
    let total: u32 = W.iter().map(|w| w.1).sum();
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let mut x = rng.below(total);
            let mut len = 48;
            for &(l, w) in W {
                if x < w {
                    len = l;
                    break;
                }
                x -= w;
            }
            let a = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
            let a = (a >> 3) | (1u128 << 125); // 2000::/3
            let p = Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc();
            (p, rng.next_u32() >> 12)
        })
        .collect()
}

/// Resident set size of this process in bytes (Linux), 0 if unknown.
pub fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
