//! The daemon's log outputs, from corosync.conf's `logging` section.
//!
//! Every output is a `tracing-subscriber` fmt layer with its own writer, under one global
//! filter:
//! - `to_stderr`: stderr (colours only on a terminal);
//! - `to_logfile`: `logfile`, opened for append and created if missing;
//! - `to_syslog`: the local syslog socket `/dev/log`, one RFC 3164 datagram per event
//!   (`<PRI>totemd[PID]: MSG`, facility daemon), skipped when the socket does not exist.
//!
//! The level is `info`, `debug` with `debug: on` and `trace` with `debug: trace`; a
//! `logger_subsys { subsys: NAME  debug: on }` raises one subsystem (mapped to its crate).
//! `RUST_LOG`, when set and valid, replaces all of that.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::config::{DebugLevel, LoggingSettings, Timestamp};

/// The local syslog socket.
pub const SYSLOG_SOCKET: &str = "/dev/log";
/// The syslog facility `daemon` (RFC 3164 §4.1.1).
const FACILITY_DAEMON: u8 = 3;
/// The syslog tag.
const SYSLOG_TAG: &str = "totemd";

/// Why logging could not be set up. Nothing was installed when it is returned.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `logfile` could not be opened for append.
    #[error("cannot open log file {}: {source}", path.display())]
    Logfile {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: io::Error,
    },
    /// A global subscriber was installed already.
    #[error("cannot install the logger: {0}")]
    Install(String),
}

/// One `logging.logger_subsys` section: the subsystem and its `debug`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubsysDebug {
    /// `subsys` (corosync's name: `TOTEM`, `QUORUM`, `CPG`, `CMAP`, `MAIN`, ...).
    pub subsys: String,
    /// Its `debug`.
    pub debug: DebugLevel,
}

/// The settings used without a configuration file: stderr only, at info.
pub fn command_line_settings() -> LoggingSettings {
    LoggingSettings { to_syslog: false, ..LoggingSettings::default() }
}

/// Every `logger_subsys` section of a parsed corosync.conf (`logging.logger_subsys.NAME.debug`).
pub fn subsys_debug(parsed: &confdb::conf::Parsed) -> Vec<SubsysDebug> {
    parsed
        .under("logging.logger_subsys")
        .filter_map(|e| {
            let rest = e.key.strip_prefix("logging.logger_subsys.")?;
            let subsys = rest.strip_suffix(".debug")?;
            let debug = match e.value.as_str() {
                "on" => DebugLevel::On,
                "trace" => DebugLevel::Trace,
                _ => DebugLevel::Off,
            };
            Some(SubsysDebug { subsys: subsys.to_string(), debug })
        })
        .collect()
}

/// The crate that logs for a corosync subsystem, if totemd has it.
fn subsys_target(subsys: &str) -> Option<&'static str> {
    Some(match subsys.to_ascii_uppercase().as_str() {
        "TOTEM" | "TOTEMSRP" => "totem",
        "QUORUM" | "VOTEQ" | "VOTEQUORUM" => "quorum",
        "CPG" => "cpg",
        "CMAP" | "CONFDB" => "confdb",
        "MAIN" => "totemd",
        _ => return None,
    })
}

fn level_name(debug: DebugLevel) -> &'static str {
    match debug {
        DebugLevel::Off => "info",
        DebugLevel::On => "debug",
        DebugLevel::Trace => "trace",
    }
}

/// The filter the configuration asks for, in `RUST_LOG` syntax, and a warning for each
/// subsystem totemd does not have.
pub fn filter_spec(settings: &LoggingSettings, subsys: &[SubsysDebug]) -> (String, Vec<String>) {
    let mut spec = level_name(settings.debug).to_string();
    let mut warnings = Vec::new();
    for s in subsys.iter().filter(|s| s.debug != DebugLevel::Off) {
        match subsys_target(&s.subsys) {
            Some(target) => spec.push_str(&format!(",{target}={}", level_name(s.debug))),
            None => {
                warnings.push(format!("logging.logger_subsys {}: totemd has no such subsystem", s.subsys))
            }
        }
    }
    (spec, warnings)
}

/// Installs the global logger. Returns warnings to log once it runs (the logger cannot
/// report on itself before it exists).
pub fn init(settings: &LoggingSettings, subsys: &[SubsysDebug]) -> Result<Vec<String>, LoggingError> {
    let (spec, mut warnings) = filter_spec(settings, subsys);
    let from_env = std::env::var("RUST_LOG").ok();
    let filter = match &from_env {
        Some(env) => EnvFilter::try_new(env).unwrap_or_else(|e| {
            warnings.push(format!("ignoring RUST_LOG={env:?} ({e}); logging at {spec}"));
            EnvFilter::new(&spec)
        }),
        None => EnvFilter::new(&spec),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let mut layers: Vec<BoxedLayer> = Vec::new();
    if settings.to_stderr {
        layers.push(fmt_layer(io::stderr, io::stderr().is_terminal(), settings.timestamp));
    }
    if let (true, Some(path)) = (settings.to_logfile, &settings.logfile) {
        let file = open_logfile(path)?;
        layers.push(fmt_layer(Mutex::new(file), false, settings.timestamp));
    }
    if settings.to_syslog {
        // No syslog daemon (containers, minimal hosts): nothing to send to, and not an error.
        if let Some(syslog) = Syslog::connect(Path::new(SYSLOG_SOCKET)) {
            layers.push(Box::new(
                tracing_subscriber::fmt::layer()
                    .with_writer(syslog)
                    .with_ansi(false)
                    .without_time()
                    .with_level(false),
            ));
        }
    }
    tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init()
        .map_err(|e| LoggingError::Install(e.to_string()))?;
    let _ = LEVELS.set(Levels { handle, from_env: from_env.is_some() });
    Ok(warnings)
}

/// The installed filter, for [`set_levels`].
struct Levels {
    handle: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` chose the levels: a reload keeps them.
    from_env: bool,
}

static LEVELS: OnceLock<Levels> = OnceLock::new();

/// Applies new logging levels (`debug`, `logger_subsys`) to the installed logger (a reload).
/// Returns warnings; an error when no logger is installed or `RUST_LOG` chose the levels.
pub fn set_levels(settings: &LoggingSettings, subsys: &[SubsysDebug]) -> Result<Vec<String>, String> {
    let levels = LEVELS.get().ok_or("no logger installed")?;
    if levels.from_env {
        return Err("RUST_LOG chose the levels at start; they are kept".into());
    }
    let (spec, warnings) = filter_spec(settings, subsys);
    levels.handle.reload(EnvFilter::new(&spec)).map_err(|e| e.to_string())?;
    Ok(warnings)
}

type BoxedLayer = Box<dyn Layer<Layered<reload::Layer<EnvFilter, Registry>, Registry>> + Send + Sync>;

fn fmt_layer<W>(writer: W, ansi: bool, timestamp: Timestamp) -> BoxedLayer
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi);
    match timestamp {
        Timestamp::Off => Box::new(layer.without_time()),
        Timestamp::On | Timestamp::Hires => Box::new(layer.with_timer(UtcTime(timestamp))),
    }
}

/// Opens `path` for append, creating it (mode 0640 before the umask) if missing.
pub fn open_logfile(path: &Path) -> Result<File, LoggingError> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|source| LoggingError::Logfile { path: path.to_path_buf(), source })
}

/// UTC time, to the second (`timestamp: on`) or the millisecond (`hires`).
struct UtcTime(Timestamp);

impl FormatTime for UtcTime {
    #[allow(clippy::disallowed_methods)] // the daemon's log, not the sans-IO core
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        w.write_str(&format_utc(since.as_secs(), since.subsec_millis(), self.0 == Timestamp::Hires))
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.mmm]Z` for a Unix time.
pub fn format_utc(secs: u64, millis: u32, hires: bool) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut s = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60);
    if hires {
        s.push_str(&format!(".{millis:03}"));
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The syslog severity of a tracing level (RFC 3164 §4.1.1).
fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// One RFC 3164 datagram as the local syslog socket takes it: `<PRI>TAG[PID]: MSG`; the
/// syslog daemon adds the time and host.
pub fn syslog_datagram(level: Level, tag: &str, pid: u32, msg: &str) -> String {
    let pri = FACILITY_DAEMON * 8 + severity(level);
    format!("<{pri}>{tag}[{pid}]: {}", msg.trim_end_matches('\n'))
}

/// The `/dev/log` writer: each event becomes one datagram, sent when its writer is dropped.
struct Syslog {
    socket: Arc<UnixDatagram>,
    pid: u32,
}

impl Syslog {
    fn connect(path: &Path) -> Option<Syslog> {
        let socket = UnixDatagram::unbound().ok()?;
        socket.connect(path).ok()?;
        // A stalled syslog daemon must never block the node's loop: drop lines instead.
        socket.set_nonblocking(true).ok()?;
        Some(Syslog { socket: Arc::new(socket), pid: std::process::id() })
    }

    fn line(&self, level: Level) -> SyslogLine {
        SyslogLine { socket: self.socket.clone(), pid: self.pid, level, buf: Vec::new() }
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        self.line(Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogLine {
        self.line(*meta.level())
    }
}

/// One event's text on its way to syslog.
struct SyslogLine {
    socket: Arc<UnixDatagram>,
    pid: u32,
    level: Level,
    buf: Vec<u8>,
}

impl Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let msg = String::from_utf8_lossy(&self.buf);
        // A full or gone syslog loses the line; logging about it would only add more.
        let _ = self.socket.send(syslog_datagram(self.level, SYSLOG_TAG, self.pid, &msg).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_sets_the_level_and_subsystems_raise_their_crate() {
        let mut s = LoggingSettings::default();
        assert_eq!(filter_spec(&s, &[]).0, "info");
        s.debug = DebugLevel::On;
        assert_eq!(filter_spec(&s, &[]).0, "debug");
        s.debug = DebugLevel::Trace;
        assert_eq!(filter_spec(&s, &[]).0, "trace");
        s.debug = DebugLevel::Off;
        let subsys = [
            SubsysDebug { subsys: "QUORUM".into(), debug: DebugLevel::Off },
            SubsysDebug { subsys: "TOTEM".into(), debug: DebugLevel::Trace },
            SubsysDebug { subsys: "KNET".into(), debug: DebugLevel::On },
        ];
        let (spec, warnings) = filter_spec(&s, &subsys);
        assert_eq!(spec, "info,totem=trace");
        assert_eq!(warnings, vec!["logging.logger_subsys KNET: totemd has no such subsystem"]);
    }

    #[test]
    fn logger_subsys_sections_are_read_from_the_parsed_file() {
        let text = "logging {\n debug: off\n logger_subsys {\n  subsys: TOTEM\n  debug: on\n }\n}\n";
        let parsed = confdb::conf::parse(text, "c.conf").expect("parses");
        assert_eq!(
            subsys_debug(&parsed),
            vec![SubsysDebug { subsys: "TOTEM".into(), debug: DebugLevel::On }]
        );
    }

    #[test]
    fn syslog_datagrams_carry_facility_daemon_and_the_severity() {
        assert_eq!(syslog_datagram(Level::ERROR, "totemd", 42, "boom\n"), "<27>totemd[42]: boom");
        assert_eq!(syslog_datagram(Level::WARN, "totemd", 1, "w"), "<28>totemd[1]: w");
        assert_eq!(syslog_datagram(Level::INFO, "totemd", 1, "i"), "<30>totemd[1]: i");
        assert_eq!(syslog_datagram(Level::TRACE, "totemd", 1, "t"), "<31>totemd[1]: t");
    }

    #[test]
    fn syslog_lines_go_to_the_socket_as_one_datagram_each() {
        let dir = std::env::temp_dir().join(format!("totemd-syslog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("log");
        let server = UnixDatagram::bind(&path).expect("bind");
        let syslog = Syslog::connect(&path).expect("connects");
        let mut line = syslog.line(Level::WARN);
        line.write_all(b"part one, ").and_then(|()| line.write_all(b"part two\n")).expect("write");
        drop(line);
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).expect("recv");
        let got = String::from_utf8_lossy(&buf[..n]).to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, format!("<28>totemd[{}]: part one, part two", std::process::id()));
        assert!(Syslog::connect(&dir.join("missing")).is_none());
    }

    #[test]
    fn utc_times_format_as_rfc3339() {
        assert_eq!(format_utc(0, 0, false), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400 + 3_723, 45, true), "2000-02-29T01:02:03.045Z");
        assert_eq!(format_utc(1_767_225_599, 999, true), "2025-12-31T23:59:59.999Z");
    }

    #[test]
    fn an_unopenable_logfile_is_a_clear_error() {
        let e = open_logfile(Path::new("/nonexistent-dir-for-totemd/x.log")).expect_err("fails");
        assert!(e.to_string().starts_with("cannot open log file /nonexistent-dir-for-totemd/x.log: "), "{e}");
    }
}
