//! The client's side of the socket (feature `tokio`).
//!
//! One reader task routes each [`Response`] to the request that waits for it (by id) and each
//! [`Event`] to a bounded queue the application drains with [`Connection::next_event`]. When
//! that queue is full the reader stops reading the socket, so a client that does not read its
//! events slows the daemon's sending to it instead of growing without bound. One writer task
//! owns the write half, so a request future dropped half-way never leaves half a frame.
//!
//! [`Connection::post`] sends a request without waiting for its answer, within a window of
//! requests posted and not yet answered ([`PostWindow`]). Its answer only frees room in the
//! window; the first error answer is kept and returned by the next post or
//! [`Connection::flush_posted`].

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::frame::{frame_bytes, FrameDecoder, FRAME_MAX_DEFAULT};
use crate::handshake::{version_supported, PROTOCOL_VERSION};
use crate::io::write_batch;
use crate::{
    ClientFrame, ClientFrameKind, Event, Hello, IpcError, Request, RequestBody, Response, ResponseResult,
    ServerFrame, ServerFrameKind, Welcome,
};

/// Default bound of the events read and not yet taken by [`Connection::next_event`].
pub const EVENT_QUEUE_MAX_DEFAULT: usize = 1024;

/// Frames handed to the writer task and not yet written.
const WRITE_QUEUE_MAX: usize = 64;

/// How to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The name the daemon logs for this client.
    pub client_name: String,
    /// The largest frame body accepted from the daemon.
    pub frame_max: usize,
    /// The bound of unread events; past it the socket is not read.
    pub event_queue_max: usize,
    /// The bound of [`Connection::post`]'s requests in flight.
    pub post_window: PostWindow,
}

/// How much [`Connection::post`] keeps in flight: requests sent and not yet answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostWindow {
    /// Requests.
    pub requests: usize,
    /// Bytes of their payloads, as the poster counts them.
    pub bytes: usize,
}

/// The default [`PostWindow`]: 128 requests or 1 MiB; at least one request is always let through.
pub const POST_WINDOW_DEFAULT: PostWindow = PostWindow { requests: 128, bytes: 1 << 20 };

impl ConnectOptions {
    /// Default bounds and this client name.
    pub fn new(client_name: impl Into<String>) -> ConnectOptions {
        ConnectOptions {
            client_name: client_name.into(),
            frame_max: FRAME_MAX_DEFAULT,
            event_queue_max: EVENT_QUEUE_MAX_DEFAULT,
            post_window: POST_WINDOW_DEFAULT,
        }
    }
}

/// Requests sent and not yet answered. Closed once the reader has stopped: no answer can come.
#[derive(Default)]
struct Pending {
    closed: bool,
    waiting: BTreeMap<u64, oneshot::Sender<Response>>,
    /// Wakes the reader when a request starts: it must read on to find the answer.
    request_started: Arc<tokio::sync::Notify>,
    /// Posted requests not yet answered, with the bytes each counts for.
    posted: BTreeMap<u64, usize>,
    /// The sum of `posted`'s bytes.
    posted_bytes: usize,
    /// The first error answer to a posted request, until a post or flush returns it.
    post_failed: Option<IpcError>,
    /// Woken at every answer to a posted request (and at close).
    post_answered: Arc<tokio::sync::Notify>,
}

impl Pending {
    /// Whether the reader must read on: an answer is awaited.
    fn awaiting(&self) -> bool {
        !self.waiting.is_empty() || !self.posted.is_empty()
    }
}

/// A connection to the daemon, after a successful handshake.
///
/// Every method takes `&self`: requests from several tasks may be in flight at once (share
/// the connection in an `Arc`). An application that receives events should keep calling
/// [`next_event`](Self::next_event): while the event queue is full and no request waits for
/// its answer, nothing more is read from the socket (the daemon holds the events, up to its
/// bound per client). While a request waits, reading goes on and events are kept here, so a
/// request is always answered.
///
/// ```no_run
/// # async fn f() -> Result<(), ipc::IpcError> {
/// use ipc::{Connection, RequestBody, ResponseResult, CpgLocalGet};
/// let (conn, welcome) = Connection::connect(ipc::socket_path(None), "example").await?;
/// println!("connected to node {}", welcome.node_id);
/// if let ResponseResult::LocalNode(n) = conn.request(RequestBody::CpgLocalGet(CpgLocalGet {})).await? {
///     assert_eq!(n.node_id, welcome.node_id);
/// }
/// # Ok(()) }
/// ```
pub struct Connection {
    path: PathBuf,
    welcome: Welcome,
    next_id: AtomicU64,
    pending: Arc<Mutex<Pending>>,
    writes: mpsc::Sender<Bytes>,
    events: tokio::sync::Mutex<mpsc::Receiver<Event>>,
    post_window: PostWindow,
    post_answered: Arc<tokio::sync::Notify>,
    tasks: [JoinHandle<()>; 2],
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("path", &self.path)
            .field("welcome", &self.welcome)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to the daemon's socket at `path` and does the handshake.
    ///
    /// Fails with [`IpcError::Connect`] when nothing listens there ("cannot connect to totemd
    /// at PATH: No such file or directory (is totemd running?)"), [`IpcError::Refused`] when
    /// the daemon refuses (another protocol version, ...), [`IpcError::Version`] when it
    /// accepts with a version this client does not speak.
    pub async fn connect(
        path: impl AsRef<Path>,
        client_name: &str,
    ) -> Result<(Connection, Welcome), IpcError> {
        Connection::connect_with(path, ConnectOptions::new(client_name)).await
    }

    /// [`connect`](Self::connect) with explicit bounds.
    pub async fn connect_with(
        path: impl AsRef<Path>,
        options: ConnectOptions,
    ) -> Result<(Connection, Welcome), IpcError> {
        let path = path.as_ref().to_path_buf();
        let stream = UnixStream::connect(&path)
            .await
            .map_err(|source| IpcError::Connect { path: path.clone(), source })?;
        let (mut rd, mut wr) = stream.into_split();
        let hello = Hello { protocol_version: PROTOCOL_VERSION, client_name: options.client_name };
        wr.write_all(&frame_bytes(&ClientFrame::from(ClientFrameKind::Hello(hello)))).await?;
        let mut decoder = FrameDecoder::new(options.frame_max);
        let welcome = handshake_reply(&mut rd, &mut decoder).await?;

        let pending = Arc::new(Mutex::new(Pending::default()));
        let post_answered = pending.lock().expect("pending lock").post_answered.clone();
        let (events_tx, events_rx) = mpsc::channel(options.event_queue_max.max(1));
        let (writes_tx, writes_rx) = mpsc::channel(WRITE_QUEUE_MAX);
        let reader = tokio::spawn(read_loop(rd, decoder, pending.clone(), events_tx));
        let writer = tokio::spawn(write_loop(wr, writes_rx));
        let conn = Connection {
            path,
            welcome: welcome.clone(),
            next_id: AtomicU64::new(1),
            pending,
            writes: writes_tx,
            events: tokio::sync::Mutex::new(events_rx),
            post_window: options.post_window,
            post_answered,
            tasks: [reader, writer],
        };
        Ok((conn, welcome))
    }

    /// The daemon's `Welcome`.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The socket connected to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the connection has closed (no answer or event can come any more; queued events
    /// can still be read).
    pub fn is_closed(&self) -> bool {
        self.pending.lock().expect("pending lock").closed
    }

    /// Sends a request and waits for its answer. A daemon's error answer is
    /// [`IpcError::Daemon`] (the request changed nothing); a closed connection is
    /// [`IpcError::Closed`].
    pub async fn request(&self, body: RequestBody) -> Result<ResponseResult, IpcError> {
        let response = self.call(body).await?;
        match response.result {
            Some(ResponseResult::Error(e)) => {
                Err(IpcError::Daemon { code: e.error_code(), message: e.message })
            }
            Some(result) => Ok(result),
            None => Err(IpcError::UnexpectedReply("a response without a result".into())),
        }
    }

    /// Sends a request without waiting for its answer; it counts `bytes` in the window. Waits
    /// while the window ([`ConnectOptions::post_window`]) is full. Requests go out in the order
    /// of the calls, after every earlier request of this connection.
    ///
    /// The answer only frees room. If an earlier posted request failed, this returns that
    /// error (the first one since the last report) and sends nothing.
    pub async fn post(&self, body: RequestBody, bytes: usize) -> Result<(), IpcError> {
        loop {
            let answered = self.post_answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            // Room in the writer's queue first: from taking an id to queueing its frame
            // nothing waits, so a post dropped while waiting leaves nothing behind.
            let permit = self.writes.reserve().await.map_err(|_| IpcError::Closed)?;
            let Some(id) = self.reserve(bytes)? else {
                drop(permit);
                answered.await;
                continue;
            };
            let frame =
                frame_bytes(&ClientFrame::from(ClientFrameKind::Request(Request { id, body: Some(body) })));
            permit.send(frame);
            return Ok(());
        }
    }

    /// [`post`](Self::post) without waiting: [`IpcError::WindowFull`] when the window (or the
    /// writer's queue) is full, and nothing was sent.
    pub fn try_post(&self, body: RequestBody, bytes: usize) -> Result<(), IpcError> {
        let Some(id) = self.reserve(bytes)? else { return Err(IpcError::WindowFull) };
        let frame =
            frame_bytes(&ClientFrame::from(ClientFrameKind::Request(Request { id, body: Some(body) })));
        match self.writes.try_send(frame) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.unreserve(id);
                match e {
                    mpsc::error::TrySendError::Full(_) => Err(IpcError::WindowFull),
                    mpsc::error::TrySendError::Closed(_) => Err(IpcError::Closed),
                }
            }
        }
    }

    /// Waits until every posted request is answered; the first error answer among them (not
    /// yet returned by a post) is returned.
    pub async fn flush_posted(&self) -> Result<(), IpcError> {
        loop {
            let answered = self.post_answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            {
                let mut pending = self.pending.lock().expect("pending lock");
                if let Some(e) = pending.post_failed.take() {
                    return Err(e);
                }
                if pending.posted.is_empty() {
                    return Ok(());
                }
                if pending.closed {
                    return Err(IpcError::Closed);
                }
            }
            answered.await;
        }
    }

    /// Requests posted and not yet answered.
    pub fn posted(&self) -> usize {
        self.pending.lock().expect("pending lock").posted.len()
    }

    /// A new request id in the window, `None` when the window is full; the error of an
    /// earlier post first.
    fn reserve(&self, bytes: usize) -> Result<Option<u64>, IpcError> {
        let mut pending = self.pending.lock().expect("pending lock");
        if let Some(e) = pending.post_failed.take() {
            return Err(e);
        }
        if pending.closed {
            return Err(IpcError::Closed);
        }
        let full = pending.posted.len() >= self.post_window.requests
            || pending.posted_bytes + bytes > self.post_window.bytes;
        if full && !pending.posted.is_empty() {
            return Ok(None);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        pending.posted.insert(id, bytes);
        pending.posted_bytes += bytes;
        pending.request_started.notify_one();
        Ok(Some(id))
    }

    fn unreserve(&self, id: u64) {
        let mut pending = self.pending.lock().expect("pending lock");
        if let Some(bytes) = pending.posted.remove(&id) {
            pending.posted_bytes -= bytes;
        }
    }

    /// The next event, in the daemon's order; `None` once the connection has closed and every
    /// event read before has been taken.
    pub async fn next_event(&self) -> Option<Event> {
        self.events.lock().await.recv().await
    }

    /// The next event if one is already queued (`None` also while another task is waiting in
    /// [`next_event`](Self::next_event)).
    pub fn try_next_event(&self) -> Option<Event> {
        self.events.try_lock().ok()?.try_recv().ok()
    }

    async fn call(&self, body: RequestBody) -> Result<Response, IpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let _waiting = {
            let mut pending = self.pending.lock().expect("pending lock");
            if pending.closed {
                return Err(IpcError::Closed);
            }
            pending.waiting.insert(id, tx);
            pending.request_started.notify_one();
            Waiting { pending: &self.pending, id }
        };
        let request = Request { id, body: Some(body) };
        let frame = frame_bytes(&ClientFrame::from(ClientFrameKind::Request(request)));
        self.writes.send(frame).await.map_err(|_| IpcError::Closed)?;
        rx.await.map_err(|_| IpcError::Closed)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Forgets a request's waiter when its future ends, answered or not (dropped half-way).
struct Waiting<'a> {
    pending: &'a Mutex<Pending>,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.waiting.remove(&self.id);
        }
    }
}

/// Reads until the daemon's answer to `Hello`.
async fn handshake_reply(rd: &mut OwnedReadHalf, decoder: &mut FrameDecoder) -> Result<Welcome, IpcError> {
    loop {
        if let Some(frame) = decoder.next_frame::<ServerFrame>()? {
            return match frame.kind {
                Some(ServerFrameKind::Welcome(w)) if version_supported(w.protocol_version) => Ok(w),
                Some(ServerFrameKind::Welcome(w)) => {
                    Err(IpcError::Version { daemon_version: w.protocol_version })
                }
                Some(ServerFrameKind::Refused(r)) => {
                    Err(IpcError::Refused { code: r.error_code(), message: r.message })
                }
                _ => Err(IpcError::UnexpectedReply("the handshake's answer is not a Welcome".into())),
            };
        }
        if rd.read_buf(decoder.read_space()).await? == 0 {
            return Err(IpcError::Closed);
        }
    }
}

async fn write_loop(mut wr: OwnedWriteHalf, mut frames: mpsc::Receiver<Bytes>) {
    let mut chunks = Vec::new();
    while let Some(frame) = frames.recv().await {
        // Frames queued meanwhile go out in the same write.
        if let Err(e) = write_batch(&mut wr, &mut chunks, frame, || frames.try_recv().ok()).await {
            tracing::debug!("totemd connection: write failed: {e}");
            return;
        }
    }
}

async fn read_loop(
    mut rd: OwnedReadHalf,
    mut decoder: FrameDecoder,
    pending: Arc<Mutex<Pending>>,
    events: mpsc::Sender<Event>,
) {
    let request_started = pending.lock().expect("pending lock").request_started.clone();
    // Events the queue had no room for, read while a request waited for its answer.
    let mut parked: VecDeque<Event> = VecDeque::new();
    'read: loop {
        loop {
            match decoder.next_frame::<ServerFrame>() {
                Ok(Some(frame)) => {
                    if !route(frame, &pending, &events, &mut parked) {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("totemd connection: {e}");
                    break 'read;
                }
            }
        }
        // Back-pressure: with events parked and no request waiting, read nothing until the
        // application takes events or starts a request.
        while !parked.is_empty() && !pending.lock().expect("pending lock").awaiting() {
            tokio::select! {
                permit = events.reserve() => match permit {
                    Ok(permit) => permit.send(parked.pop_front().expect("parked is not empty")),
                    Err(_) => break 'read,
                },
                _ = request_started.notified() => {}
            }
            if !unpark(&mut parked, &events) {
                break 'read;
            }
        }
        // Read in place: a long event's body is a slice of what the kernel wrote.
        match rd.read_buf(decoder.read_space()).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!("totemd connection: read failed: {e}");
                break;
            }
        }
    }
    let mut pending = pending.lock().expect("pending lock");
    pending.closed = true;
    // Dropping the senders wakes every waiting request with `Closed`.
    pending.waiting.clear();
    // Posts left unanswered stay counted: `flush_posted` reports them as not taken.
    pending.post_answered.notify_waiters();
}

/// Moves parked events to the queue while it has room; false when the application is gone.
fn unpark(parked: &mut VecDeque<Event>, events: &mpsc::Sender<Event>) -> bool {
    while let Some(event) = parked.pop_front() {
        match events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                parked.push_front(event);
                break;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
        }
    }
    true
}

/// Hands one frame to its reader; false when the connection must stop.
fn route(
    frame: ServerFrame,
    pending: &Mutex<Pending>,
    events: &mpsc::Sender<Event>,
    parked: &mut VecDeque<Event>,
) -> bool {
    match frame.kind {
        Some(ServerFrameKind::Response(r)) => {
            if r.id == 0 {
                if let Some(ResponseResult::Error(e)) = &r.result {
                    tracing::warn!("totemd closed the connection: {} ({})", e.message, e.error_code());
                }
                return false;
            }
            let mut pending = pending.lock().expect("pending lock");
            if let Some(tx) = pending.waiting.remove(&r.id) {
                let _ = tx.send(r);
            } else if let Some(bytes) = pending.posted.remove(&r.id) {
                pending.posted_bytes -= bytes;
                if let Some(ResponseResult::Error(e)) = r.result {
                    if pending.post_failed.is_none() {
                        pending.post_failed =
                            Some(IpcError::Daemon { code: e.error_code(), message: e.message });
                    }
                }
                pending.post_answered.notify_waiters();
            } else {
                tracing::debug!("totemd connection: answer to unknown request {}", r.id);
            }
            true
        }
        Some(ServerFrameKind::Event(e)) => {
            parked.push_back(e);
            unpark(parked, events)
        }
        // An event kind from a newer daemon: nothing to route.
        None => true,
        Some(other) => {
            tracing::warn!("totemd connection: unexpected frame after the handshake: {other:?}");
            false
        }
    }
}
