//! Loading a parsed corosync.conf into the store, and reloading it.
//!
//! # Types of config keys
//! Every entry is stored as a `str`, except the keys below, stored as the number corosync's
//! `exec/coroparse.c` makes of them when the text is a number of that type. Text that is not
//! (`token: 3s`) stays a `str` where corosync would refuse the file: judging values is
//! `totemd::config`'s business, and the store keeps what the file says. `*` is any one
//! component.
//! - `u32`: `totem.` `version`, `nodeid`, `threads`, `token`, `token_warning`,
//!   `token_retransmit`, `token_retransmits_before_loss_const`, `consensus`, `join`,
//!   `send_join`, `merge`, `hold`, `downcheck`, `fail_recv_const`, `seqno_unchanged_const`,
//!   `heartbeat_failures_allowed`, `max_network_delay`, `window_size`, `max_messages`,
//!   `miss_count_const`, `netmtu`; `nodelist.node.*.nodeid`, `nodelist.node.*.quorum_votes`;
//!   `quorum.` `expected_votes`, `votes`, `last_man_standing_window`, `leaving_timeout`;
//!   `quorum.device.` `timeout`, `sync_timeout`, `votes`.
//! - `u64`: `totem.config_version`.
//! - `u16`: `totem.interface.*.mcastport`.
//! - `u8`: `totem.interface.*.ttl`, `totem.interface.*.knet_link_priority`; `quorum.`
//!   `two_node`, `wait_for_all`, `auto_tie_breaker`, `last_man_standing`, `allow_downscale`;
//!   `quorum.device.master_wins`; `uidgid.config.uid.*` and `uidgid.config.gid.*` (the `1`
//!   that marks a user or group allowed).
//!
//! Entries under [`CONFIG_SKIPPED_PREFIX`] (`runtime.`) are the daemon's and are skipped.

use std::collections::BTreeSet;

use crate::conf::Parsed;

use super::{Item, Store, StoreError, Value, ValueType};

/// Keys under this prefix belong to the daemon: a config file does not set them and a
/// reload does not delete them.
pub const CONFIG_SKIPPED_PREFIX: &str = "runtime.";

const TOTEM_U32: &[&str] = &[
    "version",
    "nodeid",
    "threads",
    "token",
    "token_warning",
    "token_retransmit",
    "token_retransmits_before_loss_const",
    "consensus",
    "join",
    "send_join",
    "merge",
    "hold",
    "downcheck",
    "fail_recv_const",
    "seqno_unchanged_const",
    "heartbeat_failures_allowed",
    "max_network_delay",
    "window_size",
    "max_messages",
    "miss_count_const",
    "netmtu",
];

const QUORUM_U8: &[&str] =
    &["two_node", "wait_for_all", "auto_tie_breaker", "last_man_standing", "allow_downscale"];

/// The type a config key is stored as when its text is a number (see the module doc).
fn config_type(key: &str) -> Option<ValueType> {
    let parts: Vec<&str> = key.split('.').collect();
    let ty = match parts.as_slice() {
        ["totem", k] if TOTEM_U32.contains(k) => ValueType::U32,
        ["totem", "config_version"] => ValueType::U64,
        ["totem", "interface", _, "mcastport"] => ValueType::U16,
        ["totem", "interface", _, "ttl" | "knet_link_priority"] => ValueType::U8,
        ["nodelist", "node", _, "nodeid" | "quorum_votes"] => ValueType::U32,
        ["quorum", "expected_votes" | "votes" | "last_man_standing_window" | "leaving_timeout"] => {
            ValueType::U32
        }
        ["quorum", k] if QUORUM_U8.contains(k) => ValueType::U8,
        ["quorum", "device", "timeout" | "sync_timeout" | "votes"] => ValueType::U32,
        ["quorum", "device", "master_wins"] => ValueType::U8,
        ["uidgid", "config", "uid" | "gid", _] => ValueType::U8,
        _ => return None,
    };
    Some(ty)
}

/// The value a config entry is stored as: typed for the known keys when the text parses
/// (see the module doc), else a string.
pub fn typed_config_value(key: &str, text: &str) -> Value {
    config_type(key)
        .and_then(|ty| Value::parse(ty, text).ok())
        .unwrap_or_else(|| Value::String(text.to_string()))
}

/// The entries [`Store::load_parsed`] or [`Store::reload_parsed`] did not store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Each skipped entry's key, line and why: a bad key name, a value over cmap's limits,
    /// a full store, or `ReadOnly` for a key under [`CONFIG_SKIPPED_PREFIX`].
    pub skipped: Vec<(String, u32, StoreError)>,
}

/// What [`Store::reload_parsed`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Keys created.
    pub added: usize,
    /// Keys whose value or type changed.
    pub changed: usize,
    /// Keys deleted: loaded from the old config, absent from the new.
    pub deleted: usize,
    /// Entries not stored.
    pub report: LoadReport,
}

impl Store {
    /// Stores every entry of a parsed corosync.conf, as the daemon, typed as the module doc
    /// of `load` says. Entries that cannot be stored are skipped and reported.
    pub fn load_parsed(&mut self, parsed: &Parsed) -> LoadReport {
        self.reload_parsed(parsed).report
    }

    /// Makes the config keys match a newly parsed corosync.conf: sets the entries whose value
    /// differs, deletes keys loaded from a config before and absent now, and leaves the rest
    /// (`runtime.`, counters, keys clients created) alone. Trackers see exactly these
    /// changes: sets in file order, then deletions in key order.
    pub fn reload_parsed(&mut self, parsed: &Parsed) -> ReloadSummary {
        let mut summary = ReloadSummary::default();
        for entry in &parsed.entries {
            if entry.key.starts_with(CONFIG_SKIPPED_PREFIX) {
                let err = StoreError::ReadOnly { key: entry.key.clone() };
                summary.report.skipped.push((entry.key.clone(), entry.line, err));
                continue;
            }
            match self.put(&entry.key, typed_config_value(&entry.key, &entry.value), true) {
                Ok(super::SetOutcome::Added) => summary.added += 1,
                Ok(super::SetOutcome::Changed { .. }) => summary.changed += 1,
                Ok(super::SetOutcome::Unchanged) => {}
                Err(err) => summary.report.skipped.push((entry.key.clone(), entry.line, err)),
            }
        }
        let keys: BTreeSet<&str> = parsed.entries.iter().map(|e| e.key.as_str()).collect();
        let gone: Vec<String> = self
            .items
            .iter()
            .filter(|(k, item)| item.from_config && !keys.contains(k.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.remove(&key);
            summary.deleted += 1;
        }
        summary
    }

    /// Whether `key` was loaded from a config file (a reload may delete it).
    pub fn is_config_key(&self, key: &str) -> bool {
        self.items.get(key).is_some_and(|item: &Item| item.from_config)
    }
}
