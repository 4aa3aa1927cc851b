//! The demo's run from start to verdict, phase by phase: world files, enrolment (a first run
//! of the service, enrolment only), history, then the coordinator restarted with its targets
//! and the probes live ([`super::watch`] shows that phase), and the summary.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian_probe::burst;
use meridian_probe::spool::{Spool, SpoolConfig};
use meridian_probe::uplink::Target;
use meridian_shared::check::CheckId;
use meridian_shared::regions::Catalog;
use tokio::task::JoinSet;

use super::fleet::{self, FleetProbe};
use super::history::{self, HistoryProbe};
use super::probe::{self, COORDINATOR, RunningProbe, SimExecutor, Timing};
use super::screen::{self, Drafter, Script};
use super::verdict::{self, Verdict};
use super::watch;
use super::world::{self, CUT_REGION, CUT_RTT_MS, REGIONS, TARGETS};
use super::{DemoError, Options, ms, now_ms, say, write_file};
use crate::config::CoordinatorConfig;
use crate::pki::Ca;
use crate::service::{Service, ServiceConfig, ServiceHandle};
use crate::sim::scenario::Scenario;
use crate::store::Store;
use crate::store::users::Role;

/// How long stopping a probe or the service may take.
const GRACE: Duration = Duration::from_secs(2);

/// The whole run in `data_dir` (`kept`: whether it stays afterwards).
pub async fn run(
    o: &Options,
    data_dir: &Path,
    kept: bool,
    out: &mut dyn Write,
) -> Result<Verdict, DemoError> {
    let catalog = Catalog::builtin();
    let interval_ms = ms(o.interval);
    let tail = (o.interval * 30).max(Duration::from_secs(60));
    let spec = world::ScenarioSpec {
        seed: o.seed,
        interval: o.interval,
        history: o.history(),
        cut_after: o.cut_after,
        cut_for: o.cut_for,
        tail,
    };
    let scenario_path = data_dir.join("scenario.toml");
    write_file(&scenario_path, &world::scenario_text(&spec))?;
    let scenario = crate::sim::parse::load(&scenario_path, &catalog)?;
    let config_path = data_dir.join("coordinator.toml");
    let config_text = world::config_text(data_dir, o.interval)
        .ok_or_else(|| DemoError::DataDirNotUtf8(data_dir.to_path_buf()))?;
    write_file(&config_path, &config_text)?;
    let config = Arc::new(CoordinatorConfig::load(&config_path)?);
    let drafter = Drafter::new(&config)?;
    header(o, data_dir, kept, &spec, out);

    // Enrolment: the coordinator serves it; the targets come with the restart below.
    let begun = now_ms();
    let ca = Ca::load_or_create(data_dir)?;
    let fingerprint = ca.fingerprint();
    let (handle, stop) = serve(data_dir, ca, ServiceConfig::default())?;
    let probes_dir = data_dir.join("probes");
    let enrolled = fleet::enrol(&handle, &fingerprint, &probes_dir, now_ms()).await;
    stop.stop().await;
    drop(handle);
    let fleet = enrolled?;
    say(
        out,
        format!(
            "enrolled {} probes through the real flow (one-time token, CSR, certificate over QUIC) in {}",
            fleet.len(),
            screen::secs(now_ms() - begun)
        ),
    );

    // History, ending now.
    let begun = now_ms();
    let (spools, seeded) = seed(&scenario, &catalog, &fleet, data_dir, o, begun).await?;
    say(
        out,
        format!(
            "seeded {} of history so baselines exist: {} results in the store and the probes' spools ({})",
            humantime::format_duration(spec.history),
            screen::count(seeded),
            screen::secs(now_ms() - begun)
        ),
    );

    // Live: the coordinator with its targets; its warm start reads the history.
    let timing = Timing {
        heartbeat: o
            .interval
            .clamp(Duration::from_secs(1), Duration::from_secs(10)),
        poll: (o.interval / 10).clamp(Duration::from_millis(20), Duration::from_millis(250)),
        burst_spacing: burst::SPACING.mul_f64(o.interval.as_secs_f64() / 60.0),
    };
    let service_config = ServiceConfig {
        server_names: vec!["localhost".into()],
        targets: Some(config),
        heartbeat_interval: timing.heartbeat,
        ..ServiceConfig::default()
    };
    let (handle, stop) = serve(data_dir, Ca::load_or_create(data_dir)?, service_config)?;
    let web = pages(o, &handle, data_dir).await?;
    let zero_ms = now_ms();
    let world = Arc::new(world::world_at(&scenario, &catalog, zero_ms));
    let coordinator = Target {
        name: COORDINATOR.into(),
        addr: handle.local_addr(),
        server_name: "localhost".into(),
    };
    let mut probes = Vec::with_capacity(fleet.len());
    for (p, spool) in fleet.iter().zip(spools) {
        let executor = SimExecutor::new(world.clone(), p.index, p.id.clone());
        probes.push(probe::start(
            executor,
            &p.files,
            spool,
            coordinator.clone(),
            timing,
        )?);
    }
    say(
        out,
        format!(
            "coordinator listening on {} (QUIC, mutual TLS); its warm start learns baselines from the stored history;\n\
             {} probes live, each delivering its spool over its own QUIC connection\n",
            handle.local_addr(),
            probes.len()
        ),
    );
    say(
        out,
        format!(
            "map      http://{addr}/  (log in as {DEMO_USER} / {password}: the map, incidents, member drafts to approve)\n\
             status   http://{addr}/status  (the public status page, no login)\n",
            addr = web.addr,
            password = web.password
        ),
    );
    let script = Script {
        zero_ms,
        cut_ms: zero_ms + ms(o.cut_after),
        heal_ms: zero_ms + ms(o.cut_after) + ms(o.cut_for),
    };
    let watched = watch::watch(data_dir, &script, interval_ms, ms(tail), drafter, out).await;
    let stored = handle.counters().results_stored.load(Ordering::Relaxed);
    let bursts = handle.counters().bursts_ordered.load(Ordering::Relaxed);
    let verdict = match watched {
        Ok(v) => v,
        Err(e) => {
            stop_all(probes).await;
            stop.stop().await;
            web.stop().await;
            return Err(e);
        }
    };
    let figures = verdict::Figures {
        script: &script,
        stored,
        seeded,
        bursts,
        data_dir,
        kept,
    };
    for line in verdict::summary(&verdict, &figures) {
        say(out, line);
    }
    linger(o, &web, out).await;
    stop_all(probes).await;
    stop.stop().await;
    web.stop().await;
    Ok(verdict)
}

/// The pages of the live coordinator, and how to log in.
struct Pages {
    /// Where they are served.
    addr: SocketAddr,
    /// The demo account's password.
    password: String,
    /// The server's task.
    task: tokio::task::JoinHandle<()>,
    /// Ends it.
    tx: tokio::sync::oneshot::Sender<()>,
}

impl Pages {
    async fn stop(self) {
        let _ = self.tx.send(());
        let mut task = self.task;
        if tokio::time::timeout(GRACE * 2, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Serves the map, incidents and messages of `handle`'s coordinator, with a demo account
/// (sre-admin, a fresh password) whose login is printed with the address.
async fn pages(o: &Options, handle: &ServiceHandle, data_dir: &Path) -> Result<Pages, DemoError> {
    let web_err = |e: &dyn std::fmt::Display| DemoError::Web(e.to_string());
    let password = crate::web::new_secret().map_err(|e| web_err(&e))?[..16].to_string();
    let phc = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || crate::web::hash_password(&password))
            .await?
            .map_err(|e| web_err(&e))?
    };
    handle
        .with_store(move |s| s.add_user(DEMO_USER, Role::SreAdmin, &phc, now_ms()))
        .await?
        .map_err(|e| web_err(&e))?;
    let listener = match tokio::net::TcpListener::bind(o.http).await {
        Ok(l) => l,
        // The usual port is taken (another demo, a local service): any free one will do.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            tokio::net::TcpListener::bind(SocketAddr::new(o.http.ip(), 0))
                .await
                .map_err(|e| web_err(&e))?
        }
        Err(e) => return Err(web_err(&e)),
    };
    let settings = crate::config::WebSettings::default();
    let web = crate::web::Web::with_listener(listener, handle.clone(), data_dir, settings)
        .map_err(|e| web_err(&e))?;
    let addr = web.local_addr().map_err(|e| web_err(&e))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(web.run(async {
        let _ = rx.await;
    }));
    Ok(Pages {
        addr,
        password,
        task,
        tx,
    })
}

/// The demo account's name.
const DEMO_USER: &str = "demo";

/// Keeps everything running after the verdict for `--linger` (until Ctrl-C by default when
/// interactive), so the incident, its drafts and the map can be looked at.
async fn linger(o: &Options, web: &Pages, out: &mut dyn Write) {
    let wait = match o.linger {
        Some(d) if d.is_zero() => return,
        Some(d) => Some(d),
        None => None,
    };
    let until = match wait {
        Some(d) => format!("for {}", humantime::format_duration(d)),
        None => "until Ctrl-C".to_string(),
    };
    say(
        out,
        format!(
            "\nThe probes, the coordinator and its pages keep running {until}: http://{}/",
            web.addr
        ),
    );
    let sleep = async {
        match wait {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = sleep => {}
        _ = tokio::signal::ctrl_c() => say(out, "stopping"),
    }
}

/// A running service and the means to stop it.
struct Stop {
    /// The task serving connections.
    task: tokio::task::JoinHandle<()>,
    /// Resolves the service's shutdown future.
    tx: tokio::sync::oneshot::Sender<()>,
}

impl Stop {
    /// Shuts the service down gracefully, or aborts it after twice the grace.
    async fn stop(self) {
        let _ = self.tx.send(());
        let mut task = self.task;
        if tokio::time::timeout(GRACE * 2, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// The coordinator's service on 127.0.0.1 (a fresh port), over the store in `data_dir`.
fn serve(
    data_dir: &Path,
    ca: Ca,
    config: ServiceConfig,
) -> Result<(ServiceHandle, Stop), DemoError> {
    let store = Store::open(data_dir)?;
    let socket =
        UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).map_err(DemoError::Bind)?;
    let service = Service::bind(socket, ca, store, config)?;
    let handle = service.handle();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(service.run(async {
        let _ = rx.await;
    }));
    Ok((handle, Stop { task, tx }))
}

/// Opens every probe's spool and writes the history ending at `end_ms` (off the runtime).
async fn seed(
    scenario: &Scenario,
    catalog: &Catalog,
    fleet: &[FleetProbe],
    data_dir: &Path,
    o: &Options,
    end_ms: i64,
) -> Result<(Vec<Arc<Mutex<Spool>>>, u64), DemoError> {
    let world = Arc::new(world::world_at(scenario, catalog, end_ms));
    let (fleet, data_dir) = (fleet.to_vec(), data_dir.to_path_buf());
    let (interval, from_ms) = (o.interval, end_ms - ms(o.history()));
    let window = interval * 60;
    tokio::task::spawn_blocking(move || {
        let mut spools = Vec::with_capacity(fleet.len());
        for p in &fleet {
            let spool = Spool::open(&p.spool_dir, &[COORDINATOR], SpoolConfig::default()).map_err(
                |source| DemoError::Spool {
                    path: p.spool_dir.clone(),
                    source,
                },
            )?;
            spools.push(Arc::new(Mutex::new(spool)));
        }
        let probes: Vec<HistoryProbe<'_>> = fleet
            .iter()
            .zip(&spools)
            .map(|(p, spool)| HistoryProbe {
                executor: SimExecutor::new(world.clone(), p.index, p.id.clone()),
                probe_id: &p.id,
                region: p.region,
                slot: p.slot,
                spool: spool.as_ref(),
            })
            .collect();
        let checks: Vec<CheckId> = TARGETS
            .iter()
            .filter_map(|t| CheckId::parse(t.id).ok())
            .collect();
        let mut store = Store::open(&data_dir)?;
        let seeded = history::seed(
            &mut store,
            &probes,
            &checks,
            interval,
            window,
            (from_ms, end_ms),
        )?;
        Ok((spools, seeded))
    })
    .await?
}

/// Stops every probe at once.
async fn stop_all(probes: Vec<RunningProbe>) {
    let mut stopping = JoinSet::new();
    for p in probes {
        stopping.spawn(p.stop(GRACE));
    }
    while stopping.join_next().await.is_some() {}
}

/// What runs where.
fn header(
    o: &Options,
    data_dir: &Path,
    kept: bool,
    spec: &world::ScenarioSpec,
    out: &mut dyn Write,
) {
    let fmt = |d: Duration| humantime::format_duration(d).to_string();
    let targets: Vec<String> = TARGETS
        .iter()
        .map(|t| format!("{} (origin in {})", t.id, t.origin))
        .collect();
    let speed = 60.0 / o.interval.as_secs_f64();
    let lines = [
        format!(
            "Meridian demo: a coordinator and {} simulated probes on 127.0.0.1, in real time",
            REGIONS.len() * world::PROBES_PER_REGION as usize
        ),
        format!(
            "  data     {}{}",
            data_dir.display(),
            if kept {
                ""
            } else {
                " (removed at the end; --keep keeps it)"
            }
        ),
        format!(
            "  regions  {} ({} probes each)",
            REGIONS.join(", "),
            world::PROBES_PER_REGION
        ),
        format!(
            "  checks   {} every {} (a 60 s world, {speed:.0}x faster)",
            targets.join(" and "),
            fmt(o.interval)
        ),
        format!(
            "  script   at +{}: fiber cut, {CUT_REGION} +{CUT_RTT_MS} ms to the origins for {}, then repaired",
            fmt(spec.cut_after),
            fmt(spec.cut_for)
        ),
        format!(
            "  files    {}/scenario.toml (the same world for `coordinator simulate`), coordinator.toml",
            data_dir.display()
        ),
    ];
    for l in lines {
        say(out, l);
    }
}
