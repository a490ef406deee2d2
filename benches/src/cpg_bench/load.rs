//! The load: one client per node, all in one group; the senders send as fast as the daemon
//! takes messages, every member counts its deliveries and, while the window is open, records
//! each message's send-to-delivery latency.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use cpg::client::Cpg;
use cpg::{CpgEvent, GroupName, Guarantee};
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::clock;
use super::report::{decode_timestamp, encode_payload};

/// How long connecting, joining and seeing every member may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a sender may take to finish its last message once told to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest latency the histograms hold, in microseconds (larger ones are clamped).
const LATENCY_MAX_US: u64 = 60_000_000;

/// What the load does.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The group every client joins.
    pub group: GroupName,
    /// Payload bytes.
    pub size: usize,
    /// Clients that send: those of nodes 1..=senders.
    pub senders: usize,
    /// Ordering of every message.
    pub guarantee: Guarantee,
    /// `mcast` calls each sender keeps in flight (tasks sharing its handle). With 1 a sender
    /// waits for each answer, like a single-threaded `cpg_mcast_joined` loop; more keep the
    /// daemon's queue full until it answers `TryAgain` (messages of one sender may then be
    /// sent out of their stamping order).
    pub window: usize,
    /// Each sender posts (`Cpg::post`, pipelined within the handle's window, in order).
    pub post: bool,
}

/// Counters of one member, shared with its reader task.
#[derive(Default)]
pub struct MemberCounters {
    /// Messages delivered to this member.
    pub delivered: AtomicU64,
    /// Totem configuration changes seen.
    pub rings: AtomicU64,
}

/// What a reader found while the window was open.
pub struct ReaderResult {
    /// Send-to-delivery latencies, microseconds.
    pub latency: Histogram<u64>,
    /// Longest time between two deliveries.
    pub max_gap: Duration,
}

/// Clients connected and joined, with their tasks running once [`Load::start`] is called.
pub struct Load {
    clients: Vec<Arc<Cpg>>,
    spec: LoadSpec,
    /// One per member, node 1 first.
    pub counters: Vec<Arc<MemberCounters>>,
    /// Messages sent (accepted by a daemon) by all senders.
    pub sent: Arc<AtomicU64>,
    recording: Arc<AtomicBool>,
    stop_sending: Arc<AtomicBool>,
    stop_reading: watch::Sender<bool>,
    readers: Vec<JoinHandle<Result<ReaderResult>>>,
    senders: Vec<JoinHandle<Result<()>>>,
}

impl Load {
    /// Connects one client to each socket, joins them all to the group and waits until each
    /// sees every member.
    pub async fn connect(sockets: &[PathBuf], spec: LoadSpec) -> Result<Load> {
        let mut clients = Vec::new();
        for socket in sockets {
            let cpg = connect(socket).await?;
            if cpg.message_max() < spec.size as u32 {
                bail!("the daemon takes messages up to {} bytes, not {}", cpg.message_max(), spec.size);
            }
            cpg.join(&spec.group).await.context("join")?;
            clients.push(Arc::new(cpg));
        }
        for (i, c) in clients.iter().enumerate() {
            tokio::time::timeout(SETUP_TIMEOUT, all_members(c, &spec.group, sockets.len()))
                .await
                .with_context(|| format!("member {} did not see all {} members", i + 1, sockets.len()))??;
        }
        let (stop_reading, _) = watch::channel(false);
        Ok(Load {
            counters: clients.iter().map(|_| Arc::default()).collect(),
            clients,
            spec,
            sent: Arc::default(),
            recording: Arc::default(),
            stop_sending: Arc::default(),
            stop_reading,
            readers: Vec::new(),
            senders: Vec::new(),
        })
    }

    /// Starts a reader per member and the sender tasks.
    pub fn start(&mut self) {
        for (c, counters) in self.clients.iter().zip(&self.counters) {
            let reader =
                read(c.clone(), counters.clone(), self.recording.clone(), self.stop_reading.subscribe());
            self.readers.push(tokio::spawn(reader));
        }
        let senders = self.clients.iter().take(self.spec.senders);
        for c in senders.flat_map(|c| std::iter::repeat_n(c, self.spec.window.max(1))) {
            let sender = send(c.clone(), self.spec.clone(), self.sent.clone(), self.stop_sending.clone());
            self.senders.push(tokio::spawn(sender));
        }
    }

    /// Opens or closes the measured window: latencies and gaps are recorded while it is open.
    pub fn set_recording(&self, on: bool) {
        self.recording.store(on, Ordering::SeqCst);
    }

    /// Stops the senders, then the readers; what each reader recorded, node 1 first.
    pub async fn stop(mut self) -> Result<Vec<ReaderResult>> {
        self.stop_sending.store(true, Ordering::SeqCst);
        for (i, s) in self.senders.drain(..).enumerate() {
            tokio::time::timeout(STOP_TIMEOUT, s)
                .await
                .with_context(|| format!("sender task {} did not stop", i + 1))?
                .context("sender task")?
                .with_context(|| format!("sender task {}", i + 1))?;
        }
        let _ = self.stop_reading.send(true);
        let mut out = Vec::new();
        for (i, r) in self.readers.drain(..).enumerate() {
            out.push(r.await.context("reader task")?.with_context(|| format!("member {}", i + 1))?);
        }
        Ok(out)
    }
}

/// Connects, retrying while the daemon's socket is not there yet.
async fn connect(socket: &Path) -> Result<Cpg> {
    let deadline = clock() + SETUP_TIMEOUT;
    loop {
        match Cpg::connect(socket).await {
            Ok(cpg) => return Ok(cpg),
            Err(e) if clock() >= deadline => {
                return Err(e).with_context(|| format!("connect to {}", socket.display()))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Reads events until a configuration change of `group` lists `n` members.
async fn all_members(cpg: &Cpg, group: &GroupName, n: usize) -> Result<()> {
    loop {
        match cpg.next_event().await {
            Some(CpgEvent::Confchg(c)) if &c.group == group && c.members.len() == n => return Ok(()),
            Some(_) => {}
            None => bail!("connection closed"),
        }
    }
}

async fn send(cpg: Arc<Cpg>, spec: LoadSpec, sent: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Result<()> {
    while !stop.load(Ordering::Relaxed) {
        // Stamped before `mcast`, so time spent waiting out a TryAgain counts as latency.
        let payload = encode_payload(clock_since_epoch(), spec.size);
        if spec.post {
            cpg.post(&spec.group, spec.guarantee, payload).await.context("post")?;
        } else {
            cpg.mcast(&spec.group, spec.guarantee, payload).await.context("mcast")?;
        }
        sent.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

async fn read(
    cpg: Arc<Cpg>,
    counters: Arc<MemberCounters>,
    recording: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) -> Result<ReaderResult> {
    let mut latency = Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds");
    let mut max_gap = Duration::ZERO;
    let mut last = clock();
    loop {
        let event = tokio::select! {
            _ = stop.changed() => break,
            event = cpg.next_event() => event,
        };
        let now = clock();
        match event {
            Some(CpgEvent::Deliver(m)) => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                if recording.load(Ordering::Relaxed) {
                    if let Some(sent) = decode_timestamp(&m.data) {
                        let us = now_since_epoch(now).saturating_sub(sent).as_micros();
                        latency.saturating_record(u64::try_from(us).unwrap_or(u64::MAX).max(1));
                    }
                    max_gap = max_gap.max(now - last);
                }
                last = now;
            }
            Some(CpgEvent::Totem(_)) => {
                counters.rings.fetch_add(1, Ordering::Relaxed);
            }
            Some(CpgEvent::Confchg(_)) => {}
            None => bail!("the daemon closed the connection"),
        }
    }
    Ok(ReaderResult { latency, max_gap })
}

/// The process's monotonic clock as time since its first reading (what payloads carry).
fn clock_since_epoch() -> Duration {
    now_since_epoch(clock())
}

fn now_since_epoch(now: std::time::Instant) -> Duration {
    now.duration_since(super::epoch())
}
