//! `bench-realnet`: the real-network scenarios (`meridian_tests::realnet::scenarios`, the very
//! functions the `realnet` test runs) `--runs N` times, each run on a system of its own (built,
//! enrolled, calibrated and seeded afresh: about a minute), and per scenario:
//!
//! - **class**: the incident classes the runs ended on (passing runs; a failed run has none);
//! - **pass**: runs in which every check of the scenario held (class, scope, time bounds,
//!   nothing else detected, resolution);
//! - **TTD** and **TTR** median / p95 / min / max, seconds, over the passing runs: from the
//!   injection's timestamp (the emulator's, or the script change's) to the incident's
//!   detection, and from the repair to its resolution;
//! - the **phase attribution error**: the delta in the incident's evidence for the phase the
//!   fault went into (connect for an added round trip, server time for a server delay) minus
//!   the amount injected, median and largest magnitude, ms.
//!
//! A failed scenario is reported (its reason on stderr) and counted; every fault is then
//! repaired ([`scenarios::repair_all`]) and the run goes on once every incident is closed.
//!
//! Root only (network namespaces, TUN devices): as any other user it prints one SKIP line and
//! exits 0. It runs the `coordinator` and `probe` binaries of its own build profile, which must
//! be built first (`cargo build -p meridian-coordinator -p meridian-probe`); one run takes
//! about five minutes on 2 cores. Like the test, never run two at once.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;
use meridian_tests::realnet::scenarios::{self, Outcome, Scenario, settle, system};

#[derive(Parser)]
#[command(about = "The real-network scenarios N times: classes, passes, TTD, TTR, attribution")]
struct Args {
    /// Runs of the whole scenario set, each on a fresh system.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// One scenario's results over the runs.
#[derive(Default)]
struct Tally {
    passed: Vec<Outcome>,
    failed: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let uid = nix::unistd::geteuid();
    if !uid.is_root() {
        eprintln!(
            "SKIP bench-realnet: it needs root to create network namespaces and TUN devices \
             (running as uid {uid})"
        );
        return ExitCode::SUCCESS;
    }
    match bench(args.runs.max(1)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-realnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(runs: usize) -> anyhow::Result<()> {
    let begun = tokio::time::Instant::now();
    let mut tallies: BTreeMap<usize, Tally> = BTreeMap::new();
    for run in 1..=runs {
        let Some(mut sys) = system().start_or_skip().await? else {
            // The harness printed why it cannot run here.
            return Ok(());
        };
        eprintln!(
            "bench-realnet run {run}/{runs}: system up {:?}",
            sys.timings()
        );
        for (k, scenario) in Scenario::ALL.into_iter().enumerate() {
            let tally = tallies.entry(k).or_default();
            match scenario.run(&mut sys).await {
                Ok(outcome) => {
                    eprintln!(
                        "  {:<32} {:<17} TTD {:>6} ms  TTR {:>6} ms  {}",
                        outcome.scenario,
                        outcome.class,
                        outcome.ttd_ms,
                        outcome.ttr_ms.map_or("-".into(), |t| t.to_string()),
                        outcome.attribution
                    );
                    tally.passed.push(outcome);
                }
                Err(e) => {
                    eprintln!("  {:<32} FAILED: {e:#}", scenario.name());
                    tally.failed += 1;
                    scenarios::repair_all(&mut sys).await?;
                }
            }
            if let Err(e) = settle(&sys).await {
                // Whatever stays open would fail the next scenario for the wrong reason.
                eprintln!(
                    "  the system did not settle after {}: {e:#}",
                    scenario.name()
                );
                break;
            }
        }
        sys.shutdown().await?;
    }
    print_table(runs, &tallies, begun.elapsed().as_secs_f64());
    Ok(())
}

fn print_table(runs: usize, tallies: &BTreeMap<usize, Tally>, secs: f64) {
    println!(
        "bench-realnet: {runs} run(s) of {} scenarios, 4 regions x 3 probes, 2 s interval, \
         {secs:.0} s in all",
        Scenario::ALL.len()
    );
    println!(
        "{:<32} {:<22} {:>5}  {:<27} {:<27} attribution error ms med/max|e|",
        "scenario", "class (runs)", "pass", "TTD s med/p95/min/max", "TTR s med/p95/min/max",
    );
    for (k, scenario) in Scenario::ALL.into_iter().enumerate() {
        let Some(t) = tallies.get(&k) else { continue };
        let mut classes: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &t.passed {
            *classes.entry(o.class.as_str()).or_default() += 1;
        }
        let class = if classes.is_empty() {
            "-".to_string()
        } else {
            classes
                .iter()
                .map(|(c, n)| format!("{c} ({n})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let secs = |v: Vec<i64>| v.into_iter().map(|ms| ms as f64 / 1e3).collect::<Vec<_>>();
        let ttd = secs(t.passed.iter().map(|o| o.ttd_ms).collect());
        let ttr = secs(t.passed.iter().filter_map(|o| o.ttr_ms).collect());
        let errors: Vec<f64> = t
            .passed
            .iter()
            .filter_map(|o| o.attribution_error_ms)
            .collect();
        let attribution = if errors.is_empty() {
            "-".to_string()
        } else {
            let worst = errors.iter().fold(0.0f64, |a, e| a.max(e.abs()));
            format!("{:+.1} / {worst:.1}", quantile(&errors, 0.5))
        };
        println!(
            "{:<32} {:<22} {:>2}/{:<2}  {:<27} {:<27} {}",
            scenario.name(),
            class,
            t.passed.len(),
            t.passed.len() + t.failed,
            spread(&ttd),
            spread(&ttr),
            attribution
        );
    }
}

/// `median/p95/min/max` in seconds, or `-` with no value.
fn spread(values: &[f64]) -> String {
    if values.is_empty() {
        return "-".to_string();
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{:.1}/{:.1}/{min:.1}/{max:.1}",
        quantile(values, 0.5),
        quantile(values, 0.95)
    )
}

/// The `q`-quantile by nearest rank.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
