//! The ordered multicast packet: application messages packed and fragmented into one seq.

use bytes::Bytes;
use prost::Message;

use super::WireRingId;

/// A piece of an application message. Small messages travel whole (`first` and `last`);
/// large ones are cut into consecutive fragments of one sender.
#[derive(Clone, PartialEq, Message)]
pub struct Fragment {
    /// The first piece of a message.
    #[prost(bool, tag = "1")]
    pub first: bool,
    /// The last piece of a message.
    #[prost(bool, tag = "2")]
    pub last: bool,
    /// The bytes.
    #[prost(bytes = "bytes", tag = "3")]
    pub data: Bytes,
}

/// A multicast packet of one ring, carrying one seq.
#[derive(Clone, PartialEq, Message)]
pub struct Mcast {
    /// The ring that ordered it.
    #[prost(message, optional, tag = "1")]
    pub ring_id: Option<WireRingId>,
    /// Its seq in that ring (1-based).
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    /// The node that multicast it first.
    #[prost(uint32, tag = "3")]
    pub sender: u32,
    /// Safe (true) or agreed delivery, for every fragment inside.
    #[prost(bool, tag = "4")]
    pub safe: bool,
    /// Packed application messages and fragments, in order.
    #[prost(message, repeated, tag = "5")]
    pub fragments: Vec<Fragment>,
    /// In recovery: an old-ring packet re-sent inside the new ring.
    #[prost(message, optional, boxed, tag = "6")]
    pub recovered: Option<Box<Mcast>>,
}

impl Mcast {
    /// Why this packet is not well-formed, if it is not.
    pub fn invalid_reason(&self) -> Option<&'static str> {
        if self.ring_id.is_none() {
            return Some("missing ring_id");
        }
        if self.seq == 0 || self.sender == 0 {
            return Some("seq or sender 0");
        }
        match &self.recovered {
            Some(old) if !self.fragments.is_empty() => {
                let _ = old;
                Some("recovered packet with fragments of its own")
            }
            Some(old) if old.recovered.is_some() || old.ring_id.is_none() => Some("nested recovered packet"),
            Some(old) if old.seq == 0 || old.sender == 0 => Some("recovered seq or sender 0"),
            _ => None,
        }
    }
}
