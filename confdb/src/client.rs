//! The API applications link to use the daemon's confdb (feature `client`), like corosync's
//! libcmap: get, set, delete, iterate a prefix, and track keys with a stream of notifications,
//! through totemd's local socket.
//!
//! ```no_run
//! # async fn f() -> Result<(), ipc::IpcError> {
//! use confdb::store::Value;
//! let db = confdb::client::Confdb::connect(ipc::socket_path(None)).await?;
//! println!("token: {}", db.get("totem.token").await?);
//! db.set("app.mode", &Value::String("active".into())).await?;
//! for (key, value) in db.iter_prefix("runtime.members.").await? {
//!     println!("{key} = {value}");
//! }
//! db.track("totem.", true).await?;
//! while let Some(change) = db.next_change().await {
//!     println!("{:?} {} {:?} -> {:?}", change.kind, change.key, change.old, change.new);
//! }
//! # Ok(()) }
//! ```
//!
//! Values travel as their type name and text (corosync-cmapctl's), so every value reads back
//! with the type it was stored with; binary values carry their raw bytes too.

use std::path::Path;

use ipc::{
    ConfdbChange, ConfdbDelete, ConfdbGet, ConfdbIter, ConfdbNotify, ConfdbSet, ConfdbTrack, ConfdbUntrack,
    ConfdbValue, Connection, EventKind, IpcError, RequestBody, ResponseResult,
};

use crate::store::{TrackId, Value};

/// What happened to a tracked key.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Its value or type changed.
    Changed,
    /// Deleted.
    Deleted,
    /// Notifications were dropped because this client read too slowly: read the tracked keys
    /// again.
    Overflow,
}

/// One notification of a track, in the order the daemon made the changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The track that matched (0 with [`ChangeKind::Overflow`]).
    pub track: TrackId,
    /// The key (empty with [`ChangeKind::Overflow`]).
    pub key: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The value before, unless added.
    pub old: Option<Value>,
    /// The value after, unless deleted.
    pub new: Option<Value>,
}

/// A connection to totemd's confdb.
pub struct Confdb {
    conn: Connection,
}

impl Confdb {
    /// Connects to the daemon's socket at `path`.
    pub async fn connect(path: impl AsRef<Path>) -> Result<Confdb, IpcError> {
        Confdb::connect_named(path, "confdb-client").await
    }

    /// Connects, naming this client `name` in the daemon's log.
    pub async fn connect_named(path: impl AsRef<Path>, name: &str) -> Result<Confdb, IpcError> {
        let (conn, _) = Connection::connect(path, name).await?;
        Ok(Confdb { conn })
    }

    /// One key's value (`cmap_get`); the daemon's `NotExist` when there is none.
    pub async fn get(&self, key: &str) -> Result<Value, IpcError> {
        match self.conn.request(RequestBody::ConfdbGet(ConfdbGet { key: key.into() })).await? {
            ResponseResult::ConfdbValue(reply) => from_wire(reply.value),
            other => Err(unexpected(other)),
        }
    }

    /// Sets a key, creating it if needed (`cmap_set`). Root and the `uidgid` groups may write;
    /// `runtime.` keys are read-only.
    pub async fn set(&self, key: &str, value: &Value) -> Result<(), IpcError> {
        self.set_text(key, value.type_name(), &value.to_string()).await
    }

    /// Sets a key from a type name (`u32`, `str`, `bin`, ...) and text, as corosync-cmapctl
    /// takes them; the daemon checks both.
    pub async fn set_text(&self, key: &str, type_name: &str, text: &str) -> Result<(), IpcError> {
        let body = RequestBody::ConfdbSet(ConfdbSet {
            key: key.into(),
            type_name: type_name.into(),
            text: text.into(),
        });
        ok(self.conn.request(body).await?)
    }

    /// Deletes a key (`cmap_delete`).
    pub async fn delete(&self, key: &str) -> Result<(), IpcError> {
        ok(self.conn.request(RequestBody::ConfdbDelete(ConfdbDelete { key: key.into() })).await?)
    }

    /// Every key starting with `prefix` and its value, in key order (`cmap_iter_*`); all keys
    /// with an empty prefix.
    pub async fn iter_prefix(&self, prefix: &str) -> Result<Vec<(String, Value)>, IpcError> {
        match self.conn.request(RequestBody::ConfdbIter(ConfdbIter { prefix: prefix.into() })).await? {
            ResponseResult::ConfdbEntries(e) => {
                e.entries.into_iter().map(|e| Ok((e.key, from_wire(e.value)?))).collect()
            }
            other => Err(unexpected(other)),
        }
    }

    /// Tracks one key, or every key under a prefix (`cmap_track_add`): each later add, change
    /// and delete comes from [`Confdb::next_change`].
    pub async fn track(&self, key_or_prefix: &str, prefix: bool) -> Result<TrackId, IpcError> {
        let body = RequestBody::ConfdbTrack(ConfdbTrack { key_or_prefix: key_or_prefix.into(), prefix });
        match self.conn.request(body).await? {
            ResponseResult::ConfdbTracking(t) => Ok(TrackId(t.track_id)),
            other => Err(unexpected(other)),
        }
    }

    /// Stops a track of this connection (`cmap_track_delete`).
    pub async fn untrack(&self, track: TrackId) -> Result<(), IpcError> {
        ok(self.conn.request(RequestBody::ConfdbUntrack(ConfdbUntrack { track_id: track.0 })).await?)
    }

    /// The next change of a tracked key, in order; `None` once the connection closed. Events
    /// of other services on the same connection are skipped.
    pub async fn next_change(&self) -> Option<Change> {
        loop {
            if let Some(EventKind::ConfdbNotify(n)) = self.conn.next_event().await?.kind {
                if let Some(change) = change(n) {
                    return Some(change);
                }
            }
        }
    }

    /// The connection, for requests this API does not wrap.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// A value as the daemon sent it.
pub fn from_wire(value: Option<ConfdbValue>) -> Result<Value, IpcError> {
    let v = value.ok_or_else(|| IpcError::UnexpectedReply("a confdb entry without a value".into()))?;
    if v.type_name == "bin" {
        return Ok(Value::Binary(v.raw.to_vec()));
    }
    Value::parse_typed(&v.type_name, &v.text).map_err(|e| {
        IpcError::UnexpectedReply(format!("confdb value {:?} of type {}: {e}", v.text, v.type_name))
    })
}

fn change(n: ConfdbNotify) -> Option<Change> {
    let kind = match ConfdbChange::try_from(n.kind).ok()? {
        ConfdbChange::Added => ChangeKind::Added,
        ConfdbChange::Changed => ChangeKind::Changed,
        ConfdbChange::Deleted => ChangeKind::Deleted,
        ConfdbChange::Overflow => ChangeKind::Overflow,
    };
    let value = |v: Option<ConfdbValue>| v.and_then(|v| from_wire(Some(v)).ok());
    Some(Change { track: TrackId(n.track_id), key: n.key, kind, old: value(n.old), new: value(n.new) })
}

fn ok(result: ResponseResult) -> Result<(), IpcError> {
    match result {
        ResponseResult::Ok(_) => Ok(()),
        other => Err(unexpected(other)),
    }
}

fn unexpected(result: ResponseResult) -> IpcError {
    IpcError::UnexpectedReply(format!("{result:?}"))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn wire(type_name: &str, text: &str, raw: &[u8]) -> Option<ConfdbValue> {
        Some(ConfdbValue { type_name: type_name.into(), text: text.into(), raw: Bytes::copy_from_slice(raw) })
    }

    #[test]
    fn wire_values_read_back_typed_and_binary_from_its_raw_bytes() {
        assert_eq!(from_wire(wire("u32", "3000", b"")).unwrap(), Value::U32(3000));
        assert_eq!(from_wire(wire("str", "a b", b"")).unwrap(), Value::String("a b".into()));
        assert_eq!(from_wire(wire("bin", "ignored", b"\0\xff")).unwrap(), Value::Binary(vec![0, 0xff]));
        assert!(from_wire(wire("u8", "300", b"")).is_err());
        assert!(from_wire(None).is_err());
    }

    #[test]
    fn notifications_become_changes_and_unknown_kinds_are_skipped() {
        let n = ConfdbNotify {
            track_id: 4,
            key: "totem.token".into(),
            kind: ConfdbChange::Changed as i32,
            old: wire("u32", "1000", b""),
            new: wire("u32", "1500", b""),
        };
        assert_eq!(
            change(n.clone()),
            Some(Change {
                track: TrackId(4),
                key: "totem.token".into(),
                kind: ChangeKind::Changed,
                old: Some(Value::U32(1000)),
                new: Some(Value::U32(1500)),
            })
        );
        assert_eq!(change(ConfdbNotify { kind: 99, ..n }), None);
    }
}
