//! The API applications link to follow quorum (feature `client`), like corosync's
//! `quorum_getquorate` and `quorum_trackstart`: through totemd's local socket.
//!
//! ```no_run
//! # async fn f() -> Result<(), ipc::IpcError> {
//! let q = quorum::client::Quorum::connect(ipc::socket_path(None)).await?;
//! println!("quorate: {}", q.is_quorate().await?);
//! q.track().await?;
//! while let Some(event) = q.next_event().await {
//!     println!("quorate {} in ring {} with {:?}", event.quorate, event.ring_id, event.members);
//!     if event.fencing_held {
//!         println!("service held: fencing {:?}", event.fence_pending);
//!     }
//! }
//! # Ok(()) }
//! ```

use std::path::Path;

use ipc::{
    Connection, EventKind, IpcError, QuorumReply, QuorumStatusRequest, QuorumTrack, RequestBody,
    ResponseResult,
};
use totem::{NodeId, RingId};

/// A quorum change or a fencing change, as a tracking client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackEvent {
    /// Whether this partition is quorate now.
    pub quorate: bool,
    /// The ring the members belong to.
    pub ring_id: RingId,
    /// Members of that ring, sorted.
    pub members: Vec<NodeId>,
    /// Nodes waiting to be fenced, sorted (empty without fencing).
    pub fence_pending: Vec<NodeId>,
    /// Whether the cluster holds service for fencing: a fence is pending, the startup wait for
    /// `post_join_delay` runs, or this node is not yet unfenced. Applications that write to
    /// shared storage must wait while it is true.
    pub fencing_held: bool,
}

/// A connection to totemd for quorum information.
pub struct Quorum {
    conn: Connection,
}

impl Quorum {
    /// Connects to the daemon's socket at `path`.
    pub async fn connect(path: impl AsRef<Path>) -> Result<Quorum, IpcError> {
        let (conn, _) = Connection::connect(path, "quorum-client").await?;
        Ok(Quorum { conn })
    }

    /// Whether this node's partition is quorate now (`quorum_getquorate`).
    pub async fn is_quorate(&self) -> Result<bool, IpcError> {
        Ok(self.status().await?.quorate)
    }

    /// The whole votequorum state, as `totemctl quorum` shows it.
    pub async fn status(&self) -> Result<QuorumReply, IpcError> {
        match self.conn.request(RequestBody::QuorumStatus(QuorumStatusRequest {})).await? {
            ResponseResult::Quorum(q) => Ok(q),
            other => Err(IpcError::UnexpectedReply(format!("{other:?}"))),
        }
    }

    /// Starts tracking: [`Quorum::next_event`] gives the current state, then every change of
    /// quorum or of the fencing state (`quorum_trackstart` with `CS_TRACK_CURRENT |
    /// CS_TRACK_CHANGES`). Fails with the
    /// daemon's `NotSupported` when no quorum provider is configured.
    pub async fn track(&self) -> Result<(), IpcError> {
        self.conn.request(RequestBody::QuorumTrack(QuorumTrack {})).await.map(|_| ())
    }

    /// The next quorum event, in order; `None` once the connection closed.
    pub async fn next_event(&self) -> Option<TrackEvent> {
        loop {
            if let Some(EventKind::Quorum(q)) = self.conn.next_event().await?.kind {
                return Some(TrackEvent {
                    quorate: q.quorate,
                    ring_id: RingId { seq: q.ring_seq, representative: NodeId(q.ring_rep) },
                    members: q.members.into_iter().map(NodeId).collect(),
                    fence_pending: q.fence_pending.into_iter().map(NodeId).collect(),
                    fencing_held: q.fencing_held,
                });
            }
        }
    }
}
