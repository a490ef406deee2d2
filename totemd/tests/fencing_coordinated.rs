//! Fencing shared by three members (fenced's domain): one member runs a victim's agent and
//! the others learn the result; a manual fence asked on one member runs once; every node
//! unfences itself at start; quorum trackers are told while a fence is pending.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::fenced::{port_free_on_loopbacks, FencedCluster, AGENT};
use common::{now, Daemon};

const WAIT: Duration = Duration::from_secs(30);

fn conf(port: u16, dir: &Path) -> String {
    let mut nodes = String::new();
    let mut fencing = String::new();
    for n in 1..=3 {
        nodes += &format!(" node {{\n  ring0_addr: 127.0.0.{n}\n  nodeid: {n}\n  name: n{n}\n }}\n");
        fencing += &format!(
            " node {{\n  name: n{n}\n  method {{\n   name: power\n   device {{\n    name: power\n    port: n{n}\n   }}\n  }}\n  \
             unfence {{\n   device {{\n    name: power\n    port: n{n}\n   }}\n  }}\n }}\n"
        );
    }
    format!(
        "totem {{\n version: 2\n cluster_name: fence3\n transport: udpu\n token: 1000\n \
         interface {{\n  linknumber: 0\n  mcastport: {port}\n }}\n}}\n\
         nodelist {{\n{nodes}}}\n\
         quorum {{\n provider: corosync_votequorum\n}}\n\
         logging {{\n to_stderr: yes\n to_syslog: no\n}}\n\
         fencing {{\n post_join_delay: 60\n device {{\n  name: power\n  agent: {AGENT}\n  logfile: {log}\n  pidfile_dir: {pids}\n }}\n{fencing}}}\n",
        log = dir.join("fence.log").display(),
        pids = dir.join("pids").display(),
    )
}

/// `totemctl quorum --json` of `node`.
fn quorum(cluster: &FencedCluster, node: u32) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_totemctl"))
        .args(["quorum", "--json", "--socket"])
        .arg(cluster.socket(node))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).expect("quorum JSON")
}

/// Waits until `node` reports no pending fence and service running.
fn wait_until_released(cluster: &FencedCluster, node: u32) {
    let deadline = now() + WAIT;
    loop {
        let q = quorum(cluster, node);
        if q["fence_pending"] == serde_json::json!([]) && q["fencing_held"] == false {
            return;
        }
        assert!(now() < deadline, "node {node} still holds for fencing: {q}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ring_of_three(daemons: &mut [&mut Daemon]) {
    for d in daemons.iter_mut() {
        assert!(
            d.wait_for_line(WAIT, |l| l.contains("members [1, 2, 3]")),
            "no ring [1, 2, 3]:\n{}",
            d.log()
        );
    }
}

#[test]
fn one_member_fences_for_the_ring_and_every_member_learns_it() {
    let port = port_free_on_loopbacks(3);
    let trio = FencedCluster::new("fence3", |dir| conf(port, dir));
    let mut one = trio.start(1);
    let mut two = trio.start(2);
    let mut three = trio.start(3);
    ring_of_three(&mut [&mut one, &mut two, &mut three]);

    // Each node unfenced itself once, at start (action=on for its own port).
    for n in 1..=3 {
        trio.wait_for(&format!("action=on port=n{n}"), 1);
    }
    wait_until_released(&trio, 1);

    // A quorum tracker on node 1 hears of the pending fence, then of its end.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tracker = rt.block_on(quorum::client::Quorum::connect(trio.socket(1))).expect("connect");
    rt.block_on(tracker.track()).unwrap();
    let next = || {
        rt.block_on(async { tokio::time::timeout(WAIT, tracker.next_event()).await })
            .expect("a quorum event")
            .expect("connection open")
    };
    assert!(!next().fencing_held, "nothing pending before the kill");

    // kill -9 of node 3: exactly one survivor runs the agent; both learn node 3 is fenced.
    let _ = Command::new("kill").args(["-KILL", &three.pid().to_string()]).status();
    trio.wait_for("action=reboot port=n3", 1);
    wait_until_released(&trio, 1);
    wait_until_released(&trio, 2);
    assert_eq!(trio.count("action=reboot port=n3"), 1, "one run only:\n{}", trio.fence_log());
    let ran = |d: &Daemon| d.log().contains("fencing node 3: running");
    assert!(ran(&one) != ran(&two), "exactly one survivor runs the agent:\n{}\n{}", one.log(), two.log());
    let mut events = vec![next()];
    while events.last().is_some_and(|e| e.fencing_held || !e.fence_pending.is_empty() || e.members.len() == 3)
    {
        events.push(next());
    }
    assert!(
        events.iter().any(|e| e.fencing_held && e.fence_pending == [totem::NodeId(3)]),
        "the tracker never heard node 3 was pending: {events:?}"
    );

    // A manual fence asked on node 2 runs once, by one member, and kills node 3 again.
    drop(three);
    let mut three = trio.start(3);
    ring_of_three(&mut [&mut three]);
    trio.wait_for("action=on port=n3", 2);
    let status = Command::new(env!("CARGO_BIN_EXE_totemctl"))
        .args(["fence", "3", "--socket"])
        .arg(trio.socket(2))
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    trio.wait_for("action=reboot port=n3", 2);
    let deadline = now() + WAIT;
    while !three.exited() {
        assert!(now() < deadline, "node 3 survived its manual fence");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_until_released(&trio, 2);
    assert_eq!(trio.count("action=reboot port=n3"), 2, "{}", trio.fence_log());
    assert_eq!(
        trio.count("port=n1") + trio.count("port=n2"),
        2,
        "only unfencing of 1 and 2:\n{}",
        trio.fence_log()
    );
    one.terminate();
    two.terminate();
    assert!(one.wait(WAIT).status.success());
    assert!(two.wait(WAIT).status.success());
}
