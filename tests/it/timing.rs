//! Phase timing: server time shows up in the phase it belongs to and in no other, over plain
//! HTTP and over TLS. Bounds are one-sided where the machine's load could stretch them: a
//! delay is asserted as a lower bound on its own phase, and other phases only have to stay
//! well below it.

use meridian_probe::demo::origin::TlsVersions;
use meridian_shared::result::CheckResult;
use meridian_tests::probe::{self, class, show};
use meridian_tests::{OriginBuilder, RunnerBuilder, TestOrigin, ZoneServer};

const MS: u64 = 1000;

async fn check(origin: &TestOrigin, dns: &ZoneServer, path: &str) -> CheckResult {
    let runner = RunnerBuilder::new(dns.udp())
        .trust(origin)
        .build()
        .expect("runner");
    let check = probe::http_check(origin.url(path), |_| {});
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    r
}

async fn header_delay_is_ttfb(origin: TestOrigin) {
    let dns = ZoneServer::start().await.expect("dns");
    let r = check(&origin, &dns, "/?delay_ms=200").await;
    let p = r.phases;
    assert!(p.ttfb.expect("ttfb") >= 195 * MS, "{}", show(&r));
    assert!(p.connect.expect("connect") < 100 * MS, "{}", show(&r));
    assert!(p.tls.expect("tls") < 100 * MS, "{}", show(&r));
    assert!(p.transfer.expect("transfer") < 150 * MS, "{}", show(&r));
    assert!(p.total >= 195 * MS, "{}", show(&r));
}

async fn body_delay_is_transfer(origin: TestOrigin) {
    let dns = ZoneServer::start().await.expect("dns");
    let r = check(&origin, &dns, "/?size=10000&body_delay_ms=300").await;
    let p = r.phases;
    assert!(p.transfer.expect("transfer") >= 290 * MS, "{}", show(&r));
    assert!(p.ttfb.expect("ttfb") < 150 * MS, "{}", show(&r));
    assert!(p.connect.expect("connect") < 100 * MS, "{}", show(&r));
    assert_eq!(
        r.http.as_ref().map(|h| h.bytes),
        Some(10_000),
        "{}",
        show(&r)
    );
}

#[tokio::test]
async fn header_delay_shows_in_ttfb_over_http() {
    header_delay_is_ttfb(OriginBuilder::plain().start().await.expect("origin")).await;
}

#[tokio::test]
async fn header_delay_shows_in_ttfb_over_https() {
    let origin = OriginBuilder::tls(TlsVersions::Both)
        .start()
        .await
        .expect("origin");
    header_delay_is_ttfb(origin).await;
}

#[tokio::test]
async fn body_delay_shows_in_transfer_over_http() {
    body_delay_is_transfer(OriginBuilder::plain().start().await.expect("origin")).await;
}

#[tokio::test]
async fn body_delay_shows_in_transfer_over_https() {
    let origin = OriginBuilder::tls(TlsVersions::Both)
        .start()
        .await
        .expect("origin");
    body_delay_is_transfer(origin).await;
}

#[tokio::test]
async fn phases_are_each_on_their_own_and_fit_in_the_total() {
    let origin = OriginBuilder::tls(TlsVersions::Both)
        .start()
        .await
        .expect("origin");
    let dns = ZoneServer::start().await.expect("dns");
    let runner = RunnerBuilder::new(dns.udp())
        .trust(&origin)
        .build()
        .expect("runner");
    let check = probe::http_check(
        origin.url_via(
            "origin.example.test",
            "/?delay_ms=100&size=5000&body_delay_ms=100",
        ),
        |_| {},
    );
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    let p = r.phases;
    let parts =
        [p.dns, p.connect, p.tls, p.ttfb, p.transfer].map(|x| x.expect("every phase reached"));
    // Not cumulative: the sum of the phases cannot exceed the wall time of the run.
    assert!(parts.iter().sum::<u64>() <= p.total, "{}", show(&r));
    assert!(
        p.ttfb.expect("ttfb") >= 95 * MS && p.transfer.expect("transfer") >= 95 * MS,
        "{}",
        show(&r)
    );
}

#[tokio::test]
async fn phases_of_redirect_hops_add_up() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let dns = ZoneServer::start().await.expect("dns");
    // Two hops, each 150 ms of server time before its headers.
    let r = check(
        &origin,
        &dns,
        "/a?delay_ms=150&status=302&location=%2Fb%3Fdelay_ms%3D150",
    )
    .await;
    assert_eq!(
        r.http.as_ref().map(|h| h.redirects),
        Some(1),
        "{}",
        show(&r)
    );
    assert!(r.phases.ttfb.expect("ttfb") >= 295 * MS, "{}", show(&r));
    assert!(r.phases.total >= 295 * MS, "{}", show(&r));
}
