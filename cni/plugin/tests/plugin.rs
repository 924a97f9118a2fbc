//! `vswitch-cni` run exactly as runtimes run it (`CNI_*` environment, the
//! configuration on stdin, the result on stdout) against a real vswitch
//! daemon, with pods as network namespaces and `vswitch-ipam` (file store)
//! as the IPAM plugin found in `CNI_PATH`. Needs root.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use vswitch_cni::naming;
use vswitch_cni_types::{CniResult, NetConfList, RequestKind, Version};

/// Three networks: `red` routed in VRF 5, `blue` and `green` bridged
/// (green with MTU 1400).
const STATE: &str = "bridge_domains: [{ id: 10 }, { id: 20 }]
vrfs: [{ id: 5 }]
networks:
  - { name: red, vrf: 5 }
  - { name: blue, bridge_domain: 10 }
  - { name: green, bridge_domain: 20, mtu: 1400 }
";

struct Env {
    // Dropped in this order: the daemon stops before its directory goes.
    d: Daemon,
    dir: TempDir,
}

impl Env {
    fn new(t: &str) -> Env {
        let dir = TempDir::new(&tag(t));
        let d = Daemon::start(&dir.0, STATE);
        Env { d, dir }
    }

    fn ipam_dir(&self) -> std::path::PathBuf {
        self.dir.0.join("ipam")
    }

    /// `red` (L3, default route) in `version`.
    fn red(&self, version: &str) -> Value {
        netconf(version, "red", &self.d.socket, Some(ipam("10.61.0.0/24", &self.ipam_dir())), json!({}))
    }

    /// `red`, dual-stack (default routes for both families).
    fn red_dual(&self, version: &str) -> Value {
        let i = json!({"type": "vswitch-ipam", "dataDir": self.ipam_dir(), "node": "test",
            "ranges": [[{"subnet": "10.61.0.0/24"}], [{"subnet": "fd61::/64"}]],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]});
        netconf(version, "red", &self.d.socket, Some(i), json!({}))
    }

    /// An L2 network configuration: CNI name `name`, vswitch network `network`.
    fn l2(&self, version: &str, name: &str, network: &str, subnet: &str) -> Value {
        let mut i = ipam(subnet, &self.ipam_dir());
        i.as_object_mut().unwrap().remove("routes");
        netconf(version, name, &self.d.socket, Some(i), json!({"network": network}))
    }
}

fn link(ns: &Netns, dev: &str) -> Value {
    ns.ip_json(&["link", "show", "dev", dev])[0].clone()
}

fn pod_addrs(ns: &Netns, dev: &str) -> Vec<String> {
    ns.ip_json(&["addr", "show", "dev", dev])[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet" || a["scope"] == "global")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

#[test]
fn pods_with_three_interfaces_ping_each_other_on_every_network() {
    let e = Env::new("three");
    let pods = [Netns::new(format!("cn{}a", tag("t"))), Netns::new(format!("cn{}b", tag("t")))];
    // eth0 on red (1.1.0), net1 on blue (0.4.0, CNI name differs from the
    // vswitch network), net2 on green (1.0.0).
    let confs = [
        ("eth0", e.red_dual("1.1.0")),
        ("net1", e.l2("0.4.0", "blue-nad", "blue", "10.62.0.0/24")),
        ("net2", e.l2("1.0.0", "green", "green", "10.63.0.0/24")),
    ];
    let mut results = [Vec::new(), Vec::new()];
    for (p, ns) in pods.iter().enumerate() {
        for (ifname, conf) in &confs {
            let r = Call::new("ADD", &format!("ctr-{p}"), &ns.path(), ifname).ok(conf);
            results[p].push(r);
        }
    }
    // Result shapes per version.
    let (r_eth0, r_net1, r_net2) = (&results[0][0], &results[0][1], &results[0][2]);
    assert_eq!(r_eth0["cniVersion"], "1.1.0");
    assert_eq!(r_eth0["interfaces"][0]["name"], "eth0");
    assert_eq!(r_eth0["interfaces"][0]["sandbox"], pods[0].path());
    assert_eq!(r_eth0["interfaces"][0]["mtu"], 1500);
    assert_eq!(r_eth0["ips"][0]["interface"], 0);
    assert_eq!(r_eth0["ips"][0]["gateway"], "10.61.0.1");
    assert_eq!(r_eth0["routes"], json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]));
    assert_eq!(r_eth0["ips"][1]["gateway"], "fd61::1");
    assert_eq!(r_eth0["ips"][1]["interface"], 0);
    assert!(r_eth0["ips"][0].get("version").is_none());
    assert_eq!(r_net1["cniVersion"], "0.4.0");
    assert_eq!(r_net1["ips"][0]["version"], "4");
    assert!(r_net1["interfaces"][0].get("mtu").is_none(), "0.4.0 has no interface mtu: {r_net1}");
    assert_eq!(r_net2["cniVersion"], "1.0.0");

    for (p, ns) in pods.iter().enumerate() {
        // The pod side as the results say.
        for (i, (ifname, _)) in confs.iter().enumerate() {
            let r = &results[p][i];
            let l = link(ns, ifname);
            assert_eq!(l["address"], r["interfaces"][0]["mac"], "{ifname}: {l}");
            assert!(l["flags"].as_array().unwrap().contains(&json!("UP")), "{l}");
            assert_eq!(pod_addrs(ns, ifname), addrs(r), "{ifname}");
        }
        assert_eq!(link(ns, "net2")["mtu"], 1400, "green's MTU");
        // L3: the default route via the gateway, which is a permanent neighbor at vswitch's MAC.
        let routes = ns.ip_json(&["route", "show", "default"]);
        assert_eq!(routes.as_array().unwrap().len(), 1, "{routes}");
        assert_eq!(routes[0]["gateway"], "10.61.0.1");
        assert_eq!(routes[0]["dev"], "eth0");
        let neigh = ns.ip_json(&["neigh", "show", "10.61.0.1", "dev", "eth0"]);
        assert!(neigh[0]["state"].as_array().unwrap().contains(&json!("PERMANENT")), "{neigh}");
        assert_eq!(neigh[0]["lladdr"], naming::format_mac(naming::vswitch_mac(&format!("ctr-{p}"), "eth0")));
        let v6 = ns.ip_json(&["-6", "route", "show", "default"]);
        assert_eq!(v6[0]["gateway"], "fd61::1", "{v6}");
        let n6 = ns.ip_json(&["neigh", "show", "fd61::1", "dev", "eth0"]);
        assert!(n6[0]["state"].as_array().unwrap().contains(&json!("PERMANENT")), "{n6}");
    }
    // vswitch: six interfaces, owned, on the right networks.
    let st = e.d.state();
    assert_eq!(st.interfaces.len(), 6, "{}", st.to_yaml());
    let owners = e.d.owners();
    assert!(owners.contains(&"cni:ctr-0:net1:blue-nad".to_string()), "{owners:?}");
    let red0 = st.interfaces.iter().find(|i| i.name == naming::vswitch_ifname("ctr-0", "eth0")).unwrap();
    assert_eq!(red0.owner.as_deref(), Some("cni:ctr-0:eth0:red"));
    assert_eq!(st.routes.len(), 4, "a host route per red pod and family: {:?}", st.routes);
    assert_eq!(st.neighbors.len(), 4);

    // Pods ping each other through vswitch on each network.
    for i in 0..3 {
        let dst = ip_of(&results[1][i]);
        pods[0].ping(&dst, 2, 10).unwrap_or_else(|err| panic!("{}: {err}\n{}", confs[i].0, e.d.log_text()));
        pods[1].ping(&ip_of(&results[0][i]), 1, 10).unwrap();
    }
    // IPv6 on red: proxy ND for the other pod, the gateway a permanent neighbor.
    let v6_of = |r: &Value| addrs(r)[1].split('/').next().unwrap().to_string();
    pods[0].ping(&v6_of(&results[1][0]), 2, 10).unwrap_or_else(|err| panic!("v6: {err}\n{}", e.d.log_text()));
    pods[1].ping(&v6_of(&results[0][0]), 1, 10).unwrap();

    // DEL everything: vswitch and IPAM are empty again.
    for (p, ns) in pods.iter().enumerate() {
        for (ifname, conf) in &confs {
            assert_eq!(Call::new("DEL", &format!("ctr-{p}"), &ns.path(), ifname).ok(conf), Value::Null);
        }
        assert!(!ns.has_link("eth0") && !ns.has_link("net1"), "taps removed with their interfaces");
    }
    let st = e.d.state();
    assert!(st.interfaces.is_empty() && st.routes.is_empty() && st.neighbors.is_empty(), "{}", st.to_yaml());
    assert_eq!(ipam_allocations(&e.ipam_dir()), vec![]);
}

#[test]
fn fixed_ip_and_mac_from_a_conflist_are_honored_and_failures_leak_nothing() {
    let e = Env::new("fixed");
    let ns = Netns::new(format!("cn{}f", tag("t")));
    let ns2 = Netns::new(format!("cn{}g", tag("t")));
    // A conflist whose plugin declares the ips and mac capabilities; the
    // runtime derives the plugin's request from it.
    let list = json!({"cniVersion": "1.1.0", "name": "red", "plugins": [{
        "type": "vswitch-cni", "apiSocket": e.d.socket, "capabilities": {"ips": true, "mac": true},
        "ipam": ipam("10.61.0.0/24", &e.ipam_dir())}]});
    let list = NetConfList::from_slice(list.to_string().as_bytes()).unwrap();
    let caps = json!({"ips": ["10.61.0.77/24"], "mac": "0a:11:22:33:44:55", "portMappings": []});
    let req = list
        .request_config(
            0,
            Version::V1_1_0,
            RequestKind::Attachment { capability_args: caps.as_object().unwrap(), prev_result: None },
        )
        .unwrap();
    let conf: Value = serde_json::from_str(&req.to_json()).unwrap();
    assert_eq!(conf["runtimeConfig"], json!({"ips": ["10.61.0.77/24"], "mac": "0a:11:22:33:44:55"}));
    let r = Call::new("ADD", "fixed-1", &ns.path(), "eth0").ok(&conf);
    assert_eq!(addrs(&r), vec!["10.61.0.77/24"]);
    assert_eq!(r["interfaces"][0]["mac"], "0a:11:22:33:44:55");
    assert_eq!(link(&ns, "eth0")["address"], "0a:11:22:33:44:55");
    assert_eq!(pod_addrs(&ns, "eth0"), vec!["10.61.0.77/24"]);
    // vswitch's static neighbor for the pod carries that MAC.
    let st = e.d.state();
    assert_eq!(st.neighbors.len(), 1);
    assert_eq!(st.neighbors[0].ip.to_string(), "10.61.0.77");
    assert_eq!(st.neighbors[0].mac.to_string(), "0a:11:22:33:44:55");
    // ADD again (a runtime retry): same answer, nothing doubled.
    assert_eq!(Call::new("ADD", "fixed-1", &ns.path(), "eth0").ok(&conf), r);
    assert_eq!(e.d.state().interfaces.len(), 1);

    // The same fixed IP for another pod: IPAM refuses, nothing is left behind.
    let err = Call::new("ADD", "fixed-2", &ns2.path(), "eth0").err(&conf);
    assert_eq!(err["code"], 101, "{err}");
    assert!(err["msg"].as_str().unwrap().starts_with("vswitch-ipam:"), "{err}");
    assert_eq!(e.d.owners(), vec!["cni:fixed-1:eth0:red".to_string()]);
    assert!(!ns2.has_link("eth0"));

    // vswitch refuses after IPAM allocated (the interface name is held by
    // someone else): the address is given back, nothing is left in vswitch.
    let squat = naming::vswitch_ifname("fixed-3", "eth0");
    let f = e.dir.0.join("squat.yaml");
    std::fs::write(&f, format!("interfaces: [{{ name: {squat}, type: pg, owner: agent }}]\n")).unwrap();
    let out = e.d.ctl(&["patch", "-f", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let conf3 = e.red("1.1.0");
    let err = Call::new("ADD", "fixed-3", &ns2.path(), "eth0").err(&conf3);
    assert_eq!(err["code"], 100, "{err}");
    assert!(err["details"].as_str().unwrap().contains("owner"), "{err}");
    let allocs: Vec<String> = ipam_allocations(&e.ipam_dir()).into_iter().map(|(c, _)| c).collect();
    assert_eq!(allocs, vec!["fixed-1"], "the failed ADD's address was released");
    // DEL of that attachment never touches the interface owned by someone else.
    Call::new("DEL", "fixed-3", &ns2.path(), "eth0").ok(&conf3);
    let st = e.d.state();
    assert!(st.interfaces.iter().any(|i| i.name == squat && i.owner.as_deref() == Some("agent")), "{}", st.to_yaml());
    assert!(!ns2.has_link("eth0"));
}

#[test]
fn del_is_idempotent_and_works_after_the_namespace_is_gone() {
    let e = Env::new("del");
    let ns = Netns::new(format!("cn{}d", tag("t")));
    let conf = e.red("0.3.1");
    let call = |c: &str| Call::new(c, "del-1", &ns.path(), "eth0");
    let r = call("ADD").ok(&conf);
    assert_eq!(r["cniVersion"], "0.3.1");
    assert_eq!(r["ips"][0]["version"], "4");
    assert_eq!(r["ips"][0]["interface"], 0);
    assert!(ns.has_link("eth0"));
    call("DEL").ok(&conf);
    call("DEL").ok(&conf);
    assert!(!ns.has_link("eth0"));
    assert!(e.d.state().interfaces.is_empty());
    assert_eq!(ipam_allocations(&e.ipam_dir()), vec![]);
    // DEL of something never added
    Call::new("DEL", "never", &ns.path(), "eth0").ok(&conf);
    // DEL without CNI_NETNS (allowed by the spec)
    Call::new("DEL", "never", "", "eth0").ok(&conf);

    // DEL after the pod's namespace was deleted.
    let ns2 = Netns::new(format!("cn{}e", tag("t")));
    let r = Call::new("ADD", "del-2", &ns2.path(), "eth0").ok(&conf);
    let path = ns2.path();
    ns2.delete();
    Call::new("DEL", "del-2", &path, "eth0").ok(&conf);
    Call::new("DEL", "del-2", &path, "eth0").ok(&conf);
    let st = e.d.state();
    assert!(st.interfaces.is_empty() && st.routes.is_empty(), "{}", st.to_yaml());
    assert_eq!(ipam_allocations(&e.ipam_dir()), vec![], "{} released", ip_of(&r));
}

/// Restarting vswitch (a clean stop, as an upgrade does, and a crash)
/// loses nothing: the pods keep their interfaces and addresses, ping again
/// once vswitch is back, CHECK passes, and DEL still removes everything.
#[test]
fn pods_stay_attached_across_vswitch_restarts() {
    let mut e = Env::new("restart");
    let pods = [Netns::new(format!("cn{}r", tag("t"))), Netns::new(format!("cn{}s", tag("t")))];
    let conf = e.red("1.1.0");
    let rs: Vec<Value> = pods
        .iter()
        .enumerate()
        .map(|(i, ns)| Call::new("ADD", &format!("rst-{i}"), &ns.path(), "eth0").ok(&conf))
        .collect();
    pods[0].ping(&ip_of(&rs[1]), 2, 10).unwrap_or_else(|err| panic!("{err}\n{}", e.d.log_text()));
    let state = e.d.state();
    for clean in [true, false] {
        if clean {
            e.d.stop();
        } else {
            e.d.kill();
        }
        for (ns, r) in pods.iter().zip(&rs) {
            assert_eq!(pod_addrs(ns, "eth0"), addrs(r), "the pod keeps eth0 and its address (clean stop: {clean})");
        }
        e.d = Daemon::start(&e.dir.0, STATE);
        assert_eq!(e.d.state(), state, "the state comes back (clean stop: {clean})");
        pods[0]
            .ping(&ip_of(&rs[1]), 2, 10)
            .unwrap_or_else(|err| panic!("clean stop {clean}: {err}\n{}", e.d.log_text()));
        for (i, (ns, r)) in pods.iter().zip(&rs).enumerate() {
            Call::new("CHECK", &format!("rst-{i}"), &ns.path(), "eth0").ok(&with_prev(&conf, r));
        }
    }
    for (i, ns) in pods.iter().enumerate() {
        Call::new("DEL", &format!("rst-{i}"), &ns.path(), "eth0").ok(&conf);
        assert!(!ns.has_link("eth0"));
    }
    assert!(e.d.state().interfaces.is_empty());
    assert_eq!(ipam_allocations(&e.ipam_dir()), vec![]);
}

#[test]
fn check_catches_a_removed_address_and_a_missing_interface() {
    let e = Env::new("check");
    let ns = Netns::new(format!("cn{}c", tag("t")));
    let conf = e.red("1.1.0");
    let r = Call::new("ADD", "chk-1", &ns.path(), "eth0").ok(&conf);
    let check = with_prev(&conf, &r);
    Call::new("CHECK", "chk-1", &ns.path(), "eth0").ok(&check);
    // CHECK without prevResult, and in a version without CHECK.
    assert_eq!(Call::new("CHECK", "chk-1", &ns.path(), "eth0").err(&conf)["code"], 7);
    let mut old = with_prev(&e.red("0.3.1"), &r);
    old["prevResult"]["ips"][0]["version"] = json!("4");
    assert_eq!(Call::new("CHECK", "chk-1", &ns.path(), "eth0").err(&old)["code"], 1);

    // The default route removed: caught.
    ns.ip(&["route", "del", "default"]);
    let err = Call::new("CHECK", "chk-1", &ns.path(), "eth0").err(&check);
    assert!(err["msg"].as_str().unwrap().contains("route 0.0.0.0/0 via 10.61.0.1 missing"), "{err}");
    ns.ip(&["route", "add", "default", "via", "10.61.0.1", "dev", "eth0"]);
    Call::new("CHECK", "chk-1", &ns.path(), "eth0").ok(&check);
    // The address removed: caught, naming it.
    let a = addrs(&r)[0].clone();
    ns.ip(&["addr", "del", &a, "dev", "eth0"]);
    let err = Call::new("CHECK", "chk-1", &ns.path(), "eth0").err(&check);
    assert_eq!(err["code"], 101, "{err}");
    assert!(err["msg"].as_str().unwrap().contains(&format!("address {a} missing on eth0")), "{err}");
    // The vswitch side removed behind the plugin's back: caught.
    let out = e.d.ctl(&["patch", "--remove", &naming::vswitch_ifname("chk-1", "eth0")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = Call::new("CHECK", "chk-1", &ns.path(), "eth0").err(&check);
    assert_eq!(err["code"], 103, "{err}");
    Call::new("DEL", "chk-1", &ns.path(), "eth0").ok(&conf);
    // After DEL: nothing to check against.
    let err = Call::new("CHECK", "chk-1", &ns.path(), "eth0").err(&check);
    assert_ne!(err["code"], 0);
}

#[test]
fn gc_frees_only_what_is_stale_on_its_own_network() {
    let e = Env::new("gc");
    let pods: Vec<Netns> = (0..3).map(|i| Netns::new(format!("cn{}{i}", tag("g")))).collect();
    let red = e.red("1.1.0");
    let blue = e.l2("1.1.0", "blue", "blue", "10.62.0.0/24");
    for (i, ns) in pods.iter().enumerate() {
        Call::new("ADD", &format!("gc-{i}"), &ns.path(), "eth0").ok(&red);
    }
    Call::new("ADD", "gc-1", &pods[1].path(), "net1").ok(&blue);
    // An interface of someone else, not the plugin's.
    let f = e.dir.0.join("other.yaml");
    std::fs::write(&f, "interfaces: [{ name: agent1, type: pg, owner: agent }]\n").unwrap();
    assert!(e.d.ctl(&["patch", "-f", f.to_str().unwrap()]).status.success());

    // GC of red: gc-1/eth0 is no longer valid.
    let mut gc = red.clone();
    gc["cni.dev/valid-attachments"] =
        json!([{"containerID": "gc-0", "ifname": "eth0"}, {"containerID": "gc-2", "ifname": "eth0"}]);
    Call::new("GC", "", "", "").ok(&gc);
    assert_eq!(
        e.d.owners(),
        vec!["agent", "cni:gc-0:eth0:red", "cni:gc-1:net1:blue", "cni:gc-2:eth0:red"],
        "only gc-1/eth0 went"
    );
    let allocs: Vec<String> = ipam_allocations(&e.ipam_dir()).into_iter().map(|(c, _)| c).collect();
    assert_eq!(allocs, vec!["gc-0", "gc-1", "gc-2"], "gc-1 keeps its blue address");
    assert!(!pods[1].has_link("eth0") && pods[1].has_link("net1"));
    // GC without the list is refused; GC in 1.0.0 is refused.
    assert_eq!(Call::new("GC", "", "", "").err(&red)["code"], 7);
    let mut old = gc.clone();
    old["cniVersion"] = json!("1.0.0");
    assert_eq!(Call::new("GC", "", "", "").err(&old)["code"], 1);
    // GC with everything valid changes nothing.
    gc["cni.dev/valid-attachments"] =
        json!([{"containerID": "gc-0", "ifname": "eth0"}, {"containerID": "gc-2", "ifname": "eth0"}]);
    Call::new("GC", "", "", "").ok(&gc);
    assert_eq!(e.d.owners().len(), 4);
}

#[test]
fn malformed_configurations_are_rejected_with_the_right_code_and_leave_nothing() {
    let e = Env::new("bad");
    let ns = Netns::new(format!("cn{}m", tag("t")));
    let good = e.red("1.1.0");
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let mut no_ipam_plugin = good.clone();
    no_ipam_plugin["ipam"]["type"] = json!("no-such-ipam");
    let cases: Vec<(&str, Value, u64, &str)> = vec![
        ("unknown key", with("netwrok", json!("red")), 7, "\"netwrok\""),
        ("wrong type", with("mtu", json!("1500")), 7, "\"mtu\""),
        ("out of range", with("mtu", json!(20)), 7, "\"mtu\""),
        ("unknown kind", with("kind", json!("veth")), 7, "\"kind\""),
        (
            "bad memif",
            json!({"cniVersion": "1.1.0", "name": "red", "type": "vswitch-cni", "kind": "memif",
            "memif": {"ringSize": 1000}}),
            7,
            "\"memif.ringSize\"",
        ),
        ("old version", with("cniVersion", json!("0.2.0")), 1, "incompatible"),
        ("future version", with("cniVersion", json!("2.0.0")), 1, "incompatible"),
        ("bad name", with("name", json!("-red")), 7, "network name"),
        ("unknown network", with("network", json!("purple")), 7, "\"purple\" is not defined"),
        ("missing ipam plugin", no_ipam_plugin, 7, "no-such-ipam"),
        ("bad mac", with("runtimeConfig", json!({"mac": "01:00:5e:00:00:01"})), 7, "mac"),
        (
            "bad ipam key",
            with(
                "ipam",
                json!({"type": "vswitch-ipam", "subnet": "10.61.0.0/24", "rangestart": "x",
            "dataDir": e.ipam_dir()}),
            ),
            2,
            "rangestart",
        ),
    ];
    let check_clean = |what: &str| {
        assert!(e.d.state().interfaces.is_empty(), "{what}: vswitch has interfaces");
        assert_eq!(ipam_allocations(&e.ipam_dir()), vec![], "{what}: IPAM allocated");
        assert!(!ns.has_link("eth0"), "{what}: the pod has an eth0");
    };
    for (what, conf, code, text) in cases {
        let err = Call::new("ADD", "bad-1", &ns.path(), "eth0").err(&conf);
        assert_eq!(err["code"], code, "{what}: {err}");
        let all = format!("{} {}", err["msg"].as_str().unwrap(), err["details"].as_str().unwrap_or_default());
        assert!(all.contains(text), "{what}: {err} lacks {text}");
        check_clean(what);
    }
    // Not JSON: 6; no cniVersion: 6.
    let (code, err) = Call::new("ADD", "bad-1", &ns.path(), "eth0").run_raw(b"{\"cniVersion\": ");
    assert_eq!((code, err["code"].clone()), (1, json!(6)), "{err}");
    let (_, err) = Call::new("ADD", "bad-1", &ns.path(), "eth0").run_raw(b"{\"name\": \"red\"}");
    assert_eq!(err["code"], 6, "{err}");
    // Environment: 4 naming the variable; 3 for a namespace that does not exist.
    let err = Call::new("ADD", "bad-1", &ns.path(), "").err(&good);
    assert_eq!(err["code"], 4, "{err}");
    assert!(err["msg"].as_str().unwrap().contains("CNI_IFNAME"), "{err}");
    let err = Call::new("ADD", "bad-1", "relative/ns", "eth0").err(&good);
    assert_eq!(err["code"], 4, "{err}");
    let err = Call::new("ADD", "bad-1", "/run/netns/cn-none-such", "eth0").err(&good);
    assert_eq!(err["code"], 3, "{err}");
    // A container id too long for vswitch's owner tag: 4 before IPAM runs.
    let err = Call::new("ADD", &"c".repeat(250), &ns.path(), "eth0").err(&good);
    assert_eq!(err["code"], 4, "{err}");
    assert!(err["details"].as_str().unwrap().contains("owner tag of"), "{err}");
    let err = Call::new("FROB", "bad-1", &ns.path(), "eth0").err(&good);
    assert_eq!(err["code"], 4, "{err}");
    // The error object carries the request's version.
    assert_eq!(err["cniVersion"], "1.1.0");
    check_clean("environment");
}

#[test]
fn memif_attachment_lives_in_a_per_pod_directory() {
    let e = Env::new("memif");
    let ns = Netns::new(format!("cn{}i", tag("t")));
    let pods_dir = e.dir.0.join("pods");
    let conf = netconf(
        "1.1.0",
        "blue",
        &e.d.socket,
        Some(ipam("10.62.0.0/24", &e.ipam_dir())),
        json!({"kind": "memif", "memif": {"socketDir": pods_dir, "ringSize": 2048}}),
    );
    let args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=cnf-1";
    let r = Call::new("ADD", "mem-1", &ns.path(), "net1").args(args).ok(&conf);
    let sock = pods_dir.join("default_cnf-1/memif-net1.sock");
    assert_eq!(r["interfaces"][0]["socketPath"], json!(sock), "{r}");
    assert_eq!(r["interfaces"][0]["name"], "net1");
    assert_eq!(r["interfaces"][0]["mac"], naming::format_mac(naming::pod_mac("mem-1", "net1")));
    assert_eq!(r["ips"][0]["interface"], 0);
    assert!(sock.exists(), "vswitch listens on {}", sock.display());
    let st = e.d.state();
    let i = &st.interfaces[0];
    assert_eq!(i.owner.as_deref(), Some("cni:mem-1:net1:blue"));
    let m = i.memif.as_ref().expect("a memif interface");
    assert_eq!(Path::new(&m.socket), sock);
    assert_eq!(m.ring_size, 2048);
    // CHECK, then a 1.0.0 result has no socketPath.
    Call::new("CHECK", "mem-1", &ns.path(), "net1").args(args).ok(&with_prev(&conf, &r));
    let mut old = conf.clone();
    old["cniVersion"] = json!("1.0.0");
    let r2 = Call::new("ADD", "mem-2", &ns.path(), "net2").args(args).ok(&old);
    assert!(r2["interfaces"][0].get("socketPath").is_none(), "{r2}");
    // DEL removes the socket, and the directory once empty.
    Call::new("DEL", "mem-1", &ns.path(), "net1").args(args).ok(&conf);
    assert!(!sock.exists());
    assert!(pods_dir.join("default_cnf-1").exists(), "net2's socket is still there");
    Call::new("DEL", "mem-2", &ns.path(), "net2").args(args).ok(&old);
    Call::new("DEL", "mem-2", &ns.path(), "net2").args(args).ok(&old);
    assert!(!pods_dir.join("default_cnf-1").exists());
    assert!(e.d.state().interfaces.is_empty());
}

#[test]
fn status_and_version() {
    let e = Env::new("status");
    let conf = e.red("1.1.0");
    Call::new("STATUS", "", "", "").ok(&conf);
    let mut gone = conf.clone();
    gone["apiSocket"] = json!(e.dir.0.join("nobody.sock"));
    let err = Call::new("STATUS", "", "", "").err(&gone);
    assert_eq!(err["code"], 50, "{err}");
    assert!(err["msg"].as_str().unwrap().contains("vswitch is not reachable"), "{err}");
    let mut unknown = conf.clone();
    unknown["network"] = json!("purple");
    assert_eq!(Call::new("STATUS", "", "", "").err(&unknown)["code"], 50);
    let mut old = conf.clone();
    old["cniVersion"] = json!("1.0.0");
    assert_eq!(Call::new("STATUS", "", "", "").err(&old)["code"], 1);
    // ADD with the daemon unreachable: 11, try again later.
    let ns = Netns::new(format!("cn{}s", tag("t")));
    assert_eq!(Call::new("ADD", "st-1", &ns.path(), "eth0").err(&gone)["code"], 11);
    let v = Call::new("VERSION", "", "", "").ok(&json!({"cniVersion": "1.0.0"}));
    assert_eq!(v, json!({"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}));
}

#[test]
fn multus_delegate_result_makes_a_correct_network_status() {
    let e = Env::new("multus");
    let ns = Netns::new(format!("cn{}u", tag("t")));
    // The cluster network (eth0) and a NetworkAttachmentDefinition's spec.config (net1).
    let cluster = e.red("1.1.0");
    let nad = json!({
        "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "blue-net", "namespace": "default"},
        "spec": {"config": json!({"cniVersion": "1.0.0", "name": "blue-net", "type": "vswitch-cni",
            "network": "blue", "apiSocket": e.d.socket,
            "ipam": {"type": "vswitch-ipam", "subnet": "10.62.0.0/24", "dataDir": e.ipam_dir()}}).to_string()}
    });
    let delegate: Value = serde_json::from_str(nad["spec"]["config"].as_str().unwrap()).unwrap();
    let args = "IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=mul-1;K8S_POD_UID=u-1";
    let r0 = Call::new("ADD", "mul-1", &ns.path(), "eth0").args(args).ok(&cluster);
    let r1 = Call::new("ADD", "mul-1", &ns.path(), "net1").args(args).ok(&delegate);
    let status: Vec<Value> = [(&r0, "vswitch/red", true), (&r1, "default/blue-net", false)]
        .iter()
        .flat_map(|(r, name, default)| {
            let res = CniResult::from_value(r, None).unwrap();
            vswitch_cni::multus::network_status(&res, name, *default, vswitch_cni::multus::device_info(&res))
        })
        .collect();
    assert_eq!(status.len(), 2, "{status:?}");
    let net1 = &status[1];
    assert_eq!(net1["name"], "default/blue-net");
    assert_eq!(net1["interface"], "net1");
    assert_eq!(net1["ips"], json!([ip_of(&r1)]));
    assert_eq!(net1["mac"], link(&ns, "net1")["address"], "the MAC the pod really has");
    assert_eq!(net1["default"], false);
    assert_eq!(net1["dns"], json!({}));
    assert!(net1.get("device-info").is_none());
    assert_eq!(status[0]["interface"], "eth0");
    assert_eq!(status[0]["default"], true);
    assert_eq!(status[0]["ips"], json!([ip_of(&r0)]));
    for r in [&r0, &r1] {
        let a = ip_of(r);
        assert!(pod_addrs(&ns, if r == &r0 { "eth0" } else { "net1" }).iter().any(|x| x.starts_with(&a)));
    }
    Call::new("DEL", "mul-1", &ns.path(), "net1").args(args).ok(&delegate);
    Call::new("DEL", "mul-1", &ns.path(), "eth0").args(args).ok(&cluster);
    assert!(e.d.state().interfaces.is_empty());
}

/// A fake sysfs tree: PF 0000:3b:00.0 (`ens1f0`) with VF 0 (`iavf`, netdev
/// `vf_netdev`) and VF 1 (`vfio-pci`), laid out with the kernel's links.
fn fake_sysfs(root: &Path, vf_netdev: &str) {
    use std::os::unix::fs::symlink;
    let devs = root.join("devices/pci0000:00");
    let pf = devs.join("0000:3b:00.0");
    std::fs::create_dir_all(pf.join("net/ens1f0")).unwrap();
    std::fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
    std::fs::create_dir_all(root.join("bus/pci/drivers/iavf")).unwrap();
    std::fs::create_dir_all(root.join("bus/pci/drivers/vfio-pci")).unwrap();
    symlink(&pf, root.join("bus/pci/devices/0000:3b:00.0")).unwrap();
    for (n, pci, drv, nd) in [(0, "0000:3b:02.0", "iavf", Some(vf_netdev)), (1, "0000:3b:02.1", "vfio-pci", None)] {
        let d = devs.join(pci);
        std::fs::create_dir_all(&d).unwrap();
        symlink(&d, root.join("bus/pci/devices").join(pci)).unwrap();
        symlink(&pf, d.join("physfn")).unwrap();
        symlink(&d, pf.join(format!("virtfn{n}"))).unwrap();
        symlink(root.join("bus/pci/drivers").join(drv), d.join("driver")).unwrap();
        if let Some(nd) = nd {
            std::fs::create_dir_all(d.join("net").join(nd)).unwrap();
        }
    }
}

/// A netdev in the host namespace, deleted on drop.
struct Dummy(String);

impl Drop for Dummy {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["link", "del", &self.0]).output();
    }
}

/// SR-IOV without hardware: the VF's netdev is a veth end that the
/// fake sysfs tree names as VF 0's. Kernel mode moves it into the pod as
/// net1 (with its address) and DEL moves it back under its name; DPDK mode
/// hands out VF 1's PCI address. (MAC/VLAN through the PF need a real PF:
/// not exercised.)
#[test]
fn sriov_over_a_fake_sysfs_tree() {
    let dir = TempDir::new(&tag("sriov"));
    let vf_dev = format!("cnvf{}", std::process::id());
    let _ = std::process::Command::new("ip").args(["link", "del", &vf_dev]).output();
    // No dummy driver here: one end of a veth pair plays the VF's netdev,
    // the other stays in the host (deleting it on drop deletes both).
    let peer = format!("cnvp{}", std::process::id());
    let _ = std::process::Command::new("ip").args(["link", "del", &peer]).output();
    sh(&["ip", "link", "add", &vf_dev, "type", "veth", "peer", "name", &peer]);
    let dummy = Dummy(peer.clone());
    let sys = dir.0.join("sys");
    fake_sysfs(&sys, &vf_dev);
    let ns = Netns::new(format!("cn{}v", tag("t")));
    let i = ipam("10.64.0.0/24", &dir.0.join("ipam"));
    let kernel = netconf(
        "1.1.0",
        "sriov-net",
        &dir.0.join("no-vswitch.sock"),
        Some(i.clone()),
        json!({"kind": "sriov", "deviceID": "0000:3b:02.0", "mtu": 1400,
               "sriov": {"sysfsRoot": sys, "stateDir": dir.0.join("sriov-state")}}),
    );
    let r = Call::new("ADD", "sr-1", &ns.path(), "net1").ok(&kernel);
    assert_eq!(r["interfaces"][0]["name"], "net1");
    assert_eq!(r["interfaces"][0]["pciID"], "0000:3b:02.0");
    assert_eq!(r["interfaces"][0]["sandbox"], ns.path());
    assert!(ns.has_link("net1"), "the VF netdev moved into the pod as net1");
    let host_has =
        || std::process::Command::new("ip").args(["link", "show", "dev", &vf_dev]).output().unwrap().status.success();
    assert!(!host_has());
    assert_eq!(link(&ns, "net1")["mtu"], 1400);
    assert_eq!(pod_addrs(&ns, "net1"), addrs(&r));
    // Multus' device-info for it: a PCI device.
    let res = CniResult::from_value(&r, None).unwrap();
    let info = vswitch_cni::multus::device_info(&res).unwrap();
    assert_eq!(info, json!({"type": "pci", "version": "1.1.0", "pci": {"pci-address": "0000:3b:02.0"}}));
    Call::new("CHECK", "sr-1", &ns.path(), "net1").ok(&with_prev(&kernel, &r));
    Call::new("DEL", "sr-1", &ns.path(), "net1").ok(&kernel);
    Call::new("DEL", "sr-1", &ns.path(), "net1").ok(&kernel);
    assert!(host_has(), "DEL moved the VF back under its name");
    assert!(!ns.has_link("net1"));
    assert_eq!(ipam_allocations(&dir.0.join("ipam")), vec![]);

    // DPDK mode: VF 1 is bound to vfio-pci; kernel mode refuses it (102).
    let mut dpdk = kernel.clone();
    dpdk["deviceID"] = json!("0000:3b:02.1");
    dpdk["sriov"]["mode"] = json!("dpdk");
    let r = Call::new("ADD", "sr-2", &ns.path(), "net2").ok(&dpdk);
    assert_eq!(r["interfaces"][0]["pciID"], "0000:3b:02.1");
    assert_eq!(r["ips"][0]["interface"], 0);
    let mut wrong = kernel.clone();
    wrong["deviceID"] = json!("0000:3b:02.1");
    let err = Call::new("ADD", "sr-3", &ns.path(), "net3").err(&wrong);
    assert_eq!(err["code"], 102, "{err}");
    Call::new("DEL", "sr-2", &ns.path(), "net2").ok(&dpdk);
    assert_eq!(ipam_allocations(&dir.0.join("ipam")), vec![]);
    drop(dummy);
}

#[test]
fn parallel_adds_and_dels_of_many_pods() {
    let e = Env::new("par");
    let n = 12;
    let pods: Vec<Netns> = (0..n).map(|i| Netns::new(format!("cn{}p{i}", tag("t")))).collect();
    let conf = e.red("1.1.0");
    let results: Vec<Value> = std::thread::scope(|s| {
        let hs: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                let conf = &conf;
                s.spawn(move || Call::new("ADD", &format!("par-{i}"), &ns.path(), "eth0").ok(conf))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ips: Vec<String> = results.iter().map(ip_of).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), n, "distinct addresses");
    assert_eq!(e.d.state().interfaces.len(), n);
    pods[0].ping(&ip_of(&results[n - 1]), 1, 10).unwrap();
    std::thread::scope(|s| {
        for (i, ns) in pods.iter().enumerate() {
            let conf = &conf;
            s.spawn(move || Call::new("DEL", &format!("par-{i}"), &ns.path(), "eth0").ok(conf));
        }
    });
    let st = e.d.state();
    assert!(st.interfaces.is_empty() && st.routes.is_empty() && st.neighbors.is_empty(), "{}", st.to_yaml());
    assert_eq!(ipam_allocations(&e.ipam_dir()), vec![]);
}

/// memif end to end: a CNF (the memif crate's `cnf_echo`, a memif client
/// with an IP stack) configured from the plugin's result alone — socket,
/// MAC, address, gateway — is pinged by a tap pod through vswitch, on the
/// routed network and on a bridged one.
#[test]
fn a_cnf_on_a_memif_attachment_answers_pings_from_a_tap_pod() {
    let e = Env::new("cnf");
    let cnf_bin = cnf_echo();
    let pod = Netns::new(format!("cn{}x", tag("t")));
    let cnf_ns = Netns::new(format!("cn{}y", tag("t")));
    let sockets = e.dir.0.join("pods");
    let memif = |conf: &Value| {
        let mut c = conf.clone();
        c["kind"] = json!("memif");
        c["memif"] = json!({"socketDir": sockets});
        c
    };
    let args = "K8S_POD_NAMESPACE=cnfs;K8S_POD_NAME=echo-0";
    let mut cnfs = Vec::new();
    for (conf, ifname) in [(e.red("1.1.0"), "eth0"), (e.l2("1.1.0", "blue", "blue", "10.62.0.0/24"), "net1")] {
        let tap = Call::new("ADD", "cnf-client", &pod.path(), ifname).ok(&conf);
        let r = Call::new("ADD", "cnf-server", &cnf_ns.path(), ifname).args(args).ok(&memif(&conf));
        let i = &r["interfaces"][0];
        let mut cmd = Command::new(&cnf_bin);
        cmd.arg(i["socketPath"].as_str().unwrap())
            .args(["--id", "0", "--ip", r["ips"][0]["address"].as_str().unwrap()])
            .args(["--mac", i["mac"].as_str().unwrap()]);
        if let Some(gw) = r["ips"][0]["gateway"].as_str() {
            cmd.args(["--gateway", gw]);
        }
        let mut bg = Bg::start(&mut cmd, e.dir.0.join(format!("cnf-{ifname}.out")));
        assert!(bg.wait_for("ready", Duration::from_secs(10)), "cnf_echo: {}\n{}", bg.text(), e.d.log_text());
        pod.ping(&ip_of(&r), 2, 10).unwrap_or_else(|err| panic!("{ifname}: {err}\n{}", e.d.log_text()));
        cnfs.push((bg, tap, r));
    }
    drop(cnfs);
    for (conf, ifname) in [(e.red("1.1.0"), "eth0"), (e.l2("1.1.0", "blue", "blue", "10.62.0.0/24"), "net1")] {
        Call::new("DEL", "cnf-client", &pod.path(), ifname).ok(&conf);
        Call::new("DEL", "cnf-server", &cnf_ns.path(), ifname).args(args).ok(&memif(&conf));
    }
    assert!(e.d.state().interfaces.is_empty());
    assert!(!sockets.join("cnfs_echo-0").exists());
}
