#![allow(dead_code)] // each test binary uses a different part of these helpers
//! Helpers for tests that run the real `totemd` binary on 127.0.0.1.
//!
//! Every daemon is killed and every directory removed on drop, so a failing test cleans up too.

pub mod cluster;
pub mod cpg;
pub mod fenced;
pub mod netns;

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A unique, not yet existing path (the daemon creates it).
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("totemd-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path as a command-line argument.
    pub fn arg(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A UDP port on 127.0.0.1 that was free a moment ago (the kernel picked it). Another process
/// may take it before the daemon binds it; callers retry when the daemon reports a bind error.
pub fn free_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral port on 127.0.0.1");
    socket.local_addr().expect("local address").port()
}

/// A running `totemd` whose stdout and stderr lines are collected.
pub struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<thread::JoinHandle<()>>,
    status: Option<ExitStatus>,
}

/// How a daemon ended.
pub struct Exit {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed, stdout and stderr interleaved as read.
    pub log: String,
}

impl Daemon {
    /// Starts the daemon built for this test run with `args`.
    pub fn spawn(args: &[String]) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_totemd"));
        command.args(args);
        Daemon::start(command)
    }

    /// Starts the daemon with `args` and no `RUST_LOG`: its configuration file alone sets the
    /// log levels.
    pub fn spawn_without_rust_log(args: &[String]) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_totemd"));
        command.args(args).env_remove("RUST_LOG");
        Daemon::collect_output(command)
    }

    /// Starts `command` (a totemd, possibly behind a wrapper that execs it) with its output
    /// collected.
    fn start(mut command: Command) -> Daemon {
        command.env("RUST_LOG", "info");
        Daemon::collect_output(command)
    }

    fn collect_output(mut command: Command) -> Daemon {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start totemd");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let readers = vec![collect(stdout, lines.clone()), collect(stderr, lines.clone())];
        Daemon { child, lines, readers, status: None }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        self.lines.lock().expect("log lock").join("\n")
    }

    /// Waits until a line satisfies `pred`; false on timeout or if the daemon exited first.
    pub fn wait_for_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = now() + timeout;
        loop {
            if self.lines.lock().expect("log lock").iter().any(|l| pred(l)) {
                return true;
            }
            if now() >= deadline || self.exited() {
                // One last look: the line may have come with the exit.
                thread::sleep(Duration::from_millis(50));
                return self.lines.lock().expect("log lock").iter().any(|l| pred(l));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status =
            Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status.is_some()
    }

    /// Waits for the daemon to exit by itself; panics (after killing it) on timeout.
    pub fn wait(mut self, timeout: Duration) -> Exit {
        let deadline = now() + timeout;
        while !self.exited() {
            if now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("totemd did not exit within {timeout:?}; log:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(20));
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Exit { status: self.status.expect("exited"), log: self.log() }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The wall clock: these tests wait for real processes. (Only the sans-IO crates must not
/// read it; the workspace clippy.toml forbids it everywhere, so allow it in this one place.)
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

fn collect(stream: impl Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            lines.lock().expect("log lock").push(line);
        }
    })
}

/// A `new ring R members M` line of the daemon's log, as (ring seq, representative, members).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingLine {
    /// The ring seq.
    pub seq: u64,
    /// The representative.
    pub representative: u32,
    /// The members, as printed: `[1, 2]`.
    pub members: String,
}

/// Every `new ring R members [..]` line of `log`, in order.
pub fn new_rings(log: &str) -> Vec<RingLine> {
    log.lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once("new ring ")?;
            let (ring, members) = rest.split_once(" members ")?;
            let (representative, seq) = ring.split_once('.')?;
            Some(RingLine {
                seq: seq.parse().ok()?,
                representative: representative.parse().ok()?,
                members: members.trim().to_string(),
            })
        })
        .collect()
}

/// Whether a daemon failed because its port was taken (the test should pick another).
pub fn bind_failed(log: &str) -> bool {
    log.contains("cannot bind UDP")
}

/// The ring seq stored in a state directory.
pub fn stored_ring_seq(state_dir: &Path) -> u64 {
    let text = std::fs::read_to_string(state_dir.join("ring_seq")).expect("read ring_seq");
    text.trim_end().parse().unwrap_or_else(|_| panic!("ring_seq holds {text:?}"))
}

impl Daemon {
    /// Starts the daemon built for this test run with `args` inside network namespace `netns`,
    /// through `ip netns exec` (which execs, so the child's pid is the daemon's own).
    pub fn spawn_in_netns(netns: &str, args: &[String]) -> Daemon {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", netns, env!("CARGO_BIN_EXE_totemd")]).args(args);
        Daemon::start(command)
    }
}

/// The command line of a daemon run from config `file` with state in `state`, stopping by
/// itself after two minutes.
pub fn config_args(file: &Path, state: &Path) -> Vec<String> {
    let run = ["--config", &file.display().to_string(), "--state-dir", &state.display().to_string()]
        .map(String::from);
    run.into_iter().chain(["--run-for".to_string(), "120".to_string()]).collect()
}

/// The command line of a daemon run without a config file: node `node` with state in `state`,
/// bound at `bind`, peering `peers` (node id, address), with `--token token_ms` and, when given,
/// `--run-for`.
pub fn peer_args(
    state: &TempDir,
    node: u32,
    bind: &str,
    peers: &[(u32, String)],
    token_ms: &str,
    run_for: Option<&str>,
) -> Vec<String> {
    let mut args: Vec<String> = ["--state-dir", &state.arg(), "--nodeid", &node.to_string(), "--bind", bind]
        .into_iter()
        .chain(["--token", token_ms])
        .map(String::from)
        .collect();
    if let Some(run_for) = run_for {
        args.extend(["--run-for".to_string(), run_for.to_string()]);
    }
    for (id, addr) in peers {
        args.extend(["--peer".to_string(), format!("{id}={addr}")]);
    }
    args
}

/// SIGTERMs every daemon, then checks that each stopped cleanly within `timeout`.
pub fn stop_all(timeout: Duration, daemons: Vec<Daemon>) {
    for daemon in &daemons {
        daemon.terminate();
    }
    for (i, daemon) in daemons.into_iter().enumerate() {
        let exit = daemon.wait(timeout);
        assert!(exit.status.success(), "node {} did not stop cleanly:\n{}", i + 1, exit.log);
    }
}
