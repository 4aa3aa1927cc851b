//! `probe run`: the real agent as a child process, on a 1 s interval against the local origin
//! and DNS server, stopped with SIGTERM. Its results file must hold valid [`CheckResult`]
//! lines on the staggered schedule: each check's runs exactly one interval apart, at its slot's
//! offset into the interval.

use std::collections::BTreeMap;
use std::time::Duration;

use meridian_probe::schedule::{Slot, offset};
use meridian_shared::result::CheckResult;
use meridian_tests::cli::Agent;
use meridian_tests::{OriginBuilder, ZoneServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_appends_scheduled_results_until_sigterm() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("probe.toml");
    std::fs::write(
        &config,
        format!(
            r#"probe_id = "it-agent"
region = "eu-central"
slot = 1
slots = 2
resolver = "{resolver}"
allow_networks = ["127.0.0.1/32"]
results = "out/results.jsonl"

[[http]]
id = "home"
url = "http://origin.example.test:{port}/?size=100"
interval = "1s"
timeout = "900ms"

[[dns]]
id = "apex-mx"
name = "example.test"
type = "MX"
resolver = "{resolver}"
interval = "1s"
timeout = "900ms"
"#,
            resolver = dns.udp_uri(),
            port = origin.port(),
        ),
    )
    .expect("write config");

    let log = dir.path().join("agent.log");
    let agent = Agent::start(&config, &log).expect("agent started");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let status = agent
        .terminate(Duration::from_secs(10))
        .await
        .expect("agent stopped");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "SIGTERM is a clean shutdown: {status}\n{log_text}"
    );

    let text = std::fs::read_to_string(dir.path().join("out/results.jsonl"))
        .unwrap_or_else(|e| panic!("no results file: {e}\n{log_text}"));
    let results: Vec<CheckResult> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a CheckResult: {e}: {l}")))
        .collect();
    assert!(
        results.len() >= 4,
        "{} results in 3.5 s:\n{text}\n{log_text}",
        results.len()
    );

    let mut by_check: BTreeMap<String, Vec<&CheckResult>> = BTreeMap::new();
    for r in &results {
        assert_eq!(r.probe_id, "it-agent");
        assert_eq!(r.region, "eu-central");
        assert!(r.passed(), "every run passes: {r:?}");
        assert!(
            r.started_ms >= r.scheduled_ms,
            "runs never start before their slot: {r:?}"
        );
        // Slot 1 of 2 on a 1 s interval: each run lands at the probe's epoch-aligned offset
        // for that check, i.e. inside slot 1's half of every second (plus a jitter of at most
        // 5 ms that may wrap into the next second).
        let expected = offset(
            Duration::from_secs(1),
            Slot { index: 1, count: 2 },
            "it-agent",
            r.check_id.as_str(),
        );
        let phase = r.scheduled_ms.rem_euclid(1000);
        assert_eq!(phase, expected.as_millis() as i64, "slot offset: {r:?}");
        assert!(!(5..500).contains(&phase), "inside slot 1: {r:?}");
        by_check.entry(r.check_id.to_string()).or_default().push(r);
    }
    assert_eq!(
        by_check.keys().collect::<Vec<_>>(),
        ["apex-mx", "home"],
        "{text}"
    );
    for (id, runs) in &by_check {
        assert!(runs.len() >= 2, "{id} ran at least twice: {text}");
        for pair in runs.windows(2) {
            let gap = pair[1].scheduled_ms - pair[0].scheduled_ms;
            assert_eq!(
                gap, 1000,
                "{id}: consecutive slots one interval apart: {text}"
            );
        }
    }
    let home = by_check["home"][0];
    assert_eq!(home.http.as_ref().map(|h| h.bytes), Some(100), "{home:?}");
    let mx = by_check["apex-mx"][0];
    assert_eq!(
        mx.dns.as_ref().map(|d| d.answers.clone()),
        Some(vec!["10 mail.example.test.".to_string()])
    );
    assert!(origin.requests() >= 2);
}
