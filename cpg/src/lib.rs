//! Closed process groups (CPG) on top of Totem's ordered multicast.
//!
//! - [`types`]: the nouns (group names, members, reasons, configuration changes, events).
//! - [`service`]: the sans-IO group service the daemon composes into its node: it turns local
//!   clients' joins, leaves and messages into Totem messages, applies them in the total order
//!   at every node, keeps the groups' membership in step across configuration changes (a sync
//!   round after every new ring) and tells each local member what it must see.
//! - `client` (feature `client`): the API applications link, over the daemon's Unix socket.
#![forbid(unsafe_code)]

pub mod service;
pub mod types;

#[cfg(feature = "client")]
pub mod client;

pub use types::{
    Change, Confchg, CpgEvent, GroupName, GroupNameError, Guarantee, MemberId, Message, Reason, TotemConfchg,
    GROUP_NAME_MAX,
};
