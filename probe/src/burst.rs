//! Bursts: a coordinator's `Burst { check_id, runs, tag }` command runs one check `runs` times
//! now, outside the schedule, each result tagged so detection tells confirmation runs from
//! scheduled ones.
//!
//! Runs start [`SPACING`] apart (or right after the previous one when it took longer): back to
//! back would measure one moment `runs` times over, and a burst exists to confirm that a
//! failure persists. Runs never overlap one another. Time is tokio's, so tests use a paused
//! clock; the wall clock is an input (`wall_now`) for the results' `scheduled_ms`.
//!
//! Each run holds one of the probe's concurrency permits while it runs, the same ones the
//! scheduler's runs take: the executor is a [`Limited`] one (the type insists), so scheduled
//! runs and any number of bursts together never run more than `concurrency` checks at once. A
//! run waiting for a permit starts late, and its `started_ms` says so. The spacing is not
//! counted against the limit: no permit is held between runs.
//!
//! Deliberately absent: looking the check up (the agent does, in its current plan).

use std::time::Duration;

use meridian_shared::check::Check;
use meridian_shared::wire::BurstTag;
use tokio::sync::mpsc;

use crate::schedule::{Execute, Limited};
use crate::uplink::SpooledResult;

/// Time between the starts of two runs of a burst.
pub const SPACING: Duration = Duration::from_secs(1);

/// Runs `check` `runs` times, `spacing` apart, each run under one of `executor`'s permits,
/// sending each result tagged with `tag`; the number of results delivered (fewer when the sink
/// closed).
pub async fn run<E: Execute>(
    executor: &Limited<E>,
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
    use crate::schedule::{Permits, Plan, Slot, Stats};
    use crate::testutil::{Fake, dns_check};
    use meridian_shared::result::CheckResult;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn limited(fake: Fake) -> Limited<Fake> {
        Limited::new(fake, Permits::new(8))
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_runs_the_check_n_times_spaced_and_tagged() {
        let start = tokio::time::Instant::now();
        let wall = move || 1_000_000 + start.elapsed().as_millis() as i64;
        let (tx, mut rx) = mpsc::channel(16);
        let tag = BurstTag { burst_id: 77 };
        let fake = limited(Fake::new(Duration::from_millis(300)));
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
        let fake = limited(Fake::new(Duration::from_millis(2500)));
        let tag = BurstTag { burst_id: 1 };
        run(&fake, &dns_check("slow", 60), 2, tag, SPACING, wall, &tx).await;
        drop(tx);
        let a = rx.recv().await.unwrap().result.scheduled_ms;
        let b = rx.recv().await.unwrap().result.scheduled_ms;
        assert_eq!((a, b), (0, 2500), "the second starts when the first ends");
    }

    /// Counts the runs in progress and the most ever at once.
    #[derive(Default)]
    struct InFlight {
        now: AtomicUsize,
        most: AtomicUsize,
    }

    /// A [`Fake`] that reports to an [`InFlight`].
    struct Gauge {
        fake: Fake,
        in_flight: Arc<InFlight>,
    }

    impl Execute for Gauge {
        async fn execute(&self, check: &Check, scheduled_ms: i64) -> CheckResult {
            let now = self.in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.in_flight.most.fetch_max(now, Ordering::SeqCst);
            let result = self.fake.execute(check, scheduled_ms).await;
            self.in_flight.now.fetch_sub(1, Ordering::SeqCst);
            result
        }
    }

    /// Scheduled runs (three 4 s checks every 10 s) and three bursts of five runs, all started
    /// together on one executor with `limit` permits: the most runs ever in progress at once,
    /// and how many results each burst delivered.
    async fn load(limit: usize) -> (usize, Vec<usize>) {
        let in_flight = Arc::new(InFlight::default());
        let gauge = Gauge {
            fake: Fake::new(Duration::from_secs(4)),
            in_flight: in_flight.clone(),
        };
        let executor = Arc::new(Limited::new(gauge, Permits::new(limit)));
        let checks: Vec<Check> = ["a", "b", "c"].map(|id| dns_check(id, 10)).into();
        let (tx, _scheduled) = mpsc::channel(1000);
        let plan = Plan {
            checks: checks.clone(),
            slot: Slot::ALONE,
            probe_id: "p".into(),
            concurrency: limit,
            wall_now_ms: 0,
        };
        let scheduler = tokio::spawn(crate::schedule::run(
            executor.clone(),
            plan,
            tx,
            Arc::new(Stats::default()),
            tokio::time::sleep(Duration::from_secs(120)),
        ));
        let (btx, _bursts) = mpsc::channel(1000);
        let mut bursts = tokio::task::JoinSet::new();
        for (i, check) in checks.into_iter().enumerate() {
            let (executor, btx) = (executor.clone(), btx.clone());
            let tag = BurstTag { burst_id: i as u64 };
            bursts.spawn(async move { run(&executor, &check, 5, tag, SPACING, || 0, &btx).await });
        }
        let delivered = bursts.join_all().await;
        scheduler.await.unwrap();
        (in_flight.most.load(Ordering::SeqCst), delivered)
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_and_scheduled_runs_together_never_exceed_the_concurrency_limit() {
        // Unlimited, this load runs more than two checks at once (so the limit has work to do).
        let (most, _) = load(64).await;
        assert!(most > 2, "{most}");
        // With two permits, never more than two, and every burst still completes.
        let (most, delivered) = load(2).await;
        assert_eq!(most, 2, "the limit is reached, never passed");
        assert_eq!(delivered, [5, 5, 5]);
    }
}
