//! `bench-link`: ingest over real QUIC on 127.0.0.1, and many idle connections held.
//!
//! The parent process runs the coordinator's [`Service`] in process (data directory in a temp
//! dir, socket on `127.0.0.1:0`), enrols `--probes` probes directly (certificates signed with
//! the [`Ca`], `upsert_probe`), and re-runs this binary as a child with `--clients`: the
//! simulated probes live in that child, so the coordinator's RSS and CPU, read from the
//! parent's `/proc/self`, are its own. Both processes share this machine's cores.
//!
//! - Throughput (default): each probe is a quinn client speaking the wire protocol (`Hello`,
//!   then `ResultBatch`es of `--batch` results, `--in-flight` batches unacknowledged at most)
//!   until `--results` results in all are acknowledged or `--seconds` pass. Reports results/s
//!   from the acks (checked against the store), p50/p99 from sending a batch to its `Ack`, and
//!   the coordinator's RSS before and after.
//! - `--connections N`: N probes connect, say `Hello` and send a heartbeat every
//!   `--heartbeat` seconds for `--hold` seconds; reports the coordinator's RSS and CPU while
//!   it holds them.
//!
//! Every loop is bounded by a count and a deadline.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use meridian_coordinator::config::CoordinatorConfig;
use meridian_coordinator::pki::{Ca, ProbeIdentity};
use meridian_coordinator::service::{Service, ServiceConfig};
use meridian_coordinator::store::Store;
use meridian_shared::check::CheckId;
use meridian_shared::regions::RegionId;
use meridian_shared::result::{CheckResult, Phases};
use meridian_shared::wire::{
    self, CoordinatorMessage, FrameDecoder, Heartbeat, Hello, ProbeMessage, ResultBatch,
    SequencedResult,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncBufReadExt as _;
use tokio::time::Instant;

/// Checks assigned to every probe (results name them round-robin).
const CHECKS: usize = 10;
/// Regions the probes are spread over.
const REGIONS: [&str; 6] = [
    "us-east",
    "us-west",
    "eu-west",
    "eu-central",
    "ap-southeast",
    "me-south",
];

#[derive(Parser, Clone)]
#[command(about = "Ingest over real QUIC on loopback, and idle connections held")]
struct Args {
    /// Simulated probes (throughput mode).
    #[arg(long, default_value_t = 200)]
    probes: usize,
    /// Results to deliver in all.
    #[arg(long, default_value_t = 1_000_000)]
    results: u64,
    /// Results per batch.
    #[arg(long, default_value_t = 500)]
    batch: u64,
    /// Unacknowledged batches per probe, at most.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Stop sending after this long, whatever the count.
    #[arg(long, default_value_t = 180)]
    seconds: u64,
    /// Idle mode: hold this many connections instead of measuring throughput.
    #[arg(long)]
    connections: Option<usize>,
    /// Idle mode: how long to hold them, seconds.
    #[arg(long, default_value_t = 20)]
    hold: u64,
    /// Idle mode: heartbeat interval, seconds.
    #[arg(long, default_value_t = 10)]
    heartbeat: u64,
    /// Internal: run the clients (the child process).
    #[arg(long, hide = true)]
    clients: bool,
    /// Internal: the coordinator's address.
    #[arg(long, hide = true)]
    addr: Option<std::net::SocketAddr>,
    /// Internal: where the certificates are.
    #[arg(long, hide = true)]
    certs: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if args.clients {
        rt.block_on(clients(args))
    } else {
        rt.block_on(coordinator(args))
    }
}

/// `VmRSS` and `VmHWM` of this process, KiB.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

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

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn config_text() -> String {
    let mut text = String::from("data_dir = \"data\"\n[listen]\nquic = \"127.0.0.1:0\"\n");
    for t in 0..CHECKS / 2 {
        text.push_str(&format!("[[target]]\nid = \"site-{t}\"\n"));
        for c in 0..2 {
            text.push_str(&format!(
                "[[target.http]]\nid = \"check-{}\"\nurl = \"http://127.0.0.1:9/\"\n",
                t * 2 + c
            ));
        }
    }
    text
}

/// The parent: the coordinator, the enrolment, the child, the report.
async fn coordinator(args: Args) -> anyhow::Result<()> {
    let probes = args.connections.unwrap_or(args.probes);
    let dir = tempfile::tempdir().context("temp dir")?;
    let data = dir.path().join("data");
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&data)?;
    std::fs::create_dir_all(&certs)?;
    let ca = Ca::load_or_create(&data).context("CA")?;
    std::fs::write(certs.join("ca.der"), ca.cert_der().as_ref())?;
    // One key pair for all the simulated probes: each still has its own certificate (its own
    // identity); generating 1,000 keys would only slow the set-up.
    let key = rcgen::KeyPair::generate().context("key")?;
    std::fs::write(certs.join("key.der"), key.serialize_der())?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())?
        .serialize_request(&key)
        .context("CSR")?;
    let store = Store::open(&data).context("store")?;
    for i in 0..probes {
        let region = REGIONS[i % REGIONS.len()];
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
    let src = meridian_shared::config::SourceFile::new("coordinator.toml", config_text());
    let targets =
        Arc::new(CoordinatorConfig::from_source(&src, dir.path()).context("bench config")?);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let config = ServiceConfig {
        targets: Some(targets),
        ..ServiceConfig::default()
    };
    let service = Service::bind(socket, ca, store, config).context("service")?;
    let handle = service.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(service.run(async {
        let _ = stopped.await;
    }));

    let (rss0, _) = rss();
    let cpu0 = cpu_seconds();
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .arg("--clients")
        .args(["--addr", &handle.local_addr().to_string()])
        .args(["--certs", &certs.display().to_string()])
        .args(["--probes", &args.probes.to_string()])
        .args(["--results", &args.results.to_string()])
        .args(["--batch", &args.batch.to_string()])
        .args(["--in-flight", &args.in_flight.to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--hold", &args.hold.to_string()])
        .args(["--heartbeat", &args.heartbeat.to_string()])
        .args(
            args.connections
                .map(|n| vec!["--connections".to_string(), n.to_string()])
                .unwrap_or_default(),
        )
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the clients")?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let limit = Duration::from_secs(args.seconds.max(args.hold) + 120);
    let deadline = Instant::now() + limit;
    let mut held = None;
    let mut report = Vec::new();
    // Bounded: the child prints a handful of lines; the deadline caps the wait.
    for _ in 0..1_000 {
        let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => bail!("the clients took longer than {limit:?}"),
        };
        if line == "held" {
            // Idle mode: everything connected; measure over the hold.
            let (rss1, _) = rss();
            let (cpu1, t1) = (cpu_seconds(), Instant::now());
            held = Some((rss1, cpu1, t1));
        } else if line == "released" {
            if let Some((rss1, cpu1, t1)) = held {
                let (rss2, hwm) = rss();
                let secs = t1.elapsed().as_secs_f64();
                let cpu = cpu_seconds() - cpu1;
                report.push(format!(
                    "  coordinator RSS  {:>8.1} MiB before, {:.1} MiB once connected, {:.1} MiB at the end of the hold (peak {:.1} MiB); {:.1} KiB per connection",
                    rss0 as f64 / 1024.0,
                    rss1 as f64 / 1024.0,
                    rss2 as f64 / 1024.0,
                    hwm as f64 / 1024.0,
                    rss2.saturating_sub(rss0) as f64 / probes.max(1) as f64,
                ));
                report.push(format!(
                    "  coordinator CPU  {:>8.2} s over {:.1} s held = {:.1} % of one core",
                    cpu,
                    secs,
                    100.0 * cpu / secs.max(1e-9)
                ));
                let c = handle.counters();
                report.push(format!(
                    "  sessions {}  heartbeats {}  live now {}",
                    c.sessions.load(Ordering::Relaxed),
                    c.heartbeats.load(Ordering::Relaxed),
                    handle.probe_states().iter().filter(|p| p.live).count()
                ));
            }
        } else {
            report.push(line);
        }
    }
    let status = tokio::time::timeout_at(deadline, child.wait())
        .await
        .context("child exit")??;
    let cpu = cpu_seconds() - cpu0;
    let (rss_end, hwm) = rss();
    let c = handle.counters();
    let stored = c.results_stored.load(Ordering::Relaxed);
    // The store's own count: sequences start at 1 and are contiguous per probe.
    let in_store: u64 = handle
        .with_store(move |s| {
            (0..probes)
                .map(|i| s.highest_seq(&format!("bench-{i:05}")).ok().flatten())
                .map(|h| h.unwrap_or(0))
                .sum::<u64>()
        })
        .await?;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    match args.connections {
        Some(n) => println!(
            "bench-link --connections {n}: idle probe connections, heartbeats every {} s, held {} s (clients in a child process)",
            args.heartbeat, args.hold
        ),
        None => println!(
            "bench-link: {} probes over QUIC on 127.0.0.1, batches of {}, {} in flight per probe (clients in a child process)",
            args.probes, args.batch, args.in_flight
        ),
    }
    for line in &report {
        println!("{line}");
    }
    if args.connections.is_none() {
        println!(
            "  store            {stored} results stored (counter), {in_store} by highest sequence per probe, {} duplicates, {} refused, {} batches",
            c.results_duplicate.load(Ordering::Relaxed),
            c.results_rejected.load(Ordering::Relaxed),
            c.batches.load(Ordering::Relaxed),
        );
        println!(
            "  coordinator RSS  {:>8.1} MiB before, {:.1} MiB after (peak {:.1} MiB); CPU {:.1} s in all",
            rss0 as f64 / 1024.0,
            rss_end as f64 / 1024.0,
            hwm as f64 / 1024.0,
            cpu
        );
    }
    println!("  load average     {}  (child {status})", load_average());
    Ok(())
}

/// The child: the simulated probes.
async fn clients(args: Args) -> anyhow::Result<()> {
    let addr = args.addr.context("--addr")?;
    let certs = args.certs.clone().context("--certs")?;
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    let ca = CertificateDer::from(std::fs::read(certs.join("ca.der"))?);
    let key = std::fs::read(certs.join("key.der"))?;
    let client = Arc::new(Client { ca, key, certs });
    let cpu0 = cpu_seconds();
    match args.connections {
        Some(n) => idle(&endpoint, &client, addr, n, &args).await?,
        None => throughput(&endpoint, &client, addr, &args).await?,
    }
    println!(
        "  clients' CPU     {:>8.1} s (child process)",
        cpu_seconds() - cpu0
    );
    endpoint.close(0u32.into(), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    Ok(())
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
    addr: std::net::SocketAddr,
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

/// The next coordinator message; `None` when the stream finished.
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

fn result(i: u64, now_ms: i64) -> CheckResult {
    CheckResult {
        probe_id: String::new(),
        region: String::new(),
        check_id: CheckId::parse(&format!("check-{}", i % CHECKS as u64)).expect("valid id"),
        scheduled_ms: now_ms - 500,
        started_ms: now_ms - 500,
        phases: Phases {
            dns: Some(1_000 + i % 500),
            connect: Some(90_000 + i % 7_000),
            tls: Some(180_000 + i % 9_000),
            ttfb: Some(120_000 + i % 20_000),
            transfer: Some(300 + i % 100),
            total: 400_000 + i % 30_000,
        },
        remote_ip: None,
        http: None,
        dns: None,
        error: None,
        warnings: Vec::new(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Throughput mode: every probe sends its share of the results.
async fn throughput(
    endpoint: &quinn::Endpoint,
    client: &Arc<Client>,
    addr: std::net::SocketAddr,
    args: &Args,
) -> anyhow::Result<()> {
    let probes = args.probes.max(1);
    let mut sessions = Vec::with_capacity(probes);
    for i in 0..probes {
        sessions.push(connect(endpoint, client, addr, i).await?);
    }
    let per_probe = args.results.div_ceil(probes as u64);
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, s) in sessions.into_iter().enumerate() {
        let (acked, batch, in_flight) = (acked.clone(), args.batch.max(1), args.in_flight.max(1));
        tasks.spawn(probe(
            s, i as u64, per_probe, batch, in_flight, deadline, acked,
        ));
    }
    let mut latencies = Vec::new();
    let mut last_ack = start;
    while let Some(done) = tasks.join_next().await {
        let (mut l, t) = done??;
        latencies.append(&mut l);
        last_ack = last_ack.max(t);
    }
    let elapsed = (last_ack - start).as_secs_f64();
    let n = acked.load(Ordering::Relaxed);
    latencies.sort_unstable();
    let q = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "  acknowledged     {n} results in {elapsed:.2} s = {:.0} results/s",
        n as f64 / elapsed.max(1e-9)
    );
    println!(
        "  batch -> Ack     p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} batches)",
        q(0.5),
        q(0.99),
        q(1.0),
        latencies.len()
    );
    Ok(())
}

/// One probe: batches with at most `in_flight` unacknowledged; returns each batch's
/// send-to-Ack time and when its last Ack came.
async fn probe(
    s: Session,
    index: u64,
    total: u64,
    batch: u64,
    in_flight: usize,
    deadline: Instant,
    acked: Arc<AtomicU64>,
) -> anyhow::Result<(Vec<Duration>, Instant)> {
    let Session {
        conn,
        mut tx,
        mut rx,
        mut dec,
    } = s;
    let mut pending: std::collections::VecDeque<(u64, u64, Instant)> = Default::default();
    let mut latencies = Vec::new();
    let (mut next_seq, mut last) = (1u64, Instant::now());
    let mut acked_here = 0u64;
    // Bounded: each round sends a batch or reads an Ack; the deadline caps the whole.
    while acked_here < total && Instant::now() < deadline {
        if pending.len() < in_flight && next_seq <= total {
            let n = batch.min(total + 1 - next_seq);
            let now = now_ms();
            let results = (next_seq..next_seq + n)
                .map(|seq| SequencedResult {
                    seq,
                    result: result(index * 1_000_003 + seq, now),
                    burst: None,
                })
                .collect();
            let msg = ProbeMessage::ResultBatch(ResultBatch {
                first_seq: next_seq,
                results,
            });
            let frame = wire::encode(&msg)?;
            pending.push_back((next_seq + n - 1, n, Instant::now()));
            tx.write_all(&frame).await?;
            next_seq += n;
            continue;
        }
        let msg = match tokio::time::timeout_at(deadline, next_msg(&mut rx, &mut dec)).await {
            Ok(msg) => msg?,
            Err(_) => break,
        };
        match msg {
            Some(CoordinatorMessage::Ack(a)) => {
                while pending
                    .front()
                    .is_some_and(|(up_to, _, _)| *up_to <= a.up_to_seq)
                {
                    if let Some((_, n, sent)) = pending.pop_front() {
                        latencies.push(sent.elapsed());
                        acked.fetch_add(n, Ordering::Relaxed);
                        acked_here += n;
                    }
                }
                last = Instant::now();
            }
            Some(CoordinatorMessage::Reject(r)) => bail!("probe {index}: rejected: {r:?}"),
            Some(_) => {}
            None => bail!("probe {index}: stream finished"),
        }
    }
    let _ = tx.finish();
    conn.close(0u32.into(), b"done");
    Ok((latencies, last))
}

/// Idle mode: `n` probes connect, then heartbeat until the hold is over.
async fn idle(
    endpoint: &quinn::Endpoint,
    client: &Arc<Client>,
    addr: std::net::SocketAddr,
    n: usize,
    args: &Args,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(32));
    let mut connecting = tokio::task::JoinSet::new();
    for i in 0..n {
        let (endpoint, client, gate) = (endpoint.clone(), client.clone(), gate.clone());
        connecting.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            tokio::time::timeout(
                Duration::from_secs(60),
                connect(&endpoint, &client, addr, i),
            )
            .await?
        });
    }
    let mut sessions = Vec::with_capacity(n);
    while let Some(s) = connecting.join_next().await {
        sessions.push(s??);
    }
    println!(
        "  connected        {} probes in {:.1} s (32 handshakes at a time)",
        sessions.len(),
        start.elapsed().as_secs_f64()
    );
    println!("held");
    let hold = Instant::now() + Duration::from_secs(args.hold);
    let every = Duration::from_secs(args.heartbeat.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, s) in sessions.into_iter().enumerate() {
        tasks.spawn(async move {
            let Session {
                conn,
                mut tx,
                mut rx,
                mut dec,
            } = s;
            // Spread the heartbeats over the interval, as real probes' would be.
            let phase = every.mul_f64((i % 1_000) as f64 / 1_000.0);
            let mut tick = tokio::time::interval_at(Instant::now() + phase, every);
            // Bounded by the hold's deadline.
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(hold) => break,
                    _ = tick.tick() => {
                        let hb = ProbeMessage::Heartbeat(Heartbeat { sent_ms: now_ms() });
                        tx.write_all(&wire::encode(&hb)?).await?;
                    }
                    msg = next_msg(&mut rx, &mut dec) => {
                        if msg?.is_none() {
                            bail!("probe {i}: stream finished during the hold");
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>(conn)
        });
    }
    let mut conns = Vec::with_capacity(n);
    while let Some(c) = tasks.join_next().await {
        conns.push(c??);
    }
    println!("released");
    for c in conns {
        c.close(0u32.into(), b"done");
    }
    Ok(())
}
