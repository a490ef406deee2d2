//! Invariant checkers: they watch what the nodes emit, from outside, and report violations.
//!
//! Each checker is a small state machine fed [`Observation`]s in the order they happened. The
//! cluster feeds every one of them at every step; tests feed synthetic histories. A checker
//! never looks inside a node beyond the inspection API (`received_through`, `state`, ...).
//!
//! | module | rule |
//! | --- | --- |
//! | [`total_order`] | one total order of messages is consistent with every node's deliveries |
//! | [`evs`] | nodes moving together from ring R to ring R' delivered the same messages of R |
//! | [`integrity`] | no phantom, corrupted or duplicated delivery; sender FIFO |
//! | [`self_delivery`] | a node that stays up delivers its own messages |
//! | [`safe`] | a safe delivery in a regular configuration is held by every member |
//! | [`config`] | members agree on each ring; ring ids of a node strictly increase |
//! | [`liveness`] | once faults stop, one ring of all live nodes forms and delivers everything |
//! | [`split_brain`] | no two disjoint installed rings are quorate at once; stale quorum is short |
//! | [`fencing`] | with fencing, no two nodes outside each other's ring are both quorate, unfenced and active |
//! | [`cpg`] | closed process groups: per-group total order, delivery only to members, group
//! virtual synchrony, consistent configuration changes, agreement once faults stop |

pub mod config;
pub mod cpg;
pub mod evs;
pub mod fencing;
pub mod integrity;
pub mod liveness;
pub mod safe;
pub mod self_delivery;
pub mod split_brain;
pub mod total_order;

use std::fmt;

use ::cpg::service::ClientId;
use ::cpg::{CpgEvent, GroupName, MemberId};
use ::quorum::QuorumEvent;
use totem::{Configuration, Delivery, Guarantee, Instant, NodeId, RingId, Seq};

use crate::trace::format_time;
use crate::workload::MsgId;

/// Which rule a violation breaks.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckerKind {
    /// Total order.
    TotalOrder,
    /// Extended virtual synchrony.
    Evs,
    /// No phantom, corrupted or duplicate delivery; sender FIFO.
    Integrity,
    /// Self-delivery.
    SelfDelivery,
    /// Safe delivery.
    Safe,
    /// Configuration agreement and ring id monotonicity.
    Config,
    /// Liveness after faults stop.
    Liveness,
    /// The engine panicked or spun without time advancing.
    Engine,
    /// CPG: one order of each group's messages; no duplicate or phantom group message.
    CpgOrder,
    /// CPG: group messages only between a member's own join and leave.
    CpgMembership,
    /// CPG: members moving together between two configurations got the same messages.
    CpgSynchrony,
    /// CPG: each configuration change follows from the previous one.
    CpgConfchg,
    /// CPG: once faults stop, every node agrees on the groups and every member knows it.
    CpgLiveness,
    /// Quorum: two disjoint rings quorate at once, or a stale quorum held too long.
    SplitBrain,
    /// Fencing: two nodes outside each other's ring both quorate, unfenced and active.
    FencedSplitBrain,
    /// confdb: a node's `runtime.` keys disagree with the node, or its tracker missed a ring.
    Confdb,
}

impl CheckerKind {
    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            CheckerKind::TotalOrder => "total-order",
            CheckerKind::Evs => "evs",
            CheckerKind::Integrity => "integrity",
            CheckerKind::SelfDelivery => "self-delivery",
            CheckerKind::Safe => "safe",
            CheckerKind::Config => "config",
            CheckerKind::Liveness => "liveness",
            CheckerKind::Engine => "engine",
            CheckerKind::CpgOrder => "cpg-order",
            CheckerKind::CpgMembership => "cpg-membership",
            CheckerKind::CpgSynchrony => "cpg-synchrony",
            CheckerKind::CpgConfchg => "cpg-confchg",
            CheckerKind::CpgLiveness => "cpg-liveness",
            CheckerKind::SplitBrain => "split-brain",
            CheckerKind::FencedSplitBrain => "fenced-split-brain",
            CheckerKind::Confdb => "confdb",
        }
    }
}

/// A broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub checker: CheckerKind,
    /// Virtual time of detection.
    pub at: Instant,
    /// The node whose output revealed it, if one.
    pub node: Option<NodeId>,
    /// What went wrong, with the ids needed to find it in the trace.
    pub detail: String,
}

impl Violation {
    /// A violation of `checker` at `at`.
    pub fn new(checker: CheckerKind, at: Instant, node: Option<NodeId>, detail: impl Into<String>) -> Self {
        Violation { checker, at, node, detail: detail.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] t={}", self.checker.name(), format_time(self.at.as_nanos()).trim_start())?;
        if let Some(n) = self.node {
            write!(f, " n{n}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// One thing that happened, as the checkers see it. `incarnation` counts a node's restarts.
#[derive(Clone, Copy, Debug)]
pub enum Observation<'a> {
    /// The application submitted a message and the engine accepted it.
    Submit {
        /// The sender.
        node: NodeId,
        /// The sender's incarnation.
        incarnation: u32,
        /// The message.
        id: MsgId,
        /// Its guarantee.
        guarantee: Guarantee,
        /// Its length.
        len: usize,
        /// Its content fingerprint ([`crate::workload::payload_hash`]).
        hash: u64,
    },
    /// A node delivered a message.
    Deliver {
        /// The receiver.
        node: NodeId,
        /// The receiver's incarnation.
        incarnation: u32,
        /// The delivery.
        delivery: &'a Delivery,
        /// The id parsed from its payload (`None`: not one of ours).
        id: Option<MsgId>,
    },
    /// A node announced a transitional configuration.
    Transitional {
        /// The node.
        node: NodeId,
        /// Its incarnation.
        incarnation: u32,
        /// The configuration.
        config: &'a Configuration,
    },
    /// A node installed a regular configuration.
    Regular {
        /// The node.
        node: NodeId,
        /// Its incarnation.
        incarnation: u32,
        /// The configuration.
        config: &'a Configuration,
    },
    /// After a step, the node is operational in `ring_id` and holds every packet through `seq`.
    ReceivedThrough {
        /// The node.
        node: NodeId,
        /// Its incarnation.
        incarnation: u32,
        /// The ring.
        ring_id: RingId,
        /// Its `my_aru`.
        seq: Seq,
    },
    /// A node crashed (everything but its persisted state is lost).
    Crash {
        /// The node.
        node: NodeId,
        /// The incarnation that died.
        incarnation: u32,
    },
    /// A node restarted as a new incarnation.
    Restart {
        /// The node.
        node: NodeId,
        /// The new incarnation.
        incarnation: u32,
    },
    /// A node was paused (it runs nothing until it resumes).
    Pause {
        /// The node.
        node: NodeId,
    },
    /// A paused node resumed.
    Resume {
        /// The node.
        node: NodeId,
    },
    /// votequorum told the node's quorum trackers of a change.
    Quorum {
        /// The node.
        node: NodeId,
        /// Its incarnation.
        incarnation: u32,
        /// The event.
        event: &'a QuorumEvent,
    },
    /// After an input to a node running votequorum: its last installed ring and whether
    /// votequorum says quorate.
    QuorumState {
        /// The node.
        node: NodeId,
        /// Its incarnation.
        incarnation: u32,
        /// The last ring it installed.
        ring_id: RingId,
        /// The members of that ring.
        members: &'a [NodeId],
        /// `Votequorum::is_quorate`.
        quorate: bool,
        /// The engine is operational (not in a membership change).
        operational: bool,
    },
    /// After an input to a node running fencing: its last installed ring, votequorum's
    /// verdict, whether its fencer holds service, and whether the engine is operational.
    FenceState {
        /// The node.
        node: NodeId,
        /// Its incarnation.
        incarnation: u32,
        /// The last ring it installed.
        ring_id: RingId,
        /// The members of that ring.
        members: &'a [NodeId],
        /// `Votequorum::is_quorate`.
        quorate: bool,
        /// `Fencer::is_blocking`.
        blocked: bool,
        /// The engine is operational (not in a membership change).
        operational: bool,
    },
    /// A CPG client connected to its node.
    CpgConnect {
        /// The client.
        client: ClientRef,
    },
    /// A CPG client went away (its process exited; the service sees `procdown`).
    CpgDisconnect {
        /// The client.
        client: ClientRef,
    },
    /// The service accepted a client's join.
    CpgJoin {
        /// The client.
        client: ClientRef,
        /// The group.
        group: &'a GroupName,
    },
    /// The service accepted a client's leave.
    CpgLeave {
        /// The client.
        client: ClientRef,
        /// The group.
        group: &'a GroupName,
    },
    /// The service accepted a client's group message.
    CpgSend {
        /// The sender.
        client: ClientRef,
        /// The group.
        group: &'a GroupName,
        /// The message.
        id: MsgId,
    },
    /// A client was told something (in the order it was told).
    CpgEvent {
        /// The client.
        client: ClientRef,
        /// The last regular ring its node had installed when the event came out.
        ring_id: RingId,
        /// The event.
        event: &'a CpgEvent,
        /// For a message: the id parsed from its data (`None`: not one of ours).
        id: Option<MsgId>,
    },
}

/// A simulated CPG client as the checkers know it. Pids are never reused on a node (see
/// [`crate::clients`]), so [`ClientRef::member`] names one client for the whole run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientRef {
    /// Its node.
    pub node: NodeId,
    /// Its connection id on that node.
    pub client: ClientId,
    /// Its process id.
    pub pid: u32,
}

impl ClientRef {
    /// The client as group member lists name it.
    pub fn member(self) -> MemberId {
        MemberId { node_id: self.node.0, pid: self.pid }
    }
}

impl fmt::Display for ClientRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {}/{}", self.node, self.pid)
    }
}

/// A checker: fed every observation in order, it appends what it finds to `out`.
pub trait Check {
    /// Looks at one observation made at virtual time `at`.
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>);
}

/// All step-wise checkers together, fed in one call.
#[derive(Debug, Default)]
pub struct Checkers {
    /// Total order.
    pub total_order: total_order::TotalOrder,
    /// Extended virtual synchrony.
    pub evs: evs::Evs,
    /// Integrity.
    pub integrity: integrity::Integrity,
    /// Self-delivery.
    pub self_delivery: self_delivery::SelfDelivery,
    /// Safe delivery.
    pub safe: safe::Safe,
    /// Configuration agreement.
    pub config: config::ConfigAgreement,
    /// Liveness probes (messages that every live node must deliver).
    pub liveness: liveness::Probes,
    /// The closed process group checkers.
    pub cpg: cpg::CpgCheckers,
    /// No split brain.
    pub split_brain: split_brain::NoSplitBrain,
    /// No split brain with fencing.
    pub fencing: fencing::NoFencedSplitBrain,
}

impl Check for Checkers {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        if let Observation::ReceivedThrough { .. } = obs {
            // The hot path: only the safe checker cares.
            self.safe.observe(at, obs, out);
            return;
        }
        if obs.is_cpg() {
            self.cpg.observe(at, obs, out);
            return;
        }
        if obs.is_quorum() {
            self.split_brain.observe(at, obs, out);
            self.fencing.observe(at, obs, out);
            return;
        }
        self.integrity.observe(at, obs, out);
        self.total_order.observe(at, obs, out);
        self.evs.observe(at, obs, out);
        self.self_delivery.observe(at, obs, out);
        self.safe.observe(at, obs, out);
        self.config.observe(at, obs, out);
        self.liveness.observe(at, obs, out);
        if let Observation::Crash { .. } = obs {
            self.cpg.observe(at, obs, out);
            self.split_brain.observe(at, obs, out);
            self.fencing.observe(at, obs, out);
        }
    }
}

impl Observation<'_> {
    /// Whether only the split brain checker cares.
    pub fn is_quorum(&self) -> bool {
        matches!(
            self,
            Observation::Pause { .. }
                | Observation::Resume { .. }
                | Observation::Quorum { .. }
                | Observation::QuorumState { .. }
                | Observation::FenceState { .. }
        )
    }

    /// Whether only the CPG checkers care.
    pub fn is_cpg(&self) -> bool {
        matches!(
            self,
            Observation::CpgConnect { .. }
                | Observation::CpgDisconnect { .. }
                | Observation::CpgJoin { .. }
                | Observation::CpgLeave { .. }
                | Observation::CpgSend { .. }
                | Observation::CpgEvent { .. }
        )
    }
}

/// Feeds a synthetic history to a checker and returns what it reported (for tests).
pub fn run_history<C: Check>(checker: &mut C, history: &[(u64, Observation<'_>)]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (t, obs) in history {
        checker.observe(Instant::from_nanos(*t), obs, &mut out);
    }
    out
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Builders for synthetic histories.
    use bytes::Bytes;
    use totem::{Configuration, Delivery, Guarantee, NodeId, RingId, Seq};

    use crate::workload::{make_payload, MsgId};

    pub fn ring(seq: u64, rep: u32) -> RingId {
        RingId { seq, representative: NodeId(rep) }
    }

    pub fn conf(ring_id: RingId, members: &[u32]) -> Configuration {
        Configuration { ring_id, members: members.iter().map(|&m| NodeId(m)).collect() }
    }

    pub fn id(sender: u32, counter: u64) -> MsgId {
        MsgId { sender: NodeId(sender), counter }
    }

    pub fn delivery(ring_id: RingId, seq: u64, msg: MsgId, guarantee: Guarantee) -> Delivery {
        Delivery { ring_id, seq: Seq(seq), sender: msg.sender, guarantee, payload: make_payload(msg, 4) }
    }

    pub fn raw(ring_id: RingId, seq: u64, sender: u32, payload: &'static [u8]) -> Delivery {
        Delivery {
            ring_id,
            seq: Seq(seq),
            sender: NodeId(sender),
            guarantee: Guarantee::Agreed,
            payload: Bytes::from_static(payload),
        }
    }
}
