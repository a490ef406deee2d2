//! Fence agents and power switches (see [`crate::fence`]): runs the agents nodes ask for,
//! switches power, and tells the runner how it went.

use quorum::fencing::{HistoryEntry, OpId, RunAgent};
use totem::NodeId;
use totemd::Node;

use super::{Cluster, Ev, MutationKind};
use crate::check::Observation;
use crate::fence::{PowerAction, SwitchMode, SwitchRequest};
use crate::node::Liveness;
use crate::rng::nanos;
use crate::trace::TraceKind;

impl Cluster {
    /// Whether `node`'s fencer holds service; `None` when crashed or fencing is off.
    pub fn fencing_held(&self, node: NodeId) -> Option<bool> {
        let srp = self.node(node).srp.as_ref()?;
        srp.fencer().map(|_| srp.fencing_held())
    }

    /// The fences `node`'s fencer completed (empty when crashed or fencing is off).
    pub fn fence_history(&self, node: NodeId) -> Vec<HistoryEntry> {
        let fencer = self.node(node).srp.as_ref().and_then(Node::fencer);
        fencer.map(|f| f.history().cloned().collect()).unwrap_or_default()
    }

    /// Whether a power switch turned `node` off (and nothing has turned it on since).
    pub fn is_powered_off(&self, node: NodeId) -> bool {
        self.node(node).powered_off
    }

    /// Agent runs the switches answered, and how many of them powered a node off.
    pub fn fence_stats(&self) -> (u64, u64) {
        (self.agent_runs, self.power_offs)
    }

    /// Makes a power switch fail or hang (`None`: work again).
    pub fn set_switch(&mut self, device: &str, mode: Option<SwitchMode>) {
        self.apply(&crate::Fault::Switch { device: device.to_string(), mode });
    }

    /// Powers a node on that a switch powered off (the operator's hand).
    pub fn power_on(&mut self, node: NodeId) {
        self.apply(&crate::Fault::PowerOn(node));
    }

    /// After an input to node `i`: its fence events to the trace, the agents it asks for to
    /// the switches, and its fencing state to the checkers.
    pub(super) fn drain_fencing(&mut self, i: usize) {
        let id = self.nodes[i].id;
        while let Some(e) = self.nodes[i].srp.as_mut().and_then(Node::poll_fence_event) {
            let text = format!("{e:?}");
            let word = crate::workload::payload_hash(text.as_bytes());
            self.trace.record(self.now, id.0, TraceKind::Fence, &[word], || format!("fence event {text}"));
        }
        while let Some(run) = self.nodes[i].srp.as_mut().and_then(Node::poll_fence_action) {
            let (lo, hi) =
                self.cfg.fencing.as_ref().map_or((0, 0), |f| (nanos(f.latency.0), nanos(f.latency.1)));
            let latency = self.rng.range_inclusive(lo, hi.max(lo));
            let at = self.now.saturating_add(nanos(run.delay)).saturating_add(latency);
            let words = [run.op.0, u64::from(run.node.0), at];
            self.trace.record(self.now, id.0, TraceKind::Fence, &words, || {
                format!(
                    "run agent {} {} for n{} ({}, delay {:?}): {:?}",
                    run.op, run.agent, run.node, run.device, run.delay, run.stdin
                )
            });
            let incarnation = self.nodes[i].incarnation;
            self.push(at, Ev::Agent { runner: i, incarnation, run: Box::new(run) });
        }
        let Some(srp) = self.nodes[i].srp.as_ref() else { return };
        let (Some(q), Some(_)) = (srp.quorum(), srp.fencer()) else { return };
        let members = srp.members().to_vec();
        let obs = Observation::FenceState {
            node: id,
            incarnation: self.nodes[i].incarnation,
            ring_id: srp.ring_id(),
            members: &members,
            quorate: q.is_quorate(),
            blocked: srp.fencing_held(),
            operational: srp.state() == totem::SrpState::Operational,
        };
        self.observe(&obs);
    }

    /// A switch acts on an agent run: unless the runner died, the switch misbehaves or the
    /// request is bad, it switches the port's node and the runner hears of success.
    pub(super) fn agent_done(&mut self, runner: usize, incarnation: u32, run: RunAgent) {
        let id = self.nodes[runner].id;
        if self.nodes[runner].incarnation != incarnation || self.nodes[runner].liveness == Liveness::Down {
            self.trace.record(self.now, id.0, TraceKind::Fence, &[run.op.0], || {
                format!("agent {} for n{} died with its node", run.op, run.node)
            });
            return;
        }
        self.agent_runs += 1;
        let mode = self.switch_faults.get(&run.device).copied();
        let request = SwitchRequest::parse(&run.stdin);
        let target = request.as_ref().and_then(|r| r.port).filter(|p| (p.0 as usize) <= self.nodes.len());
        let (success, detail) = match (mode, &request, target) {
            (Some(SwitchMode::Hang), _, _) => {
                self.trace.record(self.now, id.0, TraceKind::Fence, &[run.op.0, 0], || {
                    format!("agent {} on {} hangs", run.op, run.device)
                });
                return;
            }
            (Some(SwitchMode::Fail), _, _) => (false, format!("{} does not answer", run.device)),
            (None, None, _) => (false, "unknown action".to_string()),
            (None, Some(_), None) => (false, "no such port".to_string()),
            (None, Some(r), Some(t)) => {
                self.switch_power(t, r.action);
                (true, format!("{:?} port {t}", r.action))
            }
        };
        let words = [run.op.0, u64::from(success)];
        self.trace.record(self.now, id.0, TraceKind::Fence, &words, || {
            format!(
                "agent {} for n{} on {}: {} ({detail})",
                run.op,
                run.node,
                run.device,
                if success { "ok" } else { "FAILED" }
            )
        });
        self.agent_result(runner, run.op, success, detail);
    }

    fn agent_result(&mut self, i: usize, op: OpId, success: bool, detail: String) {
        match self.nodes[i].liveness {
            Liveness::Down => {}
            Liveness::Paused { .. } => self.nodes[i].agent_results.push((op, success, detail)),
            Liveness::Up => {
                self.current = Some(self.nodes[i].id);
                let local = self.local(i);
                if let Some(srp) = self.nodes[i].srp.as_mut() {
                    srp.fence_agent_result(local, op, success, detail);
                }
                self.after_input(i);
            }
        }
    }

    /// Results that came while node `i` was paused (called when it resumes).
    pub(super) fn deliver_held_agent_results(&mut self, i: usize) {
        for (op, success, detail) in std::mem::take(&mut self.nodes[i].agent_results) {
            self.agent_result(i, op, success, detail);
        }
    }

    fn switch_power(&mut self, target: NodeId, action: PowerAction) {
        let t = self.index(target);
        let fake = self.cfg.mutation.is_some_and(|m| m.kind == MutationKind::FakeFence);
        match action {
            PowerAction::Status => {}
            PowerAction::On => self.power_on_node(t),
            PowerAction::Off | PowerAction::Reboot if fake => {
                self.trace
                    .record(self.now, target.0, TraceKind::Fence, &[], || "switch lies: still on".into());
            }
            PowerAction::Off | PowerAction::Reboot => {
                self.trace.record(self.now, target.0, TraceKind::Fence, &[], || "POWER OFF".into());
                self.power_offs += 1;
                self.crash_node(t);
                self.nodes[t].powered_off = true;
                if action == PowerAction::Reboot {
                    let boot = self.cfg.fencing.as_ref().map_or(0, |f| nanos(f.boot_time));
                    self.push(self.now.saturating_add(boot), Ev::PowerOn(t));
                }
            }
        }
    }

    /// Power returns to node `i`: it boots with fresh state if it was off.
    pub(super) fn power_on_node(&mut self, i: usize) {
        if !self.nodes[i].powered_off {
            return;
        }
        self.nodes[i].powered_off = false;
        self.trace.record(self.now, self.nodes[i].id.0, TraceKind::Fence, &[1], || "POWER ON".into());
        self.restart_node(i);
    }
}
