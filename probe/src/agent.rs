//! `probe run`: the long-running agent.
//!
//! A standalone probe (no `[[coordinator]]` in `probe.toml`) runs its local checks and appends
//! every result to the JSON-lines `results` file. A linked probe also:
//! - appends every result to the spool (named MessagePack of [`SpooledResult`], the burst tag
//!   beside the result), a batch per `spawn_blocking` call with one `sync`: whatever the
//!   result channels hold when the writer wakes, so results are durable within one batch;
//! - starts the [`Uplink`], one task per coordinator, which delivers the spool;
//! - applies assignments: the persisted one (`<state_dir>/assignment.msgpack`) runs from the
//!   start, else the local checks; a received assignment with a higher version is persisted,
//!   then the scheduler restarts on its checks and slot (see [`crate::supervise`]);
//! - carries out commands: `Burst` runs an assigned check now ([`crate::burst`]), `Reload`
//!   re-reads `probe.toml` for local settings (checks, slot and concurrency when no assignment
//!   is running; policy, resolver and CA in any case; coordinators and the spool need a
//!   restart); each is answered with `CommandDone`. `Ping` never reaches here: the uplink
//!   session answers it.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use meridian_shared::result::CheckResult;
use meridian_shared::wire::{Assignment, CommandDone, CommandKind};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::assignment::{self, AssignmentStore};
use crate::burst;
use crate::config::ProbeConfig;
use crate::enroll::StateFiles;
use crate::http::{HttpEnv, tls};
use crate::runner::{Runner, unix_ms};
use crate::schedule::{Slot, Stats};
use crate::spool::Spool;
use crate::supervise::{self, Desired};
use crate::uplink::{InboundCommand, SpooledResult, Uplink, UplinkConfig};

/// The `User-Agent` of every HTTP check that does not set its own.
pub const USER_AGENT: &str = concat!("meridian-probe/", env!("CARGO_PKG_VERSION"));

/// Builds the runner a configuration describes.
pub fn runner_for(config: &ProbeConfig) -> anyhow::Result<Runner> {
    let roots = match &config.ca_file {
        Some(path) => tls::load_pem_certs(path).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    Ok(Runner {
        probe_id: config.probe_id.clone(),
        region: config.region.to_string(),
        http: HttpEnv {
            policy: config.policy.clone(),
            tls: tls::client_config(&roots).context("building the TLS client configuration")?,
            resolver: config.resolver,
            user_agent: USER_AGENT.to_string(),
        },
    })
}

/// One line summarising a result, for logs and the demo.
pub fn summary(r: &CheckResult) -> String {
    let ms =
        |us: Option<u64>| us.map_or("—".to_string(), |u| format!("{:.1}", u as f64 / 1000.0));
    // Phases that do not apply to a DNS check (Some(0) with no HTTP detail) read as "—".
    let conn = |us: Option<u64>| {
        if r.http.is_none() && us == Some(0) {
            ms(None)
        } else {
            ms(us)
        }
    };
    let status = r
        .http
        .as_ref()
        .and_then(|h| h.status.map(|s| s.to_string()))
        .or_else(|| r.dns.as_ref().map(|d| d.rcode.name()))
        .unwrap_or_else(|| "—".to_string());
    let verdict = match &r.error {
        None => "ok".to_string(),
        Some(e) => format!("FAILED {}: {}", e.class, e.message),
    };
    format!(
        "{:<10} {:>8}  dns {:>6}  connect {:>6}  tls {:>6}  ttfb {:>7}  transfer {:>6}  total {:>7} ms  {verdict}",
        r.check_id.as_str(),
        status,
        ms(r.phases.dns),
        conn(r.phases.connect),
        conn(r.phases.tls),
        conn(r.phases.ttfb),
        conn(r.phases.transfer),
        ms(Some(r.phases.total)),
    )
}

/// Runs the agent until SIGINT or SIGTERM.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = ProbeConfig::load(config_path)?;
    let runner = Arc::new(runner_for(&config)?);
    let mut jsonl = match &config.results {
        Some(path) => Some(open_results(path).await?),
        None => None,
    };
    tracing::info!(
        probe_id = %config.probe_id,
        region = %config.region,
        checks = config.checks.len(),
        coordinators = config.link.as_ref().map_or(0, |l| l.coordinators.len()),
        results = %config.results.as_ref().map_or("-".into(), |p| p.display().to_string()),
        "probe started"
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut linked = None;
    let mut restored = None;
    if let Some(link) = &config.link {
        let (spool_dir, names, bounds) = (
            link.spool_dir.clone(),
            link.coordinators
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>(),
            link.spool.clone(),
        );
        let spool = tokio::task::spawn_blocking(move || Spool::open(&spool_dir, &names, bounds))
            .await
            .context("spool task")?
            .with_context(|| format!("opening the spool in {}", link.spool_dir.display()))?;
        let spool = Arc::new(Mutex::new(spool));
        let store = AssignmentStore::in_dir(&link.state_dir);
        let s = store.clone();
        restored = match tokio::task::spawn_blocking(move || s.load()).await? {
            Ok(Some(a)) if assignment::problem(&a).is_none() => Some(Arc::new(a)),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, "persisted assignment unreadable; running the local checks");
                None
            }
        };
        let files = StateFiles::in_dir(&link.state_dir);
        let uplink_config =
            UplinkConfig::new(link.coordinators.clone(), files.cert, files.key, files.ca);
        let mut uplink = Uplink::start_from(uplink_config, spool.clone(), restored.clone())
            .context("starting the uplink")?;
        let commands = uplink.take_commands();
        linked = Some((spool, store, uplink, commands));
    }

    let (desired_tx, desired_rx) = watch::channel(desired(&config, &runner, restored.as_deref()));
    let (results_tx, mut results) = mpsc::channel::<CheckResult>(1024);
    let (bursts_tx, mut bursts) = mpsc::channel::<SpooledResult>(256);
    let stats = Arc::new(Stats::default());
    let scheduler = tokio::spawn(supervise::run(
        desired_rx,
        results_tx,
        stats.clone(),
        shutdown_rx.clone(),
        unix_ms,
    ));
    let control = Control {
        config_path: config_path.to_path_buf(),
        config,
        runner,
        applied: restored,
        desired: desired_tx,
        bursts: bursts_tx,
    };
    let (spool, uplink) = match linked {
        Some((spool, store, uplink, commands)) => {
            let assignments = uplink.assignments();
            let controller =
                tokio::spawn(control.run(assignments, commands, store, shutdown_rx.clone()));
            (Some((spool, controller)), Some(uplink))
        }
        None => {
            drop(control);
            (None, None)
        }
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = shutdown_tx.send(true);
    });

    // The writer: ends when the scheduler and the controller have dropped their senders.
    let mut batch: Vec<SpooledResult> = Vec::new();
    loop {
        tokio::select! {
            Some(r) = results.recv() => batch.push(SpooledResult { result: r, burst: None }),
            Some(r) = bursts.recv() => batch.push(r),
            else => break,
        }
        while batch.len() < WRITE_BATCH {
            match results.try_recv() {
                Ok(r) => batch.push(SpooledResult {
                    result: r,
                    burst: None,
                }),
                Err(_) => match bursts.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                },
            }
        }
        let records = std::mem::take(&mut batch);
        if let Some(file) = &mut jsonl {
            for r in &records {
                let mut line = serde_json::to_vec(&r.result).context("encoding a result")?;
                line.push(b'\n');
                file.write_all(&line).await.context("writing a result")?;
            }
            file.flush().await.context("writing a result")?;
        }
        for r in &records {
            tracing::info!(target: "meridian::result", burst = ?r.burst.map(|b| b.burst_id), "{}", summary(&r.result));
        }
        if let Some((spool, _)) = &spool {
            append_batch(spool, records).await?;
        }
    }
    scheduler.await.context("scheduler task")?;
    if let Some((_, controller)) = spool {
        controller.await.context("control task")?;
    }
    if let Some(uplink) = uplink {
        uplink.shutdown(Duration::from_secs(2)).await;
    }
    tracing::info!(
        started = stats.started.load(Ordering::Relaxed),
        missed = stats.missed.load(Ordering::Relaxed),
        "probe stopped"
    );
    Ok(())
}

/// Most results written in one batch (one spool `sync`).
const WRITE_BATCH: usize = 256;

async fn open_results(path: &Path) -> anyhow::Result<tokio::fs::File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))
}

/// Appends results to the spool and syncs once, off the runtime. A result that cannot be
/// encoded is logged and left out; a spool failure stops the agent (results would be lost).
async fn append_batch(
    spool: &Arc<Mutex<Spool>>,
    records: Vec<SpooledResult>,
) -> anyhow::Result<()> {
    let spool = spool.clone();
    tokio::task::spawn_blocking(move || {
        let mut spool = spool.lock().unwrap_or_else(PoisonError::into_inner);
        let now = SystemTime::now();
        for r in &records {
            match r.encode() {
                Ok(payload) => {
                    spool.append(&payload, now)?;
                }
                Err(error) => tracing::error!(%error, check = %r.result.check_id, "result not encodable; not spooled"),
            }
        }
        spool.sync()
    })
    .await
    .context("spool task")?
    .context("appending results to the spool")
}

/// What the scheduler should run: the assignment when there is one, else the local checks.
pub fn desired<E>(
    config: &ProbeConfig,
    executor: &Arc<E>,
    assignment: Option<&Assignment>,
) -> Arc<Desired<E>> {
    let (checks, slot, source) = match assignment {
        Some(a) => (
            a.checks.clone(),
            Slot {
                index: a.slot,
                count: a.slots,
            },
            format!("assignment v{}", a.version),
        ),
        None => (config.checks.clone(), config.slot, "probe.toml".to_string()),
    };
    Arc::new(Desired {
        executor: executor.clone(),
        checks,
        slot,
        probe_id: config.probe_id.clone(),
        concurrency: config.concurrency,
        source,
    })
}

/// The linked agent's control loop: applies assignments and carries out commands.
struct Control {
    /// Re-read on `Reload`.
    config_path: PathBuf,
    /// The settings in force.
    config: ProbeConfig,
    /// The runner built from them.
    runner: Arc<Runner>,
    /// The assignment running, if any.
    applied: Option<Arc<Assignment>>,
    /// Where the wanted scheduler state is published.
    desired: watch::Sender<Arc<Desired<Runner>>>,
    /// Where burst results go.
    bursts: mpsc::Sender<SpooledResult>,
}

impl Control {
    async fn run(
        mut self,
        mut assignments: watch::Receiver<Option<Arc<Assignment>>>,
        mut commands: Option<mpsc::Receiver<InboundCommand>>,
        store: AssignmentStore,
        mut shutdown: watch::Receiver<bool>,
    ) {
        // Bursts in progress; dropping the set at shutdown aborts them.
        let mut running = JoinSet::new();
        loop {
            tokio::select! {
                changed = assignments.changed(), if !assignments.is_closed() => {
                    if changed.is_err() { continue; }
                    let latest = assignments.borrow_and_update().clone();
                    if let Some(a) = latest {
                        self.apply(a, &store).await;
                    }
                }
                cmd = recv(&mut commands) => match cmd {
                    Some(cmd) => self.command(cmd, &mut running).await,
                    None => commands = None,
                },
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = supervise::stopped(&mut shutdown) => return,
            }
        }
    }

    async fn apply(&mut self, a: Arc<Assignment>, store: &AssignmentStore) {
        if !assignment::is_newer(self.applied.as_ref().map(|h| h.version), &a) {
            return;
        }
        if let Some(problem) = assignment::problem(&a) {
            tracing::warn!(version = a.version, %problem, "assignment refused; keeping the current one");
            return;
        }
        let (s, saved) = (store.clone(), a.clone());
        match tokio::task::spawn_blocking(move || s.save_if_newer(&saved)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "assignment not persisted; running it anyway"),
            Err(error) => tracing::warn!(%error, "assignment not persisted; running it anyway"),
        }
        tracing::info!(
            version = a.version,
            checks = a.checks.len(),
            slot = a.slot,
            slots = a.slots,
            "assignment applied"
        );
        self.applied = Some(a);
        self.publish();
    }

    fn publish(&self) {
        let _ = self
            .desired
            .send(desired(&self.config, &self.runner, self.applied.as_deref()));
    }

    async fn command(&mut self, cmd: InboundCommand, running: &mut JoinSet<()>) {
        let command_id = cmd.command.command_id;
        match cmd.command.kind {
            CommandKind::Burst {
                check_id,
                runs,
                tag,
            } => {
                let current = self.desired.borrow().clone();
                let Some(check) = current.checks.iter().find(|c| c.id == check_id).cloned() else {
                    let error =
                        format!("no check {:?} is assigned to this probe", check_id.as_str());
                    let _ = cmd
                        .done
                        .send(CommandDone {
                            command_id,
                            error: Some(error),
                        })
                        .await;
                    return;
                };
                let sink = self.bursts.clone();
                tracing::info!(check = %check_id, runs, burst_id = tag.burst_id, coordinator = %cmd.coordinator, "burst");
                running.spawn(async move {
                    burst::run(
                        &*current.executor,
                        &check,
                        runs,
                        tag,
                        burst::SPACING,
                        unix_ms,
                        &sink,
                    )
                    .await;
                    let _ = cmd
                        .done
                        .send(CommandDone {
                            command_id,
                            error: None,
                        })
                        .await;
                });
            }
            CommandKind::Reload => {
                let error = self.reload().await.err().map(|e| format!("{e:#}"));
                if let Some(e) = &error {
                    tracing::warn!(error = %e, "reload failed; the current settings stay");
                }
                let _ = cmd.done.send(CommandDone { command_id, error }).await;
            }
            // The uplink session answers pings itself.
            CommandKind::Ping { .. } => {
                let _ = cmd
                    .done
                    .send(CommandDone {
                        command_id,
                        error: None,
                    })
                    .await;
            }
        }
    }

    async fn reload(&mut self) -> anyhow::Result<()> {
        let path = self.config_path.clone();
        let config = tokio::task::spawn_blocking(move || ProbeConfig::load(&path)).await??;
        let runner = Arc::new(runner_for(&config)?);
        let relink = |c: &ProbeConfig| {
            c.link.as_ref().map(|l| {
                (
                    l.coordinators.clone(),
                    l.spool_dir.clone(),
                    l.state_dir.clone(),
                    l.spool.clone(),
                )
            })
        };
        if relink(&config) != relink(&self.config) {
            tracing::warn!("coordinators, state_dir and spool settings change only with a restart");
        }
        tracing::info!(path = %self.config_path.display(), "configuration reloaded");
        self.config = config;
        self.runner = runner;
        self.publish();
        Ok(())
    }
}

/// The next command, or never when there is no command channel.
async fn recv(commands: &mut Option<mpsc::Receiver<InboundCommand>>) -> Option<InboundCommand> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
