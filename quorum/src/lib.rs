//! Votequorum semantics, sans-IO (votequorum(5); corosync's exec/votequorum.c).
//!
//! Each node counts the votes of the members of its ring. Quorum is a majority of the highest
//! expected votes and of the votes present (`expected / 2 + 1`), and never goes down on its
//! own. On every new ring each node multicasts a [`wire::NodeInfo`] (its votes, expected votes
//! and flags); every node folds them in, in Totem's agreed order, so all members agree.
//! `two_node`, `wait_for_all`, `last_man_standing` and `auto_tie_breaker` follow corosync; see
//! [`Votequorum`] for the call order and [`format::quorumtool_status`] for
//! `corosync-quorumtool -s` output. Quorum tables live in `testdata/*.txt`.
//!
//! Where we differ from corosync: `auto_tie_breaker` is stricter, so two disjoint partitions
//! are never both quorate (see `Votequorum`'s tie breaker rules and the last cases of
//! `testdata/auto_tie_breaker.txt`), and a node recounts as soon as a ring without some
//! members is installed rather than at the first node info. `last_man_standing` is stricter
//! too: corosync lowers expected votes to a member count, and a later ring that mixes some
//! members of that partition with nodes left out of it (their votes counted against the
//! lowered figure, or theirs against the old one) can be quorate beside another (the
//! simulator's seed 7001510: {1,4,5} lowered to 3, then {1,2} and {3,4} both quorate). Here
//! the partition itself is kept, sent in every [`wire::NodeInfo`] with the ring that lowered
//! (newer rings win, and the lowering node sends it again so its whole ring learns it), and
//! quorum also needs a majority of its votes (half with the tie breaker) until all of it is
//! present again, when the members become the partition. A node that starts (or restarts:
//! it forgets any such partition) votes, and counts as present in a partition, only once it
//! has been quorate or every configured vote is present ([`wire::FLAG_FRESH`]), so with
//! last_man_standing a cluster starts as with `wait_for_all`. Left: a ring that breaks
//! between members' window ends, before the lowering node's info reaches them (as in corosync).
//! Not supported: quorum devices, `allow_downscale`, `expected_votes_tracking`.
//!
//! Will also own the fencing policy and the quorum client API.
#![forbid(unsafe_code)]

#[cfg(feature = "client")]
pub mod client;
pub mod config;
/// Fencing policy (fenced's rules), sans-IO: victims, agent runs, retries and blocking.
pub mod fencing;
pub mod format;
pub mod votequorum;
pub mod wire;

pub use config::{ConfigError, ConfigWarning, QuorumConfig, Resolved, TieBreaker};
pub use votequorum::{
    MemberStatus, QuorumEvent, RequestError, Stats, Status, StatusFlags, Votequorum, EVENTS_MAX,
    RECONFIGURE_QUEUE_MAX,
};
