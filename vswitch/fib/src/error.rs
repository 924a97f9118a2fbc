//! The crate's error type.

use std::fmt;

/// Everything that can go wrong when changing the FIB. Every operation that
/// returns an error has changed nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibError {
    /// A route value (load-balance / next-hop index) does not fit the entry
    /// encoding of the table.
    ValueTooLarge { value: u32, max: u32 },
    /// The IPv4 table has no free tbl8 group (all are in use or still in
    /// quarantine waiting for readers to pass a quiescent point).
    Tbl8Exhausted { max_groups: u32 },
    /// The IPv6 table has no free stride group.
    Ip6GroupsExhausted { max_groups: u32 },
    /// The IPv6 table has no free single-prefix record.
    Ip6RecordsExhausted { max_records: u32 },
    /// A VRF index at or beyond the configured maximum.
    VrfOutOfRange { vrf: u32, max_vrfs: u32 },
    /// The VRF index is in range but the VRF was never added.
    NoSuchVrf { vrf: u32 },
    /// All adjacency slots are in use (or in quarantine).
    AdjacenciesExhausted { max: u32 },
    /// The adjacency index is not a live adjacency.
    InvalidAdjacency { index: u32 },
    /// An adjacency record whose `rewrite_len` exceeds the rewrite buffer.
    RewriteTooLong { len: u8, max: u8 },
    /// All load-balance objects are in use (or in quarantine).
    LoadBalancesExhausted { max: u32 },
    /// No room left for load-balance buckets.
    BucketsExhausted { max: u32 },
    /// The load-balance index is not a live load-balance object.
    InvalidLoadBalance { index: u32 },
    /// A load-balance object needs at least one path with a non-zero weight.
    NoPaths,
    /// More paths than buckets.
    TooManyPaths { paths: usize, max: usize },
    /// A configuration value out of its documented range.
    InvalidConfig { what: &'static str },
}

impl fmt::Display for FibError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FibError::ValueTooLarge { value, max } => {
                write!(f, "route value {value} too large (max {max})")
            }
            FibError::Tbl8Exhausted { max_groups } => {
                write!(f, "IPv4 tbl8 groups exhausted ({max_groups} configured, all in use or quarantined)")
            }
            FibError::Ip6GroupsExhausted { max_groups } => {
                write!(f, "IPv6 stride groups exhausted ({max_groups} configured, all in use or quarantined)")
            }
            FibError::Ip6RecordsExhausted { max_records } => {
                write!(f, "IPv6 single-prefix records exhausted ({max_records} configured, all in use or quarantined)")
            }
            FibError::VrfOutOfRange { vrf, max_vrfs } => {
                write!(f, "VRF {vrf} out of range (max VRFs {max_vrfs})")
            }
            FibError::NoSuchVrf { vrf } => write!(f, "VRF {vrf} does not exist"),
            FibError::AdjacenciesExhausted { max } => {
                write!(f, "adjacency table full ({max} slots)")
            }
            FibError::InvalidAdjacency { index } => {
                write!(f, "adjacency index {index} is not in use")
            }
            FibError::RewriteTooLong { len, max } => {
                write!(f, "adjacency rewrite length {len} exceeds {max} bytes")
            }
            FibError::LoadBalancesExhausted { max } => {
                write!(f, "load-balance table full ({max} objects)")
            }
            FibError::BucketsExhausted { max } => {
                write!(f, "load-balance bucket space full ({max} buckets)")
            }
            FibError::InvalidLoadBalance { index } => {
                write!(f, "load-balance index {index} is not in use")
            }
            FibError::NoPaths => write!(f, "load-balance needs at least one path with non-zero weight"),
            FibError::TooManyPaths { paths, max } => {
                write!(f, "{paths} paths exceed the maximum of {max} per load-balance")
            }
            FibError::InvalidConfig { what } => write!(f, "invalid configuration: {what}"),
        }
    }
}

impl std::error::Error for FibError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_problem() {
        let s = FibError::ValueTooLarge { value: 1 << 24, max: (1 << 24) - 1 }.to_string();
        assert!(s.contains("too large") && s.contains("16777216"), "{s}");
        assert!(FibError::Tbl8Exhausted { max_groups: 4 }.to_string().contains("tbl8"));
        assert!(FibError::VrfOutOfRange { vrf: 9, max_vrfs: 8 }.to_string().contains("VRF 9"));
        assert!(FibError::NoPaths.to_string().contains("path"));
    }
}
