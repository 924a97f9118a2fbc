//! CNI specification versions, version selection and the `VERSION` response.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::CniError;

/// A CNI specification version (`major.minor.patch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const V0_1_0: Version = Version::new(0, 1, 0);
    pub const V0_2_0: Version = Version::new(0, 2, 0);
    pub const V0_3_0: Version = Version::new(0, 3, 0);
    pub const V0_3_1: Version = Version::new(0, 3, 1);
    pub const V0_4_0: Version = Version::new(0, 4, 0);
    pub const V1_0_0: Version = Version::new(1, 0, 0);
    pub const V1_1_0: Version = Version::new(1, 1, 0);

    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version { major, minor, patch }
    }

    /// `CHECK` exists from 0.4.0 on.
    pub fn has_check(self) -> bool {
        self >= Version::V0_4_0
    }

    /// `GC` and `STATUS` exist from 1.1.0 on.
    pub fn has_gc_and_status(self) -> bool {
        self >= Version::V1_1_0
    }

    /// Results of 0.3.x and 0.4.0 carry a `version` ("4"/"6") on every IP;
    /// 1.x results do not.
    pub fn ips_have_version(self) -> bool {
        self < Version::V1_0_0
    }

    /// The rich result format (interfaces, ips, routes, dns) exists from 0.3.0 on;
    /// 0.1.0/0.2.0 results (`ip4`/`ip6`) are not supported by this crate.
    pub fn has_rich_result(self) -> bool {
        self >= Version::V0_3_0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for Version {
    type Err = CniError;

    /// Parses `MAJOR.MINOR.PATCH` (semantic version without pre-release or
    /// build metadata, which CNI never uses).
    fn from_str(s: &str) -> Result<Self, CniError> {
        let bad = || CniError::decode("invalid CNI version", format!("{s:?} is not MAJOR.MINOR.PATCH"));
        let mut parts = s.split('.');
        let mut next = || -> Result<u32, CniError> {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || (p.len() > 1 && p.starts_with('0')) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        let v = Version::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|e: CniError| serde::de::Error::custom(e.to_string()))
    }
}

/// The version of the specification these types implement.
pub const SPEC_VERSION: Version = Version::V1_1_0;

/// Versions whose configuration and results these types read and write.
pub const SUPPORTED_VERSIONS: &[Version] =
    &[Version::V0_3_0, Version::V0_3_1, Version::V0_4_0, Version::V1_0_0, Version::V1_1_0];

/// Picks the version to speak for a configuration, as runtimes do: the highest
/// of `cniVersion` and `cniVersions` that is also in `supported`. Versions in
/// the configuration that do not parse are skipped. `None` when there is no
/// common version.
pub fn select_version(cni_version: &str, cni_versions: &[String], supported: &[Version]) -> Option<Version> {
    std::iter::once(cni_version)
        .chain(cni_versions.iter().map(String::as_str))
        .filter_map(|s| s.parse::<Version>().ok())
        .filter(|v| supported.contains(v))
        .max()
}

/// Checks that a request's `cniVersion` is one a plugin supports; error 1
/// (incompatible CNI version) otherwise.
pub fn check_supported(cni_version: &str, supported: &[Version]) -> Result<Version, CniError> {
    let v: Version = cni_version.parse()?;
    if supported.contains(&v) {
        Ok(v)
    } else {
        let list: Vec<String> = supported.iter().map(ToString::to_string).collect();
        Err(CniError::incompatible_version(format!(
            "config version {v} is not supported; supported versions: {}",
            list.join(", ")
        )))
    }
}

/// The `VERSION` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionResult {
    /// The `cniVersion` given on input (the spec's version when none was given).
    pub cni_version: String,
    pub supported_versions: Vec<String>,
}

impl VersionResult {
    /// The response to a `VERSION` request whose stdin carried `cni_version`
    /// (pass `None` when stdin was empty or had none).
    pub fn new(cni_version: Option<&str>, supported: &[Version]) -> Self {
        VersionResult {
            cni_version: cni_version.map_or_else(|| SPEC_VERSION.to_string(), str::to_string),
            supported_versions: supported.iter().map(ToString::to_string).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_order() {
        assert_eq!("1.1.0".parse::<Version>().unwrap(), Version::V1_1_0);
        assert_eq!("0.3.1".parse::<Version>().unwrap().to_string(), "0.3.1");
        for bad in ["", "1", "1.0", "1.0.0.0", "a.b.c", "01.0.0", "1.0.-1", "1.0.0-rc1"] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
        assert!(Version::V0_3_1 < Version::V0_4_0 && Version::V0_4_0 < Version::V1_0_0);
        assert!(Version::V0_4_0.has_check() && !Version::V0_3_1.has_check());
        assert!(Version::V1_1_0.has_gc_and_status() && !Version::V1_0_0.has_gc_and_status());
        assert!(Version::V0_4_0.ips_have_version() && !Version::V1_0_0.ips_have_version());
    }

    #[test]
    fn selection_picks_highest_common() {
        let conf = vec!["0.3.1".to_string(), "1.0.0".to_string(), "9.9.9".to_string(), "junk".to_string()];
        assert_eq!(select_version("0.4.0", &conf, SUPPORTED_VERSIONS), Some(Version::V1_0_0));
        assert_eq!(select_version("0.2.0", &[], SUPPORTED_VERSIONS), None);
        assert_eq!(select_version("1.1.0", &[], &[Version::V1_0_0]), None);
    }

    #[test]
    fn check_supported_is_error_1() {
        assert_eq!(check_supported("1.1.0", SUPPORTED_VERSIONS).unwrap(), Version::V1_1_0);
        let e = check_supported("0.2.0", SUPPORTED_VERSIONS).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e.details.contains("0.2.0"), "{e}");
        assert_eq!(check_supported("x", SUPPORTED_VERSIONS).unwrap_err().code, 6);
    }

    #[test]
    fn version_result_json() {
        let r = VersionResult::new(Some("1.0.0"), SUPPORTED_VERSIONS);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
        );
        assert_eq!(VersionResult::new(None, SUPPORTED_VERSIONS).cni_version, "1.1.0");
    }
}
