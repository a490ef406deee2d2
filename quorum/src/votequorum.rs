//! The votequorum state machine of one node (corosync's exec/votequorum.c, without quorum
//! devices, `allow_downscale` and `expected_votes_tracking`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use totem::{Instant, NodeId, RingId};

use crate::config::{ConfigError, QuorumConfig, TieBreaker};
use crate::wire::{self, Body, LmsPartition, NodeInfo, QuorumMessage, Reconfigure};

/// Quorum events kept for the driver before the oldest is dropped (and counted).
pub const EVENTS_MAX: usize = 1024;
/// Run-time changes waiting to be multicast before `set_*` answer [`RequestError::Busy`].
pub const RECONFIGURE_QUEUE_MAX: usize = 64;

/// What votequorum knows of a node, as it last said in a [`NodeInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Node {
    votes: u32,
    expected_votes: u32,
    flags: u32,
    /// In the current ring and its info was delivered (corosync's NODESTATE_MEMBER).
    member: bool,
}

/// A quorum change, as a quorum tracking client sees it (corosync's `quorum_callback`): one at
/// the end of every ring's exchange of node infos, and one whenever `quorate` flips in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumEvent {
    /// Whether this partition is quorate now.
    pub quorate: bool,
    /// The ring the members belong to.
    pub ring_id: RingId,
    /// Members of that ring, sorted.
    pub members: Vec<NodeId>,
}

/// The `Flags:` line of `corosync-quorumtool -s`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusFlags {
    /// `2Node`: two_node is in force.
    pub two_node: bool,
    /// `Quorate`.
    pub quorate: bool,
    /// `WaitForAll`: wait_for_all is configured (not whether it still waits).
    pub wait_for_all: bool,
    /// `LastManStanding`.
    pub last_man_standing: bool,
    /// `AutoTieBreaker`.
    pub auto_tie_breaker: bool,
}

/// One row of the member table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// The member.
    pub node_id: NodeId,
    /// Its votes; 0 while its node info has not been delivered.
    pub votes: u32,
    /// Its expected votes as this node records them.
    pub expected_votes: u32,
}

/// What `votequorum_getinfo` answers for this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub node_id: NodeId,
    /// The current ring, none before the first.
    pub ring_id: Option<RingId>,
    /// Whether this partition is quorate.
    pub quorate: bool,
    /// This node's expected votes.
    pub expected_votes: u32,
    /// The highest expected votes of the members.
    pub highest_expected: u32,
    /// Votes of the members whose info was delivered.
    pub total_votes: u32,
    /// Votes needed for quorum.
    pub quorum: u32,
    /// Settings in force and quorate.
    pub flags: StatusFlags,
    /// Members of the current ring (this node alone before the first ring), sorted.
    pub members: Vec<MemberStatus>,
}

/// Peer messages and outputs dropped, for the daemon's stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages that did not decode.
    pub malformed: u64,
    /// Node infos about another node than their sender, or from outside the current ring.
    pub wrong_sender: u64,
    /// Reconfigure messages with an unknown parameter or node.
    pub bad_reconfigure: u64,
    /// Events dropped because the driver did not poll them.
    pub events_dropped: u64,
}

/// A local request refused; nothing changed and nothing is sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Below the votes present, or it would make a quorate cluster inquorate (corosync's CS_ERR_INVALID_PARAM).
    #[error("expected votes {expected} refused: total votes {total_votes}, quorum would be {quorum}")]
    InvalidExpected {
        /// The value asked for.
        expected: u32,
        /// Votes present.
        total_votes: u32,
        /// The quorum it would give.
        quorum: u32,
    },
    /// The quorum would be out of reach of the votes present or below half of them.
    #[error("votes {votes} for node {node} refused: quorum would be {quorum} of {total_votes} votes")]
    InvalidVotes {
        /// The node.
        node: NodeId,
        /// The value asked for.
        votes: u32,
        /// Votes present with that change.
        total_votes: u32,
        /// The quorum it would give.
        quorum: u32,
    },
    /// No node info of that node was ever delivered (corosync's CS_ERR_NAME_NOT_FOUND).
    #[error("node {0} is unknown")]
    UnknownNode(NodeId),
    /// [`RECONFIGURE_QUEUE_MAX`] changes already wait to be multicast.
    #[error("too many changes waiting to be sent")]
    Busy,
}

/// The votequorum service of one node, sans-IO.
///
/// Call order: [`Votequorum::new`]; on every regular configuration of Totem call
/// [`handle_ring`](Self::handle_ring), then multicast (agreed order) every
/// [`poll_submission`](Self::poll_submission); feed every quorum message Totem delivers, ours
/// included, to [`handle_message`](Self::handle_message); call
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout). After each
/// input drain [`poll_submission`](Self::poll_submission) and [`poll_event`](Self::poll_event).
#[derive(Clone, Debug)]
pub struct Votequorum {
    node_id: NodeId,
    two_node: bool,
    wait_for_all: bool,
    last_man_standing: bool,
    last_man_standing_window: Duration,
    tie_breaker: Option<TieBreaker>,
    /// Every node ever heard of, us included.
    nodes: BTreeMap<NodeId, Node>,
    quorum: u32,
    quorate: bool,
    /// Still waiting to see all votes at once (`wait_for_all_status`).
    waiting_for_all: bool,
    /// Never yet in a ring with another node (NODE_FLAGS_FIRST).
    first: bool,
    /// With last_man_standing: not quorate since start ([`wire::FLAG_FRESH`]).
    fresh: bool,
    /// The configured expected votes: with all of them present fresh nodes' votes count.
    configured_expected: u32,
    /// The members when last quorate by votes (the cluster "before the split" of
    /// votequorum(5)); the tie breaker looks for its lowest, highest or first listed node.
    last_quorate: Vec<NodeId>,
    ring_id: Option<RingId>,
    members: Vec<NodeId>,
    /// Members whose node info was delivered in this ring; `None` once all were.
    syncing: Option<BTreeSet<NodeId>>,
    last_man_standing_deadline: Option<Instant>,
    /// The window passed while node infos were still coming: lower once they are all in.
    last_man_standing_due: bool,
    /// The partition last_man_standing last lowered the expected votes to, and the ring that
    /// did; quorum then also needs a majority of its votes (see the crate doc).
    lms_partition: Option<(RingId, BTreeSet<NodeId>)>,
    submissions: VecDeque<Body>,
    events: VecDeque<QuorumEvent>,
    stats: Stats,
}

impl Votequorum {
    /// The service of `node_id` at start: alone, with its configured votes and expected votes.
    pub fn new(node_id: NodeId, config: &QuorumConfig) -> Result<Self, ConfigError> {
        let r = config.resolve(node_id)?;
        let fresh = r.last_man_standing;
        let flags = if fresh { wire::FLAG_FRESH } else { 0 };
        let us = Node { votes: r.votes, expected_votes: r.expected_votes, flags, member: true };
        let mut vq = Votequorum {
            node_id,
            two_node: r.two_node,
            wait_for_all: r.wait_for_all,
            last_man_standing: r.last_man_standing,
            last_man_standing_window: r.last_man_standing_window,
            tie_breaker: r.tie_breaker,
            nodes: BTreeMap::from([(node_id, us)]),
            quorum: 0,
            quorate: false,
            waiting_for_all: r.wait_for_all,
            first: true,
            fresh,
            configured_expected: r.expected_votes,
            last_quorate: Vec::new(),
            ring_id: None,
            members: Vec::new(),
            syncing: None,
            last_man_standing_deadline: None,
            last_man_standing_due: false,
            lms_partition: None,
            submissions: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        };
        vq.recalculate(false, false);
        Ok(vq)
    }

    /// A new regular configuration (corosync's `votequorum_sync_init`): members that left are
    /// no longer counted, the last_man_standing window starts when nodes left a quorate-sized
    /// partition, and this node queues its [`NodeInfo`].
    pub fn handle_ring(&mut self, now: Instant, ring_id: RingId, members: &[NodeId]) {
        let mut members = members.to_vec();
        members.sort_unstable();
        members.dedup();
        assert!(members.contains(&self.node_id), "a ring always holds its own node");
        assert!(self.ring_id.is_none_or(|old| ring_id > old), "ring ids only increase");
        if members.len() > 1 {
            self.first = false;
        }
        let mut left = false;
        for gone in self.members.iter().filter(|id| members.binary_search(id).is_err()) {
            left = true;
            if let Some(node) = self.nodes.get_mut(gone) {
                node.member = false;
            }
        }
        // votequorum(5), last_man_standing: the window (re)starts on every loss while the
        // survivors may still be quorate, or at a tie the tie breaker would win.
        let count = u32::try_from(members.len()).unwrap_or(u32::MAX);
        let tie_won = self.tie_breaker.is_some() && self.has_member(self.last_quorate.first().copied());
        if self.last_man_standing && ((count >= self.quorum && left) || (count <= self.quorum && tie_won)) {
            self.last_man_standing_deadline = Some(now + self.last_man_standing_window);
        }
        self.members = members;
        if !self.quorate {
            // Inquorate in the ring being left: the quorate membership we remember may have
            // split since, without us. Only a half of the last quorate membership may use the
            // tie breaker (corosync keeps it, and a node that was cut off earlier can then
            // win a later split with stale knowledge).
            self.last_quorate.clear();
        }
        self.ring_id = Some(ring_id);
        self.syncing = Some(BTreeSet::new());
        self.last_man_standing_due = false;
        // Count without the nodes that left at once, not at the first node info as corosync
        // does: until then a cut-off node would still say it is quorate.
        self.recalculate(false, false);
        self.send_node_info();
    }

    /// Queues our [`NodeInfo`] in place of any not yet multicast.
    fn send_node_info(&mut self) {
        self.submissions.retain(|b| !matches!(b, Body::NodeInfo(_)));
        let us = self.us();
        self.submissions.push_back(Body::NodeInfo(NodeInfo {
            node_id: self.node_id.0,
            votes: us.votes,
            expected_votes: us.expected_votes,
            flags: us.flags,
            lms: self.lms_partition.as_ref().map(|(ring, members)| LmsPartition {
                ring_seq: ring.seq,
                ring_representative: ring.representative.0,
                members: members.iter().map(|id| id.0).collect(),
            }),
        }));
    }

    /// [`handle_ring`](Self::handle_ring) for a regular configuration of Totem.
    pub fn handle_configuration(&mut self, now: Instant, config: &totem::Configuration) {
        self.handle_ring(now, config.ring_id, &config.members);
    }

    /// A quorum message delivered in total order from `from`; bad ones are dropped and counted.
    pub fn handle_message(&mut self, from: NodeId, bytes: &[u8]) {
        match QuorumMessage::from_bytes(bytes) {
            Ok(Body::NodeInfo(info)) => self.handle_node_info(from, info),
            Ok(Body::Reconfigure(r)) => self.handle_reconfigure(r),
            Err(e) => {
                tracing::debug!(%from, error = %e, "quorum message dropped");
                self.stats.malformed += 1;
            }
        }
    }

    /// A node's info delivered in total order (corosync's `message_handler_req_exec_votequorum_nodeinfo`).
    pub fn handle_node_info(&mut self, from: NodeId, info: NodeInfo) {
        let fresh = self.fresh;
        self.handle_node_info_inner(from, info);
        if fresh && !self.fresh {
            // Our votes count from now on: tell the members.
            self.send_node_info();
        }
    }

    fn handle_node_info_inner(&mut self, from: NodeId, info: NodeInfo) {
        let outsider = self.ring_id.is_some() && self.members.binary_search(&from).is_err();
        if info.node_id != from.0 || from.0 == 0 || outsider {
            tracing::debug!(%from, about = info.node_id, outsider, "node info dropped");
            self.stats.wrong_sender += 1;
            return;
        }
        if info.lms.as_ref().is_some_and(|p| p.members.len() > wire::LMS_MEMBERS_MAX) {
            tracing::debug!(%from, "node info with too long a last_man_standing partition dropped");
            self.stats.malformed += 1;
            return;
        }
        let adopted = self.adopt_lms_partition(info.lms.as_ref());
        let old = self.nodes.get(&from).copied();
        let mut allow_decrease = false;
        let sender_quorate = info.flags & wire::FLAG_QUORATE != 0;
        // A node joining a quorate partition takes its expected votes.
        if !self.quorate && sender_quorate {
            allow_decrease = true;
            self.us_mut().expected_votes = info.expected_votes;
        }
        let expected_votes = if sender_quorate { info.expected_votes } else { self.us().expected_votes };
        let node = Node { votes: info.votes, expected_votes, flags: info.flags, member: true };
        self.nodes.insert(from, node);
        if self.last_man_standing && info.votes > 1 {
            // votequorum(5): last_man_standing needs every node to vote 1.
            tracing::warn!(
                node = info.node_id,
                votes = info.votes,
                "last_man_standing disabled: a node votes more than 1"
            );
            self.last_man_standing = false;
            self.last_man_standing_deadline = None;
        }
        let regrown = self.regrow_lms_partition();
        if old.is_none_or(|o| o != node)
            || from == self.node_id
            || info.flags & wire::FLAG_FIRST != 0
            || adopted
            || regrown
        {
            self.recalculate(allow_decrease, false);
        }
        if self.wait_for_all && info.flags & wire::FLAG_WAIT_FOR_ALL == 0 && sender_quorate {
            self.set_waiting_for_all(false);
        }
        if let Some(seen) = &mut self.syncing {
            seen.insert(from);
            if self.members.iter().all(|m| seen.contains(m)) {
                self.activate();
            }
        }
    }

    /// A run-time change delivered in total order.
    pub fn handle_reconfigure(&mut self, r: Reconfigure) {
        match r.param {
            wire::RECONFIGURE_EXPECTED_VOTES if r.value > 0 => {
                self.set_members_expected(r.value);
                self.recalculate(true, false);
            }
            wire::RECONFIGURE_NODE_VOTES if self.nodes.contains_key(&NodeId(r.node_id)) => {
                if let Some(n) = self.nodes.get_mut(&NodeId(r.node_id)) {
                    n.votes = r.value;
                }
                self.recalculate(true, false);
            }
            wire::RECONFIGURE_CANCEL_WAIT_FOR_ALL => {
                self.set_waiting_for_all(false);
                self.recalculate(false, false);
            }
            _ => {
                tracing::debug!(param = r.param, node = r.node_id, "reconfigure dropped");
                self.stats.bad_reconfigure += 1;
            }
        }
    }

    /// The last_man_standing window may have ended: a quorate partition sets expected votes to
    /// its member count. Spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.last_man_standing_deadline.is_some_and(|d| d <= now) {
            self.last_man_standing_deadline = None;
            if self.syncing.is_some() {
                // Lower on the node infos all members have, so that they agree on the partition.
                self.last_man_standing_due = true;
            } else {
                self.lower_expected_to_members();
            }
        }
    }

    fn lower_expected_to_members(&mut self) {
        if self.quorate {
            tracing::info!("last_man_standing window passed: expected votes set to the members");
            self.recalculate(true, true);
            // Not in corosync: the members not quorate here (auto_tie_breaker can leave a
            // member of a quorate ring inquorate) or whose window has not passed yet learn the
            // partition, so none of them goes on without it.
            self.send_node_info();
        }
    }

    /// `corosync-quorumtool -e`: asks every node to take `expected` as expected votes.
    pub fn set_expected(&mut self, expected: u32) -> Result<(), RequestError> {
        let (quorum, total_votes, _) = self.calculate_quorum(true, expected, None);
        if expected == 0 || expected < total_votes || (self.quorate && quorum > total_votes) {
            return Err(RequestError::InvalidExpected { expected, total_votes, quorum });
        }
        self.queue_reconfigure(wire::RECONFIGURE_EXPECTED_VOTES, self.node_id, expected)
    }

    /// `corosync-quorumtool -v`: asks every node to count `votes` for `node`.
    pub fn set_votes(&mut self, node: NodeId, votes: u32) -> Result<(), RequestError> {
        if !self.nodes.contains_key(&node) {
            return Err(RequestError::UnknownNode(node));
        }
        let (quorum, total_votes, _) = self.calculate_quorum(true, 0, Some((node, votes)));
        if quorum < total_votes / 2 || quorum > total_votes {
            return Err(RequestError::InvalidVotes { node, votes, total_votes, quorum });
        }
        self.queue_reconfigure(wire::RECONFIGURE_NODE_VOTES, node, votes)
    }

    /// corosync's cmap key `quorum.cancel_wait_for_all`: asks every node of the ring to stop
    /// waiting for all nodes. The operator vouches that the missing ones are down.
    pub fn cancel_wait_for_all(&mut self) -> Result<(), RequestError> {
        self.queue_reconfigure(wire::RECONFIGURE_CANCEL_WAIT_FOR_ALL, self.node_id, 0)
    }

    /// The next message to multicast in agreed order.
    pub fn poll_submission(&mut self) -> Option<Vec<u8>> {
        self.submissions.pop_front().map(|b| QuorumMessage::new(b).to_bytes())
    }

    /// The next quorum change, oldest first.
    pub fn poll_event(&mut self) -> Option<QuorumEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.last_man_standing_deadline
    }

    /// Whether this partition is quorate.
    pub fn is_quorate(&self) -> bool {
        self.quorate
    }

    /// Whether wait_for_all still holds quorum off.
    pub fn is_waiting_for_all(&self) -> bool {
        self.wait_for_all && self.waiting_for_all
    }

    /// Counters of dropped messages and events.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// This node's view, as `votequorum_getinfo` gives it.
    pub fn status(&self) -> Status {
        let live = self.nodes.values().filter(|n| n.member);
        let highest_expected = live.clone().map(|n| n.expected_votes).max().unwrap_or(0);
        let total_votes = live.fold(0u32, |sum, n| sum.saturating_add(n.votes));
        let ring_members = if self.ring_id.is_some() { self.members.clone() } else { vec![self.node_id] };
        let members = ring_members
            .into_iter()
            .map(|id| {
                let n = self.nodes.get(&id).filter(|n| n.member);
                MemberStatus {
                    node_id: id,
                    votes: n.map_or(0, |n| n.votes),
                    expected_votes: n.map_or(0, |n| n.expected_votes),
                }
            })
            .collect();
        Status {
            node_id: self.node_id,
            ring_id: self.ring_id,
            quorate: self.quorate,
            expected_votes: self.us().expected_votes,
            highest_expected,
            total_votes,
            quorum: self.quorum,
            flags: StatusFlags {
                two_node: self.two_node,
                quorate: self.quorate,
                wait_for_all: self.wait_for_all,
                last_man_standing: self.last_man_standing,
                auto_tie_breaker: self.tie_breaker.is_some(),
            },
            members,
        }
    }

    fn us(&self) -> &Node {
        &self.nodes[&self.node_id]
    }

    fn us_mut(&mut self) -> &mut Node {
        self.nodes.get_mut(&self.node_id).expect("this node is always known")
    }

    fn has_member(&self, id: Option<NodeId>) -> bool {
        id.and_then(|id| self.nodes.get(&id)).is_some_and(|n| n.member)
    }

    fn queue_reconfigure(&mut self, param: u32, node: NodeId, value: u32) -> Result<(), RequestError> {
        let queued = self.submissions.iter().filter(|b| matches!(b, Body::Reconfigure(_))).count();
        if queued >= RECONFIGURE_QUEUE_MAX {
            return Err(RequestError::Busy);
        }
        self.submissions.push_back(Body::Reconfigure(Reconfigure { param, node_id: node.0, value }));
        Ok(())
    }

    fn set_members_expected(&mut self, expected: u32) {
        for n in self.nodes.values_mut().filter(|n| n.member) {
            n.expected_votes = expected;
        }
    }

    /// All members' infos were delivered (corosync's `votequorum_sync_activate`).
    fn activate(&mut self) {
        self.recalculate(false, false);
        self.syncing = None;
        if std::mem::take(&mut self.last_man_standing_due) {
            self.lower_expected_to_members();
        }
        self.emit();
    }

    /// Takes a member's last_man_standing partition if it is newer than ours: it was lowered
    /// by a quorate partition after ours was, so ours may no longer hold quorum.
    fn adopt_lms_partition(&mut self, theirs: Option<&LmsPartition>) -> bool {
        let Some(p) = theirs else { return false };
        let ring = RingId { seq: p.ring_seq, representative: NodeId(p.ring_representative) };
        let members: BTreeSet<NodeId> =
            p.members.iter().filter(|&&id| id != 0).map(|&id| NodeId(id)).collect();
        if members.is_empty() {
            return false;
        }
        let newer = self.lms_partition.as_ref().is_none_or(|(r, m)| (ring, &members) > (*r, m));
        if newer {
            tracing::debug!(%ring, ?members, "newer last_man_standing partition");
            self.lms_partition = Some((ring, members));
        }
        newer
    }

    /// All of the last_man_standing partition is here with others: the members are the new
    /// whole. Every member is here to agree, and on a node info, in agreed order.
    fn regrow_lms_partition(&mut self) -> bool {
        let (Some((_, set)), Some(ring)) = (&self.lms_partition, self.ring_id) else { return false };
        if !set.iter().all(|id| self.has_member(Some(*id))) {
            return false;
        }
        let present: BTreeSet<NodeId> = self.present().collect();
        if &present == set {
            return false;
        }
        self.lms_partition = Some((ring, present));
        true
    }

    /// Whether fresh nodes count ([`wire::FLAG_FRESH`]): every configured vote is present.
    fn fresh_count(&self) -> bool {
        let all = self.nodes.values().filter(|n| n.member).fold(0u32, |sum, n| sum.saturating_add(n.votes));
        all >= self.configured_expected
    }

    /// Members whose info was delivered in this ring, us included.
    fn present(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.iter().filter(|(_, n)| n.member).map(|(id, _)| *id)
    }

    /// With a last_man_standing partition, a majority of its votes must be here (exactly half
    /// with `tie`, when the tie breaker won). Votes of members never heard of count 1: it
    /// needs 1 vote per node.
    fn lms_majority(&self, tie: bool) -> bool {
        let Some((_, set)) = &self.lms_partition else { return true };
        let votes = |id: &NodeId| self.nodes.get(id).map_or(1, |n| n.votes);
        let all: u32 = set.iter().map(votes).sum();
        // A fresh member may have been in a later partition than this one and forgotten it:
        // it is no member of ours unless every configured vote is here.
        let fresh_counts = self.fresh_count();
        let counts = |id: &&NodeId| {
            self.nodes.get(*id).is_some_and(|n| n.member && (fresh_counts || n.flags & wire::FLAG_FRESH == 0))
        };
        let here: u32 = set.iter().filter(counts).map(votes).sum();
        here * 2 > all || (tie && here * 2 == all)
    }

    /// The quorum for the members' votes and expected votes (OpenVMS rule, as corosync's
    /// `calculate_quorum`): a majority of the highest expected votes and of the votes present;
    /// never lower than now unless `allow_decrease`; 1 in two_node mode with at most two nodes.
    /// `max_expected` overrides the expected votes. Returns (quorum, total votes, nodes).
    fn calculate_quorum(
        &self,
        allow_decrease: bool,
        max_expected: u32,
        with: Option<(NodeId, u32)>,
    ) -> (u32, u32, u32) {
        let (mut highest, mut total, mut fresh, mut count) = (0, 0u32, 0u32, 0u32);
        for (id, n) in self.nodes.iter().filter(|(_, n)| n.member) {
            let votes = with.filter(|(w, _)| w == id).map_or(n.votes, |(_, v)| v);
            highest = highest.max(n.expected_votes);
            if n.flags & wire::FLAG_FRESH != 0 {
                fresh = fresh.saturating_add(votes);
            } else {
                total = total.saturating_add(votes);
            }
            count += 1;
        }
        if total.saturating_add(fresh) >= self.configured_expected {
            // Every configured vote is here: no other partition can exist.
            total = total.saturating_add(fresh);
        }
        if max_expected > 0 {
            highest = max_expected;
        }
        let mut quorum = (highest / 2 + 1).max(total / 2 + 1);
        if !allow_decrease {
            quorum = quorum.max(self.quorum);
        }
        if self.two_node && count <= 2 {
            quorum = 1;
        }
        (quorum, total, count)
    }

    /// corosync's `recalculate_quorum`: expected votes never stay below the votes present;
    /// with `by_current_nodes` (last_man_standing) they become the member count.
    fn recalculate(&mut self, allow_decrease: bool, by_current_nodes: bool) {
        let (_, total, count) = self.calculate_quorum(allow_decrease, 0, None);
        if total > self.us().expected_votes {
            self.us_mut().expected_votes = total;
        }
        let max_expected = if by_current_nodes { count } else { 0 };
        let (quorum, total, _) = self.calculate_quorum(allow_decrease, max_expected, None);
        self.quorum = quorum;
        if max_expected > 0 {
            self.set_members_expected(max_expected);
            if let Some(ring) = self.ring_id {
                self.lms_partition = Some((ring, self.present().collect()));
            }
        }
        self.are_we_quorate(total);
    }

    /// corosync's `are_we_quorate`.
    fn are_we_quorate(&mut self, total_votes: u32) {
        if self.wait_for_all && self.waiting_for_all {
            // votequorum(5), wait_for_all: quorate only once all expected votes were seen at once.
            if total_votes != self.us().expected_votes {
                assert!(!self.quorate, "quorate while waiting for all");
                return;
            }
            self.set_waiting_for_all(false);
        }
        let mut quorate = self.quorum <= total_votes && self.lms_majority(false);
        if quorate {
            self.last_quorate = self.present().collect();
        }
        if let Some(tb) = &self.tie_breaker {
            // Exactly half of the expected votes (rounded down, as corosync), and the votes
            // missing here must be short of quorum: corosync checks that on the count of nodes
            // that left since the previous ring, which lets a half with fewer but heavier
            // nodes, or a ring re-formed with the same members, win as well.
            let expected = self.us().expected_votes;
            if total_votes == expected / 2
                && expected - total_votes < self.quorum
                && self.tie_won(tb)
                && self.lms_majority(true)
            {
                quorate = true;
            }
        }
        let changed = quorate != self.quorate;
        self.quorate = quorate;
        if quorate {
            self.fresh = false;
        }
        if self.wait_for_all {
            self.set_waiting_for_all(!quorate);
        }
        self.sync_our_flags();
        if changed && self.syncing.is_none() {
            self.emit();
        }
    }

    /// corosync's `check_auto_tie_breaker`: whether the tie breaker node of the last quorate
    /// membership is here. For a list that is its first node that was in that membership
    /// (votequorum(5): "if that node is not in either half (ie was not in the cluster before
    /// the split) then the second node ID will be checked"). corosync looks for the listed
    /// nodes in the previous ring instead, so a ring re-formed with the same members would let
    /// both halves win.
    fn tie_won(&self, tb: &TieBreaker) -> bool {
        let breaker = match tb {
            TieBreaker::Lowest => self.last_quorate.first(),
            TieBreaker::Highest => self.last_quorate.last(),
            TieBreaker::List(list) => list.iter().find(|id| self.last_quorate.contains(id)),
        };
        self.has_member(breaker.copied())
    }

    fn set_waiting_for_all(&mut self, waiting: bool) {
        self.waiting_for_all = waiting;
        self.sync_our_flags();
    }

    fn sync_our_flags(&mut self) {
        let mut flags = 0;
        if self.quorate {
            flags |= wire::FLAG_QUORATE;
        }
        if self.waiting_for_all {
            flags |= wire::FLAG_WAIT_FOR_ALL;
        }
        if self.first {
            flags |= wire::FLAG_FIRST;
        }
        if self.fresh {
            flags |= wire::FLAG_FRESH;
        }
        self.us_mut().flags = flags;
    }

    fn emit(&mut self) {
        let Some(ring_id) = self.ring_id else { return };
        tracing::info!(quorate = self.quorate, %ring_id, members = ?self.members, quorum = self.quorum, "quorum");
        if self.events.len() >= EVENTS_MAX {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(QuorumEvent { quorate: self.quorate, ring_id, members: self.members.clone() });
    }
}
