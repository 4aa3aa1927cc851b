//! The discrete-event driver: the world's probes run their checks on schedule, heartbeat,
//! answer bursts and deliver results to a [`Detector`] (the real engine, or a recording fake in
//! tests), in virtual time.
//!
//! Events sit in a binary heap keyed by (time, sequence number), so ties are processed in the
//! order they were scheduled and a run is deterministic. Every random draw comes from a
//! generator seeded by what it is for (probe, target, time, run), so the world's noise does not
//! depend on the order events happen to be processed in, nor on which bursts the engine
//! ordered: two engines see the same scheduled results.
//!
//! Warm-up is kept cheap: results are delivered as they arrive but the detector is ticked (and
//! heartbeats handed over) once per check interval, not after every delivery. After warm-up the
//! detector is ticked after every delivery and once per heartbeat period.
//!
//! - **Late data:** while a region is silenced its probes' heartbeats, clock estimates and
//!   burst orders are lost and its results are held. When the silence ends each probe
//!   reconnects after its own delay (0.5–5 s), says hello (a heartbeat and a clock estimate),
//!   then flushes its backlog: the held results, with their original timestamps, in the order
//!   they were produced.
//! - **Bursts:** a `Burst` action makes each named probe that is up and reachable run the check
//!   `runs` times, the first 50 ms later (command latency), 100 ms apart, each result generated
//!   at its own run time and delivered with `burst = true`; orders to down or silenced probes
//!   are lost.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use meridian_shared::result::CheckResult;
use rand::RngExt as _;

use super::generate;
use super::world::{DRAW_PING, World, rng_for};
use crate::detect::{Action, Engine};

/// What the driver feeds: the detection engine's entry points.
pub trait Detector {
    /// A delivered result.
    fn observe(&mut self, result: &CheckResult, burst: bool, received_ms: i64);
    /// A probe's heartbeat arrived.
    fn heartbeat(&mut self, probe_id: &str, at_ms: i64);
    /// The coordinator's estimate of a probe's clock offset (probe ahead = positive).
    fn clock_offset(&mut self, probe_id: &str, offset_ms: i64, at_ms: i64);
    /// Virtual time advanced to `now_ms`.
    fn tick(&mut self, now_ms: i64) -> Vec<Action>;
}

impl Detector for Engine {
    fn observe(&mut self, result: &CheckResult, burst: bool, received_ms: i64) {
        Engine::observe(self, result, burst, received_ms);
    }
    fn heartbeat(&mut self, probe_id: &str, at_ms: i64) {
        Engine::heartbeat(self, probe_id, at_ms);
    }
    fn clock_offset(&mut self, probe_id: &str, offset_ms: i64, at_ms: i64) {
        Engine::clock_offset(self, probe_id, offset_ms, at_ms);
    }
    fn tick(&mut self, now_ms: i64) -> Vec<Action> {
        Engine::tick(self, now_ms)
    }
}

/// Command latency before a burst's first run, ms.
pub const BURST_LATENCY_MS: i64 = 50;
/// Spacing between a burst's runs, ms.
pub const BURST_SPACING_MS: i64 = 100;
/// Clock estimates are delivered with every this many heartbeats.
const PINGS_EVERY: u32 = 6;

/// What a run did, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Results delivered to the detector (warm-up and bursts included).
    pub results: u64,
    /// Of those, burst results.
    pub burst_results: u64,
    /// Burst orders received.
    pub bursts: u64,
    /// Results delivered late, after a silence.
    pub late_results: u64,
}

#[derive(Debug)]
enum Event {
    /// A probe runs a target's check: scheduled (`run` 0) or the `run`-th of a burst.
    Run {
        probe: usize,
        target: usize,
        /// The slot (scheduled) or the run's start (burst), true time.
        slot_ms: i64,
        burst: Option<u8>,
    },
    /// A result reaches the coordinator.
    Deliver {
        result: Box<CheckResult>,
        burst: bool,
        late: bool,
    },
    /// A probe's heartbeat period came round (after warm-up).
    Heartbeat { probe: usize, n: u32 },
    /// A probe reconnected after a silence: it says hello (a heartbeat and a clock estimate)
    /// before flushing its backlog.
    Hello { probe: usize },
    /// The periodic tick after warm-up.
    Tick,
    /// Warm-up's once-per-interval heartbeats, clock estimates and tick.
    WarmTick,
}

struct Entry {
    at: i64,
    seq: u64,
    event: Event,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Driver<'w, D> {
    world: &'w World,
    detector: &'w mut D,
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    heartbeat_ms: i64,
    stats: Stats,
}

/// Runs the whole scenario (warm-up, then the faults) through `detector`. `heartbeat_ms` is
/// the probes' heartbeat period (the engine's `Params::heartbeat_ms`).
pub fn simulate<D: Detector>(world: &World, detector: &mut D, heartbeat_ms: i64) -> Stats {
    let mut d = Driver {
        world,
        detector,
        heap: BinaryHeap::new(),
        seq: 0,
        heartbeat_ms: heartbeat_ms.max(1),
        stats: Stats::default(),
    };
    let begin = world.start_ms - world.scenario.warmup_ms;
    let interval = world.scenario.interval_ms;
    for (p, probe) in world.probes.iter().enumerate() {
        for (k, target) in world.targets.iter().enumerate() {
            let slot_ms = begin + probe.slot_ms + target.offset_ms;
            let event = Event::Run {
                probe: p,
                target: k,
                slot_ms,
                burst: None,
            };
            d.push(slot_ms, event);
        }
        // Heartbeats after warm-up, spread over the period.
        let n = i64::try_from(world.probes.len()).unwrap_or(1).max(1);
        let phase = i64::try_from(p).unwrap_or(0) * d.heartbeat_ms / n;
        d.push(world.start_ms + phase, Event::Heartbeat { probe: p, n: 0 });
        for at in world.reconnections(p) {
            d.push(at, Event::Hello { probe: p });
        }
    }
    // Warm-up ticks run from the beginning up to and including the start (so every probe has
    // a fresh heartbeat when the faults begin); periodic ticks take over one period later.
    d.push(begin, Event::WarmTick);
    d.push(world.start_ms + d.heartbeat_ms, Event::Tick);
    d.drain(interval);
    let actions = d.detector.tick(world.end_ms);
    d.act(world.end_ms, actions);
    d.stats
}

impl<D: Detector> Driver<'_, D> {
    fn push(&mut self, at: i64, event: Event) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            event,
        }));
    }

    fn drain(&mut self, interval: i64) {
        let (start, end) = (self.world.start_ms, self.world.end_ms);
        while let Some(Reverse(entry)) = self.heap.pop() {
            let now = entry.at;
            if now >= end {
                break;
            }
            match entry.event {
                Event::Run {
                    probe,
                    target,
                    slot_ms,
                    burst,
                } => {
                    if burst.is_none() && slot_ms + interval < end {
                        let next = Event::Run {
                            probe,
                            target,
                            slot_ms: slot_ms + interval,
                            burst: None,
                        };
                        self.push(slot_ms + interval, next);
                    }
                    self.run(probe, target, slot_ms, burst);
                }
                Event::Deliver {
                    result,
                    burst,
                    late,
                } => {
                    self.detector.observe(&result, burst, now);
                    self.stats.results += 1;
                    self.stats.burst_results += u64::from(burst);
                    self.stats.late_results += u64::from(late);
                    if now >= start {
                        let actions = self.detector.tick(now);
                        self.act(now, actions);
                    }
                }
                Event::Heartbeat { probe, n } => {
                    self.heartbeat(probe, n, now);
                    self.push(
                        now + self.heartbeat_ms,
                        Event::Heartbeat { probe, n: n + 1 },
                    );
                }
                Event::Hello { probe } => self.heartbeat(probe, 0, now),
                Event::Tick => {
                    let actions = self.detector.tick(now);
                    self.act(now, actions);
                    self.push(now + self.heartbeat_ms, Event::Tick);
                }
                Event::WarmTick => {
                    for p in 0..self.world.probes.len() {
                        self.heartbeat(p, 0, now);
                    }
                    let actions = self.detector.tick(now);
                    self.act(now, actions);
                    if now < start {
                        self.push((now + interval).min(start), Event::WarmTick);
                    }
                }
            }
        }
    }

    /// Probe `p` runs target `k` (if its process is up) and its result is sent.
    fn run(&mut self, p: usize, k: usize, slot_ms: i64, burst: Option<u8>) {
        let world = self.world;
        let run = burst.map_or(0, |r| u64::from(r) + 1);
        let mut rng = rng_for(
            world.scenario.seed,
            &[p as u64, k as u64, slot_ms as u64, run],
        );
        let start_ms = match burst {
            None => {
                let max_jitter = (world.scenario.interval_ms / 60).clamp(1, 1_000);
                slot_ms + rng.random_range(0..max_jitter)
            }
            Some(_) => slot_ms,
        };
        if world.is_down(p, start_ms) {
            return;
        }
        let result = generate::run_check(world, p, k, slot_ms, start_ms, &mut rng);
        let total_ms = i64::try_from(result.phases.total / 1000).unwrap_or(0);
        let sent_ms = start_ms + total_ms + rng.random_range(20..=200);
        // Held while the region is silenced; the backlog is flushed on reconnection.
        let at = world.link_ready_at(p, sent_ms);
        let late = at > sent_ms;
        let event = Event::Deliver {
            result: Box::new(result),
            burst: burst.is_some(),
            late,
        };
        self.push(at, event);
    }

    /// Probe `p`'s `n`-th heartbeat at `now`, with a clock estimate every few; lost while the
    /// probe is down or its region silenced.
    fn heartbeat(&mut self, p: usize, n: u32, now: i64) {
        let world = self.world;
        if world.is_down(p, now) || world.link_ready_at(p, now) > now {
            return;
        }
        let id = &world.probes[p].id;
        self.detector.heartbeat(id, now);
        if n.is_multiple_of(PINGS_EVERY) {
            let mut rng = rng_for(world.scenario.seed, &[DRAW_PING, p as u64, now as u64]);
            let estimate = world.clock_offset_ms(p, now) + rng.random_range(-3..=3);
            self.detector.clock_offset(id, estimate, now);
        }
    }

    /// Carries out the detector's burst orders.
    fn act(&mut self, now: i64, actions: Vec<Action>) {
        for action in actions {
            let Action::Burst(order) = action else {
                continue;
            };
            self.stats.bursts += 1;
            let Some(k) = self.world.target_index(order.check_id.as_str()) else {
                continue;
            };
            for id in &order.probe_ids {
                let Some(p) = self.world.probe_index(id) else {
                    continue;
                };
                if self.world.is_down(p, now) || self.world.link_ready_at(p, now) > now {
                    continue;
                }
                for r in 0..order.runs {
                    let at = now + BURST_LATENCY_MS + i64::from(r) * BURST_SPACING_MS;
                    let event = Event::Run {
                        probe: p,
                        target: k,
                        slot_ms: at,
                        burst: Some(r),
                    };
                    self.push(at, event);
                }
            }
        }
    }
}
