//! `bench-alerts`: what the coordinator's alert dispatcher (`meridian_coordinator::alerting`)
//! costs the detection thread and how fast alerts reach a receiver, plus the maintenance
//! coverage check the detection thread runs per transition and per tick.
//!
//! This process's main thread plays the detection thread: it calls `AlertSender::send` (a
//! `try_send`) from outside the runtime, as `service::detection` does. The dispatcher, its sink
//! tasks and the receivers run on a 2-worker tokio runtime built afresh for each case and shut
//! down after it, so a black hole's pending retries never leak into the next case.
//!
//! 1. **Latency**: `--alerts` paged site incidents (default 500), one every `--spacing-ms`
//!    (default 5), to one HMAC-signed webhook sink posting to a receiver on 127.0.0.1 written
//!    here (it stamps each request once its whole body has arrived, then checks the signature
//!    with `webhook::verify`). Per alert: from just before `send` to that stamp.
//! 2. **Isolation**: the same with a second webhook sink whose receiver accepts connections and
//!    never answers; the healthy sink's figures are printed next to case 1 with their ratio.
//! 3. **Burst**: `--burst` alerts (default 2,000) sent back to back: each `send` call timed, the
//!    drops at the dispatcher's queue and at the sink's queue (default queue size, 256), what
//!    reached the receiver and how fast.
//! 4. **Maintenance coverage**: `maintenance::coverage` over `--windows` windows (default 100;
//!    one-off and weekly, in 8 IANA time zones) for an incident of 3 targets × 10 regions: each
//!    call timed, at one fixed instant (`--calls` times) and at every 10 minutes of a week.
//!
//! Retries are bounded by `--timeout-s` (per attempt, default 2) and `--attempts` (default 2);
//! every wait for deliveries by `--wait-s` (default 30). Only 127.0.0.1 is contacted. No
//! tracing subscriber is installed: the dispatcher's per-alert INFO/WARN events cost nothing
//! here, unlike in the coordinator.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use meridian_coordinator::alerting::retry::RetryPolicy;
use meridian_coordinator::alerting::{
    AlertingSettings, Dispatcher, Links, Route, Secret, SinkKind, SinkSettings, SinkStats,
    Transition, webhook,
};
use meridian_coordinator::maintenance::{self, Known, RawWindow, Source, WhenText, Window};
use meridian_coordinator::store::incidents::IncidentRecord;
use serde_json::{Value, json};
use tokio::time::Instant;

#[derive(Parser)]
#[command(about = "Alert dispatcher latency, isolation and burst; maintenance coverage cost")]
struct Args {
    /// Alerts sent one at a time in the latency and isolation cases.
    #[arg(long, default_value_t = 500)]
    alerts: usize,
    /// Milliseconds between two of those alerts.
    #[arg(long, default_value_t = 5)]
    spacing_ms: u64,
    /// Alerts sent back to back in the burst case.
    #[arg(long, default_value_t = 2_000)]
    burst: usize,
    /// One delivery attempt's timeout, seconds.
    #[arg(long, default_value_t = 2)]
    timeout_s: u64,
    /// Delivery attempts at most, the first included.
    #[arg(long, default_value_t = 2)]
    attempts: usize,
    /// Longest wait for every alert of a case to be delivered or given up, seconds.
    #[arg(long, default_value_t = 30)]
    wait_s: u64,
    /// Maintenance windows in the coverage case.
    #[arg(long, default_value_t = 100)]
    windows: usize,
    /// Timed `coverage` calls at the fixed instant.
    #[arg(long, default_value_t = 10_000)]
    calls: usize,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    json: bool,
}

/// The webhook sinks' HMAC key.
const SECRET: &str = "bench-alerts-secret";

/// Connections a receiver or the black hole accepts at most (far above any case's needs).
const MAX_CONNECTIONS: usize = 100_000;

/// A `send` call longer than this, µs, is counted apart.
const SLOW_US: f64 = 100.0;

/// How often the main thread looks at the counters while waiting.
const POLL: Duration = Duration::from_millis(5);

/// What a receiver saw.
#[derive(Default)]
struct Deliveries {
    /// Incident id → when its first request had fully arrived.
    first: HashMap<u64, Instant>,
    /// Requests in all (retries included).
    requests: u64,
    /// Requests whose HMAC signature or timestamp did not verify (answered 401).
    bad_signature: u64,
}

type Shared = Arc<Mutex<Deliveries>>;

fn lock(d: &Shared) -> std::sync::MutexGuard<'_, Deliveries> {
    d.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A webhook receiver on 127.0.0.1: stamps each request once its body is complete, verifies
/// its signature, answers 200 (401 when it does not verify).
async fn receiver() -> anyhow::Result<(url::Url, Shared)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let url = url::Url::parse(&format!("http://{}/hook", listener.local_addr()?))?;
    let shared: Shared = Arc::default();
    let got = shared.clone();
    tokio::spawn(async move {
        for _ in 0..MAX_CONNECTIONS {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let got = got.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let got = got.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes());
                            let at = Instant::now();
                            let header = |name: &str| {
                                parts
                                    .headers
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_string()
                            };
                            let body = body.unwrap_or_default();
                            let verified = webhook::verify(
                                SECRET.as_bytes(),
                                &header(webhook::TIMESTAMP_HEADER),
                                &header(webhook::SIGNATURE_HEADER),
                                &body,
                                unix_s(),
                            );
                            let id = serde_json::from_slice::<Value>(&body)
                                .ok()
                                .and_then(|v| v.get("incident")?.as_u64());
                            {
                                let mut d = lock(&got);
                                d.requests += 1;
                                match (verified, id) {
                                    (true, Some(id)) => {
                                        d.first.entry(id).or_insert(at);
                                    }
                                    _ => d.bad_signature += 1,
                                }
                            }
                            let mut answer =
                                hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
                            if !verified {
                                *answer.status_mut() = hyper::StatusCode::UNAUTHORIZED;
                            }
                            Ok::<_, std::convert::Infallible>(answer)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((url, shared))
}

/// A listener that accepts connections, holds them open and never reads or answers.
async fn black_hole() -> anyhow::Result<(url::Url, Arc<AtomicU64>)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let url = url::Url::parse(&format!("http://{}/hook", listener.local_addr()?))?;
    let count = Arc::new(AtomicU64::new(0));
    let held = count.clone();
    tokio::spawn(async move {
        let mut conns = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            match listener.accept().await {
                Ok((s, _)) => {
                    conns.push(s);
                    held.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    Ok((url, count))
}

/// A fresh runtime per case, as the coordinator's: multi-threaded, 2 workers.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the tokio runtime")
}

/// A paged site incident, as the detection thread stores it.
fn incident(id: u64) -> IncidentRecord {
    let t0 = i64::try_from(unix_s()).unwrap_or(0) * 1000 - 120_000;
    meridian_tests::receiver::paged_incident(id, "origin-down", "page", t0)
}

fn webhook_sink(name: &str, url: url::Url) -> SinkSettings {
    SinkSettings {
        name: name.into(),
        route: Route::Site,
        tickets: false,
        kind: SinkKind::Webhook {
            url,
            secret: Secret(SECRET.into()),
        },
    }
}

fn settings(args: &Args, sinks: Vec<SinkSettings>) -> AlertingSettings {
    AlertingSettings {
        sinks,
        retry: RetryPolicy {
            max_attempts: args.attempts.max(1),
            max_total: Duration::from_secs(args.timeout_s * args.attempts.max(1) as u64 + 2),
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            timeout: Duration::from_secs(args.timeout_s.max(1)),
        },
        ..AlertingSettings::default()
    }
}

fn links() -> Links {
    Links {
        web: "http://meridian.test".into(),
        runbook: None,
    }
}

/// A sink's counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    sent: u64,
    failed: u64,
    dropped: u64,
    retries: u64,
}

impl Counts {
    fn of(s: &SinkStats) -> Counts {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            sent: l(&s.sent),
            failed: l(&s.failed),
            dropped: l(&s.dropped),
            retries: l(&s.retries),
        }
    }

    fn json(self) -> Value {
        json!({"sent": self.sent, "failed": self.failed, "dropped": self.dropped, "retries": self.retries})
    }
}

fn sink_counts(d: &Dispatcher, name: &str) -> anyhow::Result<Counts> {
    d.stats
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| Counts::of(s))
        .ok_or_else(|| anyhow!("the dispatcher has no sink {name:?}"))
}

/// Polls `done` until it holds or `deadline` passes; whether it held.
fn wait_until(
    deadline: Instant,
    mut done: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}

/// Nearest-rank percentile of sorted values; NaN when there are none.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Cases 1 and 2.
struct Paced {
    /// Send → receipt of each delivered alert, ms, sorted.
    latency_ms: Vec<f64>,
    /// Alerts sent.
    sent: usize,
    /// Distinct alerts the healthy receiver got.
    delivered: usize,
    /// Requests that failed verification.
    bad_signature: u64,
    /// Alerts dropped at the dispatcher's queue.
    queue_dropped: u64,
    /// The healthy sink's counters.
    healthy: Counts,
    /// The black hole sink's counters and connections held, in case 2.
    hole: Option<(Counts, u64)>,
    /// Whether everything was accounted for before `--wait-s`.
    complete: bool,
}

impl Paced {
    fn json(&self) -> Value {
        let l = &self.latency_ms;
        json!({
            "sent": self.sent, "delivered": self.delivered, "complete": self.complete,
            "p50_ms": pct(l, 50.0), "p90_ms": pct(l, 90.0), "p99_ms": pct(l, 99.0),
            "max_ms": pct(l, 100.0), "bad_signature": self.bad_signature,
            "queue_dropped": self.queue_dropped, "healthy": self.healthy.json(),
            "hole": self.hole.map(|(c, conns)| json!({"counts": c.json(), "connections": conns})),
        })
    }
}

fn paced(args: &Args, with_hole: bool) -> anyhow::Result<Paced> {
    let rt = runtime()?;
    let (url, got) = rt.block_on(receiver())?;
    let mut sinks = vec![webhook_sink("healthy", url)];
    let hole_conns = if with_hole {
        let (hole_url, conns) = rt.block_on(black_hole())?;
        sinks.push(webhook_sink("hole", hole_url));
        Some(conns)
    } else {
        None
    };
    let settings = settings(args, sinks);
    let dispatcher = rt.block_on(async { Dispatcher::start(&settings, links()) });
    let records: Vec<IncidentRecord> = (0..args.alerts as u64).map(incident).collect();
    let spacing = Duration::from_millis(args.spacing_ms);
    let mut sent_at = Vec::with_capacity(records.len());
    let start = Instant::now();
    for (i, r) in records.iter().enumerate() {
        sent_at.push(Instant::now());
        dispatcher.sender.send(r, Transition::Paged);
        let next = start + spacing * (i as u32 + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let n = records.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(args.wait_s);
    let complete = wait_until(deadline, || {
        let c = sink_counts(&dispatcher, "healthy")?;
        Ok(c.sent + c.failed + c.dropped + dispatcher.sender.dropped() >= n)
    })?;
    let healthy = sink_counts(&dispatcher, "healthy")?;
    let hole = match &hole_conns {
        Some(conns) => Some((
            sink_counts(&dispatcher, "hole")?,
            conns.load(Ordering::Relaxed),
        )),
        None => None,
    };
    let queue_dropped = dispatcher.sender.dropped();
    let d = lock(&got);
    let latency_ms = sorted(
        sent_at
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let at = d.first.get(&(i as u64))?;
                Some(at.saturating_duration_since(*t).as_secs_f64() * 1e3)
            })
            .collect(),
    );
    let result = Paced {
        latency_ms,
        sent: records.len(),
        delivered: d.first.len(),
        bad_signature: d.bad_signature,
        queue_dropped,
        healthy,
        hole,
        complete,
    };
    drop(d);
    drop(dispatcher);
    // Drops the black hole's queued retries with the runtime.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(result)
}

/// Case 3.
struct Burst {
    /// Each `send` call, µs, sorted.
    send_us: Vec<f64>,
    /// Alerts sent.
    sent: usize,
    /// All sends, µs.
    sending_us: f64,
    /// Dropped at the dispatcher's queue.
    queue_dropped: u64,
    /// The sink's counters (its `dropped`: at the sink's queue).
    sink: Counts,
    /// Distinct alerts the receiver got.
    delivered: usize,
    /// From the first send to the last receipt, s.
    drain_s: f64,
    /// Whether everything was accounted for before `--wait-s`.
    complete: bool,
    /// Requests that failed verification.
    bad_signature: u64,
}

impl Burst {
    /// `send` calls longer than [`SLOW_US`]: the thread was descheduled, or `send` waited.
    fn slow(&self) -> usize {
        self.send_us.iter().filter(|&&us| us > SLOW_US).count()
    }

    fn rate(&self) -> f64 {
        self.delivered as f64 / self.drain_s.max(1e-9)
    }

    fn json(&self) -> Value {
        let s = &self.send_us;
        json!({
            "sent": self.sent, "send_p50_us": pct(s, 50.0), "send_p99_us": pct(s, 99.0),
            "send_max_us": pct(s, 100.0), "sending_us": self.sending_us, "slow_sends": self.slow(),
            "queue_dropped": self.queue_dropped, "sink": self.sink.json(),
            "delivered": self.delivered, "drain_s": self.drain_s, "delivered_per_s": self.rate(),
            "complete": self.complete, "bad_signature": self.bad_signature,
        })
    }
}

fn burst(args: &Args) -> anyhow::Result<Burst> {
    let rt = runtime()?;
    let (url, got) = rt.block_on(receiver())?;
    let settings = settings(args, vec![webhook_sink("healthy", url)]);
    let dispatcher = rt.block_on(async { Dispatcher::start(&settings, links()) });
    let records: Vec<IncidentRecord> = (0..args.burst as u64).map(incident).collect();
    let mut send_us = Vec::with_capacity(records.len());
    let start = Instant::now();
    for r in &records {
        let t = Instant::now();
        dispatcher.sender.send(r, Transition::Paged);
        send_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let sending_us = start.elapsed().as_secs_f64() * 1e6;
    let n = records.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(args.wait_s);
    let complete = wait_until(deadline, || {
        let c = sink_counts(&dispatcher, "healthy")?;
        Ok(c.sent + c.failed + c.dropped + dispatcher.sender.dropped() >= n)
    })?;
    let sink = sink_counts(&dispatcher, "healthy")?;
    let queue_dropped = dispatcher.sender.dropped();
    let d = lock(&got);
    let last = d.first.values().max().copied().unwrap_or(start);
    let result = Burst {
        send_us: sorted(send_us),
        sent: records.len(),
        sending_us,
        queue_dropped,
        sink,
        delivered: d.first.len(),
        drain_s: last.saturating_duration_since(start).as_secs_f64(),
        complete,
        bad_signature: d.bad_signature,
    };
    drop(d);
    drop(dispatcher);
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(result)
}

/// Case 4.
struct Cover {
    /// One-off windows.
    once: usize,
    /// Weekly windows.
    weekly: usize,
    /// Windows active at the fixed instant.
    active: usize,
    /// Whether those cover the incident fully.
    full: bool,
    /// Calls at the fixed instant, µs each, sorted.
    fixed_us: Vec<f64>,
    /// One call at each of a week's 10-minute instants, µs, sorted.
    week_us: Vec<f64>,
    /// Of those instants, how many had the incident fully covered.
    week_full: usize,
}

impl Cover {
    fn json(&self) -> Value {
        json!({
            "windows": self.once + self.weekly, "one_off": self.once, "weekly": self.weekly,
            "active_at_fixed": self.active, "full_at_fixed": self.full,
            "fixed_calls": self.fixed_us.len(), "fixed_p50_us": pct(&self.fixed_us, 50.0),
            "fixed_p99_us": pct(&self.fixed_us, 99.0),
            "week_instants": self.week_us.len(), "week_p50_us": pct(&self.week_us, 50.0),
            "week_p99_us": pct(&self.week_us, 99.0), "week_max_us": pct(&self.week_us, 100.0),
            "week_full": self.week_full,
        })
    }
}

const ZONES: [&str; 8] = [
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "UTC",
    "America/Sao_Paulo",
];

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Window `i`: even ones one-off (local times around the fixed instant, 1 to 12 hours),
/// odd ones weekly (one or two days, 2 h); scopes rotate between one target in every region,
/// two regions of every target, two targets in three regions, and everything.
fn raw_window(i: usize, targets: &[String], regions: &[String]) -> RawWindow {
    let t = |k: usize| targets[k % targets.len()].clone();
    let r = |k: usize| regions[k % regions.len()].clone();
    let (targets, regions) = match i % 4 {
        0 => (vec![t(i)], vec![]),
        1 => (vec![], vec![r(i), r(i + 1)]),
        2 => (vec![t(i), t(i + 7)], vec![r(i), r(i + 3), r(i + 5)]),
        _ => (vec![], vec![]),
    };
    let timezone = Some(ZONES[i % ZONES.len()].to_string());
    let base = RawWindow {
        id: format!("w-{i:03}"),
        title: format!("Maintenance {i}"),
        targets,
        regions,
        timezone,
        ..RawWindow::default()
    };
    if i.is_multiple_of(2) {
        // 2026-11-28 20:00 local, shifted by up to ±12 h.
        let start = chrono::NaiveDate::from_ymd_opt(2026, 11, 28)
            .and_then(|d| d.and_hms_opt(20, 0, 0))
            .unwrap_or_default()
            + chrono::Duration::hours((i / 2 % 25) as i64 - 12);
        let end = start + chrono::Duration::hours(1 + (i % 12) as i64);
        let text =
            |t: chrono::NaiveDateTime| WhenText::Text(t.format("%Y-%m-%d %H:%M").to_string());
        RawWindow {
            start: Some(text(start)),
            end: Some(text(end)),
            ..base
        }
    } else {
        let mut days = vec![DAYS[i % 7].to_string()];
        if i.is_multiple_of(3) {
            days.push(DAYS[(i + 3) % 7].to_string());
        }
        RawWindow {
            every: Some("week".into()),
            days,
            at: Some(format!("{:02}:{:02}", (i * 5) % 24, (i * 10) % 60)),
            duration: Some("2h".into()),
            ..base
        }
    }
}

fn coverage_cost(args: &Args) -> anyhow::Result<Cover> {
    let all_targets: Vec<String> = (0..20).map(|i| format!("target-{i:02}")).collect();
    let all_regions: Vec<String> = (0..12).map(|i| format!("region-{i:02}")).collect();
    let known = Known {
        targets: &all_targets,
        regions: &all_regions,
    };
    let windows: Vec<Window> = (0..args.windows)
        .map(|i| {
            raw_window(i, &all_targets, &all_regions)
                .validate(Source::Api, &known)
                .map_err(|p| {
                    let p: Vec<String> = p.iter().map(ToString::to_string).collect();
                    anyhow!("window {i} does not validate: {}", p.join("; "))
                })
        })
        .collect::<anyhow::Result<_>>()?;
    let targets: Vec<String> = all_targets[..3].to_vec();
    let regions: Vec<String> = all_regions[..10].to_vec();
    // Sunday 2026-11-29 01:30 UTC.
    let fixed = chrono::DateTime::parse_from_rfc3339("2026-11-29T01:30:00Z")
        .context("the fixed instant")?
        .timestamp_millis();
    let at_fixed = maintenance::coverage(&windows, &targets, &regions, fixed);
    let active = windows
        .iter()
        .filter(|w| w.active_at(fixed).is_some())
        .count();
    let mut fixed_us = Vec::with_capacity(args.calls);
    for _ in 0..args.calls {
        let t = Instant::now();
        std::hint::black_box(maintenance::coverage(
            std::hint::black_box(&windows),
            &targets,
            &regions,
            std::hint::black_box(fixed),
        ));
        fixed_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let step = 10 * 60_000;
    let week_start = fixed - 3 * 86_400_000;
    let mut week_us = Vec::with_capacity(7 * 144);
    let mut week_full = 0;
    for k in 0..7 * 144 {
        let at = week_start + k * step;
        let t = Instant::now();
        let c = std::hint::black_box(maintenance::coverage(&windows, &targets, &regions, at));
        week_us.push(t.elapsed().as_secs_f64() * 1e6);
        week_full += usize::from(c.full);
    }
    Ok(Cover {
        once: windows.iter().filter(|w| w.raw.start.is_some()).count(),
        weekly: windows.iter().filter(|w| w.raw.every.is_some()).count(),
        active,
        full: at_fixed.full,
        fixed_us: sorted(fixed_us),
        week_us: sorted(week_us),
        week_full,
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.alerts > 0 && args.burst > 0 && args.calls > 0 && args.windows > 0,
        "--alerts, --burst, --calls and --windows must be positive"
    );
    let load = loadavg();
    let alone = paced(&args, false).context("case 1 (latency)")?;
    let beside = paced(&args, true).context("case 2 (isolation)")?;
    let burst = burst(&args).context("case 3 (burst)")?;
    let cover = coverage_cost(&args).context("case 4 (maintenance coverage)")?;
    let ratio = |a: f64, b: f64| b / a;
    let (p50_1, p99_1) = (pct(&alone.latency_ms, 50.0), pct(&alone.latency_ms, 99.0));
    let (p50_2, p99_2) = (pct(&beside.latency_ms, 50.0), pct(&beside.latency_ms, 99.0));
    if args.json {
        let v = json!({
            "loadavg": load, "latency": alone.json(), "isolation": beside.json(),
            "isolation_ratio": {"p50": ratio(p50_1, p50_2), "p99": ratio(p99_1, p99_2)},
            "burst": burst.json(), "coverage": cover.json(),
        });
        println!("{v}");
        return Ok(());
    }
    let incomplete = |ok: bool| if ok { "" } else { "  (INCOMPLETE at --wait-s)" };
    println!(
        "bench-alerts: webhook (HMAC) sinks to 127.0.0.1, 2 runtime workers, timeout {} s x {} attempts; load {load}",
        args.timeout_s, args.attempts
    );
    println!(
        "1. latency, {} paged alerts every {} ms, send -> full request at the receiver:",
        alone.sent, args.spacing_ms
    );
    let line = |p: &Paced| {
        let l = &p.latency_ms;
        format!(
            "p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3} ms; delivered {}/{}{}",
            pct(l, 50.0),
            pct(l, 90.0),
            pct(l, 99.0),
            pct(l, 100.0),
            p.delivered,
            p.sent,
            incomplete(p.complete)
        )
    };
    println!("   healthy sink alone          {}", line(&alone));
    println!("2. isolation, the same beside a black-hole sink (accepts, never answers):");
    println!("   healthy sink, hole beside   {}", line(&beside));
    println!(
        "   ratio to case 1             p50 x{:.2}  p99 x{:.2}",
        ratio(p50_1, p50_2),
        ratio(p99_1, p99_2)
    );
    if let Some((c, conns)) = beside.hole {
        println!(
            "   hole sink meanwhile         sent {}  failed {}  dropped at its queue {}  retries {}; {} connections held",
            c.sent, c.failed, c.dropped, c.retries, conns
        );
    }
    println!(
        "   dispatcher queue drops      {} (case 1), {} (case 2); bad signatures {} / {}",
        alone.queue_dropped, beside.queue_dropped, alone.bad_signature, beside.bad_signature
    );
    println!(
        "3. burst, {} alerts back to back (queues of {}):",
        burst.sent,
        AlertingSettings::default().queue
    );
    println!(
        "   send() per call             p50 {:.2}  p99 {:.2}  max {:.2} us ({:.0} us for all; {} calls over {SLOW_US} us)",
        pct(&burst.send_us, 50.0),
        pct(&burst.send_us, 99.0),
        pct(&burst.send_us, 100.0),
        burst.sending_us,
        burst.slow()
    );
    println!(
        "   dropped                     {} = {} at the dispatcher's queue + {} at the sink's queue; failed {}",
        burst.queue_dropped + burst.sink.dropped,
        burst.queue_dropped,
        burst.sink.dropped,
        burst.sink.failed
    );
    println!(
        "   delivered                   {} in {:.3} s = {:.0} alerts/s{}",
        burst.delivered,
        burst.drain_s,
        burst.rate(),
        incomplete(burst.complete)
    );
    println!(
        "4. maintenance::coverage, {} windows ({} one-off, {} weekly, 8 time zones), incident 3 targets x 10 regions:",
        cover.once + cover.weekly,
        cover.once,
        cover.weekly
    );
    println!(
        "   at a fixed instant          median {:.2}  p99 {:.2} us per call over {} calls ({} windows active, full: {})",
        pct(&cover.fixed_us, 50.0),
        pct(&cover.fixed_us, 99.0),
        cover.fixed_us.len(),
        cover.active,
        cover.full
    );
    println!(
        "   every 10 min over a week    median {:.2}  p99 {:.2}  max {:.2} us per call ({} instants, fully covered at {})",
        pct(&cover.week_us, 50.0),
        pct(&cover.week_us, 99.0),
        pct(&cover.week_us, 100.0),
        cover.week_us.len(),
        cover.week_full
    );
    Ok(())
}
