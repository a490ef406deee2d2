//! Reassembly of fragmented application messages, per sender, in delivery order.

use std::collections::{BTreeMap, HashMap};

use bytes::{Bytes, BytesMut};

use crate::ids::NodeId;
use crate::wire::Fragment;

/// Partial messages by sender. A sender's fragments are consecutive in its own order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Assembly {
    partial: BTreeMap<NodeId, Vec<Bytes>>,
    /// This node's messages being sent in several fragments, by the address of their first
    /// byte: each fragment is a slice of one of these, so the message is handed back whole
    /// instead of joined (a copy) when its fragments are delivered.
    own: HashMap<usize, Bytes>,
}

impl Assembly {
    /// Keeps one of this node's messages that is cut into several fragments.
    pub(crate) fn keep_own(&mut self, payload: Bytes) {
        self.own.insert(payload.as_ptr() as usize, payload);
    }

    /// Adds a delivered fragment; returns the whole message when this was its last piece.
    /// A continuation without its start (lost to a ring change) is dropped.
    pub(crate) fn push(&mut self, sender: NodeId, fragment: &Fragment) -> Option<Bytes> {
        if fragment.first && fragment.last {
            self.partial.remove(&sender);
            return Some(fragment.data.clone());
        }
        if fragment.first {
            self.partial.insert(sender, vec![fragment.data.clone()]);
            return None;
        }
        let pieces = self.partial.get_mut(&sender)?;
        pieces.push(fragment.data.clone());
        if !fragment.last {
            return None;
        }
        let pieces = self.partial.remove(&sender)?;
        let len: usize = pieces.iter().map(Bytes::len).sum();
        if let Some(own) = self.own.remove(&(pieces[0].as_ptr() as usize)) {
            // The pieces lie end to end from the start of the kept message and cover it: they
            // are its bytes (memory inside a live buffer belongs to it alone).
            let contiguous = pieces.windows(2).all(|w| w[0].as_ptr_range().end == w[1].as_ptr());
            if contiguous && len == own.len() {
                return Some(own);
            }
        }
        let mut whole = BytesMut::with_capacity(len);
        for p in pieces {
            whole.extend_from_slice(&p);
        }
        Some(whole.freeze())
    }

    /// Forgets every partial message: at the end of a ring they can no longer complete (a
    /// message of this node cut short starts over, and is kept again).
    pub(crate) fn clear(&mut self) {
        self.partial.clear();
        self.own.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(data: Bytes, first: bool, last: bool) -> Fragment {
        Fragment { first, last, data }
    }

    #[test]
    fn an_own_message_comes_back_whole_without_a_copy_and_others_are_joined() {
        let me = NodeId(1);
        let message = Bytes::from((0..=255u8).cycle().take(10_000).collect::<Vec<u8>>());
        let mut a = Assembly::default();
        a.keep_own(message.clone());
        assert_eq!(a.push(me, &piece(message.slice(..4000), true, false)), None);
        assert_eq!(a.push(me, &piece(message.slice(4000..8000), false, false)), None);
        let whole = a.push(me, &piece(message.slice(8000..), false, true)).unwrap();
        assert_eq!(whole, message);
        assert_eq!(whole.as_ptr(), message.as_ptr(), "the kept message itself");
        assert!(a.own.is_empty());

        // The same bytes from elsewhere (a peer's packets): joined, equal.
        let copy = Bytes::copy_from_slice(&message);
        assert_eq!(a.push(NodeId(2), &piece(copy.slice(..5000), true, false)), None);
        let joined = a.push(NodeId(2), &piece(copy.slice(5000..), false, true)).unwrap();
        assert_eq!(joined, message);

        // Kept, but the pieces do not cover it: joined.
        a.keep_own(message.clone());
        assert_eq!(a.push(me, &piece(message.slice(..3000), true, false)), None);
        let short = a.push(me, &piece(message.slice(5000..6000), false, true)).unwrap();
        assert_eq!(short.len(), 4000);
        assert_ne!(short.as_ptr(), message.as_ptr());
    }
}
