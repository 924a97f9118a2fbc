//! Network configuration lists (what administrators write) and plugin
//! request configurations (what a plugin reads on stdin), and the derivation
//! of one from the other (spec section 3).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::CniError;
use crate::result::{CniResult, Dns};
use crate::version::{self, Version};

/// The key under which GC requests carry the attachments still valid.
pub const VALID_ATTACHMENTS_KEY: &str = "cni.dev/valid-attachments";

/// An attachment: the `(CNI_CONTAINERID, CNI_IFNAME)` pair.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

impl Attachment {
    pub fn new(container_id: impl Into<String>, ifname: impl Into<String>) -> Self {
        Attachment { container_id: container_id.into(), ifname: ifname.into() }
    }
}

/// The request configuration a plugin receives on stdin: one plugin
/// configuration object with `cniVersion` and `name` inserted by the runtime
/// (and `runtimeConfig`, `prevResult`, `cni.dev/valid-attachments` where the
/// operation has them). Keys this type does not know are kept in `extra`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetConf {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    /// Only in configuration lists; kept when present.
    #[serde(rename = "cniVersions", default, skip_serializing_if = "Vec::is_empty")]
    pub cni_versions: Vec<String>,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    /// Only in the configuration list; runtimes do not pass it to plugins.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capabilities: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<IpamSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    #[serde(rename = "runtimeConfig", default, skip_serializing_if = "Option::is_none")]
    pub runtime_config: Option<RuntimeConfig>,
    /// Kept raw: its version is the request's; read it with [`NetConf::prev_result`].
    #[serde(rename = "prevResult", default, skip_serializing_if = "Option::is_none")]
    pub prev_result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Args>,
    /// GC only: the attachments still valid.
    #[serde(rename = "cni.dev/valid-attachments", default, skip_serializing_if = "Option::is_none")]
    pub valid_attachments: Option<Vec<Attachment>>,
    #[serde(rename = "disableCheck", default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_check: bool,
    #[serde(rename = "disableGC", default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_gc: bool,
    /// Plugin-specific keys, passed through unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NetConf {
    /// Parses a request configuration (error 6 when it is not valid JSON of this shape).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CniError> {
        serde_json::from_slice(bytes)
            .map_err(|e| CniError::decode("failed to decode network configuration", e.to_string()))
    }

    /// The request's version (error 6 when `cniVersion` is missing or malformed).
    pub fn version(&self) -> Result<Version, CniError> {
        if self.cni_version.is_empty() {
            return Err(CniError::decode("failed to decode network configuration", "cniVersion is missing"));
        }
        self.cni_version.parse()
    }

    /// Checks `name` (error 7), as the spec defines it.
    pub fn validate_name(&self) -> Result<(), CniError> {
        validate_identifier(&self.name)
            .map_err(|why| CniError::invalid_config("invalid network name", format!("{:?}: {why}", self.name)))
    }

    /// `prevResult`, read in the request's version when it carries none.
    pub fn prev_result(&self) -> Result<Option<CniResult>, CniError> {
        match &self.prev_result {
            None | Some(Value::Null) => Ok(None),
            Some(v) => Ok(Some(CniResult::from_value(v, self.version().ok())?)),
        }
    }

    /// Addresses requested for this attachment by convention: `args.cni.ips`
    /// when present (it takes precedence over `CNI_ARGS` `IP=`, per the
    /// conventions), else the `ips` capability in `runtimeConfig`. Strings as
    /// given (`<ip>[/<prefix>]`).
    pub fn requested_ips(&self) -> Vec<String> {
        if let Some(ips) = self.args.as_ref().and_then(|a| a.cni.as_ref()).map(|c| &c.ips) {
            if !ips.is_empty() {
                return ips.clone();
            }
        }
        self.runtime_config.as_ref().map(|rc| rc.ips.clone()).unwrap_or_default()
    }

    /// The `mac` capability argument, if the runtime passed one.
    pub fn requested_mac(&self) -> Option<&str> {
        self.runtime_config.as_ref()?.mac.as_deref()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("netconf serializes")
    }
}

/// The `ipam` section: `type` plus the IPAM plugin's own keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IpamSection {
    #[serde(rename = "type", default)]
    pub ipam_type: String,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl IpamSection {
    /// Reads the whole section (including `type`) as the plugin's own type.
    pub fn parse_as<T: DeserializeOwned>(&self) -> Result<T, CniError> {
        let v = serde_json::to_value(self).expect("ipam section serializes");
        serde_json::from_value(v).map_err(|e| CniError::invalid_config("invalid ipam configuration", e.to_string()))
    }
}

/// `runtimeConfig`: capability arguments inserted by the runtime.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// The `ips` capability: `<ip>[/<prefix>]` strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    /// The `mac` capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Other capabilities (`portMappings`, `bandwidth`, `deviceID`, ...), raw.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `args`: optional metadata from the runtime; conventions live under `cni`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Args {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<CniConventionArgs>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `args.cni`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CniConventionArgs {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub key: String,
    pub value: String,
}

/// A network configuration list (`.conflist`), as administrators write it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetConfList {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    #[serde(rename = "cniVersions", default, skip_serializing_if = "Vec::is_empty")]
    pub cni_versions: Vec<String>,
    pub name: String,
    #[serde(rename = "disableCheck", default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_check: bool,
    #[serde(rename = "disableGC", default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_gc: bool,
    #[serde(rename = "loadOnlyInlinedPlugins", default, skip_serializing_if = "std::ops::Not::not")]
    pub load_only_inlined_plugins: bool,
    /// Plugin configuration objects, raw: every key is passed through.
    #[serde(default)]
    pub plugins: Vec<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a request configuration is derived for.
#[derive(Clone, Debug)]
pub enum RequestKind<'a> {
    /// ADD, DEL or CHECK: capability arguments offered by the runtime and the previous result.
    Attachment { capability_args: &'a Map<String, Value>, prev_result: Option<&'a CniResult> },
    /// GC: the attachments still valid.
    Gc { valid_attachments: &'a [Attachment] },
    /// STATUS: nothing is added.
    Status,
}

impl NetConfList {
    /// Parses and validates a configuration list (errors 6 and 7).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CniError> {
        let list: NetConfList = serde_json::from_slice(bytes)
            .map_err(|e| CniError::decode("failed to decode network configuration list", e.to_string()))?;
        list.validate()?;
        Ok(list)
    }

    pub fn validate(&self) -> Result<(), CniError> {
        validate_identifier(&self.name)
            .map_err(|why| CniError::invalid_config("invalid network name", format!("{:?}: {why}", self.name)))?;
        if self.plugins.is_empty() {
            return Err(CniError::invalid_config("invalid network configuration list", "no plugins"));
        }
        for (i, p) in self.plugins.iter().enumerate() {
            match p.get("type") {
                Some(Value::String(t)) if !t.is_empty() && !t.contains(['/', '\\']) => {}
                other => {
                    return Err(CniError::invalid_config(
                        "invalid network configuration list",
                        format!("plugin {i}: type {other:?} is not a plugin binary name"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The version a runtime speaks for this list: the highest of
    /// `cniVersion`/`cniVersions` that `supported` has.
    pub fn select_version(&self, supported: &[Version]) -> Option<Version> {
        version::select_version(&self.cni_version, &self.cni_versions, supported)
    }

    /// Derives the request configuration for plugin `index` (spec section 3):
    /// `cniVersion` and `name` inserted; `capabilities` removed; for
    /// attachments `runtimeConfig` holds the capability arguments the plugin
    /// declared and the runtime offered, and `prevResult` is written in
    /// `version`; for GC `cni.dev/valid-attachments` is added.
    pub fn request_config(&self, index: usize, version: Version, kind: RequestKind<'_>) -> Result<NetConf, CniError> {
        let plugin = self.plugins.get(index).ok_or_else(|| {
            CniError::invalid_config("invalid plugin index", format!("{index} of {}", self.plugins.len()))
        })?;
        let mut obj = plugin.clone();
        let caps = obj.remove("capabilities");
        obj.remove("runtimeConfig");
        obj.remove("prevResult");
        obj.retain(|k, _| !k.starts_with("cni.dev/"));
        obj.insert("cniVersion".into(), Value::String(version.to_string()));
        obj.insert("name".into(), Value::String(self.name.clone()));
        match kind {
            RequestKind::Attachment { capability_args, prev_result } => {
                let declared: BTreeMap<String, bool> = match caps {
                    Some(c) => serde_json::from_value(c)
                        .map_err(|e| CniError::invalid_config("invalid capabilities", e.to_string()))?,
                    None => BTreeMap::new(),
                };
                let rc: Map<String, Value> = capability_args
                    .iter()
                    .filter(|(k, _)| declared.get(*k).copied().unwrap_or(false))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !rc.is_empty() {
                    obj.insert("runtimeConfig".into(), Value::Object(rc));
                }
                if let Some(prev) = prev_result {
                    let mut v = prev.to_value(version)?;
                    if let Value::Object(m) = &mut v {
                        m.remove("cniVersion");
                    }
                    obj.insert("prevResult".into(), v);
                }
            }
            RequestKind::Gc { valid_attachments } => {
                obj.insert(VALID_ATTACHMENTS_KEY.into(), serde_json::to_value(valid_attachments).expect("serializes"));
            }
            RequestKind::Status => {}
        }
        serde_json::from_value(Value::Object(obj))
            .map_err(|e| CniError::invalid_config("invalid plugin configuration", e.to_string()))
    }
}

/// Names and container IDs: an alphanumeric first character, then
/// alphanumerics, `_`, `.` or `-`.
pub fn validate_identifier(s: &str) -> Result<(), &'static str> {
    let mut chars = s.chars();
    match chars.next() {
        None => return Err("must not be empty"),
        Some(c) if !c.is_ascii_alphanumeric() => return Err("must start with an alphanumeric character"),
        _ => {}
    }
    if chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        Ok(())
    } else {
        Err("may only contain alphanumerics, '_', '.' and '-'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers() {
        for ok in ["a", "dbnet", "net-1.2_x", "0abc"] {
            assert!(validate_identifier(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "a/b", "a b", "ä"] {
            assert!(validate_identifier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requested_ips_prefer_args() {
        let mut c: NetConf = serde_json::from_value(json!({
            "cniVersion": "1.1.0", "name": "n", "type": "t",
            "runtimeConfig": {"ips": ["10.0.0.5/24"], "mac": "c2:11:22:33:44:55"},
        }))
        .unwrap();
        assert_eq!(c.requested_ips(), vec!["10.0.0.5/24"]);
        assert_eq!(c.requested_mac(), Some("c2:11:22:33:44:55"));
        c.args = Some(Args {
            cni: Some(CniConventionArgs { ips: vec!["10.0.0.6".into()], ..Default::default() }),
            ..Default::default()
        });
        assert_eq!(c.requested_ips(), vec!["10.0.0.6"]);
    }

    #[test]
    fn unknown_keys_survive() {
        let v = json!({"cniVersion": "1.1.0", "name": "n", "type": "t", "bridge": "cni0", "keyA": [1, 2]});
        let c: NetConf = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(c.extra["bridge"], "cni0");
        assert_eq!(serde_json::to_value(&c).unwrap(), v);
    }

    #[test]
    fn list_validation() {
        assert_eq!(NetConfList::from_slice(b"{").unwrap_err().code, 6);
        assert_eq!(NetConfList::from_slice(br#"{"name": "n", "plugins": []}"#).unwrap_err().code, 7);
        assert_eq!(NetConfList::from_slice(br#"{"name": "-n", "plugins": [{"type": "x"}]}"#).unwrap_err().code, 7);
        assert_eq!(NetConfList::from_slice(br#"{"name": "n", "plugins": [{"type": "../x"}]}"#).unwrap_err().code, 7);
        assert!(NetConfList::from_slice(br#"{"name": "n", "plugins": [{"type": "x"}]}"#).is_ok());
    }
}
