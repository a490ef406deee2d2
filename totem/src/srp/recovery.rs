//! Recovery state: old-ring packets are re-sent inside the new ring so that members moving
//! together hold the same set, then the transitional and regular configurations are
//! delivered (Totem paper, section 4.3; extended virtual synchrony).

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;

use super::buffer::{RingBuffer, Stored};
use super::timer::Timer;
use super::{Srp, SrpState, TokenState};
use crate::event::{Configuration, Event};
use crate::ids::{NodeId, RingId};
use crate::time::Instant;
use crate::wire::{CommitToken, Mcast, Packet, Token, WireRingId};

/// The ring being formed (commit and recovery states).
#[derive(Debug)]
pub(super) struct PendingRing {
    pub(super) ring_id: RingId,
    pub(super) members: Vec<NodeId>,
    /// Packets of the new ring (recovery packets, and application packets of members that
    /// already went operational).
    pub(super) buffer: RingBuffer,
    /// Members coming from our old ring: the transitional configuration.
    pub(super) transitional: Vec<NodeId>,
    /// Old-ring packets we still have to re-send.
    pub(super) recovery_queue: VecDeque<Mcast>,
    /// Representative: the first token was created.
    pub(super) token_created: bool,
    /// Representative: consecutive visits with everything received and nothing left to re-send.
    stable_visits: u32,
    last_seq_at_visit: u64,
}

impl PendingRing {
    pub(super) fn new(ring_id: RingId, members: Vec<NodeId>) -> Self {
        PendingRing {
            ring_id,
            buffer: RingBuffer::new(ring_id),
            members,
            transitional: Vec::new(),
            recovery_queue: VecDeque::new(),
            token_created: false,
            stable_visits: 0,
            last_seq_at_visit: 0,
        }
    }
}

impl Srp {
    /// The buffer of the ring the token belongs to: the new ring in recovery.
    pub(super) fn active_buffer(&self) -> &RingBuffer {
        match (&self.state, &self.pending) {
            (SrpState::Recovery, Some(p)) => &p.buffer,
            _ => &self.buffer,
        }
    }

    pub(super) fn active_buffer_mut(&mut self) -> &mut RingBuffer {
        match (&self.state, &mut self.pending) {
            (SrpState::Recovery, Some(p)) => &mut p.buffer,
            _ => &mut self.buffer,
        }
    }

    pub(super) fn active_members(&self) -> Vec<NodeId> {
        match (&self.state, &self.pending) {
            (SrpState::Recovery, Some(p)) => p.members.clone(),
            _ => self.members.clone(),
        }
    }

    /// Plans which old-ring packets this node re-sends. Of the members from our old ring, the
    /// one with the highest aru re-sends everything above the lowest aru up to its own; every
    /// member re-sends what it holds above that.
    pub(super) fn enter_recovery(&mut self, now: Instant, token: &CommitToken) {
        let old = self.ring;
        let from_old: Vec<(NodeId, u64, u64)> = token
            .members
            .iter()
            .zip(&token.entries)
            .filter(|(_, e)| e.old_ring_id.map(RingId::from) == Some(old))
            .map(|(&n, e)| (NodeId(n), e.aru, e.high_seq))
            .collect();
        let low = from_old.iter().map(|&(_, aru, _)| aru).min().unwrap_or(0);
        let high = from_old.iter().map(|&(_, _, high)| high).max().unwrap_or(0);
        let (designated, top_aru) = from_old
            .iter()
            .map(|&(n, aru, _)| (n, aru))
            .max_by_key(|&(n, aru)| (aru, std::cmp::Reverse(n)))
            .unwrap_or((self.node_id, 0));
        let from = if designated == self.node_id { low } else { top_aru };
        let queue: VecDeque<Mcast> = self.buffer.range(from, high).map(|s| s.mcast.clone()).collect();
        tracing::debug!(node = %self.node_id, %old, low, high, resend = queue.len(), "entering recovery");
        let pending = self.pending.as_mut().expect("commit state has a pending ring");
        pending.transitional = from_old.iter().map(|&(n, _, _)| n).collect();
        pending.recovery_queue = queue;
        self.state = SrpState::Recovery;
        self.tok = TokenState::default();
        self.timers.set(Timer::TokenLoss, now + self.config.token);
    }

    pub(super) fn send_recovery_packets(&mut self, allowed: u32, token: &mut Token) -> u32 {
        let ring_id = Some(WireRingId::from(self.pending.as_ref().expect("recovery").ring_id));
        let mut n = 0;
        while n < allowed {
            let Some(old) = self.pending.as_mut().and_then(|p| p.recovery_queue.pop_front()) else { break };
            token.seq += 1;
            let mcast = Mcast {
                ring_id,
                seq: token.seq,
                sender: self.node_id.0,
                safe: false,
                fragments: Vec::new(),
                recovered: Some(Box::new(old)),
            };
            self.multicast_own(mcast);
            n += 1;
        }
        if self.pending.as_ref().is_some_and(|p| !p.recovery_queue.is_empty()) {
            token.retrans_flg = true;
        }
        n
    }

    /// A new-ring packet received in recovery; an old packet inside joins our old ring's buffer.
    pub(super) fn receive_recovery_packet(&mut self, mcast: Mcast, raw: Bytes) {
        let old_ring = self.ring;
        if let Some(old) = mcast.recovered.as_deref() {
            if old.ring_id.map(RingId::from) == Some(old_ring) && !self.buffer.contains(old.seq) {
                let old = old.clone();
                let old_raw = Packet::Mcast(old.clone()).encode();
                self.buffer.insert(Stored { mcast: old, raw: old_raw });
            }
        }
        let pending = self.pending.as_mut().expect("recovery has a pending ring");
        if !pending.buffer.insert(Stored { mcast, raw }) {
            self.stale();
        }
    }

    /// The representative's part of a recovery token visit: recovery is complete once, on
    /// consecutive visits, every member held every packet (aru == seq with seq unchanged) and
    /// nobody had anything left to re-send. Returns whether recovery completed here.
    pub(super) fn recovery_visit(&mut self, now: Instant, token: &mut Token) -> bool {
        let me = self.node_id;
        let pending = self.pending.as_mut().expect("recovery has a pending ring");
        if pending.members[0] != me {
            return false;
        }
        let everyone_done = !token.retrans_flg && pending.recovery_queue.is_empty();
        let stable = everyone_done && token.aru == token.seq && token.seq == pending.last_seq_at_visit;
        pending.last_seq_at_visit = token.seq;
        pending.stable_visits = if stable { pending.stable_visits + 1 } else { 0 };
        token.retrans_flg = !pending.recovery_queue.is_empty();
        if pending.stable_visits >= 2 {
            token.recovery_done = true;
            self.finish_recovery(now);
            return true;
        }
        false
    }

    /// Delivers what recovery completed of the old ring in the transitional configuration,
    /// then installs the new ring.
    pub(super) fn finish_recovery(&mut self, now: Instant) {
        let pending = *self.pending.take().expect("recovery has a pending ring");
        let old_ring = self.ring;
        if self.installed {
            self.events.push_back(Event::Transitional(Configuration {
                ring_id: old_ring,
                members: pending.transitional.clone(),
            }));
        }
        // Past a gap nobody in the transitional configuration could fill, only packets of its
        // members are delivered: others may depend causally on the missing one (EVS rule).
        let transitional: BTreeSet<NodeId> = pending.transitional.iter().copied().collect();
        let mut gap = false;
        let buffer = &mut self.buffer;
        for seq in buffer.delivered + 1..=buffer.high_seq {
            match buffer.get(seq) {
                None => gap = true,
                Some(stored) if gap && !transitional.contains(&NodeId(stored.mcast.sender)) => {}
                Some(stored) => Self::deliver_packet(
                    &mut self.assembly,
                    &mut self.events,
                    &mut self.stats,
                    old_ring,
                    &stored.mcast,
                ),
            }
        }
        self.assembly.clear();
        self.send_queue.restart_partial();

        self.ring = pending.ring_id;
        self.members = pending.members;
        self.buffer = pending.buffer;
        self.installed = true;
        self.state = SrpState::Operational;
        self.stats.configurations += 1;
        tracing::debug!(node = %self.node_id, ring = %self.ring, members = ?self.members, "new ring installed");
        self.events
            .push_back(Event::Regular(Configuration { ring_id: self.ring, members: self.members.clone() }));
        if self.members[0] == self.node_id {
            self.timers.set(Timer::Merge, now + self.config.merge);
        }
        self.deliver();
    }
}
