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
    assert!(files.len() >= 18, "the suite has {} files", files.len());
    let catalog = Catalog::builtin();
    let mut failures = Vec::new();
    for file in &files {
        let scenario = parse::load(file, &catalog).unwrap();
        let outcome = simulate(scenario, &catalog);
        let name = &outcome.scenario.name;
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
}
