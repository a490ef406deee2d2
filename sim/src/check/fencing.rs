//! No split brain with fencing: two nodes that cannot talk never both go on.
//!
//! The rule, as the nodes show it: at no time do two running nodes that cannot talk
//! to each other both run as quorate, unfenced and active. A node is *active* when it may
//! deliver CPG and application messages: its engine is operational and its fencer does not
//! hold service ([`quorum::fencing::Fencer::is_blocking`]); it is unfenced while it runs (a
//! switch that powered it off crashed it). Two nodes *can talk* when each holds the other in
//! its last installed ring: Totem delivers nothing across rings. So a node that was declared
//! dead, lost from its peers' ring, and wakes from a pause on its old ring while they go on
//! unblocked is caught: fencing must have powered it off first (fenced(8): no one proceeds
//! until the victim is fenced).
//!
//! Unlike [`super::split_brain`] this holds for `two_node` too, where both halves of a split
//! are quorate: both block until one has powered the other off.

use std::collections::BTreeMap;

use totem::{Instant, NodeId, RingId};

use super::{Check, CheckerKind, Observation, Violation};

/// What the checker knows of one running node.
#[derive(Clone, Debug)]
struct Held {
    ring_id: RingId,
    members: Vec<NodeId>,
    /// Quorate, operational and not held by its fencer.
    active: bool,
    paused: bool,
}

/// The checker (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct NoFencedSplitBrain {
    nodes: BTreeMap<NodeId, Held>,
    /// Pairs of rings already reported (one violation per pair).
    reported: Vec<(RingId, RingId)>,
}

impl NoFencedSplitBrain {
    fn evaluate(&mut self, at: Instant, out: &mut Vec<Violation>) {
        let active: Vec<(&NodeId, &Held)> =
            self.nodes.iter().filter(|(_, h)| h.active && !h.paused).collect();
        for (k, &(a, ha)) in active.iter().enumerate() {
            for &(b, hb) in &active[k + 1..] {
                if ha.members.contains(b) && hb.members.contains(a) {
                    continue;
                }
                let pair = (ha.ring_id.min(hb.ring_id), ha.ring_id.max(hb.ring_id));
                if self.reported.contains(&pair) {
                    continue;
                }
                self.reported.push(pair);
                out.push(Violation::new(
                    CheckerKind::FencedSplitBrain,
                    at,
                    Some(*b),
                    format!(
                        "split brain with fencing: n{a} (ring {} members {:?}) and n{b} (ring {} members {:?}) \
                         are both quorate, unfenced and active but not in one ring",
                        ha.ring_id, ha.members, hb.ring_id, hb.members
                    ),
                ));
            }
        }
    }
}

impl Check for NoFencedSplitBrain {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        match *obs {
            Observation::FenceState { node, ring_id, members, quorate, blocked, operational, .. } => {
                let active = quorate && !blocked && operational;
                let h = self.nodes.entry(node).or_insert_with(|| Held {
                    ring_id,
                    members: members.to_vec(),
                    active,
                    paused: false,
                });
                if h.ring_id != ring_id || h.members != members {
                    h.ring_id = ring_id;
                    h.members = members.to_vec();
                }
                h.active = active;
                h.paused = false;
            }
            Observation::Pause { node } => {
                if let Some(h) = self.nodes.get_mut(&node) {
                    h.paused = true;
                }
                return;
            }
            Observation::Resume { node } => {
                // Its state is sampled again after its first input.
                if let Some(h) = self.nodes.get_mut(&node) {
                    h.paused = false;
                }
            }
            Observation::Crash { node, .. } => {
                self.nodes.remove(&node);
                return;
            }
            _ => return,
        }
        self.evaluate(at, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::run_history;
    use crate::check::testkit::ring;

    fn state(node: u32, ring_id: RingId, members: &'static [NodeId], blocked: bool) -> Observation<'static> {
        Observation::FenceState {
            node: NodeId(node),
            incarnation: 0,
            ring_id,
            members,
            quorate: true,
            blocked,
            operational: true,
        }
    }

    const ALL: &[NodeId] = &[NodeId(1), NodeId(2), NodeId(3)];
    const PAIR: &[NodeId] = &[NodeId(1), NodeId(2)];

    #[test]
    fn survivors_may_go_on_only_once_the_lost_node_is_off() {
        let (r1, r2) = (ring(4, 1), ring(8, 1));
        let base =
            [(0, state(1, r1, ALL, false)), (0, state(2, r1, ALL, false)), (0, state(3, r1, ALL, false))];
        // The pair blocks while n3 is pending, and goes on once the switch crashed n3.
        let mut h = base.to_vec();
        h.extend([
            (10, state(1, r2, PAIR, true)),
            (10, state(2, r2, PAIR, true)),
            (20, Observation::Crash { node: NodeId(3), incarnation: 0 }),
            (21, state(1, r2, PAIR, false)),
            (21, state(2, r2, PAIR, false)),
        ]);
        assert!(run_history(&mut NoFencedSplitBrain::default(), &h).is_empty());
        // The pair goes on while n3, still on its old ring, runs unblocked: flagged once.
        let mut h = base.to_vec();
        h.extend([(10, state(1, r2, PAIR, false)), (10, state(2, r2, PAIR, false))]);
        let v = run_history(&mut NoFencedSplitBrain::default(), &h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].checker, CheckerKind::FencedSplitBrain);
        // Paused, n3 runs nothing; it is caught when it wakes.
        let mut h = base.to_vec();
        h.extend([
            (5, Observation::Pause { node: NodeId(3) }),
            (10, state(1, r2, PAIR, false)),
            (10, state(2, r2, PAIR, false)),
        ]);
        assert!(run_history(&mut NoFencedSplitBrain::default(), &h).is_empty());
        h.extend([(30, Observation::Resume { node: NodeId(3) }), (30, state(3, r1, ALL, false))]);
        assert_eq!(run_history(&mut NoFencedSplitBrain::default(), &h).len(), 1);
    }
}
