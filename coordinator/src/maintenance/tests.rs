use super::*;
use crate::store::incidents::IncidentRecord;

fn known() -> (Vec<String>, Vec<String>) {
    (
        vec!["shop".to_string(), "blog".to_string()],
        vec![
            "eu-central".to_string(),
            "us-east".to_string(),
            "me-south".to_string(),
        ],
    )
}

fn window(raw: &RawWindow) -> Window {
    let (t, r) = known();
    raw.validate(
        Source::Config,
        &Known {
            targets: &t,
            regions: &r,
        },
    )
    .expect("valid window")
}

fn problems(raw: &RawWindow) -> Vec<String> {
    let (t, r) = known();
    raw.validate(
        Source::Api,
        &Known {
            targets: &t,
            regions: &r,
        },
    )
    .expect_err("invalid window")
    .iter()
    .map(ToString::to_string)
    .collect()
}

fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("test time")
        .timestamp_millis()
}

fn weekly_berlin() -> RawWindow {
    RawWindow {
        id: "sunday-backup".into(),
        title: "Weekly backup".into(),
        targets: vec!["shop".into()],
        every: Some("week".into()),
        days: vec!["sun".into()],
        at: Some("02:00".into()),
        duration: Some("90m".into()),
        timezone: Some("Europe/Berlin".into()),
        ..RawWindow::default()
    }
}

#[test]
fn a_one_off_window_in_a_time_zone_opens_and_closes_on_time() {
    let w = window(&RawWindow {
        id: "db".into(),
        title: "Database upgrade".into(),
        start: Some(WhenText::Text("2026-12-01 02:00".into())),
        end: Some(WhenText::Text("2026-12-01T04:00:00+01:00".into())),
        timezone: Some("Europe/Berlin".into()),
        ..RawWindow::default()
    });
    // 02:00 Berlin in December is 01:00 UTC.
    assert_eq!(w.active_at(ms("2026-12-01T00:59:59Z")), None);
    assert_eq!(
        w.active_at(ms("2026-12-01T01:00:00Z")),
        Some(Occurrence {
            start_ms: ms("2026-12-01T01:00:00Z"),
            end_ms: ms("2026-12-01T03:00:00Z"),
        })
    );
    assert_eq!(
        w.active_at(ms("2026-12-01T03:00:00Z")),
        None,
        "the end is exclusive"
    );
    assert!(w.is_over(ms("2026-12-01T03:00:00Z")));
    assert_eq!(w.describe(), "2026-12-01 02:00 – 04:00 Europe/Berlin");
}

#[test]
fn a_weekly_window_follows_local_time_across_daylight_saving() {
    let w = window(&weekly_berlin());
    // Winter: 02:00 CET = 01:00 UTC; summer: 02:00 CEST = 00:00 UTC.
    assert!(w.active_at(ms("2026-12-06T01:30:00Z")).is_some());
    assert!(w.active_at(ms("2026-12-06T00:30:00Z")).is_none());
    assert!(w.active_at(ms("2026-07-05T00:30:00Z")).is_some());
    assert!(w.active_at(ms("2026-07-05T01:30:00Z")).is_none());
    // A Saturday: nothing.
    assert!(w.active_at(ms("2026-12-05T01:30:00Z")).is_none());
    // 2027-03-28 is the spring-forward Sunday: 02:00 does not exist; it opens at 03:00 CEST.
    let spring = w
        .active_at(ms("2027-03-28T01:10:00Z"))
        .expect("open after the gap");
    assert_eq!(spring.start_ms, ms("2027-03-28T01:00:00Z"));
    assert_eq!(spring.end_ms, ms("2027-03-28T02:30:00Z"));
    let next = w.occurrences(ms("2026-12-01T00:00:00Z"), ms("2026-12-15T00:00:00Z"), 10);
    assert_eq!(
        next.iter().map(|o| o.start_ms).collect::<Vec<_>>(),
        vec![ms("2026-12-06T01:00:00Z"), ms("2026-12-13T01:00:00Z")]
    );
    assert_eq!(
        w.describe(),
        "every Sun at 02:00 for 1h 30m (Europe/Berlin)"
    );
}

#[test]
fn an_occurrence_crossing_midnight_covers_the_next_day() {
    let w = window(&RawWindow {
        id: "nightly".into(),
        title: "Nightly reindex".into(),
        every: Some("day".into()),
        at: Some("23:30".into()),
        duration: Some("1h".into()),
        ..RawWindow::default()
    });
    let o = w.active_at(ms("2026-12-02T00:15:00Z")).expect("still open");
    assert_eq!(o.start_ms, ms("2026-12-01T23:30:00Z"));
    assert!(w.active_at(ms("2026-12-02T00:30:00Z")).is_none());
}

#[test]
fn monthly_windows_skip_months_without_their_day_and_respect_from_and_until() {
    let w = window(&RawWindow {
        id: "eom".into(),
        title: "Month-end batch".into(),
        every: Some("month".into()),
        day: Some(31),
        at: Some("01:00".into()),
        duration: Some("2h".into()),
        until: Some("2027-03-31".into()),
        ..RawWindow::default()
    });
    let got = w.occurrences(ms("2026-11-01T00:00:00Z"), ms("2027-06-01T00:00:00Z"), 20);
    let starts: Vec<i64> = got.iter().map(|o| o.start_ms).collect();
    assert_eq!(
        starts,
        vec![
            ms("2026-12-31T01:00:00Z"),
            ms("2027-01-31T01:00:00Z"),
            ms("2027-03-31T01:00:00Z"),
        ]
    );
    assert!(w.is_over(ms("2027-04-10T00:00:00Z")));
    assert!(!w.is_over(ms("2027-03-01T00:00:00Z")));
}

#[test]
fn coverage_is_full_only_when_every_pair_of_the_scope_is_covered() {
    let shop_eu = window(&RawWindow {
        id: "eu".into(),
        title: "EU network work".into(),
        targets: vec!["shop".into()],
        regions: vec!["eu-central".into()],
        start: Some(WhenText::Text("2026-12-01T00:00:00Z".into())),
        end: Some(WhenText::Text("2026-12-01T06:00:00Z".into())),
        ..RawWindow::default()
    });
    let all_us = window(&RawWindow {
        id: "us".into(),
        title: "US work".into(),
        regions: vec!["us-east".into()],
        start: Some(WhenText::Text("2026-12-01T00:00:00Z".into())),
        end: Some(WhenText::Text("2026-12-01T06:00:00Z".into())),
        ..RawWindow::default()
    });
    let windows = vec![shop_eu, all_us];
    let at = ms("2026-12-01T01:00:00Z");
    let s = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();

    let c = coverage(&windows, &s(&["shop"]), &s(&["eu-central", "us-east"]), at);
    assert!(
        c.full,
        "the two windows together cover shop in both regions"
    );
    assert_eq!(c.windows.len(), 2);

    let c = coverage(&windows, &s(&["shop"]), &s(&["eu-central", "me-south"]), at);
    assert!(!c.full, "me-south is not covered");
    assert_eq!(c.windows, vec![("eu".into(), "EU network work".into())]);

    let c = coverage(&windows, &s(&["blog"]), &s(&["eu-central"]), at);
    assert_eq!(c, Coverage::default(), "blog is not in the EU window");

    // An incident without regions (everywhere) is covered only by a window for every region.
    let c = coverage(&windows, &s(&["shop"]), &[], at);
    assert!(!c.full);

    // Outside the windows nothing is covered.
    let c = coverage(
        &windows,
        &s(&["shop"]),
        &s(&["eu-central"]),
        ms("2026-12-01T07:00:00Z"),
    );
    assert_eq!(c, Coverage::default());
}

#[test]
fn every_mistake_is_reported_with_its_field() {
    let p = problems(&RawWindow {
        id: "bad id!".into(),
        targets: vec!["nope".into()],
        regions: vec!["mars".into()],
        every: Some("week".into()),
        days: vec!["sunday".into(), "caturday".into()],
        at: Some("25:00".into()),
        duration: Some("8d".into()),
        timezone: Some("Europe/Atlantis".into()),
        ..RawWindow::default()
    });
    for needle in [
        "id: \"bad id!\" is not an id",
        "title: missing",
        "targets: \"nope\" is not a configured target id",
        "regions: \"mars\" is not a region of the catalog",
        "timezone: \"Europe/Atlantis\" is not an IANA time zone",
        "days: \"caturday\" is not a weekday",
        "at: \"25:00\" is not a time",
        "duration: as long as the time between two occurrences",
    ] {
        assert!(
            p.iter().any(|m| m.starts_with(needle)),
            "{needle:?} not among {p:#?}"
        );
    }

    let p = problems(&RawWindow {
        id: "x".into(),
        title: "X".into(),
        start: Some(WhenText::Text("2026-12-01T04:00:00Z".into())),
        end: Some(WhenText::Text("2026-12-01T02:00:00Z".into())),
        ..RawWindow::default()
    });
    assert_eq!(p, vec!["end: is not after `start`".to_string()]);

    let p = problems(&RawWindow {
        id: "x".into(),
        title: "X".into(),
        start: Some(WhenText::Text("tomorrow".into())),
        every: Some("day".into()),
        ..RawWindow::default()
    });
    assert!(p[0].starts_with("every: give `start` and `end`"), "{p:?}");

    let p = problems(&RawWindow {
        id: "x".into(),
        title: "X".into(),
        ..RawWindow::default()
    });
    assert!(p[0].starts_with("start: missing"), "{p:?}");
}

#[test]
fn toml_datetime_literals_and_strings_both_parse() {
    let text = r#"
id = "db"
title = "Database upgrade"
start = 2026-12-01T02:00:00+01:00
end = "2026-12-01T04:00:00+01:00"
"#;
    let raw: RawWindow = toml::from_str(text).expect("parses");
    let w = window(&raw);
    assert_eq!(
        w.schedule,
        Schedule::Once {
            start_ms: ms("2026-12-01T01:00:00Z"),
            end_ms: ms("2026-12-01T03:00:00Z"),
        }
    );
    // The stored form (JSON) round-trips.
    let json = serde_json::to_string(&raw).expect("serializes");
    let back: RawWindow = serde_json::from_str(&json).expect("parses back");
    assert_eq!(window(&back).schedule, w.schedule);
}

fn paged_incident() -> IncidentRecord {
    IncidentRecord {
        id: 7,
        class: "origin-down".into(),
        state: crate::store::incidents::StoredState::Confirmed,
        severity: "page".into(),
        regions: vec!["eu-central".into(), "us-east".into()],
        targets: vec!["shop-home".into()],
        asns: vec![],
        probe: None,
        edge: None,
        onset_ms: 1_000,
        detected_ms: 2_000,
        ttd_ms: 1_000,
        paged_ms: None,
        resolved_ms: None,
        explanation: "shop-home fails from 2 of 2 regions".into(),
        evidence: vec![],
        timeline: vec![],
        updated_ms: 2_000,
        maintenance: MaintenanceRecord::default(),
    }
}

/// Whether a `site` sink that takes no tickets would be sent this record.
fn pages(record: &IncidentRecord) -> bool {
    use crate::alerting::{Alert, Route, Transition, accepts};
    accepts(
        Route::Site,
        false,
        &Alert {
            incident: record.clone(),
            transition: Transition::Paged,
        },
    )
}

fn full(id: &str) -> Coverage {
    Coverage {
        windows: vec![(id.into(), "Database upgrade".into())],
        full: true,
    }
}

#[test]
fn a_page_is_held_while_the_window_covers_the_incident_and_goes_out_when_it_ends() {
    let mut hold = Hold::default();
    // Confirmed inside the window: nothing to page yet, but it is marked.
    let mut r = paged_incident();
    hold.apply(&full("db"), &mut r, 2_000);
    assert_eq!(r.maintenance.suppressed_by.as_deref(), Some("db"));
    assert_eq!(r.maintenance.suppressed_ms, None);
    // The engine pages: held back.
    let mut r = paged_incident();
    r.state = crate::store::incidents::StoredState::Paged;
    r.paged_ms = Some(3_000);
    hold.apply(&full("db"), &mut r, 3_000);
    assert!(r.maintenance.is_suppressed());
    assert_eq!(r.maintenance.suppressed_ms, Some(3_000));
    assert!(!pages(&r), "held back from site sinks");
    assert!(
        r.timeline
            .iter()
            .any(|t| t.at_ms == 3_000 && t.what.starts_with("page held back")),
        "{:?}",
        r.timeline
    );
    // The window ends with the incident still open: released, it pages.
    let mut r2 = paged_incident();
    r2.state = crate::store::incidents::StoredState::Paged;
    r2.paged_ms = Some(3_000);
    hold.apply(&Coverage::default(), &mut r2, 9_000);
    assert!(!r2.maintenance.is_suppressed());
    assert_eq!(r2.maintenance.released_ms, Some(9_000));
    assert!(pages(&r2));
    assert_eq!(r2.maintenance.windows.len(), 1, "the window stays noted");
    // A window opening again later never silences a page that went out.
    let mut r3 = r2.clone();
    hold.apply(&full("db"), &mut r3, 10_000);
    assert!(pages(&r3), "its resolution must reach whoever was paged");
}

#[test]
fn an_incident_held_to_its_end_never_pages_nor_resolves_a_page() {
    let mut hold = Hold::default();
    let mut r = paged_incident();
    r.state = crate::store::incidents::StoredState::Paged;
    r.paged_ms = Some(3_000);
    hold.apply(&full("db"), &mut r, 3_000);
    assert!(!pages(&r));
    // Resolved after the window closed: the page was never sent, so neither is its end.
    r.state = crate::store::incidents::StoredState::Resolved;
    r.resolved_ms = Some(8_000);
    hold.apply(&Coverage::default(), &mut r, 8_000);
    assert!(r.maintenance.is_suppressed());
    assert!(!pages(&r));
}

#[test]
fn an_incident_reaching_beyond_the_windows_pages_and_names_them() {
    let mut hold = Hold::default();
    let mut r = paged_incident();
    r.state = crate::store::incidents::StoredState::Paged;
    r.paged_ms = Some(3_000);
    let partial = Coverage {
        windows: vec![("eu".into(), "EU network work".into())],
        full: false,
    };
    hold.apply(&partial, &mut r, 3_000);
    assert!(pages(&r));
    assert!(!r.maintenance.is_suppressed());
    assert_eq!(r.maintenance.windows[0].id, "eu");
    assert!(r.timeline.iter().any(|t| t.what.contains("\"eu\"")));
    // A monitoring-network state is never matched (the caller skips it); without windows the
    // record stays clean.
    let mut clean = paged_incident();
    Hold::default().apply(&Coverage::default(), &mut clean, 1);
    assert!(clean.maintenance.is_empty());
    assert!(clean.timeline.is_empty());
}
