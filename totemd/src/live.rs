//! The live state under `runtime.` besides the ring and the counters: closed process groups,
//! votequorum and fencing, as confdb keys (corosync keeps `runtime.votequorum.*` in cmap; the
//! groups and the fencing state have no cmap counterpart, so their names follow the same style).
//!
//! [`live_keys`] lists every key and value from the node's state; [`LiveState::sync`] sets
//! what changed in a store and deletes what is gone, so trackers see each change once, and
//! [`LiveState::ring`] keeps `runtime.totem.ring_id` and `runtime.members.<id>.status`. The
//! daemon does this before every confdb read and after the events that change this state (new
//! ring, quorum and fencing events, group changes, clients leaving), never per packet; the
//! simulator does the same on every simulated node and checks the keys against the node.
//!
//! - `runtime.totem.ring_id`; `runtime.members.<id>.status` (`joined`, or `left` once gone)
//! - `runtime.local_node_id`
//! - `runtime.links.<node>.<link>.address` (the peer's address on that link) and `.connected`
//! - `runtime.cpg.group_count`; `runtime.cpg.group.<i>.name`, `.member_count`, `.members`
//!   (`NODE:PID` pairs), groups in name order
//! - `runtime.votequorum.this_node_id`, `.quorate`, `.expected_votes`, `.highest_expected`,
//!   `.total_votes`, `.quorum`, `.two_node`, `.wait_for_all`, `.last_man_standing`,
//!   `.auto_tie_breaker`, `.flags` (as corosync-quorumtool prints them);
//!   `runtime.votequorum.nodes.<id>.votes` and `.expected_votes` for each member
//! - `runtime.fencing.pending` (node ids), `.pending_count`, `.blocking`; the history, oldest
//!   first: `runtime.fencing.history.<i>.node`, `.time` (Unix seconds), `.result` (the method
//!   that fenced it, or `acknowledged`), `.failed_attempts`; `runtime.fencing.history_count`

use std::collections::BTreeSet;

use confdb::store::{Store, Value, Writer};
use totem::{Instant, NodeId, RingId};

use crate::links::LinkStatus;
use crate::node::Node;

/// The prefixes [`live_keys`] owns: every key under them that it does not list is deleted.
pub const LIVE_PREFIXES: [&str; 5] =
    ["runtime.local_node_id", "runtime.links.", "runtime.cpg.", "runtime.votequorum.", "runtime.fencing."];

/// Every live key and its value, in key order within each part.
///
/// `now` is the engine's time and `unix_now` the wall clock's seconds at the same moment, to
/// date the fencing history.
pub fn live_keys(node: &Node, links: &[LinkStatus], now: Instant, unix_now: u64) -> Vec<(String, Value)> {
    let mut keys = vec![("runtime.local_node_id".to_string(), Value::U32(node.node_id().0))];
    for l in links {
        let base = format!("runtime.links.{}.{}", l.node.0, l.link.0);
        keys.push((format!("{base}.address"), Value::String(l.addr.to_string())));
        keys.push((format!("{base}.connected"), Value::U8(u8::from(l.up))));
    }
    cpg_keys(node, &mut keys);
    quorum_keys(node, &mut keys);
    fencing_keys(node, now, unix_now, &mut keys);
    keys
}

fn cpg_keys(node: &Node, keys: &mut Vec<(String, Value)>) {
    let mut count = 0u32;
    for (i, (name, members)) in node.cpg().groups().enumerate() {
        let base = format!("runtime.cpg.group.{i}");
        let list: Vec<String> = members.iter().map(|m| format!("{}:{}", m.node_id, m.pid)).collect();
        keys.push((format!("{base}.name"), Value::String(name.to_string())));
        keys.push((
            format!("{base}.member_count"),
            Value::U32(u32::try_from(members.len()).unwrap_or(u32::MAX)),
        ));
        keys.push((format!("{base}.members"), Value::String(list.join(" "))));
        count += 1;
    }
    keys.push(("runtime.cpg.group_count".to_string(), Value::U32(count)));
}

fn quorum_keys(node: &Node, keys: &mut Vec<(String, Value)>) {
    let Some(q) = node.quorum() else { return };
    let s = q.status();
    let f = s.flags;
    let flag = |on: bool| Value::U8(u8::from(on));
    let flags = quorum::format::flag_names(&f);
    let base = "runtime.votequorum";
    for (key, value) in [
        ("this_node_id", Value::U32(s.node_id.0)),
        ("quorate", flag(s.quorate)),
        ("expected_votes", Value::U32(s.expected_votes)),
        ("highest_expected", Value::U32(s.highest_expected)),
        ("total_votes", Value::U32(s.total_votes)),
        ("quorum", Value::U32(s.quorum)),
        ("two_node", flag(f.two_node)),
        ("wait_for_all", flag(f.wait_for_all)),
        ("last_man_standing", flag(f.last_man_standing)),
        ("auto_tie_breaker", flag(f.auto_tie_breaker)),
        ("flags", Value::String(flags.join(" "))),
    ] {
        keys.push((format!("{base}.{key}"), value));
    }
    for m in &s.members {
        keys.push((format!("{base}.nodes.{}.votes", m.node_id.0), Value::U32(m.votes)));
        keys.push((format!("{base}.nodes.{}.expected_votes", m.node_id.0), Value::U32(m.expected_votes)));
    }
}

/// What a store already shows of the ring: the members marked `joined`.
#[derive(Debug, Default)]
pub struct LiveState {
    joined: BTreeSet<NodeId>,
}

impl LiveState {
    /// A new ring: `runtime.totem.ring_id`, and each member's status `joined`, each node that
    /// left `left`.
    pub fn ring(&mut self, store: &mut Store, ring_id: RingId, members: &[NodeId]) {
        set(store, "runtime.totem.ring_id", Value::String(ring_id.to_string()));
        let now: BTreeSet<NodeId> = members.iter().copied().collect();
        for left in self.joined.difference(&now) {
            set(store, &format!("runtime.members.{}.status", left.0), Value::String("left".into()));
        }
        for joined in now.difference(&self.joined) {
            set(store, &format!("runtime.members.{}.status", joined.0), Value::String("joined".into()));
        }
        self.joined = now;
    }

    /// Brings the keys under [`LIVE_PREFIXES`] to `keys` (from [`live_keys`]): sets what
    /// changed, deletes what is no longer listed; trackers see only real changes.
    pub fn sync(&mut self, store: &mut Store, keys: Vec<(String, Value)>) {
        let listed: BTreeSet<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        let gone: Vec<String> = LIVE_PREFIXES
            .iter()
            .flat_map(|p| store.iter_prefix(p).map(|(k, _)| k.to_string()).collect::<Vec<_>>())
            .filter(|k| !listed.contains(k.as_str()))
            .collect();
        for key in gone {
            let _ = store.delete(Writer::Daemon, &key);
        }
        for (key, value) in keys {
            set(store, &key, value);
        }
    }
}

/// Sets a daemon-owned key; a refusal (a full store) is logged, the rest goes on.
pub fn set(store: &mut Store, key: &str, value: Value) {
    if let Err(e) = store.set(Writer::Daemon, key, value) {
        tracing::warn!("confdb: {key} not set: {e}");
    }
}

fn fencing_keys(node: &Node, now: Instant, unix_now: u64, keys: &mut Vec<(String, Value)>) {
    let Some(f) = node.fencer() else { return };
    let pending: Vec<String> = f.pending().iter().map(|n| n.0.to_string()).collect();
    keys.push(("runtime.fencing.blocking".to_string(), Value::U8(u8::from(f.is_blocking()))));
    keys.push(("runtime.fencing.pending".to_string(), Value::String(pending.join(" "))));
    keys.push((
        "runtime.fencing.pending_count".to_string(),
        Value::U32(u32::try_from(pending.len()).unwrap_or(u32::MAX)),
    ));
    let mut count = 0u32;
    for (i, h) in f.history().enumerate() {
        let base = format!("runtime.fencing.history.{i}");
        let ago = now.as_nanos().saturating_sub(h.at.as_nanos()) / 1_000_000_000;
        keys.push((format!("{base}.node"), Value::U32(h.node.0)));
        keys.push((format!("{base}.time"), Value::U64(unix_now.saturating_sub(ago))));
        keys.push((format!("{base}.result"), Value::String(h.by.clone())));
        keys.push((format!("{base}.failed_attempts"), Value::U32(h.failed_attempts)));
        count += 1;
    }
    keys.push(("runtime.fencing.history_count".to_string(), Value::U32(count)));
}

#[cfg(test)]
mod tests {
    use confdb::store::{Polled, TrackFlags, TrackerId};
    use totem::{PersistedState, TotemConfig};

    use super::*;

    /// Every queued notification as `KEY KIND`.
    fn notes(store: &mut Store) -> Vec<String> {
        std::iter::from_fn(|| store.poll_notification())
            .map(|p| match p {
                Polled::Notify { notification: n, .. } => format!("{} {:?}", n.key, n.kind),
                Polled::Overflow { .. } => "overflow".into(),
            })
            .collect()
    }

    #[test]
    fn rings_mark_members_joined_and_left_and_sync_deletes_what_is_gone_once() {
        let mut store = Store::default();
        store.track(TrackerId(1), "runtime.", TrackFlags::ALL_EVENTS | TrackFlags::PREFIX).unwrap();
        let mut live = LiveState::default();
        let ring = |seq| RingId { seq, representative: NodeId(1) };
        live.ring(&mut store, ring(4), &[NodeId(1), NodeId(2)]);
        live.ring(&mut store, ring(8), &[NodeId(1)]);
        assert_eq!(store.get("runtime.totem.ring_id").map(|v| v.to_string()).as_deref(), Some("1.8"));
        assert_eq!(store.get("runtime.members.2.status").map(|v| v.to_string()).as_deref(), Some("left"));
        assert_eq!(store.get("runtime.members.1.status").map(|v| v.to_string()).as_deref(), Some("joined"));
        let group = |name: &str| (format!("runtime.cpg.group.0.{name}"), Value::String(name.into()));
        live.sync(&mut store, vec![group("name"), group("members")]);
        notes(&mut store);
        // The same keys again: nothing to tell. One gone: one delete.
        live.sync(&mut store, vec![group("name"), group("members")]);
        assert_eq!(notes(&mut store), Vec::<String>::new());
        live.sync(&mut store, vec![group("name")]);
        assert_eq!(notes(&mut store), vec!["runtime.cpg.group.0.members Deleted".to_string()]);
        assert!(store.get("runtime.members.1.status").is_some(), "keys outside LIVE_PREFIXES stay");
    }

    fn value(keys: &[(String, Value)], key: &str) -> Option<String> {
        keys.iter().find(|(k, _)| k == key).map(|(_, v)| v.to_string())
    }

    #[test]
    fn quorum_keys_appear_with_a_provider_and_nothing_without_one() {
        let now = Instant::from_nanos(0);
        let mut node =
            Node::new(NodeId(1), TotemConfig::default(), PersistedState::default(), 7, now).expect("node");
        let keys = live_keys(&node, &[], now, 1_000);
        assert_eq!(value(&keys, "runtime.local_node_id").as_deref(), Some("1"));
        assert_eq!(value(&keys, "runtime.cpg.group_count").as_deref(), Some("0"));
        assert!(keys.iter().all(|(k, _)| !k.starts_with("runtime.votequorum.")), "no provider, no keys");
        assert!(keys.iter().all(|(k, _)| !k.starts_with("runtime.fencing.")), "no fencing, no keys");
        assert!(keys.iter().all(|(k, _)| LIVE_PREFIXES.iter().any(|p| k.starts_with(p))));

        let quorum = quorum::QuorumConfig {
            nodelist: [(NodeId(1), 1), (NodeId(2), 1)].into_iter().collect(),
            ..quorum::QuorumConfig::default()
        };
        node.enable_quorum(&quorum).expect("quorum");
        let keys = live_keys(&node, &[], now, 1_000);
        assert_eq!(value(&keys, "runtime.votequorum.this_node_id").as_deref(), Some("1"));
        assert_eq!(value(&keys, "runtime.votequorum.quorate").as_deref(), Some("0"));
        assert_eq!(value(&keys, "runtime.votequorum.expected_votes").as_deref(), Some("2"));
        assert_eq!(value(&keys, "runtime.votequorum.quorum").as_deref(), Some("2"));
        assert!(value(&keys, "runtime.votequorum.nodes.1.votes").is_some(), "{keys:?}");
    }
}
