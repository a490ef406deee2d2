//! Reading typed values out of parsed corosync.conf entries. Every bad value becomes an error
//! naming the file, line, key and expected form; reading goes on so that all are reported.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use confdb::conf::{Diagnostic, Entry, Parsed};

/// The parsed file plus the errors and warnings found while reading it.
pub(super) struct Reader<'a> {
    pub parsed: &'a Parsed,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    pub fn new(parsed: &'a Parsed) -> Self {
        Reader { parsed, errors: Vec::new(), warnings: Vec::new() }
    }

    pub fn error(&mut self, line: u32, message: impl Into<String>) {
        self.errors.push(self.parsed.at(line, message));
    }

    pub fn warn(&mut self, line: u32, message: impl Into<String>) {
        self.warnings.push(self.parsed.at(line, message));
    }

    /// Records that `entry` is not of the `expected` form.
    pub fn bad(&mut self, entry: &Entry, expected: &str) {
        let hint = if entry.value.contains('#') { " (a comment must be on a line of its own)" } else { "" };
        let msg = format!("{}: expects {expected}, found {:?}{hint}", entry.key, entry.value);
        self.error(entry.line, msg);
    }

    /// The line of the section at `path`, or the last line of the file if there is none.
    pub fn section_line(&self, path: &str) -> u32 {
        self.parsed.section(path).map_or(self.parsed.last_line, |s| s.line)
    }

    pub fn get(&self, key: &str) -> Option<&'a Entry> {
        self.parsed.get(key)
    }

    /// A whole number in `range`.
    pub fn number<T>(&mut self, key: &str, range: RangeInclusive<T>, what: &str) -> Option<T>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let entry = self.get(key)?;
        match entry.value.parse::<T>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.bad(entry, &format!("{what} from {} to {}", range.start(), range.end()));
                None
            }
        }
    }

    /// A time in milliseconds, at least `min_ms`.
    pub fn millis(&mut self, key: &str, min_ms: u32) -> Option<Duration> {
        self.number(key, min_ms..=u32::MAX, "a time in milliseconds")
            .map(|ms| Duration::from_millis(ms.into()))
    }

    /// `yes`/`no` (corosync also writes `on`/`off`).
    pub fn flag(&mut self, key: &str) -> Option<bool> {
        self.choice(key, &[("yes", true), ("on", true), ("no", false), ("off", false)])
    }

    /// One of a fixed set of words.
    pub fn choice<T: Copy>(&mut self, key: &str, options: &[(&str, T)]) -> Option<T> {
        let entry = self.get(key)?;
        if let Some(&(_, v)) = options.iter().find(|(name, _)| *name == entry.value) {
            return Some(v);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let expected = match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.concat(),
        };
        self.bad(entry, &expected);
        None
    }

    /// An IP address.
    pub fn ip(&mut self, key: &str) -> Option<IpAddr> {
        let entry = self.get(key)?;
        match entry.value.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.bad(entry, "an IPv4 or IPv6 address");
                None
            }
        }
    }

    /// A non-empty string.
    pub fn text(&mut self, key: &str, what: &str) -> Option<&'a str> {
        let entry = self.get(key)?;
        if entry.value.is_empty() {
            self.bad(entry, what);
            return None;
        }
        Some(entry.value.as_str())
    }

    /// Warns that `key`, if set, is accepted but has no effect in totemd.
    pub fn not_implemented(&mut self, key: &str, why: &str) {
        if let Some(entry) = self.get(key) {
            let msg = format!("{key} is accepted but has no effect: {why}");
            self.warn(entry.line, msg);
        }
    }
}

/// Whether `s` is a host name (RFC 1123 labels, dots between them). The last label is not
/// all digits (RFC 3696 §2), so a mistyped IPv4 address such as `10.0.0.300` is not taken for
/// a name.
pub(super) fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.rsplit('.').next().is_some_and(|last| last.chars().all(|c| c.is_ascii_digit()))
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_of(text: &str) -> Parsed {
        confdb::conf::parse(text, "t.conf").unwrap()
    }

    #[test]
    fn typed_values_and_their_errors() {
        let parsed = reader_of(
            "totem {\n token: 300\n join: 3s\n hold: 5\n flag: yes\n mode: odd\n addr: 10.0.0.1\n merge: 9 # x\n}\n",
        );
        let mut r = Reader::new(&parsed);
        assert_eq!(r.millis("totem.token", 30), Some(Duration::from_millis(300)));
        assert_eq!(r.millis("totem.join", 30), None);
        assert_eq!(r.millis("totem.hold", 14), None);
        assert_eq!(r.flag("totem.flag"), Some(true));
        assert_eq!(r.choice("totem.mode", &[("a", 1), ("b", 2), ("c", 3)]), None);
        assert_eq!(r.ip("totem.addr"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(r.millis("totem.merge", 30), None);
        assert_eq!(r.millis("totem.absent", 30), None);
        let errors: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            vec![
                "t.conf:3: totem.join: expects a time in milliseconds from 30 to 4294967295, found \"3s\"",
                "t.conf:4: totem.hold: expects a time in milliseconds from 14 to 4294967295, found \"5\"",
                "t.conf:6: totem.mode: expects a, b or c, found \"odd\"",
                "t.conf:8: totem.merge: expects a time in milliseconds from 30 to 4294967295, found \"9 # x\" \
                 (a comment must be on a line of its own)",
            ]
        );
    }

    #[test]
    fn host_names() {
        assert!(is_host_name("an-node01.alteeve.com"));
        assert!(is_host_name("node1"));
        assert!(!is_host_name("-bad"));
        assert!(!is_host_name("a..b"));
        assert!(!is_host_name("a b"));
        assert!(!is_host_name(""));
        assert!(!is_host_name("10.0.0.300"));
        assert!(is_host_name("node-1"));
    }
}
