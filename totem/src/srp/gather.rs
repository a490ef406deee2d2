//! Gather state: join messages, proc and fail sets, consensus (Totem paper, section 4.1).

use std::collections::BTreeSet;

use super::timer::Timer;
use super::{GatherSets, Srp, SrpState, TokenState};
use crate::event::Destination;
use crate::ids::NodeId;
use crate::time::Instant;
use crate::wire::{Join, Packet};

impl Srp {
    /// Leaves the current state for gather. From operational, the proc set starts as the ring's
    /// members; from commit or recovery, the proc set carries on. The fail set starts empty.
    pub(super) fn enter_gather(&mut self, now: Instant, extra: &[NodeId], failed: &[NodeId]) {
        let from = self.state;
        let me = self.node_id;
        match from {
            SrpState::Operational => {
                self.gather = GatherSets::default();
                self.gather.proc_set.extend(self.members.iter().copied());
            }
            SrpState::Commit | SrpState::Recovery => {
                if let Some(p) = self.pending.take() {
                    self.abandoned_ring_seq = self.abandoned_ring_seq.max(p.ring_id.seq);
                    self.gather.proc_set.extend(p.members.iter().copied());
                }
                // A new round: the fail set that formed the abandoned ring is history. Carried
                // over, it would exclude a node that is back while its joins are ignored as
                // stale, round after round; a node still gone is failed again by consensus.
                self.gather.fail_set.clear();
            }
            SrpState::Gather => {}
        }
        self.gather.proc_set.insert(me);
        self.gather.proc_set.extend(extra.iter().copied());
        self.gather.fail_set.extend(failed.iter().copied().filter(|&n| n != me));
        self.gather.consensus = BTreeSet::from([me]);
        self.gather.heard.clear();
        self.state = SrpState::Gather;
        self.tok = TokenState::default();
        self.token_seen_downstream();
        for timer in [Timer::TokenLoss, Timer::Hold, Timer::Merge] {
            self.timers.stop(timer);
        }
        self.timers.set(Timer::Consensus, now + self.config.consensus);
        if self.config.send_join.is_zero() {
            self.send_join(now);
        } else {
            // send_join: a random delay spreads the joins of many nodes entering gather at once.
            let delay = self.rng.below(u64::try_from(self.config.send_join.as_nanos()).unwrap_or(u64::MAX));
            self.timers.set(Timer::Join, now + std::time::Duration::from_nanos(delay));
        }
    }

    pub(super) fn send_join(&mut self, now: Instant) {
        let join = Join {
            sender: self.node_id.0,
            proc_set: self.gather.proc_set.iter().map(|n| n.0).collect(),
            fail_set: self.gather.fail_set.iter().map(|n| n.0).collect(),
            ring_seq: self.known_ring_seq,
        };
        self.send(Destination::All, &Packet::Join(join));
        self.timers.set(Timer::Join, now + self.config.join);
    }

    pub(super) fn on_join_timer(&mut self, now: Instant) {
        if self.state == SrpState::Gather {
            self.send_join(now);
            self.check_consensus(now);
        }
    }

    pub(super) fn on_join(&mut self, now: Instant, join: Join) {
        let sender = NodeId(join.sender);
        if sender == self.node_id {
            return self.stale();
        }
        self.known_ring_seq = self.known_ring_seq.max(join.ring_seq);
        // A member of our ring knew its seq; a join of its with a lower one predates the ring.
        if self.members.contains(&sender) && join.ring_seq < self.ring.seq {
            return self.stale();
        }
        match self.state {
            SrpState::Operational => {
                // A node that has given up on us cannot join us now; its join would only
                // break our ring (corosync: ignore_join_under_operational).
                if join.fail_set.contains(&self.node_id.0) {
                    return self.stale();
                }
                self.enter_gather(now, &[sender], &[]);
            }
            SrpState::Commit | SrpState::Recovery => {
                // Only a member of the ring being formed that knows of it can call it off; other
                // joins wait until the ring is installed (corosync: commit and recovery states).
                let pending = self.pending.as_ref().expect("commit and recovery have a pending ring");
                if !pending.members.contains(&sender) || join.ring_seq < pending.ring_id.seq {
                    return self.stale();
                }
                self.enter_gather(now, &[sender], &[]);
            }
            SrpState::Gather => {}
        }
        self.process_join(now, sender, &join);
    }

    fn process_join(&mut self, now: Instant, sender: NodeId, join: &Join) {
        let me = self.node_id;
        if self.gather.fail_set.contains(&sender) {
            if !join.fail_set.is_empty() {
                return;
            }
            // A node we failed is back with a fresh round of its own (nobody failed yet): start
            // ours over too, or rounds that began at different moments keep failing each other
            // (merging rings would then never meet in one round).
            tracing::debug!(node = %self.node_id, %sender, "failed node started a fresh round: so do we");
            self.gather.fail_set.clear();
        }
        self.gather.heard.insert(sender);
        let proc_set: BTreeSet<NodeId> = join.proc_set.iter().map(|&n| NodeId(n)).collect();
        let fail_set: BTreeSet<NodeId> = join.fail_set.iter().map(|&n| NodeId(n)).collect();
        if proc_set == self.gather.proc_set && fail_set == self.gather.fail_set {
            self.gather.consensus.insert(sender);
            return self.check_consensus(now);
        }
        if proc_set.is_subset(&self.gather.proc_set) && fail_set.is_subset(&self.gather.fail_set) {
            // The sender will catch up with our join.
            return;
        }
        let before = (self.gather.proc_set.len(), self.gather.fail_set.len());
        let from_our_ring = self.members.contains(&sender);
        if fail_set.contains(&me) {
            if !from_our_ring {
                // A node outside our ring that gave up on us says so from an older round: our
                // own consensus timeout decides about it. Taking its word would let two
                // merging rings fail each other round after round, forever.
                return;
            }
            // A ring-mate gave up on us; we give up on it, or neither side would ever agree.
            self.gather.fail_set.insert(sender);
        } else {
            self.gather.proc_set.extend(proc_set);
            self.gather.proc_set.insert(sender);
            // A node from another ring may not fail members of ours (corosync's fail_minus_memb),
            // nor a node whose join we received in this round: such a claim is second hand and
            // from an older round of its own; adopted, it would let one confused node split our
            // ring, or merging rings pass stale failures to each other.
            let (members, heard) = (&self.members, &self.gather.heard);
            let claims: Vec<NodeId> = fail_set
                .into_iter()
                .filter(|n| from_our_ring || (!members.contains(n) && !heard.contains(n)))
                .collect();
            self.gather.fail_set.extend(claims);
        }
        // Sets only grow, so a changed size is a change. Answering a join that changed nothing
        // would let two nodes that keep different views ping-pong joins forever.
        if (self.gather.proc_set.len(), self.gather.fail_set.len()) != before {
            self.restart_consensus(now);
        }
    }

    /// The sets changed: consensus starts over, with a full `consensus` timeout (corosync
    /// restarts it on a merge during join too), else two nodes that fail the same third one
    /// at nearly the same moment would fail each other.
    fn restart_consensus(&mut self, now: Instant) {
        self.gather.consensus = BTreeSet::from([self.node_id]);
        self.timers.set(Timer::Consensus, now + self.config.consensus);
        self.send_join(now);
    }

    /// A member left cleanly: fail it now instead of waiting for the token to be lost.
    pub(super) fn on_leave(&mut self, now: Instant, notice: crate::wire::RingNotice) {
        let sender = NodeId(notice.sender);
        let ring = notice.ring_id.map(crate::ids::RingId::from);
        let pending = self.pending.as_ref().map(|p| (p.ring_id, p.members.contains(&sender)));
        // A member of the ring we are in or are leaving said goodbye: it left cleanly, even
        // when it is already failed (its port answered unreachable first, or another member's
        // join failed it) and whatever membership round runs now.
        let of_our_ring = ring == Some(self.ring) && self.members.contains(&sender);
        match self.state {
            SrpState::Operational if of_our_ring => {
                tracing::info!(node = %self.node_id, %sender, "member left the ring cleanly");
                self.clean_leavers.insert(sender);
                self.enter_gather(now, &[], &[sender]);
            }
            SrpState::Commit | SrpState::Recovery if pending.is_some_and(|(r, m)| m && Some(r) == ring) => {
                tracing::info!(node = %self.node_id, %sender, "member left the ring cleanly");
                self.clean_leavers.insert(sender);
                self.enter_gather(now, &[], &[sender]);
            }
            SrpState::Gather
                if (ring == Some(self.ring) || ring.is_some_and(|r| r.seq <= self.abandoned_ring_seq))
                    && self.gather.proc_set.contains(&sender) =>
            {
                tracing::info!(node = %self.node_id, %sender, "member left the ring cleanly");
                self.clean_leavers.insert(sender);
                if self.gather.fail_set.insert(sender) {
                    self.restart_consensus(now);
                }
            }
            SrpState::Commit | SrpState::Recovery if of_our_ring => {
                // Already being left behind by the ring being formed.
                tracing::info!(node = %self.node_id, %sender, "member left the ring cleanly");
                self.clean_leavers.insert(sender);
            }
            _ => self.stale(),
        }
    }

    /// The network says `node` cannot receive: fail it now, as a clean leave is, but without
    /// calling it clean (it may still hold resources, and must be fenced).
    pub(super) fn on_unreachable(&mut self, now: Instant, node: NodeId) {
        if node == self.node_id {
            return;
        }
        let pending = self.pending.as_ref().is_some_and(|p| p.members.contains(&node));
        match self.state {
            SrpState::Operational if self.members.contains(&node) => {
                tracing::info!(node = %self.node_id, peer = %node, "member unreachable: gather without it");
                self.enter_gather(now, &[], &[node]);
                self.check_consensus(now);
            }
            SrpState::Commit | SrpState::Recovery if pending => {
                self.enter_gather(now, &[], &[node]);
                self.check_consensus(now);
            }
            SrpState::Gather if self.gather.proc_set.contains(&node) && self.gather.fail_set.insert(node) => {
                self.restart_consensus(now);
                self.check_consensus(now);
            }
            _ => {}
        }
    }

    /// A node heard outside any join (merge detect, foreign packet) joins the proc set.
    pub(super) fn gather_add(&mut self, now: Instant, node: NodeId) {
        if self.gather.proc_set.contains(&node) || self.gather.fail_set.contains(&node) {
            return;
        }
        self.gather.proc_set.insert(node);
        self.restart_consensus(now);
    }

    /// Members of the next ring as this node sees them: proc set minus fail set.
    fn candidates(&self) -> Vec<NodeId> {
        self.gather.proc_set.difference(&self.gather.fail_set).copied().collect()
    }

    fn check_consensus(&mut self, now: Instant) {
        let candidates = self.candidates();
        let agreed = candidates.iter().all(|n| self.gather.consensus.contains(n));
        // The lowest node id is the representative and creates the commit token.
        if agreed && candidates.first() == Some(&self.node_id) {
            self.create_commit_token(now, candidates);
        }
    }

    pub(super) fn on_consensus_timeout(&mut self, now: Instant) {
        if self.state != SrpState::Gather {
            return;
        }
        let candidates = self.candidates();
        let silent: Vec<NodeId> =
            candidates.iter().copied().filter(|n| !self.gather.consensus.contains(n)).collect();
        if silent.is_empty() {
            // Consensus without a commit token: start over. A representative that is gone stays
            // silent this time and is failed at the next timeout (corosync does the same).
            if candidates.first() == Some(&self.node_id) {
                return self.check_consensus(now);
            }
        } else {
            tracing::debug!(node = %self.node_id, ?silent, "consensus timeout: failing silent nodes");
            self.gather.fail_set.extend(silent);
        }
        self.restart_consensus(now);
        self.check_consensus(now);
    }
}
