//! `totemd`: one Totem node over UDP.
//!
//! Where the cluster comes from, first match wins:
//! 1. `--config FILE`: a corosync.conf. This node is `--nodeid N`, or else the one nodelist
//!    entry with an address on this host (as corosync picks it).
//! 2. `/etc/corosync/corosync.conf`, if it exists and neither `--bind` nor `--peer` is given.
//! 3. The command line: a one-node cluster on 127.0.0.1 unless `--bind` and `--peer` say
//!    otherwise. For a multi-node demo on one host, start one daemon per node with its own
//!    `--state-dir`, `--nodeid` and `--bind` port and `--peer ID=ADDR` for every other node.
//!
//! `--validate FILE` checks a corosync.conf, prints every problem as `FILE:LINE: ...` and
//! exits 0 (valid) or 2 (errors), starting nothing.
//!
//! Packet crypto (`crypto_cipher` / `crypto_hash`, `keyfile`) applies to a configuration file
//! only; a cluster from the command line runs without it.
//!
//! Logging follows the file's `logging` section (stderr, `logfile`, syslog via /dev/log,
//! `debug`, `timestamp`, `logger_subsys`); without a file, stderr at info. `RUST_LOG` overrides
//! the level either way. Under systemd (`NOTIFY_SOCKET`), readiness is reported once the first
//! ring is installed; see contrib/totemd.service.
//!
//! Exit status: 0 after a clean stop (SIGINT, SIGTERM, `--run-for`), 2 for a bad command line,
//! bad configuration, a missing or bad key file or a corrupt state file, 1 for any other failure.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use totem::{NodeId, TotemConfig};
use totemd::config::{check_and_print, FileConfig, Overrides, SystemHost, Transport, DEFAULT_CONFIG_PATH};
use totemd::reload::ReloadSource;
use totemd::state::StateError;
use totemd::{logging, runtime, ConfigError, DaemonConfig, StateDir};

/// State directory when neither `--state-dir` nor the file's `system.state_dir` names one.
const STATE_DIR_DEFAULT: &str = "./totemd-state";

/// One Totem node over UDP (udpu style: unicast to every peer).
///
/// The cluster comes from `--config FILE` (a corosync.conf), else from
/// /etc/corosync/corosync.conf if it exists and neither --bind nor --peer is given, else from
/// the command line (a one-node cluster on 127.0.0.1:5405 by default).
#[derive(Debug, Parser)]
#[command(name = "totemd", version, about, long_about)]
struct Args {
    /// Run with this corosync.conf (its totem, nodelist and interface settings).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["bind", "peers"])]
    config: Option<PathBuf>,
    /// Check this corosync.conf and exit: 0 if valid, 2 after printing every error as FILE:LINE.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "bind", "peers", "run_for"])]
    validate: Option<PathBuf>,
    /// Directory for the lock file and the persisted ring seq; created if missing
    /// [default: the file's system.state_dir, else ./totemd-state].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// This node's id (nonzero). With a config file: which nodelist entry this daemon is,
    /// needed when several have addresses on this host (all of 127.0.0.0/8 is local)
    /// [default: 1 without a config file].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    nodeid: Option<u32>,
    /// UDP address to bind; other nodes send here [default: 127.0.0.1:5405]. Not with --config.
    #[arg(long, value_name = "ADDR")]
    bind: Option<SocketAddr>,
    /// Another node and its address, e.g. `--peer 2=127.0.0.1:5406`; repeat for each node.
    /// Not with --config.
    #[arg(long = "peer", value_name = "ID=ADDR", value_parser = parse_peer)]
    peers: Vec<(NodeId, SocketAddr)>,
    /// Token timeout in milliseconds (corosync `token`; replaces the file's, token_coefficient
    /// still applies); consensus is 1.2 × token unless the file sets it [default: 3000].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    token: Option<u64>,
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
    if let Some(file) = &args.validate {
        return validate(file);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("totemd: error: {e:#}");
            exit_code(&e)
        }
    }
}

/// `--validate`: problems on stderr, the summary on stdout.
fn validate(file: &Path) -> ExitCode {
    ExitCode::from(check_and_print(file))
}

/// Installs the logger the file's `logging` section asks for (stderr at info without a file).
fn init_logging(file: Option<&FileConfig>) -> anyhow::Result<()> {
    let warnings = match file {
        Some(file) => logging::init(&file.settings.logging, &logging::subsys_debug(&file.parsed))?,
        None => logging::init(&logging::command_line_settings(), &[])?,
    };
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok(())
}

fn exit_code(e: &anyhow::Error) -> ExitCode {
    let bad_input = e.downcast_ref::<ConfigError>().is_some()
        || matches!(e.downcast_ref::<StateError>(), Some(StateError::Corrupt { .. }))
        || e.downcast_ref::<runtime::CryptoError>().is_some_and(runtime::CryptoError::is_bad_input);
    ExitCode::from(if bad_input { 2 } else { 1 })
}

/// The configuration file to use: `--config`, else the default path if it exists and the
/// command line does not describe the cluster itself.
fn config_file(args: &Args) -> Option<PathBuf> {
    if args.config.is_some() {
        return args.config.clone();
    }
    let default = Path::new(DEFAULT_CONFIG_PATH);
    (args.bind.is_none() && args.peers.is_empty() && default.exists()).then(|| default.to_path_buf())
}

/// Reads the configuration file before anything is logged: its `logging` section says where to.
fn read_file(args: &Args, path: &Path) -> anyhow::Result<FileConfig> {
    let overrides = Overrides { token: args.token.map(Duration::from_millis) };
    Ok(FileConfig::read(path, &overrides)?)
}

fn from_file(args: &Args, path: &Path, file: FileConfig) -> anyhow::Result<DaemonConfig> {
    tracing::info!("configuration {}", path.display());
    for warning in &file.warnings {
        tracing::warn!("{warning}");
    }
    let state_dir = args
        .state_dir
        .clone()
        .or_else(|| file.state_dir.clone())
        .unwrap_or_else(|| PathBuf::from(STATE_DIR_DEFAULT));
    let mut config = file.daemon_config(&SystemHost, args.nodeid.map(NodeId), state_dir)?;
    config.run_for = args.run_for;
    config.reload = Some(ReloadSource {
        path: path.to_path_buf(),
        overrides: Overrides { token: args.token.map(Duration::from_millis) },
        parsed: file.parsed.clone(),
    });
    let cluster = &config.cluster;
    tracing::info!(
        "cluster {}: {} nodes, transport {}",
        cluster.cluster_name.as_deref().unwrap_or("(unnamed)"),
        cluster.nodes.len(),
        cluster.transport
    );
    if cluster.transport == Transport::Knet {
        tracing::info!(
            "transport {}: totemd sends unicast UDP to every node, as udpu does",
            cluster.transport
        );
    }
    if cluster.links.len() > 1 {
        let lc = config.link_config();
        tracing::info!(
            "{} links (knet_ping_interval {} ms, knet_ping_timeout {} ms, knet_pong_count {})",
            cluster.links.len(),
            lc.ping_interval.as_millis(),
            lc.ping_timeout.as_millis(),
            lc.pong_count
        );
    }
    Ok(config)
}

fn from_command_line(args: &Args) -> anyhow::Result<DaemonConfig> {
    let bind = args.bind.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5405)));
    let state_dir = args.state_dir.clone().unwrap_or_else(|| PathBuf::from(STATE_DIR_DEFAULT));
    let mut config = DaemonConfig::new(NodeId(args.nodeid.unwrap_or(1)), bind, state_dir);
    if let Some(ms) = args.token {
        config.totem = TotemConfig::with_token(Duration::from_millis(ms));
    }
    config.run_for = args.run_for;
    config.add_nodes(args.peers.iter().copied())?;
    // votequorum over the nodes named, one vote each (corosync's usual quorum section).
    let ids = std::iter::once(config.node_id.0).chain(args.peers.iter().map(|(id, _)| id.0));
    config.cluster.quorum = Some(quorum::QuorumConfig::with_nodes(ids));
    Ok(config)
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = match config_file(&args) {
        Some(path) => {
            let file = read_file(&args, &path)?;
            init_logging(Some(&file))?;
            from_file(&args, &path, file)?
        }
        None => {
            init_logging(None)?;
            from_command_line(&args)?
        }
    };
    tracing::info!(
        "totemd {} starting: node id {}, bind {}, state dir {}",
        env!("CARGO_PKG_VERSION"),
        config.node_id,
        config.bind,
        config.state_dir.display()
    );
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

    // Before the first packet: it stores this boot's crypto epoch.
    let crypto = runtime::crypto::setup(&config, &mut state)?;
    let summary = runtime::run(&config, &mut state, persisted, crypto).context("daemon stopped")?;
    drop(state);
    println!("totemd: {summary}");
    Ok(())
}
