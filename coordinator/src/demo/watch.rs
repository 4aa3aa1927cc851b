//! The live phase as the person watching sees it: the scripted cut and repair, a status line
//! every [`STATUS_EVERY`], and every incident transition the coordinator stored, until the
//! cut's incident resolved after the repair (and a few intervals more) or a deadline.
//!
//! Incidents and status come from the coordinator's store through a second, read-only
//! connection (the service's own connection stays with its store thread), polled every
//! [`POLL`]; nothing is derived here that the coordinator did not conclude.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::screen::{self, Drafter, IncidentFeed, Script};
use super::verdict::Verdict;
use super::world::{self, CUT_REGION, CUT_RTT_MS, REGIONS, TARGETS};
use super::{DemoError, ms, now_ms, say};
use crate::store::Store;
use crate::store::incidents::IncidentRecord;

/// How often a status line is printed.
pub const STATUS_EVERY: Duration = Duration::from_secs(15);

/// How often the store is read for new incident transitions.
pub const POLL: Duration = Duration::from_millis(500);

/// The live phase: the script, status lines and incident transitions, until the cut's
/// incident resolved after the repair (and a few intervals more) or `tail` after the repair.
/// Site incidents come with the member draft `drafter` writes.
pub async fn watch(
    data_dir: &Path,
    script: &Script,
    interval_ms: i64,
    tail_ms: i64,
    drafter: Drafter,
    out: &mut dyn Write,
) -> Result<Verdict, DemoError> {
    let reader = Arc::new(Mutex::new(Store::open_reader(data_dir)?));
    let targets: Vec<&str> = TARGETS.iter().map(|t| t.id).collect();
    say(
        out,
        screen::status_heading(STATUS_EVERY.as_secs(), &REGIONS, &targets),
    );
    let mut feed = IncidentFeed::with_drafts(drafter);
    let (mut cut, mut healed) = (false, false);
    let mut next_status = script.zero_ms + ms(STATUS_EVERY);
    let deadline = script.heal_ms + tail_ms;
    let settle = 3 * interval_ms;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let interrupted = tokio::select! {
            _ = tick.tick() => false,
            _ = &mut interrupt => true,
        };
        let now = now_ms();
        if !cut && now >= script.cut_ms {
            cut = true;
            say(
                out,
                format!(
                    "  {:<7}FIBER CUT: every round trip between {CUT_REGION} and the origins +{CUT_RTT_MS} ms \
                     (connect, TLS, first byte; server time unchanged)",
                    screen::stamp(script.cut_ms, script.zero_ms)
                ),
            );
        }
        if !healed && now >= script.heal_ms {
            healed = true;
            say(
                out,
                format!(
                    "  {:<7}REPAIRED: {CUT_REGION}'s path to the origins is back to normal",
                    screen::stamp(script.heal_ms, script.zero_ms)
                ),
            );
        }
        let records = query(&reader, |s| s.incidents(false)).await??;
        let live: Vec<IncidentRecord> = records
            .into_iter()
            .filter(|r| r.detected_ms >= script.zero_ms)
            .collect();
        for line in feed.update(&live, script) {
            say(out, line);
        }
        if now >= next_status {
            next_status += ms(STATUS_EVERY);
            let since = now - ms(STATUS_EVERY);
            let results = query(&reader, move |s| {
                let mut results = Vec::new();
                s.scheduled_history(since, i64::MAX, |r| results.push(r))
                    .map(|_| results)
            })
            .await??;
            let stamp = screen::stamp(now, script.zero_ms);
            let line = screen::status_line(
                &stamp,
                &REGIONS,
                world::PROBES_PER_REGION as usize,
                &targets,
                &results,
                &live,
            );
            say(out, line);
        }
        let mut verdict = Verdict::judge(live, script.cut_ms, script.heal_ms);
        verdict.first_explanation = verdict
            .matched()
            .min_by_key(|r| r.detected_ms)
            .and_then(|r| feed.first_explanation(r.id))
            .map(str::to_owned);
        if interrupted {
            say(out, "interrupted: stopping");
            verdict.interrupted = true;
            return Ok(verdict);
        }
        if (now >= script.heal_ms + settle && verdict.passed()) || now >= deadline {
            return Ok(verdict);
        }
    }
}

/// Runs `f` on the read-only store connection, off the runtime.
async fn query<T: Send + 'static>(
    reader: &Arc<Mutex<Store>>,
    f: impl FnOnce(&Store) -> T + Send + 'static,
) -> Result<T, DemoError> {
    let reader = reader.clone();
    Ok(tokio::task::spawn_blocking(move || {
        f(&reader.lock().unwrap_or_else(PoisonError::into_inner))
    })
    .await?)
}
