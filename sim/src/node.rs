//! One simulated node: the engine plus what its host would have (a drifting clock, a socket
//! buffer, durable storage for the persisted state, an application message counter).

use std::collections::VecDeque;

use bytes::Bytes;
use totem::{Event, Instant, NodeId, PersistedState};
use totemd::Node;

use crate::clients::ClientTable;
use cpg::service::ClientId;
use cpg::CpgEvent;
use quorum::fencing::OpId;

/// A node's local clock: `local = offset + global × (1 + ppm / 10⁶)`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Local time at global time zero, in nanoseconds.
    pub offset: u64,
    /// Rate error in parts per million (positive = runs fast). Must stay within ±500 000.
    pub ppm: i64,
}

const MILLION: i128 = 1_000_000;

impl Clock {
    /// The local time at global time `global` (nanoseconds).
    pub fn local(&self, global: u64) -> Instant {
        let g = i128::from(global);
        let l = i128::from(self.offset) + g + g * i128::from(self.ppm) / MILLION;
        Instant::from_nanos(u64::try_from(l.max(0)).unwrap_or(u64::MAX))
    }

    /// The earliest global time at which the local clock reads at least `local`.
    pub fn global_at(&self, local: Instant) -> u64 {
        let l = i128::from(local.as_nanos()) - i128::from(self.offset);
        if l <= 0 {
            return 0;
        }
        let rate = MILLION + i128::from(self.ppm);
        let mut g = u64::try_from((l * MILLION + rate - 1) / rate).unwrap_or(u64::MAX);
        // Integer rounding in `local` may leave us a nanosecond short (or long).
        while g > 0 && self.local(g - 1) >= local {
            g -= 1;
        }
        while self.local(g) < local {
            g += 1;
        }
        g
    }
}

/// Whether a node runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Running.
    Up,
    /// Stopped (SIGSTOP-like) until this global time; packets wait in the socket buffer.
    Paused {
        /// Global time of the scheduled resume.
        until: u64,
    },
    /// Crashed: only the persisted state survives.
    Down,
}

/// A simulated node.
pub(crate) struct SimNode {
    pub id: NodeId,
    /// The composed node (the daemon's sans-IO core); `None` while crashed.
    pub srp: Option<Node>,
    /// Counts restarts (0 = first boot).
    pub incarnation: u32,
    /// The last state the engine asked to persist (survives crashes).
    pub persisted: PersistedState,
    pub clock: Clock,
    pub liveness: Liveness,
    /// Datagrams received while paused, oldest first.
    pub socket: VecDeque<(NodeId, Bytes)>,
    /// Queue key of the armed engine timer.
    pub timer_key: Option<(u64, u64)>,
    /// Queue key of the next load tick.
    pub load_key: Option<(u64, u64)>,
    /// Queue key of the next CPG client operation.
    pub cpg_key: Option<(u64, u64)>,
    /// The CPG client processes on this host (gone with a crash; the counters survive).
    pub clients: ClientTable,
    /// The application's message counter (never reset, so ids stay unique across restarts).
    pub next_counter: u64,
    /// Deliveries so far, over all incarnations (for [`crate::cluster::Mutation`]).
    pub deliveries: u64,
    /// A delivery held back by a swap mutation.
    pub held: Option<Event>,
    /// Group messages delivered to this node's clients, over all incarnations (for CPG mutations).
    pub cpg_deliveries: u64,
    /// A group message held back by a CPG swap mutation, with its client.
    pub cpg_held: Option<(ClientId, CpgEvent)>,
    /// A power switch turned the host off; only a switch (or the operator) turns it on.
    pub powered_off: bool,
    /// Fence agent results that came while the node was paused, told when it resumes.
    pub agent_results: Vec<(OpId, bool, String)>,
    /// The node's confdb, kept by the daemon's code; fresh at each start.
    pub(crate) confdb: crate::cluster::NodeConfdb,
}

impl SimNode {
    pub fn new(id: NodeId, srp: Node, clock: Clock) -> Self {
        SimNode {
            id,
            srp: Some(srp),
            incarnation: 0,
            persisted: PersistedState::default(),
            clock,
            liveness: Liveness::Up,
            socket: VecDeque::new(),
            timer_key: None,
            load_key: None,
            cpg_key: None,
            clients: ClientTable::new(id),
            next_counter: 1,
            deliveries: 0,
            held: None,
            cpg_deliveries: 0,
            cpg_held: None,
            powered_off: false,
            agent_results: Vec::new(),
            confdb: Default::default(),
        }
    }

    /// Running and not paused.
    pub fn is_running(&self) -> bool {
        self.liveness == Liveness::Up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_at_inverts_local_for_any_drift() {
        for ppm in [-5000, -1, 0, 1, 333, 5000, 100_000] {
            let c = Clock { offset: 123_456_789, ppm };
            for g in [0u64, 1, 999, 1_000_000_007, 77_777_777_777] {
                let l = c.local(g);
                let back = c.global_at(l);
                assert!(back <= g, "ppm {ppm} g {g} back {back}");
                assert!(c.local(back) >= l);
                assert!(back == 0 || c.local(back - 1) < l);
            }
        }
    }

    #[test]
    fn a_fast_clock_runs_ahead() {
        let c = Clock { offset: 0, ppm: 1000 };
        assert_eq!(c.local(1_000_000_000), Instant::from_nanos(1_001_000_000));
        assert_eq!(c.global_at(Instant::from_nanos(5)), 5);
        assert_eq!(Clock { offset: 10, ppm: 0 }.global_at(Instant::from_nanos(3)), 0);
    }
}
