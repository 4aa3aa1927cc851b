//! One simulated probe: the probe crate's own machinery (scheduler, bursts, durable spool,
//! QUIC uplink with its enrolled certificate) with the simulator's world model in place of
//! real checks.
//!
//! [`SimExecutor`] is a [`schedule::Execute`]: where the real runner connects to the target,
//! it asks the world ([`generate::run_check`]) what this probe would have measured at this
//! moment (round trips from great-circle distance, phases composed like a real connection,
//! noise, and the fiber cut once it is in force), stamped with the real clock. Everything
//! around it is the agent's: [`supervise::run`] runs the assigned checks at the assigned
//! stagger slot, [`burst::run`] answers the coordinator's `Burst` commands (results tagged),
//! results go to the spool and the [`Uplink`] delivers them.
//!
//! A run is not slowed down to its simulated duration: the demo compresses time (a 2 s
//! interval stands for 60 s), and a 600 ms check from the Gulf delivered 600 ms later would
//! look like late data to a coordinator on that compressed scale. Burst spacing is compressed
//! the same way.
//!
//! Deliberately absent: `probe.toml`, local checks and reloads (a `Reload` command is answered
//! with an error): the demo's probes exist only as the coordinator sees them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meridian_probe::assignment::Held;
use meridian_probe::burst;
use meridian_probe::enroll::StateFiles;
use meridian_probe::runner::unix_ms;
use meridian_probe::schedule::{self, Execute, Limited, Permits, Slot, Stats};
use meridian_probe::spool::Spool;
use meridian_probe::supervise::{self, Desired};
use meridian_probe::uplink::{InboundCommand, SpooledResult, Target, Uplink, UplinkConfig};
use meridian_shared::check::{Check, CheckId};
use meridian_shared::result::{CheckError, CheckResult, ErrorClass, Phases};
use meridian_shared::wire::{CommandDone, CommandKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::sim::generate;
use crate::sim::world::{World, rng_for};

/// Checks one simulated probe runs at once, at most (the agent's default).
const CONCURRENCY: usize = 8;

/// The name of the coordinator in the probes' uplink (and their spool cursor).
pub const COORDINATOR: &str = "demo";

/// Runs checks in the world model instead of on the network.
pub struct SimExecutor {
    /// The world, started at the live phase.
    world: Arc<World>,
    /// This probe's index in `world.probes`.
    index: usize,
    /// Its enrolled id, which results carry.
    probe_id: String,
}

impl SimExecutor {
    /// The executor of world probe `index`, enrolled as `probe_id`.
    pub fn new(world: Arc<World>, index: usize, probe_id: String) -> SimExecutor {
        SimExecutor {
            world,
            index,
            probe_id,
        }
    }

    /// What the probe measures running `check_id` for the slot `scheduled_ms`, starting at
    /// `started_ms` (both Unix ms). Each run draws from a generator seeded by the probe, the
    /// target and both times, so the same run always measures the same.
    pub fn measure(&self, check_id: &CheckId, scheduled_ms: i64, started_ms: i64) -> CheckResult {
        let probe = self.world.probes.get(self.index);
        let region = probe.map_or_else(String::new, |p| p.at.region.to_string());
        let (Some(k), Some(_)) = (self.world.target_index(check_id.as_str()), probe) else {
            return unknown_target(&self.probe_id, region, check_id, scheduled_ms, started_ms);
        };
        let words = [
            self.index as u64,
            k as u64,
            scheduled_ms.unsigned_abs(),
            started_ms.unsigned_abs(),
        ];
        let mut rng = rng_for(self.world.scenario.seed, &words);
        let mut result = generate::run_check(
            &self.world,
            self.index,
            k,
            scheduled_ms,
            started_ms,
            &mut rng,
        );
        result.probe_id.clone_from(&self.probe_id);
        result
    }
}

/// A check the world has no target for (an assignment the demo did not write): a failed run,
/// as a real probe reports a check it cannot carry out.
fn unknown_target(
    probe_id: &str,
    region: String,
    check_id: &CheckId,
    scheduled_ms: i64,
    started_ms: i64,
) -> CheckResult {
    CheckResult {
        probe_id: probe_id.to_owned(),
        region,
        check_id: check_id.clone(),
        scheduled_ms,
        started_ms,
        phases: Phases::default(),
        remote_ip: None,
        http: None,
        dns: None,
        error: Some(CheckError {
            class: ErrorClass::Connect,
            message: format!("the demo's world has no target {:?}", check_id.as_str()),
        }),
        warnings: Vec::new(),
    }
}

impl Execute for SimExecutor {
    async fn execute(&self, check: &Check, scheduled_ms: i64) -> CheckResult {
        self.measure(&check.id, scheduled_ms, unix_ms())
    }
}

/// How the probes talk to the coordinator, on the demo's compressed time scale.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Heartbeat period (the service is told the same).
    pub heartbeat: Duration,
    /// How often an idle uplink looks at the spool.
    pub poll: Duration,
    /// Time between two runs of a burst.
    pub burst_spacing: Duration,
}

/// A simulated probe, running.
pub struct RunningProbe {
    /// Delivers the spool.
    uplink: Uplink,
    /// Control, scheduler and spool writer.
    tasks: JoinSet<()>,
    /// Tells the tasks to stop.
    stop: watch::Sender<bool>,
}

/// Starts probe `executor` (enrolled, its files in `files`) against the coordinator at
/// `coordinator`, its results appended to `spool` (opened with a [`COORDINATOR`] cursor).
pub fn start(
    executor: SimExecutor,
    files: &StateFiles,
    spool: Arc<Mutex<Spool>>,
    coordinator: Target,
    timing: Timing,
) -> Result<RunningProbe, meridian_probe::uplink::UplinkError> {
    let mut config = UplinkConfig::new(
        vec![coordinator],
        files.cert.clone(),
        files.key.clone(),
        files.ca.clone(),
    );
    config.heartbeat = timing.heartbeat;
    config.poll = timing.poll;
    let mut uplink = Uplink::start(config, spool.clone())?;
    let probe_id = executor.probe_id.clone();
    let executor = Arc::new(Limited::new(executor, Permits::new(CONCURRENCY)));
    let (stop, stopped) = watch::channel(false);
    let (desired_tx, desired_rx) = watch::channel(desired(&executor, &probe_id, &Held::default()));
    let (results_tx, results_rx) = mpsc::channel::<CheckResult>(1024);
    let (bursts_tx, bursts_rx) = mpsc::channel::<SpooledResult>(256);
    let mut tasks = JoinSet::new();
    tasks.spawn(supervise::run(
        desired_rx,
        results_tx,
        Arc::new(Stats::default()),
        stopped.clone(),
        unix_ms,
    ));
    tasks.spawn(control(
        Control {
            executor,
            probe_id,
            desired: desired_tx,
            bursts: bursts_tx,
            spacing: timing.burst_spacing,
        },
        uplink.assignments(),
        uplink.take_commands(),
        stopped,
    ));
    tasks.spawn(write(results_rx, bursts_rx, spool));
    Ok(RunningProbe {
        uplink,
        tasks,
        stop,
    })
}

impl RunningProbe {
    /// Stops scheduling, spools what is in flight, closes the uplink.
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
        }
        self.uplink.shutdown(grace).await;
    }
}

/// The plan for `held`'s assignment (none before the first: nothing runs).
fn desired(
    executor: &Arc<Limited<SimExecutor>>,
    probe_id: &str,
    held: &Held,
) -> Arc<Desired<Limited<SimExecutor>>> {
    let assignment = held.get(COORDINATOR);
    Arc::new(Desired {
        executor: executor.clone(),
        checks: assignment.map(|a| a.checks.clone()).unwrap_or_default(),
        slot: assignment.map_or(Slot::ALONE, |a| Slot {
            index: a.slot,
            count: a.slots,
        }),
        other_slots: BTreeMap::new(),
        probe_id: probe_id.to_owned(),
        concurrency: CONCURRENCY,
        source: held.describe(),
    })
}

/// What the control loop works with.
struct Control {
    /// Runs scheduled and burst checks alike, under one concurrency limit.
    executor: Arc<Limited<SimExecutor>>,
    /// The probe's id (seeds the scheduler's jitter).
    probe_id: String,
    /// What the scheduler runs; replaced when an assignment changes the plan.
    desired: watch::Sender<Arc<Desired<Limited<SimExecutor>>>>,
    /// Where burst results go (to the spool writer).
    bursts: mpsc::Sender<SpooledResult>,
    /// Time between two runs of a burst.
    spacing: Duration,
}

/// Applies assignments and carries out commands until stopped, like the agent's control loop.
async fn control(
    c: Control,
    mut assignments: watch::Receiver<Held>,
    mut commands: Option<mpsc::Receiver<InboundCommand>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            changed = assignments.changed() => {
                if changed.is_err() {
                    return;
                }
                let held = assignments.borrow_and_update().clone();
                let next = desired(&c.executor, &c.probe_id, &held);
                c.desired.send_if_modified(|current| {
                    let differs = !current.same_plan(&next);
                    if differs {
                        *current = next;
                    }
                    differs
                });
            }
            cmd = async {
                match commands.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => match cmd {
                Some(cmd) => command(&c, cmd, &mut running),
                None => commands = None,
            },
            Some(_) = running.join_next(), if !running.is_empty() => {}
            () = until_stopped(&mut stopped) => return,
        }
    }
}

/// Resolves once `stop` is true or its sender is gone.
async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A `Burst` runs the assigned check in the world, tagged; anything else is answered.
fn command(c: &Control, cmd: InboundCommand, running: &mut JoinSet<()>) {
    let InboundCommand { command, done, .. } = cmd;
    let command_id = command.command_id;
    let reply = move |error: Option<String>| CommandDone { command_id, error };
    match command.kind {
        CommandKind::Burst {
            check_id,
            runs,
            tag,
        } => {
            let plan = c.desired.borrow().clone();
            let Some(check) = plan.checks.iter().find(|k| k.id == check_id).cloned() else {
                let error = format!("no check {:?} is assigned to this probe", check_id.as_str());
                running.spawn(async move {
                    let _ = done.send(reply(Some(error))).await;
                });
                return;
            };
            let (sink, spacing) = (c.bursts.clone(), c.spacing);
            running.spawn(async move {
                burst::run(&*plan.executor, &check, runs, tag, spacing, unix_ms, &sink).await;
                let _ = done.send(reply(None)).await;
            });
        }
        CommandKind::Reload => {
            let error = "a simulated probe has no probe.toml to reload".to_string();
            running.spawn(async move {
                let _ = done.send(reply(Some(error))).await;
            });
        }
        // The uplink session answers pings itself.
        CommandKind::Ping { .. } => {
            running.spawn(async move {
                let _ = done.send(reply(None)).await;
            });
        }
    }
}

/// Appends scheduled and burst results to the spool, one sync per batch, like the agent's
/// writer; ends when both senders are gone. A spool failure is logged and ends the probe's
/// writing (its results stop, as a real probe's would).
async fn write(
    mut results: mpsc::Receiver<CheckResult>,
    mut bursts: mpsc::Receiver<SpooledResult>,
    spool: Arc<Mutex<Spool>>,
) {
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            Some(r) = results.recv() => batch.push(SpooledResult { result: r, burst: None }),
            Some(r) = bursts.recv() => batch.push(r),
            else => return,
        }
        while let Ok(r) = results.try_recv() {
            batch.push(SpooledResult {
                result: r,
                burst: None,
            });
        }
        while let Ok(r) = bursts.try_recv() {
            batch.push(r);
        }
        let spool = spool.clone();
        let appended = tokio::task::spawn_blocking(move || append(&spool, &batch)).await;
        match appended {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "spooling a simulated probe's results failed");
                return;
            }
            Err(error) => {
                tracing::error!(%error, "spooling a simulated probe's results failed");
                return;
            }
        }
    }
}

/// Appends records to the spool (each at its start time) and syncs once.
pub fn append(
    spool: &Mutex<Spool>,
    records: &[SpooledResult],
) -> Result<(), meridian_probe::spool::SpoolError> {
    let mut spool = spool.lock().unwrap_or_else(PoisonError::into_inner);
    append_unsynced(&mut spool, records)?;
    spool.sync()
}

/// Appends records to the spool, each at its start time, without syncing; returns each
/// record's sequence number (`None` for one that could not be encoded, logged and skipped).
pub fn append_unsynced(
    spool: &mut Spool,
    records: &[SpooledResult],
) -> Result<Vec<Option<u64>>, meridian_probe::spool::SpoolError> {
    let mut seqs = Vec::with_capacity(records.len());
    for r in records {
        match r.encode() {
            Ok(payload) => seqs.push(Some(spool.append(&payload, at(r.result.started_ms))?)),
            Err(error) => {
                tracing::error!(%error, check = %r.result.check_id, "result not encodable; not spooled");
                seqs.push(None);
            }
        }
    }
    Ok(seqs)
}

/// Unix ms as a `SystemTime` (the epoch for times before it).
fn at(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs())
}

/// The first slot at or after `from_ms` of a check with this interval for a probe holding
/// `slot`, and its stagger offset: the scheduler's own arithmetic, for the seeded history.
pub fn first_slot(
    from_ms: i64,
    interval: Duration,
    slot: Slot,
    probe_id: &str,
    check: &str,
) -> i64 {
    let offset = schedule::offset(interval, slot, probe_id, check);
    schedule::next_slot(from_ms, interval, offset)
}
