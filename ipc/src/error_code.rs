//! The error codes a daemon reply carries, and their meaning to a client.

/// Why the daemon refused a connection or failed a request (a prost enumeration).
///
/// Numbers are part of the protocol: new codes are appended, never renumbered. A client that
/// reads a number it does not know sees [`ErrorCode::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ErrorCode {
    /// An error without a more precise code (or a code this build does not know).
    Unknown = 0,
    /// The daemon cannot take it now (flow control, a sync round in progress): try again.
    TryAgain = 1,
    /// The message is larger than the daemon's `message_max`.
    TooLarge = 2,
    /// A field is out of its range (an empty or over-long group name, ...).
    InvalidArgument = 3,
    /// Already there (joining a group this connection already joined).
    Exist = 4,
    /// Not there (leaving or sending to a group this connection did not join).
    NotExist = 5,
    /// Not allowed for this client.
    Access = 6,
    /// The protocol versions of client and daemon do not overlap.
    Version = 7,
    /// A request kind this daemon does not know or does not implement.
    NotSupported = 8,
    /// The daemon is leaving the ring and takes no more requests.
    ShuttingDown = 9,
    /// A frame that is not a valid message, or a request before the handshake.
    Malformed = 10,
    /// Service is held while a fence is pending (or this node is not yet unfenced): try again
    /// once fencing completes.
    FencingInProgress = 11,
}

impl ErrorCode {
    /// The code for a wire number; numbers this build does not know are [`ErrorCode::Unknown`].
    pub fn from_wire(n: i32) -> ErrorCode {
        ErrorCode::try_from(n).unwrap_or(ErrorCode::Unknown)
    }

    /// A short lower-case name for logs and tools (`try_again`, `too_large`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Unknown => "unknown",
            ErrorCode::TryAgain => "try_again",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Exist => "exist",
            ErrorCode::NotExist => "not_exist",
            ErrorCode::Access => "access",
            ErrorCode::Version => "version",
            ErrorCode::NotSupported => "not_supported",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Malformed => "malformed",
            ErrorCode::FencingInProgress => "fencing_in_progress",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn wire_numbers_are_fixed() {
        assert_eq!(ErrorCode::Unknown as i32, 0);
        assert_eq!(ErrorCode::TryAgain as i32, 1);
        assert_eq!(ErrorCode::ShuttingDown as i32, 9);
        assert_eq!(ErrorCode::Malformed as i32, 10);
        assert_eq!(ErrorCode::FencingInProgress as i32, 11);
    }

    #[test]
    fn unknown_numbers_read_as_unknown() {
        assert_eq!(ErrorCode::from_wire(7), ErrorCode::Version);
        assert_eq!(ErrorCode::from_wire(11), ErrorCode::FencingInProgress);
        assert_eq!(ErrorCode::from_wire(12), ErrorCode::Unknown);
        assert_eq!(ErrorCode::from_wire(-1), ErrorCode::Unknown);
    }
}
