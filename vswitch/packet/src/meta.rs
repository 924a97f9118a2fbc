//! Per-packet metadata, kept apart from the packet bytes in a parallel
//! cache-aligned array so a node that only needs offsets and interface
//! indices touches one cache line.

/// Bits of [`Meta::flags`].
pub struct MetaFlags;

impl MetaFlags {
    /// The packet is being traced: nodes append a record for it.
    pub const TRACED: u16 = 1 << 0;
    /// `flow_hash` is valid.
    pub const FLOW_HASH_VALID: u16 = 1 << 1;
    /// The packet was replicated (flooded): one of several copies.
    pub const REPLICA: u16 = 1 << 2;
    /// The IPv4 header checksum was already checked (or offloaded).
    pub const L3_CSUM_OK: u16 = 1 << 3;
}

/// Metadata of one packet. 64 bytes, one cache line.
///
/// Offsets (`current`, `l2`, `l3`, `l4`) are from the start of the buffer,
/// so they stay valid when headers are pushed or popped.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Offset of the first byte of packet data.
    pub current: u16,
    /// Bytes of packet data from `current`.
    pub len: u16,
    /// Offset of the Ethernet header.
    pub l2: u16,
    /// Offset of the IP (or ARP) header.
    pub l3: u16,
    /// Offset of the transport header.
    pub l4: u16,
    /// [`MetaFlags`] bits.
    pub flags: u16,
    /// Software interface the packet arrived on.
    pub rx_if: u32,
    /// Software interface the packet leaves by.
    pub tx_if: u32,
    /// VRF (dense index) used by IP lookup.
    pub vrf: u32,
    /// Adjacency chosen by lookup.
    pub adj: u32,
    /// Flow hash (ECMP, policy segment-list choice), when FLOW_HASH_VALID.
    pub flow_hash: u32,
    /// Trace id when TRACED.
    pub trace_id: u32,
    /// Bridge domain index for L2 forwarding.
    pub bd: u16,
    /// Split-horizon group of the rx interface in its bridge domain.
    pub shg: u8,
    /// Position in the current feature arc.
    pub feature: u8,
    /// Node-private scratch words (like VPP's `opaque`): valid only between
    /// the node that writes them and the next node that reads them.
    pub opaque: [u32; 4],
    /// Ownership state checked by the pool (allocated or free).
    pub(crate) state: u8,
    pub(crate) _pad: [u8; 3],
}

const _: () = assert!(core::mem::size_of::<Meta>() == 64);
