//! Helpers shared by the scenario test files.

use sim::Cluster;

/// Panics with every violation the checkers recorded, naming the seed.
#[track_caller]
pub fn assert_clean(c: &Cluster) {
    assert!(
        c.violations().is_empty(),
        "seed {}: violations:\n{}",
        c.seed(),
        c.violations().iter().map(|v| format!("  {v}")).collect::<Vec<_>>().join("\n")
    );
}
