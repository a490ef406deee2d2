//! The daemon's confdb (corosync's cmap): one [`Store`] with the configuration file's keys,
//! the `runtime.` keys the driver keeps current, and the local API's confdb requests.
//!
//! Counters (`runtime.totem.*`) are [`Counter`]s refreshed from the engine's and the
//! driver's stats before each client read ([`Confdb::reads`]), not per packet: reads show the current value,
//! and no notification is sent for them (as corosync serves its `stats.` keys).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use confdb::conf::Parsed;
use confdb::store::{
    AccessPolicy, Counter, Notification, NotifyKind, Polled, Store, StoreError, TrackFlags, TrackId,
    TrackerId, Value, Writer,
};
use cpg::service::ClientId;
use ipc::{
    ConfdbChange, ConfdbEntries, ConfdbEntry, ConfdbNotify, ConfdbTracking, ConfdbValue, ConfdbValueReply,
    ErrorCode, Event, EventKind, RequestBody, ResponseResult,
};
use totem::{NodeId, RingId};

use crate::runtime::DriverStats;

type Answer = Result<ResponseResult, (ErrorCode, String)>;

/// A counter's name under `runtime.totem.` and where its value is read.
type CounterSource<S> = (&'static str, fn(&S) -> u64);

/// The engine's counters.
const ENGINE_COUNTERS: [CounterSource<totem::Stats>; 10] = [
    ("packets_sent", |s| s.packets_sent),
    ("packets_received", |s| s.packets_received),
    ("messages_delivered", |s| s.messages_delivered),
    ("token_rotations", |s| s.token_rotations),
    ("retransmits", |s| s.retransmits),
    ("membership_changes", |s| s.configurations),
    ("token_retransmits", |s| s.token_retransmits),
    ("dropped_checksum", |s| s.dropped_checksum),
    ("dropped_malformed", |s| s.dropped_malformed),
    ("dropped_stale", |s| s.dropped_stale),
];

/// The driver's counters.
const DRIVER_COUNTERS: [CounterSource<DriverStats>; 14] = [
    ("datagrams_sent", |s| s.datagrams_sent),
    ("bytes_sent", |s| s.bytes_sent),
    ("bytes_received", |s| s.bytes_received),
    ("send_errors", |s| s.send_errors),
    ("unroutable", |s| s.unroutable),
    ("recv_errors", |s| s.recv_errors),
    ("persists", |s| s.persists),
    ("dropped_auth", |s| s.open_auth_failed),
    ("dropped_replay", |s| s.open_replay),
    ("dropped_bad_version", |s| s.open_bad_version),
    ("dropped_too_short", |s| s.open_too_short),
    ("dropped_too_many_senders", |s| s.open_too_many_senders),
    ("seal_errors", |s| s.seal_errors),
    ("epochs_stored", |s| s.epochs_stored),
];

/// The store and the driver's handles into it.
pub(in crate::runtime) struct Confdb {
    store: Store,
    engine: Vec<Counter>,
    driver: Vec<Counter>,
    /// The ring and members as the store shows them.
    live: crate::live::LiveState,
    /// Each client's tracks, to check an untrack is its own.
    tracks: BTreeMap<ClientId, BTreeSet<TrackId>>,
    /// Whether the live keys (groups, quorum, fencing) may be out of date.
    live_dirty: bool,
}

impl Confdb {
    /// A store with the configuration file's keys (when started with one) and the counters;
    /// the `uidgid` groups of `access` may write besides root.
    pub(in crate::runtime) fn new(parsed: Option<&Parsed>, access: &super::Access) -> Confdb {
        let mut store = Store::default();
        store.set_access(AccessPolicy { write_gids: access.gids().clone(), ..AccessPolicy::default() });
        if let Some(parsed) = parsed {
            for (key, line, e) in store.load_parsed(parsed).skipped {
                tracing::debug!("confdb: line {line}: {key} not stored: {e}");
            }
        }
        let mut counter = |name: &str| {
            store.counter(&format!("runtime.totem.{name}")).expect("runtime counter keys are valid and new")
        };
        let engine = ENGINE_COUNTERS.iter().map(|(name, _)| counter(name)).collect();
        let driver = DRIVER_COUNTERS.iter().map(|(name, _)| counter(name)).collect();
        let mut confdb = Confdb {
            store,
            engine,
            driver,
            live: crate::live::LiveState::default(),
            tracks: BTreeMap::new(),
            live_dirty: true,
        };
        confdb.set_access(access.uids(), access.gids());
        confdb
    }

    /// Brings the counters up to the stats.
    pub(in crate::runtime) fn refresh_counters(&mut self, engine: &totem::Stats, driver: &DriverStats) {
        let values = ENGINE_COUNTERS.iter().map(|(_, f)| f(engine));
        let values = values.chain(DRIVER_COUNTERS.iter().map(|(_, f)| f(driver)));
        for (&counter, value) in self.engine.iter().chain(&self.driver).zip(values) {
            let now = self.store.counter_value(counter).unwrap_or(value);
            self.store.add(counter, value.wrapping_sub(now));
        }
    }

    /// Whether `body` reads keys (the counters are refreshed first).
    pub(in crate::runtime) fn reads(body: &RequestBody) -> bool {
        matches!(body, RequestBody::ConfdbGet(_) | RequestBody::ConfdbIter(_))
    }

    /// A new ring: `runtime.totem.ring_id`, and each member's status `joined`, each node
    /// that left `left`.
    pub(in crate::runtime) fn ring(&mut self, ring_id: RingId, members: &[NodeId]) {
        self.live.ring(&mut self.store, ring_id, members);
        self.live_dirty = true;
    }

    /// Something the live keys show may have changed (a quorum or fencing event, a group change).
    pub(in crate::runtime) fn mark_live_dirty(&mut self) {
        self.live_dirty = true;
    }

    /// Whether the live keys may be out of date.
    pub(in crate::runtime) fn live_dirty(&self) -> bool {
        self.live_dirty
    }

    /// Brings the live keys ([`crate::live`]) to `keys`: sets what changed, deletes what is
    /// gone; trackers see only real changes.
    pub(in crate::runtime) fn sync_live(&mut self, keys: Vec<(String, Value)>) {
        self.live_dirty = false;
        self.live.sync(&mut self.store, keys);
    }

    /// The `uidgid` groups changed: they (and root) may write from now on; the resolved ids
    /// show as `runtime.access.uids` and `runtime.access.gids`.
    pub(in crate::runtime) fn set_access(&mut self, uids: &BTreeSet<u32>, gids: &BTreeSet<u32>) {
        let policy = AccessPolicy { write_gids: gids.clone(), ..self.store.access().clone() };
        self.store.set_access(policy);
        let list = |ids: &BTreeSet<u32>| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
        self.daemon_set("runtime.access.uids", Value::String(list(uids)));
        self.daemon_set("runtime.access.gids", Value::String(list(gids)));
    }

    /// A link to a peer went up or down: `runtime.links.<node>.<link>.connected` (1 or 0).
    pub(in crate::runtime) fn link(&mut self, node: NodeId, link: u8, up: bool) {
        self.daemon_set(&format!("runtime.links.{}.{link}.connected", node.0), Value::U8(u8::from(up)));
    }

    /// The configuration file was read again: its keys follow it and trackers see the changes.
    pub(in crate::runtime) fn reload(&mut self, parsed: &Parsed) {
        let summary = self.store.reload_parsed(parsed);
        tracing::debug!(
            added = summary.added,
            changed = summary.changed,
            deleted = summary.deleted,
            "confdb: configuration keys reloaded"
        );
    }

    fn daemon_set(&mut self, key: &str, value: Value) {
        crate::live::set(&mut self.store, key, value);
    }

    /// Answers a confdb request of `client` (credentials `uid`, `gid`); `None` when `body` is
    /// no confdb request.
    pub(in crate::runtime) fn handle(
        &mut self,
        client: ClientId,
        uid: u32,
        gid: u32,
        body: &RequestBody,
    ) -> Option<Answer> {
        let writer = Writer::Client { uid, gid };
        Some(match body {
            RequestBody::ConfdbGet(r) => match self.store.get(&r.key) {
                Some(v) => Ok(ResponseResult::ConfdbValue(ConfdbValueReply { value: Some(wire_value(&v)) })),
                None => Err((ErrorCode::NotExist, format!("no key {:?}", r.key))),
            },
            RequestBody::ConfdbSet(r) => Value::parse_typed(&r.type_name, &r.text)
                .map_err(StoreError::from)
                .and_then(|v| self.store.set(writer, &r.key, v))
                .map(|_| ok())
                .map_err(store_error),
            RequestBody::ConfdbDelete(r) => {
                self.store.delete(writer, &r.key).map(|_| ok()).map_err(store_error)
            }
            RequestBody::ConfdbIter(r) => {
                let entries = self
                    .store
                    .iter_prefix(&r.prefix)
                    .map(|(key, v)| ConfdbEntry { key: key.to_string(), value: Some(wire_value(&v)) })
                    .collect();
                Ok(ResponseResult::ConfdbEntries(ConfdbEntries { entries }))
            }
            RequestBody::ConfdbTrack(r) => {
                let flags = if r.prefix {
                    TrackFlags::ALL_EVENTS | TrackFlags::PREFIX
                } else {
                    TrackFlags::ALL_EVENTS
                };
                self.store
                    .track(TrackerId(client.0), &r.key_or_prefix, flags)
                    .map(|track| {
                        self.tracks.entry(client).or_default().insert(track);
                        ResponseResult::ConfdbTracking(ConfdbTracking { track_id: track.0 })
                    })
                    .map_err(store_error)
            }
            RequestBody::ConfdbUntrack(r) => {
                let track = TrackId(r.track_id);
                if self.tracks.get_mut(&client).is_some_and(|t| t.remove(&track)) {
                    self.store.untrack(track).map(|_| ok()).map_err(store_error)
                } else {
                    Err((ErrorCode::NotExist, format!("no track {} of this connection", r.track_id)))
                }
            }
            _ => return None,
        })
    }

    /// The client is gone: its tracks end.
    pub(in crate::runtime) fn drop_client(&mut self, client: ClientId) {
        self.live_dirty = true;
        self.tracks.remove(&client);
        self.store.untrack_all(TrackerId(client.0));
    }

    /// The next notification for a tracker, as the event its client receives.
    pub(in crate::runtime) fn poll_event(&mut self) -> Option<(ClientId, Event)> {
        let (tracker, notify) = match self.store.poll_notification()? {
            Polled::Notify { tracker, track, notification } => (tracker, wire_notify(track, notification)),
            Polled::Overflow { tracker, dropped } => {
                tracing::debug!(tracker = tracker.0, dropped, "confdb: tracker overflowed");
                let overflow =
                    ConfdbNotify { kind: ConfdbChange::Overflow as i32, ..ConfdbNotify::default() };
                (tracker, overflow)
            }
        };
        Some((ClientId(tracker.0), Event::new(EventKind::ConfdbNotify(notify))))
    }
}

fn ok() -> ResponseResult {
    ResponseResult::Ok(ipc::OkReply {})
}

fn wire_notify(track: TrackId, n: Notification) -> ConfdbNotify {
    let kind = match n.kind {
        NotifyKind::Added => ConfdbChange::Added,
        NotifyKind::Changed => ConfdbChange::Changed,
        NotifyKind::Deleted => ConfdbChange::Deleted,
    };
    ConfdbNotify {
        track_id: track.0,
        key: n.key,
        kind: kind as i32,
        old: n.old.as_ref().map(wire_value),
        new: n.new.as_ref().map(wire_value),
    }
}

/// A value as the wire carries it: type name, text, and raw bytes for `bin`.
fn wire_value(v: &Value) -> ConfdbValue {
    let raw = match v {
        Value::Binary(b) => Bytes::copy_from_slice(b),
        _ => Bytes::new(),
    };
    ConfdbValue { type_name: v.type_name().to_string(), text: v.to_string(), raw }
}

fn store_error(e: StoreError) -> (ErrorCode, String) {
    let code = match &e {
        StoreError::InvalidKey(_) | StoreError::InvalidValue(_) | StoreError::NoTrackEvents { .. } => {
            ErrorCode::InvalidArgument
        }
        StoreError::NotFound { .. } | StoreError::NoSuchTrack(_) => ErrorCode::NotExist,
        StoreError::ReadOnly { .. } | StoreError::PermissionDenied { .. } => ErrorCode::Access,
        StoreError::Full { .. } | StoreError::TooManyTracks { .. } => ErrorCode::TryAgain,
        StoreError::Exists { .. } => ErrorCode::Exist,
    };
    (code, e.to_string())
}

#[cfg(test)]
mod tests {
    use ipc::{ConfdbDelete, ConfdbGet, ConfdbSet, ConfdbTrack, ConfdbUntrack};

    use super::*;

    const ROOT: (u32, u32) = (0, 0);
    const ADMINS: u32 = 190;
    const ALICE: ClientId = ClientId(1);
    const BOB: ClientId = ClientId(2);

    fn confdb() -> Confdb {
        let parsed = confdb::conf::parse("totem {\n token: 3000\n}\n", "corosync.conf").expect("parses");
        Confdb::new(
            Some(&parsed),
            &super::super::Access::for_tests(BTreeSet::new(), BTreeSet::from([ADMINS])),
        )
    }

    fn set(key: &str, type_name: &str, text: &str) -> RequestBody {
        RequestBody::ConfdbSet(ConfdbSet { key: key.into(), type_name: type_name.into(), text: text.into() })
    }

    fn get(c: &mut Confdb, key: &str) -> Option<String> {
        match c.handle(ALICE, ROOT.0, ROOT.1, &RequestBody::ConfdbGet(ConfdbGet { key: key.into() })) {
            Some(Ok(ResponseResult::ConfdbValue(v))) => {
                v.value.map(|v| format!("({}) {}", v.type_name, v.text))
            }
            _ => None,
        }
    }

    fn code(answer: Option<Answer>) -> Option<ErrorCode> {
        answer.expect("a confdb request").err().map(|(code, _)| code)
    }

    fn events(c: &mut Confdb) -> Vec<(ClientId, String)> {
        std::iter::from_fn(|| c.poll_event())
            .map(|(id, e)| match e.kind {
                Some(EventKind::ConfdbNotify(n)) => {
                    let kind = ConfdbChange::try_from(n.kind).map_or("?", ConfdbChange::name);
                    let text = |v: Option<ConfdbValue>| v.map_or("-".into(), |v| v.text);
                    (id, format!("{} {kind} {} -> {}", n.key, text(n.old), text(n.new)))
                }
                other => panic!("not a confdb notification: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn config_keys_and_counters_are_there_from_the_start() {
        let mut c = confdb();
        assert_eq!(get(&mut c, "totem.token").as_deref(), Some("(u32) 3000"));
        assert_eq!(get(&mut c, "runtime.totem.packets_sent").as_deref(), Some("(u64) 0"));
        let engine = totem::Stats { packets_sent: 7, ..totem::Stats::default() };
        let driver = DriverStats { datagrams_sent: 5, ..DriverStats::default() };
        c.refresh_counters(&engine, &driver);
        assert_eq!(get(&mut c, "runtime.totem.packets_sent").as_deref(), Some("(u64) 7"));
        assert_eq!(get(&mut c, "runtime.totem.datagrams_sent").as_deref(), Some("(u64) 5"));
        assert!(events(&mut c).is_empty(), "counters notify nobody");
    }

    #[test]
    fn root_and_write_groups_write_others_and_runtime_keys_are_refused_unchanged() {
        let mut c = confdb();
        assert_eq!(code(c.handle(ALICE, 0, 0, &set("test.a", "u8", "1"))), None);
        assert_eq!(code(c.handle(ALICE, 1000, ADMINS, &set("test.a", "u8", "2"))), None);
        assert_eq!(code(c.handle(ALICE, 1000, 1000, &set("test.a", "u8", "3"))), Some(ErrorCode::Access));
        let delete = RequestBody::ConfdbDelete(ConfdbDelete { key: "test.a".into() });
        assert_eq!(code(c.handle(ALICE, 1000, 1000, &delete)), Some(ErrorCode::Access));
        assert_eq!(code(c.handle(ALICE, 0, 0, &set("runtime.x.y", "u8", "1"))), Some(ErrorCode::Access));
        assert_eq!(
            code(c.handle(ALICE, 0, 0, &set("test.b", "u8", "256"))),
            Some(ErrorCode::InvalidArgument)
        );
        assert_eq!(
            code(c.handle(ALICE, 0, 0, &set("test.b", "nope", "1"))),
            Some(ErrorCode::InvalidArgument)
        );
        assert_eq!(get(&mut c, "test.a").as_deref(), Some("(u8) 2"));
        assert_eq!(code(c.handle(ALICE, 0, 0, &delete)), None);
        assert_eq!(code(c.handle(ALICE, 0, 0, &delete)), Some(ErrorCode::NotExist));
        assert!(c.handle(ALICE, 0, 0, &RequestBody::Status(ipc::StatusRequest {})).is_none());
    }

    #[test]
    fn trackers_get_ring_member_link_and_reload_changes_and_untrack_only_their_own() {
        let mut c = confdb();
        let track = |prefix: &str| {
            RequestBody::ConfdbTrack(ConfdbTrack { key_or_prefix: prefix.into(), prefix: true })
        };
        let Some(Ok(ResponseResult::ConfdbTracking(t))) = c.handle(ALICE, 1000, 1000, &track("runtime."))
        else {
            panic!("tracking refused")
        };
        c.handle(BOB, 1000, 1000, &track("totem.")).unwrap().unwrap();
        let ring = |seq| RingId { representative: NodeId(1), seq };
        c.ring(ring(4), &[NodeId(1), NodeId(2)]);
        c.ring(ring(8), &[NodeId(1)]);
        c.link(NodeId(2), 0, false);
        let parsed = confdb::conf::parse("totem {\n token: 5000\n}\n", "corosync.conf").unwrap();
        c.reload(&parsed);
        assert_eq!(
            events(&mut c),
            [
                (ALICE, "runtime.totem.ring_id added - -> 1.4".to_string()),
                (ALICE, "runtime.members.1.status added - -> joined".into()),
                (ALICE, "runtime.members.2.status added - -> joined".into()),
                (ALICE, "runtime.totem.ring_id changed 1.4 -> 1.8".into()),
                (ALICE, "runtime.members.2.status changed joined -> left".into()),
                (ALICE, "runtime.links.2.0.connected added - -> 0".into()),
                (BOB, "totem.token changed 3000 -> 5000".into()),
            ]
        );
        let untrack = RequestBody::ConfdbUntrack(ConfdbUntrack { track_id: t.track_id });
        assert_eq!(code(c.handle(BOB, 1000, 1000, &untrack)), Some(ErrorCode::NotExist));
        assert_eq!(code(c.handle(ALICE, 1000, 1000, &untrack)), None);
        c.drop_client(BOB);
        c.ring(ring(12), &[NodeId(1)]);
        c.reload(&confdb::conf::parse("totem {\n token: 3000\n}\n", "corosync.conf").unwrap());
        assert!(events(&mut c).is_empty());
    }
}
