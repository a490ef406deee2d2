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

pub mod config;
pub mod evs;
pub mod integrity;
pub mod liveness;
pub mod safe;
pub mod self_delivery;
pub mod total_order;

use std::fmt;

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
}

impl Check for Checkers {
    fn observe(&mut self, at: Instant, obs: &Observation<'_>, out: &mut Vec<Violation>) {
        if let Observation::ReceivedThrough { .. } = obs {
            // The hot path: only the safe checker cares.
            self.safe.observe(at, obs, out);
            return;
        }
        self.integrity.observe(at, obs, out);
        self.total_order.observe(at, obs, out);
        self.evs.observe(at, obs, out);
        self.self_delivery.observe(at, obs, out);
        self.safe.observe(at, obs, out);
        self.config.observe(at, obs, out);
        self.liveness.observe(at, obs, out);
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
