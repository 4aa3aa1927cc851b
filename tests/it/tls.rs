//! TLS: the negotiated version and protocol are reported as negotiated, the handshake is its
//! own phase, certificate lifetime is read and warned about, and verification failures are
//! `tls` errors.

use meridian_probe::demo::origin::TlsVersions;
use meridian_shared::result::{CheckResult, HttpDetail};
use meridian_tests::probe::{self, class, show};
use meridian_tests::{OriginBuilder, RunnerBuilder, TestOrigin, ZoneServer};

async fn fetch(origin: &TestOrigin, host: &str, trust: bool, warn_days: u32) -> CheckResult {
    let dns = ZoneServer::start().await.expect("dns");
    let mut runner = RunnerBuilder::new(dns.udp());
    if trust {
        runner = runner.trust(origin);
    }
    let runner = runner.build().expect("runner");
    let check = probe::http_check(origin.url_via(host, "/"), |c| {
        c.cert_expiry_warn_days = warn_days;
    });
    probe::run(&runner, &check).await
}

fn detail(r: &CheckResult) -> &HttpDetail {
    r.http
        .as_ref()
        .unwrap_or_else(|| panic!("no HTTP detail: {}", show(r)))
}

async fn negotiates(versions: TlsVersions, expected: &str) {
    let origin = OriginBuilder::tls(versions).start().await.expect("origin");
    let r = fetch(&origin, "127.0.0.1", true, 14).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    let d = detail(&r);
    assert_eq!(d.tls_version.as_deref(), Some(expected), "{}", show(&r));
    assert_eq!(d.http_version.as_deref(), Some("HTTP/2"), "{}", show(&r));
    assert!(r.phases.tls.expect("tls phase") > 0, "{}", show(&r));
    assert_eq!(d.cert_days_left, Some(90), "{}", show(&r));
    assert!(r.warnings.is_empty(), "{}", show(&r));
}

#[tokio::test]
async fn tls12_only_origin_reports_tls12_and_h2() {
    negotiates(TlsVersions::Tls12, "TLSv1.2").await;
}

#[tokio::test]
async fn tls13_only_origin_reports_tls13_and_h2() {
    negotiates(TlsVersions::Tls13, "TLSv1.3").await;
}

#[tokio::test]
async fn both_versions_offered_negotiates_tls13() {
    negotiates(TlsVersions::Both, "TLSv1.3").await;
}

#[tokio::test]
async fn plain_http_is_http11_with_no_tls_phase() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let r = fetch(&origin, "127.0.0.1", false, 14).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    let d = detail(&r);
    assert_eq!(d.http_version.as_deref(), Some("HTTP/1.1"), "{}", show(&r));
    assert_eq!(d.tls_version, None, "{}", show(&r));
    assert_eq!(d.cert_days_left, None, "{}", show(&r));
    assert_eq!(
        r.phases.tls,
        Some(0),
        "not applicable is Some(0): {}",
        show(&r)
    );
}

#[tokio::test]
async fn certificate_close_to_expiry_passes_with_a_warning() {
    let origin = OriginBuilder::tls(TlsVersions::Both)
        .valid_days(5)
        .start()
        .await
        .expect("origin");
    let r = fetch(&origin, "origin.example.test", true, 14).await;
    assert_eq!(
        class(&r),
        "none",
        "a warning does not fail the check: {}",
        show(&r)
    );
    assert_eq!(detail(&r).cert_days_left, Some(5), "{}", show(&r));
    assert_eq!(r.warnings.len(), 1, "{}", show(&r));
    assert!(r.warnings[0].contains("5 days"), "{}", show(&r));
}

#[tokio::test]
async fn certificate_beyond_the_warning_threshold_gives_no_warning() {
    let origin = OriginBuilder::tls(TlsVersions::Both)
        .valid_days(30)
        .start()
        .await
        .expect("origin");
    let r = fetch(&origin, "origin.example.test", true, 14).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(detail(&r).cert_days_left, Some(30), "{}", show(&r));
    assert!(r.warnings.is_empty(), "{}", show(&r));
}

#[tokio::test]
async fn untrusted_ca_is_a_tls_error() {
    let origin = OriginBuilder::tls(TlsVersions::Both)
        .start()
        .await
        .expect("origin");
    let r = fetch(&origin, "origin.example.test", false, 14).await;
    assert_eq!(class(&r), "tls", "{}", show(&r));
    assert!(
        r.phases.connect.is_some(),
        "connect was reached: {}",
        show(&r)
    );
    assert!(
        r.phases.tls.is_some(),
        "the handshake was attempted: {}",
        show(&r)
    );
    assert_eq!(
        r.phases.ttfb,
        None,
        "no request after a failed handshake: {}",
        show(&r)
    );
    assert_eq!(r.phases.transfer, None, "{}", show(&r));
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn certificate_for_another_name_is_a_tls_error() {
    let origin = OriginBuilder::tls(TlsVersions::Both)
        .start()
        .await
        .expect("origin");
    // `www.example.test` resolves (via CNAME) to the origin, but the certificate does not
    // name it.
    let r = fetch(&origin, "www.example.test", true, 14).await;
    assert_eq!(class(&r), "tls", "{}", show(&r));
    assert_eq!(r.remote_ip, Some([127, 0, 0, 1].into()), "{}", show(&r));
    assert_eq!(origin.requests(), 0);
}
