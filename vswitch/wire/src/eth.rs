//! Ethernet II frames and MAC addresses.

use core::fmt;
use core::net::Ipv6Addr;
use core::str::FromStr;

use crate::field::{read_array, read_u16, write_u16};
use crate::{Error, Result};

/// EtherType values the dataplane dispatches on.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;

    /// Short name for display, if the value is one of the above.
    pub fn name(t: u16) -> Option<&'static str> {
        Some(match t {
            IPV4 => "IPv4",
            ARP => "ARP",
            VLAN => "VLAN",
            QINQ => "QinQ",
            IPV6 => "IPv6",
            _ => return None,
        })
    }

    /// True for the EtherTypes that announce a 4-byte VLAN tag.
    pub fn is_vlan(t: u16) -> bool {
        t == VLAN || t == QINQ
    }
}

/// Formats an EtherType as its name or as hex.
pub(crate) struct EtherTypeDisplay(pub u16);

impl fmt::Display for EtherTypeDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ethertype::name(self.0) {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:04x}", self.0),
        }
    }
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Copies an address out of a 6-byte slice.
    ///
    /// # Panics
    /// If `bytes.len() != 6`.
    #[inline]
    pub fn from_bytes(bytes: &[u8]) -> MacAddr {
        let mut a = [0u8; 6];
        a.copy_from_slice(bytes);
        MacAddr(a)
    }

    /// The six octets.
    #[inline]
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// True for ff:ff:ff:ff:ff:ff.
    #[inline]
    pub const fn is_broadcast(&self) -> bool {
        u64_of(&self.0) == 0xffff_ffff_ffff
    }

    /// True if the I/G bit is set (broadcast is multicast too).
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True if the I/G bit is clear.
    #[inline]
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// True if the U/L bit marks a locally administered address.
    #[inline]
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// True for 00:00:00:00:00:00.
    #[inline]
    pub const fn is_zero(&self) -> bool {
        u64_of(&self.0) == 0
    }

    /// The address in the low 48 bits of a `u64`, first octet most
    /// significant: a cheap hash/compare key.
    #[inline]
    pub const fn as_u64(&self) -> u64 {
        u64_of(&self.0)
    }

    /// The multicast MAC an IPv6 multicast group maps to (RFC 2464 section 7):
    /// 33:33 followed by the last four octets of the group.
    #[inline]
    pub const fn from_ipv6_multicast(group: &Ipv6Addr) -> MacAddr {
        let o = group.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

#[inline]
const fn u64_of(a: &[u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, a[0], a[1], a[2], a[3], a[4], a[5]])
}

impl From<[u8; 6]> for MacAddr {
    fn from(a: [u8; 6]) -> Self {
        MacAddr(a)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", a[0], a[1], a[2], a[3], a[4], a[5])
    }
}

impl FromStr for MacAddr {
    type Err = Error;

    /// Parses six two-digit hex octets separated by `:` (or `-`).
    fn from_str(s: &str) -> Result<Self> {
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for o in out.iter_mut() {
            let p = parts.next().ok_or(Error::Malformed)?;
            // from_str_radix would accept a sign or a single digit; be strict.
            if p.len() != 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::Malformed);
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| Error::Malformed)?;
        }
        if parts.next().is_some() {
            return Err(Error::Malformed);
        }
        Ok(MacAddr(out))
    }
}

mod field {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const ETHERTYPE: usize = 12;
}

/// A view of an Ethernet II frame (no FCS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Length of the header: two addresses and the EtherType.
    pub const HEADER_LEN: usize = 14;

    /// Wraps `buffer` without checking it; getters panic if it is shorter
    /// than [`Self::HEADER_LEN`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// `Err(Truncated)` if the buffer cannot hold the header.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Always [`Self::HEADER_LEN`]; present for symmetry with other views.
    #[inline]
    pub const fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr(read_array(self.buffer.as_ref(), field::DST))
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr(read_array(self.buffer.as_ref(), field::SRC))
    }

    /// EtherType (may be a VLAN TPID; see [`crate::VlanTag`]).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::DST..field::DST + 6].copy_from_slice(&a.0);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 6].copy_from_slice(&a.0);
    }

    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, t);
    }

    /// Mutable payload.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[Self::HEADER_LEN..]
    }
}

impl<'a> EthernetFrame<&'a [u8]> {
    /// [`Self::payload`] borrowed from the underlying buffer instead of the
    /// view, so it outlives the view (handy when walking header chains).
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let start = Self::HEADER_LEN;
        let end = self.buffer.len();
        let b: &'a [u8] = self.buffer;
        &b[start..end]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for EthernetFrame<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Ethernet {} > {} type={} len={}",
            self.src_addr(),
            self.dst_addr(),
            EtherTypeDisplay(self.ethertype()),
            self.payload().len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ethernet + IPv4 + UDP DNS query for example.com.
    const FRAME: [u8; 71] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0x39,
        0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x0a, 0x6c, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0xd4, 0x31,
        0x00, 0x35, 0x00, 0x25, 0x9b, 0xff, 0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    #[test]
    fn parse() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.src_addr(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &FRAME[14..]);
        assert_eq!(f.to_string(), "Ethernet 02:00:00:00:00:01 > 02:00:00:00:00:02 type=IPv4 len=57");
        assert_eq!(f.into_payload(), &FRAME[14..]);
        assert_eq!(f.into_inner().len(), 71);
    }

    #[test]
    fn emit_round_trip() {
        let mut buf = [0u8; 71];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(MacAddr([2, 0, 0, 0, 0, 2]));
        f.set_src_addr("02:00:00:00:00:01".parse().unwrap());
        f.set_ethertype(ethertype::IPV4);
        f.payload_mut().copy_from_slice(&FRAME[14..]);
        assert_eq!(buf, FRAME);
    }

    #[test]
    fn truncated() {
        assert_eq!(EthernetFrame::new_checked(&FRAME[..13]), Err(Error::Truncated));
        let f = EthernetFrame::new_checked(&FRAME[..14]).unwrap();
        assert!(f.payload().is_empty());
        let f = EthernetFrame::new_checked(&FRAME[..14]).unwrap();
        assert_eq!(f.to_string().split(' ').nth(4), Some("type=IPv4"));
    }

    #[test]
    fn unknown_ethertype_shows_hex() {
        let mut buf = FRAME;
        EthernetFrame::new_unchecked(&mut buf[..]).set_ethertype(0x88cc);
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert!(f.to_string().contains("type=0x88cc"));
        assert_eq!(ethertype::name(ethertype::QINQ), Some("QinQ"));
        assert!(ethertype::is_vlan(0x8100) && ethertype::is_vlan(0x88a8));
        assert!(!ethertype::is_vlan(0x0800));
    }

    #[test]
    #[should_panic]
    fn unchecked_short_buffer_panics() {
        let f = EthernetFrame::new_unchecked(&FRAME[..10]);
        let _ = f.ethertype();
    }

    #[test]
    fn mac_predicates() {
        let b = MacAddr::BROADCAST;
        assert!(b.is_broadcast() && b.is_multicast() && !b.is_unicast() && !b.is_zero());
        let m = MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]);
        assert!(m.is_multicast() && !m.is_broadcast());
        let u = MacAddr([0x02, 0, 0, 0, 0, 1]);
        assert!(u.is_unicast() && u.is_local());
        assert!(MacAddr::ZERO.is_zero() && MacAddr::default().is_zero());
        assert_eq!(u.as_u64(), 0x0200_0000_0001);
        assert_eq!(b.as_u64(), 0xffff_ffff_ffff);
        assert_eq!(MacAddr::from_bytes(&[1, 2, 3, 4, 5, 6]), MacAddr::from([1, 2, 3, 4, 5, 6]));
        assert_eq!(u.as_bytes(), &[2, 0, 0, 0, 0, 1]);
        let g: Ipv6Addr = "ff02::1:ff00:2".parse().unwrap();
        assert_eq!(MacAddr::from_ipv6_multicast(&g), MacAddr([0x33, 0x33, 0xff, 0x00, 0x00, 0x02]));
    }

    #[test]
    #[should_panic]
    fn mac_from_bytes_wrong_len_panics() {
        let _ = MacAddr::from_bytes(&[1, 2, 3]);
    }

    #[test]
    fn mac_text() {
        let m: MacAddr = "02:00:5E:10:00:ab".parse().unwrap();
        assert_eq!(m, MacAddr([0x02, 0x00, 0x5e, 0x10, 0x00, 0xab]));
        assert_eq!(m.to_string(), "02:00:5e:10:00:ab");
        assert_eq!("02-00-5e-10-00-ab".parse::<MacAddr>(), Ok(m));
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:ab:cd",
            "2:00:5e:10:00:ab",
            "+2:00:5e:10:00:ab",
            "02:00:5e:10:00:zz",
            "02:00-5e:10:00:ab",
            "020:0:5e:10:00:ab",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(Error::Malformed), "{bad:?}");
        }
    }
}
