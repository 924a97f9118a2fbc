//! CNI ADD latency of `vswitch-cni`, each ADD timed from exec to exit of
//! the plugin process, as a runtime sees it.
//!
//! ```text
//! cargo build --profile test-release -p vswitch -p vswitch-ipam -p vswitch-cni
//! cargo build --profile test-release -p vswitch-cni --example add_latency
//! target/test-release/examples/add_latency [--adds N] [--parallel P] [--kinds tap,memif]
//!     [--network l2|l3] [--bin-dir DIR]
//! ```
//!
//! Starts its own vswitch daemon (state, API socket, IPAM file store and
//! memif directories in a temporary directory), makes one network namespace
//! per pod (`cnb<pid>-<i>`), and for each kind runs `N` ADDs one at a time,
//! then `N` ADDs with `P` (default 20) in flight at once, each pod its own
//! container id; reports p50/p99/max per ADD (and per DEL, which runs after
//! each phase and empties vswitch again). The plugin delegates to
//! `vswitch-ipam` (file store) as in production, so IPAM is part of the time.
//! Everything it made is removed at the end (also on panic: the guards).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Args {
    adds: usize,
    parallel: usize,
    kinds: Vec<String>,
    network: String,
    bin_dir: PathBuf,
}

fn args() -> Args {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/examples/add_latency
    let default_bins = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let mut a = Args {
        adds: 200,
        parallel: 20,
        kinds: vec!["tap".into(), "memif".into()],
        network: "l3".into(),
        bin_dir: default_bins,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--adds" => a.adds = v.parse().expect("--adds N"),
            "--parallel" => a.parallel = v.parse().expect("--parallel P"),
            "--kinds" => a.kinds = v.split(',').map(str::to_string).collect(),
            "--network" => a.network = v,
            "--bin-dir" => a.bin_dir = PathBuf::from(v),
            _ => panic!("unknown argument {k}"),
        }
    }
    assert!(a.network == "l2" || a.network == "l3", "--network l2|l3");
    a
}

struct Netns(String);

impl Netns {
    fn new(name: String) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let st = Command::new("ip").args(["netns", "add", &name]).status().unwrap();
        assert!(st.success(), "ip netns add {name}");
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // Only the process started here, by pid.
        let _ = Command::new("kill").args(["-15", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cni(bins: &Path, cmd: &str, cid: &str, netns: &str, ifname: &str, conf: &[u8]) -> (Duration, bool, String) {
    let debug = std::env::var_os("VSWITCH_CNI_DEBUG").is_some();
    let t = Instant::now();
    let mut child = Command::new(bins.join("vswitch-cni"))
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| k == "VSWITCH_CNI_DEBUG"))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", ifname)
        .env("CNI_ARGS", format!("K8S_POD_NAMESPACE=bench;K8S_POD_NAME={cid}"))
        .env("CNI_PATH", bins)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(if debug { Stdio::inherit() } else { Stdio::null() })
        .spawn()
        .expect("vswitch-cni");
    child.stdin.take().unwrap().write_all(conf).unwrap();
    let out = child.wait_with_output().unwrap();
    (t.elapsed(), out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

fn report(what: &str, mut v: Vec<Duration>, wall: Duration) {
    v.sort();
    println!(
        "{what:<34} n={:<4} p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms  ({:.0}/s)",
        v.len(),
        pct(&v, 0.50),
        pct(&v, 0.99),
        v.last().unwrap().as_secs_f64() * 1e3,
        v.len() as f64 / wall.as_secs_f64()
    );
}

/// Runs `op` for every pod index with `parallel` in flight; the latencies.
fn run_all(n: usize, parallel: usize, op: impl Fn(usize) -> Duration + Sync) -> (Vec<Duration>, Duration) {
    let t = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut all = Vec::new();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..parallel)
            .map(|_| {
                s.spawn(|| {
                    let mut v = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            break v;
                        }
                        v.push(op(i));
                    }
                })
            })
            .collect();
        for h in hs {
            all.extend(h.join().unwrap());
        }
    });
    (all, t.elapsed())
}

fn main() {
    let a = args();
    for b in ["vswitch", "vswitch-cni", "vswitch-ipam"] {
        assert!(a.bin_dir.join(b).exists(), "{} missing: build it (see the header) or pass --bin-dir", b);
    }
    let dir = Dir(std::env::temp_dir().join(format!("vswitch-cni-bench-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let socket = dir.0.join("api.sock");
    let cfg = dir.0.join("config.yaml");
    std::fs::write(
        &cfg,
        "bridge_domains: [{ id: 10 }]\nvrfs: [{ id: 5 }]\nnetworks:\n  - { name: l2, bridge_domain: 10 }\n  - { name: l3, vrf: 5 }\n",
    )
    .unwrap();
    let log = std::fs::File::create(dir.0.join("vswitch.log")).unwrap();
    let child = Command::new(a.bin_dir.join("vswitch"))
        .arg("--api-socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.0.join("state"))
        .arg("--config")
        .arg(&cfg)
        .args(["--metrics", "off"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting vswitch");
    let _daemon = Daemon(child);
    let end = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < end, "vswitch did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));

    let n = a.adds;
    let pods: Vec<Netns> = (0..n).map(|i| Netns::new(format!("cnb{}-{i}", std::process::id()))).collect();
    println!(
        "vswitch-cni ADD latency, exec to exit, {} network, vswitch-ipam file store; {} ADDs per row",
        a.network, n
    );
    for kind in &a.kinds {
        let conf = json!({
            "cniVersion": "1.1.0", "name": a.network, "type": "vswitch-cni", "kind": kind,
            "apiSocket": socket, "memif": {"socketDir": dir.0.join("pods")},
            "ipam": {"type": "vswitch-ipam", "subnet": "10.128.0.0/16", "dataDir": dir.0.join("ipam"),
                     "routes": [{"dst": "0.0.0.0/0"}]}
        });
        let mut conf_v: Value = conf;
        if kind != "memif" {
            conf_v.as_object_mut().unwrap().remove("memif");
        }
        let conf = conf_v.to_string().into_bytes();
        if kind == &a.kinds[0] {
            println!(
                "command: CNI_COMMAND=ADD CNI_CONTAINERID=<id> CNI_NETNS=/run/netns/<pod> CNI_IFNAME=eth0 \
                 CNI_PATH={} {} <<< '{}'",
                a.bin_dir.display(),
                a.bin_dir.join("vswitch-cni").display(),
                conf_v
            );
        }
        for (label, parallel) in [("one at a time", 1), ("in parallel", a.parallel)] {
            let add = |i: usize| {
                let (t, ok, out) =
                    cni(&a.bin_dir, "ADD", &format!("b{kind}{i}"), &format!("/run/netns/{}", pods[i].0), "eth0", &conf);
                assert!(ok, "ADD {i} failed: {out}");
                t
            };
            let (lat, wall) = run_all(n, parallel, add);
            report(&format!("{kind} ADD, {label} ({parallel})"), lat, wall);
            let del = |i: usize| {
                let (t, ok, out) =
                    cni(&a.bin_dir, "DEL", &format!("b{kind}{i}"), &format!("/run/netns/{}", pods[i].0), "eth0", &conf);
                assert!(ok, "DEL {i} failed: {out}");
                t
            };
            let (lat, wall) = run_all(n, parallel, del);
            report(&format!("{kind} DEL, {label} ({parallel})"), lat, wall);
        }
    }
    let state = Command::new(a.bin_dir.join("vswitchctl")).arg("--socket").arg(&socket).arg("get").output();
    if let Ok(out) = state {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("owner:"), "interfaces left after DEL:\n{text}");
    }
}
