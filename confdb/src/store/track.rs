//! Tracking: who watches which keys, and the bounded queue of notifications for them
//! (cmap's `cmap_track_add`, `CMAP_TRACK_*`).

use std::collections::{BTreeMap, VecDeque};
use std::ops::BitOr;

use super::Value;

/// What a track reports, and whether it names a key or a prefix. The bits are cmap's
/// (`CMAP_TRACK_DELETE` 1, `CMAP_TRACK_MODIFY` 2, `CMAP_TRACK_ADD` 4, `CMAP_TRACK_PREFIX` 8),
/// so they go on the wire unchanged.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TrackFlags(u8);

impl TrackFlags {
    /// Report deleted keys.
    pub const DELETE: TrackFlags = TrackFlags(1);
    /// Report changed values (cmap's `MODIFY`).
    pub const CHANGE: TrackFlags = TrackFlags(2);
    /// Report added keys.
    pub const ADD: TrackFlags = TrackFlags(4);
    /// The tracked name is a prefix: every key starting with it (as bytes: `totem.` matches
    /// `totem.token`, `totem` also matches `totemx`), not the key alone.
    pub const PREFIX: TrackFlags = TrackFlags(8);
    /// Add, change and delete.
    pub const ALL_EVENTS: TrackFlags = TrackFlags(7);

    /// Flags from cmap's bits; `None` if a bit is unknown.
    pub fn from_bits(bits: u8) -> Option<TrackFlags> {
        (bits & !15 == 0).then_some(TrackFlags(bits))
    }

    /// cmap's bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: TrackFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for TrackFlags {
    type Output = TrackFlags;
    fn bitor(self, rhs: TrackFlags) -> TrackFlags {
        TrackFlags(self.0 | rhs.0)
    }
}

/// Who receives notifications: one client connection (or one daemon service). Chosen by
/// the caller; the store only groups tracks and bounds queues by it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackerId(pub u64);

/// One track, as returned by [`super::Store::track`]. Never reused within a store.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackId(pub u64);

/// What happened to a key.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum NotifyKind {
    /// The key did not exist (`new` is set, `old` is not).
    Added,
    /// The key existed with another value or type (both set).
    Changed,
    /// The key was removed (`old` is set, `new` is not).
    Deleted,
}

impl NotifyKind {
    fn flag(self) -> TrackFlags {
        match self {
            NotifyKind::Added => TrackFlags::ADD,
            NotifyKind::Changed => TrackFlags::CHANGE,
            NotifyKind::Deleted => TrackFlags::DELETE,
        }
    }
}

/// One change of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The key changed.
    pub key: String,
    /// What happened.
    pub kind: NotifyKind,
    /// The value before, unless added.
    pub old: Option<Value>,
    /// The value after, unless deleted.
    pub new: Option<Value>,
}

/// What [`super::Store::poll_notification`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Polled {
    /// A change that `track` of `tracker` asked for.
    Notify {
        /// The receiver.
        tracker: TrackerId,
        /// The track that matched.
        track: TrackId,
        /// The change.
        notification: Notification,
    },
    /// `tracker` had `notify_queue_max` notifications queued, so `dropped` more were
    /// dropped. Its view is stale: it should read again what it tracks (`iter_prefix`).
    /// Comes after all its queued notifications; notifications resume with the next
    /// mutation after this was polled.
    Overflow {
        /// The receiver.
        tracker: TrackerId,
        /// How many notifications were dropped.
        dropped: u64,
    },
}

#[derive(Clone, Debug)]
struct Track {
    tracker: TrackerId,
    name: String,
    flags: TrackFlags,
}

impl Track {
    fn matches(&self, key: &str) -> bool {
        if self.flags.contains(TrackFlags::PREFIX) {
            key.starts_with(&self.name)
        } else {
            key == self.name
        }
    }
}

#[derive(Clone, Debug, Default)]
struct TrackerState {
    tracks: usize,
    queued: usize,
    /// `Some(n)`: an `Overflow` is queued and `n` notifications were dropped since.
    dropped: Option<u64>,
}

#[derive(Clone, Debug)]
enum Entry {
    Notify(TrackerId, TrackId, Notification),
    Overflow(TrackerId),
}

impl Entry {
    fn tracker(&self) -> TrackerId {
        match self {
            Entry::Notify(t, ..) | Entry::Overflow(t) => *t,
        }
    }
}

/// The tracks and the notification queue, in mutation order.
#[derive(Clone, Debug)]
pub(super) struct Tracking {
    tracks: BTreeMap<TrackId, Track>,
    trackers: BTreeMap<TrackerId, TrackerState>,
    queue: VecDeque<Entry>,
    next_id: u64,
    pub(super) tracks_max: usize,
    pub(super) notify_queue_max: usize,
}

impl Tracking {
    pub(super) fn new(tracks_max: usize, notify_queue_max: usize) -> Self {
        Tracking {
            tracks: BTreeMap::new(),
            trackers: BTreeMap::new(),
            queue: VecDeque::new(),
            next_id: 1,
            tracks_max,
            notify_queue_max,
        }
    }

    /// Adds a track; the caller checked the flags and the limit.
    pub(super) fn add(&mut self, tracker: TrackerId, name: &str, flags: TrackFlags) -> TrackId {
        let id = TrackId(self.next_id);
        self.next_id += 1;
        let name = name.to_string();
        self.tracks.insert(id, Track { tracker, name, flags });
        self.trackers.entry(tracker).or_default().tracks += 1;
        id
    }

    pub(super) fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Removes a track and its queued notifications; the tracker's last track also takes
    /// its queued overflow report. Returns whether the track existed.
    pub(super) fn remove(&mut self, id: TrackId) -> bool {
        let Some(track) = self.tracks.remove(&id) else { return false };
        let state = self.trackers.get_mut(&track.tracker).expect("tracker of a track");
        state.tracks -= 1;
        if state.tracks == 0 {
            self.trackers.remove(&track.tracker);
            self.queue.retain(|e| e.tracker() != track.tracker);
        } else {
            let before = self.queue.len();
            self.queue.retain(|e| !matches!(e, Entry::Notify(_, t, _) if *t == id));
            state.queued -= before - self.queue.len();
        }
        true
    }

    /// Removes every track of `tracker` (its connection closed); returns how many.
    pub(super) fn remove_tracker(&mut self, tracker: TrackerId) -> usize {
        let ids: Vec<TrackId> =
            self.tracks.iter().filter(|(_, t)| t.tracker == tracker).map(|(id, _)| *id).collect();
        ids.iter().for_each(|id| {
            self.remove(*id);
        });
        ids.len()
    }

    /// Whether any track could want a change of `key`; lets a mutation skip cloning values.
    pub(super) fn any_match(&self, key: &str) -> bool {
        self.tracks.values().any(|t| t.matches(key))
    }

    /// Queues `n` for every track that matches its key and kind, in track order.
    pub(super) fn notify(&mut self, n: Notification) {
        let flag = n.kind.flag();
        let matching: Vec<(TrackId, TrackerId)> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.flags.contains(flag) && t.matches(&n.key))
            .map(|(id, t)| (*id, t.tracker))
            .collect();
        for (id, tracker) in matching {
            let state = self.trackers.get_mut(&tracker).expect("tracker of a track");
            if let Some(dropped) = &mut state.dropped {
                *dropped += 1;
            } else if state.queued >= self.notify_queue_max {
                state.dropped = Some(1);
                self.queue.push_back(Entry::Overflow(tracker));
            } else {
                state.queued += 1;
                self.queue.push_back(Entry::Notify(tracker, id, n.clone()));
            }
        }
    }

    pub(super) fn poll(&mut self) -> Option<Polled> {
        let entry = self.queue.pop_front()?;
        let state = self.trackers.get_mut(&entry.tracker()).expect("tracker of a queued entry");
        Some(match entry {
            Entry::Notify(tracker, track, notification) => {
                state.queued -= 1;
                Polled::Notify { tracker, track, notification }
            }
            Entry::Overflow(tracker) => {
                let dropped = state.dropped.take().expect("overflow is marked");
                Polled::Overflow { tracker, dropped }
            }
        })
    }

    pub(super) fn queued(&self) -> usize {
        self.queue.len()
    }
}
