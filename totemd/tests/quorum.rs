//! votequorum through real daemons: three nodes keep quorum with two and lose it with one
//! (quorum = expected / 2 + 1), as `totemctl quorum` reports it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cluster::Cluster;
use common::now;
use serde_json::Value;

const FORM_TIMEOUT: Duration = Duration::from_secs(30);

fn quorum_json(socket: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_totemctl"))
        .args(["quorum", "--json", "--socket"])
        .arg(socket)
        .output()
        .expect("run totemctl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// Waits until node 1 reports `total_votes` votes; returns its status.
fn wait_for_votes(cluster: &Cluster, total_votes: u64) -> Value {
    let deadline = now() + FORM_TIMEOUT;
    loop {
        let q = quorum_json(&cluster.socket(1));
        if q["total_votes"] == total_votes {
            return q;
        }
        assert!(now() < deadline, "no status with {total_votes} votes: {q}\n{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_nodes_keep_quorum_with_two_and_lose_it_with_one() {
    let mut cluster = Cluster::start("quorum", 3, 1000, FORM_TIMEOUT);
    let q = wait_for_votes(&cluster, 3);
    assert_eq!(q["provider"], "corosync_votequorum");
    assert_eq!(
        (q["quorate"].clone(), q["expected_votes"].clone(), q["quorum"].clone()),
        (true.into(), 3.into(), 2.into())
    );
    let text = Command::new(env!("CARGO_BIN_EXE_totemctl"))
        .args(["quorum", "--socket"])
        .arg(cluster.socket(1))
        .output()
        .expect("run totemctl");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Quorate:          Yes") && text.contains("Expected votes:   3"), "{text}");

    // A tracking client: the current state first, then each change.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tracker = rt.block_on(quorum::client::Quorum::connect(cluster.socket(1))).expect("connect");
    assert!(rt.block_on(tracker.is_quorate()).unwrap());
    rt.block_on(tracker.track()).unwrap();
    let next = |what: &str| {
        rt.block_on(async { tokio::time::timeout(FORM_TIMEOUT, tracker.next_event()).await })
            .unwrap_or_else(|_| panic!("no quorum event: {what}"))
            .expect("connection open")
    };
    let current = next("current state");
    assert!(current.quorate);
    assert_eq!(current.members.len(), 3);

    cluster.kill(3);
    cluster.wait_for_ring(&[1, 2], FORM_TIMEOUT);
    let q = wait_for_votes(&cluster, 2);
    assert_eq!(q["quorate"], true, "two of three keep quorum: {q}");

    cluster.kill(2);
    cluster.wait_for_ring(&[1], FORM_TIMEOUT);
    let q = wait_for_votes(&cluster, 1);
    assert_eq!(q["quorate"], false, "one of three has no quorum: {q}");
    // The tracker saw quorum kept with two members, then lost with one.
    let mut seen = Vec::new();
    while seen.last().is_none_or(|e: &quorum::client::TrackEvent| e.quorate) {
        seen.push(next("the loss of quorum"));
    }
    assert!(seen.iter().any(|e| e.quorate && e.members.len() == 2), "{seen:?}");
    assert_eq!(seen.last().map(|e| e.members.len()), Some(1), "{seen:?}");
    assert_eq!(q["quorum"], 2);
    assert!(
        cluster.daemon(1).wait_for_line(FORM_TIMEOUT, |l| l.contains("NOT quorate")),
        "the loss of quorum is logged:\n{}",
        cluster.logs()
    );
    cluster.stop(Duration::from_secs(30));
}
