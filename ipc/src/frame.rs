//! Framing on the stream socket: a 4-byte big-endian length, then a prost body.
//!
//! [`FrameDecoder`] is incremental (push bytes as they arrive, pop whole frames) and never
//! panics on any bytes: a length over the limit or a body that is not the expected message is
//! a typed [`FrameError`].

use std::collections::VecDeque;

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

/// Tags on the path from a [`ServerFrame`](crate::ServerFrame) down to a delivery's bytes:
/// `ServerFrameKind::Event`, `EventKind::CpgDeliver`, `CpgDeliver::data`. The bytes field
/// has the highest tag of its message and each message on the path has one field set, so
/// prost encodes the data last: the frame is a head followed by the data as it is.
const DELIVER_PATH_TAGS: [u32; 2] = [4, 1];
const DELIVER_DATA_TAG: u32 = 5;

/// Encodes at the end of `out` the frame of the event delivering `deliver` with `data_len`
/// bytes of data, without the data: the frame is these bytes followed by the data. `deliver`'s
/// own `data` must be empty and `data_len` above 0 (an empty field is not encoded at all).
/// Lets a long message go to a client from where it is, unjoined.
pub fn encode_deliver_head(deliver: &crate::CpgDeliver, data_len: usize, out: &mut BytesMut) {
    use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
    debug_assert!(deliver.data.is_empty() && data_len > 0, "the data is sent after the head");
    let field_len = |tag: u32, len: usize| key_len(tag) + encoded_len_varint(len as u64) + len;
    let inner_len = deliver.encoded_len() + field_len(DELIVER_DATA_TAG, data_len);
    let event_len = field_len(DELIVER_PATH_TAGS[1], inner_len);
    let body_len = field_len(DELIVER_PATH_TAGS[0], event_len);
    out.reserve(LENGTH_PREFIX + body_len - data_len);
    out.put_u32(u32::try_from(body_len).expect("frame body under 4 GiB"));
    encode_key(DELIVER_PATH_TAGS[0], WireType::LengthDelimited, out);
    encode_varint(event_len as u64, out);
    encode_key(DELIVER_PATH_TAGS[1], WireType::LengthDelimited, out);
    encode_varint(inner_len as u64, out);
    deliver.encode_raw(out);
    encode_key(DELIVER_DATA_TAG, WireType::LengthDelimited, out);
    encode_varint(data_len as u64, out);
}

/// `msg` as one frame.
pub fn frame_bytes<M: Message>(msg: &M) -> Bytes {
    let mut out = BytesMut::new();
    encode_frame(msg, &mut out);
    out.freeze()
}

/// Room a read asks for at least (see [`FrameDecoder::read_space`]).
pub const READ_MIN: usize = 64 * 1024;

/// Bodies up to this many bytes are copied out of the read buffer, so that the buffer stays
/// the reader's own and is reused; longer ones are cut out of it without a copy.
pub const COPY_MAX: usize = 4 * 1024;

/// Cuts a byte stream into frames.
///
/// Call order: [`push`](Self::push) what was read, then [`next_frame`](Self::next_frame) (or
/// [`next_body`](Self::next_body)) until it returns `Ok(None)`. It holds at most one partial
/// frame plus what was pushed since; a length over `frame_max` is refused as soon as its
/// prefix is read, before any body is buffered.
///
/// Two ways avoid copying large frames: a reader can read straight into the decoder's
/// buffer ([`read_space`](Self::read_space)), which has room for the whole frame being read;
/// and a chunk of whole frames read elsewhere can be handed over as it is
/// ([`push_bytes`](Self::push_bytes)). Either way a body over [`COPY_MAX`] bytes is a slice
/// of the bytes read, not a copy.
#[derive(Debug)]
pub struct FrameDecoder {
    /// Bytes read in place or copied, not yet whole frames; they come before `held`.
    buf: BytesMut,
    /// Chunks pushed whole, in order after `buf`: while `buf` is empty, frames are cut from
    /// the first one without a copy.
    held: VecDeque<Bytes>,
    /// Bytes in `held`.
    held_len: usize,
    frame_max: usize,
    /// Set once a length over the limit was read: the stream has no frame boundary any more.
    poisoned: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder refusing bodies over `frame_max` bytes.
    pub fn new(frame_max: usize) -> FrameDecoder {
        FrameDecoder { buf: BytesMut::new(), held: VecDeque::new(), held_len: 0, frame_max, poisoned: None }
    }

    /// The body limit.
    pub fn frame_max(&self) -> usize {
        self.frame_max
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.poisoned.is_some() {
            return;
        }
        if self.held.is_empty() {
            self.buf.extend_from_slice(data);
        } else {
            self.push_bytes(Bytes::copy_from_slice(data));
        }
    }

    /// Appends a chunk read from the stream. It is kept as it is: a frame that lies whole in
    /// one chunk is cut from it without a copy.
    pub fn push_bytes(&mut self, data: Bytes) {
        if self.poisoned.is_none() && !data.is_empty() {
            self.held_len += data.len();
            self.held.push_back(data);
        }
    }

    /// The buffer to read the stream into (with `read_buf` or [`BufMut`]): it has room for at
    /// least the rest of the frame being read (when its length is known and allowed) and at
    /// least [`READ_MIN`] bytes. What is written there is what [`push`](Self::push) would take.
    pub fn read_space(&mut self) -> &mut BytesMut {
        while self.unhold_one() {}
        let rest = match announced(&self.buf) {
            Some(len) if len <= self.frame_max => (LENGTH_PREFIX + len).saturating_sub(self.buf.len()),
            _ => 0,
        };
        self.buf.reserve(rest.max(READ_MIN));
        &mut self.buf
    }

    /// Bytes held that are not yet a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.held_len
    }

    /// Every whole frame buffered, still framed (length prefixes included), for another
    /// decoder to read: what a connection's reader hands on. Empty when no frame is whole.
    /// After a length over the limit, everything buffered is handed on, for the decoder
    /// that reads it to refuse.
    pub fn take_whole_frames(&mut self) -> Bytes {
        while self.unhold_one() {}
        let mut end = 0;
        while let Some(len) = announced(&self.buf[end..]) {
            if len > self.frame_max {
                end = self.buf.len();
                break;
            }
            if self.buf.len() - end < LENGTH_PREFIX + len {
                break;
            }
            end += LENGTH_PREFIX + len;
        }
        cut(&mut self.buf, end)
    }

    /// The next whole frame's body, if one is buffered.
    pub fn next_body(&mut self) -> Result<Option<Bytes>, FrameError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        if self.buf.is_empty() {
            if let Some(body) = self.cut_held() {
                return Ok(Some(body));
            }
        }
        loop {
            let Some(len) = announced(&self.buf) else {
                if self.unhold_one() {
                    continue;
                }
                return Ok(None);
            };
            if len > self.frame_max {
                let e = FrameError::TooLarge { len, max: self.frame_max };
                self.poisoned = Some(e.clone());
                self.buf = BytesMut::new();
                self.held.clear();
                self.held_len = 0;
                return Err(e);
            }
            if self.buf.len() >= LENGTH_PREFIX + len {
                self.buf.advance(LENGTH_PREFIX);
                return Ok(Some(cut(&mut self.buf, len)));
            }
            self.buf.reserve(LENGTH_PREFIX + len - self.buf.len());
            if !self.unhold_one() {
                return Ok(None);
            }
        }
    }

    /// The next whole frame decoded as `M`, if one is buffered. A body that is not an `M` is
    /// consumed and reported as [`FrameError::Malformed`].
    pub fn next_frame<M: Message + Default>(&mut self) -> Result<Option<M>, FrameError> {
        match self.next_body()? {
            None => Ok(None),
            Some(body) => M::decode(body).map(Some).map_err(|e| FrameError::Malformed(e.to_string())),
        }
    }

    /// The next body, cut without a copy from the first held chunk when it starts with a
    /// whole frame (and `buf` is empty).
    fn cut_held(&mut self) -> Option<Bytes> {
        let chunk = self.held.front_mut()?;
        let len =
            announced(chunk).filter(|&len| len <= self.frame_max && chunk.len() >= LENGTH_PREFIX + len)?;
        chunk.advance(LENGTH_PREFIX);
        let body = chunk.split_to(len);
        if chunk.is_empty() {
            self.held.pop_front();
        }
        self.held_len -= LENGTH_PREFIX + len;
        Some(body)
    }

    /// Moves the first held chunk to the end of `buf` (a copy); false if none is held.
    fn unhold_one(&mut self) -> bool {
        let Some(chunk) = self.held.pop_front() else { return false };
        self.held_len -= chunk.len();
        self.buf.extend_from_slice(&chunk);
        true
    }
}

/// The body length announced by the prefix at the start of `buf`, once the prefix is there.
fn announced(buf: &[u8]) -> Option<usize> {
    let prefix: [u8; LENGTH_PREFIX] = buf.get(..LENGTH_PREFIX)?.try_into().ok()?;
    Some(u32::from_be_bytes(prefix) as usize)
}

/// The first `len` bytes of `buf`, taken out of it: copied when short (`buf` keeps its
/// allocation for the next read), cut without a copy otherwise.
fn cut(buf: &mut BytesMut, len: usize) -> Bytes {
    if len <= COPY_MAX {
        let bytes = Bytes::copy_from_slice(&buf[..len]);
        buf.advance(len);
        bytes
    } else {
        buf.split_to(len).freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientFrame, ClientFrameKind, Hello};

    fn hello() -> ClientFrame {
        ClientFrameKind::Hello(Hello { protocol_version: 1, client_name: "t".into() }).into()
    }

    fn framed(bodies: &[Vec<u8>]) -> Bytes {
        let mut out = BytesMut::new();
        for b in bodies {
            out.put_u32(b.len() as u32);
            out.put_slice(b);
        }
        out.freeze()
    }

    /// Whether `part` lies inside `whole`'s memory (a slice of it, not a copy).
    fn inside(part: &Bytes, whole: &Bytes) -> bool {
        let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
        p >= w && p + part.len() <= w + whole.len()
    }

    #[test]
    fn long_bodies_of_a_kept_chunk_are_slices_of_it_and_short_ones_copies() {
        let bodies = vec![vec![1; COPY_MAX + 1], vec![2; 10], vec![3; 100 * 1024]];
        let chunk = framed(&bodies);
        let mut d = FrameDecoder::new(FRAME_MAX_DEFAULT);
        d.push_bytes(chunk.clone());
        let out: Vec<Bytes> = std::iter::from_fn(|| d.next_body().unwrap()).collect();
        assert_eq!(out, bodies);
        assert!(inside(&out[0], &chunk) && inside(&out[2], &chunk));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn a_frame_across_kept_chunks_is_joined_and_later_whole_chunks_are_kept_again() {
        let long = vec![9; 8 * 1024];
        let stream = framed(&[long.clone(), long.clone()]);
        let mut d = FrameDecoder::new(FRAME_MAX_DEFAULT);
        let cut = 1000;
        d.push_bytes(stream.slice(..cut));
        assert_eq!(d.next_body(), Ok(None));
        d.push_bytes(stream.slice(cut..));
        let next = framed(std::slice::from_ref(&long));
        d.push_bytes(next.clone());
        assert_eq!(d.buffered(), stream.len() + next.len());
        assert_eq!(d.next_body().unwrap().unwrap(), long);
        assert_eq!(d.next_body().unwrap().unwrap(), long);
        let third = d.next_body().unwrap().unwrap();
        assert_eq!(third, long);
        assert!(inside(&third, &next), "read from the kept chunk once the joined bytes are used up");
        assert_eq!(d.next_body(), Ok(None));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn read_space_has_room_for_the_whole_frame_being_read() {
        let body = vec![5; 300 * 1024];
        let stream = framed(std::slice::from_ref(&body));
        let mut d = FrameDecoder::new(FRAME_MAX_DEFAULT);
        d.read_space().put_slice(&stream[..100]);
        assert_eq!(d.next_body(), Ok(None));
        let space = d.read_space();
        assert!(space.capacity() - space.len() >= stream.len() - 100);
        let before = space.as_ptr();
        space.put_slice(&stream[100..]);
        assert_eq!(d.buf.as_ptr(), before, "no reallocation while the frame was read");
        let got = d.next_body().unwrap().unwrap();
        assert_eq!(got, body);
        // A length over the limit reserves no more than a plain read.
        let mut d = FrameDecoder::new(1000);
        d.read_space().put_u32(u32::MAX);
        assert!(d.read_space().capacity() <= 4 * READ_MIN);
    }

    #[test]
    fn take_whole_frames_hands_on_whole_frames_and_keeps_the_partial_one() {
        let stream = framed(&[vec![1; 10], vec![2; 20 * 1024], vec![3; 30]]);
        let partial = stream.len() - 5;
        let mut d = FrameDecoder::new(FRAME_MAX_DEFAULT);
        d.read_space().put_slice(&stream[..partial]);
        let whole = d.take_whole_frames();
        assert_eq!(whole, stream.slice(..14 + 4 + 20 * 1024));
        assert_eq!(d.buffered(), partial - whole.len());
        assert!(d.take_whole_frames().is_empty());
        d.read_space().put_slice(&stream[partial..]);
        assert_eq!(d.take_whole_frames(), stream.slice(whole.len()..));
        // After a length over the limit everything is handed on, for the reader to refuse.
        let mut d = FrameDecoder::new(10);
        d.read_space().put_slice(&[0, 0, 1, 0, 7, 7]);
        assert_eq!(d.take_whole_frames().len(), 6);
    }

    #[test]
    fn a_deliver_head_followed_by_its_data_is_the_frame_of_the_event() {
        use crate::{CpgDeliver, Event, EventKind, ServerFrame, ServerFrameKind};
        for len in [1, 127, 128, 16_383, 16_384, 100 * 1024, (1 << 21) + 3] {
            let data = Bytes::from(vec![0xa5; len]);
            let deliver =
                CpgDeliver { group: Bytes::from_static(b"g"), node_id: 7, pid: 300, guarantee: 1, data };
            let frame =
                ServerFrame::from(ServerFrameKind::Event(Event::new(EventKind::CpgDeliver(deliver.clone()))));
            let mut head = BytesMut::new();
            encode_deliver_head(&CpgDeliver { data: Bytes::new(), ..deliver.clone() }, len, &mut head);
            head.put_slice(&deliver.data);
            assert_eq!(head.freeze(), frame_bytes(&frame), "data of {len} bytes");
        }
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
