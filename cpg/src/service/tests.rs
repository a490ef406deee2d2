//! The service over an in-memory total order: each test names the rule it checks.

use bytes::Bytes;
use totem::{Delivery, NodeId, RingId, Seq};

use super::*;

fn g(name: &str) -> GroupName {
    GroupName::try_from(name).unwrap()
}

fn m(node_id: u32, pid: u32) -> MemberId {
    MemberId { node_id, pid }
}

fn ch(node_id: u32, pid: u32, reason: Reason) -> Change {
    Change { member: m(node_id, pid), reason }
}

/// Nodes 1..=n, each with a service; `order` plays the engine: everything submitted by the
/// members of a ring is delivered to all of them in one order.
struct Cluster {
    nodes: Vec<CpgService>,
    ring_seq: u64,
    /// Submitted, not yet delivered: (ring, sender, payload, guarantee).
    in_order: Vec<(RingId, NodeId, Bytes, totem::Guarantee)>,
    events: Vec<Vec<(ClientId, CpgEvent)>>,
}

impl Cluster {
    fn new(n: u32) -> Cluster {
        Cluster {
            nodes: (1..=n).map(|i| CpgService::new(NodeId(i), CpgConfig::default())).collect(),
            ring_seq: 0,
            in_order: Vec::new(),
            events: vec![Vec::new(); n as usize],
        }
    }

    fn node(&mut self, id: u32) -> &mut CpgService {
        &mut self.nodes[id as usize - 1]
    }

    /// Installs a ring of `members` at each of them, with `transitional` first when given.
    fn install(&mut self, members: &[u32], transitional: Option<&[u32]>) -> RingId {
        self.ring_seq += 4;
        let ring = RingId { seq: self.ring_seq, representative: NodeId(members[0]) };
        let ids: Vec<NodeId> = members.iter().map(|&i| NodeId(i)).collect();
        for &i in members {
            if let Some(t) = transitional {
                let t: Vec<NodeId> = t.iter().map(|&i| NodeId(i)).collect();
                self.node(i).handle_transitional(&t);
            }
            self.node(i).handle_regular(ring, &ids);
        }
        self.drain_events();
        ring
    }

    /// Moves submissions of `members` into the order (in ring `ring`), then delivers the
    /// whole order to every member; repeats until nothing is left.
    fn run(&mut self, ring: RingId, members: &[u32]) {
        loop {
            for &i in members {
                while let Some((bytes, guarantee)) = self.node(i).next_submission() {
                    self.in_order.push((ring, NodeId(i), bytes, guarantee));
                    self.node(i).submitted();
                }
            }
            if self.in_order.is_empty() {
                break;
            }
            let order = std::mem::take(&mut self.in_order);
            for (ring, sender, payload, guarantee) in order {
                for &i in members {
                    let d = Delivery {
                        ring_id: ring,
                        seq: Seq(0),
                        sender,
                        guarantee,
                        payload: payload.slice(1..),
                    };
                    self.node(i).handle_delivery(d);
                }
            }
            self.drain_events();
        }
    }

    fn drain_events(&mut self) {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            while let Some(e) = node.poll_event() {
                self.events[i].push(e);
            }
        }
    }

    /// Events client `c` of node `id` received, taken.
    fn take(&mut self, id: u32, c: u64) -> Vec<CpgEvent> {
        let all = std::mem::take(&mut self.events[id as usize - 1]);
        let (mine, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|(client, _)| client.0 == c);
        self.events[id as usize - 1] = rest;
        mine.into_iter().map(|(_, e)| e).collect()
    }

    fn confchgs(&mut self, id: u32, c: u64) -> Vec<Confchg> {
        self.take(id, c)
            .into_iter()
            .filter_map(|e| match e {
                CpgEvent::Confchg(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    fn data(&mut self, id: u32, c: u64) -> Vec<(MemberId, Vec<u8>)> {
        self.take(id, c)
            .into_iter()
            .filter_map(|e| match e {
                CpgEvent::Deliver(msg) => Some((msg.sender, msg.data.to_vec())),
                _ => None,
            })
            .collect()
    }
}

fn confchg(group: &str, members: &[MemberId], left: &[Change], joined: &[Change]) -> Confchg {
    Confchg { group: g(group), members: members.to_vec(), left: left.to_vec(), joined: joined.to_vec() }
}

#[test]
fn a_join_is_applied_in_order_and_reported_to_every_member_of_the_group() {
    let mut c = Cluster::new(2);
    let ring = c.install(&[1, 2], None);
    c.run(ring, &[1, 2]);
    c.node(1).connect(ClientId(10), 100);
    c.node(2).connect(ClientId(20), 200);
    c.node(1).join(ClientId(10), &g("a")).unwrap();
    c.run(ring, &[1, 2]);
    c.node(2).join(ClientId(20), &g("a")).unwrap();
    c.run(ring, &[1, 2]);
    assert_eq!(
        c.confchgs(1, 10),
        vec![
            confchg("a", &[m(1, 100)], &[], &[ch(1, 100, Reason::Join)]),
            confchg("a", &[m(1, 100), m(2, 200)], &[], &[ch(2, 200, Reason::Join)]),
        ]
    );
    assert_eq!(
        c.confchgs(2, 20),
        vec![confchg("a", &[m(1, 100), m(2, 200)], &[], &[ch(2, 200, Reason::Join)])]
    );
    assert_eq!(c.node(1).membership(&g("a")), c.node(2).membership(&g("a")));
}

#[test]
fn messages_reach_exactly_the_members_at_their_position_in_the_order() {
    let mut c = Cluster::new(2);
    let ring = c.install(&[1, 2], None);
    c.run(ring, &[1, 2]);
    c.node(1).connect(ClientId(10), 100);
    c.node(2).connect(ClientId(20), 200);
    c.node(1).join(ClientId(10), &g("a")).unwrap();
    c.node(1).mcast(ClientId(10), &g("a"), Guarantee::Agreed, Bytes::from_static(b"before")).unwrap();
    c.run(ring, &[1, 2]);
    c.node(2).join(ClientId(20), &g("a")).unwrap();
    c.run(ring, &[1, 2]);
    c.node(1).mcast(ClientId(10), &g("a"), Guarantee::Safe, Bytes::from_static(b"after")).unwrap();
    c.node(2).mcast(ClientId(20), &g("a"), Guarantee::Agreed, Bytes::from_static(b"from 2")).unwrap();
    c.run(ring, &[1, 2]);
    let one = c.data(1, 10);
    let two = c.data(2, 20);
    assert_eq!(
        one,
        vec![
            (m(1, 100), b"before".to_vec()),
            (m(1, 100), b"after".to_vec()),
            (m(2, 200), b"from 2".to_vec())
        ]
    );
    // Node 2's process joined after "before": it gets the rest, in the same order.
    assert_eq!(two, one[1..].to_vec());
}

#[test]
fn a_leaver_gets_its_own_leave_last_and_the_others_see_reason_leave() {
    let mut c = Cluster::new(2);
    let ring = c.install(&[1, 2], None);
    c.node(1).connect(ClientId(10), 100);
    c.node(2).connect(ClientId(20), 200);
    c.node(1).join(ClientId(10), &g("a")).unwrap();
    c.node(2).join(ClientId(20), &g("a")).unwrap();
    c.run(ring, &[1, 2]);
    c.confchgs(1, 10);
    c.confchgs(2, 20);
    c.node(2).leave(ClientId(20), &g("a")).unwrap();
    assert_eq!(c.node(2).leave(ClientId(20), &g("a")), Err(ServiceError::NotExist));
    c.run(ring, &[1, 2]);
    let expected = confchg("a", &[m(1, 100)], &[ch(2, 200, Reason::Leave)], &[]);
    assert_eq!(c.confchgs(2, 20), vec![expected.clone()]);
    assert_eq!(c.confchgs(1, 10), vec![expected]);
    // Messages after the leave no longer reach it.
    c.node(1).mcast(ClientId(10), &g("a"), Guarantee::Agreed, Bytes::from_static(b"x")).unwrap();
    c.run(ring, &[1, 2]);
    assert!(c.data(2, 20).is_empty());
}

#[test]
fn a_client_that_disconnects_leaves_with_reason_procdown() {
    let mut c = Cluster::new(2);
    let ring = c.install(&[1, 2], None);
    c.node(1).connect(ClientId(10), 100);
    c.node(2).connect(ClientId(20), 200);
    c.node(1).join(ClientId(10), &g("a")).unwrap();
    c.node(2).join(ClientId(20), &g("a")).unwrap();
    c.node(2).join(ClientId(20), &g("b")).unwrap();
    c.run(ring, &[1, 2]);
    c.confchgs(1, 10);
    c.node(2).disconnect(ClientId(20));
    c.run(ring, &[1, 2]);
    assert_eq!(c.confchgs(1, 10), vec![confchg("a", &[m(1, 100)], &[ch(2, 200, Reason::ProcDown)], &[])]);
    assert!(c.node(1).membership(&g("b")).is_empty());
    assert_eq!(c.node(2).groups().count(), 1);
}

#[test]
fn a_failed_node_leaves_every_group_with_reason_nodedown() {
    let mut c = Cluster::new(3);
    let ring = c.install(&[1, 2, 3], None);
    for (n, client, pid) in [(1, 10, 100), (2, 20, 200), (3, 30, 300)] {
        c.node(n).connect(ClientId(client), pid);
        c.node(n).join(ClientId(client), &g("a")).unwrap();
    }
    c.run(ring, &[1, 2, 3]);
    c.confchgs(1, 10);
    c.confchgs(2, 20);
    let ring2 = c.install(&[1, 2], Some(&[1, 2]));
    c.run(ring2, &[1, 2]);
    let expected = confchg("a", &[m(1, 100), m(2, 200)], &[ch(3, 300, Reason::NodeDown)], &[]);
    assert_eq!(c.confchgs(1, 10), vec![expected.clone()]);
    assert_eq!(c.confchgs(2, 20), vec![expected]);
}

#[test]
fn after_a_merge_the_sync_round_gives_both_sides_one_group_table_with_reason_nodeup() {
    let mut c = Cluster::new(2);
    // Two separate one-node rings, each with its own member of "a".
    let r1 = c.install(&[1], None);
    c.node(1).connect(ClientId(10), 100);
    c.node(1).join(ClientId(10), &g("a")).unwrap();
    c.run(r1, &[1]);
    let r2 = c.install(&[2], None);
    c.node(2).connect(ClientId(20), 200);
    c.node(2).join(ClientId(20), &g("a")).unwrap();
    c.run(r2, &[2]);
    c.confchgs(1, 10);
    c.confchgs(2, 20);
    // Node 1 keeps its queue across the merge; node 2's message was submitted before it.
    c.node(2).mcast(ClientId(20), &g("a"), Guarantee::Agreed, Bytes::from_static(b"queued")).unwrap();
    let merged = {
        c.ring_seq += 4;
        let ring = RingId { seq: c.ring_seq, representative: NodeId(1) };
        c.node(1).handle_transitional(&[NodeId(1)]);
        c.node(1).handle_regular(ring, &[NodeId(1), NodeId(2)]);
        c.node(2).handle_transitional(&[NodeId(2)]);
        c.node(2).handle_regular(ring, &[NodeId(1), NodeId(2)]);
        ring
    };
    c.run(merged, &[1, 2]);
    let both = [m(1, 100), m(2, 200)];
    let confchgs1 = c.take(1, 10);
    assert!(matches!(confchgs1[0], CpgEvent::Totem(_)), "{confchgs1:?}");
    assert_eq!(
        confchgs1[1..].to_vec(),
        vec![
            CpgEvent::Confchg(confchg("a", &both, &[], &[ch(2, 200, Reason::NodeUp)])),
            CpgEvent::Deliver(Message {
                group: g("a"),
                sender: m(2, 200),
                guarantee: Guarantee::Agreed,
                data: Bytes::from_static(b"queued")
            })
        ]
    );
    assert_eq!(c.confchgs(2, 20), vec![confchg("a", &both, &[], &[ch(1, 100, Reason::NodeUp)])]);
    assert_eq!(c.node(1).membership(&g("a")), both.to_vec());
    assert_eq!(c.node(2).membership(&g("a")), both.to_vec());
}

#[test]
fn an_operation_submitted_before_a_ring_change_is_applied_once_in_the_new_ring() {
    let mut c = Cluster::new(2);
    let ring = c.install(&[1, 2], None);
    c.node(1).connect(ClientId(10), 100);
    c.node(2).connect(ClientId(20), 200);
    c.node(1).join(ClientId(10), &g("a")).unwrap();
    c.node(2).join(ClientId(20), &g("a")).unwrap();
    c.run(ring, &[1, 2]);
    c.take(2, 20);
    // Node 1 hands a message to the engine, which orders it only after the next ring forms.
    c.node(1).mcast(ClientId(10), &g("a"), Guarantee::Agreed, Bytes::from_static(b"late")).unwrap();
    let (late, guarantee) = c.node(1).next_submission().unwrap();
    c.node(1).submitted();
    let ring2 = c.install(&[1, 2], Some(&[1, 2]));
    // Delivered in the new ring with the old tag: ignored by both...
    for i in [1, 2] {
        let d =
            Delivery { ring_id: ring2, seq: Seq(0), sender: NodeId(1), guarantee, payload: late.slice(1..) };
        c.node(i).handle_delivery(d);
    }
    // ...and sent again after the sync round.
    c.run(ring2, &[1, 2]);
    assert_eq!(c.data(2, 20), vec![(m(1, 100), b"late".to_vec())]);
    assert_eq!(c.node(2).stats().stale_operations, 1);
}

#[test]
fn nothing_of_this_node_is_submitted_before_its_first_ring_and_its_sync_round() {
    let mut c = Cluster::new(1);
    c.node(1).connect(ClientId(10), 100);
    c.node(1).join(ClientId(10), &g("a")).unwrap();
    assert!(c.node(1).next_submission().is_none(), "no ring yet");
    let ring = c.install(&[1], None);
    let (first, guarantee) = c.node(1).next_submission().unwrap();
    assert_eq!(first[0], SERVICE_TAG);
    let decoded = CpgPacket::decode(first.slice(1..)).unwrap();
    assert!(matches!(decoded.body, Some(Body::Sync(_))), "the sync message goes first");
    c.node(1).submitted();
    assert!(c.node(1).next_submission().is_none(), "operations wait for the sync round");
    c.in_order.push((ring, NodeId(1), first, guarantee));
    c.run(ring, &[1]);
    assert_eq!(c.node(1).membership(&g("a")), vec![m(1, 100)]);
}

#[test]
fn local_requests_are_checked_before_anything_is_queued() {
    let mut s = CpgService::new(NodeId(1), CpgConfig { message_max: 10, queue_bytes_max: 15 });
    assert_eq!(s.join(ClientId(1), &g("a")), Err(ServiceError::UnknownClient));
    s.connect(ClientId(1), 7);
    s.connect(ClientId(2), 7);
    assert_eq!(
        s.mcast(ClientId(1), &g("a"), Guarantee::Agreed, Bytes::from_static(b"x")),
        Err(ServiceError::NotExist)
    );
    s.join(ClientId(1), &g("a")).unwrap();
    assert_eq!(s.join(ClientId(1), &g("a")), Err(ServiceError::Exist));
    assert_eq!(s.join(ClientId(2), &g("a")), Err(ServiceError::Exist), "one member per pid and group");
    assert_eq!(
        s.mcast(ClientId(1), &g("a"), Guarantee::Agreed, Bytes::from(vec![0; 11])),
        Err(ServiceError::TooLarge { size: 11, max: 10 })
    );
    s.mcast(ClientId(1), &g("a"), Guarantee::Agreed, Bytes::from(vec![0; 10])).unwrap();
    assert_eq!(
        s.mcast(ClientId(1), &g("a"), Guarantee::Agreed, Bytes::from(vec![0; 10])),
        Err(ServiceError::TryAgain)
    );
    assert_eq!(s.queued_bytes(), 10);
}

#[test]
fn a_reconnecting_process_waits_until_its_old_connection_has_left() {
    let mut c = Cluster::new(1);
    let ring = c.install(&[1], None);
    c.node(1).connect(ClientId(10), 100);
    c.node(1).join(ClientId(10), &g("a")).unwrap();
    c.run(ring, &[1]);
    c.node(1).disconnect(ClientId(10));
    c.node(1).connect(ClientId(11), 100);
    assert_eq!(c.node(1).join(ClientId(11), &g("a")), Err(ServiceError::TryAgain));
    c.run(ring, &[1]);
    c.node(1).join(ClientId(11), &g("a")).unwrap();
    c.run(ring, &[1]);
    assert_eq!(c.node(1).membership(&g("a")), vec![m(1, 100)]);
}

#[test]
fn malformed_service_messages_are_counted_and_dropped() {
    let mut s = CpgService::new(NodeId(1), CpgConfig::default());
    let ring = RingId { seq: 4, representative: NodeId(1) };
    s.handle_regular(ring, &[NodeId(1)]);
    for payload in [&b"\xff\xff\xff"[..], b"", b"\x0a\x00"] {
        let d = Delivery {
            ring_id: ring,
            seq: Seq(1),
            sender: NodeId(2),
            guarantee: totem::Guarantee::Agreed,
            payload: Bytes::copy_from_slice(payload),
        };
        s.handle_delivery(d);
    }
    assert_eq!(s.stats().malformed, 3);
    assert!(s.poll_event().is_none());
}

proptest::proptest! {
    /// Whatever bytes the ring delivers, the service counts or applies them and never panics.
    #[test]
    fn arbitrary_deliveries_never_panic(payloads in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 1..8)) {
        let mut s = CpgService::new(NodeId(1), CpgConfig::default());
        s.connect(ClientId(1), 7);
        s.join(ClientId(1), &g("a")).unwrap();
        let ring = RingId { seq: 4, representative: NodeId(1) };
        s.handle_regular(ring, &[NodeId(1), NodeId(2)]);
        for payload in payloads {
            let d = Delivery { ring_id: ring, seq: Seq(1), sender: NodeId(2), guarantee: totem::Guarantee::Agreed, payload: Bytes::from(payload) };
            s.handle_delivery(d);
        }
        while s.poll_event().is_some() {}
    }
}
