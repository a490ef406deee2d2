//! Deterministic simulation of a totem cluster: virtual time, a faulty network, crashing,
//! pausing and drifting nodes, random load, invariant checkers and a swarm runner.
//!
//! The design follows TigerBeetle's VOPR: a seed derives the whole scenario (see [`scenario`]);
//! a safety phase with faults is followed by a liveness phase after healing; the checkers in
//! [`check`] watch every step from outside the nodes; every failure prints the one command that
//! reproduces it. Network faults are an ordered list of rules as in turmoil ([`net::Rule`]).
//!
//! Determinism: one [`rng::SimRng`] drives everything, every collection iterated is ordered,
//! and simultaneous events run in insertion order, so the same seed and build give the same
//! trace, whose hash ([`Cluster::trace_hash`]) every run prints.
//!
//! # Running
//! ```text
//! cargo run --release -p sim -- swarm --seeds 10000 [--nodes 2..9] [--first-seed S] [--twice] [--no-cpg] [--no-quorum] [--no-fencing]
//! cargo run --release -p sim -- run --seed S [--nodes 2..9] [--safety-ms 20000] [--trace]
//! ```
//! A failing seed prints the `run` command that replays it; `--trace` prints one line per event
//! (sends and arrivals with the decoded packet, drops and why, timeouts, deliveries,
//! configurations, faults, violations).
//!
//! # Library
//! [`Cluster`] is the harness tests drive: `Cluster::new(seed, n, SimConfig)`, network verbs
//! (`partition`, `cut`, `isolate`, `heal`, `set_loss`, `set_link`, `add_rule`), node verbs
//! (`crash`, `restart`, `pause`, `resume`, `submit`, `set_load`), running (`run_for`,
//! `run_until`, `run_until_pred`, `run_until_stable`), the liveness phase (`stop_faults`,
//! `check_liveness`) and inspection (`violations`, `stats`, `views`, `trace_hash`).
//! [`scenario::Scenario`] derives a whole run from a seed; [`swarm::run_swarm`] runs many.
//! [`Mutation`] injects a deliberate delivery bug to prove the checkers catch it.
//!
//! # Closed process groups
//! Every node runs the CPG service ([`totemd::Node`] composes it). With [`CpgLoad`] on (the
//! swarm turns it on at random), simulated client processes on each node connect, join and
//! leave groups, send agreed and safe group messages (some larger than the MTU) and exit; a
//! crash takes a node's clients with it. Tests drive clients directly with `cpg_connect`,
//! `cpg_join`, `cpg_leave`, `cpg_mcast`, `cpg_disconnect` and read `cpg_events`. Every
//! client's event stream goes to the checkers of [`check::cpg`], and the liveness phase waits
//! for the groups to settle.
//!
//! # Quorum
//! With [`SimConfig::quorum`] set (the swarm draws a configuration in about 60 % of seeds, see
//! [`scenario::random_quorum`]; `--no-quorum` turns it off) every node runs votequorum, its
//! quorum events go to the trace and the checkers, and [`check::split_brain`] checks at every
//! step that no two disjoint partitions are quorate at once and that a stale quorum ends
//! within a bound. `two_node` is drawn only with fencing: without it both halves of a two-node
//! split stay quorate by design. Tests read `is_quorate` and `quorum_events`. In the liveness
//! phase, once every configured node is live and in one ring, every node must be quorate.
//!
//! `last_man_standing` is drawn in about 30 % of the quorum seeds. Seed 7001510 once found
//! with it the split brain corosync's rules allow (two rings each mixing members of the
//! partition that lowered the expected votes with nodes left out of it); votequorum now also
//! asks a majority of that partition (see the `quorum` crate doc).
//!
//! # Fencing
//! With [`SimConfig::fencing`] (drawn in about half of the quorum seeds, see
//! [`scenario::random_fencing`]; `--no-fencing` turns it off) every node runs the fencing
//! policy, and every fence device is a power switch the simulator controls ([`fence`]): it
//! honours `delay=`, powers the `port=` node off (`action=reboot`: on again after a boot
//! time, with fresh state; `action=on`: on), and reports to the node that ran the agent;
//! fault rules make a switch fail or hang ([`Fault::Switch`]). Two-node clusters get
//! `two_node` with a `delay` on node 1 in most fencing seeds. [`check::fencing`] checks at
//! every step that no two nodes outside each other's ring are both quorate, unfenced and
//! active, which catches a paused node that wakes on stale state
//! ([`MutationKind::FakeFence`] shows it). The liveness phase repairs the switches, powers
//! nodes back on when it restarts crashed ones, and waits for fencing to settle. Tests use
//! `set_switch`, `power_on`, `is_powered_off`, `fencing_held` and `fence_history`.
#![forbid(unsafe_code)]

pub mod check;
pub mod clients;
pub mod cluster;
pub mod fault;
pub mod fence;
pub mod net;
pub mod node;
pub mod rng;
pub mod scenario;
pub mod summary;
pub mod swarm;
pub mod trace;
pub mod workload;

pub use check::{CheckerKind, ClientRef, Violation};
pub use clients::CpgLoad;
pub use cluster::{Cluster, LivenessReport, Mutation, MutationKind, SimConfig, SimError, SimStats};
pub use fault::Fault;
pub use scenario::{RunReport, Scenario, ScenarioOptions};
pub use trace::TraceOutput;
pub use workload::{LoadConfig, MsgId};
