//! The same handle for programs without an async runtime.
//!
//! ```no_run
//! use std::time::Duration;
//! use cpg::client::blocking::Cpg;
//! use cpg::{GroupName, Guarantee};
//!
//! let cpg = Cpg::connect_default()?;
//! let group = GroupName::try_from("chat").unwrap();
//! cpg.join(&group)?;
//! cpg.mcast(&group, Guarantee::Agreed, "hello")?;
//! while let Ok(event) = cpg.next_event_timeout(Duration::from_secs(1)) {
//!     println!("{event:?}");
//! }
//! # Ok::<(), cpg::client::CpgError>(())
//! ```

use std::any::Any;
use std::path::Path;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ipc::IpcError;
use tokio::runtime::Runtime;

use super::CpgError;
use crate::types::{CpgEvent, GroupName, Guarantee, MemberId};

/// A blocking handle on closed process groups. It owns a current-thread tokio runtime,
/// driven only inside its calls: between calls nothing is read from the daemon, which then
/// holds the events (the daemon's bound applies).
///
/// A program that joins a group should read its events now and then
/// ([`next_event_timeout`](Self::next_event_timeout) with a zero timeout takes what is
/// queued): its own messages come back to it and wait in the handle, and the daemon
/// disconnects a client that leaves too much unread. Requests are always answered.
#[derive(Debug)]
pub struct Cpg {
    // Dropped before the runtime that drives it.
    inner: super::Cpg,
    rt: Runtime,
}

impl Cpg {
    /// Connects to the daemon at `path`. See [`super::Cpg::connect`].
    pub fn connect(path: impl AsRef<Path>) -> Result<Cpg, CpgError> {
        let rt = runtime()?;
        let inner = rt.block_on(super::Cpg::connect(path))?;
        Ok(Cpg { inner, rt })
    }

    /// Connects to the daemon's usual socket. See [`super::Cpg::connect_default`].
    pub fn connect_default() -> Result<Cpg, CpgError> {
        Cpg::connect(ipc::socket_path(None))
    }

    /// The largest message [`mcast`](Self::mcast) takes, in bytes.
    pub fn message_max(&self) -> u32 {
        self.inner.message_max()
    }

    /// Joins `group`. See [`super::Cpg::join`].
    pub fn join(&self, group: &GroupName) -> Result<(), CpgError> {
        self.rt.block_on(self.inner.join(group))
    }

    /// Leaves `group`. See [`super::Cpg::leave`].
    pub fn leave(&self, group: &GroupName) -> Result<(), CpgError> {
        self.rt.block_on(self.inner.leave(group))
    }

    /// Sends `data` to `group`, waiting and trying again while the daemon is busy.
    /// See [`super::Cpg::mcast`].
    pub fn mcast(
        &self,
        group: &GroupName,
        guarantee: Guarantee,
        data: impl Into<Bytes>,
    ) -> Result<(), CpgError> {
        self.rt.block_on(self.inner.mcast(group, guarantee, data))
    }

    /// Sends `data` to `group` once: [`CpgError::TryAgain`] when the daemon is busy.
    pub fn try_mcast(
        &self,
        group: &GroupName,
        guarantee: Guarantee,
        data: impl Into<Bytes>,
    ) -> Result<(), CpgError> {
        self.rt.block_on(self.inner.try_mcast(group, guarantee, data))
    }

    /// Sends `data` to `group` without waiting for the daemon's answer, in order. See
    /// [`super::Cpg::post`].
    pub fn post(
        &self,
        group: &GroupName,
        guarantee: Guarantee,
        data: impl Into<Bytes>,
    ) -> Result<(), CpgError> {
        self.rt.block_on(self.inner.post(group, guarantee, data))
    }

    /// [`post`](Self::post), or [`CpgError::TryAgain`] at once when the window is full.
    pub fn try_post(
        &self,
        group: &GroupName,
        guarantee: Guarantee,
        data: impl Into<Bytes>,
    ) -> Result<(), CpgError> {
        self.inner.try_post(group, guarantee, data)
    }

    /// Waits until every posted message is taken. See [`super::Cpg::flush`].
    pub fn flush(&self) -> Result<(), CpgError> {
        self.rt.block_on(self.inner.flush())
    }

    /// The members of `group`. See [`super::Cpg::membership`].
    pub fn membership(&self, group: &GroupName) -> Result<Vec<MemberId>, CpgError> {
        self.rt.block_on(self.inner.membership(group))
    }

    /// This node's id.
    pub fn local_node_id(&self) -> Result<u32, CpgError> {
        self.rt.block_on(self.inner.local_node_id())
    }

    /// Every group with its members. See [`super::Cpg::groups`].
    pub fn groups(&self) -> Result<Vec<(GroupName, Vec<MemberId>)>, CpgError> {
        self.rt.block_on(self.inner.groups())
    }

    /// Waits for the next event; `None` once the connection is closed and drained.
    pub fn next_event(&self) -> Option<CpgEvent> {
        self.rt.block_on(self.inner.next_event())
    }

    /// Waits at most `timeout` for the next event: [`RecvTimeoutError::Timeout`] when none
    /// came, [`RecvTimeoutError::Disconnected`] once the connection is closed and drained.
    pub fn next_event_timeout(&self, timeout: Duration) -> Result<CpgEvent, RecvTimeoutError> {
        // The timer is made inside the runtime: it needs its time driver.
        let next = async { tokio::time::timeout(timeout, self.inner.next_event()).await };
        match self.rt.block_on(next) {
            Ok(Some(e)) => Ok(e),
            Ok(None) => Err(RecvTimeoutError::Disconnected),
            Err(_) => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Whether the connection to the daemon has closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Stores a value with this handle. See [`super::Cpg::set_context`].
    pub fn set_context<T: Any + Send + Sync>(&self, value: T) {
        self.inner.set_context(value)
    }

    /// The value stored with [`set_context`](Self::set_context), if it is a `T`.
    pub fn context<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.inner.context()
    }
}

fn runtime() -> Result<Runtime, CpgError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CpgError::Ipc(IpcError::Io(e)))
}
