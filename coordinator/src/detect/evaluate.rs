//! Quorums and classification: from each probe's recent verdicts to per-region conclusions,
//! and from those to findings (a class with a scope).
//!
//! Pure functions over views the engine assembles; the engine owns the state. The rules are
//! detection.md's hierarchical elimination, in precedence order: DNS, then server-side (one CDN
//! edge, most regions = origin, a subset = regional server), then network (most regions = the
//! origin's own network, else regional), then one network (ISP), then one probe.

use std::collections::{BTreeMap, BTreeSet};

use super::incident::{Class, RegionEvidence, Severity};
use super::sample::{Family, Verdict};
use super::slow;

/// A judged sample, as kept per (target, probe).
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// Sample time (probe wall clock corrected by its estimated offset), Unix ms.
    pub t: i64,
    /// The verdict.
    pub verdict: Verdict,
    /// Whether the connect paid a retransmission timeout.
    pub retransmit: bool,
    /// Whether it was a burst run.
    pub burst: bool,
    /// Whether it arrived late (after a silence): amends incidents, never counts in quorums.
    pub late: bool,
    /// Per metric: the baseline median, ms.
    pub base: [Option<f64>; 4],
    /// Per metric: value minus baseline median, ms.
    pub delta: [Option<f64>; 4],
    /// Per metric: robust z-score.
    pub z: [Option<f64>; 4],
    /// The error class, when it failed.
    pub error: Option<&'static str>,
}

/// What the quorum needs to know of one healthy probe for one target.
#[derive(Debug, Clone)]
pub struct ProbeView<'a> {
    /// Probe id.
    pub id: &'a str,
    /// The engine's handle on the probe (the slot of its per-target state), handed back in
    /// [`RegionEval::bad`] and [`RegionEval::good`] so the engine finds the probe again without
    /// comparing ids.
    pub slot: usize,
    /// Its network, if known.
    pub asn: Option<u32>,
    /// Its verdict over fresh samples; `None` when it has none.
    pub verdict: Option<Verdict>,
    /// The first bad sample of its current bad streak.
    pub streak_start: Option<i64>,
    /// Bad samples kept since the streak began (a burst's runs all bad make 3).
    pub streak_samples: usize,
    /// Its latest fresh sample.
    pub latest: Option<&'a Judged>,
    /// Connects and retransmissions in the loss window, and the earliest retransmission.
    pub connects: u64,
    /// Retransmitted connects in the loss window.
    pub retransmits: u64,
    /// Earliest retransmission in the window.
    pub first_retransmit: Option<i64>,
    /// Its learnt retransmission rate.
    pub loss_rate: f64,
    /// The CDN edge that serves it, if any.
    pub edge: Option<&'a str>,
}

/// A region's conclusion for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionEval {
    /// Healthy probes with fresh samples.
    pub judged: usize,
    /// The confirmed family, if a quorum agrees.
    pub confirmed: Option<Confirmed>,
    /// The healthy probes whose verdict is bad.
    pub bad: Vec<BadProbe>,
    /// The healthy probes judged fine.
    pub good: Vec<GoodProbe>,
    /// Whether most judged probes still lack a round-trip baseline.
    pub warming: bool,
    /// The edge serving most of the region, if any.
    pub edge: Option<String>,
    /// The oldest among the judged probes' newest samples (`i64::MAX` with none): once it
    /// leaves the freshness window, the evaluation is out of date even without new samples.
    pub stalest_ms: i64,
    /// Evidence (deltas over the witnesses, or over everyone when nothing is confirmed).
    pub evidence: RegionEvidence,
}

/// A healthy probe whose verdict is bad, in a [`RegionEval`].
#[derive(Debug, Clone, PartialEq)]
pub struct BadProbe {
    /// Probe id.
    pub id: String,
    /// Its network, if known.
    pub asn: Option<u32>,
    /// Where its verdict points.
    pub family: Family,
    /// The first bad sample of its current bad streak.
    pub streak_start: Option<i64>,
    /// Its slot ([`ProbeView::slot`]).
    pub slot: usize,
    /// Bad samples since its streak began ([`ProbeView::streak_samples`]).
    pub streak_samples: usize,
    /// Its latest sample's connect time over the baseline, and the baseline, ms.
    pub connect_ms: Option<(f64, f64)>,
}

/// A healthy probe judged fine, in a [`RegionEval`].
#[derive(Debug, Clone, PartialEq)]
pub struct GoodProbe {
    /// Probe id.
    pub id: String,
    /// Its network, if known.
    pub asn: Option<u32>,
    /// The time of its latest fine sample.
    pub latest_ms: i64,
    /// Its slot ([`ProbeView::slot`]).
    pub slot: usize,
}

/// A quorum's agreement.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirmed {
    /// Path, server or DNS.
    pub family: Family,
    /// Failures rather than slowness.
    pub hard: bool,
    /// Confirmed by the pooled loss test rather than by verdicts.
    pub loss: Option<(u64, u64)>,
    /// The probes that agreed.
    pub witnesses: Vec<String>,
    /// Earliest anomalous sample among them.
    pub onset_ms: i64,
    /// When the quorum's last needed witness turned bad: the `q`-th earliest streak start.
    /// Unlike the onset, one early noisy sample cannot pull it back.
    pub quorum_ms: i64,
}

/// Probes needed to confirm among `p` healthy ones: `max(2, ⌈0.6·p⌉)`.
pub fn quorum(p: usize) -> usize {
    (p * 3).div_ceil(5).max(2)
}

/// A probe's network for independence: its ASN, or the probe itself when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Network<'a> {
    As(u32),
    Probe(&'a str),
}

fn network_key<'a>(p: &ProbeView<'a>) -> Network<'a> {
    match p.asn {
        Some(a) => Network::As(a),
        None => Network::Probe(p.id),
    }
}

/// Evaluate one region for one target over its healthy probes.
pub fn evaluate_region(region: &str, probes: &[ProbeView<'_>]) -> RegionEval {
    let judged: Vec<&ProbeView<'_>> = probes.iter().filter(|p| p.verdict.is_some()).collect();
    let n = judged.len();
    let networks: BTreeSet<Network<'_>> = judged.iter().map(|p| network_key(p)).collect();
    let mut bad = Vec::new();
    let mut good = Vec::new();
    let mut by_family: BTreeMap<Family, Vec<&ProbeView<'_>>> = BTreeMap::new();
    for p in &judged {
        let v = p.verdict.unwrap_or(Verdict::Ok);
        if v.is_bad() {
            bad.push(BadProbe {
                id: p.id.to_string(),
                asn: p.asn,
                family: v.family(),
                streak_start: p.streak_start,
                slot: p.slot,
                streak_samples: p.streak_samples,
                connect_ms: p.latest.and_then(|j| j.delta[0].zip(j.base[0])),
            });
            by_family.entry(v.family()).or_default().push(p);
        } else {
            good.push(GoodProbe {
                id: p.id.to_string(),
                asn: p.asn,
                latest_ms: p.latest.map_or(i64::MIN, |j| j.t),
                slot: p.slot,
            });
        }
    }
    let q = quorum(n);
    let mut confirmed: Option<Confirmed> = None;
    if n >= 2 {
        // The family with most witnesses wins; ties go to DNS, then server, then network
        // (the more specific explanation).
        let mut families: Vec<(&Family, &Vec<&ProbeView<'_>>)> = by_family.iter().collect();
        families.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(b.0.cmp(a.0)));
        for (family, w) in families {
            let w_networks: BTreeSet<Network<'_>> = w.iter().map(|p| network_key(p)).collect();
            let independent = networks.len() < 2 || w_networks.len() >= 2;
            if w.len() >= q && independent {
                let hard = w
                    .iter()
                    .filter(|p| p.verdict.is_some_and(Verdict::is_hard))
                    .count()
                    * 2
                    > w.len();
                let mut starts: Vec<i64> = w.iter().filter_map(|p| p.streak_start).collect();
                starts.sort_unstable();
                confirmed = Some(Confirmed {
                    family: *family,
                    hard,
                    loss: None,
                    witnesses: w.iter().map(|p| p.id.to_string()).collect(),
                    onset_ms: starts.first().copied().unwrap_or(0),
                    quorum_ms: starts.get(q - 1).or(starts.last()).copied().unwrap_or(0),
                });
                break;
            }
        }
        match &confirmed {
            None => confirmed = pooled_loss(&judged),
            // Loss inflates TLS and first-byte times by a retransmission timeout: slow
            // samples in a region whose connects show excess loss are the path's doing, not
            // the server's. The region then stands or falls by the loss test.
            Some(c) if c.family == Family::Server && !c.hard && excess_loss(&judged) => {
                confirmed = pooled_loss(&judged);
            }
            Some(_) => {}
        }
    }
    let witnesses: BTreeSet<&str> = confirmed
        .as_ref()
        .map(|c| c.witnesses.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let pool: Vec<&Judged> = judged
        .iter()
        .filter(|p| witnesses.is_empty() || witnesses.contains(p.id))
        .filter_map(|p| p.latest)
        .collect();
    let failures: Vec<&'static str> = judged
        .iter()
        .filter_map(|p| p.latest.and_then(|j| j.error))
        .collect();
    let evidence = RegionEvidence {
        region: region.to_string(),
        probes: n,
        affected: confirmed.as_ref().map_or(bad.len(), |c| c.witnesses.len()),
        connect_base_ms: median_of(pool.iter().map(|j| j.base[0])),
        connect_delta_ms: median_of(pool.iter().map(|j| j.delta[0])),
        tls_base_ms: median_of(pool.iter().map(|j| j.base[1])),
        tls_delta_ms: median_of(pool.iter().map(|j| j.delta[1])),
        server_base_ms: median_of(pool.iter().map(|j| j.base[2])),
        server_delta_ms: median_of(pool.iter().map(|j| j.delta[2])),
        failures: failures.len(),
        failure_class: most_common(&failures).map(str::to_string),
    };
    let warming = judged
        .iter()
        .filter(|p| {
            p.latest
                .is_some_and(|j| j.base[0].is_none() && j.base[3].is_none())
        })
        .count()
        * 2
        > n;
    let edges: Vec<&str> = judged.iter().filter_map(|p| p.edge).collect();
    RegionEval {
        judged: n,
        confirmed,
        bad,
        good,
        warming,
        edge: most_common(&edges).map(str::to_string),
        stalest_ms: i64::MAX,
        evidence,
    }
}

/// Whether the judged probes' connects, pooled, show loss beyond their learnt rates.
fn excess_loss(judged: &[&ProbeView<'_>]) -> bool {
    let p0 = judged.iter().map(|p| p.loss_rate).sum::<f64>() / judged.len().max(1) as f64;
    let k: u64 = judged.iter().map(|p| p.retransmits).sum();
    let n: u64 = judged.iter().map(|p| p.connects).sum();
    slow::excess_loss(k, n, p0)
}

/// The pooled loss test, leaving out the network (ASN, or the probe when unknown) that lost
/// most: loss that only one probe, or one ISP's probes, see is theirs, not the region's.
fn pooled_loss(judged: &[&ProbeView<'_>]) -> Option<Confirmed> {
    let mut by_network: BTreeMap<Network<'_>, u64> = BTreeMap::new();
    for p in judged {
        *by_network.entry(network_key(p)).or_default() += p.retransmits;
    }
    let worst = by_network
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(k, _)| *k)?;
    let p0 = judged.iter().map(|p| p.loss_rate).sum::<f64>() / judged.len().max(1) as f64;
    let k: u64 = judged.iter().map(|p| p.retransmits).sum();
    let n: u64 = judged.iter().map(|p| p.connects).sum();
    let rest: Vec<&&ProbeView<'_>> = judged.iter().filter(|p| network_key(p) != worst).collect();
    let k_rest: u64 = rest.iter().map(|p| p.retransmits).sum();
    let n_rest: u64 = rest.iter().map(|p| p.connects).sum();
    // Nor is loss that one probe of the rest sees: with several of them, two must see it.
    let rest_seeing = rest.iter().filter(|p| p.retransmits > 0).count();
    if !slow::excess_loss(k, n, p0)
        || !slow::corroborated_loss(k_rest, n_rest, p0)
        || (rest.len() >= 2 && rest_seeing < 2)
    {
        return None;
    }
    let witnesses: Vec<&ProbeView<'_>> = judged
        .iter()
        .copied()
        .filter(|p| p.retransmits > 0)
        .collect();
    let mut firsts: Vec<i64> = witnesses
        .iter()
        .filter_map(|p| p.first_retransmit)
        .collect();
    firsts.sort_unstable();
    Some(Confirmed {
        family: Family::Net,
        hard: false,
        loss: Some((k, n)),
        witnesses: witnesses.iter().map(|p| p.id.to_string()).collect(),
        onset_ms: firsts.first().copied().unwrap_or(0),
        // As for verdicts, a time one early sample cannot pull back, and one that stays put
        // while the loss goes on (the latest first retransmission moves with every train, and
        // the other regions would have to be checked again after each to keep the region a
        // subset): when the third probe saw its first retransmission.
        quorum_ms: firsts
            .get(
                usize::try_from(slow::MIN_LOSS_EVENTS)
                    .unwrap_or(1)
                    .saturating_sub(1),
            )
            .or(firsts.last())
            .copied()
            .unwrap_or(0),
    })
}

fn median_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut v: Vec<f64> = values.flatten().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

fn most_common<'a>(items: &[&'a str]) -> Option<&'a str> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for i in items {
        *counts.entry(i).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(k, _)| k)
}

/// A conclusion for one target, before it is matched to an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The class.
    pub class: Class,
    /// Severity it calls for.
    pub severity: Severity,
    /// Failures rather than slowness (pages at once).
    pub hard: bool,
    /// Regions in scope.
    pub regions: BTreeSet<String>,
    /// The target.
    pub target: String,
    /// Networks in scope (ISP).
    pub asns: BTreeSet<u32>,
    /// The probe (probe-fault, clock-skew).
    pub probe: Option<String>,
    /// The edge (cdn-edge).
    pub edge: Option<String>,
    /// Earliest anomalous sample.
    pub onset_ms: i64,
    /// Per-region evidence.
    pub evidence: Vec<RegionEvidence>,
    /// A sentence about the cause, when the evidence table does not say it all.
    pub note: Option<String>,
}

impl Finding {
    fn new(class: Class, target: &str, hard: bool) -> Finding {
        Finding {
            class,
            severity: if class.is_operational() {
                Severity::Info
            } else {
                Severity::Page
            },
            hard,
            regions: BTreeSet::new(),
            target: target.to_string(),
            asns: BTreeSet::new(),
            probe: None,
            edge: None,
            onset_ms: i64::MAX,
            evidence: Vec::new(),
            note: None,
        }
    }

    fn add_region(&mut self, region: &str, eval: &RegionEval) {
        self.regions.insert(region.to_string());
        if let Some(c) = &eval.confirmed {
            self.onset_ms = self.onset_ms.min(c.onset_ms);
        }
        self.evidence.push(eval.evidence.clone());
    }
}

/// Classify one target's region evaluations into findings (site classes, ISP, and probes
/// that are bad while their region is fine). `asn_of` maps probe ids to networks.
///
/// `busy` lists regions already inside an open site incident for this target: a network's or
/// a probe's own trouble is not judged there (an incident's recovering tail, where some probes
/// are still bad and others already fine, is not an ISP fault). A bad streak that began
/// before `settled_before` (or spans [`SETTLED_SAMPLES`] bad samples) is a pattern rather
/// than chance; ISP findings need one.
pub fn classify(
    target: &str,
    evals: &BTreeMap<String, RegionEval>,
    busy: &BTreeSet<String>,
    settled_before: i64,
) -> Vec<Finding> {
    let reporting = evals.values().filter(|e| e.judged >= 2).count();
    let most = |n: usize| n >= 2 && n >= reporting.div_ceil(2);
    let of_family = |f: Family| -> Vec<(&String, &RegionEval)> {
        evals
            .iter()
            .filter(|(_, e)| e.confirmed.as_ref().is_some_and(|c| c.family == f))
            .collect()
    };
    let mut findings = Vec::new();

    let dns = of_family(Family::Dns);
    if !dns.is_empty() {
        let class = if most(dns.len()) {
            Some(Class::DnsAuthoritative)
        } else if others_fine_since(evals, &dns, onset_of(&dns)) {
            Some(Class::DnsResolver)
        } else {
            None
        };
        if let Some(class) = class {
            let mut f = Finding::new(class, target, true);
            for (r, e) in &dns {
                f.add_region(r, e);
            }
            findings.push(f);
        }
    }

    let srv = of_family(Family::Server);
    if !srv.is_empty() {
        let hard = srv
            .iter()
            .filter(|(_, e)| e.confirmed.as_ref().is_some_and(|c| c.hard))
            .count()
            * 2
            > srv.len();
        let bad_edges: BTreeSet<Option<&String>> =
            srv.iter().map(|(_, e)| e.edge.as_ref()).collect();
        let healthy_other_edge = |edge: &String| {
            evals.iter().any(|(_, e)| {
                e.judged >= 2 && e.confirmed.is_none() && e.edge.as_ref().is_some_and(|x| x != edge)
            })
        };
        let single_edge = match bad_edges.iter().next() {
            Some(Some(edge)) if bad_edges.len() == 1 && healthy_other_edge(edge) => {
                Some((*edge).clone())
            }
            _ => None,
        };
        let class = if single_edge.is_some() {
            Some(Class::CdnEdge)
        } else if most(srv.len()) {
            Some(if hard {
                Class::OriginDown
            } else {
                Class::OriginSlow
            })
        } else if others_fine_since(evals, &srv, onset_of(&srv)) {
            Some(Class::RegionalServer)
        } else {
            // Too early to tell one region's server trouble from the origin's: the other
            // regions have not been checked since it began (their bursts are on the way).
            None
        };
        if let Some(class) = class {
            let mut f = Finding::new(class, target, hard);
            f.edge = single_edge;
            for (r, e) in &srv {
                f.add_region(r, e);
            }
            findings.push(f);
        }
    }

    let net = of_family(Family::Net);
    if !net.is_empty() {
        let hard_regions = net
            .iter()
            .filter(|(_, e)| e.confirmed.as_ref().is_some_and(|c| c.hard))
            .count();
        if net.len() >= 3 && net.len() * 5 >= reporting * 4 {
            // Nearly every region at once: the origin's own network, not theirs.
            let hard = hard_regions * 2 > net.len();
            let mut f = Finding::new(
                if hard {
                    Class::OriginDown
                } else {
                    Class::OriginSlow
                },
                target,
                hard,
            );
            f.note =
                Some("round trips grew from nearly every region: the origin's own network".into());
            for (r, e) in &net {
                f.add_region(r, e);
            }
            if net.iter().all(|(_, e)| small_step(e)) {
                f.severity = Severity::Ticket;
            }
            findings.push(f);
        } else {
            let subset = others_fine_since(evals, &net, onset_of(&net));
            for (r, e) in net.iter().filter(|_| subset) {
                let hard = e.confirmed.as_ref().is_some_and(|c| c.hard);
                let mut f = Finding::new(Class::RegionalNetwork, target, hard);
                f.add_region(r, e);
                if small_step(e) {
                    f.severity = Severity::Ticket;
                }
                findings.push(f);
            }
        }
    }

    findings.extend(isp(target, evals, busy, settled_before));
    findings
}

/// A bad streak of this many samples (a burst's runs, all bad) is a pattern, not chance.
pub const SETTLED_SAMPLES: usize = 3;

/// A round-trip step pages only when it is large: at least this many ms, and
/// [`PAGE_STEP_REL`] of the baseline (detection.md §2.8). A smaller step that the per-sample
/// gate (15 ms) still catches is real but within what a path does (a reroute, a cut that
/// moved few paths): it is a ticket, like a drift, and pages if it grows.
pub const PAGE_STEP_MS: f64 = 30.0;

/// See [`PAGE_STEP_MS`].
pub const PAGE_STEP_REL: f64 = 0.3;

/// Whether a region is confirmed on round trips alone (no failures, no loss) by a step too
/// small to page: the witnesses' median connect delta under [`PAGE_STEP_MS`].
fn small_step(e: &RegionEval) -> bool {
    let Some(c) = &e.confirmed else {
        return false;
    };
    if c.hard || c.loss.is_some() || c.family != Family::Net {
        return false;
    }
    e.evidence
        .connect_delta_ms
        .zip(e.evidence.connect_base_ms)
        .is_some_and(|(d, b)| d < PAGE_STEP_MS.max(PAGE_STEP_REL * b))
}

/// When the first of these regions reached its quorum.
fn onset_of(regions: &[(&String, &RegionEval)]) -> i64 {
    regions
        .iter()
        .filter_map(|(_, e)| e.confirmed.as_ref().map(|c| c.quorum_ms))
        .min()
        .unwrap_or(i64::MIN)
}

/// Whether most of the other reporting regions have a probe checked since `onset` and found
/// fine: what makes a subset of regions a *subset* rather than the first of all of them.
fn others_fine_since(
    evals: &BTreeMap<String, RegionEval>,
    scope: &[(&String, &RegionEval)],
    onset: i64,
) -> bool {
    let in_scope: BTreeSet<&String> = scope.iter().map(|(r, _)| *r).collect();
    let others: Vec<&RegionEval> = evals
        .iter()
        .filter(|(r, e)| !in_scope.contains(r) && e.judged >= 2)
        .map(|(_, e)| e)
        .collect();
    let fine = others
        .iter()
        .filter(|e| e.confirmed.is_none() && e.good.iter().any(|g| g.latest_ms > onset))
        .count();
    others.is_empty() || fine * 2 > others.len()
}

/// ISP-level findings: within regions that are not confirmed, the probes of one ASN are bad
/// on the path while their region-mates on other networks are fine; at least two such probes
/// in all.
fn isp(
    target: &str,
    evals: &BTreeMap<String, RegionEval>,
    busy: &BTreeSet<String>,
    settled_before: i64,
) -> Vec<Finding> {
    // ASN → (region, bad probes on it there, earliest onset among them).
    type Witnessed<'a> = Vec<(&'a String, usize, Option<i64>)>;
    let mut by_asn: BTreeMap<u32, Witnessed<'_>> = BTreeMap::new();
    for (region, e) in evals {
        if e.confirmed.is_some() || busy.contains(region) {
            continue;
        }
        let asns: BTreeSet<u32> = e
            .bad
            .iter()
            .filter(|b| b.family == Family::Net)
            .filter_map(|b| b.asn)
            .collect();
        for asn in asns {
            let bad_on: Vec<&BadProbe> = e
                .bad
                .iter()
                .filter(|b| b.asn == Some(asn) && b.family == Family::Net)
                // Two probes of one network spiking together is chance; the same two bad in
                // every run of a burst, or still bad a burst cooldown later, is a pattern.
                .filter(|b| {
                    b.streak_samples >= SETTLED_SAMPLES
                        || b.streak_start.is_some_and(|t| t <= settled_before)
                })
                // Near the gate, which probes a step flags is chance too: a network stands
                // out only by a step clear of it (failures and retransmissions always do).
                .filter(|b| {
                    b.connect_ms
                        .is_none_or(|(d, base)| d >= PAGE_STEP_MS.max(PAGE_STEP_REL * base))
                })
                .collect();
            let good_on = e.good.iter().filter(|g| g.asn == Some(asn)).count();
            let bad_other = e.bad.iter().filter(|b| b.asn != Some(asn)).count();
            let onset = bad_on
                .iter()
                .filter_map(|b| b.streak_start)
                .min()
                .unwrap_or(i64::MIN);
            // Region-mates on other networks must have been checked since this began, and
            // found fine: at the onset of a regional fault the first probes to report are on
            // some network or other, which says nothing yet.
            let good_other = e
                .good
                .iter()
                .filter(|g| g.asn != Some(asn) && g.latest_ms > onset)
                .count();
            let on_total = bad_on.len() + good_on;
            let mostly_bad = bad_on.len() * 5 >= on_total * 3;
            let others_fine = good_other >= 1 && bad_other * 2 < good_other + bad_other;
            if mostly_bad && others_fine {
                let onset = (onset != i64::MIN).then_some(onset);
                by_asn
                    .entry(asn)
                    .or_default()
                    .push((region, bad_on.len(), onset));
            }
        }
    }
    let mut out = Vec::new();
    for (asn, regions) in by_asn {
        let witnesses: usize = regions.iter().map(|r| r.1).sum();
        if witnesses < 2 {
            continue;
        }
        let mut f = Finding::new(Class::Isp, target, false);
        f.asns.insert(asn);
        for (region, _, onset) in &regions {
            f.regions.insert((*region).clone());
            if let Some(o) = onset {
                f.onset_ms = f.onset_ms.min(*o);
            }
            if let Some(e) = evals.get(*region) {
                f.evidence.push(e.evidence.clone());
            }
        }
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests;
