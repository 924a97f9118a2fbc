//! The `CNI_*` environment a plugin is run with.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::config::{validate_identifier, Attachment};
use crate::error::CniError;

/// `CNI_COMMAND`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Gc,
    Status,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Gc => "GC",
            Command::Status => "STATUS",
        }
    }

    /// The variables the spec requires for this command (besides `CNI_COMMAND`).
    pub fn required_vars(self) -> &'static [&'static str] {
        match self {
            Command::Add | Command::Check => &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
            Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME"],
            Command::Gc => &["CNI_PATH"],
            Command::Version | Command::Status => &[],
        }
    }

    /// Whether the command concerns one attachment (ADD, DEL, CHECK).
    pub fn is_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Command {
    type Err = CniError;

    fn from_str(s: &str) -> Result<Self, CniError> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            other => {
                return Err(CniError::invalid_env(
                    &["CNI_COMMAND"],
                    format!("unknown command {other:?} (ADD, DEL, CHECK, VERSION, GC or STATUS)"),
                ))
            }
        })
    }
}

/// `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CniArgs(pub Vec<(String, String)>);

/// The Kubernetes keys kubelet/CRI runtimes put into `CNI_ARGS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct K8sArgs {
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
    pub pod_uid: Option<String>,
    pub pod_infra_container_id: Option<String>,
}

impl CniArgs {
    /// Parses `CNI_ARGS` (error 4 on a pair without `=` or with an empty key).
    /// Values may themselves contain `=`.
    pub fn parse(s: &str) -> Result<Self, CniError> {
        let mut out = Vec::new();
        for pair in s.split(';').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
                _ => {
                    return Err(CniError::invalid_env(&["CNI_ARGS"], format!("invalid pair {pair:?} (want KEY=VALUE)")))
                }
            }
        }
        Ok(CniArgs(out))
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `IgnoreUnknown=1|true` (plugins that reject unknown keys must accept them then).
    pub fn ignore_unknown(&self) -> bool {
        matches!(self.get("IgnoreUnknown").map(str::to_ascii_lowercase).as_deref(), Some("1" | "true"))
    }

    /// `K8S_POD_NAME`, `K8S_POD_NAMESPACE`, `K8S_POD_UID`, `K8S_POD_INFRA_CONTAINER_ID`.
    pub fn k8s(&self) -> K8sArgs {
        let get = |k| self.get(k).filter(|v| !v.is_empty()).map(str::to_string);
        K8sArgs {
            pod_name: get("K8S_POD_NAME"),
            pod_namespace: get("K8S_POD_NAMESPACE"),
            pod_uid: get("K8S_POD_UID"),
            pod_infra_container_id: get("K8S_POD_INFRA_CONTAINER_ID"),
        }
    }

    /// `IP=<ip>[/<prefix>][,<ip>[/<prefix>]...]`: requested addresses, as strings.
    pub fn ips(&self) -> Vec<String> {
        self.get("IP")
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    }
}

impl fmt::Display for CniArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// The environment of one plugin invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CniEnv {
    pub command: Command,
    /// Empty where the command has none.
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: CniArgs,
    pub path: Vec<PathBuf>,
}

impl CniEnv {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, CniError> {
        Self::from_vars(std::env::vars_os())
    }

    /// Reads `CNI_*` variables from `vars` and validates them for the command
    /// (error 4 naming every missing or invalid variable).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, CniError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let mut map: HashMap<String, String> = HashMap::new();
        for (k, v) in vars {
            let (k, v) = (k.into(), v.into());
            if let (Some(k), Some(v)) = (k.to_str(), v.to_str()) {
                if k.starts_with("CNI_") {
                    map.insert(k.to_string(), v.to_string());
                }
            }
        }
        let get = |k: &str| map.get(k).cloned().unwrap_or_default();
        let cmd = get("CNI_COMMAND");
        if cmd.is_empty() {
            return Err(CniError::invalid_env(&["CNI_COMMAND"], "CNI_COMMAND is not set"));
        }
        let command: Command = cmd.parse()?;
        let missing: Vec<&str> = command.required_vars().iter().copied().filter(|v| get(v).is_empty()).collect();
        if !missing.is_empty() {
            return Err(CniError::invalid_env(&missing, format!("required for {command}")));
        }
        let env = CniEnv {
            command,
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS"),
            ifname: get("CNI_IFNAME"),
            args: CniArgs::parse(&get("CNI_ARGS"))?,
            path: std::env::split_paths(&get("CNI_PATH")).filter(|p| !p.as_os_str().is_empty()).collect(),
        };
        if command.is_attachment() {
            validate_identifier(&env.container_id)
                .map_err(|why| CniError::invalid_env(&["CNI_CONTAINERID"], format!("{:?}: {why}", env.container_id)))?;
            validate_ifname(&env.ifname)
                .map_err(|why| CniError::invalid_env(&["CNI_IFNAME"], format!("{:?}: {why}", env.ifname)))?;
        }
        Ok(env)
    }

    /// The attachment this invocation is about.
    pub fn attachment(&self) -> Attachment {
        Attachment::new(self.container_id.clone(), self.ifname.clone())
    }

    /// The variables to run a delegated plugin with (what this process was given).
    pub fn to_vars(&self) -> Vec<(String, String)> {
        let mut v = vec![("CNI_COMMAND".to_string(), self.command.as_str().to_string())];
        for (k, val) in
            [("CNI_CONTAINERID", &self.container_id), ("CNI_NETNS", &self.netns), ("CNI_IFNAME", &self.ifname)]
        {
            if !val.is_empty() {
                v.push((k.to_string(), val.clone()));
            }
        }
        if !self.args.0.is_empty() {
            v.push(("CNI_ARGS".to_string(), self.args.to_string()));
        }
        if !self.path.is_empty() {
            let joined = std::env::join_paths(&self.path).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            v.push(("CNI_PATH".to_string(), joined));
        }
        v
    }
}

/// Linux interface names: 1–15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub fn validate_ifname(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > 15 {
        return Err("longer than 15 bytes");
    }
    if s == "." || s == ".." {
        return Err("must not be . or ..");
    }
    if s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err("must not contain '/', ':' or whitespace");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<CniEnv, CniError> {
        CniEnv::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn add_requires_its_variables() {
        let e = env(&[("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "eth0")]).unwrap_err();
        assert_eq!(e.code, 4);
        assert!(e.msg.contains("CNI_CONTAINERID,CNI_NETNS"), "{e}");
        let e = env(&[("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "c1")]).unwrap_err();
        assert!(e.msg.contains("CNI_IFNAME") && !e.msg.contains("NETNS"), "{e}");
        assert_eq!(env(&[]).unwrap_err().code, 4);
        assert_eq!(env(&[("CNI_COMMAND", "FROB")]).unwrap_err().code, 4);
        assert!(env(&[("CNI_COMMAND", "VERSION")]).is_ok());
        assert!(env(&[("CNI_COMMAND", "STATUS")]).is_ok());
        assert_eq!(env(&[("CNI_COMMAND", "GC")]).unwrap_err().code, 4);
        assert!(env(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/opt/cni/bin")]).is_ok());
    }

    #[test]
    fn parses_a_full_add() {
        let e = env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc-123.x_y"),
            ("CNI_NETNS", "/var/run/netns/blue"),
            ("CNI_IFNAME", "eth0"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=u-1;IP=10.0.0.5/24,fd00::5",
            ),
            ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
            ("PATH", "/usr/bin"),
        ])
        .unwrap();
        assert_eq!(e.command, Command::Add);
        assert_eq!(e.attachment(), Attachment::new("abc-123.x_y", "eth0"));
        assert!(e.args.ignore_unknown());
        let k = e.args.k8s();
        assert_eq!(k.pod_name.as_deref(), Some("web-0"));
        assert_eq!(k.pod_namespace.as_deref(), Some("default"));
        assert_eq!(k.pod_uid.as_deref(), Some("u-1"));
        assert_eq!(k.pod_infra_container_id, None);
        assert_eq!(e.args.ips(), vec!["10.0.0.5/24", "fd00::5"]);
        assert_eq!(e.path, vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]);
        let back = CniEnv::from_vars(e.to_vars()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn rejects_bad_ids_and_args() {
        let base = [("CNI_COMMAND", "DEL"), ("CNI_IFNAME", "eth0")];
        let with = |k: &'static str, v: &'static str| {
            let mut p = base.to_vec();
            p.push(("CNI_CONTAINERID", "c1"));
            p.retain(|(kk, _)| *kk != k);
            p.push((k, v));
            env(&p)
        };
        assert!(with("CNI_CONTAINERID", "-bad").unwrap_err().msg.contains("CNI_CONTAINERID"));
        assert!(with("CNI_IFNAME", "a/b").unwrap_err().msg.contains("CNI_IFNAME"));
        assert!(with("CNI_IFNAME", "sixteen-chars-xx").is_err());
        assert!(with("CNI_ARGS", "novalue").unwrap_err().msg.contains("CNI_ARGS"));
        assert_eq!(with("CNI_ARGS", "A=b=c;;B=").unwrap().args.get("A"), Some("b=c"));
    }
}
