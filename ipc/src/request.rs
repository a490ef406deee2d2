//! A client's request: an id the response echoes, and one body.

use bytes::Bytes;
use prost::Message;

/// Ordering asked for a multicast (corosync's `CPG_TYPE_AGREED` / `CPG_TYPE_SAFE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Guarantee {
    /// The same total order at every member.
    Agreed = 0,
    /// Agreed, and delivered only once every node of the ring holds it.
    Safe = 1,
}

/// A request. The daemon answers every request with exactly one
/// [`Response`](crate::Response) carrying the same `id`.
#[derive(Clone, PartialEq, Message)]
pub struct Request {
    /// Chosen by the client; echoed in the response. Clients start at 1: the daemon reports
    /// a connection-level error (a malformed frame) with id 0.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// What is asked. Absent when the client sent a kind this build does not know: the
    /// daemon answers [`ErrorCode::NotSupported`](crate::ErrorCode::NotSupported).
    #[prost(
        oneof = "RequestBody",
        tags = "2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 20, 21, 22, 23, 24, 25, 30, 31"
    )]
    pub body: Option<RequestBody>,
}

/// What a request asks.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum RequestBody {
    /// Join a group (corosync's `cpg_join`).
    #[prost(message, tag = "2")]
    CpgJoin(CpgJoin),
    /// Leave a group (`cpg_leave`).
    #[prost(message, tag = "3")]
    CpgLeave(CpgLeave),
    /// Multicast to a group this connection joined (`cpg_mcast_joined`).
    #[prost(message, tag = "4")]
    CpgMcast(CpgMcast),
    /// A group's members (`cpg_membership_get`).
    #[prost(message, tag = "5")]
    CpgMembership(CpgMembership),
    /// This node's id (`cpg_local_get`).
    #[prost(message, tag = "6")]
    CpgLocalGet(CpgLocalGet),
    /// Every group, or one, with its members (`cpg_iteration_*`).
    #[prost(message, tag = "7")]
    CpgIterate(CpgIterate),
    /// The daemon's ring, members and links.
    #[prost(message, tag = "8")]
    Status(StatusRequest),
    /// Read the configuration file again and apply what may change at run time.
    #[prost(message, tag = "9")]
    Reload(ReloadRequest),
    /// The quorum state (`corosync-quorumtool -s`).
    #[prost(message, tag = "10")]
    QuorumStatus(QuorumStatusRequest),
    /// Set the cluster's expected votes (`corosync-quorumtool -e`).
    #[prost(message, tag = "11")]
    QuorumSetExpected(QuorumSetExpected),
    /// Set a node's votes (`corosync-quorumtool -v`).
    #[prost(message, tag = "12")]
    QuorumSetVotes(QuorumSetVotes),
    /// Receive a quorum event now and at every change (`quorum_trackstart`).
    #[prost(message, tag = "13")]
    QuorumTrack(QuorumTrack),
    /// Fence a node now (fence_node).
    #[prost(message, tag = "14")]
    Fence(FenceNode),
    /// Confirm by hand that a node is down (fence_ack_manual): its pending fence completes.
    #[prost(message, tag = "15")]
    FenceAck(FenceNode),
    /// Read a confdb key (`cmap_get`).
    #[prost(message, tag = "20")]
    ConfdbGet(crate::ConfdbGet),
    /// Set a confdb key (`cmap_set`).
    #[prost(message, tag = "21")]
    ConfdbSet(crate::ConfdbSet),
    /// Delete a confdb key (`cmap_delete`).
    #[prost(message, tag = "22")]
    ConfdbDelete(crate::ConfdbDelete),
    /// The confdb keys under a prefix (`cmap_iter_*`).
    #[prost(message, tag = "23")]
    ConfdbIter(crate::ConfdbIter),
    /// Track a confdb key or prefix (`cmap_track_add`).
    #[prost(message, tag = "24")]
    ConfdbTrack(crate::ConfdbTrack),
    /// Stop a confdb track (`cmap_track_delete`).
    #[prost(message, tag = "25")]
    ConfdbUntrack(crate::ConfdbUntrack),
    /// The runtime counters in the Prometheus text format.
    #[prost(message, tag = "30")]
    Metrics(crate::MetricsRequest),
    /// Leave the ring cleanly and exit (`corosync-cfgtool -H`).
    #[prost(message, tag = "31")]
    Shutdown(crate::ShutdownRequest),
}

/// Join a group.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct CpgJoin {
    /// The group's name (1 to 128 bytes).
    #[prost(bytes = "bytes", tag = "1")]
    pub group: Bytes,
}

/// Leave a group.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct CpgLeave {
    /// The group's name.
    #[prost(bytes = "bytes", tag = "1")]
    pub group: Bytes,
}

/// Multicast a message to a group.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct CpgMcast {
    /// The group's name.
    #[prost(bytes = "bytes", tag = "1")]
    pub group: Bytes,
    /// The ordering ([`Guarantee`]).
    #[prost(enumeration = "Guarantee", tag = "2")]
    pub guarantee: i32,
    /// The message, at most the `Welcome`'s `message_max` bytes.
    #[prost(bytes = "bytes", tag = "3")]
    pub data: Bytes,
    /// Queued (pipelined): while the daemon cannot take the message (its queue is full, a
    /// member reads slowly, a node is being fenced) it holds it, and every later request of
    /// this client, instead of answering `TryAgain`; the answer comes once it is taken. A
    /// client may so send many without waiting, and they stay in order.
    #[prost(bool, tag = "4")]
    pub queued: bool,
}

/// Ask for a group's members.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct CpgMembership {
    /// The group's name.
    #[prost(bytes = "bytes", tag = "1")]
    pub group: Bytes,
}

/// Ask for this node's id.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct CpgLocalGet {}

/// Ask for groups and their members.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct CpgIterate {
    /// One group, or every group when absent.
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub group: Option<Bytes>,
}

/// Ask for the daemon's status.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct StatusRequest {}

/// A node to fence, or whose fence to acknowledge.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct FenceNode {
    /// The node.
    #[prost(uint32, tag = "1")]
    pub node_id: u32,
}

/// Start tracking quorum: one event with the current state, then one per change.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct QuorumTrack {}

/// Ask for the quorum state.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct QuorumStatusRequest {}

/// Set the expected votes.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct QuorumSetExpected {
    /// The new expected votes.
    #[prost(uint32, tag = "1")]
    pub expected: u32,
}

/// Set one node's votes.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct QuorumSetVotes {
    /// The node.
    #[prost(uint32, tag = "1")]
    pub node_id: u32,
    /// Its new votes.
    #[prost(uint32, tag = "2")]
    pub votes: u32,
}

/// Ask the daemon to reload its configuration file.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ReloadRequest {}

impl RequestBody {
    /// A short name for logs (`cpg_join`, `cpg_mcast`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            RequestBody::CpgJoin(_) => "cpg_join",
            RequestBody::CpgLeave(_) => "cpg_leave",
            RequestBody::CpgMcast(_) => "cpg_mcast",
            RequestBody::CpgMembership(_) => "cpg_membership",
            RequestBody::CpgLocalGet(_) => "cpg_local_get",
            RequestBody::CpgIterate(_) => "cpg_iterate",
            RequestBody::Status(_) => "status",
            RequestBody::Reload(_) => "reload",
            RequestBody::QuorumStatus(_) => "quorum_status",
            RequestBody::QuorumSetExpected(_) => "quorum_set_expected",
            RequestBody::QuorumSetVotes(_) => "quorum_set_votes",
            RequestBody::QuorumTrack(_) => "quorum_track",
            RequestBody::Fence(_) => "fence",
            RequestBody::FenceAck(_) => "fence_ack",
            RequestBody::ConfdbGet(_) => "confdb_get",
            RequestBody::ConfdbSet(_) => "confdb_set",
            RequestBody::ConfdbDelete(_) => "confdb_delete",
            RequestBody::ConfdbIter(_) => "confdb_iter",
            RequestBody::ConfdbTrack(_) => "confdb_track",
            RequestBody::ConfdbUntrack(_) => "confdb_untrack",
            RequestBody::Metrics(_) => "metrics",
            RequestBody::Shutdown(_) => "shutdown",
        }
    }
}
