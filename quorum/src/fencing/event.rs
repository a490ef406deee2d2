//! What the fencer reports: events as they happen, and a bounded history of results.

use totem::{Instant, NodeId};

/// How many past results [`super::Fencer::history`] keeps; the oldest is dropped.
pub const HISTORY_MAX: usize = 64;

/// How many undrained events are kept; beyond it the oldest is dropped and counted.
pub const EVENTS_MAX: usize = 1024;

/// The `by` of a fence the operator acknowledged.
pub const ACKNOWLEDGED: &str = "acknowledged";

/// Something the daemon logs or forwards to clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceEvent {
    /// `node` must be fenced and is not yet.
    Pending {
        /// The victim.
        node: NodeId,
    },
    /// One device of one method failed (or timed out); the next method or a retry follows.
    AttemptFailed {
        /// The victim.
        node: NodeId,
        /// The method.
        method: String,
        /// The device.
        device: String,
        /// The agent's output or the reason.
        detail: String,
    },
    /// `node` is fenced: every device of `by` succeeded, or `by` is [`ACKNOWLEDGED`], or
    /// another member reported it (`by` is then what it said).
    Fenced {
        /// The victim.
        node: NodeId,
        /// The method, or [`ACKNOWLEDGED`].
        by: String,
    },
    /// A victim joined again before any agent ran for it, and needs no fencing: it was a
    /// victim only because it did not join at startup, or because it was lost while this
    /// partition had no quorum (fenced(8): "the fencing is no longer needed and will be
    /// skipped").
    Cancelled {
        /// The former victim.
        node: NodeId,
    },
    /// `node` has no fence configuration: it stays pending until acknowledged.
    Unfenceable {
        /// The victim.
        node: NodeId,
    },
    /// `member` runs `node`'s agents in this ring (its claim was delivered first).
    Owner {
        /// The victim.
        node: NodeId,
        /// The member that fences it.
        member: NodeId,
    },
    /// Every unfence device of this node succeeded: it may serve.
    Unfenced,
    /// An unfence device failed (or timed out); all of them run again after `retry_delay`.
    UnfenceFailed {
        /// The device.
        device: String,
        /// The agent's output or the reason.
        detail: String,
    },
    /// Service must now be held ([`super::Fencer::is_blocking`] became true).
    Blocked,
    /// Service may resume.
    Unblocked,
}

/// One finished fence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The victim.
    pub node: NodeId,
    /// When it completed.
    pub at: Instant,
    /// The method that succeeded, or [`ACKNOWLEDGED`].
    pub by: String,
    /// Agent runs that failed before it.
    pub failed_attempts: u32,
}
