//! What Multus makes of this plugin's result: the entries of the pod's
//! `k8s.v1.cni.cncf.io/network-status` annotation, built the way Multus
//! builds them (`CreateNetworkStatus(es)` in
//! network-attachment-definition-client `pkg/utils`): one entry per
//! interface that has a `sandbox` (pod-side interfaces only), named
//! `<namespace>/<NetworkAttachmentDefinition>`, with that interface's name
//! and MAC, the addresses (without prefix length) of the `ips` that point
//! at it, the result's DNS, `default` for the cluster network, and the
//! device-info when there is one. Used by the tests to check that a
//! delegate's result yields a correct annotation.

use serde_json::{json, Value};
use vswitch_cni_types::CniResult;

/// The device-info of an attachment (the Device Information Specification):
/// a PCI device (SR-IOV) or a memif socket.
pub fn device_info(result: &CniResult) -> Option<Value> {
    let i = result.interfaces.iter().find(|i| i.sandbox.is_some())?;
    if let Some(pci) = &i.pci_id {
        return Some(json!({"type": "pci", "version": "1.1.0", "pci": {"pci-address": pci}}));
    }
    if let Some(path) = &i.socket_path {
        // The role is the pod's: vswitch is the memif server (master).
        return Some(json!({"type": "memif", "version": "1.1.0",
            "memif": {"role": "slave", "mode": "ethernet", "path": path}}));
    }
    None
}

/// The network-status entries for `result` of the network `name`
/// (`<namespace>/<nad>`).
pub fn network_status(result: &CniResult, name: &str, default: bool, device_info: Option<Value>) -> Vec<Value> {
    let sandboxed: Vec<usize> =
        result.interfaces.iter().enumerate().filter(|(_, i)| i.sandbox.is_some()).map(|(n, _)| n).collect();
    let mut out = Vec::new();
    for &n in &sandboxed {
        let iface = &result.interfaces[n];
        let ips: Vec<String> = result
            .ips
            .iter()
            .filter(|ip| match ip.interface {
                Some(i) => i as usize == n,
                None => sandboxed.len() == 1,
            })
            .map(|ip| ip.address.addr().to_string())
            .collect();
        let mut e = json!({"name": name, "interface": iface.name, "ips": ips, "default": default});
        if let Some(mac) = &iface.mac {
            e["mac"] = json!(mac);
        }
        if let Some(mtu) = iface.mtu {
            e["mtu"] = json!(mtu);
        }
        e["dns"] = match &result.dns {
            Some(d) => serde_json::to_value(d).expect("dns serializes"),
            None => json!({}),
        };
        if let Some(d) = &device_info {
            e["device-info"] = d.clone();
        }
        out.push(e);
    }
    out
}
