//! Connection and protocol failures: a refused port, servers that never answer in time, and
//! servers that speak the wrong protocol, each with its own class, and the phases after the
//! failure left as not reached.

use std::time::Duration;

use meridian_tests::origin::closed_port;
use meridian_tests::probe::{self, class, show};
use meridian_tests::raw::Reply;
use meridian_tests::{OriginBuilder, RawServer, RunnerBuilder, ZoneServer};

#[tokio::test]
async fn nothing_listening_is_connect_refused() {
    let dns = ZoneServer::start().await.expect("dns");
    let port = closed_port().await.expect("port");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let url = format!("http://127.0.0.1:{port}/").parse().expect("url");
    let r = probe::run(&runner, &probe::http_check(url, |_| {})).await;
    assert_eq!(class(&r), "connect-refused", "{}", show(&r));
    assert!(
        r.error
            .as_ref()
            .expect("error")
            .message
            .contains(&port.to_string())
    );
    assert_eq!(r.phases.dns, Some(0), "{}", show(&r));
    assert!(
        r.phases.connect.is_some(),
        "the attempt is timed: {}",
        show(&r)
    );
    assert_eq!(r.phases.tls, None, "{}", show(&r));
    assert_eq!(r.phases.ttfb, None, "{}", show(&r));
    assert_eq!(r.phases.transfer, None, "{}", show(&r));
}

#[tokio::test]
async fn server_slower_than_the_timeout_is_http_timeout() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url("/?delay_ms=5000"), |c| {
        c.timeout = Duration::from_millis(500);
    });
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "http-timeout", "{}", show(&r));
    assert!(
        r.phases.ttfb.expect("ttfb measured up to the timeout") >= 400_000,
        "{}",
        show(&r)
    );
    assert_eq!(r.phases.transfer, None, "{}", show(&r));
    // The timeout ends the check long before the server would have answered.
    assert!(r.phases.total < 4_000_000, "{}", show(&r));
    assert!(r.phases.total >= 490_000, "{}", show(&r));
}

#[tokio::test]
async fn body_slower_than_the_timeout_is_http_timeout() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url("/?size=1000&body_delay_ms=5000"), |c| {
        c.timeout = Duration::from_millis(500);
    });
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "http-timeout", "{}", show(&r));
    assert_eq!(
        r.http.as_ref().and_then(|h| h.status),
        Some(200),
        "{}",
        show(&r)
    );
    assert!(r.phases.transfer.is_some(), "{}", show(&r));
    assert!(r.phases.total < 4_000_000, "{}", show(&r));
}

async fn against(
    server: &RawServer,
    scheme: &str,
    timeout_ms: u64,
) -> meridian_shared::result::CheckResult {
    let dns = ZoneServer::start().await.expect("dns");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let url = format!("{scheme}://127.0.0.1:{}/", server.addr().port())
        .parse()
        .expect("url");
    let check = probe::http_check(url, |c| c.timeout = Duration::from_millis(timeout_ms));
    probe::run(&runner, &check).await
}

#[tokio::test]
async fn server_closing_without_an_answer_is_http_protocol() {
    let server = RawServer::start(Reply::Bytes(b"")).await.expect("server");
    let r = against(&server, "http", 3000).await;
    assert_eq!(class(&r), "http-protocol", "{}", show(&r));
    assert!(
        r.phases.ttfb.is_some(),
        "the request was sent: {}",
        show(&r)
    );
    assert_eq!(r.phases.transfer, None, "{}", show(&r));
    assert_eq!(r.http.as_ref().and_then(|h| h.status), None, "{}", show(&r));
}

#[tokio::test]
async fn non_http_answer_is_http_protocol() {
    let server = RawServer::start(Reply::Bytes(b"SSH-2.0-OpenSSH_9.2\r\n"))
        .await
        .expect("server");
    let r = against(&server, "http", 3000).await;
    assert_eq!(class(&r), "http-protocol", "{}", show(&r));
}

#[tokio::test]
async fn https_to_a_plain_http_port_is_a_tls_error() {
    let server = RawServer::start(Reply::Bytes(
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
    ))
    .await
    .expect("server");
    let r = against(&server, "https", 3000).await;
    assert_eq!(class(&r), "tls", "{}", show(&r));
    assert_eq!(r.phases.ttfb, None, "{}", show(&r));
}

#[tokio::test]
async fn stalled_tls_handshake_ends_at_the_timeout_as_tls() {
    let server = RawServer::start(Reply::Hold).await.expect("server");
    let r = against(&server, "https", 500).await;
    assert_eq!(class(&r), "tls", "{}", show(&r));
    assert!(r.phases.tls.expect("tls timed") >= 400_000, "{}", show(&r));
    assert!(
        r.phases.total < 4_000_000,
        "bounded by the timeout: {}",
        show(&r)
    );
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn silent_http_server_ends_at_the_timeout_as_http_timeout() {
    let server = RawServer::start(Reply::Hold).await.expect("server");
    let r = against(&server, "http", 500).await;
    assert_eq!(class(&r), "http-timeout", "{}", show(&r));
    assert!(r.phases.total < 4_000_000, "{}", show(&r));
}

#[tokio::test]
async fn server_closing_mid_body_is_http_protocol() {
    let server = RawServer::start(Reply::Bytes(
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort",
    ))
    .await
    .expect("server");
    let r = against(&server, "http", 3000).await;
    assert_eq!(class(&r), "http-protocol", "{}", show(&r));
    assert_eq!(
        r.http.as_ref().and_then(|h| h.status),
        Some(200),
        "{}",
        show(&r)
    );
    assert!(r.phases.transfer.is_some(), "{}", show(&r));
}

#[tokio::test]
async fn body_delimited_by_close_is_read_whole() {
    let server = RawServer::start(Reply::Bytes(
        b"HTTP/1.0 200 OK\r\nserver: raw\r\n\r\nbody until close",
    ))
    .await
    .expect("server");
    let r = against(&server, "http", 3000).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    let h = r.http.as_ref().expect("detail");
    assert_eq!(
        (h.bytes, h.http_version.as_deref()),
        (16, Some("HTTP/1.0")),
        "{}",
        show(&r)
    );
}

#[tokio::test]
async fn one_deadline_covers_every_redirect_hop() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    // Each hop takes 300 ms, within a 450 ms timeout on its own; together they exceed it.
    let check = probe::http_check(
        origin.url("/a?delay_ms=300&status=302&location=%2Fb%3Fdelay_ms%3D300"),
        |c| c.timeout = Duration::from_millis(450),
    );
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "http-timeout", "{}", show(&r));
    assert!(r.phases.total < 3_000_000, "{}", show(&r));
    assert_eq!(
        r.http.as_ref().map(|h| h.redirects),
        Some(1),
        "{}",
        show(&r)
    );
}

#[tokio::test]
async fn refused_address_falls_back_to_the_next_one() {
    // `dual.example.test` is A 127.0.0.1 and AAAA ::1; only ::1 listens on the port.
    let v4 = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = v4.local_addr().expect("addr").port();
    let origin = OriginBuilder::plain()
        .ip("::1".parse().expect("ip"))
        .port(port)
        .start()
        .await
        .expect("origin on [::1] with the same port");
    drop(v4);
    let dns = ZoneServer::start().await.expect("dns");
    let policy = meridian_probe::safety::TargetPolicy::with_allowed(vec![
        "127.0.0.1/32".parse().expect("net"),
        "::1/128".parse().expect("net"),
    ]);
    let runner = RunnerBuilder::new(dns.udp())
        .policy(policy)
        .build()
        .expect("runner");
    let check = probe::http_check(origin.url_via("dual.example.test", "/"), |_| {});
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(
        r.remote_ip,
        Some("::1".parse().expect("ip")),
        "{}",
        show(&r)
    );
}
