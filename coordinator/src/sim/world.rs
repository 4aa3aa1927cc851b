//! The simulated world built from a scenario: its probes (ids, ASNs, slots, fixed access
//! delays) and each probe's path to each target. What the scenario's faults do to them is in
//! `conditions.rs` ([`World::conditions`], [`World::link_ready_at`], ...).
//!
//! # The RTT model
//!
//! A probe's base round trip to an origin follows great-circle distance: light in fibre covers
//! about 200 km/ms and real routes are about 1.5 times the great circle, so
//! `rtt ≈ 2·d·1.5/200 ms`, plus 2 ms of access network and a fixed per-probe offset of
//! 0–5 ms (probes of one region differ by a few ms). A region served by a CDN edge talks to a
//! PoP in the region instead (a few ms away); the edge→origin round trip then lands in server
//! time. A diurnal factor, peaking at 20:00 local solar time, multiplies the base RTT.
//!
//! Time here is Unix ms of the one true clock; the scenario's fault windows are offsets from
//! [`World::start_ms`]. Deliberately absent: random draws per check (`generate` makes those)
//! and event ordering (`run`).

use std::net::{IpAddr, Ipv4Addr};

use meridian_shared::check::CheckId;
use meridian_shared::regions::{Catalog, RegionId};
use rand::{RngExt as _, SeedableRng as _};
use rand_pcg::Pcg64Mcg;

use super::scenario::{ProbeRef, Scenario, TargetKind};

/// Start of every warm-up: Monday 2024-01-01 00:00 UTC, so hours of the day (and of the week)
/// mean what they say.
pub const EPOCH_MS: i64 = 1_704_067_200_000;

/// How long a resolver keeps the target's answer, ms: an authoritative failure reaches each
/// region once its cached answer expires, somewhere within this after the onset.
pub const DNS_TTL_MS: i64 = 60_000;

/// First word of the draws that are not a check run (whose words are probe, target, time,
/// run): far beyond any probe index, so the streams never meet.
pub const DRAW_PROBE: u64 = 1 << 60;
/// See [`DRAW_PROBE`]: when an authoritative DNS failure reaches each region.
pub const DRAW_TTL: u64 = 2 << 60;
/// See [`DRAW_PROBE`]: the error of each clock estimate.
pub const DRAW_PING: u64 = 3 << 60;

/// One probe of the world.
#[derive(Debug, Clone)]
pub struct SimProbe {
    /// `region/N`.
    pub id: String,
    /// The same as a reference.
    pub at: ProbeRef,
    /// Position of its region in `world.regions`.
    pub region_index: usize,
    /// Its network, when the world has ASNs.
    pub asn: Option<u32>,
    /// Where in the interval its slot begins, ms (`i·interval/P`).
    pub slot_ms: i64,
    /// Fixed extra round trip of its access network, ms.
    pub access_ms: f64,
    /// Median time its region's resolver takes to answer, ms.
    pub resolver_ms: f64,
    /// Longitude of its region, for local solar time.
    pub lon: f64,
    /// How long it takes to reconnect once its region can reach the coordinator again, ms.
    pub reconnect_ms: i64,
}

/// How one probe reaches one target.
#[derive(Debug, Clone)]
pub struct Leg {
    /// Base client-side round trip (to the origin, or to the edge PoP), ms.
    pub rtt_ms: f64,
    /// Edge→origin round trip, ms; 0 when the probe talks to the origin directly.
    pub upstream_ms: f64,
    /// The edge serving the probe's region, if any.
    pub edge: Option<String>,
    /// The address the probe talks to (origin, edge or, for DNS, the resolver).
    pub remote_ip: IpAddr,
}

/// One target of the world.
#[derive(Debug, Clone)]
pub struct SimTarget {
    /// The check id results carry.
    pub check_id: CheckId,
    /// Host name checked.
    pub host: String,
    /// Where in a probe's slot this target's run sits, ms.
    pub offset_ms: i64,
    /// Per probe (same order as `World::probes`).
    pub legs: Vec<Leg>,
    /// Round trip from each world region's resolver to the authoritative server, ms.
    pub auth_rtt_ms: Vec<f64>,
}

/// The world: the scenario plus everything derived from it once.
#[derive(Debug, Clone)]
pub struct World {
    /// The scenario.
    pub scenario: Scenario,
    /// End of warm-up, Unix ms: fault offsets count from here.
    pub start_ms: i64,
    /// End of the run, Unix ms.
    pub end_ms: i64,
    /// Every probe, region by region in `world.regions` order, N ascending.
    pub probes: Vec<SimProbe>,
    /// Every target, in file order.
    pub targets: Vec<SimTarget>,
    /// Per world region: when an authoritative DNS failure reaches its resolver, ms after the
    /// onset (its cached answer's remaining TTL).
    pub(super) dns_ttl_phase_ms: Vec<i64>,
    /// Corridor tags per world region, from the catalog.
    pub corridors: Vec<Vec<String>>,
}

impl World {
    /// Builds the world of `scenario`; `catalog` gives coordinates and corridors.
    pub fn new(scenario: Scenario, catalog: &Catalog) -> World {
        let s = &scenario;
        let start_ms = EPOCH_MS + s.warmup_ms;
        let coords = |id: &RegionId| catalog.get(id).map_or((0.0, 0.0), |r| (r.lat, r.lon));
        let mut probes = Vec::new();
        for (ri, region) in s.world.regions.iter().enumerate() {
            let count = s.world.probes_in(region);
            for n in 1..=count {
                let mut rng = rng_for(s.seed, &[DRAW_PROBE, ri as u64, u64::from(n)]);
                probes.push(SimProbe {
                    id: format!("{region}/{n}"),
                    at: ProbeRef {
                        region: region.clone(),
                        n,
                    },
                    region_index: ri,
                    asn: s.world.asn_of(n),
                    slot_ms: i64::from(n - 1) * s.interval_ms / i64::from(count.max(1)),
                    access_ms: 2.0 + rng.random_range(0.0..5.0),
                    resolver_ms: rng.random_range(1.0..4.0),
                    lon: coords(region).1,
                    reconnect_ms: rng.random_range(500..5_000),
                });
            }
        }
        let per_probe_slot =
            s.interval_ms / i64::from(s.world.probes.values().copied().max().unwrap_or(1).max(1));
        let k_count = i64::try_from(s.targets.len()).unwrap_or(1).max(1);
        let targets = s
            .targets
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let origin = coords(&t.origin);
                let k64 = k as u64;
                let legs = probes
                    .iter()
                    .map(|p| {
                        let here = coords(&p.at.region);
                        let to_origin = path_rtt_ms(here, origin);
                        if t.kind == TargetKind::Dns {
                            let ip = Ipv4Addr::new(10, 53, p.region_index as u8, 53);
                            return Leg {
                                rtt_ms: p.resolver_ms,
                                upstream_ms: 0.0,
                                edge: None,
                                remote_ip: IpAddr::V4(ip),
                            };
                        }
                        match t.edge_for(&p.at.region) {
                            Some(edge) => {
                                let e = t.edges.keys().position(|n| n == edge).unwrap_or(0);
                                Leg {
                                    rtt_ms: p.access_ms + 1.5,
                                    upstream_ms: to_origin,
                                    edge: Some(edge.to_string()),
                                    remote_ip: IpAddr::V4(Ipv4Addr::new(
                                        198,
                                        51,
                                        100,
                                        10 + e as u8,
                                    )),
                                }
                            }
                            None => Leg {
                                rtt_ms: to_origin + p.access_ms,
                                upstream_ms: 0.0,
                                edge: None,
                                remote_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + k as u8)),
                            },
                        }
                    })
                    .collect();
                let auth_rtt_ms = s
                    .world
                    .regions
                    .iter()
                    .map(|r| path_rtt_ms(coords(r), origin))
                    .collect();
                SimTarget {
                    check_id: CheckId::parse(&t.id)
                        .expect("scenario validation checked target ids"),
                    host: format!("{}.example.net", t.id),
                    offset_ms: i64::try_from(k64).unwrap_or(0) * per_probe_slot / k_count,
                    legs,
                    auth_rtt_ms,
                }
            })
            .collect();
        let dns_ttl_phase_ms = (0..s.world.regions.len())
            .map(|ri| rng_for(s.seed, &[DRAW_TTL, ri as u64]).random_range(0..DNS_TTL_MS))
            .collect();
        let corridors = s
            .world
            .regions
            .iter()
            .map(|r| {
                catalog
                    .get(r)
                    .map(|r| r.corridors.clone())
                    .unwrap_or_default()
            })
            .collect();
        World {
            end_ms: start_ms + s.duration_ms,
            start_ms,
            probes,
            targets,
            dns_ttl_phase_ms,
            corridors,
            scenario,
        }
    }

    /// The probe with this id.
    pub fn probe_index(&self, id: &str) -> Option<usize> {
        self.probes.iter().position(|p| p.id == id)
    }

    /// The target with this check id.
    pub fn target_index(&self, check_id: &str) -> Option<usize> {
        self.targets
            .iter()
            .position(|t| t.check_id.as_str() == check_id)
    }

    /// The regions an edge serves, across every target that names it.
    pub fn edge_regions(&self, edge: &str) -> Vec<RegionId> {
        self.scenario.edge_regions(edge)
    }

    /// The diurnal RTT factor for a probe at `t_ms`: `1 + A·sin(2π(h − 14)/24)` with `h` the
    /// local solar hour, so the peak falls at 20:00 and the trough at 08:00.
    pub fn diurnal(&self, p: usize, t_ms: i64) -> f64 {
        let a = self.scenario.noise.diurnal;
        if a == 0.0 {
            return 1.0;
        }
        let utc_h = (t_ms.rem_euclid(86_400_000)) as f64 / 3_600_000.0;
        let local_h = utc_h + self.probes[p].lon / 15.0;
        1.0 + a * (std::f64::consts::TAU * (local_h - 14.0) / 24.0).sin()
    }
}

/// Base round trip between two points, ms: `2·d·1.5/200` over the great circle plus 2 ms.
pub fn path_rtt_ms(a: (f64, f64), b: (f64, f64)) -> f64 {
    (2.0 * great_circle_km(a, b) * 1.5 / 200.0 + 2.0).max(1.0)
}

/// Haversine distance between (lat, lon) points in degrees, km.
pub fn great_circle_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    const EARTH_KM: f64 = 6371.0;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_KM * h.sqrt().min(1.0).asin()
}

/// A generator for one purpose, seeded from the scenario seed and the words naming it (probe,
/// target, time, run): every draw depends only on what it is for, never on the order in which
/// events happen to be processed or on what the engine asked for before.
pub fn rng_for(seed: u64, words: &[u64]) -> Pcg64Mcg {
    let mut h = splitmix(seed ^ 0x6d65_7269_6469_616e);
    for &w in words {
        h = splitmix(h ^ w);
    }
    Pcg64Mcg::seed_from_u64(h)
}

/// SplitMix64's finalizer: a cheap, well-mixed 64-bit hash step.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
