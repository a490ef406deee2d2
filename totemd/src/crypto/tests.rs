//! Unit and property tests of [`PacketCrypto`] and the corosync name mapping.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use totem::NodeId;

use super::*;
use crate::keyfile::AuthKey;

const AEADS: [Aead; 2] = [Aead::Aes256Gcm, Aead::ChaCha20Poly1305];

fn key(fill: u8) -> AuthKey {
    AuthKey::from_bytes((0..256u16).map(|i| (i as u8) ^ fill).collect()).unwrap()
}

fn node(aead: Aead, id: u32, epoch: u32) -> PacketCrypto {
    PacketCrypto::new(aead, &key(0), "test-cluster", NodeId(id), epoch)
}

/// A payload as the engine would hand it over: a fresh buffer.
fn payload(len: usize, salt: u8) -> Bytes {
    Bytes::from((0..len).map(|i| (i as u8).wrapping_mul(31) ^ salt).collect::<Vec<u8>>())
}

fn set_next(c: &mut PacketCrypto, next: Option<u64>) {
    c.active.as_mut().unwrap().next = next;
}

#[test]
fn select_follows_corosync_names() {
    use CryptoCipher as C;
    use CryptoHash as H;
    assert_eq!(Aead::select(C::None, H::None), Ok(None));
    for cipher in [C::Aes256, C::Aes192, C::Aes128] {
        assert_eq!(Aead::select(cipher, H::None), Err(SettingsError::CipherRequiresHash(cipher)));
        for hash in [H::Md5, H::Sha1, H::Sha256, H::Sha384, H::Sha512] {
            assert_eq!(Aead::select(cipher, hash), Ok(Some(Aead::Aes256Gcm)));
            assert_eq!(Aead::select(C::None, hash), Ok(Some(Aead::ChaCha20Poly1305)));
        }
    }
}

#[test]
fn names_parse_as_corosync_spells_them() {
    for name in ["none", "aes256", "aes192", "aes128"] {
        assert_eq!(name.parse::<CryptoCipher>().unwrap().name(), name);
    }
    for name in ["none", "md5", "sha1", "sha256", "sha384", "sha512"] {
        assert_eq!(name.parse::<CryptoHash>().unwrap().to_string(), name);
    }
    let err = "AES256".parse::<CryptoCipher>().unwrap_err();
    assert_eq!(err.option, "crypto_cipher");
    assert!("sha3".parse::<CryptoHash>().is_err());
}

#[test]
fn off_is_the_identity_without_copies() {
    let mut c = PacketCrypto::off();
    let p = payload(1400, 1);
    let sealed = c.seal(p.clone()).unwrap();
    assert_eq!(sealed.as_ptr(), p.as_ptr(), "no copy");
    let opened = c.open(sealed).unwrap();
    assert_eq!(opened, Opened { sender: None, payload: p.clone() });
    assert_eq!(opened.payload.as_ptr(), p.as_ptr(), "no copy");
    assert_eq!((c.overhead(), c.aead(), c.epoch()), (0, None, None));
    assert_eq!(format!("{c:?}"), "PacketCrypto(off)");
}

#[test]
fn sealed_packet_has_the_documented_layout() {
    for aead in AEADS {
        let mut c = node(aead, 0x0102_0304, 7);
        let p = payload(100, 2);
        let first = c.seal(p.clone()).unwrap();
        let second = c.seal(p.clone()).unwrap();
        let format = if aead == Aead::Aes256Gcm { FORMAT_AES256GCM } else { FORMAT_CHACHA20POLY1305 };
        assert_eq!(first.len(), p.len() + OVERHEAD);
        assert_eq!(first[..5], [format, 1, 2, 3, 4]);
        assert_eq!(first[5..13], (7u64 << 32).to_be_bytes(), "counter starts at boot_epoch << 32");
        assert_eq!(second[5..13], ((7u64 << 32) + 1).to_be_bytes(), "then counts packets");
        assert_ne!(first[HEADER_LEN..HEADER_LEN + 100], p[..], "the payload is encrypted");
        assert_ne!(first[HEADER_LEN..], second[HEADER_LEN..], "a new nonce each packet");
        assert_eq!(c.overhead(), OVERHEAD);
    }
}

#[test]
fn round_trip_for_every_aead_and_size() {
    for aead in AEADS {
        let mut a = node(aead, 1, 1);
        let mut b = node(aead, 2, 1);
        for len in [0, 1, 15, 16, 17, 64, 1024, 1400, PAYLOAD_MAX] {
            let p = payload(len, len as u8);
            let opened = b.open(a.seal(p.clone()).unwrap()).unwrap();
            assert_eq!(opened, Opened { sender: Some(NodeId(1)), payload: p }, "{aead} {len}");
        }
    }
}

#[test]
fn seal_into_appends_and_matches_seal() {
    let mut a = node(Aead::Aes256Gcm, 1, 1);
    let mut b = node(Aead::Aes256Gcm, 2, 1);
    let mut out = BytesMut::from(&b"prefix"[..]);
    a.seal_into(b"hello", &mut out).unwrap();
    assert_eq!(&out[..6], b"prefix");
    let sealed = out.split_off(6).freeze();
    assert_eq!(b.open(sealed).unwrap().payload, &b"hello"[..]);
}

#[test]
fn open_decrypts_in_place_when_it_owns_the_buffer() {
    let mut a = node(Aead::ChaCha20Poly1305, 1, 1);
    let mut b = node(Aead::ChaCha20Poly1305, 2, 1);
    let sealed = a.seal(payload(1024, 3)).unwrap();
    let at = sealed.as_ptr();
    let opened = b.open(sealed).unwrap();
    assert_eq!(opened.payload.as_ptr(), at.wrapping_add(HEADER_LEN), "no copy");
    // A shared buffer is copied once, and the caller's handle still sees the sealed bytes.
    let sealed = a.seal(payload(1024, 4)).unwrap();
    let keep = sealed.clone();
    assert_eq!(b.open(sealed).unwrap().payload, payload(1024, 4));
    assert_eq!(keep[0], FORMAT_CHACHA20POLY1305);
}

#[test]
fn another_key_or_cluster_name_never_opens() {
    for aead in AEADS {
        let mut a = node(aead, 1, 1);
        let others = [
            PacketCrypto::new(aead, &key(0x5a), "test-cluster", NodeId(2), 1),
            PacketCrypto::new(aead, &key(0), "other-cluster", NodeId(2), 1),
        ];
        for mut other in others {
            let sealed = a.seal(payload(64, 5)).unwrap();
            assert_eq!(other.open(sealed.clone()), Err(OpenError::AuthFailed { claimed: NodeId(1) }));
            assert_eq!(other.senders(), 0, "a failed packet leaves no state");
            let back = other.seal(payload(64, 5)).unwrap();
            assert_eq!(a.open(back), Err(OpenError::AuthFailed { claimed: NodeId(2) }));
        }
    }
}

#[test]
fn format_mismatches_are_bad_versions() {
    let mut aes = node(Aead::Aes256Gcm, 1, 1);
    let mut chacha = node(Aead::ChaCha20Poly1305, 2, 1);
    let sealed = aes.seal(payload(64, 6)).unwrap();
    assert_eq!(chacha.open(sealed), Err(OpenError::BadVersion(FORMAT_AES256GCM)));
    // A plaintext Totem packet (wire version 1) from a node with crypto off.
    let plain = Bytes::from(vec![totem::wire::WIRE_VERSION; 200]);
    assert_eq!(aes.open(plain), Err(OpenError::BadVersion(1)));
}

#[test]
fn short_packets_are_too_short() {
    let mut c = node(Aead::Aes256Gcm, 1, 1);
    assert_eq!(c.open(Bytes::new()), Err(OpenError::TooShort { len: 0 }));
    let mut short = vec![0u8; OVERHEAD - 1];
    short[0] = FORMAT_AES256GCM;
    assert_eq!(c.open(Bytes::from(short)), Err(OpenError::TooShort { len: OVERHEAD - 1 }));
}

#[test]
fn a_replay_is_rejected_and_changes_nothing() {
    for aead in AEADS {
        let mut a = node(aead, 1, 1);
        let mut b = node(aead, 2, 1);
        let first = a.seal(payload(10, 7)).unwrap();
        assert!(b.open(first.clone()).is_ok());
        let replay = b.open(first);
        assert_eq!(replay, Err(OpenError::Replay { sender: NodeId(1), counter: 1 << 32 }));
        assert_eq!(b.open(a.seal(payload(10, 8)).unwrap()).unwrap().payload, payload(10, 8));
    }
}

#[test]
fn a_packet_older_than_the_window_is_a_replay() {
    let mut a = node(Aead::Aes256Gcm, 1, 1);
    let mut b = node(Aead::Aes256Gcm, 2, 1);
    let oldest = a.seal(payload(8, 0)).unwrap();
    let mut last = None;
    for _ in 0..REPLAY_WINDOW {
        last = Some(a.seal(payload(8, 1)).unwrap());
    }
    b.open(last.unwrap()).unwrap();
    assert!(matches!(b.open(oldest), Err(OpenError::Replay { counter, .. }) if counter == 1 << 32));
}

#[test]
fn a_rebooted_sender_with_a_higher_epoch_is_accepted() {
    let mut b = node(Aead::Aes256Gcm, 2, 1);
    let mut before = node(Aead::Aes256Gcm, 1, 5);
    let old: Vec<Bytes> = (0..3).map(|i| before.seal(payload(20, i)).unwrap()).collect();
    for p in &old {
        b.open(p.clone()).unwrap();
    }
    let mut after = node(Aead::Aes256Gcm, 1, 6);
    assert_eq!(b.open(after.seal(payload(20, 9)).unwrap()).unwrap().payload, payload(20, 9));
    for p in old {
        assert!(matches!(b.open(p), Err(OpenError::Replay { .. })), "the old boot's packets are stale");
    }
}

#[test]
fn the_counter_runs_on_into_the_next_epoch_until_exhausted() {
    let mut a = node(Aead::Aes256Gcm, 1, 9);
    let mut b = node(Aead::Aes256Gcm, 2, 1);
    assert_eq!(a.epoch(), Some(9));
    set_next(&mut a, Some((10u64 << 32) - 1));
    b.open(a.seal(payload(5, 0)).unwrap()).unwrap();
    assert_eq!(a.epoch(), Some(10), "the next packet is in epoch 10: persist it");
    b.open(a.seal(payload(5, 1)).unwrap()).unwrap();

    set_next(&mut a, Some(u64::MAX));
    b.open(a.seal(payload(5, 2)).unwrap()).unwrap();
    assert_eq!(a.epoch(), None);
    let mut out = BytesMut::new();
    assert_eq!(a.seal_into(b"x", &mut out), Err(SealError::CounterExhausted));
    assert!(out.is_empty());
}

#[test]
fn oversized_payloads_are_refused() {
    let mut a = node(Aead::Aes256Gcm, 1, 1);
    let big = payload(PAYLOAD_MAX + 1, 0);
    assert_eq!(a.seal(big), Err(SealError::TooLarge { len: PAYLOAD_MAX + 1 }));
    assert_eq!(a.epoch(), Some(1));
    assert_eq!(a.seal(payload(1, 0)).unwrap()[5..13], (1u64 << 32).to_be_bytes(), "counter unused");
}

#[test]
fn the_sender_table_is_bounded() {
    let mut b = node(Aead::Aes256Gcm, 100, 1).with_senders_max(2);
    let mut senders: Vec<PacketCrypto> = (1..=3).map(|id| node(Aead::Aes256Gcm, id, 1)).collect();
    for s in &mut senders[..2] {
        b.open(s.seal(payload(4, 0)).unwrap()).unwrap();
    }
    let third = senders[2].seal(payload(4, 0)).unwrap();
    assert_eq!(b.open(third.clone()), Err(OpenError::TooManySenders { sender: NodeId(3) }));
    assert!(b.forget_sender(NodeId(1)));
    assert!(!b.forget_sender(NodeId(1)));
    assert_eq!(b.open(third).unwrap().sender, Some(NodeId(3)));
    assert_eq!(b.senders(), 2);
}

#[test]
fn debug_shows_no_key() {
    let c = node(Aead::Aes256Gcm, 1, 1);
    let text = format!("{c:?}");
    assert!(text.contains("key: \"<redacted>\"") && text.contains("Aes256Gcm"), "{text}");
}

fn any_aead() -> impl Strategy<Value = Aead> {
    prop_oneof![Just(Aead::Aes256Gcm), Just(Aead::ChaCha20Poly1305)]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(aead in any_aead(), mut bytes in prop::collection::vec(any::<u8>(), 0..2000), fix_format: bool) {
        let mut c = node(aead, 2, 1);
        if fix_format && !bytes.is_empty() {
            bytes[0] = if aead == Aead::Aes256Gcm { FORMAT_AES256GCM } else { FORMAT_CHACHA20POLY1305 };
        }
        let result = c.open(Bytes::from(bytes.clone()));
        prop_assert!(result.is_err(), "forged packet opened: {:?}", result);
        prop_assert_eq!(c.senders(), 0);
        let mut off = PacketCrypto::off();
        prop_assert_eq!(off.open(Bytes::from(bytes.clone())).unwrap().payload, bytes);
    }

    #[test]
    fn tampering_with_any_byte_fails(
        aead in any_aead(),
        body in prop::collection::vec(any::<u8>(), 0..1500),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut a = node(aead, 1, 3);
        let mut b = node(aead, 2, 3);
        let mut sealed = a.seal(Bytes::from(body)).unwrap().to_vec();
        let at = at.index(sealed.len());
        let original = sealed[at];
        sealed[at] ^= flip;
        let result = b.open(Bytes::from(sealed));
        if at == 0 {
            prop_assert_eq!(result, Err(OpenError::BadVersion(original ^ flip)));
        } else {
            prop_assert!(matches!(result, Err(OpenError::AuthFailed { .. })), "{:?}", result);
        }
        prop_assert_eq!(b.senders(), 0);
    }

    #[test]
    fn reordered_packets_within_the_window_open_exactly_once(
        aead in any_aead(),
        order in (1usize..300).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle()),
        duplicate_every in 2usize..10,
    ) {
        let mut a = node(aead, 1, 1);
        let mut b = node(aead, 2, 1);
        let sealed: Vec<Bytes> = (0..order.len()).map(|i| a.seal(payload(i % 97, i as u8)).unwrap()).collect();
        for (k, &i) in order.iter().enumerate() {
            let opened = b.open(sealed[i].clone()).unwrap();
            prop_assert_eq!(opened.payload, payload(i % 97, i as u8));
            if k % duplicate_every == 0 {
                let again = b.open(sealed[i].clone());
                prop_assert!(matches!(again, Err(OpenError::Replay { .. })), "duplicate opened");
            }
        }
        for packet in sealed {
            prop_assert!(matches!(b.open(packet), Err(OpenError::Replay { .. })), "replayed packet opened");
        }
    }
}
