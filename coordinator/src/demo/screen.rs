//! What the demo prints, for a person watching: the periodic per-region status line, each
//! incident transition the coordinator stored (with its class, scope, explanation and times),
//! and the verdict. Pure formatting over what the store holds; times are shown as `+m:ss` from
//! the start of the live phase.
//!
//! Deliberately absent: deciding anything. Incidents are the coordinator's own records, read
//! back from its store; the status line summarises the results it stored.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use meridian_shared::result::CheckResult;

use crate::store::incidents::IncidentRecord;

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
    fn numbers_read_well() {
        assert_eq!(stamp(125_999, 0), "+2:05");
        assert_eq!(stamp(0, 5_000), "-0:05");
        assert_eq!(count(100_800), "100,800");
        assert_eq!(count(7), "7");
        assert_eq!(count(1_000_000), "1,000,000");
    }
}
