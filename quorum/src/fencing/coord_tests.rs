//! Coordinated fencers on one simulated ring: the first claim delivered picks the member that
//! runs the agents, results reach every member, a dead owner's victim passes to a survivor,
//! and a node unfences itself before it serves.

use std::collections::BTreeMap;
use std::time::Duration;

use totem::{Instant, NodeId, RingId};

use super::tests::{config, dref, t};
use super::*;

/// Coordinated fencers of nodes 1..=3 and a ring that delivers their messages in one order.
struct Ring {
    fencers: BTreeMap<NodeId, Fencer>,
    ring: RingId,
    /// Agent runs started, per member.
    runs: BTreeMap<NodeId, Vec<RunAgent>>,
    /// Events, per member.
    events: BTreeMap<NodeId, Vec<FenceEvent>>,
}

impl Ring {
    /// All three nodes, quorate, the startup delay over.
    fn new(cfg: FenceConfig) -> Ring {
        let fencers =
            (1..=3).map(|n| (NodeId(n), Fencer::coordinated(NodeId(n), cfg.clone()).unwrap())).collect();
        let mut ring = Ring {
            fencers,
            ring: RingId { seq: 4, representative: NodeId(1) },
            runs: BTreeMap::new(),
            events: BTreeMap::new(),
        };
        ring.install(t(0), &[1, 2, 3]);
        for f in ring.fencers.values_mut() {
            f.start(t(0));
            f.handle_timeout(t(6));
        }
        ring.deliver(t(6));
        ring.runs.clear();
        ring.events.clear();
        ring
    }

    /// A new ring of `members`; the others are gone.
    fn install(&mut self, now: Instant, members: &[u32]) {
        let ids: Vec<NodeId> = members.iter().copied().map(NodeId).collect();
        self.ring = RingId { seq: self.ring.seq + 4, representative: ids[0] };
        self.fencers.retain(|n, _| ids.contains(n));
        for f in self.fencers.values_mut() {
            f.new_ring(self.ring);
            f.handle_membership(now, &ids, true, &[]);
        }
        self.deliver(now);
    }

    /// Multicasts every queued message, in member order, to every member (senders included),
    /// until nothing is queued; collects agent runs and events.
    fn deliver(&mut self, now: Instant) {
        self.deliver_senders_in(now, &[1, 2, 3]);
    }

    /// [`Ring::deliver`] with the senders' messages ordered as `order` says.
    fn deliver_senders_in(&mut self, now: Instant, order: &[u32]) {
        loop {
            let mut sent = Vec::new();
            for node in order.iter().copied().map(NodeId) {
                let Some(f) = self.fencers.get_mut(&node) else { continue };
                while let Some(m) = f.poll_message() {
                    sent.push((node, m));
                }
            }
            for (node, f) in &mut self.fencers {
                self.runs.entry(*node).or_default().extend(std::iter::from_fn(|| f.poll_action()));
                self.events.entry(*node).or_default().extend(std::iter::from_fn(|| f.poll_event()));
            }
            if sent.is_empty() {
                return;
            }
            for (sender, m) in sent {
                for f in self.fencers.values_mut() {
                    f.handle_message(now, sender, &m).unwrap();
                }
            }
        }
    }

    fn runs_of(&self, node: u32) -> &[RunAgent] {
        self.runs.get(&NodeId(node)).map_or(&[], Vec::as_slice)
    }

    fn fenced_at(&self, member: u32, victim: u32) -> bool {
        self.events[&NodeId(member)]
            .iter()
            .any(|e| matches!(e, FenceEvent::Fenced { node, .. } if *node == NodeId(victim)))
    }

    fn fencer(&mut self, node: u32) -> &mut Fencer {
        self.fencers.get_mut(&NodeId(node)).unwrap()
    }
}

#[test]
fn one_member_runs_the_agents_and_every_member_learns_the_result() {
    let mut ring = Ring::new(config());
    ring.install(t(10), &[1, 2]);
    // Both survivors claimed node 3; node 1's claim went first, so node 1 alone fences.
    assert_eq!(ring.runs_of(1).len(), 1, "{:?}", ring.runs);
    assert!(ring.runs_of(2).is_empty(), "node 2 must leave node 3 to node 1: {:?}", ring.runs);
    assert_eq!(ring.fencer(2).owner(NodeId(3)), Some(NodeId(1)));
    assert!(ring.fencer(2).is_blocking(), "node 2 holds service while node 3 is pending");
    let op = ring.runs_of(1)[0].op;
    ring.fencer(1).handle_agent_result(t(11), op, true, String::new());
    ring.deliver(t(11));
    for member in [1, 2] {
        assert!(ring.fenced_at(member, 3), "member {member} did not learn of the fence: {:?}", ring.events);
        assert!(!ring.fencer(member).is_blocking());
        assert_eq!(ring.fencer(member).history().last().map(|h| h.by.as_str()), Some("ipmi"));
    }
}

#[test]
fn a_victim_whose_owner_dies_is_fenced_by_a_survivor_in_the_next_ring() {
    let mut ring = Ring::new(config());
    ring.install(t(10), &[1, 2]);
    assert_eq!(ring.runs_of(1).len(), 1);
    // The owner dies before its agent reports; node 2 (quorate alone here, as with two_node)
    // claims node 3 again, and node 1 too, and runs both itself.
    ring.install(t(12), &[2]);
    let mut victims: Vec<NodeId> = ring.runs_of(2).iter().map(|r| r.node).collect();
    victims.sort();
    assert_eq!(victims, vec![NodeId(1), NodeId(3)]);
}

#[test]
fn claims_from_an_earlier_ring_are_ignored() {
    let mut ring = Ring::new(config());
    ring.install(t(10), &[1, 2]);
    let old = ring.ring;
    ring.install(t(11), &[1, 2]);
    // A claim by node 2 sent in the earlier ring and delivered now must not make it an owner.
    let stale = wire::FenceMessage::encode_body(wire::Body::Claim(wire::Claim {
        node_id: 3,
        ring_seq: old.seq,
        ring_rep: old.representative.0,
    }));
    let mut fresh = Ring { runs: BTreeMap::new(), events: BTreeMap::new(), ..ring };
    for f in fresh.fencers.values_mut() {
        f.handle_message(t(11), NodeId(2), &stale).unwrap();
    }
    assert_eq!(fresh.fencer(2).owner(NodeId(3)), Some(NodeId(1)));
}

#[test]
fn a_manual_fence_is_multicast_and_run_by_one_member() {
    let mut ring = Ring::new(config());
    assert_eq!(ring.fencer(2).fence(t(10), NodeId(2)), Err(FenceError::IsLocal(NodeId(2))));
    ring.fencer(2).fence(t(10), NodeId(3)).unwrap();
    assert!(ring.runs_of(2).is_empty() && ring.fencer(1).pending().is_empty(), "nothing before delivery");
    ring.deliver(t(10));
    for member in [1, 2] {
        assert_eq!(ring.fencer(member).pending(), vec![NodeId(3)], "member {member}");
    }
    assert!(ring.fencer(3).pending().is_empty(), "a node is never its own victim");
    let runners: Vec<u32> = [1, 2, 3].into_iter().filter(|&m| !ring.runs_of(m).is_empty()).collect();
    assert_eq!(runners, vec![1], "exactly one member runs the agent");
    assert!(ring.runs_of(3).is_empty(), "the victim never fences itself");
}

#[test]
fn an_ack_on_one_member_completes_the_fence_everywhere() {
    let mut ring = Ring::new(config());
    ring.install(t(10), &[1, 2]);
    ring.fencer(2).ack(t(11), NodeId(3)).unwrap();
    ring.deliver(t(11));
    for member in [1, 2] {
        assert!(ring.fencer(member).pending().is_empty(), "member {member}");
        assert_eq!(ring.fencer(member).history().last().map(|h| h.by.as_str()), Some(ACKNOWLEDGED));
    }
}

fn unfence_config() -> FenceConfig {
    let mut cfg = config();
    cfg.devices.insert(
        "san".into(),
        super::Device { agent: "fence_scsi".into(), attrs: vec![("devices".into(), "/dev/sdb".into())] },
    );
    cfg.unfence.insert(NodeId(1), vec![dref("san", &[("key", "1")]), dref("ipmi1", &[])]);
    cfg
}

#[test]
fn a_node_unfences_itself_at_start_and_serves_only_after_every_device_succeeded() {
    let mut f = Fencer::coordinated(NodeId(1), unfence_config()).unwrap();
    f.start(t(0));
    assert!(f.is_unfencing() && f.is_blocking());
    let run = f.poll_action().expect("the first unfence device runs at start");
    assert_eq!(run.node, NodeId(1));
    assert_eq!(run.agent, "fence_scsi");
    assert_eq!(run.stdin, "devices=/dev/sdb\nkey=1\nnodename=n1\naction=on\n");
    // A failure retries from the first device after retry_delay.
    f.handle_agent_result(t(1), run.op, false, "no reservation".into());
    assert!(f.poll_action().is_none());
    assert_eq!(f.poll_timeout(), Some(t(6)));
    f.handle_timeout(t(6));
    let again = f.poll_action().expect("retried");
    assert_eq!(again.device, "san");
    f.handle_agent_result(t(7), again.op, true, String::new());
    let second = f.poll_action().expect("then the second device");
    assert_eq!(second.device, "ipmi1");
    assert!(second.stdin.ends_with("action=on\n"));
    assert!(f.is_blocking());
    f.handle_agent_result(t(8), second.op, true, String::new());
    assert!(!f.is_unfencing() && !f.is_blocking());
    let events: Vec<FenceEvent> = std::iter::from_fn(|| f.poll_event()).collect();
    assert!(events.contains(&FenceEvent::Unfenced), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, FenceEvent::UnfenceFailed { device, .. } if device == "san")));
}

#[test]
fn an_unfence_agent_that_hangs_counts_as_failed() {
    let mut cfg = unfence_config();
    cfg.agent_timeout = Duration::from_secs(3);
    let mut f = Fencer::coordinated(NodeId(1), cfg).unwrap();
    f.start(t(0));
    let run = f.poll_action().unwrap();
    f.handle_timeout(t(3));
    f.handle_agent_result(t(4), run.op, true, String::new());
    assert!(f.is_unfencing(), "a result after the timeout is ignored");
}

#[test]
fn nodes_without_unfence_devices_serve_at_once() {
    let mut f = Fencer::coordinated(NodeId(2), unfence_config()).unwrap();
    f.start(t(0));
    assert!(!f.is_unfencing());
    assert!(f.poll_action().is_none());
}

#[test]
fn a_result_delayed_into_the_next_ring_stops_a_second_fence() {
    let mut ring = Ring::new(config());
    ring.fencer(2).fence(t(10), NodeId(3)).unwrap();
    ring.deliver(t(10));
    assert_eq!(ring.runs_of(1).len(), 1, "node 1 owns the manual fence");
    // The agent kills node 3 and reports; the ring breaks before node 1's result goes out.
    let op = ring.runs_of(1)[0].op;
    ring.fencer(1).handle_agent_result(t(11), op, true, String::new());
    // In the new ring node 2 gets the token first: its messages precede node 1's result.
    ring.ring = RingId { seq: ring.ring.seq + 4, representative: NodeId(1) };
    ring.fencers.remove(&NodeId(3));
    for f in ring.fencers.values_mut() {
        f.new_ring(ring.ring);
        f.handle_membership(t(13), &[NodeId(1), NodeId(2)], true, &[]);
    }
    ring.deliver_senders_in(t(13), &[2, 1]);
    assert!(ring.runs_of(2).is_empty(), "node 2 fenced node 3 again: {:?}", ring.runs);
    assert_eq!(ring.runs_of(1).len(), 1);
    assert!(ring.fencer(2).pending().is_empty() && !ring.fencer(2).is_blocking());
}

/// A member restarts while the others still fence a node; once they have, its startup rule
/// must not be left waiting on their finished claim (sim seed 1592590746), and it does not
/// fence again a node it learnt was fenced.
#[test]
fn a_restarted_member_is_not_held_by_a_claim_finished_before_its_startup_delay_ended() {
    let mut ring = Ring::new(config());
    ring.install(t(10), &[1, 2]);
    let op = ring.runs_of(1)[0].op;
    // Node 2 restarts with a fresh fencer and rejoins: node 1, still running node 3's agent,
    // claims it in the new ring.
    let mut fresh = Fencer::coordinated(NodeId(2), config()).unwrap();
    fresh.start(t(11));
    ring.fencers.insert(NodeId(2), fresh);
    ring.install(t(12), &[1, 2]);
    assert_eq!(ring.fencer(2).owner(NodeId(3)), Some(NodeId(1)));
    ring.fencer(1).handle_agent_result(t(13), op, true, String::new());
    ring.deliver(t(13));
    // Node 2's post_join_delay ends with node 3 never seen: it was fenced, so no victim.
    for f in ring.fencers.values_mut() {
        f.handle_timeout(t(20));
    }
    ring.deliver(t(20));
    assert!(ring.fencer(2).pending().is_empty(), "{:?}", ring.fencer(2).pending());
    assert!(!ring.fencer(2).is_blocking());
}

/// The same, for a victim a member gets only after the claim on it finished: its own claim
/// wins now, and it runs the agent.
#[test]
fn a_victim_gained_after_its_claim_finished_is_claimed_again() {
    let mut ring = Ring::new(config());
    ring.install(t(10), &[1, 2]);
    let op = ring.runs_of(1)[0].op;
    ring.fencer(1).handle_agent_result(t(11), op, true, String::new());
    ring.deliver(t(11));
    assert_eq!(ring.fencer(2).owner(NodeId(3)), None, "a finished victim's claim is freed");
    // Node 2's operator asks again in the same ring: one member runs it.
    ring.fencer(2).fence(t(12), NodeId(3)).unwrap();
    ring.deliver(t(12));
    let runs = ring.runs_of(1).len() + ring.runs_of(2).len();
    assert_eq!(runs, 2, "the first fence and exactly one more: {:?}", ring.runs);
}
