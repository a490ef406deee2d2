//! What the daemon tells a client without being asked: deliveries and configuration changes.

use bytes::Bytes;
use prost::Message;

use crate::Guarantee;

/// A process in a group, with why it is listed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Message)]
pub struct Member {
    /// Its node.
    #[prost(uint32, tag = "1")]
    pub node_id: u32,
    /// Its process id.
    #[prost(uint32, tag = "2")]
    pub pid: u32,
    /// corosync's `CPG_REASON_*`: 1 join, 2 leave, 3 nodedown, 4 nodeup, 5 procdown; 0 in
    /// plain member lists.
    #[prost(uint32, tag = "3")]
    pub reason: u32,
}

/// An event, in the order the daemon delivers them.
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    /// What happened; absent only from a daemon newer than this build.
    #[prost(oneof = "EventKind", tags = "1, 2, 3, 4, 20")]
    pub kind: Option<EventKind>,
}

/// What happened.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum EventKind {
    /// A message to a group this connection joined.
    #[prost(message, tag = "1")]
    CpgDeliver(CpgDeliver),
    /// A change of a joined group's members.
    #[prost(message, tag = "2")]
    CpgConfchg(CpgConfchg),
    /// A new totem ring.
    #[prost(message, tag = "3")]
    TotemConfchg(TotemConfchg),
    /// The quorum state changed (or tracking started).
    #[prost(message, tag = "4")]
    Quorum(QuorumNotify),
    /// A tracked confdb key changed.
    #[prost(message, tag = "20")]
    ConfdbNotify(crate::ConfdbNotify),
}

/// A quorum event: whether this node's partition is quorate, in which ring, with which members.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct QuorumNotify {
    /// Quorate or not.
    #[prost(bool, tag = "1")]
    pub quorate: bool,
    /// The ring id's representative.
    #[prost(uint32, tag = "2")]
    pub ring_rep: u32,
    /// The ring id's seq.
    #[prost(uint64, tag = "3")]
    pub ring_seq: u64,
    /// The ring's nodes, sorted.
    #[prost(uint32, repeated, tag = "4")]
    pub members: Vec<u32>,
    /// Nodes waiting to be fenced, sorted.
    #[prost(uint32, repeated, tag = "5")]
    pub fence_pending: Vec<u32>,
    /// Whether service is held for fencing.
    #[prost(bool, tag = "6")]
    pub fencing_held: bool,
}

/// A group message.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct CpgDeliver {
    /// The group.
    #[prost(bytes = "bytes", tag = "1")]
    pub group: Bytes,
    /// The sender's node.
    #[prost(uint32, tag = "2")]
    pub node_id: u32,
    /// The sender's process id.
    #[prost(uint32, tag = "3")]
    pub pid: u32,
    /// Its ordering ([`Guarantee`]).
    #[prost(enumeration = "Guarantee", tag = "4")]
    pub guarantee: i32,
    /// The bytes sent.
    #[prost(bytes = "bytes", tag = "5")]
    pub data: Bytes,
}

/// A group's configuration change.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct CpgConfchg {
    /// The group.
    #[prost(bytes = "bytes", tag = "1")]
    pub group: Bytes,
    /// Members after the change (reason 0).
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
    /// Members that left, with their reason.
    #[prost(message, repeated, tag = "3")]
    pub left: Vec<Member>,
    /// Members that joined, with their reason.
    #[prost(message, repeated, tag = "4")]
    pub joined: Vec<Member>,
}

/// A new totem ring.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct TotemConfchg {
    /// The ring id's representative.
    #[prost(uint32, tag = "1")]
    pub ring_rep: u32,
    /// The ring id's seq.
    #[prost(uint64, tag = "2")]
    pub ring_seq: u64,
    /// The ring's nodes, sorted.
    #[prost(uint32, repeated, tag = "3")]
    pub members: Vec<u32>,
}

impl Event {
    /// An event of this kind.
    pub fn new(kind: EventKind) -> Event {
        Event { kind: Some(kind) }
    }
}
