//! The daemon end to end, as root: pods are network namespaces attached
//! to vswitch by tap devices (which vswitch creates in them through the
//! `netns` field), traffic is the kernel's ping, and everything is
//! driven and inspected through `vswitchctl` over the API socket.

mod common;

use common::{free_port, tag, Daemon, Netns, TempDir};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// Two pods (namespaces) with a tap each in bridge domain 1.
fn bridged(a: &Netns, b: &Netns, tap_a: &str, tap_b: &str) -> String {
    format!(
        "bridge_domains: [{{ id: 1 }}]
interfaces:
  - {{ name: pod-a, type: tap, host_ifname: {tap_a}, netns: {}, bridge: {{ domain: 1 }} }}
  - {{ name: pod-b, type: tap, host_ifname: {tap_b}, netns: {}, bridge: {{ domain: 1 }} }}
",
        a.name, b.name
    )
}

struct Pods {
    a: Netns,
    b: Netns,
    tap_a: String,
    tap_b: String,
}

fn pods(t: &str) -> Pods {
    let id = tag(t);
    Pods {
        a: Netns::new(format!("vsw-{id}-a")),
        b: Netns::new(format!("vsw-{id}-b")),
        tap_a: format!("{id}a"),
        tap_b: format!("{id}b"),
    }
}

/// Puts the pods on 10.77.0.0/24 once vswitch made their taps.
fn address_pods(p: &Pods) {
    assert!(p.a.wait_link(&p.tap_a, Duration::from_secs(5)), "tap {} not in {}", p.tap_a, p.a.name);
    assert!(p.b.wait_link(&p.tap_b, Duration::from_secs(5)), "tap {} not in {}", p.tap_b, p.b.name);
    p.a.addr(&p.tap_a, "10.77.0.1/24");
    p.b.addr(&p.tap_b, "10.77.0.2/24");
}

fn interface<'a>(j: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    j["interfaces"]
        .as_array()
        .expect("interfaces is a list")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no interface {name} in {j}"))
}

#[test]
fn pods_in_one_bridge_domain_ping_and_the_cli_shows_what_moved() {
    let p = pods("br");
    let dir = TempDir::new(&tag("br"));
    let d = Daemon::start(&dir.0, Some(&bridged(&p.a, &p.b, &p.tap_a, &p.tap_b)), &[]);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the API socket is root-only");
    address_pods(&p);

    let before = d.show_json(&["interfaces"]);
    p.a.ping("10.77.0.2", 3, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    p.b.ping("10.77.0.1", 2, 10).unwrap();

    let after = d.show_json(&["interfaces"]);
    for name in ["pod-a", "pod-b"] {
        let (b, a) = (interface(&before, name), interface(&after, name));
        for c in ["rx_packets", "tx_packets", "rx_bytes", "tx_bytes"] {
            assert!(a[c].as_u64().unwrap() >= b[c].as_u64().unwrap() + 3, "{name} {c}: {b} -> {a}");
        }
        assert_eq!(a["type"], "tap");
        assert_eq!(a["owned"], true);
    }
    let text = d.ctl_ok(&["show", "interfaces"]);
    assert!(text.contains("pod-a") && text.contains("rx packets") && text.contains("tx bytes"), "{text}");

    let runtime = d.ctl_ok(&["show", "runtime"]);
    for node in ["tap-input", "ethernet-input", "l2-learn", "l2-fwd", "interface-output"] {
        assert!(runtime.contains(node), "show runtime lacks {node}:\n{runtime}");
    }
    let rj = d.show_json(&["runtime"]);
    let nodes = rj["workers"][0]["nodes"].as_array().unwrap();
    assert!(nodes.iter().any(|n| n["name"] == "l2-learn" && n["vectors"].as_u64().unwrap() > 0), "{rj}");

    // The bridge learned both pods' MACs on the right interfaces.
    let l2 = d.show_json(&["l2fib"]);
    let on: Vec<&str> = l2["l2fib"].as_array().unwrap().iter().map(|e| e["interface"].as_str().unwrap()).collect();
    assert!(on.contains(&"pod-a") && on.contains(&"pod-b"), "{l2}");
    let bd = d.show_json(&["bridge-domains"]);
    assert_eq!(bd["bridge_domains"][0]["members"], serde_json::json!(["pod-a", "pod-b"]));

    // Every other show answers, in both forms.
    for what in [&["errors"][..], &["trace"], &["workers"], &["buffers"], &["fib"], &["neighbors"]] {
        d.show_json(what);
        d.ctl_ok(&[&["show"][..], what].concat());
    }
    let bad = d.ctl(&["show", "nonsense"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected one of interfaces"));

    // clear interfaces: counters start again from zero.
    d.ctl_ok(&["clear", "interfaces"]);
    let cleared = d.show_json(&["interfaces"]);
    assert!(interface(&cleared, "pod-a")["rx_packets"].as_u64().unwrap() < 3, "{cleared}");
    d.ctl_ok(&["clear", "runtime"]);
    d.ctl_ok(&["clear", "errors"]);
    assert!(!d.ctl(&["clear", "everything"]).status.success());

    // A trace of the next packets from the taps shows their path.
    d.ctl_ok(&["trace", "add", "tap-input", "4"]);
    p.a.ping("10.77.0.2", 1, 5).unwrap();
    let trace = d.ctl_ok(&["show", "trace"]);
    assert!(trace.contains("tap-input") && trace.contains("l2-fwd"), "{trace}");
    d.ctl_ok(&["trace", "clear"]);
    assert!(d.ctl_ok(&["show", "trace"]).contains("No packets in trace buffer"));
    assert!(!d.ctl(&["trace", "add", "no-such-node", "1"]).status.success());
}

#[test]
fn pods_on_two_subnets_are_routed_through_a_vswitch_gateway() {
    let id = tag("rt");
    let a = Netns::new(format!("vsw-{id}-a"));
    let b = Netns::new(format!("vsw-{id}-b"));
    let (tap_a, tap_b) = (format!("{id}a"), format!("{id}b"));
    let config = format!(
        "interfaces:
  - {{ name: pod-a, type: tap, host_ifname: {tap_a}, netns: {}, l3: {{ addresses: [10.78.1.1/24] }} }}
  - {{ name: pod-b, type: tap, host_ifname: {tap_b}, netns: {}, l3: {{ addresses: [10.78.2.1/24] }} }}
",
        a.name, b.name
    );
    let dir = TempDir::new(&id);
    // Two workers (each pod's receive queue on its own worker, a transmit
    // handle on both) that block on the queues when idle.
    let d = Daemon::start(&dir.0, Some(&config), &["--workers", "2", "--idle", "interrupt"]);
    assert!(a.wait_link(&tap_a, Duration::from_secs(5)) && b.wait_link(&tap_b, Duration::from_secs(5)));
    a.addr(&tap_a, "10.78.1.2/24");
    b.addr(&tap_b, "10.78.2.2/24");
    a.ip(&["route", "add", "default", "via", "10.78.1.1"]);
    b.ip(&["route", "add", "default", "via", "10.78.2.1"]);

    // vswitch answers for its own address (ARP and ICMP), then routes.
    a.ping("10.78.1.1", 2, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    a.ping("10.78.2.2", 3, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    b.ping("10.78.1.2", 2, 10).unwrap();

    // The pods' ARP tables hold vswitch's MAC for the gateway.
    let mac = interface(&d.show_json(&["interfaces"]), "pod-a")["mac"].as_str().unwrap().to_string();
    let neigh = a.ip(&["neigh", "show", "10.78.1.1"]);
    assert!(neigh.contains(&mac), "gateway resolved to {mac}: {neigh}");

    let fib = d.show_json(&["fib", "0"]);
    let prefixes: Vec<&str> = fib["routes"].as_array().unwrap().iter().map(|r| r["prefix"].as_str().unwrap()).collect();
    for p in ["10.78.1.0/24", "10.78.2.0/24", "10.78.1.1/32"] {
        assert!(prefixes.contains(&p), "{p} not in {prefixes:?}");
    }
    let neighbors = d.show_json(&["neighbors"]);
    let learned: Vec<&str> =
        neighbors["neighbors"].as_array().unwrap().iter().map(|n| n["ip"].as_str().unwrap()).collect();
    assert!(learned.contains(&"10.78.1.2") && learned.contains(&"10.78.2.2"), "{neighbors}");
    let runtime = d.ctl_ok(&["show", "runtime"]);
    for node in ["ip4-input", "ip4-lookup", "ip4-rewrite", "arp-input"] {
        assert!(runtime.contains(node), "show runtime lacks {node}:\n{runtime}");
    }
    let workers = d.show_json(&["workers"]);
    let w = workers["workers"].as_array().unwrap();
    assert_eq!(w.len(), 2, "{workers}");
    for (i, w) in w.iter().enumerate() {
        let queues = w["rx_queues"].as_array().unwrap();
        assert_eq!(queues.len(), 1, "worker {i} polls one pod's queue: {workers}");
        assert!(w["rx_packets"].as_u64().unwrap() > 0, "worker {i} received: {workers}");
    }
}

#[test]
fn a_bad_config_is_refused_by_field_and_changes_nothing() {
    let p = pods("bad");
    let dir = TempDir::new(&tag("bad"));
    let good = bridged(&p.a, &p.b, &p.tap_a, &p.tap_b);
    let d = Daemon::start(&dir.0, Some(&good), &[]);
    address_pods(&p);
    p.a.ping("10.77.0.2", 2, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    let state = d.ctl_ok(&["get"]);
    assert!(state.contains(&p.tap_a) && state.contains("netns"), "{state}");

    // Semantically invalid: the field is named, nothing changes.
    let bad = good.replace(
        "bridge: { domain: 1 } }\n  - { name: pod-b",
        "mtu: 70000, bridge: { domain: 1 } }\n  - { name: pod-b",
    ) + "routes: [{ prefix: 10.9.0.0/16, via: [{ address: 10.77.0.9, interface: pod-z }] }]\n";
    let file = dir.0.join("bad.yaml");
    std::fs::write(&file, &bad).unwrap();
    let out = d.ctl(&["apply", "-f", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad config was accepted");
    assert!(err.contains("interfaces[0] (pod-a).mtu: 70000 is outside 68..=9000"), "{err}");
    assert!(err.contains("routes[0].via[0].interface"), "{err}");
    assert_eq!(d.ctl_ok(&["get"]), state, "the state in force is untouched");

    // Not even YAML of the schema: the field path is named too.
    std::fs::write(&file, good.replace("type: tap, host_ifname", "type: tap, colour: blue, host_ifname")).unwrap();
    let out = d.ctl(&["apply", "-f", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("interfaces[0]") && err.contains("unknown field `colour`"), "{err}");
    assert_eq!(d.ctl_ok(&["get"]), state);

    // A dry run of a good change reports it and changes nothing.
    let more = good.clone() + "vrfs: [{ id: 3, name: blue }]\n";
    std::fs::write(&file, &more).unwrap();
    let report = d.ctl_ok(&["apply", "--dry-run", "-f", file.to_str().unwrap()]);
    assert!(report.contains("vrfs: +3"), "{report}");
    assert_eq!(d.ctl_ok(&["get"]), state);

    // Traffic never stopped; the same state again changes nothing.
    p.a.ping("10.77.0.2", 2, 10).unwrap();
    std::fs::write(&file, &good).unwrap();
    assert!(d.ctl_ok(&["apply", "-f", file.to_str().unwrap()]).contains("no changes"));
    // And a real change goes through and is saved.
    std::fs::write(&file, &more).unwrap();
    d.ctl_ok(&["apply", "-f", file.to_str().unwrap()]);
    assert!(d.ctl_ok(&["get"]).contains("name: blue"));
    let saved = std::fs::read_to_string(d.state_dir.join("state.yaml")).unwrap();
    assert!(saved.contains("name: blue"), "{saved}");
    p.a.ping("10.77.0.2", 2, 10).unwrap();
}

#[test]
fn after_a_kill_the_daemon_restores_its_state_and_pods_ping_again() {
    let p = pods("rs");
    let dir = TempDir::new(&tag("rs"));
    let mut d = Daemon::start(&dir.0, Some(&bridged(&p.a, &p.b, &p.tap_a, &p.tap_b)), &[]);
    address_pods(&p);
    p.a.ping("10.77.0.2", 2, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    let state = d.ctl_ok(&["get"]);

    // SIGKILL: no cleanup at all. The socket file stays behind (stale).
    d.stop_with(9);
    assert!(d.socket.exists());
    assert!(p.a.ping("10.77.0.2", 1, 2).is_err(), "nothing forwards while vswitch is down");

    // Same state dir, no --config: the state and the taps come back, and
    // the pods ping without anyone touching them or re-applying.
    let mut d = Daemon::start(&dir.0, None, &[]);
    assert_eq!(d.ctl_ok(&["get"]), state);
    p.a.ping("10.77.0.2", 3, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    p.b.ping("10.77.0.1", 2, 10).unwrap();
    assert!(d.log_text().contains("re-attached"), "{}", d.log_text());

    // A clean stop (an upgrade) removes the socket but keeps the taps in
    // the pods' namespaces, with the pods' addresses on them.
    let status = d.stop_with(15);
    assert!(status.success(), "{status}: {}", d.log_text());
    assert!(!d.socket.exists(), "socket removed on exit");
    assert!(p.a.has_link(&p.tap_a) && p.b.has_link(&p.tap_b), "pods keep their taps across a clean stop");
    assert!(p.a.ip(&["-4", "addr", "show", "dev", &p.tap_a]).contains("10.77.0.1/24"));

    // The next start attaches to them: the pods ping without anyone
    // touching them.
    let d = Daemon::start(&dir.0, None, &[]);
    assert_eq!(d.ctl_ok(&["get"]), state);
    p.a.ping("10.77.0.2", 3, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
}

#[test]
fn metrics_report_interface_counters() {
    let p = pods("mx");
    let dir = TempDir::new(&tag("mx"));
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start(&dir.0, Some(&bridged(&p.a, &p.b, &p.tap_a, &p.tap_b)), &["--metrics", &addr]);
    address_pods(&p);
    p.a.ping("10.77.0.2", 3, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));

    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let value = |metric: &str, labels: &str| -> u64 {
        let prefix = format!("{metric}{{{labels}");
        let line = body.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{body}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    for i in ["pod-a", "pod-b"] {
        let l = format!("interface=\"{i}\"");
        assert!(value("vswitch_interface_rx_packets_total", &l) >= 3, "{body}");
        assert!(value("vswitch_interface_tx_packets_total", &l) >= 3, "{body}");
        assert!(value("vswitch_interface_rx_bytes_total", &l) >= 3 * 98, "{body}");
    }
    assert!(value("vswitch_node_packets_total", "node=\"l2-learn\"") >= 6, "{body}");
    assert!(body.contains("vswitch_buffers_capacity 32768"), "{body}");
    assert!(body.contains("vswitch_buffers_free "), "{body}");
}
