//! L2: cross-connects, bridge domains, VLAN tag rewrite.
//!
//! The path of a switched frame: ethernet-input → l2-input (tag rewrite,
//! cross-connect or bridge) → [l2-learn] → l2-fwd or l2-flood → l2-output
//! (split horizon, output tag rewrite) → interface-output.

pub mod arp_term;
mod bridge;
pub mod flood;
pub mod fwd;
pub mod input;
pub mod learn;
pub mod mac_table;
pub mod output;
pub mod vtr;

pub use arp_term::{ArpEntry, ArpLearned, ArpTable};
pub use bridge::{BdMember, BridgeDomain};
pub use mac_table::{L2Clock, Learned, MacEntry, MacHit, MacTable, MacTableError, ManualClock};
