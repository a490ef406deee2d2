//! The daemon's confdb through `totemctl confdb`: the configuration file's keys, runtime
//! counters that move with traffic, a tracker seeing a reload's change, writes refused to an
//! unprivileged user and to `runtime.` keys, and a clear error when no daemon answers.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Daemon, TempDir};

const WAIT: Duration = Duration::from_secs(30);

fn conf(port: u16, token: u32) -> String {
    format!(
        "totem {{\n version: 2\n cluster_name: confdb\n transport: udpu\n token: {token}\n \
         interface {{\n  linknumber: 0\n  mcastport: {port}\n }}\n}}\n\
         nodelist {{\n node {{\n  ring0_addr: 127.0.0.1\n  nodeid: 1\n }}\n}}\n\
         uidgid {{\n uid: nobody\n}}\n\
         logging {{\n to_stderr: yes\n to_syslog: no\n}}\n"
    )
}

fn totemctl(socket: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_totemctl"));
    command.arg("confdb").args(args).arg("--socket").arg(socket);
    command
}

fn run(mut command: Command) -> Output {
    command.output().expect("run totemctl")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `totemctl confdb get KEY` as a JSON value.
fn get_json(socket: &Path, key: &str) -> serde_json::Value {
    let out = run(totemctl(socket, &["get", key, "--json"]));
    assert!(out.status.success(), "get {key}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn confdb_shows_config_and_runtime_keys_tracks_reloads_and_guards_writes() {
    let dir = TempDir::new("confdb");
    std::fs::create_dir_all(dir.path()).unwrap();
    let port = common::free_port();
    let file = dir.path().join("corosync.conf");
    let state = dir.path().join("state");
    std::fs::write(&file, conf(port, 1000)).unwrap();
    let mut daemon = Daemon::spawn(&common::config_args(&file, &state));
    assert!(daemon.wait_for_line(WAIT, |l| l.contains("new ring")), "no ring:\n{}", daemon.log());
    let socket = state.join("totemd.sock");

    // The configuration file's keys, typed as corosync types them.
    let out = run(totemctl(&socket, &["get", "totem.token"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "totem.token (u32) = 1000\n");
    let dump = run(totemctl(&socket, &["dump", "totem."]));
    assert!(stdout(&dump).contains("totem.cluster_name (str) = confdb\n"), "{}", stdout(&dump));
    assert!(stdout(&dump).lines().all(|l| l.starts_with("totem.")), "{}", stdout(&dump));
    let all = run(totemctl(&socket, &["dump", "--json"]));
    let all: serde_json::Value = serde_json::from_slice(&all.stdout).expect("one JSON document");
    assert!(all.as_array().is_some_and(|a| a.iter().any(|e| e["key"] == "nodelist.node.0.nodeid")), "{all}");

    // Runtime keys: the ring, this node joined, counters moving while the token circulates.
    assert!(get_json(&socket, "runtime.totem.ring_id")["value"]
        .as_str()
        .is_some_and(|r| r.starts_with("1.")));
    assert_eq!(get_json(&socket, "runtime.members.1.status")["value"], "joined");
    let before = get_json(&socket, "runtime.totem.packets_sent")["value"].as_u64().expect("a u64");
    let deadline = common::now() + WAIT;
    loop {
        let now = get_json(&socket, "runtime.totem.packets_sent")["value"].as_u64().expect("a u64");
        if now > before {
            break;
        }
        assert!(common::now() < deadline, "runtime.totem.packets_sent stayed at {before}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Root writes client keys, never runtime ones.
    let set = run(totemctl(&socket, &["set", "test.answer", "u32", "42"]));
    assert!(set.status.success(), "{}", stderr(&set));
    assert_eq!(get_json(&socket, "test.answer")["value"], 42);
    let ro = run(totemctl(&socket, &["set", "runtime.totem.ring_id", "str", "x"]));
    assert_eq!(ro.status.code(), Some(1));
    assert!(stderr(&ro).contains("read-only"), "{}", stderr(&ro));
    let bad = run(totemctl(&socket, &["set", "test.bad", "u8", "300"]));
    assert_eq!(bad.status.code(), Some(1), "{}", stdout(&bad));

    // A tracker sees the reload's change of totem.token.
    let mut tracker = totemctl(&socket, &["track", "totem."]).stdout(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = tracker.stdout.take().unwrap();
    std::thread::spawn(move || {
        BufReader::new(out).lines().map_while(Result::ok).try_for_each(|l| tx.send(l))
    });
    // The track is in place once a marker key set now is reported.
    let deadline = common::now() + WAIT;
    for n in 0.. {
        let set = run(totemctl(&socket, &["set", "totem.test_marker", "u32", &n.to_string()]));
        assert!(set.status.success(), "{}", stderr(&set));
        if rx.recv_timeout(Duration::from_millis(200)).is_ok_and(|l| l.contains("totem.test_marker")) {
            break;
        }
        assert!(common::now() < deadline, "the tracker printed nothing");
    }
    while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
    std::fs::write(&file, conf(port, 1500)).unwrap();
    let reload =
        Command::new(env!("CARGO_BIN_EXE_totemctl")).args(["reload", "--socket"]).arg(&socket).output();
    assert!(reload.expect("run totemctl").status.success());
    let line = rx.recv_timeout(WAIT).expect("a notification");
    let _ = tracker.kill();
    let _ = tracker.wait();
    let notify: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(notify["key"], "totem.token", "{line}");
    assert_eq!(notify["kind"], "changed", "{line}");
    assert_eq!(notify["old"]["value"], 1000, "{line}");
    assert_eq!(notify["new"]["value"], 1500, "{line}");

    // An unprivileged user (admitted by uidgid) reads but may not write.
    if running_as_root() {
        let mut read = totemctl(&socket, &["get", "totem.token"]);
        read.uid(65534).gid(65534);
        let read = run(read);
        assert!(read.status.success(), "{}", stderr(&read));
        assert_eq!(stdout(&read), "totem.token (u32) = 1500\n");
        let mut write = totemctl(&socket, &["set", "test.answer", "u32", "7"]);
        write.uid(65534).gid(65534);
        let write = run(write);
        assert_eq!(write.status.code(), Some(1), "{}", stdout(&write));
        assert!(stderr(&write).contains("may not write"), "{}", stderr(&write));
        assert_eq!(get_json(&socket, "test.answer")["value"], 42);
    }

    daemon.terminate();
    let exit = daemon.wait(WAIT);
    assert!(exit.status.success(), "{}", exit.log);

    // No daemon: one clear line, exit status 1.
    let down = run(totemctl(&socket, &["get", "totem.token"]));
    assert_eq!(down.status.code(), Some(1));
    let err = stderr(&down);
    assert!(err.starts_with("totemctl: confdb get: ") && err.lines().count() == 1, "{err}");
}

/// Whether the test runs as root (it may then run totemctl as another user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

/// Polls `key` on `socket` until its JSON value is `want`.
fn wait_for_value(socket: &Path, key: &str, want: serde_json::Value) {
    let deadline = common::now() + WAIT;
    loop {
        let out = run(totemctl(socket, &["get", key, "--json"]));
        let got = serde_json::from_slice::<serde_json::Value>(&out.stdout).map(|v| v["value"].clone());
        if got.as_ref().is_ok_and(|v| *v == want) {
            return;
        }
        assert!(common::now() < deadline, "{key} is {got:?}, not {want} ({})", stderr(&out));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn confdb_runtime_keys_follow_members_and_links() {
    let mut cluster = common::cluster::Cluster::start("confdb-links", 2, 300, WAIT);
    let socket = cluster.socket(1);
    wait_for_value(&socket, "runtime.members.2.status", "joined".into());
    wait_for_value(&socket, "runtime.links.2.0.connected", 1.into());
    // Traffic from the peer moves the byte counters; nothing was dropped for failed auth.
    let received = get_json(&socket, "runtime.totem.bytes_received")["value"].as_u64().expect("a u64");
    assert!(received > 0, "no bytes received from node 2");
    assert_eq!(get_json(&socket, "runtime.totem.dropped_auth")["value"], 0);
    assert!(get_json(&socket, "runtime.totem.membership_changes")["value"].as_u64() >= Some(1));
    cluster.kill(2);
    wait_for_value(&socket, "runtime.members.2.status", "left".into());
    wait_for_value(&socket, "runtime.links.2.0.connected", 0.into());
    cluster.stop(WAIT);
}
