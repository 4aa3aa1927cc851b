//! What the demo prints, for a person watching: the periodic per-region status line, each
//! incident transition the coordinator stored (with its class, scope, explanation and times),
//! the member message a community manager would be handed at confirmation and resolution
//! ([`crate::drafts`]), and the verdict. Pure formatting over what the store holds; times are shown as `+m:ss` from
//! the start of the live phase.
//!
//! Deliberately absent: deciding anything. Incidents are the coordinator's own records, read
//! back from its store; the status line summarises the results it stored.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use meridian_shared::regions::Catalog;
use meridian_shared::result::CheckResult;

use crate::config::CoordinatorConfig;
use crate::drafts::{Cadence, Names, Stage, Templates};
use crate::store::incidents::IncidentRecord;

/// Width the member drafts are wrapped to, indent included.
const DRAFT_WIDTH: usize = 96;

/// Width of one region's column in the status line.
const COLUMN: usize = 13;

/// `+m:ss` for `at_ms`, relative to `zero_ms` (`-m:ss` before it).
pub fn stamp(at_ms: i64, zero_ms: i64) -> String {
    let d = at_ms - zero_ms;
    let sign = if d < 0 { '-' } else { '+' };
    let s = d.unsigned_abs() / 1000;
    format!("{sign}{}:{:02}", s / 60, s % 60)
}

/// Seconds with one decimal, from ms.
pub fn secs(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// A count with thousands separators.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The status table's heading: one column per region, a line every `every_s` seconds.
pub fn status_heading(every_s: u64, regions: &[&str], targets: &[&str]) -> String {
    let mut out = format!(
        "  every {every_s} s, per region: probes reporting, median TCP connect in ms to {} \
         (* in an open incident)\n  {:<7}",
        targets.join(" | "),
        "time"
    );
    for r in regions {
        let _ = write!(out, "{r:<COLUMN$}");
    }
    out.trim_end().to_string()
}

/// One status line from the scheduled results stored over the last period: per region, how
/// many of its probes reported and the median connect time to each target, and a `*` on the
/// regions in an open incident.
pub fn status_line(
    stamp: &str,
    regions: &[&str],
    probes_per_region: usize,
    targets: &[&str],
    results: &[CheckResult],
    open: &[IncidentRecord],
) -> String {
    let mut out = format!("  {stamp:<7}");
    for region in regions {
        let mine: Vec<&CheckResult> = results.iter().filter(|r| r.region == *region).collect();
        let mut probes: Vec<&str> = mine.iter().map(|r| r.probe_id.as_str()).collect();
        probes.sort_unstable();
        probes.dedup();
        let medians: Vec<String> = targets
            .iter()
            .map(|t| {
                let mut ms: Vec<f64> = mine
                    .iter()
                    .filter(|r| r.check_id.as_str() == *t)
                    .filter_map(|r| r.phases.connect)
                    .map(|us| us as f64 / 1000.0)
                    .collect();
                median(&mut ms).map_or_else(|| "-".to_string(), |m| format!("{m:.0}"))
            })
            .collect();
        let open_here = open
            .iter()
            .any(|i| i.state.is_open() && i.regions.iter().any(|r| r == region));
        let flag = if open_here { "*" } else { "" };
        let cell = format!(
            "{}/{probes_per_region} {}{flag}",
            probes.len(),
            medians.join("|")
        );
        let _ = write!(out, "{cell:<COLUMN$}");
    }
    out.trim_end().to_string()
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// What has been printed about one incident.
#[derive(Debug, Clone, Default, PartialEq)]
struct Shown {
    detected: bool,
    paged: bool,
    resolved_ms: Option<i64>,
    scope: (String, Vec<String>, Vec<String>),
    /// The explanation when it was first confirmed.
    explanation: String,
}

/// Turns the stored incidents, polled again and again, into one line per transition.
#[derive(Debug, Default)]
pub struct IncidentFeed {
    /// By incident id.
    shown: BTreeMap<u64, Shown>,
    /// Prints each site incident's member draft when set.
    drafter: Option<Drafter>,
}

/// What the feed needs to draft member messages as the coordinator it watches would.
#[derive(Debug)]
pub struct Drafter {
    templates: Templates,
    catalog: Catalog,
    services: HashMap<String, String>,
    cadence: Cadence,
}

impl Drafter {
    /// Drafts with `config`'s wording, target names and cadence.
    pub fn new(
        config: &CoordinatorConfig,
    ) -> Result<Drafter, meridian_shared::config::ConfigError> {
        let names = Names::new(&config.catalog, &config.targets);
        Ok(Drafter {
            templates: Templates::load(config.drafts.templates.as_deref())?,
            services: names.services,
            catalog: config.catalog.clone(),
            cadence: config.drafts.cadence,
        })
    }

    /// `r`'s draft at `stage` written at `at_ms`, indented and wrapped, or nothing for a
    /// monitoring-network state.
    fn lines(&self, r: &IncidentRecord, stage: Stage, at_ms: i64) -> Option<String> {
        let names = Names {
            catalog: &self.catalog,
            services: self.services.clone(),
            networks: HashMap::new(),
        };
        let draft = match self.templates.draft(r, &names, stage, at_ms, self.cadence) {
            Ok(Some(d)) => d,
            Ok(None) => return None,
            Err(e) => return Some(format!("           (no member draft: {e})")),
        };
        let mut out =
            format!("           member draft ({stage}), for a community manager to approve:");
        for paragraph in std::iter::once(draft.title.as_str()).chain(draft.body.split("\n\n")) {
            for line in wrap(paragraph, DRAFT_WIDTH - "             | ".len()) {
                let _ = write!(out, "\n             | {line}");
            }
        }
        Some(out)
    }
}

/// `text`'s words in lines of at most `width` characters (a longer word gets its own line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// When the scripted fault was in force, for the times printed beside incidents.
#[derive(Debug, Clone, Copy)]
pub struct Script {
    /// Start of the live phase, Unix ms (`+0:00`).
    pub zero_ms: i64,
    /// The cut, Unix ms.
    pub cut_ms: i64,
    /// The repair, Unix ms.
    pub heal_ms: i64,
}

impl IncidentFeed {
    /// A feed that also prints each site incident's member draft: `identified` when it is
    /// confirmed, `resolved` when it resolves.
    pub fn with_drafts(drafter: Drafter) -> IncidentFeed {
        IncidentFeed {
            shown: BTreeMap::new(),
            drafter: Some(drafter),
        }
    }

    /// An incident's explanation as it read when it was first confirmed (the stored one is
    /// the latest confirmation's).
    pub fn first_explanation(&self, id: u64) -> Option<&str> {
        self.shown.get(&id).map(|s| s.explanation.as_str())
    }

    /// The lines for whatever changed in `records` since the last call, in time order.
    pub fn update(&mut self, records: &[IncidentRecord], script: &Script) -> Vec<String> {
        let mut lines: Vec<(i64, String)> = Vec::new();
        for r in records {
            let shown = self.shown.entry(r.id).or_default();
            let scope = (r.class.clone(), r.regions.clone(), r.targets.clone());
            let at = |ms: i64| stamp(ms, script.zero_ms);
            if !shown.detected {
                // Time to detect from the real cut when it came after it; otherwise from the
                // onset the engine estimated.
                let ttd = if r.detected_ms >= script.cut_ms {
                    format!("TTD {} from the cut", secs(r.detected_ms - script.cut_ms))
                } else {
                    format!("TTD {} from its estimated onset", secs(r.ttd_ms))
                };
                lines.push((
                    r.detected_ms,
                    format!(
                        "  {:<7}incident #{} confirmed: {}, {ttd}\n           {}",
                        at(r.detected_ms),
                        r.id,
                        describe(r),
                        r.explanation
                    ),
                ));
                if let Some(draft) = self
                    .drafter
                    .as_ref()
                    .and_then(|d| d.lines(r, Stage::Identified, r.detected_ms))
                {
                    lines.push((r.detected_ms, draft));
                }
                shown.detected = true;
                shown.explanation.clone_from(&r.explanation);
            } else if shown.scope != scope {
                lines.push((
                    r.updated_ms,
                    format!(
                        "  {:<7}incident #{} updated: {}\n           {}",
                        at(r.updated_ms),
                        r.id,
                        describe(r),
                        r.explanation
                    ),
                ));
            }
            shown.scope = scope;
            if let Some(paged) = r.paged_ms
                && !shown.paged
            {
                lines.push((
                    paged,
                    format!(
                        "  {:<7}incident #{} paged the on-call ({})",
                        at(paged),
                        r.id,
                        r.severity
                    ),
                ));
                shown.paged = true;
            }
            if r.resolved_ms != shown.resolved_ms {
                match r.resolved_ms {
                    Some(resolved) => {
                        let after = if resolved >= script.heal_ms {
                            format!(", TTR {} from the repair", secs(resolved - script.heal_ms))
                        } else {
                            String::new()
                        };
                        lines.push((
                            resolved,
                            format!("  {:<7}incident #{} resolved{after}", at(resolved), r.id),
                        ));
                        if let Some(draft) = self
                            .drafter
                            .as_ref()
                            .and_then(|d| d.lines(r, Stage::Resolved, resolved))
                        {
                            lines.push((resolved, draft));
                        }
                    }
                    None => lines.push((
                        r.updated_ms,
                        format!("  {:<7}incident #{} re-opened", at(r.updated_ms), r.id),
                    )),
                }
                shown.resolved_ms = r.resolved_ms;
            }
        }
        lines.sort_by_key(|(t, _)| *t);
        lines.into_iter().map(|(_, l)| l).collect()
    }
}

/// `regional-network in me-south (api, www)`.
pub fn describe(r: &IncidentRecord) -> String {
    let mut out = r.class.clone();
    if !r.regions.is_empty() {
        let _ = write!(out, " in {}", r.regions.join(", "));
    }
    if let Some(probe) = &r.probe {
        let _ = write!(out, " (probe {probe})");
    }
    if !r.targets.is_empty() {
        let _ = write!(out, " ({})", r.targets.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::incidents::StoredState;

    fn record(state: StoredState, paged: Option<i64>, resolved: Option<i64>) -> IncidentRecord {
        IncidentRecord {
            id: 1,
            class: "regional-network".into(),
            state,
            severity: "page".into(),
            regions: vec!["me-south".into()],
            targets: vec!["api".into(), "www".into()],
            asns: Vec::new(),
            probe: None,
            edge: None,
            onset_ms: 121_000,
            detected_ms: 129_000,
            ttd_ms: 8_000,
            paged_ms: paged,
            resolved_ms: resolved,
            explanation: "5 of 5 probes in me-south: connect +180 ms".into(),
            evidence: Vec::new(),
            timeline: Vec::new(),
            updated_ms: 130_000,
            maintenance: Default::default(),
        }
    }

    #[test]
    fn each_transition_is_printed_once_with_its_times() {
        let script = Script {
            zero_ms: 0,
            cut_ms: 120_000,
            heal_ms: 240_000,
        };
        let mut feed = IncidentFeed::default();
        let lines = feed.update(&[record(StoredState::Paged, Some(130_000), None)], &script);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("+2:09"), "{lines:?}");
        assert!(
            lines[0].contains("regional-network in me-south (api, www), TTD 9.0 s from the cut"),
            "{lines:?}"
        );
        assert!(lines[0].contains("connect +180 ms"));
        assert!(lines[1].contains("paged"));
        let again = feed.update(&[record(StoredState::Paged, Some(130_000), None)], &script);
        assert!(again.is_empty(), "{again:?}");
        let done = feed.update(
            &[record(StoredState::Resolved, Some(130_000), Some(244_500))],
            &script,
        );
        assert_eq!(done.len(), 1);
        assert!(done[0].contains("+4:04"), "{done:?}");
        assert!(
            done[0].contains("resolved, TTR 4.5 s from the repair"),
            "{done:?}"
        );
        assert_eq!(
            feed.first_explanation(1),
            Some("5 of 5 probes in me-south: connect +180 ms")
        );
    }

    #[test]
    fn a_site_incident_comes_with_its_member_draft_and_a_probe_fault_without() {
        let script = Script {
            zero_ms: 0,
            cut_ms: 120_000,
            heal_ms: 240_000,
        };
        let text = crate::demo::world::config_text(
            std::path::Path::new("/tmp/d"),
            std::time::Duration::from_secs(2),
        )
        .expect("utf-8 path");
        let src = meridian_shared::config::SourceFile::new("demo.toml", text);
        let config = CoordinatorConfig::from_source(&src, std::path::Path::new("/tmp"))
            .expect("the demo's config is valid");
        let mut feed = IncidentFeed::with_drafts(Drafter::new(&config).expect("built-in wording"));
        let mut cut = record(StoredState::Paged, Some(130_000), None);
        cut.targets = vec!["www".into()];
        let lines = feed.update(&[cut.clone()], &script);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[1].starts_with(
                "           member draft (identified), for a community manager to approve:"
            ),
            "{lines:#?}"
        );
        assert!(
            lines[1].contains("| Slow pages for members in the Middle East"),
            "{lines:#?}"
        );
        assert!(lines[1].contains("Example site"), "{lines:#?}");
        assert!(
            lines[1].lines().all(|l| l.chars().count() <= DRAFT_WIDTH),
            "{lines:#?}"
        );
        cut.state = StoredState::Resolved;
        cut.resolved_ms = Some(244_500);
        let done = feed.update(&[cut], &script);
        assert_eq!(done.len(), 2, "{done:#?}");
        assert!(
            done[1].starts_with("           member draft (resolved)"),
            "{done:#?}"
        );

        let mut fault = record(StoredState::Confirmed, None, None);
        fault.id = 2;
        fault.class = "probe-fault".into();
        let lines = feed.update(&[fault], &script);
        assert_eq!(lines.len(), 1, "no draft for a probe fault: {lines:#?}");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(stamp(125_999, 0), "+2:05");
        assert_eq!(stamp(0, 5_000), "-0:05");
        assert_eq!(count(100_800), "100,800");
        assert_eq!(count(7), "7");
        assert_eq!(count(1_000_000), "1,000,000");
    }
}
