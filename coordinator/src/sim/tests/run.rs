//! The driver: schedule, heartbeats, clock estimates, bursts and late data, seen through a
//! recording detector; and determinism.

use std::collections::BTreeMap;

use meridian_shared::result::{CheckResult, ErrorClass};

use super::super::run::{BURST_LATENCY_MS, BURST_SPACING_MS, Detector, Stats, simulate};
use super::super::world::World;
use super::world;
use crate::detect::{Action, BurstOrder};

const MIN: i64 = 60_000;
const HB: i64 = 5_000;

/// Records everything; orders the bursts it is given when time reaches them.
#[derive(Default)]
struct Recorder {
    results: Vec<(CheckResult, bool, i64)>,
    heartbeats: Vec<(String, i64)>,
    clocks: Vec<(String, i64, i64)>,
    ticks: Vec<i64>,
    orders: Vec<(i64, BurstOrder)>,
}

impl Detector for Recorder {
    fn observe(&mut self, result: &CheckResult, burst: bool, received_ms: i64) {
        self.results.push((result.clone(), burst, received_ms));
    }
    fn heartbeat(&mut self, probe_id: &str, at_ms: i64) {
        self.heartbeats.push((probe_id.to_string(), at_ms));
    }
    fn clock_offset(&mut self, probe_id: &str, offset_ms: i64, at_ms: i64) {
        self.clocks.push((probe_id.to_string(), offset_ms, at_ms));
    }
    fn tick(&mut self, now_ms: i64) -> Vec<Action> {
        self.ticks.push(now_ms);
        let (due, later) = std::mem::take(&mut self.orders)
            .into_iter()
            .partition(|(at, _)| *at <= now_ms);
        self.orders = later;
        due.into_iter().map(|(_, o)| Action::Burst(o)).collect()
    }
}

fn record(w: &World, orders: Vec<(i64, BurstOrder)>) -> (Recorder, Stats) {
    let mut r = Recorder {
        orders,
        ..Recorder::default()
    };
    let stats = simulate(w, &mut r, HB);
    (r, stats)
}

fn of<'a>(r: &'a Recorder, probe: &'a str) -> impl Iterator<Item = &'a (CheckResult, bool, i64)> {
    r.results
        .iter()
        .filter(move |(x, _, _)| x.probe_id == probe)
}

#[test]
fn same_seed_same_results_and_another_seed_other_results() {
    let w =
        world("[[fault]]\nkind = \"path\"\nregions = [\"me-south\"]\nat = \"10m\"\nloss = 0.1\n");
    let mut noisy = w.scenario.clone();
    noisy.noise = Default::default();
    noisy.warmup_ms = 2 * 3_600_000;
    let w = World::new(noisy, &meridian_shared::regions::Catalog::builtin());
    let (a, _) = record(&w, Vec::new());
    let (b, _) = record(&w, Vec::new());
    assert_eq!(a.results, b.results);
    assert_eq!(
        (a.heartbeats.len(), a.clocks),
        (b.heartbeats.len(), b.clocks)
    );
    let mut other = w.scenario.clone();
    other.seed += 1;
    let (c, _) = record(
        &World::new(other, &meridian_shared::regions::Catalog::builtin()),
        Vec::new(),
    );
    assert_eq!(c.results.len(), a.results.len());
    let differ = a
        .results
        .iter()
        .zip(&c.results)
        .filter(|(x, y)| x.0.phases != y.0.phases)
        .count();
    assert!(
        differ > a.results.len() * 9 / 10,
        "{differ} of {}",
        a.results.len()
    );
}

#[test]
fn every_probe_runs_every_target_once_per_interval_in_its_staggered_slot() {
    let w = world("");
    let (r, stats) = record(&w, Vec::new());
    // 9 probes × 1 target × 60 one-minute slots, no warm-up.
    assert_eq!(stats.results, 9 * 60);
    assert_eq!(stats.burst_results, 0);
    for n in 1..=3_i64 {
        let id = format!("eu-west/{n}");
        let slots: Vec<i64> = of(&r, &id)
            .map(|(x, _, _)| x.scheduled_ms - w.start_ms)
            .collect();
        assert_eq!(slots.len(), 60);
        assert!(
            slots.iter().all(|s| s.rem_euclid(MIN) == (n - 1) * 20_000),
            "{id}: {slots:?}"
        );
        for (x, _, received) in of(&r, &id) {
            let started = x.started_ms - x.scheduled_ms;
            assert!(
                (0..1_000).contains(&started),
                "jitter within a second: {started}"
            );
            let end = x.started_ms + i64::try_from(x.phases.total / 1000).unwrap();
            assert!(
                (end + 20..=end + 200).contains(received),
                "uplink delay: {} ",
                received - end
            );
        }
    }
}

#[test]
fn warm_up_ticks_once_per_interval_and_then_after_every_delivery() {
    let mut s = world("").scenario;
    s.warmup_ms = 3_600_000;
    let w = World::new(s, &meridian_shared::regions::Catalog::builtin());
    let (r, stats) = record(&w, Vec::new());
    let warm: Vec<i64> = r
        .ticks
        .iter()
        .copied()
        .filter(|t| *t <= w.start_ms)
        .collect();
    assert_eq!(warm.len(), 61, "every minute of the hour, and at the start");
    assert_eq!(warm.last(), Some(&w.start_ms));
    // Afterwards: one per delivery, one per heartbeat period, one at the end.
    let after = r.ticks.len() - warm.len();
    let deliveries = usize::try_from(stats.results).unwrap() - 9 * 60;
    assert_eq!(after, deliveries + 12 * 60 - 1 + 1);
    // Every probe had a heartbeat at the start: none looks silent when the faults begin.
    for p in &w.probes {
        assert!(
            r.heartbeats.contains(&(p.id.clone(), w.start_ms)),
            "{}",
            p.id
        );
    }
}

#[test]
fn heartbeats_come_every_period_and_clock_estimates_every_sixth() {
    let w = world(
        "[[fault]]\nkind = \"clock\"\nprobe = \"eu-west/2\"\nat = \"10m\"\noffset = \"-90s\"\n",
    );
    let (r, _) = record(&w, Vec::new());
    let beats: Vec<i64> = r
        .heartbeats
        .iter()
        .filter(|(p, _)| p == "eu-west/2")
        .map(|(_, t)| *t)
        .collect();
    assert!(
        beats.windows(2).all(|w| w[1] - w[0] <= HB),
        "gaps over a period"
    );
    assert_eq!(beats.len(), 1 + 60 * 12);
    let clocks: Vec<(i64, i64)> = r
        .clocks
        .iter()
        .filter(|(p, _, _)| p == "eu-west/2")
        .map(|(_, o, t)| (*o, *t))
        .collect();
    assert_eq!(clocks.len(), 1 + 120);
    for (offset, at) in clocks {
        let truth = if at >= w.start_ms + 10 * MIN {
            -90_000
        } else {
            0
        };
        assert!(
            (offset - truth).abs() <= 3,
            "{offset} at {}",
            at - w.start_ms
        );
    }
}

#[test]
fn a_silenced_region_goes_quiet_then_delivers_late_with_original_stamps() {
    let w = world(
        "[[fault]]\nkind = \"silence\"\nregions = [\"me-south\"]\nat = \"10m\"\nfor = \"15m\"\npath = true\n",
    );
    let (r, stats) = record(&w, Vec::new());
    let (from, to) = (w.start_ms + 10 * MIN, w.start_ms + 25 * MIN);
    let quiet = |t: i64| (from..to).contains(&t);
    assert!(
        !r.heartbeats
            .iter()
            .any(|(p, t)| p.starts_with("me-south/") && quiet(*t))
    );
    assert!(
        r.heartbeats
            .iter()
            .any(|(p, t)| p.starts_with("eu-west/") && quiet(*t))
    );
    let held: Vec<_> = r
        .results
        .iter()
        .filter(|(x, _, _)| x.region == "me-south" && quiet(x.started_ms))
        .collect();
    assert_eq!(held.len(), 3 * 15, "nothing is lost");
    // Held: everything produced in the window, plus what was in flight when it began or
    // produced while its probe was still reconnecting.
    assert!(
        (45..=51).contains(&stats.late_results),
        "{}",
        stats.late_results
    );
    for (x, _, received) in &held {
        assert!(
            *received >= to,
            "delivered after the silence, not during it"
        );
        assert_eq!(
            x.error.as_ref().unwrap().class,
            ErrorClass::ConnectTimeout,
            "path = true"
        );
    }
    // A probe's backlog arrives in the order it was produced, right after its hello.
    let mut by_probe: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for (x, _, received) in &held {
        by_probe
            .entry(x.probe_id.as_str())
            .or_default()
            .push((x.scheduled_ms, *received));
    }
    assert_eq!(by_probe.len(), 3);
    for (probe, backlog) in by_probe {
        assert!(backlog.windows(2).all(|w| w[0].0 < w[1].0), "{probe}");
        let flushed = backlog[0].1;
        assert!(
            backlog.iter().all(|(_, r)| *r == flushed),
            "{probe}: one flush"
        );
        assert!(
            (to + 500..to + 5_000).contains(&flushed),
            "{probe}: reconnect delay"
        );
        let hello = r
            .heartbeats
            .iter()
            .find(|(p, t)| p == probe && *t >= to)
            .unwrap();
        assert_eq!(hello.1, flushed, "{probe}: hello first, then the backlog");
    }
}

#[test]
fn bursts_run_spaced_on_reachable_probes_and_are_lost_on_dead_ones() {
    let w =
        world("[[fault]]\nkind = \"probe\"\nprobe = \"eu-west/3\"\nat = \"10m\"\ndown = true\n");
    let at = w.start_ms + 20 * MIN + 1;
    let order = BurstOrder {
        probe_ids: vec!["eu-west/1".into(), "eu-west/3".into(), "nobody/9".into()],
        check_id: "www".into(),
        runs: 3,
    };
    let (r, stats) = record(&w, vec![(at, order)]);
    assert_eq!((stats.bursts, stats.burst_results), (1, 3));
    // Runs 100 ms apart with 20-200 ms uplink delays may arrive out of order.
    let mut burst: Vec<_> = r.results.iter().filter(|(_, b, _)| *b).collect();
    burst.sort_by_key(|(x, _, _)| x.started_ms);
    let ordered_at = *r.ticks.iter().find(|t| **t >= at).unwrap();
    for (i, (x, _, _)) in burst.iter().enumerate() {
        assert_eq!(x.probe_id, "eu-west/1");
        let i = i64::try_from(i).unwrap();
        assert_eq!(
            x.started_ms,
            ordered_at + BURST_LATENCY_MS + i * BURST_SPACING_MS
        );
    }
    // The dead probe neither reports nor heartbeats after minute 10.
    let dead_after = |t: i64| t >= w.start_ms + 10 * MIN;
    assert!(!of(&r, "eu-west/3").any(|(x, _, _)| dead_after(x.started_ms)));
    assert!(
        !r.heartbeats
            .iter()
            .any(|(p, t)| p == "eu-west/3" && dead_after(*t))
    );
}
