//! Extended virtual synchrony: nodes that move together from a regular configuration R to the
//! same next regular configuration R' delivered the same set of messages of R.
//!
//! "Messages of R" are the deliveries whose `ring_id` is R, whether delivered while R was the
//! regular configuration or in the transitional configuration that followed it (Moser et al.,
//! "Extended virtual synchrony", ICDCS 1994, property 4 "failure atomicity"). Also: a delivery
//! always belongs to the node's current ring, and nothing is delivered before the first ring.

use std::collections::BTreeMap;

use totem::{Instant, NodeId, RingId};

use super::{Check, CheckerKind, Observation, Violation};
use crate::workload::MsgId;

#[derive(Debug)]
struct NodeRing {
    incarnation: u32,
    ring: RingId,
    delivered: Vec<MsgId>,
}

/// The extended-virtual-synchrony checker.
#[derive(Debug, Default)]
pub struct Evs {
    nodes: BTreeMap<NodeId, NodeRing>,
    /// For each transition R → R': the first node that made it and the messages of R it delivered.
    transitions: BTreeMap<(RingId, RingId), (NodeId, Vec<MsgId>)>,
}

impl Evs {
    /// The node's current ring and how many of its messages it delivered so far.
    pub fn current(&self, node: NodeId) -> Option<(RingId, usize)> {
        self.nodes.get(&node).map(|n| (n.ring, n.delivered.len()))
    }

    /// Checks that `nodes`, all still in the same ring, delivered the same messages of it
    /// (the end-of-run form of the rule, for the ring nobody has left yet).
    pub fn compare_current(&self, at: Instant, nodes: &[NodeId], out: &mut Vec<Violation>) {
        let mut first: Option<(NodeId, RingId, Vec<MsgId>)> = None;
        for &n in nodes {
            let Some(nr) = self.nodes.get(&n) else { continue };
            let mut set = nr.delivered.clone();
            set.sort_unstable();
            match &first {
                None => first = Some((n, nr.ring, set)),
                Some((f, ring, fset)) if *ring == nr.ring && *fset != set => {
                    out.push(mismatch(at, n, *f, *ring, None, &set, fset));
                }
                Some(_) => {}
            }
        }
    }

    fn regular(
        &mut self,
        at: Instant,
        node: NodeId,
        incarnation: u32,
        ring: RingId,
        out: &mut Vec<Violation>,
    ) {
        if let Some(prev) = self.nodes.remove(&node).filter(|p| p.incarnation == incarnation) {
            let mut set = prev.delivered;
            set.sort_unstable();
            match self.transitions.get(&(prev.ring, ring)) {
                Some((first, fset)) if *fset != set => {
                    out.push(mismatch(at, node, *first, prev.ring, Some(ring), &set, fset));
                }
                Some(_) => {}
                None => {
                    self.transitions.insert((prev.ring, ring), (node, set));
                }
            }
        }
        self.nodes.insert(node, NodeRing { incarnation, ring, delivered: Vec::new() });
    }
}

fn mismatch(
    at: Instant,
    node: NodeId,
    first: NodeId,
    ring: RingId,
    next: Option<RingId>,
    set: &[MsgId],
    fset: &[MsgId],
) -> Violation {
    let only = |a: &[MsgId], b: &[MsgId]| -> String {
        let v: Vec<String> =
            a.iter().filter(|m| b.binary_search(m).is_err()).take(5).map(|m| m.to_string()).collect();
        v.join(" ")
    };
    let moving = match next {
        Some(n) => format!("moving from ring {ring} to ring {n}"),
        None => format!("both still in ring {ring}"),
    };
    Violation::new(
        CheckerKind::Evs,
        at,
        Some(node),
        format!(
            "{moving}, n{node} delivered {} messages of ring {ring} and n{first} {}; only n{node}: [{}]; only n{first}: [{}]",
            set.len(),
            fset.len(),
            only(set, fset),
            only(fset, set)
        ),
    )
}

impl Check for Evs {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        match *obs {
            Observation::Regular { node, incarnation, config } => {
                self.regular(at, node, incarnation, config.ring_id, out)
            }
            Observation::Deliver { node, incarnation, delivery, id } => {
                let fail = |d: String| Violation::new(CheckerKind::Evs, at, Some(node), d);
                match self.nodes.get_mut(&node).filter(|n| n.incarnation == incarnation) {
                    None => out.push(fail(format!(
                        "delivered a message of ring {} before installing any regular configuration",
                        delivery.ring_id
                    ))),
                    Some(nr) if nr.ring != delivery.ring_id => out.push(fail(format!(
                        "delivered a message ordered in ring {} while its current ring is {}",
                        delivery.ring_id, nr.ring
                    ))),
                    Some(nr) => nr.delivered.extend(id),
                }
            }
            Observation::Crash { node, .. } | Observation::Restart { node, .. } => {
                self.nodes.remove(&node);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use totem::Guarantee::Agreed;

    use super::super::testkit::*;
    use super::super::{run_history, Observation as O};
    use super::*;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    #[test]
    fn same_messages_before_moving_on_pass() {
        let (r1, r2) = (ring(1, 1), ring(2, 1));
        let (c1, c2, t1) = (conf(r1, &[1, 2]), conf(r2, &[1, 2]), conf(r1, &[1, 2]));
        let m = id(1, 1);
        let d = delivery(r1, 1, m, Agreed);
        let h = [
            (0, O::Regular { node: A, incarnation: 0, config: &c1 }),
            (0, O::Regular { node: B, incarnation: 0, config: &c1 }),
            (1, O::Deliver { node: A, incarnation: 0, delivery: &d, id: Some(m) }),
            (2, O::Transitional { node: B, incarnation: 0, config: &t1 }),
            (2, O::Deliver { node: B, incarnation: 0, delivery: &d, id: Some(m) }),
            (3, O::Regular { node: A, incarnation: 0, config: &c2 }),
            (3, O::Regular { node: B, incarnation: 0, config: &c2 }),
        ];
        assert!(run_history(&mut Evs::default(), &h).is_empty());
    }

    #[test]
    fn a_missing_message_when_moving_together_fails() {
        let (r1, r2) = (ring(1, 1), ring(2, 1));
        let (c1, c2) = (conf(r1, &[1, 2]), conf(r2, &[1, 2]));
        let m = id(1, 1);
        let d = delivery(r1, 1, m, Agreed);
        let h = [
            (0, O::Regular { node: A, incarnation: 0, config: &c1 }),
            (0, O::Regular { node: B, incarnation: 0, config: &c1 }),
            (1, O::Deliver { node: A, incarnation: 0, delivery: &d, id: Some(m) }),
            (3, O::Regular { node: A, incarnation: 0, config: &c2 }),
            (3, O::Regular { node: B, incarnation: 0, config: &c2 }),
        ];
        let v = run_history(&mut Evs::default(), &h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("only n1: [m1.1]"), "{}", v[0]);
    }

    #[test]
    fn different_next_rings_may_differ() {
        let (r1, r2, r3) = (ring(1, 1), ring(2, 1), ring(2, 2));
        let (c1, c2, c3) = (conf(r1, &[1, 2]), conf(r2, &[1]), conf(r3, &[2]));
        let m = id(1, 1);
        let d = delivery(r1, 1, m, Agreed);
        let h = [
            (0, O::Regular { node: A, incarnation: 0, config: &c1 }),
            (0, O::Regular { node: B, incarnation: 0, config: &c1 }),
            (1, O::Deliver { node: A, incarnation: 0, delivery: &d, id: Some(m) }),
            (3, O::Regular { node: A, incarnation: 0, config: &c2 }),
            (3, O::Regular { node: B, incarnation: 0, config: &c3 }),
        ];
        assert!(run_history(&mut Evs::default(), &h).is_empty());
    }

    #[test]
    fn delivery_outside_the_current_ring_or_before_any_fails() {
        let (r1, r2) = (ring(1, 1), ring(2, 1));
        let c2 = conf(r2, &[1]);
        let m = id(1, 1);
        let d = delivery(r1, 1, m, Agreed);
        let h = [
            (0, O::Deliver { node: A, incarnation: 0, delivery: &d, id: Some(m) }),
            (1, O::Regular { node: A, incarnation: 0, config: &c2 }),
            (2, O::Deliver { node: A, incarnation: 0, delivery: &d, id: Some(m) }),
        ];
        assert_eq!(run_history(&mut Evs::default(), &h).len(), 2);
    }

    #[test]
    fn compare_current_reports_a_gap_in_the_last_ring() {
        let r1 = ring(1, 1);
        let c1 = conf(r1, &[1, 2]);
        let m = id(2, 7);
        let d = delivery(r1, 1, m, Agreed);
        let mut evs = Evs::default();
        let h = [
            (0, O::Regular { node: A, incarnation: 0, config: &c1 }),
            (0, O::Regular { node: B, incarnation: 0, config: &c1 }),
            (1, O::Deliver { node: B, incarnation: 0, delivery: &d, id: Some(m) }),
        ];
        assert!(run_history(&mut evs, &h).is_empty());
        let mut out = Vec::new();
        evs.compare_current(Instant::ZERO, &[A, B], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(evs.current(B), Some((r1, 1)));
    }
}
