//! The comparison's figures: every sample of every figure for each system (and the raw UDP
//! limit), summarised as median and range with the ratio totem / corosync, as a text table,
//! Markdown and JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// The series a figure can have.
pub const SERIES: [&str; 3] = ["totem", "corosync", "udp"];

/// One measured quantity and its samples per series.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Figure {
    /// What it is, e.g. `2 nodes, crypto off, 1024 B, 1 sender`.
    pub case: String,
    /// The quantity, e.g. `msgs/s`.
    pub quantity: String,
    /// Whether more is better (throughput) or worse (latency, memory, time).
    pub higher_is_better: bool,
    /// Samples per series, in [`SERIES`] order.
    pub samples: [Vec<f64>; 3],
}

/// All figures, in the order first recorded.
#[derive(Debug, Default, Serialize)]
pub struct Figures {
    /// The figures.
    pub figures: Vec<Figure>,
    /// Runs that failed, and why.
    pub failures: Vec<String>,
    /// How it was measured (command line, host notes).
    pub notes: Vec<String>,
}

impl Figures {
    /// Adds a sample of `quantity` in `case` for `series` (an index of [`SERIES`]).
    pub fn add(&mut self, case: &str, quantity: &str, higher_is_better: bool, series: usize, value: f64) {
        let at = self.figures.iter().position(|f| f.case == case && f.quantity == quantity);
        let figure = match at {
            Some(i) => &mut self.figures[i],
            None => {
                self.figures.push(Figure {
                    case: case.into(),
                    quantity: quantity.into(),
                    higher_is_better,
                    ..Figure::default()
                });
                self.figures.last_mut().expect("just pushed")
            }
        };
        if value.is_finite() {
            figure.samples[series].push(value);
        }
    }
}

/// Median of the samples (the mean of the middle two for an even count).
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// A value with three significant digits or so.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn cell(samples: &[f64]) -> String {
    match median(samples) {
        None => "-".into(),
        Some(m) if samples.len() == 1 => num(m),
        Some(m) => {
            let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{} [{}–{}]", num(m), num(lo), num(hi))
        }
    }
}

fn ratio(f: &Figure) -> String {
    match (median(&f.samples[0]), median(&f.samples[1])) {
        (Some(t), Some(c)) if c != 0.0 => format!("{:.2}", t / c),
        _ => "-".into(),
    }
}

const HEADER: [&str; 6] = ["case", "quantity", "totem", "corosync", "totem/corosync", "udp limit"];

fn rows(figures: &Figures) -> Vec<[String; 6]> {
    figures
        .figures
        .iter()
        .map(|f| {
            [
                f.case.clone(),
                f.quantity.clone(),
                cell(&f.samples[0]),
                cell(&f.samples[1]),
                ratio(f),
                cell(&f.samples[2]),
            ]
        })
        .collect()
}

/// An aligned text table: median [min–max] per system, ratio of medians.
pub fn text(figures: &Figures) -> String {
    let rows = rows(figures);
    let mut widths = HEADER.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADER.map(String::from);
    for r in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            let pad = w - c.chars().count();
            if i < 2 {
                let _ = write!(line, "{c}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(line, "{}{c}  ", " ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for f in &figures.failures {
        let _ = writeln!(out, "failed: {f}");
    }
    out
}

/// The same table in Markdown, with the notes first.
pub fn markdown(figures: &Figures) -> String {
    let mut out = String::from("# totem vs corosync\n\n");
    for n in &figures.notes {
        let _ = writeln!(out, "- {n}");
    }
    out += "\nEach cell: median [min–max] over the repetitions; ratio of the medians.\n\n";
    let _ = writeln!(out, "| {} |", HEADER.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(HEADER.len()));
    for r in rows(figures) {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    if !figures.failures.is_empty() {
        out += "\nFailed runs:\n\n";
        for f in &figures.failures {
            let _ = writeln!(out, "- {f}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_ranges_and_ratio() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let mut f = Figures::default();
        for (s, v) in [(0, 200.0), (0, 100.0), (0, 300.0), (1, 100.0), (1, 90.0), (1, 110.0)] {
            f.add("2 nodes", "msgs/s", true, s, v);
        }
        f.add("2 nodes", "msgs/s", true, 2, f64::NAN);
        let table = text(&f);
        let line = table.lines().nth(1).unwrap();
        assert!(line.contains("200 [100–300]") && line.contains("100 [90.0–110]"), "{line}");
        assert!(line.contains("2.00"), "{line}");
        assert_eq!(f.figures.len(), 1);
        assert!(f.figures[0].samples[2].is_empty(), "NaN is not a sample");
        assert!(markdown(&f).contains("| 2 nodes | msgs/s | 200 [100–300] |"));
    }
}
