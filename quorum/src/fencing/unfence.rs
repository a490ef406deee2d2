//! Unfencing (fence_node -U, cluster.conf's `<unfence>`): at start a coordinated fencer runs
//! its own node's unfence devices, `action=on` unless configured otherwise, one after another.
//! Until every one has succeeded the node holds service: fabric fencing (SCSI reservations,
//! switch ports) still shuts it out of shared storage. A failure starts again from the first
//! device after `retry_delay`, forever, like a fence.

use totem::Instant;

use super::agent::run_device;
use super::{FenceEvent, Fencer, OpId, Step};

/// Progress through the local node's unfence devices.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Unfence {
    device: usize,
    step: Step,
}

impl Fencer {
    /// Whether this node still has to unfence itself before it may serve.
    pub fn is_unfencing(&self) -> bool {
        self.unfence.is_some()
    }

    /// At start: unfencing begins when the configuration lists devices for this node.
    pub(super) fn begin_unfence(&mut self) {
        let Some(local) = self.local else { return };
        if self.config.unfence.get(&local).is_some_and(|d| !d.is_empty()) {
            self.unfence = Some(Unfence { device: 0, step: Step::Ready });
        }
    }

    /// Starts the next unfence device when it is due.
    pub(super) fn run_unfence(&mut self, now: Instant) {
        let (Some(local), Some(u)) = (self.local, self.unfence) else { return };
        if u.step != Step::Ready {
            return;
        }
        let op = OpId(self.next_op);
        self.next_op += 1;
        let dref = &self.config.unfence[&local][u.device];
        let run = run_device(&self.config, op, local, "unfence", dref, "on");
        let deadline = now + run.delay + run.delay + run.timeout;
        self.unfence = Some(Unfence { step: Step::Running { op, deadline }, ..u });
        self.actions.push_back(run);
    }

    /// An agent result for an unfence run; false when `op` is not one.
    pub(super) fn unfence_result(&mut self, now: Instant, op: OpId, success: bool, detail: String) -> bool {
        let Some(u) = self.unfence else { return false };
        if !matches!(u.step, Step::Running { op: o, .. } if o == op) {
            return false;
        }
        if success {
            self.unfence_device_done();
        } else {
            self.unfence_failed(now, detail);
        }
        true
    }

    /// The unfence agent's deadline passed, or its retry is due.
    pub(super) fn unfence_timeout(&mut self, now: Instant) {
        let Some(u) = self.unfence else { return };
        match u.step {
            Step::Running { deadline, .. } if now >= deadline => {
                let secs = self.config.agent_timeout.as_secs_f64();
                self.unfence_failed(now, format!("timed out after {secs} s"));
            }
            Step::RetryAt(at) if now >= at => self.unfence = Some(Unfence { step: Step::Ready, ..u }),
            _ => {}
        }
    }

    /// When the unfence run times out or may retry.
    pub(super) fn unfence_deadline(&self) -> Option<Instant> {
        match self.unfence?.step {
            Step::Running { deadline, .. } => Some(deadline),
            Step::RetryAt(at) => Some(at),
            Step::Ready | Step::Unfenceable => None,
        }
    }

    fn unfence_device_done(&mut self) {
        let (Some(local), Some(u)) = (self.local, self.unfence) else { return };
        if u.device + 1 == self.config.unfence[&local].len() {
            self.unfence = None;
            self.push_event(FenceEvent::Unfenced);
        } else {
            self.unfence = Some(Unfence { device: u.device + 1, step: Step::Ready });
        }
    }

    fn unfence_failed(&mut self, now: Instant, detail: String) {
        let (Some(local), Some(u)) = (self.local, self.unfence) else { return };
        let device = self.config.unfence[&local][u.device].device.clone();
        self.unfence = Some(Unfence { device: 0, step: Step::RetryAt(now + self.config.retry_delay) });
        self.push_event(FenceEvent::UnfenceFailed { device, detail });
    }
}
