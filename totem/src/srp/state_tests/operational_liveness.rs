//! Operational state, keeping the ring alive: holding the idle token, token retransmission,
//! token loss, failure to receive and merge detection (Totem paper, sections 3 and 4;
//! corosync's `hold`, `token_retransmit`, `fail_recv_const`, `merge` options).

use super::*;

/// The ring of these tests.
const R8: RingId = RingId { seq: 8, representative: NodeId(1) };

/// Node 2 of ring 8 `[1, 2, 3]`: the token comes from 1 and goes to 3.
fn member() -> Srp {
    operational(2, &[1, 2, 3], 8, config())
}

/// `seqno_unchanged_const` = 2 and a `merge` interval longer than these tests.
fn hold_config() -> TotemConfig {
    TotemConfig { seqno_unchanged_const: 2, merge: ms(500), ..config() }
}

/// Node 1, representative of ring 8 `[1, 2, 3]`, after two idle visits (at 10 and 20 ms):
/// it holds the token of `token_seq` 6.
fn holding_representative() -> Srp {
    let mut srp = operational(1, &[1, 2, 3], 8, hold_config());
    recv(&mut srp, at(10), &Packet::Token(token(R8, 3, 0, 0, 0)));
    recv(&mut srp, at(20), &Packet::Token(token(R8, 6, 0, 0, 0)));
    drain(&mut srp);
    assert!(srp.tok.held.is_some());
    srp
}

/// corosync `seqno_unchanged_const` and `hold`: after that many rotations without new
/// packets the representative holds the token for `hold` instead of passing it at once.
#[test]
fn idle_representative_holds_the_token_after_seqno_unchanged_const_rotations() {
    let mut srp = operational(1, &[1, 2, 3], 8, hold_config());

    recv(&mut srp, at(10), &Packet::Token(token(R8, 3, 0, 0, 0)));
    assert_eq!(sent(&mut srp), vec![to(2, Packet::Token(token(R8, 4, 0, 0, 0)))]);

    recv(&mut srp, at(20), &Packet::Token(token(R8, 6, 0, 0, 0)));
    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(srp.tok.held, Some(token(R8, 6, 0, 0, 0)));
    assert_eq!(deadline(&srp, Timer::Hold), Some(at(20) + config().effective_hold()));
}

/// corosync `hold`: the held token is passed on when the hold expires.
#[test]
fn held_token_is_passed_on_when_the_hold_expires() {
    let mut srp = holding_representative();

    advance(&mut srp, at(20) + config().effective_hold());

    assert_eq!(sent(&mut srp), vec![to(2, Packet::Token(token(R8, 7, 0, 0, 0)))]);
    assert_eq!(srp.tok.held, None);
}

/// corosync `token_hold_cancel`: a member with messages to send makes the representative
/// release the held token at once.
#[test]
fn token_hold_cancel_releases_the_held_token() {
    let mut srp = holding_representative();

    recv(&mut srp, at(30), &Packet::TokenHoldCancel(notice(2, R8)));

    assert_eq!(sent(&mut srp), vec![to(2, Packet::Token(token(R8, 7, 0, 0, 0)))]);
    assert_eq!(srp.tok.held, None);
    assert_eq!(deadline(&srp, Timer::Hold), None);
}

/// A message submitted on the representative uses the token it holds at once: by a timer due
/// at once, so that whatever else the same input submits goes in the same visit.
#[test]
fn local_submit_releases_the_held_token() {
    let mut srp = holding_representative();

    srp.submit(at(30), Bytes::from_static(b"x"), Guarantee::Agreed).unwrap();
    assert_eq!(sent(&mut srp), vec![], "not before the input at hand is taken");
    assert_eq!(deadline(&srp, Timer::Hold), Some(at(30)));
    srp.submit(at(30), Bytes::from_static(b"y"), Guarantee::Agreed).unwrap();
    advance(&mut srp, at(30));

    assert_eq!(
        sent(&mut srp),
        vec![
            to_all(Packet::Mcast(Mcast {
                fragments: vec![fragment("x"), fragment("y")],
                ..mcast(R8, 1, 1, "x")
            })),
            to(2, Packet::Token(Token { fcc: 1, ..token(R8, 8, 1, 1, 0) })),
        ]
    );
    assert_eq!(
        events(&mut srp),
        vec![delivery(R8, 1, 1, Guarantee::Agreed, "x"), delivery(R8, 1, 1, Guarantee::Agreed, "y")]
    );
    assert_eq!(srp.tok.held, None);
}

/// corosync `token_hold_cancel_send`: a member that gets messages to send asks the
/// representative, once until its next token visit, to stop holding the token.
#[test]
fn member_with_new_messages_sends_one_token_hold_cancel() {
    let mut srp = member();

    srp.submit(at(1), Bytes::from_static(b"a"), Guarantee::Agreed).unwrap();
    assert_eq!(sent(&mut srp), vec![to_all(Packet::TokenHoldCancel(notice(2, R8)))]);

    srp.submit(at(2), Bytes::from_static(b"b"), Guarantee::Agreed).unwrap();
    assert_eq!(sent(&mut srp), vec![]);
}

/// corosync `merge`: the representative multicasts a merge detect for its ring every `merge`
/// interval so that other rings in reach find it.
#[test]
fn representative_sends_merge_detect_every_merge_interval() {
    let mut srp = operational(1, &[1, 2, 3], 8, config());

    advance(&mut srp, at(200));

    assert_eq!(sent(&mut srp), vec![to_all(Packet::MergeDetect(notice(1, R8)))]);
    assert_eq!(deadline(&srp, Timer::Merge), Some(at(400)));
}

/// Totem 4 (merging rings): a merge detect from another ring sends the node to gather with
/// its ring's members and the sender in the proc set.
#[test]
fn merge_detect_from_another_ring_enters_gather_with_the_sender() {
    let mut srp = member();

    recv(&mut srp, at(10), &Packet::MergeDetect(notice(5, ring(20, 5))));

    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2, 3, 5], &[], 8))]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.state(), SrpState::Gather);
    assert_eq!(srp.gather.proc_set, set(&[1, 2, 3, 5]));
    assert_eq!(deadline(&srp, Timer::TokenLoss), None);
}

/// A merge detect for our own ring changes nothing; one from a member of our ring announcing
/// an older ring is a late packet, counted as stale.
#[test]
fn merge_detect_of_our_ring_or_an_older_one_of_a_member_is_ignored() {
    let mut srp = member();

    recv(&mut srp, at(10), &Packet::MergeDetect(notice(1, R8)));
    assert_eq!(srp.stats().dropped_stale, 0);
    recv(&mut srp, at(11), &Packet::MergeDetect(notice(3, ring(4, 3))));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(srp.stats().dropped_stale, 1);
    assert_eq!(srp.state(), SrpState::Operational);
}

/// Totem 4: a multicast of another ring reveals that ring: gather, with the sender.
#[test]
fn mcast_from_a_foreign_ring_enters_gather_with_the_sender() {
    let mut srp = member();

    recv(&mut srp, at(10), &Packet::Mcast(mcast(ring(20, 5), 1, 5, "f")));

    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2, 3, 5], &[], 8))]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.state(), SrpState::Gather);
}

/// Totem 4.1: a join received while operational starts a membership change: gather with the
/// sender added; the join's sets are then processed like any other.
#[test]
fn join_in_operational_enters_gather_with_the_sender() {
    let mut srp = member();

    recv(&mut srp, at(10), &join(4, &[4, 5], &[], 12));

    assert_eq!(
        sent(&mut srp),
        vec![to_all(join(2, &[1, 2, 3, 4], &[], 12)), to_all(join(2, &[1, 2, 3, 4, 5], &[], 12))]
    );
    assert_eq!(srp.state(), SrpState::Gather);
}

/// Totem 4 / corosync `token`: no token for `token` means the ring is lost: gather, with the
/// ring's members as the proc set.
#[test]
fn token_loss_enters_gather() {
    let mut srp = member();

    advance(&mut srp, at(1000));

    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2, 3], &[], 8))]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.state(), SrpState::Gather);
    assert_eq!(deadline(&srp, Timer::TokenLoss), None);
    assert_eq!(deadline(&srp, Timer::Consensus), Some(at(1000) + config().consensus));
}

/// corosync `token_retransmit`: a token passed on with no sign of it downstream (a packet
/// sequenced after it, or the token's return) is re-sent unchanged after `token_retransmit`.
#[test]
fn token_is_retransmitted_after_token_retransmit_without_sign_downstream() {
    let mut srp = member();
    recv(&mut srp, at(10), &Packet::Token(token(R8, 5, 0, 0, 0)));
    let forwarded = raw_transmits(&mut srp);
    assert_eq!(forwarded.len(), 1);
    let retransmit = config().token_retransmit();

    advance(&mut srp, at(10) + retransmit);

    assert_eq!(raw_transmits(&mut srp), forwarded);
    assert_eq!(srp.stats().token_retransmits, 1);
    assert_eq!(deadline(&srp, Timer::TokenRetransmit), Some(at(10) + retransmit + retransmit));
}

/// corosync `token_retransmit`: a packet sequenced after our visit proves the next node got
/// the token: no retransmission.
#[test]
fn mcast_sequenced_downstream_stops_token_retransmission() {
    let mut srp = member();
    recv(&mut srp, at(10), &Packet::Token(token(R8, 5, 0, 0, 0)));
    drain(&mut srp);

    recv(&mut srp, at(11), &Packet::Mcast(mcast(R8, 1, 3, "n")));
    advance(&mut srp, at(10) + config().token_retransmit());

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(deadline(&srp, Timer::TokenRetransmit), None);
    assert_eq!(srp.stats().token_retransmits, 0);
}

/// corosync `fail_recv_const`: when the token's aru stays stuck below its seq with the same
/// owner for `fail_recv_const` rotations, the owner cannot receive: it goes to the fail set
/// and the ring reforms without it.
#[test]
fn fail_recv_const_rotations_with_a_stuck_aru_fail_its_owner() {
    let cfg = TotemConfig { fail_recv_const: 3, ..config() };
    let mut srp = operational(2, &[1, 2, 3], 8, cfg);
    let held: Vec<Mcast> = (1..=5).map(|s| mcast(R8, s, 1, "m")).collect();
    receive_all(&mut srp, at(1), &held);

    let mut outputs = Vec::new();
    for visit in 0..4u64 {
        recv(&mut srp, at(10 + visit), &Packet::Token(token(R8, 5 + 3 * visit, 5, 2, 3)));
        outputs.push(sent(&mut srp));
    }

    let forward = |visit: u64| vec![to(3, Packet::Token(token(R8, 6 + 3 * visit, 5, 2, 3)))];
    assert_eq!(outputs, vec![forward(0), forward(1), forward(2), vec![to_all(join(2, &[1, 2, 3], &[3], 8))]]);
    assert_eq!(srp.state(), SrpState::Gather);
    assert_eq!(srp.gather.fail_set, set(&[3]));
    assert!(srp.take_clean_leavers().is_empty(), "a node that cannot receive did not leave cleanly");
}

/// A clean leave (shutdown): the leaver tells the ring twice and ignores everything after.
#[test]
fn leave_sends_a_leave_notice_and_ignores_later_input() {
    let mut srp = operational(2, &[1, 2, 3], 8, config());
    srp.leave(at(10));
    let leave = to_all(Packet::Leave(notice(2, R8)));
    assert_eq!(sent(&mut srp), vec![leave.clone(), leave]);
    assert!(srp.has_left());
    assert_eq!(srp.poll_timeout(), None);
    recv(&mut srp, at(20), &join(3, &[1, 2, 3], &[], 8));
    advance(&mut srp, at(5000));
    assert_eq!(sent(&mut srp), vec![]);
}

/// A member that left cleanly is failed at once: gather starts with it in the fail set, no
/// token timeout needed.
#[test]
fn leave_of_a_member_enters_gather_with_it_failed() {
    let mut srp = operational(2, &[1, 2, 3], 8, config());
    recv(&mut srp, at(10), &Packet::Leave(notice(3, R8)));
    assert_eq!(srp.state(), SrpState::Gather);
    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2, 3], &[3], 8))]);
    assert_eq!(srp.gather.fail_set, set(&[3]));
    assert_eq!(srp.take_clean_leavers(), set(&[3]), "a leave is remembered as clean");
    assert!(srp.take_clean_leavers().is_empty(), "taken once");
}

/// A member the network reports unreachable (ICMP port unreachable: no daemon listens) is
/// failed at once like a leaver, but it is not a clean leaver (it is fenced).
#[test]
fn an_unreachable_member_is_failed_at_once_and_is_not_a_clean_leaver() {
    let mut srp = operational(2, &[1, 2, 3], 8, config());
    srp.handle_peer_unreachable(at(10), NodeId(3));
    assert_eq!(srp.state(), SrpState::Gather);
    assert_eq!(sent(&mut srp), vec![to_all(join(2, &[1, 2, 3], &[3], 8))]);
    assert_eq!(srp.gather.fail_set, set(&[3]));
    assert!(srp.take_clean_leavers().is_empty());
    // Reported again while gathering: nothing changes.
    srp.handle_peer_unreachable(at(11), NodeId(3));
    assert_eq!(sent(&mut srp), vec![]);
}

/// Reports about non-members or this node change nothing.
#[test]
fn unreachable_reports_about_strangers_or_self_are_ignored() {
    let mut srp = operational(2, &[1, 2, 3], 8, config());
    srp.handle_peer_unreachable(at(10), NodeId(9));
    srp.handle_peer_unreachable(at(10), NodeId(2));
    assert_eq!(srp.state(), SrpState::Operational);
    assert_eq!(sent(&mut srp), vec![]);
}

/// Alone after the report, a node forms its own ring without waiting for the token or the
/// consensus timeout (only short timers such as the token hold may run).
#[test]
fn the_last_survivor_of_an_unreachable_peer_forms_a_ring_without_timeouts() {
    let mut srp = operational(1, &[1, 2], 8, config());
    srp.handle_peer_unreachable(at(10), NodeId(2));
    let mut now = at(10);
    while srp.state() != SrpState::Operational && now < at(110) {
        let out = sent(&mut srp);
        if out.is_empty() {
            match srp.poll_timeout() {
                Some(next) if next < at(110) => {
                    now = next;
                    srp.handle_timeout(now);
                }
                _ => break,
            }
        }
        for (_, packet) in out {
            recv(&mut srp, now, &packet);
        }
    }
    assert_eq!(srp.state(), SrpState::Operational, "no ring within 100 ms");
    assert_eq!(srp.members(), &ids(&[1]));
    assert!(config().consensus > ms(100) && config().token > ms(100));
}

/// A member already failed (its port answered unreachable first) that then says goodbye left
/// cleanly: it is a clean leaver, and the round is not restarted.
#[test]
fn a_leave_after_an_unreachable_report_still_counts_as_clean() {
    let mut srp = operational(2, &[1, 2, 3], 8, config());
    srp.handle_peer_unreachable(at(10), NodeId(3));
    drain(&mut srp);
    recv(&mut srp, at(11), &Packet::Leave(notice(3, R8)));
    assert_eq!(sent(&mut srp), vec![], "nothing new to say");
    assert_eq!(srp.take_clean_leavers(), set(&[3]));
}
