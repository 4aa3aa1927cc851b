//! `bench-footprint`: memory and CPU of the probe agent versus Prometheus' blackbox_exporter,
//! side by side, doing the same HTTP checks at the same rate.
//!
//! The benchmark starts the demo origin (plain HTTP) in-process on 127.0.0.1, then two child
//! processes:
//!
//! - our `probe run` (the release binary next to this executable) with a generated
//!   configuration of `--checks` `[[http]]` checks (default 100) at `--interval-secs` (default
//!   6 s), i.e. 1,000 checks a minute, URLs `http://127.0.0.1:PORT/?c=N`, results appended to a
//!   temporary JSON-lines file;
//! - Debian's `prometheus-blackbox-exporter` with an `http_2xx` module (IPv4), listening on a
//!   free loopback port, which this process drives at the same rate with evenly spaced
//!   `/probe?module=http_2xx&target=...` requests over kept-alive HTTP/1.1 connections (as
//!   Prometheus scrapes it).
//!
//! The probe spreads its checks over the whole interval, so a loaded probe is never idle: the
//! idle figure comes from a third process, a probe with the very same checks at a 24 h interval
//! (none of them due in its first seconds; the report says so if one was), started beside the
//! other two and stopped after its sample, ~3.3 s after start. The load window then starts at
//! the loaded probe's next interval boundary and lasts `--seconds`
//! (default 60). For each process it reads `/proc/PID/status` (VmRSS every second, at a phase
//! that also lands inside the probe's bursts; VmHWM at the end; Threads) and `/proc/PID/stat`
//! (utime + stime, in `getconf CLK_TCK` ticks) at the window's start and end. CPU per check is
//! the CPU time spent in the window over the checks completed in it: successful result lines
//! for the probe, successful `/probe` responses (`probe_success 1`) for blackbox_exporter.
//!
//! Targets: the probe's RSS at most half of blackbox_exporter's, idle and under load; its CPU
//! per check at most half. Children are killed when the benchmark ends, also on error or
//! Ctrl-C. Only 127.0.0.1 is contacted, no name is resolved, and every loop is bounded in count
//! and time. Exit status: 0 once the report is printed, 2 when a binary is missing or the
//! benchmark cannot run.

use std::fmt::Write as _;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use meridian_probe::demo::origin::Origin;
use meridian_probe::runner::unix_ms;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::time::{Instant, sleep, sleep_until, timeout};

/// The exporter binary as Debian names it.
const BLACKBOX: &str = "prometheus-blackbox-exporter";
/// Memory and CPU per check must be at most this fraction of blackbox_exporter's.
const TARGET_RATIO: f64 = 0.5;
/// Longest one `/probe` request may take before it counts as failed.
const PROBE_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest either process may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Interval of the idle probe's checks: long enough that none is due in its first seconds.
const IDLE_INTERVAL_SECS: u64 = 86_400;

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(
    name = "bench-footprint",
    about = "Memory and CPU of `probe run` versus blackbox_exporter at the same check rate"
)]
struct Args {
    /// Length of the load window, seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Number of HTTP checks (distinct URLs) each side runs.
    #[arg(long, default_value_t = 100)]
    checks: u64,
    /// Interval of each check, seconds (at least 5: the idle sample fits before the first run).
    #[arg(long, default_value_t = 6)]
    interval_secs: u64,
    /// Keep the temporary directory (configs, the probe's results file, both logs) and print
    /// its path, to inspect the probe's results afterwards.
    #[arg(long)]
    keep: bool,
}

/// A child process that is killed and reaped when dropped, whatever happened.
struct Guard {
    /// Which side it is, for messages.
    name: &'static str,
    /// The running process.
    child: Child,
    /// Its stdout and stderr, for the tail shown when it fails.
    log: PathBuf,
}

impl Guard {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails, with the end of its log, if the process has exited.
    fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait().context("polling a child")? {
            bail!(
                "{} exited early ({status}); end of its log {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            );
        }
        Ok(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Spawns `cmd` with stdout and stderr to `log` (a file, never an unread pipe).
fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> anyhow::Result<Guard> {
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().context("duplicating a log file handle")?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(Guard { name, child, log })
}

/// One reading of a process's memory and CPU.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    /// VmRSS, KiB.
    rss_kib: u64,
    /// RssAnon (heap, stacks: memory the process owns), KiB.
    anon_kib: u64,
    /// RssFile (mapped binary and libraries, page cache shared with other processes), KiB.
    file_kib: u64,
    /// VmHWM (peak RSS so far), KiB.
    hwm_kib: u64,
    /// Threads.
    threads: u64,
    /// utime + stime, clock ticks.
    cpu_ticks: u64,
}

fn read_proc(pid: u32) -> anyhow::Result<Reading> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .with_context(|| format!("/proc/{pid}/status has no {name}"))?;
        line.split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("/proc/{pid}/status: {name}{line}"))
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start with field 3, `state`;
    // utime and stime are fields 14 and 15.
    let rest: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| -> anyhow::Result<u64> {
        rest.get(i)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("/proc/{pid}/stat field {} in {stat:?}", i + 3))
    };
    Ok(Reading {
        rss_kib: field("VmRSS:")?,
        anon_kib: field("RssAnon:")?,
        file_kib: field("RssFile:")?,
        hwm_kib: field("VmHWM:")?,
        threads: field("Threads:")?,
        cpu_ticks: tick(11)? + tick(12)?,
    })
}

/// The 1, 5 and 15 minute load averages, to judge how busy the shared machine was.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Clock ticks per second for `/proc/PID/stat`, from `getconf CLK_TCK` (100 if unavailable).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// The first `name` found on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The probe binary built alongside this benchmark.
fn probe_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let dir = exe
        .parent()
        .context("this executable has no parent directory")?;
    let probe = dir.join("probe");
    if !probe.is_file() {
        bail!(
            "{} does not exist: build it first with `cargo build --release -p meridian-probe` \
             (and run this benchmark from the same profile)",
            probe.display()
        );
    }
    Ok(probe)
}

/// A tiny keep-alive HTTP/1.1 client for blackbox_exporter's `/probe` endpoint.
struct Scraper {
    addr: SocketAddr,
    idle: Mutex<Vec<SendRequest<Empty<Bytes>>>>,
}

impl Scraper {
    async fn connection(&self) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
        // Bounded: each pass pops one pooled connection.
        loop {
            let Some(mut sender) = self.idle.lock().await.pop() else {
                break;
            };
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to blackbox_exporter at {}", self.addr))?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .context("HTTP handshake with blackbox_exporter")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// GETs `path_and_query`; returns the status and the body.
    async fn get(&self, path_and_query: &str) -> anyhow::Result<(u16, Bytes)> {
        let mut sender = self.connection().await?;
        let req = http::Request::get(path_and_query)
            .header(http::header::HOST, self.addr.to_string())
            .body(Empty::<Bytes>::new())
            .context("building a /probe request")?;
        let resp = sender
            .send_request(req)
            .await
            .context("sending a request to blackbox_exporter")?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading blackbox_exporter's response")?
            .to_bytes();
        if !sender.is_closed() {
            self.idle.lock().await.push(sender);
        }
        Ok((status, body))
    }
}

/// Maps wall-clock milliseconds onto tokio instants (the probe schedules on the wall clock).
#[derive(Clone, Copy)]
struct Clock {
    anchor: Instant,
    anchor_ms: i64,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            anchor: Instant::now(),
            anchor_ms: unix_ms(),
        }
    }

    fn at(self, wall_ms: i64) -> Instant {
        self.anchor + Duration::from_millis(u64::try_from(wall_ms - self.anchor_ms).unwrap_or(0))
    }
}

/// What one run of the load produced for one side.
#[derive(Debug, Default)]
struct Side {
    idle: Reading,
    start: Reading,
    end: Reading,
    rss_samples: Vec<u64>,
    threads_max: u64,
    /// From spawn to ready (the probe's "probe started" log line; blackbox_exporter
    /// accepting connections), ms, as seen by 10 ms polling.
    ready_ms: f64,
    completed: u64,
    failed: u64,
    binary_bytes: u64,
}

impl Side {
    fn sample(&mut self, r: Reading) {
        self.rss_samples.push(r.rss_kib);
        self.threads_max = self.threads_max.max(r.threads);
    }

    fn rss_median(&self) -> f64 {
        let mut v = self.rss_samples.clone();
        v.sort_unstable();
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2] as f64,
            n => (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0,
        }
    }

    fn rss_max(&self) -> u64 {
        self.rss_samples.iter().copied().max().unwrap_or(0)
    }

    /// CPU milliseconds per completed check in the window.
    fn cpu_ms_per_check(&self, ticks_per_s: u64) -> Option<f64> {
        let ticks = self.end.cpu_ticks.saturating_sub(self.start.cpu_ticks);
        (self.completed > 0)
            .then(|| ticks as f64 * 1000.0 / ticks_per_s as f64 / self.completed as f64)
    }
}

/// Counts result lines in the probe's results file: (passed, failed).
fn count_results(path: &Path) -> anyhow::Result<(u64, u64)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let (mut ok, mut failed) = (0, 0);
    for line in text.lines() {
        // A line being written at this very moment is incomplete: not counted yet.
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) if v.get("error").is_some_and(serde_json::Value::is_null) => ok += 1,
            Ok(_) => failed += 1,
            Err(_) => {}
        }
    }
    Ok((ok, failed))
}

fn probe_config(args: &Args, origin: SocketAddr, results: &Path, interval_secs: u64) -> String {
    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# Generated by bench-footprint.\nprobe_id = \"bench-footprint\"\nregion = \"us-east\"\n\
         slot = 0\nslots = 1\nconcurrency = 64\n\
         # Never consulted: every URL is an IP literal. Set so that nothing reads resolv.conf.\n\
         resolver = \"udp://127.0.0.1:53\"\nallow_private = true\nresults = {:?}\n",
        results.display().to_string()
    );
    for n in 0..args.checks {
        let _ = writeln!(
            toml,
            "[[http]]\nid = \"c{n}\"\nurl = \"http://{origin}/?c={n}\"\ninterval = \"{interval_secs}s\"\n",
        );
    }
    toml
}

const BLACKBOX_YML: &str = "\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      method: GET
";

/// A loopback port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("finding a free loopback port")?;
    Ok(l.local_addr().context("reading a bound address")?.port())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = tokio::select! {
        r = run(args) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; children stopped")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-footprint: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.interval_secs < 5 || args.checks == 0 || args.seconds == 0 {
        bail!("--interval-secs must be at least 5, --checks and --seconds at least 1");
    }
    let Some(blackbox_bin) = on_path(BLACKBOX) else {
        bail!(
            "{BLACKBOX} is not installed, and this benchmark compares against it. Install it \
             with:\n  apt-get update && apt-get install -y --no-install-recommends {BLACKBOX}"
        );
    };
    let probe_bin = probe_binary()?;
    let ticks_per_s = clock_ticks();
    let load_start = loadavg();
    let interval_ms = i64::try_from(args.interval_secs * 1000).context("interval")?;
    let spacing = Duration::from_millis(args.interval_secs * 1000 / args.checks);
    if spacing.is_zero() {
        bail!("more checks than milliseconds in an interval");
    }
    let requests = args.seconds * 1000 / (args.interval_secs * 1000 / args.checks);

    let origin = Origin::start(
        TcpListener::bind((IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .await
            .context("binding the origin")?,
        None,
        "bench-origin",
    )
    .context("starting the origin")?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let results = dir.path().join("results.jsonl");
    let probe_toml = dir.path().join("probe.toml");
    let idle_results = dir.path().join("idle-results.jsonl");
    let idle_toml = dir.path().join("probe-idle.toml");
    std::fs::write(
        &idle_toml,
        probe_config(&args, origin.addr, &idle_results, IDLE_INTERVAL_SECS),
    )
    .context("writing the idle probe's configuration")?;
    std::fs::write(
        &probe_toml,
        probe_config(&args, origin.addr, &results, args.interval_secs),
    )
    .context("writing probe.toml")?;
    let blackbox_yml = dir.path().join("blackbox.yml");
    std::fs::write(&blackbox_yml, BLACKBOX_YML).context("writing blackbox.yml")?;
    let bb_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port()?);

    println!(
        "bench-footprint: {} vs {}",
        probe_bin.display(),
        blackbox_bin.display()
    );
    println!(
        "origin http://{} (in-process); {} checks every {} s each = {} checks/min per side; \
         load window {} s; CLK_TCK {ticks_per_s}",
        origin.addr,
        args.checks,
        args.interval_secs,
        args.checks * 60 / args.interval_secs,
        args.seconds
    );

    // Start both just after a schedule boundary (the probe's runs of that round are over),
    // so the idle sample falls before the probe's first run.
    let clock = Clock::now();
    let now = unix_ms();
    let boundary = now - now.rem_euclid(interval_ms) + interval_ms;
    sleep_until(clock.at(boundary + 700)).await;

    let mut probe_cmd = Command::new(&probe_bin);
    probe_cmd
        .arg("run")
        .arg("--config")
        .arg(&probe_toml)
        .env_remove("RUST_LOG");
    let mut probe = spawn("probe", probe_cmd, dir.path().join("probe.log"))?;
    let mut idle_cmd = Command::new(&probe_bin);
    idle_cmd
        .arg("run")
        .arg("--config")
        .arg(&idle_toml)
        .env_remove("RUST_LOG");
    let mut idle_probe = spawn("idle probe", idle_cmd, dir.path().join("probe-idle.log"))?;
    let mut bb_cmd = Command::new(&blackbox_bin);
    bb_cmd
        .arg(format!("--config.file={}", blackbox_yml.display()))
        .arg(format!("--web.listen-address={bb_addr}"));
    let mut blackbox = spawn("blackbox_exporter", bb_cmd, dir.path().join("blackbox.log"))?;

    let spawned = Instant::now();
    let spawned_late_ms = unix_ms() - (boundary + 700);
    let ready_by = spawned + START_TIMEOUT;
    let (mut probe_ready, mut blackbox_ready) = (None, None);
    // Both at once, polled every 10 ms: each side's start-up time is reported.
    while probe_ready.is_none() || blackbox_ready.is_none() {
        probe.ensure_running()?;
        blackbox.ensure_running()?;
        if probe_ready.is_none()
            && std::fs::read_to_string(&probe.log)
                .unwrap_or_default()
                .contains("probe started")
        {
            probe_ready = Some(spawned.elapsed());
        }
        if blackbox_ready.is_none() && TcpStream::connect(bb_addr).await.is_ok() {
            blackbox_ready = Some(spawned.elapsed());
        }
        if Instant::now() > ready_by {
            bail!(
                "not ready within {START_TIMEOUT:?}: the probe logs \"probe started\", \
                 blackbox_exporter listens on {bb_addr} (ready: probe {}, blackbox {})",
                probe_ready.is_some(),
                blackbox_ready.is_some()
            );
        }
        sleep(Duration::from_millis(10)).await;
    }
    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);

    let mut ours = Side {
        ready_ms: ms(probe_ready),
        binary_bytes: std::fs::metadata(&probe_bin)?.len(),
        ..Side::default()
    };
    let mut theirs = Side {
        ready_ms: ms(blackbox_ready),
        binary_bytes: std::fs::metadata(&blackbox_bin)?.len(),
        ..Side::default()
    };

    // Idle: ~3.3 s after start, from the probe whose checks are not due for hours.
    sleep_until(clock.at(boundary + 4000)).await;
    idle_probe.ensure_running()?;
    blackbox.ensure_running()?;
    anyhow::ensure!(
        std::fs::read_to_string(&idle_probe.log)
            .unwrap_or_default()
            .contains("probe started"),
        "the idle probe did not start within 3.3 s"
    );
    ours.idle = read_proc(idle_probe.pid())?;
    theirs.idle = read_proc(blackbox.pid())?;
    let idle_at_ms = unix_ms() - boundary;
    let (early_ok, early_failed) = count_results(&idle_results)?;
    drop(idle_probe);
    let idle_note = format!(
        "{}; spawned {} ms after the schedule boundary (700 planned), idle sampled at {} ms \
         (4000 planned)",
        if early_ok + early_failed > 0 {
            "NOTE: the idle probe had already run a check at the idle sample; its figure includes it"
        } else {
            "idle: a probe with the same checks at a 24 h interval, none run yet; blackbox_exporter before any /probe"
        },
        700 + spawned_late_ms,
        idle_at_ms
    );

    // Load window: from just before the probe's next round, for `seconds`.
    let w0 = boundary + interval_ms - 100;
    let w1 = w0 + i64::try_from(args.seconds * 1000).context("window")?;
    sleep_until(clock.at(w0)).await;
    ours.start = read_proc(probe.pid())?;
    theirs.start = read_proc(blackbox.pid())?;
    let (ok0, failed0) = count_results(&results)?;

    let scraper = Arc::new(Scraper {
        addr: bb_addr,
        idle: Mutex::new(Vec::new()),
    });
    let bb_ok = Arc::new(AtomicU64::new(0));
    let bb_failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let driver = tokio::spawn({
        let (scraper, ok, failed, first_error) = (
            scraper.clone(),
            bb_ok.clone(),
            bb_failed.clone(),
            first_error.clone(),
        );
        let (start, port, checks) = (clock.at(w0), origin.addr.port(), args.checks);
        async move {
            let mut inflight = tokio::task::JoinSet::new();
            for k in 0..requests {
                sleep_until(start + spacing * u32::try_from(k).unwrap_or(u32::MAX)).await;
                let path = format!(
                    "/probe?module=http_2xx&target=http%3A%2F%2F127.0.0.1%3A{port}%2F%3Fc%3D{}",
                    k % checks
                );
                let (scraper, ok, failed, first_error) = (
                    scraper.clone(),
                    ok.clone(),
                    failed.clone(),
                    first_error.clone(),
                );
                inflight.spawn(async move {
                    let outcome = timeout(PROBE_REQUEST_TIMEOUT, scraper.get(&path)).await;
                    let why = match outcome {
                        Ok(Ok((200, body)))
                            if body
                                .windows(b"\nprobe_success 1".len())
                                .any(|w| w == b"\nprobe_success 1") =>
                        {
                            ok.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Ok(Ok((status, _))) => format!("status {status} or probe_success 0"),
                        Ok(Err(e)) => format!("{e:#}"),
                        Err(_) => "timed out".to_string(),
                    };
                    failed.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().await.get_or_insert(why);
                });
                // Reap finished requests so the set stays small.
                while inflight.try_join_next().is_some() {}
            }
            while inflight.join_next().await.is_some() {}
        }
    });

    // One RSS sample a second, 350 ms into each second so that every `interval` one lands
    // inside the probe's burst of runs (which starts 100 ms into the window).
    for s in 0..args.seconds {
        let at = w0 + 350 + i64::try_from(s * 1000).context("window")?;
        if at >= w1 {
            break;
        }
        sleep_until(clock.at(at)).await;
        probe.ensure_running()?;
        blackbox.ensure_running()?;
        ours.sample(read_proc(probe.pid())?);
        theirs.sample(read_proc(blackbox.pid())?);
    }
    sleep_until(clock.at(w1)).await;
    ours.end = read_proc(probe.pid())?;
    theirs.end = read_proc(blackbox.pid())?;
    let (ok1, failed1) = count_results(&results)?;
    ours.completed = ok1 - ok0.min(ok1);
    ours.failed = failed1 - failed0.min(failed1);
    theirs.completed = bb_ok.load(Ordering::Relaxed);
    theirs.failed = bb_failed.load(Ordering::Relaxed);

    // Let the last requests finish (bounded), only to report stragglers.
    let _ = timeout(PROBE_REQUEST_TIMEOUT + Duration::from_secs(2), driver).await;
    let late = bb_ok.load(Ordering::Relaxed) - theirs.completed;
    let bb_error = first_error.lock().await.clone();

    drop(probe);
    drop(blackbox);
    if args.keep {
        let kept = dir.keep();
        println!(
            "kept {} (probe.toml, results.jsonl, probe.log, blackbox.yml, blackbox.log)",
            kept.display()
        );
    }

    print!(
        "{}",
        report(&args, ticks_per_s, &ours, &theirs, requests, late)
    );
    println!("{idle_note}");
    println!("load average at start: {load_start}, at end: {}", loadavg());
    if let Some(e) = bb_error {
        println!("first blackbox_exporter failure: {e}");
    }
    println!("origin answered {} requests in total", origin.requests());
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn report(
    args: &Args,
    ticks_per_s: u64,
    ours: &Side,
    theirs: &Side,
    requests: u64,
    late: u64,
) -> String {
    let mut out = String::new();
    let expected = args.seconds * args.checks / args.interval_secs;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<34} {:>10} {:>10} {:>8}  {:<7} verdict",
        "measure", "probe", "blackbox", "ratio", "target"
    );
    let _ = writeln!(out, "{}", "-".repeat(82));
    let mut row = |name: &str, a: f64, b: f64, decimals: usize, target: bool| {
        let ratio = if b > 0.0 {
            format!("{:.2}", a / b)
        } else {
            "—".to_string()
        };
        let (t, v) = if target {
            (
                format!("≤ {TARGET_RATIO}"),
                if b > 0.0 && a / b <= TARGET_RATIO {
                    "PASS"
                } else {
                    "MISS"
                },
            )
        } else {
            ("info".to_string(), "")
        };
        let line = format!("{name:<34} {a:>10.decimals$} {b:>10.decimals$} {ratio:>8}  {t:<7} {v}");
        let _ = writeln!(out, "{}", line.trim_end());
    };
    row(
        "RSS idle (MiB)",
        mib(ours.idle.rss_kib),
        mib(theirs.idle.rss_kib),
        1,
        true,
    );
    row(
        "  of which RssAnon, idle (MiB)",
        mib(ours.idle.anon_kib),
        mib(theirs.idle.anon_kib),
        1,
        false,
    );
    row(
        "  of which RssFile, idle (MiB)",
        mib(ours.idle.file_kib),
        mib(theirs.idle.file_kib),
        1,
        false,
    );
    row(
        "RSS under load, median (MiB)",
        ours.rss_median() / 1024.0,
        theirs.rss_median() / 1024.0,
        1,
        true,
    );
    row(
        "RSS under load, max sample (MiB)",
        mib(ours.rss_max()),
        mib(theirs.rss_max()),
        1,
        true,
    );
    row(
        "RssAnon at end of window (MiB)",
        mib(ours.end.anon_kib),
        mib(theirs.end.anon_kib),
        1,
        false,
    );
    row(
        "VmHWM at end (MiB)",
        mib(ours.end.hwm_kib),
        mib(theirs.end.hwm_kib),
        1,
        false,
    );
    let cpu = |s: &Side| s.cpu_ms_per_check(ticks_per_s).unwrap_or(f64::NAN);
    row("CPU per check (ms)", cpu(ours), cpu(theirs), 3, true);
    let secs =
        |s: &Side| s.end.cpu_ticks.saturating_sub(s.start.cpu_ticks) as f64 / ticks_per_s as f64;
    row("CPU in load window (s)", secs(ours), secs(theirs), 2, false);
    row(
        "CPU from start to idle sample (s)",
        ours.idle.cpu_ticks as f64 / ticks_per_s as f64,
        theirs.idle.cpu_ticks as f64 / ticks_per_s as f64,
        2,
        false,
    );
    row(
        "start-up: spawn to ready (ms)",
        ours.ready_ms,
        theirs.ready_ms,
        0,
        false,
    );
    row(
        "checks completed in window",
        ours.completed as f64,
        theirs.completed as f64,
        0,
        false,
    );
    row(
        "checks failed in window",
        ours.failed as f64,
        theirs.failed as f64,
        0,
        false,
    );
    row(
        "threads (idle)",
        ours.idle.threads as f64,
        theirs.idle.threads as f64,
        0,
        false,
    );
    row(
        "threads (max under load)",
        ours.threads_max as f64,
        theirs.threads_max as f64,
        0,
        false,
    );
    row(
        "binary size (MB, probe stripped)",
        ours.binary_bytes as f64 / 1e6,
        theirs.binary_bytes as f64 / 1e6,
        2,
        false,
    );
    let _ = writeln!(
        out,
        "\nexpected {expected} checks per side in the window ({requests} /probe requests sent; \
         {late} finished after the window closed); {} RSS samples per side, 1 s apart",
        ours.rss_samples.len()
    );
    let _ = writeln!(
        out,
        "targets: probe RSS ≤ {TARGET_RATIO} × blackbox_exporter's (idle and under load), CPU per check ≤ {TARGET_RATIO} ×"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_probe::config::ProbeConfig;
    use meridian_shared::config::SourceFile;

    #[test]
    fn the_generated_probe_config_is_valid_and_has_the_asked_rate() {
        let args = Args {
            seconds: 60,
            checks: 100,
            interval_secs: 6,
            keep: false,
        };
        let origin: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let text = probe_config(
            &args,
            origin,
            Path::new("/tmp/results.jsonl"),
            args.interval_secs,
        );
        let config =
            ProbeConfig::from_source(&SourceFile::new("probe.toml", text), Path::new("/")).unwrap();
        assert_eq!(config.checks.len(), 100);
        assert!(
            config
                .checks
                .iter()
                .all(|c| c.interval == Duration::from_secs(6))
        );
    }

    #[test]
    fn proc_readings_of_this_process() {
        let r = read_proc(std::process::id()).unwrap();
        assert!(r.rss_kib > 0 && r.hwm_kib >= r.rss_kib && r.threads >= 1);
        assert!(r.anon_kib + r.file_kib <= r.rss_kib, "{r:?}");
    }
}
