//! JSON fixtures in every supported version: parsed, converted between
//! versions and written back, compared as JSON values.

use serde_json::{json, Map, Value};
use vswitch_cni_types::{
    Attachment, CniError, CniResult, NetConf, NetConfList, RequestKind, Version, VersionResult, SUPPORTED_VERSIONS,
};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const RESULTS: &[(&str, Version)] = &[
    ("result-0.3.1.json", Version::V0_3_1),
    ("result-0.4.0.json", Version::V0_4_0),
    ("result-1.0.0.json", Version::V1_0_0),
    ("result-1.1.0.json", Version::V1_1_0),
];

#[test]
fn every_result_fixture_round_trips() {
    for (name, version) in RESULTS {
        let v = fixture(name);
        let r = CniResult::from_value(&v, None).unwrap();
        assert_eq!(r.cni_version, *version, "{name}");
        assert_eq!(r.to_value(*version).unwrap(), v, "{name}");
    }
}

#[test]
fn results_convert_down_to_each_fixture() {
    let newest = CniResult::from_value(&fixture("result-1.1.0.json"), None).unwrap();
    for (name, version) in RESULTS {
        assert_eq!(newest.to_value(*version).unwrap(), fixture(name), "1.1.0 -> {name}");
    }
    // and up: what 0.4.0 has survives into 1.1.0 (no `version` on ips)
    let old = CniResult::from_value(&fixture("result-0.4.0.json"), None).unwrap();
    let up = old.to_value(Version::V1_1_0).unwrap();
    let mut expected = fixture("result-1.0.0.json");
    expected["cniVersion"] = json!("1.1.0");
    assert_eq!(up, expected);
}

#[test]
fn ipam_results() {
    let r04 = CniResult::from_value(&fixture("ipam-result-0.4.0.json"), None).unwrap();
    let r11 = CniResult::from_value(&fixture("ipam-result-1.1.0.json"), None).unwrap();
    assert!(r04.interfaces.is_empty() && r04.ips[0].interface.is_none());
    assert_eq!(r04.to_value(Version::V1_1_0).unwrap(), fixture("ipam-result-1.1.0.json"));
    assert_eq!(r11.to_value(Version::V0_4_0).unwrap(), fixture("ipam-result-0.4.0.json"));
}

#[test]
fn add_request() {
    let v = fixture("add-request-1.1.0.json");
    let c: NetConf = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(c.version().unwrap(), Version::V1_1_0);
    c.validate_name().unwrap();
    assert_eq!(c.plugin_type, "vswitch-cni");
    assert_eq!(c.extra["bridgeDomain"], 10);
    let ipam = c.ipam.as_ref().unwrap();
    assert_eq!(ipam.ipam_type, "vswitch-ipam");
    assert!(ipam.rest.contains_key("ranges"));
    assert_eq!(c.requested_ips(), vec!["10.1.0.42/16", "fd00:1::42"]);
    assert_eq!(c.requested_mac(), Some("c2:11:22:33:44:55"));
    assert_eq!(c.dns.as_ref().unwrap().search, vec!["svc.cluster.local"]);
    assert_eq!(c.args.as_ref().unwrap().cni.as_ref().unwrap().labels[0].value, "db");
    assert!(c.prev_result().unwrap().is_none());
    // nothing is lost on the way back out
    assert_eq!(serde_json::to_value(&c).unwrap(), v);
}

#[test]
fn del_request_with_prev_result_in_0_4_0() {
    let c: NetConf = serde_json::from_value(fixture("del-request-0.4.0.json")).unwrap();
    let prev = c.prev_result().unwrap().unwrap();
    assert_eq!(prev.cni_version, Version::V0_4_0);
    assert_eq!(prev.interfaces.len(), 3);
    assert_eq!(prev.ips[0].interface, Some(2));
    assert_eq!(prev.ips[0].address.to_string(), "10.1.0.5/16");
    assert_eq!(c.extra["sysctl"]["net.core.somaxconn"], "500");
}

#[test]
fn gc_request() {
    let c: NetConf = serde_json::from_value(fixture("gc-request-1.1.0.json")).unwrap();
    assert_eq!(
        c.valid_attachments.unwrap(),
        vec![Attachment::new("a1b2c3", "eth0"), Attachment::new("d4e5f6", "net1")]
    );
}

#[test]
fn error_and_version_fixtures() {
    let e: CniError = serde_json::from_value(fixture("error-1.1.0.json")).unwrap();
    assert_eq!(e.code, 7);
    assert_eq!(serde_json::to_value(&e).unwrap(), fixture("error-1.1.0.json"));
    let vr = VersionResult::new(Some("1.1.0"), SUPPORTED_VERSIONS);
    assert_eq!(serde_json::to_value(&vr).unwrap(), fixture("version-1.1.0.json"));
}

#[test]
fn conflist_derives_plugin_requests() {
    let bytes = serde_json::to_vec(&fixture("conflist.json")).unwrap();
    let list = NetConfList::from_slice(&bytes).unwrap();
    assert_eq!(list.select_version(SUPPORTED_VERSIONS), Some(Version::V1_1_0));
    assert_eq!(list.select_version(&[Version::V0_4_0, Version::V1_0_0]), Some(Version::V1_0_0));

    let mut caps = Map::new();
    caps.insert("mac".into(), json!("00:11:22:33:44:66"));
    caps.insert("portMappings".into(), json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]));
    caps.insert("ips".into(), json!(["10.1.0.42/16"]));

    // first plugin: no prevResult; runtimeConfig = declared ∩ offered
    let first = list
        .request_config(0, Version::V1_1_0, RequestKind::Attachment { capability_args: &caps, prev_result: None })
        .unwrap();
    let v = serde_json::to_value(&first).unwrap();
    assert_eq!(v["cniVersion"], "1.1.0");
    assert_eq!(v["name"], "dbnet");
    assert!(v.get("capabilities").is_none());
    assert!(v.get("prevResult").is_none());
    assert_eq!(v["runtimeConfig"], json!({"ips": ["10.1.0.42/16"], "mac": "00:11:22:33:44:66"}));
    assert_eq!(v["ipam"]["type"], "vswitch-ipam");

    // second plugin in 0.4.0: prevResult written in 0.4.0 (ips carry version)
    let prev = CniResult::from_value(&fixture("result-1.1.0.json"), None).unwrap();
    let second = list
        .request_config(
            1,
            Version::V0_4_0,
            RequestKind::Attachment { capability_args: &caps, prev_result: Some(&prev) },
        )
        .unwrap();
    let v = serde_json::to_value(&second).unwrap();
    assert_eq!(v["cniVersion"], "0.4.0");
    assert_eq!(v["runtimeConfig"], json!({"mac": "00:11:22:33:44:66"}));
    assert_eq!(v["prevResult"]["ips"][0]["version"], "4");
    assert!(v["prevResult"].get("cniVersion").is_none());
    assert_eq!(second.prev_result().unwrap().unwrap(), prev.convert_to(Version::V0_4_0).unwrap());

    // GC: valid attachments added, no runtimeConfig
    let valid = [Attachment::new("a1b2c3", "eth0")];
    let gc = list.request_config(2, Version::V1_1_0, RequestKind::Gc { valid_attachments: &valid }).unwrap();
    let v = serde_json::to_value(&gc).unwrap();
    assert_eq!(v["cni.dev/valid-attachments"], json!([{"containerID": "a1b2c3", "ifname": "eth0"}]));
    assert!(v.get("runtimeConfig").is_none());
    assert!(list.request_config(3, Version::V1_1_0, RequestKind::Status).is_err());
}
