//! Sans-IO Totem single-ring ordering and membership protocol.
//!
//! Implements the protocol of Amir, Moser, Melliar-Smith, Agarwal and Ciarfella, "The Totem
//! single-ring ordering and membership protocol" (ACM TOCS 13(4), 1995), with the defaults
//! and option names of corosync's `totemsrp`. The engine is a plain state machine: it never
//! reads a clock, draws entropy or touches a socket. See [`Srp`] for the call order.
//!
//! # Glossary
//! - **ring**: the logical ring of members the token travels; named by a [`RingId`].
//! - **representative**: the lowest node id of a ring; it creates the commit token and holds
//!   the token when idle.
//! - **token**: the unicast message that circulates the ring and carries `seq`, `aru`, the
//!   retransmit request list `rtr` and flow-control counters; only its holder may multicast.
//! - **seq**: sequence number the token holder assigns to each multicast packet of the ring.
//! - **aru**: "all received up to": a node's `my_aru` is the highest seq below which it holds
//!   every packet; the token's `aru` is the minimum over the ring, set by its owner (`aru_owner`).
//! - **rtr**: retransmit request list carried by the token.
//! - **join**: gather-state message carrying a node's proc set and fail set.
//! - **commit_token**: token that circulates twice to install a new ring (commit state).
//! - **recovery**: the state in which old-ring messages are exchanged so that members moving
//!   together deliver the same set (extended virtual synchrony).
//! - **transitional configuration**: the members of the old ring that move to the new ring
//!   together; old-ring messages finished by recovery are delivered in it.
//! - **regular configuration**: an installed ring's membership.
//! - **agreed / safe**: delivery in total order once all earlier messages are delivered /
//!   additionally once every member holds the message.
#![forbid(unsafe_code)]

pub mod config;
pub mod event;
pub mod ids;
mod rng;
pub mod srp;
pub mod time;
pub mod wire;

pub use config::TotemConfig;
pub use event::{Configuration, Delivery, Destination, Event, Guarantee, PersistedState, Transmit};
pub use ids::{NodeId, RingId, Seq};
pub use srp::{Srp, SrpState, Stats, SubmitError};
pub use time::Instant;
