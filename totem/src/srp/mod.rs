//! The Totem single-ring protocol engine.

mod assembly;
mod buffer;
mod commit;
mod gather;
mod operational;
mod recovery;
mod send_queue;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod tests;
mod timer;

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;

use crate::config::TotemConfig;
use crate::event::{Destination, Event, Guarantee, PersistedState, Transmit};
use crate::ids::{NodeId, RingId, Seq};
use crate::rng::Rng;
use crate::time::Instant;
use crate::wire::{DecodeError, Mcast, Packet, Token};

use assembly::Assembly;
use buffer::RingBuffer;
use send_queue::SendQueue;
use timer::{Timer, TimerTable};

/// The protocol state (Totem paper, section 4).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SrpState {
    /// A ring is installed and the token circulates.
    Operational,
    /// Exchanging joins to agree on the next membership.
    Gather,
    /// The commit token circulates to install the new ring.
    Commit,
    /// Old-ring messages are exchanged before the new ring is installed.
    Recovery,
}

/// Why [`Srp::submit`] refused a message. Nothing is queued when it returns an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Larger than `message_size_max`.
    #[error("message of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The message size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The send queue is full (`send_queue_bytes_max`); try again after deliveries.
    #[error("send queue full, try again")]
    TryAgain,
}

/// Counters, cheap to keep on the hot path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets handed to the driver.
    pub packets_sent: u64,
    /// Datagrams received.
    pub packets_received: u64,
    /// Application messages delivered.
    pub messages_delivered: u64,
    /// Token visits (tokens accepted).
    pub token_rotations: u64,
    /// Packets re-sent because of a retransmit request.
    pub retransmits: u64,
    /// Regular configurations installed.
    pub configurations: u64,
    /// Tokens re-sent because the next node showed no sign of it.
    pub token_retransmits: u64,
    /// Datagrams dropped: bad checksum.
    pub dropped_checksum: u64,
    /// Datagrams dropped: malformed or of an unknown version or kind.
    pub dropped_malformed: u64,
    /// Packets ignored as stale, duplicate or from a foreign ring in the wrong state.
    pub dropped_stale: u64,
}

/// The Totem engine of one node.
///
/// # Call order
/// 1. [`Srp::new`] with the persisted state the driver stored (default on first start).
/// 2. Feed inputs: [`Srp::handle_datagram`] for every datagram received (the driver does not
///    loop the node's own multicasts back), [`Srp::handle_timeout`] when the deadline of
///    [`Srp::poll_timeout`] passes (spurious calls are harmless), and [`Srp::submit`] for
///    application messages.
/// 3. After every input drain [`Srp::poll_event`] (store `Persist` before sending anything)
///    and [`Srp::poll_transmit`], then re-arm the timer from [`Srp::poll_timeout`].
///
/// [`Destination::All`] means every other node of the cluster.
pub struct Srp {
    node_id: NodeId,
    config: TotemConfig,
    rng: Rng,
    state: SrpState,
    /// Highest ring seq stored by the driver.
    persisted_ring_seq: u64,
    /// Highest ring seq seen anywhere; a ring we create exceeds it.
    known_ring_seq: u64,
    /// The last installed ring, or the private pseudo-ring of a node that never installed one.
    ring: RingId,
    members: Vec<NodeId>,
    /// Whether a regular configuration was ever installed (the first has no transitional one).
    installed: bool,
    /// Packets of `ring`.
    buffer: RingBuffer,
    assembly: Assembly,
    send_queue: SendQueue,
    gather: GatherSets,
    /// The ring being formed, in commit and recovery states.
    pending: Option<Box<recovery::PendingRing>>,
    /// Highest seq of a ring we gave up forming; its commit tokens still in flight are stale.
    abandoned_ring_seq: u64,
    tok: TokenState,
    /// When a token last carried a retransmission request, in any ring: packets are kept to
    /// `netmtu` for [`LOSS_QUIET`](crate::config::LOSS_QUIET) after it.
    loss_seen: Option<Instant>,
    timers: TimerTable,
    /// The last token or commit token sent, re-sent until there is sign it arrived.
    retransmit: Option<(NodeId, Bytes)>,
    hold_cancel_sent: bool,
    /// [`Srp::leave`] was called: every input is ignored from then on.
    left: bool,
    /// Members that sent a leave notice since the last regular configuration.
    clean_leavers: BTreeSet<NodeId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

/// The proc and fail sets of the gather state (Totem paper, section 4.1).
#[derive(Clone, Debug, Default)]
struct GatherSets {
    proc_set: BTreeSet<NodeId>,
    fail_set: BTreeSet<NodeId>,
    /// Nodes whose join matched our sets exactly.
    consensus: BTreeSet<NodeId>,
    /// Nodes whose joins we received in this round.
    heard: BTreeSet<NodeId>,
}

/// Per-ring token bookkeeping of this node.
#[derive(Clone, Debug, Default)]
struct TokenState {
    /// Highest `token_seq` accepted; older tokens are duplicates.
    last_token_seq: u64,
    /// Token aru after our update at our previous visit.
    last_aru: u64,
    /// Packets up to this seq are held by every member (min aru over two visits).
    safe_through: u64,
    /// Packets we sent at our last visit (our share of `fcc`).
    sent_last_visit: u32,
    /// Backlog we added to the token at our last visit.
    backlog_last_visit: u32,
    /// Rotations in a row without new packets (`seqno_unchanged_const`).
    idle_rotations: u32,
    last_seq_seen: u64,
    /// Rotations in a row with the same stuck aru (`fail_recv_const`).
    fail_recv_count: u32,
    last_token_aru_seen: u64,
    /// `seq` of the token we last passed on.
    forwarded_seq: u64,
    /// The token held by an idle representative (or sent to ourselves in a one-node ring).
    held: Option<Token>,
}

impl Srp {
    /// A node that starts alone in gather state. `seed` seeds its only source of randomness.
    ///
    /// Emits a `Persist` event first: the ring seq moves past anything used before a restart.
    pub fn new(
        node_id: NodeId,
        config: TotemConfig,
        persisted: PersistedState,
        seed: u64,
        now: Instant,
    ) -> Result<Srp, String> {
        config.validate()?;
        if node_id.0 == 0 {
            return Err("node id 0 is not valid".into());
        }
        let start_seq = persisted.ring_seq.saturating_add(4);
        let ring = RingId { seq: start_seq, representative: node_id };
        let mut srp = Srp {
            node_id,
            config,
            rng: Rng::new(seed),
            state: SrpState::Gather,
            persisted_ring_seq: persisted.ring_seq,
            known_ring_seq: start_seq,
            ring,
            members: vec![node_id],
            installed: false,
            buffer: RingBuffer::new(ring),
            assembly: Assembly::default(),
            send_queue: SendQueue::default(),
            gather: GatherSets::default(),
            pending: None,
            abandoned_ring_seq: 0,
            tok: TokenState::default(),
            loss_seen: None,
            timers: TimerTable::default(),
            retransmit: None,
            hold_cancel_sent: false,
            left: false,
            clean_leavers: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        };
        srp.persist(start_seq);
        srp.enter_gather(now, &[], &[]);
        Ok(srp)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Handles one received datagram. Malformed or stale input is counted and dropped.
    pub fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        self.stats.packets_received += 1;
        if self.left {
            return;
        }
        let packet = match Packet::decode(datagram.clone()) {
            Ok(p) => p,
            Err(DecodeError::BadChecksum) => {
                self.stats.dropped_checksum += 1;
                tracing::trace!(node = %self.node_id, "dropped packet: bad checksum");
                return;
            }
            Err(e) => {
                self.stats.dropped_malformed += 1;
                tracing::debug!(node = %self.node_id, error = %e, "dropped packet");
                return;
            }
        };
        match packet {
            Packet::Mcast(m) => self.on_mcast(now, m, datagram),
            Packet::Token(t) => self.on_token(now, t),
            Packet::Join(j) => self.on_join(now, j),
            Packet::CommitToken(c) => self.on_commit_token(now, c),
            Packet::MergeDetect(n) => self.on_merge_detect(now, n),
            Packet::TokenHoldCancel(n) => self.on_hold_cancel(now, n),
            Packet::Leave(n) => self.on_leave(now, n),
        }
    }

    /// Handles expired timers; harmless when nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.left {
            return;
        }
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::TokenLoss => self.on_token_loss(now),
                Timer::TokenRetransmit => self.on_token_retransmit(now),
                Timer::Hold => self.on_hold_expired(now),
                Timer::Join => self.on_join_timer(now),
                Timer::Consensus => self.on_consensus_timeout(now),
                Timer::Merge => self.on_merge_timer(now),
            }
        }
    }

    /// Queues an application message for ordered delivery to the ring.
    ///
    /// Messages queue in any state and are sent once a ring is operational; a node delivers
    /// its own messages like everyone else's.
    pub fn submit(&mut self, now: Instant, payload: Bytes, guarantee: Guarantee) -> Result<(), SubmitError> {
        let size = payload.len();
        if size > self.config.message_size_max {
            return Err(SubmitError::TooLarge { size, max: self.config.message_size_max });
        }
        let was_empty = self.send_queue.is_empty();
        if !was_empty && self.send_queue.bytes() + size > self.config.send_queue_bytes_max {
            return Err(SubmitError::TryAgain);
        }
        self.send_queue.push(payload, guarantee);
        if was_empty {
            self.wake_token(now);
        }
        Ok(())
    }

    /// The network reports that `node` cannot receive: its host answered a datagram with ICMP
    /// port unreachable, so no process listens there (a crashed or killed daemon on a running
    /// host). A member is failed at once, as after a clean leave, instead of after a token
    /// timeout and a consensus timeout; it is not a clean leaver. Anything else (not a member,
    /// this node, after [`Srp::leave`]) is ignored. A wrong report costs one membership change:
    /// a live node is back at the next merge detection.
    pub fn handle_peer_unreachable(&mut self, now: Instant, node: NodeId) {
        if self.left {
            return;
        }
        self.on_unreachable(now, node);
    }

    /// Leaves the ring cleanly (shutdown): tells the members, who fail this node at once and
    /// form a new ring without waiting for a token timeout. Afterwards the engine ignores every
    /// input; send the transmits it queued, then stop. Queued messages that never got a seq
    /// are dropped.
    pub fn leave(&mut self, now: Instant) {
        let _ = now;
        if self.left {
            return;
        }
        let ring = match (&self.state, &self.pending) {
            (SrpState::Commit | SrpState::Recovery, Some(p)) => p.ring_id,
            _ => self.ring,
        };
        let notice = crate::wire::RingNotice { sender: self.node_id.0, ring_id: Some(ring.into()) };
        // Twice: one lost datagram should not cost the others a token timeout.
        let payload = Packet::Leave(notice).encode();
        self.send_raw(Destination::All, payload.clone());
        self.send_raw(Destination::All, payload);
        self.left = true;
        self.timers = TimerTable::default();
        self.retransmit = None;
    }

    /// Replaces the timing and flow-control options (corosync applies these on a reload):
    /// timeouts take effect as each timer is next armed. The packet sizes and queue bounds
    /// (`netmtu`, `packet_max`, `message_size_max`, `send_queue_bytes_max`, `rtr_max`) are
    /// kept: they cannot change under packets already cut. Nothing changes when it returns an
    /// error.
    pub fn set_timing(&mut self, mut config: TotemConfig) -> Result<(), String> {
        config.netmtu = self.config.netmtu;
        config.packet_max = self.config.packet_max;
        config.message_size_max = self.config.message_size_max;
        config.send_queue_bytes_max = self.config.send_queue_bytes_max;
        config.rtr_max = self.config.rtr_max;
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// The options in force.
    pub fn config(&self) -> &TotemConfig {
        &self.config
    }

    /// Nodes that left the ring with a leave notice (shutdown) rather than failing, since the
    /// last call; take them at each regular configuration: a node missing from it that is not
    /// among them failed (it may need fencing).
    pub fn take_clean_leavers(&mut self) -> BTreeSet<NodeId> {
        std::mem::take(&mut self.clean_leavers)
    }

    /// Whether [`Srp::leave`] was called.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline at which [`Srp::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The protocol state.
    pub fn state(&self) -> SrpState {
        self.state
    }

    /// The last installed regular ring (before the first one: this node's private pseudo-ring).
    pub fn ring_id(&self) -> RingId {
        self.ring
    }

    /// Members of the last installed regular ring, sorted.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// While operational: the ring and this node's `my_aru` in it (every packet up to it is held).
    pub fn received_through(&self) -> Option<(RingId, Seq)> {
        (self.state == SrpState::Operational).then_some((self.ring, Seq(self.buffer.my_aru)))
    }

    /// Bytes of application messages waiting to be sent.
    pub fn send_queue_bytes(&self) -> usize {
        self.send_queue.bytes()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn send(&mut self, dest: Destination, packet: &Packet) -> Bytes {
        let payload = packet.encode();
        self.send_raw(dest, payload.clone());
        payload
    }

    fn send_raw(&mut self, dest: Destination, payload: Bytes) {
        self.stats.packets_sent += 1;
        self.transmits.push_back(Transmit { dest, payload });
    }

    /// Sends a token or commit token to `next` and keeps it for retransmission.
    fn send_token_packet(&mut self, now: Instant, next: NodeId, packet: &Packet) {
        let payload = self.send(Destination::Node(next), packet);
        self.retransmit = Some((next, payload));
        self.timers.set(Timer::TokenRetransmit, now + self.config.token_retransmit());
    }

    fn on_token_retransmit(&mut self, now: Instant) {
        if let Some((next, payload)) = self.retransmit.clone() {
            self.stats.token_retransmits += 1;
            self.send_raw(Destination::Node(next), payload);
            self.timers.set(Timer::TokenRetransmit, now + self.config.token_retransmit());
        }
    }

    /// The token arrived somewhere downstream: stop re-sending it.
    fn token_seen_downstream(&mut self) {
        self.retransmit = None;
        self.timers.stop(Timer::TokenRetransmit);
    }

    fn persist(&mut self, ring_seq: u64) {
        self.known_ring_seq = self.known_ring_seq.max(ring_seq);
        if ring_seq > self.persisted_ring_seq {
            self.persisted_ring_seq = ring_seq;
            self.events.push_back(Event::Persist(PersistedState { ring_seq }));
        }
    }

    fn stale(&mut self) {
        self.stats.dropped_stale += 1;
    }

    /// The member after us in `members` (the token's next hop).
    fn next_member(members: &[NodeId], me: NodeId) -> NodeId {
        let i = members.iter().position(|&m| m == me).unwrap_or(0);
        members[(i + 1) % members.len()]
    }

    /// Delivers one packet's complete messages through reassembly.
    fn deliver_packet(
        assembly: &mut Assembly,
        events: &mut VecDeque<Event>,
        stats: &mut Stats,
        ring_id: RingId,
        mcast: &Mcast,
    ) {
        if mcast.recovered.is_some() {
            return;
        }
        let sender = NodeId(mcast.sender);
        let guarantee = if mcast.safe { Guarantee::Safe } else { Guarantee::Agreed };
        for fragment in &mcast.fragments {
            if let Some(payload) = assembly.push(sender, fragment) {
                stats.messages_delivered += 1;
                events.push_back(Event::Deliver(crate::event::Delivery {
                    ring_id,
                    seq: Seq(mcast.seq),
                    sender,
                    guarantee,
                    payload,
                }));
            }
        }
    }
}
