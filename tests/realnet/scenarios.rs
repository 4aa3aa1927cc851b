//! The real system on the emulated WAN, through the scenarios: the `coordinator` and
//! twelve `probe` processes (four regions of three, two networks each) in their own network
//! namespaces, enrolled through the real flow, checking a scripted HTTPS origin every 2 s (by
//! name, through each region's own Unbound resolver, NSD authoritative for the name) across
//! per-region base delays (5 to 50 ms one way), and a second origin through a CDN of two
//! edge PoPs on one anycast address (each region reaching its PoP), with an hour of clean
//! history measured on that very network so that seasonal baselines exist
//! ([`meridian_tests::realnet::system`], [`meridian_tests::realnet::edge`]).
//!
//! Why two checks rather than everything through the edges: behind a CDN, connect and TLS
//! measure the probe→edge leg and an origin delay by source address would see the edges'
//! addresses, so the origin's own scenarios (the regional-server trap above all) need a path
//! without an edge; the CDN check has an origin of its own, so that the origin's scenarios
//! fault one check and the edge scenario the other.
//!
//! One test runs the scenarios in sequence on one system (setting it up costs about a
//! minute), each injecting its fault (in the WAN emulator or the origin's script), waiting for
//! the coordinator's stored incident, asserting its class, scope and time to detect (from the
//! injection's timestamp to the incident's detection, bounded in check intervals), repairing,
//! and waiting for the resolution (time to resolve, also bounded) and for every incident to be
//! closed before the next. It prints each scenario's figures, and the phase attribution: the
//! injected round trip or server delay against the deltas in the incident's evidence.
//!
//! The scenarios themselves live in the harness ([`meridian_tests::realnet::scenarios`]), shared
//! with `bench-realnet`, which runs the same set several times for statistics.
//!
//! Root only: as any other user it prints the harness's one SKIP line and passes.

use meridian_tests::realnet::audit;
use meridian_tests::realnet::scenarios::{Scenario, intervals, settle, system};
use meridian_tests::realnet::system::briefs;

use crate::emulator::SERIAL;

/// A scenario's result, or the test's failure with its reason.
fn ok<T>(r: anyhow::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_on_the_emulated_wan() {
    let _serial = SERIAL.lock().await;
    let begun = tokio::time::Instant::now();
    let Some(mut sys) = system()
        .start_or_skip()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
    else {
        return;
    };
    eprintln!("realnet system up: {:?}", sys.timings());
    assert!(
        sys.coordinator_log()
            .contains("warm start: baselines relearnt"),
        "{}",
        sys.logs()
    );

    // Healthy: nothing to report for a while.
    tokio::time::sleep(intervals(&sys, 5)).await;
    let quiet = sys.incidents().await.unwrap();
    assert!(
        quiet.is_empty(),
        "no incident on a healthy network:\n{}\n{}",
        briefs(&quiet),
        sys.logs()
    );

    let mut outcomes = Vec::new();
    for scenario in Scenario::ALL {
        outcomes.push(ok(scenario.run(&mut sys).await));
        ok(settle(&sys).await);
    }

    eprintln!(
        "realnet scenarios ({:.0} s in all):",
        begun.elapsed().as_secs_f64()
    );
    for o in &outcomes {
        eprintln!(
            "  {:<28} {:<17} {:<40} TTD {:>6} ms  TTR {:>6} ms  {}",
            o.scenario,
            o.class,
            o.regions.join(","),
            o.ttd_ms,
            o.ttr_ms.map_or("-".to_string(), |t| t.to_string()),
            o.attribution
        );
    }

    eprintln!(
        "realnet incidents:\n{}",
        briefs(&sys.incidents().await.unwrap_or_default())
    );
    // Every result the probes produced, across the kill, stored exactly once.
    sys.stop_probes().await.unwrap_or_else(|e| panic!("{e:#}"));
    let deliveries = audit::exactly_once(&sys)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", sys.logs()));
    let (spooled, stored): (usize, usize) = deliveries
        .iter()
        .fold((0, 0), |(a, b), d| (a + d.spooled, b + d.stored));
    eprintln!(
        "realnet delivery: {} probes, {spooled} results spooled, {stored} stored, each exactly once",
        deliveries.len()
    );
    sys.shutdown().await.unwrap_or_else(|e| panic!("{e:#}"));
}
