//! Application messages waiting for the token, packed into packets up to `netmtu` and cut into
//! fragments when larger.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::event::Guarantee;
use crate::wire::Fragment;

/// Bytes of prost framing around one fragment's data (tags, lengths, flags), kept free when packing.
const FRAGMENT_OVERHEAD: usize = 16;

/// Smallest piece worth starting a fragment for at the end of a packet.
const FRAGMENT_MIN: usize = 64;

#[derive(Clone, Debug)]
struct Pending {
    payload: Bytes,
    guarantee: Guarantee,
    /// Bytes already cut into fragments that got a seq.
    offset: usize,
}

/// The send queue of one node.
#[derive(Clone, Debug, Default)]
pub(crate) struct SendQueue {
    queue: VecDeque<Pending>,
    /// Payload bytes not yet in a packet.
    bytes: usize,
}

impl SendQueue {
    pub(crate) fn push(&mut self, payload: Bytes, guarantee: Guarantee) {
        self.bytes += payload.len();
        self.queue.push_back(Pending { payload, guarantee, offset: 0 });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Packets needed to send everything queued, roughly: the backlog the token carries.
    pub(crate) fn backlog(&self, payload_max: usize) -> u32 {
        let packets = self.bytes.div_ceil(payload_max);
        u32::try_from(packets.max(self.queue.len().min(1))).unwrap_or(u32::MAX)
    }

    /// A message cut short by a ring change starts over in the new ring: the fragments that got a
    /// seq in the old ring are dropped everywhere as an incomplete message.
    pub(crate) fn restart_partial(&mut self) {
        if let Some(front) = self.queue.front_mut() {
            self.bytes += front.offset;
            front.offset = 0;
        }
    }

    /// Takes the next packet's fragments, at most `payload_max` bytes of them, and their
    /// guarantee. Messages of one guarantee only share a packet. `cut` gets each message
    /// whose first fragment this is and which takes more than one.
    pub(crate) fn next_packet(
        &mut self,
        payload_max: usize,
        mut cut: impl FnMut(&Bytes),
    ) -> Option<(Vec<Fragment>, Guarantee)> {
        let guarantee = self.queue.front()?.guarantee;
        let mut room = payload_max;
        let mut fragments = Vec::new();
        while let Some(front) = self.queue.front_mut() {
            if front.guarantee != guarantee
                || room < FRAGMENT_OVERHEAD + FRAGMENT_MIN.min(front.payload.len() - front.offset)
            {
                break;
            }
            let remaining = front.payload.len() - front.offset;
            let fits = room - FRAGMENT_OVERHEAD;
            let take = remaining.min(fits);
            if take < remaining && take < FRAGMENT_MIN && !fragments.is_empty() {
                break;
            }
            let first = front.offset == 0;
            let data = front.payload.slice(front.offset..front.offset + take);
            front.offset += take;
            self.bytes -= take;
            room -= take + FRAGMENT_OVERHEAD;
            let last = front.offset == front.payload.len();
            if first && !last {
                cut(&front.payload);
            }
            fragments.push(Fragment { first, last, data });
            if !last {
                break;
            }
            self.queue.pop_front();
        }
        if fragments.is_empty() {
            return None;
        }
        Some((fragments, guarantee))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(len: usize) -> Bytes {
        Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>())
    }

    #[test]
    fn small_messages_share_one_packet() {
        let mut q = SendQueue::default();
        for _ in 0..5 {
            q.push(msg(100), Guarantee::Agreed);
        }
        let (frags, g) = q.next_packet(1340, |_| {}).unwrap();
        assert_eq!(g, Guarantee::Agreed);
        assert_eq!(frags.len(), 5);
        assert!(frags.iter().all(|f| f.first && f.last));
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn large_message_is_cut_into_fragments_that_reassemble() {
        let mut q = SendQueue::default();
        let m = msg(5000);
        q.push(m.clone(), Guarantee::Safe);
        let mut pieces = Vec::new();
        while let Some((frags, g)) = q.next_packet(1340, |_| {}) {
            assert_eq!(g, Guarantee::Safe);
            assert_eq!(frags.len(), 1);
            pieces.push(frags[0].clone());
        }
        assert!(pieces.len() >= 4);
        assert!(pieces[0].first && !pieces[0].last);
        assert!(pieces.last().unwrap().last);
        let joined: Vec<u8> = pieces.iter().flat_map(|f| f.data.iter().copied()).collect();
        assert_eq!(joined, m.to_vec());
    }

    #[test]
    fn guarantees_do_not_mix_in_a_packet() {
        let mut q = SendQueue::default();
        q.push(msg(10), Guarantee::Agreed);
        q.push(msg(10), Guarantee::Safe);
        assert_eq!(q.next_packet(1340, |_| {}).unwrap().0.len(), 1);
        assert_eq!(q.next_packet(1340, |_| {}).unwrap().1, Guarantee::Safe);
    }

    #[test]
    fn restart_partial_resends_from_the_start() {
        let mut q = SendQueue::default();
        q.push(msg(3000), Guarantee::Agreed);
        let (frags, _) = q.next_packet(1340, |_| {}).unwrap();
        assert!(frags[0].first && !frags[0].last);
        q.restart_partial();
        assert_eq!(q.bytes(), 3000);
        let (frags, _) = q.next_packet(1340, |_| {}).unwrap();
        assert!(frags[0].first);
    }
}
