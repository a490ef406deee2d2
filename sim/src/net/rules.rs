//! Fault rules: an ordered list of (filter, action) pairs in the style of turmoil's `rule.rs`.
//!
//! For each datagram on each link the rules are tried in order; the first whose filter
//! matches and whose probability draw succeeds decides the packet's fate. Cuts (partitions)
//! are checked before any rule, the link's own loss after: a `Pass` rule exempts a packet from
//! later rules, not from the physics of the link.

use std::time::Duration;

use totem::{Instant, NodeId};

/// The kind of a Totem packet, read from the frame's kind byte without decoding it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PacketKind {
    /// Ordered multicast.
    Mcast,
    /// The ordering token.
    Token,
    /// Gather-state join.
    Join,
    /// Commit token.
    CommitToken,
    /// Merge-detect beacon.
    MergeDetect,
    /// Token-hold cancel.
    TokenHoldCancel,
    /// A clean leave.
    Leave,
    /// Anything else (malformed).
    Other,
}

impl PacketKind {
    /// The kind of an encoded datagram (`[version][kind]...`, see `totem::wire`).
    pub fn of(datagram: &[u8]) -> PacketKind {
        match datagram.get(1) {
            Some(1) => PacketKind::Mcast,
            Some(2) => PacketKind::Token,
            Some(3) => PacketKind::Join,
            Some(4) => PacketKind::CommitToken,
            Some(5) => PacketKind::MergeDetect,
            Some(6) => PacketKind::TokenHoldCancel,
            Some(7) => PacketKind::Leave,
            _ => PacketKind::Other,
        }
    }

    /// A short name for traces.
    pub fn name(self) -> &'static str {
        match self {
            PacketKind::Mcast => "mcast",
            PacketKind::Token => "token",
            PacketKind::Join => "join",
            PacketKind::CommitToken => "commit_token",
            PacketKind::MergeDetect => "merge_detect",
            PacketKind::TokenHoldCancel => "token_hold_cancel",
            PacketKind::Leave => "leave",
            PacketKind::Other => "other",
        }
    }
}

/// What a matching rule does to a packet.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Action {
    /// Deliver normally and skip later rules.
    Pass,
    /// Deliver after this much extra latency.
    Delay(Duration),
    /// Lose the packet.
    Drop,
    /// Deliver the packet and a copy this much later.
    Duplicate(Duration),
}

/// One fault rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Senders it applies to; `None` = any.
    pub from: Option<Vec<NodeId>>,
    /// Receivers it applies to; `None` = any.
    pub to: Option<Vec<NodeId>>,
    /// Packet kinds it applies to; `None` = any.
    pub kinds: Option<Vec<PacketKind>>,
    /// Probability that a matching packet is affected.
    pub probability: f64,
    /// The effect.
    pub action: Action,
    /// Virtual time after which the rule no longer applies; `None` = until cleared.
    pub until: Option<Instant>,
}

impl Rule {
    /// A rule with `action` for every packet, always.
    pub fn new(action: Action) -> Self {
        Rule { from: None, to: None, kinds: None, probability: 1.0, action, until: None }
    }

    /// Restricts the rule to packets sent by `nodes`.
    pub fn from(mut self, nodes: &[NodeId]) -> Self {
        self.from = Some(nodes.to_vec());
        self
    }

    /// Restricts the rule to packets sent to `nodes`.
    pub fn to(mut self, nodes: &[NodeId]) -> Self {
        self.to = Some(nodes.to_vec());
        self
    }

    /// Restricts the rule to packets of `kinds`.
    pub fn kinds(mut self, kinds: &[PacketKind]) -> Self {
        self.kinds = Some(kinds.to_vec());
        self
    }

    /// Applies the rule to a matching packet with probability `p`.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }

    /// Stops applying the rule at `t`.
    pub fn until(mut self, t: Instant) -> Self {
        self.until = Some(t);
        self
    }

    /// Whether the filter matches (the probability is drawn by the caller).
    pub fn matches(&self, now: Instant, from: NodeId, to: NodeId, kind: PacketKind) -> bool {
        self.until.is_none_or(|u| now < u)
            && self.from.as_ref().is_none_or(|s| s.contains(&from))
            && self.to.as_ref().is_none_or(|s| s.contains(&to))
            && self.kinds.as_ref().is_none_or(|s| s.contains(&kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_narrow_the_match() {
        let r = Rule::new(Action::Drop)
            .from(&[NodeId(1)])
            .kinds(&[PacketKind::Token])
            .until(Instant::from_nanos(10));
        let t = Instant::from_nanos(5);
        assert!(r.matches(t, NodeId(1), NodeId(2), PacketKind::Token));
        assert!(!r.matches(t, NodeId(2), NodeId(1), PacketKind::Token));
        assert!(!r.matches(t, NodeId(1), NodeId(2), PacketKind::Mcast));
        assert!(!r.matches(Instant::from_nanos(10), NodeId(1), NodeId(2), PacketKind::Token));
    }

    #[test]
    fn kind_is_read_from_the_frame() {
        assert_eq!(PacketKind::of(&[1, 2, 0, 0]), PacketKind::Token);
        assert_eq!(PacketKind::of(&[1]), PacketKind::Other);
    }
}
