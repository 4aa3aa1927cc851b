//! Scoring: which incidents meet which expectations, by the Matching rules of `SCENARIOS.md`.
//!
//! An expectation is met by one incident of its class whose scope matches (regions, targets,
//! probe — each only when given), detected no earlier than the onset and within
//! `detect_within` of it, resolved within `resolve_within` of the end of the last matching
//! fault when that is given (and not before that end: resolving while the fault is still in
//! force is flapping, not recovery), and paged or not as `page` says. Onset: the earliest `at`
//! among the faults whose regions (or probe) intersect the expectation's scope; with no scope,
//! or no such fault, the earliest fault.
//!
//! Each incident meets at most one expectation. The assignment is a maximum bipartite matching
//! (augmenting paths, Kuhn's algorithm), not a greedy pass: when one incident could meet either
//! of two expectations and another only the first, both are met. Expectations are tried in file
//! order and incidents in detection order, so the assignment is deterministic.
//!
//! Incidents resolved before the end of warm-up are ignored (baselines were still forming);
//! every other incident that meets no expectation is false, except probe-fault, clock-skew and
//! region-silent ones unless `[score] strict_ops = true`.

use std::collections::BTreeSet;

use meridian_shared::regions::RegionId;

use super::duration;
use super::scenario::{Expect, Fault, Scenario};
use crate::detect::Incident;

/// The verdict on one expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The incident that meets it, if one does.
    pub incident: Option<u64>,
    /// Onset, ms after the end of warm-up.
    pub onset_ms: i64,
    /// End of the last matching fault, ms after the end of warm-up (none without faults).
    pub fault_end_ms: Option<i64>,
    /// Detection minus onset, ms, when met.
    pub ttd_ms: Option<i64>,
    /// Resolution minus the fault's end, ms, when met and resolved.
    pub ttr_ms: Option<i64>,
    /// Why it is not met, in words.
    pub why_not: Option<String>,
}

impl Verdict {
    /// Whether an incident meets it.
    pub fn met(&self) -> bool {
        self.incident.is_some()
    }
}

/// The score of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scorecard {
    /// Ids of the incidents scored (not resolved before the end of warm-up), detection order.
    pub scored: Vec<u64>,
    /// One verdict per expectation, in file order.
    pub verdicts: Vec<Verdict>,
    /// Ids of the incidents that count as false.
    pub false_incidents: Vec<u64>,
    /// Every expectation met and no more false incidents than allowed.
    pub passed: bool,
}

/// Scores `incidents` against `scenario`; `start_ms` is the end of warm-up (Unix ms) and
/// `edge_regions` names the regions an edge serves.
pub fn score(
    scenario: &Scenario,
    start_ms: i64,
    edge_regions: &dyn Fn(&str) -> Vec<RegionId>,
    incidents: &[Incident],
) -> Scorecard {
    let scored: Vec<&Incident> = incidents
        .iter()
        .filter(|i| i.resolved_ms.is_none_or(|r| r >= start_ms))
        .collect();
    let windows: Vec<(i64, Option<i64>)> = scenario
        .expects
        .iter()
        .map(|e| window(e, &scenario.faults, edge_regions))
        .collect();
    // candidates[e] = indices into `scored` that could meet expectation e, with their times.
    let candidates: Vec<Vec<usize>> = (scenario.expects.iter().zip(&windows))
        .map(|(e, &(onset, end))| {
            (0..scored.len())
                .filter(|&i| {
                    check(e, start_ms + onset, end.map(|x| start_ms + x), scored[i]).is_ok()
                })
                .collect()
        })
        .collect();
    let owner = match_all(&candidates, scored.len());

    let verdicts = scenario
        .expects
        .iter()
        .enumerate()
        .map(|(ei, e)| {
            let (onset_ms, fault_end_ms) = windows[ei];
            let chosen = owner.iter().position(|o| *o == Some(ei));
            match chosen {
                Some(i) => {
                    let inc = scored[i];
                    Verdict {
                        incident: Some(inc.id),
                        onset_ms,
                        fault_end_ms,
                        ttd_ms: Some(inc.detected_ms - (start_ms + onset_ms)),
                        ttr_ms: inc
                            .resolved_ms
                            .zip(fault_end_ms)
                            .map(|(r, end)| r - (start_ms + end)),
                        why_not: None,
                    }
                }
                None => Verdict {
                    incident: None,
                    onset_ms,
                    fault_end_ms,
                    ttd_ms: None,
                    ttr_ms: None,
                    why_not: Some(why_not(
                        e,
                        &candidates[ei],
                        &scored,
                        start_ms,
                        (onset_ms, fault_end_ms),
                    )),
                },
            }
        })
        .collect::<Vec<_>>();

    let false_incidents: Vec<u64> = (0..scored.len())
        .filter(|&i| owner[i].is_none())
        .filter(|&i| scenario.score.strict_ops || !scored[i].class.is_operational())
        .map(|i| scored[i].id)
        .collect();
    let false_pages = (0..scored.len())
        .filter(|&i| owner[i].is_none() && scored[i].paged_ms.is_some())
        .count();
    let passed = verdicts.iter().all(Verdict::met)
        && false_incidents.len() <= scenario.score.max_false_incidents
        && scenario
            .score
            .max_false_pages
            .is_none_or(|max| false_pages <= max);
    Scorecard {
        scored: scored.iter().map(|i| i.id).collect(),
        verdicts,
        false_incidents,
        passed,
    }
}

/// Onset and end of the last matching fault, ms after the end of warm-up.
pub fn window(
    e: &Expect,
    faults: &[Fault],
    edge_regions: &dyn Fn(&str) -> Vec<RegionId>,
) -> (i64, Option<i64>) {
    let scoped = e.regions.is_some() || e.probe.is_some();
    let touching: Vec<&Fault> = faults
        .iter()
        .filter(|f| scoped && intersects(e, f, edge_regions))
        .collect();
    let relevant: Vec<&Fault> = if touching.is_empty() {
        faults.iter().collect()
    } else {
        touching
    };
    let onset = relevant.iter().map(|f| f.at_ms).min().unwrap_or(0);
    let end = relevant.iter().map(|f| f.until_ms).max();
    (onset, end)
}

/// Whether fault `f` touches the expectation's regions or probe.
fn intersects(e: &Expect, f: &Fault, edge_regions: &dyn Fn(&str) -> Vec<RegionId>) -> bool {
    let fault_regions = f.regions(edge_regions);
    let covers = |region: &str| {
        fault_regions
            .as_ref()
            .is_none_or(|rs| rs.iter().any(|r| r.as_str() == region))
    };
    let by_region = e
        .regions
        .as_ref()
        .is_some_and(|rs| rs.iter().any(|r| covers(r)));
    let by_probe = e.probe.as_ref().is_some_and(|p| match f.probe() {
        Some(fp) => fp == p,
        None => covers(p.region.as_str()),
    });
    by_region || by_probe
}

/// Whether `inc` meets `e` given the onset and fault end (Unix ms); the first reason not.
fn check(e: &Expect, onset: i64, end: Option<i64>, inc: &Incident) -> Result<(), String> {
    if inc.class != e.class {
        return Err(format!("class {} is not {}", inc.class, e.class));
    }
    if let Some(want) = &e.regions
        && &inc.regions != want
    {
        return Err(format!(
            "regions {} are not {}",
            list(&inc.regions),
            list(want)
        ));
    }
    if let Some(want) = &e.targets
        && &inc.targets != want
    {
        return Err(format!(
            "targets {} are not {}",
            list(&inc.targets),
            list(want)
        ));
    }
    if let Some(want) = &e.probe {
        let want = want.to_string();
        if inc.probe.as_deref() != Some(want.as_str()) {
            let got = inc.probe.as_deref().unwrap_or("none");
            return Err(format!("probe {got} is not {want}"));
        }
    }
    let ttd = inc.detected_ms - onset;
    if ttd < 0 {
        return Err(format!("detected {} before the onset", secs(-ttd)));
    }
    if let Some(bound) = e.detect_within_ms
        && ttd > bound
    {
        return Err(format!(
            "detected {} after the onset, more than {}",
            secs(ttd),
            duration::format(bound)
        ));
    }
    if let Some(bound) = e.resolve_within_ms {
        let Some(end) = end else {
            return Err("resolve_within is given but no fault ends".to_string());
        };
        match inc.resolved_ms {
            None => return Err("not resolved by the end of the run".to_string()),
            // Resolving while the fault is still in force is flapping, not recovery.
            Some(r) if r < end => {
                return Err(format!(
                    "resolved {} before the fault's end, while it was still in force",
                    secs(end - r)
                ));
            }
            Some(r) if r - end > bound => {
                return Err(format!(
                    "resolved {} after the fault's end, more than {}",
                    secs(r - end),
                    duration::format(bound)
                ));
            }
            Some(_) => {}
        }
    }
    match (e.page, inc.paged_ms.is_some()) {
        (true, false) => Err("did not page".to_string()),
        (false, true) => Err("paged, and no page was expected".to_string()),
        _ => Ok(()),
    }
}

/// Maximum bipartite matching of expectations to incidents; `owner[i]` is the expectation
/// incident `i` meets.
fn match_all(candidates: &[Vec<usize>], incidents: usize) -> Vec<Option<usize>> {
    fn augment(
        e: usize,
        candidates: &[Vec<usize>],
        owner: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for &i in &candidates[e] {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            if owner[i].is_none_or(|other| augment(other, candidates, owner, seen)) {
                owner[i] = Some(e);
                return true;
            }
        }
        false
    }
    let mut owner = vec![None; incidents];
    for e in 0..candidates.len() {
        let mut seen = vec![false; incidents];
        augment(e, candidates, &mut owner, &mut seen);
    }
    owner
}

fn why_not(
    e: &Expect,
    candidates: &[usize],
    scored: &[&Incident],
    start_ms: i64,
    (onset, end): (i64, Option<i64>),
) -> String {
    if !candidates.is_empty() {
        let ids: Vec<String> = candidates
            .iter()
            .map(|&i| format!("#{}", scored[i].id))
            .collect();
        return format!(
            "the incidents that could meet it ({}) meet other expectations",
            ids.join(", ")
        );
    }
    let same_class: Vec<String> = scored
        .iter()
        .filter(|i| i.class == e.class)
        .filter_map(|i| {
            let reason = check(e, start_ms + onset, end.map(|x| start_ms + x), i).err()?;
            Some(format!("#{}: {reason}", i.id))
        })
        .collect();
    if same_class.is_empty() {
        format!("no {} incident", e.class)
    } else {
        same_class.join("; ")
    }
}

fn list(set: &BTreeSet<String>) -> String {
    format!("[{}]", set.iter().cloned().collect::<Vec<_>>().join(", "))
}

fn secs(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}
