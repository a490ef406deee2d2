//! Scenarios: a seed derives the whole run (cluster size, network, load, fault schedule),
//! which is a safety phase with faults followed by a liveness phase after healing.

use std::fmt::Write as _;
use std::time::Duration;

use quorum::{QuorumConfig, TieBreaker};
use totem::{Instant, NodeId, TotemConfig};

use crate::check::Violation;
use crate::clients::CpgLoad;
use crate::cluster::{Cluster, LivenessReport, SimConfig};
use crate::fault::Fault;
use crate::fence::{SimFencing, SwitchMode};
use crate::net::{Action, Jitter, Latency, LinkConfig, PacketKind, Rule};
use crate::rng::SimRng;
use crate::trace::TraceOutput;
use crate::workload::LoadConfig;

/// What a seed may choose from; part of the replay command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioOptions {
    /// Fewest nodes.
    pub nodes_min: usize,
    /// Most nodes.
    pub nodes_max: usize,
    /// Length of the safety phase (faults happen in it).
    pub safety: Duration,
    /// Whether CPG clients may run (`false`: the same scenarios without them, e.g. to measure
    /// what they cost).
    pub cpg: bool,
    /// Whether votequorum may run (`false`: never; the other draws of a seed stay the same).
    pub quorum: bool,
    /// Whether fencing may run with votequorum (`false`: never; the other draws stay the same).
    pub fencing: bool,
}

impl Default for ScenarioOptions {
    fn default() -> Self {
        ScenarioOptions {
            nodes_min: 2,
            nodes_max: 9,
            safety: Duration::from_secs(20),
            cpg: true,
            quorum: true,
            fencing: true,
        }
    }
}

impl ScenarioOptions {
    /// The node range as the command line spells it (`3` or `2..9`).
    pub fn nodes_arg(&self) -> String {
        if self.nodes_min == self.nodes_max {
            self.nodes_min.to_string()
        } else {
            format!("{}..{}", self.nodes_min, self.nodes_max)
        }
    }

    /// Parses `N` or `A..B` (inclusive).
    pub fn parse_nodes(s: &str) -> Result<(usize, usize), String> {
        let parse = |x: &str| x.trim().parse::<usize>().map_err(|e| format!("bad node count {x:?}: {e}"));
        let (lo, hi) = match s.split_once("..") {
            Some((a, b)) => (parse(a)?, parse(b.trim_start_matches('='))?),
            None => (parse(s)?, parse(s)?),
        };
        if lo == 0 || hi < lo {
            return Err(format!("node range {s:?} is empty or starts at 0"));
        }
        Ok((lo, hi))
    }

    /// The command that replays `seed` with these options.
    pub fn replay_command(&self, seed: u64) -> String {
        format!(
            "cargo run --release -p sim -- run --seed {seed} --nodes {} --safety-ms {}{}{}{}",
            self.nodes_arg(),
            self.safety.as_millis(),
            if self.cpg { "" } else { " --no-cpg" },
            if self.quorum { "" } else { " --no-quorum" },
            if self.fencing || !self.quorum { "" } else { " --no-fencing" },
        )
    }
}

/// One fully derived scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The seed it came from.
    pub seed: u64,
    /// The options it was drawn within.
    pub options: ScenarioOptions,
    /// Cluster size.
    pub nodes: usize,
    /// Cluster configuration.
    pub config: SimConfig,
    /// Seed of the cluster itself.
    pub cluster_seed: u64,
    /// Faults by time since start, sorted.
    pub faults: Vec<(Duration, Fault)>,
    /// Whether crashed nodes restart for the liveness phase.
    pub restart_crashed: bool,
}

/// The outcome of one run.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Virtual time simulated.
    pub sim_time: Duration,
    /// Messages accepted by the engines.
    pub submitted: u64,
    /// Deliveries summed over nodes.
    pub deliveries: u64,
    /// Group messages CPG clients sent.
    pub cpg_sent: u64,
    /// Group messages delivered to CPG clients, summed over clients.
    pub cpg_deliveries: u64,
    /// Group configuration changes told to CPG clients, summed over clients.
    pub cpg_confchgs: u64,
    /// Client views of a group (messages between two changes) that ended, and how many of
    /// them were compared with another client's view of the same two changes.
    pub cpg_views: (u64, u64),
    /// Regular configurations installed, summed over nodes.
    pub configs: u64,
    /// Whether votequorum ran, its events (summed over nodes) and how many of them said quorate.
    pub quorum: (bool, u64, u64),
    /// Whether fencing ran, the agent runs the switches answered and the nodes they powered off.
    pub fencing: (bool, u64, u64),
    /// Events processed.
    pub steps: u64,
    /// The liveness phase.
    pub liveness: LivenessReport,
    /// Everything the checkers found.
    pub violations: Vec<Violation>,
    /// Hash of the whole trace.
    pub trace_hash: u64,
    /// Wall-clock time of the run (filled by the driver that timed it; zero otherwise).
    pub wall: Duration,
}

impl RunReport {
    /// Simulated node-seconds.
    pub fn node_seconds(&self) -> f64 {
        self.sim_time.as_secs_f64() * self.nodes as f64
    }
}

fn ms(lo: u64, hi: u64, rng: &mut SimRng) -> Duration {
    Duration::from_millis(rng.range_inclusive(lo, hi))
}

impl Scenario {
    /// Derives the scenario of `seed`.
    pub fn generate(seed: u64, options: &ScenarioOptions) -> Scenario {
        let mut rng = SimRng::new(seed);
        let nodes = rng.range_inclusive(options.nodes_min as u64, options.nodes_max as u64) as usize;
        let mut config = random_config(&mut rng);
        if !options.cpg {
            config.cpg.ops_per_node = 0.0;
        }
        let ids: Vec<NodeId> = (1..=nodes as u32).map(NodeId).collect();
        let mut fence_faults = Vec::new();
        if options.quorum {
            config.quorum = random_quorum(seed, &ids);
            if let Some(q) = config.quorum.as_mut().filter(|_| options.fencing) {
                config.fencing = random_fencing(seed, &ids, q, options.safety, &mut fence_faults);
            }
        }
        let mut faults = Vec::new();
        let safety_ms = options.safety.as_millis() as u64;
        if rng.chance(0.5) {
            faults.push((Duration::ZERO, Fault::SetLoss(rng.unit() * 0.3)));
        }
        for _ in 0..rng.range_inclusive(0, 12) {
            let at = Duration::from_millis(rng.range_inclusive(0, safety_ms.saturating_sub(1)));
            random_fault(&mut rng, &ids, at, options.safety, &mut faults);
        }
        faults.extend(fence_faults);
        faults.sort_by_key(|(t, _)| *t);
        let restart_crashed = rng.chance(0.7);
        Scenario {
            seed,
            options: options.clone(),
            nodes,
            config,
            cluster_seed: rng.next_u64(),
            faults,
            restart_crashed,
        }
    }

    /// Runs the scenario: faults during the safety phase, then the liveness phase.
    pub fn run(&self, trace: TraceOutput) -> RunReport {
        let mut config = self.config.clone();
        config.trace = trace;
        let mut c =
            Cluster::new(self.cluster_seed, self.nodes, config).expect("generated configurations are valid");
        for (at, fault) in &self.faults {
            c.run_until(Instant::ZERO + *at);
            if c.halted() {
                break;
            }
            c.apply(fault);
        }
        c.run_until(Instant::ZERO + self.options.safety);
        let mut liveness = LivenessReport::default();
        if !c.halted() {
            let nobody_left = c.live_nodes().is_empty();
            c.stop_faults(self.restart_crashed || nobody_left);
            liveness = c.check_liveness();
        }
        let s = c.stats();
        RunReport {
            seed: self.seed,
            nodes: self.nodes,
            sim_time: c.now() - Instant::ZERO,
            submitted: s.submitted,
            deliveries: s.deliveries,
            cpg_sent: s.cpg_sent,
            cpg_deliveries: s.cpg_deliveries,
            cpg_confchgs: s.cpg_confchgs,
            cpg_views: (c.checkers().cpg.synchrony.ended(), c.checkers().cpg.synchrony.compared()),
            configs: s.regular_configs,
            quorum: (
                self.config.quorum.is_some(),
                c.quorum_events().len() as u64,
                c.quorum_events().iter().filter(|(_, _, e)| e.quorate).count() as u64,
            ),
            fencing: (self.config.fencing.is_some(), c.fence_stats().0, c.fence_stats().1),
            steps: s.steps,
            liveness,
            violations: c.violations().to_vec(),
            trace_hash: c.trace_hash(),
            wall: Duration::ZERO,
        }
    }

    /// A readable summary of the scenario.
    pub fn describe(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let _ =
            writeln!(s, "seed {} ({} nodes, safety phase {:?})", self.seed, self.nodes, self.options.safety);
        let _ = writeln!(
            s,
            "totem: token {:?}, consensus {:?}, netmtu {}, packet_max {}, window {}, max_messages {}",
            c.totem.token,
            c.totem.consensus,
            c.totem.netmtu,
            c.totem.packet_max,
            c.totem.window_size,
            c.totem.max_messages
        );
        let _ = writeln!(s, "links: {:?}", c.link);
        let _ = writeln!(
            s,
            "cpg: {:.1} client ops/s per node, up to {} clients per node, {} groups, {:.0}% safe, {:.0}% large",
            c.cpg.ops_per_node,
            c.cpg.clients_max,
            c.cpg.groups,
            c.cpg.messages.safe_fraction * 100.0,
            c.cpg.messages.large_fraction * 100.0
        );
        let _ = writeln!(
            s,
            "load: {:.1} msg/s per node, {:.0}% safe, {:.0}% large; drift ±{} ppm; socket buffer {}",
            c.load.rate_per_node,
            c.load.safe_fraction * 100.0,
            c.load.large_fraction * 100.0,
            c.drift_ppm_max,
            c.socket_buffer_packets
        );
        match &c.quorum {
            None => s.push_str("quorum: off\n"),
            Some(q) => {
                let _ = writeln!(
                    s,
                    "quorum: votes {:?}, two_node {}, wait_for_all {:?}, last_man_standing {} (window {:?}), auto_tie_breaker {} {:?}",
                    q.nodelist.values().collect::<Vec<_>>(),
                    q.two_node,
                    q.wait_for_all,
                    q.last_man_standing,
                    q.last_man_standing_window,
                    q.auto_tie_breaker,
                    q.auto_tie_breaker_node
                );
            }
        }
        if let Some(f) = &c.fencing {
            let delays: Vec<String> = f
                .config
                .nodes
                .iter()
                .filter_map(|(id, n)| {
                    let attrs = &n.methods[0].devices[0].attrs;
                    attrs.iter().find(|(k, _)| k == "delay").map(|(_, v)| format!("n{id} {v}s"))
                })
                .collect();
            let action = f.config.nodes.values().next().and_then(|n| {
                n.methods[0].devices[0].attrs.iter().find(|(k, _)| k == "action").map(|(_, v)| v.clone())
            });
            let _ = writeln!(
                s,
                "fencing: power switches {:?}, action {}, delays [{}], latency {:?}..{:?}, boot {:?}",
                crate::fence::SimFencing::SWITCHES,
                action.as_deref().unwrap_or("reboot"),
                delays.join(", "),
                f.latency.0,
                f.latency.1,
                f.boot_time
            );
        }
        for (t, f) in &self.faults {
            let _ = writeln!(s, "  at {:>8.3}s: {f}", t.as_secs_f64());
        }
        let _ = writeln!(
            s,
            "then: calm{}, liveness check",
            if self.restart_crashed { ", restart crashed nodes" } else { "" }
        );
        s
    }
}

/// votequorum on every node in about 60 % of seeds, from a generator of its own so the other
/// draws of a seed do not change with it: a nodelist of all nodes (sometimes unequal votes),
/// maybe `wait_for_all`, `last_man_standing` with a short window, `auto_tie_breaker` with
/// lowest, highest or a list. Never `two_node` here: without fencing both halves of a
/// two-node split stay quorate by design, which the split brain checker would rightly flag
/// ([`random_fencing`] sets it).
pub fn random_quorum(seed: u64, ids: &[NodeId]) -> Option<QuorumConfig> {
    let mut rng = SimRng::new(seed ^ 0x9E37_79B9_7F4A_7C15);
    if !rng.chance(0.6) {
        return None;
    }
    let unequal = rng.chance(0.25);
    let mut q = QuorumConfig {
        nodelist: ids
            .iter()
            .map(|&id| (id, if unequal { rng.range_inclusive(1, 3) as u32 } else { 1 }))
            .collect(),
        ..QuorumConfig::default()
    };
    if rng.chance(0.3) {
        q.wait_for_all = Some(true);
    }
    if rng.chance(0.3) {
        q.last_man_standing = true;
        q.last_man_standing_window = ms(300, 5000, &mut rng);
    }
    if rng.chance(0.35) {
        q.auto_tie_breaker = true;
        q.auto_tie_breaker_node = match rng.below(4) {
            0 => None,
            1 => Some(TieBreaker::Lowest),
            2 => Some(TieBreaker::Highest),
            _ => {
                let mut list = ids.to_vec();
                for k in (1..list.len()).rev() {
                    list.swap(k, rng.below(k as u64 + 1) as usize);
                }
                list.truncate(rng.range_inclusive(1, ids.len() as u64) as usize);
                Some(TieBreaker::List(list))
            }
        };
    }
    if q.resolve(ids[0]).is_err() {
        // auto_tie_breaker with last_man_standing in an odd cluster needs wait_for_all.
        q.wait_for_all = Some(true);
    }
    Some(q)
}

/// Fencing with two simulated power switches in about half of the quorum seeds, from a
/// generator of its own: reboot or (sometimes) off, with a `delay` on one node at times (on
/// the lowest id with `two_node`, which two-node clusters get in most fencing seeds), and up
/// to three switch faults (fail or hang, mended after a while or never) added to `faults`.
pub fn random_fencing(
    seed: u64,
    ids: &[NodeId],
    quorum: &mut QuorumConfig,
    safety: Duration,
    faults: &mut Vec<(Duration, Fault)>,
) -> Option<SimFencing> {
    let mut rng = SimRng::new(seed ^ 0xF3C3_0000_5EED_0001);
    if !rng.chance(0.5) {
        return None;
    }
    if ids.len() == 2 && rng.chance(0.7) {
        let mut q = quorum.clone();
        q.two_node = true;
        if q.resolve(ids[0]).is_ok() {
            *quorum = q;
        }
    }
    let delayed = if quorum.two_node || rng.chance(0.3) {
        vec![(ids[0], rng.range_inclusive(1, 3) as u32)]
    } else {
        Vec::new()
    };
    let action = if rng.chance(0.2) { Some("off") } else { None };
    let mut f = SimFencing::power_switches(ids, &delayed, action);
    f.latency = (ms(5, 50, &mut rng), ms(60, 600, &mut rng));
    f.boot_time = ms(500, 4000, &mut rng);
    let safety_ms = safety.as_millis() as u64;
    for _ in 0..rng.range_inclusive(0, 3) {
        let device = rng.pick(&SimFencing::SWITCHES).copied().unwrap_or("switch1").to_string();
        let mode = if rng.chance(0.6) { SwitchMode::Fail } else { SwitchMode::Hang };
        let at = Duration::from_millis(rng.range_inclusive(0, safety_ms.saturating_sub(1)));
        faults.push((at, Fault::Switch { device: device.clone(), mode: Some(mode) }));
        let back = at + ms(500, 15_000, &mut rng);
        if back < safety {
            faults.push((back, Fault::Switch { device, mode: None }));
        }
    }
    Some(f)
}

fn random_config(rng: &mut SimRng) -> SimConfig {
    let token = Duration::from_millis(*rng.pick(&[600, 1000, 1000, 1500]).unwrap_or(&1000));
    let mut totem = TotemConfig::with_token(token);
    totem.netmtu = *rng.pick(&[1500, 1500, 600]).unwrap_or(&1500);
    totem.window_size = *rng.pick(&[50, 50, 10]).unwrap_or(&50);
    totem.max_messages = totem.max_messages.min(totem.window_size);
    // totemd's large packets (its link layer cuts them into datagrams), or netmtu ones.
    totem.packet_max = *rng.pick(&[0, 32 * 1024]).unwrap_or(&0);
    let jitter = match rng.below(3) {
        0 => Jitter::None,
        1 => Jitter::Uniform(Duration::from_micros(rng.range_inclusive(0, 2000))),
        _ => Jitter::Exponential(Duration::from_micros(rng.range_inclusive(50, 2000))),
    };
    let link = LinkConfig {
        latency: Latency { base: Duration::from_micros(rng.range_inclusive(20, 3000)), jitter },
        loss: 0.0,
        duplicate: if rng.chance(0.3) { rng.unit() * 0.05 } else { 0.0 },
        reorder: if rng.chance(0.3) { rng.unit() * 0.1 } else { 0.0 },
        reorder_delay: ms(1, 20, rng),
    };
    let load = LoadConfig {
        rate_per_node: *rng.pick(&[0.0, 5.0, 20.0, 20.0, 50.0, 100.0]).unwrap_or(&20.0),
        safe_fraction: rng.unit(),
        large_fraction: rng.unit() * 0.2,
        ..LoadConfig::default()
    };
    let cpg = CpgLoad {
        ops_per_node: *rng.pick(&[0.0, 2.0, 5.0, 10.0, 30.0]).unwrap_or(&5.0),
        clients_max: rng.range_inclusive(1, 5) as usize,
        groups: rng.range_inclusive(1, 3) as usize,
        disconnect_fraction: rng.unit() * 0.1,
        membership_fraction: 0.05 + rng.unit() * 0.2,
        messages: LoadConfig {
            safe_fraction: rng.unit(),
            large_fraction: rng.unit() * 0.2,
            ..LoadConfig::default()
        },
        ..CpgLoad::default()
    };
    SimConfig {
        totem,
        link,
        load,
        cpg,
        socket_buffer_packets: *rng.pick(&[16, 64, 256]).unwrap_or(&256),
        drift_ppm_max: *rng.pick(&[0, 100, 1000, 10_000]).unwrap_or(&100),
        ..SimConfig::default()
    }
}

fn random_fault(
    rng: &mut SimRng,
    ids: &[NodeId],
    at: Duration,
    safety: Duration,
    out: &mut Vec<(Duration, Fault)>,
) {
    let node = *rng.pick(ids).unwrap_or(&NodeId(1));
    let fault = match rng.below(11) {
        0 | 1 => {
            let mut shuffled = ids.to_vec();
            rng.shuffle(&mut shuffled);
            let groups = rng.range_inclusive(2, 3.min(ids.len() as u64).max(2)) as usize;
            let mut parts = vec![Vec::new(); groups];
            for (k, n) in shuffled.into_iter().enumerate() {
                let g = if k < groups { k } else { rng.below(groups as u64) as usize };
                parts[g].push(n);
            }
            Fault::Partition(parts)
        }
        2 => Fault::Cut { from: node, to: *rng.pick(ids).unwrap_or(&node) },
        3 => Fault::Heal,
        4 | 5 => {
            if rng.chance(0.7) {
                let back = at + ms(100, 8000, rng);
                if back < safety {
                    out.push((back, Fault::Restart(node)));
                }
            }
            if rng.chance(0.3) {
                Fault::Leave(node)
            } else {
                Fault::Crash(node)
            }
        }
        6 => Fault::Pause(node, ms(50, 5000, rng)),
        7 => Fault::SetLoss(rng.unit() * 0.3),
        8 => {
            let action = match rng.below(3) {
                0 => Action::Drop,
                1 => Action::Delay(ms(1, 1500, rng)),
                _ => Action::Duplicate(ms(0, 50, rng)),
            };
            let kinds: &[PacketKind] = match rng.below(4) {
                0 => &[PacketKind::Token],
                1 => &[PacketKind::Join, PacketKind::CommitToken],
                2 => &[PacketKind::Mcast],
                _ => &[
                    PacketKind::Token,
                    PacketKind::Mcast,
                    PacketKind::Join,
                    PacketKind::CommitToken,
                    PacketKind::MergeDetect,
                ],
            };
            let until = Instant::ZERO + at + ms(100, 5000, rng);
            Fault::AddRule(Rule::new(action).from(&[node]).kinds(kinds).probability(rng.unit()).until(until))
        }
        9 => Fault::ClearRules,
        _ => Fault::SetLoad(*rng.pick(&[0.0, 5.0, 20.0, 100.0]).unwrap_or(&20.0)),
    };
    out.push((at, fault));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_derives_the_same_scenario() {
        let o = ScenarioOptions::default();
        let (a, b) = (Scenario::generate(42, &o), Scenario::generate(42, &o));
        assert_eq!(a.describe(), b.describe());
        assert_eq!(a.cluster_seed, b.cluster_seed);
        assert!((2..=9).contains(&a.nodes));
        assert!(a.faults.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(a.config.totem.validate().is_ok());
    }

    #[test]
    fn node_ranges_parse_and_print() {
        assert_eq!(ScenarioOptions::parse_nodes("2..9"), Ok((2, 9)));
        assert_eq!(ScenarioOptions::parse_nodes("2..=9"), Ok((2, 9)));
        assert_eq!(ScenarioOptions::parse_nodes("5"), Ok((5, 5)));
        assert!(ScenarioOptions::parse_nodes("0").is_err());
        assert!(ScenarioOptions::parse_nodes("5..2").is_err());
        let o = ScenarioOptions {
            nodes_min: 3,
            nodes_max: 3,
            safety: Duration::from_secs(2),
            cpg: true,
            quorum: true,
            fencing: true,
        };
        assert_eq!(
            o.replay_command(7),
            "cargo run --release -p sim -- run --seed 7 --nodes 3 --safety-ms 2000"
        );
    }
}
