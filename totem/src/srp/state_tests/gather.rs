//! Gather state: joins, proc and fail sets, consensus (Totem paper, section 4.1; corosync's
//! `memb_join_process` and `memb_consensus_*`).

use super::*;

/// Totem 4.1: a processor entering gather multicasts a join with proc set {itself}; corosync
/// starts the ring seq of a restarted node past the persisted one and stores it first.
#[test]
fn fresh_node_persists_its_ring_seq_and_sends_a_join_with_proc_set_of_itself() {
    let mut srp = Srp::new(NodeId(1), config(), PersistedState::default(), 7, T0).unwrap();

    assert_eq!(events(&mut srp), vec![persist(4)]);
    assert_eq!(sent(&mut srp), vec![to_all(join(1, &[1], &[], 4))]);
    assert_eq!(srp.state(), SrpState::Gather);
    // `join`: the next join follows after the join interval; `consensus` bounds the gather.
    assert_eq!(deadline(&srp, Timer::Join), Some(at(50)));
    assert_eq!(deadline(&srp, Timer::Consensus), Some(at(1200)));
    assert_eq!(srp.poll_timeout(), Some(at(50)));
}

/// Totem 4.1: a join whose sets are not contained in ours is merged (proc sets united) and a
/// new join with the union is multicast; consensus starts over with only ourselves.
#[test]
fn join_with_a_larger_proc_set_is_merged_and_a_join_with_the_union_is_sent() {
    let mut srp = fresh(1);

    recv(&mut srp, at(10), &join(2, &[2, 3], &[], 4));

    assert_eq!(sent(&mut srp), vec![to_all(join(1, &[1, 2, 3], &[], 4))]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.gather.proc_set, set(&[1, 2, 3]));
    assert_eq!(srp.gather.consensus, set(&[1]));
    // corosync restarts the consensus timer when the sets change.
    assert_eq!(deadline(&srp, Timer::Consensus), Some(at(10) + config().consensus));
}

/// A new ring's seq must exceed every member's: the highest ring seq heard in a join travels
/// on in our own joins.
#[test]
fn join_raises_the_ring_seq_our_joins_carry() {
    let mut srp = fresh(1);

    recv(&mut srp, at(10), &join(2, &[2], &[], 40));

    assert_eq!(sent(&mut srp), vec![to_all(join(1, &[1, 2], &[], 40))]);
}

/// Totem 4.1: a join whose sets are contained in ours changes nothing; the sender will adopt
/// our sets from our next join.
#[test]
fn join_with_a_smaller_proc_set_is_absorbed_silently() {
    let mut srp = gathering(1, &[1, 2, 3], &[]);

    recv(&mut srp, at(10), &join(2, &[1, 2], &[], 4));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(srp.gather.proc_set, set(&[1, 2, 3]));
    assert_eq!(srp.gather.consensus, set(&[1]));
}

/// Totem 4.1: a join with exactly our proc and fail sets is a vote of consensus; until every
/// candidate has voted nothing is sent.
#[test]
fn identical_join_records_consensus() {
    let mut srp = gathering(1, &[1, 2, 3], &[]);

    recv(&mut srp, at(10), &join(2, &[1, 2, 3], &[], 4));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.gather.consensus, set(&[1, 2]));
    assert_eq!(srp.state(), SrpState::Gather);
}

/// Totem 4.1/4.2: on consensus the representative (lowest id) creates the commit token for a
/// ring seq above any known one, fills its own entry and sends it to the next member on the
/// first rotation. The new ring seq is persisted before anything is sent.
#[test]
fn consensus_on_the_lowest_node_creates_a_commit_token_for_the_next_member() {
    let mut srp = gathering(1, &[1, 2, 3], &[]);
    srp.gather.consensus = set(&[1, 2]);

    recv(&mut srp, at(10), &join(3, &[1, 2, 3], &[], 4));

    let new = ring(8, 1);
    let mine = entry(ring(4, 1), 0, 0, 0);
    let expected =
        commit_token(new, &[1, 2, 3], vec![mine, CommitEntry::default(), CommitEntry::default()], 1, 1);
    assert_eq!(events(&mut srp), vec![persist(8)]);
    assert_eq!(sent(&mut srp), vec![to(2, Packet::CommitToken(expected))]);
    assert_eq!(srp.state(), SrpState::Commit);
    assert_eq!(deadline(&srp, Timer::Join), None);
    assert_eq!(deadline(&srp, Timer::Consensus), None);
    assert_eq!(deadline(&srp, Timer::TokenLoss), Some(at(10) + config().token));
    assert_eq!(deadline(&srp, Timer::TokenRetransmit), Some(at(10) + config().token_retransmit()));
}

/// Totem 4.1: only the representative creates the commit token; another node with full
/// consensus waits for it.
#[test]
fn consensus_on_a_node_that_is_not_the_lowest_waits_for_the_commit_token() {
    let mut srp = gathering(2, &[1, 2], &[]);

    recv(&mut srp, at(10), &join(1, &[1, 2], &[], 4));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.gather.consensus, set(&[1, 2]));
    assert_eq!(srp.state(), SrpState::Gather);
}

/// Totem 4.1: joins from a processor in our fail set are ignored while it is itself failing
/// others (its round is older than ours).
#[test]
fn join_from_a_node_in_the_fail_set_is_ignored() {
    let mut srp = gathering(1, &[1, 2, 3], &[3]);

    recv(&mut srp, at(10), &join(3, &[1, 2, 3, 4], &[2], 4));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(srp.gather.proc_set, set(&[1, 2, 3]));
    assert_eq!(srp.gather.fail_set, set(&[3]));
    assert_eq!(srp.gather.consensus, set(&[1]));
}

/// A node we failed that comes back with a fresh round (empty fail set) starts our round over:
/// otherwise rounds begun at different moments keep failing each other and merging rings
/// never meet (found by the simulator's swarm).
#[test]
fn fresh_join_from_a_failed_node_starts_the_round_over() {
    let mut srp = gathering(1, &[1, 2, 3], &[3]);

    recv(&mut srp, at(10), &join(3, &[1, 2, 3, 4], &[], 4));

    assert_eq!(sent(&mut srp), vec![to_all(join(1, &[1, 2, 3, 4], &[], 4))]);
    assert_eq!(srp.gather.proc_set, set(&[1, 2, 3, 4]));
    assert_eq!(srp.gather.fail_set, set(&[]));
}

/// corosync `memb_join_process`: a ring-mate that put us in its fail set goes into ours, else
/// the two would never agree; its proc set is not adopted.
#[test]
fn join_of_a_ring_mate_listing_us_in_its_fail_set_puts_the_sender_in_our_fail_set() {
    let mut srp = operational(2, &[1, 2, 3], 8, config());
    advance(&mut srp, at(1000));
    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2, 3], &[], 8))], "token loss: gather");

    recv(&mut srp, at(1010), &join(3, &[1, 3, 4], &[2], 8));

    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2, 3], &[3], 8))]);
    assert_eq!(srp.gather.proc_set, set(&[1, 2, 3]));
    assert_eq!(srp.gather.fail_set, set(&[3]));
}

/// A node outside our ring that lists us as failed speaks from an older round: its join is
/// ignored and our own consensus timeout decides about it (else two merging rings can fail
/// each other round after round).
#[test]
fn join_of_a_foreign_node_listing_us_in_its_fail_set_is_ignored() {
    let mut srp = gathering(1, &[1, 2, 3], &[]);

    recv(&mut srp, at(10), &join(3, &[2, 3, 4], &[1], 4));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(srp.gather.proc_set, set(&[1, 2, 3]));
    assert_eq!(srp.gather.fail_set, set(&[]));
}

/// corosync `memb_join_process` (`fail_minus_memb`): a node from another ring may not add
/// members of our last ring to our fail set; its other entries are adopted.
#[test]
fn foreign_node_may_not_fail_members_of_our_last_ring() {
    let mut srp = operational(2, &[1, 2], 8, config());
    advance(&mut srp, at(1000));
    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2], &[], 8))], "token loss: gather");

    recv(&mut srp, at(1010), &join(3, &[1, 2, 3, 4], &[1, 4], 8));

    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2, 3, 4], &[4], 8))]);
    assert_eq!(srp.gather.fail_set, set(&[4]));
}

/// A foreign node's claim about a node we heard from ourselves in this round is not adopted:
/// it comes from an older round of its own.
#[test]
fn foreign_claim_about_a_node_we_heard_is_not_adopted() {
    let mut srp = gathering(1, &[1, 2, 3, 4], &[]);
    recv(&mut srp, at(5), &join(4, &[1, 2, 3, 4], &[], 4));
    recv(&mut srp, at(10), &join(3, &[1, 2, 3, 4], &[2, 4], 4));
    assert_eq!(srp.gather.fail_set, set(&[2]));
}

/// corosync `memb_join_process`: a member of our last ring saw the same ring, so its fail set
/// is adopted whole.
#[test]
fn member_of_our_last_ring_may_fail_another_member() {
    let mut srp = operational(2, &[1, 2, 3], 8, config());
    advance(&mut srp, at(1000));
    drain(&mut srp);

    recv(&mut srp, at(1010), &join(3, &[1, 2, 3], &[1], 8));

    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2, 3], &[1], 8))]);
    assert_eq!(srp.gather.fail_set, set(&[1]));
}

/// A join of a member of our ring carrying a ring seq below that ring's predates it (a late
/// packet): it is counted as stale and changes nothing.
#[test]
fn join_older_than_our_ring_from_a_member_is_stale() {
    let mut srp = operational(2, &[1, 2, 3], 8, config());
    advance(&mut srp, at(1000));
    drain(&mut srp);
    let stale = srp.stats().dropped_stale;

    recv(&mut srp, at(1010), &join(3, &[3], &[1, 2], 4));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(srp.stats().dropped_stale, stale + 1);
    assert_eq!(srp.gather.fail_set, set(&[]));
}

/// Totem 4.1 / corosync `consensus`: when the consensus timeout expires, candidates that did
/// not agree are moved to the fail set, a join announces it and the timer restarts.
#[test]
fn consensus_timeout_fails_silent_nodes_and_restarts_the_timer() {
    let mut srp = gathering(1, &[1, 2, 3], &[]);
    srp.gather.consensus = set(&[1, 2]);
    let expiry = deadline(&srp, Timer::Consensus).unwrap();
    // The last join went out 40 ms ago; the next is not due yet.
    srp.timers.set(Timer::Join, expiry + ms(10));

    srp.handle_timeout(expiry);

    assert_eq!(sent(&mut srp), vec![to_all(join(1, &[1, 2, 3], &[3], 4))]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.gather.fail_set, set(&[3]));
    assert_eq!(srp.gather.consensus, set(&[1]));
    assert_eq!(srp.state(), SrpState::Gather);
    assert_eq!(deadline(&srp, Timer::Consensus), Some(expiry + config().consensus));
    assert_eq!(deadline(&srp, Timer::Join), Some(expiry + config().join));
}

/// Totem 4.1 / corosync memb_state_consensus_timeout_expired: consensus reached but no commit
/// token before the timeout starts consensus over; a representative that is gone stays silent
/// and is failed at the next timeout.
#[test]
fn consensus_timeout_after_agreement_without_a_commit_token_fails_the_representative() {
    let mut srp = gathering(2, &[1, 2, 3], &[]);
    srp.gather.consensus = set(&[1, 2, 3]);
    let expiry = deadline(&srp, Timer::Consensus).unwrap();
    srp.timers.set(Timer::Join, expiry + ms(10));

    srp.handle_timeout(expiry);

    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2, 3], &[], 4))]);
    assert_eq!(srp.gather.fail_set, set(&[]));
    assert_eq!(srp.gather.consensus, set(&[2]));

    // Node 3 answers again, the representative does not.
    srp.handle_datagram(expiry + ms(1), join(3, &[1, 2, 3], &[], 4).encode());
    let second = deadline(&srp, Timer::Consensus).unwrap();
    srp.timers.set(Timer::Join, second + ms(10));
    srp.handle_timeout(second);

    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2, 3], &[1], 4))]);
    assert_eq!(srp.gather.fail_set, set(&[1]));
    assert_eq!(srp.state(), SrpState::Gather);
}

/// A timer that fires late or twice does nothing (sans-IO contract: spurious wake-ups are
/// harmless).
#[test]
fn spurious_timeout_in_gather_does_nothing() {
    let mut srp = fresh(1);

    srp.handle_timeout(at(10));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.poll_timeout(), Some(at(50)));
}

/// Totem 4.1-4.3 with one processor: after the join interval the lone node is its own
/// consensus, and the commit token and recovery complete locally. The first regular
/// configuration has no transitional one before it; its ring seq is persisted first.
#[test]
fn lone_node_forms_a_one_node_ring_after_the_join_interval() {
    let mut srp = fresh(1);

    advance(&mut srp, at(49));
    assert_eq!(sent(&mut srp), vec![]);
    advance(&mut srp, at(50));

    assert_eq!(events(&mut srp), vec![persist(8), regular(ring(8, 1), &[1])]);
    assert_eq!(sent(&mut srp), vec![to_all(join(1, &[1], &[], 4))]);
    assert_eq!(srp.state(), SrpState::Operational);
    assert_eq!(srp.ring_id(), ring(8, 1));
    assert_eq!(srp.members(), ids(&[1]).as_slice());
    // A lone representative still looks for other rings every `merge` interval.
    assert_eq!(srp.poll_timeout(), Some(at(50) + config().merge));
}
