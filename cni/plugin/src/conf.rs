//! The plugin's own keys in the network configuration, beside the standard
//! ones (`cniVersion`, `name`, `type`, `ipam`, `dns`, `runtimeConfig`,
//! `prevResult`, `args`, which [`NetConf`] reads).
//!
//! ```json
//! {
//!   "cniVersion": "1.1.0", "name": "pods", "type": "vswitch-cni",
//!   "network": "pods", "kind": "tap", "mtu": 1450, "apiSocket": "/run/vswitch/api.sock",
//!   "memif": {"socketDir": "/run/vswitch/pods", "ringSize": 1024, "bufferSize": 2048, "queues": 1},
//!   "sriov": {"mode": "kernel", "pf": "ens1f0", "vf": 3, "vlan": 100, "sysfsRoot": "/sys"},
//!   "deviceID": "0000:3b:02.3",
//!   "ipam": {"type": "vswitch-ipam", "subnet": "10.10.0.0/16"}
//! }
//! ```
//!
//! Every key is checked here: an unknown key or a value of the wrong type
//! or out of range is error 7 naming the key, so a typo never goes unnoticed.

use std::path::PathBuf;

use serde_json::{Map, Value};
use vswitch_cni_types::{CniError, NetConf};

/// The vswitch API socket when the configuration names none.
pub const DEFAULT_API_SOCKET: &str = "/run/vswitch/api.sock";
/// Where per-pod memif directories are made by default.
pub const DEFAULT_MEMIF_DIR: &str = "/run/vswitch/pods";

/// What the pod gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A tap device the daemon creates inside the pod: an ordinary netdev.
    Tap,
    /// A memif interface (vswitch is the server); the pod's CNF connects to
    /// the socket in its per-pod directory.
    Memif,
    /// An SR-IOV virtual function, kernel netdev or DPDK (vfio-pci).
    Sriov,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tap => "tap",
            Kind::Memif => "memif",
            Kind::Sriov => "sriov",
        }
    }
}

/// The `memif` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemifConf {
    pub socket_dir: PathBuf,
    pub ring_size: Option<u32>,
    pub buffer_size: Option<u32>,
    pub queues: Option<u16>,
}

impl Default for MemifConf {
    fn default() -> Self {
        MemifConf { socket_dir: PathBuf::from(DEFAULT_MEMIF_DIR), ring_size: None, buffer_size: None, queues: None }
    }
}

/// SR-IOV: the VF is a kernel netdev moved into the pod, or bound to
/// vfio-pci and handed to the pod's DPDK application by PCI address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SriovMode {
    Kernel,
    Dpdk,
}

/// The `sriov` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SriovConf {
    pub mode: SriovMode,
    /// The PF netdev (with `vf`), when the VF is not given by `deviceID`.
    pub pf: Option<String>,
    pub vf: Option<u32>,
    /// VLAN set on the VF through the PF (0: none).
    pub vlan: Option<u16>,
    /// Where sysfs is (tests point it at a fake tree).
    pub sysfs_root: PathBuf,
    /// Where the plugin remembers a kernel VF's original name between ADD and DEL.
    pub state_dir: PathBuf,
}

impl Default for SriovConf {
    fn default() -> Self {
        SriovConf {
            mode: SriovMode::Kernel,
            pf: None,
            vf: None,
            vlan: None,
            sysfs_root: PathBuf::from("/sys"),
            state_dir: PathBuf::from("/var/lib/cni/vswitch-sriov"),
        }
    }
}

/// The plugin's configuration (its own keys, checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginConf {
    /// The vswitch network (`networks[].name` in the vswitch state).
    pub network: String,
    pub kind: Kind,
    pub api_socket: PathBuf,
    pub mtu: Option<u32>,
    pub memif: MemifConf,
    pub sriov: SriovConf,
    /// The VF's PCI address, as device plugins / Multus pass it.
    pub device_id: Option<String>,
}

fn bad(key: &str, why: impl std::fmt::Display) -> CniError {
    CniError::invalid_config(format!("invalid configuration key {key:?}"), why.to_string())
}

fn get_str(key: &str, v: &Value) -> Result<String, CniError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(bad(key, format!("expected a string, got {other}"))),
    }
}

fn get_u32(key: &str, v: &Value, min: u64, max: u64) -> Result<u32, CniError> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n as u32),
        Some(n) => Err(bad(key, format!("{n} is outside {min}..={max}"))),
        None => Err(bad(key, format!("expected an integer, got {v}"))),
    }
}

fn get_path(key: &str, v: &Value) -> Result<PathBuf, CniError> {
    let s = get_str(key, v)?;
    if !s.starts_with('/') {
        return Err(bad(key, format!("{s:?} is not an absolute path")));
    }
    Ok(PathBuf::from(s))
}

fn get_obj<'a>(key: &str, v: &'a Value) -> Result<&'a Map<String, Value>, CniError> {
    v.as_object().ok_or_else(|| bad(key, format!("expected an object, got {v}")))
}

/// vswitch's rule for network names: 1 to 63 of `[A-Za-z0-9._-]`.
pub fn validate_network_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err(format!("{s:?} must be 1 to 63 characters"));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(format!("{s:?} may only contain letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

/// A PCI address `dddd:bb:dd.f` (lower-case hex, as sysfs names devices).
pub fn validate_pci_address(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let hex = |r: std::ops::Range<usize>| b[r].iter().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
    let ok = b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && hex(0..4)
        && hex(5..7)
        && hex(8..10)
        && (b'0'..=b'7').contains(&b[11]);
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not a PCI address (dddd:bb:dd.f)"))
    }
}

impl PluginConf {
    /// Reads and checks the plugin's keys of `conf` (error 7 naming the key).
    pub fn from_netconf(conf: &NetConf) -> Result<PluginConf, CniError> {
        let mut pc = PluginConf {
            network: conf.name.clone(),
            kind: Kind::Tap,
            api_socket: PathBuf::from(DEFAULT_API_SOCKET),
            mtu: None,
            memif: MemifConf::default(),
            sriov: SriovConf::default(),
            device_id: None,
        };
        let mut memif_given = false;
        let mut sriov_given = false;
        for (key, v) in &conf.extra {
            match key.as_str() {
                "network" => pc.network = get_str(key, v)?,
                "kind" => {
                    pc.kind = match get_str(key, v)?.as_str() {
                        "tap" => Kind::Tap,
                        "memif" => Kind::Memif,
                        "sriov" => Kind::Sriov,
                        other => return Err(bad(key, format!("{other:?} is not one of tap, memif, sriov"))),
                    }
                }
                "apiSocket" => pc.api_socket = get_path(key, v)?,
                "mtu" => pc.mtu = Some(get_u32(key, v, 68, 9000)?),
                "deviceID" | "pciBusID" => {
                    let s = get_str(key, v)?;
                    validate_pci_address(&s).map_err(|e| bad(key, e))?;
                    pc.device_id = Some(s);
                }
                "memif" => {
                    memif_given = true;
                    for (k, v) in get_obj(key, v)? {
                        let path = format!("memif.{k}");
                        match k.as_str() {
                            "socketDir" => pc.memif.socket_dir = get_path(&path, v)?,
                            "ringSize" => {
                                let n = get_u32(&path, v, 256, 16384)?;
                                if !n.is_power_of_two() {
                                    return Err(bad(&path, format!("{n} is not a power of two")));
                                }
                                pc.memif.ring_size = Some(n);
                            }
                            "bufferSize" => pc.memif.buffer_size = Some(get_u32(&path, v, 128, 65535)?),
                            "queues" => pc.memif.queues = Some(get_u32(&path, v, 1, 8)? as u16),
                            _ => return Err(unknown(&path)),
                        }
                    }
                }
                "sriov" => {
                    sriov_given = true;
                    for (k, v) in get_obj(key, v)? {
                        let path = format!("sriov.{k}");
                        match k.as_str() {
                            "mode" => {
                                pc.sriov.mode = match get_str(&path, v)?.as_str() {
                                    "kernel" => SriovMode::Kernel,
                                    "dpdk" => SriovMode::Dpdk,
                                    other => return Err(bad(&path, format!("{other:?} is not one of kernel, dpdk"))),
                                }
                            }
                            "pf" => {
                                let s = get_str(&path, v)?;
                                vswitch_cni_types::env::validate_ifname(&s).map_err(|e| bad(&path, e))?;
                                pc.sriov.pf = Some(s);
                            }
                            "vf" => pc.sriov.vf = Some(get_u32(&path, v, 0, 4095)?),
                            "vlan" => pc.sriov.vlan = Some(get_u32(&path, v, 0, 4094)? as u16),
                            "sysfsRoot" => pc.sriov.sysfs_root = get_path(&path, v)?,
                            "stateDir" => pc.sriov.state_dir = get_path(&path, v)?,
                            _ => return Err(unknown(&path)),
                        }
                    }
                }
                _ => return Err(unknown(key)),
            }
        }
        validate_network_name(&pc.network).map_err(|e| bad("network", e))?;
        match pc.kind {
            Kind::Tap | Kind::Memif if sriov_given => {
                return Err(bad("sriov", format!("only for kind sriov (kind is {})", pc.kind.as_str())))
            }
            Kind::Tap | Kind::Sriov if memif_given => {
                return Err(bad("memif", format!("only for kind memif (kind is {})", pc.kind.as_str())))
            }
            Kind::Sriov if pc.device_id.is_none() && (pc.sriov.pf.is_none() || pc.sriov.vf.is_none()) => {
                return Err(bad("sriov", "the VF is not named: give deviceID, or sriov.pf and sriov.vf"));
            }
            _ => {}
        }
        Ok(pc)
    }
}

fn unknown(key: &str) -> CniError {
    CniError::invalid_config(
        format!("unknown configuration key {key:?}"),
        "vswitch-cni keys: network, kind, apiSocket, mtu, memif {socketDir, ringSize, bufferSize, queues}, \
         sriov {mode, pf, vf, vlan, sysfsRoot, stateDir}, deviceID",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conf(extra: Value) -> Result<PluginConf, CniError> {
        let mut v = json!({"cniVersion": "1.1.0", "name": "pods", "type": "vswitch-cni"});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        PluginConf::from_netconf(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn defaults() {
        let c = conf(json!({})).unwrap();
        assert_eq!(c.network, "pods");
        assert_eq!(c.kind, Kind::Tap);
        assert_eq!(c.api_socket, PathBuf::from(DEFAULT_API_SOCKET));
        assert_eq!(c.memif.socket_dir, PathBuf::from(DEFAULT_MEMIF_DIR));
        assert_eq!(c.mtu, None);
    }

    #[test]
    fn full() {
        let c = conf(json!({"network": "blue", "kind": "memif", "apiSocket": "/tmp/x.sock", "mtu": 9000,
            "memif": {"socketDir": "/run/p", "ringSize": 2048, "bufferSize": 4096, "queues": 2}}))
        .unwrap();
        assert_eq!(c.network, "blue");
        assert_eq!(c.kind, Kind::Memif);
        assert_eq!(
            c.memif,
            MemifConf { socket_dir: "/run/p".into(), ring_size: Some(2048), buffer_size: Some(4096), queues: Some(2) }
        );
        let s = conf(json!({"kind": "sriov", "deviceID": "0000:3b:02.3",
            "sriov": {"mode": "dpdk", "vlan": 100, "sysfsRoot": "/tmp/sys"}}))
        .unwrap();
        assert_eq!(s.device_id.as_deref(), Some("0000:3b:02.3"));
        assert_eq!(s.sriov.mode, SriovMode::Dpdk);
        assert_eq!(s.sriov.vlan, Some(100));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (json!({"netwrok": "x"}), "netwrok"),
            (json!({"kind": "veth"}), "kind"),
            (json!({"kind": 3}), "kind"),
            (json!({"mtu": "1500"}), "mtu"),
            (json!({"mtu": 10}), "mtu"),
            (json!({"apiSocket": "relative.sock"}), "apiSocket"),
            (json!({"network": "bad name"}), "network"),
            (json!({"kind": "memif", "memif": {"ringSize": 1000}}), "memif.ringSize"),
            (json!({"kind": "memif", "memif": {"socketdir": "/x"}}), "memif.socketdir"),
            (json!({"kind": "memif", "memif": []}), "memif"),
            (json!({"memif": {}}), "memif"),
            (json!({"kind": "sriov"}), "sriov"),
            (json!({"kind": "sriov", "deviceID": "3b:02.3"}), "deviceID"),
            (json!({"kind": "sriov", "deviceID": "0000:3b:02.3", "sriov": {"mode": "vfio"}}), "sriov.mode"),
            (json!({"kind": "sriov", "deviceID": "0000:3b:02.3", "sriov": {"vlan": 5000}}), "sriov.vlan"),
        ];
        for (extra, key) in cases {
            let e = conf(extra.clone()).unwrap_err();
            assert_eq!(e.code, 7, "{extra}: {e}");
            assert!(e.msg.contains(&format!("{key:?}")), "{extra}: {e}");
        }
    }

    #[test]
    fn pci_addresses() {
        assert!(validate_pci_address("0000:3b:02.3").is_ok());
        for bad in ["0000:3b:02.8", "0000:3B:02.3", "000:3b:02.3", "0000-3b:02.3", ""] {
            assert!(validate_pci_address(bad).is_err(), "{bad}");
        }
    }
}
