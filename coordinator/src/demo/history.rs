//! The seeded history: what the enrolled probes would have measured over the last hour or so,
//! generated in virtual time from the same world model, written where a real hour of running
//! would have left it.
//!
//! The coordinator judges latency only against a seasonal baseline (the same slot of earlier
//! periods), so a coordinator with an empty store would spend a whole period "warming up"
//! before it could call a slowdown. At start the coordinator replays its stored history into
//! the engine's baselines (warm start); this module makes that history exist, covering at
//! least one full period and a few slots, ending now.
//!
//! Each probe's runs sit at the slots its assignment gives it (rank by id within its region,
//! the scheduler's own offset arithmetic), in time order. Every record is appended to the
//! probe's own spool (so its sequence numbers continue from there when it goes live, exactly
//! as after an hour of real running) and stored in the coordinator's database through its
//! normal ingest ([`Store::ingest_many`]), one transaction per baseline slot of time.
//!
//! Deliberately absent: the network and the service. Nothing here is "received" live; the
//! results reach the engine only through the warm start.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use meridian_probe::schedule::Slot;
use meridian_probe::spool::{Spool, SpoolError};
use meridian_probe::uplink::SpooledResult;
use meridian_shared::check::CheckId;
use meridian_shared::result::CheckResult;

use super::probe::{self, SimExecutor};
use crate::store::{ProbeBatch, Store, StoreError};

/// One probe of the history.
pub struct HistoryProbe<'a> {
    /// Measures its runs (in a world whose start is the end of the history).
    pub executor: SimExecutor,
    /// Its enrolled id.
    pub probe_id: &'a str,
    /// Its region.
    pub region: &'a str,
    /// Its place in its region's stagger.
    pub slot: Slot,
    /// Its spool.
    pub spool: &'a Mutex<Spool>,
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// A probe's spool refused a record or a sync.
    #[error("spool of probe {probe_id}: {source}")]
    Spool {
        /// The probe.
        probe_id: String,
        /// What the spool said.
        #[source]
        source: SpoolError,
    },
    /// The store refused a transaction.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Generates and writes every run of `checks` by `probes` with a slot in `[from_ms, to_ms)`,
/// every `interval`; one store transaction per `window`. Returns how many results.
pub fn seed(
    store: &mut Store,
    probes: &[HistoryProbe<'_>],
    checks: &[CheckId],
    interval: Duration,
    window: Duration,
    (from_ms, to_ms): (i64, i64),
) -> Result<u64, HistoryError> {
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
    let interval_ms = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let mut total = 0u64;
    let mut start = from_ms;
    while start < to_ms {
        let end = (start + window_ms).min(to_ms);
        let mut batches: Vec<(&HistoryProbe<'_>, Vec<(u64, CheckResult)>)> = Vec::new();
        for p in probes {
            let mut runs: Vec<(i64, &CheckId)> = Vec::new();
            for check in checks {
                let mut t = probe::first_slot(start, interval, p.slot, p.probe_id, check.as_str());
                while t < end {
                    runs.push((t, check));
                    t += interval_ms;
                }
            }
            runs.sort_by_key(|(t, _)| *t);
            let records: Vec<SpooledResult> = runs
                .into_iter()
                .map(|(t, check)| SpooledResult {
                    result: p.executor.measure(check, t, t),
                    burst: None,
                })
                .collect();
            let seqs = {
                let mut spool = p.spool.lock().unwrap_or_else(PoisonError::into_inner);
                probe::append_unsynced(&mut spool, &records).map_err(|source| {
                    HistoryError::Spool {
                        probe_id: p.probe_id.to_owned(),
                        source,
                    }
                })?
            };
            let stored = seqs
                .into_iter()
                .zip(records)
                .filter_map(|(seq, r)| Some((seq?, r.result)))
                .collect();
            batches.push((p, stored));
        }
        let batches: Vec<ProbeBatch<'_>> = batches
            .iter()
            .map(|(p, results)| (p.probe_id, p.region, results.as_slice()))
            .collect();
        // As if each window's results arrived when it ended.
        let ingested = store.ingest_many(&batches, end)?;
        total += ingested.iter().map(|i| i.stored as u64).sum::<u64>();
        start = end;
    }
    for p in probes {
        let mut spool = p.spool.lock().unwrap_or_else(PoisonError::into_inner);
        spool.sync().map_err(|source| HistoryError::Spool {
            probe_id: p.probe_id.to_owned(),
            source,
        })?;
    }
    Ok(total)
}
