//! `bench-ingest`: how fast the coordinator's store takes results, without the network.
//!
//! Simulates `--probes` probes (default 1,000) in 12 regions each delivering batches of
//! `--batch` results (default 1,000 per transaction, as the ingest thread would group them)
//! for 100 checks, and stores `--results` results in all (default 1,000,000) through
//! `Store::ingest` into a fresh SQLite database in a temporary directory (WAL,
//! synchronous=FULL, per-minute rollups updated in the same transaction). Then re-delivers
//! 10 % of the batches to measure the duplicate path. Prints results/s and the database size.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use meridian_coordinator::store::Store;
use meridian_shared::check::CheckId;
use meridian_shared::result::{CheckResult, Phases};

#[derive(Parser)]
#[command(about = "Store ingest throughput (SQLite, rollups included)")]
struct Args {
    /// Results to store.
    #[arg(long, default_value_t = 1_000_000)]
    results: u64,
    /// Results per ingest transaction.
    #[arg(long, default_value_t = 1_000)]
    batch: u64,
    /// Simulated probes.
    #[arg(long, default_value_t = 1_000)]
    probes: u64,
}

fn result(probe: u64, i: u64) -> CheckResult {
    let t = 1_800_000_000_000 + (i / 1000) as i64 * 1_000;
    CheckResult {
        probe_id: format!("p{probe}"),
        region: String::new(),
        check_id: CheckId::parse(&format!("check-{}", i % 100)).expect("valid"),
        scheduled_ms: t,
        started_ms: t,
        phases: Phases {
            dns: Some(1_000 + i % 500),
            connect: Some(90_000 + i % 7_000),
            tls: Some(180_000 + i % 9_000),
            ttfb: Some(120_000 + i % 20_000),
            transfer: Some(300 + i % 100),
            total: 400_000 + i % 30_000,
        },
        remote_ip: None,
        http: None,
        dns: None,
        error: None,
        warnings: Vec::new(),
    }
}

#[expect(
    clippy::disallowed_types,
    reason = "a synchronous benchmark with no runtime to pause: wall time is what it measures"
)]
fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir().context("temp dir")?;
    let mut store = Store::open(dir.path()).context("opening the store")?;
    let batches = args.results / args.batch;
    let mut seqs = vec![0u64; args.probes as usize];
    let mut work = Vec::new();
    for b in 0..batches {
        let probe = b % args.probes;
        let region = format!("region-{}", probe % 12);
        let first = seqs[probe as usize];
        seqs[probe as usize] += args.batch;
        let items: Vec<(u64, CheckResult)> = (0..args.batch)
            .map(|k| (first + k + 1, result(probe, b * args.batch + k)))
            .collect();
        work.push((format!("p{probe}"), region, items));
    }
    let t = std::time::Instant::now();
    let mut stored = 0;
    for (probe, region, items) in &work {
        stored += store
            .ingest(probe, region, items, 0)
            .context("ingest")?
            .stored;
    }
    let elapsed = t.elapsed();
    let t = std::time::Instant::now();
    let mut dups = 0;
    let redelivered: Vec<_> = work.iter().step_by(10).collect();
    for (probe, region, items) in &redelivered {
        dups += store
            .ingest(probe, region, items, 0)
            .context("ingest")?
            .duplicates;
    }
    let dup_elapsed = t.elapsed();
    let size: u64 = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "bench-ingest: {} results from {} probes in batches of {}",
        stored, args.probes, args.batch
    );
    println!(
        "  stored           {:>10.0} results/s  ({:.2} s)",
        rate(stored, elapsed),
        elapsed.as_secs_f64()
    );
    println!(
        "  re-delivered     {:>10.0} results/s  ({} duplicates skipped)",
        rate(dups, dup_elapsed),
        dups
    );
    println!(
        "  database         {:>10.1} MiB ({:.0} bytes per result, rollups included)",
        size as f64 / (1 << 20) as f64,
        size as f64 / stored.max(1) as f64
    );
    Ok(())
}
