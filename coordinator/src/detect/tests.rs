//! Engine tests over a tiny deterministic world: six regions of five probes (two ASNs) check
//! one HTTPS target every minute; faults are functions of (probe, time). The scenario
//! simulator (`sim`) does this with noise models and scores; these tests pin the engine's own
//! behaviour: classes, scopes, detection bounds, no pages for monitoring faults.

use meridian_shared::check::CheckId;
use meridian_shared::result::{CheckError, CheckResult, ErrorClass, HttpDetail, Phases};

use super::*;

const MIN: i64 = 60_000;
const REGIONS: [(&str, f64, &[&str]); 6] = [
    ("us-east", 8.0, &["trans-atlantic"]),
    ("eu-west", 80.0, &["trans-atlantic", "eu-backbone"]),
    ("eu-central", 95.0, &["eu-backbone"]),
    ("me-south", 150.0, &["red-sea"]),
    ("ap-south", 200.0, &["red-sea", "indian-ocean"]),
    ("af-south", 230.0, &["west-africa-coast"]),
];

/// What a fault does to one run: extra RTT, extra server time, or a failure.
#[derive(Default, Clone, Copy)]
struct Effect {
    rtt: f64,
    server: f64,
    fail: Option<ErrorClass>,
}

type FaultFn = Box<dyn Fn(&str, usize, i64) -> Effect>;
type SilenceFn = Box<dyn Fn(&str, i64) -> bool>;

struct World {
    engine: Engine,
    now: i64,
    results: u64,
    seed: u64,
    fault: FaultFn,
    silent: SilenceFn,
    queued: Vec<(i64, String, usize, bool)>,
}

fn probe_id(region: &str, n: usize) -> String {
    format!("{region}/{}", n + 1)
}

/// Deterministic noise in [0, 1).
fn noise(seed: u64, a: u64, b: u64) -> f64 {
    let mut x =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

impl World {
    fn new() -> World {
        let topology = Topology {
            regions: REGIONS
                .iter()
                .map(|(id, _, c)| RegionInfo {
                    id: id.to_string(),
                    corridors: c.iter().map(|s| s.to_string()).collect(),
                })
                .collect(),
            probes: REGIONS
                .iter()
                .flat_map(|(id, _, _)| {
                    (0..5).map(move |n| ProbeInfo {
                        id: probe_id(id, n),
                        region: id.to_string(),
                        asn: Some(if n < 2 { 64500 } else { 64501 }),
                    })
                })
                .collect(),
        };
        World {
            engine: Engine::new(Params::default(), topology),
            now: 1_767_571_200_000, // 2026-01-05T00:00Z, a Monday
            results: 0,
            seed: 7,
            fault: Box::new(|_, _, _| Effect::default()),
            silent: Box::new(|_, _| false),
            queued: Vec::new(),
        }
    }

    fn result(&self, region: usize, n: usize, t: i64, burst: bool) -> CheckResult {
        let (rid, base, _) = REGIONS[region];
        let key = (region * 5 + n) as u64;
        let jitter = |k: u64| 1.0 + 0.1 * (noise(self.seed, key * 7 + k, t as u64) - 0.5);
        let e = (self.fault)(rid, n, t);
        let rtt = (base + n as f64) * jitter(1) + e.rtt;
        let server = 60.0 * jitter(2) + e.server;
        let us = |ms: f64| (ms * 1000.0) as u64;
        let mut phases = Phases {
            dns: Some(us(3.0 * jitter(3))),
            connect: Some(us(rtt)),
            tls: Some(us(rtt * jitter(4) + 2.0)),
            ttfb: Some(us(rtt + server)),
            transfer: Some(200),
            total: 0,
        };
        let mut error = None;
        let mut status = Some(200);
        match e.fail {
            Some(ErrorClass::HttpStatus) => status = Some(503),
            Some(ErrorClass::ConnectTimeout) => {
                phases.connect = None;
                phases.tls = None;
                phases.ttfb = None;
                phases.transfer = None;
            }
            Some(ErrorClass::Dns) => {
                phases = Phases {
                    dns: None,
                    ..Phases::default()
                };
            }
            _ => {}
        }
        if let Some(class) = e.fail {
            error = Some(CheckError {
                class,
                message: "injected".into(),
            });
        }
        let _ = burst;
        CheckResult {
            probe_id: probe_id(rid, n),
            region: rid.to_string(),
            check_id: CheckId::parse("www").expect("valid id"),
            scheduled_ms: t,
            started_ms: t,
            phases,
            remote_ip: None,
            http: Some(HttpDetail {
                status,
                ..HttpDetail::default()
            }),
            dns: None,
            error,
            warnings: Vec::new(),
        }
    }

    /// Run until `until`, one scheduled check per probe per minute (staggered), heartbeats
    /// every 5 s, bursts answered 1 s after they are ordered; returns the actions.
    fn run_until(&mut self, until: i64) -> Vec<Action> {
        let mut actions = Vec::new();
        let step = 1_000;
        while self.now < until {
            let t = self.now;
            for (r, (rid, _, _)) in REGIONS.iter().enumerate() {
                let silent = (self.silent)(rid, t);
                for n in 0..5 {
                    let id = probe_id(rid, n);
                    if !silent && t % 5_000 == 0 {
                        self.engine.heartbeat(&id, t);
                    }
                    let offset = (n as i64) * 12_000 + 3_000;
                    if t.rem_euclid(MIN) == offset {
                        if silent {
                            self.queued.push((t, id, n, false));
                            let _ = r;
                        } else {
                            let res = self.result(r, n, t, false);
                            self.engine.observe(&res, false, t + 300);
                            self.results += 1;
                        }
                    }
                }
            }
            // Deliver what silent regions queued once they can talk again.
            let mut still = Vec::new();
            for (qt, id, n, b) in std::mem::take(&mut self.queued) {
                let region = id.split('/').next().unwrap_or_default().to_string();
                let r = REGIONS.iter().position(|x| x.0 == region).unwrap_or(0);
                if (self.silent)(&region, t) {
                    still.push((qt, id, n, b));
                } else {
                    let res = self.result(r, n, qt, b);
                    self.engine.observe(&res, b, t);
                }
            }
            self.queued = still;
            let acts = self.engine.tick(t);
            for a in &acts {
                if let Action::Burst(order) = a {
                    for (k, id) in order.probe_ids.iter().enumerate() {
                        let (region, n) = id.split_once('/').unwrap_or_default();
                        let r = REGIONS.iter().position(|x| x.0 == region).unwrap_or(0);
                        let n: usize = n.parse::<usize>().unwrap_or(1) - 1;
                        if (self.silent)(region, t) {
                            continue;
                        }
                        for run in 0..order.runs {
                            let at = t + 500 + i64::from(run) * 100 + k as i64;
                            let res = self.result(r, n, at, true);
                            self.engine.observe(&res, true, at + 300);
                        }
                    }
                }
            }
            actions.extend(acts);
            self.now += step;
        }
        actions
    }

    fn warm_up(&mut self, hours: i64) {
        let until = self.now + hours * 60 * MIN;
        // Warm-up at a coarser step is not possible (stagger offsets are on the second), so
        // keep it to a day.
        self.run_until(until);
    }
}

/// A fiber cut: +180 ms on every round trip of me-south during `[onset, end)`.
fn me_south_cut(onset: i64, end: i64) -> FaultFn {
    Box::new(move |r, _, t| Effect {
        rtt: if r == "me-south" && t >= onset && t < end {
            180.0
        } else {
            0.0
        },
        ..Effect::default()
    })
}

fn site_incidents(e: &Engine) -> Vec<&Incident> {
    e.incidents()
        .iter()
        .filter(|i| !i.class.is_operational())
        .collect()
}

#[test]
fn quiet_world_raises_nothing() {
    let mut w = World::new();
    w.warm_up(26);
    let summary: Vec<String> = w
        .engine
        .incidents()
        .iter()
        .map(|i| {
            format!(
                "{} {:?} {} {}",
                i.class,
                i.regions,
                (i.detected_ms - 1_767_571_200_000) / 60_000,
                i.explanation
            )
        })
        .collect();
    assert!(w.engine.incidents().is_empty(), "{summary:#?}");
    assert_eq!(
        w.engine.region_status("www", "me-south", w.now),
        RegionStatus::Normal
    );
}

#[test]
fn fiber_cut_is_regional_network_for_that_region_only() {
    let mut w = World::new();
    w.warm_up(25);
    let onset = w.now + 30 * 1000;
    let end = onset + 20 * MIN;
    w.fault = me_south_cut(onset, end);
    w.run_until(end + 5 * MIN);
    let site = site_incidents(&w.engine);
    assert_eq!(site.len(), 1, "{site:#?}");
    let inc = site[0];
    assert_eq!(inc.class, Class::RegionalNetwork);
    assert_eq!(inc.regions.iter().collect::<Vec<_>>(), ["me-south"]);
    let ttd = inc.detected_ms - onset;
    assert!(ttd <= 45_000, "detected {ttd} ms after onset");
    assert!(inc.paged_ms.is_some(), "a sustained cut pages");
    let ttr = inc.resolved_ms.expect("resolved") - end;
    assert!(ttr <= 180_000, "resolved {ttr} ms after the fault ended");
    assert!(
        inc.explanation.contains("in me-south: connect +1"),
        "{}",
        inc.explanation
    );
    assert!(
        inc.explanation.contains("server time unchanged"),
        "{}",
        inc.explanation
    );
}

/// A latency fault confirmed but gone before its persistence check resolves without a page;
/// when it comes back within the re-open window the same incident must still page, once.
#[test]
fn a_latency_fault_that_comes_back_before_paging_pages_once() {
    let mut w = World::new();
    w.warm_up(25);
    let onset = w.now + 30 * 1000;
    let back = onset + 20_000 + 2 * MIN;
    let end = back + 10 * MIN;
    w.fault = Box::new(move |r, _, t| Effect {
        rtt: if r == "me-south"
            && ((onset..onset + 20_000).contains(&t) || (back..end).contains(&t))
        {
            180.0
        } else {
            0.0
        },
        ..Effect::default()
    });
    w.run_until(end + 5 * MIN);
    let site = site_incidents(&w.engine);
    assert_eq!(site.len(), 1, "{site:#?}");
    let timeline: Vec<&str> = site[0].timeline.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(
        timeline.iter().filter(|w| **w == "paged").count(),
        1,
        "{timeline:#?}"
    );
    assert!(
        timeline
            .iter()
            .any(|w| w.starts_with("resolved; it did not persist")),
        "{timeline:#?}"
    );
    assert!(site[0].paged_ms.is_some_and(|p| p >= back), "{timeline:#?}");
}

#[test]
fn origin_503_everywhere_is_origin_down_and_pages_at_detection() {
    let mut w = World::new();
    w.warm_up(25);
    let onset = w.now + 10_000;
    w.fault = Box::new(move |_, _, t| Effect {
        fail: (t >= onset).then_some(ErrorClass::HttpStatus),
        ..Effect::default()
    });
    w.run_until(onset + 3 * MIN);
    let site = site_incidents(&w.engine);
    assert_eq!(site.len(), 1, "{site:#?}");
    assert_eq!(site[0].class, Class::OriginDown);
    assert!(site[0].detected_ms - onset <= 45_000);
    assert_eq!(site[0].paged_ms, Some(site[0].detected_ms));
}

#[test]
fn server_delay_for_one_region_is_regional_server_not_network() {
    let mut w = World::new();
    w.warm_up(25);
    let onset = w.now + 10_000;
    w.fault = Box::new(move |r, _, t| Effect {
        server: if r == "me-south" && t >= onset {
            800.0
        } else {
            0.0
        },
        ..Effect::default()
    });
    w.run_until(onset + 5 * MIN);
    let site = site_incidents(&w.engine);
    assert_eq!(site.len(), 1, "{site:#?}");
    assert_eq!(site[0].class, Class::RegionalServer);
    assert!(
        site[0].explanation.contains("connect unchanged"),
        "{}",
        site[0].explanation
    );
}

#[test]
fn origin_slow_everywhere() {
    let mut w = World::new();
    w.warm_up(25);
    let onset = w.now + 10_000;
    w.fault = Box::new(move |_, _, t| Effect {
        server: if t >= onset { 800.0 } else { 0.0 },
        ..Effect::default()
    });
    w.run_until(onset + 3 * MIN);
    let site = site_incidents(&w.engine);
    assert_eq!(site.len(), 1, "{site:#?}");
    assert_eq!(site[0].class, Class::OriginSlow);
    assert!(site[0].detected_ms - onset <= 45_000);
}

#[test]
fn corridor_regions_five_minutes_apart_are_one_incident() {
    let mut w = World::new();
    w.warm_up(25);
    let a = w.now + 10_000;
    let b = a + 5 * MIN;
    w.fault = Box::new(move |r, _, t| Effect {
        rtt: match r {
            "me-south" if t >= a => 150.0,
            "ap-south" if t >= b => 120.0,
            _ => 0.0,
        },
        ..Effect::default()
    });
    w.run_until(b + 5 * MIN);
    let site = site_incidents(&w.engine);
    assert_eq!(site.len(), 1, "{site:#?}");
    assert_eq!(site[0].regions.len(), 2);
}

#[test]
fn a_reopened_incident_groups_its_corridor_partner() {
    // me-south degrades, recovers (its incident resolves), then degrades again within the
    // re-open window, continuing that incident; ap-south, on the same corridor, follows five
    // minutes later. The grouping window counts from the re-opened episode, not from the
    // first onset (over ten minutes before ap-south's): one incident, both regions.
    let mut w = World::new();
    w.warm_up(25);
    let first = w.now + 10_000;
    let again = first + 6 * MIN;
    let b = again + 5 * MIN;
    w.fault = Box::new(move |r, _, t| Effect {
        rtt: match r {
            "me-south" if (first..first + 2 * MIN).contains(&t) || t >= again => 150.0,
            "ap-south" if t >= b => 120.0,
            _ => 0.0,
        },
        ..Effect::default()
    });
    w.run_until(again - 10_000);
    let site = site_incidents(&w.engine);
    assert_eq!(site.len(), 1, "{site:#?}");
    assert_eq!(site[0].state, IncidentState::Resolved, "{site:#?}");
    w.run_until(b + 5 * MIN);
    let site = site_incidents(&w.engine);
    assert_eq!(site.len(), 1, "{site:#?}");
    assert_eq!(site[0].regions.len(), 2, "{site:#?}");
}

#[test]
fn one_broken_probe_is_quarantined_and_never_pages() {
    let mut w = World::new();
    w.warm_up(25);
    let onset = w.now + 10_000;
    w.fault = Box::new(move |r, n, t| Effect {
        rtt: if r == "me-south" && n == 2 && t >= onset {
            400.0
        } else {
            0.0
        },
        ..Effect::default()
    });
    w.run_until(onset + 10 * MIN);
    assert!(
        site_incidents(&w.engine).is_empty(),
        "{:#?}",
        w.engine.incidents()
    );
    let pf: Vec<&Incident> = w
        .engine
        .incidents()
        .iter()
        .filter(|i| i.class == Class::ProbeFault)
        .collect();
    assert_eq!(pf.len(), 1, "{:#?}", w.engine.incidents());
    assert_eq!(pf[0].probe.as_deref(), Some("me-south/3"));
    assert!(pf[0].paged_ms.is_none());
    assert!(w.engine.is_quarantined("me-south/3"));
}

#[test]
fn silent_region_is_unknown_then_amended_by_late_data_without_a_page() {
    let mut w = World::new();
    w.warm_up(25);
    let onset = w.now + 10_000;
    let end = onset + 10 * MIN;
    w.silent = Box::new(move |r, t| r == "me-south" && t >= onset && t < end);
    w.fault = Box::new(move |r, _, t| Effect {
        fail: (r == "me-south" && t >= onset && t < end).then_some(ErrorClass::ConnectTimeout),
        ..Effect::default()
    });
    w.run_until(onset + 2 * MIN);
    assert_eq!(
        w.engine.region_status("www", "me-south", w.now),
        RegionStatus::Unknown
    );
    w.run_until(end + 5 * MIN);
    let silent: Vec<&Incident> = w
        .engine
        .incidents()
        .iter()
        .filter(|i| i.class == Class::RegionSilent)
        .collect();
    assert_eq!(silent.len(), 1, "{:#?}", w.engine.incidents());
    assert!(silent[0].paged_ms.is_none());
    assert!(
        silent[0].explanation.contains("late data"),
        "{}",
        silent[0].explanation
    );
    assert!(
        site_incidents(&w.engine).is_empty(),
        "late data must not page: {:#?}",
        w.engine.incidents()
    );
}

/// Warm start: an engine that restarts and is taught the stored history with
/// [`Engine::learn`] detects a fiber cut as fast as one that ran all along; without the
/// history it could not call a latency anomaly at all (no seasonal baseline yet).
#[test]
fn an_engine_taught_stored_history_detects_at_once_and_a_cold_one_cannot() {
    let teacher = World::new();
    let start = teacher.now;
    let restart = start + 25 * 60 * MIN;
    let mut history = Vec::new();
    for t in (start..restart).step_by(1_000) {
        for r in 0..REGIONS.len() {
            for n in 0..5 {
                if t.rem_euclid(MIN) == (n as i64) * 12_000 + 3_000 {
                    history.push(teacher.result(r, n, t, false));
                }
            }
        }
    }
    let onset = restart + 10 * MIN + 30_000;
    let end = onset + 15 * MIN;

    let mut warm = World::new();
    warm.now = restart;
    for result in &history {
        warm.engine.learn(result);
    }
    warm.fault = me_south_cut(onset, end);
    warm.run_until(end + 5 * MIN);
    let site = site_incidents(&warm.engine);
    assert_eq!(site.len(), 1, "{site:#?}");
    assert_eq!(site[0].class, Class::RegionalNetwork);
    assert_eq!(site[0].regions.iter().collect::<Vec<_>>(), ["me-south"]);
    let ttd = site[0].detected_ms - onset;
    assert!(ttd <= 45_000, "detected {ttd} ms after onset");
    assert!(site[0].resolved_ms.is_some());

    let mut cold = World::new();
    cold.now = restart;
    cold.fault = me_south_cut(onset, end);
    cold.run_until(end + 5 * MIN);
    assert!(site_incidents(&cold.engine).is_empty());
    assert_eq!(
        cold.engine.region_status("www", "me-south", cold.now),
        RegionStatus::Warming
    );
}
