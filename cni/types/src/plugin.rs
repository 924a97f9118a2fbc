//! The plugin process's side of the protocol: the configuration read from
//! stdin; the result, VERSION answer or error object printed on stdout;
//! exit status 0 or 1 (spec section 2). Shared by `vswitch-cni` and
//! `vswitch-ipam`.

use crate::version::{Version, SPEC_VERSION};
use crate::CniError;
use std::io::{Read, Write};

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
