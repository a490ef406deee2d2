//! `benches compare`: the same workload against totem and corosync, side by side.
//!
//! The command installs what it needs (Debian's corosync and its client libraries, iproute2,
//! nftables), builds totemd and corosync's driver, makes two network namespaces joined by a
//! veth ([`net`]) and then, for 1 and 2 nodes, crypto off and on, and each repetition,
//! starts a cluster of each system in turn ([`cluster`]: one corosync.conf read by both,
//! token 1000) and measures through one driver process per group member ([`worker`] for
//! totem, `benches/corosync-driver` for corosync, both running the shared `workload` crate):
//! delivered msgs/s and MB/s at the slowest member for each size with 1 and 2 senders,
//! send-to-delivery latency of own and other members' messages, the daemons' CPU per
//! million messages and memory idle and under load, and (2 nodes) the time from kill -9 of
//! node 2's daemon, and from cutting node 2's link, to node 1's configuration change. Plain
//! UDP over the same veth gives the physical limit ([`udp`]). The table has medians, ranges and the ratio totem / corosync ([`report`]).

pub mod cluster;
pub mod net;
pub mod proc;
pub mod report;
pub mod udp;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use cluster::{Cluster, ClusterSpec, LoadOut, System, Tools};
use net::Net;
use report::Figures;

/// Debian packages the comparison needs.
const PACKAGES: [&str; 10] = [
    "corosync",
    "libcpg-dev",
    "libcorosync-common-dev",
    "libquorum-dev",
    "libvotequorum-dev",
    "libcfg-dev",
    "libcmap-dev",
    "iproute2",
    "nftables",
    "util-linux",
];

/// Arguments of `benches compare`.
#[derive(clap::Args, Clone)]
pub struct CompareArgs {
    /// A short run for CI (under two minutes): 64 B and 100 KiB, no crypto, one repetition.
    #[arg(long)]
    quick: bool,
    /// Repetitions of every figure (each system alternately) [default: 3, quick: 1].
    #[arg(long)]
    reps: Option<usize>,
    /// Message sizes in bytes [default: 64,1024,10240,102400,1048576].
    #[arg(long, value_delimiter = ',')]
    size: Vec<usize>,
    /// Measured seconds per run [default: 3, quick: 1].
    #[arg(long)]
    seconds: Option<f64>,
    /// Seconds of load before each window [default: 1, quick: 0.3].
    #[arg(long)]
    warmup: Option<f64>,
    /// Token timeout of both systems, ms.
    #[arg(long, default_value_t = 1000)]
    token: u64,
    /// Only these crypto settings (off, on) [default: both, quick: off].
    #[arg(long, value_delimiter = ',')]
    crypto: Vec<String>,
    /// Messages per second of the paced runs: one sender at this rate, so latency is measured
    /// at equal load on both systems rather than at each one's saturation; 0 = none.
    #[arg(long, default_value_t = 5000)]
    paced_rate: u32,
    /// Only the paced runs (latency at equal load), none as fast as the daemons take them.
    #[arg(long)]
    paced_only: bool,
    /// Only these cluster sizes [default: 1,2].
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<u32>,
    /// Where the JSON and Markdown go.
    #[arg(long, default_value = "target/compare")]
    out: PathBuf,
    /// Do not install packages (fail if missing).
    #[arg(long)]
    no_install: bool,
}

/// What a run of the comparison measures.
struct Plan {
    reps: usize,
    sizes: Vec<usize>,
    /// Sizes of the paced runs (those of `sizes` up to 1 KiB) and their rate.
    paced: Vec<usize>,
    rate: u32,
    /// Whether the runs as fast as the daemons take them are left out.
    paced_only: bool,
    senders: Vec<u32>,
    nodes: Vec<u32>,
    crypto: Vec<bool>,
    warmup: Duration,
    measure: Duration,
    udp_sizes: Vec<usize>,
    udp_seconds: f64,
}

impl Plan {
    fn of(args: &CompareArgs) -> Result<Plan> {
        let q = args.quick;
        let crypto = if args.crypto.is_empty() {
            if q {
                vec![false]
            } else {
                vec![false, true]
            }
        } else {
            args.crypto
                .iter()
                .map(|c| match c.as_str() {
                    "off" => Ok(false),
                    "on" => Ok(true),
                    other => bail!("--crypto {other}: off or on"),
                })
                .collect::<Result<_>>()?
        };
        let sizes = if !args.size.is_empty() {
            args.size.clone()
        } else if q {
            vec![64, 102_400]
        } else {
            vec![64, 1024, 10_240, 102_400, 1_048_576]
        };
        if let Some(s) = sizes.iter().find(|&&s| s < workload::HEADER_LEN) {
            bail!("--size {s}: at least {} bytes", workload::HEADER_LEN);
        }
        if args.paced_only && args.paced_rate == 0 {
            bail!("--paced-only needs a --paced-rate above 0");
        }
        let paced = if args.paced_rate == 0 {
            Vec::new()
        } else {
            sizes.iter().copied().filter(|&s| s <= 1024).collect()
        };
        Ok(Plan {
            reps: args.reps.unwrap_or(if q { 1 } else { 3 }).max(1),
            sizes,
            paced,
            rate: args.paced_rate,
            paced_only: args.paced_only,
            senders: vec![1, 2],
            nodes: if args.nodes.is_empty() { vec![1, 2] } else { args.nodes.clone() },
            crypto,
            warmup: Duration::from_secs_f64(args.warmup.unwrap_or(if q { 0.3 } else { 1.0 })),
            measure: Duration::from_secs_f64(args.seconds.unwrap_or(if q { 1.0 } else { 3.0 })),
            udp_sizes: if q { vec![1472] } else { vec![64, 1472, 65_000] },
            udp_seconds: if q { 1.0 } else { 3.0 },
        })
    }
}

/// Runs the comparison, prints the table, writes `compare.json` and `compare.md`.
pub fn run(args: &CompareArgs) -> Result<()> {
    let plan = Plan::of(args)?;
    net::install_signal_cleanup();
    if !args.no_install {
        install()?;
    }
    let tools = build()?;
    let net = Net::new()?;
    let mut figures = Figures::default();
    figures.notes.push(format!(
        "benches compare{}: token {} ms, knet transport, {} repetition(s), {:?} measured per run after {:?} of warm-up",
        if args.quick { " --quick" } else { "" },
        args.token,
        plan.reps,
        plan.measure,
        plan.warmup
    ));
    figures.notes.push(format!("host: {} cores; corosync {}", cores(), corosync_version()));
    figures.notes.push(
        "the group has two members: on 1 node two clients of the one daemon, on 2 nodes one client per node; \
         msgs/s and MB/s at the slowest member; latency of a member's own messages and of the other member's"
            .into(),
    );
    for rep in 0..plan.reps {
        for &nodes in &plan.nodes {
            for &crypto in &plan.crypto {
                let mut order = [System::Totem, System::Corosync];
                if rep % 2 == 1 {
                    order.reverse();
                }
                for system in order {
                    let spec = ClusterSpec { system, nodes, crypto, token_ms: args.token };
                    eprintln!(
                        "rep {}: {} {nodes} node(s), crypto {}",
                        rep + 1,
                        system.name(),
                        on_off(crypto)
                    );
                    if let Err(e) = measure_cluster(&tools, &net, &plan, spec, &mut figures) {
                        eprintln!("  failed: {e:#}");
                        figures.failures.push(format!(
                            "{} {nodes} nodes crypto {}: {e:#}",
                            system.name(),
                            on_off(crypto)
                        ));
                    }
                }
            }
        }
        for &size in &plan.udp_sizes {
            match udp::measure(&tools.benches.display().to_string(), &net, size, plan.udp_seconds) {
                Ok(c) if c.seconds > 0.0 => {
                    let case = format!("raw UDP over the veth, {size} B datagrams");
                    figures.add(&case, "datagrams/s", true, 2, c.datagrams as f64 / c.seconds);
                    figures.add(&case, "MB/s", true, 2, c.bytes as f64 / c.seconds / 1e6);
                }
                Ok(_) => figures.failures.push(format!("udp {size} B: nothing arrived")),
                Err(e) => figures.failures.push(format!("udp {size} B: {e:#}")),
            }
        }
    }
    drop(net);
    let table = report::text(&figures);
    println!("{table}");
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let json = serde_json::to_string_pretty(&figures)? + "\n";
    std::fs::write(args.out.join("compare.json"), json)?;
    std::fs::write(args.out.join("compare.md"), report::markdown(&figures))?;
    eprintln!("wrote {}/compare.{{json,md}}", args.out.display());
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// One cluster: every size × senders run, then (2 nodes) the kill. A failed run is noted and
/// the cluster started again for the next one.
fn measure_cluster(
    tools: &Tools,
    net: &Net,
    plan: &Plan,
    spec: ClusterSpec,
    figures: &mut Figures,
) -> Result<()> {
    let series = spec.system as usize;
    let base = format!("{} node(s), crypto {}", spec.nodes, on_off(spec.crypto));
    let mut cluster = Cluster::start(tools, net, spec)?;
    let idle = procfs_now::rss(&cluster.pids());
    figures.add(&base, "RSS idle MiB (largest daemon)", false, series, max_mib(&idle));
    let mut peak_rss = 0.0f64;
    let flat_sizes = if plan.paced_only { &[][..] } else { &plan.sizes[..] };
    let flat_out =
        flat_sizes.iter().flat_map(|&size| plan.senders.iter().map(move |&senders| (size, senders, 0)));
    let paced = plan.paced.iter().map(|&size| (size, 1, plan.rate));
    for (size, senders, rate) in flat_out.chain(paced) {
        let case = match rate {
            0 => format!("{base}, {size} B, {senders} sender(s)"),
            rate => format!("{base}, {size} B, {senders} sender(s) paced at {rate} msgs/s"),
        };
        match cluster.run(size, senders, rate, plan.warmup, plan.measure) {
            Ok(out) => {
                peak_rss = peak_rss.max(max_mib(&out.rss_load_kib));
                record(figures, &case, size, series, &out);
            }
            Err(e) => {
                let why = format!("{e:#}");
                let why = why.lines().next().unwrap_or_default();
                let logged = cluster.warnings();
                eprintln!("  {case}: {why}\n{}", logged.join("\n"));
                figures.failures.push(format!("{} {case}: {why} {}", spec.system.name(), logged.join("; ")));
                // The old daemons go first: the new ones bind the same ports.
                drop(cluster);
                cluster = Cluster::start(tools, net, spec)?;
            }
        }
    }
    figures.add(&base, "RSS under load MiB (largest daemon, largest run)", false, series, peak_rss);
    if spec.nodes >= 2 {
        match cluster.kill_test()? {
            Some(ms) => figures.add(&base, "kill -9 node 2 → node 1 confchg ms", false, series, ms),
            None => figures.failures.push(format!("{} {base}: no confchg after kill -9", spec.system.name())),
        }
        // A process death can be noticed early (ICMP port unreachable); a node that drops
        // off the network only by the token timeout.
        drop(cluster);
        let mut cluster = Cluster::start(tools, net, spec)?;
        match cluster.cut_test(net)? {
            Some(ms) => figures.add(&base, "node 2's link cut → node 1 confchg ms", false, series, ms),
            None => figures.failures.push(format!("{} {base}: no confchg after the cut", spec.system.name())),
        }
    }
    Ok(())
}

fn record(figures: &mut Figures, case: &str, size: usize, series: usize, out: &LoadOut) {
    let rate =
        out.members.iter().map(|m| m.delivered as f64 / m.seconds.max(1e-9)).fold(f64::INFINITY, f64::min);
    figures.add(case, "msgs/s", true, series, rate);
    figures.add(case, "MB/s", true, series, rate * size as f64 / 1e6);
    let own = workload::histogram(out.members.iter().map(|m| m.own_us.as_slice()));
    let other = workload::histogram(out.members.iter().map(|m| m.other_us.as_slice()));
    for (name, h) in [("own", &own), ("other", &other)] {
        if h.is_empty() {
            continue;
        }
        for (q, label) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p999")] {
            let quantity = format!("latency {name} {label} µs");
            figures.add(case, &quantity, false, series, h.value_at_quantile(q) as f64);
        }
    }
    let seconds = out.members.first().map_or(1.0, |m| m.seconds);
    let messages = rate * seconds;
    if messages >= 1.0 {
        figures.add(case, "daemon CPU s per M msgs", false, series, out.cpu_s / messages * 1e6);
    }
}

fn max_mib(kib: &[u64]) -> f64 {
    kib.iter().copied().max().unwrap_or(0) as f64 / 1024.0
}

/// The daemons' CPU and memory now.
pub mod procfs_now {
    use std::time::Duration;

    use crate::cpg_bench::procfs;

    /// CPU time of all of them together.
    pub fn cpu(pids: &[u32]) -> Duration {
        let hz = procfs::user_hz();
        pids.iter().filter_map(|&p| procfs::cpu_time(p, hz)).sum()
    }

    /// Each one's resident memory, KiB (0 when gone).
    pub fn rss(pids: &[u32]) -> Vec<u64> {
        pids.iter().map(|&p| procfs::rss_kib(p).unwrap_or(0)).collect()
    }
}

/// `apt-get install` of whatever in [`PACKAGES`] is missing.
fn install() -> Result<()> {
    let missing: Vec<&str> = PACKAGES.into_iter().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {}", missing.join(" "));
    let apt = |args: &[&str]| -> Result<()> {
        let status = std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("cannot run apt-get (a Debian host is needed)")?;
        if !status.success() {
            bail!("apt-get {} failed", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args)
}

fn installed(package: &str) -> bool {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Builds totemd (release) and corosync's driver (its own workspace, same target dir).
fn build() -> Result<Tools> {
    let exe = std::env::current_exe().context("where is this executable?")?;
    let bin_dir = exe.parent().context("executable has no directory")?.to_path_buf();
    let target = bin_dir.parent().context("not in a cargo target directory")?.to_path_buf();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("benches has no parent")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let profile = bin_dir.file_name().and_then(|n| n.to_str()).unwrap_or("release").to_string();
    let profile_args: Vec<&str> = if profile == "debug" { vec![] } else { vec!["--profile", &profile] };
    let cargo_build = |extra: &[&str]| -> Result<()> {
        let status = std::process::Command::new(&cargo)
            .arg("build")
            .args(&profile_args)
            .args(extra)
            .current_dir(root)
            .status()
            .with_context(|| format!("cannot run {cargo}"))?;
        if !status.success() {
            bail!("cargo build {} failed", extra.join(" "));
        }
        Ok(())
    };
    cargo_build(&["-p", "totemd", "--bins"])?;
    let manifest = root.join("benches/corosync-driver/Cargo.toml");
    let target_dir = target.display().to_string();
    cargo_build(&["--manifest-path", &manifest.display().to_string(), "--target-dir", &target_dir])?;
    Ok(Tools {
        benches: exe.clone(),
        totemd: bin_dir.join("totemd"),
        totemctl: bin_dir.join("totemctl"),
        corosync_driver: bin_dir.join("corosync-driver"),
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn corosync_version() -> String {
    std::process::Command::new("corosync")
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(|l| l.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CompareArgs,
    }

    fn plan(args: &[&str]) -> Result<Plan> {
        let cli = Cli::try_parse_from(std::iter::once("compare").chain(args.iter().copied()))?;
        Plan::of(&cli.args)
    }

    #[test]
    fn the_full_plan_paces_the_small_sizes_and_quick_stays_small() {
        let full = plan(&[]).unwrap();
        assert_eq!((full.reps, full.sizes.len(), full.crypto.clone()), (3, 5, vec![false, true]));
        assert_eq!((full.paced.clone(), full.rate), (vec![64, 1024], 5000));
        let quick = plan(&["--quick"]).unwrap();
        assert_eq!(
            (quick.reps, quick.sizes.clone(), quick.crypto.clone()),
            (1, vec![64, 102_400], vec![false])
        );
        assert_eq!(quick.paced, vec![64]);
        assert!(quick.measure < full.measure && quick.warmup < full.warmup);
    }

    #[test]
    fn options_narrow_the_plan_and_bad_ones_are_refused() {
        let p =
            plan(&["--size", "1024,4096", "--paced-rate", "200", "--crypto", "on", "--nodes", "2"]).unwrap();
        assert_eq!(
            (p.sizes, p.paced, p.rate, p.crypto, p.nodes),
            (vec![1024, 4096], vec![1024], 200, vec![true], vec![2])
        );
        assert!(plan(&["--paced-rate", "0"]).unwrap().paced.is_empty());
        assert!(plan(&["--paced-only"]).unwrap().paced_only);
        assert!(!plan(&[]).unwrap().paced_only);
        assert!(plan(&["--paced-only", "--paced-rate", "0"]).is_err());
        assert!(plan(&["--crypto", "maybe"]).is_err());
        assert!(plan(&["--size", "4"]).is_err(), "smaller than the payload header");
    }
}
