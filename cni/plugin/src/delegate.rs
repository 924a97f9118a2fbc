//! Running a delegated plugin (the IPAM plugin) as the spec prescribes:
//! the binary named by `ipam.type` found in `CNI_PATH`, run with this
//! invocation's `CNI_*` environment (the command possibly changed) and the
//! same network configuration on stdin; its result or error object read
//! from stdout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use serde_json::Value;
use vswitch_cni_types::{CniEnv, CniError, Command};

/// Finds `plugin` in `path` (the first directory holding an executable file of that name).
pub fn find_plugin(plugin: &str, path: &[PathBuf]) -> Result<PathBuf, CniError> {
    if plugin.is_empty() || plugin.contains('/') || plugin == "." || plugin == ".." {
        return Err(CniError::invalid_config("invalid ipam plugin type", format!("{plugin:?} is not a plugin name")));
    }
    for dir in path {
        let p = dir.join(plugin);
        if let Ok(m) = std::fs::metadata(&p) {
            use std::os::unix::fs::PermissionsExt;
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(p);
            }
        }
    }
    let dirs: Vec<String> = path.iter().map(|p| p.display().to_string()).collect();
    Err(CniError::invalid_config(
        format!("failed to find plugin {plugin:?} in path"),
        format!("CNI_PATH=[{}]", dirs.join(":")),
    ))
}

/// A delegated plugin started by [`spawn`], running.
pub struct Running {
    child: std::process::Child,
    name: String,
    command: Command,
}

/// Starts `binary` for `command` with `env`'s variables and `stdin`, without
/// waiting for it (the caller does other work meanwhile, then [`Running::wait`]s).
pub fn spawn(binary: &Path, env: &CniEnv, command: Command, stdin: &[u8]) -> Result<Running, CniError> {
    let mut e = env.clone();
    e.command = command;
    let mut cmd = Process::new(binary);
    // The runtime's environment minus its CNI_* (replaced by ours).
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CNI_") {
            cmd.env_remove(&k);
        }
    }
    cmd.envs(e.to_vars()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let name = binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut child = cmd.spawn().map_err(|err| CniError::io(format!("cannot run {name}"), err.to_string()))?;
    {
        let mut si = child.stdin.take().expect("piped");
        // A plugin that exits without reading its stdin is not an error here.
        // (A configuration fits the pipe's buffer: this does not block.)
        let _ = si.write_all(stdin);
    }
    Ok(Running { child, name, command })
}

impl Running {
    /// Success: the JSON it printed (`None` when it printed nothing, as DEL
    /// may). Failure: its error object (the message prefixed with its name),
    /// or an I/O error when it printed no error object.
    pub fn wait(self) -> Result<Option<Value>, CniError> {
        let Running { child, name, command } = self;
        let out =
            child.wait_with_output().map_err(|err| CniError::io(format!("cannot run {name}"), err.to_string()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            if text.trim().is_empty() {
                return Ok(None);
            }
            return serde_json::from_str(&text)
                .map(Some)
                .map_err(|err| CniError::decode(format!("{name} {command} printed no JSON"), err.to_string()));
        }
        match serde_json::from_str::<CniError>(&text) {
            Ok(mut err) => {
                err.msg = format!("{name}: {}", err.msg);
                err.cni_version.clear();
                Err(err)
            }
            Err(_) => Err(CniError::io(
                format!("{name} {command} failed ({})", out.status),
                format!("stdout: {}", text.trim()),
            )),
        }
    }
}

/// Runs `binary` for `command` with `env`'s variables and `stdin` and waits for it.
pub fn exec(binary: &Path, env: &CniEnv, command: Command, stdin: &[u8]) -> Result<Option<Value>, CniError> {
    spawn(binary, env, command, stdin)?.wait()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn finds_executables_only() {
        let dir = std::env::temp_dir().join(format!("vswitch-cni-find-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("ipam"), "not executable").unwrap();
        std::fs::write(b.join("ipam"), "#!/bin/sh\necho '{\"cniVersion\":\"1.0.0\"}'\n").unwrap();
        std::fs::set_permissions(b.join("ipam"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_plugin("ipam", &[a.clone(), b.clone()]).unwrap(), b.join("ipam"));
        let e = find_plugin("nope", &[a.clone(), b.clone()]).unwrap_err();
        assert_eq!(e.code, 7);
        assert!(e.msg.contains("nope"), "{e}");
        assert_eq!(find_plugin("../ipam", &[a]).unwrap_err().code, 7);
        // exec: the script's output is read back
        let env = CniEnv::from_vars([("CNI_COMMAND", "VERSION")]).unwrap();
        let v = exec(&b.join("ipam"), &env, Command::Version, b"{}").unwrap().unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        std::fs::write(b.join("fail"), "#!/bin/sh\necho '{\"code\":11,\"msg\":\"busy\"}'\nexit 1\n").unwrap();
        std::fs::set_permissions(b.join("fail"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = exec(&b.join("fail"), &env, Command::Add, b"{}").unwrap_err();
        assert_eq!(e.code, 11);
        assert_eq!(e.msg, "fail: busy");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
