//! The CNI error result and its well-known codes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Well-known error codes (0–99 are reserved by the specification; 100 and
/// above are plugin-specific).
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in the network configuration (the message names the key and value).
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist (the runtime need not clean up).
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid or missing environment variables (the message names them).
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure, e.g. reading the configuration from stdin.
    pub const IO_FAILURE: u32 = 5;
    /// Failed to decode content (JSON, versions).
    pub const DECODE_FAILURE: u32 = 6;
    /// Invalid network configuration.
    pub const INVALID_NETCONF: u32 = 7;
    /// A transient condition: the runtime should retry later.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot service ADD requests.
    pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
    /// STATUS: not available, and existing containers may have limited connectivity.
    pub const LIMITED_CONNECTIVITY: u32 = 51;
    /// First plugin-specific code.
    pub const PLUGIN_SPECIFIC: u32 = 100;
}

/// The error result a plugin prints (on stdout, exiting non-zero).
///
/// `cniVersion` is filled in by the plugin with the version of the request
/// (see [`CniError::with_version`]); it is omitted when empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniError {
    #[serde(rename = "cniVersion", default, skip_serializing_if = "String::is_empty")]
    pub cni_version: String,
    pub code: u32,
    pub msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError { cni_version: String::new(), code, msg: msg.into(), details: details.into() }
    }

    /// Sets the `cniVersion` the error is reported in.
    pub fn with_version(mut self, version: impl ToString) -> Self {
        self.cni_version = version.to_string();
        self
    }

    pub fn incompatible_version(details: impl Into<String>) -> Self {
        Self::new(code::INCOMPATIBLE_VERSION, "incompatible CNI version", details)
    }

    /// Error 2; the message names the key and value, as the spec requires.
    pub fn unsupported_field(key: &str, value: impl fmt::Display) -> Self {
        Self::new(code::UNSUPPORTED_FIELD, format!("unsupported field {key:?} = {value}"), "")
    }

    pub fn unknown_container(details: impl Into<String>) -> Self {
        Self::new(code::UNKNOWN_CONTAINER, "container unknown or does not exist", details)
    }

    /// Error 4; `vars` are the names of the invalid or missing variables.
    pub fn invalid_env(vars: &[&str], details: impl Into<String>) -> Self {
        Self::new(code::INVALID_ENV, format!("invalid or missing environment variables [{}]", vars.join(",")), details)
    }

    pub fn io(msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self::new(code::IO_FAILURE, msg, details)
    }

    pub fn decode(msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self::new(code::DECODE_FAILURE, msg, details)
    }

    pub fn invalid_config(msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self::new(code::INVALID_NETCONF, msg, details)
    }

    pub fn try_again_later(msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self::new(code::TRY_AGAIN_LATER, msg, details)
    }

    pub fn plugin_not_available(msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self::new(code::PLUGIN_NOT_AVAILABLE, msg, details)
    }

    pub fn limited_connectivity(msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self::new(code::LIMITED_CONNECTIVITY, msg, details)
    }

    /// A plugin-specific error; `code` must be 100 or more.
    pub fn plugin(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        assert!(code >= code::PLUGIN_SPECIFIC, "plugin-specific CNI error codes start at 100");
        Self::new(code, msg, details)
    }

    /// Whether the code is one of the specification's reserved codes (< 100).
    pub fn is_well_known(&self) -> bool {
        self.code < code::PLUGIN_SPECIFIC
    }

    /// A short description of a well-known code (`None` for codes the spec does not define).
    pub fn describe_code(code: u32) -> Option<&'static str> {
        Some(match code {
            code::INCOMPATIBLE_VERSION => "incompatible CNI version",
            code::UNSUPPORTED_FIELD => "unsupported field in network configuration",
            code::UNKNOWN_CONTAINER => "container unknown or does not exist",
            code::INVALID_ENV => "invalid necessary environment variables",
            code::IO_FAILURE => "I/O failure",
            code::DECODE_FAILURE => "failed to decode content",
            code::INVALID_NETCONF => "invalid network config",
            code::TRY_AGAIN_LATER => "try again later",
            code::PLUGIN_NOT_AVAILABLE => "plugin not available",
            code::LIMITED_CONNECTIVITY => "plugin not available, limited connectivity",
            _ => return None,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("error result serializes")
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.msg)?;
        if !self.details.is_empty() {
            write!(f, "; {}", self.details)?;
        }
        write!(f, " (CNI error {})", self.code)
    }
}

impl std::error::Error for CniError {}

impl From<serde_json::Error> for CniError {
    fn from(e: serde_json::Error) -> Self {
        CniError::decode("failed to decode JSON", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let e = CniError::invalid_config("Invalid Configuration", "Network 192.168.0.0/31 too small to allocate from.")
            .with_version("1.1.0");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"cniVersion": "1.1.0", "code": 7, "msg": "Invalid Configuration",
                "details": "Network 192.168.0.0/31 too small to allocate from."})
        );
        let back: CniError = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        // details and cniVersion are optional
        let short: CniError = serde_json::from_str(r#"{"code": 11, "msg": "busy"}"#).unwrap();
        assert_eq!(short.code, code::TRY_AGAIN_LATER);
        assert_eq!(short.to_json(), r#"{"code":11,"msg":"busy"}"#);
    }

    #[test]
    fn codes() {
        assert_eq!(CniError::incompatible_version("").code, 1);
        assert_eq!(CniError::unsupported_field("foo", "\"bar\"").code, 2);
        assert!(CniError::unsupported_field("foo", "\"bar\"").msg.contains("foo"));
        assert_eq!(CniError::unknown_container("").code, 3);
        let env = CniError::invalid_env(&["CNI_IFNAME", "CNI_NETNS"], "");
        assert_eq!(env.code, 4);
        assert!(env.msg.contains("CNI_IFNAME,CNI_NETNS"));
        assert_eq!(CniError::io("", "").code, 5);
        assert_eq!(CniError::decode("", "").code, 6);
        assert_eq!(CniError::invalid_config("", "").code, 7);
        assert_eq!(CniError::try_again_later("", "").code, 11);
        assert_eq!(CniError::plugin_not_available("", "").code, 50);
        assert_eq!(CniError::limited_connectivity("", "").code, 51);
        assert_eq!(CniError::plugin(100, "x", "").code, 100);
        assert!(!CniError::plugin(100, "x", "").is_well_known());
        assert_eq!(CniError::describe_code(51), Some("plugin not available, limited connectivity"));
        assert_eq!(CniError::describe_code(42), None);
        assert_eq!(CniError::new(7, "m", "d").to_string(), "m; d (CNI error 7)");
    }

    #[test]
    #[should_panic]
    fn plugin_codes_start_at_100() {
        let _ = CniError::plugin(99, "x", "");
    }
}
