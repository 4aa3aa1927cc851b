//! `bench-ttd`: time to detect and time to resolve over many seeds, per scenario.
//!
//! The scenario suite (`tests/scenarios/`) runs each file once, with its own seed. This
//! benchmark runs each file (all of them, or those named) with `--seeds` seeds — the file's own
//! seed and the ones after it — through the very simulator `coordinator simulate` drives
//! ([`sim::simulate`]: the real engine, in virtual time), and prints per scenario:
//!
//! - **pass**: runs that pass as the suite scores them (class, scope, the file's detect and
//!   resolve bounds, pages, no false incidents);
//! - **class**: runs in which an incident of the expected class and scope exists at all, with
//!   the file's time bounds and page rule lifted, so a slow detection still shows its time
//!   instead of dropping out of the statistics;
//! - **false**: unexpected incidents over all runs (operational ones only where the file
//!   counts them);
//! - **TTD** median / p95 / max and **TTR** (resolution minus the end of the fault) median /
//!   p95, over the runs that classified;
//! - the issue's **target** for that kind of fault and whether the figures meet it.
//!
//! The targets (issue: 60 s interval, 5 probes per region): hard failures and round-trip steps
//! of +100 ms or more, median ≤ 30 s and p95 ≤ 60 s; 5 % loss ≤ 150 s; a +2 ms/min drift
//! ≤ 600 s (a ticket); resolution within 3 intervals plus the detection granularity (a
//! twelfth of an interval) of the fault's end. Which target applies is read off the
//! scenario's faults; operational classes (silences, probe and clock faults) are held to
//! their file's `detect_within` instead, and files without expectations only count false
//! incidents.
//!
//! Bounded work: `clean-month` (37 days of virtual time over 30 regions) takes minutes per seed
//! and is skipped unless named or `--all` is given. `--jobs` runs scenarios on several threads.
//! `--json` prints the table as JSON lines; `--runs FILE` writes every run's full report (the
//! `coordinator simulate --json` shape) to FILE, one line per run, to compare engines.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use clap::Parser;
use meridian_coordinator::sim::scenario::{Fault, FaultKind, Scenario};
use meridian_coordinator::sim::{self, Outcome, parse, report, score};
use meridian_shared::regions::Catalog;
use serde::Serialize;

/// Scenario files skipped unless named or `--all` is given: too long for a default run.
const LONG: &[&str] = &["clean-month"];

#[derive(Parser)]
#[command(about = "Time to detect and to resolve over many seeds, per scenario")]
struct Args {
    /// Scenario files; default: every `*.toml` of `tests/scenarios/` (long ones skipped).
    files: Vec<PathBuf>,
    /// Seeds per scenario: the file's own seed and the ones after it.
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// Include the long scenarios (clean-month) in the default set.
    #[arg(long)]
    all: bool,
    /// Worker threads (scenario runs are independent).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Print the table as JSON lines, one object per scenario.
    #[arg(long)]
    json: bool,
    /// Write every run's full report (one JSON object per line) to this file.
    #[arg(long)]
    runs: Option<PathBuf>,
}

/// What the issue asks of a scenario's kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Target {
    /// Hard failures, round-trip steps of +100 ms or more, server-side faults.
    Fast,
    /// Loss without a large step: 150 s.
    Loss,
    /// A slow drift: a ticket within 600 s.
    Drift,
    /// Operational classes: the file's own `detect_within`.
    File,
    /// No expectation: only false incidents count.
    Clean,
}

impl Target {
    /// `(median bound, p95 bound)` in ms for this target, given the file's bound.
    fn ttd_bounds(self, file_ms: Option<i64>) -> Option<(i64, i64)> {
        match self {
            Target::Fast => Some((30_000, 60_000)),
            Target::Loss => Some((150_000, 150_000)),
            Target::Drift => Some((600_000, 600_000)),
            Target::File => file_ms.map(|b| (b, b)),
            Target::Clean => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Target::Fast => "<=30/60s",
            Target::Loss => "<=150s",
            Target::Drift => "<=600s",
            Target::File => "file",
            Target::Clean => "clean",
        }
    }
}

/// The target for a scenario, read off its faults and expectations.
fn target_of(s: &Scenario) -> Target {
    let Some(expect) = s.expects.first() else {
        return Target::Clean;
    };
    if expect.class.is_operational() {
        return Target::File;
    }
    let mut target = Target::Fast;
    for f in &s.faults {
        if let FaultKind::Path {
            rtt_ms,
            loss,
            ramp_ms_per_min,
            ..
        } = &f.kind
        {
            if ramp_ms_per_min.is_some() {
                return Target::Drift;
            }
            if *rtt_ms < 100.0 && *loss < 1.0 && *loss > 0.0 {
                target = Target::Loss;
            }
        }
    }
    target
}

/// One run's figures.
struct Run {
    seed: u64,
    passed: bool,
    classified: bool,
    false_incidents: usize,
    ttd_ms: Option<i64>,
    ttr_ms: Option<i64>,
    /// The full report, for `--runs`.
    line: String,
}

/// One scenario's row.
#[derive(Serialize)]
struct Row {
    scenario: String,
    target: Target,
    runs: usize,
    passed: usize,
    classified: usize,
    false_incidents: usize,
    /// Runs classified whose incident never resolved.
    unresolved: usize,
    ttd_median_s: Option<f64>,
    ttd_p95_s: Option<f64>,
    ttd_max_s: Option<f64>,
    ttr_median_s: Option<f64>,
    ttr_p95_s: Option<f64>,
    /// Seeds that did not pass.
    failed_seeds: Vec<u64>,
    /// Whether the figures meet the target.
    meets: bool,
    /// Real time for all runs of the scenario, s.
    wall_s: f64,
}

/// Runs one seed and scores it twice: as the suite does, and with time bounds and the page
/// rule lifted (class and scope only).
fn run_one(mut scenario: Scenario, seed: u64, catalog: &Catalog) -> anyhow::Result<Run> {
    scenario.seed = seed;
    let wall = stopwatch();
    let outcome: Outcome = sim::simulate(scenario, catalog);
    let wall_ms = wall();
    let mut relaxed = outcome.scenario.clone();
    for e in &mut relaxed.expects {
        e.detect_within_ms = None;
        e.resolve_within_ms = None;
    }
    let s = &outcome.scenario;
    let edges = |edge: &str| s.edge_regions(edge);
    let card = score::score(&relaxed, outcome.start_ms, &edges, &outcome.incidents);
    // Class and scope only: a wrong page still shows in `passed`, not here.
    let classified_verdict = card
        .verdicts
        .first()
        .cloned()
        .filter(score::Verdict::met)
        .or_else(|| {
            for e in &mut relaxed.expects {
                e.page = !e.page;
            }
            let flipped = score::score(&relaxed, outcome.start_ms, &edges, &outcome.incidents);
            flipped
                .verdicts
                .first()
                .cloned()
                .filter(score::Verdict::met)
        });
    let line = serde_json::to_string(&report::ScenarioReport::new(&outcome, wall_ms))?;
    Ok(Run {
        seed,
        passed: outcome.card.passed,
        classified: classified_verdict.is_some(),
        false_incidents: outcome.card.false_incidents.len(),
        ttd_ms: classified_verdict.as_ref().and_then(|v| v.ttd_ms),
        ttr_ms: classified_verdict.as_ref().and_then(|v| v.ttr_ms),
        line,
    })
}

/// The `q`-quantile of sorted values (nearest rank).
fn quantile(sorted: &[i64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1] as f64 / 1000.0)
}

fn row(s: &Scenario, runs: &[Run], wall_s: f64) -> Row {
    let target = target_of(s);
    let mut ttd: Vec<i64> = runs.iter().filter_map(|r| r.ttd_ms).collect();
    let mut ttr: Vec<i64> = runs.iter().filter_map(|r| r.ttr_ms).collect();
    ttd.sort_unstable();
    ttr.sort_unstable();
    let classified = runs.iter().filter(|r| r.classified).count();
    // Only faults that end before the run does can be seen to resolve.
    let has_end = s.faults.iter().any(|f: &Fault| f.until_ms < s.duration_ms);
    let unresolved = runs
        .iter()
        .filter(|r| has_end && r.classified && r.ttr_ms.is_none())
        .count();
    let ttd_median = quantile(&ttd, 0.5);
    let ttd_p95 = quantile(&ttd, 0.95);
    let ttr_p95 = quantile(&ttr, 0.95);
    // Resolution within 3 intervals plus the detection granularity (a twelfth of an interval).
    let ttr_bound_s = (3.0 + 1.0 / 12.0) * s.interval_ms as f64 / 1000.0;
    let file_bound = s.expects.first().and_then(|e| e.detect_within_ms);
    let meets = match target.ttd_bounds(file_bound) {
        None => runs.iter().all(|r| r.passed),
        Some((med, p95)) => {
            classified == runs.len()
                && ttd_median.is_some_and(|m| m * 1000.0 <= med as f64)
                && ttd_p95.is_some_and(|p| p * 1000.0 <= p95 as f64)
                && (!has_end || (unresolved == 0 && ttr_p95.is_none_or(|p| p <= ttr_bound_s)))
        }
    };
    Row {
        scenario: s.name.clone(),
        target,
        runs: runs.len(),
        passed: runs.iter().filter(|r| r.passed).count(),
        classified,
        false_incidents: runs.iter().map(|r| r.false_incidents).sum(),
        unresolved,
        ttd_median_s: ttd_median,
        ttd_p95_s: ttd_p95,
        ttd_max_s: ttd.last().map(|&t| t as f64 / 1000.0),
        ttr_median_s: quantile(&ttr, 0.5),
        ttr_p95_s: ttr_p95,
        failed_seeds: runs.iter().filter(|r| !r.passed).map(|r| r.seed).collect(),
        meets,
        wall_s,
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let secs = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let _ = writeln!(
        out,
        "{:<24} {:>5} {:>5} {:>5} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>4}",
        "scenario",
        "runs",
        "pass",
        "class",
        "false",
        "ttd50",
        "ttd95",
        "ttdmax",
        "ttr50",
        "ttr95",
        "target",
        "ok"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<24} {:>5} {:>5} {:>5} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>4}",
            r.scenario,
            r.runs,
            r.passed,
            r.classified,
            r.false_incidents,
            secs(r.ttd_median_s),
            secs(r.ttd_p95_s),
            secs(r.ttd_max_s),
            secs(r.ttr_median_s),
            secs(r.ttr_p95_s),
            r.target.label(),
            if r.meets { "yes" } else { "NO" }
        );
        if !r.failed_seeds.is_empty() || r.unresolved > 0 {
            let _ = writeln!(
                out,
                "{:<24} failed seeds {:?}{}",
                "",
                r.failed_seeds,
                if r.unresolved > 0 {
                    format!(", {} unresolved", r.unresolved)
                } else {
                    String::new()
                }
            );
        }
    }
    out
}

fn default_files(all: bool) -> anyhow::Result<Vec<PathBuf>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if path.extension().is_some_and(|x| x == "toml") && (all || !LONG.contains(&stem)) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[expect(
    clippy::disallowed_types,
    reason = "a benchmark reports the wall time it took; virtual time never reads this clock"
)]
fn stopwatch() -> impl FnOnce() -> u64 {
    let start = std::time::Instant::now();
    move || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let files = if a.files.is_empty() {
        default_files(a.all)?
    } else {
        a.files.clone()
    };
    let catalog = Catalog::builtin();
    let mut scenarios = Vec::new();
    for f in &files {
        scenarios.push(parse::load(f, &catalog).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let seeds = a.seeds.max(1);
    // Every (scenario, seed) is one job; workers take them in order.
    let jobs: Vec<(usize, u64)> = (0..scenarios.len())
        .flat_map(|i| (0..seeds).map(move |k| (i, k)))
        .collect();
    let next = AtomicUsize::new(0);
    // Per scenario, per seed: the run and its wall time, ms.
    type Results = Vec<Vec<Option<(Run, u64)>>>;
    let results: Mutex<Results> = Mutex::new(
        scenarios
            .iter()
            .map(|_| (0..seeds).map(|_| None).collect())
            .collect(),
    );
    let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let total = stopwatch();
    std::thread::scope(|scope| {
        for _ in 0..a.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(i, k)) = jobs.get(j) else { break };
                    let s = &scenarios[i];
                    let wall = stopwatch();
                    match run_one(s.clone(), s.seed.wrapping_add(k), &catalog) {
                        Ok(run) => {
                            let ms = wall();
                            eprintln!(
                                "{} seed {}: {}{} ({:.1} s)",
                                s.name,
                                run.seed,
                                if run.passed { "pass" } else { "FAIL" },
                                run.ttd_ms.map_or(String::new(), |t| format!(
                                    ", ttd {:.1} s",
                                    t as f64 / 1000.0
                                )),
                                ms as f64 / 1000.0
                            );
                            if let Ok(mut r) = results.lock() {
                                r[i][k as usize] = Some((run, ms));
                            }
                        }
                        Err(e) => {
                            if let Ok(mut slot) = error.lock() {
                                slot.get_or_insert(e);
                            }
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().ok().flatten() {
        return Err(e);
    }
    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for (s, runs) in scenarios.iter().zip(results) {
        let runs: Vec<(Run, u64)> = runs.into_iter().flatten().collect();
        let wall_s = runs.iter().map(|r| r.1).sum::<u64>() as f64 / 1000.0;
        let runs: Vec<Run> = runs.into_iter().map(|r| r.0).collect();
        lines.extend(runs.iter().map(|r| r.line.clone()));
        rows.push(row(s, &runs, wall_s));
    }
    if let Some(path) = &a.runs {
        let mut f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        for l in &lines {
            writeln!(f, "{l}")?;
        }
    }
    if a.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print!("{}", table(&rows));
        let all: Vec<&Row> = rows.iter().collect();
        let missed: Vec<&str> = all
            .iter()
            .filter(|r| !r.meets)
            .map(|r| r.scenario.as_str())
            .collect();
        println!(
            "{} scenarios x {seeds} seeds in {:.0} s; {} meet their target{}",
            rows.len(),
            total() as f64 / 1000.0,
            rows.len() - missed.len(),
            if missed.is_empty() {
                String::new()
            } else {
                format!("; missed: {}", missed.join(", "))
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<i64> = (1..=20).map(|s| s * 1000).collect();
        assert_eq!(quantile(&v, 0.5), Some(10.0));
        assert_eq!(quantile(&v, 0.95), Some(19.0));
        assert_eq!(quantile(&v, 1.0), Some(20.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn targets_follow_the_faults() {
        let catalog = Catalog::builtin();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let load = |name: &str| {
            parse::load(&dir.join(format!("{name}.toml")), &catalog).expect("valid scenario")
        };
        assert_eq!(target_of(&load("fiber-cut")), Target::Fast);
        assert_eq!(target_of(&load("region-unreachable")), Target::Fast);
        assert_eq!(target_of(&load("origin-down")), Target::Fast);
        assert_eq!(target_of(&load("loss-only")), Target::Loss);
        assert_eq!(target_of(&load("slow-drift")), Target::Drift);
        assert_eq!(target_of(&load("region-silent")), Target::File);
        assert_eq!(target_of(&load("clean-month")), Target::Clean);
    }
}
