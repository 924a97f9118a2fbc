//! `vswitch`: the node daemon.
//!
//! Starts the buffer pool and the workers, restores the desired state
//! from the state directory (or reads `--config` the first time),
//! applies and saves it, then serves the gRPC API on a unix socket and
//! Prometheus metrics on a TCP address until SIGINT or SIGTERM.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};
use vswitch::daemon::{Daemon, Settings};
use vswitch_control::{DesiredState, StateDir};
use vswitch_nodes::ip::IpFibConfig;
use vswitch_packet::BufferPoolConfig;
use vswitch_worker::IdleMode;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Idle {
    /// Spin: lowest latency, a full core per worker.
    Poll,
    /// Spin while busy, sleep up to 1 ms when idle.
    Adaptive,
    /// Block on the queues' descriptors when idle.
    Interrupt,
}

/// The vswitch node daemon.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Desired state (YAML, docs/config.md) to start with when the state
    /// directory has none saved.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The API's unix socket (created mode 0600).
    #[arg(long, value_name = "PATH", default_value = vswitch_api::DEFAULT_SOCKET)]
    api_socket: PathBuf,
    /// Where the applied state is saved and restored from.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/vswitch")]
    state_dir: PathBuf,
    /// Worker threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
    /// How idle workers wait.
    #[arg(long, value_enum, default_value_t = Idle::Adaptive)]
    idle: Idle,
    /// Address of the Prometheus /metrics endpoint, or "off".
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    metrics: String,
    /// Packet buffers in the pool.
    #[arg(long, default_value_t = 32 * 1024)]
    buffers: u32,
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(args) {
        error!("{e}");
        std::process::exit(1);
    }
}

fn initial_state(args: &Args) -> Result<DesiredState, String> {
    let store = StateDir::new(&args.state_dir);
    match store.load().map_err(|e| format!("reading the saved state: {e}"))? {
        Some(s) => {
            info!(path = %store.path().display(), "restoring the saved desired state");
            if let Some(c) = &args.config {
                warn!(config = %c.display(), "--config ignored: the state directory has a saved state (apply changes through vswitchctl)");
            }
            Ok(s)
        }
        None => match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                info!(config = %path.display(), "starting from the configuration file");
                DesiredState::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))
            }
            None => {
                warn!("no saved state and no --config: starting empty");
                Ok(DesiredState::default())
            }
        },
    }
}

fn run(args: Args) -> Result<(), String> {
    let metrics_addr: Option<SocketAddr> = match args.metrics.as_str() {
        "off" | "none" | "" => None,
        a => Some(a.parse().map_err(|_| format!("--metrics {a:?}: expected HOST:PORT or off"))?),
    };
    let state = initial_state(&args)?;
    let settings = Settings {
        workers: args.workers as usize,
        idle: match args.idle {
            Idle::Poll => IdleMode::Poll,
            Idle::Adaptive => IdleMode::Adaptive { max_sleep: Duration::from_millis(1) },
            Idle::Interrupt => IdleMode::Interrupt { max_sleep: Duration::from_millis(10) },
        },
        pool: BufferPoolConfig { buffers: args.buffers, ..BufferPoolConfig::default() },
        fib: IpFibConfig::default(),
        state_dir: args.state_dir.clone(),
    };
    let (daemon, mut dataplane) = Daemon::start(&settings)?;
    let pool = daemon.pool.stats();
    info!(
        workers = settings.workers,
        buffers = pool.capacity,
        backing = %pool.backing,
        idle = ?args.idle,
        "data path started"
    );

    let result = (|| {
        let report = daemon.apply_state(state).map_err(|e| format!("applying the initial state: {e}"))?;
        for w in &report.warnings {
            warn!("{w}");
        }
        info!(
            interfaces = daemon.control().controller.snapshot().interfaces.iter().flatten().count(),
            ports = report.ports_created.len(),
            "desired state applied"
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("vswitch-ctl")
            .build()
            .map_err(|e| format!("starting the control runtime: {e}"))?;
        rt.block_on(serve(Arc::clone(&daemon), &args.api_socket, metrics_addr))
    })();

    // Shutdown: a packet capture still running is written, taps we created
    // stop being persistent, the workers stop (closing every queue, which
    // removes those taps), buffers go back.
    match daemon.pcap_stop() {
        Ok((text, _, _)) => info!("pcap capture running at shutdown: {text}"),
        Err(vswitch::pcap::PcapError::State(_)) => {}
        Err(e) => warn!("pcap capture running at shutdown: {e}"),
    }
    daemon.control().ports.remove_all();
    let missing = dataplane.stop_workers();
    if missing != 0 {
        warn!(buffers = missing, "buffers missing from the pool after stopping");
    }
    if result.is_ok() || args.api_socket.exists() {
        let _ = std::fs::remove_file(&args.api_socket);
    }
    info!("stopped");
    result
}

async fn serve(daemon: Arc<Daemon>, socket: &std::path::Path, metrics: Option<SocketAddr>) -> Result<(), String> {
    let listener = vswitch_api::bind(socket).map_err(|e| format!("API socket: {e}"))?;
    info!(socket = %socket.display(), "API listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let metrics_task = match metrics {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("metrics on {addr}: {e}"))?;
            info!(%addr, "metrics listening on /metrics");
            Some(tokio::spawn(vswitch::metrics::serve(l, Arc::clone(&daemon), stopped(stop_rx.clone()))))
        }
        None => None,
    };

    // Housekeeping the workers do not do: FIB memory reclamation, aging
    // of neighbors and learned MACs.
    let maint = {
        let daemon = Arc::clone(&daemon);
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = rx.wait_for(|s| *s) => return,
                    _ = tick.tick() => {}
                }
                let d = Arc::clone(&daemon);
                let _ = tokio::task::spawn_blocking(move || maintenance(&d)).await;
            }
        })
    };

    // memif links change when a peer connects or leaves: followed every
    // 100 ms (kernel devices with the housekeeping above, every second).
    let memif_links = {
        let daemon = Arc::clone(&daemon);
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = rx.wait_for(|s| *s) => return,
                    _ = tick.tick() => {}
                }
                let d = Arc::clone(&daemon);
                let _ = tokio::task::spawn_blocking(move || follow(&d, true)).await;
            }
        })
    };

    let api = vswitch::service::Api::new(Arc::clone(&daemon));
    let server = tokio::spawn(vswitch_api::serve(listener, api, stopped(stop_rx.clone())));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("SIGINT handler: {e}"))?;
    let server_result = tokio::select! {
        _ = term.recv() => { info!("SIGTERM: stopping"); None }
        _ = int.recv() => { info!("SIGINT: stopping"); None }
        r = server => Some(r),
    };
    let _ = stop_tx.send(true);
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    let _ = maint.await;
    let _ = memif_links.await;
    match server_result {
        Some(Ok(Err(e))) => Err(format!("API server: {e}")),
        Some(Err(e)) => Err(format!("API server task: {e}")),
        _ => Ok(()),
    }
}

fn maintenance(d: &Daemon) {
    follow(d, false);
    {
        let mut c = d.fib.control();
        c.reclaim();
        let aged = c.age_neighbors(vswitch_packet::clock::now());
        if aged > 0 {
            tracing::debug!(aged, "neighbors aged out");
        }
    }
    let snapshot = d.control().controller.snapshot();
    for bd in snapshot.bridge_domains.iter().flatten() {
        if bd.config.mac_age_secs != 0 {
            bd.macs.age(bd.macs.now());
        }
    }
}

/// Interfaces follow their kernel devices: a port whose device goes down
/// (or away) is down in the data path, and takes the device's MTU when
/// its configuration sets none. A memif port is up while connected
/// (`memif_only`: only those).
fn follow(d: &Daemon, memif_only: bool) {
    let mut guard = d.control();
    let c = &mut *guard;
    let links = if memif_only { c.ports.memif_links() } else { c.ports.links() };
    for (port, link) in links {
        let before = c.controller.link(port);
        if c.controller.set_link(port, link) || before.is_some_and(|b| b != link) {
            let name = c.controller.ports().into_iter().find(|p| p.port == port).map(|p| p.interface);
            info!(interface = name.as_deref().unwrap_or("?"), port, up = link.up, mtu = ?link.mtu, "link changed");
        }
    }
}
