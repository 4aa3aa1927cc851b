//! Warm start: history teaches the baselines before the engine goes live.
//!
//! A coordinator that restarts would otherwise judge nothing for a week: latency is called
//! only against the seasonal baseline (this slot on previous periods), and that baseline is
//! rebuilt from samples. [`Engine::learn`] feeds one stored scheduled result into the
//! baselines and the loss rate of its (target, probe), exactly as [`Engine::observe`] would
//! have learnt it, and does nothing else: no judgement is recorded, no region is suspected,
//! no incident opens or amends. The caller replays history in time order and leaves out what
//! `observe` would not have learnt (burst runs, results inside incidents); see
//! `service::warm_start`.

use meridian_shared::result::CheckResult;

use super::{Engine, Track};
use crate::detect::Params;
use crate::detect::sample::{Metric, Sample, judge};

impl Engine {
    /// Learns one historical scheduled result of a known probe (unknown probes are ignored).
    /// Results must come in time order per (target, probe), and before any live result.
    pub fn learn(&mut self, result: &CheckResult) {
        let Some(slot) = self.probes.get(&result.probe_id).map(|p| p.slot) else {
            return;
        };
        let target = match self.targets.get_mut(result.check_id.as_str()) {
            Some(target) => target,
            None => self
                .targets
                .entry(result.check_id.as_str().to_string())
                .or_default(),
        };
        let track = target.tracks.get_or_default(slot);
        let sample = Sample::of(result);
        let t = result.started_ms;
        let est = track.estimates(t, &self.params);
        let seasonal = est.map(|e| e.filter(|e| e.seasonal));
        let (verdict, retransmit) = judge(&sample, &seasonal);
        if !verdict.is_hard() {
            track.learn_sample(t, &sample, retransmit, &self.params);
        }
        if let Some(edge) = sample.edge {
            track.edge = Some(edge);
        }
    }
}

impl Track {
    /// Teaches a sample that is neither a failure, nor a burst run, nor inside an incident to
    /// the baselines: every metric it measured, except a retransmitted connect's round trip
    /// and TLS (they measured the timeout), and the connect to the loss rate.
    pub(super) fn learn_sample(&mut self, t: i64, sample: &Sample, retransmit: bool, p: &Params) {
        for m in Metric::ALL {
            let timed_out = retransmit && matches!(m, Metric::Rtt | Metric::Tls);
            if let Some(v) = sample.get(m)
                && !timed_out
            {
                self.base[m as usize].learn(t, v, p);
            }
        }
        if sample.get(Metric::Rtt).is_some() {
            self.loss.learn(retransmit);
        }
    }
}
