//! The kernel-facing backends against the real kernel: tap devices and
//! AF_PACKET sockets on veth pairs in network namespaces.
//!
//! Run as root (CAP_NET_ADMIN and CAP_NET_RAW), with `ip` (iproute2),
//! `ping` (iputils-ping) and `sysctl` (procps). Every namespace and link a
//! test makes has the process id and a counter in its name, and a guard
//! deletes them even when the test panics.
//!
//! The end-to-end proof in both directions is an echo responder: a loop on
//! the vswitch side that answers ARP and ICMP echo requests for an address
//! the kernel side pings; `ping` only succeeds if frames went both ways.

mod common;

use common::{
    assert_ping_ok, be16, collect, eth, ip, ns_exec, ping_with_responder, pool, readable, run, send_frames, seq_frame,
    test_seq, unique, Cleanup, Raw, Veth, VSW_MAC,
};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use vswitch_packet::Buffers;
use vswitch_port::af_packet::{AfPacketConfig, AfPacketQueue};
use vswitch_port::netdev::{in_netns, netns_path, NetDev};
use vswitch_port::tap::{Tap, TapConfig};
use vswitch_port::{RxQueue, TxQueue};
use vswitch_wire::checksum::{checksum, fold, pseudo_header_v4, sum};

// --- tap devices ---------------------------------------------------------------

/// A tap in the root namespace that the kernel sends nothing on by itself
/// (IPv6 off before it comes up), so tests see only their own frames.
fn quiet_tap(config: TapConfig) -> Tap {
    let tap = Tap::create(&TapConfig { up: false, ..config }).unwrap();
    let sysctl = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", tap.name());
    if let Err(e) = std::fs::write(&sysctl, "1") {
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{sysctl}: {e}"); // no IPv6 at all: quiet anyway
    }
    tap.netdev().unwrap().set_up(true).unwrap();
    tap
}

fn link_exists(name: &str) -> bool {
    run("ip", &["link", "show", "dev", name]).status.success()
}

// --- frames ------------------------------------------------------------------

/// An IPv4/UDP frame (UDP checksum 0: none).
fn udp4(dst: [u8; 6], src: [u8; 6], sip: Ipv4Addr, dip: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let total = (20 + 8 + data.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&sip.octets());
    p.extend_from_slice(&dip.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&(8 + data.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(data);
    eth(dst, src, 0x0800, &p)
}

// --- tap -------------------------------------------------------------------

#[test]
fn tap_in_a_namespace_answers_the_kernels_ping() {
    let mut clean = Cleanup::default();
    let ns = clean.netns("vswpt-tap");
    let name = unique("vt");
    clean.links.push(name.clone());
    let kernel_mac = [0x02, 0x6b, 0x65, 0x72, 0x6e, 0x01];
    let mut tap =
        Tap::create(&TapConfig { mac: Some(kernel_mac), mtu: Some(1400), ..TapConfig::named(&name) }).unwrap();
    assert!(tap.created());
    let dev = tap.netdev().unwrap();
    assert_eq!(dev.mtu().unwrap(), 1400);
    assert_eq!(dev.mac().unwrap(), kernel_mac);
    assert!(dev.link().unwrap().admin_up);
    let mut queues = tap.take_queues(3);
    assert_eq!(queues.len(), 1);
    // A tap moves into another namespace with its descriptor open.
    ip(&["link", "set", &name, "netns", &ns]);
    ip(&["-n", &ns, "addr", "add", "10.77.0.1/24", "dev", &name]);
    ip(&["-n", &ns, "link", "set", &name, "up"]);
    let pool = pool(2048);
    let (out, answered) = ping_with_responder(&mut queues, &pool, &ns, "10.77.0.2".parse().unwrap(), 3);
    assert!(
        out.status.success(),
        "ping through the tap failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(answered.arp >= 1 && answered.echo >= 3, "{answered:?}");
    let rx = RxQueue::stats(&queues[0]);
    let tx = TxQueue::stats(&queues[0]);
    assert!(rx.packets >= 4 && tx.packets >= 4, "rx {rx:?} tx {tx:?}");
    assert_eq!(tx.drops, 0);
    assert_eq!(RxQueue::port(&queues[0]), 3);
    // The kernel counted what the responder sent as received.
    let rx_kernel: u64 =
        ns_exec(&ns, &["cat", &format!("/sys/class/net/{name}/statistics/rx_packets")]).trim().parse().unwrap();
    assert!(rx_kernel >= tx.packets, "kernel rx {rx_kernel} < sent {}", tx.packets);
    assert!(queues[0].wait_fd().is_some());
}

#[test]
fn tap_multi_queue_receives_flows_on_every_queue_and_sends_from_each() {
    let mut clean = Cleanup::default();
    let name = unique("vq");
    clean.links.push(name.clone());
    let mut tap = quiet_tap(TapConfig { queues: 2, ..TapConfig::named(&name) });
    let mut queues = tap.take_queues(0);
    assert_eq!(queues.len(), 2);
    assert_eq!(tap.take_queues(0).len(), 0, "queues are handed out once");
    let sys = std::fs::read_dir(format!("/sys/class/net/{name}/queues")).unwrap();
    let mut q: Vec<String> = sys.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    q.sort();
    assert_eq!(q, ["rx-0", "rx-1", "tx-0", "tx-1"]);

    // Kernel → vswitch: 64 UDP flows sent on the device by a packet socket.
    let kernel_side = Raw::bind(&name, true).unwrap();
    let kernel_mac = NetDev::open(&name).unwrap().mac().unwrap();
    let (a, b) = (Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 1, 0, 2));
    for i in 0..640u16 {
        kernel_side.send(&udp4(VSW_MAC, kernel_mac, a, b, 1000 + i % 64, 53, &i.to_be_bytes()));
    }
    let pool = pool(2048);
    let mut bufs = pool.worker();
    let is_ours = |f: &[u8]| f.len() > 42 && be16(f, 12) == 0x0800 && f[23] == 17 && f[26..30] == a.octets();
    let mut per_queue = Vec::new();
    let mut owner: HashMap<u16, usize> = HashMap::new();
    for (qi, queue) in queues.iter_mut().enumerate() {
        let got = collect(queue, &mut bufs, 640, Duration::from_millis(500), is_ours);
        for f in &got {
            let sport = be16(f, 34);
            assert_eq!(*owner.entry(sport).or_insert(qi), qi, "flow {sport} on two queues");
        }
        per_queue.push(got.len());
    }
    assert_eq!(per_queue.iter().sum::<usize>(), 640, "{per_queue:?}");
    assert!(per_queue.iter().all(|&n| n > 0), "every queue gets flows: {per_queue:?}");

    // vswitch → kernel: frames written on either queue arrive.
    for (qi, queue) in queues.iter_mut().enumerate() {
        let frames: Vec<Vec<u8>> =
            (0..50).map(|i| seq_frame(kernel_mac, VSW_MAC, (qi as u32) << 16 | i, 100)).collect();
        send_frames(queue, &mut bufs, &frames);
        assert_eq!(TxQueue::stats(queue).packets, 50);
    }
    let seen: HashSet<u32> = kernel_side.drain(Duration::from_millis(200)).iter().filter_map(|f| test_seq(f)).collect();
    for qi in 0..2u32 {
        for i in 0..50 {
            assert!(seen.contains(&(qi << 16 | i)), "frame {i} of queue {qi} missing");
        }
    }
}

#[test]
fn tap_persist_attach_and_removal() {
    let mut clean = Cleanup::default();
    let name = unique("vp");
    clean.links.push(name.clone());
    // Not persistent: gone when the last descriptor closes.
    let mut tap = Tap::create(&TapConfig::named(&name)).unwrap();
    let queues = tap.take_queues(0);
    drop(tap);
    assert!(link_exists(&name), "a queue still holds the device");
    let clone = queues[0].try_clone().unwrap();
    drop(queues);
    assert!(link_exists(&name), "the clone still holds the device");
    drop(clone);
    assert!(!link_exists(&name), "removed with its last descriptor");

    // Persistent: survives, can be attached to, and un-persisted.
    let tap = Tap::create(&TapConfig { persist: true, ..TapConfig::named(&name) }).unwrap();
    let index = tap.ifindex();
    assert!(tap.persistent());
    let e = Tap::create(&TapConfig::named(&name)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains(&name), "{e}");
    drop(tap);
    assert!(link_exists(&name), "persistent device outlives its descriptors");
    let mut again = Tap::attach(&TapConfig { mtu: Some(1300), ..TapConfig::named(&name) }).unwrap();
    assert!(!again.created());
    assert_eq!(again.ifindex(), index);
    assert_eq!(again.netdev().unwrap().mtu().unwrap(), 1300);
    drop(again.take_queues(0));
    again.set_persist(false).unwrap();
    drop(again);
    assert!(!link_exists(&name), "un-persisted device is removed on close");

    // No name: the kernel picks one.
    let unnamed = Tap::create(&TapConfig { up: false, ..TapConfig::default() }).unwrap();
    let picked = unnamed.name().to_string();
    clean.links.push(picked.clone());
    assert!(picked.starts_with("tap") && link_exists(&picked), "{picked}");
    drop(unnamed);
    assert!(!link_exists(&picked));

    // Attaching to nothing names the device.
    let e = Tap::attach(&TapConfig::named(&name)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains(&name), "{e}");
    assert!(!link_exists(&name), "attach does not create");

    // A failed setting after creation leaves nothing behind.
    let e = Tap::create(&TapConfig { mtu: Some(1_000_000), persist: true, ..TapConfig::named(&name) }).unwrap_err();
    assert!(e.to_string().contains(&name) && e.to_string().contains("MTU"), "{e}");
    assert!(!link_exists(&name), "half-created device removed");
}

#[test]
fn tap_drops_frames_larger_than_a_buffer() {
    let mut clean = Cleanup::default();
    let name = unique("vo");
    clean.links.push(name.clone());
    let mut tap = quiet_tap(TapConfig::named(&name));
    let mut q = tap.take_queues(0).pop().unwrap();
    let kernel_side = Raw::bind(&name, false).unwrap();
    let kernel_mac = NetDev::open(&name).unwrap().mac().unwrap();
    let small_pool = pool(256);
    let mut bufs = small_pool.worker();
    kernel_side.send(&seq_frame(VSW_MAC, kernel_mac, 1, 300)); // 300 > 256
    kernel_side.send(&seq_frame(VSW_MAC, kernel_mac, 2, 256)); // fits exactly
    kernel_side.send(&seq_frame(VSW_MAC, kernel_mac, 3, 100));
    let got = collect(&mut q, &mut bufs, 2, Duration::from_millis(500), |f| test_seq(f).is_some());
    let seqs: Vec<u32> = got.iter().filter_map(|f| test_seq(f)).collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(got[0].len(), 256);
    assert_eq!(q.counters().rx_oversize, 1);
    assert_eq!(RxQueue::stats(&q).drops, 1);
}

// --- AF_PACKET ---------------------------------------------------------------

/// The veth pair of these tests: namespaces `vswpt-a-…`/`vswpt-b-…`,
/// links `va…`/`vb…`; AF_PACKET queues open on `b`.
impl Veth {
    fn new() -> Veth {
        Veth::create("vswpt", "v")
    }

    fn open(&self, config: AfPacketConfig, count: usize) -> Vec<AfPacketQueue> {
        let config = AfPacketConfig { ifname: self.b.clone(), ..config };
        in_netns(&netns_path(&self.ns_b), move || AfPacketQueue::open_queues(&config, 5, count)).unwrap()
    }
}

#[test]
fn af_packet_answers_the_kernels_ping_across_a_veth() {
    let veth = Veth::new();
    let mut queues = veth.open(AfPacketConfig::default(), 1);
    let q = &queues[0];
    assert_eq!(q.fanout_group(), None);
    assert_eq!(q.mtu().unwrap(), 1500);
    assert!(q.link().unwrap().running);
    assert_eq!(RxQueue::port(q), 5);
    let pool = pool(2048);
    let (out, answered) = ping_with_responder(&mut queues, &pool, &veth.ns_a, "10.88.0.2".parse().unwrap(), 5);
    assert_ping_ok(&out);
    assert!(answered.arp >= 1 && answered.echo >= 5, "{answered:?}");
    let s = queues[0].counters();
    assert!(s.rx_packets >= 6 && s.tx_packets >= 6, "{s:?}");
    assert_eq!((s.kernel_drops, s.tx_ring_full, s.tx_bad_length, s.rx_truncated), (0, 0, 0, 0), "{s:?}");
    assert!(s.rx_packets <= s.kernel_packets);
    // Frames other programs send out of the device are not received.
    let other = veth.other_program_on_b();
    let peer = veth.kernel_side(true);
    let mac_a = veth.mac_a();
    for i in 0..20 {
        other.send(&seq_frame(mac_a, VSW_MAC, i, 70));
    }
    assert_eq!(peer.drain(Duration::from_millis(200)).iter().filter(|f| test_seq(f).is_some()).count(), 20);
    let mut bufs = pool.worker();
    assert_no_outgoing(&mut queues, &mut bufs);
}

#[test]
fn af_packet_receives_a_burst_in_order_without_loss() {
    let veth = Veth::new();
    let mut q = veth.open(AfPacketConfig::default(), 1).pop().unwrap();
    let sender = veth.kernel_side(false);
    let mac_a = veth.mac_a();
    const N: u32 = 2000;
    let pool = pool(2048);
    let mut bufs = pool.worker();
    // Sent in chunks of 100 and drained in between, as a poll-mode worker
    // would: the ring (not a receiver that never reads) is what is tested.
    let mut got = Vec::new();
    for chunk in 0..N / 100 {
        for seq in chunk * 100..(chunk + 1) * 100 {
            sender.send(&seq_frame(VSW_MAC, mac_a, seq, 60 + (seq as usize % 200)));
        }
        let want = ((chunk + 1) * 100) as usize - got.len();
        got.extend(collect(&mut q, &mut bufs, want, Duration::from_secs(5), |f| test_seq(f).is_some()));
    }
    let seqs: Vec<u32> = got.iter().filter_map(|f| test_seq(f)).collect();
    assert_eq!(seqs, (0..N).collect::<Vec<u32>>(), "every frame, in order");
    for (i, f) in got.iter().enumerate() {
        assert_eq!(f.len(), 60 + i % 200, "frame {i} length");
    }
    let s = q.counters();
    assert_eq!(s.kernel_drops, 0, "{s:?}");
    assert!(s.kernel_packets >= N as u64, "{s:?}");
    assert_eq!(RxQueue::stats(&q).drops, 0);
}

#[test]
fn af_packet_transmits_bursts_to_the_kernel() {
    let veth = Veth::new();
    let q = veth.open(AfPacketConfig::default(), 1).pop().unwrap();
    let (_rx, mut tx) = q.split();
    let receiver = veth.kernel_side(true);
    let mac_a = veth.mac_a();
    let pool = pool(2048);
    let mut bufs = pool.worker();
    const N: u32 = 1000;
    for burst in 0..N / 250 {
        let frames: Vec<Vec<u8>> =
            (0..250).map(|i| seq_frame(mac_a, VSW_MAC, burst * 250 + i, 64 + i as usize)).collect();
        send_frames(&mut tx, &mut bufs, &frames);
        std::thread::sleep(Duration::from_millis(5));
    }
    let got: Vec<Vec<u8>> =
        receiver.drain(Duration::from_millis(300)).into_iter().filter(|f| test_seq(f).is_some()).collect();
    let seqs: Vec<u32> = got.iter().filter_map(|f| test_seq(f)).collect();
    assert_eq!(seqs, (0..N).collect::<Vec<u32>>());
    let s = tx.counters();
    assert_eq!((s.tx_packets, s.tx_ring_full, s.tx_kick_errors), (N as u64, 0, 0), "{s:?}");
    // Frames longer than the MTU allows are refused and counted.
    let big = seq_frame(mac_a, VSW_MAC, 99_999, 1600);
    send_frames(&mut tx, &mut bufs, &[big]);
    assert_eq!(tx.counters().tx_bad_length, 1);
    assert_eq!(TxQueue::stats(&tx).drops, 1);
}

#[test]
fn af_packet_fanout_spreads_flows_and_ignores_outgoing_frames() {
    let veth = Veth::new();
    let mut queues = veth.open(AfPacketConfig::default(), 2);
    let group = queues[0].fanout_group().expect("fanout group");
    assert_eq!(queues[1].fanout_group(), Some(group));
    let sender = veth.kernel_side(true);
    let mac_a = veth.mac_a();
    let (a, b) = (Ipv4Addr::new(10, 88, 0, 1), Ipv4Addr::new(10, 88, 0, 2));
    const FLOWS: u16 = 64;
    const PER_FLOW: u16 = 20;
    for i in 0..FLOWS * PER_FLOW {
        sender.send(&udp4(VSW_MAC, mac_a, a, b, 2000 + i % FLOWS, 7, &i.to_be_bytes()));
    }
    let pool = pool(2048);
    let mut bufs = pool.worker();
    let is_ours = |f: &[u8]| f.len() > 42 && be16(f, 12) == 0x0800 && f[23] == 17 && be16(f, 36) == 7;
    let mut per_queue = Vec::new();
    let mut owner: HashMap<u16, usize> = HashMap::new();
    for (qi, q) in queues.iter_mut().enumerate() {
        let got = collect(q, &mut bufs, (FLOWS * PER_FLOW) as usize, Duration::from_millis(500), is_ours);
        for f in &got {
            let sport = be16(f, 34);
            assert_eq!(*owner.entry(sport).or_insert(qi), qi, "flow {sport} reached two sockets");
        }
        per_queue.push(got.len());
    }
    assert_eq!(per_queue.iter().sum::<usize>(), (FLOWS * PER_FLOW) as usize, "{per_queue:?}");
    assert!(per_queue.iter().all(|&n| n > 0), "both sockets get flows: {per_queue:?}");
    assert_eq!(owner.len(), FLOWS as usize);

    // What a member sends, and what any other program sends out of the
    // device, reaches the peer but no member's receive ring.
    let frames: Vec<Vec<u8>> = (0..100).map(|i| seq_frame(mac_a, VSW_MAC, i, 80)).collect();
    send_frames(&mut queues[0], &mut bufs, &frames);
    let other = veth.other_program_on_b();
    for i in 100..200 {
        other.send(&seq_frame(mac_a, VSW_MAC, i, 80));
    }
    let at_kernel = sender.drain(Duration::from_millis(300)).iter().filter(|f| test_seq(f).is_some()).count();
    assert_eq!(at_kernel, 200);
    assert_no_outgoing(&mut queues, &mut bufs);
}

/// No queue receives frames of the test's ethertype (all of them were
/// sent out of the device), nor counts having skipped any.
fn assert_no_outgoing(queues: &mut [AfPacketQueue], bufs: &mut Buffers) {
    for q in queues.iter_mut() {
        let echoed = collect(q, bufs, 1, Duration::from_millis(100), |f| test_seq(f).is_some());
        assert!(echoed.is_empty(), "a socket received a frame sent out of its device");
        assert_eq!(q.counters().rx_outgoing, 0, "the kernel filters outgoing frames");
    }
}

#[test]
fn af_packet_counts_kernel_drops_when_the_ring_overflows() {
    let veth = Veth::new();
    // Two 4 KiB blocks: a few dozen small frames.
    let config = AfPacketConfig { block_size: 4096, block_count: 2, ..AfPacketConfig::default() };
    let mut q = veth.open(config, 1).pop().unwrap();
    let sender = veth.kernel_side(false);
    let mac_a = veth.mac_a();
    const N: u32 = 500;
    for seq in 0..N {
        sender.send(&seq_frame(VSW_MAC, mac_a, seq, 60));
    }
    let pool = pool(2048);
    let mut bufs = pool.worker();
    let got = collect(&mut q, &mut bufs, N as usize, Duration::from_millis(300), |f| test_seq(f).is_some());
    let s = q.counters();
    assert!(s.kernel_drops > 0, "{s:?}");
    assert!(got.len() < N as usize && !got.is_empty());
    assert!(got.len() as u64 + s.kernel_drops >= N as u64, "received {} + dropped {}", got.len(), s.kernel_drops);
    assert!(s.kernel_packets >= N as u64, "{s:?}");
    assert!(RxQueue::stats(&q).drops >= s.kernel_drops);
    // Counters accumulate across reads (the kernel resets them on each).
    assert_eq!(q.counters().kernel_drops, s.kernel_drops);
    // The ring keeps working after overflowing.
    sender.send(&seq_frame(VSW_MAC, mac_a, N, 60));
    let after = collect(&mut q, &mut bufs, 1, Duration::from_secs(1), |f| test_seq(f) == Some(N));
    assert_eq!(after.len(), 1);
}

#[test]
fn af_packet_restores_vlan_tags_and_completes_offloaded_checksums() {
    let veth = Veth::new();
    let mut q = veth.open(AfPacketConfig::default(), 1).pop().unwrap();
    let pool = pool(2048);
    let mut bufs = pool.worker();
    // Tagged frames: the receiving kernel moves the outer tag out of the
    // frame before packet sockets see it; the queue must put it back.
    let sender = veth.kernel_side(false);
    let mac_a = veth.mac_a();
    let inner = seq_frame(VSW_MAC, mac_a, 7, 80);
    let tag = |tpid: u16, tci: u16, f: &[u8]| {
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&tpid.to_be_bytes());
        t.extend_from_slice(&tci.to_be_bytes());
        t.extend_from_slice(&f[12..]);
        t
    };
    let dot1q = tag(0x8100, 0x6064, &inner); // PCP 3, VLAN 100
    let qinq = tag(0x88a8, 0x00c8, &tag(0x8100, 0x0064, &inner)); // S-VLAN 200, C-VLAN 100
    sender.send(&dot1q);
    sender.send(&qinq);
    let tagged = |f: &[u8]| matches!(be16(f, 12), 0x8100 | 0x88a8);
    let got = collect(&mut q, &mut bufs, 2, Duration::from_secs(2), tagged);
    assert_eq!(got, [dot1q, qinq], "frames as sent, tags in place");

    // The kernel's own UDP leaves the checksum to the (veth) offload.
    let mac = vswitch_port::netdev::fmt_mac(&VSW_MAC);
    ip(&["-n", &veth.ns_a, "neigh", "add", "10.88.0.2", "lladdr", &mac, "dev", &veth.a]);
    in_netns(&netns_path(&veth.ns_a), || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
        s.send_to(b"an odd-length datagram", "10.88.0.2:9")?;
        Ok(())
    })
    .unwrap();
    let udp_to_9 = |f: &[u8]| f.len() > 42 && be16(f, 12) == 0x0800 && f[23] == 17 && be16(f, 36) == 9;
    let got = collect(&mut q, &mut bufs, 1, Duration::from_secs(2), udp_to_9);
    assert_eq!(got.len(), 1);
    let ipv4 = &got[0][14..];
    let src = Ipv4Addr::new(ipv4[12], ipv4[13], ipv4[14], ipv4[15]);
    let dst = Ipv4Addr::new(ipv4[16], ipv4[17], ipv4[18], ipv4[19]);
    let seg = &ipv4[20..be16(ipv4, 2) as usize];
    assert_eq!(&seg[8..], b"an odd-length datagram");
    assert_eq!(fold(pseudo_header_v4(&src, &dst, 17, seg.len() as u32) + sum(seg)), 0xffff, "UDP checksum");
    assert_eq!(q.counters().rx_checksums, 1, "the kernel left this checksum to offload");
}

#[test]
fn af_packet_reads_mtu_link_state_and_sets_promiscuous_mode() {
    let veth = Veth::new();
    let promiscuity = || {
        let out = ns_exec(&veth.ns_b, &["ip", "-d", "link", "show", "dev", &veth.b]);
        let at = out.find("promiscuity ").expect("promiscuity in ip -d output");
        out[at + 12..].split_whitespace().next().unwrap().parse::<u32>().unwrap()
    };
    assert_eq!(promiscuity(), 0);
    let q = veth.open(AfPacketConfig::default(), 1).pop().unwrap();
    assert_eq!(promiscuity(), 1, "the socket made the device promiscuous");
    ip(&["-n", &veth.ns_b, "link", "set", &veth.b, "mtu", "1400"]);
    assert_eq!(q.mtu().unwrap(), 1400);
    // IFF_RUNNING follows the operational state, which the kernel's
    // linkwatch updates asynchronously (later still on a busy machine):
    // poll for it.
    let wait_running = |want: bool| {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let l = q.link().unwrap();
            if l.running == want || Instant::now() > end {
                return l;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    ip(&["-n", &veth.ns_a, "link", "set", &veth.a, "down"]);
    let l = wait_running(false);
    assert!(l.admin_up && !l.running, "peer down: no carrier: {l:?}");
    ip(&["-n", &veth.ns_a, "link", "set", &veth.a, "up"]);
    let l = wait_running(true);
    assert!(l.admin_up && l.running, "peer up: carrier again: {l:?}");
    assert_eq!(q.netdev().current_name().unwrap(), veth.b);
    drop(q);
    assert_eq!(promiscuity(), 0, "closing the socket undoes promiscuous mode");
}

#[test]
fn wait_fds_wake_an_interrupt_mode_worker_when_frames_arrive() {
    let pool = pool(2048);
    let mut bufs = pool.worker();
    let mut clean = Cleanup::default();
    let name = unique("vw");
    clean.links.push(name.clone());
    let mut tap = quiet_tap(TapConfig::named(&name));
    let tq = tap.take_queues(0).pop().unwrap();
    let kernel_side = Raw::bind(&name, false).unwrap();
    let kernel_mac = NetDev::open(&name).unwrap().mac().unwrap();
    assert!(!readable(tq.wait_fd().unwrap(), 0), "nothing queued yet");
    kernel_side.send(&seq_frame(VSW_MAC, kernel_mac, 1, 64));
    assert!(readable(tq.wait_fd().unwrap(), 1000), "tap fd readable once a frame is queued");

    let veth = Veth::new();
    let mut aq = veth.open(AfPacketConfig::default(), 1).pop().unwrap();
    assert!(!readable(aq.wait_fd().unwrap(), 0), "empty ring");
    veth.kernel_side(false).send(&seq_frame(VSW_MAC, veth.mac_a(), 2, 64));
    assert!(readable(aq.wait_fd().unwrap(), 1000), "socket readable once a block is handed over");
    let got = collect(&mut aq, &mut bufs, 1, Duration::from_secs(1), |f| test_seq(f) == Some(2));
    assert_eq!(got.len(), 1);
    assert!(!readable(aq.wait_fd().unwrap(), 20), "block handed back: nothing to read");
}

#[test]
fn af_packet_errors_name_the_device_and_the_step() {
    let missing = unique("vn");
    let e = AfPacketQueue::open(&AfPacketConfig::device(&missing), 0).err().expect("no such device");
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains(&missing) && e.to_string().contains("no such device"), "{e}");
    let e = AfPacketQueue::open(&AfPacketConfig { block_size: 1000, ..AfPacketConfig::device("lo") }, 0)
        .err()
        .expect("bad block size");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("af_packet lo") && e.to_string().contains("block_size"), "{e}");
    let e = AfPacketQueue::open_queues(&AfPacketConfig::device("lo"), 0, 0).err().expect("zero queues");
    assert!(e.to_string().contains("at least 1"), "{e}");
    // Joining a fanout group that exists on another device fails, naming the step.
    let veth = Veth::new();
    let queues = veth.open(AfPacketConfig::default(), 2);
    let group = queues[0].fanout_group().unwrap();
    let e = in_netns(&netns_path(&veth.ns_b), || {
        let cfg = AfPacketConfig {
            fanout: Some(vswitch_port::af_packet::Fanout {
                group: Some(group),
                mode: vswitch_port::af_packet::FanoutMode::LoadBalance,
            }),
            ..AfPacketConfig::device("lo")
        };
        AfPacketQueue::open(&cfg, 0)
    })
    .err()
    .expect("mismatched fanout join");
    assert!(e.to_string().contains("af_packet lo") && e.to_string().contains("fanout"), "{e}");
}
