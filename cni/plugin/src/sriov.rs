//! SR-IOV attachments.
//!
//! * kernel mode: the VF's netdev (found under
//!   `<sysfs>/bus/pci/devices/<pci>/net/`) gets its MAC and VLAN through the
//!   PF (netlink `IFLA_VFINFO_LIST` on the PF), is moved into the pod's
//!   namespace under `CNI_IFNAME` and configured there like a tap; DEL moves
//!   it back under its original name (remembered in `sriov.stateDir`).
//! * DPDK mode: the VF must be bound to `vfio-pci` (its `driver` link); the
//!   result hands its PCI address to the pod (`pciID`, CNI 1.1.0), and the
//!   VLAN, if any, is set through the PF.
//!
//! There is no SR-IOV hardware where this was written: the resolution of a
//! VF (PCI address, PF, VF index, driver, netdev) and the decisions taken
//! from it are unit-tested over a fake sysfs tree (directories and symlinks
//! in a temporary directory, laid out as the kernel does). The integration
//! test `sriov_over_a_fake_sysfs_tree` runs the binary over such a tree with
//! a veth end standing in for the VF's netdev: the move into the pod (renamed),
//! its configuration, CHECK and the move back on DEL are exercised, as is
//! DPDK mode. Setting a VF's MAC and VLAN through its PF ([`set_vf_mac_vlan`])
//! needs a real PF and is not exercised by any test.

use std::path::{Path, PathBuf};

use netlink_packet_route::link::{LinkAttribute, LinkVfInfo, VfInfo, VfInfoMac, VfInfoVlan};
use rtnetlink::{Handle, LinkUnspec};
use vswitch_cni_types::CniError;

use crate::conf::{PluginConf, SriovMode};

/// Plugin-specific error: the SR-IOV device is missing or not usable as configured.
pub const SRIOV_DEVICE: u32 = 102;

fn dev_err(msg: impl Into<String>, details: impl Into<String>) -> CniError {
    CniError::plugin(SRIOV_DEVICE, msg, details)
}

/// A VF as sysfs describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vf {
    pub pci: String,
    pub pf_pci: String,
    /// The PF's netdev, when it has one.
    pub pf_netdev: Option<String>,
    pub index: u32,
    /// The bound driver (`vfio-pci`, `iavf`, `mlx5_core`, ...), if any.
    pub driver: Option<String>,
    /// The VF's netdev in this namespace, if any.
    pub netdev: Option<String>,
}

fn link_name(p: &Path) -> Option<String> {
    std::fs::read_link(p).ok()?.file_name().map(|n| n.to_string_lossy().into_owned())
}

fn first_entry(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// Resolves the VF named by `deviceID` or by `sriov.pf` + `sriov.vf`.
pub fn resolve(pc: &PluginConf) -> Result<Vf, CniError> {
    let sys = &pc.sriov.sysfs_root;
    let devices = sys.join("bus/pci/devices");
    let pci = match (&pc.device_id, &pc.sriov.pf, pc.sriov.vf) {
        (Some(id), _, _) => id.clone(),
        (None, Some(pf), Some(vf)) => {
            let l = sys.join("class/net").join(pf).join("device").join(format!("virtfn{vf}"));
            link_name(&l)
                .ok_or_else(|| dev_err(format!("PF {pf} has no VF {vf}"), format!("{} is missing", l.display())))?
        }
        _ => return Err(CniError::invalid_config("the VF is not named", "give deviceID, or sriov.pf and sriov.vf")),
    };
    let dev = devices.join(&pci);
    if !dev.exists() {
        return Err(dev_err(format!("no PCI device {pci}"), format!("{} is missing", dev.display())));
    }
    let pf_pci = link_name(&dev.join("physfn"))
        .ok_or_else(|| dev_err(format!("PCI device {pci} is not an SR-IOV VF"), "it has no physfn link"))?;
    let pf_dir = devices.join(&pf_pci);
    let mut index = None;
    for e in std::fs::read_dir(&pf_dir).map_err(|e| dev_err(format!("cannot read PF {pf_pci}"), e.to_string()))? {
        let e = e.map_err(|e| dev_err(format!("cannot read PF {pf_pci}"), e.to_string()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix("virtfn").and_then(|n| n.parse::<u32>().ok()) {
            if link_name(&e.path()).as_deref() == Some(pci.as_str()) {
                index = Some(n);
            }
        }
    }
    let index = index.ok_or_else(|| dev_err(format!("PF {pf_pci} does not list VF {pci}"), "no virtfnN link to it"))?;
    let vf = Vf {
        pf_netdev: first_entry(&pf_dir.join("net")),
        driver: link_name(&dev.join("driver")),
        netdev: first_entry(&dev.join("net")),
        pci,
        pf_pci,
        index,
    };
    if let (Some(want), Some(have)) = (&pc.sriov.pf, &vf.pf_netdev) {
        if want != have {
            return Err(CniError::invalid_config(
                format!("VF {} belongs to PF {have}, not {want}", vf.pci),
                "deviceID and sriov.pf disagree",
            ));
        }
    }
    Ok(vf)
}

/// What to do with a resolved VF in the configured mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Move this netdev into the pod.
    Kernel { netdev: String },
    /// Hand the PCI address to the pod.
    Dpdk { pci: String },
}

/// Checks the VF fits the mode (error 102 saying why not).
pub fn plan(pc: &PluginConf, vf: &Vf) -> Result<Plan, CniError> {
    let vlan = pc.sriov.vlan.unwrap_or(0);
    if vlan != 0 && vf.pf_netdev.is_none() {
        return Err(dev_err(
            format!("cannot set VLAN {vlan} on VF {}", vf.pci),
            format!("its PF {} has no netdev", vf.pf_pci),
        ));
    }
    match pc.sriov.mode {
        SriovMode::Kernel => {
            if vf.driver.as_deref() == Some("vfio-pci") {
                return Err(dev_err(
                    format!("VF {} is bound to vfio-pci and has no netdev", vf.pci),
                    "use sriov.mode dpdk, or bind it to its kernel driver",
                ));
            }
            let netdev = vf.netdev.clone().ok_or_else(|| {
                dev_err(
                    format!("VF {} has no netdev in this namespace", vf.pci),
                    format!("driver {:?}; is it in use by another pod?", vf.driver),
                )
            })?;
            Ok(Plan::Kernel { netdev })
        }
        SriovMode::Dpdk => match vf.driver.as_deref() {
            Some("vfio-pci") => Ok(Plan::Dpdk { pci: vf.pci.clone() }),
            other => Err(dev_err(
                format!("VF {} is not bound to vfio-pci", vf.pci),
                format!("its driver is {}", other.unwrap_or("none")),
            )),
        },
    }
}

/// Sets the VF's MAC and VLAN through its PF. Not covered by tests (needs
/// SR-IOV hardware).
pub async fn set_vf_mac_vlan(
    h: &Handle,
    pf_index: u32,
    vf: u32,
    mac: Option<[u8; 6]>,
    vlan: Option<u16>,
) -> Result<(), CniError> {
    let mut infos = Vec::new();
    if let Some(m) = mac {
        infos.push(VfInfo::Mac(VfInfoMac::new(vf, &m)));
    }
    if let Some(v) = vlan {
        infos.push(VfInfo::Vlan(VfInfoVlan::new(vf, v as u32, 0)));
    }
    if infos.is_empty() {
        return Ok(());
    }
    let msg = LinkUnspec::new_with_index(pf_index)
        .append_extra_attribute(LinkAttribute::VfInfoList(vec![LinkVfInfo(infos)]))
        .build();
    h.link()
        .set(msg)
        .execute()
        .await
        .map_err(|e| dev_err(format!("cannot set MAC/VLAN of VF {vf} through its PF"), e.to_string()))
}

/// Where a kernel VF's original name is kept between ADD and DEL.
pub fn state_file(pc: &PluginConf, container_id: &str, ifname: &str) -> PathBuf {
    pc.sriov.state_dir.join(format!("{container_id}-{ifname}.json"))
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fake sysfs tree: a PF with VFs, as the kernel lays them out.

    use std::os::unix::fs::symlink;
    use std::path::{Path, PathBuf};

    pub struct FakeSys(pub PathBuf);

    impl FakeSys {
        pub fn new(tag: &str) -> FakeSys {
            let root = std::env::temp_dir().join(format!("vswitch-cni-sysfs-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            for d in [
                "devices/pci0000:00",
                "bus/pci/devices",
                "bus/pci/drivers/vfio-pci",
                "bus/pci/drivers/iavf",
                "class/net",
            ] {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
            FakeSys(root)
        }

        fn dev(&self, pci: &str) -> PathBuf {
            self.0.join("devices/pci0000:00").join(pci)
        }

        /// A PF `pci` with netdev `name`.
        pub fn pf(&self, pci: &str, name: &str) {
            let d = self.dev(pci);
            std::fs::create_dir_all(d.join("net").join(name)).unwrap();
            symlink(&d, self.0.join("bus/pci/devices").join(pci)).unwrap();
            // class/net/<name> (a link to the netdev's directory in the real tree) has the device link
            let cn = self.0.join("class/net").join(name);
            std::fs::create_dir_all(&cn).unwrap();
            symlink(&d, cn.join("device")).unwrap();
        }

        /// VF number `n` of PF `pf_pci`, at `pci`, bound to `driver`, with `netdev`.
        pub fn vf(&self, pf_pci: &str, n: u32, pci: &str, driver: Option<&str>, netdev: Option<&str>) {
            let d = self.dev(pci);
            std::fs::create_dir_all(&d).unwrap();
            symlink(&d, self.0.join("bus/pci/devices").join(pci)).unwrap();
            symlink(self.dev(pf_pci), d.join("physfn")).unwrap();
            symlink(&d, self.dev(pf_pci).join(format!("virtfn{n}"))).unwrap();
            if let Some(drv) = driver {
                symlink(self.0.join("bus/pci/drivers").join(drv), d.join("driver")).unwrap();
            }
            if let Some(nd) = netdev {
                std::fs::create_dir_all(d.join("net").join(nd)).unwrap();
            }
        }

        pub fn root(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for FakeSys {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeSys;
    use super::*;
    use serde_json::json;

    fn conf(sys: &Path, extra: serde_json::Value) -> PluginConf {
        let mut v = json!({"cniVersion": "1.1.0", "name": "sriov-net", "type": "vswitch-cni", "kind": "sriov"});
        let mut s = extra.as_object().unwrap().clone();
        let mut sriov = s.remove("sriov").unwrap_or(json!({}));
        sriov["sysfsRoot"] = json!(sys);
        s.insert("sriov".into(), sriov);
        v.as_object_mut().unwrap().extend(s);
        PluginConf::from_netconf(&serde_json::from_value(v).unwrap()).unwrap()
    }

    fn tree() -> FakeSys {
        let f = FakeSys::new(&format!("{:?}", std::thread::current().id()).replace(['(', ')'], ""));
        f.pf("0000:3b:00.0", "ens1f0");
        f.vf("0000:3b:00.0", 0, "0000:3b:02.0", Some("iavf"), Some("ens1f0v0"));
        f.vf("0000:3b:00.0", 1, "0000:3b:02.1", Some("vfio-pci"), None);
        f.vf("0000:3b:00.0", 2, "0000:3b:02.2", Some("iavf"), None);
        f
    }

    #[test]
    fn resolves_by_device_id_and_by_pf_vf() {
        let f = tree();
        let by_id = resolve(&conf(f.root(), json!({"deviceID": "0000:3b:02.0"}))).unwrap();
        assert_eq!(
            by_id,
            Vf {
                pci: "0000:3b:02.0".into(),
                pf_pci: "0000:3b:00.0".into(),
                pf_netdev: Some("ens1f0".into()),
                index: 0,
                driver: Some("iavf".into()),
                netdev: Some("ens1f0v0".into()),
            }
        );
        let by_pf = resolve(&conf(f.root(), json!({"sriov": {"pf": "ens1f0", "vf": 1}}))).unwrap();
        assert_eq!(by_pf.pci, "0000:3b:02.1");
        assert_eq!(by_pf.index, 1);
        assert_eq!(by_pf.driver.as_deref(), Some("vfio-pci"));
        assert_eq!(by_pf.netdev, None);
    }

    #[test]
    fn resolution_errors() {
        let f = tree();
        let e = resolve(&conf(f.root(), json!({"deviceID": "0000:3b:09.0"}))).unwrap_err();
        assert_eq!(e.code, SRIOV_DEVICE);
        assert!(e.msg.contains("no PCI device 0000:3b:09.0"), "{e}");
        let e = resolve(&conf(f.root(), json!({"sriov": {"pf": "ens1f0", "vf": 7}}))).unwrap_err();
        assert!(e.msg.contains("PF ens1f0 has no VF 7"), "{e}");
        // the PF itself is not a VF
        let e = resolve(&conf(f.root(), json!({"deviceID": "0000:3b:00.0"}))).unwrap_err();
        assert!(e.msg.contains("not an SR-IOV VF"), "{e}");
        let e = resolve(&conf(f.root(), json!({"deviceID": "0000:3b:02.0", "sriov": {"pf": "ens2f0"}}))).unwrap_err();
        assert_eq!(e.code, 7);
    }

    #[test]
    fn plans_by_mode_and_driver() {
        let f = tree();
        let kernel = conf(f.root(), json!({"deviceID": "0000:3b:02.0", "sriov": {"vlan": 100}}));
        let vf = resolve(&kernel).unwrap();
        assert_eq!(plan(&kernel, &vf).unwrap(), Plan::Kernel { netdev: "ens1f0v0".into() });
        // kernel mode on a vfio-pci VF: refused, saying what to do
        let c = conf(f.root(), json!({"deviceID": "0000:3b:02.1"}));
        let e = plan(&c, &resolve(&c).unwrap()).unwrap_err();
        assert!(e.msg.contains("bound to vfio-pci") && e.details.contains("dpdk"), "{e}");
        // kernel mode, netdev gone (already in another pod)
        let c = conf(f.root(), json!({"deviceID": "0000:3b:02.2"}));
        let e = plan(&c, &resolve(&c).unwrap()).unwrap_err();
        assert!(e.msg.contains("has no netdev"), "{e}");
        // dpdk mode
        let c = conf(f.root(), json!({"deviceID": "0000:3b:02.1", "sriov": {"mode": "dpdk"}}));
        assert_eq!(plan(&c, &resolve(&c).unwrap()).unwrap(), Plan::Dpdk { pci: "0000:3b:02.1".into() });
        let c = conf(f.root(), json!({"deviceID": "0000:3b:02.0", "sriov": {"mode": "dpdk"}}));
        let e = plan(&c, &resolve(&c).unwrap()).unwrap_err();
        assert!(e.msg.contains("not bound to vfio-pci") && e.details.contains("iavf"), "{e}");
    }

    #[test]
    fn vlan_needs_a_pf_netdev() {
        let f = FakeSys::new("nopfdev");
        // a PF without a netdev (e.g. bound to a userspace driver)
        let d = f.root().join("devices/pci0000:00/0000:5e:00.0");
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink(&d, f.root().join("bus/pci/devices/0000:5e:00.0")).unwrap();
        f.vf("0000:5e:00.0", 0, "0000:5e:02.0", Some("vfio-pci"), None);
        let c = conf(f.root(), json!({"deviceID": "0000:5e:02.0", "sriov": {"mode": "dpdk", "vlan": 10}}));
        let vf = resolve(&c).unwrap();
        assert_eq!(vf.pf_netdev, None);
        let e = plan(&c, &vf).unwrap_err();
        assert!(e.msg.contains("VLAN 10"), "{e}");
        let c = conf(f.root(), json!({"deviceID": "0000:5e:02.0", "sriov": {"mode": "dpdk"}}));
        assert!(plan(&c, &resolve(&c).unwrap()).is_ok());
    }
}
