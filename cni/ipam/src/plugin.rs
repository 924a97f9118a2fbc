//! The CNI plugin protocol: `CNI_*` environment and configuration on stdin
//! in, result (or error) on stdout and an exit status out.

use std::ffi::OsString;

use vswitch_cni_types::plugin::Request;
use vswitch_cni_types::{CniEnv, CniError, Command, NetConf, Version};

use crate::alloc::{codes, AddRequest, Ipam};
use crate::config::IpamConfig;

pub use vswitch_cni_types::plugin::Output;

/// Runs one plugin invocation. Everything the store needs runs on a
/// current-thread tokio runtime created here.
pub fn run<I, K, V>(vars: I, stdin: &[u8]) -> Output
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<OsString>,
    V: Into<OsString>,
{
    Output::of(dispatch(vars, stdin), stdin, "vswitch-ipam")
}

fn dispatch<I, K, V>(vars: I, stdin: &[u8]) -> Result<Option<String>, CniError>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<OsString>,
    V: Into<OsString>,
{
    let (env, conf, version) = match Request::read(vars, stdin)? {
        Request::Version(answer) => return Ok(Some(answer)),
        Request::Command { env, conf, version } => (env, conf, version),
    };
    let cfg = IpamConfig::from_netconf(&conf).map_err(|e| e.with_version(version))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CniError::io("cannot start the async runtime", e.to_string()))?;
    rt.block_on(execute(&env, &conf, cfg, version)).map_err(|e| e.with_version(version))
}

async fn execute(env: &CniEnv, conf: &NetConf, cfg: IpamConfig, version: Version) -> Result<Option<String>, CniError> {
    let ipam = Ipam::open(cfg).await?;
    let att = env.attachment();
    match env.command {
        Command::Add => {
            // args.cni.ips and the ips capability win over CNI_ARGS IP= (conventions).
            let mut requested = conf.requested_ips();
            if requested.is_empty() {
                requested = env.args.ips();
            }
            let req = AddRequest { attachment: att, pod: env.args.k8s(), requested };
            let alloc = ipam.add(&req).await?;
            Ok(Some(ipam.result(&alloc, version).to_json()?))
        }
        Command::Del => {
            ipam.del(&att).await?;
            Ok(None)
        }
        Command::Check => {
            let prev = conf.prev_result()?;
            ipam.check(&att, prev.as_ref()).await?;
            Ok(None)
        }
        Command::Gc => {
            let valid = conf.valid_attachments.as_ref().ok_or_else(|| {
                CniError::invalid_config("GC request without cni.dev/valid-attachments", "refusing to guess")
            })?;
            let report = ipam.gc(valid).await?;
            if report.errors.is_empty() {
                Ok(None)
            } else {
                Err(CniError::plugin(
                    codes::GC_INCOMPLETE,
                    format!("GC released {} attachments but not everything", report.released.len()),
                    report.errors.join("; "),
                ))
            }
        }
        Command::Status => {
            ipam.status().await?;
            Ok(None)
        }
        Command::Version => unreachable!("answered before the configuration is read"),
    }
}
