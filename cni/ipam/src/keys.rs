//! Key layout and the records stored under the keys.
//!
//! ```text
//! <prefix>/<network>/meta                          {blockV4, blockV6}: checked by every node that claims
//! <prefix>/<network>/blocks/<block-cidr>           {node, generation, claimedAt}: who owns the block
//! <prefix>/<network>/nodeblocks/<node>/<cidr>      "" : index of a node's blocks (written with the block key)
//! <prefix>/<network>/ips/<ip>                      {containerID, ifname, node, pod..., block}: one per address
//! <prefix>/<network>/blockips/<block-cidr>/<ip>    "" : index of a block's addresses (written with the ip key)
//! <prefix>/<network>/attachments/<cid>/<ifname>    {containerID, ifname, node, pod..., ips[]}
//! ```
//!
//! An attachment key and its ip and blockips keys are only ever created
//! together, in one transaction that requires all of them to be absent, and
//! deleted together; a block key and its nodeblocks key likewise.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use vswitch_cni_types::Attachment;

#[derive(Clone, Debug)]
pub struct Keys {
    base: String,
}

impl Keys {
    /// `prefix` without a trailing `/`.
    pub fn new(prefix: &str, network: &str) -> Keys {
        Keys { base: format!("{prefix}/{network}/") }
    }

    /// `<prefix>/<network>/`: every key of the network starts with it.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn meta(&self) -> String {
        format!("{}meta", self.base)
    }

    pub fn blocks_prefix(&self) -> String {
        format!("{}blocks/", self.base)
    }

    pub fn block(&self, block: &IpNet) -> String {
        format!("{}blocks/{block}", self.base)
    }

    pub fn node_blocks_prefix(&self, node: &str) -> String {
        format!("{}nodeblocks/{node}/", self.base)
    }

    pub fn node_block(&self, node: &str, block: &IpNet) -> String {
        format!("{}nodeblocks/{node}/{block}", self.base)
    }

    pub fn ips_prefix(&self) -> String {
        format!("{}ips/", self.base)
    }

    pub fn ip(&self, ip: IpAddr) -> String {
        format!("{}ips/{ip}", self.base)
    }

    pub fn block_ips_prefix(&self, block: &IpNet) -> String {
        format!("{}blockips/{block}/", self.base)
    }

    pub fn block_ips_all(&self) -> String {
        format!("{}blockips/", self.base)
    }

    pub fn block_ip(&self, block: &IpNet, ip: IpAddr) -> String {
        format!("{}blockips/{block}/{ip}", self.base)
    }

    pub fn attachments_prefix(&self) -> String {
        format!("{}attachments/", self.base)
    }

    pub fn attachment(&self, a: &Attachment) -> String {
        format!("{}attachments/{}/{}", self.base, a.container_id, a.ifname)
    }

    /// The part of `key` after `prefix`, parsed.
    pub fn suffix<T: std::str::FromStr>(key: &str, prefix: &str) -> Option<T> {
        key.strip_prefix(prefix)?.parse().ok()
    }

    /// `(block, ip)` of a `blockips/<block>/<ip>` key.
    pub fn parse_block_ip(&self, key: &str) -> Option<(IpNet, IpAddr)> {
        let rest = key.strip_prefix(&self.block_ips_all())?;
        let (block, ip) = rest.rsplit_once('/')?;
        Some((block.parse().ok()?, ip.parse().ok()?))
    }
}

/// Value of `meta`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaRecord {
    pub block_v4: u8,
    pub block_v6: u8,
}

/// Value of `blocks/<cidr>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockRecord {
    pub node: String,
    /// Store revision observed just before the claim: grows with every
    /// claim of the same block, so a re-claimed block is told apart.
    pub generation: i64,
    /// Unix seconds.
    pub claimed_at: u64,
}

/// Who an address or attachment belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

impl Owner {
    pub fn attachment(&self) -> Attachment {
        Attachment::new(self.container_id.clone(), self.ifname.clone())
    }

    /// `container c1 ifname eth0 (pod default/web-0) on node n1`.
    pub fn describe(&self) -> String {
        let pod = match (&self.pod_namespace, &self.pod_name) {
            (Some(ns), Some(n)) => format!(" (pod {ns}/{n})"),
            (None, Some(n)) => format!(" (pod {n})"),
            _ => String::new(),
        };
        format!("container {} ifname {}{pod} on node {}", self.container_id, self.ifname, self.node)
    }
}

/// Value of `ips/<ip>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpRecord {
    #[serde(flatten)]
    pub owner: Owner,
    pub block: IpNet,
    pub created_at: u64,
}

/// One address of an attachment, with what its result needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachedIp {
    /// The address with its subnet's prefix length.
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    pub block: IpNet,
    pub range_set: usize,
}

/// Value of `attachments/<cid>/<ifname>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentRecord {
    #[serde(flatten)]
    pub owner: Owner,
    pub ips: Vec<AttachedIp>,
    pub created_at: u64,
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let k = Keys::new("/vswitch/ipam", "net1");
        let b: IpNet = "10.0.0.0/28".parse().unwrap();
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(k.block(&b), "/vswitch/ipam/net1/blocks/10.0.0.0/28");
        assert_eq!(k.ip(ip), "/vswitch/ipam/net1/ips/10.0.0.5");
        assert_eq!(k.block_ip(&b, ip), "/vswitch/ipam/net1/blockips/10.0.0.0/28/10.0.0.5");
        assert_eq!(k.parse_block_ip(&k.block_ip(&b, ip)), Some((b, ip)));
        let b6: IpNet = "fd00::/122".parse().unwrap();
        let ip6: IpAddr = "fd00::3f".parse().unwrap();
        assert_eq!(k.parse_block_ip(&k.block_ip(&b6, ip6)), Some((b6, ip6)));
        assert_eq!(k.attachment(&Attachment::new("c1", "eth0")), "/vswitch/ipam/net1/attachments/c1/eth0");
        assert_eq!(Keys::suffix::<IpNet>(&k.node_block("n1", &b), &k.node_blocks_prefix("n1")), Some(b));
        // a /2 block's prefix is not a prefix of a /28 block's keys
        assert!(!k.block_ips_prefix(&b).starts_with(&k.block_ips_prefix(&"10.0.0.0/2".parse().unwrap())));
    }

    #[test]
    fn records_json() {
        let r = IpRecord {
            owner: Owner {
                container_id: "c1".into(),
                ifname: "eth0".into(),
                node: "n1".into(),
                pod_namespace: Some("default".into()),
                pod_name: Some("web-0".into()),
                pod_uid: None,
            },
            block: "10.0.0.0/28".parse().unwrap(),
            created_at: 7,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"containerID": "c1", "ifname": "eth0", "node": "n1", "podNamespace": "default",
                "podName": "web-0", "block": "10.0.0.0/28", "createdAt": 7})
        );
        assert_eq!(serde_json::from_value::<IpRecord>(v).unwrap(), r);
        assert_eq!(r.owner.describe(), "container c1 ifname eth0 (pod default/web-0) on node n1");
    }
}
