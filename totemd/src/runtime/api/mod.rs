//! The local API's socket: who may connect, one reader and one writer task per client, and
//! each client's [`ServerSession`] kept by the driver loop.
//!
//! The reader tasks share one bounded channel to the loop, so a flood of requests slows only
//! the reading, never the loop's memory. Bytes for a client go to its writer task; the loop
//! counts what the writer has not yet written. While a member of a group has more than
//! [`CLIENT_BACKLOG_SOFT`] unread, sends to that group from this node get `TryAgain`: a slow
//! reader slows the local senders instead of being dropped (libqb and corosync push back on
//! senders too). A client that reads nothing for [`CLIENT_STALL`] with that much unread, or
//! that passes [`CLIENT_BACKLOG_MAX`] anyway (remote senders are not slowed), is not reading
//! its events and is disconnected (its groups see it leave with reason `procdown`): nobody
//! waits for a client that stopped.
//!
//! A queued (pipelined) multicast the daemon cannot take yet is held instead of answered
//! `TryAgain`: nothing the client sent after it is applied before it, and the loop tries it
//! again after each turn. A client that sends more than [`CLIENT_INPUT_HELD_MAX`] behind it
//! ignores the window every client keeps and is disconnected.

mod access;
mod admin;
mod collect;
mod confdb;
pub mod http;
pub mod metrics;
mod requests;

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use cpg::service::ClientId;
use ipc::io::write_batch;
use ipc::{ServerFrame, ServerFrameKind, ServerSession, SessionConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use access::Access;
pub(super) use confdb::Confdb;
pub(super) use requests::{event_to_wire, handle_request, quorum_to_wire, StatusSource};

/// Unsent bytes of a group member past which sends to its groups from this node get `TryAgain`.
pub const CLIENT_BACKLOG_SOFT: usize = 8 << 20;
/// A client over [`CLIENT_BACKLOG_SOFT`] that reads nothing for this long has stopped reading.
pub const CLIENT_STALL: std::time::Duration = std::time::Duration::from_secs(5);
/// Unsent bytes past which a client is disconnected as not reading.
pub const CLIENT_BACKLOG_MAX: usize = 32 << 20;
/// Bytes of group messages waiting for the engine past which queued (pipelined) sends are
/// held: their clients keep a window of their own, so a short queue here is only latency saved.
pub const POSTED_QUEUE_MAX: usize = 64 << 10;
/// Bytes a client may send behind a held message (its client library's window is 1 MiB of
/// messages, [`ipc::POST_WINDOW_DEFAULT`]).
pub const CLIENT_INPUT_HELD_MAX: usize = 64 << 20;
/// Chunks read from all clients waiting for the loop.
const INPUT_QUEUE: usize = 256;

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IpcSetupError {
    /// Another daemon answers on the socket.
    #[error("{0}: another daemon is listening on this socket")]
    InUse(PathBuf),
    /// The metrics listener (`system.metrics_listen`) could not be bound.
    #[error("cannot listen for metrics on tcp {addr} (system.metrics_listen): {source}")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// The socket could not be created.
    #[error("cannot create the IPC socket {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// What a reader task (or the metrics listener) tells the loop.
pub(super) enum ClientInput {
    /// Bytes read.
    Bytes(ClientId, Bytes),
    /// The client closed its end, or reading failed.
    Closed(ClientId),
    /// The HTTP listener wants the metrics text.
    Metrics(tokio::sync::oneshot::Sender<String>),
}

/// One connected client.
pub(super) struct Client {
    pub(super) session: ServerSession,
    pub(super) pid: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    /// Bytes handed to the writer and not yet written.
    unsent: Arc<AtomicUsize>,
    out: mpsc::UnboundedSender<Bytes>,
    reader: JoinHandle<()>,
    /// Bytes the writer has written so far.
    written: Arc<AtomicU64>,
    /// While over [`CLIENT_BACKLOG_SOFT`]: bytes written when the writer last made progress,
    /// and when that was seen.
    stall: Option<(u64, totem::Instant)>,
    /// A queued message the daemon could not take yet; nothing after it is answered before.
    pub(super) held: Option<ipc::Request>,
}

impl Client {
    /// Bytes queued for this client and not yet written to its socket.
    pub(super) fn backlog(&self) -> usize {
        self.unsent.load(Ordering::Relaxed) + self.session.pending_transmit()
    }

    /// Whether the client has stopped reading at `now`: over [`CLIENT_BACKLOG_SOFT`], and not
    /// a byte of its events written to its socket for [`CLIENT_STALL`].
    pub(super) fn stalled(&mut self, now: totem::Instant) -> bool {
        if self.backlog() <= CLIENT_BACKLOG_SOFT {
            self.stall = None;
            return false;
        }
        let written = self.written.load(Ordering::Relaxed);
        match self.stall {
            Some((at, since)) if at == written => now.saturating_duration_since(since) >= CLIENT_STALL,
            _ => {
                self.stall = Some((written, now));
                false
            }
        }
    }

    /// Hands everything the session queued to the writer task.
    pub(super) fn flush(&mut self) {
        while let Some(bytes) = self.session.poll_transmit() {
            self.unsent.fetch_add(bytes.len(), Ordering::Relaxed);
            // A writer that has stopped (socket gone) is noticed by the reader; nothing to do.
            let _ = self.out.send(bytes);
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // The writer task flushes what it has, then ends when `out` is dropped.
        self.reader.abort();
    }
}

/// The listening socket and the clients.
pub(super) struct IpcServer {
    listener: UnixListener,
    path: PathBuf,
    access: Access,
    session_config: SessionConfig,
    next_id: u64,
    pub(super) clients: BTreeMap<ClientId, Client>,
    input_tx: mpsc::Sender<ClientInput>,
    input_rx: mpsc::Receiver<ClientInput>,
}

impl IpcServer {
    /// Creates the socket at `path` (replacing a stale one), with mode 0600 when only root and
    /// this daemon's user may connect, 0666 when `access` grants others (it checks each peer).
    pub(super) fn bind(
        path: &Path,
        access: Access,
        session_config: SessionConfig,
    ) -> Result<IpcServer, IpcSetupError> {
        let bind_err = |source| IpcSetupError::Bind { path: path.to_path_buf(), source };
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(IpcSetupError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(bind_err)?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(bind_err)?;
        }
        let listener = UnixListener::bind(path).map_err(bind_err)?;
        let mode = if access.grants_others() { 0o666 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(bind_err)?;
        let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
        Ok(IpcServer {
            listener,
            path: path.to_path_buf(),
            access,
            session_config,
            next_id: 1,
            clients: BTreeMap::new(),
            input_tx,
            input_rx,
        })
    }

    /// The socket path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Where the metrics listener sends its requests (the readers' channel).
    pub(super) fn input_sender(&self) -> mpsc::Sender<ClientInput> {
        self.input_tx.clone()
    }

    /// New grants (a reload changed `uidgid`): they apply to new connections; the socket's
    /// mode follows (0666 when anyone besides root and the daemon's user is granted).
    pub(super) fn set_access(&mut self, access: Access) {
        let mode = if access.grants_others() { 0o666 } else { 0o600 };
        if let Err(e) = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode)) {
            tracing::warn!("cannot set the mode of {}: {e}", self.path.display());
        }
        self.access = access;
    }

    /// Waits until every client's queued bytes are written, or `limit` passes (at shutdown,
    /// so the last answers arrive).
    pub(super) async fn drain(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.clients.values().any(|c| c.backlog() > 0) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// The listener and the readers' channel, to wait on both at once.
    pub(super) fn io(&mut self) -> (&UnixListener, &mut mpsc::Receiver<ClientInput>) {
        (&self.listener, &mut self.input_rx)
    }

    /// Takes a new connection: checks the peer's credentials, starts its tasks. Returns the
    /// new client's id and pid, or `None` when it was refused (told why, and closed).
    pub(super) fn admit(&mut self, stream: UnixStream) -> Option<(ClientId, u32)> {
        let cred = match stream.peer_cred() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("IPC connection dropped: no peer credentials: {e}");
                return None;
            }
        };
        let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid().unwrap_or(0));
        let pid = u32::try_from(pid).unwrap_or(0);
        if let Err(reason) = self.access.check(uid, gid) {
            tracing::warn!(uid, gid, pid, "IPC connection refused: {reason}");
            let refused = ServerFrame {
                kind: Some(ServerFrameKind::Refused(ipc::Refused::new(ipc::ErrorCode::Access, reason))),
            };
            let bytes = ipc::frame::frame_bytes(&refused);
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
            });
            return None;
        }
        let id = ClientId(self.next_id);
        self.next_id += 1;
        let (read_half, write_half) = stream.into_split();
        let (out, out_rx) = mpsc::unbounded_channel();
        let unsent = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicU64::new(0));
        tokio::spawn(write_loop(write_half, out_rx, unsent.clone(), written.clone()));
        let reader =
            tokio::spawn(read_loop(id, read_half, self.input_tx.clone(), self.session_config.frame_max));
        let session = ServerSession::new(self.session_config);
        self.clients.insert(
            id,
            Client { session, pid, uid, gid, unsent, out, reader, written, stall: None, held: None },
        );
        tracing::debug!(client = id.0, uid, gid, pid, "IPC client connected");
        Some((id, pid))
    }

    /// Forgets a client: its reader stops, its writer flushes what is queued, then the socket closes.
    pub(super) fn drop_client(&mut self, id: ClientId) {
        if let Some(mut client) = self.clients.remove(&id) {
            client.flush();
        }
    }
}

impl Drop for IpcServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads a client's stream in place and hands on its whole frames (a long message is then
/// never copied before the engine takes it); the session decodes them.
async fn read_loop(
    id: ClientId,
    mut read: tokio::net::unix::OwnedReadHalf,
    tx: mpsc::Sender<ClientInput>,
    frame_max: usize,
) {
    let mut frames = ipc::FrameDecoder::new(frame_max);
    loop {
        match read.read_buf(frames.read_space()).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let whole = frames.take_whole_frames();
                if !whole.is_empty() && tx.send(ClientInput::Bytes(id, whole)).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = tx.send(ClientInput::Closed(id)).await;
}

async fn write_loop(
    mut write: tokio::net::unix::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    unsent: Arc<AtomicUsize>,
    written: Arc<AtomicU64>,
) {
    let mut chunks: Vec<Bytes> = Vec::new();
    while let Some(first) = rx.recv().await {
        // Chunks queued meanwhile go out in the same write.
        let Ok(len) = write_batch(&mut write, &mut chunks, first, || rx.try_recv().ok()).await else {
            break;
        };
        unsent.fetch_sub(len, Ordering::Relaxed);
        written.fetch_add(len as u64, Ordering::Relaxed);
    }
    let _ = write.shutdown().await;
}
