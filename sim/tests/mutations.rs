//! The checkers catch engine bugs in real runs: a deliberate distortion of one node's delivery
//! stream (see `sim::Mutation`) must make the matching checker report a violation. This guards
//! the simulator itself against checkers that silently pass.

use std::time::Duration;

use sim::{CheckerKind, Cluster, CpgLoad, Mutation, MutationKind, SimConfig};
use totem::NodeId;

fn run_with(kind: MutationKind, crash_after: bool) -> Vec<CheckerKind> {
    let mutation = Mutation { node: NodeId(2), nth: 40, kind };
    let cfg = SimConfig { mutation: Some(mutation), ..SimConfig::default() };
    let mut c = Cluster::new(21, 3, cfg).unwrap();
    c.run_for(Duration::from_secs(5));
    assert!(c.halted() || c.stats().deliveries > 200, "the mutation must have happened: {:?}", c.stats());
    if crash_after {
        // n1 and n2 move together to a new ring: EVS compares what they delivered.
        c.crash(NodeId(3));
        c.run_for(Duration::from_secs(5));
    }
    c.violations().iter().map(|v| v.checker).collect()
}

#[test]
fn a_skipped_delivery_breaks_extended_virtual_synchrony() {
    let found = run_with(MutationKind::DropDelivery, true);
    assert!(found.contains(&CheckerKind::Evs), "{found:?}");
}

#[test]
fn a_repeated_delivery_is_a_duplicate() {
    let found = run_with(MutationKind::DuplicateDelivery, false);
    assert!(found.contains(&CheckerKind::Integrity), "{found:?}");
}

#[test]
fn swapped_deliveries_break_total_order() {
    let found = run_with(MutationKind::SwapDeliveries, false);
    assert!(found.contains(&CheckerKind::TotalOrder), "{found:?}");
}

#[test]
fn a_member_never_seen_holding_messages_makes_safe_delivery_premature() {
    let found = run_with(MutationKind::HideReceivedThrough, false);
    assert!(found.contains(&CheckerKind::Safe), "{found:?}");
}

#[test]
fn without_a_mutation_the_same_run_is_clean() {
    let mut c = Cluster::new(21, 3, SimConfig::default()).unwrap();
    c.run_for(Duration::from_secs(5));
    c.crash(NodeId(3));
    c.run_for(Duration::from_secs(5));
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

/// A cluster with busy CPG clients (and no raw load) whose node 2 distorts the `nth` group
/// message told to one of its clients.
fn run_cpg_with(kind: Option<MutationKind>) -> (Vec<CheckerKind>, Cluster) {
    let mut cfg = SimConfig::default();
    cfg.load.rate_per_node = 0.0;
    cfg.cpg = CpgLoad { ops_per_node: 30.0, groups: 2, ..CpgLoad::default() };
    cfg.mutation = kind.map(|kind| Mutation { node: NodeId(2), nth: 60, kind });
    let mut c = Cluster::new(21, 3, cfg).unwrap();
    c.run_for(Duration::from_secs(10));
    assert!(c.halted() || c.stats().cpg_deliveries > 300, "the mutation must have happened: {:?}", c.stats());
    (c.violations().iter().map(|v| v.checker).collect(), c)
}

#[test]
fn a_skipped_group_message_breaks_group_virtual_synchrony() {
    let (found, _) = run_cpg_with(Some(MutationKind::CpgDropDelivery));
    assert!(found.contains(&CheckerKind::CpgSynchrony), "{found:?}");
}

#[test]
fn a_repeated_group_message_is_a_duplicate() {
    let (found, _) = run_cpg_with(Some(MutationKind::CpgDuplicateDelivery));
    assert!(found.contains(&CheckerKind::CpgOrder), "{found:?}");
}

#[test]
fn swapped_group_messages_break_group_total_order() {
    let (found, _) = run_cpg_with(Some(MutationKind::CpgSwapDeliveries));
    assert!(found.contains(&CheckerKind::CpgOrder), "{found:?}");
}

#[test]
fn without_a_mutation_the_same_cpg_run_is_clean_and_compares_views() {
    let (found, mut c) = run_cpg_with(None);
    assert!(found.is_empty(), "{:?}", c.violations());
    assert!(c.checkers().cpg.synchrony.compared() > 10, "{}", c.checkers().cpg.synchrony.compared());
    c.stop_faults(false);
    c.check_liveness();
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}
