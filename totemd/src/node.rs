//! The composed sans-IO node: the Totem engine plus, later, the services built on it.
//!
//! Today [`Node`] forwards to [`totem::Srp`]. It exists so that the driver and the simulator
//! talk to one type whose API stays the same when cpg, quorum, confdb and the IPC sessions are
//! added: those consume the engine's events in `Node::route_engine_events` and submit their
//! own messages through the engine. Like the engine, this module never reads a clock, draws
//! entropy or touches a socket.

use std::collections::VecDeque;

use bytes::Bytes;
use totem::{
    Event, Guarantee, Instant, NodeId, PersistedState, RingId, Srp, SrpState, Stats, SubmitError,
    TotemConfig, Transmit,
};

/// Why [`Node::new`] refused to build a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The engine refused its configuration (node id or Totem options); nothing was built.
    #[error("engine configuration: {0}")]
    Engine(String),
}

/// One node: the Totem engine and the services that will sit on it.
///
/// # Call order
/// The same as [`totem::Srp`]'s:
/// 1. [`Node::new`] with the persisted state the driver stored (default on first start).
/// 2. Feed one input: [`Node::handle_datagram`], [`Node::handle_timeout`] (when the deadline of
///    [`Node::poll_timeout`] passes; spurious calls are harmless) or [`Node::submit`].
/// 3. Drain every [`Node::poll_event`] first — a [`Event::Persist`] must be stored durably
///    before any datagram that follows it is sent — then every [`Node::poll_transmit`], then
///    re-arm the timer from [`Node::poll_timeout`].
pub struct Node {
    srp: Srp,
    /// Events routed past the services, in engine order, for the driver.
    events: VecDeque<Event>,
}

impl Node {
    /// A node that starts alone in gather state; `seed` seeds the engine's only RNG.
    ///
    /// Its first event is a `Persist`: the ring seq moves past anything used before a restart.
    pub fn new(
        node_id: NodeId,
        config: TotemConfig,
        persisted: PersistedState,
        seed: u64,
        now: Instant,
    ) -> Result<Node, NodeError> {
        let srp = Srp::new(node_id, config, persisted, seed, now).map_err(NodeError::Engine)?;
        let mut node = Node { srp, events: VecDeque::new() };
        node.route_engine_events();
        Ok(node)
    }

    /// Handles one received datagram; malformed or stale input is counted and dropped.
    pub fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        self.srp.handle_datagram(now, datagram);
        self.route_engine_events();
    }

    /// Handles expired timers; harmless when nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.srp.handle_timeout(now);
        self.route_engine_events();
    }

    /// Queues an application message for ordered delivery to the ring. Nothing is queued when
    /// it returns an error.
    pub fn submit(&mut self, now: Instant, payload: Bytes, guarantee: Guarantee) -> Result<(), SubmitError> {
        let result = self.srp.submit(now, payload, guarantee);
        self.route_engine_events();
        result
    }

    /// Leaves the ring cleanly (shutdown): the members fail this node at once instead of
    /// waiting for a token timeout. Send the queued transmits, then stop; later input is ignored.
    pub fn leave(&mut self, now: Instant) {
        self.srp.leave(now);
        self.route_engine_events();
    }

    /// The next datagram to send. Drain [`Node::poll_event`] first.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.srp.poll_transmit()
    }

    /// The next event for the driver, in engine order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline at which [`Node::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.srp.poll_timeout()
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.srp.node_id()
    }

    /// The protocol state.
    pub fn state(&self) -> SrpState {
        self.srp.state()
    }

    /// The last installed regular ring (before the first one: this node's private pseudo-ring).
    pub fn ring_id(&self) -> RingId {
        self.srp.ring_id()
    }

    /// Members of the last installed regular ring, sorted.
    pub fn members(&self) -> &[NodeId] {
        self.srp.members()
    }

    /// The engine's counters.
    pub fn stats(&self) -> &Stats {
        self.srp.stats()
    }

    /// The Totem engine, for inspection (the simulator's checkers read its state).
    pub fn engine(&self) -> &Srp {
        &self.srp
    }

    /// Moves the engine's events to the driver's queue, in order.
    ///
    /// This is where services plug in: cpg, quorum and confdb will see every `Deliver`,
    /// `Transitional` and `Regular` here (extended virtual synchrony holds for this sequence),
    /// update their state, queue messages for their IPC sessions and submit replies to the
    /// engine. `Persist` always goes on to the driver untouched and in order.
    fn route_engine_events(&mut self) {
        while let Some(event) = self.srp.poll_event() {
            self.events.push_back(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_node_first_asks_to_persist_a_ring_seq_beyond_the_stored_one() {
        let stored = PersistedState { ring_seq: 40 };
        let mut node = Node::new(NodeId(3), TotemConfig::default(), stored, 7, Instant::ZERO).unwrap();
        match node.poll_event() {
            Some(Event::Persist(p)) => {
                assert!(p.ring_seq > 40, "ring seq {} not beyond 40", p.ring_seq)
            }
            other => panic!("expected Persist first, got {other:?}"),
        }
        assert_eq!(node.node_id(), NodeId(3));
        assert!(node.poll_timeout().is_some(), "a gathering node has a deadline");
    }

    #[test]
    fn a_lone_node_installs_a_one_member_ring_after_its_timers() {
        let mut node =
            Node::new(NodeId(1), TotemConfig::default(), PersistedState::default(), 1, Instant::ZERO)
                .unwrap();
        let mut regular = None;
        for _ in 0..100 {
            while let Some(event) = node.poll_event() {
                if let Event::Regular(c) = event {
                    regular = Some(c);
                }
            }
            while node.poll_transmit().is_some() {}
            if regular.is_some() {
                break;
            }
            let Some(at) = node.poll_timeout() else { break };
            node.handle_timeout(at);
        }
        let regular = regular.expect("a lone node forms a ring");
        assert_eq!(regular.members, vec![NodeId(1)]);
        assert_eq!(node.members(), &[NodeId(1)]);
        assert_eq!(node.state(), SrpState::Operational);
    }

    #[test]
    fn node_id_zero_is_refused() {
        let err =
            Node::new(NodeId(0), TotemConfig::default(), PersistedState::default(), 1, Instant::ZERO).err();
        assert!(matches!(err, Some(NodeError::Engine(_))));
    }
}
