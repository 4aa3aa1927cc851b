//! Seasonal baselines: what a metric usually is at this time of day, robustly.
//!
//! Time is cut into slots (an hour at a 60 s interval) and slots into periods (a day). Each
//! completed slot leaves a summary — the median and MAD of its samples — in the history of its
//! slot-of-period, which keeps the last few periods (a week). The estimate for a time `t` is
//! the median of the summaries of `t`'s slot-of-period from previous periods: the Cloudflare
//! Radar "same hour on similar days" idea, and a *frozen* reference, because today's samples
//! cannot move the slot they are judged against (a slow drift stays visible to the change-point
//! test instead of being learnt). When that slot has no history yet, the last completed slots
//! of any hour stand in (marked non-seasonal); with neither, there is no estimate and the
//! detectors say "warming up" instead of guessing.
//!
//! Memory: per metric a few hundred bytes of summaries plus up to [`SLOT_SAMPLES`] raw values
//! of the open slot.

use std::collections::VecDeque;

use super::Params;

/// Raw values kept for the open slot; beyond this, newer values overwrite older ones in turn.
pub const SLOT_SAMPLES: usize = 64;

/// Completed slots of any hour kept for the non-seasonal fallback.
const RECENT_SLOTS: usize = 6;

/// A slot needs this many samples to leave a summary.
const MIN_SLOT_SAMPLES: usize = 3;

/// 1.4826 · MAD estimates the standard deviation of normal data.
const MAD_TO_SIGMA: f64 = 1.4826;

/// What a metric usually is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Median, ms.
    pub median: f64,
    /// Robust standard deviation (1.4826 · MAD), ms; at least 1 % of the median and 0.1 ms so
    /// that a perfectly quiet history does not make every wobble an anomaly.
    pub sigma: f64,
    /// Whether it comes from the same slot of previous periods (else: recent slots).
    pub seasonal: bool,
}

#[derive(Debug, Clone, Copy)]
struct Summary {
    /// Absolute slot number (`t / slot_ms`).
    slot: i64,
    median: f32,
    mad: f32,
}

/// The baseline of one metric of one (target, probe).
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// Per slot-of-period, the summaries of previous periods, oldest first.
    seasonal: Vec<VecDeque<Summary>>,
    /// The last completed slots of any hour, oldest first.
    recent: VecDeque<Summary>,
    /// The open slot and its values.
    open_slot: Option<i64>,
    values: Vec<f32>,
    /// Values seen in the open slot (may exceed `values.len()`).
    seen: usize,
    /// Bumped whenever a slot closes: what the cache was computed from changed.
    version: u32,
    /// The estimates for the slot last asked about, so that a sample costs an interpolation
    /// instead of sorting summaries.
    cache: Option<Cached>,
}

/// Estimates around one slot, valid for one `version` of the summaries.
#[derive(Debug, Clone, Copy)]
struct Cached {
    slot: i64,
    version: u32,
    here: Option<Estimate>,
    prev: Option<Estimate>,
    next: Option<Estimate>,
    recent: Option<Estimate>,
}

impl Baseline {
    /// Learn one value taken at `t_ms`. Values older than the open slot (late data) are not
    /// learnt: their slot is closed.
    pub fn learn(&mut self, t_ms: i64, value: f64, p: &Params) {
        let slot = t_ms.div_euclid(p.slot_ms);
        match self.open_slot {
            Some(open) if slot < open => return,
            Some(open) if slot > open => {
                self.close(open, p);
                self.open_slot = Some(slot);
            }
            Some(_) => {}
            None => self.open_slot = Some(slot),
        }
        let v = value as f32;
        if self.values.len() < SLOT_SAMPLES {
            self.values.push(v);
        } else {
            self.values[self.seen % SLOT_SAMPLES] = v;
        }
        self.seen += 1;
    }

    fn close(&mut self, slot: i64, p: &Params) {
        let n = self.values.len();
        if n >= MIN_SLOT_SAMPLES {
            let median = median_f32(&mut self.values);
            let mut dev: Vec<f32> = self.values.iter().map(|v| (v - median).abs()).collect();
            let mad = median_f32(&mut dev);
            let s = Summary { slot, median, mad };
            if self.seasonal.len() != p.slots_per_period {
                self.seasonal = vec![VecDeque::new(); p.slots_per_period];
            }
            let idx = slot_of_period(slot, p);
            let hist = &mut self.seasonal[idx];
            hist.push_back(s);
            while hist.len() > p.periods_kept.max(1) {
                hist.pop_front();
            }
            self.recent.push_back(s);
            while self.recent.len() > RECENT_SLOTS {
                self.recent.pop_front();
            }
        }
        self.version = self.version.wrapping_add(1);
        self.values.clear();
        self.seen = 0;
    }

    /// What the metric usually is at `t_ms`, or `None` while warming up.
    ///
    /// Seasonal estimates are interpolated linearly between the centres of `t`'s slot and
    /// the nearer neighbouring slot, so a daily swing does not read as a step at every slot
    /// boundary (nor as a drift within a slot).
    pub fn estimate(&self, t_ms: i64, p: &Params) -> Option<Estimate> {
        let slot = t_ms.div_euclid(p.slot_ms);
        interpolate(&self.around(slot, p), t_ms, p)
    }

    /// [`Baseline::estimate`], remembering the work for the next sample of the same slot.
    pub fn estimate_cached(&mut self, t_ms: i64, p: &Params) -> Option<Estimate> {
        let slot = t_ms.div_euclid(p.slot_ms);
        let cached = match self.cache {
            Some(c) if c.slot == slot && c.version == self.version => c,
            _ => {
                let c = self.around(slot, p);
                self.cache = Some(c);
                c
            }
        };
        interpolate(&cached, t_ms, p)
    }

    fn around(&self, slot: i64, p: &Params) -> Cached {
        Cached {
            slot,
            version: self.version,
            here: self.seasonal_at(slot, slot, p),
            prev: self.seasonal_at(slot - 1, slot, p),
            next: self.seasonal_at(slot + 1, slot, p),
            recent: (!self.recent.is_empty())
                .then(|| summarise(self.recent.iter().copied(), false)),
        }
    }

    /// The seasonal estimate for slot `slot` from summaries older than slot `before`.
    fn seasonal_at(&self, slot: i64, before: i64, p: &Params) -> Option<Estimate> {
        let hist = self.seasonal.get(slot_of_period(slot, p))?;
        let from: Vec<Summary> = hist.iter().filter(|s| s.slot < before).copied().collect();
        (!from.is_empty()).then(|| summarise(from.into_iter(), true))
    }
}

fn interpolate(c: &Cached, t_ms: i64, p: &Params) -> Option<Estimate> {
    let Some(here) = c.here else { return c.recent };
    let pos = t_ms.rem_euclid(p.slot_ms) as f64 / p.slot_ms as f64;
    let neighbour = if pos < 0.5 { c.prev } else { c.next };
    let w = (pos - 0.5).abs();
    Some(match neighbour {
        Some(nb) => Estimate {
            median: (1.0 - w) * here.median + w * nb.median,
            sigma: (1.0 - w) * here.sigma + w * nb.sigma,
            seasonal: true,
        },
        None => here,
    })
}

fn summarise(from: impl Iterator<Item = Summary>, seasonal: bool) -> Estimate {
    let (mut medians, mut mads): (Vec<f32>, Vec<f32>) = from.map(|s| (s.median, s.mad)).unzip();
    let median = f64::from(median_f32(&mut medians));
    let sigma = (f64::from(median_f32(&mut mads)) * MAD_TO_SIGMA)
        .max(0.01 * median)
        .max(0.1);
    Estimate {
        median,
        sigma,
        seasonal,
    }
}

fn slot_of_period(slot: i64, p: &Params) -> usize {
    let n = i64::try_from(p.slots_per_period.max(1)).unwrap_or(i64::MAX);
    usize::try_from(slot.rem_euclid(n)).unwrap_or(0)
}

/// Median of a non-empty slice (reorders it); 0 for an empty one.
fn median_f32(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    let upper = *m;
    if v.len() % 2 == 1 {
        upper
    } else {
        let lower = v[..mid].iter().copied().fold(f32::MIN, f32::max);
        (lower + upper) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Params {
        Params::for_interval(60_000)
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn warming_until_a_slot_completes_then_recent_then_seasonal() {
        let p = p();
        let mut b = Baseline::default();
        for i in 0..60 {
            b.learn(i * 60_000, 50.0 + (i % 3) as f64, &p);
        }
        assert_eq!(
            b.estimate(30 * 60_000, &p),
            None,
            "the open slot does not judge itself"
        );
        b.learn(HOUR, 50.0, &p);
        let e = b.estimate(HOUR + 1, &p).expect("one completed slot");
        assert!(!e.seasonal);
        assert!((e.median - 51.0).abs() < 0.01, "{e:?}");
        // A day later the same hour has seasonal history.
        let e = b.estimate(24 * HOUR + 60_000, &p).expect("seasonal");
        assert!(e.seasonal);
    }

    #[test]
    fn same_hour_of_previous_days_not_today() {
        let p = p();
        let mut b = Baseline::default();
        // Day 0: 10 ms at 00:00-01:00, 100 ms at 01:00-02:00.
        for i in 0..120 {
            let v = if i < 60 { 10.0 } else { 100.0 };
            b.learn(i * 60_000, v, &p);
        }
        b.learn(2 * HOUR, 5.0, &p);
        let e = b
            .estimate(24 * HOUR + 30 * 60_000, &p)
            .expect("day 1, 00:30");
        assert!((e.median - 10.0).abs() < 0.01);
        let e = b
            .estimate(25 * HOUR + 30 * 60_000, &p)
            .expect("day 1, 01:30");
        assert!((e.median - 100.0).abs() < 0.01);
    }

    #[test]
    fn late_values_for_closed_slots_are_not_learnt() {
        let p = p();
        let mut b = Baseline::default();
        for i in 0..61 {
            b.learn(i * 60_000, 20.0, &p);
        }
        for _ in 0..50 {
            b.learn(10 * 60_000, 500.0, &p);
        }
        b.learn(2 * HOUR, 20.0, &p);
        let e = b.estimate(2 * HOUR + 1, &p).expect("estimate");
        assert!((e.median - 20.0).abs() < 0.01, "{e:?}");
    }

    #[test]
    fn sigma_has_a_floor() {
        let p = p();
        let mut b = Baseline::default();
        for i in 0..61 {
            b.learn(i * 60_000, 100.0, &p);
        }
        let e = b.estimate(HOUR + 1, &p).expect("estimate");
        assert!((e.sigma - 1.0).abs() < 1e-9, "1 % of 100 ms: {e:?}");
    }
}
