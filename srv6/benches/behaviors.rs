//! Criterion micro-benchmarks of the SRv6 behaviours on vectors of 256
//! packets, as a graph node would run them. Throughput is per packet, so
//! criterion's time / element is ns per packet.
//!
//! `cargo bench -p vswitch-srv6 --bench behaviors`
//!
//! Sizes are those of the packet the behaviour receives:
//! - End: 64 B = IPv6 + reduced SRH with one entry and Segments Left 1;
//!   128 B = IPv6 + SRH of two SIDs + a 48-byte IPv4/UDP packet.
//! - H.Encaps (1 and 3 SIDs, SRH always present, inner TTL decremented):
//!   an IPv4/UDP packet of 64 B or 128 B.
//! - End.DT4: 64 B = IPv6 + a 24-byte IPv4 packet (no SRH, as H.Encaps.Red
//!   with one SID sends it); 128 B = IPv6 + SRH (one SID, Segments Left 0) +
//!   a 64-byte IPv4 packet.
//!
//! The 256 packets stay in place, warm in cache, as in a graph node. A
//! behaviour that modifies packets has the bytes it changes copied back
//! from a pristine copy right after it ran on each packet (End: the 48
//! bytes of IPv6 header and SRH fixed part; H.Encaps: the first 12 bytes of
//! the inner packet, TTL and checksum); `restore_only/*` times that copy
//! alone, so it can be subtracted.

use std::hint::black_box;
use std::net::Ipv6Addr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vswitch_srv6::behavior::{end, end_dt4, h_encaps, EncapParams, EncapTemplate, EndOpts, Outcome, Span};

const VECTOR: usize = 256;
const HEADROOM: usize = 256;
const SLOT: usize = 512;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// An IPv4 packet of exactly `len` bytes (>= 20): UDP if it fits, else
/// raw payload of an experimental protocol.
fn ipv4(len: usize, i: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let b = etherparse::PacketBuilder::ipv4([10, 0, (i >> 8) as u8, i as u8], [10, 1, 0, 1], 64);
    if len >= 28 {
        b.udp(1024 + i as u16, 80).write(&mut out, &vec![0x5a; len - 28]).unwrap();
    } else {
        b.write(&mut out, etherparse::IpNumber(253), &vec![0x5a; len - 20]).unwrap();
    }
    out
}

fn ipv6_hdr(nh: u8, payload: usize, dst: Ipv6Addr) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload as u16).to_be_bytes());
    h.extend_from_slice(&[nh, 64]);
    h.extend_from_slice(&a("2001:db8::1").octets());
    h.extend_from_slice(&dst.octets());
    h
}

fn srh(nh: u8, sl: u8, segs: &[Ipv6Addr]) -> Vec<u8> {
    let mut s = vec![nh, (2 * segs.len()) as u8, 4, sl, (segs.len() - 1) as u8, 0, 0, 0];
    for x in segs {
        s.extend_from_slice(&x.octets());
    }
    s
}

/// 256 packets, each in its own `SLOT`-byte slot after `HEADROOM` bytes,
/// and a pristine copy to restore them from.
struct Vector {
    buf: Vec<u8>,
    pristine: Vec<u8>,
    lens: Vec<usize>,
}

impl Vector {
    fn new(pkts: Vec<Vec<u8>>) -> Self {
        let mut buf = vec![0u8; VECTOR * SLOT];
        let mut lens = Vec::new();
        for (i, p) in pkts.iter().enumerate() {
            let at = i * SLOT + HEADROOM;
            buf[at..at + p.len()].copy_from_slice(p);
            lens.push(p.len());
        }
        Vector { pristine: buf.clone(), buf, lens }
    }

    #[inline]
    fn run(&mut self, mut f: impl FnMut(&mut [u8], usize, usize) -> Outcome) -> usize {
        let mut forwarded = 0;
        for (i, &len) in self.lens.iter().enumerate() {
            let slot = &mut self.buf[i * SLOT..(i + 1) * SLOT];
            if !matches!(f(black_box(slot), HEADROOM, len), Outcome::Drop { .. }) {
                forwarded += 1;
            }
        }
        forwarded
    }

    /// Runs `f` on each packet, then copies bytes `restore` (relative to
    /// the packet start) back from the pristine copy.
    #[inline]
    fn run_restore(
        &mut self,
        restore: std::ops::Range<usize>,
        mut f: impl FnMut(&mut [u8], usize, usize) -> Outcome,
    ) -> usize {
        let mut forwarded = 0;
        for (i, &len) in self.lens.iter().enumerate() {
            let slot = &mut self.buf[i * SLOT..(i + 1) * SLOT];
            if !matches!(f(black_box(slot), HEADROOM, len), Outcome::Drop { .. }) {
                forwarded += 1;
            }
            let r = i * SLOT + HEADROOM + restore.start..i * SLOT + HEADROOM + restore.end;
            self.buf[r.clone()].copy_from_slice(&self.pristine[r]);
        }
        forwarded
    }
}

fn end_packets(size: usize) -> Vec<Vec<u8>> {
    (0..VECTOR)
        .map(|i| {
            let next = Ipv6Addr::new(0xfc00, 3, 0, 0, 0, 0, 0, i as u16);
            let p = if size == 64 {
                let mut p = ipv6_hdr(43, 24, a("fc00:2::"));
                p.extend_from_slice(&srh(59, 1, &[next]));
                p
            } else {
                let inner = ipv4(48, i);
                let mut p = ipv6_hdr(43, 40 + inner.len(), a("fc00:2::"));
                p.extend_from_slice(&srh(4, 1, &[next, a("fc00:2::")]));
                p.extend_from_slice(&inner);
                p
            };
            assert_eq!(p.len(), size);
            p
        })
        .collect()
}

fn dt4_packets(size: usize) -> Vec<Vec<u8>> {
    (0..VECTOR)
        .map(|i| {
            let p = if size == 64 {
                let inner = ipv4(24, i);
                let mut p = ipv6_hdr(4, inner.len(), a("fc00:9::"));
                p.extend_from_slice(&inner);
                p
            } else {
                let inner = ipv4(64, i);
                let mut p = ipv6_hdr(43, 24 + inner.len(), a("fc00:9::"));
                p.extend_from_slice(&srh(4, 0, &[a("fc00:9::")]));
                p.extend_from_slice(&inner);
                p
            };
            assert_eq!(p.len(), size);
            p
        })
        .collect()
}

fn behaviours(c: &mut Criterion) {
    let opts = EndOpts::default();
    let mut g = c.benchmark_group("srv6");
    g.throughput(Throughput::Elements(VECTOR as u64));

    for size in [64, 128] {
        let mut v = Vector::new(end_packets(size));
        assert_eq!(v.run_restore(0..48, |b, s, l| end(b, s, l, &opts)), VECTOR);
        assert_eq!(v.buf, v.pristine);
        g.bench_function(format!("end/{size}B"), |b| b.iter(|| v.run_restore(0..48, |b, s, l| end(b, s, l, &opts))));
    }
    {
        let mut v = Vector::new(end_packets(128));
        let pass = |_: &mut [u8], start: usize, len: usize| Outcome::Local {
            span: Span { start, len },
            protocol: 0,
            offset: 0,
        };
        g.bench_function("restore_only/48B", |b| b.iter(|| v.run_restore(0..48, pass)));
    }

    for nsid in [1usize, 3] {
        let segs: Vec<Ipv6Addr> = (0..nsid).map(|i| Ipv6Addr::new(0xfc00, i as u16 + 1, 0, 0, 0, 0, 0, 0)).collect();
        let t = EncapTemplate::new(&EncapParams::new(a("2001:db8::100"), &segs)).unwrap();
        for size in [64, 128] {
            let mut v = Vector::new((0..VECTOR).map(|i| ipv4(size, i)).collect());
            assert_eq!(v.run_restore(0..12, |b, s, l| h_encaps(b, s, l, &t, l as u32)), VECTOR);
            assert_eq!(v.buf[HEADROOM..HEADROOM + size], v.pristine[HEADROOM..HEADROOM + size]);
            g.bench_function(format!("h_encaps_{nsid}sid/{size}B"), |b| {
                b.iter(|| v.run_restore(0..12, |b, s, l| h_encaps(b, s, l, &t, l as u32)))
            });
        }
    }

    for size in [64, 128] {
        // End.DT4 only reads the packet: no restore needed.
        let mut v = Vector::new(dt4_packets(size));
        assert_eq!(v.run(|b, s, l| end_dt4(b, s, l, &opts, 1)), VECTOR);
        g.bench_function(format!("end_dt4/{size}B"), |b| b.iter(|| v.run(|b, s, l| end_dt4(b, s, l, &opts, 1))));
    }
    g.finish();
}

criterion_group!(benches, behaviours);
criterion_main!(benches);
