//! The node trait, its next arcs and its error codes.

use crate::cx::{Cx, RawCx};
use vswitch_packet::PacketId;

/// A node's next arcs: an enum whose variants name the next nodes.
/// Declare one with [`next_arcs!`](crate::next_arcs).
pub trait NextArc: Copy + 'static {
    /// Next node names, by arc index.
    const NAMES: &'static [&'static str];
    /// The arc index.
    fn index(self) -> usize;
}

/// A node's error (and event) counters: an enum whose variants describe
/// them. Declare one with [`errors!`](crate::errors).
pub trait ErrorCode: Copy + 'static {
    /// Descriptions, by counter index, as `show errors` prints them.
    const DESCRIPTIONS: &'static [&'static str];
    /// The counter index.
    fn index(self) -> usize;
}

/// A graph node: processes whole vectors of packets.
///
/// `S` is the shared read-only state the worker hands every node for one
/// dispatch (its configuration snapshot).
pub trait Node<S>: Send + 'static {
    /// The node's name: what runtime stats, errors and traces print.
    const NAME: &'static str;
    /// Where packets go next.
    type Next: NextArc;
    /// What the node counts.
    type Error: ErrorCode;

    /// Processes one vector: every packet must be enqueued to a next node,
    /// transmitted, or dropped.
    fn process(&mut self, cx: &mut Cx<'_, S, Self>, vector: &[PacketId])
    where
        Self: Sized;
}

/// A node with its types erased, as the graph stores it.
pub trait DynNode<S>: Send {
    /// The node's name.
    fn name(&self) -> &'static str;
    /// Next node names by arc index.
    fn next_names(&self) -> &'static [&'static str];
    /// Error descriptions by counter index.
    fn error_names(&self) -> &'static [&'static str];
    /// Processes a vector.
    fn process_raw(&mut self, raw: RawCx<'_, S>, vector: &[PacketId]);
    /// For reconfiguring a node in place.
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

/// A typed node wrapped for the graph.
pub(crate) struct Typed<N>(pub N);

impl<S, N: Node<S>> DynNode<S> for Typed<N> {
    fn name(&self) -> &'static str {
        N::NAME
    }
    fn next_names(&self) -> &'static [&'static str] {
        <N::Next as NextArc>::NAMES
    }
    fn error_names(&self) -> &'static [&'static str] {
        <N::Error as ErrorCode>::DESCRIPTIONS
    }
    fn process_raw(&mut self, raw: RawCx<'_, S>, vector: &[PacketId]) {
        let mut cx = Cx::new(raw);
        self.0.process(&mut cx, vector);
        cx.flush();
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        &mut self.0
    }
}

/// Declares a node's next arcs.
///
/// ```
/// vswitch_graph::next_arcs! {
///     /// Where ethernet-input sends packets.
///     pub enum EthNext { Ip4 = "ip4-input", Drop = "error-drop" }
/// }
/// use vswitch_graph::NextArc;
/// assert_eq!(EthNext::NAMES, &["ip4-input", "error-drop"]);
/// assert_eq!(EthNext::Drop.index(), 1);
/// ```
#[macro_export]
macro_rules! next_arcs {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $v:ident = $node:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        $vis enum $name { $($(#[$vm])* $v),+ }
        impl $crate::NextArc for $name {
            const NAMES: &'static [&'static str] = &[$($node),+];
            #[inline(always)]
            fn index(self) -> usize { self as usize }
        }
    };
}

/// Declares a node's error counters.
///
/// ```
/// vswitch_graph::errors! {
///     pub enum EthError { Truncated = "frame too short", Unknown = "unknown ethertype" }
/// }
/// use vswitch_graph::ErrorCode;
/// assert_eq!(EthError::DESCRIPTIONS[EthError::Unknown.index()], "unknown ethertype");
/// ```
#[macro_export]
macro_rules! errors {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $v:ident = $desc:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        $vis enum $name { $($(#[$vm])* $v),+ }
        impl $crate::ErrorCode for $name {
            const DESCRIPTIONS: &'static [&'static str] = &[$($desc),+];
            #[inline(always)]
            fn index(self) -> usize { self as usize }
        }
    };
}

/// Next arcs of a node that has none (a sink).
#[derive(Clone, Copy, Debug)]
pub enum NoNext {}
impl NextArc for NoNext {
    const NAMES: &'static [&'static str] = &[];
    fn index(self) -> usize {
        match self {}
    }
}

/// Errors of a node that counts nothing.
#[derive(Clone, Copy, Debug)]
pub enum NoErrors {}
impl ErrorCode for NoErrors {
    const DESCRIPTIONS: &'static [&'static str] = &[];
    fn index(self) -> usize {
        match self {}
    }
}
