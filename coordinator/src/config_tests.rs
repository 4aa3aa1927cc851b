//! Tests of `coordinator.toml` parsing: the example, defaults, and every invalid fixture paired
//! with its exact message.

use super::*;
use crate::geoip::Network;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_example_is_valid_and_assigns_checks_by_region() {
    let c = CoordinatorConfig::load(&manifest_dir().join("coordinator.example.toml")).unwrap();
    assert_eq!(c.quic.port(), 4433);
    assert_eq!(c.raw_retention, Duration::from_secs(14 * DAY));
    assert_eq!(c.targets.len(), 2);
    let gulf = RegionId::parse("me-south").unwrap();
    let europe = RegionId::parse("eu-central").unwrap();
    let ids = |r: &RegionId| {
        c.checks_for(r)
            .iter()
            .map(|k| k.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&gulf), ["shop-home", "shop-dns", "api-health"]);
    assert_eq!(ids(&europe), ["shop-home", "shop-dns"]);
}

#[test]
fn defaults_fill_what_is_left_out() {
    let src = SourceFile::new(
        "c.toml",
        "data_dir = \"d\"\n[listen]\nquic = \"127.0.0.1:4433\"\n",
    );
    let c = CoordinatorConfig::from_source(&src, Path::new("/etc/meridian")).unwrap();
    assert_eq!(c.data_dir, Path::new("/etc/meridian/d"));
    assert_eq!(c.http, SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert_eq!(c.rollup_retention, Duration::from_secs(400 * DAY));
    assert_eq!(c.cert_validity, Duration::from_secs(90 * DAY));
    assert_eq!(c.server_names, ["localhost"]);
    assert!(c.targets.is_empty());
    assert_eq!(c.geoip, None);
    assert!(c.pinned_networks.is_empty());
    assert_eq!(c.web, crate::config::WebSettings::default());
}

#[test]
fn the_web_table_is_read() {
    let src = SourceFile::new(
        "c.toml",
        "data_dir = \"d\"\n[listen]\nquic = \"127.0.0.1:4433\"\n[web]\nsession_ttl = \"8h\"\n\
         public_url = \"https://status.example.com/\"\ntitle = \"Example status\"\n",
    );
    let c = CoordinatorConfig::from_source(&src, Path::new("/etc/meridian")).unwrap();
    assert_eq!(c.web.session_ttl, Duration::from_secs(8 * 3600));
    assert_eq!(c.web.api_token_ttl, Duration::from_secs(90 * DAY));
    assert_eq!(
        c.web.public_url.as_deref(),
        Some("https://status.example.com")
    );
    assert_eq!(c.web.title, "Example status");
    assert_eq!(c.web.metrics_token, None);
}

#[test]
fn the_metrics_token_is_read() {
    let src = SourceFile::new(
        "c.toml",
        "data_dir = \"d\"\n[listen]\nquic = \"127.0.0.1:4433\"\n[web]\n\
         metrics_token = \"0123456789abcdef-scrape\"\n",
    );
    let c = CoordinatorConfig::from_source(&src, Path::new("/etc/meridian")).unwrap();
    assert_eq!(
        c.web.metrics_token.as_deref(),
        Some("0123456789abcdef-scrape")
    );
}

#[test]
fn the_examples_geoip_and_pins_are_valid_once_uncommented() {
    // They ship commented out: the databases are not on every machine, and a pin names one
    // probe. Uncommented, they must still parse.
    let text = std::fs::read_to_string(manifest_dir().join("coordinator.example.toml")).unwrap();
    let keys = [
        "[geoip]",
        "[probes.",
        "location =",
        "asn =",
        "as_org =",
        "country =",
    ];
    let text: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if keys.iter().any(|k| rest.starts_with(k)) => format!("{rest}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    let src = SourceFile::new("coordinator.example.toml", text);
    let c = CoordinatorConfig::from_source(&src, Path::new("/etc/meridian")).unwrap();
    assert_eq!(
        c.geoip,
        Some(GeoIpFiles {
            location: "/var/lib/GeoIP/GeoLite2-City.mmdb".into(),
            asn: Some("/var/lib/GeoIP/GeoLite2-ASN.mmdb".into()),
        })
    );
    assert_eq!(
        c.network_override("me-south-1a"),
        Some(Network {
            asn: Some(64500),
            as_org: Some("Example Gulf Telecom".into()),
            country: Some("BH".into()),
            location: None,
        })
    );
    assert_eq!(c.network_override("me-south-1b"), None);
}

#[test]
fn geoip_paths_are_relative_to_the_file_and_pins_may_be_partial() {
    let src = SourceFile::new(
        "c.toml",
        "data_dir = \"d\"\n[listen]\nquic = \"127.0.0.1:4433\"\n\
         [geoip]\nlocation = \"geo/City.mmdb\"\n\
         [probes.eu-1]\nasn = 4200000001\n\
         [probes.\"eu-2\"]\ncountry = \"DE\"\n",
    );
    let c = CoordinatorConfig::from_source(&src, Path::new("/etc/meridian")).unwrap();
    let files = c.geoip.clone().unwrap();
    assert_eq!(files.location, Path::new("/etc/meridian/geo/City.mmdb"));
    assert_eq!(files.asn, None);
    assert_eq!(
        c.network_override("eu-1"),
        Some(Network {
            asn: Some(4_200_000_001),
            ..Network::default()
        })
    );
    assert_eq!(
        c.network_override("eu-2"),
        Some(Network {
            country: Some("DE".into()),
            ..Network::default()
        })
    );
    // Opening is not parsing: the file does not exist, and that is `open`'s error.
    let err = files.open().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read the GeoIP database /etc/meridian/geo/City.mmdb: "),
        "{err}"
    );
}

#[test]
fn every_invalid_file_produces_exactly_its_expected_message() {
    let dir = manifest_dir().join("testdata");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.starts_with("invalid-") && name.ends_with(".toml")) {
            continue;
        }
        let src = SourceFile::new(
            format!("testdata/{name}"),
            std::fs::read_to_string(&path).unwrap(),
        );
        let err = match CoordinatorConfig::from_source(&src, manifest_dir()) {
            Err(e) => e,
            // A valid file naming a bad templates file: `coordinator validate` reports the
            // wording, with the templates file's own path (tests/cli.rs checks that message).
            Ok(c) if c.drafts.templates.is_some() => continue,
            Ok(_) => panic!("{name} is valid"),
        };
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        assert_eq!(err.to_string(), expected.trim_end(), "{name}");
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} fixtures");
}

#[test]
fn the_examples_alerting_is_valid_once_uncommented() {
    // Shipped commented out (it names receivers that do not exist); uncommented, it parses.
    let text = std::fs::read_to_string(manifest_dir().join("coordinator.example.toml")).unwrap();
    let mut inside = false;
    let text: String = text
        .lines()
        .map(|l| {
            inside = (inside || l == "# [alerting]") && l.starts_with('#');
            match l.strip_prefix("# ").or(l.strip_prefix('#')) {
                Some(rest) if inside => format!("{rest}\n"),
                _ => format!("{l}\n"),
            }
        })
        .collect();
    let src = SourceFile::new("coordinator.example.toml", text);
    let c = CoordinatorConfig::from_source(&src, Path::new("/etc/meridian")).unwrap();
    let a = &c.alerting;
    let kinds: Vec<_> = a.sinks.iter().map(|s| (s.name.as_str(), s.route)).collect();
    use crate::alerting::Route;
    assert_eq!(
        kinds,
        [
            ("alertmanager", Route::Site),
            ("ops-webhook", Route::Operational),
            ("slack", Route::Operational),
            ("pagerduty", Route::Site),
        ]
    );
    assert!(a.sinks[3].tickets && !a.sinks[0].tickets);
    assert_eq!(a.retry.max_total, Duration::from_secs(120));
    assert_eq!(
        a.runbook_url.as_deref(),
        Some("https://runbooks.example.com/meridian/{class}")
    );
}

#[test]
fn alerting_defaults_and_secret_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hmac.key"), "s3cret-key\n").unwrap();
    std::fs::write(
        dir.path().join("slack.url"),
        "https://hooks.slack.com/services/T/B/X\n",
    )
    .unwrap();
    let src = SourceFile::new(
        "c.toml",
        "data_dir = \"d\"\n[listen]\nquic = \"127.0.0.1:4433\"\n\
         [[alerting.sink]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/h\"\nsecret_file = \"hmac.key\"\n\
         [[alerting.sink]]\nkind = \"slack\"\nroute = \"operational\"\nurl_file = \"slack.url\"\n\
         [[alerting.sink]]\nkind = \"pagerduty\"\nrouting_key = \"abc\"\n",
    );
    let c = CoordinatorConfig::from_source(&src, dir.path()).unwrap();
    use crate::alerting::{Secret, SinkKind};
    let a = &c.alerting;
    assert_eq!(a.queue, 256);
    assert_eq!(a.retry.max_attempts, 5);
    assert_eq!(
        a.sinks[0].kind,
        SinkKind::Webhook {
            url: "http://127.0.0.1:9/h".parse().unwrap(),
            secret: Secret("s3cret-key".into()),
        }
    );
    assert_eq!(
        a.sinks[1].kind,
        SinkKind::Slack {
            url: Secret("https://hooks.slack.com/services/T/B/X".into())
        }
    );
    match &a.sinks[2].kind {
        SinkKind::PagerDuty { url, routing_key } => {
            assert_eq!(url.as_str(), crate::alerting::settings::PAGERDUTY_URL);
            assert_eq!(routing_key.0, "abc");
        }
        other => panic!("{other:?}"),
    }
    // Secrets never reach a log line through `Debug`.
    let debug = format!("{a:?}");
    assert!(
        !debug.contains("s3cret")
            && !debug.contains("hooks.slack.com")
            && !debug.contains("\"abc\""),
        "{debug}"
    );
    // Without [alerting], no sinks.
    let src = SourceFile::new(
        "c.toml",
        "data_dir = \"d\"\n[listen]\nquic = \"127.0.0.1:4433\"\n",
    );
    let c = CoordinatorConfig::from_source(&src, dir.path()).unwrap();
    assert_eq!(c.alerting, crate::alerting::AlertingSettings::default());
}

#[test]
fn the_examples_maintenance_windows_are_valid_once_uncommented() {
    // Shipped commented out (a real window would hold real pages back); uncommented, they
    // parse, recurring in Berlin time and one-off in New York time.
    let text = std::fs::read_to_string(manifest_dir().join("coordinator.example.toml")).unwrap();
    let mut inside = false;
    let text: String = text
        .lines()
        .map(|l| {
            inside = (inside || l == "# [[maintenance]]") && l.starts_with('#');
            match l.strip_prefix("# ").or(l.strip_prefix('#')) {
                Some(rest) if inside => format!("{rest}\n"),
                _ => format!("{l}\n"),
            }
        })
        .collect();
    let src = SourceFile::new("coordinator.example.toml", text);
    let c = CoordinatorConfig::from_source(&src, Path::new("/etc/meridian")).unwrap();
    let ids: Vec<&str> = c.maintenance.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["sunday-backup", "dc-move"]);
    assert!(!c.maintenance[0].public);
    assert_eq!(
        c.maintenance[0].describe(),
        "every Sun at 02:00 for 1h 30m (Europe/Berlin)"
    );
    assert_eq!(
        c.maintenance[1].describe(),
        "2026-12-05 22:00 – 2026-12-06 02:00 America/New_York"
    );
}
