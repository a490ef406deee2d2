//! The daemon's answer to one request.

use bytes::Bytes;
use prost::Message;

use crate::{ErrorCode, Member};

/// The answer to the [`Request`](crate::Request) with the same `id`.
///
/// A response with id 0 and an error reports a problem with the connection itself (a
/// malformed frame): the daemon closes the connection after it.
#[derive(Clone, PartialEq, Message)]
pub struct Response {
    /// The request's id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The outcome; absent only from a daemon newer than this build.
    #[prost(oneof = "ResponseResult", tags = "2, 3, 4, 5, 6, 7, 8, 9, 20, 21, 22, 30")]
    pub result: Option<ResponseResult>,
}

/// The outcome of a request.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ResponseResult {
    /// Done, nothing to return (join, leave, mcast).
    #[prost(message, tag = "2")]
    Ok(OkReply),
    /// Failed; nothing changed.
    #[prost(message, tag = "3")]
    Error(ErrorReply),
    /// A group's members (membership).
    #[prost(message, tag = "4")]
    Members(Members),
    /// This node's id (local get).
    #[prost(message, tag = "5")]
    LocalNode(LocalNode),
    /// Groups and their members (iterate).
    #[prost(message, tag = "6")]
    Groups(Groups),
    /// The daemon's status.
    #[prost(message, tag = "7")]
    Status(StatusReply),
    /// What a reload changed.
    #[prost(message, tag = "8")]
    Reload(ReloadReply),
    /// The quorum state.
    #[prost(message, tag = "9")]
    Quorum(QuorumReply),
    /// A confdb key's value (get).
    #[prost(message, tag = "20")]
    ConfdbValue(crate::ConfdbValueReply),
    /// Confdb keys and values (iter).
    #[prost(message, tag = "21")]
    ConfdbEntries(crate::ConfdbEntries),
    /// A confdb track's id (track).
    #[prost(message, tag = "22")]
    ConfdbTracking(crate::ConfdbTracking),
    /// The metrics in the Prometheus text format.
    #[prost(message, tag = "30")]
    Metrics(crate::MetricsReply),
}

/// Success without a value.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct OkReply {}

/// A failed request.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ErrorReply {
    /// Why, as a code ([`ErrorCode`]).
    #[prost(enumeration = "ErrorCode", tag = "1")]
    pub code: i32,
    /// Why, for a human.
    #[prost(string, tag = "2")]
    pub message: String,
}

impl ErrorReply {
    /// An error with a code and a reason.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
        ErrorReply { code: code as i32, message: message.into() }
    }

    /// The code; numbers this build does not know read as [`ErrorCode::Unknown`].
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::from_wire(self.code)
    }
}

/// A group's members, sorted by node id then pid.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Members {
    /// The members (reason 0).
    #[prost(message, repeated, tag = "1")]
    pub members: Vec<Member>,
}

/// This node's id.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct LocalNode {
    /// The node id.
    #[prost(uint32, tag = "1")]
    pub node_id: u32,
}

/// Groups with their members, sorted by name.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Groups {
    /// The groups.
    #[prost(message, repeated, tag = "1")]
    pub groups: Vec<GroupInfo>,
}

/// One group and its members.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct GroupInfo {
    /// The group's name.
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    /// Its members (reason 0).
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}

/// The daemon's view of its ring.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct StatusReply {
    /// This node's id.
    #[prost(uint32, tag = "1")]
    pub node_id: u32,
    /// The ring id's representative.
    #[prost(uint32, tag = "2")]
    pub ring_rep: u32,
    /// The ring id's seq.
    #[prost(uint64, tag = "3")]
    pub ring_seq: u64,
    /// The ring's nodes, sorted.
    #[prost(uint32, repeated, tag = "4")]
    pub members: Vec<u32>,
    /// The engine's state (`operational`, `gather`, `commit`, `recovery`).
    #[prost(string, tag = "5")]
    pub state: String,
    /// Every link to every peer.
    #[prost(message, repeated, tag = "6")]
    pub links: Vec<LinkInfo>,
}

/// What a configuration reload changed, each entry as `key: old -> new`.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ReloadReply {
    /// Changes applied at once.
    #[prost(string, repeated, tag = "1")]
    pub applied: Vec<String>,
    /// Changes that need a restart; nothing of them was applied.
    #[prost(string, repeated, tag = "2")]
    pub not_applied: Vec<String>,
}

/// The quorum state, as corosync-quorumtool shows it.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct QuorumReply {
    /// `corosync_votequorum`, or empty when no provider is configured.
    #[prost(string, tag = "1")]
    pub provider: String,
    /// This node.
    #[prost(uint32, tag = "2")]
    pub node_id: u32,
    /// The ring id's representative (0 before the first ring).
    #[prost(uint32, tag = "3")]
    pub ring_rep: u32,
    /// The ring id's seq.
    #[prost(uint64, tag = "4")]
    pub ring_seq: u64,
    /// Whether this node's partition has quorum.
    #[prost(bool, tag = "5")]
    pub quorate: bool,
    /// Expected votes.
    #[prost(uint32, tag = "6")]
    pub expected_votes: u32,
    /// Highest expected votes of any member.
    #[prost(uint32, tag = "7")]
    pub highest_expected: u32,
    /// Votes of the members.
    #[prost(uint32, tag = "8")]
    pub total_votes: u32,
    /// Votes needed for quorum.
    #[prost(uint32, tag = "9")]
    pub quorum: u32,
    /// Flags in force: `2Node`, `Quorate`, `WaitForAll`, `LastManStanding`, `AutoTieBreaker`.
    #[prost(string, repeated, tag = "10")]
    pub flags: Vec<String>,
    /// The members.
    #[prost(message, repeated, tag = "11")]
    pub members: Vec<QuorumMember>,
    /// The whole status as `corosync-quorumtool -s` prints it.
    #[prost(string, tag = "12")]
    pub text: String,
    /// Nodes waiting to be fenced, sorted.
    #[prost(uint32, repeated, tag = "13")]
    pub fence_pending: Vec<u32>,
    /// Whether service is held for fencing (a fence pending, the startup wait for
    /// `post_join_delay`, or this node not yet unfenced).
    #[prost(bool, tag = "14")]
    pub fencing_held: bool,
}

/// One member in a [`QuorumReply`].
#[derive(Clone, PartialEq, Eq, Message)]
pub struct QuorumMember {
    /// The node.
    #[prost(uint32, tag = "1")]
    pub node_id: u32,
    /// Its votes.
    #[prost(uint32, tag = "2")]
    pub votes: u32,
    /// Its name (the nodelist's `name`, else its node id).
    #[prost(string, tag = "3")]
    pub name: String,
}

/// One link to one peer.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct LinkInfo {
    /// The peer.
    #[prost(uint32, tag = "1")]
    pub node_id: u32,
    /// The link number (corosync's `ringN_addr`).
    #[prost(uint32, tag = "2")]
    pub link: u32,
    /// Whether its heartbeats are answered.
    #[prost(bool, tag = "3")]
    pub up: bool,
}

impl Response {
    /// A response with a result.
    pub fn new(id: u64, result: ResponseResult) -> Response {
        Response { id, result: Some(result) }
    }

    /// A success without a value.
    pub fn ok(id: u64) -> Response {
        Response::new(id, ResponseResult::Ok(OkReply {}))
    }

    /// A failure.
    pub fn error(id: u64, code: ErrorCode, message: impl Into<String>) -> Response {
        Response::new(id, ResponseResult::Error(ErrorReply::new(code, message)))
    }

    /// The error code of a failure; `None` for a success.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match &self.result {
            Some(ResponseResult::Error(e)) => Some(e.error_code()),
            _ => None,
        }
    }
}
