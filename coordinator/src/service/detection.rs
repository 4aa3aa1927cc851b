//! Live detection: one thread owns the [`Engine`] (`detect`, the same engine
//! `coordinator simulate` drives), fed by the service; bursts it orders go out as commands,
//! incident transitions are logged and stored.
//!
//! # Decisions
//! - **A dedicated thread**, neither the store thread nor a task: an evaluation walks every
//!   (target, region) and can take milliseconds; on the store thread it would hold up group
//!   commits (hence acknowledgements), on the runtime it would stall QUIC I/O. Inputs arrive on
//!   an unbounded channel ([`Feed`]); everything queued is fed before one tick, so a flurry of
//!   commits costs one evaluation. The thread ends when the service's state is dropped.
//! - **What is fed** ([`feed`]): every result *newly* stored (a batch re-sent after a lost
//!   acknowledgement is not judged twice), once its transaction committed, with
//!   `received_ms` the coordinator's clock when its batch arrived and `burst` whether it
//!   carried a `BurstTag`; "heard from" for the probe's messages (heartbeats, batches, pongs:
//!   any proves it alive, as for the service's own liveness; at most one a second per probe);
//!   every clock-offset estimate the ping filter keeps; the topology at start and after every
//!   assignment refresh (enrolment, revocation, reload, and a probe's ASN first learnt or
//!   changed at connect: GeoIP of its address, or the operator's pin).
//! - **Parameters** ([`params`]): `Params::for_interval` of the *smallest* configured check
//!   interval. The engine has one time scale; on the fastest checks' scale a slower check's
//!   samples look stale between runs (they count in fewer quorums), while on the slowest
//!   scale the fastest checks would be detected late. The heartbeat period is the probes'
//!   ([`ServiceConfig::heartbeat_interval`](super::ServiceConfig)): the scaled default (5 s
//!   at 60 s) assumes heartbeats probes do not send, and would find every region silent. A
//!   lone silent probe becomes a probe fault after at least three heartbeat periods, however
//!   compressed the interval. Fixed for the run: a reload that changes the smallest interval
//!   takes effect at the next start.
//! - **Warm start** ([`warm_start`](super::warm_start)): before its first tick the thread
//!   relearns the baselines from the results stored before this run began, through a
//!   read-only connection; inputs arriving meanwhile wait in the inbox.
//! - **Ticks**: after every round of inputs that held results, and at least every
//!   [`TICK`] (sooner for intervals under 4 s).
//! - **Bursts**: each order becomes one `CommandKind::Burst` per listed probe that has a live
//!   session, all with one fresh burst id; a probe not connected is skipped and counted. The
//!   engine's cooldown is the only rate limit.
//! - **Incidents**: every transition is logged at INFO (id, class, regions, targets,
//!   explanation) and the incident upserted through the store thread without waiting; its
//!   stored id is the engine's plus the run's base (see `store::incidents`), known at once.
//! - **Alerts**: every transition is handed to the alert dispatcher
//!   ([`ServiceConfig::alerts`](super::ServiceConfig), see [`crate::alerting`]) with
//!   `try_send`, before it is stored: the dispatcher routes and delivers it on the runtime, so
//!   a slow receiver never holds up detection.
//! - **Member drafts**: with each transition of a site incident the coordinator offers its
//!   member messages ([`crate::drafts`], wording from the configuration in force):
//!   investigating and identified while it is open, monitoring and resolved once it resolved.
//!   The store rewrites an offered draft while nobody has touched it (`store::messages`), so
//!   a growing scope reaches the draft; a person's words are never overwritten. Templates that
//!   fail to load (a file edited into a bad state since start) are logged once per
//!   configuration and nothing is drafted until a reload fixes them.
//! - **Maintenance windows** ([`crate::maintenance`]): at each transition of a site incident
//!   the windows in force are matched against its scope (its checks' targets × its
//!   regions). Every window it overlaps is noted on the record and in its timeline; when
//!   they cover its whole scope and no page went out for it yet, its page is held back
//!   (`maintenance.suppressed_by`, which the alert routing honours) and no member draft is
//!   offered (members see the window on the status page). Every tick re-checks the held-back
//!   ones: once the window is over with the incident still open, the transition is announced
//!   again, released, and it pages. A page already out is never held back by a window that
//!   starts later: its resolution must reach whoever was paged.

use std::collections::HashMap;
use std::sync::Weak;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use meridian_shared::check::{CheckId, DEFAULT_INTERVAL};
use meridian_shared::regions::Catalog;
use meridian_shared::wire::{BurstTag, CommandKind, SequencedResult};

use super::live::{Event, LiveView, OpenIncident};
use super::{Counters, Shared, now_ms};
use crate::alerting::Transition;
use crate::config::CoordinatorConfig;
use crate::detect::{Action, BurstOrder, Engine, Params, ProbeInfo, RegionInfo, Topology};
use crate::drafts::{Draft, Names, Stage, Templates};
use crate::geoip::Network;
use crate::sim::run::Detector;
use crate::store::incidents::{IncidentRecord, StoredState};
use crate::store::{ProbeRecord, Store};

/// The longest time between two ticks.
pub(super) const TICK: Duration = Duration::from_secs(1);

/// Inputs fed in one round at most before a tick, so a flood cannot starve the ticks.
const MAX_ROUND: usize = 10_000;

/// "Heard from" is fed at most this often per probe, ms: the engine counts silence in
/// heartbeat periods (seconds), and a probe uploading busily sends many messages a second.
pub(super) const HEARD_EVERY_MS: i64 = 1_000;

/// Something the engine observes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Observation {
    /// Results newly stored from one batch (committed), as they arrived.
    Stored {
        /// The records, each with its burst tag.
        records: Vec<SequencedResult>,
        /// When the batch arrived, coordinator clock, Unix ms.
        received_ms: i64,
    },
    /// A message arrived from a probe.
    Heard {
        /// The probe.
        probe_id: String,
        /// When, Unix ms.
        at_ms: i64,
    },
    /// The ping filter's estimate of a probe's clock offset (positive: the probe is ahead).
    Clock {
        /// The probe.
        probe_id: String,
        /// The estimate, ms.
        offset_ms: i64,
        /// When it was made, Unix ms.
        at_ms: i64,
    },
}

/// What the detection thread is sent.
#[derive(Debug)]
pub(super) enum Input {
    /// Feed this to the engine.
    Observe(Observation),
    /// The monitoring network changed (or may have).
    Topology(Topology),
    /// Tests: answer with the probes of the topology last installed.
    #[cfg(test)]
    Installed(Sender<Vec<ProbeInfo>>),
}

/// The sending side of the detection thread's inbox. Sending never blocks; once the thread is
/// gone inputs are dropped.
#[derive(Clone)]
pub(super) struct Feed {
    /// The inbox.
    tx: Sender<Input>,
    /// The check interval the engine's parameters were scaled to, ms.
    pub(super) interval_ms: i64,
}

impl Feed {
    /// Hands an observation to the engine.
    pub(super) fn observe(&self, observation: Observation) {
        let _ = self.tx.send(Input::Observe(observation));
    }

    /// Replaces the engine's topology.
    pub(super) fn topology(&self, topology: Topology) {
        let _ = self.tx.send(Input::Topology(topology));
    }

    /// Tests: the probes of the topology the detection thread last installed (empty before the
    /// first refresh); `None` once the thread is gone.
    #[cfg(test)]
    pub(super) fn installed(&self) -> Option<Vec<ProbeInfo>> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx.send(Input::Installed(tx)).ok()?;
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }
}

/// Feeds one observation to a detector (the engine; a recording fake in tests). Returns
/// whether it held results (the caller ticks after those).
pub(super) fn feed(detector: &mut impl Detector, observation: &Observation) -> bool {
    match observation {
        Observation::Stored {
            records,
            received_ms,
        } => {
            for r in records {
                detector.observe(&r.result, r.burst.is_some(), *received_ms);
            }
            !records.is_empty()
        }
        Observation::Heard { probe_id, at_ms } => {
            detector.heartbeat(probe_id, *at_ms);
            false
        }
        Observation::Clock {
            probe_id,
            offset_ms,
            at_ms,
        } => {
            detector.clock_offset(probe_id, *offset_ms, *at_ms);
            false
        }
    }
}

/// The smallest check interval configured, ms; the default interval without any check.
pub(super) fn interval_ms(targets: Option<&CoordinatorConfig>) -> i64 {
    let smallest = targets
        .into_iter()
        .flat_map(|c| &c.targets)
        .flat_map(|t| &t.checks)
        .map(|c| c.interval)
        .min()
        .unwrap_or(DEFAULT_INTERVAL);
    i64::try_from(smallest.as_millis()).unwrap_or(i64::MAX)
}

/// The engine's parameters: scaled to the smallest configured interval (see the module
/// docs), silence counted in the probes' real heartbeat periods.
pub(super) fn params(targets: Option<&CoordinatorConfig>, heartbeat: Duration) -> Params {
    let mut params = Params::for_interval(interval_ms(targets));
    params.heartbeat_ms = i64::try_from(heartbeat.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    // Reconnecting after a cut takes heartbeats and QUIC backoff, which do not shrink with a
    // compressed interval: a probe that came back a few seconds after its region-mates must
    // not be called a probe fault (at a 2 s interval the scaled grace would be 1 s).
    params.probe_silent_after_ms = params
        .probe_silent_after_ms
        .max(params.heartbeat_ms.saturating_mul(3));
    params
}

/// The engine's view of the network: every region of the catalog with its corridors, and the
/// enrolled, unrevoked probes of the registry, each with the ASN of its network as learnt at
/// its last connection (GeoIP or the operator's pin; unknown until then).
pub(super) fn topology(
    probes: &[ProbeRecord],
    catalog: &Catalog,
    networks: &HashMap<String, Network>,
) -> Topology {
    Topology {
        regions: catalog
            .regions()
            .iter()
            .map(|r| RegionInfo {
                id: r.id.to_string(),
                corridors: r.corridors.clone(),
            })
            .collect(),
        probes: probes
            .iter()
            .filter(|p| p.revoked_ms.is_none())
            .map(|p| ProbeInfo {
                id: p.probe_id.clone(),
                region: p.region.clone(),
                asn: networks.get(&p.probe_id).and_then(|n| n.asn),
            })
            .collect(),
    }
}

/// The catalog of the configuration in force, or the built-in one.
pub(super) fn catalog(targets: Option<&CoordinatorConfig>) -> Catalog {
    targets.map_or_else(Catalog::builtin, |c| c.catalog.clone())
}

/// A new inbox: the feed for the service, the receiver for [`spawn`].
pub(super) fn channel(interval_ms: i64) -> (Feed, Receiver<Input>) {
    let (tx, rx) = std::sync::mpsc::channel();
    (Feed { tx, interval_ms }, rx)
}

/// Starts the detection thread. `id_base` is what the engine's incident ids are offset by in
/// the store (`Store::begin_detection`).
/// Starts the detection thread. With `history` (a reader of the store and the time this run
/// began), the engine first relearns its baselines from it ([`warm_start`](super::warm_start)).
pub(super) fn spawn(
    shared: Weak<Shared>,
    engine: Engine,
    id_base: u64,
    inbox: Receiver<Input>,
    history: Option<(Store, i64)>,
) -> std::io::Result<()> {
    let period = tick_period(engine.params().interval_ms);
    #[cfg(test)]
    let installed = engine.probes().cloned().collect();
    let mut worker = Worker {
        engine,
        shared,
        id_base,
        last_burst_id: 0,
        drafting: None,
        last_view_ms: i64::MIN,
        maintenance: HashMap::new(),
        #[cfg(test)]
        installed,
    };
    std::thread::Builder::new()
        .name("meridian-detect".into())
        .spawn(move || {
            if let Some((reader, began_ms)) = history {
                worker.warm_start(&reader, began_ms);
            }
            worker.run(&inbox, period);
        })
        .map(drop)
}

/// At least every [`TICK`], and four times per check interval for intervals under 4 s.
fn tick_period(interval_ms: i64) -> i64 {
    let tick = i64::try_from(TICK.as_millis()).unwrap_or(1_000);
    (interval_ms / 4).clamp(50, tick)
}

/// The thread's state.
struct Worker {
    /// The engine.
    engine: Engine,
    /// The service: live sessions for bursts, the store thread for incidents. Weak, so the
    /// thread does not keep the service alive.
    shared: Weak<Shared>,
    /// Stored incident id = `id_base` + the engine's id.
    id_base: u64,
    /// The last burst id handed out.
    last_burst_id: u64,
    /// The configuration the member-draft templates were loaded for, and them (`None` when
    /// they failed to load).
    drafting: Option<(std::sync::Arc<CoordinatorConfig>, Option<Templates>)>,
    /// When the live view was last computed, Unix ms.
    last_view_ms: i64,
    /// Site incidents' dealings with maintenance windows, by engine id.
    maintenance: HashMap<u64, crate::maintenance::Hold>,
    /// Tests: the probes of the topology last installed.
    #[cfg(test)]
    installed: Vec<ProbeInfo>,
}

impl Worker {
    /// Relearns the baselines from `reader`; a failure leaves the engine cold.
    fn warm_start(&mut self, reader: &Store, began_ms: i64) {
        let started = now_ms();
        match super::warm_start::replay(&mut self.engine, reader, began_ms) {
            Ok(r) => tracing::info!(
                learnt = r.learnt,
                excluded_in_incidents = r.excluded,
                undecodable = r.undecodable,
                since_ms = r.since_ms,
                took_ms = now_ms() - started,
                "warm start: baselines relearnt from stored results"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "warm start failed; detection starts without baselines"
            ),
        }
    }

    fn run(mut self, inbox: &Receiver<Input>, period: i64) {
        tracing::info!(
            interval_ms = self.engine.params().interval_ms,
            heartbeat_ms = self.engine.params().heartbeat_ms,
            id_base = self.id_base,
            "detection running"
        );
        let mut next_tick = now_ms() + period;
        loop {
            let wait = (next_tick - now_ms()).clamp(0, period);
            let first = match inbox.recv_timeout(Duration::from_millis(wait.unsigned_abs())) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut results = false;
            for input in first.into_iter().chain(inbox.try_iter().take(MAX_ROUND)) {
                match input {
                    Input::Observe(o) => results |= feed(&mut self.engine, &o),
                    Input::Topology(t) => {
                        #[cfg(test)]
                        self.installed.clone_from(&t.probes);
                        self.engine.set_topology(t);
                    }
                    #[cfg(test)]
                    Input::Installed(reply) => {
                        let _ = reply.send(self.installed.clone());
                    }
                }
            }
            let now = now_ms();
            // A wall clock stepped back must not postpone the periodic tick.
            let due = now >= next_tick || next_tick - now > period;
            if results || due {
                let actions = self.engine.tick(now);
                // A burst changes nothing a page shows; an incident's transition does.
                let changed = actions.iter().any(|a| !matches!(a, Action::Burst(_)));
                self.act(actions, now);
                let released = self.release_held(now);
                self.publish_view(now, changed || released);
            }
            if due {
                next_tick = now + period;
            }
        }
        tracing::debug!("detection stopped");
    }

    /// Publishes the engine's view for the web side, at most once every
    /// [`VIEW_EVERY_MS`](super::live::VIEW_EVERY_MS) unless `urgent` (an incident changed).
    fn publish_view(&mut self, now: i64, urgent: bool) {
        if !urgent && now.saturating_sub(self.last_view_ms) < super::live::VIEW_EVERY_MS {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        self.last_view_ms = now;
        let open = self
            .engine
            .incidents()
            .iter()
            .filter(|i| i.is_open())
            .map(|i| OpenIncident {
                id: self.id_base + i.id,
                class: i.class.as_str().to_string(),
                state: StoredState::from(i.state).as_str().to_string(),
                severity: i.severity.as_str().to_string(),
                regions: i.regions.iter().cloned().collect(),
                operational: i.class.is_operational(),
                held: self
                    .maintenance
                    .get(&i.id)
                    .is_some_and(|h| h.record.is_suppressed()),
            })
            .collect();
        shared.views.publish(LiveView {
            at_ms: now,
            cells: self.engine.region_cells(now),
            open,
        });
    }

    fn act(&mut self, actions: Vec<Action>, now: i64) {
        if actions.is_empty() {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        for action in actions {
            match action {
                Action::Burst(order) => self.burst(&shared, &order, now),
                Action::Opened(id) => self.transition(&shared, id, Transition::Opened, now),
                Action::Paged(id) => self.transition(&shared, id, Transition::Paged, now),
                Action::Updated(id) => self.transition(&shared, id, Transition::Updated, now),
                Action::Resolved(id) => self.transition(&shared, id, Transition::Resolved, now),
                Action::Reopened(id) => self.transition(&shared, id, Transition::Reopened, now),
            }
        }
    }

    /// The member drafts to offer for `record`'s transition (none for monitoring-network
    /// states, or without templates).
    fn drafts(&mut self, shared: &Shared, record: &IncidentRecord, now: i64) -> Vec<Draft> {
        let Some(config) = shared.targets() else {
            return Vec::new();
        };
        let fresh = !matches!(&self.drafting, Some((c, _)) if std::sync::Arc::ptr_eq(c, &config));
        if fresh {
            let templates = match Templates::load(config.drafts.templates.as_deref()) {
                Ok(t) => Some(t),
                Err(error) => {
                    tracing::error!(%error, "member-draft templates failed to load: no drafts until a reload fixes them");
                    None
                }
            };
            self.drafting = Some((config.clone(), templates));
        }
        let Some((_, Some(templates))) = &self.drafting else {
            return Vec::new();
        };
        let networks: Vec<(u32, String)> = shared
            .state()
            .networks
            .values()
            .filter_map(|n| Some((n.asn?, n.as_org.clone()?)))
            .collect();
        let names = Names::new(&config.catalog, &config.targets).with_networks(networks);
        let stages: &[Stage] = if record.resolved_ms.is_some() {
            &[Stage::Monitoring, Stage::Resolved]
        } else {
            &[Stage::Investigating, Stage::Identified]
        };
        stages
            .iter()
            .filter_map(|stage| {
                match templates.draft(record, &names, *stage, now, config.drafts.cadence) {
                    Ok(draft) => draft,
                    Err(error) => {
                        tracing::warn!(id = record.id, %stage, %error, "no member draft");
                        None
                    }
                }
            })
            .collect()
    }

    /// A fresh burst id: the wall clock in ms times 2^16, or one more than the last if that is
    /// not larger, so ids rise within a run and a restarted coordinator does not hand out an
    /// id of its previous run (unless its clock went back), while one ms fits 65,536 bursts.
    fn next_burst_id(&mut self, now: i64) -> u64 {
        let id = (now.unsigned_abs() << 16).max(self.last_burst_id + 1);
        self.last_burst_id = id;
        id
    }

    fn burst(&mut self, shared: &Shared, order: &BurstOrder, now: i64) {
        let check_id = match CheckId::parse(&order.check_id) {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(
                    check_id = order.check_id,
                    error,
                    "burst for an invalid check id dropped"
                );
                return;
            }
        };
        let tag = BurstTag {
            burst_id: self.next_burst_id(now),
        };
        let (mut sent, mut skipped) = (0u64, 0u64);
        for probe_id in &order.probe_ids {
            let kind = CommandKind::Burst {
                check_id: check_id.clone(),
                runs: order.runs,
                tag,
            };
            match shared.command(probe_id, kind) {
                Ok(_) => sent += 1,
                Err(_) => skipped += 1,
            }
        }
        let c = &shared.counters;
        Counters::add(&c.bursts_ordered, 1);
        Counters::add(&c.burst_commands, sent);
        Counters::add(&c.burst_probes_skipped, skipped);
        tracing::debug!(
            burst_id = tag.burst_id, check_id = %check_id, runs = order.runs, sent, skipped,
            probes = ?order.probe_ids, "burst ordered"
        );
    }

    fn transition(&mut self, shared: &Shared, engine_id: u64, what: Transition, now: i64) {
        let Some(incident) = self.engine.incident(engine_id) else {
            return;
        };
        let mut record = IncidentRecord::from_engine(self.id_base + engine_id, incident, now);
        if !incident.class.is_operational() {
            self.maintenance(shared, engine_id, &mut record, now);
        }
        Counters::add(&shared.counters.incident_transitions, 1);
        tracing::info!(
            id = record.id,
            class = %record.class,
            state = %record.state.as_str(),
            severity = %record.severity,
            regions = %record.regions.join(","),
            targets = %record.targets.join(","),
            explanation = %record.explanation,
            "incident {what}"
        );
        // Alerting never blocks this thread: a full queue drops (counted, WARN).
        if let Some(alerts) = &shared.config.alerts {
            alerts.send(&record, what);
        }
        let id = record.id;
        // Members see the window on the status page; a held-back incident drafts nothing.
        let drafts = if record.maintenance.is_suppressed() {
            Vec::new()
        } else {
            self.drafts(shared, &record, now)
        };
        let events = shared.views.events.clone();
        let stored = shared.store.send(move |s| {
            if let Err(error) = s.upsert_incident(&record) {
                tracing::error!(id, %error, "storing an incident failed");
                return;
            }
            // Pages re-read the API when told: only once it holds the transition.
            let _ = events.send(Event::Incident {
                id,
                class: record.class.clone(),
                state: record.state.as_str().to_string(),
            });
            for draft in drafts {
                match s.offer_draft(&draft, &record.regions, now) {
                    Ok((message, true)) => {
                        tracing::info!(
                            id, message, stage = %draft.stage, title = %draft.title,
                            "member draft offered for approval"
                        );
                        let _ = events.send(Event::Message {
                            id: message,
                            incident: id,
                            state: "draft".to_string(),
                        });
                    }
                    Ok((_, false)) => {}
                    Err(error) => {
                        tracing::error!(id, stage = %draft.stage, %error, "storing a member draft failed");
                    }
                }
            }
        });
        if stored.is_err() {
            tracing::error!(
                id,
                "storing an incident failed: the store thread has stopped"
            );
        }
    }
}

impl Worker {
    /// Matches a site incident's scope against the maintenance windows in force at `now`:
    /// notes the windows it overlaps, holds its page back or releases it (see the module
    /// docs), and writes the result into `record` (its `maintenance` and timeline).
    fn maintenance(
        &mut self,
        shared: &Shared,
        engine_id: u64,
        record: &mut IncidentRecord,
        now: i64,
    ) {
        let windows = shared.maintenance_windows();
        let config = shared.targets();
        let held = self.maintenance.entry(engine_id).or_default();
        if windows.is_empty() && held.record.is_empty() {
            held.apply(&crate::maintenance::Coverage::default(), record, now);
            return;
        }
        let targets = target_ids(config.as_deref(), &record.targets);
        let coverage = crate::maintenance::coverage(&windows, &targets, &record.regions, now);
        held.apply(&coverage, record, now);
    }

    /// Announces again every open incident whose page is held back by windows no longer
    /// covering it, so it pages; forgets incidents the engine no longer has. Returns whether
    /// any was released.
    fn release_held(&mut self, now: i64) -> bool {
        let held: Vec<u64> = self
            .maintenance
            .iter()
            .filter(|(_, h)| h.record.is_suppressed())
            .map(|(id, _)| *id)
            .collect();
        self.maintenance
            .retain(|id, _| self.engine.incident(*id).is_some());
        if held.is_empty() {
            return false;
        }
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let windows = shared.maintenance_windows();
        let config = shared.targets();
        let mut released = false;
        for engine_id in held {
            let Some(incident) = self.engine.incident(engine_id) else {
                continue;
            };
            if !incident.is_open() {
                continue;
            }
            let targets = target_ids(config.as_deref(), &incident.targets);
            let regions: Vec<String> = incident.regions.iter().cloned().collect();
            if crate::maintenance::coverage(&windows, &targets, &regions, now).full {
                continue;
            }
            let what = if incident.paged_ms.is_some() {
                Transition::Paged
            } else {
                Transition::Updated
            };
            self.transition(&shared, engine_id, what, now);
            released = true;
        }
        released
    }
}

/// The target ids of an incident's checks (incidents name checks; maintenance windows name
/// targets), sorted, each once; a check no target claims stands for itself.
fn target_ids<'a>(
    config: Option<&CoordinatorConfig>,
    checks: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let mut targets: Vec<String> = checks
        .into_iter()
        .map(|check| {
            config
                .and_then(|c| c.target_of_check(check))
                .map_or_else(|| check.clone(), |t| t.id.clone())
        })
        .collect();
    targets.sort();
    targets.dedup();
    targets
}
