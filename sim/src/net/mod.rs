//! The network fabric: per-link behaviour, one-way cuts (asymmetric partitions) and fault rules.
//!
//! The fabric decides each packet's fate on each directed link; the cluster schedules the
//! arrivals. Everything is drawn from the caller's generator so a seed fixes every fate.

mod link;
mod rules;

use std::collections::{BTreeMap, BTreeSet};

use totem::{Instant, NodeId};

pub use link::{Delays, Jitter, Latency, LinkConfig};
pub use rules::{Action, PacketKind, Rule};

use crate::rng::{nanos, SimRng};

/// Why a packet did not arrive.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The directed link is cut.
    Cut,
    /// A fault rule dropped it.
    Rule,
    /// Random loss on the link.
    Loss,
}

impl DropReason {
    /// A short name for traces.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Cut => "cut",
            DropReason::Rule => "rule",
            DropReason::Loss => "loss",
        }
    }
}

/// The fate of one packet on one link.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Lost.
    Dropped(DropReason),
    /// Arrives after each of these delays (nanoseconds).
    Arrives(Delays),
}

/// All links of the cluster.
#[derive(Clone, Debug, Default)]
pub struct Fabric {
    default_link: LinkConfig,
    links: BTreeMap<(NodeId, NodeId), LinkConfig>,
    cuts: BTreeSet<(NodeId, NodeId)>,
    rules: Vec<Rule>,
    extra_loss: f64,
}

impl Fabric {
    /// A fabric where every link behaves like `default_link`.
    pub fn new(default_link: LinkConfig) -> Self {
        Fabric { default_link, ..Fabric::default() }
    }

    /// The behaviour of the directed link `from → to`.
    pub fn link(&self, from: NodeId, to: NodeId) -> &LinkConfig {
        self.links.get(&(from, to)).unwrap_or(&self.default_link)
    }

    /// Overrides the behaviour of the directed link `from → to`.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, link: LinkConfig) {
        self.links.insert((from, to), link);
    }

    /// Sets the behaviour of every link without an override.
    pub fn set_default_link(&mut self, link: LinkConfig) {
        self.default_link = link;
    }

    /// Cuts the directed link `from → to` (packets that way are lost; the other way is untouched).
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cuts.insert((from, to));
    }

    /// Restores the directed link `from → to`.
    pub fn uncut(&mut self, from: NodeId, to: NodeId) {
        self.cuts.remove(&(from, to));
    }

    /// Whether `from → to` is cut.
    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cuts.contains(&(from, to))
    }

    /// The cut directed links.
    pub fn cuts(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.cuts.iter().copied()
    }

    /// Restores every cut link.
    pub fn heal(&mut self) {
        self.cuts.clear();
    }

    /// Appends a rule (rules are tried in the order added).
    pub fn add_rule(&mut self, rule: Rule) {
        self.rules.push(rule);
    }

    /// Removes every rule.
    pub fn clear_rules(&mut self) {
        self.rules.clear();
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Sets a loss probability applied on every link on top of the link's own.
    pub fn set_loss(&mut self, p: f64) {
        self.extra_loss = p.clamp(0.0, 1.0);
    }

    /// Removes every fault: cuts, rules, cluster-wide loss, and the loss, duplication and
    /// reordering of every link (latencies stay).
    pub fn calm(&mut self) {
        self.heal();
        self.clear_rules();
        self.extra_loss = 0.0;
        for l in std::iter::once(&mut self.default_link).chain(self.links.values_mut()) {
            l.loss = 0.0;
            l.duplicate = 0.0;
            l.reorder = 0.0;
        }
    }

    /// Decides the fate of one packet of `kind` on `from → to` at `now`.
    pub fn route(&self, rng: &mut SimRng, now: Instant, from: NodeId, to: NodeId, kind: PacketKind) -> Fate {
        if self.is_cut(from, to) {
            return Fate::Dropped(DropReason::Cut);
        }
        let mut extra = 0;
        let mut copy_after = None;
        for rule in &self.rules {
            if !rule.matches(now, from, to, kind) || !rng.chance(rule.probability) {
                continue;
            }
            match rule.action {
                Action::Pass => {}
                Action::Drop => return Fate::Dropped(DropReason::Rule),
                Action::Delay(d) => extra = nanos(d),
                Action::Duplicate(d) => copy_after = Some(nanos(d)),
            }
            break;
        }
        let mut delays = self.link(from, to).sample(rng, self.extra_loss);
        let Some(&first) = delays.as_slice().first() else {
            return Fate::Dropped(DropReason::Loss);
        };
        if let Some(after) = copy_after {
            delays.push(first.saturating_add(after));
        }
        delays.delay_all(extra);
        Fate::Arrives(delays)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    fn fate(f: &Fabric, from: NodeId, to: NodeId, kind: PacketKind) -> Fate {
        f.route(&mut SimRng::new(9), Instant::ZERO, from, to, kind)
    }

    #[test]
    fn cuts_are_one_way_and_heal_restores() {
        let mut f = Fabric::new(LinkConfig::default());
        f.cut(A, B);
        assert_eq!(fate(&f, A, B, PacketKind::Mcast), Fate::Dropped(DropReason::Cut));
        assert!(matches!(fate(&f, B, A, PacketKind::Mcast), Fate::Arrives(_)));
        f.heal();
        assert!(matches!(fate(&f, A, B, PacketKind::Mcast), Fate::Arrives(_)));
    }

    #[test]
    fn first_matching_rule_decides() {
        let mut f = Fabric::new(LinkConfig::default());
        f.add_rule(Rule::new(Action::Pass).kinds(&[PacketKind::Join]));
        f.add_rule(Rule::new(Action::Drop));
        assert!(matches!(fate(&f, A, B, PacketKind::Join), Fate::Arrives(_)));
        assert_eq!(fate(&f, A, B, PacketKind::Token), Fate::Dropped(DropReason::Rule));
        f.clear_rules();
        f.add_rule(Rule::new(Action::Delay(Duration::from_secs(1))));
        let Fate::Arrives(d) = fate(&f, A, B, PacketKind::Token) else { panic!() };
        assert!(d.as_slice()[0] >= 1_000_000_000);
        f.clear_rules();
        f.add_rule(Rule::new(Action::Duplicate(Duration::from_millis(3))));
        let Fate::Arrives(d) = fate(&f, A, B, PacketKind::Token) else { panic!() };
        assert_eq!(d.as_slice().len(), 2);
        assert_eq!(d.as_slice()[1], d.as_slice()[0] + 3_000_000);
    }

    #[test]
    fn calm_removes_every_fault() {
        let mut f = Fabric::new(LinkConfig { loss: 1.0, ..LinkConfig::default() });
        f.set_loss(1.0);
        f.cut(A, B);
        f.add_rule(Rule::new(Action::Drop));
        f.calm();
        assert!(matches!(fate(&f, A, B, PacketKind::Token), Fate::Arrives(_)));
    }
}
