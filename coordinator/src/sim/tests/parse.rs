//! Scenario files: defaults, the suite, the contract's example, every invalid fixture.

use std::path::{Path, PathBuf};

use meridian_shared::regions::Catalog;

use super::super::parse::load;
use super::super::scenario::{FaultKind, PathScope, TargetKind, Tls};
use super::{BASE, parse, scenario};
use crate::detect::Class;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn suite() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifest_dir().join("../tests/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_of_the_suite_parses_and_is_named_after_its_file() {
    let files = suite();
    assert!(files.len() >= 18, "only {} scenarios", files.len());
    for path in files {
        let s = load(&path, &Catalog::builtin()).unwrap_or_else(|e| panic!("{e}"));
        let stem = path.file_stem().unwrap().to_string_lossy();
        assert_eq!(s.name, stem, "{}", path.display());
        assert!(!s.description.is_empty(), "{} has no description", s.name);
        assert!(
            s.warmup_ms >= 2 * 86_400_000,
            "{}: warm-up under 2d",
            s.name
        );
    }
}

/// The example of `SCENARIOS.md`, as the contract prints it.
fn contract_example() -> Option<String> {
    let doc = manifest_dir().join("../../shared/SCENARIOS.md");
    let text = std::fs::read_to_string(doc).ok()?;
    let start = text.find("```toml\n")? + "```toml\n".len();
    let len = text[start..].find("```")?;
    Some(text[start..start + len].to_string())
}

#[test]
fn red_sea_cut_is_the_contract_example_verbatim() {
    let ours = std::fs::read_to_string(manifest_dir().join("../tests/scenarios/red-sea-cut.toml"))
        .unwrap();
    match contract_example() {
        Some(example) => assert_eq!(
            ours, example,
            "scenarios/red-sea-cut.toml drifted from SCENARIOS.md"
        ),
        // The contract lives beside the repository (shared/); without it the copy still runs.
        None => eprintln!("SCENARIOS.md not found beside the repository; checked the copy only"),
    }
    let s = parse(&ours).unwrap();
    assert_eq!((s.name.as_str(), s.seed), ("red-sea-cut", 7));
    assert_eq!(
        (s.duration_ms, s.interval_ms, s.warmup_ms),
        (5_400_000, 60_000, 7 * 86_400_000)
    );
    assert_eq!(s.world.regions.len(), 6);
    assert_eq!(s.world.probes.values().copied().collect::<Vec<_>>(), [5; 6]);
    assert_eq!(s.world.asns, [64500, 64501]);
    assert_eq!(s.noise, super::super::scenario::Noise::default());
    assert_eq!(s.targets[0].tls, Tls::V13);
    assert_eq!(s.targets[0].server_ms, 60.0);
    assert_eq!(s.faults.len(), 2);
    assert_eq!(
        (s.faults[1].at_ms, s.faults[1].until_ms),
        (2_100_000, 3_600_000)
    );
    match &s.faults[1].kind {
        FaultKind::Path {
            scope: PathScope::Regions(r),
            rtt_ms,
            loss,
            asn: None,
            ramp_ms_per_min: None,
        } => {
            assert_eq!((r[0].as_str(), *rtt_ms, *loss), ("ap-south", 120.0, 0.02));
        }
        other => panic!("{other:?}"),
    }
    let e = &s.expects[0];
    assert_eq!(e.class, Class::RegionalNetwork);
    assert_eq!(e.regions.as_ref().unwrap().len(), 2);
    assert_eq!(
        (e.detect_within_ms, e.resolve_within_ms, e.page),
        (Some(60_000), Some(180_000), true)
    );
    assert_eq!(
        (s.score.max_false_incidents, s.score.strict_ops),
        (0, false)
    );
}

#[test]
fn defaults_fill_what_is_left_out() {
    let text = "duration = \"10m\"\n[world]\nregions = [\"eu-west\"]\n[[target]]\nid = \"www\"\norigin = \"us-east\"\n[[expect]]\nclass = \"origin-down\"\n";
    let s = super::super::parse::from_source(
        &meridian_shared::config::SourceFile::new("dir/my-case.toml", text),
        &Catalog::builtin(),
    )
    .unwrap();
    assert_eq!(s.name, "my-case");
    assert_eq!(
        (s.seed, s.interval_ms, s.warmup_ms),
        (0, 60_000, 86_400_000)
    );
    assert_eq!(s.world.probes.values().copied().collect::<Vec<_>>(), [5]);
    assert!(s.world.asns.is_empty());
    let t = &s.targets[0];
    assert_eq!(
        (t.kind, t.tls, t.server_ms),
        (TargetKind::Http, Tls::V13, 50.0)
    );
    let e = &s.expects[0];
    assert_eq!(
        (e.page, e.detect_within_ms, e.resolve_within_ms),
        (true, None, None)
    );
    assert!(e.regions.is_none() && e.targets.is_none() && e.probe.is_none());
}

#[test]
fn probes_per_region_takes_a_table_with_a_default() {
    let text = BASE.replace(
        "probes_per_region = 3",
        "probes_per_region = { me-south = 2, default = 4 }",
    );
    let s = parse(&text).unwrap();
    let counts: Vec<(String, u32)> = s
        .world
        .probes
        .iter()
        .map(|(r, n)| (r.to_string(), *n))
        .collect();
    assert_eq!(
        counts,
        [
            ("eu-west".into(), 4),
            ("me-south".into(), 2),
            ("us-east".into(), 4)
        ]
    );
    assert_eq!(s.world.asn_of(1), Some(64500));
    assert_eq!(s.world.asn_of(2), Some(64501));
    assert_eq!(s.world.asn_of(3), Some(64500));
}

#[test]
fn fault_windows_default_to_the_rest_of_the_run_and_offsets_may_be_negative() {
    let s = scenario(
        "[[fault]]\nkind = \"clock\"\nprobe = \"eu-west/2\"\noffset = \"-90s\"\n\n[[fault]]\nkind = \"probe\"\nprobe = \"us-east/3\"\nat = \"50m\"\nfor = \"1h\"\ndown = true\n",
    );
    assert_eq!((s.faults[0].at_ms, s.faults[0].until_ms), (0, 3_600_000));
    assert!(matches!(
        s.faults[0].kind,
        FaultKind::Clock {
            offset_ms: -90_000,
            ..
        }
    ));
    // A window running past the end is cut at the end.
    assert_eq!(
        (s.faults[1].at_ms, s.faults[1].until_ms),
        (3_000_000, 3_600_000)
    );
}

#[test]
fn every_invalid_fixture_produces_exactly_its_expected_message() {
    let dir = manifest_dir().join("testdata/scenarios");
    let mut seen = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("invalid-") && name.ends_with(".toml")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let src =
            meridian_shared::config::SourceFile::new(format!("testdata/scenarios/{name}"), text);
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|e| panic!("{name} has no .expected file: {e}"));
        match super::super::parse::from_source(&src, &Catalog::builtin()) {
            Ok(_) => failures.push(format!("{name}: parsed without error")),
            Err(e) if e.to_string() == expected.trim_end() => {}
            Err(e) => failures.push(format!(
                "{name}:\n  expected: {expected:?}\n  actual:   {:?}",
                e.to_string()
            )),
        }
        seen += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(seen >= 6, "only {seen} fixtures in {}", dir.display());
}

#[test]
fn every_expected_file_has_a_fixture() {
    let dir = manifest_dir().join("testdata/scenarios");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".expected") {
            assert!(
                dir.join(format!("{stem}.toml")).exists(),
                "{name} has no .toml"
            );
        }
    }
}

#[test]
fn a_missing_file_is_a_read_error() {
    let err = load(Path::new("/nonexistent/x.toml"), &Catalog::builtin()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/x.toml: cannot read"),
        "{err}"
    );
}
