//! `sim`: run one seed or a swarm of seeds of the totem simulator.
//!
//! ```text
//! cargo run --release -p sim -- swarm --seeds 1000 [--nodes 2..9] [--first-seed S]
//! cargo run --release -p sim -- run --seed S [--nodes 2..9] [--trace]
//! ```

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::{Args, Parser, Subcommand};
use sim::scenario::{Scenario, ScenarioOptions};
use sim::swarm::{run_seed, run_swarm, SwarmOptions};
use sim::TraceOutput;

/// `println!` that ignores a closed stdout (e.g. `| head`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that ignores a closed stdout.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Parser)]
#[command(about = "Deterministic simulator of a totem cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run many random scenarios and summarize.
    Swarm {
        /// How many seeds to run.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// The first seed (default: drawn from the wall clock and printed).
        #[arg(long)]
        first_seed: Option<u64>,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Run every seed twice and compare trace hashes.
        #[arg(long)]
        twice: bool,
        /// Print one line per seed.
        #[arg(long)]
        verbose: bool,
        #[command(flatten)]
        space: Space,
    },
    /// Replay one seed.
    Run {
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// Print the trace, one line per event.
        #[arg(long)]
        trace: bool,
        /// Run twice and compare trace hashes.
        #[arg(long)]
        twice: bool,
        #[command(flatten)]
        space: Space,
    },
}

/// The scenario space; part of every replay command.
#[derive(Args)]
struct Space {
    /// Node count `N` or inclusive range `A..B`.
    #[arg(long, default_value = "2..9")]
    nodes: String,
    /// Length of the safety phase in virtual milliseconds.
    #[arg(long, default_value_t = 20_000)]
    safety_ms: u64,
    /// No CPG clients (the scenarios are otherwise the same).
    #[arg(long)]
    no_cpg: bool,
    /// Never run votequorum (the scenarios are otherwise the same).
    #[arg(long)]
    no_quorum: bool,
    /// Never run fencing (the scenarios are otherwise the same).
    #[arg(long)]
    no_fencing: bool,
}

impl Space {
    fn options(&self) -> Result<ScenarioOptions> {
        let (nodes_min, nodes_max) = ScenarioOptions::parse_nodes(&self.nodes).map_err(|e| anyhow!(e))?;
        Ok(ScenarioOptions {
            nodes_min,
            nodes_max,
            safety: Duration::from_millis(self.safety_ms),
            cpg: !self.no_cpg,
            quorum: !self.no_quorum,
            fencing: !self.no_fencing,
        })
    }
}

fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Swarm { seeds, first_seed, threads, twice, verbose, space } => {
            let scenario = space.options()?;
            let first_seed = first_seed.unwrap_or_else(wall_seed);
            say!("swarm: {seeds} seeds from {first_seed}, nodes {}, {threads} threads", scenario.nodes_arg());
            let opts = SwarmOptions { seeds, first_seed, scenario, threads, twice };
            let summary = run_swarm(&opts, |r| {
                if verbose || !r.violations.is_empty() {
                    let status = if r.violations.is_empty() { "ok" } else { "FAIL" };
                    say!(
                        "seed {:>20} {status:4} {} nodes {:>6.1}s sim {:>7} deliveries {:>4} configs (+{} after stable) hash {:016x} {:.2}s wall",
                        r.seed,
                        r.nodes,
                        r.sim_time.as_secs_f64(),
                        r.deliveries,
                        r.configs,
                        r.liveness.configs_after_stable,
                        r.trace_hash,
                        r.wall.as_secs_f64()
                    );
                }
            });
            say!("{summary}");
            for f in &summary.failures {
                say!("\nFAILED seed {}:", f.seed);
                for v in f.violations.iter().take(5) {
                    say!("  {v}");
                }
                say!("  replay: {} --trace", f.replay);
            }
            Ok(if summary.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Run { seed, trace, twice, space } => {
            let options = space.options()?;
            let scenario = Scenario::generate(seed, &options);
            say_raw!("{}", scenario.describe());
            let output = if trace { TraceOutput::Stdout } else { TraceOutput::Off };
            let r = run_seed(seed, &options, output);
            say!(
                "simulated {:.3} s, {} steps, {} submitted, {} deliveries, {} cpg sent, {} cpg deliveries, {} cpg confchgs, {} configurations, {:.2} s wall",
                r.sim_time.as_secs_f64(),
                r.steps,
                r.submitted,
                r.deliveries,
                r.cpg_sent,
                r.cpg_deliveries,
                r.cpg_confchgs,
                r.configs,
                r.wall.as_secs_f64()
            );
            say!("liveness: {:?}", r.liveness);
            say!("trace hash {:016x}", r.trace_hash);
            let mut failed = !r.violations.is_empty();
            if twice {
                let again = run_seed(seed, &options, TraceOutput::Off);
                if again.trace_hash == r.trace_hash {
                    say!("second run: same trace hash");
                } else {
                    say!("NONDETERMINISM: second run has trace hash {:016x}", again.trace_hash);
                    failed = true;
                }
            }
            for v in &r.violations {
                say!("VIOLATION {v}");
            }
            if failed {
                say!("replay: {} --trace", options.replay_command(seed));
            }
            Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
    }
}

/// A seed for a swarm run without `--first-seed`: only the starting point is random, and it is printed.
#[allow(clippy::disallowed_methods)]
fn wall_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
