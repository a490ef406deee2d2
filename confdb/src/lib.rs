//! The configuration and runtime database (like corosync's cmap).
//!
//! Will own: the typed key-value store with prefix tracking, its sans-IO service, the client
//! API, and the corosync.conf / cluster.conf parsers that feed it. Empty until the confdb issue lands.
#![forbid(unsafe_code)]
