//! memif attachments: the control socket lives in a per-pod directory the
//! pod mounts (`<socketDir>/<namespace>_<pod>`, the container id without
//! Kubernetes arguments), one socket per attachment (`memif-<ifname>.sock`),
//! vswitch is the server.

use std::path::{Path, PathBuf};

use vswitch_cni_types::{CniError, K8sArgs};

/// Longest unix socket path (sun_path is 108 bytes with the terminating 0).
pub const MAX_SOCKET_PATH: usize = 107;

fn safe_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

/// The pod's directory under `socket_dir`.
pub fn pod_dir(socket_dir: &Path, k8s: &K8sArgs, container_id: &str) -> Result<PathBuf, CniError> {
    let leaf = match (&k8s.pod_namespace, &k8s.pod_name) {
        (Some(ns), Some(name)) => {
            if !safe_component(ns) || !safe_component(name) {
                return Err(CniError::invalid_env(
                    &["CNI_ARGS"],
                    format!("K8S_POD_NAMESPACE {ns:?} / K8S_POD_NAME {name:?} cannot name a directory"),
                ));
            }
            format!("{ns}_{name}")
        }
        _ => container_id.to_string(),
    };
    Ok(socket_dir.join(leaf))
}

/// The attachment's socket in the pod's directory (error 7 when too long for a unix socket).
pub fn socket_path(pod_dir: &Path, ifname: &str) -> Result<PathBuf, CniError> {
    let p = pod_dir.join(format!("memif-{ifname}.sock"));
    if p.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(CniError::invalid_config(
            "memif socket path too long",
            format!("{} is over {MAX_SOCKET_PATH} bytes: use a shorter memif.socketDir", p.display()),
        ));
    }
    Ok(p)
}

/// Makes the pod's directory (mode 0755).
pub fn prepare(pod_dir: &Path) -> Result<(), CniError> {
    std::fs::create_dir_all(pod_dir)
        .map_err(|e| CniError::io(format!("cannot create {}", pod_dir.display()), e.to_string()))
}

/// Removes the socket file (if vswitch left it) and the directory when empty.
pub fn cleanup(socket: &Path) {
    let _ = std::fs::remove_file(socket);
    if let Some(dir) = socket.parent() {
        // Fails (and is left) while other attachments' sockets are in it.
        let _ = std::fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let k8s =
            K8sArgs { pod_name: Some("web-0".into()), pod_namespace: Some("default".into()), ..Default::default() };
        let d = pod_dir(Path::new("/run/vswitch/pods"), &k8s, "abc").unwrap();
        assert_eq!(d, PathBuf::from("/run/vswitch/pods/default_web-0"));
        assert_eq!(socket_path(&d, "net1").unwrap(), PathBuf::from("/run/vswitch/pods/default_web-0/memif-net1.sock"));
        let d = pod_dir(Path::new("/p"), &K8sArgs::default(), "abc").unwrap();
        assert_eq!(d, PathBuf::from("/p/abc"));
        let bad = K8sArgs { pod_name: Some("..".into()), pod_namespace: Some("x".into()), ..Default::default() };
        assert_eq!(pod_dir(Path::new("/p"), &bad, "abc").unwrap_err().code, 4);
        let long = Path::new("/").join("x".repeat(100));
        assert_eq!(socket_path(&long, "eth0").unwrap_err().code, 7);
    }

    #[test]
    fn cleanup_keeps_a_shared_directory() {
        let dir = std::env::temp_dir().join(format!("vswitch-cni-memif-{}", std::process::id()));
        prepare(&dir).unwrap();
        let (a, b) = (dir.join("memif-a.sock"), dir.join("memif-b.sock"));
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        cleanup(&a);
        assert!(!a.exists() && dir.exists());
        cleanup(&b);
        assert!(!dir.exists());
        cleanup(&b); // again: nothing to do, no error
    }
}
