//! `totemd`: one Totem node over UDP.
//!
//! With no `--peer` it runs a one-node cluster on 127.0.0.1. For a multi-node demo on one
//! host, start one daemon per node with its own `--state-dir`, `--nodeid` and `--bind` port
//! and `--peer ID=ADDR` for every other node.
//!
//! Exit status: 0 after a clean stop (SIGINT, SIGTERM, `--run-for`), 2 for a bad command line,
//! bad configuration or a corrupt state file, 1 for any other failure.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use totem::{NodeId, TotemConfig};
use totemd::state::StateError;
use totemd::{runtime, ConfigError, DaemonConfig, StateDir};
use tracing_subscriber::EnvFilter;

/// One Totem node over UDP (udpu style: unicast to every peer).
#[derive(Debug, Parser)]
#[command(name = "totemd", version, about)]
struct Args {
    /// Directory for the lock file and the persisted ring seq; created if missing.
    #[arg(long, value_name = "DIR", default_value = "./totemd-state")]
    state_dir: PathBuf,
    /// This node's id (nonzero).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    nodeid: u32,
    /// UDP address to bind; other nodes send here.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5405")]
    bind: SocketAddr,
    /// Another node and its address, e.g. `--peer 2=127.0.0.1:5406`; repeat for each node.
    #[arg(long = "peer", value_name = "ID=ADDR", value_parser = parse_peer)]
    peers: Vec<(NodeId, SocketAddr)>,
    /// Token timeout in milliseconds (corosync `token`); consensus is 1.2 × token.
    #[arg(long, value_name = "MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..))]
    token: u64,
    /// Stop cleanly after this many seconds (tests, demos).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    run_for: Option<Duration>,
}

fn parse_peer(s: &str) -> Result<(NodeId, SocketAddr), String> {
    let (id, addr) = s.split_once('=').ok_or("expected ID=ADDR, e.g. 2=127.0.0.1:5406")?;
    let id: u32 = id.trim().parse().map_err(|_| format!("node id {id:?} is not a number"))?;
    if id == 0 {
        return Err("node id 0 is not valid".into());
    }
    let addr = addr.trim().parse().map_err(|_| format!("{addr:?} is not an IP:PORT address"))?;
    Ok((NodeId(id), addr))
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration in seconds"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("totemd: error: {e:#}");
            exit_code(&e)
        }
    }
}

fn init_logging() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("totemd: ignoring RUST_LOG={spec:?} ({e}); logging at info");
            EnvFilter::new("info")
        }),
        Err(_) => EnvFilter::new("info"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn exit_code(e: &anyhow::Error) -> ExitCode {
    let bad_input = e.downcast_ref::<ConfigError>().is_some()
        || matches!(e.downcast_ref::<StateError>(), Some(StateError::Corrupt { .. }));
    ExitCode::from(if bad_input { 2 } else { 1 })
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut config = DaemonConfig::new(NodeId(args.nodeid), args.bind, args.state_dir);
    config.totem = TotemConfig::with_token(Duration::from_millis(args.token));
    config.run_for = args.run_for;
    tracing::info!(
        "totemd {} starting: node id {}, bind {}, state dir {}",
        env!("CARGO_PKG_VERSION"),
        config.node_id,
        config.bind,
        config.state_dir.display()
    );
    config.add_nodes(args.peers)?;
    config.validate()?;
    tracing::info!(
        "peers {}{}; token {} ms, consensus {} ms",
        config.peers,
        if config.peers.is_empty() { " (one-node cluster)" } else { "" },
        config.totem.token.as_millis(),
        config.totem.consensus.as_millis()
    );

    let mut state = StateDir::open(&config.state_dir)?;
    tracing::info!("state dir {} (locked by pid {})", state.path().display(), std::process::id());
    if let Some(pid) = state.stale_lock_pid() {
        tracing::warn!("took over a stale lock left by pid {pid}, which no longer runs");
    }
    let persisted = state.load()?;
    if state.ring_seq_path().exists() {
        tracing::info!("persisted ring seq {} from {}", persisted.ring_seq, state.ring_seq_path().display());
    } else {
        tracing::info!("no ring seq stored yet: first start in this state dir");
    }

    let summary = runtime::run(&config, &mut state, persisted).context("daemon stopped")?;
    drop(state);
    println!("totemd: {summary}");
    Ok(())
}
