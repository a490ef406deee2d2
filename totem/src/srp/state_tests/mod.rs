//! Handler-level unit tests, one file per protocol state (openraft's `engine/tests` style).
//!
//! Each test puts one node in a known state, calls one handler (`handle_datagram`,
//! `handle_timeout` or `submit`) and compares the exact ordered list of what the node sends
//! (decoded with [`Packet::decode`]) and the exact ordered list of its events. The arrangement
//! uses real handlers where that is short, and sets the engine's private fields where it is not.

mod commit;
mod gather;
mod malformed;
mod operational;
mod operational_liveness;
mod recovery;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;

use super::buffer::RingBuffer;
use super::timer::{Timer, TimerTable};
use super::{GatherSets, Srp, SrpState, TokenState};
use crate::config::TotemConfig;
use crate::event::{Configuration, Delivery, Destination, Event, Guarantee, PersistedState, Transmit};
use crate::ids::{NodeId, RingId, Seq};
use crate::time::Instant;
use crate::wire::{CommitEntry, CommitToken, Fragment, Join, Mcast, Packet, RingNotice, Token, WireRingId};

/// Where every test's clock starts.
pub(super) const T0: Instant = Instant::ZERO;

/// `T0 + n` milliseconds.
pub(super) fn at(n: u64) -> Instant {
    T0 + ms(n)
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// corosync's defaults with `token` = 1 s: consensus 1.2 s, join 50 ms, hold 180 ms,
/// merge 200 ms, token_retransmit = 1 s / 4.2.
pub(super) fn config() -> TotemConfig {
    TotemConfig::with_token(ms(1000))
}

pub(super) fn ring(seq: u64, representative: u32) -> RingId {
    RingId { seq, representative: NodeId(representative) }
}

pub(super) fn wire(ring: RingId) -> Option<WireRingId> {
    Some(ring.into())
}

pub(super) fn ids(nodes: &[u32]) -> Vec<NodeId> {
    nodes.iter().map(|&n| NodeId(n)).collect()
}

pub(super) fn set(nodes: &[u32]) -> BTreeSet<NodeId> {
    nodes.iter().map(|&n| NodeId(n)).collect()
}

// ---------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------

/// Everything the node asked to send, undecoded, in order.
pub(super) fn raw_transmits(srp: &mut Srp) -> Vec<Transmit> {
    std::iter::from_fn(|| srp.poll_transmit()).collect()
}

/// Everything the node asked to send, decoded, in order.
pub(super) fn sent(srp: &mut Srp) -> Vec<(Destination, Packet)> {
    raw_transmits(srp)
        .into_iter()
        .map(|t| (t.dest, Packet::decode(t.payload).expect("the engine sends valid packets")))
        .collect()
}

/// Every event, in order.
pub(super) fn events(srp: &mut Srp) -> Vec<Event> {
    std::iter::from_fn(|| srp.poll_event()).collect()
}

/// Discards every pending output (the arrangement's, not under test).
pub(super) fn drain(srp: &mut Srp) {
    raw_transmits(srp);
    events(srp);
}

pub(super) fn to_all(packet: Packet) -> (Destination, Packet) {
    (Destination::All, packet)
}

pub(super) fn to(node: u32, packet: Packet) -> (Destination, Packet) {
    (Destination::Node(NodeId(node)), packet)
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// Feeds one packet as a received datagram.
pub(super) fn recv(srp: &mut Srp, now: Instant, packet: &Packet) {
    srp.handle_datagram(now, packet.encode());
}

/// Fires every timer due up to `until`, in deadline order, as a driver would.
pub(super) fn advance(srp: &mut Srp, until: Instant) {
    for _ in 0..10_000 {
        match srp.poll_timeout() {
            Some(t) if t <= until => srp.handle_timeout(t),
            _ => return,
        }
    }
    panic!("timers keep firing before {until:?}");
}

/// A deadline of the node's timer table.
pub(super) fn deadline(srp: &Srp, timer: Timer) -> Option<Instant> {
    srp.timers.get(timer)
}

// ---------------------------------------------------------------------------------------------
// Packets and events
// ---------------------------------------------------------------------------------------------

pub(super) fn join(sender: u32, proc_set: &[u32], fail_set: &[u32], ring_seq: u64) -> Packet {
    Packet::Join(Join { sender, proc_set: proc_set.to_vec(), fail_set: fail_set.to_vec(), ring_seq })
}

pub(super) fn fragment(payload: &'static str) -> Fragment {
    Fragment { first: true, last: true, data: Bytes::from_static(payload.as_bytes()) }
}

/// An agreed packet holding one whole message.
pub(super) fn mcast(ring: RingId, seq: u64, sender: u32, payload: &'static str) -> Mcast {
    Mcast {
        ring_id: wire(ring),
        seq,
        sender,
        safe: false,
        fragments: vec![fragment(payload)],
        recovered: None,
    }
}

/// A safe packet holding one whole message.
pub(super) fn safe_mcast(ring: RingId, seq: u64, sender: u32, payload: &'static str) -> Mcast {
    Mcast { safe: true, ..mcast(ring, seq, sender, payload) }
}

/// A packet of `sender` carrying whole messages `payloads`.
pub(super) fn packed(ring: RingId, seq: u64, sender: u32, safe: bool, payloads: &[&'static str]) -> Mcast {
    Mcast {
        ring_id: wire(ring),
        seq,
        sender,
        safe,
        fragments: payloads.iter().map(|&p| fragment(p)).collect(),
        recovered: None,
    }
}

/// A recovery packet of the new ring `ring` re-sending the old-ring packet `old`.
pub(super) fn recovered(ring: RingId, seq: u64, sender: u32, old: Mcast) -> Mcast {
    Mcast {
        ring_id: wire(ring),
        seq,
        sender,
        safe: false,
        fragments: Vec::new(),
        recovered: Some(Box::new(old)),
    }
}

/// A token with empty rtr and zero flow-control counters.
pub(super) fn token(ring: RingId, token_seq: u64, seq: u64, aru: u64, aru_owner: u32) -> Token {
    Token { ring_id: wire(ring), token_seq, seq, aru, aru_owner, ..Token::default() }
}

pub(super) fn notice(sender: u32, ring: RingId) -> RingNotice {
    RingNotice { sender, ring_id: wire(ring) }
}

pub(super) fn entry(old: RingId, aru: u64, high_seq: u64, high_delivered: u64) -> CommitEntry {
    CommitEntry { filled: true, old_ring_id: wire(old), aru, high_seq, high_delivered }
}

pub(super) fn commit_token(
    ring: RingId,
    members: &[u32],
    entries: Vec<CommitEntry>,
    rotation: u32,
    index: u32,
) -> CommitToken {
    CommitToken { ring_id: wire(ring), members: members.to_vec(), entries, rotation, index }
}

pub(super) fn delivery(
    ring: RingId,
    seq: u64,
    sender: u32,
    guarantee: Guarantee,
    payload: &'static str,
) -> Event {
    Event::Deliver(Delivery {
        ring_id: ring,
        seq: Seq(seq),
        sender: NodeId(sender),
        guarantee,
        payload: Bytes::from_static(payload.as_bytes()),
    })
}

pub(super) fn regular(ring: RingId, members: &[u32]) -> Event {
    Event::Regular(Configuration { ring_id: ring, members: ids(members) })
}

pub(super) fn transitional(ring: RingId, members: &[u32]) -> Event {
    Event::Transitional(Configuration { ring_id: ring, members: ids(members) })
}

pub(super) fn persist(ring_seq: u64) -> Event {
    Event::Persist(PersistedState { ring_seq })
}

// ---------------------------------------------------------------------------------------------
// Nodes in a known state
// ---------------------------------------------------------------------------------------------

/// A node just started at `T0` (pseudo-ring seq 4, gathering alone), outputs drained.
pub(super) fn fresh(id: u32) -> Srp {
    let mut srp = Srp::new(NodeId(id), config(), PersistedState::default(), 7, T0).expect("valid config");
    drain(&mut srp);
    srp
}

/// A fresh node whose gather sets are `proc_set` and `fail_set` (consensus: itself).
pub(super) fn gathering(id: u32, proc_set: &[u32], fail_set: &[u32]) -> Srp {
    let mut srp = fresh(id);
    srp.gather = GatherSets {
        proc_set: set(proc_set),
        fail_set: set(fail_set),
        consensus: set(&[id]),
        ..GatherSets::default()
    };
    srp
}

/// Node `id` operational at `T0` in ring `(ring_seq, members[0])` of `members`, which it
/// installed earlier (so a transitional configuration precedes the next regular one), with
/// an empty buffer, no token seen yet, `TokenLoss` armed for `token` and, on the
/// representative, `Merge` armed for `merge`.
pub(super) fn operational(id: u32, members: &[u32], ring_seq: u64, config: TotemConfig) -> Srp {
    let persisted = PersistedState { ring_seq };
    let mut srp = Srp::new(NodeId(id), config, persisted, 7, T0).expect("valid config");
    let ring = ring(ring_seq, members[0]);
    srp.state = SrpState::Operational;
    srp.ring = ring;
    srp.members = ids(members);
    srp.installed = true;
    srp.buffer = RingBuffer::new(ring);
    srp.persisted_ring_seq = ring_seq;
    srp.known_ring_seq = ring_seq;
    srp.gather = GatherSets::default();
    srp.tok = TokenState::default();
    srp.timers = TimerTable::default();
    srp.timers.set(Timer::TokenLoss, T0 + srp.config.token);
    if members[0] == id {
        srp.timers.set(Timer::Merge, T0 + srp.config.merge);
    }
    drain(&mut srp);
    srp
}

/// Feeds packets of other senders at `now` and drains what they cause (deliveries).
pub(super) fn receive_all(srp: &mut Srp, now: Instant, packets: &[Mcast]) {
    for m in packets {
        recv(srp, now, &Packet::Mcast(m.clone()));
    }
    drain(srp);
}

/// Moves an operational non-representative node through token loss, gather and both rotations
/// of the commit token of ring `new` with `members` into recovery. `others` are the entries
/// the other members fill in. Returns the time reached; outputs are drained.
pub(super) fn into_recovery(
    srp: &mut Srp,
    new: RingId,
    members: &[u32],
    others: &[(u32, CommitEntry)],
) -> Instant {
    let lost = deadline(srp, Timer::TokenLoss).expect("operational arms token loss");
    advance(srp, lost);
    assert_eq!(srp.state, SrpState::Gather);
    // The gather sets agree with `members`: nodes of the old ring left out have failed.
    let proc_set: BTreeSet<NodeId> = srp.gather.proc_set.union(&set(members)).copied().collect();
    srp.gather.fail_set = proc_set.difference(&set(members)).copied().collect();
    srp.gather.proc_set = proc_set;
    drain(srp);

    let me = srp.node_id.0;
    let index = members.iter().position(|&m| m == me).expect("a member");
    assert!(index > 0, "the representative creates the commit token itself");
    let other = |m: u32| others.iter().find(|(n, _)| *n == m).expect("an entry per other member").1.clone();
    let first: Vec<CommitEntry> = members
        .iter()
        .enumerate()
        .map(|(i, &m)| if i < index { other(m) } else { CommitEntry::default() })
        .collect();
    let index32 = u32::try_from(index).expect("small");
    recv(srp, lost + ms(1), &Packet::CommitToken(commit_token(new, members, first, 1, index32)));
    let Some((_, Packet::CommitToken(forwarded))) = sent(srp).pop() else { panic!("commit token forwarded") };
    let mine = forwarded.entries[index].clone();
    drain(srp);

    let all = members.iter().map(|&m| if m == me { mine.clone() } else { other(m) }).collect();
    recv(srp, lost + ms(2), &Packet::CommitToken(commit_token(new, members, all, 2, index32)));
    assert_eq!(srp.state, SrpState::Recovery);
    drain(srp);
    lost + ms(2)
}
