//! `probe run`: the long-running agent.
//!
//! A standalone probe (no `[[coordinator]]` in `probe.toml`) runs its local checks and appends
//! every result to the JSON-lines `results` file. A linked probe also:
//! - appends every result to the spool (named MessagePack of [`SpooledResult`], the burst tag
//!   beside the result), a batch per `spawn_blocking` call with one `sync`: whatever the
//!   result channels hold when the writer wakes, so results are durable within one batch;
//! - starts the [`Uplink`], one task per coordinator, which delivers the spool;
//! - applies assignments, one per coordinator (each numbers its own versions): the persisted
//!   ones (`<state_dir>/assignment.<name>.msgpack`) run from the start, else an earlier build's
//!   single `assignment.msgpack`, else the local checks; an assignment with a higher version
//!   than its coordinator's last is persisted, then the scheduler restarts on the union of
//!   every coordinator's checks, each in its winning coordinator's slot
//!   ([`crate::assignment::merge`], [`crate::supervise`]);
//! - carries out commands: `Burst` runs an assigned check now ([`crate::burst`]) under the
//!   concurrency permits scheduled runs take, `Reload` re-reads `probe.toml` (below); each is
//!   answered with `CommandDone`. `Ping` never reaches here: the uplink session answers it.
//!
//! SIGHUP (`systemctl reload`) re-reads `probe.toml` too, standalone or linked. A file that
//! does not validate is logged with every problem as `file:line:column: field: message` and
//! changes nothing. A valid one is applied whole: checks, slot, concurrency, policy, resolver
//! and CA (the scheduler restarts; runs in progress finish), the `results` file reopened (so
//! log rotation can move it away), the spool bounds, and, when the coordinators or the
//! certificate, key or CA files changed, the uplink restarted on the new list with the spool's
//! cursors following it (a removed coordinator's cursor is deleted and holds nothing back, and
//! its assignment stops running). Where state lives (`state_dir`, `spool_dir`), the
//! `/metrics` listener (`metrics_listen`, [`crate::metrics`]) and becoming linked or standalone
//! need a restart: a file that changes them is refused whole
//! ([`ProbeConfig::restart_only_changes`]). A reload that restarts the uplink answers the
//! coordinator's `Reload` first; the answer may still be lost with the old session.

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

use crate::assignment::{self, AssignmentStore, Held};
use crate::burst;
use crate::config::ProbeConfig;
use crate::enroll::StateFiles;
use crate::http::{HttpEnv, tls};
use crate::metrics::{CheckLabels, ProbeMetrics};
use crate::runner::{Runner, unix_ms};
use crate::schedule::{Limited, Permits, Slot, Stats};
use crate::spool::Spool;
use crate::supervise::{self, Desired};
use crate::uplink::{InboundCommand, SpooledResult, Uplink, UplinkConfig};

/// How long a stopping uplink may take to close its sessions.
const UPLINK_GRACE: Duration = Duration::from_secs(2);

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

/// Runs the agent until `shutdown` resolves; each message on `reloads` re-reads
/// `probe.toml` and applies it. `probe run` wires SIGINT and SIGTERM to the first and SIGHUP
/// to the second.
pub async fn run(
    config_path: &Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reloads: mpsc::Receiver<()>,
) -> anyhow::Result<()> {
    let config = ProbeConfig::load(config_path)?;
    // Every run, scheduled or burst, holds one of these: `concurrency` bounds them all.
    let permits = Permits::new(config.concurrency);
    let runner = Arc::new(Limited::new(runner_for(&config)?, permits));
    let mut jsonl = match &config.results {
        Some(path) => Some(open_results(path).await?),
        None => None,
    };
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding metrics_listen {addr}"))?,
        ),
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
    let mut restored = assignment::Restored::default();
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
        let (s, names) = (
            store.clone(),
            link.coordinators
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>(),
        );
        restored = tokio::task::spawn_blocking(move || s.restore(&names)).await?;
        for problem in &restored.problems {
            tracing::warn!(%problem, "persisted assignment not usable; left out");
        }
        if let Some(legacy) = &restored.legacy {
            tracing::info!(
                version = legacy.version,
                "running the single assignment of an earlier build until a coordinator sends its own"
            );
        }
        let files = StateFiles::in_dir(&link.state_dir);
        let tls = TlsDigest::read(&files).await;
        let uplink_config =
            UplinkConfig::new(link.coordinators.clone(), files.cert, files.key, files.ca);
        let uplink = Uplink::start_from(uplink_config, spool.clone(), &restored.held)
            .context("starting the uplink")?;
        linked = Some(Linked {
            spool,
            store,
            uplink: Some(uplink),
            tls,
        });
    }

    let (desired_tx, desired_rx) = watch::channel(desired(
        &config,
        &runner,
        &restored.held,
        restored.legacy.as_ref(),
    ));
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
    let (results_path_tx, mut results_path) = watch::channel(config.results.clone());
    let spool = linked.as_ref().map(|l| l.spool.clone());
    let metrics = match metrics_listener {
        Some(listener) => {
            let plan = desired_tx.subscribe();
            let m = Arc::new(ProbeMetrics::new(
                move || plan.borrow().checks.iter().map(CheckLabels::of).collect(),
                stats.clone(),
                spool.clone(),
            ));
            if let Some(uplink) = linked.as_ref().and_then(|l| l.uplink.as_ref()) {
                m.set_links(uplink.links());
            }
            tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
            tokio::spawn(crate::metrics::serve(
                listener,
                m.clone(),
                shutdown_rx.clone(),
            ));
            Some(m)
        }
        None => None,
    };
    let control = Control {
        config_path: config_path.to_path_buf(),
        config,
        runner,
        applied: restored.held,
        legacy: restored.legacy,
        desired: desired_tx,
        bursts: bursts_tx,
        link: linked,
        relinked: false,
        results: results_path_tx,
        metrics: metrics.clone(),
    };
    let controller = tokio::spawn(control.run(reloads, shutdown_rx.clone()));
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
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
        if results_path.has_changed().unwrap_or(false) {
            let path = results_path.borrow_and_update().clone();
            jsonl = reopen_results(jsonl, path.as_deref()).await;
        }
        if let Some(file) = &mut jsonl {
            for r in &records {
                let mut line = serde_json::to_vec(&r.result).context("encoding a result")?;
                line.push(b'\n');
                file.write_all(&line).await.context("writing a result")?;
            }
            file.flush().await.context("writing a result")?;
        }
        if let Some(m) = &metrics {
            records.iter().for_each(|r| m.record(&r.result));
        }
        for r in &records {
            tracing::info!(target: "meridian::result", burst = ?r.burst.map(|b| b.burst_id), "{}", summary(&r.result));
        }
        if let Some(spool) = &spool {
            append_batch(spool, records).await?;
        }
    }
    scheduler.await.context("scheduler task")?;
    if let Some(uplink) = controller.await.context("control task")? {
        uplink.shutdown(UPLINK_GRACE).await;
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

/// The results file after a reload: always opened again (at `path`, which may have changed),
/// which is what log rotation needs; on failure the old file stays in use, so no result is
/// lost to a bad path.
async fn reopen_results(
    current: Option<tokio::fs::File>,
    path: Option<&Path>,
) -> Option<tokio::fs::File> {
    let path = path?;
    match open_results(path).await {
        Ok(file) => Some(file),
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "results file not reopened; writing to the previous one");
            current
        }
    }
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

/// What the scheduler should run: the union of the coordinators' assignments when any is
/// held (each check in its winning coordinator's slot), else an earlier build's single
/// assignment, else the local checks.
pub fn desired<E>(
    config: &ProbeConfig,
    executor: &Arc<E>,
    held: &Held,
    legacy: Option<&Assignment>,
) -> Arc<Desired<E>> {
    let mut other_slots = std::collections::BTreeMap::new();
    let (checks, slot, source) = if !held.is_empty() {
        let merged = assignment::merge(held);
        for c in &merged.conflicts {
            tracing::warn!(check = %c.check, winner = %c.winner, loser = %c.loser, "two coordinators assign different checks under one id; the first one's runs");
        }
        // The first coordinator holding an assignment gives the slot; checks another one won
        // keep that one's slot.
        let slot = held.iter().next().map_or(config.slot, |(_, a)| Slot {
            index: a.slot,
            count: a.slots,
        });
        let mut checks = Vec::with_capacity(merged.checks.len());
        for p in merged.checks {
            if p.slot != slot {
                other_slots.insert(p.check.id.clone(), p.slot);
            }
            checks.push(p.check);
        }
        (checks, slot, format!("assignments {}", held.describe()))
    } else if let Some(a) = legacy {
        (
            a.checks.clone(),
            Slot {
                index: a.slot,
                count: a.slots,
            },
            format!("assignment v{} (earlier build)", a.version),
        )
    } else {
        (config.checks.clone(), config.slot, "probe.toml".to_string())
    };
    Arc::new(Desired {
        executor: executor.clone(),
        checks,
        slot,
        other_slots,
        probe_id: config.probe_id.clone(),
        concurrency: config.concurrency,
        source,
    })
}

/// The agent's control loop: applies assignments, carries out commands, reloads.
struct Control {
    /// Re-read on `Reload` and SIGHUP.
    config_path: PathBuf,
    /// The settings in force.
    config: ProbeConfig,
    /// The runner built from them.
    runner: Arc<Limited<Runner>>,
    /// Each coordinator's assignment running.
    applied: Held,
    /// An earlier build's single assignment, running until a coordinator's own arrives.
    legacy: Option<Assignment>,
    /// Where the wanted scheduler state is published.
    desired: watch::Sender<Arc<Desired<Limited<Runner>>>>,
    /// Where burst results go.
    bursts: mpsc::Sender<SpooledResult>,
    /// The spool and the uplink of a linked probe.
    link: Option<Linked>,
    /// Set when a reload restarted the uplink: the loop takes the new one's channels.
    relinked: bool,
    /// The results file the writer appends to, sent again on every reload (it reopens it).
    results: watch::Sender<Option<PathBuf>>,
    /// `/metrics`, told about every uplink (re)start; `None` without `metrics_listen`.
    metrics: Option<Arc<ProbeMetrics>>,
}

/// A linked probe's delivery side, which a reload may restart.
struct Linked {
    /// The spool; its cursors follow the coordinators.
    spool: Arc<Mutex<Spool>>,
    /// Where assignments are persisted.
    store: AssignmentStore,
    /// The uplink; `None` only after a restart failed (results keep spooling meanwhile).
    uplink: Option<Uplink>,
    /// What the uplink's TLS files held when it started.
    tls: TlsDigest,
}

/// A configuration read and checked, ready to apply.
struct Reload {
    config: ProbeConfig,
    runner: Arc<Limited<Runner>>,
    /// The uplink to start instead of the running one, when the coordinators or the TLS files
    /// changed.
    relink: Option<(UplinkConfig, TlsDigest)>,
}

impl Control {
    /// Runs until shutdown; returns the uplink running then, for the agent to stop.
    async fn run(
        mut self,
        mut reloads: mpsc::Receiver<()>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Option<Uplink> {
        let (mut assignments, mut commands) = self.channels();
        // Bursts in progress; dropping the set at shutdown aborts them.
        let mut running = JoinSet::new();
        loop {
            tokio::select! {
                changed = assignments.changed(), if !assignments.is_closed() => {
                    if changed.is_err() { continue; }
                    let latest = assignments.borrow_and_update().clone();
                    if let Some(store) = self.link.as_ref().map(|l| l.store.clone()) {
                        self.apply(&latest, &store).await;
                    }
                }
                cmd = recv(&mut commands) => match cmd {
                    Some(cmd) => self.command(cmd, &mut running).await,
                    None => commands = None,
                },
                Some(()) = reloads.recv() => {
                    tracing::info!(path = %self.config_path.display(), "reloading the configuration");
                    if let Err(error) = self.reload().await {
                        tracing::error!(error = %format!("{error:#}"), "reload refused; the running configuration stays");
                    }
                }
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = supervise::stopped(&mut shutdown) => return self.link.and_then(|l| l.uplink),
            }
            if std::mem::take(&mut self.relinked) {
                (assignments, commands) = self.channels();
            }
        }
    }

    /// The running uplink's assignments and commands; a closed watch and no commands when
    /// there is no uplink (a standalone probe, or a failed restart).
    fn channels(
        &mut self,
    ) -> (
        watch::Receiver<Held>,
        Option<mpsc::Receiver<InboundCommand>>,
    ) {
        match self.link.as_mut().and_then(|l| l.uplink.as_mut()) {
            Some(uplink) => (uplink.assignments(), uplink.take_commands()),
            None => (watch::channel(Held::default()).1, None),
        }
    }

    /// Persists and runs every coordinator's assignment in `latest` that is newer than the one
    /// running from it.
    async fn apply(&mut self, latest: &Held, store: &AssignmentStore) {
        let mut changed = false;
        for (coordinator, a) in latest.iter() {
            let running = self.applied.get(coordinator).map(|h| h.version);
            if !assignment::is_newer(running, a) {
                continue;
            }
            if let Some(problem) = assignment::problem(a) {
                tracing::warn!(coordinator, version = a.version, %problem, "assignment refused; keeping the current one");
                continue;
            }
            let (s, name, saved) = (store.clone(), coordinator.to_owned(), a.clone());
            match tokio::task::spawn_blocking(move || s.save_if_newer(&name, &saved)).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(coordinator, %error, "assignment not persisted; running it anyway")
                }
                Err(error) => {
                    tracing::warn!(coordinator, %error, "assignment not persisted; running it anyway")
                }
            }
            tracing::info!(
                coordinator,
                version = a.version,
                checks = a.checks.len(),
                slot = a.slot,
                slots = a.slots,
                "assignment applied"
            );
            changed |= self.applied.offer(coordinator, a.clone());
        }
        if changed {
            // The saves removed the earlier build's file; its checks stop with it.
            self.legacy = None;
            self.publish();
        }
    }

    /// Publishes what to run now, restarting the scheduler only if that differs from what
    /// runs (one coordinator's new assignment may leave the union as it was).
    fn publish(&self) {
        let next = desired(
            &self.config,
            &self.runner,
            &self.applied,
            self.legacy.as_ref(),
        );
        self.desired.send_if_modified(|current| {
            if Arc::ptr_eq(&current.executor, &next.executor) && current.same_plan(&next) {
                false
            } else {
                *current = next;
                true
            }
        });
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
                tracing::info!(coordinator = %cmd.coordinator, "reloading the configuration");
                // Answered before applying: applying may restart the session that asked.
                match self.prepare().await {
                    Ok(next) => {
                        let done = CommandDone {
                            command_id,
                            error: None,
                        };
                        let _ = cmd.done.send(done).await;
                        self.apply_reload(next).await;
                    }
                    Err(e) => {
                        let error = format!("{e:#}");
                        tracing::error!(%error, "reload refused; the running configuration stays");
                        let done = CommandDone {
                            command_id,
                            error: Some(error),
                        };
                        let _ = cmd.done.send(done).await;
                    }
                }
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

    /// Re-reads `probe.toml` and applies it; an `Err` changed nothing.
    async fn reload(&mut self) -> anyhow::Result<()> {
        let next = self.prepare().await?;
        self.apply_reload(next).await;
        Ok(())
    }

    /// Reads and checks `probe.toml` against what runs, touching nothing: every way a reload
    /// can be refused is found here.
    async fn prepare(&self) -> anyhow::Result<Reload> {
        let path = self.config_path.clone();
        let config = tokio::task::spawn_blocking(move || ProbeConfig::load(&path))
            .await
            .context("configuration task")??;
        let restart = config.restart_only_changes(&self.config);
        anyhow::ensure!(
            restart.is_empty(),
            "{}: {} changed, which takes a restart of the probe; nothing was applied",
            self.config_path.display(),
            restart.join(", ")
        );
        // The same permits (resized on apply): runs in progress keep theirs.
        let permits = self.runner.permits().clone();
        let runner = Arc::new(Limited::new(runner_for(&config)?, permits));
        let mut relink = None;
        if let (Some(linked), Some(link), Some(running)) =
            (&self.link, &config.link, &self.config.link)
        {
            let files = StateFiles::in_dir(&link.state_dir);
            let tls = TlsDigest::read(&files).await;
            if link.coordinators != running.coordinators || tls != linked.tls {
                let uplink =
                    UplinkConfig::new(link.coordinators.clone(), files.cert, files.key, files.ca);
                // Started with no coordinator, an uplink only reads and checks the TLS files:
                // bad ones refuse the reload while the running uplink is still untouched.
                let check = UplinkConfig {
                    targets: Vec::new(),
                    ..uplink.clone()
                };
                Uplink::start_from(check, linked.spool.clone(), &Held::default())
                    .context("the uplink's certificate, key or CA")?
                    .shutdown(Duration::ZERO)
                    .await;
                relink = Some((uplink, tls));
            }
        }
        Ok(Reload {
            config,
            runner,
            relink,
        })
    }

    /// Applies a prepared configuration. What can still fail here (the spool's files, the
    /// uplink's start) is logged; results keep spooling whatever happens.
    async fn apply_reload(&mut self, next: Reload) {
        let Reload {
            config,
            runner,
            relink,
        } = next;
        if let Some((uplink, tls)) = relink {
            self.relink(uplink, tls).await;
        }
        if let (Some(linked), Some(link)) = (&self.link, &config.link) {
            let (spool, bounds) = (linked.spool.clone(), link.spool.clone());
            let applied = tokio::task::spawn_blocking(move || {
                let mut spool = spool.lock().unwrap_or_else(PoisonError::into_inner);
                if *spool.config() == bounds {
                    return Ok(());
                }
                spool.set_config(bounds)
            })
            .await;
            match applied {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "spool bounds not changed"),
                Err(error) => tracing::error!(%error, "spool bounds not changed"),
            }
        }
        runner.permits().resize(config.concurrency);
        self.results.send_replace(config.results.clone());
        tracing::info!(
            path = %self.config_path.display(),
            checks = config.checks.len(),
            concurrency = config.concurrency,
            coordinators = config.link.as_ref().map_or(0, |l| l.coordinators.len()),
            "configuration reloaded"
        );
        self.config = config;
        self.runner = runner;
        self.publish();
    }

    /// Replaces the uplink: the old one stops first (its sessions ack on the cursors about to
    /// change), the spool's cursors become the new coordinators', then the new one starts on
    /// the assignments held from coordinators still configured. Assignments of removed
    /// coordinators stop running (`publish` follows in `apply_reload`).
    async fn relink(&mut self, config: UplinkConfig, tls: TlsDigest) {
        let Some(linked) = self.link.as_mut() else {
            return;
        };
        if let Some(old) = linked.uplink.take() {
            old.shutdown(UPLINK_GRACE).await;
        }
        let names: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
        let (spool, cursors) = (linked.spool.clone(), names.clone());
        let changed = tokio::task::spawn_blocking(move || {
            spool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .set_cursors(&cursors)
        })
        .await;
        match changed {
            Ok(Ok(c)) => {
                tracing::info!(added = ?c.added, removed = ?c.removed, "spool cursors follow the coordinators")
            }
            Ok(Err(error)) => tracing::error!(%error, "spool cursors not reconciled"),
            Err(error) => tracing::error!(%error, "spool cursors not reconciled"),
        }
        let mut applied = Held::new(names.iter().cloned());
        for (name, a) in self.applied.iter() {
            applied.offer(name, a.clone());
        }
        self.applied = applied;
        match Uplink::start_from(config, linked.spool.clone(), &self.applied) {
            Ok(uplink) => {
                tracing::info!(coordinators = ?names, "uplink restarted");
                linked.uplink = Some(uplink);
            }
            Err(error) => {
                tracing::error!(%error, "uplink not restarted: results spool until a reload that works")
            }
        }
        if let Some(m) = &self.metrics {
            m.set_links(
                linked
                    .uplink
                    .as_ref()
                    .map(Uplink::links)
                    .unwrap_or_default(),
            );
        }
        linked.tls = tls;
        self.relinked = true;
    }
}

/// SHA-256 of the probe's certificate, key and CA files (`None` for one that cannot be read):
/// the uplink restarts on a reload that finds them changed (a renewed certificate, a
/// re-enrolment).
#[derive(Debug, Clone, PartialEq, Eq)]
struct TlsDigest([Option<Vec<u8>>; 3]);

impl TlsDigest {
    async fn read(files: &StateFiles) -> TlsDigest {
        let digest = |path: PathBuf| async move {
            let bytes = tokio::fs::read(&path).await.ok()?;
            Some(
                ring::digest::digest(&ring::digest::SHA256, &bytes)
                    .as_ref()
                    .to_vec(),
            )
        };
        TlsDigest([
            digest(files.cert.clone()).await,
            digest(files.key.clone()).await,
            digest(files.ca.clone()).await,
        ])
    }
}

/// The next command, or never when there is no command channel.
async fn recv(commands: &mut Option<mpsc::Receiver<InboundCommand>>) -> Option<InboundCommand> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
