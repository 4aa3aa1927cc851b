use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::http::{HeaderMap, HeaderValue, header};
use meridian_shared::check::CheckId;
use meridian_shared::config::SourceFile;
use meridian_shared::result::{CheckError, CheckResult, ErrorClass, Phases};
use meridian_shared::wire::{BurstTag, SequencedResult};

use super::*;
use crate::alerting::SinkStats;
use crate::config::CoordinatorConfig;

fn result(check: &str, phases: Phases, error: Option<ErrorClass>) -> SequencedResult {
    SequencedResult {
        seq: 1,
        result: CheckResult {
            probe_id: "p1".into(),
            region: "eu-central".into(),
            check_id: CheckId::parse(check).unwrap(),
            scheduled_ms: 0,
            started_ms: 0,
            phases,
            remote_ip: None,
            http: None,
            dns: None,
            error: error.map(|class| CheckError {
                class,
                message: "failed".into(),
            }),
            warnings: vec![],
        },
        burst: None,
    }
}

/// An HTTP run over plain HTTP: TLS did not apply.
fn plain_http(total_us: u64) -> Phases {
    Phases {
        dns: Some(2_000),
        connect: Some(40_000),
        tls: Some(0),
        ttfb: Some(120_000),
        transfer: Some(500),
        total: total_us,
    }
}

fn config() -> CoordinatorConfig {
    let src = SourceFile::new(
        "c.toml",
        "data_dir = \"d\"\n[listen]\nquic = \"127.0.0.1:4433\"\n\
         [[target]]\nid = \"shop\"\n[[target.http]]\nid = \"home\"\nurl = \"http://shop.example.test/\"\n",
    );
    CoordinatorConfig::from_source(&src, Path::new("/etc/meridian")).unwrap()
}

fn lines_with<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

#[test]
fn openmetrics_unless_plain_text_alone_is_asked_for() {
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                      version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    assert_eq!(Format::negotiate(Some("*/*")), Format::OpenMetrics);
    assert_eq!(Format::negotiate(None), Format::OpenMetrics);
    assert_eq!(
        Format::negotiate(Some("text/plain;version=0.0.4")),
        Format::Text
    );
    assert_eq!(Format::OpenMetrics.content_type(), OPENMETRICS);
    assert!(
        Format::Text
            .content_type()
            .starts_with("text/plain; version=0.0.4")
    );
}

#[test]
fn histograms_follow_the_rollups_rules_and_failures_count_by_class() {
    let checks = Arc::new(CheckMetrics::default());
    checks.set_targets(&config());
    let mut burst = result("home", plain_http(9_000_000), None);
    burst.burst = Some(BurstTag { burst_id: 7 });
    checks.observe(
        "eu-central",
        &[
            result("home", plain_http(170_000), None),
            result("home", plain_http(180_000), Some(ErrorClass::HttpStatus)),
            burst,
        ],
    );
    let registry = registry(&Counters::default(), &[], &[], &checks, None);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();

    let count = |phase: &str| {
        let prefix = format!(
            "meridian_check_phase_duration_seconds_count{{target=\"shop\",check=\"home\",region=\"eu-central\",phase=\"{phase}\"}}"
        );
        lines_with(&text, &prefix)
            .first()
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    assert_eq!(
        count("ttfb").as_deref(),
        Some("2"),
        "the burst run is left out\n{text}"
    );
    assert_eq!(
        count("total").as_deref(),
        Some("2"),
        "a failed run's total counts"
    );
    assert_eq!(count("tls"), None, "TLS did not apply: no series");
    // 170 ms and 180 ms both fall in the (0.15, 0.2] bucket; the 9 s burst run in none.
    let bucket = |le: &str, n: u32| {
        format!(
            "{{le=\"{le}\",target=\"shop\",check=\"home\",region=\"eu-central\",phase=\"total\"}} {n}\n"
        )
    };
    assert!(text.contains(&bucket("0.15", 0)), "{text}");
    assert!(text.contains(&bucket("0.2", 2)), "{text}");
    assert!(text.contains(&bucket("+Inf", 2)), "{text}");
    assert!(text.contains(
        "meridian_check_failures_total{target=\"shop\",check=\"home\",region=\"eu-central\",class=\"http-status\"} 1\n"
    ));
    assert!(text.contains("# UNIT meridian_check_phase_duration_seconds seconds\n"));
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn a_check_no_configuration_names_has_an_empty_target() {
    let checks = Arc::new(CheckMetrics::default());
    checks.observe("eu-central", &[result("orphan", plain_http(1_000), None)]);
    let registry = registry(&Counters::default(), &[], &[], &checks, None);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains("{target=\"\",check=\"orphan\""), "{text}");
}

#[test]
fn counters_probes_and_incidents_are_exposed() {
    let counters = Counters::default();
    counters.results_stored.store(40, Ordering::Relaxed);
    counters.results_rejected.store(2, Ordering::Relaxed);
    counters.results_unassigned.store(1, Ordering::Relaxed);
    counters.oversized_frames.store(3, Ordering::Relaxed);
    let probes = [
        ProbeState {
            probe_id: "p1".into(),
            region: "eu-central".into(),
            live: true,
            last_seen_ms: Some(1_700_000_000_500),
            silent: false,
            clock_offset_ms: Some(-250),
        },
        ProbeState {
            probe_id: "p2".into(),
            region: "me-south".into(),
            live: false,
            last_seen_ms: None,
            silent: true,
            clock_offset_ms: None,
        },
    ];
    let open = [OpenIncident {
        id: 4,
        class: "regional-network".into(),
        state: "paged".into(),
        severity: "page".into(),
        regions: vec!["me-south".into()],
        operational: false,
        held: false,
    }];
    let registry = registry(
        &counters,
        &probes,
        &open,
        &Arc::new(CheckMetrics::default()),
        None,
    );
    let mut om = String::new();
    prometheus_client::encoding::text::encode(&mut om, &registry).unwrap();
    for expected in [
        "meridian_ingest_results_total{outcome=\"stored\"} 40\n",
        "meridian_ingest_results_total{outcome=\"rejected\"} 2\n",
        "meridian_ingest_results_unassigned_total 1\n",
        "meridian_link_frames_dropped_total{reason=\"oversized\"} 3\n",
        "meridian_probe_up{probe=\"p1\",region=\"eu-central\"} 1\n",
        "meridian_probe_up{probe=\"p2\",region=\"me-south\"} 0\n",
        "meridian_probe_connected{probe=\"p1\",region=\"eu-central\"} 1\n",
        "meridian_probe_clock_offset_seconds{probe=\"p1\",region=\"eu-central\"} -0.25\n",
        "meridian_probe_last_seen_timestamp_seconds{probe=\"p1\",region=\"eu-central\"} 1700000000.5\n",
        "meridian_incidents_open{class=\"regional-network\",severity=\"page\"} 1\n",
        "meridian_incidents_open{class=\"origin-down\",severity=\"page\"} 0\n",
        "meridian_build_info{version=\"",
    ] {
        assert!(om.contains(expected), "{expected:?} missing from\n{om}");
    }
    assert!(!om.contains("p2\",region=\"me-south\"} NaN"));
    assert_eq!(
        lines_with(&om, "meridian_incidents_open{").len(),
        Class::ALL.len() * 3
    );

    // The classic format carries the same samples, counters' descriptors named with `_total`.
    let mut plain = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut plain, &registry).unwrap();
    assert!(plain.contains("# TYPE meridian_ingest_results_total counter\n"));
    let samples = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(samples(&om), samples(&plain));
}

/// Both encodings of `registry`.
fn both_formats(registry: &Registry) -> (String, String) {
    let (mut om, mut plain) = (String::new(), String::new());
    prometheus_client::encoding::text::encode(&mut om, registry).unwrap();
    prometheus_client::encoding::prometheus_text::encode(&mut plain, registry).unwrap();
    (om, plain)
}

#[test]
fn alert_sinks_are_counted_by_name_from_start_and_queue_drops_as_the_empty_sink() {
    let hook = Arc::new(SinkStats::default());
    hook.sent.store(5, Ordering::Relaxed);
    hook.failed.store(2, Ordering::Relaxed);
    hook.dropped.store(1, Ordering::Relaxed);
    hook.retries.store(7, Ordering::Relaxed);
    let alerts = AlertStats {
        queue_dropped: Arc::new(std::sync::atomic::AtomicU64::new(3)),
        sinks: vec![
            ("hook".into(), hook.clone()),
            // Configured, never used: present at 0.
            ("ops-slack".into(), Arc::new(SinkStats::default())),
        ],
    };
    let checks = Arc::new(CheckMetrics::default());
    let (om, plain) = both_formats(&registry(
        &Counters::default(),
        &[],
        &[],
        &checks,
        Some(&alerts),
    ));
    for expected in [
        "meridian_alerts_sent_total{sink=\"hook\"} 5\n",
        "meridian_alerts_failed_total{sink=\"hook\"} 2\n",
        "meridian_alerts_dropped_total{sink=\"hook\"} 1\n",
        "meridian_alerts_retries_total{sink=\"hook\"} 7\n",
        "meridian_alerts_sent_total{sink=\"ops-slack\"} 0\n",
        "meridian_alerts_failed_total{sink=\"ops-slack\"} 0\n",
        "meridian_alerts_dropped_total{sink=\"ops-slack\"} 0\n",
        "meridian_alerts_retries_total{sink=\"ops-slack\"} 0\n",
        "meridian_alerts_dropped_total{sink=\"\"} 3\n",
        "# TYPE meridian_alerts_sent counter\n",
    ] {
        assert!(om.contains(expected), "{expected:?} missing from\n{om}");
    }
    // The queue is a sink of the dropped family only; 4 series per sink, plus it.
    assert_eq!(lines_with(&om, "meridian_alerts_").len(), 4 * 2 + 1, "{om}");
    assert!(plain.contains("# TYPE meridian_alerts_failed_total counter\n"));

    // Counters are read at scrape time: the next scrape sees the next delivery.
    hook.sent.fetch_add(1, Ordering::Relaxed);
    let (om, _) = both_formats(&registry(
        &Counters::default(),
        &[],
        &[],
        &checks,
        Some(&alerts),
    ));
    assert!(
        om.contains("meridian_alerts_sent_total{sink=\"hook\"} 6\n"),
        "{om}"
    );
}

#[test]
fn without_alerting_the_alert_families_are_described_with_no_series() {
    let (om, plain) = both_formats(&registry(
        &Counters::default(),
        &[],
        &[],
        &Arc::new(CheckMetrics::default()),
        None,
    ));
    assert!(lines_with(&om, "meridian_alerts_").is_empty(), "{om}");
    for family in ["sent", "failed", "dropped", "retries"] {
        assert!(
            plain.contains(&format!("# TYPE meridian_alerts_{family}_total counter\n")),
            "{family}: {plain}"
        );
    }
}

#[test]
fn the_token_must_match_exactly() {
    let mut headers = HeaderMap::new();
    assert!(!bearer_matches(&headers, "0123456789abcdef"));
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer 0123456789abcdef"),
    );
    assert!(bearer_matches(&headers, "0123456789abcdef"));
    assert!(!bearer_matches(&headers, "0123456789abcdeF"));
    assert!(!bearer_matches(&headers, "0123456789abcdef0"));
}
