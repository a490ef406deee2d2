//! One operation on a store in a known state, compared with the exact outputs.

use super::*;

const ROOT: Writer = Writer::Client { uid: 0, gid: 0 };
const USER: Writer = Writer::Client { uid: 1000, gid: 1000 };
const T1: TrackerId = TrackerId(1);
const T2: TrackerId = TrackerId(2);

fn u32v(v: u32) -> Value {
    Value::U32(v)
}

fn drain(store: &mut Store) -> Vec<Polled> {
    std::iter::from_fn(|| store.poll_notification()).collect()
}

fn notify(track: TrackId, key: &str, kind: NotifyKind, old: Option<Value>, new: Option<Value>) -> Polled {
    notify_for(T1, track, key, kind, old, new)
}

fn notify_for(
    tracker: TrackerId,
    track: TrackId,
    key: &str,
    kind: NotifyKind,
    old: Option<Value>,
    new: Option<Value>,
) -> Polled {
    let notification = Notification { key: key.to_string(), kind, old, new };
    Polled::Notify { tracker, track, notification }
}

#[test]
fn key_rules_are_cmaps() {
    assert_eq!(validate_key("totem.token"), Ok(()));
    assert_eq!(validate_key("a/b:c-d_e.0"), Ok(()));
    assert_eq!(validate_key("ab"), Err(KeyError::TooShort { key: "ab".into() }));
    assert_eq!(validate_key(&"k".repeat(255)), Ok(()));
    assert_eq!(validate_key(&"k".repeat(256)), Err(KeyError::TooLong { len: 256 }));
    assert_eq!(
        validate_key("totem token"),
        Err(KeyError::BadChar { key: "totem token".into(), ch: ' ', at: 5 })
    );
    assert_eq!(validate_key("nodé.x"), Err(KeyError::BadChar { key: "nodé.x".into(), ch: 'é', at: 3 }));
}

#[test]
fn values_print_as_corosync_cmapctl() {
    let line = |k: &str, v: Value| KeyValue(k, &v).to_string();
    assert_eq!(line("totem.token", u32v(3000)), "totem.token (u32) = 3000");
    assert_eq!(line("a.i8", Value::I8(-5)), "a.i8 (i8) = -5");
    assert_eq!(line("a.f", Value::Float(1.5)), "a.f (flt) = 1.500000");
    assert_eq!(line("a.d", Value::Double(-0.25)), "a.d (dbl) = -0.250000");
    assert_eq!(line("a.d", Value::Double(f64::NAN)), "a.d (dbl) = nan");
    assert_eq!(line("a.f", Value::Float(f32::NEG_INFINITY)), "a.f (flt) = -inf");
    assert_eq!(line("totem.cluster_name", Value::String("c1".into())), "totem.cluster_name (str) = c1");
    assert_eq!(line("a.b", Value::Binary(b"a\\\x00\xff~".to_vec())), "a.b (bin) = a\\\\\\x00\\xFF~");
}

#[test]
fn values_parse_from_type_name_and_text() {
    assert_eq!(Value::parse_typed("u32", "3000"), Ok(u32v(3000)));
    assert_eq!(Value::parse_typed("i8", "-128"), Ok(Value::I8(-128)));
    assert_eq!(Value::parse_typed("u64", "18446744073709551615"), Ok(Value::U64(u64::MAX)));
    assert_eq!(Value::parse_typed("dbl", "2.5e3"), Ok(Value::Double(2500.0)));
    assert_eq!(Value::parse_typed("str", "a b"), Ok(Value::String("a b".into())));
    assert_eq!(Value::parse_typed("bin", "a\\x00\\\\"), Ok(Value::Binary(b"a\x00\\".to_vec())));
    assert_eq!(
        Value::parse_typed("u8", "256"),
        Err(ValueError::BadText { ty: ValueType::U8, text: "256".into() })
    );
    assert_eq!(
        Value::parse_typed("u16", "-1"),
        Err(ValueError::BadText { ty: ValueType::U16, text: "-1".into() })
    );
    assert_eq!(
        Value::parse_typed("bin", "\\x+f"),
        Err(ValueError::BadText { ty: ValueType::Binary, text: "\\x+f".into() })
    );
    assert_eq!(Value::parse_typed("int", "1"), Err(ValueError::UnknownType { name: "int".into() }));
    assert_eq!(Value::parse_typed("str", "a\0b"), Err(ValueError::NulInString { at: 1 }));
    let long = "x".repeat(VALUE_LEN_MAX + 1);
    assert_eq!(Value::parse_typed("str", &long), Err(ValueError::TooLong { len: VALUE_LEN_MAX + 1 }));
}

#[test]
fn every_type_name_round_trips_and_has_cmaps_code() {
    for (i, ty) in ValueType::ALL.into_iter().enumerate() {
        assert_eq!(ty.name().parse::<ValueType>(), Ok(ty));
        assert_eq!(ty.cmap_code() as usize, i + 1);
    }
}

#[test]
fn nan_equals_itself_so_setting_it_again_is_no_change() {
    let mut s = Store::default();
    assert_eq!(s.set(Writer::Daemon, "a.nan", Value::Double(f64::NAN)), Ok(SetOutcome::Added));
    assert_eq!(s.set(Writer::Daemon, "a.nan", Value::Double(f64::NAN)), Ok(SetOutcome::Unchanged));
}

#[test]
fn set_get_delete() {
    let mut s = Store::default();
    assert_eq!(s.get("totem.token"), None);
    assert_eq!(s.set(ROOT, "totem.token", u32v(3000)), Ok(SetOutcome::Added));
    assert_eq!(s.get("totem.token"), Some(u32v(3000)));
    assert_eq!(s.set(ROOT, "totem.token", u32v(3000)), Ok(SetOutcome::Unchanged));
    assert_eq!(s.set(ROOT, "totem.token", u32v(5000)), Ok(SetOutcome::Changed { old: u32v(3000) }));
    // Another type is a change too, as in cmap.
    assert_eq!(s.set(ROOT, "totem.token", Value::U64(5000)), Ok(SetOutcome::Changed { old: u32v(5000) }));
    assert_eq!(s.delete(ROOT, "totem.token"), Ok(Value::U64(5000)));
    assert_eq!(s.delete(ROOT, "totem.token"), Err(StoreError::NotFound { key: "totem.token".into() }));
    assert!(s.is_empty());
}

#[test]
fn set_refuses_bad_keys_and_values_without_change() {
    let mut s = Store::default();
    assert_eq!(
        s.set(ROOT, "a b", u32v(1)),
        Err(StoreError::InvalidKey(KeyError::BadChar { key: "a b".into(), ch: ' ', at: 1 }))
    );
    assert_eq!(
        s.set(ROOT, "a.s", Value::String("\0".into())),
        Err(StoreError::InvalidValue(ValueError::NulInString { at: 0 }))
    );
    assert!(s.is_empty());
}

#[test]
fn iter_prefix_is_in_key_order_and_byte_prefixed() {
    let mut s = Store::default();
    for k in ["totem.token", "nodelist.node.1.nodeid", "totemx.a", "nodelist.node.0.nodeid", "totem.join"] {
        s.set(Writer::Daemon, k, u32v(k.len() as u32)).unwrap();
    }
    let keys = |p| s.iter_prefix(p).map(|(k, _)| k.to_string()).collect::<Vec<_>>();
    assert_eq!(keys("totem."), ["totem.join", "totem.token"]);
    assert_eq!(keys("totem"), ["totem.join", "totem.token", "totemx.a"]);
    assert_eq!(keys("nodelist.node."), ["nodelist.node.0.nodeid", "nodelist.node.1.nodeid"]);
    assert_eq!(keys("").len(), 5);
    assert_eq!(keys("zzz"), Vec::<String>::new());
    assert_eq!(s.iter_prefix("totem.t").collect::<Vec<_>>(), [("totem.token", u32v(11))]);
}

#[test]
fn delete_prefix_deletes_in_key_order() {
    let mut s = Store::default();
    let track = s.track(T1, "", TrackFlags::DELETE | TrackFlags::PREFIX).unwrap();
    for k in ["nodelist.node.1.x", "nodelist.node.0.x", "nodelist.nodes", "totem.x"] {
        s.set(Writer::Daemon, k, u32v(1)).unwrap();
    }
    assert_eq!(s.delete_prefix(ROOT, "nodelist.node."), Ok(2));
    let deleted = |k: &str| notify(track, k, NotifyKind::Deleted, Some(u32v(1)), None);
    assert_eq!(drain(&mut s), [deleted("nodelist.node.0.x"), deleted("nodelist.node.1.x")]);
    assert_eq!(s.len(), 2);
}

#[test]
fn clients_write_if_root_or_in_a_write_group() {
    let mut s = Store::default();
    assert_eq!(
        s.set(USER, "totem.token", u32v(1)),
        Err(StoreError::PermissionDenied { uid: 1000, gid: 1000 })
    );
    assert_eq!(s.set(ROOT, "totem.token", u32v(1)), Ok(SetOutcome::Added));
    assert_eq!(s.delete(USER, "totem.token"), Err(StoreError::PermissionDenied { uid: 1000, gid: 1000 }));
    assert_eq!(s.delete_prefix(USER, "nothing."), Err(StoreError::PermissionDenied { uid: 1000, gid: 1000 }));
    s.set_access(AccessPolicy { write_gids: [1000].into(), ..AccessPolicy::default() });
    assert_eq!(s.set(USER, "totem.token", u32v(2)), Ok(SetOutcome::Changed { old: u32v(1) }));
    assert_eq!(s.delete(USER, "totem.token"), Ok(u32v(2)));
}

#[test]
fn read_only_prefixes_refuse_clients_but_not_the_daemon() {
    let mut s = Store::default();
    let key = "runtime.members.2.status";
    let joined = Value::String("joined".into());
    assert_eq!(s.set(ROOT, key, joined.clone()), Err(StoreError::ReadOnly { key: key.into() }));
    assert_eq!(s.set(Writer::Daemon, key, joined.clone()), Ok(SetOutcome::Added));
    assert_eq!(s.delete(ROOT, key), Err(StoreError::ReadOnly { key: key.into() }));
    s.set(Writer::Daemon, "runtime.x.y", u32v(1)).unwrap();
    s.set(Writer::Daemon, "runtimes.a", u32v(1)).unwrap();
    // All or nothing: "runtime" covers runtime.* too.
    assert_eq!(s.delete_prefix(ROOT, "runtime"), Err(StoreError::ReadOnly { key: key.into() }));
    assert_eq!(s.len(), 3);
    assert_eq!(s.delete_prefix(Writer::Daemon, "runtime."), Ok(2));
    assert_eq!(s.len(), 1);
}

#[test]
fn keys_max_bounds_the_store() {
    let mut s = Store::new(StoreConfig { keys_max: 2, ..StoreConfig::default() });
    s.set(Writer::Daemon, "a.1", u32v(1)).unwrap();
    s.counter("a.2").unwrap();
    assert_eq!(s.set(Writer::Daemon, "a.3", u32v(1)), Err(StoreError::Full { keys_max: 2 }));
    assert_eq!(s.counter("a.4"), Err(StoreError::Full { keys_max: 2 }));
    // Changing a key needs no room.
    assert_eq!(s.set(Writer::Daemon, "a.1", u32v(2)), Ok(SetOutcome::Changed { old: u32v(1) }));
}

#[test]
fn counters_read_as_u64_keys_and_bump_without_notifications() {
    let mut s = Store::default();
    let track = s.track(T1, "runtime.", TrackFlags::ALL_EVENTS | TrackFlags::PREFIX).unwrap();
    let sent = s.counter("runtime.totem.packets_sent").unwrap();
    assert_eq!(
        s.counter("runtime.totem.packets_sent"),
        Err(StoreError::Exists { key: "runtime.totem.packets_sent".into() })
    );
    s.add(sent, 3);
    s.add(sent, 4);
    assert_eq!(s.get("runtime.totem.packets_sent"), Some(Value::U64(7)));
    assert_eq!(
        s.iter_prefix("runtime.").collect::<Vec<_>>(),
        [("runtime.totem.packets_sent", Value::U64(7))]
    );
    assert_eq!(s.counter_value(sent), Some(7));
    assert_eq!(
        drain(&mut s),
        [notify(track, "runtime.totem.packets_sent", NotifyKind::Added, None, Some(Value::U64(0)))]
    );
    // Deleting the key stales the handle, even once its cell is reused.
    assert_eq!(s.delete(Writer::Daemon, "runtime.totem.packets_sent"), Ok(Value::U64(7)));
    let recv = s.counter("runtime.totem.packets_recv").unwrap();
    s.add(sent, 100);
    s.add(recv, 1);
    assert_eq!(s.counter_value(sent), None);
    assert_eq!(s.get("runtime.totem.packets_recv"), Some(Value::U64(1)));
    // Setting a counter's key to its value changes nothing; to another makes it a plain value.
    let key = "runtime.totem.packets_recv";
    assert_eq!(s.set(Writer::Daemon, key, Value::U64(1)), Ok(SetOutcome::Unchanged));
    s.add(recv, 1);
    assert_eq!(s.set(Writer::Daemon, key, Value::U64(5)), Ok(SetOutcome::Changed { old: Value::U64(2) }));
    s.add(recv, 1);
    assert_eq!(s.get(key), Some(Value::U64(5)));
    assert_eq!(s.counter_value(recv), None);
}

#[test]
fn tracks_of_a_key_see_only_that_key_and_the_kinds_asked() {
    let mut s = Store::default();
    let only_changes = s.track(T1, "totem.token", TrackFlags::CHANGE).unwrap();
    s.set(Writer::Daemon, "totem.token", u32v(1)).unwrap();
    s.set(Writer::Daemon, "totem.token_warning", u32v(1)).unwrap();
    s.set(Writer::Daemon, "totem.token", u32v(2)).unwrap();
    s.set(Writer::Daemon, "totem.token", u32v(2)).unwrap();
    s.delete(Writer::Daemon, "totem.token").unwrap();
    assert_eq!(
        drain(&mut s),
        [notify(only_changes, "totem.token", NotifyKind::Changed, Some(u32v(1)), Some(u32v(2)))]
    );
}

#[test]
fn notifications_come_in_mutation_order_then_track_order() {
    let mut s = Store::default();
    let all = TrackFlags::ALL_EVENTS | TrackFlags::PREFIX;
    let a = s.track(T1, "totem.", all).unwrap();
    let b = s.track(T2, "totem.token", TrackFlags::ALL_EVENTS).unwrap();
    s.set(Writer::Daemon, "totem.token", u32v(1)).unwrap();
    s.set(Writer::Daemon, "totem.join", u32v(50)).unwrap();
    s.delete(Writer::Daemon, "totem.token").unwrap();
    assert_eq!(
        drain(&mut s),
        [
            notify(a, "totem.token", NotifyKind::Added, None, Some(u32v(1))),
            notify_for(T2, b, "totem.token", NotifyKind::Added, None, Some(u32v(1))),
            notify(a, "totem.join", NotifyKind::Added, None, Some(u32v(50))),
            notify(a, "totem.token", NotifyKind::Deleted, Some(u32v(1)), None),
            notify_for(T2, b, "totem.token", NotifyKind::Deleted, Some(u32v(1)), None),
        ]
    );
}

#[test]
fn track_refuses_no_events_and_too_many_tracks() {
    let mut s = Store::new(StoreConfig { tracks_max: 1, ..StoreConfig::default() });
    assert_eq!(s.track(T1, "a.", TrackFlags::PREFIX), Err(StoreError::NoTrackEvents { bits: 8 }));
    let t = s.track(T1, "a.", TrackFlags::ADD).unwrap();
    assert_eq!(s.track(T1, "b.", TrackFlags::ADD), Err(StoreError::TooManyTracks { tracks_max: 1 }));
    assert_eq!(s.untrack(t), Ok(()));
    assert_eq!(s.untrack(t), Err(StoreError::NoSuchTrack(t)));
    assert!(s.track(T1, "b.", TrackFlags::ADD).is_ok());
    assert_eq!(TrackFlags::from_bits(16), None);
    assert_eq!(TrackFlags::from_bits(15), Some(TrackFlags::ALL_EVENTS | TrackFlags::PREFIX));
}

#[test]
fn untrack_drops_queued_notifications_of_that_track_only() {
    let mut s = Store::default();
    let a = s.track(T1, "k.", TrackFlags::ADD | TrackFlags::PREFIX).unwrap();
    let b = s.track(T1, "k.1", TrackFlags::ADD).unwrap();
    let c = s.track(T2, "k.", TrackFlags::ADD | TrackFlags::PREFIX).unwrap();
    s.set(Writer::Daemon, "k.1", u32v(1)).unwrap();
    s.untrack(a).unwrap();
    assert_eq!(s.untrack_all(T2), 1);
    assert_eq!(drain(&mut s), [notify(b, "k.1", NotifyKind::Added, None, Some(u32v(1)))]);
    assert_eq!(s.untrack(c), Err(StoreError::NoSuchTrack(c)));
}

#[test]
fn a_full_queue_overflows_once_then_resumes_after_the_report() {
    let mut s = Store::new(StoreConfig { notify_queue_max: 2, ..StoreConfig::default() });
    let slow = s.track(T1, "k.", TrackFlags::ADD | TrackFlags::PREFIX).unwrap();
    let other = s.track(T2, "k.4", TrackFlags::ADD).unwrap();
    for k in ["k.1", "k.2", "k.3", "k.4"] {
        s.set(Writer::Daemon, k, u32v(0)).unwrap();
    }
    let added = |t, k: &str| notify(t, k, NotifyKind::Added, None, Some(u32v(0)));
    assert_eq!(s.notifications_queued(), 4);
    assert_eq!(
        drain(&mut s),
        [
            added(slow, "k.1"),
            added(slow, "k.2"),
            Polled::Overflow { tracker: T1, dropped: 2 },
            notify_for(T2, other, "k.4", NotifyKind::Added, None, Some(u32v(0))),
        ]
    );
    s.set(Writer::Daemon, "k.5", u32v(0)).unwrap();
    assert_eq!(drain(&mut s), [added(slow, "k.5")]);
}

#[test]
fn load_types_known_keys_and_keeps_the_rest_as_strings() {
    let text = "totem {\n token: 3000\n join: 5s\n cluster_name: c1\n config_version: 7\n                 interface {\n  mcastport: 5405\n  ttl: 1\n }\n}\n\
                nodelist {\n node {\n  nodeid: 1\n  ring0_addr: 10.0.0.1\n }\n}\n\
                runtime {\n x: 1\n}\nquorum {\n two_node: 1\n}\n";
    let parsed = crate::conf::parse(text, "c.conf").unwrap();
    let mut s = Store::default();
    let report = s.load_parsed(&parsed);
    let skipped = StoreError::ReadOnly { key: "runtime.x".into() };
    assert_eq!(report.skipped, [("runtime.x".to_string(), 18, skipped)]);
    let all: Vec<String> = s.iter_prefix("").map(|(k, v)| KeyValue(k, &v).to_string()).collect();
    assert_eq!(
        all,
        [
            "nodelist.node.0.nodeid (u32) = 1",
            "nodelist.node.0.ring0_addr (str) = 10.0.0.1",
            "quorum.two_node (u8) = 1",
            "totem.cluster_name (str) = c1",
            "totem.config_version (u64) = 7",
            "totem.interface.0.mcastport (u16) = 5405",
            "totem.interface.0.ttl (u8) = 1",
            "totem.join (str) = 5s",
            "totem.token (u32) = 3000",
        ]
    );
    assert!(s.is_config_key("totem.token"));
}

#[test]
fn reload_notifies_exactly_the_differences() {
    let old = "totem {\n token: 3000\n join: 50\n cluster_name: c1\n}\n";
    let new = "totem {\n token: 5000\n cluster_name: c1\n consensus: 6000\n}\n";
    let mut s = Store::default();
    s.load_parsed(&crate::conf::parse(old, "c.conf").unwrap());
    s.set(Writer::Daemon, "runtime.totem.x", u32v(1)).unwrap();
    s.set(ROOT, "app.setting", u32v(1)).unwrap();
    let t = s.track(T1, "", TrackFlags::ALL_EVENTS | TrackFlags::PREFIX).unwrap();
    let summary = s.reload_parsed(&crate::conf::parse(new, "c.conf").unwrap());
    assert_eq!(summary, ReloadSummary { added: 1, changed: 1, deleted: 1, report: LoadReport::default() });
    assert_eq!(
        drain(&mut s),
        [
            notify(t, "totem.token", NotifyKind::Changed, Some(u32v(3000)), Some(u32v(5000))),
            notify(t, "totem.consensus", NotifyKind::Added, None, Some(u32v(6000))),
            notify(t, "totem.join", NotifyKind::Deleted, Some(u32v(50)), None),
        ]
    );
    assert_eq!(s.get("runtime.totem.x"), Some(u32v(1)));
    assert_eq!(s.get("app.setting"), Some(u32v(1)));
}
