//! Commit state: the commit token circulates twice to install a new ring (Totem paper, 4.2).
//!
//! Rotation 1 collects every member's old-ring state; when it returns the representative
//! enters recovery and sends it round again; each member enters recovery on the second visit;
//! when it returns a second time the representative creates the new ring's first token.

use std::collections::BTreeSet;

use super::recovery::PendingRing;
use super::timer::Timer;
use super::{Srp, SrpState, TokenState};
use crate::ids::{NodeId, RingId};
use crate::time::Instant;
use crate::wire::{CommitEntry, CommitToken, Packet, Token, WireRingId};

impl Srp {
    pub(super) fn create_commit_token(&mut self, now: Instant, members: Vec<NodeId>) {
        let seq = self.known_ring_seq.max(self.persisted_ring_seq).max(self.ring.seq) + 4;
        let ring_id = RingId { seq, representative: self.node_id };
        tracing::debug!(node = %self.node_id, %ring_id, ?members, "creating commit token");
        let token = CommitToken {
            ring_id: Some(ring_id.into()),
            members: members.iter().map(|n| n.0).collect(),
            entries: vec![CommitEntry::default(); members.len()],
            rotation: 1,
            index: 0,
        };
        self.enter_commit(now, token);
    }

    /// Fills our entry, enters commit state and passes the token on.
    fn enter_commit(&mut self, now: Instant, mut token: CommitToken) {
        let ring_id: RingId = token.ring_id.expect("validated").into();
        let members: Vec<NodeId> = token.members.iter().map(|&n| NodeId(n)).collect();
        let index = token.index as usize;
        token.entries[index] = CommitEntry {
            filled: true,
            old_ring_id: Some(self.ring.into()),
            aru: self.buffer.my_aru,
            high_seq: self.buffer.high_seq,
            high_delivered: self.buffer.delivered,
        };
        self.persist(ring_id.seq);
        self.pending = Some(Box::new(PendingRing::new(ring_id, members)));
        self.state = SrpState::Commit;
        self.tok = TokenState::default();
        for timer in [Timer::Join, Timer::Consensus] {
            self.timers.stop(timer);
        }
        self.timers.set(Timer::TokenLoss, now + self.config.token);
        self.forward_commit_token(now, token);
    }

    fn forward_commit_token(&mut self, now: Instant, mut token: CommitToken) {
        let next_index = (token.index as usize + 1) % token.members.len();
        token.index = u32::try_from(next_index).expect("member count fits u32");
        let next = NodeId(token.members[next_index]);
        if next == self.node_id {
            return self.on_commit_token(now, token);
        }
        self.send_token_packet(now, next, &Packet::CommitToken(token));
    }

    pub(super) fn on_commit_token(&mut self, now: Instant, mut token: CommitToken) {
        let ring_id: RingId = token.ring_id.expect("validated").into();
        let index = token.index as usize;
        if token.members.get(index) != Some(&self.node_id.0)
            || ring_id.seq <= self.ring.seq
            || ring_id.seq <= self.abandoned_ring_seq
        {
            return self.stale();
        }
        let pending_ring = self.pending.as_ref().map(|p| p.ring_id);
        match self.state {
            SrpState::Gather if token.rotation == 1 => {
                let members: BTreeSet<NodeId> = token.members.iter().map(|&n| NodeId(n)).collect();
                let ours: BTreeSet<NodeId> =
                    self.gather.proc_set.difference(&self.gather.fail_set).copied().collect();
                if members != ours || token.entries[index].filled {
                    // Not our view: answer with a join that carries the new ring's seq, so the
                    // representative (waiting in commit) calls its attempt off at once instead
                    // of after a token timeout.
                    self.known_ring_seq = self.known_ring_seq.max(ring_id.seq);
                    self.send_join(now);
                    return self.stale();
                }
                self.token_seen_downstream();
                self.enter_commit(now, token);
            }
            SrpState::Commit if pending_ring == Some(ring_id) => {
                let representative = index == 0;
                let complete = token.entries.iter().all(|e| e.filled);
                if representative && token.rotation == 1 && complete {
                    self.token_seen_downstream();
                    token.rotation = 2;
                    self.enter_recovery(now, &token);
                    self.forward_commit_token(now, token);
                } else if !representative && token.rotation == 2 && complete {
                    self.token_seen_downstream();
                    self.enter_recovery(now, &token);
                    self.forward_commit_token(now, token);
                } else {
                    self.stale();
                }
            }
            SrpState::Recovery if pending_ring == Some(ring_id) && index == 0 && token.rotation == 2 => {
                let pending = self.pending.as_mut().expect("recovery has a pending ring");
                if pending.token_created {
                    return self.stale();
                }
                pending.token_created = true;
                self.token_seen_downstream();
                let first =
                    Token { ring_id: Some(WireRingId::from(ring_id)), token_seq: 1, ..Token::default() };
                self.accept_token(now, first);
            }
            _ => self.stale(),
        }
    }
}
