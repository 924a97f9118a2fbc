//! IEEE 802.1Q / 802.1ad VLAN tags.

use core::fmt;

use crate::eth::EtherTypeDisplay;
use crate::field::{read_u16, write_u16};
use crate::{Error, Result};

mod field {
    pub const TCI: usize = 0;
    pub const ETHERTYPE: usize = 2;
}

/// A view of the 4 bytes that follow a 0x8100/0x88a8 EtherType: the tag
/// control information and the encapsulated EtherType. The payload is the
/// rest of the buffer, which may start with another tag (QinQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// TCI plus EtherType.
    pub const HEADER_LEN: usize = 4;

    /// Wraps `buffer` without checking it; getters panic if it is shorter
    /// than [`Self::HEADER_LEN`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanTag { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let t = Self::new_unchecked(buffer);
        t.check_len()?;
        Ok(t)
    }

    /// `Err(Truncated)` if the buffer cannot hold the tag.
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

    /// The raw 16-bit tag control information.
    #[inline]
    pub fn tci(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TCI)
    }

    /// Priority code point (3 bits).
    #[inline]
    pub fn pcp(&self) -> u8 {
        self.buffer.as_ref()[field::TCI] >> 5
    }

    /// Drop eligible indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.buffer.as_ref()[field::TCI] & 0x10 != 0
    }

    /// VLAN identifier (12 bits).
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The encapsulated EtherType.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Everything after the tag.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    /// Sets the priority code point (low 3 bits of `pcp`).
    #[inline]
    pub fn set_pcp(&mut self, pcp: u8) {
        let b = &mut self.buffer.as_mut()[field::TCI];
        *b = (*b & 0x1f) | ((pcp & 0x07) << 5);
    }

    /// Sets the drop eligible indicator.
    #[inline]
    pub fn set_dei(&mut self, dei: bool) {
        let b = &mut self.buffer.as_mut()[field::TCI];
        *b = (*b & !0x10) | if dei { 0x10 } else { 0 };
    }

    /// Sets the VLAN identifier (low 12 bits of `vid`).
    #[inline]
    pub fn set_vid(&mut self, vid: u16) {
        let tci = (self.tci() & 0xf000) | (vid & 0x0fff);
        write_u16(self.buffer.as_mut(), field::TCI, tci);
    }

    /// Sets the encapsulated EtherType.
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

impl<'a> VlanTag<&'a [u8]> {
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

impl<T: AsRef<[u8]>> fmt::Display for VlanTag<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VLAN vid={} pcp={} dei={} type={}",
            self.vid(),
            self.pcp(),
            u8::from(self.dei()),
            EtherTypeDisplay(self.ethertype())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ethertype, EthernetFrame};

    // QinQ: S-tag vid 200, C-tag pcp 3 dei 1 vid 100, then IPv4 ICMP echo.
    const QINQ: [u8; 58] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0xa8, 0x00, 0xc8, 0x81, 0x00,
        0x70, 0x64, 0x08, 0x00, 0x45, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x0a, 0x91, 0x0a, 0x00,
        0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64,
        0x65, 0x66, 0x67, 0x68,
    ];

    #[test]
    fn parse_tag_chain() {
        let eth = EthernetFrame::new_checked(&QINQ[..]).unwrap();
        assert_eq!(eth.ethertype(), ethertype::QINQ);
        let outer = VlanTag::new_checked(eth.payload()).unwrap();
        assert_eq!((outer.vid(), outer.pcp(), outer.dei()), (200, 0, false));
        assert_eq!(outer.ethertype(), ethertype::VLAN);
        assert_eq!(outer.to_string(), "VLAN vid=200 pcp=0 dei=0 type=VLAN");
        let inner = VlanTag::new_checked(outer.payload()).unwrap();
        assert_eq!((inner.vid(), inner.pcp(), inner.dei()), (100, 3, true));
        assert_eq!(inner.tci(), 0x7064);
        assert_eq!(inner.ethertype(), ethertype::IPV4);
        assert_eq!(inner.payload(), &QINQ[22..]);
        // into_payload outlives the views, so a loop can walk the chain.
        let mut rest = eth.into_payload();
        while let Ok(t) = VlanTag::new_checked(rest) {
            rest = t.into_payload();
            if !ethertype::is_vlan(t.ethertype()) {
                break;
            }
        }
        assert_eq!(rest, &QINQ[22..]);
        assert_eq!(inner.to_string(), "VLAN vid=100 pcp=3 dei=1 type=IPv4");
    }

    #[test]
    fn emit_round_trip() {
        let mut buf = [0u8; 8];
        let mut t = VlanTag::new_unchecked(&mut buf[..]);
        t.set_vid(0xf064); // high bits must be ignored
        t.set_pcp(0xfb); // only the low 3 bits (3) are kept
        t.set_dei(true);
        t.set_ethertype(ethertype::IPV4);
        t.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(buf, [0x70, 0x64, 0x08, 0x00, 1, 2, 3, 4]);
        let mut t = VlanTag::new_checked(&mut buf[..]).unwrap();
        t.set_dei(false);
        t.set_pcp(0);
        assert_eq!((t.vid(), t.pcp(), t.dei()), (100, 0, false));
        t.set_vid(4095);
        assert_eq!(t.into_inner()[..2], [0x0f, 0xff]);
    }

    #[test]
    fn truncated() {
        assert_eq!(VlanTag::new_checked(&QINQ[14..17]), Err(Error::Truncated));
        assert!(VlanTag::new_checked(&QINQ[14..18]).unwrap().payload().is_empty());
    }
}
