//! Maintenance windows end to end, with the real `coordinator run`, four real `probe`s and
//! the origin of [`crate::detection`]'s world, alerts going to the signed webhooks of
//! [`crate::alert_e2e`]:
//!
//! 1. `coordinator maintenance add` (the CLI, beside the running coordinator) schedules a
//!    public one-off window over the whole target, open now; the public status summary lists
//!    it within seconds (the coordinator re-reads stored windows with its revocation sweep).
//! 2. The origin fails: the `origin-down` incident is detected, stored and paged by the engine
//!    as usual, but its record says the window held the page back, its timeline says so, the
//!    paging webhook hears nothing, no member draft is offered, and the status page shows
//!    both regions under "maintenance", not "outage".
//! 3. `coordinator maintenance remove` ends the window with the origin still failing: the
//!    page goes out (once), the record says when it was released.
//! 4. The origin recovers: the resolution reaches the webhook after the page.
//!
//! Every wait is bounded.

use std::time::Duration;

use meridian_tests::coordinator as coord;
use serde_json::Value;

use crate::alert_e2e::AlertReceivers;
use crate::alerting::get;
use crate::detection::{CHECK, DETECT, FIRST_RESULTS, REGIONS, RESOLVE, World, strings};

/// How long the coordinator may take to see a window the CLI stored or removed: its
/// revocation sweep (every 2 s) re-reads them; then detection's next tick (at most 1 s).
const SEEN: Duration = Duration::from_secs(15);

/// How long the paging webhook is watched for a page that must not come.
const QUIET: Duration = Duration::from_secs(4);

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a time")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn summary(w: &World) -> Value {
    let (status, body) = get(w.web_addr().await, "/status/summary.json").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Polls the public summary until `pick` accepts it (at most `budget`).
async fn wait_summary(w: &World, budget: Duration, what: &str, pick: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + budget;
    loop {
        let s = summary(w).await;
        if pick(&s) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {budget:?}: {s:#}\n{}",
            w.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn cli(args: &[&str]) -> meridian_tests::cli::Output {
    coord::coordinator(args).await.expect("coordinator ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_holds_the_page_back_shows_on_the_status_page_and_releases_it_when_it_ends() {
    let sinks = AlertReceivers::start().await;
    let mut w = World::start(&sinks.config()).await;
    let deadline = tokio::time::Instant::now() + FIRST_RESULTS;
    while !w.stored().await.iter().all(|n| *n >= 2) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every probe reported within {FIRST_RESULTS:?}\n{}",
            w.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // 1. A window over the whole target, open now, scheduled with the CLI.
    let now = crate::transport::wall_ms();
    let (start, end) = (rfc3339(now - 60_000), rfc3339(now + 3_600_000));
    let config = w.config_path();
    let config = config.to_str().expect("utf-8 path");
    let data = w.data_dir().to_str().expect("utf-8 path").to_owned();
    let add = |target: &'static str| {
        let args = [
            "maintenance",
            "add",
            "deploy",
            "--title",
            "Origin deploy",
            "--target",
            target,
            "--start",
            &start,
            "--end",
            &end,
            "--config",
            config,
            "--data-dir",
            &data,
        ]
        .map(str::to_owned);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&args).await
        }
    };
    let bad = add("nope").await;
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(
        bad.stderr
            .contains("targets: \"nope\" is not a configured target id"),
        "{bad:?}"
    );
    let added = add("origin").await;
    assert_eq!(added.code, Some(0), "{added:?}");
    assert!(added.stdout.contains("open now"), "{added:?}");
    let listed = cli(&["maintenance", "list", "--data-dir", &data, "--json"]).await;
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let listed: Value = serde_json::from_str(listed.stdout.trim()).expect("one JSON line");
    assert_eq!(listed["id"], "deploy");
    assert!(listed["active"]["end_ms"].is_i64(), "{listed:#}");
    wait_summary(&w, SEEN, "the window on the status summary", |s| {
        s["maintenance"][0]["id"] == "deploy" && s["maintenance"][0]["active"] == true
    })
    .await;

    // 2. The origin fails: detected and stored, its page held back.
    w.origin.set_status(503);
    let held = w
        .wait_incident(DETECT, "origin-down paged by the engine, held back", |i| {
            i["class"] == "origin-down"
                && i["paged_ms"].is_i64()
                && i["maintenance"]["suppressed_ms"].is_i64()
        })
        .await;
    let id = held["id"].as_u64().expect("id");
    assert_eq!(held["maintenance"]["suppressed_by"], "deploy", "{held:#}");
    assert_eq!(
        held["maintenance"]["windows"][0]["id"], "deploy",
        "{held:#}"
    );
    assert_eq!(strings(&held["targets"]), [CHECK]);
    let timeline: Vec<String> = held["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|t| t["what"].as_str().map(str::to_owned))
        .collect();
    assert!(
        timeline.iter().any(|t| t.starts_with("page held back")),
        "{timeline:#?}"
    );
    // Members see maintenance where the held incident is, not an outage.
    wait_summary(&w, SEEN, "both regions under maintenance", |s| {
        let regions = s["regions"].as_array().cloned().unwrap_or_default();
        REGIONS.iter().all(|r| {
            regions
                .iter()
                .any(|x| x["id"] == *r && x["state"] == "maintenance")
        })
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert!(
        sinks.pager_transitions(id).is_empty(),
        "nothing paged during the window: {:?}",
        sinks.pager_transitions(id)
    );
    let drafts = cli(&[
        "message",
        "list",
        "--data-dir",
        &data,
        "--incident",
        &id.to_string(),
    ])
    .await;
    assert_eq!(drafts.code, Some(0), "{drafts:?}");
    assert!(
        !drafts.stdout.contains("investigating"),
        "no member draft for a held incident: {drafts:?}"
    );

    // 3. The window ends (removed) with the origin still failing: the page goes out.
    let removed = cli(&["maintenance", "remove", "deploy", "--data-dir", &data]).await;
    assert_eq!(removed.code, Some(0), "{removed:?}");
    let released = w
        .wait_incident(SEEN, "the page released", |i| {
            i["id"] == id && i["maintenance"]["released_ms"].is_i64()
        })
        .await;
    assert!(
        released["maintenance"]["suppressed_by"].is_null(),
        "{released:#}"
    );
    sinks.assert_paged(&released, &w).await;

    // 4. Recovery: resolved after the page, each once.
    w.origin.set_status(200);
    let resolved = w
        .wait_incident(RESOLVE, "the incident resolved", |i| {
            i["id"] == id && i["state"] == "resolved"
        })
        .await;
    sinks.assert_resolved(&resolved, &w).await;
    wait_summary(&w, SEEN, "nothing under maintenance any more", |s| {
        s["maintenance"].as_array().is_some_and(Vec::is_empty)
            && s["regions"]
                .as_array()
                .is_some_and(|r| r.iter().all(|x| x["state"] == "operational"))
    })
    .await;
    w.stop().await;
    assert!(
        w.log("coordinator.log").contains("page held back"),
        "{}",
        w.logs()
    );
}
