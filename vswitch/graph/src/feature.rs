//! Feature arcs: per-interface chains of optional nodes.
//!
//! An arc (say `ip4-unicast`) lists every feature node that may run on it,
//! in order, and its end node (`ip4-lookup`). Each interface has its own
//! chain of the features enabled on it, always ending at the end node, so
//! an interface with no feature goes straight to the end: the cost of an
//! unused feature is nothing, that of the arc one table lookup.

use crate::graph::GraphError;

/// Index of a feature arc in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureArcId(pub(crate) u16);

pub(crate) struct Arc {
    pub name: &'static str,
    /// (feature name, node index), in arc order.
    pub features: Vec<(&'static str, u16)>,
    pub end: u16,
    /// Enabled features per interface, as a bit set over `features`.
    pub enabled: Vec<u64>,
    /// Node chain per interface, ending with `end`.
    pub chains: Vec<Box<[u16]>>,
}

/// All feature arcs of a graph.
#[derive(Default)]
pub struct FeatureArcs {
    pub(crate) arcs: Vec<Arc>,
}

impl FeatureArcs {
    /// The arc with this name.
    pub fn arc(&self, name: &str) -> Option<FeatureArcId> {
        self.arcs.iter().position(|a| a.name == name).map(|i| FeatureArcId(i as u16))
    }

    #[inline(always)]
    pub(crate) fn first(&self, arc: FeatureArcId, sw_if: u32) -> u16 {
        self.at(arc, sw_if, 0)
    }

    #[inline(always)]
    pub(crate) fn at(&self, arc: FeatureArcId, sw_if: u32, pos: usize) -> u16 {
        let a = &self.arcs[arc.0 as usize];
        match a.chains.get(sw_if as usize) {
            // Past the end (a feature called feature_next twice) is the end.
            Some(chain) => chain.get(pos).copied().unwrap_or(a.end),
            None => a.end,
        }
    }

    /// Turns a feature on or off for an interface.
    pub fn set(&mut self, arc: FeatureArcId, sw_if: u32, feature: &str, on: bool) -> Result<(), GraphError> {
        let a = self.arcs.get_mut(arc.0 as usize).ok_or(GraphError::UnknownFeatureArc(arc.0))?;
        let bit = a
            .features
            .iter()
            .position(|(n, _)| *n == feature)
            .ok_or_else(|| GraphError::UnknownFeature { arc: a.name, feature: feature.to_string() })?;
        let i = sw_if as usize;
        if a.enabled.len() <= i {
            a.enabled.resize(i + 1, 0);
            a.chains.resize(i + 1, Box::new([a.end]));
        }
        if on {
            a.enabled[i] |= 1 << bit;
        } else {
            a.enabled[i] &= !(1 << bit);
        }
        let mask = a.enabled[i];
        let chain: Vec<u16> = a
            .features
            .iter()
            .enumerate()
            .filter(|(b, _)| mask & (1 << b) != 0)
            .map(|(_, (_, n))| *n)
            .chain(std::iter::once(a.end))
            .collect();
        a.chains[i] = chain.into_boxed_slice();
        Ok(())
    }

    /// Names of the features enabled on an interface, in arc order.
    pub fn enabled(&self, arc: FeatureArcId, sw_if: u32) -> Vec<&'static str> {
        let Some(a) = self.arcs.get(arc.0 as usize) else { return Vec::new() };
        let mask = a.enabled.get(sw_if as usize).copied().unwrap_or(0);
        a.features.iter().enumerate().filter(|(b, _)| mask & (1 << b) != 0).map(|(_, (n, _))| *n).collect()
    }
}
