//! The thread that owns the [`Store`]: SQLite calls block, so connections send it closures and
//! batches and await the answer. Batches are group-committed: whatever is queued when the
//! thread comes round (many connections' batches) goes into ONE transaction
//! ([`Store::ingest_many_fresh`]), one fsync and one rollup merge serve them all, and each
//! batch's answer (hence its `Ack`) follows that commit. What a commit newly stored is then
//! observed by the `/metrics` histograms and handed to detection; duplicates are not.

use std::sync::Arc;

use meridian_shared::wire::SequencedResult;

use super::{ServiceError, detection};
use crate::metrics::CheckMetrics;
use crate::store::{Ingested, ProbeBatch, Store, StoreError};

/// Work for the store thread.
enum Job {
    /// Run a closure (queries, tokens, liveness, assignments).
    Call(Box<dyn FnOnce(&mut Store) + Send>),
    /// Store one probe's batch; grouped with the other batches waiting (group commit).
    Ingest(IngestJob),
}

/// One probe's batch waiting for the next group commit.
struct IngestJob {
    /// Authenticated probe id.
    probe_id: String,
    /// Authenticated region.
    region: String,
    /// Accepted records, already relabelled with the identity above.
    records: Vec<SequencedResult>,
    /// When the batch arrived, Unix ms.
    received_ms: i64,
    /// Answered once the group's transaction committed (or failed).
    reply: tokio::sync::oneshot::Sender<Result<Ingested, Arc<StoreError>>>,
}

/// A group commit stops taking batches past this many results. Bounds one transaction's
/// memory and latency; measured over QUIC on 2 cores, 100,000 lost ~20 % of the throughput
/// (every session waited on one huge commit, so decoding stopped overlapping with storing),
/// while 10,000 matched per-batch commits and still cuts the fsyncs ~20-fold.
const MAX_GROUP_RESULTS: usize = 10_000;
/// ... or past this many queued jobs taken in one round.
const MAX_GROUP_JOBS: usize = 4_096;

/// Sends closures and batches to the thread that owns the [`Store`].
#[derive(Clone)]
pub(super) struct StoreThread {
    /// The job queue; the thread ends when every sender is gone.
    jobs: std::sync::mpsc::Sender<Job>,
}

impl StoreThread {
    /// Starts the thread; what each group commit newly stored goes to `metrics` and
    /// `detection`.
    pub(super) fn spawn(
        mut store: Store,
        detection: detection::Feed,
        metrics: Arc<CheckMetrics>,
    ) -> Result<StoreThread, std::io::Error> {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("meridian-store".into())
            .spawn(move || {
                // Group commit: take everything already queued (bounded), commit the batches
                // among it in one transaction, then answer each. Closures run in queue order;
                // batches queued before a closure are committed before it runs.
                let mut group = Vec::new();
                while let Ok(first) = rx.recv() {
                    let (mut next, mut results, mut taken) = (Some(first), 0, 0);
                    while let Some(job) = next.take() {
                        taken += 1;
                        match job {
                            Job::Call(f) => {
                                commit(&mut store, &mut group, &detection, &metrics);
                                f(&mut store);
                            }
                            Job::Ingest(batch) => {
                                results += batch.records.len();
                                group.push(batch);
                            }
                        }
                        if results < MAX_GROUP_RESULTS && taken < MAX_GROUP_JOBS {
                            next = rx.try_recv().ok();
                        }
                    }
                    commit(&mut store, &mut group, &detection, &metrics);
                }
            })?;
        Ok(StoreThread { jobs })
    }

    /// Queues a closure without waiting for it (incident upserts from the detection thread).
    pub(super) fn send(
        &self,
        f: impl FnOnce(&mut Store) + Send + 'static,
    ) -> Result<(), ServiceError> {
        self.jobs
            .send(Job::Call(Box::new(f)))
            .map_err(|_| ServiceError::StoreGone)
    }

    pub(super) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Job::Call(Box::new(move |store| {
            let _ = tx.send(f(store));
        }));
        self.jobs.send(job).map_err(|_| ServiceError::StoreGone)?;
        rx.await.map_err(|_| ServiceError::StoreGone)
    }

    /// Stores one probe's batch in the next group commit; returns once it is committed.
    pub(super) async fn ingest(
        &self,
        probe_id: String,
        region: String,
        records: Vec<SequencedResult>,
        received_ms: i64,
    ) -> Result<Ingested, ServiceError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Job::Ingest(IngestJob {
            probe_id,
            region,
            records,
            received_ms,
            reply,
        });
        self.jobs.send(job).map_err(|_| ServiceError::StoreGone)?;
        rx.await
            .map_err(|_| ServiceError::StoreGone)?
            .map_err(ServiceError::Ingest)
    }
}

/// Commits the waiting batches in one transaction and answers each (nothing when empty); then
/// hands the newly stored results to the metrics and to detection.
fn commit(
    store: &mut Store,
    group: &mut Vec<IngestJob>,
    detection: &detection::Feed,
    metrics: &CheckMetrics,
) {
    if group.is_empty() {
        return;
    }
    let received_ms = group
        .iter()
        .map(|j| j.received_ms)
        .max()
        .unwrap_or_default();
    let outcome = {
        let batches: Vec<ProbeBatch<'_, SequencedResult>> = group
            .iter()
            .map(|j| (j.probe_id.as_str(), j.region.as_str(), j.records.as_slice()))
            .collect();
        store.ingest_many_fresh(&batches, received_ms)
    };
    tracing::trace!(batches = group.len(), "group commit");
    match outcome {
        Ok((each, fresh)) => {
            for ((job, ingested), fresh) in group.drain(..).zip(each).zip(fresh) {
                let _ = job.reply.send(Ok(ingested));
                let records: Vec<SequencedResult> = job
                    .records
                    .into_iter()
                    .zip(fresh)
                    .filter_map(|(r, new)| new.then_some(r))
                    .collect();
                metrics.observe(&job.region, &records);
                if !records.is_empty() {
                    detection.observe(detection::Observation::Stored {
                        records,
                        received_ms: job.received_ms,
                    });
                }
            }
        }
        Err(error) => {
            tracing::error!(%error, batches = group.len(), "group commit failed");
            let error = Arc::new(error);
            for job in group.drain(..) {
                let _ = job.reply.send(Err(error.clone()));
            }
        }
    }
}
