//! Post-mortems and trends from the real binary over a seeded data directory: an incident
//! with its member message, and a day's rollups for the affected region and four healthy
//! ones, written with the coordinator's own store (the same code `coordinator run` uses).

use std::path::Path;

use meridian_coordinator::drafts::{Draft, Stage};
use meridian_coordinator::store::Store;
use meridian_coordinator::store::incidents::{
    EvidenceRecord, IncidentRecord, StoredState, TimelineRecord,
};
use meridian_shared::check::CheckId;
use meridian_shared::result::{CheckResult, Phases};
use meridian_tests::coordinator::coordinator;

/// 2026-01-15 12:00:00 UTC.
const ONSET: i64 = 1_768_478_400_000;
const MIN: i64 = 60_000;

fn result(started_ms: i64, connect_us: u64) -> CheckResult {
    CheckResult {
        probe_id: "ignored".into(),
        region: "ignored".into(),
        check_id: CheckId::parse("home").expect("a valid check id"),
        scheduled_ms: started_ms,
        started_ms,
        phases: Phases {
            dns: Some(1_000),
            connect: Some(connect_us),
            tls: Some(2 * connect_us),
            ttfb: Some(50_000),
            transfer: Some(300),
            total: 3 * connect_us + 51_300,
        },
        remote_ip: None,
        http: None,
        dns: None,
        error: None,
        warnings: vec![],
    }
}

fn incident() -> IncidentRecord {
    let detected = ONSET + 95_000;
    IncidentRecord {
        id: 1,
        class: "regional-network".into(),
        state: StoredState::Resolved,
        severity: "page".into(),
        regions: vec!["me-south".into()],
        targets: vec!["home".into()],
        asns: vec![],
        probe: None,
        edge: None,
        onset_ms: ONSET,
        detected_ms: detected,
        ttd_ms: 95_000,
        paged_ms: Some(detected + 2_000),
        resolved_ms: Some(ONSET + 20 * MIN),
        explanation: "Round trips from me-south grew by 180 ms while other regions stayed flat."
            .into(),
        evidence: vec![EvidenceRecord {
            region: "me-south".into(),
            probes: 5,
            affected: 4,
            connect_base_ms: Some(40.0),
            connect_delta_ms: Some(180.0),
            tls_base_ms: Some(80.0),
            tls_delta_ms: Some(360.0),
            server_base_ms: Some(50.0),
            server_delta_ms: Some(0.5),
            failures: 0,
            failure_class: None,
        }],
        timeline: vec![
            TimelineRecord {
                at_ms: detected,
                what: "confirmed: 4 of 5 probes in me-south".into(),
            },
            TimelineRecord {
                at_ms: detected + 2_000,
                what: "paged the SRE on call".into(),
            },
            TimelineRecord {
                at_ms: ONSET + 20 * MIN,
                what: "resolved: round trips back to baseline".into(),
            },
        ],
        updated_ms: ONSET + 20 * MIN,
        maintenance: Default::default(),
    }
}

/// The data directory: rollups from 40 min before onset to 60 min after, me-south slow
/// during the incident; a published message; a February operational incident.
fn seed(dir: &Path) {
    let mut store = Store::open(dir).expect("seeding the store");
    let regions = ["me-south", "eu-west", "us-east", "ap-south", "af-south"];
    for (r, region) in regions.iter().enumerate() {
        let mut batch = Vec::new();
        let mut seq = 0;
        for minute in -40..60 {
            // Fewer samples for the later regions: the healthiest-with-most-data picks the first three.
            for s in 0..(6 - r as i64) {
                let at = ONSET + minute * MIN + s * 5_000;
                let slow = *region == "me-south" && (0..20).contains(&minute);
                let connect = if slow {
                    220_000
                } else {
                    40_000 + 1_000 * r as u64
                };
                seq += 1;
                batch.push((seq, result(at, connect)));
            }
        }
        store
            .ingest(&format!("{region}-1"), region, &batch, ONSET)
            .expect("seeding the store");
    }
    store
        .upsert_incident(&incident())
        .expect("seeding the store");
    let draft = Draft {
        incident: 1,
        class: "regional-network".into(),
        stage: Stage::Investigating,
        title: "Slow pages in the Gulf".into(),
        body: "Members in the Gulf may see slow pages. We are looking into it.".into(),
    };
    let (id, _) = store
        .offer_draft(&draft, &["me-south".into()], ONSET + 100_000)
        .expect("seeding the store");
    store
        .approve_message(id, "dana", ONSET + 4 * MIN)
        .expect("seeding the store");
    store
        .publish_message(id, "dana", ONSET + 5 * MIN)
        .expect("seeding the store");
    let mut ops = incident();
    ops.id = 2;
    ops.class = "probe-fault".into();
    ops.severity = "info".into();
    ops.onset_ms = ONSET + 20 * 86_400_000;
    ops.detected_ms = ops.onset_ms + 30_000;
    ops.ttd_ms = 30_000;
    ops.paged_ms = None;
    ops.resolved_ms = None;
    ops.state = StoredState::Interrupted;
    store.upsert_incident(&ops).expect("seeding the store");
}

fn lines_in_order(text: &str, wanted: &[&str]) {
    let mut from = 0;
    for w in wanted {
        let at = text[from..]
            .find(w)
            .unwrap_or_else(|| panic!("{w:?} missing or out of order in\n{text}"));
        from += at + w.len();
    }
}

#[tokio::test]
async fn an_incident_exports_as_a_post_mortem_with_its_chart_and_trends_summarise_the_months() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    {
        let data = data.clone();
        tokio::task::spawn_blocking(move || seed(&data))
            .await
            .expect("seeded");
    }
    let d = data.to_str().expect("UTF-8 path");
    let md_path = tmp.path().join("pm-1.md");
    let svg_path = tmp.path().join("pm-1.svg");

    // An SRE's note for the timeline; refused for a missing incident and for empty words.
    let note = |id: &'static str, text: &'static str| {
        let args = [
            "incident",
            "note",
            id,
            "--data-dir",
            d,
            "--by",
            "dana",
            "--at",
            "2026-01-15T12:10:00Z",
            "--text",
            text,
        ];
        async move { coordinator(&args).await }
    };
    let out = note("1", "Rolled back deploy 881")
        .await
        .expect("coordinator runs");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("added to incident 1"), "{out:?}");
    let out = note("99", "Nothing").await.expect("coordinator runs");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("no incident 99"), "{out:?}");
    let out = note("1", "  ").await.expect("coordinator runs");
    assert_eq!(out.code, Some(2), "{out:?}");

    // Markdown, the chart beside it.
    let out = coordinator(&[
        "incident",
        "export",
        "1",
        "--data-dir",
        d,
        "--format",
        "md",
        "--output",
        md_path.to_str().expect("UTF-8 path"),
        "--chart",
        svg_path.to_str().expect("UTF-8 path"),
    ])
    .await
    .expect("coordinator runs");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let md = std::fs::read_to_string(&md_path).expect("the Markdown file");
    assert!(
        md.starts_with("# Post-mortem: incident 1 (regional-network)"),
        "{md}"
    );
    assert!(md.contains("- **Time to detect:** 1 min 35 s"), "{md}");
    assert!(md.contains("- **Time to communicate:** 5 min 0 s"), "{md}");
    assert!(md.contains("- **Time to resolve:** 20 min 0 s"), "{md}");
    assert!(
        md.contains("(`me-south`)"),
        "the member-facing name with the id: {md}"
    );
    assert!(
        md.contains("(pm-1.svg)"),
        "a relative link to the chart: {md}"
    );
    assert!(
        md.contains("180 ms while other regions stayed flat"),
        "{md}"
    );
    assert!(
        md.contains("| 40.0 ms → +180.0 ms |"),
        "the evidence table: {md}"
    );
    lines_in_order(
        &md,
        &[
            "2026-01-15 12:00:00 | milestone | **onset",
            "2026-01-15 12:01:35 | milestone | **detected",
            "confirmed: 4 of 5 probes",
            "**SRE paged**",
            "investigating message drafted",
            "investigating message approved by dana",
            "2026-01-15 12:05:00 | milestone | **first member message published**",
            "published to members by dana",
            "2026-01-15 12:10:00 | note | note by dana: Rolled back deploy 881",
            "2026-01-15 12:20:00 | milestone | **resolved**",
        ],
    );
    let svg = std::fs::read_to_string(&svg_path).expect("the chart file");
    assert!(svg.contains("<svg ") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("data-region=\"me-south\""), "{svg}");
    let healthy = ["eu-west", "us-east", "ap-south"];
    for r in healthy {
        assert!(svg.contains(&format!("data-region=\"{r}\"")), "{r}: {svg}");
    }
    assert!(
        !svg.contains("data-region=\"af-south\""),
        "at most three healthy regions"
    );
    assert_eq!(
        svg.matches("class=\"mark\"").count(),
        3,
        "onset, detected, resolved"
    );

    // JSON on standard output: the same, with the series data.
    let out = coordinator(&[
        "incident",
        "export",
        "1",
        "--data-dir",
        d,
        "--format",
        "json",
    ])
    .await
    .expect("coordinator runs");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    assert_eq!(v["ttd_ms"], 95_000);
    assert_eq!(v["ttc_ms"], 300_000);
    assert_eq!(v["ttr_ms"], 1_200_000);
    assert_eq!(v["regions"][0]["id"], "me-south");
    let times: Vec<i64> = v["timeline"]
        .as_array()
        .expect("an array")
        .iter()
        .map(|l| l["at_ms"].as_i64().expect("at_ms"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(v["chart"]["from_ms"], ONSET - 30 * MIN);
    assert_eq!(v["chart"]["to_ms"], ONSET + 50 * MIN);
    let series = v["chart"]["series"].as_array().expect("an array");
    assert_eq!(series.len(), 4, "one affected, three healthy");
    assert_eq!(series[0]["region"], "me-south");
    assert_eq!(series[0]["affected"], true);
    let points = series[0]["points"].as_array().expect("an array");
    assert_eq!(points.len(), 80, "one per minute over 80 minutes");
    let p50 = |minute: i64| {
        points
            .iter()
            .find(|p| p[0] == ONSET + minute * MIN)
            .and_then(|p| p[1].as_f64())
            .expect("a point at that minute")
    };
    assert!((p50(-5) - 40.0).abs() < 1.0, "{}", p50(-5));
    assert!((p50(10) - 220.0).abs() < 3.0, "{}", p50(10));

    // No such incident; a usage error.
    let out = coordinator(&["incident", "export", "7", "--data-dir", d])
        .await
        .expect("coordinator runs");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("no incident 7"), "{}", out.stderr);
    let out = coordinator(&[
        "incident",
        "export",
        "1",
        "--data-dir",
        d,
        "--format",
        "pdf",
    ])
    .await
    .expect("coordinator runs");
    assert_eq!(out.code, Some(2), "{}", out.stderr);

    // Trends.
    let out = coordinator(&["trends", "--data-dir", d, "--json"])
        .await
        .expect("coordinator runs");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let t: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    assert_eq!(t["months"][0]["month"], "2026-01");
    assert_eq!(t["months"][0]["site"]["incidents"], 1);
    assert_eq!(t["months"][0]["site"]["ttd"]["median_ms"], 95_000.0);
    assert_eq!(t["months"][0]["site"]["ttr"]["p90_ms"], 1_200_000.0);
    assert_eq!(t["months"][0]["site"]["ttc"]["median_ms"], 300_000.0);
    assert_eq!(t["months"][0]["classes"][0]["class"], "regional-network");
    assert_eq!(t["months"][1]["month"], "2026-02");
    assert_eq!(t["months"][1]["operational"]["incidents"], 1);
    assert_eq!(t["months"][1]["operational"]["ttr"]["count"], 0);
    let out = coordinator(&["trends", "--data-dir", d, "--since", "2026-02"])
        .await
        .expect("coordinator runs");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("2026-02  probe-fault"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("2026-01"), "{}", out.stdout);
}

/// `GET path` with `Connection: close` and optional headers: (status, body).
async fn get(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut raw),
    )
    .await
    .expect("an answer within 10 s")
    .expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

#[tokio::test]
async fn the_api_serves_trends_and_post_mortems_to_staff_only() {
    use meridian_tests::coordinator::{Coordinator, config_text, wait_web_addr};
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let d = data.to_str().expect("UTF-8 path").to_string();
    // Recent, so no retention prunes it when the coordinator starts.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    {
        let data = data.clone();
        tokio::task::spawn_blocking(move || {
            let store = Store::open(&data).expect("seeding the store");
            let mut i = incident();
            i.onset_ms = now - 2 * 3_600_000;
            i.detected_ms = i.onset_ms + 95_000;
            i.paged_ms = Some(i.detected_ms);
            i.resolved_ms = Some(i.onset_ms + 20 * MIN);
            i.updated_ms = now;
            for t in &mut i.timeline {
                t.at_ms += i.onset_ms - ONSET;
            }
            store.upsert_incident(&i).expect("seeding the store");
        })
        .await
        .expect("seeded");
    }
    let out = coordinator(&["user", "add", "vera", "--role", "viewer", "--data-dir", &d])
        .await
        .expect("coordinator runs");
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = coordinator(&["user", "token", "vera", "--data-dir", &d])
        .await
        .expect("coordinator runs");
    assert_eq!(out.code, Some(0), "{out:?}");
    let token = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("token:"))
        .map(str::trim)
        .expect("a token line")
        .to_string();
    let cli = coordinator(&["trends", "--data-dir", &d, "--json"])
        .await
        .expect("coordinator runs");
    assert_eq!(cli.code, Some(0), "{cli:?}");
    let cli: serde_json::Value = serde_json::from_str(&cli.stdout).expect("one JSON object");

    let config = tmp.path().join("coordinator.toml");
    let quic: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    std::fs::write(
        &config,
        config_text(&data, quic, "eu-west", "web", "http://127.0.0.1:9/"),
    )
    .expect("write config");
    let log = tmp.path().join("coordinator.log");
    let running = Coordinator::start(&config, &log)
        .await
        .expect("coordinator run");
    let web = wait_web_addr(&log).await.expect("web address");
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];

    let (status, _) = get(web, "/api/v1/trends", &[]).await;
    assert_eq!(status, 401, "staff only");
    let (status, body) = get(web, "/api/v1/trends", &auth).await;
    assert_eq!(status, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).expect("one JSON object");
    assert_eq!(api, cli, "the API and the CLI agree");
    let months = api["months"].as_array().expect("months");
    let last = months.last().expect("a month");
    assert_eq!(last["site"]["incidents"], 1, "{api}");
    assert_eq!(last["site"]["ttd"]["median_ms"], 95_000.0, "{api}");
    let (status, body) = get(web, "/api/v1/trends?since=2999-01", &auth).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"months\":[]"), "{body}");
    let (status, body) = get(web, "/api/v1/trends?since=January", &auth).await;
    assert_eq!(status, 400, "{body}");
    // The post-mortem as JSON, region names from the running catalog.
    let (status, _) = get(web, "/api/v1/incidents/1/export", &[]).await;
    assert_eq!(status, 401, "staff only");
    let (status, body) = get(web, "/api/v1/incidents/1/export", &auth).await;
    assert_eq!(status, 200, "{body}");
    let pm: serde_json::Value = serde_json::from_str(&body).expect("one JSON object");
    assert_eq!(pm["ttd_ms"], 95_000, "{pm}");
    assert_eq!(pm["ttr_ms"], 1_200_000, "{pm}");
    assert_eq!(pm["regions"][0]["id"], "me-south", "{pm}");
    assert_ne!(
        pm["regions"][0]["name"], "me-south",
        "a member-facing name: {pm}"
    );
    assert_eq!(pm["timeline"][0]["what"], "onset (estimated start)", "{pm}");
    let (status, _) = get(web, "/api/v1/incidents/99/export", &auth).await;
    assert_eq!(status, 404);
    running.kill().await.expect("stopped");
}
