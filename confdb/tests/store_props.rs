//! Properties of `confdb::store`: it holds what a plain map would after the same writes,
//! and every tracker that replays its notifications onto the view it started from (or
//! re-read at an overflow) ends with what the store holds under its key or prefix.

use std::collections::BTreeMap;

use confdb::store::{
    NotifyKind, Polled, SetOutcome, Store, StoreConfig, TrackFlags, TrackerId, Value, Writer,
};
use proptest::prelude::*;

const KEYS: &[&str] =
    &["a.b", "a.bc", "a.b.c", "ab.x", "totem.token", "totem.join", "quorum.votes", "app.x", "runtime.k"];
const PREFIXES: &[&str] = &["", "a", "a.", "a.b", "totem.", "quorum", "app.x", "runtime.", "zz"];

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i8>().prop_map(Value::I8),
        any::<u16>().prop_map(Value::U16),
        (0u32..4).prop_map(Value::U32),
        any::<i64>().prop_map(Value::I64),
        (0u64..3).prop_map(Value::U64),
        any::<f32>().prop_map(Value::Float),
        any::<f64>().prop_map(Value::Double),
        "[a-z0-9]{0,3}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(Value::Binary),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Set(usize, Value),
    Delete(usize),
    DeletePrefix(usize),
    /// Creates a counter (if the key is free) and bumps it.
    Counter(usize, u64),
    /// Makes the config these (section, key, text) entries.
    Reload(Vec<(usize, usize, String)>),
    Track(usize, bool),
    Poll(usize),
}

fn op(with_counters: bool) -> impl Strategy<Value = Op> {
    let k = 0..KEYS.len();
    let p = 0..PREFIXES.len();
    let entry = (0usize..3, 0usize..3, "[0-9a-z]{0,3}".prop_map(String::from));
    prop_oneof![
        4 => (k.clone(), value()).prop_map(|(k, v)| Op::Set(k, v)),
        2 => k.clone().prop_map(Op::Delete),
        1 => p.clone().prop_map(Op::DeletePrefix),
        (if with_counters { 1 } else { 0 }) => (k, 0u64..5).prop_map(|(k, n)| Op::Counter(k, n)),
        (if with_counters { 0 } else { 1 }) =>
            proptest::collection::vec(entry, 0..5).prop_map(Op::Reload),
        (if with_counters { 0 } else { 1 }) => (p, any::<bool>()).prop_map(|(p, e)| Op::Track(p, e)),
        (if with_counters { 0 } else { 2 }) => (0usize..6).prop_map(Op::Poll),
    ]
}

fn config_text(entries: &[(usize, usize, String)]) -> String {
    const SECTIONS: [&str; 3] = ["totem", "quorum", "app"];
    const NAMES: [&str; 3] = ["token", "votes", "x"];
    entries.iter().map(|(s, k, v)| format!("{} {{\n {}: {}\n}}\n", SECTIONS[*s], NAMES[*k], v)).collect()
}

proptest! {
    #[test]
    fn the_store_holds_what_a_map_would(ops in proptest::collection::vec(op(true), 0..60)) {
        let mut store = Store::default();
        let mut model: BTreeMap<String, Value> = BTreeMap::new();
        let mut counters = BTreeMap::new();
        for op in ops {
            match op {
                Op::Set(k, v) => {
                    let key = KEYS[k];
                    let expected = match model.insert(key.to_string(), v.clone()) {
                        None => SetOutcome::Added,
                        Some(old) if old == v => SetOutcome::Unchanged,
                        Some(old) => SetOutcome::Changed { old },
                    };
                    prop_assert_eq!(store.set(Writer::Daemon, key, v), Ok(expected));
                    counters.remove(key);
                }
                Op::Delete(k) => {
                    let key = KEYS[k];
                    let got = store.delete(Writer::Daemon, key).ok();
                    prop_assert_eq!(got, model.remove(key));
                    counters.remove(key);
                }
                Op::DeletePrefix(p) => {
                    let prefix = PREFIXES[p];
                    let before = model.len();
                    model.retain(|k, _| !k.starts_with(prefix));
                    counters.retain(|k: &&str, _| !k.starts_with(prefix));
                    prop_assert_eq!(store.delete_prefix(Writer::Daemon, prefix), Ok(before - model.len()));
                }
                Op::Counter(k, n) => {
                    let key = KEYS[k];
                    if !model.contains_key(key) {
                        counters.insert(key, store.counter(key).unwrap());
                        model.insert(key.to_string(), Value::U64(0));
                    }
                    if let Some(c) = counters.get(key) {
                        store.add(*c, n);
                        let Some(Value::U64(v)) = model.get_mut(key) else { unreachable!() };
                        *v += n;
                    }
                }
                Op::Reload(_) | Op::Track(..) | Op::Poll(_) => unreachable!(),
            }
            let contents: BTreeMap<String, Value> =
                store.iter_prefix("").map(|(k, v)| (k.to_string(), v)).collect();
            prop_assert_eq!(&contents, &model);
        }
        for key in KEYS {
            prop_assert_eq!(store.get(key), model.get(*key).cloned());
        }
    }

    #[test]
    fn replayed_notifications_give_each_trackers_final_view(
        queue_max in 1usize..6,
        ops in proptest::collection::vec(op(false), 0..80),
    ) {
        let config = StoreConfig { notify_queue_max: queue_max, ..StoreConfig::default() };
        let mut store = Store::new(config);
        // Per tracker: its name, whether it is a prefix, and its view.
        let mut trackers: Vec<(String, bool, BTreeMap<String, Value>)> = Vec::new();
        for op in ops {
            match op {
                Op::Set(k, v) => {
                    store.set(Writer::Daemon, KEYS[k], v).unwrap();
                }
                Op::Delete(k) => {
                    let _ = store.delete(Writer::Daemon, KEYS[k]);
                }
                Op::DeletePrefix(p) => {
                    store.delete_prefix(Writer::Daemon, PREFIXES[p]).unwrap();
                }
                Op::Reload(entries) => {
                    let parsed = confdb::conf::parse(&config_text(&entries), "c.conf").unwrap();
                    store.reload_parsed(&parsed);
                }
                Op::Track(p, exact) => {
                    let name = PREFIXES[p];
                    let mut flags = TrackFlags::ALL_EVENTS;
                    if !exact {
                        flags = flags | TrackFlags::PREFIX;
                    }
                    store.track(TrackerId(trackers.len() as u64), name, flags).unwrap();
                    let view = view(&store, name, !exact);
                    trackers.push((name.to_string(), !exact, view));
                }
                Op::Poll(n) => {
                    for _ in 0..n {
                        let Some(polled) = store.poll_notification() else { break };
                        apply(&store, &mut trackers, polled)?;
                    }
                }
                Op::Counter(..) => unreachable!(),
            }
        }
        while let Some(polled) = store.poll_notification() {
            apply(&store, &mut trackers, polled)?;
        }
        for (name, prefix, seen) in &trackers {
            prop_assert_eq!(seen, &view(&store, name, *prefix), "tracker of {:?}", name);
        }
    }
}

proptest! {
    /// What `Display` prints, `Value::parse` reads back as the same value (floats print six
    /// decimals, as corosync-cmapctl does, so only integers, strings and binary round-trip).
    #[test]
    fn printed_values_parse_back(v in value(), s in "[^\\x00]{0,8}", b in proptest::collection::vec(any::<u8>(), 0..8)) {
        for v in [v, Value::String(s), Value::Binary(b)] {
            if matches!(v, Value::Float(_) | Value::Double(_)) {
                continue;
            }
            prop_assert_eq!(Value::parse(v.value_type(), &v.to_string()), Ok(v));
        }
    }
}

fn view(store: &Store, name: &str, prefix: bool) -> BTreeMap<String, Value> {
    store.iter_prefix(name).filter(|(k, _)| prefix || *k == name).map(|(k, v)| (k.to_string(), v)).collect()
}

/// Applies one polled item to its tracker's view; an overflow re-reads it.
fn apply(
    store: &Store,
    trackers: &mut [(String, bool, BTreeMap<String, Value>)],
    polled: Polled,
) -> Result<(), TestCaseError> {
    match polled {
        Polled::Notify { tracker, notification: n, .. } => {
            let (name, prefix, seen) = &mut trackers[tracker.0 as usize];
            let matches = if *prefix { n.key.starts_with(name.as_str()) } else { n.key == *name };
            prop_assert!(matches);
            let before = match n.kind {
                NotifyKind::Added => {
                    prop_assert!(n.old.is_none());
                    seen.insert(n.key.clone(), n.new.clone().unwrap())
                }
                NotifyKind::Changed => {
                    prop_assert_ne!(&n.old, &n.new);
                    seen.insert(n.key.clone(), n.new.clone().unwrap())
                }
                NotifyKind::Deleted => {
                    prop_assert!(n.new.is_none());
                    seen.remove(&n.key)
                }
            };
            prop_assert_eq!(before, n.old);
            Ok(())
        }
        Polled::Overflow { tracker, dropped } => {
            prop_assert!(dropped > 0);
            let (name, prefix, seen) = &mut trackers[tracker.0 as usize];
            *seen = view(store, name, *prefix);
            Ok(())
        }
    }
}
