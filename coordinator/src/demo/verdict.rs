//! The demo's verdict: which of the coordinator's stored incidents explain the cut, whether
//! that passes, and the summary printed at the end.
//!
//! Passing takes an incident of class `regional-network` whose regions are exactly the cut
//! region, confirmed while the cut was in force, with an explanation, and resolved; every
//! such incident must have resolved by the end. Incidents about anything else are counted
//! and shown, not judged. Deliberately absent: any detection logic; the records are the
//! coordinator's.

use std::path::Path;

use super::screen::{self, Script};
use super::world::{CUT_REGION, EXPECTED_CLASS};
use crate::store::incidents::IncidentRecord;

/// What the coordinator concluded about the cut.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Every incident it stored during the live phase, by id.
    pub incidents: Vec<IncidentRecord>,
    /// Ids of the incidents that explain the cut: class `regional-network`, regions exactly
    /// the cut region, confirmed while the cut was in force.
    pub matching: Vec<u64>,
    /// The cut and the repair, Unix ms.
    pub cut_ms: i64,
    /// See `cut_ms`.
    pub heal_ms: i64,
    /// Whether the demo was stopped (SIGINT) before its end.
    pub interrupted: bool,
    /// The first matching incident's explanation when it was confirmed (the stored one is the
    /// latest confirmation's).
    pub first_explanation: Option<String>,
}

impl Verdict {
    /// Judges the incidents stored during the live phase against the cut `cut_ms..=heal_ms`.
    pub fn judge(incidents: Vec<IncidentRecord>, cut_ms: i64, heal_ms: i64) -> Verdict {
        let matching = incidents
            .iter()
            .filter(|r| {
                r.class == EXPECTED_CLASS
                    && r.regions == [CUT_REGION]
                    && (cut_ms..=heal_ms).contains(&r.detected_ms)
            })
            .map(|r| r.id)
            .collect();
        Verdict {
            incidents,
            matching,
            cut_ms,
            heal_ms,
            interrupted: false,
            first_explanation: None,
        }
    }

    /// The incidents explaining the cut.
    pub fn matched(&self) -> impl Iterator<Item = &IncidentRecord> {
        self.incidents
            .iter()
            .filter(|r| self.matching.contains(&r.id))
    }

    /// Detected as `regional-network` in the cut region, explained, and resolved.
    pub fn passed(&self) -> bool {
        !self.interrupted
            && !self.matching.is_empty()
            && self
                .matched()
                .all(|r| r.resolved_ms.is_some() && !r.explanation.trim().is_empty())
    }
}

/// The run's figures the summary reports beside the verdict.
#[derive(Debug, Clone, Copy)]
pub struct Figures<'a> {
    /// When things happened.
    pub script: &'a Script,
    /// Results the coordinator stored live.
    pub stored: u64,
    /// Results seeded as history.
    pub seeded: u64,
    /// Bursts detection ordered.
    pub bursts: u64,
    /// The data directory.
    pub data_dir: &'a Path,
    /// Whether it stays after the demo.
    pub kept: bool,
}

/// The summary's lines: the verdict first, then the figures.
pub fn summary(v: &Verdict, f: &Figures<'_>) -> Vec<String> {
    let mut out = vec![String::new()];
    let first = v.matched().min_by_key(|r| r.detected_ms);
    let resolved = v.matched().filter_map(|r| r.resolved_ms).max();
    let ttd = |r: &IncidentRecord| screen::secs(r.detected_ms - f.script.cut_ms);
    out.push(match (first, resolved) {
        (_, _) if v.interrupted => "INTERRUPTED: the demo was stopped before its end".to_string(),
        (Some(r), Some(done)) if v.passed() => format!(
            "PASS: the cut was detected as {} {} after it began (TTD), explained, and resolved {} \
             after the repair (TTR)",
            screen::describe(r),
            ttd(r),
            screen::secs(done - f.script.heal_ms)
        ),
        (Some(r), _) => format!(
            "FAIL: detected as {} {} after the cut, but not resolved by the end",
            screen::describe(r),
            ttd(r)
        ),
        (None, _) => format!(
            "FAIL: no {EXPECTED_CLASS} incident for exactly {CUT_REGION} was confirmed during the cut"
        ),
    });
    if let Some(r) = first {
        let confirmed = v.first_explanation.as_deref().unwrap_or(&r.explanation);
        out.push(format!("  explained    {confirmed}"));
        if r.explanation != confirmed {
            out.push(format!("  at the end   {}", r.explanation));
        }
    }
    out.push(format!(
        "  results      {} ingested live over QUIC ({} bursts ordered), {} seeded as history",
        screen::count(f.stored),
        f.bursts,
        screen::count(f.seeded)
    ));
    out.push(format!(
        "  incidents    {} in all, {} not about the cut",
        v.incidents.len(),
        v.incidents.len() - v.matching.len()
    ));
    out.push(format!(
        "  data         {}{}",
        f.data_dir.display(),
        if f.kept {
            " (kept: `coordinator incidents --data-dir DIR` lists what was stored)"
        } else {
            " (removed)"
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::incidents::StoredState;

    fn incident(id: u64, class: &str, regions: &[&str], detected_ms: i64) -> IncidentRecord {
        IncidentRecord {
            id,
            class: class.into(),
            state: StoredState::Resolved,
            severity: "page".into(),
            regions: regions.iter().map(|r| r.to_string()).collect(),
            targets: vec!["www".into()],
            asns: Vec::new(),
            probe: None,
            edge: None,
            onset_ms: detected_ms - 1_000,
            detected_ms,
            ttd_ms: 1_000,
            paged_ms: Some(detected_ms + 1_000),
            resolved_ms: Some(250_000),
            explanation: "5 of 5 probes in me-south: connect +180 ms".into(),
            evidence: Vec::new(),
            timeline: Vec::new(),
            updated_ms: 250_000,
            maintenance: Default::default(),
        }
    }

    #[test]
    fn only_the_cut_regions_network_incident_during_the_cut_passes() {
        let v = |i: Vec<IncidentRecord>| Verdict::judge(i, 120_000, 240_000);
        assert!(
            v(vec![incident(
                1,
                "regional-network",
                &["me-south"],
                121_000
            )])
            .passed()
        );
        for wrong in [
            incident(1, "regional-server", &["me-south"], 121_000),
            incident(1, "regional-network", &["me-south", "ap-south"], 121_000),
            incident(1, "regional-network", &["me-south"], 100_000),
            incident(1, "regional-network", &["me-south"], 241_000),
        ] {
            assert!(!v(vec![wrong.clone()]).passed(), "{wrong:?}");
        }
        let mut open = incident(1, "regional-network", &["me-south"], 121_000);
        open.resolved_ms = None;
        assert!(!v(vec![open]).passed(), "not resolved");
        let mut unexplained = incident(1, "regional-network", &["me-south"], 121_000);
        unexplained.explanation = " ".into();
        assert!(!v(vec![unexplained]).passed(), "no explanation");
        let mut stopped = v(vec![incident(
            1,
            "regional-network",
            &["me-south"],
            121_000,
        )]);
        stopped.interrupted = true;
        assert!(!stopped.passed());
    }

    #[test]
    fn the_summary_leads_with_the_verdict_and_its_times() {
        let script = Script {
            zero_ms: 0,
            cut_ms: 120_000,
            heal_ms: 240_000,
        };
        let v = Verdict::judge(
            vec![
                incident(1, "regional-network", &["me-south"], 122_500),
                incident(2, "probe-fault", &["af-south"], 30_000),
            ],
            script.cut_ms,
            script.heal_ms,
        );
        let figures = Figures {
            script: &script,
            stored: 13_369,
            seeded: 100_800,
            bursts: 12,
            data_dir: Path::new("/tmp/d"),
            kept: false,
        };
        let lines = summary(&v, &figures);
        assert_eq!(
            lines[1],
            "PASS: the cut was detected as regional-network in me-south (www) 2.5 s after it \
             began (TTD), explained, and resolved 10.0 s after the repair (TTR)"
        );
        assert!(lines.iter().any(|l| l.contains("13,369 ingested live")));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("2 in all, 1 not about the cut"))
        );
        assert!(lines.iter().any(|l| l.ends_with("/tmp/d (removed)")));
    }
}
