//! The desired state's interfaces as one list: ports, their VLAN
//! sub-interfaces and the BVIs of bridge domains, each with its name, the
//! path of its declaration (for error messages) and its effective
//! settings (defaults and inheritance applied). Validation and
//! compilation both read it, so they agree on what an interface is.

use crate::model::{generated_mac, BviSpec, DesiredState, InterfaceSpec, Mode, VlanSpec};
use ipnet::IpNet;
use vswitch_wire::MacAddr;

/// MTU when none is configured.
pub(crate) const DEFAULT_MTU: u32 = 1500;

/// What an interface is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FlatKind<'a> {
    Port(&'a InterfaceSpec),
    /// `parent` indexes the flat list.
    Sub {
        parent: usize,
        /// Index in the parent's `vlans`.
        index: usize,
        vlan: &'a VlanSpec,
    },
    Bvi {
        bd: u16,
        spec: &'a BviSpec,
    },
}

/// How it forwards, BVIs included (they are routed).
#[derive(Clone, Copy, Debug)]
pub(crate) enum FlatMode<'a> {
    Disabled,
    L3 { vrf: u32, addresses: &'a [IpNet], proxy_arp: bool, proxy_nd: bool },
    Bridge { bd: u16, shg: u8 },
    XConnect { peer: &'a str },
}

impl FlatMode<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            FlatMode::Disabled => "disabled",
            FlatMode::L3 { .. } => "l3",
            FlatMode::Bridge { .. } => "bridge",
            FlatMode::XConnect { .. } => "xconnect",
        }
    }

    pub fn vrf(&self) -> Option<u32> {
        match self {
            FlatMode::L3 { vrf, .. } => Some(*vrf),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct FlatIf<'a> {
    pub name: String,
    /// `interfaces[0] (pod-a)`, `interfaces[0] (pod-a).vlans[1] (pod-a.100)`,
    /// `bridge_domains[0].bvi (bvi10)`.
    pub path: String,
    /// Where the mode's fields are: `<path>.l3` (BVI: `<path>`).
    pub mode_path: String,
    pub kind: FlatKind<'a>,
    pub mode: FlatMode<'a>,
    /// Effective settings, possibly out of range before validation.
    pub mac: MacAddr,
    pub mtu: u32,
    pub up: bool,
}

fn flat_mode(mode: &Mode) -> FlatMode<'_> {
    match mode {
        Mode::Disabled => FlatMode::Disabled,
        Mode::L3(l) => {
            FlatMode::L3 { vrf: l.vrf, addresses: &l.addresses, proxy_arp: l.proxy_arp, proxy_nd: l.proxy_nd }
        }
        Mode::Bridge(b) => FlatMode::Bridge { bd: b.domain, shg: b.split_horizon_group },
        Mode::XConnect(x) => FlatMode::XConnect { peer: &x.peer },
    }
}

fn mode_path(path: &str, mode: &Mode) -> String {
    format!("{path}.{}", mode.name())
}

fn annotated(base: String, name: &str) -> String {
    if name.is_empty() {
        base
    } else {
        format!("{base} ({name})")
    }
}

/// Every interface of `state`: each port followed by its VLANs, then the
/// BVIs in domain order.
pub(crate) fn flatten(state: &DesiredState) -> Vec<FlatIf<'_>> {
    let mut out = Vec::new();
    for (i, spec) in state.interfaces.iter().enumerate() {
        let path = annotated(format!("interfaces[{i}]"), &spec.name);
        let parent = out.len();
        let mac = spec.mac.map(MacAddr::from).unwrap_or_else(|| generated_mac(&spec.name));
        let mtu = spec.mtu.unwrap_or(DEFAULT_MTU);
        out.push(FlatIf {
            name: spec.name.clone(),
            mode_path: mode_path(&path, &spec.mode),
            path: path.clone(),
            kind: FlatKind::Port(spec),
            mode: flat_mode(&spec.mode),
            mac,
            mtu,
            up: spec.up,
        });
        for (j, vlan) in spec.vlans.iter().enumerate() {
            let name = vlan.name(&spec.name);
            let vpath = format!("{path}.vlans[{j}] ({name})");
            out.push(FlatIf {
                name,
                mode_path: mode_path(&vpath, &vlan.mode),
                path: vpath,
                kind: FlatKind::Sub { parent, index: j, vlan },
                mode: flat_mode(&vlan.mode),
                mac,
                mtu: vlan.mtu.unwrap_or(mtu),
                up: spec.up && vlan.up,
            });
        }
    }
    for (i, bd) in state.bridge_domains.iter().enumerate() {
        let Some(bvi) = &bd.bvi else { continue };
        let name = bvi.name(bd.id);
        let path = annotated(format!("bridge_domains[{i}].bvi"), &name);
        out.push(FlatIf {
            mac: bvi.mac.map(MacAddr::from).unwrap_or_else(|| generated_mac(&name)),
            name,
            mode_path: path.clone(),
            path,
            kind: FlatKind::Bvi { bd: bd.id, spec: bvi },
            mode: FlatMode::L3 {
                vrf: bvi.vrf,
                addresses: &bvi.addresses,
                proxy_arp: bvi.proxy_arp,
                proxy_nd: bvi.proxy_nd,
            },
            mtu: bvi.mtu.unwrap_or(DEFAULT_MTU),
            up: bvi.up,
        });
    }
    out
}
