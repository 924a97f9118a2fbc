//! A throwaway etcd cluster for tests and benchmarks: N members of the
//! system's `etcd` (Debian `etcd-server`; `ETCD_BIN` overrides the path) on
//! free loopback ports with data in a fresh temporary directory (under
//! `/dev/shm` when there is one, so fsync is cheap; `VSWITCH_IPAM_TEST_DIR`
//! overrides). Dropping the cluster kills exactly the processes it started
//! and removes the directory, also when a test panics; members also get
//! `PR_SET_PDEATHSIG` so they die with the thread that started them if the
//! whole process is killed.

use std::fs::{self, File};
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};

static SEQ: AtomicU32 = AtomicU32::new(0);

struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running etcd cluster (see the module documentation).
pub struct EtcdCluster {
    dir: PathBuf,
    members: Vec<Member>,
    token: String,
    rt: tokio::runtime::Runtime,
}

fn etcd_bin() -> PathBuf {
    std::env::var_os("ETCD_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"))
}

fn base_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VSWITCH_IPAM_TEST_DIR") {
        return PathBuf::from(d);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly()) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    // Hold all listeners until every port is known, so no port repeats.
    let ls: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<io::Result<_>>()?;
    ls.iter().map(|l| l.local_addr().map(|a| a.port())).collect()
}

impl EtcdCluster {
    /// Starts `n` members and waits (up to 30 s) until they have a leader
    /// and answer linearizable reads. Retries with new ports if a port was
    /// taken meanwhile.
    pub fn start(n: usize) -> io::Result<EtcdCluster> {
        let bin = etcd_bin();
        if !bin.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found: install etcd-server (scripts/install-deps.sh) or set ETCD_BIN", bin.display()),
            ));
        }
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(n) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("tried"))
    }

    fn try_start(n: usize) -> io::Result<EtcdCluster> {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let dir = base_dir().join(format!("vswitch-ipam-etcd-{}-{seq}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let ports = free_ports(2 * n)?;
        let members = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_url: format!("http://127.0.0.1:{}", ports[2 * i]),
                peer_url: format!("http://127.0.0.1:{}", ports[2 * i + 1]),
                data_dir: dir.join(format!("m{i}.etcd")),
                log: dir.join(format!("m{i}.log")),
                child: None,
            })
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mut c = EtcdCluster { dir, members, token: format!("vswitch-ipam-{}-{seq}", std::process::id()), rt };
        for i in 0..n {
            c.spawn(i, "new")?;
        }
        c.wait_ready(Duration::from_secs(30))?;
        Ok(c)
        // on error, `c` is dropped: members killed, directory removed
    }

    fn spawn(&mut self, i: usize, state: &str) -> io::Result<()> {
        let initial: Vec<String> = self.members.iter().map(|m| format!("{}={}", m.name, m.peer_url)).collect();
        let m = &self.members[i];
        let log = File::options().create(true).append(true).open(&m.log)?;
        let mut cmd = Command::new(etcd_bin());
        cmd.args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &m.client_url, "--advertise-client-urls", &m.client_url])
            .args(["--listen-peer-urls", &m.peer_url, "--initial-advertise-peer-urls", &m.peer_url])
            .args(["--initial-cluster", &initial.join(","), "--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            // Quick failover for tests: leader loss is noticed within half a second.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no
        // memory of the parent; it only asks the kernel to SIGKILL the child
        // when the thread that forked it exits.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Client URLs of all members (dead ones included): what a client is configured with.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Client URLs of the running members.
    pub fn live_endpoints(&self) -> Vec<String> {
        self.members.iter().filter(|m| m.child.is_some()).map(|m| m.client_url.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Process id of member `i`, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// SIGKILLs member `i` (exactly the process this cluster started) and reaps it.
    pub fn kill(&mut self, i: usize) -> io::Result<()> {
        if let Some(mut c) = self.members[i].child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Starts member `i` again on its old data directory.
    pub fn restart(&mut self, i: usize) -> io::Result<()> {
        if self.members[i].child.is_none() {
            self.spawn(i, "existing")?;
        }
        Ok(())
    }

    /// The index of the current leader, asked of the running members
    /// (maintenance status: each member's id and the leader's id).
    pub fn leader(&self) -> Option<usize> {
        self.rt.block_on(async {
            let mut ids = vec![None; self.members.len()];
            let mut leader = None;
            for (i, m) in self.members.iter().enumerate().filter(|(_, m)| m.child.is_some()) {
                let opts = ConnectOptions::new()
                    .with_connect_timeout(Duration::from_millis(500))
                    .with_timeout(Duration::from_millis(1000));
                let Ok(mut c) = Client::connect([m.client_url.as_str()], Some(opts)).await else { continue };
                if let Ok(s) = c.status().await {
                    ids[i] = s.header().map(|h| h.member_id());
                    if s.leader() != 0 {
                        leader = Some(s.leader());
                    }
                }
            }
            let leader = leader?;
            ids.iter().position(|id| *id == Some(leader))
        })
    }

    /// Waits until the running members have a leader and a linearizable
    /// read through them succeeds.
    pub fn wait_ready(&self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            for (i, m) in self.members.iter().enumerate() {
                if m.child.is_some() && !m.log.exists() {
                    return Err(io::Error::other(format!("member {i} has no log")));
                }
            }
            if self.leader().is_some() && self.read_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = (0..self.members.len()).map(|i| self.log_tail(i)).collect();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("etcd cluster not ready after {timeout:?}; logs:\n{}", logs.join("\n")),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn read_ok(&self) -> bool {
        let eps = self.live_endpoints();
        self.rt.block_on(async {
            let opts = ConnectOptions::new()
                .with_connect_timeout(Duration::from_millis(500))
                .with_timeout(Duration::from_millis(1000))
                .with_require_leader(true);
            match Client::connect(&eps, Some(opts)).await {
                Ok(mut c) => c.get("/ready", None).await.is_ok(),
                Err(_) => false,
            }
        })
    }

    /// The last lines of member `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        let text = fs::read_to_string(&self.members[i].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("--- {} ---\n{}", self.members[i].name, lines[lines.len().saturating_sub(20)..].join("\n"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
