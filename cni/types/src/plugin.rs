//! The plugin process's side of the protocol: the configuration read from
//! stdin; the result, VERSION answer or error object printed on stdout;
//! exit status 0 or 1 (spec section 2). Shared by `vswitch-cni` and
//! `vswitch-ipam`.

use crate::version::{check_supported, Version, SPEC_VERSION, SUPPORTED_VERSIONS};
use crate::{CniEnv, CniError, Command, NetConf, VersionResult};
use std::ffi::OsString;
use std::io::{Read, Write};

/// An invocation read and checked as every plugin must (spec section 2):
/// the environment valid for its command, VERSION answered, the
/// configuration parsed, its `cniVersion` supported and recent enough for
/// the command (CHECK from 0.4.0, GC and STATUS from 1.1.0).
pub enum Request {
    /// VERSION: the answer to print.
    Version(String),
    /// Any other command, with its configuration and version.
    Command {
        /// The `CNI_*` environment.
        env: CniEnv,
        /// The network configuration from stdin.
        conf: NetConf,
        /// Its `cniVersion`.
        version: Version,
    },
}

impl Request {
    /// Reads `CNI_*` from `vars` and the configuration from `stdin`.
    pub fn read<I, K, V>(vars: I, stdin: &[u8]) -> Result<Request, CniError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let env = CniEnv::from_vars(vars)?;
        if env.command == Command::Version {
            let v = serde_json::from_slice::<serde_json::Value>(stdin).ok();
            let asked = v.as_ref().and_then(|v| v.get("cniVersion")).and_then(|s| s.as_str());
            let r = VersionResult::new(asked, SUPPORTED_VERSIONS);
            return Ok(Request::Version(serde_json::to_string(&r).expect("a version answer serializes")));
        }
        let conf = NetConf::from_slice(stdin)?;
        let version = check_supported(&conf.version()?.to_string(), SUPPORTED_VERSIONS)?;
        let needs = match env.command {
            Command::Check if !version.has_check() => Some(Version::V0_4_0),
            Command::Gc | Command::Status if !version.has_gc_and_status() => Some(Version::V1_1_0),
            _ => None,
        };
        if let Some(min) = needs {
            return Err(CniError::incompatible_version(format!(
                "{} needs cniVersion {min} or later; the configuration has {version}",
                env.command
            ))
            .with_version(version));
        }
        Ok(Request::Command { env, conf, version })
    }
}

/// What a plugin invocation prints and exits with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// A result, a VERSION answer, an error object, or nothing.
    pub stdout: String,
    /// 0, or 1 with an error object on stdout.
    pub exit_code: i32,
}

impl Output {
    /// The answer to one invocation whose configuration was `stdin`. An
    /// error is also said on stderr after `plugin: `, and carries the
    /// request's `cniVersion` when it has none (the spec's own when the
    /// request has no readable one).
    pub fn of(result: Result<Option<String>, CniError>, stdin: &[u8], plugin: &str) -> Output {
        match result {
            Ok(stdout) => Output { stdout: stdout.unwrap_or_default(), exit_code: 0 },
            Err(mut e) => {
                if e.cni_version.is_empty() {
                    e.cni_version = request_version(stdin);
                }
                eprintln!("{plugin}: {e}");
                Output { stdout: e.to_json(), exit_code: 1 }
            }
        }
    }
}

/// The `cniVersion` of a request, for error objects (the spec's own when
/// unreadable or unknown).
pub fn request_version(stdin: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion").and_then(|s| s.as_str()).map(str::to_string))
        .filter(|s| s.parse::<Version>().is_ok())
        .unwrap_or_else(|| SPEC_VERSION.to_string())
}

/// A plugin binary's `main`: reads stdin, answers with `run`, prints the
/// answer and exits with its status.
pub fn main_with(run: impl FnOnce(&[u8]) -> Output) -> ! {
    let mut stdin = Vec::new();
    let out = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => run(&stdin),
        Err(e) => {
            let err =
                CniError::io("cannot read the configuration from stdin", e.to_string()).with_version(SPEC_VERSION);
            Output { stdout: err.to_json(), exit_code: 1 }
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.stdout.as_bytes());
    let _ = stdout.flush();
    std::process::exit(out.exit_code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_request_version() {
        let out = Output::of(Err(CniError::invalid_config("bad", "x")), br#"{"cniVersion":"0.4.0"}"#, "t");
        assert_eq!(out.exit_code, 1);
        assert!(out.stdout.contains(r#""cniVersion":"0.4.0""#), "{}", out.stdout);
        let out = Output::of(Err(CniError::invalid_config("bad", "x")), b"{not json", "t");
        assert!(out.stdout.contains(&format!(r#""cniVersion":"{SPEC_VERSION}""#)), "{}", out.stdout);
        assert_eq!(Output::of(Ok(None), b"", "t"), Output { stdout: String::new(), exit_code: 0 });
    }
}
