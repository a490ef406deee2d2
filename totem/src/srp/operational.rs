//! Operational state: token handling, multicast receipt, agreed and safe delivery, flow
//! control, holding the idle token and merge detection (Totem paper, section 3).

use bytes::Bytes;

use super::buffer::Stored;
use super::timer::Timer;
use super::{Srp, SrpState};
use crate::config::LOSS_QUIET;
use crate::event::{Destination, Guarantee};
use crate::ids::{NodeId, RingId};
use crate::time::Instant;
use crate::wire::{Mcast, Packet, RingNotice, Token, WireRingId};

impl Srp {
    pub(super) fn on_token(&mut self, now: Instant, token: Token) {
        let Some(ring) = token.ring_id.map(RingId::from) else { return self.stale() };
        let current = match self.state {
            SrpState::Operational => ring == self.ring,
            SrpState::Recovery => self.pending.as_ref().is_some_and(|p| p.ring_id == ring),
            _ => false,
        };
        if !current || token.token_seq <= self.tok.last_token_seq {
            return self.stale();
        }
        self.accept_token(now, token);
    }

    /// A token visit: serve retransmit requests, ask for what we miss, send under flow control,
    /// update the aru, deliver, then pass the token on (or hold it when idle).
    pub(super) fn accept_token(&mut self, now: Instant, mut token: Token) {
        self.tok.last_token_seq = token.token_seq;
        self.token_seen_downstream();
        self.timers.set(Timer::TokenLoss, now + self.config.token);
        self.stats.token_rotations += 1;
        if self.state == SrpState::Recovery && token.recovery_done {
            self.finish_recovery(now);
        }
        let me = self.node_id;

        // fail_recv_const: the same aru owner stuck for many rotations cannot receive.
        if token.aru_owner != 0 && token.aru < token.seq && token.aru == self.tok.last_token_aru_seen {
            self.tok.fail_recv_count += 1;
        } else {
            self.tok.fail_recv_count = 0;
        }
        self.tok.last_token_aru_seen = token.aru;
        if self.tok.fail_recv_count >= self.config.fail_recv_const {
            let owner = NodeId(token.aru_owner);
            tracing::warn!(node = %me, %owner, "failed to receive: declaring the aru owner failed");
            let failed: Vec<NodeId> = if owner == me { Vec::new() } else { vec![owner] };
            return self.enter_gather(now, &[], &failed);
        }

        // Flow control: window_size per rotation and max_messages per visit, retransmissions
        // included (corosync's fcc_calculate); new packets share what is left by backlog.
        token.fcc = token.fcc.saturating_sub(self.tok.sent_last_visit);
        token.backlog = token.backlog.saturating_sub(self.tok.backlog_last_visit);
        let visit_max = self.config.window_size.saturating_sub(token.fcc).min(self.config.max_messages);

        // Retransmit requests we can serve, within the visit's share.
        let mut sent: u32 = 0;
        let requests = std::mem::take(&mut token.rtr);
        for seq in requests {
            let raw =
                (sent < visit_max).then(|| self.active_buffer().get(seq).map(|s| s.raw.clone())).flatten();
            match raw {
                Some(raw) => {
                    self.stats.retransmits += 1;
                    sent += 1;
                    self.send_raw(Destination::All, raw);
                }
                None => token.rtr.push(seq),
            }
        }
        let room = self.config.rtr_max.saturating_sub(token.rtr.len());
        let miss_count = self.config.miss_count_const;
        for seq in self.active_buffer_mut().missing(token.seq, miss_count, room) {
            if !token.rtr.contains(&seq) {
                token.rtr.push(seq);
            }
        }
        // Loss anywhere on the ring: a request on the token, one served, or a gap here.
        let gap = self.active_buffer().my_aru < self.active_buffer().high_seq;
        if !token.rtr.is_empty() || sent > 0 || gap {
            self.loss_seen = Some(now);
        }

        let my_backlog = self.backlog();
        let mut allowed = visit_max;
        let ring_backlog = token.backlog.saturating_add(my_backlog);
        if ring_backlog > self.config.window_size && my_backlog > 0 {
            let share = u64::from(self.config.window_size) * u64::from(my_backlog) / u64::from(ring_backlog);
            allowed = allowed.min(u32::try_from(share).unwrap_or(u32::MAX).max(1));
        }
        let allowed = allowed.saturating_sub(sent);
        sent += match self.state {
            SrpState::Operational => self.send_new_packets(now, allowed, &mut token),
            _ => self.send_recovery_packets(allowed, &mut token),
        };
        token.fcc = token.fcc.saturating_add(sent);
        self.tok.sent_last_visit = sent;
        let left = self.backlog();
        token.backlog = token.backlog.saturating_add(left);
        self.tok.backlog_last_visit = left;

        // aru (Totem paper, figure 3): lower it, or raise it if we own it or nobody does.
        let my_aru = self.active_buffer().my_aru;
        if my_aru < token.aru || token.aru_owner == me.0 || token.aru_owner == 0 {
            token.aru = my_aru;
            token.aru_owner = if token.aru >= token.seq { 0 } else { me.0 };
        }
        // Every member had at least the smaller of the aru of two consecutive visits.
        self.tok.safe_through = token.aru.min(self.tok.last_aru);
        self.tok.last_aru = token.aru;

        if self.state == SrpState::Operational {
            self.deliver();
            self.buffer.collect_garbage(self.tok.safe_through);
        } else if self.recovery_visit(now, &mut token) {
            // Recovery just completed here; the token now carries `recovery_done`.
        }

        let idle = token.rtr.is_empty()
            && token.seq == self.tok.last_seq_seen
            && token.aru == token.seq
            && token.backlog == 0
            && self.send_queue.is_empty();
        self.tok.last_seq_seen = token.seq;
        self.tok.idle_rotations = if idle { self.tok.idle_rotations.saturating_add(1) } else { 0 };
        self.pass_token(now, token);
    }

    /// Packets we would send if allowed: our queue when operational, old-ring packets in recovery.
    fn backlog(&self) -> u32 {
        match (&self.state, &self.pending) {
            (SrpState::Recovery, Some(p)) => u32::try_from(p.recovery_queue.len()).unwrap_or(u32::MAX),
            _ => self.send_queue.backlog(self.config.packet_payload_max()),
        }
    }

    /// Whether the ring showed loss less than [`LOSS_QUIET`] ago.
    fn loss_recent(&self, now: Instant) -> bool {
        self.loss_seen.is_some_and(|seen| now.saturating_duration_since(seen) < LOSS_QUIET)
    }

    /// Payload bytes of the next packet: up to `packet_max` on a ring without loss, up to
    /// `netmtu` for [`LOSS_QUIET`] after a sign of loss.
    fn payload_max(&self, now: Instant) -> usize {
        if self.loss_recent(now) {
            self.config.packet_payload_max()
        } else {
            self.config.large_packet_payload_max()
        }
    }

    fn send_new_packets(&mut self, now: Instant, allowed: u32, token: &mut Token) -> u32 {
        let payload_max = self.payload_max(now);
        let ring_id = Some(WireRingId::from(self.ring));
        let mut n = 0;
        while n < allowed {
            let assembly = &mut self.assembly;
            let next = self.send_queue.next_packet(payload_max, |whole| assembly.keep_own(whole.clone()));
            let Some((fragments, guarantee)) = next else { break };
            token.seq += 1;
            let mcast = Mcast {
                ring_id,
                seq: token.seq,
                sender: self.node_id.0,
                safe: guarantee == Guarantee::Safe,
                fragments,
                recovered: None,
            };
            self.multicast_own(mcast);
            n += 1;
        }
        n
    }

    /// Multicasts a packet we sequenced and keeps it as received.
    pub(super) fn multicast_own(&mut self, mcast: Mcast) {
        let packet = Packet::Mcast(mcast);
        let raw = self.send(Destination::All, &packet);
        let Packet::Mcast(mcast) = packet else { unreachable!("built as mcast") };
        let inserted = self.active_buffer_mut().insert(Stored { mcast, raw });
        assert!(inserted, "a seq we assign is new in our ring");
    }

    /// Passes the token to the next member, or holds it (idle representative, one-node ring).
    fn pass_token(&mut self, now: Instant, token: Token) {
        let members = self.active_members();
        let alone = members.len() == 1;
        let representative = members[0] == self.node_id;
        if alone {
            // A safe packet needs one more visit to be delivered, recovery a few.
            let undelivered = self.buffer.delivered < self.buffer.my_aru;
            let work = !self.send_queue.is_empty() || self.state == SrpState::Recovery || undelivered;
            self.hold(token, work.then_some(now));
            self.timers.stop(Timer::TokenLoss);
        } else if representative
            && self.state == SrpState::Operational
            && self.tok.idle_rotations >= self.config.seqno_unchanged_const
        {
            let hold = self.config.effective_hold();
            self.hold(token, Some(now + hold));
        } else {
            self.forward_token(now, token);
        }
    }

    fn hold(&mut self, token: Token, release_at: Option<Instant>) {
        self.tok.held = Some(token);
        match release_at {
            Some(at) => self.timers.set(Timer::Hold, at),
            None => self.timers.stop(Timer::Hold),
        }
    }

    /// A packet sequenced after our last visit proves the token moved on.
    fn mcast_seen(&mut self, seq: u64) {
        if seq > self.tok.forwarded_seq {
            self.token_seen_downstream();
        }
    }

    fn forward_token(&mut self, now: Instant, mut token: Token) {
        let next = Self::next_member(&self.active_members(), self.node_id);
        token.token_seq += 1;
        self.tok.forwarded_seq = token.seq;
        self.hold_cancel_sent = false;
        self.send_token_packet(now, next, &Packet::Token(token));
        if self.loss_recent(now) {
            // On a lossy ring the token goes twice (the copy is a duplicate to the next node):
            // a lost token stalls the ring for a token_retransmit interval, and losing it again
            // on every retransmission costs a membership change.
            if let Some((next, payload)) = self.retransmit.clone() {
                self.send_raw(Destination::Node(next), payload);
            }
        }
    }

    /// The hold ended: use the token for local work (or, alone, process it again), else pass
    /// the idle token on.
    pub(super) fn on_hold_expired(&mut self, now: Instant) {
        let Some(mut token) = self.tok.held.take() else { return };
        let work = self.state == SrpState::Operational && !self.send_queue.is_empty();
        if work || self.active_members().len() == 1 {
            token.token_seq += 1;
            self.accept_token(now, token);
        } else {
            self.forward_token(now, token);
        }
    }

    /// New local work: use a held token, or ask the representative to stop holding it.
    pub(super) fn wake_token(&mut self, now: Instant) {
        if self.state != SrpState::Operational {
            return;
        }
        if self.tok.held.is_some() {
            // The visit happens once the input at hand is taken (a timer due now), so that
            // every message submitted with this one goes in it, not one alone and the rest a
            // rotation later.
            self.tok.idle_rotations = 0;
            self.timers.set(Timer::Hold, now);
        } else if !self.hold_cancel_sent && self.members.len() > 1 {
            self.hold_cancel_sent = true;
            let notice = RingNotice { sender: self.node_id.0, ring_id: Some(self.ring.into()) };
            self.send(Destination::All, &Packet::TokenHoldCancel(notice));
        }
    }

    pub(super) fn on_hold_cancel(&mut self, now: Instant, notice: RingNotice) {
        let ring = notice.ring_id.map(RingId::from);
        if self.state == SrpState::Operational && ring == Some(self.ring) {
            self.tok.idle_rotations = 0;
            if let Some(token) = self.tok.held.take() {
                self.timers.stop(Timer::Hold);
                self.forward_token(now, token);
            }
        }
    }

    pub(super) fn on_mcast(&mut self, now: Instant, mcast: Mcast, raw: Bytes) {
        let sender = NodeId(mcast.sender);
        let Some(ring) = mcast.ring_id.map(RingId::from) else { return self.stale() };
        if sender == self.node_id {
            return self.stale();
        }
        match self.state {
            SrpState::Operational if ring == self.ring => {
                self.mcast_seen(mcast.seq);
                if self.buffer.insert(Stored { mcast, raw }) {
                    self.deliver();
                } else {
                    self.stale();
                }
            }
            SrpState::Recovery if self.pending.as_ref().is_some_and(|p| p.ring_id == ring) => {
                self.mcast_seen(mcast.seq);
                self.receive_recovery_packet(mcast, raw);
            }
            // Late packets of our old ring help recovery until we report what we hold.
            SrpState::Gather if ring == self.ring => {
                if !self.buffer.insert(Stored { mcast, raw }) {
                    self.stale();
                }
            }
            _ if ring == self.ring => self.stale(),
            _ => self.on_foreign(now, sender, ring),
        }
    }

    /// Agreed delivery up to `my_aru`; a safe packet waits until every member holds it.
    pub(super) fn deliver(&mut self) {
        let buffer = &mut self.buffer;
        while buffer.delivered < buffer.my_aru {
            let seq = buffer.delivered + 1;
            let Some(stored) = buffer.get(seq) else { break };
            if stored.mcast.safe && seq > self.tok.safe_through {
                break;
            }
            Self::deliver_packet(
                &mut self.assembly,
                &mut self.events,
                &mut self.stats,
                buffer.ring_id,
                &stored.mcast,
            );
            buffer.delivered = seq;
        }
    }

    pub(super) fn on_merge_timer(&mut self, now: Instant) {
        if self.state == SrpState::Operational && self.members[0] == self.node_id {
            let notice = RingNotice { sender: self.node_id.0, ring_id: Some(self.ring.into()) };
            self.send(Destination::All, &Packet::MergeDetect(notice));
            self.timers.set(Timer::Merge, now + self.config.merge);
        }
    }

    pub(super) fn on_merge_detect(&mut self, now: Instant, notice: RingNotice) {
        let sender = NodeId(notice.sender);
        let Some(ring) = notice.ring_id.map(RingId::from) else { return self.stale() };
        if sender == self.node_id || ring == self.ring {
            return;
        }
        self.on_foreign(now, sender, ring);
    }

    /// Traffic from a ring that is not ours: merge (operational) or widen the gather.
    fn on_foreign(&mut self, now: Instant, sender: NodeId, ring: RingId) {
        match self.state {
            SrpState::Operational => {
                if self.members.contains(&sender) && ring.seq <= self.ring.seq {
                    return self.stale();
                }
                tracing::debug!(node = %self.node_id, %sender, %ring, "foreign ring heard: gather");
                self.enter_gather(now, &[sender], &[]);
            }
            SrpState::Gather => self.gather_add(now, sender),
            SrpState::Commit | SrpState::Recovery => self.stale(),
        }
    }

    pub(super) fn on_token_loss(&mut self, now: Instant) {
        if self.state != SrpState::Gather {
            // corosync logs it as a notice: "A processor failed, forming new configuration".
            tracing::info!(node = %self.node_id, state = ?self.state, "token lost: gather");
            self.enter_gather(now, &[], &[]);
        }
    }
}
