//! Alert delivery (`meridian_coordinator::alerting`) to real HTTP receivers on loopback.
//!
//! - The dispatcher, fed incident records directly (the detection thread's call), delivers a
//!   paged site incident to a signed webhook (which fails its first two attempts: retries are
//!   observed and each attempt's HMAC verifies), PagerDuty and a black hole that never answers,
//!   and a probe fault only to the operational Slack sink; the black hole delays nobody.
//! - A real Alertmanager (Debian's `prometheus-alertmanager`; a SKIP line without it) receives
//!   the alert through the API v2 sink, lists it with our labels, notifies its own webhook
//!   receiver, and resolves it when the incident resolves.
//!
//! Every wait is bounded.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meridian_coordinator::alerting::retry::RetryPolicy;
use meridian_coordinator::alerting::{
    AlertingSettings, Dispatcher, Links, Route, Secret, SinkKind, SinkSettings, Transition, webhook,
};
use meridian_coordinator::store::incidents::{IncidentRecord, StoredState};
use meridian_tests::receiver::{Received, Receiver};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// How long any one expected delivery may take.
const WAIT: Duration = Duration::from_secs(15);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).expect("ms"))
}

fn incident(id: u64, class: &str, severity: &str) -> IncidentRecord {
    meridian_tests::receiver::paged_incident(id, class, severity, now_ms() - 120_000)
}

fn resolved(mut r: IncidentRecord) -> IncidentRecord {
    r.state = StoredState::Resolved;
    r.resolved_ms = Some(now_ms());
    r.updated_ms = now_ms();
    r
}

fn sink(name: &str, route: Route, kind: SinkKind) -> SinkSettings {
    SinkSettings {
        name: name.into(),
        route,
        tickets: false,
        kind,
    }
}

fn links() -> Links {
    Links {
        web: "http://meridian.test".into(),
        runbook: Some("http://runbooks.test/{class}".into()),
    }
}

fn json(r: &Received) -> Value {
    serde_json::from_slice(&r.body).expect("JSON body")
}

fn stat(d: &Dispatcher, name: &str) -> [u64; 4] {
    let (_, s) = d.stats.iter().find(|(n, _)| n == name).expect("sink");
    let l = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    [l(&s.sent), l(&s.failed), l(&s.dropped), l(&s.retries)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_routes_signs_retries_and_keeps_sinks_independent() {
    let hook = Receiver::start(2).await.expect("receiver");
    let slack = Receiver::start(0).await.expect("receiver");
    let pager = Receiver::start(0).await.expect("receiver");
    // Accepts connections and never answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hole_url: url::Url = format!("http://{}/", hole.local_addr().expect("addr"))
        .parse()
        .expect("url");
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            conns.push(s);
        }
    });

    let settings = AlertingSettings {
        sinks: vec![
            sink(
                "hook",
                Route::Site,
                SinkKind::Webhook {
                    url: hook.url("/hook"),
                    secret: Secret("sh4red".into()),
                },
            ),
            sink(
                "hole",
                Route::Site,
                SinkKind::Webhook {
                    url: hole_url,
                    secret: Secret("x".into()),
                },
            ),
            sink(
                "slack",
                Route::Operational,
                SinkKind::Slack {
                    url: Secret(slack.url("/services/T/B/X").to_string()),
                },
            ),
            sink(
                "pd",
                Route::Site,
                SinkKind::PagerDuty {
                    url: pager.url("/v2/enqueue"),
                    routing_key: Secret("rk".into()),
                },
            ),
        ],
        queue: 16,
        retry: RetryPolicy {
            max_attempts: 4,
            max_total: Duration::from_millis(2_500),
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            timeout: Duration::from_secs(1),
        },
        runbook_url: None,
    };
    let d = Dispatcher::start(&settings, links());
    let began = tokio::time::Instant::now();
    let site = incident(101, "origin-down", "page");
    d.sender.send(&site, Transition::Paged);
    let mut fault = incident(102, "probe-fault", "info");
    fault.paged_ms = None;
    fault.probe = Some("eu-central-1a".into());
    d.sender.send(&fault, Transition::Opened);

    // The webhook: two 503s, then accepted; every attempt signed afresh and verifiable.
    let ok = hook.accepted(1, WAIT).await.expect("delivered");
    let pd = pager.accepted(1, WAIT).await.expect("delivered");
    let sl = slack.accepted(1, WAIT).await.expect("delivered");
    let fast = began.elapsed();
    assert!(
        fast < Duration::from_secs(1),
        "the black hole held others up: {fast:?}"
    );
    let attempts = hook.got();
    assert_eq!(
        attempts.iter().map(|r| r.status).collect::<Vec<_>>()[..3],
        [503, 503, 200]
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for r in &attempts {
        assert_eq!(r.path, "/hook");
        let ts = r.headers["x-meridian-timestamp"].to_str().expect("ts");
        let sig = r.headers["x-meridian-signature"].to_str().expect("sig");
        assert!(
            webhook::verify(b"sh4red", ts, sig, &r.body, now),
            "{ts} {sig}"
        );
        assert!(!webhook::verify(b"wrong", ts, sig, &r.body, now));
    }
    let body = json(&ok[0]);
    assert_eq!(body["incident"], 101);
    assert_eq!(body["class"], "origin-down");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["route"], "site");
    assert_eq!(
        body["links"]["incident"],
        "http://meridian.test/incidents/101"
    );
    assert_eq!(body["links"]["runbook"], "http://runbooks.test/origin-down");

    // PagerDuty got the site incident; Slack (operational) only the probe fault.
    let p = json(&pd[0]);
    assert_eq!(
        (p["event_action"].as_str(), p["dedup_key"].as_str()),
        (Some("trigger"), Some("meridian-101"))
    );
    assert_eq!(p["routing_key"], "rk");
    assert_eq!(p["payload"]["severity"], "critical");
    let s = json(&sl[0]);
    assert!(
        s["text"].as_str().expect("text").contains("probe-fault"),
        "{s}"
    );
    assert!(s["blocks"].is_array());
    assert_eq!(sl[0].path, "/services/T/B/X");

    // The resolution reaches the paging sinks; Slack hears nothing of the site incident.
    d.sender.send(&resolved(site), Transition::Resolved);
    let ok = hook.accepted(2, WAIT).await.expect("delivered");
    assert_eq!(json(&ok[1])["status"], "resolved");
    let pd = pager.accepted(2, WAIT).await.expect("delivered");
    assert_eq!(json(&pd[1])["event_action"], "resolve");
    assert_eq!(json(&pd[1])["dedup_key"], "meridian-101");

    // The black hole gives up within its budget (2 deliveries, each bounded by 2.5 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while stat(&d, "hole")[1] < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the black hole never gave up: {:?}",
            stat(&d, "hole")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(slack.got().len(), 1);
    // [sent, failed, dropped, retries]
    assert_eq!(stat(&d, "hook"), [2, 0, 0, 2]);
    assert_eq!(stat(&d, "pd"), [2, 0, 0, 0]);
    assert_eq!(stat(&d, "slack"), [1, 0, 0, 0]);
    assert_eq!(stat(&d, "hole")[..3], [0, 2, 0]);
    assert_eq!(d.sender.dropped(), 0);
    held.abort();
}

/// `GET path` over HTTP/1.0 (a plain, unchunked answer): status and body.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).await.ok()?;
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or((0, String::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_receives_lists_notifies_and_resolves() {
    if !Path::new(ALERTMANAGER).exists() {
        println!(
            "SKIP a_real_alertmanager_receives_lists_notifies_and_resolves: {ALERTMANAGER} is not installed (apt-get install prometheus-alertmanager)"
        );
        return;
    }
    let began = tokio::time::Instant::now();
    let notified = Receiver::start(0).await.expect("receiver");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        l.local_addr().expect("addr").port()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            r#"route:
  receiver: meridian-test
  group_by: ["incident"]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: meridian-test
    webhook_configs:
      - url: "{}"
        send_resolved: true
"#,
            notified.url("/am")
        ),
    )
    .expect("config");
    let log = dir.path().join("alertmanager.log");
    let mut child = tokio::process::Command::new(ALERTMANAGER)
        .arg(format!(
            "--config.file={}",
            dir.path().join("alertmanager.yml").display()
        ))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .kill_on_drop(true)
        .spawn()
        .expect("starting alertmanager");
    let alog = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while get(addr, "/-/ready").await.0 != 200 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("alertmanager exited ({status}):\n{}", alog());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alertmanager not ready in 30 s:\n{}",
            alog()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_after = began.elapsed();

    let settings = AlertingSettings {
        sinks: vec![sink(
            "am",
            Route::Site,
            SinkKind::Alertmanager {
                url: format!("http://{addr}").parse().expect("url"),
                resend_every: Duration::from_secs(1),
            },
        )],
        runbook_url: Some("http://runbooks.test/".into()),
        ..AlertingSettings::default()
    };
    let d = Dispatcher::start(&settings, links());
    let site = incident(201, "regional-network", "page");
    d.sender.send(&site, Transition::Paged);

    // Alertmanager lists it with our labels and annotations.
    let deadline = tokio::time::Instant::now() + WAIT;
    let listed = loop {
        let (status, body) = get(addr, "/api/v2/alerts").await;
        let alerts: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
        if let Some(a) = alerts
            .into_iter()
            .find(|a| a["labels"]["incident"] == "201")
        {
            break a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not listed: {status} {body}\n{}",
            alog()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let labels = &listed["labels"];
    assert_eq!(labels["alertname"], "MeridianIncident");
    assert_eq!(labels["class"], "regional-network");
    assert_eq!(labels["regions"], "eu-central,us-east");
    assert_eq!(labels["target"], "shop-home");
    assert_eq!(labels["severity"], "page");
    assert_eq!(
        listed["annotations"]["map_url"],
        "http://meridian.test/incidents/201"
    );
    assert_eq!(
        listed["annotations"]["runbook_url"],
        "http://runbooks.test/regional-network"
    );
    assert_eq!(listed["status"]["state"], "active");

    // Its webhook receiver is notified (group_wait 1 s).
    let n = notified.accepted(1, WAIT).await.expect("delivered");
    let first = json(&n[0]);
    assert_eq!(first["status"], "firing", "{first}");
    assert_eq!(first["alerts"][0]["labels"]["incident"], "201");
    let notified_after = began.elapsed();

    // Resolved: Alertmanager notifies the resolution and no longer lists it as active.
    d.sender.send(&resolved(site), Transition::Resolved);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let resolved = notified
            .got()
            .iter()
            .any(|r| json(r)["status"] == "resolved");
        if resolved {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no resolved notification: {:?}\n{}",
            notified.got(),
            alog()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, body) = get(addr, "/api/v2/alerts?active=true").await;
    let alerts: Vec<Value> = serde_json::from_str(&body).expect("alerts");
    assert!(
        !alerts
            .iter()
            .any(|a| a["labels"]["incident"] == "201" && a["status"]["state"] == "active"),
        "{body}"
    );
    let [sent, failed, ..] = stat(&d, "am");
    assert!(sent >= 2 && failed == 0, "sent {sent} failed {failed}");
    println!(
        "alertmanager ready after {ready_after:?}, notified after {notified_after:?}, resolved after {:?}",
        began.elapsed()
    );
    let _ = child.kill().await;
}
