//! systemd readiness (`sd_notify`, `Type=notify`): `READY=1` once the first regular
//! configuration is installed, `STATUS=` on each new ring, `STOPPING=1` on shutdown.
//!
//! `NOTIFY_SOCKET` names a Unix datagram socket: a filesystem path, or `@NAME` for the Linux
//! abstract namespace. A notification that cannot be sent is logged and otherwise ignored:
//! the node's work never depends on the service manager.

use std::ffi::OsStr;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Where notifications go.
#[derive(Debug)]
enum Target {
    Path(PathBuf),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Abstract(std::os::unix::net::SocketAddr),
}

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    target: Target,
    /// Whether a send failed already (warn once, then quietly).
    failed: bool,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` asks for; `None` when it is unset or unusable (logged).
    pub fn from_env() -> Option<Notifier> {
        let value = std::env::var_os(NOTIFY_SOCKET)?;
        match Notifier::new(&value) {
            Ok(notifier) => {
                tracing::info!("systemd notification socket {}", value.to_string_lossy());
                Some(notifier)
            }
            Err(e) => {
                tracing::warn!("{NOTIFY_SOCKET}={}: not notifying systemd: {e}", value.to_string_lossy());
                None
            }
        }
    }

    /// A notifier for a `NOTIFY_SOCKET` value.
    pub fn new(value: &OsStr) -> io::Result<Notifier> {
        let bytes = value.as_encoded_bytes();
        let target = match bytes.first() {
            None => return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty socket name")),
            Some(b'@') => abstract_target(&bytes[1..])?,
            Some(b'/') => Target::Path(PathBuf::from(value)),
            Some(_) => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "neither an absolute path nor @NAME"))
            }
        };
        let socket = UnixDatagram::unbound()?;
        // A service manager that does not read must not stall the node's loop.
        socket.set_nonblocking(true)?;
        Ok(Notifier { socket, target, failed: false })
    }

    /// Sends one notification (`KEY=VALUE` lines); a failure is logged, never returned.
    pub fn notify(&mut self, state: &str) {
        let sent = match &self.target {
            Target::Path(path) => self.socket.send_to(state.as_bytes(), path),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Target::Abstract(addr) => self.socket.send_to_addr(state.as_bytes(), addr),
        };
        match sent {
            Ok(_) => tracing::debug!("notified systemd: {}", state.replace('\n', " ")),
            Err(e) if !self.failed => {
                self.failed = true;
                tracing::warn!("cannot notify systemd ({:?}): {e}", self.target);
            }
            Err(e) => tracing::debug!("cannot notify systemd: {e}"),
        }
    }

    /// `READY=1` with the ring as status.
    pub fn ready(&mut self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={status}"));
    }

    /// A new status line.
    pub fn status(&mut self, status: &str) {
        self.notify(&format!("STATUS={status}"));
    }

    /// `STOPPING=1`.
    pub fn stopping(&mut self) {
        self.notify("STOPPING=1");
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_target(name: &[u8]) -> io::Result<Target> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    Ok(Target::Abstract(std::os::unix::net::SocketAddr::from_abstract_name(name)?))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_target(_name: &[u8]) -> io::Result<Target> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "abstract socket names need Linux"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("recv");
        String::from_utf8_lossy(&buf[..n]).to_string()
    }

    #[test]
    fn notifications_reach_a_filesystem_socket() {
        let dir = std::env::temp_dir().join(format!("totemd-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("notify");
        let server = UnixDatagram::bind(&path).expect("bind");
        let mut notifier = Notifier::new(path.as_os_str()).expect("notifier");
        notifier.ready("ring 1.4 members [1]");
        notifier.stopping();
        let got = (recv(&server), recv(&server));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, ("READY=1\nSTATUS=ring 1.4 members [1]".to_string(), "STOPPING=1".to_string()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn notifications_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("totemd-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let server = UnixDatagram::bind_addr(&addr).expect("bind");
        let mut notifier = Notifier::new(OsStr::new(&format!("@{name}"))).expect("notifier");
        notifier.stopping();
        assert_eq!(recv(&server), "STOPPING=1");
    }

    #[test]
    fn relative_and_empty_names_are_refused() {
        assert!(Notifier::new(OsStr::new("")).is_err());
        assert!(Notifier::new(OsStr::new("run/notify")).is_err());
    }

    #[test]
    fn a_missing_socket_is_not_an_error() {
        let mut notifier = Notifier::new(OsStr::new("/nonexistent-totemd/notify")).expect("notifier");
        notifier.stopping();
        assert!(notifier.failed);
    }
}
