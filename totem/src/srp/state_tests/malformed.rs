//! Malformed input in any state: input from a peer never fails the caller; it is counted
//! (`dropped_checksum`, `dropped_malformed`) and dropped without any output or state change
//! (CONVENTIONS.md, "Errors").

use bytes::{BufMut, BytesMut};

use super::*;
use crate::rng::Rng;
use crate::wire::WIRE_VERSION;

/// A frame with any version, kind and body and a correct crc.
fn frame(version: u8, kind: u8, body: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(version);
    buf.put_u8(kind);
    buf.put_slice(body);
    let crc = crc32fast::hash(&buf);
    buf.put_u32_le(crc);
    buf.freeze()
}

/// A node in each state, with the time it reached it: gathering, commit, recovery,
/// operational (member and representative).
fn nodes() -> Vec<(Srp, Instant)> {
    let mut commit = gathering(2, &[1, 2], &[]);
    let first = vec![entry(ring(4, 1), 0, 0, 0), CommitEntry::default()];
    recv(&mut commit, at(1), &Packet::CommitToken(commit_token(ring(8, 1), &[1, 2], first, 1, 1)));
    assert_eq!(commit.state(), SrpState::Commit);
    drain(&mut commit);
    let mut recovery = operational(2, &[1, 2, 3], 8, config());
    let old = ring(8, 1);
    let others = [(1, entry(old, 0, 0, 0)), (3, entry(old, 0, 0, 0))];
    let recovering_since = into_recovery(&mut recovery, ring(12, 1), &[1, 2, 3], &others);
    vec![
        (gathering(1, &[1, 2], &[]), at(1)),
        (commit, at(2)),
        (recovery, recovering_since + ms(1)),
        (operational(2, &[1, 2, 3], 8, config()), at(1)),
        (operational(1, &[1, 2], 8, config()), at(1)),
    ]
}

/// Feeds `datagrams` to every node of [`nodes`] and checks that nothing came out and nothing
/// changed but the counters; returns the drop counters, the same in every state.
fn feed_to_each_state(datagrams: &[Bytes]) -> (u64, u64) {
    let mut drops = Vec::new();
    for (mut srp, now) in nodes() {
        let (state, timeout, ring_id) = (srp.state(), srp.poll_timeout(), srp.ring_id());
        let received = srp.stats().packets_received;
        for d in datagrams {
            srp.handle_datagram(now, d.clone());
        }
        assert_eq!(sent(&mut srp), vec![], "state {state:?}");
        assert_eq!(events(&mut srp), vec![], "state {state:?}");
        assert_eq!((srp.state(), srp.poll_timeout(), srp.ring_id()), (state, timeout, ring_id));
        assert_eq!(srp.stats().packets_received, received + datagrams.len() as u64);
        drops.push((srp.stats().dropped_checksum, srp.stats().dropped_malformed));
    }
    drops.dedup();
    assert_eq!(drops.len(), 1, "every state counts alike: {drops:?}");
    drops[0]
}

/// Random bytes fail the crc32 check.
#[test]
fn random_bytes_are_counted_as_bad_checksum_and_ignored() {
    let mut rng = Rng::new(42);
    let datagrams: Vec<Bytes> = (0..200)
        .map(|_| {
            let len = 6 + rng.below(300);
            (0..len).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>().into()
        })
        .collect();

    assert_eq!(feed_to_each_state(&datagrams), (200, 0));
}

/// A valid packet with any bit flipped fails the crc32 check.
#[test]
fn packet_with_a_corrupted_byte_is_counted_as_bad_checksum_and_ignored() {
    let good = Packet::Token(token(ring(8, 1), 5, 0, 0, 0)).encode();
    let datagrams: Vec<Bytes> = (0..good.len())
        .map(|i| {
            let mut bad = good.to_vec();
            bad[i] ^= 0x10;
            bad.into()
        })
        .collect();

    assert_eq!(feed_to_each_state(&datagrams), (good.len() as u64, 0));
}

/// An unknown message kind, an unknown version, a datagram shorter than the frame, a body
/// that is not protobuf and a structurally invalid message are all malformed.
#[test]
fn unknown_kind_version_or_body_is_counted_as_malformed_and_ignored() {
    let join_sender_0 = Join { sender: 0, proc_set: vec![1], fail_set: vec![], ring_seq: 4 };
    let datagrams = vec![
        frame(WIRE_VERSION, 99, &[]),
        frame(WIRE_VERSION + 1, 3, &[]),
        Bytes::from_static(&[1, 3, 0]),
        frame(WIRE_VERSION, 2, &[0xff, 0xff, 0xff]),
        frame(WIRE_VERSION, 3, &prost::Message::encode_to_vec(&join_sender_0)),
    ];

    assert_eq!(feed_to_each_state(&datagrams), (0, 5));
}
