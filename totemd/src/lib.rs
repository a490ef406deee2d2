//! The totem daemon: drives the sans-IO Totem engine ([`totem::Srp`]) over UDP.
//!
//! # Layout
//! - [`node`]: the composed sans-IO node: the [`totem::Srp`] engine and the closed process
//!   group service (quorum and confdb will join it). No tokio, no clock, no sockets: the
//!   simulator drives exactly this type.
//! - [`runtime`]: the tokio driver. One task owns the [`node::Node`], the UDP sockets, the
//!   local API's clients and the timer; it feeds one input, drains every output and re-arms
//!   the timer. It reads the clock
//!   and the OS entropy and makes no protocol decision.
//! - [`state`]: the state directory: an exclusive lock file and the durably stored
//!   [`totem::PersistedState`].
//! - [`config`]: what the daemon runs with (node id, addresses, peers, Totem options and the
//!   rest of corosync.conf), from the command line or from a corosync.conf read with
//!   [`confdb::conf`] and checked with every error at its file and line.
//! - [`logging`]: the log outputs (stderr, log file, syslog) from corosync.conf's `logging`.
//! - [`crypto`] and [`keyfile`]: packet sealing (AEAD, replay window) and corosync authkeys.
//! - [`links`]: the sans-IO multi-link layer (knet-style heartbeats, per-link status, passive
//!   link choice).
//! - [`reload`]: what a configuration reload changes and what of it applies at run time.
#![forbid(unsafe_code)]

pub mod config;
pub mod crypto;
pub mod keyfile;
pub mod links;
pub mod live;
#[cfg(feature = "runtime")]
pub mod logging;
pub mod node;
pub mod reload;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod state;

pub use config::{ConfigError, DaemonConfig};
pub use node::Node;
pub use state::{StateDir, StateError};
