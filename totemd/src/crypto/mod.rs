//! Packet protection: every datagram authenticated and encrypted with one AEAD (sans-IO).
//!
//! [`PacketCrypto`] sits between the Totem engine and the socket: [`PacketCrypto::seal`] each
//! [`totem::Transmit`] payload before sending it, [`PacketCrypto::open`] each datagram received
//! before [`totem::Srp::handle_datagram`]. It reads no clock, draws no entropy and touches no
//! socket: everything that must differ between boots comes in as the `boot_epoch` argument.
//!
//! # Modes
//! corosync's `crypto_cipher` / `crypto_hash` pick the mode ([`Aead::select`]): both `none`
//! means off, and then seal and open hand the same [`Bytes`] back untouched (no copy, no
//! header). Otherwise one AEAD both encrypts and authenticates: AES-256-GCM for the `aes*`
//! ciphers, ChaCha20-Poly1305 for `crypto_cipher: none` with a hash. There is no
//! authenticate-only mode. A peer without the key, or with another key or cluster name, never
//! gets a packet past [`PacketCrypto::open`] ([`OpenError::AuthFailed`]).
//!
//! # Packet format
//! ```text
//! 0        1            5                 13                       len-16      len
//! +--------+------------+-----------------+------------------------+-----------+
//! | format | sender id  | counter         | ciphertext             | tag       |
//! | 1 byte | u32 BE     | u64 BE          | = len of the plaintext | 16 bytes  |
//! +--------+------------+-----------------+------------------------+-----------+
//! ```
//! The first byte names the layout and the AEAD: [`FORMAT_AES256GCM`] or
//! [`FORMAT_CHACHA20POLY1305`]. Both have the high bit set, so a plaintext Totem packet (its
//! wire version is 1) is told apart at once ([`OpenError::BadVersion`]), and so is a peer
//! configured with the other AEAD. The 13-byte header is the AEAD's associated data: changing
//! any byte of it, or of the ciphertext or tag, fails authentication. [`OVERHEAD`] = 29 bytes
//! per packet, which the daemon must take off the Totem packet budget (`netmtu`).
//!
//! # Key derivation
//! The AEAD key is `HKDF-SHA256(ikm = authkey, salt = cluster_name, info = KDF_LABEL || aead
//! name)`, 32 bytes (RFC 5869). The salt keeps two clusters that share an authkey apart; the
//! AEAD name in the label gives each AEAD its own key. The authkey itself never touches a
//! packet.
//!
//! # Nonces
//! The 96-bit nonce is the header's sender id and counter: `node_id (4 bytes) || counter (8
//! bytes)`. An AEAD nonce must never repeat under one key; the node id makes nonces of
//! different nodes differ (node ids are unique in a cluster), the counter makes one node's
//! nonces differ. The counter starts at `boot_epoch << 32` and goes up by one per packet, so a
//! boot has 2^32 counters per epoch and simply runs on into `boot_epoch + 1, + 2, ...` if it
//! sends more. [`PacketCrypto::epoch`] tells which epoch the node is in.
//!
//! **What the caller must provide and persist.** Every boot's `boot_epoch` must exceed every
//! epoch this node used before under the same key. The daemon should:
//! 1. at start, take `boot_epoch = max(stored + 1, unix time in seconds)` and store it durably
//!    (fsync) *before* the first packet is sealed;
//! 2. while running, store [`PacketCrypto::epoch`] again whenever it changes (at most once per
//!    2^32 packets sent: hours at the least).
//!
//! The clock term keeps nonces fresh when the state directory is lost (no node sends 2^32
//! packets a second, so its epoch never catches up with the clock); the stored term keeps them
//! fresh when the clock is stepped back. Two nodes misconfigured with one node id would reuse
//! nonces: the id must be unique, which Totem requires anyway.
//!
//! # Replay window
//! After a packet authenticates, its counter is checked against the sender's window, as in
//! IPsec (RFC 4303 §3.4.3): the highest counter seen and a bitmap of the [`REPLAY_WINDOW`]
//! (1024) counters below it. A counter above the highest is accepted and slides the window (a
//! sender's reboot, with its higher epoch, is just a big slide); one inside the window is
//! accepted once; a duplicate or one below the window is [`OpenError::Replay`]. A known
//! sender's counter is checked before the decryption too, so a flood of replays costs no AEAD
//! work. Windows live in memory only: after this node restarts it accepts any counter once per
//! sender, and a replayed old packet is then dropped by Totem itself (its `ring_id` or `seq`
//! is stale). The number of windows is bounded by `senders_max`
//! ([`PacketCrypto::with_senders_max`]); only authenticated packets create one, and
//! [`PacketCrypto::forget_sender`] frees the window of a node removed from the cluster.
//!
//! All nodes share one key, so any holder of the key can claim any node id: the crypto keeps
//! out whoever lacks the key, as corosync's does, not a member gone rogue.
//!
//! # Errors
//! A packet that does not open is an [`OpenError`]; the caller counts it by variant and drops
//! the packet, and nothing in [`PacketCrypto`] changes. No input panics. [`SealError`] is
//! local misuse or exhaustion.

mod replay;
mod settings;
#[cfg(test)]
mod tests;

use std::collections::btree_map::{BTreeMap, Entry};
use std::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use sha2::Sha256;
use totem::NodeId;
use zeroize::Zeroizing;

use crate::keyfile::AuthKey;
use replay::ReplayWindow;

pub use replay::REPLAY_WINDOW;
pub use settings::{Aead, CryptoCipher, CryptoHash, SettingsError, UnknownName};

/// First byte of a packet sealed with AES-256-GCM.
pub const FORMAT_AES256GCM: u8 = 0x81;
/// First byte of a packet sealed with ChaCha20-Poly1305.
pub const FORMAT_CHACHA20POLY1305: u8 = 0x82;
/// Format byte, sender id, counter.
pub const HEADER_LEN: usize = 1 + 4 + 8;
/// The AEAD tag at the end of each packet.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed packet has beyond its payload.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// The largest payload [`PacketCrypto::seal`] takes: more never fits a UDP datagram.
pub const PAYLOAD_MAX: usize = 65_535;
/// Default bound on the number of senders with a replay window (corosync's nodelist is far
/// smaller; the bound only stops a key holder from growing the table without end).
pub const SENDERS_MAX_DEFAULT: usize = 1024;
/// HKDF `info` prefix; the AEAD's name follows it.
pub const KDF_LABEL: &[u8] = b"totem packet key v1 ";

const NONCE_LEN: usize = 12;

/// Why a received datagram was dropped. The caller counts it; [`PacketCrypto`] is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Shorter than a header and a tag (or empty).
    #[error("sealed packet too short ({len} bytes)")]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// The first byte is not this node's format: a plaintext packet (crypto off on the
    /// sender), the other AEAD, or noise.
    #[error("unexpected packet format byte {0:#04x}: is crypto configured alike on every node?")]
    BadVersion(u8),
    /// The tag does not verify: another key or cluster name, or a corrupted or forged packet.
    #[error("packet claiming to come from node {claimed} failed authentication (different authkey?)")]
    AuthFailed {
        /// The sender id in the header, unauthenticated: a hint for the log, not a fact.
        claimed: NodeId,
    },
    /// The counter was seen already, or is more than [`REPLAY_WINDOW`] below the highest seen
    /// from this sender.
    #[error("replayed or too old packet from node {sender} (counter {counter})")]
    Replay {
        /// The sender.
        sender: NodeId,
        /// The packet's counter.
        counter: u64,
    },
    /// Authentic, but from a new sender while `senders_max` windows exist already.
    #[error("packet from node {sender} dropped: already tracking the maximum number of senders")]
    TooManySenders {
        /// The sender.
        sender: NodeId,
    },
}

/// Why a payload could not be sealed. Nothing was sent and the counter did not move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The payload is longer than [`PAYLOAD_MAX`].
    #[error("payload of {len} bytes exceeds the {PAYLOAD_MAX}-byte maximum")]
    TooLarge {
        /// The payload's length.
        len: usize,
    },
    /// Every counter up to `u64::MAX` was used: the node must get a new key. Unreachable with
    /// epochs from the clock before the year 2106.
    #[error("packet counter exhausted; generate a new authkey")]
    CounterExhausted,
}

/// A datagram that passed [`PacketCrypto::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The authenticated sender id; `None` when crypto is off (the packet carries none).
    pub sender: Option<NodeId>,
    /// The plaintext: the Totem packet to hand to the engine.
    pub payload: Bytes,
}

/// Seals outgoing and opens incoming datagrams; see the [module doc](self).
///
/// Call order: build it once at start ([`PacketCrypto::new`] or [`PacketCrypto::off`]), then
/// [`seal`](Self::seal) every outgoing payload and [`open`](Self::open) every datagram, in any
/// interleaving. Persist [`epoch`](Self::epoch) when it changes.
pub struct PacketCrypto {
    active: Option<Box<Active>>,
}

struct Active {
    aead: Aead,
    key: AeadKey,
    format: u8,
    local: NodeId,
    /// The counter of the next packet sealed; `None` once `u64::MAX` was used.
    next: Option<u64>,
    windows: BTreeMap<NodeId, ReplayWindow>,
    senders_max: usize,
}

enum AeadKey {
    Aes(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl PacketCrypto {
    /// Crypto off: [`seal`](Self::seal) and [`open`](Self::open) return their input untouched.
    pub fn off() -> PacketCrypto {
        PacketCrypto { active: None }
    }

    /// Crypto on with `aead`, the key derived from `key` and `cluster_name` (corosync's
    /// `totem.cluster_name`), sealing as `local` from counter `boot_epoch << 32` on.
    ///
    /// `boot_epoch` must exceed every epoch `local` used before under this key: see "What the
    /// caller must provide and persist" in the [module doc](self).
    pub fn new(
        aead: Aead,
        key: &AuthKey,
        cluster_name: &str,
        local: NodeId,
        boot_epoch: u32,
    ) -> PacketCrypto {
        let format = match aead {
            Aead::Aes256Gcm => FORMAT_AES256GCM,
            Aead::ChaCha20Poly1305 => FORMAT_CHACHA20POLY1305,
        };
        PacketCrypto {
            active: Some(Box::new(Active {
                aead,
                key: AeadKey::derive(aead, key, cluster_name),
                format,
                local,
                next: Some(u64::from(boot_epoch) << 32),
                windows: BTreeMap::new(),
                senders_max: SENDERS_MAX_DEFAULT,
            })),
        }
    }

    /// Bounds the number of senders with a replay window (default [`SENDERS_MAX_DEFAULT`]).
    /// No effect when crypto is off.
    pub fn with_senders_max(mut self, senders_max: usize) -> PacketCrypto {
        if let Some(a) = &mut self.active {
            a.senders_max = senders_max;
        }
        self
    }

    /// The AEAD in use, `None` when crypto is off.
    pub fn aead(&self) -> Option<Aead> {
        self.active.as_ref().map(|a| a.aead)
    }

    /// Bytes a sealed packet has beyond its payload: [`OVERHEAD`], or 0 when crypto is off.
    pub fn overhead(&self) -> usize {
        if self.active.is_some() {
            OVERHEAD
        } else {
            0
        }
    }

    /// The epoch of the next packet's counter (`counter >> 32`); `None` when crypto is off or
    /// the counter is exhausted. The next boot's epoch must exceed the last value seen here.
    pub fn epoch(&self) -> Option<u32> {
        let next = self.active.as_ref()?.next?;
        Some((next >> 32) as u32)
    }

    /// Seals `payload` into a new buffer, the one allocation per packet. With crypto off,
    /// returns `payload` itself.
    pub fn seal(&mut self, payload: Bytes) -> Result<Bytes, SealError> {
        if self.active.is_none() {
            return Ok(payload);
        }
        let mut out = BytesMut::with_capacity(payload.len() + OVERHEAD);
        self.seal_into(&payload, &mut out)?;
        Ok(out.freeze())
    }

    /// Appends the sealed `payload` to `out` (the payload itself when crypto is off), for a
    /// caller that reuses its buffers. On error `out` is unchanged.
    pub fn seal_into(&mut self, payload: &[u8], out: &mut BytesMut) -> Result<(), SealError> {
        let Some(a) = &mut self.active else {
            out.extend_from_slice(payload);
            return Ok(());
        };
        if payload.len() > PAYLOAD_MAX {
            return Err(SealError::TooLarge { len: payload.len() });
        }
        let counter = a.next.ok_or(SealError::CounterExhausted)?;
        let header = header(a.format, a.local, counter);
        let start = out.len();
        out.reserve(payload.len() + OVERHEAD);
        out.put_slice(&header);
        out.put_slice(payload);
        let Ok(tag) = a.key.seal(&header, &mut out[start + HEADER_LEN..]) else {
            // Unreachable below PAYLOAD_MAX (the AEADs take gigabytes); never panic anyway.
            out.truncate(start);
            return Err(SealError::TooLarge { len: payload.len() });
        };
        out.put_slice(&tag);
        a.next = counter.checked_add(1);
        Ok(())
    }

    /// Authenticates and decrypts `packet`, then checks its sender's replay window.
    ///
    /// With crypto off, returns `packet` itself with no sender. On error the packet is to be
    /// dropped and counted; no state changed. Decrypts in place when `packet` is the only
    /// handle on its buffer (as a freshly received datagram is), else into one copy.
    pub fn open(&mut self, packet: Bytes) -> Result<Opened, OpenError> {
        let Some(a) = &mut self.active else {
            return Ok(Opened { sender: None, payload: packet });
        };
        let len = packet.len();
        match packet.first() {
            None => return Err(OpenError::TooShort { len }),
            Some(&b) if b != a.format => return Err(OpenError::BadVersion(b)),
            Some(_) if len < OVERHEAD => return Err(OpenError::TooShort { len }),
            Some(_) => {}
        }
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&packet[..HEADER_LEN]);
        let (sender, counter) = parse_header(&header);
        if a.windows.get(&sender).is_some_and(|w| !w.is_fresh(counter)) {
            return Err(OpenError::Replay { sender, counter });
        }
        let mut buf = packet.try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&buf[len - TAG_LEN..]);
        if a.key.open(&header, &mut buf[HEADER_LEN..len - TAG_LEN], &tag).is_err() {
            return Err(OpenError::AuthFailed { claimed: sender });
        }
        let senders = a.windows.len();
        match a.windows.entry(sender) {
            Entry::Occupied(mut w) => w.get_mut().accept(counter),
            Entry::Vacant(_) if senders >= a.senders_max => return Err(OpenError::TooManySenders { sender }),
            Entry::Vacant(slot) => {
                slot.insert(ReplayWindow::starting_at(counter));
            }
        }
        buf.truncate(len - TAG_LEN);
        buf.advance(HEADER_LEN);
        Ok(Opened { sender: Some(sender), payload: buf.freeze() })
    }

    /// Drops `sender`'s replay window, e.g. when it is removed from the nodelist. Its next
    /// packet opens a new window. Returns whether there was one.
    pub fn forget_sender(&mut self, sender: NodeId) -> bool {
        self.active.as_mut().is_some_and(|a| a.windows.remove(&sender).is_some())
    }

    /// How many senders have a replay window.
    pub fn senders(&self) -> usize {
        self.active.as_ref().map_or(0, |a| a.windows.len())
    }
}

impl fmt::Debug for PacketCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.active {
            None => f.write_str("PacketCrypto(off)"),
            Some(a) => f
                .debug_struct("PacketCrypto")
                .field("aead", &a.aead)
                .field("key", &"<redacted>")
                .field("local", &a.local)
                .field("next_counter", &a.next)
                .field("senders", &a.windows.len())
                .field("senders_max", &a.senders_max)
                .finish(),
        }
    }
}

fn header(format: u8, sender: NodeId, counter: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = format;
    h[1..5].copy_from_slice(&sender.0.to_be_bytes());
    h[5..].copy_from_slice(&counter.to_be_bytes());
    h
}

fn parse_header(h: &[u8; HEADER_LEN]) -> (NodeId, u64) {
    let mut id = [0u8; 4];
    id.copy_from_slice(&h[1..5]);
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&h[5..]);
    (NodeId(u32::from_be_bytes(id)), u64::from_be_bytes(counter))
}

/// The nonce is the header's sender id and counter.
fn nonce(header: &[u8; HEADER_LEN]) -> &[u8] {
    &header[1..1 + NONCE_LEN]
}

impl AeadKey {
    fn derive(aead: Aead, key: &AuthKey, cluster_name: &str) -> AeadKey {
        let hkdf = Hkdf::<Sha256>::new(Some(cluster_name.as_bytes()), key.secret());
        let mut okm = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: this cannot fail.
        assert!(hkdf.expand_multi_info(&[KDF_LABEL, aead.name().as_bytes()], &mut okm[..]).is_ok());
        match aead {
            Aead::Aes256Gcm => AeadKey::Aes(Box::new(Aes256Gcm::new(okm.as_ref().into()))),
            Aead::ChaCha20Poly1305 => AeadKey::ChaCha(Box::new(ChaCha20Poly1305::new(okm.as_ref().into()))),
        }
    }

    fn seal(&self, header: &[u8; HEADER_LEN], buf: &mut [u8]) -> Result<[u8; TAG_LEN], aes_gcm::Error> {
        let nonce = nonce(header).into();
        let tag = match self {
            AeadKey::Aes(k) => k.encrypt_in_place_detached(nonce, header, buf)?,
            AeadKey::ChaCha(k) => k.encrypt_in_place_detached(nonce, header, buf)?,
        };
        Ok(tag.into())
    }

    fn open(
        &self,
        header: &[u8; HEADER_LEN],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), aes_gcm::Error> {
        let nonce = nonce(header).into();
        match self {
            AeadKey::Aes(k) => k.decrypt_in_place_detached(nonce, header, buf, tag.into()),
            AeadKey::ChaCha(k) => k.decrypt_in_place_detached(nonce, header, buf, tag.into()),
        }
    }
}
