//! The body of every frame: one type per direction.

use prost::Message;

use crate::{Event, Hello, Refused, Request, Response, Welcome};

/// A frame from a client to the daemon.
#[derive(Clone, PartialEq, Message)]
pub struct ClientFrame {
    /// What it carries.
    #[prost(oneof = "ClientFrameKind", tags = "1, 2")]
    pub kind: Option<ClientFrameKind>,
}

/// What a client frame carries.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ClientFrameKind {
    /// The handshake (first frame only).
    #[prost(message, tag = "1")]
    Hello(Hello),
    /// A request (after the handshake).
    #[prost(message, tag = "2")]
    Request(Request),
}

/// A frame from the daemon to a client.
#[derive(Clone, PartialEq, Message)]
pub struct ServerFrame {
    /// What it carries.
    #[prost(oneof = "ServerFrameKind", tags = "1, 2, 3, 4")]
    pub kind: Option<ServerFrameKind>,
}

/// What a daemon frame carries.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ServerFrameKind {
    /// The handshake succeeded.
    #[prost(message, tag = "1")]
    Welcome(Welcome),
    /// The handshake failed; the daemon closes the connection.
    #[prost(message, tag = "2")]
    Refused(Refused),
    /// The answer to a request.
    #[prost(message, tag = "3")]
    Response(Response),
    /// An event.
    #[prost(message, tag = "4")]
    Event(Event),
}

impl From<ClientFrameKind> for ClientFrame {
    fn from(kind: ClientFrameKind) -> Self {
        ClientFrame { kind: Some(kind) }
    }
}

impl From<ServerFrameKind> for ServerFrame {
    fn from(kind: ServerFrameKind) -> Self {
        ServerFrame { kind: Some(kind) }
    }
}
