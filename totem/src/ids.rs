//! Identifiers: node ids, ring ids and message sequence numbers.

use std::fmt;

/// A node's id, as in corosync's `nodelist.node.X.nodeid`. Zero is never a valid id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The sequence number of a message within one ring (Totem's `seq`). Seq 0 means "none yet".
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A ring's identity: its representative and a ring sequence number that only grows.
///
/// Ordered by `seq` first, so a newer ring always compares greater.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RingId {
    /// The ring sequence number; strictly increasing across rings and restarts of a node.
    pub seq: u64,
    /// The representative: the lowest node id of the ring's members.
    pub representative: NodeId,
}

impl fmt::Display for RingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.representative, self.seq)
    }
}
