//! The handshake: the client's `Hello`, the daemon's `Welcome` or `Refused`.
//!
//! The client's first frame must be a [`Hello`]. The daemon answers [`Welcome`] when it speaks
//! the client's version ([`PROTOCOL_VERSION_MIN`]`..=`[`PROTOCOL_VERSION`]), else [`Refused`]
//! with [`ErrorCode::Version`] and closes. A client likewise rejects a `Welcome` whose version
//! it does not speak.

use prost::Message;

use crate::ErrorCode;

/// The protocol version this build speaks best (sent in `Hello` and `Welcome`).
pub const PROTOCOL_VERSION: u32 = 1;

/// The oldest protocol version this build still speaks.
pub const PROTOCOL_VERSION_MIN: u32 = 1;

/// The client's first frame.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Hello {
    /// The version the client speaks.
    #[prost(uint32, tag = "1")]
    pub protocol_version: u32,
    /// A name for logs (the program name, usually).
    #[prost(string, tag = "2")]
    pub client_name: String,
}

/// The daemon accepts the client.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Welcome {
    /// The version both sides speak from now on.
    #[prost(uint32, tag = "1")]
    pub protocol_version: u32,
    /// The daemon's node id.
    #[prost(uint32, tag = "2")]
    pub node_id: u32,
    /// The largest message (a multicast's data) the daemon takes, in bytes.
    #[prost(uint32, tag = "3")]
    pub message_max: u32,
}

/// The daemon refuses the client; it closes the connection after this frame.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Refused {
    /// Why, as a code ([`ErrorCode`]).
    #[prost(enumeration = "ErrorCode", tag = "1")]
    pub code: i32,
    /// Why, for a human.
    #[prost(string, tag = "2")]
    pub message: String,
}

impl Refused {
    /// A refusal with a code and a reason.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refused {
        Refused { code: code as i32, message: message.into() }
    }

    /// The code; numbers this build does not know read as [`ErrorCode::Unknown`].
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::from_wire(self.code)
    }
}

/// Whether this build speaks `version`.
pub fn version_supported(version: u32) -> bool {
    (PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION).contains(&version)
}

/// The daemon's refusal of a client that speaks `client_version`.
pub fn version_refusal(client_version: u32) -> Refused {
    Refused::new(
        ErrorCode::Version,
        format!(
            "client speaks protocol {client_version}, daemon speaks \
             {PROTOCOL_VERSION_MIN}..={PROTOCOL_VERSION}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_names_both_versions() {
        let r = version_refusal(7);
        assert_eq!(r.error_code(), ErrorCode::Version);
        assert_eq!(r.message, "client speaks protocol 7, daemon speaks 1..=1");
    }

    #[test]
    fn only_our_range_is_supported() {
        assert!(version_supported(PROTOCOL_VERSION));
        assert!(!version_supported(0));
        assert!(!version_supported(PROTOCOL_VERSION + 1));
    }
}
