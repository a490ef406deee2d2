//! `Connection` against a daemon made of a `ServerSession` on a Unix socket in a temp dir.
#![cfg(feature = "tokio")]

use std::path::PathBuf;

use bytes::Bytes;
use ipc::frame::frame_bytes;
use ipc::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

const NODE: u32 = 4;

fn socket() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("totemd.sock");
    (dir, path)
}

/// Serves one client: answers every request with `answer`, and after each request also sends
/// the events `answer` returns.
async fn serve_one<F>(listener: UnixListener, mut answer: F)
where
    F: FnMut(&Request) -> (ResponseResult, Vec<Event>),
{
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut session = ServerSession::new(SessionConfig::new(NODE, 1000));
    let mut buf = vec![0; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            return;
        }
        session.handle_bytes(&buf[..n]);
        loop {
            match session.poll_input() {
                Ok(Some(SessionInput::Request(r))) => {
                    let (result, events) = answer(&r);
                    session.send_response(Response::new(r.id, result));
                    for e in events {
                        session.send_event(e).unwrap();
                    }
                }
                Ok(Some(SessionInput::Opened { .. })) => {}
                Ok(None) => break,
                Err(_) => {
                    if let Some(b) = session.poll_transmit() {
                        stream.write_all(&b).await.unwrap();
                    }
                    return;
                }
            }
        }
        if let Some(b) = session.poll_transmit() {
            stream.write_all(&b).await.unwrap();
        }
    }
}

fn deliver(data: &'static [u8]) -> Event {
    Event::new(EventKind::CpgDeliver(CpgDeliver {
        group: Bytes::from_static(b"g"),
        node_id: NODE,
        pid: 1,
        guarantee: Guarantee::Agreed as i32,
        data: Bytes::from_static(data),
    }))
}

#[tokio::test]
async fn handshake_then_request_then_event() {
    let (_dir, path) = socket();
    let listener = UnixListener::bind(&path).unwrap();
    let daemon = tokio::spawn(serve_one(listener, |r| match &r.body {
        Some(RequestBody::CpgLocalGet(_)) => (ResponseResult::LocalNode(LocalNode { node_id: NODE }), vec![]),
        _ => (ResponseResult::Ok(OkReply {}), vec![deliver(b"hi")]),
    }));
    let (conn, welcome) = Connection::connect(&path, "test").await.unwrap();
    assert_eq!(welcome, Welcome { protocol_version: 1, node_id: NODE, message_max: 1000 });
    let r = conn.request(RequestBody::CpgLocalGet(CpgLocalGet {})).await.unwrap();
    assert_eq!(r, ResponseResult::LocalNode(LocalNode { node_id: NODE }));
    let join = RequestBody::CpgJoin(CpgJoin { group: Bytes::from_static(b"g") });
    assert_eq!(conn.request(join).await.unwrap(), ResponseResult::Ok(OkReply {}));
    assert_eq!(conn.next_event().await, Some(deliver(b"hi")));
    drop(conn);
    daemon.await.unwrap();
}

#[tokio::test]
async fn daemon_error_is_a_typed_error() {
    let (_dir, path) = socket();
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(serve_one(listener, |_| {
        (ResponseResult::Error(ErrorReply::new(ErrorCode::NotExist, "no such group")), vec![])
    }));
    let (conn, _) = Connection::connect(&path, "test").await.unwrap();
    let leave = RequestBody::CpgLeave(CpgLeave { group: Bytes::from_static(b"g") });
    match conn.request(leave).await {
        Err(IpcError::Daemon { code: ErrorCode::NotExist, message }) => assert_eq!(message, "no such group"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn daemon_down_names_the_socket() {
    let (_dir, path) = socket();
    let err = Connection::connect(&path, "test").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to totemd at {}: No such file or directory (is totemd running?)",
            path.display()
        )
    );
}

/// A daemon that answers the Hello with `reply` and closes.
async fn answer_hello(listener: UnixListener, reply: ServerFrameKind) {
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut buf = vec![0; 256];
    let _ = stream.read(&mut buf).await.unwrap();
    stream.write_all(&frame_bytes(&ServerFrame::from(reply))).await.unwrap();
}

#[tokio::test]
async fn refusal_carries_the_daemons_reason() {
    let (_dir, path) = socket();
    let listener = UnixListener::bind(&path).unwrap();
    let refused = handshake::version_refusal(2);
    tokio::spawn(answer_hello(listener, ServerFrameKind::Refused(refused)));
    let err = Connection::connect(&path, "test").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "totemd refused the connection: client speaks protocol 2, daemon speaks 1..=1"
    );
    assert_eq!(err.code(), Some(ErrorCode::Version));
}

#[tokio::test]
async fn welcome_with_another_version_is_rejected() {
    let (_dir, path) = socket();
    let listener = UnixListener::bind(&path).unwrap();
    let welcome = Welcome { protocol_version: 2, node_id: 1, message_max: 10 };
    tokio::spawn(answer_hello(listener, ServerFrameKind::Welcome(welcome)));
    let err = Connection::connect(&path, "test").await.unwrap_err();
    assert!(matches!(err, IpcError::Version { daemon_version: 2 }), "{err:?}");
}

#[tokio::test]
async fn requests_fail_closed_when_the_daemon_goes_away() {
    let (_dir, path) = socket();
    let listener = UnixListener::bind(&path).unwrap();
    let daemon = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0; 256];
        let _ = stream.read(&mut buf).await.unwrap();
        let welcome = Welcome { protocol_version: 1, node_id: 1, message_max: 10 };
        stream.write_all(&frame_bytes(&ServerFrame::from(ServerFrameKind::Welcome(welcome)))).await.unwrap();
        // Read the request, then hang up without answering.
        let _ = stream.read(&mut buf).await.unwrap();
    });
    let (conn, _) = Connection::connect(&path, "test").await.unwrap();
    let r = conn.request(RequestBody::Status(StatusRequest {})).await;
    assert!(matches!(r, Err(IpcError::Closed)), "{r:?}");
    daemon.await.unwrap();
    assert!(conn.is_closed());
    assert_eq!(conn.next_event().await, None);
}

#[tokio::test]
async fn full_event_queue_stops_reading_until_drained() {
    let (_dir, path) = socket();
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(serve_one(listener, |_| {
        (ResponseResult::Ok(OkReply {}), vec![deliver(b"1"), deliver(b"2"), deliver(b"3")])
    }));
    let mut options = ConnectOptions::new("test");
    options.event_queue_max = 1;
    let (conn, _) = Connection::connect_with(&path, options).await.unwrap();
    conn.request(RequestBody::Status(StatusRequest {})).await.unwrap();
    // The events stay in order however slowly they are taken.
    for data in [b"1", b"2", b"3"] {
        assert_eq!(conn.next_event().await, Some(deliver(data)));
    }
    assert_eq!(conn.try_next_event(), None);
}
