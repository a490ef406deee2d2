//! Fencing scenario tests: votequorum and the fencing policy on every node, every fence device
//! a power switch the simulator controls (`sim::fence`). Every step also runs the fencing
//! checker (`sim::check::fencing`): no two nodes outside each other's ring are both quorate,
//! unfenced and active.

mod common;

use common::assert_clean;
use std::time::Duration;

use quorum::QuorumConfig;
use sim::fence::{SimFencing, SwitchMode};
use sim::{CheckerKind, Cluster, Mutation, MutationKind, SimConfig};
use totem::NodeId;

fn ids(v: &[u32]) -> Vec<NodeId> {
    v.iter().map(|&i| NodeId(i)).collect()
}

/// `n` nodes with votequorum `q` and two power switches; `delayed` nodes win a race.
fn fenced_cluster(
    seed: u64,
    n: u32,
    q: QuorumConfig,
    delayed: &[(NodeId, u32)],
    action: Option<&str>,
) -> Cluster {
    let mut cfg = SimConfig::default();
    cfg.load.rate_per_node = 5.0;
    cfg.quorum = Some(q);
    cfg.fencing = Some(SimFencing::power_switches(&ids(&(1..=n).collect::<Vec<_>>()), delayed, action));
    Cluster::new(seed, n as usize, cfg).expect("valid config")
}

const FORM: Duration = Duration::from_secs(20);
const SPLIT: Duration = Duration::from_secs(15);

/// Runs until every node is in one ring, quorate and not held by its fencer.
#[track_caller]
fn form(c: &mut Cluster) {
    let ok = c.run_until_pred(FORM, |c| {
        c.stable_ring().is_some()
            && c.node_ids().iter().all(|&n| c.is_quorate(n) == Some(true) && c.fencing_held(n) == Some(false))
    });
    assert!(ok, "{:?}", c.views());
}

#[track_caller]
fn assert_serves(c: &Cluster, n: u32) {
    let n = NodeId(n);
    assert!(c.is_up(n) && !c.is_powered_off(n), "n{n} is down");
    assert_eq!(c.is_quorate(n), Some(true), "n{n}: {:?}", c.views());
    assert_eq!(c.fencing_held(n), Some(false), "n{n} is held: {:?}", c.views());
}

/// votequorum(5) two_node: after a split both halves are quorate, so both fence; the device
/// `delay` on node 1 (cluster.conf's `delay`, honoured by fence agents) makes node 2 wait,
/// and node 1 powers node 2 off first. Exactly one side survives.
#[test]
fn two_node_split_with_fencing_leaves_exactly_one_survivor() {
    let q = QuorumConfig { two_node: true, ..QuorumConfig::with_nodes(1..=2) };
    let mut c = fenced_cluster(51, 2, q, &[(NodeId(1), 2)], Some("off"));
    form(&mut c);
    c.partition(&ids(&[1]), &ids(&[2]));
    c.run_for(SPLIT);
    assert!(c.is_powered_off(NodeId(2)) && !c.is_up(NodeId(2)), "{:?}", c.views());
    assert_serves(&c, 1);
    let fenced: Vec<NodeId> = c.fence_history(NodeId(1)).iter().map(|h| h.node).collect();
    assert_eq!(fenced, ids(&[2]));
    assert_clean(&c);
    // Back on after the split heals, node 2 joins the survivor.
    c.heal();
    c.power_on(NodeId(2));
    form(&mut c);
    assert_clean(&c);
}

/// fenced(8): a node that leaves a quorate membership without a clean leave is fenced, and
/// service is held until it is. After a 1|2 split the pair (quorate, votequorum(5)) powers
/// the single node off and goes on; the single node loses quorum.
#[test]
fn three_node_split_1_2_fences_the_minority() {
    let mut c = fenced_cluster(52, 3, QuorumConfig::with_nodes(1..=3), &[], Some("off"));
    form(&mut c);
    c.partition(&ids(&[1]), &ids(&[2, 3]));
    c.run_for(SPLIT);
    assert!(c.is_powered_off(NodeId(1)), "{:?}", c.views());
    assert_serves(&c, 2);
    assert_serves(&c, 3);
    assert_eq!(c.members(NodeId(2)), Some(ids(&[2, 3])));
    assert_clean(&c);
}

/// fenced(8) and the paused-node rule: a node stopped (SIGSTOP) long enough to be
/// declared dead is fenced while it sleeps, so it never wakes to act on its stale ring; the
/// switch's reboot brings it back with fresh state and it rejoins.
#[test]
fn paused_node_is_fenced_before_it_wakes_and_rejoins_after_reboot() {
    let mut c = fenced_cluster(53, 3, QuorumConfig::with_nodes(1..=3), &[], None);
    form(&mut c);
    c.pause(NodeId(3), Duration::from_secs(12));
    c.run_for(Duration::from_secs(8));
    let fenced: Vec<NodeId> = c.fence_history(NodeId(1)).iter().map(|h| h.node).collect();
    assert_eq!(fenced, ids(&[3]), "{:?}", c.views());
    assert!(!c.is_paused(NodeId(3)), "the power switch ended the pause");
    c.run_for(Duration::from_secs(8));
    form(&mut c);
    assert_clean(&c);
}

/// The checker catches a node acting on stale state: a lying switch (it reports success and
/// switches nothing) lets the pair go on while the paused node still holds its old ring;
/// when it wakes it is quorate, unfenced and operational outside the pair's ring.
#[test]
fn paused_node_left_running_by_a_lying_switch_is_a_split_brain() {
    let q = QuorumConfig::with_nodes(1..=3);
    let mut c = fenced_cluster(53, 3, q, &[], None);
    let mut cfg = c.config().clone();
    cfg.mutation = Some(Mutation { node: NodeId(3), nth: 0, kind: MutationKind::FakeFence });
    c = Cluster::new(53, 3, cfg).unwrap();
    form(&mut c);
    c.pause(NodeId(3), Duration::from_secs(12));
    c.run_for(Duration::from_secs(16));
    let kinds: Vec<CheckerKind> = c.violations().iter().map(|v| v.checker).collect();
    assert_eq!(kinds, vec![CheckerKind::FencedSplitBrain], "{:?}", c.violations());
}

/// fenced(8): methods are tried in order and a failed device moves on to the next method.
/// The primary switch fails, then hangs (the agent counts as failed after agent_timeout);
/// either way the secondary switch fences the node.
#[test]
fn failing_or_hanging_power_switch_falls_back_to_the_second_method() {
    for (seed, mode) in [(54, SwitchMode::Fail), (55, SwitchMode::Hang)] {
        let mut c = fenced_cluster(seed, 3, QuorumConfig::with_nodes(1..=3), &[], Some("off"));
        form(&mut c);
        c.set_switch("switch1", Some(mode));
        c.partition(&ids(&[1, 2]), &ids(&[3]));
        // A hung agent counts as failed after agent_timeout (10 s here).
        c.run_for(SPLIT * 2);
        assert!(c.is_powered_off(NodeId(3)), "{mode:?}: {:?}", c.views());
        let history = c.fence_history(NodeId(1));
        assert_eq!(history.len(), 1, "{mode:?}: {history:?}");
        assert_eq!((history[0].node, history[0].by.as_str()), (NodeId(3), "secondary"), "{mode:?}");
        assert!(history[0].failed_attempts >= 1, "{mode:?}: {history:?}");
        assert_serves(&c, 1);
        assert_serves(&c, 2);
        assert_clean(&c);
    }
}

/// fenced(8): with every method failing the victim stays pending and service stays held
/// ("a locked-up cluster is better than a corrupted one"); once a switch works again the
/// retries fence it and service resumes.
#[test]
fn all_switches_failing_hold_service_until_one_works() {
    let mut c = fenced_cluster(56, 3, QuorumConfig::with_nodes(1..=3), &[], Some("off"));
    form(&mut c);
    c.set_switch("switch1", Some(SwitchMode::Fail));
    c.set_switch("switch2", Some(SwitchMode::Fail));
    c.partition(&ids(&[1, 2]), &ids(&[3]));
    c.run_for(SPLIT);
    assert!(!c.is_powered_off(NodeId(3)));
    assert_eq!(c.fencing_held(NodeId(1)), Some(true), "{:?}", c.views());
    c.set_switch("switch2", None);
    c.run_for(Duration::from_secs(5));
    assert!(c.is_powered_off(NodeId(3)), "{:?}", c.views());
    assert_serves(&c, 1);
    assert_clean(&c);
}
