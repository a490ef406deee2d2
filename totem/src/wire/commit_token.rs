//! The commit token (Totem paper, section 4.2): circulates twice to install a new ring.

use prost::Message;

use super::WireRingId;

/// One member's state from its old ring, filled on the commit token's first rotation.
#[derive(Clone, PartialEq, Message)]
pub struct CommitEntry {
    /// Whether the member has filled in its entry.
    #[prost(bool, tag = "1")]
    pub filled: bool,
    /// The member's last regular ring.
    #[prost(message, optional, tag = "2")]
    pub old_ring_id: Option<WireRingId>,
    /// Its `my_aru` in that ring.
    #[prost(uint64, tag = "3")]
    pub aru: u64,
    /// The highest seq it received in that ring.
    #[prost(uint64, tag = "4")]
    pub high_seq: u64,
    /// The highest seq it delivered in that ring.
    #[prost(uint64, tag = "5")]
    pub high_delivered: u64,
}

/// The commit token.
#[derive(Clone, PartialEq, Message)]
pub struct CommitToken {
    /// The new ring.
    #[prost(message, optional, tag = "1")]
    pub ring_id: Option<WireRingId>,
    /// Members of the new ring, sorted; the token travels in this order.
    #[prost(uint32, repeated, tag = "2")]
    pub members: Vec<u32>,
    /// One entry per member, in the same order.
    #[prost(message, repeated, tag = "3")]
    pub entries: Vec<CommitEntry>,
    /// Which rotation this is: 1 (collecting entries) or 2 (entering recovery).
    #[prost(uint32, tag = "4")]
    pub rotation: u32,
    /// Position of the holder in `members`.
    #[prost(uint32, tag = "5")]
    pub index: u32,
}
