//! Incident alerts: the detection thread's transitions delivered to the configured sinks
//! (`[alerting]`): Alertmanager (API v2), a generic HMAC-signed webhook, Slack incoming
//! webhooks and PagerDuty Events v2.
//!
//! # Decisions
//! - **Never block detection.** The detection thread hands each transition to an
//!   [`AlertSender`], a bounded tokio channel fed with `try_send`: a full queue drops the
//!   alert, counts it ([`AlertSender::dropped`]) and logs a WARN. The dispatcher task fans
//!   each alert out to one bounded queue and one task per sink, so each sink's retries are its
//!   own: a dead Slack never delays Alertmanager (a sink whose queue is full drops and counts,
//!   [`SinkStats::dropped`]).
//! - **Routing** ([`accepts`]): site incidents (classes that are not
//!   [`Class::is_operational`](crate::detect::Class::is_operational)) reach `route = "site"`
//!   sinks once they paged (every later transition too, so the page resolves); tickets only
//!   where the sink says `tickets = true`. The monitoring network's own states (probe faults,
//!   silent regions, clock skew) reach only `route = "operational"` sinks, every transition.
//! - **Retries** ([`retry`]): exponential backoff with jitter, bounded in attempts and total
//!   time; 4xx other than 408/429 is not retried.
//! - **Alertmanager** wants firing alerts re-sent: its sink re-posts what is firing every
//!   `resend_every` (default 1 m, under Alertmanager's 5 m `resolve_timeout`) and resolved
//!   alerts for 5 minutes ([`alertmanager`]).
//! - **Secrets** (HMAC key, Slack URL, routing key) are [`Secret`]s: never in logs, and errors
//!   from a sink never carry its URL.
//! - **Counters** are plain atomics ([`SinkStats`], [`AlertSender::dropped`]), shared as
//!   [`AlertStats`] ([`Dispatcher::counters`]; holding them keeps no queue open): `/metrics`
//!   exports them as `meridian_alerts_{sent,failed,dropped,retries}_total{sink}`, every sink
//!   from start, the dispatcher's own queue drops as `sink=""` (see `crate::metrics`).
//!
//! - **Maintenance windows** ([`crate::maintenance`]): a site incident whose whole scope is
//!   under maintenance carries `maintenance.suppressed_by` and reaches no `site` sink; when
//!   the window ends with the incident still open the detection thread sends it again,
//!   released, and it pages.
//!
//! Deliberately absent: silences (Alertmanager's job), and any state
//! across restarts: an incident still firing when the coordinator stops ends `interrupted`,
//! and Alertmanager resolves it by `resolve_timeout`.

pub mod alertmanager;
pub mod http;
pub mod pagerduty;
pub mod retry;
pub mod settings;
pub mod slack;
#[cfg(test)]
mod tests;
pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

pub use settings::{AlertingSettings, Route, Secret, SinkKind, SinkSettings};

use crate::store::incidents::IncidentRecord;

/// Sink names: 1 to 64 letters, digits, `-`, `_` or `.`.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// What happened to the incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Confirmed by a quorum.
    Opened,
    /// Paged.
    Paged,
    /// Its scope or evidence changed.
    Updated,
    /// Resolved.
    Resolved,
    /// Confirmed again within the re-open window (same id, same page).
    Reopened,
}

impl Transition {
    /// Lower-case name, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Opened => "opened",
            Transition::Paged => "paged",
            Transition::Updated => "updated",
            Transition::Resolved => "resolved",
            Transition::Reopened => "reopened",
        }
    }
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One transition to announce.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The incident as stored after the transition.
    pub incident: IncidentRecord,
    /// What happened.
    pub transition: Transition,
}

impl Alert {
    /// Whether the incident is over (resolved, or no longer open).
    pub fn is_resolved(&self) -> bool {
        self.incident.resolved_ms.is_some() || !self.incident.state.is_open()
    }

    /// Whether it is a state of the monitoring network rather than a site incident.
    pub fn is_operational(&self) -> bool {
        crate::detect::Class::parse(&self.incident.class).is_some_and(|c| c.is_operational())
    }

    /// A one-line summary: `Meridian #42 origin-down: shop-home in eu-central, us-east`.
    pub fn summary(&self) -> String {
        let r = &self.incident;
        let mut s = format!("Meridian #{} {}", r.id, r.class);
        if !r.targets.is_empty() {
            s.push_str(&format!(": {}", r.targets.join(", ")));
        }
        if !r.regions.is_empty() {
            s.push_str(&format!(" in {}", r.regions.join(", ")));
        }
        if let Some(p) = &r.probe {
            s.push_str(&format!(" (probe {p})"));
        }
        if self.is_resolved() {
            s.insert_str(0, "Resolved: ");
        }
        s
    }
}

/// Where an alert's links point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// The web UI's base, no trailing slash: `[web] public_url`, else `http://` + `listen.http`.
    pub web: String,
    /// Runbooks: `{class}` replaced by the class, or the class appended.
    pub runbook: Option<String>,
}

impl Links {
    /// The incident's page in the web UI.
    pub fn incident(&self, id: u64) -> String {
        format!("{}/incidents/{id}", self.web)
    }

    /// The runbook for `class`, when configured.
    pub fn runbook(&self, class: &str) -> Option<String> {
        let base = self.runbook.as_deref()?;
        Some(if base.contains("{class}") {
            base.replace("{class}", class)
        } else if base.ends_with('/') {
            format!("{base}{class}")
        } else {
            format!("{base}/{class}")
        })
    }
}

/// Whether a sink routed `route` (taking tickets or not) receives this alert.
pub fn accepts(route: Route, tickets: bool, alert: &Alert) -> bool {
    if alert.is_operational() {
        return route == Route::Operational;
    }
    if route != Route::Site {
        return false;
    }
    // Held back by a maintenance window covering its whole scope (`service::detection`
    // decides, and releases it when the window ends with the incident still open).
    if alert.incident.maintenance.is_suppressed() {
        return false;
    }
    match alert.incident.severity.as_str() {
        // Only once it paged: a confirmed, not yet paged incident may still turn out short.
        "page" => alert.incident.paged_ms.is_some(),
        "ticket" => tickets,
        _ => false,
    }
}

/// One sink's counters: monotonic since start.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Deliveries accepted by the receiver (a re-send counts again).
    pub sent: AtomicU64,
    /// Deliveries given up (attempts or time exhausted, or refused for good).
    pub failed: AtomicU64,
    /// Alerts dropped because this sink's queue was full.
    pub dropped: AtomicU64,
    /// Attempts beyond the first.
    pub retries: AtomicU64,
}

impl SinkStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The detection thread's end of the dispatcher's queue. Cloning shares the queue.
#[derive(Debug, Clone)]
pub struct AlertSender {
    /// The queue.
    tx: mpsc::Sender<Alert>,
    /// Alerts dropped because the queue was full.
    dropped: Arc<AtomicU64>,
}

impl AlertSender {
    /// Queues an alert without ever blocking: a full queue drops it (counted, WARN).
    pub fn send(&self, incident: &IncidentRecord, transition: Transition) {
        let alert = Alert {
            incident: incident.clone(),
            transition,
        };
        match self.tx.try_send(alert) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(a)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    id = a.incident.id,
                    transition = %transition,
                    "alert queue full: alert dropped"
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("alert dispatcher stopped: alert not sent");
            }
        }
    }

    /// Alerts dropped at the dispatcher's queue.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Every counter of a running dispatcher, shared with whoever reads them (`/metrics`).
/// Cloning shares the counters; unlike an [`AlertSender`], it keeps no queue open.
#[derive(Debug, Clone, Default)]
pub struct AlertStats {
    /// Alerts dropped at the dispatcher's queue ([`AlertSender::dropped`]).
    pub queue_dropped: Arc<AtomicU64>,
    /// `(sink name, its counters)`, in configuration order.
    pub sinks: Vec<(String, Arc<SinkStats>)>,
}

/// A running dispatcher: its input and every sink's counters.
#[derive(Debug)]
pub struct Dispatcher {
    /// Feed alerts here.
    pub sender: AlertSender,
    /// `(sink name, its counters)`, in configuration order.
    pub stats: Vec<(String, Arc<SinkStats>)>,
    /// The dispatcher task; it ends once every sender is dropped and the sinks drained.
    pub task: tokio::task::JoinHandle<()>,
}

impl Dispatcher {
    /// Its counters and every sink's, shared.
    pub fn counters(&self) -> AlertStats {
        AlertStats {
            queue_dropped: self.sender.dropped.clone(),
            sinks: self.stats.clone(),
        }
    }

    /// Starts the dispatcher and one task per sink on the current tokio runtime.
    pub fn start(settings: &AlertingSettings, links: Links) -> Dispatcher {
        let (tx, mut rx) = mpsc::channel::<Alert>(settings.queue.max(1));
        let links = Arc::new(links);
        let mut sinks = Vec::new();
        let mut stats = Vec::new();
        let mut tasks = Vec::new();
        for s in &settings.sinks {
            let counters = Arc::new(SinkStats::default());
            let (sink_tx, sink_rx) = mpsc::channel::<Alert>(settings.queue.max(1));
            let sink = Sink {
                settings: s.clone(),
                links: links.clone(),
                retry: settings.retry,
                stats: counters.clone(),
            };
            tasks.push(tokio::spawn(sink.run(sink_rx)));
            sinks.push((s.clone(), sink_tx, counters.clone()));
            stats.push((s.name.clone(), counters));
            tracing::info!(sink = %s.name, kind = s.kind.as_str(), route = s.route.as_str(), "alert sink configured");
        }
        let task = tokio::spawn(async move {
            while let Some(alert) = rx.recv().await {
                for (s, tx, counters) in &sinks {
                    if !accepts(s.route, s.tickets, &alert) {
                        continue;
                    }
                    if tx.try_send(alert.clone()).is_err() {
                        SinkStats::add(&counters.dropped, 1);
                        tracing::warn!(sink = %s.name, id = alert.incident.id, "sink queue full: alert dropped");
                    }
                }
            }
            drop(sinks);
            for t in tasks {
                let _ = t.await;
            }
        });
        Dispatcher {
            sender: AlertSender {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            stats,
            task,
        }
    }
}

/// A request to make: where, extra headers, body.
#[derive(Debug, Clone)]
pub struct Request {
    /// Where to POST.
    pub url: url::Url,
    /// Headers beyond `Content-Type: application/json`.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Bytes,
}

/// One sink's task.
struct Sink {
    settings: SinkSettings,
    links: Arc<Links>,
    retry: retry::RetryPolicy,
    stats: Arc<SinkStats>,
}

impl Sink {
    async fn run(self, rx: mpsc::Receiver<Alert>) {
        match &self.settings.kind {
            SinkKind::Alertmanager { url, resend_every } => {
                let (url, every) = (url.clone(), *resend_every);
                alertmanager::run(&self, &url, every, rx).await;
            }
            _ => {
                let mut rx = rx;
                while let Some(alert) = rx.recv().await {
                    match self.request(&alert) {
                        Some(request) => {
                            self.deliver(&alert, || request.clone()).await;
                        }
                        None => {
                            tracing::error!(sink = %self.settings.name, "alert not sent: the sink's URL does not parse")
                        }
                    }
                }
            }
        }
    }

    /// The request for a webhook, Slack or PagerDuty sink (built again per attempt only for
    /// the webhook, whose signature carries the time).
    fn request(&self, alert: &Alert) -> Option<Request> {
        let json = |v: serde_json::Value| Bytes::from(v.to_string());
        Some(match &self.settings.kind {
            // Its own task builds its batches (`alertmanager::run`).
            SinkKind::Alertmanager { .. } => return None,
            SinkKind::Webhook { url, secret } => {
                let body = json(webhook::body(alert, &self.links, self.settings.route));
                let at = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                Request {
                    url: url.clone(),
                    headers: webhook::headers(secret, at, &body),
                    body,
                }
            }
            SinkKind::Slack { url } => Request {
                url: url::Url::parse(&url.0).ok()?,
                headers: Vec::new(),
                body: json(slack::body(alert, &self.links)),
            },
            SinkKind::PagerDuty { url, routing_key } => Request {
                url: url.clone(),
                headers: Vec::new(),
                body: json(pagerduty::body(alert, &self.links, routing_key)),
            },
        })
    }

    /// Delivers with retries, counting; `build` makes each attempt's request.
    async fn deliver(&self, alert: &Alert, build: impl Fn() -> Request) -> bool {
        let name = &self.settings.name;
        let policy = self.retry;
        let outcome = retry::deliver(&policy, |n| {
            // A webhook's retry is signed afresh (its signature carries the time); the first
            // attempt's was just made.
            let request = if n > 1 && matches!(self.settings.kind, SinkKind::Webhook { .. }) {
                self.request(alert).unwrap_or_else(&build)
            } else {
                build()
            };
            if n > 1 {
                SinkStats::add(&self.stats.retries, 1);
            }
            async move {
                retry::Attempt::from_response(
                    http::post_json(&request.url, &request.headers, request.body, policy.timeout)
                        .await,
                )
            }
        })
        .await;
        if outcome.delivered {
            SinkStats::add(&self.stats.sent, 1);
            tracing::info!(sink = %name, id = alert.incident.id, transition = %alert.transition, attempts = outcome.attempts, "alert delivered");
        } else {
            SinkStats::add(&self.stats.failed, 1);
            tracing::warn!(
                sink = %name, id = alert.incident.id, transition = %alert.transition,
                attempts = outcome.attempts, error = outcome.last_error.as_deref().unwrap_or(""),
                "alert delivery failed"
            );
        }
        outcome.delivered
    }
}

/// Unix ms as RFC 3339 UTC with milliseconds (`2026-11-28T09:31:03.000Z`).
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
