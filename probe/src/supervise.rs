//! Restarts the scheduler whenever what it should run changes: a new assignment from a
//! coordinator, or a `Reload` of `probe.toml`.
//!
//! The agent publishes the wanted state ([`Desired`]: the executor and the plan) on a
//! `tokio::sync::watch`; [`run`] runs [`schedule::run`] on it until the value changes, then
//! stops the old check loops and starts new ones with the new checks and slots. Stopping a loop
//! abandons its future slots but not a run already in progress: that run finishes and its
//! result is delivered, so old and new runs overlap only by what was in flight. The slot
//! anchor (`wall_now`) is read again at every restart.
//!
//! Checks merged from several coordinators may run in different stagger slots (each
//! coordinator numbers its region's probes on its own): the checks are grouped by slot and one
//! [`schedule::run`] runs each group, all stopped together. With one slot, as with one
//! coordinator, there is one group. The probe-wide concurrency limit is the executor's
//! ([`schedule::Limited`], shared by every group), so each group's plan carries the whole
//! limit.
//!
//! Deliberately absent: deciding what is wanted (the agent and [`crate::assignment::merge`]
//! do: assignment versions, which settings a reload may change) and any I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use meridian_shared::check::{Check, CheckId};
use meridian_shared::result::CheckResult;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::schedule::{self, Execute, Plan, Slot, Stats};

/// What the scheduler should be running.
pub struct Desired<E> {
    /// Runs the checks.
    pub executor: Arc<E>,
    /// The checks.
    pub checks: Vec<Check>,
    /// This probe's slot in its region, for every check `other_slots` does not name.
    pub slot: Slot,
    /// Checks that run in another slot than `slot`: assigned by a coordinator that places this
    /// probe elsewhere in its region than the first coordinator does.
    pub other_slots: BTreeMap<CheckId, Slot>,
    /// This probe's id (seeds the jitter).
    pub probe_id: String,
    /// Most checks running at once.
    pub concurrency: usize,
    /// Where the plan came from, for the log: `"probe.toml"` or `"assignments c1 v7"`.
    pub source: String,
}

impl<E> Desired<E> {
    /// Whether `other` runs the same checks in the same slots (executor and source aside).
    pub fn same_plan(&self, other: &Desired<E>) -> bool {
        self.checks == other.checks
            && self.slot == other.slot
            && self.other_slots == other.other_slots
            && self.probe_id == other.probe_id
            && self.concurrency == other.concurrency
    }

    /// The checks grouped by slot, `slot`'s group first (kept, empty, when it is the only one).
    fn groups(&self) -> Vec<(Slot, Vec<Check>)> {
        let mut groups: Vec<(Slot, Vec<Check>)> = vec![(self.slot, Vec::new())];
        for check in &self.checks {
            let slot = self
                .other_slots
                .get(&check.id)
                .copied()
                .unwrap_or(self.slot);
            match groups.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, checks)) => checks.push(check.clone()),
                None => groups.push((slot, vec![check.clone()])),
            }
        }
        if groups.len() > 1 {
            groups.retain(|(_, checks)| !checks.is_empty());
        }
        groups
    }
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
        let groups = current.groups();
        tracing::info!(
            source = %current.source,
            checks = current.checks.len(),
            slot = current.slot.index,
            slots = current.slot.count,
            slot_groups = groups.len(),
            "scheduler (re)started"
        );
        let wall_now_ms = wall_now();
        // One schedule per slot group, all stopped together.
        let (stop_groups, group_stopped) = watch::channel(false);
        let mut running = JoinSet::new();
        for (slot, checks) in groups {
            let plan = Plan {
                checks,
                slot,
                probe_id: current.probe_id.clone(),
                concurrency: current.concurrency,
                wall_now_ms,
            };
            let mut stopped_rx = group_stopped.clone();
            running.spawn(schedule::run(
                current.executor.clone(),
                plan,
                sink.clone(),
                stats.clone(),
                async move { stopped(&mut stopped_rx).await },
            ));
        }
        let changed = tokio::select! {
            changed = desired.changed() => changed.is_ok(),
            () = stopped(&mut shutdown) => false,
        };
        if !changed {
            // Shut down (returns at once), or nobody can change the plan any more (a
            // standalone probe): keep running it until the shutdown.
            stopped(&mut shutdown).await;
        }
        let _ = stop_groups.send(true);
        while running.join_next().await.is_some() {}
        if !changed {
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
            other_slots: BTreeMap::new(),
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
    async fn merged_checks_run_each_in_its_own_coordinators_slot() {
        let start = tokio::time::Instant::now();
        let wall = move || 1_000_000_000 + start.elapsed().as_millis() as i64;
        let fake = Arc::new(Fake::new(Duration::from_millis(100)));
        let (first, other) = (Slot { index: 1, count: 2 }, Slot { index: 2, count: 3 });
        let plan = Desired {
            executor: fake.clone(),
            checks: vec![dns_check("a", 10), dns_check("b", 10), dns_check("c", 20)],
            slot: first,
            other_slots: BTreeMap::from([(CheckId::parse("b").unwrap(), other)]),
            probe_id: "p".into(),
            concurrency: 8,
            source: "assignments c1 v1, c2 v1".into(),
        };
        let groups = plan.groups();
        let shape: Vec<(Slot, usize)> = groups.iter().map(|(s, c)| (*s, c.len())).collect();
        assert_eq!(shape, [(first, 2), (other, 1)]);
        let (_desired_tx, desired_rx) = watch::channel(Arc::new(plan));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (tx, mut rx) = mpsc::channel(1000);
        let task = tokio::spawn(run(
            desired_rx,
            tx,
            Arc::new(Stats::default()),
            shutdown_rx,
            wall,
        ));
        tokio::time::sleep(Duration::from_secs(60)).await;
        shutdown_tx.send(true).unwrap();
        task.await.unwrap();

        let runs = fake.runs.lock().unwrap().clone();
        for (id, interval_ms, slot) in [
            ("a", 10_000, first),
            ("b", 10_000, other),
            ("c", 20_000, first),
        ] {
            let times: Vec<i64> = runs.iter().filter(|r| r.0 == id).map(|r| r.1).collect();
            assert!(
                times.len() >= 60_000 / interval_ms as usize - 1,
                "{id}: {runs:?}"
            );
            let off = schedule::offset(Duration::from_millis(interval_ms as u64), slot, "p", id)
                .as_millis() as i64;
            for t in &times {
                assert_eq!(
                    (t - off).rem_euclid(interval_ms),
                    0,
                    "{id} at {t}: its slot"
                );
            }
        }
        let mut results = 0;
        while rx.try_recv().is_ok() {
            results += 1;
        }
        assert_eq!(results, runs.len());
    }

    #[test]
    fn one_slot_is_one_group() {
        let fake = Arc::new(Fake::new(Duration::from_millis(1)));
        let d = desired(
            &fake,
            vec![dns_check("a", 10), dns_check("b", 10)],
            Slot::ALONE,
            "x",
        );
        let shape: Vec<(Slot, usize)> = d.groups().iter().map(|(s, c)| (*s, c.len())).collect();
        assert_eq!(shape, [(Slot::ALONE, 2)]);
        let empty = desired(&fake, Vec::new(), Slot::ALONE, "x");
        assert_eq!(
            empty.groups().len(),
            1,
            "nothing to run is still one (idle) schedule"
        );
        assert!(d.same_plan(&desired(&fake, d.checks.clone(), Slot::ALONE, "y")));
        assert!(!d.same_plan(&desired(
            &fake,
            d.checks.clone(),
            Slot { index: 0, count: 2 },
            "x"
        )));
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
