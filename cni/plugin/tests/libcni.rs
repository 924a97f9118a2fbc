//! `vswitch-cni` driven by a real runtime's CNI library: containernetworking's
//! libcni (1.1.2, Debian `golang-github-appc-cni-dev`; containerd and CRI-O
//! use it), through the small Go program in `tests/libcni/main.go`, built
//! here in GOPATH mode. Skipped (with a message) where `go` or the libcni
//! sources are missing. libcni 1.1.2 speaks CNI up to 1.0.0 and has no GC
//! or STATUS.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

const GOPATH: &str = "/usr/share/gocode";

fn build_driver(out: &Path) -> Option<PathBuf> {
    let libcni = Path::new(GOPATH).join("src/github.com/containernetworking/cni/libcni");
    if !libcni.exists() || Command::new("go").arg("version").output().is_err() {
        eprintln!("SKIPPED: needs golang-go and golang-github-appc-cni-dev ({} missing)", libcni.display());
        return None;
    }
    let bin = out.join("libcni-driver");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/libcni/main.go");
    let o = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", profile_dir().join("go-build-cache"))
        .output()
        .expect("running go build");
    assert!(o.status.success(), "go build failed: {}", String::from_utf8_lossy(&o.stderr));
    Some(bin)
}

struct Driver {
    bin: PathBuf,
    conflist: PathBuf,
    cache: PathBuf,
    /// Plugin directories, `:`-separated.
    path: String,
}

impl Driver {
    fn run(&self, action: &str, ns: &Netns, cid: &str, ifname: &str, ip: &str, mac: &str) -> (bool, String) {
        let o = Command::new(&self.bin)
            .arg(action)
            .arg(&self.conflist)
            .arg(&self.path)
            .arg(&self.cache)
            .arg(ns.path())
            .args([cid, ifname, ip, mac])
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        (o.status.success(), text)
    }

    fn ok(&self, action: &str, ns: &Netns, cid: &str, ifname: &str, ip: &str, mac: &str) -> String {
        let (ok, text) = self.run(action, ns, cid, ifname, ip, mac);
        assert!(ok, "libcni {action} failed: {text}");
        text
    }
}

#[test]
fn libcni_add_check_del_with_capabilities() {
    let dir = TempDir::new(&tag("libcni"));
    let Some(bin) = build_driver(&dir.0) else { return };
    let d = Daemon::start(
        &dir.0,
        "bridge_domains: [{ id: 10 }]\nvrfs: [{ id: 5 }]\nnetworks:\n  - { name: red, vrf: 5 }\n  - { name: blue, bridge_domain: 10 }\n",
    );
    let conflist = dir.0.join("red.conflist");
    let list = json!({"cniVersion": "1.0.0", "name": "red", "plugins": [{
        "type": "vswitch-cni", "apiSocket": d.socket, "capabilities": {"ips": true, "mac": true},
        "ipam": {"type": "vswitch-ipam", "subnet": "10.71.0.0/24", "dataDir": dir.0.join("ipam"),
                 "routes": [{"dst": "0.0.0.0/0"}]}}]});
    std::fs::write(&conflist, list.to_string()).unwrap();
    let path = bin_dir().display().to_string();
    let drv = Driver { bin: bin.clone(), conflist, cache: dir.0.join("cache"), path };
    let a = Netns::new(format!("cn{}la", tag("t")));
    let b = Netns::new(format!("cn{}lb", tag("t")));

    // VALIDATE: libcni asks the plugin's VERSION and checks the list.
    let caps: Value = serde_json::from_str(drv.ok("validate", &a, "x", "eth0", "", "").trim()).unwrap();
    let mut caps: Vec<String> = serde_json::from_value(caps).unwrap();
    caps.sort();
    assert_eq!(caps, vec!["ips", "mac"]);

    let ra: Value =
        serde_json::from_str(&drv.ok("add", &a, "lib-a", "eth0", "10.71.0.50/24", "0a:00:00:00:71:50")).unwrap();
    assert_eq!(ra["cniVersion"], "1.0.0");
    assert_eq!(ra["ips"][0]["address"], "10.71.0.50/24");
    assert_eq!(ra["interfaces"][0]["mac"], "0a:00:00:00:71:50");
    assert_eq!(ra["interfaces"][0]["sandbox"], a.path());
    let rb: Value = serde_json::from_str(&drv.ok("add", &b, "lib-b", "eth0", "", "")).unwrap();
    let b_ip = ip_of(&rb);
    a.ping(&b_ip, 2, 10).unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    b.ping("10.71.0.50", 1, 10).unwrap();

    // CHECK with the result libcni cached; then after the address is removed.
    drv.ok("check", &a, "lib-a", "eth0", "10.71.0.50/24", "0a:00:00:00:71:50");
    a.ip(&["addr", "del", "10.71.0.50/24", "dev", "eth0"]);
    let (ok, text) = drv.run("check", &a, "lib-a", "eth0", "10.71.0.50/24", "0a:00:00:00:71:50");
    assert!(!ok && text.contains("address 10.71.0.50/24 missing on eth0"), "{text}");

    // DEL (twice: libcni's cache is gone the second time), then the namespace-gone case.
    drv.ok("del", &a, "lib-a", "eth0", "", "");
    drv.ok("del", &a, "lib-a", "eth0", "", "");
    b.delete();
    drv.ok("del", &b, "lib-b", "eth0", "", "");
    let st = d.state();
    assert!(st.interfaces.is_empty() && st.routes.is_empty(), "{}", st.to_yaml());
    assert_eq!(ipam_allocations(&dir.0.join("ipam")), vec![]);

    // A chain, as conflists have them: vswitch-cni delegating to the
    // reference host-local IPAM, then the reference tuning plugin working on
    // vswitch-cni's result (prevResult) — Debian containernetworking-plugins.
    let reference = Path::new("/usr/lib/cni");
    if !reference.join("tuning").exists() || !reference.join("host-local").exists() {
        eprintln!("SKIPPED the chain: needs containernetworking-plugins in /usr/lib/cni");
        return;
    }
    let chain = dir.0.join("blue.conflist");
    let list = json!({"cniVersion": "1.0.0", "name": "blue", "plugins": [
        {"type": "vswitch-cni", "apiSocket": d.socket,
         "ipam": {"type": "host-local", "subnet": "10.72.0.0/24", "dataDir": dir.0.join("host-local")}},
        {"type": "tuning", "promisc": true, "sysctl": {"net.ipv4.conf.net1.arp_ignore": "1"}}]});
    std::fs::write(&chain, list.to_string()).unwrap();
    let drv = Driver {
        bin,
        conflist: chain,
        cache: dir.0.join("cache"),
        path: format!("{}:{}", bin_dir().display(), reference.display()),
    };
    let c = Netns::new(format!("cn{}lc", tag("t")));
    let rc: Value = serde_json::from_str(&drv.ok("add", &c, "lib-c", "net1", "", "")).unwrap();
    assert_eq!(rc["interfaces"][0]["name"], "net1", "{rc}");
    assert!(ip_of(&rc).starts_with("10.72.0."), "host-local's address: {rc}");
    let l = c.ip_json(&["link", "show", "dev", "net1"]);
    assert!(
        l[0]["flags"].as_array().unwrap().contains(&json!("PROMISC")),
        "tuning ran on vswitch-cni's interface: {l}"
    );
    let sysctl = c.exec_ok(&["sysctl", "-n", "net.ipv4.conf.net1.arp_ignore"]);
    assert_eq!(sysctl.trim(), "1");
    let addr = c.ip_json(&["addr", "show", "dev", "net1"]);
    assert!(addr.to_string().contains(&ip_of(&rc)), "{addr}");
    drv.ok("check", &c, "lib-c", "net1", "", "");
    drv.ok("del", &c, "lib-c", "net1", "", "");
    assert!(d.state().interfaces.is_empty());
    assert!(!c.has_link("net1"));
}
