//! The Matching rules of `SCENARIOS.md` on hand-made incident lists.

use std::collections::BTreeSet;

use meridian_shared::regions::RegionId;

use super::super::scenario::Scenario;
use super::super::score::{Scorecard, score};
use super::scenario;
use crate::detect::{Class, Incident, IncidentState, Severity};

const START: i64 = 1_000_000_000;

/// An incident detected at `detected_s` after the start, resolved at `resolved_s` if given.
fn incident(
    id: u64,
    class: Class,
    regions: &[&str],
    detected_s: f64,
    resolved_s: Option<f64>,
) -> Incident {
    let at = |s: f64| START + (s * 1000.0) as i64;
    Incident {
        id,
        class,
        state: if resolved_s.is_some() {
            IncidentState::Resolved
        } else {
            IncidentState::Paged
        },
        severity: if class.is_operational() {
            Severity::Info
        } else {
            Severity::Page
        },
        regions: regions.iter().map(|r| r.to_string()).collect(),
        targets: BTreeSet::from(["www".to_string()]),
        asns: BTreeSet::new(),
        probe: None,
        edge: None,
        onset_ms: at(detected_s - 10.0),
        detected_ms: at(detected_s),
        paged_ms: (!class.is_operational()).then(|| at(detected_s + 30.0)),
        resolved_ms: resolved_s.map(at),
        evidence: Vec::new(),
        timeline: Vec::new(),
        explanation: String::new(),
    }
}

fn run(s: &Scenario, incidents: &[Incident]) -> Scorecard {
    let no_edges = |_: &str| Vec::<RegionId>::new();
    score(s, START, &no_edges, incidents)
}

const TWO_CUTS: &str = r#"
[[fault]]
kind = "path"
regions = ["me-south"]
at = "30m"
for = "20m"
rtt_ms = 150

[[fault]]
kind = "path"
regions = ["eu-west"]
at = "35m"
for = "20m"
rtt_ms = 120
"#;

#[test]
fn a_met_expectation_reports_its_times() {
    let s = scenario(&format!(
        "{TWO_CUTS}\n[[expect]]\nclass = \"regional-network\"\nregions = [\"me-south\", \"eu-west\"]\ndetect_within = \"60s\"\nresolve_within = \"180s\"\n"
    ));
    let card = run(
        &s,
        &[incident(
            1,
            Class::RegionalNetwork,
            &["eu-west", "me-south"],
            1812.4,
            Some(3371.0),
        )],
    );
    assert!(card.passed, "{card:?}");
    let v = &card.verdicts[0];
    assert_eq!(
        (v.incident, v.onset_ms, v.fault_end_ms),
        (Some(1), 1_800_000, Some(3_300_000))
    );
    assert_eq!((v.ttd_ms, v.ttr_ms), (Some(12_400), Some(71_000)));
}

#[test]
fn onset_is_the_earliest_fault_touching_the_scope_else_the_earliest_fault() {
    let s = scenario(&format!(
        "{TWO_CUTS}\n\
         [[expect]]\nclass = \"regional-network\"\nregions = [\"eu-west\"]\n\n\
         [[expect]]\nclass = \"regional-network\"\n\n\
         [[expect]]\nclass = \"regional-network\"\nregions = [\"us-east\"]\n\n\
         [[expect]]\nclass = \"probe-fault\"\nprobe = \"eu-west/2\"\n"
    ));
    let card = run(&s, &[]);
    let windows: Vec<(i64, Option<i64>)> = card
        .verdicts
        .iter()
        .map(|v| (v.onset_ms, v.fault_end_ms))
        .collect();
    assert_eq!(
        windows,
        [
            (2_100_000, Some(3_300_000)), // the eu-west fault only
            (1_800_000, Some(3_300_000)), // no scope: every fault
            (1_800_000, Some(3_300_000)), // no fault touches us-east: every fault
            (2_100_000, Some(3_300_000)), // a region-wide fault covers the probe's region
        ]
    );
}

#[test]
fn one_incident_cannot_meet_two_expectations() {
    let s = scenario(&format!(
        "{TWO_CUTS}\n[[expect]]\nclass = \"regional-network\"\n\n[[expect]]\nclass = \"regional-network\"\n"
    ));
    let card = run(
        &s,
        &[incident(
            1,
            Class::RegionalNetwork,
            &["me-south"],
            1810.0,
            None,
        )],
    );
    assert!(!card.passed);
    assert_eq!(card.verdicts[0].incident, Some(1));
    assert_eq!(card.verdicts[1].incident, None);
    assert!(
        card.verdicts[1]
            .why_not
            .as_ref()
            .unwrap()
            .contains("meet other expectations"),
        "{card:?}"
    );
}

#[test]
fn the_assignment_is_a_maximum_matching_not_first_come() {
    // Expectation 0 accepts either incident; expectation 1 only incident 1 (me-south). A
    // first-come pass would give incident 1 to expectation 0 and leave expectation 1 unmet.
    let s = scenario(&format!(
        "{TWO_CUTS}\n[[expect]]\nclass = \"regional-network\"\n\n[[expect]]\nclass = \"regional-network\"\nregions = [\"me-south\"]\n"
    ));
    let incidents = [
        incident(1, Class::RegionalNetwork, &["me-south"], 1810.0, None),
        incident(2, Class::RegionalNetwork, &["eu-west"], 2110.0, None),
    ];
    let card = run(&s, &incidents);
    assert!(card.passed, "{card:?}");
    assert_eq!(
        (card.verdicts[0].incident, card.verdicts[1].incident),
        (Some(2), Some(1))
    );
}

#[test]
fn scope_time_and_page_must_all_match() {
    let s = scenario(&format!(
        "{TWO_CUTS}\n[[expect]]\nclass = \"regional-network\"\nregions = [\"me-south\"]\ndetect_within = \"60s\"\nresolve_within = \"180s\"\n"
    ));
    let why = |inc: Incident| {
        let card = run(&s, &[inc]);
        assert!(!card.passed);
        card.verdicts[0].why_not.clone().unwrap()
    };
    assert_eq!(
        why(incident(
            1,
            Class::OriginDown,
            &["me-south"],
            1810.0,
            Some(3100.0)
        )),
        "no regional-network incident"
    );
    assert!(
        why(incident(
            1,
            Class::RegionalNetwork,
            &["me-south", "eu-west"],
            1810.0,
            Some(3100.0)
        ))
        .contains("regions [eu-west, me-south] are not [me-south]")
    );
    assert!(
        why(incident(
            1,
            Class::RegionalNetwork,
            &["me-south"],
            1795.0,
            Some(3100.0)
        ))
        .contains("before the onset")
    );
    assert!(
        why(incident(
            1,
            Class::RegionalNetwork,
            &["me-south"],
            1875.0,
            Some(3100.0)
        ))
        .contains("detected 75.0 s after the onset, more than 60s")
    );
    assert!(
        why(incident(
            1,
            Class::RegionalNetwork,
            &["me-south"],
            1810.0,
            None
        ))
        .contains("not resolved")
    );
    assert!(
        why(incident(
            1,
            Class::RegionalNetwork,
            &["me-south"],
            1810.0,
            Some(3600.0)
        ))
        .contains("resolved 600.0 s after")
    );
    assert!(
        why(incident(
            1,
            Class::RegionalNetwork,
            &["me-south"],
            1810.0,
            Some(2500.0)
        ))
        .contains("resolved 500.0 s before the fault's end")
    );
    let mut quiet = incident(
        1,
        Class::RegionalNetwork,
        &["me-south"],
        1810.0,
        Some(3100.0),
    );
    quiet.paged_ms = None;
    assert!(why(quiet).contains("did not page"));
}

#[test]
fn operational_incidents_are_false_only_under_strict_ops() {
    let extra = "[[fault]]\nkind = \"origin\"\nat = \"30m\"\nfor = \"20m\"\nerror_rate = 1.0\n\n[[expect]]\nclass = \"origin-down\"\n";
    let mut skew = incident(2, Class::ClockSkew, &["eu-west"], 100.0, None);
    skew.probe = Some("eu-west/2".into());
    let incidents = [
        incident(
            1,
            Class::OriginDown,
            &["us-east", "eu-west", "me-south"],
            1810.0,
            None,
        ),
        skew,
    ];
    let lenient = run(&scenario(extra), &incidents);
    assert!(
        lenient.passed && lenient.false_incidents.is_empty(),
        "{lenient:?}"
    );
    let strict = run(
        &scenario(&format!("{extra}\n[score]\nstrict_ops = true\n")),
        &incidents,
    );
    assert_eq!(strict.false_incidents, [2]);
    assert!(!strict.passed);
    let tolerant = run(
        &scenario(&format!(
            "{extra}\n[score]\nstrict_ops = true\nmax_false_incidents = 1\n"
        )),
        &incidents,
    );
    assert!(tolerant.passed);
}

#[test]
fn probe_expectations_match_the_probe_and_the_page_flag() {
    let s = scenario(
        "[[fault]]\nkind = \"probe\"\nprobe = \"me-south/3\"\nat = \"30m\"\nfor = \"30m\"\nrtt_ms = 400\n\n\
         [[expect]]\nclass = \"probe-fault\"\nprobe = \"me-south/3\"\ndetect_within = \"180s\"\npage = false\n",
    );
    let mut wrong = incident(1, Class::ProbeFault, &["me-south"], 1900.0, None);
    wrong.probe = Some("me-south/2".into());
    let mut right = incident(2, Class::ProbeFault, &["me-south"], 1950.0, None);
    right.probe = Some("me-south/3".into());
    let card = run(&s, &[wrong, right]);
    assert!(card.passed, "{card:?}");
    assert_eq!(card.verdicts[0].incident, Some(2));
    assert!(
        card.false_incidents.is_empty(),
        "operational incidents are not false by default"
    );
}

#[test]
fn incidents_over_before_the_warm_up_ended_are_not_scored() {
    let s = scenario("[score]\nmax_false_incidents = 0\n");
    let card = run(
        &s,
        &[
            incident(
                1,
                Class::RegionalNetwork,
                &["me-south"],
                -7200.0,
                Some(-7000.0),
            ),
            incident(2, Class::RegionalNetwork, &["me-south"], -100.0, Some(50.0)),
        ],
    );
    assert_eq!(card.scored, [2]);
    assert_eq!(card.false_incidents, [2]);
    assert!(!card.passed);
    assert!(
        run(&s, &[]).passed,
        "no faults, no expectations, no incidents"
    );
}
