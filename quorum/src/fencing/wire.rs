//! What members multicast about fencing, in total order: a manual fence request, a member's
//! arrival in a ring, a claim to run a victim's agents in one ring, and a completed fence. prost-encoded with a version
//! field; Totem's frame already carries the crc32.

use prost::Message;

/// Version of [`FenceMessage`]; a message of another version is dropped.
pub const FENCE_WIRE_VERSION: u32 = 1;

/// The one message type of the fencing service.
#[derive(Clone, PartialEq, Message)]
pub struct FenceMessage {
    /// [`FENCE_WIRE_VERSION`].
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// What it carries.
    #[prost(oneof = "Body", tags = "2, 3, 4, 5")]
    pub body: Option<Body>,
}

/// The body of a [`FenceMessage`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Body {
    /// An operator asked for a fence (fence_node) on the sender.
    #[prost(message, tag = "2")]
    Request(Request),
    /// The sender offers to run the agents for a victim in one ring; the first claim
    /// delivered in that ring wins.
    #[prost(message, tag = "3")]
    Claim(Claim),
    /// The sender fenced a node, or an operator acknowledged it there.
    #[prost(message, tag = "4")]
    Done(Done),
    /// The sender installed the ring: everything it multicast before is delivered.
    #[prost(message, tag = "5")]
    Sync(Sync),
}

/// The sender's first fencing message in the ring `(ring_seq, ring_rep)`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Sync {
    /// The ring id's seq.
    #[prost(uint64, tag = "1")]
    pub ring_seq: u64,
    /// The ring id's representative.
    #[prost(uint32, tag = "2")]
    pub ring_rep: u32,
}

/// A manual fence of `node_id`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Request {
    /// The node to fence.
    #[prost(uint32, tag = "1")]
    pub node_id: u32,
}

/// A claim on victim `node_id` in the ring `(ring_seq, ring_rep)`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Claim {
    /// The victim.
    #[prost(uint32, tag = "1")]
    pub node_id: u32,
    /// The ring id's seq.
    #[prost(uint64, tag = "2")]
    pub ring_seq: u64,
    /// The ring id's representative.
    #[prost(uint32, tag = "3")]
    pub ring_rep: u32,
}

/// `node_id` is fenced.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Done {
    /// The node.
    #[prost(uint32, tag = "1")]
    pub node_id: u32,
    /// The method that succeeded, or `acknowledged`.
    #[prost(string, tag = "2")]
    pub by: String,
}

pub use crate::wire::DecodeError;

impl FenceMessage {
    /// The bytes of `body` at the current version.
    pub fn encode_body(body: Body) -> Vec<u8> {
        FenceMessage { version: FENCE_WIRE_VERSION, body: Some(body) }.encode_to_vec()
    }

    /// Decodes and checks the version; never panics.
    pub fn decode_body(bytes: &[u8]) -> Result<Body, DecodeError> {
        crate::wire::decode_body(bytes, FENCE_WIRE_VERSION, |m: FenceMessage| (m.version, m.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body() -> impl Strategy<Value = Body> {
        prop_oneof![
            any::<u32>().prop_map(|node_id| Body::Request(Request { node_id })),
            (any::<u32>(), any::<u64>(), any::<u32>())
                .prop_map(|(node_id, ring_seq, ring_rep)| Body::Claim(Claim { node_id, ring_seq, ring_rep })),
            (any::<u32>(), ".{0,20}").prop_map(|(node_id, by)| Body::Done(Done { node_id, by })),
            (any::<u64>(), any::<u32>())
                .prop_map(|(ring_seq, ring_rep)| Body::Sync(Sync { ring_seq, ring_rep })),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(b in body()) {
            prop_assert_eq!(FenceMessage::decode_body(&FenceMessage::encode_body(b.clone())), Ok(b));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = FenceMessage::decode_body(&bytes);
        }
    }

    #[test]
    fn other_versions_and_empty_messages_are_refused() {
        let m = FenceMessage { version: 2, body: None }.encode_to_vec();
        assert_eq!(FenceMessage::decode_body(&m), Err(DecodeError::Version(2)));
        let m = FenceMessage { version: FENCE_WIRE_VERSION, body: None }.encode_to_vec();
        assert_eq!(FenceMessage::decode_body(&m), Err(DecodeError::Empty));
        assert_eq!(FenceMessage::decode_body(&[0xff]), Err(DecodeError::Malformed));
    }
}
