//! The single-node store in `dataDir`: concurrent plugin processes on one
//! node, and the allocator's lifecycle without etcd.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;

use common::*;
use serde_json::{json, Value};
use vswitch_cni_types::{Attachment, CniError};
use vswitch_ipam::{codes, AddRequest};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("vswitch-ipam-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn concurrent_plugin_processes_on_one_node_never_duplicate() {
    let dir = TempDir::new("procs");
    // .2-.30: 29 addresses (.1 is the gateway), asked for by 40 processes
    let conf = netconf(
        "0.4.0",
        "local",
        json!({"type": "vswitch-ipam", "subnet": "10.99.0.0/27", "blockSize": 28, "node": "solo",
               "dataDir": dir.0}),
    );
    let mut ok = Vec::new();
    let mut exhausted = 0;
    for wave in 0..4 {
        let cids: Vec<String> = (0..10).map(|i| format!("p{wave}-{i}")).collect();
        let children: Vec<_> = cids.iter().map(|cid| Invocation::new("ADD", cid, &conf).spawn()).collect();
        for (cid, child) in cids.iter().zip(children) {
            let (code, v) = parse_output(child.wait_with_output().unwrap());
            if code == 0 {
                assert_eq!(v["cniVersion"], "0.4.0");
                assert_eq!(v["ips"][0]["version"], "4");
                ok.push((cid.clone(), addrs(&v)[0].clone()));
            } else {
                let e: CniError = serde_json::from_value(v).unwrap();
                assert_eq!(e.code, codes::EXHAUSTED, "{e}");
                assert!(e.msg.contains("10.99.0.0/27"), "{e}");
                exhausted += 1;
            }
        }
    }
    assert_eq!(ok.len(), 29);
    assert_eq!(exhausted, 11);
    let unique: HashSet<&String> = ok.iter().map(|(_, ip)| ip).collect();
    assert_eq!(unique.len(), ok.len(), "an address was handed out twice");
    // the state on disk is exactly what was returned
    let rt = rt();
    let ipam = open(&rt, &conf);
    let mut stored: Vec<(String, String)> = rt
        .block_on(ipam.allocations())
        .unwrap()
        .into_iter()
        .map(|(ip, r)| (r.owner.container_id, ip.to_string()))
        .collect();
    stored.sort();
    ok.sort();
    assert_eq!(stored, ok);
}

#[test]
fn file_store_lifecycle_and_block_size_guard() {
    let dir = TempDir::new("life");
    let conf = |block: u8| -> Value {
        netconf(
            "1.1.0",
            "local",
            json!({"type": "vswitch-ipam",
                   "ranges": [[{"subnet": "10.98.0.0/24"}], [{"subnet": "fd98::/120"}]],
                   "exclude": ["10.98.0.2/31"], "blockSize": {"v4": block, "v6": 124},
                   "node": "solo", "dataDir": dir.0, "releaseEmptyBlocks": true}),
        )
    };
    let rt = rt();
    let ipam = open(&rt, &conf(28));
    let a = rt.block_on(ipam.add(&AddRequest::new("c1", "eth0"))).unwrap();
    assert_eq!(a.ips.len(), 2);
    assert!(a.ips[0].address.addr().is_ipv4() && a.ips[1].address.addr().is_ipv6());
    let ex: HashSet<String> = ["10.98.0.2", "10.98.0.3"].iter().map(|s| s.to_string()).collect();
    assert!(!ex.contains(&a.ips[0].address.addr().to_string()), "excluded address handed out");
    let again = rt.block_on(ipam.add(&AddRequest::new("c1", "eth0"))).unwrap();
    assert!(again.existing);
    assert_eq!(again.ips, a.ips);
    rt.block_on(ipam.check(&Attachment::new("c1", "eth0"), None)).unwrap();
    assert_eq!(rt.block_on(ipam.check(&Attachment::new("c2", "eth0"), None)).unwrap_err().code, codes::NO_ALLOCATION);
    let status = rt.block_on(ipam.status()).unwrap();
    assert_eq!(status.usage[0], (1, 253 - 2));
    // GC with nothing valid releases it and its (now empty) blocks
    let report = rt.block_on(ipam.gc(&[])).unwrap();
    assert_eq!(report.released.len(), 1);
    assert_eq!(report.blocks_released.len(), 2);
    assert!(rt.block_on(ipam.allocations()).unwrap().is_empty());
    assert!(rt.block_on(ipam.del(&Attachment::new("c1", "eth0"))).unwrap().is_none());
    // every node must cut the pool the same way
    let other = open(&rt, &conf(26));
    let e = rt.block_on(other.add(&AddRequest::new("c3", "eth0"))).unwrap_err();
    assert_eq!(e.code, 7, "{e}");
    assert!(e.details.contains("/28"), "{e}");
}
