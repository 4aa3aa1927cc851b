//! Alerts end to end through a running coordinator: the alerting side of the live detection
//! run in [`crate::detection`], which starts these receivers, puts [`AlertReceivers::config`]
//! in its `coordinator.toml` and calls the assertions below as the origin fails and recovers.
//! One coordinator run serves both files (the scenario takes most of a minute).
//!
//! Two `webhook` sinks, each on its own recording receiver ([`Receiver`]) with its own HMAC
//! secret: `pager` (`route = "site"`) must get the `origin-down` incident paged, then
//! resolved, every request signed as `alerting::webhook` documents; `ops` (`route =
//! "operational"`) must hear nothing of it. `/metrics` on the coordinator's web listener
//! shows both sinks from the start and counts the deliveries. Every wait is bounded.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meridian_coordinator::alerting::webhook;
use meridian_tests::receiver::{Received, Receiver};
use serde_json::Value;

use crate::alerting::get;
use crate::detection::{CHECK, REGIONS, World, strings};

/// The paging sink's name and HMAC secret.
const PAGER: &str = "pager";
const PAGER_SECRET: &str = "e2e-pager-secret-0123456789";
/// The operational sink's.
const OPS: &str = "ops";
const OPS_SECRET: &str = "e2e-ops-secret-9876543210";
/// How long a delivery may take once the incident shows the transition in the store: the
/// coordinator sends it as it stores it, so this is only a margin for a loaded machine.
const DELIVERY: Duration = Duration::from_secs(15);

/// The receivers the coordinator's two webhook sinks post to.
pub(crate) struct AlertReceivers {
    /// `route = "site"`: receives site incidents once paged.
    pager: Receiver,
    /// `route = "operational"`: the monitoring network's own states only.
    ops: Receiver,
}

impl AlertReceivers {
    /// Both receivers, listening, accepting every request.
    pub(crate) async fn start() -> AlertReceivers {
        AlertReceivers {
            pager: Receiver::start(0).await.expect("pager receiver"),
            ops: Receiver::start(0).await.expect("ops receiver"),
        }
    }

    /// The `[alerting]` table routing to them, for the end of `coordinator.toml`.
    pub(crate) fn config(&self) -> String {
        format!(
            r#"
[alerting]
max_retry_time = "5s"

[[alerting.sink]]
kind = "webhook"
name = "{PAGER}"
url = "{pager}"
secret = "{PAGER_SECRET}"

[[alerting.sink]]
kind = "webhook"
name = "{OPS}"
route = "operational"
url = "{ops}"
secret = "{OPS_SECRET}"
"#,
            pager = self.pager.url("/pager"),
            ops = self.ops.url("/ops"),
        )
    }

    /// Before any incident: both sinks on `/metrics` at 0, the dispatcher's queue too.
    pub(crate) async fn assert_counted_from_start(&self, web: SocketAddr) {
        let text = metrics(web).await;
        for series in [
            format!("meridian_alerts_sent_total{{sink=\"{PAGER}\"}}"),
            format!("meridian_alerts_failed_total{{sink=\"{PAGER}\"}}"),
            format!("meridian_alerts_retries_total{{sink=\"{PAGER}\"}}"),
            format!("meridian_alerts_dropped_total{{sink=\"{PAGER}\"}}"),
            format!("meridian_alerts_sent_total{{sink=\"{OPS}\"}}"),
            format!("meridian_alerts_failed_total{{sink=\"{OPS}\"}}"),
            "meridian_alerts_dropped_total{sink=\"\"}".to_owned(),
        ] {
            assert_eq!(sample(&text, &series), Some(0.0), "{series} in\n{text}");
        }
    }

    /// The pager got `incident` (as `coordinator incidents --json` shows it) paged, with its
    /// class, target and regions, signed; the operational sink got nothing of it.
    pub(crate) async fn assert_paged(&self, incident: &Value, w: &World) {
        let id = incident["id"].as_u64().expect("incident id");
        let body = self
            .wait_for(w, "the paged alert", |b| {
                b["incident"] == id && b["transition"] == "paged"
            })
            .await;
        assert_eq!(body["status"], "firing", "{body:#}");
        assert_eq!(body["class"], "origin-down", "{body:#}");
        assert_eq!(body["route"], "site", "{body:#}");
        assert_eq!(body["severity"], "page", "{body:#}");
        assert_eq!(strings(&body["targets"]), [CHECK], "{body:#}");
        let mut regions = strings(&body["regions"]);
        regions.sort();
        assert_eq!(regions, REGIONS, "{body:#}");
        assert!(body["paged"].is_string(), "{body:#}");
        let web = w.web_addr().await;
        assert_eq!(
            body["links"]["incident"].as_str(),
            Some(format!("http://{web}/incidents/{id}").as_str()),
            "the link reaches the web UI where it listens: {body:#}"
        );
        self.assert_signed();
        let ops: Vec<Value> = self.ops.got().iter().map(json).collect();
        assert!(
            !ops.iter()
                .any(|b| b["incident"] == id || b["class"] == "origin-down"),
            "the operational sink got the site incident: {ops:#?}"
        );
    }

    /// The pager got `resolved` (the incident as stored once resolved) resolved, after its
    /// page, each transition once.
    pub(crate) async fn assert_resolved(&self, resolved: &Value, w: &World) {
        let id = resolved["id"].as_u64().expect("incident id");
        let body = self
            .wait_for(w, "the resolved alert", |b| {
                b["incident"] == id && b["transition"] == "resolved"
            })
            .await;
        assert_eq!(body["status"], "resolved", "{body:#}");
        assert_eq!(body["state"], "resolved", "{body:#}");
        assert!(body["resolved"].is_string(), "{body:#}");
        let transitions: Vec<Value> = self
            .pager
            .got()
            .iter()
            .map(json)
            .filter(|b| b["incident"] == id)
            .map(|b| b["transition"].clone())
            .collect();
        let at = |t: &str| transitions.iter().position(|x| x == t);
        assert!(at("paged") < at("resolved"), "{transitions:?}");
        for once in ["paged", "resolved"] {
            assert_eq!(
                transitions.iter().filter(|t| *t == once).count(),
                1,
                "{once} once: {transitions:?}"
            );
        }
        self.assert_signed();
    }

    /// `/metrics` counts each sink's deliveries (the pager's: at least the page and its
    /// resolution) and no failure or drop anywhere.
    pub(crate) async fn assert_delivered(&self, web: SocketAddr, w: &World) {
        let sent = |sink: &str| format!("meridian_alerts_sent_total{{sink=\"{sink}\"}}");
        // A counter moves once the receiver's answer is back, just after it recorded the
        // request: wait for both sinks' counts to match what their receivers accepted.
        let deadline = tokio::time::Instant::now() + DELIVERY;
        let text = loop {
            let text = metrics(web).await;
            let accepted = |r: &Receiver| r.got().iter().filter(|r| r.status == 200).count() as f64;
            let pager = sample(&text, &sent(PAGER));
            if pager.is_some_and(|n| n >= 2.0)
                && pager == Some(accepted(&self.pager))
                && sample(&text, &sent(OPS)) == Some(accepted(&self.ops))
            {
                break text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the sent counters do not match the {} + {} accepted deliveries (the pager's \
                 at least 2) within {DELIVERY:?}:\n{text}\n{}",
                accepted(&self.pager),
                accepted(&self.ops),
                w.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        for sink in [PAGER, OPS] {
            for family in ["failed", "dropped"] {
                let series = format!("meridian_alerts_{family}_total{{sink=\"{sink}\"}}");
                assert_eq!(sample(&text, &series), Some(0.0), "{series} in\n{text}");
            }
        }
        assert_eq!(
            sample(&text, "meridian_alerts_dropped_total{sink=\"\"}"),
            Some(0.0)
        );
    }

    /// The transitions the pager received for incident `id`, in order.
    pub(crate) fn pager_transitions(&self, id: u64) -> Vec<String> {
        self.pager
            .got()
            .iter()
            .map(json)
            .filter(|b| b["incident"] == id)
            .filter_map(|b| b["transition"].as_str().map(str::to_owned))
            .collect()
    }

    /// Waits (at most [`DELIVERY`]) for a pager delivery whose JSON body `pick` accepts.
    async fn wait_for(&self, w: &World, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + DELIVERY;
        loop {
            let got = self.pager.got();
            if let Some(body) = got.iter().map(json).find(|b| pick(b)) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not delivered within {DELIVERY:?}; got {:#?}\n{}",
                got.iter().map(json).collect::<Vec<_>>(),
                w.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every request either receiver got carries a valid, fresh signature under its own
    /// sink's secret, and not under the other's.
    fn assert_signed(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        for (receiver, path, secret, other) in [
            (&self.pager, "/pager", PAGER_SECRET, OPS_SECRET),
            (&self.ops, "/ops", OPS_SECRET, PAGER_SECRET),
        ] {
            for r in receiver.got() {
                assert_eq!(r.path, path);
                let header = |name: &str| {
                    r.headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_else(|| panic!("no {name} header: {r:?}"))
                        .to_owned()
                };
                let (ts, sig) = (
                    header(webhook::TIMESTAMP_HEADER),
                    header(webhook::SIGNATURE_HEADER),
                );
                assert!(
                    webhook::verify(secret.as_bytes(), &ts, &sig, &r.body, now),
                    "{path}: {ts} {sig} does not verify"
                );
                assert!(!webhook::verify(other.as_bytes(), &ts, &sig, &r.body, now));
            }
        }
    }
}

/// A delivery's JSON body.
fn json(r: &Received) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

/// The coordinator's `/metrics` (OpenMetrics: the default), which must answer 200.
async fn metrics(web: SocketAddr) -> String {
    let (status, body) = get(web, "/metrics").await;
    assert_eq!(status, 200, "GET /metrics: {body}");
    body
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}
