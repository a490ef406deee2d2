//! Wire format tests: a round trip for every message, decoder robustness against arbitrary and
//! corrupted bytes, and one unit test per [`DecodeError`] variant.

use super::*;
use proptest::collection::vec;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A frame with any version, kind and body and a correct crc, to reach the checks after the crc.
fn raw_frame(version: u8, kind: u8, body: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(body.len() + FRAME_OVERHEAD);
    buf.put_u8(version);
    buf.put_u8(kind);
    buf.put_slice(body);
    let crc = crc32fast::hash(&buf);
    buf.put_u32_le(crc);
    buf.freeze()
}

/// The frame of a prost message under `kind`, whatever its fields (valid or not).
fn frame_of<M: Message>(kind: u8, msg: &M) -> Bytes {
    raw_frame(WIRE_VERSION, kind, &msg.encode_to_vec())
}

fn ring(representative: u32, seq: u64) -> Option<WireRingId> {
    Some(WireRingId { representative, seq })
}

/// A valid single-fragment mcast.
fn mcast(seq: u64, sender: u32) -> Mcast {
    Mcast {
        ring_id: ring(1, 8),
        seq,
        sender,
        safe: false,
        fragments: vec![Fragment { first: true, last: true, data: Bytes::from_static(b"hello") }],
        recovered: None,
    }
}

/// The `reason` of a `Malformed` error, panicking on any other outcome.
fn malformed(datagram: Bytes, expected_kind: &str) -> String {
    match Packet::decode(datagram) {
        Err(DecodeError::Malformed { kind, reason }) => {
            assert_eq!(kind, expected_kind);
            reason
        }
        other => panic!("expected Malformed {expected_kind}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies: each generates only messages that pass `Packet::validate`.
// ---------------------------------------------------------------------------------------------

fn wire_ring_id() -> impl Strategy<Value = WireRingId> {
    (any::<u32>(), any::<u64>()).prop_map(|(representative, seq)| WireRingId { representative, seq })
}

fn fragment() -> impl Strategy<Value = Fragment> {
    (any::<bool>(), any::<bool>(), vec(any::<u8>(), 0..64)).prop_map(|(first, last, data)| Fragment {
        first,
        last,
        data: Bytes::from(data),
    })
}

/// A regular mcast: its own fragments, no recovered packet.
fn plain_mcast() -> impl Strategy<Value = Mcast> {
    (wire_ring_id(), 1..=u64::MAX, 1..=u32::MAX, any::<bool>(), vec(fragment(), 0..6)).prop_map(
        |(ring_id, seq, sender, safe, fragments)| Mcast {
            ring_id: Some(ring_id),
            seq,
            sender,
            safe,
            fragments,
            recovered: None,
        },
    )
}

/// A recovery mcast: a new-ring packet that carries an old-ring packet and no fragments.
fn recovered_mcast() -> impl Strategy<Value = Mcast> {
    (wire_ring_id(), 1..=u64::MAX, 1..=u32::MAX, any::<bool>(), plain_mcast()).prop_map(
        |(ring_id, seq, sender, safe, old)| Mcast {
            ring_id: Some(ring_id),
            seq,
            sender,
            safe,
            fragments: Vec::new(),
            recovered: Some(Box::new(old)),
        },
    )
}

fn any_mcast() -> impl Strategy<Value = Mcast> {
    prop_oneof![plain_mcast(), recovered_mcast()]
}

fn token() -> impl Strategy<Value = Token> {
    (
        wire_ring_id(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        vec(any::<u64>(), 0..16),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(ring_id, token_seq, seq, aru, aru_owner, rtr, fcc, backlog, retrans_flg, recovery_done)| {
                Token {
                    ring_id: Some(ring_id),
                    token_seq,
                    seq,
                    aru,
                    aru_owner,
                    rtr,
                    fcc,
                    backlog,
                    retrans_flg,
                    recovery_done,
                }
            },
        )
}

fn join() -> impl Strategy<Value = Join> {
    (1..=u32::MAX, vec(any::<u32>(), 0..8), vec(any::<u32>(), 0..8), any::<u64>()).prop_map(
        |(sender, mut proc_set, mut fail_set, ring_seq)| {
            proc_set.sort_unstable();
            fail_set.sort_unstable();
            Join { sender, proc_set, fail_set, ring_seq }
        },
    )
}

fn commit_entry() -> impl Strategy<Value = CommitEntry> {
    (any::<bool>(), proptest::option::of(wire_ring_id()), any::<u64>(), any::<u64>(), any::<u64>())
        .prop_flat_map(|(filled, old, aru, high_seq, high_delivered)| {
            // A filled entry must name its old ring; an unfilled one may or may not.
            let old_ring_id = if filled { wire_ring_id().prop_map(Some).boxed() } else { Just(old).boxed() };
            old_ring_id.prop_map(move |old_ring_id| CommitEntry {
                filled,
                old_ring_id,
                aru,
                high_seq,
                high_delivered,
            })
        })
}

fn commit_token() -> impl Strategy<Value = CommitToken> {
    (1usize..8).prop_flat_map(|n| {
        (wire_ring_id(), vec(1..=u32::MAX, n), vec(commit_entry(), n), 1u32..=2, 0..n as u32).prop_map(
            |(ring_id, mut members, entries, rotation, index)| {
                members.sort_unstable();
                CommitToken { ring_id: Some(ring_id), members, entries, rotation, index }
            },
        )
    })
}

fn ring_notice() -> impl Strategy<Value = RingNotice> {
    (1..=u32::MAX, wire_ring_id()).prop_map(|(sender, ring_id)| RingNotice { sender, ring_id: Some(ring_id) })
}

/// Any valid packet of any kind.
fn packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        any_mcast().prop_map(Packet::Mcast),
        token().prop_map(Packet::Token),
        join().prop_map(Packet::Join),
        commit_token().prop_map(Packet::CommitToken),
        ring_notice().prop_map(Packet::MergeDetect),
        ring_notice().prop_map(Packet::TokenHoldCancel),
        ring_notice().prop_map(Packet::Leave),
    ]
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn assert_round_trip(p: Packet) -> Result<(), TestCaseError> {
    let encoded = p.encode();
    prop_assert_eq!(Packet::decode(encoded), Ok(p));
    Ok(())
}

proptest! {
    #[test]
    fn mcast_round_trips(m in plain_mcast()) {
        assert_round_trip(Packet::Mcast(m))?;
    }

    #[test]
    fn recovered_mcast_round_trips(m in recovered_mcast()) {
        assert_round_trip(Packet::Mcast(m))?;
    }

    #[test]
    fn token_round_trips(t in token()) {
        assert_round_trip(Packet::Token(t))?;
    }

    #[test]
    fn join_round_trips(j in join()) {
        assert_round_trip(Packet::Join(j))?;
    }

    #[test]
    fn commit_token_round_trips(c in commit_token()) {
        assert_round_trip(Packet::CommitToken(c))?;
    }

    #[test]
    fn merge_detect_round_trips(n in ring_notice()) {
        assert_round_trip(Packet::MergeDetect(n))?;
    }

    #[test]
    fn token_hold_cancel_round_trips(n in ring_notice()) {
        assert_round_trip(Packet::TokenHoldCancel(n.clone()))?;
        assert_round_trip(Packet::Leave(n))?;
    }

    /// The frame length is the body plus exactly the documented overhead.
    #[test]
    fn frame_overhead_is_exact(p in packet()) {
        let body_len = match &p {
            Packet::Mcast(m) => m.encoded_len(),
            Packet::Token(m) => m.encoded_len(),
            Packet::Join(m) => m.encoded_len(),
            Packet::CommitToken(m) => m.encoded_len(),
            Packet::MergeDetect(m) | Packet::TokenHoldCancel(m) | Packet::Leave(m) => m.encoded_len(),
        };
        prop_assert_eq!(p.encode().len(), body_len + FRAME_OVERHEAD);
    }

    /// Arbitrary bytes never panic the decoder (almost all fail the crc).
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let _ = Packet::decode(Bytes::from(bytes));
    }

    /// Arbitrary bodies behind a correct crc reach prost and `validate`; they never panic, and
    /// whatever decodes re-encodes to a packet that decodes to itself.
    #[test]
    fn arbitrary_framed_bodies_never_panic(
        version in prop_oneof![Just(WIRE_VERSION), any::<u8>()],
        kind in prop_oneof![1u8..=6, any::<u8>()],
        body in vec(any::<u8>(), 0..256),
    ) {
        if let Ok(p) = Packet::decode(raw_frame(version, kind, &body)) {
            prop_assert_eq!(Packet::decode(p.encode()), Ok(p));
        }
    }

    /// A valid packet's body with bytes overwritten and the crc fixed up never panics.
    #[test]
    fn corrupted_bodies_never_panic(
        p in packet(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let encoded = p.encode();
        let mut body = encoded[2..encoded.len() - 4].to_vec();
        if !body.is_empty() {
            for (at, byte) in edits {
                let i = at.index(body.len());
                body[i] = byte;
            }
        }
        if let Ok(q) = Packet::decode(raw_frame(encoded[0], encoded[1], &body)) {
            prop_assert_eq!(Packet::decode(q.encode()), Ok(q));
        }
    }

    /// crc32 catches every single-bit error, including one in the crc itself.
    #[test]
    fn any_single_bit_flip_is_rejected(p in packet(), at in any::<prop::sample::Index>()) {
        let mut bytes = p.encode().to_vec();
        let bit = at.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(Packet::decode(Bytes::from(bytes)), Err(DecodeError::BadChecksum));
    }

    /// Cutting a valid packet short never decodes.
    #[test]
    fn truncation_is_rejected(p in packet(), at in any::<prop::sample::Index>()) {
        let encoded = p.encode();
        let cut = at.index(encoded.len());
        let result = Packet::decode(encoded.slice(..cut));
        prop_assert!(result.is_err(), "truncated to {} of {} bytes: {:?}", cut, encoded.len(), result);
    }
}

// ---------------------------------------------------------------------------------------------
// One unit test per DecodeError variant
// ---------------------------------------------------------------------------------------------

#[test]
fn token_example_round_trips() {
    let t = Token { ring_id: ring(1, 4), seq: 9, ..Token::default() };
    let p = Packet::Token(t);
    assert_eq!(Packet::decode(p.encode()).unwrap(), p);
}

#[test]
fn too_short() {
    for len in 0..FRAME_OVERHEAD {
        assert_eq!(Packet::decode(Bytes::from(vec![WIRE_VERSION; len])), Err(DecodeError::TooShort(len)));
    }
}

#[test]
fn bad_checksum() {
    let mut bytes = Packet::Mcast(mcast(3, 2)).encode().to_vec();
    let last = bytes.len() - 1;
    bytes[last] = bytes[last].wrapping_add(1);
    assert_eq!(Packet::decode(Bytes::from(bytes)), Err(DecodeError::BadChecksum));
    // Six zero bytes: the crc of [0, 0] is not 0.
    assert_eq!(Packet::decode(Bytes::from_static(&[0; 6])), Err(DecodeError::BadChecksum));
}

#[test]
fn checksum_is_checked_before_version() {
    let mut bytes = raw_frame(WIRE_VERSION + 1, KIND_TOKEN, &[]).to_vec();
    bytes[2] ^= 0xff;
    assert_eq!(Packet::decode(Bytes::from(bytes)), Err(DecodeError::BadChecksum));
}

#[test]
fn unsupported_version() {
    let body = Token { ring_id: ring(1, 1), ..Token::default() }.encode_to_vec();
    for version in [0, WIRE_VERSION + 1, u8::MAX] {
        assert_eq!(
            Packet::decode(raw_frame(version, KIND_TOKEN, &body)),
            Err(DecodeError::UnsupportedVersion(version))
        );
    }
}

#[test]
fn unknown_kind() {
    for kind in [0, KIND_LEAVE + 1, u8::MAX] {
        assert_eq!(Packet::decode(raw_frame(WIRE_VERSION, kind, &[])), Err(DecodeError::UnknownKind(kind)));
    }
}

#[test]
fn malformed_garbage_body() {
    // A field key with wire type 7 does not exist in protobuf.
    let garbage = [0x0f, 0xff, 0xff, 0xff];
    for (kind, name) in [
        (KIND_MCAST, "mcast"),
        (KIND_TOKEN, "token"),
        (KIND_JOIN, "join"),
        (KIND_COMMIT_TOKEN, "commit_token"),
        (KIND_MERGE_DETECT, "merge_detect"),
        (KIND_TOKEN_HOLD_CANCEL, "token_hold_cancel"),
    ] {
        malformed(raw_frame(WIRE_VERSION, kind, &garbage), name);
    }
}

#[test]
fn malformed_truncated_length_delimited_field() {
    // Field 1 (ring_id) claims 10 bytes but only 1 follows.
    malformed(raw_frame(WIRE_VERSION, KIND_TOKEN, &[0x0a, 10, 0x08]), "token");
}

#[test]
fn malformed_empty_body_of_every_kind() {
    // A packet with every field at its default is never valid: each kind needs a ring id or a sender.
    for (kind, name) in [
        (KIND_MCAST, "mcast"),
        (KIND_TOKEN, "token"),
        (KIND_JOIN, "join"),
        (KIND_COMMIT_TOKEN, "commit_token"),
        (KIND_MERGE_DETECT, "ring_notice"),
        (KIND_TOKEN_HOLD_CANCEL, "ring_notice"),
    ] {
        malformed(raw_frame(WIRE_VERSION, kind, &[]), name);
    }
}

#[test]
fn malformed_token_missing_ring_id() {
    let t = Token { seq: 5, ..Token::default() };
    assert_eq!(malformed(frame_of(KIND_TOKEN, &t), "token"), "missing ring_id");
}

#[test]
fn malformed_mcast() {
    let cases: Vec<(Mcast, &str)> = vec![
        (Mcast { ring_id: None, ..mcast(1, 1) }, "missing ring_id"),
        (mcast(0, 1), "seq or sender 0"),
        (mcast(1, 0), "seq or sender 0"),
        (
            Mcast { recovered: Some(Box::new(mcast(1, 1))), ..mcast(2, 1) },
            "recovered packet with fragments of its own",
        ),
        (
            Mcast {
                fragments: vec![],
                recovered: Some(Box::new(Mcast {
                    recovered: Some(Box::new(mcast(1, 1))),
                    fragments: vec![],
                    ..mcast(1, 1)
                })),
                ..mcast(2, 1)
            },
            "nested recovered packet",
        ),
        (
            Mcast {
                fragments: vec![],
                recovered: Some(Box::new(Mcast { ring_id: None, ..mcast(1, 1) })),
                ..mcast(2, 1)
            },
            "nested recovered packet",
        ),
        (
            Mcast { fragments: vec![], recovered: Some(Box::new(mcast(0, 1))), ..mcast(2, 1) },
            "recovered seq or sender 0",
        ),
        (
            Mcast { fragments: vec![], recovered: Some(Box::new(mcast(1, 0))), ..mcast(2, 1) },
            "recovered seq or sender 0",
        ),
    ];
    for (m, reason) in cases {
        assert_eq!(m.invalid_reason(), Some(reason));
        assert_eq!(malformed(Packet::Mcast(m).encode(), "mcast"), reason);
    }
}

#[test]
fn malformed_join_sender_zero() {
    let j = Join { sender: 0, proc_set: vec![1, 2], fail_set: vec![], ring_seq: 4 };
    assert_eq!(malformed(frame_of(KIND_JOIN, &j), "join"), "sender 0");
}

#[test]
fn malformed_commit_token() {
    let entry = CommitEntry { filled: true, old_ring_id: ring(1, 4), aru: 3, high_seq: 3, high_delivered: 3 };
    let good = CommitToken {
        ring_id: ring(1, 8),
        members: vec![1, 2],
        entries: vec![entry.clone(); 2],
        rotation: 1,
        index: 0,
    };
    assert!(Packet::decode(Packet::CommitToken(good.clone()).encode()).is_ok());
    let cases = [
        (CommitToken { ring_id: None, ..good.clone() }, "missing ring_id"),
        (
            CommitToken { members: vec![], entries: vec![], ..good.clone() },
            "members and entries differ in length",
        ),
        (
            CommitToken { entries: vec![entry.clone()], ..good.clone() },
            "members and entries differ in length",
        ),
        (
            CommitToken { entries: vec![entry.clone(), CommitEntry { old_ring_id: None, ..entry }], ..good },
            "filled entry without old ring id",
        ),
    ];
    for (c, reason) in cases {
        assert_eq!(malformed(frame_of(KIND_COMMIT_TOKEN, &c), "commit_token"), reason);
    }
}

#[test]
fn malformed_ring_notice() {
    for kind in [KIND_MERGE_DETECT, KIND_TOKEN_HOLD_CANCEL] {
        let no_ring = RingNotice { sender: 2, ring_id: None };
        let no_sender = RingNotice { sender: 0, ring_id: ring(1, 3) };
        malformed(frame_of(kind, &no_ring), "ring_notice");
        malformed(frame_of(kind, &no_sender), "ring_notice");
    }
}

#[test]
fn deeply_nested_recovered_packets_do_not_overflow_the_stack() {
    // Each level wraps the previous one as field 6 (recovered); prost stops at its recursion
    // limit long before the stack runs out, and `validate` rejects nesting anyway.
    let mut body = mcast(1, 1).encode_to_vec();
    for _ in 0..1_000 {
        let mut outer = Vec::with_capacity(body.len() + 8);
        outer.push(0x32); // field 6, length-delimited
        prost::encoding::encode_varint(body.len() as u64, &mut outer);
        outer.extend_from_slice(&body);
        body = outer;
    }
    assert!(matches!(
        Packet::decode(raw_frame(WIRE_VERSION, KIND_MCAST, &body)),
        Err(DecodeError::Malformed { kind: "mcast", .. })
    ));
}

#[test]
fn decoded_fragment_data_shares_the_datagram_buffer() {
    let datagram = Packet::Mcast(mcast(1, 2)).encode();
    let range = datagram.as_ptr_range();
    let Ok(Packet::Mcast(m)) = Packet::decode(datagram.clone()) else { panic!("decodes") };
    let data = &m.fragments[0].data;
    assert_eq!(&data[..], b"hello");
    assert!(range.contains(&data.as_ptr()), "fragment data was copied out of the datagram");
}
