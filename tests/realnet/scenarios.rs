//! The real system on the emulated WAN, through the scenarios: the `coordinator` and
//! twelve `probe` processes (four regions of three, two networks each) in their own network
//! namespaces, enrolled through the real flow, checking a scripted HTTPS origin every 2 s
//! across per-region base delays (5 to 50 ms one way), with an hour of clean history measured
//! on that very network so that seasonal baselines exist ([`meridian_tests::realnet::system`]).
//!
//! One test runs the scenarios in sequence on one system (setting it up costs about a
//! minute), each injecting its fault (in the WAN emulator or the origin's script), waiting for
//! the coordinator's stored incident, asserting its class, scope and time to detect (from the
//! injection's timestamp to the incident's detection, bounded in check intervals), repairing,
//! and waiting for the resolution (time to resolve, also bounded) and for every incident to be
//! closed before the next. It prints each scenario's figures, and the phase attribution: the
//! injected round trip or server delay against the deltas in the incident's evidence.
//!
//! Root only: as any other user it prints the harness's one SKIP line and passes.

use std::time::Duration;

use ipnet::Ipv4Net;
use meridian_coordinator::store::incidents::{IncidentRecord, StoredState};
use meridian_tests::realnet::audit;
use meridian_tests::realnet::origin::Script;
use meridian_tests::realnet::system::{System, brief, briefs, unix_ms, wall_ms};
use meridian_tests::realnet::{Injection, Rule};

use crate::emulator::SERIAL;

/// Regions with their base one-way delay to everything else, ms.
const REGIONS: [(&str, u64); 4] = [
    ("eu-central", 5),
    ("us-east", 20),
    ("me-south", 35),
    ("ap-south", 50),
];

/// Time to detect allowed, in check intervals: the next scheduled runs after the injection
/// (one interval), their upload, the burst that confirms and the quorum, with a wide margin
/// for thirteen processes on two cores.
const TTD_INTERVALS: u32 = 10;
/// Time to resolve allowed, in check intervals: the engine resolves after one interval
/// without confirmation (at this scale 2 s), plus the fresh samples that show it.
const TTR_INTERVALS: u32 = 12;

/// The probes' heartbeat period is 10 s whatever the check interval, and a probe is silent
/// after two of them without a message.
const SILENT_AFTER: Duration = Duration::from_secs(20);
/// The probes' QUIC idle timeout: a coordinator killed without closing its connections is
/// noticed by its probes only when it runs out (the restarted process cannot reset
/// connections it never had), so they reconnect up to this long after the kill.
const QUIC_IDLE: Duration = Duration::from_secs(30);

/// One scenario's figures.
#[derive(Debug)]
struct Outcome {
    scenario: &'static str,
    class: String,
    regions: Vec<String>,
    ttd_ms: i64,
    ttr_ms: Option<i64>,
    attribution: String,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` check intervals.
fn intervals(sys: &System, n: u32) -> Duration {
    sys.interval() * n
}

fn all_regions() -> Vec<String> {
    let mut r: Vec<String> = REGIONS.iter().map(|(r, _)| r.to_string()).collect();
    r.sort();
    r
}

/// The wall-clock time of an injection, Unix ms.
fn at(injection: &Injection) -> i64 {
    unix_ms(injection.at)
}

/// Waits for an incident `pick` accepts that was detected at or after `since_ms`, and checks
/// its time to detect against [`TTD_INTERVALS`].
async fn detect(
    sys: &System,
    what: &str,
    since_ms: i64,
    pick: impl Fn(&IncidentRecord) -> bool,
) -> (IncidentRecord, i64) {
    detect_within(sys, what, since_ms, intervals(sys, TTD_INTERVALS), pick).await
}

/// [`detect`] with its own bound on the time to detect.
async fn detect_within(
    sys: &System,
    what: &str,
    since_ms: i64,
    bound: Duration,
    pick: impl Fn(&IncidentRecord) -> bool,
) -> (IncidentRecord, i64) {
    let budget = bound + intervals(sys, 10);
    let incident = sys
        .wait_incident(budget, what, |i| i.detected_ms >= since_ms && pick(i))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let ttd = incident.detected_ms - since_ms;
    let bound = bound.as_millis() as i64;
    assert!(
        ttd <= bound,
        "{what}: detected {ttd} ms after the injection, over {bound} ms:\n{}",
        brief(&incident)
    );
    (incident, ttd)
}

/// Waits for `incident` to resolve after the repair at `repaired_ms`; its time to resolve.
async fn resolve(sys: &System, incident: &IncidentRecord, repaired_ms: i64) -> i64 {
    let budget = intervals(sys, TTR_INTERVALS + 10);
    let what = format!("incident {} ({}) resolved", incident.id, incident.class);
    let resolved = sys
        .wait_incident(budget, &what, |i| {
            i.id == incident.id && i.state == StoredState::Resolved
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let ttr = resolved
        .resolved_ms
        .expect("a resolved incident has resolved_ms")
        - repaired_ms;
    let bound = intervals(sys, TTR_INTERVALS).as_millis() as i64;
    assert!(
        (0..=bound).contains(&ttr),
        "{what}: {ttr} ms after the repair, bound {bound} ms:\n{}",
        brief(&resolved)
    );
    ttr
}

/// The incidents detected at or after `since_ms`.
async fn since(sys: &System, since_ms: i64) -> Vec<IncidentRecord> {
    sys.incidents()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
        .into_iter()
        .filter(|i| i.detected_ms >= since_ms)
        .collect()
}

/// Every incident closed, then a few intervals for the samples of the fault to age out.
async fn settle(sys: &System) {
    sys.wait_all_closed(intervals(sys, 30))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    tokio::time::sleep(intervals(sys, 3)).await;
}

/// The evidence of `region` in `incident`.
fn evidence<'a>(
    incident: &'a IncidentRecord,
    region: &str,
) -> &'a meridian_coordinator::store::incidents::EvidenceRecord {
    incident
        .evidence
        .iter()
        .find(|e| e.region == region)
        .unwrap_or_else(|| panic!("no evidence for {region}: \n{}", brief(incident)))
}

fn delta(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

/// Scenario 5: the origin answers 503 to everything → `origin-down` in every region, paged.
async fn origin_down(sys: &System) -> Outcome {
    let injected = wall_ms();
    sys.origin().set(Script {
        status: Some(503),
        ..Script::default()
    });
    let (incident, ttd) = detect(sys, "origin-down everywhere", injected, |i| {
        i.class == "origin-down" && i.regions == all_regions()
    })
    .await;
    assert_eq!(incident.severity, "page", "\n{}", brief(&incident));
    assert!(
        incident
            .evidence
            .iter()
            .any(|e| e.failure_class.as_deref() == Some("http-status")),
        "\n{}",
        brief(&incident)
    );
    let repaired = wall_ms();
    sys.origin().set(Script::default());
    let ttr = resolve(sys, &incident, repaired).await;
    let others: Vec<IncidentRecord> = since(sys, injected)
        .await
        .into_iter()
        .filter(|i| i.id != incident.id && i.severity == "page")
        .collect();
    assert!(
        others.is_empty(),
        "one page for one outage:\n{}",
        briefs(&others)
    );
    Outcome {
        scenario: "5 origin 503",
        class: incident.class.clone(),
        regions: incident.regions.clone(),
        ttd_ms: ttd,
        ttr_ms: Some(ttr),
        attribution: "-".into(),
    }
}

/// Scenario 1: a fiber cut, +180 ms round trip between one region and the origin →
/// `regional-network` for that region only, the delta in connect, not in server time.
async fn fiber_cut(sys: &System, region: &str) -> Outcome {
    let cut = sys
        .net()
        .wan()
        .set_path(region, "origin", Rule::delay(ms(90)))
        .expect("a rule for sites of the run");
    let injected = at(&cut);
    let (incident, ttd) = detect(sys, "regional-network for the cut region", injected, |i| {
        i.class == "regional-network"
    })
    .await;
    assert_eq!(incident.regions, [region], "\n{}", brief(&incident));
    let e = evidence(&incident, region);
    let (connect, server) = (delta(e.connect_delta_ms), delta(e.server_delta_ms));
    assert!(
        (120.0..=240.0).contains(&connect) && server.abs() < 60.0,
        "the delta is the round trip's: \n{}",
        brief(&incident)
    );
    let repair = sys
        .net()
        .wan()
        .set_path(region, "origin", Rule::default())
        .expect("a rule for sites of the run");
    let ttr = resolve(sys, &incident, at(&repair)).await;
    let others: Vec<IncidentRecord> = since(sys, injected)
        .await
        .into_iter()
        .filter(|i| i.id != incident.id && !i.regions.iter().all(|r| r == region))
        .collect();
    assert!(
        others.is_empty(),
        "nothing outside {region}:\n{}",
        briefs(&others)
    );
    Outcome {
        scenario: "1 fiber cut +180 ms RTT",
        class: incident.class.clone(),
        regions: incident.regions.clone(),
        ttd_ms: ttd,
        ttr_ms: Some(ttr),
        attribution: format!(
            "connect {connect:+.1} ms (injected +180, error {:.1}), tls {:+.1}, server {server:+.1}",
            connect - 180.0,
            delta(e.tls_delta_ms)
        ),
    }
}

/// Scenario 6: the origin waits 800 ms before the first byte → `origin-slow`, the delta in
/// server time, not in connect.
async fn origin_slow(sys: &System) -> Outcome {
    let injected = wall_ms();
    sys.origin().set(Script {
        delay: ms(800),
        ..Script::default()
    });
    let (incident, ttd) = detect(sys, "origin-slow everywhere", injected, |i| {
        i.class == "origin-slow" && i.regions == all_regions()
    })
    .await;
    let servers: Vec<f64> = incident
        .evidence
        .iter()
        .map(|e| delta(e.server_delta_ms))
        .collect();
    let connects: Vec<f64> = incident
        .evidence
        .iter()
        .map(|e| delta(e.connect_delta_ms))
        .collect();
    assert!(
        servers.iter().all(|s| (700.0..=900.0).contains(s))
            && connects.iter().all(|c| c.abs() < 30.0),
        "the delta is the server's: \n{}",
        brief(&incident)
    );
    let repaired = wall_ms();
    sys.origin().set(Script::default());
    let ttr = resolve(sys, &incident, repaired).await;
    let worst = servers
        .iter()
        .map(|s| s - 800.0)
        .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
    Outcome {
        scenario: "6 origin +800 ms first byte",
        class: incident.class.clone(),
        regions: incident.regions.clone(),
        ttd_ms: ttd,
        ttr_ms: Some(ttr),
        attribution: format!(
            "server {servers:.1?} ms (injected +800, worst error {worst:+.1}), connect {connects:.1?}"
        ),
    }
}

/// Scenario 7, the trap: the origin serves one region's source addresses 500 ms late →
/// `regional-server` for that region, never `regional-network` (connect did not move).
async fn regional_server(sys: &System, region: &str) -> Outcome {
    let blocks: Vec<(Ipv4Net, Duration)> = sys
        .net()
        .plan()
        .blocks
        .iter()
        .filter(|b| b.region == region)
        .map(|b| (b.net, ms(500)))
        .collect();
    assert_eq!(blocks.len(), 2, "both of the region's networks");
    let injected = wall_ms();
    sys.origin().set(Script {
        delay_from: blocks,
        ..Script::default()
    });
    let (incident, ttd) = detect(sys, "regional-server", injected, |i| {
        i.class == "regional-server"
    })
    .await;
    assert_eq!(incident.regions, [region], "\n{}", brief(&incident));
    let e = evidence(&incident, region);
    let (connect, server) = (delta(e.connect_delta_ms), delta(e.server_delta_ms));
    assert!(
        (400.0..=600.0).contains(&server) && connect.abs() < 30.0,
        "the delta is the server's: \n{}",
        brief(&incident)
    );
    let repaired = wall_ms();
    sys.origin().set(Script::default());
    let ttr = resolve(sys, &incident, repaired).await;
    let wrong: Vec<IncidentRecord> = since(sys, injected)
        .await
        .into_iter()
        .filter(|i| i.id != incident.id)
        .collect();
    assert!(
        wrong.is_empty(),
        "never regional-network, nor anything else:\n{}",
        briefs(&wrong)
    );
    Outcome {
        scenario: "7 origin slow for one region",
        class: incident.class.clone(),
        regions: incident.regions.clone(),
        ttd_ms: ttd,
        ttr_ms: Some(ttr),
        attribution: format!(
            "server {server:+.1} ms (injected +500, error {:+.1}), connect {connect:+.1}",
            server - 500.0
        ),
    }
}

/// Scenario 3: every packet between one region and the origin lost (the coordinator's link
/// intact) → `regional-network` for that region, on failures.
async fn region_loses_the_origin(sys: &System, region: &str) -> Outcome {
    let cut = sys
        .net()
        .wan()
        .set_path(region, "origin", Rule::loss(1.0))
        .expect("a rule for sites of the run");
    let injected = at(&cut);
    let (incident, ttd) = detect(sys, "regional-network on loss", injected, |i| {
        i.class == "regional-network"
    })
    .await;
    assert_eq!(incident.regions, [region], "\n{}", brief(&incident));
    let e = evidence(&incident, region);
    assert!(
        e.failures >= 2 && e.failure_class.is_some(),
        "the region's checks fail: \n{}",
        brief(&incident)
    );
    let failure = e.failure_class.clone().unwrap_or_default();
    let repair = sys
        .net()
        .wan()
        .set_path(region, "origin", Rule::default())
        .expect("a rule for sites of the run");
    let ttr = resolve(sys, &incident, at(&repair)).await;
    let others: Vec<IncidentRecord> = since(sys, injected)
        .await
        .into_iter()
        .filter(|i| i.id != incident.id)
        .collect();
    assert!(
        others.is_empty(),
        "one incident, in {region}:\n{}",
        briefs(&others)
    );
    Outcome {
        scenario: "3 100 % loss region-origin",
        class: incident.class.clone(),
        regions: incident.regions.clone(),
        ttd_ms: ttd,
        ttr_ms: Some(ttr),
        attribution: format!("{} failures ({failure})", e.failures),
    }
}

/// Scenario 9: one probe's own traffic +400 ms round trip and 30 % loss → `probe-fault` for
/// that probe, quarantined, and nothing pages.
async fn probe_fault(sys: &System, region: &str) -> Outcome {
    let probe = sys.probes_in(region)[0];
    let (id, addr) = (probe.id.clone(), probe.host.addr);
    let fault = Rule::delay(ms(200)).with_loss(0.3);
    let injected = at(&sys
        .net()
        .wan()
        .set_host(addr, fault)
        .expect("a rule for a host of the run"));
    let (incident, ttd) = detect(sys, "probe-fault", injected, |i| {
        i.class == "probe-fault" && i.probe.as_deref() == Some(id.as_str())
    })
    .await;
    assert_eq!(incident.regions, [region], "\n{}", brief(&incident));
    assert_eq!(incident.severity, "info", "\n{}", brief(&incident));
    assert!(
        incident
            .timeline
            .iter()
            .any(|t| t.what.contains("quarantined")),
        "the probe is quarantined: \n{}",
        brief(&incident)
    );
    let repair = sys
        .net()
        .wan()
        .set_host(addr, Rule::default())
        .expect("a rule for sites of the run");
    let ttr = resolve(sys, &incident, at(&repair)).await;
    let pages: Vec<IncidentRecord> = since(sys, injected)
        .await
        .into_iter()
        .filter(|i| i.severity == "page" || i.paged_ms.is_some())
        .collect();
    assert!(
        pages.is_empty(),
        "a probe's own fault pages no one:\n{}",
        briefs(&pages)
    );
    Outcome {
        scenario: "9 one probe +400 ms, 30 % loss",
        class: incident.class.clone(),
        regions: vec![id],
        ttd_ms: ttd,
        ttr_ms: Some(ttr),
        attribution: "-".into(),
    }
}

/// Scenario 4: one region cut off from everything, the coordinator included → `region-silent`;
/// the probes spool, and once the region is back their late results amend the incident; no
/// origin alert.
async fn region_silent(sys: &System, region: &str) -> Outcome {
    let wan = sys.net().wan();
    let injected = at(&wan
        .set_path(region, "coordinator", Rule::blackhole())
        .expect("a rule for a host of the run"));
    wan.set_path(region, "origin", Rule::blackhole())
        .expect("a rule for sites of the run");
    wan.set_path(region, "dns", Rule::blackhole())
        .expect("a rule for sites of the run");
    // Silence is counted in heartbeats (10 s; silent after two), not in check intervals.
    let bound = SILENT_AFTER + intervals(sys, TTD_INTERVALS);
    let (incident, ttd) = detect_within(sys, "region-silent", injected, bound, |i| {
        i.class == "region-silent"
    })
    .await;
    assert_eq!(incident.regions, [region], "\n{}", brief(&incident));
    // A few more intervals of failing checks spooled in the region.
    tokio::time::sleep(intervals(sys, 3)).await;
    let repaired = wall_ms();
    wan.set_path(region, "coordinator", Rule::default())
        .expect("a rule for sites of the run");
    wan.set_path(region, "origin", Rule::default())
        .expect("a rule for sites of the run");
    wan.set_path(region, "dns", Rule::default())
        .expect("a rule for sites of the run");
    // Back once the probes' QUIC connections recover (retransmission backoff, or a new
    // connection after the 30 s idle timeout).
    let budget = Duration::from_secs(60);
    let amended = sys
        .wait_incident(
            budget,
            "region-silent resolved and amended by late data",
            |i| {
                i.id == incident.id
                    && i.state == StoredState::Resolved
                    && i.timeline.iter().any(|t| t.what.starts_with("late data"))
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let ttr = amended.resolved_ms.unwrap_or(i64::MAX) - repaired;
    let late = amended
        .timeline
        .iter()
        .find(|t| t.what.starts_with("late data"))
        .map(|t| t.what.clone())
        .unwrap_or_default();
    // A probe of the region that reconnects well after its region-mates is silent while they
    // report: an operational probe-fault (info), never a page. Anything else is wrong.
    let (stragglers, alerts): (Vec<IncidentRecord>, Vec<IncidentRecord>) = since(sys, injected)
        .await
        .into_iter()
        .filter(|i| i.id != incident.id)
        .partition(|i| i.class == "probe-fault" && i.regions == [region] && i.severity == "info");
    assert!(
        alerts.is_empty(),
        "no origin alert, nothing else:\n{}",
        briefs(&alerts)
    );
    if !stragglers.is_empty() {
        eprintln!(
            "realnet scenario 4: stragglers after the repair:\n{}",
            briefs(&stragglers)
        );
    }
    Outcome {
        scenario: "4 region cut off",
        class: incident.class.clone(),
        regions: incident.regions.clone(),
        ttd_ms: ttd,
        ttr_ms: Some(ttr),
        attribution: format!("{late}; {} straggler probe-fault(s)", stragglers.len()),
    }
}

/// Scenario 10: `kill -9` of the coordinator during an outage, then a restart: the open
/// incident is marked interrupted, the restarted coordinator (warm start again) detects the
/// outage anew, and it resolves after the repair. Returns the outcome; the delivery audit at
/// the end checks that every result was stored exactly once.
async fn coordinator_killed(sys: &mut System) -> Outcome {
    let injected = wall_ms();
    sys.origin().set(Script {
        status: Some(503),
        ..Script::default()
    });
    let (first, _) = detect(sys, "origin-down before the kill", injected, |i| {
        i.class == "origin-down"
    })
    .await;
    sys.kill_coordinator()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let killed = wall_ms();
    // The probes go on checking and spooling while it is down.
    tokio::time::sleep(intervals(sys, 3)).await;
    sys.start_coordinator()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let restarted = wall_ms();
    // The probes come back once their connections to the killed process time out; then the
    // next runs detect it.
    let bound = QUIC_IDLE + intervals(sys, TTD_INTERVALS);
    let (again, ttd) = detect_within(sys, "origin-down after the restart", killed, bound, |i| {
        i.class == "origin-down" && i.id != first.id && i.regions == all_regions()
    })
    .await;
    let interrupted = sys
        .incidents()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
        .into_iter()
        .find(|i| i.id == first.id)
        .expect("the first incident is still stored");
    assert_eq!(
        interrupted.state,
        StoredState::Interrupted,
        "\n{}",
        brief(&interrupted)
    );
    let repaired = wall_ms();
    sys.origin().set(Script::default());
    let ttr = resolve(sys, &again, repaired).await;
    Outcome {
        scenario: "10 kill -9 + restart",
        class: again.class.clone(),
        regions: again.regions.clone(),
        ttd_ms: ttd,
        ttr_ms: Some(ttr),
        attribution: format!(
            "down {:.1} s; TTD counted from the kill ({:.1} s from the restart)",
            (restarted - killed) as f64 / 1e3,
            (again.detected_ms - restarted) as f64 / 1e3
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_on_the_emulated_wan() {
    let _serial = SERIAL.lock().await;
    let mut builder = System::builder();
    for (region, one_way) in REGIONS {
        builder = builder.region(region, ms(one_way));
    }
    let begun = tokio::time::Instant::now();
    let Some(mut sys) = builder
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
    outcomes.push(origin_down(&sys).await);
    settle(&sys).await;
    outcomes.push(fiber_cut(&sys, "me-south").await);
    settle(&sys).await;
    outcomes.push(origin_slow(&sys).await);
    settle(&sys).await;
    outcomes.push(regional_server(&sys, "ap-south").await);
    settle(&sys).await;
    outcomes.push(region_loses_the_origin(&sys, "us-east").await);
    settle(&sys).await;
    outcomes.push(probe_fault(&sys, "eu-central").await);
    settle(&sys).await;
    outcomes.push(region_silent(&sys, "me-south").await);
    settle(&sys).await;
    outcomes.push(coordinator_killed(&mut sys).await);
    settle(&sys).await;

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
