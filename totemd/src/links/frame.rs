//! The link layer's own datagram frame, in front of every Totem packet and used alone for the
//! link heartbeat.
//!
//! ```text
//! data:       kind=1 | payload (a Totem packet, which carries its own version and crc)
//! ping, pong: kind=2|3 | link id (u8) | sender node id (u32 BE) | timestamp (u64 BE)
//! fragment:   kind=4 | packet id (u32 BE) | index (u16 BE) | count (u16 BE) | part of a payload
//! ```
//!
//! A Totem packet longer than a datagram may be is cut into fragments, all of one length but
//! the last, as knet cuts corosync's packets; the receiver joins them into the payload of a
//! data frame ([`super::Links`] does).
//!
//! A ping carries the sender's `now` in nanoseconds; the pong echoes it unchanged, so the pinger
//! measures the round trip without keeping state per ping (knet's ping does the same). The
//! heartbeat frames have a fixed length of [`HEARTBEAT_LEN`] bytes; anything else is refused.

use bytes::{BufMut, Bytes, BytesMut};
use totem::NodeId;

use super::LinkId;

/// Kind byte of a data frame.
const KIND_DATA: u8 = 1;
/// Kind byte of a ping.
const KIND_PING: u8 = 2;
/// Kind byte of a pong.
const KIND_PONG: u8 = 3;
/// Kind byte of a fragment.
const KIND_FRAGMENT: u8 = 4;

/// Bytes in front of a fragment's part: kind, packet id, index, count.
pub const FRAGMENT_HEADER: usize = 1 + 4 + 2 + 2;

/// Most fragments of one packet: a packet of 64 KiB in datagrams of the smallest `netmtu`
/// the engine takes (416 bytes) needs under 200.
pub const FRAGMENTS_MAX: u16 = 256;

/// Length of a ping or pong frame: kind, link id, node id, timestamp.
pub const HEARTBEAT_LEN: usize = 1 + 1 + 4 + 8;

/// A datagram as sent: a short head (a frame's header, or a whole heartbeat) followed by a
/// body (a Totem packet or a part of one, shared with the packet, not copied). The two go out
/// in one vectored send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The frame's first bytes.
    pub head: Bytes,
    /// The rest.
    pub body: Bytes,
}

impl Datagram {
    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// Whether it has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The datagram's bytes in one buffer (a copy).
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.len());
        buf.put_slice(&self.head);
        buf.put_slice(&self.body);
        buf.freeze()
    }
}

impl From<Bytes> for Datagram {
    fn from(head: Bytes) -> Datagram {
        Datagram { head, body: Bytes::new() }
    }
}

/// A link-layer frame, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A Totem packet for the engine.
    Data(Bytes),
    /// A heartbeat request; answered with a [`Frame::Pong`] echoing `timestamp`.
    Ping(Heartbeat),
    /// The answer to a [`Frame::Ping`].
    Pong(Heartbeat),
    /// A part of a packet cut into fragments.
    Fragment(Fragment),
}

/// A part of a Totem packet too long for one datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// The packet's number among those this sender cut (wrapping).
    pub packet: u32,
    /// Where this part goes, 0 ..= `count - 1`.
    pub index: u16,
    /// How many parts the packet has (at least 2).
    pub count: u16,
    /// The bytes.
    pub part: Bytes,
}

/// The body of a ping or pong.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// The link it was sent on; must match the link (socket) it arrives on.
    pub link: LinkId,
    /// The node that sent this frame.
    pub sender: NodeId,
    /// The pinger's clock in nanoseconds when it sent the ping (echoed by the pong).
    pub timestamp: u64,
}

/// Why a datagram is not a link-layer frame. Peer input: the caller drops and counts it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The datagram has no bytes.
    #[error("empty datagram")]
    Empty,
    /// The kind byte is none of data, ping, pong.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// A ping or pong is not exactly [`HEARTBEAT_LEN`] bytes long.
    #[error("heartbeat frame of {0} bytes, expected {HEARTBEAT_LEN}")]
    BadLength(usize),
    /// A ping or pong names a link above [`LinkId::MAX`].
    #[error("link id {0} out of range")]
    BadLinkId(u8),
    /// A fragment shorter than its header, with an index not below its count, a count below 2
    /// or above [`FRAGMENTS_MAX`], or no bytes.
    #[error("malformed fragment")]
    BadFragment,
}

impl Frame {
    /// The frame as bytes on the wire.
    pub fn encode(&self) -> Bytes {
        match self {
            Frame::Data(payload) => encode_data(payload.clone()).to_bytes(),
            Frame::Ping(hb) => encode_heartbeat(KIND_PING, hb),
            Frame::Pong(hb) => encode_heartbeat(KIND_PONG, hb),
            Frame::Fragment(f) => encode_fragment(f.packet, f.index, f.count, f.part.clone()).to_bytes(),
        }
    }

    /// Parses a datagram. Never panics; a data frame's payload shares `bytes`' buffer.
    pub fn decode(bytes: Bytes) -> Result<Frame, FrameError> {
        let kind = *bytes.first().ok_or(FrameError::Empty)?;
        match kind {
            KIND_DATA => Ok(Frame::Data(bytes.slice(1..))),
            KIND_PING => decode_heartbeat(&bytes).map(Frame::Ping),
            KIND_PONG => decode_heartbeat(&bytes).map(Frame::Pong),
            KIND_FRAGMENT => decode_fragment(bytes).map(Frame::Fragment),
            other => Err(FrameError::UnknownKind(other)),
        }
    }
}

/// A data frame around `payload`, which is not copied.
pub fn encode_data(payload: Bytes) -> Datagram {
    Datagram { head: Bytes::from_static(&[KIND_DATA]), body: payload }
}

/// A fragment frame around `part`, which is not copied.
pub fn encode_fragment(packet: u32, index: u16, count: u16, part: Bytes) -> Datagram {
    let mut head = BytesMut::with_capacity(FRAGMENT_HEADER);
    head.put_u8(KIND_FRAGMENT);
    head.put_u32(packet);
    head.put_u16(index);
    head.put_u16(count);
    Datagram { head: head.freeze(), body: part }
}

fn decode_fragment(bytes: Bytes) -> Result<Fragment, FrameError> {
    if bytes.len() <= FRAGMENT_HEADER {
        return Err(FrameError::BadFragment);
    }
    let packet = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let index = u16::from_be_bytes([bytes[5], bytes[6]]);
    let count = u16::from_be_bytes([bytes[7], bytes[8]]);
    if !(2..=FRAGMENTS_MAX).contains(&count) || index >= count {
        return Err(FrameError::BadFragment);
    }
    Ok(Fragment { packet, index, count, part: bytes.slice(FRAGMENT_HEADER..) })
}

fn encode_heartbeat(kind: u8, hb: &Heartbeat) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEARTBEAT_LEN);
    buf.put_u8(kind);
    buf.put_u8(hb.link.0);
    buf.put_u32(hb.sender.0);
    buf.put_u64(hb.timestamp);
    buf.freeze()
}

fn decode_heartbeat(bytes: &[u8]) -> Result<Heartbeat, FrameError> {
    let b: &[u8; HEARTBEAT_LEN] = bytes.try_into().map_err(|_| FrameError::BadLength(bytes.len()))?;
    if b[1] > LinkId::MAX.0 {
        return Err(FrameError::BadLinkId(b[1]));
    }
    let sender = u32::from_be_bytes([b[2], b[3], b[4], b[5]]);
    let timestamp = u64::from_be_bytes([b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13]]);
    Ok(Heartbeat { link: LinkId(b[1]), sender: NodeId(sender), timestamp })
}
