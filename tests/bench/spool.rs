//! `bench-spool`: what the probe's durable spool costs per result.
//!
//! Appends `--records` (default 1,000,000) real `CheckResult` records, MessagePack-encoded as
//! the agent stores them, to a spool in a temporary directory (under `--dir`, default the
//! system temp dir: put it on the disk the probe will use), calling `sync()` (fdatasync) every
//! `--sync-every` records (default 100, a batch). Reports wall time per record with and
//! without the encoding, the spool's bytes on disk per million results, and a read-back pass
//! (cursor reads of 1,000 records) per record. Touches no network.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::Parser;
use meridian_probe::spool::{Spool, SpoolConfig};
use meridian_shared::check::CheckId;
use meridian_shared::result::{CheckResult, HttpDetail, Phases};

#[derive(Parser)]
#[command(about = "Spool write cost per result and size per million results")]
struct Args {
    /// Records to append.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// fdatasync after this many records.
    #[arg(long, default_value_t = 100)]
    sync_every: u64,
    /// Directory to create the spool in.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn sample(i: u64) -> CheckResult {
    let mut edge = std::collections::BTreeMap::new();
    edge.insert("server".to_string(), "nginx".to_string());
    CheckResult {
        probe_id: "me-south-1a".to_string(),
        region: "me-south".to_string(),
        check_id: CheckId::parse(&format!("check-{}", i % 100)).expect("valid id"),
        scheduled_ms: 1_800_000_000_000 + i as i64 * 600,
        started_ms: 1_800_000_000_000 + i as i64 * 600 + 3,
        phases: Phases {
            dns: Some(1_200 + i % 97),
            connect: Some(96_000 + i % 1000),
            tls: Some(190_000 + i % 3000),
            ttfb: Some(120_000 + i % 5000),
            transfer: Some(300 + i % 50),
            total: 410_000 + i % 9000,
        },
        remote_ip: Some("198.51.100.7".parse().expect("literal")),
        http: Some(HttpDetail {
            status: Some(200),
            bytes: 14_233,
            truncated: false,
            http_version: Some("HTTP/2".to_string()),
            tls_version: Some("TLSv1.3".to_string()),
            cert_days_left: Some(61),
            redirects: 0,
            edge,
        }),
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
    let base = args.dir.unwrap_or_else(std::env::temp_dir);
    let dir =
        tempfile::tempdir_in(&base).with_context(|| format!("temp dir in {}", base.display()))?;
    let config = SpoolConfig {
        max_bytes: 64 << 30,
        max_age: Duration::from_secs(365 * 86_400),
        ..SpoolConfig::default()
    };
    let mut spool = Spool::open(dir.path(), &["coord-a"], config).context("opening the spool")?;
    let payloads: Vec<Vec<u8>> = (0..1000)
        .map(|i| rmp_serde::to_vec_named(&sample(i)).context("encoding"))
        .collect::<anyhow::Result<_>>()?;
    let now = SystemTime::now();

    // Encoding alone, for the split.
    let t = std::time::Instant::now();
    let mut encoded_bytes = 0usize;
    for i in 0..args.records.min(100_000) {
        encoded_bytes += rmp_serde::to_vec_named(&sample(i))
            .context("encoding")?
            .len();
    }
    let encode_ns = t.elapsed().as_nanos() as f64 / args.records.min(100_000) as f64;

    let t = std::time::Instant::now();
    for i in 0..args.records {
        spool
            .append(&payloads[(i % 1000) as usize], now)
            .context("append")?;
        if (i + 1) % args.sync_every == 0 {
            spool.sync().context("sync")?;
        }
    }
    spool.sync().context("sync")?;
    let write = t.elapsed();
    let stats = spool.stats();

    let t = std::time::Instant::now();
    let mut read = 0u64;
    loop {
        let batch = spool.read_from("coord-a", 1000, 4 << 20).context("read")?;
        let Some(last) = batch.last() else { break };
        read += batch.len() as u64;
        let up_to = last.seq;
        spool.ack("coord-a", up_to).context("ack")?;
        if read >= args.records {
            break;
        }
    }
    let read_time = t.elapsed();

    let per_record_ns = write.as_nanos() as f64 / args.records as f64;
    println!(
        "bench-spool: {} records, fdatasync every {}, in {}",
        args.records,
        args.sync_every,
        dir.path().display()
    );
    println!(
        "  payload (MessagePack CheckResult)   {:>10.0} bytes (mean of 100k encodings)",
        encoded_bytes as f64 / args.records.min(100_000) as f64
    );
    println!(
        "  encode, per record                  {:>10.0} ns",
        encode_ns
    );
    println!(
        "  append + sync, per record           {:>10.0} ns  ({:.2} s total)",
        per_record_ns,
        write.as_secs_f64()
    );
    println!(
        "  read + ack, per record              {:>10.0} ns",
        read_time.as_nanos() as f64 / read.max(1) as f64
    );
    println!(
        "  on disk after the writes            {:>10.1} MiB in {} segments",
        stats.bytes as f64 / (1 << 20) as f64,
        stats.segments
    );
    println!(
        "  on disk per million results         {:>10.1} MiB",
        stats.bytes as f64 / (1 << 20) as f64 * 1e6 / args.records as f64
    );
    println!("  records read back                   {:>10}", read);
    Ok(())
}
