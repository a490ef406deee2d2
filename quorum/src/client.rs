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
//! }
//! # Ok(()) }
//! ```

use std::path::Path;

use ipc::{
    Connection, EventKind, IpcError, QuorumReply, QuorumStatusRequest, QuorumTrack, RequestBody,
    ResponseResult,
};
use totem::{NodeId, RingId};

use crate::votequorum::QuorumEvent;

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

    /// Starts tracking: [`Quorum::next_event`] gives the current state, then every change
    /// (`quorum_trackstart` with `CS_TRACK_CURRENT | CS_TRACK_CHANGES`). Fails with the
    /// daemon's `NotSupported` when no quorum provider is configured.
    pub async fn track(&self) -> Result<(), IpcError> {
        self.conn.request(RequestBody::QuorumTrack(QuorumTrack {})).await.map(|_| ())
    }

    /// The next quorum event, in order; `None` once the connection closed.
    pub async fn next_event(&self) -> Option<QuorumEvent> {
        loop {
            if let Some(EventKind::Quorum(q)) = self.conn.next_event().await?.kind {
                return Some(QuorumEvent {
                    quorate: q.quorate,
                    ring_id: RingId { seq: q.ring_seq, representative: NodeId(q.ring_rep) },
                    members: q.members.into_iter().map(NodeId).collect(),
                });
            }
        }
    }
}
