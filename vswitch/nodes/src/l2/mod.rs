//! L2: cross-connects, bridge domains, VLAN tag rewrite.
//!
//! The path of a switched frame: ethernet-input → l2-input (tag rewrite,
//! cross-connect or bridge) → [l2-learn] → l2-fwd or l2-flood → l2-output
//! (split horizon, output tag rewrite) → interface-output.

mod bridge;
pub mod input;
pub mod output;
pub mod vtr;

pub use bridge::{BdMember, BridgeDomain};
