//! Every message round-trips through a frame; arbitrary bytes never panic a decoder.

use bytes::{BufMut, Bytes};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use prost::Message;

use crate::frame::{frame_bytes, FrameDecoder};
use crate::*;

fn bytes_up_to(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn member() -> impl Strategy<Value = Member> {
    (any::<u32>(), any::<u32>(), 0u32..6).prop_map(|(node_id, pid, reason)| Member { node_id, pid, reason })
}

fn code() -> impl Strategy<Value = i32> {
    0i32..11
}

fn request_body() -> impl Strategy<Value = RequestBody> {
    let group = || bytes_up_to(130);
    prop_oneof![
        group().prop_map(|group| RequestBody::CpgJoin(CpgJoin { group })),
        group().prop_map(|group| RequestBody::CpgLeave(CpgLeave { group })),
        (group(), 0i32..2, bytes_up_to(300)).prop_map(|(group, guarantee, data)| {
            RequestBody::CpgMcast(CpgMcast { group, guarantee, data, queued: false })
        }),
        group().prop_map(|group| RequestBody::CpgMembership(CpgMembership { group })),
        Just(RequestBody::CpgLocalGet(CpgLocalGet {})),
        option::of(group()).prop_map(|group| RequestBody::CpgIterate(CpgIterate { group })),
        Just(RequestBody::Status(StatusRequest {})),
        Just(RequestBody::Reload(crate::ReloadRequest {})),
        any::<u32>()
            .prop_map(|expected| RequestBody::QuorumSetExpected(crate::QuorumSetExpected { expected })),
    ]
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (any::<u32>(), ".{0,20}").prop_map(|(protocol_version, client_name)| {
            ClientFrame::from(ClientFrameKind::Hello(Hello { protocol_version, client_name }))
        }),
        (any::<u64>(), option::of(request_body()))
            .prop_map(|(id, body)| { ClientFrame::from(ClientFrameKind::Request(Request { id, body })) }),
        Just(ClientFrame { kind: None }),
    ]
}

fn response_result() -> impl Strategy<Value = ResponseResult> {
    let group_info =
        (bytes_up_to(130), vec(member(), 0..5)).prop_map(|(name, members)| GroupInfo { name, members });
    let link =
        (any::<u32>(), 0u32..8, any::<bool>()).prop_map(|(node_id, link, up)| LinkInfo { node_id, link, up });
    let status =
        (any::<u32>(), any::<u32>(), any::<u64>(), vec(any::<u32>(), 0..5), "[a-z]{0,12}", vec(link, 0..4))
            .prop_map(|(node_id, ring_rep, ring_seq, members, state, links)| StatusReply {
                node_id,
                ring_rep,
                ring_seq,
                members,
                state,
                links,
            });
    prop_oneof![
        Just(ResponseResult::Ok(OkReply {})),
        (code(), ".{0,30}").prop_map(|(code, message)| ResponseResult::Error(ErrorReply { code, message })),
        vec(member(), 0..5).prop_map(|members| ResponseResult::Members(Members { members })),
        any::<u32>().prop_map(|node_id| ResponseResult::LocalNode(LocalNode { node_id })),
        vec(group_info, 0..4).prop_map(|groups| ResponseResult::Groups(Groups { groups })),
        status.prop_map(ResponseResult::Status),
    ]
}

fn event_kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        (bytes_up_to(130), any::<u32>(), any::<u32>(), 0i32..2, bytes_up_to(300)).prop_map(
            |(group, node_id, pid, guarantee, data)| {
                EventKind::CpgDeliver(CpgDeliver { group, node_id, pid, guarantee, data })
            }
        ),
        (bytes_up_to(130), vec(member(), 0..5), vec(member(), 0..3), vec(member(), 0..3)).prop_map(
            |(group, members, left, joined)| {
                EventKind::CpgConfchg(CpgConfchg { group, members, left, joined })
            }
        ),
        (any::<u32>(), any::<u64>(), vec(any::<u32>(), 0..5)).prop_map(|(ring_rep, ring_seq, members)| {
            EventKind::TotemConfchg(TotemConfchg { ring_rep, ring_seq, members })
        }),
    ]
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(protocol_version, node_id, message_max)| {
            ServerFrame::from(ServerFrameKind::Welcome(Welcome { protocol_version, node_id, message_max }))
        }),
        (code(), ".{0,30}").prop_map(|(code, message)| {
            ServerFrame::from(ServerFrameKind::Refused(Refused { code, message }))
        }),
        (any::<u64>(), option::of(response_result())).prop_map(|(id, result)| {
            ServerFrame::from(ServerFrameKind::Response(Response { id, result }))
        }),
        option::of(event_kind()).prop_map(|kind| ServerFrame::from(ServerFrameKind::Event(Event { kind }))),
    ]
}

/// Encodes frames, feeds them in pieces of `chunk` bytes and collects what comes out. Each
/// piece goes in by one of the decoder's three ways, picked by the bits of `ways` in turn:
/// copied (`push`), kept (`push_bytes`) or written into its read buffer (`read_space`).
fn through_decoder<M: Message + Default>(frames: &[M], chunk: usize, ways: u64) -> Vec<M> {
    let mut stream = Vec::new();
    for f in frames {
        stream.extend_from_slice(&frame_bytes(f));
    }
    let mut d = FrameDecoder::new(FRAME_MAX_DEFAULT);
    let mut out = Vec::new();
    for (i, piece) in stream.chunks(chunk.max(1)).enumerate() {
        match (ways >> (2 * (i % 32))) & 3 {
            0 => d.push(piece),
            1 => d.push_bytes(Bytes::copy_from_slice(piece)),
            _ => d.read_space().put_slice(piece),
        }
        while let Some(m) = d.next_frame::<M>().expect("valid frames") {
            out.push(m);
        }
    }
    assert_eq!(d.buffered(), 0);
    out
}

proptest! {
    #[test]
    fn client_frames_round_trip(frames in vec(client_frame(), 1..6), chunk in 1usize..1024, ways: u64) {
        prop_assert_eq!(through_decoder(&frames, chunk, ways), frames);
    }

    #[test]
    fn server_frames_round_trip(frames in vec(server_frame(), 1..6), chunk in 1usize..1024, ways: u64) {
        prop_assert_eq!(through_decoder(&frames, chunk, ways), frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in vec(any::<u8>(), 0..512), max in 0usize..600) {
        for kind in 0..2 {
            let mut d = FrameDecoder::new(max);
            d.push(&bytes);
            for _ in 0..bytes.len() + 1 {
                let r = if kind == 0 {
                    d.next_frame::<ClientFrame>().map(|f| f.is_some())
                } else {
                    d.next_frame::<ServerFrame>().map(|f| f.is_some())
                };
                if !matches!(r, Ok(true) | Err(FrameError::Malformed(_))) {
                    break;
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_session(
        chunks in vec(vec(any::<u8>(), 0..64), 0..8),
        hello_first in any::<bool>(),
    ) {
        let mut s = ServerSession::new(SessionConfig::new(1, 64));
        if hello_first {
            s.handle_bytes(&frame_bytes(&ClientFrame::from(ClientFrameKind::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                client_name: String::new(),
            }))));
        }
        for c in &chunks {
            s.handle_bytes(c);
            while let Ok(Some(_)) = s.poll_input() {}
            s.poll_transmit();
        }
    }
}
