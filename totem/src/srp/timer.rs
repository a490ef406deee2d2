//! The engine's timers: one closed enum and a table of absolute deadlines.

use crate::time::Instant;

/// Every timer the engine arms.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// No token seen for `token`: the ring is lost (operational, commit, recovery).
    TokenLoss,
    /// The token we passed shows no sign of arriving: send it again (`token_retransmit`).
    TokenRetransmit,
    /// Release the token the representative holds (`hold`), or process a token sent to self.
    Hold,
    /// Send the next join while gathering (`join`).
    Join,
    /// Gather has not reached consensus in time (`consensus`).
    Consensus,
    /// The representative announces its ring for merge detection (`merge`).
    Merge,
}

const TIMERS: [Timer; 6] =
    [Timer::TokenLoss, Timer::TokenRetransmit, Timer::Hold, Timer::Join, Timer::Consensus, Timer::Merge];

/// Absolute deadlines, one slot per [`Timer`].
#[derive(Clone, Debug, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; 6],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Removes and returns the earliest timer due at `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let (timer, _) = TIMERS
            .iter()
            .filter_map(|&t| self.get(t).filter(|&d| d <= now).map(|d| (t, d)))
            .min_by_key(|&(_, d)| d)?;
        self.stop(timer);
        Some(timer)
    }
}
