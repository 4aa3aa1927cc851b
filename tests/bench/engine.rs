//! `bench-engine`: how many results per second the detection engine digests on one core.
//!
//! The benchmark world: `--regions` (100) × `--probes` (10 per region, two ASNs) ×
//! `--targets` (20), one check per (probe, target) per `--interval-s` (60), staggered, for
//! `--hours` (24) of virtual time. Results are generated per virtual second into a reused
//! buffer (deterministic noise, no RNG crate), then handed to `Engine::observe`, and the engine
//! is ticked once per virtual second as the live coordinator ticks it. Only the engine's calls
//! are timed; generation is timed separately and reported.
//!
//! Two faults run the incident path: at hour 20 one region's round trip grows by 150 ms for
//! ten minutes, and at hour 22 another region's connects time out for ten minutes. A latency
//! anomaly is only called against a seasonal baseline (this hour on previous days), so a cold
//! engine cannot see the first: `--history-hours 24` teaches the engine the previous day with
//! `Engine::learn` first (a warm start, timed apart), and then it must. The hard failure needs
//! no baseline. Burst orders are counted, not run, so detection here waits for scheduled
//! samples (the simulator, `bench-ttd`, runs them). The report gives each fault's time to
//! detect and the incidents that match no fault (false incidents).
//!
//! Prints results, engine time, results per second, generation time, the faults, false
//! incidents and peak RSS.

use std::time::Duration;

use clap::Parser;
use meridian_coordinator::detect::{
    Action, Class, Engine, Incident, Params, ProbeInfo, RegionInfo, Topology,
};
use meridian_shared::check::CheckId;
use meridian_shared::result::{CheckError, CheckResult, ErrorClass, Phases};
use meridian_tests::synth::{self, unit};

#[derive(Parser)]
#[command(about = "Detection engine throughput on one core")]
struct Args {
    /// Regions.
    #[arg(long, default_value_t = 100)]
    regions: usize,
    /// Probes per region.
    #[arg(long, default_value_t = 10)]
    probes: usize,
    /// Targets checked by every probe.
    #[arg(long, default_value_t = 20)]
    targets: usize,
    /// Virtual hours.
    #[arg(long, default_value_t = 24)]
    hours: u64,
    /// Check interval, seconds.
    #[arg(long, default_value_t = 60)]
    interval_s: u64,
    /// Hours of history taught with `Engine::learn` before the measured hours (0: a cold
    /// engine, whose baselines are not seasonal until a day has passed).
    #[arg(long, default_value_t = 0)]
    history_hours: u64,
}

/// A fault of the benchmark world, in seconds of the measured run.
struct Fault {
    what: &'static str,
    region: usize,
    from_s: u64,
    to_s: u64,
    /// Extra round trip, ms; `None`: every connect times out.
    rtt_ms: Option<f64>,
}

struct Probe {
    id: String,
    region: String,
    region_index: usize,
    base_rtt_ms: f64,
}

#[expect(
    clippy::disallowed_types,
    reason = "a benchmark measures wall time on its own thread, outside any runtime"
)]
fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let regions: Vec<String> = (0..a.regions).map(|r| format!("region-{r}")).collect();
    let mut probes = Vec::new();
    for (ri, r) in regions.iter().enumerate() {
        for n in 0..a.probes {
            probes.push(Probe {
                id: format!("{r}/{}", n + 1),
                region: r.clone(),
                region_index: ri,
                base_rtt_ms: 8.0 + (ri * 37 % 250) as f64 + n as f64 * 0.7,
            });
        }
    }
    let topology = Topology {
        regions: regions
            .iter()
            .enumerate()
            .map(|(i, r)| RegionInfo {
                id: r.clone(),
                corridors: vec![format!("corridor-{}", i / 10)],
            })
            .collect(),
        probes: probes
            .iter()
            .enumerate()
            .map(|(i, p)| ProbeInfo {
                id: p.id.clone(),
                region: p.region.clone(),
                asn: Some(64500 + (i % 2) as u32),
            })
            .collect(),
    };
    let targets: Vec<CheckId> = (0..a.targets)
        .map(|t| CheckId::parse(&format!("target-{t}")).expect("valid id"))
        .collect();
    let interval_ms = a.interval_s as i64 * 1000;
    let mut engine = Engine::new(Params::for_interval(interval_ms), topology);
    // Each (probe, target) runs at a fixed second of the interval: the probe's stagger slot
    // within its region plus the target's place, as the real scheduler spreads them.
    let per_second = a.interval_s as usize;
    let mut schedule: Vec<Vec<(usize, usize)>> = vec![Vec::new(); per_second];
    for (pi, _) in probes.iter().enumerate() {
        for ti in 0..a.targets {
            let slot = (pi % a.probes) * per_second / a.probes + ti * 7;
            schedule[slot % per_second].push((pi, ti));
        }
    }
    let start_ms: i64 = 1_767_571_200_000;
    let seconds = a.hours * 3600;
    let faults: Vec<Fault> = [
        Fault {
            what: "+150 ms round trip",
            region: 3,
            from_s: 20 * 3600,
            to_s: 20 * 3600 + 600,
            rtt_ms: Some(150.0),
        },
        Fault {
            what: "connects time out",
            region: 5,
            from_s: 22 * 3600,
            to_s: 22 * 3600 + 600,
            rtt_ms: None,
        },
    ]
    .into_iter()
    .filter(|f| f.region < a.regions && f.to_s <= seconds)
    .collect();
    let mut buffer: Vec<CheckResult> = Vec::new();
    let history_s = a.history_hours * 3600;
    let t0 = std::time::Instant::now();
    for h in 0..history_s {
        let s = h as i64 - history_s as i64;
        let now = start_ms + s * 1000;
        for &(pi, ti) in &schedule[(h % a.interval_s) as usize] {
            let r = result(&probes[pi], pi, &targets[ti], ti, s, now, None);
            engine.learn(&r);
        }
    }
    let learn_time = t0.elapsed();
    let (mut engine_time, mut gen_time) = (Duration::ZERO, Duration::ZERO);
    let mut results = 0u64;
    let mut bursts = 0u64;
    for s in 0..seconds {
        let now = start_ms + s as i64 * 1000;
        let t0 = std::time::Instant::now();
        buffer.clear();
        for &(pi, ti) in &schedule[(s % a.interval_s) as usize] {
            let p = &probes[pi];
            let fault = faults
                .iter()
                .find(|f| f.region == p.region_index && (f.from_s..f.to_s).contains(&s));
            buffer.push(result(p, pi, &targets[ti], ti, s as i64, now, fault));
        }
        gen_time += t0.elapsed();
        let t1 = std::time::Instant::now();
        for r in &buffer {
            engine.observe(r, false, now + 200);
        }
        if s % 5 == 0 {
            for p in &probes {
                engine.heartbeat(&p.id, now);
            }
        }
        for action in engine.tick(now + 300) {
            if matches!(action, Action::Burst(_)) {
                bursts += 1;
            }
        }
        engine_time += t1.elapsed();
        results += buffer.len() as u64;
        if s % 3600 == 3599 {
            eprintln!(
                "hour {:>2}: {results} results, engine {:.1} s, {:.0} results/s",
                s / 3600 + 1,
                engine_time.as_secs_f64(),
                results as f64 / engine_time.as_secs_f64()
            );
        }
    }
    let incidents = engine.incidents();
    println!(
        "world: {} regions x {} probes x {} targets, {} s interval, {} h",
        a.regions, a.probes, a.targets, a.interval_s, a.hours
    );
    if history_s > 0 {
        println!(
            "warm start (not counted): {} h of history learnt in {:.2} s",
            a.history_hours,
            learn_time.as_secs_f64()
        );
    }
    println!("results: {results}");
    println!(
        "engine: {:.2} s, {:.0} results/s (observe + heartbeats + 1 tick per virtual second)",
        engine_time.as_secs_f64(),
        results as f64 / engine_time.as_secs_f64()
    );
    println!("generation (not counted): {:.2} s", gen_time.as_secs_f64());
    println!("bursts ordered: {bursts}");
    let mut matched = Vec::new();
    for f in &faults {
        let region = &regions[f.region];
        let from_ms = start_ms + f.from_s as i64 * 1000;
        let to_ms = start_ms + f.to_s as i64 * 1000;
        let hit = incidents.iter().find(|i| {
            i.class == Class::RegionalNetwork
                && i.regions.contains(region)
                && i.detected_ms >= from_ms
                && i.detected_ms <= to_ms
        });
        let verdict = match hit {
            Some(i) => {
                matched.push(i.id);
                format!(
                    "detected after {:.1} s as {} (#{}){}",
                    (i.detected_ms - from_ms) as f64 / 1000.0,
                    i.class,
                    i.id,
                    i.resolved_ms
                        .map_or(", not resolved".to_string(), |r| format!(
                            ", resolved {:.0} s after its end",
                            (r - to_ms) as f64 / 1000.0
                        ))
                )
            }
            None if f.rtt_ms.is_some() && a.history_hours < 24 && f.from_s < 24 * 3600 => {
                "not detected (a cold engine has no seasonal baseline yet: --history-hours 24)"
                    .to_string()
            }
            None => "NOT DETECTED".to_string(),
        };
        println!(
            "fault at hour {}: {region} {} for {} min: {verdict}",
            f.from_s / 3600,
            f.what,
            (f.to_s - f.from_s) / 60
        );
    }
    let false_incidents: Vec<&Incident> = incidents
        .iter()
        .filter(|i| !matched.contains(&i.id))
        .collect();
    println!("false incidents: {}", false_incidents.len());
    for i in false_incidents {
        println!(
            "  #{} {} {:?} at {:.0} s: {}",
            i.id,
            i.class,
            i.regions,
            (i.detected_ms - start_ms) as f64 / 1000.0,
            i.explanation
        );
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM"))
    {
        println!("peak RSS: {}", line.trim_start_matches("VmHWM:").trim());
    }
    Ok(())
}

/// The result of probe `p` (number `pi`) checking `target` (number `ti`) at second `s` of the
/// run (negative in the history), under `fault` if one is in force.
fn result(
    p: &Probe,
    pi: usize,
    target: &CheckId,
    ti: usize,
    s: i64,
    now: i64,
    fault: Option<&Fault>,
) -> CheckResult {
    let key = (pi as u64) << 40 ^ (ti as u64) << 32 ^ s as u64;
    let extra = fault.map_or(Some(0.0), |f| f.rtt_ms);
    let rtt = p.base_rtt_ms * (1.0 + 0.1 * (unit(key) - 0.5)) + extra.unwrap_or(0.0);
    let server = 40.0 * (1.0 + 0.2 * (unit(key ^ 1) - 0.5));
    let mut result = synth::https_ok(&p.id, &p.region, target, now, rtt, server);
    if extra.is_none() {
        result.phases = Phases {
            dns: Some(2_000),
            connect: None,
            tls: None,
            ttfb: None,
            transfer: None,
            total: 10_002_000,
        };
        result.http = None;
        result.error = Some(CheckError {
            class: ErrorClass::ConnectTimeout,
            message: "connect timed out after 10 s".to_string(),
        });
    }
    result
}
