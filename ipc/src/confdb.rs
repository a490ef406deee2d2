//! The confdb (corosync's cmap) requests, replies and notifications of the local API.
//!
//! Values travel typed: the type's name as corosync-cmapctl prints it (`u32`, `str`, `bin`,
//! ...), the value's text as it prints it, and for `bin` the raw bytes too (the text escapes
//! non-printable bytes).

use bytes::Bytes;
use prost::Message;

/// A typed value.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfdbValue {
    /// The type's name (`i8` .. `u64`, `flt`, `dbl`, `str`, `bin`).
    #[prost(string, tag = "1")]
    pub type_name: String,
    /// The value as corosync-cmapctl prints it.
    #[prost(string, tag = "2")]
    pub text: String,
    /// The raw bytes of a `bin` value; empty for other types.
    #[prost(bytes = "bytes", tag = "3")]
    pub raw: Bytes,
}

/// One key and its value.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfdbEntry {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Its value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<ConfdbValue>,
}

/// Read one key (`cmap_get`).
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfdbGet {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
}

/// Set one key, creating it if needed (`cmap_set`).
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfdbSet {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The type's name, as in [`ConfdbValue::type_name`].
    #[prost(string, tag = "2")]
    pub type_name: String,
    /// The value as text (`bin`: printable bytes as is, `\\` and `\xHH`).
    #[prost(string, tag = "3")]
    pub text: String,
}

/// Delete one key (`cmap_delete`).
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfdbDelete {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
}

/// Every key starting with a prefix (`cmap_iter_*`); empty for all.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfdbIter {
    /// The prefix.
    #[prost(string, tag = "1")]
    pub prefix: String,
}

/// Be told of every change of a key, or of every key under a prefix (`cmap_track_add`).
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfdbTrack {
    /// The key or the prefix.
    #[prost(string, tag = "1")]
    pub key_or_prefix: String,
    /// Whether `key_or_prefix` is a prefix.
    #[prost(bool, tag = "2")]
    pub prefix: bool,
}

/// Stop a track (`cmap_track_delete`).
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfdbUntrack {
    /// The track's id, from [`ConfdbTracking`].
    #[prost(uint64, tag = "1")]
    pub track_id: u64,
}

/// The reply to a get: the key's value.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfdbValueReply {
    /// The value.
    #[prost(message, optional, tag = "1")]
    pub value: Option<ConfdbValue>,
}

/// The reply to an iteration: the keys in key order.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfdbEntries {
    /// The keys and values.
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<ConfdbEntry>,
}

/// The reply to a track: its id, for [`ConfdbUntrack`] and in its notifications.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfdbTracking {
    /// The track's id.
    #[prost(uint64, tag = "1")]
    pub track_id: u64,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ConfdbChange {
    /// Created (`CMAP_TRACK_ADD`).
    Added = 0,
    /// Its value or type changed (`CMAP_TRACK_MODIFY`).
    Changed = 1,
    /// Deleted (`CMAP_TRACK_DELETE`).
    Deleted = 2,
    /// Notifications were dropped (the tracker read too slowly): read again what is tracked.
    Overflow = 3,
}

impl ConfdbChange {
    /// `added`, `changed`, `deleted` or `overflow`.
    pub fn name(self) -> &'static str {
        match self {
            ConfdbChange::Added => "added",
            ConfdbChange::Changed => "changed",
            ConfdbChange::Deleted => "deleted",
            ConfdbChange::Overflow => "overflow",
        }
    }
}

/// A tracked key changed.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ConfdbNotify {
    /// The track that matched (0 with an overflow).
    #[prost(uint64, tag = "1")]
    pub track_id: u64,
    /// The key (empty with an overflow).
    #[prost(string, tag = "2")]
    pub key: String,
    /// What happened ([`ConfdbChange`]).
    #[prost(enumeration = "ConfdbChange", tag = "3")]
    pub kind: i32,
    /// The value before, unless added.
    #[prost(message, optional, tag = "4")]
    pub old: Option<ConfdbValue>,
    /// The value after, unless deleted.
    #[prost(message, optional, tag = "5")]
    pub new: Option<ConfdbValue>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::Message;

    use super::*;
    use crate::{Event, EventKind, Request, RequestBody, Response, ResponseResult};

    fn value() -> impl Strategy<Value = ConfdbValue> {
        ("[a-z0-9]{0,4}", ".{0,20}", proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(type_name, text, raw)| ConfdbValue { type_name, text, raw: Bytes::from(raw) })
    }

    fn request_body() -> impl Strategy<Value = RequestBody> {
        let key = || "[a-z._]{0,30}";
        prop_oneof![
            key().prop_map(|key| RequestBody::ConfdbGet(ConfdbGet { key })),
            (key(), "[a-z0-9]{0,4}", ".{0,20}").prop_map(|(key, type_name, text)| RequestBody::ConfdbSet(
                ConfdbSet { key, type_name, text }
            )),
            key().prop_map(|key| RequestBody::ConfdbDelete(ConfdbDelete { key })),
            key().prop_map(|prefix| RequestBody::ConfdbIter(ConfdbIter { prefix })),
            (key(), any::<bool>()).prop_map(|(key_or_prefix, prefix)| {
                RequestBody::ConfdbTrack(ConfdbTrack { key_or_prefix, prefix })
            }),
            any::<u64>().prop_map(|track_id| RequestBody::ConfdbUntrack(ConfdbUntrack { track_id })),
        ]
    }

    proptest! {
        #[test]
        fn confdb_requests_round_trip(id in any::<u64>(), body in request_body()) {
            let request = Request { id, body: Some(body) };
            prop_assert_eq!(Request::decode(request.encode_to_vec().as_slice()).unwrap(), request);
        }

        #[test]
        fn confdb_responses_and_events_round_trip(
            id in any::<u64>(),
            key in "[a-z._]{0,30}",
            old in proptest::option::of(value()),
            new in proptest::option::of(value()),
            kind in 0i32..4,
            track_id in any::<u64>(),
        ) {
            let entries = vec![ConfdbEntry { key: key.clone(), value: new.clone() }];
            for result in [
                ResponseResult::ConfdbValue(ConfdbValueReply { value: old.clone() }),
                ResponseResult::ConfdbEntries(ConfdbEntries { entries }),
                ResponseResult::ConfdbTracking(ConfdbTracking { track_id }),
            ] {
                let response = Response::new(id, result);
                prop_assert_eq!(Response::decode(response.encode_to_vec().as_slice()).unwrap(), response);
            }
            let event = Event::new(EventKind::ConfdbNotify(ConfdbNotify { track_id, key, kind, old, new }));
            prop_assert_eq!(Event::decode(event.encode_to_vec().as_slice()).unwrap(), event);
        }
    }
}
