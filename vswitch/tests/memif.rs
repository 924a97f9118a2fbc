//! memif interfaces in the daemon, as root, against a real peer: DPDK
//! `dpdk-testpmd` (Debian package `dpdk-dev`) with `net_memif`, both ways
//! round:
//!
//! * vswitch as server (`examples/memif-xconnect.yaml`, sockets moved into
//!   the test's directory) with two testpmd clients: frames both ways,
//!   every counter accounted for (testpmd's port statistics, `show memif`,
//!   `show interfaces`); a testpmd killed and started again reconnects;
//!   after vswitch restarts, the testpmd clients reconnect (DPDK 22.11's
//!   client connects only when its port starts: `port stop` / `port
//!   start`, no restart of testpmd);
//! * vswitch as client of a testpmd server with two ports: the same
//!   accounting, testpmd restarted (vswitch reconnects by itself), vswitch
//!   restarted (it reconnects by itself);
//! * a bad memif setting refused by field, changing nothing;
//! * the CNF example on memif (smoltcp): bridged with a pod (Ethernet
//!   mode), and routed to a pod in IP mode (`mode: ip`, bare IP packets
//!   on the rings; the port answers vswitch's ARP for the CNF).
//!
//! Skipped, saying so, only when `dpdk-testpmd` is not installed. Each
//! testpmd runs with `--no-huge --no-pci` and its own `--file-prefix`,
//! pinned to CPU 0; only processes the test started are signalled, and
//! the `/var/run/dpdk/<prefix>` directories it made are removed.

mod common;

use common::{tag, wait_for, Daemon, TempDir};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// testpmd busy-polls: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn testpmd_bin() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join("dpdk-testpmd"))
        .find(|p| p.exists());
    if found.is_none() {
        eprintln!("SKIPPED: dpdk-testpmd is not installed (Debian package dpdk-dev); vswitch memif interop not tested");
    }
    found
}

/// An interactive testpmd the test started; killed on drop, its runtime
/// directory and log removed.
struct TestPmd {
    child: Option<Child>,
    log: PathBuf,
    prefix: String,
    /// Socket files of its server ports (a killed testpmd leaves them).
    own_socks: Vec<PathBuf>,
}

impl TestPmd {
    /// `ports`: (role, socket) of each net_memif port, all with id 0.
    fn start(bin: &Path, dir: &Path, name: &str, ports: &[(&str, &Path)]) -> TestPmd {
        let prefix = format!("vswt{}{name}", std::process::id());
        let log = dir.join(format!("testpmd-{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new("stdbuf");
        cmd.arg("-oL").arg(bin);
        cmd.args(["--no-huge", "-m", "512", "--no-pci", "--no-telemetry", "--lcores", "0@0,1@0"]);
        cmd.args(["--file-prefix", &prefix]);
        let mut own_socks = Vec::new();
        for (i, (role, sock)) in ports.iter().enumerate() {
            if *role == "server" {
                let _ = std::fs::remove_file(sock);
                own_socks.push(sock.to_path_buf());
            }
            let vdev = format!("net_memif{i},role={role},socket={},socket-abstract=no,id=0", sock.display());
            cmd.args(["--vdev", &vdev]);
        }
        cmd.args(["--", "-i", "--total-num-mbufs=16384"]);
        let child =
            cmd.stdin(Stdio::piped()).stdout(out.try_clone().unwrap()).stderr(out).spawn().expect("start dpdk-testpmd");
        TestPmd { child: Some(child), log, prefix, own_socks }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn cmd(&mut self, c: &str) {
        let stdin = self.child.as_mut().unwrap().stdin.as_mut().unwrap();
        stdin.write_all(format!("{c}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// `show port stats <port>`: (RX-packets, TX-packets) since testpmd
    /// started.
    fn port_stats(&mut self, port: u16) -> (u64, u64) {
        let header = format!("NIC statistics for port {port} ");
        let before = self.log().matches(&header).count();
        self.cmd(&format!("show port stats {port}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.matches(&header).count() > before {
                let block = log.rsplit(&header).next().unwrap();
                if let Some(end) = block.find("\n  ####") {
                    let block = &block[..end];
                    let stat = |key: &str| -> u64 {
                        let at = block.find(key).unwrap_or_else(|| panic!("no {key} in {block}")) + key.len();
                        block[at..].split_whitespace().next().unwrap().parse().unwrap()
                    };
                    return (stat("RX-packets:"), stat("TX-packets:"));
                }
            }
            assert!(Instant::now() < deadline, "no port stats from testpmd:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TestPmd {
    fn drop(&mut self) {
        self.kill();
        for s in &self.own_socks {
            let _ = std::fs::remove_file(s);
        }
        let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.prefix));
    }
}

fn memif_entry(d: &Daemon, name: &str) -> Value {
    let j = d.show_json(&["memif"]);
    j["memif"]
        .as_array()
        .expect("memif is a list")
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no memif {name} in {j}"))
}

/// Waits for `name` to reach `state` in `show memif`, and for the data
/// path to follow: the interface up while connected, down otherwise.
fn wait_state(d: &Daemon, name: &str, state: &str, pmds: &[&TestPmd]) -> Value {
    let mut last = Value::Null;
    let ok = wait_for(Duration::from_secs(30), || {
        last = memif_entry(d, name);
        last["state"] == state && d.interface(name)["up"] == (state == "connected")
    });
    let logs: Vec<String> = pmds.iter().map(|p| p.log()).collect();
    assert!(ok, "{name} never {state}: {last:#}\n{}\n{}\n{}", d.interface(name), d.log_text(), logs.join("\n----\n"));
    last
}

/// What vswitch counted of one memif interface.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Seen {
    /// memif layer: frames received, sent; port layer: frames dropped
    /// unsent.
    rx: u64,
    tx: u64,
    tx_dropped: u64,
    /// `show interfaces`: received, handed to the port to send.
    if_rx: u64,
    if_tx: u64,
}

fn seen(d: &Daemon, name: &str) -> Seen {
    let m = memif_entry(d, name);
    let i = d.interface(name);
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a number: {v} in {m:#}"));
    Seen {
        rx: n(&m["counters"]["rx"]["packets"]),
        tx: n(&m["counters"]["tx"]["packets"]),
        tx_dropped: n(&m["counters"]["tx_dropped"]),
        if_rx: n(&i["rx_packets"]),
        if_tx: n(&i["tx_packets"]),
    }
}

/// Frames vswitch wrote into `name`'s transmit ring that the peer has not
/// read yet.
fn unread(d: &Daemon, name: &str) -> u64 {
    let m = memif_entry(d, name);
    let ring_size = m["ring_size"].as_u64().unwrap() as u16;
    let ring = |dir: &str| m["rings"].as_array().unwrap().iter().find(|r| r["direction"] == dir).cloned();
    let idx = |r: &Value, k: &str| r[k].as_u64().unwrap() as u16;
    match m["role"].as_str().unwrap() {
        // Server: M2S; the client reposts what it read (head = read +
        // ring size), we fill up to tail.
        "server" => {
            ring("m2s").map_or(0, |r| u64::from(ring_size.wrapping_sub(idx(&r, "head").wrapping_sub(idx(&r, "tail")))))
        }
        // Client: S2M; we fill up to head, the server reads up to tail.
        _ => ring("s2m").map_or(0, |r| u64::from(idx(&r, "head").wrapping_sub(idx(&r, "tail")))),
    }
}

/// Waits until `f` returns the same value twice 200 ms apart.
fn settle<T: PartialEq + Copy>(mut f: impl FnMut() -> T) -> T {
    let mut last = f();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(200));
        let now = f();
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("counters never settled");
}

/// Cross-connect of two memif servers, each with a testpmd client: one
/// sends (txonly) while the other receives (rxonly); then the sender's
/// TX equals what vswitch received, the receiver's RX what vswitch put in
/// its ring, and what vswitch received is what it sent plus what it
/// dropped (ring full). Counts are deltas over this phase.
fn one_way(d: &Daemon, (tx_pmd, tx_if): (&mut TestPmd, &str), (rx_pmd, rx_if): (&mut TestPmd, &str)) -> u64 {
    let (_, tx0) = tx_pmd.port_stats(0);
    let (rx0, _) = rx_pmd.port_stats(0);
    let (a0, b0) = (seen(d, tx_if), seen(d, rx_if));
    rx_pmd.cmd("set fwd rxonly");
    rx_pmd.cmd("start");
    tx_pmd.cmd("set fwd txonly");
    tx_pmd.cmd("start");
    std::thread::sleep(Duration::from_millis(300));
    tx_pmd.cmd("stop");
    // vswitch forwards what it has; the receiver reads it all.
    settle(|| (seen(d, tx_if), seen(d, rx_if)));
    assert!(wait_for(Duration::from_secs(10), || unread(d, rx_if) == 0), "{:#}", memif_entry(d, rx_if));
    rx_pmd.cmd("stop");
    let (_, tx1) = tx_pmd.port_stats(0);
    let (rx1, _) = rx_pmd.port_stats(0);
    let (a1, b1) = (seen(d, tx_if), seen(d, rx_if));
    let sent = tx1 - tx0;
    let got = rx1 - rx0;
    let ctx =
        format!("{tx_if} -> {rx_if}: testpmd sent {sent}, received {got}; vswitch {a0:?} -> {a1:?}, {b0:?} -> {b1:?}");
    assert!(sent > 0 && got > 0, "{ctx}");
    assert_eq!(a1.rx - a0.rx, sent, "vswitch received what testpmd sent: {ctx}");
    assert_eq!(a1.if_rx - a0.if_rx, sent, "show interfaces agrees: {ctx}");
    assert_eq!(b1.tx - b0.tx, got, "testpmd received what vswitch sent: {ctx}");
    assert_eq!(b1.if_tx - b0.if_tx, sent, "every frame was handed to the port: {ctx}");
    assert_eq!((b1.tx - b0.tx) + (b1.tx_dropped - b0.tx_dropped), sent, "sent or dropped: {ctx}");
    got
}

fn xconnect_config(dir: &Path) -> String {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/memif-xconnect.yaml"))
        .expect("examples/memif-xconnect.yaml");
    assert!(example.contains("socket: /run/vswitch/memif-a.sock") && example.contains("xconnect: { peer: memif-a }"));
    example.replace("/run/vswitch/", &format!("{}/", dir.join("run").display()))
}

#[test]
fn testpmd_clients_forward_through_the_example_and_reconnect() {
    let Some(bin) = testpmd_bin() else { return };
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let id = tag("mx");
    let dir = TempDir::new(&id);
    let config = xconnect_config(&dir.0);
    let d = Daemon::start(&dir.0, Some(&config), &[]);
    let (sa, sb) = (dir.0.join("run/memif-a.sock"), dir.0.join("run/memif-b.sock"));
    assert!(sa.exists() && sb.exists(), "the server sockets, their directory made");
    let m = memif_entry(&d, "memif-a");
    assert_eq!(
        (m["state"].as_str(), m["role"].as_str(), m["link_up"].as_bool()),
        (Some("listening"), Some("server"), Some(false))
    );
    // Nobody connected: the interfaces are down in the data path.
    assert!(wait_for(Duration::from_secs(5), || d.interface("memif-a")["up"] == false), "{}", d.interface("memif-a"));

    let mut a = TestPmd::start(&bin, &dir.0, "a", &[("client", &sa)]);
    let mut b = TestPmd::start(&bin, &dir.0, "b", &[("client", &sb)]);
    let m = wait_state(&d, "memif-a", "connected", &[&a, &b]);
    wait_state(&d, "memif-b", "connected", &[&a, &b]);
    assert!(m["peer_name"].as_str().unwrap_or("").starts_with("DPDK"), "{m:#}");
    assert_eq!(m["peer_interface"], "net_memif0");
    assert_eq!((m["ring_size"].as_u64(), m["buffer_size"].as_u64()), (Some(1024), Some(2048)), "DPDK's defaults");
    assert_eq!(m["regions"].as_array().map(Vec::len), Some(1), "{m:#}");
    let dirs: Vec<&str> = m["rings"].as_array().unwrap().iter().map(|r| r["direction"].as_str().unwrap()).collect();
    assert_eq!(dirs, ["s2m", "m2s"]);
    assert!(wait_for(Duration::from_secs(5), || d.interface("memif-a")["up"] == true), "up once connected");
    let text = d.ctl_ok(&["show", "memif"]);
    assert!(text.contains("memif-a (port") && text.contains("state connected") && text.contains("DPDK"), "{text}");

    one_way(&d, (&mut a, "memif-a"), (&mut b, "memif-b"));
    one_way(&d, (&mut b, "memif-b"), (&mut a, "memif-a"));

    // testpmd dies: the link goes down (and says why); a new testpmd
    // connects and traffic flows.
    a.kill();
    let m = wait_state(&d, "memif-a", "listening", &[&b]);
    assert_eq!(m["counters"]["disconnects"], 1, "{m:#}");
    assert!(wait_for(Duration::from_secs(5), || d.interface("memif-a")["up"] == false));
    drop(a);
    let mut a = TestPmd::start(&bin, &dir.0, "a2", &[("client", &sa)]);
    let m = wait_state(&d, "memif-a", "connected", &[&a, &b]);
    assert_eq!(m["counters"]["connects"], 2, "{m:#}");
    one_way(&d, (&mut a, "memif-a"), (&mut b, "memif-b"));

    // vswitch restarts (same state directory): the testpmd clients connect
    // again when their ports restart, without restarting testpmd.
    drop(d);
    let d = Daemon::start(&dir.0, None, &[]);
    for p in [&mut a, &mut b] {
        p.cmd("port stop 0");
        p.cmd("port start 0");
    }
    wait_state(&d, "memif-a", "connected", &[&a, &b]);
    wait_state(&d, "memif-b", "connected", &[&a, &b]);
    one_way(&d, (&mut b, "memif-b"), (&mut a, "memif-a"));
    one_way(&d, (&mut a, "memif-a"), (&mut b, "memif-b"));
    drop((a, b));
    drop(d);
}

#[test]
fn vswitch_as_client_of_a_testpmd_server_forwards_and_reconnects() {
    let Some(bin) = testpmd_bin() else { return };
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let id = tag("mc");
    let dir = TempDir::new(&id);
    let (sx, sy) = (dir.0.join("pmd-x.sock"), dir.0.join("pmd-y.sock"));
    let config = format!(
        "interfaces:
  - {{ name: cx, type: memif, memif: {{ role: client, socket: {}, ring_size: 2048 }}, xconnect: {{ peer: cy }} }}
  - {{ name: cy, type: memif, memif: {{ role: client, socket: {} }}, xconnect: {{ peer: cx }} }}
",
        sx.display(),
        sy.display()
    );
    let mut pmd = TestPmd::start(&bin, &dir.0, "s", &[("server", &sx), ("server", &sy)]);
    let mut d = Daemon::start(&dir.0, Some(&config), &[]);

    // testpmd io-forwards port 0 <-> port 1; vswitch cross-connects them
    // back: a loop started with one burst each way.
    let run = |d: &Daemon, pmd: &mut TestPmd| {
        let m = wait_state(d, "cx", "connected", &[&*pmd]);
        wait_state(d, "cy", "connected", &[&*pmd]);
        assert_eq!(m["role"], "client");
        assert_eq!(m["peer_interface"], "net_memif0", "{m:#}");
        assert_eq!(m["ring_size"], 2048, "the client's ring size: {m:#}");
        let (p0, p1) = (pmd.port_stats(0), pmd.port_stats(1));
        let (x0, y0) = (seen(d, "cx"), seen(d, "cy"));
        let (ux0, uy0) = (unread(d, "cx"), unread(d, "cy"));
        pmd.cmd("start tx_first");
        std::thread::sleep(Duration::from_millis(300));
        pmd.cmd("stop");
        let (x1, y1) = settle(|| (seen(d, "cx"), seen(d, "cy")));
        let (ux1, uy1) = (unread(d, "cx"), unread(d, "cy"));
        let (q0, q1) = (pmd.port_stats(0), pmd.port_stats(1));
        let ctx = format!("testpmd {p0:?} {p1:?} -> {q0:?} {q1:?}; vswitch {x0:?} {y0:?} -> {x1:?} {y1:?}");
        assert!(q0.1 - p0.1 > 32 && q1.1 - p1.1 > 32, "the loop ran: {ctx}");
        // What testpmd sent on each port, vswitch received.
        assert_eq!(x1.rx - x0.rx, q0.1 - p0.1, "{ctx}");
        assert_eq!(y1.rx - y0.rx, q1.1 - p1.1, "{ctx}");
        // What vswitch sent, testpmd received or is still in its ring.
        assert_eq!((x1.tx - x0.tx) + ux0, (q0.0 - p0.0) + ux1, "{ctx}");
        assert_eq!((y1.tx - y0.tx) + uy0, (q1.0 - p1.0) + uy1, "{ctx}");
        // Everything received was handed on: sent or dropped.
        assert_eq!((y1.tx - y0.tx) + (y1.tx_dropped - y0.tx_dropped), x1.rx - x0.rx, "{ctx}");
        assert_eq!((x1.tx - x0.tx) + (x1.tx_dropped - x0.tx_dropped), y1.rx - y0.rx, "{ctx}");
        assert_eq!((x1.if_rx - x0.if_rx, y1.if_tx - y0.if_tx), (x1.rx - x0.rx, x1.rx - x0.rx), "{ctx}");
    };
    run(&d, &mut pmd);

    // testpmd restarts: vswitch notices, says why, and reconnects by itself.
    pmd.kill();
    let m = wait_state(&d, "cx", "connecting", &[]);
    assert!(m["local_disconnect_reason"].is_string(), "{m:#}");
    drop(pmd);
    let mut pmd = TestPmd::start(&bin, &dir.0, "s2", &[("server", &sx), ("server", &sy)]);
    run(&d, &mut pmd);
    assert_eq!(memif_entry(&d, "cx")["counters"]["connects"], 2);

    // vswitch restarts: it reconnects to the running testpmd.
    d.stop_with(15);
    drop(d);
    let d = Daemon::start(&dir.0, None, &[]);
    run(&d, &mut pmd);
    drop(pmd);
    drop(d);
}

#[test]
fn a_bad_memif_setting_is_refused_by_field_and_changes_nothing() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let id = tag("mb");
    let dir = TempDir::new(&id);
    let sock = dir.0.join("run/cnf.sock");
    let good = format!(
        "interfaces:\n  - {{ name: cnf1, type: memif, memif: {{ socket: {}, id: 3 }}, l3: {{ addresses: [10.90.0.1/24] }} }}\n",
        sock.display()
    );
    let d = Daemon::start(&dir.0, Some(&good), &[]);
    let before = (d.ctl_ok(&["get"]), memif_entry(&d, "cnf1"));
    assert_eq!(before.1["id"], 3);
    assert!(sock.exists());
    let bad_file = dir.0.join("bad.yaml");
    std::fs::write(
        &bad_file,
        format!(
            "interfaces:\n  - {{ name: cnf1, type: memif, memif: {{ socket: {}, id: 3, ring_size: 1000 }} }}\n  - {{ name: cnf2, type: memif, memif: {{ socket: {}, id: 3, secret: '' }} }}\n",
            sock.display(),
            sock.display()
        ),
    )
    .unwrap();
    let out = d.ctl(&["apply", "-f", bad_file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "interfaces[0] (cnf1).memif.ring_size: 1000 is not a power of two in 256..=16384",
        "interfaces[1] (cnf2).memif.secret: is 0 bytes",
        "interfaces[1] (cnf2).memif.id: 3 is also used on socket",
    ] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    assert!(err.contains("nothing changed"), "{err}");
    let after = (d.ctl_ok(&["get"]), memif_entry(&d, "cnf1"));
    assert_eq!(after.0, before.0);
    assert_eq!(
        (&after.1["port"], &after.1["socket"], &after.1["state"]),
        (&before.1["port"], &before.1["socket"], &before.1["state"])
    );
    assert!(sock.exists(), "the server still listens");

    // A valid change of the memif settings (a new port takes id 3 over)
    // in an apply that fails afterwards (a device that does not exist):
    // undone, the old port has its interface back and a client connects.
    std::fs::write(
        &bad_file,
        format!(
            "interfaces:\n  - {{ name: cnf1, type: memif, memif: {{ socket: {}, id: 3, ring_size: 2048 }} }}\n  - {{ name: broken, type: af-packet, host_ifname: nosuch{} }}\n",
            sock.display(),
            std::process::id() % 100_000
        ),
    )
    .unwrap();
    let out = d.ctl(&["apply", "-f", bad_file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nosuch"), "{err}");
    assert!(d.log_text().contains("memif interface restored"), "{}", d.log_text());
    let after = (d.ctl_ok(&["get"]), memif_entry(&d, "cnf1"));
    assert_eq!(after.0, before.0);
    assert_eq!(
        (&after.1["port"], &after.1["configured_ring_size"]),
        (&before.1["port"], &before.1["configured_ring_size"])
    );
    let client =
        vswitch_memif::Client::new(vswitch_memif::ClientConfig::new(vswitch_memif::SocketAddr::Path(sock.clone())))
            .unwrap();
    let ci = client.add_interface(vswitch_memif::InterfaceConfig::new(3)).unwrap();
    assert!(ci.wait_up(Duration::from_secs(10)), "{:?}\n{}", ci.info(), d.log_text());
    let m = wait_state(&d, "cnf1", "connected", &[]);
    assert_eq!(m["peer_interface"], "memif3", "{m:#}");
    drop(client);
    wait_state(&d, "cnf1", "listening", &[]);
    let _ = std::fs::remove_file(&bad_file);
}

/// The CNF example (`memif/examples/cnf_echo.rs`): built by `cargo test
/// --workspace`; built here when this test runs alone.
fn cnf_echo_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf();
    let bin = profile_dir.join("examples/cnf_echo");
    if !bin.exists() {
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(p) => p.to_string(),
            None => "dev".to_string(),
        };
        let out = Command::new(env!("CARGO"))
            .args(["build", "--profile", &profile, "-p", "vswitch-memif", "--example", "cnf_echo"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo build --example cnf_echo");
        assert!(out.status.success(), "building cnf_echo: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

/// A pod (a tap in its namespace) and the CNF (a memif client with an
/// address, answering ARP, ping and UDP echo) in one bridge domain: the
/// pod pings the CNF and gets its UDP datagram echoed, through vswitch.
/// The CNF survives a vswitch restart (its memif client reconnects).
#[test]
fn a_pod_pings_the_cnf_example_and_gets_udp_echoes_through_vswitch() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cnf_bin = cnf_echo_bin();
    let id = tag("mq");
    let dir = TempDir::new(&id);
    let pod = common::Netns::new(format!("vsw-{id}-p"));
    let tap = format!("{id}t");
    let sock = dir.0.join("run/cnf.sock");
    let config = format!(
        "bridge_domains: [{{ id: 1 }}]
interfaces:
  - {{ name: pod, type: tap, host_ifname: {tap}, netns: {}, bridge: {{ domain: 1 }} }}
  - {{ name: cnf, type: memif, memif: {{ socket: {}, id: 4 }}, bridge: {{ domain: 1 }} }}
",
        pod.name,
        sock.display()
    );
    let mut d = Daemon::start(&dir.0, Some(&config), &[]);
    assert!(pod.wait_link(&tap, Duration::from_secs(5)), "tap {tap} not in {}", pod.name);
    pod.addr(&tap, "10.91.0.1/24");
    let cnf_args = [cnf_bin.to_str().unwrap(), sock.to_str().unwrap(), "--id", "4", "--ip", "10.91.0.9/24"];
    let mut cnf = common::Bg::start(&dir.0, "cnf", &cnf_args);
    let ready = wait_for(Duration::from_secs(10), || cnf.stdout_text().contains("ready"));
    assert!(ready, "cnf_echo not ready: {}{}\n{}", cnf.stdout_text(), cnf.stderr_text(), d.log_text());
    let m = wait_state(&d, "cnf", "connected", &[]);
    assert_eq!(m["peer_interface"], "cnf-echo", "{m:#}");

    let udp_echo = |payload: &str| {
        let code = format!(
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(1)\n\
             for _ in range(5):\n    s.sendto(b'{payload}', ('10.91.0.9', 7))\n    try:\n        \
             print(s.recvfrom(2048)[0].decode()); break\n    except socket.timeout:\n        pass\n"
        );
        pod.exec(&["/usr/bin/python3", "-c", &code])
    };
    let check = |d: &Daemon, payload: &str| {
        pod.ping("10.91.0.9", 3, 10).unwrap_or_else(|e| panic!("{e}\n{}\n{}", cnf.stdout_text(), d.log_text()));
        let out = udp_echo(payload);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            payload,
            "no UDP echo: {}\n{}\n{}",
            common::output_text(&out),
            cnf.stdout_text(),
            d.log_text()
        );
    };
    check(&d, "hello cnf");
    let m = memif_entry(&d, "cnf");
    let c = &m["counters"];
    assert!(c["rx"]["packets"].as_u64().unwrap() >= 5 && c["tx"]["packets"].as_u64().unwrap() >= 5, "{m:#}");
    assert_eq!(c["tx_dropped"], 0, "{m:#}");
    assert!(cnf.stdout_text().contains("udp echo 9 bytes to 10.91.0.1:"), "{}", cnf.stdout_text());
    let l2 = d.show_json(&["l2fib"]);
    let on: Vec<&str> = l2["l2fib"].as_array().unwrap().iter().map(|e| e["interface"].as_str().unwrap()).collect();
    assert!(on.contains(&"cnf") && on.contains(&"pod"), "{l2}");

    // vswitch restarts: the CNF's memif client reconnects by itself.
    d.stop_with(15);
    drop(d);
    // The pod's tap outlives a clean stop, address and all.
    assert!(pod.has_link(&tap));
    let d = Daemon::start(&dir.0, None, &[]);
    assert!(pod.ip(&["-4", "addr", "show", "dev", &tap]).contains("10.91.0.1/24"));
    let m = wait_state(&d, "cnf", "connected", &[]);
    assert_eq!(m["counters"]["connects"], 1, "a new daemon: {m:#}");
    check(&d, "again");
    assert!(cnf.running(), "the CNF kept running");
    cnf.stop_with(15);
    drop(d);
}

/// memif IP mode: the CNF example in `--mode ip` (smoltcp `Medium::Ip`,
/// bare IP packets on the rings) routed to a pod by vswitch. The memif
/// port adds and strips the Ethernet header and answers vswitch's ARP for
/// the CNF itself; the pod, in another subnet, pings the CNF and gets its
/// UDP datagram echoed. A bridged IP-mode memif is refused by field.
#[test]
fn a_pod_reaches_an_ip_mode_cnf_routed_through_vswitch() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cnf_bin = cnf_echo_bin();
    let id = tag("mzip");
    let dir = TempDir::new(&id);
    let pod = common::Netns::new(format!("vsw-{id}-p"));
    let tap = format!("{id}t");
    let sock = dir.0.join("run/cnf.sock");
    let config = format!(
        "interfaces:
  - {{ name: pod, type: tap, host_ifname: {tap}, netns: {}, l3: {{ addresses: [10.93.0.1/24] }} }}
  - {{ name: cnf, type: memif, memif: {{ socket: {}, id: 5, mode: ip }}, l3: {{ addresses: [10.93.1.1/24] }} }}
",
        pod.name,
        sock.display()
    );
    let d = Daemon::start(&dir.0, Some(&config), &[]);
    assert!(pod.wait_link(&tap, Duration::from_secs(5)), "tap {tap} not in {}", pod.name);
    pod.addr(&tap, "10.93.0.2/24");
    pod.ip(&["route", "add", "default", "via", "10.93.0.1"]);
    let cnf_args = [
        cnf_bin.to_str().unwrap(),
        sock.to_str().unwrap(),
        "--id",
        "5",
        "--ip",
        "10.93.1.9/24",
        "--gateway",
        "10.93.1.1",
        "--mode",
        "ip",
    ];
    let mut cnf = common::Bg::start(&dir.0, "cnf", &cnf_args);
    let ready = wait_for(Duration::from_secs(10), || cnf.stdout_text().contains("ready"));
    assert!(ready, "cnf_echo not ready: {}{}\n{}", cnf.stdout_text(), cnf.stderr_text(), d.log_text());
    let m = wait_state(&d, "cnf", "connected", &[]);
    assert_eq!(m["mode"], "ip", "{m:#}");

    pod.ping("10.93.1.9", 3, 10).unwrap_or_else(|e| panic!("{e}\n{}\n{:#}\n{}", cnf.stdout_text(), m, d.log_text()));
    let code = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(1)\n\
         for _ in range(5):\n    s.sendto(b'ip mode', ('10.93.1.9', 7))\n    try:\n        \
         print(s.recvfrom(2048)[0].decode()); break\n    except socket.timeout:\n        pass\n";
    let out = pod.exec(&["/usr/bin/python3", "-c", code]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ip mode",
        "no UDP echo: {}\n{}\n{}",
        common::output_text(&out),
        cnf.stdout_text(),
        d.log_text()
    );
    assert!(cnf.stdout_text().contains("udp echo 7 bytes to 10.93.0.2:"), "{}", cnf.stdout_text());
    // vswitch resolved the CNF through the port's own ARP answer.
    let nb = d.show_json(&["neighbors"]);
    assert!(nb.to_string().contains("02:6d:65:6d:69:66"), "{nb:#}");
    let m = memif_entry(&d, "cnf");
    let c = &m["counters"];
    assert!(c["rx"]["packets"].as_u64().unwrap() >= 4 && c["tx"]["packets"].as_u64().unwrap() >= 4, "{m:#}");
    assert_eq!(c["tx_dropped"], 0, "{m:#}");
    assert!(c["tx_neighbor_replies"].as_u64().unwrap() >= 1, "the port answered vswitch's ARP: {m:#}");
    assert_eq!(c["rx_not_ip"], 0, "{m:#}");

    // IP mode on a bridged interface: refused by field, nothing changes.
    let before = d.ctl_ok(&["get"]);
    let bad_file = dir.0.join("bad.yaml");
    std::fs::write(
        &bad_file,
        format!(
            "bridge_domains: [{{ id: 1 }}]\ninterfaces:\n  - {{ name: cnf, type: memif, memif: {{ socket: {}, id: 5, mode: ip }}, bridge: {{ domain: 1 }} }}\n",
            sock.display()
        ),
    )
    .unwrap();
    let out = d.ctl(&["apply", "-f", bad_file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("interfaces[0] (cnf).memif.mode: ip carries bare IP packets"), "{err}");
    assert_eq!(d.ctl_ok(&["get"]), before);
    cnf.stop_with(15);
    drop(d);
}
