//! What the engine asks its driver to do or tells it: transmits and events.

use bytes::Bytes;

use crate::ids::{NodeId, RingId, Seq};

/// Where a datagram goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Every node of the cluster (multicast, or unicast to every nodelist address with `udpu`).
    All,
    /// One node (the token and the commit token travel this way).
    Node(NodeId),
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Its destination.
    pub dest: Destination,
    /// The encoded packet, crc included.
    pub payload: Bytes,
}

/// Delivery guarantee of an application message.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Guarantee {
    /// Agreed order: delivered once every earlier message has been delivered.
    Agreed,
    /// Safe: additionally delivered only once every member of the configuration holds it.
    Safe,
}

/// A configuration (Totem's regular or transitional configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configuration {
    /// For a regular configuration, the new ring's id; for a transitional one, the id of the
    /// ring being left.
    pub ring_id: RingId,
    /// Members, sorted by node id.
    pub members: Vec<NodeId>,
}

/// An application message delivered in total order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The ring in which the message was ordered.
    pub ring_id: RingId,
    /// Seq of its last packet in that ring.
    pub seq: Seq,
    /// The node that sent it.
    pub sender: NodeId,
    /// Its guarantee.
    pub guarantee: Guarantee,
    /// The bytes the sender submitted.
    pub payload: Bytes,
}

/// State the driver must store durably and hand back to [`crate::Srp::new`] after a restart.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistedState {
    /// Highest ring sequence number this node has used or seen; new rings exceed it.
    pub ring_seq: u64,
}

/// Events in the order the application must see them.
///
/// A membership change comes as `Transitional`, then the deliveries of the old ring that
/// recovery completed, then `Regular`. Extended virtual synchrony holds for this sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A message, in agreed or safe order.
    Deliver(Delivery),
    /// The transitional configuration: members of the old ring moving on together.
    Transitional(Configuration),
    /// A new regular configuration is installed.
    Regular(Configuration),
    /// Store this before sending anything else (ring seq must survive restarts).
    Persist(PersistedState),
}
