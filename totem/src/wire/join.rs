//! The join message of the gather state (Totem paper, section 4.1).

use prost::Message;

/// A node's view while gathering: whom it believes alive and whom it has given up on.
#[derive(Clone, PartialEq, Message)]
pub struct Join {
    /// The sender.
    #[prost(uint32, tag = "1")]
    pub sender: u32,
    /// The proc set: nodes the sender wants in the new ring (sorted).
    #[prost(uint32, repeated, tag = "2")]
    pub proc_set: Vec<u32>,
    /// The fail set: nodes the sender has declared failed (sorted).
    #[prost(uint32, repeated, tag = "3")]
    pub fail_set: Vec<u32>,
    /// The highest ring seq the sender knows; a new ring's seq exceeds every member's.
    #[prost(uint64, tag = "4")]
    pub ring_seq: u64,
}
