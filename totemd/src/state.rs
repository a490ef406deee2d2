//! The state directory: an exclusive lock file, the persisted ring seq and the boot epoch.
//!
//! Totem requires a node's ring seq to keep growing across restarts (a reused ring id could
//! make other nodes take new packets for old ones), so [`totem::Event::Persist`] is stored
//! with write-to-temp, fsync, rename and a directory fsync before any datagram that follows it
//! goes out. The packet crypto's boot epoch must grow across restarts for the same reason (a
//! reused AEAD nonce; see [`crate::crypto`]) and is stored the same way. The lock keeps two
//! daemons from sharing these files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use totem::PersistedState;

/// Name of the lock file inside the state directory; it holds the owner's pid.
pub const LOCK_FILE: &str = "totemd.lock";
/// Name of the file holding the persisted ring seq (one decimal number and a newline).
pub const RING_SEQ_FILE: &str = "ring_seq";
const RING_SEQ_TMP: &str = "ring_seq.tmp";
/// Name of the file holding the packet crypto's last boot epoch (one decimal number and a
/// newline); written only when crypto is on.
pub const BOOT_EPOCH_FILE: &str = "boot_epoch";
const BOOT_EPOCH_TMP: &str = "boot_epoch.tmp";

/// A failure of the state directory. None of them leaves a lock behind.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The directory could not be created or resolved.
    #[error("cannot create state directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Another live process holds the lock.
    #[error("state directory {dir} is in use by another totemd (pid {pid}, lock file {lock})")]
    Locked {
        /// The state directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The pid written in the lock file.
        pid: u32,
    },
    /// The lock file exists but its owner cannot be checked.
    #[error("lock file {lock} exists and its owner cannot be checked ({reason}); if no totemd uses this state directory, remove it")]
    LockUnverifiable {
        /// The lock file.
        lock: PathBuf,
        /// Why the owner cannot be checked.
        reason: String,
    },
    /// The lock file could not be created or read.
    #[error("cannot take lock file {lock}: {source}")]
    Lock {
        /// The lock file.
        lock: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A state file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A state file does not hold its number. The daemon refuses to guess one: a ring seq
    /// lower than one used before would break Totem's ring id order, a boot epoch lower than
    /// one used before would reuse AEAD nonces.
    #[error("{path} is corrupt ({reason}); it must hold one decimal {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What it should hold: `ring seq` or `boot epoch`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A state file could not be stored durably.
    #[error("cannot store {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// An open, locked state directory. Dropping it removes the lock.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    lock: LockFile,
    stored: Option<u64>,
    stored_epoch: Option<u32>,
}

impl StateDir {
    /// Creates the directory if needed and takes its lock.
    ///
    /// A lock left by a process that no longer runs (`/proc/PID` is gone) is removed and taken
    /// over; see [`StateDir::stale_lock_pid`].
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        let create = |source| StateError::CreateDir { path: dir.to_path_buf(), source };
        fs::create_dir_all(dir).map_err(create)?;
        let dir = dir.canonicalize().map_err(create)?;
        let lock = LockFile::acquire(&dir)?;
        Ok(StateDir { dir, lock, stored: None, stored_epoch: None })
    }

    /// The directory (absolute).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file holding the persisted ring seq.
    pub fn ring_seq_path(&self) -> PathBuf {
        self.dir.join(RING_SEQ_FILE)
    }

    /// The pid of a dead process whose lock was taken over at open, if any.
    pub fn stale_lock_pid(&self) -> Option<u32> {
        self.lock.stale_pid
    }

    /// The file holding the packet crypto's last boot epoch.
    pub fn boot_epoch_path(&self) -> PathBuf {
        self.dir.join(BOOT_EPOCH_FILE)
    }

    /// Reads the persisted state: the default when the file does not exist yet.
    pub fn load(&self) -> Result<PersistedState, StateError> {
        let ring_seq = read_number(&self.ring_seq_path(), "ring seq")?;
        Ok(ring_seq.map_or_else(PersistedState::default, |ring_seq| PersistedState { ring_seq }))
    }

    /// Stores the persisted state durably: temp file, fsync, rename, directory fsync.
    ///
    /// # Panics
    /// If `state` is below a ring seq stored before through this handle: the engine only
    /// moves the ring seq forward.
    pub fn store(&mut self, state: PersistedState) -> Result<(), StateError> {
        if let Some(stored) = self.stored {
            assert!(state.ring_seq >= stored, "ring seq went back from {stored} to {}", state.ring_seq);
        }
        self.write_durably(RING_SEQ_FILE, RING_SEQ_TMP, state.ring_seq)?;
        self.stored = Some(state.ring_seq);
        Ok(())
    }

    /// Reads the last boot epoch stored, `None` when there is none yet.
    pub fn load_boot_epoch(&self) -> Result<Option<u32>, StateError> {
        read_number(&self.boot_epoch_path(), "boot epoch")
    }

    /// Stores a boot epoch durably, like [`StateDir::store`].
    ///
    /// # Panics
    /// If `epoch` is below one stored before through this handle: epochs only grow.
    pub fn store_boot_epoch(&mut self, epoch: u32) -> Result<(), StateError> {
        if let Some(stored) = self.stored_epoch {
            assert!(epoch >= stored, "boot epoch went back from {stored} to {epoch}");
        }
        self.write_durably(BOOT_EPOCH_FILE, BOOT_EPOCH_TMP, epoch.into())?;
        self.stored_epoch = Some(epoch);
        Ok(())
    }

    /// Writes `value` and a newline to `name`: temp file, fsync, rename, directory fsync.
    fn write_durably(&self, name: &str, tmp: &str, value: u64) -> Result<(), StateError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(tmp);
        let write = |source| StateError::Write { path: path.clone(), source };
        let mut file = File::create(&tmp).map_err(write)?;
        file.write_all(format!("{value}\n").as_bytes()).map_err(write)?;
        file.sync_all().map_err(write)?;
        drop(file);
        fs::rename(&tmp, &path).map_err(write)?;
        // The rename is durable only once the directory entry is.
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(write)?;
        Ok(())
    }
}

/// Reads one decimal number and an optional newline from `path`; `None` if there is no file.
fn read_number<T: std::str::FromStr>(path: &Path, what: &'static str) -> Result<Option<T>, StateError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Read { path: path.to_path_buf(), source }),
    };
    let corrupt =
        |reason: &str| StateError::Corrupt { path: path.to_path_buf(), what, reason: reason.to_string() };
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt("not text"))?;
    let digits = text.strip_suffix('\n').unwrap_or(text);
    if digits.is_empty() {
        return Err(corrupt("empty"));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(corrupt("not a decimal number"));
    }
    digits.parse().map(Some).map_err(|_| corrupt("out of range"))
}

/// The lock file: created with `O_EXCL`, holding our pid, removed on drop.
///
/// Taking over a stale lock is not atomic: two daemons starting on the same directory at the
/// same moment, both finding the same stale lock, could both succeed. An `flock` would close
/// that window; this keeps the code free of `unsafe` and the lock readable by people.
#[derive(Debug)]
struct LockFile {
    path: PathBuf,
    pid: u32,
    stale_pid: Option<u32>,
}

impl LockFile {
    fn acquire(dir: &Path) -> Result<LockFile, StateError> {
        let path = dir.join(LOCK_FILE);
        let pid = std::process::id();
        let lock_err = |source| StateError::Lock { lock: path.clone(), source };
        let mut stale_pid = None;
        // Two rounds: the second one after removing a stale lock.
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(format!("{pid}\n").as_bytes()).map_err(lock_err)?;
                    file.sync_all().map_err(lock_err)?;
                    return Ok(LockFile { path, pid, stale_pid });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(lock_err(e)),
            }
            let holder = match fs::read_to_string(&path) {
                Ok(text) => text.trim().parse::<u32>().ok(),
                // Its owner just removed it: try again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(lock_err(e)),
            };
            let Some(holder) = holder else {
                return Err(StateError::LockUnverifiable { lock: path, reason: "it holds no pid".into() });
            };
            if !Path::new("/proc/self").exists() {
                return Err(StateError::LockUnverifiable {
                    lock: path,
                    reason: "/proc is not available".into(),
                });
            }
            // Our own pid in the lock is stale too: a restarted container reuses low pids.
            if holder != pid && Path::new("/proc").join(holder.to_string()).exists() {
                return Err(StateError::Locked { dir: dir.to_path_buf(), lock: path, pid: holder });
            }
            match fs::remove_file(&path) {
                Ok(()) => stale_pid = Some(holder),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(lock_err(e)),
            }
        }
        Err(lock_err(io::Error::new(io::ErrorKind::WouldBlock, "another process keeps taking the lock")))
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Remove it only while it is still ours.
        let ours =
            fs::read_to_string(&self.path).ok().and_then(|t| t.trim().parse::<u32>().ok()) == Some(self.pid);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unique scratch directory removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let path = std::env::temp_dir().join(format!("totemd-state-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn missing_file_loads_the_default_and_a_stored_seq_reads_back() {
        let scratch = Scratch::new("roundtrip");
        let mut dir = StateDir::open(&scratch.0).unwrap();
        assert_eq!(dir.load().unwrap(), PersistedState::default());
        dir.store(PersistedState { ring_seq: 12 }).unwrap();
        dir.store(PersistedState { ring_seq: 16 }).unwrap();
        assert_eq!(dir.load().unwrap(), PersistedState { ring_seq: 16 });
        assert_eq!(fs::read_to_string(dir.ring_seq_path()).unwrap(), "16\n");
        assert!(!scratch.0.join(RING_SEQ_TMP).exists());
    }

    #[test]
    fn corrupt_files_are_refused() {
        let scratch = Scratch::new("corrupt");
        let dir = StateDir::open(&scratch.0).unwrap();
        for bad in ["", "\n", "12x\n", "-1\n", " 12\n", "99999999999999999999999\n", "1\n2\n"] {
            fs::write(dir.ring_seq_path(), bad).unwrap();
            assert!(matches!(dir.load(), Err(StateError::Corrupt { .. })), "{bad:?} accepted");
        }
        fs::write(dir.ring_seq_path(), [0xff, 0xfe]).unwrap();
        assert!(matches!(dir.load(), Err(StateError::Corrupt { .. })));
        fs::write(dir.ring_seq_path(), "7").unwrap();
        assert_eq!(dir.load().unwrap().ring_seq, 7);
    }

    #[test]
    fn boot_epochs_read_back_and_corrupt_ones_are_refused() {
        let scratch = Scratch::new("epoch");
        let mut dir = StateDir::open(&scratch.0).unwrap();
        assert_eq!(dir.load_boot_epoch().unwrap(), None);
        dir.store_boot_epoch(1_700_000_000).unwrap();
        dir.store_boot_epoch(u32::MAX).unwrap();
        assert_eq!(dir.load_boot_epoch().unwrap(), Some(u32::MAX));
        assert_eq!(fs::read_to_string(dir.boot_epoch_path()).unwrap(), "4294967295\n");
        assert!(!scratch.0.join(BOOT_EPOCH_TMP).exists());
        assert_eq!(dir.load().unwrap(), PersistedState::default(), "the ring seq is a separate file");
        fs::write(dir.boot_epoch_path(), "4294967296\n").unwrap();
        match dir.load_boot_epoch() {
            Err(e @ StateError::Corrupt { what: "boot epoch", .. }) => {
                assert!(e.to_string().contains("must hold one decimal boot epoch"), "{e}")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn the_lock_is_exclusive_and_released_on_drop() {
        let scratch = Scratch::new("lock");
        let first = StateDir::open(&scratch.0).unwrap();
        let lock = scratch.0.join(LOCK_FILE);
        assert_eq!(fs::read_to_string(&lock).unwrap(), format!("{}\n", std::process::id()));
        // Our own pid counts as stale, so fake a live holder: pid 1 always exists.
        fs::write(&lock, "1\n").unwrap();
        match StateDir::open(&scratch.0) {
            Err(StateError::Locked { pid: 1, .. }) => {}
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        assert!(lock.exists(), "a lock that is no longer ours stays");
        fs::write(&lock, format!("{}\n", std::process::id())).unwrap();
        let second = StateDir::open(&scratch.0).unwrap();
        assert_eq!(second.stale_lock_pid(), Some(std::process::id()));
        drop(second);
        assert!(!lock.exists());
    }

    #[test]
    fn a_lock_without_a_pid_is_not_taken_over() {
        let scratch = Scratch::new("lock-garbage");
        fs::create_dir_all(&scratch.0).unwrap();
        fs::write(scratch.0.join(LOCK_FILE), "").unwrap();
        assert!(matches!(StateDir::open(&scratch.0), Err(StateError::LockUnverifiable { .. })));
    }
}
