//! A cluster of votequorum services wired by an ideal Totem: each ring delivers every member's
//! submissions to every member in one order. Nodes in no ring are frozen.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use quorum::{QuorumConfig, QuorumEvent, RequestError, Votequorum};
use totem::{Instant, NodeId, RingId};

pub struct Cluster {
    pub nodes: BTreeMap<NodeId, Votequorum>,
    pub now: Instant,
    /// Each node's current ring members.
    pub ring_of: BTreeMap<NodeId, Vec<NodeId>>,
    pub events: BTreeMap<NodeId, Vec<QuorumEvent>>,
    ring_seq: u64,
    config: QuorumConfig,
}

impl Cluster {
    /// One service per id, all with `config`, none in a ring yet.
    pub fn new(config: &QuorumConfig, ids: &[u32]) -> Self {
        let nodes =
            ids.iter().map(|&id| (NodeId(id), Votequorum::new(NodeId(id), config).unwrap())).collect();
        Cluster {
            nodes,
            now: Instant::ZERO,
            ring_of: BTreeMap::new(),
            events: BTreeMap::new(),
            ring_seq: 0,
            config: config.clone(),
        }
    }

    /// Node `id` restarts: a new service with nothing of the old one's state, in no ring.
    pub fn restart(&mut self, id: u32) {
        let id = NodeId(id);
        self.nodes.insert(id, Votequorum::new(id, &self.config).unwrap());
        self.ring_of.remove(&id);
    }

    /// Installs each group as a ring and exchanges node infos in it.
    pub fn rings(&mut self, groups: &[Vec<u32>]) {
        for group in groups {
            let members: Vec<NodeId> = group.iter().map(|&id| NodeId(id)).collect();
            self.ring_seq += 1;
            let ring_id = RingId { seq: self.ring_seq, representative: *members.iter().min().unwrap() };
            for m in &members {
                self.nodes.get_mut(m).unwrap().handle_ring(self.now, ring_id, &members);
                self.ring_of.insert(*m, members.clone());
            }
            self.deliver(&members);
        }
    }

    /// Installs each group as a ring but delivers only the first `cut` node infos in it before
    /// the next ring change: the rest are lost with the ring.
    pub fn rings_cut(&mut self, groups: &[Vec<u32>], cut: usize) {
        for group in groups {
            let members: Vec<NodeId> = group.iter().map(|&id| NodeId(id)).collect();
            self.ring_seq += 1;
            let ring_id = RingId { seq: self.ring_seq, representative: *members.iter().min().unwrap() };
            let mut sent = Vec::new();
            for m in &members {
                let vq = self.nodes.get_mut(m).unwrap();
                vq.handle_ring(self.now, ring_id, &members);
                self.ring_of.insert(*m, members.clone());
                while let Some(bytes) = vq.poll_submission() {
                    sent.push((*m, bytes));
                }
            }
            for (from, bytes) in sent.iter().take(cut) {
                for m in &members {
                    self.nodes.get_mut(m).unwrap().handle_message(*from, bytes);
                }
            }
        }
        self.drain_events();
    }

    /// Delivers every member's submissions to every member, in node id order, until none is left.
    pub fn deliver(&mut self, members: &[NodeId]) {
        loop {
            let mut sent = Vec::new();
            for m in members {
                while let Some(bytes) = self.nodes.get_mut(m).unwrap().poll_submission() {
                    sent.push((*m, bytes));
                }
            }
            if sent.is_empty() {
                break;
            }
            for (from, bytes) in &sent {
                for m in members {
                    self.nodes.get_mut(m).unwrap().handle_message(*from, bytes);
                }
            }
        }
        self.drain_events();
    }

    /// Advances time, fires every due timeout and delivers what that made nodes send in
    /// their current rings.
    pub fn wait(&mut self, ms: u64) {
        self.now = self.now + Duration::from_millis(ms);
        for vq in self.nodes.values_mut() {
            if vq.poll_timeout().is_some_and(|t| t <= self.now) {
                vq.handle_timeout(self.now);
            }
        }
        let rings: std::collections::BTreeSet<Vec<NodeId>> = self.ring_of.values().cloned().collect();
        for ring in rings {
            self.deliver(&ring);
        }
        self.drain_events();
    }

    pub fn set_expected(&mut self, at: u32, expected: u32) -> Result<(), RequestError> {
        self.nodes.get_mut(&NodeId(at)).unwrap().set_expected(expected)?;
        let ring = self.ring_of[&NodeId(at)].clone();
        self.deliver(&ring);
        Ok(())
    }

    pub fn set_votes(&mut self, at: u32, node: u32, votes: u32) -> Result<(), RequestError> {
        self.nodes.get_mut(&NodeId(at)).unwrap().set_votes(NodeId(node), votes)?;
        let ring = self.ring_of[&NodeId(at)].clone();
        self.deliver(&ring);
        Ok(())
    }

    pub fn cancel_wait_for_all(&mut self, at: u32) {
        self.nodes.get_mut(&NodeId(at)).unwrap().cancel_wait_for_all().unwrap();
        let ring = self.ring_of[&NodeId(at)].clone();
        self.deliver(&ring);
    }

    pub fn node(&self, id: u32) -> &Votequorum {
        &self.nodes[&NodeId(id)]
    }

    /// `yes/2/3`: quorate, quorum, expected votes of node `id`.
    pub fn summary(&self, id: u32) -> String {
        let s = self.node(id).status();
        format!("{}/{}/{}", if s.quorate { "yes" } else { "no" }, s.quorum, s.expected_votes)
    }

    fn drain_events(&mut self) {
        for (id, vq) in &mut self.nodes {
            while let Some(e) = vq.poll_event() {
                self.events.entry(*id).or_default().push(e);
            }
        }
    }
}

/// Parses `nodes=1,2,3 votes=3:2 expected_votes=5 two_node wait_for_all=0 lms lms_window=5000
/// atb atb_node=3,1` into the node ids and the config.
pub fn parse_config(text: &str) -> (Vec<u32>, QuorumConfig) {
    let mut ids = Vec::new();
    let mut c = QuorumConfig::default();
    let list = |v: &str| v.split(',').map(|n| n.parse::<u32>().unwrap()).collect::<Vec<_>>();
    for word in text.split_whitespace() {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        match key {
            "nodes" => {
                ids = list(value);
                c.nodelist = ids.iter().map(|&id| (NodeId(id), 1)).collect();
            }
            "votes" => {
                for pair in value.split(',') {
                    let (id, v) = pair.split_once(':').unwrap();
                    c.nodelist.insert(NodeId(id.parse().unwrap()), v.parse().unwrap());
                }
            }
            "expected_votes" => c.expected_votes = Some(value.parse().unwrap()),
            "two_node" => c.two_node = true,
            "wait_for_all" => c.wait_for_all = Some(value == "1"),
            "lms" => c.last_man_standing = true,
            "lms_window" => c.last_man_standing_window = Duration::from_millis(value.parse().unwrap()),
            "atb" => c.auto_tie_breaker = true,
            "atb_node" => c.auto_tie_breaker_node = Some(value.replace(',', " ").parse().unwrap()),
            _ => panic!("unknown config word {word:?}"),
        }
    }
    (ids, c)
}
