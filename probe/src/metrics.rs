//! `/metrics` for Prometheus on `metrics_listen` (off by default): each check's latest result
//! under blackbox_exporter's names, and the probe's own state: scheduler, spool, uplink.
//!
//! # Decisions
//! - **blackbox_exporter's vocabulary** (`probe_success`, `probe_duration_seconds`,
//!   `probe_http_duration_seconds{phase}`, `probe_http_status_code`,
//!   `probe_dns_lookup_time_seconds`, `probe_ssl_earliest_cert_expiry`, ...), labelled
//!   `{check, target}`, so dashboards and PromQL written for blackbox carry over. Our phases
//!   map onto its phase names: `dns` → `resolve`, `connect` → `connect`, `tls` → `tls`,
//!   `ttfb` (request written to first response byte) → `processing`, `transfer` →
//!   `transfer`. As in blackbox, a phase not reached (or not applying) reads 0. `target` is
//!   the URL's host (and port, when the URL names one) or the DNS name asked: never the path
//!   or query, which may carry anything.
//! - **Only checks in the running plan** are exposed: a check an assignment or a reload
//!   dropped disappears at the next scrape, instead of reporting its last result for ever.
//! - **`probe_ssl_earliest_cert_expiry`** is derived from the result's whole days left
//!   (`started + days × 86400`): day precision, rounded down, enough for "expires within N
//!   days" alerts.
//! - **The probe's own** families carry the `meridian_probe_` prefix: results produced, the
//!   scheduler's runs and missed slots, the spool's depth (records, bytes) and drops, and per
//!   coordinator (`{coordinator}`, the `[[coordinator]]` name) whether its session is up,
//!   sessions, failures, batches and results sent, results acknowledged, and the cursor's lag.
//!   Uplink counters restart from zero when a reload restarts the uplink (Prometheus' `rate`
//!   treats that as a counter reset).
//! - **OpenMetrics text** (`application/openmetrics-text; version=1.0.0`), or Prometheus
//!   text 0.0.4 when `Accept` names `text/plain` and not OpenMetrics (what promtool lints).
//! - **A tiny hyper 1 server**, HTTP/1.1 only, no router: `GET /metrics` and 404 otherwise;
//!   one request per connection, [`MAX_CONNECTIONS`] at once, each bounded by
//!   [`CONNECTION_BUDGET`]. No authentication: bind it to loopback or a monitoring network.
//!
//! Deliberately absent: anything that runs a check on demand (blackbox's `/probe?target=`):
//! a scrape only reads what the schedule already produced.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use meridian_shared::check::{Check, CheckSpec};
use meridian_shared::result::CheckResult;
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::schedule::Stats;
use crate::spool::Spool;
use crate::uplink::LinkStatus;

/// The OpenMetrics text format's content type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Connections served at once; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 16;

/// The longest one connection may take, request and response.
pub const CONNECTION_BUDGET: Duration = Duration::from_secs(10);

/// How one check is labelled, from the running plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLabels {
    /// The check's id.
    pub check: String,
    /// Its host (and explicit port), or the DNS name it asks.
    pub target: String,
    /// Whether it is an HTTP check (the `probe_http_*` families).
    pub http: bool,
}

impl CheckLabels {
    /// The labels of `check`.
    pub fn of(check: &Check) -> CheckLabels {
        let (target, http) = match &check.spec {
            CheckSpec::Http(h) => {
                let host = h.url.host_str().unwrap_or_default();
                let target = match h.url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                };
                (target, true)
            }
            CheckSpec::Dns(d) => (d.name.trim_end_matches('.').to_owned(), false),
        };
        CheckLabels {
            check: check.id.as_str().to_owned(),
            target,
            http,
        }
    }
}

/// Which exposition format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics text 1.0.0 (the default).
    OpenMetrics,
    /// Prometheus text 0.0.4.
    Text,
}

impl Format {
    /// OpenMetrics unless `accept` names `text/plain` without naming OpenMetrics.
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

/// The running plan's checks, labelled; called at every scrape.
type Plan = Box<dyn Fn() -> Vec<CheckLabels> + Send + Sync>;

/// Everything `/metrics` reads.
pub struct ProbeMetrics {
    /// Each check's latest result (scheduled or burst), by check id.
    latest: Mutex<BTreeMap<String, CheckResult>>,
    /// The checks running now.
    plan: Plan,
    /// The scheduler's counters.
    scheduler: Arc<Stats>,
    /// Results produced since start.
    results: AtomicU64,
    /// A linked probe's spool.
    spool: Option<Arc<Mutex<Spool>>>,
    /// The running uplink's per-coordinator status (empty: standalone, or no uplink).
    links: Mutex<Vec<(String, Arc<LinkStatus>)>>,
}

impl ProbeMetrics {
    /// Metrics over the checks `plan` returns, the scheduler's `stats` and the spool.
    pub fn new(
        plan: impl Fn() -> Vec<CheckLabels> + Send + Sync + 'static,
        scheduler: Arc<Stats>,
        spool: Option<Arc<Mutex<Spool>>>,
    ) -> ProbeMetrics {
        ProbeMetrics {
            latest: Mutex::default(),
            plan: Box::new(plan),
            scheduler,
            results: AtomicU64::new(0),
            spool,
            links: Mutex::default(),
        }
    }

    /// Keeps `r` as its check's latest result.
    pub fn record(&self, r: &CheckResult) {
        self.results.fetch_add(1, Ordering::Relaxed);
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(r.check_id.as_str().to_owned(), r.clone());
    }

    /// The uplink now running (after a start or a restart).
    pub fn set_links(&self, links: Vec<(String, Arc<LinkStatus>)>) {
        *self.links.lock().unwrap_or_else(PoisonError::into_inner) = links;
    }

    /// The exposition, in `format`. Locks the spool: call it off the runtime.
    pub fn encode(&self, format: Format) -> Result<String, std::fmt::Error> {
        let mut r = Registry::default();
        self.results_families(&mut r);
        self.own_families(&mut r);
        let mut out = String::new();
        match format {
            Format::OpenMetrics => text::encode(&mut out, &r)?,
            Format::Text => prometheus_text::encode(&mut out, &r)?,
        }
        Ok(out)
    }

    /// The blackbox_exporter-style families of each planned check's latest result.
    fn results_families(&self, r: &mut Registry) {
        let plan = (self.plan)();
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest.retain(|id, _| plan.iter().any(|p| p.check == *id));
        let f = Families::default();
        for p in &plan {
            let Some(res) = latest.get(&p.check) else {
                continue;
            };
            let l = vec![("check", p.check.clone()), ("target", p.target.clone())];
            let ph = res.phases;
            f.success.get_or_create(&l).set(i64::from(res.passed()));
            f.duration.get_or_create(&l).set(secs(Some(ph.total)));
            f.lookup.get_or_create(&l).set(secs(ph.dns));
            f.last_run
                .get_or_create(&l)
                .set(res.started_ms as f64 / 1e3);
            if let Some(ip) = res.remote_ip {
                f.ip_protocol
                    .get_or_create(&l)
                    .set(if ip.is_ipv4() { 4 } else { 6 });
            }
            if !p.http {
                let answers = res.dns.as_ref().map_or(0, |d| d.answers.len());
                f.answer_rrs
                    .get_or_create(&l)
                    .set(i64::try_from(answers).unwrap_or(i64::MAX));
                continue;
            }
            for (phase, us) in [
                ("resolve", ph.dns),
                ("connect", ph.connect),
                ("tls", ph.tls),
                ("processing", ph.ttfb),
                ("transfer", ph.transfer),
            ] {
                let mut labels = l.clone();
                labels.push(("phase", phase.to_owned()));
                f.http_phase.get_or_create(&labels).set(secs(us));
            }
            let http = res.http.as_ref();
            f.status
                .get_or_create(&l)
                .set(http.and_then(|h| h.status).map_or(0, i64::from));
            f.ssl
                .get_or_create(&l)
                .set(i64::from(http.is_some_and(|h| h.tls_version.is_some())));
            f.redirects
                .get_or_create(&l)
                .set(http.map_or(0, |h| i64::from(h.redirects)));
            let version = match http.and_then(|h| h.http_version.as_deref()) {
                Some("HTTP/1.0") => 1.0,
                Some("HTTP/1.1") => 1.1,
                Some("HTTP/2") => 2.0,
                _ => 0.0,
            };
            f.version.get_or_create(&l).set(version);
            if let Some(days) = http.and_then(|h| h.cert_days_left) {
                let expiry = res.started_ms.div_euclid(1_000) + days.saturating_mul(86_400);
                f.cert_expiry.get_or_create(&l).set(expiry as f64);
            }
        }
        f.register(r);
    }

    /// The probe's own state.
    fn own_families(&self, r: &mut Registry) {
        let info = Family::<[(&str, &str); 1], Gauge>::default();
        info.get_or_create(&[("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        r.register(
            "meridian_probe_build_info",
            "The probe's version; always 1",
            info,
        );
        r.register(
            "meridian_probe_results",
            "Check results produced since start, scheduled and burst runs",
            counter(self.results.load(Ordering::Relaxed)),
        );
        r.register(
            "meridian_probe_scheduler_runs",
            "Scheduled runs started since start",
            counter(self.scheduler.started.load(Ordering::Relaxed)),
        );
        r.register(
            "meridian_probe_scheduler_missed",
            "Scheduled slots skipped: the previous run of the check was still going, or the \
             process was not scheduled for longer than an interval",
            counter(self.scheduler.missed.load(Ordering::Relaxed)),
        );
        let stats = self
            .spool
            .as_ref()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).stats());
        if let Some(stats) = &stats {
            r.register(
                "meridian_probe_spool_records",
                "Results retained in the spool",
                gauge(stats.records),
            );
            r.register_with_unit(
                "meridian_probe_spool",
                "Size of the spool's segment files",
                Unit::Bytes,
                gauge(stats.bytes),
            );
            r.register(
                "meridian_probe_spool_dropped_records",
                "Results dropped by the spool's size or age bound before every coordinator \
                 acknowledged them, since start",
                counter(stats.dropped_records),
            );
            r.register(
                "meridian_probe_spool_corrupt_records",
                "Results lost to corruption in sealed spool segments, since start",
                counter(stats.corrupt_records),
            );
        }
        let links = self
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if links.is_empty() {
            return;
        }
        let by = |name: &str| [("coordinator", name.to_owned())];
        let up = Family::<[(&str, String); 1], Gauge>::default();
        let stopped = Family::<[(&str, String); 1], Gauge>::default();
        let lag = Family::<[(&str, String); 1], Gauge>::default();
        let counters: [LinkCounter; 6] = [
            (
                "meridian_probe_uplink_sessions",
                "Sessions opened (HelloAck received)",
                |s| &s.sessions,
            ),
            (
                "meridian_probe_uplink_failures",
                "Sessions that failed or were refused",
                |s| &s.failures,
            ),
            (
                "meridian_probe_uplink_batches_sent",
                "Result batches sent",
                |s| &s.batches_sent,
            ),
            (
                "meridian_probe_uplink_results_sent",
                "Results sent (a batch re-sent after a reconnect counts again)",
                |s| &s.results_sent,
            ),
            (
                "meridian_probe_uplink_results_acked",
                "Results the coordinator acknowledged",
                |s| &s.results_acked,
            ),
            (
                "meridian_probe_uplink_results_skipped",
                "Results not sent because this coordinator did not assign their check",
                |s| &s.skipped,
            ),
        ];
        let families: Vec<_> = counters
            .iter()
            .map(|_| Family::<[(&str, String); 1], Counter>::default())
            .collect();
        for (name, status) in &links {
            let l = by(name);
            up.get_or_create(&l)
                .set(i64::from(status.connected.load(Ordering::Relaxed)));
            stopped
                .get_or_create(&l)
                .set(i64::from(status.stopped().is_some()));
            for ((_, _, field), family) in counters.iter().zip(&families) {
                family
                    .get_or_create(&l)
                    .inc_by(field(status).load(Ordering::Relaxed));
            }
            let behind = stats
                .as_ref()
                .and_then(|s| s.cursors.iter().find(|c| c.name == *name))
                .map_or(0, |c| c.lag);
            lag.get_or_create(&l)
                .set(i64::try_from(behind).unwrap_or(i64::MAX));
        }
        r.register(
            "meridian_probe_uplink_up",
            "1 while a session with the coordinator is open, else 0",
            up,
        );
        r.register(
            "meridian_probe_uplink_stopped",
            "1 once the coordinator refused this probe for good (revoked, unsupported version)",
            stopped,
        );
        r.register(
            "meridian_probe_uplink_lag_records",
            "Results retained in the spool that the coordinator has not acknowledged",
            lag,
        );
        for ((name, help, _), family) in counters.iter().zip(families) {
            r.register(*name, *help, family);
        }
    }
}

/// A per-coordinator counter family: name (before `_total`), help, and its field of
/// [`LinkStatus`].
type LinkCounter = (&'static str, &'static str, fn(&LinkStatus) -> &AtomicU64);

/// Labels of the per-check families: check, target (and phase).
type Labels = Vec<(&'static str, String)>;

/// The per-check families of one scrape.
#[derive(Default)]
struct Families {
    success: Family<Labels, Gauge>,
    duration: Family<Labels, Gauge<f64, AtomicU64>>,
    lookup: Family<Labels, Gauge<f64, AtomicU64>>,
    http_phase: Family<Labels, Gauge<f64, AtomicU64>>,
    status: Family<Labels, Gauge>,
    ssl: Family<Labels, Gauge>,
    redirects: Family<Labels, Gauge>,
    version: Family<Labels, Gauge<f64, AtomicU64>>,
    cert_expiry: Family<Labels, Gauge<f64, AtomicU64>>,
    ip_protocol: Family<Labels, Gauge>,
    answer_rrs: Family<Labels, Gauge>,
    last_run: Family<Labels, Gauge<f64, AtomicU64>>,
}

impl Families {
    fn register(self, r: &mut Registry) {
        r.register(
            "probe_success",
            "Whether the check's latest run passed",
            self.success,
        );
        r.register_with_unit(
            "probe_duration",
            "How long the check's latest run took, start to end",
            Unit::Seconds,
            self.duration,
        );
        r.register_with_unit(
            "probe_dns_lookup_time",
            "Name resolution in the latest run (a DNS check: its query); 0 when not reached or \
             not needed",
            Unit::Seconds,
            self.lookup,
        );
        r.register_with_unit(
            "probe_http_duration",
            "Each phase of the latest HTTP run: resolve (dns), connect, tls, processing (request \
             written to first response byte), transfer; 0 when not reached or not applying",
            Unit::Seconds,
            self.http_phase,
        );
        r.register(
            "probe_http_status_code",
            "Status of the latest run's final response; 0 without one",
            self.status,
        );
        r.register(
            "probe_http_ssl",
            "Whether the final response came over TLS",
            self.ssl,
        );
        r.register(
            "probe_http_redirects",
            "Redirects the latest run followed",
            self.redirects,
        );
        r.register(
            "probe_http_version",
            "HTTP version of the final response (1.1, 2); 0 without one",
            self.version,
        );
        r.register(
            "probe_ssl_earliest_cert_expiry",
            "When the server certificate expires, Unix time, to the day (from its whole days left)",
            self.cert_expiry,
        );
        r.register(
            "probe_ip_protocol",
            "IP version of the address the latest run talked to (4 or 6)",
            self.ip_protocol,
        );
        r.register(
            "probe_dns_answer_rrs",
            "Answer records of the asked type in the latest DNS run",
            self.answer_rrs,
        );
        r.register_with_unit(
            "meridian_probe_check_last_run_timestamp",
            "When the check's latest run started, Unix time",
            Unit::Seconds,
            self.last_run,
        );
    }
}

/// Microseconds as seconds; "not reached" as 0.
fn secs(us: Option<u64>) -> f64 {
    us.unwrap_or(0) as f64 / 1e6
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

fn gauge(value: u64) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    g
}

/// Serves `/metrics` on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<ProbeMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors, most likely: wait rather than spin.
                    tracing::warn!(%error, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = crate::supervise::stopped(&mut shutdown) => return,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| respond(metrics.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_BUDGET, conn).await;
        });
    }
}

/// One request.
async fn respond(
    metrics: Arc<ProbeMetrics>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let plain = |status: StatusCode, body: &'static str| {
        let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *res.status_mut() = status;
        res
    };
    if req.uri().path() != "/metrics" {
        return Ok(plain(StatusCode::NOT_FOUND, "not found: try /metrics\n"));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n"));
    }
    let format = Format::negotiate(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    match tokio::task::spawn_blocking(move || metrics.encode(format)).await {
        Ok(Ok(body)) => {
            let mut res = Response::new(Full::new(Bytes::from(body)));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(format.content_type()),
            );
            Ok(res)
        }
        _ => {
            tracing::error!("encoding the metrics failed");
            Ok(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding failed\n",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_shared::check::{CheckId, DnsCheck, HttpCheck, RecordType, ResolverSpec};
    use meridian_shared::result::{CheckError, DnsDetail, ErrorClass, HttpDetail, Phases};

    fn http(id: &str, url: &str) -> Check {
        Check {
            id: CheckId::parse(id).unwrap(),
            interval: Duration::from_secs(60),
            spec: CheckSpec::Http(HttpCheck::get(url.parse().unwrap())),
        }
    }

    fn result(id: &str) -> CheckResult {
        CheckResult {
            probe_id: "p1".into(),
            region: "eu-central".into(),
            check_id: CheckId::parse(id).unwrap(),
            scheduled_ms: 1_700_000_000_000,
            started_ms: 1_700_000_000_000,
            phases: Phases {
                dns: Some(1_500),
                connect: Some(20_000),
                tls: Some(30_000),
                ttfb: Some(100_000),
                transfer: Some(2_000),
                total: 153_500,
            },
            remote_ip: Some("192.0.2.1".parse().unwrap()),
            http: Some(HttpDetail {
                status: Some(200),
                http_version: Some("HTTP/2".into()),
                tls_version: Some("TLSv1.3".into()),
                cert_days_left: Some(30),
                ..HttpDetail::default()
            }),
            dns: None,
            error: None,
            warnings: vec![],
        }
    }

    #[test]
    fn targets_are_hosts_or_names_never_paths() {
        assert_eq!(
            CheckLabels::of(&http("home", "https://shop.example.test/cart?user=1")).target,
            "shop.example.test"
        );
        assert_eq!(
            CheckLabels::of(&http("api", "http://127.0.0.1:8080/health")).target,
            "127.0.0.1:8080"
        );
        let dns = Check {
            id: CheckId::parse("ns").unwrap(),
            interval: Duration::from_secs(60),
            spec: CheckSpec::Dns(DnsCheck::new(
                "example.test.",
                RecordType::A,
                ResolverSpec::System,
            )),
        };
        let labels = CheckLabels::of(&dns);
        assert_eq!(
            (labels.target.as_str(), labels.http),
            ("example.test", false)
        );
    }

    #[test]
    fn latest_results_use_blackbox_names_and_leave_the_plan_with_their_check() {
        let plan = Arc::new(Mutex::new(vec![
            CheckLabels::of(&http("home", "https://shop.example.test/")),
            CheckLabels {
                check: "ns".into(),
                target: "example.test".into(),
                http: false,
            },
        ]));
        let p = plan.clone();
        let metrics = ProbeMetrics::new(
            move || p.lock().unwrap().clone(),
            Arc::new(Stats::default()),
            None,
        );
        metrics.record(&result("home"));
        let mut failed = result("ns");
        failed.http = None;
        failed.phases.dns = None;
        failed.dns = Some(DnsDetail {
            rcode: meridian_shared::check::Rcode::ServFail,
            answers: vec![],
        });
        failed.error = Some(CheckError {
            class: ErrorClass::DnsRcode,
            message: "SERVFAIL".into(),
        });
        metrics.record(&failed);
        let text = metrics.encode(Format::OpenMetrics).unwrap();
        let home = "check=\"home\",target=\"shop.example.test\"";
        for expected in [
            format!("probe_success{{{home}}} 1\n"),
            format!("probe_duration_seconds{{{home}}} 0.1535\n"),
            format!("probe_http_duration_seconds{{{home},phase=\"resolve\"}} 0.0015\n"),
            format!("probe_http_duration_seconds{{{home},phase=\"processing\"}} 0.1\n"),
            format!("probe_http_status_code{{{home}}} 200\n"),
            format!("probe_http_version{{{home}}} 2.0\n"),
            format!("probe_http_ssl{{{home}}} 1\n"),
            format!(
                "probe_ssl_earliest_cert_expiry{{{home}}} {}\n",
                "1702592000.0"
            ),
            format!("probe_ip_protocol{{{home}}} 4\n"),
            "probe_success{check=\"ns\",target=\"example.test\"} 0\n".to_string(),
            "probe_dns_lookup_time_seconds{check=\"ns\",target=\"example.test\"} 0.0\n".to_string(),
            "probe_dns_answer_rrs{check=\"ns\",target=\"example.test\"} 0\n".to_string(),
            "meridian_probe_results_total 2\n".to_string(),
        ] {
            assert!(
                text.contains(&expected),
                "{expected:?} missing from\n{text}"
            );
        }
        assert!(!text.contains("probe_http_status_code{check=\"ns\""));
        assert!(text.ends_with("# EOF\n"));

        plan.lock().unwrap().retain(|c| c.check == "ns");
        let text = metrics.encode(Format::Text).unwrap();
        assert!(!text.contains("check=\"home\""), "{text}");
        assert!(text.contains("# TYPE meridian_probe_results_total counter\n"));
    }

    #[test]
    fn formats_are_negotiated_like_the_coordinators() {
        assert_eq!(Format::negotiate(Some("*/*")), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
    }
}
