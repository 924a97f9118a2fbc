//! Patches: changing part of the desired state without restating all of
//! it, for writers that each own a piece of the node (the CNI plugin adds
//! and removes one pod's interfaces while an operator owns the rest).
//!
//! A [`Patch`] is applied to the state in force in two steps, and the
//! result is then validated and applied as a whole like any state (all
//! or nothing):
//!
//! 1. **Remove** the interfaces it names and those whose `owner` is its
//!    `remove_owner`, with the routes, next hops and static neighbors
//!    that go through them (or through their VLAN sub-interfaces). A name
//!    not in force is no error, so a retried DEL succeeds.
//! 2. **Upsert** each entry of its partial state: one with the key of an
//!    entry in force replaces it, any other is added. Keys: interfaces by
//!    name, bridge domains and VRFs by id, routes by (vrf, prefix),
//!    neighbors by (interface, ip), networks by name. An interface in
//!    force whose owner differs from the upserted one's is refused: a
//!    container never replaces another's interface, and the CNI plugin
//!    never replaces an operator's.

use crate::model::{DesiredState, NextHopSpec, RouteTarget};
use crate::validate::ValidationError;

/// A change to part of the desired state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Patch {
    /// Entries to add or replace.
    pub upsert: DesiredState,
    /// Interfaces to remove, by name.
    pub remove_interfaces: Vec<String>,
    /// Remove every interface with this owner.
    pub remove_owner: Option<String>,
}

/// Whether interface `name` is `removed` or one of its sub-interfaces
/// (`<parent>.<vlan>`).
fn through(name: &str, removed: &[String]) -> bool {
    removed.iter().any(|r| name == r || name.strip_prefix(r.as_str()).is_some_and(|rest| rest.starts_with('.')))
}

/// The state `patch` makes of `current`, or why it cannot (the state
/// still has to pass [`crate::validate()`]).
pub fn patched(current: &DesiredState, patch: &Patch) -> Result<DesiredState, Vec<ValidationError>> {
    let mut errors = Vec::new();
    if !patch.upsert.sr.is_empty() {
        errors.push(ValidationError {
            path: "sr".into(),
            message: "a patch cannot change the sr section; apply a whole state".into(),
        });
    }
    if patch.remove_owner.as_deref() == Some("") {
        errors.push(ValidationError { path: "remove_owner".into(), message: "must not be empty".into() });
    }
    let mut next = current.clone();

    // 1. Removals.
    let removed: Vec<String> = next
        .interfaces
        .iter()
        .filter(|i| {
            patch.remove_interfaces.contains(&i.name)
                || (patch.remove_owner.is_some() && i.owner.as_deref() == patch.remove_owner.as_deref())
        })
        .map(|i| i.name.clone())
        .collect();
    next.interfaces.retain(|i| !removed.contains(&i.name));
    next.neighbors.retain(|n| !through(&n.interface, &removed));
    next.routes.retain_mut(|r| match &mut r.target {
        RouteTarget::Interface(name) => !through(name, &removed),
        RouteTarget::Via(hops) => {
            hops.retain(|h: &NextHopSpec| !through(&h.interface, &removed));
            !hops.is_empty()
        }
        RouteTarget::Special(_) => true,
    });

    // 2. Upserts.
    for (i, new) in patch.upsert.interfaces.iter().enumerate() {
        match next.interfaces.iter_mut().find(|o| o.name == new.name) {
            Some(old) if old.owner != new.owner => errors.push(ValidationError {
                path: format!("interfaces[{i}] ({}).owner", new.name),
                message: match &old.owner {
                    Some(o) => format!("interface {:?} belongs to {o:?}; not replacing it", new.name),
                    None => format!("interface {:?} has no owner (an operator's); not replacing it", new.name),
                },
            }),
            Some(old) => *old = new.clone(),
            None => next.interfaces.push(new.clone()),
        }
    }
    upsert(&mut next.bridge_domains, &patch.upsert.bridge_domains, |a, b| a.id == b.id);
    upsert(&mut next.vrfs, &patch.upsert.vrfs, |a, b| a.id == b.id);
    upsert(&mut next.routes, &patch.upsert.routes, |a, b| a.vrf == b.vrf && a.prefix == b.prefix);
    upsert(&mut next.neighbors, &patch.upsert.neighbors, |a, b| a.interface == b.interface && a.ip == b.ip);
    upsert(&mut next.networks, &patch.upsert.networks, |a, b| a.name == b.name);

    if errors.is_empty() {
        Ok(next)
    } else {
        Err(errors)
    }
}

/// Replaces each entry of `into` that `same` matches with its `from`
/// counterpart and appends the others.
fn upsert<T: Clone>(into: &mut Vec<T>, from: &[T], same: impl Fn(&T, &T) -> bool) {
    for new in from {
        match into.iter_mut().find(|old| same(old, new)) {
            Some(old) => *old = new.clone(),
            None => into.push(new.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(yaml: &str) -> DesiredState {
        DesiredState::from_yaml(yaml).unwrap()
    }

    const BASE: &str = r#"
bridge_domains: [{ id: 10 }]
vrfs: [{ id: 5 }]
interfaces:
  - { name: uplink, type: pg, l3: { vrf: 5, addresses: [10.9.0.1/24] } }
  - name: c1
    type: pg
    owner: "cni:aaa:eth0"
    l3: { vrf: 5, proxy_arp: true }
    vlans: [{ id: 7, l3: { vrf: 5 } }]
  - { name: c2, type: pg, owner: "cni:bbb:eth0", bridge: { domain: 10 } }
routes:
  - { vrf: 5, prefix: 10.20.0.2/32, interface: c1 }
  - { vrf: 5, prefix: 10.30.0.0/16, interface: c1.7 }
  - { vrf: 5, prefix: 10.40.0.0/16, via: [{ address: 10.9.0.9, interface: uplink }] }
  - vrf: 5
    prefix: 10.50.0.0/16
    via: [{ address: 10.9.0.9, interface: uplink }, { address: 10.20.0.2, interface: c1 }]
neighbors:
  - { interface: c1, ip: 10.20.0.2, mac: "02:00:00:00:00:02" }
  - { interface: uplink, ip: 10.9.0.9, mac: "02:00:00:00:00:09" }
networks: [{ name: red, vrf: 5 }]
"#;

    #[test]
    fn removing_by_owner_takes_routes_neighbors_and_next_hops_through_it() {
        let p = Patch { remove_owner: Some("cni:aaa:eth0".into()), ..Patch::default() };
        let s = patched(&state(BASE), &p).unwrap();
        let names: Vec<_> = s.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["uplink", "c2"]);
        let prefixes: Vec<_> = s.routes.iter().map(|r| r.prefix.to_string()).collect();
        assert_eq!(prefixes, ["10.40.0.0/16", "10.50.0.0/16"]);
        match &s.routes[1].target {
            RouteTarget::Via(h) => assert_eq!(h.len(), 1, "the next hop through c1 is gone, the other kept"),
            t => panic!("{t:?}"),
        }
        assert_eq!(s.neighbors.len(), 1);
        assert_eq!(s.neighbors[0].interface, "uplink");
        assert!(crate::validate(&s, &Default::default()).is_ok());
    }

    #[test]
    fn removing_what_is_not_there_changes_nothing() {
        let p = Patch {
            remove_owner: Some("cni:zzz:eth0".into()),
            remove_interfaces: vec!["nope".into()],
            ..Patch::default()
        };
        assert_eq!(patched(&state(BASE), &p).unwrap(), state(BASE));
    }

    #[test]
    fn a_name_prefix_is_not_a_sub_interface() {
        assert!(through("c1.7", &["c1".into()]));
        assert!(through("c1", &["c1".into()]));
        assert!(!through("c10", &["c1".into()]));
    }

    #[test]
    fn upserts_replace_by_key_and_add_the_rest() {
        let p = Patch {
            upsert: state(
                r#"
interfaces: [{ name: c2, type: pg, owner: "cni:bbb:eth0", mtu: 9000, bridge: { domain: 10 } },
             { name: c3, type: pg, owner: "cni:ccc:net1", bridge: { domain: 10 } }]
routes: [{ vrf: 5, prefix: 10.20.0.2/32, type: drop }]
networks: [{ name: red, vrf: 5, mtu: 1400 }, { name: blue, bridge_domain: 10 }]
"#,
            ),
            ..Patch::default()
        };
        let s = patched(&state(BASE), &p).unwrap();
        assert_eq!(s.interfaces.len(), 4);
        assert_eq!(s.interfaces[2].mtu, Some(9000));
        assert_eq!(s.interfaces[3].name, "c3");
        assert_eq!(s.routes.len(), 4);
        assert!(matches!(s.routes[0].target, RouteTarget::Special(_)));
        assert_eq!(s.networks.len(), 2);
        assert_eq!(s.networks[0].mtu, Some(1400));
    }

    #[test]
    fn another_owners_interface_is_refused_by_field() {
        let p = Patch {
            upsert: state(
                r#"interfaces: [{ name: c2, type: pg, owner: "cni:xxx:eth0" }, { name: uplink, type: pg, owner: "cni:yyy:eth0" }]"#,
            ),
            ..Patch::default()
        };
        let e = patched(&state(BASE), &p).unwrap_err();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].path, "interfaces[0] (c2).owner");
        assert!(e[0].message.contains("cni:bbb:eth0"), "{}", e[0].message);
        assert_eq!(e[1].path, "interfaces[1] (uplink).owner");
    }

    #[test]
    fn remove_then_upsert_lets_an_owner_take_over_a_freed_name() {
        let p = Patch {
            remove_owner: Some("cni:bbb:eth0".into()),
            upsert: state(r#"interfaces: [{ name: c2, type: pg, owner: "cni:new:eth0" }]"#),
            ..Patch::default()
        };
        let s = patched(&state(BASE), &p).unwrap();
        assert_eq!(s.interfaces.iter().find(|i| i.name == "c2").unwrap().owner.as_deref(), Some("cni:new:eth0"));
    }

    #[test]
    fn sr_and_an_empty_owner_are_refused() {
        let p = Patch {
            upsert: state("sr: { localsids: [{ sid: 'fc00::1', behavior: end }] }"),
            remove_owner: Some(String::new()),
            ..Patch::default()
        };
        let e = patched(&state(BASE), &p).unwrap_err();
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["sr", "remove_owner"]);
    }
}
