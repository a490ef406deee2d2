//! Faults as data: what a scenario, a proptest schedule or a test applies to a cluster.

use std::fmt;
use std::time::Duration;

use totem::NodeId;

use crate::fence::SwitchMode;
use crate::net::Rule;

/// One change to the cluster's environment.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Replace the network's cuts: nodes in different groups cannot reach each other (both
    /// ways); nodes in no group form one more group.
    Partition(Vec<Vec<NodeId>>),
    /// Cut the directed link `from → to` (an asymmetric fault).
    Cut {
        /// Sender side.
        from: NodeId,
        /// Receiver side.
        to: NodeId,
    },
    /// Restore the directed link `from → to`.
    Uncut {
        /// Sender side.
        from: NodeId,
        /// Receiver side.
        to: NodeId,
    },
    /// Restore every link.
    Heal,
    /// Crash a node (only its persisted state survives).
    Crash(NodeId),
    /// A node leaves cleanly (shutdown), then is down like a crashed one.
    Leave(NodeId),
    /// Restart a crashed node.
    Restart(NodeId),
    /// Stop a node for a while; it then resumes with stale state.
    Pause(NodeId, Duration),
    /// Resume a paused node now.
    Resume(NodeId),
    /// Set the cluster-wide loss probability.
    SetLoss(f64),
    /// Append a fault rule.
    AddRule(Rule),
    /// Remove every fault rule.
    ClearRules,
    /// Set the application load (messages per node per second).
    SetLoad(f64),
    /// Make a power switch (a fence device) fail or hang, or (`None`) work again.
    Switch {
        /// The device's name.
        device: String,
        /// How it misbehaves.
        mode: Option<SwitchMode>,
    },
    /// The operator powers a node on that a switch powered off.
    PowerOn(NodeId),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition(groups) => {
                let g: Vec<Vec<u32>> = groups.iter().map(|g| g.iter().map(|n| n.0).collect()).collect();
                write!(f, "partition {g:?}")
            }
            Fault::Cut { from, to } => write!(f, "cut n{from} -> n{to}"),
            Fault::Uncut { from, to } => write!(f, "uncut n{from} -> n{to}"),
            Fault::Heal => write!(f, "heal"),
            Fault::Crash(n) => write!(f, "crash n{n}"),
            Fault::Leave(n) => write!(f, "leave n{n}"),
            Fault::Restart(n) => write!(f, "restart n{n}"),
            Fault::Pause(n, d) => write!(f, "pause n{n} for {d:?}"),
            Fault::Resume(n) => write!(f, "resume n{n}"),
            Fault::SetLoss(p) => write!(f, "loss {:.1}%", p * 100.0),
            Fault::AddRule(r) => write!(
                f,
                "rule {:?} p={} from {:?} to {:?} kinds {:?}",
                r.action, r.probability, r.from, r.to, r.kinds
            ),
            Fault::ClearRules => write!(f, "clear rules"),
            Fault::SetLoad(r) => write!(f, "load {r:.1} msg/s per node"),
            Fault::Switch { device, mode: Some(m) } => write!(f, "switch {device} {m}"),
            Fault::Switch { device, mode: None } => write!(f, "switch {device} works"),
            Fault::PowerOn(n) => write!(f, "power on n{n}"),
        }
    }
}
