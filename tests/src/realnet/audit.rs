//! Delivery audit: every result a probe produced is stored by the coordinator exactly once.
//! Compares each stopped probe's spool (what it produced, with its sequence numbers, and how
//! far the coordinator acknowledged) with the coordinator's store, record by record.
//!
//! Runs only while the probes are stopped (their spools are theirs while they run). The spool
//! keeps what it was given unless a whole segment was acknowledged; a test's spool never fills
//! a segment (8 MiB), so every record since enrolment is there to compare.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use meridian_coordinator::store::Store;
use meridian_probe::spool::{Spool, SpoolConfig};
use meridian_probe::uplink::SpooledResult;

use super::system::{CURSOR, System};

/// What the audit found for one probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The probe.
    pub probe_id: String,
    /// Records in its spool.
    pub spooled: usize,
    /// Of those, acknowledged by the coordinator.
    pub acked: usize,
    /// Results of this probe in the store.
    pub stored: usize,
}

/// Checks, for every probe of `sys` (stopped), that every acknowledged record of its spool is
/// in the store with the same content, that the store holds nothing the spool does not (by
/// sequence number and content), and that no run (check, scheduled time, burst) is stored
/// twice. Returns the per-probe counts.
pub async fn exactly_once(sys: &System) -> anyhow::Result<Vec<Delivery>> {
    let probes: Vec<(String, std::path::PathBuf)> = sys
        .probes()
        .iter()
        .map(|p| (p.id.clone(), p.state_dir().join("spool")))
        .collect();
    let data_dir = sys.data_dir().to_path_buf();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Delivery>> {
        let store = Store::open_reader(&data_dir)?;
        let mut out = Vec::new();
        for (id, dir) in probes {
            let mut spool = Spool::open(&dir, &[CURSOR], SpoolConfig::default())
                .with_context(|| format!("opening {}", dir.display()))?;
            let all = spool.read_after(0, usize::MAX, usize::MAX)?;
            let unacked: BTreeSet<u64> = spool
                .read_from(CURSOR, usize::MAX, usize::MAX)?
                .iter()
                .map(|r| r.seq)
                .collect();
            let first = all.first().map_or(0, |r| r.seq);
            anyhow::ensure!(
                first == 1,
                "probe {id}: the spool no longer holds its first records (from {first})"
            );
            let mut spooled = BTreeMap::new();
            for r in &all {
                let s = SpooledResult::decode(&r.payload).context("decoding a spooled record")?;
                spooled.insert(r.seq, s);
            }
            let stored = store.sequenced_results(&id)?;
            let mut runs = BTreeSet::new();
            for r in &stored {
                let Some(s) = spooled.get(&r.seq) else {
                    anyhow::bail!("probe {id}: stored seq {} was never spooled", r.seq);
                };
                anyhow::ensure!(
                    s.result == r.result && s.burst == r.burst,
                    "probe {id}: seq {} stored differs from what was spooled",
                    r.seq
                );
                let run = (
                    r.result.check_id.to_string(),
                    r.result.scheduled_ms,
                    r.burst.map(|b| b.burst_id),
                    r.result.started_ms,
                );
                anyhow::ensure!(
                    runs.insert(run.clone()),
                    "probe {id}: run {run:?} stored twice"
                );
            }
            let stored_seqs: BTreeSet<u64> = stored.iter().map(|r| r.seq).collect();
            let lost: Vec<u64> = spooled
                .keys()
                .filter(|s| !unacked.contains(s) && !stored_seqs.contains(s))
                .copied()
                .collect();
            anyhow::ensure!(
                lost.is_empty(),
                "probe {id}: acknowledged but not stored: {lost:?}"
            );
            out.push(Delivery {
                probe_id: id,
                spooled: spooled.len(),
                acked: spooled.len() - unacked.len(),
                stored: stored.len(),
            });
        }
        Ok(out)
    })
    .await?
}
