//! Unit and small-ring tests of the engine, driven by a minimal in-memory network.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use super::*;

/// A lossless network with a fixed one-way latency, enough to exercise the states.
struct Net {
    now: Instant,
    nodes: BTreeMap<NodeId, Srp>,
    /// (arrival, to, bytes), kept sorted by arrival then insertion.
    flight: VecDeque<(Instant, NodeId, Bytes)>,
    delivered: BTreeMap<NodeId, Vec<Bytes>>,
    configs: BTreeMap<NodeId, Vec<Event>>,
    /// Links that drop everything: (from, to).
    cut: Vec<(NodeId, NodeId)>,
}

const LATENCY: Duration = Duration::from_micros(200);

fn config() -> TotemConfig {
    TotemConfig::with_token(Duration::from_millis(1000))
}

impl Net {
    fn new(ids: &[u32]) -> Net {
        let mut net = Net {
            now: Instant::ZERO,
            nodes: BTreeMap::new(),
            flight: VecDeque::new(),
            delivered: BTreeMap::new(),
            configs: BTreeMap::new(),
            cut: Vec::new(),
        };
        for &id in ids {
            let node =
                Srp::new(NodeId(id), config(), PersistedState::default(), u64::from(id), Instant::ZERO)
                    .unwrap();
            net.nodes.insert(NodeId(id), node);
            net.drain(NodeId(id));
        }
        net
    }

    fn drain(&mut self, id: NodeId) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let node = self.nodes.get_mut(&id).unwrap();
        while let Some(ev) = node.poll_event() {
            match ev {
                Event::Deliver(d) => self.delivered.entry(id).or_default().push(d.payload),
                Event::Persist(_) => {}
                other => self.configs.entry(id).or_default().push(other),
            }
        }
        while let Some(t) = node.poll_transmit() {
            let targets: Vec<NodeId> = match t.dest {
                Destination::All => ids.iter().copied().filter(|&n| n != id).collect(),
                Destination::Node(n) => vec![n],
            };
            for to in targets {
                if !self.cut.contains(&(id, to)) {
                    self.flight.push_back((self.now + LATENCY, to, t.payload.clone()));
                }
            }
        }
    }

    /// Runs the next event (packet or timer); false when nothing is scheduled.
    fn step(&mut self) -> bool {
        let next_packet = self.flight.front().map(|f| f.0);
        let next_timer = self.nodes.iter().filter_map(|(&id, n)| n.poll_timeout().map(|t| (t, id))).min();
        match (next_packet, next_timer) {
            (Some(p), Some((t, _))) if p <= t => self.deliver_packet(),
            (Some(_), None) => self.deliver_packet(),
            (_, Some((t, id))) => {
                self.now = self.now.max(t);
                let now = self.now;
                self.nodes.get_mut(&id).unwrap().handle_timeout(now);
                self.drain(id);
            }
            (None, None) => return false,
        }
        true
    }

    fn deliver_packet(&mut self) {
        let (at, to, bytes) = self.flight.pop_front().unwrap();
        self.now = self.now.max(at);
        let now = self.now;
        if let Some(node) = self.nodes.get_mut(&to) {
            node.handle_datagram(now, bytes);
            self.drain(to);
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end && self.step() {}
    }

    fn submit(&mut self, id: u32, payload: &[u8]) {
        let now = self.now;
        self.nodes
            .get_mut(&NodeId(id))
            .unwrap()
            .submit(now, Bytes::copy_from_slice(payload), Guarantee::Agreed)
            .unwrap();
        self.drain(NodeId(id));
    }

    fn one_ring_of(&self, ids: &[u32]) -> bool {
        let want: Vec<NodeId> = ids.iter().map(|&i| NodeId(i)).collect();
        let rings: Vec<RingId> = ids.iter().map(|i| self.nodes[&NodeId(*i)].ring_id()).collect();
        ids.iter().all(|i| {
            let n = &self.nodes[&NodeId(*i)];
            n.state() == SrpState::Operational && n.members() == want.as_slice()
        }) && rings.windows(2).all(|w| w[0] == w[1])
    }
}

#[test]
fn lone_node_forms_a_ring_of_itself_and_delivers_its_messages() {
    let mut net = Net::new(&[1]);
    net.run_for(Duration::from_millis(200));
    assert!(net.one_ring_of(&[1]));
    assert!(matches!(net.configs[&NodeId(1)][0], Event::Regular(_)));
    net.submit(1, b"hello");
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.delivered[&NodeId(1)], vec![Bytes::from_static(b"hello")]);
}

#[test]
fn three_nodes_form_one_ring_and_agree_on_order() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_for(Duration::from_secs(2));
    assert!(
        net.one_ring_of(&[1, 2, 3]),
        "states: {:?}",
        net.nodes.values().map(|n| (n.state(), n.members().to_vec())).collect::<Vec<_>>()
    );
    for i in 0..30u32 {
        net.submit(1 + i % 3, &i.to_be_bytes());
    }
    net.run_for(Duration::from_secs(1));
    let d1 = &net.delivered[&NodeId(1)];
    assert_eq!(d1.len(), 30);
    assert_eq!(d1, &net.delivered[&NodeId(2)]);
    assert_eq!(d1, &net.delivered[&NodeId(3)]);
}

#[test]
fn large_messages_are_fragmented_and_reassembled() {
    let mut net = Net::new(&[1, 2]);
    net.run_for(Duration::from_secs(2));
    assert!(net.one_ring_of(&[1, 2]));
    let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    net.submit(2, &big);
    net.submit(1, b"small");
    net.run_for(Duration::from_secs(1));
    for id in [1, 2] {
        let d = &net.delivered[&NodeId(id)];
        assert_eq!(d.len(), 2);
        assert!(d.iter().any(|m| m.as_ref() == big.as_slice()));
    }
    assert_eq!(net.delivered[&NodeId(1)], net.delivered[&NodeId(2)]);
}

#[test]
fn partition_forms_two_rings_and_heal_merges_them() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_for(Duration::from_secs(2));
    assert!(net.one_ring_of(&[1, 2, 3]));
    for a in [1, 2] {
        net.cut.push((NodeId(a), NodeId(3)));
        net.cut.push((NodeId(3), NodeId(a)));
    }
    net.submit(1, b"before");
    net.run_for(Duration::from_secs(6));
    assert!(net.one_ring_of(&[1, 2]));
    assert!(net.one_ring_of(&[3]));
    net.cut.clear();
    net.run_for(Duration::from_secs(3));
    assert!(net.one_ring_of(&[1, 2, 3]));
    net.submit(3, b"after");
    net.run_for(Duration::from_secs(1));
    for id in [1, 2, 3] {
        assert!(net.delivered[&NodeId(id)].iter().any(|m| m.as_ref() == b"after"));
    }
}

#[test]
fn submit_rejects_oversized_messages() {
    let mut node = Srp::new(NodeId(1), config(), PersistedState::default(), 1, Instant::ZERO).unwrap();
    let err =
        node.submit(Instant::ZERO, Bytes::from(vec![0u8; (1 << 20) + 1]), Guarantee::Agreed).unwrap_err();
    assert_eq!(err, SubmitError::TooLarge { size: (1 << 20) + 1, max: 1 << 20 });
}

#[test]
fn restart_persists_a_higher_ring_seq() {
    let mut node = Srp::new(NodeId(1), config(), PersistedState { ring_seq: 40 }, 1, Instant::ZERO).unwrap();
    assert_eq!(node.poll_event(), Some(Event::Persist(PersistedState { ring_seq: 44 })));
}

#[test]
fn set_timing_replaces_timeouts_but_keeps_packet_sizes_and_refuses_bad_values() {
    let mut srp =
        Srp::new(NodeId(1), TotemConfig::default(), PersistedState::default(), 1, Instant::ZERO).unwrap();
    let mut new = TotemConfig::with_token(std::time::Duration::from_millis(5000));
    new.netmtu = 9000;
    new.window_size = 800;
    srp.set_timing(new).unwrap();
    assert_eq!(srp.config().token, std::time::Duration::from_millis(5000));
    assert_eq!(srp.config().window_size, 800);
    assert_eq!(srp.config().netmtu, TotemConfig::default().netmtu, "packet size kept");
    let mut bad = TotemConfig::default();
    bad.max_messages = bad.window_size + 1;
    assert!(srp.set_timing(bad).is_err());
    assert_eq!(srp.config().window_size, 800, "nothing changed");
}
