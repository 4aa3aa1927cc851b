//! `coordinator demo` as a smoke test of the whole chain: the real binary, run as a child with
//! short settings (a check every second, the fiber cut after 40 s for 30 s), must exit 0, say
//! PASS with a bounded time to detect, and leave in its data directory exactly what its
//! verdict claims, read back by `coordinator incidents --json`: one `regional-network`
//! incident scoped to exactly `me-south`, explained, paged and resolved, and no other page.
//! Loopback only; every wait is bounded.

use std::process::Stdio;
use std::time::Duration;

use meridian_tests::coordinator::{coordinator, coordinator_bin};
use tokio::process::Command;

/// The whole demo at these settings: history (~5 s), 40 s before the cut, 30 s of cut, the
/// resolution, with room for two busy cores.
const BUDGET: Duration = Duration::from_secs(180);

/// Detection after the cut, at a 1 s interval: the next scheduled runs, their upload, the
/// burst that confirms and the quorum; measured well under a second, bounded with a margin.
const DETECT_WITHIN_S: f64 = 10.0;

/// The number before " s after it began (TTD)" in the PASS line.
fn detected_after_s(stdout: &str) -> Option<f64> {
    let line = stdout.lines().find(|l| l.starts_with("PASS:"))?;
    let before = &line[..line.find(" s after it began (TTD)")?];
    before.rsplit(' ').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_detects_explains_and_resolves_the_fiber_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let data = data_dir.to_str().expect("UTF-8 temp dir");
    let child = Command::new(coordinator_bin().expect("coordinator binary"))
        .args([
            "demo",
            "--interval",
            "1s",
            "--cut-after",
            "40s",
            "--cut-for",
            "30s",
            "--http",
            "127.0.0.1:0",
        ])
        .args(["--data-dir", data])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("coordinator demo started");
    let out = tokio::time::timeout(BUDGET, child.wait_with_output())
        .await
        .expect("the demo ends by itself within its budget")
        .expect("demo output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{shown}");
    for expected in [
        "enrolled 30 probes",
        "seeded",
        "FIBER CUT",
        "REPAIRED",
        "resolved",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{shown}");
    }
    let ttd = detected_after_s(&stdout).unwrap_or_else(|| panic!("no PASS line:\n{shown}"));
    assert!(
        (0.0..=DETECT_WITHIN_S).contains(&ttd),
        "detected {ttd} s after the cut:\n{shown}"
    );

    let listed = coordinator(&["incidents", "--data-dir", data, "--json"])
        .await
        .expect("coordinator incidents");
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let incidents: Vec<serde_json::Value> = listed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON incident per line"))
        .collect();
    let (cut, others): (Vec<_>, Vec<_>) = incidents
        .iter()
        .partition(|i| i["class"] == "regional-network");
    assert_eq!(
        cut.len(),
        1,
        "one incident for the cut: {incidents:#?}\n{shown}"
    );
    let cut = cut[0];
    assert_eq!(cut["regions"], serde_json::json!(["me-south"]), "{cut:#}");
    assert_eq!(cut["state"], "resolved", "{cut:#}");
    assert!(cut["paged_ms"].is_i64(), "a fiber cut pages: {cut:#}");
    let explanation = cut["explanation"].as_str().unwrap_or_default();
    assert!(explanation.contains("me-south"), "{cut:#}");
    // Two targets, 25 probes elsewhere: probes are counted once, not once per target.
    assert!(
        explanation.contains(" of 25 probes elsewhere affected"),
        "{cut:#}"
    );
    assert!(
        others.iter().all(|i| i["paged_ms"].is_null()),
        "no other incident paged: {others:#?}"
    );
}

#[tokio::test]
async fn the_demo_refuses_bad_options_with_exit_2() {
    let out = coordinator(&["demo", "--interval", "500ms"])
        .await
        .expect("coordinator demo");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("--interval: must be at least 1s"),
        "{out:?}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("something"), "x").expect("write");
    let data = dir.path().to_str().expect("UTF-8 temp dir");
    let out = coordinator(&["demo", "--data-dir", data])
        .await
        .expect("coordinator demo");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("not empty"), "{out:?}");
}
