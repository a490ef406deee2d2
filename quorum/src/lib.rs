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
//! members is installed rather than at the first node info. Not supported: quorum devices, `allow_downscale`,
//! `expected_votes_tracking`.
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
