//! Fencing as a cman two-node cluster does it, with real daemons and the project's test fence
//! agent (contrib/fence_totem_test, which logs each action and SIGKILLs the victim's pid):
//! `two_node: 1` keeps the survivor quorate, and it fences the node it lost without a clean
//! leave — killed with SIGKILL, or frozen with SIGSTOP (a frozen node must never come back
//! acting on stale state: the agent kills it).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::fenced::{port_free_on_loopbacks, two_node_conf, FencedCluster};
use common::{now, Daemon};

const WAIT: Duration = Duration::from_secs(30);

fn conf(port: u16, dir: &Path) -> String {
    two_node_conf("fencetest", port, dir, "")
}

fn both_in_one_ring(a: &mut Daemon, b: &mut Daemon) {
    for d in [a, b] {
        assert!(d.wait_for_line(WAIT, |l| l.contains("members [1, 2]")), "no ring [1, 2]:\n{}", d.log());
    }
}

#[test]
fn two_node_survivor_fences_a_killed_or_frozen_peer_and_stays_quorate() {
    let port = port_free_on_loopbacks(2);
    let pair = FencedCluster::new("fencing", |dir| conf(port, dir));
    let mut one = pair.start(1);
    let mut two = pair.start(2);
    both_in_one_ring(&mut one, &mut two);

    // SIGKILL: node 1 stays quorate (two_node) and fences node 2 through the agent.
    let _ = Command::new("kill").args(["-KILL", &two.pid().to_string()]).status();
    pair.wait_for("action=reboot port=n2", 1);
    assert!(pair.fence_log().contains("action=reboot port=n2"), "{}", pair.fence_log());
    assert!(one.wait_for_line(WAIT, |l| l.contains("Fenced")), "no fence completion:\n{}", one.log());
    let status = Command::new(env!("CARGO_BIN_EXE_totemctl"))
        .args(["quorum", "--json", "--socket"])
        .arg(pair.socket(1))
        .output()
        .unwrap();
    let q: serde_json::Value = serde_json::from_slice(&status.stdout).expect("quorum JSON");
    assert_eq!(q["quorate"], true, "the survivor of a two-node cluster stays quorate: {q}");
    assert!(!pair.fence_log().contains("port=n1"), "node 1 must not be fenced:\n{}", pair.fence_log());

    // SIGSTOP: the frozen node is fenced, and the agent's SIGKILL ends it for real.
    drop(two);
    let mut two = pair.start(2);
    assert!(
        two.wait_for_line(WAIT, |l| l.contains("members [1, 2]")),
        "node 2 did not rejoin:\n{}",
        two.log()
    );
    let _ = Command::new("kill").args(["-STOP", &two.pid().to_string()]).status();
    pair.wait_for("action=reboot port=n2", 2);
    let deadline = now() + WAIT;
    while !two.exited() {
        assert!(now() < deadline, "the frozen node survived its fencing");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pair.fence_log().contains("port=n1"), "node 1 must not be fenced:\n{}", pair.fence_log());
    one.terminate();
    assert!(one.wait(WAIT).status.success());
}

/// Fence agents from Debian's fence-agents package read the same stdin: with `fence_dummy`
/// (`type=fail`, then `type=file`) a killed node's first method fails and its second fences
/// it. Skipped when fence-agents is not installed (CI installs it).
#[test]
fn debian_fence_agents_work_with_the_same_interface() {
    const DUMMY: &str = "/usr/sbin/fence_dummy";
    if !Path::new(DUMMY).exists() {
        println!("skipped: needs {DUMMY} (Debian's fence-agents)");
        return;
    }
    let port = port_free_on_loopbacks(2);
    let pair = FencedCluster::new("fence-agents", |dir| {
        let status = dir.join("dummy.status").display().to_string();
        let node = |n: u32| {
            format!(
                " node {{\n  name: n{n}\n  method {{\n   name: broken\n   device {{\n    name: broken\n   }}\n  }}\n  \
                 method {{\n   name: dummy\n   device {{\n    name: dummy\n   }}\n  }}\n }}\n"
            )
        };
        let base = conf(port, dir);
        let fencing = format!(
            "fencing {{\n post_join_delay: 60\n agent_timeout: 30\n retry_delay: 1\n \
             device {{\n  name: broken\n  agent: {DUMMY}\n  type: fail\n  power_timeout: 1\n }}\n \
             device {{\n  name: dummy\n  agent: {DUMMY}\n  type: file\n  status_file: {status}\n }}\n{}{}}}\n",
            node(1),
            node(2)
        );
        base[..base.find("fencing {").expect("a fencing section")].to_string() + &fencing
    });
    let mut one = pair.start(1);
    let mut two = pair.start(2);
    both_in_one_ring(&mut one, &mut two);
    let _ = Command::new("kill").args(["-KILL", &two.pid().to_string()]).status();
    assert!(
        one.wait_for_line(WAIT, |l| l.contains("Fenced { node: NodeId(2), by: \"dummy\" }")),
        "node 2 not fenced by the second method:\n{}",
        one.log()
    );
    assert!(one.log().contains("AttemptFailed { node: NodeId(2), method: \"broken\""), "{}", one.log());
    one.terminate();
    assert!(one.wait(WAIT).status.success());
}
