//! Recovery state: old-ring packets re-sent inside the new ring, then the transitional and
//! regular configurations (Totem paper, section 4.3; extended virtual synchrony).

use super::*;

/// The old ring of these tests.
const R8: RingId = RingId { seq: 8, representative: NodeId(1) };
/// The ring being installed.
const R12: RingId = RingId { seq: 12, representative: NodeId(1) };

const PAYLOADS: [&str; 8] = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7"];

/// Old-ring packet `seq`, sent by node 1.
fn old(seq: u64) -> Mcast {
    mcast(R8, seq, 1, PAYLOADS[usize::try_from(seq).unwrap()])
}

/// Node `id` of ring 8 `[1, 2, 3]` holding old packets `held`, in recovery of ring 12
/// `[1, 2, 3]` where the other members reported `others`.
fn recovering(id: u32, held: &[u64], others: &[(u32, CommitEntry)]) -> (Srp, Instant) {
    let mut srp = operational(id, &[1, 2, 3], 8, config());
    let packets: Vec<Mcast> = held.iter().map(|&s| old(s)).collect();
    receive_all(&mut srp, at(5), &packets);
    let now = into_recovery(&mut srp, R12, &[1, 2, 3], others);
    (srp, now)
}

/// Totem 4.3: of the members coming from one old ring, the one with the highest aru re-sends
/// every old packet above the lowest aru, each wrapped in a new-ring packet (`recovered`),
/// within the flow-control limits of its token visit.
#[test]
fn member_with_the_highest_aru_resends_old_packets_above_the_lowest_aru() {
    let others = [(1, entry(R8, 5, 6, 5)), (3, entry(R8, 3, 7, 3))];
    let (mut srp, now) = recovering(2, &[1, 2, 3, 4, 5, 6, 7], &others);

    recv(&mut srp, now + ms(1), &Packet::Token(token(R12, 2, 0, 0, 0)));

    let expected_token = Token { fcc: 4, ..token(R12, 3, 4, 4, 0) };
    assert_eq!(
        sent(&mut srp),
        vec![
            to_all(Packet::Mcast(recovered(R12, 1, 2, old(4)))),
            to_all(Packet::Mcast(recovered(R12, 2, 2, old(5)))),
            to_all(Packet::Mcast(recovered(R12, 3, 2, old(6)))),
            to_all(Packet::Mcast(recovered(R12, 4, 2, old(7)))),
            to(3, Packet::Token(expected_token)),
        ]
    );
    assert_eq!(events(&mut srp), vec![]);
}

/// Totem 4.3: every other member re-sends the old packets it holds above the highest aru
/// (nobody else is sure to have them).
#[test]
fn other_member_resends_what_it_holds_above_the_highest_aru() {
    let others = [(1, entry(R8, 5, 5, 5)), (2, entry(R8, 6, 6, 6))];
    let (mut srp, now) = recovering(3, &[1, 2, 3, 7], &others);

    recv(&mut srp, now + ms(1), &Packet::Token(token(R12, 3, 0, 0, 0)));

    let expected_token = Token { fcc: 1, ..token(R12, 4, 1, 1, 0) };
    assert_eq!(
        sent(&mut srp),
        vec![to_all(Packet::Mcast(recovered(R12, 1, 3, old(7)))), to(1, Packet::Token(expected_token))]
    );
}

/// Totem 4.3: while the queue of old packets exceeds the visit's share, the token says so
/// (`retrans_flg`) so that the representative does not end recovery.
#[test]
fn member_with_old_packets_left_sets_retrans_flg() {
    let others = [(1, entry(R8, 0, 0, 0)), (3, entry(R8, 0, 0, 0))];
    let mut cfg = config();
    cfg.max_messages = 2;
    let mut srp = operational(2, &[1, 2, 3], 8, cfg);
    receive_all(&mut srp, at(5), &[old(1), old(2), old(3)]);
    let now = into_recovery(&mut srp, R12, &[1, 2, 3], &others);

    recv(&mut srp, now + ms(1), &Packet::Token(token(R12, 2, 0, 0, 0)));

    let expected_token = Token { fcc: 2, backlog: 1, retrans_flg: true, ..token(R12, 3, 2, 2, 0) };
    assert_eq!(
        sent(&mut srp),
        vec![
            to_all(Packet::Mcast(recovered(R12, 1, 2, old(1)))),
            to_all(Packet::Mcast(recovered(R12, 2, 2, old(2)))),
            to(3, Packet::Token(expected_token)),
        ]
    );
}

/// Totem 4.3: an old packet of our old ring received inside a recovery packet joins the old
/// ring's buffer (it will be delivered in the transitional configuration); one of another
/// old ring does not.
#[test]
fn recovery_packet_for_our_old_ring_fills_the_old_buffer() {
    let others = [(1, entry(R8, 5, 5, 5)), (2, entry(R8, 6, 6, 6))];
    let (mut srp, now) = recovering(3, &[1, 2, 3, 7], &others);

    recv(&mut srp, now + ms(1), &Packet::Mcast(recovered(R12, 1, 2, old(4))));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.buffer.my_aru, 4);
    assert_eq!(srp.buffer.get(4).map(|s| s.mcast.clone()), Some(old(4)));
    assert_eq!(srp.pending.as_ref().unwrap().buffer.my_aru, 1);

    let foreign = mcast(ring(10, 4), 5, 4, "x");
    recv(&mut srp, now + ms(2), &Packet::Mcast(recovered(R12, 2, 1, foreign)));

    assert_eq!(sent(&mut srp), vec![]);
    assert!(!srp.buffer.contains(5));
    assert_eq!(srp.buffer.len(), 5, "old ring: seqs 1 to 4 and 7");
    assert_eq!(srp.pending.as_ref().unwrap().buffer.my_aru, 2);
}

/// Extended virtual synchrony (Totem 4.3): on `recovery_done` a member delivers the
/// transitional configuration (old ring id, the old ring's members moving on), then the old
/// ring's undelivered messages (safe ones included: every transitional member holds them),
/// then the new regular configuration, and passes the token on.
#[test]
fn recovery_done_delivers_transitional_then_old_messages_then_regular() {
    let mut srp = operational(2, &[1, 2, 3], 8, config());
    let held = [mcast(R8, 1, 1, "a"), safe_mcast(R8, 2, 3, "b"), mcast(R8, 3, 1, "c")];
    receive_all(&mut srp, at(5), &held);
    assert_eq!(srp.buffer.delivered, 1, "the safe message and the one after it wait");
    let now = into_recovery(&mut srp, R12, &[1, 2], &[(1, entry(R8, 3, 3, 1))]);

    let done = Token { recovery_done: true, ..token(R12, 4, 0, 0, 0) };
    recv(&mut srp, now + ms(1), &Packet::Token(done.clone()));

    assert_eq!(
        events(&mut srp),
        vec![
            transitional(R8, &[1, 2]),
            delivery(R8, 2, 3, Guarantee::Safe, "b"),
            delivery(R8, 3, 1, Guarantee::Agreed, "c"),
            regular(R12, &[1, 2]),
        ]
    );
    assert_eq!(sent(&mut srp), vec![to(1, Packet::Token(Token { token_seq: 5, ..done }))]);
    assert_eq!(srp.state(), SrpState::Operational);
    assert_eq!(srp.ring_id(), R12);
    assert_eq!(srp.members(), ids(&[1, 2]).as_slice());
}

/// Extended virtual synchrony: past a gap nobody in the transitional configuration can fill,
/// only messages whose sender is in the transitional configuration are delivered (others may
/// depend causally on the missing one).
#[test]
fn past_a_gap_only_messages_of_transitional_members_are_delivered() {
    let mut srp = operational(2, &[1, 2, 3, 4], 8, config());
    let held = [mcast(R8, 1, 1, "a"), mcast(R8, 3, 4, "c"), mcast(R8, 4, 3, "d")];
    receive_all(&mut srp, at(5), &held);
    let others = [(1, entry(R8, 1, 4, 1)), (3, entry(R8, 1, 4, 1))];
    let now = into_recovery(&mut srp, R12, &[1, 2, 3], &others);

    let done = Token { recovery_done: true, ..token(R12, 4, 0, 0, 0) };
    recv(&mut srp, now + ms(1), &Packet::Token(done));

    assert_eq!(
        events(&mut srp),
        vec![
            transitional(R8, &[1, 2, 3]),
            delivery(R8, 4, 3, Guarantee::Agreed, "d"),
            regular(R12, &[1, 2, 3]),
        ]
    );
}

/// Node 1, representative of ring 8 `[1, 2, 3]`, through gather and both commit token
/// rotations of ring 12 with nodes 2 and 3 reporting an empty ring 8; outputs drained.
fn representative_in_recovery() -> (Srp, Instant) {
    let mut srp = operational(1, &[1, 2, 3], 8, config());
    advance(&mut srp, at(1000));
    recv(&mut srp, at(1001), &join(2, &[1, 2, 3], &[], 8));
    recv(&mut srp, at(1001), &join(3, &[1, 2, 3], &[], 8));
    let Some((_, Packet::CommitToken(first))) = sent(&mut srp).pop() else { panic!("commit token created") };
    assert_eq!(first.ring_id, wire(R12));
    let entries = vec![first.entries[0].clone(), entry(R8, 0, 0, 0), entry(R8, 0, 0, 0)];
    recv(&mut srp, at(1002), &Packet::CommitToken(commit_token(R12, &[1, 2, 3], entries, 1, 0)));
    assert_eq!(srp.state(), SrpState::Recovery);
    drain(&mut srp);
    (srp, at(1002))
}

/// Totem 4.2: when the second rotation returns to the representative it creates the new
/// ring's first token and passes it on.
#[test]
fn second_rotation_back_at_the_representative_creates_the_first_token() {
    let (mut srp, now) = representative_in_recovery();
    let entries = vec![entry(R8, 0, 0, 0); 3];

    recv(&mut srp, now + ms(1), &Packet::CommitToken(commit_token(R12, &[1, 2, 3], entries, 2, 0)));

    assert_eq!(sent(&mut srp), vec![to(2, Packet::Token(token(R12, 2, 0, 0, 0)))]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.state(), SrpState::Recovery);
}

/// Totem 4.3: the representative ends recovery once a rotation passes in which nobody sent
/// anything, nobody has old packets left and every member holds every packet (the creation
/// visit counts as the first stable one); the token carries `recovery_done` on.
#[test]
fn representative_completes_recovery_after_a_quiet_rotation() {
    let (mut srp, now) = representative_in_recovery();
    let entries = vec![entry(R8, 0, 0, 0); 3];
    recv(&mut srp, now + ms(1), &Packet::CommitToken(commit_token(R12, &[1, 2, 3], entries, 2, 0)));
    drain(&mut srp);

    recv(&mut srp, now + ms(2), &Packet::Token(token(R12, 4, 0, 0, 0)));

    assert_eq!(events(&mut srp), vec![transitional(R8, &[1, 2, 3]), regular(R12, &[1, 2, 3])]);
    let done = Token { recovery_done: true, ..token(R12, 5, 0, 0, 0) };
    assert_eq!(sent(&mut srp), vec![to(2, Packet::Token(done))]);
    assert_eq!(srp.state(), SrpState::Operational);
}

/// Totem 4.3: while members still re-send old packets (seq grows or `retrans_flg` is set) the
/// representative keeps recovery going.
#[test]
fn representative_waits_while_members_resend_old_packets() {
    let (mut srp, now) = representative_in_recovery();
    let entries = vec![entry(R8, 0, 0, 0); 3];
    recv(&mut srp, now + ms(1), &Packet::CommitToken(commit_token(R12, &[1, 2, 3], entries, 2, 0)));
    drain(&mut srp);

    let flagged = Token { retrans_flg: true, ..token(R12, 4, 0, 0, 0) };
    recv(&mut srp, now + ms(2), &Packet::Token(flagged));
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(sent(&mut srp), vec![to(2, Packet::Token(token(R12, 5, 0, 0, 0)))]);

    recv(&mut srp, now + ms(3), &Packet::Mcast(recovered(R12, 1, 2, mcast(R8, 1, 2, "x"))));
    recv(&mut srp, now + ms(4), &Packet::Token(token(R12, 7, 1, 1, 0)));
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(sent(&mut srp), vec![to(2, Packet::Token(token(R12, 8, 1, 1, 0)))]);
    assert_eq!(srp.state(), SrpState::Recovery);
}
