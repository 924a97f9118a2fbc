//! ADD results, version-neutral, read and written in every supported version.
//!
//! [`CniResult`] holds the richest form (1.1.0). [`CniResult::to_value`]
//! writes it in the wire format of a given version and
//! [`CniResult::from_value`] reads any supported version:
//!
//! | version | `ips[].version` | interface fields | route fields |
//! |---|---|---|---|
//! | 0.3.0, 0.3.1, 0.4.0 | `"4"` / `"6"` (required) | name, mac, sandbox | dst, gw |
//! | 1.0.0 | none | name, mac, sandbox | dst, gw |
//! | 1.1.0 | none | + mtu, socketPath, pciID | + mtu, advmss, priority, table, scope |
//!
//! Writing to an older version drops the fields that version does not have.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::CniError;
use crate::version::Version;

/// An interface created by an attachment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// 1.1.0 and later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Path of the network namespace for interfaces inside the container; absent on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// 1.1.0 and later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    /// 1.1.0 and later.
    #[serde(rename = "pciID", default, skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

/// An address assigned by an attachment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpConfig {
    /// Address and prefix length of its subnet (`10.1.0.5/16`).
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`; IPAM plugins leave it out.
    pub interface: Option<u32>,
}

impl IpConfig {
    pub fn new(address: IpNet, gateway: Option<IpAddr>) -> Self {
        IpConfig { address, gateway, interface: None }
    }

    /// `"4"` or `"6"`, as 0.3.x/0.4.0 results write it.
    pub fn version_str(&self) -> &'static str {
        match self.address {
            IpNet::V4(_) => "4",
            IpNet::V6(_) => "6",
        }
    }
}

/// A route created by an attachment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// 1.1.0 and later (as are the fields below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// global (0), link (253), host (254).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u32>,
}

impl Route {
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Self {
        Route { dst, gw, mtu: None, advmss: None, priority: None, table: None, scope: None }
    }

    fn for_version(&self, v: Version) -> Route {
        if v >= Version::V1_1_0 {
            self.clone()
        } else {
            Route::new(self.dst, self.gw)
        }
    }
}

/// DNS settings, in network configurations and in results.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty() && self.domain.is_none() && self.search.is_empty() && self.options.is_empty()
    }
}

/// The ADD result (also `prevResult`), independent of the wire version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CniResult {
    /// The version this result is written in by [`CniResult::to_json`].
    pub cni_version: Version,
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Option<Dns>,
}

// Wire form: every field any supported version has, all optional.
#[derive(Serialize, Deserialize)]
struct WireResult {
    #[serde(rename = "cniVersion", default, skip_serializing_if = "Option::is_none")]
    cni_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ips: Vec<WireIp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dns: Option<Dns>,
}

#[derive(Serialize, Deserialize)]
struct WireIp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interface: Option<u32>,
    address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
}

impl CniResult {
    /// An empty result in `version`.
    pub fn new(version: Version) -> Self {
        CniResult { cni_version: version, interfaces: Vec::new(), ips: Vec::new(), routes: Vec::new(), dns: None }
    }

    /// The same result, to be written in `version`: fields that version does
    /// not have are dropped.
    pub fn convert_to(&self, version: Version) -> Result<CniResult, CniError> {
        check_result_version(version)?;
        let mut r = self.clone();
        r.cni_version = version;
        if version < Version::V1_1_0 {
            for i in &mut r.interfaces {
                i.mtu = None;
                i.socket_path = None;
                i.pci_id = None;
            }
            r.routes = r.routes.iter().map(|rt| rt.for_version(version)).collect();
        }
        Ok(r)
    }

    /// The result in `version`'s wire format.
    pub fn to_value(&self, version: Version) -> Result<Value, CniError> {
        let r = self.convert_to(version)?;
        let wire = WireResult {
            cni_version: Some(version.to_string()),
            interfaces: r.interfaces,
            ips: r
                .ips
                .iter()
                .map(|ip| WireIp {
                    version: version.ips_have_version().then(|| ip.version_str().to_string()),
                    interface: ip.interface,
                    address: ip.address,
                    gateway: ip.gateway,
                })
                .collect(),
            routes: r.routes,
            dns: r.dns.filter(|d| !d.is_empty()),
        };
        Ok(serde_json::to_value(wire).expect("result serializes"))
    }

    /// The result as JSON in its own `cni_version`.
    pub fn to_json(&self) -> Result<String, CniError> {
        Ok(serde_json::to_string(&self.to_value(self.cni_version)?).expect("value serializes"))
    }

    /// Reads a result in any supported version. `default_version` applies when
    /// the object has no `cniVersion` (a `prevResult` usually has none: the
    /// request's `cniVersion` applies).
    pub fn from_value(v: &Value, default_version: Option<Version>) -> Result<CniResult, CniError> {
        let wire: WireResult = serde_json::from_value(v.clone())
            .map_err(|e| CniError::decode("failed to decode CNI result", e.to_string()))?;
        let version = match (&wire.cni_version, default_version) {
            (Some(s), _) => s.parse()?,
            (None, Some(d)) => d,
            (None, None) => return Err(CniError::decode("failed to decode CNI result", "no cniVersion")),
        };
        check_result_version(version)?;
        let mut ips = Vec::with_capacity(wire.ips.len());
        for ip in wire.ips {
            let cfg = IpConfig { address: ip.address, gateway: ip.gateway, interface: ip.interface };
            match (&ip.version, version.ips_have_version()) {
                (Some(v), _) if v != cfg.version_str() => {
                    return Err(CniError::decode(
                        "failed to decode CNI result",
                        format!("ip {} has version {v:?}", cfg.address),
                    ));
                }
                (None, true) => {
                    return Err(CniError::decode(
                        "failed to decode CNI result",
                        format!("ip {} has no version (required in {version})", cfg.address),
                    ));
                }
                _ => {}
            }
            ips.push(cfg);
        }
        // An index can only be checked against a list that is there (IPAM
        // results and some chained results leave `interfaces` out).
        if !wire.interfaces.is_empty() {
            if let Some(bad) = ips.iter().filter_map(|ip| ip.interface).find(|&i| i as usize >= wire.interfaces.len()) {
                return Err(CniError::decode(
                    "failed to decode CNI result",
                    format!("ip interface index {bad} out of range ({} interfaces)", wire.interfaces.len()),
                ));
            }
        }
        Ok(CniResult { cni_version: version, interfaces: wire.interfaces, ips, routes: wire.routes, dns: wire.dns })
    }

    pub fn from_json(s: &str, default_version: Option<Version>) -> Result<CniResult, CniError> {
        let v: Value =
            serde_json::from_str(s).map_err(|e| CniError::decode("failed to decode CNI result", e.to_string()))?;
        Self::from_value(&v, default_version)
    }
}

fn check_result_version(v: Version) -> Result<(), CniError> {
    if v.has_rich_result() && v <= Version::V1_1_0 {
        Ok(())
    } else {
        Err(CniError::incompatible_version(format!("result version {v} is not supported (0.3.0 to 1.1.0 are)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> CniResult {
        CniResult {
            cni_version: Version::V1_1_0,
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: Some("99:88:77:66:55:44".into()),
                mtu: Some(1500),
                sandbox: Some("/var/run/netns/blue".into()),
                socket_path: Some("/run/memif.sock".into()),
                pci_id: Some("0000:00:01.0".into()),
            }],
            ips: vec![
                IpConfig {
                    address: "10.1.0.5/16".parse().unwrap(),
                    gateway: "10.1.0.1".parse().ok(),
                    interface: Some(0),
                },
                IpConfig { address: "fd00::5/64".parse().unwrap(), gateway: None, interface: Some(0) },
            ],
            routes: vec![Route { mtu: Some(1400), table: Some(0), ..Route::new("0.0.0.0/0".parse().unwrap(), None) }],
            dns: Some(Dns { nameservers: vec!["10.1.0.1".into()], ..Dns::default() }),
        }
    }

    #[test]
    fn writes_each_version() {
        let r = sample();
        let v11 = r.to_value(Version::V1_1_0).unwrap();
        assert_eq!(v11["interfaces"][0]["mtu"], 1500);
        assert_eq!(v11["interfaces"][0]["pciID"], "0000:00:01.0");
        assert_eq!(v11["routes"][0]["mtu"], 1400);
        assert_eq!(v11["routes"][0]["table"], 0);
        assert!(v11["ips"][0].get("version").is_none());

        let v10 = r.to_value(Version::V1_0_0).unwrap();
        assert_eq!(v10["cniVersion"], "1.0.0");
        assert!(v10["interfaces"][0].get("mtu").is_none());
        assert!(v10["routes"][0].get("mtu").is_none());
        assert!(v10["ips"][0].get("version").is_none());

        let v04 = r.to_value(Version::V0_4_0).unwrap();
        assert_eq!(v04["ips"][0]["version"], "4");
        assert_eq!(v04["ips"][1]["version"], "6");
        assert_eq!(v04["ips"][1]["interface"], 0);
        assert!(v04["interfaces"][0].get("socketPath").is_none());

        assert!(r.to_value(Version::V0_2_0).is_err());
    }

    #[test]
    fn round_trips_through_every_version() {
        let r = sample();
        for v in crate::version::SUPPORTED_VERSIONS {
            let wire = r.to_value(*v).unwrap();
            let back = CniResult::from_value(&wire, None).unwrap();
            assert_eq!(back, r.convert_to(*v).unwrap(), "{v}");
        }
    }

    #[test]
    fn reading_checks_versions() {
        // 0.4.0 requires ips[].version
        let bad = json!({"cniVersion": "0.4.0", "ips": [{"address": "10.0.0.2/24"}]});
        assert_eq!(CniResult::from_value(&bad, None).unwrap_err().code, 6);
        let wrong = json!({"cniVersion": "0.4.0", "ips": [{"version": "6", "address": "10.0.0.2/24"}]});
        assert_eq!(CniResult::from_value(&wrong, None).unwrap_err().code, 6);
        // prevResult without cniVersion takes the request's
        let prev = json!({"ips": [{"address": "10.0.0.2/24", "gateway": "10.0.0.1"}]});
        let r = CniResult::from_value(&prev, Some(Version::V1_0_0)).unwrap();
        assert_eq!(r.cni_version, Version::V1_0_0);
        assert_eq!(r.ips[0].gateway, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(CniResult::from_value(&prev, None).unwrap_err().code, 6);
        let old = json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/24"}});
        assert_eq!(CniResult::from_value(&old, None).unwrap_err().code, 1);
        let bad_idx = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}],
            "ips": [{"address": "10.0.0.2/24", "interface": 3}]});
        assert_eq!(CniResult::from_value(&bad_idx, None).unwrap_err().code, 6);
        let bad_addr = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.300/24"}]});
        assert_eq!(CniResult::from_value(&bad_addr, None).unwrap_err().code, 6);
    }

    #[test]
    fn empty_dns_and_lists_are_omitted() {
        let mut r = CniResult::new(Version::V1_1_0);
        r.dns = Some(Dns::default());
        assert_eq!(r.to_json().unwrap(), r#"{"cniVersion":"1.1.0"}"#);
    }
}
