//! Quorum scenario tests: votequorum (votequorum(5)) on every node while the network splits,
//! heals and nodes pause. Every step also runs the split brain checker
//! (`sim::check::split_brain`): no two whole rings quorate at once, stale quorum short.

mod common;

use common::assert_clean;
use std::time::Duration;

use quorum::QuorumConfig;
use sim::{CheckerKind, Cluster, Mutation, MutationKind, SimConfig};
use totem::NodeId;

fn ids(v: &[u32]) -> Vec<NodeId> {
    v.iter().map(|&i| NodeId(i)).collect()
}

fn quorum_cluster(seed: u64, n: usize, q: QuorumConfig) -> Cluster {
    let mut cfg = SimConfig::default();
    cfg.load.rate_per_node = 5.0;
    cfg.quorum = Some(q);
    Cluster::new(seed, n, cfg).expect("valid config")
}

fn nodelist(n: u32) -> QuorumConfig {
    QuorumConfig::with_nodes(1..=n)
}

const FORM: Duration = Duration::from_secs(20);
const SPLIT: Duration = Duration::from_secs(15);

#[track_caller]
fn assert_quorate(c: &Cluster, nodes: &[u32], quorate: bool) {
    for &n in nodes {
        assert_eq!(c.is_quorate(NodeId(n)), Some(quorate), "n{n}: {:?}", c.views());
    }
}

/// votequorum(5): quorum is a majority of the expected votes (3 → 2). After a 1|2 split the
/// pair keeps quorum in its new ring; the single node recounts at its own ring and loses it.
#[test]
fn quorum_3_nodes_partition_1_2_only_the_pair_is_quorate() {
    let mut c = quorum_cluster(31, 3, nodelist(3));
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    c.run_for(Duration::from_secs(1));
    assert_quorate(&c, &[1, 2, 3], true);
    c.partition(&ids(&[1]), &ids(&[2, 3]));
    c.run_for(SPLIT);
    assert_quorate(&c, &[2, 3], true);
    assert_quorate(&c, &[1], false);
    assert_eq!(c.members(NodeId(2)), Some(ids(&[2, 3])));
    let last = |n: u32| c.quorum_events().iter().rev().find(|(_, id, _)| *id == NodeId(n)).map(|(_, _, e)| e);
    assert!(last(1).is_some_and(|e| !e.quorate && e.members == ids(&[1])), "{:?}", last(1));
    assert!(last(2).is_some_and(|e| e.quorate && e.members == ids(&[2, 3])), "{:?}", last(2));
    c.heal();
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    c.run_for(Duration::from_secs(1));
    assert_quorate(&c, &[1, 2, 3], true);
    assert_clean(&c);
}

/// A 2|3 split of five: only the three are quorate (3 of 5); once healed, one ring of five
/// is quorate everywhere.
#[test]
fn quorum_5_nodes_2_3_split_heals_to_one_quorate_ring() {
    let mut c = quorum_cluster(52, 5, nodelist(5));
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    c.partition(&ids(&[1, 2]), &ids(&[3, 4, 5]));
    c.run_for(SPLIT);
    assert_quorate(&c, &[1, 2], false);
    assert_quorate(&c, &[3, 4, 5], true);
    c.heal();
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    c.run_for(Duration::from_secs(1));
    assert_quorate(&c, &[1, 2, 3, 4, 5], true);
    let ring = c.ring_id(NodeId(1));
    assert!((2..=5).all(|n| c.ring_id(NodeId(n)) == ring));
    c.stop_faults(false);
    c.check_liveness();
    assert_clean(&c);
}

/// A node paused while the others move on wakes holding its old quorate view. It may keep it
/// only until its token timeout (as corosync does); it must then install a ring of its own
/// and lose quorum, never stay quorate on the superseded ring (the checker's stale rule).
#[test]
fn quorum_paused_node_wakes_without_acting_on_stale_quorum() {
    let mut c = quorum_cluster(77, 3, nodelist(3));
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    c.run_for(Duration::from_secs(1));
    let old = c.ring_id(NodeId(1));
    c.pause(NodeId(1), Duration::from_secs(10));
    c.run_for(Duration::from_secs(5));
    assert_ne!(c.ring_id(NodeId(2)), old, "the others formed a new ring");
    assert_quorate(&c, &[2, 3], true);
    assert!(c.is_paused(NodeId(1)));
    c.isolate(NodeId(1));
    c.run_for(Duration::from_secs(5)); // n1 wakes, cut off
    assert!(!c.is_paused(NodeId(1)));
    c.run_for(Duration::from_secs(10));
    assert_ne!(c.ring_id(NodeId(1)), old);
    assert_quorate(&c, &[1], false);
    assert_quorate(&c, &[2, 3], true);
    c.heal();
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    c.run_for(Duration::from_secs(1));
    assert_quorate(&c, &[1, 2, 3], true);
    assert_clean(&c);
}

/// The same pause, but the node wakes with the network whole: it rejoins, never quorate on
/// its old ring past the grace.
#[test]
fn quorum_paused_node_wakes_into_the_new_ring() {
    let mut c = quorum_cluster(78, 5, nodelist(5));
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    c.pause(NodeId(4), Duration::from_secs(8));
    c.pause(NodeId(5), Duration::from_secs(9));
    c.run_for(Duration::from_secs(30));
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    c.run_for(Duration::from_secs(1));
    assert_quorate(&c, &[1, 2, 3, 4, 5], true);
    assert_clean(&c);
}

/// The checker can fail: a node that claims quorum without counting makes the lone side of a
/// 1|2 split quorate next to the pair.
#[test]
fn a_node_claiming_quorum_alone_is_a_split_brain() {
    let cfg = SimConfig {
        quorum: Some(nodelist(3)),
        mutation: Some(Mutation { node: NodeId(1), nth: 0, kind: MutationKind::ClaimQuorum }),
        ..SimConfig::default()
    };
    let mut c = Cluster::new(31, 3, cfg).expect("valid config");
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    c.partition(&ids(&[1]), &ids(&[2, 3]));
    c.run_for(SPLIT);
    let kinds: Vec<CheckerKind> = c.violations().iter().map(|v| v.checker).collect();
    assert_eq!(kinds, vec![CheckerKind::SplitBrain], "{:?}", c.violations());
    assert!(c.violations()[0].detail.starts_with("split brain:"), "{}", c.violations()[0]);
}

/// votequorum(5), two_node: "one node can lose quorum ... the other keeps it" only with
/// fencing; without fencing both halves of a split stay quorate by design. This is why the
/// swarm draws two_node only with fencing, and the checker says so when it meets it.
#[test]
fn quorum_two_node_split_without_fencing_leaves_both_halves_quorate() {
    let q = QuorumConfig { two_node: true, ..nodelist(2) };
    let mut c = quorum_cluster(22, 2, q);
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    c.run_for(Duration::from_secs(1));
    assert_quorate(&c, &[1, 2], true);
    assert!(c.violations().is_empty(), "{:?}", c.violations());
    c.partition(&ids(&[1]), &ids(&[2]));
    c.run_for(SPLIT);
    assert_quorate(&c, &[1, 2], true);
    assert_eq!(c.violations().len(), 1, "{:?}", c.violations());
    assert_eq!(c.violations()[0].checker, CheckerKind::SplitBrain);
}
