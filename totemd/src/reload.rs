//! Reloading corosync.conf at run time (SIGHUP, `totemctl reload`): what changed, and what of
//! it can be applied without a restart.
//!
//! As corosync does on a reload, the Totem timing and flow-control options take effect at
//! once (each timer with its next arming), and so do the logging levels (`debug`,
//! `logger_subsys`) and the `uidgid` grants (for new connections, and confdb's write groups);
//! `totem.config_version` is noted. Every other change (nodes, addresses,
//! links, transport, crypto, log destinations, ...) needs a restart: it is reported, by key,
//! and nothing of it is applied. A file with errors changes nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use confdb::conf::Parsed;
use totem::TotemConfig;

use crate::config::{FileConfig, Overrides};

/// Keys whose change is applied at once by [`ReloadPlan::totem`].
const TOTEM_RUNTIME_KEYS: &[&str] = &[
    "totem.token",
    "totem.token_coefficient",
    "totem.token_retransmit",
    "totem.token_retransmits_before_loss_const",
    "totem.hold",
    "totem.join",
    "totem.consensus",
    "totem.merge",
    "totem.downcheck",
    "totem.fail_recv_const",
    "totem.seqno_unchanged_const",
    "totem.miss_count_const",
    "totem.window_size",
    "totem.max_messages",
    "totem.send_join",
    "totem.config_version",
];

/// Where the configuration came from, to read it again.
#[derive(Clone, Debug)]
pub struct ReloadSource {
    /// The file.
    pub path: PathBuf,
    /// The command-line options that replace what it says.
    pub overrides: Overrides,
    /// The file as last applied.
    pub parsed: Parsed,
}

/// What a reload changes.
#[derive(Clone, Debug, Default)]
pub struct ReloadPlan {
    /// New Totem timing options, when any of them changed.
    pub totem: Option<TotemConfig>,
    /// Whether the logging levels changed (apply from the new file's `logging`).
    pub logging_levels: bool,
    /// Whether the `uidgid` grants changed (apply from the new file's `uidgid`).
    pub uidgid: bool,
    /// Changed keys applied, as `key: old -> new`.
    pub applied: Vec<String>,
    /// Changed keys not applied (a restart is needed), as `key: old -> new`.
    pub not_applied: Vec<String>,
    /// The keys of `applied`.
    applied_keys: Vec<String>,
}

impl ReloadPlan {
    /// Compares the file as last applied with the new one.
    pub fn new(old: &Parsed, new: &FileConfig) -> ReloadPlan {
        let before: BTreeMap<&str, &str> =
            old.entries.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        let after: BTreeMap<&str, &str> =
            new.parsed.entries.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        let mut plan = ReloadPlan::default();
        let keys: std::collections::BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
        let mut totem_changed = false;
        for key in keys {
            let (was, is) = (before.get(key), after.get(key));
            if was == is {
                continue;
            }
            let line = format!("{key}: {} -> {}", was.unwrap_or(&"(unset)"), is.unwrap_or(&"(unset)"));
            if TOTEM_RUNTIME_KEYS.contains(&key) {
                totem_changed = true;
                plan.applied.push(line);
                plan.applied_keys.push(key.to_string());
            } else if is_logging_level(key) {
                plan.logging_levels = true;
                plan.applied.push(line);
                plan.applied_keys.push(key.to_string());
            } else if key.starts_with("uidgid.") {
                plan.uidgid = true;
                plan.applied.push(line);
                plan.applied_keys.push(key.to_string());
            } else {
                plan.not_applied.push(line);
            }
        }
        if totem_changed {
            plan.totem = Some(new.totem.clone());
        }
        plan
    }

    /// The logging levels could not be changed (`why`): their changes move to `not_applied`.
    pub fn not_applied_logging(&mut self, why: &str) {
        let (logging, rest): (Vec<String>, Vec<String>) =
            self.applied.drain(..).partition(|line| line.split(':').next().is_some_and(is_logging_level));
        self.applied = rest;
        self.not_applied.extend(logging.into_iter().map(|line| format!("{line} ({why})")));
        self.applied_keys.retain(|k| !is_logging_level(k));
        self.logging_levels = false;
    }

    /// The configuration running once the plan is applied: `old` with the applied keys taken
    /// from `new`, so changes not applied show again at the next reload.
    pub fn running(&self, old: &Parsed, new: &Parsed) -> Parsed {
        let applied = |key: &str| self.applied_keys.iter().any(|k| k == key);
        let mut running = old.clone();
        running.entries.retain(|e| !applied(&e.key));
        running.entries.extend(new.entries.iter().filter(|e| applied(&e.key)).cloned());
        running
    }

    /// Whether the file changed at all.
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty() && self.not_applied.is_empty()
    }
}

/// `logging.debug`, `logging.logger_subsys.N.subsys` and `logging.logger_subsys.N.debug`.
fn is_logging_level(key: &str) -> bool {
    key == "logging.debug"
        || key
            .strip_prefix("logging.logger_subsys.")
            .is_some_and(|rest| rest.ends_with(".debug") || rest.ends_with(".subsys"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const BASE: &str = "totem {\n version: 2\n cluster_name: c\n token: 1000\n transport: udpu\n}\n\
        nodelist {\n node {\n  nodeid: 1\n  ring0_addr: 127.0.0.1\n }\n node {\n  nodeid: 2\n  ring0_addr: 127.0.0.2\n }\n}\n\
        logging {\n to_stderr: yes\n debug: off\n}\n";

    fn file(text: &str) -> FileConfig {
        FileConfig::load(text, "corosync.conf", &Overrides::default()).expect("valid config")
    }

    #[test]
    fn timing_and_log_levels_apply_the_rest_waits_for_a_restart() {
        let old = file(BASE);
        let changed = BASE
            .replace("token: 1000", "token: 2000\n window_size: 60")
            .replace("debug: off", "debug: on")
            .replace("127.0.0.2", "127.0.0.3");
        let plan = ReloadPlan::new(&old.parsed, &file(&changed));
        assert_eq!(
            plan.applied,
            vec!["logging.debug: off -> on", "totem.token: 1000 -> 2000", "totem.window_size: (unset) -> 60"]
        );
        assert_eq!(plan.not_applied, vec!["nodelist.node.1.ring0_addr: 127.0.0.2 -> 127.0.0.3"]);
        let totem = plan.totem.clone().expect("new timing");
        assert_eq!(totem.token, Duration::from_millis(2000));
        assert_eq!(totem.window_size, 60);
        assert!(plan.logging_levels);
        // What was not applied is still a change at the next reload; the rest is not.
        let running = plan.running(&old.parsed, &file(&changed).parsed);
        let again = ReloadPlan::new(&running, &file(&changed));
        assert!(again.applied.is_empty(), "{:?}", again.applied);
        assert_eq!(again.not_applied, plan.not_applied);
    }

    #[test]
    fn uidgid_grants_apply_at_once() {
        let granted = format!("{BASE}uidgid {{\n gid: haclient\n}}\n");
        let plan = ReloadPlan::new(&file(BASE).parsed, &file(&granted));
        assert!(plan.uidgid && plan.not_applied.is_empty(), "{plan:?}");
        assert_eq!(plan.applied.len(), 1, "{:?}", plan.applied);
        assert!(plan.applied[0].starts_with("uidgid."), "{:?}", plan.applied);
        let running = plan.running(&file(BASE).parsed, &file(&granted).parsed);
        assert!(ReloadPlan::new(&running, &file(&granted)).is_empty());
    }

    #[test]
    fn an_unchanged_file_changes_nothing() {
        let plan = ReloadPlan::new(&file(BASE).parsed, &file(BASE));
        assert!(plan.is_empty() && plan.totem.is_none() && !plan.logging_levels && !plan.uidgid);
    }
}
