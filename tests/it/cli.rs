//! The `probe` command line: `probe check` (JSON keys and types, exit codes 0/1/2, DNS
//! targets, `--resolve`, `--cacert`) and `probe validate`. The binary is found next to the
//! test executable (see `meridian_tests::cli`).

use std::io::Write as _;

use meridian_probe::demo::origin::TlsVersions;
use meridian_tests::cli::{probe, workspace_root};
use meridian_tests::{OriginBuilder, ScriptedDns, ZoneServer};
use serde_json::Value;

/// Every documented key of `probe check --json` (README and `probe/src/output.rs`).
const KEYS: [&str; 21] = [
    "target",
    "ok",
    "error",
    "message",
    "dns_ms",
    "connect_ms",
    "tls_ms",
    "ttfb_ms",
    "transfer_ms",
    "total_ms",
    "status",
    "http_version",
    "tls_version",
    "cert_days_left",
    "bytes",
    "redirects",
    "remote_ip",
    "edge",
    "rcode",
    "answers",
    "warnings",
];

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {v}"))
}

#[tokio::test]
async fn check_json_has_every_documented_key_with_its_type() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain()
        .name("cli-origin")
        .start()
        .await
        .expect("origin");
    let url = origin.url_via("origin.example.test", "/?delay_ms=100");
    let out = probe(&[
        "check",
        "--json",
        "--allow-private",
        "--resolver",
        &dns.udp_uri(),
        url.as_str(),
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    let v = out.json().expect("json");
    let obj = v.as_object().expect("an object");
    for key in KEYS {
        assert!(obj.contains_key(key), "missing {key}: {v}");
    }
    assert_eq!(obj.len(), KEYS.len(), "no undocumented keys: {v}");

    assert_eq!(v["target"], url.as_str());
    assert_eq!(v["ok"], true);
    assert!(v["error"].is_null() && v["message"].is_null(), "{v}");
    assert!(num(&v, "dns_ms") > 0.0, "{v}");
    assert!(num(&v, "connect_ms") >= 0.0, "{v}");
    assert_eq!(num(&v, "tls_ms"), 0.0, "plain http: {v}");
    assert!(num(&v, "ttfb_ms") >= 95.0, "{v}");
    assert!(num(&v, "transfer_ms") >= 0.0, "{v}");
    assert!(num(&v, "total_ms") >= num(&v, "ttfb_ms"), "{v}");
    assert_eq!(v["status"], 200);
    assert_eq!(v["http_version"], "HTTP/1.1");
    assert!(
        v["tls_version"].is_null() && v["cert_days_left"].is_null(),
        "{v}"
    );
    assert!(v["bytes"].as_u64().expect("bytes") > 0, "{v}");
    assert_eq!(v["redirects"], 0);
    assert_eq!(v["remote_ip"], "127.0.0.1");
    assert_eq!(v["edge"]["server"], "meridian-demo", "{v}");
    assert_eq!(v["edge"]["x-served-by"], "cli-origin", "{v}");
    assert!(
        v["rcode"].is_null() && v["answers"].is_null(),
        "HTTP check: {v}"
    );
    assert!(
        v["warnings"].as_array().expect("warnings array").is_empty(),
        "{v}"
    );
}

#[tokio::test]
async fn check_https_with_cacert_reports_tls() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::tls(TlsVersions::Tls12)
        .valid_days(40)
        .start()
        .await
        .expect("origin");
    let mut ca = tempfile::NamedTempFile::new().expect("temp file");
    ca.write_all(origin.ca_pem().expect("pem").as_bytes())
        .expect("write CA");
    let ca_path = ca.path().to_str().expect("utf-8 path");
    let url = origin.url_via("origin.example.test", "/");
    let out = probe(&[
        "check",
        "--json",
        "--allow-private",
        "--resolver",
        &dns.udp_uri(),
        "--cacert",
        ca_path,
        url.as_str(),
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(v["tls_version"], "TLSv1.2", "{v}");
    assert_eq!(v["http_version"], "HTTP/2", "{v}");
    assert_eq!(v["cert_days_left"], 40, "{v}");
    assert!(num(&v, "tls_ms") > 0.0, "{v}");

    // Without the CA the same check fails verification.
    let out = probe(&[
        "check",
        "--json",
        "--allow-private",
        "--resolver",
        &dns.udp_uri(),
        url.as_str(),
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.json().expect("json")["error"], "tls");
}

#[tokio::test]
async fn failing_check_exits_1_with_the_error_set() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let dns = ScriptedDns::silent().await.expect("dns");
    let resolver = format!("udp://{}", dns.addr());
    let url = origin.url("/?status=503");
    let out = probe(&[
        "check",
        "--json",
        "--allow-private",
        "--resolver",
        &resolver,
        url.as_str(),
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(1), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"], "http-status");
    assert!(
        v["message"].as_str().expect("message").contains("503"),
        "{v}"
    );
    assert_eq!(v["status"], 503);
}

#[tokio::test]
async fn loopback_target_without_allow_private_is_blocked() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let dns = ScriptedDns::silent().await.expect("dns");
    let resolver = format!("udp://{}", dns.addr());
    let url = origin.url("/");
    let out = probe(&["check", "--json", "--resolver", &resolver, url.as_str()])
        .await
        .expect("probe ran");
    assert_eq!(out.code, Some(1), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(v["error"], "blocked-target", "{v}");
    assert!(v["connect_ms"].is_null(), "never connected: {v}");
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn expectations_and_no_follow_from_the_command_line() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let dns = ScriptedDns::silent().await.expect("dns");
    let resolver = format!("udp://{}", dns.addr());
    let base = [
        "check",
        "--json",
        "--allow-private",
        "--resolver",
        &resolver,
    ];
    let url = origin.url("/old?status=301&location=%2Fnew");
    let out = probe(
        &[
            &base[..],
            &["--no-follow", "--expect-status", "2xx,301", url.as_str()],
        ]
        .concat(),
    )
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(
        (v["status"].as_u64(), v["redirects"].as_u64()),
        (Some(301), Some(0)),
        "{v}"
    );

    let url = origin.url("/");
    let out = probe(
        &[
            &base[..],
            &["--body-contains", "no such text", url.as_str()],
        ]
        .concat(),
    )
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.json().expect("json")["error"], "content-mismatch");

    let out = probe(&[&base[..], &["--body-regex", "^hello from", url.as_str()]].concat())
        .await
        .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn resolve_flag_skips_the_resolver() {
    let silent = ScriptedDns::silent().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let url = origin.url_via("app.invalid", "/");
    let pin = format!("app.invalid:{}:127.0.0.1", origin.port());
    let resolver = format!("udp://{}", silent.addr());
    let out = probe(&[
        "check",
        "--json",
        "--allow-private",
        "--timeout",
        "3s",
        "--resolver",
        &resolver,
        "--resolve",
        &pin,
        url.as_str(),
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(num(&v, "dns_ms"), 0.0, "{v}");
    assert_eq!(silent.queries().total(), 0);
}

#[tokio::test]
async fn usage_errors_exit_2() {
    // A resolver that never answers, so that even a wrongly accepted target queries only it.
    let dns = ScriptedDns::silent().await.expect("dns");
    let resolver = format!("udp://{}", dns.addr());
    let cases: [&[&str]; 6] = [
        &["ftp://x"],
        &["not a url"],
        &["-H", "no colon here", "http://127.0.0.1:9/"],
        &["dns:example.test/BOGUS"],
        &["--expect-status", "6xx", "http://127.0.0.1:9/"],
        &["--timeout", "soon", "http://127.0.0.1:9/"],
    ];
    for case in cases {
        let args = [
            &["check", "--timeout", "1s", "--resolver", &resolver][..],
            case,
        ]
        .concat();
        let out = probe(&args).await.expect("probe ran");
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(
            out.stdout.is_empty(),
            "no result printed on a usage error: {out:?}"
        );
        assert!(!out.stderr.is_empty(), "the error is explained: {args:?}");
    }
    assert_eq!(dns.queries().total(), 0, "a usage error runs no check");
    let bad_resolver = probe(&["check", "--resolver", "dns.example", "dns:example.test"])
        .await
        .expect("probe ran");
    assert_eq!(bad_resolver.code, Some(2), "{bad_resolver:?}");
}

#[tokio::test]
async fn dns_target_prints_rcode_and_answers() {
    let dns = ZoneServer::start().await.expect("dns");
    let out = probe(&[
        "check",
        "--json",
        "--resolver",
        &dns.udp_uri(),
        "dns:example.test/MX",
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(v["rcode"], "NOERROR", "{v}");
    assert_eq!(
        v["answers"],
        serde_json::json!(["10 mail.example.test."]),
        "{v}"
    );
    assert_eq!(v["remote_ip"], "127.0.0.1", "{v}");
    assert!(num(&v, "dns_ms") > 0.0, "{v}");
    assert!(v["status"].is_null() && v["http_version"].is_null(), "{v}");

    let out = probe(&[
        "check",
        "--json",
        "--resolver",
        &dns.udp_uri(),
        "dns:nope.example.test",
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(1), "{out:?}");
    let v = out.json().expect("json");
    assert_eq!(
        (v["error"].as_str(), v["rcode"].as_str()),
        (Some("dns-rcode"), Some("NXDOMAIN")),
        "{v}"
    );

    let out = probe(&[
        "check",
        "--json",
        "--resolver",
        &dns.udp_uri(),
        "--expect-rcode",
        "NXDOMAIN",
        "dns:nope.example.test",
    ])
    .await
    .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn table_output_shows_phases_and_verdict() {
    let dns = ZoneServer::start().await.expect("dns");
    let out = probe(&["check", "--resolver", &dns.udp_uri(), "dns:example.test/MX"])
        .await
        .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("NOERROR"), "{}", out.stdout);
    assert!(
        out.stdout.contains("answer   10 mail.example.test."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("dns")),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().last(), Some("ok"), "{}", out.stdout);
}

#[tokio::test]
async fn validate_accepts_the_example_config() {
    let example = workspace_root().join("probe/probe.example.toml");
    let out = probe(&["validate", "--config", example.to_str().expect("utf-8")])
        .await
        .expect("probe ran");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("valid (3 checks"), "{}", out.stdout);
}

#[tokio::test]
async fn validate_rejects_a_bad_config_with_its_location() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("probe.toml");
    std::fs::write(
        &path,
        "probe_id = \"p1\"\nregion = \"eu-central\"\nresults = \"r.jsonl\"\n\n[[http]]\nid = \"x\"\nurl = \"ftp://example.test/\"\n",
    )
    .expect("write config");
    let out = probe(&["validate", "--config", path.to_str().expect("utf-8")])
        .await
        .expect("probe ran");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("probe.toml:7:"),
        "file:line of the bad URL: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("http[0].url"),
        "the field: {}",
        out.stderr
    );
}

#[tokio::test]
async fn address_family_flags_filter_resolved_addresses() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let url = origin.url_via("origin.example.test", "/");
    let base = [
        "check",
        "--json",
        "--allow-private",
        "--resolver",
        &dns.udp_uri(),
    ];
    let v4 = probe(&[&base[..], &["-4", url.as_str()]].concat())
        .await
        .expect("probe ran");
    assert_eq!(v4.code, Some(0), "{v4:?}");
    // origin.example.test has no AAAA record.
    let v6 = probe(&[&base[..], &["-6", url.as_str()]].concat())
        .await
        .expect("probe ran");
    assert_eq!(v6.code, Some(1), "{v6:?}");
    assert_eq!(v6.json().expect("json")["error"], "dns");
}

#[tokio::test]
async fn run_with_a_missing_config_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope.toml");
    let out = probe(&["run", "--config", missing.to_str().expect("utf-8")])
        .await
        .expect("probe ran");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("nope.toml"),
        "names the file: {}",
        out.stderr
    );
}
