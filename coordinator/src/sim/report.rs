//! What `coordinator simulate` prints: a readable per-scenario report, or with `--json` one
//! object per scenario per line in the shape `SCENARIOS.md` documents. The JSON goes through
//! the DTOs here (the only types of the simulator that derive `Serialize`).
//!
//! Times are seconds of virtual time from the end of warm-up.

use std::fmt::Write as _;

use serde::Serialize;

use super::Outcome;
use super::duration;

/// One scenario's result, as `--json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub scenario: String,
    /// Every expectation met and no more false incidents than allowed.
    pub passed: bool,
    /// The seed it ran with.
    pub seed: u64,
    /// The incidents scored (those not resolved before the end of warm-up).
    pub incidents: Vec<IncidentReport>,
    /// One entry per expectation, in file order.
    pub expectations: Vec<ExpectationReport>,
    /// Incidents that count as false.
    pub false_incidents: usize,
    /// Volume and cost.
    pub stats: StatsReport,
}

/// One incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentReport {
    /// Engine id.
    pub id: u64,
    /// Class name.
    pub class: String,
    /// Regions, sorted.
    pub regions: Vec<String>,
    /// Targets, sorted.
    pub targets: Vec<String>,
    /// Estimated start.
    pub onset_s: f64,
    /// Confirmation.
    pub detected_s: f64,
    /// Page, if it paged.
    pub paged_s: Option<f64>,
    /// Resolution, if it resolved.
    pub resolved_s: Option<f64>,
    /// The engine's explanation.
    pub explanation: String,
}

/// One expectation's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectationReport {
    /// The expected class.
    pub class: String,
    /// Whether an incident meets it.
    pub met: bool,
    /// Detection minus onset, when met.
    pub ttd_s: Option<f64>,
    /// Resolution minus the end of the last matching fault, when met and resolved.
    pub ttr_s: Option<f64>,
}

/// Volume and cost of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StatsReport {
    /// Results delivered to the engine (warm-up and bursts included).
    pub results: u64,
    /// Real time the run took, ms.
    pub wall_ms: u64,
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl ScenarioReport {
    /// The report of `outcome`, which took `wall_ms` of real time.
    pub fn new(outcome: &Outcome, wall_ms: u64) -> ScenarioReport {
        let start = outcome.start_ms;
        let card = &outcome.card;
        ScenarioReport {
            scenario: outcome.scenario.name.clone(),
            passed: card.passed,
            seed: outcome.scenario.seed,
            incidents: outcome
                .scored()
                .map(|i| IncidentReport {
                    id: i.id,
                    class: i.class.as_str().to_string(),
                    regions: i.regions.iter().cloned().collect(),
                    targets: i.targets.iter().cloned().collect(),
                    onset_s: secs(i.onset_ms - start),
                    detected_s: secs(i.detected_ms - start),
                    paged_s: i.paged_ms.map(|t| secs(t - start)),
                    resolved_s: i.resolved_ms.map(|t| secs(t - start)),
                    explanation: i.explanation.clone(),
                })
                .collect(),
            expectations: (outcome.scenario.expects.iter().zip(&card.verdicts))
                .map(|(e, v)| ExpectationReport {
                    class: e.class.as_str().to_string(),
                    met: v.met(),
                    ttd_s: v.ttd_ms.map(secs),
                    ttr_s: v.ttr_ms.map(secs),
                })
                .collect(),
            false_incidents: card.false_incidents.len(),
            stats: StatsReport {
                results: outcome.stats.results,
                wall_ms,
            },
        }
    }
}

/// The readable report of one scenario.
pub fn text(outcome: &Outcome, wall_ms: u64) -> String {
    let s = &outcome.scenario;
    let card = &outcome.card;
    let start = outcome.start_ms;
    let met = card.verdicts.iter().filter(|v| v.met()).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} (seed {}): {met}/{} expectations met, {} false incidents (max {}); {} results, {} bursts, {:.1} s",
        if card.passed { "PASS" } else { "FAIL" },
        s.name,
        s.seed,
        card.verdicts.len(),
        card.false_incidents.len(),
        s.score.max_false_incidents,
        outcome.stats.results,
        outcome.stats.bursts,
        wall_ms as f64 / 1000.0,
    );
    if !s.description.is_empty() {
        let _ = writeln!(out, "  {}", s.description);
    }
    let when = |ms: Option<i64>| ms.map_or("-".to_string(), |t| format!("{:.1}s", secs(t - start)));
    let scored: Vec<_> = outcome.scored().collect();
    if scored.is_empty() {
        let _ = writeln!(out, "  no incidents");
    }
    for i in scored {
        let verdict = if card.false_incidents.contains(&i.id) {
            "  FALSE"
        } else if card.verdicts.iter().any(|v| v.incident == Some(i.id)) {
            "  expected"
        } else {
            "  (operational, not counted)"
        };
        let mut scope: Vec<String> = i.regions.iter().cloned().collect();
        scope.extend(i.probe.clone());
        let _ = writeln!(
            out,
            "  #{} {} [{}] targets [{}]: onset {}, detected {}, paged {}, resolved {}{verdict}",
            i.id,
            i.class,
            scope.join(", "),
            i.targets.iter().cloned().collect::<Vec<_>>().join(", "),
            when(Some(i.onset_ms)),
            when(Some(i.detected_ms)),
            when(i.paged_ms),
            when(i.resolved_ms),
        );
        for line in i.explanation.lines() {
            let _ = writeln!(out, "      {line}");
        }
    }
    for (e, v) in s.expects.iter().zip(&card.verdicts) {
        let mut scope: Vec<String> = e.regions.iter().flatten().cloned().collect();
        scope.extend(e.probe.as_ref().map(ToString::to_string));
        let bound =
            |b: Option<i64>| b.map_or(String::new(), |b| format!(" (<= {})", duration::format(b)));
        let head = format!(
            "{} [{}] page={} onset {:.0}s",
            e.class,
            scope.join(", "),
            e.page,
            secs(v.onset_ms)
        );
        match (v.incident, &v.why_not) {
            (Some(id), _) => {
                let ttr = v
                    .ttr_ms
                    .map_or("-".to_string(), |t| format!("{:.1}s", secs(t)));
                let _ = writeln!(
                    out,
                    "  met  {head}: incident #{id}, ttd {:.1}s{}, ttr {ttr}{}",
                    v.ttd_ms.map_or(0.0, secs),
                    bound(e.detect_within_ms),
                    bound(e.resolve_within_ms),
                );
            }
            (None, why) => {
                let why = why.as_deref().unwrap_or("not met");
                let _ = writeln!(out, "  MISS {head}: {why}");
            }
        }
    }
    out
}
