//! No split brain: two partitions that cannot talk are never both quorate.
//!
//! votequorum (votequorum(5)) decides quorum per installed ring: a node recounts when it
//! installs a regular configuration and when node infos of that ring are delivered. So the
//! rule is stated over rings, not over network components:
//!
//! A ring is *superseded* once a live (not crashed) member holds a later ring; otherwise it is
//! *current*. A member still holding an older ring (it has not installed this one yet, or
//! never will) does not supersede it.
//!
//! 1. **Split brain.** At every step, among the nodes that run (neither paused nor crashed) and
//!    report quorate on a current ring, no two hold different rings with disjoint members.
//!    Any node state counts here (gather, commit and recovery too), not only operational.
//!    Two quorate rings that share a member are a merge or split in progress, not two
//!    partitions: a node installing a ring counts the members it shares with its previous
//!    ring before they have installed it (corosync does the same), so a node that installed
//!    a merged ring is quorate while the others still hold their part.
//! 2. **Stale quorum is short.** An operational node may report quorate on a superseded ring,
//!    or on a ring sharing a member with a later ring reported quorate, only until it
//!    notices: Totem's token loss (or the new ring's install) ends it. This
//!    window exists in corosync too — a node cut off keeps its quorate view until its token
//!    timeout — and fencing (later) is what covers it. The rule bounds it: at most
//!    `stale_grace` of the node's running time as operational on that ring. Once it leaves
//!    the operational state it knows its ring is broken and the clock stops (the membership
//!    protocol may take long under loss; votequorum, like corosync's, keeps the old quorum
//!    until the next ring, where it recounts). Time paused does not count and the clock
//!    restarts when the node resumes: a node woken after a long pause has the same window as
//!    one that was just cut off, no more.
//!
//! Why not "quorate nodes in different network components": a node learns of a cut only at
//! its token timeout, so right after a partition the minority side still holds the old, then
//! quorate, ring while the majority installs a new quorate one; rule 1 does not flag that
//! (the old ring is superseded once a member installed the new one) and rule 2 bounds it.
//! `two_node` breaks rule 1 by design (both halves of a two-node split stay quorate until
//! fencing), so the swarm enables it only with fencing, and then a node its fencer holds
//! counts as not quorate here ([`super::fencing`] checks the rest).

use std::collections::BTreeMap;
use std::time::Duration;

use totem::{Instant, NodeId, RingId};

use super::{Check, CheckerKind, Observation, Violation};

/// What the checker knows of one node.
#[derive(Clone, Debug)]
struct Held {
    ring_id: RingId,
    members: Vec<NodeId>,
    quorate: bool,
    /// The engine is operational (its ring installed, not in a membership change).
    operational: bool,
    paused: bool,
    /// Global time since which the node, running and operational, has reported quorate on a
    /// superseded ring.
    stale_since: Option<u64>,
    /// The stale ring already reported (one violation per node and ring).
    stale_reported: Option<RingId>,
}

/// The no-split-brain checker (see the module doc).
#[derive(Clone, Debug)]
pub struct NoSplitBrain {
    nodes: BTreeMap<NodeId, Held>,
    /// How long an operational node may report quorate on a superseded ring.
    pub stale_grace: Duration,
    /// The pair of rings last reported as both quorate (one violation per pair).
    reported: Option<(RingId, RingId)>,
}

impl Default for NoSplitBrain {
    fn default() -> Self {
        NoSplitBrain::new(Duration::from_secs(5))
    }
}

impl NoSplitBrain {
    /// A checker allowing `stale_grace` of stale quorum per node.
    pub fn new(stale_grace: Duration) -> Self {
        NoSplitBrain { nodes: BTreeMap::new(), stale_grace, reported: None }
    }

    /// Whether no live member of `ring_id` holds a later ring.
    fn current(&self, ring_id: RingId, members: &[NodeId]) -> bool {
        members.iter().all(|m| self.nodes.get(m).is_none_or(|h| h.ring_id <= ring_id))
    }

    fn evaluate(&mut self, at: Instant, out: &mut Vec<Violation>) {
        let now = at.as_nanos();
        // The quorate claims of running nodes: (node, ring, current).
        let claims: Vec<(NodeId, RingId, bool)> = self
            .nodes
            .iter()
            .filter(|(_, h)| h.quorate && !h.paused)
            .map(|(&id, h)| (id, h.ring_id, self.current(h.ring_id, &h.members)))
            .collect();
        let mut conflicted = Vec::new();
        for (k, &(a, ra, ca)) in claims.iter().enumerate() {
            for &(b, rb, cb) in &claims[k + 1..] {
                if ra == rb {
                    continue;
                }
                let (ma, mb) = (&self.nodes[&a].members, &self.nodes[&b].members);
                if ma.iter().any(|m| mb.contains(m)) {
                    // A merge or split in progress: a shared member is on its way to one of
                    // them, and the holders of the older ring must notice.
                    conflicted.push(if ra < rb { a } else { b });
                } else if ca && cb && self.reported != Some((ra.min(rb), ra.max(rb))) {
                    self.reported = Some((ra.min(rb), ra.max(rb)));
                    out.push(Violation::new(
                        CheckerKind::SplitBrain,
                        at,
                        Some(b),
                        format!(
                            "split brain: n{a} quorate in ring {ra} members {ma:?} and n{b} quorate in ring \
                             {rb} members {mb:?}: disjoint, neither superseded"
                        ),
                    ));
                }
            }
        }
        let grace = u64::try_from(self.stale_grace.as_nanos()).unwrap_or(u64::MAX);
        for (id, ring_id, current) in claims {
            let h = self.nodes.get_mut(&id).expect("claims are of known nodes");
            let stale = !current || conflicted.contains(&id);
            if !(stale && h.operational) {
                h.stale_since = None;
                continue;
            }
            let since = *h.stale_since.get_or_insert(now);
            if now.saturating_sub(since) > grace && h.stale_reported != Some(ring_id) {
                h.stale_reported = Some(ring_id);
                out.push(Violation::new(
                    CheckerKind::SplitBrain,
                    at,
                    Some(id),
                    format!(
                        "stale quorum: n{id} still quorate in ring {ring_id} members {:?} {:?} of operational \
                         time after a member moved to a later ring or a later quorate ring (grace {:?})",
                        h.members,
                        Duration::from_nanos(now - since),
                        self.stale_grace
                    ),
                ));
            }
        }
        for h in self.nodes.values_mut().filter(|h| !h.quorate || h.paused) {
            h.stale_since = None;
        }
    }
}

impl Check for NoSplitBrain {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        match *obs {
            Observation::QuorumState { node, ring_id, members, quorate, operational, .. } => {
                let h = self.nodes.entry(node).or_insert_with(|| Held {
                    ring_id,
                    members: members.to_vec(),
                    quorate,
                    operational,
                    paused: false,
                    stale_since: None,
                    stale_reported: None,
                });
                if h.ring_id != ring_id || h.members != members {
                    h.ring_id = ring_id;
                    h.members = members.to_vec();
                }
                h.quorate = quorate;
                h.operational = operational;
                h.paused = false;
            }
            Observation::Pause { node } => {
                if let Some(h) = self.nodes.get_mut(&node) {
                    h.paused = true;
                    h.stale_since = None;
                }
            }
            Observation::Resume { node } => {
                if let Some(h) = self.nodes.get_mut(&node) {
                    h.paused = false;
                }
            }
            Observation::Crash { node, .. } => {
                self.nodes.remove(&node);
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

    fn state(node: u32, ring_id: RingId, members: &'static [NodeId], quorate: bool) -> Observation<'static> {
        Observation::QuorumState {
            node: NodeId(node),
            incarnation: 0,
            ring_id,
            members,
            quorate,
            operational: true,
        }
    }

    const ALL: &[NodeId] = &[NodeId(1), NodeId(2), NodeId(3)];
    const ONE: &[NodeId] = &[NodeId(1)];
    const PAIR: &[NodeId] = &[NodeId(2), NodeId(3)];

    #[test]
    fn two_current_quorate_rings_are_a_split_brain() {
        let (r1, r2, r3) = (ring(4, 1), ring(8, 1), ring(8, 2));
        let h = [
            (0, state(1, r1, ALL, true)),
            (0, state(2, r1, ALL, true)),
            (0, state(3, r1, ALL, true)),
            (10, state(2, r3, PAIR, true)),
            (10, state(3, r3, PAIR, true)),
            (20, state(1, r2, ONE, true)),
        ];
        let v = run_history(&mut NoSplitBrain::default(), &h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].checker, CheckerKind::SplitBrain);
        assert_eq!(v[0].node, Some(NodeId(2)));
    }

    #[test]
    fn the_cut_off_node_may_keep_its_old_quorum_until_its_token_timeout() {
        let (r1, r2, r3) = (ring(4, 1), ring(8, 1), ring(8, 2));
        let grace = Duration::from_secs(2);
        let h = [
            (0, state(1, r1, ALL, true)),
            (0, state(2, r1, ALL, true)),
            (0, state(3, r1, ALL, true)),
            (10, state(2, r3, PAIR, true)),
            (10, state(3, r3, PAIR, true)),
            (1_000_000_000, state(1, r1, ALL, true)),
            (1_500_000_000, state(1, r2, ONE, false)),
        ];
        assert!(run_history(&mut NoSplitBrain::new(grace), &h).is_empty());
    }

    #[test]
    fn a_stale_quorum_beyond_the_grace_is_reported_once() {
        let (r1, r3) = (ring(4, 1), ring(8, 2));
        let h = [
            (0, state(1, r1, ALL, true)),
            (0, state(2, r1, ALL, true)),
            (0, state(3, r1, ALL, true)),
            (10, state(2, r3, PAIR, true)),
            (10, state(3, r3, PAIR, true)),
            (3_000_000_000, state(1, r1, ALL, true)),
            (4_000_000_000, state(1, r1, ALL, true)),
        ];
        let v = run_history(&mut NoSplitBrain::new(Duration::from_secs(2)), &h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.starts_with("stale quorum: n1"), "{}", v[0].detail);
    }

    #[test]
    fn paused_time_does_not_count_and_the_window_restarts_at_resume() {
        let (r1, r3) = (ring(4, 1), ring(8, 2));
        let h = [
            (0, state(1, r1, ALL, true)),
            (0, state(2, r1, ALL, true)),
            (0, state(3, r1, ALL, true)),
            (5, Observation::Pause { node: NodeId(1) }),
            (10, state(2, r3, PAIR, true)),
            (10, state(3, r3, PAIR, true)),
            (9_000_000_000, Observation::Resume { node: NodeId(1) }),
            (10_000_000_000, state(1, r1, ALL, true)),
            (11_500_000_000, state(1, r1, ALL, true)),
        ];
        let v = run_history(&mut NoSplitBrain::new(Duration::from_secs(2)), &h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].at, Instant::from_nanos(11_500_000_000));
    }

    #[test]
    fn a_crashed_member_does_not_supersede_its_ring() {
        let (r1, r3) = (ring(4, 1), ring(8, 2));
        let h = [
            (0, state(1, r1, ALL, true)),
            (0, state(2, r1, ALL, true)),
            (0, state(3, r1, ALL, true)),
            (5, Observation::Crash { node: NodeId(1), incarnation: 0 }),
            (10, state(2, r3, PAIR, true)),
            (10, state(3, r3, PAIR, true)),
        ];
        assert!(run_history(&mut NoSplitBrain::default(), &h).is_empty());
    }
}
