//! The host side: the running vswitch, over its gRPC API on a unix socket.
//! `Get` reads the state in force (the network catalogue, the interfaces and
//! their owners); `Patch` adds and removes one attachment's interface,
//! routes and neighbors atomically.

use std::path::Path;
use std::time::Duration;

use tonic::transport::Channel;
use vswitch_api::{pb, VswitchClient};
use vswitch_cni_types::CniError;
use vswitch_control::{DesiredState, NetworkSpec};

/// Plugin-specific error: vswitch refused the change.
pub const VSWITCH_REFUSED: u32 = 100;

/// How long a connection and one request may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Vswitch {
    client: VswitchClient<Channel>,
    socket: String,
}

fn unreachable(socket: &str, why: impl std::fmt::Display) -> CniError {
    CniError::try_again_later(format!("vswitch is not reachable at {socket}"), why.to_string())
}

impl Vswitch {
    /// Connects (error 11 when the daemon does not answer).
    pub async fn connect(socket: &Path) -> Result<Vswitch, CniError> {
        Self::connect_within(socket, CONNECT_TIMEOUT).await
    }

    pub async fn connect_within(socket: &Path, timeout: Duration) -> Result<Vswitch, CniError> {
        let shown = socket.display().to_string();
        let client = match tokio::time::timeout(timeout, vswitch_api::connect(socket)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let mut why = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    why = format!("{why}: {s}");
                    src = s.source();
                }
                return Err(unreachable(&shown, why));
            }
            Err(_) => return Err(unreachable(&shown, format!("no connection within {timeout:?}"))),
        };
        Ok(Vswitch { client, socket: shown })
    }

    async fn get_yaml(&mut self, timeout: Duration) -> Result<String, CniError> {
        match tokio::time::timeout(timeout, self.client.get(pb::GetRequest {})).await {
            Ok(Ok(r)) => Ok(r.into_inner().yaml),
            Ok(Err(status)) => Err(unreachable(&self.socket, format!("Get: {}", status.message()))),
            Err(_) => Err(unreachable(&self.socket, format!("Get: no answer within {timeout:?}"))),
        }
    }

    /// The state in force.
    pub async fn get(&mut self, timeout: Duration) -> Result<DesiredState, CniError> {
        let yaml = self.get_yaml(timeout).await?;
        parse_state(&yaml)
    }

    /// The networks of the state in force. Only the `networks` section is
    /// parsed (the whole state, with every pod's interface, takes
    /// milliseconds to parse on a busy node; ADD needs only this).
    pub async fn networks(&mut self, timeout: Duration) -> Result<Vec<NetworkSpec>, CniError> {
        let yaml = self.get_yaml(timeout).await?;
        match networks_section(&yaml) {
            Some(section) => parse_state(section).map(|s| s.networks),
            None => parse_state(&yaml).map(|s| s.networks),
        }
    }

    /// Applies a patch; vswitch's refusal is error 100 with its report.
    pub async fn patch(
        &mut self,
        yaml: String,
        remove_owner: Option<String>,
        remove_interfaces: Vec<String>,
    ) -> Result<pb::ApplyResponse, CniError> {
        let req = pb::PatchRequest {
            yaml,
            remove_interfaces,
            remove_owner: remove_owner.unwrap_or_default(),
            dry_run: false,
        };
        let resp = match tokio::time::timeout(REQUEST_TIMEOUT, self.client.patch(req)).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => return Err(unreachable(&self.socket, format!("Patch: {}", status.message()))),
            Err(_) => return Err(unreachable(&self.socket, format!("Patch: no answer within {REQUEST_TIMEOUT:?}"))),
        };
        if !resp.ok {
            let mut details: Vec<String> = resp
                .errors
                .iter()
                .map(|e| if e.path.is_empty() { e.message.clone() } else { format!("{}: {}", e.path, e.message) })
                .collect();
            if details.is_empty() {
                details.push(if resp.error.is_empty() { resp.report.clone() } else { resp.error.clone() });
            }
            return Err(CniError::plugin(VSWITCH_REFUSED, "vswitch refused the change", details.join("; ")));
        }
        Ok(resp)
    }
}

fn parse_state(yaml: &str) -> Result<DesiredState, CniError> {
    DesiredState::from_yaml(yaml).map_err(|e| {
        CniError::decode("cannot read the state vswitch returned", format!("{e} (is the plugin older than vswitch?)"))
    })
}

/// The top-level `networks:` section of a state document as vswitch writes
/// it (top-level keys at column 0, everything under them indented or a list
/// item): from its key to the next top-level key. `None` when there is no
/// such key (no networks, or another layout: the caller parses it all).
pub fn networks_section(yaml: &str) -> Option<&str> {
    let start = if yaml.starts_with("networks:") { 0 } else { yaml.find("\nnetworks:")? + 1 };
    let rest = &yaml[start..];
    let mut end = rest.len();
    let mut offset = 0;
    for (i, line) in rest.split_inclusive('\n').enumerate() {
        if i > 0 && !line.starts_with([' ', '-', '\n', '#']) {
            end = offset;
            break;
        }
        offset += line.len();
    }
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_section_is_what_a_full_parse_finds() {
        let yaml = "interfaces:\n- name: a\n  type: pg\n  owner: 'networks: x'\nnetworks:\n- name: red\n  vrf: 5\n- name: blue\n  bridge_domain: 10\n  mtu: 1400\nvrfs:\n- id: 5\nbridge_domains:\n- id: 10\n";
        let full = DesiredState::from_yaml(yaml).unwrap().networks;
        let part = parse_state(networks_section(yaml).unwrap()).unwrap().networks;
        assert_eq!(full, part);
        assert_eq!(part.len(), 2);
        assert_eq!(networks_section("vrfs:\n- id: 1\n"), None);
        assert_eq!(networks_section("networks:\n- name: x\n  vrf: 0\n"), Some("networks:\n- name: x\n  vrf: 0\n"));
        // As vswitch writes it.
        let mut st = DesiredState::from_yaml(yaml).unwrap();
        st.networks.push(st.networks[0].clone());
        st.networks[2].name = "last".into();
        let text = st.to_yaml();
        assert_eq!(parse_state(networks_section(&text).unwrap()).unwrap().networks, st.networks);
    }
}
