//! `vswitchctl pcap` end to end, as root: pods on taps in one bridge
//! domain ping each other while vswitch captures one tap's traffic, and
//! tcpdump reads the file it writes.

mod common;

use common::{tag, Daemon, Netns, TempDir};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

struct Pods {
    a: Netns,
    b: Netns,
    tap_a: String,
    tap_b: String,
}

/// Two pods with IPv6 off (no router solicitations or MLD reports in the
/// captures: only what the test sends).
fn pods(t: &str) -> Pods {
    let id = tag(t);
    let p = Pods {
        a: Netns::new(format!("vsw-{id}-a")),
        b: Netns::new(format!("vsw-{id}-b")),
        tap_a: format!("{id}a"),
        tap_b: format!("{id}b"),
    };
    for ns in [&p.a, &p.b] {
        common::sh(&[
            "ip",
            "netns",
            "exec",
            &ns.name,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
    }
    p
}

/// Both pods' taps in bridge domain 1.
fn bridged(p: &Pods) -> String {
    format!(
        "bridge_domains: [{{ id: 1 }}]
interfaces:
  - {{ name: pod-a, type: tap, host_ifname: {}, netns: {}, bridge: {{ domain: 1 }} }}
  - {{ name: pod-b, type: tap, host_ifname: {}, netns: {}, bridge: {{ domain: 1 }} }}
",
        p.tap_a, p.a.name, p.tap_b, p.b.name
    )
}

/// Starts vswitch with the pods bridged and puts them on 10.77.0.0/24.
fn start(t: &str, extra: &[&str]) -> (Pods, TempDir, Daemon) {
    let p = pods(t);
    let dir = TempDir::new(&tag(t));
    let d = Daemon::start(&dir.0, Some(&bridged(&p)), extra);
    assert!(p.a.wait_link(&p.tap_a, Duration::from_secs(5)), "tap {} not in {}", p.tap_a, p.a.name);
    assert!(p.b.wait_link(&p.tap_b, Duration::from_secs(5)), "tap {} not in {}", p.tap_b, p.b.name);
    p.a.addr(&p.tap_a, "10.77.0.1/24");
    p.b.addr(&p.tap_b, "10.77.0.2/24");
    (p, dir, d)
}

/// `tcpdump -nn -r FILE [args]`: its lines.
fn tcpdump(file: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("tcpdump")
        .arg("-nn")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running tcpdump ({e}): install it (apt-get install -y tcpdump)"));
    assert!(out.status.success(), "tcpdump -r {} failed: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

fn count(lines: &[String], what: &str) -> usize {
    lines.iter().filter(|l| l.contains(what)).count()
}

/// `vswitchctl ARGS` that must fail: its stderr.
fn ctl_err(d: &Daemon, args: &[&str]) -> String {
    let out = d.ctl(args);
    assert!(!out.status.success(), "vswitchctl {args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(1), "a refusal exits 1");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_capture_on_a_tap_shows_ping_requests_and_replies_in_tcpdump() {
    let (p, dir, mut d) = start("pc", &[]);
    let file = dir.0.join("pod-a.pcap");
    let f = file.to_str().unwrap();
    let started = d.ctl_ok(&["pcap", "start", "--interface", "pod-a", "--rx", "--tx", "--file", f]);
    assert!(started.contains("capturing rx tx on pod-a") && started.contains(f), "{started}");
    // The file exists from the start: a valid pcap with no packets yet.
    assert_eq!(std::fs::read(&file).unwrap()[..4], [0xd4, 0xc3, 0xb2, 0xa1]);
    let status = d.show_pcap_status();
    assert_eq!(status["running"], true, "{status}");
    assert!(status["rx"] == true && status["tx"] == true && status["drop"] == false, "{status}");
    assert!(d.ctl_ok(&["pcap", "status"]).contains("capturing"));

    p.a.ping("10.77.0.2", 3, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    let stopped = d.ctl_ok(&["pcap", "stop"]);
    let written: u64 = stopped
        .strip_prefix("wrote ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("pcap stop says: {stopped}"));
    assert!(stopped.contains(f), "{stopped}");

    let lines = tcpdump(&file, &[]);
    assert_eq!(lines.len() as u64, written, "{lines:#?}");
    // rx on pod-a: what pod a sent; tx on pod-a: what vswitch sent it.
    assert!(count(&lines, "IP 10.77.0.1 > 10.77.0.2: ICMP echo request") >= 3, "{lines:#?}");
    assert!(count(&lines, "IP 10.77.0.2 > 10.77.0.1: ICMP echo reply") >= 3, "{lines:#?}");
    assert_eq!(count(&lines, "ICMP echo request"), count(&lines, "IP 10.77.0.1 > 10.77.0.2: ICMP echo request"));
    // Ordered by time: every reply follows its request.
    let first_request = lines.iter().position(|l| l.contains("echo request")).unwrap();
    let first_reply = lines.iter().position(|l| l.contains("echo reply")).unwrap();
    assert!(first_request < first_reply, "{lines:#?}");

    let status = d.show_pcap_status();
    assert_eq!(status["running"], false, "{status}");
    assert_eq!(status["last"]["packets"], written, "{status}");

    // `any`: a request is taken twice, received on pod-a and sent on pod-b.
    let file = dir.0.join("any.pcap");
    d.ctl_ok(&["pcap", "start", "--interface", "any", "--rx", "--tx", "--file", file.to_str().unwrap()]);
    p.a.ping("10.77.0.2", 2, 10).unwrap();
    d.ctl_ok(&["pcap", "stop"]);
    let lines = tcpdump(&file, &[]);
    assert!(count(&lines, "IP 10.77.0.1 > 10.77.0.2: ICMP echo request") >= 4, "{lines:#?}");
    assert!(count(&lines, "IP 10.77.0.2 > 10.77.0.1: ICMP echo reply") >= 4, "{lines:#?}");

    // A capture still running when the daemon stops is written then.
    let file = dir.0.join("shutdown.pcap");
    d.ctl_ok(&["pcap", "start", "--interface", "pod-b", "--rx", "--file", file.to_str().unwrap()]);
    p.a.ping("10.77.0.2", 2, 10).unwrap();
    assert!(d.stop_with(15).success(), "{}", d.log_text());
    let lines = tcpdump(&file, &[]);
    assert!(count(&lines, "IP 10.77.0.2 > 10.77.0.1: ICMP echo reply") >= 2, "{lines:#?}");
    assert!(d.log_text().contains("pcap capture running at shutdown: wrote"), "{}", d.log_text());
}

#[test]
fn captures_of_two_workers_are_merged_in_time_order() {
    // Each pod's receive queue on its own worker: requests are taken by
    // one worker (rx on pod-a, tx on pod-b), replies by the other.
    let (p, dir, d) = start("pw", &["--workers", "2"]);
    p.a.ping("10.77.0.2", 1, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    let file = dir.0.join("two.pcap");
    d.ctl_ok(&["pcap", "start", "--interface", "any", "--rx", "--tx", "--file", file.to_str().unwrap()]);
    p.a.ping("10.77.0.2", 3, 10).unwrap();
    d.ctl_ok(&["pcap", "stop"]);
    let workers = d.show_json(&["workers"]);
    for w in workers["workers"].as_array().unwrap() {
        assert!(w["rx_packets"].as_u64().unwrap() > 0, "both workers received: {workers}");
    }
    let lines = tcpdump(&file, &["-tt"]);
    let times: Vec<f64> = lines.iter().map(|l| l.split(' ').next().unwrap().parse().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not in time order: {lines:#?}");
    for seq in 1..=3 {
        let at = |what: &str| -> Vec<usize> {
            let pattern = format!("{what}, id");
            let with_seq = format!("seq {seq},");
            lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.contains(&pattern) && l.contains(&with_seq))
                .map(|(i, _)| i)
                .collect()
        };
        let (requests, replies) = (at("ICMP echo request"), at("ICMP echo reply"));
        assert_eq!((requests.len(), replies.len()), (2, 2), "seq {seq}: {lines:#?}");
        assert!(requests[1] < replies[0], "seq {seq}: the request (in and out) before the reply: {lines:#?}");
    }
}

#[test]
fn dropped_frames_are_captured_with_the_node_and_reason() {
    let (p, dir, d) = start("pd", &[]);
    p.a.ping("10.77.0.2", 1, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    let file = dir.0.join("drops.pcapng");
    let started = d.ctl_ok(&["pcap", "start", "--interface", "pod-a", "--drop", "--file", file.to_str().unwrap()]);
    assert!(started.contains("(pcapng)"), "drops default to pcapng: {started}");
    // Traffic that is not dropped is not in a drop capture.
    p.a.ping("10.77.0.2", 2, 10).unwrap();
    // pod-b shut down: what pod a sends it is dropped at interface-output
    // (bridged by the MAC learned above, or flooded).
    let down = dir.0.join("down.yaml");
    let pod_b = format!("netns: {}, bridge", p.b.name);
    let yaml = bridged(&p).replace(&pod_b, &format!("netns: {}, up: false, bridge", p.b.name));
    assert!(yaml.contains("up: false"), "{yaml}");
    std::fs::write(&down, yaml).unwrap();
    d.ctl_ok(&["apply", "-f", down.to_str().unwrap()]);
    assert!(p.a.ping("10.77.0.2", 3, 3).is_err(), "pod-b is down");
    let before = down_drops(&d);
    let stopped = d.ctl_ok(&["pcap", "stop"]);
    let after = down_drops(&d);

    let lines = tcpdump(&file, &["-e"]);
    assert!(count(&lines, "10.77.0.1 > 10.77.0.2: ICMP echo request") >= 2, "{stopped}\n{lines:#?}");
    assert_eq!(count(&lines, "echo reply"), 0, "{lines:#?}");
    // Every drop (all of them came from pod a) and nothing else.
    let n = lines.len() as u64;
    assert!((before..=after).contains(&n), "{n} packets, {before}..={after} drops\n{lines:#?}");
    assert!(stopped.starts_with(&format!("wrote {n} packets")), "{stopped}");
    // The reason travels as each packet's pcapng comment, and the
    // interface block names the interface.
    let bytes = std::fs::read(&file).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(text.matches("drop: interface-output: interface is down").count() as u64, n);
    assert!(text.contains("pod-a"), "no interface name in the file");
}

#[test]
fn max_ends_the_capture_and_mistakes_are_refused_by_field() {
    let (p, dir, d) = start("pm", &[]);
    // ARP resolved first: the capture then sees only the echo requests.
    p.a.ping("10.77.0.2", 1, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    let file = dir.0.join("max.pcap");
    let f = file.to_str().unwrap();
    d.ctl_ok(&["pcap", "start", "--interface", "pod-a", "--rx", "--max", "2", "--snaplen", "64", "--file", f]);

    // Only one capture at a time.
    let err = ctl_err(&d, &["pcap", "start", "--interface", "pod-b", "--tx", "--file", f]);
    assert!(err.contains("a capture is already running") && err.contains("pod-a"), "{err}");

    p.a.ping("10.77.0.2", 3, 10).unwrap();
    let status = d.show_pcap_status();
    assert_eq!((status["captured"].as_u64(), status["complete"].as_bool()), (Some(2), Some(true)), "{status}");
    assert!(d.ctl_ok(&["pcap", "status"]).contains("complete (max reached)"));
    let stopped = d.ctl_ok(&["pcap", "stop"]);
    assert!(stopped.starts_with(&format!("wrote 2 packets to {f}")), "{stopped}");
    let lines = tcpdump(&file, &[]);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(count(&lines, "IP 10.77.0.1 > 10.77.0.2: ICMP echo request"), 2, "{lines:#?}");
    // Snap length 64: the 98-byte requests are cut to 64, their length kept.
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), 64);
    assert_eq!(bytes.len(), 24 + 2 * (16 + 64));
    for rec in [24, 24 + 16 + 64] {
        let caplen = u32::from_le_bytes(bytes[rec + 8..rec + 12].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[rec + 12..rec + 16].try_into().unwrap());
        assert_eq!((caplen, len), (64, 98));
    }

    // Nothing runs now.
    let err = ctl_err(&d, &["pcap", "stop"]);
    assert!(err.contains("no capture is running"), "{err}");
    let err = ctl_err(&d, &["pcap", "start", "--interface", "pod-z", "--rx", "--file", f]);
    assert!(err.contains("interface: no interface named \"pod-z\""), "{err}");
    let err = ctl_err(&d, &["pcap", "start", "--interface", "pod-a", "--file", f]);
    assert!(err.contains("direction: ") && err.contains("--rx, --tx, --drop"), "{err}");
    let bad = dir.0.join("no-such-dir/x.pcap");
    let err = ctl_err(&d, &["pcap", "start", "--interface", "pod-a", "--tx", "--file", bad.to_str().unwrap()]);
    assert!(err.contains(&format!("file: {}: cannot write", bad.display())), "{err}");
    let err = ctl_err(&d, &["pcap", "start", "--interface", "pod-a", "--rx", "--max", "100000000", "--file", f]);
    assert!(err.contains("max: ") && err.contains("limit"), "{err}");
    // None of those started a capture.
    assert_eq!(d.show_pcap_status()["running"], false);
    assert!(d.ctl_ok(&["pcap", "status"]).contains("no capture running"));
    // And a relative path is the caller's: vswitchctl makes it absolute.
    let out = Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
        .current_dir(&dir.0)
        .arg("--socket")
        .arg(&d.socket)
        .args(["pcap", "start", "--interface", "pod-b", "--rx", "--file", "rel.pcap"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(d.ctl_ok(&["pcap", "stop"]).contains(&dir.0.join("rel.pcap").display().to_string()));
    assert!(dir.0.join("rel.pcap").exists());
}

/// Packets interface-output dropped because their interface was down.
fn down_drops(d: &Daemon) -> u64 {
    let errors = d.show_json(&["errors"]);
    errors["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"] == "interface-output" && e["reason"] == "interface is down")
        .map(|e| e["count"].as_u64().unwrap())
        .sum()
}

trait PcapStatus {
    fn show_pcap_status(&self) -> serde_json::Value;
}

impl PcapStatus for Daemon {
    /// `vswitchctl pcap status --json`, parsed.
    fn show_pcap_status(&self) -> serde_json::Value {
        let text = self.ctl_ok(&["pcap", "status", "--json"]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("pcap status --json is not JSON ({e}):\n{text}"))
    }
}
