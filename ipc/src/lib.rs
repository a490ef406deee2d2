//! The local API between totemd and the programs on its node.
//!
//! Clients connect to the daemon's Unix stream socket ([`socket_path`] finds it) and exchange
//! frames: a 4-byte big-endian length, then a prost message ([`frame`]). A client sends
//! [`ClientFrame`]s, the daemon [`ServerFrame`]s.
//!
//! 1. Handshake ([`handshake`]): the client's first frame is a [`Hello`] with its
//!    [`PROTOCOL_VERSION`]; the daemon answers [`Welcome`] (its node id and `message_max`) or
//!    [`Refused`] (with an [`ErrorCode`] and a reason) and closes.
//! 2. Requests ([`Request`], each with a client-chosen id) get exactly one [`Response`] with the
//!    same id; [`Event`]s (group deliveries, configuration changes) come in between, in the
//!    order the daemon delivers them.
//!
//! The daemon's side is the sans-IO [`ServerSession`]; the client's side is
//! `Connection` (feature `tokio`). Decoding never panics on any bytes: errors are
//! [`FrameError`]s.
#![forbid(unsafe_code)]

mod admin;
mod confdb;
mod envelope;
mod error;
mod error_code;
mod event;
pub mod frame;
pub mod handshake;
mod path;
mod request;
mod response;
pub mod session;

#[cfg(feature = "tokio")]
mod connection;
#[cfg(feature = "tokio")]
pub mod io;

#[cfg(test)]
mod proptests;

pub use admin::{MetricsReply, MetricsRequest, ShutdownRequest};
pub use confdb::{
    ConfdbChange, ConfdbDelete, ConfdbEntries, ConfdbEntry, ConfdbGet, ConfdbIter, ConfdbNotify, ConfdbSet,
    ConfdbTrack, ConfdbTracking, ConfdbUntrack, ConfdbValue, ConfdbValueReply,
};
pub use envelope::{ClientFrame, ClientFrameKind, ServerFrame, ServerFrameKind};
pub use error::IpcError;
pub use error_code::ErrorCode;
pub use event::{CpgConfchg, CpgDeliver, Event, EventKind, Member, QuorumNotify, TotemConfchg};
pub use frame::{FrameDecoder, FrameError, FRAME_MAX_DEFAULT};
pub use handshake::{Hello, Refused, Welcome, PROTOCOL_VERSION, PROTOCOL_VERSION_MIN};
pub use path::{socket_path, LOCAL_SOCKET, SOCKET_ENV, SOCKET_FILE, SYSTEM_SOCKET};
pub use request::{
    CpgIterate, CpgJoin, CpgLeave, CpgLocalGet, CpgMcast, CpgMembership, FenceNode, Guarantee,
    QuorumSetExpected, QuorumSetVotes, QuorumStatusRequest, QuorumTrack, ReloadRequest, Request, RequestBody,
    StatusRequest,
};
pub use response::{
    ErrorReply, GroupInfo, Groups, LinkInfo, LocalNode, Members, OkReply, QuorumMember, QuorumReply,
    ReloadReply, Response, ResponseResult, StatusReply,
};
pub use session::{ServerSession, SessionConfig, SessionError, SessionInput, SessionState};

#[cfg(feature = "tokio")]
pub use connection::{ConnectOptions, Connection, PostWindow, EVENT_QUEUE_MAX_DEFAULT, POST_WINDOW_DEFAULT};
