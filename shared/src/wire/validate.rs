//! Ingest-side checks of a [`ResultBatch`]: which records the coordinator stores and which it
//! refuses, each refusal with its reason so it can be counted and logged.
//!
//! Pure: the assignment is a predicate and the time is an argument. A bad record never costs
//! the good ones around it. Late results (old timestamps, a probe that was cut off for hours)
//! are accepted: they are exactly what the spool exists to deliver.
//!
//! Deliberately absent: deduplication across batches (the store's `(probe, seq)` key does it,
//! so at-least-once delivery becomes exactly-once storage) and identity (the coordinator
//! overwrites each result's `probe_id` and `region` from the client certificate).

use std::collections::HashSet;
use std::fmt;

use crate::check::CheckId;

use super::message::{ResultBatch, SequencedResult};

/// One record the coordinator refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The record's sequence number.
    pub seq: u64,
    /// The check the record claims to be a result of, for the log line.
    pub check_id: CheckId,
    /// Why it was refused.
    pub reason: RejectKind,
}

/// Why one record of a batch was refused. Refusals are final: the record is acknowledged with
/// the batch and never resent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectKind {
    /// The probe was never assigned this check.
    UnassignedCheck,
    /// Scheduled or started further in the future than the allowed clock skew.
    FutureTimestamp,
    /// The same sequence number appeared earlier in the batch (the first one is kept).
    DuplicateSeqInBatch,
    /// The sequence number is below the batch's `first_seq` or not above the one before it.
    SeqOutOfOrder,
}

impl RejectKind {
    /// Stable kebab-case name, for metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::UnassignedCheck => "unassigned-check",
            RejectKind::FutureTimestamp => "future-timestamp",
            RejectKind::DuplicateSeqInBatch => "duplicate-seq-in-batch",
            RejectKind::SeqOutOfOrder => "seq-out-of-order",
        }
    }
}

impl fmt::Display for RejectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Splits a batch into the records to store and the ones refused, in batch order.
///
/// - `assigned` says whether the probe is assigned a check (its current assignment; a result
///   of a check removed a moment ago is refused, which is the honest answer);
/// - a record whose `scheduled_ms` or `started_ms` is more than `max_future_ms` after `now_ms`
///   is refused; any past timestamp is fine;
/// - sequences must rise strictly from `first_seq`; a repeat is a duplicate, any other step
///   back is out of order. The sequence checks come first, so each refused record carries the
///   most structural of its reasons.
///
/// Takes the batch by value: the coordinator owns the decoded batch, and moving the accepted
/// records out avoids cloning every result at ingest rates.
pub fn validate_batch(
    batch: ResultBatch,
    assigned: impl Fn(&CheckId) -> bool,
    now_ms: i64,
    max_future_ms: i64,
) -> (Vec<SequencedResult>, Vec<Rejection>) {
    let latest_ok = now_ms.saturating_add(max_future_ms);
    let mut accepted = Vec::with_capacity(batch.results.len());
    let mut rejected = Vec::new();
    let mut seen = HashSet::with_capacity(batch.results.len());
    // Highest sequence seen so far; `None` until the first record, which must be >= first_seq.
    let mut highest: Option<u64> = None;
    for record in batch.results {
        let seq = record.seq;
        let reason = if seen.contains(&seq) {
            Some(RejectKind::DuplicateSeqInBatch)
        } else if seq < batch.first_seq || highest.is_some_and(|h| seq <= h) {
            Some(RejectKind::SeqOutOfOrder)
        } else {
            seen.insert(seq);
            highest = Some(seq);
            if !assigned(&record.result.check_id) {
                Some(RejectKind::UnassignedCheck)
            } else if record.result.scheduled_ms.max(record.result.started_ms) > latest_ok {
                Some(RejectKind::FutureTimestamp)
            } else {
                None
            }
        };
        match reason {
            None => accepted.push(record),
            Some(reason) => rejected.push(Rejection {
                seq,
                check_id: record.result.check_id,
                reason,
            }),
        }
    }
    (accepted, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{CheckResult, Phases};

    const NOW: i64 = 1_700_000_000_000;
    const SKEW: i64 = 60_000;

    fn rec(seq: u64, check: &str, started_ms: i64) -> SequencedResult {
        SequencedResult {
            seq,
            result: CheckResult {
                probe_id: "p1".into(),
                region: "eu-west".into(),
                check_id: CheckId::parse(check).unwrap(),
                scheduled_ms: started_ms,
                started_ms,
                phases: Phases::default(),
                remote_ip: None,
                http: None,
                dns: None,
                error: None,
                warnings: Vec::new(),
            },
            burst: None,
        }
    }

    fn run(first_seq: u64, results: Vec<SequencedResult>) -> (Vec<u64>, Vec<(u64, RejectKind)>) {
        let assigned = |c: &CheckId| c.as_str() != "stranger";
        let (ok, bad) = validate_batch(ResultBatch { first_seq, results }, assigned, NOW, SKEW);
        (
            ok.iter().map(|r| r.seq).collect(),
            bad.iter().map(|r| (r.seq, r.reason)).collect(),
        )
    }

    #[test]
    fn a_mixed_batch_keeps_the_good_records_and_names_each_bad_one() {
        let day_ago = NOW - 86_400_000;
        let (ok, bad) = run(
            10,
            vec![
                rec(10, "web", NOW),
                rec(11, "stranger", NOW),
                rec(12, "web", NOW + SKEW + 1),
                rec(13, "web", day_ago),
                rec(13, "web", NOW),
                rec(15, "web", NOW + SKEW), // at the skew limit, and after a gap
            ],
        );
        assert_eq!(ok, [10, 13, 15]);
        assert_eq!(
            bad,
            [
                (11, RejectKind::UnassignedCheck),
                (12, RejectKind::FutureTimestamp),
                (13, RejectKind::DuplicateSeqInBatch),
            ]
        );
    }

    #[test]
    fn sequences_must_rise_from_first_seq() {
        let (ok, bad) = run(
            5,
            vec![
                rec(4, "web", NOW),
                rec(6, "web", NOW),
                rec(9, "web", NOW),
                rec(7, "web", NOW),
            ],
        );
        assert_eq!(ok, [6, 9]);
        assert_eq!(
            bad,
            [
                (4, RejectKind::SeqOutOfOrder),
                (7, RejectKind::SeqOutOfOrder)
            ]
        );
    }

    #[test]
    fn a_refused_record_still_claims_its_sequence() {
        // An unassigned record at 3 makes a second 3 a duplicate, not a second chance.
        let (ok, bad) = run(0, vec![rec(3, "stranger", NOW), rec(3, "web", NOW)]);
        assert!(ok.is_empty());
        assert_eq!(
            bad,
            [
                (3, RejectKind::UnassignedCheck),
                (3, RejectKind::DuplicateSeqInBatch)
            ]
        );
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let (ok, bad) = run(0, vec![rec(0, "web", i64::MIN), rec(1, "web", i64::MAX)]);
        assert_eq!(ok, [0]);
        assert_eq!(bad, [(1, RejectKind::FutureTimestamp)]);
        let assigned = |_: &CheckId| true;
        let batch = ResultBatch {
            first_seq: 0,
            results: vec![rec(0, "web", i64::MAX)],
        };
        let (ok, _) = validate_batch(batch, assigned, i64::MAX, i64::MAX);
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn reject_kinds_have_stable_names() {
        assert_eq!(RejectKind::FutureTimestamp.to_string(), "future-timestamp");
        assert_eq!(RejectKind::UnassignedCheck.as_str(), "unassigned-check");
    }
}
