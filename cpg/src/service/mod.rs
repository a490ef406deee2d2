//! The sans-IO group service of one node.
//!
//! # How groups stay in step
//! Every join, leave and group message is a Totem message, applied at every node in the one
//! total order, so nodes of one ring apply the same operations to the same group table. Across
//! configuration changes (extended virtual synchrony, as corosync's CPG sync):
//! - Old-ring messages delivered in the transitional configuration are applied as usual; then,
//!   at the new regular configuration, every process on a node that did not come along leaves
//!   its groups with reason `nodedown`.
//! - At every new ring each node sends one sync message listing its own members. Until the
//!   sync messages of every member of the ring are delivered (a position in the total order,
//!   the same at every node) the node submits no operation of its own. Then the group table
//!   becomes the union of the lists, and each local member is told who came (`nodeup`).
//! - Operations carry the ring they were submitted in; one delivered in another ring was
//!   queued before the change and is ignored everywhere. Its sender queued it again at the
//!   change, so it is applied once, in the new ring, after the sync.
//!
//! # Call order
//! Local requests ([`CpgService::join`], [`CpgService::mcast`], ...) at any time; engine events
//! in engine order ([`CpgService::handle_transitional`], [`CpgService::handle_delivery`],
//! [`CpgService::handle_regular`]); then drain [`CpgService::poll_event`] (what each local
//! client must be told) and hand [`CpgService::next_submission`] to the engine until it is
//! empty or the engine is full ([`CpgService::submitted`] after each accepted one).

mod wire;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use prost::Message as _;
use totem::{Delivery, NodeId, RingId};

use crate::types::{
    Change, Confchg, CpgEvent, GroupName, Guarantee, MemberId, Message, Reason, TotemConfchg,
};
use wire::{Body, CpgPacket, McastOp, MemberOp, SyncGroup, SyncOp};

/// A local client connection, as the daemon numbers them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

/// Limits of the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpgConfig {
    /// Largest group message in bytes; a larger one is refused with [`ServiceError::TooLarge`].
    pub message_max: usize,
    /// Bytes of group messages this node may hold before the engine takes them; beyond it a
    /// send gets [`ServiceError::TryAgain`].
    pub queue_bytes_max: usize,
}

impl Default for CpgConfig {
    fn default() -> Self {
        CpgConfig { message_max: 1 << 20, queue_bytes_max: 2 << 20 }
    }
}

/// Bytes of envelope a group message adds to its data on the ring, at most (ring id, group
/// name of up to 128 bytes, pid, prost tags and lengths).
pub const ENVELOPE_MAX: usize = 256;

/// Why a local request was refused. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The client is not connected (the daemon did not call [`CpgService::connect`]).
    #[error("unknown client")]
    UnknownClient,
    /// The process is already in (or joining) this group.
    #[error("already a member of the group")]
    Exist,
    /// The client is not in this group.
    #[error("not a member of the group")]
    NotExist,
    /// Too much is queued; try again after deliveries.
    #[error("too many messages queued, try again")]
    TryAgain,
    /// The daemon holds service while a fence is pending or this node is not yet unfenced
    /// (never returned by this service itself; the composed node decides it). Try again
    /// once fencing completes.
    #[error("service held: fencing in progress")]
    FencingInProgress,
    /// The message exceeds [`CpgConfig::message_max`].
    #[error("message of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpgStats {
    /// Group messages delivered to local clients (one per client).
    pub messages_delivered: u64,
    /// Configuration changes sent to local clients.
    pub confchgs: u64,
    /// Sync rounds completed.
    pub syncs_completed: u64,
    /// Operations ignored because they were submitted in an earlier ring.
    pub stale_operations: u64,
    /// Service messages that did not decode (counted, dropped).
    pub malformed: u64,
}

/// A local operation waiting for the engine.
#[derive(Clone, Debug)]
enum Op {
    Join { group: GroupName, pid: u32 },
    Leave { group: GroupName, pid: u32, reason: Reason },
    Mcast { group: GroupName, pid: u32, guarantee: Guarantee, data: Bytes },
}

impl Op {
    fn bytes(&self) -> usize {
        match self {
            Op::Mcast { data, .. } => data.len(),
            _ => 0,
        }
    }

    fn encode(&self, ring: RingId) -> (Bytes, Guarantee) {
        let (body, guarantee) = match self {
            Op::Join { group, pid } => (Body::Join(member_op(group, *pid, 0)), Guarantee::Agreed),
            Op::Leave { group, pid, reason } => {
                (Body::Leave(member_op(group, *pid, reason.as_u32())), Guarantee::Agreed)
            }
            Op::Mcast { group, pid, guarantee, data } => (
                Body::Mcast(McastOp { group: group.as_bytes().to_vec(), pid: *pid, data: data.clone() }),
                *guarantee,
            ),
        };
        (encode(ring, body), guarantee)
    }
}

fn member_op(group: &GroupName, pid: u32, reason: u32) -> MemberOp {
    MemberOp { group: group.as_bytes().to_vec(), pid, reason }
}

/// The first byte of every service message the engine carries; the composed node routes
/// deliveries by it and hands [`CpgService::handle_delivery`] the rest.
pub const SERVICE_TAG: u8 = 1;

fn encode(ring: RingId, body: Body) -> Bytes {
    let packet = CpgPacket { ring_id: Some(ring.into()), body: Some(body) };
    let mut out = Vec::with_capacity(1 + packet.encoded_len());
    out.push(SERVICE_TAG);
    packet.encode(&mut out).expect("a Vec grows as needed");
    out.into()
}

/// Where a local process stands in one group.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Standing {
    /// Its join is queued or on the ring.
    Joining,
    /// Its join was applied.
    Joined,
    /// Its leave is queued or on the ring.
    Leaving,
}

#[derive(Clone, Debug)]
struct Binding {
    client: ClientId,
    standing: Standing,
}

#[derive(Clone, Debug)]
struct Client {
    pid: u32,
    connected: bool,
}

/// The sync round of the current ring.
#[derive(Clone, Debug)]
struct SyncRound {
    /// Members whose sync message is not delivered yet.
    waiting: BTreeSet<NodeId>,
    /// What the delivered ones listed.
    listed: BTreeMap<GroupName, BTreeSet<MemberId>>,
}

/// The group service of one node; see the module doc.
pub struct CpgService {
    node_id: NodeId,
    config: CpgConfig,
    /// The current regular ring, once one is installed.
    ring: Option<RingId>,
    /// Members of the current regular ring.
    ring_members: Vec<NodeId>,
    /// Members of the last transitional configuration, until the regular one that follows.
    transitional: Option<BTreeSet<NodeId>>,
    sync: Option<SyncRound>,
    /// The group table: every member of every group, as applied in the total order.
    groups: BTreeMap<GroupName, BTreeSet<MemberId>>,
    clients: BTreeMap<ClientId, Client>,
    /// Local processes in groups, by group and pid.
    local: BTreeMap<(GroupName, u32), Binding>,
    /// Operations waiting for the engine (and for the sync round to end).
    queue: VecDeque<Op>,
    queue_bytes: usize,
    /// Operations handed to the engine in the current ring and not yet delivered.
    in_flight: VecDeque<Op>,
    /// The encoded front of `queue` (or the sync message) offered to the engine.
    offer: Option<(Bytes, Guarantee, bool)>,
    /// The sync message of the current ring, until the engine takes it.
    sync_message: Option<Bytes>,
    events: VecDeque<(ClientId, CpgEvent)>,
    stats: CpgStats,
}

impl CpgService {
    /// A service with no groups, waiting for its node's first ring.
    pub fn new(node_id: NodeId, config: CpgConfig) -> CpgService {
        CpgService {
            node_id,
            config,
            ring: None,
            ring_members: Vec::new(),
            transitional: None,
            sync: None,
            groups: BTreeMap::new(),
            clients: BTreeMap::new(),
            local: BTreeMap::new(),
            queue: VecDeque::new(),
            queue_bytes: 0,
            in_flight: VecDeque::new(),
            offer: None,
            sync_message: None,
            events: VecDeque::new(),
            stats: CpgStats::default(),
        }
    }

    /// The service's limits.
    pub fn config(&self) -> &CpgConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &CpgStats {
        &self.stats
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Whether the sync round of the current ring is still running (own operations wait).
    pub fn syncing(&self) -> bool {
        self.sync.is_some() || self.ring.is_none()
    }

    // ----- local requests -------------------------------------------------------------------

    /// A client connected; `pid` is its process id (from the socket's peer credentials).
    pub fn connect(&mut self, client: ClientId, pid: u32) {
        self.clients.insert(client, Client { pid, connected: true });
    }

    /// A client went away: it leaves every group it is in with reason `procdown`.
    pub fn disconnect(&mut self, client: ClientId) {
        let Some(c) = self.clients.get_mut(&client) else { return };
        c.connected = false;
        let pid = c.pid;
        let mine: Vec<GroupName> = self
            .local
            .iter()
            .filter(|(_, b)| b.client == client && b.standing != Standing::Leaving)
            .map(|((g, _), _)| g.clone())
            .collect();
        for group in mine {
            if let Some(b) = self.local.get_mut(&(group.clone(), pid)) {
                b.standing = Standing::Leaving;
            }
            self.push(Op::Leave { group, pid, reason: Reason::ProcDown });
        }
        if !self.local.values().any(|b| b.client == client) {
            self.clients.remove(&client);
        }
    }

    /// Joins `group`. The client is told with a configuration change once the join is applied.
    pub fn join(&mut self, client: ClientId, group: &GroupName) -> Result<(), ServiceError> {
        let pid = self.live_client(client)?;
        match self.local.get(&(group.clone(), pid)) {
            // An earlier connection of this process is still leaving (procdown on the ring).
            Some(b) if b.client != client && b.standing == Standing::Leaving => {
                return Err(ServiceError::TryAgain)
            }
            Some(_) => return Err(ServiceError::Exist),
            None => {}
        }
        self.local.insert((group.clone(), pid), Binding { client, standing: Standing::Joining });
        self.push(Op::Join { group: group.clone(), pid });
        Ok(())
    }

    /// Leaves `group`; the client's last event for it is a configuration change listing it as left.
    pub fn leave(&mut self, client: ClientId, group: &GroupName) -> Result<(), ServiceError> {
        let pid = self.live_client(client)?;
        match self.local.get_mut(&(group.clone(), pid)) {
            Some(b) if b.client == client && b.standing != Standing::Leaving => {
                b.standing = Standing::Leaving;
            }
            _ => return Err(ServiceError::NotExist),
        }
        self.push(Op::Leave { group: group.clone(), pid, reason: Reason::Leave });
        Ok(())
    }

    /// Sends `data` to `group`, which the client must have joined (or be joining).
    pub fn mcast(
        &mut self,
        client: ClientId,
        group: &GroupName,
        guarantee: Guarantee,
        data: Bytes,
    ) -> Result<(), ServiceError> {
        let pid = self.live_client(client)?;
        match self.local.get(&(group.clone(), pid)) {
            Some(b) if b.client == client && b.standing != Standing::Leaving => {}
            _ => return Err(ServiceError::NotExist),
        }
        if data.len() > self.config.message_max {
            return Err(ServiceError::TooLarge { size: data.len(), max: self.config.message_max });
        }
        if self.queue_bytes > 0 && self.queue_bytes + data.len() > self.config.queue_bytes_max {
            return Err(ServiceError::TryAgain);
        }
        self.push(Op::Mcast { group: group.clone(), pid, guarantee, data });
        Ok(())
    }

    /// Bytes of group messages waiting to be handed to the engine.
    pub fn queue_bytes(&self) -> usize {
        self.queue_bytes
    }

    /// The members of `group`, sorted (empty for an unknown group).
    pub fn membership(&self, group: &GroupName) -> Vec<MemberId> {
        self.groups.get(group).map(|m| m.iter().copied().collect()).unwrap_or_default()
    }

    /// Every group with at least one member, with its members, sorted by name.
    pub fn groups(&self) -> impl Iterator<Item = (&GroupName, &BTreeSet<MemberId>)> {
        self.groups.iter()
    }

    /// The local clients in `group` (joined or joining), in process id order.
    pub fn local_clients<'a>(&'a self, group: &'a GroupName) -> impl Iterator<Item = ClientId> + 'a {
        self.local.iter().filter(move |((g, _), _)| g == group).map(|(_, b)| b.client)
    }

    /// Bytes of group messages waiting for the engine.
    pub fn queued_bytes(&self) -> usize {
        self.queue_bytes
    }

    fn live_client(&self, client: ClientId) -> Result<u32, ServiceError> {
        match self.clients.get(&client) {
            Some(c) if c.connected => Ok(c.pid),
            _ => Err(ServiceError::UnknownClient),
        }
    }

    fn push(&mut self, op: Op) {
        self.queue_bytes += op.bytes();
        self.queue.push_back(op);
    }

    // ----- engine events, in engine order ---------------------------------------------------

    /// The transitional configuration: old-ring messages delivered next are still applied;
    /// nodes outside `members` leave their groups at the regular configuration that follows.
    pub fn handle_transitional(&mut self, members: &[NodeId]) {
        self.transitional = Some(members.iter().copied().collect());
    }

    /// A new regular configuration: nodes that did not come along leave their groups
    /// (`nodedown`), every local client in a group gets the totem configuration, and the sync
    /// round of the new ring starts.
    pub fn handle_regular(&mut self, ring_id: RingId, members: &[NodeId]) {
        let came_along = self.transitional.take().unwrap_or_else(|| members.iter().copied().collect());
        let gone: BTreeSet<NodeId> =
            self.ring_members.iter().copied().filter(|n| !came_along.contains(n)).collect();
        if !gone.is_empty() {
            self.remove_nodes(&gone);
        }
        self.ring = Some(ring_id);
        self.ring_members = members.to_vec();
        self.announce_totem(ring_id, members);

        // Operations on the ring now were submitted in the old ring: they will be ignored
        // everywhere, so they go back to the front of the queue, in order.
        while let Some(op) = self.in_flight.pop_back() {
            self.queue_bytes += op.bytes();
            self.queue.push_front(op);
        }
        self.offer = None;
        self.sync = Some(SyncRound { waiting: members.iter().copied().collect(), listed: BTreeMap::new() });
        let groups = self
            .local
            .iter()
            .filter(|((g, pid), _)| self.groups.get(g).is_some_and(|m| m.contains(&self.member(*pid))))
            .fold(BTreeMap::<&GroupName, Vec<u32>>::new(), |mut acc, ((g, pid), _)| {
                acc.entry(g).or_default().push(*pid);
                acc
            })
            .into_iter()
            .map(|(g, pids)| SyncGroup { group: g.as_bytes().to_vec(), pids })
            .collect();
        self.sync_message = Some(encode(ring_id, Body::Sync(SyncOp { groups })));
    }

    /// A service message delivered by the engine, its payload without the [`SERVICE_TAG`] byte.
    pub fn handle_delivery(&mut self, delivery: Delivery) {
        let Delivery { ring_id, sender, guarantee, payload, .. } = delivery;
        let packet = match CpgPacket::decode(payload) {
            Ok(p) => p,
            Err(e) => {
                self.stats.malformed += 1;
                tracing::debug!(%sender, error = %e, "cpg: malformed service message dropped");
                return;
            }
        };
        let (Some(tag), Some(body)) = (packet.ring_id.map(RingId::from), packet.body) else {
            self.stats.malformed += 1;
            return;
        };
        if tag != ring_id {
            // Submitted in an earlier ring: ignored at every node alike.
            self.stats.stale_operations += 1;
            return;
        }
        if let Body::Sync(sync) = body {
            return self.on_sync(ring_id, sender, sync);
        }
        if self.sync.is_some() {
            // Nobody submits in a ring before its sync round ends (see the module doc).
            self.stats.stale_operations += 1;
            tracing::warn!(%sender, ring = %ring_id, "cpg: operation during the sync round ignored");
            return;
        }
        if sender == self.node_id {
            self.in_flight.pop_front();
        }
        match body {
            Body::Join(op) => self.on_join(sender, op),
            Body::Leave(op) => self.on_leave(sender, op),
            Body::Mcast(op) => self.on_mcast(sender, op, guarantee),
            Body::Sync(_) => {}
        }
    }

    // ----- outputs --------------------------------------------------------------------------

    /// The next event for a local client, in order.
    pub fn poll_event(&mut self) -> Option<(ClientId, CpgEvent)> {
        self.events.pop_front()
    }

    /// The next service message for the engine (starting with [`SERVICE_TAG`]), if any may be
    /// sent now. Offer it to the engine;
    /// call [`CpgService::submitted`] if it accepted it, else offer the same one again later.
    pub fn next_submission(&mut self) -> Option<(Bytes, totem::Guarantee)> {
        let ring = self.ring?;
        if self.offer.is_none() {
            if let Some(sync) = &self.sync_message {
                self.offer = Some((sync.clone(), Guarantee::Agreed, true));
            } else if self.sync.is_none() {
                let (bytes, guarantee) = self.queue.front()?.encode(ring);
                self.offer = Some((bytes, guarantee, false));
            }
        }
        self.offer.as_ref().map(|(b, g, _)| (b.clone(), (*g).into()))
    }

    /// The engine accepted the last [`CpgService::next_submission`].
    pub fn submitted(&mut self) {
        match self.offer.take() {
            Some((_, _, true)) => self.sync_message = None,
            Some((_, _, false)) => {
                if let Some(op) = self.queue.pop_front() {
                    self.queue_bytes -= op.bytes();
                    self.in_flight.push_back(op);
                }
            }
            None => {}
        }
    }

    // ----- applying operations --------------------------------------------------------------

    fn member(&self, pid: u32) -> MemberId {
        MemberId { node_id: self.node_id.0, pid }
    }

    fn on_sync(&mut self, ring_id: RingId, sender: NodeId, sync: SyncOp) {
        let Some(round) = self.sync.as_mut().filter(|_| self.ring == Some(ring_id)) else {
            self.stats.stale_operations += 1;
            return;
        };
        if !round.waiting.remove(&sender) {
            return;
        }
        for entry in sync.groups {
            let Ok(group) = GroupName::new(entry.group) else {
                self.stats.malformed += 1;
                continue;
            };
            let members = round.listed.entry(group).or_default();
            members.extend(entry.pids.into_iter().map(|pid| MemberId { node_id: sender.0, pid }));
        }
        if round.waiting.is_empty() {
            let round = self.sync.take().expect("sync round checked above");
            self.finish_sync(round.listed);
        }
    }

    /// The group table becomes the union of every member's list; local members hear of the
    /// difference (`nodeup` for who came, `procdown` for who its node no longer lists).
    fn finish_sync(&mut self, listed: BTreeMap<GroupName, BTreeSet<MemberId>>) {
        self.stats.syncs_completed += 1;
        let names: BTreeSet<GroupName> = self.groups.keys().chain(listed.keys()).cloned().collect();
        for group in names {
            let old = self.groups.get(&group).cloned().unwrap_or_default();
            let new = listed.get(&group).cloned().unwrap_or_default();
            if old == new {
                continue;
            }
            let joined =
                new.difference(&old).map(|&m| Change { member: m, reason: Reason::NodeUp }).collect();
            let left =
                old.difference(&new).map(|&m| Change { member: m, reason: Reason::ProcDown }).collect();
            self.set_members(&group, new);
            self.confchg(&group, left, joined, None);
        }
    }

    fn on_join(&mut self, sender: NodeId, op: MemberOp) {
        let Ok(group) = GroupName::new(op.group) else { return self.stats.malformed += 1 };
        let member = MemberId { node_id: sender.0, pid: op.pid };
        if sender == self.node_id {
            match self.local.get_mut(&(group.clone(), op.pid)) {
                Some(b) if b.standing == Standing::Joining => b.standing = Standing::Joined,
                _ => {}
            }
        }
        if !self.groups.entry(group.clone()).or_default().insert(member) {
            return;
        }
        self.confchg(&group, Vec::new(), vec![Change { member, reason: Reason::Join }], None);
    }

    fn on_leave(&mut self, sender: NodeId, op: MemberOp) {
        let Ok(group) = GroupName::new(op.group) else { return self.stats.malformed += 1 };
        let member = MemberId { node_id: sender.0, pid: op.pid };
        let reason = match Reason::from_u32(op.reason) {
            Some(r @ (Reason::Leave | Reason::ProcDown)) => r,
            _ => Reason::Leave,
        };
        // The leaver itself hears of its leave (its last event for the group), if still connected.
        let leaver = (sender == self.node_id)
            .then(|| self.local.remove(&(group.clone(), op.pid)))
            .flatten()
            .map(|b| b.client);
        if let Some(client) = leaver {
            self.forget_client_if_done(client);
        }
        let removed = self.groups.get_mut(&group).is_some_and(|m| m.remove(&member));
        if !removed {
            return;
        }
        if self.groups.get(&group).is_some_and(BTreeSet::is_empty) {
            self.groups.remove(&group);
        }
        self.confchg(&group, vec![Change { member, reason }], Vec::new(), leaver);
    }

    fn on_mcast(&mut self, sender: NodeId, op: McastOp, guarantee: totem::Guarantee) {
        let Ok(group) = GroupName::new(op.group) else { return self.stats.malformed += 1 };
        let recipients = self.local_recipients(&group);
        if recipients.is_empty() {
            return;
        }
        let message = Message {
            group,
            sender: MemberId { node_id: sender.0, pid: op.pid },
            guarantee: guarantee.into(),
            data: op.data,
        };
        self.stats.messages_delivered += recipients.len() as u64;
        for client in recipients {
            self.events.push_back((client, CpgEvent::Deliver(message.clone())));
        }
    }

    /// Every process of a node in `gone` leaves its groups with reason `nodedown`.
    fn remove_nodes(&mut self, gone: &BTreeSet<NodeId>) {
        let names: Vec<GroupName> = self.groups.keys().cloned().collect();
        for group in names {
            let members = self.groups.get(&group).cloned().unwrap_or_default();
            let (lost, kept): (BTreeSet<MemberId>, BTreeSet<MemberId>) =
                members.into_iter().partition(|m| gone.contains(&NodeId(m.node_id)));
            if lost.is_empty() {
                continue;
            }
            self.set_members(&group, kept);
            let left = lost.into_iter().map(|m| Change { member: m, reason: Reason::NodeDown }).collect();
            self.confchg(&group, left, Vec::new(), None);
        }
    }

    fn set_members(&mut self, group: &GroupName, members: BTreeSet<MemberId>) {
        if members.is_empty() {
            self.groups.remove(group);
        } else {
            self.groups.insert(group.clone(), members);
        }
    }

    /// Local clients that are members of `group` in the table, in pid order.
    fn local_recipients(&self, group: &GroupName) -> Vec<ClientId> {
        let Some(members) = self.groups.get(group) else { return Vec::new() };
        members
            .iter()
            .filter(|m| m.node_id == self.node_id.0)
            .filter_map(|m| self.local.get(&(group.clone(), m.pid)))
            .map(|b| b.client)
            .filter(|c| self.clients.get(c).is_some_and(|c| c.connected))
            .collect()
    }

    /// Tells every local member of `group` (and `also`, a local process that just left) of a change.
    fn confchg(&mut self, group: &GroupName, left: Vec<Change>, joined: Vec<Change>, also: Option<ClientId>) {
        let mut recipients = self.local_recipients(group);
        if let Some(c) = also.filter(|c| self.clients.get(c).is_some_and(|c| c.connected)) {
            recipients.push(c);
        }
        if recipients.is_empty() {
            return;
        }
        let event = Confchg { group: group.clone(), members: self.membership(group), left, joined };
        self.stats.confchgs += recipients.len() as u64;
        for client in recipients {
            self.events.push_back((client, CpgEvent::Confchg(event.clone())));
        }
    }

    fn announce_totem(&mut self, ring_id: RingId, members: &[NodeId]) {
        let clients: BTreeSet<ClientId> = self.local.values().map(|b| b.client).collect();
        let event = TotemConfchg {
            ring_representative: ring_id.representative.0,
            ring_seq: ring_id.seq,
            members: members.iter().map(|n| n.0).collect(),
        };
        for client in clients.into_iter().filter(|c| self.clients.get(c).is_some_and(|c| c.connected)) {
            self.events.push_back((client, CpgEvent::Totem(event.clone())));
        }
    }

    /// A disconnected client is forgotten once it has no group left.
    fn forget_client_if_done(&mut self, client: ClientId) {
        let done = self.clients.get(&client).is_some_and(|c| !c.connected)
            && !self.local.values().any(|b| b.client == client);
        if done {
            self.clients.remove(&client);
        }
    }
}
