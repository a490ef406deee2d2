//! The cluster's shared secret (`authkey`): generate it, load it, keep it out of logs.
//!
//! The file holds raw random bytes, exactly as corosync-keygen(8) writes it, so one key file
//! serves both daemons during a migration. corosync-keygen's rules, which we follow:
//! - the default size is [`KEY_LEN_DEFAULT`] (256) bytes, the allowed range
//!   [`KEY_LEN_MIN`]..=[`KEY_LEN_MAX`] (128..=4096, knet's `KNET_MIN_KEY_LEN`/`KNET_MAX_KEY_LEN`);
//! - the randomness comes from `/dev/urandom`;
//! - the file is created with mode 0400.
//!
//! Where we differ from corosync, on purpose:
//! - [`generate`] refuses to replace an existing key unless asked ([`Overwrite::Replace`]);
//!   corosync-keygen truncates whatever is there. A replaced key is written to a temporary file
//!   beside it and renamed over it, so a crash never leaves half a key.
//! - [`load`] rejects a file longer than [`KEY_LEN_MAX`]; corosync reads the first 4096 bytes
//!   and silently ignores the rest, which hides a wrong file (a text file, a certificate).
//! - [`load`] reports a file that its group or others may read or write as a
//!   [`KeyWarning::PermissionsTooOpen`]. corosync does not check at all; we warn rather than
//!   refuse so that a key that works with corosync also starts totemd.
//!
//! [`AuthKey`] never shows its bytes: its `Debug` prints only the length, it has no `Display`,
//! and its memory is zeroed on drop.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// The smallest key accepted, in bytes (corosync's `TOTEM_PRIVATE_KEY_LEN_MIN`).
pub const KEY_LEN_MIN: usize = 128;
/// The largest key accepted, in bytes (corosync's `TOTEM_PRIVATE_KEY_LEN_MAX`).
pub const KEY_LEN_MAX: usize = 4096;
/// The size [`generate`] uses unless told otherwise: corosync-keygen's default.
pub const KEY_LEN_DEFAULT: usize = 256;
/// Where corosync and totemd look for the key when the configuration names none.
pub const DEFAULT_PATH: &str = "/etc/corosync/authkey";
/// The mode a generated key file gets: read-only for its owner.
pub const KEY_FILE_MODE: u32 = 0o400;
/// The random source [`generate`] reads.
pub const RANDOM_SOURCE: &str = "/dev/urandom";

/// The shared secret every node of the cluster holds. Its bytes never leave this crate.
#[derive(Clone)]
pub struct AuthKey(Zeroizing<Vec<u8>>);

impl AuthKey {
    /// Takes `bytes` as the key (e.g. corosync's inline `totem.key`).
    ///
    /// Fails, keeping nothing, unless `bytes` holds [`KEY_LEN_MIN`]..=[`KEY_LEN_MAX`] bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<AuthKey, KeyLengthError> {
        let bytes = Zeroizing::new(bytes);
        if (KEY_LEN_MIN..=KEY_LEN_MAX).contains(&bytes.len()) {
            Ok(AuthKey(bytes))
        } else {
            Err(KeyLengthError { len: bytes.len() })
        }
    }

    /// The key's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a key holds at least [`KEY_LEN_MIN`] bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret itself, for the key derivation in [`crate::crypto`] only.
    pub(crate) fn secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthKey(<redacted, {} bytes>)", self.len())
    }
}

/// A key of a length outside [`KEY_LEN_MIN`]..=[`KEY_LEN_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a key must hold {KEY_LEN_MIN} to {KEY_LEN_MAX} bytes, not {len}")]
pub struct KeyLengthError {
    /// The length that was offered.
    pub len: usize,
}

/// Whether [`generate`] may replace an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Fail with [`KeyFileError::Exists`] if the file exists (the default of `totemctl keygen`).
    Refuse,
    /// Replace it atomically (`totemctl keygen --force`).
    Replace,
}

/// A key that loaded but deserves a word in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWarning {
    /// Group or others may read or write the key file.
    PermissionsTooOpen {
        /// The file's permission bits (e.g. `0o644`).
        mode: u32,
    },
}

impl fmt::Display for KeyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyWarning::PermissionsTooOpen { mode } => {
                write!(f, "key file mode is {mode:04o}: group or others may access it; use 0400")
            }
        }
    }
}

/// A key read from a file, with what the daemon should log about it.
#[derive(Debug)]
pub struct LoadedKey {
    /// The key.
    pub key: AuthKey,
    /// Set when the file's permissions are too open; the key is usable all the same.
    pub warning: Option<KeyWarning>,
}

/// Why a key file could not be generated or loaded. No variant carries key bytes.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// [`load`]: there is no file at `path`.
    #[error("no key file at {path} (generate one with `totemctl keygen`)")]
    Missing {
        /// The file looked for.
        path: PathBuf,
    },
    /// [`load`]: the file holds fewer than [`KEY_LEN_MIN`] bytes.
    #[error("key file {path} holds {len} bytes, fewer than the {KEY_LEN_MIN} required")]
    TooShort {
        /// The key file.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// [`load`]: the file holds more than [`KEY_LEN_MAX`] bytes (`len` is a lower bound: reading
    /// stops one byte past the limit).
    #[error("key file {path} holds more than {KEY_LEN_MAX} bytes: is it really a key?")]
    TooLong {
        /// The key file.
        path: PathBuf,
        /// The bytes read before giving up.
        len: usize,
    },
    /// [`generate`]: the file exists and [`Overwrite::Refuse`] was given. Nothing was written.
    #[error("key file {path} exists; remove it or force the overwrite")]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// [`generate`]: the requested length is outside [`KEY_LEN_MIN`]..=[`KEY_LEN_MAX`]. Nothing
    /// was written.
    #[error(transparent)]
    BadLength(#[from] KeyLengthError),
    /// [`generate`]: the random source could not be read. Nothing was written.
    #[error("cannot read {len} random bytes from {path}: {source}")]
    Random {
        /// The random source.
        path: PathBuf,
        /// The bytes wanted.
        len: usize,
        /// The cause.
        source: io::Error,
    },
    /// Any other I/O failure on the key file or its directory. [`generate`] removes what it
    /// created before returning this.
    #[error("key file {path}: {source}")]
    Io {
        /// The file (or its temporary sibling) being accessed.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Writes a new random key of `len` bytes to `path` with mode 0400 (`totemctl keygen`).
///
/// `len` is usually [`KEY_LEN_DEFAULT`]. The bytes come from [`RANDOM_SOURCE`]. On error nothing
/// is left behind and an existing key is untouched.
pub fn generate(path: &Path, len: usize, overwrite: Overwrite) -> Result<(), KeyFileError> {
    generate_from(path, len, overwrite, Path::new(RANDOM_SOURCE))
}

/// [`generate`] reading its randomness from `random` instead (corosync-keygen's `-r`).
pub fn generate_from(
    path: &Path,
    len: usize,
    overwrite: Overwrite,
    random: &Path,
) -> Result<(), KeyFileError> {
    if !(KEY_LEN_MIN..=KEY_LEN_MAX).contains(&len) {
        return Err(KeyLengthError { len }.into());
    }
    if overwrite == Overwrite::Refuse && fs::symlink_metadata(path).is_ok() {
        return Err(KeyFileError::Exists { path: path.to_owned() });
    }
    let bytes = read_random(random, len)?;
    match overwrite {
        // O_EXCL: a file that appeared since the check above is still not overwritten.
        Overwrite::Refuse => write_new(path, &bytes).map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => KeyFileError::Exists { path: path.to_owned() },
            _ => KeyFileError::Io { path: path.to_owned(), source },
        }),
        Overwrite::Replace => {
            let tmp = temp_sibling(path);
            write_new(&tmp, &bytes).map_err(|source| KeyFileError::Io { path: tmp.clone(), source })?;
            if let Err(source) = fs::rename(&tmp, path) {
                let _ = fs::remove_file(&tmp);
                return Err(KeyFileError::Io { path: path.to_owned(), source });
            }
            sync_parent(path);
            Ok(())
        }
    }
}

/// Reads the key at `path` (corosync's `totem.keyfile`, by default [`DEFAULT_PATH`]).
///
/// The whole file is the key: raw bytes, no encoding, no trailing newline stripped.
pub fn load(path: &Path) -> Result<LoadedKey, KeyFileError> {
    let io_err = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => KeyFileError::Missing { path: path.to_owned() },
        _ => KeyFileError::Io { path: path.to_owned(), source },
    };
    let mut file = File::open(path).map_err(io_err)?;
    // The mode of the file we opened, not of whatever the path names a moment later.
    let mode = file.metadata().map_err(io_err)?.permissions().mode() & 0o7777;
    let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_LEN_DEFAULT));
    // One byte past the limit is enough to know the file is too long, whatever its size.
    (&mut file).take(KEY_LEN_MAX as u64 + 1).read_to_end(&mut bytes).map_err(io_err)?;
    let len = bytes.len();
    if len < KEY_LEN_MIN {
        return Err(KeyFileError::TooShort { path: path.to_owned(), len });
    }
    if len > KEY_LEN_MAX {
        return Err(KeyFileError::TooLong { path: path.to_owned(), len });
    }
    let warning = (mode & 0o077 != 0).then_some(KeyWarning::PermissionsTooOpen { mode });
    Ok(LoadedKey { key: AuthKey(bytes), warning })
}

fn read_random(random: &Path, len: usize) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    File::open(random).and_then(|mut f| f.read_exact(&mut bytes)).map_err(|source| KeyFileError::Random {
        path: random.to_owned(),
        len,
        source,
    })?;
    Ok(bytes)
}

/// Creates `path` (never an existing file) with mode 0400, writes `bytes` and syncs it.
/// Removes the file again if anything fails after it was created.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(KEY_FILE_MODE).open(path)?;
    let written = (|| {
        file.write_all(bytes)?;
        // The umask can only clear bits; this makes the mode exact whatever it is.
        file.set_permissions(fs::Permissions::from_mode(KEY_FILE_MODE))?;
        file.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

/// `dir/.name.tmp.PID`: beside the key so that the rename stays within one file system.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Makes the rename durable. Best effort: some file systems refuse to sync a directory.
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop even when a test fails.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("totemd-keyfile-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        fn write(&self, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
            let path = self.join(name);
            fs::write(&path, bytes).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn generate_writes_default_length_with_mode_0400() {
        let dir = Scratch::new("gen");
        let path = dir.join("authkey");
        generate(&path, KEY_LEN_DEFAULT, Overwrite::Refuse).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), KEY_LEN_DEFAULT as u64);
        assert_eq!(mode_of(&path), 0o400);
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.key.len(), KEY_LEN_DEFAULT);
        assert_eq!(loaded.warning, None);
    }

    #[test]
    fn generate_copies_the_random_source_exactly() {
        let dir = Scratch::new("source");
        let random: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let source = dir.write("random", &random, 0o600);
        let path = dir.join("authkey");
        generate_from(&path, 300, Overwrite::Refuse, &source).unwrap();
        assert_eq!(fs::read(&path).unwrap(), &random[..300]);
        assert_eq!(load(&path).unwrap().key.secret(), &random[..300]);
    }

    #[test]
    fn generate_refuses_to_overwrite_unless_forced() {
        let dir = Scratch::new("overwrite");
        let path = dir.write("authkey", &[7u8; 200], 0o400);
        let err = generate(&path, KEY_LEN_DEFAULT, Overwrite::Refuse).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), vec![7u8; 200], "the old key is untouched");

        // Replacing works although the old file is read-only: it is renamed over, not opened.
        generate(&path, KEY_LEN_MIN, Overwrite::Replace).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), KEY_LEN_MIN as u64);
        assert_eq!(mode_of(&path), 0o400);
        let leftovers: Vec<_> = fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("authkey")], "no temporary file left");
    }

    #[test]
    fn generate_rejects_bad_lengths_and_writes_nothing() {
        let dir = Scratch::new("badlen");
        let path = dir.join("authkey");
        for len in [0, KEY_LEN_MIN - 1, KEY_LEN_MAX + 1] {
            let err = generate(&path, len, Overwrite::Refuse).unwrap_err();
            assert!(matches!(err, KeyFileError::BadLength(KeyLengthError { len: l }) if l == len), "{err:?}");
        }
        for len in [KEY_LEN_MIN, KEY_LEN_MAX] {
            generate(&path, len, Overwrite::Replace).unwrap();
            assert_eq!(load(&path).unwrap().key.len(), len);
        }
    }

    #[test]
    fn generate_with_a_short_random_source_leaves_nothing() {
        let dir = Scratch::new("shortrandom");
        let source = dir.write("random", &[1u8; 10], 0o600);
        let path = dir.join("authkey");
        let err = generate_from(&path, KEY_LEN_DEFAULT, Overwrite::Refuse, &source).unwrap_err();
        assert!(matches!(err, KeyFileError::Random { .. }), "{err:?}");
        assert!(!path.exists());
    }

    #[test]
    fn load_reports_missing_short_and_long_files() {
        let dir = Scratch::new("load");
        let err = load(&dir.join("nope")).unwrap_err();
        assert!(matches!(err, KeyFileError::Missing { .. }), "{err:?}");

        let short = dir.write("short", &[1u8; KEY_LEN_MIN - 1], 0o400);
        let err = load(&short).unwrap_err();
        assert!(matches!(err, KeyFileError::TooShort { len, .. } if len == KEY_LEN_MIN - 1), "{err:?}");

        let long = dir.write("long", &vec![1u8; 100_000], 0o400);
        let err = load(&long).unwrap_err();
        assert!(matches!(err, KeyFileError::TooLong { len, .. } if len == KEY_LEN_MAX + 1), "{err:?}");

        let err = load(&dir.0).unwrap_err();
        assert!(matches!(err, KeyFileError::Io { .. }), "a directory is no key: {err:?}");
    }

    #[test]
    fn load_warns_when_permissions_are_too_open() {
        let dir = Scratch::new("perms");
        for (mode, warned) in [(0o400, false), (0o600, false), (0o640, true), (0o604, true), (0o666, true)] {
            let path = dir.write(&format!("key{mode:o}"), &[9u8; KEY_LEN_MIN], mode);
            let loaded = load(&path).unwrap();
            let expected = warned.then_some(KeyWarning::PermissionsTooOpen { mode });
            assert_eq!(loaded.warning, expected, "mode {mode:o}");
            assert_eq!(loaded.key.secret(), &[9u8; KEY_LEN_MIN][..]);
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = AuthKey::from_bytes(vec![0xAB; KEY_LEN_MIN]).unwrap();
        let loaded = LoadedKey { key: key.clone(), warning: None };
        for text in [format!("{key:?}"), format!("{loaded:?}"), format!("{loaded:#?}")] {
            assert!(text.contains("redacted"), "{text}");
            for leak in ["171", "ab", "AB", "0xab"] {
                assert!(!text.contains(leak), "{text} leaks {leak}");
            }
        }
    }

    #[test]
    fn from_bytes_checks_the_length() {
        assert_eq!(AuthKey::from_bytes(vec![0; 127]).unwrap_err(), KeyLengthError { len: 127 });
        assert_eq!(AuthKey::from_bytes(vec![0; 4097]).unwrap_err(), KeyLengthError { len: 4097 });
        assert_eq!(AuthKey::from_bytes(vec![0; 4096]).unwrap().len(), 4096);
    }
}
