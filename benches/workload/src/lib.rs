//! The load `benches compare` puts on a cluster, shared by both of its drivers (totem's, in
//! the `benches` binary, and corosync's, in `benches/corosync-driver`) so that both systems
//! see exactly the same messages and are measured by exactly the same code.
//!
//! A driver is one process per group member. It connects to its node's daemon, joins
//! [`GROUP`], waits until the group has the expected members and prints a [`Reply::Ready`]
//! line. It then reads one [`Command`] per line on stdin and answers each with one [`Reply`]
//! line on stdout (JSON), until [`Command::Quit`] or end of input.
//!
//! A [`Command::Run`] names an absolute start time on the wall clock, the same for every
//! driver of the cluster: all senders start together, warm up, then a window is measured
//! ([`Recorder`]). Payloads carry their send time ([`encode_payload`]) read from the
//! realtime clock, which every process on the host shares, so the latency of a message sent
//! on one node and delivered on the other is measured too.
#![forbid(unsafe_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The group every driver joins.
pub const GROUP: &str = "compare";

/// Payload bytes before the filler: send time (8, little-endian nanoseconds) and sender (4).
pub const HEADER_LEN: usize = 12;

/// Largest latency the histograms hold, in microseconds (larger ones are clamped).
pub const LATENCY_MAX_US: u64 = 60_000_000;

/// How long a sender told to try again (the daemon's queue is full) waits at most before it
/// tries again; it tries at once when a message is delivered to its member first. Both drivers
/// follow this rule, the loop of corosync's cpgbench.
pub const TRY_AGAIN_WAIT: Duration = Duration::from_millis(1);

/// How long a driver keeps dispatching after a run's window closes, so that the next run
/// starts from a quiet ring; it stops earlier once nothing was delivered for [`DRAIN_IDLE`].
pub const DRAIN_MAX: Duration = Duration::from_secs(5);

/// See [`DRAIN_MAX`].
pub const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// Nanoseconds since the Unix epoch on the realtime clock: the one clock every process on
/// this host reads alike, whatever its namespaces.
#[allow(clippy::disallowed_methods)]
pub fn wall_ns() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

/// Writes into `buf` a payload of `size` bytes (at least [`HEADER_LEN`]) carrying `sent_ns`
/// and `sender`; the filler is the same for both systems.
pub fn encode_payload(buf: &mut Vec<u8>, sent_ns: u64, sender: u32, size: usize) {
    buf.clear();
    buf.extend_from_slice(&sent_ns.to_le_bytes());
    buf.extend_from_slice(&sender.to_le_bytes());
    buf.resize(size.max(HEADER_LEN), 0xa5);
}

/// The send time and sender of an [`encode_payload`] payload.
pub fn decode_payload(payload: &[u8]) -> Option<(u64, u32)> {
    let sent = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let sender = u32::from_le_bytes(payload.get(8..HEADER_LEN)?.try_into().ok()?);
    Some((sent, sender))
}

/// What the orchestrator asks a driver to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Send (if `send`) and count deliveries; answered with [`Reply::Run`].
    Run(RunSpec),
    /// Wait for the group to lose a member (the orchestrator then kills a node); answered with
    /// [`Reply::Changed`].
    Watch {
        /// Give up after this many milliseconds.
        timeout_ms: u64,
    },
    /// Leave and exit.
    Quit,
}

/// One run of load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Payload bytes.
    pub size: usize,
    /// Whether this driver sends.
    pub send: bool,
    /// When sending starts, [`wall_ns`].
    pub start_ns: u64,
    /// Load before the window, not counted.
    pub warmup_ms: u64,
    /// The measured window.
    pub measure_ms: u64,
    /// Messages per second a sender sends, on a fixed schedule from `start_ns` (a late sender
    /// catches up); 0 = as fast as the daemon takes them.
    #[serde(default)]
    pub rate: u32,
}

impl RunSpec {
    /// When the window opens.
    pub fn window_start_ns(&self) -> u64 {
        self.start_ns + self.warmup_ms * 1_000_000
    }

    /// When the window closes and senders stop.
    pub fn end_ns(&self) -> u64 {
        self.window_start_ns() + self.measure_ms * 1_000_000
    }
}

/// What a driver answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Joined; the group has every expected member.
    Ready {
        /// This driver's member id (its sender number in payloads).
        id: u32,
    },
    /// A run's figures.
    Run(RunResult),
    /// The group lost a member at `at_ns` ([`wall_ns`]), or not within the timeout (`None`).
    Changed {
        /// When the configuration change was delivered.
        at_ns: Option<u64>,
    },
    /// The driver failed; it exits after this.
    Error {
        /// Why.
        message: String,
    },
}

/// What one member saw in a run's window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Messages delivered to this member in the window.
    pub delivered: u64,
    /// Messages this member sent (accepted by its daemon) in the window.
    pub sent: u64,
    /// Length of the window in seconds.
    pub seconds: f64,
    /// Latency of this member's own messages, as `(microseconds, count)` pairs.
    pub own_us: Vec<(u64, u64)>,
    /// Latency of the other members' messages.
    pub other_us: Vec<(u64, u64)>,
}

/// Where a run is at a given time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the start: wait.
    Before,
    /// Sending, not counted.
    Warmup,
    /// Sending and counted.
    Window,
    /// Senders stop; deliveries drain.
    Done,
}

/// Counts one member's deliveries and sends over a run: the single place both drivers
/// decide what is measured.
pub struct Recorder {
    spec: RunSpec,
    me: u32,
    delivered: u64,
    sent: u64,
    /// Sends in every phase (the pacing schedule's position).
    attempts: u64,
    own: Histogram<u64>,
    other: Histogram<u64>,
    last_delivery_ns: u64,
    buf: Vec<u8>,
}

impl Recorder {
    /// A recorder for member `me` running `spec`.
    pub fn new(spec: RunSpec, me: u32) -> Recorder {
        let hist = || Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds");
        Recorder {
            spec,
            me,
            delivered: 0,
            sent: 0,
            attempts: 0,
            own: hist(),
            other: hist(),
            last_delivery_ns: 0,
            buf: Vec::new(),
        }
    }

    /// The run.
    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    /// The phase at `now_ns`.
    pub fn phase(&self, now_ns: u64) -> Phase {
        if now_ns < self.spec.start_ns {
            Phase::Before
        } else if now_ns < self.spec.window_start_ns() {
            Phase::Warmup
        } else if now_ns < self.spec.end_ns() {
            Phase::Window
        } else {
            Phase::Done
        }
    }

    /// Whether this driver sends in this phase (it may have to wait for its slot, see
    /// [`wait_ns`](Self::wait_ns)).
    pub fn sending(&self, now_ns: u64) -> bool {
        self.spec.send && matches!(self.phase(now_ns), Phase::Warmup | Phase::Window)
    }

    /// Whether this driver should send at `now_ns`: sending, and its slot has come.
    pub fn should_send(&self, now_ns: u64) -> bool {
        self.sending(now_ns) && self.wait_ns(now_ns).is_none()
    }

    /// With a rate: how long until the next message's slot, `None` when it has come.
    pub fn wait_ns(&self, now_ns: u64) -> Option<u64> {
        if self.spec.rate == 0 {
            return None;
        }
        let slot = self.spec.start_ns + self.attempts * 1_000_000_000 / u64::from(self.spec.rate);
        (slot > now_ns).then(|| slot - now_ns)
    }

    /// The next payload, stamped `now_ns`.
    pub fn payload(&mut self, now_ns: u64) -> &[u8] {
        encode_payload(&mut self.buf, now_ns, self.me, self.spec.size);
        &self.buf
    }

    /// A payload stamped at `stamped_ns` was accepted by the daemon.
    pub fn on_sent(&mut self, stamped_ns: u64) {
        self.attempts += 1;
        if self.phase(stamped_ns) == Phase::Window {
            self.sent += 1;
        }
    }

    /// `payload` was delivered at `now_ns`.
    pub fn on_deliver(&mut self, now_ns: u64, payload: &[u8]) {
        self.last_delivery_ns = now_ns;
        if self.phase(now_ns) != Phase::Window {
            return;
        }
        self.delivered += 1;
        if let Some((sent_ns, sender)) = decode_payload(payload) {
            let us = (now_ns.saturating_sub(sent_ns) / 1000).max(1);
            let h = if sender == self.me { &mut self.own } else { &mut self.other };
            h.saturating_record(us);
        }
    }

    /// Whether the run is over at `now_ns`: the window closed and deliveries drained (none
    /// for [`DRAIN_IDLE`], or [`DRAIN_MAX`] passed).
    pub fn finished(&self, now_ns: u64) -> bool {
        let end = self.spec.end_ns();
        now_ns >= end
            && (now_ns.saturating_sub(self.last_delivery_ns.max(end)) >= DRAIN_IDLE.as_nanos() as u64
                || now_ns - end >= DRAIN_MAX.as_nanos() as u64)
    }

    /// The figures.
    pub fn result(&self) -> RunResult {
        RunResult {
            delivered: self.delivered,
            sent: self.sent,
            seconds: self.spec.measure_ms as f64 / 1e3,
            own_us: pairs(&self.own),
            other_us: pairs(&self.other),
        }
    }
}

/// A histogram as `(value, count)` pairs of its recorded values.
pub fn pairs(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
}

/// A histogram of [`pairs`] (several merged).
pub fn histogram<'a>(parts: impl IntoIterator<Item = &'a [(u64, u64)]>) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds");
    for part in parts {
        for &(v, n) in part {
            h.saturating_record_n(v, n);
        }
    }
    h
}

/// One line of the protocol.
pub fn to_line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("protocol values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        RunSpec { size: 64, send: true, start_ns: 1_000_000_000, warmup_ms: 100, measure_ms: 1000, rate: 0 }
    }

    #[test]
    fn payload_carries_time_and_sender() {
        let mut buf = Vec::new();
        encode_payload(&mut buf, 123_456_789, 7, 64);
        assert_eq!(buf.len(), 64);
        assert_eq!(decode_payload(&buf), Some((123_456_789, 7)));
        encode_payload(&mut buf, 1, 2, 3);
        assert_eq!(buf.len(), HEADER_LEN, "never shorter than the header");
        assert_eq!(decode_payload(b"short"), None);
    }

    #[test]
    fn only_the_window_counts() {
        let mut r = Recorder::new(spec(), 1);
        let window = spec().window_start_ns();
        let mut other = Vec::new();
        encode_payload(&mut other, window, 2, 64);
        assert_eq!(r.phase(0), Phase::Before);
        assert!(!r.should_send(0));
        assert!(r.should_send(spec().start_ns));
        let own = r.payload(window).to_vec();
        r.on_deliver(window - 1, &own); // warm-up: not counted
        r.on_sent(window - 1);
        r.on_deliver(window + 2_000_000, &own);
        r.on_deliver(window + 5_000_000, &other);
        r.on_sent(window);
        r.on_deliver(spec().end_ns(), &own); // closed
        let res = r.result();
        assert_eq!((res.delivered, res.sent), (2, 1));
        assert_eq!(res.own_us.iter().map(|p| p.1).sum::<u64>(), 1);
        let own_hist = histogram([res.own_us.as_slice()]);
        assert!((1999..=2001).contains(&own_hist.value_at_quantile(0.5)), "{}", own_hist.max());
        assert_eq!(histogram([res.other_us.as_slice()]).len(), 1);
    }

    #[test]
    fn a_paced_sender_keeps_its_schedule_and_catches_up() {
        let spec = RunSpec { rate: 1000, ..spec() };
        let start = spec.start_ns;
        let mut r = Recorder::new(spec, 1);
        assert!(r.should_send(start));
        r.on_sent(start);
        assert_eq!(r.wait_ns(start + 400_000), Some(600_000), "the next slot is 1 ms after the first");
        assert!(!r.should_send(start + 400_000) && r.sending(start + 400_000));
        // Late by 3 slots: three sends at once, then wait again.
        let late = start + 3_500_000;
        for _ in 0..3 {
            assert!(r.should_send(late));
            r.on_sent(late);
        }
        assert_eq!(r.wait_ns(late), Some(500_000));
        assert_eq!(Recorder::new(self::spec(), 1).wait_ns(start), None, "rate 0: never waits");
    }

    #[test]
    fn a_run_finishes_once_deliveries_drain() {
        let mut r = Recorder::new(spec(), 1);
        let end = spec().end_ns();
        assert!(!r.finished(end - 1));
        let idle = DRAIN_IDLE.as_nanos() as u64;
        r.on_deliver(end + 10, b"late message");
        assert!(!r.finished(end + idle));
        assert!(r.finished(end + 10 + idle));
    }

    #[test]
    fn protocol_lines_round_trip() {
        for c in [Command::Run(spec()), Command::Watch { timeout_ms: 5 }, Command::Quit] {
            assert_eq!(serde_json::from_str::<Command>(&to_line(&c)).unwrap(), c);
        }
        let r = Reply::Run(RunResult { delivered: 3, own_us: vec![(5, 2)], ..RunResult::default() });
        assert_eq!(serde_json::from_str::<Reply>(&to_line(&r)).unwrap(), r);
    }
}
