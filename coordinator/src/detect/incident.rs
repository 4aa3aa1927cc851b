//! Incidents: what the engine concluded, with its evidence and timeline, and the classes of
//! `SCENARIOS.md`.
//!
//! An incident moves suspected → confirmed → paged → resolved; "suspected" lives only inside
//! the engine (a region under suspicion that no quorum has confirmed yet is not an incident).
//! A resolved incident that confirms again within the re-open window becomes confirmed again
//! and keeps its id, its page and its timeline: the SRE is not paged twice for one fault.

use std::collections::BTreeSet;
use std::fmt;

/// Incident classes, named exactly as in `SCENARIOS.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// The target fails from most regions.
    OriginDown,
    /// The target's server time (or TLS handshake) grew from most regions; round trips did not.
    OriginSlow,
    /// Round trips grew, or connects time out or lose packets, from some regions only.
    RegionalNetwork,
    /// Server time grew, or errors appeared, for some regions only while their round trips
    /// stayed flat: something server-side treats those regions differently.
    RegionalServer,
    /// The regions served by one CDN edge see errors or slowness; the others do not.
    CdnEdge,
    /// The probes on one network (ASN) are degraded; their region-mates on other networks are not.
    Isp,
    /// Name resolution fails in some regions: their resolvers, not the zone.
    DnsResolver,
    /// Name resolution fails from most regions: the zone's authoritative servers.
    DnsAuthoritative,
    /// One probe is broken (its network or its process); it is quarantined. Operational.
    ProbeFault,
    /// One probe's wall clock is off; its samples are re-stamped. Operational.
    ClockSkew,
    /// A region cannot reach the coordinator; its state is unknown. Operational.
    RegionSilent,
}

impl Class {
    /// Every class, in the order `SCENARIOS.md` lists them.
    pub const ALL: [Class; 11] = [
        Class::OriginDown,
        Class::OriginSlow,
        Class::RegionalNetwork,
        Class::RegionalServer,
        Class::CdnEdge,
        Class::Isp,
        Class::DnsResolver,
        Class::DnsAuthoritative,
        Class::ProbeFault,
        Class::ClockSkew,
        Class::RegionSilent,
    ];

    /// The kebab-case name of `SCENARIOS.md`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::OriginDown => "origin-down",
            Class::OriginSlow => "origin-slow",
            Class::RegionalNetwork => "regional-network",
            Class::RegionalServer => "regional-server",
            Class::CdnEdge => "cdn-edge",
            Class::Isp => "isp",
            Class::DnsResolver => "dns-resolver",
            Class::DnsAuthoritative => "dns-authoritative",
            Class::ProbeFault => "probe-fault",
            Class::ClockSkew => "clock-skew",
            Class::RegionSilent => "region-silent",
        }
    }

    /// The class named `name`, if any.
    pub fn parse(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether this is a state of the monitoring network itself (never a page, never a site
    /// incident) rather than something members experience.
    pub fn is_operational(self) -> bool {
        matches!(
            self,
            Class::ProbeFault | Class::ClockSkew | Class::RegionSilent
        )
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentState {
    /// A quorum confirmed it; not (yet) paged.
    Confirmed,
    /// An SRE was paged.
    Paged,
    /// Confirmed no longer, for long enough; may still re-open within the window.
    Resolved,
}

/// How loudly an incident should be announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Operational state of the monitoring network: a low-urgency route, never a page.
    Info,
    /// Slow drift found by the change-point test: a ticket, not a page.
    Ticket,
    /// A site incident: pages.
    Page,
}

impl Severity {
    /// Lower-case name for APIs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Ticket => "ticket",
            Severity::Page => "page",
        }
    }
}

/// Per-region measurements behind an incident: what moved, by how much, over which baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionEvidence {
    /// The region.
    pub region: String,
    /// Healthy probes whose samples were judged.
    pub probes: usize,
    /// Of those, how many were affected.
    pub affected: usize,
    /// Median round-trip (connect) baseline and its change, ms.
    pub connect_base_ms: Option<f64>,
    /// Median change of the round trip, ms.
    pub connect_delta_ms: Option<f64>,
    /// Median TLS handshake baseline, ms.
    pub tls_base_ms: Option<f64>,
    /// Median change of the TLS handshake, ms.
    pub tls_delta_ms: Option<f64>,
    /// Median server-time baseline (first byte minus one round trip), ms.
    pub server_base_ms: Option<f64>,
    /// Median change of server time, ms.
    pub server_delta_ms: Option<f64>,
    /// Failed samples among the judged ones, with the most common error class.
    pub failures: usize,
    /// The most common error class of the failures (`ErrorClass::as_str`), if any failed.
    pub failure_class: Option<String>,
}

/// One line of an incident's history.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    /// When, Unix ms (coordinator clock).
    pub at_ms: i64,
    /// What happened, in plain words.
    pub what: String,
}

/// One incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Engine-local id, from 1, in order of detection.
    pub id: u64,
    /// What kind of fault.
    pub class: Class,
    /// Where it is in its life.
    pub state: IncidentState,
    /// How loudly to announce it.
    pub severity: Severity,
    /// Regions affected.
    pub regions: BTreeSet<String>,
    /// Targets (check ids) affected.
    pub targets: BTreeSet<String>,
    /// Networks affected (ISP incidents; otherwise the ASNs of the affected probes, if known).
    pub asns: BTreeSet<u32>,
    /// The probe concerned, for probe-fault and clock-skew.
    pub probe: Option<String>,
    /// The CDN edge concerned, for cdn-edge.
    pub edge: Option<String>,
    /// Estimated start: the first anomalous sample of the streak that confirmed it, Unix ms.
    pub onset_ms: i64,
    /// When a quorum confirmed it, Unix ms.
    pub detected_ms: i64,
    /// When it paged, Unix ms; `None` when it has not (operational, tickets, transients).
    pub paged_ms: Option<i64>,
    /// When it resolved, Unix ms.
    pub resolved_ms: Option<i64>,
    /// Per-region evidence at the latest confirmation.
    pub evidence: Vec<RegionEvidence>,
    /// History, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// Plain words with the arithmetic, refreshed with the evidence.
    pub explanation: String,
}

impl Incident {
    /// Time to detect, ms: detection minus onset.
    pub fn time_to_detect_ms(&self) -> i64 {
        self.detected_ms - self.onset_ms
    }

    /// Time to resolve, ms: resolution minus onset, once resolved.
    pub fn time_to_resolve_ms(&self) -> Option<i64> {
        self.resolved_ms.map(|r| r - self.onset_ms)
    }

    /// Whether the incident is still open.
    pub fn is_open(&self) -> bool {
        self.state != IncidentState::Resolved
    }
}
