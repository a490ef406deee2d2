//! The line parser behind [`super::parse`].
//!
//! Every section is collected in a frame with keys relative to it; when it closes, its name
//! component is known (an interface's `linknumber` may come last) and its entries move to the
//! parent with that component in front. The stack is explicit, so deep nesting cannot
//! overflow the call stack.

use std::collections::BTreeMap;

use super::schema::{self, Known};
use super::{ConfError, Diagnostic, Entry, Parsed, Section};

/// Sections that may repeat and are named by position (cmap's `nodelist.node.N`).
const INDEXED: &[&str] = &[
    "nodelist.node",
    "fencing.device",
    "fencing.node",
    "fencing.node.*.method",
    "fencing.node.*.method.*.device",
    "fencing.node.*.unfence.device",
];

/// Highest `linknumber` (corosync allows 8 links).
const LINKNUMBER_MAX: u8 = 7;

/// How a section's own key component is formed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// The top level.
    Root,
    /// Its name.
    Plain,
    /// Its name and its position among its like: `node.3`.
    Indexed(u32),
    /// `interface.` and its `linknumber`.
    Interface,
    /// `logger_subsys.` and its `subsys`.
    LoggerSubsys,
    /// `uidgid`, whose `uid: X` lines become `config.uid.X`.
    Uidgid,
    /// A bad section line: kept only so that braces still pair; its content is dropped.
    Broken,
}

struct Frame {
    name: String,
    /// Pattern path with `*` for repeated components (`nodelist.node.*`), as in [`schema`].
    pattern: String,
    line: u32,
    kind: Kind,
    /// Whether keys in it are checked against the schema (not inside an unknown section,
    /// whose own warning covers them).
    checked: bool,
    entries: Vec<Entry>,
    sections: Vec<Section>,
    counters: BTreeMap<String, u32>,
}

impl Frame {
    fn new(name: &str, pattern: String, line: u32, kind: Kind, checked: bool) -> Self {
        Frame {
            name: name.to_string(),
            pattern,
            line,
            kind,
            checked,
            entries: Vec::new(),
            sections: Vec::new(),
            counters: BTreeMap::new(),
        }
    }
}

struct Parser<'a> {
    file: &'a str,
    errors: Vec<ConfError>,
    warnings: Vec<Diagnostic>,
    /// `stack[0]` is the top level, always present.
    stack: Vec<Frame>,
    /// Position counters of repeated sections whose parent occurs once (`nodelist`), so
    /// that two `nodelist` blocks do not both start at `node.0`.
    counters: BTreeMap<String, u32>,
}

pub(super) fn parse(text: &str, file: &str) -> Result<Parsed, Vec<ConfError>> {
    let mut p = Parser {
        file,
        errors: Vec::new(),
        warnings: Vec::new(),
        stack: vec![Frame::new("", String::new(), 0, Kind::Root, true)],
        counters: BTreeMap::new(),
    };
    let mut last_line = 0;
    for (i, raw) in text.lines().enumerate() {
        last_line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        p.line(raw.trim_matches(char::is_whitespace), last_line);
    }
    while p.stack.len() > 1 {
        let frame = p.stack.pop().expect("stack holds more than the root");
        let msg = format!("section '{}' opened here is not closed: a '}}' is missing", frame.name);
        p.error(frame.line, msg);
    }
    if !p.errors.is_empty() {
        p.errors.sort_by_key(|d| d.line);
        return Err(p.errors);
    }
    let root = p.stack.pop().expect("the root frame");
    let mut parsed = Parsed {
        file: file.to_string(),
        entries: root.entries,
        sections: root.sections,
        warnings: p.warnings,
        last_line: last_line.max(1),
    };
    let errors = finish(&mut parsed);
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

impl Parser<'_> {
    fn error(&mut self, line: u32, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(self.file, line, message));
    }

    fn warn(&mut self, line: u32, message: impl Into<String>) {
        self.warnings.push(Diagnostic::new(self.file, line, message));
    }

    fn top(&mut self) -> &mut Frame {
        self.stack.last_mut().expect("the root frame is never popped while parsing")
    }

    /// The section path of the innermost frame as the user wrote it (`nodelist.node`).
    fn display_path(&self) -> String {
        let names: Vec<&str> = self.stack[1..].iter().map(|f| f.name.as_str()).collect();
        names.join(".")
    }

    /// One trimmed line. The order of the checks is corosync's: `{`, then `:`, then `}`.
    fn line(&mut self, t: &str, line: u32) {
        if t.is_empty() || t.starts_with('#') {
            return;
        }
        if let Some((before, after)) = t.split_once('{') {
            self.open(before, after, line);
        } else if let Some((key, value)) = t.split_once(':') {
            self.key_value(
                key.trim_matches(char::is_whitespace),
                value.trim_matches(char::is_whitespace),
                line,
            );
        } else if t.contains('}') {
            self.close_line(t, line);
        } else {
            self.error(line, format!("expected 'NAME {{', '}}' or 'KEY: VALUE', found {t:?}"));
        }
    }

    fn open(&mut self, before: &str, after: &str, line: u32) {
        // corosync drops trailing blanks, ':' and '{' from a section name ("totem: {").
        let name = before.trim_end_matches(|c: char| c.is_whitespace() || c == ':' || c == '{').trim_start();
        let after = after.trim_matches(char::is_whitespace);
        let parent = self.stack.last().expect("root");
        let problem = if name.is_empty() {
            Some("missing section name before '{'".to_string())
        } else if !after.is_empty() {
            Some(format!("unexpected {after:?} after '{{': a section starts on a line of its own"))
        } else if !valid_name(name) {
            Some(format!("invalid section name {name:?}: {NAME_RULE}"))
        } else if parent.kind == Kind::Uidgid {
            Some(format!("uidgid takes only 'uid:' and 'gid:' lines, not a section {name:?}"))
        } else {
            None
        };
        if problem.is_some() || parent.kind == Kind::Broken {
            let pattern = parent.pattern.clone();
            self.stack.push(Frame::new(name, pattern, line, Kind::Broken, false));
            if let Some(problem) = problem {
                self.error(line, problem);
            }
            return;
        }
        let base = join(&parent.pattern, name);
        let (kind, pattern) = if INDEXED.contains(&base.as_str()) {
            let n = self.next_index(&base, name);
            (Kind::Indexed(n), format!("{base}.*"))
        } else if base == "totem.interface" {
            (Kind::Interface, format!("{base}.*"))
        } else if base == "logging.logger_subsys" {
            (Kind::LoggerSubsys, format!("{base}.*"))
        } else if base == "uidgid" {
            (Kind::Uidgid, base)
        } else {
            (Kind::Plain, base)
        };
        let parent = self.stack.last().expect("root");
        let mut checked = parent.checked;
        if checked {
            if let Known::No { suggestion } = schema::section(&pattern) {
                let path = join(&self.display_path(), name);
                self.warn(
                    line,
                    format!("unknown section '{path}'{}; its keys have no effect", hint(suggestion)),
                );
                checked = false;
            }
        }
        self.stack.push(Frame::new(name, pattern, line, kind, checked));
    }

    /// The position of a new repeated section `name` with pattern `base`.
    fn next_index(&mut self, base: &str, name: &str) -> u32 {
        let parent = self.stack.last_mut().expect("root");
        let counter = if parent.pattern.contains('*') {
            parent.counters.entry(name.to_string()).or_insert(0)
        } else {
            self.counters.entry(base.to_string()).or_insert(0)
        };
        let n = *counter;
        *counter = counter.saturating_add(1);
        n
    }

    fn key_value(&mut self, key: &str, value: &str, line: u32) {
        if key.is_empty() {
            return self.error(line, "missing key name before ':'");
        }
        if !valid_name(key) {
            return self.error(line, format!("invalid key name {key:?}: {NAME_RULE}"));
        }
        let frame = self.stack.last().expect("root");
        match frame.kind {
            Kind::Broken => {}
            Kind::Uidgid => self.uidgid(key, value, line),
            _ => {
                if frame.checked {
                    if let Known::No { suggestion } = schema::key(&frame.pattern, key) {
                        let section = self.display_path();
                        let place = if section.is_empty() {
                            "at the top level".to_string()
                        } else {
                            format!("in {section}")
                        };
                        self.warn(
                            line,
                            format!("unknown key '{key}' {place}{}; it has no effect", hint(suggestion)),
                        );
                    }
                }
                let entry = Entry { key: key.to_string(), value: value.to_string(), line };
                self.top().entries.push(entry);
            }
        }
    }

    fn uidgid(&mut self, key: &str, value: &str, line: u32) {
        if key != "uid" && key != "gid" {
            return self.error(line, format!("uidgid takes only 'uid:' and 'gid:' lines, not {key:?}"));
        }
        if value.is_empty() || value.chars().any(char::is_whitespace) {
            return self
                .error(line, format!("{key}: expects a user or group name or number, found {value:?}"));
        }
        let entry = Entry { key: format!("config.{key}.{value}"), value: "1".to_string(), line };
        self.top().entries.push(entry);
    }

    fn close_line(&mut self, t: &str, line: u32) {
        if t != "}" {
            return self
                .error(line, format!("unexpected text around '}}' in {t:?}: '}}' stands alone on its line"));
        }
        if self.stack.len() == 1 {
            return self.error(line, "'}' closes no section");
        }
        let frame = self.stack.pop().expect("more than the root");
        self.close(frame);
    }

    /// Moves a closed section's entries to its parent under its name component.
    fn close(&mut self, frame: Frame) {
        let Some(component) = self.component(&frame) else { return };
        let parent = self.top();
        parent.sections.push(Section { path: component.clone(), line: frame.line });
        for s in frame.sections {
            parent.sections.push(Section { path: format!("{component}.{}", s.path), line: s.line });
        }
        for e in frame.entries {
            parent.entries.push(Entry { key: format!("{component}.{}", e.key), ..e });
        }
    }

    fn component(&mut self, frame: &Frame) -> Option<String> {
        let last = |key: &str| frame.entries.iter().rev().find(|e| e.key == key);
        match frame.kind {
            Kind::Root | Kind::Broken => None,
            Kind::Plain | Kind::Uidgid => Some(frame.name.clone()),
            Kind::Indexed(n) => Some(format!("{}.{n}", frame.name)),
            Kind::Interface => match last("linknumber") {
                None => Some(format!("{}.0", frame.name)),
                Some(e) => match e.value.parse::<u8>() {
                    Ok(n) if n <= LINKNUMBER_MAX => Some(format!("{}.{n}", frame.name)),
                    _ => {
                        let msg = format!(
                            "linknumber: expects a link number from 0 to {LINKNUMBER_MAX}, found {:?}",
                            e.value
                        );
                        self.error(e.line, msg);
                        None
                    }
                },
            },
            Kind::LoggerSubsys => match last("subsys") {
                Some(e) if valid_name(&e.value) => Some(format!("{}.{}", frame.name, e.value)),
                Some(e) => {
                    self.error(
                        e.line,
                        format!("subsys: expects a subsystem name such as CPG, found {:?}", e.value),
                    );
                    None
                }
                None => {
                    self.error(
                        frame.line,
                        "logger_subsys section without a 'subsys:' key naming the subsystem",
                    );
                    None
                }
            },
        }
    }
}

const NAME_RULE: &str = "use letters, digits, '_', '-' and '/'";

/// Key and section names: what cmap allows in a key component.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'))
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}.{b}")
    }
}

fn hint(suggestion: Option<&str>) -> String {
    suggestion.map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default()
}

/// Whole-file checks once every section is closed: keys set twice keep the later value (with
/// a warning); two interfaces with one linknumber are an error.
fn finish(parsed: &mut Parsed) -> Vec<ConfError> {
    let mut errors = Vec::new();
    let mut first_interface: BTreeMap<&str, u32> = BTreeMap::new();
    for s in &parsed.sections {
        let is_interface = s.path.strip_prefix("totem.interface.").is_some_and(|n| !n.contains('.'));
        if !is_interface {
            continue;
        }
        if let Some(&first) = first_interface.get(s.path.as_str()) {
            let n = &s.path["totem.interface.".len()..];
            let msg = format!("a second interface with linknumber {n} (the first is at line {first})");
            errors.push(parsed.at(s.line, msg));
        } else {
            first_interface.insert(&s.path, s.line);
        }
    }
    parsed.sections.sort_by_key(|s| s.line);

    let mut last_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, e) in parsed.entries.iter().enumerate() {
        last_of.insert(&e.key, i);
    }
    let mut first_line: BTreeMap<&str, u32> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (i, e) in parsed.entries.iter().enumerate() {
        match first_line.get(e.key.as_str()) {
            None => {
                first_line.insert(&e.key, e.line);
            }
            Some(&first) if last_of[e.key.as_str()] == i => {
                let msg = format!("{} is set again (first at line {first}); this value is used", e.key);
                warnings.push(parsed.at(e.line, msg));
            }
            Some(_) => {}
        }
    }
    let keep: Vec<bool> =
        parsed.entries.iter().enumerate().map(|(i, e)| last_of[e.key.as_str()] == i).collect();
    let entries = std::mem::take(&mut parsed.entries);
    parsed.entries = entries.into_iter().zip(keep).filter_map(|(e, keep)| keep.then_some(e)).collect();
    parsed.warnings.extend(warnings);
    parsed.warnings.sort_by_key(|w| w.line);
    errors
}

#[cfg(test)]
mod tests;
