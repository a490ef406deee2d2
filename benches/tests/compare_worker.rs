//! totem's driver of `benches compare` against a real one-node totemd on loopback: two
//! members join, one sends for a short window, and both report what the workload protocol
//! promises (the sender's own latencies, the other member's, the counts of the window).
//!
//! Needs the `totemd` binary next to `benches` (`cargo test --workspace` builds it); without it
//! the test says so and passes.

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use workload::{histogram, to_line, wall_ns, Reply, RunSpec};

/// A child killed when dropped, so a failing assertion leaves nothing running.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn totemd() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_benches")).with_file_name("totemd");
    path.is_file().then_some(path)
}

fn reply(lines: &mut impl BufRead) -> Reply {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(lines.read_line(&mut line).expect("driver output") > 0, "driver exited");
        if line.starts_with('{') {
            return serde_json::from_str(&line).expect("a protocol reply");
        }
    }
}

#[test]
fn two_members_measure_one_window() {
    let Some(totemd) = totemd() else {
        println!("skipped: no totemd next to the benches binary (cargo build -p totemd)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("free port").port();
    let daemon = Command::new(totemd)
        .args(["--state-dir", dir.path().to_str().expect("utf-8 path"), "--token", "1000"])
        .args(["--bind", &format!("127.0.0.1:{port}"), "--run-for", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start totemd");
    let _daemon = Killed(daemon);
    let socket = dir.path().join("totemd.sock");
    let mut drivers: Vec<(Killed, BufReader<std::process::ChildStdout>)> = (1..=2)
        .map(|id: u32| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_benches"))
                .args(["compare-worker", "--socket", socket.to_str().expect("utf-8 path")])
                .args(["--id", &id.to_string(), "--members", "2"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start driver");
            let out = BufReader::new(child.stdout.take().expect("piped"));
            (Killed(child), out)
        })
        .collect();
    for (id, (_, out)) in (1..=2).zip(&mut drivers) {
        assert_eq!(reply(out), Reply::Ready { id }, "each driver sees both members");
    }
    let start_ns = wall_ns() + Duration::from_millis(200).as_nanos() as u64;
    for (i, (child, _)) in drivers.iter_mut().enumerate() {
        let spec = RunSpec { size: 256, send: i == 0, start_ns, warmup_ms: 200, measure_ms: 500, rate: 0 };
        let stdin = child.0.stdin.as_mut().expect("piped");
        writeln!(stdin, "{}", to_line(&workload::Command::Run(spec))).expect("command sent");
    }
    let results: Vec<_> = drivers
        .iter_mut()
        .map(|(_, out)| match reply(out) {
            Reply::Run(r) => r,
            other => panic!("expected a run result, got {other:?}"),
        })
        .collect();
    let (sender, receiver) = (&results[0], &results[1]);
    assert!(sender.sent > 0, "the sender sent in the window: {sender:?}");
    assert_eq!(receiver.sent, 0, "the other member only reads");
    assert!(sender.delivered > 0 && receiver.delivered > 0, "both members had deliveries");
    assert_eq!(histogram([sender.own_us.as_slice()]).len(), sender.delivered, "the sender's are its own");
    assert!(sender.other_us.is_empty(), "nobody else sent");
    assert_eq!(histogram([receiver.other_us.as_slice()]).len(), receiver.delivered);
    // Both count the same window of one total order: they differ only by messages in flight
    // at its two edges (wide margin: a loaded host may stall one reader at an edge).
    let gap = sender.delivered.abs_diff(receiver.delivered);
    assert!(gap <= sender.delivered / 2 + 100, "members agree on the window: {sender:?} {receiver:?}");
}
