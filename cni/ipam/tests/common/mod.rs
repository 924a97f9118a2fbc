//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};
use vswitch_ipam::{Ipam, IpamConfig};

/// A request configuration as a main plugin would pass it to its IPAM plugin.
pub fn netconf(version: &str, name: &str, ipam: Value) -> Value {
    json!({"cniVersion": version, "name": name, "type": "vswitch-cni", "ipam": ipam})
}

pub fn config(conf: &Value) -> IpamConfig {
    let nc: vswitch_cni_types::NetConf = serde_json::from_value(conf.clone()).unwrap();
    IpamConfig::from_netconf(&nc).unwrap()
}

/// The `ipam` section with `node` replaced.
pub fn on_node(conf: &Value, node: &str) -> Value {
    let mut c = conf.clone();
    c["ipam"]["node"] = json!(node);
    c
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

pub fn open(rt: &tokio::runtime::Runtime, conf: &Value) -> Ipam {
    rt.block_on(Ipam::open(config(conf))).unwrap()
}

/// One invocation of the plugin binary.
pub struct Invocation<'a> {
    pub command: &'a str,
    pub container_id: &'a str,
    pub ifname: &'a str,
    pub args: &'a str,
    pub conf: &'a Value,
}

impl<'a> Invocation<'a> {
    pub fn new(command: &'a str, container_id: &'a str, conf: &'a Value) -> Self {
        Invocation { command, container_id, ifname: "eth0", args: "", conf }
    }

    pub fn spawn(&self) -> Child {
        let mut env: HashMap<&str, &str> = HashMap::new();
        env.insert("CNI_COMMAND", self.command);
        env.insert("CNI_PATH", "/opt/cni/bin");
        if !self.container_id.is_empty() {
            env.insert("CNI_CONTAINERID", self.container_id);
            env.insert("CNI_NETNS", "/var/run/netns/test");
            env.insert("CNI_IFNAME", self.ifname);
        }
        if !self.args.is_empty() {
            env.insert("CNI_ARGS", self.args);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_vswitch-ipam"))
            .env_clear()
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vswitch-ipam");
        let body = serde_json::to_vec(self.conf).unwrap();
        child.stdin.take().unwrap().write_all(&body).unwrap();
        child
    }

    /// Runs to completion: exit code and stdout parsed as JSON (Null when empty).
    pub fn run(&self) -> (i32, Value) {
        let out = self.spawn().wait_with_output().unwrap();
        parse_output(out)
    }
}

pub fn parse_output(out: std::process::Output) -> (i32, Value) {
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout:?}"))
    };
    (code, v)
}

/// The addresses of a result, as strings without prefix.
pub fn addrs(result: &Value) -> Vec<String> {
    result["ips"]
        .as_array()
        .map(|a| a.iter().map(|ip| ip["address"].as_str().unwrap().split('/').next().unwrap().to_string()).collect())
        .unwrap_or_default()
}
