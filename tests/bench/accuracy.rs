//! `bench-accuracy`: how closely the probe's per-phase timings agree with `curl -w`.
//!
//! The benchmark starts the scriptable demo origin twice on loopback (plain HTTP, and HTTPS with
//! a throw-away CA whose PEM is written to a temporary file for curl's `--cacert`), then for each
//! scenario alternates one request measured by the probe library in-process
//! ([`Runner::run`], exactly what `probe run` executes) with one request measured by a `curl`
//! process. Both clients open a fresh connection per request, so both pay every phase.
//!
//! curl's `-w` times are cumulative from the start of the transfer; they are turned into
//! phases each on its own, the probe's convention:
//!
//! | phase    | curl                                        | probe                            |
//! |----------|---------------------------------------------|----------------------------------|
//! | dns      | `time_namelookup`                           | resolution (0 for an IP literal) |
//! | connect  | `time_connect - time_namelookup`            | TCP connect                      |
//! | tls      | `time_appconnect - time_connect` (0 plain)  | TLS handshake                    |
//! | ttfb     | `time_starttransfer - time_pretransfer`     | request sent → response headers  |
//! | transfer | `time_total - time_starttransfer`           | headers → end of body            |
//! | total    | `time_total`                                | whole check                      |
//!
//! Each iteration runs curl twice. `curl` is the reference the targets use: one process, one
//! transfer. Its TLS phase also contains OpenSSL's once-per-process set-up (about 2.5 ms here),
//! which a long-running client never pays per check; so `curl warm` measures a second transfer
//! in the same process, after a discarded warm-up on a connection closed by `Connection:
//! close`, with TLS session reuse off (`--no-sessionid`), i.e. a fresh connection and a full
//! handshake by an already initialised client, which is what the probe does.
//!
//! The `(gaps)` row is `total` minus the sum of the phases: time a client spends between
//! phases (building the request, HTTP/2 preface, bookkeeping) that no phase accounts for.
//!
//! Scenarios: plain and HTTPS (HTTP/1.1 and HTTP/2, forced on both sides by ALPN and by curl's
//! `--http1.1`/`--http2`), each with no server delay and with `delay_ms=50`, plus 1 MB bodies.
//! For each, the table prints the median per phase for both clients, their difference, and
//! PASS/MISS against the target (medians within 1 ms of curl). "Injected delay recovered" is
//! median ttfb with the 50 ms delay minus median ttfb without it, against 50 ms (target within
//! 2 ms). The first `--warmup` requests of each client and scenario are discarded.
//!
//! Only 127.0.0.1 is contacted, no name is resolved, every loop is bounded in count and by
//! `--max-seconds`. Exit status: 0 once the report is printed (a MISS is a finding, not a
//! failure), 2 when curl is missing or the benchmark cannot run.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use meridian_probe::demo::origin::{Origin, TestPki, TlsVersions};
use meridian_probe::http::{HttpEnv, tls};
use meridian_probe::runner::{Runner, unix_ms};
use meridian_probe::safety::TargetPolicy;
use meridian_shared::check::{Check, CheckId, CheckSpec, HttpCheck, ResolverSpec};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Per-phase medians must be within this many ms of curl's.
const PHASE_TARGET_MS: f64 = 1.0;
/// The recovered server delay must be within this many ms of the injected one.
const DELAY_TARGET_MS: f64 = 2.0;
/// The server delay injected by the `delay_ms` scenarios.
const INJECTED_MS: u64 = 50;
/// curl's `-w` format: the six cumulative times, then status and protocol to check what ran.
const CURL_FORMAT: &str = "%{time_namelookup} %{time_connect} %{time_appconnect} %{time_pretransfer} %{time_starttransfer} %{time_total} %{http_code} %{http_version}";
/// Longest a single request may take (both clients), so no loop can hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(
    name = "bench-accuracy",
    about = "Per-phase timings of the probe versus curl -w against a local origin"
)]
struct Args {
    /// Requests per client and scenario (the probe and curl each make this many).
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Requests per client and scenario made first and discarded (cold caches, first spawn).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Upper bound on the whole run; scenarios stop early (and say so) when it is reached.
    #[arg(long, default_value_t = 1200)]
    max_seconds: u64,
}

/// How a scenario talks to the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    /// `http://`, HTTP/1.1.
    Plain,
    /// `https://`, HTTP/1.1 by ALPN.
    H1,
    /// `https://`, HTTP/2 by ALPN.
    H2,
}

impl Proto {
    /// What the probe reports in `http_version`, and what curl prints for `%{http_version}`.
    fn versions(self) -> (&'static str, &'static str) {
        match self {
            Proto::Plain | Proto::H1 => ("HTTP/1.1", "1.1"),
            Proto::H2 => ("HTTP/2", "2"),
        }
    }
}

/// One row group of the report.
struct Scenario {
    /// Short name used in the table.
    name: &'static str,
    /// Transport and protocol.
    proto: Proto,
    /// Path and query sent to the origin.
    path: &'static str,
}

const SCENARIOS: [Scenario; 8] = [
    Scenario {
        name: "a plain",
        proto: Proto::Plain,
        path: "/?delay_ms=0",
    },
    Scenario {
        name: "b plain +50ms",
        proto: Proto::Plain,
        path: "/?delay_ms=50",
    },
    Scenario {
        name: "c https h1",
        proto: Proto::H1,
        path: "/?delay_ms=0",
    },
    Scenario {
        name: "d https h1 +50ms",
        proto: Proto::H1,
        path: "/?delay_ms=50",
    },
    Scenario {
        name: "c2 https h2",
        proto: Proto::H2,
        path: "/?delay_ms=0",
    },
    Scenario {
        name: "d2 https h2 +50ms",
        proto: Proto::H2,
        path: "/?delay_ms=50",
    },
    Scenario {
        name: "e plain 1MB",
        proto: Proto::Plain,
        path: "/?size=1000000",
    },
    Scenario {
        name: "e2 https h2 1MB",
        proto: Proto::H2,
        path: "/?size=1000000",
    },
];

/// Phase names in table order; `total` is informational, `(gaps)` is derived.
const PHASES: [&str; 6] = ["dns", "connect", "tls", "ttfb", "transfer", "total"];

/// One measured request, per phase in milliseconds (same order as [`PHASES`]).
type Sample = [f64; 6];

/// What one client measured in one scenario.
#[derive(Default)]
struct Series {
    /// Successful samples after warm-up.
    samples: Vec<Sample>,
    /// Requests that failed, or ran a protocol other than the one asked for.
    failures: usize,
    /// The first failure, to show in the report.
    first_failure: Option<String>,
}

impl Series {
    fn record(&mut self, outcome: anyhow::Result<Sample>, keep: bool) {
        match outcome {
            Ok(s) if keep => self.samples.push(s),
            Ok(_) => {}
            Err(e) => {
                self.failures += 1;
                if self.first_failure.is_none() {
                    self.first_failure = Some(format!("{e:#}"));
                }
            }
        }
    }

    fn median(&self, phase: usize) -> Option<f64> {
        median(self.samples.iter().map(|s| s[phase]).collect())
    }

    /// Median of total minus the sum of the five phases.
    fn median_gap(&self) -> Option<f64> {
        median(
            self.samples
                .iter()
                .map(|s| s[5] - s[..5].iter().sum::<f64>())
                .collect(),
        )
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The two origins, the probe runners and curl's CA file.
struct Bench {
    plain: SocketAddr,
    https: SocketAddr,
    /// Runner offering `h2` and `http/1.1` (the probe's own configuration).
    runner_h2: Runner,
    /// Runner offering only `http/1.1`, to compare against `curl --http1.1`.
    runner_h1: Runner,
    cacert: PathBuf,
}

impl Bench {
    fn url(&self, s: &Scenario) -> String {
        match s.proto {
            Proto::Plain => format!("http://{}{}", self.plain, s.path),
            Proto::H1 | Proto::H2 => format!("https://{}{}", self.https, s.path),
        }
    }

    async fn probe_once(&self, s: &Scenario, check: &Check) -> anyhow::Result<Sample> {
        let runner = match s.proto {
            Proto::H1 => &self.runner_h1,
            Proto::Plain | Proto::H2 => &self.runner_h2,
        };
        let r = tokio::time::timeout(REQUEST_TIMEOUT, runner.run(check, unix_ms()))
            .await
            .context("the probe's check did not finish in time")?;
        if let Some(e) = &r.error {
            bail!("probe: {}: {}", e.class, e.message);
        }
        let version = r.http.as_ref().and_then(|h| h.http_version.as_deref());
        if version != Some(s.proto.versions().0) {
            bail!("probe spoke {version:?}, expected {}", s.proto.versions().0);
        }
        let p = r.phases;
        let ms = |us: Option<u64>, name: &str| {
            us.map(|u| u as f64 / 1000.0)
                .with_context(|| format!("probe reported no {name} phase"))
        };
        Ok([
            ms(p.dns, "dns")?,
            ms(p.connect, "connect")?,
            ms(p.tls, "tls")?,
            ms(p.ttfb, "ttfb")?,
            ms(p.transfer, "transfer")?,
            p.total as f64 / 1000.0,
        ])
    }

    /// One curl process, one transfer: the prescribed reference. Its TLS phase includes
    /// OpenSSL's once-per-process set-up, which a long-running client pays only once.
    async fn curl_once(&self, s: &Scenario) -> anyhow::Result<Sample> {
        let mut cmd = curl_command();
        self.curl_measured_args(&mut cmd, s);
        curl_output(cmd, s.proto).await
    }

    /// One curl process, two transfers: a discarded warm-up (HTTP/1.1, `Connection: close`, so
    /// its connection cannot be reused) and then the measured one on a fresh connection, with
    /// TLS session reuse off in both so the measured handshake is a full one.
    async fn curl_warm_once(&self, s: &Scenario) -> anyhow::Result<Sample> {
        let mut cmd = curl_command();
        let warm_url = match s.proto {
            Proto::Plain => format!("http://{}/?delay_ms=0", self.plain),
            Proto::H1 | Proto::H2 => format!("https://{}/?delay_ms=0", self.https),
        };
        cmd.args(["-w", "", "--http1.1", "--no-sessionid"])
            .args(["-H", "Connection: close", "--cacert"])
            .arg(&self.cacert)
            .arg(warm_url)
            .args(["--next", "-s", "-S", "-o", "/dev/null", "--noproxy", "*"])
            .args(["--max-time", "10", "--no-sessionid"]);
        self.curl_measured_args(&mut cmd, s);
        curl_output(cmd, s.proto).await
    }

    /// The options and URL of a measured curl transfer.
    fn curl_measured_args(&self, cmd: &mut tokio::process::Command, s: &Scenario) {
        cmd.args(["-w", CURL_FORMAT]);
        match s.proto {
            Proto::Plain => {}
            Proto::H1 => {
                cmd.arg("--http1.1").arg("--cacert").arg(&self.cacert);
            }
            Proto::H2 => {
                cmd.arg("--http2").arg("--cacert").arg(&self.cacert);
            }
        }
        cmd.arg(self.url(s));
    }
}

/// curl with the options every invocation shares: `-q` first (ignore any ~/.curlrc), body
/// discarded, no proxy from the environment, bounded in time.
fn curl_command() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-q", "-s", "-S", "-o", "/dev/null", "--noproxy", "*"])
        .args(["--max-time", "10"]);
    cmd
}

/// Runs a prepared curl and parses the measured transfer's `-w` line.
async fn curl_output(mut cmd: tokio::process::Command, proto: Proto) -> anyhow::Result<Sample> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(REQUEST_TIMEOUT, cmd.output())
        .await
        .context("curl did not finish in time")?
        .context("running curl")?;
    if !out.status.success() {
        bail!(
            "curl exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_curl(&String::from_utf8_lossy(&out.stdout), proto)
}

/// Turns curl's cumulative `-w` times (seconds) into phases each on its own (ms).
fn parse_curl(text: &str, proto: Proto) -> anyhow::Result<Sample> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 8 {
        bail!("unexpected curl -w output {text:?}");
    }
    let mut t = [0f64; 6];
    for (slot, field) in t.iter_mut().zip(&fields) {
        *slot = field
            .parse::<f64>()
            .with_context(|| format!("curl -w field {field:?} in {text:?}"))?
            * 1000.0;
    }
    let [
        namelookup,
        connect,
        appconnect,
        pretransfer,
        starttransfer,
        total,
    ] = t;
    if fields[6] != "200" {
        bail!("curl got status {}", fields[6]);
    }
    if fields[7] != proto.versions().1 {
        bail!(
            "curl spoke HTTP/{}, expected HTTP/{}",
            fields[7],
            proto.versions().1
        );
    }
    let tls = if appconnect > 0.0 {
        appconnect - connect
    } else {
        0.0
    };
    Ok([
        namelookup,
        connect - namelookup,
        tls,
        starttransfer - pretransfer,
        total - starttransfer,
        total,
    ])
}

/// The 1, 5 and 15 minute load averages, to judge how busy the shared machine was.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// `PASS` or `MISS`.
fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.3}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-accuracy: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The first line of `curl --version`, or an error saying how to install curl.
async fn curl_version() -> anyhow::Result<String> {
    let out = tokio::process::Command::new("curl")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()),
        Ok(o) => bail!("`curl --version` exited with {}", o.status),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "curl is not installed, and this benchmark compares against it: install it \
             (Debian/Ubuntu: apt-get install -y --no-install-recommends curl ca-certificates)"
        ),
        Err(e) => Err(e).context("running `curl --version`"),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let curl = curl_version().await?;
    let load_start = loadavg();
    let budget_end = Instant::now() + Duration::from_secs(args.max_seconds);

    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let pki = TestPki::generate(&["localhost", "127.0.0.1"], 90).context("making the test CA")?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let cacert = dir.path().join("ca.pem");
    std::fs::write(&cacert, &pki.ca_pem)
        .with_context(|| format!("writing {}", cacert.display()))?;
    let plain = Origin::start(
        TcpListener::bind((loopback, 0))
            .await
            .context("binding the plain origin")?,
        None,
        "bench-plain",
    )
    .context("starting the plain origin")?;
    let https = Origin::start(
        TcpListener::bind((loopback, 0))
            .await
            .context("binding the HTTPS origin")?,
        Some(
            pki.server_config(TlsVersions::Both)
                .context("origin TLS configuration")?,
        ),
        "bench-https",
    )
    .context("starting the HTTPS origin")?;

    let tls_h2 =
        tls::client_config(std::slice::from_ref(&pki.ca_der)).context("probe TLS configuration")?;
    let mut only_h1 = (*tls_h2).clone();
    only_h1.alpn_protocols = vec![b"http/1.1".to_vec()];
    let env = |tls| HttpEnv {
        policy: TargetPolicy::allow_all(),
        tls,
        // Never consulted: every URL here is an IP literal.
        resolver: ResolverSpec::Udp(SocketAddr::new(loopback, 53)),
        user_agent: meridian_probe::agent::USER_AGENT.to_string(),
    };
    let runner = |tls| Runner {
        probe_id: "bench-accuracy".to_string(),
        region: "bench".to_string(),
        http: env(tls),
    };
    let bench = Bench {
        plain: plain.addr,
        https: https.addr,
        runner_h2: runner(tls_h2),
        runner_h1: runner(Arc::new(only_h1)),
        cacert,
    };

    println!("bench-accuracy: probe (in-process Runner::run) vs {curl}");
    println!(
        "origins: http://{} and https://{} (TLS 1.3, ECDSA P-256 test CA); {} requests per client \
         and scenario after {} discarded warm-up requests, alternating probe/curl; all times ms\n",
        plain.addr, https.addr, args.requests, args.warmup
    );

    let mut results: Vec<[Series; 3]> = Vec::new();
    let mut truncated = false;
    for s in &SCENARIOS {
        let url: url::Url = bench.url(s).parse().context("building a check URL")?;
        let check = Check {
            id: CheckId::parse("accuracy").map_err(anyhow::Error::msg)?,
            interval: Duration::from_secs(60),
            spec: CheckSpec::Http(HttpCheck::get(url)),
        };
        let [mut probe, mut curl, mut warm] = <[Series; 3]>::default();
        let started = Instant::now();
        for i in 0..args.warmup + args.requests {
            if Instant::now() >= budget_end {
                truncated = true;
                break;
            }
            let keep = i >= args.warmup;
            probe.record(bench.probe_once(s, &check).await, keep);
            curl.record(bench.curl_once(s).await, keep);
            warm.record(bench.curl_warm_once(s).await, keep);
        }
        eprintln!(
            "  {:<18} {} + {} + {} samples in {:.1} s",
            s.name,
            probe.samples.len(),
            curl.samples.len(),
            warm.samples.len(),
            started.elapsed().as_secs_f64()
        );
        results.push([probe, curl, warm]);
    }

    print!("{}", report(&results, &args, truncated));
    println!("load average at start: {load_start}, at end: {}", loadavg());
    drop(dir);
    Ok(())
}

/// Client names, in the order of each scenario's `[Series; 3]`.
const CLIENTS: [&str; 3] = ["probe", "curl", "curl warm"];

/// Pass/total counters, one pair per reference (cold curl, warm curl).
#[derive(Default)]
struct Tally {
    pass: [usize; 2],
    total: [usize; 2],
}

impl Tally {
    fn add(&mut self, reference: usize, ok: bool) -> &'static str {
        self.total[reference] += 1;
        self.pass[reference] += usize::from(ok);
        verdict(ok)
    }
}

fn report(results: &[[Series; 3]], args: &Args, truncated: bool) -> String {
    let mut out = String::new();
    let mut tally = Tally::default();
    let _ = writeln!(
        out,
        "curl: one curl process per request (the reference; its tls includes OpenSSL's per-process \
         set-up).\ncurl warm: the measured transfer follows a discarded warm-up in the same curl \
         process (fresh connection, no TLS session reuse).\nMedians in ms; diff = probe - reference; \
         target |diff| <= {PHASE_TARGET_MS} ms.\n"
    );
    let _ = writeln!(
        out,
        "{:<18} {:<9} {:>8} {:>8} {:>8} {:<4} | {:>9} {:>8}",
        "scenario", "phase", "probe", "curl", "diff", "", "curl warm", "diff"
    );
    let _ = writeln!(out, "{}", "-".repeat(92));
    for (s, series) in SCENARIOS.iter().zip(results) {
        let [probe, curl, warm] = series;
        for (i, phase) in PHASES.iter().enumerate() {
            let p = probe.median(i);
            let (c, w) = (curl.median(i), warm.median(i));
            let (dc, dw) = (p.zip(c).map(|(p, c)| p - c), p.zip(w).map(|(p, w)| p - w));
            let within = |d: Option<f64>| d.is_some_and(|d| d.abs() <= PHASE_TARGET_MS);
            let (vc, vw) = if *phase == "total" {
                ("info", "info")
            } else {
                (tally.add(0, within(dc)), tally.add(1, within(dw)))
            };
            let _ = writeln!(
                out,
                "{:<18} {:<9} {:>8} {:>8} {:>8} {:<4} | {:>9} {:>8} {}",
                s.name,
                phase,
                fmt_ms(p),
                fmt_ms(c),
                fmt_ms(dc),
                vc,
                fmt_ms(w),
                fmt_ms(dw),
                vw
            );
        }
        let (pg, cg, wg) = (probe.median_gap(), curl.median_gap(), warm.median_gap());
        let _ = writeln!(
            out,
            "{:<18} {:<9} {:>8} {:>8} {:>8} {:<4} | {:>9} {:>8} info",
            s.name,
            "(gaps)",
            fmt_ms(pg),
            fmt_ms(cg),
            fmt_ms(pg.zip(cg).map(|(p, c)| p - c)),
            "info",
            fmt_ms(wg),
            fmt_ms(pg.zip(wg).map(|(p, w)| p - w)),
        );
        let _ = writeln!(
            out,
            "{:<18} n = {} / {} / {}; failures {} / {} / {}",
            "",
            probe.samples.len(),
            curl.samples.len(),
            warm.samples.len(),
            probe.failures,
            curl.failures,
            warm.failures
        );
        for (who, series) in CLIENTS.iter().zip(series) {
            if let Some(f) = &series.first_failure {
                let _ = writeln!(out, "{:<18} first {who} failure: {f}", "");
            }
        }
    }

    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "injected delay recovered: median ttfb(+{INJECTED_MS} ms) - median ttfb(no delay); \
         target {INJECTED_MS} ± {DELAY_TARGET_MS} ms"
    );
    let _ = writeln!(
        out,
        "{:<17} {:<9} {:>9} {:>9}  verdict",
        "pair", "client", "recovered", "error"
    );
    let ttfb = 3;
    for (label, a, b) in [
        ("plain (b-a)", 0, 1),
        ("https h1 (d-c)", 2, 3),
        ("https h2 (d2-c2)", 4, 5),
    ] {
        let (Some(without), Some(with)) = (results.get(a), results.get(b)) else {
            continue;
        };
        for (k, who) in CLIENTS.iter().enumerate() {
            let rec = with[k]
                .median(ttfb)
                .zip(without[k].median(ttfb))
                .map(|(b, a)| b - a);
            let err = rec.map(|r| r - INJECTED_MS as f64);
            let ok = err.is_some_and(|e| e.abs() <= DELAY_TARGET_MS);
            // The probe's lines are the target; curl's show what the origin itself delivers.
            let v = if k == 0 {
                tally.add(0, ok)
            } else {
                verdict(ok)
            };
            let _ = writeln!(
                out,
                "{:<17} {:<9} {:>9} {:>9}  {}",
                label,
                who,
                fmt_ms(rec),
                fmt_ms(err),
                v
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "targets: per-phase median within ±{PHASE_TARGET_MS} ms of curl's; injected \
         {INJECTED_MS} ms recovered within ±{DELAY_TARGET_MS} ms"
    );
    let _ = writeln!(
        out,
        "vs curl: {} of {} lines PASS (incl. the probe's delay lines); vs curl warm: {} of {} \
         phase lines PASS; {} requests per client and scenario{}",
        tally.pass[0],
        tally.total[0],
        tally.pass[1],
        tally.total[1],
        args.requests,
        if truncated {
            "; STOPPED EARLY at --max-seconds, fewer samples than asked"
        } else {
            ""
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_times_become_phases_each_on_its_own() {
        let s = parse_curl(
            "0.000020 0.000100 0.001100 0.001150 0.051150 0.051200 200 1.1",
            Proto::H1,
        )
        .unwrap();
        let want = [0.020, 0.080, 1.0, 50.0, 0.050, 51.2];
        for (got, want) in s.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{s:?}");
        }
        let plain = parse_curl(
            "0.000020 0.000100 0.000000 0.000110 0.000300 0.000310 200 1.1",
            Proto::Plain,
        )
        .unwrap();
        assert_eq!(plain[2], 0.0, "no TLS on plain HTTP");
        assert!(
            parse_curl("0 0 0 0 0 0 200 2", Proto::H1).is_err(),
            "wrong protocol"
        );
        assert!(parse_curl("0 0 0 0 0 0 503 1.1", Proto::Plain).is_err());
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
