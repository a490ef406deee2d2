//! Frames between local clients and the daemon.
//!
//! Will own: length-delimited prost frames, the version handshake, request ids, typed errors and a
//! sans-IO server session. Empty until the IPC and CPG issue lands.
#![forbid(unsafe_code)]
