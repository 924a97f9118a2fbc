//! SRv6 between vswitch and the Linux kernel's seg6 / seg6local, as root.
//!
//! Linux SRv6 nodes are network namespaces attached to vswitch by taps
//! vswitch creates in them; hosts behind a Linux node hang off a veth.
//! The kernel here has seg6 and seg6local but no VRF device, so the Linux
//! side uses End, End.DX4, End.DT6 (legacy table mode), End.DX2 and the
//! encap / encap.red / l2encap headends. Each scenario checks the traffic
//! end to end (ping, iperf3), the per-SID counters of `vswitchctl show sr
//! localsids --json` and, where the SRH matters, the SRH on the wire with
//! tcpdump. Every wait polls with a generous timeout: the tests run on
//! loaded machines.
//!
//! ```text
//!  lhost ──veth── lnx ══tap "core"══ vswitch ══tap "pod"══ pod
//!  (10.9.0.1)   (Linux SR,                     (10.0.1.2)
//!               locator fc00:2::/64)  locator fc00:1::/64
//! ```

mod common;

use common::{addr6, mac_of, output_text, router, tag, veth, wait_for, Capture, Daemon, Netns, TempDir};
use serde_json::Value;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// Debian's python, which has scapy.
const PYTHON: &str = "/usr/bin/python3";

/// vswitch's MAC on the core link (fixed, so scapy can address it).
const CORE_MAC: &str = "02:fe:00:00:0c:01";

fn ping_ok(d: &Daemon, ns: &Netns, dst: &str) {
    ns.ping(dst, 2, 30).unwrap_or_else(|e| {
        panic!(
            "{e}\n--- show sr localsids ---\n{}\n--- show errors ---\n{}\n--- daemon log ---\n{}",
            d.ctl_ok(&["show", "sr", "localsids"]),
            d.ctl_ok(&["show", "errors"]),
            d.log_text()
        )
    });
}

/// One entry of `show sr localsids --json` by SID.
fn sid(d: &Daemon, s: &str) -> Value {
    let j = d.show_json(&["sr", "localsids"]);
    j["localsids"]
        .as_array()
        .expect("localsids is a list")
        .iter()
        .find(|e| e["sid"] == s)
        .unwrap_or_else(|| panic!("no local SID {s} in {j}"))
        .clone()
}

fn sid_packets(d: &Daemon, s: &str) -> u64 {
    sid(d, s)["packets"].as_u64().unwrap()
}

fn policy_packets(d: &Daemon, bsid: &str) -> u64 {
    let j = d.show_json(&["sr", "policies"]);
    j["policies"].as_array().unwrap().iter().find(|p| p["bsid"] == bsid).unwrap_or_else(|| panic!("{j}"))["packets"]
        .as_u64()
        .unwrap()
}

/// The standard lab: pod (behind vswitch), lnx (a Linux SRv6 router on
/// vswitch's core link, locator fc00:2::/64) and lhost (behind lnx).
struct Lab {
    id: String,
    dir: TempDir,
    pod: Netns,
    lnx: Netns,
    lhost: Netns,
    /// Device names: the core tap (in lnx), the pod tap (in pod), the
    /// veth ends in lnx and in lhost.
    core: String,
    pod_dev: String,
    lv: String,
    hv: String,
}

impl Lab {
    fn new(t: &str) -> Lab {
        let id = tag(t);
        let lab = Lab {
            dir: TempDir::new(&id),
            pod: Netns::new(format!("vsw-{id}-pod")),
            lnx: Netns::new(format!("vsw-{id}-lnx")),
            lhost: Netns::new(format!("vsw-{id}-lh")),
            core: format!("{id}c"),
            pod_dev: format!("{id}p"),
            lv: format!("{id}l"),
            hv: format!("{id}h"),
            id,
        };
        veth(&lab.lnx, &lab.lv, &lab.lhost, &lab.hv);
        lab.lnx.addr(&lab.lv, "10.9.0.2/24");
        addr6(&lab.lnx, &lab.lv, "2001:db8:9::2/64");
        lab.lhost.addr(&lab.hv, "10.9.0.1/24");
        addr6(&lab.lhost, &lab.hv, "2001:db8:9::1/64");
        lab.lhost.ip(&["route", "add", "default", "via", "10.9.0.2"]);
        lab.lhost.ip(&["-6", "route", "add", "default", "via", "2001:db8:9::2"]);
        lab
    }

    /// The vswitch interfaces (core and pod), for a config.
    fn interfaces(&self) -> String {
        format!(
            "interfaces:
  - {{ name: core, type: tap, host_ifname: {core}, netns: {lnx}, mac: '{CORE_MAC}', mtu: 9000,
      l3: {{ addresses: ['fc00:12::1/64'] }} }}
  - {{ name: pod, type: tap, host_ifname: {pod_dev}, netns: {pod}, mac: '02:fe:00:00:0c:02',
      l3: {{ addresses: [10.0.1.1/24, '2001:db8:1::1/64'] }} }}
",
            core = self.core,
            lnx = self.lnx.name,
            pod_dev = self.pod_dev,
            pod = self.pod.name
        )
    }

    /// Starts vswitch with `config`, then sets up the pod and lnx ends of
    /// its taps (lnx: an SRv6 router routing fc00:1::/64 to vswitch).
    fn start(&self, config: &str) -> Daemon {
        let d = Daemon::start(&self.dir.0, Some(config), &[]);
        assert!(self.pod.wait_link(&self.pod_dev, LONG), "pod tap");
        assert!(self.lnx.wait_link(&self.core, LONG), "core tap");
        self.pod.addr(&self.pod_dev, "10.0.1.2/24");
        addr6(&self.pod, &self.pod_dev, "2001:db8:1::2/64");
        self.pod.ip(&["route", "add", "default", "via", "10.0.1.1"]);
        self.pod.ip(&["-6", "route", "add", "default", "via", "2001:db8:1::1"]);
        self.lnx.ip(&["link", "set", &self.core, "mtu", "9000"]);
        addr6(&self.lnx, &self.core, "fc00:12::2/64");
        router(&self.lnx, &[&self.core, &self.lv], true);
        self.lnx.ip(&["-6", "route", "add", "fc00:1::/64", "via", "fc00:12::1", "dev", &self.core]);
        self.lnx.ip(&["sr", "tunsrc", "set", "fc00:12::2"]);
        d
    }

    /// A seg6local SID on lnx.
    fn linux_sid(&self, sid: &str, action: &[&str]) {
        let mut a = vec!["-6", "route", "add", sid, "encap", "seg6local", "action"];
        a.extend_from_slice(action);
        a.extend_from_slice(&["dev", &self.lv]);
        self.lnx.ip(&a);
    }

    /// (Re)places lnx's seg6 headend route to `prefix`.
    fn linux_encap(&self, family: &str, prefix: &str, mode: &str, segs: &str) {
        let a = [family, "route", "replace", prefix, "encap", "seg6", "mode", mode, "segs", segs, "dev", &self.core];
        self.lnx.ip(&a);
    }
}

/// vswitch's side of the standard lab: the End.DX4 / End.DT4 / End.DT6 /
/// End SIDs, the route to Linux's locator, and the policies that send the
/// pod's replies back to Linux's End.DX4 (IPv4) and End.DT6 (IPv6).
fn standard_sr(encap: &str, v4_segments: &str) -> String {
    format!(
        "routes:
  - {{ prefix: 'fc00:2::/64', via: [{{ address: 'fc00:12::2', interface: core }}] }}
sr:
  source: 'fc00:12::1'
  localsids:
    - {{ sid: 'fc00:1::d4', behavior: End.DX4, interface: pod, next_hop: 10.0.1.2 }}
    - {{ sid: 'fc00:1::4', behavior: End.DT4 }}
    - {{ sid: 'fc00:1::6', behavior: End.DT6 }}
    - {{ sid: 'fc00:1::e', behavior: End }}
  policies:
    - {{ bsid: 'fc00:1::b:4', encap: {encap}, segment_lists: [{{ segments: [{v4_segments}] }}] }}
    - {{ bsid: 'fc00:1::b:6', segment_lists: [{{ segments: ['fc00:2::6'] }}] }}
  steering:
    - {{ prefix: 10.9.0.0/24, policy: 'fc00:1::b:4' }}
    - {{ prefix: '2001:db8:9::/64', policy: 'fc00:1::b:6' }}
"
    )
}

/// Linux's side of the standard lab: End.DX4 to lhost, End.DT6 in the
/// main table, End.
fn standard_linux(lab: &Lab) {
    lab.linux_sid("fc00:2::d4", &["End.DX4", "nh4", "10.9.0.1"]);
    lab.linux_sid("fc00:2::6", &["End.DT6", "table", "254"]);
    lab.linux_sid("fc00:2::e", &["End"]);
}

// ---------------------------------------------------------------------
// 1. Linux H.Encaps -> vswitch End.DX4 / End.DT4 / End.DT6 -> pod, and
//    back through vswitch H.Encaps -> Linux End.DX4 / End.DT6.

#[test]
fn linux_h_encaps_to_vswitch_end_dx4_dt4_dt6_and_vswitch_h_encaps_back_ping_and_iperf3() {
    let lab = Lab::new("s1");
    let config = format!("{}{}", lab.interfaces(), standard_sr("encaps", "'fc00:2::d4'"));
    let mut d = lab.start(&config);
    standard_linux(&lab);
    let lh = &lab.lhost;

    // End.DX4: lhost -> lnx (H.Encaps) -> vswitch End.DX4 -> pod; the
    // reply: pod -> vswitch (10.9.0.0/24 steered, H.Encaps) -> Linux
    // End.DX4 -> lhost.
    lab.linux_encap("-4", "10.0.1.0/24", "encap", "fc00:1::d4");
    ping_ok(&d, lh, "10.0.1.2");
    assert!(sid_packets(&d, "fc00:1::d4") >= 2, "{}", d.ctl_ok(&["show", "sr", "localsids"]));
    assert!(policy_packets(&d, "fc00:1::b:4") >= 2, "{}", d.ctl_ok(&["show", "sr", "policies"]));

    // iperf3 over the same path: pod serves, lhost sends.
    let mut server = lab.pod.spawn(&lab.dir.0, "iperf3-server", &["iperf3", "-s", "-1", "-B", "10.0.1.2"]);
    let listening = wait_for(LONG, || {
        let ss = lab.pod.exec(&["ss", "-Hltn", "sport = :5201"]);
        String::from_utf8_lossy(&ss.stdout).contains("LISTEN") || !server.running()
    });
    assert!(listening && server.running(), "iperf3 -s: {}{}", server.stdout_text(), server.stderr_text());
    let dx4_before = sid(&d, "fc00:1::d4")["bytes"].as_u64().unwrap();
    let out = lh.exec(&["iperf3", "-c", "10.0.1.2", "-t", "3", "-J", "--connect-timeout", "10000"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let j: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("iperf3 -J is not JSON ({e}): {}", output_text(&out)));
    assert!(out.status.success() && j.get("error").is_none(), "iperf3 failed: {text}\n{}", d.log_text());
    let received = j["end"]["sum_received"]["bytes"].as_u64().unwrap();
    assert!(received > 0, "nothing received: {text}");
    assert!(server.wait(LONG).is_some_and(|s| s.success()), "iperf3 -s: {}", server.stderr_text());
    let dx4_bytes = sid(&d, "fc00:1::d4")["bytes"].as_u64().unwrap() - dx4_before;
    assert!(dx4_bytes >= received, "End.DX4 decapsulated {dx4_bytes} bytes, iperf3 received {received}");
    eprintln!("iperf3 through Linux H.Encaps -> vswitch End.DX4: {:.0} Mbit/s", {
        j["end"]["sum_received"]["bits_per_second"].as_f64().unwrap() / 1e6
    });

    // End.DT4: the same from Linux, to the lookup SID.
    let dt4 = sid_packets(&d, "fc00:1::4");
    lab.linux_encap("-4", "10.0.1.0/24", "encap", "fc00:1::4");
    ping_ok(&d, lh, "10.0.1.2");
    assert!(sid_packets(&d, "fc00:1::4") >= dt4 + 2);

    // End.DT6, and back through vswitch H.Encaps to Linux End.DT6.
    lab.linux_encap("-6", "2001:db8:1::/64", "encap", "fc00:1::6");
    ping_ok(&d, lh, "2001:db8:1::2");
    assert!(sid_packets(&d, "fc00:1::6") >= 2);
    assert!(policy_packets(&d, "fc00:1::b:6") >= 2);
    let e = sid(&d, "fc00:1::6");
    assert_eq!((e["behavior"].as_str(), e["drops"].as_u64()), (Some("End.DT6"), Some(0)), "{e}");
    assert!(d.running(), "vswitch died:\n{}", d.log_text());
}

// ---------------------------------------------------------------------
// 2. vswitch H.Encaps.Red -> Linux End -> Linux End.DX4, the reduced SRH
//    checked on the wire.

#[test]
fn vswitch_h_encaps_red_to_linux_end_and_end_dx4() {
    let lab = Lab::new("s2");
    let sr = standard_sr("encaps-red", "'fc00:2::e', 'fc00:2::d4'");
    let d = lab.start(&format!("{}{sr}", lab.interfaces()));
    standard_linux(&lab);
    // Linux -> vswitch plain H.Encaps; vswitch -> Linux reduced.
    lab.linux_encap("-4", "10.0.1.0/24", "encap", "fc00:1::d4");
    let cap = Capture::start(&lab.lnx, &lab.dir.0, "red", &lab.core, &["ip6", "and", "src", "fc00:12::1"]);
    ping_ok(&d, &lab.pod, "10.9.0.1");
    let lines = cap.stop_when(|l| l.iter().any(|x| x.contains("fc00:2::e") && x.contains("ICMP echo")));
    let red: Vec<&String> = lines.iter().filter(|l| l.contains("> fc00:2::e:") && l.contains("ICMP echo")).collect();
    assert!(!red.is_empty(), "no encapsulated echo on the wire:\n{}", lines.join("\n"));
    for l in &red {
        // Reduced SRH: S1 (fc00:2::e) left out, Last Entry 0, SL 1.
        assert!(
            l.contains("segleft=1") && l.contains("last-entry=0") && l.contains("[0]fc00:2::d4"),
            "not a reduced SRH: {l}"
        );
        assert!(!l.contains("[1]"), "S1 in the SRH: {l}");
    }
    // One SID, reduced: no SRH at all.
    let sr1 = standard_sr("encaps-red", "'fc00:2::d4'");
    d.ctl_ok(&["apply", "-f", &write(&lab, "red1.yaml", &format!("{}{sr1}", lab.interfaces()))]);
    let cap = Capture::start(&lab.lnx, &lab.dir.0, "red1", &lab.core, &["ip6", "and", "src", "fc00:12::1"]);
    let before = policy_packets(&d, "fc00:1::b:4");
    ping_ok(&d, &lab.pod, "10.9.0.1");
    let lines = cap.stop_when(|l| l.iter().any(|x| x.contains("> fc00:2::d4:")));
    let one: Vec<&String> = lines.iter().filter(|l| l.contains("> fc00:2::d4:")).collect();
    assert!(!one.is_empty() && one.iter().all(|l| !l.contains("RT6")), "{}", lines.join("\n"));
    assert!(policy_packets(&d, "fc00:1::b:4") >= before + 2);
}

fn write(lab: &Lab, name: &str, text: &str) -> String {
    let p = lab.dir.0.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

// ---------------------------------------------------------------------
// 3. Three hops: Linux headend -> vswitch End (End.X) -> Linux End.DX4.

/// A second Linux router, lnx2 (locator fc00:3::/64), on vswitch's core2
/// link, with host3 behind it; Linux headend on lnx sends to host3
/// through a vswitch SID and lnx2's End.DX4.
fn three_hops(t: &str, end_x: bool) {
    let lab = Lab::new(t);
    let lnx2 = Netns::new(format!("vsw-{}-l2", lab.id));
    let host3 = Netns::new(format!("vsw-{}-h3", lab.id));
    let (core2, l2v, h3v) = (format!("{}d", lab.id), format!("{}m", lab.id), format!("{}n", lab.id));
    veth(&lnx2, &l2v, &host3, &h3v);
    lnx2.addr(&l2v, "10.3.0.2/24");
    host3.addr(&h3v, "10.3.0.1/24");
    host3.ip(&["route", "add", "default", "via", "10.3.0.2"]);
    // With End.X, vswitch has no route to lnx2's locator: only the SID's
    // adjacency gets there.
    let (via, route3) = if end_x {
        ("fc00:1::ec", "")
    } else {
        ("fc00:1::e", "  - { prefix: 'fc00:3::/64', via: [{ address: 'fc00:23::2', interface: core2 }] }\n")
    };
    let config = format!(
        "{}  - {{ name: core2, type: tap, host_ifname: {core2}, netns: {}, mac: '02:fe:00:00:0c:03',
      l3: {{ addresses: ['fc00:23::1/64'] }} }}
routes:
  - {{ prefix: 'fc00:2::/64', via: [{{ address: 'fc00:12::2', interface: core }}] }}
{route3}sr:
  localsids:
    - {{ sid: 'fc00:1::e', behavior: End }}
    - {{ sid: 'fc00:1::ec', behavior: End.X, interface: core2, next_hop: 'fc00:23::2' }}
",
        lab.interfaces(),
        lnx2.name
    );
    let d = lab.start(&config);
    standard_linux(&lab);
    assert!(lnx2.wait_link(&core2, LONG), "core2 tap");
    addr6(&lnx2, &core2, "fc00:23::2/64");
    router(&lnx2, &[&core2, &l2v], true);
    lnx2.ip(&["-6", "route", "add", "fc00::/16", "via", "fc00:23::1", "dev", &core2]);
    lnx2.ip(&["sr", "tunsrc", "set", "fc00:23::2"]);
    lnx2.ip(&[
        "-6",
        "route",
        "add",
        "fc00:3::d4",
        "encap",
        "seg6local",
        "action",
        "End.DX4",
        "nh4",
        "10.3.0.1",
        "dev",
        &l2v,
    ]);
    // Replies: lnx2 encapsulates to Linux End.DX4 on lnx, through vswitch.
    let back = ["route", "add", "10.9.0.0/24", "encap", "seg6", "mode", "encap", "segs", "fc00:2::d4", "dev", &core2];
    lnx2.ip(&back);
    // lnx routes to lnx2's locator via vswitch (for the outer lookup of its encapsulation).
    lab.lnx.ip(&["-6", "route", "add", "fc00:3::/64", "via", "fc00:12::1", "dev", &lab.core]);
    lab.linux_encap("-4", "10.3.0.0/24", "encap", &format!("{via},fc00:3::d4"));

    let cap_in = Capture::start(&lab.lnx, &lab.dir.0, "hop-in", &lab.core, &["ip6", "and", "dst", via]);
    let cap = Capture::start(&lnx2, &lab.dir.0, "hop", &core2, &["ip6", "and", "dst", "fc00:3::d4"]);
    ping_ok(&d, &lab.lhost, "10.3.0.1");
    let lines = cap.stop_when(|l| l.iter().filter(|x| x.contains("ICMP echo request")).count() >= 2);
    // The hop limit Linux's headend sent (64, less its own forwarding).
    let hlim = |l: &str| -> u32 {
        let at = l.find("hlim ").unwrap_or_else(|| panic!("no hop limit in {l}")) + 5;
        l[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    let sent = cap_in.stop_when(|l| l.iter().any(|x| x.contains("ICMP echo request")));
    let sent = sent.iter().find(|l| l.contains("ICMP echo request")).expect("the headend's packet");
    let sent_hlim = hlim(sent);
    assert!(sent.contains("segleft=1, last-entry=1"), "as Linux sent it: {sent}");
    let seen: Vec<&String> = lines.iter().filter(|l| l.contains("ICMP echo request")).collect();
    assert!(!seen.is_empty(), "nothing reached lnx2:\n{}", lines.join("\n"));
    for l in &seen {
        // vswitch's End took one hop, no more.
        assert_eq!(hlim(l), sent_hlim - 1, "hop limit: {l}\nas sent: {sent}");
        assert!(l.contains("fc00:12::2 > fc00:3::d4"), "outer addresses: {l}");
        assert!(
            l.contains("segleft=0")
                && l.contains("last-entry=1")
                && l.contains("[0]fc00:3::d4")
                && l.contains(&format!("[1]{via}")),
            "SRH after {via}: {l}"
        );
    }
    let e = sid(&d, via);
    assert!(e["packets"].as_u64().unwrap() >= 2, "{e}");
    if end_x {
        assert_eq!(e["params"]["neighbor"], "resolved", "{e}");
        assert_eq!(sid_packets(&d, "fc00:1::e"), 0);
    }
}

#[test]
fn three_hops_linux_headend_vswitch_end_linux_end_dx4() {
    three_hops("s3", false);
}

#[test]
fn three_hops_linux_headend_vswitch_end_x_linux_end_dx4() {
    three_hops("s4", true);
}

// ---------------------------------------------------------------------
// 4. L2: Linux l2encap <-> vswitch End.DX2, vswitch H.Encaps.L2 <->
//    Linux End.DX2: pod p2 and lhost in one Ethernet segment.

#[test]
fn l2_linux_l2encap_to_vswitch_end_dx2_and_vswitch_h_encaps_l2_to_linux_end_dx2() {
    let lab = Lab::new("s5");
    let l2 = format!("{}q", lab.id);
    let config = format!(
        "{}  - {{ name: l2pod, type: tap, host_ifname: {l2}, netns: {} }}
routes:
  - {{ prefix: 'fc00:2::/64', via: [{{ address: 'fc00:12::2', interface: core }}] }}
sr:
  source: 'fc00:12::1'
  localsids: [{{ sid: 'fc00:1::d2', behavior: End.DX2, interface: l2pod }}]
  policies: [{{ bsid: 'fc00:1::b:2', encap: l2, segment_lists: [{{ segments: ['fc00:2::d2'] }}] }}]
  steering: [{{ interface: l2pod, policy: 'fc00:1::b:2' }}]
",
        lab.interfaces(),
        lab.pod.name
    );
    let d = lab.start(&config);
    assert!(lab.pod.wait_link(&l2, LONG), "l2pod tap");
    // Linux: End.DX2 out of the veth to lhost; frames lhost sends to
    // 10.7.0.2 (addressed to lnx's veth MAC) are encapsulated whole.
    lab.linux_sid("fc00:2::d2", &["End.DX2", "oif", &lab.lv]);
    lab.lnx.addr(&lab.lv, "10.7.0.254/24");
    lab.linux_encap("-4", "10.7.0.2/32", "l2encap", "fc00:1::d2");
    // The pod's frames reach lhost as they are; lhost's frames reach the
    // pod with lnx's veth MAC as destination, so the pod takes that MAC.
    // No ARP crosses (lnx does not route it): static neighbors.
    let lnx_mac = mac_of(&lab.lnx, &lab.lv);
    let lhost_mac = mac_of(&lab.lhost, &lab.hv);
    lab.pod.ip(&["link", "set", &l2, "address", &lnx_mac]);
    lab.pod.addr(&l2, "10.7.0.2/24");
    lab.pod.ip(&["neigh", "replace", "10.7.0.1", "lladdr", &lhost_mac, "dev", &l2]);
    lab.lhost.addr(&lab.hv, "10.7.0.1/24");
    lab.lhost.ip(&["neigh", "replace", "10.7.0.2", "lladdr", &lnx_mac, "dev", &lab.hv]);

    let cap = Capture::start(&lab.lnx, &lab.dir.0, "l2", &lab.core, &["ip6"]);
    ping_ok(&d, &lab.pod, "10.7.0.1");
    let lines = cap.stop_when(|l| l.iter().any(|x| x.contains("> fc00:1::d2")));
    // Both directions carry whole frames: next header 143 (Ethernet).
    let to_linux: Vec<&String> = lines.iter().filter(|l| l.contains("> fc00:2::d2")).collect();
    let to_vsw: Vec<&String> = lines.iter().filter(|l| l.contains("> fc00:1::d2")).collect();
    assert!(!to_linux.is_empty() && !to_vsw.is_empty(), "{}", lines.join("\n"));
    assert!(to_linux.iter().all(|l| l.contains("RT6") && l.contains("[0]fc00:2::d2")), "{}", lines.join("\n"));
    assert!(sid_packets(&d, "fc00:1::d2") >= 2);
    assert!(policy_packets(&d, "fc00:1::b:2") >= 2);
}

// ---------------------------------------------------------------------
// 5. A policy with two weighted segment lists spreads flows.

#[test]
fn a_weighted_policy_spreads_many_flows_over_both_lists_each_flow_on_one() {
    let lab = Lab::new("s6");
    let config = format!(
        "{}routes:
  - {{ prefix: 'fc00:2::/64', via: [{{ address: 'fc00:12::2', interface: core }}] }}
sr:
  source: 'fc00:12::1'
  policies:
    - bsid: 'fc00:1::b:9'
      segment_lists:
        - {{ segments: ['fc00:2::a4'], weight: 3 }}
        - {{ segments: ['fc00:2::b4'], weight: 1 }}
  steering: [{{ prefix: 10.9.0.0/24, policy: 'fc00:1::b:9' }}]
",
        lab.interfaces()
    );
    let d = lab.start(&config);
    lab.linux_sid("fc00:2::a4", &["End.DX4", "nh4", "10.9.0.1"]);
    lab.linux_sid("fc00:2::b4", &["End.DX4", "nh4", "10.9.0.1"]);
    // Neighbors resolved first (vswitch's of lnx on the core link, the
    // pod's of vswitch), so no flow's first packet waits for them.
    ping_ok(&d, &lab.pod, "10.0.1.1");
    lab.lnx.exec_ok(&["ping", "-n", "-c", "2", "-w", "30", "fc00:12::1"]);
    let _ = lab.pod.exec(&["ping", "-n", "-c", "2", "-W", "1", "10.9.0.1"]);
    assert!(wait_for(LONG, || policy_packets(&d, "fc00:1::b:9") >= 1));
    let cap = Capture::start(&lab.lnx, &lab.dir.0, "spread", &lab.core, &["ip6", "and", "src", "fc00:12::1"]);
    const FLOWS: u32 = 400;
    const PER_FLOW: u32 = 3;
    let script = format!(
        "import socket, time\nfor r in range({PER_FLOW}):\n    for p in range(20000, 20000 + {FLOWS}):\n        \
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n        \
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n        s.bind(('10.0.1.2', p))\n        \
         s.sendto(b'flow', ('10.9.0.1', 9))\n        s.close()\n        time.sleep(0.001)\n    time.sleep(0.2)\n"
    );
    lab.pod.exec_ok(&[PYTHON, "-c", &script]);
    let total = (FLOWS * PER_FLOW) as usize;
    let lines = cap.stop_when(|l| l.iter().filter(|x| x.contains(".9: UDP")).count() >= total);
    let mut per_flow: std::collections::HashMap<u32, std::collections::HashSet<&str>> = Default::default();
    let (mut a, mut b) = (0usize, 0usize);
    for l in lines.iter().filter(|l| l.contains("10.9.0.1.9: UDP")) {
        let list = if l.contains("> fc00:2::a4:") {
            a += 1;
            "a"
        } else if l.contains("> fc00:2::b4:") {
            b += 1;
            "b"
        } else {
            panic!("to neither list: {l}")
        };
        let port: u32 = l
            .split("10.0.1.2.")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no source port in {l}"));
        per_flow.entry(port).or_default().insert(list);
    }
    assert!(
        a + b >= total * 9 / 10,
        "captured {} of {total}; policy counted {}\n{}\n{}",
        a + b,
        policy_packets(&d, "fc00:1::b:9"),
        d.ctl_ok(&["show", "interfaces"]),
        d.ctl_ok(&["show", "errors"])
    );
    let split: Vec<(&u32, &std::collections::HashSet<&str>)> = per_flow.iter().filter(|(_, s)| s.len() > 1).collect();
    assert!(split.is_empty(), "flows on both lists: {split:?}");
    let flows_a = per_flow.values().filter(|s| s.contains("a")).count();
    let share = flows_a as f64 / per_flow.len() as f64;
    // 3:1 -> 75 %; 400 flows: standard deviation ~2.2 %.
    assert!((0.65..=0.85).contains(&share), "weight-3 list got {flows_a} of {} flows", per_flow.len());
    assert!(flows_a < per_flow.len(), "the weight-1 list got no flow");
    eprintln!("{flows_a} flows on list a, {} on list b ({a} and {b} packets)", per_flow.len() - flows_a);
    assert!(policy_packets(&d, "fc00:1::b:9") >= total as u64);
}

// ---------------------------------------------------------------------
// 6. Malformed SRHs crafted with scapy: counted, dropped, nothing crashes.

const SCAPY: &str = r#"
import sys, struct, socket
from scapy.all import Ether, IPv6, UDP, Raw, sendp, conf
conf.verb = 0
iface, dst_mac, src_mac, src, count = sys.argv[1:6]
def a(x): return socket.inet_pton(socket.AF_INET6, x)
def srh(nh, sl, le, segs, hdrlen=None, tlv=b""):
    body = b"".join(a(s) for s in reversed(segs)) + tlv
    if hdrlen is None: hdrlen = len(body) // 8
    return struct.pack("!BBBBBBH", nh, hdrlen, 4, sl, le, 0, 0) + body
def pkt(dst, ext, plen=None):
    ip = IPv6(src=src, dst=dst, nh=43, hlim=64)
    if plen is not None: ip.plen = plen
    return Ether(dst=dst_mac, src=src_mac) / ip / Raw(ext)
udp = bytes(UDP(sport=1000, dport=9) / Raw(b"x" * 8))
segs = ["fc00:2::9", "fc00:1::e"]
hmac_tlv = bytes([5, 38, 0, 0]) + struct.pack("!I", 7) + b"\xab" * 32
kinds = {
    # Segments Left 5 with two segments.
    "sl": lambda: pkt("fc00:1::e", srh(17, 5, 1, segs) + udp),
    # Last Entry 6 in a header with room for two.
    "le": lambda: pkt("fc00:1::e", srh(17, 1, 6, segs) + udp),
    # A PadN TLV whose length runs past the header.
    "tlv": lambda: pkt("fc00:1::e", srh(17, 1, 1, segs, tlv=bytes([4, 30]) + b"\0" * 6) + udp),
    # Hdr Ext Len claims more than the packet holds.
    "trunc": lambda: pkt("fc00:1::e", srh(17, 1, 1, segs, hdrlen=40)),
    # An HMAC TLV with key 7 and a wrong HMAC, at a SID that requires one.
    "hmac": lambda: pkt("fc00:1::ac", srh(17, 1, 1, ["fc00:2::9", "fc00:1::ac"], tlv=hmac_tlv) + udp),
    # No HMAC at all there.
    "nohmac": lambda: pkt("fc00:1::ac", srh(17, 1, 1, ["fc00:2::9", "fc00:1::ac"]) + udp),
}
frames = [kinds[k]() for k in sys.argv[6:] for _ in range(int(count))]
sendp(frames, iface=iface, inter=0.002)
"#;

#[test]
fn malformed_srhs_from_scapy_are_counted_and_dropped_and_vswitch_keeps_forwarding() {
    let lab = Lab::new("s7");
    let config = format!(
        "{}{}  hmac_keys: [{{ id: 7, secret: a secret shared with the peers }}]
",
        lab.interfaces(),
        standard_sr("encaps", "'fc00:2::d4'").replace(
            "    - { sid: 'fc00:1::e', behavior: End }\n",
            "    - { sid: 'fc00:1::e', behavior: End }\n    - { sid: 'fc00:1::ac', behavior: End, hmac: required }\n"
        )
    );
    let mut d = lab.start(&config);
    standard_linux(&lab);
    lab.linux_encap("-4", "10.0.1.0/24", "encap", "fc00:1::d4");
    ping_ok(&d, &lab.lhost, "10.0.1.2");

    let script = lab.dir.0.join("srh.py");
    std::fs::write(&script, SCAPY).unwrap();
    let src_mac = mac_of(&lab.lnx, &lab.core);
    const N: u64 = 5;
    let cases: &[(&str, &str, &str)] = &[
        ("sl", "sr-localsid", "srh segments left beyond last entry + 1"),
        ("le", "sr-localsid", "srh last entry beyond header length"),
        ("tlv", "sr-localsid", "srh tlv length overruns header"),
        ("trunc", "ip6-input", "malformed or truncated extension headers"),
        ("hmac", "sr-localsid", "srh hmac mismatch"),
        ("nohmac", "sr-localsid", "srh hmac missing"),
    ];
    let before: Vec<u64> = cases.iter().map(|(_, node, reason)| d.error_count(node, reason)).collect();
    let drops_before =
        sid(&d, "fc00:1::e")["drops"].as_u64().unwrap() + sid(&d, "fc00:1::ac")["drops"].as_u64().unwrap();
    let count = N.to_string();
    let mut args = vec![PYTHON, script.to_str().unwrap(), &lab.core, CORE_MAC, &src_mac, "fc00:12::2", &count];
    args.extend(cases.iter().map(|c| c.0));
    let out = lab.lnx.exec(&args);
    assert!(out.status.success(), "scapy: {}", output_text(&out));
    for (i, (kind, node, reason)) in cases.iter().enumerate() {
        let want = before[i] + N;
        let reached = wait_for(LONG, || d.error_count(node, reason) >= want);
        let now = d.error_count(node, reason);
        assert!(
            reached && now == want,
            "{kind}: {node} \"{reason}\": {} -> {now}, expected +{N}\n{}",
            before[i],
            d.ctl_ok(&["show", "errors"])
        );
    }
    // The SIDs count them too (the truncated ones never reached a SID).
    let drops = sid(&d, "fc00:1::e")["drops"].as_u64().unwrap() + sid(&d, "fc00:1::ac")["drops"].as_u64().unwrap();
    assert_eq!(drops - drops_before, 5 * N, "{}", d.ctl_ok(&["show", "sr", "localsids"]));
    assert!(d.running(), "vswitch died:\n{}", d.log_text());
    ping_ok(&d, &lab.lhost, "10.0.1.2");
}
