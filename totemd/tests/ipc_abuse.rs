//! Clients that misbehave get a clear error and cost the others nothing: garbage frames, an
//! oversized frame or message, a client that never reads its events, a user without the
//! right to connect. Through all of it a well-behaved member keeps sending and receiving.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::cluster::Cluster;
use cpg::client::{Cpg, CpgError};
use cpg::{CpgEvent, GroupName, Guarantee};
use ipc::{ClientFrame, ClientFrameKind, FrameDecoder, Hello, ServerFrame, ServerFrameKind};

const FORM_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

fn group() -> GroupName {
    GroupName::try_from("shared").unwrap()
}

/// Writes `bytes` on a fresh connection and returns the first frame the daemon answers
/// (if any) and whether it then closed the connection.
fn raw_exchange(socket: &Path, bytes: &[u8]) -> (Option<ServerFrame>, bool) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(bytes).expect("write");
    let mut decoder = FrameDecoder::new(ipc::FRAME_MAX_DEFAULT);
    let mut first = None;
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (first, true),
            Ok(n) => {
                decoder.push(&buf[..n]);
                if first.is_none() {
                    first = decoder.next_frame::<ServerFrame>().expect("daemon frames decode");
                }
            }
            Err(_) => return (first, false),
        }
    }
}

fn hello() -> ClientFrame {
    ClientFrame {
        kind: Some(ClientFrameKind::Hello(Hello {
            protocol_version: ipc::PROTOCOL_VERSION,
            client_name: "abuse-test".into(),
        })),
    }
}

fn frame(msg: &ClientFrame) -> Bytes {
    ipc::frame::frame_bytes(msg)
}

#[test]
fn bad_clients_get_clear_errors_and_the_daemon_keeps_serving_the_others() {
    let cluster = Cluster::start("ipc-abuse", 1, 1000, FORM_TIMEOUT);
    let socket = cluster.socket(1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let good = rt.block_on(async { Arc::new(Cpg::connect(&socket).await.expect("connect")) });
    rt.block_on(good.join(&group())).unwrap();

    // Garbage instead of a Hello: refused with a reason, then closed.
    let (answer, closed) = raw_exchange(&socket, b"\x00\x00\x00\x07garbage");
    assert!(closed, "the daemon must close a connection that sends garbage");
    match answer.and_then(|f| f.kind) {
        Some(ServerFrameKind::Refused(r)) => assert_eq!(r.error_code(), ipc::ErrorCode::Malformed, "{r:?}"),
        other => panic!("expected a Refused frame, got {other:?}"),
    }
    // A frame length far over the bound: closed without reading it.
    let (_, closed) = raw_exchange(&socket, &[0xff, 0xff, 0xff, 0xff, 0, 0]);
    assert!(closed, "an oversized frame must close the connection");
    // Another protocol version: a clear refusal.
    let mut old = hello();
    if let Some(ClientFrameKind::Hello(h)) = &mut old.kind {
        h.protocol_version = 99;
    }
    let (answer, _) = raw_exchange(&socket, &frame(&old));
    match answer.and_then(|f| f.kind) {
        Some(ServerFrameKind::Refused(r)) => {
            assert_eq!(r.error_code(), ipc::ErrorCode::Version);
            assert!(r.message.contains("99"), "{}", r.message);
        }
        other => panic!("expected a version refusal, got {other:?}"),
    }

    // A message over the maximum: TooLarge, nothing sent.
    let max = good.message_max() as usize;
    let err = rt.block_on(good.try_mcast(&group(), Guarantee::Agreed, vec![0u8; max + 1])).unwrap_err();
    assert!(matches!(err, CpgError::TooLarge { .. }), "{err:?}");

    // A member that never reads (another process, joined, then frozen with SIGSTOP): the good
    // client sends far more than the daemon keeps for one client. The daemon drops the frozen
    // one; the good client gets everything.
    let mut lazy = Command::new(env!("CARGO_BIN_EXE_totemctl"))
        .args(["cpg", "listen", "shared", "--socket"])
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start totemctl cpg listen");
    rt.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), good.next_event()).await {
                Ok(Some(CpgEvent::Confchg(c))) if c.members.len() == 2 => break,
                Ok(Some(_)) => {}
                other => panic!("the listener never joined: {other:?}"),
            }
        }
    });
    let lazy_pid = lazy.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &lazy_pid]).status().unwrap().success());
    const COUNT: usize = 800;
    const SIZE: usize = 64 << 10; // 800 × 64 KiB = 50 MiB, over the 32 MiB a client may leave unread
    rt.block_on(async {
        let reader = {
            let good = good.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while n < COUNT {
                    match tokio::time::timeout(Duration::from_secs(60), good.next_event()).await {
                        Ok(Some(CpgEvent::Deliver(m))) => {
                            assert_eq!(m.data.len(), SIZE);
                            n += 1;
                        }
                        Ok(Some(_)) => {}
                        other => panic!("good client stopped receiving after {n}: {other:?}"),
                    }
                }
            })
        };
        for _ in 0..COUNT {
            good.mcast(&group(), Guarantee::Agreed, vec![7u8; SIZE]).await.unwrap();
        }
        reader.await.unwrap();
    });
    let mut daemon_log = String::new();
    for _ in 0..100 {
        daemon_log = cluster.logs();
        if daemon_log.contains("not reading its events") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(daemon_log.contains("not reading its events"), "the lazy client was not dropped:\n{daemon_log}");
    let members = rt.block_on(good.membership(&group())).unwrap();
    assert_eq!(members.len(), 1, "the lazy client left the group (procdown): {members:?}");
    let _ = lazy.kill();
    let _ = lazy.wait();

    // A user without the right to connect (needs root to switch user).
    if std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(1) == 0 {
        let out = Command::new(env!("CARGO_BIN_EXE_totemctl"))
            .args(["cpg", "list", "--socket"])
            .arg(&socket)
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run totemctl as nobody");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
        assert!(
            stderr.contains("ermission denied") || stderr.contains("may not use totemd"),
            "no clear reason: {stderr}"
        );
    }

    // Through all of it, the good client still works.
    rt.block_on(good.mcast(&group(), Guarantee::Safe, "still here")).unwrap();
    let last = rt.block_on(async {
        loop {
            if let Some(CpgEvent::Deliver(m)) = good.next_event().await {
                break m.data;
            }
        }
    });
    assert_eq!(&last[..], b"still here");
    cluster.stop(EXIT_TIMEOUT);
}
