//! Load generators for totem.
//!
//! `benches engine` measures the Totem engine alone: messages delivered per CPU second through
//! an in-memory ring (see [`benches::Ring`]), for each combination of `--nodes` and `--size`.
//!
//! `benches cpg` measures closed process groups through real daemons: throughput, latency,
//! the daemons' memory and CPU (see [`benches::cpg_bench`]).
//!
//! ```text
//! cargo run --release -p benches -- cpg --nodes 1,2 --size 64,1024,65536 --seconds 5 [--senders 2] [--safe]
//! cargo run --release -p benches -- compare [--quick]            # totem vs corosync, see benches::compare
//! cargo run --release -p benches -- engine                       # nodes 2,5 x sizes 64,1024
//! cargo run --release -p benches -- engine --nodes 2 --size 64 --messages 200000
//! ```
#![forbid(unsafe_code)]

mod cpg_cmd;

use std::time::Duration;

use anyhow::{Context, Result};
use benches::{Load, LoadReport, Ring};
use clap::{Parser, Subcommand, ValueEnum};
use totem::{Guarantee, TotemConfig};

#[derive(Parser)]
#[command(about = "Load generators and microbenchmarks for totem")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Messages delivered per CPU second by the engine alone, through an in-memory ring.
    Engine(EngineArgs),
    /// CPG throughput and latency through real totemd daemons on 127.0.0.x.
    Cpg(cpg_cmd::CpgArgs),
    /// The same workload against totem and corosync in network namespaces, side by side.
    Compare(benches::compare::CompareArgs),
    /// totem's driver of `compare` (one group member; the workload protocol on stdin/stdout).
    #[command(hide = true)]
    CompareWorker(benches::compare::worker::WorkerArgs),
    /// Plain UDP sender or receiver of `compare`'s physical limit.
    #[command(hide = true)]
    CompareUdp(benches::compare::udp::UdpArgs),
}

#[derive(clap::Args)]
struct EngineArgs {
    /// Ring sizes to measure (comma separated or repeated).
    #[arg(long, value_delimiter = ',', default_values_t = [2, 5])]
    nodes: Vec<usize>,
    /// Message payload sizes in bytes (comma separated or repeated).
    #[arg(long, value_delimiter = ',', default_values_t = [64, 1024])]
    size: Vec<usize>,
    /// Messages per measurement, summed over all senders; each is delivered at every node.
    #[arg(long, default_value_t = 200_000)]
    messages: u64,
    /// Messages run before each measurement and not counted.
    #[arg(long, default_value_t = 10_000)]
    warmup: u64,
    /// Delivery guarantee.
    #[arg(long, value_enum, default_value_t = GuaranteeArg::Agreed)]
    guarantee: GuaranteeArg,
    /// Most messages a node has submitted and not yet delivered.
    #[arg(long, default_value_t = 256)]
    in_flight: u64,
    /// Seed of the engines' randomness.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum GuaranteeArg {
    Agreed,
    Safe,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Engine(args) => engine(&args),
        Command::Cpg(args) => cpg_cmd::run(&args),
        Command::Compare(args) => benches::compare::run(&args),
        Command::CompareWorker(args) => benches::compare::worker::run(&args),
        Command::CompareUdp(args) => benches::compare::udp::run(&args),
    }
}

fn engine(args: &EngineArgs) -> Result<()> {
    let guarantee = match args.guarantee {
        GuaranteeArg::Agreed => Guarantee::Agreed,
        GuaranteeArg::Safe => Guarantee::Safe,
    };
    println!(
        "{:>5} {:>5} {:>7} {:>9} {:>8} {:>8} {:>14} {:>14} {:>10} {:>8} {:>6}",
        "nodes",
        "size",
        "guar",
        "messages",
        "wall_s",
        "cpu_s",
        "deliv/s/node",
        "deliv/s total",
        "MB/s/node",
        "dgram/msg",
        "reconf"
    );
    for &nodes in &args.nodes {
        for &size in &args.size {
            let load = Load {
                messages: args.messages,
                size,
                guarantee,
                in_flight_max: args.in_flight,
                ..Load::default()
            };
            let m = measure(nodes, args.seed, args.warmup, &load)
                .with_context(|| format!("engine bench with {nodes} nodes, {size}-byte messages"))?;
            print_row(nodes, &load, &m);
        }
    }
    Ok(())
}

/// One measured run.
struct Measurement {
    report: LoadReport,
    wall: Duration,
    /// CPU time of this thread, where the OS tells it.
    cpu: Option<Duration>,
}

impl Measurement {
    /// The time rates are computed over: CPU time if known, else wall time (the loop is
    /// single-threaded and never sleeps, so the two agree up to preemption).
    fn time(&self) -> f64 {
        self.cpu.unwrap_or(self.wall).as_secs_f64().max(1e-9)
    }
}

fn measure(nodes: usize, seed: u64, warmup: u64, load: &Load) -> Result<Measurement> {
    let mut ring = Ring::new(nodes, TotemConfig::default(), seed)?;
    ring.form()?;
    if warmup > 0 {
        ring.run(&Load { messages: warmup, ..load.clone() })?;
    }
    let (wall0, cpu0) = (wall_clock(), thread_cpu_time());
    let report = ring.run(load)?;
    let (wall, cpu1) = (wall0.elapsed(), thread_cpu_time());
    let cpu = cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a));
    Ok(Measurement { report, wall, cpu })
}

fn print_row(nodes: usize, load: &Load, m: &Measurement) {
    let per_node = m.report.delivered.iter().min().copied().unwrap_or(0) as f64 / m.time();
    let total = m.report.total_delivered() as f64 / m.time();
    let guarantee = match load.guarantee {
        Guarantee::Agreed => "agreed",
        Guarantee::Safe => "safe",
    };
    println!(
        "{:>5} {:>5} {:>7} {:>9} {:>8.3} {:>8} {:>14.0} {:>14.0} {:>10.1} {:>8.2} {:>6}",
        nodes,
        load.size,
        guarantee,
        load.messages,
        m.wall.as_secs_f64(),
        m.cpu.map_or_else(|| "-".to_string(), |c| format!("{:.3}", c.as_secs_f64())),
        per_node,
        total,
        per_node * load.size as f64 / 1e6,
        m.report.datagrams as f64 / load.messages as f64,
        m.report.reconfigurations,
    );
    if m.report.timer_jumps > 0 {
        println!(
            "      note: the run waited for {} timers ({:?} of virtual time)",
            m.report.timer_jumps, m.report.virtual_elapsed
        );
    }
}

/// The OS clock; a binary may read it (the sans-IO rule is for the engine).
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> std::time::Instant {
    std::time::Instant::now()
}

/// CPU time this thread has run, from Linux's `/proc/thread-self/schedstat` (nanoseconds on
/// CPU is its first field); `None` elsewhere.
fn thread_cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}
