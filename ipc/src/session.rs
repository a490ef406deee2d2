//! The daemon's side of one client connection, sans IO.
//!
//! Call order, for each connection the daemon accepts:
//! 1. [`ServerSession::handle_bytes`] (or [`ServerSession::handle_chunk`]) with what the socket
//!    read;
//! 2. [`ServerSession::poll_input`] until it returns `Ok(None)`: the handshake is answered
//!    inside (it yields [`SessionInput::Opened`] once), every later frame is a
//!    [`SessionInput::Request`] the daemon answers with [`ServerSession::send_response`];
//! 3. [`ServerSession::send_event`] for what the client must be told;
//! 4. [`ServerSession::poll_transmit`] until `None`, and write those bytes to the socket.
//!
//! An `Err` from `poll_input` means the client broke the protocol (or speaks another
//! version): the session has queued a last frame saying why (`Refused`, or an `Error` response
//! with id 0) and is [`SessionState::Closed`]. The daemon logs the error, writes what
//! `poll_transmit` returns and closes the socket.
//!
//! Flow control: the session never refuses bytes to send, but a driver stops reading from a
//! client while [`ServerSession::wants_input`] is false (its unsent bytes are over
//! `transmit_max`), and [`ServerSession::send_event`] refuses an event past that bound: the
//! daemon then decides (corosync disconnects a client that stops reading its dispatch).

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::event::EventKind;
use crate::frame::{
    encode_deliver_head, encode_frame, FrameDecoder, FrameError, COPY_MAX, FRAME_MAX_DEFAULT,
};
use crate::handshake::{version_refusal, version_supported, PROTOCOL_VERSION};
use crate::{
    ClientFrame, ClientFrameKind, ErrorCode, Event, Refused, Request, RequestBody, Response, ServerFrame,
    ServerFrameKind, Welcome,
};

/// Default bound of a session's unsent bytes: a few largest frames.
pub const TRANSMIT_MAX_DEFAULT: usize = 4 * FRAME_MAX_DEFAULT;

/// What a session needs to know about its daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The daemon's node id, sent in `Welcome`.
    pub node_id: u32,
    /// The largest multicast the daemon takes, sent in `Welcome`; larger ones are answered
    /// [`ErrorCode::TooLarge`] by the session itself.
    pub message_max: u32,
    /// The largest frame body read from the client.
    pub frame_max: usize,
    /// Unsent bytes past which the session asks not to be read and refuses events.
    pub transmit_max: usize,
}

impl SessionConfig {
    /// A configuration with default frame and transmit bounds.
    pub fn new(node_id: u32, message_max: u32) -> SessionConfig {
        SessionConfig {
            node_id,
            message_max,
            frame_max: FRAME_MAX_DEFAULT,
            transmit_max: TRANSMIT_MAX_DEFAULT,
        }
    }
}

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for the client's `Hello`.
    AwaitingHello,
    /// Handshake done: requests come in, responses and events go out.
    Open,
    /// Refused or broken: only the last queued bytes remain to be sent.
    Closed,
}

/// What the client did, for the daemon to act on.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionInput {
    /// The handshake succeeded; the `Welcome` is queued.
    Opened {
        /// The name the client gave.
        client_name: String,
        /// The version spoken from now on.
        protocol_version: u32,
    },
    /// A request the daemon must answer with [`ServerSession::send_response`].
    Request(Request),
}

/// How the client broke the protocol. The session is closed; its last frame is queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The byte stream is not frames of client messages.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The first frame was not a `Hello`.
    #[error("first frame is not a Hello")]
    NotHello,
    /// A second `Hello`.
    #[error("Hello after the handshake")]
    DuplicateHello,
    /// The client speaks a version this daemon does not.
    #[error("client speaks protocol {client_version}, which this daemon does not")]
    Version {
        /// The client's version.
        client_version: u32,
    },
}

/// Why an event was not queued. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The handshake is not done, or the session is closed.
    #[error("session is not open")]
    NotOpen,
    /// The client is not reading: its unsent bytes are over the bound.
    #[error("{pending} unsent bytes, over the bound of {max}")]
    Backlog {
        /// Unsent bytes.
        pending: usize,
        /// The bound.
        max: usize,
    },
}

/// The daemon's side of one client connection. See the module doc for the call order.
#[derive(Debug)]
pub struct ServerSession {
    config: SessionConfig,
    decoder: FrameDecoder,
    state: SessionState,
    client_name: Option<String>,
    /// Frames being queued, after those in `chunks`.
    transmit: BytesMut,
    /// Queued chunks in order: frames, and the data of long deliveries, which is not copied.
    chunks: VecDeque<Bytes>,
    /// Bytes in `chunks`.
    chunked: usize,
}

impl ServerSession {
    /// A session for a newly accepted connection.
    pub fn new(config: SessionConfig) -> ServerSession {
        ServerSession {
            config,
            decoder: FrameDecoder::new(config.frame_max),
            state: SessionState::AwaitingHello,
            client_name: None,
            transmit: BytesMut::new(),
            chunks: VecDeque::new(),
            chunked: 0,
        }
    }

    /// Where the session is.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The client's name, once it said hello.
    pub fn client_name(&self) -> Option<&str> {
        self.client_name.as_deref()
    }

    /// Feeds bytes read from the socket. Ignored once closed.
    pub fn handle_bytes(&mut self, data: &[u8]) {
        if self.state != SessionState::Closed {
            self.decoder.push(data);
        }
    }

    /// Feeds a chunk read from the socket, as [`handle_bytes`](Self::handle_bytes) does; a
    /// chunk of whole frames is read without a copy.
    pub fn handle_chunk(&mut self, data: Bytes) {
        if self.state != SessionState::Closed {
            self.decoder.push_bytes(data);
        }
    }

    /// The next thing the client did, if a whole frame is buffered. Requests the session can
    /// answer alone (a kind unknown to this build, a message over `message_max`) are answered
    /// here and not returned.
    pub fn poll_input(&mut self) -> Result<Option<SessionInput>, SessionError> {
        loop {
            if self.state == SessionState::Closed {
                return Ok(None);
            }
            let frame = match self.decoder.next_frame::<ClientFrame>() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.fail_frame(e)),
            };
            match (self.state, frame.kind) {
                (SessionState::AwaitingHello, Some(ClientFrameKind::Hello(hello))) => {
                    return self.handle_hello(hello.protocol_version, hello.client_name).map(Some);
                }
                (SessionState::AwaitingHello, _) => {
                    self.refuse(Refused::new(ErrorCode::Malformed, "first frame must be a Hello"));
                    return Err(SessionError::NotHello);
                }
                (_, Some(ClientFrameKind::Hello(_))) => {
                    self.close_with_error(ErrorCode::Malformed, "Hello after the handshake");
                    return Err(SessionError::DuplicateHello);
                }
                (_, Some(ClientFrameKind::Request(request))) => {
                    if let Some(request) = self.answer_alone(request) {
                        return Ok(Some(SessionInput::Request(request)));
                    }
                }
                // A frame kind from a newer client: a request we cannot read, without an id.
                (_, None) => {
                    self.close_with_error(ErrorCode::Malformed, "frame without a known kind");
                    return Err(FrameError::Malformed("frame without a known kind".into()).into());
                }
            }
        }
    }

    /// Queues the answer to a request. Dropped when the session is not open.
    pub fn send_response(&mut self, response: Response) {
        if self.state == SessionState::Open {
            self.queue(ServerFrameKind::Response(response));
        }
    }

    /// Queues an event, unless the session is not open or the client is not reading.
    pub fn send_event(&mut self, event: Event) -> Result<(), SendError> {
        if self.state != SessionState::Open {
            return Err(SendError::NotOpen);
        }
        let pending = self.pending_transmit();
        if pending > self.config.transmit_max {
            return Err(SendError::Backlog { pending, max: self.config.transmit_max });
        }
        match event.kind {
            // A long message is sent from where it is: its frame's head, then its bytes.
            Some(EventKind::CpgDeliver(mut deliver)) if deliver.data.len() > COPY_MAX => {
                let data = std::mem::take(&mut deliver.data);
                encode_deliver_head(&deliver, data.len(), &mut self.transmit);
                let head = self.transmit.split().freeze();
                self.push_chunk(head);
                self.push_chunk(data);
            }
            kind => self.queue(ServerFrameKind::Event(Event { kind })),
        }
        Ok(())
    }

    /// Whether the driver should read more from the client: open, and not backed up.
    pub fn wants_input(&self) -> bool {
        self.state != SessionState::Closed && self.pending_transmit() <= self.config.transmit_max
    }

    /// Bytes read from the client and not yet returned as frames by
    /// [`poll_input`](Self::poll_input).
    pub fn pending_input(&self) -> usize {
        self.decoder.buffered()
    }

    /// Bytes queued and not yet taken by [`poll_transmit`](Self::poll_transmit).
    pub fn pending_transmit(&self) -> usize {
        self.chunked + self.transmit.len()
    }

    /// The next queued bytes, to write to the socket in order; call until `None`.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.chunks.pop_front() {
            self.chunked -= chunk.len();
            Some(chunk)
        } else if self.transmit.is_empty() {
            None
        } else {
            Some(self.transmit.split().freeze())
        }
    }

    fn push_chunk(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.chunked += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    fn handle_hello(&mut self, version: u32, client_name: String) -> Result<SessionInput, SessionError> {
        if !version_supported(version) {
            self.refuse(version_refusal(version));
            return Err(SessionError::Version { client_version: version });
        }
        // Answer with the best version both speak: the client's, since it is in our range.
        let welcome = Welcome {
            protocol_version: version.min(PROTOCOL_VERSION),
            node_id: self.config.node_id,
            message_max: self.config.message_max,
        };
        self.queue(ServerFrameKind::Welcome(welcome));
        self.state = SessionState::Open;
        self.client_name = Some(client_name.clone());
        Ok(SessionInput::Opened { client_name, protocol_version: version })
    }

    /// Answers what needs no daemon state; gives back the rest.
    fn answer_alone(&mut self, request: Request) -> Option<Request> {
        match &request.body {
            None => {
                let msg = "request kind not supported by this daemon";
                self.send_response(Response::error(request.id, ErrorCode::NotSupported, msg));
                None
            }
            Some(RequestBody::CpgMcast(m)) if m.data.len() > self.config.message_max as usize => {
                let msg = format!(
                    "message of {} bytes exceeds message_max {}",
                    m.data.len(),
                    self.config.message_max
                );
                self.send_response(Response::error(request.id, ErrorCode::TooLarge, msg));
                None
            }
            Some(_) => Some(request),
        }
    }

    fn fail_frame(&mut self, e: FrameError) -> SessionError {
        let code = match e {
            FrameError::TooLarge { .. } => ErrorCode::TooLarge,
            FrameError::Malformed(_) => ErrorCode::Malformed,
        };
        match self.state {
            SessionState::AwaitingHello => self.refuse(Refused::new(code, e.to_string())),
            _ => self.close_with_error(code, &e.to_string()),
        }
        e.into()
    }

    fn refuse(&mut self, refused: Refused) {
        self.queue(ServerFrameKind::Refused(refused));
        self.state = SessionState::Closed;
    }

    fn close_with_error(&mut self, code: ErrorCode, message: &str) {
        self.queue(ServerFrameKind::Response(Response::error(0, code, message)));
        self.state = SessionState::Closed;
    }

    fn queue(&mut self, kind: ServerFrameKind) {
        encode_frame(&ServerFrame::from(kind), &mut self.transmit);
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
