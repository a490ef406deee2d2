//! CPG throughput and latency through real daemons (`benches cpg`).
//!
//! For each row (nodes × size × senders) a fresh cluster is started ([`cluster`]), one client
//! per node joins one group, the senders send as fast as flow control allows and every member
//! counts its deliveries ([`load`]). After a warm-up, a window of `seconds` is measured:
//! deliveries per second at each member, send-to-delivery latency (every payload carries its
//! send time from this process's monotonic clock; all clients live here), the daemons' CPU
//! time ([`procfs`]) and their resident memory before and at the end of the load. The cluster
//! is stopped and its directories removed after each row, even on error.

pub mod cluster;
pub mod load;
pub mod procfs;
pub mod report;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;
use cpg::{GroupName, Guarantee};
use hdrhistogram::Histogram;

use cluster::{Cluster, ClusterSpec};
use load::{Load, LoadSpec};
use report::{Percentiles, Row};

/// How long the ring may take to form (token 1000 ms: a few seconds at most).
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// What the daemons' `--run-for` adds to the expected length of a row: they stop by
/// themselves if this process dies, never during a row.
const RUN_FOR_MARGIN: Duration = Duration::from_secs(300);

/// One row to measure.
#[derive(Clone, Debug)]
pub struct RowSpec {
    /// The `totemd` binary.
    pub binary: PathBuf,
    /// Daemons.
    pub nodes: u32,
    /// Payload bytes.
    pub size: usize,
    /// Sending members (at most `nodes`).
    pub senders: u32,
    /// `mcast` calls in flight per sender (see [`LoadSpec::window`]).
    pub window: u32,
    /// Senders post instead of calling `mcast` (see [`LoadSpec::post`]).
    pub post: bool,
    /// Safe instead of agreed delivery.
    pub safe: bool,
    /// `--token`, milliseconds.
    pub token_ms: u64,
    /// Load before the window, not counted.
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
}

/// A row's figures and what the daemons logged at WARN or ERROR.
pub struct Measured {
    /// The figures.
    pub row: Row,
    /// The daemons' warnings and errors during the row.
    pub warnings: Vec<String>,
}

/// Starts a cluster, runs the load and stops the cluster (always, also on error).
pub fn measure_row(rt: &tokio::runtime::Runtime, spec: &RowSpec) -> Result<Measured> {
    let cluster = Cluster::start(&ClusterSpec {
        binary: spec.binary.clone(),
        nodes: spec.nodes,
        token_ms: spec.token_ms,
        run_for: spec.warmup + spec.measure + RUN_FOR_MARGIN,
        form_timeout: FORM_TIMEOUT,
    })?;
    let row = rt.block_on(run_load(&cluster, spec)).map_err(|e| {
        let what = format!("{} nodes, {} bytes, {} senders", spec.nodes, spec.size, spec.senders);
        anyhow::anyhow!("{what}: {e:#}\ndaemon logs:\n{}", cluster.logs())
    })?;
    let warnings = cluster.warnings();
    cluster.stop()?;
    Ok(Measured { row, warnings })
}

async fn run_load(cluster: &Cluster, spec: &RowSpec) -> Result<Row> {
    let _ = epoch(); // before any payload is stamped
    let pids = cluster.pids();
    let user_hz = procfs::user_hz();
    let sockets: Vec<PathBuf> = (1..=spec.nodes).map(|id| cluster.socket(id)).collect();
    let guarantee = if spec.safe { Guarantee::Safe } else { Guarantee::Agreed };
    let group = GroupName::try_from("bench").expect("valid group name");
    let load_spec = LoadSpec {
        group,
        size: spec.size,
        senders: spec.senders as usize,
        guarantee,
        window: if spec.post { 1 } else { spec.window as usize },
        post: spec.post,
    };
    let mut load = Load::connect(&sockets, load_spec).await?;
    let rss_idle_kib = rss(&pids);

    load.start();
    tokio::time::sleep(spec.warmup).await;
    let (delivered0, rings0, cpu0, sent0) =
        (delivered(&load), rings(&load), cpu(&pids, user_hz), load.sent.load(Ordering::Relaxed));
    let t0 = clock();
    load.set_recording(true);
    tokio::time::sleep(spec.measure).await;
    load.set_recording(false);
    let elapsed = clock() - t0;
    let (delivered1, rings1, cpu1, sent1) =
        (delivered(&load), rings(&load), cpu(&pids, user_hz), load.sent.load(Ordering::Relaxed));
    let rss_end_kib = rss(&pids);
    let readers = load.stop().await?;

    let mut latency = Histogram::<u64>::new(3).expect("valid histogram");
    for r in &readers {
        latency.add(&r.latency).expect("histograms of the same bounds");
    }
    let seconds = elapsed.as_secs_f64();
    Ok(Row {
        nodes: spec.nodes,
        size: spec.size,
        senders: spec.senders,
        window: if spec.post { 0 } else { spec.window },
        guarantee: if spec.safe { "safe" } else { "agreed" }.into(),
        seconds,
        msgs_per_s: delivered0.iter().zip(&delivered1).map(|(a, b)| (b - a) as f64 / seconds).collect(),
        sent: sent1 - sent0,
        latency_us: Percentiles::of(&latency),
        max_gap_ms: readers.iter().map(|r| r.max_gap.as_secs_f64() * 1e3).fold(0.0, f64::max),
        rings: rings1 - rings0,
        rss_idle_kib,
        rss_end_kib,
        daemon_cpu_s: (cpu1 - cpu0).as_secs_f64(),
    })
}

fn delivered(load: &Load) -> Vec<u64> {
    load.counters.iter().map(|c| c.delivered.load(Ordering::Relaxed)).collect()
}

fn rings(load: &Load) -> u64 {
    load.counters.iter().map(|c| c.rings.load(Ordering::Relaxed)).sum()
}

fn rss(pids: &[u32]) -> Vec<u64> {
    pids.iter().map(|&p| procfs::rss_kib(p).unwrap_or(0)).collect()
}

/// CPU time of all the daemons together.
fn cpu(pids: &[u32], user_hz: u64) -> Duration {
    pids.iter().filter_map(|&p| procfs::cpu_time(p, user_hz)).sum()
}

/// The OS's monotonic clock. (The sans-IO rule is for the engine; this bench measures real
/// processes.)
#[allow(clippy::disallowed_methods)]
pub fn clock() -> std::time::Instant {
    std::time::Instant::now()
}

/// The instant payload timestamps count from: the first time it is asked for.
pub fn epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(clock)
}
