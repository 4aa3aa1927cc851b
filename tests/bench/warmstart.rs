//! `bench-warmstart`: how long a restarted coordinator takes to relearn its baselines.
//!
//! At start the detection thread replays the stored scheduled results of the window the
//! baselines remember (a week and an hour at 60 s) through `Engine::learn` before its first
//! tick; until then detection is blind. This benchmark stores `--hours` (24) of a fleet of
//! `--regions` (30) × `--probes` (5) × `--targets` (10) at `--interval-s` (60) in a real
//! store through the normal ingest path (untimed), then times the replay the way the service
//! runs it: a read-only connection streaming `Store::scheduled_history` in start-time order
//! into `Engine::learn`. It also times the read alone, to split the cost between SQLite +
//! MessagePack and the engine, and extrapolates to a full week of that fleet.
//!
//! Prints rows, seconds, rows per second, the database size and peak RSS.

use std::time::Duration;

use clap::Parser;
use meridian_coordinator::detect::{Engine, Params, ProbeInfo, RegionInfo, Topology};
use meridian_coordinator::store::{ProbeBatch, Store};
use meridian_shared::check::CheckId;
use meridian_shared::result::CheckResult;
use meridian_tests::synth::{self, unit};

#[derive(Parser)]
#[command(about = "Warm start: replaying stored history into the detection engine")]
struct Args {
    /// Regions.
    #[arg(long, default_value_t = 30)]
    regions: usize,
    /// Probes per region.
    #[arg(long, default_value_t = 5)]
    probes: usize,
    /// Targets checked by every probe.
    #[arg(long, default_value_t = 10)]
    targets: usize,
    /// Hours of history stored.
    #[arg(long, default_value_t = 24)]
    hours: i64,
    /// Check interval, seconds.
    #[arg(long, default_value_t = 60)]
    interval_s: i64,
    /// Where to put the database (default: a temporary directory, removed at the end).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

fn result(
    probe: &str,
    region: &str,
    check: &CheckId,
    t: i64,
    base_rtt: f64,
    key: u64,
) -> CheckResult {
    let rtt = base_rtt * (1.0 + 0.1 * (unit(key) - 0.5));
    let server = 40.0 * (1.0 + 0.2 * (unit(key ^ 1) - 0.5));
    synth::https_ok(probe, region, check, t, rtt, server)
}

#[expect(
    clippy::disallowed_types,
    reason = "a benchmark measures wall time on its own thread, outside any runtime"
)]
fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let temp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let mut store = Store::open(&dir)?;
    let interval_ms = a.interval_s * 1000;
    let params = Params::for_interval(interval_ms);
    let mut probes = Vec::new();
    for r in 0..a.regions {
        for n in 0..a.probes {
            let id = format!("region-{r}/{}", n + 1);
            store.upsert_probe(&id, &format!("region-{r}"), None, 0)?;
            probes.push((id, format!("region-{r}"), 8.0 + (r * 37 % 250) as f64));
        }
    }
    let targets: Vec<CheckId> = (0..a.targets)
        .map(|t| CheckId::parse(&format!("target-{t}")).map_err(anyhow::Error::msg))
        .collect::<Result<_, _>>()?;
    let end_ms: i64 = 1_767_571_200_000 + a.hours * 3_600_000;
    let start_ms = end_ms - a.hours * 3_600_000;
    // Store minute by minute, every probe's results of the minute in one group commit.
    let t0 = std::time::Instant::now();
    let mut seqs = vec![0u64; probes.len()];
    let mut stored = 0u64;
    let mut t = start_ms;
    while t < end_ms {
        let batches: Vec<Vec<(u64, CheckResult)>> = probes
            .iter()
            .enumerate()
            .map(|(pi, (id, region, rtt))| {
                targets
                    .iter()
                    .enumerate()
                    .map(|(ti, check)| {
                        seqs[pi] += 1;
                        let at = t + (ti as i64 * 997) % interval_ms;
                        let key = (pi as u64) << 40 ^ (ti as u64) << 32 ^ at as u64;
                        (seqs[pi], result(id, region, check, at, *rtt, key))
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<ProbeBatch<'_>> = probes
            .iter()
            .zip(&batches)
            .map(|((id, region, _), b)| (id.as_str(), region.as_str(), b.as_slice()))
            .collect();
        for outcome in store.ingest_many(&refs, t + interval_ms)? {
            stored += outcome.stored as u64;
        }
        t += interval_ms;
    }
    let ingest = t0.elapsed();
    drop(store);
    let db_bytes: u64 = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();

    let topology = Topology {
        regions: (0..a.regions)
            .map(|r| RegionInfo {
                id: format!("region-{r}"),
                corridors: Vec::new(),
            })
            .collect(),
        probes: probes
            .iter()
            .enumerate()
            .map(|(i, (id, region, _))| ProbeInfo {
                id: id.clone(),
                region: region.clone(),
                asn: Some(64500 + (i % 2) as u32),
            })
            .collect(),
    };
    let since = start_ms;
    let began = end_ms + interval_ms;

    // The read alone.
    let reader = Store::open_reader(&dir)?;
    let t1 = std::time::Instant::now();
    let mut read = 0u64;
    reader.scheduled_history(since, began, |r| {
        read += 1;
        std::hint::black_box(r);
    })?;
    let read_time = t1.elapsed();

    // The replay as the service runs it.
    let mut engine = Engine::new(params, topology);
    let t2 = std::time::Instant::now();
    let stats = reader.scheduled_history(since, began, |r| engine.learn(&r))?;
    let replay = t2.elapsed();

    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
    let week_rows = stored as f64 * (7.0 * 24.0 + 1.0) / a.hours as f64;
    println!(
        "fleet: {} regions x {} probes x {} targets, {} s interval, {} h stored",
        a.regions, a.probes, a.targets, a.interval_s, a.hours
    );
    println!(
        "stored: {stored} results in {:.1} s ({:.0}/s through Store::ingest_many), database {:.0} MiB ({:.0} B/result)",
        ingest.as_secs_f64(),
        rate(stored, ingest),
        db_bytes as f64 / 1_048_576.0,
        db_bytes as f64 / stored.max(1) as f64
    );
    println!(
        "read alone: {read} results in {:.2} s, {:.0} results/s",
        read_time.as_secs_f64(),
        rate(read, read_time)
    );
    println!(
        "replay (read + learn): {} results in {:.2} s, {:.0} results/s",
        stats.results,
        replay.as_secs_f64(),
        rate(stats.results, replay)
    );
    println!(
        "extrapolated: a week and an hour of this fleet ({week_rows:.0} results) replays in {:.0} s",
        week_rows / rate(stats.results, replay)
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM"))
    {
        println!("peak RSS: {}", line.trim_start_matches("VmHWM:").trim());
    }
    Ok(())
}
