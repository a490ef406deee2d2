//! Votequorum semantics and fencing policy.
//!
//! Will own: the sans-IO quorum calculation (votes, expected votes, two-node mode, wait_for_all,
//! last_man_standing, auto_tie_breaker), the fencing state machine and the quorum client API.
//! Empty until the quorum and fencing issue lands.
#![forbid(unsafe_code)]
