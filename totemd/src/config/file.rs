//! corosync.conf to [`FileConfig`]: the `totem` options, crypto, logging, uidgid and system
//! settings (the nodelist and links are in [`super::nodes`]). corosync's defaults and limits
//! apply (corosync.conf(5), `exec/totemconfig.c`); where totemd differs it says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use confdb::conf::{Diagnostic, Parsed};
use totem::TotemConfig;

use super::nodes;
use super::settings::{
    ClusterSettings, DebugLevel, IpVersion, LoggingSettings, Timestamp, Transport, UidGid,
};
use super::values::Reader;
use super::ConfigError;
use crate::crypto::{Aead, CryptoCipher, CryptoHash};
use crate::keyfile::{AuthKey, KEY_LEN_MAX, KEY_LEN_MIN};

/// corosync's smallest timeout, `MINIMUM_TIMEOUT` (3 ticks of 10 ms).
const TIMEOUT_MIN_MS: u32 = 30;
/// corosync's smallest `hold`, `MINIMUM_TIMEOUT_HOLD` (0.8 × 30 ms − one tick).
const HOLD_MIN_MS: u32 = 14;
/// Largest `netmtu`: a UDP datagram.
const NETMTU_MAX: usize = 65_535;

/// Why it has no effect: the knet link layer's tuning.
const KNET_ONLY: &str = "totemd has no knet link layer to tune";

/// A corosync.conf, checked and typed. Nothing in it depends on the host it is read on:
/// choosing this node and resolving host names happen in [`FileConfig::daemon_config`].
#[derive(Clone, Debug)]
pub struct FileConfig {
    /// The Totem options, with `token_coefficient` applied and `consensus` derived as corosync does.
    pub totem: TotemConfig,
    /// Everything else.
    pub settings: ClusterSettings,
    /// `system.state_dir`, if set.
    pub state_dir: Option<PathBuf>,
    /// Unknown keys, keys set twice, accepted keys that have no effect.
    pub warnings: Vec<Diagnostic>,
    /// Every entry as parsed, for the parts read later (`quorum`, `fencing`, `logger_subsys`).
    pub parsed: Parsed,
}

/// Command-line options that replace what the file says.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--token`: replaces `totem.token` (`token_coefficient` still applies).
    pub token: Option<Duration>,
}

/// Why a configuration file is refused: every error, and the warnings found on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// Each error, in line order.
    pub errors: Vec<Diagnostic>,
    /// Each warning, in line order (syntax errors stop before warnings are complete).
    pub warnings: Vec<Diagnostic>,
}

impl FileConfig {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path, overrides: &Overrides) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { path: path.display().to_string(), reason: e.to_string() })?;
        let mut config = FileConfig::load(&text, &path.display().to_string(), overrides)
            .map_err(|invalid| ConfigError::File(invalid.errors))?;
        config.settings.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Checks corosync.conf `text`; `file` names it in diagnostics.
    pub fn load(text: &str, file: &str, overrides: &Overrides) -> Result<FileConfig, Invalid> {
        let parsed =
            confdb::conf::parse(text, file).map_err(|errors| Invalid { errors, warnings: Vec::new() })?;
        let mut r = Reader::new(&parsed);
        let mut settings = ClusterSettings::default();
        settings.transport = r
            .choice(
                "totem.transport",
                &[("knet", Transport::Knet), ("udpu", Transport::Udpu), ("udp", Transport::Udp)],
            )
            .unwrap_or(Transport::Knet);
        settings.ip_version = ip_version(&mut r, settings.transport);
        settings.nodes = nodes::nodelist(&mut r);
        settings.links = nodes::links(&mut r, settings.transport, &settings.nodes);
        let (totem, token_coefficient) = totem_options(&mut r, settings.nodes.len(), overrides);
        settings.token_coefficient = token_coefficient;
        cluster_identity(&mut r, &mut settings);
        super::multicast::check(&mut r, &settings);
        settings.crypto = crypto(&mut r);
        settings.logging = logging(&mut r);
        settings.uidgid = uidgid(&parsed);
        settings.ipc_socket = r.text("system.ipc_socket", "a socket file path").map(PathBuf::from);
        let state_dir = system(&mut r);
        settings.metrics_listen = metrics_listen(&mut r);
        settings.quorum = other_sections(&mut r, &settings.nodes);
        unused_sections(&mut r);
        settings.fencing = super::fencing::fencing(&mut r, &settings.nodes);

        let Reader { mut errors, warnings, .. } = r;
        let mut warnings: Vec<Diagnostic> = parsed.warnings.iter().cloned().chain(warnings).collect();
        warnings.sort_by_key(|d| d.line);
        errors.sort_by_key(|d| d.line);
        if !errors.is_empty() {
            return Err(Invalid { errors, warnings });
        }
        Ok(FileConfig { totem, settings, state_dir, warnings, parsed })
    }
}

fn ip_version(r: &mut Reader<'_>, transport: Transport) -> IpVersion {
    let options = [
        ("ipv4", IpVersion::Ipv4),
        ("ipv6", IpVersion::Ipv6),
        ("ipv4-6", IpVersion::Ipv4Then6),
        ("ipv6-4", IpVersion::Ipv6Then4),
    ];
    r.choice("totem.ip_version", &options).unwrap_or(match transport {
        Transport::Udp => IpVersion::Ipv4,
        Transport::Knet | Transport::Udpu => IpVersion::Ipv6Then4,
    })
}

fn cluster_identity(r: &mut Reader<'_>, settings: &mut ClusterSettings) {
    match r.get("totem.version") {
        None => {
            let line = r.section_line("totem");
            r.error(line, "totem.version: missing: corosync.conf needs 'version: 2' in the totem section");
        }
        Some(e) if e.value != "2" => r.bad(e, "2, the only configuration version"),
        Some(_) => {}
    }
    settings.cluster_name = r.text("totem.cluster_name", "a cluster name").map(str::to_string);
    settings.config_version = r.number("totem.config_version", 0..=u64::MAX, "a version number").unwrap_or(0);
}

/// The `totem` timeouts and constants, named as in [`TotemConfig`].
fn totem_options(r: &mut Reader<'_>, nodes: usize, overrides: &Overrides) -> (TotemConfig, Duration) {
    let d = TotemConfig::default();
    let base_token = overrides.token.or_else(|| r.millis("totem.token", TIMEOUT_MIN_MS)).unwrap_or(d.token);
    let coefficient =
        r.millis("totem.token_coefficient", 0).unwrap_or(super::settings::TOKEN_COEFFICIENT_DEFAULT);
    // corosync.conf(5), token_coefficient: with 3+ nodes the real token timeout is
    // token + (nodes - 2) * token_coefficient.
    let extra_nodes = u32::try_from(nodes.saturating_sub(2)).unwrap_or(u32::MAX);
    let token = base_token.saturating_add(coefficient.saturating_mul(extra_nodes));
    let u32_from = |min: u32| min..=u32::MAX;
    let window_size = r.number("totem.window_size", u32_from(1), "a number of messages");
    let mut t = TotemConfig {
        token,
        token_retransmits_before_loss_const: r
            .number("totem.token_retransmits_before_loss_const", u32_from(1), "a count")
            .unwrap_or(d.token_retransmits_before_loss_const),
        hold: r.millis("totem.hold", HOLD_MIN_MS).unwrap_or(d.hold),
        join: r.millis("totem.join", TIMEOUT_MIN_MS).unwrap_or(d.join),
        // corosync: consensus defaults to 1.2 × the (real) token timeout.
        consensus: r.millis("totem.consensus", TIMEOUT_MIN_MS).unwrap_or(token.mul_f64(1.2)),
        merge: r.millis("totem.merge", TIMEOUT_MIN_MS).unwrap_or(d.merge),
        downcheck: r.millis("totem.downcheck", TIMEOUT_MIN_MS).unwrap_or(d.downcheck),
        fail_recv_const: r
            .number("totem.fail_recv_const", u32_from(1), "a count")
            .unwrap_or(d.fail_recv_const),
        seqno_unchanged_const: r
            .number("totem.seqno_unchanged_const", u32_from(1), "a count")
            .unwrap_or(d.seqno_unchanged_const),
        miss_count_const: r
            .number("totem.miss_count_const", u32_from(1), "a count")
            .unwrap_or(d.miss_count_const),
        window_size: window_size.unwrap_or(d.window_size),
        // A window set below our default max_messages (corosync's 50, say) lowers it.
        max_messages: r
            .number("totem.max_messages", u32_from(1), "a number of messages")
            .unwrap_or_else(|| d.max_messages.min(window_size.unwrap_or(d.window_size))),
        send_join: r.millis("totem.send_join", 0).unwrap_or(d.send_join),
        netmtu: r
            .number(
                "totem.netmtu",
                totem::config::PACKET_OVERHEAD + 256..=NETMTU_MAX,
                "a packet size in bytes",
            )
            .unwrap_or(d.netmtu),
        ..d
    };
    // Heartbeat-only (heartbeat_failures_allowed); read so that a bad value is reported.
    r.millis("totem.max_network_delay", TIMEOUT_MIN_MS);
    cross_checks(r, &mut t);
    unimplemented_totem_keys(r);
    (t, coefficient)
}

/// Rules between options, each reported at the line of the option that breaks it.
fn cross_checks(r: &mut Reader<'_>, t: &mut TotemConfig) {
    let line_of = |r: &Reader<'_>, keys: &[&str]| {
        keys.iter().find_map(|k| r.get(k).map(|e| e.line)).unwrap_or_else(|| r.section_line("totem"))
    };
    if t.consensus < t.token {
        let line = line_of(r, &["totem.consensus", "totem.token"]);
        let msg = format!(
            "totem.consensus: {} ms is less than the token timeout of {} ms (token_coefficient included); \
             totemd needs consensus >= token",
            t.consensus.as_millis(),
            t.token.as_millis()
        );
        r.error(line, msg);
    } else if t.consensus < t.join {
        let line = line_of(r, &["totem.consensus", "totem.join"]);
        let msg = format!(
            "totem.consensus: {} ms is less than join ({} ms)",
            t.consensus.as_millis(),
            t.join.as_millis()
        );
        r.error(line, msg);
    }
    if t.max_messages > t.window_size {
        let line = line_of(r, &["totem.max_messages", "totem.window_size"]);
        let msg = format!("totem.max_messages: {} exceeds window_size ({})", t.max_messages, t.window_size);
        r.error(line, msg);
    }
    if r.errors.is_empty() {
        if let Err(e) = t.validate() {
            let line = r.section_line("totem");
            r.error(line, format!("totem: {e}"));
        }
    }
}

fn unimplemented_totem_keys(r: &mut Reader<'_>) {
    r.not_implemented(
        "totem.token_retransmit",
        "totemd derives it as token / (token_retransmits_before_loss_const + 0.2)",
    );
    if r.number("totem.token_warning", 0..=100, "a percentage").is_some_and(|p| p != 75) {
        r.not_implemented("totem.token_warning", "totemd does not warn before the token is lost");
    }
    if r.number("totem.heartbeat_failures_allowed", 0..=u32::MAX, "a count").is_some_and(|n| n > 0) {
        r.not_implemented("totem.heartbeat_failures_allowed", "totemd has no heartbeat mechanism");
    }
    r.not_implemented("totem.nodeid", "corosync 3 deprecates it; totemd takes node ids from the nodelist");
    r.not_implemented("totem.clear_node_high_bit", "node ids come from the nodelist");
    r.not_implemented("totem.threads", "totemd runs one thread");
    r.not_implemented("totem.block_unlisted_ips", "totemd does not filter senders by address");
    r.not_implemented("totem.cancel_token_hold_on_retransmit", "totemd does not implement it");
    r.not_implemented("totem.crypto_model", "totemd has one crypto implementation");
    if r.choice("totem.link_mode", &[("passive", ()), ("active", ()), ("rr", ())]).is_some() {
        r.not_implemented("totem.link_mode", KNET_ONLY);
    }
    let knet: Vec<String> =
        r.parsed.under("totem").filter(|e| e.key.starts_with("totem.knet_")).map(|e| e.key.clone()).collect();
    for key in knet {
        r.not_implemented(&key, KNET_ONLY);
    }
}

fn crypto(r: &mut Reader<'_>) -> super::settings::CryptoSettings {
    let mut c = super::settings::CryptoSettings::default();
    // corosync.conf(5), secauth: "implies crypto_cipher=aes256 and crypto_hash=sha256, unless
    // those options are explicitly set".
    if r.flag("totem.secauth") == Some(true) {
        c.cipher = CryptoCipher::Aes256;
        c.hash = CryptoHash::Sha256;
    }
    if let Some(e) = r.get("totem.crypto_cipher") {
        match e.value.parse() {
            Ok(cipher) => c.cipher = cipher,
            Err(_) => r.bad(e, "none, aes256, aes192 or aes128"),
        }
    }
    if let Some(e) = r.get("totem.crypto_hash") {
        match e.value.parse() {
            Ok(hash) => c.hash = hash,
            Err(_) => r.bad(e, "none, md5, sha1, sha256, sha384 or sha512"),
        }
    }
    if let Err(err) = Aead::select(c.cipher, c.hash) {
        let line = r.get("totem.crypto_cipher").map_or_else(|| r.section_line("totem"), |e| e.line);
        r.error(line, format!("totem.crypto_cipher: {err}"));
    }
    if let Some(path) = r.text("totem.keyfile", "a file path") {
        c.keyfile = PathBuf::from(path);
    }
    if let Some(e) = r.get("totem.key") {
        match AuthKey::from_bytes(e.value.as_bytes().to_vec()) {
            Ok(key) => c.key = Some(key),
            Err(_) => {
                let msg = format!(
                    "totem.key: expects a key of {KEY_LEN_MIN} to {KEY_LEN_MAX} bytes, found {} bytes",
                    e.value.len()
                );
                r.error(e.line, msg);
            }
        }
    }
    c
}

fn logging(r: &mut Reader<'_>) -> LoggingSettings {
    let d = LoggingSettings::default();
    let l = LoggingSettings {
        to_stderr: r.flag("logging.to_stderr").unwrap_or(d.to_stderr),
        to_logfile: r.flag("logging.to_logfile").unwrap_or(d.to_logfile),
        logfile: r.text("logging.logfile", "a file path").map(PathBuf::from),
        to_syslog: r.flag("logging.to_syslog").unwrap_or(d.to_syslog),
        debug: r
            .choice(
                "logging.debug",
                &[("off", DebugLevel::Off), ("on", DebugLevel::On), ("trace", DebugLevel::Trace)],
            )
            .unwrap_or(d.debug),
        timestamp: r
            .choice(
                "logging.timestamp",
                &[("off", Timestamp::Off), ("on", Timestamp::On), ("hires", Timestamp::Hires)],
            )
            .unwrap_or(d.timestamp),
    };
    if l.to_logfile && l.logfile.is_none() {
        let line = r.get("logging.to_logfile").map_or_else(|| r.section_line("logging"), |e| e.line);
        r.error(line, "logging.to_logfile: yes needs logging.logfile: PATH");
    }
    for key in ["logging.fileline", "logging.function_name", "logging.blackbox"] {
        r.flag(key);
    }
    const PRIORITIES: [(&str, ()); 8] = [
        ("alert", ()),
        ("crit", ()),
        ("debug", ()),
        ("emerg", ()),
        ("err", ()),
        ("info", ()),
        ("notice", ()),
        ("warning", ()),
    ];
    r.choice("logging.logfile_priority", &PRIORITIES);
    r.choice("logging.syslog_priority", &PRIORITIES);
    let facilities: Vec<(&str, ())> =
        ["daemon", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]
            .into_iter()
            .map(|f| (f, ()))
            .collect();
    r.choice("logging.syslog_facility", &facilities);
    l
}

fn uidgid(parsed: &Parsed) -> Vec<UidGid> {
    parsed
        .under("uidgid.config")
        .filter_map(|e| {
            let rest = &e.key["uidgid.config.".len()..];
            if let Some(name) = rest.strip_prefix("uid.") {
                Some(UidGid::Uid(name.to_string()))
            } else {
                rest.strip_prefix("gid.").map(|name| UidGid::Gid(name.to_string()))
            }
        })
        .collect()
}

fn system(r: &mut Reader<'_>) -> Option<PathBuf> {
    for key in ["qb_ipc_type", "sched_rr", "priority", "move_to_root_cgroup", "allow_knet_handle_fallback"] {
        r.not_implemented(&format!("system.{key}"), "totemd does not implement it");
    }
    r.text("system.state_dir", "a directory path").map(PathBuf::from)
}

/// `system.metrics_listen`: `ADDR:PORT`, `[ADDR6]:PORT`, or a bare `PORT` on 127.0.0.1. The
/// metrics are for anyone who can connect, so loopback is the default and anything else is
/// the operator's explicit choice.
fn metrics_listen(r: &mut Reader<'_>) -> Option<std::net::SocketAddr> {
    let entry = r.get("system.metrics_listen")?;
    let value = entry.value.trim();
    let parsed = match value.parse::<u16>() {
        Ok(port) => Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => value.parse::<std::net::SocketAddr>(),
    };
    match parsed {
        Ok(addr) if addr.port() != 0 => Some(addr),
        _ => {
            r.bad(entry, "PORT, ADDRESS:PORT or [IPV6]:PORT with a port from 1 to 65535");
            None
        }
    }
}

/// The `quorum` section (votequorum(5)): `None` without `provider: corosync_votequorum`, as
/// corosync runs without a quorum provider then.
fn other_sections(r: &mut Reader<'_>, nodes: &[crate::config::NodeEntry]) -> Option<quorum::QuorumConfig> {
    let provider = r.choice("quorum.provider", &[("corosync_votequorum", ())]);
    let flag =
        |r: &mut Reader<'_>, key: &str| r.choice(&format!("quorum.{key}"), &[("0", false), ("1", true)]);
    let mut q = quorum::QuorumConfig {
        two_node: flag(r, "two_node").unwrap_or(false),
        wait_for_all: flag(r, "wait_for_all"),
        last_man_standing: flag(r, "last_man_standing").unwrap_or(false),
        auto_tie_breaker: flag(r, "auto_tie_breaker").unwrap_or(false),
        nodelist: nodes.iter().map(|n| (n.nodeid, n.quorum_votes)).collect(),
        ..quorum::QuorumConfig::default()
    };
    for key in ["allow_downscale", "expected_votes_tracking"] {
        if flag(r, key) == Some(true) {
            r.not_implemented(&format!("quorum.{key}"), "totemd's votequorum does not implement it");
        }
    }
    q.expected_votes = r.number("quorum.expected_votes", 1..=u32::MAX, "a whole number of votes");
    q.votes = r.number("quorum.votes", 1..=u32::MAX, "a whole number of votes");
    if let Some(ms) = r.number("quorum.last_man_standing_window", 1..=u32::MAX, "milliseconds") {
        q.last_man_standing_window = Duration::from_millis(u64::from(ms));
    }
    r.number("quorum.leaving_timeout", 0..=u32::MAX, "milliseconds");
    if let Some(text) = r.text("quorum.auto_tie_breaker_node", "lowest, highest or a list of node ids") {
        match text.parse() {
            Ok(t) => q.auto_tie_breaker_node = Some(t),
            Err(e) => {
                let line = r.parsed.get("quorum.auto_tie_breaker_node").map_or(0, |e| e.line);
                r.error(line, format!("quorum.auto_tie_breaker_node: {e}"));
            }
        }
    }
    provider?;
    // The rules between the options, checked for every node id of the nodelist.
    let line = r.section_line("quorum");
    let first = nodes.first().map_or(totem::NodeId(1), |n| n.nodeid);
    match q.resolve(first) {
        Ok(resolved) => {
            for w in resolved.warnings {
                r.warn(line, format!("quorum: {w}"));
            }
        }
        Err(e) => r.error(line, format!("quorum: {e}")),
    }
    Some(q)
}

/// Sections totemd has no use for, named once.
fn unused_sections(r: &mut Reader<'_>) {
    for section in ["resources", "nozzle"] {
        if let Some(s) = r.parsed.section(section) {
            let line = s.line;
            r.warn(
                line,
                format!("{section}: the section is accepted but has no effect: totemd does not implement it"),
            );
        }
    }
}

#[cfg(test)]
mod metrics_listen_tests {
    use super::*;

    const BASE: &str = "totem {\n version: 2\n cluster_name: c\n transport: udpu\n}\n\
        nodelist {\n node {\n  nodeid: 1\n  ring0_addr: 127.0.0.1\n }\n}\n";

    fn load(system: &str) -> Result<Option<std::net::SocketAddr>, Vec<String>> {
        let text = format!("{BASE}system {{\n metrics_listen: {system}\n}}\n");
        FileConfig::load(&text, "corosync.conf", &Overrides::default())
            .map(|c| c.settings.metrics_listen)
            .map_err(|i| i.errors.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn metrics_listen_is_off_unless_set_and_a_bare_port_is_loopback() {
        let none = FileConfig::load(BASE, "corosync.conf", &Overrides::default()).expect("valid");
        assert_eq!(none.settings.metrics_listen, None);
        assert!(none.warnings.is_empty(), "{:?}", none.warnings);
        assert_eq!(load("9405"), Ok(Some("127.0.0.1:9405".parse().unwrap())));
        assert_eq!(load("0.0.0.0:9405"), Ok(Some("0.0.0.0:9405".parse().unwrap())));
        assert_eq!(load("[::1]:9405"), Ok(Some("[::1]:9405".parse().unwrap())));
        for bad in ["localhost:9405", "0", "127.0.0.1", "127.0.0.1:0"] {
            let errors = load(bad).expect_err(bad);
            assert!(errors.iter().any(|e| e.contains("system.metrics_listen")), "{bad}: {errors:?}");
        }
    }
}
