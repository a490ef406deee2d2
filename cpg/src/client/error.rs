//! What a CPG client call can fail with.

use ipc::{ErrorCode, IpcError};

/// Why a CPG call failed. Unless a variant says otherwise, nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum CpgError {
    /// The daemon cannot take the message now (its send queue is full, or a sync round is
    /// under way): try again later ([`Cpg::mcast`](super::Cpg::mcast) does).
    #[error("totemd is busy, try again")]
    TryAgain,
    /// The cluster holds service while a node is being fenced (or this node is not yet
    /// unfenced): try again once fencing completes ([`Cpg::mcast`](super::Cpg::mcast) waits).
    #[error("service held: fencing in progress")]
    FencingInProgress,
    /// The message is larger than the daemon takes.
    #[error("message exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The daemon's `message_max`.
        max: u32,
    },
    /// This handle already joined the group.
    #[error("already a member of the group")]
    Exist,
    /// This handle is not in the group (or the group does not exist).
    #[error("not a member of the group")]
    NotExist,
    /// The daemon found an argument invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The daemon does not allow this client.
    #[error("access denied: {0}")]
    Access(String),
    /// The client and the daemon speak no common protocol version.
    #[error("{0}")]
    Version(String),
    /// The daemon is shutting down.
    #[error("totemd is shutting down")]
    ShuttingDown,
    /// The connection failed, or the daemon answered with another error.
    #[error(transparent)]
    Ipc(#[from] IpcError),
}

impl CpgError {
    /// The CPG meaning of a connection error; `message_max` fills [`CpgError::TooLarge`].
    pub(crate) fn from_ipc(e: IpcError, message_max: u32) -> CpgError {
        let (code, message) = match e {
            IpcError::Daemon { code, message } => (code, message),
            IpcError::Refused { code: ErrorCode::Version, message } => return CpgError::Version(message),
            IpcError::Version { .. } => return CpgError::Version(e.to_string()),
            e => return CpgError::Ipc(e),
        };
        match code {
            ErrorCode::TryAgain => CpgError::TryAgain,
            ErrorCode::FencingInProgress => CpgError::FencingInProgress,
            ErrorCode::TooLarge => CpgError::TooLarge { max: message_max },
            ErrorCode::Exist => CpgError::Exist,
            ErrorCode::NotExist => CpgError::NotExist,
            ErrorCode::InvalidArgument => CpgError::InvalidArgument(message),
            ErrorCode::Access => CpgError::Access(message),
            ErrorCode::Version => CpgError::Version(message),
            ErrorCode::ShuttingDown => CpgError::ShuttingDown,
            ErrorCode::Unknown | ErrorCode::NotSupported | ErrorCode::Malformed => {
                CpgError::Ipc(IpcError::Daemon { code, message })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon(code: ErrorCode) -> IpcError {
        IpcError::Daemon { code, message: "m".into() }
    }

    #[test]
    fn daemon_codes_map_to_cpg_errors() {
        assert!(matches!(CpgError::from_ipc(daemon(ErrorCode::TryAgain), 9), CpgError::TryAgain));
        assert!(matches!(CpgError::from_ipc(daemon(ErrorCode::TooLarge), 9), CpgError::TooLarge { max: 9 }));
        assert!(matches!(CpgError::from_ipc(daemon(ErrorCode::Exist), 9), CpgError::Exist));
        assert!(matches!(CpgError::from_ipc(daemon(ErrorCode::NotExist), 9), CpgError::NotExist));
        assert!(matches!(
            CpgError::from_ipc(daemon(ErrorCode::InvalidArgument), 9),
            CpgError::InvalidArgument(m) if m == "m"
        ));
        assert!(matches!(CpgError::from_ipc(daemon(ErrorCode::ShuttingDown), 9), CpgError::ShuttingDown));
        assert!(matches!(
            CpgError::from_ipc(daemon(ErrorCode::NotSupported), 9),
            CpgError::Ipc(IpcError::Daemon { code: ErrorCode::NotSupported, .. })
        ));
    }

    #[test]
    fn version_refusal_keeps_the_daemons_words() {
        let e = IpcError::Refused {
            code: ErrorCode::Version,
            message: "client speaks protocol 2, daemon speaks 1..=1".into(),
        };
        let e = CpgError::from_ipc(e, 0);
        assert_eq!(e.to_string(), "client speaks protocol 2, daemon speaks 1..=1");
    }
}
