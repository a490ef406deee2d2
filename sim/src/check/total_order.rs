//! Total order: one order of all messages is consistent with every node's deliveries.
//!
//! A delivery names its ordering position: the ring it was ordered in and the seq of its last
//! packet. So (1) every node must report the same `(ring_id, seq)` for the same message, and
//! (2) each node must deliver in non-decreasing `(ring_id, seq)`. Several messages may share a
//! key (packed in one packet); their order is checked as a graph: each node's consecutive
//! deliveries within one key add an edge, and a cycle means no single order fits everyone.
//! This is Totem's agreed order (paper, section 2: "messages are delivered in the same total
//! order at every processor"), slightly stronger than "any two nodes agree pairwise".

use std::collections::{BTreeMap, BTreeSet};

use totem::{Instant, NodeId, RingId, Seq};

use super::{Check, CheckerKind, Observation, Violation};
use crate::workload::MsgId;

type Key = (RingId, Seq);

/// The total-order checker.
#[derive(Debug, Default)]
pub struct TotalOrder {
    /// The ordering key of each message and the node that first reported it.
    key_of: BTreeMap<MsgId, (Key, NodeId)>,
    /// Each node's last delivery in its current incarnation.
    last: BTreeMap<NodeId, (u32, Key, MsgId)>,
    /// Within one key, "delivered right before" edges.
    groups: BTreeMap<Key, BTreeMap<MsgId, BTreeSet<MsgId>>>,
}

impl TotalOrder {
    fn deliver(
        &mut self,
        at: Instant,
        node: NodeId,
        incarnation: u32,
        key: Key,
        id: MsgId,
        out: &mut Vec<Violation>,
    ) {
        let fail = |detail: String| Violation::new(CheckerKind::TotalOrder, at, Some(node), detail);
        match self.key_of.get(&id) {
            Some(&(k, first)) if k != key => out.push(fail(format!(
                "{id} delivered at ring {} seq {}, but n{first} delivered it at ring {} seq {}",
                key.0, key.1, k.0, k.1
            ))),
            Some(_) => {}
            None => {
                self.key_of.insert(id, (key, node));
            }
        }
        if let Some(&(inc, prev_key, prev)) = self.last.get(&node) {
            if inc == incarnation {
                if key < prev_key {
                    out.push(fail(format!(
                        "{id} (ring {} seq {}) delivered after {prev} (ring {} seq {})",
                        key.0, key.1, prev_key.0, prev_key.1
                    )));
                } else if key == prev_key {
                    self.add_edge(key, prev, id, &fail, out);
                }
            }
        }
        self.last.insert(node, (incarnation, key, id));
    }

    fn add_edge(
        &mut self,
        key: Key,
        before: MsgId,
        after: MsgId,
        fail: &dyn Fn(String) -> Violation,
        out: &mut Vec<Violation>,
    ) {
        let graph = self.groups.entry(key).or_default();
        if before == after {
            return; // a duplicate; the integrity checker reports it
        }
        if reaches(graph, after, before) {
            out.push(fail(format!(
                "{before} delivered before {after} (both ring {} seq {}), but other nodes delivered {after} before {before}",
                key.0, key.1
            )));
            return;
        }
        graph.entry(before).or_default().insert(after);
    }
}

/// Whether `to` is reachable from `from` in `graph`.
fn reaches(graph: &BTreeMap<MsgId, BTreeSet<MsgId>>, from: MsgId, to: MsgId) -> bool {
    let mut stack = vec![from];
    let mut seen = BTreeSet::new();
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        if seen.insert(n) {
            if let Some(next) = graph.get(&n) {
                stack.extend(next.iter().copied());
            }
        }
    }
    false
}

impl Check for TotalOrder {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        match *obs {
            Observation::Deliver { node, incarnation, delivery, id: Some(id) } => {
                self.deliver(at, node, incarnation, (delivery.ring_id, delivery.seq), id, out);
            }
            Observation::Crash { node, .. } | Observation::Restart { node, .. } => {
                self.last.remove(&node);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use totem::Guarantee::Agreed;
    use totem::NodeId;

    use super::super::testkit::*;
    use super::super::{run_history, Observation};
    use super::*;

    fn check(events: &[(u32, u64, u64, MsgId)]) -> Vec<Violation> {
        let deliveries: Vec<_> =
            events.iter().map(|&(_, r, s, m)| delivery(ring(r, 1), s, m, Agreed)).collect();
        let obs: Vec<_> = events
            .iter()
            .zip(&deliveries)
            .enumerate()
            .map(|(t, (&(n, _, _, m), d))| {
                (t as u64, Observation::Deliver { node: NodeId(n), incarnation: 0, delivery: d, id: Some(m) })
            })
            .collect();
        run_history(&mut TotalOrder::default(), &obs)
    }

    #[test]
    fn same_order_everywhere_passes() {
        let (a, b, c) = (id(1, 1), id(2, 1), id(3, 1));
        let v = check(&[
            (1, 1, 1, a),
            (1, 1, 2, b),
            (1, 1, 2, c),
            (2, 1, 1, a),
            (2, 1, 2, b),
            (2, 1, 2, c),
            (3, 1, 2, c),
        ]);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn different_keys_for_one_message_fail() {
        let a = id(1, 1);
        let v = check(&[(1, 1, 1, a), (2, 1, 2, a)]);
        assert_eq!(v.len(), 1);
        assert!(v[0].detail.contains("n1 delivered it"), "{}", v[0]);
    }

    #[test]
    fn delivering_a_lower_key_later_fails() {
        let (a, b) = (id(1, 1), id(1, 2));
        let v = check(&[(1, 2, 5, b), (1, 1, 9, a)]);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].checker, CheckerKind::TotalOrder);
    }

    #[test]
    fn swapped_messages_of_one_packet_fail() {
        let (a, b) = (id(1, 1), id(2, 1));
        let v = check(&[(1, 1, 3, a), (1, 1, 3, b), (2, 1, 3, b), (2, 1, 3, a)]);
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn cycle_over_three_nodes_fails() {
        let (a, b, c) = (id(1, 1), id(2, 1), id(3, 1));
        let v = check(&[(1, 1, 3, a), (1, 1, 3, c), (2, 1, 3, c), (2, 1, 3, b), (3, 1, 3, b), (3, 1, 3, a)]);
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn a_restart_starts_a_fresh_sequence() {
        let (a, b) = (id(1, 1), id(1, 2));
        let d1 = delivery(ring(2, 1), 5, b, Agreed);
        let d2 = delivery(ring(1, 1), 9, a, Agreed);
        let n = NodeId(1);
        let v = run_history(
            &mut TotalOrder::default(),
            &[
                (0, Observation::Deliver { node: n, incarnation: 0, delivery: &d1, id: Some(b) }),
                (1, Observation::Restart { node: n, incarnation: 1 }),
                (2, Observation::Deliver { node: n, incarnation: 1, delivery: &d2, id: Some(a) }),
            ],
        );
        assert!(v.is_empty());
    }
}
