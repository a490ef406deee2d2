//! Liveness: once faults stop, the live nodes form one ring made of exactly them, and every
//! message submitted after that is delivered by all of them.
//!
//! Totem promises progress only when the network is quiet for long enough (paper, section 6:
//! membership terminates once failures stop). The cluster's liveness phase heals everything,
//! waits a bounded time for [`stable_ring`], then submits probe messages, which [`Probes`]
//! tracks until every expected receiver delivered them.

use std::collections::{BTreeMap, BTreeSet};

use totem::{Instant, NodeId, RingId, SrpState};

use super::{Check, CheckerKind, Observation, Violation};
use crate::workload::MsgId;

/// What the liveness check sees of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// The node.
    pub id: NodeId,
    /// Its protocol state; `None` when crashed.
    pub state: Option<SrpState>,
    /// Its last installed ring.
    pub ring_id: Option<RingId>,
    /// That ring's members.
    pub members: Vec<NodeId>,
}

/// `Ok(ring)` when every live node is operational in the same ring whose members are exactly
/// the live nodes; otherwise what is wrong.
pub fn stable_ring(views: &[NodeView]) -> Result<RingId, String> {
    let live: Vec<NodeId> = views.iter().filter(|v| v.state.is_some()).map(|v| v.id).collect();
    let mut ring = None;
    for v in views.iter().filter(|v| v.state.is_some()) {
        if v.state != Some(SrpState::Operational) {
            return Err(format!("n{} is in state {:?}", v.id, v.state));
        }
        let Some(r) = v.ring_id else { return Err(format!("n{} has no ring", v.id)) };
        if *ring.get_or_insert(r) != r {
            return Err(format!("n{} is in ring {r}, others in ring {}", v.id, ring.unwrap_or(r)));
        }
        if v.members != live {
            return Err(format!("n{} has ring members {:?}, live nodes are {:?}", v.id, v.members, live));
        }
    }
    ring.ok_or_else(|| "no live node".to_string())
}

/// A one-line picture of every node, for violation reports.
pub fn describe(views: &[NodeView]) -> String {
    let parts: Vec<String> = views
        .iter()
        .map(|v| match (v.state, v.ring_id) {
            (None, _) => format!("n{}: down", v.id),
            (Some(s), Some(r)) => {
                format!("n{}: {s:?} ring {r} {:?}", v.id, v.members.iter().map(|m| m.0).collect::<Vec<_>>())
            }
            (Some(s), None) => format!("n{}: {s:?} no ring", v.id),
        })
        .collect();
    parts.join("; ")
}

/// Probe messages: every one must be delivered by each of its expected receivers.
#[derive(Debug, Default)]
pub struct Probes {
    /// While set, every accepted submission becomes a probe expected at these nodes.
    armed: Option<Vec<NodeId>>,
    waiting: BTreeMap<MsgId, BTreeSet<NodeId>>,
}

impl Probes {
    /// Turns the next submissions into probes that every node of `receivers` must deliver.
    pub fn arm(&mut self, receivers: &[NodeId]) {
        self.armed = Some(receivers.to_vec());
    }

    /// Stops turning submissions into probes.
    pub fn disarm(&mut self) {
        self.armed = None;
    }

    /// Deliveries still expected (one per probe and receiver).
    pub fn pending(&self) -> usize {
        self.waiting.values().map(BTreeSet::len).sum()
    }

    /// Reports the probes some receiver never delivered.
    pub fn check(&self, at: Instant, out: &mut Vec<Violation>) {
        let mut by_node: BTreeMap<NodeId, Vec<MsgId>> = BTreeMap::new();
        for (id, nodes) in &self.waiting {
            for n in nodes {
                by_node.entry(*n).or_default().push(*id);
            }
        }
        for (node, ids) in by_node {
            let first: Vec<String> = ids.iter().take(5).map(|m| m.to_string()).collect();
            out.push(Violation::new(
                CheckerKind::Liveness,
                at,
                Some(node),
                format!(
                    "{} messages sent after the ring stabilized never delivered here, e.g. {}",
                    ids.len(),
                    first.join(" ")
                ),
            ));
        }
    }
}

impl Check for Probes {
    fn observe(&mut self, _at: Instant, obs: &Observation<'_>, _out: &mut Vec<Violation>) {
        match *obs {
            Observation::Submit { id, .. } => {
                if let Some(r) = &self.armed {
                    self.waiting.insert(id, r.iter().copied().collect());
                }
            }
            Observation::Deliver { node, id: Some(id), .. } => {
                if let Some(w) = self.waiting.get_mut(&id) {
                    w.remove(&node);
                    if w.is_empty() {
                        self.waiting.remove(&id);
                    }
                }
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

    fn view(id: u32, state: Option<SrpState>, r: Option<RingId>, members: &[u32]) -> NodeView {
        NodeView { id: NodeId(id), state, ring_id: r, members: members.iter().map(|&m| NodeId(m)).collect() }
    }

    #[test]
    fn one_ring_of_exactly_the_live_nodes_is_stable() {
        let r = ring(4, 1);
        let op = Some(SrpState::Operational);
        let views = [view(1, op, Some(r), &[1, 3]), view(2, None, None, &[]), view(3, op, Some(r), &[1, 3])];
        assert_eq!(stable_ring(&views), Ok(r));
    }

    #[test]
    fn split_rings_gathering_nodes_or_wrong_members_are_not() {
        let (r, r2) = (ring(4, 1), ring(4, 2));
        let op = Some(SrpState::Operational);
        assert!(stable_ring(&[view(1, op, Some(r), &[1]), view(2, op, Some(r2), &[2])]).is_err());
        assert!(stable_ring(&[
            view(1, op, Some(r), &[1, 2]),
            view(2, Some(SrpState::Gather), Some(r), &[1, 2])
        ])
        .is_err());
        assert!(stable_ring(&[view(1, op, Some(r), &[1, 2, 3]), view(2, op, Some(r), &[1, 2, 3])]).is_err());
        assert!(stable_ring(&[view(1, None, None, &[])]).is_err());
        assert!(describe(&[view(1, None, None, &[])]).contains("down"));
    }

    #[test]
    fn an_undelivered_probe_fails() {
        let mut p = Probes::default();
        p.arm(&[NodeId(1), NodeId(2)]);
        let m = id(1, 1);
        let d = delivery(ring(1, 1), 1, m, Agreed);
        let h = [
            (0, O::Submit { node: NodeId(1), incarnation: 0, id: m, guarantee: Agreed, len: 20, hash: 0 }),
            (1, O::Deliver { node: NodeId(1), incarnation: 0, delivery: &d, id: Some(m) }),
        ];
        run_history(&mut p, &h);
        p.disarm();
        assert_eq!(p.pending(), 1);
        let mut out = Vec::new();
        p.check(Instant::ZERO, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].node, Some(NodeId(2)));
    }
}
