//! IP protocol numbers (IPv4 `protocol`, IPv6 `next_header`).

/// IPv6 Hop-by-Hop Options.
pub const HOPOPT: u8 = 0;
/// ICMP for IPv4.
pub const ICMP: u8 = 1;
/// IPv4-in-IP encapsulation.
pub const IPV4: u8 = 4;
/// TCP.
pub const TCP: u8 = 6;
/// UDP.
pub const UDP: u8 = 17;
/// IPv6 encapsulation.
pub const IPV6: u8 = 41;
/// IPv6 Routing header.
pub const IPV6_ROUTE: u8 = 43;
/// IPv6 Fragment header.
pub const IPV6_FRAG: u8 = 44;
/// Encapsulating Security Payload.
pub const ESP: u8 = 50;
/// Authentication Header.
pub const AH: u8 = 51;
/// ICMP for IPv6.
pub const ICMPV6: u8 = 58;
/// No next header.
pub const IPV6_NONXT: u8 = 59;
/// IPv6 Destination Options.
pub const IPV6_OPTS: u8 = 60;

/// Short name for display, if the number is one of the above.
pub fn name(p: u8) -> Option<&'static str> {
    Some(match p {
        HOPOPT => "HopByHop",
        ICMP => "ICMP",
        IPV4 => "IPv4",
        TCP => "TCP",
        UDP => "UDP",
        IPV6 => "IPv6",
        IPV6_ROUTE => "Routing",
        IPV6_FRAG => "Fragment",
        ESP => "ESP",
        AH => "AH",
        ICMPV6 => "ICMPv6",
        IPV6_NONXT => "NoNext",
        IPV6_OPTS => "DestOpts",
        _ => return None,
    })
}

/// Formats a protocol number as its name or as a decimal number.
pub(crate) struct ProtoDisplay(pub u8);

impl core::fmt::Display for ProtoDisplay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match name(self.0) {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name(UDP), Some("UDP"));
        assert_eq!(name(200), None);
        assert_eq!(ProtoDisplay(ICMPV6).to_string(), "ICMPv6");
        assert_eq!(ProtoDisplay(253).to_string(), "253");
        for p in 0..=255u8 {
            if let Some(n) = name(p) {
                assert!(!n.is_empty());
            }
        }
    }
}
