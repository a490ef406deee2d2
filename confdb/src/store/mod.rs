//! The node-local key-value store (corosync's cmap): dotted keys, typed values, prefix
//! iteration, tracking with ordered notifications, access control, and counters cheap
//! enough to bump per packet. Sans-IO: no file, socket or clock.
//!
//! # Call order
//! 1. [`Store::new`]; [`Store::load_parsed`] with the corosync.conf ([`crate::conf::parse`]);
//!    the daemon registers its [`Counter`]s and writes `runtime.` keys as [`Writer::Daemon`].
//! 2. Client requests map to [`Store::get`], [`Store::iter_prefix`], [`Store::set`],
//!    [`Store::delete`], [`Store::delete_prefix`], [`Store::track`], [`Store::untrack`], with
//!    the client's [`Writer::Client`] credentials for writes; [`Store::untrack_all`] when its
//!    connection closes.
//! 3. After every mutation (and [`Store::reload_parsed`] on a config reload), drain
//!    [`Store::poll_notification`] until `None` and send each to its tracker.
//!
//! # Rules (cmap's)
//! - Keys: 3 to 255 bytes of `a-z A-Z 0-9 . _ - / :` ([`validate_key`]), checked when a key
//!   is created. Prefixes (iteration, tracking, deletion) are raw byte prefixes: `totem.`
//!   matches `totem.token`; `totem` also matches `totemx.a`.
//! - Setting a key to the value and type it has is no change: no notification.
//! - Writes: [`Writer::Daemon`] may write anything. A client may write if it is root
//!   (uid 0) or its gid is in [`AccessPolicy::write_gids`], and the key is under none of
//!   [`AccessPolicy::read_only_prefixes`] (by default `runtime.`). Reads are for every
//!   admitted client (admission is the IPC layer's business).
//! - Counters: a [`Counter`] is a `u64` key whose value lives in a slot the store owns;
//!   [`Store::add`] is an index and an add, with no string work and no notification (as
//!   corosync serves its `stats.` keys on read). Reads show the current value. A counter
//!   key set to another value, deleted or deleted by prefix stops being a counter; its
//!   handle then does nothing.
//! - Limits: [`StoreConfig::keys_max`] keys, [`StoreConfig::tracks_max`] tracks, and
//!   [`StoreConfig::notify_queue_max`] queued notifications per tracker, after which it gets
//!   one [`Polled::Overflow`].

mod load;
mod track;
mod value;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

pub use load::{typed_config_value, LoadReport, ReloadSummary, CONFIG_SKIPPED_PREFIX};
pub use track::{Notification, NotifyKind, Polled, TrackFlags, TrackId, TrackerId};
pub use value::{
    validate_key, KeyError, KeyValue, Value, ValueError, ValueType, KEY_LEN_MAX, KEY_LEN_MIN, VALUE_LEN_MAX,
};

/// Who writes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Writer {
    /// The daemon itself: always allowed, read-only prefixes included.
    Daemon,
    /// A local client, with the credentials of its connection.
    Client {
        /// Its user id.
        uid: u32,
        /// Its group id.
        gid: u32,
    },
}

/// Who may write what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Groups whose members may write, besides root (corosync's `uidgid { gid: }`).
    pub write_gids: BTreeSet<u32>,
    /// Prefixes no client may write or delete, root included (cmap's `set_ro_access`).
    pub read_only_prefixes: Vec<String>,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy { write_gids: BTreeSet::new(), read_only_prefixes: vec!["runtime.".into()] }
    }
}

/// The store's limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Most keys held, counters included.
    pub keys_max: usize,
    /// Most tracks, all trackers together.
    pub tracks_max: usize,
    /// Most notifications queued for one tracker before it overflows.
    pub notify_queue_max: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { keys_max: 65_536, tracks_max: 4_096, notify_queue_max: 1_024 }
    }
}

/// A misuse of the store. No variant changes state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A new key's name breaks cmap's rules.
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    /// The value breaks cmap's limits.
    #[error(transparent)]
    InvalidValue(#[from] ValueError),
    /// No such key.
    #[error("no key {key:?}")]
    NotFound {
        /// The key.
        key: String,
    },
    /// The key is under a read-only prefix and the writer is a client.
    #[error("key {key:?} is read-only")]
    ReadOnly {
        /// The key.
        key: String,
    },
    /// The client is neither root nor in a write group.
    #[error("uid {uid} gid {gid} may not write")]
    PermissionDenied {
        /// The client's uid.
        uid: u32,
        /// The client's gid.
        gid: u32,
    },
    /// The store holds `keys_max` keys.
    #[error("the store is full ({keys_max} keys)")]
    Full {
        /// The limit.
        keys_max: usize,
    },
    /// A counter was asked for on a key that exists.
    #[error("key {key:?} exists")]
    Exists {
        /// The key.
        key: String,
    },
    /// There are `tracks_max` tracks.
    #[error("too many tracks ({tracks_max})")]
    TooManyTracks {
        /// The limit.
        tracks_max: usize,
    },
    /// Track flags with none of add, change, delete.
    #[error("track flags {bits:#x} ask for no event")]
    NoTrackEvents {
        /// The flags' bits.
        bits: u8,
    },
    /// No such track.
    #[error("no track {0:?}")]
    NoSuchTrack(TrackId),
}

/// What [`Store::set`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOutcome {
    /// The key is new.
    Added,
    /// The key had another value or type: this one.
    Changed {
        /// The value before.
        old: Value,
    },
    /// The key had this value already; nothing was notified.
    Unchanged,
}

/// A counter's handle: [`Store::add`] bumps it. Stale once its key is set or deleted.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Counter {
    index: u32,
    generation: u32,
}

#[derive(Copy, Clone, Debug)]
struct CounterCell {
    value: u64,
    generation: u32,
}

#[derive(Clone, Debug)]
enum Slot {
    Value(Value),
    Counter(u32),
}

#[derive(Clone, Debug)]
struct Item {
    slot: Slot,
    /// Set by [`Store::load_parsed`] or [`Store::reload_parsed`]: a reload may delete it.
    from_config: bool,
}

/// The store. See the module doc for the call order and rules.
#[derive(Clone, Debug)]
pub struct Store {
    items: BTreeMap<String, Item>,
    counters: Vec<CounterCell>,
    free_counters: Vec<u32>,
    tracking: track::Tracking,
    access: AccessPolicy,
    keys_max: usize,
}

impl Default for Store {
    fn default() -> Self {
        Store::new(StoreConfig::default())
    }
}

impl Store {
    /// An empty store with these limits and the default [`AccessPolicy`].
    pub fn new(config: StoreConfig) -> Store {
        Store {
            items: BTreeMap::new(),
            counters: Vec::new(),
            free_counters: Vec::new(),
            tracking: track::Tracking::new(config.tracks_max, config.notify_queue_max),
            access: AccessPolicy::default(),
            keys_max: config.keys_max,
        }
    }

    /// Replaces the access policy (on start and on reload of `uidgid`).
    pub fn set_access(&mut self, access: AccessPolicy) {
        self.access = access;
    }

    /// The access policy.
    pub fn access(&self) -> &AccessPolicy {
        &self.access
    }

    /// Number of keys, counters included.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The value of `key` (a counter's current value as `U64`).
    pub fn get(&self, key: &str) -> Option<Value> {
        self.items.get(key).map(|item| self.value_of(&item.slot))
    }

    /// Every key starting with `prefix` (`""` for all), in key order, with its value.
    pub fn iter_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, Value)> + 'a {
        self.items
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, item)| (k.as_str(), self.value_of(&item.slot)))
    }

    /// Sets `key` to `value`, creating it if needed, and notifies its trackers.
    pub fn set(&mut self, writer: Writer, key: &str, value: Value) -> Result<SetOutcome, StoreError> {
        self.check_write(writer, key)?;
        self.put(key, value, false)
    }

    /// Deletes `key`, notifies its trackers, and returns its last value.
    pub fn delete(&mut self, writer: Writer, key: &str) -> Result<Value, StoreError> {
        self.check_write(writer, key)?;
        self.remove(key).ok_or_else(|| StoreError::NotFound { key: key.to_string() })
    }

    /// Deletes every key starting with `prefix`, in key order, and returns how many. A client
    /// must be allowed to delete all of them, else nothing is deleted.
    pub fn delete_prefix(&mut self, writer: Writer, prefix: &str) -> Result<usize, StoreError> {
        self.check_writer(writer)?;
        let keys: Vec<String> = self
            .items
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &keys {
            self.check_read_only(writer, key)?;
        }
        keys.iter().for_each(|k| {
            self.remove(k);
        });
        Ok(keys.len())
    }

    /// Creates `key` as a counter at 0 (notified as added) and returns its handle.
    pub fn counter(&mut self, key: &str) -> Result<Counter, StoreError> {
        if self.items.contains_key(key) {
            return Err(StoreError::Exists { key: key.to_string() });
        }
        self.check_new_key(key)?;
        let index = match self.free_counters.pop() {
            Some(i) => i,
            None => {
                self.counters.push(CounterCell { value: 0, generation: 0 });
                u32::try_from(self.counters.len() - 1).expect("counters fit keys_max")
            }
        };
        self.counters[index as usize].value = 0;
        let generation = self.counters[index as usize].generation;
        self.items.insert(key.to_string(), Item { slot: Slot::Counter(index), from_config: false });
        self.notify(key, NotifyKind::Added, None, Some(Value::U64(0)));
        Ok(Counter { index, generation })
    }

    /// Adds `n` to a counter (wrapping, as corosync's). A stale handle does nothing; a handle
    /// of another store may bump one of its counters or panic.
    #[inline]
    pub fn add(&mut self, counter: Counter, n: u64) {
        let cell = &mut self.counters[counter.index as usize];
        if cell.generation == counter.generation {
            cell.value = cell.value.wrapping_add(n);
        }
    }

    /// A counter's value, or `None` if the handle is stale.
    pub fn counter_value(&self, counter: Counter) -> Option<u64> {
        let cell = self.counters[counter.index as usize];
        (cell.generation == counter.generation).then_some(cell.value)
    }

    /// Tracks `key_or_prefix` for `tracker`: changes of the kinds in `flags` queue
    /// notifications, from the next mutation on.
    pub fn track(
        &mut self,
        tracker: TrackerId,
        key_or_prefix: &str,
        flags: TrackFlags,
    ) -> Result<TrackId, StoreError> {
        if flags.bits() & TrackFlags::ALL_EVENTS.bits() == 0 {
            return Err(StoreError::NoTrackEvents { bits: flags.bits() });
        }
        if self.tracking.len() >= self.tracking.tracks_max {
            return Err(StoreError::TooManyTracks { tracks_max: self.tracking.tracks_max });
        }
        Ok(self.tracking.add(tracker, key_or_prefix, flags))
    }

    /// Stops a track and drops its queued notifications.
    pub fn untrack(&mut self, track: TrackId) -> Result<(), StoreError> {
        self.tracking.remove(track).then_some(()).ok_or(StoreError::NoSuchTrack(track))
    }

    /// Stops every track of `tracker` (its connection closed); returns how many.
    pub fn untrack_all(&mut self, tracker: TrackerId) -> usize {
        self.tracking.remove_tracker(tracker)
    }

    /// The oldest queued notification or overflow report.
    pub fn poll_notification(&mut self) -> Option<Polled> {
        self.tracking.poll()
    }

    /// Number of queued notifications and overflow reports.
    pub fn notifications_queued(&self) -> usize {
        self.tracking.queued()
    }

    fn value_of(&self, slot: &Slot) -> Value {
        match slot {
            Slot::Value(v) => v.clone(),
            Slot::Counter(i) => Value::U64(self.counters[*i as usize].value),
        }
    }

    fn check_write(&self, writer: Writer, key: &str) -> Result<(), StoreError> {
        self.check_writer(writer)?;
        self.check_read_only(writer, key)
    }

    /// Whether `writer` may write at all: the daemon, root, or a write group's member.
    fn check_writer(&self, writer: Writer) -> Result<(), StoreError> {
        match writer {
            Writer::Client { uid, gid } if uid != 0 && !self.access.write_gids.contains(&gid) => {
                Err(StoreError::PermissionDenied { uid, gid })
            }
            _ => Ok(()),
        }
    }

    fn check_read_only(&self, writer: Writer, key: &str) -> Result<(), StoreError> {
        let read_only = self.access.read_only_prefixes.iter().any(|p| key.starts_with(p.as_str()));
        if read_only && writer != Writer::Daemon {
            return Err(StoreError::ReadOnly { key: key.to_string() });
        }
        Ok(())
    }

    fn check_new_key(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        if self.items.len() >= self.keys_max {
            return Err(StoreError::Full { keys_max: self.keys_max });
        }
        Ok(())
    }

    /// Sets without an access check; `from_config` marks (or keeps marked) a config key.
    fn put(&mut self, key: &str, value: Value, from_config: bool) -> Result<SetOutcome, StoreError> {
        value.check()?;
        let Some(item) = self.items.get(key) else {
            self.check_new_key(key)?;
            if self.tracking.any_match(key) {
                self.notify(key, NotifyKind::Added, None, Some(value.clone()));
            }
            self.items.insert(key.to_string(), Item { slot: Slot::Value(value), from_config });
            return Ok(SetOutcome::Added);
        };
        let same = match &item.slot {
            Slot::Value(v) => *v == value,
            Slot::Counter(i) => value == Value::U64(self.counters[*i as usize].value),
        };
        if same {
            self.items.get_mut(key).expect("present").from_config |= from_config;
            return Ok(SetOutcome::Unchanged);
        }
        let item = self.items.get_mut(key).expect("present");
        item.from_config |= from_config;
        let old_slot = std::mem::replace(&mut item.slot, Slot::Value(value));
        let old = self.take_slot(old_slot);
        if self.tracking.any_match(key) {
            let new = self.get(key);
            self.notify(key, NotifyKind::Changed, Some(old.clone()), new);
        }
        Ok(SetOutcome::Changed { old })
    }

    /// Deletes without an access check.
    fn remove(&mut self, key: &str) -> Option<Value> {
        let item = self.items.remove(key)?;
        let old = self.take_slot(item.slot);
        self.notify(key, NotifyKind::Deleted, Some(old.clone()), None);
        Some(old)
    }

    /// The value of a slot leaving the map; frees a counter's cell and staled its handle.
    fn take_slot(&mut self, slot: Slot) -> Value {
        match slot {
            Slot::Value(v) => v,
            Slot::Counter(i) => {
                let cell = &mut self.counters[i as usize];
                cell.generation = cell.generation.wrapping_add(1);
                self.free_counters.push(i);
                Value::U64(cell.value)
            }
        }
    }

    /// Queues a notification for the tracks that match. Tracks are matched one by one:
    /// `tracks_max` bounds the cost, and mutations are rare next to counter bumps.
    fn notify(&mut self, key: &str, kind: NotifyKind, old: Option<Value>, new: Option<Value>) {
        if self.tracking.any_match(key) {
            self.tracking.notify(Notification { key: key.to_string(), kind, old, new });
        }
    }
}
