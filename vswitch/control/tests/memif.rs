//! memif interfaces in the desired state: the `memif` block read with its
//! defaults and written back, every check with its field path, and a
//! change of memif settings replacing the port backend.

use vswitch_control::{
    validate, Controller, DesiredState, Limits, MemifMode, MemifRole, MemifSpec, PortRegistry, PortSpec, PortType,
};
use vswitch_nodes::ip::IpFibConfig;

fn state(yaml: &str) -> DesiredState {
    DesiredState::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn errors(yaml: &str) -> Vec<String> {
    match validate(&state(yaml), &Limits::default()) {
        Ok(w) => panic!("valid, warnings {w:?}:\n{yaml}"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn memif_settings_read_with_defaults_and_write_back() {
    let s = state(
        "interfaces:
  - { name: a, type: memif }
  - name: b
    type: memif
    queues: 2
    memif: { role: client, socket: /run/cnf/memif.sock, id: 3, secret: s3cret, mode: ethernet, ring_size: 2048, buffer_size: 9216 }
  - { name: c, type: memif, memif: { socket: '@abstract', id: 1 } }
",
    );
    assert_eq!(s.interfaces[0].port_type, PortType::Memif);
    assert_eq!(s.interfaces[0].memif, None);
    let b = s.interfaces[1].memif.clone().unwrap();
    assert_eq!(
        b,
        MemifSpec {
            role: MemifRole::Client,
            socket: "/run/cnf/memif.sock".into(),
            id: 3,
            secret: Some("s3cret".into()),
            mode: MemifMode::Ethernet,
            ring_size: 2048,
            buffer_size: 9216,
        }
    );
    let c = s.interfaces[2].memif.clone().unwrap();
    assert_eq!((c.role, c.socket.as_str(), c.ring_size, c.buffer_size), (MemifRole::Server, "@abstract", 1024, 2048));
    assert_eq!(MemifSpec::default().socket, "/run/vswitch/memif.sock");
    assert_eq!(DesiredState::from_yaml(&s.to_yaml()).unwrap(), s);
    assert!(!s.to_yaml().contains("ring_size: 1024"), "defaults are not written out:\n{}", s.to_yaml());
    assert!(validate(&s, &Limits::default()).is_ok());

    let e = DesiredState::from_yaml("interfaces:\n  - { name: a, type: memif, memif: { rol: client } }\n").unwrap_err();
    assert!(e.message.contains("unknown field `rol`"), "{e}");
    let e =
        DesiredState::from_yaml("interfaces:\n  - { name: a, type: memif, memif: { role: master } }\n").unwrap_err();
    assert!(e.message.contains("unknown variant `master`"), "{e}");
}

#[test]
fn memif_checks_name_their_fields() {
    let e = errors(
        "interfaces:
  - { name: a, type: memif, host_ifname: eth0 }
  - { name: b, type: tap, host_ifname: t0, memif: { id: 1 } }
  - { name: c, type: memif, queues: 9 }
  - { name: cnf1, type: memif, memif: { ring_size: 1000, buffer_size: 100, id: 1 } }
  - { name: e, type: memif, memif: { socket: relative.sock } }
  - { name: f, type: memif, memif: { id: 5, secret: '0123456789012345678901234' } }
  - { name: g, type: memif, memif: { id: 1 } }
  - { name: h, type: memif, memif: { role: client, id: 2 } }
  - { name: i, type: memif, memif: { mode: ip, id: 3 } }
  - { name: j, type: memif, queues: 8, memif: { role: client, socket: /x.sock, ring_size: 16384, buffer_size: 65535 } }
  - { name: k, type: memif, memif: { mode: ip, id: 4 }, l3: { addresses: [10.9.0.1/24] } }
  - { name: l, type: memif, memif: { mode: ip, id: 6 }, l3: { addresses: [10.8.0.1/24] }, vlans: [{ id: 5 }] }
",
    );
    let want = [
        "interfaces[0] (a).host_ifname: memif interfaces have no host device",
        "interfaces[1] (b).memif: only memif interfaces have memif settings (this is tap)",
        "interfaces[2] (c).queues: 9 is more than a memif interface has (1..=8)",
        "interfaces[3] (cnf1).memif.ring_size: 1000 is not a power of two in 256..=16384",
        "interfaces[3] (cnf1).memif.buffer_size: 100 is outside 128..=65535",
        "interfaces[4] (e).memif.socket: \"relative.sock\" is neither an absolute path nor an abstract socket name (@name)",
        "interfaces[5] (f).memif.secret: is 25 bytes; a secret is 1 to 24 bytes, no NUL",
        "interfaces[6] (g).memif.id: 1 is also used on socket /run/vswitch/memif.sock by interfaces[3] (cnf1)",
        "interfaces[7] (h).memif.role: socket /run/vswitch/memif.sock is used in the server role by interfaces[0] (a)",
        "interfaces[8] (i).memif.mode: ip carries bare IP packets: only a routed interface (l3) can use it",
        "interfaces[9] (j).memif: 8 queue pairs of 16384 x 65535-byte buffers need",
        "interfaces[11] (l).memif.mode: ip carries no Ethernet header, so no VLAN sub-interfaces",
    ];
    for w in want {
        assert!(e.iter().any(|e| e.starts_with(w)), "missing {w:?} in {e:#?}");
    }
    // c's and a's ids (0 on the default socket) clash too.
    let clash = "interfaces[2] (c).memif.id: 0 is also used on socket /run/vswitch/memif.sock by interfaces[0] (a)";
    assert!(e.iter().any(|e| e == clash), "{e:#?}");
    assert_eq!(e.len(), want.len() + 1, "{e:#?}");
}

#[derive(Default)]
struct Ports {
    created: Vec<PortSpec>,
    removed: Vec<PortSpec>,
}

impl PortRegistry for Ports {
    fn create_port(&mut self, port: &PortSpec) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.created.push(port.clone());
        Ok(())
    }
    fn remove_port(&mut self, port: &PortSpec) {
        self.removed.push(port.clone());
    }
}

#[test]
fn changing_memif_settings_replaces_the_port() {
    let mut c = Controller::new(IpFibConfig::small()).unwrap();
    let mut ports = Ports::default();
    let doc = |ring: u32, mtu: u32| {
        state(&format!(
            "interfaces:\n  - {{ name: cnf, type: memif, mtu: {mtu}, memif: {{ socket: /run/x.sock, id: 4, ring_size: {ring} }} }}\n"
        ))
    };
    c.apply(doc(1024, 1500), &mut ports).unwrap();
    assert_eq!(ports.created.len(), 1);
    let first = ports.created[0].clone();
    assert_eq!(first.port_type, PortType::Memif);
    let m = first.memif.clone().unwrap();
    assert_eq!((m.socket.as_str(), m.id, m.ring_size), ("/run/x.sock", 4, 1024));
    assert!(first.to_string().contains("memif server /run/x.sock id 4"), "{first}");
    // The MTU is not a backend setting: the port stays.
    c.apply(doc(1024, 9000), &mut ports).unwrap();
    assert_eq!((ports.created.len(), ports.removed.len()), (1, 0));
    // The ring size is: a new port replaces it.
    c.apply(doc(4096, 9000), &mut ports).unwrap();
    assert_eq!((ports.created.len(), ports.removed.len()), (2, 1));
    assert_eq!(ports.removed[0], first);
    assert_ne!(ports.created[1].port, first.port);
    assert_eq!(ports.created[1].memif.as_ref().unwrap().ring_size, 4096);
    // Non-memif ports carry no memif settings.
    c.apply(state("interfaces:\n  - { name: p, type: pg }\n"), &mut ports).unwrap();
    assert_eq!(ports.created[2].memif, None);
}
