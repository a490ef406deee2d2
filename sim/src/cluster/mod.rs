//! The simulated cluster: nodes, network, clock, event queue, checkers and the verbs tests use.
//!
//! Time is virtual (nanoseconds from zero); a discrete-event queue keyed by
//! `(time, insertion counter)` fixes the order of simultaneous events, and one seeded
//! generator decides everything random, so a seed replays the same run bit for bit.
//!
//! ```no_run
//! use std::time::Duration;
//! use sim::{Cluster, SimConfig};
//! use totem::NodeId;
//!
//! let mut c = Cluster::new(7, 3, SimConfig::default()).unwrap();
//! assert!(c.run_until_stable(Duration::from_secs(30)));
//! c.partition(&[NodeId(1), NodeId(2)], &[NodeId(3)]);
//! c.run_for(Duration::from_secs(10));
//! c.heal();
//! let report = c.check_liveness();
//! assert!(c.violations().is_empty(), "{:?}", c.violations());
//! # let _ = report;
//! ```

mod confdb;
mod cpg;
mod fencing;
mod liveness;
mod step;

use std::collections::BTreeMap;

use quorum::fencing::RunAgent;

use ::cpg::service::{ClientId, ServiceError};
use ::cpg::{CpgEvent, GroupName};
use std::time::Duration;

use bytes::Bytes;
use quorum::{QuorumConfig, QuorumEvent};
use totem::{Guarantee, Instant, NodeId, RingId, Srp, SrpState, SubmitError, TotemConfig};
use totemd::Node;

pub(crate) use confdb::NodeConfdb;
pub use liveness::LivenessReport;

use crate::check::liveness::NodeView;
use crate::check::{Checkers, Violation};
use crate::clients::CpgLoad;
use crate::fault::Fault;
use crate::fence::{SimFencing, SwitchMode};
use crate::net::{Fabric, LinkConfig, Rule};
use crate::node::{Clock, Liveness, SimNode};
use crate::rng::{nanos, SimRng};
use crate::trace::{Trace, TraceKind, TraceOutput};
use crate::workload::{LoadConfig, MsgId};

/// Everything that shapes a simulated cluster besides the seed.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The engine's options (every node gets the same).
    pub totem: TotemConfig,
    /// The behaviour of every link unless overridden.
    pub link: LinkConfig,
    /// The random application load; its rate can be changed while running.
    pub load: LoadConfig,
    /// The random CPG client activity (off by default); its rate can be changed while running.
    pub cpg: CpgLoad,
    /// Datagrams a paused node's socket buffer holds; later ones are lost.
    pub socket_buffer_packets: usize,
    /// Each node's clock rate is drawn uniformly in `1 ± drift_ppm_max / 10⁶`.
    pub drift_ppm_max: i64,
    /// Each node's clock starts at a random offset below this (no shared epoch).
    pub clock_offset_max: Duration,
    /// Readable trace lines.
    pub trace: TraceOutput,
    /// Stop running at the first violation (later steps would only add noise).
    pub stop_on_violation: bool,
    /// Steps at one virtual instant before the run is declared livelocked.
    pub steps_per_instant_max: u64,
    /// Queued events (mostly datagrams in flight) beyond which the run is declared an event
    /// storm and stopped, so a packet amplification bug cannot exhaust memory.
    pub queue_max: usize,
    /// Probe messages each live node submits in the liveness phase.
    pub probes_per_node: usize,
    /// A deliberate distortion of one node's deliveries, to prove the checkers catch it.
    pub mutation: Option<Mutation>,
    /// How long the liveness phase waits for one ring, then again for the probes; `None` =
    /// 30 × token + consensus.
    pub liveness_bound: Option<Duration>,
    /// votequorum on every node with this configuration (off: `None`, the default).
    pub quorum: Option<QuorumConfig>,
    /// Fencing on every node, with simulated power switches (needs `quorum`; off: `None`).
    pub fencing: Option<SimFencing>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            totem: TotemConfig::with_token(Duration::from_millis(1000)),
            link: LinkConfig::default(),
            load: LoadConfig::default(),
            cpg: CpgLoad::default(),
            socket_buffer_packets: 256,
            drift_ppm_max: 100,
            clock_offset_max: Duration::from_secs(1000),
            trace: TraceOutput::Off,
            stop_on_violation: true,
            steps_per_instant_max: 200_000,
            queue_max: 500_000,
            probes_per_node: 3,
            liveness_bound: None,
            mutation: None,
            quorum: None,
            fencing: None,
        }
    }
}

impl SimConfig {
    /// How long a node may stay quorate on a ring a member has left (see
    /// [`crate::check::split_brain`]): its token timeout with every retransmission, then a
    /// consensus round and a join round to install the next ring.
    pub fn stale_quorum_grace(&self) -> Duration {
        let t = &self.totem;
        t.token * 2 + t.consensus * 2 + t.join * 2
    }

    /// The liveness bound in force.
    pub fn liveness_bound(&self) -> Duration {
        self.liveness_bound.unwrap_or(self.totem.token * 30 + self.totem.consensus)
    }
}

/// How a [`Mutation`] distorts a delivery stream.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MutationKind {
    /// The delivery is hidden, as if the engine skipped it.
    DropDelivery,
    /// The delivery is reported twice.
    DuplicateDelivery,
    /// The delivery is reported after the next one.
    SwapDeliveries,
    /// The node's `received_through` is never shown to the checkers (`nth` is ignored), so
    /// any safe delivery by another member looks premature.
    HideReceivedThrough,
    /// A group message to one of the node's CPG clients is hidden (`nth` counts group
    /// messages delivered to the node's clients).
    CpgDropDelivery,
    /// A group message to a CPG client is told twice.
    CpgDuplicateDelivery,
    /// A group message to a CPG client is told after that client's next one.
    CpgSwapDeliveries,
    /// The node always says it is quorate to the checkers (`nth` is ignored), as a votequorum
    /// that never counted would.
    ClaimQuorum,
    /// Every power switch reports success without switching anything (`node` and `nth` are
    /// ignored), as a fence agent that lies would: a node declared dead goes on running.
    FakeFence,
}

/// A deliberate bug injected between an engine and the checkers: the `nth` delivery (counted
/// from 1, over all incarnations) of `node` is distorted. Tests use it to show that a real run
/// with such a bug fails the right checker.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Mutation {
    /// The node whose stream is distorted.
    pub node: NodeId,
    /// Which delivery.
    pub nth: u64,
    /// How.
    pub kind: MutationKind,
}

/// Misuse of the cluster's API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The engine rejected the configuration; no cluster was made.
    #[error("the engine rejected the configuration: {0}")]
    Config(String),
    /// The node is crashed; nothing changed.
    #[error("node {0} is down")]
    NodeDown(NodeId),
    /// The node is paused; nothing changed.
    #[error("node {0} is paused")]
    NodePaused(NodeId),
    /// The engine refused the message; its id was used up but nothing was queued.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The group service refused a client's request; nothing changed.
    #[error(transparent)]
    Cpg(#[from] ServiceError),
    /// No such connected client on that node; nothing changed.
    #[error("no connected client {1:?} on node {0}")]
    UnknownClient(NodeId, ClientId),
}

/// Counters of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Events processed.
    pub steps: u64,
    /// Datagrams the engines handed out.
    pub transmits: u64,
    /// Datagram copies that reached a node.
    pub arrivals: u64,
    /// Datagram copies lost (cut, rule, loss, node down, socket buffer full).
    pub drops: u64,
    /// Messages the engines accepted.
    pub submitted: u64,
    /// Messages the engines refused (send queue full).
    pub submit_rejected: u64,
    /// Deliveries, summed over nodes.
    pub deliveries: u64,
    /// Regular configurations installed, summed over nodes.
    pub regular_configs: u64,
    /// Transitional configurations, summed over nodes.
    pub transitional_configs: u64,
    /// Crashes.
    pub crashes: u64,
    /// Restarts.
    pub restarts: u64,
    /// Pauses.
    pub pauses: u64,
    /// Group messages CPG clients sent (accepted by the service).
    pub cpg_sent: u64,
    /// Group messages delivered to CPG clients, summed over clients.
    pub cpg_deliveries: u64,
    /// Group configuration changes told to CPG clients, summed over clients.
    pub cpg_confchgs: u64,
}

/// Events of the queue.
#[derive(Debug)]
enum Ev {
    /// A datagram copy reaches node index `to`.
    Packet { to: usize, from: NodeId, data: Bytes },
    /// The engine timer of a node index.
    Timer(usize),
    /// The next application message of a node index.
    Load(usize),
    /// A paused node index may resume.
    Resume(usize),
    /// The next CPG client operation of a node index.
    Cpg(usize),
    /// A power switch acts on an agent run of node index `runner` (if still that incarnation).
    Agent { runner: usize, incarnation: u32, run: Box<RunAgent> },
    /// Power returns to a node index rebooted by a switch.
    PowerOn(usize),
}

/// A simulated cluster of Totem nodes with ids `1..=n`.
pub struct Cluster {
    cfg: SimConfig,
    seed: u64,
    rng: SimRng,
    now: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    counter: u64,
    nodes: Vec<SimNode>,
    fabric: Fabric,
    checkers: Checkers,
    violations: Vec<Violation>,
    trace: Trace,
    stats: SimStats,
    load_rate: f64,
    /// CPG client operations per node per second now.
    cpg_rate: f64,
    /// The names of the groups the random CPG clients use.
    groups: Vec<GroupName>,
    /// Every client's events, when [`CpgLoad::record_events`] is on.
    cpg_log: BTreeMap<(NodeId, ClientId), Vec<CpgEvent>>,
    /// Every quorum event, in order.
    quorum_log: Vec<(Instant, NodeId, QuorumEvent)>,
    /// Power switches made to misbehave, by device name.
    switch_faults: BTreeMap<String, SwitchMode>,
    /// Agent runs the switches answered (or hung on).
    agent_runs: u64,
    /// Nodes the switches powered off.
    power_offs: u64,
    same_instant_steps: u64,
    halted: bool,
    /// The node whose input is being processed (to blame a panic on).
    current: Option<NodeId>,
}

impl Cluster {
    /// `n` nodes, each starting alone at time zero; their seeds, clocks and every later random
    /// choice come from `seed`. The load of `cfg.load` starts at once.
    pub fn new(seed: u64, n: usize, cfg: SimConfig) -> Result<Cluster, SimError> {
        let mut rng = SimRng::new(seed);
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let id = NodeId(i as u32 + 1);
            let ppm = rng.range_inclusive(0, 2 * cfg.drift_ppm_max as u64) as i64 - cfg.drift_ppm_max;
            let clock = Clock { offset: rng.range_inclusive(0, nanos(cfg.clock_offset_max)), ppm };
            let mut srp =
                Node::new(id, cfg.totem.clone(), Default::default(), rng.next_u64(), clock.local(0))
                    .map_err(|e| SimError::Config(e.to_string()))?;
            if let Some(q) = &cfg.quorum {
                srp.enable_quorum(q).map_err(|e| SimError::Config(e.to_string()))?;
                if let Some(f) = &cfg.fencing {
                    srp.enable_fencing(clock.local(0), f.config.clone())
                        .map_err(|e| SimError::Config(e.to_string()))?;
                }
            }
            nodes.push(SimNode::new(id, srp, clock));
        }
        let mut c = Cluster {
            fabric: Fabric::new(cfg.link),
            trace: Trace::new(cfg.trace),
            load_rate: 0.0,
            cpg_rate: 0.0,
            groups: (0..cfg.cpg.groups).map(CpgLoad::group_name).collect(),
            cpg_log: BTreeMap::new(),
            quorum_log: Vec::new(),
            switch_faults: BTreeMap::new(),
            agent_runs: 0,
            power_offs: 0,
            cfg,
            seed,
            rng,
            now: 0,
            queue: BTreeMap::new(),
            counter: 0,
            nodes,
            checkers: Checkers::default(),
            violations: Vec::new(),
            stats: SimStats::default(),
            same_instant_steps: 0,
            halted: false,
            current: None,
        };
        c.checkers.split_brain.stale_grace = c.cfg.stale_quorum_grace();
        for i in 0..n {
            c.after_input(i);
        }
        let rate = c.cfg.load.rate_per_node;
        c.set_load(rate);
        let rate = c.cfg.cpg.ops_per_node;
        c.set_cpg_load(rate);
        Ok(c)
    }

    // ---- inspection ----

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Virtual time.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.now)
    }

    /// Every node id, crashed or not.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Nodes that are not crashed (paused ones included).
    pub fn live_nodes(&self) -> Vec<NodeId> {
        self.nodes.iter().filter(|n| n.srp.is_some()).map(|n| n.id).collect()
    }

    /// Whether `node` is not crashed.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.node(node).srp.is_some()
    }

    /// Whether `node` is paused.
    pub fn is_paused(&self, node: NodeId) -> bool {
        matches!(self.node(node).liveness, Liveness::Paused { .. })
    }

    /// The engine of `node`, unless crashed.
    pub fn engine(&self, node: NodeId) -> Option<&Srp> {
        self.node(node).srp.as_ref().map(Node::engine)
    }

    /// The protocol state of `node`, unless crashed.
    pub fn state(&self, node: NodeId) -> Option<SrpState> {
        self.engine(node).map(Srp::state)
    }

    /// The last ring `node` installed, unless crashed.
    pub fn ring_id(&self, node: NodeId) -> Option<RingId> {
        self.engine(node).map(Srp::ring_id)
    }

    /// The members of that ring.
    pub fn members(&self, node: NodeId) -> Option<Vec<NodeId>> {
        self.engine(node).map(|s| s.members().to_vec())
    }

    /// Whether votequorum on `node` says quorate; `None` when crashed or quorum is off.
    pub fn is_quorate(&self, node: NodeId) -> Option<bool> {
        self.node(node).srp.as_ref()?.quorum().map(|q| q.is_quorate())
    }

    /// Every quorum event so far (time, node, event), in order.
    pub fn quorum_events(&self) -> &[(Instant, NodeId, QuorumEvent)] {
        &self.quorum_log
    }

    /// What the liveness checker sees of every node.
    pub fn views(&self) -> Vec<NodeView> {
        self.nodes
            .iter()
            .map(|n| NodeView {
                id: n.id,
                state: n.srp.as_ref().map(Node::state),
                ring_id: n.srp.as_ref().map(Node::ring_id),
                members: n.srp.as_ref().map(|s| s.members().to_vec()).unwrap_or_default(),
            })
            .collect()
    }

    /// The ring when every live node is operational in one ring made of exactly the live nodes.
    pub fn stable_ring(&self) -> Option<RingId> {
        let mut ring = None;
        let live = || self.nodes.iter().filter(|n| n.srp.is_some()).map(|n| n.id);
        for srp in self.nodes.iter().filter_map(|n| n.srp.as_ref()) {
            if srp.state() != SrpState::Operational || *ring.get_or_insert(srp.ring_id()) != srp.ring_id() {
                return None;
            }
            if !srp.members().iter().copied().eq(live()) {
                return None;
            }
        }
        ring
    }

    /// Violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The checkers (for tests that look at their state).
    pub fn checkers(&self) -> &Checkers {
        &self.checkers
    }

    /// Counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The trace hash so far.
    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }

    /// Trace lines kept with [`TraceOutput::Memory`].
    pub fn trace_lines(&self) -> &[String] {
        self.trace.lines()
    }

    /// Whether the run stopped at a violation.
    pub fn halted(&self) -> bool {
        self.halted
    }

    // ---- network verbs ----

    /// The network, for changes the verbs below do not cover.
    pub fn fabric_mut(&mut self) -> &mut Fabric {
        &mut self.fabric
    }

    /// Splits the network in two groups (replacing every cut); nodes in neither group join
    /// neither: they form a third group.
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId]) {
        self.apply(&Fault::Partition(vec![a.to_vec(), b.to_vec()]));
    }

    /// Cuts the directed link `from → to`.
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.apply(&Fault::Cut { from, to });
    }

    /// Cuts every link to and from `node`.
    pub fn isolate(&mut self, node: NodeId) {
        for other in self.node_ids().into_iter().filter(|&o| o != node) {
            self.fabric.cut(node, other);
            self.fabric.cut(other, node);
        }
        self.record_fault(&format!("isolate n{node}"));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.apply(&Fault::Heal);
    }

    /// Sets the cluster-wide loss probability.
    pub fn set_loss(&mut self, p: f64) {
        self.apply(&Fault::SetLoss(p));
    }

    /// Overrides the behaviour of one directed link.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, link: LinkConfig) {
        self.fabric.set_link(from, to, link);
        self.record_fault(&format!("link n{from} -> n{to}: {link:?}"));
    }

    /// Appends a fault rule.
    pub fn add_rule(&mut self, rule: Rule) {
        self.apply(&Fault::AddRule(rule));
    }

    /// Removes every fault rule.
    pub fn clear_rules(&mut self) {
        self.apply(&Fault::ClearRules);
    }

    // ---- node verbs ----

    /// Crashes `node`: its engine and everything in flight to it is lost, its persisted state kept.
    pub fn crash(&mut self, node: NodeId) {
        self.apply(&Fault::Crash(node));
    }

    /// `node` leaves the ring cleanly (a shutdown): its leave notice goes out, then it is down
    /// like a crashed node (restart brings it back as a new incarnation).
    pub fn leave(&mut self, node: NodeId) {
        self.apply(&Fault::Leave(node));
    }

    /// Restarts a crashed `node` from its persisted state as a new incarnation.
    pub fn restart(&mut self, node: NodeId) {
        self.apply(&Fault::Restart(node));
    }

    /// Stops `node` for `duration`: no timers, packets wait in its socket buffer.
    pub fn pause(&mut self, node: NodeId, duration: Duration) {
        self.apply(&Fault::Pause(node, duration));
    }

    /// Resumes a paused `node` now.
    pub fn resume(&mut self, node: NodeId) {
        self.apply(&Fault::Resume(node));
    }

    /// Sets the random application load (messages per node per second; 0 stops it).
    pub fn set_load(&mut self, rate_per_node: f64) {
        self.load_rate = rate_per_node.max(0.0);
        for i in 0..self.nodes.len() {
            if let Some(k) = self.nodes[i].load_key.take() {
                self.queue.remove(&k);
            }
            self.schedule_load(i);
        }
    }

    /// Submits one message of `padding` extra bytes from `node`.
    pub fn submit(&mut self, node: NodeId, padding: usize, guarantee: Guarantee) -> Result<MsgId, SimError> {
        let i = self.index(node);
        self.submit_at(i, padding, guarantee)
    }

    /// Applies one fault.
    pub fn apply(&mut self, fault: &Fault) {
        match fault {
            Fault::Partition(groups) => {
                self.fabric.heal();
                let group_of = |n: NodeId| groups.iter().position(|g| g.contains(&n)).unwrap_or(usize::MAX);
                let ids = self.node_ids();
                for &a in &ids {
                    for &b in ids.iter().filter(|&&b| b != a && group_of(a) != group_of(b)) {
                        self.fabric.cut(a, b);
                    }
                }
            }
            Fault::Cut { from, to } => self.fabric.cut(*from, *to),
            Fault::Uncut { from, to } => self.fabric.uncut(*from, *to),
            Fault::Heal => self.fabric.heal(),
            Fault::Crash(n) => self.crash_node(self.index(*n)),
            Fault::Leave(n) => self.leave_node(self.index(*n)),
            Fault::Restart(n) if self.node(*n).powered_off => {}
            Fault::Restart(n) => self.restart_node(self.index(*n)),
            Fault::Pause(n, d) => self.pause_node(self.index(*n), *d),
            Fault::Resume(n) => self.resume_node(self.index(*n)),
            Fault::SetLoss(p) => self.fabric.set_loss(*p),
            Fault::AddRule(r) => self.fabric.add_rule(r.clone()),
            Fault::ClearRules => self.fabric.clear_rules(),
            Fault::SetLoad(r) => self.set_load(*r),
            Fault::Switch { device, mode: Some(m) } => {
                self.switch_faults.insert(device.clone(), *m);
            }
            Fault::Switch { device, mode: None } => {
                self.switch_faults.remove(device);
            }
            Fault::PowerOn(n) => self.power_on_node(self.index(*n)),
        }
        if !matches!(
            fault,
            Fault::Crash(_)
                | Fault::Leave(_)
                | Fault::Restart(_)
                | Fault::Pause(..)
                | Fault::Resume(_)
                | Fault::PowerOn(_)
        ) {
            self.record_fault(&fault.to_string());
        }
    }

    fn record_fault(&mut self, what: &str) {
        let word = crate::workload::payload_hash(what.as_bytes());
        self.trace.record(self.now, 0, TraceKind::Fault, &[word], || what.to_string());
    }

    // ---- running ----

    /// Runs every event up to and including virtual time `t`.
    pub fn run_until(&mut self, t: Instant) {
        let end = t.as_nanos();
        while !self.halted {
            match self.queue.first_key_value() {
                Some((&(at, _), _)) if at <= end => self.step(),
                _ => break,
            }
        }
        if !self.halted {
            self.now = self.now.max(end);
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now() + d;
        self.run_until(t);
    }

    /// Runs until `done` holds (checked before and after every event) or `max` passes.
    /// Returns whether `done` held.
    pub fn run_until_pred(&mut self, max: Duration, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        let deadline = (self.now() + max).as_nanos();
        loop {
            if done(self) {
                return true;
            }
            if self.halted {
                return false;
            }
            match self.queue.first_key_value() {
                Some((&(at, _), _)) if at <= deadline => self.step(),
                _ => {
                    self.now = self.now.max(deadline);
                    return done(self);
                }
            }
        }
    }

    /// Runs until [`Cluster::stable_ring`] holds or `max` passes.
    pub fn run_until_stable(&mut self, max: Duration) -> bool {
        self.run_until_pred(max, |c| c.stable_ring().is_some())
    }

    fn index(&self, node: NodeId) -> usize {
        let i = (node.0 as usize).wrapping_sub(1);
        assert!(i < self.nodes.len(), "no node {node} in a cluster of {}", self.nodes.len());
        i
    }

    fn node(&self, node: NodeId) -> &SimNode {
        &self.nodes[self.index(node)]
    }
}
