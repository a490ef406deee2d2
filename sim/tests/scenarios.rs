//! Scenario tests: each reads like a rule of the Totem specification. Every test also runs the
//! full set of checkers at each step (total order, EVS, integrity, safe delivery,
//! configuration agreement), and most end with the liveness check.

mod common;

use common::assert_clean;
use std::time::Duration;

use sim::net::{Action, LinkConfig, PacketKind, Rule};
use sim::{Cluster, SimConfig, TraceOutput};
use totem::{Guarantee, Instant, NodeId, RingId};

fn ids(v: &[u32]) -> Vec<NodeId> {
    v.iter().map(|&i| NodeId(i)).collect()
}

fn cluster(seed: u64, n: usize) -> Cluster {
    Cluster::new(seed, n, SimConfig::default()).expect("default config is valid")
}

fn quiet_cluster(seed: u64, n: usize) -> Cluster {
    let mut cfg = SimConfig::default();
    cfg.load.rate_per_node = 0.0;
    Cluster::new(seed, n, cfg).expect("default config is valid")
}

/// Liveness after faults: one ring of the live nodes, probes delivered everywhere.
#[track_caller]
fn settle(c: &mut Cluster, restart_crashed: bool) -> RingId {
    c.stop_faults(restart_crashed);
    let report = c.check_liveness();
    assert_clean(c);
    report.ring.expect("a stable ring")
}

const FORM: Duration = Duration::from_secs(20);

/// Gather/commit (paper, section 4): nodes that hear each other form one ring.
#[test]
fn three_nodes_form_one_ring() {
    let mut c = quiet_cluster(1, 3);
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    assert_eq!(c.members(NodeId(1)), Some(ids(&[1, 2, 3])));
    assert_clean(&c);
}

#[test]
fn nine_nodes_form_one_ring() {
    let mut c = quiet_cluster(2, 9);
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    settle(&mut c, false);
}

/// Agreed and safe messages under load are delivered in one total order everywhere.
#[test]
fn mixed_agreed_and_safe_load_is_totally_ordered() {
    let mut c = cluster(3, 4);
    c.run_for(Duration::from_secs(10));
    assert!(c.stats().deliveries > 100, "{:?}", c.stats());
    settle(&mut c, false);
}

/// Fragmentation: messages larger than netmtu are delivered whole.
#[test]
fn messages_larger_than_the_mtu_are_delivered_whole() {
    let mut cfg = SimConfig::default();
    cfg.load.large_fraction = 1.0;
    cfg.load.large_max = 20_000;
    cfg.load.rate_per_node = 10.0;
    let mut c = Cluster::new(4, 3, cfg).unwrap();
    c.run_for(Duration::from_secs(5));
    let id = c.submit(NodeId(2), 50_000, Guarantee::Safe).expect("accepted");
    c.run_for(Duration::from_secs(2));
    settle(&mut c, false);
    assert!(c.stats().deliveries > 0);
    let _ = id;
}

/// Membership (paper, section 4): a partition yields one ring per side; healing merges them
/// into one ring with a new, higher ring id.
#[test]
fn partition_2_1_heal_merges_rings() {
    let mut c = cluster(5, 3);
    assert!(c.run_until_stable(FORM));
    let before = c.ring_id(NodeId(1)).unwrap();
    c.partition(&ids(&[1, 2]), &ids(&[3]));
    let split = c.run_until_pred(FORM, |c| {
        c.members(NodeId(1)) == Some(ids(&[1, 2]))
            && c.members(NodeId(2)) == Some(ids(&[1, 2]))
            && c.members(NodeId(3)) == Some(ids(&[3]))
    });
    assert!(split, "{:?}", c.views());
    assert_clean(&c);
    c.heal();
    let merged = settle(&mut c, false);
    assert!(merged > before);
    assert_eq!(c.members(NodeId(3)), Some(ids(&[1, 2, 3])));
}

/// A crashed node is removed from the ring; the rest keep going in a ring of their own.
#[test]
fn crash_of_one_node_forms_ring_of_the_rest() {
    let mut c = cluster(6, 4);
    assert!(c.run_until_stable(FORM));
    c.run_for(Duration::from_secs(2));
    c.crash(NodeId(4));
    assert!(c.run_until_stable(FORM), "{:?}", c.views());
    assert_eq!(c.members(NodeId(1)), Some(ids(&[1, 2, 3])));
    settle(&mut c, false);
}

/// Ring ids only grow, across restarts too (the persisted ring_seq): a restarted node joins
/// a ring whose id exceeds every ring it installed before.
#[test]
fn crashed_node_restarts_and_rejoins_with_a_higher_ring_id() {
    let mut c = cluster(7, 3);
    assert!(c.run_until_stable(FORM));
    let before = c.ring_id(NodeId(2)).unwrap();
    c.crash(NodeId(2));
    c.run_for(Duration::from_secs(3));
    c.restart(NodeId(2));
    let ring = settle(&mut c, false);
    assert!(ring > before);
    assert_eq!(c.members(NodeId(2)), Some(ids(&[1, 2, 3])));
}

/// Everyone crashing at once loses no ring-id monotonicity.
#[test]
fn whole_cluster_crash_and_restart_keeps_ring_ids_increasing() {
    let mut c = cluster(8, 3);
    assert!(c.run_until_stable(FORM));
    for n in 1..=3 {
        c.crash(NodeId(n));
    }
    c.run_for(Duration::from_millis(500));
    for n in 1..=3 {
        c.restart(NodeId(n));
    }
    settle(&mut c, false);
}

/// A node paused longer than the token timeout is dropped, then rejoins with stale state.
#[test]
fn paused_node_rejoins() {
    let mut c = cluster(9, 3);
    assert!(c.run_until_stable(FORM));
    c.pause(NodeId(2), Duration::from_secs(6));
    let excluded = c.run_until_pred(Duration::from_secs(5), |c| c.members(NodeId(1)) == Some(ids(&[1, 3])));
    assert!(excluded, "{:?}", c.views());
    assert!(c.run_until_pred(Duration::from_secs(10), |c| !c.is_paused(NodeId(2))));
    c.run_for(Duration::from_secs(1));
    settle(&mut c, false);
    assert_eq!(c.members(NodeId(2)), Some(ids(&[1, 2, 3])));
}

/// A pause well below the token timeout must not change the membership.
#[test]
fn short_pause_keeps_the_ring() {
    let mut c = cluster(10, 3);
    assert!(c.run_until_stable(FORM));
    c.run_for(Duration::from_secs(1));
    let ring = c.stable_ring().expect("stable");
    c.pause(NodeId(2), Duration::from_millis(150));
    c.run_for(Duration::from_secs(5));
    assert_clean(&c);
    assert_eq!(c.stable_ring(), Some(ring), "{:?}", c.views());
}

/// Retransmission (paper, section 3.3): heavy loss costs time, never order or safety.
#[test]
fn loss_30_percent_stays_safe() {
    let mut c = cluster(11, 5);
    c.set_loss(0.3);
    c.run_for(Duration::from_secs(20));
    assert_clean(&c);
    settle(&mut c, false);
}

/// Under 10 % random loss of every datagram, token retransmission (`token_retransmit`,
/// `token_retransmits_before_loss_const`) and retransmit requests keep the ring: no membership
/// change at all, and every message is delivered everywhere (corosync 3.1.7 split again and
/// again here).
#[test]
fn loss_10_percent_keeps_one_ring() {
    let mut c = cluster(21, 3);
    assert!(c.run_until_stable(FORM));
    let ring = c.ring_id(NodeId(1)).expect("node 1 is up");
    let (configs, drops, deliveries) = (c.stats().regular_configs, c.stats().drops, c.stats().deliveries);
    c.set_loss(0.1);
    c.set_load(100.0);
    c.run_for(Duration::from_secs(60));
    assert_clean(&c);
    assert!(
        c.stats().drops > drops + 1000,
        "the loss really dropped datagrams: {} -> {}",
        drops,
        c.stats().drops
    );
    assert!(c.stats().deliveries > deliveries + 1000, "traffic flowed");
    assert_eq!(c.stats().regular_configs, configs, "membership changed under 10 % loss");
    assert_eq!(settle(&mut c, false), ring);
}

/// A clean leave (shutdown): the others fail the leaver at once and install a new ring well
/// before a token timeout could have fired (virtual time, so this is exact).
#[test]
fn clean_leave_forms_a_new_ring_without_a_token_timeout() {
    let mut c = cluster(22, 3);
    assert!(c.run_until_stable(FORM));
    let before = c.ring_id(NodeId(1)).expect("up");
    let token = SimConfig::default().totem.token;
    c.leave(NodeId(3));
    let left_at = c.now();
    assert!(c.run_until_pred(token, |c| c.members(NodeId(1)) == Some(ids(&[1, 2]))
        && c.members(NodeId(2)) == Some(ids(&[1, 2]))
        && c.state(NodeId(1)) == Some(totem::SrpState::Operational)));
    assert!(c.now() - left_at < token / 2, "new ring after {:?}", c.now() - left_at);
    assert!(c.ring_id(NodeId(1)).expect("up") > before);
    assert_clean(&c);
    settle(&mut c, false);
}

/// Duplicated and reordered datagrams are tolerated.
#[test]
fn duplication_and_reordering_stay_safe() {
    let link = LinkConfig {
        duplicate: 0.2,
        reorder: 0.3,
        reorder_delay: Duration::from_millis(10),
        ..LinkConfig::default()
    };
    let cfg = SimConfig { link, ..SimConfig::default() };
    let mut c = Cluster::new(12, 4, cfg).unwrap();
    c.run_for(Duration::from_secs(10));
    settle(&mut c, false);
}

/// A one-way cut (n1 cannot reach n2, n2 still reaches n1) stays safe and heals.
#[test]
fn asymmetric_cut_stays_safe_and_heals() {
    let mut c = cluster(13, 3);
    assert!(c.run_until_stable(FORM));
    c.cut(NodeId(1), NodeId(2));
    c.run_for(Duration::from_secs(10));
    assert_clean(&c);
    settle(&mut c, false);
}

/// Found by the fault-schedule property test: a single one-way cut (n2 → n3) during the
/// first seconds, healed at 10 s. Membership must terminate once failures stop (paper,
/// section 6), so the three nodes must end in one ring.
#[test]
fn one_way_cut_healed_reconverges() {
    let mut c = cluster(5_995_877_227_753_626_957, 3);
    c.run_until(Instant::ZERO + Duration::from_millis(3546));
    c.cut(NodeId(2), NodeId(3));
    c.run_until(Instant::ZERO + Duration::from_secs(10));
    assert_clean(&c);
    settle(&mut c, true);
}

/// Token loss (paper, section 4: the token loss timeout starts the membership protocol).
#[test]
fn token_loss_rule_recovers() {
    let mut c = cluster(14, 4);
    assert!(c.run_until_stable(FORM));
    let until = c.now() + Duration::from_secs(3);
    c.add_rule(Rule::new(Action::Drop).from(&[NodeId(2)]).kinds(&[PacketKind::Token]).until(until));
    c.run_for(Duration::from_secs(5));
    assert_clean(&c);
    settle(&mut c, false);
}

/// Clocks running 1 % apart do not disturb a quiet ring.
#[test]
fn clock_drift_does_not_break_the_ring() {
    let cfg = SimConfig { drift_ppm_max: 10_000, ..SimConfig::default() };
    let mut c = Cluster::new(15, 4, cfg).unwrap();
    assert!(c.run_until_stable(FORM));
    c.run_for(Duration::from_secs(1));
    let ring = c.stable_ring().expect("stable");
    c.run_for(Duration::from_secs(20));
    assert_eq!(c.stable_ring(), Some(ring), "{:?}", c.views());
    settle(&mut c, false);
}

/// Determinism: the same seed gives the same trace; another seed another one.
#[test]
fn same_seed_same_trace_hash() {
    let run = |seed: u64| {
        let cfg = SimConfig { trace: TraceOutput::Off, ..SimConfig::default() };
        let mut c = Cluster::new(seed, 4, cfg).unwrap();
        c.run_for(Duration::from_secs(3));
        c.partition(&ids(&[1]), &ids(&[2, 3, 4]));
        c.run_for(Duration::from_secs(3));
        c.crash(NodeId(3));
        c.heal();
        c.run_for(Duration::from_secs(3));
        (c.trace_hash(), c.stats().clone())
    };
    let (a, sa) = run(16);
    let (b, sb) = run(16);
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    assert_ne!(a, run(17).0);
}
