//! The Prometheus text exposition format (version 0.0.4): what `totemctl metrics` prints and
//! the daemon's HTTP listener serves at `/metrics`.
//!
//! [`Exposition`] writes one family at a time (`# HELP`, `# TYPE`, then its samples); every
//! name starts with `totem_` and counters end in `_total`, as the Prometheus naming
//! conventions ask. [`parse`] reads the format back strictly (names, labels, escapes, values,
//! one `# TYPE` per family before its samples, no series twice): `totemctl metrics --json`
//! and the tests use it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The media type of the format, for HTTP.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The prefix of every metric name.
pub const PREFIX: &str = "totem_";

/// A family's type.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets when the daemon restarts).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// Label names and values of one sample.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// A document being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    families: BTreeSet<String>,
}

impl Exposition {
    /// An empty document.
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// A counter family `totem_<name>_total` and its samples.
    pub fn counter<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'a>, u64)>,
    ) {
        self.family(&format!("{PREFIX}{name}_total"), Kind::Counter, help, samples);
    }

    /// A gauge family `totem_<name>` and its samples.
    pub fn gauge<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'a>, u64)>,
    ) {
        self.family(&format!("{PREFIX}{name}"), Kind::Gauge, help, samples);
    }

    /// A gauge family with one label: one sample per `(label value, value)` row.
    pub fn gauge_by(&mut self, name: &str, help: &str, label: &str, rows: &[(String, u64)]) {
        let labels: Vec<[(&str, &str); 1]> = rows.iter().map(|(v, _)| [(label, v.as_str())]).collect();
        self.gauge(name, help, labels.iter().zip(rows).map(|(l, (_, n))| (&l[..], *n)));
    }

    /// A counter family with one label, as [`Exposition::gauge_by`].
    pub fn counter_by(&mut self, name: &str, help: &str, label: &str, rows: &[(String, u64)]) {
        let labels: Vec<[(&str, &str); 1]> = rows.iter().map(|(v, _)| [(label, v.as_str())]).collect();
        self.counter(name, help, labels.iter().zip(rows).map(|(l, (_, n))| (&l[..], *n)));
    }

    fn family<'a>(
        &mut self,
        full: &str,
        kind: Kind,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'a>, u64)>,
    ) {
        // A family written twice would be invalid output: a bug here, never input.
        assert!(self.families.insert(full.to_string()), "metric family {full} written twice");
        let _ = writeln!(self.out, "# HELP {full} {}", escape(help, false));
        let _ = writeln!(self.out, "# TYPE {full} {}", kind.name());
        for (labels, value) in samples {
            self.out.push_str(full);
            if !labels.is_empty() {
                self.out.push('{');
                for (i, (name, value)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let _ = write!(self.out, "{name}=\"{}\"", escape(value, true));
                }
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {value}");
        }
    }

    /// The document.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Escapes `\` and newlines (and `"` in label values), as the format asks.
fn escape(text: &str, quote: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// One sample read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Its labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

/// Reads a document in the text format; `Err` names the first bad line.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut typed = BTreeSet::new();
    let mut series = BTreeSet::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match words.next() {
                Some("TYPE") => {
                    let name = words.next().filter(|n| is_name(n, true)).ok_or_else(|| bad("bad name"))?;
                    let kind = words.next().unwrap_or("");
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(bad("unknown type"));
                    }
                    if !typed.insert(name.to_string()) {
                        return Err(bad("second TYPE line for the family"));
                    }
                    if samples.iter().any(|s: &Sample| s.name == name) {
                        return Err(bad("TYPE after the family's samples"));
                    }
                }
                Some("HELP") => {
                    words.next().filter(|n| is_name(n, true)).ok_or_else(|| bad("bad name"))?;
                }
                _ => {}
            }
            continue;
        }
        let sample = parse_sample(line).map_err(bad)?;
        let key = format!("{}{:?}", sample.name, sample.labels);
        if !series.insert(key) {
            return Err(bad("the same series twice"));
        }
        samples.push(sample);
    }
    Ok(samples)
}

fn parse_sample(line: &str) -> Result<Sample, &'static str> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !is_name(name, true) {
        return Err("bad metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            rest = rest.trim_start_matches(' ');
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("label without a value")?;
            let label = rest[..eq].trim();
            if !is_name(label, false) || label.starts_with("__") {
                return Err("bad label name");
            }
            let (value, after) = quoted(&rest[eq + 1..])?;
            if labels.iter().any(|(l, _)| l == label) {
                return Err("label given twice");
            }
            labels.push((label.to_string(), value));
            rest = after.trim_start_matches(' ');
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
            } else if !rest.starts_with('}') {
                return Err("bad label list");
            }
        }
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse::<f64>().map_err(|_| "bad value")?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp.parse::<i64>().map_err(|_| "bad timestamp")?;
    }
    if fields.next().is_some() {
        return Err("text after the value");
    }
    Ok(Sample { name: name.to_string(), labels, value })
}

/// A `"..."` label value with its escapes undone, and what follows it.
fn quoted(s: &str) -> Result<(String, &str), &'static str> {
    let body = s.trim_start().strip_prefix('"').ok_or("label value not quoted")?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                _ => return Err("bad escape in a label value"),
            },
            '\n' => return Err("newline in a label value"),
            c => value.push(c),
        }
    }
    Err("unterminated label value")
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names; no `:` in label names.
fn is_name(s: &str, colon: bool) -> bool {
    let ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    let mut chars = s.chars();
    chars.next().is_some_and(ok) && chars.all(|c| ok(c) || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_type_prefix_and_escaped_labels() {
        let mut e = Exposition::new();
        e.counter(
            "packets_dropped",
            "Packets dropped,\nby reason.",
            [(&[("reason", "checksum")][..], 3), (&[("reason", "say \"hi\" \\o/")][..], 0)],
        );
        e.gauge("quorate", "1 when quorate.", [(&[][..], 1)]);
        e.gauge("link_up", "Per link.", [(&[("node", "2"), ("link", "0")][..], 1)]);
        e.gauge("empty", "No samples.", []);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP totem_packets_dropped_total Packets dropped,\\nby reason.\n\
             # TYPE totem_packets_dropped_total counter\n\
             totem_packets_dropped_total{reason=\"checksum\"} 3\n\
             totem_packets_dropped_total{reason=\"say \\\"hi\\\" \\\\o/\"} 0\n\
             # HELP totem_quorate 1 when quorate.\n\
             # TYPE totem_quorate gauge\n\
             totem_quorate 1\n\
             # HELP totem_link_up Per link.\n\
             # TYPE totem_link_up gauge\n\
             totem_link_up{node=\"2\",link=\"0\"} 1\n\
             # HELP totem_empty No samples.\n\
             # TYPE totem_empty gauge\n"
        );
        let samples = parse(&text).expect("parses");
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[1].labels, vec![("reason".to_string(), "say \"hi\" \\o/".to_string())]);
        assert_eq!(samples[3].labels.len(), 2);
        assert_eq!(samples[3].value, 1.0);
    }

    #[test]
    #[should_panic(expected = "written twice")]
    fn a_family_written_twice_is_a_bug() {
        let mut e = Exposition::new();
        e.gauge("x", "x", []);
        e.gauge("x", "x", []);
    }

    #[test]
    fn the_parser_refuses_what_prometheus_refuses() {
        for bad in [
            "totem_x{a=\"1\"} one\n",
            "totem-x 1\n",
            "totem_x{a=1} 1\n",
            "totem_x{a=\"1\",a=\"2\"} 1\n",
            "totem_x{a=\"\\q\"} 1\n",
            "totem_x{a=\"open} 1\n",
            "totem_x 1\ntotem_x 2\n",
            "# TYPE totem_x gauge\n# TYPE totem_x gauge\n",
            "totem_x 1\n# TYPE totem_x gauge\n",
            "# TYPE totem_x meter\n",
            "totem_x\n",
            "totem_x 1 2 3\n",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
        let ok = parse("# a comment\n\n# TYPE t gauge\nt{a=\"x\",b=\"y\"} -1.5e3 1700000000\nu +Inf\n")
            .expect("valid");
        assert_eq!(ok[0].value, -1500.0);
        assert!(ok[1].value.is_infinite());
    }
}
