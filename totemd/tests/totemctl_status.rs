//! `totemctl status` against real daemons: the ring, its members and each link as JSON and as
//! text; a clear one-line error when the daemon is down.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::cluster::Cluster;
use common::now;

const FORM_TIMEOUT: Duration = Duration::from_secs(30);

fn totemctl(args: &[&str], socket: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_totemctl"))
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .expect("run totemctl")
}

#[test]
fn status_shows_the_ring_members_and_links_and_a_stopped_daemon_is_a_clear_error() {
    let cluster = Cluster::start("status", 2, 1000, FORM_TIMEOUT);
    let socket = cluster.socket(2);
    // The links come up with the first heartbeats: wait for node 1's link to show up.
    let deadline = now() + FORM_TIMEOUT;
    let status = loop {
        let out = totemctl(&["status", "--json"], &socket);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        if status["links"].as_array().is_some_and(|l| l.iter().any(|l| l["up"] == true)) {
            break status;
        }
        assert!(now() < deadline, "link to node 1 never up: {status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["node_id"], 2);
    assert_eq!(status["members"], serde_json::json!([1, 2]));
    assert_eq!(status["state"], "operational");
    let ring_id = status["ring_id"].as_str().expect("ring_id text");
    assert!(ring_id.starts_with("1."), "the representative is node 1: {ring_id}");
    assert_eq!(status["links"][0]["node_id"], 1);

    let text = totemctl(&["status"], &socket);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Local node ID 2") && text.contains("Members: 1 2"), "{text}");
    assert!(text.contains("nodeid:   1:\tconnected"), "{text}");

    cluster.stop(Duration::from_secs(30));
    let out = totemctl(&["status"], &socket);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("is totemd running?"), "{stderr}");
}
