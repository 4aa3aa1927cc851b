//! Findings to incidents: matching, opening, merging (corridor groups, re-opens), paging with
//! persistence, resolving with hysteresis, quarantine, bursts and late-data amendments.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, BurstOrder, Engine, Meta, RegionCell, RegionStatus};
use crate::detect::evaluate::Finding;
use crate::detect::explain;
use crate::detect::incident::{
    Class, Incident, IncidentState, RegionEvidence, Severity, TimelineEntry,
};

impl Engine {
    pub(super) fn reconcile(&mut self, findings: Vec<Finding>, now: i64) {
        // Each matched incident, with the highest severity its findings call for now.
        let mut matched: BTreeMap<usize, Severity> = BTreeMap::new();
        for f in findings {
            let severity = f.severity;
            let i = match self.find_match(&f, now) {
                Some(i) => {
                    self.merge(i, f, now);
                    i
                }
                None => self.open(f, now),
            };
            let s = matched.entry(i).or_insert(severity);
            *s = (*s).max(severity);
        }
        for i in 0..self.incidents.len() {
            let open = self.incidents[i].is_open();
            if let Some(&severity) = matched.get(&i) {
                self.meta[i].last_confirmed_ms = now;
                // A page is due only while the evidence still calls for one: a step that
                // crossed the paging size once, by noise, does not page when it is back under.
                if severity == Severity::Page {
                    self.maybe_page(i, now);
                }
            } else if open && now - self.meta[i].last_confirmed_ms >= self.params.resolve_after_ms {
                self.resolve(i, now);
            }
        }
        for i in matched.into_keys() {
            self.refresh_explanation(i);
        }
    }

    fn find_match(&self, f: &Finding, now: i64) -> Option<usize> {
        let window = self.params.reopen_window_ms;
        let candidates = self.incidents.iter().enumerate().rev().filter(|(_, inc)| {
            (inc.class == f.class && inc.resolved_ms.is_none_or(|r| now - r <= window))
                || (inc.is_open() && (absorbs(f.class, inc.class) || absorbs(inc.class, f.class)))
        });
        let mut best: Option<usize> = None;
        for (i, inc) in candidates {
            if self.same_scope(inc, self.meta[i].episode_onset_ms, f) {
                if inc.is_open() {
                    return Some(i);
                }
                best = best.or(Some(i));
            }
        }
        best
    }

    /// Whether finding `f` belongs to `inc`, whose current episode began at `episode_onset`.
    fn same_scope(&self, inc: &Incident, episode_onset: i64, f: &Finding) -> bool {
        let regions_meet = !inc.regions.is_disjoint(&f.regions);
        if inc.class != f.class {
            // A wider incident takes in the narrow findings of its own target (a partial
            // origin failure flickering between "most regions" and "some").
            return inc.targets.contains(&f.target)
                && (regions_meet || absorbs(inc.class, f.class));
        }
        match f.class {
            Class::RegionalNetwork => {
                regions_meet
                    || (inc.is_open()
                        && (f.onset_ms - episode_onset).abs() <= self.params.group_window_ms
                        && self.share_corridor(&inc.regions, &f.regions))
            }
            Class::DnsResolver => regions_meet,
            // Regions falling silent together (within a few heartbeats) share one cause: most
            // likely the coordinator's own ingest or network, not each of them.
            Class::RegionSilent => {
                regions_meet
                    || (inc.is_open()
                        && (f.onset_ms - episode_onset).abs() <= 4 * self.params.heartbeat_ms)
            }
            // One target's server treating several regions differently at once is one fault.
            Class::RegionalServer => inc.targets.contains(&f.target),
            Class::OriginDown | Class::OriginSlow => inc.targets.contains(&f.target),
            // One zone's servers fail for every name in it: targets failing together are one
            // incident.
            Class::DnsAuthoritative => {
                inc.targets.contains(&f.target)
                    || (inc.is_open()
                        && (f.onset_ms - episode_onset).abs() <= self.params.group_window_ms)
            }
            Class::CdnEdge => inc.edge == f.edge,
            Class::Isp => !inc.asns.is_disjoint(&f.asns),
            Class::ProbeFault | Class::ClockSkew => inc.probe == f.probe,
        }
    }

    fn share_corridor(&self, a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
        let tags = |set: &BTreeSet<String>| -> BTreeSet<String> {
            set.iter()
                .filter_map(|r| self.corridors.get(r))
                .flatten()
                .cloned()
                .collect()
        };
        !tags(a).is_disjoint(&tags(b))
    }

    fn open(&mut self, f: Finding, now: i64) -> usize {
        let id = self.incidents.len() as u64 + 1;
        let onset = f.onset_ms.min(now);
        let mut timeline = vec![TimelineEntry {
            at_ms: onset,
            what: "first anomalous sample".into(),
        }];
        timeline.push(TimelineEntry {
            at_ms: now,
            what: format!(
                "{} confirmed: {}",
                f.class,
                scope_words(&f.regions, f.probe.as_deref())
            ),
        });
        let page_now = f.severity == Severity::Page && f.hard;
        let mut inc = Incident {
            id,
            class: f.class,
            state: IncidentState::Confirmed,
            severity: f.severity,
            regions: f.regions.clone(),
            targets: BTreeSet::new(),
            asns: f.asns.clone(),
            probe: f.probe.clone(),
            edge: f.edge.clone(),
            onset_ms: onset,
            detected_ms: now,
            paged_ms: None,
            resolved_ms: None,
            evidence: f.evidence.clone(),
            timeline,
            explanation: String::new(),
        };
        if !f.target.is_empty() {
            inc.targets.insert(f.target.clone());
        }
        let mut meta = Meta {
            last_confirmed_ms: now,
            episode_onset_ms: onset,
            note: f.note.clone(),
            ..Meta::default()
        };
        if f.severity == Severity::Page && !page_now {
            meta.page_due_ms = Some(now + self.params.page_delay_ms);
        }
        if f.class == Class::ProbeFault
            && let Some(p) = f.probe.as_ref().and_then(|p| self.probes.get_mut(p))
        {
            p.quarantined = true;
            inc.timeline.push(TimelineEntry {
                at_ms: now,
                what: format!("probe {} quarantined: left out of quorums", p.info.id),
            });
        }
        self.incidents.push(inc);
        self.meta.push(meta);
        self.pending.push(Action::Opened(id));
        let i = self.incidents.len() - 1;
        if page_now {
            self.page(i, now);
        }
        i
    }

    fn merge(&mut self, i: usize, f: Finding, now: i64) {
        let reporting = self
            .targets
            .get(&f.target)
            .map_or(0, |t| t.evals.values().filter(|e| e.judged >= 2).count());
        let inc = &mut self.incidents[i];
        let mut changed = false;
        if inc.class != f.class && absorbs(f.class, inc.class) {
            inc.timeline.push(TimelineEntry {
                at_ms: now,
                what: format!("reclassified from {} to {}", inc.class, f.class),
            });
            inc.class = f.class;
            changed = true;
        }
        for r in &f.regions {
            if inc.regions.insert(r.clone()) {
                inc.timeline.push(TimelineEntry {
                    at_ms: now,
                    what: format!("now also affects {r}"),
                });
                changed = true;
            }
        }
        if !f.target.is_empty() && inc.targets.insert(f.target.clone()) {
            changed = true;
        }
        inc.asns.extend(f.asns.iter().copied());
        // A subset that grew to most regions was the first of all of them.
        let most = inc.regions.len() >= 2 && inc.regions.len() >= reporting.div_ceil(2);
        let wider = match inc.class {
            Class::RegionalServer if most && f.hard => Some(Class::OriginDown),
            Class::RegionalServer if most => Some(Class::OriginSlow),
            Class::DnsResolver if most => Some(Class::DnsAuthoritative),
            _ => None,
        };
        if let Some(wider) = wider {
            inc.timeline.push(TimelineEntry {
                at_ms: now,
                what: format!(
                    "reclassified from {} to {wider}: most regions now affected",
                    inc.class
                ),
            });
            inc.class = wider;
            changed = true;
        }
        for e in &f.evidence {
            upsert_evidence(&mut inc.evidence, e);
        }
        if f.note.is_some() {
            self.meta[i].note = f.note.clone();
        }
        if !inc.is_open() {
            inc.state = if inc.paged_ms.is_some() {
                IncidentState::Paged
            } else {
                IncidentState::Confirmed
            };
            inc.resolved_ms = None;
            self.meta[i].episode_onset_ms = f.onset_ms.min(now);
            inc.timeline.push(TimelineEntry {
                at_ms: now,
                what: "confirmed again within the re-open window: same incident, no new page"
                    .into(),
            });
            self.pending.push(Action::Reopened(inc.id));
            // One that never paged (it resolved before its persistence check) is checked for
            // persistence again: a fault that keeps coming back must still page once.
            if inc.paged_ms.is_none() && inc.severity == Severity::Page {
                self.meta[i].page_due_ms = Some(now + self.params.page_delay_ms);
                self.meta[i].persistence_burst = false;
            }
        } else if changed {
            self.pending.push(Action::Updated(inc.id));
        }
        if f.severity > inc.severity {
            inc.severity = f.severity;
            inc.timeline.push(TimelineEntry {
                at_ms: now,
                what: format!("escalated to {}", f.severity.as_str()),
            });
            if f.severity == Severity::Page && inc.paged_ms.is_none() {
                self.meta[i].page_due_ms = Some(if f.hard {
                    now
                } else {
                    now + self.params.page_delay_ms
                });
            }
        }
        if f.hard && inc.severity == Severity::Page && inc.paged_ms.is_none() {
            self.meta[i].page_due_ms = Some(now);
        }
    }

    /// Page when due and still confirmed: latency-only incidents must survive the
    /// persistence burst ordered just before.
    fn maybe_page(&mut self, i: usize, now: i64) {
        let inc = &self.incidents[i];
        if inc.paged_ms.is_some() || inc.severity != Severity::Page || !inc.is_open() {
            return;
        }
        if self.meta[i].page_due_ms.is_some_and(|d| now >= d) {
            self.page(i, now);
        }
    }

    fn page(&mut self, i: usize, now: i64) {
        let inc = &mut self.incidents[i];
        inc.paged_ms = Some(now);
        inc.state = IncidentState::Paged;
        inc.timeline.push(TimelineEntry {
            at_ms: now,
            what: "paged".into(),
        });
        self.meta[i].page_due_ms = None;
        self.pending.push(Action::Paged(inc.id));
    }

    fn resolve(&mut self, i: usize, now: i64) {
        let inc = &mut self.incidents[i];
        inc.state = IncidentState::Resolved;
        inc.resolved_ms = Some(now);
        let what = if inc.paged_ms.is_none() && inc.severity == Severity::Page {
            "resolved; it did not persist long enough to page".to_string()
        } else {
            "resolved".to_string()
        };
        inc.timeline.push(TimelineEntry { at_ms: now, what });
        self.meta[i].page_due_ms = None;
        self.pending.push(Action::Resolved(inc.id));
        if inc.class == Class::ProbeFault
            && let Some(p) = inc.probe.as_ref().and_then(|p| self.probes.get_mut(p))
        {
            p.quarantined = false;
            inc.timeline.push(TimelineEntry {
                at_ms: now,
                what: format!("probe {} back in quorums", p.info.id),
            });
        }
    }

    fn refresh_explanation(&mut self, i: usize) {
        let inc = &self.incidents[i];
        let elsewhere = if inc.class.is_operational() {
            None
        } else {
            // Probes, not (probe, target) pairs: a probe bad for any of the incident's targets
            // is affected.
            let mut affected = BTreeSet::new();
            let mut judged = BTreeSet::new();
            for t in &inc.targets {
                if let Some(ts) = self.targets.get(t) {
                    for (r, e) in &ts.evals {
                        if !inc.regions.contains(r) {
                            for b in &e.bad {
                                affected.insert(b.id.as_str());
                                judged.insert(b.id.as_str());
                            }
                            judged.extend(e.good.iter().map(|g| g.id.as_str()));
                        }
                    }
                }
            }
            Some((affected.len(), judged.len()))
        };
        let m = &self.meta[i];
        let late = (m.late_checks > 0).then_some((m.late_failed, m.late_checks));
        let text = explain::incident(inc, m.note.as_deref(), elsewhere, late);
        self.incidents[i].explanation = text;
    }

    /// Bursts: for every suspected (target, region) out of cooldown, every healthy probe of
    /// the region (plus one per other region when the signature points at the server); and
    /// once per latency-only incident, shortly before its page is due, to test persistence.
    pub(super) fn order_bursts(&mut self, now: i64) {
        let suspects = std::mem::take(&mut self.suspects);
        for ((target, region), suspicion) in suspects {
            let key = (target.clone(), region.clone());
            if self
                .last_burst
                .get(&key)
                .is_some_and(|l| now - l < self.params.burst_cooldown_ms)
            {
                // Raised during the cooldown (by the burst's own results, typically): it
                // fires when the cooldown ends.
                let e = self.suspects.entry(key).or_default();
                e.server_side |= suspicion.server_side;
                e.retransmits |= suspicion.retransmits;
                e.round_trip |= suspicion.round_trip;
                continue;
            }
            let mut ids: Vec<String> = self
                .healthy_probes(&region, now)
                .iter()
                .map(|p| p.info.id.clone())
                .collect();
            let probes_here = ids.len();
            if suspicion.server_side {
                let mut seen = BTreeSet::from([region.clone()]);
                for p in self.probes.values() {
                    if seen.insert(p.info.region.clone())
                        && !p.quarantined
                        && !self.is_silent(p, now)
                    {
                        ids.push(p.info.id.clone());
                    }
                }
            }
            if ids.is_empty() {
                continue;
            }
            self.last_burst.insert(key, now);
            // Loss shows in counts, not medians: retransmissions ask for a train of connects,
            // max(10, ⌈50/P⌉) per probe, so the region pools ~50 trials.
            let runs = if suspicion.retransmits && !suspicion.round_trip {
                let per = 50usize.div_ceil(probes_here.max(1)).max(10);
                u8::try_from(per).unwrap_or(u8::MAX)
            } else {
                self.params.burst_runs
            };
            self.pending.push(Action::Burst(BurstOrder {
                probe_ids: ids,
                check_id: target,
                runs,
            }));
        }
        let lead = self.params.page_delay_ms / 3;
        for i in 0..self.incidents.len() {
            let due = self.meta[i].page_due_ms;
            if self.meta[i].persistence_burst || due.is_none_or(|d| now < d - lead) {
                continue;
            }
            self.meta[i].persistence_burst = true;
            let inc = &self.incidents[i];
            for target in inc.targets.clone() {
                let mut ids = Vec::new();
                for r in &inc.regions {
                    ids.extend(
                        self.healthy_probes(r, now)
                            .iter()
                            .map(|p| p.info.id.clone()),
                    );
                    self.last_burst.insert((target.clone(), r.clone()), now);
                }
                if !ids.is_empty() {
                    self.pending.push(Action::Burst(BurstOrder {
                        probe_ids: ids,
                        check_id: target,
                        runs: self.params.burst_runs,
                    }));
                }
            }
        }
    }

    /// Late data that arrived for silent regions: amend those incidents (never page again).
    pub(super) fn report_late(&mut self, now: i64) {
        for i in 0..self.incidents.len() {
            let m = &self.meta[i];
            if m.late_checks == 0 || m.late_reported == (m.late_failed, m.late_checks) {
                continue;
            }
            let (failed, total) = (m.late_failed, m.late_checks);
            let first = m.late_reported.1 == 0;
            self.meta[i].late_reported = (failed, total);
            let inc = &mut self.incidents[i];
            let what = format!(
                "late data from the silent period: {failed} of {total} checks failed{}",
                if failed * 2 > total {
                    " (the targets were also unreachable from inside the region)"
                } else {
                    ""
                }
            );
            if first {
                inc.timeline.push(TimelineEntry { at_ms: now, what });
            } else if let Some(last) = inc
                .timeline
                .iter_mut()
                .rev()
                .find(|e| e.what.starts_with("late data"))
            {
                *last = TimelineEntry { at_ms: now, what };
            }
            self.pending.push(Action::Updated(inc.id));
            self.refresh_explanation(i);
        }
    }

    /// Every (target, region) with probes, as of the last evaluation: the map's and the status
    /// page's view. Regions without probes are left out (they have no data for any target).
    pub fn region_cells(&self, now_ms: i64) -> Vec<RegionCell> {
        let mut cells = Vec::new();
        for (region, members) in &self.by_region {
            let healthy = self.healthy_probes(region, now_ms).len();
            for (target, t) in &self.targets {
                cells.push(RegionCell {
                    target: target.clone(),
                    region: region.clone(),
                    status: self.region_status(target, region, now_ms),
                    probes: members.len(),
                    healthy,
                    evidence: t.evals.get(region).map(|e| e.evidence.clone()),
                });
            }
        }
        cells
    }

    /// How `region` looks for `target` as of the last evaluation.
    pub fn region_status(&self, target: &str, region: &str, now_ms: i64) -> RegionStatus {
        let Some(t) = self.targets.get(target) else {
            return RegionStatus::NoData;
        };
        let has_tracks = self
            .probes
            .values()
            .any(|p| p.info.region == region && t.tracks.get(p.slot).is_some());
        if !has_tracks {
            return RegionStatus::NoData;
        }
        if self.healthy_probes(region, now_ms).len() < 2 {
            return RegionStatus::Unknown;
        }
        match t.evals.get(region) {
            None => RegionStatus::Unknown,
            Some(e) if e.judged < 2 => RegionStatus::Unknown,
            Some(e) => match &e.confirmed {
                Some(c) if c.hard => RegionStatus::Failing,
                Some(_) => RegionStatus::Degraded,
                None if e.warming => RegionStatus::Warming,
                None => RegionStatus::Normal,
            },
        }
    }
}

/// Whether an incident of class `narrow` is the early part of a `wide` one: a DNS failure
/// seen first by some resolvers, an origin failure seen first from some regions.
fn absorbs(wide: Class, narrow: Class) -> bool {
    matches!(
        (wide, narrow),
        (Class::DnsAuthoritative, Class::DnsResolver)
            | (Class::OriginDown | Class::OriginSlow, Class::RegionalServer)
    )
}

fn upsert_evidence(list: &mut Vec<RegionEvidence>, e: &RegionEvidence) {
    match list.iter_mut().find(|x| x.region == e.region) {
        Some(x) => *x = e.clone(),
        None => list.push(e.clone()),
    }
}

fn scope_words(regions: &BTreeSet<String>, probe: Option<&str>) -> String {
    match probe {
        Some(p) => format!("probe {p}"),
        None => regions.iter().cloned().collect::<Vec<_>>().join(", "),
    }
}
