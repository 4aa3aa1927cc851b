//! A scenario as validated types: the world, its noise, the faults injected into it and what
//! the coordinator must conclude. `SCENARIOS.md` is the contract; [`super::parse`] turns a file
//! into a [`Scenario`] and is the only way to get one from text.
//!
//! All times here are milliseconds: durations, and fault windows as offsets from the start of
//! the scenario (the end of warm-up). Deliberately absent: any randomness or any catalog
//! lookup; the world generator derives coordinates and RTTs from these values.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use meridian_shared::regions::RegionId;

use crate::detect::Class;

/// One scenario file, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name reported in results (the file stem when the file gives none).
    pub name: String,
    /// What it simulates, in words.
    pub description: String,
    /// Seed of every random draw: same seed, same results, bit for bit.
    pub seed: u64,
    /// Virtual time simulated after warm-up, ms.
    pub duration_ms: i64,
    /// Scheduled check interval per (probe, target), ms.
    pub interval_ms: i64,
    /// Fault-free history generated first, ms.
    pub warmup_ms: i64,
    /// Regions, probes and networks.
    pub world: WorldSpec,
    /// The noise on every measurement.
    pub noise: Noise,
    /// What the probes check, in file order.
    pub targets: Vec<TargetSpec>,
    /// What goes wrong, in file order.
    pub faults: Vec<Fault>,
    /// What the coordinator must conclude, in file order.
    pub expects: Vec<Expect>,
    /// How strictly unexpected incidents count.
    pub score: ScoreSpec,
}

impl Scenario {
    /// The regions an edge serves, across every target that names it, sorted.
    pub fn edge_regions(&self, edge: &str) -> Vec<RegionId> {
        let mut out: Vec<RegionId> = self
            .targets
            .iter()
            .filter_map(|t| t.edges.get(edge))
            .flatten()
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// `[world]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorldSpec {
    /// Regions with probes, in file order.
    pub regions: Vec<RegionId>,
    /// Probes in each of `regions` (at least one each).
    pub probes: BTreeMap<RegionId, u32>,
    /// Networks handed to each region's probes round-robin; empty when the file gives none.
    pub asns: Vec<u32>,
}

impl WorldSpec {
    /// How many probes `region` has (0 for a region outside the world).
    pub fn probes_in(&self, region: &RegionId) -> u32 {
        self.probes.get(region).copied().unwrap_or(0)
    }

    /// The ASN of probe `n` (1-based) of a region: `asns` round-robin.
    pub fn asn_of(&self, n: u32) -> Option<u32> {
        let len = u32::try_from(self.asns.len()).ok().filter(|l| *l > 0)?;
        let i = usize::try_from((n.max(1) - 1) % len).ok()?;
        self.asns.get(i).copied()
    }
}

/// `[noise]`: the defaults of `SCENARIOS.md` unless the file says otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    /// Lognormal sigma on every RTT and server time.
    pub jitter: f64,
    /// Fraction of checks hit by a congestion spike of +20..300 ms.
    pub spike_rate: f64,
    /// Per-packet loss on every path.
    pub loss: f64,
    /// Amplitude of the 24 h sinusoidal RTT swing (0.3 = ±30 %).
    pub diurnal: f64,
}

impl Default for Noise {
    fn default() -> Noise {
        Noise {
            jitter: 0.05,
            spike_rate: 0.01,
            loss: 0.001,
            diurnal: 0.0,
        }
    }
}

/// What a target is checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// An HTTPS (or HTTP) request, timed phase by phase.
    Http,
    /// A DNS query to the region's resolver.
    Dns,
}

/// The TLS version an HTTP target negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// TLS 1.2: a two-round-trip handshake.
    V12,
    /// TLS 1.3: one round trip.
    V13,
    /// Plain HTTP: no handshake (`tls` phase `Some(0)`).
    None,
}

/// `[[target]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// Check id the results carry.
    pub id: String,
    /// HTTP or DNS.
    pub kind: TargetKind,
    /// Region the origin (or, for DNS, the authoritative server) sits in.
    pub origin: RegionId,
    /// Origin processing time before the first byte, ms.
    pub server_ms: f64,
    /// Negotiated TLS version.
    pub tls: Tls,
    /// CDN edges: edge name → the regions whose probes it serves.
    pub edges: BTreeMap<String, Vec<RegionId>>,
}

impl TargetSpec {
    /// The edge serving `region`, if any.
    pub fn edge_for(&self, region: &RegionId) -> Option<&str> {
        self.edges
            .iter()
            .find(|(_, regions)| regions.contains(region))
            .map(|(name, _)| name.as_str())
    }
}

/// A probe named as `region/N`, N from 1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeRef {
    /// Its region.
    pub region: RegionId,
    /// Its number in the region, from 1.
    pub n: u32,
}

impl fmt::Display for ProbeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.n)
    }
}

/// Which probes a path fault touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathScope {
    /// Every probe of these regions.
    Regions(Vec<RegionId>),
    /// These probes.
    Probes(Vec<ProbeRef>),
}

/// How name resolution fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsFailure {
    /// The resolver answers SERVFAIL.
    ServFail,
    /// The resolver answers NXDOMAIN.
    NxDomain,
    /// No answer before the timeout.
    Timeout,
}

/// Where name resolution breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsScope {
    /// The regions' recursive resolvers; the zone is fine.
    Resolver,
    /// The zone's authoritative servers; resolvers notice once their cached answer expires.
    Authoritative,
}

/// One `[[fault]]`: a window and what happens in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Start, ms after the end of warm-up.
    pub at_ms: i64,
    /// End (exclusive), ms after the end of warm-up; the end of the run when `for` is omitted.
    pub until_ms: i64,
    /// What happens.
    pub kind: FaultKind,
}

/// The fault kinds of `SCENARIOS.md`.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Extra RTT and/or loss between some probes and the origin (or their edge).
    Path {
        /// Which probes.
        scope: PathScope,
        /// Extra round-trip time, ms (the ramp's ceiling when ramping; 0 = no ceiling).
        rtt_ms: f64,
        /// Per-packet loss.
        loss: f64,
        /// Only probes on this network.
        asn: Option<u32>,
        /// Extra RTT growing by this much per minute instead of stepping.
        ramp_ms_per_min: Option<f64>,
    },
    /// The origin fails or slows, server-side only.
    Origin {
        /// Fraction of requests answered with `status`.
        error_rate: f64,
        /// Status of the failed requests.
        status: u16,
        /// Added server time, ms.
        server_ms: f64,
        /// Added TLS handshake time, ms.
        tls_ms: f64,
        /// Only requests from these regions; all when `None`.
        regions: Option<Vec<RegionId>>,
    },
    /// A CDN edge fails (502) or slows for the regions it serves.
    Edge {
        /// The edge's name in `target.edges`.
        edge: String,
        /// Fraction of requests answered 502.
        error_rate: f64,
        /// Added server time, ms.
        server_ms: f64,
    },
    /// Name resolution fails for the targets.
    Dns {
        /// How.
        rcode: DnsFailure,
        /// Where.
        scope: DnsScope,
        /// Only these regions; all when `None`.
        regions: Option<Vec<RegionId>>,
    },
    /// One probe's own network or process is broken.
    Probe {
        /// Which probe.
        probe: ProbeRef,
        /// Extra RTT on everything it does, ms.
        rtt_ms: f64,
        /// Per-packet loss on everything it does.
        loss: f64,
        /// Its process is dead: no results, no heartbeats.
        down: bool,
    },
    /// One probe's wall clock is off.
    Clock {
        /// Which probe.
        probe: ProbeRef,
        /// How far its clock is ahead (negative: behind), ms.
        offset_ms: i64,
    },
    /// Regions cannot reach the coordinator; results are buffered and delivered late.
    Silence {
        /// Which regions.
        regions: Vec<RegionId>,
        /// The target is unreachable from there too.
        path: bool,
    },
}

impl Fault {
    /// Whether the fault is in force at `t_ms` (ms after the end of warm-up).
    pub fn active(&self, t_ms: i64) -> bool {
        (self.at_ms..self.until_ms).contains(&t_ms)
    }

    /// The regions the fault touches; `None` when it touches every region of the world.
    /// `edge_regions` resolves an edge name to the regions it serves.
    pub fn regions(&self, edge_regions: impl Fn(&str) -> Vec<RegionId>) -> Option<Vec<RegionId>> {
        match &self.kind {
            FaultKind::Path {
                scope: PathScope::Regions(r),
                ..
            }
            | FaultKind::Silence { regions: r, .. } => Some(r.clone()),
            FaultKind::Path {
                scope: PathScope::Probes(p),
                ..
            } => Some(p.iter().map(|p| p.region.clone()).collect()),
            FaultKind::Origin { regions, .. } | FaultKind::Dns { regions, .. } => regions.clone(),
            FaultKind::Edge { edge, .. } => Some(edge_regions(edge)),
            FaultKind::Probe { probe, .. } | FaultKind::Clock { probe, .. } => {
                Some(vec![probe.region.clone()])
            }
        }
    }

    /// The single probe the fault concerns, for probe and clock faults.
    pub fn probe(&self) -> Option<&ProbeRef> {
        match &self.kind {
            FaultKind::Probe { probe, .. } | FaultKind::Clock { probe, .. } => Some(probe),
            _ => None,
        }
    }
}

/// One `[[expect]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// The class the incident must have.
    pub class: Class,
    /// When given, the incident's regions must equal this set.
    pub regions: Option<BTreeSet<String>>,
    /// When given, the incident's targets must equal this set.
    pub targets: Option<BTreeSet<String>>,
    /// When given, the incident's probe must be this one.
    pub probe: Option<ProbeRef>,
    /// Detection deadline from the onset, ms; any time during the run when omitted.
    pub detect_within_ms: Option<i64>,
    /// Resolution deadline from the end of the last matching fault, ms.
    pub resolve_within_ms: Option<i64>,
    /// Whether the incident must page (true) or must not (false).
    pub page: bool,
}

/// `[score]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScoreSpec {
    /// Incidents matching no expectation that are tolerated.
    pub max_false_incidents: usize,
    /// Whether unexpected operational incidents (probe-fault, clock-skew, region-silent) count
    /// as false.
    pub strict_ops: bool,
    /// Extension of the contract (optional): false incidents that paged, tolerated. Lets a
    /// scenario allow unpaged tickets or transients while still demanding zero false pages;
    /// `max_false_incidents` still applies.
    pub max_false_pages: Option<usize>,
}
