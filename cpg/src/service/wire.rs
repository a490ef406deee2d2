//! The service's messages on the ring: prost bodies inside one Totem message each.
//!
//! Every operation carries the ring in which its sender submitted it: a node submits
//! operations only once the sync round of its current ring is complete, so an operation whose
//! ring differs from the ring it is delivered in was queued before a configuration change and
//! is ignored at every node alike (its sender queues it again; see the service's doc).

use bytes::Bytes;
use prost::Message;
use totem::wire::WireRingId;

/// One service message.
#[derive(Clone, PartialEq, Message)]
pub struct CpgPacket {
    /// The ring the sender was synced to when it submitted this.
    #[prost(message, optional, tag = "1")]
    pub ring_id: Option<WireRingId>,
    /// What it says.
    #[prost(oneof = "Body", tags = "2, 3, 4, 5")]
    pub body: Option<Body>,
}

/// The operations.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Body {
    /// A process joins a group.
    #[prost(message, tag = "2")]
    Join(MemberOp),
    /// A process leaves a group (reason leave or procdown).
    #[prost(message, tag = "3")]
    Leave(MemberOp),
    /// A message to a group.
    #[prost(message, tag = "4")]
    Mcast(McastOp),
    /// The sender's local members, once per ring (the sync round).
    #[prost(message, tag = "5")]
    Sync(SyncOp),
}

/// A join or leave.
#[derive(Clone, PartialEq, Message)]
pub struct MemberOp {
    /// The group's name.
    #[prost(bytes = "vec", tag = "1")]
    pub group: Vec<u8>,
    /// The process.
    #[prost(uint32, tag = "2")]
    pub pid: u32,
    /// corosync's reason number (leaves only).
    #[prost(uint32, tag = "3")]
    pub reason: u32,
}

/// A group message.
#[derive(Clone, PartialEq, Message)]
pub struct McastOp {
    /// The group's name.
    #[prost(bytes = "vec", tag = "1")]
    pub group: Vec<u8>,
    /// The sending process.
    #[prost(uint32, tag = "2")]
    pub pid: u32,
    /// The bytes.
    #[prost(bytes = "bytes", tag = "3")]
    pub data: Bytes,
}

/// The members of one group on the sender's node.
#[derive(Clone, PartialEq, Message)]
pub struct SyncGroup {
    /// The group's name.
    #[prost(bytes = "vec", tag = "1")]
    pub group: Vec<u8>,
    /// Process ids of the sender's members.
    #[prost(uint32, repeated, tag = "2")]
    pub pids: Vec<u32>,
}

/// A sync round message: every local member of every group.
#[derive(Clone, PartialEq, Message)]
pub struct SyncOp {
    /// One entry per group with local members.
    #[prost(message, repeated, tag = "1")]
    pub groups: Vec<SyncGroup>,
}
