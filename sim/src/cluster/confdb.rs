//! confdb on every simulated node: the daemon's own code ([`totemd::live`]) keeps the
//! `runtime.` keys of a [`Store`] as each ring is installed, a tracker follows `runtime.`, and
//! the keys are checked against the node they describe (issue: the confdb service runs in the
//! simulator too).

use ::confdb::store::{NotifyKind, Polled, Store, TrackFlags, TrackerId, Value};
use totem::{Configuration, Instant};
use totemd::live::{live_keys, LiveState};
use totemd::Node;

/// One node's store, the daemon's bookkeeping of it, and a tracker of `runtime.`.
pub(crate) struct NodeConfdb {
    store: Store,
    live: LiveState,
}

impl Default for NodeConfdb {
    fn default() -> Self {
        let mut store = Store::default();
        store
            .track(TrackerId(1), "runtime.", TrackFlags::ALL_EVENTS | TrackFlags::PREFIX)
            .expect("a fresh store takes a track");
        NodeConfdb { store, live: LiveState::default() }
    }
}

impl NodeConfdb {
    /// A regular configuration was installed on `node`: update the keys as the daemon does,
    /// then check them and what the tracker was told. The reason, if anything is off.
    pub(crate) fn on_regular(
        &mut self,
        node: &Node,
        config: &Configuration,
        now: Instant,
    ) -> Result<(), String> {
        self.live.ring(&mut self.store, config.ring_id, &config.members);
        self.live.sync(&mut self.store, live_keys(node, &[], now, 0));
        let ring = config.ring_id.to_string();
        let mut told_ring = false;
        while let Some(polled) = self.store.poll_notification() {
            if let Polled::Notify { notification: n, .. } = polled {
                if n.key == "runtime.totem.ring_id"
                    && matches!(n.kind, NotifyKind::Added | NotifyKind::Changed)
                    && n.new.as_ref().map(Value::to_string).as_deref() == Some(ring.as_str())
                {
                    told_ring = true;
                }
            }
        }
        if !told_ring {
            return Err(format!("the runtime. tracker was not told of ring {ring}"));
        }
        let get = |key: &str| self.store.get(key).map(|v| v.to_string());
        if get("runtime.totem.ring_id").as_deref() != Some(ring.as_str()) {
            return Err(format!(
                "runtime.totem.ring_id is {:?}, the ring {ring}",
                get("runtime.totem.ring_id")
            ));
        }
        for (key, value) in self.store.iter_prefix("runtime.members.") {
            let Some(id) = key.strip_prefix("runtime.members.").and_then(|k| k.strip_suffix(".status"))
            else {
                continue;
            };
            let member = config.members.iter().any(|m| m.0.to_string() == id);
            let joined = value.to_string() == "joined";
            if member != joined {
                return Err(format!("{key} is {value} in ring {ring} of {:?}", config.members));
            }
        }
        if let Some(m) =
            config.members.iter().find(|m| get(&format!("runtime.members.{}.status", m.0)).is_none())
        {
            return Err(format!("member {m} of ring {ring} has no runtime.members key"));
        }
        let groups = node.cpg().groups().count().to_string();
        if get("runtime.cpg.group_count").as_deref() != Some(groups.as_str()) {
            return Err(format!(
                "runtime.cpg.group_count is {:?}, the node has {groups}",
                get("runtime.cpg.group_count")
            ));
        }
        if let Some(q) = node.quorum() {
            let quorate = u8::from(q.is_quorate()).to_string();
            if get("runtime.votequorum.quorate").as_deref() != Some(quorate.as_str()) {
                return Err(format!(
                    "runtime.votequorum.quorate is {:?}, votequorum says {quorate}",
                    get("runtime.votequorum.quorate")
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use totem::{NodeId, PersistedState, RingId, TotemConfig};

    use super::*;

    fn config(seq: u64, members: &[u32]) -> Configuration {
        Configuration {
            ring_id: RingId { seq, representative: NodeId(members[0]) },
            members: members.iter().copied().map(NodeId).collect(),
        }
    }

    #[test]
    fn keys_follow_the_rings_and_a_ring_the_tracker_was_not_told_of_is_reported() {
        let now = Instant::ZERO;
        let node = Node::new(NodeId(1), TotemConfig::default(), PersistedState::default(), 1, now).unwrap();
        let mut c = NodeConfdb::default();
        assert_eq!(c.on_regular(&node, &config(4, &[1, 2]), now), Ok(()));
        assert_eq!(c.on_regular(&node, &config(8, &[1]), now), Ok(()));
        assert_eq!(c.store.get("runtime.members.2.status").map(|v| v.to_string()).as_deref(), Some("left"));
        // The same ring again changes no key: the check says the tracker heard nothing.
        let again = c.on_regular(&node, &config(8, &[1]), now);
        assert!(again.as_ref().is_err_and(|e| e.contains("not told")), "{again:?}");
    }
}
