//! corosync.conf: syntax, key names, known keys, and writing it back.
//!
//! # Syntax (as corosync's `coroparse.c` reads it)
//! - One item per line. Blank lines and lines whose first non-blank character is `#` are
//!   ignored; a `#` later in a line is part of the value (`token: 300 # ms` is an error).
//! - `name {` opens a section, `}` alone on a line closes it; sections nest.
//! - `key: value` sets a key; the value is the rest of the line with surrounding blanks removed
//!   and may be empty. A line containing `{` is always a section start, as in corosync.
//!
//! # Key names (as corosync's cmap)
//! An entry's key is the path of its sections and its own name joined by dots. Sections that
//! may repeat get a component that tells them apart:
//! - `nodelist { node { } }`: by position, from 0: `nodelist.node.0.ring0_addr`.
//! - `totem { interface { } }`: by the section's `linknumber` (default 0), wherever it appears
//!   in the section: `totem.interface.1.mcastport`. Two interfaces with one linknumber are an
//!   error.
//! - `logging { logger_subsys { } }`: by the section's `subsys`: `logging.logger_subsys.CPG.debug`.
//! - `uidgid { uid: NAME }` becomes `uidgid.config.uid.NAME` = `1` (and `gid` alike); cmap
//!   resolves NAME to a number, this parser keeps it as written.
//! - our `fencing` section (see [`crate::cluster_conf`]): `fencing.device.N`, `fencing.node.N`,
//!   `fencing.node.N.method.M`, `fencing.node.N.method.M.device.K`, `fencing.node.N.unfence.device.K`,
//!   each by position from 0.
//!
//! A key set twice keeps the later value, with a warning. Keys and sections corosync does not
//! know ([`schema`]) give a warning naming the file and line; they are kept in the entries.

mod parser;
pub mod schema;
mod writer;

use std::fmt;

pub use writer::{check_value, Block, Item, ValueError};

/// A problem found in a configuration file, at one line. Its `Display` form is
/// `FILE:LINE: MESSAGE`, the form compilers use, so editors can jump to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name given to [`parse`].
    pub file: String,
    /// The line, from 1. Problems of the whole file (a missing section) name its last line.
    pub line: u32,
    /// What is wrong, naming the key and the expected form where there is one.
    pub message: String,
}

/// A problem that stops the configuration from being used.
pub type ConfError = Diagnostic;
/// A problem reported but tolerated (an unknown key, a key set twice).
pub type ConfWarning = Diagnostic;

impl Diagnostic {
    /// A diagnostic at `line` of `file`.
    pub fn new(file: &str, line: u32, message: impl Into<String>) -> Self {
        Diagnostic { file: file.to_string(), line, message: message.into() }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// One `key: value` line, named by its full cmap key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The dotted key, e.g. `nodelist.node.0.ring0_addr`.
    pub key: String,
    /// The value as written, without surrounding blanks.
    pub value: String,
    /// The line it is on, from 1.
    pub line: u32,
}

/// A section of the file, named like the keys in it (`totem`, `nodelist.node.2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The dotted path, e.g. `totem.interface.0`.
    pub path: String,
    /// The line of its opening `{`.
    pub line: u32,
}

/// A syntactically valid corosync.conf: its entries in file order, its sections, and warnings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The file name given to [`parse`], used in diagnostics.
    pub file: String,
    /// Every entry in file order; each key appears once (the last setting wins).
    pub entries: Vec<Entry>,
    /// Every section, ordered by line.
    pub sections: Vec<Section>,
    /// Unknown keys and sections, keys set twice.
    pub warnings: Vec<ConfWarning>,
    /// Number of lines in the file (at least 1), the line of whole-file diagnostics.
    pub last_line: u32,
}

impl Parsed {
    /// The entry of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The value of `key`, if set.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).map(|e| e.value.as_str())
    }

    /// Entries whose key starts with `prefix` followed by a dot (`prefix` = `totem` gives
    /// `totem.token` and `totem.interface.0.mcastport`, not `totemx.a`).
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| is_under(&e.key, prefix))
    }

    /// The section at `path`, if the file has it.
    pub fn section(&self, path: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.path == path)
    }

    /// A diagnostic at `line` of this file.
    pub fn at(&self, line: u32, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, line, message)
    }
}

/// Whether `key` is `prefix.something`.
pub fn is_under(key: &str, prefix: &str) -> bool {
    key.len() > prefix.len() && key.starts_with(prefix) && key.as_bytes()[prefix.len()] == b'.'
}

/// Parses corosync.conf text. `file_name` is only used in diagnostics.
///
/// Returns every syntax error (a bad line is reported and skipped, so one mistake does not
/// hide the next), or the entries and the warnings. Never panics, whatever the input.
pub fn parse(text: &str, file_name: &str) -> Result<Parsed, Vec<ConfError>> {
    parser::parse(text, file_name)
}
