//! A short notice about a ring: merge detection beacons and token hold cancels.

use prost::Message;

use super::WireRingId;

/// Sent by a representative every `merge` interval (merge detection), or by a member that has
/// messages while the representative holds the token (token hold cancel).
#[derive(Clone, PartialEq, Message)]
pub struct RingNotice {
    /// The sender.
    #[prost(uint32, tag = "1")]
    pub sender: u32,
    /// The sender's ring.
    #[prost(message, optional, tag = "2")]
    pub ring_id: Option<WireRingId>,
}
