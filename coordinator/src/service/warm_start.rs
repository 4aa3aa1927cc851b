//! Warm start: before going live, the detection engine relearns its baselines from the
//! results this coordinator stored in earlier runs.
//!
//! # Decisions
//! - **Replay the window the baselines remember** — `periods_kept` periods plus one slot (a
//!   week and an hour at a 60 s interval) — through [`Engine::learn`], in start-time order.
//!   Without it a restarted coordinator could not call a latency anomaly for a day (the
//!   seasonal baseline would be empty) and would be fully calibrated only after a week.
//!   Rebuilding from raw results rather than snapshotting the baselines keeps one source of
//!   truth: the same results, the same baselines, whatever build wrote them.
//! - **Leave out what live detection would not have learnt**: burst runs (the query skips
//!   them), results inside a stored incident's span for its regions and targets (onset to
//!   resolution; an incident a crash left open counts until the restart), and a
//!   probe-fault's probe during its span. Region-silent and clock-skew spans do not exclude:
//!   the samples themselves were sound.
//! - **On the detection thread, before its first tick**: the service accepts probes at once;
//!   what arrives meanwhile waits in the detection inbox and is fed, live, after the replay.
//!   The replay takes what was received before this run began, so nothing is learnt twice.
//! - **Failures are not fatal**: a replay that cannot read the store logs a warning and the
//!   engine starts cold, as it would on a new coordinator.

use meridian_shared::result::CheckResult;

use crate::detect::{Class, Engine};
use crate::store::incidents::IncidentRecord;
use crate::store::{Store, StoreError};

/// What a replay did, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Replayed {
    /// Results taught to the baselines.
    pub learnt: u64,
    /// Results left out because they fell inside an incident.
    pub excluded: u64,
    /// Stored records this build could not decode.
    pub undecodable: u64,
    /// Start of the replayed window, Unix ms.
    pub since_ms: i64,
}

/// A span of history that live detection would not have learnt from.
#[derive(Debug, Clone, PartialEq)]
struct Exclusion {
    from_ms: i64,
    to_ms: i64,
    /// Site incidents: the regions and targets it covered.
    regions: Vec<String>,
    targets: Vec<String>,
    /// Probe faults: the probe.
    probe: Option<String>,
}

impl Exclusion {
    /// The span an incident excludes, if any. `now_ms` ends an incident still open.
    fn of(incident: &IncidentRecord, now_ms: i64) -> Option<Exclusion> {
        let class = Class::parse(&incident.class)?;
        let probe = match class {
            Class::ProbeFault => Some(incident.probe.clone()?),
            Class::RegionSilent | Class::ClockSkew => return None,
            _ => None,
        };
        Some(Exclusion {
            from_ms: incident.onset_ms,
            to_ms: incident.resolved_ms.unwrap_or(now_ms),
            regions: incident.regions.clone(),
            targets: incident.targets.clone(),
            probe,
        })
    }

    fn covers(&self, r: &CheckResult) -> bool {
        if r.started_ms < self.from_ms || r.started_ms > self.to_ms {
            return false;
        }
        match &self.probe {
            Some(probe) => *probe == r.probe_id,
            None => {
                self.regions.contains(&r.region)
                    && self.targets.iter().any(|x| x == r.check_id.as_str())
            }
        }
    }
}

/// How far back the engine's baselines remember, ms.
pub(super) fn window_ms(engine: &Engine) -> i64 {
    let p = engine.params();
    let slots = i64::try_from(p.slots_per_period.saturating_mul(p.periods_kept)).unwrap_or(0);
    p.slot_ms.saturating_mul(slots.saturating_add(1))
}

/// Replays what `reader` holds of the baseline window before `began_ms` (results received
/// before then) into `engine`.
pub(super) fn replay(
    engine: &mut Engine,
    reader: &Store,
    began_ms: i64,
) -> Result<Replayed, StoreError> {
    let since_ms = began_ms.saturating_sub(window_ms(engine));
    let exclusions: Vec<Exclusion> = reader
        .incidents(false)?
        .iter()
        .filter(|i| i.resolved_ms.is_none_or(|r| r >= since_ms))
        .filter_map(|i| Exclusion::of(i, began_ms))
        .collect();
    let mut replayed = Replayed {
        since_ms,
        ..Replayed::default()
    };
    let stats = reader.scheduled_history(since_ms, began_ms, |result| {
        if exclusions.iter().any(|x| x.covers(&result)) {
            replayed.excluded += 1;
        } else {
            replayed.learnt += 1;
            engine.learn(&result);
        }
    })?;
    replayed.undecodable = stats.undecodable;
    Ok(replayed)
}

#[cfg(test)]
mod tests;
