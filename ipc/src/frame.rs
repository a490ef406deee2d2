//! Framing on the stream socket: a 4-byte big-endian length, then a prost body.
//!
//! [`FrameDecoder`] is incremental (push bytes as they arrive, pop whole frames) and never
//! panics on any bytes: a length over the limit or a body that is not the expected message is
//! a typed [`FrameError`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// The default largest frame body: a 1 MiB message plus room for the fields around it.
pub const FRAME_MAX_DEFAULT: usize = 1024 * 1024 + 64 * 1024;

/// Why the byte stream could not be read as frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A length prefix over the limit. The stream cannot be resynchronised: close it.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The announced body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A whole frame whose body is not a valid message (prost's reason). The frame was consumed.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Frames are joined into one write until it holds this many bytes (see [`coalesce`]).
pub const COALESCE_MAX: usize = 256 * 1024;

/// `first`, followed by the frames `more` yields at once, as one buffer for one write: under
/// load a writer sends many small frames, and one system call each is most of their cost. It
/// stops taking frames once [`COALESCE_MAX`] bytes are reached; `first` alone is returned
/// without a copy.
pub fn coalesce(first: Bytes, mut more: impl FnMut() -> Option<Bytes>) -> Bytes {
    let Some(second) = more() else { return first };
    let mut batch = BytesMut::with_capacity((first.len() + second.len()).max(4096));
    batch.put_slice(&first);
    batch.put_slice(&second);
    while batch.len() < COALESCE_MAX {
        let Some(frame) = more() else { break };
        batch.put_slice(&frame);
    }
    batch.freeze()
}

/// Encodes `msg` as one frame at the end of `out`.
pub fn encode_frame<M: Message>(msg: &M, out: &mut BytesMut) {
    let len = msg.encoded_len();
    out.reserve(LENGTH_PREFIX + len);
    // A body over 4 GiB cannot be built from the messages of this crate (every field is
    // bounded far below); a silent truncation would desynchronise the stream.
    let len32 = u32::try_from(len).expect("frame body under 4 GiB");
    out.put_u32(len32);
    msg.encode(out).expect("reserved capacity");
}

/// `msg` as one frame.
pub fn frame_bytes<M: Message>(msg: &M) -> Bytes {
    let mut out = BytesMut::new();
    encode_frame(msg, &mut out);
    out.freeze()
}

/// Cuts a byte stream into frames.
///
/// Call order: [`push`](Self::push) what was read, then [`next_frame`](Self::next_frame) (or
/// [`next_body`](Self::next_body)) until it returns `Ok(None)`. It holds at most one partial
/// frame plus what was pushed since; a length over `frame_max` is refused as soon as its
/// prefix is read, before any body is buffered.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    frame_max: usize,
    /// Set once a length over the limit was read: the stream has no frame boundary any more.
    poisoned: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder refusing bodies over `frame_max` bytes.
    pub fn new(frame_max: usize) -> FrameDecoder {
        FrameDecoder { buf: BytesMut::new(), frame_max, poisoned: None }
    }

    /// The body limit.
    pub fn frame_max(&self) -> usize {
        self.frame_max
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.poisoned.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes held that are not yet a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame's body, if one is buffered.
    pub fn next_body(&mut self) -> Result<Option<Bytes>, FrameError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        if self.buf.len() < LENGTH_PREFIX {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > self.frame_max {
            let e = FrameError::TooLarge { len, max: self.frame_max };
            self.poisoned = Some(e.clone());
            self.buf = BytesMut::new();
            return Err(e);
        }
        if self.buf.len() < LENGTH_PREFIX + len {
            self.buf.reserve(LENGTH_PREFIX + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(LENGTH_PREFIX);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// The next whole frame decoded as `M`, if one is buffered. A body that is not an `M` is
    /// consumed and reported as [`FrameError::Malformed`].
    pub fn next_frame<M: Message + Default>(&mut self) -> Result<Option<M>, FrameError> {
        match self.next_body()? {
            None => Ok(None),
            Some(body) => M::decode(body).map(Some).map_err(|e| FrameError::Malformed(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientFrame, ClientFrameKind, Hello};

    #[test]
    fn coalesce_joins_queued_frames_up_to_the_bound_and_loses_none() {
        let alone = Bytes::from_static(b"one");
        assert_eq!(coalesce(alone.clone(), || None), alone);
        let mut queue: Vec<Bytes> = (0..3).map(|i| Bytes::from(vec![i as u8; 100 * 1024])).collect();
        queue.reverse();
        let joined = coalesce(Bytes::from_static(b"ab"), || queue.pop());
        // 2 + 100 KiB + 100 KiB < 256 KiB, then a third frame takes it past: it stops there.
        assert_eq!(joined.len(), 2 + 3 * 100 * 1024);
        assert!(queue.is_empty());
        let mut queue: Vec<Bytes> = (0..4).map(|_| Bytes::from(vec![7; 100 * 1024])).collect();
        let joined = coalesce(Bytes::from(vec![7; 100 * 1024]), || queue.pop());
        assert_eq!(joined.len(), 3 * 100 * 1024, "stopped once past COALESCE_MAX");
        assert_eq!(queue.len(), 2, "frames not taken stay queued");
    }

    fn hello() -> ClientFrame {
        ClientFrameKind::Hello(Hello { protocol_version: 1, client_name: "t".into() }).into()
    }

    #[test]
    fn frame_is_big_endian_length_then_body() {
        let bytes = frame_bytes(&hello());
        let body = hello().encode_to_vec();
        assert_eq!(&bytes[..4], &(body.len() as u32).to_be_bytes());
        assert_eq!(&bytes[4..], &body[..]);
    }

    #[test]
    fn frame_split_at_every_byte_decodes_once() {
        let bytes = frame_bytes(&hello());
        for cut in 0..bytes.len() {
            let mut d = FrameDecoder::new(FRAME_MAX_DEFAULT);
            d.push(&bytes[..cut]);
            assert_eq!(d.next_frame::<ClientFrame>(), Ok(None), "cut at {cut}");
            d.push(&bytes[cut..]);
            assert_eq!(d.next_frame::<ClientFrame>(), Ok(Some(hello())));
            assert_eq!(d.next_frame::<ClientFrame>(), Ok(None));
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn two_frames_in_one_push_come_out_in_order() {
        let mut d = FrameDecoder::new(FRAME_MAX_DEFAULT);
        let mut both = BytesMut::new();
        encode_frame(&hello(), &mut both);
        encode_frame(&ClientFrame { kind: None }, &mut both);
        d.push(&both);
        assert_eq!(d.next_frame::<ClientFrame>(), Ok(Some(hello())));
        assert_eq!(d.next_frame::<ClientFrame>(), Ok(Some(ClientFrame { kind: None })));
        assert_eq!(d.next_frame::<ClientFrame>(), Ok(None));
    }

    #[test]
    fn length_over_max_is_refused_before_the_body_arrives() {
        let mut d = FrameDecoder::new(10);
        d.push(&11u32.to_be_bytes());
        let e = FrameError::TooLarge { len: 11, max: 10 };
        assert_eq!(d.next_body(), Err(e.clone()));
        d.push(&[0; 11]);
        assert_eq!(d.next_body(), Err(e), "the stream stays broken");
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn invalid_body_is_malformed_and_consumed() {
        let mut d = FrameDecoder::new(FRAME_MAX_DEFAULT);
        // Field 1 with wire type 7 does not exist.
        d.push(&[0, 0, 0, 1, 0x0f]);
        d.push(&frame_bytes(&hello()));
        assert!(matches!(d.next_frame::<ClientFrame>(), Err(FrameError::Malformed(_))));
        assert_eq!(d.next_frame::<ClientFrame>(), Ok(Some(hello())));
    }
}
