//! Per-minute rollups: for every (check, region, phase, minute), a DDSketch of the phase's
//! durations. DDSketch answers any quantile within 1 % relative error and merges exactly, so
//! minutes add up to hours or months and probes add up to regions without keeping samples;
//! this is what lets p50/p90/p99 live for 400 days while raw results live for 14.
//!
//! Sketches are stored in DDSketch's portable (Java-compatible) binary encoding. A phase value
//! of zero ("did not apply": no TLS on plain HTTP, no DNS for an IP literal) is not recorded.
//!
//! Only scheduled runs are rolled up; burst runs are not (ingest never hands them to
//! [`Pending::add`]). Decision: scheduled runs sample every minute at the same rate, which is
//! what makes a minute's quantiles comparable with the next; a burst adds up to 255 extra
//! samples exactly when something already looked wrong, so counting them would pull the
//! quantiles of incident minutes towards the failing runs and weigh incidents more than calm
//! periods in any merged range. Burst results stay in `results` with their `burst_id` for
//! detection and for as long as raw results are kept.

use std::collections::BTreeMap;

use meridian_shared::result::CheckResult;
use rusqlite::{OptionalExtension, Transaction, params};
use sketches_ddsketch::{Config, DDSketch};

/// The phases rolled up, by the names used in the table and the API.
pub const PHASES: [&str; 6] = ["dns", "connect", "tls", "ttfb", "transfer", "total"];

/// One minute of one phase, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteSummary {
    /// Start of the minute, Unix ms.
    pub minute_ms: i64,
    /// Samples in it.
    pub count: u64,
    /// Median, microseconds.
    pub p50_us: f64,
    /// 90th percentile, microseconds.
    pub p90_us: f64,
    /// 95th percentile, microseconds.
    pub p95_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
}

/// The sketch every rollup uses (1 % relative accuracy); merging needs one configuration.
pub fn new_sketch() -> DDSketch {
    DDSketch::new(Config::defaults())
}

/// Sketches of one (check, region), by (phase index into [`PHASES`], minute).
type Minutes = BTreeMap<(usize, i64), DDSketch>;

/// Sketches being built for one ingest transaction, merged into the table at the end.
///
/// Keyed check → region → (phase, minute), so adding a result looks strings up by reference
/// and allocates only when a (check, region) first appears in the transaction.
#[derive(Default)]
pub struct Pending(BTreeMap<String, BTreeMap<String, Minutes>>);

impl Pending {
    /// Adds one stored result's phases under the authenticated `region`.
    pub fn add(&mut self, region: &str, r: &CheckResult) {
        let minute = r.started_ms.div_euclid(60_000) * 60_000;
        let p = r.phases;
        let values = [p.dns, p.connect, p.tls, p.ttfb, p.transfer, Some(p.total)];
        let check = r.check_id.as_str();
        if !self.0.contains_key(check) {
            self.0.insert(check.to_owned(), BTreeMap::new());
        }
        let Some(regions) = self.0.get_mut(check) else {
            return;
        };
        if !regions.contains_key(region) {
            regions.insert(region.to_owned(), BTreeMap::new());
        }
        let Some(minutes) = regions.get_mut(region) else {
            return;
        };
        for (phase, v) in values.into_iter().enumerate() {
            if let Some(us) = v.filter(|&us| us > 0) {
                minutes
                    .entry((phase, minute))
                    .or_insert_with(new_sketch)
                    .add(us as f64);
            }
        }
    }

    /// Merges every pending sketch into its row, inside the caller's transaction.
    pub fn flush(self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut select =
            tx.prepare_cached("SELECT sketch FROM rollups WHERE check_id = ?1 AND region = ?2 AND phase = ?3 AND minute_ms = ?4")?;
        let mut upsert = tx.prepare_cached(
            "INSERT INTO rollups (check_id, region, phase, minute_ms, count, sketch) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (check_id, region, phase, minute_ms) DO UPDATE SET count = excluded.count, sketch = excluded.sketch",
        )?;
        for (check, regions) in self.0 {
            for (region, minutes) in regions {
                for ((phase, minute), mut sketch) in minutes {
                    let Some(phase) = PHASES.get(phase) else {
                        continue;
                    };
                    let existing: Option<Vec<u8>> = select
                        .query_row(params![check, region, phase, minute], |r| r.get(0))
                        .optional()?;
                    if let Some(old) = existing.and_then(|b| DDSketch::from_java_bytes(&b).ok()) {
                        // Same configuration on both sides, so merging cannot fail; if a row
                        // was written with another configuration, the new minute's data
                        // still lands.
                        let _ = sketch.merge(&old);
                    }
                    let count = i64::try_from(sketch.count()).unwrap_or(i64::MAX);
                    upsert.execute(params![
                        check,
                        region,
                        phase,
                        minute,
                        count,
                        sketch.to_java_bytes()
                    ])?;
                }
            }
        }
        Ok(())
    }
}

/// Quantiles of one sketch, `None` when it is empty.
pub fn summarize(minute_ms: i64, sketch: &DDSketch) -> Option<MinuteSummary> {
    let q = |q| sketch.quantile(q).ok().flatten();
    Some(MinuteSummary {
        minute_ms,
        count: sketch.count() as u64,
        p50_us: q(0.5)?,
        p90_us: q(0.9)?,
        p95_us: q(0.95)?,
        p99_us: q(0.99)?,
    })
}
