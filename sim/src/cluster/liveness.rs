//! The liveness phase: faults stop, then the cluster must converge and deliver within a bound.

use std::time::Duration;

use totem::{Guarantee, NodeId, RingId};

use super::Cluster;
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
    /// Ends every fault: heals the network, removes rules and loss, stops the random load
    /// and the random CPG client activity, resumes paused nodes and, if asked, restarts crashed ones.
    pub fn stop_faults(&mut self, restart_crashed: bool) {
        self.fabric.calm();
        self.record_fault("calm: heal, no rules, no loss");
        self.set_load(0.0);
        self.set_cpg_load(0.0);
        for i in 0..self.nodes.len() {
            match self.nodes[i].liveness {
                Liveness::Paused { .. } => self.resume_node(i),
                Liveness::Down if restart_crashed => self.restart_node(i),
                _ => {}
            }
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
