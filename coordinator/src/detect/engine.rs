//! The [`Engine`] façade: the state the detectors share, the entry points the live
//! coordinator and the simulator call, and the evaluation pass (quorums per region, then
//! classification, probe faults, drift, silences, clocks). Per-(target, probe) state lives in
//! `track`, the probe table in `probes`, incidents' lifecycle in `lifecycle`, warm start in
//! `learn`.
//!
//! One result costs a hash lookup of its probe and an index into its target's tracks by the
//! probe's slot; nothing is cloned per result, and a result that changes no conclusion only
//! refreshes its region's freshness (see [`Engine::tick`]).

use meridian_shared::result::CheckResult;

use super::Params;
use super::incident::Incident;

/// A probe as the engine knows it: identity and region from its certificate, network from
/// GeoIP (or its config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInfo {
    /// Probe id.
    pub id: String,
    /// Region id.
    pub region: String,
    /// Autonomous system the probe's address belongs to, when known.
    pub asn: Option<u32>,
}

/// A region as the engine knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfo {
    /// Region id.
    pub id: String,
    /// Corridor tags (regions sharing one may form one regional-network incident).
    pub corridors: Vec<String>,
}

/// The monitoring network: regions and probes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    /// Every region probes may run in.
    pub regions: Vec<RegionInfo>,
    /// Every enrolled, unrevoked probe.
    pub probes: Vec<ProbeInfo>,
}

/// Run a target's check now on these probes, `runs` times each; results come back through
/// [`Engine::observe`] with `burst = true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstOrder {
    /// Probes to ask.
    pub probe_ids: Vec<String>,
    /// The check (target) to run.
    pub check_id: String,
    /// Runs per probe.
    pub runs: u8,
}

/// What the engine wants done, returned by [`Engine::tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Order a burst.
    Burst(BurstOrder),
    /// A new incident was confirmed (its id).
    Opened(u64),
    /// An incident should page now.
    Paged(u64),
    /// An incident changed scope, evidence or was amended by late data.
    Updated(u64),
    /// An incident resolved.
    Resolved(u64),
    /// A resolved incident confirmed again within the re-open window (no new page).
    Reopened(u64),
}

/// How one region looks for one target right now, for maps and status pages. A region without
/// fresh data is never `Normal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionStatus {
    /// No probe of the region has ever reported for this target.
    NoData,
    /// Data flows but baselines are still being learnt.
    Warming,
    /// Within its baseline.
    Normal,
    /// Slower than usual (confirmed).
    Degraded,
    /// Failing or unreachable (confirmed).
    Failing,
    /// Too few healthy probes with fresh data to judge (silent, quarantined, or stale).
    Unknown,
}

/// One (target, region) as the engine sees it now ([`Engine::region_cells`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionCell {
    /// The target (check id).
    pub target: String,
    /// The region.
    pub region: String,
    /// Its status.
    pub status: RegionStatus,
    /// Probes of the region in the topology.
    pub probes: usize,
    /// Of those, neither silent nor quarantined.
    pub healthy: usize,
    /// The last evaluation's evidence: medians over the judged probes (the witnesses when a
    /// fault is confirmed), each phase's baseline and change.
    pub evidence: Option<super::incident::RegionEvidence>,
}

use std::collections::{BTreeMap, BTreeSet};

use super::evaluate::{self, Finding, Judged, ProbeView, RegionEval};
use super::explain;
use super::incident::{Class, Severity};
use super::sample::{Family, Metric, Sample, Verdict, judge};
use super::slow::{Cusum, median_sd};

mod learn;
mod lifecycle;
mod probes;
mod track;

use probes::{ProbeState, ProbeTable, Tracks};
use track::{Track, loss_window};

/// Smallest round-trip drift worth a ticket, ms (or 10 % of the baseline, if larger).
const MIN_DRIFT_MS: f64 = 5.0;

#[derive(Debug, Default)]
struct TargetState {
    /// By probe slot.
    tracks: Tracks,
    evals: BTreeMap<String, RegionEval>,
    cusum: BTreeMap<String, Cusum>,
    /// Findings of the target's last classification, kept until it is re-evaluated.
    findings: Vec<Finding>,
    /// Nothing anomalous anywhere for this target at its last evaluation: an unremarkable
    /// sample then changes no conclusion, and waits for the next full pass.
    quiet: bool,
    /// As `quiet`, except that some regions may still be warming up (no baseline at all yet).
    /// There, a fine sample that has no baseline either changes no conclusion (nothing can be
    /// judged without one) and waits the same way; the first sample with a baseline is judged.
    calm: bool,
}

/// Why a (target, region) is under suspicion, which shapes its burst.
#[derive(Debug, Clone, Copy, Default)]
struct Suspicion {
    /// The signature points at the server: ask other regions too.
    server_side: bool,
    /// Retransmissions were seen: ask for a train of connects, unless `round_trip`.
    retransmits: bool,
    /// A round trip grew or a check failed: a short burst settles that, and a train would
    /// only multiply the chances of a noisy sample. (A slow TLS handshake or first byte does
    /// not count: loss inflates them by a retransmission timeout, so they come with it.)
    round_trip: bool,
}

/// Bookkeeping of an incident that is not part of what it reports.
#[derive(Debug, Default)]
struct Meta {
    last_confirmed_ms: i64,
    /// Onset of the current episode: the incident's own onset, or, once it re-opened, the
    /// re-opening finding's. Grouping by onset (corridors, silences, zones) compares with this:
    /// a fault that continues an incident is as recent as its re-opening, not its first onset.
    episode_onset_ms: i64,
    page_due_ms: Option<i64>,
    persistence_burst: bool,
    late_checks: u64,
    late_failed: u64,
    late_reported: (u64, u64),
    /// The finding's own sentence (drift, silence, probe), kept for the explanation.
    note: Option<String>,
}

/// The detection engine. See the module docs.
#[derive(Debug)]
pub struct Engine {
    params: Params,
    corridors: BTreeMap<String, Vec<String>>,
    probes: ProbeTable,
    targets: BTreeMap<String, TargetState>,
    incidents: Vec<Incident>,
    meta: Vec<Meta>,
    suspects: BTreeMap<(String, String), Suspicion>,
    last_burst: BTreeMap<(String, String), i64>,
    last_eval_ms: Option<i64>,
    last_cusum_ms: Option<i64>,
    /// Something changed since the last evaluation (a topology, a clock).
    dirty: bool,
    /// (target, regions) with new samples since the last evaluation.
    dirty_pairs: BTreeMap<String, BTreeSet<String>>,
    /// Probes per region: positions in `probes`, in id order.
    by_region: BTreeMap<String, Vec<usize>>,
    /// Probes found silent at the last full evaluation.
    silent: BTreeSet<String>,
    /// Silence and clock findings of the last full evaluation.
    op_findings: Vec<Finding>,
    pending: Vec<Action>,
}

impl Engine {
    /// An engine for this monitoring network.
    pub fn new(params: Params, topology: Topology) -> Engine {
        let mut e = Engine {
            params,
            corridors: BTreeMap::new(),
            probes: ProbeTable::default(),
            targets: BTreeMap::new(),
            incidents: Vec::new(),
            meta: Vec::new(),
            suspects: BTreeMap::new(),
            last_burst: BTreeMap::new(),
            last_eval_ms: None,
            last_cusum_ms: None,
            dirty: false,
            dirty_pairs: BTreeMap::new(),
            by_region: BTreeMap::new(),
            silent: BTreeSet::new(),
            op_findings: Vec::new(),
            pending: Vec::new(),
        };
        e.set_topology(topology);
        e
    }

    /// The parameters in force.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Replace the monitoring network (probes enrolled or revoked, regions edited). Probes
    /// that stay keep their baselines and state.
    pub fn set_topology(&mut self, topology: Topology) {
        self.corridors = topology
            .regions
            .into_iter()
            .map(|r| (r.id, r.corridors))
            .collect();
        self.probes.replace(topology.probes);
        self.by_region = BTreeMap::new();
        for (i, p) in self.probes.values().enumerate() {
            self.by_region
                .entry(p.info.region.clone())
                .or_default()
                .push(i);
        }
        self.dirty = true;
    }

    /// Every incident so far, in order of detection.
    pub fn incidents(&self) -> &[Incident] {
        &self.incidents
    }

    /// One incident by id.
    pub fn incident(&self, id: u64) -> Option<&Incident> {
        self.incidents.iter().find(|i| i.id == id)
    }

    /// A probe's heartbeat arrived at `at_ms`.
    pub fn heartbeat(&mut self, probe_id: &str, at_ms: i64) {
        if let Some(p) = self.probes.get_mut(probe_id)
            && p.last_heartbeat_ms.is_none_or(|l| l < at_ms)
        {
            p.last_heartbeat_ms = Some(at_ms);
        }
    }

    /// The latest clock-offset estimate of a probe (positive: its clock is ahead).
    pub fn clock_offset(&mut self, probe_id: &str, offset_ms: i64, at_ms: i64) {
        if let Some(p) = self.probes.get_mut(probe_id) {
            p.clock_offset_ms = offset_ms;
            if p.last_heartbeat_ms.is_none_or(|l| l < at_ms) {
                p.last_heartbeat_ms = Some(at_ms);
            }
            self.dirty = true;
        }
    }

    /// The probes of the topology in force, by id.
    pub fn probes(&self) -> impl Iterator<Item = &ProbeInfo> {
        self.probes.values().map(|p| &p.info)
    }

    /// Whether a probe is quarantined (left out of quorums).
    pub fn is_quarantined(&self, probe_id: &str) -> bool {
        self.probes.get(probe_id).is_some_and(|p| p.quarantined)
    }

    /// One stored result. `received_ms` is when the coordinator got it; results older than the
    /// freshness window are late data: judged and kept, never suspected on.
    pub fn observe(&mut self, result: &CheckResult, burst: bool, received_ms: i64) {
        // Disjoint borrows of the engine's fields: the probe (and its region) stay borrowed
        // while the target's state changes, so nothing is cloned per result.
        let Engine {
            params: p,
            probes,
            targets,
            incidents,
            meta,
            suspects,
            dirty_pairs,
            ..
        } = self;
        let Some(probe) = probes.get(&result.probe_id) else {
            return;
        };
        let region = probe.info.region.as_str();
        let tid = result.check_id.as_str();
        let in_incident = incidents.iter().any(|i| {
            i.is_open()
                && ((i.class == Class::ProbeFault && i.probe.as_deref() == Some(&result.probe_id))
                    || (!i.class.is_operational()
                        && i.regions.contains(region)
                        && i.targets.contains(tid)))
        });
        let t = (result.started_ms - probe.clock_offset_ms).min(received_ms);
        // Taken while its region was silent: whatever it says is history by now.
        let during_silence = incidents.iter().any(|i| {
            i.class == Class::RegionSilent
                && i.regions.contains(region)
                && t >= i.onset_ms - p.interval_ms
                && i.resolved_ms.is_none_or(|r| t <= r)
        });
        let healthy = !probe.quarantined;
        let sample = Sample::of(result);
        // get_mut first: the entry API would allocate the keys on every result.
        let target = match targets.get_mut(tid) {
            Some(target) => target,
            None => targets.entry(tid.to_string()).or_default(),
        };
        let track = target.tracks.get_or_default(probe.slot);
        let est = track.estimates(t, p);
        // Only a seasonal baseline (this hour on previous days) may call a latency anomaly:
        // the recent-slots fallback is a guess, and a false incident on the first day stops
        // its hours from ever being learnt (samples inside incidents teach nothing).
        let seasonal = est.map(|e| e.filter(|e| e.seasonal));
        let (verdict, retransmit) = judge(&sample, &seasonal);
        let mut j = Judged {
            t,
            verdict,
            retransmit,
            burst,
            late: during_silence || received_ms - t > p.late_after_ms,
            base: [None; 4],
            delta: [None; 4],
            z: [None; 4],
            error: sample.fail.map(|(_, c)| c.as_str()),
        };
        for m in Metric::ALL {
            let i = m as usize;
            // A retransmitted connect measured the timeout, not the round trip.
            if let (Some(v), Some(e)) = (sample.get(m), est[i])
                && !(m == Metric::Rtt && retransmit)
            {
                j.base[i] = Some(e.median);
                j.delta[i] = Some(v - e.median);
                j.z[i] = Some((v - e.median) / e.sigma);
            }
        }
        if !burst && !in_incident && !verdict.is_hard() {
            track.learn_sample(t, &sample, retransmit, p);
        }
        let new_edge = sample.edge.is_some() && sample.edge != track.edge;
        if let Some(edge) = sample.edge {
            track.edge = Some(edge);
        }
        match verdict {
            Verdict::Ok => track.streak_start = None,
            v if v.is_bad() && track.streak_start.is_none() => track.streak_start = Some(t),
            _ => {}
        }
        if j.base[0].is_some() || retransmit {
            track.trial(t, retransmit, loss_window(p));
        }
        let late = j.late;
        let unjudged = j.base[0].is_none() && j.base[3].is_none();
        let newest = track.insert(j);
        target.tracks.set_newest_scheduled(probe.slot, newest);
        if verdict == Verdict::Ok
            && !retransmit
            && !late
            && (target.quiet || target.calm)
            && let Some(e) = target.evals.get_mut(region)
            && (target.quiet || (e.warming && unjudged && !new_edge))
            && let Some(g) = e.good.iter_mut().find(|g| g.slot == probe.slot)
        {
            // Unremarkable: keep the region's freshness current without re-judging it; the
            // full pass only revisits regions whose samples stopped.
            g.latest_ms = g.latest_ms.max(t);
            e.stalest_ms = e.good.iter().map(|g| g.latest_ms).min().unwrap_or(i64::MAX);
            return;
        }
        match dirty_pairs.get_mut(tid) {
            Some(regions) => {
                if !regions.contains(region) {
                    regions.insert(region.to_string());
                }
            }
            None => {
                dirty_pairs.insert(tid.to_string(), BTreeSet::from([region.to_string()]));
            }
        }
        if late {
            amend_with_late(incidents, meta, p.interval_ms, region, t, verdict.is_hard());
        } else if healthy && ((!burst && verdict.is_bad()) || retransmit) {
            // Bad scheduled samples put the region under suspicion; retransmissions do so
            // even from bursts, so a loss train keeps going while loss keeps showing.
            let server_side = verdict.family() == Family::Server;
            let key = (tid.to_string(), region.to_string());
            let e = suspects.entry(key).or_default();
            e.server_side |= server_side;
            e.retransmits |= retransmit;
            e.round_trip |= verdict.is_bad() && verdict != Verdict::Slow;
        }
    }

    /// Advance to `now_ms`: evaluate what changed, order bursts, open, page, update and
    /// resolve incidents.
    ///
    /// Cost: new samples re-evaluate only their (target, region), and a fine sample in a
    /// target with nothing anomalous anywhere (or a region still without any baseline) only
    /// refreshes its region's freshness; every twelfth of an interval a full pass re-evaluates
    /// what can change with time alone — regions with anomalies or incidents, regions whose
    /// samples went stale, silences, clocks and the drift test.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Action> {
        let every = (self.params.interval_ms / 12).max(1);
        let full = self.dirty || self.last_eval_ms.is_none_or(|l| now_ms - l >= every);
        if full || !self.dirty_pairs.is_empty() {
            self.evaluate(now_ms, full);
            if full {
                self.last_eval_ms = Some(now_ms);
            }
            self.dirty = false;
        }
        self.order_bursts(now_ms);
        self.report_late(now_ms);
        std::mem::take(&mut self.pending)
    }

    fn is_silent(&self, p: &ProbeState, now: i64) -> bool {
        let hb = self.params.heartbeat_ms;
        p.last_heartbeat_ms
            .is_some_and(|l| now - l > 2 * hb + hb / 2)
    }

    fn healthy_probes(&self, region: &str, now: i64) -> Vec<&ProbeState> {
        self.by_region
            .get(region)
            .into_iter()
            .flatten()
            .map(|&i| self.probes.at(i))
            .filter(|p| !p.quarantined && !self.is_silent(p, now))
            .collect()
    }

    /// One region's evaluation for one target.
    fn evaluate_pair(&self, tid: &str, region: &str, now: i64) -> Option<RegionEval> {
        let fresh = self.params.fresh_ms;
        let loss_window = loss_window(&self.params);
        let target = self.targets.get(tid)?;
        // The oldest among the judged probes' newest samples.
        let mut stalest = i64::MAX;
        let views: Vec<ProbeView<'_>> = self
            .healthy_probes(region, now)
            .into_iter()
            .filter_map(|p| {
                let track = target.tracks.get(p.slot)?;
                let v = track.verdict(now, now - fresh);
                if v.is_some()
                    && let Some(j) = track.recent.back()
                {
                    stalest = stalest.min(j.t);
                }
                let (connects, retransmits, first) = track.trials_since(now, now - loss_window);
                Some(ProbeView {
                    id: &p.info.id,
                    slot: p.slot,
                    streak_samples: track.streak_samples(),
                    asn: p.info.asn,
                    verdict: v.map(|x| x.0),
                    streak_start: track.streak_start,
                    latest: v.and_then(|x| x.1),
                    connects,
                    retransmits,
                    first_retransmit: first,
                    loss_rate: track.loss.rate(),
                    edge: track.edge.as_deref(),
                })
            })
            .collect();
        let mut e = evaluate::evaluate_region(region, &views);
        e.stalest_ms = stalest;
        Some(e)
    }

    /// Whether a full pass must re-evaluate a region whose samples did not change.
    fn needs_sweep(&self, e: Option<&RegionEval>, now: i64) -> bool {
        let Some(e) = e else { return true };
        !e.bad.is_empty() || e.confirmed.is_some() || e.stalest_ms <= now - self.params.fresh_ms
    }

    fn evaluate(&mut self, now: i64, full: bool) {
        let interval = self.params.interval_ms;
        let cusum_due = full
            && self
                .last_cusum_ms
                .is_none_or(|l| l.div_euclid(interval) != now.div_euclid(interval));
        if full {
            // A probe falling silent or coming back changes its region's healthy set.
            let silent: BTreeSet<String> = self
                .probes
                .values()
                .filter(|p| self.is_silent(p, now))
                .map(|p| p.info.id.clone())
                .collect();
            let flipped: BTreeSet<String> = silent
                .symmetric_difference(&self.silent)
                .filter_map(|id| self.probes.get(id).map(|p| p.info.region.clone()))
                .collect();
            if !flipped.is_empty() {
                for tid in self.targets.keys() {
                    self.dirty_pairs
                        .entry(tid.clone())
                        .or_default()
                        .extend(flipped.iter().cloned());
                }
            }
            self.silent = silent;
        }
        let mut dirty = std::mem::take(&mut self.dirty_pairs);
        // Regions holding a quarantined probe: its own samples decide when it is released.
        let quarantined: BTreeSet<String> = self
            .probes
            .values()
            .filter(|p| p.quarantined)
            .map(|p| p.info.region.clone())
            .collect();
        let target_ids: Vec<String> = if full {
            self.targets.keys().cloned().collect()
        } else {
            dirty.keys().cloned().collect()
        };
        for tid in &target_ids {
            let mut todo: BTreeSet<String> = dirty.remove(tid).unwrap_or_default();
            if full {
                // Regions and evaluations are both in region order: walk them side by side
                // rather than look every region up.
                let mut evals = self
                    .targets
                    .get(tid)
                    .into_iter()
                    .flat_map(|t| t.evals.iter())
                    .peekable();
                for r in self.by_region.keys() {
                    while evals.next_if(|(k, _)| *k < r).is_some() {}
                    let e = evals.next_if(|(k, _)| *k == r).map(|(_, e)| e);
                    if quarantined.contains(r) || self.needs_sweep(e, now) {
                        todo.insert(r.clone());
                    }
                }
            }
            if todo.is_empty() && !cusum_due {
                continue;
            }
            let mut changed = false;
            for region in &todo {
                if let Some(e) = self.evaluate_pair(tid, region, now)
                    && let Some(t) = self.targets.get_mut(tid)
                {
                    match t.evals.get_mut(region) {
                        Some(old) => {
                            changed |= !same_verdicts(old, &e);
                            *old = e;
                        }
                        None => {
                            changed = true;
                            t.evals.insert(region.clone(), e);
                        }
                    }
                }
            }
            // Nothing to conclude anew: the regions say what they said, and nothing is open
            // whose evidence must follow the numbers.
            // (Quiet in the broad sense: a region under suspicion waits on the others' fresh
            // samples, which change no verdict of theirs but can complete its classification.)
            let quiet = self.targets.get(tid).is_some_and(|t| t.quiet);
            if !changed && quiet && !cusum_due {
                continue;
            }
            let busy: BTreeSet<String> = self
                .incidents
                .iter()
                .filter(|i| {
                    i.is_open()
                        && !i.class.is_operational()
                        && i.class != Class::Isp
                        && i.targets.contains(tid)
                })
                .flat_map(|i| i.regions.iter().cloned())
                .collect();
            let evals = self
                .targets
                .get_mut(tid)
                .map(|t| std::mem::take(&mut t.evals))
                .unwrap_or_default();
            let settled_before = now - self.params.burst_cooldown_ms;
            let mut found = evaluate::classify(tid, &evals, &busy, settled_before);
            found.extend(self.probe_faults(tid, &evals, &found, &busy, now));
            found.extend(self.drift(tid, &evals, now, cusum_due));
            if let Some(t) = self.targets.get_mut(tid) {
                t.calm = found.is_empty()
                    && evals
                        .values()
                        .all(|e| e.bad.is_empty() && e.confirmed.is_none());
                t.quiet = t.calm && evals.values().all(|e| !e.warming);
                t.evals = evals;
                t.findings = found;
            }
        }
        if cusum_due {
            self.last_cusum_ms = Some(now);
        }
        if full {
            let mut ops = self.silences(now);
            ops.extend(self.clocks(now));
            self.op_findings = ops;
        }
        let findings: Vec<Finding> = self
            .targets
            .values()
            .flat_map(|t| t.findings.iter().cloned())
            .chain(self.op_findings.iter().cloned())
            .collect();
        self.reconcile(findings, now);
    }

    /// Probes bad on this target for a while when their region is not: probe faults.
    fn probe_faults(
        &self,
        tid: &str,
        evals: &BTreeMap<String, RegionEval>,
        others: &[Finding],
        busy: &BTreeSet<String>,
        now: i64,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let covered: BTreeSet<&String> = others
            .iter()
            .filter(|f| f.class == Class::Isp || !f.class.is_operational())
            .flat_map(|f| f.regions.iter())
            .chain(busy.iter())
            .collect();
        let Some(target) = self.targets.get(tid) else {
            return out;
        };
        for (region, e) in evals {
            if e.confirmed.is_some() || covered.contains(region) || e.good.len() < 2 {
                continue;
            }
            for b in &e.bad {
                let (probe, slot) = (&b.id, b.slot);
                let Some(start) = b.streak_start else {
                    continue;
                };
                if now - start < self.params.quarantine_after_ms {
                    continue;
                }
                let mut f = Finding {
                    class: Class::ProbeFault,
                    severity: Severity::Info,
                    hard: false,
                    regions: BTreeSet::from([region.clone()]),
                    target: tid.to_string(),
                    asns: self
                        .probes
                        .get(probe)
                        .and_then(|p| p.info.asn)
                        .into_iter()
                        .collect(),
                    probe: Some(probe.clone()),
                    edge: None,
                    onset_ms: start,
                    evidence: vec![e.evidence.clone()],
                    note: None,
                };
                if let Some(j) = target.tracks.get(slot).and_then(|t| t.recent.back()) {
                    f.note = Some(explain::probe_sample(probe, j, e.good.len()));
                }
                out.push(f);
            }
        }
        // A quarantined probe stays in fault while its own samples stay bad.
        for p in self.probes.values().filter(|p| p.quarantined) {
            let Some(track) = target.tracks.get(p.slot) else {
                continue;
            };
            if let (Some((v, _)), Some(start)) = (
                track.verdict(now, now - self.params.fresh_ms),
                track.streak_start,
            ) && v.is_bad()
            {
                let mut f = Finding {
                    class: Class::ProbeFault,
                    severity: Severity::Info,
                    hard: false,
                    regions: BTreeSet::from([p.info.region.clone()]),
                    target: tid.to_string(),
                    asns: p.info.asn.into_iter().collect(),
                    probe: Some(p.info.id.clone()),
                    edge: None,
                    onset_ms: start,
                    evidence: Vec::new(),
                    note: None,
                };
                if let Some(j) = track.recent.back() {
                    f.note = Some(explain::probe_sample(&p.info.id, j, 0));
                }
                out.push(f);
            }
        }
        out
    }

    /// The slow detector: once per interval, the CUSUM of each region's median round-trip
    /// z-score; above its threshold, a ticket.
    fn drift(
        &mut self,
        tid: &str,
        evals: &BTreeMap<String, RegionEval>,
        now: i64,
        run: bool,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let fresh = self.params.fresh_ms;
        let open_regions: BTreeSet<String> = self
            .incidents
            .iter()
            .filter(|i| i.is_open() && i.severity == Severity::Page && i.targets.contains(tid))
            .flat_map(|i| i.regions.iter().cloned())
            .collect();
        let Some(target) = self.targets.get_mut(tid) else {
            return out;
        };
        for (region, e) in evals {
            if !run && !target.cusum.get(region).is_some_and(Cusum::alarm) {
                continue;
            }
            if !target.cusum.contains_key(region) {
                target.cusum.insert(region.clone(), Cusum::default());
            }
            let Some(cusum) = target.cusum.get_mut(region) else {
                continue;
            };
            if run {
                if e.confirmed.is_some() || open_regions.contains(region) {
                    cusum.reset();
                } else {
                    let judged = e
                        .good
                        .iter()
                        .map(|g| g.slot)
                        .chain(e.bad.iter().map(|b| b.slot));
                    let mut zs: Vec<f64> = judged
                        .filter_map(|slot| target.tracks.fresh_scheduled_z(slot, now, now - fresh))
                        .map(|z| z.clamp(-4.0, 4.0))
                        .collect();
                    if zs.len() >= 2 {
                        zs.sort_by(f64::total_cmp);
                        let y = zs[zs.len() / 2] / median_sd(zs.len());
                        cusum.push(y, now);
                    }
                }
            }
            // A ticket needs an effect worth a human's time as well as a significant one.
            let material = e
                .evidence
                .connect_delta_ms
                .zip(e.evidence.connect_base_ms)
                .is_some_and(|(d, b)| d >= MIN_DRIFT_MS.max(0.1 * b));
            if cusum.alarm() && e.confirmed.is_none() && material {
                let mut f = Finding {
                    class: Class::RegionalNetwork,
                    severity: Severity::Ticket,
                    hard: false,
                    regions: BTreeSet::from([region.clone()]),
                    target: tid.to_string(),
                    asns: BTreeSet::new(),
                    probe: None,
                    edge: None,
                    onset_ms: cusum.since_ms().unwrap_or(now),
                    evidence: vec![e.evidence.clone()],
                    note: Some("round trips have been drifting up against this hour's usual level (change-point test)".into()),
                };
                f.evidence[0].affected = e.judged;
                out.push(f);
            }
        }
        out
    }

    fn silences(&self, now: i64) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut by_region: BTreeMap<&str, (Vec<&ProbeState>, usize)> = BTreeMap::new();
        for p in self.probes.values() {
            if p.last_heartbeat_ms.is_none() {
                continue;
            }
            let e = by_region.entry(&p.info.region).or_default();
            e.1 += 1;
            if self.is_silent(p, now) {
                e.0.push(p);
            }
        }
        let regions_known = by_region.len();
        for (region, (silent, known)) in by_region {
            if silent.is_empty() {
                continue;
            }
            let onset = silent
                .iter()
                .filter_map(|p| p.last_heartbeat_ms)
                .min()
                .unwrap_or(now)
                + self.params.heartbeat_ms;
            if silent.len() >= evaluate::quorum(known) || silent.len() == known {
                let mut f = op_finding(Class::RegionSilent, region, onset);
                f.note = Some(format!(
                    "{} of {} probes in {region} stopped reporting (no heartbeat for {} s); the state of the targets there is unknown",
                    silent.len(),
                    known,
                    (now - onset + self.params.heartbeat_ms) / 1000
                ));
                out.push(f);
            } else {
                // After a region's silence ends its probes reconnect one by one: the stragglers
                // are not probe faults until the grace has passed since the region came back.
                let back = self
                    .incidents
                    .iter()
                    .filter(|i| i.class == Class::RegionSilent && i.regions.contains(region))
                    .map(|i| i.resolved_ms.unwrap_or(now))
                    .max()
                    .unwrap_or(i64::MIN);
                for p in silent {
                    let last = p.last_heartbeat_ms.unwrap_or(now).max(back);
                    if now - last >= self.params.probe_silent_after_ms {
                        let mut f =
                            op_finding(Class::ProbeFault, region, last + self.params.heartbeat_ms);
                        f.probe = Some(p.info.id.clone());
                        f.note = Some(format!(
                            "probe {} has sent nothing for {} s while {} other probes in {region} report normally",
                            p.info.id,
                            (now - last) / 1000,
                            known - 1
                        ));
                        out.push(f);
                    }
                }
            }
        }
        let silent_regions = out
            .iter()
            .filter(|f| f.class == Class::RegionSilent)
            .count();
        if silent_regions >= 2 && silent_regions * 2 >= regions_known {
            let note = format!(
                "{silent_regions} of {regions_known} regions stopped reporting at once: the \
                 coordinator's ingest or its own network is the likely cause, not the regions; \
                 the state of the targets there is unknown"
            );
            for f in out.iter_mut().filter(|f| f.class == Class::RegionSilent) {
                f.note = Some(note.clone());
            }
        }
        out
    }

    fn clocks(&self, now: i64) -> Vec<Finding> {
        self.probes
            .values()
            .filter(|p| p.clock_offset_ms.abs() > self.params.max_clock_offset_ms && !self.is_silent(p, now))
            .map(|p| {
                let mut f = op_finding(Class::ClockSkew, &p.info.region, now);
                f.probe = Some(p.info.id.clone());
                f.note = Some(format!(
                    "probe {}'s clock is {:+.1} s off the coordinator's (limit ±{} s); its results are re-stamped",
                    p.info.id,
                    p.clock_offset_ms as f64 / 1000.0,
                    self.params.max_clock_offset_ms / 1000
                ));
                f
            })
            .collect()
    }
}

/// Whether two evaluations of a region say the same thing (who is bad, who confirmed what),
/// whatever their numbers.
fn same_verdicts(a: &RegionEval, b: &RegionEval) -> bool {
    let conf = |e: &RegionEval| {
        e.confirmed
            .as_ref()
            .map(|c| (c.family, c.hard, c.witnesses.clone()))
    };
    a.judged == b.judged
        && a.warming == b.warming
        && a.edge == b.edge
        && conf(a) == conf(b)
        && a.bad.len() == b.bad.len()
        && a.bad
            .iter()
            .zip(&b.bad)
            .all(|(x, y)| x.id == y.id && x.family == y.family)
}

/// Counts a late sample of `region` taken at `t` into the silences it fell in.
fn amend_with_late(
    incidents: &[Incident],
    meta: &mut [Meta],
    slack: i64,
    region: &str,
    t: i64,
    failed: bool,
) {
    for (inc, m) in incidents.iter().zip(meta.iter_mut()) {
        if inc.class == Class::RegionSilent
            && inc.regions.contains(region)
            && t >= inc.onset_ms - slack
            && inc.resolved_ms.is_none_or(|r| t <= r)
        {
            m.late_checks += 1;
            m.late_failed += u64::from(failed);
        }
    }
}

fn op_finding(class: Class, region: &str, onset_ms: i64) -> Finding {
    Finding {
        class,
        severity: Severity::Info,
        hard: false,
        regions: BTreeSet::from([region.to_string()]),
        target: String::new(),
        asns: BTreeSet::new(),
        probe: None,
        edge: None,
        onset_ms,
        evidence: Vec::new(),
        note: None,
    }
}
