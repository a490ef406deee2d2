//! Checking a configuration file as `totemd --validate` and `totemctl config check` report it.

use std::path::Path;

use confdb::conf::Diagnostic;

use super::file::{FileConfig, Invalid, Overrides};

/// The outcome of a check: what to print, and whether the file may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// Whether the file has no error (warnings allowed).
    pub valid: bool,
    /// One line per problem, errors and warnings in line order:
    /// `FILE:LINE: error: MESSAGE` or `FILE:LINE: warning: MESSAGE`.
    pub problems: Vec<String>,
    /// One line: what the file describes, or how many errors it has.
    pub summary: String,
}

/// Checks corosync.conf `text`; `file` names it in the report. Only what does not depend on
/// the host is checked: host names are resolved, and this node chosen, when the daemon starts.
pub fn check_text(text: &str, file: &str) -> CheckReport {
    match FileConfig::load(text, file, &Overrides::default()) {
        Ok(config) => {
            let s = &config.settings;
            let summary = format!(
                "{file}: valid: cluster {}, {} node{}, transport {}, token {} ms, consensus {} ms{}",
                s.cluster_name.as_deref().unwrap_or("(unnamed)"),
                s.nodes.len(),
                if s.nodes.len() == 1 { "" } else { "s" },
                s.transport,
                config.totem.token.as_millis(),
                config.totem.consensus.as_millis(),
                count(config.warnings.len(), "warning", ", "),
            );
            CheckReport { valid: true, problems: render(&[], &config.warnings), summary }
        }
        Err(Invalid { errors, warnings }) => {
            let summary = format!(
                "{file}: {}{}",
                count(errors.len(), "error", ""),
                count(warnings.len(), "warning", ", ")
            );
            CheckReport { valid: false, problems: render(&errors, &warnings), summary }
        }
    }
}

/// Checks `path` and prints the report as `--validate` and `totemctl config check` do:
/// problems on stderr, the summary on stdout when valid (stderr otherwise). Returns the exit
/// code: 0 when valid, 2 when not.
pub fn check_and_print(path: &Path) -> u8 {
    let report = check_file(path);
    for line in &report.problems {
        eprintln!("{line}");
    }
    if report.valid {
        println!("{}", report.summary);
        0
    } else {
        eprintln!("{}", report.summary);
        2
    }
}

/// Reads and checks the file at `path`.
pub fn check_file(path: &Path) -> CheckReport {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => check_text(&text, &file),
        Err(e) => CheckReport {
            valid: false,
            problems: vec![format!("{file}: error: cannot read: {e}")],
            summary: format!("{file}: unreadable"),
        },
    }
}

fn render(errors: &[Diagnostic], warnings: &[Diagnostic]) -> Vec<String> {
    let mut all: Vec<(u32, String)> = errors
        .iter()
        .map(|d| (d.line, format!("{}:{}: error: {}", d.file, d.line, d.message)))
        .chain(warnings.iter().map(|d| (d.line, format!("{}:{}: warning: {}", d.file, d.line, d.message))))
        .collect();
    all.sort_by_key(|(line, _)| *line);
    all.into_iter().map(|(_, s)| s).collect()
}

/// `3 errors`, `1 warning`; empty for none when `sep` is non-empty (an optional part).
fn count(n: usize, what: &str, sep: &str) -> String {
    if n == 0 && !sep.is_empty() {
        return String::new();
    }
    format!("{sep}{n} {what}{}", if n == 1 { "" } else { "s" })
}
