//! One (target, probe)'s state: its baselines and loss rate, its latest judged samples, the
//! connect trials of the loss window, and the verdict over its fresh samples.
//!
//! Samples and trials are kept in time order (they nearly always arrive in it: appending is
//! the common case) and walked from the newest end.

use std::collections::VecDeque;

use crate::detect::Params;
use crate::detect::baseline::{Baseline, Estimate};
use crate::detect::evaluate::Judged;
use crate::detect::sample::{Metric, Verdict};
use crate::detect::slow::LossRate;

/// Judged samples kept per (target, probe): enough for the freshness window with bursts.
const KEEP_SAMPLES: usize = 24;

/// Verdict of a probe: the majority over its last few fresh samples.
const VERDICT_SAMPLES: usize = 3;

/// Connect trials kept per (target, probe) at most, whatever their age.
const KEEP_TRIALS: usize = 256;

/// The state of one (target, probe).
#[derive(Debug, Default)]
pub(super) struct Track {
    /// Per metric, what it usually is.
    pub(super) base: [Baseline; 4],
    /// The probe's usual retransmission rate.
    pub(super) loss: LossRate,
    /// The latest judged samples, in time order.
    pub(super) recent: VecDeque<Judged>,
    /// Connect trials of the loss window, `(time, retransmitted)` in time order: kept apart
    /// from `recent` because loss trains bring more samples than it keeps.
    trials: VecDeque<(i64, bool)>,
    /// The first bad sample of the current bad streak.
    pub(super) streak_start: Option<i64>,
    /// The CDN edge that served its latest sample that named one.
    pub(super) edge: Option<String>,
}

impl Track {
    pub(super) fn estimates(&mut self, t: i64, p: &Params) -> [Option<Estimate>; 4] {
        Metric::ALL.map(|m| self.base[m as usize].estimate_cached(t, p))
    }

    /// Keeps a judged sample in time order; returns the time and round-trip z-score of the
    /// newest scheduled sample (neither burst nor late) now kept.
    pub(super) fn insert(&mut self, j: Judged) -> Option<(i64, Option<f64>)> {
        // Samples nearly always arrive in time order: appending is the common case.
        if self.recent.back().is_none_or(|x| x.t <= j.t) {
            self.recent.push_back(j);
        } else {
            let at = self.recent.partition_point(|x| x.t <= j.t);
            self.recent.insert(at, j);
        }
        while self.recent.len() > KEEP_SAMPLES {
            self.recent.pop_front();
        }
        self.recent
            .iter()
            .rev()
            .find(|j| !j.burst && !j.late)
            .map(|j| (j.t, j.z[0]))
    }

    /// Counts a connect trial taken at `t`; trials older than `window` before the newest are
    /// forgotten.
    pub(super) fn trial(&mut self, t: i64, retransmitted: bool, window: i64) {
        if self.trials.back().is_none_or(|x| x.0 <= t) {
            self.trials.push_back((t, retransmitted));
        } else {
            let at = self.trials.partition_point(|x| x.0 <= t);
            self.trials.insert(at, (t, retransmitted));
        }
        let newest = self.trials.back().map_or(t, |x| x.0);
        while self
            .trials
            .front()
            .is_some_and(|x| x.0 <= newest - window || self.trials.len() > KEEP_TRIALS)
        {
            self.trials.pop_front();
        }
    }

    /// The round-trip z-score of the newest scheduled sample (neither burst nor late) taken
    /// in `(since, now]`; `None` when that sample has none or there is no such sample.
    pub(super) fn scheduled_z(&self, now: i64, since: i64) -> Option<f64> {
        self.recent
            .iter()
            .rev()
            .skip_while(|j| j.t > now)
            .take_while(|j| j.t > since)
            .find(|j| !j.burst && !j.late)
            .and_then(|j| j.z[0])
    }

    /// The verdict over fresh samples (`since < t ≤ now`); `None` without any.
    pub(super) fn verdict(&self, now: i64, since: i64) -> Option<(Verdict, Option<&Judged>)> {
        // `recent` is sorted by time: walk back from `now` and stop at `since`. At most
        // VERDICT_SAMPLES of them, newest first, on the stack: this runs for every probe of
        // every region evaluated.
        let mut fresh: [Option<&Judged>; VERDICT_SAMPLES] = [None; VERDICT_SAMPLES];
        let mut n = 0;
        for j in self
            .recent
            .iter()
            .rev()
            .skip_while(|j| j.t > now)
            .take_while(|j| j.t > since)
            .filter(|j| !j.late)
            .take(VERDICT_SAMPLES)
        {
            fresh[n] = Some(j);
            n += 1;
        }
        let fresh = || fresh.iter().flatten().copied();
        if n == 0 {
            return None;
        }
        let bad = fresh().filter(|j| j.verdict.is_bad()).count();
        if bad * 2 > n {
            // The most common bad verdict; ties to the harder one.
            let count = |v: Verdict| fresh().filter(|j| j.verdict == v).count();
            let v = fresh()
                .map(|j| j.verdict)
                .filter(|v| v.is_bad())
                .max_by(|a, b| count(*a).cmp(&count(*b)).then(a.cmp(b)))
                .unwrap_or(Verdict::Ok);
            // Evidence comes from the latest sample that shows the verdict.
            Some((v, fresh().find(|j| j.verdict == v)))
        } else {
            Some((Verdict::Ok, fresh().find(|j| !j.verdict.is_bad())))
        }
    }
}

impl Track {
    /// Connects, retransmitted connects and the earliest retransmission among the trials
    /// taken in `(since, now]`.
    pub(super) fn trials_since(&self, now: i64, since: i64) -> (u64, u64, Option<i64>) {
        let (mut connects, mut retransmits, mut first) = (0, 0, None);
        for &(t, retransmitted) in self
            .trials
            .iter()
            .rev()
            .skip_while(|x| x.0 > now)
            .take_while(|x| x.0 > since)
        {
            connects += 1;
            if retransmitted {
                retransmits += 1;
                first = Some(t); // walking back: ends at the earliest
            }
        }
        (connects, retransmits, first)
    }

    /// Bad samples kept since the current bad streak began (0 without one).
    pub(super) fn streak_samples(&self) -> usize {
        self.streak_start.map_or(0, |start| {
            self.recent
                .iter()
                .filter(|j| j.t >= start && j.verdict.is_bad())
                .count()
        })
    }
}

/// How far back connect trials count toward the pooled loss test, ms: one and a half
/// freshness windows (about two loss trains while loss goes on), so that loss keeps a region
/// confirmed between trains, and one stopped leaves the test soon enough for the incident to
/// resolve within three intervals of its end.
pub(super) fn loss_window(p: &Params) -> i64 {
    p.fresh_ms * 3 / 2
}
