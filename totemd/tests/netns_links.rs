//! Three hosts with two links each (corosync's knet redundancy): one link fails and the
//! membership holds; both fail and the cluster splits; they recover and it merges.
//!
//! The test builds its own topology with `ip` (iproute2) only: namespaces for nodes 1..3 (one
//! `totemd` each) and one namespace holding two bridges, `br0` for link 0 (10.213.1.0/24) and
//! `br1` for link 1 (10.213.2.0/24). Each node has one veth to each bridge. These addresses
//! exist only inside the test's namespaces, so nothing is ever sent outside them. Names carry
//! the test's pid so parallel runs do not collide; a drop guard deletes everything also when
//! the test fails.
//!
//! The daemons start from a corosync.conf the test writes (`transport: knet`, two interfaces,
//! `ring0_addr` and `ring1_addr`, `token: 1000`), each with `--nodeid` and `--state-dir`.
//!
//! It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and `ip netns`: without them it prints
//! `skipped: needs root and ip netns` and passes.
//!
//! Like the other process tests, it asserts on the sequence of rings and on log lines, never
//! on timings.

mod common;

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use common::netns::{all_logs, common_full_ring, rings_of, wait_for, wait_for_split, Topology};
use common::{now, Daemon, TempDir};

/// A bound the daemons never reach: the test stops them with SIGTERM (or drop kills them).
const RUN_FOR: &str = "120";
/// Generous waits for a loaded 2-core machine.
const FORM_TIMEOUT: Duration = Duration::from_secs(20);
const SPLIT_TIMEOUT: Duration = Duration::from_secs(20);
const MERGE_TIMEOUT: Duration = Duration::from_secs(20);
const LINK_TIMEOUT: Duration = Duration::from_secs(10);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one link stays cut: well beyond token (1000 ms) + consensus (1200 ms), so a
/// membership change caused by it would have happened.
const ONE_LINK_CUT: Duration = Duration::from_secs(5);

/// Number of links every node has.
const LINKS: usize = 2;

/// Node `node`'s address on link `link`, which exists only inside its namespace.
fn address(node: usize, link: usize) -> String {
    format!("10.213.{}.{node}", link + 1)
}

/// The cluster's corosync.conf: knet, links 0 and 1, token 1000 ms.
fn conf() -> String {
    let nodes: String = (1..=3)
        .map(|n| {
            format!(
                "    node {{\n        name: node{n}\n        nodeid: {n}\n        ring0_addr: {}\n        \
                 ring1_addr: {}\n    }}\n",
                address(n, 0),
                address(n, 1)
            )
        })
        .collect();
    format!(
        "totem {{\n    version: 2\n    cluster_name: links\n    transport: knet\n    token: 1000\n    \
         token_coefficient: 0\n    interface {{\n        linknumber: 0\n    }}\n    interface {{\n        \
         linknumber: 1\n    }}\n}}\n\nnodelist {{\n{nodes}}}\n"
    )
}

fn args(conf: &std::path::Path, state: &TempDir, node: usize) -> Vec<String> {
    [
        "--config",
        &conf.display().to_string(),
        "--nodeid",
        &node.to_string(),
        "--state-dir",
        &state.arg(),
        "--run-for",
        RUN_FOR,
    ]
    .map(str::to_string)
    .to_vec()
}

/// Lines of `log` containing `text`.
fn count(log: &str, text: &str) -> usize {
    log.lines().filter(|l| l.contains(text)).count()
}

/// Waits until node `node`'s log has more than `above` lines containing `text`.
fn wait_for_log(daemons: &mut [Daemon], node: usize, text: &str, above: usize) {
    let deadline = now() + LINK_TIMEOUT;
    while count(&daemons[node - 1].log(), text) <= above {
        if now() >= deadline || daemons[node - 1].exited() {
            panic!("node {node}: no new {text:?} within {LINK_TIMEOUT:?}\n{}", all_logs(daemons));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// corosync's knet `link_mode: passive`: with link 0 of node 3 cut, the link layer marks it
/// down and carries Totem over link 1, so no token is lost and no node installs a new ring;
/// plugged back, link 0 comes up again. With both links cut, node 3 is partitioned (Totem
/// paper §4.1: [1, 2] and [3]); with both back, the rings merge into one of [1, 2, 3].
#[test]
fn one_link_down_keeps_the_ring_and_both_down_partitions() {
    // Declared first so that it drops last, after the daemons have left its namespaces.
    let mut topology = Topology::new("tl", "tl", LINKS);
    if !topology.add_namespaces() {
        return;
    }
    topology.wire(address);
    let conf_dir = TempDir::new("netns-links-conf");
    std::fs::create_dir_all(conf_dir.path()).expect("create conf dir");
    let conf_path: PathBuf = conf_dir.path().join("corosync.conf");
    std::fs::write(&conf_path, conf()).expect("write corosync.conf");
    let dirs = [1, 2, 3].map(|n| TempDir::new(&format!("netns-links-{n}")));
    let mut daemons: Vec<Daemon> = (1..=3)
        .map(|n| Daemon::spawn_in_netns(&topology.nodes[n - 1], &args(&conf_path, &dirs[n - 1], n)))
        .collect();

    let formed = wait_for(&mut daemons, "form one ring of [1, 2, 3]", FORM_TIMEOUT, |r| {
        common_full_ring(r, 0).is_some()
    });
    let first = common_full_ring(&formed, 0).expect("formed");
    // Both links of node 3 to node 1 are up before one is cut.
    for link in 0..LINKS {
        wait_for_log(&mut daemons, 3, &format!("link {link} to node 1 up"), 0);
    }
    let before: Vec<usize> = rings_of(&daemons).iter().map(Vec::len).collect();

    // One link cut: the link goes down, the membership holds.
    let downs = count(&daemons[2].log(), "link 0 to node 1 down");
    let ups = count(&daemons[2].log(), "link 0 to node 1 up");
    topology.set_bridge_port(3, 0, "down");
    wait_for_log(&mut daemons, 3, "link 0 to node 1 down", downs);
    thread::sleep(ONE_LINK_CUT);
    for (i, rings) in rings_of(&daemons).iter().enumerate() {
        assert_eq!(
            rings.len(),
            before[i],
            "node {} installed a ring while only link 0 was cut: {rings:?}\n{}",
            i + 1,
            all_logs(&daemons)
        );
    }
    topology.set_bridge_port(3, 0, "up");
    wait_for_log(&mut daemons, 3, "link 0 to node 1 up", ups);

    // Both links cut: node 3 is partitioned.
    topology.set_bridge_port(3, 0, "down");
    topology.set_bridge_port(3, 1, "down");
    let split = wait_for_split(&mut daemons, &before, SPLIT_TIMEOUT);
    let above = split.iter().filter_map(|r| r.last()).map(|r| r.seq).max().expect("rings");
    assert!(above > first.seq);

    topology.set_bridge_port(3, 0, "up");
    topology.set_bridge_port(3, 1, "up");
    let merged = wait_for(&mut daemons, "merge into one ring of [1, 2, 3]", MERGE_TIMEOUT, |r| {
        common_full_ring(r, above).is_some()
    });
    for (i, rings) in merged.iter().enumerate() {
        let seqs: Vec<u64> = rings.iter().map(|r| r.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "node {}: ring seqs not increasing: {rings:?}", i + 1);
    }

    for daemon in &daemons {
        daemon.terminate();
    }
    for (i, daemon) in daemons.into_iter().enumerate() {
        let exit = daemon.wait(EXIT_TIMEOUT);
        assert!(exit.status.success(), "node {} did not stop cleanly:\n{}", i + 1, exit.log);
        assert!(
            exit.log.contains("; links node "),
            "node {}: no link status in the summary:\n{}",
            i + 1,
            exit.log
        );
        if i == 2 {
            eprintln!("netns_links: node 3 summary: {}", exit.log.lines().last().unwrap_or(""));
        }
    }
}
