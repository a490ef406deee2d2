//! The `quorum` section of corosync.conf (votequorum(5)), its defaults and its validation.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use totem::NodeId;

/// Which partition `auto_tie_breaker` lets win a 50/50 split (`auto_tie_breaker_node`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TieBreaker {
    /// The partition holding the lowest node id of the last quorate membership (the default).
    #[default]
    Lowest,
    /// The partition holding the highest node id of the last quorate membership.
    Highest,
    /// The first listed node found in this partition wins, unless a node listed before it was
    /// in the previous membership (it may be in the other half).
    List(Vec<NodeId>),
}

impl FromStr for TieBreaker {
    type Err = ConfigError;

    /// Parses `lowest`, `highest` or a space-separated list of non-zero node ids.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim() {
            "lowest" => return Ok(TieBreaker::Lowest),
            "highest" => return Ok(TieBreaker::Highest),
            _ => {}
        }
        let bad = || ConfigError::TieBreakerNode(s.to_string());
        let ids = s
            .split_whitespace()
            .map(|w| w.parse::<u32>().ok().filter(|&n| n != 0).map(NodeId).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Err(bad());
        }
        Ok(TieBreaker::List(ids))
    }
}

/// Options of votequorum, named as in corosync.conf's `quorum` section, plus the nodelist's
/// `quorum_votes`. `allow_downscale` and `expected_votes_tracking` are not supported.
#[derive(Clone, Debug, PartialEq)]
pub struct QuorumConfig {
    /// `quorum.expected_votes`: overrides the sum of the nodelist's votes when set.
    pub expected_votes: Option<u32>,
    /// `nodelist.node.X.quorum_votes` by node id (1 when not given); empty without a nodelist.
    pub nodelist: BTreeMap<NodeId, u32>,
    /// `quorum.votes` (deprecated): this node's votes when it is not in a nodelist (default 1).
    pub votes: Option<u32>,
    /// `two_node`: a two-node cluster stays quorate with one node (default off).
    pub two_node: bool,
    /// `wait_for_all`: first quorum only once all votes were seen at once. Unset follows `two_node`.
    pub wait_for_all: Option<bool>,
    /// `last_man_standing`: lower expected votes to the survivors after the window (default off).
    pub last_man_standing: bool,
    /// `last_man_standing_window` (default 10000 ms).
    pub last_man_standing_window: Duration,
    /// `auto_tie_breaker`: a partition of exactly half the votes can be quorate (default off).
    pub auto_tie_breaker: bool,
    /// `auto_tie_breaker_node`: which half wins (default `lowest`).
    pub auto_tie_breaker_node: Option<TieBreaker>,
}

impl Default for QuorumConfig {
    fn default() -> Self {
        QuorumConfig {
            expected_votes: None,
            nodelist: BTreeMap::new(),
            votes: None,
            two_node: false,
            wait_for_all: None,
            last_man_standing: false,
            last_man_standing_window: Duration::from_millis(10_000),
            auto_tie_breaker: false,
            auto_tie_breaker_node: None,
        }
    }
}

/// A configuration votequorum refuses to start with (corosync fails to start on each).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Neither a nodelist holding this node nor `quorum.expected_votes` is configured.
    #[error("configuration error: nodelist or quorum.expected_votes must be configured")]
    NoExpectedVotes,
    /// `auto_tie_breaker_node` is neither `lowest`, `highest` nor a list of node ids.
    #[error("auto_tie_breaker_node {0:?} must be 'lowest', 'highest' or a space-separated list of node ids")]
    TieBreakerNode(String),
    /// `auto_tie_breaker` and `last_man_standing` in an odd-sized cluster without `wait_for_all`.
    #[error("configuration error: auto_tie_breaker & last_man_standing not available in odd sized cluster")]
    TieBreakerWithLastManStandingOdd,
    /// A node (or `quorum.votes`) with zero votes, or `expected_votes: 0`.
    #[error("votes and expected_votes must be at least 1")]
    ZeroVotes,
}

/// A setting corosync turns off at start, with a critical log line, rather than refusing to run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigWarning {
    /// `two_node` with `auto_tie_breaker`: two_node is disabled.
    #[error("two_node is disabled: auto_tie_breaker is set")]
    TwoNodeWithTieBreaker,
    /// `auto_tie_breaker` in an odd-sized nodelist without `wait_for_all`: auto_tie_breaker is disabled.
    #[error("auto_tie_breaker is disabled: an odd number of votes needs wait_for_all with it")]
    TieBreakerOddWithoutWaitForAll,
    /// `auto_tie_breaker_node` without `auto_tie_breaker`: ignored.
    #[error("auto_tie_breaker_node is ignored without auto_tie_breaker")]
    TieBreakerNodeWithoutTieBreaker,
}

/// The settings in force on one node once defaults and corosync's adjustments are applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// This node's votes.
    pub votes: u32,
    /// This node's expected votes at start.
    pub expected_votes: u32,
    /// `two_node` in force.
    pub two_node: bool,
    /// `wait_for_all` in force.
    pub wait_for_all: bool,
    /// `wait_for_all` was not set and follows `two_node`.
    pub wait_for_all_follows_two_node: bool,
    /// `last_man_standing` in force.
    pub last_man_standing: bool,
    /// `last_man_standing_window`.
    pub last_man_standing_window: Duration,
    /// The tie breaker in force, `None` when `auto_tie_breaker` is off.
    pub tie_breaker: Option<TieBreaker>,
    /// What corosync would have logged as critical while adjusting.
    pub warnings: Vec<ConfigWarning>,
}

impl QuorumConfig {
    /// A configuration with `expected_votes` set and everything else at corosync's defaults.
    pub fn with_expected_votes(expected_votes: u32) -> Self {
        QuorumConfig { expected_votes: Some(expected_votes), ..QuorumConfig::default() }
    }

    /// A nodelist of `ids`, each with one vote, and everything else at corosync's defaults.
    pub fn with_nodes(ids: impl IntoIterator<Item = u32>) -> Self {
        QuorumConfig {
            nodelist: ids.into_iter().map(|id| (NodeId(id), 1)).collect(),
            ..QuorumConfig::default()
        }
    }

    /// The settings in force on `node_id`, as votequorum_readconfig() computes them at start.
    pub fn resolve(&self, node_id: NodeId) -> Result<Resolved, ConfigError> {
        if self.expected_votes == Some(0) || self.votes == Some(0) || self.nodelist.values().any(|&v| v == 0)
        {
            return Err(ConfigError::ZeroVotes);
        }
        // A nodelist that does not hold this node is ignored, as in corosync.
        let ours = self.nodelist.get(&node_id).copied();
        let nodelist_expected: u32 = if ours.is_some() { self.nodelist.values().sum() } else { 0 };
        let expected_votes = match (self.expected_votes, ours) {
            (Some(e), _) => e,
            (None, Some(_)) => nodelist_expected,
            (None, None) => return Err(ConfigError::NoExpectedVotes),
        };
        let votes = ours.unwrap_or(self.votes.unwrap_or(1));
        let mut warnings = Vec::new();
        let mut tie_breaker = match (self.auto_tie_breaker, &self.auto_tie_breaker_node) {
            (true, node) => Some(node.clone().unwrap_or_default()),
            (false, Some(_)) => {
                warnings.push(ConfigWarning::TieBreakerNodeWithoutTieBreaker);
                None
            }
            (false, None) => None,
        };
        let wait_for_all_follows_two_node = self.wait_for_all.is_none();
        let wait_for_all = self.wait_for_all.unwrap_or(self.two_node);
        let mut two_node = self.two_node;
        // two_node decides by a fence race, auto_tie_breaker by node id: they cannot both hold.
        if two_node && tie_breaker.is_some() {
            warnings.push(ConfigWarning::TwoNodeWithTieBreaker);
            two_node = false;
        }
        // An isolated half+1 without the tie breaker must not become quorate on reboot.
        if tie_breaker.is_some() && nodelist_expected % 2 == 1 && !wait_for_all {
            if self.last_man_standing {
                return Err(ConfigError::TieBreakerWithLastManStandingOdd);
            }
            warnings.push(ConfigWarning::TieBreakerOddWithoutWaitForAll);
            tie_breaker = None;
        }
        Ok(Resolved {
            votes,
            expected_votes,
            two_node,
            wait_for_all,
            wait_for_all_follows_two_node,
            last_man_standing: self.last_man_standing,
            last_man_standing_window: self.last_man_standing_window,
            tie_breaker,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_votequorum_5() {
        let c = QuorumConfig::default();
        assert_eq!(c.last_man_standing_window, Duration::from_millis(10_000));
        assert_eq!(c.resolve(NodeId(1)), Err(ConfigError::NoExpectedVotes));
        let r = QuorumConfig::with_expected_votes(8).resolve(NodeId(1)).unwrap();
        assert_eq!((r.votes, r.expected_votes, r.wait_for_all, r.tie_breaker), (1, 8, false, None));
    }

    #[test]
    fn nodelist_sums_votes_and_expected_votes_overrides_it() {
        let mut c = QuorumConfig::with_nodes([1, 2, 3]);
        c.nodelist.insert(NodeId(3), 3);
        let r = c.resolve(NodeId(3)).unwrap();
        assert_eq!((r.votes, r.expected_votes), (3, 5));
        c.expected_votes = Some(7);
        assert_eq!(c.resolve(NodeId(1)).unwrap().expected_votes, 7);
        // Not in the nodelist: the nodelist is ignored, quorum.votes counts.
        c.votes = Some(2);
        assert_eq!(c.resolve(NodeId(9)).unwrap().votes, 2);
        c.expected_votes = None;
        assert_eq!(c.resolve(NodeId(9)), Err(ConfigError::NoExpectedVotes));
    }

    #[test]
    fn two_node_implies_wait_for_all_unless_set() {
        let mut c = QuorumConfig::with_nodes([1, 2]);
        c.two_node = true;
        let r = c.resolve(NodeId(1)).unwrap();
        assert!(r.two_node && r.wait_for_all && r.wait_for_all_follows_two_node);
        c.wait_for_all = Some(false);
        assert!(!c.resolve(NodeId(1)).unwrap().wait_for_all);
    }

    #[test]
    fn two_node_is_disabled_by_auto_tie_breaker() {
        let mut c = QuorumConfig::with_nodes([1, 2]);
        c.two_node = true;
        c.auto_tie_breaker = true;
        let r = c.resolve(NodeId(1)).unwrap();
        assert!(!r.two_node);
        assert_eq!(r.tie_breaker, Some(TieBreaker::Lowest));
        assert_eq!(r.warnings, vec![ConfigWarning::TwoNodeWithTieBreaker]);
    }

    #[test]
    fn odd_cluster_tie_breaker_needs_wait_for_all() {
        let mut c = QuorumConfig::with_nodes([1, 2, 3]);
        c.auto_tie_breaker = true;
        let r = c.resolve(NodeId(1)).unwrap();
        assert_eq!((r.tie_breaker, r.warnings), (None, vec![ConfigWarning::TieBreakerOddWithoutWaitForAll]));
        c.last_man_standing = true;
        assert_eq!(c.resolve(NodeId(1)), Err(ConfigError::TieBreakerWithLastManStandingOdd));
        c.wait_for_all = Some(true);
        assert_eq!(c.resolve(NodeId(1)).unwrap().tie_breaker, Some(TieBreaker::Lowest));
    }

    #[test]
    fn tie_breaker_node_parses() {
        assert_eq!("lowest".parse(), Ok(TieBreaker::Lowest));
        assert_eq!("highest".parse(), Ok(TieBreaker::Highest));
        assert_eq!(" 3 1  5".parse(), Ok(TieBreaker::List(vec![NodeId(3), NodeId(1), NodeId(5)])));
        for bad in ["", "low", "1 x", "0"] {
            assert_eq!(bad.parse::<TieBreaker>(), Err(ConfigError::TieBreakerNode(bad.into())));
        }
    }

    #[test]
    fn zero_votes_are_refused() {
        assert_eq!(QuorumConfig::with_expected_votes(0).resolve(NodeId(1)), Err(ConfigError::ZeroVotes));
        let mut c = QuorumConfig::with_nodes([1, 2]);
        c.nodelist.insert(NodeId(2), 0);
        assert_eq!(c.resolve(NodeId(1)), Err(ConfigError::ZeroVotes));
    }
}
