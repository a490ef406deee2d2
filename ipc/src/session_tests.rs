//! One call on a session in a known state; the exact inputs and bytes that come out.

use bytes::Bytes;

use super::*;
use crate::frame::frame_bytes;
use crate::{CpgDeliver, CpgJoin, CpgMcast, EventKind, Hello, TotemConfchg};

const NODE: u32 = 3;
const MESSAGE_MAX: u32 = 100;

fn session() -> ServerSession {
    ServerSession::new(SessionConfig::new(NODE, MESSAGE_MAX))
}

fn hello(version: u32) -> Bytes {
    frame_bytes(&ClientFrame::from(ClientFrameKind::Hello(Hello {
        protocol_version: version,
        client_name: "app".into(),
    })))
}

fn request(id: u64, body: Option<RequestBody>) -> Bytes {
    frame_bytes(&ClientFrame::from(ClientFrameKind::Request(Request { id, body })))
}

fn join(id: u64) -> Bytes {
    request(id, Some(RequestBody::CpgJoin(CpgJoin { group: Bytes::from_static(b"g") })))
}

fn server(kind: ServerFrameKind) -> Bytes {
    frame_bytes(&ServerFrame::from(kind))
}

fn welcome() -> Bytes {
    server(ServerFrameKind::Welcome(Welcome { protocol_version: 1, node_id: NODE, message_max: MESSAGE_MAX }))
}

fn open_session() -> ServerSession {
    let mut s = session();
    s.handle_bytes(&hello(1));
    s.poll_input().unwrap();
    s.poll_transmit();
    s
}

#[test]
fn hello_is_answered_with_welcome() {
    let mut s = session();
    s.handle_bytes(&hello(1));
    assert_eq!(
        s.poll_input(),
        Ok(Some(SessionInput::Opened { client_name: "app".into(), protocol_version: 1 }))
    );
    assert_eq!(s.state(), SessionState::Open);
    assert_eq!(s.client_name(), Some("app"));
    assert_eq!(s.poll_transmit(), Some(welcome()));
    assert_eq!(s.poll_input(), Ok(None));
}

#[test]
fn other_version_is_refused_with_both_versions_named() {
    let mut s = session();
    s.handle_bytes(&hello(2));
    assert_eq!(s.poll_input(), Err(SessionError::Version { client_version: 2 }));
    assert_eq!(s.state(), SessionState::Closed);
    let refused = Refused::new(ErrorCode::Version, "client speaks protocol 2, daemon speaks 1..=1");
    assert_eq!(s.poll_transmit(), Some(server(ServerFrameKind::Refused(refused))));
    assert_eq!(s.poll_input(), Ok(None));
}

#[test]
fn request_before_hello_is_refused_as_malformed() {
    let mut s = session();
    s.handle_bytes(&join(1));
    assert_eq!(s.poll_input(), Err(SessionError::NotHello));
    let refused = Refused::new(ErrorCode::Malformed, "first frame must be a Hello");
    assert_eq!(s.poll_transmit(), Some(server(ServerFrameKind::Refused(refused))));
    assert_eq!(s.state(), SessionState::Closed);
}

#[test]
fn requests_after_hello_are_yielded_in_order() {
    let mut s = session();
    let mut bytes = hello(1).to_vec();
    bytes.extend_from_slice(&join(1));
    bytes.extend_from_slice(&join(2));
    s.handle_bytes(&bytes);
    assert!(matches!(s.poll_input(), Ok(Some(SessionInput::Opened { .. }))));
    let ids: Vec<u64> = std::iter::from_fn(|| match s.poll_input() {
        Ok(Some(SessionInput::Request(r))) => Some(r.id),
        _ => None,
    })
    .collect();
    assert_eq!(ids, vec![1, 2]);
}

#[test]
fn malformed_frame_after_hello_closes_with_error_id_0() {
    let mut s = open_session();
    s.handle_bytes(&[0, 0, 0, 1, 0x0f]);
    let err = s.poll_input().unwrap_err();
    let SessionError::Frame(FrameError::Malformed(reason)) = &err else { panic!("{err:?}") };
    let expected = Response::error(0, ErrorCode::Malformed, format!("malformed frame: {reason}"));
    assert_eq!(s.poll_transmit(), Some(server(ServerFrameKind::Response(expected))));
    assert_eq!(s.state(), SessionState::Closed);
}

#[test]
fn oversized_frame_before_hello_is_refused_too_large() {
    let mut s = session();
    s.handle_bytes(&u32::MAX.to_be_bytes());
    let e = FrameError::TooLarge { len: u32::MAX as usize, max: FRAME_MAX_DEFAULT };
    assert_eq!(s.poll_input(), Err(SessionError::Frame(e.clone())));
    let refused = Refused::new(ErrorCode::TooLarge, e.to_string());
    assert_eq!(s.poll_transmit(), Some(server(ServerFrameKind::Refused(refused))));
}

#[test]
fn second_hello_closes_the_session() {
    let mut s = open_session();
    s.handle_bytes(&hello(1));
    assert_eq!(s.poll_input(), Err(SessionError::DuplicateHello));
    let expected = Response::error(0, ErrorCode::Malformed, "Hello after the handshake");
    assert_eq!(s.poll_transmit(), Some(server(ServerFrameKind::Response(expected))));
}

#[test]
fn unknown_request_kind_is_answered_not_supported() {
    let mut s = open_session();
    s.handle_bytes(&request(5, None));
    s.handle_bytes(&join(6));
    let Ok(Some(SessionInput::Request(r))) = s.poll_input() else { panic!() };
    assert_eq!(r.id, 6, "the unknown request is answered and skipped");
    let expected = Response::error(5, ErrorCode::NotSupported, "request kind not supported by this daemon");
    assert_eq!(s.poll_transmit(), Some(server(ServerFrameKind::Response(expected))));
}

#[test]
fn mcast_over_message_max_is_answered_too_large() {
    let mut s = open_session();
    let data = Bytes::from(vec![0; MESSAGE_MAX as usize + 1]);
    let body = RequestBody::CpgMcast(CpgMcast { group: "g".into(), guarantee: 0, data, queued: false });
    s.handle_bytes(&request(9, Some(body)));
    assert_eq!(s.poll_input(), Ok(None));
    let expected = Response::error(9, ErrorCode::TooLarge, "message of 101 bytes exceeds message_max 100");
    assert_eq!(s.poll_transmit(), Some(server(ServerFrameKind::Response(expected))));
}

#[test]
fn response_and_event_are_framed_in_order() {
    let mut s = open_session();
    let event =
        Event::new(EventKind::TotemConfchg(TotemConfchg { ring_rep: 1, ring_seq: 8, members: vec![1, 3] }));
    s.send_response(Response::ok(1));
    s.send_event(event.clone()).unwrap();
    let mut expected = server(ServerFrameKind::Response(Response::ok(1))).to_vec();
    expected.extend_from_slice(&server(ServerFrameKind::Event(event)));
    assert_eq!(s.poll_transmit(), Some(Bytes::from(expected)));
    assert_eq!(s.poll_transmit(), None);
}

#[test]
fn events_before_the_handshake_are_refused() {
    let mut s = session();
    assert_eq!(s.send_event(Event::default()), Err(SendError::NotOpen));
    assert_eq!(s.poll_transmit(), None);
}

#[test]
fn backlog_over_the_bound_refuses_events_and_input() {
    let mut config = SessionConfig::new(NODE, MESSAGE_MAX);
    config.transmit_max = 10;
    let mut s = ServerSession::new(config);
    s.handle_bytes(&hello(1));
    s.poll_input().unwrap();
    // The Welcome (12 bytes) is still unsent.
    assert_eq!(s.pending_transmit(), 12);
    assert!(!s.wants_input());
    assert_eq!(s.send_event(Event::default()), Err(SendError::Backlog { pending: 12, max: 10 }));
    s.poll_transmit();
    assert!(s.wants_input());
    assert_eq!(s.send_event(Event::default()), Ok(()));
}

#[test]
fn a_long_delivery_is_sent_from_where_it_is_after_the_frames_before_it() {
    let mut s = open_session();
    let data = Bytes::from(vec![4; 100 * 1024]);
    let deliver = CpgDeliver { group: Bytes::from_static(b"g"), node_id: 2, pid: 9, guarantee: 1, data };
    let long = Event::new(EventKind::CpgDeliver(deliver.clone()));
    let short =
        Event::new(EventKind::CpgDeliver(CpgDeliver { data: Bytes::from_static(b"hi"), ..deliver.clone() }));
    s.send_response(Response::ok(1));
    s.send_event(long.clone()).unwrap();
    s.send_event(short.clone()).unwrap();
    let mut expected = server(ServerFrameKind::Response(Response::ok(1))).to_vec();
    expected.extend_from_slice(&server(ServerFrameKind::Event(long)));
    expected.extend_from_slice(&server(ServerFrameKind::Event(short)));
    assert_eq!(s.pending_transmit(), expected.len());
    let chunks: Vec<Bytes> = std::iter::from_fn(|| s.poll_transmit()).collect();
    assert_eq!(chunks.len(), 3, "head (after the response), data, then the short event");
    assert_eq!(chunks[1].as_ptr(), deliver.data.as_ptr(), "the data is not copied");
    assert_eq!(chunks.concat(), expected);
    assert_eq!(s.pending_transmit(), 0);
}
