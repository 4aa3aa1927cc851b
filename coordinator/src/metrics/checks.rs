//! Per-(check, region) latency histograms and failure counts, fed by the store thread with
//! every result a group commit newly stored, and encoded at scrape time.
//!
//! # Decisions
//! - **Fed where results are newly stored** (`service::store_thread`, after the commit): a
//!   batch re-sent after a lost acknowledgement is not counted twice, and a refused result is
//!   never counted at all (it shows in `meridian_ingest_results_total{outcome="rejected"}`).
//! - **The rollups' rules** (`store::rollup`): the same six phases by the same names, a zero
//!   ("did not apply": no TLS on plain HTTP, no DNS for an IP literal) not observed, burst
//!   runs left out. A failed run's phases up to the failure and its `total` are observed, as
//!   the rollups do, so the histograms and the map's quantiles describe the same samples;
//!   the failures themselves are counted by class.
//! - **Cheap on the store thread**: one read-locked lookup per result (by `&str`, no
//!   allocation once a (check, region) has been seen), then one histogram observation per
//!   measured phase. Series are created lazily: a phase that never applies to a check (TLS
//!   of a plain-HTTP check, everything but `dns` and `total` of a DNS check) has none.
//! - **`target` is resolved at scrape time** from the check-to-target map the service keeps
//!   current ([`CheckMetrics::set_targets`]); a check no configuration names any more keeps
//!   the target it last had.
//!
//! Cardinality is bounded by the configuration: at most checks × their regions × 6 phases
//! histograms of [`BUCKETS`]`.len() + 3` series each, plus checks × regions × error classes
//! (15) failure counters, only for pairs that stored a result since start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use meridian_shared::result::CheckResult;
use meridian_shared::wire::SequencedResult;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;

use crate::config::CoordinatorConfig;
use crate::store::rollup::PHASES;

/// Histogram bucket bounds, seconds: 5 ms to 10 s, finer between 50 and 300 ms where
/// intercontinental round trips and their changes live (`histogram_quantile` interpolates
/// linearly inside a bucket).
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One (check, region): a histogram per phase (created on first use) and failures by class.
#[derive(Debug, Default)]
struct Series {
    /// By index into [`PHASES`].
    phases: [OnceLock<Histogram>; 6],
    /// Failed results by error class (kebab-case), in first-seen order.
    failures: Mutex<Vec<(&'static str, u64)>>,
}

impl Series {
    fn observe(&self, r: &CheckResult) {
        let p = r.phases;
        let values = [p.dns, p.connect, p.tls, p.ttfb, p.transfer, Some(p.total)];
        for (slot, us) in self.phases.iter().zip(values) {
            if let Some(us) = us.filter(|&us| us > 0) {
                slot.get_or_init(|| Histogram::new(BUCKETS))
                    .observe(us as f64 / 1e6);
            }
        }
        if let Some(e) = &r.error {
            let class = e.class.as_str();
            let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
            match failures.iter_mut().find(|(c, _)| *c == class) {
                Some((_, n)) => *n += 1,
                None => failures.push((class, 1)),
            }
        }
    }
}

/// Series by check id, then region.
type ByCheck = HashMap<String, HashMap<String, Arc<Series>>>;

/// The check histograms and failure counters; shared by the service (which feeds it) and the
/// scrape (which encodes it as a [`Collector`]).
#[derive(Debug, Default)]
pub struct CheckMetrics {
    /// The series.
    series: RwLock<ByCheck>,
    /// Check id → target id, from every configuration put in force since start.
    targets: RwLock<HashMap<String, String>>,
}

impl CheckMetrics {
    /// Learns which target each of `config`'s checks belongs to (at start and every reload);
    /// checks it no longer names keep their last target.
    pub fn set_targets(&self, config: &CoordinatorConfig) {
        let mut targets = self.targets.write().unwrap_or_else(PoisonError::into_inner);
        for t in &config.targets {
            for c in &t.checks {
                targets.insert(c.id.as_str().to_owned(), t.id.clone());
            }
        }
    }

    /// Observes results newly stored under the authenticated `region`; burst runs are left
    /// out (see the module docs).
    pub fn observe<'a>(
        &self,
        region: &str,
        records: impl IntoIterator<Item = &'a SequencedResult>,
    ) {
        for r in records.into_iter().filter(|r| r.burst.is_none()) {
            self.series_of(r.result.check_id.as_str(), region)
                .observe(&r.result);
        }
    }

    /// The series of (check, region), created on first use.
    fn series_of(&self, check: &str, region: &str) -> Arc<Series> {
        if let Some(s) = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(check)
            .and_then(|regions| regions.get(region))
        {
            return s.clone();
        }
        self.series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(check.to_owned())
            .or_default()
            .entry(region.to_owned())
            .or_default()
            .clone()
    }

    /// Every (target, check, region, series), sorted by check then region, so that the
    /// exposition is stable from one scrape to the next.
    fn snapshot(&self) -> Vec<(String, String, String, Arc<Series>)> {
        let targets = self.targets.read().unwrap_or_else(PoisonError::into_inner);
        let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = series
            .iter()
            .flat_map(|(check, regions)| {
                let target = targets.get(check).cloned().unwrap_or_default();
                regions.iter().map(move |(region, s)| {
                    (target.clone(), check.clone(), region.clone(), s.clone())
                })
            })
            .collect();
        all.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
        all
    }
}

/// The phase histogram family's name, before its unit.
const PHASE_FAMILY: &str = "meridian_check_phase_duration";
/// The failure counter family's name, before `_total`.
const FAILURE_FAMILY: &str = "meridian_check_failures";

impl Collector for CheckMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let all = self.snapshot();
        {
            let mut family = encoder.encode_descriptor(
                PHASE_FAMILY,
                "Each phase of the checks' scheduled runs as stored, by target, check, region \
                 and phase (dns, connect, tls, ttfb, transfer, total; phases that did not apply \
                 are not observed).",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (target, check, region, s) in &all {
                for (phase, h) in PHASES.iter().zip(&s.phases) {
                    if let Some(h) = h.get() {
                        let labels = [
                            ("target", target.as_str()),
                            ("check", check.as_str()),
                            ("region", region.as_str()),
                            ("phase", phase),
                        ];
                        h.encode(family.encode_family(&labels)?)?;
                    }
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            FAILURE_FAMILY,
            "Failed scheduled runs as stored, by target, check, region and error class.",
            None,
            MetricType::Counter,
        )?;
        for (target, check, region, s) in &all {
            let failures = s
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            for (class, n) in failures {
                let labels = [
                    ("target", target.as_str()),
                    ("check", check.as_str()),
                    ("region", region.as_str()),
                    ("class", class),
                ];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
