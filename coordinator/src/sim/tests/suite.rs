//! The scenario suite as a test: every file in `tests/scenarios/` must pass — class,
//! scope, time-to-detect and time-to-resolve bounds, pages, and no false incidents after the
//! warm-up, as `SCENARIOS.md` scores them.
//!
//! This is the detection engine's acceptance test. `coordinator simulate
//! tests/scenarios/*.toml` prints the same verdicts with the incidents' explanations.

use std::path::Path;

use meridian_shared::regions::Catalog;

use crate::sim::{parse, simulate};

#[test]
fn every_scenario_of_the_suite_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 24, "the suite has {} files", files.len());
    let catalog = Catalog::builtin();
    let mut failures = Vec::new();
    // Time to detect of site faults found by the fast path (hard failures, round-trip steps
    // of 100 ms or more, server-side changes): the target is a median of 30 s at a
    // 60 s interval. Loss, drift and flapping have bounds of their own.
    let mut fast_ttd_ms = Vec::new();
    for file in &files {
        let scenario = parse::load(file, &catalog).unwrap();
        let outcome = simulate(scenario, &catalog);
        let name = &outcome.scenario.name;
        if !["loss-only", "slow-drift", "flapping-loss"].contains(&name.as_str()) {
            for (e, v) in outcome.scenario.expects.iter().zip(&outcome.card.verdicts) {
                if !e.class.is_operational()
                    && let Some(ttd) = v.ttd_ms
                {
                    fast_ttd_ms.push(ttd);
                }
            }
        }
        if !outcome.card.passed {
            let incidents: Vec<String> = outcome
                .scored()
                .map(|i| format!("#{} {} {:?}: {}", i.id, i.class, i.regions, i.explanation))
                .collect();
            failures.push(format!(
                "{name}: {:?}\n    {}",
                outcome.card,
                incidents.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    fast_ttd_ms.sort_unstable();
    assert!(fast_ttd_ms.len() >= 12, "{fast_ttd_ms:?}");
    let median = fast_ttd_ms[fast_ttd_ms.len() / 2];
    assert!(
        median <= 30_000,
        "median time to detect {median} ms: {fast_ttd_ms:?}"
    );
    // detection.md's p95 bound for these classes; single runs must stay inside it.
    assert!(
        fast_ttd_ms.iter().all(|&t| t <= 45_000),
        "a time to detect over 45 s: {fast_ttd_ms:?}"
    );
}
