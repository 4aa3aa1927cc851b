//! Bursts: a coordinator's `Burst { check_id, runs, tag }` command runs one check `runs` times
//! now, outside the schedule, each result tagged so detection tells confirmation runs from
//! scheduled ones.
//!
//! Runs start [`SPACING`] apart (or right after the previous one when it took longer): back to
//! back would measure one moment `runs` times over, and a burst exists to confirm that a
//! failure persists. Runs never overlap one another. Time is tokio's, so tests use a paused
//! clock; the wall clock is an input (`wall_now`) for the results' `scheduled_ms`.
//!
//! Deliberately absent: the scheduler's concurrency limit (a burst is at most 255 runs of one
//! check, one at a time) and looking the check up (the agent does, in its current plan).

use std::time::Duration;

use meridian_shared::check::Check;
use meridian_shared::wire::BurstTag;
use tokio::sync::mpsc;

use crate::schedule::Execute;
use crate::uplink::SpooledResult;

/// Time between the starts of two runs of a burst.
pub const SPACING: Duration = Duration::from_secs(1);

/// Runs `check` `runs` times, `spacing` apart, sending each result tagged with `tag`; the number
/// of results delivered (fewer when the sink closed).
pub async fn run<E: Execute>(
    executor: &E,
    check: &Check,
    runs: u8,
    tag: BurstTag,
    spacing: Duration,
    wall_now: impl Fn() -> i64,
    sink: &mpsc::Sender<SpooledResult>,
) -> usize {
    let mut ticks = tokio::time::interval(spacing.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut delivered = 0;
    for _ in 0..runs {
        ticks.tick().await;
        let result = executor.execute(check, wall_now()).await;
        let record = SpooledResult {
            result,
            burst: Some(tag),
        };
        if sink.send(record).await.is_err() {
            break;
        }
        delivered += 1;
    }
    delivered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Fake, dns_check};

    #[tokio::test(start_paused = true)]
    async fn a_burst_runs_the_check_n_times_spaced_and_tagged() {
        let start = tokio::time::Instant::now();
        let wall = move || 1_000_000 + start.elapsed().as_millis() as i64;
        let (tx, mut rx) = mpsc::channel(16);
        let tag = BurstTag { burst_id: 77 };
        let fake = Fake::new(Duration::from_millis(300));
        let n = run(&fake, &dns_check("api", 60), 3, tag, SPACING, wall, &tx).await;
        assert_eq!(n, 3);
        drop(tx);
        let mut got = Vec::new();
        while let Some(r) = rx.recv().await {
            got.push(r);
        }
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|r| r.burst == Some(tag)));
        assert!(got.iter().all(|r| r.result.check_id.as_str() == "api"));
        let starts: Vec<i64> = got.iter().map(|r| r.result.scheduled_ms).collect();
        assert_eq!(
            starts,
            [1_000_000, 1_001_000, 1_002_000],
            "one second apart"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_runs_follow_each_other_without_overlap() {
        let (tx, mut rx) = mpsc::channel(16);
        let start = tokio::time::Instant::now();
        let wall = move || start.elapsed().as_millis() as i64;
        let fake = Fake::new(Duration::from_millis(2500));
        let tag = BurstTag { burst_id: 1 };
        run(&fake, &dns_check("slow", 60), 2, tag, SPACING, wall, &tx).await;
        drop(tx);
        let a = rx.recv().await.unwrap().result.scheduled_ms;
        let b = rx.recv().await.unwrap().result.scheduled_ms;
        assert_eq!((a, b), (0, 2500), "the second starts when the first ends");
    }
}
