//! `benches cpg`: CPG throughput and latency through real daemons, one row per
//! nodes × size × senders (see [`benches::cpg_bench`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use benches::cpg_bench::report::{format_table, Row};
use benches::cpg_bench::{measure_row, RowSpec};

/// Arguments of `benches cpg`.
#[derive(clap::Args)]
pub struct CpgArgs {
    /// Cluster sizes (comma separated or repeated).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2])]
    nodes: Vec<u32>,
    /// Payload sizes in bytes, at least 8 (the send time).
    #[arg(long, value_delimiter = ',', default_values_t = [64, 1024, 65536])]
    size: Vec<usize>,
    /// Sending members, one client per node from node 1 (comma separated or repeated); a
    /// count over the cluster size is skipped.
    #[arg(long, value_delimiter = ',', default_values_t = [1])]
    senders: Vec<u32>,
    /// `mcast` calls each sender keeps in flight: 1 waits for each answer (a plain
    /// `cpg_mcast_joined` loop); more keep the daemon's queue full until it says TryAgain.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    window: u32,
    /// Senders post (`Cpg::post`: pipelined, in order, held by the daemon while busy) instead
    /// of calling `mcast`; `--window` is then ignored (the handle's own window applies).
    #[arg(long)]
    post: bool,
    /// Measured seconds per row.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Seconds of load before each measurement, not counted.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Safe delivery instead of agreed.
    #[arg(long)]
    safe: bool,
    /// The daemons' token timeout in milliseconds.
    #[arg(long, default_value_t = 1000)]
    token: u64,
    /// The totemd binary [default: `totemd` next to this executable].
    #[arg(long, value_name = "PATH")]
    totemd: Option<PathBuf>,
    /// Also write the rows as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Measures every row (progress on stderr), then prints the table.
pub fn run(args: &CpgArgs) -> Result<()> {
    if let Some(&small) = args.size.iter().find(|&&s| s < 8) {
        bail!("--size {small}: a payload needs at least 8 bytes for its send time");
    }
    let binary = totemd_binary(args.totemd.as_ref())?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut rows: Vec<Row> = Vec::new();
    let mut warnings = Vec::new();
    for &nodes in &args.nodes {
        for &size in &args.size {
            for &senders in &args.senders {
                if senders == 0 || senders > nodes {
                    eprintln!("skipped: {senders} senders with {nodes} nodes (one client per node)");
                    continue;
                }
                let spec = RowSpec {
                    binary: binary.clone(),
                    nodes,
                    size,
                    senders,
                    window: args.window,
                    post: args.post,
                    safe: args.safe,
                    token_ms: args.token,
                    warmup: Duration::from_secs_f64(args.warmup),
                    measure: Duration::from_secs_f64(args.seconds),
                };
                let m = measure_row(&rt, &spec)?;
                warnings.extend(m.warnings.into_iter().map(|w| format!("[{nodes}n {size}B {senders}s] {w}")));
                eprintln!(
                    "measured {nodes} nodes, {size} bytes, {senders} senders: {:.0} msgs/s",
                    m.row.msgs_per_s_min()
                );
                rows.push(m.row);
            }
        }
    }
    print!("{}", format_table(&rows));
    if !warnings.is_empty() {
        println!("\ndaemon warnings and errors:");
        for w in &warnings {
            println!("  {w}");
        }
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&rows)?;
        std::fs::write(path, json + "\n").with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// `--totemd`, else `totemd` next to this executable (target/release when run with cargo).
fn totemd_binary(explicit: Option<&PathBuf>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().context("where is this executable?")?;
    let candidate = exe.with_file_name("totemd");
    if candidate.is_file() {
        return Ok(candidate);
    }
    bail!(
        "no totemd at {}: run `cargo build --release -p totemd` first (or pass --totemd PATH)",
        candidate.display()
    )
}
