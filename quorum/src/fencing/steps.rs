//! The fencer's internal steps: victims, method/device progress, startup, blocking.

use totem::{Instant, NodeId};

use super::agent::run_agent;
use super::{Cause, FenceEvent, Fencer, HistoryEntry, OpId, Startup, Step, Victim, EVENTS_MAX, HISTORY_MAX};

impl Fencer {
    pub(super) fn add_victim(&mut self, node: NodeId, cause: Cause) {
        if self.victims.contains_key(&node) {
            return;
        }
        let configured = self.config.nodes.contains_key(&node);
        let step = if configured { Step::Ready } else { Step::Unfenceable };
        self.victims.insert(node, Victim { cause, method: 0, device: 0, step, failed: 0, ran: false });
        self.push_event(FenceEvent::Pending { node });
        if !configured {
            self.push_event(FenceEvent::Unfenceable { node });
        }
    }

    /// Victims that are members again and were recorded without quorum or at startup, with no
    /// agent run yet, need no fencing (see the rules on [`Fencer`]).
    pub(super) fn cancel_rejoined(&mut self) {
        let cancelled: Vec<NodeId> = self
            .victims
            .iter()
            .filter(|(node, v)| {
                self.members.contains(node)
                    && matches!(v.cause, Cause::LostWithoutQuorum | Cause::Startup)
                    && !v.ran
            })
            .map(|(node, _)| *node)
            .collect();
        for node in cancelled {
            self.victims.remove(&node);
            self.push_event(FenceEvent::Cancelled { node });
        }
    }

    pub(super) fn begin_startup_delay(&mut self, now: Instant) {
        if self.startup == Startup::AwaitQuorum && self.quorate {
            self.startup = Startup::Delay(now + self.config.post_join_delay);
            if self.config.post_join_delay.is_zero() {
                self.end_startup_delay();
            }
        }
    }

    /// fenced's post_join_delay: configured nodes never seen since start are victims.
    pub(super) fn end_startup_delay(&mut self) {
        self.startup = Startup::Done;
        // A node fenced since this one started (by another member, as we learnt) and not seen
        // since is down already.
        let fenced: Vec<NodeId> = self.history.iter().map(|h| h.node).collect();
        for node in self.unseen_nodes() {
            if !fenced.contains(&node) {
                self.add_victim(node, Cause::Startup);
            }
        }
    }

    pub(super) fn unseen_nodes(&self) -> Vec<NodeId> {
        self.config.nodes.keys().copied().filter(|n| !self.seen.contains(n)).collect()
    }

    pub(super) fn running(&self, op: OpId) -> Option<NodeId> {
        self.victims
            .iter()
            .find(|(_, v)| matches!(v.step, Step::Running { op: o, .. } if o == op))
            .map(|(n, _)| *n)
    }

    pub(super) fn victim_mut(&mut self, node: NodeId) -> &mut Victim {
        self.victims.get_mut(&node).expect("victim exists")
    }

    pub(super) fn device_succeeded(&mut self, now: Instant, node: NodeId) {
        let victim = &self.victims[&node];
        let method = &self.config.nodes[&node].methods[victim.method];
        if victim.device + 1 == method.devices.len() {
            let by = method.name.clone();
            self.complete(now, node, by.clone());
            self.send_done(node, &by);
        } else {
            let victim = self.victim_mut(node);
            victim.device += 1;
            victim.step = Step::Ready;
        }
    }

    pub(super) fn device_failed(&mut self, now: Instant, node: NodeId, detail: String) {
        let victim = &self.victims[&node];
        let methods = &self.config.nodes[&node].methods;
        let method = &methods[victim.method];
        let event = FenceEvent::AttemptFailed {
            node,
            method: method.name.clone(),
            device: method.devices[victim.device].device.clone(),
            detail,
        };
        let last = victim.method + 1 == methods.len();
        let retry_at = now + self.config.retry_delay;
        let victim = self.victim_mut(node);
        victim.failed += 1;
        victim.device = 0;
        if last {
            victim.method = 0;
            victim.step = Step::RetryAt(retry_at);
        } else {
            victim.method += 1;
            victim.step = Step::Ready;
        }
        self.push_event(event);
    }

    /// `node` is fenced (by a method, an ack or a peer), whether or not it was a victim here.
    pub(super) fn complete(&mut self, now: Instant, node: NodeId, by: String) {
        let failed_attempts = self.victims.remove(&node).map_or(0, |v| v.failed);
        if self.members.contains(&node) {
            self.fenced_members.insert(node, now + self.config.agent_timeout);
        }
        if self.history.len() == HISTORY_MAX {
            self.history.pop_front();
        }
        self.history.push_back(HistoryEntry { node, at: now, by: by.clone(), failed_attempts });
        self.push_event(FenceEvent::Fenced { node, by });
    }

    /// After every input: start the agents that may run, then report a change of blocking.
    pub(super) fn finish(&mut self, now: Instant) {
        let started = self.startup != Startup::NotStarted;
        let nodes: Vec<NodeId> = self.victims.keys().copied().collect();
        for node in nodes {
            let victim = &self.victims[&node];
            if !(victim.cause == Cause::Manual || (started && self.quorate)) {
                if victim.step == Step::Ready {
                    // Postponed until quorum: the method restarts from its first device.
                    self.victim_mut(node).device = 0;
                }
                continue;
            }
            if victim.step == Step::Unfenceable || !self.owns(node) {
                continue;
            }
            let victim = &self.victims[&node];
            if victim.step != Step::Ready {
                continue;
            }
            let op = OpId(self.next_op);
            self.next_op += 1;
            let run = run_agent(&self.config, op, node, victim.method, victim.device);
            // The daemon waits `delay`, and an agent honouring `delay=` may wait it again.
            let deadline = now + run.delay + run.delay + run.timeout;
            let victim = self.victim_mut(node);
            victim.step = Step::Running { op, deadline };
            victim.ran = true;
            self.actions.push_back(run);
        }
        self.run_unfence(now);
        let blocking = self.is_blocking();
        if blocking != self.was_blocking {
            self.was_blocking = blocking;
            self.push_event(if blocking { FenceEvent::Blocked } else { FenceEvent::Unblocked });
        }
    }

    pub(super) fn push_event(&mut self, event: FenceEvent) {
        if self.events.len() == EVENTS_MAX {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
    }
}
