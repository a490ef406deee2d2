//! Coordinated fencers of three nodes under random partitions, agent results, manual fences,
//! acks and delivery orders: within a ring no two members run agents for one victim at once
//! (a finished victim may be fenced again, by whoever claims it first), nobody fences itself,
//! and once the cluster is whole again and agents succeed, every victim is done everywhere.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use totem::{Instant, NodeId, RingId};

use super::tests::{config, t};
use super::*;

#[derive(Clone, Debug)]
enum Input {
    /// Split into the groups of this mask (bit i set: node i+1 in the first group).
    Partition { mask: u8 },
    /// Merge everyone into one ring.
    Heal,
    /// One running agent reports.
    Result { pick: usize, success: bool },
    /// Time passes.
    Timeout { advance: u64 },
    /// An operator on `on` fences `node`.
    Fence { on: u32, node: u32 },
    /// An operator on `on` acknowledges `node`.
    Ack { on: u32, node: u32 },
    /// Deliver queued messages, senders in this rotation.
    Deliver { rotate: usize },
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (1u8..7).prop_map(|mask| Input::Partition { mask }),
        Just(Input::Heal),
        (0usize..6, any::<bool>()).prop_map(|(pick, success)| Input::Result { pick, success }),
        (0u64..12).prop_map(|advance| Input::Timeout { advance }),
        (1u32..4, 1u32..4).prop_map(|(on, node)| Input::Fence { on, node }),
        (1u32..4, 1u32..4).prop_map(|(on, node)| Input::Ack { on, node }),
        (0usize..3).prop_map(|rotate| Input::Deliver { rotate }),
    ]
}

struct Cluster {
    fencers: BTreeMap<NodeId, Fencer>,
    /// Each node's group (members of its ring) and ring.
    rings: BTreeMap<NodeId, (Vec<NodeId>, RingId)>,
    next_seq: u64,
    now: Instant,
    /// Agent runs not reported yet: (member, run, the member's ring when it started).
    running: Vec<(NodeId, RunAgent, RingId)>,
    /// Runs that started while another member ran one for the same victim in the same ring.
    overlaps: Vec<String>,
}

impl Cluster {
    fn new() -> Cluster {
        let fencers =
            (1..=3).map(|n| (NodeId(n), Fencer::coordinated(NodeId(n), config()).unwrap())).collect();
        let mut c = Cluster {
            fencers,
            rings: BTreeMap::new(),
            next_seq: 4,
            now: t(0),
            running: Vec::new(),
            overlaps: Vec::new(),
        };
        c.install(&[vec![NodeId(1), NodeId(2), NodeId(3)]]);
        for f in c.fencers.values_mut() {
            f.start(t(0));
        }
        c.advance(6);
        c.deliver(0);
        c
    }

    fn install(&mut self, groups: &[Vec<NodeId>]) {
        for group in groups.iter().filter(|g| !g.is_empty()) {
            let ring = RingId { seq: self.next_seq, representative: group[0] };
            self.next_seq += 4;
            let quorate = group.len() >= 2;
            for node in group {
                self.rings.insert(*node, (group.clone(), ring));
                let f = self.fencers.get_mut(node).unwrap();
                f.new_ring(ring);
                f.handle_membership(self.now, group, quorate, &[]);
            }
        }
        self.collect();
    }

    fn advance(&mut self, secs: u64) {
        self.now = self.now + Duration::from_secs(secs);
        for f in self.fencers.values_mut() {
            f.handle_timeout(self.now);
        }
        self.collect();
    }

    /// Agent runs started since the last call, recorded with the starter's ring; runs whose
    /// victim was completed meanwhile are abandoned (their results are ignored) and forgotten.
    fn collect(&mut self) {
        let mut started = Vec::new();
        for (node, f) in &mut self.fencers {
            while let Some(run) = f.poll_action() {
                started.push((*node, run, self.rings[node].1));
            }
            while f.poll_event().is_some() {}
        }
        let fencers = &self.fencers;
        self.running.retain(|(member, run, _)| fencers[member].running(run.op).is_some());
        for (node, run, ring) in started {
            if run.node == node {
                self.overlaps.push(format!("{node} fenced itself"));
            }
            for (other, r, at) in &self.running {
                if *other != node && r.node == run.node && *at == ring {
                    self.overlaps.push(format!("ring {ring}: {other} and {node} both fence {}", run.node));
                }
            }
            self.running.push((node, run, ring));
        }
    }

    /// Delivers every queued message within each group, senders rotated by `rotate`, until quiet.
    fn deliver(&mut self, rotate: usize) {
        loop {
            let mut sent = Vec::new();
            let mut order: Vec<NodeId> = self.fencers.keys().copied().collect();
            order.rotate_left(rotate % 3);
            for node in order {
                let f = self.fencers.get_mut(&node).unwrap();
                while let Some(m) = f.poll_message() {
                    sent.push((node, m));
                }
            }
            if sent.is_empty() {
                return;
            }
            for (sender, m) in sent {
                let group = self.rings[&sender].0.clone();
                for member in group {
                    self.fencers.get_mut(&member).unwrap().handle_message(self.now, sender, &m).unwrap();
                }
            }
            self.collect();
        }
    }

    fn apply(&mut self, input: Input) {
        match input {
            Input::Partition { mask } => {
                let (a, b): (Vec<NodeId>, Vec<NodeId>) =
                    (1..=3).map(NodeId).partition(|n| mask & (1 << (n.0 - 1)) != 0);
                self.install(&[a, b]);
            }
            Input::Heal => self.install(&[vec![NodeId(1), NodeId(2), NodeId(3)]]),
            Input::Result { pick, success } => {
                if !self.running.is_empty() {
                    let (member, run, _) = self.running.remove(pick % self.running.len());
                    self.now = self.now + Duration::from_secs(1);
                    self.fencers.get_mut(&member).unwrap().handle_agent_result(
                        self.now,
                        run.op,
                        success,
                        String::new(),
                    );
                    self.collect();
                }
            }
            Input::Timeout { advance } => self.advance(advance),
            Input::Fence { on, node } => {
                let _ = self.fencers.get_mut(&NodeId(on)).unwrap().fence(self.now, NodeId(node));
            }
            Input::Ack { on, node } => {
                let _ = self.fencers.get_mut(&NodeId(on)).unwrap().ack(self.now, NodeId(node));
                self.collect();
            }
            Input::Deliver { rotate } => self.deliver(rotate),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Safety of the claims, then liveness once whole: one ring of all three, every agent
    /// succeeding, and time for retries.
    #[test]
    fn one_runner_per_ring_and_victims_done_once_whole(inputs in proptest::collection::vec(input(), 1..60)) {
        let mut c = Cluster::new();
        for input in inputs {
            c.apply(input);
            prop_assert!(c.overlaps.is_empty(), "{:?}", c.overlaps);
        }
        c.apply(Input::Heal);
        for _ in 0..40 {
            c.deliver(0);
            while let Some((member, run, _)) = c.running.pop() {
                c.fencers.get_mut(&member).unwrap().handle_agent_result(c.now, run.op, true, String::new());
                c.collect();
            }
            c.deliver(0);
            c.advance(61);
        }
        for (node, f) in &c.fencers {
            prop_assert!(f.pending().is_empty(), "node {} still has {:?} pending", node, f.pending());
            prop_assert!(!f.is_blocking(), "node {} still holds service", node);
        }
    }
}
