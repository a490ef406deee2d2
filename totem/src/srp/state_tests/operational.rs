//! Operational state, the token visit and delivery: multicast under flow control, retransmit
//! requests, agreed and safe delivery (Totem paper, section 3; corosync's `totemsrp`).

use super::*;

/// The ring of these tests.
const R8: RingId = RingId { seq: 8, representative: NodeId(1) };

/// Node 2 of ring 8 `[1, 2, 3]`: the token comes from 1 and goes to 3.
fn member() -> Srp {
    operational(2, &[1, 2, 3], 8, config())
}

/// Submits agreed messages and drains what that causes (the token hold cancel).
fn submit_all(srp: &mut Srp, now: Instant, payloads: &[&'static str], guarantee: Guarantee) {
    for p in payloads {
        srp.submit(now, Bytes::from_static(p.as_bytes()), guarantee).unwrap();
    }
    drain(srp);
}

/// 1300 bytes: one message per packet (netmtu 1500).
static BIG: [u8; 1300] = [b'x'; 1300];

fn big() -> &'static str {
    std::str::from_utf8(&BIG).expect("ascii")
}

/// Totem 3: the token holder multicasts its queued messages, each packet taking the next seq;
/// small messages of one guarantee share a packet (corosync packs messages up to `netmtu`).
/// It raises the aru over its own packets, delivers the agreed ones and passes the token to
/// the next member with `token_seq + 1`, `seq` advanced and `fcc` counting its packets.
#[test]
fn token_visit_multicasts_queued_messages_packed_and_forwards_the_token() {
    let mut srp = member();
    submit_all(&mut srp, at(1), &["a", "b"], Guarantee::Agreed);
    submit_all(&mut srp, at(1), &["c"], Guarantee::Safe);

    recv(&mut srp, at(10), &Packet::Token(token(R8, 5, 0, 0, 0)));

    assert_eq!(
        sent(&mut srp),
        vec![
            to_all(Packet::Mcast(packed(R8, 1, 2, false, &["a", "b"]))),
            to_all(Packet::Mcast(packed(R8, 2, 2, true, &["c"]))),
            to(3, Packet::Token(Token { fcc: 2, ..token(R8, 6, 2, 2, 0) })),
        ]
    );
    assert_eq!(
        events(&mut srp),
        vec![delivery(R8, 1, 2, Guarantee::Agreed, "a"), delivery(R8, 1, 2, Guarantee::Agreed, "b")]
    );
    assert_eq!(srp.stats().token_rotations, 1);
}

/// Totem 3: a retransmit request for a seq we hold is served by re-sending the packet as
/// received, and the request leaves the token; one we cannot serve stays for others. The
/// aru owned by another node is left alone.
#[test]
fn retransmit_request_for_a_held_seq_is_served_and_removed_from_rtr() {
    let mut srp = member();
    receive_all(&mut srp, at(1), &[mcast(R8, 1, 1, "m1"), mcast(R8, 2, 1, "m2"), mcast(R8, 3, 1, "m3")]);
    let request = Token { rtr: vec![2, 4], ..token(R8, 5, 5, 1, 3) };

    recv(&mut srp, at(10), &Packet::Token(request));

    let forwarded = Token { rtr: vec![4], fcc: 1, ..token(R8, 6, 5, 1, 3) };
    let forwarded =
        Transmit { dest: Destination::Node(NodeId(3)), payload: Packet::Token(forwarded).encode() };
    assert_eq!(
        raw_transmits(&mut srp),
        vec![
            Transmit { dest: Destination::All, payload: Packet::Mcast(mcast(R8, 2, 1, "m2")).encode() },
            // Twice: the ring shows loss.
            forwarded.clone(),
            forwarded,
        ]
    );
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.stats().retransmits, 1);
}

/// corosync `miss_count_const`: a seq we miss is put on the token's rtr list only once it has
/// been found missing on `miss_count_const` visits (5), giving a late multicast time to arrive.
#[test]
fn missing_seq_is_requested_only_after_miss_count_const_visits() {
    let mut srp = member();
    receive_all(&mut srp, at(1), &[mcast(R8, 1, 1, "m1"), mcast(R8, 3, 1, "m3")]);

    let mut forwarded = Vec::new();
    for visit in 0..5u64 {
        recv(&mut srp, at(10 + visit), &Packet::Token(token(R8, 5 + 3 * visit, 3, 1, 2)));
        forwarded.push(sent(&mut srp));
    }

    // Each token goes twice: the gap at seq 2 shows loss on the ring.
    let expect = |visit: u64, rtr: Vec<u64>| {
        let forwarded = to(3, Packet::Token(Token { rtr, ..token(R8, 6 + 3 * visit, 3, 1, 2) }));
        vec![forwarded.clone(), forwarded]
    };
    assert_eq!(
        forwarded,
        vec![expect(0, vec![]), expect(1, vec![]), expect(2, vec![]), expect(3, vec![]), expect(4, vec![2])]
    );
}

/// Totem 3 (agreed order): a packet is delivered once every packet with a lower seq has been
/// delivered; out-of-order arrivals wait, then go in seq order.
#[test]
fn agreed_messages_are_delivered_in_seq_order_once_all_earlier_ones_are_held() {
    let mut srp = member();

    recv(&mut srp, at(1), &Packet::Mcast(mcast(R8, 2, 3, "b")));
    recv(&mut srp, at(2), &Packet::Mcast(mcast(R8, 3, 1, "c")));
    assert_eq!(events(&mut srp), vec![]);
    recv(&mut srp, at(3), &Packet::Mcast(mcast(R8, 1, 1, "a")));

    assert_eq!(
        events(&mut srp),
        vec![
            delivery(R8, 1, 1, Guarantee::Agreed, "a"),
            delivery(R8, 2, 3, Guarantee::Agreed, "b"),
            delivery(R8, 3, 1, Guarantee::Agreed, "c"),
        ]
    );
    assert_eq!(sent(&mut srp), vec![]);
}

/// A packet received twice is delivered once; the copy is counted as stale.
#[test]
fn duplicate_mcast_is_dropped() {
    let mut srp = member();
    receive_all(&mut srp, at(1), &[mcast(R8, 1, 1, "a")]);

    recv(&mut srp, at(2), &Packet::Mcast(mcast(R8, 1, 1, "a")));

    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.stats().dropped_stale, 1);
}

/// Totem 3 (safe order): a safe packet is delivered only when the token's aru has covered it
/// on two consecutive visits: only then has every member received it.
#[test]
fn safe_message_waits_until_the_aru_covers_it_on_two_consecutive_visits() {
    let mut srp = member();
    recv(&mut srp, at(1), &Packet::Mcast(safe_mcast(R8, 1, 1, "s")));
    assert_eq!(events(&mut srp), vec![]);

    recv(&mut srp, at(10), &Packet::Token(token(R8, 5, 1, 1, 0)));
    assert_eq!(events(&mut srp), vec![]);

    recv(&mut srp, at(20), &Packet::Token(token(R8, 8, 1, 1, 0)));
    assert_eq!(events(&mut srp), vec![delivery(R8, 1, 1, Guarantee::Safe, "s")]);
}

/// Totem 3 (safe order): an aru lowered by a member that lacks the packet restarts the count
/// of visits.
#[test]
fn safe_message_is_not_delivered_while_a_member_lacks_it() {
    let mut srp = member();
    recv(&mut srp, at(1), &Packet::Mcast(safe_mcast(R8, 1, 1, "s")));

    let visits =
        [token(R8, 5, 1, 1, 0), token(R8, 8, 1, 0, 3), token(R8, 11, 1, 1, 0), token(R8, 14, 1, 1, 0)];
    let mut delivered = Vec::new();
    for (i, t) in (0u64..).zip(visits) {
        recv(&mut srp, at(10 + i), &Packet::Token(t));
        delivered.push(events(&mut srp));
    }

    assert_eq!(delivered, vec![vec![], vec![], vec![], vec![delivery(R8, 1, 1, Guarantee::Safe, "s")]]);
}

/// corosync `max_messages` and `window_size`: one visit sends at most `max_messages` packets,
/// and no more than the window leaves after the rotation's `fcc` (our last visit's packets
/// taken out); the token carries the rest as backlog.
#[test]
fn flow_control_caps_a_visit_at_max_messages_and_a_rotation_at_window_size() {
    let mut cfg = config();
    cfg.max_messages = 3;
    cfg.window_size = 5;
    let mut srp = operational(2, &[1, 2, 3], 8, cfg);
    let big = big();
    submit_all(&mut srp, at(1), &[big; 10], Guarantee::Agreed);

    recv(&mut srp, at(10), &Packet::Token(token(R8, 5, 0, 0, 0)));

    let first: Vec<_> = (1..=3).map(|s| to_all(Packet::Mcast(mcast(R8, s, 2, big)))).collect();
    let mut expected = first;
    expected.push(to(3, Packet::Token(Token { fcc: 3, backlog: 7, ..token(R8, 6, 3, 3, 0) })));
    assert_eq!(sent(&mut srp), expected);

    // Node 3 then sent three packets of its own: 6 of the window of 5 are used this rotation.
    receive_all(&mut srp, at(11), &[mcast(R8, 4, 3, "n4"), mcast(R8, 5, 3, "n5"), mcast(R8, 6, 3, "n6")]);
    recv(&mut srp, at(20), &Packet::Token(Token { fcc: 6, backlog: 7, ..token(R8, 8, 6, 6, 0) }));

    let mut expected: Vec<_> = (7..=8).map(|s| to_all(Packet::Mcast(mcast(R8, s, 2, big)))).collect();
    expected.push(to(3, Packet::Token(Token { fcc: 5, backlog: 5, ..token(R8, 9, 8, 8, 0) })));
    assert_eq!(sent(&mut srp), expected);
}

/// corosync `window_size` (`fcc_calculate` bounds retransmissions too): re-sent packets count
/// against the window, so serving retransmit requests never takes `fcc` past `window_size`.
#[test]

fn retransmissions_never_take_fcc_past_window_size() {
    let mut cfg = config();
    cfg.max_messages = 3;
    cfg.window_size = 5;
    let mut srp = operational(2, &[1, 2, 3], 8, cfg);
    receive_all(&mut srp, at(1), &[mcast(R8, 1, 1, "m1"), mcast(R8, 2, 1, "m2"), mcast(R8, 3, 1, "m3")]);
    let request = Token { rtr: vec![1, 2, 3], fcc: 4, ..token(R8, 5, 3, 0, 3) };

    recv(&mut srp, at(10), &Packet::Token(request));

    let tokens: Vec<Token> = sent(&mut srp)
        .into_iter()
        .filter_map(|(_, p)| if let Packet::Token(t) = p { Some(t) } else { None })
        .collect();
    assert!(tokens.len() == 2 && tokens[0] == tokens[1], "one token, twice on a lossy ring");
    assert!(tokens[0].fcc <= 5, "fcc {} exceeds window_size 5", tokens[0].fcc);
    assert_eq!(tokens[0].rtr, vec![2, 3], "one retransmission fits the window");
}

/// Totem 3: a token whose `token_seq` is not above the last one accepted is a duplicate
/// (a retransmission that crossed the original) and is dropped without output.
#[test]
fn duplicate_token_is_dropped() {
    let mut srp = member();
    recv(&mut srp, at(10), &Packet::Token(token(R8, 5, 0, 0, 0)));
    drain(&mut srp);

    recv(&mut srp, at(11), &Packet::Token(token(R8, 5, 0, 0, 0)));
    recv(&mut srp, at(12), &Packet::Token(token(R8, 4, 0, 0, 0)));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(events(&mut srp), vec![]);
    assert_eq!(srp.stats().dropped_stale, 2);
    assert_eq!(srp.stats().token_rotations, 1);
}

/// A token of another ring is not ours to use: dropped and counted.
#[test]
fn token_of_another_ring_is_dropped() {
    let mut srp = member();

    recv(&mut srp, at(10), &Packet::Token(token(ring(12, 1), 5, 0, 0, 0)));

    assert_eq!(sent(&mut srp), vec![]);
    assert_eq!(srp.stats().dropped_stale, 1);
    assert_eq!(srp.state(), SrpState::Operational);
}

/// A node alone in its ring keeps the token: a submitted message is sent and delivered at
/// once (by a timer due at once, after the input at hand), with nothing passed on.
#[test]
fn lone_node_sends_and_delivers_a_submitted_message_at_once() {
    let mut srp = fresh(1);
    advance(&mut srp, at(50));
    drain(&mut srp);
    let lone = ring(8, 1);

    srp.submit(at(60), Bytes::from_static(b"x"), Guarantee::Agreed).unwrap();
    assert_eq!(deadline(&srp, Timer::Hold), Some(at(60)));
    advance(&mut srp, at(60));

    assert_eq!(sent(&mut srp), vec![to_all(Packet::Mcast(mcast(lone, 1, 1, "x")))]);
    assert_eq!(events(&mut srp), vec![delivery(lone, 1, 1, Guarantee::Agreed, "x")]);
}

/// Messages submitted while the node is still gathering wait in the send queue and go out
/// in the first ring, after its regular configuration.
#[test]
fn messages_submitted_before_the_first_ring_are_sent_in_it() {
    let mut srp = fresh(1);
    srp.submit(at(1), Bytes::from_static(b"early"), Guarantee::Agreed).unwrap();
    assert_eq!(sent(&mut srp), vec![]);

    advance(&mut srp, at(50));

    let lone = ring(8, 1);
    assert_eq!(
        events(&mut srp),
        vec![persist(8), regular(lone, &[1]), delivery(lone, 1, 1, Guarantee::Agreed, "early")]
    );
    assert_eq!(
        sent(&mut srp),
        vec![to_all(join(1, &[1], &[], 4)), to_all(Packet::Mcast(mcast(lone, 1, 1, "early")))]
    );
}

/// Totem 3 (safe order) in a ring of one: the node itself is every member, so a safe message
/// it sent is delivered once the (local) token has covered it on two visits; nothing else
/// must be needed to trigger the second visit.
#[test]

fn lone_node_delivers_a_safe_message_without_further_input() {
    let mut srp = fresh(1);
    advance(&mut srp, at(50));
    drain(&mut srp);
    let lone = ring(8, 1);

    srp.submit(at(60), Bytes::from_static(b"s"), Guarantee::Safe).unwrap();
    advance(&mut srp, at(60) + config().hold);

    assert_eq!(sent(&mut srp), vec![to_all(Packet::Mcast(safe_mcast(lone, 1, 1, "s")))]);
    assert_eq!(events(&mut srp), vec![delivery(lone, 1, 1, Guarantee::Safe, "s")]);
}

/// The packet sizes of the mcasts a token visit sent, and how many tokens it sent.
fn mcast_sizes(srp: &mut Srp) -> (Vec<usize>, usize) {
    let (mut sizes, mut tokens) = (Vec::new(), 0);
    for t in raw_transmits(srp) {
        match Packet::decode(t.payload.clone()) {
            Ok(Packet::Mcast(_)) => sizes.push(t.payload.len()),
            Ok(Packet::Token(_)) => tokens += 1,
            _ => {}
        }
    }
    (sizes, tokens)
}

/// `packet_max` (knet's large packets): on a ring without loss a message is cut into packets
/// of up to `packet_max`; once a token asks for a retransmission, packets are kept to
/// `netmtu` and the token is sent twice, until `LOSS_QUIET` passes without another request.
#[test]
fn packets_grow_to_packet_max_without_loss_and_shrink_to_netmtu_after_a_request() {
    let mut cfg = config();
    cfg.packet_max = 16 * 1024;
    let mut srp = operational(2, &[1, 2, 3], 8, cfg);
    let message = Bytes::from(vec![7; 40 * 1024]);
    srp.submit(at(1), message.clone(), Guarantee::Agreed).unwrap();
    drain(&mut srp);

    recv(&mut srp, at(10), &Packet::Token(token(R8, 5, 0, 0, 0)));
    let (sizes, tokens) = mcast_sizes(&mut srp);
    assert_eq!((sizes.len(), tokens), (3, 1), "40 KiB in packets of up to 16 KiB: {sizes:?}");
    assert!(sizes.iter().all(|&s| s <= 16 * 1024) && sizes[0] > 15 * 1024, "{sizes:?}");

    // A token asking for a seq this node does not hold: loss somewhere on the ring.
    srp.submit(at(11), message.clone(), Guarantee::Agreed).unwrap();
    drain(&mut srp);
    recv(&mut srp, at(20), &Packet::Token(Token { rtr: vec![99], ..token(R8, 8, 3, 3, 0) }));
    let (sizes, tokens) = mcast_sizes(&mut srp);
    assert!(sizes.len() >= 30 && sizes.iter().all(|&s| s <= 1500), "{sizes:?}");
    assert_eq!(tokens, 2, "the token twice on a lossy ring");

    // LOSS_QUIET after the last request, packets are large again.
    srp.submit(at(21), message, Guarantee::Agreed).unwrap();
    drain(&mut srp);
    let quiet = at(20) + crate::config::LOSS_QUIET;
    let seq = 3 + 31;
    recv(&mut srp, quiet, &Packet::Token(token(R8, 11, seq, seq, 0)));
    let (sizes, tokens) = mcast_sizes(&mut srp);
    assert_eq!((sizes.len(), tokens), (3, 1), "{sizes:?}");
}
