//! The CI-sized swarm: a few hundred random scenarios (faults, then healing and the liveness
//! check; raw load and CPG clients) must produce no violation, and a sample of seeds must replay with the same trace hash.
//! `SIM_CI_SEEDS` overrides the seed count; `SIM_CI_FIRST_SEED` the first seed.

use std::time::Duration;

use sim::scenario::ScenarioOptions;
use sim::swarm::{run_swarm, SwarmOptions, SwarmSummary};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn failures(summary: &SwarmSummary) -> String {
    let mut s = String::new();
    for f in &summary.failures {
        s.push_str(&format!("seed {}:\n", f.seed));
        for v in f.violations.iter().take(3) {
            s.push_str(&format!("  {v}\n"));
        }
        s.push_str(&format!("  replay: {} --trace\n", f.replay));
    }
    s
}

#[test]
fn swarm_of_random_scenarios_finds_no_violation() {
    let first_seed = env_u64("SIM_CI_FIRST_SEED", 0x5EED_0000);
    let scenario = ScenarioOptions {
        nodes_min: 2,
        nodes_max: 9,
        safety: Duration::from_secs(15),
        cpg: true,
        quorum: true,
        fencing: true,
    };
    let opts = SwarmOptions {
        seeds: env_u64("SIM_CI_SEEDS", 500),
        first_seed,
        scenario: scenario.clone(),
        threads: 2,
        twice: false,
    };
    let summary = run_swarm(&opts, |_| {});
    println!("{summary}");
    assert!(summary.failures.is_empty(), "{} failing seeds:\n{}", summary.failures.len(), failures(&summary));
    // The scenarios include CPG clients: the group checkers had something to check.
    assert!(summary.cpg_deliveries > 0 && summary.cpg_confchgs > 0, "{summary}");
}

#[test]
fn swarm_seeds_replay_with_the_same_trace_hash() {
    let scenario = ScenarioOptions {
        nodes_min: 2,
        nodes_max: 5,
        safety: Duration::from_secs(5),
        cpg: true,
        quorum: true,
        fencing: true,
    };
    let opts = SwarmOptions { seeds: 8, first_seed: 0xD00D, scenario, threads: 2, twice: true };
    let summary = run_swarm(&opts, |_| {});
    let nondeterministic: Vec<_> = summary
        .failures
        .iter()
        .filter(|f| f.violations.iter().any(|v| v.detail.contains("nondeterminism")))
        .collect();
    assert!(nondeterministic.is_empty(), "{nondeterministic:?}");
}
