//! Closed process groups (CPG) on top of Totem's ordered multicast.
//!
//! Will own: the sans-IO group service (join, leave, multicast to a group, configuration-change
//! events with virtual synchrony per group) and, behind the `client` feature, the API that
//! applications link. Empty until the IPC and CPG issue lands.
#![forbid(unsafe_code)]
