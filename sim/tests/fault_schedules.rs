//! Property: no schedule of faults (partitions, one-way cuts, crashes, restarts, pauses, loss,
//! fault rules) breaks an invariant, and the cluster recovers once the faults stop.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use sim::net::{Action, PacketKind, Rule};
use sim::{Cluster, CpgLoad, Fault, SimConfig};
use totem::{Instant, NodeId};

/// A fault with node numbers still to be reduced modulo the cluster size.
#[derive(Clone, Debug)]
enum RawFault {
    Split(u32),
    Cut(u32, u32),
    Heal,
    Crash(u32),
    Restart(u32),
    Pause(u32, u64),
    Loss(u8),
    DropTokens(u32, u64),
    ClearRules,
}

fn raw_fault() -> impl Strategy<Value = RawFault> {
    prop_oneof![
        any::<u32>().prop_map(RawFault::Split),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| RawFault::Cut(a, b)),
        Just(RawFault::Heal),
        any::<u32>().prop_map(RawFault::Crash),
        any::<u32>().prop_map(RawFault::Restart),
        (any::<u32>(), 10u64..4000).prop_map(|(n, ms)| RawFault::Pause(n, ms)),
        (0u8..=30).prop_map(RawFault::Loss),
        (any::<u32>(), 100u64..3000).prop_map(|(n, ms)| RawFault::DropTokens(n, ms)),
        Just(RawFault::ClearRules),
    ]
}

fn to_fault(raw: &RawFault, n: u32, now: Instant) -> Fault {
    let node = |k: u32| NodeId(k % n + 1);
    match *raw {
        RawFault::Split(mask) => {
            let (a, b): (Vec<NodeId>, Vec<NodeId>) =
                (1..=n).map(NodeId).partition(|id| mask >> id.0 & 1 == 1);
            Fault::Partition(vec![a, b])
        }
        RawFault::Cut(a, b) => Fault::Cut { from: node(a), to: node(b) },
        RawFault::Heal => Fault::Heal,
        RawFault::Crash(k) => Fault::Crash(node(k)),
        RawFault::Restart(k) => Fault::Restart(node(k)),
        RawFault::Pause(k, ms) => Fault::Pause(node(k), Duration::from_millis(ms)),
        RawFault::Loss(p) => Fault::SetLoss(f64::from(p) / 100.0),
        RawFault::DropTokens(k, ms) => Fault::AddRule(
            Rule::new(Action::Drop)
                .from(&[node(k)])
                .kinds(&[PacketKind::Token])
                .until(now + Duration::from_millis(ms)),
        ),
        RawFault::ClearRules => Fault::ClearRules,
    }
}

/// Deterministic by default so CI is reproducible; `PROPTEST_RNG_SEED` (and `PROPTEST_CASES`)
/// explore further.
fn config() -> Config {
    let base = Config::default();
    let rng_seed = if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
        base.rng_seed
    } else {
        RngSeed::Fixed(0x7369_6d00)
    };
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { base.cases } else { 64 };
    Config { cases, max_shrink_iters: 64, failure_persistence: None, rng_seed, ..base }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_fault_schedule_breaks_an_invariant(
        seed in any::<u64>(),
        n in 2u32..=5,
        schedule in prop::collection::vec((0u64..8_000, raw_fault()), 0..12),
    ) {
        let mut schedule = schedule;
        schedule.sort_by_key(|(t, _)| *t);
        // CPG clients too: their groups must survive the same schedules.
        let cfg = SimConfig { cpg: CpgLoad { ops_per_node: 10.0, ..CpgLoad::default() }, ..SimConfig::default() };
        let mut c = Cluster::new(seed, n as usize, cfg).expect("valid config");
        for (at, raw) in &schedule {
            c.run_until(Instant::ZERO + Duration::from_millis(*at));
            let fault = to_fault(raw, n, c.now());
            c.apply(&fault);
        }
        c.run_until(Instant::ZERO + Duration::from_secs(10));
        c.stop_faults(true);
        c.check_liveness();
        let v: Vec<String> = c.violations().iter().map(|v| v.to_string()).collect();
        prop_assert!(v.is_empty(), "seed {seed}, {n} nodes, schedule {schedule:?}:\n{}", v.join("\n"));
    }
}
