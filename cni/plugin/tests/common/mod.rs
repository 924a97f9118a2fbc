//! What the plugin tests share: the binaries, a vswitch daemon, network
//! namespaces (pods), plugin invocations as runtimes make them. Every
//! guard cleans up on drop (also when a test panics) and only signals the
//! processes it started, by pid.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The target profile directory (the parent of the test executable's `deps/`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// The directory holding `vswitch`, `vswitchctl`, `vswitch-ipam` and
/// `vswitch-cni`; `vswitch` and `vswitch-ipam` are built (same profile) if
/// missing.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = profile_dir();
        let missing = ["vswitch", "vswitchctl", "vswitch-ipam"].iter().any(|b| !dir.join(b).exists());
        if missing || std::env::var_os("VSWITCH_CNI_TEST_BUILD").is_some() {
            let profile = match dir.file_name().unwrap().to_str().unwrap() {
                "debug" => "dev".to_string(),
                p => p.to_string(),
            };
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let st = Command::new(cargo)
                .args(["build", "--profile", &profile, "-p", "vswitch", "-p", "vswitch-ipam"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("running cargo build");
            assert!(st.success(), "building vswitch and vswitch-ipam failed");
        }
        // The plugin under test is this package's own binary.
        let cni = PathBuf::from(env!("CARGO_BIN_EXE_vswitch-cni"));
        assert_eq!(cni.parent().unwrap(), dir, "vswitch-cni is not in the profile directory");
        dir
    })
}

pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// A unique short tag: `<t><pid>`.
pub fn tag(t: &str) -> String {
    format!("{t}{}", std::process::id())
}

pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace (a pod), deleted on drop unless already gone.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: String) -> Netns {
        assert!(name.starts_with("cn"), "test namespaces start with cn");
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    pub fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["ip", "-n", &self.name];
        a.extend_from_slice(args);
        sh(&a)
    }

    pub fn ip_json(&self, args: &[&str]) -> Value {
        let mut a = vec!["ip", "-j", "-n", &self.name];
        a.extend_from_slice(args);
        serde_json::from_str(&sh(&a)).unwrap()
    }

    pub fn has_link(&self, dev: &str) -> bool {
        Command::new("ip").args(["-n", &self.name, "link", "show", "dev", dev]).output().unwrap().status.success()
    }

    /// Pings `dst` until `count` replies arrive, for at most `secs`.
    pub fn ping(&self, dst: &str, count: u32, secs: u32) -> Result<(), String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "ping", "-n", "-c", &count.to_string(), "-i", "0.2"])
            .args(["-w", &secs.to_string(), dst])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ping {dst} from {} failed:\n{}{}",
                self.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Runs `args` inside the namespace; it must succeed. Its stdout.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let mut a = vec!["ip", "netns", "exec", &self.name];
        a.extend_from_slice(args);
        sh(&a)
    }

    /// Deletes it now (a pod whose namespace is gone).
    pub fn delete(&self) {
        sh(&["ip", "netns", "del", &self.name]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("vswitch-cni-test-{tag}"));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A vswitch daemon started by the test; SIGTERM on drop (SIGKILL if it lingers).
pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(dir: &Path, config: &str) -> Daemon {
        let socket = dir.join("api.sock");
        let log = dir.join("vswitch.log");
        let cfg = dir.join("config.yaml");
        std::fs::write(&cfg, config).unwrap();
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin("vswitch"))
            .arg("--api-socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--config")
            .arg(&cfg)
            .args(["--metrics", "off", "--buffers", "4096"])
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("starting vswitch");
        let mut d = Daemon { child: Some(child), socket, log };
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("vswitch exited with {st}:\n{}", d.log_text());
            }
            if d.socket.exists() && d.ctl(&["get"]).status.success() {
                break;
            }
            assert!(Instant::now() < end, "vswitch did not answer:\n{}", d.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(bin("vswitchctl")).arg("--socket").arg(&self.socket).args(args).output().unwrap()
    }

    /// The state in force.
    pub fn state(&self) -> vswitch_control::DesiredState {
        let out = self.ctl(&["get"]);
        assert!(out.status.success(), "vswitchctl get: {}", String::from_utf8_lossy(&out.stderr));
        vswitch_control::DesiredState::from_yaml(&String::from_utf8_lossy(&out.stdout)).unwrap()
    }

    /// The owners of the interfaces in force.
    pub fn owners(&self) -> Vec<String> {
        let mut v: Vec<String> = self.state().interfaces.iter().filter_map(|i| i.owner.clone()).collect();
        v.sort();
        v
    }

    /// SIGKILL: no cleanup at all (a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-15").arg(c.id().to_string()).status();
            let end = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > end {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One plugin invocation, as a runtime makes it.
pub struct Call {
    pub command: String,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub path: String,
}

impl Call {
    pub fn new(command: &str, container_id: &str, netns: &str, ifname: &str) -> Call {
        Call {
            command: command.into(),
            container_id: container_id.into(),
            netns: netns.into(),
            ifname: ifname.into(),
            args: String::new(),
            path: bin_dir().display().to_string(),
        }
    }

    pub fn args(mut self, a: &str) -> Call {
        self.args = a.into();
        self
    }

    pub fn command(&self, conf: &[u8]) -> Command {
        let mut c = Command::new(bin("vswitch-cni"));
        c.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("CNI_COMMAND", &self.command);
        for (k, v) in [
            ("CNI_CONTAINERID", &self.container_id),
            ("CNI_NETNS", &self.netns),
            ("CNI_IFNAME", &self.ifname),
            ("CNI_ARGS", &self.args),
            ("CNI_PATH", &self.path),
        ] {
            if !v.is_empty() {
                c.env(k, v);
            }
        }
        let _ = conf;
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    }

    /// Runs it: exit code and stdout parsed as JSON (Null when empty).
    pub fn run(&self, conf: &Value) -> (i32, Value) {
        self.run_raw(conf.to_string().as_bytes())
    }

    pub fn run_raw(&self, conf: &[u8]) -> (i32, Value) {
        let mut child = self.command(conf).spawn().expect("running vswitch-cni");
        child.stdin.take().unwrap().write_all(conf).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let v = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text}"))
        };
        (out.status.code().unwrap_or(-1), v)
    }

    /// Must succeed: the JSON it printed.
    pub fn ok(&self, conf: &Value) -> Value {
        let (code, v) = self.run(conf);
        assert_eq!(code, 0, "{} {}/{} failed: {v}", self.command, self.container_id, self.ifname);
        v
    }

    /// Must fail: the error object.
    pub fn err(&self, conf: &Value) -> Value {
        let (code, v) = self.run(conf);
        assert_eq!(code, 1, "{} {}/{} did not fail: {v}", self.command, self.container_id, self.ifname);
        v
    }
}

/// A plugin configuration for `network` (the CNI name) with vswitch-ipam's
/// file store in `dir` and `extra` keys.
pub fn netconf(version: &str, name: &str, socket: &Path, ipam: Option<Value>, extra: Value) -> Value {
    let mut c = json!({"cniVersion": version, "name": name, "type": "vswitch-cni", "apiSocket": socket});
    if let Some(i) = ipam {
        c["ipam"] = i;
    }
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// A vswitch-ipam section (file store in `dir`).
pub fn ipam(subnet: &str, dir: &Path) -> Value {
    json!({"type": "vswitch-ipam", "subnet": subnet, "dataDir": dir, "node": "test",
           "routes": [{"dst": "0.0.0.0/0"}]})
}

/// The addresses (with prefix) of a result.
pub fn addrs(r: &Value) -> Vec<String> {
    r["ips"]
        .as_array()
        .map(|a| a.iter().map(|i| i["address"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The address without prefix of the first ip of a result.
pub fn ip_of(r: &Value) -> String {
    addrs(r)[0].split('/').next().unwrap().to_string()
}

/// Adds `prevResult` (without its cniVersion) to a configuration.
pub fn with_prev(conf: &Value, result: &Value) -> Value {
    let mut c = conf.clone();
    let mut r = result.clone();
    r.as_object_mut().unwrap().remove("cniVersion");
    c["prevResult"] = r;
    c
}

/// Every address allocated in the vswitch-ipam file store under `dir`, with its container.
pub fn ipam_allocations(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    // <dataDir>/<network>/<state file>
    let files: Vec<PathBuf> = rd
        .flatten()
        .filter_map(|d| std::fs::read_dir(d.path()).ok())
        .flat_map(|r| r.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .collect();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
        if let Some(kvs) = v["kvs"].as_object() {
            for (k, val) in kvs {
                if let Some(rest) = k.split("/ips/").nth(1) {
                    let rec: Value = serde_json::from_str(val["value"].as_str().unwrap_or("{}")).unwrap_or_default();
                    out.push((rec["containerID"].as_str().unwrap_or_default().to_string(), rest.to_string()));
                }
            }
        }
    }
    out.sort();
    out
}

/// The memif CNF example of the memif crate (`cnf_echo`: answers ARP and
/// ping on a memif client), built (same profile) if missing.
pub fn cnf_echo() -> PathBuf {
    let p = profile_dir().join("examples/cnf_echo");
    if !p.exists() {
        let profile = match profile_dir().file_name().unwrap().to_str().unwrap() {
            "debug" => "dev".to_string(),
            p => p.to_string(),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--profile", &profile, "-p", "vswitch-memif", "--example", "cnf_echo"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build");
        assert!(st.success(), "building cnf_echo failed");
    }
    p
}

/// A background process the test started; killed (by its own handle) on drop.
pub struct Bg {
    pub child: Child,
    pub out: PathBuf,
}

impl Bg {
    pub fn start(cmd: &mut Command, out: PathBuf) -> Bg {
        let f = std::fs::File::create(&out).unwrap();
        let child = cmd.stdout(f.try_clone().unwrap()).stderr(f).stdin(Stdio::null()).spawn().expect("starting");
        Bg { child, out }
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until its output contains `s`.
    pub fn wait_for(&mut self, s: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.text().contains(s) {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
