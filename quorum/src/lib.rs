//! Votequorum semantics, sans-IO (votequorum(5); corosync's exec/votequorum.c).
//!
//! Will own: the quorum calculation (votes, expected votes, two_node, wait_for_all,
//! last_man_standing, auto_tie_breaker), the fencing policy and the quorum client API.
#![forbid(unsafe_code)]

pub mod config;
pub mod wire;

pub use config::{ConfigError, ConfigWarning, QuorumConfig, Resolved, TieBreaker};
