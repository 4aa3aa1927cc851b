//! The service's view of its probes, in memory: each probe's current assignment (and the
//! checks whose results it accepts), last-seen time and clock-offset samples; how it is
//! recomputed and persisted, and how changes reach live sessions.
//!
//! Assignments are recomputed ([`refresh`]) at start, on a config reload, after an enrolment
//! and after a revocation: the registry and the issued versions are read on the store thread,
//! [`assign`](super::assign) decides, new versions are stored, then installed here and pushed
//! (a [`Push::Assignment`] nudge; each session sends the current assignment if it differs
//! from what it sent). Liveness is written here on every message and flushed to the store
//! periodically ([`flush`]), many probes in one transaction. Detection hears of it too: the
//! topology after every refresh, and "heard from" (at most once a second per probe). Each
//! probe's network (GeoIP of the address it connected from, the operator's pin on top) is
//! learnt at every connection ([`learn_network`]) and kept here, in memory only; the topology
//! carries its ASN.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, MutexGuard, PoisonError};

use meridian_shared::regions::RegionId;
use meridian_shared::wire::{Assignment, Command};

use super::assign::{self, Versioned};
use super::detection::{self, HEARD_EVERY_MS, Observation};
use super::liveness::{ClockFilter, ProbeState, is_silent};
use super::{ServiceError, Shared};
use crate::config::CoordinatorConfig;
use crate::geoip::Network;
use crate::store::{ProbeRecord, Store, StoreError};

/// What a session is told from outside.
#[derive(Debug)]
pub(super) enum Push {
    /// The probe's assignment may have changed: send the current one if it differs.
    Assignment,
    /// Send this command.
    Command(Command),
}

/// A probe's current assignment.
pub(super) struct Current {
    /// As sent.
    pub(super) assignment: Assignment,
    /// Check ids whose results are accepted: this assignment's and the previous one's.
    pub(super) allowed: Arc<HashSet<String>>,
}

/// A probe's liveness, in memory.
#[derive(Default)]
pub(super) struct Seen {
    /// Its region.
    region: String,
    /// Last message, Unix ms (from the store at start).
    last_seen_ms: Option<i64>,
    /// `last_seen_ms` changed since the last flush.
    seen_dirty: bool,
    /// Ping samples.
    clock: ClockFilter,
    /// The estimate changed since the last flush.
    offset_dirty: bool,
    /// When detection was last told the probe was heard from, Unix ms.
    heard_fed_ms: Option<i64>,
}

/// Everything the service knows of its probes, under one lock (held briefly, never across an
/// await).
#[derive(Default)]
pub(super) struct State {
    /// Current assignments of enrolled, non-revoked probes.
    pub(super) assignments: HashMap<String, Current>,
    /// Liveness of enrolled, non-revoked probes.
    probes: HashMap<String, Seen>,
    /// Each probe's network as learnt at its latest connection; absent before it connected.
    pub(super) networks: HashMap<String, Network>,
}

impl Shared {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the maps consistent: a panicking holder cannot break them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// On the store thread: the registry, and the assignments versioned and saved.
pub(super) fn compute(
    store: &mut Store,
    targets: Option<&CoordinatorConfig>,
    now_ms: i64,
) -> Result<(Vec<Versioned>, Vec<ProbeRecord>), StoreError> {
    let probes: Vec<ProbeRecord> = store
        .probes()?
        .into_iter()
        .filter(|p| p.revoked_ms.is_none())
        .collect();
    let regions: Vec<(&str, RegionId)> = probes
        .iter()
        .filter_map(|p| match RegionId::parse(&p.region) {
            Ok(r) => Some((p.probe_id.as_str(), r)),
            Err(error) => {
                tracing::warn!(probe_id = p.probe_id, %error, "probe with an invalid region: no assignment");
                None
            }
        })
        .collect();
    let checks_for = |r: &RegionId| {
        targets.map_or_else(Vec::new, |c| c.checks_for(r).into_iter().cloned().collect())
    };
    let planned = assign::plan(regions.iter().map(|(id, r)| (*id, r)), checks_for);
    let versioned = assign::reconcile(planned, &store.issued_assignments()?);
    let changed: Vec<_> = versioned
        .iter()
        .filter(|v| v.changed)
        .map(|v| v.record.clone())
        .collect();
    if !changed.is_empty() {
        store.save_assignments(&changed, now_ms)?;
    }
    Ok((versioned, probes))
}

/// Installs a computation; returns the probes whose assignment changed.
pub(super) fn install(
    state: &mut State,
    versioned: Vec<Versioned>,
    probes: Vec<ProbeRecord>,
) -> Vec<String> {
    let mut changed = Vec::new();
    state.assignments.clear();
    for v in versioned {
        if v.changed {
            changed.push(v.record.probe_id.clone());
        }
        let allowed = v
            .record
            .checks
            .iter()
            .chain(&v.record.prev_checks)
            .cloned()
            .collect();
        state.assignments.insert(
            v.record.probe_id,
            Current {
                assignment: v.assignment,
                allowed: Arc::new(allowed),
            },
        );
    }
    let mut seen = std::mem::take(&mut state.probes);
    for p in probes {
        let mut entry = seen.remove(&p.probe_id).unwrap_or_default();
        entry.region = p.region;
        entry.last_seen_ms = entry.last_seen_ms.max(p.last_seen_ms);
        state.probes.insert(p.probe_id, entry);
    }
    changed
}

/// Recomputes the assignments and pushes the changed ones to live sessions.
pub(super) async fn refresh(shared: &Arc<Shared>) -> Result<usize, ServiceError> {
    // One refresh at a time: two racing ones could install out of order.
    let _one = shared.refreshing.lock().await;
    let targets = shared.targets();
    let (versioned, probes) = shared
        .store
        .call(move |s| compute(s, targets.as_deref(), super::now_ms()))
        .await??;
    let catalog = detection::catalog(shared.targets().as_deref());
    let topology = detection::topology(&probes, &catalog, &shared.state().networks);
    shared.detection.topology(topology);
    let changed = install(&mut shared.state(), versioned, probes);
    for id in &changed {
        shared.push(id, Push::Assignment);
    }
    if !changed.is_empty() {
        tracing::info!(changed = changed.len(), "assignments issued");
    }
    Ok(changed.len())
}

/// Refreshes from a spawned task (after an enrolment or a revocation), logging a failure.
pub(super) fn refresh_later(shared: &Arc<Shared>) {
    let shared = shared.clone();
    tokio::spawn(async move {
        if let Err(error) = refresh(&shared).await {
            tracing::error!(%error, "recomputing assignments failed");
        }
    });
}

/// What [`learn_network`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Learnt {
    /// Anything differs from what was known (nothing is known before the first connection
    /// since start, unless the store had it): worth storing.
    pub changed: bool,
    /// The ASN differs: the only part the topology carries, hence whether detection needs a
    /// new one.
    pub asn_changed: bool,
}

/// Records a probe's network, learnt as it connected.
pub(super) fn learn_network(shared: &Shared, probe_id: &str, network: Network) -> Learnt {
    let mut state = shared.state();
    let before = state.networks.get(probe_id);
    let learnt = Learnt {
        changed: before != Some(&network),
        asn_changed: before.and_then(|n| n.asn) != network.asn,
    };
    state.networks.insert(probe_id.to_owned(), network);
    learnt
}

/// Something arrived from a probe.
pub(super) fn touch(shared: &Shared, probe_id: &str, region: &str, now_ms: i64) {
    let heard = {
        let mut state = shared.state();
        let seen = state.probes.entry(probe_id.to_owned()).or_default();
        if seen.region.is_empty() {
            region.clone_into(&mut seen.region);
        }
        if seen.last_seen_ms.is_none_or(|t| t < now_ms) {
            seen.last_seen_ms = Some(now_ms);
            seen.seen_dirty = true;
        }
        let heard = seen
            .heard_fed_ms
            .is_none_or(|t| now_ms - t >= HEARD_EVERY_MS || now_ms < t);
        if heard {
            seen.heard_fed_ms = Some(now_ms);
        }
        heard
    };
    if heard {
        shared.detection.observe(Observation::Heard {
            probe_id: probe_id.to_owned(),
            at_ms: now_ms,
        });
    }
}

/// A ping sample; returns the probe's estimate after it, `None` when the sample was discarded.
pub(super) fn clock_sample(
    shared: &Shared,
    probe_id: &str,
    offset_ms: i64,
    delay_ms: i64,
) -> Option<(i64, i64)> {
    let mut state = shared.state();
    let seen = state.probes.entry(probe_id.to_owned()).or_default();
    if !seen.clock.add(offset_ms, delay_ms) {
        return None;
    }
    seen.offset_dirty = true;
    seen.clock.best()
}

/// Writes changed last-seen times and offsets to the store in one transaction.
pub(super) async fn flush(shared: &Arc<Shared>) -> Result<usize, ServiceError> {
    let rows: Vec<(String, Option<i64>, Option<f64>)> = {
        let mut state = shared.state();
        state
            .probes
            .iter_mut()
            .filter(|(_, s)| s.seen_dirty || s.offset_dirty)
            .map(|(id, s)| {
                let offset = s
                    .offset_dirty
                    .then(|| s.clock.best())
                    .flatten()
                    .map(|(o, _)| o as f64);
                let seen = s.seen_dirty.then_some(s.last_seen_ms).flatten();
                s.seen_dirty = false;
                s.offset_dirty = false;
                (id.clone(), seen, offset)
            })
            .collect()
    };
    if rows.is_empty() {
        return Ok(0);
    }
    let n = rows.len();
    let written = rows.clone();
    let outcome = shared
        .store
        .call(move |s| s.flush_probe_liveness(&written))
        .await
        .and_then(|r| r.map_err(ServiceError::from));
    if let Err(error) = outcome {
        // Mark them again so the next flush retries.
        let mut state = shared.state();
        for (id, seen, offset) in rows {
            if let Some(s) = state.probes.get_mut(&id) {
                s.seen_dirty |= seen.is_some();
                s.offset_dirty |= offset.is_some();
            }
        }
        return Err(error);
    }
    tracing::debug!(probes = n, "liveness flushed");
    Ok(n)
}

/// Every enrolled, non-revoked probe's state at `now_ms`.
pub(super) fn probe_states(shared: &Shared, now_ms: i64) -> Vec<ProbeState> {
    let live: HashSet<String> = shared.live().keys().cloned().collect();
    let heartbeat = shared.config.heartbeat_interval;
    let state = shared.state();
    let mut out: Vec<ProbeState> = state
        .probes
        .iter()
        .map(|(id, s)| ProbeState {
            probe_id: id.clone(),
            region: s.region.clone(),
            live: live.contains(id),
            last_seen_ms: s.last_seen_ms,
            silent: is_silent(s.last_seen_ms, now_ms, heartbeat),
            clock_offset_ms: s.clock.best().map(|(o, _)| o),
        })
        .collect();
    out.sort_by(|a, b| a.probe_id.cmp(&b.probe_id));
    out
}
