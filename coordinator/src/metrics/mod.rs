//! The coordinator's `/metrics` for Prometheus, served on `listen.http` beside the web UI:
//! what ingest counted, which probes are alive and how far their clocks are off, the open
//! incidents, per-(target, check, region, phase) latency histograms with failure counts, and
//! the alert sinks' deliveries ([`alerts`]).
//!
//! # Decisions
//! - **prometheus-client, OpenMetrics text** (`application/openmetrics-text; version=1.0.0;
//!   charset=utf-8`, ending in `# EOF`), which is what Prometheus asks for first. A request
//!   whose `Accept` names `text/plain` and not OpenMetrics gets the classic text format 0.0.4
//!   instead, the same samples (`curl -H 'Accept: text/plain' … | promtool check metrics`:
//!   promtool lints only that format).
//! - **Access**: unauthenticated unless `[web] metrics_token` is set; then the scrape must send
//!   `Authorization: Bearer <token>` (Prometheus: `authorization: {credentials_file: …}`).
//!   `listen.http` usually sits behind the operator's proxy, which also publishes the status
//!   page: either the proxy does not forward `/metrics`, or the token guards it. No browser
//!   session is involved; the metrics name probes, regions, targets and incident classes,
//!   nothing a member wrote.
//! - **Read at scrape time** from what the service already keeps: [`Counters`], the probes'
//!   liveness ([`ServiceHandle::probe_states`], silence as [`crate::service::is_silent`] says),
//!   the detection thread's newest [`LiveView`](crate::service::live::LiveView), the alert
//!   dispatcher's counters ([`AlertStats`], handed to the web side by `coordinator run`; none
//!   in `coordinator demo`, which sends no alerts). Only the check histograms
//!   ([`CheckMetrics`]) are state of their own, fed at ingest.
//! - **Names** follow Prometheus' conventions: the `meridian_` prefix, base units in the name
//!   (`_seconds`), `_total` on counters, one family with an `outcome` or `reason` label where
//!   the parts add up to a whole (stored + duplicate + rejected = every result received).
//!
//! Cardinality: per probe (up, connected, last seen, clock offset: 4 series each), per
//! incident class × severity (33), per alert sink (4), and the check histograms (see
//! [`checks`]): all bounded by the fleet and the configuration, none by traffic.
//!
//! Deliberately absent: alerting on site incidents (the coordinator's own incidents and
//! drafts do that; `deploy/prometheus/alerts.yml` watches the monitoring system itself).

mod alerts;
mod checks;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

pub use alerts::{AlertMetrics, QUEUE_SINK};
pub use checks::{BUCKETS, CheckMetrics};

use crate::alerting::AlertStats;
use crate::detect::{Class, Severity};
use crate::service::live::OpenIncident;
use crate::service::{Counters, ProbeState, ServiceHandle};
use crate::web::AppState;

/// The OpenMetrics text format's content type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which exposition format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics text 1.0.0 (the default).
    OpenMetrics,
    /// Prometheus text 0.0.4.
    Text,
}

impl Format {
    /// OpenMetrics unless `accept` names `text/plain` without naming OpenMetrics (q-values are
    /// not weighed: Prometheus lists OpenMetrics first, `curl` sends `*/*`).
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("text/plain") && !a.contains("application/openmetrics-text") => {
                Format::Text
            }
            _ => Format::OpenMetrics,
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::Text => prometheus_text::CONTENT_TYPE,
        }
    }
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.settings.metrics_token
        && !bearer_matches(&headers, token)
    {
        let mut res = (StatusCode::UNAUTHORIZED, "a metrics token is required\n").into_response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return res;
    }
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    match encode(&state.handle, state.alerts.as_ref(), format) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            )],
            body,
        )
            .into_response(),
        Err(std::fmt::Error) => {
            tracing::error!("encoding the metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Whether the request carries `Authorization: Bearer <token>`; compared in constant time.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let (a, b) = (presented.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Everything the running service (and its alert dispatcher, if any) exposes, in `format`.
pub fn encode(
    handle: &ServiceHandle,
    alerts: Option<&AlertStats>,
    format: Format,
) -> Result<String, std::fmt::Error> {
    let open = handle.live_view().borrow().open.clone();
    let registry = registry(
        handle.counters(),
        &handle.probe_states(),
        &open,
        handle.check_metrics(),
        alerts,
    );
    let mut out = String::new();
    match format {
        Format::OpenMetrics => text::encode(&mut out, &registry)?,
        Format::Text => prometheus_text::encode(&mut out, &registry)?,
    }
    Ok(out)
}

/// A registry holding one scrape's worth of values.
pub fn registry(
    counters: &Counters,
    probes: &[ProbeState],
    open: &[OpenIncident],
    checks: &Arc<CheckMetrics>,
    alerts: Option<&AlertStats>,
) -> Registry {
    let mut r = Registry::default();
    let info = Family::<[(&str, &str); 1], Gauge>::default();
    info.get_or_create(&[("version", env!("CARGO_PKG_VERSION"))])
        .set(1);
    r.register(
        "meridian_build_info",
        "The coordinator's version; always 1",
        info,
    );
    ingest(&mut r, counters);
    probe_families(&mut r, probes);
    incidents(&mut r, open);
    r.register_collector(Box::new(checks.clone()));
    r.register_collector(Box::new(AlertMetrics(alerts.cloned())));
    r
}

/// A counter holding `value`.
fn counter(value: &AtomicU64) -> Counter {
    let c = Counter::default();
    c.inc_by(value.load(Ordering::Relaxed));
    c
}

/// A counter family with one label, one series per `(value, counter)`.
fn split(
    label: &'static str,
    parts: &[(&'static str, &AtomicU64)],
) -> Family<[(&'static str, &'static str); 1], Counter> {
    let family = Family::<[(&'static str, &'static str); 1], Counter>::default();
    for (value, n) in parts {
        family
            .get_or_create(&[(label, *value)])
            .inc_by(n.load(Ordering::Relaxed));
    }
    family
}

/// The service's event counters.
fn ingest(r: &mut Registry, c: &Counters) {
    r.register(
        "meridian_ingest_results",
        "Results received in batches, by outcome: stored (new), duplicate (stored before, \
         re-sent after a lost ack), rejected (refused by validation)",
        split(
            "outcome",
            &[
                ("stored", &c.results_stored),
                ("duplicate", &c.results_duplicate),
                ("rejected", &c.results_rejected),
            ],
        ),
    );
    r.register(
        "meridian_ingest_results_unassigned",
        "Of the rejected results, those of a check outside the probe's current and previous \
         assignment",
        counter(&c.results_unassigned),
    );
    r.register(
        "meridian_ingest_batches",
        "Result batches stored and acknowledged",
        counter(&c.batches),
    );
    r.register(
        "meridian_link_frames_dropped",
        "Frames dropped, by reason: garbage (payload did not decode; that frame lost) or \
         oversized (header over the limit; the connection closed)",
        split(
            "reason",
            &[
                ("garbage", &c.garbage_frames),
                ("oversized", &c.oversized_frames),
            ],
        ),
    );
    r.register(
        "meridian_link_protocol_violations",
        "Messages out of place (a second Hello, anything before Hello)",
        counter(&c.protocol_violations),
    );
    r.register(
        "meridian_link_connections_refused",
        "Connections refused: no certificate, unknown or revoked probe, unsupported version or \
         protocol",
        counter(&c.refused),
    );
    r.register(
        "meridian_link_handshake_failures",
        "QUIC/TLS handshakes that failed (a certificate from another CA, no common ALPN, ...)",
        counter(&c.handshake_failures),
    );
    r.register(
        "meridian_link_sessions",
        "Probe link sessions opened (HelloAck sent)",
        counter(&c.sessions),
    );
    r.register(
        "meridian_link_heartbeats",
        "Heartbeats received from probes",
        counter(&c.heartbeats),
    );
    r.register(
        "meridian_link_assignments_sent",
        "Assignments sent to probes",
        counter(&c.assignments_sent),
    );
    r.register(
        "meridian_link_commands_sent",
        "Commands sent to probes, clock pings included",
        counter(&c.commands_sent),
    );
    r.register(
        "meridian_link_commands_completed",
        "CommandDone answers, by outcome",
        split(
            "outcome",
            &[("ok", &c.commands_done), ("error", &c.commands_failed)],
        ),
    );
    r.register(
        "meridian_link_clock_pongs",
        "Clock pongs, by outcome: used (a clock-offset sample) or discarded",
        split(
            "outcome",
            &[("used", &c.pongs), ("discarded", &c.pongs_discarded)],
        ),
    );
    r.register(
        "meridian_enrollments",
        "Enrolment attempts, by outcome",
        split(
            "outcome",
            &[("enrolled", &c.enrolled), ("refused", &c.enroll_refused)],
        ),
    );
    r.register(
        "meridian_detection_bursts_ordered",
        "Bursts the detection engine ordered",
        counter(&c.bursts_ordered),
    );
    r.register(
        "meridian_detection_burst_commands",
        "Burst commands sent for them, one per probe with a live session",
        counter(&c.burst_commands),
    );
    r.register(
        "meridian_detection_burst_probes_skipped",
        "Probes a burst named that had no live session",
        counter(&c.burst_probes_skipped),
    );
    r.register(
        "meridian_incident_transitions",
        "Incident transitions (opened, paged, updated, resolved, re-opened) logged and stored",
        counter(&c.incident_transitions),
    );
}

/// Labels of a per-probe series.
type ProbeLabels = [(&'static str, String); 2];

/// Liveness and clocks, one series per enrolled, non-revoked probe.
fn probe_families(r: &mut Registry, probes: &[ProbeState]) {
    let up = Family::<ProbeLabels, Gauge>::default();
    let connected = Family::<ProbeLabels, Gauge>::default();
    let seen = Family::<ProbeLabels, Gauge<f64, AtomicU64>>::default();
    let offset = Family::<ProbeLabels, Gauge<f64, AtomicU64>>::default();
    for p in probes {
        let labels = [("probe", p.probe_id.clone()), ("region", p.region.clone())];
        up.get_or_create(&labels).set(i64::from(!p.silent));
        connected.get_or_create(&labels).set(i64::from(p.live));
        if let Some(ms) = p.last_seen_ms {
            seen.get_or_create(&labels).set(ms as f64 / 1e3);
        }
        if let Some(ms) = p.clock_offset_ms {
            offset.get_or_create(&labels).set(ms as f64 / 1e3);
        }
    }
    r.register(
        "meridian_probe_up",
        "1 while the probe is heard from (a message within two heartbeat intervals), else 0",
        up,
    );
    r.register(
        "meridian_probe_connected",
        "1 while the probe has a link session open, else 0",
        connected,
    );
    r.register_with_unit(
        "meridian_probe_last_seen_timestamp",
        "When anything last arrived from the probe, Unix time",
        Unit::Seconds,
        seen,
    );
    r.register_with_unit(
        "meridian_probe_clock_offset",
        "How far the probe's clock is ahead of the coordinator's (negative: behind), from the \
         best recent ping round trip",
        Unit::Seconds,
        offset,
    );
}

/// Open incidents by class and severity, every combination present (zeros included), so
/// that `sum by (class)` and alerts on a class work before its first incident.
fn incidents(r: &mut Registry, open: &[OpenIncident]) {
    let family = Family::<[(&'static str, &'static str); 2], Gauge>::default();
    let severities = [Severity::Info, Severity::Ticket, Severity::Page].map(Severity::as_str);
    for class in Class::ALL {
        for severity in severities {
            let n = open
                .iter()
                .filter(|i| i.class == class.as_str() && i.severity == severity)
                .count();
            family
                .get_or_create(&[("class", class.as_str()), ("severity", severity)])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
    r.register(
        "meridian_incidents_open",
        "Incidents open now (confirmed or paged), by class and severity (info: the monitoring \
         network itself; ticket: slow drift; page: a site incident)",
        family,
    );
}
