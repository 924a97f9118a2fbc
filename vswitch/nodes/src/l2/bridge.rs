//! A bridge domain: its settings and members, shared by all workers.

use crate::tables::{BridgeDomainConfig, SwIf};

/// A member interface of a bridge domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BdMember {
    /// The interface.
    pub sw_if: SwIf,
    /// Its split-horizon group (0: none).
    pub shg: u8,
}

/// A bridge domain.
#[derive(Debug)]
pub struct BridgeDomain {
    /// Settings.
    pub config: BridgeDomainConfig,
    /// Members, in flooding order (the BVI included when there is one).
    pub members: Vec<BdMember>,
}

impl BridgeDomain {
    /// A bridge domain with these settings and members.
    pub fn new(config: BridgeDomainConfig, members: Vec<BdMember>) -> Self {
        BridgeDomain { config, members }
    }
}
