//! `bench-web`: the web side's two performance targets, measured against a real coordinator.
//!
//! - **Map first render with 100 regions under 1 s**: headless Chromium
//!   ([`meridian_tests::browser::Browser`]) loads the map page `/` `--loads` times (a fresh
//!   navigation each time, the first with an empty cache) and reads what map.js records on
//!   `svg#map` once drawn: `data-ready-ms` (navigation start to first render) and
//!   `data-render-ms`, with the page's resource count.
//! - **API p99 under 50 ms at 200 requests/s while ingesting**: an open-loop load generator
//!   sends `--rate` requests a second on a fixed schedule, whatever the answers do (a request
//!   that finds every pooled keep-alive connection busy opens another), over a mix of
//!   `/api/v1/regions` (7 in 10), `/api/v1/incidents`, `/api/v1/regions/{id}` and
//!   `/status/summary.json`; latency runs from each request's *scheduled* send time, so queuing
//!   shows in it. Once while simulated probes deliver `--ingest` results a second over real QUIC,
//!   and once without, for reference.
//!
//! The parent process runs the coordinator in process, as `bench-link` does: [`Service`] with a
//! temporary data directory and a catalog of `--regions` synthetic regions (`regions.toml`
//! written next to the configuration), the [`Web`] server on `127.0.0.1:0`, probes enrolled
//! directly (certificates signed by the [`Ca`], `upsert_probe`), a user, an API token and a
//! browser session written straight into the store. The simulated probes and the load generator
//! are this same binary re-run as children (`--role probes`, `--role load`), so the
//! coordinator's CPU, read from the parent's `/proc/self`, is its own; Chromium is a process of
//! its own too. All of them share this machine's cores, which the report's load average and
//! the coordinator's CPU share put in context.
//!
//! Phases: optional history (`--history-days`: the rollups a coordinator that has run a week
//! holds in the windows the web side reads; minutes of set-up), warm-up (ingest until
//! detection's live view covers every region), sequential service times per endpoint and the
//! cost of the store reads behind them, API load while ingesting, map loads while ingesting,
//! ingest stopped, API load idle, map loads idle. Without Chromium the map phases print SKIP.
//! Each API phase reports latency overall and per endpoint, the generator's own lateness and
//! the server's share apart, the seconds with a request over 50 ms, and the coordinator's CPU
//! by thread; `--no-detail` takes the region detail out of the mix to tell its cost apart.
//!
//! Run it from a release build (`cargo build --release -p meridian-tests --bin bench-web`,
//! then `target/release/bench-web`); it needs no network beyond loopback. Figures depend on
//! what else the machine runs: the report prints the load average at start and end.
//!
//! Every loop is bounded by a count and a deadline.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Parser;
use http::{Request, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use meridian_coordinator::config::{CoordinatorConfig, WebSettings};
use meridian_coordinator::pki::{Ca, ProbeIdentity};
use meridian_coordinator::service::{Service, ServiceConfig, ServiceHandle};
use meridian_coordinator::store::Store;
use meridian_coordinator::store::users::{NewSession, Role, SessionKind, secret_hash};
use meridian_coordinator::web::{Web, hash_password, new_secret};
use meridian_shared::check::CheckId;
use meridian_shared::regions::RegionId;
use meridian_shared::result::{CheckResult, Phases};
use meridian_shared::wire::{
    self, CoordinatorMessage, FrameDecoder, Hello, ProbeMessage, ResultBatch, SequencedResult,
};
use meridian_tests::browser::Browser;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

/// The user the bench logs in as (sre-admin: every page and endpoint is open to it).
const USER: &str = "bench";
/// Where the load generator's child finds the API token (an environment variable rather than
/// an argument, so it is not in `ps`).
const TOKEN_ENV: &str = "BENCH_WEB_TOKEN";
/// Bound on one HTTP request of the load generator; a request over it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one map load (navigation to `data-ready`).
const MAP_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests per endpoint in the sequential service-time phase.
const SEQUENTIAL: usize = 20;
/// The API target: p99 under this, ms.
const TARGET_MS: f64 = 50.0;
/// Seconds listed as the worst of an API phase.
const WORST_SECONDS: usize = 6;

/// The catalog's nine continents, each with a rough box on land (lat from/to, lon from/to) that
/// its synthetic regions are spread over, so the map shows markers where regions would be.
const CONTINENTS: [(&str, [f64; 4]); 9] = [
    ("north-america", [25.0, 50.0, -123.0, -70.0]),
    ("south-america", [-35.0, 5.0, -75.0, -40.0]),
    ("europe", [38.0, 60.0, -8.0, 30.0]),
    ("middle-east", [20.0, 35.0, 35.0, 58.0]),
    ("africa", [-30.0, 10.0, 5.0, 38.0]),
    ("south-asia", [10.0, 30.0, 70.0, 88.0]),
    ("south-east-asia", [-8.0, 18.0, 98.0, 122.0]),
    ("east-asia", [22.0, 42.0, 105.0, 140.0]),
    ("oceania", [-40.0, -15.0, 115.0, 175.0]),
];

/// Which process this is.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// The coordinator, the browser driver and the report.
    Coordinator,
    /// The simulated probes (a child).
    Probes,
    /// The HTTP load generator (a child).
    Load,
}

#[derive(Parser, Clone)]
#[command(
    about = "The web side's targets: map first render with 100 regions, API p99 at 200 req/s while ingesting"
)]
struct Args {
    /// Regions in the synthetic catalog.
    #[arg(long, default_value_t = 100)]
    regions: usize,
    /// Simulated probes per region.
    #[arg(long, default_value_t = 3)]
    per_region: usize,
    /// Checks configured (five targets of two checks each at the default); every probe runs
    /// them all.
    #[arg(long, default_value_t = 10)]
    checks: usize,
    /// Results per second the probes deliver, in all.
    #[arg(long, default_value_t = 5_000)]
    ingest: u64,
    /// How often each probe uploads what is due, ms (the probe's own spool poll is 250 ms).
    #[arg(long, default_value_t = 250)]
    upload_ms: u64,
    /// Skip the ingesting phases: no probes, only the idle ones.
    #[arg(long)]
    no_ingest: bool,
    /// Skip the map (browser) phases.
    #[arg(long)]
    no_map: bool,
    /// Leave the region detail out of the API mix (its share goes to the region list): tells
    /// its cost from the rest's.
    #[arg(long)]
    no_detail: bool,
    /// API requests per second, on a fixed schedule.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Length of each API load phase, seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Keep-alive connections the load generator may have open at once.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Map loads per map phase (the first with an empty cache).
    #[arg(long, default_value_t = 10)]
    loads: usize,
    /// Days of rollup history to store first (the windows the web side reads; see
    /// `history`), as a coordinator that has run that long has them.
    #[arg(long, default_value_t = 0)]
    history_days: u32,
    /// Ingest at least this long before measuring, seconds.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Give up waiting for the live view to cover every region after this long, seconds.
    #[arg(long, default_value_t = 90)]
    warmup_max: u64,
    /// Internal: which process this is.
    #[arg(long, value_enum, default_value = "coordinator", hide = true)]
    role: Part,
    /// Internal: the coordinator's QUIC address (probes) or HTTP address (load).
    #[arg(long, hide = true)]
    addr: Option<SocketAddr>,
    /// Internal: where the probes' certificates are.
    #[arg(long, hide = true)]
    certs: Option<PathBuf>,
    /// Internal: the children's hard deadline, seconds.
    #[arg(long, hide = true, default_value_t = 600)]
    max_seconds: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match args.role {
        Part::Coordinator => rt.block_on(coordinator(args)),
        Part::Probes => rt.block_on(probes(args)),
        Part::Load => rt.block_on(load(args)),
    }
}

// ---- the catalog and configuration --------------------------------------------------------

/// One synthetic region: id, name, latitude, longitude, continent.
struct SynthRegion {
    id: String,
    name: String,
    lat: f64,
    lon: f64,
    continent: &'static str,
}

/// The radical inverse of `i` in `base` (van der Corput): points in [0, 1) that spread evenly
/// whatever their number, so regions do not pile up on one spot.
fn radical_inverse(mut i: usize, base: usize) -> f64 {
    let (mut out, mut scale) = (0.0, 1.0 / base as f64);
    // Bounded: i shrinks by a factor of `base` each round.
    while i > 0 {
        out += (i % base) as f64 * scale;
        i /= base;
        scale /= base as f64;
    }
    out
}

/// `n` regions, dealt round the nine continents and spread over each one's box. Deterministic:
/// the children recompute the same list from `--regions`.
fn synth_regions(n: usize) -> Vec<SynthRegion> {
    (0..n)
        .map(|i| {
            let (continent, [lat0, lat1, lon0, lon1]) = CONTINENTS[i % CONTINENTS.len()];
            let j = i / CONTINENTS.len() + 1;
            SynthRegion {
                id: format!("{continent}-{j:02}"),
                name: format!("synthetic {} {j}", continent.replace('-', " ")),
                lat: lat0 + (lat1 - lat0) * radical_inverse(j, 2),
                lon: lon0 + (lon1 - lon0) * radical_inverse(j, 3),
                continent,
            }
        })
        .collect()
}

/// The catalog file: one corridor per continent (every region sits behind its continent's,
/// so every declared corridor has members).
fn regions_toml(regions: &[SynthRegion]) -> String {
    let mut text = String::from("[corridors]\n");
    for (c, _) in CONTINENTS {
        text.push_str(&format!(
            "bench-{c} = \"Synthetic long-haul paths out of {c}\"\n"
        ));
    }
    for r in regions {
        text.push_str(&format!(
            "\n[[region]]\nid = \"{}\"\nname = \"{}\"\nlat = {:.2}\nlon = {:.2}\ncontinent = \"{}\"\ncorridors = [\"bench-{}\"]\n",
            r.id, r.name, r.lat, r.lon, r.continent, r.continent
        ));
    }
    text
}

/// The coordinator's configuration: the catalog file, and `checks` HTTP checks in targets of
/// two (check ids `check-N`, the ids the probes' results name).
fn config_text(checks: usize) -> String {
    let mut text = String::from(
        "data_dir = \"data\"\nregions_file = \"regions.toml\"\n[listen]\nquic = \"127.0.0.1:0\"\n",
    );
    for t in 0..checks.div_ceil(2) {
        text.push_str(&format!(
            "[[target]]\nid = \"site-{t}\"\nname = \"Site {t}\"\n"
        ));
        for c in (t * 2)..(t * 2 + 2).min(checks) {
            text.push_str(&format!(
                "[[target.http]]\nid = \"check-{c}\"\nurl = \"http://127.0.0.1:9/\"\n"
            ));
        }
    }
    text
}

// ---- measuring ------------------------------------------------------------------------------

/// CPU time (user + system) of this process so far, seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the ')'.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    ticks as f64 / 100.0
}

/// CPU seconds of this process's threads so far, summed by thread name (`comm`: the store
/// thread, the detection thread, tokio's workers and blocking pool, ...).
fn thread_cpu() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat.get(open + 1..close).unwrap_or_default().to_string();
        let f: Vec<u64> = stat
            .get(close + 1..)
            .unwrap_or_default()
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
        *out.entry(name).or_default() += ticks as f64 / 100.0;
    }
    out
}

/// Per-thread-name CPU between two [`thread_cpu`] samples, % of one core over `secs`, busiest
/// first.
fn thread_shares(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
    secs: f64,
) -> String {
    let mut shares: Vec<(&String, f64)> = after
        .iter()
        .map(|(name, t)| {
            (
                name,
                100.0 * (t - before.get(name).unwrap_or(&0.0)) / secs.max(1e-9),
            )
        })
        .filter(|(_, pct)| *pct >= 0.5)
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    shares
        .iter()
        .map(|(name, pct)| format!("{name} {pct:.0} %"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The nearest-rank `q` quantile of sorted values (0 when there are none).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// `p50 .. p90 .. p99 .. max ..` of unsorted milliseconds.
fn spread(values: &[f64]) -> Spread {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Spread {
        n: v.len(),
        p50: quantile(&v, 0.5),
        p90: quantile(&v, 0.9),
        p99: quantile(&v, 0.99),
        max: v.last().copied().unwrap_or(0.0),
    }
}

/// Quantiles of a set of milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Spread {
    n: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            self.p50, self.p90, self.p99, self.max
        )
    }
}

// ---- HTTP client (hyper 1, connection by connection) ---------------------------------------

type Sender = SendRequest<Full<Bytes>>;

/// A credential header: `Authorization: Bearer ...` or `Cookie: meridian_session=...`.
type Auth = (header::HeaderName, String);

/// A keep-alive HTTP/1.1 connection to `addr`; its driver runs as a task until it closes.
async fn connect_http(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// `GET path` on `sender`: status and body size. `auth` is an `Authorization` or `Cookie`
/// header, when the endpoint needs one.
async fn get(
    sender: &mut Sender,
    addr: SocketAddr,
    path: &str,
    auth: Option<&Auth>,
) -> anyhow::Result<(u16, usize)> {
    let mut req = Request::get(path)
        .header(header::HOST, addr.to_string())
        .header(header::ACCEPT, "application/json, text/html");
    if let Some((name, value)) = auth {
        req = req.header(name, value);
    }
    sender.ready().await?;
    let res = sender
        .send_request(req.body(Full::new(Bytes::new()))?)
        .await?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, body.len()))
}

/// The API mix: 7 in 10 requests list the regions, the rest are one each of the incidents,
/// one region's detail (rotating over every region; the region list instead with `detail`
/// false) and the public summary.
fn mix_path(i: u64, regions: &[SynthRegion], detail: bool) -> (usize, String) {
    match i % 10 {
        7 => (1, "/api/v1/incidents".to_string()),
        8 if detail => {
            let r = &regions[(i / 10) as usize % regions.len().max(1)];
            (2, format!("/api/v1/regions/{}", r.id))
        }
        9 => (3, "/status/summary.json".to_string()),
        _ => (0, "/api/v1/regions".to_string()),
    }
}

/// The endpoints of [`mix_path`], by its index.
const ENDPOINTS: [&str; 4] = [
    "/api/v1/regions",
    "/api/v1/incidents",
    "/api/v1/regions/{id}",
    "/status/summary.json",
];

// ---- the parent: coordinator, phases, report -----------------------------------------------

/// Everything the phases need of the running coordinator.
struct Running {
    /// The service: counters, the live view.
    handle: ServiceHandle,
    /// The web server's address.
    http: SocketAddr,
    /// The catalog, as written.
    regions: Vec<SynthRegion>,
    /// The API token (`Authorization: Bearer`).
    token: String,
    /// The browser session's secret (the cookie's value).
    browser_secret: String,
}

/// The figures of one API load phase, as the load child reports them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LoadReport {
    /// Requests scheduled.
    scheduled: u64,
    /// Answered 2xx.
    ok: u64,
    /// Answered otherwise, failed or timed out.
    errors: u64,
    /// Answers per second over the phase (first scheduled send to last answer).
    achieved: f64,
    /// Latency from the scheduled send time, all endpoints.
    all: Spread,
    /// The same per endpoint of [`ENDPOINTS`].
    by_endpoint: Vec<Spread>,
    /// Mean body size per endpoint, bytes.
    bytes: Vec<f64>,
    /// How late the generator itself sent, ms: scheduled time to the request handed to a
    /// connection (a new one opened, if none was idle).
    lag: Spread,
    /// From the request handed to a connection to the whole body, ms: the server's share.
    service: Spread,
    /// The seconds of the phase whose slowest request took longest: (second, requests over
    /// 50 ms, slowest ms), worst first, at most [`WORST_SECONDS`].
    worst_seconds: Vec<(u64, usize, f64)>,
    /// Seconds in which some request took over 50 ms.
    slow_seconds: usize,
    /// Connections opened.
    connections: usize,
    /// Errors by kind, with a first example.
    error_kinds: Vec<String>,
}

/// One API phase as the parent saw it.
struct ApiPhase {
    report: LoadReport,
    /// Results stored per second during it.
    stored_rate: f64,
    /// The coordinator's CPU over it, % of one core.
    cpu: f64,
    /// The same by thread.
    threads: String,
}

/// One map load, as [`MAP_METRICS`] reads it off the page.
#[derive(Debug, Clone, Deserialize)]
struct MapLoad {
    /// `data-ready-ms`: navigation start to the first complete render, ms.
    ready: Option<f64>,
    /// `data-render-ms`: map.js's start to the first render, ms.
    render: Option<f64>,
    /// `data-error`, if the map failed.
    error: Option<String>,
    /// Region markers drawn.
    markers: usize,
    /// Navigation start to the HTML's last byte, ms.
    html_ms: Option<f64>,
    /// The `/api/v1/regions` fetch, request to last byte, ms.
    regions_ms: Option<f64>,
    /// Its size on the wire, bytes (0 when cached).
    regions_bytes: Option<f64>,
    /// Resources the page loaded (the HTML aside).
    resources: usize,
    /// Bytes on the wire, the HTML included.
    transferred: f64,
    /// The resources' paths.
    names: Vec<String>,
}

/// One map phase.
enum MapPhase {
    /// Chromium is not installed.
    Skipped,
    /// The loads, with the coordinator's CPU share over them.
    Done(Vec<MapLoad>, f64),
    /// Something failed.
    Failed(String),
}

/// The parent.
async fn coordinator(args: Args) -> anyhow::Result<()> {
    let load_start = load_average();
    let started = Instant::now();
    let dir = tempfile::tempdir().context("temp dir")?;
    let data = dir.path().join("data");
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&data)?;
    std::fs::create_dir_all(&certs)?;
    let regions = synth_regions(args.regions.max(1));
    std::fs::write(dir.path().join("regions.toml"), regions_toml(&regions))?;
    let src =
        meridian_shared::config::SourceFile::new("coordinator.toml", config_text(args.checks));
    let config =
        Arc::new(CoordinatorConfig::from_source(&src, dir.path()).context("bench config")?);
    anyhow::ensure!(
        config.catalog.len() == regions.len(),
        "the catalog has {} regions, not {}",
        config.catalog.len(),
        regions.len()
    );

    let ca = Ca::load_or_create(&data).context("CA")?;
    let store = Store::open(&data).context("store")?;
    let probes = if args.no_ingest {
        0
    } else {
        regions.len() * args.per_region.max(1)
    };
    enrol(&ca, &store, &certs, &regions, probes)?;
    let (token, browser_secret) = accounts(&store)?;
    let mut store = store;
    let history_note = history(&mut store, &regions, &args)?;

    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let service_config = ServiceConfig {
        targets: Some(config.clone()),
        ..ServiceConfig::default()
    };
    let service = Service::bind(socket, ca, store, service_config).context("service")?;
    let handle = service.handle();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut stopped_quic = stopped.clone();
    let quic_task = tokio::spawn(service.run(async move {
        let _ = stopped_quic.wait_for(|s| *s).await;
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let web = Web::with_listener(listener, handle.clone(), &data, WebSettings::default())?;
    let http = web.local_addr()?;
    let mut stopped_web = stopped.clone();
    let web_task = tokio::spawn(web.run(async move {
        let _ = stopped_web.wait_for(|s| *s).await;
    }));
    let run = Running {
        handle: handle.clone(),
        http,
        regions,
        token,
        browser_secret,
    };
    let budget =
        args.warmup_max + 2 * args.seconds + 2 * (args.loads as u64) * MAP_TIMEOUT.as_secs() + 180;

    // Warm-up: probes ingesting until detection's live view covers every region.
    let mut child = None;
    let mut warm_note = String::from("no ingest (--no-ingest)");
    if probes > 0 {
        eprintln!("bench-web: connecting {probes} probes");
        let c = ProbesChild::start(&args, handle.local_addr(), &certs, budget).await?;
        child = Some(c);
        warm_note = warm_up(&args, &run).await;
        eprintln!("bench-web: {warm_note}");
    }

    let sequential = service_times(&run).await?;
    let costs = {
        let (data, checks, token) = (data.clone(), args.checks, run.token.clone());
        let regions = synth_regions(args.regions.max(1));
        tokio::task::spawn_blocking(move || read_costs(&data, &regions, checks, &token)).await??
    };

    let mut api_ingest = None;
    let mut map_ingest = None;
    if let Some(c) = &child {
        eprintln!("bench-web: API load while ingesting");
        api_ingest = Some(api_phase(&args, &run, budget).await?);
        if !args.no_map {
            eprintln!("bench-web: map loads while ingesting");
            map_ingest = Some(map_phase(&args, &run).await);
        }
        if c.exited() {
            bail!("the probes' child exited during the measurements");
        }
    }
    let ingest_lines = match child {
        Some(c) => c.stop().await?,
        None => Vec::new(),
    };
    // Let the store and detection settle from the ingest before the idle phases.
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("bench-web: API load, no ingest");
    let api_idle = api_phase(&args, &run, budget).await?;
    let map_idle = if args.no_map {
        None
    } else {
        eprintln!("bench-web: map loads, no ingest");
        Some(map_phase(&args, &run).await)
    };

    let counters = handle.counters();
    let stored = counters.results_stored.load(Ordering::Relaxed);
    let rejected = counters.results_rejected.load(Ordering::Relaxed);
    let cells = handle.live_view().borrow().cells.len();
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), web_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), quic_task).await;

    // ---- the report ----
    println!(
        "bench-web: coordinator in process ({} regions, {} checks, {} probes over QUIC on 127.0.0.1 in a child), web on {http}",
        run.regions.len(),
        args.checks,
        probes
    );
    println!("  history          {history_note}");
    println!("  warm-up          {warm_note}");
    println!(
        "  service time     sequential, one keep-alive connection, {SEQUENTIAL} requests each (while ingesting when there is ingest):"
    );
    for line in &sequential {
        println!("                   {line}");
    }
    println!(
        "  store reads      the web code's queries, on a reader connection of the bench's own:"
    );
    for line in &costs {
        println!("                   {line}");
    }
    let mut failed = Vec::new();
    if let Some(p) = &api_ingest {
        print_api(
            &format!("API while ingesting ({} results/s asked)", args.ingest),
            p,
            &args,
        );
    }
    if let Some(m) = &map_ingest {
        print_map("map while ingesting", m, &mut failed);
    }
    for line in &ingest_lines {
        println!("{line}");
    }
    print_api("API, no ingest", &api_idle, &args);
    if let Some(m) = &map_idle {
        print_map("map, no ingest", m, &mut failed);
    }
    println!(
        "  store            {stored} results stored in all, {rejected} refused; live view {cells} cells at the end"
    );
    println!(
        "  load average     {load_start} at start, {} at end ({:.0} s in all, {} cores)",
        load_average(),
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("  summary");
    if let Some(p) = &api_ingest {
        println!(
            "    API ingesting  {}  at {:.1} req/s, {} errors; ingest achieved {:.0} results/s",
            p.report.all, p.report.achieved, p.report.errors, p.stored_rate
        );
    }
    println!(
        "    API idle       {}  at {:.1} req/s, {} errors",
        api_idle.report.all, api_idle.report.achieved, api_idle.report.errors
    );
    for (what, m) in [("map ingesting", &map_ingest), ("map idle     ", &map_idle)] {
        match m {
            Some(MapPhase::Done(loads, _)) => {
                let s = map_spread(loads);
                println!(
                    "    {what}  ready median {:.0} ms  p90 {:.0} ms  max {:.0} ms  (cold {:.0} ms)",
                    s.p50,
                    s.p90,
                    s.max,
                    loads.first().and_then(|l| l.ready).unwrap_or(f64::NAN)
                );
            }
            Some(MapPhase::Skipped) => println!("    {what}  SKIP (no chromedriver)"),
            Some(MapPhase::Failed(e)) => println!("    {what}  FAILED: {e}"),
            None => {}
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}

/// Probe certificates (one shared key, a certificate each) in `certs`, and the probes in the
/// store, `probes / regions` per region.
fn enrol(
    ca: &Ca,
    store: &Store,
    certs: &Path,
    regions: &[SynthRegion],
    probes: usize,
) -> anyhow::Result<()> {
    std::fs::write(certs.join("ca.der"), ca.cert_der().as_ref())?;
    // One key pair for all the simulated probes: each still has its own certificate (its own
    // identity); generating hundreds of keys would only slow the set-up.
    let key = rcgen::KeyPair::generate().context("key")?;
    std::fs::write(certs.join("key.der"), key.serialize_der())?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())?
        .serialize_request(&key)
        .context("CSR")?;
    let per_region = probes.div_ceil(regions.len().max(1)).max(1);
    for i in 0..probes {
        let region = &regions[(i / per_region) % regions.len()].id;
        let identity = ProbeIdentity {
            probe_id: format!("bench-{i:05}"),
            region: RegionId::parse(region).context("region")?,
        };
        let cert = ca
            .sign_probe(csr.der(), &identity, Duration::from_secs(86_400))
            .context("signing")?;
        std::fs::write(certs.join(format!("{i}.der")), cert.as_ref())?;
        store
            .upsert_probe(&identity.probe_id, region, None, 0)
            .context("enrolling")?;
    }
    Ok(())
}

/// With `--history-days N`: rollups for the windows the web side reads from history (the
/// same hour, ±30 min, of each of the N previous days: the detail panel's baselines, and the
/// region list's "usual" a day earlier), as a coordinator that has run that long has them.
/// One result per (region, check, minute), stored through the normal ingest path under a
/// probe id per region (`history-<region>`) that no live probe uses, so the live sequences
/// stay fresh. Says what it stored and how long it took.
fn history(store: &mut Store, regions: &[SynthRegion], args: &Args) -> anyhow::Result<String> {
    if args.history_days == 0 {
        return Ok("none (--history-days 0)".to_string());
    }
    let t0 = Instant::now();
    let now = now_ms();
    let ids: Vec<String> = regions
        .iter()
        .map(|r| format!("history-{}", r.id))
        .collect();
    let (mut seq, mut stored) = (0u64, 0u64);
    for day in 1..=args.history_days {
        for minute in -30..=30i64 {
            let at = now - i64::from(day) * 86_400_000 + minute * 60_000;
            seq += 1;
            let batches: Vec<Vec<(u64, CheckResult)>> = (0..regions.len())
                .map(|r| {
                    (0..args.checks as u64)
                        .map(|c| {
                            let s = seq * args.checks as u64 + c;
                            (s, synth_result(r, c, s ^ (r as u64) << 32, at))
                        })
                        .collect()
                })
                .collect();
            let refs: Vec<meridian_coordinator::store::ProbeBatch<'_>> = ids
                .iter()
                .zip(regions)
                .zip(&batches)
                .map(|((id, r), b)| (id.as_str(), r.id.as_str(), b.as_slice()))
                .collect();
            for outcome in store.ingest_many(&refs, at)? {
                stored += outcome.stored as u64;
            }
        }
    }
    Ok(format!(
        "{stored} results (one per region, check and minute, {} days × 61 minutes) stored in {:.1} s",
        args.history_days,
        t0.elapsed().as_secs_f64()
    ))
}

/// The bench's sre-admin, an API token and a browser session for it; returns the token and the
/// browser session's secret (the cookie's value).
fn accounts(store: &Store) -> anyhow::Result<(String, String)> {
    let now = now_ms();
    let phc = hash_password(&new_secret()?)?;
    store
        .add_user(USER, Role::SreAdmin, &phc, now)
        .context("adding the user")?;
    let mut secrets = Vec::new();
    for kind in [SessionKind::Token, SessionKind::Browser] {
        let (secret, csrf) = (new_secret()?, new_secret()?);
        store
            .create_session(&NewSession {
                user: USER,
                kind,
                label: Some("bench-web"),
                secret_hash: &secret_hash(&secret),
                csrf: &csrf,
                now_ms: now,
                expires_ms: now + 86_400_000,
            })
            .context("creating a session")?;
        secrets.push(secret);
    }
    let browser = secrets.pop().context("browser secret")?;
    let token = secrets.pop().context("token")?;
    Ok((token, browser))
}

/// Waits (at least `--warmup`, at most `--warmup-max` seconds) until detection's live view
/// has a cell in every region; says how it went.
async fn warm_up(args: &Args, run: &Running) -> String {
    let start = Instant::now();
    let stored0 = run.handle.counters().results_stored.load(Ordering::Relaxed);
    let min = start + Duration::from_secs(args.warmup);
    let max = start + Duration::from_secs(args.warmup_max.max(args.warmup));
    let covered = || {
        let view = run.handle.live_view().borrow().clone();
        let regions: std::collections::BTreeSet<&str> =
            view.cells.iter().map(|c| c.region.as_str()).collect();
        (regions.len(), view.cells.len())
    };
    // Bounded by `max`.
    while Instant::now() < max {
        if Instant::now() >= min && covered().0 >= run.regions.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (regions, cells) = covered();
    let secs = start.elapsed().as_secs_f64();
    let stored = run.handle.counters().results_stored.load(Ordering::Relaxed) - stored0;
    format!(
        "{secs:.1} s ingesting ({:.0} results/s stored): live view covers {regions} of {} regions, {cells} (check, region) cells",
        stored as f64 / secs.max(1e-9),
        run.regions.len()
    )
}

/// Sequential requests per endpoint on one keep-alive connection: the service time without
/// queuing. The region list's first request (it fills the rollup-fallback cache) and every
/// region detail (each a different region, so none is cached) are the cold costs.
async fn service_times(run: &Running) -> anyhow::Result<Vec<String>> {
    let bearer = (header::AUTHORIZATION, format!("Bearer {}", run.token));
    let cookie = (
        header::COOKIE,
        format!(
            "{}={}",
            meridian_coordinator::web::auth::COOKIE,
            run.browser_secret
        ),
    );
    let mut sender = connect_http(run.http).await?;
    let detail: Vec<String> = run
        .regions
        .iter()
        .take(SEQUENTIAL)
        .map(|r| format!("/api/v1/regions/{}", r.id))
        .collect();
    let cases: Vec<(&str, Vec<String>, Option<&Auth>)> = vec![
        (
            "/api/v1/regions",
            vec!["/api/v1/regions".to_string(); SEQUENTIAL + 1],
            Some(&bearer),
        ),
        ("/api/v1/regions/{id}", detail, Some(&bearer)),
        (
            "/api/v1/incidents",
            vec!["/api/v1/incidents".to_string(); SEQUENTIAL],
            Some(&bearer),
        ),
        (
            "/status/summary.json",
            vec!["/status/summary.json".to_string(); SEQUENTIAL],
            None,
        ),
        (
            "/ (map page HTML)",
            vec!["/".to_string(); SEQUENTIAL],
            Some(&cookie),
        ),
        (
            "/api/v1/me (auth only)",
            vec!["/api/v1/me".to_string(); SEQUENTIAL],
            Some(&bearer),
        ),
    ];
    let mut lines = Vec::new();
    for (name, paths, auth) in cases {
        let mut times = Vec::new();
        let mut bytes = 0;
        for path in &paths {
            let t = Instant::now();
            let (status, size) =
                tokio::time::timeout(REQUEST_TIMEOUT, get(&mut sender, run.http, path, auth))
                    .await
                    .with_context(|| format!("{path}: no answer in {REQUEST_TIMEOUT:?}"))??;
            anyhow::ensure!(status == 200, "{path}: HTTP {status}");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            bytes = size;
        }
        let first = if name == "/api/v1/regions" {
            let first = times.remove(0);
            format!(" (first, cold: {first:.1} ms)")
        } else {
            String::new()
        };
        let s = spread(&times);
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        lines.push(format!(
            "{name:<24} min {min:.1} ms  median {:.1} ms  max {:.1} ms  {:.1} KB{first}",
            s.p50,
            s.max,
            bytes as f64 / 1e3
        ));
    }
    Ok(lines)
}

/// The store reads behind the endpoints, timed on a read-only connection of our own making
/// the same calls as the web code: a session lookup (`web::auth`, every authenticated
/// request), a refresh of the region list's rollup fallbacks (`view::compute_fallbacks`:
/// every region, two windows, every check) and one region's per-phase detail
/// (`LatencyCache::phases`: per phase, the last five minutes over every check and the same
/// hour of each of seven days per check; `rollup_range` stands in for its `rollup_sketches`
/// and merge). Each of these holds one of the web side's reader connections while it runs.
fn read_costs(
    data: &Path,
    regions: &[SynthRegion],
    checks: usize,
    token: &str,
) -> anyhow::Result<Vec<String>> {
    use meridian_coordinator::store::rollup::PHASES;
    const MIN: i64 = 60_000;
    const DAY: i64 = 86_400_000;
    let store = Store::open_reader(data)?;
    let now = now_ms();
    let ids: Vec<String> = (0..checks).map(|c| format!("check-{c}")).collect();
    let hash = secret_hash(token);
    let t = Instant::now();
    for _ in 0..SEQUENTIAL {
        store.session(&hash, now)?.context("the token's session")?;
    }
    let session = t.elapsed().as_secs_f64() * 1e3 / SEQUENTIAL as f64;
    let t = Instant::now();
    let mut queries = 0;
    for r in regions {
        store.rollup_region(&ids, &r.id, "connect", now - 5 * MIN, now + MIN, false)?;
        let day = now - DAY;
        store.rollup_region(
            &ids,
            &r.id,
            "connect",
            day - 30 * MIN,
            day + 30 * MIN,
            false,
        )?;
        queries += 2 * ids.len();
    }
    let fallbacks = t.elapsed().as_secs_f64() * 1e3;
    let mut detail = Vec::new();
    let mut detail_queries = 0;
    for r in regions.iter().take(5) {
        let t = Instant::now();
        detail_queries = 0;
        for phase in PHASES {
            store.rollup_region(&ids, &r.id, phase, now - 5 * MIN, now + MIN, false)?;
            detail_queries += ids.len();
            for day in 1..=7 {
                let mid = now - day * DAY;
                for c in &ids {
                    store.rollup_range(c, &r.id, phase, mid - 30 * MIN, mid + 30 * MIN)?;
                    detail_queries += 1;
                }
            }
        }
        detail.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let d = spread(&detail);
    Ok(vec![
        format!("session lookup           {session:.2} ms (every authenticated request)"),
        format!(
            "rollup fallbacks refresh {fallbacks:.1} ms, {queries} queries (the region list's, every 30 s)"
        ),
        format!(
            "one region's detail      median {:.1} ms  max {:.1} ms, {detail_queries} queries (per region, every 60 s)",
            d.p50, d.max
        ),
    ])
}

/// Runs the load child for `--seconds` and measures the coordinator meanwhile.
async fn api_phase(args: &Args, run: &Running, budget: u64) -> anyhow::Result<ApiPhase> {
    let exe = std::env::current_exe()?;
    let stored0 = run.handle.counters().results_stored.load(Ordering::Relaxed);
    let (cpu0, threads0, t0) = (cpu_seconds(), thread_cpu(), Instant::now());
    let mut child = tokio::process::Command::new(exe)
        .args(["--role", "load"])
        .args(["--addr", &run.http.to_string()])
        .args(["--regions", &args.regions.to_string()])
        .args(["--rate", &args.rate.to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--connections", &args.connections.to_string()])
        .args(args.no_detail.then_some("--no-detail"))
        .args(["--max-seconds", &budget.to_string()])
        .env(TOKEN_ENV, &run.token)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the load generator")?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let limit = Duration::from_secs(args.seconds + REQUEST_TIMEOUT.as_secs() + 60);
    let deadline = Instant::now() + limit;
    let mut report = None;
    // Bounded: the child prints one line; the deadline caps the wait.
    for _ in 0..100 {
        match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Ok(Ok(Some(line))) => {
                if let Some(json) = line.strip_prefix("report ") {
                    report = Some(serde_json::from_str::<LoadReport>(json)?);
                }
            }
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => bail!("the load generator took longer than {limit:?}"),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = 100.0 * (cpu_seconds() - cpu0) / secs.max(1e-9);
    let threads = thread_shares(&threads0, &thread_cpu(), secs);
    let stored = run.handle.counters().results_stored.load(Ordering::Relaxed) - stored0;
    let status = tokio::time::timeout_at(deadline, child.wait())
        .await
        .context("load generator exit")??;
    let report =
        report.with_context(|| format!("the load generator reported nothing ({status})"))?;
    Ok(ApiPhase {
        report,
        stored_rate: stored as f64 / secs.max(1e-9),
        cpu,
        threads,
    })
}

fn print_api(title: &str, p: &ApiPhase, args: &Args) {
    let r = &p.report;
    println!("  {title}");
    println!(
        "    requests       {} scheduled at {}/s over {} s: {} answered 2xx, {} errors; achieved {:.1} req/s; {} connections opened",
        r.scheduled, args.rate, args.seconds, r.ok, r.errors, r.achieved, r.connections
    );
    println!(
        "    latency        {}  (from the scheduled send time)",
        r.all
    );
    for ((name, s), bytes) in ENDPOINTS.iter().zip(&r.by_endpoint).zip(&r.bytes) {
        if s.n == 0 {
            continue;
        }
        println!(
            "      {name:<22} {s}  ({} requests, {:.1} KB each)",
            s.n,
            bytes / 1e3
        );
    }
    println!(
        "    generator lag  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (scheduled time to request handed to a connection, opened if none was idle)",
        r.lag.p50, r.lag.p99, r.lag.max
    );
    println!(
        "    server share   {}  (handed to a connection to the whole body)",
        r.service
    );
    println!(
        "    slow seconds   {} of {} had a request over {TARGET_MS} ms; worst (second: over {TARGET_MS} ms, slowest): {}",
        r.slow_seconds,
        args.seconds,
        r.worst_seconds
            .iter()
            .map(|(s, n, max)| format!("{s}: {n}, {max:.0} ms"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    for e in &r.error_kinds {
        println!("    error          {e}");
    }
    println!(
        "    coordinator    {:.0} % of one core ({}); {:.0} results/s stored meanwhile",
        p.cpu, p.threads, p.stored_rate
    );
}

/// The median, p90 and max of the loads' ready times.
fn map_spread(loads: &[MapLoad]) -> Spread {
    spread(&loads.iter().filter_map(|l| l.ready).collect::<Vec<_>>())
}

fn print_map(title: &str, m: &MapPhase, failed: &mut Vec<String>) {
    match m {
        MapPhase::Skipped => println!("  {title}: SKIP (chromedriver or Chromium not installed)"),
        MapPhase::Failed(e) => {
            println!("  {title}: FAILED: {e}");
            failed.push(format!("{title}: {e}"));
        }
        MapPhase::Done(loads, cpu) => {
            let s = map_spread(loads);
            let render = spread(&loads.iter().filter_map(|l| l.render).collect::<Vec<_>>());
            let html = spread(&loads.iter().filter_map(|l| l.html_ms).collect::<Vec<_>>());
            let api = spread(
                &loads
                    .iter()
                    .filter_map(|l| l.regions_ms)
                    .collect::<Vec<_>>(),
            );
            println!(
                "  {title} ({} loads of /, fresh navigation each, the first with an empty cache)",
                loads.len()
            );
            println!(
                "    data-ready-ms  median {:.0}  p90 {:.0}  max {:.0}  (cold {:.0}); each: {}",
                s.p50,
                s.p90,
                s.max,
                loads.first().and_then(|l| l.ready).unwrap_or(f64::NAN),
                loads
                    .iter()
                    .map(|l| l.ready.map_or("-".to_string(), |r| format!("{r:.0}")))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            println!(
                "    data-render-ms median {:.0}  max {:.0}; HTML responseEnd median {:.0} ms; /api/v1/regions fetch median {:.0} ms, max {:.0} ms",
                render.p50, render.max, html.p50, api.p50, api.max
            );
            if let Some(first) = loads.first() {
                println!(
                    "    resources      {} on the cold load, {:.0} KB transferred in all with the page ({:.0} KB of them the region list): {}",
                    first.resources,
                    first.transferred / 1e3,
                    first.regions_bytes.unwrap_or(0.0) / 1e3,
                    first.names.join(" ")
                );
                println!(
                    "    markers        {} drawn on the cold load",
                    first.markers
                );
            }
            for (i, l) in loads.iter().enumerate() {
                if let Some(e) = &l.error {
                    println!("    load {i}: data-error {e:?}");
                }
            }
            println!("    coordinator    {cpu:.0} % of one core over the loads");
        }
    }
}

/// `--loads` fresh navigations to the map page in a new Chromium (so the first is cold).
async fn map_phase(args: &Args, run: &Running) -> MapPhase {
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let browser = match Browser::start().await {
        Ok(Some(b)) => b,
        Ok(None) => return MapPhase::Skipped,
        Err(e) => return MapPhase::Failed(format!("{e:#}")),
    };
    let result = map_loads(&browser, args, run).await;
    let _ = browser.close().await;
    let cpu = 100.0 * (cpu_seconds() - cpu0) / t0.elapsed().as_secs_f64().max(1e-9);
    match result {
        Ok(loads) => MapPhase::Done(loads, cpu),
        Err(e) => MapPhase::Failed(format!("{e:#}")),
    }
}

/// What the page says once drawn: map.js's marks, navigation and resource timings.
const MAP_METRICS: &str = r"
const svg = document.querySelector('svg#map');
const nav = performance.getEntriesByType('navigation')[0] || {};
const res = performance.getEntriesByType('resource');
const list = res.find((r) => new URL(r.name).pathname === '/api/v1/regions');
const num = (v) => (v === undefined || v === '' ? null : Number(v));
return {
  ready: num(svg.dataset.readyMs),
  render: num(svg.dataset.renderMs),
  error: svg.dataset.error || null,
  markers: svg.querySelectorAll('g.region').length,
  html_ms: nav.responseEnd === undefined ? null : nav.responseEnd,
  regions_ms: list ? list.duration : null,
  regions_bytes: list ? list.transferSize : null,
  resources: res.length,
  transferred: res.reduce((a, r) => a + (r.transferSize || 0), nav.transferSize || 0),
  names: res.map((r) => new URL(r.name).pathname),
};";

async fn map_loads(browser: &Browser, args: &Args, run: &Running) -> anyhow::Result<Vec<MapLoad>> {
    let base = format!("http://{}", run.http);
    // The session cookie, set from a page that loads nothing else, so the map's first load
    // finds the cache empty. (The server reads only the cookie's value; `HttpOnly` and
    // `SameSite` are what it sets on a login, not what it checks.)
    browser.goto(&format!("{base}/healthz")).await?;
    browser
        .eval::<serde_json::Value>(
            "document.cookie = arguments[0] + '=' + arguments[1] + '; path=/'; return null;",
            vec![
                meridian_coordinator::web::auth::COOKIE.into(),
                run.browser_secret.clone().into(),
            ],
        )
        .await?;
    // What /healthz caused (Chromium asks it for /favicon.ico, a 404) is not the map's.
    let _ = browser.console_errors().await?;
    let mut loads = Vec::new();
    for i in 0..args.loads.max(1) {
        browser.goto("about:blank").await?;
        browser.goto(&format!("{base}/")).await?;
        let url = browser.current_url().await?;
        anyhow::ensure!(
            !url.contains("/login"),
            "load {i}: sent to the login page ({url})"
        );
        browser
            .wait_for(
                "const s = document.querySelector('svg#map'); \
                 return !!s && (s.dataset.ready === '1' || !!s.dataset.error);",
                MAP_TIMEOUT,
            )
            .await?;
        let load: MapLoad = browser.eval(MAP_METRICS, Vec::new()).await?;
        if i == 0 {
            anyhow::ensure!(
                load.markers == run.regions.len(),
                "the cold load drew {} markers for {} regions",
                load.markers,
                run.regions.len()
            );
            let errors = browser.console_errors().await?;
            if !errors.is_empty() {
                eprintln!("bench-web: console errors on the map: {errors:?}");
            }
        }
        loads.push(load);
    }
    Ok(loads)
}

/// The probes' child process, its output collected by a task.
struct ProbesChild {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: tokio::task::JoinHandle<Vec<String>>,
    exited: Arc<AtomicBool>,
}

impl ProbesChild {
    /// Starts the child and waits until every probe has connected.
    async fn start(
        args: &Args,
        quic: SocketAddr,
        certs: &Path,
        budget: u64,
    ) -> anyhow::Result<ProbesChild> {
        let exe = std::env::current_exe()?;
        let mut child = tokio::process::Command::new(exe)
            .args(["--role", "probes"])
            .args(["--addr", &quic.to_string()])
            .args(["--certs", &certs.display().to_string()])
            .args(["--regions", &args.regions.to_string()])
            .args(["--per-region", &args.per_region.to_string()])
            .args(["--checks", &args.checks.to_string()])
            .args(["--ingest", &args.ingest.to_string()])
            .args(["--upload-ms", &args.upload_ms.to_string()])
            .args(["--max-seconds", &budget.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the probes")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("child stdout")?;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let exited = Arc::new(AtomicBool::new(false));
        let gone = exited.clone();
        let lines = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            let mut out = Vec::new();
            let mut ready = Some(ready_tx);
            // Bounded: the child prints a handful of lines, then exits.
            for _ in 0..10_000 {
                match lines.next_line().await {
                    Ok(Some(line)) if line == "ready" => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Some(line)) => out.push(line),
                    Ok(None) | Err(_) => break,
                }
            }
            gone.store(true, Ordering::Relaxed);
            out
        });
        match tokio::time::timeout(Duration::from_secs(120), ready_rx).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => bail!("the probes' child exited before connecting every probe"),
            Err(_) => bail!("the probes did not connect within 120 s"),
        }
        Ok(ProbesChild {
            child,
            stdin,
            lines,
            exited,
        })
    }

    fn exited(&self) -> bool {
        self.exited.load(Ordering::Relaxed)
    }

    /// Tells the probes to stop (closes their stdin) and returns what the child printed.
    async fn stop(mut self) -> anyhow::Result<Vec<String>> {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"stop\n").await;
            drop(stdin);
        }
        let lines = tokio::time::timeout(Duration::from_secs(60), self.lines)
            .await
            .context("the probes did not stop within 60 s")??;
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .context("probes' exit")??;
        anyhow::ensure!(status.success(), "the probes' child failed: {status}");
        Ok(lines)
    }
}

// ---- the load child ----------------------------------------------------------------------

/// Keep-alive connections, reused while idle; at most `--connections` busy at once.
struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<Sender>>,
    busy: tokio::sync::Semaphore,
    opened: AtomicUsize,
}

impl Pool {
    /// An idle connection, or a new one.
    async fn take(&self) -> anyhow::Result<Sender> {
        // Bounded: each round drops a closed connection from the finite idle list.
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match idle {
                Some(s) if !s.is_closed() => return Ok(s),
                Some(_) => continue,
                None => break,
            }
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        connect_http(self.addr).await
    }

    fn put(&self, s: Sender) {
        if !s.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(s);
        }
    }
}

/// One request's fate.
struct Outcome {
    endpoint: usize,
    /// Scheduled send, seconds since the phase began.
    second: u64,
    /// Scheduled send to handed to a connection, ms.
    lag: f64,
    /// Scheduled send to the whole body, ms.
    latency: f64,
    /// Body size, bytes.
    bytes: usize,
    /// What went wrong, if anything.
    error: Option<String>,
    /// When the answer came.
    done: Instant,
}

async fn one(
    pool: Arc<Pool>,
    path: String,
    endpoint: usize,
    (start, at): (Instant, Instant),
    auth: Option<Auth>,
) -> Outcome {
    let attempt = async {
        let _permit = pool.busy.acquire().await?;
        let mut sender = pool.take().await?;
        let lag = at.elapsed().as_secs_f64() * 1e3;
        let (status, bytes) = get(&mut sender, pool.addr, &path, auth.as_ref()).await?;
        pool.put(sender);
        anyhow::Ok((lag, status, bytes))
    };
    let (lag, error, bytes) = match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
        Ok(Ok((lag, status, bytes))) if (200..300).contains(&status) => (lag, None, bytes),
        Ok(Ok((lag, status, bytes))) => (lag, Some(format!("HTTP {status} on {path}")), bytes),
        Ok(Err(e)) => (0.0, Some(format!("{path}: {e:#}")), 0),
        Err(_) => (
            0.0,
            Some(format!("{path}: no answer in {REQUEST_TIMEOUT:?}")),
            0,
        ),
    };
    Outcome {
        endpoint,
        second: at.saturating_duration_since(start).as_secs(),
        lag,
        latency: at.elapsed().as_secs_f64() * 1e3,
        bytes,
        error,
        done: Instant::now(),
    }
}

/// The load generator: `--rate` requests a second for `--seconds`, each sent at its scheduled
/// time whatever the earlier ones are doing; prints one `report {json}` line.
async fn load(args: Args) -> anyhow::Result<()> {
    let addr = args.addr.context("--addr")?;
    let token = std::env::var(TOKEN_ENV).with_context(|| format!("${TOKEN_ENV}"))?;
    let regions = synth_regions(args.regions.max(1));
    let pool = Arc::new(Pool {
        addr,
        idle: Mutex::new(Vec::new()),
        busy: tokio::sync::Semaphore::new(args.connections.max(1)),
        opened: AtomicUsize::new(0),
    });
    let rate = args.rate.max(1);
    let n = rate * args.seconds;
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let hard = Instant::now() + Duration::from_secs(args.max_seconds);
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = tokio::task::JoinSet::new();
    let mut outcomes = Vec::with_capacity(n as usize);
    for i in 0..n {
        let at = start + period.mul_f64(i as f64);
        if at > hard {
            break;
        }
        tokio::time::sleep_until(at).await;
        let (endpoint, path) = mix_path(i, &regions, !args.no_detail);
        // The public summary is what anonymous readers fetch: no credentials.
        let auth = (endpoint != 3).then(|| (header::AUTHORIZATION, format!("Bearer {token}")));
        tasks.spawn(one(pool.clone(), path, endpoint, (start, at), auth));
        while let Some(done) = tasks.try_join_next() {
            outcomes.push(done?);
        }
    }
    // Bounded: every request ends within REQUEST_TIMEOUT of its start.
    while let Some(done) = tasks.join_next().await {
        outcomes.push(done?);
    }
    let last = outcomes.iter().map(|o| o.done).max().unwrap_or(start);
    let elapsed = last.saturating_duration_since(start).as_secs_f64();
    let ok: Vec<&Outcome> = outcomes.iter().filter(|o| o.error.is_none()).collect();
    let latencies: Vec<f64> = outcomes.iter().map(|o| o.latency).collect();
    let by_endpoint = (0..ENDPOINTS.len())
        .map(|e| {
            spread(
                &outcomes
                    .iter()
                    .filter(|o| o.endpoint == e)
                    .map(|o| o.latency)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let bytes = (0..ENDPOINTS.len())
        .map(|e| {
            let sizes: Vec<f64> = ok
                .iter()
                .filter(|o| o.endpoint == e)
                .map(|o| o.bytes as f64)
                .collect();
            sizes.iter().sum::<f64>() / sizes.len().max(1) as f64
        })
        .collect();
    let mut kinds: Vec<String> = Vec::new();
    for o in &outcomes {
        if let Some(e) = &o.error
            && kinds.len() < 5
            && !kinds.contains(e)
        {
            kinds.push(e.clone());
        }
    }
    let mut seconds: std::collections::BTreeMap<u64, (usize, f64)> = Default::default();
    for o in &outcomes {
        let e = seconds.entry(o.second).or_default();
        e.0 += usize::from(o.latency > TARGET_MS);
        e.1 = e.1.max(o.latency);
    }
    let slow_seconds = seconds.values().filter(|(n, _)| *n > 0).count();
    let mut worst_seconds: Vec<(u64, usize, f64)> = seconds
        .into_iter()
        .map(|(s, (n, max))| (s, n, max))
        .collect();
    worst_seconds.sort_by(|a, b| b.2.total_cmp(&a.2));
    worst_seconds.truncate(WORST_SECONDS);
    let report = LoadReport {
        scheduled: outcomes.len() as u64,
        ok: ok.len() as u64,
        errors: (outcomes.len() - ok.len()) as u64,
        achieved: ok.len() as f64 / elapsed.max(1e-9),
        all: spread(&latencies),
        by_endpoint,
        bytes,
        lag: spread(&ok.iter().map(|o| o.lag).collect::<Vec<_>>()),
        service: spread(&ok.iter().map(|o| o.latency - o.lag).collect::<Vec<_>>()),
        worst_seconds,
        slow_seconds,
        connections: pool.opened.load(Ordering::Relaxed),
        error_kinds: kinds,
    };
    println!("report {}", serde_json::to_string(&report)?);
    Ok(())
}

// ---- the probes child ------------------------------------------------------------------------

/// The probes: each connects, says `Hello`, then every `--upload-ms` sends the results due at
/// its share of `--ingest`, until its stdin closes (or the hard deadline).
async fn probes(args: Args) -> anyhow::Result<()> {
    let addr = args.addr.context("--addr")?;
    let certs = args.certs.clone().context("--certs")?;
    let count = args.regions.max(1) * args.per_region.max(1);
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    let ca = CertificateDer::from(std::fs::read(certs.join("ca.der"))?);
    let key = std::fs::read(certs.join("key.der"))?;
    let client = Arc::new(Client { ca, key, certs });
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(32));
    let mut connecting = tokio::task::JoinSet::new();
    for i in 0..count {
        let (endpoint, client, gate) = (endpoint.clone(), client.clone(), gate.clone());
        connecting.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let s = tokio::time::timeout(
                Duration::from_secs(60),
                connect(&endpoint, &client, addr, i),
            )
            .await??;
            anyhow::Ok((i, s))
        });
    }
    let mut sessions = Vec::with_capacity(count);
    while let Some(s) = connecting.join_next().await {
        sessions.push(s??);
    }
    println!(
        "  probes           {} connected over QUIC in {:.1} s (32 handshakes at a time)",
        sessions.len(),
        start.elapsed().as_secs_f64()
    );
    println!("ready");

    let stop = Arc::new(AtomicBool::new(false));
    let stopper = stop.clone();
    // A thread, not a task: tokio's stdin is not among the workspace's features.
    std::thread::spawn(move || {
        // Bounded: ends at "stop" or when the parent closes stdin (or dies).
        for line in std::io::stdin().lines() {
            if line.map_or(true, |l| l == "stop") {
                break;
            }
        }
        stopper.store(true, Ordering::Relaxed);
    });
    let hard = Instant::now() + Duration::from_secs(args.max_seconds);
    let per_probe = args.ingest as f64 / count as f64;
    let totals = Arc::new(Totals::default());
    let send_start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, s) in sessions {
        let probe = SimProbe {
            index: i,
            region: i / args.per_region.max(1),
            checks: args.checks.max(1),
            per_second: per_probe,
            every: Duration::from_millis(args.upload_ms.max(10)),
            phase: Duration::from_millis(args.upload_ms.max(10)).mul_f64(i as f64 / count as f64),
        };
        tasks.spawn(probe.run(s, send_start, stop.clone(), hard, totals.clone()));
    }
    let mut latencies = Vec::new();
    let mut last = send_start;
    while let Some(done) = tasks.join_next().await {
        let (mut l, t) = done??;
        latencies.append(&mut l);
        last = last.max(t);
    }
    let secs = last.saturating_duration_since(send_start).as_secs_f64();
    let (sent, acked) = (
        totals.sent.load(Ordering::Relaxed),
        totals.acked.load(Ordering::Relaxed),
    );
    println!(
        "  ingest           {sent} results sent, {acked} acknowledged over {secs:.1} s = {:.0} results/s acknowledged ({} asked, batches every {} ms per probe)",
        acked as f64 / secs.max(1e-9),
        args.ingest,
        args.upload_ms
    );
    println!(
        "  batch -> Ack     {}  ({} batches); probes' CPU {:.1} s (child process)",
        spread(&latencies),
        latencies.len(),
        cpu_seconds() - cpu0
    );
    endpoint.close(0u32.into(), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    Ok(())
}

/// Results sent and acknowledged, over every probe.
#[derive(Default)]
struct Totals {
    sent: AtomicU64,
    acked: AtomicU64,
}

/// One simulated probe's schedule.
struct SimProbe {
    /// Its index (certificate `<index>.der`, probe id `bench-<index>`).
    index: usize,
    /// Its region's index in the catalog, which sets its round trip.
    region: usize,
    /// Checks `check-0..checks`, named round-robin.
    checks: usize,
    /// Results due per second.
    per_second: f64,
    /// Upload period.
    every: Duration,
    /// Offset of its first upload, so the probes' uploads spread over the period.
    phase: Duration,
}

impl SimProbe {
    /// Uploads until told to stop, then waits (at most 10 s) for the last acknowledgements.
    /// Returns each batch's send-to-Ack time (ms) and when the last Ack came.
    async fn run(
        self,
        s: Session,
        start: Instant,
        stop: Arc<AtomicBool>,
        hard: Instant,
        totals: Arc<Totals>,
    ) -> anyhow::Result<(Vec<f64>, Instant)> {
        let Session {
            conn,
            mut tx,
            mut rx,
            mut dec,
        } = s;
        // Beyond this backlog the probe holds back, as a real one's spool would: the
        // achieved rate then shows the coordinator could not keep up.
        let max_unacked = ((self.per_second * 5.0) as u64).max(100);
        let mut tick = tokio::time::interval_at(start + self.phase, self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut pending: VecDeque<(u64, Instant)> = VecDeque::new();
        let mut latencies = Vec::new();
        let (mut next_seq, mut acked, mut last) = (1u64, 0u64, start);
        let mut draining: Option<Instant> = None;
        // Bounded by the stop signal, then the drain deadline, and `hard` throughout.
        loop {
            let sent = next_seq - 1;
            if draining.is_some() && acked >= sent {
                break;
            }
            let drain_until = draining.unwrap_or(hard).min(hard);
            tokio::select! {
                _ = tick.tick(), if draining.is_none() => {
                    if stop.load(Ordering::Relaxed) || Instant::now() >= hard {
                        let _ = tx.finish();
                        draining = Some(Instant::now() + Duration::from_secs(10));
                        continue;
                    }
                    let due = (self.per_second * start.elapsed().as_secs_f64()) as u64;
                    let n = due.saturating_sub(sent);
                    if n == 0 || sent - acked > max_unacked {
                        continue;
                    }
                    let now = now_ms();
                    let results = (next_seq..next_seq + n)
                        .map(|seq| SequencedResult {
                            seq,
                            result: self.result(seq, now),
                            burst: None,
                        })
                        .collect();
                    let frame = wire::encode(&ProbeMessage::ResultBatch(ResultBatch {
                        first_seq: next_seq,
                        results,
                    }))?;
                    pending.push_back((next_seq + n - 1, Instant::now()));
                    tx.write_all(&frame).await?;
                    next_seq += n;
                    totals.sent.fetch_add(n, Ordering::Relaxed);
                }
                msg = next_msg(&mut rx, &mut dec) => match msg {
                    // Once this side finished, the coordinator may close the connection.
                    Err(_) if draining.is_some() => break,
                    Err(e) => return Err(e),
                    Ok(msg) => match msg {
                    Some(CoordinatorMessage::Ack(a)) => {
                        while pending.front().is_some_and(|(up_to, _)| *up_to <= a.up_to_seq) {
                            if let Some((_, sent_at)) = pending.pop_front() {
                                latencies.push(sent_at.elapsed().as_secs_f64() * 1e3);
                            }
                        }
                        let newly = a.up_to_seq.saturating_sub(acked);
                        acked = acked.max(a.up_to_seq);
                        totals.acked.fetch_add(newly, Ordering::Relaxed);
                        last = Instant::now();
                    }
                    Some(CoordinatorMessage::Reject(r)) => {
                        bail!("probe {}: rejected: {r:?}", self.index)
                    }
                    Some(_) => {}
                    None => break,
                    },
                },
                () = tokio::time::sleep_until(drain_until) => break,
            }
        }
        conn.close(0u32.into(), b"done");
        Ok((latencies, last))
    }

    /// The probe's result `seq`, taken half a second before `now_ms`.
    fn result(&self, seq: u64, now_ms: i64) -> CheckResult {
        let check = (self.index as u64 + seq) % self.checks as u64;
        synth_result(self.region, check, seq, now_ms - 500)
    }
}

/// A successful HTTPS check of `check-<check>` from region `region` (its index) started at
/// `at_ms`: the round trip is the region's (10 to 250 ms, set by its place in the catalog)
/// with a few per cent of jitter (`key` varies it), TLS two round trips, the server 40 ms.
fn synth_result(region: usize, check: u64, key: u64, at_ms: i64) -> CheckResult {
    let rtt_us = 10_000 + (region as u64 * 37_003) % 240_000;
    let jitter = |k: u64, spread: u64| {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k.wrapping_mul(0xC2B2_AE3D)) % spread
    };
    CheckResult {
        probe_id: String::new(),
        region: String::new(),
        check_id: CheckId::parse(&format!("check-{check}")).expect("check-N is a valid id"),
        scheduled_ms: at_ms,
        started_ms: at_ms,
        phases: Phases {
            dns: Some(1_000 + jitter(2, 500)),
            connect: Some(rtt_us + jitter(1, rtt_us / 20 + 1)),
            tls: Some(2 * rtt_us + jitter(3, rtt_us / 10 + 1)),
            ttfb: Some(rtt_us + 40_000 + jitter(4, 4_000)),
            transfer: Some(300 + jitter(5, 100)),
            total: 4 * rtt_us + 42_000 + jitter(6, 5_000),
        },
        remote_ip: None,
        http: None,
        dns: None,
        error: None,
        warnings: Vec::new(),
    }
}

/// What every simulated probe needs to connect.
struct Client {
    /// The CA to trust.
    ca: CertificateDer<'static>,
    /// The shared private key (PKCS#8 DER).
    key: Vec<u8>,
    /// Where `<i>.der` certificates are.
    certs: PathBuf,
}

impl Client {
    fn config(&self, i: usize) -> anyhow::Result<quinn::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone())?;
        let cert = CertificateDer::from(std::fs::read(self.certs.join(format!("{i}.der")))?);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![cert], key)?;
        tls.alpn_protocols = vec![wire::ALPN.to_vec()];
        Ok(quinn::ClientConfig::new(Arc::new(
            quinn::crypto::rustls::QuicClientConfig::try_from(tls)?,
        )))
    }
}

/// A connected probe after `Hello`/`HelloAck`.
struct Session {
    conn: quinn::Connection,
    tx: quinn::SendStream,
    rx: quinn::RecvStream,
    dec: FrameDecoder,
}

async fn connect(
    endpoint: &quinn::Endpoint,
    client: &Client,
    addr: SocketAddr,
    i: usize,
) -> anyhow::Result<Session> {
    let conn = endpoint
        .connect_with(client.config(i)?, addr, "localhost")?
        .await?;
    let (mut tx, mut rx) = conn.open_bi().await?;
    let hello = ProbeMessage::Hello(Hello {
        version: wire::PROTOCOL_VERSION,
        probe_version: "bench".into(),
        assignment_version: None,
        spool_next_seq: 1,
    });
    tx.write_all(&wire::encode(&hello)?).await?;
    let mut dec = FrameDecoder::new();
    match next_msg(&mut rx, &mut dec).await? {
        Some(CoordinatorMessage::HelloAck(_)) => {}
        other => bail!("probe {i}: expected HelloAck, got {other:?}"),
    }
    Ok(Session { conn, tx, rx, dec })
}

/// The next coordinator message; `None` when the stream finished. Cancel-safe: bytes are only
/// taken from the stream by a read that completes, and pushed into the decoder at once.
async fn next_msg(
    rx: &mut quinn::RecvStream,
    dec: &mut FrameDecoder,
) -> anyhow::Result<Option<CoordinatorMessage>> {
    let mut buf = [0u8; 4096];
    // Bounded: each round either returns or consumes bytes; the caller's deadline caps it.
    for _ in 0..1_000_000 {
        if let Some(m) = dec.next_message::<CoordinatorMessage>()? {
            return Ok(Some(m));
        }
        match rx.read(&mut buf).await? {
            Some(n) => dec.push(buf.get(..n).unwrap_or_default())?,
            None => return Ok(None),
        }
    }
    bail!("no complete message in a million reads")
}
