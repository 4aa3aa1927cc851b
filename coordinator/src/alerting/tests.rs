//! Unit tests of alerting: routing, payload shapes, the webhook signature, bounded retries
//! (paused clock) and the never-blocking queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use super::retry::{Attempt, RetryPolicy, deliver};
use super::*;
use crate::store::incidents::StoredState;

/// A site incident (origin-down, paged) at 2026-11-28T09:00:00Z.
pub(crate) fn incident(id: u64, class: &str, severity: &str) -> IncidentRecord {
    let t0 = 1_795_856_400_000;
    IncidentRecord {
        id,
        class: class.into(),
        state: StoredState::Paged,
        severity: severity.into(),
        regions: vec!["eu-central".into(), "us-east".into()],
        targets: vec!["shop-home".into()],
        asns: vec![],
        probe: None,
        edge: None,
        onset_ms: t0,
        detected_ms: t0 + 90_000,
        ttd_ms: 90_000,
        paged_ms: Some(t0 + 120_000),
        resolved_ms: None,
        explanation: "shop-home fails from 2 of 2 regions".into(),
        evidence: vec![],
        timeline: vec![],
        updated_ms: t0 + 120_000,
        maintenance: Default::default(),
    }
}

fn alert(r: IncidentRecord, t: Transition) -> Alert {
    Alert {
        incident: r,
        transition: t,
    }
}

fn links() -> Links {
    Links {
        web: "https://meridian.example.com".into(),
        runbook: Some("https://runbooks.example.com/m/".into()),
    }
}

#[test]
fn site_incidents_page_only_site_sinks_once_paged() {
    let paged = alert(incident(1, "origin-down", "page"), Transition::Paged);
    assert!(accepts(Route::Site, false, &paged));
    assert!(!accepts(Route::Operational, false, &paged));

    let mut confirmed = incident(2, "regional-network", "page");
    confirmed.paged_ms = None;
    confirmed.state = StoredState::Confirmed;
    assert!(!accepts(
        Route::Site,
        false,
        &alert(confirmed, Transition::Opened)
    ));

    // A paged incident's resolution reaches the pager too.
    let mut resolved = incident(3, "origin-down", "page");
    resolved.state = StoredState::Resolved;
    resolved.resolved_ms = Some(resolved.updated_ms + 1);
    assert!(accepts(
        Route::Site,
        false,
        &alert(resolved, Transition::Resolved)
    ));

    let ticket = alert(incident(4, "origin-slow", "ticket"), Transition::Opened);
    assert!(!accepts(Route::Site, false, &ticket));
    assert!(accepts(Route::Site, true, &ticket));
    assert!(!accepts(Route::Operational, true, &ticket));
}

#[test]
fn monitoring_network_states_take_the_operational_route_only() {
    for class in ["probe-fault", "clock-skew", "region-silent"] {
        let mut r = incident(5, class, "info");
        r.paged_ms = None;
        let a = alert(r, Transition::Opened);
        assert!(accepts(Route::Operational, false, &a), "{class}");
        assert!(!accepts(Route::Site, true, &a), "{class}");
    }
}

#[test]
fn alertmanager_alert_shape() {
    let a = alert(incident(42, "origin-down", "page"), Transition::Paged);
    let v = alertmanager::alert(&a, &links(), Route::Site, 0);
    assert_eq!(
        v,
        json!({
            "labels": {
                "alertname": "MeridianIncident", "incident": "42", "class": "origin-down",
                "severity": "page", "route": "site", "regions": "eu-central,us-east",
                "target": "shop-home",
            },
            "annotations": {
                "summary": "Meridian #42 origin-down: shop-home in eu-central, us-east",
                "description": "shop-home fails from 2 of 2 regions",
                "map_url": "https://meridian.example.com/incidents/42",
                "runbook_url": "https://runbooks.example.com/m/origin-down",
            },
            "startsAt": "2026-11-28T09:00:00.000Z",
            "generatorURL": "https://meridian.example.com/incidents/42",
        })
    );
    let mut r = incident(42, "origin-down", "page");
    r.state = StoredState::Resolved;
    r.resolved_ms = Some(r.onset_ms + 600_000);
    let v = alertmanager::alert(&alert(r, Transition::Resolved), &links(), Route::Site, 0);
    assert_eq!(v["endsAt"], "2026-11-28T09:10:00.000Z");
    assert!(
        v["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Resolved: ")
    );
    assert_eq!(
        alertmanager::endpoint(&"http://am:9093/prefix/".parse().unwrap()).as_str(),
        "http://am:9093/prefix/api/v2/alerts"
    );
}

#[test]
fn webhook_body_and_signature_verify() {
    let a = alert(incident(7, "origin-down", "page"), Transition::Paged);
    let v = webhook::body(&a, &links(), Route::Site);
    assert_eq!(v["incident"], 7);
    assert_eq!(v["transition"], "paged");
    assert_eq!(v["status"], "firing");
    assert_eq!(v["state"], "paged");
    assert_eq!(v["regions"], json!(["eu-central", "us-east"]));
    assert_eq!(v["targets"], json!(["shop-home"]));
    assert_eq!(v["ttd_seconds"], 90.0);
    assert_eq!(
        v["links"],
        json!({"incident": "https://meridian.example.com/incidents/7",
               "runbook": "https://runbooks.example.com/m/origin-down"})
    );
    let body = v.to_string();
    let secret = Secret("k3y".into());
    let headers = webhook::headers(&secret, 1_000_000, body.as_bytes());
    assert_eq!(
        headers[0],
        ("X-Meridian-Timestamp".into(), "1000000".into())
    );
    let sig = &headers[1].1;
    assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
    // Known answer: HMAC-SHA256("k3y", "1000000.{}").
    assert_eq!(
        webhook::signature(&secret, 1_000_000, b"{}"),
        "sha256=".to_string() + &hmac_hex(b"k3y", b"1000000.{}")
    );
    let ok = |key: &[u8], ts: &str, body: &[u8], now| webhook::verify(key, ts, sig, body, now);
    assert!(ok(b"k3y", "1000000", body.as_bytes(), 1_000_100));
    assert!(!ok(b"other", "1000000", body.as_bytes(), 1_000_100));
    assert!(
        !ok(b"k3y", "1000001", body.as_bytes(), 1_000_100),
        "timestamp is signed"
    );
    assert!(!ok(b"k3y", "1000000", b"{}", 1_000_100), "body is signed");
    assert!(
        !ok(b"k3y", "1000000", body.as_bytes(), 1_000_301),
        "replay window"
    );
}

/// An independent HMAC-SHA256 (RFC 2104 over ring's SHA-256) for the known-answer check.
#[test]
fn maintenance_is_named_in_the_alert_and_a_held_page_reaches_no_site_sink() {
    let mut r = incident(9, "origin-down", "page");
    r.maintenance
        .windows
        .push(crate::store::incidents::MaintenanceNote {
            id: "db".into(),
            title: "Database upgrade".into(),
            since_ms: 1,
        });
    // Overlapping a window, not held: it pages, and says which window it overlapped.
    let a = alert(r.clone(), Transition::Paged);
    assert!(accepts(Route::Site, false, &a));
    let am = alertmanager::alert(&a, &links(), Route::Site, 0);
    assert_eq!(am["annotations"]["maintenance"], "db (Database upgrade)");
    let hook = webhook::body(&a, &links(), Route::Site);
    assert_eq!(hook["maintenance"][0]["id"], "db");
    // Held back by the window: no site sink, ticket-taking or not; nor any operational one.
    r.maintenance.suppressed_by = Some("db".into());
    let held = alert(r, Transition::Paged);
    for (route, tickets) in [
        (Route::Site, false),
        (Route::Site, true),
        (Route::Operational, true),
    ] {
        assert!(!accepts(route, tickets, &held), "{route:?} {tickets}");
    }
    // Without windows the webhook's list is empty, the annotation absent.
    let plain = alert(incident(10, "origin-down", "page"), Transition::Paged);
    assert_eq!(
        webhook::body(&plain, &links(), Route::Site)["maintenance"],
        serde_json::json!([])
    );
    assert!(
        alertmanager::alert(&plain, &links(), Route::Site, 0)["annotations"]
            .get("maintenance")
            .is_none()
    );
}

fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    use ring::digest::{SHA256, digest};
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let mut inner = pad(0x36);
    inner.extend_from_slice(msg);
    let mut outer = pad(0x5c);
    outer.extend_from_slice(digest(&SHA256, &inner).as_ref());
    digest(&SHA256, &outer)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn slack_payload_is_short_text_and_blocks() {
    let a = alert(incident(9, "origin-down", "page"), Transition::Paged);
    let v = slack::body(&a, &links());
    assert_eq!(
        v["text"],
        "[PAGE] Meridian #9 origin-down: shop-home in eu-central, us-east"
    );
    assert_eq!(v["blocks"][0]["type"], "section");
    assert_eq!(
        v["blocks"][0]["text"]["text"],
        "*[PAGE] Meridian #9 origin-down: shop-home in eu-central, us-east*\nshop-home fails from 2 of 2 regions"
    );
    assert_eq!(
        v["blocks"][1]["elements"][0]["text"],
        "Incident #9 · paged · <https://meridian.example.com/incidents/9|open in Meridian> · <https://runbooks.example.com/m/origin-down|runbook>"
    );
}

#[test]
fn pagerduty_trigger_and_resolve() {
    let key = Secret("R0UTING".into());
    let a = alert(incident(11, "origin-down", "page"), Transition::Paged);
    let v = pagerduty::body(&a, &links(), &key);
    assert_eq!(v["routing_key"], "R0UTING");
    assert_eq!(v["event_action"], "trigger");
    assert_eq!(v["dedup_key"], "meridian-11");
    assert_eq!(v["payload"]["severity"], "critical");
    assert_eq!(v["payload"]["source"], "https://meridian.example.com");
    assert_eq!(v["payload"]["timestamp"], "2026-11-28T09:01:30.000Z");
    assert_eq!(
        v["payload"]["custom_details"]["explanation"],
        "shop-home fails from 2 of 2 regions"
    );
    assert_eq!(
        v["links"][0]["href"],
        "https://meridian.example.com/incidents/11"
    );
    let mut r = incident(11, "origin-down", "page");
    r.state = StoredState::Resolved;
    r.resolved_ms = Some(r.updated_ms);
    let v = pagerduty::body(&alert(r, Transition::Resolved), &links(), &key);
    assert_eq!(
        v,
        json!({"routing_key": "R0UTING", "event_action": "resolve", "dedup_key": "meridian-11"})
    );
    let ticket = alert(incident(12, "origin-slow", "ticket"), Transition::Opened);
    assert_eq!(
        pagerduty::body(&ticket, &links(), &key)["payload"]["severity"],
        "warning"
    );
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        max_total: Duration::from_secs(60),
        min_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(8),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded_in_attempts() {
    let calls = Arc::new(AtomicUsize::new(0));
    let start = tokio::time::Instant::now();
    let c = calls.clone();
    let outcome = deliver(&policy(), |_| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Attempt::Retry("HTTP 503".into(), None) }
    })
    .await;
    assert!(!outcome.delivered);
    assert_eq!(outcome.attempts, 5);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    // Delays 1, 2, 4, 8 s, each plus up to as much jitter: at least 15 s, under 30 s.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(15) && took < Duration::from_secs(30),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded_in_total_time_and_stop_on_success_or_fatal() {
    // Every attempt hangs past its timeout: the total budget ends it before 5 attempts.
    let p = RetryPolicy {
        max_total: Duration::from_secs(12),
        ..policy()
    };
    let start = tokio::time::Instant::now();
    let outcome = deliver(&p, |_| std::future::pending::<Attempt>()).await;
    assert!(!outcome.delivered);
    assert!(outcome.attempts < 5, "{outcome:?}");
    assert!(
        start.elapsed() <= Duration::from_secs(12),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(outcome.last_error.as_deref(), Some("timed out"));

    let outcome = deliver(&policy(), |n| async move {
        if n < 3 {
            Attempt::Retry("HTTP 500".into(), None)
        } else {
            Attempt::Done
        }
    })
    .await;
    assert_eq!((outcome.delivered, outcome.attempts), (true, 3));

    let outcome = deliver(&policy(), |_| async { Attempt::Fatal("HTTP 400".into()) }).await;
    assert_eq!((outcome.delivered, outcome.attempts), (false, 1));

    // A server's Retry-After is honoured.
    let start = tokio::time::Instant::now();
    let outcome = deliver(&policy(), |n| async move {
        if n == 1 {
            Attempt::Retry("HTTP 429".into(), Some(Duration::from_secs(20)))
        } else {
            Attempt::Done
        }
    })
    .await;
    assert!(outcome.delivered);
    assert!(start.elapsed() >= Duration::from_secs(20));
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let settings = AlertingSettings {
        queue: 1,
        ..AlertingSettings::default()
    };
    // No sinks: the dispatcher drains its queue; with a paused consumer the second send
    // finds it full. Take the sender before the task can run (current-thread runtime).
    let d = Dispatcher::start(&settings, links());
    let r = incident(1, "origin-down", "page");
    for _ in 0..3 {
        d.sender.send(&r, Transition::Paged);
    }
    assert_eq!(d.sender.dropped(), 2);
}
