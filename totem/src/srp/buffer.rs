//! The packets of one ring, as received, with `my_aru`, the highest seq and the delivery point.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::ids::RingId;
use crate::wire::Mcast;

/// A packet kept for delivery and retransmission.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) mcast: Mcast,
    /// The encoded packet, re-sent unchanged on a retransmit request.
    pub(crate) raw: Bytes,
}

/// Packets of one ring indexed by seq.
#[derive(Clone, Debug)]
pub(crate) struct RingBuffer {
    pub(crate) ring_id: RingId,
    packets: BTreeMap<u64, Stored>,
    /// Every packet with seq <= `my_aru` has been received.
    pub(crate) my_aru: u64,
    /// Highest seq received.
    pub(crate) high_seq: u64,
    /// Highest seq handed to delivery.
    pub(crate) delivered: u64,
    /// Packets with seq <= this were discarded after every member held them.
    gc_through: u64,
    /// Token visits on which each missing seq was found missing.
    miss_counts: BTreeMap<u64, u32>,
}

impl RingBuffer {
    pub(crate) fn new(ring_id: RingId) -> Self {
        RingBuffer {
            ring_id,
            packets: BTreeMap::new(),
            my_aru: 0,
            high_seq: 0,
            delivered: 0,
            gc_through: 0,
            miss_counts: BTreeMap::new(),
        }
    }

    /// Inserts a packet; false if it was a duplicate or already discarded.
    pub(crate) fn insert(&mut self, stored: Stored) -> bool {
        let seq = stored.mcast.seq;
        if seq <= self.my_aru || seq <= self.gc_through || self.packets.contains_key(&seq) {
            return false;
        }
        self.packets.insert(seq, stored);
        self.high_seq = self.high_seq.max(seq);
        while self.packets.contains_key(&(self.my_aru + 1)) {
            self.my_aru += 1;
        }
        true
    }

    pub(crate) fn get(&self, seq: u64) -> Option<&Stored> {
        self.packets.get(&seq)
    }

    pub(crate) fn contains(&self, seq: u64) -> bool {
        seq <= self.gc_through || self.packets.contains_key(&seq)
    }

    /// Held packets with seq in `(from, through]`.
    pub(crate) fn range(&self, from: u64, through: u64) -> impl Iterator<Item = &Stored> {
        self.packets
            .range(from.saturating_add(1)..)
            .take_while(move |(&seq, _)| seq <= through)
            .map(|(_, s)| s)
    }

    /// Seqs in `(my_aru, through]` not held on at least `miss_count` token visits in a row, at
    /// most `max` of them (corosync's `miss_count_const`: a late multicast gets a few visits to
    /// arrive before its retransmission is requested).
    pub(crate) fn missing(&mut self, through: u64, miss_count: u32, max: usize) -> Vec<u64> {
        let my_aru = self.my_aru;
        self.miss_counts = self.miss_counts.split_off(&(my_aru + 1));
        let mut out = Vec::new();
        let mut seq = my_aru + 1;
        while seq <= through && out.len() < max {
            if self.packets.contains_key(&seq) {
                self.miss_counts.remove(&seq);
            } else {
                let misses = self.miss_counts.entry(seq).or_insert(0);
                *misses = misses.saturating_add(1);
                if *misses >= miss_count {
                    out.push(seq);
                }
            }
            seq += 1;
        }
        out
    }

    /// Discards delivered packets every member holds (seq <= `through`).
    pub(crate) fn collect_garbage(&mut self, through: u64) {
        let through = through.min(self.delivered).min(self.my_aru);
        if through <= self.gc_through {
            return;
        }
        self.packets = self.packets.split_off(&(through + 1));
        self.gc_through = through;
    }

    /// Number of packets held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.packets.len()
    }
}
