//! The liveness phase: faults stop, then the cluster must converge and deliver within a bound.

use std::time::Duration;

use totem::{Guarantee, NodeId, RingId};
use totemd::Node;

use super::{Cluster, Ev};
use crate::check::liveness::describe;
use crate::check::{CheckerKind, Violation};
use crate::node::Liveness;

/// How many liveness bounds the drain may take while deliveries still progress.
const DRAIN_ROUNDS_MAX: u32 = 10;

/// What happened in the liveness phase.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LivenessReport {
    /// Virtual time from the start of the phase to one stable ring, if reached.
    pub stabilized_after: Option<Duration>,
    /// Virtual time from then until every probe and own message was delivered, if reached.
    pub drained_after: Option<Duration>,
    /// The ring reached at the end.
    pub ring: Option<RingId>,
    /// Regular configurations installed (summed over nodes) after the ring first stabilized;
    /// nonzero is legal (stale packets from the fault phase may still arrive) but worth a look.
    pub configs_after_stable: u64,
}

impl Cluster {
    /// Ends every fault: heals the network, removes rules and loss, repairs the power
    /// switches, stops the random load and the random CPG client activity, resumes paused
    /// nodes and, if asked, restarts crashed ones and powers on those a switch turned off.
    pub fn stop_faults(&mut self, restart_crashed: bool) {
        self.fabric.calm();
        self.switch_faults.clear();
        self.record_fault("calm: heal, no rules, no loss, switches work");
        self.set_load(0.0);
        self.set_cpg_load(0.0);
        for i in 0..self.nodes.len() {
            match self.nodes[i].liveness {
                Liveness::Paused { .. } => self.resume_node(i),
                Liveness::Down if restart_crashed && self.nodes[i].powered_off => self.power_on_node(i),
                Liveness::Down if restart_crashed => self.restart_node(i),
                _ => {}
            }
        }
    }

    /// Fencing is at rest: one ring of the live nodes, no agent runs or reboots under way,
    /// and no quorate node holds service for a pending fence (without quorum a fence waits,
    /// fenced(8)).
    fn fencing_settled(&self) -> bool {
        let busy = self.queue.values().any(|ev| matches!(ev, Ev::Agent { .. } | Ev::PowerOn(_)));
        let held = |s: &Node| s.fencing_held() && s.quorum().is_some_and(quorum::Votequorum::is_quorate);
        !busy && self.stable_ring().is_some() && !self.nodes.iter().filter_map(|n| n.srp.as_ref()).any(held)
    }

    /// Waits for fencing to come to rest and stay there for a token and consensus round (the
    /// quorum of a new ring is counted in it, and may start a fence); false if it never does.
    /// Quorum and fencing messages queue behind a backlog from the fault phase, so it keeps
    /// waiting while deliveries progress, up to `DRAIN_ROUNDS_MAX` bounds.
    fn settle_fencing(&mut self, bound: Duration) -> bool {
        let calm = self.cfg.totem.token + self.cfg.totem.consensus;
        for _ in 0..DRAIN_ROUNDS_MAX {
            let before = self.stats.deliveries;
            if !self.run_until_pred(bound, Cluster::fencing_settled) {
                if self.stats.deliveries > before && !self.halted {
                    continue;
                }
                return false;
            }
            self.run_for(calm);
            if self.fencing_settled() {
                return true;
            }
        }
        false
    }

    /// Every live node's fencing: pending victims and who runs their agents.
    fn fencing_views(&self) -> String {
        let views: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| n.srp.as_ref().map(|s| (n.id, s)))
            .filter_map(|(id, s)| s.fencer().map(|f| (id, s, f)))
            .map(|(id, s, f)| {
                let pending: Vec<String> = f.pending().iter().map(|v| format!("n{v}")).collect();
                let quorate = s.quorum().is_some_and(quorum::Votequorum::is_quorate);
                format!("n{id} (ring {}, quorate {quorate}): pending [{}]", s.ring_id(), pending.join(", "))
            })
            .collect();
        views.join("; ")
    }

    /// With votequorum, once the ring is stable and every configured node is live: every node
    /// is quorate and no fencer holds service.
    fn check_quorum_liveness(&mut self, bound: Duration) {
        if self.cfg.quorum.is_none() || self.live_nodes().len() < self.nodes.len() {
            return;
        }
        let settled = |c: &Cluster| {
            c.nodes
                .iter()
                .filter_map(|n| n.srp.as_ref())
                .all(|s| s.quorum().is_some_and(quorum::Votequorum::is_quorate) && !s.fencing_held())
        };
        if !self.run_until_pred(bound, settled) && !self.halted {
            let views: Vec<String> = self
                .nodes
                .iter()
                .filter_map(|n| n.srp.as_ref().map(|s| (n.id, s)))
                .map(|(id, s)| {
                    let q = s.quorum().map(quorum::Votequorum::status);
                    format!(
                        "n{id}: quorate {:?} expected {:?} fence held {} pending {:?}",
                        q.as_ref().map(|q| q.quorate),
                        q.as_ref().map(|q| q.expected_votes),
                        s.fencing_held(),
                        s.fence_pending()
                    )
                })
                .collect();
            let detail = format!("all nodes in one ring but not all quorate and free: {}", views.join(", "));
            self.report(vec![Violation::new(CheckerKind::Liveness, self.now(), None, detail)]);
        }
    }

    /// Checks liveness (call after [`Cluster::stop_faults`]): within the bound, one ring of
    /// exactly the live nodes forms; then probe messages from every live node reach every live
    /// node, every live node delivers all of its own messages, and all members delivered the
    /// same messages of the final ring. Failures become violations.
    pub fn check_liveness(&mut self) -> LivenessReport {
        let bound = self.cfg.liveness_bound();
        let mut report = LivenessReport::default();
        let t0 = self.now();
        if self.cfg.fencing.is_some() && !self.settle_fencing(bound) {
            if !self.halted {
                let detail = format!(
                    "fencing did not settle after {:?} of quiet: {}",
                    self.now() - t0,
                    self.fencing_views()
                );
                self.report(vec![Violation::new(CheckerKind::Liveness, self.now(), None, detail)]);
            }
            return report;
        }
        if !self.run_until_stable(bound) {
            if !self.halted {
                let detail = format!(
                    "no single ring of all live nodes within {bound:?} of quiet: {}",
                    describe(&self.views())
                );
                self.report(vec![Violation::new(CheckerKind::Liveness, self.now(), None, detail)]);
            }
            return report;
        }
        report.stabilized_after = Some(self.now() - t0);
        let configs_before = self.stats.regular_configs;
        let live = self.live_nodes();
        self.submit_probes(&live);
        let t1 = self.now();
        // A backlog from the fault phase may take long to drain: keep waiting while deliveries
        // progress, up to `DRAIN_ROUNDS_MAX` bounds.
        let mut drained = false;
        for _ in 0..DRAIN_ROUNDS_MAX {
            let before = self.stats.deliveries;
            drained = self.run_until_pred(bound, |c| c.drained(&live));
            if drained || self.halted || self.stats.deliveries == before {
                break;
            }
        }
        report.configs_after_stable = self.stats.regular_configs - configs_before;
        report.ring = self.stable_ring();
        if self.halted {
            return report;
        }
        let mut out = Vec::new();
        let at = self.now();
        if drained {
            report.drained_after = Some(self.now() - t1);
            // Everyone is through the same number of messages of the ring: the same ones?
            self.checkers.evs.compare_current(at, &live, &mut out);
        } else {
            let progress: Vec<String> = live
                .iter()
                .map(|&n| match self.checkers.evs.current(n) {
                    Some((r, k)) => format!("n{n}: {k} delivered in ring {r}"),
                    None => format!("n{n}: no ring"),
                })
                .collect();
            let detail = format!(
                "deliveries did not settle with no faults (waited {:?}); {}; {}",
                self.now() - t1,
                progress.join(", "),
                describe(&self.views())
            );
            out.push(Violation::new(CheckerKind::Liveness, at, None, detail));
        }
        self.checkers.liveness.check(at, &mut out);
        self.checkers.self_delivery.check(at, &live, &mut out);
        self.report(out);
        if drained && !self.halted {
            // The groups settle after the ring: every node's sync round, then re-sent operations.
            self.check_cpg_liveness(DRAIN_ROUNDS_MAX);
        }
        if drained && !self.halted {
            self.check_quorum_liveness(bound);
        }
        report
    }

    fn submit_probes(&mut self, live: &[NodeId]) {
        self.checkers.liveness.arm(live);
        for &n in live {
            let i = self.index(n);
            for k in 0..self.cfg.probes_per_node {
                let padding = self.cfg.load.sample_padding(&mut self.rng);
                let g = if k % 2 == 0 { Guarantee::Agreed } else { Guarantee::Safe };
                // A full send queue refuses a probe; the probes that went in still count.
                let _ = self.submit_at(i, padding, g);
            }
        }
        self.checkers.liveness.disarm();
    }

    /// Every probe delivered everywhere, every live node's own messages delivered, the ring
    /// stable, and all members through the same number of messages of it.
    fn drained(&self, live: &[NodeId]) -> bool {
        if self.checkers.liveness.pending() > 0
            || live.iter().any(|&n| self.checkers.self_delivery.outstanding(n) > 0)
        {
            return false;
        }
        let Some(ring) = self.stable_ring() else { return false };
        let mut counts = live.iter().map(|&n| self.checkers.evs.current(n));
        let first = counts.next().flatten();
        first.is_some_and(|(r, _)| r == ring) && counts.all(|c| c == first)
    }
}
