//! The post-mortem's latency chart as hand-written SVG: one line per region (the round-trip
//! p50 per minute), vertical lines at onset, detection and resolution, axes with labels and a
//! legend. No drawing crate: the chart is a few dozen elements, and text keeps it diffable.
//!
//! Two or more minutes without data break the line rather than bridging it, so a region that
//! went silent does not look like it kept a smooth latency (one missing minute is bridged:
//! checks run every minute or two).

use std::fmt::Write as _;

use serde::Serialize;

/// Width of the drawing, in SVG user units.
pub const WIDTH: f64 = 900.0;
/// Height of the drawing.
pub const HEIGHT: f64 = 420.0;
/// The plot area inside the margins: left, top, right, bottom.
const PLOT: (f64, f64, f64, f64) = (70.0, 40.0, 690.0, 370.0);

/// One region's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Region id.
    pub region: String,
    /// What members call it.
    pub name: String,
    /// Whether the incident affected it (drawn bold) or it is a healthy comparison.
    pub affected: bool,
    /// `(minute start, Unix ms; p50 round trip, ms)`, in time order.
    pub points: Vec<(i64, f64)>,
}

/// A moment marked with a vertical line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    /// When, Unix ms.
    pub at_ms: i64,
    /// `onset`, `detected`, `resolved`.
    pub label: String,
}

/// Everything the chart shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    /// Start of the time axis, Unix ms.
    pub from_ms: i64,
    /// End of the time axis, Unix ms.
    pub to_ms: i64,
    /// The phase drawn (`connect`: the round trip).
    pub phase: String,
    /// The lines.
    pub series: Vec<Series>,
    /// The vertical lines.
    pub marks: Vec<Mark>,
}

const AFFECTED: [&str; 4] = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b"];
const HEALTHY: [&str; 3] = ["#1f77b4", "#2ca02c", "#17becf"];

/// Text safe inside an SVG element or attribute.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `HH:MM` UTC of a Unix-ms instant.
fn hhmm(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:02}:{:02}", at.hour(), at.minute())
}

/// A round step for about `n` ticks over `span`: 1, 2 or 5 times a power of ten.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::MIN_POSITIVE);
    let pow = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow)
}

impl Chart {
    /// The top of the latency axis, ms: a round value above every point (100 ms when empty).
    fn y_max(&self) -> f64 {
        let max = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        if max <= 0.0 {
            return 100.0;
        }
        let step = nice_step(max * 1.1, 5.0);
        (max * 1.1 / step).ceil() * step
    }

    /// The SVG coordinates of a point (clamped into the plot area).
    pub fn xy(&self, at_ms: i64, ms: f64) -> (f64, f64) {
        let (l, t, r, b) = PLOT;
        let span = (self.to_ms - self.from_ms).max(1) as f64;
        let fx = ((at_ms - self.from_ms) as f64 / span).clamp(0.0, 1.0);
        let fy = (ms / self.y_max()).clamp(0.0, 1.0);
        (l + fx * (r - l), b - fy * (b - t))
    }

    /// The chart as a standalone SVG document.
    pub fn svg(&self, title: &str) -> String {
        let (l, t, r, b) = PLOT;
        let mut s = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\n"
        );
        let _ = writeln!(
            s,
            "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>"
        );
        let _ = writeln!(
            s,
            "<text x=\"{l}\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{}</text>",
            escape(title)
        );
        // Axes.
        let _ = writeln!(
            s,
            "<g stroke=\"#333\" stroke-width=\"1\"><line x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\"/><line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{b}\"/></g>"
        );
        // Latency ticks and grid.
        let y_max = self.y_max();
        let step = nice_step(y_max, 5.0);
        let mut v = 0.0;
        while v <= y_max + step / 2.0 {
            let (_, y) = self.xy(self.from_ms, v);
            let _ = writeln!(
                s,
                "<line x1=\"{l}\" y1=\"{y:.1}\" x2=\"{r}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>",
                l - 6.0,
                y + 4.0
            );
            v += step;
        }
        // Time ticks, on round minutes.
        let span_min = ((self.to_ms - self.from_ms) / 60_000).max(1) as f64;
        let step_ms = (nice_step(span_min, 8.0).max(1.0) as i64) * 60_000;
        let mut at = self.from_ms.div_euclid(step_ms) * step_ms;
        while at <= self.to_ms {
            if at >= self.from_ms {
                let (x, _) = self.xy(at, 0.0);
                let _ = writeln!(
                    s,
                    "<line x1=\"{x:.1}\" y1=\"{b}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#333\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                    b + 4.0,
                    b + 16.0,
                    hhmm(at)
                );
            }
            at += step_ms;
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time (UTC)</text>",
            (l + r) / 2.0,
            b + 34.0
        );
        let _ = writeln!(
            s,
            "<text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1})\">round trip (connect) p50, ms</text>",
            (t + b) / 2.0,
            (t + b) / 2.0
        );
        // Moments.
        // Labels step down so moments close together (onset and detection) stay legible.
        for (i, m) in self.marks.iter().enumerate() {
            let (x, _) = self.xy(m.at_ms, 0.0);
            let _ = writeln!(
                s,
                "<line class=\"mark\" x1=\"{x:.1}\" y1=\"{t}\" x2=\"{x:.1}\" y2=\"{b}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
                x + 3.0,
                t + 10.0 + 12.0 * i as f64,
                escape(&m.label)
            );
        }
        // Lines and legend.
        let (mut hot, mut cold) = (0, 0);
        for (i, series) in self.series.iter().enumerate() {
            let (colour, width) = if series.affected {
                hot += 1;
                (AFFECTED[(hot - 1) % AFFECTED.len()], 2.5)
            } else {
                cold += 1;
                (HEALTHY[(cold - 1) % HEALTHY.len()], 1.2)
            };
            for run in runs(&series.points) {
                let pts: Vec<String> = run
                    .iter()
                    .map(|&(at, ms)| {
                        let (x, y) = self.xy(at, ms);
                        format!("{x:.1},{y:.1}")
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "<polyline class=\"series\" data-region=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\" points=\"{}\"/>",
                    escape(&series.region),
                    pts.join(" ")
                );
            }
            let ly = t + 8.0 + 18.0 * i as f64;
            let what = if series.affected {
                "affected"
            } else {
                "healthy"
            };
            let _ = writeln!(
                s,
                "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"{width}\"/><text x=\"{:.1}\" y=\"{:.1}\">{} ({what})</text>",
                r + 12.0,
                r + 32.0,
                r + 38.0,
                ly + 4.0,
                escape(&series.name)
            );
        }
        if self.series.is_empty() {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no round-trip data stored for this window</text>",
                (l + r) / 2.0,
                (t + b) / 2.0
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// The points split wherever more than two minutes pass without one.
fn runs(points: &[(i64, f64)]) -> Vec<&[(i64, f64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || points[i].0 - points[i - 1].0 > 120_000 {
            out.push(&points[start..i]);
            start = i;
        }
    }
    out.retain(|r| !r.is_empty());
    out
}
