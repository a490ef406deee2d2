//! One rule per test: a node in a known state, one input, the exact outputs.

mod common;

use std::time::Duration;

use common::Cluster;
use quorum::wire::{self, Body, NodeInfo, QuorumMessage, Reconfigure};
use quorum::{MemberStatus, QuorumConfig, QuorumEvent, RequestError, StatusFlags, Votequorum};
use totem::{Instant, NodeId, RingId};

fn ring(seq: u64, rep: u32) -> RingId {
    RingId { seq, representative: NodeId(rep) }
}

fn ids(list: &[u32]) -> Vec<NodeId> {
    list.iter().map(|&i| NodeId(i)).collect()
}

fn submissions(vq: &mut Votequorum) -> Vec<Body> {
    std::iter::from_fn(|| vq.poll_submission()).map(|b| QuorumMessage::from_bytes(&b).unwrap()).collect()
}

fn info(node: u32, votes: u32, expected: u32, flags: u32) -> NodeInfo {
    NodeInfo { node_id: node, votes, expected_votes: expected, flags, lms: None }
}

#[test]
fn before_any_ring_a_node_counts_only_itself() {
    let mut vq = Votequorum::new(NodeId(2), &QuorumConfig::with_nodes([1, 2, 3])).unwrap();
    let s = vq.status();
    assert_eq!((s.quorate, s.quorum, s.expected_votes, s.total_votes, s.ring_id), (false, 2, 3, 1, None));
    assert_eq!(s.members, vec![MemberStatus { node_id: NodeId(2), votes: 1, expected_votes: 3 }]);
    assert_eq!((vq.poll_submission(), vq.poll_event(), vq.poll_timeout()), (None, None, None));
}

#[test]
fn a_new_ring_queues_one_node_info_and_clears_first() {
    let mut vq = Votequorum::new(NodeId(1), &QuorumConfig::with_nodes([1, 2, 3])).unwrap();
    vq.handle_ring(Instant::ZERO, ring(1, 1), &ids(&[1]));
    // Alone in a ring: still NODE_FLAGS_FIRST. A second ring replaces the unsent info.
    vq.handle_ring(Instant::ZERO, ring(2, 1), &ids(&[1, 2]));
    assert_eq!(submissions(&mut vq), vec![Body::NodeInfo(info(1, 1, 3, 0))]);
    let mut alone = Votequorum::new(NodeId(1), &QuorumConfig::with_nodes([1, 2, 3])).unwrap();
    alone.handle_ring(Instant::ZERO, ring(1, 1), &ids(&[1]));
    assert_eq!(submissions(&mut alone), vec![Body::NodeInfo(info(1, 1, 3, wire::FLAG_FIRST))]);
}

#[test]
fn one_event_per_ring_once_all_infos_are_in() {
    // corosync's sync_activate calls quorum_callback once; changes during the exchange are not reported.
    let mut vq = Votequorum::new(NodeId(1), &QuorumConfig::with_nodes([1, 2, 3])).unwrap();
    vq.handle_ring(Instant::ZERO, ring(4, 1), &ids(&[1, 2, 3]));
    vq.handle_node_info(NodeId(1), info(1, 1, 3, 0));
    vq.handle_node_info(NodeId(2), info(2, 1, 3, 0));
    assert!(vq.is_quorate());
    assert_eq!(vq.poll_event(), None);
    vq.handle_node_info(NodeId(3), info(3, 1, 3, 0));
    let want = QuorumEvent { quorate: true, ring_id: ring(4, 1), members: ids(&[1, 2, 3]) };
    assert_eq!((vq.poll_event(), vq.poll_event()), (Some(want), None));
}

#[test]
fn a_quorum_change_outside_a_ring_change_is_an_event() {
    let mut c = Cluster::new(&QuorumConfig::with_nodes([1, 2, 3, 4, 5]), &[1, 2, 3, 4, 5]);
    c.rings(&[vec![1, 2], vec![3, 4, 5]]);
    c.events.clear();
    c.set_expected(1, 2).unwrap();
    let ring_id = c.node(1).status().ring_id.unwrap();
    let want = QuorumEvent { quorate: true, ring_id, members: ids(&[1, 2]) };
    assert_eq!(c.events[&NodeId(1)], vec![want.clone()]);
    assert_eq!(c.events[&NodeId(2)], vec![want]);
    assert!(!c.events.contains_key(&NodeId(3)));
}

#[test]
fn bad_peer_messages_are_dropped_and_counted() {
    let mut vq = Votequorum::new(NodeId(1), &QuorumConfig::with_nodes([1, 2, 3])).unwrap();
    vq.handle_ring(Instant::ZERO, ring(1, 1), &ids(&[1, 2]));
    let before = vq.status();
    vq.handle_node_info(NodeId(2), info(3, 5, 9, 0));
    vq.handle_node_info(NodeId(3), info(3, 5, 9, 0));
    vq.handle_message(NodeId(2), &[0xff, 0x01]);
    let bad = QuorumMessage::new(Body::Reconfigure(Reconfigure { param: 9, node_id: 1, value: 1 }));
    vq.handle_message(NodeId(2), &bad.to_bytes());
    assert_eq!(vq.status(), before);
    let st = vq.stats();
    assert_eq!((st.wrong_sender, st.malformed, st.bad_reconfigure), (2, 1, 1));
}

#[test]
fn a_node_joining_a_quorate_partition_takes_its_expected_votes() {
    // votequorum.c: a node that is not quorate adopts the expected votes of a quorate sender.
    let mut vq = Votequorum::new(NodeId(4), &QuorumConfig::with_expected_votes(3)).unwrap();
    vq.handle_ring(Instant::ZERO, ring(7, 1), &ids(&[1, 2, 3, 4]));
    vq.handle_node_info(NodeId(1), info(1, 1, 7, wire::FLAG_QUORATE));
    let s = vq.status();
    assert_eq!((s.expected_votes, s.highest_expected, s.quorum), (7, 7, 4));
}

#[test]
fn last_man_standing_needs_one_vote_per_node() {
    let mut config = QuorumConfig::with_nodes([1, 2, 3]);
    config.last_man_standing = true;
    config.nodelist.insert(NodeId(3), 2);
    let mut c = Cluster::new(&config, &[1, 2, 3]);
    assert!(c.node(1).status().flags.last_man_standing);
    c.rings(&[vec![1, 2, 3]]);
    assert!(!c.node(1).status().flags.last_man_standing);
    c.rings(&[vec![1, 2], vec![3]]);
    assert_eq!(c.node(1).poll_timeout(), None);
}

#[test]
fn last_man_standing_deadline_and_spurious_timeouts() {
    let mut config = QuorumConfig::with_nodes([1, 2, 3, 4, 5]);
    config.last_man_standing = true;
    config.last_man_standing_window = Duration::from_millis(500);
    let mut vq = Votequorum::new(NodeId(1), &config).unwrap();
    let t0 = Instant::from_nanos(1_000_000_000);
    vq.handle_ring(t0, ring(1, 1), &ids(&[1, 2, 3, 4, 5]));
    for n in 1..=5 {
        vq.handle_node_info(NodeId(n), info(n, 1, 5, 0));
    }
    assert_eq!(vq.poll_timeout(), None);
    vq.handle_ring(t0, ring(2, 1), &ids(&[1, 2, 3, 4]));
    for n in 1..=4 {
        vq.handle_node_info(NodeId(n), info(n, 1, 5, wire::FLAG_QUORATE));
    }
    let deadline = t0 + Duration::from_millis(500);
    assert_eq!(vq.poll_timeout(), Some(deadline));
    vq.handle_timeout(t0 + Duration::from_millis(499));
    assert_eq!((vq.poll_timeout(), vq.status().expected_votes), (Some(deadline), 5));
    vq.handle_timeout(deadline);
    let s = vq.status();
    assert_eq!((vq.poll_timeout(), s.expected_votes, s.quorum, s.quorate), (None, 4, 3, true));
}

#[test]
fn status_flags_follow_the_settings_in_force() {
    let mut config = QuorumConfig::with_nodes([1, 2]);
    config.two_node = true;
    let vq = Votequorum::new(NodeId(1), &config).unwrap();
    let want = StatusFlags { two_node: true, wait_for_all: true, ..StatusFlags::default() };
    assert_eq!(vq.status().flags, want);
    assert!(vq.is_waiting_for_all());
    config.auto_tie_breaker = true;
    let vq = Votequorum::new(NodeId(1), &config).unwrap();
    let want = StatusFlags { wait_for_all: true, auto_tie_breaker: true, ..StatusFlags::default() };
    assert_eq!(vq.status().flags, want);
}

#[test]
fn status_lists_ring_members_with_their_votes() {
    let mut config = QuorumConfig::with_nodes([1, 2, 3]);
    config.nodelist.insert(NodeId(2), 2);
    let mut vq = Votequorum::new(NodeId(1), &config).unwrap();
    vq.handle_ring(Instant::ZERO, ring(3, 1), &ids(&[1, 2, 3]));
    vq.handle_node_info(NodeId(2), info(2, 2, 4, 0));
    let s = vq.status();
    let m = |id, votes, expected_votes| MemberStatus { node_id: NodeId(id), votes, expected_votes };
    // Node 3's info has not arrived: it counts nothing yet.
    assert_eq!(s.members, vec![m(1, 1, 4), m(2, 2, 4), m(3, 0, 0)]);
    assert_eq!((s.total_votes, s.quorate), (3, true));
}

#[test]
fn run_time_requests_are_checked_before_sending() {
    let mut c = Cluster::new(&QuorumConfig::with_nodes([1, 2, 3]), &[1, 2, 3]);
    c.rings(&[vec![1, 2, 3]]);
    let vq = c.nodes.get_mut(&NodeId(1)).unwrap();
    let invalid = RequestError::InvalidExpected { expected: 2, total_votes: 3, quorum: 2 };
    assert_eq!(vq.set_expected(2), Err(invalid));
    let invalid = RequestError::InvalidExpected { expected: 7, total_votes: 3, quorum: 4 };
    assert_eq!(vq.set_expected(7), Err(invalid));
    assert_eq!(vq.set_votes(NodeId(9), 1), Err(RequestError::UnknownNode(NodeId(9))));
    assert_eq!(vq.poll_submission(), None);
    assert_eq!(vq.set_votes(NodeId(3), 9), Ok(()), "quorum 6 of 11 is reachable");
    let want = Reconfigure { param: wire::RECONFIGURE_NODE_VOTES, node_id: 3, value: 9 };
    assert_eq!(submissions(vq), vec![Body::Reconfigure(want)]);
}

#[test]
fn votes_that_put_quorum_out_of_reach_are_refused() {
    let mut c = Cluster::new(&QuorumConfig::with_nodes([1, 2, 3, 4, 5]), &[1, 2, 3, 4, 5]);
    c.rings(&[vec![1, 2, 3], vec![4, 5]]);
    let invalid = RequestError::InvalidVotes { node: NodeId(3), votes: 0, total_votes: 2, quorum: 3 };
    assert_eq!(c.set_votes(1, 3, 0), Err(invalid));
    assert_eq!(c.summary(1), "yes/3/5");
}

#[test]
#[should_panic(expected = "ring ids only increase")]
fn ring_ids_only_increase() {
    let mut vq = Votequorum::new(NodeId(1), &QuorumConfig::with_nodes([1, 2])).unwrap();
    vq.handle_ring(Instant::ZERO, ring(5, 1), &ids(&[1]));
    vq.handle_ring(Instant::ZERO, ring(4, 1), &ids(&[1]));
}

#[test]
fn quorumtool_text_of_a_blocked_partition() {
    let mut config = QuorumConfig::with_nodes([1, 2, 3, 4, 5]);
    config.wait_for_all = Some(true);
    config.last_man_standing = true;
    let mut c = Cluster::new(&config, &[1, 2, 3, 4, 5]);
    c.rings(&[vec![1, 2, 3, 4, 5]]);
    c.rings(&[vec![1, 2], vec![3, 4, 5]]);
    let names = std::collections::BTreeMap::from([(NodeId(2), "node2".to_string())]);
    let text = quorum::format::quorumtool_status(&c.node(2).status(), &names, None);
    let want = "\
Quorum information
------------------
Quorum provider:  corosync_votequorum
Nodes:            2
Node ID:          2
Ring ID:          1.2
Quorate:          No

Votequorum information
----------------------
Expected votes:   5
Highest expected: 5
Total votes:      2
Quorum:           3 Activity blocked
Flags:            WaitForAll LastManStanding 

Membership information
----------------------
    Nodeid      Votes Name
         1          1 1
         2          1 node2 (local)
";
    assert_eq!(text, want);
}

#[test]
fn a_node_cut_off_stops_being_quorate_at_the_new_ring() {
    let mut c = Cluster::new(&QuorumConfig::with_nodes([1, 2, 3]), &[1, 2, 3]);
    c.rings(&[vec![1, 2, 3]]);
    let vq = c.nodes.get_mut(&NodeId(3)).unwrap();
    vq.poll_event();
    vq.handle_ring(Instant::ZERO, ring(9, 3), &ids(&[3]));
    assert!(!vq.is_quorate());
    // The event waits for the exchange; the info already says not quorate.
    assert_eq!(vq.poll_event(), None);
    assert_eq!(submissions(vq), vec![Body::NodeInfo(info(3, 1, 3, 0))]);
    vq.handle_node_info(NodeId(3), info(3, 1, 3, 0));
    let want = QuorumEvent { quorate: false, ring_id: ring(9, 3), members: ids(&[3]) };
    assert_eq!(vq.poll_event(), Some(want));
}
