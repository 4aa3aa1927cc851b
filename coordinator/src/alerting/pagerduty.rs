//! The PagerDuty sink: Events API v2 (`POST /v2/enqueue`). `dedup_key` is `meridian-<id>`,
//! stable per incident, so a re-open or an update lands on the same PagerDuty alert and the
//! resolution closes it; `event_action` is `trigger` while the incident is open and
//! `resolve` once it is not. Severity: page → `critical`, ticket → `warning`, else `info`.
//!
//! Deliberately absent: `acknowledge` (a person acknowledges in PagerDuty, not the monitor).

use serde_json::{Value, json};

use super::{Alert, Links, Secret, rfc3339};

/// PagerDuty's limit on `payload.summary`.
const MAX_SUMMARY: usize = 1024;

/// The stable deduplication key of an incident.
pub fn dedup_key(incident: u64) -> String {
    format!("meridian-{incident}")
}

/// The JSON body.
pub fn body(alert: &Alert, links: &Links, routing_key: &Secret) -> Value {
    let r = &alert.incident;
    let dedup = dedup_key(r.id);
    if alert.is_resolved() {
        return json!({
            "routing_key": routing_key.0,
            "event_action": "resolve",
            "dedup_key": dedup,
        });
    }
    let severity = match r.severity.as_str() {
        "page" => "critical",
        "ticket" => "warning",
        _ => "info",
    };
    let summary: String = alert.summary().chars().take(MAX_SUMMARY).collect();
    let map = links.incident(r.id);
    let mut links_v = vec![json!({ "href": map, "text": "Incident in Meridian" })];
    if let Some(runbook) = links.runbook(&r.class) {
        links_v.push(json!({ "href": runbook, "text": "Runbook" }));
    }
    json!({
        "routing_key": routing_key.0,
        "event_action": "trigger",
        "dedup_key": dedup,
        "payload": {
            "summary": summary,
            "severity": severity,
            "source": links.web,
            "timestamp": rfc3339(r.detected_ms),
            "component": r.targets.join(","),
            "group": r.regions.join(","),
            "class": r.class,
            "custom_details": {
                "incident": r.id,
                "transition": alert.transition.as_str(),
                "state": r.state.as_str(),
                "regions": r.regions,
                "targets": r.targets,
                "explanation": r.explanation,
                "ttd_seconds": r.ttd_ms as f64 / 1000.0,
            },
        },
        "links": links_v,
        "client": "Meridian",
        "client_url": map,
    })
}
