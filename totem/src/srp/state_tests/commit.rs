//! Commit state: the commit token's two rotations (Totem paper, section 4.2).

use super::*;

/// The old ring of these tests.
const R8: RingId = RingId { seq: 8, representative: NodeId(1) };
/// The ring the commit token installs.
const R12: RingId = RingId { seq: 12, representative: NodeId(1) };

/// Node 2 of ring 8 `[1, 2, 3]` holding seqs 1..=5 and 7 (delivered through 5), gathering
/// since its token loss at 1000 ms with proc set {1, 2, 3}.
fn member_gathering_after_ring_8() -> Srp {
    let mut srp = operational(2, &[1, 2, 3], 8, config());
    let held: Vec<Mcast> = [1, 2, 3, 4, 5, 7].iter().map(|&s| mcast(R8, s, 1, "m")).collect();
    receive_all(&mut srp, at(5), &held);
    advance(&mut srp, at(1000));
    drain(&mut srp);
    assert_eq!(srp.state(), SrpState::Gather);
    srp
}

/// Node 1's entry: it also held ring 8 through seq 5 and saw seq 7.
fn entry_of_1() -> CommitEntry {
    entry(R8, 5, 7, 5)
}

/// The first rotation's commit token as node 1 sends it to node 2.
fn first_rotation() -> CommitToken {
    commit_token(R12, &[1, 2, 3], vec![entry_of_1(), CommitEntry::default(), CommitEntry::default()], 1, 1)
}

/// Totem 4.2: a commit token whose members are our proc set minus fail set gets our entry
/// (old ring id, my_aru, high seq, high delivered) and goes to the next member; the new ring
/// seq is persisted first; join and consensus timers stop, token loss guards the commit.
#[test]
fn commit_token_matching_our_sets_gets_our_entry_and_is_forwarded() {
    let mut srp = member_gathering_after_ring_8();

    recv(&mut srp, at(1010), &Packet::CommitToken(first_rotation()));

    let filled = vec![entry_of_1(), entry(R8, 5, 7, 5), CommitEntry::default()];
    assert_eq!(events(&mut srp), vec![persist(12)]);
    assert_eq!(sent(&mut srp), vec![to(3, Packet::CommitToken(commit_token(R12, &[1, 2, 3], filled, 1, 2)))]);
    assert_eq!(srp.state(), SrpState::Commit);
    assert_eq!(deadline(&srp, Timer::Join), None);
    assert_eq!(deadline(&srp, Timer::Consensus), None);
    assert_eq!(deadline(&srp, Timer::TokenLoss), Some(at(1010) + config().token));
}

/// Totem 4.2: a commit token for a membership other than ours is not joined; we answer with
/// a join carrying its ring seq, so that its representative calls the attempt off at once.
#[test]
fn commit_token_with_other_members_is_dropped() {
    let mut srp = member_gathering_after_ring_8();
    let stale = srp.stats().dropped_stale;
    let other = commit_token(R12, &[1, 2], vec![entry_of_1(), CommitEntry::default()], 1, 1);

    recv(&mut srp, at(1010), &Packet::CommitToken(other));

    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2, 3], &[], 12))]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.stats().dropped_stale, stale + 1);
    assert_eq!(srp.state(), SrpState::Gather);
}

/// Ring ids only increase: a commit token whose ring seq is not above our ring's is stale.
#[test]
fn commit_token_not_above_our_ring_seq_is_dropped() {
    let mut srp = member_gathering_after_ring_8();
    let stale = srp.stats().dropped_stale;

    for seq in [8, 6] {
        let old = CommitToken { ring_id: wire(ring(seq, 1)), ..first_rotation() };
        recv(&mut srp, at(1010), &Packet::CommitToken(old));
    }

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.stats().dropped_stale, stale + 2);
    assert_eq!(srp.state(), SrpState::Gather);
}

/// A commit token of a ring attempt we gave up (token loss in commit) is stale, even when it
/// arrives late with matching members; a newer attempt is accepted.
#[test]
fn commit_token_of_an_abandoned_ring_is_dropped() {
    let mut srp = member_gathering_after_ring_8();
    recv(&mut srp, at(1010), &Packet::CommitToken(first_rotation()));
    advance(&mut srp, at(2010));
    assert_eq!(srp.state(), SrpState::Gather);
    drain(&mut srp);
    let stale = srp.stats().dropped_stale;

    recv(&mut srp, at(2020), &Packet::CommitToken(first_rotation()));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.stats().dropped_stale, stale + 1);
    assert_eq!(srp.state(), SrpState::Gather);

    let newer = CommitToken { ring_id: wire(ring(16, 1)), ..first_rotation() };
    recv(&mut srp, at(2030), &Packet::CommitToken(newer));
    assert_eq!(events(&mut srp), vec![persist(16)]);
    assert_eq!(srp.state(), SrpState::Commit);
}

/// corosync `token_retransmits_before_loss_const`: the commit token is re-sent every
/// `token_retransmit` while there is no sign of it; after `token` without one the ring
/// attempt is lost and the node gathers again (Totem 4.2: token loss in commit -> gather),
/// with the attempt's members in its proc set and its ring seq in its joins.
#[test]
fn token_loss_in_commit_returns_to_gather() {
    let mut srp = member_gathering_after_ring_8();
    recv(&mut srp, at(1010), &Packet::CommitToken(first_rotation()));
    let forwarded = sent(&mut srp);
    assert_eq!(forwarded.len(), 1);
    drain(&mut srp);

    advance(&mut srp, at(2010));

    let mut expected = vec![forwarded[0].clone(); 4];
    expected.push(to_all(join(2, &[1, 2, 3], &[], 12)));
    assert_eq!(sent(&mut srp), expected);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.stats().token_retransmits, 4);
    assert_eq!(srp.state(), SrpState::Gather);
    assert_eq!(deadline(&srp, Timer::TokenRetransmit), None);
    assert_eq!(deadline(&srp, Timer::Consensus), Some(at(2010) + config().consensus));
}

/// Totem 4.2: in commit, a copy of the first rotation (a retransmission) is stale.
#[test]
fn duplicate_first_rotation_in_commit_is_dropped() {
    let mut srp = member_gathering_after_ring_8();
    recv(&mut srp, at(1010), &Packet::CommitToken(first_rotation()));
    drain(&mut srp);
    let stale = srp.stats().dropped_stale;

    recv(&mut srp, at(1020), &Packet::CommitToken(first_rotation()));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(srp.stats().dropped_stale, stale + 1);
    assert_eq!(srp.state(), SrpState::Commit);
}

/// Totem 4.2: on the second rotation, with every entry filled, a member enters recovery and
/// passes the token on.
#[test]
fn second_rotation_takes_a_member_into_recovery() {
    let mut srp = member_gathering_after_ring_8();
    recv(&mut srp, at(1010), &Packet::CommitToken(first_rotation()));
    drain(&mut srp);
    let all = vec![entry_of_1(), entry(R8, 5, 7, 5), entry(R8, 7, 7, 7)];

    recv(&mut srp, at(1020), &Packet::CommitToken(commit_token(R12, &[1, 2, 3], all.clone(), 2, 1)));

    assert_eq!(sent(&mut srp), vec![to(3, Packet::CommitToken(commit_token(R12, &[1, 2, 3], all, 2, 2)))]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.state(), SrpState::Recovery);
    assert_eq!(srp.pending.as_ref().unwrap().transitional, ids(&[1, 2, 3]));
}

/// Totem 4.2: when the first rotation returns to the representative with every entry filled,
/// it enters recovery and starts the second rotation.
#[test]
fn first_rotation_back_at_the_representative_starts_the_second() {
    let mut srp = gathering(1, &[1, 2, 3], &[]);
    srp.gather.consensus = set(&[1, 2]);
    recv(&mut srp, at(10), &join(3, &[1, 2, 3], &[], 4));
    drain(&mut srp);
    let entries = vec![entry(ring(4, 1), 0, 0, 0), entry(ring(4, 2), 0, 0, 0), entry(ring(4, 3), 0, 0, 0)];
    let new = ring(8, 1);

    recv(&mut srp, at(20), &Packet::CommitToken(commit_token(new, &[1, 2, 3], entries.clone(), 1, 0)));

    assert_eq!(
        sent(&mut srp),
        vec![to(2, Packet::CommitToken(commit_token(new, &[1, 2, 3], entries, 2, 1)))]
    );
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.state(), SrpState::Recovery);
}
