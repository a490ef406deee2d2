//! Configuration agreement: nodes that install the same ring agree on its members, every
//! configuration contains the node installing it, and a node's ring ids strictly increase,
//! across restarts too (the persisted `ring_seq` exists for exactly that).
//!
//! Also the event grammar of `totem::Event`: after the first regular configuration of an
//! incarnation, each new one is preceded by exactly one transitional configuration of the ring
//! being left, whose members are the node itself plus others of both the old and the new ring,
//! and on which all nodes making the same move agree (EVS, Moser et al. 1994, property 2).

use std::collections::BTreeMap;

use totem::{Configuration, Instant, NodeId, RingId};

use super::{Check, CheckerKind, Observation, Violation};

#[derive(Debug)]
struct NodeCfg {
    incarnation: u32,
    regular: Configuration,
    transitional: Option<Configuration>,
}

/// The configuration-agreement checker.
#[derive(Debug, Default)]
pub struct ConfigAgreement {
    rings: BTreeMap<RingId, (NodeId, Vec<NodeId>)>,
    last_ring: BTreeMap<NodeId, RingId>,
    nodes: BTreeMap<NodeId, NodeCfg>,
    transitions: BTreeMap<(RingId, RingId), (NodeId, Vec<NodeId>)>,
}

impl ConfigAgreement {
    /// Regular configurations installed, counting each ring once.
    pub fn rings_installed(&self) -> usize {
        self.rings.len()
    }

    fn regular(
        &mut self,
        node: NodeId,
        incarnation: u32,
        conf: &Configuration,
        fail: &mut dyn FnMut(String),
    ) {
        let ring = conf.ring_id;
        shape(node, conf, "regular", fail);
        if conf.members.first().is_some_and(|&rep| rep != ring.representative) {
            fail(format!(
                "ring {ring} has members {:?} but its representative is not the lowest",
                ids(&conf.members)
            ));
        }
        match self.rings.get(&ring) {
            Some((first, m)) if *m != conf.members => fail(format!(
                "ring {ring} installed with members {:?}, but n{first} installed it with {:?}",
                ids(&conf.members),
                ids(m)
            )),
            Some(_) => {}
            None => {
                self.rings.insert(ring, (node, conf.members.clone()));
            }
        }
        if let Some(&last) = self.last_ring.get(&node) {
            if ring <= last {
                fail(format!("installed ring {ring} after ring {last}: ring ids must strictly increase"));
            }
        }
        self.last_ring.insert(node, ring);
        if let Some(prev) = self.nodes.remove(&node).filter(|p| p.incarnation == incarnation) {
            match prev.transitional {
                None => fail(format!(
                    "moved from ring {} to ring {ring} without a transitional configuration",
                    prev.regular.ring_id
                )),
                Some(t) => {
                    if let Some(x) = t.members.iter().find(|m| conf.members.binary_search(m).is_err()) {
                        fail(format!(
                            "transitional member n{x} of ring {} is not in the new ring {ring}",
                            t.ring_id
                        ));
                    }
                    match self.transitions.get(&(t.ring_id, ring)) {
                        Some((first, m)) if *m != t.members => fail(format!(
                            "moving from ring {} to ring {ring} with transitional members {:?}, but n{first} had {:?}",
                            t.ring_id,
                            ids(&t.members),
                            ids(m)
                        )),
                        Some(_) => {}
                        None => {
                            self.transitions.insert((t.ring_id, ring), (node, t.members));
                        }
                    }
                }
            }
        }
        self.nodes.insert(node, NodeCfg { incarnation, regular: conf.clone(), transitional: None });
    }

    fn transitional(
        &mut self,
        node: NodeId,
        incarnation: u32,
        conf: &Configuration,
        fail: &mut dyn FnMut(String),
    ) {
        shape(node, conf, "transitional", fail);
        let Some(cur) = self.nodes.get_mut(&node).filter(|c| c.incarnation == incarnation) else {
            fail(format!("transitional configuration of ring {} before any regular one", conf.ring_id));
            return;
        };
        if cur.transitional.is_some() {
            fail(format!(
                "second transitional configuration of ring {} without a regular one between",
                conf.ring_id
            ));
        }
        if conf.ring_id != cur.regular.ring_id {
            fail(format!(
                "transitional configuration names ring {} but the node is in ring {}",
                conf.ring_id, cur.regular.ring_id
            ));
        }
        if let Some(x) = conf.members.iter().find(|m| cur.regular.members.binary_search(m).is_err()) {
            fail(format!("transitional member n{x} was not in the old ring {}", cur.regular.ring_id));
        }
        cur.transitional = Some(conf.clone());
    }
}

/// Members sorted, unique, and including the node.
fn shape(node: NodeId, conf: &Configuration, what: &str, fail: &mut dyn FnMut(String)) {
    if conf.members.windows(2).any(|w| w[0] >= w[1]) {
        fail(format!(
            "{what} configuration of ring {} has unsorted or repeated members {:?}",
            conf.ring_id,
            ids(&conf.members)
        ));
    }
    if !conf.members.contains(&node) {
        fail(format!(
            "{what} configuration of ring {} does not contain the node: {:?}",
            conf.ring_id,
            ids(&conf.members)
        ));
    }
}

fn ids(members: &[NodeId]) -> Vec<u32> {
    members.iter().map(|m| m.0).collect()
}

impl Check for ConfigAgreement {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        match *obs {
            Observation::Regular { node, incarnation, config } => {
                self.regular(node, incarnation, config, &mut |d| {
                    out.push(Violation::new(CheckerKind::Config, at, Some(node), d))
                });
            }
            Observation::Transitional { node, incarnation, config } => {
                self.transitional(node, incarnation, config, &mut |d| {
                    out.push(Violation::new(CheckerKind::Config, at, Some(node), d))
                });
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
    use super::super::testkit::*;
    use super::super::{run_history, Observation as O};
    use super::*;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    fn check(h: &[(u64, O<'_>)]) -> Vec<Violation> {
        run_history(&mut ConfigAgreement::default(), h)
    }

    #[test]
    fn a_clean_history_passes() {
        let (r1, r2) = (ring(1, 1), ring(2, 1));
        let (c1, t1, c2) = (conf(r1, &[1, 2]), conf(r1, &[1, 2]), conf(r2, &[1, 2, 3]));
        let h = [
            (0, O::Regular { node: A, incarnation: 0, config: &c1 }),
            (0, O::Regular { node: B, incarnation: 0, config: &c1 }),
            (1, O::Transitional { node: A, incarnation: 0, config: &t1 }),
            (1, O::Transitional { node: B, incarnation: 0, config: &t1 }),
            (2, O::Regular { node: A, incarnation: 0, config: &c2 }),
            (2, O::Regular { node: B, incarnation: 0, config: &c2 }),
        ];
        assert!(check(&h).is_empty(), "{:?}", check(&h));
    }

    #[test]
    fn disagreeing_members_fail() {
        let r1 = ring(1, 1);
        let (c1, c1b) = (conf(r1, &[1, 2]), conf(r1, &[1, 2, 3]));
        let h = [
            (0, O::Regular { node: A, incarnation: 0, config: &c1 }),
            (0, O::Regular { node: B, incarnation: 0, config: &c1b }),
        ];
        assert_eq!(check(&h).len(), 1);
    }

    #[test]
    fn a_config_without_the_node_or_a_wrong_representative_fails() {
        let c = conf(ring(1, 2), &[2, 3]);
        let v = check(&[(0, O::Regular { node: A, incarnation: 0, config: &c })]);
        assert_eq!(v.len(), 1, "{v:?}");
        let c = conf(ring(1, 3), &[1, 3]);
        let v = check(&[(0, O::Regular { node: A, incarnation: 0, config: &c })]);
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn ring_ids_must_increase_across_restarts() {
        let (c2, c1) = (conf(ring(2, 1), &[1]), conf(ring(1, 1), &[1]));
        let h = [
            (0, O::Regular { node: A, incarnation: 0, config: &c2 }),
            (1, O::Crash { node: A, incarnation: 0 }),
            (2, O::Restart { node: A, incarnation: 1 }),
            (3, O::Regular { node: A, incarnation: 1, config: &c1 }),
        ];
        let v = check(&h);
        assert_eq!(v.len(), 1);
        assert!(v[0].detail.contains("strictly increase"));
    }

    #[test]
    fn missing_or_disagreeing_transitional_fails() {
        let (r1, r2) = (ring(1, 1), ring(2, 1));
        let (c1, c2) = (conf(r1, &[1, 2]), conf(r2, &[1, 2]));
        let (ta, tb) = (conf(r1, &[1, 2]), conf(r1, &[2]));
        let h = [
            (0, O::Regular { node: A, incarnation: 0, config: &c1 }),
            (1, O::Regular { node: A, incarnation: 0, config: &c2 }),
        ];
        assert_eq!(check(&h).len(), 1);
        let h = [
            (0, O::Regular { node: A, incarnation: 0, config: &c1 }),
            (0, O::Regular { node: B, incarnation: 0, config: &c1 }),
            (1, O::Transitional { node: A, incarnation: 0, config: &ta }),
            (1, O::Transitional { node: B, incarnation: 0, config: &tb }),
            (2, O::Regular { node: A, incarnation: 0, config: &c2 }),
            (2, O::Regular { node: B, incarnation: 0, config: &c2 }),
        ];
        assert_eq!(check(&h).len(), 1);
    }
}
