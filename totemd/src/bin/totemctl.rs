//! `totemctl`: the administration tool of totemd.
//!
//! - `totemctl config check FILE`: check a corosync.conf as `totemd --validate` does.
//! - `totemctl config import FILE [-o OUT]`: convert a cman cluster.conf to corosync.conf.
//! - `totemctl keygen [PATH]`: write a random authkey, as corosync-keygen does.
//! - `totemctl cpg list|listen|send`: closed process groups through the daemon's socket
//!   (see `totemctl/cpg_cmd.rs`).
//! - `totemctl status`, `totemctl reload`: this node's ring, members and links; read the
//!   configuration again (`totemctl/daemon_cmd.rs`).
//! - `totemctl nodes`, `totemctl metrics`, `totemctl shutdown`: every node in one table, the
//!   counters in the Prometheus text format, a clean leave (`totemctl/admin_cmd.rs`).
//! - `totemctl quorum | quorum expected N | quorum votes NODE N`, `totemctl fence NODE | fence
//!   ack NODE`: votequorum's state and run-time changes, fencing (`totemctl/quorum_cmd.rs`).
//! - `totemctl confdb get|set|delete|dump|track`: the daemon's key-value store, as
//!   corosync-cmapctl shows it (`totemctl/confdb_cmd.rs`).
//! - `totemctl completion bash|zsh|fish`: shell completion generated from this definition.
//!
//! Every subcommand that talks to the daemon takes `--socket PATH` and `--json` (one JSON
//! document, or one per line for the streams `cpg listen` and `confdb track`).
//!
//! Exit status: 0 on success, 2 for an invalid input file, 1 for any other failure
//! (unreadable input, output not writable, daemon down or refusing), with one line on stderr.
#![forbid(unsafe_code)]

#[path = "totemctl/admin_cmd.rs"]
mod admin_cmd;
#[path = "totemctl/confdb_cmd.rs"]
mod confdb_cmd;
#[path = "totemctl/cpg_cmd.rs"]
mod cpg_cmd;
#[path = "totemctl/daemon_cmd.rs"]
mod daemon_cmd;
#[path = "totemctl/quorum_cmd.rs"]
mod quorum_cmd;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use confdb::cluster_conf;
use totemd::config::{check_and_print, check_text};

/// Administration tool of totemd, the Totem daemon that replaces corosync.
#[derive(Debug, Parser)]
#[command(
    name = "totemctl",
    version,
    long_about = "Administration tool of totemd, the Totem daemon that replaces corosync.\n\n\
        One tool for what corosync-cfgtool, corosync-quorumtool, corosync-cmapctl, \
        corosync-cpgtool and corosync-keygen do. The subcommands that talk to the daemon use \
        its local socket: --socket PATH, else $TOTEMD_SOCKET, else /var/lib/totemd/totemd.sock \
        if it exists, else ./totemd-state/totemd.sock. They print a readable table, or one \
        JSON document with --json.",
    after_help = "Examples:\n  \
        totemctl status                      this node's ring and links\n  \
        totemctl nodes                       every node: name, addresses, votes, status, links\n  \
        totemctl quorum                      votequorum's state (corosync-quorumtool -s)\n  \
        totemctl confdb dump runtime.        live state and counters (corosync-cmapctl)\n  \
        totemctl confdb track totem.         print each change of the totem keys\n  \
        totemctl metrics                     counters in the Prometheus text format\n  \
        totemctl reload                      apply an edited corosync.conf\n  \
        totemctl shutdown                    leave the ring cleanly and stop totemd\n  \
        totemctl cpg listen mygroup          print a group's messages as JSON lines\n  \
        totemctl config check /etc/corosync/corosync.conf\n  \
        totemctl keygen\n  \
        totemctl completion bash > /etc/bash_completion.d/totemctl\n\n\
        Exit status: 0 on success, 2 for an invalid input file, 1 for any other failure \
        (daemon down or refusing: one line on stderr)."
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check and convert configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Write a random authkey for packet authentication and encryption (corosync-keygen).
    ///
    /// The file holds raw random bytes (read from /dev/urandom) and is created with mode 0400,
    /// so an existing corosync cluster's key works with totemd and the other way round. Copy
    /// the same file to every node.
    ///
    /// Example: totemctl keygen /etc/corosync/authkey
    Keygen {
        /// Where to write the key.
        #[arg(default_value = totemd::keyfile::DEFAULT_PATH)]
        path: PathBuf,
        /// Key length in bytes (128 to 4096).
        #[arg(short = 'l', long, default_value_t = totemd::keyfile::KEY_LEN_DEFAULT)]
        length: usize,
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
    },
    /// This node's ring, members and links to each peer (corosync-cfgtool -s).
    Status {
        /// Print one JSON object: node_id, ring_id, state, members, links.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: cpg_cmd::SocketArg,
    },
    /// Every node: id, name, addresses, votes, status and links.
    ///
    /// The nodes this daemon knows of (the nodelist, the ring's members, the links' peers):
    /// node id, name, addresses, votes, status (member, left, not seen) and each link's state.
    ///
    /// Example: totemctl nodes --json
    Nodes {
        /// Print one JSON object: {"local_node_id":..,"nodes":[{"node_id":..,"name":..,
        /// "addresses":[..],"votes":..,"status":..,"local":..,"links":[..]}]}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: cpg_cmd::SocketArg,
    },
    /// Read corosync.conf again and apply what may change at run time (corosync-cfgtool -R).
    ///
    /// What applies at once: the totem timeouts and flow control, the logging levels, the
    /// uidgid grants.
    /// Prints each change and whether it was applied; other changes need a restart. Same as
    /// SIGHUP to totemd.
    Reload {
        /// Print one JSON object: {"applied":[..],"not_applied":[..]}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: cpg_cmd::SocketArg,
    },
    /// Stop this node's totemd after a clean leave of the ring (corosync-cfgtool -H).
    ///
    /// Its peers form a new ring at once, without waiting for a token timeout; totemd exits 0.
    /// Waits until it has stopped.
    Shutdown {
        /// Print {"stopped":true} once it stopped.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: cpg_cmd::SocketArg,
    },
    /// The runtime counters and gauges in the Prometheus text format.
    ///
    /// totem_* metrics with node, link and reason labels: the same text totemd serves at
    /// http://ADDR/metrics when `system { metrics_listen: ADDR }` is set in corosync.conf.
    Metrics {
        /// Print one JSON array of samples: [{"name":..,"labels":{..},"value":..}].
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: cpg_cmd::SocketArg,
    },
    /// The quorum state (corosync-quorumtool -s), or change votes at run time.
    ///
    /// Shows the provider, nodes, ring, quorate, expected and total votes, quorum, flags and
    /// members.
    ///
    /// Examples: totemctl quorum   totemctl quorum expected 2   totemctl quorum votes 3 2
    Quorum {
        #[command(subcommand)]
        command: Option<quorum_cmd::QuorumCommand>,
        /// Print one JSON object instead ({"ok":true} for a change).
        #[arg(long, global = true)]
        json: bool,
        #[command(flatten)]
        socket: cpg_cmd::SocketArg,
    },
    /// Fence NODE now (fence_node), or confirm by hand that it is down (`fence ack NODE`).
    ///
    /// `fence NODE` runs its configured methods; `fence ack NODE` completes a pending fence
    /// when no device works (only after checking the node really is off).
    ///
    /// Examples: totemctl fence 2   totemctl fence ack 2
    Fence {
        #[command(subcommand)]
        command: Option<quorum_cmd::FenceCommand>,
        /// The node id to fence.
        node: Option<u32>,
        /// Print {"requested":..,"node_id":..} when the daemon took the request.
        #[arg(long, global = true)]
        json: bool,
        #[command(flatten)]
        socket: cpg_cmd::SocketArg,
    },
    /// Closed process groups: list them, listen to one, send to one.
    #[command(subcommand)]
    Cpg(cpg_cmd::CpgCommand),
    /// The daemon's key-value store (corosync-cmapctl): get, set, delete, dump, track keys.
    ///
    /// The configuration file's keys (totem.token, nodelist.node.0.ring0_addr, ...) and the
    /// live state under runtime.: the ring (runtime.totem.ring_id), members
    /// (runtime.members.N.status), links (runtime.links.N.L.connected), counters
    /// (runtime.totem.*), groups (runtime.cpg.*), quorum (runtime.votequorum.*), fencing
    /// (runtime.fencing.*).
    #[command(subcommand)]
    Confdb(confdb_cmd::ConfdbCommand),
    /// Print a completion script for SHELL, generated from this tool's definition.
    ///
    /// Examples: totemctl completion bash > /etc/bash_completion.d/totemctl
    ///           totemctl completion zsh > "${fpath[1]}/_totemctl"
    ///           totemctl completion fish > ~/.config/fish/completions/totemctl.fish
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Check a corosync.conf: print every error and warning as FILE:LINE and exit 0 if the
    /// daemon would accept it, 2 if not.
    ///
    /// Checks syntax, key names (unknown keys are warnings), values and their ranges, and the
    /// rules between them (node ids, addresses, links, timeouts). Host names are not resolved
    /// and this host's node is not chosen: the daemon does that when it starts. Same as
    /// `totemd --validate FILE`.
    Check {
        /// The corosync.conf to check.
        file: PathBuf,
    },
    /// Convert a cman cluster.conf (XML) to the equivalent corosync.conf.
    ///
    /// The cluster name and config_version, the nodes (name, nodeid, votes, altname), cman's
    /// two_node and expected_votes, and the attributes of the totem and logging elements are
    /// converted; the fence methods and devices go to a `fencing { }` section. What cannot be
    /// converted (rm, fence_daemon, ...) is listed on stderr and as comments at the top of the
    /// output.
    /// The result is then checked as `config check` does and any problem is reported.
    ///
    /// Example: totemctl config import /etc/cluster/cluster.conf -o corosync.conf
    Import {
        /// The cluster.conf to convert.
        file: PathBuf,
        /// Write the corosync.conf here (created with mode 0600: fence devices hold
        /// passwords) instead of to standard output.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Replace OUT if it exists.
        #[arg(long, requires = "output")]
        force: bool,
    },
}

fn main() -> ExitCode {
    match Args::parse().command {
        Command::Config(ConfigCommand::Check { file }) => check(&file),
        Command::Config(ConfigCommand::Import { file, output, force }) => {
            import(&file, output.as_deref(), force)
        }
        Command::Keygen { path, length, force } => keygen(&path, length, force),
        Command::Cpg(command) => cpg_cmd::run(command),
        Command::Confdb(command) => confdb_cmd::run(command),
        Command::Status { json, socket } => daemon_cmd::run(json, &socket),
        Command::Nodes { json, socket } => admin_cmd::nodes(json, &socket),
        Command::Reload { json, socket } => daemon_cmd::reload(json, &socket),
        Command::Shutdown { json, socket } => admin_cmd::shutdown(json, &socket),
        Command::Metrics { json, socket } => admin_cmd::metrics(json, &socket),
        Command::Quorum { command, json, socket } => quorum_cmd::run(command, json, &socket),
        Command::Fence { command, node, json, socket } => quorum_cmd::fence(command, node, json, &socket),
        Command::Completion { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Args::command(), "totemctl", &mut script);
            // A closed pipe (`| head`) is no error worth a message.
            let _ = std::io::stdout().write_all(&script);
            ExitCode::SUCCESS
        }
    }
}

fn keygen(path: &Path, length: usize, force: bool) -> ExitCode {
    use totemd::keyfile::{generate, Overwrite};
    let overwrite = if force { Overwrite::Replace } else { Overwrite::Refuse };
    match generate(path, length, overwrite) {
        Ok(()) => {
            println!("wrote a {length}-byte authkey to {} (mode 0400)", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("totemctl: keygen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(file: &Path) -> ExitCode {
    ExitCode::from(check_and_print(file))
}

fn import(file: &Path, output: Option<&Path>, force: bool) -> ExitCode {
    let xml = match std::fs::read_to_string(file) {
        Ok(xml) => xml,
        Err(e) => {
            eprintln!("totemctl: error: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let imported = match cluster_conf::import(&xml) {
        Ok(imported) => imported,
        Err(e) => {
            eprintln!("totemctl: error: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    if let Some(out) = output {
        if let Err(e) = write_new(out, &imported.text, force) {
            eprintln!("totemctl: error: cannot write {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    } else {
        print!("{}", imported.text);
    }
    for note in &imported.notes {
        eprintln!("totemctl: note: {}: {note}", file.display());
    }
    let name = output.map_or_else(|| "<output>".to_string(), |o| o.display().to_string());
    let report = check_text(&imported.text, &name);
    for line in &report.problems {
        eprintln!("totemctl: the converted file: {line}");
    }
    if !report.valid {
        eprintln!("totemctl: the converted file does not pass `totemctl config check`; edit it before use");
    }
    ExitCode::SUCCESS
}

/// Writes `text` to a new file readable by its owner only; an existing file is replaced only
/// with `force`.
fn write_new(path: &Path, text: &str, force: bool) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
