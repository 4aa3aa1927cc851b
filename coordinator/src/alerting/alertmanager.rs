//! The Alertmanager sink (API v2): `POST {url}/api/v2/alerts` with a JSON array of alerts.
//!
//! One alert per incident: labels `alertname="MeridianIncident"`, `incident`, `class`,
//! `severity`, `route`, `regions` and `target` (comma lists); annotations `summary`,
//! `description` (the explanation), `map_url`, `runbook_url`, and `maintenance` (the
//! windows the incident overlapped, when any); `startsAt` the estimated
//! onset, `endsAt` the resolution once resolved. Alertmanager keeps no state across its own
//! restarts, so firing alerts are re-sent every `resend_every` and resolved ones for
//! [`RESOLVED_FOR`]. Labels identify an alert: when an incident's scope changes (a region
//! more), the alert under its old labels is ended in the same request, never left to time out.
//!
//! Deliberately absent: several Alertmanagers in one sink (configure one sink each: every
//! Alertmanager of an HA cluster must receive every alert, no load balancer).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Alert, Links, Request, Route, Sink, SinkStats, rfc3339};

/// How long a resolved alert keeps being re-sent (Alertmanager's clients' convention).
pub const RESOLVED_FOR: Duration = Duration::from_secs(300);

/// `{base}/api/v2/alerts`.
pub fn endpoint(base: &url::Url) -> url::Url {
    let mut u = base.clone();
    let path = format!("{}/api/v2/alerts", base.path().trim_end_matches('/'));
    u.set_path(&path);
    u
}

/// The alert's labels.
pub fn labels(alert: &Alert, route: Route) -> Value {
    let r = &alert.incident;
    json!({
        "alertname": "MeridianIncident",
        "incident": r.id.to_string(),
        "class": r.class,
        "severity": r.severity,
        "route": route.as_str(),
        "regions": r.regions.join(","),
        "target": r.targets.join(","),
    })
}

/// The API v2 alert for `alert`; `now_ms` ends a resolved incident that has no resolution
/// time (interrupted).
pub fn alert(alert: &Alert, links: &Links, route: Route, now_ms: i64) -> Value {
    let r = &alert.incident;
    let map = links.incident(r.id);
    let mut annotations = json!({
        "summary": alert.summary(),
        "description": r.explanation,
        "map_url": map,
    });
    if let Some(runbook) = links.runbook(&r.class) {
        annotations["runbook_url"] = Value::String(runbook);
    }
    // Overlapping maintenance (the part of its scope that is under planned work).
    if !r.maintenance.windows.is_empty() {
        let names: Vec<String> = r
            .maintenance
            .windows
            .iter()
            .map(|w| format!("{} ({})", w.id, w.title))
            .collect();
        annotations["maintenance"] = Value::String(names.join(", "));
    }
    let mut v = json!({
        "labels": labels(alert, route),
        "annotations": annotations,
        "startsAt": rfc3339(r.onset_ms),
        "generatorURL": map,
    });
    if alert.is_resolved() {
        v["endsAt"] = Value::String(rfc3339(r.resolved_ms.unwrap_or(now_ms)));
    }
    v
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The sink's task: delivers each alert (with retries), and re-sends what is firing (and
/// what resolved less than [`RESOLVED_FOR`] ago) every `every`, one attempt per round.
pub(super) async fn run(
    sink: &Sink,
    base: &url::Url,
    every: Duration,
    mut rx: mpsc::Receiver<Alert>,
) {
    let url = endpoint(base);
    let route = sink.settings.route;
    // Incident id -> the latest alert, and when it resolved (for pruning).
    let mut active: BTreeMap<u64, (Alert, Option<tokio::time::Instant>)> = BTreeMap::new();
    let mut resend = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            next = rx.recv() => {
                let Some(a) = next else { break };
                let now = now_ms();
                let mut batch = vec![alert(&a, &sink.links, route, now)];
                if let Some((prev, _)) = active.get(&a.incident.id)
                    && labels(prev, route) != labels(&a, route) {
                        let mut ended = alert(prev, &sink.links, route, now);
                        ended["endsAt"] = Value::String(rfc3339(now));
                        batch.push(ended);
                    }
                let body = Bytes::from(Value::Array(batch).to_string());
                let request = Request { url: url.clone(), headers: Vec::new(), body };
                sink.deliver(&a, || request.clone()).await;
                let resolved = a.is_resolved().then(tokio::time::Instant::now);
                active.insert(a.incident.id, (a, resolved));
            }
            _ = resend.tick() => {
                active.retain(|_, (_, resolved)| resolved.is_none_or(|at| at.elapsed() < RESOLVED_FOR));
                if active.is_empty() {
                    continue;
                }
                let now = now_ms();
                let batch: Vec<Value> = active.values().map(|(a, _)| alert(a, &sink.links, route, now)).collect();
                let body = Bytes::from(Value::Array(batch).to_string());
                let answer = super::http::post_json(&url, &[], body, sink.retry.timeout).await;
                match super::retry::Attempt::from_response(answer) {
                    super::retry::Attempt::Done => SinkStats::add(&sink.stats.sent, 1),
                    super::retry::Attempt::Retry(error, _) | super::retry::Attempt::Fatal(error) => {
                        SinkStats::add(&sink.stats.failed, 1);
                        tracing::warn!(sink = %sink.settings.name, alerts = active.len(), %error, "re-sending alerts to Alertmanager failed");
                    }
                }
            }
        }
    }
}
