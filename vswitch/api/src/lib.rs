//! vswitch-api: the node's gRPC API (`proto/vswitch.proto`) over a unix
//! socket.
//!
//! - [`pb`]: the generated messages, the [`Vswitch`] service trait the
//!   daemon implements and the [`VswitchClient`] `vswitchctl` uses.
//! - [`bind`]: the API socket as the daemon wants it: its directory made
//!   if missing, a stale socket file replaced (a live one refused), mode
//!   0600 so only root can talk to the daemon.
//! - [`serve`]: tonic's server over that socket until a shutdown future
//!   resolves.
//! - [`connect`]: a client channel to a socket path.
//!
//! The crate knows nothing of the daemon's internals: it is the wire
//! contract and its transport.

#![forbid(unsafe_code)]

use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::{Channel, Endpoint, Server, Uri};

/// The generated protocol: messages, service trait, client.
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("vswitch.v1");
}

pub use pb::vswitch_client::VswitchClient;
pub use pb::vswitch_server::{Vswitch, VswitchServer};

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/vswitch/api.sock";

/// Binds the API socket at `path` (inside a tokio runtime).
///
/// The parent directory is created (mode 0755) if missing. An existing
/// socket file is replaced when nothing answers on it (a daemon that died
/// without cleaning up) and refused with `AddrInUse` when a daemon does;
/// any other kind of file there is refused with `AlreadyExists`. The
/// socket is created with mode 0600: the API changes the node's
/// networking, so only root may use it.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: create: {e}", dir.display())))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{shown}: another vswitch is serving this socket"),
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{shown}: remove stale socket: {e}")))?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{shown}: exists and is not a socket; not replacing it"),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("{shown}: {e}"))),
    }
    // The socket is born 0600 (no window in which others could connect);
    // the mask is process-wide, so this runs before any other thread
    // creates files.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = listener.map_err(|e| io::Error::new(e.kind(), format!("{shown}: bind: {e}")))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io::Error::new(e.kind(), format!("{shown}: chmod 0600: {e}")))?;
    Ok(listener)
}

/// Serves `service` on `listener` until `shutdown` resolves.
pub async fn serve<S: Vswitch>(
    listener: UnixListener,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .add_service(VswitchServer::new(service))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await
}

/// A client of the daemon listening on the socket at `path`.
pub async fn connect(path: impl AsRef<Path>) -> Result<VswitchClient<Channel>, tonic::transport::Error> {
    let path: PathBuf = path.as_ref().to_path_buf();
    // The URI is required by the HTTP/2 layer and never resolved: every
    // connection goes to the socket.
    let channel = Endpoint::from_static("http://vswitch.sock")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await?;
    Ok(VswitchClient::new(channel))
}
