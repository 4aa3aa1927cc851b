//! Live detection end to end, with the real `coordinator` and four real `probe` processes on
//! 127.0.0.1: two regions of two probes check one origin every 2 s; the origin starts
//! answering 503 to everything, and within a bounded time `coordinator incidents --json` lists
//! an `origin-down` incident covering both regions, paged, with an explanation; the origin
//! recovers and the incident resolves. Hard failures need no baseline, so there is no warm-up
//! beyond the first results. Every wait is bounded.
//!
//! The same run checks that the page reaches someone: the coordinator's `[alerting]` table
//! names two signed webhooks on local receivers ([`crate::alert_e2e`] holds that side), and
//! the paging one gets the incident paged, then resolved, while `/metrics` counts the
//! deliveries. One coordinator run serves both, as the scenario takes most of a minute.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use meridian_coordinator::store::Store;
use meridian_tests::cli::Agent;
use meridian_tests::coordinator::{self as coord, Coordinator};
use meridian_tests::{StatusOrigin, ZoneServer};

use crate::alert_e2e::AlertReceivers;
use crate::transport::{STOP, wall_ms};

pub(crate) const REGIONS: [&str; 2] = ["eu-central", "us-east"];
pub(crate) const CHECK: &str = "home";
/// How long every probe may take to have its first results stored (enrolment done).
pub(crate) const FIRST_RESULTS: Duration = Duration::from_secs(30);
/// Detection after the origin fails: the next scheduled run (2 s), its upload, the burst
/// that confirms (runs 1 s apart) and the quorum in both regions; seconds, given a margin
/// for four probes and a coordinator on two cores.
pub(crate) const DETECT: Duration = Duration::from_secs(30);
/// Resolution after the origin recovers: the engine resolves after one interval without
/// confirmation (2 s at this scale).
pub(crate) const RESOLVE: Duration = Duration::from_secs(30);

/// The coordinator's configuration: one check of `url` every 2 s for both regions, then
/// `extra` (more tables: `[alerting]`).
pub(crate) fn config_text(data_dir: &Path, url: &str, extra: &str) -> String {
    format!(
        r#"data_dir = "{data_dir}"

[listen]
quic = "127.0.0.1:0"
http = "127.0.0.1:0"
server_names = ["localhost"]

[[target]]
id = "origin"
regions = ["{r0}", "{r1}"]

[[target.http]]
id = "{CHECK}"
url = "{url}"
interval = "2s"
timeout = "1s"
{extra}"#,
        data_dir = data_dir.display(),
        r0 = REGIONS[0],
        r1 = REGIONS[1],
    )
}

/// The world: DNS (never asked: the URL is an IP literal), the origin, the coordinator and
/// four enrolled probes running.
pub(crate) struct World {
    _dns: ZoneServer,
    /// The origin every probe checks; the test switches its status.
    pub(crate) origin: StatusOrigin,
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    coordinator: Option<Coordinator>,
    probes: Vec<(String, Agent)>,
}

impl World {
    /// Starts it all, the coordinator's configuration ending with `extra`.
    pub(crate) async fn start(extra: &str) -> World {
        let dns = ZoneServer::start().await.expect("dns");
        let origin = StatusOrigin::start().await.expect("origin");
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let config = dir.path().join("coordinator.toml");
        std::fs::write(&config, config_text(&data_dir, &origin.url(), extra))
            .expect("write config");
        let coordinator = Coordinator::start(&config, &dir.path().join("coordinator.log"))
            .await
            .expect("coordinator started");
        let addr = coordinator.addr();
        let mut probes = Vec::new();
        for (i, region) in [REGIONS[0], REGIONS[0], REGIONS[1], REGIONS[1]]
            .into_iter()
            .enumerate()
        {
            let home = dir.path().join(format!("probe{i}"));
            let state = home.join("state");
            let id = coord::enroll(&data_dir, addr, region, &state)
                .await
                .expect("probe enrolled");
            let probe_config = home.join("probe.toml");
            std::fs::write(
                &probe_config,
                format!(
                    r#"state_dir = "{state}"
resolver = "{resolver}"
allow_networks = ["127.0.0.1/32"]

[[coordinator]]
name = "c1"
address = "{addr}"
server_name = "localhost"
"#,
                    state = state.display(),
                    resolver = dns.udp_uri(),
                ),
            )
            .expect("write probe.toml");
            let agent = Agent::start(&probe_config, &home.join("probe.log")).expect("probe run");
            probes.push((id, agent));
        }
        World {
            _dns: dns,
            origin,
            dir,
            data_dir,
            coordinator: Some(coordinator),
            probes,
        }
    }

    /// The coordinator's configuration file.
    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("coordinator.toml")
    }

    /// The coordinator's data directory.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The text of the log file `name` under the world's directory (empty if none).
    pub(crate) fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The coordinator's log and the probes', for failure messages.
    pub(crate) fn logs(&self) -> String {
        let mut out = format!("--- coordinator.log\n{}", self.log("coordinator.log"));
        for i in 0..self.probes.len() {
            let name = format!("probe{i}/probe.log");
            out.push_str(&format!("\n--- {name}\n{}", self.log(&name)));
        }
        out
    }

    /// The coordinator's web side (`/metrics`), from its "web UI on" log line.
    pub(crate) async fn web_addr(&self) -> SocketAddr {
        coord::wait_web_addr(&self.dir.path().join("coordinator.log"))
            .await
            .expect("the coordinator logs its web address")
    }

    /// How many results of each probe are stored, read through a second connection.
    pub(crate) async fn stored(&self) -> Vec<usize> {
        let dir = self.data_dir.clone();
        let ids: Vec<String> = self.probes.iter().map(|(id, _)| id.clone()).collect();
        tokio::task::spawn_blocking(move || {
            let store = Store::open(&dir)?;
            ids.iter()
                .map(|id| store.results(id).map(|r| r.len()))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .expect("store task")
        .expect("reading the store")
    }

    /// How many burst runs (results with a burst tag) are stored, all probes together.
    pub(crate) async fn burst_runs(&self) -> usize {
        let dir = self.data_dir.clone();
        let ids: Vec<String> = self.probes.iter().map(|(id, _)| id.clone()).collect();
        tokio::task::spawn_blocking(
            move || -> Result<usize, meridian_coordinator::store::StoreError> {
                let store = Store::open(&dir)?;
                let mut n = 0;
                for id in &ids {
                    n += store
                        .sequenced_results(id)?
                        .iter()
                        .filter(|r| r.burst.is_some())
                        .count();
                }
                Ok(n)
            },
        )
        .await
        .expect("store task")
        .expect("reading the store")
    }

    /// `coordinator incidents --json`, parsed.
    pub(crate) async fn incidents(&self) -> Vec<serde_json::Value> {
        let dir = self.data_dir.to_str().expect("utf-8 path");
        let out = coord::coordinator(&["incidents", "--data-dir", dir, "--json"])
            .await
            .expect("coordinator incidents ran");
        assert_eq!(out.code, Some(0), "{out:?}");
        out.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Waits (at most `budget`) for an incident `pick` accepts; returns it.
    pub(crate) async fn wait_incident(
        &self,
        budget: Duration,
        what: &str,
        pick: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            let incidents = self.incidents().await;
            if let Some(found) = incidents.iter().find(|i| pick(i)) {
                return found.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {budget:?}; incidents: {incidents:#?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Stops the probes, then the coordinator, each with SIGTERM.
    pub(crate) async fn stop(&mut self) {
        for (id, agent) in self.probes.drain(..) {
            let status = agent.terminate(STOP).await.expect("probe stopped");
            assert!(status.success(), "probe {id}: {status}");
        }
        if let Some(c) = self.coordinator.take() {
            let status = c.terminate(STOP).await.expect("coordinator stopped");
            assert!(status.success(), "coordinator: {status}");
        }
    }
}

/// The strings of a JSON array (none if it is not one).
pub(crate) fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_failing_everywhere_pages_origin_down_alerts_and_resolves_when_it_recovers() {
    let sinks = AlertReceivers::start().await;
    let mut w = World::start(&sinks.config()).await;

    // Healthy first: every probe reports a few runs, and nothing is an incident.
    let deadline = tokio::time::Instant::now() + FIRST_RESULTS;
    loop {
        let stored = w.stored().await;
        if stored.iter().all(|n| *n >= 2) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every probe reported within {FIRST_RESULTS:?}: {stored:?}\n{}",
            w.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let before = w.incidents().await;
    assert!(
        before.is_empty(),
        "no incident while the origin is healthy: {before:#?}"
    );
    // Every sink is on /metrics from the start, at 0.
    let web = w.web_addr().await;
    sinks.assert_counted_from_start(web).await;

    // The origin answers 503 to everything.
    let requests = w.origin.requests();
    w.origin.set_status(503);
    let failed_ms = wall_ms();
    let incident = w
        .wait_incident(DETECT, "origin-down paged in both regions", |i| {
            let regions = strings(&i["regions"]);
            i["class"] == "origin-down"
                && REGIONS.iter().all(|r| regions.iter().any(|x| x == r))
                && i["paged_ms"].is_i64()
        })
        .await;
    let detected_ms = incident["detected_ms"].as_i64().expect("detected_ms");
    assert!(
        detected_ms >= failed_ms,
        "detected after the failure: {incident:#}"
    );
    assert_eq!(strings(&incident["targets"]), [CHECK]);
    assert_eq!(incident["severity"], "page");
    let explanation = incident["explanation"].as_str().unwrap_or_default();
    assert!(explanation.contains("fail"), "an explanation: {incident:#}");
    let evidence = incident["evidence"].as_array().cloned().unwrap_or_default();
    assert!(
        evidence.iter().any(|e| e["failure_class"] == "http-status"),
        "evidence names the failure: {incident:#}"
    );
    let log = w.log("coordinator.log");
    assert!(
        log.contains("incident opened") && log.contains("class=origin-down"),
        "the transition is logged\n{}",
        w.logs()
    );
    // The page reached the paging webhook, signed; the operational one heard nothing of it.
    sinks.assert_paged(&incident, &w).await;

    // The engine's bursts went out over the link: burst runs came back tagged.
    let tagged = w.burst_runs().await;
    assert!(
        tagged > 0 && w.origin.requests() > requests,
        "burst runs stored ({tagged})\n{}",
        w.logs()
    );

    // The origin recovers: the same incident resolves.
    w.origin.set_status(200);
    let recovered_ms = wall_ms();
    let id = incident["id"].clone();
    let resolved = w
        .wait_incident(RESOLVE, "the incident resolved", |i| {
            i["id"] == id && i["state"] == "resolved"
        })
        .await;
    let resolved_ms = resolved["resolved_ms"].as_i64().expect("resolved_ms");
    assert!(resolved_ms >= recovered_ms, "{resolved:#}");
    assert_eq!(resolved["paged_ms"], incident["paged_ms"], "paged once");
    // Nothing else was made of it: the one fault is one incident.
    let all = w.incidents().await;
    let site: Vec<&serde_json::Value> = all.iter().filter(|i| i["severity"] == "page").collect();
    assert_eq!(site.len(), 1, "one paging incident: {all:#?}");
    // The resolution reached the paging webhook too, and /metrics counts both deliveries.
    sinks.assert_resolved(&resolved, &w).await;
    sinks.assert_delivered(web, &w).await;
    w.stop().await;
    assert!(
        w.log("coordinator.log").contains("incident resolved"),
        "{}",
        w.logs()
    );
}
