//! The composed sans-IO node: the Totem engine and the services built on it.
//!
//! [`Node`] owns the [`totem::Srp`] engine and the closed process group service
//! ([`cpg::service::CpgService`]); quorum and confdb will join them here. The driver and the
//! simulator talk to this one type. Every message on the ring starts with a service byte:
//! [`RAW_TAG`] for messages submitted with [`Node::submit`] (delivered to the driver as they
//! were submitted), [`cpg::service::SERVICE_TAG`] for the group service's, [`QUORUM_TAG`] for
//! votequorum's and [`FENCE_TAG`] for the fencers' (requests, claims, results). Like the engine,
//! this module never reads a clock, draws entropy or touches a socket.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use cpg::service::{ClientId, CpgConfig, CpgService, ServiceError, ENVELOPE_MAX, SERVICE_TAG};
use cpg::{CpgEvent, GroupName, MemberId};
use quorum::fencing::{ConfigError as FenceConfigError, FenceConfig, FenceEvent, Fencer, OpId, RunAgent};
use quorum::{QuorumConfig, QuorumEvent, RequestError, Votequorum};
use totem::{
    Event, Guarantee, Instant, NodeId, PersistedState, RingId, Srp, SrpState, Stats, SubmitError,
    TotemConfig, Transmit,
};

/// Bytes of service messages the node keeps queued in the engine; the rest waits in the
/// service, whose bound turns into `TryAgain` for the clients.
const ENGINE_QUEUE_TARGET: usize = 256 << 10;

/// First byte of a quorum service message.
pub const QUORUM_TAG: u8 = 2;

/// First byte of a fencing message ([`quorum::fencing::wire`]).
pub const FENCE_TAG: u8 = 3;

/// First byte of a message submitted with [`Node::submit`].
pub const RAW_TAG: u8 = 0;

/// Why a quorum request was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumRequestError {
    /// No quorum provider is configured.
    #[error("no quorum provider is configured (quorum {{ provider: corosync_votequorum }})")]
    NoProvider,
    /// votequorum refused it.
    #[error(transparent)]
    Refused(#[from] RequestError),
}

/// Why [`Node::new`] refused to build a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The engine refused its configuration (node id or Totem options); nothing was built.
    #[error("engine configuration: {0}")]
    Engine(String),
    /// The quorum options are inconsistent; nothing was built.
    #[error("quorum configuration: {0}")]
    Quorum(#[from] quorum::ConfigError),
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
    cpg: CpgService,
    /// votequorum, when the configuration names a quorum provider.
    quorum: Option<Votequorum>,
    /// A quorum or fencing message the engine could not take yet.
    control_pending: Option<Bytes>,
    /// Fencing, when the configuration has a `fencing` section.
    fencer: Option<Fencer>,
    /// The quorate verdict the fencer last heard.
    fencer_quorate: bool,
    /// Events routed past the services, in engine order, for the driver.
    events: VecDeque<Event>,
    /// Delivered messages with no known service byte (counted, dropped).
    unknown_service: u64,
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
        Node::with_cpg(node_id, config, CpgConfig::default(), persisted, seed, now)
    }

    /// [`Node::new`] with the group service's limits; the engine's `message_size_max` grows to
    /// carry the largest group message with its envelope.
    pub fn with_cpg(
        node_id: NodeId,
        mut config: TotemConfig,
        cpg_config: CpgConfig,
        persisted: PersistedState,
        seed: u64,
        now: Instant,
    ) -> Result<Node, NodeError> {
        config.message_size_max = config.message_size_max.max(cpg_config.message_max + ENVELOPE_MAX);
        let srp = Srp::new(node_id, config, persisted, seed, now).map_err(NodeError::Engine)?;
        let cpg = CpgService::new(node_id, cpg_config);
        let mut node = Node {
            srp,
            cpg,
            quorum: None,
            control_pending: None,
            fencer: None,
            fencer_quorate: false,
            events: VecDeque::new(),
            unknown_service: 0,
        };
        node.route_engine_events(now);
        Ok(node)
    }

    /// Runs votequorum with `config` on this node (call before the first input).
    pub fn enable_quorum(&mut self, config: &QuorumConfig) -> Result<(), NodeError> {
        self.quorum = Some(Votequorum::new(self.srp.node_id(), config)?);
        Ok(())
    }

    /// Runs the fencing policy with `config` on this node (call before the first input, after
    /// [`Node::enable_quorum`]): a member lost without a clean leave is fenced by the quorate
    /// side, by the one member whose claim on it is delivered first, and every member learns
    /// the result; this node unfences itself first when the configuration says so. While a
    /// fence is pending (or unfencing is not done), group joins and messages get
    /// [`ServiceError::FencingInProgress`].
    pub fn enable_fencing(&mut self, now: Instant, config: FenceConfig) -> Result<(), FenceConfigError> {
        let mut fencer = Fencer::coordinated(self.srp.node_id(), config)?;
        fencer.start(now);
        self.fencer = Some(fencer);
        self.route_engine_events(now);
        Ok(())
    }

    /// The fencing policy, when enabled.
    pub fn fencer(&self) -> Option<&Fencer> {
        self.fencer.as_ref()
    }

    /// Fences `node` by hand (fence_node): the request goes to every member, and the one whose
    /// claim is delivered first runs the agents.
    pub fn fence(&mut self, now: Instant, node: NodeId) -> Result<(), String> {
        let f = self.fencer.as_mut().ok_or("no fencing section is configured")?;
        f.fence(now, node).map_err(|e| e.to_string())?;
        self.route_engine_events(now);
        Ok(())
    }

    /// An operator confirms `node` is down (fence_ack_manual): its pending fence completes
    /// here at once, and on the other members when they hear of it.
    pub fn fence_ack(&mut self, now: Instant, node: NodeId) -> Result<(), String> {
        let f = self.fencer.as_mut().ok_or("no fencing section is configured")?;
        f.ack(now, node).map_err(|e| e.to_string())?;
        self.route_engine_events(now);
        Ok(())
    }

    /// A fence agent run finished.
    pub fn fence_agent_result(&mut self, now: Instant, op: OpId, success: bool, detail: String) {
        if let Some(f) = &mut self.fencer {
            f.handle_agent_result(now, op, success, detail);
        }
        self.route_engine_events(now);
    }

    /// The next fence agent to run.
    pub fn poll_fence_action(&mut self) -> Option<RunAgent> {
        self.fencer.as_mut()?.poll_action()
    }

    /// The next fencing event, for the log.
    pub fn poll_fence_event(&mut self) -> Option<FenceEvent> {
        self.fencer.as_mut()?.poll_event()
    }

    /// Whether service is held for fencing: a fence is pending, the startup wait for
    /// `post_join_delay` runs, or this node is not yet unfenced.
    pub fn fencing_held(&self) -> bool {
        self.fencer.as_ref().is_some_and(Fencer::is_blocking)
    }

    /// Nodes waiting to be fenced, sorted.
    pub fn fence_pending(&self) -> Vec<NodeId> {
        self.fencer.as_ref().map(Fencer::pending).unwrap_or_default()
    }

    /// votequorum, when enabled.
    pub fn quorum(&self) -> Option<&Votequorum> {
        self.quorum.as_ref()
    }

    /// Sets the expected votes of the cluster at run time (`totemctl quorum expected N`).
    pub fn quorum_set_expected(&mut self, now: Instant, expected: u32) -> Result<(), QuorumRequestError> {
        let q = self.quorum.as_mut().ok_or(QuorumRequestError::NoProvider)?;
        q.set_expected(expected)?;
        self.route_engine_events(now);
        Ok(())
    }

    /// Sets a node's votes at run time (`totemctl quorum votes NODE N`).
    pub fn quorum_set_votes(
        &mut self,
        now: Instant,
        node: NodeId,
        votes: u32,
    ) -> Result<(), QuorumRequestError> {
        let q = self.quorum.as_mut().ok_or(QuorumRequestError::NoProvider)?;
        q.set_votes(node, votes)?;
        self.route_engine_events(now);
        Ok(())
    }

    /// The next quorum change, in order (none when quorum is not enabled).
    pub fn poll_quorum_event(&mut self) -> Option<QuorumEvent> {
        self.quorum.as_mut()?.poll_event()
    }

    /// Handles one received datagram; malformed or stale input is counted and dropped.
    pub fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        self.srp.handle_datagram(now, datagram);
        self.route_engine_events(now);
    }

    /// The network reports `node`'s daemon gone (ICMP port unreachable from its host): the
    /// engine fails it now instead of after the token and consensus timeouts
    /// ([`Srp::handle_peer_unreachable`]).
    pub fn handle_peer_unreachable(&mut self, now: Instant, node: NodeId) {
        self.srp.handle_peer_unreachable(now, node);
        self.route_engine_events(now);
    }

    /// Handles expired timers; harmless when nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.srp.handle_timeout(now);
        if let Some(q) = &mut self.quorum {
            q.handle_timeout(now);
        }
        if let Some(f) = &mut self.fencer {
            f.handle_timeout(now);
        }
        self.route_engine_events(now);
    }

    /// Queues an application message for ordered delivery to the ring. Nothing is queued when
    /// it returns an error.
    pub fn submit(&mut self, now: Instant, payload: Bytes, guarantee: Guarantee) -> Result<(), SubmitError> {
        let mut tagged = BytesMut::with_capacity(payload.len() + 1);
        tagged.put_u8(RAW_TAG);
        tagged.put_slice(&payload);
        let result = self.srp.submit(now, tagged.freeze(), guarantee).map_err(|e| match e {
            SubmitError::TooLarge { size, max } => SubmitError::TooLarge { size: size - 1, max: max - 1 },
            e => e,
        });
        self.route_engine_events(now);
        result
    }

    /// A local client connected; `pid` is its process id (from the socket's credentials).
    pub fn client_connect(&mut self, client: ClientId, pid: u32) {
        self.cpg.connect(client, pid);
    }

    /// A local client went away: it leaves its groups with reason `procdown`.
    pub fn client_disconnect(&mut self, now: Instant, client: ClientId) {
        self.cpg.disconnect(client);
        self.route_engine_events(now);
    }

    /// The client joins `group` (a configuration change follows once it is applied).
    pub fn cpg_join(
        &mut self,
        now: Instant,
        client: ClientId,
        group: &GroupName,
    ) -> Result<(), ServiceError> {
        if self.fencing_held() {
            return Err(ServiceError::FencingInProgress);
        }
        let result = self.cpg.join(client, group);
        self.route_engine_events(now);
        result
    }

    /// The client leaves `group`.
    pub fn cpg_leave(
        &mut self,
        now: Instant,
        client: ClientId,
        group: &GroupName,
    ) -> Result<(), ServiceError> {
        let result = self.cpg.leave(client, group);
        self.route_engine_events(now);
        result
    }

    /// The client sends `data` to `group`.
    pub fn cpg_mcast(
        &mut self,
        now: Instant,
        client: ClientId,
        group: &GroupName,
        guarantee: cpg::Guarantee,
        data: Bytes,
    ) -> Result<(), ServiceError> {
        if self.fencing_held() {
            return Err(ServiceError::FencingInProgress);
        }
        let result = self.cpg.mcast(client, group, guarantee, data);
        self.route_engine_events(now);
        result
    }

    /// The members of `group`.
    pub fn cpg_membership(&self, group: &GroupName) -> Vec<MemberId> {
        self.cpg.membership(group)
    }

    /// Replaces the engine's timing and flow-control options (a reload); see
    /// [`totem::Srp::set_timing`]. Nothing changes when it returns an error.
    pub fn set_totem_timing(&mut self, config: TotemConfig) -> Result<(), String> {
        self.srp.set_timing(config)
    }

    /// Whether nothing waits to be sent: neither group messages nor the engine's queue. A
    /// token visit then sends only what arrives before it.
    pub fn send_queue_empty(&self) -> bool {
        self.cpg.queue_bytes() == 0 && self.srp.send_queue_bytes() == 0
    }

    /// The group service, for inspection (every group and its members, counters).
    pub fn cpg(&self) -> &CpgService {
        &self.cpg
    }

    /// The next event for a local client, in order. Drain after every input.
    pub fn poll_client_event(&mut self) -> Option<(ClientId, CpgEvent)> {
        self.cpg.poll_event()
    }

    /// Delivered messages that carried no known service byte.
    pub fn unknown_service_messages(&self) -> u64 {
        self.unknown_service
    }

    /// Leaves the ring cleanly (shutdown): the members fail this node at once instead of
    /// waiting for a token timeout. Send the queued transmits, then stop; later input is ignored.
    pub fn leave(&mut self, now: Instant) {
        self.srp.leave(now);
        self.route_engine_events(now);
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
        let quorum = self.quorum.as_ref().and_then(Votequorum::poll_timeout);
        let fencer = self.fencer.as_ref().and_then(Fencer::poll_timeout);
        [self.srp.poll_timeout(), quorum, fencer].into_iter().flatten().min()
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
    fn route_engine_events(&mut self, now: Instant) {
        loop {
            while let Some(event) = self.srp.poll_event() {
                self.route(now, event);
            }
            // votequorum's verdict changes with deliveries, not only with rings.
            let quorate = self.quorum.as_ref().is_none_or(Votequorum::is_quorate);
            if let Some(f) = self.fencer.as_mut().filter(|_| quorate != self.fencer_quorate) {
                f.handle_membership(now, self.srp.members(), quorate, &[]);
                self.fencer_quorate = quorate;
            }
            if !self.submit_service_messages(now) {
                break;
            }
        }
    }

    fn route(&mut self, now: Instant, event: Event) {
        match event {
            Event::Deliver(mut d) => match d.payload.first().copied() {
                Some(RAW_TAG) => {
                    d.payload = d.payload.slice(1..);
                    self.events.push_back(Event::Deliver(d));
                }
                Some(SERVICE_TAG) => {
                    d.payload = d.payload.slice(1..);
                    self.cpg.handle_delivery(d);
                }
                Some(QUORUM_TAG) if self.quorum.is_some() => {
                    if let Some(q) = &mut self.quorum {
                        q.handle_message(d.sender, &d.payload[1..]);
                    }
                }
                Some(FENCE_TAG) if self.fencer.is_some() => {
                    if let Some(f) = &mut self.fencer {
                        if let Err(e) = f.handle_message(now, d.sender, &d.payload[1..]) {
                            self.unknown_service += 1;
                            tracing::debug!(sender = %d.sender, "fencing message dropped: {e}");
                        }
                    }
                }
                _ => {
                    self.unknown_service += 1;
                    tracing::debug!(sender = %d.sender, "message for an unknown service dropped");
                }
            },
            Event::Transitional(c) => {
                self.cpg.handle_transitional(&c.members);
                self.events.push_back(Event::Transitional(c));
            }
            Event::Regular(c) => {
                self.cpg.handle_regular(c.ring_id, &c.members);
                if let Some(q) = &mut self.quorum {
                    q.handle_configuration(now, &c);
                }
                let clean: Vec<NodeId> = self.srp.take_clean_leavers().into_iter().collect();
                let quorate = self.quorum.as_ref().is_none_or(Votequorum::is_quorate);
                if let Some(f) = &mut self.fencer {
                    f.new_ring(c.ring_id);
                    f.handle_membership(now, &c.members, quorate, &clean);
                    self.fencer_quorate = quorate;
                }
                self.events.push_back(Event::Regular(c));
            }
            Event::Persist(p) => self.events.push_back(Event::Persist(p)),
        }
    }

    /// Hands the group service's messages to the engine while it takes them; whether any was
    /// taken (the engine may then have events to route).
    fn submit_service_messages(&mut self, now: Instant) -> bool {
        let mut any = false;
        // Quorum and fencing messages first: few, small, and they decide whether the cluster
        // may act.
        loop {
            let tagged = |tag: u8, body: Vec<u8>| {
                let mut bytes = Vec::with_capacity(body.len() + 1);
                bytes.push(tag);
                bytes.extend_from_slice(&body);
                Bytes::from(bytes)
            };
            let next = self.control_pending.take().or_else(|| {
                let quorum = self.quorum.as_mut().and_then(Votequorum::poll_submission);
                let quorum = quorum.map(|body| tagged(QUORUM_TAG, body));
                quorum.or_else(|| {
                    let fence = self.fencer.as_mut().and_then(Fencer::poll_message);
                    fence.map(|body| tagged(FENCE_TAG, body))
                })
            });
            let Some(payload) = next else { break };
            match self.srp.submit(now, payload.clone(), Guarantee::Agreed) {
                Ok(()) => any = true,
                Err(_) => {
                    self.control_pending = Some(payload);
                    break;
                }
            }
        }
        // Keep the engine's queue short: what waits there has no flow control of its own, and
        // every byte queued is latency for every message after it.
        while self.srp.send_queue_bytes() < ENGINE_QUEUE_TARGET {
            let Some((payload, guarantee)) = self.cpg.next_submission() else { break };
            match self.srp.submit(now, payload, guarantee) {
                Ok(()) => {
                    self.cpg.submitted();
                    any = true;
                }
                Err(SubmitError::TryAgain) => break,
                Err(e @ SubmitError::TooLarge { .. }) => {
                    // `with_cpg` sized the engine for the largest group message: a broken invariant.
                    panic!("group service message refused by the engine: {e}");
                }
            }
        }
        any
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
