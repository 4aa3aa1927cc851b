//! The generic webhook sink: a JSON body describing the incident, signed with HMAC-SHA256.
//!
//! # Verifying a delivery (receiver side)
//! Each POST carries two headers:
//! - `X-Meridian-Timestamp: <Unix seconds when this attempt was signed>`
//! - `X-Meridian-Signature: sha256=<lower-case hex of HMAC-SHA256(secret, TIMESTAMP "." BODY)>`
//!
//! A receiver reads the raw body bytes (before any JSON parsing), computes
//! `HMAC-SHA256(secret, timestamp_header + "." + body)`, compares it with the header's hex in
//! constant time, and rejects a timestamp more than 5 minutes from its own clock: a captured
//! request cannot be replayed later, and the timestamp cannot be changed without breaking the
//! signature. [`verify`] does exactly that. Each retry is signed afresh. The same incident may
//! arrive more than once (at-least-once delivery): deduplicate on (`incident`, `transition`,
//! `updated`).
//!
//! Deliberately absent: secret rotation with two keys (deploy a receiver accepting both).

use ring::hmac;
use serde_json::{Value, json};

use super::{Alert, Links, Route, Secret, rfc3339};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Meridian-Signature";
/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "X-Meridian-Timestamp";
/// How far a receiver should accept a timestamp from its clock, seconds.
pub const TOLERANCE_S: u64 = 300;

/// The JSON body.
pub fn body(alert: &Alert, links: &Links, route: Route) -> Value {
    let r = &alert.incident;
    let mut links_v = json!({ "incident": links.incident(r.id) });
    if let Some(runbook) = links.runbook(&r.class) {
        links_v["runbook"] = Value::String(runbook);
    }
    json!({
        "version": 1,
        "incident": r.id,
        "transition": alert.transition.as_str(),
        "status": if alert.is_resolved() { "resolved" } else { "firing" },
        "route": route.as_str(),
        "class": r.class,
        "state": r.state.as_str(),
        "severity": r.severity,
        "summary": alert.summary(),
        "regions": r.regions,
        "targets": r.targets,
        "asns": r.asns,
        "probe": r.probe,
        "edge": r.edge,
        "explanation": r.explanation,
        "onset": rfc3339(r.onset_ms),
        "detected": rfc3339(r.detected_ms),
        "paged": r.paged_ms.map(rfc3339),
        "resolved": r.resolved_ms.map(rfc3339),
        "ttd_seconds": r.ttd_ms as f64 / 1000.0,
        "updated": rfc3339(r.updated_ms),
        "links": links_v,
        "maintenance": r.maintenance.windows.iter().map(|w| json!({"id": w.id, "title": w.title})).collect::<Vec<_>>(),
    })
}

/// `sha256=<hex>` of `timestamp "." body` under `secret`.
pub fn signature(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.0.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The signing headers for `body` signed at `timestamp` (Unix seconds).
pub fn headers(secret: &Secret, timestamp: u64, body: &[u8]) -> Vec<(String, String)> {
    vec![
        (TIMESTAMP_HEADER.to_string(), timestamp.to_string()),
        (
            SIGNATURE_HEADER.to_string(),
            signature(secret, timestamp, body),
        ),
    ]
}

/// A receiver's check: the signature matches (constant time) and the timestamp is within
/// [`TOLERANCE_S`] of `now` (Unix seconds).
pub fn verify(secret: &[u8], timestamp: &str, signature: &str, body: &[u8], now: u64) -> bool {
    let Ok(ts) = timestamp.trim().parse::<u64>() else {
        return false;
    };
    if ts.abs_diff(now) > TOLERANCE_S {
        return false;
    }
    let Some(hex) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(tag) = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut message = format!("{}.", timestamp.trim()).into_bytes();
    message.extend_from_slice(body);
    hmac::verify(&key, &message, &tag).is_ok()
}
