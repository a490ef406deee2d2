//! The API applications link to use closed process groups through totemd (feature `client`).
//!
//! [`Cpg`] is one handle (corosync's `cpg_handle_t`): one connection to the daemon's socket,
//! one process as seen by the groups it joins. It is async (tokio); [`blocking::Cpg`] offers
//! the same calls for programs without a runtime.
//!
//! ```no_run
//! # async fn f() -> Result<(), cpg::client::CpgError> {
//! use cpg::client::Cpg;
//! use cpg::{CpgEvent, GroupName, Guarantee};
//!
//! let cpg = Cpg::connect_default().await?;
//! let group = GroupName::try_from("chat").unwrap();
//! cpg.join(&group).await?;
//! cpg.mcast(&group, Guarantee::Agreed, "hello").await?;
//! while let Some(event) = cpg.next_event().await {
//!     match event {
//!         CpgEvent::Deliver(m) => println!("{}: {:?}", m.sender, m.data),
//!         CpgEvent::Confchg(c) => println!("{} now has {} members", c.group, c.members.len()),
//!         CpgEvent::Totem(t) => println!("ring {}.{}", t.ring_representative, t.ring_seq),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Events should be read: while the handle's event queue is full and no request is waiting for
//! its answer, nothing more is read from the daemon, which keeps a bounded backlog per client
//! and disconnects a client that lets it overflow. A request is always answered: while one
//! waits, reading goes on and events are kept in the handle. Every method takes `&self`, so a
//! handle can be shared (in an `Arc`) between a task that sends and one that reads.

pub mod blocking;
mod convert;
mod error;

use std::any::Any;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ipc::{
    Connection, CpgIterate, CpgJoin, CpgLeave, CpgLocalGet, CpgMcast, CpgMembership, RequestBody,
    ResponseResult, Welcome,
};

pub use error::CpgError;
pub use ipc::{socket_path, ConnectOptions, IpcError, PostWindow};

use crate::types::{CpgEvent, GroupName, Guarantee, MemberId};

/// First wait after a `TryAgain` in [`Cpg::mcast`]; it doubles up to [`MCAST_RETRY_MAX`].
pub const MCAST_RETRY_MIN: Duration = Duration::from_millis(1);

/// Longest wait between two tries of [`Cpg::mcast`].
pub const MCAST_RETRY_MAX: Duration = Duration::from_millis(4);

/// A handle on closed process groups, connected to totemd.
pub struct Cpg {
    conn: Connection,
    welcome: Welcome,
    context: Mutex<Option<Arc<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for Cpg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cpg").field("conn", &self.conn).finish_non_exhaustive()
    }
}

impl Cpg {
    /// Connects to the daemon at `path` (a socket file).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), cpg::client::CpgError> {
    /// let cpg = cpg::client::Cpg::connect("/var/lib/totemd/totemd.sock").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(path: impl AsRef<Path>) -> Result<Cpg, CpgError> {
        Cpg::connect_with(path, ConnectOptions::new(program_name())).await
    }

    /// Connects to the daemon's usual socket ([`socket_path`] without an explicit path:
    /// `$TOTEMD_SOCKET`, else `/var/lib/totemd/totemd.sock` if it exists, else
    /// `./totemd-state/totemd.sock`).
    pub async fn connect_default() -> Result<Cpg, CpgError> {
        Cpg::connect(socket_path(None)).await
    }

    /// Connects with explicit connection options (client name, bounds).
    pub async fn connect_with(path: impl AsRef<Path>, options: ConnectOptions) -> Result<Cpg, CpgError> {
        let (conn, welcome) =
            Connection::connect_with(path, options).await.map_err(|e| CpgError::from_ipc(e, 0))?;
        Ok(Cpg { conn, welcome, context: Mutex::new(None) })
    }

    /// The largest message [`mcast`](Self::mcast) takes, in bytes (the daemon's).
    pub fn message_max(&self) -> u32 {
        self.welcome.message_max
    }

    /// Joins `group` (corosync's `cpg_join`). Every member, this one included, then gets a
    /// configuration change listing it with reason `join`.
    ///
    /// ```no_run
    /// # async fn f(cpg: cpg::client::Cpg) -> Result<(), cpg::client::CpgError> {
    /// let group = cpg::GroupName::try_from("locks").unwrap();
    /// match cpg.join(&group).await {
    ///     Ok(()) | Err(cpg::client::CpgError::Exist) => {}
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn join(&self, group: &GroupName) -> Result<(), CpgError> {
        let body = RequestBody::CpgJoin(CpgJoin { group: name(group) });
        self.request(body).await.map(drop)
    }

    /// Leaves `group` (`cpg_leave`); [`CpgError::NotExist`] if this handle is not in it.
    pub async fn leave(&self, group: &GroupName) -> Result<(), CpgError> {
        let body = RequestBody::CpgLeave(CpgLeave { group: name(group) });
        self.request(body).await.map(drop)
    }

    /// Sends `data` to every member of `group`, which this handle must have joined
    /// (`cpg_mcast_joined`). When the daemon is busy, or holds service while a node is being
    /// fenced, it waits ([`MCAST_RETRY_MIN`], doubling up to [`MCAST_RETRY_MAX`]) and tries
    /// again, as long as it takes: the message is never dropped.
    ///
    /// ```no_run
    /// # async fn f(cpg: cpg::client::Cpg, group: cpg::GroupName) -> Result<(), cpg::client::CpgError> {
    /// cpg.mcast(&group, cpg::Guarantee::Safe, b"checkpoint 7".to_vec()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn mcast(
        &self,
        group: &GroupName,
        guarantee: Guarantee,
        data: impl Into<Bytes>,
    ) -> Result<(), CpgError> {
        let data = data.into();
        let mut wait = MCAST_RETRY_MIN;
        loop {
            match self.try_mcast(group, guarantee, data.clone()).await {
                Err(CpgError::TryAgain | CpgError::FencingInProgress) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MCAST_RETRY_MAX);
                }
                other => return other,
            }
        }
    }

    /// Sends `data` to `group` once: [`CpgError::TryAgain`] at once when the daemon is busy.
    /// A message over [`message_max`](Self::message_max) is [`CpgError::TooLarge`] without
    /// asking the daemon.
    pub async fn try_mcast(
        &self,
        group: &GroupName,
        guarantee: Guarantee,
        data: impl Into<Bytes>,
    ) -> Result<(), CpgError> {
        let data = data.into();
        if data.len() > self.message_max() as usize {
            return Err(CpgError::TooLarge { max: self.message_max() });
        }
        let guarantee = convert::wire_guarantee(guarantee) as i32;
        let body = RequestBody::CpgMcast(CpgMcast { group: name(group), guarantee, data, queued: false });
        self.request(body).await.map(drop)
    }

    /// Sends `data` to every member of `group` without waiting for the daemon's answer: it
    /// returns once the message is handed to the connection, after every earlier message of
    /// this handle, and it is delivered in that order. Waits only while the handle's window is
    /// full (128 messages or 1 MiB unanswered, [`ipc::POST_WINDOW_DEFAULT`]). While the daemon
    /// cannot take a message (busy, a slow reader, fencing) it holds it, so nothing is
    /// dropped and no `TryAgain` comes back.
    ///
    /// An error the daemon reports for a posted message (the group was not joined, ...) is
    /// returned by the next [`post`](Self::post), [`try_post`](Self::try_post) or
    /// [`flush`](Self::flush). A message over [`message_max`](Self::message_max) is
    /// [`CpgError::TooLarge`] at once.
    ///
    /// ```no_run
    /// # async fn f(cpg: cpg::client::Cpg, group: cpg::GroupName) -> Result<(), cpg::client::CpgError> {
    /// for i in 0..10_000u32 {
    ///     cpg.post(&group, cpg::Guarantee::Agreed, i.to_be_bytes().to_vec()).await?;
    /// }
    /// cpg.flush().await?; // every message taken by the daemon, or the first error
    /// # Ok(()) }
    /// ```
    pub async fn post(
        &self,
        group: &GroupName,
        guarantee: Guarantee,
        data: impl Into<Bytes>,
    ) -> Result<(), CpgError> {
        let (body, bytes) = self.queued_mcast(group, guarantee, data.into())?;
        self.conn.post(body, bytes).await.map_err(|e| CpgError::from_ipc(e, self.message_max()))
    }

    /// [`post`](Self::post) without waiting: [`CpgError::TryAgain`] when the window is full
    /// (nothing was sent).
    pub fn try_post(
        &self,
        group: &GroupName,
        guarantee: Guarantee,
        data: impl Into<Bytes>,
    ) -> Result<(), CpgError> {
        let (body, bytes) = self.queued_mcast(group, guarantee, data.into())?;
        match self.conn.try_post(body, bytes) {
            Err(IpcError::WindowFull) => Err(CpgError::TryAgain),
            other => other.map_err(|e| CpgError::from_ipc(e, self.message_max())),
        }
    }

    /// Waits until the daemon has taken every posted message; the first error it reported
    /// for one of them and no post returned yet.
    pub async fn flush(&self) -> Result<(), CpgError> {
        self.conn.flush_posted().await.map_err(|e| CpgError::from_ipc(e, self.message_max()))
    }

    fn queued_mcast(
        &self,
        group: &GroupName,
        guarantee: Guarantee,
        data: Bytes,
    ) -> Result<(RequestBody, usize), CpgError> {
        if data.len() > self.message_max() as usize {
            return Err(CpgError::TooLarge { max: self.message_max() });
        }
        let bytes = data.len();
        let guarantee = convert::wire_guarantee(guarantee) as i32;
        Ok((RequestBody::CpgMcast(CpgMcast { group: name(group), guarantee, data, queued: true }), bytes))
    }

    /// The members of `group`, sorted (`cpg_membership_get`).
    pub async fn membership(&self, group: &GroupName) -> Result<Vec<MemberId>, CpgError> {
        let body = RequestBody::CpgMembership(CpgMembership { group: name(group) });
        match self.request(body).await? {
            ResponseResult::Members(m) => Ok(m.members.iter().map(convert::member).collect()),
            other => Err(unexpected("membership", &other)),
        }
    }

    /// This node's id (`cpg_local_get`).
    pub async fn local_node_id(&self) -> Result<u32, CpgError> {
        match self.request(RequestBody::CpgLocalGet(CpgLocalGet {})).await? {
            ResponseResult::LocalNode(n) => Ok(n.node_id),
            other => Err(unexpected("local get", &other)),
        }
    }

    /// Every group in the cluster with its members, sorted by name (`cpg_iteration_*`).
    ///
    /// ```no_run
    /// # async fn f(cpg: cpg::client::Cpg) -> Result<(), cpg::client::CpgError> {
    /// for (group, members) in cpg.groups().await? {
    ///     println!("{group}: {} members", members.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn groups(&self) -> Result<Vec<(GroupName, Vec<MemberId>)>, CpgError> {
        match self.request(RequestBody::CpgIterate(CpgIterate { group: None })).await? {
            ResponseResult::Groups(g) => g
                .groups
                .iter()
                .map(|g| {
                    let group = convert::group(&g.name).map_err(|why| bad_reply("iterate", why))?;
                    Ok((group, g.members.iter().map(convert::member).collect()))
                })
                .collect(),
            other => Err(unexpected("iterate", &other)),
        }
    }

    /// The next event of the groups this handle joined (`cpg_dispatch`), in the order the
    /// daemon delivers them; `None` once the connection is closed and every event was taken.
    /// Events the daemon sends that this build cannot read are skipped with a warning.
    pub async fn next_event(&self) -> Option<CpgEvent> {
        loop {
            let e = self.conn.next_event().await?;
            match convert::event(e) {
                Ok(Some(e)) => return Some(e),
                Ok(None) => {}
                Err(why) => tracing::warn!("cpg: skipped an event from totemd with {why}"),
            }
        }
    }

    /// The next event if one is already queued (for a loop that also does other work).
    pub fn try_next_event(&self) -> Option<CpgEvent> {
        while let Some(e) = self.conn.try_next_event() {
            match convert::event(e) {
                Ok(Some(e)) => return Some(e),
                Ok(None) => {}
                Err(why) => tracing::warn!("cpg: skipped an event from totemd with {why}"),
            }
        }
        None
    }

    /// Whether the connection to the daemon has closed.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Stores a value with this handle (corosync's `cpg_context_set`), replacing any before.
    ///
    /// ```no_run
    /// # async fn f(cpg: cpg::client::Cpg) {
    /// struct App { name: &'static str }
    /// cpg.set_context(App { name: "db" });
    /// assert_eq!(cpg.context::<App>().unwrap().name, "db");
    /// # }
    /// ```
    pub fn set_context<T: Any + Send + Sync>(&self, value: T) {
        *self.context.lock().expect("context lock") = Some(Arc::new(value));
    }

    /// The value stored with [`set_context`](Self::set_context), if it is a `T`
    /// (`cpg_context_get`).
    pub fn context<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let stored = self.context.lock().expect("context lock").clone()?;
        stored.downcast::<T>().ok()
    }

    async fn request(&self, body: RequestBody) -> Result<ResponseResult, CpgError> {
        self.conn.request(body).await.map_err(|e| CpgError::from_ipc(e, self.message_max()))
    }
}

fn name(group: &GroupName) -> Bytes {
    Bytes::copy_from_slice(group.as_bytes())
}

fn unexpected(request: &str, reply: &ResponseResult) -> CpgError {
    CpgError::Ipc(IpcError::UnexpectedReply(format!("{request} answered with {reply:?}")))
}

fn bad_reply(request: &str, why: &str) -> CpgError {
    CpgError::Ipc(IpcError::UnexpectedReply(format!("{request} answered with {why}")))
}

/// The name the daemon logs for this client: the program's file name.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .and_then(|p| Path::new(p).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cpg".into())
}
