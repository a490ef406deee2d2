//! Safe delivery: a message delivered as safe in a regular configuration is held by every
//! member of that configuration.
//!
//! Totem delivers a safe message once the token's aru shows that every member has it (paper,
//! section 3.2). From outside, "has it" is the node's `received_through()`: after every step
//! of every node the checker records the highest seq it held in each ring. When p delivers a
//! safe message of seq s in its regular configuration R, every other member q must already have
//! been seen holding R through s. A crashed member keeps its record. Deliveries in a
//! transitional configuration are exempt: there the guarantee is relative to the transitional
//! members, which recovery itself establishes.

use std::collections::BTreeMap;

use totem::{Guarantee, Instant, NodeId, RingId, Seq};

use super::{Check, CheckerKind, Observation, Violation};

#[derive(Debug)]
struct View {
    incarnation: u32,
    ring: RingId,
    members: Vec<NodeId>,
    transitional: bool,
}

/// The safe-delivery checker.
#[derive(Debug, Default)]
pub struct Safe {
    held: BTreeMap<(NodeId, RingId), Seq>,
    views: BTreeMap<NodeId, View>,
}

impl Safe {
    /// The highest seq `node` was seen holding in `ring`.
    pub fn held(&self, node: NodeId, ring: RingId) -> Option<Seq> {
        self.held.get(&(node, ring)).copied()
    }
}

impl Check for Safe {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        match *obs {
            Observation::ReceivedThrough { node, ring_id, seq, .. } => {
                let h = self.held.entry((node, ring_id)).or_default();
                *h = (*h).max(seq);
            }
            Observation::Regular { node, incarnation, config } => {
                let view = View {
                    incarnation,
                    ring: config.ring_id,
                    members: config.members.clone(),
                    transitional: false,
                };
                self.views.insert(node, view);
            }
            Observation::Transitional { node, incarnation, .. } => {
                if let Some(v) = self.views.get_mut(&node).filter(|v| v.incarnation == incarnation) {
                    v.transitional = true;
                }
            }
            Observation::Deliver { node, incarnation, delivery: d, id } if d.guarantee == Guarantee::Safe => {
                let Some(v) = self.views.get(&node) else { return };
                if v.incarnation != incarnation || v.transitional || v.ring != d.ring_id {
                    return;
                }
                let missing: Vec<String> = v
                    .members
                    .iter()
                    .filter(|&&q| q != node)
                    .filter_map(|&q| match self.held(q, v.ring) {
                        Some(h) if h >= d.seq => None,
                        Some(h) => Some(format!("n{q} through {h}")),
                        None => Some(format!("n{q} never seen operational")),
                    })
                    .collect();
                if !missing.is_empty() {
                    let what = id.map_or_else(|| "a message".to_string(), |m| m.to_string());
                    out.push(Violation::new(
                        CheckerKind::Safe,
                        at,
                        Some(node),
                        format!(
                            "{what} delivered safe at ring {} seq {} while members lacked it: {}",
                            v.ring,
                            d.seq,
                            missing.join(", ")
                        ),
                    ));
                }
            }
            Observation::Crash { node, .. } | Observation::Restart { node, .. } => {
                self.views.remove(&node);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use totem::Guarantee::Safe as S;

    use super::super::testkit::*;
    use super::super::{run_history, Observation as O};
    use super::*;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    #[test]
    fn safe_delivery_after_every_member_holds_it_passes() {
        let r = ring(1, 1);
        let c = conf(r, &[1, 2]);
        let d = delivery(r, 3, id(1, 1), S);
        let h = [
            (0, O::Regular { node: A, incarnation: 0, config: &c }),
            (1, O::ReceivedThrough { node: B, incarnation: 0, ring_id: r, seq: Seq(3) }),
            (2, O::Deliver { node: A, incarnation: 0, delivery: &d, id: None }),
        ];
        assert!(run_history(&mut Safe::default(), &h).is_empty());
    }

    #[test]
    fn safe_delivery_before_a_member_holds_it_fails() {
        let r = ring(1, 1);
        let c = conf(r, &[1, 2, 3]);
        let d = delivery(r, 3, id(1, 1), S);
        let h = [
            (0, O::Regular { node: A, incarnation: 0, config: &c }),
            (1, O::ReceivedThrough { node: B, incarnation: 0, ring_id: r, seq: Seq(2) }),
            (2, O::Deliver { node: A, incarnation: 0, delivery: &d, id: None }),
        ];
        let v = run_history(&mut Safe::default(), &h);
        assert_eq!(v.len(), 1);
        assert!(v[0].detail.contains("n2 through 2"), "{}", v[0]);
        assert!(v[0].detail.contains("n3 never seen"), "{}", v[0]);
    }

    #[test]
    fn transitional_deliveries_are_exempt() {
        let r = ring(1, 1);
        let c = conf(r, &[1, 2]);
        let d = delivery(r, 3, id(1, 1), S);
        let h = [
            (0, O::Regular { node: A, incarnation: 0, config: &c }),
            (1, O::Transitional { node: A, incarnation: 0, config: &conf(r, &[1]) }),
            (2, O::Deliver { node: A, incarnation: 0, delivery: &d, id: None }),
        ];
        assert!(run_history(&mut Safe::default(), &h).is_empty());
    }
}
