//! The run's trace: a running hash over every event and, on demand, one readable line each.
//!
//! The hash (FNV-1a over 64-bit words) is what "same seed, same build, same run" is checked
//! against; the lines are only formatted when tracing is on, so a swarm pays for the hash alone.

use std::io::Write;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// What happened, as recorded in the trace.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TraceKind {
    /// A node handed a datagram to the network.
    Send = 1,
    /// A datagram reached a node.
    Arrive,
    /// A datagram was lost (cut, rule, loss, node down, socket buffer full).
    Drop,
    /// A datagram was queued in a paused node's socket buffer.
    Buffer,
    /// A node's timer fired.
    Timeout,
    /// The application submitted a message.
    Submit,
    /// The engine refused a message.
    SubmitRejected,
    /// A message was delivered.
    Deliver,
    /// A transitional configuration.
    Transitional,
    /// A regular configuration.
    Regular,
    /// The engine asked to persist its state.
    Persist,
    /// A node crashed.
    Crash,
    /// A node restarted.
    Restart,
    /// A node was paused.
    Pause,
    /// A node resumed.
    Resume,
    /// A change of the network or the load.
    Fault,
    /// A checker reported a violation.
    Violation,
    /// A CPG client's request (connect, join, leave, send, disconnect).
    CpgRequest,
    /// An event told to a CPG client.
    CpgEvent,
    /// votequorum's quorum event on a node.
    Quorum,
    /// Fencing: a fencer's event, an agent run, a power switch acting.
    Fence,
}

/// Where readable trace lines go.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum TraceOutput {
    /// Only the hash is kept.
    #[default]
    Off,
    /// Each line is printed to standard output as it happens.
    Stdout,
    /// Lines are kept in memory (see [`Trace::lines`]).
    Memory,
}

/// The trace of one run.
#[derive(Debug)]
pub struct Trace {
    hash: u64,
    events: u64,
    output: TraceOutput,
    lines: Vec<String>,
}

impl Trace {
    /// An empty trace.
    pub fn new(output: TraceOutput) -> Self {
        Trace { hash: FNV_OFFSET, events: 0, output, lines: Vec::new() }
    }

    /// Whether readable lines are produced.
    pub fn enabled(&self) -> bool {
        self.output != TraceOutput::Off
    }

    /// Records one event at virtual time `at_nanos` on `node` (0 for the cluster itself).
    /// `words` feed the hash; `line` is only called when tracing is on.
    pub fn record(
        &mut self,
        at_nanos: u64,
        node: u32,
        kind: TraceKind,
        words: &[u64],
        line: impl FnOnce() -> String,
    ) {
        self.mix(at_nanos);
        self.mix(u64::from(node) << 8 | kind as u64);
        for &w in words {
            self.mix(w);
        }
        self.events += 1;
        if self.output == TraceOutput::Off {
            return;
        }
        let who = if node == 0 { "  --".to_string() } else { format!("n{node:<3}") };
        let text = format!("{} {who} {}", format_time(at_nanos), line());
        match self.output {
            TraceOutput::Stdout => {
                let mut out = std::io::stdout().lock();
                // A closed pipe (e.g. `| head`) must not abort the run.
                let _ = writeln!(out, "{text}");
            }
            TraceOutput::Memory => self.lines.push(text),
            TraceOutput::Off => {}
        }
    }

    fn mix(&mut self, word: u64) {
        self.hash ^= word;
        self.hash = self.hash.wrapping_mul(FNV_PRIME);
    }

    /// The hash over every event so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Events recorded so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Lines kept with [`TraceOutput::Memory`].
    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

/// `seconds.nanoseconds`, right-aligned, e.g. `   12.000345678`.
pub fn format_time(nanos: u64) -> String {
    format!("{:>5}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_field_and_not_on_output() {
        let mut a = Trace::new(TraceOutput::Off);
        let mut b = Trace::new(TraceOutput::Memory);
        a.record(5, 1, TraceKind::Send, &[1, 2], || "x".into());
        b.record(5, 1, TraceKind::Send, &[1, 2], || "x".into());
        assert_eq!(a.hash(), b.hash());
        assert_eq!(b.lines().len(), 1);
        assert!(b.lines()[0].contains("n1"));
        let mut c = Trace::new(TraceOutput::Off);
        c.record(5, 1, TraceKind::Send, &[1, 3], || "x".into());
        assert_ne!(a.hash(), c.hash());
        let mut d = Trace::new(TraceOutput::Off);
        d.record(5, 2, TraceKind::Send, &[1, 2], || "x".into());
        assert_ne!(a.hash(), d.hash());
    }

    #[test]
    fn time_format_is_fixed_width() {
        assert_eq!(format_time(1_500_000_000), "    1.500000000");
    }
}
