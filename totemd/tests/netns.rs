//! Three hosts in network namespaces: a partition made by taking a link down, then healed.
//!
//! The test builds its own topology with `ip` (iproute2) only: namespaces `tn1`, `tn2`, `tn3`
//! (one `totemd` each, at 10.213.0.X:5405 on a veth) and `tbr`, which holds bridge `br0` with
//! the other end of every veth. The 10.213.0.0/24 addresses exist only inside these namespaces,
//! so nothing is ever sent outside them. Names carry the test's pid so parallel runs do not
//! collide. A drop guard deletes the namespaces (and any veth still in the root namespace) also
//! when the test fails.
//!
//! It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and `ip netns`: without them it prints
//! `skipped: needs root and ip netns` and passes. We run as root here and in CI.
//!
//! Cutting one of two links while the membership holds is `netns_links.rs`.
//!
//! Like the loopback failover tests, this asserts on the sequence of rings, never on timings.

mod common;

use std::thread;
use std::time::Duration;

use common::netns::{common_full_ring, rings_of, wait_for, wait_for_split, Topology, SPLIT};
use common::{peer_args, stop_all, Daemon, RingLine, TempDir};

/// corosync `token` for every daemon: token loss + consensus (1.2 × token) take about 2.2 s.
const TOKEN_MS: &str = "1000";
/// A bound the daemons never reach: the test stops them with SIGTERM (or drop kills them).
const RUN_FOR: &str = "120";
/// Generous waits for a loaded 2-core machine.
const FORM_TIMEOUT: Duration = Duration::from_secs(20);
const SPLIT_TIMEOUT: Duration = Duration::from_secs(20);
const MERGE_TIMEOUT: Duration = Duration::from_secs(20);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Node `node`'s address, which exists only inside its namespace.
fn address(node: usize) -> String {
    format!("10.213.0.{node}")
}

/// Node `node` at 10.213.0.`node`:5405, peering the other two.
fn args(state: &TempDir, node: usize) -> Vec<String> {
    let peers: Vec<(u32, String)> =
        (1..=3).filter(|&p| p != node).map(|p| (p as u32, format!("{}:5405", address(p)))).collect();
    peer_args(state, node as u32, &format!("{}:5405", address(node)), &peers, TOKEN_MS, Some(RUN_FOR))
}

/// Node 3's cable is cut (its bridge port goes down): nodes 1 and 2 lose the token, run
/// consensus and install [1, 2]; node 3, alone, installs [3] (Totem paper §4.1: token loss
/// starts the membership protocol, and each side forms the ring it can reach). Plugged back
/// in, the rings merge into one ring of [1, 2, 3] whose seq is above every ring before it
/// (ring ids only increase).
#[test]
fn partition_by_link_down_then_heal_merges_the_rings() {
    // Declared first so that it drops last, after the daemons have left its namespaces.
    let mut topology = Topology::new("t", "tv", 1);
    if !topology.add_namespaces() {
        return;
    }
    topology.wire(|node, _| address(node));
    let dirs = [1, 2, 3].map(|n| TempDir::new(&format!("netns-{n}")));
    let mut daemons: Vec<Daemon> =
        (1..=3).map(|n| Daemon::spawn_in_netns(&topology.nodes[n - 1], &args(&dirs[n - 1], n))).collect();

    let formed = wait_for(&mut daemons, "form one ring of [1, 2, 3]", FORM_TIMEOUT, |r| {
        common_full_ring(r, 0).is_some()
    });
    let first = common_full_ring(&formed, 0).expect("formed");
    let before: Vec<usize> = formed.iter().map(Vec::len).collect();

    topology.set_bridge_port(3, 0, "down");
    let expected = SPLIT;
    let split = wait_for_split(&mut daemons, &before, SPLIT_TIMEOUT);
    let split_rings: Vec<RingLine> = split
        .iter()
        .zip(&before)
        .zip(expected)
        .map(|((r, &n), want)| r[n..].iter().find(|x| x.members == want).expect("found").clone())
        .collect();
    assert_eq!(split_rings[0], split_rings[1], "nodes 1 and 2 installed different rings");
    for ring in &split_rings {
        assert!(ring.seq > first.seq, "ring {ring:?} not beyond the first ring {first:?}");
    }
    // Keep the cable out a while after the split, so that the sides do not just race back.
    thread::sleep(Duration::from_secs(2));
    for (i, rings) in rings_of(&daemons).iter().enumerate() {
        let stray: Vec<_> = rings[before[i]..].iter().filter(|r| r.members != expected[i]).collect();
        assert!(stray.is_empty(), "node {} installed other rings while cut off: {stray:?}", i + 1);
    }

    topology.set_bridge_port(3, 0, "up");
    let above = split_rings.iter().map(|r| r.seq).max().expect("three rings");
    let merged = wait_for(&mut daemons, "merge into one ring of [1, 2, 3]", MERGE_TIMEOUT, |r| {
        common_full_ring(r, above).is_some()
    });
    let back = common_full_ring(&merged, above).expect("merged");
    for (i, rings) in merged.iter().enumerate() {
        let seqs: Vec<u64> = rings.iter().map(|r| r.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "node {}: ring seqs not increasing: {rings:?}", i + 1);
        eprintln!(
            "netns: node {}: rings {:?}",
            i + 1,
            rings.iter().map(|r| format!("{}.{} {}", r.representative, r.seq, r.members)).collect::<Vec<_>>()
        );
    }
    eprintln!("netns: {first:?} -> {:?} / {:?} -> {back:?}", split_rings[0], split_rings[2]);
    stop_all(EXIT_TIMEOUT, daemons);
}
