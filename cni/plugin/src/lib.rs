//! `vswitch-cni`: the CNI plugin (spec 1.1.0) that attaches pods to vswitch
//! networks.
//!
//! The host side is asked of the running vswitch over its API (`Patch` adds
//! or removes an attachment's interface, routes and neighbors atomically,
//! tagged with an owner); the pod side (name from `CNI_IFNAME`, MAC, MTU,
//! addresses, routes, neighbors) is configured inside the pod's namespace
//! with netlink. Addresses come from the IPAM plugin named in `ipam`,
//! executed from `CNI_PATH` as the spec prescribes.
//!
//! * [`conf`]: the plugin's keys (`network`, `kind`, `apiSocket`, `mtu`,
//!   `memif`, `sriov`, `deviceID`), each checked (error 7 naming the key);
//! * [`naming`]: the vswitch interface name, owner tag and MACs of an attachment;
//! * [`vsw`]: the vswitch API client (`Get`, `Patch`);
//! * [`pod`]: netlink in the pod's namespace;
//! * [`delegate`]: running the IPAM plugin;
//! * [`memif`], [`sriov`]: the other two kinds of attachment;
//! * [`multus`]: the network-status annotation Multus derives from a result.
//!
//! [`run`] is the whole binary (`src/main.rs` only does I/O).

#![forbid(unsafe_code)]

pub mod conf;
pub mod delegate;
pub mod memif;
pub mod multus;
pub mod naming;
pub mod pod;
pub mod sriov;
pub mod vsw;

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde_json::{json, Value};
use vswitch_cni_types::plugin::Request;
use vswitch_cni_types::{CniEnv, CniError, CniResult, Command, Interface, NetConf, Version};
use vswitch_control::{Mode, NetworkSpec};

use conf::{Kind, PluginConf, SriovMode};
use vsw::Vswitch;

/// `VSWITCH_CNI_DEBUG=1`: phase timings on stderr.
fn trace(start: std::time::Instant, what: &str) {
    if std::env::var_os("VSWITCH_CNI_DEBUG").is_some() {
        eprintln!("vswitch-cni: {:>8.3} ms {what}", start.elapsed().as_secs_f64() * 1e3);
    }
}

/// Plugin-specific error: CHECK found the attachment missing in vswitch.
pub const NOT_ATTACHED: u32 = 103;

pub use vswitch_cni_types::plugin::Output;

/// Runs one plugin invocation: `CNI_*` variables from `vars`, the
/// configuration in `stdin`.
pub fn run<I, K, V>(vars: I, stdin: &[u8]) -> Output
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<OsString>,
    V: Into<OsString>,
{
    Output::of(dispatch(vars, stdin), stdin, "vswitch-cni")
}

/// One invocation, parsed and checked.
struct Ctx {
    env: CniEnv,
    conf: NetConf,
    pc: PluginConf,
    version: Version,
    stdin: Vec<u8>,
}

fn dispatch<I, K, V>(vars: I, stdin: &[u8]) -> Result<Option<String>, CniError>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<OsString>,
    V: Into<OsString>,
{
    let (env, conf, version) = match Request::read(vars, stdin)? {
        Request::Version(answer) => return Ok(Some(answer)),
        Request::Command { env, conf, version } => (env, conf, version),
    };
    let checked = (|| {
        conf.validate_name()?;
        let pc = PluginConf::from_netconf(&conf)?;
        if let Some(ipam) = &conf.ipam {
            if ipam.ipam_type.is_empty() {
                return Err(CniError::invalid_config("invalid ipam configuration", "ipam.type is missing"));
            }
        }
        if let Some(mac) = conf.requested_mac() {
            match naming::parse_mac(mac) {
                Some(m) if naming::is_unicast(m) => {}
                _ => {
                    return Err(CniError::invalid_config(
                        "invalid mac capability",
                        format!("{mac:?} is not a unicast MAC"),
                    ))
                }
            }
        }
        if matches!(env.command, Command::Add | Command::Check) && !env.netns.starts_with('/') {
            return Err(CniError::invalid_env(&["CNI_NETNS"], format!("{:?} is not an absolute path", env.netns)));
        }
        // vswitch keeps the owner tag (container, interface, network) in
        // at most 253 bytes: refuse here, before IPAM, what it would refuse.
        let owner = naming::owner(&env.container_id, &env.ifname, &conf.name);
        if owner.len() > naming::MAX_OWNER_LEN && env.command != Command::Gc && env.command != Command::Status {
            return Err(CniError::invalid_env(
                &["CNI_CONTAINERID"],
                format!(
                    "container id ({} bytes) and network name ({} bytes) make an owner tag of {} bytes; vswitch keeps {}",
                    env.container_id.len(),
                    conf.name.len(),
                    owner.len(),
                    naming::MAX_OWNER_LEN
                ),
            ));
        }
        Ok(pc)
    })();
    let pc = checked.map_err(|e| e.with_version(version))?;
    let ctx = Ctx { env, conf, pc, version, stdin: stdin.to_vec() };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CniError::io("cannot start the async runtime", e.to_string()))?;
    let out = rt.block_on(async {
        match ctx.env.command {
            Command::Add => add(&ctx).await.map(Some),
            Command::Del => del(&ctx).await.map(|_| None),
            Command::Check => check(&ctx).await.map(|_| None),
            Command::Gc => gc(&ctx).await.map(|_| None),
            Command::Status => status(&ctx).await.map(|_| None),
            Command::Version => unreachable!("answered above"),
        }
    });
    out.map_err(|e| e.with_version(version))
}

// ---------------------------------------------------------------------------
// IPAM

impl Ctx {
    fn owner(&self) -> String {
        naming::owner(&self.env.container_id, &self.env.ifname, &self.conf.name)
    }

    fn vswitch_ifname(&self) -> String {
        naming::vswitch_ifname(&self.env.container_id, &self.env.ifname)
    }

    /// Runs the IPAM plugin for `command`; `None` without an `ipam` section.
    fn ipam(&self, command: Command) -> Result<Option<Value>, CniError> {
        let Some(ipam) = &self.conf.ipam else { return Ok(None) };
        let bin = delegate::find_plugin(&ipam.ipam_type, &self.env.path)?;
        delegate::exec(&bin, &self.env, command, &self.stdin)
    }

    /// Starts IPAM ADD (`None` without an `ipam` section); [`Ctx::ipam_result`] waits for it.
    fn ipam_start(&self) -> Result<Option<delegate::Running>, CniError> {
        let Some(ipam) = &self.conf.ipam else { return Ok(None) };
        let bin = delegate::find_plugin(&ipam.ipam_type, &self.env.path)?;
        delegate::spawn(&bin, &self.env, Command::Add, &self.stdin).map(Some)
    }

    fn ipam_result(&self, running: Option<delegate::Running>) -> Result<Option<CniResult>, CniError> {
        let Some(running) = running else { return Ok(None) };
        match running.wait()? {
            None => Err(CniError::decode("the IPAM plugin printed no result", "")),
            Some(v) => CniResult::from_value(&v, Some(self.version)).map(Some),
        }
    }

    fn ipam_add(&self) -> Result<Option<CniResult>, CniError> {
        let running = self.ipam_start()?;
        self.ipam_result(running)
    }

    /// The vswitch network this configuration selects.
    fn network<'a>(&self, networks: &'a [NetworkSpec]) -> Result<&'a NetworkSpec, CniError> {
        networks.iter().find(|n| n.name == self.pc.network).ok_or_else(|| {
            let known: Vec<&str> = networks.iter().map(|n| n.name.as_str()).collect();
            CniError::invalid_config(
                format!("network {:?} is not defined in vswitch", self.pc.network),
                format!("vswitch has networks [{}]", known.join(", ")),
            )
        })
    }

    fn memif_socket(&self) -> Result<PathBuf, CniError> {
        let dir = memif::pod_dir(&self.pc.memif.socket_dir, &self.env.args.k8s(), &self.env.container_id)?;
        memif::socket_path(&dir, &self.env.ifname)
    }
}

/// Routes as the pod gets them: a route without a gateway goes through the
/// gateway of the first address of its family, as the reference plugins do.
fn pod_routes(r: &CniResult) -> Vec<(IpNet, Option<IpAddr>)> {
    r.routes
        .iter()
        .map(|rt| {
            let gw = rt.gw.or_else(|| {
                r.ips
                    .iter()
                    .filter(|ip| ip.address.addr().is_ipv4() == rt.dst.addr().is_ipv4())
                    .find_map(|ip| ip.gateway)
            });
            (rt.dst, gw)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// ADD

async fn add(ctx: &Ctx) -> Result<String, CniError> {
    // The pod must exist before anything is done for it.
    std::fs::metadata(&ctx.env.netns)
        .map_err(|e| CniError::unknown_container(format!("network namespace {} does not exist: {e}", ctx.env.netns)))?;
    let requested_mac = ctx.conf.requested_mac().and_then(naming::parse_mac);
    match ctx.pc.kind {
        Kind::Tap | Kind::Memif => add_vswitch(ctx, requested_mac).await,
        Kind::Sriov => add_sriov(ctx, requested_mac).await,
    }
}

/// The prevResult (a chained call) extended with this attachment's interface and addresses.
fn finish_result(ctx: &Ctx, iface: Interface, ipam: Option<CniResult>) -> Result<String, CniError> {
    let mut result = match ctx.conf.prev_result()? {
        Some(prev) => prev,
        None => CniResult::new(ctx.version),
    };
    result.cni_version = ctx.version;
    let index = result.interfaces.len() as u32;
    result.interfaces.push(iface);
    if let Some(ipam) = ipam {
        for mut ip in ipam.ips {
            ip.interface = Some(index);
            result.ips.push(ip);
        }
        result.routes.extend(ipam.routes);
        if ipam.dns.as_ref().is_some_and(|d| !d.is_empty()) {
            result.dns = ipam.dns;
        }
    }
    if result.dns.is_none() {
        result.dns = ctx.conf.dns.clone().filter(|d| !d.is_empty());
    }
    result.to_json()
}

/// The Patch document for this attachment on `net`.
fn attachment_patch(
    ctx: &Ctx,
    net: &NetworkSpec,
    mtu: Option<u32>,
    pod_mac: Option<[u8; 6]>,
    ipam: Option<&CniResult>,
    memif_socket: Option<&Path>,
) -> Value {
    let name = ctx.vswitch_ifname();
    let vmac = naming::vswitch_mac(&ctx.env.container_id, &ctx.env.ifname);
    let mut iface = json!({"name": name, "owner": ctx.owner(), "mac": naming::format_mac(vmac)});
    match memif_socket {
        None => {
            iface["type"] = json!("tap");
            iface["host_ifname"] = json!(ctx.env.ifname);
            iface["netns"] = json!(ctx.env.netns);
        }
        Some(sock) => {
            iface["type"] = json!("memif");
            let mut m = json!({"role": "server", "socket": sock, "id": 0});
            if let Some(n) = ctx.pc.memif.ring_size {
                m["ring_size"] = json!(n);
            }
            if let Some(n) = ctx.pc.memif.buffer_size {
                m["buffer_size"] = json!(n);
            }
            iface["memif"] = m;
            if let Some(q) = ctx.pc.memif.queues {
                iface["queues"] = json!(q);
            }
        }
    }
    if let Some(m) = mtu {
        iface["mtu"] = json!(m);
    }
    let mut routes = Vec::new();
    let mut neighbors = Vec::new();
    if let Some(bd) = net.bridge_domain {
        iface["bridge"] = json!({"domain": bd});
    } else {
        let vrf = net.vrf.unwrap_or(0);
        iface["l3"] = json!({"vrf": vrf, "proxy_arp": true, "proxy_nd": true});
        for ip in ipam.map(|r| r.ips.as_slice()).unwrap_or_default() {
            let a = ip.address.addr();
            let host = IpNet::new(a, if a.is_ipv4() { 32 } else { 128 }).expect("host prefix");
            routes.push(json!({"vrf": vrf, "prefix": host.to_string(), "interface": name}));
            if let Some(m) = pod_mac {
                neighbors.push(json!({"interface": name, "ip": a.to_string(), "mac": naming::format_mac(m)}));
            }
        }
    }
    json!({"interfaces": [iface], "routes": routes, "neighbors": neighbors})
}

async fn add_vswitch(ctx: &Ctx, requested_mac: Option<[u8; 6]>) -> Result<String, CniError> {
    let t0 = std::time::Instant::now();
    let memif_socket = match ctx.pc.kind {
        Kind::Memif => Some(ctx.memif_socket()?),
        _ => None,
    };
    // IPAM runs (another process) while vswitch is asked for the network.
    let running = ctx.ipam_start()?;
    let looked_up = async {
        let mut vs = Vswitch::connect(&ctx.pc.api_socket).await?;
        trace(t0, "connected");
        let networks = vs.networks(vsw::REQUEST_TIMEOUT).await?;
        trace(t0, "got the networks");
        let net = ctx.network(&networks)?.clone();
        Ok::<_, CniError>((vs, net))
    }
    .await;
    let (mut vs, net) = match looked_up {
        Ok(x) => x,
        Err(e) => {
            // Whatever IPAM did is undone.
            if let Ok(Some(_)) = ctx.ipam_result(running) {
                let _ = ctx.ipam(Command::Del);
            }
            return Err(e);
        }
    };
    let l3 = net.bridge_domain.is_none();
    let mtu = ctx.pc.mtu.or(net.mtu);
    // L3 networks need the pod's MAC for vswitch's static neighbor, memif
    // pods are told theirs: both are chosen here when the runtime gave none.
    let pod_mac = match (requested_mac, l3 || memif_socket.is_some()) {
        (Some(m), _) => Some(m),
        (None, true) => Some(naming::pod_mac(&ctx.env.container_id, &ctx.env.ifname)),
        (None, false) => None,
    };
    let ipam = ctx.ipam_result(running)?;
    trace(t0, "IPAM done");
    // From here on, a failure undoes what was done.
    let done = async {
        if let Some(sock) = &memif_socket {
            memif::prepare(sock.parent().expect("in a directory"))?;
        }
        let doc = attachment_patch(ctx, &net, mtu, pod_mac, ipam.as_ref(), memif_socket.as_deref());
        vs.patch(doc.to_string(), None, Vec::new()).await?;
        trace(t0, "patched");
        let iface = match &memif_socket {
            Some(sock) => Interface {
                name: ctx.env.ifname.clone(),
                mac: pod_mac.map(naming::format_mac),
                mtu,
                sandbox: Some(ctx.env.netns.clone()),
                socket_path: Some(sock.display().to_string()),
                pci_id: None,
            },
            None => {
                let vmac = naming::vswitch_mac(&ctx.env.container_id, &ctx.env.ifname);
                let setup = pod::PodSetup {
                    ifname: ctx.env.ifname.clone(),
                    wait: Duration::from_secs(5),
                    mac: pod_mac,
                    mtu,
                    addrs: ipam.as_ref().map(|r| r.ips.iter().map(|ip| ip.address).collect()).unwrap_or_default(),
                    routes: ipam.as_ref().map(pod_routes).unwrap_or_default(),
                    // L3: the gateway exists nowhere; vswitch answers for it.
                    neighbors: if l3 {
                        ipam.as_ref()
                            .map(|r| r.ips.iter().filter_map(|ip| ip.gateway).map(|g| (g, vmac)).collect())
                            .unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                };
                let link = pod::in_netns(Path::new(&ctx.env.netns), move |h| pod::configure(h, setup))?;
                trace(t0, "pod side configured");
                Interface {
                    name: ctx.env.ifname.clone(),
                    mac: Some(naming::format_mac(link.mac)),
                    mtu: Some(link.mtu),
                    sandbox: Some(ctx.env.netns.clone()),
                    socket_path: None,
                    pci_id: None,
                }
            }
        };
        finish_result(ctx, iface, ipam.clone())
    }
    .await;
    match done {
        Ok(out) => Ok(out),
        Err(e) => {
            let _ = vs.patch(String::new(), Some(ctx.owner()), Vec::new()).await;
            if let Some(sock) = &memif_socket {
                memif::cleanup(sock);
            }
            if ipam.is_some() {
                let _ = ctx.ipam(Command::Del);
            }
            Err(e)
        }
    }
}

async fn add_sriov(ctx: &Ctx, requested_mac: Option<[u8; 6]>) -> Result<String, CniError> {
    let vf = sriov::resolve(&ctx.pc)?;
    let plan = sriov::plan(&ctx.pc, &vf)?;
    let ipam = ctx.ipam_add()?;
    let done = (|| -> Result<String, CniError> {
        let vlan = ctx.pc.sriov.vlan;
        let pf = vf.pf_netdev.clone();
        let vf_index = vf.index;
        let set_pf = move |mac: Option<[u8; 6]>| -> Result<(), CniError> {
            let Some(pf) = pf.clone() else { return Ok(()) };
            if mac.is_none() && vlan.is_none() {
                return Ok(());
            }
            pod::in_host(move |h| async move {
                let l = pod::link_by_name(&h, &pf).await?.ok_or_else(|| pod::pod_err(format!("no PF {pf}"), ""))?;
                sriov::set_vf_mac_vlan(&h, l.header.index, vf_index, mac, vlan).await
            })
        };
        let iface = match plan {
            sriov::Plan::Dpdk { pci } => {
                set_pf(requested_mac)?;
                Interface {
                    name: ctx.env.ifname.clone(),
                    mac: requested_mac.map(naming::format_mac),
                    mtu: None,
                    sandbox: Some(ctx.env.netns.clone()),
                    socket_path: None,
                    pci_id: Some(pci),
                }
            }
            sriov::Plan::Kernel { netdev } => {
                set_pf(requested_mac)?;
                std::fs::create_dir_all(&ctx.pc.sriov.state_dir)
                    .map_err(|e| CniError::io("cannot create the SR-IOV state directory", e.to_string()))?;
                let state = json!({"pci": vf.pci, "netdev": netdev});
                std::fs::write(sriov::state_file(&ctx.pc, &ctx.env.container_id, &ctx.env.ifname), state.to_string())
                    .map_err(|e| CniError::io("cannot write the SR-IOV state", e.to_string()))?;
                let (nd, netns, ifname) = (netdev.clone(), PathBuf::from(&ctx.env.netns), ctx.env.ifname.clone());
                pod::in_host(move |h| async move {
                    let l = pod::link_by_name(&h, &nd)
                        .await?
                        .ok_or_else(|| pod::pod_err(format!("no VF netdev {nd}"), ""))?;
                    pod::move_link(&h, l.header.index, &netns, &ifname).await
                })?;
                let setup = pod::PodSetup {
                    ifname: ctx.env.ifname.clone(),
                    wait: Duration::from_secs(2),
                    mac: requested_mac,
                    mtu: ctx.pc.mtu,
                    addrs: ipam.as_ref().map(|r| r.ips.iter().map(|ip| ip.address).collect()).unwrap_or_default(),
                    routes: ipam.as_ref().map(pod_routes).unwrap_or_default(),
                    neighbors: Vec::new(),
                };
                let link = pod::in_netns(Path::new(&ctx.env.netns), move |h| pod::configure(h, setup))?;
                Interface {
                    name: ctx.env.ifname.clone(),
                    mac: Some(naming::format_mac(link.mac)),
                    mtu: Some(link.mtu),
                    sandbox: Some(ctx.env.netns.clone()),
                    socket_path: None,
                    pci_id: Some(vf.pci.clone()),
                }
            }
        };
        finish_result(ctx, iface, ipam.clone())
    })();
    if done.is_err() {
        let _ = del_sriov(ctx);
        if ipam.is_some() {
            let _ = ctx.ipam(Command::Del);
        }
    }
    done
}

// ---------------------------------------------------------------------------
// DEL

async fn del(ctx: &Ctx) -> Result<(), CniError> {
    let t0 = std::time::Instant::now();
    match ctx.pc.kind {
        Kind::Tap | Kind::Memif => {
            // IPAM DEL runs (another process) while vswitch removes the interface.
            let running = match &ctx.conf.ipam {
                Some(ipam) => {
                    let bin = delegate::find_plugin(&ipam.ipam_type, &ctx.env.path)?;
                    Some(delegate::spawn(&bin, &ctx.env, Command::Del, &ctx.stdin)?)
                }
                None => None,
            };
            let host_side = async {
                let mut vs = Vswitch::connect(&ctx.pc.api_socket).await?;
                // By owner only: an interface of the same name that now
                // belongs to another container is never touched.
                vs.patch(String::new(), Some(ctx.owner()), Vec::new()).await?;
                trace(t0, "patched");
                if ctx.pc.kind == Kind::Memif {
                    memif::cleanup(&ctx.memif_socket()?);
                }
                // The tap went with the vswitch interface; nothing else was
                // made in the pod (whose namespace may be gone already).
                Ok::<_, CniError>(())
            }
            .await;
            let ipam = running.map(|r| r.wait()).transpose();
            trace(t0, "IPAM done");
            host_side?;
            ipam?;
            Ok(())
        }
        Kind::Sriov => {
            del_sriov(ctx)?;
            ctx.ipam(Command::Del)?;
            Ok(())
        }
    }
}

/// Moves a kernel VF back to the host under its original name (best
/// effort: the namespace may be gone, and the kernel then returns the VF by
/// itself; tested with a veth standing in for the VF).
fn del_sriov(ctx: &Ctx) -> Result<(), CniError> {
    if ctx.pc.sriov.mode == SriovMode::Dpdk {
        return Ok(());
    }
    let file = sriov::state_file(&ctx.pc, &ctx.env.container_id, &ctx.env.ifname);
    let Ok(text) = std::fs::read_to_string(&file) else { return Ok(()) };
    let saved: Value = serde_json::from_str(&text).unwrap_or_default();
    let original = saved["netdev"].as_str().unwrap_or_default().to_string();
    if !original.is_empty() && !ctx.env.netns.is_empty() && Path::new(&ctx.env.netns).exists() {
        let host = PathBuf::from(format!("/proc/{}/ns/net", std::process::id()));
        let ifname = ctx.env.ifname.clone();
        let _ = pod::in_netns(Path::new(&ctx.env.netns), move |h| async move {
            if let Some(l) = pod::link_by_name(&h, &ifname).await? {
                pod::move_link(&h, l.header.index, &host, &original).await?;
            }
            Ok(())
        });
    }
    let _ = std::fs::remove_file(&file);
    Ok(())
}

// ---------------------------------------------------------------------------
// CHECK

async fn check(ctx: &Ctx) -> Result<(), CniError> {
    let prev = ctx
        .conf
        .prev_result()?
        .ok_or_else(|| CniError::invalid_config("CHECK needs prevResult", "the configuration has none"))?;
    // Our interface in the result and what it should have.
    let index = prev
        .interfaces
        .iter()
        .position(|i| i.name == ctx.env.ifname && i.sandbox.as_deref() == Some(ctx.env.netns.as_str()))
        .ok_or_else(|| {
            CniError::invalid_config(
                format!("prevResult has no interface {} in {}", ctx.env.ifname, ctx.env.netns),
                "CHECK with another plugin's result?",
            )
        })?;
    let iface = &prev.interfaces[index];
    let addrs: Vec<IpNet> =
        prev.ips.iter().filter(|ip| ip.interface.is_none_or(|i| i as usize == index)).map(|ip| ip.address).collect();
    match ctx.pc.kind {
        Kind::Tap | Kind::Memif => {
            let mut vs = Vswitch::connect(&ctx.pc.api_socket).await?;
            let state = vs.get(vsw::REQUEST_TIMEOUT).await?;
            let name = ctx.vswitch_ifname();
            let owner = ctx.owner();
            match state.interfaces.iter().find(|i| i.name == name) {
                None => {
                    return Err(CniError::plugin(
                        NOT_ATTACHED,
                        format!("vswitch has no interface {name} for this attachment"),
                        format!("owner {owner}"),
                    ))
                }
                Some(i) if i.owner.as_deref() != Some(owner.as_str()) => {
                    return Err(CniError::plugin(
                        NOT_ATTACHED,
                        format!("vswitch interface {name} belongs to someone else"),
                        format!("owner {:?}, expected {owner:?}", i.owner),
                    ))
                }
                Some(i) => {
                    let net = ctx.network(&state.networks)?;
                    let on_net = match (&i.mode, net.bridge_domain, net.vrf) {
                        (Mode::Bridge(b), Some(bd), _) => b.domain == bd,
                        (Mode::L3(l), None, vrf) => l.vrf == vrf.unwrap_or(0),
                        _ => false,
                    };
                    if !on_net {
                        return Err(CniError::plugin(
                            NOT_ATTACHED,
                            format!("vswitch interface {name} is not on network {}", net.name),
                            format!("its mode is {:?}", i.mode),
                        ));
                    }
                }
            }
            if ctx.pc.kind == Kind::Tap {
                let mac = iface.mac.as_deref().and_then(naming::parse_mac);
                let routes = pod_routes(&prev);
                let ifname = ctx.env.ifname.clone();
                pod::in_netns(Path::new(&ctx.env.netns), move |h| pod::check(h, ifname, mac, addrs, routes))?;
            } else {
                let sock = ctx.memif_socket()?;
                if !sock.exists() {
                    return Err(CniError::plugin(
                        NOT_ATTACHED,
                        format!("memif socket {} is missing", sock.display()),
                        "",
                    ));
                }
            }
        }
        Kind::Sriov => {
            if ctx.pc.sriov.mode == SriovMode::Kernel {
                let ifname = ctx.env.ifname.clone();
                let routes = pod_routes(&prev);
                pod::in_netns(Path::new(&ctx.env.netns), move |h| pod::check(h, ifname, None, addrs, routes))?;
            }
        }
    }
    ctx.ipam(Command::Check)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// GC, STATUS

async fn gc(ctx: &Ctx) -> Result<(), CniError> {
    let valid =
        ctx.conf.valid_attachments.clone().ok_or_else(|| {
            CniError::invalid_config("GC needs cni.dev/valid-attachments", "the configuration has none")
        })?;
    let mut failures = Vec::new();
    if ctx.pc.kind != Kind::Sriov {
        let mut vs = Vswitch::connect(&ctx.pc.api_socket).await?;
        let state = vs.get(vsw::REQUEST_TIMEOUT).await?;
        for i in &state.interfaces {
            let Some(owner) = i.owner.as_deref() else { continue };
            let Some((att, network)) = naming::parse_owner(owner) else { continue };
            if network != ctx.conf.name || valid.contains(&att) {
                continue;
            }
            // One Patch per stale owner: by owner, never by name.
            if let Err(e) = vs.patch(String::new(), Some(owner.to_string()), Vec::new()).await {
                failures.push(format!("{} ({owner}): {e}", i.name));
                continue;
            }
            if let Some(m) = &i.memif {
                memif::cleanup(Path::new(&m.socket));
            }
        }
    }
    ctx.ipam(Command::Gc)?;
    if !failures.is_empty() {
        return Err(CniError::plugin(104, "GC could not remove every stale attachment", failures.join("; ")));
    }
    Ok(())
}

async fn status(ctx: &Ctx) -> Result<(), CniError> {
    if ctx.pc.kind != Kind::Sriov {
        let not_available = |e: CniError| {
            CniError::plugin_not_available(format!("{} (is the vswitch daemon running?)", e.msg), e.details)
        };
        let mut vs =
            Vswitch::connect_within(&ctx.pc.api_socket, Duration::from_secs(1)).await.map_err(not_available)?;
        let networks = vs.networks(Duration::from_secs(2)).await.map_err(not_available)?;
        ctx.network(&networks).map_err(|e| CniError::plugin_not_available(e.msg, e.details))?;
    }
    ctx.ipam(Command::Status)?;
    Ok(())
}
