//! Where clients find the daemon's socket.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable naming the socket.
pub const SOCKET_ENV: &str = "TOTEMD_SOCKET";

/// The socket of a daemon installed system-wide (state dir `/var/lib/totemd`).
pub const SYSTEM_SOCKET: &str = "/var/lib/totemd/totemd.sock";

/// The socket of a daemon run from a checkout with its default state dir.
pub const LOCAL_SOCKET: &str = "./totemd-state/totemd.sock";

/// The socket file name inside the daemon's state directory.
pub const SOCKET_FILE: &str = "totemd.sock";

/// The socket every client uses: `explicit` (a `--socket PATH` option) if given, else the
/// `TOTEMD_SOCKET` environment variable, else [`SYSTEM_SOCKET`] if that file exists, else
/// [`LOCAL_SOCKET`].
///
/// ```
/// use std::path::Path;
/// let p = ipc::socket_path(Some(Path::new("/run/t.sock")));
/// assert_eq!(p, Path::new("/run/t.sock"));
/// ```
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    choose(explicit, std::env::var_os(SOCKET_ENV), Path::new(SYSTEM_SOCKET).exists())
}

/// The rule of [`socket_path`] without the environment.
fn choose(explicit: Option<&Path>, env: Option<OsString>, system_exists: bool) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = env.filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if system_exists {
        PathBuf::from(SYSTEM_SOCKET)
    } else {
        PathBuf::from(LOCAL_SOCKET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_wins_over_everything() {
        let p = choose(Some(Path::new("/a")), Some("/b".into()), true);
        assert_eq!(p, Path::new("/a"));
    }

    #[test]
    fn env_wins_over_files() {
        assert_eq!(choose(None, Some("/b".into()), true), Path::new("/b"));
    }

    #[test]
    fn empty_env_is_ignored() {
        assert_eq!(choose(None, Some("".into()), true), Path::new(SYSTEM_SOCKET));
    }

    #[test]
    fn system_socket_when_it_exists_else_local() {
        assert_eq!(choose(None, None, true), Path::new(SYSTEM_SOCKET));
        assert_eq!(choose(None, None, false), Path::new(LOCAL_SOCKET));
    }
}
