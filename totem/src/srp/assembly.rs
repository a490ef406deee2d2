//! Reassembly of fragmented application messages, per sender, in delivery order.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

use crate::ids::NodeId;
use crate::wire::Fragment;

/// Partial messages by sender. A sender's fragments are consecutive in its own order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Assembly {
    partial: BTreeMap<NodeId, Vec<Bytes>>,
}

impl Assembly {
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
        let mut whole = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
        for p in pieces {
            whole.extend_from_slice(&p);
        }
        Some(whole.freeze())
    }

    /// Forgets every partial message: at the end of a ring they can no longer complete.
    pub(crate) fn clear(&mut self) {
        self.partial.clear();
    }
}
