//! Setting up the packet crypto at start: the AEAD from the configuration, the key from its
//! file, and a boot epoch stored durably before the first packet is sealed.

use std::path::PathBuf;

use crate::config::{CryptoSettings, DaemonConfig};
use crate::crypto::{Aead, OpenError, PacketCrypto, SettingsError};
use crate::keyfile::{self, AuthKey, KeyFileError};
use crate::state::{StateDir, StateError};

use super::os::unix_seconds;
use super::DriverStats;

/// Why the packet crypto could not be set up. Nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// `crypto_cipher` and `crypto_hash` name no supported combination.
    #[error("crypto settings: {0}")]
    Settings(#[from] SettingsError),
    /// The key file is missing, unreadable or of a bad length.
    #[error("crypto is configured but its key cannot be loaded: {0}")]
    Key(#[from] KeyFileError),
    /// The boot epoch could not be read or stored.
    #[error(transparent)]
    State(#[from] StateError),
    /// The stored boot epoch is the last one: no fresh nonces are left under this key.
    #[error("{path} holds the last boot epoch ({}); generate a new authkey", u32::MAX)]
    EpochExhausted {
        /// The boot epoch file.
        path: PathBuf,
    },
}

impl CryptoError {
    /// Whether the operator's configuration or files are at fault (exit status 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            CryptoError::Settings(_) | CryptoError::Key(_) | CryptoError::EpochExhausted { .. } => true,
            CryptoError::State(e) => matches!(e, StateError::Corrupt { .. }),
        }
    }
}

/// Builds the packet crypto `config` asks for: [`PacketCrypto::off`] when crypto is off (always
/// so from the command line). Otherwise loads the key, logs a permission warning if any, and
/// stores this boot's epoch in `state` before returning (see [`crate::crypto`], "What the
/// caller must provide and persist").
pub fn setup(config: &DaemonConfig, state: &mut StateDir) -> Result<PacketCrypto, CryptoError> {
    let settings = &config.cluster.crypto;
    let Some(aead) = Aead::select(settings.cipher, settings.hash)? else {
        tracing::info!("crypto off: packets are sent in the clear (crypto_cipher and crypto_hash none)");
        return Ok(PacketCrypto::off());
    };
    let key = load_key(settings)?;
    let stored = state.load_boot_epoch()?;
    let boot_epoch = boot_epoch(stored, unix_seconds())
        .ok_or_else(|| CryptoError::EpochExhausted { path: state.boot_epoch_path() })?;
    state.store_boot_epoch(boot_epoch)?;
    let cluster_name = config.cluster.cluster_name.as_deref().unwrap_or("");
    tracing::info!(
        "crypto on: {aead} (crypto_cipher {}, crypto_hash {}), {} byte key, boot epoch {boot_epoch} stored in {}",
        settings.cipher.name(),
        settings.hash.name(),
        key.len(),
        state.boot_epoch_path().display()
    );
    Ok(PacketCrypto::new(aead, &key, cluster_name, config.node_id, boot_epoch))
}

/// The key file, or corosync's inline `totem.key` when no other key file than the default is
/// named.
fn load_key(settings: &CryptoSettings) -> Result<AuthKey, KeyFileError> {
    if let Some(key) = &settings.key {
        if settings.keyfile.as_os_str() == keyfile::DEFAULT_PATH {
            tracing::info!("using the inline totem.key");
            return Ok(key.clone());
        }
        tracing::info!("totem.keyfile is set: ignoring the inline totem.key");
    }
    let loaded = keyfile::load(&settings.keyfile)?;
    if let Some(warning) = loaded.warning {
        tracing::warn!("{}: {warning}", settings.keyfile.display());
    }
    tracing::info!("key loaded from {}", settings.keyfile.display());
    Ok(loaded.key)
}

/// This boot's epoch: above every stored one, and at least the clock (which keeps it fresh if
/// the state directory is lost). `None` once `u32::MAX` was used.
pub fn boot_epoch(stored: Option<u32>, unix_seconds: u32) -> Option<u32> {
    let after_stored = match stored {
        Some(e) => e.checked_add(1)?,
        None => 0,
    };
    Some(after_stored.max(unix_seconds))
}

/// Counts a datagram that did not open in `stats`; says whether to log it at warn level (the
/// 1st, 2nd, 4th, 8th... failure of its kind, so a peer with another key does not flood the log).
pub fn count_open_error(stats: &mut DriverStats, e: &OpenError) -> bool {
    let count = match e {
        OpenError::AuthFailed { .. } => &mut stats.open_auth_failed,
        OpenError::Replay { .. } => &mut stats.open_replay,
        OpenError::BadVersion(_) => &mut stats.open_bad_version,
        OpenError::TooShort { .. } => &mut stats.open_too_short,
        OpenError::TooManySenders { .. } => &mut stats.open_too_many_senders,
    };
    *count += 1;
    count.is_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use totem::NodeId;

    #[test]
    fn the_boot_epoch_exceeds_the_stored_one_and_follows_the_clock() {
        assert_eq!(boot_epoch(None, 1_700_000_000), Some(1_700_000_000));
        assert_eq!(boot_epoch(Some(5), 1_700_000_000), Some(1_700_000_000));
        // The clock stepped back (or many epochs were used): the stored term wins.
        assert_eq!(boot_epoch(Some(1_700_000_000), 1_600_000_000), Some(1_700_000_001));
        assert_eq!(boot_epoch(Some(1_700_000_000), 1_700_000_000), Some(1_700_000_001));
        assert_eq!(boot_epoch(Some(u32::MAX - 1), 0), Some(u32::MAX));
        assert_eq!(boot_epoch(Some(u32::MAX), 0), None);
    }

    #[test]
    fn open_errors_are_counted_by_variant() {
        let mut stats = DriverStats::default();
        let auth = OpenError::AuthFailed { claimed: NodeId(2) };
        assert!(count_open_error(&mut stats, &auth));
        assert!(count_open_error(&mut stats, &auth));
        assert!(!count_open_error(&mut stats, &auth));
        count_open_error(&mut stats, &OpenError::Replay { sender: NodeId(2), counter: 1 });
        count_open_error(&mut stats, &OpenError::BadVersion(1));
        count_open_error(&mut stats, &OpenError::TooShort { len: 3 });
        count_open_error(&mut stats, &OpenError::TooManySenders { sender: NodeId(3) });
        assert_eq!(
            (
                stats.open_auth_failed,
                stats.open_replay,
                stats.open_bad_version,
                stats.open_too_short,
                stats.open_too_many_senders
            ),
            (3, 1, 1, 1, 1)
        );
    }
}
