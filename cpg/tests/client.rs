//! The client API against a tiny fake daemon: an `ipc::ServerSession` on a Unix socket in a
//! temp dir, run on its own thread, answering requests with a closure.
#![cfg(feature = "client")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cpg::client::{blocking, Cpg, CpgError};
use cpg::{Change, Confchg, CpgEvent, GroupName, Guarantee, MemberId, Message, Reason};
use ipc::frame::frame_bytes;
use ipc::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

const NODE: u32 = 2;
const PID: u32 = 77;
const MESSAGE_MAX: u32 = 1000;

type Handler = Box<dyn FnMut(&RequestBody) -> (ResponseResult, Vec<EventKind>) + Send>;

/// A daemon serving each connection in turn until the test ends.
struct FakeDaemon {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl FakeDaemon {
    fn start(
        handler: impl FnMut(&RequestBody) -> (ResponseResult, Vec<EventKind>) + Send + 'static,
    ) -> FakeDaemon {
        FakeDaemon::start_raw(move |listener| serve(listener, Box::new(handler)))
    }

    fn start_raw<F, Fut>(serve: F) -> FakeDaemon
    where
        F: FnOnce(UnixListener) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("totemd.sock");
        let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std_listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move { serve(UnixListener::from_std(std_listener).unwrap()).await });
        });
        FakeDaemon { _dir: dir, path }
    }
}

async fn serve(listener: UnixListener, mut handler: Handler) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let mut session = ServerSession::new(SessionConfig::new(NODE, MESSAGE_MAX));
        let mut buf = vec![0; 64 * 1024];
        'conn: loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            session.handle_bytes(&buf[..n]);
            loop {
                match session.poll_input() {
                    Ok(Some(SessionInput::Request(r))) => {
                        let (result, events) = handler(r.body.as_ref().unwrap());
                        session.send_response(Response::new(r.id, result));
                        for kind in events {
                            session.send_event(Event::new(kind)).unwrap();
                        }
                    }
                    Ok(Some(SessionInput::Opened { .. })) => {}
                    Ok(None) => break,
                    Err(_) => break 'conn,
                }
            }
            if let Some(b) = session.poll_transmit() {
                if stream.write_all(&b).await.is_err() {
                    break;
                }
            }
        }
        if let Some(b) = session.poll_transmit() {
            let _ = stream.write_all(&b).await;
        }
    }
}

fn ok() -> ResponseResult {
    ResponseResult::Ok(OkReply {})
}

fn error(code: ErrorCode) -> ResponseResult {
    ResponseResult::Error(ErrorReply::new(code, format!("fake {code}")))
}

fn member(node_id: u32, pid: u32, reason: u32) -> Member {
    Member { node_id, pid, reason }
}

fn group() -> GroupName {
    GroupName::try_from("g").unwrap()
}

/// A one-process cluster: joins are confirmed with a confchg, messages echoed back.
fn echo_daemon() -> FakeDaemon {
    let mut joined = false;
    FakeDaemon::start(move |body| match body {
        RequestBody::CpgJoin(j) if joined => {
            let _ = j;
            (error(ErrorCode::Exist), vec![])
        }
        RequestBody::CpgJoin(j) => {
            joined = true;
            let confchg = EventKind::CpgConfchg(CpgConfchg {
                group: j.group.clone(),
                members: vec![member(NODE, PID, 0)],
                left: vec![],
                joined: vec![member(NODE, PID, 1)],
            });
            (ok(), vec![confchg])
        }
        RequestBody::CpgLeave(_) if !joined => (error(ErrorCode::NotExist), vec![]),
        RequestBody::CpgLeave(_) => {
            joined = false;
            (ok(), vec![])
        }
        RequestBody::CpgMcast(m) if joined => {
            let deliver = EventKind::CpgDeliver(CpgDeliver {
                group: m.group.clone(),
                node_id: NODE,
                pid: PID,
                guarantee: m.guarantee,
                data: m.data.clone(),
            });
            (ok(), vec![deliver])
        }
        RequestBody::CpgMcast(_) => (error(ErrorCode::NotExist), vec![]),
        RequestBody::CpgMembership(_) => {
            (ResponseResult::Members(Members { members: vec![member(NODE, PID, 0)] }), vec![])
        }
        RequestBody::CpgLocalGet(_) => (ResponseResult::LocalNode(LocalNode { node_id: NODE }), vec![]),
        RequestBody::CpgIterate(_) => {
            let groups = vec![
                GroupInfo { name: Bytes::from_static(b"a"), members: vec![member(1, 5, 0)] },
                GroupInfo {
                    name: Bytes::from_static(b"g"),
                    members: vec![member(NODE, PID, 0), member(3, 9, 0)],
                },
            ];
            (ResponseResult::Groups(Groups { groups }), vec![])
        }
        _ => (error(ErrorCode::NotSupported), vec![]),
    })
}

fn me() -> MemberId {
    MemberId { node_id: NODE, pid: PID }
}

#[tokio::test]
async fn handshake_gives_node_and_message_max() {
    let daemon = echo_daemon();
    let cpg = Cpg::connect(&daemon.path).await.unwrap();
    assert_eq!(cpg.message_max(), MESSAGE_MAX);
    assert_eq!(cpg.local_node_id().await.unwrap(), NODE);
}

#[tokio::test]
async fn join_mcast_and_events_round_trip() {
    let daemon = echo_daemon();
    let cpg = Cpg::connect(&daemon.path).await.unwrap();
    cpg.join(&group()).await.unwrap();
    cpg.mcast(&group(), Guarantee::Safe, "hello").await.unwrap();
    let confchg = CpgEvent::Confchg(Confchg {
        group: group(),
        members: vec![me()],
        left: vec![],
        joined: vec![Change { member: me(), reason: Reason::Join }],
    });
    assert_eq!(cpg.next_event().await, Some(confchg));
    let deliver = CpgEvent::Deliver(Message {
        group: group(),
        sender: me(),
        guarantee: Guarantee::Safe,
        data: Bytes::from_static(b"hello"),
    });
    assert_eq!(cpg.next_event().await, Some(deliver));
    assert_eq!(cpg.membership(&group()).await.unwrap(), vec![me()]);
    cpg.leave(&group()).await.unwrap();
}

#[tokio::test]
async fn groups_lists_every_group_with_members() {
    let daemon = echo_daemon();
    let cpg = Cpg::connect(&daemon.path).await.unwrap();
    let groups = cpg.groups().await.unwrap();
    assert_eq!(
        groups,
        vec![
            (GroupName::try_from("a").unwrap(), vec![MemberId { node_id: 1, pid: 5 }]),
            (group(), vec![me(), MemberId { node_id: 3, pid: 9 }]),
        ]
    );
}

#[tokio::test]
async fn daemon_errors_map_to_cpg_errors() {
    let daemon = echo_daemon();
    let cpg = Cpg::connect(&daemon.path).await.unwrap();
    assert!(matches!(cpg.leave(&group()).await, Err(CpgError::NotExist)));
    assert!(matches!(cpg.mcast(&group(), Guarantee::Agreed, "x").await, Err(CpgError::NotExist)));
    cpg.join(&group()).await.unwrap();
    assert!(matches!(cpg.join(&group()).await, Err(CpgError::Exist)));
    let big = vec![0u8; MESSAGE_MAX as usize + 1];
    assert!(matches!(
        cpg.mcast(&group(), Guarantee::Agreed, big).await,
        Err(CpgError::TooLarge { max: MESSAGE_MAX })
    ));
}

#[tokio::test]
async fn mcast_retries_try_again_until_taken_and_try_mcast_does_not() {
    let tries = Arc::new(AtomicU32::new(0));
    let counted = tries.clone();
    let daemon = FakeDaemon::start(move |body| match body {
        RequestBody::CpgMcast(_) if counted.fetch_add(1, Ordering::SeqCst) < 3 => {
            (error(ErrorCode::TryAgain), vec![])
        }
        _ => (ok(), vec![]),
    });
    let cpg = Cpg::connect(&daemon.path).await.unwrap();
    cpg.mcast(&group(), Guarantee::Agreed, "m").await.unwrap();
    assert_eq!(tries.load(Ordering::SeqCst), 4, "three refusals, then taken");

    tries.store(0, Ordering::SeqCst);
    assert!(matches!(cpg.try_mcast(&group(), Guarantee::Agreed, "m").await, Err(CpgError::TryAgain)));
    assert_eq!(tries.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn daemon_down_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("totemd.sock");
    let err = Cpg::connect(&path).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to totemd at {}: No such file or directory (is totemd running?)",
            path.display()
        )
    );
}

#[tokio::test]
async fn daemon_of_another_version_refuses_with_a_clear_message() {
    // A future daemon that speaks only protocol 2.
    let daemon = FakeDaemon::start_raw(|listener| async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0; 256];
        let _ = stream.read(&mut buf).await;
        let refused = Refused::new(ErrorCode::Version, "client speaks protocol 1, daemon speaks 2..=2");
        let _ = stream.write_all(&frame_bytes(&ServerFrame::from(ServerFrameKind::Refused(refused)))).await;
    });
    let err = Cpg::connect(&daemon.path).await.unwrap_err();
    assert!(matches!(&err, CpgError::Version(_)), "{err:?}");
    assert_eq!(err.to_string(), "client speaks protocol 1, daemon speaks 2..=2");
}

#[tokio::test]
async fn context_is_kept_per_handle() {
    let daemon = echo_daemon();
    let cpg = Cpg::connect(&daemon.path).await.unwrap();
    assert!(cpg.context::<u32>().is_none());
    cpg.set_context(41u32);
    assert_eq!(*cpg.context::<u32>().unwrap(), 41);
    assert!(cpg.context::<String>().is_none(), "another type is not there");
}

#[test]
fn blocking_handle_round_trip_and_timeout() {
    let daemon = echo_daemon();
    let cpg = blocking::Cpg::connect(&daemon.path).unwrap();
    assert_eq!(cpg.local_node_id().unwrap(), NODE);
    cpg.join(&group()).unwrap();
    cpg.mcast(&group(), Guarantee::Agreed, "b").unwrap();
    assert!(matches!(cpg.next_event(), Some(CpgEvent::Confchg(_))));
    let Ok(CpgEvent::Deliver(m)) = cpg.next_event_timeout(Duration::from_secs(5)) else { panic!() };
    assert_eq!(m.data, Bytes::from_static(b"b"));
    assert_eq!(cpg.next_event_timeout(Duration::from_millis(20)), Err(RecvTimeoutError::Timeout));
}

#[test]
fn blocking_try_mcast_returns_try_again() {
    let daemon = FakeDaemon::start(|_| (error(ErrorCode::TryAgain), vec![]));
    let cpg = blocking::Cpg::connect(&daemon.path).unwrap();
    assert!(matches!(cpg.try_mcast(&group(), Guarantee::Agreed, "m"), Err(CpgError::TryAgain)));
}

#[test]
fn blocking_next_event_ends_when_the_daemon_closes() {
    let daemon = FakeDaemon::start_raw(|listener| async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0; 256];
        let _ = stream.read(&mut buf).await;
        let welcome = Welcome { protocol_version: 1, node_id: NODE, message_max: MESSAGE_MAX };
        let _ = stream.write_all(&frame_bytes(&ServerFrame::from(ServerFrameKind::Welcome(welcome)))).await;
    });
    let cpg = blocking::Cpg::connect(&daemon.path).unwrap();
    assert_eq!(cpg.next_event_timeout(Duration::from_secs(5)), Err(RecvTimeoutError::Disconnected));
    assert!(cpg.is_closed());
}
