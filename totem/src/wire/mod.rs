//! The wire format: prost messages in a frame of `[version][kind][body][crc32]`.
//!
//! The crc32 (crc32fast, little endian) covers everything before it. Decoding never panics on
//! any bytes; it returns a typed [`DecodeError`].

mod commit_token;
mod join;
mod mcast;
mod ring_notice;
mod token;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;

pub use commit_token::{CommitEntry, CommitToken};
pub use join::Join;
pub use mcast::{Fragment, Mcast};
pub use ring_notice::RingNotice;
pub use token::Token;

use crate::ids::RingId;

/// Version byte of every packet.
pub const WIRE_VERSION: u8 = 1;

/// Bytes of the frame around the prost body: version, kind, crc32.
pub const FRAME_OVERHEAD: usize = 6;

/// A ring id on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct WireRingId {
    /// Representative node id.
    #[prost(uint32, tag = "1")]
    pub representative: u32,
    /// Ring sequence number.
    #[prost(uint64, tag = "2")]
    pub seq: u64,
}

impl From<RingId> for WireRingId {
    fn from(r: RingId) -> Self {
        WireRingId { representative: r.representative.0, seq: r.seq }
    }
}

impl From<WireRingId> for RingId {
    fn from(r: WireRingId) -> Self {
        RingId { representative: crate::ids::NodeId(r.representative), seq: r.seq }
    }
}

/// Why a datagram could not be decoded. Each variant is counted by the engine and the packet dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the frame.
    #[error("packet too short ({0} bytes)")]
    TooShort(usize),
    /// The crc32 does not match.
    #[error("bad checksum")]
    BadChecksum,
    /// A version this build does not speak.
    #[error("unsupported wire version {0}")]
    UnsupportedVersion(u8),
    /// An unknown message kind.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// The body is not a valid message of its kind.
    #[error("malformed {kind} message: {reason}")]
    Malformed {
        /// The message kind.
        kind: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// Any Totem packet.
#[derive(Clone, Debug, PartialEq)]
pub enum Packet {
    /// Ordered multicast packet (regular, or a recovered old-ring packet).
    Mcast(Mcast),
    /// The ordering token.
    Token(Token),
    /// Gather-state join.
    Join(Join),
    /// The commit token that installs a new ring.
    CommitToken(CommitToken),
    /// A representative's "my ring is here" beacon, for merge detection.
    MergeDetect(RingNotice),
    /// A node with messages to send asks the representative to stop holding the token.
    TokenHoldCancel(RingNotice),
    /// A member leaves its ring cleanly (shutdown): the others fail it at once.
    Leave(RingNotice),
}

const KIND_MCAST: u8 = 1;
const KIND_TOKEN: u8 = 2;
const KIND_JOIN: u8 = 3;
const KIND_COMMIT_TOKEN: u8 = 4;
const KIND_MERGE_DETECT: u8 = 5;
const KIND_TOKEN_HOLD_CANCEL: u8 = 6;
const KIND_LEAVE: u8 = 7;

impl Packet {
    /// Encodes the packet into a frame.
    pub fn encode(&self) -> Bytes {
        match self {
            Packet::Mcast(m) => frame(KIND_MCAST, m),
            Packet::Token(m) => frame(KIND_TOKEN, m),
            Packet::Join(m) => frame(KIND_JOIN, m),
            Packet::CommitToken(m) => frame(KIND_COMMIT_TOKEN, m),
            Packet::MergeDetect(m) => frame(KIND_MERGE_DETECT, m),
            Packet::TokenHoldCancel(m) => frame(KIND_TOKEN_HOLD_CANCEL, m),
            Packet::Leave(m) => frame(KIND_LEAVE, m),
        }
    }

    /// Decodes a frame. Byte fields of the result share `datagram`'s buffer (no copy).
    pub fn decode(datagram: Bytes) -> Result<Packet, DecodeError> {
        let len = datagram.len();
        if len < FRAME_OVERHEAD {
            return Err(DecodeError::TooShort(len));
        }
        let (covered, crc) = datagram.split_at(len - 4);
        let expected = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(covered) != expected {
            return Err(DecodeError::BadChecksum);
        }
        if covered[0] != WIRE_VERSION {
            return Err(DecodeError::UnsupportedVersion(covered[0]));
        }
        let kind = covered[1];
        let body = datagram.slice(2..len - 4);
        let packet = match kind {
            KIND_MCAST => Packet::Mcast(body_of(body, "mcast")?),
            KIND_TOKEN => Packet::Token(body_of(body, "token")?),
            KIND_JOIN => Packet::Join(body_of(body, "join")?),
            KIND_COMMIT_TOKEN => Packet::CommitToken(body_of(body, "commit_token")?),
            KIND_MERGE_DETECT => Packet::MergeDetect(body_of(body, "merge_detect")?),
            KIND_TOKEN_HOLD_CANCEL => Packet::TokenHoldCancel(body_of(body, "token_hold_cancel")?),
            KIND_LEAVE => Packet::Leave(body_of(body, "leave")?),
            other => return Err(DecodeError::UnknownKind(other)),
        };
        packet.validate()?;
        Ok(packet)
    }

    /// Structural checks prost cannot express: required fields and bounds.
    fn validate(&self) -> Result<(), DecodeError> {
        let fail = |kind: &'static str, reason: &str| {
            Err(DecodeError::Malformed { kind, reason: reason.to_string() })
        };
        match self {
            Packet::Mcast(m) => {
                if let Some(reason) = m.invalid_reason() {
                    return fail("mcast", reason);
                }
            }
            Packet::Token(t) => {
                if t.ring_id.is_none() {
                    return fail("token", "missing ring_id");
                }
            }
            Packet::Join(j) => {
                if j.sender == 0 {
                    return fail("join", "sender 0");
                }
            }
            Packet::CommitToken(c) => {
                if c.ring_id.is_none() {
                    return fail("commit_token", "missing ring_id");
                }
                if c.members.is_empty() || c.members.len() != c.entries.len() {
                    return fail("commit_token", "members and entries differ in length");
                }
                if c.entries.iter().any(|e| e.filled && e.old_ring_id.is_none()) {
                    return fail("commit_token", "filled entry without old ring id");
                }
            }
            Packet::MergeDetect(n) | Packet::TokenHoldCancel(n) | Packet::Leave(n) => {
                if n.ring_id.is_none() || n.sender == 0 {
                    return fail("ring_notice", "missing ring_id or sender");
                }
            }
        }
        Ok(())
    }
}

fn frame<M: Message>(kind: u8, msg: &M) -> Bytes {
    let mut buf = BytesMut::with_capacity(msg.encoded_len() + FRAME_OVERHEAD);
    buf.put_u8(WIRE_VERSION);
    buf.put_u8(kind);
    // Encoding into a BytesMut only fails for lack of capacity, and BytesMut grows.
    msg.encode(&mut buf).expect("BytesMut grows on demand");
    let crc = crc32fast::hash(&buf);
    buf.put_u32_le(crc);
    buf.freeze()
}

fn body_of<M: Message + Default>(body: Bytes, kind: &'static str) -> Result<M, DecodeError> {
    M::decode(body).map_err(|e| DecodeError::Malformed { kind, reason: e.to_string() })
}

#[cfg(test)]
mod tests;
