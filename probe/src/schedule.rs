//! The scheduler: when each check runs on this probe.
//!
//! Probes of one region share the work of sampling a target. With slot width
//! `w = interval/P`, a probe holding slot `i` of `P` runs a check at wall-clock times
//!
//! ```text
//! k·interval + i·w + spread(check)·w + jitter(probe, check)
//! ```
//!
//! - `spread(check)` in [0, 1) is a hash of the check id alone, the same on every probe: each
//!   check keeps its regional cadence of exactly one sample every `w`, while the checks of one
//!   probe are spread over the whole slot instead of firing in one burst (100 checks at one
//!   instant would queue behind the concurrency limit and inflate each other's timings).
//! - `jitter(probe, check)` is a small deterministic hash (at most `w/100` and 250 ms) that
//!   keeps probes of different regions holding the same slot from hitting a target in lockstep.
//!
//! Slots are aligned to the Unix epoch, so probes on different machines agree without talking
//! to each other. A run never overlaps the previous run of the same check: if it is still going
//! when the next slot comes, that slot is counted as missed, not queued. A concurrency limit
//! caps how many checks run at once. Time is tokio's, so tests run the loop on a paused clock;
//! the wall clock is read once, as an input, to anchor slots.
//!
//! Two limits, on purpose. A [`Plan`]'s `concurrency` bounds that plan's own runs, and a plan
//! lives only until the scheduler restarts. The probe-wide bound is [`Limited`]: an executor
//! that holds one of a shared set of [`Permits`] for every run, whoever starts it (the plans of
//! every slot group, the runs still finishing from before a restart, and bursts), and whose
//! size follows `concurrency` in `probe.toml` across reloads. So `concurrency` is what the
//! probe never exceeds, not a per-plan figure.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meridian_shared::check::Check;
use meridian_shared::result::CheckResult;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

/// This probe's place among the probes of its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// 0-based index `i`.
    pub index: u32,
    /// Number of probes `P` sharing the region; at least 1.
    pub count: u32,
}

impl Slot {
    /// A single probe: slot 0 of 1.
    pub const ALONE: Slot = Slot { index: 0, count: 1 };
}

/// FNV-1a: stable across builds and platforms, unlike `DefaultHasher`.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The offset of this probe's runs of a check inside each interval (see the module docs).
pub fn offset(interval: Duration, slot: Slot, probe_id: &str, check_id: &str) -> Duration {
    let count = slot.count.max(1);
    let width = interval / count;
    let base = width * slot.index.min(count - 1);
    // Resolution of the spread: 1/10 000 of the slot width.
    let spread = width.mul_f64((fnv1a(&[check_id]) % 10_000) as f64 / 10_000.0);
    let max_jitter = (width / 100).min(Duration::from_millis(250));
    let jitter_us = u64::try_from(max_jitter.as_micros()).unwrap_or(u64::MAX);
    let jitter = if jitter_us == 0 {
        Duration::ZERO
    } else {
        Duration::from_micros(fnv1a(&[probe_id, check_id]) % jitter_us)
    };
    let total = base + spread + jitter;
    // spread + jitter can carry the last slot past the interval's end: wrap around.
    if total >= interval && !interval.is_zero() {
        total - interval
    } else {
        total
    }
}

/// The first slot time (Unix ms) at or after `now_ms` for a check with this interval and offset.
pub fn next_slot(now_ms: i64, interval: Duration, offset: Duration) -> i64 {
    let interval = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let offset = i64::try_from(offset.as_millis()).unwrap_or(0) % interval;
    let k = (now_ms - offset).div_euclid(interval);
    let t = k * interval + offset;
    if t < now_ms { t + interval } else { t }
}

/// Anything that can run a check: the real [`crate::runner::Runner`], or a fake in tests.
pub trait Execute: Send + Sync + 'static {
    /// Runs `check` for the slot at `scheduled_ms`.
    fn execute(&self, check: &Check, scheduled_ms: i64)
    -> impl Future<Output = CheckResult> + Send;
}

impl Execute for crate::runner::Runner {
    fn execute(
        &self,
        check: &Check,
        scheduled_ms: i64,
    ) -> impl Future<Output = CheckResult> + Send {
        self.run(check, scheduled_ms)
    }
}

/// The probe-wide concurrency limit: permits shared by every run, resizable on reload.
///
/// Shrinking never interrupts a run: the permits in use are retired as their runs end, so the
/// number running drains down to the new limit, and no new run starts above it meanwhile.
#[derive(Debug, Clone)]
pub struct Permits(Arc<PermitsInner>);

#[derive(Debug)]
struct PermitsInner {
    semaphore: Arc<Semaphore>,
    /// The limit, and permits still to retire after a shrink (held by runs when it happened).
    state: std::sync::Mutex<PermitState>,
}

#[derive(Debug)]
struct PermitState {
    limit: usize,
    owed: usize,
}

impl Permits {
    /// `limit` permits (at least one).
    pub fn new(limit: usize) -> Permits {
        let limit = limit.max(1);
        Permits(Arc::new(PermitsInner {
            semaphore: Arc::new(Semaphore::new(limit)),
            state: std::sync::Mutex::new(PermitState { limit, owed: 0 }),
        }))
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.state().limit
    }

    /// Changes the limit (at least one). Growing frees permits at once; shrinking retires free
    /// permits at once and the others when their runs end.
    pub fn resize(&self, limit: usize) {
        let limit = limit.max(1);
        let mut state = self.state();
        if limit > state.limit {
            let grow = limit - state.limit;
            let repaid = grow.min(state.owed);
            state.owed -= repaid;
            self.0.semaphore.add_permits(grow - repaid);
        } else {
            let shrink = state.limit - limit;
            let retired = self.0.semaphore.forget_permits(shrink);
            state.owed += shrink - retired;
        }
        state.limit = limit;
    }

    async fn acquire(&self) -> Option<Permit> {
        let permit = self.0.semaphore.clone().acquire_owned().await.ok()?;
        Some(Permit {
            permit: Some(permit),
            permits: self.clone(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PermitState> {
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One run's permit: returned when the run ends (or is abandoned), or retired if the limit
/// shrank meanwhile.
struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    permits: Permits,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let mut state = self.permits.state();
        if state.owed > 0 {
            state.owed -= 1;
            permit.forget();
        }
        // Otherwise dropping `permit` gives it back.
    }
}

/// An executor that runs a check only while holding one of `permits`: the probe-wide limit
/// (see the module docs). The agent wraps its runner in one and hands it to the scheduler and
/// to bursts alike.
pub struct Limited<E> {
    inner: E,
    permits: Permits,
}

impl<E> Limited<E> {
    /// `inner`, limited by `permits` (shared with every other executor built on them).
    pub fn new(inner: E, permits: Permits) -> Limited<E> {
        Limited { inner, permits }
    }

    /// The permits it takes.
    pub fn permits(&self) -> &Permits {
        &self.permits
    }
}

impl<E: Execute> Execute for Limited<E> {
    async fn execute(&self, check: &Check, scheduled_ms: i64) -> CheckResult {
        // The semaphore is never closed, so this waits for a permit rather than failing; run
        // without one if that ever changes, as a limit is not worth losing a result over.
        let _permit = self.permits.acquire().await;
        self.inner.execute(check, scheduled_ms).await
    }
}

/// Counters the scheduler keeps; shared so the agent can log and (later) export them.
#[derive(Debug, Default)]
pub struct Stats {
    /// Runs started.
    pub started: AtomicU64,
    /// Slots skipped because the previous run of the same check was still going, or because
    /// the process was not scheduled for longer than an interval.
    pub missed: AtomicU64,
}

/// What the scheduler runs, and as whom.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The checks, each on its own interval.
    pub checks: Vec<Check>,
    /// This probe's slot in its region.
    pub slot: Slot,
    /// This probe's id (seeds the jitter).
    pub probe_id: String,
    /// Most checks running at once.
    pub concurrency: usize,
    /// The wall-clock time (Unix ms) at the moment `run` is called: the anchor that maps slot
    /// times to tokio instants. An input, so tests can pin it.
    pub wall_now_ms: i64,
}

/// Runs every check of `plan` on its schedule until `shutdown` resolves, sending each result
/// to `sink`. Runs in flight when `shutdown` resolves are abandoned.
pub async fn run<E: Execute>(
    executor: Arc<E>,
    plan: Plan,
    sink: mpsc::Sender<CheckResult>,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()>,
) {
    let shared = Arc::new(Shared {
        executor,
        anchor: Instant::now(),
        anchor_ms: plan.wall_now_ms,
        permits: Arc::new(Semaphore::new(plan.concurrency.max(1))),
        sink,
        stats,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for check in plan.checks {
        let off = offset(check.interval, plan.slot, &plan.probe_id, check.id.as_str());
        tasks.spawn(check_loop(shared.clone(), Arc::new(check), off));
    }
    shutdown.await;
    tasks.shutdown().await;
}

/// What every check's loop shares.
struct Shared<E> {
    executor: Arc<E>,
    /// The tokio instant that corresponds to `anchor_ms`.
    anchor: Instant,
    anchor_ms: i64,
    permits: Arc<Semaphore>,
    sink: mpsc::Sender<CheckResult>,
    stats: Arc<Stats>,
}

async fn check_loop<E: Execute>(shared: Arc<Shared<E>>, check: Arc<Check>, off: Duration) {
    let interval_ms = i64::try_from(check.interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let (anchor, anchor_ms) = (shared.anchor, shared.anchor_ms);
    let at = |slot_ms: i64| {
        anchor + Duration::from_millis(u64::try_from(slot_ms - anchor_ms).unwrap_or(0))
    };
    let mut slot_ms = next_slot(anchor_ms, check.interval, off);
    let mut previous: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        tokio::time::sleep_until(at(slot_ms)).await;
        // Woken late by more than an interval (suspended VM, overloaded host): the slots in
        // between are gone; count them and carry on from the current one.
        let now_ms = anchor_ms
            + i64::try_from(Instant::now().duration_since(anchor).as_millis()).unwrap_or(0);
        let late = (now_ms - slot_ms) / interval_ms;
        if late > 0 {
            shared
                .stats
                .missed
                .fetch_add(late.unsigned_abs(), Ordering::Relaxed);
            tracing::warn!(check = %check.id, skipped = late, "woke late; skipped slots counted as missed");
            slot_ms += late * interval_ms;
        }
        if previous.as_ref().is_some_and(|h| !h.is_finished()) {
            shared.stats.missed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(check = %check.id, slot_ms, "previous run still in progress; slot missed");
        } else {
            let (shared, check) = (shared.clone(), check.clone());
            let scheduled = slot_ms;
            previous = Some(tokio::spawn(async move {
                let Ok(_permit) = shared.permits.clone().acquire_owned().await else {
                    return;
                };
                shared.stats.started.fetch_add(1, Ordering::Relaxed);
                let result = shared.executor.execute(&check, scheduled).await;
                let _ = shared.sink.send(result).await;
            }));
        }
        slot_ms += interval_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_shared::check::{CheckId, CheckSpec, DnsCheck, RecordType, ResolverSpec};
    use meridian_shared::result::Phases;
    use proptest::prelude::*;

    #[test]
    fn each_check_is_sampled_every_slot_width_across_the_region() {
        let iv = Duration::from_secs(60);
        for check in ["home", "api", "login"] {
            let offs: Vec<f64> = (0..4)
                .map(|i| {
                    offset(
                        iv,
                        Slot { index: i, count: 4 },
                        &format!("probe-{i}"),
                        check,
                    )
                    .as_secs_f64()
                })
                .collect();
            for pair in offs.windows(2) {
                // 15 s apart, give or take the two probes' jitters (each under 150 ms here),
                // modulo the interval for the slot that wrapped around.
                let gap = (pair[1] - pair[0]).rem_euclid(60.0);
                assert!((gap - 15.0).abs() < 0.15, "{check}: {offs:?}");
            }
        }
    }

    #[test]
    fn the_checks_of_one_probe_are_spread_over_its_slot() {
        let iv = Duration::from_secs(60);
        let slot = Slot { index: 1, count: 2 };
        let mut offs: Vec<f64> = (0..100)
            .map(|c| offset(iv, slot, "probe-1", &format!("check-{c}")).as_secs_f64())
            .collect();
        offs.sort_by(f64::total_cmp);
        // Slot 1 of 2 covers [30 s, 60 s) (plus under 250 ms of jitter that may wrap).
        assert!(
            offs.iter().all(|&o| (30.0..60.25).contains(&o) || o < 0.25),
            "{offs:?}"
        );
        // 100 checks over 30 s: no second holds more than a handful of them.
        let mut per_second = [0usize; 61];
        for o in &offs {
            per_second[*o as usize] += 1;
        }
        assert!(per_second.iter().all(|&n| n <= 10), "{per_second:?}");
        assert!(
            offs[99] - offs[0] > 20.0,
            "spread over most of the slot: {offs:?}"
        );
    }

    #[test]
    fn offsets_are_deterministic_and_stay_inside_the_interval() {
        let iv = Duration::from_secs(60);
        let a = offset(iv, Slot::ALONE, "probe-1", "home");
        assert_eq!(a, offset(iv, Slot::ALONE, "probe-1", "home"));
        for c in 0..1000 {
            let o = offset(iv, Slot { index: 3, count: 4 }, "p", &format!("c{c}"));
            assert!(o < iv, "{o:?}");
        }
    }

    proptest! {
        #[test]
        fn next_slot_is_the_first_aligned_time_not_before_now(
            now in 0i64..4_000_000_000_000,
            iv_s in 1u64..3600,
            off_frac in 0.0f64..1.0,
        ) {
            let iv = Duration::from_secs(iv_s);
            let off = iv.mul_f64(off_frac);
            let t = next_slot(now, iv, off);
            let iv_ms = iv.as_millis() as i64;
            prop_assert!(t >= now && t < now + iv_ms);
            prop_assert_eq!((t - off.as_millis() as i64).rem_euclid(iv_ms), 0);
        }
    }

    /// Pretends a check takes `run_for`; records when each run was scheduled.
    struct Fake {
        run_for: Duration,
    }

    impl Execute for Fake {
        async fn execute(&self, check: &Check, scheduled_ms: i64) -> CheckResult {
            tokio::time::sleep(self.run_for).await;
            CheckResult {
                probe_id: "p".into(),
                region: "r".into(),
                check_id: check.id.clone(),
                scheduled_ms,
                started_ms: scheduled_ms,
                phases: Phases::default(),
                remote_ip: None,
                http: None,
                dns: None,
                error: None,
                warnings: vec![],
            }
        }
    }

    fn dns_check(id: &str, interval: Duration) -> Check {
        Check {
            id: CheckId::parse(id).unwrap(),
            interval,
            spec: CheckSpec::Dns(DnsCheck::new(
                "example.test",
                RecordType::A,
                ResolverSpec::System,
            )),
        }
    }

    async fn drive(
        run_for: Duration,
        slot: Slot,
        for_how_long: Duration,
    ) -> (Vec<CheckResult>, u64, u64) {
        let (tx, mut rx) = mpsc::channel(1000);
        let stats = Arc::new(Stats::default());
        let checks = vec![dns_check("c", Duration::from_secs(10))];
        let plan = Plan {
            checks,
            slot,
            probe_id: "p".into(),
            concurrency: 4,
            wall_now_ms: 1_000_000,
        };
        run(
            Arc::new(Fake { run_for }),
            plan,
            tx,
            stats.clone(),
            tokio::time::sleep(for_how_long),
        )
        .await;
        let mut got = Vec::new();
        while let Ok(r) = rx.try_recv() {
            got.push(r);
        }
        (
            got,
            stats.started.load(Ordering::Relaxed),
            stats.missed.load(Ordering::Relaxed),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn runs_once_per_interval_at_the_slot_offset() {
        let slot = Slot { index: 1, count: 2 };
        let (results, started, missed) =
            drive(Duration::from_millis(100), slot, Duration::from_secs(61)).await;
        assert_eq!(missed, 0);
        assert_eq!(started, 6, "60 s at a 10 s interval");
        let off = offset(Duration::from_secs(10), slot, "p", "c").as_millis() as i64;
        for r in &results {
            assert_eq!(
                (r.scheduled_ms - off).rem_euclid(10_000),
                0,
                "{}",
                r.scheduled_ms
            );
        }
        let gaps: Vec<i64> = results
            .windows(2)
            .map(|w| w[1].scheduled_ms - w[0].scheduled_ms)
            .collect();
        assert!(gaps.iter().all(|&g| g == 10_000), "{gaps:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_run_makes_the_next_slot_missed_not_queued() {
        // Each run takes 15 s at a 10 s interval: every other slot is missed.
        let (results, started, missed) = drive(
            Duration::from_secs(15),
            Slot::ALONE,
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(started, 3, "runs at t≈0, 20, 40");
        assert_eq!(missed, 3, "slots at t≈10, 30, 50 are missed");
        assert!(results.len() <= 3);
    }

    /// A permit if one is free within a millisecond (paused clock: at once or never).
    async fn try_take(permits: &Permits) -> Option<Permit> {
        tokio::time::timeout(Duration::from_millis(1), permits.acquire())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn shrinking_the_limit_retires_permits_as_their_runs_end() {
        let permits = Permits::new(3);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(try_take(&permits).await.expect("three permits"));
        }
        assert!(try_take(&permits).await.is_none());
        permits.resize(1);
        assert_eq!(permits.limit(), 1);
        // Two of the three runs in progress end: their permits are retired, not handed out.
        held.pop();
        held.pop();
        assert!(try_take(&permits).await.is_none(), "still one running");
        held.pop();
        let one = try_take(&permits).await.expect("the one permit left");
        assert!(try_take(&permits).await.is_none(), "limit 1");
        drop(one);

        // Growing again hands out permits at once, and repays a debt first.
        let a = try_take(&permits).await.expect("free");
        permits.resize(3);
        let b = try_take(&permits).await.expect("grown");
        let c = try_take(&permits).await.expect("grown");
        assert!(try_take(&permits).await.is_none());
        permits.resize(2);
        permits.resize(4);
        let d = try_take(&permits)
            .await
            .expect("the debt was repaid from the growth");
        assert!(try_take(&permits).await.is_none(), "four in use");
        drop((a, b, c, d));
        let mut again = Vec::new();
        for _ in 0..4 {
            again.push(try_take(&permits).await.expect("four permits, none lost"));
        }
        assert!(try_take(&permits).await.is_none());
        assert_eq!(permits.limit(), 4);
    }
}
