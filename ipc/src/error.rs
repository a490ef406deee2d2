//! What a client can fail with.

use std::io;
use std::path::PathBuf;

use crate::frame::FrameError;
use crate::handshake::{PROTOCOL_VERSION, PROTOCOL_VERSION_MIN};
use crate::ErrorCode;

/// A client's failure to talk to the daemon, or the daemon's refusal of a request.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    /// The socket could not be connected (daemon not running, wrong path, permissions).
    #[error("{}", connect_message(path, source))]
    Connect {
        /// The socket tried.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("totemd connection: {0}")]
    Io(#[from] io::Error),
    /// The daemon sent bytes that are not frames of its messages.
    #[error("totemd sent a bad frame: {0}")]
    Frame(#[from] FrameError),
    /// The daemon refused the handshake (and closed the connection).
    #[error("totemd refused the connection: {message}")]
    Refused {
        /// Why, as a code.
        code: ErrorCode,
        /// Why, for a human.
        message: String,
    },
    /// The daemon accepted with a protocol version this client does not speak.
    #[error(
        "totemd speaks protocol {daemon_version}, this client speaks \
         {PROTOCOL_VERSION_MIN}..={PROTOCOL_VERSION}"
    )]
    Version {
        /// The version in the daemon's `Welcome`.
        daemon_version: u32,
    },
    /// The daemon failed the request; nothing changed.
    #[error("totemd: {message} ({code})")]
    Daemon {
        /// Why, as a code.
        code: ErrorCode,
        /// Why, for a human.
        message: String,
    },
    /// [`Connection::try_post`](crate::Connection::try_post): the window of posted requests
    /// not yet answered is full. Nothing was sent.
    #[error("too many posted requests unanswered by totemd, try again")]
    WindowFull,
    /// The connection is closed (the daemon stopped or dropped this client).
    #[error("the connection to totemd is closed")]
    Closed,
    /// The daemon sent something the protocol does not allow here.
    #[error("unexpected reply from totemd: {0}")]
    UnexpectedReply(String),
}

impl IpcError {
    /// The daemon's error code, for a refusal or a failed request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            IpcError::Refused { code, .. } | IpcError::Daemon { code, .. } => Some(*code),
            IpcError::Version { .. } => Some(ErrorCode::Version),
            _ => None,
        }
    }
}

/// "cannot connect to totemd at PATH: No such file or directory (is totemd running?)"
fn connect_message(path: &std::path::Path, e: &io::Error) -> String {
    let reason = e.to_string();
    // io::Error's text ends in " (os error N)": noise for a one-line message.
    let reason = match reason.rfind(" (os error ") {
        Some(i) => &reason[..i],
        None => &reason,
    };
    let hint = match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => " (is totemd running?)",
        _ => "",
    };
    format!("cannot connect to totemd at {}: {reason}{hint}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_error_is_one_clear_line() {
        let e = IpcError::Connect { path: "/run/x.sock".into(), source: io::Error::from_raw_os_error(2) };
        assert_eq!(
            e.to_string(),
            "cannot connect to totemd at /run/x.sock: No such file or directory (is totemd running?)"
        );
    }

    #[test]
    fn permission_denied_has_no_running_hint() {
        let e = IpcError::Connect { path: "/s".into(), source: io::Error::from_raw_os_error(13) };
        assert_eq!(e.to_string(), "cannot connect to totemd at /s: Permission denied");
    }

    #[test]
    fn version_error_names_both_sides() {
        let e = IpcError::Version { daemon_version: 9 };
        assert_eq!(e.to_string(), "totemd speaks protocol 9, this client speaks 1..=1");
    }
}
