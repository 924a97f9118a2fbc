//! SR proxies (End.AS, End.AD, End.AM) in front of SR-unaware service
//! functions, against the Linux kernel's seg6 / seg6local, as root.
//!
//! The service functions (SFs) are plain namespaces with no SRv6
//! configuration at all: they forward (ip_forward, routes) between their
//! vswitch interfaces. A Linux headend steers a client's traffic through a
//! chain of vswitch proxy SIDs and a Linux End.DX4 to a server; the replies
//! come back directly (Linux H.Encaps to the headend's End.DX4). The
//! Ethernet proxy's test stretches one Ethernet segment instead (Linux
//! l2encap and End.DX2), its SF a Linux bridge. Each test
//! checks ping and TCP end to end, what the SFs saw on their wire
//! (tcpdump), the per-SID counters in both directions and, with scapy, the
//! malformed cases. The End.AD chain runs on two workers, the proxy's two
//! halves on different ones (its header cache is shared). Every wait polls
//! with a generous timeout.
//!
//! ```text
//!  cl ──veth── hd ══tap core══ vswitch ══tap core2══ eg ──veth── srv
//!  10.8.0.1   (Linux headend,   │  │  │              (Linux End.DX4     10.7.0.2
//!              End.DX4 back)    │  │  │               fc00:3::d4)
//!                      sf1-in / sf1-out │ sf2  (End.AD SF, IPv4; End.AM SF, one interface)
//! ```

mod common;

use common::{addr6, mac_of, output_text, router, sysctl, tag, veth, wait_for, Capture, Daemon, Netns, TempDir};
use serde_json::Value;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// Debian's python, which has scapy.
const PYTHON: &str = "/usr/bin/python3";

/// vswitch's MAC on the headend's link (fixed, so scapy can address it).
const CORE_MAC: &str = "02:fe:00:00:0d:01";

/// vswitch's MAC towards an IPv4 SF (what the SF receives from the proxy
/// is told apart from what the SF itself sends by it).
const SF_MAC: &str = "02:fe:00:00:0d:0a";

fn diag(d: &Daemon) -> String {
    format!(
        "--- show sr localsids ---\n{}\n--- show errors ---\n{}\n--- daemon log ---\n{}",
        d.ctl_ok(&["show", "sr", "localsids"]),
        d.ctl_ok(&["show", "errors"]),
        d.log_text()
    )
}

/// Pings `dst` from `ns` (`count` echo requests, all answered) and
/// returns how many requests ping sent.
fn ping_counted(d: &Daemon, ns: &Netns, dst: &str, count: u32) -> u64 {
    let out = ns.exec(&["ping", "-n", "-c", &count.to_string(), "-i", "0.2", "-w", "30", dst]);
    let text = output_text(&out);
    assert!(out.status.success(), "ping {dst} from {}:\n{text}\n{}", ns.name, diag(d));
    text.lines()
        .find_map(|l| l.split(" packets transmitted").next().filter(|_| l.contains(" packets transmitted")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in {text}"))
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

/// (to the SF: packets, drops; back from it: packets, drops).
fn proxy_counts(d: &Daemon, s: &str) -> [u64; 4] {
    let e = sid(d, s);
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("{s}: {e}"));
    [n(&e["packets"]), n(&e["drops"]), n(&e["return"]["packets"]), n(&e["return"]["drops"])]
}

/// The lab without its SFs: client, headend, egress, server.
struct Lab {
    id: String,
    dir: TempDir,
    cl: Netns,
    hd: Netns,
    eg: Netns,
    srv: Netns,
}

impl Lab {
    fn new(t: &str) -> Lab {
        let id = tag(t);
        let lab = Lab {
            dir: TempDir::new(&id),
            cl: Netns::new(format!("sp-{id}-cl")),
            hd: Netns::new(format!("sp-{id}-hd")),
            eg: Netns::new(format!("sp-{id}-eg")),
            srv: Netns::new(format!("sp-{id}-srv")),
            id,
        };
        let (clv, hdv, egv, srvv) = lab.devs();
        veth(&lab.cl, &clv, &lab.hd, &hdv);
        lab.cl.addr(&clv, "10.8.0.1/24");
        lab.hd.addr(&hdv, "10.8.0.2/24");
        lab.cl.ip(&["route", "add", "default", "via", "10.8.0.2"]);
        veth(&lab.srv, &srvv, &lab.eg, &egv);
        lab.srv.addr(&srvv, "10.7.0.2/24");
        lab.eg.addr(&egv, "10.7.0.1/24");
        lab.srv.ip(&["route", "add", "default", "via", "10.7.0.1"]);
        // No segmentation offloads: the kernel's SRv6 encapsulation of a
        // large TCP segment (l2encap in particular) would not be cut up.
        for (ns, dev) in [(&lab.cl, &clv), (&lab.hd, &hdv), (&lab.eg, &egv), (&lab.srv, &srvv)] {
            ns.exec_ok(&["ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off"]);
        }
        lab
    }

    /// The veth ends: in cl, in hd, in eg, in srv.
    fn devs(&self) -> (String, String, String, String) {
        let id = &self.id;
        (format!("{id}k"), format!("{id}h"), format!("{id}g"), format!("{id}s"))
    }

    /// A tap name of this lab.
    fn tap(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.id)
    }

    /// vswitch's links to the headend and the egress, and its routes to
    /// their locators.
    fn core_config(&self) -> String {
        format!(
            "interfaces:
  - {{ name: core, type: tap, host_ifname: {c}, netns: {hd}, mac: '{CORE_MAC}', mtu: 9000,
      l3: {{ addresses: ['fc00:12::1/64'] }} }}
  - {{ name: core2, type: tap, host_ifname: {e}, netns: {eg}, mac: '02:fe:00:00:0d:02', mtu: 9000,
      l3: {{ addresses: ['fc00:23::1/64'] }} }}
",
            c = self.tap("c"),
            e = self.tap("e"),
            hd = self.hd.name,
            eg = self.eg.name
        )
    }

    const ROUTES: &'static str = "routes:
  - { prefix: 'fc00:2::/64', via: [{ address: 'fc00:12::2', interface: core }] }
  - { prefix: 'fc00:3::/64', via: [{ address: 'fc00:23::2', interface: core2 }] }
";

    /// Starts vswitch, then the Linux ends of the core links: hd (End.DX4
    /// to cl, headend towards srv through `segs`), eg (End.DX4 to srv,
    /// headend back to hd's End.DX4).
    fn start(&self, config: &str, segs: &str, extra: &[&str]) -> Daemon {
        let d = Daemon::start(&self.dir.0, Some(config), extra);
        let (c, e) = (self.tap("c"), self.tap("e"));
        let (_, hdv, egv, _) = self.devs();
        assert!(self.hd.wait_link(&c, LONG), "core tap");
        assert!(self.eg.wait_link(&e, LONG), "core2 tap");
        for (ns, dev, addr, lan, tunsrc) in
            [(&self.hd, &c, "fc00:12::2/64", &hdv, "fc00:12::2"), (&self.eg, &e, "fc00:23::2/64", &egv, "fc00:23::2")]
        {
            ns.ip(&["link", "set", dev, "mtu", "9000"]);
            addr6(ns, dev, addr);
            router(ns, &[dev, lan], true);
            ns.ip(&["sr", "tunsrc", "set", tunsrc]);
        }
        self.hd.ip(&["-6", "route", "add", "fc00::/16", "via", "fc00:12::1", "dev", &c]);
        self.eg.ip(&["-6", "route", "add", "fc00::/16", "via", "fc00:23::1", "dev", &e]);
        self.hd.ip(&[
            "-6",
            "route",
            "add",
            "fc00:2::d4",
            "encap",
            "seg6local",
            "action",
            "End.DX4",
            "nh4",
            "10.8.0.1",
            "dev",
            &hdv,
        ]);
        self.eg.ip(&[
            "-6",
            "route",
            "add",
            "fc00:3::d4",
            "encap",
            "seg6local",
            "action",
            "End.DX4",
            "nh4",
            "10.7.0.2",
            "dev",
            &egv,
        ]);
        self.hd.ip(&["route", "add", "10.7.0.0/24", "encap", "seg6", "mode", "encap", "segs", segs, "dev", &c]);
        self.eg.ip(&["route", "add", "10.8.0.0/24", "encap", "seg6", "mode", "encap", "segs", "fc00:2::d4", "dev", &e]);
        d
    }

    /// An IPv4 SF with two vswitch links: `a` (from vswitch, `a_addr`) and
    /// `b` (back to vswitch, `b_addr`, default route via `b_gw`). Nothing
    /// SRv6 about it.
    fn ipv4_sf(&self, sf: &Netns, a: &str, a_addr: &str, b: &str, b_addr: &str, b_gw: &str) {
        assert!(sf.wait_link(a, LONG) && sf.wait_link(b, LONG), "SF taps");
        sf.addr(a, a_addr);
        sf.addr(b, b_addr);
        router(sf, &[a, b], false);
        sf.ip(&["route", "add", "default", "via", b_gw, "dev", b]);
    }

    /// TCP through the chain: iperf3 from cl to srv for a second; the
    /// bytes the server received.
    fn tcp(&self, d: &Daemon, server_addr: &str) -> u64 {
        let mut server = self.srv.spawn(&self.dir.0, "iperf3-server", &["iperf3", "-s", "-1", "-B", server_addr]);
        let listening = wait_for(LONG, || {
            let ss = self.srv.exec(&["ss", "-Hltn", "sport = :5201"]);
            String::from_utf8_lossy(&ss.stdout).contains("LISTEN") || !server.running()
        });
        assert!(listening && server.running(), "iperf3 -s: {}{}", server.stdout_text(), server.stderr_text());
        let out = self.cl.exec(&["iperf3", "-c", server_addr, "-t", "1", "-J", "--connect-timeout", "10000"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let j: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("iperf3 -J is not JSON ({e}): {}\n{}", output_text(&out), diag(d)));
        assert!(out.status.success() && j.get("error").is_none(), "iperf3 failed: {text}\n{}", diag(d));
        let received = j["end"]["sum_received"]["bytes"].as_u64().unwrap();
        assert!(received > 0, "nothing received: {text}");
        assert!(server.wait(LONG).is_some_and(|s| s.success()), "iperf3 -s: {}", server.stderr_text());
        eprintln!(
            "{}: iperf3 through the proxy chain: {:.0} Mbit/s",
            self.id,
            j["end"]["sum_received"]["bits_per_second"].as_f64().unwrap() / 1e6
        );
        received
    }
}

// ---------------------------------------------------------------------
// 1. End.AM then End.AD: hd encap segs <AM>, <AD>, <Linux End.DX4>.

const SCAPY: &str = r#"
import sys, struct, socket
from scapy.all import Ether, IPv6, IP, ICMP, Raw, sendp, conf
conf.verb = 0
iface, dst_mac, src_mac, count = sys.argv[1:5]
def a(x): return socket.inet_pton(socket.AF_INET6, x)
def srh(nh, sl, segs):
    body = b"".join(a(s) for s in reversed(segs))
    return struct.pack("!BBBBBBH", nh, len(body) // 8, 4, sl, len(segs) - 1, 0, 0) + body
def pkt(dst, ext):
    return Ether(dst=dst_mac, src=src_mac) / IPv6(src="fc00:12::2", dst=dst, nh=43, hlim=64) / Raw(ext)
v4 = bytes(IP(src="10.8.0.1", dst="10.7.0.2") / ICMP() / Raw(b"x" * 8))
v6 = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2", nh=59))
kinds = {
    # The End.AD SID with Segments Left 0: it cannot be the last SID.
    "ad-sl0": lambda: pkt("fc00:1::a2", srh(4, 0, ["fc00:1::a2", "fc00:3::d4"]) + v4),
    # The IPv4 End.AD SID with an IPv6 inner packet.
    "ad-v6": lambda: pkt("fc00:1::a2", srh(41, 1, ["fc00:1::a2", "fc00:3::d4"]) + v6),
    # The End.AM SID with Segments Left 0.
    "am-sl0": lambda: pkt("fc00:1::a1", srh(4, 0, ["fc00:1::a1"]) + v4),
}
frames = [kinds[k]() for k in sys.argv[5:] for _ in range(int(count))]
sendp(frames, iface=iface, inter=0.002)
"#;

#[test]
fn end_ad_and_end_am_chain_sr_unaware_namespaces_to_a_linux_end_dx4() {
    let lab = Lab::new("sp1");
    let sf1 = Netns::new(format!("sp-{}-sf1", lab.id));
    let sf2 = Netns::new(format!("sp-{}-sf2", lab.id));
    let (a, b, m) = (lab.tap("a"), lab.tap("b"), lab.tap("m"));
    let config = format!(
        "{core}  - {{ name: sf1-in, type: tap, host_ifname: {a}, netns: {sf1}, mac: '{SF_MAC}', l3: {{ addresses: [10.5.1.1/24] }} }}
  - {{ name: sf1-out, type: tap, host_ifname: {b}, netns: {sf1}, l3: {{ addresses: [10.5.2.1/24] }} }}
  - {{ name: sf2, type: tap, host_ifname: {m}, netns: {sf2}, mtu: 9000, l3: {{ addresses: ['fc00:52::1/64'] }} }}
{routes}sr:
  localsids:
    - {{ sid: 'fc00:1::a1', behavior: End.AM, interface: sf2, next_hop: 'fc00:52::2', return_interface: sf2 }}
    - {{ sid: 'fc00:1::a2', behavior: end.ad, inner: ipv4, interface: sf1-in, next_hop: 10.5.1.2,
        return_interface: sf1-out }}
",
        core = lab.core_config(),
        routes = Lab::ROUTES,
        sf1 = sf1.name,
        sf2 = sf2.name,
    );
    // Two workers: a port's queue i goes to worker (port + i) % 2, so core
    // (port 0) and sf1-out (port 3) are read by different workers, and
    // End.AD's headers cached on one are pushed back by the other.
    let d = lab.start(&config, "fc00:1::a1,fc00:1::a2,fc00:3::d4", &["--workers", "2"]);
    // SF1 (behind End.AD): IPv4 in on a, out by b. SF2 (behind End.AM):
    // one IPv6 interface, the SR packets routed back where they came from.
    lab.ipv4_sf(&sf1, &a, "10.5.1.2/24", &b, "10.5.2.2/24", "10.5.2.1");
    assert!(sf2.wait_link(&m, LONG), "sf2 tap");
    sf2.ip(&["link", "set", &m, "mtu", "9000"]);
    addr6(&sf2, &m, "fc00:52::2/64");
    router(&sf2, &[&m], false);
    sf2.ip(&["-6", "route", "add", "fc00:3::/64", "via", "fc00:52::1", "dev", &m]);

    // Before anything went to SF1, what it sends back has no headers to
    // go into: counted, dropped.
    let empty = d.error_count("sr-proxy-return", "proxy cache empty");
    let _ = sf1.exec(&["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "10.7.0.2"]);
    assert!(wait_for(LONG, || d.error_count("sr-proxy-return", "proxy cache empty") >= empty + 2), "{}", diag(&d));
    assert_eq!(d.error_count("sr-proxy-return", "proxy cache empty"), empty + 2);
    assert_eq!(proxy_counts(&d, "fc00:1::a2"), [0, 0, 0, 2], "{}", diag(&d));

    // Warm up (ARP / ND on every link), then count exactly.
    let _ = ping_counted(&d, &lab.cl, "10.7.0.2", 2);
    let (ad0, am0) = (proxy_counts(&d, "fc00:1::a2"), proxy_counts(&d, "fc00:1::a1"));
    let cap1 = Capture::start(&sf1, &lab.dir.0, "sf1", &a, &["ether", "src", SF_MAC, "and", "(ip", "or", "ip6)"]);
    let cap2 = Capture::start(&sf2, &lab.dir.0, "sf2", &m, &["ip6", "and", "ip6[6] == 43"]);
    let sent = ping_counted(&d, &lab.cl, "10.7.0.2", 5);
    let (ad, am) = (proxy_counts(&d, "fc00:1::a2"), proxy_counts(&d, "fc00:1::a1"));
    let delta = |x: [u64; 4], y: [u64; 4]| -> [u64; 4] { std::array::from_fn(|i| x[i] - y[i]) };
    // Each echo request went to each SF once and came back once; the
    // replies take the direct way (eg -> hd).
    assert_eq!(delta(ad, ad0), [sent, 0, sent, 0], "End.AD\n{}", diag(&d));
    assert_eq!(delta(am, am0), [sent, 0, sent, 0], "End.AM\n{}", diag(&d));
    // The two halves of End.AD ran on different workers: sr-localsid-d
    // (End.AD only; End.AM is sr-localsid) on core's, sr-proxy-return also
    // on another (sf1-out's; sf2's End.AM return is on core's worker).
    let runtime = d.show_json(&["runtime"]);
    let ran = |node: &str| -> Vec<u64> {
        let list = runtime["workers"].as_array().expect("workers is a list");
        let has = |w: &&Value| w["nodes"].as_array().is_some_and(|n| n.iter().any(|n| n["name"] == node));
        list.iter().filter(has).map(|w| w["worker"].as_u64().unwrap()).collect()
    };
    let (out, back) = (ran("sr-localsid-d"), ran("sr-proxy-return"));
    assert!(
        out.len() == 1 && back.iter().any(|w| *w != out[0]),
        "sr-localsid-d on {out:?}, sr-proxy-return on {back:?}"
    );
    let show = sid(&d, "fc00:1::a2");
    assert_eq!(show["behavior"], "End.AD");
    assert_eq!(
        (show["params"]["inner"].as_str(), show["params"]["return_interface"].as_str()),
        (Some("ipv4"), Some("sf1-out"))
    );
    assert_eq!(show["params"]["cached_header_bytes"], 40 + 8 + 3 * 16, "{show}");

    // SF1 got plain IPv4 from vswitch: no IPv6 at all, the echo requests
    // from the client with their own addresses.
    let echo = "10.8.0.1 > 10.7.0.2: ICMP echo request";
    let lines = cap1.stop_when(|l| l.iter().filter(|x| x.contains(echo)).count() as u64 >= sent);
    assert_eq!(lines.iter().filter(|l| l.contains(echo)).count() as u64, sent, "{}", lines.join("\n"));
    assert!(lines.iter().all(|l| l.starts_with("IP ")), "not plain IPv4:\n{}", lines.join("\n"));
    // SF2 saw the final destination, SRH kept (Segments Left 1, the End.AD
    // SID next), never the End.AM SID itself; each packet twice (in and
    // back out).
    let lines = cap2.stop_when(|l| l.iter().filter(|x| x.contains(echo)).count() as u64 >= 2 * sent);
    let sr: Vec<&String> = lines.iter().filter(|l| l.contains(echo)).collect();
    assert_eq!(sr.len() as u64, 2 * sent, "{}", lines.join("\n"));
    for l in &sr {
        assert!(l.contains("fc00:12::2 > fc00:3::d4:"), "not masqueraded: {l}");
        assert!(l.contains("segleft=1") && l.contains("[1]fc00:1::a2") && l.contains("[2]fc00:1::a1"), "SRH: {l}");
    }
    assert!(lines.iter().all(|l| !l.contains("> fc00:1::a1:")), "the End.AM SID reached the SF");

    // TCP end to end through both SFs.
    let returned = |s: &str| sid(&d, s)["return"]["bytes"].as_u64().unwrap();
    let (ad_bytes, am_bytes) = (returned("fc00:1::a2"), returned("fc00:1::a1"));
    let received = lab.tcp(&d, "10.7.0.2");
    // Every byte the server got came back from both SFs (with headers).
    let ad_bytes = returned("fc00:1::a2") - ad_bytes;
    let am_bytes = returned("fc00:1::a1") - am_bytes;
    assert!(ad_bytes >= received && am_bytes >= received, "{ad_bytes} {am_bytes} {received}\n{}", diag(&d));

    // Malformed: each counted under its reason and as a drop of its SID;
    // forwarding goes on.
    let script = lab.dir.0.join("proxy.py");
    std::fs::write(&script, SCAPY).unwrap();
    let src_mac = mac_of(&lab.hd, &lab.tap("c"));
    const N: u64 = 3;
    let cases: &[(&str, &str, &str, &str)] = &[
        ("ad-sl0", "sr-localsid-d", "segments left zero at non-final sid", "fc00:1::a2"),
        ("ad-v6", "sr-localsid-d", "upper-layer header not allowed", "fc00:1::a2"),
        ("am-sl0", "sr-localsid", "segments left zero at non-final sid", "fc00:1::a1"),
    ];
    let errors_before: Vec<u64> = cases.iter().map(|c| d.error_count(c.1, c.2)).collect();
    let (ad0, am0) = (proxy_counts(&d, "fc00:1::a2"), proxy_counts(&d, "fc00:1::a1"));
    let count = N.to_string();
    let c = lab.tap("c");
    let mut args = vec![PYTHON, script.to_str().unwrap(), &c, CORE_MAC, &src_mac, &count];
    args.extend(cases.iter().map(|c| c.0));
    let out = lab.hd.exec(&args);
    assert!(out.status.success(), "scapy: {}", output_text(&out));
    for (i, (kind, node, reason, _)) in cases.iter().enumerate() {
        let want = errors_before[i] + N;
        let reached = wait_for(LONG, || d.error_count(node, reason) >= want);
        let now = d.error_count(node, reason);
        assert!(
            reached && now == want,
            "{kind}: {node} {reason:?}: {} -> {now}, expected +{N}\n{}",
            errors_before[i],
            diag(&d)
        );
    }
    assert_eq!(delta(proxy_counts(&d, "fc00:1::a2"), ad0), [0, 2 * N, 0, 0], "{}", diag(&d));
    assert_eq!(delta(proxy_counts(&d, "fc00:1::a1"), am0), [0, N, 0, 0], "{}", diag(&d));
    let _ = ping_counted(&d, &lab.cl, "10.7.0.2", 2);
}

// ---------------------------------------------------------------------
// 2. End.AS: the static proxy pushes its configured headers back.

#[test]
fn end_as_sends_plain_ipv4_to_the_sf_and_pushes_its_static_headers_back() {
    let lab = Lab::new("sp2");
    let sf = Netns::new(format!("sp-{}-sf", lab.id));
    let (a, b) = (lab.tap("a"), lab.tap("b"));
    let config = |extra: &str| {
        format!(
            "{core}  - {{ name: sf-in, type: tap, host_ifname: {a}, netns: {sf}, mac: '{SF_MAC}', l3: {{ addresses: [10.5.3.1/24] }} }}
  - {{ name: sf-out, type: tap, host_ifname: {b}, netns: {sf}, l3: {{ addresses: [10.5.4.1/24] }} }}
{routes}sr:
  source: 'fc00:12::1'
  localsids:
    - {{ sid: 'fc00:1::a5', behavior: End.AS, inner: ipv4, interface: sf-in, next_hop: 10.5.3.2,
        return_interface: sf-out, segments: ['fc00:3::d4'] }}
{extra}",
            core = lab.core_config(),
            routes = Lab::ROUTES,
            sf = sf.name,
        )
    };
    // The headend's segments after the proxy are not used by End.AS: the
    // static headers send the traffic on to fc00:3::d4.
    let d = lab.start(&config(""), "fc00:1::a5,fc00:3::99", &[]);
    lab.ipv4_sf(&sf, &a, "10.5.3.2/24", &b, "10.5.4.2/24", "10.5.4.1");
    let _ = ping_counted(&d, &lab.cl, "10.7.0.2", 2);
    let before = proxy_counts(&d, "fc00:1::a5");
    let cap = Capture::start(&sf, &lab.dir.0, "sf", &a, &["ether", "src", SF_MAC, "and", "(ip", "or", "ip6)"]);
    let sent = ping_counted(&d, &lab.cl, "10.7.0.2", 5);
    let after = proxy_counts(&d, "fc00:1::a5");
    let delta: [u64; 4] = std::array::from_fn(|i| after[i] - before[i]);
    assert_eq!(delta, [sent, 0, sent, 0], "{}", diag(&d));
    let echo = "10.8.0.1 > 10.7.0.2: ICMP echo request";
    let lines = cap.stop_when(|l| l.iter().filter(|x| x.contains(echo)).count() as u64 >= sent);
    assert_eq!(lines.iter().filter(|l| l.contains(echo)).count() as u64, sent, "{}", lines.join("\n"));
    assert!(lines.iter().all(|l| l.starts_with("IP ")), "not plain IPv4:\n{}", lines.join("\n"));
    let show = sid(&d, "fc00:1::a5");
    assert_eq!(
        (show["behavior"].as_str(), show["params"]["return_destination"].as_str()),
        (Some("End.AS"), Some("fc00:3::d4"))
    );
    let bytes = sid(&d, "fc00:1::a5")["return"]["bytes"].as_u64().unwrap();
    let received = lab.tcp(&d, "10.7.0.2");
    assert!(sid(&d, "fc00:1::a5")["return"]["bytes"].as_u64().unwrap() - bytes >= received, "{}", diag(&d));

    // A bad proxy is refused with its field path, nothing applied.
    let bad = config(
        "    - { sid: 'fc00:1::a6', behavior: End.AD, inner: ipv4, interface: sf-in, next_hop: 10.5.3.2,
        return_interface: sf-out }
    - { sid: 'fc00:1::a7', behavior: End.AM, interface: core, next_hop: 'fc00:12::2' }
",
    );
    let path = lab.dir.0.join("bad.yaml");
    std::fs::write(&path, bad).unwrap();
    let out = d.ctl(&["apply", "-f", path.to_str().unwrap()]);
    let text = output_text(&out);
    assert!(!out.status.success(), "a bad proxy was applied: {text}");
    for want in [
        "sr.localsids[1] (fc00:1::a6).return_interface: \"sf-out\" is also the return interface of sr.localsids[0]",
        "sr.localsids[2] (fc00:1::a7).return_interface: required by End.AM",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    let j = d.show_json(&["sr", "localsids"]);
    assert_eq!(j["localsids"].as_array().map(Vec::len), Some(1), "{j}");
    let _ = ping_counted(&d, &lab.cl, "10.7.0.2", 2);
}

// ---------------------------------------------------------------------
// 3. End.AD with Ethernet inside: Linux l2encap, the SF a Linux bridge.

#[test]
fn end_ad_ethernet_hands_whole_frames_to_a_bridging_sf_and_back() {
    let lab = Lab::new("sp3");
    let sf = Netns::new(format!("sp-{}-sf", lab.id));
    // The SF: IPv6 off before its links exist, so that it sends nothing of
    // its own (router solicitations, MLD) into the chain.
    sysctl(&sf, "net.ipv6.conf.default.disable_ipv6=1");
    sysctl(&sf, "net.ipv6.conf.all.disable_ipv6=1");
    let (a, b) = (lab.tap("a"), lab.tap("b"));
    let config = format!(
        "{core}  - {{ name: sf-a, type: tap, host_ifname: {a}, netns: {sf} }}
  - {{ name: sf-b, type: tap, host_ifname: {b}, netns: {sf} }}
{routes}sr:
  localsids:
    - {{ sid: 'fc00:1::a2', behavior: End.AD, inner: ethernet, interface: sf-a, return_interface: sf-b }}
",
        core = lab.core_config(),
        routes = Lab::ROUTES,
        sf = sf.name,
    );
    let d = lab.start(&config, "fc00:1::a2", &[]);
    // One Ethernet segment from cl to srv, stretched over SRv6: hd
    // encapsulates whole frames to 10.9.0.2 (l2encap) through the proxy
    // to eg's End.DX2; the replies go back by eg's l2encap to hd's
    // End.DX2. No ARP crosses: static neighbors, and each end takes the
    // MAC the other's frames are addressed to.
    let (clv, hdv, egv, srvv) = lab.devs();
    for (ns, dev, addr) in [(&lab.cl, &clv, "10.9.0.1/24"), (&lab.srv, &srvv, "10.9.0.2/24")] {
        ns.ip(&["addr", "flush", "dev", dev]);
        ns.addr(dev, addr);
    }
    lab.hd.addr(&hdv, "10.9.0.254/24");
    lab.eg.addr(&egv, "10.9.0.253/24");
    let (hd_mac, eg_mac) = (mac_of(&lab.hd, &hdv), mac_of(&lab.eg, &egv));
    lab.srv.ip(&["link", "set", &srvv, "address", &hd_mac]);
    lab.cl.ip(&["link", "set", &clv, "address", &eg_mac]);
    lab.cl.ip(&["neigh", "replace", "10.9.0.2", "lladdr", &hd_mac, "dev", &clv]);
    lab.srv.ip(&["neigh", "replace", "10.9.0.1", "lladdr", &eg_mac, "dev", &srvv]);
    let (c, e) = (lab.tap("c"), lab.tap("e"));
    lab.hd.ip(&[
        "-6",
        "route",
        "add",
        "fc00:2::d2",
        "encap",
        "seg6local",
        "action",
        "End.DX2",
        "oif",
        &hdv,
        "dev",
        &hdv,
    ]);
    lab.eg.ip(&[
        "-6",
        "route",
        "add",
        "fc00:3::d2",
        "encap",
        "seg6local",
        "action",
        "End.DX2",
        "oif",
        &egv,
        "dev",
        &egv,
    ]);
    let l2encap = ["encap", "seg6", "mode", "l2encap", "segs"];
    lab.hd.ip(&[&["route", "add", "10.9.0.2/32"][..], &l2encap[..], &["fc00:1::a2,fc00:3::d2", "dev", &c]].concat());
    lab.eg.ip(&[&["route", "add", "10.9.0.1/32"][..], &l2encap[..], &["fc00:2::d2", "dev", &e]].concat());
    // The SF: a Linux bridge of its two vswitch links.
    assert!(sf.wait_link(&a, LONG) && sf.wait_link(&b, LONG), "SF taps");
    // No multicast snooping: it would join 224.0.0.106 (IGMP reports).
    sf.ip(&["link", "add", "br0", "type", "bridge", "mcast_snooping", "0"]);
    for dev in [&a, &b] {
        sf.ip(&["link", "set", dev, "master", "br0"]);
        sf.ip(&["link", "set", dev, "up"]);
    }
    sf.ip(&["link", "set", "br0", "up"]);

    let _ = ping_counted(&d, &lab.cl, "10.9.0.2", 2);
    let before = proxy_counts(&d, "fc00:1::a2");
    let cap = Capture::start(&sf, &lab.dir.0, "sf", &a, &[]);
    let sent = ping_counted(&d, &lab.cl, "10.9.0.2", 5);
    let after = proxy_counts(&d, "fc00:1::a2");
    let delta: [u64; 4] = std::array::from_fn(|i| after[i] - before[i]);
    assert_eq!(delta, [sent, 0, sent, 0], "{}", diag(&d));
    // The bridge got the client's own frames: its MACs, plain IPv4.
    let echo = "10.9.0.1 > 10.9.0.2: ICMP echo request";
    let lines = cap.stop_when(|l| l.iter().filter(|x| x.contains(echo)).count() as u64 >= sent);
    assert_eq!(lines.iter().filter(|l| l.contains(echo)).count() as u64, sent, "{}", lines.join("\n"));
    assert!(lines.iter().all(|l| l.starts_with("IP ")), "not the plain frames:\n{}", lines.join("\n"));
    let show = sid(&d, "fc00:1::a2");
    assert_eq!(
        (show["params"]["inner"].as_str(), show["params"]["interface"].as_str()),
        (Some("ethernet"), Some("sf-a"))
    );
    let bytes = show["return"]["bytes"].as_u64().unwrap();
    let received = lab.tcp(&d, "10.9.0.2");
    assert!(sid(&d, "fc00:1::a2")["return"]["bytes"].as_u64().unwrap() - bytes >= received, "{}", diag(&d));
}
