//! The pod side, with netlink: inside the pod's network namespace, set the
//! interface's MAC, MTU, addresses, routes and neighbors; check them; move
//! SR-IOV VFs in and out.
//!
//! A netlink socket talks to the namespace it was created in, and `setns`
//! changes only the calling thread's namespace: each operation runs on a
//! dedicated thread that enters the namespace, creates its socket there and
//! drives it with a current-thread tokio runtime.

use std::future::Future;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::stream::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use vswitch_cni_types::CniError;

/// Plugin-specific error: the pod side could not be configured or checked.
pub const POD_SIDE_FAILED: u32 = 101;

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;

/// Errors of the pod side (code 101 unless said otherwise).
pub fn pod_err(msg: impl Into<String>, details: impl std::fmt::Display) -> CniError {
    CniError::plugin(POD_SIDE_FAILED, msg, details.to_string())
}

fn nl_code(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// Runs `f` with a netlink handle inside the network namespace at `netns`
/// (on its own thread). Error 3 when the namespace does not exist.
pub fn in_netns<T, F, Fut>(netns: &Path, f: F) -> Result<T, CniError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, CniError>>,
{
    let file = std::fs::File::open(netns)
        .map_err(|e| CniError::unknown_container(format!("cannot open network namespace {}: {e}", netns.display())))?;
    let shown = netns.display().to_string();
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| CniError::unknown_container(format!("cannot enter network namespace {shown}: {e}")))?;
        on_this_thread(f)
    })
    .join()
    .map_err(|_| pod_err("the network namespace thread panicked", ""))?
}

/// Runs `f` with a netlink handle in the process's (host) namespace, on its
/// own thread (callable from async code: it has its own runtime).
pub fn in_host<T, F, Fut>(f: F) -> Result<T, CniError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, CniError>>,
{
    std::thread::spawn(move || on_this_thread(f)).join().map_err(|_| pod_err("the netlink thread panicked", ""))?
}

fn on_this_thread<T, F, Fut>(f: F) -> Result<T, CniError>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T, CniError>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CniError::io("cannot start the async runtime", e.to_string()))?;
    rt.block_on(async move {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| CniError::io("cannot open a netlink socket", e.to_string()))?;
        tokio::spawn(conn);
        f(handle).await
    })
}

/// A link as the result reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodLink {
    pub index: u32,
    pub mac: [u8; 6],
    pub mtu: u32,
}

fn link_info(m: &LinkMessage) -> PodLink {
    let mut l = PodLink { index: m.header.index, mac: [0; 6], mtu: 0 };
    for a in &m.attributes {
        match a {
            LinkAttribute::Address(b) if b.len() == 6 => l.mac.copy_from_slice(b),
            LinkAttribute::Mtu(n) => l.mtu = *n,
            _ => {}
        }
    }
    l
}

/// The link named `name`, `None` when there is none.
pub async fn link_by_name(h: &Handle, name: &str) -> Result<Option<LinkMessage>, CniError> {
    match h.link().get().match_name(name).execute().try_next().await {
        Ok(m) => Ok(m),
        Err(e) if nl_code(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(pod_err(format!("cannot read link {name}"), e)),
    }
}

/// Waits up to `wait` for the link `name` to appear.
async fn wait_link(h: &Handle, name: &str, wait: Duration) -> Result<LinkMessage, CniError> {
    let end = Instant::now() + wait;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(m) = link_by_name(h, name).await? {
            return Ok(m);
        }
        if Instant::now() >= end {
            return Err(pod_err(format!("interface {name} did not appear in the pod"), format!("waited {wait:?}")));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// What to configure on the pod's interface.
#[derive(Clone, Debug, Default)]
pub struct PodSetup {
    pub ifname: String,
    /// How long the interface may take to appear (vswitch creates taps).
    pub wait: Duration,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub addrs: Vec<IpNet>,
    /// Destinations and gateways (a gateway already filled in from the
    /// address of its family where the route had none).
    pub routes: Vec<(IpNet, Option<IpAddr>)>,
    /// Permanent neighbor entries (an L3 network's gateway → vswitch's MAC).
    pub neighbors: Vec<(IpAddr, [u8; 6])>,
}

/// Configures the pod side (idempotent: everything is set or replaced).
pub async fn configure(h: Handle, s: PodSetup) -> Result<PodLink, CniError> {
    let link = wait_link(&h, &s.ifname, s.wait).await?;
    let cur = link_info(&link);
    let idx = cur.index;
    let name = &s.ifname;
    if let Some(mac) = s.mac.filter(|m| *m != cur.mac) {
        let msg = LinkUnspec::new_with_index(idx).address(mac.to_vec()).build();
        if let Err(e) = h.link().set(msg).execute().await {
            // Devices without live MAC change want it down first.
            h.link()
                .set(LinkUnspec::new_with_index(idx).down().build())
                .execute()
                .await
                .map_err(|e| pod_err(format!("cannot set {name} down"), e))?;
            h.link()
                .set(LinkUnspec::new_with_index(idx).address(mac.to_vec()).build())
                .execute()
                .await
                .map_err(|e2| pod_err(format!("cannot set the MAC of {name}"), format!("{e}; then {e2}")))?;
        }
    }
    let mut up = LinkUnspec::new_with_index(idx).up();
    if let Some(mtu) = s.mtu.filter(|m| *m != cur.mtu) {
        up = up.mtu(mtu);
    }
    h.link().set(up.build()).execute().await.map_err(|e| pod_err(format!("cannot set {name} up (and its MTU)"), e))?;
    for a in &s.addrs {
        let mut req = h.address().add(idx, a.addr(), a.prefix_len()).replace();
        if a.addr().is_ipv6() {
            // No duplicate address detection: the address is usable at once
            // (IPAM already made it unique).
            req.message_mut().attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        req.execute().await.map_err(|e| pod_err(format!("cannot add address {a} to {name}"), e))?;
    }
    for (ip, mac) in &s.neighbors {
        h.neighbours()
            .add(idx, *ip)
            .link_layer_address(mac)
            .replace()
            .execute()
            .await
            .map_err(|e| pod_err(format!("cannot add neighbor {ip} on {name}"), e))?;
    }
    for (dst, gw) in &s.routes {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst.network(), dst.prefix_len())
            .map_err(|e| pod_err(format!("bad route {dst}"), e))?
            .output_interface(idx);
        if let Some(gw) = gw {
            b = b.gateway(*gw).map_err(|e| pod_err(format!("bad gateway {gw} for {dst}"), e))?;
        }
        match h.route().add(b.build()).replace().execute().await {
            Ok(()) => {}
            Err(e) if nl_code(&e) == Some(EEXIST) => {}
            Err(e) => {
                let via = gw.map(|g| format!(" via {g}")).unwrap_or_default();
                return Err(pod_err(format!("cannot add route {dst}{via} on {name}"), e));
            }
        }
    }
    let link = link_by_name(&h, name).await?.ok_or_else(|| pod_err(format!("interface {name} vanished"), ""))?;
    Ok(link_info(&link))
}

/// CHECK: the interface exists with (at least) these addresses and routes.
pub async fn check(
    h: Handle,
    ifname: String,
    mac: Option<[u8; 6]>,
    addrs: Vec<IpNet>,
    routes: Vec<(IpNet, Option<IpAddr>)>,
) -> Result<(), CniError> {
    let link = link_by_name(&h, &ifname)
        .await?
        .ok_or_else(|| pod_err(format!("interface {ifname} missing in the pod"), ""))?;
    let info = link_info(&link);
    if let Some(m) = mac {
        if m != info.mac {
            return Err(pod_err(
                format!("interface {ifname} has MAC {}", crate::naming::format_mac(info.mac)),
                format!("expected {}", crate::naming::format_mac(m)),
            ));
        }
    }
    let have: Vec<IpNet> = h
        .address()
        .get()
        .set_link_index_filter(info.index)
        .execute()
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| pod_err(format!("cannot read the addresses of {ifname}"), e))?
        .into_iter()
        .filter(|m| m.header.index == info.index)
        .filter_map(|m| {
            let plen = m.header.prefix_len;
            m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => IpNet::new(*ip, plen).ok(),
                _ => None,
            })
        })
        .collect();
    for a in &addrs {
        if !have.contains(a) {
            return Err(pod_err(format!("address {a} missing on {ifname}"), format!("it has {have:?}")));
        }
    }
    let mut table = Vec::new();
    for v6 in [false, true] {
        let msg = if v6 {
            RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
        } else {
            RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
        };
        let got: Vec<_> =
            h.route().get(msg).execute().try_collect().await.map_err(|e| pod_err("cannot read the routes", e))?;
        table.extend(got);
    }
    for (dst, gw) in &routes {
        let found = table.iter().any(|r| {
            let mut rdst = None;
            let mut rgw = None;
            let mut oif = None;
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet(v)) => rdst = Some(IpAddr::V4(*v)),
                    RouteAttribute::Destination(RouteAddress::Inet6(v)) => rdst = Some(IpAddr::V6(*v)),
                    RouteAttribute::Gateway(RouteAddress::Inet(v)) => rgw = Some(IpAddr::V4(*v)),
                    RouteAttribute::Gateway(RouteAddress::Inet6(v)) => rgw = Some(IpAddr::V6(*v)),
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            let plen = r.header.destination_prefix_length;
            let rdst = rdst.unwrap_or(if dst.addr().is_ipv4() {
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
            });
            plen == dst.prefix_len() && rdst == dst.network() && oif == Some(info.index) && (gw.is_none() || rgw == *gw)
        });
        if !found {
            let via = gw.map(|g| format!(" via {g}")).unwrap_or_default();
            return Err(pod_err(format!("route {dst}{via} missing on {ifname}"), ""));
        }
    }
    Ok(())
}

/// Moves the link `index` (in the caller's namespace) into the namespace at
/// `netns`, renamed to `ifname` on the way. (Used for SR-IOV VFs; the rename
/// with the move needs a recent kernel; exercised by the tests with a veth
/// end standing in for a VF.)
pub async fn move_link(h: &Handle, index: u32, netns: &Path, ifname: &str) -> Result<(), CniError> {
    let file = std::fs::File::open(netns)
        .map_err(|e| CniError::unknown_container(format!("cannot open network namespace {}: {e}", netns.display())))?;
    h.link()
        .set(LinkUnspec::new_with_index(index).down().build())
        .execute()
        .await
        .map_err(|e| pod_err(format!("cannot set link {index} down"), e))?;
    h.link()
        .set(LinkUnspec::new_with_index(index).setns_by_fd(file.as_raw_fd()).name(ifname.to_string()).build())
        .execute()
        .await
        .map_err(|e| pod_err(format!("cannot move link {index} into {}", netns.display()), e))
}
