//! The sections and keys corosync 3 knows (corosync.conf(5), votequorum(5)), plus our
//! `fencing` section. Anything else in a file is reported as unknown.
//!
//! Sections are named by pattern: repeated sections have `*` for the component that tells
//! them apart (`nodelist.node.*`, `totem.interface.*`).

/// Which keys a section takes.
#[derive(Copy, Clone, Debug)]
enum Keys {
    /// Exactly these.
    List(&'static [&'static str]),
    /// Any key, and any subsection: agent or model specific (fence devices, quorum devices).
    Any,
}

/// `linknumber` and the link options of corosync.conf(5)'s `interface` sub-directive.
const INTERFACE: &[&str] = &[
    "linknumber",
    "knet_link_priority",
    "knet_ping_interval",
    "knet_ping_timeout",
    "knet_ping_precision",
    "knet_pong_count",
    "knet_transport",
    "bindnetaddr",
    "broadcast",
    "mcastaddr",
    "mcastport",
    "ttl",
];

const TOTEM: &[&str] = &[
    "version",
    "clear_node_high_bit",
    "crypto_model",
    "crypto_hash",
    "crypto_cipher",
    "secauth",
    "keyfile",
    "key",
    "link_mode",
    "netmtu",
    "transport",
    "cluster_name",
    "config_version",
    "ip_version",
    "token",
    "token_warning",
    "token_coefficient",
    "token_retransmit",
    "knet_compression_model",
    "knet_compression_threshold",
    "knet_compression_level",
    "hold",
    "token_retransmits_before_loss_const",
    "join",
    "send_join",
    "consensus",
    "merge",
    "downcheck",
    "fail_recv_const",
    "seqno_unchanged_const",
    "heartbeat_failures_allowed",
    "max_network_delay",
    "window_size",
    "max_messages",
    "miss_count_const",
    "knet_pmtud_interval",
    "knet_mtu",
    "block_unlisted_ips",
    "cancel_token_hold_on_retransmit",
    "nodeid",
    "threads",
];

const NODE: &[&str] = &[
    "ring0_addr",
    "ring1_addr",
    "ring2_addr",
    "ring3_addr",
    "ring4_addr",
    "ring5_addr",
    "ring6_addr",
    "ring7_addr",
    "nodeid",
    "name",
    "quorum_votes",
];

/// votequorum(5).
const QUORUM: &[&str] = &[
    "provider",
    "expected_votes",
    "votes",
    "two_node",
    "wait_for_all",
    "last_man_standing",
    "last_man_standing_window",
    "auto_tie_breaker",
    "auto_tie_breaker_node",
    "allow_downscale",
    "expected_votes_tracking",
    "leaving_timeout",
];

/// Options valid in `logging` and in its `logger_subsys` sections.
const LOGGING: &[&str] = &[
    "timestamp",
    "fileline",
    "function_name",
    "blackbox",
    "to_stderr",
    "to_logfile",
    "to_syslog",
    "logfile",
    "logfile_priority",
    "syslog_facility",
    "syslog_priority",
    "debug",
    "tags",
];

const LOGGER_SUBSYS: &[&str] = &[
    "subsys",
    "to_stderr",
    "to_logfile",
    "to_syslog",
    "logfile",
    "logfile_priority",
    "syslog_facility",
    "syslog_priority",
    "debug",
    "tags",
];

const SYSTEM: &[&str] = &[
    "qb_ipc_type",
    "sched_rr",
    "priority",
    "move_to_root_cgroup",
    "allow_knet_handle_fallback",
    "state_dir",
    "ipc_socket",
    "metrics_listen",
];

const NOZZLE: &[&str] = &["name", "ipaddr", "ipprefix", "macaddr"];

/// Every known section pattern and its keys.
const SECTIONS: &[(&str, Keys)] = &[
    ("totem", Keys::List(TOTEM)),
    ("totem.interface.*", Keys::List(INTERFACE)),
    ("nodelist", Keys::List(&[])),
    ("nodelist.node.*", Keys::List(NODE)),
    ("quorum", Keys::List(QUORUM)),
    ("quorum.device", Keys::Any),
    ("logging", Keys::List(LOGGING)),
    ("logging.logger_subsys.*", Keys::List(LOGGER_SUBSYS)),
    ("uidgid", Keys::List(&["uid", "gid"])),
    ("system", Keys::List(SYSTEM)),
    ("resources", Keys::Any),
    ("nozzle", Keys::List(NOZZLE)),
    ("fencing", Keys::List(&["post_join_delay", "agent_timeout", "retry_delay", "policy"])),
    ("fencing.device.*", Keys::Any),
    ("fencing.node.*", Keys::List(&["name", "nodeid"])),
    ("fencing.node.*.method.*", Keys::List(&["name"])),
    ("fencing.node.*.method.*.device.*", Keys::Any),
    ("fencing.node.*.unfence", Keys::List(&[])),
    ("fencing.node.*.unfence.device.*", Keys::Any),
];

/// What the schema says about a key or a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Known {
    /// A known key or section.
    Yes,
    /// Inside a section that takes any key (fence device attributes); not checked.
    Unchecked,
    /// Unknown; the known name it most likely misspells, if one is close.
    No {
        /// A close known name in the same section.
        suggestion: Option<&'static str>,
    },
}

fn keys_of(pattern: &str) -> Option<Keys> {
    SECTIONS.iter().find(|(p, _)| *p == pattern).map(|(_, k)| *k)
}

/// Whether some ancestor of `pattern` (or itself) takes any key and subsection.
fn inside_any(pattern: &str) -> bool {
    let mut p = pattern;
    loop {
        if matches!(keys_of(p), Some(Keys::Any)) {
            return true;
        }
        match p.rfind('.') {
            Some(i) => p = &p[..i],
            None => return false,
        }
    }
}

/// Whether a section with the pattern path `pattern` (e.g. `nodelist.node.*`) is known.
pub fn section(pattern: &str) -> Known {
    if keys_of(pattern).is_some() {
        return Known::Yes;
    }
    if pattern.rfind('.').is_some_and(|i| inside_any(&pattern[..i])) {
        return Known::Unchecked;
    }
    let (parent, name) = match pattern.rfind('.') {
        Some(i) => (&pattern[..i], &pattern[i + 1..]),
        None => ("", pattern),
    };
    let siblings = SECTIONS.iter().filter_map(|&(p, _)| {
        let p: &'static str = p.strip_suffix(".*").unwrap_or(p);
        let (pp, n) = match p.rfind('.') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => ("", p),
        };
        (pp == parent).then_some(n)
    });
    Known::No { suggestion: closest(name, siblings) }
}

/// Whether `key` is known in the section with the pattern path `section` (`""` for the top level).
pub fn key(section: &str, key: &str) -> Known {
    match keys_of(section) {
        Some(Keys::List(keys)) if keys.contains(&key) => Known::Yes,
        Some(Keys::List(keys)) => Known::No { suggestion: closest(key, keys.iter().copied()) },
        Some(Keys::Any) => Known::Unchecked,
        None if inside_any(section) => Known::Unchecked,
        None => Known::No { suggestion: None },
    }
}

/// The candidate within two edits of `word`, if any (the nearest; the first of equals).
fn closest(word: &str, candidates: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, _)| d <= 2 && d < word.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars; inputs here are key names, so short.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_and_sections() {
        assert_eq!(key("totem", "token"), Known::Yes);
        assert_eq!(key("totem.interface.*", "mcastport"), Known::Yes);
        assert_eq!(key("nodelist.node.*", "ring7_addr"), Known::Yes);
        assert_eq!(key("fencing.device.*", "passwd"), Known::Unchecked);
        assert_eq!(key("quorum.device.net", "host"), Known::Unchecked);
        assert_eq!(section("quorum.device.net"), Known::Unchecked);
        assert_eq!(section("nodelist.node.*"), Known::Yes);
        assert_eq!(section("fencing.node.*.method.*.device.*"), Known::Yes);
    }

    #[test]
    fn unknown_names_get_a_close_suggestion() {
        assert_eq!(key("totem", "tokne"), Known::No { suggestion: Some("token") });
        assert_eq!(key("totem", "completely_else"), Known::No { suggestion: None });
        assert_eq!(key("", "token"), Known::No { suggestion: None });
        assert_eq!(section("totme"), Known::No { suggestion: Some("totem") });
        assert_eq!(section("nodelist.nod"), Known::No { suggestion: Some("node") });
    }

    #[test]
    fn edit_distance_counts_single_char_edits() {
        assert_eq!(edit_distance("token", "token"), 0);
        assert_eq!(edit_distance("tokn", "token"), 1);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("join", "merge"), 5);
    }
}
