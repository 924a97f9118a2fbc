//! CNI specification 1.1.0 types, shared by the `vswitch-ipam` plugin and the
//! `vswitch-cni` plugin.
//!
//! * [`config`]: request configurations ([`NetConf`]) and configuration lists
//!   ([`NetConfList`]), `runtimeConfig` (`ips`, `mac`), `args`, `prevResult`,
//!   `cni.dev/valid-attachments`, and the derivation of a plugin's request
//!   from a list;
//! * [`result`]: ADD results ([`CniResult`]) read and written in 0.3.0, 0.3.1,
//!   0.4.0, 1.0.0 and 1.1.0;
//! * [`error`]: the error result ([`CniError`]) and the spec's codes;
//! * [`env`]: the `CNI_*` environment ([`CniEnv`]) with `CNI_ARGS` parsing;
//! * [`version`]: versions, version selection, the `VERSION` response.
//!
//! Facts come from the specification (`SPEC.md` and `CONVENTIONS.md` of
//! containernetworking/cni); no code is taken from its Go libraries.

#![forbid(unsafe_code)]

pub mod config;
pub mod env;
pub mod error;
pub mod plugin;
pub mod result;
pub mod version;

pub use config::{Attachment, IpamSection, NetConf, NetConfList, RequestKind, RuntimeConfig, VALID_ATTACHMENTS_KEY};
pub use env::{CniArgs, CniEnv, Command, K8sArgs};
pub use error::{code, CniError};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use version::{Version, VersionResult, SPEC_VERSION, SUPPORTED_VERSIONS};
