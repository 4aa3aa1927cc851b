//! What the scenario's faults do, as the world's answers to "at this moment": the
//! [`Conditions`] of one check (extra round-trip time, loss, server time, errors, DNS
//! failures), whether a probe is down, how far its clock is off, and when it can reach the
//! coordinator (silences and reconnection).
//!
//! Faults act only after warm-up, within their window (`at` <= t < `at + for`, offsets from
//! [`World::start_ms`]). Deliberately absent: random draws; these are the deterministic
//! inputs the generator draws around.

use meridian_shared::regions::RegionId;

use super::scenario::{DnsFailure, DnsScope, Fault, FaultKind, PathScope};
use super::world::World;

/// What the scenario's faults do to one check of one probe at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conditions {
    /// Added to every client-side round trip, ms (path and probe faults).
    pub extra_rtt_ms: f64,
    /// Per-packet loss on client-side round trips, noise included.
    pub loss: f64,
    /// No packet reaches the target (silence with `path = true`).
    pub unreachable: bool,
    /// Added to the probe's DNS query time (its own network), ms.
    pub dns_extra_ms: f64,
    /// Per-packet loss on the probe's DNS queries (its own network).
    pub dns_loss: f64,
    /// Name resolution fails like this.
    pub dns: Option<(DnsFailure, DnsScope)>,
    /// Added server time, ms (origin and edge faults).
    pub server_ms: f64,
    /// Added TLS handshake time, ms (origin faults, direct connections only).
    pub tls_ms: f64,
    /// Fraction of requests answered with an error, and the status they get.
    pub error_rate: f64,
    /// Status of those errors (the first fault's).
    pub error_status: u16,
}

impl World {
    /// Faults in force at `t_ms` (Unix ms); none during warm-up.
    fn active(&self, t_ms: i64) -> impl Iterator<Item = &FaultKind> {
        let rel = t_ms - self.start_ms;
        self.scenario
            .faults
            .iter()
            .filter(move |f| t_ms >= self.start_ms && f.active(rel))
            .map(|f| &f.kind)
    }

    /// What the faults do to probe `p`'s check of target `k` starting at `t_ms`.
    pub fn conditions(&self, p: usize, k: usize, t_ms: i64) -> Conditions {
        let probe = &self.probes[p];
        let leg = &self.targets[k].legs[p];
        let mut c = Conditions {
            loss: self.scenario.noise.loss,
            error_status: 200,
            ..Conditions::default()
        };
        let mut keep = 1.0 - c.loss;
        let mut ok = 1.0;
        let mut dns_keep = 1.0;
        let in_regions =
            |rs: &Option<Vec<RegionId>>| rs.as_ref().is_none_or(|rs| rs.contains(&probe.at.region));
        let mut fail = |c: &mut Conditions, rate: f64, status: u16| {
            if rate > 0.0 && c.error_status == 200 {
                c.error_status = status;
            }
            ok *= 1.0 - rate;
            c.error_rate = 1.0 - ok;
        };
        let rel = t_ms - self.start_ms;
        for f in self
            .scenario
            .faults
            .iter()
            .filter(|f| t_ms >= self.start_ms && f.active(rel))
        {
            match &f.kind {
                FaultKind::Path {
                    scope,
                    rtt_ms,
                    loss,
                    asn,
                    ramp_ms_per_min,
                } => {
                    let hit = match scope {
                        PathScope::Regions(rs) => rs.contains(&probe.at.region),
                        PathScope::Probes(ps) => ps.contains(&probe.at),
                    };
                    if hit && asn.is_none_or(|a| probe.asn == Some(a)) {
                        c.extra_rtt_ms += match ramp_ms_per_min {
                            Some(r) => {
                                let grown = r * (rel - f.at_ms) as f64 / 60_000.0;
                                if *rtt_ms > 0.0 {
                                    grown.min(*rtt_ms)
                                } else {
                                    grown
                                }
                            }
                            None => *rtt_ms,
                        };
                        keep *= 1.0 - loss;
                    }
                }
                FaultKind::Origin {
                    error_rate,
                    status,
                    server_ms,
                    tls_ms,
                    regions,
                } if in_regions(regions) => {
                    fail(&mut c, *error_rate, *status);
                    c.server_ms += server_ms;
                    // An edge keeps its origin connections open: the origin's handshake is not
                    // on the probe's path when an edge terminates TLS.
                    if leg.edge.is_none() {
                        c.tls_ms += tls_ms;
                    }
                }
                FaultKind::Edge {
                    edge,
                    error_rate,
                    server_ms,
                } if leg.edge.as_deref() == Some(edge.as_str()) => {
                    fail(&mut c, *error_rate, 502);
                    c.server_ms += server_ms;
                }
                FaultKind::Dns {
                    rcode,
                    scope,
                    regions,
                } if in_regions(regions) => {
                    let reached = match scope {
                        DnsScope::Resolver => true,
                        DnsScope::Authoritative => {
                            rel >= f.at_ms + self.dns_ttl_phase_ms[probe.region_index]
                        }
                    };
                    if reached && c.dns.is_none() {
                        c.dns = Some((*rcode, *scope));
                    }
                }
                FaultKind::Probe {
                    probe: who,
                    rtt_ms,
                    loss,
                    ..
                } if *who == probe.at => {
                    c.extra_rtt_ms += rtt_ms;
                    c.dns_extra_ms += rtt_ms;
                    keep *= 1.0 - loss;
                    dns_keep *= 1.0 - loss;
                }
                FaultKind::Silence { regions, path } => {
                    c.unreachable |= *path && regions.contains(&probe.at.region);
                }
                _ => {}
            }
        }
        c.loss = 1.0 - keep;
        c.dns_loss = 1.0 - dns_keep;
        c
    }

    /// Whether probe `p`'s process is down at `t_ms`.
    pub fn is_down(&self, p: usize, t_ms: i64) -> bool {
        let me = &self.probes[p].at;
        self.active(t_ms)
            .any(|f| matches!(f, FaultKind::Probe { probe, down: true, .. } if probe == me))
    }

    /// How far probe `p`'s wall clock is ahead of the true time at `t_ms`, ms.
    pub fn clock_offset_ms(&self, p: usize, t_ms: i64) -> i64 {
        let me = &self.probes[p].at;
        self.active(t_ms)
            .filter_map(|f| match f {
                FaultKind::Clock { probe, offset_ms } if probe == me => Some(*offset_ms),
                _ => None,
            })
            .sum()
    }

    /// When probe `p` is next connected to the coordinator at or after `t_ms`: `t_ms` itself
    /// unless its region is silenced then (or the probe is still reconnecting after a
    /// silence), otherwise the end of the silence plus the probe's reconnect delay.
    pub fn link_ready_at(&self, p: usize, t_ms: i64) -> i64 {
        let probe = &self.probes[p];
        let mut t = t_ms;
        loop {
            let rel = t - self.start_ms;
            let ready = self
                .silences(p)
                .filter(|f| (f.at_ms..f.until_ms + probe.reconnect_ms).contains(&rel))
                .map(|f| self.start_ms + f.until_ms + probe.reconnect_ms)
                .max();
            match ready {
                Some(r) if r > t => t = r,
                _ => return t,
            }
        }
    }

    /// When probe `p` reconnects after each silence of its region (Unix ms).
    pub fn reconnections(&self, p: usize) -> Vec<i64> {
        let delay = self.probes[p].reconnect_ms;
        self.silences(p)
            .map(|f| self.start_ms + f.until_ms + delay)
            .collect()
    }

    fn silences(&self, p: usize) -> impl Iterator<Item = &Fault> {
        let region = &self.probes[p].at.region;
        self.scenario.faults.iter().filter(move |f| {
            matches!(&f.kind, FaultKind::Silence { regions, .. } if regions.contains(region))
        })
    }
}
