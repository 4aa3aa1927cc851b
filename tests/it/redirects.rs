//! Redirects: followed up to the policy's limit with the count reported, reported as-is when
//! not followed, and re-vetted on every hop so that a redirect cannot lead a probe to an
//! address it refuses. A refused address is proved never contacted by a listener on it whose
//! backlog stays empty.

use std::net::{IpAddr, Ipv4Addr};

use meridian_probe::demo::origin::TlsVersions;
use meridian_shared::check::{RedirectPolicy, StatusSet};
use meridian_shared::result::CheckResult;
use meridian_tests::origin::redirect_chain;
use meridian_tests::probe::{self, class, show};
use meridian_tests::{OriginBuilder, RunnerBuilder, TestOrigin, ZoneServer};

const REFUSED_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A listener on 127.0.0.2 (loopback, refused by the tests' policy) that accepts nothing:
/// a connection to it would wait in its backlog, where [`assert_untouched`] finds it.
struct Tripwire(std::net::TcpListener);

impl Tripwire {
    /// On 127.0.0.2, on the port of `origin` when it is free there.
    fn beside(origin: &TestOrigin) -> Tripwire {
        let l = std::net::TcpListener::bind((REFUSED_IP, origin.port()))
            .expect("127.0.0.2 is loopback and this port is free on it");
        l.set_nonblocking(true).expect("nonblocking");
        Tripwire(l)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().expect("addr").port()
    }

    fn assert_untouched(&self) {
        match self.0.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((_, peer)) => panic!("the refused address was contacted by {peer}"),
            Err(e) => panic!("accept failed: {e}"),
        }
    }
}

async fn follow(
    origin: &TestOrigin,
    path: &str,
    tweak: impl FnOnce(&mut meridian_shared::check::HttpCheck),
) -> CheckResult {
    let dns = ZoneServer::start().await.expect("dns");
    let runner = RunnerBuilder::new(dns.udp())
        .trust(origin)
        .build()
        .expect("runner");
    probe::run(&runner, &probe::http_check(origin.url(path), tweak)).await
}

fn status_and_redirects(r: &CheckResult) -> (Option<u16>, u8) {
    let h = r
        .http
        .as_ref()
        .unwrap_or_else(|| panic!("no detail: {}", show(r)));
    (h.status, h.redirects)
}

#[tokio::test]
async fn redirects_are_followed_and_counted() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let r = follow(&origin, &redirect_chain(2, "/final"), |_| {}).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(status_and_redirects(&r), (Some(200), 2), "{}", show(&r));
    assert_eq!(origin.requests(), 3);
}

#[tokio::test]
async fn the_final_status_is_judged_after_redirects() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let r = follow(
        &origin,
        "/old?status=301&location=%2Fgone%3Fstatus%3D404",
        |_| {},
    )
    .await;
    assert_eq!(class(&r), "http-status", "{}", show(&r));
    assert_eq!(status_and_redirects(&r), (Some(404), 1), "{}", show(&r));
}

#[tokio::test]
async fn not_following_reports_the_redirect_itself() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let path = redirect_chain(1, "/final");
    let r = follow(&origin, &path, |c| c.redirects = RedirectPolicy::None).await;
    assert_eq!(class(&r), "http-status", "a 302 is not a 2xx: {}", show(&r));
    assert_eq!(status_and_redirects(&r), (Some(302), 0), "{}", show(&r));
    assert_eq!(origin.requests(), 1);

    let r = follow(&origin, &path, |c| {
        c.redirects = RedirectPolicy::None;
        c.expect_status = StatusSet::parse_items(["3xx"]).expect("set");
    })
    .await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(status_and_redirects(&r), (Some(302), 0), "{}", show(&r));
}

#[tokio::test]
async fn exactly_max_redirects_pass_and_one_more_fails() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let at_limit = follow(&origin, &redirect_chain(3, "/final"), |c| {
        c.redirects = RedirectPolicy::Follow { max: 3 };
    })
    .await;
    assert_eq!(class(&at_limit), "none", "{}", show(&at_limit));
    assert_eq!(status_and_redirects(&at_limit), (Some(200), 3));

    let before = origin.requests();
    let over = follow(&origin, &redirect_chain(4, "/final"), |c| {
        c.redirects = RedirectPolicy::Follow { max: 3 };
    })
    .await;
    assert_eq!(class(&over), "too-many-redirects", "{}", show(&over));
    assert_eq!(
        status_and_redirects(&over),
        (Some(302), 3),
        "{}",
        show(&over)
    );
    assert_eq!(
        origin.requests() - before,
        4,
        "the fifth URL is never fetched"
    );
}

#[tokio::test]
async fn redirect_loop_ends_with_too_many_redirects() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    // An empty Location resolves to the current URL itself: a true loop.
    let r = follow(&origin, "/loop?status=302&location=", |c| {
        c.redirects = RedirectPolicy::Follow { max: 5 };
    })
    .await;
    assert_eq!(class(&r), "too-many-redirects", "{}", show(&r));
    assert_eq!(origin.requests(), 6);
}

#[tokio::test]
async fn redirect_from_http_to_https_adds_the_tls_phase() {
    let https = OriginBuilder::tls(TlsVersions::Both)
        .start()
        .await
        .expect("https origin");
    let plain = OriginBuilder::plain().start().await.expect("origin");
    let dns = ZoneServer::start().await.expect("dns");
    let runner = RunnerBuilder::new(dns.udp())
        .trust(&https)
        .build()
        .expect("runner");
    let next = https.url_via("origin.example.test", "/secure");
    let location: String = url::form_urlencoded::byte_serialize(next.as_str().as_bytes()).collect();
    let check = probe::http_check(
        plain.url(&format!("/?status=301&location={location}")),
        |_| {},
    );
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    let h = r.http.as_ref().expect("detail");
    assert_eq!((h.status, h.redirects), (Some(200), 1), "{}", show(&r));
    assert_eq!(h.tls_version.as_deref(), Some("TLSv1.3"), "{}", show(&r));
    assert_eq!(h.http_version.as_deref(), Some("HTTP/2"), "{}", show(&r));
    assert!(r.phases.tls.expect("tls") > 0, "{}", show(&r));
    assert!(
        r.phases.dns.expect("dns") > 0,
        "the second hop resolved a name: {}",
        show(&r)
    );
    assert_eq!((plain.requests(), https.requests()), (1, 1));
}

#[tokio::test]
async fn redirect_to_a_refused_address_is_blocked_and_never_contacted() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let tripwire = Tripwire::beside(&origin);
    let location = format!("http%3A%2F%2F127.0.0.2%3A{}%2Fadmin", tripwire.port());
    let r = follow(
        &origin,
        &format!("/?status=302&location={location}"),
        |_| {},
    )
    .await;
    assert_eq!(class(&r), "blocked-target", "{}", show(&r));
    let message = &r.error.as_ref().expect("error").message;
    assert!(
        message.contains("127.0.0.2") && message.contains("loopback"),
        "names the address and its range: {message}"
    );
    assert_eq!(status_and_redirects(&r).1, 1, "{}", show(&r));
    assert_eq!(origin.requests(), 1);
    tripwire.assert_untouched();
}

#[tokio::test]
async fn redirect_to_a_name_resolving_to_a_refused_address_is_blocked() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let tripwire = Tripwire::beside(&origin);
    let location = format!("http%3A%2F%2Fblocked.example.test%3A{}%2F", tripwire.port());
    let r = follow(
        &origin,
        &format!("/?status=307&location={location}"),
        |_| {},
    )
    .await;
    assert_eq!(class(&r), "blocked-target", "{}", show(&r));
    tripwire.assert_untouched();
}

#[tokio::test]
async fn first_target_resolving_to_a_refused_address_is_blocked_before_connecting() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let tripwire = Tripwire::beside(&origin);
    let dns = ZoneServer::start().await.expect("dns");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url_via("blocked.example.test", "/"), |_| {});
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "blocked-target", "{}", show(&r));
    assert!(r.phases.dns.expect("dns ran") > 0, "{}", show(&r));
    assert_eq!(r.phases.connect, None, "no connect phase: {}", show(&r));
    assert_eq!(r.remote_ip, None, "{}", show(&r));
    assert_eq!(r.http, None, "{}", show(&r));
    assert!(
        r.error
            .as_ref()
            .expect("error")
            .message
            .contains("loopback"),
        "{}",
        show(&r)
    );
    tripwire.assert_untouched();
}

#[tokio::test]
async fn only_the_allowed_addresses_of_a_name_are_contacted() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let tripwire = Tripwire::beside(&origin);
    let dns = ZoneServer::start().await.expect("dns");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    // `mixed` has A 127.0.0.2 (refused) and A 127.0.0.1 (allowed).
    let check = probe::http_check(origin.url_via("mixed.example.test", "/"), |_| {});
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(
        r.remote_ip,
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        "{}",
        show(&r)
    );
    tripwire.assert_untouched();
}

#[tokio::test]
async fn redirect_from_https_to_http_reports_the_final_plain_connection() {
    let https = OriginBuilder::tls(TlsVersions::Both)
        .start()
        .await
        .expect("https origin");
    let plain = OriginBuilder::plain().start().await.expect("origin");
    let dns = ZoneServer::start().await.expect("dns");
    let runner = RunnerBuilder::new(dns.udp())
        .trust(&https)
        .build()
        .expect("runner");
    let next = plain.url("/plain");
    let location: String = url::form_urlencoded::byte_serialize(next.as_str().as_bytes()).collect();
    let check = probe::http_check(
        https.url(&format!("/?status=302&location={location}")),
        |_| {},
    );
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    let h = r.http.as_ref().expect("detail");
    assert_eq!((h.status, h.redirects), (Some(200), 1), "{}", show(&r));
    assert_eq!(h.http_version.as_deref(), Some("HTTP/1.1"), "{}", show(&r));
    // HttpDetail describes "the final response and the connection that carried it": the
    // final connection was plain HTTP, so it has no TLS version and no certificate. Fails
    // today: probe/src/http/mod.rs sets both only on TLS hops and never clears them, so the
    // first hop's values (and its expiry warning) survive onto the plain one.
    assert_eq!(h.tls_version, None, "{}", show(&r));
    assert_eq!(h.cert_days_left, None, "{}", show(&r));
}

#[tokio::test]
async fn redirect_to_an_unsupported_scheme_fails_without_leaving() {
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let r = follow(
        &origin,
        "/?status=302&location=ftp%3A%2F%2F127.0.0.1%2Ffile",
        |_| {},
    )
    .await;
    assert_eq!(
        class(&r),
        "bad-redirect",
        "a Location that cannot be followed has its own class: {}",
        show(&r)
    );
    assert!(
        r.error.as_ref().expect("error").message.contains("ftp://"),
        "{}",
        show(&r)
    );
    assert_eq!(origin.requests(), 1);
}
