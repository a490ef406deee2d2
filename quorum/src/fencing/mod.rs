//! Fencing policy, sans-IO: who must be fenced, with which agent, and when service is held
//! (cman's fenced; fenced(8), fence_node(8), cluster.conf(5)).
//!
//! The [`Fencer`](crate::fencing::Fencer) never runs a process or reads a clock: it asks the daemon to run an agent
//! ([`RunAgent`](crate::fencing::RunAgent)) and is told the result. See [`Fencer`](crate::fencing::Fencer) for the call order and the rules.
//!
//! A fencer made with [`Fencer::new`](crate::fencing::Fencer::new) decides alone: it runs every victim's agents itself. The
//! daemon runs [`Fencer::coordinated`](crate::fencing::Fencer::coordinated) ones, which share the work over the ring: one member
//! runs a victim's agents and tells the others (see the `coord` module), and each node unfences
//! itself at start.

mod agent;
mod config;
mod coord;
#[cfg(test)]
mod coord_proptest;
#[cfg(test)]
mod coord_tests;
mod event;
#[cfg(all(test, unix))]
mod script_tests;
mod steps;
#[cfg(test)]
mod tests;
mod unfence;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use totem::{Instant, NodeId, RingId};

pub use agent::{OpId, RunAgent};
pub use config::{BlockPolicy, ConfigError, Device, DeviceRef, FenceConfig, Method, NodeFencing};
pub use event::{FenceEvent, HistoryEntry, ACKNOWLEDGED, EVENTS_MAX, HISTORY_MAX};

/// Why a manual [`Fencer::fence`] was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    /// The node has no fence configuration.
    #[error("node {0} has no fence configuration")]
    NotConfigured(NodeId),
    /// The node is already being fenced.
    #[error("node {0} is already being fenced")]
    AlreadyPending(NodeId),
    /// A coordinated fencer never fences its own node.
    #[error("node {0} is this node: fence it from another member")]
    IsLocal(NodeId),
}

/// Why an [`Fencer::ack`] was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The node is not pending fencing.
    #[error("node {0} is not pending fencing")]
    NotPending(NodeId),
}

/// Why a node became a victim; it decides whether rejoining cancels the fence.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Cause {
    /// Left a quorate ring without a clean leave: fenced even if it rejoins.
    Lost,
    /// Left while this partition had no quorum: we cannot tell which side was cut off, so a
    /// rejoin before any agent ran means the partitions merged, and cancels.
    LostWithoutQuorum,
    /// Did not join within `post_join_delay` of the first quorate ring; joining cancels.
    Startup,
    /// The operator asked (fence_node): runs even without quorum, never cancelled.
    Manual,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Step {
    /// Run `method`/`device` as soon as allowed.
    Ready,
    /// An agent runs; it counts as failed at `deadline`.
    Running { op: OpId, deadline: Instant },
    /// Every method failed; start again from the first at this time.
    RetryAt(Instant),
    /// No configuration: waits for an ack.
    Unfenceable,
}

#[derive(Clone, Debug)]
struct Victim {
    cause: Cause,
    method: usize,
    device: usize,
    step: Step,
    failed: u32,
    /// Some agent ran for this victim: a rejoin no longer cancels.
    ran: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Startup {
    NotStarted,
    AwaitQuorum,
    /// Configured nodes not seen by this time are fenced.
    Delay(Instant),
    Done,
}

/// The fencing state machine.
///
/// # Call order
/// 1. [`Fencer::new`] with a configuration, then [`Fencer::start`]. Inputs before `start`
///    only record the membership.
/// 2. Feed inputs: [`Fencer::handle_membership`] at every new ring (with votequorum's verdict),
///    [`Fencer::handle_agent_result`] when an agent exits, [`Fencer::handle_timeout`] when
///    [`Fencer::poll_timeout`] passes, [`Fencer::handle_peer_fenced`] when another member
///    reports a fence; operator commands [`Fencer::fence`] and [`Fencer::ack`].
/// 3. After each input drain [`Fencer::poll_action`] (run those agents) and
///    [`Fencer::poll_event`], re-arm the timer with [`Fencer::poll_timeout`], and hold or
///    release service per [`Fencer::is_blocking`].
///
/// # Rules (fenced's)
/// - A node that leaves the membership without a clean leave becomes a victim. Only a quorate
///   partition runs agents; a partition without quorum keeps its victims pending (and so
///   blocks) until it regains quorum (fenced(8): "fencing operations are postponed until
///   quorum is restored").
/// - Startup: after the first quorate ring, configured nodes not seen as members within
///   `post_join_delay` are fenced. Service is held during that wait.
/// - Methods are tried in order; all devices of a method must succeed, one after another; on a
///   failure the next method starts; after the last, wait `retry_delay` and start again from
///   the first, forever, until one succeeds or the operator acks.
/// - A victim that rejoins before it is fenced: fenced skips it, because cman has already
///   killed any node that rejoined without a full restart, so a rejoined node is known clean.
///   Totem tells us no such thing: a node lost by a quorate ring may merge back with stale
///   state, so we still fence it (as pacemaker does). Only victims recorded without quorum or
///   at startup, with no agent run yet, are cancelled by a rejoin ([`FenceEvent::Cancelled`]).
/// - A node fenced while a member (manual fence, or a rejoined victim) will drop out of the
///   ring next; that loss is expected and makes no new victim, if it comes within
///   `agent_timeout` of the fence. Later (the node survived, or restarted and rejoined in
///   between) a loss makes a victim again: one needless fence rather than a missed one.
/// - Two-node clusters: both halves are quorate and fence each other; the device `delay`
///   attribute ([`RunAgent::delay`]) lets one side win.
#[derive(Debug)]
pub struct Fencer {
    config: FenceConfig,
    startup: Startup,
    members: BTreeSet<NodeId>,
    quorate: bool,
    seen: BTreeSet<NodeId>,
    victims: BTreeMap<NodeId, Victim>,
    /// Fenced while members: their loss is expected until this time.
    fenced_members: BTreeMap<NodeId, Instant>,
    next_op: u64,
    actions: VecDeque<RunAgent>,
    events: VecDeque<FenceEvent>,
    events_dropped: u64,
    history: VecDeque<HistoryEntry>,
    was_blocking: bool,
    /// This node, when coordinated with the other members.
    local: Option<NodeId>,
    /// The current ring, when coordinated.
    ring: Option<RingId>,
    /// Victim -> the member whose claim was delivered first in this ring.
    claims: BTreeMap<NodeId, NodeId>,
    /// Victims this member claimed in this ring.
    claims_sent: BTreeSet<NodeId>,
    /// Members whose `Sync` for this ring was delivered.
    synced: BTreeSet<NodeId>,
    /// Every member's `Sync` for this ring was delivered: claims may go out.
    in_sync: bool,
    /// Fencing messages to multicast.
    messages: VecDeque<Vec<u8>>,
    /// This node's unfencing, until it is done.
    unfence: Option<unfence::Unfence>,
}

impl Fencer {
    /// A fencer for a validated configuration.
    pub fn new(config: FenceConfig) -> Result<Fencer, ConfigError> {
        config.validate()?;
        Ok(Fencer {
            config,
            startup: Startup::NotStarted,
            members: BTreeSet::new(),
            quorate: false,
            seen: BTreeSet::new(),
            victims: BTreeMap::new(),
            fenced_members: BTreeMap::new(),
            next_op: 1,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            events_dropped: 0,
            history: VecDeque::new(),
            was_blocking: false,
            local: None,
            ring: None,
            claims: BTreeMap::new(),
            claims_sent: BTreeSet::new(),
            synced: BTreeSet::new(),
            in_sync: false,
            messages: VecDeque::new(),
            unfence: None,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &FenceConfig {
        &self.config
    }

    /// Begins fencing decisions; the startup delay begins at the first quorate ring (now, if
    /// the current one is). Calling it again does nothing.
    pub fn start(&mut self, now: Instant) {
        if self.startup != Startup::NotStarted {
            return;
        }
        self.startup = Startup::AwaitQuorum;
        self.begin_unfence();
        // Only nodes seen from now on count as joined for the startup rule.
        self.seen = self.members.clone();
        self.begin_startup_delay(now);
        self.finish(now);
    }

    /// A new ring: its members, votequorum's verdict, and the nodes that left with a clean
    /// leave since the previous ring.
    ///
    /// `quorate` must be the verdict for this ring, never the previous ring's: a node lost
    /// while `quorate` is true is fenced at once. Calling again with the same members when only
    /// the verdict changes is fine (nothing is lost, postponed fences start or wait).
    pub fn handle_membership(
        &mut self,
        now: Instant,
        members: &[NodeId],
        quorate: bool,
        left_cleanly: &[NodeId],
    ) {
        let members: BTreeSet<NodeId> = members.iter().copied().collect();
        let lost: Vec<NodeId> = self.members.difference(&members).copied().collect();
        self.members = members;
        self.quorate = quorate;
        self.seen.extend(self.members.iter().copied());
        let expected: Vec<NodeId> = lost
            .iter()
            .copied()
            .filter(|n| self.fenced_members.get(n).is_some_and(|&until| now <= until))
            .collect();
        self.fenced_members.retain(|n, until| self.members.contains(n) && now <= *until);
        if self.startup == Startup::NotStarted {
            return;
        }
        for node in lost {
            if left_cleanly.contains(&node) || expected.contains(&node) {
                continue;
            }
            let cause = if quorate { Cause::Lost } else { Cause::LostWithoutQuorum };
            self.add_victim(node, cause);
        }
        self.cancel_rejoined();
        self.begin_startup_delay(now);
        self.finish(now);
    }

    /// An agent run finished: `success` when it exited 0; `detail` is its output or reason.
    /// Results for unknown, timed-out or acknowledged runs are ignored.
    pub fn handle_agent_result(&mut self, now: Instant, op: OpId, success: bool, detail: String) {
        if self.unfence_result(now, op, success, detail.clone()) {
            self.finish(now);
            return;
        }
        let Some(node) = self.running(op) else {
            tracing::debug!(%op, "fencing: result for an unknown or abandoned run ignored");
            return;
        };
        if success {
            self.device_succeeded(now, node);
        } else {
            self.device_failed(now, node, detail);
        }
        self.finish(now);
    }

    /// A deadline from [`Fencer::poll_timeout`] passed. Spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Startup::Delay(deadline) = self.startup {
            if now >= deadline {
                self.end_startup_delay();
            }
        }
        self.unfence_timeout(now);
        let nodes: Vec<NodeId> = self.victims.keys().copied().collect();
        for node in nodes {
            match self.victims[&node].step {
                Step::Running { deadline, .. } if now >= deadline => {
                    let secs = self.config.agent_timeout.as_secs_f64();
                    self.device_failed(now, node, format!("timed out after {secs} s"));
                }
                Step::RetryAt(at) if now >= at => self.victim_mut(node).step = Step::Ready,
                _ => {}
            }
        }
        self.finish(now);
    }

    /// Another member reports that it fenced `node` (`by`: its method, or [`ACKNOWLEDGED`]).
    pub fn handle_peer_fenced(&mut self, now: Instant, node: NodeId, by: String) {
        self.complete(now, node, by);
        self.finish(now);
    }

    /// Fences `node` now, as fence_node(8) does: with or without quorum, whether or not the
    /// node is a member. A coordinated fencer multicasts the request, and the members fence
    /// `node` once it is delivered.
    pub fn fence(&mut self, now: Instant, node: NodeId) -> Result<(), FenceError> {
        if !self.config.nodes.contains_key(&node) {
            return Err(FenceError::NotConfigured(node));
        }
        if self.victims.contains_key(&node) {
            return Err(FenceError::AlreadyPending(node));
        }
        if self.local == Some(node) {
            return Err(FenceError::IsLocal(node));
        }
        if self.local.is_some() {
            self.send_request(node);
            return Ok(());
        }
        self.add_victim(node, Cause::Manual);
        self.finish(now);
        Ok(())
    }

    /// The operator declares `node` fenced (fence_ack_manual): retries stop, a running agent's
    /// result will be ignored, and the node counts as fenced.
    pub fn ack(&mut self, now: Instant, node: NodeId) -> Result<(), AckError> {
        if !self.victims.contains_key(&node) {
            return Err(AckError::NotPending(node));
        }
        self.complete(now, node, ACKNOWLEDGED.to_owned());
        self.send_done(node, ACKNOWLEDGED);
        self.finish(now);
        Ok(())
    }

    /// The next agent to run.
    pub fn poll_action(&mut self) -> Option<RunAgent> {
        self.actions.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<FenceEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline: the end of the startup delay, an agent's timeout, or a retry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let startup = match self.startup {
            Startup::Delay(at) => Some(at),
            _ => None,
        };
        let victims = self.victims.values().filter_map(|v| match v.step {
            Step::Running { deadline, .. } => Some(deadline),
            Step::RetryAt(at) => Some(at),
            Step::Ready | Step::Unfenceable => None,
        });
        startup.into_iter().chain(victims).chain(self.unfence_deadline()).min()
    }

    /// Nodes that must be fenced and are not yet, in node id order.
    pub fn pending(&self) -> Vec<NodeId> {
        self.victims.keys().copied().collect()
    }

    /// Whether service must be held: a fence is pending, the startup delay is running with
    /// configured nodes not yet seen, or this node is not yet unfenced (under
    /// [`BlockPolicy::BlockWhilePending`]).
    pub fn is_blocking(&self) -> bool {
        match self.config.policy {
            BlockPolicy::Never => false,
            BlockPolicy::BlockWhilePending => {
                !self.victims.is_empty()
                    || self.is_unfencing()
                    || (matches!(self.startup, Startup::Delay(_)) && !self.unseen_nodes().is_empty())
            }
        }
    }

    /// Past fences, oldest first, at most [`HISTORY_MAX`].
    pub fn history(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.history.iter()
    }

    /// Events dropped because nobody drained them ([`EVENTS_MAX`]).
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }
}
