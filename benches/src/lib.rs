//! Load generators and microbenchmarks for totem.
//!
//! [`cpg_bench`] measures closed process groups through real `totemd` daemons (`benches cpg`).
//!
//! [`Ring`] is a tiny in-memory driver that measures the Totem engine alone: `N` [`Srp`] nodes,
//! no sockets, no threads, a virtual clock. It is deliberately simpler than the `sim` crate (no
//! faults, no checkers): every datagram is delivered at once, in the order it was sent, so the
//! time a run takes is the CPU the engines (plus this thin loop) spend ordering messages.
//!
//! # How the driver runs a ring
//! - A datagram sent by node `i` is put at the back of one FIFO queue, once per receiver
//!   ([`Destination::All`] means every *other* node). [`Ring::step`] hands the front datagram
//!   to its receiver, then drains that node's events and transmits.
//! - Only when the queue is empty does the virtual clock move: it jumps to the earliest
//!   deadline of any node's [`Srp::poll_timeout`] and every node whose deadline has passed gets
//!   [`Srp::handle_timeout`].
//! - [`Ring::form`] steps until every node is operational in one ring of all `N` members.
//! - [`Ring::run`] then keeps every node's send queue topped up with messages of one size and
//!   counts [`Event::Deliver`] at every node until each has delivered the requested number.
//!
//! ```no_run
//! use benches::{Load, Ring};
//!
//! let mut ring = Ring::new(5, totem::TotemConfig::default(), 1).unwrap();
//! ring.form().unwrap();
//! let report = ring.run(&Load { messages: 10_000, size: 64, ..Load::default() }).unwrap();
//! assert!(report.delivered.iter().all(|&d| d == 10_000));
//! ```
#![forbid(unsafe_code)]

pub mod compare;
pub mod cpg_bench;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use totem::{
    Delivery, Destination, Event, Guarantee, Instant, NodeId, PersistedState, Srp, SrpState, TotemConfig,
};

/// Virtual time [`Ring::form`] allows before giving up.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(120);

/// Virtual time [`Ring::run`] may spend without any node delivering before it gives up: a run
/// under load should never wait for a timer for long.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Steps [`Ring::run`] may take without any node delivering before it gives up (catches a
/// livelock that exchanges datagrams forever without moving the clock).
pub const STALL_STEPS: u64 = 1_000_000;

/// Why the driver stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// [`Srp::new`] refused the configuration.
    #[error("node {node} could not start: {reason}")]
    Start {
        /// The node.
        node: NodeId,
        /// The engine's reason.
        reason: String,
    },
    /// No datagram is in flight and no node has a deadline: nothing can ever happen again.
    #[error("ring is dead: no datagram in flight and no timer armed")]
    Dead,
    /// The ring did not form within [`FORM_TIMEOUT`] of virtual time.
    #[error("ring of {nodes} did not form within {FORM_TIMEOUT:?} of virtual time")]
    NotFormed {
        /// Ring size.
        nodes: usize,
    },
    /// No delivery for [`STALL_TIMEOUT`] of virtual time or [`STALL_STEPS`] steps while
    /// messages were outstanding.
    #[error("deliveries stalled at {delivered} of {wanted}")]
    Stalled {
        /// Fewest deliveries at any node so far.
        delivered: u64,
        /// Deliveries wanted at every node.
        wanted: u64,
    },
    /// [`Srp::submit`] refused the message size.
    #[error("node {node} refused a message: {reason}")]
    Submit {
        /// The node.
        node: NodeId,
        /// The engine's reason.
        reason: String,
    },
}

/// The load [`Ring::run`] offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Load {
    /// Messages submitted in total, over all senders; each is delivered at every node.
    pub messages: u64,
    /// Payload bytes of each message.
    pub size: usize,
    /// Delivery guarantee of every message.
    pub guarantee: Guarantee,
    /// Which nodes send; `None` means every node.
    pub senders: Option<Vec<usize>>,
    /// Most messages a sender has submitted but not yet delivered to itself. The sender also
    /// stops topping up when [`Srp::submit`] says try again.
    pub in_flight_max: u64,
    /// Give each message a distinct payload (sender and counter in its first 12 bytes) and keep
    /// every [`Delivery`]; see [`Ring::deliveries`]. Off for benchmarks: one shared payload.
    pub record: bool,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            messages: 10_000,
            size: 64,
            guarantee: Guarantee::Agreed,
            senders: None,
            in_flight_max: 256,
            record: false,
        }
    }
}

/// What one [`Ring::run`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Messages delivered at each node (index = node index).
    pub delivered: Vec<u64>,
    /// Datagrams handed to a node.
    pub datagrams: u64,
    /// Payload bytes of those datagrams.
    pub datagram_bytes: u64,
    /// Times the virtual clock had to move to fire a timer.
    pub timer_jumps: u64,
    /// Virtual time the run took (time spent waiting for timers; zero in the ideal case).
    pub virtual_elapsed: Duration,
    /// Regular configurations installed at any node during the run (zero in a steady ring).
    pub reconfigurations: u64,
}

impl LoadReport {
    /// Deliveries summed over all nodes.
    pub fn total_delivered(&self) -> u64 {
        self.delivered.iter().sum()
    }
}

/// Per-node bookkeeping of a run.
#[derive(Clone, Debug, Default)]
struct Counters {
    /// Messages delivered during the current run.
    delivered: u64,
    /// Of those, messages this node sent.
    delivered_own: u64,
    /// Messages this node submitted during the current run.
    submitted: u64,
    /// Regular configurations seen during the current run.
    regular: u64,
}

/// `N` engines joined by an instant, lossless, FIFO in-memory network and a virtual clock.
///
/// Node `i` (0-based index) has [`NodeId`] `i + 1`.
pub struct Ring {
    nodes: Vec<Srp>,
    now: Instant,
    /// Datagrams in flight: (receiver index, bytes), oldest first.
    queue: VecDeque<(usize, Bytes)>,
    counters: Vec<Counters>,
    /// Every delivery per node while recording.
    recorded: Vec<Vec<Delivery>>,
    recording: bool,
    /// Datagrams handed over and their bytes, since the ring was made.
    datagrams: u64,
    datagram_bytes: u64,
    timer_jumps: u64,
}

impl Ring {
    /// `nodes` engines started at virtual time zero, each in gather state; node `i` is seeded
    /// with `seed + i`.
    pub fn new(nodes: usize, config: TotemConfig, seed: u64) -> Result<Ring, DriverError> {
        assert!(nodes > 0, "a ring needs at least one node");
        let now = Instant::ZERO;
        let mut srps = Vec::with_capacity(nodes);
        for i in 0..nodes {
            let id = node_id(i);
            let srp =
                Srp::new(id, config.clone(), PersistedState::default(), seed.wrapping_add(i as u64), now)
                    .map_err(|reason| DriverError::Start { node: id, reason })?;
            srps.push(srp);
        }
        let mut ring = Ring {
            nodes: srps,
            now,
            queue: VecDeque::new(),
            counters: vec![Counters::default(); nodes],
            recorded: vec![Vec::new(); nodes],
            recording: false,
            datagrams: 0,
            datagram_bytes: 0,
            timer_jumps: 0,
        };
        // A new engine may already have something to say (its first join).
        for i in 0..nodes {
            ring.drain(i);
        }
        Ok(ring)
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The engines, by node index.
    pub fn nodes(&self) -> &[Srp] {
        &self.nodes
    }

    /// Datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Whether every node is operational in a ring of all nodes.
    pub fn is_formed(&self) -> bool {
        let n = self.nodes.len();
        let first = self.nodes[0].ring_id();
        self.nodes
            .iter()
            .all(|s| s.state() == SrpState::Operational && s.members().len() == n && s.ring_id() == first)
    }

    /// Steps until [`Ring::is_formed`], at most [`FORM_TIMEOUT`] of virtual time.
    pub fn form(&mut self) -> Result<(), DriverError> {
        let deadline = self.now + FORM_TIMEOUT;
        while !self.is_formed() {
            if self.now > deadline {
                return Err(DriverError::NotFormed { nodes: self.nodes.len() });
            }
            self.step()?;
        }
        Ok(())
    }

    /// One input: the oldest datagram in flight, or, when none is, the timers that are due
    /// after moving the clock to the earliest deadline.
    pub fn step(&mut self) -> Result<(), DriverError> {
        if let Some((to, datagram)) = self.queue.pop_front() {
            self.datagrams += 1;
            self.datagram_bytes += datagram.len() as u64;
            self.nodes[to].handle_datagram(self.now, datagram);
            self.drain(to);
            return Ok(());
        }
        let next = self.nodes.iter().filter_map(Srp::poll_timeout).min().ok_or(DriverError::Dead)?;
        self.now = self.now.max(next);
        self.timer_jumps += 1;
        for i in 0..self.nodes.len() {
            if self.nodes[i].poll_timeout().is_some_and(|t| t <= self.now) {
                self.nodes[i].handle_timeout(self.now);
                self.drain(i);
            }
        }
        Ok(())
    }

    /// Offers `load` to a formed ring and steps until every node has delivered
    /// `load.messages` messages. Call [`Ring::form`] first.
    pub fn run(&mut self, load: &Load) -> Result<LoadReport, DriverError> {
        let n = self.nodes.len();
        let senders: Vec<usize> = load.senders.clone().unwrap_or_else(|| (0..n).collect());
        self.counters = vec![Counters::default(); n];
        self.recording = load.record;
        self.recorded = vec![Vec::new(); n];
        let template = Bytes::from(vec![0xa5; load.size]);
        let (start, datagrams, datagram_bytes, timer_jumps) =
            (self.now, self.datagrams, self.datagram_bytes, self.timer_jumps);
        let mut submitted_total = 0;
        let mut delivered_total = 0;
        let mut last_progress = (self.now, 0u64);
        let mut steps = 0u64;

        while self.fewest_delivered() < load.messages {
            for &i in &senders {
                self.top_up(i, load, &template, &mut submitted_total)?;
            }
            self.step()?;
            steps += 1;
            let now_total: u64 = self.counters.iter().map(|c| c.delivered).sum();
            if now_total > delivered_total {
                delivered_total = now_total;
                last_progress = (self.now, steps);
            } else if steps - last_progress.1 > STALL_STEPS || self.now - last_progress.0 > STALL_TIMEOUT {
                return Err(DriverError::Stalled {
                    delivered: self.fewest_delivered(),
                    wanted: load.messages,
                });
            }
        }
        self.recording = false;
        Ok(LoadReport {
            delivered: self.counters.iter().map(|c| c.delivered).collect(),
            datagrams: self.datagrams - datagrams,
            datagram_bytes: self.datagram_bytes - datagram_bytes,
            timer_jumps: self.timer_jumps - timer_jumps,
            virtual_elapsed: self.now - start,
            reconfigurations: self.counters.iter().map(|c| c.regular).sum(),
        })
    }

    /// Fewest messages any node has delivered in the current run.
    fn fewest_delivered(&self) -> u64 {
        self.counters.iter().map(|c| c.delivered).min().unwrap_or(0)
    }

    /// Every delivery at node `index` during the last [`Ring::run`] with [`Load::record`] set.
    pub fn deliveries(&self, index: usize) -> &[Delivery] {
        &self.recorded[index]
    }

    /// Submits at node `i` until it has `in_flight_max` messages outstanding, the engine says
    /// try again, or the run has submitted all its messages.
    fn top_up(
        &mut self,
        i: usize,
        load: &Load,
        template: &Bytes,
        submitted_total: &mut u64,
    ) -> Result<(), DriverError> {
        let mut submitted_now = false;
        while *submitted_total < load.messages {
            let c = &self.counters[i];
            if c.submitted - c.delivered_own >= load.in_flight_max {
                break;
            }
            let payload =
                if load.record { numbered_payload(i, c.submitted, load.size) } else { template.clone() };
            match self.nodes[i].submit(self.now, payload, load.guarantee) {
                Ok(()) => {
                    self.counters[i].submitted += 1;
                    *submitted_total += 1;
                    submitted_now = true;
                }
                Err(totem::SubmitError::TryAgain) => break,
                Err(e) => return Err(DriverError::Submit { node: node_id(i), reason: e.to_string() }),
            }
        }
        if submitted_now {
            // A submit may make the engine send (a token hold cancel, or the held token).
            self.drain(i);
        }
        Ok(())
    }

    /// Takes every event and transmit node `i` has ready.
    fn drain(&mut self, i: usize) {
        let me = node_id(i);
        while let Some(event) = self.nodes[i].poll_event() {
            match event {
                Event::Deliver(d) => {
                    let c = &mut self.counters[i];
                    c.delivered += 1;
                    if d.sender == me {
                        c.delivered_own += 1;
                    }
                    if self.recording {
                        self.recorded[i].push(d);
                    }
                }
                Event::Regular(_) => self.counters[i].regular += 1,
                // Nothing survives this driver, so there is nothing to persist.
                Event::Transitional(_) | Event::Persist(_) => {}
            }
        }
        while let Some(t) = self.nodes[i].poll_transmit() {
            match t.dest {
                Destination::All => {
                    for to in (0..self.nodes.len()).filter(|&to| to != i) {
                        self.queue.push_back((to, t.payload.clone()));
                    }
                }
                Destination::Node(id) => {
                    if let Some(to) = index_of(id, self.nodes.len()) {
                        self.queue.push_back((to, t.payload));
                    }
                }
            }
        }
    }
}

/// The id of node index `i`.
pub fn node_id(i: usize) -> NodeId {
    NodeId(u32::try_from(i + 1).expect("node index fits a node id"))
}

/// The index of node `id`, if it is one of `n` nodes.
fn index_of(id: NodeId, n: usize) -> Option<usize> {
    let i = (id.0 as usize).checked_sub(1)?;
    (i < n).then_some(i)
}

/// A payload of `size` bytes (at least 12) that names its sender index and counter.
pub fn numbered_payload(sender: usize, counter: u64, size: usize) -> Bytes {
    let mut v = Vec::with_capacity(size.max(12));
    v.extend_from_slice(&u32::try_from(sender).expect("sender index fits u32").to_le_bytes());
    v.extend_from_slice(&counter.to_le_bytes());
    v.resize(size.max(12), 0x5a);
    Bytes::from(v)
}

/// The (sender index, counter) a [`numbered_payload`] carries.
pub fn payload_number(payload: &[u8]) -> Option<(usize, u64)> {
    let sender = u32::from_le_bytes(payload.get(0..4)?.try_into().ok()?);
    let counter = u64::from_le_bytes(payload.get(4..12)?.try_into().ok()?);
    Some((sender as usize, counter))
}
