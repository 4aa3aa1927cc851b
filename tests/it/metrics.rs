//! `/metrics` end to end, with the real binaries on 127.0.0.1: a coordinator (with `[web]
//! metrics_token`) assigning an HTTPS check and a DNS check, and a probe with
//! `metrics_listen`, checking a local TLS origin through the test's DNS server.
//!
//! - Both endpoints expose their families with plausible values once results flowed, in
//!   OpenMetrics and (asked with `Accept: text/plain`) the classic format, which
//!   `promtool check metrics` lints without a complaint.
//! - A real Prometheus (Debian's `prometheus`; a SKIP line without it) scrapes both every
//!   second with `deploy/prometheus/alerts.yml` loaded, and its query API answers `up`, our
//!   series and every query of the Grafana dashboard.
//! - `deploy/prometheus/` passes `promtool check config`, `check rules` and `test rules`, and
//!   names only metrics the two endpoints expose.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meridian_probe::demo::origin::TlsVersions;
use meridian_tests::cli::{Agent, workspace_root};
use meridian_tests::coordinator::{Coordinator, wait_web_addr};
use meridian_tests::{OriginBuilder, TestOrigin, ZoneServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::Command;

use crate::transport::{REGION, STOP, enroll};

/// The coordinator's `[web] metrics_token`.
const TOKEN: &str = "metrics-token-for-the-test-0123456789";
/// How long the first results may take to show on both endpoints.
const FLOW: Duration = Duration::from_secs(30);
/// How long Prometheus may take to answer `/-/ready`, and then to see both targets up.
const PROMETHEUS_START: Duration = Duration::from_secs(20);
const PROMETHEUS_UP: Duration = Duration::from_secs(30);
const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
/// What Prometheus sends (2.42), OpenMetrics first.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const PLAIN_ACCEPT: &str = "text/plain;version=0.0.4";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An HTTP answer.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.0 GET (no chunking, the server closes): at most 10 s.
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path} from {addr}: no answer within 10 s"))
        .unwrap_or_else(|e| panic!("GET {path} from {addr}: {e}"));
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// The value of the sample whose name and labels are exactly `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Every sample name a classic-format exposition can carry, from its `# TYPE` lines.
fn exposed_names(plain: &str) -> BTreeSet<String> {
    plain
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .flat_map(|l| {
            let mut parts = l.split_whitespace();
            let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            match kind {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|s| format!("{name}{s}"))
                    .collect::<Vec<_>>(),
                _ => vec![name.to_string()],
            }
        })
        .collect()
}

/// The metric names a file mentions: words starting with `meridian_` or `probe_`.
fn mentioned_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .filter(|w| w.starts_with("meridian_") || w.starts_with("probe_"))
        .map(str::to_owned)
        .collect()
}

/// `promtool ARGS` with `stdin`: (success, output); `None` when promtool is not installed.
async fn promtool(args: &[&str], stdin: Option<&str>) -> Option<(bool, String)> {
    if !Path::new(PROMTOOL).exists() {
        println!(
            "SKIP promtool {}: {PROMTOOL} is not installed",
            args.join(" ")
        );
        return None;
    }
    let mut child = Command::new(PROMTOOL)
        .args(args)
        .current_dir(workspace_root().join("deploy/prometheus"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting promtool");
    let mut input = child.stdin.take().expect("promtool's stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .await
        .expect("writing to promtool");
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("promtool finished within 30 s")
        .expect("promtool ran");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A coordinator and a linked probe, both serving `/metrics`.
struct World {
    _dns: ZoneServer,
    origin: TestOrigin,
    dir: tempfile::TempDir,
    coordinator: Option<Coordinator>,
    agent: Option<Agent>,
    probe_id: String,
    /// The coordinator's `listen.http`.
    web: SocketAddr,
    /// The probe's `metrics_listen`.
    probe: SocketAddr,
}

impl World {
    async fn start() -> World {
        let dns = ZoneServer::start().await.expect("dns");
        let origin = OriginBuilder::tls(TlsVersions::Both)
            .start()
            .await
            .expect("origin");
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let config = dir.path().join("coordinator.toml");
        std::fs::write(
            &config,
            format!(
                r#"data_dir = "{data}"

[listen]
quic = "127.0.0.1:0"
http = "127.0.0.1:0"
server_names = ["localhost"]

[web]
metrics_token = "{TOKEN}"

[[target]]
id = "shop"
regions = ["{REGION}"]

[[target.http]]
id = "home"
url = "https://origin.example.test:{port}/?size=100"
interval = "1s"
timeout = "900ms"

[[target]]
id = "zone"
regions = ["{REGION}"]

[[target.dns]]
id = "apex"
name = "origin.example.test"
type = "A"
resolver = "{resolver}"
interval = "1s"
timeout = "900ms"
"#,
                data = data.display(),
                port = origin.port(),
                resolver = dns.udp_uri(),
            ),
        )
        .expect("write coordinator.toml");
        let log = dir.path().join("coordinator.log");
        let coordinator = Coordinator::start(&config, &log)
            .await
            .expect("coordinator started");
        let web = wait_web_addr(&log).await.expect("web address");
        let state = dir.path().join("state");
        let probe_id = enroll(&data, coordinator.addr(), &state).await;
        std::fs::write(
            dir.path().join("origin-ca.pem"),
            origin.ca_pem().expect("a TLS origin has a CA"),
        )
        .expect("write the origin's CA");
        let probe_config = dir.path().join("probe.toml");
        std::fs::write(
            &probe_config,
            format!(
                r#"state_dir = "{state}"
resolver = "{resolver}"
allow_networks = ["127.0.0.1/32"]
ca_file = "origin-ca.pem"
metrics_listen = "127.0.0.1:0"

[[coordinator]]
name = "c1"
address = "{addr}"
server_name = "localhost"
"#,
                state = state.display(),
                resolver = dns.udp_uri(),
                addr = coordinator.addr(),
            ),
        )
        .expect("write probe.toml");
        let agent = Agent::start(&probe_config, &dir.path().join("probe.log")).expect("probe run");
        let mut world = World {
            _dns: dns,
            origin,
            dir,
            coordinator: Some(coordinator),
            agent: Some(agent),
            probe_id,
            web,
            probe: "127.0.0.1:9".parse().expect("address"),
        };
        world.probe = world.probe_metrics_addr().await;
        world
    }

    /// The probe's "metrics on http://ADDR/metrics" line.
    async fn probe_metrics_addr(&self) -> SocketAddr {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log("probe.log");
            if let Some(addr) = log.lines().find_map(|l| {
                let rest = &l[l.find("metrics on http://")? + "metrics on http://".len()..];
                rest.split('/').next()?.parse().ok()
            }) {
                return addr;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the probe did not log its metrics address\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn logs(&self) -> String {
        ["coordinator.log", "probe.log"]
            .iter()
            .map(|n| format!("--- {n}\n{}\n", self.log(n)))
            .collect()
    }

    /// What the probe labels the HTTPS check's target.
    fn home_target(&self) -> String {
        format!("origin.example.test:{}", self.origin.port())
    }

    async fn coordinator_metrics(&self, accept: &str) -> Reply {
        let auth = format!("Bearer {TOKEN}");
        get(
            self.web,
            "/metrics",
            &[("Accept", accept), ("Authorization", &auth)],
        )
        .await
    }

    async fn probe_metrics(&self, accept: &str) -> Reply {
        get(self.probe, "/metrics", &[("Accept", accept)]).await
    }

    /// Waits until both endpoints show results of both checks delivered and stored; their
    /// OpenMetrics texts then.
    async fn wait_for_flow(&self) -> (String, String) {
        let deadline = tokio::time::Instant::now() + FLOW;
        let stored = |check: &str, phase: &str| {
            format!(
                "meridian_check_phase_duration_seconds_count{{target=\"{}\",check=\"{check}\",region=\"{REGION}\",phase=\"{phase}\"}}",
                if check == "home" { "shop" } else { "zone" }
            )
        };
        loop {
            let c = self.coordinator_metrics(PROMETHEUS_ACCEPT).await.body;
            let p = self.probe_metrics(PROMETHEUS_ACCEPT).await.body;
            let flowed = value(&c, &stored("home", "tls")).is_some_and(|n| n >= 2.0)
                && value(&c, &stored("apex", "dns")).is_some_and(|n| n >= 2.0)
                && value(
                    &p,
                    "meridian_probe_uplink_results_acked_total{coordinator=\"c1\"}",
                )
                .is_some_and(|n| n >= 2.0);
            if flowed {
                return (c, p);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no results on both endpoints within {FLOW:?}\n--- coordinator /metrics\n{c}\n--- probe /metrics\n{p}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(agent) = self.agent.take() {
            let status = agent.terminate(STOP).await.expect("probe stopped");
            assert!(status.success(), "probe: {status}\n{}", self.logs());
        }
        if let Some(c) = self.coordinator.take() {
            let status = c.terminate(STOP).await.expect("coordinator stopped");
            assert!(status.success(), "coordinator: {status}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_endpoints_expose_their_families_and_pass_promtool() {
    let w = World::start().await;

    // Access: the token, or nothing.
    let anonymous = get(w.web, "/metrics", &[]).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.head);
    let wrong = get(
        w.web,
        "/metrics",
        &[(
            "Authorization",
            "Bearer metrics-token-for-the-test-9876543210",
        )],
    )
    .await;
    assert_eq!(wrong.status, 401);
    let missing = get(w.probe, "/nothing", &[]).await;
    assert_eq!(missing.status, 404);

    let (c, p) = w.wait_for_flow().await;
    let reply = w.coordinator_metrics(PROMETHEUS_ACCEPT).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(OPENMETRICS));
    assert_eq!(
        w.probe_metrics("*/*").await.header("content-type"),
        Some(OPENMETRICS)
    );
    assert!(c.ends_with("# EOF\n") && p.ends_with("# EOF\n"));

    // The coordinator: ingest, liveness, incidents, histograms.
    let probe = format!("{{probe=\"{}\",region=\"{REGION}\"}}", w.probe_id);
    let at_least = |text: &str, series: &str, min: f64| {
        let v = value(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(v >= min, "{series} = {v}, expected at least {min}");
        v
    };
    at_least(&c, "meridian_ingest_results_total{outcome=\"stored\"}", 4.0);
    at_least(&c, "meridian_ingest_batches_total", 1.0);
    at_least(&c, "meridian_link_sessions_total", 1.0);
    assert_eq!(
        value(&c, "meridian_ingest_results_total{outcome=\"rejected\"}"),
        Some(0.0)
    );
    assert_eq!(value(&c, &format!("meridian_probe_up{probe}")), Some(1.0));
    assert_eq!(
        value(&c, &format!("meridian_probe_connected{probe}")),
        Some(1.0)
    );
    let seen = at_least(
        &c,
        &format!("meridian_probe_last_seen_timestamp_seconds{probe}"),
        0.0,
    );
    assert!((now_s() - seen).abs() < 60.0, "last seen {seen}");
    // Clock pings start a minute after the service: no offset yet (the unit tests encode one).
    assert!(!c.contains("meridian_probe_clock_offset_seconds{"));
    assert_eq!(
        value(
            &c,
            "meridian_incidents_open{class=\"origin-down\",severity=\"page\"}"
        ),
        Some(0.0)
    );
    let home = format!("target=\"shop\",check=\"home\",region=\"{REGION}\"");
    for phase in ["dns", "connect", "tls", "ttfb", "transfer", "total"] {
        let count = at_least(
            &c,
            &format!("meridian_check_phase_duration_seconds_count{{{home},phase=\"{phase}\"}}"),
            1.0,
        );
        let sum = at_least(
            &c,
            &format!("meridian_check_phase_duration_seconds_sum{{{home},phase=\"{phase}\"}}"),
            0.0,
        );
        assert!(
            sum / count > 0.0 && sum / count < 1.0,
            "{phase}: mean {}",
            sum / count
        );
    }
    assert!(c.contains(&format!(
        "meridian_check_phase_duration_seconds_bucket{{le=\"+Inf\",{home},phase=\"total\"}}"
    )));
    assert!(c.contains("# TYPE meridian_check_failures counter\n"));

    // The probe: blackbox_exporter's families per check, then its own.
    let https = format!("{{check=\"home\",target=\"{}\"}}", w.home_target());
    let dns = "{check=\"apex\",target=\"origin.example.test\"}";
    assert_eq!(
        value(&p, &format!("probe_success{https}")),
        Some(1.0),
        "{p}"
    );
    assert_eq!(
        value(&p, &format!("probe_http_status_code{https}")),
        Some(200.0)
    );
    assert_eq!(value(&p, &format!("probe_http_ssl{https}")), Some(1.0));
    for phase in ["resolve", "connect", "tls", "processing", "transfer"] {
        let labels = format!(
            "{{check=\"home\",target=\"{}\",phase=\"{phase}\"}}",
            w.home_target()
        );
        let v = value(&p, &format!("probe_http_duration_seconds{labels}"))
            .unwrap_or_else(|| panic!("no {phase} phase in\n{p}"));
        assert!((0.0..1.0).contains(&v), "{phase}: {v}");
    }
    let total = at_least(&p, &format!("probe_duration_seconds{https}"), 0.0);
    assert!(total > 0.0 && total < 1.0, "{total}");
    let expiry = at_least(&p, &format!("probe_ssl_earliest_cert_expiry{https}"), 0.0);
    let days = (expiry - now_s()) / 86_400.0;
    assert!(
        (88.0..91.0).contains(&days),
        "certificate expires in {days} days"
    );
    assert_eq!(value(&p, &format!("probe_success{dns}")), Some(1.0));
    assert_eq!(value(&p, &format!("probe_dns_answer_rrs{dns}")), Some(1.0));
    let lookup = at_least(&p, &format!("probe_dns_lookup_time_seconds{dns}"), 0.0);
    assert!(lookup > 0.0 && lookup < 1.0, "{lookup}");
    assert_eq!(
        value(&p, "meridian_probe_uplink_up{coordinator=\"c1\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&p, "meridian_probe_uplink_stopped{coordinator=\"c1\"}"),
        Some(0.0)
    );
    let sent = at_least(
        &p,
        "meridian_probe_uplink_results_sent_total{coordinator=\"c1\"}",
        2.0,
    );
    let acked = at_least(
        &p,
        "meridian_probe_uplink_results_acked_total{coordinator=\"c1\"}",
        2.0,
    );
    assert!(acked <= sent, "acked {acked} > sent {sent}");
    at_least(&p, "meridian_probe_results_total", 2.0);
    at_least(&p, "meridian_probe_scheduler_runs_total", 2.0);
    at_least(&p, "meridian_probe_spool_bytes", 1.0);
    at_least(&p, "meridian_probe_spool_records", 0.0);
    assert_eq!(
        value(&p, "meridian_probe_spool_dropped_records_total"),
        Some(0.0)
    );

    // The classic format of both, as promtool lints it.
    let c_plain = w.coordinator_metrics(PLAIN_ACCEPT).await;
    let p_plain = w.probe_metrics(PLAIN_ACCEPT).await;
    for reply in [&c_plain, &p_plain] {
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
    }
    for (side, text) in [("coordinator", &c_plain.body), ("probe", &p_plain.body)] {
        if let Some((ok, out)) = promtool(&["check", "metrics"], Some(text)).await {
            assert!(
                ok && out.trim().is_empty(),
                "promtool check metrics on the {side}'s /metrics:\n{out}\n--- the text\n{text}"
            );
            println!(
                "promtool check metrics ({side}, {} lines): clean",
                text.lines().count()
            );
        }
    }

    // deploy/prometheus names only what the endpoints expose.
    let mut exposed = exposed_names(&c_plain.body);
    exposed.extend(exposed_names(&p_plain.body));
    // A family without samples is left out, and the first clock ping is a minute away.
    exposed.insert("meridian_probe_clock_offset_seconds".into());
    let deploy = workspace_root().join("deploy/prometheus");
    for file in ["alerts.yml", "grafana-dashboard.json", "prometheus.yml"] {
        let text = std::fs::read_to_string(deploy.join(file)).expect(file);
        let unknown: Vec<String> = mentioned_names(&text)
            .into_iter()
            .filter(|n| !exposed.contains(n))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics nobody exposes: {unknown:?}"
        );
    }
    w.stop().await;
}

#[tokio::test]
async fn the_deploy_files_pass_promtool() {
    for args in [
        &["check", "config", "prometheus.yml"][..],
        &["check", "rules", "alerts.yml"],
        &["test", "rules", "alerts_test.yml"],
    ] {
        if let Some((ok, out)) = promtool(args, None).await {
            assert!(ok, "promtool {}:\n{out}", args.join(" "));
            println!(
                "promtool {}: {}",
                args.join(" "),
                out.trim().replace('\n', " | ")
            );
        }
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("deploy/prometheus/grafana-dashboard.json"))
            .expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    assert!(dashboard_queries(&dashboard).len() >= 10);
}

/// Every PromQL query of the dashboard's panels.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect()
}

/// A dashboard query with Grafana's variables replaced as a user would leave them.
fn as_promql(query: &str) -> String {
    [
        ("$__rate_interval", "30s"),
        ("$coordinator_job", "meridian-coordinator"),
        ("$probes_job", "meridian-probe"),
        ("$check", ".*"),
        ("$region", ".*"),
        ("$phase", "connect"),
    ]
    .iter()
    .fold(query.to_owned(), |q, (var, with)| q.replace(var, with))
}

/// Prometheus' answer to an instant query: its `data.result`, or the error.
async fn query(prometheus: SocketAddr, promql: &str) -> Result<Vec<serde_json::Value>, String> {
    let q: String = url::form_urlencoded::byte_serialize(promql.as_bytes()).collect();
    let reply = get(prometheus, &format!("/api/v1/query?query={q}"), &[]).await;
    let json: serde_json::Value = serde_json::from_str(&reply.body)
        .map_err(|e| format!("{promql}: {e}: {} {}", reply.status, reply.body))?;
    if json["status"] != "success" {
        return Err(format!("{promql}: {json}"));
    }
    Ok(json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// A free port on 127.0.0.1 (bound, then released).
async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_both_endpoints() {
    if !Path::new(PROMETHEUS).exists() {
        println!(
            "SKIP a_real_prometheus_scrapes_both_endpoints: {PROMETHEUS} is not installed (apt-get install prometheus)"
        );
        return;
    }
    let w = World::start().await;
    w.wait_for_flow().await;
    let began = tokio::time::Instant::now();
    let dir: PathBuf = w.dir.path().join("prometheus");
    std::fs::create_dir_all(&dir).expect("prometheus dir");
    std::fs::write(dir.join("token"), TOKEN).expect("token file");
    let alerts = workspace_root().join("deploy/prometheus/alerts.yml");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - "{alerts}"
scrape_configs:
  - job_name: meridian-coordinator
    authorization:
      type: Bearer
      credentials_file: "{token}"
    static_configs:
      - targets: ["{web}"]
  - job_name: meridian-probe
    static_configs:
      - targets: ["{probe}"]
        labels:
          probe: "{probe_id}"
          region: "{REGION}"
"#,
            alerts = alerts.display(),
            token = dir.join("token").display(),
            web = w.web,
            probe = w.probe,
            probe_id = w.probe_id,
        ),
    )
    .expect("prometheus.yml");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port().await)
        .parse()
        .expect("address");
    let log = dir.join("prometheus.log");
    let mut child = Command::new(PROMETHEUS)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("prometheus log"))
        .kill_on_drop(true)
        .spawn()
        .expect("starting prometheus");
    let plog = || std::fs::read_to_string(&log).unwrap_or_default();

    let deadline = tokio::time::Instant::now() + PROMETHEUS_START;
    loop {
        let ready = tokio::net::TcpStream::connect(addr).await.is_ok()
            && get(addr, "/-/ready", &[]).await.status == 200;
        if ready {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "prometheus exited ({status}) before it was ready:\n{}",
                plog()
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "prometheus not ready within {PROMETHEUS_START:?}:\n{}",
            plog()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready_after = began.elapsed();

    // Both targets up.
    let deadline = tokio::time::Instant::now() + PROMETHEUS_UP;
    loop {
        let up = query(addr, "up").await.expect("query up");
        let jobs: BTreeSet<String> = up
            .iter()
            .filter(|s| s["value"][1] == "1")
            .filter_map(|s| s["metric"]["job"].as_str().map(str::to_owned))
            .collect();
        if jobs.len() == 2 {
            break;
        }
        let targets = get(addr, "/api/v1/targets", &[]).await.body;
        assert!(
            tokio::time::Instant::now() < deadline,
            "targets not up within {PROMETHEUS_UP:?}: {up:?}\n{targets}\n{}",
            plog()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let up_after = began.elapsed();

    // Our series, as Prometheus parsed them (OpenMetrics: it asks for it first).
    let stored = query(addr, "meridian_ingest_results_total{outcome=\"stored\"}")
        .await
        .expect("query");
    assert_eq!(stored.len(), 1, "{stored:?}");
    let success = query(
        addr,
        &format!(
            "probe_success{{job=\"meridian-probe\",probe=\"{}\"}}",
            w.probe_id
        ),
    )
    .await
    .expect("query");
    assert_eq!(success.len(), 2, "both checks: {success:?}");
    // The per-region quantile of the dashboard, once two scrapes make a rate.
    let p50 = "histogram_quantile(0.5, sum by (region, le) (rate(meridian_check_phase_duration_seconds_bucket{phase=\"connect\"}[30s])))";
    let deadline = tokio::time::Instant::now() + PROMETHEUS_UP;
    loop {
        let r = query(addr, p50).await.expect("query");
        let v: Option<f64> = r
            .first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse().ok());
        if let Some(v) = v.filter(|v| v.is_finite()) {
            assert!(v > 0.0 && v <= 0.005, "loopback connect p50 {v} s");
            assert_eq!(r[0]["metric"]["region"], REGION);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no p50 from Prometheus: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The alert rules loaded and evaluate.
    let rules: serde_json::Value =
        serde_json::from_str(&get(addr, "/api/v1/rules", &[]).await.body).expect("rules JSON");
    let group = &rules["data"]["groups"][0];
    assert_eq!(group["name"], "meridian-system", "{rules}");
    let loaded = group["rules"].as_array().expect("rules");
    assert!(loaded.len() >= 6, "{rules}");
    for rule in loaded {
        // "unknown" until its first evaluation; "err" would be a broken rule.
        assert_ne!(rule["health"], "err", "{rule}");
    }
    // Every dashboard query is PromQL Prometheus accepts.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("deploy/prometheus/grafana-dashboard.json"))
            .expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    for q in dashboard_queries(&dashboard) {
        query(addr, &as_promql(&q))
            .await
            .expect("a dashboard query");
    }

    child.kill().await.expect("stopping prometheus");
    println!(
        "prometheus: ready after {:.1} s, both targets up after {:.1} s, whole test {:.1} s",
        ready_after.as_secs_f64(),
        up_after.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    w.stop().await;
}
