//! A clean history for the live system's seasonal baselines, made of what the emulated WAN
//! really gives: each probe's own calibration runs (real checks through the emulator, stored
//! by the coordinator) replayed into the past at that probe's own schedule, and written where
//! an hour of running would have left them: the probe's spool (so its sequence numbers go on
//! from there) and the coordinator's store, through its normal ingest.
//!
//! The coordinator judges latency only against earlier periods of the same slot (a period is
//! 48 min at a 2 s interval), so without history it would spend the whole test "warming up";
//! its warm start replays the stored history into the engine when it starts.
//!
//! Runs only while the probes and the coordinator are stopped (the spool and the store are
//! theirs). Deliberately absent: any value not measured on the emulated network.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use meridian_coordinator::store::{ProbeBatch, Store};
use meridian_probe::spool::{Spool, SpoolConfig};
use meridian_probe::uplink::SpooledResult;
use meridian_shared::result::CheckResult;
use meridian_shared::wire::SequencedResult;

use super::system::{CURSOR, System, wall_ms};

/// One probe's history as written: sequence numbers and results, oldest first.
type Written = Vec<(u64, CheckResult)>;

/// One probe as the seeding needs it.
struct Seeded {
    id: String,
    region: String,
    spool_dir: PathBuf,
}

/// Writes `history` of runs per probe and check, ending where its calibration runs begin.
/// Returns how many results were written.
pub async fn seed(sys: &System, history: Duration) -> anyhow::Result<u64> {
    let probes: Vec<Seeded> = sys
        .probes()
        .iter()
        .map(|p| Seeded {
            id: p.id.clone(),
            region: p.host.site.clone(),
            spool_dir: p.state_dir().join("spool"),
        })
        .collect();
    let data_dir = sys.data_dir().to_path_buf();
    let interval_ms = i64::try_from(sys.interval().as_millis())?;
    let runs = usize::try_from(history.as_millis() / sys.interval().as_millis().max(1))?;
    // One store transaction per baseline slot of history, as if each slot's results arrived
    // when it ended.
    let window_ms = interval_ms * 60;
    tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let mut store = Store::open(&data_dir)?;
        let mut all: Vec<(String, String, Written)> = Vec::new();
        for p in &probes {
            let mut spool = Spool::open(&p.spool_dir, &[CURSOR], SpoolConfig::default())
                .with_context(|| format!("opening {}", p.spool_dir.display()))?;
            deliver_unacked(&mut store, &mut spool, p)?;
            let measured = measured(&store, &p.id)?;
            let mut past: Vec<CheckResult> = Vec::new();
            for samples in measured.values() {
                let first = samples
                    .iter()
                    .map(|r| r.scheduled_ms)
                    .min()
                    .context("a check without calibration runs")?;
                for k in 1..=runs {
                    let sample = &samples[(k - 1) % samples.len()];
                    let mut r = sample.clone();
                    r.scheduled_ms = first - i64::try_from(k)? * interval_ms;
                    r.started_ms = r.scheduled_ms + (sample.started_ms - sample.scheduled_ms);
                    past.push(r);
                }
            }
            past.sort_by_key(|r| r.started_ms);
            let mut written = Vec::with_capacity(past.len());
            for result in past {
                let record = SpooledResult {
                    result,
                    burst: None,
                };
                let payload = record.encode().context("encoding a history record")?;
                let seq = spool.append(&payload, at(record.result.started_ms))?;
                written.push((seq, record.result));
            }
            spool.sync()?;
            if let Some((newest, _)) = written.last() {
                // Delivered already: the probe must not send its history again.
                spool.ack(CURSOR, *newest)?;
            }
            all.push((p.id.clone(), p.region.clone(), written));
        }
        let from = all
            .iter()
            .filter_map(|(_, _, w)| w.first().map(|(_, r)| r.started_ms))
            .min()
            .unwrap_or(0);
        let to = all
            .iter()
            .filter_map(|(_, _, w)| w.last().map(|(_, r)| r.started_ms))
            .max()
            .unwrap_or(0);
        let mut total = 0u64;
        let mut start = from;
        while start <= to {
            let end = start + window_ms;
            let slices: Vec<&[(u64, CheckResult)]> = all
                .iter()
                .map(|(_, _, w)| {
                    let lo = w.partition_point(|(_, r)| r.started_ms < start);
                    let hi = w.partition_point(|(_, r)| r.started_ms < end);
                    &w[lo..hi]
                })
                .collect();
            let batches: Vec<ProbeBatch<'_>> = all
                .iter()
                .zip(&slices)
                .map(|((id, region, _), s)| (id.as_str(), region.as_str(), *s))
                .collect();
            let ingested = store.ingest_many(&batches, end)?;
            total += ingested.iter().map(|i| i.stored as u64).sum::<u64>();
            start = end;
        }
        Ok(total)
    })
    .await?
}

/// Stores what the probe spooled but the coordinator did not acknowledge before it stopped,
/// as the probe's next connection would have: acknowledging the history must not skip them.
fn deliver_unacked(store: &mut Store, spool: &mut Spool, p: &Seeded) -> anyhow::Result<()> {
    let records = spool.read_from(CURSOR, usize::MAX, usize::MAX)?;
    let batch: Vec<SequencedResult> = records
        .iter()
        .map(|r| {
            let s = SpooledResult::decode(&r.payload).context("decoding a spooled record")?;
            Ok(SequencedResult {
                seq: r.seq,
                result: s.result,
                burst: s.burst,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    if !batch.is_empty() {
        store.ingest(&p.id, &p.region, &batch, wall_ms())?;
    }
    Ok(())
}

/// The probe's stored scheduled runs that passed, per check, oldest first.
fn measured(store: &Store, probe_id: &str) -> anyhow::Result<BTreeMap<String, Vec<CheckResult>>> {
    let mut out: BTreeMap<String, Vec<CheckResult>> = BTreeMap::new();
    for r in store.sequenced_results(probe_id)? {
        if r.burst.is_none() && r.result.passed() {
            out.entry(r.result.check_id.to_string())
                .or_default()
                .push(r.result);
        }
    }
    for runs in out.values_mut() {
        runs.sort_by_key(|r| r.started_ms);
    }
    anyhow::ensure!(
        !out.is_empty(),
        "probe {probe_id} has no passing calibration run"
    );
    Ok(out)
}

/// Unix ms as a `SystemTime`.
fn at(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs())
}
