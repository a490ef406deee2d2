//! Application load: messages with unique ids, random sizes and mixed guarantees.
//!
//! A payload is `[sender: u64 BE][counter: u64 BE][padding]`. The id lets the checkers tie
//! every delivery back to its submission; the padding (a pattern, not random bytes, so making
//! it costs no entropy) makes some messages larger than one datagram so fragmentation runs.

use std::fmt;

use bytes::Bytes;
use totem::{Guarantee, NodeId};

use crate::rng::SimRng;

/// Bytes of the id header at the start of every payload.
pub const HEADER_LEN: usize = 16;

/// A message's identity: its sender and the sender's counter (never reused, even across
/// restarts, because the counter lives in the simulated application, not in the node).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId {
    /// The node that submitted it.
    pub sender: NodeId,
    /// The sender's message counter.
    pub counter: u64,
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}.{}", self.sender, self.counter)
    }
}

/// Builds the payload of message `id` with `padding` extra bytes.
pub fn make_payload(id: MsgId, padding: usize) -> Bytes {
    let mut buf = Vec::with_capacity(HEADER_LEN + padding);
    buf.extend_from_slice(&u64::from(id.sender.0).to_be_bytes());
    buf.extend_from_slice(&id.counter.to_be_bytes());
    let salt = id.counter as u8 ^ id.sender.0 as u8;
    buf.extend((0..padding).map(|i| (i as u8).wrapping_add(salt)));
    Bytes::from(buf)
}

/// The id of a payload, or `None` when it is not one of ours.
pub fn parse_payload(payload: &[u8]) -> Option<MsgId> {
    let sender = u64::from_be_bytes(payload.get(0..8)?.try_into().ok()?);
    let counter = u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?);
    let sender = u32::try_from(sender).ok()?;
    Some(MsgId { sender: NodeId(sender), counter })
}

/// A content fingerprint of a byte string, to detect corrupted deliveries: a multiply-rotate
/// hash over 8-byte words (word-wise so that fingerprinting every delivery stays cheap).
pub fn payload_hash(payload: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (payload.len() as u64).wrapping_mul(K);
    let mut words = payload.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K).rotate_left(29);
    }
    h ^ (h >> 31)
}

/// The shape of the random application load.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadConfig {
    /// Messages each node submits per simulated second (Poisson arrivals); 0 = none.
    pub rate_per_node: f64,
    /// Fraction of messages sent with [`Guarantee::Safe`].
    pub safe_fraction: f64,
    /// Fraction of messages whose padding is large (between `large_min` and `large_max`).
    pub large_fraction: f64,
    /// Largest padding of a small message.
    pub small_max: usize,
    /// Smallest padding of a large message (above one datagram's payload).
    pub large_min: usize,
    /// Largest padding of a large message.
    pub large_max: usize,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            rate_per_node: 20.0,
            safe_fraction: 0.3,
            large_fraction: 0.05,
            small_max: 200,
            large_min: 1400,
            large_max: 5000,
        }
    }
}

impl LoadConfig {
    /// No load at all.
    pub fn none() -> Self {
        LoadConfig { rate_per_node: 0.0, ..LoadConfig::default() }
    }

    /// Draws a padding size.
    pub fn sample_padding(&self, rng: &mut SimRng) -> usize {
        if rng.chance(self.large_fraction) {
            rng.range_inclusive(self.large_min as u64, self.large_max as u64) as usize
        } else {
            rng.range_inclusive(0, self.small_max as u64) as usize
        }
    }

    /// Draws a guarantee.
    pub fn sample_guarantee(&self, rng: &mut SimRng) -> Guarantee {
        if rng.chance(self.safe_fraction) {
            Guarantee::Safe
        } else {
            Guarantee::Agreed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_its_id() {
        let id = MsgId { sender: NodeId(7), counter: 123_456 };
        for pad in [0, 1, 1500, 4000] {
            let p = make_payload(id, pad);
            assert_eq!(p.len(), HEADER_LEN + pad);
            assert_eq!(parse_payload(&p), Some(id));
        }
        assert_eq!(parse_payload(b"short"), None);
    }

    #[test]
    fn hash_tells_payloads_apart() {
        let a = make_payload(MsgId { sender: NodeId(1), counter: 1 }, 10);
        let b = make_payload(MsgId { sender: NodeId(1), counter: 2 }, 10);
        assert_ne!(payload_hash(&a), payload_hash(&b));
        assert_eq!(payload_hash(&a), payload_hash(&a.clone()));
        assert_ne!(payload_hash(b"abcdefgh1"), payload_hash(b"abcdefgh2"));
        assert_ne!(payload_hash(b""), payload_hash(b"\0"));
    }
}
