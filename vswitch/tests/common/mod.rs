//! What the daemon tests share: network namespaces, the daemon process
//! and the CLI, each cleaned up by a guard (also when a test panics).
//! Everything is named after the test and the process id, so tests can
//! run in parallel and beside other instances.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A unique short tag: `<t><pid>` (fits interface names with a prefix).
pub fn tag(t: &str) -> String {
    format!("{t}{}", std::process::id())
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// Runs a command that must succeed; returns its stdout.
pub fn sh(args: &[&str]) -> String {
    let out = run(Command::new(args[0]).args(&args[1..]));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace (a pod), deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: String) -> Netns {
        let _ = run(Command::new("ip").args(["netns", "del", &name]));
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    /// `ip -n <ns> <args>`, which must succeed.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["ip", "-n", &self.name];
        a.extend_from_slice(args);
        sh(&a)
    }

    /// Whether `dev` exists in the namespace.
    pub fn has_link(&self, dev: &str) -> bool {
        run(Command::new("ip").args(["-n", &self.name, "link", "show", "dev", dev])).status.success()
    }

    /// Waits up to `timeout` for `dev` to exist here.
    pub fn wait_link(&self, dev: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.has_link(dev) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Gives `dev` the address `addr` (with prefix) and brings it up.
    pub fn addr(&self, dev: &str, addr: &str) {
        self.ip(&["addr", "add", addr, "dev", dev]);
        self.ip(&["link", "set", dev, "up"]);
    }

    /// Pings `dst` until `count` replies arrive, for at most `secs`.
    pub fn ping(&self, dst: &str, count: u32, secs: u32) -> Result<(), String> {
        let out = run(Command::new("ip").args([
            "netns",
            "exec",
            &self.name,
            "ping",
            "-n",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-w",
            &secs.to_string(),
            dst,
        ]));
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
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(Command::new("ip").args(["netns", "del", &self.name]));
    }
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("vswitch-test-{tag}"));
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

/// A vswitch daemon started by the test (and only that process is ever
/// signalled). Dropping it stops it with SIGTERM (SIGKILL if it lingers).
pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub log: PathBuf,
}

/// A free TCP port on localhost (for --metrics).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Daemon {
    /// Starts `vswitch` with its socket and state in `dir`, `config` as
    /// --config (if any) and `extra` arguments; waits until it answers.
    pub fn start(dir: &Path, config: Option<&str>, extra: &[&str]) -> Daemon {
        let socket = dir.join("run/api.sock");
        let state_dir = dir.join("state");
        let n = (1..).find(|n| !dir.join(format!("vswitch-{n}.log")).exists()).unwrap();
        let log = dir.join(format!("vswitch-{n}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vswitch"));
        cmd.arg("--api-socket").arg(&socket).arg("--state-dir").arg(&state_dir);
        if let Some(text) = config {
            let path = dir.join("config.yaml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(&path);
        }
        if !extra.contains(&"--metrics") {
            cmd.args(["--metrics", "off"]);
        }
        cmd.args(extra);
        let logf = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        cmd.stdout(Stdio::null()).stderr(logf).env("RUST_LOG", "info");
        let child = cmd.spawn().expect("starting vswitch");
        let mut d = Daemon { child: Some(child), socket, state_dir, log };
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("vswitch exited with {status} while starting:\n{}", self.log_text());
            }
            if self.socket.exists() && self.ctl(&["get"]).status.success() {
                return;
            }
            assert!(Instant::now() < end, "vswitch did not answer within 20 s:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `vswitchctl --socket <ours> <args>`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        run(Command::new(env!("CARGO_BIN_EXE_vswitchctl")).arg("--socket").arg(&self.socket).args(args))
    }

    /// `vswitchctl` that must succeed: its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "vswitchctl {args:?} failed: {}\n--- daemon log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `vswitchctl show <what> --json`, parsed.
    pub fn show_json(&self, what: &[&str]) -> serde_json::Value {
        let mut args = vec!["show"];
        args.extend_from_slice(what);
        args.push("--json");
        let text = self.ctl_ok(&args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("show {what:?} --json is not JSON ({e}):\n{text}"))
    }

    /// Sends `signal` and waits for the process to end.
    pub fn stop_with(&mut self, signal: i32) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // Only the process this guard started.
        let _ = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status();
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > end {
                let _ = child.kill();
                return child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop_with(15);
        }
    }
}

// ---------------------------------------------------------------------
// For kernel_paths.rs: commands inside pods, background processes, veth
// pairs, polling and error counters.

/// Polls `f` every 100 ms until it holds or `timeout` passes; whether it held.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// stdout and stderr of an output, one after the other.
pub fn output_text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

impl Netns {
    /// Runs `args` inside the namespace (`ip netns exec`), whatever its status.
    pub fn exec(&self, args: &[&str]) -> Output {
        run(Command::new("ip").args(["netns", "exec", &self.name]).args(args))
    }

    /// Runs `args` inside the namespace; it must succeed. Its stdout.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(out.status.success(), "{args:?} in {} failed:\n{}", self.name, output_text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `args` inside the namespace in the background, its stdout
    /// and stderr going to `<dir>/<name>.out` and `<dir>/<name>.err`.
    /// (`ip netns exec` execs the command: the child is the command.)
    pub fn spawn(&self, dir: &Path, name: &str, args: &[&str]) -> Bg {
        let mut a = vec!["ip", "netns", "exec", &self.name];
        a.extend_from_slice(args);
        Bg::start(dir, name, &a)
    }
}

/// A background process the test started (and only it is ever
/// signalled); killed on drop if still running.
pub struct Bg {
    child: Option<Child>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Bg {
    /// Starts `args` in the background, its stdout and stderr going to
    /// `<dir>/<name>.out` and `<dir>/<name>.err`.
    pub fn start(dir: &Path, name: &str, args: &[&str]) -> Bg {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let child = Command::new(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {args:?}: {e}"));
        Bg { child: Some(child), stdout, stderr }
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let end = Instant::now() + timeout;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                self.child = None;
                return Some(s);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` and waits for the exit (SIGKILL after 10 s).
    pub fn stop_with(&mut self, signal: i32) -> Option<std::process::ExitStatus> {
        let id = self.child.as_ref()?.id();
        let _ = Command::new("kill").arg(format!("-{signal}")).arg(id.to_string()).status();
        if let Some(s) = self.wait(Duration::from_secs(10)) {
            return Some(s);
        }
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A veth pair: `host` in the root namespace (up, offloads off: vswitch
/// reads it with AF_PACKET), `pod` moved into `ns` with TSO/GSO off too,
/// so the pod's kernel never hands the host end frames larger than the
/// MTU. Deleting the host end on drop deletes both.
pub struct VethPair {
    pub host: String,
    pub pod: String,
}

impl VethPair {
    pub fn new(host: &str, pod: &str, ns: &Netns) -> VethPair {
        let _ = Command::new("ip").args(["link", "del", host]).output();
        let q = "numtxqueues 1 numrxqueues 1";
        let add = format!("ip link add {host} {q} type veth peer name {pod} {q}");
        sh(&add.split_whitespace().collect::<Vec<_>>());
        let v = VethPair { host: host.to_string(), pod: pod.to_string() };
        sh(&["ip", "link", "set", pod, "netns", &ns.name]);
        sh(&["ethtool", "-K", host, "tso", "off", "gso", "off", "tx", "off"]);
        ns.exec_ok(&["ethtool", "-K", pod, "tso", "off", "gso", "off"]);
        sh(&["ip", "link", "set", host, "up"]);
        v
    }

    /// A pair with both ends in the root namespace (a wire between two
    /// vswitch ports), both up with offloads off.
    pub fn wire(a: &str, b: &str) -> VethPair {
        let _ = Command::new("ip").args(["link", "del", a]).output();
        let q = "numtxqueues 1 numrxqueues 1";
        let add = format!("ip link add {a} {q} type veth peer name {b} {q}");
        sh(&add.split_whitespace().collect::<Vec<_>>());
        let v = VethPair { host: a.to_string(), pod: b.to_string() };
        for d in [a, b] {
            sh(&["ethtool", "-K", d, "tso", "off", "gso", "off", "tx", "off"]);
            sh(&["ip", "link", "set", d, "up"]);
        }
        v
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host]).output();
    }
}

impl Daemon {
    /// The `show errors` count of `node` for `reason` (0 when not listed).
    pub fn error_count(&self, node: &str, reason: &str) -> u64 {
        let j = self.show_json(&["errors"]);
        j["errors"]
            .as_array()
            .expect("errors is a list")
            .iter()
            .filter(|e| e["node"] == node && e["reason"] == reason)
            .map(|e| e["count"].as_u64().unwrap())
            .sum()
    }

    /// One interface of `show interfaces --json`.
    pub fn interface(&self, name: &str) -> serde_json::Value {
        let j = self.show_json(&["interfaces"]);
        j["interfaces"]
            .as_array()
            .expect("interfaces is a list")
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no interface {name} in {j}"))
    }

    /// Whether the daemon process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

/// tcpdump on `dev` in `ns` into a pcap file, read back verbosely (`-v`:
/// hop limits and the SRH), one packet a line.
pub struct Capture {
    bg: Bg,
    file: PathBuf,
}

impl Capture {
    const WAIT: Duration = Duration::from_secs(30);

    /// Starts it and waits until it listens.
    pub fn start(ns: &Netns, dir: &Path, name: &str, dev: &str, filter: &[&str]) -> Capture {
        let file = dir.join(format!("{name}.pcap"));
        let f = file.to_str().unwrap().to_string();
        let mut args = vec!["tcpdump", "-Z", "root", "-i", dev, "--immediate-mode", "-U", "-nn", "-w", &f];
        args.extend_from_slice(filter);
        let mut bg = ns.spawn(dir, name, &args);
        let ready = wait_for(Self::WAIT, || bg.stderr_text().contains("listening on") || !bg.running());
        assert!(ready && bg.running(), "tcpdump on {dev} did not start: {}", bg.stderr_text());
        Capture { bg, file }
    }

    /// What it captured so far, one packet a line.
    pub fn lines(&self) -> Vec<String> {
        let out = Command::new("tcpdump")
            .args(["-r", self.file.to_str().unwrap(), "-t", "-nn", "-v"])
            .output()
            .expect("tcpdump -r");
        // With -v a packet's dissection may continue on indented lines.
        let mut lines: Vec<String> = Vec::new();
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            match lines.last_mut() {
                Some(last) if l.starts_with(' ') || l.starts_with('\t') => {
                    last.push(' ');
                    last.push_str(l.trim());
                }
                _ => lines.push(l.to_string()),
            }
        }
        lines
    }

    /// Waits (30 s at most) until `want` holds of the lines, stops, and
    /// returns them.
    pub fn stop_when(mut self, want: impl Fn(&[String]) -> bool) -> Vec<String> {
        wait_for(Self::WAIT, || want(&self.lines()));
        self.bg.stop_with(2);
        self.lines()
    }
}

/// `sysctl -w kv` inside `ns`.
pub fn sysctl(ns: &Netns, kv: &str) {
    ns.exec_ok(&["sysctl", "-qw", kv]);
}

/// Makes `ns` forward IPv4 and IPv6 with no reverse path filter (an SF
/// receives on one interface what it routes back by another); with `sr`,
/// an SRv6 router too (seg6 on every device given).
pub fn router(ns: &Netns, devs: &[&str], sr: bool) {
    for kv in [
        "net.ipv6.conf.all.forwarding=1",
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
    ] {
        sysctl(ns, kv);
    }
    if sr {
        sysctl(ns, "net.ipv6.conf.all.seg6_enabled=1");
        sysctl(ns, "net.ipv6.conf.default.seg6_enabled=1");
    }
    for d in devs {
        sysctl(ns, &format!("net.ipv4.conf.{d}.rp_filter=0"));
        if sr {
            sysctl(ns, &format!("net.ipv6.conf.{d}.seg6_enabled=1"));
        }
    }
}

/// A veth pair from `a` (in `ns_a`) to `b` (in `ns_b`), both up.
pub fn veth(ns_a: &Netns, a: &str, ns_b: &Netns, b: &str) {
    ns_a.ip(&["link", "add", a, "type", "veth", "peer", "name", b, "netns", &ns_b.name]);
    ns_a.ip(&["link", "set", a, "up"]);
    ns_b.ip(&["link", "set", b, "up"]);
}

/// IPv6 address without duplicate address detection.
pub fn addr6(ns: &Netns, dev: &str, addr: &str) {
    ns.ip(&["-6", "addr", "add", addr, "dev", dev, "nodad"]);
    ns.ip(&["link", "set", dev, "up"]);
}

/// The MAC of `dev` in `ns`.
pub fn mac_of(ns: &Netns, dev: &str) -> String {
    let link = ns.ip(&["-o", "link", "show", "dev", dev]);
    link.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).expect("a MAC").to_string()
}
