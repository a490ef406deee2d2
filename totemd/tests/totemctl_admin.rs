//! totemctl as the operator's one tool, against real daemons: `nodes` lists every node,
//! confdb shows quorum, groups and fencing under `runtime.`, `metrics` is valid Prometheus
//! text that moves with traffic and the HTTP listener serves the same, `shutdown` is a clean
//! leave its peer sees at once, a reload's `uidgid` change admits a user, and every
//! subcommand fails with one line and exit status 1 when no daemon answers.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::fenced::{port_free_on_loopbacks, two_node_conf};
use common::{new_rings, now, Daemon, TempDir};
use serde_json::Value;
use totemd::runtime::api::metrics;

const WAIT: Duration = Duration::from_secs(30);

fn totemctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_totemctl")).args(args).arg("--socket").arg(socket).output().expect("run")
}

fn ok_stdout(out: &Output) -> String {
    assert!(out.status.success(), "totemctl failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&ok_stdout(out)).expect("one JSON document")
}

/// `totemctl confdb get KEY --json`'s value, or `Null` when the key is not there.
fn confdb_value(socket: &Path, key: &str) -> Value {
    let out = totemctl(socket, &["confdb", "get", key, "--json"]);
    if !out.status.success() {
        return Value::Null;
    }
    json(&out)["value"].clone()
}

/// Polls until `check` holds, with what was last seen in the failure.
fn wait_until<T: std::fmt::Debug>(what: &str, mut probe: impl FnMut() -> T, check: impl Fn(&T) -> bool) -> T {
    let deadline = now() + WAIT;
    loop {
        let seen = probe();
        if check(&seen) {
            return seen;
        }
        assert!(now() < deadline, "{what}: last seen {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP port that was free a moment ago on 127.0.0.1.
fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind").port()
}

/// Two nodes, `two_node` votequorum, fencing by the test agent; node 1 serves metrics.
fn conf(port: u16, dir: &Path, system: &str) -> String {
    two_node_conf("admin", port, dir, system)
}

/// Starts node `node` from `dir/nodeN.conf`, its pid where the test agent finds it.
fn start(dir: &Path, node: u32) -> (Daemon, PathBuf) {
    let state = dir.join(format!("state{node}"));
    let mut args = common::config_args(&dir.join(format!("node{node}.conf")), &state);
    args.extend(["--nodeid".to_string(), node.to_string()]);
    let daemon = Daemon::spawn(&args);
    std::fs::write(dir.join("pids").join(format!("n{node}.pid")), daemon.pid().to_string()).unwrap();
    (daemon, state.join("totemd.sock"))
}

/// One HTTP/1.1 request to the metrics listener; what it answered before closing (a
/// listener that stops reading early may reset the connection: what arrived still counts).
fn http(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics listener");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The value of the sample `name` with exactly `labels`.
fn sample(samples: &[metrics::Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    samples.iter().find(|s| s.name == name && s.labels == want).map(|s| s.value)
}

fn scrape(socket: &Path) -> Vec<metrics::Sample> {
    let text = ok_stdout(&totemctl(socket, &["metrics"]));
    metrics::parse(&text).unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{text}"))
}

#[test]
fn nodes_quorum_groups_fencing_and_metrics_of_a_two_node_cluster() {
    let port = port_free_on_loopbacks(2);
    let http_port = free_tcp_port();
    let dir = TempDir::new("totemctl-admin");
    std::fs::create_dir_all(dir.path().join("pids")).unwrap();
    let listen = format!("system {{\n metrics_listen: {http_port}\n}}\n");
    std::fs::write(dir.path().join("node1.conf"), conf(port, dir.path(), &listen)).unwrap();
    std::fs::write(dir.path().join("node2.conf"), conf(port, dir.path(), "")).unwrap();
    let (mut one, s1) = start(dir.path(), 1);
    let (mut two, _s2) = start(dir.path(), 2);
    for d in [&mut one, &mut two] {
        assert!(d.wait_for_line(WAIT, |l| l.contains("members [1, 2]")), "no ring [1, 2]:\n{}", d.log());
    }

    // nodes: both, with names, addresses, votes, status and the link to the peer.
    let nodes = wait_until(
        "node 2's link up in `totemctl nodes`",
        || json(&totemctl(&s1, &["nodes", "--json"])),
        |n| n["nodes"][1]["links"][0]["connected"] == true,
    );
    assert_eq!(nodes["local_node_id"], 1, "{nodes}");
    for (i, name) in ["n1", "n2"].iter().enumerate() {
        let node = &nodes["nodes"][i];
        assert_eq!(node["node_id"], i + 1, "{nodes}");
        assert_eq!(node["name"], *name, "{nodes}");
        assert_eq!(node["addresses"][0], format!("127.0.0.{}", i + 1), "{nodes}");
        assert_eq!(node["votes"], 1, "{nodes}");
        assert_eq!(node["status"], "member", "{nodes}");
    }
    let table = ok_stdout(&totemctl(&s1, &["nodes"]));
    assert!(table.starts_with("Nodeid  Name"), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("1 ") && l.contains("n1 (local)") && l.contains("local")),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("2 ") && l.contains("n2") && l.contains("0:up")), "{table}");

    // Quorum and groups under runtime.
    assert_eq!(confdb_value(&s1, "runtime.votequorum.quorate"), 1);
    assert_eq!(confdb_value(&s1, "runtime.votequorum.two_node"), 1);
    assert_eq!(confdb_value(&s1, "runtime.votequorum.nodes.2.votes"), 1);
    assert_eq!(confdb_value(&s1, "runtime.fencing.pending"), "");
    let mut listener = Command::new(env!("CARGO_BIN_EXE_totemctl"))
        .args(["cpg", "listen", "admin-group", "--socket"])
        .arg(&s1)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        "the group in runtime.cpg",
        || confdb_value(&s1, "runtime.cpg.group.0.name"),
        |v| *v == "admin-group",
    );
    assert_eq!(confdb_value(&s1, "runtime.cpg.group_count"), 1);
    let mut sender = Command::new(env!("CARGO_BIN_EXE_totemctl"))
        .args(["cpg", "send", "admin-group", "--json", "--socket"])
        .arg(&s1)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    sender.stdin.take().unwrap().write_all(b"one\ntwo\n").unwrap();
    let sent: Value = serde_json::from_slice(&sender.wait_with_output().unwrap().stdout).expect("JSON");
    assert_eq!(sent, serde_json::json!({"group": "admin-group", "sent": 2}));
    assert_eq!(confdb_value(&s1, "runtime.cpg.group.0.members"), format!("1:{}", listener.id()));

    // metrics: valid text, labels, counters that move with the token.
    let first = scrape(&s1);
    assert_eq!(sample(&first, "totem_node_id", &[]), Some(1.0));
    assert_eq!(sample(&first, "totem_quorate", &[]), Some(1.0));
    assert_eq!(sample(&first, "totem_link_up", &[("node", "2"), ("link", "0")]), Some(1.0));
    assert_eq!(sample(&first, "totem_cpg_groups", &[]), Some(1.0));
    assert_eq!(sample(&first, "totem_packets_dropped_total", &[("reason", "auth")]), Some(0.0));
    assert_eq!(sample(&first, "totem_quorum_node_votes", &[("node", "2")]), Some(1.0));
    for counter in ["totem_packets_sent_total", "totem_bytes_sent_total", "totem_token_rotations_total"] {
        let before = sample(&first, counter, &[]).unwrap_or_else(|| panic!("no {counter}"));
        wait_until(
            &format!("{counter} above {before}"),
            || sample(&scrape(&s1), counter, &[]),
            |v| v.is_some_and(|v| v > before),
        );
    }
    let as_json = json(&totemctl(&s1, &["metrics", "--json"]));
    assert!(as_json
        .as_array()
        .is_some_and(|a| a.iter().any(|s| s["name"] == "totem_membership_changes_total")));

    // The HTTP listener: the same families, 404 elsewhere, garbage refused, the daemon unhurt.
    let answer = http(http_port, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    let served = metrics::parse(body).unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{body}"));
    assert_eq!(sample(&served, "totem_node_id", &[]), Some(1.0));
    let names =
        |s: &[metrics::Sample]| s.iter().map(|s| s.name.clone()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(names(&served), names(&first));
    assert!(http(http_port, b"GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
    assert!(http(http_port, b"\x00\xffgarbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
    let oversized = http(http_port, &[b'A'; 20_000]);
    assert!(oversized.is_empty() || oversized.starts_with("HTTP/1.1 400 "), "{oversized}");
    assert!(!one.exited(), "garbage on the metrics port stopped the daemon:\n{}", one.log());
    assert!(http(http_port, b"GET /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200 "));

    // Fencing: a manual fence of node 2 lands in node 1's history.
    let fence = totemctl(&s1, &["fence", "2", "--json"]);
    assert_eq!(json(&fence)["node_id"], 2);
    let deadline = now() + WAIT;
    while !two.exited() {
        assert!(now() < deadline, "node 2 survived its fence");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_until("a fencing history entry", || confdb_value(&s1, "runtime.fencing.history_count"), |v| *v == 1);
    assert_eq!(confdb_value(&s1, "runtime.fencing.history.0.node"), 2);
    assert_eq!(confdb_value(&s1, "runtime.fencing.history.0.result"), "power");
    let time = confdb_value(&s1, "runtime.fencing.history.0.time").as_u64().expect("a time");
    let unix = u64::from(totemd::runtime::unix_seconds());
    assert!(time + 120 > unix && time <= unix + 1, "fenced at {time}, now {unix}");
    assert_eq!(sample(&scrape(&s1), "totem_fence_history_entries", &[]), Some(1.0));

    let _ = listener.kill();
    let _ = listener.wait();
    one.terminate();
    let exit = one.wait(WAIT);
    assert!(exit.status.success(), "{}", exit.log);
}

/// `totemctl shutdown` on node 2: it leaves cleanly and exits 0; node 1 logs the clean leave
/// and installs [1] long before its 20 s token could time out; `nodes` shows it left.
#[test]
fn shutdown_is_a_clean_leave_the_peer_sees_at_once() {
    let mut cluster = common::cluster::Cluster::start("shutdown", 2, 20_000, WAIT);
    let s1 = cluster.socket(1);
    let nodes = json(&totemctl(&s1, &["nodes", "--json"]));
    let ids: Vec<&Value> = nodes["nodes"].as_array().expect("nodes").iter().map(|n| &n["node_id"]).collect();
    assert_eq!(ids, [1, 2], "{nodes}");
    assert!(nodes["nodes"].as_array().unwrap().iter().all(|n| n["status"] == "member"), "{nodes}");
    // Started without a nodelist: node 2's address is where node 1's link sends.
    assert_eq!(
        nodes["nodes"][1]["addresses"][0].as_str().map(|a| a.starts_with("127.0.0.2:")),
        Some(true),
        "{nodes}"
    );

    // A tracker of runtime.members. sees node 2 leave.
    let mut tracker = Command::new(env!("CARGO_BIN_EXE_totemctl"))
        .args(["confdb", "track", "runtime.members.", "--socket"])
        .arg(&s1)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let tracked = tracker.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(tracked).lines().map_while(Result::ok).try_for_each(|l| tx.send(l))
    });
    wait_until("the tracker connected", || ipc_clients(&s1), |n| *n >= 2.0);
    // Its track request follows its handshake at once; give the daemon a moment to take it.
    std::thread::sleep(Duration::from_millis(200));

    let rings_before = new_rings(&cluster.daemon(1).log()).len();
    let started = now();
    let out = totemctl(&cluster.socket(2), &["shutdown", "--json"]);
    assert_eq!(json(&out)["stopped"], true);
    let two = cluster.daemons[1].take().expect("node 2");
    let exit = two.wait(WAIT);
    assert!(exit.status.success(), "node 2 did not exit 0:\n{}", exit.log);
    assert!(exit.log.contains("stopping: shutdown requested; leaving the ring"), "{}", exit.log);
    // The ring formed after the leave (node 1 also formed [1] alone at its start).
    let deadline = now() + Duration::from_secs(15);
    while new_rings(&cluster.daemon(1).log()).len() <= rings_before && now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        new_rings(&cluster.daemon(1).log()).len() > rings_before,
        "node 1 did not form [1] at once:\n{}",
        cluster.logs()
    );
    assert!(now() - started < Duration::from_secs(15), "a new ring only after a token timeout");
    let log = cluster.daemon(1).log();
    assert!(log.contains("member left the ring cleanly"), "{log}");
    assert_eq!(new_rings(&log).last().map(|r| r.members.as_str()), Some("[1]"));
    let status = wait_until(
        "node 2 left in `totemctl nodes`",
        || json(&totemctl(&s1, &["nodes", "--json"])),
        |n| n["nodes"][1]["status"] == "left",
    );
    assert_eq!(status["nodes"][0]["status"], "member");
    let line = rx.recv_timeout(WAIT).expect("a notification");
    let _ = tracker.kill();
    let _ = tracker.wait();
    let change: Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(change["key"], "runtime.members.2.status", "{line}");
    assert_eq!(change["kind"], "changed", "{line}");
    assert_eq!(change["old"]["value"], "joined", "{line}");
    assert_eq!(change["new"]["value"], "left", "{line}");
    cluster.stop(WAIT);
}

/// Local API connections of the daemon at `socket` (the scrape's own included).
fn ipc_clients(socket: &Path) -> f64 {
    sample(&scrape(socket), "totem_ipc_clients", &[]).unwrap_or(0.0)
}

fn single_conf(port: u16, uidgid: &str) -> String {
    format!(
        "totem {{\n version: 2\n cluster_name: grants\n transport: udpu\n \
         interface {{\n  linknumber: 0\n  mcastport: {port}\n }}\n}}\n\
         nodelist {{\n node {{\n  ring0_addr: 127.0.0.1\n  nodeid: 1\n }}\n}}\n{uidgid}\
         logging {{\n to_stderr: yes\n to_syslog: no\n}}\n"
    )
}

/// totemctl run as uid/gid 65534 (nobody).
fn as_nobody(socket: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_totemctl"));
    command.args(args).arg("--socket").arg(socket).uid(65534).gid(65534);
    command.output().expect("run totemctl as nobody")
}

/// A reload that adds `uidgid { uid: 65534 }` admits that user from the next connection on;
/// confdb shows the grant; the user still may not write.
#[test]
fn a_reload_applies_uidgid_to_new_connections() {
    if !std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0) {
        eprintln!("skipped: needs root to run totemctl as another user");
        return;
    }
    let dir = TempDir::new("uidgid-reload");
    std::fs::create_dir_all(dir.path()).unwrap();
    let port = common::free_port();
    let file = dir.path().join("corosync.conf");
    let state = dir.path().join("state");
    std::fs::write(&file, single_conf(port, "")).unwrap();
    let mut daemon = Daemon::spawn(&common::config_args(&file, &state));
    assert!(daemon.wait_for_line(WAIT, |l| l.contains("new ring")), "no ring:\n{}", daemon.log());
    let socket = state.join("totemd.sock");

    let refused = as_nobody(&socket, &["confdb", "get", "totem.cluster_name"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    // Nobody else granted: the socket is 0600, so the kernel refuses before the daemon can.
    assert!(err.contains("Permission denied") && err.lines().count() == 1, "{err}");
    assert_eq!(confdb_value(&socket, "runtime.access.uids"), "");

    std::fs::write(&file, single_conf(port, "uidgid {\n uid: 65534\n}\n")).unwrap();
    let reload = json(&totemctl(&socket, &["reload", "--json"]));
    let applied = reload["applied"].as_array().expect("applied");
    assert!(applied.iter().any(|c| c.as_str().is_some_and(|c| c.starts_with("uidgid."))), "{reload}");
    assert_eq!(confdb_value(&socket, "runtime.access.uids"), "65534");
    let read = as_nobody(&socket, &["confdb", "get", "totem.cluster_name"]);
    assert_eq!(ok_stdout(&read), "totem.cluster_name (str) = grants\n");
    let write = as_nobody(&socket, &["confdb", "set", "test.x", "u8", "1"]);
    assert_eq!(write.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&write.stderr).contains("may not write"));

    daemon.terminate();
    let exit = daemon.wait(WAIT);
    assert!(exit.status.success(), "{}", exit.log);
}

/// Every subcommand that talks to the daemon: exit status 1 and one line naming the socket
/// when nothing listens there.
#[test]
fn every_subcommand_says_in_one_line_that_no_daemon_answers() {
    let dir = TempDir::new("no-daemon");
    let socket = dir.path().join("totemd.sock");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["nodes"],
        &["nodes", "--json"],
        &["reload"],
        &["shutdown"],
        &["metrics"],
        &["metrics", "--json"],
        &["quorum"],
        &["quorum", "--json"],
        &["quorum", "expected", "2"],
        &["fence", "2"],
        &["fence", "ack", "2"],
        &["cpg", "list"],
        &["cpg", "listen", "g"],
        &["confdb", "get", "totem.token"],
        &["confdb", "set", "a.b", "u8", "1"],
        &["confdb", "delete", "a.b"],
        &["confdb", "dump"],
        &["confdb", "track", "totem."],
    ] {
        let out = totemctl(&socket, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("totemctl: ") && err.contains("cannot connect to totemd at"),
            "{args:?}: {err}"
        );
        assert!(err.contains(&socket.display().to_string()), "{args:?}: {err}");
    }
}

/// Completion scripts come from the CLI definition and name its subcommands.
#[test]
fn completion_scripts_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_totemctl")).args(["completion", shell]).output().unwrap();
        let script = ok_stdout(&out);
        for sub in ["status", "nodes", "shutdown", "metrics", "confdb", "completion"] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let help = Command::new(env!("CARGO_BIN_EXE_totemctl")).args(["help", "shutdown"]).output().unwrap();
    assert!(ok_stdout(&help).contains("corosync-cfgtool -H"));
}
