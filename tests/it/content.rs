//! Status and content expectations: the status set, body text and regex, the body cap, and
//! the edge-identity headers captured from the response.

use meridian_shared::check::{BodyMatch, HttpCheck, Pattern, StatusSet};
use meridian_shared::result::CheckResult;
use meridian_tests::probe::{self, class, show};
use meridian_tests::{OriginBuilder, RunnerBuilder, TestOrigin, ZoneServer};

async fn fetch(origin: &TestOrigin, path: &str, tweak: impl FnOnce(&mut HttpCheck)) -> CheckResult {
    let dns = ZoneServer::start().await.expect("dns");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    probe::run(&runner, &probe::http_check(origin.url(path), tweak)).await
}

fn regex(p: &str) -> Option<BodyMatch> {
    Some(BodyMatch::Regex(Pattern::new(p).expect("valid regex")))
}

#[tokio::test]
async fn unexpected_status_fails_with_http_status() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let r = fetch(&origin, "/?status=503", |_| {}).await;
    assert_eq!(class(&r), "http-status", "{}", show(&r));
    assert_eq!(r.http.as_ref().and_then(|h| h.status), Some(503));
    assert!(
        r.error.as_ref().expect("error").message.contains("503"),
        "{}",
        show(&r)
    );
    // Everything up to the body was measured.
    assert!(
        r.phases.ttfb.is_some() && r.phases.transfer.is_some(),
        "{}",
        show(&r)
    );
}

#[tokio::test]
async fn expected_status_set_accepts_listed_codes() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let r = fetch(&origin, "/?status=503", |c| {
        c.expect_status = StatusSet::parse_items(["2xx", "503"]).expect("set");
    })
    .await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    let r = fetch(&origin, "/?status=204", |c| {
        c.expect_status = StatusSet::parse_items(["200"]).expect("set");
    })
    .await;
    assert_eq!(class(&r), "http-status", "{}", show(&r));
}

#[tokio::test]
async fn body_contains_passes_and_fails_on_the_text() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let contains = |t: &str| Some(BodyMatch::Contains(t.to_string()));
    let ok = fetch(&origin, "/", |c| c.body = contains("Meridian demo origin")).await;
    assert_eq!(class(&ok), "none", "{}", show(&ok));
    let bad = fetch(&origin, "/", |c| c.body = contains("Example Domain")).await;
    assert_eq!(class(&bad), "content-mismatch", "{}", show(&bad));
    assert!(
        bad.error
            .as_ref()
            .expect("error")
            .message
            .contains("Example Domain")
    );
}

#[tokio::test]
async fn body_regex_passes_and_fails_on_the_pattern() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let ok = fetch(&origin, "/?size=100", |c| c.body = regex("^x{100}$")).await;
    assert_eq!(class(&ok), "none", "{}", show(&ok));
    let bad = fetch(&origin, "/?size=100", |c| c.body = regex("^y")).await;
    assert_eq!(class(&bad), "content-mismatch", "{}", show(&bad));
}

#[tokio::test]
async fn body_is_read_up_to_the_cap_and_marked_truncated() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let r = fetch(&origin, "/?size=100000", |c| c.max_body_bytes = 1000).await;
    assert_eq!(
        class(&r),
        "none",
        "a capped body still passes: {}",
        show(&r)
    );
    let h = r.http.as_ref().expect("detail");
    assert_eq!((h.bytes, h.truncated), (1000, true), "{}", show(&r));
}

#[tokio::test]
async fn body_at_or_under_the_cap_is_read_whole() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    for size in [500u64, 1000] {
        let r = fetch(&origin, &format!("/?size={size}"), |c| {
            c.max_body_bytes = 1000
        })
        .await;
        assert_eq!(class(&r), "none", "{}", show(&r));
        let h = r.http.as_ref().expect("detail");
        assert_eq!((h.bytes, h.truncated), (size, false), "{}", show(&r));
    }
}

#[tokio::test]
async fn body_match_sees_only_the_capped_body() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    // 2000 'x' bytes capped at 1000: a pattern needing more than 1000 cannot match.
    let r = fetch(&origin, "/?size=2000", |c| {
        c.max_body_bytes = 1000;
        c.body = regex("x{1001}");
    })
    .await;
    assert_eq!(class(&r), "content-mismatch", "{}", show(&r));
}

#[tokio::test]
async fn edge_headers_are_captured() {
    let origin = OriginBuilder::plain()
        .name("edge-fra-7")
        .start()
        .await
        .expect("origin");
    let r = fetch(&origin, "/", |_| {}).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    let edge = &r.http.as_ref().expect("detail").edge;
    assert_eq!(
        edge.get("server").map(String::as_str),
        Some("meridian-demo"),
        "{}",
        show(&r)
    );
    assert_eq!(
        edge.get("x-served-by").map(String::as_str),
        Some("edge-fra-7"),
        "{}",
        show(&r)
    );
    assert!(
        !edge.contains_key("content-type"),
        "only edge-identity headers: {}",
        show(&r)
    );
}

#[tokio::test]
async fn head_request_passes_with_no_body() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let r = fetch(&origin, "/?size=5000", |c| c.method = "HEAD".to_string()).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    let h = r.http.as_ref().expect("detail");
    assert_eq!((h.status, h.bytes), (Some(200), 0), "{}", show(&r));
}

#[tokio::test]
async fn url_fragment_is_not_sent_over_h1_or_h2() {
    for origin in [
        OriginBuilder::plain().start().await.expect("origin"),
        OriginBuilder::tls(meridian_probe::demo::origin::TlsVersions::Both)
            .start()
            .await
            .expect("origin"),
    ] {
        let dns = ZoneServer::start().await.expect("dns");
        let runner = RunnerBuilder::new(dns.udp())
            .trust(&origin)
            .build()
            .expect("runner");
        let r = probe::run(
            &runner,
            &probe::http_check(origin.url("/page?size=10#section-2"), |_| {}),
        )
        .await;
        assert_eq!(class(&r), "none", "{}", show(&r));
        assert_eq!(r.http.as_ref().map(|h| h.bytes), Some(10), "{}", show(&r));
    }
}
