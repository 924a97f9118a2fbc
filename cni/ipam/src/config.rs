//! The `ipam` section of the network configuration.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{Map, Value};
use vswitch_cni_types::{CniError, Dns, NetConf, Route};

use crate::pool::{self, Family, Pool, Range, RangeSet, MAX_BLOCK_ADDRESSES};

pub const DEFAULT_DATA_DIR: &str = "/var/lib/vswitch/ipam";
pub const DEFAULT_ETCD_PREFIX: &str = "/vswitch/ipam";
pub const DEFAULT_BLOCK_V4: u8 = 26;
pub const DEFAULT_BLOCK_V6: u8 = 122;

/// The parsed and validated configuration.
#[derive(Clone, Debug)]
pub struct IpamConfig {
    /// Name the pool is kept under: `network` if set, else the netconf `name`.
    pub network: String,
    pub pool: Pool,
    pub routes: Vec<Route>,
    pub dns: Option<Dns>,
    pub block_v4: u8,
    pub block_v6: u8,
    pub store: StoreConfig,
    pub node: String,
    pub release_empty_blocks: bool,
    /// Overall deadline of one operation, retries included.
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub enum StoreConfig {
    Etcd(EtcdConfig),
    /// Single node: `<dir>/<network>/`.
    File {
        dir: PathBuf,
    },
}

#[derive(Clone, Debug)]
pub struct EtcdConfig {
    pub endpoints: Vec<String>,
    /// Key prefix, no trailing `/`.
    pub prefix: String,
    pub dial_timeout: Duration,
    pub request_timeout: Duration,
    pub tls: Option<TlsConfig>,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM CA bundle to verify the servers with.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key (mutual TLS).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Name to verify the server certificate against (defaults to the endpoint host).
    pub server_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRange {
    subnet: String,
    range_start: Option<String>,
    range_end: Option<String>,
    gateway: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawBlockSize {
    V4(u8),
    Both {
        #[serde(default)]
        v4: Option<u8>,
        #[serde(default)]
        v6: Option<u8>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEtcd {
    endpoints: Vec<String>,
    prefix: Option<String>,
    dial_timeout_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    tls: Option<TlsConfig>,
    username: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIpam {
    #[serde(default)]
    ranges: Vec<Vec<RawRange>>,
    subnet: Option<String>,
    range_start: Option<String>,
    range_end: Option<String>,
    gateway: Option<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    routes: Vec<Route>,
    block_size: Option<RawBlockSize>,
    etcd: Option<RawEtcd>,
    data_dir: Option<PathBuf>,
    node: Option<String>,
    network: Option<String>,
    #[serde(default)]
    release_empty_blocks: bool,
    dns: Option<Dns>,
    timeout_ms: Option<u64>,
}

const KNOWN_KEYS: &[&str] = &[
    "type",
    "ranges",
    "subnet",
    "rangeStart",
    "rangeEnd",
    "gateway",
    "exclude",
    "routes",
    "blockSize",
    "etcd",
    "dataDir",
    "node",
    "network",
    "releaseEmptyBlocks",
    "dns",
    "timeoutMs",
];

fn invalid(details: impl Into<String>) -> CniError {
    CniError::invalid_config("invalid vswitch-ipam configuration", details)
}

fn parse_ip(what: &str, s: &str) -> Result<IpAddr, CniError> {
    s.parse().map_err(|_| invalid(format!("{what} {s:?} is not an IP address")))
}

/// `<ip>` or `<ip>/<prefix>` (the prefix is accepted and ignored) as used by
/// `exclude` entries without a prefix and by requested addresses.
pub fn parse_ip_maybe_prefix(s: &str) -> Option<IpAddr> {
    s.split_once('/').map_or(s, |(a, _)| a).parse().ok()
}

impl IpamConfig {
    /// Reads the `ipam` section of a request configuration.
    pub fn from_netconf(conf: &NetConf) -> Result<IpamConfig, CniError> {
        conf.validate_name()?;
        let section = conf.ipam.as_ref().ok_or_else(|| invalid("the network configuration has no \"ipam\" section"))?;
        Self::from_section(&conf.name, &section.rest)
    }

    /// Reads an `ipam` section's keys (without `type`), for network `name`.
    pub fn from_section(name: &str, section: &Map<String, Value>) -> Result<IpamConfig, CniError> {
        if let Some((k, v)) = section.iter().find(|(k, _)| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(CniError::unsupported_field(&format!("ipam.{k}"), v));
        }
        let raw: RawIpam =
            serde_json::from_value(Value::Object(section.clone())).map_err(|e| invalid(e.to_string()))?;

        let network = raw.network.clone().unwrap_or_else(|| name.to_string());
        vswitch_cni_types::config::validate_identifier(&network)
            .map_err(|why| invalid(format!("network name {network:?}: {why}")))?;

        let (block_v4, block_v6) = match raw.block_size {
            None => (DEFAULT_BLOCK_V4, DEFAULT_BLOCK_V6),
            Some(RawBlockSize::V4(p)) => (p, DEFAULT_BLOCK_V6),
            Some(RawBlockSize::Both { v4, v6 }) => (v4.unwrap_or(DEFAULT_BLOCK_V4), v6.unwrap_or(DEFAULT_BLOCK_V6)),
        };
        for (fam, p) in [(Family::V4, block_v4), (Family::V6, block_v6)] {
            let host_bits = fam.bits().saturating_sub(p) as u32;
            if p > fam.bits() - 2 || (1u64 << host_bits) > MAX_BLOCK_ADDRESSES as u64 {
                return Err(invalid(format!(
                    "blockSize {p} for {}: blocks must have between 4 and {MAX_BLOCK_ADDRESSES} addresses (/{}../{})",
                    fam.name(),
                    fam.bits() - 16,
                    fam.bits() - 2
                )));
            }
        }

        let mut raw_sets = raw.ranges;
        if let Some(subnet) = raw.subnet {
            raw_sets.insert(
                0,
                vec![RawRange { subnet, range_start: raw.range_start, range_end: raw.range_end, gateway: raw.gateway }],
            );
        } else if raw.range_start.is_some() || raw.range_end.is_some() || raw.gateway.is_some() {
            return Err(invalid("rangeStart, rangeEnd and gateway at the top level need subnet"));
        }
        if raw_sets.is_empty() {
            return Err(invalid("no ranges: set \"ranges\" (or \"subnet\")"));
        }

        let mut sets = Vec::new();
        for (index, raw_set) in raw_sets.into_iter().enumerate() {
            if raw_set.is_empty() {
                return Err(invalid(format!("range set {index} is empty")));
            }
            let mut ranges = Vec::new();
            for rr in raw_set {
                ranges.push(parse_range(&rr)?);
            }
            let family = ranges[0].family();
            if ranges.iter().any(|r| r.family() != family) {
                return Err(invalid(format!("range set {index} mixes IPv4 and IPv6")));
            }
            let block_prefix = if family == Family::V4 { block_v4 } else { block_v6 };
            sets.push(RangeSet { index, family, ranges, block_prefix });
        }

        let mut exclude = Vec::new();
        for x in &raw.exclude {
            let n: IpNet = match x.parse::<IpNet>() {
                Ok(n) => n.trunc(),
                Err(_) => {
                    let ip = parse_ip("exclude entry", x)?;
                    pool::net(ip, Family::of(ip).bits())
                }
            };
            exclude.push(n);
        }
        let pool = Pool { sets, exclude };
        pool.check_disjoint().map_err(invalid)?;
        for set in &pool.sets {
            if pool.usable_count(set) == 0 {
                return Err(invalid(format!("range set {} ({}) has no usable address", set.index, set.describe())));
            }
        }

        let store = match raw.etcd {
            Some(e) => {
                if raw.data_dir.is_some() {
                    return Err(invalid("set either etcd or dataDir, not both"));
                }
                if e.endpoints.is_empty() || e.endpoints.iter().any(|s| s.trim().is_empty()) {
                    return Err(invalid("etcd.endpoints must list at least one endpoint"));
                }
                let prefix = e.prefix.unwrap_or_else(|| DEFAULT_ETCD_PREFIX.to_string());
                let prefix = prefix.trim_end_matches('/').to_string();
                if !prefix.starts_with('/') {
                    return Err(invalid(format!("etcd.prefix {prefix:?} must start with '/'")));
                }
                if (e.username.is_some()) != (e.password.is_some()) {
                    return Err(invalid("etcd.username and etcd.password go together"));
                }
                if let Some(t) = &e.tls {
                    if t.cert_file.is_some() != t.key_file.is_some() {
                        return Err(invalid("etcd.tls.certFile and etcd.tls.keyFile go together"));
                    }
                }
                StoreConfig::Etcd(EtcdConfig {
                    endpoints: e.endpoints,
                    prefix,
                    dial_timeout: Duration::from_millis(e.dial_timeout_ms.unwrap_or(2000)),
                    request_timeout: Duration::from_millis(e.request_timeout_ms.unwrap_or(5000)),
                    tls: e.tls,
                    username: e.username,
                    password: e.password,
                })
            }
            None => StoreConfig::File { dir: raw.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)) },
        };

        let node = match raw.node {
            Some(n) => n,
            None => hostname().ok_or_else(|| invalid("no \"node\" given and the hostname cannot be read"))?,
        };
        vswitch_cni_types::config::validate_identifier(&node)
            .map_err(|why| invalid(format!("node name {node:?}: {why}")))?;

        for r in &raw.routes {
            if r.gw.is_some_and(|g| Family::of(g) != Family::of(r.dst.addr())) {
                return Err(invalid(format!("route to {} has a gateway of the other family", r.dst)));
            }
        }

        Ok(IpamConfig {
            network,
            pool,
            routes: raw.routes,
            dns: raw.dns.filter(|d| !d.is_empty()),
            block_v4,
            block_v6,
            store,
            node,
            release_empty_blocks: raw.release_empty_blocks,
            timeout: Duration::from_millis(raw.timeout_ms.unwrap_or(20_000)),
        })
    }
}

fn parse_range(rr: &RawRange) -> Result<Range, CniError> {
    let subnet: IpNet = rr.subnet.parse().map_err(|_| invalid(format!("subnet {:?} is not a prefix", rr.subnet)))?;
    let subnet = subnet.trunc();
    let fam = Family::of(subnet.addr());
    if subnet.prefix_len() > fam.bits() - 2 {
        return Err(invalid(format!("network {subnet} too small to allocate from")));
    }
    let in_subnet = |what: &str, s: &Option<String>| -> Result<Option<IpAddr>, CniError> {
        match s {
            None => Ok(None),
            Some(s) => {
                let ip = parse_ip(what, s)?;
                if !subnet.contains(&ip) {
                    return Err(invalid(format!("{what} {ip} is not in subnet {subnet}")));
                }
                Ok(Some(ip))
            }
        }
    };
    let (n, b) = pool::bounds(&subnet);
    let start = in_subnet("rangeStart", &rr.range_start)?.unwrap_or(pool::from_u128(n + 1, fam));
    let default_end = if fam == Family::V4 { b - 1 } else { b };
    let end = in_subnet("rangeEnd", &rr.range_end)?.unwrap_or(pool::from_u128(default_end, fam));
    if pool::to_u128(start) > pool::to_u128(end) {
        return Err(invalid(format!("rangeStart {start} is after rangeEnd {end}")));
    }
    // As host-local: no gateway given means the first address after the network.
    let gateway = in_subnet("gateway", &rr.gateway)?.or(Some(pool::from_u128(n + 1, fam)));
    Ok(Range { subnet, start, end, gateway })
}

/// The node name used when the configuration has none.
pub fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> Result<IpamConfig, CniError> {
        let Value::Object(m) = v else { panic!() };
        IpamConfig::from_section("net1", &m)
    }

    #[test]
    fn dual_stack_with_etcd() {
        let c = cfg(json!({
            "type": "vswitch-ipam",
            "ranges": [
                [{"subnet": "10.10.0.0/16", "rangeStart": "10.10.1.0", "rangeEnd": "10.10.1.255", "gateway": "10.10.0.1"}],
                [{"subnet": "fd10::/64"}]
            ],
            "exclude": ["10.10.1.0/28", "10.10.1.100"],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd10::1"}],
            "blockSize": {"v4": 28, "v6": 120},
            "etcd": {"endpoints": ["http://127.0.0.1:2379"], "prefix": "/x/", "requestTimeoutMs": 1000},
            "node": "worker-1",
            "releaseEmptyBlocks": true
        }))
        .unwrap();
        assert_eq!(c.network, "net1");
        assert_eq!(c.pool.sets.len(), 2);
        assert_eq!(c.pool.sets[0].block_prefix, 28);
        assert_eq!(c.pool.sets[1].block_prefix, 120);
        assert_eq!(c.pool.sets[1].ranges[0].gateway, Some("fd10::1".parse().unwrap()));
        assert_eq!(c.pool.exclude.len(), 2);
        assert_eq!(c.pool.usable_count(&c.pool.sets[0]), 256 - 16 - 1);
        let StoreConfig::Etcd(e) = &c.store else { panic!() };
        assert_eq!(e.prefix, "/x");
        assert_eq!(e.request_timeout, Duration::from_secs(1));
        assert!(c.release_empty_blocks);
    }

    #[test]
    fn host_local_style_and_defaults() {
        let c =
            cfg(json!({"type": "vswitch-ipam", "subnet": "192.168.5.0/24", "dataDir": "/tmp/x", "node": "n"})).unwrap();
        let r = &c.pool.sets[0].ranges[0];
        assert_eq!(r.start.to_string(), "192.168.5.1");
        assert_eq!(r.end.to_string(), "192.168.5.254");
        assert_eq!(r.gateway, Some("192.168.5.1".parse().unwrap()));
        assert_eq!(c.block_v4, 26);
        assert_eq!(c.block_v6, 122);
        assert!(matches!(&c.store, StoreConfig::File { dir } if dir == &PathBuf::from("/tmp/x")));
        let c = cfg(json!({"subnet": "192.168.5.0/24", "blockSize": 24, "node": "n"})).unwrap();
        assert_eq!(c.block_v4, 24);
    }

    #[test]
    fn rejects() {
        let cases = [
            (json!({"node": "n"}), 7, "no ranges"),
            (json!({"subnet": "10.0.0.0/31", "node": "n"}), 7, "too small"),
            (json!({"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.1", "node": "n"}), 7, "not in subnet"),
            (
                json!({"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.9", "rangeEnd": "10.0.0.8", "node": "n"}),
                7,
                "after",
            ),
            (json!({"subnet": "10.0.0.0/24", "blockSize": 31, "node": "n"}), 7, "blockSize"),
            (json!({"subnet": "10.0.0.0/24", "blockSize": 8, "node": "n"}), 7, "blockSize"),
            (json!({"subnet": "10.0.0.0/24", "rangestart": "10.0.0.9", "node": "n"}), 2, "rangestart"),
            (json!({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "fd00::/64"}]], "node": "n"}), 7, "mixes"),
            (json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/25"}]], "node": "n"}), 7, "overlap"),
            (json!({"subnet": "10.0.0.0/24", "node": "a/b"}), 7, "node name"),
            (json!({"subnet": "10.0.0.0/24", "node": "n", "etcd": {"endpoints": []}}), 7, "endpoints"),
            (json!({"subnet": "10.0.0.0/24", "node": "n", "etcd": {"endpoints": ["x"], "prefix": "x"}}), 7, "prefix"),
            (json!({"subnet": "10.0.0.0/24", "node": "n", "etcd": {"endpoints": ["x"], "bogus": 1}}), 7, "bogus"),
            (
                json!({"subnet": "10.0.0.0/30", "gateway": "10.0.0.1", "exclude": ["10.0.0.2"], "node": "n"}),
                7,
                "no usable",
            ),
            (
                json!({"subnet": "10.0.0.0/24", "node": "n", "routes": [{"dst": "0.0.0.0/0", "gw": "fd00::1"}]}),
                7,
                "family",
            ),
        ];
        for (v, code, needle) in cases {
            let e = cfg(v.clone()).unwrap_err();
            assert_eq!(e.code, code, "{v}: {e}");
            assert!(e.to_string().contains(needle), "{v}: {e}");
        }
    }

    #[test]
    fn from_netconf_requires_ipam_and_name() {
        let nc: NetConf = serde_json::from_value(json!({"cniVersion": "1.1.0", "name": "n", "type": "x"})).unwrap();
        assert_eq!(IpamConfig::from_netconf(&nc).unwrap_err().code, 7);
        let nc: NetConf = serde_json::from_value(json!({"cniVersion": "1.1.0", "name": "-n", "type": "x",
            "ipam": {"type": "vswitch-ipam", "subnet": "10.0.0.0/24", "node": "a"}}))
        .unwrap();
        assert_eq!(IpamConfig::from_netconf(&nc).unwrap_err().code, 7);
    }
}
