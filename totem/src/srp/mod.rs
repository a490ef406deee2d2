//! The Totem single-ring protocol engine.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::config::TotemConfig;
use crate::event::{Event, Guarantee, PersistedState, Transmit};
use crate::ids::{NodeId, RingId, Seq};
use crate::time::Instant;

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
/// [`Destination::All`](crate::Destination::All) means every other node of the cluster.
pub struct Srp {
    node_id: NodeId,
    #[allow(dead_code)]
    config: TotemConfig,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Srp {
    /// A node that starts alone in gather state. `seed` seeds its only source of randomness.
    pub fn new(
        node_id: NodeId,
        config: TotemConfig,
        persisted: PersistedState,
        seed: u64,
        now: Instant,
    ) -> Result<Srp, String> {
        let _ = (persisted, seed, now);
        config.validate()?;
        Ok(Srp { node_id, config, transmits: VecDeque::new(), events: VecDeque::new(), stats: Stats::default() })
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Handles one received datagram. Malformed or stale input is counted and dropped.
    pub fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        let _ = (now, datagram);
        todo!()
    }

    /// Handles expired timers; harmless when nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// Queues an application message for ordered delivery to the ring.
    pub fn submit(&mut self, now: Instant, payload: Bytes, guarantee: Guarantee) -> Result<(), SubmitError> {
        let _ = (now, payload, guarantee);
        todo!()
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
        todo!()
    }

    /// The protocol state.
    pub fn state(&self) -> SrpState {
        todo!()
    }

    /// The last installed regular ring.
    pub fn ring_id(&self) -> RingId {
        todo!()
    }

    /// Members of the last installed regular ring, sorted.
    pub fn members(&self) -> &[NodeId] {
        todo!()
    }

    /// While operational: the ring and this node's `my_aru` in it (every packet up to it is held).
    pub fn received_through(&self) -> Option<(RingId, Seq)> {
        todo!()
    }

    /// Bytes of application messages waiting to be sent.
    pub fn send_queue_bytes(&self) -> usize {
        todo!()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
