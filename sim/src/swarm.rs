//! The swarm: many seeds, each a random scenario, on a few threads; a summary at the end.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant as WallInstant};

use totem::Instant;

use crate::check::{CheckerKind, Violation};
use crate::scenario::{RunReport, Scenario, ScenarioOptions};
use crate::trace::TraceOutput;

/// What to run.
#[derive(Clone, Debug)]
pub struct SwarmOptions {
    /// How many seeds.
    pub seeds: u64,
    /// The first seed; the others follow it.
    pub first_seed: u64,
    /// The scenario space.
    pub scenario: ScenarioOptions,
    /// Worker threads.
    pub threads: usize,
    /// Run each seed twice and compare trace hashes (determinism check).
    pub twice: bool,
}

/// A failing seed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The command that replays it.
    pub replay: String,
    /// What went wrong.
    pub violations: Vec<Violation>,
}

/// Totals of a swarm.
#[derive(Clone, Debug, Default)]
pub struct SwarmSummary {
    /// Seeds run.
    pub runs: u64,
    /// Virtual time simulated, summed over runs.
    pub sim_time: Duration,
    /// Simulated node-seconds.
    pub node_seconds: f64,
    /// Messages accepted.
    pub submitted: u64,
    /// Deliveries.
    pub deliveries: u64,
    /// Group messages CPG clients sent.
    pub cpg_sent: u64,
    /// Group messages delivered to CPG clients, summed over clients.
    pub cpg_deliveries: u64,
    /// Group configuration changes told to CPG clients, summed over clients.
    pub cpg_confchgs: u64,
    /// Client views of a group that ended, and how many were compared with another's.
    pub cpg_views: (u64, u64),
    /// Regular configurations installed (summed over nodes).
    pub configs: u64,
    /// Regular configurations installed after a liveness phase had stabilized.
    pub configs_after_stable: u64,
    /// Runs with votequorum, their quorum events and how many of those said quorate.
    pub quorum: (u64, u64, u64),
    /// Runs with fencing, agent runs the power switches answered, nodes they powered off.
    pub fencing: (u64, u64, u64),
    /// Failing seeds, by seed.
    pub failures: Vec<Failure>,
    /// Failing seeds counted by the checker of their first violation.
    pub by_checker: BTreeMap<CheckerKind, u64>,
    /// Wall-clock time.
    pub wall: Duration,
}

impl SwarmSummary {
    /// Simulated node-seconds per wall-clock second.
    pub fn speed(&self) -> f64 {
        self.node_seconds / self.wall.as_secs_f64().max(1e-9)
    }

    fn add(&mut self, r: &RunReport) {
        self.runs += 1;
        self.sim_time += r.sim_time;
        self.node_seconds += r.node_seconds();
        self.submitted += r.submitted;
        self.deliveries += r.deliveries;
        self.cpg_sent += r.cpg_sent;
        self.cpg_deliveries += r.cpg_deliveries;
        self.cpg_confchgs += r.cpg_confchgs;
        self.cpg_views.0 += r.cpg_views.0;
        self.cpg_views.1 += r.cpg_views.1;
        self.configs += r.configs;
        self.configs_after_stable += r.liveness.configs_after_stable;
        self.quorum.0 += u64::from(r.quorum.0);
        self.quorum.1 += r.quorum.1;
        self.quorum.2 += r.quorum.2;
        self.fencing.0 += u64::from(r.fencing.0);
        self.fencing.1 += r.fencing.1;
        self.fencing.2 += r.fencing.2;
    }
}

impl fmt::Display for SwarmSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seeds run:              {}", self.runs)?;
        writeln!(
            f,
            "simulated time:         {:.1} s ({:.0} node-seconds)",
            self.sim_time.as_secs_f64(),
            self.node_seconds
        )?;
        writeln!(f, "messages submitted:     {}", self.submitted)?;
        writeln!(f, "messages delivered:     {} (summed over nodes)", self.deliveries)?;
        writeln!(
            f,
            "cpg:                    {} group messages sent, {} delivered, {} confchgs (summed over clients), \
             {} of {} views compared",
            self.cpg_sent, self.cpg_deliveries, self.cpg_confchgs, self.cpg_views.1, self.cpg_views.0
        )?;
        writeln!(
            f,
            "configurations:         {} (+{} after stabilizing)",
            self.configs, self.configs_after_stable
        )?;
        writeln!(
            f,
            "quorum:                 {} runs with votequorum, {} quorum events ({} quorate)",
            self.quorum.0, self.quorum.1, self.quorum.2
        )?;
        writeln!(
            f,
            "fencing:                {} runs with fencing, {} agent runs, {} nodes powered off",
            self.fencing.0, self.fencing.1, self.fencing.2
        )?;
        write!(f, "failing seeds:          {}", self.failures.len())?;
        for (k, n) in &self.by_checker {
            write!(f, " {}={n}", k.name())?;
        }
        writeln!(f)?;
        write!(
            f,
            "speed:                  {:.0} node-seconds per wall second ({:.1} s wall)",
            self.speed(),
            self.wall.as_secs_f64()
        )
    }
}

/// The wall clock, read only to report the simulator's speed; nothing simulated sees it.
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> WallInstant {
    WallInstant::now()
}

/// Runs one seed, timing it; a panic of the simulator itself becomes a violation.
pub fn run_seed(seed: u64, options: &ScenarioOptions, trace: TraceOutput) -> RunReport {
    let wall = wall_clock();
    let result = catch_unwind(AssertUnwindSafe(|| Scenario::generate(seed, options).run(trace)));
    let mut report = result.unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        RunReport {
            seed,
            nodes: 0,
            sim_time: Duration::ZERO,
            submitted: 0,
            deliveries: 0,
            cpg_sent: 0,
            cpg_deliveries: 0,
            cpg_confchgs: 0,
            cpg_views: (0, 0),
            configs: 0,
            quorum: (false, 0, 0),
            fencing: (false, 0, 0),
            steps: 0,
            liveness: Default::default(),
            violations: vec![Violation::new(
                CheckerKind::Engine,
                Instant::ZERO,
                None,
                format!("simulator panic: {msg}"),
            )],
            trace_hash: 0,
            wall: Duration::ZERO,
        }
    });
    report.wall = wall.elapsed();
    report
}

/// Runs the swarm; `on_report` sees each run as it finishes (from worker threads).
pub fn run_swarm(opts: &SwarmOptions, on_report: impl Fn(&RunReport) + Sync) -> SwarmSummary {
    let wall = wall_clock();
    let next = AtomicU64::new(0);
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..opts.threads.max(1) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= opts.seeds {
                    break;
                }
                let seed = opts.first_seed.wrapping_add(k);
                let mut report = run_seed(seed, &opts.scenario, TraceOutput::Off);
                if opts.twice {
                    let again = run_seed(seed, &opts.scenario, TraceOutput::Off);
                    if again.trace_hash != report.trace_hash {
                        report.violations.push(Violation::new(
                            CheckerKind::Engine,
                            Instant::ZERO,
                            None,
                            format!(
                                "nondeterminism: trace hash {:016x} then {:016x}",
                                report.trace_hash, again.trace_hash
                            ),
                        ));
                    }
                }
                on_report(&report);
                reports.lock().unwrap_or_else(|e| e.into_inner()).push(report);
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by_key(|r| r.seed);
    let mut summary = SwarmSummary::default();
    for r in &reports {
        summary.add(r);
        if let Some(first) = r.violations.first() {
            *summary.by_checker.entry(first.checker).or_default() += 1;
            summary.failures.push(Failure {
                seed: r.seed,
                replay: opts.scenario.replay_command(r.seed),
                violations: r.violations.clone(),
            });
        }
    }
    summary.wall = wall.elapsed();
    summary
}
