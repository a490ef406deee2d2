//! Self-delivery: a node that stays up delivers every message it submitted.
//!
//! Totem never discards a message its sender holds: it is either ordered in the sender's ring
//! or recovered into the transitional configuration, which always contains the sender (paper,
//! section 5, "a processor delivers its own messages"). Messages of an incarnation that crashed
//! are exempt: they are lost with it. Checked at the end of the liveness phase.

use std::collections::{BTreeMap, BTreeSet};

use totem::{Instant, NodeId};

use super::{Check, CheckerKind, Observation, Violation};
use crate::workload::MsgId;

/// The self-delivery checker.
#[derive(Debug, Default)]
pub struct SelfDelivery {
    /// Per sender: its incarnation and the messages it submitted but has not delivered.
    outstanding: BTreeMap<NodeId, (u32, BTreeSet<MsgId>)>,
}

impl SelfDelivery {
    /// Messages `node` submitted in its current incarnation and has not delivered yet.
    pub fn outstanding(&self, node: NodeId) -> usize {
        self.outstanding.get(&node).map_or(0, |(_, s)| s.len())
    }

    /// Reports every live node that still has undelivered messages of its own.
    pub fn check(&self, at: Instant, live: &[NodeId], out: &mut Vec<Violation>) {
        for &node in live {
            let Some((_, set)) = self.outstanding.get(&node).filter(|(_, s)| !s.is_empty()) else { continue };
            let first: Vec<String> = set.iter().take(5).map(|m| m.to_string()).collect();
            out.push(Violation::new(
                CheckerKind::SelfDelivery,
                at,
                Some(node),
                format!("{} of its own messages never delivered to it, e.g. {}", set.len(), first.join(" ")),
            ));
        }
    }
}

impl Check for SelfDelivery {
    fn observe(&mut self, _at: Instant, obs: &Observation<'_>, _out: &mut Vec<Violation>) {
        match *obs {
            Observation::Submit { node, incarnation, id, .. } => {
                let entry = self.outstanding.entry(node).or_insert_with(|| (incarnation, BTreeSet::new()));
                if entry.0 != incarnation {
                    *entry = (incarnation, BTreeSet::new());
                }
                entry.1.insert(id);
            }
            Observation::Deliver { node, incarnation, id: Some(id), .. } if id.sender == node => {
                if let Some((inc, set)) = self.outstanding.get_mut(&node) {
                    if *inc == incarnation {
                        set.remove(&id);
                    }
                }
            }
            Observation::Crash { node, .. } => {
                self.outstanding.remove(&node);
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

    fn submit(id: MsgId, incarnation: u32) -> O<'static> {
        O::Submit { node: id.sender, incarnation, id, guarantee: Agreed, len: 20, hash: 0 }
    }

    #[test]
    fn undelivered_own_message_of_a_live_node_fails() {
        let (m1, m2) = (id(1, 1), id(1, 2));
        let d1 = delivery(ring(1, 1), 1, m1, Agreed);
        let mut c = SelfDelivery::default();
        let h = [
            (0, submit(m1, 0)),
            (0, submit(m2, 0)),
            (1, O::Deliver { node: A, incarnation: 0, delivery: &d1, id: Some(m1) }),
        ];
        assert!(run_history(&mut c, &h).is_empty());
        let mut out = Vec::new();
        c.check(Instant::ZERO, &[A], &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].detail.contains("m1.2"));
    }

    #[test]
    fn messages_lost_with_a_crash_are_exempt() {
        let mut c = SelfDelivery::default();
        let h = [
            (0, submit(id(1, 1), 0)),
            (1, O::Crash { node: A, incarnation: 0 }),
            (2, O::Restart { node: A, incarnation: 1 }),
        ];
        run_history(&mut c, &h);
        let mut out = Vec::new();
        c.check(Instant::ZERO, &[A], &mut out);
        assert!(out.is_empty());
        assert_eq!(c.outstanding(A), 0);
    }
}
