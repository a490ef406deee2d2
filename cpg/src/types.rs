//! The nouns of closed process groups, shared by the service and the client API.

use std::fmt;

/// Longest group name in bytes, as corosync's `CPG_MAX_NAME_LENGTH`.
pub const GROUP_NAME_MAX: usize = 128;

/// A group's name: 1 to [`GROUP_NAME_MAX`] bytes (usually UTF-8 text, but any bytes are valid).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupName(Vec<u8>);

/// Why a group name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupNameError {
    /// The name is empty.
    #[error("group name is empty")]
    Empty,
    /// The name is longer than [`GROUP_NAME_MAX`] bytes.
    #[error("group name of {0} bytes exceeds the maximum of {GROUP_NAME_MAX}")]
    TooLong(usize),
}

impl GroupName {
    /// A group name from bytes; empty or over-long names are refused.
    pub fn new(name: impl Into<Vec<u8>>) -> Result<GroupName, GroupNameError> {
        let name = name.into();
        match name.len() {
            0 => Err(GroupNameError::Empty),
            n if n > GROUP_NAME_MAX => Err(GroupNameError::TooLong(n)),
            _ => Ok(GroupName(name)),
        }
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<&str> for GroupName {
    type Error = GroupNameError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        GroupName::new(s.as_bytes())
    }
}

impl fmt::Display for GroupName {
    /// The name as text; bytes that are not UTF-8 are shown escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) => f.write_str(s),
            Err(_) => write!(f, "{}", self.0.escape_ascii()),
        }
    }
}

/// A process in a group: the node it runs on and its process id (corosync's `cpg_address`
/// without the reason).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId {
    /// The node id.
    pub node_id: u32,
    /// The process id on that node.
    pub pid: u32,
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.node_id, self.pid)
    }
}

/// Why a member joined or left a group; the numbers are corosync's `CPG_REASON_*`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The process joined.
    Join = 1,
    /// The process left.
    Leave = 2,
    /// Its node left the membership.
    NodeDown = 3,
    /// Its node came into the membership (a merge), with the process already in the group.
    NodeUp = 4,
    /// The process exited or closed its connection without leaving.
    ProcDown = 5,
}

impl Reason {
    /// The reason for corosync's number, if it is one.
    pub fn from_u32(n: u32) -> Option<Reason> {
        Some(match n {
            1 => Reason::Join,
            2 => Reason::Leave,
            3 => Reason::NodeDown,
            4 => Reason::NodeUp,
            5 => Reason::ProcDown,
            _ => return None,
        })
    }

    /// corosync's number for it.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// The lower-case name used in tools' output (`join`, `leave`, `nodedown`, `nodeup`, `procdown`).
    pub fn name(self) -> &'static str {
        match self {
            Reason::Join => "join",
            Reason::Leave => "leave",
            Reason::NodeDown => "nodedown",
            Reason::NodeUp => "nodeup",
            Reason::ProcDown => "procdown",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A member with the reason it joined or left, as listed in a configuration change.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Change {
    /// The member.
    pub member: MemberId,
    /// Why.
    pub reason: Reason,
}

/// A group's configuration change, as corosync's `cpg_confchg_fn_t` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confchg {
    /// The group.
    pub group: GroupName,
    /// Members after the change, sorted.
    pub members: Vec<MemberId>,
    /// Members that left, with why.
    pub left: Vec<Change>,
    /// Members that joined, with why.
    pub joined: Vec<Change>,
}

/// Ordering of a group message.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Guarantee {
    /// Agreed order (corosync's `CPG_TYPE_AGREED`): the same total order at every member.
    #[default]
    Agreed,
    /// Safe (corosync's `CPG_TYPE_SAFE`): agreed, and delivered once every node holds it.
    Safe,
}

/// A message delivered to a group member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The group.
    pub group: GroupName,
    /// Who sent it.
    pub sender: MemberId,
    /// Its ordering.
    pub guarantee: Guarantee,
    /// The bytes sent.
    pub data: bytes::Bytes,
}

/// The totem membership as CPG reports it (corosync's `cpg_totem_confchg_fn_t`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotemConfchg {
    /// The ring id's representative node.
    pub ring_representative: u32,
    /// The ring id's sequence number.
    pub ring_seq: u64,
    /// The nodes of the ring, sorted.
    pub members: Vec<u32>,
}

/// What a group member is told, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpgEvent {
    /// A message to a group this handle joined.
    Deliver(Message),
    /// A change in the membership of a group this handle joined.
    Confchg(Confchg),
    /// A new totem ring (sent to every handle that joined at least one group).
    Totem(TotemConfchg),
}

impl From<Guarantee> for totem::Guarantee {
    fn from(g: Guarantee) -> Self {
        match g {
            Guarantee::Agreed => totem::Guarantee::Agreed,
            Guarantee::Safe => totem::Guarantee::Safe,
        }
    }
}

impl From<totem::Guarantee> for Guarantee {
    fn from(g: totem::Guarantee) -> Self {
        match g {
            totem::Guarantee::Agreed => Guarantee::Agreed,
            totem::Guarantee::Safe => Guarantee::Safe,
        }
    }
}
