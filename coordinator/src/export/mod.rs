//! Post-mortems and trends: `coordinator incident export` and `coordinator trends`, and the
//! API's `/api/v1/trends`.
//!
//! - [`PostMortem`]: one stored incident as a post-mortem: key moments and the merged timeline
//!   (detection's history with the member messages' drafting, approval and publication),
//!   time to detect, communicate and resolve, the affected regions by their member-facing
//!   names, the evidence, the explanation and a latency [`chart::Chart`] from the rollups.
//!   [`PostMortem::markdown`] renders it; its `Serialize` form is the JSON export.
//! - [`trends`]: those durations per month and class over every stored incident.
//!
//! Reading the store happens in [`PostMortem::gather`] (or [`PostMortem::gather_observed`],
//! which reports each region read to a callback: the CLI's progress bar) and
//! [`gather_trends`] only; rendering and statistics are pure. Nothing here writes the store or
//! reads the clock: `now` is an argument (the chart of an open incident ends 30 minutes after
//! it).

pub mod chart;
pub mod trends;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use meridian_shared::regions::Catalog;
use serde::Serialize;

use crate::store::incidents::{EvidenceRecord, IncidentRecord};
use crate::store::messages::MessageRecord;
use crate::store::notes::NoteRecord;
use crate::store::{Store, StoreError};
use chart::{Chart, Mark, Series};

/// How far the chart reaches before onset and after resolution (or now), ms.
pub const CHART_MARGIN_MS: i64 = 30 * 60_000;
/// At most this many healthy regions are drawn for comparison: those with the most samples.
pub const HEALTHY_REGIONS: usize = 3;

/// Detection's timeline with the messages' moments and people's notes, oldest first (stable:
/// equal times keep detection's lines before the messages', and those before the notes).
/// Shared by the incident page, the API and exports.
pub fn merged_timeline(
    record: &IncidentRecord,
    messages: &[MessageRecord],
    notes: &[NoteRecord],
) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = record
        .timeline
        .iter()
        .map(|t| (t.at_ms, t.what.clone()))
        .collect();
    for m in messages {
        out.push((
            m.drafted_ms,
            format!("{} message drafted: \"{}\"", m.stage, m.title),
        ));
        if let (Some(at), Some(by)) = (m.approved_ms, &m.approved_by) {
            out.push((at, format!("{} message approved by {by}", m.stage)));
        }
        if let (Some(at), Some(by)) = (m.published_ms, &m.published_by) {
            out.push((
                at,
                format!(
                    "{} message published to members by {by}: \"{}\"",
                    m.stage, m.title
                ),
            ));
        }
    }
    for n in notes {
        out.push((n.at_ms, note_line(n)));
    }
    out.sort_by_key(|(at, _)| *at);
    out
}

/// A note as a timeline line.
fn note_line(n: &NoteRecord) -> String {
    format!("note by {}: {}", n.author, n.text)
}

/// How far [`PostMortem::gather_observed`] has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading<'a> {
    /// Regions whose rollups are read, this one included.
    pub done: usize,
    /// Regions to read: the affected ones and every other catalog region.
    pub total: usize,
    /// The region just read.
    pub region: &'a str,
}

/// One line of the post-mortem's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// When, Unix ms.
    pub at_ms: i64,
    /// `milestone` (onset, detection, page, first publication, resolution), `detection` (a
    /// line of detection's history), `message` (a member message's drafting, approval or
    /// publication) or `note` (a person's note).
    pub kind: &'static str,
    /// What happened.
    pub what: String,
}

/// An affected region, by id and by the name members know.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionName {
    /// Catalog id.
    pub id: String,
    /// Member-facing name (the id when the catalog does not know it).
    pub name: String,
}

/// One incident as a post-mortem: the JSON export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostMortem {
    /// The incident as stored.
    pub incident: IncidentRecord,
    /// Time to detect: onset to confirmation, ms.
    pub ttd_ms: i64,
    /// Time to communicate: onset to the first published member message, ms.
    pub ttc_ms: Option<i64>,
    /// Time to resolve: onset to resolution, ms.
    pub ttr_ms: Option<i64>,
    /// The affected regions.
    pub regions: Vec<RegionName>,
    /// Milestones and the merged timeline, oldest first.
    pub timeline: Vec<Line>,
    /// The member messages.
    pub messages: Vec<MessageRecord>,
    /// People's notes, by the moment they are about.
    pub notes: Vec<NoteRecord>,
    /// The round-trip chart's data.
    pub chart: Chart,
}

impl PostMortem {
    /// Incident `id` from `store`, or `None` when there is none; region names from `catalog`,
    /// the chart's end (for an open incident) from `now_ms`.
    pub fn gather(
        store: &Store,
        id: u64,
        catalog: &Catalog,
        now_ms: i64,
    ) -> Result<Option<PostMortem>, StoreError> {
        PostMortem::gather_observed(store, id, catalog, now_ms, |_| {})
    }

    /// [`PostMortem::gather`], calling `progress` after each region's rollups are read (the
    /// long part of an export: one query per catalog region, for the chart's comparison).
    pub fn gather_observed(
        store: &Store,
        id: u64,
        catalog: &Catalog,
        now_ms: i64,
        mut progress: impl FnMut(Reading<'_>),
    ) -> Result<Option<PostMortem>, StoreError> {
        let Some(incident) = store.incident(id)? else {
            return Ok(None);
        };
        let healthy_candidates = catalog
            .regions()
            .iter()
            .filter(|r| !incident.regions.iter().any(|a| a == r.id.as_str()))
            .count();
        let total = incident.regions.len() + healthy_candidates;
        let mut done = 0;
        let mut read = |region: &str| {
            done += 1;
            progress(Reading {
                done,
                total,
                region,
            });
        };
        let messages = store.messages(Some(id))?;
        let notes = store.notes(id)?;
        let name = |r: &str| {
            catalog
                .by_id(r)
                .map_or_else(|| r.to_string(), |c| c.name.clone())
        };
        let from_ms = incident.onset_ms - CHART_MARGIN_MS;
        let to_ms = incident
            .resolved_ms
            .unwrap_or(now_ms)
            .max(incident.detected_ms)
            + CHART_MARGIN_MS;
        let p50 = |rows: Vec<crate::store::rollup::MinuteSummary>| -> Vec<(i64, f64)> {
            rows.iter()
                .map(|m| (m.minute_ms, m.p50_us / 1000.0))
                .collect()
        };
        let mut series = Vec::new();
        for r in &incident.regions {
            let rows =
                store.rollup_region(&incident.targets, r, "connect", from_ms, to_ms, true)?;
            read(r.as_str());
            series.push(Series {
                region: r.clone(),
                name: name(r),
                affected: true,
                points: p50(rows),
            });
        }
        let mut healthy = Vec::new();
        for region in catalog.regions() {
            let r = region.id.as_str();
            if incident.regions.iter().any(|a| a == r) {
                continue;
            }
            let rows =
                store.rollup_region(&incident.targets, r, "connect", from_ms, to_ms, true)?;
            read(r);
            let samples: u64 = rows.iter().map(|m| m.count).sum();
            if samples > 0 {
                healthy.push((samples, r.to_string(), rows));
            }
        }
        healthy.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, r, rows) in healthy.into_iter().take(HEALTHY_REGIONS) {
            series.push(Series {
                name: name(&r),
                region: r,
                affected: false,
                points: p50(rows),
            });
        }
        let mut marks = vec![
            Mark {
                at_ms: incident.onset_ms,
                label: "onset".into(),
            },
            Mark {
                at_ms: incident.detected_ms,
                label: "detected".into(),
            },
        ];
        if let Some(at) = incident.resolved_ms {
            marks.push(Mark {
                at_ms: at,
                label: "resolved".into(),
            });
        }
        let chart = Chart {
            from_ms,
            to_ms,
            phase: "connect".into(),
            series,
            marks,
        };
        let regions = incident
            .regions
            .iter()
            .map(|r| RegionName {
                id: r.clone(),
                name: name(r),
            })
            .collect();
        Ok(Some(PostMortem::new(
            incident, messages, notes, regions, chart,
        )))
    }

    /// The post-mortem of `incident` with its `messages` and `notes`, already named `regions`
    /// and `chart` (pure: what [`PostMortem::gather`] ends with, and what tests build).
    pub fn new(
        incident: IncidentRecord,
        messages: Vec<MessageRecord>,
        notes: Vec<NoteRecord>,
        regions: Vec<RegionName>,
        chart: Chart,
    ) -> PostMortem {
        let first_published = messages.iter().filter_map(|m| m.published_ms).min();
        let mut timeline = vec![
            Line {
                at_ms: incident.onset_ms,
                kind: "milestone",
                what: "onset (estimated start)".into(),
            },
            Line {
                at_ms: incident.detected_ms,
                kind: "milestone",
                what: "detected: confirmed by a quorum of probes".into(),
            },
        ];
        if let Some(at) = incident.paged_ms {
            timeline.push(Line {
                at_ms: at,
                kind: "milestone",
                what: "SRE paged".into(),
            });
        }
        if let Some(at) = first_published {
            timeline.push(Line {
                at_ms: at,
                kind: "milestone",
                what: "first member message published".into(),
            });
        }
        if let Some(at) = incident.resolved_ms {
            timeline.push(Line {
                at_ms: at,
                kind: "milestone",
                what: "resolved".into(),
            });
        }
        let detection_lines = incident.timeline.len();
        timeline.extend(
            merged_timeline(&incident, &messages, &notes)
                .into_iter()
                .map(|(at_ms, what)| {
                    let from_detection = incident
                        .timeline
                        .iter()
                        .take(detection_lines)
                        .any(|t| t.at_ms == at_ms && t.what == what);
                    let from_note = notes
                        .iter()
                        .any(|n| n.at_ms == at_ms && note_line(n) == what);
                    Line {
                        at_ms,
                        kind: if from_detection {
                            "detection"
                        } else if from_note {
                            "note"
                        } else {
                            "message"
                        },
                        what,
                    }
                }),
        );
        // Stable: at equal times the milestone comes first.
        timeline.sort_by_key(|l| l.at_ms);
        PostMortem {
            ttd_ms: incident.ttd_ms,
            ttc_ms: first_published.map(|p| p - incident.onset_ms),
            ttr_ms: incident.resolved_ms.map(|r| r - incident.onset_ms),
            incident,
            regions,
            timeline,
            messages,
            notes,
            chart,
        }
    }

    /// The chart as SVG.
    pub fn svg(&self) -> String {
        self.chart.svg(&format!(
            "Incident {} ({}): round trip per minute, p50",
            self.incident.id, self.incident.class
        ))
    }

    /// The post-mortem as Markdown; `chart_link` is where the SVG was written (relative to
    /// the Markdown file, ideally), or `None` when it was not.
    pub fn markdown(&self, chart_link: Option<&str>) -> String {
        use std::fmt::Write as _;
        let i = &self.incident;
        let mut out = format!("# Post-mortem: incident {} ({})\n\n", i.id, i.class);
        let names: Vec<String> = self
            .regions
            .iter()
            .map(|r| format!("{} (`{}`)", r.name, r.id))
            .collect();
        let _ = writeln!(out, "- **State:** {} ({})", i.state.as_str(), i.severity);
        let _ = writeln!(
            out,
            "- **Affected regions:** {}",
            if names.is_empty() {
                "-".to_string()
            } else {
                names.join(", ")
            }
        );
        let _ = writeln!(out, "- **Targets:** {}", list(&i.targets));
        if !i.asns.is_empty() {
            let asns: Vec<String> = i.asns.iter().map(|a| format!("AS{a}")).collect();
            let _ = writeln!(out, "- **Networks:** {}", asns.join(", "));
        }
        let _ = writeln!(out, "- **Time to detect:** {}", duration(Some(self.ttd_ms)));
        let _ = writeln!(
            out,
            "- **Time to communicate:** {}",
            match self.ttc_ms {
                Some(_) => duration(self.ttc_ms),
                None => "no member message published".into(),
            }
        );
        let _ = writeln!(
            out,
            "- **Time to resolve:** {}",
            match self.ttr_ms {
                Some(_) => duration(self.ttr_ms),
                None => "not resolved".into(),
            }
        );
        let _ = writeln!(out, "\n## Explanation\n\n{}\n", i.explanation);
        out.push_str("## Timeline (UTC)\n\n| time | | event |\n|---|---|---|\n");
        for l in &self.timeline {
            let what = if l.kind == "milestone" {
                format!("**{}**", cell(&l.what))
            } else {
                cell(&l.what)
            };
            let _ = writeln!(out, "| {} | {} | {what} |", utc(l.at_ms), l.kind);
        }
        out.push_str("\n## Evidence\n\n");
        if i.evidence.is_empty() {
            out.push_str("No per-region evidence was recorded.\n");
        } else {
            out.push_str("| region | probes | affected | round trip (base → change) | TLS (base → change) | server time (base → change) | failures |\n|---|---|---|---|---|---|---|\n");
            for e in &i.evidence {
                let _ = writeln!(out, "{}", evidence_row(e, &self.regions));
            }
        }
        out.push_str("\n## Round-trip latency\n\n");
        match chart_link {
            Some(link) => {
                let _ = writeln!(
                    out,
                    "![Round trip (connect) p50 per minute, affected and healthy regions]({link})\n"
                );
            }
            None => out.push_str("(No chart written: give `--chart FILE.svg`.)\n\n"),
        }
        for s in &self.chart.series {
            let peak = s.points.iter().map(|p| p.1).fold(f64::NAN, f64::max);
            let _ = writeln!(
                out,
                "- {} ({}): {} minutes, peak p50 {}",
                s.name,
                if s.affected { "affected" } else { "healthy" },
                s.points.len(),
                if peak.is_nan() {
                    "-".to_string()
                } else {
                    format!("{peak:.1} ms")
                }
            );
        }
        out
    }
}

/// A table cell: pipes escaped, one line.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

fn evidence_row(e: &EvidenceRecord, names: &[RegionName]) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    let pair = |base: Option<f64>, delta: Option<f64>| match (base, delta) {
        (None, None) => "-".to_string(),
        (b, Some(d)) => format!("{} → {:+.1} ms", ms(b), d),
        (b, None) => ms(b),
    };
    let region = names
        .iter()
        .find(|n| n.id == e.region)
        .map_or_else(|| e.region.clone(), |n| format!("{} (`{}`)", n.name, n.id));
    let failures = match &e.failure_class {
        Some(class) if e.failures > 0 => format!("{} ({class})", e.failures),
        _ => e.failures.to_string(),
    };
    format!(
        "| {} | {} | {} | {} | {} | {} | {} |",
        cell(&region),
        e.probes,
        e.affected,
        pair(e.connect_base_ms, e.connect_delta_ms),
        pair(e.tls_base_ms, e.tls_delta_ms),
        pair(e.server_base_ms, e.server_delta_ms),
        cell(&failures)
    )
}

/// `2026-03-01 12:00:05` (UTC).
pub fn utc(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A duration as people say it (`42.3 s`, `3 min 12 s`), `-` when absent.
pub fn duration(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "-".into();
    };
    let sign = if ms < 0 { "−" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < 60_000 {
        format!("{sign}{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{sign}{} min {} s", ms / 60_000, ms % 60_000 / 1000)
    } else {
        format!("{sign}{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000)
    }
}

/// Every stored incident's trends from `since` on.
pub fn gather_trends(
    store: &Store,
    since: Option<trends::Month>,
) -> Result<trends::Trends, StoreError> {
    let incidents = store.incidents(false)?;
    let mut first_published: BTreeMap<u64, i64> = BTreeMap::new();
    for m in store.messages(None)? {
        if let Some(p) = m.published_ms {
            first_published
                .entry(m.incident)
                .and_modify(|t| *t = (*t).min(p))
                .or_insert(p);
        }
    }
    Ok(trends::trends(&incidents, &first_published, since))
}
