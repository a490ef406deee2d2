//! corosync's driver for `benches compare`: one CPG member through libcpg, doing exactly what
//! totem's driver (`benches compare-worker`) does through the `cpg` crate, with the shared
//! [`workload`] code deciding what is sent and what is measured.
//!
//! libcpg calls plain function pointers, so what a callback updates lives in thread-local
//! state; everything runs on the one thread that calls `cpg::dispatch`. A sender works like
//! corosync's own cpgbench: `cpg_mcast_joined` in a loop, and on `CS_ERR_TRY_AGAIN` it
//! dispatches (waiting for the fd up to [`workload::TRY_AGAIN_WAIT`]) and tries again.

use std::cell::RefCell;
use std::io::BufRead;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use rust_corosync::cpg;
use rust_corosync::{CsError, DispatchFlags, NodeId};
use workload::{to_line, wall_ns, Command, Recorder, Reply, RunResult, RunSpec};

/// How long a reader waits for the fd before looking at the clock.
const TICK_MS: i32 = 10;

/// How long connecting, joining and seeing every member may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Parser)]
#[command(about = "corosync's CPG driver for `benches compare` (speaks the workload protocol)")]
struct Args {
    /// This member's number (its sender id in payloads).
    #[arg(long)]
    id: u32,
    /// Members the group has once every driver joined.
    #[arg(long)]
    members: usize,
}

/// What the callbacks update.
#[derive(Default)]
struct State {
    /// Members after the last configuration change of the group.
    members: usize,
    /// When the group last lost a member.
    shrunk_at: Option<u64>,
    /// The run in progress.
    recorder: Option<Recorder>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn on_deliver(_: &cpg::Handle, _group: String, _node: NodeId, _pid: u32, msg: &[u8], _len: usize) {
    let now = wall_ns();
    STATE.with_borrow_mut(|s| {
        if let Some(r) = s.recorder.as_mut() {
            r.on_deliver(now, msg);
        }
    });
}

fn on_confchg(
    _: &cpg::Handle,
    _group: &str,
    members: Vec<cpg::Address>,
    left: Vec<cpg::Address>,
    _joined: Vec<cpg::Address>,
) {
    let now = wall_ns();
    STATE.with_borrow_mut(|s| {
        s.members = members.len();
        if !left.is_empty() {
            s.shrunk_at = Some(now);
        }
    });
}

fn main() {
    let args = Args::parse();
    if let Err(e) = serve(&args) {
        println!("{}", to_line(&Reply::Error { message: format!("{e:#}") }));
        std::process::exit(1);
    }
}

fn serve(args: &Args) -> Result<()> {
    let handle = setup(args.members)?;
    println!("{}", to_line(&Reply::Ready { id: args.id }));
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        match serde_json::from_str::<Command>(&line).with_context(|| format!("bad command {line:?}"))? {
            Command::Run(spec) => {
                let result = run_load(&handle, spec, args.id)?;
                println!("{}", to_line(&Reply::Run(result)));
            }
            Command::Watch { timeout_ms } => {
                let at_ns = watch(&handle, Duration::from_millis(timeout_ms))?;
                println!("{}", to_line(&Reply::Changed { at_ns }));
            }
            Command::Quit => break,
        }
    }
    let _ = cpg::finalize(&handle);
    Ok(())
}

fn cs(what: &str, e: CsError) -> anyhow::Error {
    anyhow::anyhow!("{what}: {e}")
}

fn setup(members: usize) -> Result<cpg::Handle> {
    let model = cpg::ModelData::ModelV1(cpg::Model1Data {
        flags: cpg::Model1Flags::None,
        deliver_fn: Some(on_deliver),
        confchg_fn: Some(on_confchg),
        totem_confchg_fn: None,
    });
    let deadline = wall_ns() + SETUP_TIMEOUT.as_nanos() as u64;
    let handle = loop {
        match cpg::initialize(&model, 0) {
            Ok(h) => break h,
            Err(e) if wall_ns() > deadline => return Err(cs("cpg_initialize", e)),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    cpg::join(&handle, workload::GROUP).map_err(|e| cs("cpg_join", e))?;
    while STATE.with_borrow(|s| s.members) < members {
        if wall_ns() > deadline {
            bail!("the group did not reach {members} members within {SETUP_TIMEOUT:?}");
        }
        wait_fd(&handle, TICK_MS)?;
        cpg::dispatch(&handle, DispatchFlags::All).map_err(|e| cs("cpg_dispatch", e))?;
    }
    STATE.with_borrow_mut(|s| s.shrunk_at = None);
    Ok(handle)
}

/// Waits until the daemon's fd is readable or `ms` passed.
fn wait_fd(handle: &cpg::Handle, ms: i32) -> Result<()> {
    let fd = cpg::fd_get(handle).map_err(|e| cs("cpg_fd_get", e))?;
    // The fd belongs to libcpg and stays open while the handle lives, longer than this call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
    let timeout = rustix::event::Timespec { tv_sec: 0, tv_nsec: i64::from(ms) * 1_000_000 };
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(e).context("poll"),
    }
}

fn run_load(handle: &cpg::Handle, spec: RunSpec, me: u32) -> Result<RunResult> {
    let mut sender = Recorder::new(spec.clone(), me);
    STATE.with_borrow_mut(|s| s.recorder = Some(Recorder::new(spec.clone(), me)));
    loop {
        let now = wall_ns();
        if sender.should_send(now) {
            match cpg::mcast_joined(handle, cpg::Guarantee::TypeAgreed, sender.payload(now)) {
                Ok(()) => sender.on_sent(now),
                Err(CsError::CsErrTryAgain) => wait_fd(handle, workload::TRY_AGAIN_WAIT.as_millis() as i32)?,
                Err(e) => return Err(cs("cpg_mcast_joined", e)),
            }
        } else {
            if STATE.with_borrow(|s| s.recorder.as_ref().is_some_and(|r| r.finished(now))) {
                break;
            }
            // A paced sender waits for its slot (whole milliseconds, as totem's driver's timer).
            let slot_ms = sender.wait_ns(now).map(|ns| ns.div_ceil(1_000_000));
            let wait_ms = slot_ms.map_or(TICK_MS, |ms| ms.clamp(1, TICK_MS as u64) as i32);
            wait_fd(handle, wait_ms)?;
        }
        cpg::dispatch(handle, DispatchFlags::All).map_err(|e| cs("cpg_dispatch", e))?;
    }
    let recorder = STATE.with_borrow_mut(|s| s.recorder.take()).expect("recorder set above");
    let mut result = recorder.result();
    result.sent = sender.result().sent;
    Ok(result)
}

fn watch(handle: &cpg::Handle, timeout: Duration) -> Result<Option<u64>> {
    let deadline = wall_ns() + timeout.as_nanos() as u64;
    while wall_ns() < deadline {
        if let Some(at) = STATE.with_borrow(|s| s.shrunk_at) {
            return Ok(Some(at));
        }
        wait_fd(handle, TICK_MS)?;
        // A dead daemon makes dispatch fail: the change, if any, was already seen.
        if cpg::dispatch(handle, DispatchFlags::All).is_err() {
            break;
        }
    }
    Ok(STATE.with_borrow(|s| s.shrunk_at))
}
