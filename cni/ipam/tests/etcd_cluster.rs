//! Against a real 3-member etcd cluster (started per test on free loopback
//! ports, see `vswitch_ipam::testing`): many allocators acting as different
//! nodes, etcd members killed mid-way (the leader too), plugin processes
//! killed during ADD, and the CNI protocol as runtimes drive it.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use vswitch_cni_types::{CniError, CniResult, Version};
use vswitch_ipam::testing::EtcdCluster;
use vswitch_ipam::{codes, AddRequest};

fn cluster() -> EtcdCluster {
    EtcdCluster::start(3).unwrap_or_else(|e| panic!("cannot start etcd: {e}"))
}

fn etcd_section(c: &EtcdCluster) -> Value {
    json!({"endpoints": c.endpoints(), "requestTimeoutMs": 2000, "dialTimeoutMs": 500})
}

#[derive(Default)]
struct Outcome {
    ok: Vec<(String, IpAddr)>,
    /// Successful ADDs that found their own earlier commit (reply lost, retried).
    recovered: usize,
    /// Retries (lost races, store errors) over all allocators.
    retries: u64,
    exhausted: Vec<CniError>,
    /// ADDs that failed otherwise (e.g. etcd unavailable for the whole timeout).
    failed: Vec<(String, CniError)>,
}

enum Victim {
    Leader,
    Follower,
}

/// `nodes` allocators (threads, each its own node and etcd client) ADD
/// distinct containers until the pool says it is exhausted. With a victim,
/// that etcd member is SIGKILLed once `kill_after` ADDs have succeeded.
fn hammer(c: &mut EtcdCluster, conf: &Value, nodes: usize, victim: Option<(Victim, usize)>) -> Outcome {
    let out = Arc::new(Mutex::new(Outcome::default()));
    let done = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for n in 0..nodes {
        let conf = on_node(conf, &format!("node-{n}"));
        let (out, done) = (out.clone(), done.clone());
        threads.push(std::thread::spawn(move || {
            let rt = rt();
            let ipam = open(&rt, &conf);
            let mut failures = 0;
            for k in 0.. {
                let cid = format!("n{n}-c{k}");
                match rt.block_on(ipam.add(&AddRequest::new(&cid, "eth0"))) {
                    Ok(a) => {
                        // `existing` is legitimate here: a commit whose reply was
                        // lost (member killed) is found by the retry and returned.
                        assert_eq!(a.ips.len(), 1);
                        let mut o = out.lock().unwrap();
                        o.recovered += a.existing as usize;
                        o.ok.push((cid, a.ips[0].address.addr()));
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.code == codes::EXHAUSTED => {
                        let mut o = out.lock().unwrap();
                        o.exhausted.push(e);
                        o.retries += ipam.retries();
                        break;
                    }
                    Err(e) => {
                        out.lock().unwrap().failed.push((cid, e));
                        failures += 1;
                        assert!(failures < 20, "node-{n}: too many failed ADDs");
                    }
                }
            }
        }));
    }
    let mut killed = None;
    if let Some((who, after)) = victim {
        let deadline = Instant::now() + Duration::from_secs(60);
        while done.load(Ordering::Relaxed) < after {
            assert!(Instant::now() < deadline, "allocators made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        let leader = c.leader().expect("the cluster has a leader");
        let idx = match who {
            Victim::Leader => leader,
            Victim::Follower => (leader + 1) % c.len(),
        };
        c.kill(idx).unwrap();
        killed = Some((idx, leader));
    }
    for t in threads {
        t.join().expect("allocator thread panicked");
    }
    if let Some((idx, old_leader)) = killed {
        c.wait_ready(Duration::from_secs(20)).unwrap();
        let leader = c.leader().expect("a leader after the kill");
        assert_ne!(leader, idx, "the killed member cannot lead");
        if idx == old_leader {
            assert_ne!(leader, old_leader);
        }
    }
    Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap()
}

/// Everything the allocators were told must be in etcd, nothing twice, and
/// the pool full: exactly `usable` addresses, each held by one attachment.
fn verify(c: &EtcdCluster, conf: &Value, out: &Outcome, nodes: usize, usable: usize) {
    eprintln!(
        "{} ADDs succeeded ({} after a lost reply), {} retries, {} failed, {} exhausted",
        out.ok.len(),
        out.recovered,
        out.retries,
        out.failed.len(),
        out.exhausted.len()
    );
    // zero duplicates in what ADD returned
    let returned: HashSet<IpAddr> = out.ok.iter().map(|(_, ip)| *ip).collect();
    assert_eq!(returned.len(), out.ok.len(), "an address was returned twice");
    // every allocator ended on a clear exhaustion error naming the range
    assert_eq!(out.exhausted.len(), nodes);
    for e in &out.exhausted {
        assert!(e.msg.contains("10.20.0.0/24"), "{e}");
    }
    // read back through the members still running
    let mut live = conf.clone();
    live["ipam"]["etcd"]["endpoints"] = json!(c.live_endpoints());
    let rt = rt();
    let ipam = open(&rt, &on_node(&live, "verifier"));
    let ips = rt.block_on(ipam.allocations()).unwrap();
    let atts = rt.block_on(ipam.attachments()).unwrap();
    let in_etcd: HashMap<IpAddr, String> = ips.iter().map(|(ip, r)| (*ip, r.owner.container_id.clone())).collect();
    assert_eq!(in_etcd.len(), ips.len());
    // no lost allocation: every successful ADD is in etcd, under its container
    for (cid, ip) in &out.ok {
        assert_eq!(in_etcd.get(ip), Some(cid), "{ip} of {cid} is not in etcd");
    }
    // ADDs that failed without an answer may have committed; nothing else is there
    let failed: HashSet<&str> = out.failed.iter().map(|(c, _)| c.as_str()).collect();
    for (ip, cid) in &in_etcd {
        assert!(returned.contains(ip) || failed.contains(cid.as_str()), "{ip} held by {cid} was never returned");
    }
    // attachments and address keys agree, one to one
    let mut from_atts = HashSet::new();
    for a in &atts {
        for ip in &a.ips {
            assert!(from_atts.insert(ip.address.addr()), "{} is in two attachments", ip.address);
            assert_eq!(in_etcd.get(&ip.address.addr()), Some(&a.owner.container_id));
        }
    }
    assert_eq!(from_atts.len(), in_etcd.len());
    // exhausted means full
    assert_eq!(in_etcd.len(), usable, "the pool was declared exhausted with free addresses left");
    // and STATUS says so
    let e = rt.block_on(ipam.status()).unwrap_err();
    assert_eq!(e.code, 50, "{e}");
}

fn pool_conf(c: &EtcdCluster, net: &str) -> Value {
    netconf(
        "1.1.0",
        net,
        json!({"type": "vswitch-ipam", "ranges": [[{"subnet": "10.20.0.0/24"}]], "blockSize": 28,
               "etcd": etcd_section(c), "timeoutMs": 30000}),
    )
}

#[test]
fn concurrent_nodes_exhaust_pool_without_duplicates() {
    let mut c = cluster();
    let conf = pool_conf(&c, "hammer");
    let out = hammer(&mut c, &conf, 8, None);
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    assert_eq!(out.ok.len(), 253);
    verify(&c, &conf, &out, 8, 253);
    // every block of the /24 was claimed, by the nodes that allocated
    let rt = rt();
    let ipam = open(&rt, &on_node(&conf, "verifier"));
    let blocks = rt.block_on(ipam.blocks()).unwrap();
    assert_eq!(blocks.len(), 16);
    assert!(blocks.iter().all(|(_, b)| b.node.starts_with("node-")));
}

#[test]
fn two_nodes_believing_they_own_one_block_never_share_an_address() {
    let c = cluster();
    // one /26 block: .2-.62 (61 addresses)
    let conf = netconf(
        "1.1.0",
        "contested",
        json!({"type": "vswitch-ipam", "subnet": "10.22.0.0/26", "blockSize": 26, "etcd": etcd_section(&c)}),
    );
    let rt = rt();
    let a = open(&rt, &on_node(&conf, "node-a"));
    rt.block_on(a.add(&AddRequest::new("first", "eth0"))).unwrap();
    // node-b's index also lists the block: both nodes now allocate in it as their own
    let block: ipnet::IpNet = "10.22.0.0/26".parse().unwrap();
    let op = vswitch_ipam::store::Op::Put(a.keys().node_block("node-b", &block), Vec::new());
    assert!(rt.block_on(a.store().txn(&[], &[op], &[])).unwrap().succeeded);
    let ok: Arc<Mutex<Vec<IpAddr>>> = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let conf = on_node(&conf, if t % 2 == 0 { "node-a" } else { "node-b" });
            let ok = ok.clone();
            std::thread::spawn(move || {
                let rt = common::rt();
                let ipam = open(&rt, &conf); // one allocator (process) each
                for k in 0.. {
                    match rt.block_on(ipam.add(&AddRequest::new(format!("t{t}-{k}"), "eth0"))) {
                        Ok(al) => ok.lock().unwrap().push(al.ips[0].address.addr()),
                        Err(e) if e.code == codes::EXHAUSTED => break,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let ok = ok.lock().unwrap();
    let unique: HashSet<IpAddr> = ok.iter().copied().collect();
    assert_eq!(unique.len(), ok.len(), "an address was handed out twice");
    assert_eq!(ok.len(), 60, "61 addresses, one taken by the first ADD");
    let stored = rt.block_on(a.allocations()).unwrap();
    assert_eq!(stored.len(), 61);
}

#[test]
fn one_node_many_tasks_share_an_allocator() {
    let c = cluster();
    let conf = on_node(&pool_conf(&c, "shared"), "node-s");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let ipam = Arc::new(rt.block_on(vswitch_ipam::Ipam::open(config(&conf))).unwrap());
    let next = Arc::new(AtomicUsize::new(0));
    let results: Vec<Result<Vec<IpAddr>, CniError>> = rt.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (ipam, next) = (ipam.clone(), next.clone());
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        match ipam.add(&AddRequest::new(format!("t{k}"), "eth0")).await {
                            Ok(a) => got.push(a.ips[0].address.addr()),
                            Err(e) if e.code == codes::EXHAUSTED => return Ok(got),
                            Err(e) => return Err(e),
                        }
                    }
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r.unwrap());
    }
    let unique: HashSet<IpAddr> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "an address was returned twice");
    assert_eq!(all.len(), 253);
    let stored: HashSet<IpAddr> = rt.block_on(ipam.allocations()).unwrap().into_iter().map(|(ip, _)| ip).collect();
    assert_eq!(stored, unique);
    let blocks = rt.block_on(ipam.blocks()).unwrap();
    assert_eq!(blocks.len(), 16);
    assert!(blocks.iter().all(|(_, b)| b.node == "node-s"));
}

#[test]
fn killing_the_leader_mid_allocation_loses_nothing() {
    let mut c = cluster();
    let conf = pool_conf(&c, "leaderkill");
    let out = hammer(&mut c, &conf, 6, Some((Victim::Leader, 80)));
    verify(&c, &conf, &out, 6, 253);
}

#[test]
fn killing_a_follower_mid_allocation_loses_nothing() {
    let mut c = cluster();
    let conf = pool_conf(&c, "followerkill");
    let out = hammer(&mut c, &conf, 6, Some((Victim::Follower, 80)));
    verify(&c, &conf, &out, 6, 253);
    // the follower comes back and catches up
    let killed = (0..3).find(|&i| c.pid(i).is_none()).unwrap();
    c.restart(killed).unwrap();
    c.wait_ready(Duration::from_secs(20)).unwrap();
    let mut only = conf.clone();
    only["ipam"]["etcd"]["endpoints"] = json!([c.endpoints()[killed]]);
    let rt = rt();
    let ipam = open(&rt, &on_node(&only, "verifier"));
    assert_eq!(rt.block_on(ipam.allocations()).unwrap().len(), 253);
}

#[test]
fn plugin_killed_during_add_leaks_nothing_after_gc() {
    let c = cluster();
    let conf = netconf(
        "1.1.0",
        "crashy",
        json!({"type": "vswitch-ipam", "subnet": "10.50.0.0/25", "blockSize": 28, "node": "node-k",
               "etcd": etcd_section(&c)}),
    );
    let mut live: HashMap<String, String> = HashMap::new();
    let mut killed = Vec::new();
    for wave in 0..6 {
        let cids: Vec<String> = (0..6).map(|i| format!("w{wave}-c{i}")).collect();
        let children: Vec<_> = cids.iter().map(|cid| Invocation::new("ADD", cid, &conf).spawn()).collect();
        for (i, (cid, mut child)) in cids.iter().zip(children).enumerate() {
            if i % 2 == 0 {
                // kill this one somewhere between start and finish
                std::thread::sleep(Duration::from_millis(fastrand::u64(0..25)));
                child.kill().unwrap(); // SIGKILL to exactly this child
                let _ = child.wait();
                killed.push(cid.clone());
            } else {
                let (code, v) = parse_output(child.wait_with_output().unwrap());
                assert_eq!(code, 0, "{v}");
                live.insert(cid.clone(), addrs(&v)[0].clone());
            }
        }
    }
    // the runtime retries some of the killed ADDs (the allocator restarts)
    for cid in killed.iter().step_by(2) {
        let (code, v) = Invocation::new("ADD", cid, &conf).run();
        assert_eq!(code, 0, "{v}");
        live.insert(cid.clone(), addrs(&v)[0].clone());
    }
    // the others are forgotten: GC gets the live attachments
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] =
        json!(live.keys().map(|cid| json!({"containerID": cid, "ifname": "eth0"})).collect::<Vec<_>>());
    let (code, v) = Invocation::new("GC", "", &gc).run();
    assert_eq!(code, 0, "{v}");
    // exactly the live ones remain, with the addresses they were given
    let rt = rt();
    let ipam = open(&rt, &conf);
    let ips = rt.block_on(ipam.allocations()).unwrap();
    let got: HashMap<String, String> =
        ips.iter().map(|(ip, r)| (r.owner.container_id.clone(), ip.to_string())).collect();
    assert_eq!(got, live);
    assert_eq!(rt.block_on(ipam.attachments()).unwrap().len(), live.len());
    let unique: HashSet<&String> = live.values().collect();
    assert_eq!(unique.len(), live.len());
}

fn ds_conf(c: &EtcdCluster, version: &str) -> Value {
    netconf(
        version,
        "dual",
        json!({"type": "vswitch-ipam",
               "ranges": [[{"subnet": "10.30.0.0/24", "gateway": "10.30.0.254"}], [{"subnet": "fd30::/64"}]],
               "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
               "dns": {"nameservers": ["10.30.0.53"]},
               "node": "node-d", "etcd": etcd_section(c)}),
    )
}

#[test]
fn dual_stack_add_in_every_version_is_idempotent() {
    let c = cluster();
    let mut seen = HashSet::new();
    for v in ["0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        let conf = ds_conf(&c, v);
        let cid = format!("ds-{}", v.replace('.', "-"));
        let (code, r) = Invocation::new("ADD", &cid, &conf).run();
        assert_eq!(code, 0, "{r}");
        assert_eq!(r["cniVersion"], v);
        let ips = r["ips"].as_array().unwrap();
        assert_eq!(ips.len(), 2, "{r}");
        let v4 = ips[0]["address"].as_str().unwrap();
        let v6 = ips[1]["address"].as_str().unwrap();
        assert!(v4.starts_with("10.30.0.") && v4.ends_with("/24"), "{r}");
        assert!(v6.starts_with("fd30::") && v6.ends_with("/64"), "{r}");
        assert_eq!(ips[0]["gateway"], "10.30.0.254");
        assert_eq!(ips[1]["gateway"], "fd30::1");
        if v.starts_with("0.") {
            assert_eq!((ips[0]["version"].as_str(), ips[1]["version"].as_str()), (Some("4"), Some("6")));
        } else {
            assert!(ips[0].get("version").is_none() && ips[1].get("version").is_none());
        }
        assert!(ips.iter().all(|ip| ip.get("interface").is_none()), "IPAM results have no interface index");
        assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]));
        assert_eq!(r["dns"]["nameservers"], json!(["10.30.0.53"]));
        CniResult::from_value(&r, None).unwrap();
        assert!(seen.insert(v4.to_string()) && seen.insert(v6.to_string()));
        // ADD again for the same (container, ifname): the same answer
        let (code, again) = Invocation::new("ADD", &cid, &conf).run();
        assert_eq!(code, 0);
        assert_eq!(again, r);
    }
    // VERSION
    let conf = json!({"cniVersion": "1.0.0"});
    let (code, v) = Invocation::new("VERSION", "", &conf).run();
    assert_eq!(code, 0);
    assert_eq!(v["cniVersion"], "1.0.0");
    assert_eq!(v["supportedVersions"], json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]));
}

fn err_of(v: &Value) -> CniError {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("not an error object ({e}): {v}"))
}

#[test]
fn fixed_ips_are_honored_and_refused_when_taken() {
    let c = cluster();
    let base = |node: &str| {
        netconf(
            "1.1.0",
            "fixed",
            json!({"type": "vswitch-ipam", "subnet": "10.40.0.0/24", "blockSize": 28, "node": node,
                   "etcd": etcd_section(&c)}),
        )
    };
    let with_ips = |node: &str, ips: &[&str]| {
        let mut v = base(node);
        v["runtimeConfig"] = json!({"ips": ips});
        v
    };
    // the ips capability, on node b (claims the block .64/28)
    let (code, r) = Invocation::new("ADD", "c1", &with_ips("node-b", &["10.40.0.77/24"])).run();
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["ips"][0]["address"], "10.40.0.77/24");
    // taken: a clear error, nonzero exit, error JSON on stdout
    let (code, r) = Invocation::new("ADD", "c2", &with_ips("node-a", &["10.40.0.77"])).run();
    assert_eq!(code, 1);
    let e = err_of(&r);
    assert_eq!(e.code, codes::ADDRESS_IN_USE);
    assert_eq!(e.cni_version, "1.1.0");
    assert!(e.msg.contains("10.40.0.77") && e.details.contains("container c1"), "{e}");
    // CNI_ARGS IP=, on node a, inside node b's block
    let conf_a = base("node-a");
    let mut inv = Invocation::new("ADD", "c3", &conf_a);
    inv.args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p3;IP=10.40.0.78";
    let (code, r) = inv.run();
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["ips"][0]["address"], "10.40.0.78/24");
    // args.cni.ips wins over CNI_ARGS
    let mut conf = base("node-a");
    conf["args"] = json!({"cni": {"ips": ["10.40.0.79"]}});
    let mut inv = Invocation::new("ADD", "c4", &conf);
    inv.args = "IP=10.40.0.80";
    let (code, r) = inv.run();
    assert_eq!(code, 0, "{r}");
    assert_eq!(addrs(&r), vec!["10.40.0.79"]);
    // not in the range, or reserved (network address, gateway)
    for ip in ["10.41.0.1", "10.40.0.0", "10.40.0.1", "10.40.0.255", "bogus"] {
        let mut inv = Invocation::new("ADD", "c5", &conf_a);
        let args = format!("IP={ip}");
        inv.args = &args;
        let (code, r) = inv.run();
        assert_eq!(code, 1, "{ip}: {r}");
        assert_eq!(err_of(&r).code, codes::ADDRESS_NOT_AVAILABLE, "{ip}");
    }
    // the pod's metadata is recorded with the address
    let rt = rt();
    let ipam = open(&rt, &conf_a);
    let ips = rt.block_on(ipam.allocations()).unwrap();
    let rec = &ips.iter().find(|(ip, _)| ip.to_string() == "10.40.0.78").unwrap().1;
    assert_eq!((rec.owner.pod_namespace.as_deref(), rec.owner.pod_name.as_deref()), (Some("ns"), Some("p3")));
    assert_eq!(rec.owner.node, "node-a");
    assert_eq!(rec.block.to_string(), "10.40.0.64/28");
    let blocks = rt.block_on(ipam.blocks()).unwrap();
    assert_eq!(blocks.iter().find(|(b, _)| b.to_string() == "10.40.0.64/28").unwrap().1.node, "node-b");
    // once released, the address can be had
    let (code, _) = Invocation::new("DEL", "c1", &base("node-b")).run();
    assert_eq!(code, 0);
    let (code, r) = Invocation::new("ADD", "c2", &with_ips("node-a", &["10.40.0.77"])).run();
    assert_eq!(code, 0, "{r}");
    assert_eq!(addrs(&r), vec!["10.40.0.77"]);
}

#[test]
fn del_twice_check_and_protocol_errors() {
    let c = cluster();
    let conf = netconf(
        "1.1.0",
        "lifecycle",
        json!({"type": "vswitch-ipam", "subnet": "10.60.0.0/24", "node": "node-l", "etcd": etcd_section(&c)}),
    );
    let (code, r) = Invocation::new("ADD", "c1", &conf).run();
    assert_eq!(code, 0, "{r}");
    // CHECK with the ADD result as prevResult
    let mut check = conf.clone();
    check["prevResult"] = r.clone();
    let (code, out) = Invocation::new("CHECK", "c1", &check).run();
    assert_eq!((code, &out), (0, &Value::Null));
    // CHECK with a prevResult that lists another address
    let mut wrong = check.clone();
    wrong["prevResult"]["ips"][0]["address"] = json!("10.60.0.250/24");
    let (code, out) = Invocation::new("CHECK", "c1", &wrong).run();
    assert_eq!((code, err_of(&out).code), (1, codes::ALLOCATION_MISMATCH));
    // DEL, twice
    for _ in 0..2 {
        let (code, out) = Invocation::new("DEL", "c1", &conf).run();
        assert_eq!((code, &out), (0, &Value::Null));
    }
    let (code, out) = Invocation::new("CHECK", "c1", &check).run();
    assert_eq!((code, err_of(&out).code), (1, codes::NO_ALLOCATION));
    // DEL of something never added
    let (code, _) = Invocation::new("DEL", "never", &conf).run();
    assert_eq!(code, 0);
    // the address is free again and nothing is left behind
    let rt = rt();
    let ipam = open(&rt, &conf);
    assert!(rt.block_on(ipam.allocations()).unwrap().is_empty());
    assert!(rt.block_on(ipam.attachments()).unwrap().is_empty());

    // protocol errors, each with its code, on stdout, exit 1
    let mut no_if = Invocation::new("ADD", "c2", &conf);
    no_if.ifname = "";
    let (code, out) = no_if.run();
    assert_eq!(code, 1);
    assert_eq!(err_of(&out).code, 4);
    assert!(err_of(&out).msg.contains("CNI_IFNAME"));
    let cases = [
        (json!({"cniVersion": "0.2.0", "name": "x", "ipam": {"type": "vswitch-ipam"}}), 1),
        (json!({"cniVersion": "1.1.0", "name": "x", "ipam": {"type": "vswitch-ipam", "node": "n"}}), 7),
        (
            json!({"cniVersion": "1.1.0", "name": "x", "ipam": {"type": "vswitch-ipam", "subnet": "10.0.0.0/24", "bogus": 1}}),
            2,
        ),
        (json!("not an object"), 6),
    ];
    for (conf, want) in cases {
        let (code, out) = Invocation::new("ADD", "c3", &conf).run();
        assert_eq!((code, err_of(&out).code), (1, want), "{conf}");
    }
    // CHECK needs 0.4.0, GC and STATUS need 1.1.0
    let mut old = conf.clone();
    old["cniVersion"] = json!("0.3.1");
    assert_eq!(err_of(&Invocation::new("CHECK", "c1", &old).run().1).code, 1);
    old["cniVersion"] = json!("1.0.0");
    assert_eq!(err_of(&Invocation::new("STATUS", "", &old).run().1).code, 1);
}

#[test]
fn gc_frees_only_stale_attachments_of_this_node() {
    let c = cluster();
    let conf = |node: &str| {
        netconf(
            "1.1.0",
            "gc",
            json!({"type": "vswitch-ipam", "subnet": "10.70.0.0/24", "node": node, "etcd": etcd_section(&c)}),
        )
    };
    let (a, b) = (conf("node-a"), conf("node-b"));
    for (cid, ifname, cfg) in
        [("a1", "eth0", &a), ("a1", "net1", &a), ("a2", "eth0", &a), ("a3", "eth0", &a), ("b1", "eth0", &b)]
    {
        let mut inv = Invocation::new("ADD", cid, cfg);
        inv.ifname = ifname;
        assert_eq!(inv.run().0, 0);
    }
    let mut gc = a.clone();
    gc["cni.dev/valid-attachments"] =
        json!([{"containerID": "a1", "ifname": "eth0"}, {"containerID": "a3", "ifname": "eth0"}]);
    let (code, out) = Invocation::new("GC", "", &gc).run();
    assert_eq!((code, &out), (0, &Value::Null));
    let rt = rt();
    let ipam = open(&rt, &a);
    let mut left: Vec<(String, String)> =
        rt.block_on(ipam.attachments()).unwrap().into_iter().map(|r| (r.owner.container_id, r.owner.ifname)).collect();
    left.sort();
    let want: Vec<(String, String)> =
        [("a1", "eth0"), ("a3", "eth0"), ("b1", "eth0")].iter().map(|(c, i)| (c.to_string(), i.to_string())).collect();
    assert_eq!(left, want, "GC released exactly a1/net1 and a2, and left node-b's alone");
    assert_eq!(rt.block_on(ipam.allocations()).unwrap().len(), 3);
    // GC without the list is refused rather than guessed
    let (code, out) = Invocation::new("GC", "", &a).run();
    assert_eq!((code, err_of(&out).code), (1, 7));
}

#[test]
fn status_reports_store_health_and_exhaustion() {
    let mut c = cluster();
    let conf = netconf(
        "1.1.0",
        "tiny",
        json!({"type": "vswitch-ipam", "subnet": "10.80.0.0/29", "node": "node-s",
               "etcd": {"endpoints": c.endpoints(), "requestTimeoutMs": 1000, "dialTimeoutMs": 300},
               "timeoutMs": 2000}),
    );
    assert_eq!(Invocation::new("STATUS", "", &conf).run(), (0, Value::Null));
    // .2-.6: five addresses
    for i in 0..5 {
        let (code, r) = Invocation::new("ADD", &format!("c{i}"), &conf).run();
        assert_eq!(code, 0, "{r}");
    }
    let (code, out) = Invocation::new("ADD", "c5", &conf).run();
    let e = err_of(&out);
    assert_eq!((code, e.code), (1, codes::EXHAUSTED));
    assert!(e.msg.contains("10.80.0.0/29"), "{e}");
    let (code, out) = Invocation::new("STATUS", "", &conf).run();
    assert_eq!((code, err_of(&out).code), (1, 50));
    // etcd gone: STATUS 50, ADD "try again later"
    for i in 0..3 {
        c.kill(i).unwrap();
    }
    let (code, out) = Invocation::new("STATUS", "", &conf).run();
    assert_eq!((code, err_of(&out).code), (1, 50));
    let (code, out) = Invocation::new("DEL", "c0", &conf).run();
    assert_eq!((code, err_of(&out).code), (1, 11));
}

#[test]
fn empty_blocks_are_released_and_stranded_blocks_reused() {
    let c = cluster();
    let conf = |node: &str, release: bool| {
        netconf(
            "1.1.0",
            "blocks",
            json!({"type": "vswitch-ipam", "subnet": "10.90.0.0/24", "blockSize": 28, "node": node,
                   "releaseEmptyBlocks": release, "etcd": etcd_section(&c)}),
        )
    };
    let rt = rt();
    let a = open(&rt, &conf("node-a", true));
    for i in 0..20 {
        rt.block_on(a.add(&AddRequest::new(format!("c{i}"), "eth0"))).unwrap();
    }
    let mine = |ipam: &vswitch_ipam::Ipam, node: &str| -> Vec<String> {
        let mut v: Vec<String> = rt
            .block_on(ipam.blocks())
            .unwrap()
            .into_iter()
            .filter(|(_, b)| b.node == node)
            .map(|(n, _)| n.to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(mine(&a, "node-a").len(), 2, "20 addresses need two /28 blocks");
    for i in 0..20 {
        assert!(rt.block_on(a.del(&vswitch_cni_types::Attachment::new(format!("c{i}"), "eth0"))).unwrap().is_some());
    }
    assert!(mine(&a, "node-a").is_empty(), "empty blocks are released on DEL");

    // An allocator killed between claiming a block and allocating in it
    // leaves the claim (block key and node index, as the claim transaction
    // writes them) and nothing else.
    let strand = |node: &str, block: &str| {
        let keys = a.keys();
        let net: ipnet::IpNet = block.parse().unwrap();
        let rec = json!({"node": node, "generation": 1, "claimedAt": 0}).to_string();
        let ops = [
            vswitch_ipam::store::Op::Put(keys.block(&net), rec.into_bytes()),
            vswitch_ipam::store::Op::Put(keys.node_block(node, &net), Vec::new()),
        ];
        assert!(rt.block_on(a.store().txn(&[], &ops, &[])).unwrap().succeeded);
    };
    // with releaseEmptyBlocks, GC on that node releases it
    strand("node-a", "10.90.0.128/28");
    let report = rt.block_on(a.gc(&[])).unwrap();
    assert_eq!(report.blocks_released.iter().map(ToString::to_string).collect::<Vec<_>>(), vec!["10.90.0.128/28"]);
    // without it, the node's next ADD uses the block
    let b = open(&rt, &conf("node-b", false));
    strand("node-b", "10.90.0.160/28");
    let got = rt.block_on(b.add(&AddRequest::new("b1", "eth0"))).unwrap();
    assert_eq!(got.ips[0].block.to_string(), "10.90.0.160/28");
    assert_eq!(mine(&b, "node-b"), vec!["10.90.0.160/28"]);
    let r = b.result(&got, Version::V1_1_0);
    assert_eq!(r.ips[0].gateway, Some("10.90.0.1".parse().unwrap()));
}
