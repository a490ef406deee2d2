//! totem's driver for `benches compare` (`benches compare-worker`): one group member through
//! the `cpg` client, speaking the [`workload`] protocol on stdin/stdout. corosync's driver,
//! `benches/corosync-driver`, does the same through libcpg.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use cpg::client::{Cpg, CpgError};
use cpg::{CpgEvent, GroupName, Guarantee};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;
use workload::{wall_ns, Command, Recorder, Reply, RunSpec};

/// How long connecting, joining and seeing every member may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a reader with nothing delivered looks at the clock.
const TICK: Duration = Duration::from_millis(10);

/// Arguments of `benches compare-worker`.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The daemon's local API socket.
    #[arg(long)]
    socket: PathBuf,
    /// This member's number (its sender id in payloads).
    #[arg(long)]
    id: u32,
    /// Members the group has once every driver joined.
    #[arg(long)]
    members: usize,
}

/// Runs the driver until `quit` or end of input; a failure is reported as a [`Reply::Error`]
/// line too.
pub fn run(args: &WorkerArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = rt.block_on(serve(args));
    if let Err(e) = &result {
        println!("{}", workload::to_line(&Reply::Error { message: format!("{e:#}") }));
    }
    result
}

async fn serve(args: &WorkerArgs) -> Result<()> {
    let group = GroupName::try_from(workload::GROUP).expect("valid group name");
    let cpg = tokio::time::timeout(SETUP_TIMEOUT, setup(&args.socket, &group, args.members))
        .await
        .context("setup timed out")??;
    reply(&Reply::Ready { id: args.id });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match serde_json::from_str::<Command>(&line).with_context(|| format!("bad command {line:?}"))? {
            Command::Run(spec) => reply(&Reply::Run(run_load(&cpg, &group, spec, args.id).await?)),
            Command::Watch { timeout_ms } => {
                let at_ns = watch(&cpg, args.members, Duration::from_millis(timeout_ms)).await?;
                reply(&Reply::Changed { at_ns });
            }
            Command::Quit => break,
        }
    }
    Ok(())
}

fn reply(r: &Reply) {
    println!("{}", workload::to_line(r));
}

async fn setup(socket: &Path, group: &GroupName, members: usize) -> Result<Cpg> {
    let cpg = loop {
        match Cpg::connect(socket).await {
            Ok(cpg) => break cpg,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    cpg.join(group).await.context("join")?;
    loop {
        match cpg.next_event().await {
            Some(CpgEvent::Confchg(c)) if &c.group == group && c.members.len() >= members => return Ok(cpg),
            Some(_) => {}
            None => bail!("the daemon closed the connection"),
        }
    }
}

async fn run_load(cpg: &Cpg, group: &GroupName, spec: RunSpec, me: u32) -> Result<workload::RunResult> {
    let mut rec = Recorder::new(spec.clone(), me);
    // Set by the reader at every delivery: a sender told to try again goes on at once.
    let delivered = Notify::new();
    let sending = async {
        let mut send_rec = Recorder::new(spec.clone(), me);
        wait_until(spec.start_ns).await;
        loop {
            let now = wall_ns();
            if !send_rec.sending(now) {
                break;
            }
            if let Some(wait) = send_rec.wait_ns(now) {
                tokio::time::sleep(Duration::from_nanos(wait)).await;
                continue;
            }
            // Not `post`: it would wait for room with the payload stamped before the wait;
            // this waits as corosync's driver does and stamps the next try anew.
            let payload = Bytes::copy_from_slice(send_rec.payload(now));
            match cpg.try_post(group, Guarantee::Agreed, payload) {
                Ok(()) => send_rec.on_sent(now),
                Err(CpgError::TryAgain | CpgError::FencingInProgress) => {
                    let _ = tokio::time::timeout(workload::TRY_AGAIN_WAIT, delivered.notified()).await;
                }
                Err(e) => return Err(e).context("mcast"),
            }
        }
        anyhow::Ok(send_rec.result().sent)
    };
    let reading = async {
        loop {
            let event = tokio::time::timeout(TICK, cpg.next_event()).await;
            let now = wall_ns();
            match event {
                Ok(Some(CpgEvent::Deliver(m))) => {
                    rec.on_deliver(now, &m.data);
                    delivered.notify_one();
                }
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => bail!("the daemon closed the connection"),
            }
            if rec.finished(now) {
                return Ok(());
            }
        }
    };
    let (sent, ()) = tokio::try_join!(sending, reading)?;
    let mut result = rec.result();
    result.sent = sent;
    Ok(result)
}

async fn wait_until(ns: u64) {
    let now = wall_ns();
    if now < ns {
        tokio::time::sleep(Duration::from_nanos(ns - now)).await;
    }
}

/// When the group next has fewer than `members` members.
async fn watch(cpg: &Cpg, members: usize, timeout: Duration) -> Result<Option<u64>> {
    let wait = async {
        loop {
            match cpg.next_event().await {
                Some(CpgEvent::Confchg(c)) if c.members.len() < members => return Ok(wall_ns()),
                Some(_) => {}
                None => bail!("the daemon closed the connection"),
            }
        }
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(at) => at.map(Some),
        Err(_) => Ok(None),
    }
}
