//! The results table: printed to the terminal and written as Markdown with the raw numbers
//! behind every ratio.

use std::fmt::Write as _;

/// A measured amount with its unit (`"µs/write"`, `"rows/s"`, `"ms"`, `"bytes"`).
#[derive(Clone, Debug)]
pub struct Amount {
    pub value: f64,
    pub unit: &'static str,
}

impl Amount {
    pub fn new(value: f64, unit: &'static str) -> Amount {
        Amount { value, unit }
    }

    fn show(&self) -> String {
        format!("{} {}", number(self.value), self.unit)
    }
}

/// What a figure has to reach.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// The ratio is at most this.
    RatioAtMost(f64),
    /// The ratio is at least this.
    RatioAtLeast(f64),
    /// The subject's own value stays below this (in its unit).
    Below(f64),
    /// The subject is at most the baseline plus this (in their unit): rows per write.
    AtMostPlus(f64),
    /// Reported, no target.
    None,
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Figure {
    pub part: &'static str,
    pub measure: String,
    pub subject: Amount,
    /// The baseline measured in the same run (absent for absolute figures).
    pub baseline: Option<(String, Amount)>,
    pub target: Target,
    /// How it was measured and the raw per-round numbers.
    pub raw: String,
}

impl Figure {
    /// subject / baseline (for rates, higher is better; for costs, lower is better).
    pub fn ratio(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .map(|(_, b)| self.subject.value / b.value)
    }

    pub fn met(&self) -> Option<bool> {
        match self.target {
            Target::RatioAtMost(t) => self.ratio().map(|r| r <= t),
            Target::RatioAtLeast(t) => self.ratio().map(|r| r >= t),
            Target::Below(t) => Some(self.subject.value < t),
            Target::AtMostPlus(n) => self
                .baseline
                .as_ref()
                .map(|(_, b)| self.subject.value <= b.value + n + 1e-9),
            Target::None => None,
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            Target::RatioAtMost(t) => format!("≤ {t}×"),
            Target::RatioAtLeast(t) => format!("≥ {t}×"),
            Target::Below(t) => format!("< {} {}", number(t), self.subject.unit),
            Target::AtMostPlus(n) => format!("≤ base + {}", number(n)),
            Target::None => "—".into(),
        }
    }

    fn status(&self) -> &'static str {
        match self.met() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "—",
        }
    }
}

/// What a part produced: figures, or why it did not run.
#[derive(Clone, Debug)]
pub enum Outcome {
    Figure(Figure),
    Skipped { part: &'static str, reason: String },
}

pub fn number(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if a >= 10_000.0 {
        group(x.round() as i64)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

fn group(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn cells(f: &Figure) -> [String; 7] {
    [
        f.part.to_string(),
        f.measure.clone(),
        f.subject.show(),
        f.baseline
            .as_ref()
            .map_or_else(|| "—".into(), |(name, a)| format!("{} ({name})", a.show())),
        f.ratio().map_or_else(|| "—".into(), |r| format!("{r:.2}×")),
        f.target_text(),
        f.status().into(),
    ]
}

const HEAD: [&str; 7] = [
    "part", "measure", "subject", "baseline", "ratio", "target", "status",
];

/// The table as aligned plain text.
pub fn text(outcomes: &[Outcome]) -> String {
    let mut rows: Vec<[String; 7]> = vec![HEAD.map(String::from)];
    let mut skipped = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Figure(f) => rows.push(cells(f)),
            Outcome::Skipped { part, reason } => skipped.push(format!("{part}: skipped: {reason}")),
        }
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if n == 0 {
            let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 12));
        }
    }
    for s in skipped {
        let _ = writeln!(out, "{s}");
    }
    out
}

/// The table as Markdown, then the raw numbers of every figure.
pub fn markdown(outcomes: &[Outcome]) -> String {
    let mut out = format!("| {} |\n|{}\n", HEAD.join(" | "), " --- |".repeat(7));
    for o in outcomes {
        match o {
            Outcome::Figure(f) => {
                let _ = writeln!(out, "| {} |", cells(f).join(" | "));
            }
            Outcome::Skipped { part, reason } => {
                let _ = writeln!(
                    out,
                    "| {part} | skipped: {} | | | | | |",
                    reason.replace('|', "\\|")
                );
            }
        }
    }
    out.push_str("\n## Raw numbers\n\n");
    for o in outcomes {
        if let Outcome::Figure(f) = o {
            let _ = writeln!(
                out,
                "### {}: {}\n\n{}\n",
                f.part,
                f.measure,
                f.raw.trim_end()
            );
        }
    }
    out
}

/// Per-round values for the raw-numbers section.
pub fn list(xs: &[f64], scale: f64) -> String {
    xs.iter()
        .map(|x| number(x * scale))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(target: Target) -> Figure {
        Figure {
            part: "write",
            measure: "m".into(),
            subject: Amount::new(12.0, "µs/write"),
            baseline: Some(("raw".into(), Amount::new(10.0, "µs/write"))),
            target,
            raw: String::new(),
        }
    }

    #[test]
    fn targets() {
        assert_eq!(fig(Target::RatioAtMost(1.2)).met(), Some(true));
        assert_eq!(fig(Target::RatioAtLeast(1.4)).met(), Some(false));
        assert_eq!(fig(Target::Below(11.0)).met(), Some(false));
        assert_eq!(fig(Target::None).met(), None);
        assert_eq!(fig(Target::AtMostPlus(2.0)).met(), Some(true));
        assert_eq!(fig(Target::AtMostPlus(1.0)).met(), Some(false));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(1_234_567.0), "1,234,567");
        assert_eq!(number(70_832.4), "70,832");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(0.5), "0.50");
    }

    #[test]
    fn skipped_parts_say_why() {
        let t = text(&[Outcome::Skipped {
            part: "size",
            reason: "no wasm".into(),
        }]);
        assert!(t.contains("size: skipped: no wasm"));
    }
}
