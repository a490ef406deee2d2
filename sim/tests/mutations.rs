//! The checkers catch engine bugs in real runs: a deliberate distortion of one node's delivery
//! stream (see `sim::Mutation`) must make the matching checker report a violation. This guards
//! the simulator itself against checkers that silently pass.

use std::time::Duration;

use sim::{CheckerKind, Cluster, Mutation, MutationKind, SimConfig};
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
