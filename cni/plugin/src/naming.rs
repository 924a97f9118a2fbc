//! Names the plugin derives from an attachment: the vswitch interface name,
//! its owner tag, and the MACs of both ends.
//!
//! The owner is `cni:<containerID>:<ifname>:<network>` (`network` is the CNI
//! network's `name`). Container ids, interface names and network names never
//! contain `:`, so it parses back unambiguously; DEL removes by owner only,
//! so an interface now belonging to another container is never touched, and
//! GC of one CNI network only looks at that network's interfaces.

use vswitch_cni_types::Attachment;

/// 64-bit FNV-1a over the parts, each followed by a 0 byte.
pub fn fnv64(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The vswitch interface of an attachment: `c` and 12 hex digits of a hash of
/// `(containerID, ifname)` (13 characters, a valid vswitch interface name).
pub fn vswitch_ifname(container_id: &str, ifname: &str) -> String {
    format!("c{:012x}", fnv64(&[container_id, ifname]) >> 16)
}

/// The longest owner tag vswitch keeps (`interfaces[].owner`).
pub const MAX_OWNER_LEN: usize = 253;

/// The owner tag written on the vswitch interface.
pub fn owner(container_id: &str, ifname: &str, network: &str) -> String {
    format!("cni:{container_id}:{ifname}:{network}")
}

/// Reads an owner tag back: the attachment and the CNI network.
pub fn parse_owner(owner: &str) -> Option<(Attachment, &str)> {
    let rest = owner.strip_prefix("cni:")?;
    let mut it = rest.splitn(3, ':');
    let (cid, ifname, network) = (it.next()?, it.next()?, it.next()?);
    if cid.is_empty() || ifname.is_empty() || network.is_empty() || network.contains(':') {
        return None;
    }
    Some((Attachment::new(cid, ifname), network))
}

pub fn format_mac(m: [u8; 6]) -> String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        m[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

/// A unicast MAC usable on an interface (not multicast, not all zero).
pub fn is_unicast(m: [u8; 6]) -> bool {
    m[0] & 1 == 0 && m != [0; 6]
}

/// vswitch's MAC on the attachment's interface (its gateway MAC for L3
/// networks): locally administered, `02:fe:` + 32 bits of hash, the form
/// vswitch generates itself.
pub fn vswitch_mac(container_id: &str, ifname: &str) -> [u8; 6] {
    let b = (fnv64(&[container_id, ifname, "vswitch"]) as u32).to_be_bytes();
    [0x02, 0xfe, b[0], b[1], b[2], b[3]]
}

/// The pod end's MAC when the runtime asks for none: locally administered
/// unicast `0a:` + 40 bits of hash of the attachment, stable across retries.
pub fn pod_mac(container_id: &str, ifname: &str) -> [u8; 6] {
    let h = fnv64(&[container_id, ifname, "pod"]).to_be_bytes();
    [0x0a, h[0], h[1], h[2], h[3], h[4]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = vswitch_ifname("abc", "eth0");
        assert_eq!(n.len(), 13);
        assert!(n.starts_with('c') && n[1..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(n, vswitch_ifname("abc", "eth0"));
        assert_ne!(n, vswitch_ifname("abc", "net1"));
        assert_ne!(vswitch_ifname("ab", "ceth0"), vswitch_ifname("abc", "eth0"));
    }

    #[test]
    fn owners_round_trip() {
        let o = owner("c-1.x", "net1", "blue");
        assert_eq!(o, "cni:c-1.x:net1:blue");
        assert_eq!(parse_owner(&o), Some((Attachment::new("c-1.x", "net1"), "blue")));
        assert_eq!(parse_owner("agent:x"), None);
        assert_eq!(parse_owner("cni:a:b"), None);
        assert_eq!(parse_owner("cni:a:b:c:d"), None);
    }

    #[test]
    fn macs() {
        let m = pod_mac("c", "eth0");
        assert!(is_unicast(m) && m[0] & 2 == 2);
        assert_eq!(parse_mac(&format_mac(m)), Some(m));
        assert_eq!(parse_mac("0A-00-00-00-00-01"), Some([10, 0, 0, 0, 0, 1]));
        assert_eq!(parse_mac("0a:00:00:00:00"), None);
        assert_eq!(parse_mac("0a:00:00:00:00:0g"), None);
        assert!(!is_unicast([1, 0, 0, 0, 0, 0]));
        let v = vswitch_mac("c", "eth0");
        assert_eq!(&v[..2], &[2, 0xfe]);
    }
}
