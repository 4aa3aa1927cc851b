//! Restarts the scheduler whenever what it should run changes: a new assignment from a
//! coordinator, or a `Reload` of `probe.toml`.
//!
//! The agent publishes the wanted state ([`Desired`]: the executor and the plan) on a
//! `tokio::sync::watch`; [`run`] runs [`schedule::run`] on it until the value changes, then
//! stops the old check loops and starts new ones with the new checks and slot. Stopping a loop
//! abandons its future slots but not a run already in progress: that run finishes and its
//! result is delivered, so old and new runs overlap only by what was in flight. The slot
//! anchor (`wall_now`) is read again at every restart.
//!
//! Deliberately absent: deciding what is wanted (the agent does: assignment versions, which
//! settings a reload may change) and any I/O.

use std::sync::Arc;

use meridian_shared::check::Check;
use meridian_shared::result::CheckResult;
use tokio::sync::{mpsc, watch};

use crate::schedule::{self, Execute, Plan, Slot, Stats};

/// What the scheduler should be running.
pub struct Desired<E> {
    /// Runs the checks.
    pub executor: Arc<E>,
    /// The checks.
    pub checks: Vec<Check>,
    /// This probe's slot in its region.
    pub slot: Slot,
    /// This probe's id (seeds the jitter).
    pub probe_id: String,
    /// Most checks running at once.
    pub concurrency: usize,
    /// Where the plan came from, for the log: `"probe.toml"` or `"assignment v7"`.
    pub source: String,
}

/// Runs the scheduler on the latest [`Desired`] until `shutdown` turns true (or its sender is
/// dropped), restarting it on every change. `wall_now` reads the wall clock (Unix ms).
pub async fn run<E: Execute>(
    mut desired: watch::Receiver<Arc<Desired<E>>>,
    sink: mpsc::Sender<CheckResult>,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
    wall_now: impl Fn() -> i64,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let current = desired.borrow_and_update().clone();
        tracing::info!(
            source = %current.source,
            checks = current.checks.len(),
            slot = current.slot.index,
            slots = current.slot.count,
            "scheduler (re)started"
        );
        let plan = Plan {
            checks: current.checks.clone(),
            slot: current.slot,
            probe_id: current.probe_id.clone(),
            concurrency: current.concurrency,
            wall_now_ms: wall_now(),
        };
        let mut restart = false;
        let stop = async {
            let changed = tokio::select! {
                changed = desired.changed() => changed.is_ok(),
                () = stopped(&mut shutdown) => false,
            };
            if changed {
                restart = true;
            } else {
                // Shut down (returns at once), or nobody can change the plan any more (a
                // standalone probe): keep running it until the shutdown.
                stopped(&mut shutdown).await;
            }
        };
        schedule::run(
            current.executor.clone(),
            plan,
            sink.clone(),
            stats.clone(),
            stop,
        )
        .await;
        if !restart {
            return;
        }
    }
}

/// Resolves once `shutdown` is true or its sender is gone (holding no borrow of it, so the
/// future stays `Send` inside a `select!`).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Fake, dns_check};
    use std::time::Duration;

    fn desired(
        fake: &Arc<Fake>,
        checks: Vec<Check>,
        slot: Slot,
        source: &str,
    ) -> Arc<Desired<Fake>> {
        Arc::new(Desired {
            executor: fake.clone(),
            checks,
            slot,
            probe_id: "p".into(),
            concurrency: 8,
            source: source.into(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_assignment_replaces_the_checks_and_the_slot() {
        let start = tokio::time::Instant::now();
        // Anchored at a whole interval so slot times are easy to read.
        let wall = move || 1_000_000_000 + start.elapsed().as_millis() as i64;
        let fake = Arc::new(Fake::new(Duration::from_millis(200)));
        let old = desired(&fake, vec![dns_check("old", 10)], Slot::ALONE, "probe.toml");
        let (desired_tx, desired_rx) = watch::channel(old);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (tx, mut rx) = mpsc::channel(1000);
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(run(desired_rx, tx, stats, shutdown_rx, wall));

        tokio::time::sleep(Duration::from_secs(35)).await;
        let new_slot = Slot { index: 2, count: 4 };
        let switched_ms = wall();
        desired_tx
            .send(desired(
                &fake,
                vec![dns_check("new-a", 10), dns_check("new-b", 20)],
                new_slot,
                "assignment v2",
            ))
            .unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        shutdown_tx.send(true).unwrap();
        task.await.unwrap();

        let runs = fake.runs.lock().unwrap().clone();
        let old_runs: Vec<i64> = runs.iter().filter(|r| r.0 == "old").map(|r| r.1).collect();
        assert!((3..=4).contains(&old_runs.len()), "{runs:?}");
        assert!(
            old_runs.iter().all(|&t| t <= switched_ms),
            "no old run after the switch: {runs:?}"
        );
        for (id, interval_ms) in [("new-a", 10_000), ("new-b", 20_000)] {
            let times: Vec<i64> = runs.iter().filter(|r| r.0 == id).map(|r| r.1).collect();
            assert!(
                times.len() >= 60_000 / interval_ms as usize - 1,
                "{id}: {runs:?}"
            );
            assert!(times.iter().all(|&t| t >= switched_ms), "{id}: {runs:?}");
            let off = schedule::offset(Duration::from_millis(interval_ms as u64), new_slot, "p", id)
                .as_millis() as i64;
            for t in &times {
                assert_eq!(
                    (t - off).rem_euclid(interval_ms),
                    0,
                    "{id} at {t}: new slot"
                );
            }
        }
        let mut results = 0;
        while rx.try_recv().is_ok() {
            results += 1;
        }
        assert_eq!(
            results,
            runs.len(),
            "every run delivered, in-flight ones included"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_anyone_to_change_it_the_plan_runs_until_shutdown() {
        let fake = Arc::new(Fake::new(Duration::from_millis(1)));
        let (desired_tx, desired_rx) = watch::channel(desired(
            &fake,
            vec![dns_check("local", 10)],
            Slot::ALONE,
            "probe.toml",
        ));
        drop(desired_tx);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (tx, _rx) = mpsc::channel(100);
        let task = tokio::spawn(run(
            desired_rx,
            tx,
            Arc::new(Stats::default()),
            shutdown_rx,
            || 0,
        ));
        tokio::time::sleep(Duration::from_secs(35)).await;
        shutdown_tx.send(true).unwrap();
        task.await.unwrap();
        assert!(fake.runs.lock().unwrap().len() >= 3);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_it_even_with_nothing_to_run() {
        let fake = Arc::new(Fake::new(Duration::from_millis(1)));
        let (_desired_tx, desired_rx) =
            watch::channel(desired(&fake, Vec::new(), Slot::ALONE, "probe.toml"));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (tx, _rx) = mpsc::channel(10);
        let task = tokio::spawn(run(
            desired_rx,
            tx,
            Arc::new(Stats::default()),
            shutdown_rx,
            || 0,
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        shutdown_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .unwrap()
            .unwrap();
        assert!(fake.runs.lock().unwrap().is_empty());
    }
}
