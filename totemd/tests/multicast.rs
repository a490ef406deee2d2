//! `transport: udp`: three hosts in network namespaces multicast to one group, form one ring,
//! and keep it without a node that is killed, then without one that leaves.
//!
//! Multicast needs an interface with the MULTICAST flag; the host's `lo` usually has none
//! (and setting it would change the host), so each node is a namespace with a veth to a bridge,
//! as in `netns.rs` (`common::netns::Topology`). Every address and group exists only inside
//! those namespaces: nothing is sent outside them. The bridge does no multicast snooping, so
//! it floods the group to every port from the first packet (no IGMP/MLD querier needed).
//!
//! The ring forming at all shows the multicast works: join messages go only to the group
//! (`Destination::All`), the token and commit token only to one node's address. Run as root;
//! without root or `ip netns` each test prints `skipped: needs root and ip netns` and passes.

mod common;

use std::time::Duration;

use common::netns::{common_full_ring, must, rings_of, wait_for, Topology};
use common::{stop_all, Daemon, TempDir};

/// corosync `token` (ms) for every daemon: token loss + consensus take about 2.2 s.
const TOKEN_MS: &str = "1000";
/// A bound the daemons never reach: the test stops them (or drop kills them).
const RUN_FOR: &str = "120";
/// Generous waits for a loaded 2-core machine.
const FORM_TIMEOUT: Duration = Duration::from_secs(20);
const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A corosync.conf for nodes 1..=3 at `address(n)` with `transport: udp` and `interface`.
fn conf(address: &dyn Fn(usize) -> String, interface: &str) -> String {
    let nodes: String = (1..=3)
        .map(|n| format!("    node {{\n        ring0_addr: {}\n        nodeid: {n}\n    }}\n", address(n)))
        .collect();
    format!(
        "totem {{\n    version: 2\n    cluster_name: mcast-test\n    transport: udp\n    \
         interface {{\n{interface}    }}\n}}\n\
         logging {{\n    to_stderr: yes\n    to_syslog: no\n}}\n\
         nodelist {{\n{nodes}}}\n"
    )
}

/// Kills the daemon with SIGKILL and waits until it is gone.
fn kill(daemon: Daemon) {
    let pid = daemon.pid().to_string();
    let status = std::process::Command::new("kill").args(["-KILL", &pid]).status().expect("run kill");
    assert!(status.success(), "kill -KILL {pid} failed");
    let _ = daemon.wait(EXIT_TIMEOUT);
}

/// Whether every daemon's last ring has exactly `members`, and they agree.
fn last_rings_are(rings: &[Vec<common::RingLine>], members: &str) -> bool {
    let last: Vec<_> = rings.iter().map(|r| r.last()).collect();
    last.iter().all(|r| r.is_some_and(|r| r.members == members)) && last.windows(2).all(|w| w[0] == w[1])
}

/// Forms a ring of three over the group, kills node 3 (token loss: nodes 1 and 2 form [1, 2]
/// by joins sent to the group, Totem paper §4.1), then stops node 2 with SIGTERM (its leave
/// goes to the group; node 1 installs [1]). `expect_group` is what each daemon logs it sends to.
fn three_nodes_over_udp(name: &str, address: &dyn Fn(usize) -> String, interface: &str, expect_group: &str) {
    // Declared first so that it drops last, after the daemons have left its namespaces.
    let mut topology = Topology::new(name, &format!("{name}v"), 1);
    if !topology.add_namespaces() {
        return;
    }
    topology.wire(|node, _| address(node));
    must(&["-n", &topology.bridge, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0"]);
    let dir = TempDir::new(&format!("multicast-{name}"));
    std::fs::create_dir_all(dir.path()).expect("create the test directory");
    let conf_path = dir.path().join("corosync.conf");
    std::fs::write(&conf_path, conf(address, interface)).expect("write corosync.conf");
    let args = |n: usize| -> Vec<String> {
        let state = dir.path().join(format!("state-{n}")).display().to_string();
        let conf = conf_path.display().to_string();
        let args = ["--config", &conf, "--nodeid", &n.to_string(), "--state-dir", &state];
        let timing = ["--token", TOKEN_MS, "--run-for", RUN_FOR];
        args.iter().chain(&timing).map(|s| s.to_string()).collect()
    };
    let mut daemons: Vec<Daemon> =
        (1..=3).map(|n| Daemon::spawn_in_netns(&topology.nodes[n - 1], &args(n))).collect();

    let formed = wait_for(&mut daemons, "form one ring of [1, 2, 3] over udp", FORM_TIMEOUT, |r| {
        common_full_ring(r, 0).is_some()
    });
    let first = common_full_ring(&formed, 0).expect("formed");
    for (i, d) in daemons.iter().enumerate() {
        let log = d.log();
        let want = format!("transport udp: multicasts to {expect_group} (ttl 1)");
        assert!(log.contains(&want), "node {} does not say {want:?}:\n{log}", i + 1);
    }

    kill(daemons.pop().expect("node 3"));
    let two =
        wait_for(&mut daemons, "nodes 1 and 2 form [1, 2] without the killed node 3", CHANGE_TIMEOUT, |r| {
            last_rings_are(r, "[1, 2]")
        });
    assert!(two[0].last().expect("a ring").seq > first.seq, "ring ids only increase: {two:?}");

    let node2 = daemons.pop().expect("node 2");
    node2.terminate();
    let exit = node2.wait(EXIT_TIMEOUT);
    assert!(exit.status.success(), "node 2 did not stop cleanly:\n{}", exit.log);
    let one = wait_for(&mut daemons, "node 1 installs [1] after node 2 left", CHANGE_TIMEOUT, |r| {
        last_rings_are(r, "[1]")
    });
    eprintln!("{name}: node 1 rings {:?}", rings_of(&daemons)[0]);
    assert!(one[0].len() >= 3, "node 1 installed [1, 2, 3], [1, 2], [1]: {one:?}");
    stop_all(EXIT_TIMEOUT, daemons);
}

/// IPv4: an explicit `mcastaddr` and `mcastport`.
#[test]
fn udp_over_ipv4_multicast_forms_a_ring_and_a_killed_node_leaves_it() {
    let address = |n: usize| format!("10.215.0.{n}");
    let interface = "        mcastaddr: 239.192.215.1\n        mcastport: 5405\n";
    three_nodes_over_udp("m4", &address, interface, "239.192.215.1:5405");
}

/// IPv6: the group derives from `cluster_name` as in corosync (`ff15::` + its 16-bit id).
#[test]
fn udp_over_ipv6_multicast_with_the_cluster_name_group_forms_a_ring() {
    let address = |n: usize| format!("fd00:215::{n}");
    let group = totemd::config::cluster_group("mcast-test", 0, true);
    three_nodes_over_udp("m6", &address, "        mcastport: 5405\n", &format!("[{group}]:5405"));
}
