//! The DNS phase of HTTP checks: resolution is timed and goes to the configured server; an
//! IP literal or a `resolve` override skips it (`Some(0)`, no query sent); failures to resolve
//! are `dns` or `dns-timeout`, and nothing after them is reached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use meridian_probe::safety::TargetPolicy;
use meridian_shared::check::{IpVersion, ResolveOverride};
use meridian_tests::probe::{self, class, show};
use meridian_tests::{OriginBuilder, RunnerBuilder, ScriptedDns, ZoneServer};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[tokio::test]
async fn names_are_resolved_by_the_configured_server_and_timed() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url_via("origin.example.test", "/"), |_| {});
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert!(r.phases.dns.expect("dns phase") > 0, "{}", show(&r));
    assert_eq!(r.remote_ip, Some(LOCALHOST), "{}", show(&r));
    assert!(dns.queries().total() >= 1, "the test server was asked");
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn cname_chains_are_followed_to_the_address() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url_via("www.example.test", "/"), |_| {});
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(r.remote_ip, Some(LOCALHOST), "{}", show(&r));
}

#[tokio::test]
async fn resolve_override_skips_dns_entirely() {
    // A resolver that never answers: any query would turn into a dns-timeout.
    let dns = ScriptedDns::silent().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url_via("app.invalid", "/"), |c| {
        c.resolve = vec![ResolveOverride {
            host: "app.invalid".to_string(),
            port: origin.port(),
            addr: LOCALHOST,
        }];
        c.timeout = Duration::from_secs(3);
    });
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(r.phases.dns, Some(0), "{}", show(&r));
    assert_eq!(r.remote_ip, Some(LOCALHOST), "{}", show(&r));
    assert_eq!(dns.queries().total(), 0, "no query may be sent");
}

#[tokio::test]
async fn resolve_override_applies_only_to_its_port() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url_via("origin.example.test", "/"), |c| {
        c.resolve = vec![ResolveOverride {
            host: "origin.example.test".to_string(),
            port: origin.port().wrapping_add(1),
            addr: "127.0.0.2".parse().expect("ip"),
        }];
    });
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert!(r.phases.dns.expect("dns") > 0, "{}", show(&r));
    assert!(dns.queries().total() >= 1);
}

#[tokio::test]
async fn ip_literal_needs_no_dns() {
    let dns = ScriptedDns::silent().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url("/"), |c| c.timeout = Duration::from_secs(3));
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(r.phases.dns, Some(0), "{}", show(&r));
    assert_eq!(dns.queries().total(), 0);
}

#[tokio::test]
async fn ipv6_literal_on_loopback_works_when_allowed() {
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let dns = ScriptedDns::silent().await.expect("dns");
    let origin = OriginBuilder::plain()
        .ip(v6)
        .start()
        .await
        .expect("origin on [::1]");
    let runner = RunnerBuilder::new(dns.udp())
        .policy(TargetPolicy::with_allowed(vec![
            "::1/128".parse().expect("net"),
        ]))
        .build()
        .expect("runner");
    let check = probe::http_check(origin.url("/"), |c| c.timeout = Duration::from_secs(3));
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(r.remote_ip, Some(v6), "{}", show(&r));
    assert_eq!(r.phases.dns, Some(0), "{}", show(&r));
}

#[tokio::test]
async fn unknown_name_is_a_dns_error_and_nothing_after_it_runs() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url_via("nope.example.test", "/"), |_| {});
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "dns", "{}", show(&r));
    assert!(r.phases.dns.is_some(), "{}", show(&r));
    assert_eq!(r.phases.connect, None, "not reached: {}", show(&r));
    assert_eq!(r.phases.ttfb, None, "{}", show(&r));
    assert_eq!(r.http, None, "never connected: {}", show(&r));
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn name_without_an_address_of_the_wanted_family_is_a_dns_error() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    // `v6.example.test` has only an AAAA record.
    let check = probe::http_check(origin.url_via("v6.example.test", "/"), |c| {
        c.ip_version = IpVersion::V4;
    });
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "dns", "{}", show(&r));
    assert_eq!(r.phases.connect, None, "{}", show(&r));
}

#[tokio::test]
async fn dual_stack_name_connects_to_the_allowed_ipv4_address() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url_via("dual.example.test", "/"), |_| {});
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(r.remote_ip, Some(LOCALHOST), "{}", show(&r));
}

#[tokio::test]
async fn resolver_that_never_answers_is_a_dns_timeout_within_the_check_timeout() {
    let dns = ScriptedDns::silent().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url_via("origin.example.test", "/"), |c| {
        c.timeout = Duration::from_millis(600);
    });
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "dns-timeout", "{}", show(&r));
    assert!(dns.queries().total() >= 1, "the silent server was asked");
    // The check's timeout bounds the whole run (generous slack for a loaded machine).
    assert!(r.phases.total < 3_000_000, "{}", show(&r));
    assert!(
        r.phases.total >= 500_000,
        "it waited for the resolver: {}",
        show(&r)
    );
    assert_eq!(r.phases.connect, None, "{}", show(&r));
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn servfail_from_the_resolver_is_a_dns_error() {
    let dns = ScriptedDns::servfail().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url_via("origin.example.test", "/"), |c| {
        c.timeout = Duration::from_secs(2);
    });
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "dns", "an answer, not a timeout: {}", show(&r));
    assert!(
        r.error
            .as_ref()
            .expect("error")
            .message
            .contains("SERVFAIL"),
        "{}",
        show(&r)
    );
    assert_eq!(r.phases.connect, None, "{}", show(&r));
}

#[tokio::test]
async fn each_hop_resolves_its_name_once() {
    let dns = ZoneServer::start().await.expect("dns");
    let origin = OriginBuilder::plain().start().await.expect("origin");
    let runner = RunnerBuilder::new(dns.udp()).build().expect("runner");
    let check = probe::http_check(origin.url_via("origin.example.test", "/"), |_| {});
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    // One A and one AAAA question, no cache hit, no second resolution before connecting.
    assert_eq!(dns.queries().total(), 2, "{}", show(&r));
}

#[tokio::test]
async fn https_to_an_ipv6_literal_verifies_the_address() {
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let dns = ScriptedDns::silent().await.expect("dns");
    let origin = OriginBuilder::tls(meridian_probe::demo::origin::TlsVersions::Both)
        .ip(v6)
        .start()
        .await
        .expect("origin on [::1]");
    let runner = RunnerBuilder::new(dns.udp())
        .policy(TargetPolicy::with_allowed(vec![
            "::1/128".parse().expect("net"),
        ]))
        .trust(&origin)
        .build()
        .expect("runner");
    let check = probe::http_check(origin.url("/"), |c| c.timeout = Duration::from_secs(3));
    let r = probe::run(&runner, &check).await;
    assert_eq!(class(&r), "none", "{}", show(&r));
    assert_eq!(r.remote_ip, Some(v6), "{}", show(&r));
    assert!(r.phases.tls.expect("tls") > 0, "{}", show(&r));
}
