//! What one measurement found, as a table row or JSON, and the payload that carries a send
//! time to the members.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Bytes of the send time at the start of every payload.
pub const TIMESTAMP_LEN: usize = 8;

/// A payload of `size` bytes (at least [`TIMESTAMP_LEN`]) starting with `sent` (nanoseconds of
/// the bench process's monotonic clock, little-endian).
pub fn encode_payload(sent: Duration, size: usize) -> Bytes {
    let nanos = u64::try_from(sent.as_nanos()).unwrap_or(u64::MAX);
    let mut v = Vec::with_capacity(size.max(TIMESTAMP_LEN));
    v.extend_from_slice(&nanos.to_le_bytes());
    v.resize(size.max(TIMESTAMP_LEN), 0xa5);
    Bytes::from(v)
}

/// The send time an [`encode_payload`] payload carries.
pub fn decode_timestamp(payload: &[u8]) -> Option<Duration> {
    let nanos = u64::from_le_bytes(payload.get(..TIMESTAMP_LEN)?.try_into().ok()?);
    Some(Duration::from_nanos(nanos))
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Latencies recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One measurement: a cluster size, a message size, a number of senders.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Row {
    /// Daemons in the ring.
    pub nodes: u32,
    /// Payload bytes per message.
    pub size: usize,
    /// Members sending (one client per node; node 1 first).
    pub senders: u32,
    /// `mcast` calls each sender keeps in flight.
    pub window: u32,
    /// `agreed` or `safe`.
    pub guarantee: String,
    /// Length of the measured window in seconds.
    pub seconds: f64,
    /// Messages delivered per second at each member, node 1 first.
    pub msgs_per_s: Vec<f64>,
    /// Messages the senders had sent (accepted by their daemon) in the window.
    pub sent: u64,
    /// Send-to-delivery latency over every member's deliveries in the window.
    pub latency_us: Percentiles,
    /// Longest time between two deliveries at any member in the window, in milliseconds.
    pub max_gap_ms: f64,
    /// Totem configuration changes seen by any member in the window (0 in a steady ring).
    pub rings: u64,
    /// Each daemon's resident memory before the load, KiB.
    pub rss_idle_kib: Vec<u64>,
    /// Each daemon's resident memory at the end of the load, KiB.
    pub rss_end_kib: Vec<u64>,
    /// CPU seconds used by all daemons together in the window.
    pub daemon_cpu_s: f64,
}

impl Row {
    /// Deliveries per second at the slowest member.
    pub fn msgs_per_s_min(&self) -> f64 {
        self.msgs_per_s.iter().copied().reduce(f64::min).unwrap_or(0.0)
    }

    /// Payload megabytes (10^6) per second at the slowest member.
    pub fn mb_per_s(&self) -> f64 {
        self.msgs_per_s_min() * self.size as f64 / 1e6
    }

    /// Daemon CPU seconds per million messages ordered (delivered at the slowest member).
    pub fn cpu_s_per_million(&self) -> Option<f64> {
        let messages = self.msgs_per_s_min() * self.seconds;
        (messages >= 1.0).then(|| self.daemon_cpu_s / messages * 1e6)
    }
}

const HEADER: [&str; 15] = [
    "nodes",
    "size",
    "snd",
    "win",
    "guar",
    "msgs/s",
    "MB/s",
    "p50 us",
    "p99 us",
    "p999 us",
    "max gap ms",
    "rings",
    "rss idle MiB",
    "rss end MiB",
    "cpu s/M msg",
];

/// The rows as an aligned text table, one line per row after a header.
pub fn format_table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(row_cells).collect();
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.len()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
    for line in std::iter::once(&header).chain(&cells) {
        let padded: Vec<String> = line.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect();
        let _ = writeln!(out, "{}", padded.join("  "));
    }
    out
}

fn row_cells(r: &Row) -> Vec<String> {
    vec![
        r.nodes.to_string(),
        r.size.to_string(),
        r.senders.to_string(),
        r.window.to_string(),
        r.guarantee.clone(),
        format!("{:.0}", r.msgs_per_s_min()),
        format!("{:.2}", r.mb_per_s()),
        r.latency_us.p50.to_string(),
        r.latency_us.p99.to_string(),
        r.latency_us.p999.to_string(),
        format!("{:.1}", r.max_gap_ms),
        r.rings.to_string(),
        mib_list(&r.rss_idle_kib),
        mib_list(&r.rss_end_kib),
        r.cpu_s_per_million().map_or_else(|| "-".into(), |c| format!("{c:.1}")),
    ]
}

/// KiB values as MiB with one decimal, joined by `/` (one per daemon).
fn mib_list(kib: &[u64]) -> String {
    let parts: Vec<String> = kib.iter().map(|k| format!("{:.1}", *k as f64 / 1024.0)).collect();
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_carries_its_send_time() {
        let sent = Duration::from_nanos(123_456_789_012);
        let p = encode_payload(sent, 64);
        assert_eq!(p.len(), 64);
        assert_eq!(decode_timestamp(&p), Some(sent));
        assert_eq!(encode_payload(sent, 3).len(), TIMESTAMP_LEN, "never shorter than the stamp");
        assert_eq!(decode_timestamp(b"short"), None);
    }

    #[test]
    fn percentiles_of_a_known_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!((p.count, p.p50, p.p99, p.p999, p.max), (1000, 500, 990, 999, 1000));
        assert_eq!(Percentiles::of(&Histogram::new(3).unwrap()), Percentiles::default());
    }

    #[test]
    fn table_has_one_aligned_line_per_row() {
        let row = Row {
            nodes: 2,
            size: 1024,
            senders: 1,
            window: 1,
            guarantee: "agreed".into(),
            seconds: 5.0,
            msgs_per_s: vec![20_000.0, 19_000.0],
            latency_us: Percentiles { count: 10, p50: 800, p99: 2500, p999: 9000, max: 12_000 },
            max_gap_ms: 3.26,
            rss_idle_kib: vec![10_240, 11_264],
            rss_end_kib: vec![20_480, 20_480],
            daemon_cpu_s: 4.75,
            ..Row::default()
        };
        let table = format_table(&[row.clone(), Row { nodes: 1, ..row }]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].split("  ").filter(|c| !c.is_empty()).count(), HEADER.len());
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "aligned:\n{table}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "2",
                "1024",
                "1",
                "1",
                "agreed",
                "19000",
                "19.46",
                "800",
                "2500",
                "9000",
                "3.3",
                "0",
                "10.0/11.0",
                "20.0/20.0",
                "50.0"
            ]
        );
    }
}
