//! The messages nodes multicast in total order (corosync's `req_exec_quorum_nodeinfo` and
//! `req_exec_quorum_reconfigure`), prost-encoded with a version field. Totem's frame already
//! carries the crc32.

use prost::Message;

/// Version of [`QuorumMessage`]; a message of another version is dropped.
pub const QUORUM_WIRE_VERSION: u32 = 1;

/// Node flag: the sender is quorate (`NODE_FLAGS_QUORATE`).
pub const FLAG_QUORATE: u32 = 1;
/// Node flag: the sender still waits for all nodes (`NODE_FLAGS_WFASTATUS`).
pub const FLAG_WAIT_FOR_ALL: u32 = 4;
/// Node flag: the sender has not yet been in a ring with another node (`NODE_FLAGS_FIRST`).
pub const FLAG_FIRST: u32 = 8;
/// Node flag (not in corosync): with last_man_standing, the sender started and has not been
/// quorate since; it may have forgotten a partition that lowered the expected votes, so its
/// votes count only once it is quorate or all the configured votes are present.
pub const FLAG_FRESH: u32 = 1 << 16;

/// What a node says of itself on every new ring.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct NodeInfo {
    /// The node this is about: always the sender.
    #[prost(uint32, tag = "1")]
    pub node_id: u32,
    /// Its votes.
    #[prost(uint32, tag = "2")]
    pub votes: u32,
    /// Its expected votes.
    #[prost(uint32, tag = "3")]
    pub expected_votes: u32,
    /// `FLAG_*` bits.
    #[prost(uint32, tag = "4")]
    pub flags: u32,
    /// The partition last_man_standing last set the expected votes to, as the sender knows
    /// it; none while the configured expected votes hold. Not in corosync (see `Votequorum`).
    #[prost(message, optional, tag = "5")]
    pub lms: Option<LmsPartition>,
}

/// A partition whose member count last_man_standing made the expected votes, and the ring
/// that did it (newer rings win).
#[derive(Clone, PartialEq, Eq, Message)]
pub struct LmsPartition {
    /// `RingId::seq` of that ring.
    #[prost(uint64, tag = "1")]
    pub ring_seq: u64,
    /// `RingId::representative` of that ring.
    #[prost(uint32, tag = "2")]
    pub ring_representative: u32,
    /// Its members, sorted; at most [`LMS_MEMBERS_MAX`].
    #[prost(uint32, repeated, tag = "3")]
    pub members: Vec<u32>,
}

/// Most members an [`LmsPartition`] may list; a longer one is dropped as malformed.
pub const LMS_MEMBERS_MAX: usize = 1024;

/// A run-time change every node applies in the same order (`corosync-quorumtool -e / -v`).
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Reconfigure {
    /// [`RECONFIGURE_EXPECTED_VOTES`], [`RECONFIGURE_NODE_VOTES`] or [`RECONFIGURE_CANCEL_WAIT_FOR_ALL`].
    #[prost(uint32, tag = "1")]
    pub param: u32,
    /// The node whose votes change (for node votes).
    #[prost(uint32, tag = "2")]
    pub node_id: u32,
    /// The new value.
    #[prost(uint32, tag = "3")]
    pub value: u32,
}

/// `Reconfigure::param`: set every member's expected votes.
pub const RECONFIGURE_EXPECTED_VOTES: u32 = 1;
/// `Reconfigure::param`: set one node's votes.
pub const RECONFIGURE_NODE_VOTES: u32 = 2;
/// `Reconfigure::param`: stop waiting for all nodes.
pub const RECONFIGURE_CANCEL_WAIT_FOR_ALL: u32 = 3;

/// The one message type of the quorum service.
#[derive(Clone, PartialEq, Message)]
pub struct QuorumMessage {
    /// [`QUORUM_WIRE_VERSION`].
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// What it carries.
    #[prost(oneof = "Body", tags = "2, 3")]
    pub body: Option<Body>,
}

/// The body of a [`QuorumMessage`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Body {
    /// A node's votes, expected votes and flags.
    #[prost(message, tag = "2")]
    NodeInfo(NodeInfo),
    /// A run-time change.
    #[prost(message, tag = "3")]
    Reconfigure(Reconfigure),
}

/// Why bytes are not a quorum (or fencing) message. The message is dropped and counted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not a valid prost encoding.
    #[error("malformed message")]
    Malformed,
    /// A version this node does not speak.
    #[error("message version {0}")]
    Version(u32),
    /// No body.
    #[error("empty message")]
    Empty,
}

/// Decodes a `M` whose version must be `expected`, and takes its body (`parts` splits it into
/// version and body): the rule both services' messages follow. Never panics.
pub(crate) fn decode_body<M: Message + Default, B>(
    bytes: &[u8],
    expected: u32,
    parts: fn(M) -> (u32, Option<B>),
) -> Result<B, DecodeError> {
    let (version, body) = parts(M::decode(bytes).map_err(|_| DecodeError::Malformed)?);
    if version != expected {
        return Err(DecodeError::Version(version));
    }
    body.ok_or(DecodeError::Empty)
}

impl QuorumMessage {
    /// Wraps a body at the current version.
    pub fn new(body: Body) -> Self {
        QuorumMessage { version: QUORUM_WIRE_VERSION, body: Some(body) }
    }

    /// The bytes to multicast.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Decodes and checks the version; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Body, DecodeError> {
        decode_body(bytes, QUORUM_WIRE_VERSION, |m: QuorumMessage| (m.version, m.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body() -> impl Strategy<Value = Body> {
        prop_oneof![
            (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(n, v, e, f)| {
                Body::NodeInfo(NodeInfo { node_id: n, votes: v, expected_votes: e, flags: f, lms: None })
            }),
            (any::<u32>(), any::<u64>(), proptest::collection::vec(any::<u32>(), 0..8)).prop_map(
                |(n, seq, m)| {
                    let lms = LmsPartition { ring_seq: seq, ring_representative: n, members: m };
                    Body::NodeInfo(NodeInfo {
                        node_id: n,
                        votes: 1,
                        expected_votes: 2,
                        flags: 0,
                        lms: Some(lms),
                    })
                }
            ),
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(p, n, v)| Body::Reconfigure(Reconfigure {
                param: p,
                node_id: n,
                value: v
            })),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(b in body()) {
            prop_assert_eq!(QuorumMessage::from_bytes(&QuorumMessage::new(b.clone()).to_bytes()), Ok(b));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = QuorumMessage::from_bytes(&bytes);
        }
    }

    #[test]
    fn other_versions_and_empty_messages_are_refused() {
        let m = QuorumMessage { version: 2, body: None };
        assert_eq!(QuorumMessage::from_bytes(&m.to_bytes()), Err(DecodeError::Version(2)));
        let m = QuorumMessage { version: QUORUM_WIRE_VERSION, body: None };
        assert_eq!(QuorumMessage::from_bytes(&m.to_bytes()), Err(DecodeError::Empty));
        assert_eq!(QuorumMessage::from_bytes(&[0xff]), Err(DecodeError::Malformed));
    }
}
