use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use meridian_shared::config::ConfigError;
use meridian_shared::regions::Catalog;

use super::*;
use crate::store::incidents::{EvidenceRecord, IncidentRecord, StoredState};

/// 2026-11-27 14:02:00 UTC.
const ONSET_MS: i64 = 1_795_788_120_000;
const MINUTE_MS: i64 = 60_000;

fn evidence(region: &str, affected: usize, failures: usize) -> EvidenceRecord {
    EvidenceRecord {
        region: region.to_string(),
        probes: 5,
        affected,
        connect_base_ms: Some(171.0),
        connect_delta_ms: Some(181.0),
        tls_base_ms: None,
        tls_delta_ms: None,
        server_base_ms: Some(40.0),
        server_delta_ms: Some(0.4),
        failures,
        failure_class: (failures > 0).then(|| "connect-timeout".to_string()),
    }
}

fn incident(class: &str, regions: &[&str]) -> IncidentRecord {
    IncidentRecord {
        id: 12,
        class: class.to_string(),
        state: StoredState::Paged,
        severity: "page".to_string(),
        regions: regions.iter().map(|r| r.to_string()).collect(),
        targets: vec!["shop-https".to_string()],
        asns: Vec::new(),
        probe: None,
        edge: None,
        onset_ms: ONSET_MS,
        detected_ms: ONSET_MS + 20_000,
        ttd_ms: 20_000,
        paged_ms: Some(ONSET_MS + 21_000),
        resolved_ms: None,
        explanation: "5 of 5 probes in me-south: connect +181 ms".to_string(),
        evidence: regions.iter().map(|r| evidence(r, 5, 0)).collect(),
        timeline: Vec::new(),
        updated_ms: ONSET_MS + 21_000,
        maintenance: Default::default(),
    }
}

fn resolved(mut i: IncidentRecord, after_minutes: i64) -> IncidentRecord {
    i.state = StoredState::Resolved;
    i.resolved_ms = Some(ONSET_MS + after_minutes * MINUTE_MS);
    i
}

fn names(catalog: &Catalog) -> Names<'_> {
    Names {
        catalog,
        services: HashMap::from([("shop-https".to_string(), "the Shop".to_string())]),
        networks: HashMap::from([(64500, "Example Telecom".to_string())]),
    }
}

fn draft(t: &Templates, i: &IncidentRecord, stage: Stage) -> Draft {
    let catalog = Catalog::builtin();
    t.draft(
        i,
        &names(&catalog),
        stage,
        ONSET_MS + MINUTE_MS,
        Cadence::default(),
    )
    .expect("drafts")
    .expect("a site incident has a draft")
}

fn builtin() -> Templates {
    Templates::builtin().expect("the built-in templates are valid")
}

fn issues(e: ConfigError) -> Vec<String> {
    match e {
        ConfigError::Invalid(issues) => issues.iter().map(|i| i.to_string()).collect(),
        other => panic!("expected located issues, got {other}"),
    }
}

fn temp_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

#[test]
fn a_fiber_cut_reads_as_a_regional_internet_problem_outside_our_systems() {
    let t = builtin();
    let d = draft(
        &t,
        &incident("regional-network", &["me-south"]),
        Stage::Identified,
    );
    assert_eq!(d.title, "Slow pages for members in the Middle East");
    assert!(
        d.body.starts_with(
            "Members in the Middle East may find the Shop slow to load since 14:02 UTC."
        ),
        "{}",
        d.body
    );
    assert!(d.body.contains("outside our own systems"), "{}", d.body);
    assert!(
        d.body.contains("members elsewhere are not affected"),
        "{}",
        d.body
    );
    // Written at 14:03, the next update is promised 30 minutes later.
    assert!(
        d.body.ends_with("will post an update by 14:33 UTC."),
        "{}",
        d.body
    );
    assert_eq!(
        (d.incident, d.class.as_str(), d.stage),
        (12, "regional-network", Stage::Identified)
    );
}

#[test]
fn the_site_being_down_reads_as_our_own_problem_everywhere() {
    let t = builtin();
    let down = draft(
        &t,
        &incident("origin-down", &["eu-central", "me-south", "us-east"]),
        Stage::Identified,
    );
    assert_eq!(down.title, "The Shop is unavailable");
    assert!(
        down.body.contains("The problem is in our own systems"),
        "{}",
        down.body
    );
    assert!(
        !down.body.contains("outside our own systems"),
        "{}",
        down.body
    );
    assert!(
        !down.body.contains("Members in"),
        "not scoped to regions: {}",
        down.body
    );
}

#[test]
fn regions_that_time_out_read_as_unreachable_rather_than_slow() {
    let t = builtin();
    let mut cut = incident("regional-network", &["me-south", "ap-south"]);
    cut.evidence = vec![evidence("me-south", 5, 9), evidence("ap-south", 4, 1)];
    let d = draft(&t, &cut, Stage::Investigating);
    assert_eq!(
        d.title,
        "The Shop unreachable for members in the Middle East and Western India"
    );
    assert!(
        d.body.contains("may be unable to reach the Shop"),
        "{}",
        d.body
    );
}

#[test]
fn each_class_has_its_own_wording() {
    let t = builtin();
    let mut bodies = std::collections::BTreeSet::new();
    for class in Class::ALL.into_iter().filter(|c| !c.is_operational()) {
        let d = draft(
            &t,
            &incident(class.as_str(), &["me-south"]),
            Stage::Identified,
        );
        assert!(
            bodies.insert(d.body.clone()),
            "{class} reads like another class: {}",
            d.body
        );
    }
    let dns = draft(
        &t,
        &incident("dns-resolver", &["me-south"]),
        Stage::Identified,
    );
    assert!(dns.body.contains("look up web addresses"), "{}", dns.body);
    assert!(dns.body.contains("outside our own systems"), "{}", dns.body);
    let server = draft(
        &t,
        &incident("regional-server", &["me-south"]),
        Stage::Identified,
    );
    assert!(
        server
            .body
            .contains("in our own systems, in the part that serves the Middle East"),
        "{}",
        server.body
    );
}

#[test]
fn members_read_no_jargon_in_any_built_in_draft() {
    const JARGON: [&str; 16] = [
        "dns", "tcp", "tls", "rtt", "latency", "probe", "quorum", "asn", "origin", "resolver",
        "ms", "p95", "packet", "cdn", "http", "incident",
    ];
    let t = builtin();
    let catalog = Catalog::builtin();
    for class in Class::ALL.into_iter().filter(|c| !c.is_operational()) {
        for failures in [0, 9] {
            let mut i = resolved(incident(class.as_str(), &["me-south", "ap-south"]), 68);
            i.asns = vec![64500];
            i.evidence = vec![evidence("me-south", 5, failures)];
            for stage in Stage::ALL {
                let d = t
                    .draft(&i, &names(&catalog), stage, ONSET_MS, Cadence::default())
                    .expect("drafts")
                    .expect("a site class");
                let text = format!("{} {}", d.title, d.body).to_lowercase();
                for word in text.split(|c: char| !c.is_alphanumeric()) {
                    assert!(
                        !JARGON.contains(&word),
                        "{class} {stage}: {word:?} in {text:?}"
                    );
                }
                assert!(!text.contains("{{") && !text.contains("{%"), "{text}");
            }
        }
    }
}

#[test]
fn the_resolved_message_says_when_it_ended_and_how_long_it_lasted() {
    let t = builtin();
    let d = draft(
        &t,
        &resolved(incident("regional-network", &["me-south"]), 68),
        Stage::Resolved,
    );
    assert!(d.body.starts_with("Since 15:10 UTC, the Shop has been working normally again for members in the Middle East."), "{}", d.body);
    assert!(d.body.contains("For 1 hour 8 minutes,"), "{}", d.body);
    assert!(d.body.contains("sorry"), "{}", d.body);
    assert!(
        !d.body.contains("update by"),
        "nothing more is promised: {}",
        d.body
    );
}

#[test]
fn an_open_incident_has_no_resolved_message_and_suggests_investigating() {
    let t = builtin();
    let catalog = Catalog::builtin();
    let open = incident("origin-down", &["me-south"]);
    let err = t
        .draft(
            &open,
            &names(&catalog),
            Stage::Resolved,
            ONSET_MS,
            Cadence::default(),
        )
        .expect_err("an open incident cannot be resolved");
    assert!(matches!(err, DraftError::NotResolved(12)), "{err}");
    assert_eq!(Stage::suggested(open.state), Stage::Investigating);
    assert_eq!(Stage::suggested(StoredState::Resolved), Stage::Resolved);
}

#[test]
fn monitoring_network_states_never_produce_a_draft() {
    let t = builtin();
    let catalog = Catalog::builtin();
    for class in [Class::ProbeFault, Class::ClockSkew, Class::RegionSilent] {
        let i = incident(class.as_str(), &["me-south"]);
        for stage in [Stage::Investigating, Stage::Identified] {
            let d = t.draft(&i, &names(&catalog), stage, ONSET_MS, Cadence::default());
            assert!(matches!(d, Ok(None)), "{class}: {d:?}");
        }
    }
    let mut unknown = incident("meteor-strike", &["me-south"]);
    unknown.id = 13;
    let d = t.draft(
        &unknown,
        &names(&catalog),
        Stage::Identified,
        ONSET_MS,
        Cadence::default(),
    );
    assert!(
        matches!(d, Err(DraftError::UnknownClass { id: 13, .. })),
        "{d:?}"
    );
}

#[test]
fn an_isp_draft_names_the_provider_and_falls_back_to_the_number() {
    let t = builtin();
    let mut isp = incident("isp", &["me-south"]);
    isp.asns = vec![64500];
    let d = draft(&t, &isp, Stage::Identified);
    assert!(
        d.body
            .contains("whose internet provider is Example Telecom"),
        "{}",
        d.body
    );
    isp.asns = vec![64501];
    let d = draft(&t, &isp, Stage::Identified);
    assert!(
        d.body
            .contains("whose internet provider is network AS64501"),
        "{}",
        d.body
    );
}

#[test]
fn an_unknown_service_is_our_service_and_the_cadence_is_configurable() {
    let t = builtin();
    let catalog = Catalog::builtin();
    let mut i = incident("origin-slow", &["me-south"]);
    i.targets = vec!["unlisted-check".to_string()];
    let cadence = Cadence {
        update_every: Duration::from_secs(15 * 60),
    };
    let d = t
        .draft(
            &i,
            &names(&catalog),
            Stage::Investigating,
            ONSET_MS,
            cadence,
        )
        .expect("drafts")
        .expect("a site class");
    assert_eq!(d.title, "Our service is slow");
    assert!(d.body.ends_with("update by 14:17 UTC."), "{}", d.body);
}

#[test]
fn an_operators_file_overrides_only_what_it_names() {
    let file = temp_file(
        r#"
["regional-network"]
identified = """
Hello {{ regions }}: the internet is slow between you and us.
Next word by {{ next_update }}.
"""
"#,
    );
    let t = Templates::load(Some(file.path())).expect("valid override");
    let cut = incident("regional-network", &["me-south"]);
    let d = draft(&t, &cut, Stage::Identified);
    assert_eq!(
        d.body,
        "Hello the Middle East: the internet is slow between you and us. Next word by 14:33 UTC."
    );
    assert_eq!(d.title, draft(&builtin(), &cut, Stage::Identified).title);
    let other = draft(&t, &cut, Stage::Investigating);
    assert_eq!(other, draft(&builtin(), &cut, Stage::Investigating));
}

#[test]
fn mistakes_in_an_operators_file_are_located_by_line_and_field() {
    let file = temp_file(
        "[\"origin-down\"]\ntitle = \"{{ service }} is down\"\nidentified = \"\"\"\nFine so far.\nBut {{ servce }} is misspelt.\n\"\"\"\n\n[\"probe-fault\"]\ntitle = \"x\"\n\n[\"meteor-strike\"]\ntitle = \"x\"\n\n[\"isp\"]\nresolved = \"Over at {{ next_update }}\"\n",
    );
    let name = file.path().display().to_string();
    let got = issues(Templates::load(Some(file.path())).expect_err("invalid"));
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(
        got.iter().any(|i| i.starts_with(&format!(
            "{name}:5:1: origin-down.identified: undefined value"
        ))),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|i| i.starts_with(&format!("{name}:8:"))
            && i.contains("probe-fault: probe-fault is a state of the monitoring network")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|i| i.starts_with(&format!("{name}:11:"))
            && i.contains("meteor-strike: unknown incident class")),
        "{got:#?}"
    );
    // `next_update` does not exist once it is over.
    assert!(
        got.iter().any(|i| i.starts_with(&format!("{name}:15:"))
            && i.contains("isp.resolved: undefined value")),
        "{got:#?}"
    );
}

#[test]
fn a_syntax_error_and_an_unknown_stage_are_refused() {
    let syntax = temp_file("[\"isp\"]\ntitle = \"{% if failing %}slow\"\n");
    let got = issues(Templates::load(Some(syntax.path())).expect_err("unclosed if"));
    assert!(
        got.iter()
            .any(|i| i.contains(":2:") && i.contains("isp.title: syntax error")),
        "{got:#?}"
    );
    let stage = temp_file("[\"isp\"]\npostmortem = \"x\"\n");
    let err = Templates::load(Some(stage.path())).expect_err("unknown stage");
    assert!(err.to_string().contains("postmortem"), "{err}");
}

#[test]
fn sentences_start_with_a_capital_whatever_opens_them() {
    assert_eq!(
        tidy("the Shop is down.  the team\n is on it!\n\n\nwe are sorry"),
        "The Shop is down. The team is on it!\n\nWe are sorry"
    );
    assert_eq!(capitalize("by 14:33 UTC. e-mail"), "By 14:33 UTC. E-mail");
}

#[test]
fn times_and_durations_read_naturally() {
    assert_eq!(clock(ONSET_MS, ONSET_MS + MINUTE_MS), "14:02 UTC");
    assert_eq!(
        clock(ONSET_MS, ONSET_MS + 11 * 3_600_000),
        "27 Nov 14:02 UTC"
    );
    assert_eq!(
        duration_words(Duration::from_secs(20)),
        "less than a minute"
    );
    assert_eq!(duration_words(Duration::from_secs(60)), "1 minute");
    assert_eq!(
        duration_words(Duration::from_secs(42 * 60 + 10)),
        "42 minutes"
    );
    assert_eq!(duration_words(Duration::from_secs(2 * 3600)), "2 hours");
    assert_eq!(
        duration_words(Duration::from_secs(68 * 60)),
        "1 hour 8 minutes"
    );
    let names: Vec<String> = ["A", "B", "C", "D", "E", "F", "G"]
        .map(String::from)
        .to_vec();
    assert_eq!(named_regions(&names[..1]), "A");
    assert_eq!(named_regions(&names[..2]), "A and B");
    assert_eq!(named_regions(&names[..5]), "A, B, C, D and E");
    assert_eq!(named_regions(&names), "A, B, C, D and 3 other regions");
}
